/* Coordination index access over the target's REST API (see coord.h). */
#include "backfill/coord.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/http.h>
#include <sm/mem.h>
#include <sm/sigv4.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rfs_target_info(struct sm_http_client *c, struct rfs_target_info *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *r = NULL;
    int rc = sm_http_request_json(c, "GET", "/", NULL, &r, NULL, err, errlen);
    if (rc) {
        json_decref(r);
        return rc;
    }
    json_t *v = json_object_get(r, "version");
    const char *num = json_string_value(json_object_get(v, "number"));
    const char *dist = json_string_value(json_object_get(v, "distribution"));
    if (!num) {
        json_decref(r);
        return sm_errf(err, errlen, SM_EPROTO, "%s: GET / has no version.number", sm_http_client_url(c));
    }
    snprintf(out->version, sizeof(out->version), "%s", num);
    out->opensearch = dist && !strcmp(dist, "opensearch");
    out->major = atoi(num);
    out->typed = !out->opensearch && out->major <= 6;
    json_decref(r);
    return SM_OK;
}

static int doc_path(struct rfs_coord *co, const char *id, const char *query, struct sm_buf *b)
{
    int rc = sm_buf_append_str(b, "/");
    if (!rc)
        rc = sm_uri_encode(b, co->index, strlen(co->index), false);
    if (!rc)
        rc = sm_buf_append_str(b, "/_doc/");
    if (!rc)
        rc = sm_uri_encode(b, id, strlen(id), false);
    if (!rc && query)
        rc = sm_buf_append_str(b, query);
    if (!rc)
        rc = sm_buf_append(b, "", 1);
    return rc;
}

int rfs_coord_ensure(struct rfs_coord *co, char *err, size_t errlen)
{
    static const char *const fields[][2] = {
        { "kind", "keyword" }, { "state", "keyword" }, { "owner", "keyword" }, { "index", "keyword" },
        { "target_index", "keyword" }, { "snapshot", "keyword" }, { "lease_expiry_ms", "long" },
        { "shard", "long" }, { "docs_acked", "long" }, { "est_docs", "long" }, { "error", "text" },
        { "docs_rejected", "long" }, { "bytes", "long" }, { "takeovers", "long" }, { "started_ms", "long" },
        { "updated_ms", "long" },
    };
    json_t *props = json_object();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        json_object_set_new(props, fields[i][0], json_pack("{ss}", "type", fields[i][1]));
    json_t *mapping = json_pack("{so}", "properties", props);
    json_t *body = json_pack("{s{s{sisisi}}so}", "settings", "index", "number_of_shards", 1, "number_of_replicas", 0,
                             "max_result_window", 100000, "mappings",
                             co->typed ? json_pack("{so}", "_doc", mapping) : mapping);
    struct sm_buf p;
    sm_buf_init(&p, 4096);
    int rc = sm_buf_append_str(&p, "/");
    if (!rc)
        rc = sm_uri_encode(&p, co->index, strlen(co->index), false);
    if (!rc)
        rc = sm_buf_append(&p, "", 1);
    json_t *resp = NULL;
    long status = 0;
    char sub[512];
    if (!rc)
        rc = sm_http_request_json(co->c, "PUT", (const char *)p.data, body, &resp, &status, sub, sizeof(sub));
    if (rc && status == 400) {
        const char *type = json_string_value(json_object_get(json_object_get(resp, "error"), "type"));
        if (type && !strcmp(type, "resource_already_exists_exception"))
            rc = SM_OK;
    }
    if (rc)
        sm_errf(err, errlen, rc, "creating coordination index %s: %s", co->index, sub);
    json_decref(resp);
    json_decref(body);
    sm_buf_free(&p);
    return rc;
}

int rfs_coord_get(struct rfs_coord *co, const char *id, json_t **src, int64_t *seq, int64_t *term, char *err,
                  size_t errlen)
{
    *src = NULL;
    struct sm_buf p;
    sm_buf_init(&p, 4096);
    int rc = doc_path(co, id, NULL, &p);
    json_t *resp = NULL;
    if (!rc)
        rc = sm_http_request_json(co->c, "GET", (const char *)p.data, NULL, &resp, NULL, err, errlen);
    sm_buf_free(&p);
    if (!rc) {
        if (json_is_false(json_object_get(resp, "found"))) {
            rc = SM_ENOTFOUND;
        } else {
            *src = json_incref(json_object_get(resp, "_source"));
            if (seq)
                *seq = json_integer_value(json_object_get(resp, "_seq_no"));
            if (term)
                *term = json_integer_value(json_object_get(resp, "_primary_term"));
        }
    }
    json_decref(resp);
    return rc;
}

int rfs_coord_create(struct rfs_coord *co, const char *id, json_t *src, char *err, size_t errlen)
{
    struct sm_buf p;
    sm_buf_init(&p, 4096);
    int rc = doc_path(co, id, "?op_type=create", &p);
    json_t *resp = NULL;
    if (!rc)
        rc = sm_http_request_json(co->c, "PUT", (const char *)p.data, src, &resp, NULL, err, errlen);
    sm_buf_free(&p);
    json_decref(resp);
    return rc;
}

int rfs_coord_replace(struct rfs_coord *co, const char *id, json_t *src, int64_t *seq, int64_t *term, char *err,
                      size_t errlen)
{
    char q[96];
    snprintf(q, sizeof(q), "?if_seq_no=%" PRId64 "&if_primary_term=%" PRId64, *seq, *term);
    struct sm_buf p;
    sm_buf_init(&p, 4096);
    int rc = doc_path(co, id, q, &p);
    json_t *resp = NULL;
    if (!rc)
        rc = sm_http_request_json(co->c, "PUT", (const char *)p.data, src, &resp, NULL, err, errlen);
    sm_buf_free(&p);
    if (!rc) {
        *seq = json_integer_value(json_object_get(resp, "_seq_no"));
        *term = json_integer_value(json_object_get(resp, "_primary_term"));
    }
    json_decref(resp);
    return rc;
}

static int index_path(struct rfs_coord *co, const char *suffix, struct sm_buf *p)
{
    int rc = sm_buf_append_str(p, "/");
    if (!rc)
        rc = sm_uri_encode(p, co->index, strlen(co->index), false);
    if (!rc)
        rc = sm_buf_append_str(p, suffix);
    if (!rc)
        rc = sm_buf_append(p, "", 1);
    return rc;
}

int rfs_coord_refresh(struct rfs_coord *co, char *err, size_t errlen)
{
    struct sm_buf p;
    sm_buf_init(&p, 4096);
    int rc = index_path(co, "/_refresh", &p);
    json_t *resp = NULL;
    if (!rc)
        rc = sm_http_request_json(co->c, "POST", (const char *)p.data, NULL, &resp, NULL, err, errlen);
    json_decref(resp);
    sm_buf_free(&p);
    return rc;
}

int rfs_coord_delete_index(struct rfs_coord *co, char *err, size_t errlen)
{
    struct sm_buf p;
    sm_buf_init(&p, 4096);
    int rc = index_path(co, "", &p);
    json_t *resp = NULL;
    long status = 0;
    if (!rc)
        rc = sm_http_request_json(co->c, "DELETE", (const char *)p.data, NULL, &resp, &status, err, errlen);
    if (rc && status == 404)
        rc = SM_ENOTFOUND;
    json_decref(resp);
    sm_buf_free(&p);
    return rc;
}

int rfs_coord_search_raw(struct rfs_coord *co, json_t *body, json_t **resp, char *err, size_t errlen)
{
    *resp = NULL;
    struct sm_buf p;
    sm_buf_init(&p, 4096);
    int rc = index_path(co, "/_search", &p);
    if (!rc)
        rc = sm_http_request_json(co->c, "POST", (const char *)p.data, body, resp, NULL, err, errlen);
    sm_buf_free(&p);
    if (rc) {
        json_decref(*resp);
        *resp = NULL;
    }
    return rc;
}

int rfs_coord_search(struct rfs_coord *co, json_t *body, json_t **hits, char *err, size_t errlen)
{
    *hits = NULL;
    json_t *resp = NULL;
    int rc = rfs_coord_search_raw(co, body, &resp, err, errlen);
    if (!rc) {
        json_t *h = json_object_get(json_object_get(resp, "hits"), "hits");
        *hits = json_is_array(h) ? json_incref(h) : json_array();
    }
    json_decref(resp);
    return rc;
}

int rfs_coord_count(struct rfs_coord *co, json_t *query, int64_t *count, char *err, size_t errlen)
{
    struct sm_buf p;
    sm_buf_init(&p, 4096);
    int rc = index_path(co, "/_count", &p);
    json_t *resp = NULL, *body = json_pack("{sO}", "query", query);
    if (!rc)
        rc = sm_http_request_json(co->c, "POST", (const char *)p.data, body, &resp, NULL, err, errlen);
    if (!rc)
        *count = json_integer_value(json_object_get(resp, "count"));
    json_decref(resp);
    json_decref(body);
    sm_buf_free(&p);
    return rc;
}
