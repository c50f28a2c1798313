/* Result tuples in the Migration Assistant's layout (docs/capture-format.md
 * section 6): one JSON line per source request with sourceRequest,
 * sourceResponse, targetRequest, targetResponses (one per attempt),
 * connectionId ("<connectionId>.<request index>"), numRequests, numErrors and
 * error; searchmig adds its comparison fields beside them. */
#ifndef REPLAY_TUPLE_H
#define REPLAY_TUPLE_H
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <sm/buf.h>

#include "http/msg.h"

/* JSON of one message: headers as name -> [values], request line or status
 * line fields, and "payload" holding exactly one of inlinedJsonBody,
 * inlinedJsonSequenceBodies, inlinedTextBody, inlinedFormEncodedBody or
 * inlinedBase64Body (after de-chunking and decompression). response_time_ms
 * is added for responses when >= 0. Returns a new reference or NULL. */
json_t *replay_tuple_msg_json(const struct replay_http_msg *msg, int64_t response_time_ms);

/* Decoded payload of a message as JSON (same rules as the "payload" object's
 * value), or NULL when the body is empty. New reference. */
json_t *replay_tuple_payload(const struct replay_http_msg *msg);

/* Appends v as compact JSON to o, byte-identical to
 * json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII). SM_OK or SM_ENOMEM/SM_EFULL. */
int replay_tuple_dump(const json_t *v, struct sm_buf *o);
/* Appends s[0..n) as a JSON string, escaped as by replay_tuple_dump(); SM_EPROTO
 * (o unchanged) when it is not valid UTF-8. */
int replay_tuple_dump_str(struct sm_buf *o, const char *s, size_t n);

/* Reusable buffers of the direct serialiser below: one per thread, zeroed
 * before first use, released with replay_tuple_scratch_free(). */
struct canon_key;
struct replay_tuple_scratch {
    struct sm_buf body;            /* inflated body */
    struct canon_key *keys;        /* keys of the open JSON objects (duplicate check) */
    size_t nkeys, kcap;
    uint64_t fallbacks;            /* JSON texts that took jansson's path */
};
void replay_tuple_scratch_free(struct replay_tuple_scratch *s);

/* Appends the JSON of msg to o: the same bytes as
 * replay_tuple_dump(replay_tuple_msg_json(msg, response_time_ms)), without
 * the jansson tree. SM_OK, or an error with o unchanged. *payload_off (may
 * be NULL) receives where the "payload" value starts in o (it ends one byte
 * before the message's end), or SIZE_MAX when not known. */
int replay_tuple_msg_dump(const struct replay_http_msg *msg, int64_t response_time_ms, struct sm_buf *o,
                          struct replay_tuple_scratch *s, size_t *payload_off);

/* The messages of a tuple line being written that the comparison reads
 * (compare.c: the source request's Method, Request-URI and payload, the
 * source response's and the last target response's Status-Code and
 * payload): msg NULL when absent; off/len: the message's JSON in the line;
 * payload_off from replay_tuple_msg_dump(). */
struct replay_tuple_part {
    const struct replay_http_msg *msg;
    size_t off, len, payload_off;
};
struct replay_tuple_parts {
    struct replay_tuple_part req, src, tgt;
};
/* Appends to out a tuple holding only what the comparison reads of the one
 * in line: {"sourceRequest":..,"sourceResponse":..,"targetResponses":[last]}
 * (headers and the other attempts left out). The comparison classifies it as
 * the whole tuple. */
int replay_tuple_cmp_view(const struct sm_buf *line, const struct replay_tuple_parts *parts, struct sm_buf *out);
/* Appends the JSON text text[0..len) as replay_tuple_dump() would write
 * json_loadb(text, JSON_DECODE_ANY (| JSON_ALLOW_NUL)); SM_EPROTO (o
 * unchanged) when jansson refuses it. */
int replay_tuple_json_canon(const void *text, size_t len, bool allow_nul, struct sm_buf *o,
                            struct replay_tuple_scratch *s);

struct replay_tuple_writer;

/* Writes JSON lines to dir/tuples-NNNNNN.log (.log.gz with gzip), a new file
 * once one holds rotate_bytes (0: never). "-" as dir writes to stdout. */
struct replay_tuple_writer *replay_tuple_writer_open(const char *dir, bool gzip, uint64_t rotate_bytes,
                                                     char *err, size_t errlen);
/* Takes a reference-neutral borrow of tuple. */
int replay_tuple_writer_write(struct replay_tuple_writer *w, const json_t *tuple);
/* Writes one serialised tuple (a newline is added). */
int replay_tuple_writer_write_line(struct replay_tuple_writer *w, const void *line, size_t n);
/* Writes what is buffered. SM_EIO when that fails, and from then on (sticky)
 * once any tuple has been lost, so a caller that commits input offsets after a
 * successful flush never commits past a lost tuple. */
int replay_tuple_writer_flush(struct replay_tuple_writer *w);
/* Tuples handed to write/write_line (all counted by _count) that did not reach
 * the files: refused, or lost with a failed write (disk full, I/O error) of the
 * batch they were in; the part of that batch that reached a regular file is
 * cut off again, so files hold whole lines. Written = count - lost. */
uint64_t replay_tuple_writer_lost(const struct replay_tuple_writer *w);
/* gzip: a stream that failed to write is closed and the next tuples go to a new
 * file, tried at most once per ms (default 10 s; tuples in between are lost). */
void replay_tuple_writer_set_gz_retry(struct replay_tuple_writer *w, uint64_t ms);
uint64_t replay_tuple_writer_count(const struct replay_tuple_writer *w);
int replay_tuple_writer_close(struct replay_tuple_writer *w);

#endif
