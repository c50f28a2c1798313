/* S3 rfs_dir: ListObjectsV2, HEAD and ranged GETs signed with SigV4 (see s3.h). */
#include "io/s3.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/http.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/sigv4.h>
#include <sm/util.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_POOL_MAX 16
#define S3_DEFAULT_READAHEAD (1u << 20)
#define S3_LIST_MAX_RESPONSE (16u << 20)

struct s3_dir {
    char *bucket;
    char *prefix;                 /* "" or "a/b/" */
    bool path_style;
    char *access_key_id;          /* for 403 messages */
    struct sm_http_opts hopts;    /* copy used to create pooled clients */
    pthread_mutex_t mu;
    pthread_cond_t freed;
    struct sm_http_client *pool[S3_POOL_MAX];
    bool busy[S3_POOL_MAX];
    size_t npool;
    uint64_t readahead;
    _Atomic uint64_t requests, bytes;
};

struct s3_blob {
    struct s3_dir *d;
    char *key;                    /* full object key */
    uint8_t *win;                 /* read-ahead window */
    uint64_t win_off;
    size_t win_len, win_cap;
};

static struct sm_http_client *pool_get(struct s3_dir *d, size_t *slot, char *err, size_t errlen)
{
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->npool; i++) {
        if (!d->busy[i]) {
            d->busy[i] = true;
            *slot = i;
            pthread_mutex_unlock(&d->mu);
            return d->pool[i];
        }
    }
    struct sm_http_client *c = NULL;
    if (d->npool < S3_POOL_MAX) {
        c = sm_http_client_new(&d->hopts, "s3", err, errlen);
        if (c) {
            *slot = d->npool;
            d->pool[d->npool] = c;
            d->busy[d->npool++] = true;
        }
        pthread_mutex_unlock(&d->mu);
        return c;
    }
    /* All S3_POOL_MAX clients busy: wait for one. */
    for (;;) {
        pthread_cond_wait(&d->freed, &d->mu);
        for (size_t i = 0; i < d->npool; i++) {
            if (!d->busy[i]) {
                d->busy[i] = true;
                *slot = i;
                pthread_mutex_unlock(&d->mu);
                return d->pool[i];
            }
        }
    }
}

static void pool_put(struct s3_dir *d, size_t slot)
{
    pthread_mutex_lock(&d->mu);
    d->busy[slot] = false;
    pthread_cond_signal(&d->freed);
    pthread_mutex_unlock(&d->mu);
}

/* Text between <tag> and </tag> starting at *pos, XML entities decoded, into
 * an sm_malloc'd string; advances *pos past it. NULL when absent. */
static char *xml_next(const char *s, const char *tag, const char **pos)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = strstr(*pos ? *pos : s, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b)
        return NULL;
    *pos = b + strlen(close);
    char *out = sm_malloc((size_t)(b - a) + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (const char *p = a; p < b;) {
        static const struct { const char *ent; char c; } ents[] = {
            { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
        };
        bool done = false;
        if (*p == '&') {
            for (size_t i = 0; i < SM_ARRAY_LEN(ents); i++) {
                size_t el = strlen(ents[i].ent);
                if ((size_t)(b - p) >= el && !memcmp(p, ents[i].ent, el)) {
                    out[n++] = ents[i].c;
                    p += el;
                    done = true;
                    break;
                }
            }
            if (!done && p[1] == '#') {
                char *end = NULL;
                long v = p[2] == 'x' ? strtol(p + 3, &end, 16) : strtol(p + 2, &end, 10);
                if (end && *end == ';' && v > 0 && v < 128) {
                    out[n++] = (char)v;
                    p = end + 1;
                    done = true;
                }
            }
        }
        if (!done)
            out[n++] = *p++;
    }
    out[n] = 0;
    return out;
}

/* Describes an S3 error response: "403 SignatureDoesNotMatch: The request
 * signature ... (access key id AKIA...)". */
static int s3_error(struct s3_dir *d, const char *what, const struct sm_http_response *r, char *err,
                    size_t errlen)
{
    char *code = NULL, *msg = NULL;
    if (r->body.len) {
        const char *pos = NULL;
        code = xml_next((const char *)r->body.data, "Code", &pos);
        pos = NULL;
        msg = xml_next((const char *)r->body.data, "Message", &pos);
    }
    int rc;
    if (r->status == 404) {
        rc = sm_errf(err, errlen, SM_ENOTFOUND, "%s: %s (404 %s)", what,
                     code && !strcmp(code, "NoSuchBucket") ? "no such bucket" : "no such key",
                     code ? code : "Not Found");
    } else if (r->status == 403 || r->status == 401) {
        rc = sm_errf(err, errlen, SM_ECONFIG, "%s: access denied (%ld %s%s%s) for access key id %s: check the "
                     "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile), region and bucket policy",
                     what, r->status, code ? code : "Forbidden", msg ? ": " : "", msg ? msg : "",
                     d->access_key_id ? d->access_key_id : "(none)");
    } else {
        rc = sm_errf(err, errlen, sm_http_status_retriable(r->status) ? SM_EAGAIN : SM_EPROTO, "%s: HTTP %ld%s%s%s%s",
                     what, r->status, code ? " " : "", code ? code : "", msg ? ": " : "", msg ? msg : "");
    }
    sm_free(code);
    sm_free(msg);
    return rc;
}

/* "/bucket/enc(key)" (path style) or "/enc(key)". */
static int object_path(struct s3_dir *d, const char *key, struct sm_buf *b)
{
    int rc = SM_OK;
    if (d->path_style) {
        rc = sm_buf_append_str(b, "/");
        if (!rc)
            rc = sm_uri_encode(b, d->bucket, strlen(d->bucket), false);
    }
    if (!rc)
        rc = sm_buf_append_str(b, "/");
    if (!rc)
        rc = sm_uri_encode(b, key, strlen(key), true);
    if (!rc)
        rc = sm_buf_append(b, "", 1);
    return rc;
}

/* One request with a pooled client. */
static int s3_send(struct s3_dir *d, const char *method, const char *path, const char *const *headers,
                   uint64_t max_response, struct sm_http_response *resp, char *err, size_t errlen)
{
    size_t slot;
    memset(resp, 0, sizeof(*resp));
    struct sm_http_client *c = pool_get(d, &slot, err, errlen);
    if (!c)
        return SM_ECONFIG;
    struct sm_http_req req = { .method = method, .path = path, .headers = headers, .max_response = max_response };
    int rc = sm_http_send(c, &req, resp, err, errlen);
    pool_put(d, slot);
    atomic_fetch_add(&d->requests, 1);
    return rc;
}

static int s3_read_at(struct rfs_blob *blob, uint64_t off, void *buf, size_t len)
{
    struct s3_blob *sb = blob->ctx;
    uint8_t *out = buf;
    while (len) {
        if (sb->win_len && off >= sb->win_off && off < sb->win_off + sb->win_len) {
            size_t n = (size_t)(sb->win_off + sb->win_len - off);
            if (n > len)
                n = len;
            memcpy(out, sb->win + (off - sb->win_off), n);
            out += n;
            off += n;
            len -= n;
            continue;
        }
        /* Fetch [off, off + want): straight into buf for big reads, else into the window. */
        bool direct = len >= sb->d->readahead;
        uint64_t want = direct ? len : sb->d->readahead;
        if (want > blob->size - off)
            want = blob->size - off;
        char range[80], errb[512];
        snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, off, off + want - 1);
        const char *hdrs[] = { range, NULL };
        struct sm_buf p;
        sm_buf_init(&p, 1 << 16);
        int rc = object_path(sb->d, sb->key, &p);
        struct sm_http_response r;
        memset(&r, 0, sizeof(r));
        if (!rc)
            rc = s3_send(sb->d, "GET", (const char *)p.data, hdrs, want + 4096, &r, errb, sizeof(errb));
        sm_buf_free(&p);
        if (!rc && r.status != 206 && r.status != 200)
            rc = s3_error(sb->d, blob->name, &r, errb, sizeof(errb));
        if (!rc && r.status == 200 && r.body.len == blob->size && blob->size != want) {
            /* Server ignored Range: take our part of the whole object. */
            memmove(r.body.data, r.body.data + off, (size_t)want);
            r.body.len = (size_t)want;
        }
        if (!rc && r.body.len != want)
            rc = sm_errf(errb, sizeof(errb), SM_EIO, "%s: range %" PRIu64 "+%" PRIu64 ": got %zu bytes", blob->name,
                         off, want, r.body.len);
        if (rc) {
            sm_log_err("%s", errb);
            sm_http_response_free(&r);
            return rc == SM_ENOTFOUND ? SM_EIO : rc;
        }
        atomic_fetch_add(&sb->d->bytes, want);
        if (direct) {
            memcpy(out, r.body.data, (size_t)want);
            out += want;
            off += want;
            len -= (size_t)want;
        } else {
            if (sb->win_cap < want) {
                uint8_t *w = sm_realloc(sb->win, (size_t)want);
                if (!w) {
                    sm_http_response_free(&r);
                    return SM_ENOMEM;
                }
                sb->win = w;
                sb->win_cap = (size_t)want;
            }
            memcpy(sb->win, r.body.data, (size_t)want);
            sb->win_off = off;
            sb->win_len = (size_t)want;
        }
        sm_http_response_free(&r);
    }
    return SM_OK;
}

static void s3_blob_close(struct rfs_blob *blob)
{
    struct s3_blob *sb = blob->ctx;
    if (!sb)
        return;
    sm_free(sb->key);
    sm_free(sb->win);
    sm_free(sb);
}

static const struct rfs_blob_ops s3_blob_ops = { "s3", s3_read_at, s3_blob_close };

static int s3_open(struct rfs_dir *dir, const char *rel, struct rfs_blob **out, char *err, size_t errlen)
{
    struct s3_dir *d = dir->ctx;
    *out = NULL;
    struct sm_buf key, p;
    sm_buf_init(&key, 1 << 16);
    sm_buf_init(&p, 1 << 16);
    int rc = sm_buf_printf(&key, "%s%s", d->prefix, rel);
    if (!rc)
        rc = sm_buf_append(&key, "", 1);
    if (!rc)
        rc = object_path(d, (const char *)key.data, &p);
    char what[1200];
    snprintf(what, sizeof(what), "s3://%s/%s", d->bucket, rc ? rel : (const char *)key.data);
    struct sm_http_response r;
    memset(&r, 0, sizeof(r));
    if (!rc)
        rc = s3_send(d, "HEAD", (const char *)p.data, NULL, 0, &r, err, errlen);
    if (!rc && r.status != 200)
        rc = s3_error(d, what, &r, err, errlen);
    uint64_t size = 0;
    char cl[64];
    if (!rc && (!sm_http_response_header(&r, "Content-Length", cl, sizeof(cl)) ||
                sm_parse_u64(cl, UINT64_MAX, &size)))
        rc = sm_errf(err, errlen, SM_EPROTO, "%s: HEAD without a usable Content-Length", what);
    sm_http_response_free(&r);
    sm_buf_free(&p);
    struct s3_blob *sb = NULL;
    struct rfs_blob *b = NULL;
    if (!rc) {
        sb = sm_calloc(1, sizeof(*sb));
        b = sm_calloc(1, sizeof(*b));
        if (!sb || !b || !(b->name = sm_strdup(what)) || !(sb->key = sm_strdup((const char *)key.data)))
            rc = SM_ENOMEM;
    }
    sm_buf_free(&key);
    if (rc) {
        if (b)
            sm_free(b->name);
        if (sb)
            sm_free(sb->key);
        sm_free(sb);
        sm_free(b);
        return rc == SM_ENOMEM ? sm_errf(err, errlen, rc, "%s: out of memory", what) : rc;
    }
    sb->d = d;
    b->ops = &s3_blob_ops;
    b->ctx = sb;
    b->size = size;
    *out = b;
    sm_dbg(SM_DBG_REPO, "s3 open %s: %" PRIu64 " bytes", what, size);
    return SM_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists names under full prefix pfx ("a/b/"), into names (relative, no
 * trailing '/'). max_keys limits one page (0: default). */
static int s3_list_full(struct s3_dir *d, const char *pfx, struct sm_strlist *names, int max_keys, char *err,
                        size_t errlen)
{
    char *token = NULL;
    int rc = SM_OK;
    size_t pl = strlen(pfx);
    do {
        struct sm_buf p;
        sm_buf_init(&p, 1 << 20);
        if (d->path_style) {
            rc = sm_buf_append_str(&p, "/");
            if (!rc)
                rc = sm_uri_encode(&p, d->bucket, strlen(d->bucket), false);
        }
        if (!rc)
            rc = sm_buf_append_str(&p, "/?list-type=2&delimiter=%2F");
        if (!rc && max_keys > 0)
            rc = sm_buf_printf(&p, "&max-keys=%d", max_keys);
        if (!rc && token) {
            rc = sm_buf_append_str(&p, "&continuation-token=");
            if (!rc)
                rc = sm_uri_encode(&p, token, strlen(token), false);
        }
        if (!rc) {
            rc = sm_buf_append_str(&p, "&prefix=");
            if (!rc)
                rc = sm_uri_encode(&p, pfx, pl, false);
        }
        if (!rc)
            rc = sm_buf_append(&p, "", 1);
        struct sm_http_response r;
        memset(&r, 0, sizeof(r));
        char what[1200];
        snprintf(what, sizeof(what), "s3://%s/%s (list)", d->bucket, pfx);
        if (!rc)
            rc = s3_send(d, "GET", (const char *)p.data, NULL, S3_LIST_MAX_RESPONSE, &r, err, errlen);
        sm_buf_free(&p);
        if (!rc && r.status != 200)
            rc = s3_error(d, what, &r, err, errlen);
        sm_free(token);
        token = NULL;
        if (!rc) {
            const char *body = r.body.len ? (const char *)r.body.data : "";
            const char *pos = NULL;
            char *k;
            /* <Contents><Key>..</Key>...</Contents> */
            while (!rc && (k = xml_next(body, "Key", &pos))) {
                if (strlen(k) > pl && !strncmp(k, pfx, pl))
                    rc = sm_strlist_push(names, k + pl);
                sm_free(k);
            }
            /* <CommonPrefixes><Prefix>a/b/c/</Prefix></CommonPrefixes> */
            const char *cp = strstr(body, "<CommonPrefixes>");
            pos = cp;
            while (!rc && cp && (k = xml_next(body, "Prefix", &pos))) {
                size_t kl = strlen(k);
                if (kl > pl && !strncmp(k, pfx, pl)) {
                    if (k[kl - 1] == '/')
                        k[kl - 1] = 0;
                    rc = sm_strlist_push(names, k + pl);
                }
                sm_free(k);
            }
            pos = NULL;
            char *trunc = xml_next(body, "IsTruncated", &pos);
            if (trunc && !strcmp(trunc, "true")) {
                pos = NULL;
                token = xml_next(body, "NextContinuationToken", &pos);
                if (!token)
                    rc = sm_errf(err, errlen, SM_EPROTO, "%s: truncated listing without NextContinuationToken",
                                 what);
            }
            sm_free(trunc);
        }
        sm_http_response_free(&r);
    } while (!rc && token);
    sm_free(token);
    if (!rc && names->n)
        qsort(names->v, names->n, sizeof(char *), cmp_str);
    return rc;
}

static int s3_list(struct rfs_dir *dir, const char *prefix, struct sm_strlist *names)
{
    struct s3_dir *d = dir->ctx;
    char err[1024];
    struct sm_buf p;
    sm_buf_init(&p, 1 << 16);
    int rc = sm_buf_append_str(&p, d->prefix);
    if (!rc && prefix && *prefix) {
        rc = sm_buf_append_str(&p, prefix);
        if (!rc && prefix[strlen(prefix) - 1] != '/')
            rc = sm_buf_append_str(&p, "/");
    }
    if (!rc)
        rc = sm_buf_append(&p, "", 1);
    if (!rc)
        rc = s3_list_full(d, (const char *)p.data, names, 0, err, sizeof(err));
    if (rc && rc != SM_ENOMEM)
        sm_log_err("%s", err);
    sm_buf_free(&p);
    /* An empty listing is an absent directory, as on a filesystem. */
    if (!rc && names->n == 0)
        return SM_ENOTFOUND;
    return rc == SM_ECONFIG ? SM_EIO : rc;
}

static void s3_dir_free(struct s3_dir *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->npool; i++)
        sm_http_client_free(d->pool[i]);
    sm_http_opts_free(&d->hopts);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->freed);
    sm_free(d->bucket);
    sm_free(d->prefix);
    sm_free(d->access_key_id);
    sm_free(d);
}

static void s3_close(struct rfs_dir *dir)
{
    s3_dir_free(dir->ctx);
}

static const struct rfs_dir_ops s3_dir_ops = { "s3", s3_list, s3_open, s3_close };

int rfs_dir_open_s3(const char *bucket, const char *prefix, const struct rfs_s3_opts *opts, struct rfs_dir **out,
                    char *err, size_t errlen)
{
    static const struct rfs_s3_opts defaults = { .max_retries = -1 };
    if (!opts)
        opts = &defaults;
    *out = NULL;
    if (!bucket || !*bucket)
        return sm_errf(err, errlen, SM_EINVAL, "s3: empty bucket name");
    struct s3_dir *d = sm_calloc(1, sizeof(*d));
    if (!d)
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->freed, NULL);
    sm_http_opts_init(&d->hopts);
    int rc = SM_ENOMEM;
    size_t pl = prefix ? strlen(prefix) : 0;
    while (pl && prefix[0] == '/') {
        prefix++;
        pl--;
    }
    d->readahead = opts->readahead ? opts->readahead : S3_DEFAULT_READAHEAD;
    d->path_style = opts->endpoint && *opts->endpoint;
    char *region = opts->region && *opts->region ? sm_strdup(opts->region) : sm_aws_region_default(opts->profile);
    if (!region)
        region = sm_strdup("us-east-1");
    struct sm_buf url;
    sm_buf_init(&url, 4096);
    if (!region || !(d->bucket = sm_strdup(bucket)) || !(d->prefix = sm_malloc(pl + 2)))
        goto fail;
    memcpy(d->prefix, prefix ? prefix : "", pl);
    if (pl && prefix[pl - 1] != '/')
        d->prefix[pl++] = '/';
    d->prefix[pl] = 0;
    if (d->path_style) {
        size_t el = strlen(opts->endpoint);
        while (el && opts->endpoint[el - 1] == '/')
            el--;
        rc = sm_buf_append(&url, opts->endpoint, el);
    } else {
        rc = sm_buf_printf(&url, "https://%s.s3.%s.amazonaws.com", bucket, region);
    }
    if (!rc)
        rc = sm_buf_append(&url, "", 1);
    if (rc)
        goto fail;
    rc = SM_ENOMEM;
    if (!(d->hopts.url = sm_strdup((const char *)url.data)) || !(d->hopts.aws_region = sm_strdup(region)) ||
        !(d->hopts.aws_service = sm_strdup("s3")) ||
        (opts->profile && !(d->hopts.aws_profile = sm_strdup(opts->profile))) ||
        (opts->ca_cert && !(d->hopts.ca_cert = sm_strdup(opts->ca_cert))))
        goto fail;
    d->hopts.insecure = opts->insecure;
    if (opts->max_retries >= 0)
        d->hopts.max_retries = opts->max_retries;
    d->hopts.max_response = (uint64_t)1 << 31;
    {
        struct sm_aws_creds cr;
        memset(&cr, 0, sizeof(cr));
        char sub[512] = "";
        if ((rc = sm_aws_creds_load(&cr, opts->profile, sub, sizeof(sub)))) {
            rc = sm_errf(err, errlen, SM_ECONFIG, "s3://%s/%s: %s", bucket, d->prefix, sub);
            sm_aws_creds_free(&cr);
            sm_buf_free(&url);
            sm_free(region);
            s3_dir_free(d);
            return rc;
        }
        d->access_key_id = sm_strdup(cr.access_key_id ? cr.access_key_id : "");
        sm_aws_creds_free(&cr);
        rc = d->access_key_id ? SM_OK : SM_ENOMEM;
        if (rc)
            goto fail;
    }
    /* One request to check bucket and credentials now, with a clear message. */
    {
        size_t slot;
        struct sm_http_client *c = pool_get(d, &slot, err, errlen);
        if (!c) {
            sm_buf_free(&url);
            sm_free(region);
            s3_dir_free(d);
            return SM_ECONFIG;
        }
        pool_put(d, slot);
        struct sm_strlist names = { 0 };
        rc = s3_list_full(d, d->prefix, &names, 1, err, errlen);
        sm_strlist_free(&names);
        if (rc) {
            sm_buf_free(&url);
            sm_free(region);
            s3_dir_free(d);
            return rc;
        }
    }
    struct rfs_dir *dir = sm_calloc(1, sizeof(*dir));
    if (!dir)
        goto fail;
    if (!(dir->desc = sm_malloc(strlen(bucket) + pl + 8))) {
        sm_free(dir);
        goto fail;
    }
    snprintf(dir->desc, strlen(bucket) + pl + 8, "s3://%s/%s", bucket, d->prefix);
    dir->ops = &s3_dir_ops;
    dir->ctx = d;
    *out = dir;
    sm_buf_free(&url);
    sm_free(region);
    return SM_OK;
fail:
    sm_buf_free(&url);
    sm_free(region);
    s3_dir_free(d);
    return sm_errf(err, errlen, rc ? rc : SM_ENOMEM, "s3://%s: %s", bucket, sm_strerror(rc ? rc : SM_ENOMEM));
}

int rfs_dir_open_uri(const char *repo, const struct rfs_s3_opts *opts, struct rfs_dir **out, char *err,
                     size_t errlen)
{
    if (!strncmp(repo, "s3://", 5)) {
        struct rfs_s3_opts env = { .endpoint = getenv("SM_S3_ENDPOINT"), .region = getenv("SM_S3_REGION"),
                                   .max_retries = -1 };
        if (!opts)
            opts = &env;
        const char *b = repo + 5, *slash = strchr(b, '/');
        char bucket[256];
        size_t bl = slash ? (size_t)(slash - b) : strlen(b);
        if (!bl || bl >= sizeof(bucket))
            return sm_errf(err, errlen, SM_EINVAL, "%s: expected s3://bucket/prefix", repo);
        memcpy(bucket, b, bl);
        bucket[bl] = 0;
        return rfs_dir_open_s3(bucket, slash ? slash + 1 : "", opts, out, err, errlen);
    }
    if (!strncmp(repo, "file://", 7))
        repo += 7;
    return rfs_dir_open_fs(repo, out, err, errlen);
}

void rfs_s3_stats(const struct rfs_dir *dir, struct rfs_s3_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!dir || dir->ops != &s3_dir_ops)
        return;
    struct s3_dir *d = dir->ctx;
    out->requests = atomic_load(&d->requests);
    out->bytes = atomic_load(&d->bytes);
}
