/* SMILE (binary JSON, Jackson's format) decoder.
 *
 * Elasticsearch/OpenSearch write snapshot metadata (snap-*.dat, meta-*.dat,
 * shard file lists) and sometimes document _source in SMILE. This decoder
 * covers the whole format version 0: header flags (shared names, shared
 * values, raw binary), every value token (shared value references, literals,
 * 32/64-bit and big integers, floats/doubles in 7-bit form, big decimals,
 * tiny/short/long ASCII and Unicode strings, 7-bit and raw binary, arrays,
 * objects) and every key token (short/long shared name references, short
 * ASCII/Unicode names, long names, the empty name, end of object).
 *
 * Three ways to consume it, all over one bounds-checked parser:
 *   rfs_smile_parse()    - event callbacks (no allocation per value; strings
 *                          point into the input)
 *   rfs_smile_to_jansson() - a jansson tree (binary values become base64
 *                          strings, as Jackson writes them to JSON text)
 *   rfs_smile_to_json()  - JSON text appended to an sm_buf (for _source)
 *
 * Input is one document: header, one value, optional 0xff end marker, end.
 * Nothing is read outside [data, data+len). Nesting depth and total events
 * are capped (struct rfs_smile_limits); errors say what and at which offset. */
#ifndef RFS_SMILE_SMILE_H
#define RFS_SMILE_SMILE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <sm/buf.h>

#define RFS_SMILE_MAX_DEPTH_DEFAULT   256
#define RFS_SMILE_MAX_EVENTS_DEFAULT  (64u * 1024 * 1024)
#define RFS_SMILE_MAX_BIGNUM_BYTES    4096   /* BigInteger/BigDecimal magnitude */

struct rfs_smile_limits {
    unsigned max_depth;      /* nesting of arrays/objects; 0 = default */
    size_t max_events;       /* tokens in the document; 0 = default */
};

enum rfs_smile_ev_type {
    RFS_SMILE_START_OBJECT, RFS_SMILE_END_OBJECT,
    RFS_SMILE_START_ARRAY, RFS_SMILE_END_ARRAY,
    RFS_SMILE_KEY,           /* str/len: property name (UTF-8) */
    RFS_SMILE_STRING,        /* str/len: UTF-8 */
    RFS_SMILE_INT,           /* i: 32- or 64-bit integer, small int */
    RFS_SMILE_BIGINT,        /* str/len: two's complement big-endian magnitude bytes */
    RFS_SMILE_FLOAT,         /* d: value of a 32-bit float */
    RFS_SMILE_DOUBLE,        /* d */
    RFS_SMILE_BIGDEC,        /* str/len: unscaled value (as BIGINT), scale: value = unscaled * 10^-scale */
    RFS_SMILE_TRUE, RFS_SMILE_FALSE, RFS_SMILE_NULL,
    RFS_SMILE_BINARY,        /* str/len: raw bytes (7-bit or raw encoding decoded) */
};

struct rfs_smile_event {
    enum rfs_smile_ev_type type;
    const uint8_t *str;      /* valid only during the callback */
    size_t len;
    int64_t i;
    double d;
    int32_t scale;
    size_t offset;           /* offset of the token in the input */
};

/* Return SM_OK to continue; any other value stops parsing and is returned. */
typedef int (*rfs_smile_cb)(void *arg, const struct rfs_smile_event *ev);

/* True if data starts with the SMILE header ":)\n" and a version-0 flags byte. */
bool rfs_smile_detect(const void *data, size_t len);

/* Parses one SMILE document, calling cb for each event. lim may be NULL.
 * Returns SM_OK, SM_ECORRUPT (malformed input, message names the offset),
 * SM_EFULL (a limit), SM_ENOMEM, or the callback's error. */
int rfs_smile_parse(const void *data, size_t len, const struct rfs_smile_limits *lim,
                    rfs_smile_cb cb, void *arg, char *err, size_t errlen);

/* Decodes into a new jansson value (*out, caller json_decref()s). Binary values
 * become base64 strings; big integers outside int64 and big decimals become
 * reals (lossy; metadata never holds them). Strings must be valid UTF-8. */
int rfs_smile_to_jansson(const void *data, size_t len, const struct rfs_smile_limits *lim,
                         json_t **out, char *err, size_t errlen);

/* Appends the document as compact JSON text to out (bounded by out->max).
 * Numbers: integers exact (big integers in full), doubles in the shortest
 * form that round-trips, big decimals as Java's BigDecimal.toString();
 * binary as a base64 string. */
int rfs_smile_to_json(const void *data, size_t len, const struct rfs_smile_limits *lim,
                      struct sm_buf *out, char *err, size_t errlen);

/* JSON text helpers shared with the CBOR converter and the CLI. All return
 * SM_OK or the sm_buf error (SM_EFULL/SM_ENOMEM). */
/* A JSON string literal (quotes, escapes) for UTF-8 bytes s[0..n). */
int rfs_json_append_string(struct sm_buf *out, const uint8_t *s, size_t n);
/* The same without the quotes. */
int rfs_json_append_escaped(struct sm_buf *out, const uint8_t *s, size_t n);
/* Decimal text of a two's complement big-endian integer of n >= 1 bytes. */
int rfs_json_append_bigint(struct sm_buf *out, const uint8_t *twos, size_t n);
/* Java Double.toString / Float.toString layout of the shortest round-trip
 * digits ("1.5", "1.0E21"); NaN/Infinity as strings, as Jackson writes them. */
int rfs_json_append_double(struct sm_buf *out, double v, bool is_float);

#endif
