/* CBOR document -> JSON text, for _source stored in CBOR (a client sent
 * application/cbor). libcbor's streaming decoder does the byte-level work;
 * this file keeps the container stack and writes JSON as Jackson would:
 * byte strings as base64, bignum tags 2/3 as exact integers, other tags
 * (e.g. self-describe 55799) dropped, undefined as null, integer map keys as
 * strings. Depth is capped at 256; text must be valid UTF-8. */
#ifndef RFS_REPO_CBOR_JSON_H
#define RFS_REPO_CBOR_JSON_H
#include <stddef.h>

#include <sm/buf.h>

/* Converts exactly one CBOR data item in data[0..len) (trailing bytes are an
 * error) and appends its JSON text to out. Returns SM_OK, SM_ECORRUPT (err
 * gives the offset), SM_EUNSUPPORTED (e.g. a map key that is an array), or
 * the buffer's error; on error out is left as it was. */
int rfs_cbor_to_json(const void *data, size_t len, struct sm_buf *out, char *err, size_t errlen);

#endif
