/* Request filters and header redaction for the record pipeline.
 *
 * Suppression is decided on a complete request head, before any of its bytes
 * is recorded: a suppressed request and its response are not captured at
 * all (capture-format.md section 2). Paths are matched without the query
 * string with POSIX extended regular expressions; methods exactly.
 * Redaction replaces the value of each named header (case-insensitive) with
 * AGENT_FILTER_REDACTED, in request and response heads. */
#ifndef AGENT_RECORD_FILTER_H
#define AGENT_RECORD_FILTER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/buf.h>
#include <sm/opt.h>

#define AGENT_FILTER_REDACTED "REDACTED"

struct agent_filter_conf {
    const struct sm_strlist *capture_paths;    /* only these (regex); empty: all */
    const struct sm_strlist *suppress_paths;   /* never these (regex) */
    const struct sm_strlist *capture_methods;  /* only these; empty: all */
    const struct sm_strlist *suppress_methods;
    const struct sm_strlist *redact_headers;   /* header names */
};

struct agent_filter;

/* NULL on error: err names the bad pattern. conf lists are copied. */
struct agent_filter *agent_filter_new(const struct agent_filter_conf *conf, char *err, size_t errlen);
void agent_filter_free(struct agent_filter *f);   /* NULL: no-op */
/* True when a request with this method and request-target is suppressed. */
bool agent_filter_suppress(const struct agent_filter *f, const char *method, const char *target,
                           size_t target_len);
/* True when some header is to be redacted. */
bool agent_filter_redacts(const struct agent_filter *f);
/* Writes head (len bytes, start line first_line_len) with redacted values
 * into out (reset first). Returns the number of headers redacted (>= 0) or
 * a negative sm_err (out then unusable). */
int agent_filter_redact(const struct agent_filter *f, const uint8_t *head, size_t len,
                        size_t first_line_len, struct sm_buf *out);

#endif
