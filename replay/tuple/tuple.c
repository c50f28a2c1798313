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
    snprintf(ver, sizeof(ver), "HTTP/%d.%d", msg->http_major, msg->http_minor);
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
        sm_free(w->dir);
        sm_free(w);
        return NULL;
    }
    return w;
}

int replay_tuple_writer_write(struct replay_tuple_writer *w, const json_t *tuple)
{
    char *s = json_dumps(tuple, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!s)
        return SM_ENOMEM;
    size_t n = strlen(s);
    int rc = SM_OK;
    if (w->gz) {
        if (gzwrite(w->gz, s, (unsigned)n) != (int)n || gzputc(w->gz, '\n') < 0)
            rc = SM_EIO;
    } else if (fwrite(s, 1, n, w->f) != n || fputc('\n', w->f) == EOF) {
        rc = SM_EIO;
    }
    free(s);
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
    sm_free(w->dir);
    sm_free(w);
    return rc;
}
