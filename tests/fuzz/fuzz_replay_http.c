/* The replayer's HTTP/1.1 parser (replay/http/msg.c, llhttp underneath) on
 * any bytes, checked against itself: replay_http_parse() over the whole
 * buffer and replay_http_inc_*() over the same bytes in pieces (as the
 * sender loop reads target responses) must agree - both fail, or both give
 * the same message (method, target, status, reason, version, headers, body,
 * chunked, complete) having used the same number of bytes (a pipelined
 * message after the first is not consumed). A parsed message is also copied
 * (replay_http_msg_copy) and serialised, and the serialisation parses back
 * to the same message.
 *
 * Input: byte 0 selects request / response / response to HEAD (bits 0-1)
 * and the piece size (bits 2-7: 1..64 bytes); the rest is the message. */
#include "http/msg.h"

#include <sm/buf.h>
#include <sm/err.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_replay_http: %s\n", what);
    abort();
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static void same_msg(const struct replay_http_msg *a, const struct replay_http_msg *b, bool framing, const char *ctx)
{
    if (a->is_request != b->is_request || !same_str(a->method, b->method) || !same_str(a->uri, b->uri) ||
        a->status != b->status || !same_str(a->reason, b->reason) || a->http_major != b->http_major ||
        a->http_minor != b->http_minor || a->n_headers != b->n_headers || a->body_len != b->body_len ||
        (a->body_len && memcmp(a->body, b->body, a->body_len)))
        fail(ctx);
    if (framing && (a->was_chunked != b->was_chunked || a->complete != b->complete))
        fail(ctx);
    for (size_t i = 0; i < a->n_headers; i++)
        if (strcmp(a->headers[i].name, b->headers[i].name) || strcmp(a->headers[i].value, b->headers[i].value))
            fail(ctx);
}

/* the way the sender loop feeds a response: pieces until done, then EOF for
 * a response that is still open */
static int parse_pieces(const uint8_t *p, size_t n, size_t step, bool is_request, const char *method,
                        struct replay_http_msg *out, size_t *total)
{
    char err[256];
    struct replay_http_inc *h = replay_http_inc_new();
    if (!h)
        return SM_ENOMEM;
    int rc = replay_http_inc_begin(h, is_request, method);
    bool done = false;
    size_t off = 0;
    *total = 0;
    while (!rc && !done && off < n) {
        size_t k = n - off < step ? n - off : step, used;
        rc = replay_http_inc_feed(h, p + off, k, &used, &done, err, sizeof(err));
        if (!rc && used > k)
            fail("piece: used more than given");
        if (!rc && !done && used != k)
            fail("piece: stopped early without a message or an error");
        off += rc ? 0 : used;
    }
    if (!rc && !done && !is_request) {
        size_t used;
        rc = replay_http_inc_feed(h, NULL, 0, &used, &done, err, sizeof(err));
    }
    *total = off;
    if (!rc)
        rc = replay_http_inc_take(h, out, err, sizeof(err));
    replay_http_inc_free(h);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int kind = data[0] & 3;
    size_t step = (size_t)(data[0] >> 2) + 1;
    bool is_request = kind == 0;
    const char *method = kind == 2 ? "HEAD" : "GET";
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    char err[256];
    struct replay_http_msg whole, piece;
    int wrc = replay_http_parse(p, n, is_request, method, &whole, err, sizeof(err));
    size_t used = 0;
    int prc = parse_pieces(p, n, step, is_request, method, &piece, &used);
    if (wrc == SM_ENOMEM || prc == SM_ENOMEM)
        goto out;
    if ((wrc == SM_OK) != (prc == SM_OK))
        fail(wrc ? "pieces take what the whole parse refuses" : "pieces refuse what the whole parse takes");
    if (wrc == SM_OK) {
        /* a message cut at the piece boundary is incomplete in both */
        same_msg(&whole, &piece, true, "whole and pieces differ");
        if (whole.complete) {
            /* serialised (Content-Length recomputed, de-chunked) and parsed
             * back: the same message */
            struct sm_buf out;
            sm_buf_init(&out, (size_t)1 << 30);
            struct replay_http_msg copy, back;
            if (replay_http_msg_copy(&whole, &copy) == SM_OK) {
                same_msg(&whole, &copy, true, "copy differs");
                if (is_request && replay_http_serialize(&copy, &out) == SM_OK) {
                    int brc = replay_http_parse(out.data, out.len, true, NULL, &back, err, sizeof(err));
                    if (brc == SM_OK) {
                        if (!back.complete || back.body_len != whole.body_len ||
                            (whole.body_len && memcmp(back.body, whole.body, whole.body_len)) ||
                            !same_str(back.method, whole.method) || !same_str(back.uri, whole.uri))
                            fail("serialised request parses back differently");
                        replay_http_msg_free(&back);
                    } else if (brc != SM_ENOMEM) {
                        fail("serialised request does not parse");
                    }
                }
                replay_http_msg_free(&copy);
            }
            sm_buf_free(&out);
        }
        (void)used;
    }
out:
    if (wrc == SM_OK)
        replay_http_msg_free(&whole);
    if (prc == SM_OK)
        replay_http_msg_free(&piece);
    return 0;
}
