#include "http/msg.h"

#include <sm/err.h>
#include <sm/llhttp_reason.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <limits.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define MAX_HEADERS 256

/* Parser state: the request target or reason phrase and every header name
 * and value go NUL-terminated into one buffer, which becomes the message's
 * string block (msg->strs) once the headers are complete; header strings
 * are recorded as offsets until then (the buffer moves as it grows). */
struct pstate {
    struct replay_http_msg *msg;
    struct sm_buf text, body;
    size_t start_off;            /* request target or reason phrase */
    bool start_seen, start_open;
    int hstate;                  /* 0: no header open, 1: in its name, 2: in its value */
    size_t nh, hcap;
    size_t (*hoff)[2];           /* name and value offsets: hsmall, or allocated past 32 */
    size_t hsmall[32][2];
    bool head;       /* response to a HEAD request: no body */
    bool bad_version;            /* not HTTP/1.x (llhttp takes 0.9 and 2.0 lines too) */
    size_t block_body_cap;       /* > 0: the body goes into the string block, at most this many bytes */
};

/* A body of a known length up to this size is kept in the message's string
 * block (one allocation for the message); longer ones get their own. */
#define BLOCK_BODY_MAX ((size_t)16 << 10)
#define BODY_RESERVE_MAX ((size_t)4 << 20)

static int close_start(struct pstate *ps)
{
    if (!ps->start_open)
        return 0;
    ps->start_open = false;
    return sm_buf_append(&ps->text, "", 1) ? -1 : 0;
}

/* ends the header name in the text: whitespace before the colon, which the
 * lenient parse lets through ("Content-Length : 5"), is not part of it, so
 * the name matches (and the serialiser replaces, not repeats, the header) */
static int end_name(struct pstate *ps)
{
    while (ps->text.len > ps->hoff[ps->nh][0] &&
           (ps->text.data[ps->text.len - 1] == ' ' || ps->text.data[ps->text.len - 1] == '\t'))
        ps->text.len--;
    return sm_buf_append(&ps->text, "", 1) ? -1 : 0;
}

/* ends the open header (name and value NUL-terminated); an empty name is
 * dropped, as before */
static int end_header(struct pstate *ps)
{
    if (!ps->hstate)
        return 0;
    if (ps->hstate == 1) {
        if (end_name(ps))
            return -1;
        ps->hoff[ps->nh][1] = ps->text.len;
    }
    if (sm_buf_append(&ps->text, "", 1))
        return -1;
    if (ps->hoff[ps->nh][1] - 1 > ps->hoff[ps->nh][0])
        ps->nh++;
    ps->hstate = 0;
    return 0;
}

/* Per-part caps: request target and header name 64 KiB, reason phrase
 * 1 KiB, header value 1 MiB; and the whole head (its strings) 2 MiB, as
 * llhttp has no limit of its own (http_parser stopped at 80 KiB). */
#define HEAD_MAX ((size_t)2 << 20)

static int append_capped(struct pstate *ps, size_t from, size_t cap, const char *at, size_t n)
{
    if (ps->text.len - from + n > cap || ps->text.len + n > HEAD_MAX)
        return -1;
    return sm_buf_append(&ps->text, at, n) ? -1 : 0;
}

static int on_start(struct pstate *ps, const char *at, size_t n)
{
    if (!ps->start_seen) {
        ps->start_seen = ps->start_open = true;
        ps->start_off = ps->text.len;
    }
    return append_capped(ps, ps->start_off, ps->msg->is_request ? 64 << 10 : 1 << 10, at, n);
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    return on_start(p->data, at, n);
}

static int on_status(llhttp_t *p, const char *at, size_t n)
{
    return on_start(p->data, at, n);
}

static int on_field(llhttp_t *p, const char *at, size_t n)
{
    struct pstate *ps = p->data;
    if (ps->hstate != 1) {
        if (close_start(ps) || end_header(ps) || ps->nh >= MAX_HEADERS)
            return -1;
        if (ps->nh == ps->hcap) {
            size_t nc = ps->hcap * 2 > MAX_HEADERS ? MAX_HEADERS : ps->hcap * 2;
            size_t(*nhoff)[2] = sm_malloc(nc * sizeof(*nhoff));
            if (!nhoff)
                return -1;
            memcpy(nhoff, ps->hoff, ps->nh * sizeof(*nhoff));
            if (ps->hoff != ps->hsmall)
                sm_free(ps->hoff);
            ps->hoff = nhoff;
            ps->hcap = nc;
        }
        ps->hoff[ps->nh][0] = ps->text.len;
        ps->hstate = 1;
    }
    return append_capped(ps, ps->hoff[ps->nh][0], 64 << 10, at, n);
}

static int on_value(llhttp_t *p, const char *at, size_t n)
{
    struct pstate *ps = p->data;
    if (ps->hstate == 1) {
        if (end_name(ps))
            return -1;
        ps->hoff[ps->nh][1] = ps->text.len;
        ps->hstate = 2;
    }
    return append_capped(ps, ps->hoff[ps->nh][1], 1 << 20, at, n);
}

static int on_headers_complete(llhttp_t *p)
{
    struct pstate *ps = p->data;
    struct replay_http_msg *m = ps->msg;
    if (close_start(ps) || end_header(ps))
        return -1;
    if (p->http_major != 1) {
        ps->bad_version = true;
        return -1;
    }
    if (!ps->start_seen) {             /* "" when the parser gave none */
        ps->start_off = ps->text.len;
        if (sm_buf_append(&ps->text, "", 1))
            return -1;
    }
    size_t method_off = ps->text.len;   /* the method in the block too */
    if (m->is_request && sm_buf_append_str(&ps->text, llhttp_method_name((llhttp_method_t)p->method)))
        return -1;
    if (m->is_request && sm_buf_append(&ps->text, "", 1))
        return -1;
    /* the header array goes at the end of the string block, and after it
     * a body of a known, small length: one allocation */
    size_t hoff = 0, boff = 0, bcap = 0;
    bool bodyless = !m->is_request && ps->head;
    /* llhttp: content_length is the Content-Length value when F_CONTENT_LENGTH
     * is set (0 otherwise); a message with both it and chunked is refused */
    bool has_len = (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED);
    if (!bodyless && has_len && p->content_length > 0 && p->content_length <= BLOCK_BODY_MAX)
        bcap = (size_t)p->content_length;
    size_t pad = (0 - ps->text.len) & (_Alignof(struct replay_header) - 1);
    if ((ps->nh || bcap) && sm_buf_reserve(&ps->text, pad + ps->nh * sizeof(*m->headers) + bcap + 1))
        return -1;
    if (ps->nh) {
        hoff = ps->text.len + pad;
        ps->text.len = hoff + ps->nh * sizeof(*m->headers);
    }
    if (bcap) {
        boff = ps->text.len;
        ps->text.len += bcap + 1;
    }
    size_t len;
    m->strs = (char *)sm_buf_steal(&ps->text, &len);
    m->strs_len = len;
    if (ps->nh)
        m->headers = (struct replay_header *)(void *)(m->strs + hoff);
    if (bcap) {
        m->body = (uint8_t *)m->strs + boff;    /* body_len 0 until on_body() */
        ps->block_body_cap = bcap;
    }
    for (size_t i = 0; i < ps->nh; i++) {
        m->headers[i].name = m->strs + ps->hoff[i][0];
        m->headers[i].value = m->strs + ps->hoff[i][1];
    }
    m->n_headers = ps->nh;
    m->http_major = p->http_major;
    m->http_minor = p->http_minor;
    if (m->is_request) {
        m->method = m->strs + method_off;
        m->uri = m->strs + ps->start_off;
    } else {
        m->status = (int)p->status_code;
        m->reason = m->strs + ps->start_off;
        /* a response to HEAD has no body, whatever its headers say */
        if (ps->head)
            return 1;
    }
    /* the body in one allocation when its length is known (up to 4 MiB up
     * front: a length the bytes never back must not allocate gigabytes) */
    if (!bcap && has_len && p->content_length > 0 &&
        sm_buf_reserve(&ps->body, (size_t)SM_MIN(p->content_length, (uint64_t)BODY_RESERVE_MAX) + 1))
        return -1;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct pstate *ps = p->data;
    if (ps->block_body_cap) {
        struct replay_http_msg *m = ps->msg;
        if (n > ps->block_body_cap - m->body_len)
            return -1;                              /* more than Content-Length: not from llhttp */
        memcpy(m->body + m->body_len, at, n);
        m->body_len += n;
        return 0;
    }
    return sm_buf_append(&ps->body, at, n) ? -1 : 0;
}

static int on_complete(llhttp_t *p)
{
    struct pstate *ps = p->data;
    ps->msg->complete = true;
    ps->msg->was_chunked = (p->flags & F_CHUNKED) != 0;
    return HPE_PAUSED;   /* one message only */
}

static bool in_block(const struct replay_http_msg *msg, const void *p)
{
    return msg->strs && (const char *)p >= msg->strs && (const char *)p < msg->strs + msg->strs_len;
}

/* frees a string of msg unless it lies in its block */
static void str_free(const struct replay_http_msg *msg, char *s)
{
    if (s && !in_block(msg, s))
        sm_free(s);
}

void replay_http_msg_free(struct replay_http_msg *msg)
{
    str_free(msg, msg->method);
    str_free(msg, msg->uri);
    str_free(msg, msg->reason);
    for (size_t i = 0; i < msg->n_headers; i++) {
        str_free(msg, msg->headers[i].name);
        str_free(msg, msg->headers[i].value);
    }
    if (msg->headers && !in_block(msg, msg->headers))
        sm_free(msg->headers);
    if (msg->body && !in_block(msg, msg->body))
        sm_free(msg->body);
    sm_free(msg->strs);
    memset(msg, 0, sizeof(*msg));
}

static const llhttp_settings_t parser_settings = {
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* One message being parsed: replay_http_parse() runs it over a whole buffer,
 * replay_http_inc_* over pieces as they arrive. */
struct replay_http_inc {
    struct pstate ps;
    struct replay_http_msg msg;
    llhttp_t p;
    bool started;
    bool reserved;               /* the string block's first allocation made */
    size_t used;                 /* bytes consumed, for error messages */
};

/* The strings take at most the message's bytes plus their NULs: one
 * allocation for the usual header block, not a growing one (nor 512 bytes
 * for a 100-byte message: queued requests and responses hold these blocks).
 * n: the message's size, or the first piece's. */
static int reserve_text(struct replay_http_inc *h, size_t n)
{
    h->reserved = true;
    return sm_buf_reserve(&h->ps.text, n < 448 ? n + 64 : 512) ? SM_ENOMEM : SM_OK;
}

static void pstate_release(struct pstate *ps)
{
    sm_buf_free(&ps->text);
    sm_buf_free(&ps->body);
    if (ps->hoff != ps->hsmall)
        sm_free(ps->hoff);
    ps->hoff = ps->hsmall;
}

/* size_hint: the message's bytes when known (0: not known yet) */
static int inc_start(struct replay_http_inc *h, bool is_request, const char *req_method, size_t size_hint)
{
    struct pstate *ps = &h->ps;
    memset(&h->msg, 0, sizeof(h->msg));
    h->msg.is_request = is_request;
    ps->msg = &h->msg;                /* hsmall left uninitialised: written before read */
    ps->start_off = 0;
    ps->start_seen = ps->start_open = false;
    ps->hstate = 0;
    ps->nh = 0;
    ps->hcap = sizeof(ps->hsmall) / sizeof(ps->hsmall[0]);
    ps->hoff = ps->hsmall;
    ps->head = !is_request && req_method && !strcasecmp(req_method, "HEAD");
    ps->bad_version = false;
    ps->block_body_cap = 0;
    sm_buf_init(&ps->text, (size_t)1 << 31);    /* parts capped in append_capped() */
    sm_buf_init(&ps->body, (size_t)1 << 31);
    h->started = true;
    h->reserved = false;
    h->used = 0;
    if (size_hint && reserve_text(h, size_hint))   /* else at the first piece */
        return SM_ENOMEM;
    llhttp_init(&h->p, is_request ? HTTP_REQUEST : HTTP_RESPONSE, &parser_settings);
    /* what the source accepted is replayed: header values with characters
     * RFC 9110 does not allow are kept, as http_parser did */
    llhttp_set_lenient_headers(&h->p, 1);
    h->p.data = ps;
    return SM_OK;
}

/* Feeds n bytes (n = 0: the end of the input). SM_OK, or SM_EPROTO with err. */
static int inc_feed(struct replay_http_inc *h, const uint8_t *data, size_t n, size_t *used, char *err,
                    size_t errlen)
{
    llhttp_errno_t e;
    size_t u = n;
    if (n) {
        e = llhttp_execute(&h->p, (const char *)data, n);
        if (e != HPE_OK)   /* paused after the message, or the error's place */
            u = (size_t)(llhttp_get_error_pos(&h->p) - (const char *)data);
    } else {
        e = llhttp_finish(&h->p);   /* EOF: ends a close-delimited response */
    }
    h->used += u;
    *used = u;
    if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE && h->ps.bad_version)
        return sm_errf(err, errlen, SM_EPROTO, "HTTP %s: version %d.%d, only HTTP/1.x is replayed",
                       h->msg.is_request ? "request" : "response", h->p.http_major, h->p.http_minor);
    if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE)
        return sm_errf(err, errlen, SM_EPROTO, "HTTP %s: %s at byte %zu", h->msg.is_request ? "request" : "response",
                       sm_llhttp_reason(&h->p, e),
                       h->used);
    return SM_OK;
}

/* Ends the parse: on SM_OK *msg is the message (the caller owns it). */
static int inc_end(struct replay_http_inc *h, struct replay_http_msg *msg, char *err, size_t errlen)
{
    struct replay_http_msg *m = &h->msg;
    int rc = SM_OK;
    if (!m->method && m->is_request)
        rc = sm_errf(err, errlen, SM_EPROTO, "HTTP request: incomplete header block (%zu bytes)", h->used);
    else if (!m->is_request && !m->reason)
        rc = sm_errf(err, errlen, SM_EPROTO, "HTTP response: incomplete header block (%zu bytes)", h->used);
    if (!rc && h->ps.block_body_cap) {
        if (m->body_len)
            m->body[m->body_len] = 0;
        else
            m->body = NULL;                         /* as for a body of its own: none when empty */
    } else if (!rc && h->ps.body.len) {
        m->body = sm_buf_steal(&h->ps.body, &m->body_len);
    }
    pstate_release(&h->ps);
    h->started = false;
    if (rc) {
        replay_http_msg_free(m);
        memset(msg, 0, sizeof(*msg));
        return rc;
    }
    *msg = *m;
    memset(m, 0, sizeof(*m));
    return SM_OK;
}

/* Drops a parse in progress and what it built. */
static void inc_abandon(struct replay_http_inc *h)
{
    if (!h->started)
        return;
    pstate_release(&h->ps);
    replay_http_msg_free(&h->msg);
    memset(&h->msg, 0, sizeof(h->msg));
    h->started = false;
}

int replay_http_parse(const uint8_t *data, size_t len, bool is_request, const char *req_method,
                      struct replay_http_msg *msg, char *err, size_t errlen)
{
    struct replay_http_inc h;
    memset(msg, 0, sizeof(*msg));
    if (inc_start(&h, is_request, req_method, len)) {
        inc_abandon(&h);
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    }
    size_t used;
    int rc = inc_feed(&h, data, len, &used, err, errlen);
    if (!rc && !h.msg.complete && used == len && !is_request)
        rc = inc_feed(&h, NULL, 0, &used, err, errlen);   /* EOF ends a close-delimited response */
    if (rc) {
        inc_abandon(&h);
        return rc;
    }
    return inc_end(&h, msg, err, errlen);
}

struct replay_http_inc *replay_http_inc_new(void)
{
    return sm_calloc(1, sizeof(struct replay_http_inc));
}

void replay_http_inc_free(struct replay_http_inc *h)
{
    if (h) {
        inc_abandon(h);
        sm_free(h);
    }
}

int replay_http_inc_begin(struct replay_http_inc *h, bool is_request, const char *req_method)
{
    inc_abandon(h);
    if (inc_start(h, is_request, req_method, 0)) {
        inc_abandon(h);
        return SM_ENOMEM;
    }
    return SM_OK;
}

int replay_http_inc_feed(struct replay_http_inc *h, const uint8_t *data, size_t n, size_t *used, bool *done,
                         char *err, size_t errlen)
{
    *done = false;
    *used = 0;
    if (!h->started)
        return sm_errf(err, errlen, SM_EINVAL, "HTTP parse not started");
    if (!h->reserved && n && reserve_text(h, n))
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    int rc = inc_feed(h, n ? data : NULL, n, used, err, errlen);
    if (rc == SM_OK)
        *done = h->msg.complete;
    return rc;
}

bool replay_http_inc_keep_alive(const struct replay_http_inc *h)
{
    return llhttp_should_keep_alive(&h->p) != 0;
}

int replay_http_inc_take(struct replay_http_inc *h, struct replay_http_msg *msg, char *err, size_t errlen)
{
    if (!h->started) {
        memset(msg, 0, sizeof(*msg));
        return sm_errf(err, errlen, SM_EINVAL, "HTTP parse not started");
    }
    return inc_end(h, msg, err, errlen);
}

const char *replay_http_header(const struct replay_http_msg *msg, const char *name)
{
    for (size_t i = 0; i < msg->n_headers; i++)
        if (!strcasecmp(msg->headers[i].name, name))
            return msg->headers[i].value;
    return NULL;
}

size_t replay_http_remove_header(struct replay_http_msg *msg, const char *name)
{
    size_t o = 0, removed = 0;
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (!strcasecmp(msg->headers[i].name, name)) {
            str_free(msg, msg->headers[i].name);
            str_free(msg, msg->headers[i].value);
            removed++;
        } else {
            msg->headers[o++] = msg->headers[i];
        }
    }
    msg->n_headers = o;
    return removed;
}

int replay_http_set_header(struct replay_http_msg *msg, const char *name, const char *value)
{
    for (size_t i = 0; i < msg->n_headers; i++)
        if (!strcasecmp(msg->headers[i].name, name)) {
            char *v = sm_strdup(value);
            if (!v)
                return SM_ENOMEM;
            str_free(msg, msg->headers[i].value);
            msg->headers[i].value = v;
            /* drop later duplicates */
            for (size_t j = msg->n_headers; j-- > i + 1;)
                if (!strcasecmp(msg->headers[j].name, name)) {
                    str_free(msg, msg->headers[j].name);
                    str_free(msg, msg->headers[j].value);
                    memmove(&msg->headers[j], &msg->headers[j + 1], (msg->n_headers - j - 1) * sizeof(*msg->headers));
                    msg->n_headers--;
                }
            return SM_OK;
        }
    struct replay_header *nh;
    if (msg->headers && in_block(msg, msg->headers)) {
        /* the parsed array lives in the string block: move it out */
        if (!(nh = sm_malloc((msg->n_headers + 1) * sizeof(*nh))))
            return SM_ENOMEM;
        memcpy(nh, msg->headers, msg->n_headers * sizeof(*nh));
    } else if (!(nh = sm_realloc(msg->headers, (msg->n_headers + 1) * sizeof(*nh)))) {
        return SM_ENOMEM;
    }
    msg->headers = nh;
    nh[msg->n_headers].name = sm_strdup(name);
    nh[msg->n_headers].value = sm_strdup(value);
    if (!nh[msg->n_headers].name || !nh[msg->n_headers].value) {
        sm_free(nh[msg->n_headers].name);
        sm_free(nh[msg->n_headers].value);
        return SM_ENOMEM;
    }
    msg->n_headers++;
    return SM_OK;
}

int replay_http_set_body(struct replay_http_msg *msg, const void *body, size_t len)
{
    uint8_t *b = NULL;
    if (len) {
        b = sm_malloc(len + 1);
        if (!b)
            return SM_ENOMEM;
        memcpy(b, body, len);
        b[len] = 0;
    }
    if (msg->body && !in_block(msg, msg->body))
        sm_free(msg->body);
    msg->body = b;
    msg->body_len = len;
    return SM_OK;
}

int replay_http_set_uri(struct replay_http_msg *msg, const char *uri)
{
    char *u = sm_strdup(uri);
    if (!u)
        return SM_ENOMEM;
    str_free(msg, msg->uri);
    msg->uri = u;
    return SM_OK;
}

int replay_http_serialize(const struct replay_http_msg *msg, struct sm_buf *out)
{
    int rc = sm_buf_printf(out, "%s %s HTTP/%d.%d\r\n", msg->method, msg->uri, msg->http_major, msg->http_minor);
    bool had_length = false;
    for (size_t i = 0; !rc && i < msg->n_headers; i++) {
        const char *n = msg->headers[i].name;
        if (!strcasecmp(n, "transfer-encoding"))
            continue;
        if (!strcasecmp(n, "content-length")) {
            had_length = true;
            continue;
        }
        rc = sm_buf_printf(out, "%s: %s\r\n", n, msg->headers[i].value);
    }
    if (!rc && (msg->body_len || had_length || msg->was_chunked))
        rc = sm_buf_printf(out, "Content-Length: %zu\r\n", msg->body_len);
    if (!rc)
        rc = sm_buf_append(out, "\r\n", 2);
    if (!rc && msg->body_len)
        rc = sm_buf_append(out, msg->body, msg->body_len);
    return rc;
}

int replay_http_body_decoded(const struct replay_http_msg *msg, struct sm_buf *out)
{
    const char *ce = replay_http_header(msg, "content-encoding");
    int wbits;
    if (ce && !strcasecmp(ce, "gzip"))
        wbits = 16 + MAX_WBITS;
    else if (ce && !strcasecmp(ce, "deflate"))
        wbits = MAX_WBITS;
    else
        return msg->body_len ? sm_buf_append(out, msg->body, msg->body_len) : SM_OK;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, wbits) != Z_OK)
        return SM_ENOMEM;
    zs.next_in = msg->body;
    zs.avail_in = (uInt)msg->body_len;
    uint8_t tmp[16384];
    int rc = SM_OK, zr;
    do {
        zs.next_out = tmp;
        zs.avail_out = sizeof(tmp);
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            rc = SM_EPROTO;
            break;
        }
        if ((rc = sm_buf_append(out, tmp, sizeof(tmp) - zs.avail_out)))
            break;
    } while (zr != Z_STREAM_END && (zs.avail_in || zs.avail_out == 0));
    if (!rc && zr != Z_STREAM_END)
        rc = SM_EPROTO;
    inflateEnd(&zs);
    return rc;
}

/* The copy of a message whose strings and headers array all lie in its
 * block (as a parse leaves them): the block copied at once and the
 * pointers moved to the copy. SM_OK, SM_ENOMEM (dst freed), or 1 when src
 * is not laid out so. */
static int copy_block(const struct replay_http_msg *src, struct replay_http_msg *dst)
{
    if (!src->strs || !src->n_headers || !in_block(src, src->headers) ||
        (src->method && !in_block(src, src->method)) || (src->uri && !in_block(src, src->uri)) ||
        (src->reason && !in_block(src, src->reason)))
        return 1;
    for (size_t i = 0; i < src->n_headers; i++)
        if (!in_block(src, src->headers[i].name) || !in_block(src, src->headers[i].value))
            return 1;
    bool body_in = src->body && in_block(src, src->body);
    if (!(dst->strs = sm_malloc(src->strs_len)))
        return SM_ENOMEM;
    memcpy(dst->strs, src->strs, src->strs_len);
    dst->strs_len = src->strs_len;
#define MOVED(p) (dst->strs + ((const char *)(p) - src->strs))
    dst->method = src->method ? MOVED(src->method) : NULL;
    dst->uri = src->uri ? MOVED(src->uri) : NULL;
    dst->reason = src->reason ? MOVED(src->reason) : NULL;
    dst->headers = (struct replay_header *)(void *)MOVED(src->headers);
    for (size_t i = 0; i < src->n_headers; i++) {
        dst->headers[i].name = MOVED(src->headers[i].name);
        dst->headers[i].value = MOVED(src->headers[i].value);
    }
    dst->n_headers = src->n_headers;
    if (body_in) {
        dst->body = (uint8_t *)MOVED(src->body);
        dst->body_len = src->body_len;
    } else if (src->body) {
        if (!(dst->body = sm_malloc(src->body_len + 1))) {
            replay_http_msg_free(dst);
            return SM_ENOMEM;
        }
        memcpy(dst->body, src->body, src->body_len);
        dst->body[src->body_len] = 0;
        dst->body_len = src->body_len;
    }
#undef MOVED
    return SM_OK;
}

int replay_http_msg_copy(const struct replay_http_msg *src, struct replay_http_msg *dst)
{
    memset(dst, 0, sizeof(*dst));
    dst->is_request = src->is_request;
    dst->http_major = src->http_major;
    dst->http_minor = src->http_minor;
    dst->status = src->status;
    dst->was_chunked = src->was_chunked;
    dst->complete = src->complete;
    int rc = copy_block(src, dst);
    if (rc <= 0)
        return rc;
    /* every string in one block */
    size_t total = (src->method ? strlen(src->method) + 1 : 0) + (src->uri ? strlen(src->uri) + 1 : 0) +
                   (src->reason ? strlen(src->reason) + 1 : 0);
    for (size_t i = 0; i < src->n_headers; i++)
        total += strlen(src->headers[i].name) + strlen(src->headers[i].value) + 2;
    /* and the header array and a small body after them, as a parse
     * leaves them */
    size_t hoff = 0, boff = 0;
    if (src->n_headers) {
        hoff = total + ((0 - total) & (_Alignof(struct replay_header) - 1));
        total = hoff + src->n_headers * sizeof(*dst->headers);
    }
    bool body_in_block = src->body && src->body_len && src->body_len <= BLOCK_BODY_MAX;
    if (body_in_block) {
        boff = total;
        total += src->body_len + 1;
    }
    bool ok = true;
    if (total) {
        ok = (dst->strs = sm_malloc(total)) != NULL;
        dst->strs_len = total;
    }
    char *w = dst->strs;
#define COPY_STR(to, from)                     \
    do {                                       \
        size_t l_ = strlen(from) + 1;          \
        memcpy(w, from, l_);                   \
        (to) = w;                              \
        w += l_;                               \
    } while (0)
    if (ok && src->method)
        COPY_STR(dst->method, src->method);
    if (ok && src->uri)
        COPY_STR(dst->uri, src->uri);
    if (ok && src->reason)
        COPY_STR(dst->reason, src->reason);
    if (ok && src->n_headers) {
        dst->headers = (struct replay_header *)(void *)(dst->strs + hoff);
        for (size_t i = 0; i < src->n_headers; i++) {
            COPY_STR(dst->headers[i].name, src->headers[i].name);
            COPY_STR(dst->headers[i].value, src->headers[i].value);
            dst->n_headers = i + 1;
        }
    }
#undef COPY_STR
    if (ok && body_in_block) {
        dst->body = (uint8_t *)dst->strs + boff;
        memcpy(dst->body, src->body, src->body_len);
        dst->body[src->body_len] = 0;
        dst->body_len = src->body_len;
    } else if (ok && src->body) {
        ok = (dst->body = sm_malloc(src->body_len + 1)) != NULL;
        if (ok) {
            memcpy(dst->body, src->body, src->body_len);
            dst->body[src->body_len] = 0;
            dst->body_len = src->body_len;
        }
    }
    if (!ok) {
        replay_http_msg_free(dst);
        return SM_ENOMEM;
    }
    return SM_OK;
}
