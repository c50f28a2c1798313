#define _GNU_SOURCE 1 /* strcasestr */
#include "tuple/tuple.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

static bool valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        if (c < 0x80)
            k = 0;
        else if ((c & 0xE0) == 0xC0 && c >= 0xC2)
            k = 1;
        else if ((c & 0xF0) == 0xE0)
            k = 2;
        else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
            k = 3;
        else
            return false;
        if (k > n - i - 1)
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

json_t *replay_tuple_payload(const struct replay_http_msg *msg)
{
    struct sm_buf b;
    sm_buf_init(&b, (size_t)1 << 31);
    if (replay_http_body_decoded(msg, &b) != SM_OK) {
        sm_buf_free(&b);
        /* not decodable: keep the raw bytes */
        if (replay_http_body_decoded(&(struct replay_http_msg){ .body = msg->body, .body_len = msg->body_len }, &b)) {
            sm_buf_free(&b);
            return NULL;
        }
    }
    if (!b.len) {
        sm_buf_free(&b);
        return NULL;
    }
    const char *ct = replay_http_header(msg, "content-type");
    json_t *out = json_object();
    json_t *v = NULL;
    bool ndjson = ct && (strcasestr(ct, "ndjson") || strcasestr(ct, "x-ndjson"));
    if (!ndjson) {
        json_error_t je;
        v = json_loadb((const char *)b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (v)
            json_object_set_new(out, "inlinedJsonBody", v);
    }
    if (!v) {
        /* NDJSON: every non-empty line a JSON value (bulk, msearch) */
        json_t *arr = json_array();
        const char *p = (const char *)b.data, *end = p + b.len;
        bool ok = true;
        while (p < end && ok) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (l && !(l == 1 && *p == '\r')) {
                json_error_t je;
                json_t *line = json_loadb(p, l, JSON_DECODE_ANY, &je);
                if (line)
                    json_array_append_new(arr, line);
                else
                    ok = false;
            }
            p += l + 1;
        }
        if (ok && json_array_size(arr)) {
            json_object_set_new(out, "inlinedJsonSequenceBodies", arr);
            v = arr;
        } else {
            json_decref(arr);
        }
    }
    if (!v) {
        if (ct && strcasestr(ct, "x-www-form-urlencoded") && valid_utf8(b.data, b.len))
            json_object_set_new(out, "inlinedFormEncodedBody", json_stringn((char *)b.data, b.len));
        else if (valid_utf8(b.data, b.len) && !memchr(b.data, 0, b.len))
            json_object_set_new(out, "inlinedTextBody", json_stringn((char *)b.data, b.len));
        else {
            char *enc = sm_malloc(sm_base64_enc_len(b.len) + 1);
            if (enc) {
                sm_base64_encode(b.data, b.len, enc);
                json_object_set_new(out, "inlinedBase64Body", json_string(enc));
                sm_free(enc);
            }
        }
    }
    sm_buf_free(&b);
    return out;
}

json_t *replay_tuple_msg_json(const struct replay_http_msg *msg, int64_t response_time_ms)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < msg->n_headers; i++) {
        const char *n = msg->headers[i].name;
        json_t *arr = json_object_get(o, n);
        if (!arr) {
            arr = json_array();
            json_object_set_new(o, n, arr);
        }
        json_array_append_new(arr, json_string(msg->headers[i].value));
    }
    char ver[16];
    if (msg->http_major >= 0 && msg->http_major <= 9 && msg->http_minor >= 0 && msg->http_minor <= 9) {
        memcpy(ver, "HTTP/1.1", 9);          /* no snprintf per message: it showed in profiles */
        ver[5] = (char)('0' + msg->http_major);
        ver[7] = (char)('0' + msg->http_minor);
    } else {
        snprintf(ver, sizeof(ver), "HTTP/%d.%d", msg->http_major, msg->http_minor);
    }
    if (msg->is_request) {
        json_object_set_new(o, "Method", json_string(msg->method));
        json_object_set_new(o, "Request-URI", json_string(msg->uri));
        json_object_set_new(o, "HTTP-Version", json_string(ver));
    } else {
        json_object_set_new(o, "HTTP-Version", json_string(ver));
        json_object_set_new(o, "Status-Code", json_integer(msg->status));
        json_object_set_new(o, "Reason-Phrase", json_string(msg->reason ? msg->reason : ""));
        if (response_time_ms >= 0)
            json_object_set_new(o, "response_time_ms", json_integer(response_time_ms));
    }
    json_t *p = replay_tuple_payload(msg);
    json_object_set_new(o, "payload", p ? p : json_object());
    return o;
}

struct replay_tuple_writer {
    char *dir;
    bool gzip, to_stdout;
    uint64_t rotate, cur_bytes, count;
    unsigned seq;
    FILE *f;
    gzFile gz;
    struct sm_buf line;            /* one serialised tuple */
};

static int open_next(struct replay_tuple_writer *w)
{
    char path[4096];
    for (;;) {
        w->seq++;
        snprintf(path, sizeof(path), "%s/tuples-%06u.log%s", w->dir, w->seq, w->gzip ? ".gz" : "");
        struct stat st;
        if (stat(path, &st) < 0)
            break;   /* never overwrite earlier results */
    }
    if (w->gzip) {
        w->gz = gzopen(path, "wb6");
        if (!w->gz)
            return SM_EIO;
    } else {
        w->f = fopen(path, "wb");
        if (!w->f)
            return SM_EIO;
        setvbuf(w->f, NULL, _IOFBF, 1u << 20);   /* a write per ~1000 tuples, not per 3 */
    }
    w->cur_bytes = 0;
    return SM_OK;
}

static void close_cur(struct replay_tuple_writer *w)
{
    if (w->gz)
        gzclose(w->gz);
    if (w->f && !w->to_stdout)
        fclose(w->f);
    w->gz = NULL;
    w->f = NULL;
}

struct replay_tuple_writer *replay_tuple_writer_open(const char *dir, bool gzip, uint64_t rotate_bytes,
                                                     char *err, size_t errlen)
{
    struct replay_tuple_writer *w = sm_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->rotate = rotate_bytes;
    sm_buf_init(&w->line, (size_t)1 << 31);
    if (!strcmp(dir, "-")) {
        w->to_stdout = true;
        w->f = stdout;
        return w;
    }
    w->gzip = gzip;
    w->dir = sm_strdup(dir);
    if (!w->dir || (mkdir(dir, 0755) < 0 && errno != EEXIST) || open_next(w)) {
        sm_errf(err, errlen, SM_EIO, "tuples dir %s: %s", dir, strerror(errno));
        close_cur(w);
        sm_buf_free(&w->line);
        sm_free(w->dir);
        sm_free(w);
        return NULL;
    }
    return w;
}

/* ---- JSON serialisation ----
 * Same bytes as json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) (keys in
 * insertion order, \uXXXX uppercase for non-ASCII and control characters,
 * reals as %.17g with ".0" added), at a fraction of the cost: jansson's dump
 * goes through a callback per token and escapes per character, which was a
 * fifth of the replayer's CPU. */

static const char hexd[] = "0123456789ABCDEF";

static inline int app(struct sm_buf *o, const void *p, size_t n)
{
    if (o->len + n <= o->cap) {
        memcpy(o->data + o->len, p, n);
        o->len += n;
        return SM_OK;
    }
    return sm_buf_append(o, p, n);
}

static int put_u16(struct sm_buf *o, unsigned cp)
{
    char seq[6] = { '\\', 'u', hexd[(cp >> 12) & 15], hexd[(cp >> 8) & 15], hexd[(cp >> 4) & 15], hexd[cp & 15] };
    return app(o, seq, 6);
}

static int dump_str(struct sm_buf *o, const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    int rc = o->len + n + 2 <= o->cap ? SM_OK : sm_buf_reserve(o, n + 2);
    if (rc)
        return rc;
    o->data[o->len++] = '"';
    while (p < end) {
        const uint8_t *q = p;
        while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
            q++;
        if (q > p && (rc = app(o, p, (size_t)(q - p))))
            return rc;
        p = q;
        if (p == end)
            break;
        uint8_t c = *p;
        if (c < 0x80) {
            const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                            : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            rc = esc ? app(o, esc, 2) : put_u16(o, c);
            p++;
        } else {
            /* jansson strings are valid UTF-8 */
            unsigned cp;
            size_t k;
            if ((c & 0xE0) == 0xC0) {
                cp = c & 0x1F;
                k = 1;
            } else if ((c & 0xF0) == 0xE0) {
                cp = c & 0x0F;
                k = 2;
            } else {
                cp = c & 0x07;
                k = 3;
            }
            if ((size_t)(end - p) <= k)
                return SM_EINVAL;
            for (size_t i = 1; i <= k; i++)
                cp = (cp << 6) | (p[i] & 0x3F);
            p += k + 1;
            if (cp < 0x10000) {
                rc = put_u16(o, cp);
            } else {
                cp -= 0x10000;
                rc = put_u16(o, 0xD800 | (cp >> 10));
                if (!rc)
                    rc = put_u16(o, 0xDC00 | (cp & 0x3FF));
            }
        }
        if (rc)
            return rc;
    }
    return app(o, "\"", 1);
}

int replay_tuple_dump(const json_t *v, struct sm_buf *o)
{
    char num[64];
    int rc;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if ((rc = app(o, "{", 1)))
            return rc;
        bool first = true;
        const char *k;
        json_t *x;
        void *it = json_object_iter((json_t *)(uintptr_t)v);
        for (; it; it = json_object_iter_next((json_t *)(uintptr_t)v, it)) {
            k = json_object_iter_key(it);
            x = json_object_iter_value(it);
            if ((!first && (rc = app(o, ",", 1))) || (rc = dump_str(o, k, json_object_iter_key_len(it))) ||
                (rc = app(o, ":", 1)) || (rc = replay_tuple_dump(x, o)))
                return rc;
            first = false;
        }
        return app(o, "}", 1);
    }
    case JSON_ARRAY: {
        if ((rc = app(o, "[", 1)))
            return rc;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i && (rc = app(o, ",", 1))) || (rc = replay_tuple_dump(json_array_get(v, i), o)))
                return rc;
        return app(o, "]", 1);
    }
    case JSON_STRING:
        return dump_str(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return app(o, num, (size_t)n);
    }
    case JSON_REAL: {
        /* as jansson: %.17g, a locale comma made a dot, ".0" when integral */
        int n = snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        if (n < 0 || n >= (int)sizeof(num) - 3)
            return SM_EINVAL;
        char *c = strchr(num, ',');
        if (c)
            *c = '.';
        char *ex = strchr(num, 'e');
        if (ex) {       /* "e+300" -> "e300", "e-05" -> "e-5" */
            char *d = ex + 1, *s = ex + 1;
            if (*s == '+')
                s++;
            else if (*s == '-')
                *d++ = *s++;
            while (*s == '0' && s[1])
                s++;
            memmove(d, s, strlen(s) + 1);
            n = (int)strlen(num);
        } else if (!strchr(num, '.')) {
            memcpy(num + n, ".0", 3);
            n += 2;
        }
        return app(o, num, (size_t)n);
    }
    case JSON_TRUE:
        return app(o, "true", 4);
    case JSON_FALSE:
        return app(o, "false", 5);
    default:
        return app(o, "null", 4);
    }
}

int replay_tuple_writer_write(struct replay_tuple_writer *w, const json_t *tuple)
{
    sm_buf_reset(&w->line);
    int rc = replay_tuple_dump(tuple, &w->line);
    if (rc)
        return rc;
    const char *s = (const char *)w->line.data;
    size_t n = w->line.len;
    if (w->gz) {
        if (gzwrite(w->gz, s, (unsigned)n) != (int)n || gzputc(w->gz, '\n') < 0)
            rc = SM_EIO;
    } else if (fwrite(s, 1, n, w->f) != n || fputc('\n', w->f) == EOF) {
        rc = SM_EIO;
    }
    if (rc)
        return rc;
    w->count++;
    w->cur_bytes += n + 1;
    if (w->rotate && !w->to_stdout && w->cur_bytes >= w->rotate) {
        close_cur(w);
        rc = open_next(w);
    }
    return rc;
}

int replay_tuple_writer_flush(struct replay_tuple_writer *w)
{
    if (w->gz)
        return gzflush(w->gz, Z_SYNC_FLUSH) == Z_OK ? SM_OK : SM_EIO;
    if (w->f)
        return fflush(w->f) ? SM_EIO : SM_OK;
    return SM_OK;
}

uint64_t replay_tuple_writer_count(const struct replay_tuple_writer *w)
{
    return w->count;
}

int replay_tuple_writer_close(struct replay_tuple_writer *w)
{
    if (!w)
        return SM_OK;
    int rc = replay_tuple_writer_flush(w);
    close_cur(w);
    sm_buf_free(&w->line);
    sm_free(w->dir);
    sm_free(w);
    return rc;
}
