/* Bulk bodies and per-item result handling (see bulk.h). */
#include "backfill/bulk.h"

#include "repo/source_json.h"
#include "smile/smile.h"   /* rfs_json_append_string */

#include <sm/err.h>
#include <sm/http.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void rfs_bulk_batch_init(struct rfs_bulk_batch *b)
{
    memset(b, 0, sizeof(*b));
    sm_buf_init(&b->body, SIZE_MAX / 4);
    sm_buf_init(&b->prefix, 1 << 20);
}

/* `{"index":{"_index":"<index>","_id":` for o->index, escaped once per index
 * name rather than per document. */
static int action_prefix(struct rfs_bulk_batch *b, const char *index)
{
    if (b->prefix_index && !strcmp(b->prefix_index, index))
        return SM_OK;
    sm_free(b->prefix_index);
    b->prefix_index = NULL;
    sm_buf_reset(&b->prefix);
    int rc = sm_buf_append_str(&b->prefix, "{\"index\":{\"_index\":");
    if (!rc)
        rc = rfs_json_append_string(&b->prefix, (const uint8_t *)index, strlen(index));
    if (!rc)
        rc = sm_buf_append_str(&b->prefix, ",\"_id\":");
    if (!rc && !(b->prefix_index = sm_strdup(index)))
        rc = SM_ENOMEM;
    return rc;
}

void rfs_bulk_batch_reset(struct rfs_bulk_batch *b)
{
    sm_buf_reset(&b->body);
    b->ndocs = 0;
    b->source_bytes = 0;
    b->end_seg = 0;
    b->end_doc = 0;
    b->rc = 0;
    b->acked = b->rejected = b->retried_items = b->requests = 0;
    b->err[0] = 0;
    b->complete = false;
    b->next = NULL;
}

void rfs_bulk_batch_free(struct rfs_bulk_batch *b)
{
    sm_buf_free(&b->body);
    sm_buf_free(&b->prefix);
    sm_free(b->prefix_index);
    b->prefix_index = NULL;
    sm_free(b->offs);
    b->offs = NULL;
    b->cap = 0;
}

/* No byte JSON would escape ('"', '\\', control characters). */
static bool json_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            return false;
    }
    return true;
}

/* The usual document: a JSON _source without CR/LF (its first non-blank
 * byte is '{', which is how its content type was recognised), no _type, an
 * id and routing without bytes to escape. One reservation and plain copies
 * give the bytes the general path below would. */
static bool add_plain(struct rfs_bulk_batch *b, const struct rfs_bulk_doc_opts *o, const struct rfs_esdoc *d, int *rc)
{
    if (d->content_type != RFS_ES_CT_JSON || o->type || !json_plain(d->id, d->id_len) ||
        (d->routing && !json_plain(d->routing, d->routing_len)) || memchr(d->source, '\n', d->source_len) ||
        memchr(d->source, '\r', d->source_len))
        return false;
    static const char rkey[] = "\",\"routing\":\"";
    struct sm_buf *w = &b->body;
    size_t start = w->len;
    size_t n = b->prefix.len + 1 + d->id_len + (d->routing ? sizeof(rkey) - 1 + d->routing_len : 0) + 4 +
               d->source_len + 1;
    if ((*rc = sm_buf_reserve(w, n)))
        return true;
    uint8_t *p = w->data + start;
    memcpy(p, b->prefix.data, b->prefix.len);
    p += b->prefix.len;
    *p++ = '"';
    memcpy(p, d->id, d->id_len);
    p += d->id_len;
    if (d->routing) {
        memcpy(p, rkey, sizeof(rkey) - 1);
        p += sizeof(rkey) - 1;
        memcpy(p, d->routing, d->routing_len);
        p += d->routing_len;
    }
    memcpy(p, "\"}}\n", 4);
    p += 4;
    memcpy(p, d->source, d->source_len);
    p += d->source_len;
    *p++ = '\n';
    w->len = (size_t)(p - w->data);
    w->data[w->len] = 0;
    b->offs[b->ndocs++] = start;
    b->source_bytes += d->source_len;
    return true;
}

int rfs_bulk_add(struct rfs_bulk_batch *b, const struct rfs_bulk_doc_opts *o, const struct rfs_esdoc *d,
                 char *err, size_t errlen)
{
    if (sm_grow(&b->offs, &b->cap, b->ndocs + 1, sizeof(*b->offs), 256))   /* offs[ndocs + 1] ends this one */
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    size_t start = b->body.len;
    struct sm_buf *w = &b->body;
    int rc = action_prefix(b, o->index);
    if (!rc && add_plain(b, o, d, &rc)) {
        if (rc)
            sm_errf(err, errlen, rc, "%s", sm_strerror(rc));
        return rc;
    }
    /* One reservation for the usual case (JSON source, ids without escapes). */
    if (!rc)
        rc = sm_buf_reserve(w, b->prefix.len + d->id_len + d->routing_len + (o->type ? strlen(o->type) : 0) +
                            d->source_len + 48);
    if (!rc)
        rc = sm_buf_append(w, b->prefix.data, b->prefix.len);
    if (!rc)
        rc = rfs_json_append_string(w, (const uint8_t *)d->id, d->id_len);
    if (!rc && o->type) {
        rc = sm_buf_append_str(w, ",\"_type\":");
        if (!rc)
            rc = rfs_json_append_string(w, (const uint8_t *)o->type, strlen(o->type));
    }
    if (!rc && d->routing) {
        rc = sm_buf_append_str(w, ",\"routing\":");
        if (!rc)
            rc = rfs_json_append_string(w, (const uint8_t *)d->routing, d->routing_len);
    }
    if (!rc)
        rc = sm_buf_append_str(w, "}}\n");
    size_t src_start = w->len;
    if (rc) {
        sm_errf(err, errlen, rc, "%s", sm_strerror(rc));
    } else if (!(rc = rfs_source_append_json(w, d->source, d->source_len, d->content_type, err, errlen))) {
        size_t k = src_start;
        while (k < w->len && (w->data[k] == ' ' || w->data[k] == '\t'))
            k++;
        if (k == w->len || w->data[k] != '{')
            rc = sm_errf(err, errlen, SM_EUNSUPPORTED, "_source is not a JSON object");
        else if ((rc = sm_buf_append(w, "\n", 1)))
            sm_errf(err, errlen, rc, "%s", sm_strerror(rc));
    }
    if (rc) {
        w->len = start;
        return rc;
    }
    b->offs[b->ndocs++] = start;
    b->source_bytes += w->len - src_start - 1;
    return SM_OK;
}

static void doc_span(const struct rfs_bulk_batch *b, size_t i, size_t *off, size_t *len)
{
    size_t end = i + 1 < b->ndocs ? b->offs[i + 1] : b->body.len;
    *off = b->offs[i];
    *len = end - *off;
}

/* Retryable: the target's state, not the document, refused it. A
 * cluster_block_exception (a write or read-only block on the index, the
 * flood-stage disk block: 403 before Elasticsearch 7.4, 429 since) says
 * nothing about the document: retried, and if the block stays the work item
 * fails with it as the reason, instead of every document of the shard landing
 * in the failures file as "rejected". */
static bool item_retryable(long status, const char *type)
{
    if (status == 429 || status >= 500)
        return true;
    return type && (!strcmp(type, "es_rejected_execution_exception") ||
                    !strcmp(type, "rejected_execution_exception") || !strcmp(type, "cluster_block_exception"));
}

void rfs_bulk_failures_put(struct rfs_bulk_failures *fl, const char *line, size_t len)
{
    struct iovec iov[2] = { { (void *)line, len }, { (void *)"\n", 1 } };
    pthread_mutex_lock(&fl->mu);
    int e = line ? sm_fd_append_whole(fileno(fl->f), iov, 2, NULL) : ENOMEM;
    if (!e) {
        fl->written++;
    } else {
        fl->last_errno = e;
        fl->unrecorded++;
        static struct sm_ratelimit rl;
        uint64_t sup;
        if (sm_log_ratelimited(&rl, 10000, &sup))
            sm_log_err("failures file: write failed: %s: %" PRIu64 " rejected document(s) not recorded so far "
                       "(%" PRIu64 " messages suppressed)", strerror(e), fl->unrecorded, sup);
    }
    pthread_mutex_unlock(&fl->mu);
}

/* One failures-file line: {"index","id","routing","type","status","error","source"}. */
static void write_failure(struct rfs_bulk_failures *fl, const struct rfs_bulk_batch *b, size_t i, long status,
                          json_t *error)
{
    size_t off, len;
    doc_span(b, i, &off, &len);
    const char *p = (const char *)b->body.data + off;
    const char *nl = memchr(p, '\n', len);
    size_t alen = nl ? (size_t)(nl - p) : len;
    json_t *action = json_loadb(p, alen, 0, NULL);
    json_t *meta = action ? json_object_get(action, "index") : NULL;
    const char *id = json_string_value(json_object_get(meta, "_id"));
    char *estr = error ? json_dumps(error, JSON_COMPACT) : NULL;
    const char *reason = json_string_value(json_object_get(error, "reason"));
    /* One line per 5 s at most: a bad mapping can reject millions. */
    static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
    static struct sm_ratelimit rl;
    uint64_t suppressed = 0;
    pthread_mutex_lock(&log_mu);
    bool log = sm_log_ratelimited(&rl, 5000, &suppressed);
    pthread_mutex_unlock(&log_mu);
    if (log)
        sm_log_warn("bulk: document %s of index %s rejected (%ld): %s%s", id ? id : "?",
                    json_string_value(json_object_get(meta, "_index")) ?
                    json_string_value(json_object_get(meta, "_index")) : "?",
                    status, reason ? reason : (estr ? estr : "?"),
                    suppressed ? " (more rejections not logged; see the failures file)" : "");
    if (fl && fl->f) {
        json_t *rec = json_object();
        json_object_set(rec, "index", json_object_get(meta, "_index"));
        json_object_set(rec, "id", json_object_get(meta, "_id"));
        if (json_object_get(meta, "routing"))
            json_object_set(rec, "routing", json_object_get(meta, "routing"));
        if (json_object_get(meta, "_type"))
            json_object_set(rec, "type", json_object_get(meta, "_type"));
        json_object_set_new(rec, "status", json_integer(status));
        json_object_set(rec, "error", error ? error : json_null());
        char *head = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(rec);
        const char *src = nl ? nl + 1 : "";
        size_t slen = nl ? len - alen - 1 : 0;
        if (slen && src[slen - 1] == '\n')
            slen--;
        if (head) {
            /* head ends with '}': splice ,"source":<raw source>} */
            struct sm_buf line;
            sm_buf_init(&line, (size_t)1 << 31);
            size_t hl = strlen(head);
            bool built = sm_buf_append(&line, head, hl - 1) == SM_OK &&
                         sm_buf_append_str(&line, ",\"source\":") == SM_OK &&
                         (slen ? sm_buf_append(&line, src, slen) : sm_buf_append_str(&line, "null")) == SM_OK &&
                         sm_buf_append_str(&line, "}") == SM_OK;
            rfs_bulk_failures_put(fl, built ? (const char *)line.data : NULL, line.len);
            sm_buf_free(&line);
        }
        free(head);
    }
    free(estr);
    json_decref(action);
}

static uint64_t backoff(const struct rfs_bulk_send_opts *o, int round)
{
    uint64_t cap = o->backoff_cap_ms ? o->backoff_cap_ms : 30000, d = o->backoff_base_ms ? o->backoff_base_ms : 200;
    for (int i = 0; i < round && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    return d / 2 + (uint64_t)rand() % (d / 2 + 1);
}

void rfs_bulk_send(struct sm_http_client *c, const struct rfs_bulk_send_opts *o, struct rfs_bulk_batch *b)
{
    b->acked = b->rejected = b->retried_items = 0;
    b->rc = SM_OK;
    b->err[0] = 0;
    if (!b->ndocs)
        return;
    /* pending[k]: indexes of documents still to send. */
    size_t *pending = sm_malloc(b->ndocs * sizeof(size_t)), npending = b->ndocs;
    struct sm_buf sub;
    sm_buf_init(&sub, SIZE_MAX / 4);
    if (!pending) {
        b->rc = sm_errf(b->err, sizeof(b->err), SM_ENOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < b->ndocs; i++)
        pending[i] = i;
    /* "Expect:" turns off curl's 100-continue round trip for bodies over 1 MiB. */
    static const char *const hdrs[] = { "Content-Type: application/x-ndjson", "Expect:", NULL };
    int round = 0;
    for (;;) {
        const void *body = b->body.data;
        size_t blen = b->body.len;
        if (npending != b->ndocs) {
            sm_buf_reset(&sub);
            for (size_t k = 0; k < npending; k++) {
                size_t off, len;
                doc_span(b, pending[k], &off, &len);
                if (sm_buf_append(&sub, b->body.data + off, len)) {
                    b->rc = sm_errf(b->err, sizeof(b->err), SM_ENOMEM, "out of memory");
                    goto out;
                }
            }
            body = sub.data;
            blen = sub.len;
        }
        struct sm_http_response r;
        struct sm_http_req req = { .method = "POST", .path = o->path, .headers = hdrs, .body = body,
                                   .body_len = blen, .flags = SM_HTTP_DIRECT_BODY };
        char err[400];
        int rc = sm_http_send(c, &req, &r, err, sizeof(err));
        b->requests++;
        bool retry_all = false;
        if (rc) {
            if (rc != SM_EIO && rc != SM_ETIMEOUT && rc != SM_EAGAIN) {
                b->rc = sm_errf(b->err, sizeof(b->err), rc, "%s", err);
                sm_http_response_free(&r);
                goto out;
            }
            retry_all = true;
            snprintf(b->err, sizeof(b->err), "%s", err);
        } else if (sm_http_status_retriable(r.status) || r.status >= 500) {
            retry_all = true;
            snprintf(b->err, sizeof(b->err), "POST %s: HTTP %ld", o->path, r.status);
        } else if (r.status == 413 && npending == 1) {
            /* one document larger than the target takes (http.max_content_length): the
             * document's problem, like a mapping error - to the failures file, and the
             * rest of the shard goes on */
            char reason[200];
            snprintf(reason, sizeof(reason), "the document's bulk request (%zu bytes) is larger than the target "
                     "accepts (HTTP 413; http.max_content_length)", blen);
            json_t *error = json_pack("{ss ss}", "type", "request_entity_too_large", "reason", reason);
            write_failure(o->failures, b, pending[0], 413, error);
            json_decref(error);
            b->rejected++;
            sm_http_response_free(&r);
            goto out;
        } else if (r.status < 200 || r.status > 299) {
            b->rc = sm_errf(b->err, sizeof(b->err), SM_EPROTO, "POST %s: HTTP %ld%s: %.300s", o->path, r.status,
                            r.status == 413 ? " (the bulk body is larger than the target accepts: lower "
                                              "--batch-bytes)" : "",
                            r.body.len ? (const char *)r.body.data : "");
            sm_http_response_free(&r);
            goto out;
        }
        size_t still = 0;
        if (!retry_all) {
            const char *bd = r.body.len ? (const char *)r.body.data : "";
            /* Fast path: "errors":false near the start (all items succeeded). */
            const char *e = strstr(bd, "\"errors\":");
            if (e && e - bd < 64 && !strncmp(e + 9, "false", 5)) {
                b->acked += npending;
                npending = 0;
            } else {
                json_error_t je;
                json_t *resp = json_loadb(bd, r.body.len, 0, &je);
                json_t *items = json_object_get(resp, "items");
                if (!json_is_array(items) || json_array_size(items) != npending) {
                    json_decref(resp);
                    sm_http_response_free(&r);
                    b->rc = sm_errf(b->err, sizeof(b->err), SM_EPROTO, "POST %s: bulk response with %zu items for %zu "
                                    "documents", o->path, json_array_size(items), npending);
                    goto out;
                }
                for (size_t k = 0; k < npending; k++) {
                    json_t *it = json_array_get(items, k), *res = NULL;
                    const char *op;
                    json_object_foreach(it, op, res)
                        break;
                    long st = (long)json_integer_value(json_object_get(res, "status"));
                    json_t *error = json_object_get(res, "error");
                    if (st >= 200 && st <= 299 && !error) {
                        b->acked++;
                    } else if (item_retryable(st, json_string_value(json_object_get(error, "type")))) {
                        pending[still++] = pending[k];
                        b->retried_items++;
                        const char *reason = json_string_value(json_object_get(error, "reason"));
                        const char *type = json_string_value(json_object_get(error, "type"));
                        snprintf(b->err, sizeof(b->err), "item status %ld%s%s%s: %s", st, type ? " (" : "",
                                 type ? type : "", type ? ")" : "", reason ? reason : "?");
                    } else {
                        write_failure(o->failures, b, pending[k], st, error);
                        b->rejected++;
                    }
                }
                npending = still;
                json_decref(resp);
            }
        }
        sm_http_response_free(&r);
        if (!npending)
            break;
        if (round >= o->max_retries || (o->abort && *o->abort)) {
            b->rc = SM_EAGAIN;
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "%zu documents not accepted after %d retries: %.400s", npending, round, b->err);
            snprintf(b->err, sizeof(b->err), "%s", tmp);
            goto out;
        }
        uint64_t d = backoff(o, round++);
        sm_dbg(SM_DBG_BACKFILL, "bulk: %zu documents to retry in %llu ms (%s)", npending, (unsigned long long)d,
               b->err);
        sm_sleep_ms(d);
    }
    b->err[0] = 0;
out:
    sm_buf_free(&sub);
    sm_free(pending);
}
