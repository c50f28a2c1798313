/* Checked parsers for numbers, sizes and durations, time helpers, base64,
 * CRC32 and small string helpers shared by all tools. */
#ifndef SM_UTIL_H
#define SM_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* All return SM_OK or SM_ECONFIG; the whole string must be consumed. */
int sm_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int sm_parse_u64(const char *s, uint64_t max, uint64_t *out);
int sm_parse_double(const char *s, double *out);
int sm_parse_bool(const char *s, bool *out);       /* true/false/yes/no/on/off/1/0 */
/* "512", "64KiB", "1MiB", "2GiB", "10MB" (MB = 10^6), "1k" */
int sm_parse_size(const char *s, uint64_t *out);
/* "250ms", "1s", "5m", "2h", "1.5s", bare number = seconds; out in milliseconds */
int sm_parse_duration_ms(const char *s, uint64_t *out);

uint64_t sm_now_ms(void);        /* CLOCK_MONOTONIC */
uint64_t sm_now_ns(void);        /* CLOCK_MONOTONIC */
uint64_t sm_wall_ms(void);       /* CLOCK_REALTIME */
void     sm_sleep_ms(uint64_t ms);

/* base64 (RFC 4648 standard alphabet, padded). Returns output length.
 * sm_base64_encode writes base64 of n bytes into out (needs sm_base64_enc_len(n)+1 bytes, NUL-terminated). */
size_t sm_base64_enc_len(size_t n);
size_t sm_base64_encode(const void *in, size_t n, char *out);
/* Decodes standard or URL-safe alphabet, padding optional, ignores trailing \r\n.
 * out needs (n/4+1)*3 bytes. Returns SM_OK or SM_EPROTO; *outlen set. */
int sm_base64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen);
/* base64url without padding (Elasticsearch ids). */
size_t sm_base64url_encode(const void *in, size_t n, char *out);

/* Decimal digits of v at out (no NUL); returns their count (at most 20, 21
 * with the sign). For hot paths where a printf per number shows. */
size_t sm_fmt_u64(char *out, uint64_t v);
size_t sm_fmt_i64(char *out, int64_t v);
/* gzip of a whole body with libdeflate level 1 (on bulk bodies ~1.8x the speed
 * of zlib level 1 at a slightly better ratio: docs/backfill.md "Compression").
 * out is replaced by the gzip member of in[0..len). *z is a compressor made at
 * the first call and reused by later ones (one per thread); sm_gzip_free()
 * releases it. SM_OK, SM_ENOMEM or SM_EIO. */
struct sm_buf;
struct sm_gzip;
int sm_gzip(struct sm_gzip **z, struct sm_buf *out, const void *in, size_t len);
void sm_gzip_free(struct sm_gzip *z);

/* CRC32 (zlib polynomial), incremental: crc = sm_crc32(crc, p, n) starting from 0. */
uint32_t sm_crc32(uint32_t crc, const void *p, size_t n);

/* Lowercase hex of n bytes into out (2n+1). */
void sm_hex(const void *p, size_t n, char *out);

/* Reads a whole file (at most max bytes) into a NUL-terminated sm_malloc'd buffer. */
int sm_read_file(const char *path, size_t max, uint8_t **out, size_t *outlen);
/* Appends all of iov[0..iovcnt) (at most 8 pieces) to fd, a file only ever
 * written at its end, or none of it: when a write fails (disk full, I/O error)
 * after part of it reached a regular file, the file is cut back to its size
 * before the call (ftruncate, offset moved back), so it keeps whole records.
 * 0, or the failure's errno. *cut (may be NULL): 1 the file was cut back (or
 * nothing had reached it), 0 not a regular file, -1 cutting it back failed. */
struct iovec;
int sm_fd_append_whole(int fd, const struct iovec *iov, int iovcnt, int *cut);
/* Shell-style glob match for index patterns ("logs-*,metrics-?"); comma lists,
 * a leading '-' excludes. */
bool sm_pattern_match(const char *patterns, const char *name);

/* Levenshtein distance, for "did you mean" suggestions. */
size_t sm_edit_distance(const char *a, const char *b);

#endif
