#define _GNU_SOURCE 1 /* strcasestr */
#include "tuple/tuple.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/utf8.h>
#include <sm/util.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

/* jansson's own check (overlong forms and surrogates refused): a body it
 * would refuse as a string goes to inlinedBase64Body instead of vanishing */
static bool valid_utf8(const uint8_t *s, size_t n)
{
    /* ASCII (header names and values, mostly) eight bytes at a time */
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if (x & 0x8080808080808080ull)
            break;
    }
    while (i < n && s[i] < 0x80)
        i++;
    return i == n || sm_utf8_valid(s + i, n - i);
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
    bool ndjson = ct && strcasestr(ct, "ndjson");   /* "x-ndjson" too */
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

/* "HTTP/x.y" of a message; no snprintf for the usual one-digit versions (it
 * showed in profiles, once per message). */
static size_t http_version(const struct replay_http_msg *msg, char ver[32])
{
    if (msg->http_major >= 0 && msg->http_major <= 9 && msg->http_minor >= 0 && msg->http_minor <= 9) {
        memcpy(ver, "HTTP/1.1", 9);
        ver[5] = (char)('0' + msg->http_major);
        ver[7] = (char)('0' + msg->http_minor);
        return 8;
    }
    int n = snprintf(ver, 32, "HTTP/%d.%d", msg->http_major, msg->http_minor);
    return n > 0 && n < 32 ? (size_t)n : strlen(ver);
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
            if (json_object_set_new(o, n, arr))   /* name not UTF-8: the header is left out */
                continue;
        }
        json_array_append_new(arr, json_string(msg->headers[i].value));
    }
    char ver[32];
    http_version(msg, ver);
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
    char path[4096];               /* current file */
    FILE *f;                       /* stdout */
    gzFile gz;
    int fd;                        /* plain file, -1: none */
    struct sm_buf line;            /* one serialised tuple */
    char *fbuf;                    /* plain file: lines not yet written */
    size_t fbuf_len;
    uint64_t fbuf_recs;            /* tuples in fbuf */
    uint64_t gz_pending;           /* gzip: tuples since the last successful flush */
    uint64_t lost;                 /* tuples accepted and then not written (write errors) */
    uint64_t gz_retry_ms;          /* broken gzip stream: no new file before this time */
    uint64_t gz_retry_wait_ms;     /* how long that is (10 s) */
    struct sm_ratelimit rl;
};

#define TUPLE_FILE_BUF ((size_t)1 << 20)

static void tuples_lost(struct replay_tuple_writer *w, uint64_t n, int e)
{
    if (!n)
        return;
    w->lost += n;
    uint64_t sup;
    if (sm_log_ratelimited(&w->rl, 10000, &sup))
        sm_log_err("tuples: writing %s failed: %s: %" PRIu64 " tuple%s lost (%" PRIu64 " in all; "
                   "%" PRIu64 " more messages suppressed)", w->to_stdout ? "stdout" : w->path, strerror(e), n,
                   n == 1 ? "" : "s", w->lost, sup);
}

/* Appends iov to the current plain file, whole or not at all
 * (sm_fd_append_whole); a failure loses the tuples it held (counted, logged). */
static int append_whole(struct replay_tuple_writer *w, const struct iovec *iov, int iovcnt, uint64_t recs)
{
    int cut, e = sm_fd_append_whole(w->fd, iov, iovcnt, &cut);
    if (!e)
        return SM_OK;
    if (cut < 0)
        sm_log_err("tuples: %s: cutting off a partial write: %s", w->path, strerror(errno));
    tuples_lost(w, recs, e);
    return SM_EIO;
}

/* Writes the batched lines of a plain file (one write per ~1000 tuples). */
static int batch_out(struct replay_tuple_writer *w)
{
    if (!w->fbuf_len || w->fd < 0)
        return SM_OK;
    struct iovec iov = { w->fbuf, w->fbuf_len };
    uint64_t recs = w->fbuf_recs;
    w->fbuf_len = 0;
    w->fbuf_recs = 0;
    return append_whole(w, &iov, 1, recs);
}

static int open_next(struct replay_tuple_writer *w)
{
    for (;;) {
        w->seq++;
        snprintf(w->path, sizeof(w->path), "%s/tuples-%06u.log%s", w->dir, w->seq, w->gzip ? ".gz" : "");
        struct stat st;
        if (stat(w->path, &st) < 0)
            break;   /* never overwrite earlier results */
    }
    if (w->gzip) {
        w->gz = gzopen(w->path, "wb6");
        if (!w->gz)
            return SM_EIO;
    } else {
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (w->fd < 0)
            return SM_EIO;
        if (!w->fbuf && !(w->fbuf = sm_malloc(TUPLE_FILE_BUF))) {
            close(w->fd);
            w->fd = -1;
            return SM_ENOMEM;
        }
    }
    w->cur_bytes = 0;
    return SM_OK;
}

static int close_cur(struct replay_tuple_writer *w)
{
    int rc = SM_OK;
    if (w->gz) {
        if (gzclose(w->gz) != Z_OK) {
            tuples_lost(w, w->gz_pending, errno ? errno : EIO);
            rc = SM_EIO;
        }
        w->gz_pending = 0;
    }
    if (w->fd >= 0) {
        rc = batch_out(w);
        if (close(w->fd) != 0 && rc == SM_OK)
            rc = SM_EIO;
    }
    w->gz = NULL;
    w->fd = -1;
    if (w->f && !w->to_stdout)
        fclose(w->f);
    w->f = NULL;
    return rc;
}

/* A gzip stream that failed to write is broken for good: closed (what it still
 * holds is counted lost already), so the next tuple opens a new file. */
static void gz_abandon(struct replay_tuple_writer *w)
{
    w->gz_pending = 0;
    gzclose(w->gz);
    w->gz = NULL;
    w->gz_retry_ms = sm_now_ms() + w->gz_retry_wait_ms;   /* not a new file per tuple while the disk is full */
}

void replay_tuple_writer_set_gz_retry(struct replay_tuple_writer *w, uint64_t ms)
{
    w->gz_retry_wait_ms = ms;
}

struct replay_tuple_writer *replay_tuple_writer_open(const char *dir, bool gzip, uint64_t rotate_bytes,
                                                     char *err, size_t errlen)
{
    struct replay_tuple_writer *w = sm_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->fd = -1;
    w->gz_retry_wait_ms = 10000;
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
        sm_free(w->fbuf);
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

/* First byte at or after p that a JSON string cannot carry as is (control
 * character, non-ASCII, '"' or '\\'), or end; eight bytes at a time. */
static inline const uint8_t *plain_run(const uint8_t *p, const uint8_t *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t bad = (x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (bad)
            break;
        p += 8;
    }
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* one character that plain_run() stops at, written as dump_str() writes
 * it; p advances past it. SM_EPROTO for a byte that does not start a valid
 * UTF-8 sequence (as sm_utf8_valid() decides). */
static int dump_special(struct sm_buf *o, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint8_t c = *p;
    int rc;
    if (c < 0x80) {
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                        : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        rc = esc ? app(o, esc, 2) : put_u16(o, c);
        p++;
    } else {
        size_t k = sm_utf8_seq_len(p, (size_t)(end - p));
        if (!k)
            return SM_EPROTO;
        unsigned cp = c & (k == 2 ? 0x1F : k == 3 ? 0x0F : 0x07);
        for (size_t i = 1; i < k; i++)
            cp = (cp << 6) | (p[i] & 0x3F);
        p += k;
        if (cp < 0x10000) {
            rc = put_u16(o, cp);
        } else {
            cp -= 0x10000;
            rc = put_u16(o, 0xD800 | (cp >> 10));
            if (!rc)
                rc = put_u16(o, 0xDC00 | (cp & 0x3FF));
        }
    }
    *pp = p;
    return rc;
}

/* s[0..n) as a JSON string. SM_EPROTO (o unchanged) when it is not valid
 * UTF-8: json_string() refuses such a string, and the callers leave it out. */
static int dump_str(struct sm_buf *o, const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    int rc;
    if (o->len + n + 2 > o->cap && (rc = sm_buf_reserve(o, n + 2)))
        return rc;
    size_t mark = o->len;
    uint8_t *w = o->data + o->len;
    *w++ = '"';
    for (;;) {
        /* the plain run (as plain_run() finds it) copied as it is scanned,
         * a word at a time: the room reserved holds the rest of the string
         * as it is plus the closing quote */
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
            if ((x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs)
                break;
            memcpy(w, &x, 8);
            w += 8;
            p += 8;
        }
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            *w++ = *p++;
        if (p == end)
            break;
        o->len = (size_t)(w - o->data);
        if ((rc = dump_special(o, &p, end))) {
            if (rc == SM_EPROTO)
                o->len = mark;
            return rc;
        }
        if (o->len + (size_t)(end - p) + 1 > o->cap && (rc = sm_buf_reserve(o, (size_t)(end - p) + 1)))
            return rc;
        w = o->data + o->len;
    }
    *w++ = '"';
    o->len = (size_t)(w - o->data);
    return SM_OK;
}

/* as jansson: %.17g, a locale comma made a dot, ".0" when integral; the
 * length, or -1 */
static int fmt_real(double x, char num[64])
{
    int n = snprintf(num, 64, "%.17g", x);
    if (n < 0 || n >= 64 - 3)
        return -1;
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
    return n;
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
        int n = fmt_real(json_real_value(v), num);
        return n < 0 ? SM_EINVAL : app(o, num, (size_t)n);
    }
    case JSON_TRUE:
        return app(o, "true", 4);
    case JSON_FALSE:
        return app(o, "false", 5);
    default:
        return app(o, "null", 4);
    }
}

/* ---- tuples straight from the messages ----
 * replay_tuple_msg_dump() writes the bytes replay_tuple_dump() gives for
 * replay_tuple_msg_json() without building the jansson tree (which, with its
 * parsed JSON payloads, its conversion for the comparison and freeing it,
 * was about a quarter of the replayer's CPU). JSON payloads are validated and
 * re-emitted in jansson's canonical form in one pass (canon_*). The fast path
 * only accepts what jansson accepts and gives what jansson's load + dump
 * give; whatever it is unsure of (\u0000, duplicate keys, numbers out of
 * range, deep nesting, any syntax error) goes to jansson itself, so the
 * result is jansson's by construction. */

#define CANON_MAX_DEPTH 500         /* jansson allows 2048: deeper goes to jansson */

struct canon_key {
    size_t off, len;                /* the key as emitted (quotes included) */
    uint64_t hash;
};

struct canon {
    struct sm_buf *o;
    const uint8_t *p, *end;
    int depth;
    struct replay_tuple_scratch *s;
};

static inline void canon_ws(struct canon *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* one code point the way dump_str() writes it */
static int emit_cp(struct sm_buf *o, unsigned cp)
{
    if (cp >= 0x80) {
        if (cp < 0x10000)
            return put_u16(o, cp);
        cp -= 0x10000;
        int rc = put_u16(o, 0xD800 | (cp >> 10));
        return rc ? rc : put_u16(o, 0xDC00 | (cp & 0x3FF));
    }
    char ch = (char)cp;
    const char *esc = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : cp == '\b' ? "\\b" : cp == '\f' ? "\\f"
                    : cp == '\n' ? "\\n" : cp == '\r' ? "\\r" : cp == '\t' ? "\\t" : NULL;
    if (esc)
        return app(o, esc, 2);
    return cp < 0x20 ? put_u16(o, cp) : app(o, &ch, 1);
}

static int hex4v(const uint8_t *s, const uint8_t *end)
{
    if (end - s < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t h = s[i];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* at the opening quote */
static bool canon_string(struct canon *c)
{
    struct sm_buf *o = c->o;
    const uint8_t *p = c->p + 1, *end = c->end;
    if (app(o, "\"", 1))
        return false;
    for (;;) {
        const uint8_t *q = plain_run(p, end);
        if (q > p && app(o, p, (size_t)(q - p)))
            return false;
        p = q;
        if (p >= end)
            return false;
        uint8_t ch = *p;
        if (ch == '"')
            break;
        if (ch < 0x20)
            return false;                           /* control character: jansson refuses it */
        unsigned cp;
        if (ch == '\\') {
            if (end - p < 2)
                return false;
            switch (p[1]) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                int v = hex4v(p + 2, end);
                if (v <= 0)
                    return false;                   /* bad escape, or \u0000: jansson decides */
                p += 6;
                cp = (unsigned)v;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return false;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4v(p + 2, end) : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return false;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
                    p += 6;
                }
                if (emit_cp(o, cp))
                    return false;
                continue;
            }
            default:
                return false;
            }
            p += 2;
        } else {
            size_t k = sm_utf8_seq_len(p, (size_t)(end - p));
            if (!k)
                return false;
            cp = ch & (k == 2 ? 0x1F : k == 3 ? 0x0F : 0x07);
            for (size_t i = 1; i < k; i++)
                cp = (cp << 6) | (p[i] & 0x3F);
            p += k;
        }
        if (emit_cp(o, cp))
            return false;
    }
    c->p = p + 1;
    return !app(o, "\"", 1);
}

static bool canon_number(struct canon *c)
{
    const uint8_t *s = c->p, *q = s, *end = c->end;
    bool neg = false;
    if (q < end && *q == '-') {
        neg = true;
        q++;
    }
    if (q >= end || *q < '0' || *q > '9')
        return false;
    if (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9')
        return false;                               /* leading zero */
    const uint8_t *ds = q;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    size_t nd = (size_t)(q - ds);
    bool real = false;
    if (q < end && *q == '.') {
        real = true;
        q++;
        if (q >= end || *q < '0' || *q > '9')
            return false;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        real = true;
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || *q < '0' || *q > '9')
            return false;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    c->p = q;
    char num[64];
    if (!real) {
        if (nd > 18)
            return false;                           /* may not fit: strtoll's range check in jansson */
        uint64_t v = 0;
        for (const uint8_t *d = ds; d < ds + nd; d++)
            v = v * 10 + (uint64_t)(*d - '0');
        size_t w = 0;
        if (neg && v)
            num[w++] = '-';                         /* "-0" is the integer 0 */
        w += sm_fmt_u64(num + w, v);
        return !app(c->o, num, w);
    }
    size_t len = (size_t)(q - s);
    if (len >= sizeof(num))
        return false;
    memcpy(num, s, len);
    num[len] = 0;
    char *e;
    errno = 0;
    double d = strtod(num, &e);
    if (e != num + len || (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL)))
        return false;                               /* overflow: jansson refuses it */
    int n = fmt_real(d, num);
    return n >= 0 && !app(c->o, num, (size_t)n);
}

static uint64_t key_hash(const uint8_t *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static int key_cmp(const void *a, const void *b)
{
    const struct canon_key *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* duplicate keys among keys[base..n): jansson keeps the first position with
 * the last value; that case goes to jansson */
static bool keys_unique(struct canon *c, size_t base)
{
    struct canon_key *k = c->s->keys + base;
    size_t n = c->s->nkeys - base;
    const uint8_t *data = c->o->data;
    if (n <= 8) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (k[i].len == k[j].len && !memcmp(data + k[i].off, data + k[j].off, k[i].len))
                    return false;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        k[i].hash = key_hash(data + k[i].off, k[i].len);
    qsort(k, n, sizeof(*k), key_cmp);
    for (size_t i = 1; i < n; i++)
        if (k[i].hash == k[i - 1].hash && k[i].len == k[i - 1].len &&
            !memcmp(data + k[i].off, data + k[i - 1].off, k[i].len))
            return false;
    return true;
}

static bool canon_value(struct canon *c)
{
    canon_ws(c);
    if (c->p >= c->end)
        return false;
    uint8_t ch = *c->p;
    if (ch == '"')
        return canon_string(c);
    if (ch == '{' || ch == '[') {
        bool obj = ch == '{';
        uint8_t close = obj ? '}' : ']';
        if (++c->depth > CANON_MAX_DEPTH || app(c->o, &ch, 1))
            return false;
        c->p++;
        canon_ws(c);
        size_t base = c->s->nkeys;
        if (c->p < c->end && *c->p == close) {
            c->p++;
        } else {
            for (bool first = true;; first = false) {
                if (!first && app(c->o, ",", 1))
                    return false;
                if (obj) {
                    canon_ws(c);
                    if (c->p >= c->end || *c->p != '"')
                        return false;
                    struct replay_tuple_scratch *s = c->s;
                    if (sm_grow(&s->keys, &s->kcap, s->nkeys, sizeof(*s->keys), 64))
                        return false;
                    size_t off = c->o->len;
                    if (!canon_string(c))
                        return false;
                    s->keys[s->nkeys++] = (struct canon_key){ off, c->o->len - off, 0 };
                    canon_ws(c);
                    if (c->p >= c->end || *c->p != ':' || app(c->o, ":", 1))
                        return false;
                    c->p++;
                }
                if (!canon_value(c))
                    return false;
                canon_ws(c);
                if (c->p >= c->end)
                    return false;
                if (*c->p == ',') {
                    c->p++;
                    continue;
                }
                if (*c->p != close)
                    return false;
                c->p++;
                break;
            }
        }
        if (obj && c->s->nkeys - base > 1 && !keys_unique(c, base))
            return false;
        c->s->nkeys = base;
        c->depth--;
        return !app(c->o, &close, 1);
    }
    if (ch == 't' && c->end - c->p >= 4 && !memcmp(c->p, "true", 4)) {
        c->p += 4;
        return !app(c->o, "true", 4);
    }
    if (ch == 'f' && c->end - c->p >= 5 && !memcmp(c->p, "false", 5)) {
        c->p += 5;
        return !app(c->o, "false", 5);
    }
    if (ch == 'n' && c->end - c->p >= 4 && !memcmp(c->p, "null", 4)) {
        c->p += 4;
        return !app(c->o, "null", 4);
    }
    return canon_number(c);
}

int replay_tuple_json_canon(const void *text, size_t len, bool allow_nul, struct sm_buf *o,
                            struct replay_tuple_scratch *s)
{
    size_t mark = o->len;
    struct canon c = { o, text, (const uint8_t *)text + len, 0, s };
    s->nkeys = 0;
    if (canon_value(&c)) {
        canon_ws(&c);
        if (c.p == c.end)
            return SM_OK;
    }
    o->len = mark;
    s->fallbacks++;
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | (allow_nul ? JSON_ALLOW_NUL : 0), &je);
    if (!v)
        return SM_EPROTO;
    int rc = replay_tuple_dump(v, o);
    json_decref(v);
    if (rc)
        o->len = mark;
    return rc;
}

void replay_tuple_scratch_free(struct replay_tuple_scratch *s)
{
    sm_buf_free(&s->body);
    sm_free(s->keys);
    s->keys = NULL;
    s->nkeys = s->kcap = 0;
}

/* strcasestr(s, lw) != NULL for a lowercase ASCII needle, without glibc's
 * two-way setup (it showed in profiles: once per message, for a
 * Content-Type of ~20 bytes) */
static bool contains_ci(const char *s, const char *lw)
{
    for (; *s; s++) {
        size_t i = 0;
        while (lw[i] && (s[i] == lw[i] || (s[i] >= 'A' && s[i] <= 'Z' && s[i] + ('a' - 'A') == lw[i])))
            i++;
        if (!lw[i])
            return true;
    }
    return false;
}

/* "payload":{...} of msg (same bytes as for replay_tuple_payload()) */
static int payload_dump(const struct replay_http_msg *msg, struct sm_buf *o, struct replay_tuple_scratch *s)
{
    const uint8_t *b;
    size_t blen;
    /* the first Content-Encoding and Content-Type (replay_http_header()'s
     * answers) in one pass, names not starting with 'c' skipped at once */
    const char *ce = NULL, *ct = NULL;
    for (size_t i = 0; i < msg->n_headers && !(ce && ct); i++) {
        const char *nm = msg->headers[i].name;
        if ((nm[0] | 0x20) != 'c')
            continue;
        if (!ce && !strcasecmp(nm, "content-encoding"))
            ce = msg->headers[i].value;
        else if (!ct && !strcasecmp(nm, "content-type"))
            ct = msg->headers[i].value;
    }
    if (!ce || (strcasecmp(ce, "gzip") && strcasecmp(ce, "deflate"))) {
        b = msg->body;                              /* no copy when there is nothing to inflate */
        blen = msg->body_len;
    } else {
        if (!s->body.max)
            sm_buf_init(&s->body, (size_t)1 << 31);
        sm_buf_reset(&s->body);
        if (replay_http_body_decoded(msg, &s->body) != SM_OK) {
            sm_buf_reset(&s->body);             /* not decodable: keep the raw bytes */
            if (msg->body_len && sm_buf_append(&s->body, msg->body, msg->body_len))
                return app(o, "\"payload\":{}", 12);
        }
        b = s->body.data;
        blen = s->body.len;
    }
    if (!blen)
        return app(o, "\"payload\":{}", 12);
    int rc;
    size_t mark = o->len;
    /* "x-ndjson" too; the usual type answered without the scan */
    bool ndjson = ct && strcasecmp(ct, "application/json") && contains_ci(ct, "ndjson");
    if (!ndjson) {
        if ((rc = app(o, "\"payload\":{\"inlinedJsonBody\":", 29)))
            return rc;
        if (replay_tuple_json_canon(b, blen, true, o, s) == SM_OK)
            return app(o, "}", 1);
        o->len = mark;
    }
    /* NDJSON: every non-empty line a JSON value (bulk, msearch) */
    if ((rc = app(o, "\"payload\":{\"inlinedJsonSequenceBodies\":[", 40)))
        return rc;
    const char *p = (const char *)b, *end = p + blen;
    size_t count = 0;
    bool ok = true;
    while (p < end && ok) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (l && !(l == 1 && *p == '\r')) {
            if (count && app(o, ",", 1))
                ok = false;
            else if (replay_tuple_json_canon(p, l, false, o, s) == SM_OK)
                count++;
            else
                ok = false;
        }
        p += l + 1;
    }
    if (ok && count)
        return app(o, "]}", 2);
    o->len = mark;
    if (ct && contains_ci(ct, "x-www-form-urlencoded") && valid_utf8(b, blen)) {
        if ((rc = app(o, "\"payload\":{\"inlinedFormEncodedBody\":", 36)) || (rc = dump_str(o, (const char *)b, blen)))
            return rc;
    } else if (valid_utf8(b, blen) && !memchr(b, 0, blen)) {
        if ((rc = app(o, "\"payload\":{\"inlinedTextBody\":", 29)) || (rc = dump_str(o, (const char *)b, blen)))
            return rc;
    } else {
        size_t el = sm_base64_enc_len(blen);
        if ((rc = app(o, "\"payload\":{\"inlinedBase64Body\":\"", 32)) || (rc = sm_buf_reserve(o, el + 1)))
            return rc;
        o->len += sm_base64_encode(b, blen, (char *)o->data + o->len);
        if ((rc = app(o, "\"", 1)))
            return rc;
    }
    return app(o, "}", 1);
}

/* keys replay_tuple_msg_json() sets after the headers: a header of that name
 * would be replaced in place, so such a message takes the jansson path */
static bool reserved_key(const char *n)
{
    switch (n[0]) {
    case 'M': return !strcmp(n, "Method");
    case 'R': return !strcmp(n, "Request-URI") || !strcmp(n, "Reason-Phrase");
    case 'H': return !strcmp(n, "HTTP-Version");
    case 'S': return !strcmp(n, "Status-Code");
    case 'r': return !strcmp(n, "response_time_ms");
    case 'p': return !strcmp(n, "payload");
    default: return false;
    }
}

/* "key":"s" as json_object_set_new(o, key, json_string(s)) gives it: left
 * out when s is NULL or not UTF-8 */
static int put_str_member(struct sm_buf *o, const char *key, size_t klen, const char *s)
{
    if (!s)
        return SM_OK;
    size_t mark = o->len;
    int rc;
    if ((rc = app(o, key, klen)) || (rc = dump_str(o, s, strlen(s))) || (rc = app(o, ",", 1))) {
        if (rc == SM_EPROTO) {
            o->len = mark;                          /* not UTF-8: left out */
            return SM_OK;
        }
        return rc;
    }
    return SM_OK;
}

static int put_int(struct sm_buf *o, int64_t v)
{
    char num[21];
    return app(o, num, sm_fmt_i64(num, v));
}

int replay_tuple_msg_dump(const struct replay_http_msg *msg, int64_t response_time_ms, struct sm_buf *o,
                          struct replay_tuple_scratch *s, size_t *payload_off)
{
    size_t mark = o->len;
    int rc;
    if (payload_off)
        *payload_off = SIZE_MAX;
    /* name lengths, so that grouping compares names of one length only */
    size_t lens_small[32], *lens = msg->n_headers <= 32 ? lens_small : NULL;
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (reserved_key(msg->headers[i].name)) {
            json_t *t = replay_tuple_msg_json(msg, response_time_ms);
            rc = t ? replay_tuple_dump(t, o) : SM_ENOMEM;
            json_decref(t);
            return rc;
        }
        if (lens)
            lens[i] = strlen(msg->headers[i].name);
    }
    if ((rc = app(o, "{", 1)))
        return rc;
    for (size_t i = 0; i < msg->n_headers; i++) {
        const char *n = msg->headers[i].name;
        size_t nl = lens ? lens[i] : strlen(n);
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = (!lens || lens[j] == nl) && !strcmp(msg->headers[j].name, n);
        if (seen)
            continue;                               /* grouped with its first occurrence */
        if ((rc = dump_str(o, n, nl)) == SM_EPROTO)
            continue;                               /* not UTF-8 */
        if (rc || (rc = app(o, ":[", 2)))
            goto fail;
        bool first = true;
        for (size_t k = i; k < msg->n_headers; k++) {
            if (k > i && ((lens && lens[k] != nl) || strcmp(msg->headers[k].name, n)))
                continue;
            const char *v = msg->headers[k].value;
            size_t vmark = o->len;
            if ((!first && (rc = app(o, ",", 1))) || (rc = dump_str(o, v, strlen(v)))) {
                if (rc != SM_EPROTO)
                    goto fail;
                o->len = vmark;                     /* json_string() refuses it */
                continue;
            }
            first = false;
        }
        if ((rc = app(o, "],", 2)))
            goto fail;
    }
    /* "HTTP-Version":"HTTP/d.d", (digits, maybe a '-': nothing to escape
     * or check) written in one piece */
    char vm[56] = "\"HTTP-Version\":\"";
    size_t vml = 16 + http_version(msg, vm + 16);
    vm[vml++] = '"';
    vm[vml++] = ',';
    if (msg->is_request) {
        if ((rc = put_str_member(o, "\"Method\":", 9, msg->method)) ||
            (rc = put_str_member(o, "\"Request-URI\":", 14, msg->uri)) || (rc = app(o, vm, vml)))
            goto fail;
    } else {
        if ((rc = app(o, vm, vml)) || (rc = app(o, "\"Status-Code\":", 14)) ||
            (rc = put_int(o, msg->status)) || (rc = app(o, ",", 1)) ||
            (rc = put_str_member(o, "\"Reason-Phrase\":", 16, msg->reason ? msg->reason : "")))
            goto fail;
        if (response_time_ms >= 0 && ((rc = app(o, "\"response_time_ms\":", 19)) ||
                                      (rc = put_int(o, response_time_ms)) || (rc = app(o, ",", 1))))
            goto fail;
    }
    if (payload_off)
        *payload_off = o->len + 10;                 /* after "payload": */
    if ((rc = payload_dump(msg, o, s)) || (rc = app(o, "}", 1)))
        goto fail;
    return SM_OK;
fail:
    o->len = mark;
    if (payload_off)
        *payload_off = SIZE_MAX;
    return rc;
}

/* one part of the comparison's view: the message's JSON, or (direct path)
 * only the members the comparison reads */
static int view_part(struct sm_buf *out, const struct sm_buf *line, const char *key, const struct replay_tuple_part *pt)
{
    int rc;
    if ((rc = app(out, key, strlen(key))))
        return rc;
    if (pt->payload_off == SIZE_MAX || pt->payload_off >= pt->off + pt->len)
        return app(out, line->data + pt->off, pt->len);
    const struct replay_http_msg *m = pt->msg;
    if ((rc = app(out, "{", 1)))
        return rc;
    if (m->is_request) {
        if ((rc = put_str_member(out, "\"Method\":", 9, m->method)) ||
            (rc = put_str_member(out, "\"Request-URI\":", 14, m->uri)))
            return rc;
    } else if ((rc = app(out, "\"Status-Code\":", 14)) || (rc = put_int(out, m->status)) || (rc = app(out, ",", 1))) {
        return rc;
    }
    if ((rc = app(out, "\"payload\":", 10)) ||
        (rc = app(out, line->data + pt->payload_off, pt->off + pt->len - 1 - pt->payload_off)))
        return rc;
    return app(out, "}", 1);
}

int replay_tuple_cmp_view(const struct sm_buf *line, const struct replay_tuple_parts *parts, struct sm_buf *out)
{
    int rc = app(out, "{", 1);
    const char *sep = "";
    if (!rc && parts->req.msg) {
        rc = view_part(out, line, "\"sourceRequest\":", &parts->req);
        sep = ",";
    }
    if (!rc && parts->src.msg) {
        rc = view_part(out, line, *sep ? ",\"sourceResponse\":" : "\"sourceResponse\":", &parts->src);
        sep = ",";
    }
    if (!rc)
        rc = app(out, sep, strlen(sep));
    if (!rc)
        rc = parts->tgt.msg ? view_part(out, line, "\"targetResponses\":[", &parts->tgt) : app(out, "\"targetResponses\":[", 19);
    return rc ? rc : app(out, "]}", 2);
}

int replay_tuple_dump_str(struct sm_buf *o, const char *s, size_t n)
{
    return dump_str(o, s, n);
}

int replay_tuple_writer_write_line(struct replay_tuple_writer *w, const void *line, size_t n)
{
    w->count++;   /* every tuple handed in: written ones = count - lost */
    /* no file open (a broken gzip stream below, or a new file that could not be
     * opened at rotation): a new one, tried at most once per gz_retry_wait_ms */
    if (!w->to_stdout && !w->gz && w->fd < 0) {
        int e = 0;
        if (sm_now_ms() < w->gz_retry_ms || (open_next(w) != SM_OK && (e = errno ? errno : EIO))) {
            tuples_lost(w, 1, e ? e : ENOSPC);
            if (e)
                w->gz_retry_ms = sm_now_ms() + w->gz_retry_wait_ms;
            return SM_EIO;
        }
    }
    if (w->gz) {
        if (gzwrite(w->gz, line, (unsigned)n) != (int)n || gzputc(w->gz, '\n') < 0) {
            tuples_lost(w, w->gz_pending + 1, errno ? errno : EIO);
            /* the gzip stream is broken from here: the next tuple starts a new file */
            gz_abandon(w);
            return SM_EIO;
        }
        w->gz_pending++;
    } else if (w->fd >= 0) {
        if (w->fbuf_len + n + 1 > TUPLE_FILE_BUF)
            batch_out(w);               /* a failure loses (and logs) the earlier lines, not this one */
        if (n + 1 > TUPLE_FILE_BUF) {   /* larger than the buffer: the line alone */
            struct iovec iv[2] = { { (void *)line, n }, { (void *)"\n", 1 } };
            if (append_whole(w, iv, 2, 1))
                return SM_EIO;
        } else {
            memcpy(w->fbuf + w->fbuf_len, line, n);
            w->fbuf[w->fbuf_len + n] = '\n';
            w->fbuf_len += n + 1;
            w->fbuf_recs++;
        }
    } else if (!w->f || fwrite(line, 1, n, w->f) != n || fputc('\n', w->f) == EOF) {
        tuples_lost(w, 1, errno ? errno : EIO);
        return SM_EIO;
    }
    w->cur_bytes += n + 1;
    if (w->rotate && !w->to_stdout && w->cur_bytes >= w->rotate) {
        int r2 = close_cur(w);
        int r3 = open_next(w);
        if (r3) {   /* the next tuple tries again (not before the retry wait) */
            sm_log_err("tuples: opening %s: %s", w->path, strerror(errno));
            w->gz_retry_ms = sm_now_ms() + w->gz_retry_wait_ms;
        }
        return r2;   /* this tuple went out with the closed file (or is counted lost) */
    }
    return SM_OK;
}

int replay_tuple_writer_write(struct replay_tuple_writer *w, const json_t *tuple)
{
    sm_buf_reset(&w->line);
    int rc = replay_tuple_dump(tuple, &w->line);
    return rc ? rc : replay_tuple_writer_write_line(w, w->line.data, w->line.len);
}

int replay_tuple_writer_flush(struct replay_tuple_writer *w)
{
    int rc = SM_OK;
    if (w->gz) {
        if (gzflush(w->gz, Z_SYNC_FLUSH) == Z_OK) {
            w->gz_pending = 0;
        } else {
            tuples_lost(w, w->gz_pending, errno ? errno : EIO);
            gz_abandon(w);
            rc = SM_EIO;
        }
    } else if (w->fd >= 0) {
        rc = batch_out(w);
    } else if (w->f && fflush(w->f)) {
        rc = SM_EIO;
    }
    /* sticky: once a tuple is lost, what was written is not everything accepted (the
     * Kafka input commits no offset past it: a restart replays those records) */
    return rc ? rc : w->lost ? SM_EIO : SM_OK;
}

uint64_t replay_tuple_writer_lost(const struct replay_tuple_writer *w)
{
    return w ? w->lost : 0;
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
    int r2 = close_cur(w);
    sm_buf_free(&w->line);
    sm_free(w->fbuf);
    sm_free(w->dir);
    sm_free(w);
    return rc ? rc : r2;
}
