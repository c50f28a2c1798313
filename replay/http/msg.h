/* HTTP/1.1 messages as the replayer needs them: parsed from the raw captured
 * bytes (llhttp), edited by transformations, and serialised again with a
 * recomputed Content-Length. Bodies are kept de-chunked; compressed bodies
 * stay compressed (replay_http_body_decoded() inflates gzip/deflate for
 * comparison). */
#ifndef REPLAY_HTTP_MSG_H
#define REPLAY_HTTP_MSG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/buf.h>

struct replay_header {
    char *name;                 /* as captured (case preserved) */
    char *value;
};

struct replay_http_msg {
    bool is_request;
    char *method;               /* request */
    char *uri;                  /* request target as sent ("/i/_search?q=x") */
    int http_major, http_minor;
    int status;                 /* response */
    char *reason;               /* response */
    struct replay_header *headers;
    size_t n_headers;
    uint8_t *body;              /* de-chunked body (NUL-terminated), may be NULL; in the string
                                 * block below when short, else allocated on its own */
    size_t body_len;
    bool was_chunked;
    bool complete;              /* the parser saw the end of the message */
    /* Parsed and copied messages keep method, uri, reason, the header
     * strings, the headers array and a body of up to 16 KiB with a known
     * length in this one block (one allocation instead of one per part);
     * parts outside it were allocated on their own. Use the functions
     * below to change them. */
    char *strs;
    size_t strs_len;
};

/* Parses one message from data. For responses, req_method tells whether the
 * request was HEAD (no body). A response without a length is taken to end at
 * the end of data. Returns SM_OK (msg->complete tells whether it ended inside
 * data) or SM_EPROTO with err naming the problem. On error msg is freed. */
int replay_http_parse(const uint8_t *data, size_t len, bool is_request, const char *req_method,
                      struct replay_http_msg *msg, char *err, size_t errlen);
void replay_http_msg_free(struct replay_http_msg *msg);

/* The same parse over a message that arrives in pieces (the target's
 * responses, read by read): begin, feed each piece (n = 0 at the end of the
 * connection, for a close-delimited body) until *done, then take. The result
 * equals replay_http_parse() over the concatenation. feed: SM_OK (*used bytes
 * consumed; the message ends inside this piece when *done) or SM_EPROTO with
 * err. take: SM_OK and *msg (the caller frees it), or SM_EPROTO (incomplete
 * header block). begin abandons a parse in progress. */
struct replay_http_inc;
struct replay_http_inc *replay_http_inc_new(void);
void replay_http_inc_free(struct replay_http_inc *h);
int replay_http_inc_begin(struct replay_http_inc *h, bool is_request, const char *req_method);
int replay_http_inc_feed(struct replay_http_inc *h, const uint8_t *data, size_t n, size_t *used, bool *done,
                         char *err, size_t errlen);
bool replay_http_inc_keep_alive(const struct replay_http_inc *h);
int replay_http_inc_take(struct replay_http_inc *h, struct replay_http_msg *msg, char *err, size_t errlen);
/* Deep copy (cheaper than parsing the bytes again). SM_OK or SM_ENOMEM (dst freed). */
int replay_http_msg_copy(const struct replay_http_msg *src, struct replay_http_msg *dst);

/* First header with that name (case-insensitive), or NULL. */
const char *replay_http_header(const struct replay_http_msg *msg, const char *name);
/* Replaces every header of that name by one with value (appends if absent). */
int replay_http_set_header(struct replay_http_msg *msg, const char *name, const char *value);
/* Removes every header of that name; returns how many were removed. */
size_t replay_http_remove_header(struct replay_http_msg *msg, const char *name);
/* Replaces the body (copied). */
int replay_http_set_body(struct replay_http_msg *msg, const void *body, size_t len);
int replay_http_set_uri(struct replay_http_msg *msg, const char *uri);

/* Serialises a request: request line, headers (Transfer-Encoding dropped,
 * Content-Length set to the body length when there is a body or the original
 * had one), blank line, body. */
int replay_http_serialize(const struct replay_http_msg *msg, struct sm_buf *out);

/* Body with Content-Encoding gzip/deflate undone (other encodings: as is).
 * out receives the bytes; SM_EPROTO if the compressed data is bad. */
int replay_http_body_decoded(const struct replay_http_msg *msg, struct sm_buf *out);

#endif
