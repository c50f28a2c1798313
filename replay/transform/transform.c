#include "transform/transform.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>

#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct rename { char *from, *to; bool prefix; };

struct replay_transform {
    bool remove_auth, remove_types;
    struct sm_strlist add, remove;
    struct rename *renames;
    size_t n_renames;
    regex_t *drops;
    size_t n_drops;
};

void replay_transform_free(struct replay_transform *t)
{
    if (!t)
        return;
    sm_strlist_free(&t->add);
    sm_strlist_free(&t->remove);
    for (size_t i = 0; i < t->n_renames; i++) {
        sm_free(t->renames[i].from);
        sm_free(t->renames[i].to);
    }
    sm_free(t->renames);
    for (size_t i = 0; i < t->n_drops; i++)
        regfree(&t->drops[i]);
    sm_free(t->drops);
    sm_free(t);
}

static int copy_list(struct sm_strlist *dst, const struct sm_strlist *src)
{
    for (size_t i = 0; src && i < src->n; i++)
        if (sm_strlist_push(dst, src->v[i]))
            return SM_ENOMEM;
    return SM_OK;
}

struct replay_transform *replay_transform_new(const struct replay_transform_cfg *cfg, char *err, size_t errlen)
{
    struct replay_transform *t = sm_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->remove_auth = cfg->remove_auth;
    t->remove_types = cfg->remove_types;
    if (copy_list(&t->add, cfg->add_headers) || copy_list(&t->remove, cfg->remove_headers))
        goto nomem;
    for (size_t i = 0; i < t->add.n; i++)
        if (!strchr(t->add.v[i], ':')) {
            sm_errf(err, errlen, SM_ECONFIG, "--add-header '%s': expected 'Name: value'", t->add.v[i]);
            goto fail;
        }
    size_t nr = cfg->index_renames ? cfg->index_renames->n : 0;
    t->renames = sm_calloc(nr ? nr : 1, sizeof(*t->renames));
    if (!t->renames)
        goto nomem;
    for (size_t i = 0; i < nr; i++) {
        const char *r = cfg->index_renames->v[i];
        const char *eq = strchr(r, '=');
        if (!eq || eq == r || !eq[1]) {
            sm_errf(err, errlen, SM_ECONFIG, "--index-rename '%s': expected old=new", r);
            goto fail;
        }
        struct rename *rn = &t->renames[t->n_renames++];
        rn->from = sm_strndup(r, (size_t)(eq - r));
        rn->to = sm_strdup(eq + 1);
        if (!rn->from || !rn->to)
            goto nomem;
        size_t fl = strlen(rn->from), tl = strlen(rn->to);
        if (rn->from[fl - 1] == '*') {
            if (rn->to[tl - 1] != '*') {
                sm_errf(err, errlen, SM_ECONFIG, "--index-rename '%s': a prefix rule needs '*' on both sides", r);
                goto fail;
            }
            rn->prefix = true;
            rn->from[fl - 1] = 0;
            rn->to[tl - 1] = 0;
        }
    }
    size_t nd = cfg->drop_patterns ? cfg->drop_patterns->n : 0;
    t->drops = sm_calloc(nd ? nd : 1, sizeof(*t->drops));
    if (!t->drops)
        goto nomem;
    for (size_t i = 0; i < nd; i++) {
        int rc = regcomp(&t->drops[i], cfg->drop_patterns->v[i], REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char rb[128];
            regerror(rc, &t->drops[i], rb, sizeof(rb));
            sm_errf(err, errlen, SM_ECONFIG, "--drop-request '%s': %s", cfg->drop_patterns->v[i], rb);
            goto fail;
        }
        t->n_drops++;
    }
    return t;
nomem:
    sm_errf(err, errlen, SM_ENOMEM, "out of memory");
fail:
    replay_transform_free(t);
    return NULL;
}

char *replay_transform_rename_index(const struct replay_transform *t, const char *name)
{
    for (size_t i = 0; i < t->n_renames; i++) {
        const struct rename *r = &t->renames[i];
        if (r->prefix) {
            size_t pl = strlen(r->from);
            if (!strncmp(name, r->from, pl)) {
                struct sm_buf b;
                sm_buf_init(&b, 4096);
                if (sm_buf_printf(&b, "%s%s", r->to, name + pl)) {
                    sm_buf_free(&b);
                    return NULL;
                }
                return (char *)sm_buf_steal(&b, NULL);
            }
        } else if (!strcmp(name, r->from)) {
            return sm_strdup(r->to);
        }
    }
    return NULL;
}

/* Path rewriting: split "/a/b/c?q" into segments. */
static int rewrite_path(struct replay_transform *t, struct replay_http_msg *msg, bool *is_bulkish)
{
    const char *uri = msg->uri;
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    char *segs[64];
    size_t n = 0;
    char *path = sm_strndup(uri, plen);
    if (!path)
        return SM_ENOMEM;
    for (char *s = path; *s && n < 64;) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        segs[n++] = s;
        char *e = strchr(s, '/');
        if (!e)
            break;
        *e = 0;
        s = e + 1;
    }
    struct sm_buf out;
    sm_buf_init(&out, 1 << 20);
    int rc = SM_OK;
    char *renamed_first = NULL;
    if (n && segs[0][0] != '_' && t->n_renames) {
        /* first segment is an index expression: comma-separated names */
        struct sm_buf nb;
        sm_buf_init(&nb, 64 << 10);
        const char *p = segs[0];
        while (*p && !rc) {
            size_t l = strcspn(p, ",");
            char *one = sm_strndup(p, l);
            char *rn = one ? replay_transform_rename_index(t, one) : NULL;
            rc = sm_buf_printf(&nb, "%s%s", nb.len ? "," : "", rn ? rn : (one ? one : ""));
            sm_free(one);
            sm_free(rn);
            p += l;
            if (*p == ',')
                p++;
        }
        renamed_first = (char *)sm_buf_steal(&nb, NULL);
    }
    size_t skip = (size_t)-1;
    if (t->remove_types && n >= 2 && segs[0][0] != '_' && segs[1][0] != '_') {
        /* /idx/<type>/<id>, /idx/<type>/<id>/_update, /idx/<type>/_search ... */
        skip = 1;
    }
    /* typed document sub-endpoints: /idx/<type>/<id>/_update -> /idx/_update/<id> */
    if (skip == 1 && n == 4 && (!strcmp(segs[3], "_update") || !strcmp(segs[3], "_create"))) {
        segs[1] = segs[3];
        n = 3;
        skip = (size_t)-1;
    }
    /* PUT /idx/_mapping/<type> -> /idx/_mapping */
    if (t->remove_types && n == 3 && !strcmp(segs[1], "_mapping"))
        n = 2;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *s = (i == 0 && renamed_first) ? renamed_first : segs[i];
        if (i == skip) {
            /* a type segment: the document endpoints become _doc, others lose it */
            if (i + 1 < n && segs[i + 1][0] != '_')
                s = "_doc";
            else if (i + 1 == n)
                s = "_doc";   /* PUT /idx/type (create with id-less)? keep as _doc */
            else
                continue;
        }
        rc = sm_buf_printf(&out, "/%s", s);
    }
    if (!rc && n == 0)
        rc = sm_buf_append(&out, "/", 1);
    if (!rc && plen && uri[plen - 1] == '/' && n)
        rc = sm_buf_append(&out, "/", 1);
    if (!rc && q) {
        /* drop include_type_name from the query when removing types */
        if (t->remove_types) {
            struct sm_buf qb;
            sm_buf_init(&qb, 1 << 20);
            const char *p = q + 1;
            while (*p && !rc) {
                size_t l = strcspn(p, "&");
                if (!(l >= 17 && !strncmp(p, "include_type_name", 17) && (l == 17 || p[17] == '=')))
                    rc = sm_buf_printf(&qb, "%c%.*s", qb.len ? '&' : '?', (int)l, p);
                p += l;
                if (*p == '&')
                    p++;
            }
            if (!rc && qb.len)
                rc = sm_buf_append(&out, qb.data, qb.len);
            sm_buf_free(&qb);
        } else {
            rc = sm_buf_append_str(&out, q);
        }
    }
    const char *last = n ? segs[n - 1] : "";
    *is_bulkish = !strcmp(last, "_bulk");
    if (!rc)
        rc = replay_http_set_uri(msg, (char *)out.data);
    sm_buf_free(&out);
    sm_free(renamed_first);
    sm_free(path);
    return rc;
}

/* _bulk bodies: action lines get renamed _index and lose _type; source lines pass. */
static int rewrite_bulk(struct replay_transform *t, struct replay_http_msg *msg, char *err, size_t errlen)
{
    if (!msg->body_len)
        return SM_OK;
    struct sm_buf out;
    sm_buf_init(&out, (size_t)1 << 31);
    const char *p = (const char *)msg->body, *end = p + msg->body_len;
    bool expect_action = true;
    int rc = SM_OK;
    size_t lineno = 0;
    while (p < end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (l == 0 || (l == 1 && p[0] == '\r')) {
            rc = sm_buf_append(&out, p, l + (nl ? 1 : 0));
            p += l + (nl ? 1 : 0);
            continue;
        }
        if (expect_action) {
            json_error_t je;
            json_t *a = json_loadb(p, l, 0, &je);
            const char *op;
            json_t *meta;
            if (!a || !json_is_object(a) || json_object_size(a) != 1) {
                json_decref(a);
                rc = sm_errf(err, errlen, SM_EPROTO, "_bulk line %zu: not an action object", lineno);
                break;
            }
            json_object_foreach(a, op, meta) {
                if (!json_is_object(meta))
                    continue;
                json_t *ix = json_object_get(meta, "_index");
                if (ix && json_is_string(ix)) {
                    char *rn = replay_transform_rename_index(t, json_string_value(ix));
                    if (rn) {
                        json_object_set_new(meta, "_index", json_string(rn));
                        sm_free(rn);
                    }
                }
                if (t->remove_types)
                    json_object_del(meta, "_type");
                expect_action = !!strcmp(op, "delete") ? false : true;
            }
            char *s = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(a);
            if (!s) {
                rc = SM_ENOMEM;
                break;
            }
            rc = sm_buf_printf(&out, "%s\n", s);
            free(s);
        } else {
            rc = sm_buf_append(&out, p, l + (nl ? 1 : 0));
            expect_action = true;
        }
        p += l + (nl ? 1 : 0);
    }
    if (!rc)
        rc = replay_http_set_body(msg, out.data, out.len);
    sm_buf_free(&out);
    return rc;
}

int replay_transform_apply(struct replay_transform *t, struct replay_http_msg *msg, char *err, size_t errlen)
{
    if (t->n_drops) {
        struct sm_buf line;
        sm_buf_init(&line, 1 << 20);
        sm_buf_printf(&line, "%s %s", msg->method, msg->uri);
        bool drop = false;
        for (size_t i = 0; i < t->n_drops && !drop && line.len; i++)
            drop = regexec(&t->drops[i], (char *)line.data, 0, NULL, 0) == 0;
        sm_buf_free(&line);
        if (drop)
            return REPLAY_TX_DROP;
    }
    replay_http_remove_header(msg, "host");
    if (t->remove_auth)
        replay_http_remove_header(msg, "authorization");
    for (size_t i = 0; i < t->remove.n; i++)
        replay_http_remove_header(msg, t->remove.v[i]);
    for (size_t i = 0; i < t->add.n; i++) {
        const char *c = strchr(t->add.v[i], ':');
        char *name = sm_strndup(t->add.v[i], (size_t)(c - t->add.v[i]));
        const char *v = c + 1;
        while (*v == ' ')
            v++;
        int rc = name ? replay_http_set_header(msg, name, v) : SM_ENOMEM;
        sm_free(name);
        if (rc)
            return rc;
    }
    if (!t->n_renames && !t->remove_types)
        return REPLAY_TX_SEND;
    bool bulkish = false;
    int rc = rewrite_path(t, msg, &bulkish);
    if (rc)
        return sm_errf(err, errlen, rc, "rewriting %s: %s", msg->uri, sm_strerror(rc));
    if (bulkish) {
        const char *ce = replay_http_header(msg, "content-encoding");
        if (ce && strcasecmp(ce, "identity"))
            return sm_errf(err, errlen, SM_EUNSUPPORTED, "_bulk body with Content-Encoding %s cannot be rewritten", ce);
        if ((rc = rewrite_bulk(t, msg, err, errlen)))
            return rc;
    }
    return REPLAY_TX_SEND;
}
