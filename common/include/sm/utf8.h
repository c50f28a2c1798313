/* UTF-8 validation (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF)
 * and repair for text that must be valid UTF-8 (JSON strings for jansson). */
#ifndef SM_UTF8_H
#define SM_UTF8_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence starting at s[0] (n > 0), 0 if
 * the bytes there are not one. */
size_t sm_utf8_seq_len(const uint8_t *s, size_t n);
bool sm_utf8_valid(const void *s, size_t n);
/* New NUL-terminated copy of s[0..n) with every byte that does not start a
 * valid sequence replaced by U+FFFD; *outlen gets its length. NULL when out
 * of memory. */
char *sm_utf8_repair(const void *s, size_t n, size_t *outlen);

#endif
