#include "http/msg.h"

#include <sm/err.h>
#include <sm/mem.h>

#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define MAX_HEADERS 256

struct pstate {
    struct replay_http_msg *msg;
    struct sm_buf url, status, field, value, body;
    bool in_value;
    bool head;       /* response to a HEAD request: no body */
};

static int flush_header(struct pstate *ps)
{
    if (!ps->field.len)
        return 0;
    struct replay_http_msg *m = ps->msg;
    if (m->n_headers >= MAX_HEADERS)
        return -1;
    struct replay_header *nh = sm_realloc(m->headers, (m->n_headers + 1) * sizeof(*nh));
    if (!nh)
        return -1;
    m->headers = nh;
    nh[m->n_headers].name = sm_strndup((char *)ps->field.data, ps->field.len);
    nh[m->n_headers].value = sm_strndup(ps->value.len ? (char *)ps->value.data : "", ps->value.len);
    if (!nh[m->n_headers].name || !nh[m->n_headers].value) {
        sm_free(nh[m->n_headers].name);
        sm_free(nh[m->n_headers].value);
        return -1;
    }
    m->n_headers++;
    sm_buf_reset(&ps->field);
    sm_buf_reset(&ps->value);
    ps->in_value = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct pstate *ps = p->data;
    return sm_buf_append(&ps->url, at, n) ? -1 : 0;
}

static int on_status(http_parser *p, const char *at, size_t n)
{
    struct pstate *ps = p->data;
    return sm_buf_append(&ps->status, at, n) ? -1 : 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    struct pstate *ps = p->data;
    if (ps->in_value && flush_header(ps))
        return -1;
    return sm_buf_append(&ps->field, at, n) ? -1 : 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct pstate *ps = p->data;
    ps->in_value = true;
    return sm_buf_append(&ps->value, at, n) ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    struct pstate *ps = p->data;
    if (flush_header(ps))
        return -1;
    struct replay_http_msg *m = ps->msg;
    m->http_major = p->http_major;
    m->http_minor = p->http_minor;
    if (m->is_request) {
        m->method = sm_strdup(http_method_str((enum http_method)p->method));
        m->uri = sm_strndup(ps->url.len ? (char *)ps->url.data : "", ps->url.len);
        if (!m->method || !m->uri)
            return -1;
    } else {
        m->status = (int)p->status_code;
        m->reason = sm_strndup(ps->status.len ? (char *)ps->status.data : "", ps->status.len);
        if (!m->reason)
            return -1;
        /* a response to HEAD has no body, whatever its headers say */
        if (ps->head)
            return 1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct pstate *ps = p->data;
    return sm_buf_append(&ps->body, at, n) ? -1 : 0;
}

static int on_complete(http_parser *p)
{
    struct pstate *ps = p->data;
    ps->msg->complete = true;
    ps->msg->was_chunked = (p->flags & F_CHUNKED) != 0;
    http_parser_pause(p, 1);   /* one message only */
    return 0;
}

void replay_http_msg_free(struct replay_http_msg *msg)
{
    sm_free(msg->method);
    sm_free(msg->uri);
    sm_free(msg->reason);
    for (size_t i = 0; i < msg->n_headers; i++) {
        sm_free(msg->headers[i].name);
        sm_free(msg->headers[i].value);
    }
    sm_free(msg->headers);
    sm_free(msg->body);
    memset(msg, 0, sizeof(*msg));
}

int replay_http_parse(const uint8_t *data, size_t len, bool is_request, const char *req_method,
                      struct replay_http_msg *msg, char *err, size_t errlen)
{
    memset(msg, 0, sizeof(*msg));
    msg->is_request = is_request;
    struct pstate ps = { .msg = msg };
    sm_buf_init(&ps.url, 64 << 10);
    sm_buf_init(&ps.status, 1 << 10);
    sm_buf_init(&ps.field, 64 << 10);
    sm_buf_init(&ps.value, 1 << 20);
    sm_buf_init(&ps.body, (size_t)1 << 31);
    if (!is_request && req_method && !strcasecmp(req_method, "HEAD"))
        ps.head = true;
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = on_url;
    s.on_status = on_status;
    s.on_header_field = on_field;
    s.on_header_value = on_value;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_complete;
    http_parser p;
    http_parser_init(&p, is_request ? HTTP_REQUEST : HTTP_RESPONSE);
    p.data = &ps;
    size_t used = http_parser_execute(&p, &s, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p);
    if (e == HPE_OK && !msg->complete && used == len && !is_request)
        http_parser_execute(&p, &s, NULL, 0);   /* EOF ends a close-delimited response */
    e = HTTP_PARSER_ERRNO(&p);
    int rc = SM_OK;
    if (e != HPE_OK && e != HPE_PAUSED) {
        rc = sm_errf(err, errlen, SM_EPROTO, "HTTP %s: %s at byte %zu", is_request ? "request" : "response",
                     http_errno_description(e), used);
    } else if (!msg->method && is_request) {
        rc = sm_errf(err, errlen, SM_EPROTO, "HTTP request: incomplete header block (%zu bytes)", len);
    } else if (!is_request && !msg->reason) {
        rc = sm_errf(err, errlen, SM_EPROTO, "HTTP response: incomplete header block (%zu bytes)", len);
    }
    if (!rc && ps.body.len)
        msg->body = sm_buf_steal(&ps.body, &msg->body_len);
    sm_buf_free(&ps.url);
    sm_buf_free(&ps.status);
    sm_buf_free(&ps.field);
    sm_buf_free(&ps.value);
    sm_buf_free(&ps.body);
    if (rc)
        replay_http_msg_free(msg);
    return rc;
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
            sm_free(msg->headers[i].name);
            sm_free(msg->headers[i].value);
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
            sm_free(msg->headers[i].value);
            msg->headers[i].value = v;
            /* drop later duplicates */
            for (size_t j = msg->n_headers; j-- > i + 1;)
                if (!strcasecmp(msg->headers[j].name, name)) {
                    sm_free(msg->headers[j].name);
                    sm_free(msg->headers[j].value);
                    memmove(&msg->headers[j], &msg->headers[j + 1], (msg->n_headers - j - 1) * sizeof(*msg->headers));
                    msg->n_headers--;
                }
            return SM_OK;
        }
    struct replay_header *nh = sm_realloc(msg->headers, (msg->n_headers + 1) * sizeof(*nh));
    if (!nh)
        return SM_ENOMEM;
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
    sm_free(msg->uri);
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

int replay_http_msg_copy(const struct replay_http_msg *src, struct replay_http_msg *dst)
{
    memset(dst, 0, sizeof(*dst));
    dst->is_request = src->is_request;
    dst->http_major = src->http_major;
    dst->http_minor = src->http_minor;
    dst->status = src->status;
    dst->was_chunked = src->was_chunked;
    dst->complete = src->complete;
    bool ok = (!src->method || (dst->method = sm_strdup(src->method))) &&
              (!src->uri || (dst->uri = sm_strdup(src->uri))) &&
              (!src->reason || (dst->reason = sm_strdup(src->reason)));
    if (ok && src->n_headers) {
        ok = (dst->headers = sm_calloc(src->n_headers, sizeof(*dst->headers))) != NULL;
        for (size_t i = 0; ok && i < src->n_headers; i++) {
            dst->headers[i].name = sm_strdup(src->headers[i].name);
            dst->headers[i].value = sm_strdup(src->headers[i].value);
            dst->n_headers = i + 1;
            ok = dst->headers[i].name && dst->headers[i].value;
        }
    }
    if (ok && src->body) {
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
