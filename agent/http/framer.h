/* HTTP/1.1 message framing on reassembled bytes, one framer per connection.
 *
 * The framer finds message boundaries in both directions (with llhttp, from
 * Debian's node-llhttp sources) and reports them through callbacks; it never changes the
 * bytes: chunked bodies stay chunked, compressed bodies compressed. Handled:
 * keep-alive, pipelining (responses paired with requests in order),
 * Content-Length, chunked bodies with extensions and trailers,
 * close-delimited responses, HEAD responses, 1xx interim responses
 * (Expect: 100-continue), 204/304, Connection: close, protocol upgrades
 * (101 Switching Protocols, CONNECT), mid-stream joins and capture gaps
 * (resynchronised at the next plausible request / status line).
 *
 * Message heads (start line + header block) are buffered until complete
 * (bounded by max_header) and delivered whole, so the receiver can filter or
 * redact a request before any of its bytes is recorded. Body bytes are
 * streamed as they arrive.
 *
 * Event order per direction follows the byte stream: head, body*, end; a
 * broken message (gap, parse error, oversized head) gets `broken` instead of
 * `end`, after which the direction resynchronises. Callback data is borrowed
 * for the call. */
#ifndef AGENT_HTTP_FRAMER_H
#define AGENT_HTTP_FRAMER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow/stream.h"

#define AGENT_HTTP_MAX_HEADER_DEFAULT   (64u * 1024u)
#define AGENT_HTTP_MAX_PIPELINE         256u          /* requests awaiting a response */
#define AGENT_HTTP_SYNC_MAX             (16u * 1024u) /* bytes kept while resynchronising */

/* Bytes buffered by all framers sharing it (partial heads, resync and
 * upgrade buffers); past max, heads are reported broken rather than kept.
 * Framers sharing one budget must be used from one thread (or one lock). */
struct agent_http_budget {
    uint64_t used;
    uint64_t max;
};

struct agent_http_limits {
    size_t max_header;     /* largest head (start line + headers); 0: 64 KiB */
    struct agent_http_budget *budget;   /* shared; NULL: no global bound */
};

/* One complete message head. */
struct agent_http_head {
    enum agent_dir dir;
    const uint8_t *data;        /* the head bytes as on the wire (borrowed) */
    size_t len;
    uint32_t first_line_len;    /* start line incl. its CRLF (or LF) */
    /* requests */
    int method;                 /* llhttp_method_t */
    const char *method_name;    /* "GET" */
    const char *target;         /* request-target inside data (not NUL-terminated) */
    size_t target_len;
    /* responses */
    int status;
    bool interim;               /* 1xx other than 101: another response follows */
    int req_method;             /* method of the paired request, -1 when unknown */
    uint64_t ts_ns;             /* capture time of the head's first byte */
};

/* What the head callback decides. */
enum agent_http_verdict {
    AGENT_HTTP_KEEP = 0,        /* deliver body and end */
    AGENT_HTTP_SKIP = 1,        /* requests only: suppress this request: its body,
                                 * end and its whole response are not delivered
                                 * (end_skipped is called instead) */
};

struct agent_http_cb {
    void *arg;
    /* A message head is complete. Returns enum agent_http_verdict (responses:
     * ignored). Not called for responses to skipped requests. */
    int (*head)(void *arg, const struct agent_http_head *head);
    /* Body bytes of the current message (as on the wire, framing included). */
    void (*body)(void *arg, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts_ns);
    /* Message complete (requests: after the last body byte). */
    void (*end)(void *arg, enum agent_dir dir, uint64_t ts_ns);
    /* A skipped request, or the response to one, is complete. May be NULL. */
    void (*end_skipped)(void *arg, enum agent_dir dir, uint64_t ts_ns);
    /* The message in progress in dir is broken (or a gap fell between
     * messages: in_message false); why is readable text. The direction then
     * resynchronises. */
    void (*broken)(void *arg, enum agent_dir dir, bool in_message, const char *why,
                   uint64_t ts_ns);
    /* The connection switched protocols (101, CONNECT 2xx): no further events
     * are delivered for it. why is readable text. */
    void (*upgrade)(void *arg, const char *why, uint64_t ts_ns);
};

struct agent_http_framer_stats {
    uint64_t requests, responses, interim;   /* complete messages (skipped included) */
    uint64_t broken;                         /* broken messages / gap reports */
    uint64_t skipped_bytes;                  /* bytes discarded while resynchronising */
    uint64_t resyncs;                        /* successful resynchronisations */
    uint64_t parse_errors, oversized_heads;
    uint64_t pipeline_overflow;              /* requests not paired (queue full) */
    uint64_t budget_refusals;                /* buffering refused by the shared budget */
};

struct agent_http_framer;

/* New framer. mid_stream: the connection was joined without its start, so
 * both directions begin by resynchronising. cb is copied. NULL on allocation
 * failure. */
struct agent_http_framer *agent_http_framer_new(const struct agent_http_limits *lim,
                                                const struct agent_http_cb *cb, bool mid_stream);
/* Frees fr (NULL is a no-op). No callbacks. */
void agent_http_framer_free(struct agent_http_framer *fr);
/* Feeds in-order bytes of one direction. */
void agent_http_framer_feed(struct agent_http_framer *fr, enum agent_dir dir,
                            const uint8_t *p, size_t n, uint64_t ts_ns);
/* Bytes lost in dir (lost 0: unknown). */
void agent_http_framer_gap(struct agent_http_framer *fr, enum agent_dir dir, uint64_t lost,
                           const char *why, uint64_t ts_ns);
/* End of the connection: completes a close-delimited response. */
void agent_http_framer_eof(struct agent_http_framer *fr, uint64_t ts_ns);
/* True once the connection switched protocols (events no longer delivered). */
bool agent_http_framer_upgraded(const struct agent_http_framer *fr);
/* True while a request is in progress in the client direction (head
 * delivered, end not yet). */
bool agent_http_framer_request_open(const struct agent_http_framer *fr);
void agent_http_framer_stats(const struct agent_http_framer *fr, struct agent_http_framer_stats *out);

/* Resynchronisation helpers (exposed for tests). Looks for a plausible
 * request line (`METHOD SP target SP HTTP/1.x CRLF`) or status line
 * (`HTTP/1.x SP DDD ...CRLF`) in p. Returns the offset where one starts and
 * sets *partial=false; or the offset of a prefix that may still become one
 * when more bytes arrive (*partial=true); or n when there is none. */
size_t agent_http_scan_request(const uint8_t *p, size_t n, bool *partial);
size_t agent_http_scan_response(const uint8_t *p, size_t n, bool *partial);

#endif
