/* Metadata migration: collecting items (snapshot or live cluster), the
 * transformation pass, rendering for the target, checking and creating on
 * the target, the report. The rules themselves are in rules.c. */
#include "metadata/metadata.h"

#include "snapshot/snapshot.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rfs_md_kind_name(enum rfs_md_kind k)
{
    switch (k) {
    case RFS_MD_COMPONENT_TEMPLATE: return "component_template";
    case RFS_MD_INDEX_TEMPLATE: return "index_template";
    case RFS_MD_LEGACY_TEMPLATE: return "template";
    case RFS_MD_INDEX: return "index";
    default: return "?";
    }
}

const char *rfs_md_action_name(enum rfs_md_action a)
{
    static const char *const names[] = { "create", "skip", "exists", "overwrite", "conflict", "failed" };
    return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

int rfs_md_compat_major(const struct rfs_md_version *v)
{
    if (!v->opensearch)
        return v->major;
    return v->major <= 1 ? 7 : 8;
}

int rfs_md_version_parse(const char *number, bool opensearch, struct rfs_md_version *v)
{
    memset(v, 0, sizeof(*v));
    if (!number || !isdigit((unsigned char)number[0]))
        return SM_EINVAL;
    char *end;
    v->major = (int)strtol(number, &end, 10);
    if (*end == '.')
        v->minor = (int)strtol(end + 1, NULL, 10);
    v->opensearch = opensearch;
    snprintf(v->number, sizeof(v->number), "%s", number);
    return SM_OK;
}

/* ---- plan ---- */

struct rfs_md_plan *rfs_md_plan_new(const struct rfs_md_opts *opts)
{
    struct rfs_md_plan *p = sm_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->opts = *opts;
    return p;
}

static void item_free(struct rfs_md_item *it)
{
    if (!it)
        return;
    sm_free(it->name);
    sm_free(it->source_name);
    sm_free(it->error);
    json_decref(it->source);
    json_decref(it->body);
    json_decref(it->transforms);
    json_decref(it->notes);
    json_decref(it->problems);
    json_decref(it->type_rule);
    sm_free(it);
}

void rfs_md_plan_free(struct rfs_md_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->nitems; i++)
        item_free(plan->items[i]);
    sm_free(plan->items);
    json_decref(plan->source_info);
    json_decref(plan->target_info);
    sm_free(plan);
}

struct rfs_md_item *rfs_md_plan_add(struct rfs_md_plan *plan, enum rfs_md_kind kind, const char *name, json_t *body)
{
    if (sm_grow(&plan->items, &plan->cap, plan->nitems, sizeof(*plan->items), 16)) {
        json_decref(body);
        return NULL;
    }
    struct rfs_md_item *it = sm_calloc(1, sizeof(*it));
    if (!it) {
        json_decref(body);
        return NULL;
    }
    it->kind = kind;
    it->name = sm_strdup(name);
    it->source_name = sm_strdup(name);
    it->body = body ? body : json_object();
    it->source = json_deep_copy(it->body);
    it->transforms = json_array();
    it->notes = json_array();
    it->problems = json_array();
    if (!it->name || !it->source_name || !it->body || !it->source || !it->transforms || !it->notes ||
        !it->problems) {
        item_free(it);
        return NULL;
    }
    plan->items[plan->nitems++] = it;
    return it;
}

/* ---- normalisation ---- */

static void flatten_into(json_t *out, const char *prefix, const json_t *v)
{
    const char *k;
    json_t *x;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x) {
            char key[512];
            snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k);
            flatten_into(out, key, x);
        }
        return;
    }
    if (json_is_string(v)) {
        json_object_set(out, prefix, (json_t *)v);
    } else if (json_is_array(v)) {
        json_object_set_new(out, prefix, json_deep_copy(v));
    } else if (json_is_integer(v)) {
        char b[32];
        snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(v));
        json_object_set_new(out, prefix, json_string(b));
    } else if (json_is_real(v)) {
        char b[64];
        snprintf(b, sizeof(b), "%g", json_real_value(v));
        json_object_set_new(out, prefix, json_string(b));
    } else if (json_is_boolean(v)) {
        json_object_set_new(out, prefix, json_string(json_is_true(v) ? "true" : "false"));
    }
}

json_t *rfs_md_flatten_settings(const json_t *settings)
{
    json_t *flat = json_object(), *out = json_object();
    flatten_into(flat, "", settings);
    const char *k;
    json_t *v;
    json_object_foreach(flat, k, v) {
        if (!strncmp(k, "index.", 6)) {
            json_object_set(out, k, v);
        } else {
            char key[520];
            snprintf(key, sizeof(key), "index.%s", k);
            json_object_set(out, key, v);
        }
    }
    json_decref(flat);
    return out;
}

static json_t *typed_mappings(const json_t *m, const char *default_type)
{
    json_t *out = json_object();
    size_t i;
    json_t *v;
    if (json_is_array(m)) {
        json_array_foreach(m, i, v) {
            const char *t;
            json_t *tm;
            json_object_foreach(v, t, tm)
                json_object_set_new(out, t, json_deep_copy(tm));
        }
    } else if (json_is_object(m) && json_object_size(m)) {
        /* typed ({type: {properties...}}) or typeless ({properties: ...}) */
        bool typeless = !default_type ? false : true;
        if (default_type) {
            const char *k;
            json_t *x;
            typeless = false;
            json_object_foreach((json_t *)m, k, x) {
                if (!strcmp(k, "properties") || !strcmp(k, "dynamic") || !strcmp(k, "dynamic_templates") ||
                    !strcmp(k, "_source") || !strcmp(k, "_meta") || !strcmp(k, "_routing") ||
                    !strcmp(k, "date_detection") || !strcmp(k, "numeric_detection") || !json_is_object(x))
                    typeless = true;
            }
        }
        if (typeless)
            json_object_set_new(out, default_type, json_deep_copy(m));
        else
            json_object_update(out, (json_t *)m);
    }
    return out;
}

json_t *rfs_md_normalize(const json_t *meta, const char *default_type)
{
    json_t *out = json_deep_copy(meta);
    if (!out)
        return NULL;
    json_t *s = json_object_get(out, "settings");
    json_object_set_new(out, "settings", s ? rfs_md_flatten_settings(s) : json_object());
    json_t *m = json_object_get(out, "mappings");
    json_object_set_new(out, "mappings", typed_mappings(m, default_type));
    if (!json_is_object(json_object_get(out, "aliases")))
        json_object_set_new(out, "aliases", json_object());
    return out;
}

json_t *rfs_md_normalize_v2(const json_t *t)
{
    json_t *c = json_deep_copy(t);
    json_t *inner = json_object_get(c, "template");
    if (json_is_object(inner)) {
        json_incref(inner);
        json_object_del(c, "template");
        json_object_update(c, inner);
        json_decref(inner);
    }
    json_t *out = rfs_md_normalize(c, "_doc");
    json_decref(c);
    return out;
}

static void add_templates(struct rfs_md_plan *plan, json_t *g, bool typeless_source)
{
    const char *n;
    json_t *t;
    json_object_foreach(json_object_get(g, "templates"), n, t)
        rfs_md_plan_add(plan, RFS_MD_LEGACY_TEMPLATE, n, rfs_md_normalize(t, typeless_source ? "_doc" : NULL));
    json_t *ct = json_object_get(g, "component_template");
    if (json_object_get(ct, "component_template"))
        ct = json_object_get(ct, "component_template");
    json_object_foreach(ct, n, t)
        rfs_md_plan_add(plan, RFS_MD_COMPONENT_TEMPLATE, n, rfs_md_normalize_v2(t));
    json_t *it = json_object_get(g, "index_template");
    if (json_object_get(it, "index_template"))
        it = json_object_get(it, "index_template");
    json_object_foreach(it, n, t)
        rfs_md_plan_add(plan, RFS_MD_INDEX_TEMPLATE, n, rfs_md_normalize_v2(t));
}

static bool index_selected(const struct rfs_md_plan *plan, const char *name)
{
    return !plan->opts.index_pattern || sm_pattern_match(plan->opts.index_pattern, name);
}

int rfs_md_collect_snapshot(struct rfs_md_plan *plan, struct rfs_snapshot *snap, char *err, size_t errlen)
{
    const struct rfs_snapshot_info *si = rfs_snapshot_info(snap);
    uint32_t vid = si->version_id;
    char ebuf[1024];
    size_t n = rfs_snapshot_index_count(snap);
    for (size_t i = 0; !vid && i < n; i++) {
        const struct rfs_index_info *ii;
        if (index_selected(plan, rfs_snapshot_index_name(snap, i)) &&
            !rfs_snapshot_index_at(snap, i, &ii, ebuf, sizeof(ebuf)))
            vid = ii->created_id;
    }
    if (vid) {
        char num[48];
        rfs_md_version_parse(rfs_version_format(vid, num, sizeof(num)), rfs_version_is_opensearch(vid),
                             &plan->source);
        plan->source_known = true;
    } else if (si->version && !rfs_md_version_parse(si->version, false, &plan->source)) {
        plan->source_known = true;
    }
    if (!plan->source_known)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "snapshot %s: the version that wrote it is unknown", si->name);
    plan->source_info = json_pack("{s:s, s:s, s:s, s:s}", "kind", "snapshot", "snapshot", si->name, "version",
                                  plan->source.number, "distribution",
                                  plan->source.opensearch ? "opensearch" : "elasticsearch");

    json_t *g = NULL;
    int rc = rfs_snapshot_global_metadata(snap, &g, ebuf, sizeof(ebuf));
    if (rc == SM_ENOTFOUND)
        sm_log_info("metadata: snapshot %s has no global metadata (no templates)", si->name);
    else if (rc)
        return sm_errf(err, errlen, rc, "global metadata: %s", ebuf);
    else
        add_templates(plan, g, rfs_md_compat_major(&plan->source) >= 8);

    for (size_t i = 0; i < n; i++) {
        const char *name = rfs_snapshot_index_name(snap, i);
        if (!index_selected(plan, name)) {
            struct rfs_md_item *it = rfs_md_plan_add(plan, RFS_MD_INDEX, name, NULL);
            if (!it)
                return SM_ENOMEM;
            it->action = RFS_MD_SKIP;
            rfs_md_note(it, "not selected by --index");
            continue;
        }
        const struct rfs_index_info *ii;
        rc = rfs_snapshot_index_at(snap, i, &ii, ebuf, sizeof(ebuf));
        if (rc) {
            struct rfs_md_item *it = rfs_md_plan_add(plan, RFS_MD_INDEX, name, NULL);
            if (!it)
                return SM_ENOMEM;
            it->action = RFS_MD_FAILED;
            rfs_md_problem(it, "index [%s]: metadata unreadable: %s", name, ebuf);
            it->error = sm_strdup(ebuf);
            continue;
        }
        json_t *empty = json_object();
        json_t *meta = json_pack("{sOsOsO}", "settings", ii->settings ? ii->settings : empty, "mappings",
                                 ii->mappings ? ii->mappings : empty, "aliases", ii->aliases ? ii->aliases : empty);
        json_decref(empty);
        json_t *body = rfs_md_normalize(meta, NULL);
        json_decref(meta);
        json_t *rns = json_object_get(ii->metadata, "routing_num_shards");
        if (json_is_integer(rns))
            json_object_set(body, "routing_num_shards", rns);
        if (json_is_true(json_object_get(ii->metadata, "system")))
            json_object_set_new(body, "system", json_true());
        const char *state = json_string_value(json_object_get(ii->metadata, "state"));
        struct rfs_md_item *it = rfs_md_plan_add(plan, RFS_MD_INDEX, name, body);
        if (!it)
            return SM_ENOMEM;
        if (state && !strcmp(state, "close"))
            rfs_md_note(it, "closed on the source; created open on the target");
    }
    return SM_OK;
}

/* ---- REST helpers ---- */

static void path_escape(char *out, size_t len, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && o + 4 < len; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
}

/* "type: reason (caused by: ...)" from an error body, else the client's message. */
static char *error_reason(json_t *resp, const char *fallback)
{
    json_t *e = json_object_get(resp, "error");
    char buf[1024];
    if (json_is_object(e)) {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *reason = json_string_value(json_object_get(e, "reason"));
        json_t *cb = json_object_get(e, "caused_by");
        const char *cr = json_string_value(json_object_get(cb, "reason"));
        snprintf(buf, sizeof(buf), "%s: %s%s%s%s", type ? type : "error", reason ? reason : "",
                 cr && (!reason || !strstr(reason, cr)) ? " (caused by: " : "",
                 cr && (!reason || !strstr(reason, cr)) ? cr : "",
                 cr && (!reason || !strstr(reason, cr)) ? ")" : "");
        return sm_strdup(buf);
    }
    if (json_is_string(e))
        return sm_strdup(json_string_value(e));
    return sm_strdup(fallback);
}

int rfs_md_cluster_version(struct sm_http_client *c, struct rfs_md_version *v, json_t **info, char *err,
                           size_t errlen)
{
    json_t *r = NULL;
    long status = 0;
    char e[1024];
    int rc = sm_http_request_json(c, "GET", "/", NULL, &r, &status, e, sizeof(e));
    if (rc) {
        json_decref(r);
        return sm_errf(err, errlen, rc, "%s", e);
    }
    json_t *ver = json_object_get(r, "version");
    const char *num = json_string_value(json_object_get(ver, "number"));
    const char *dist = json_string_value(json_object_get(ver, "distribution"));
    bool os = dist && !strcmp(dist, "opensearch");
    if (!num || rfs_md_version_parse(num, os, v)) {
        json_decref(r);
        return sm_errf(err, errlen, SM_EPROTO, "GET %s/: no version.number in the response",
                       sm_http_client_url(c));
    }
    if (info)
        *info = json_pack("{sssssssi}", "url", sm_http_client_url(c), "distribution",
                          os ? "opensearch" : "elasticsearch", "version", num, "compat_major",
                          rfs_md_compat_major(v));
    json_decref(r);
    return SM_OK;
}

int rfs_md_collect_live(struct rfs_md_plan *plan, struct sm_http_client *src, char *err, size_t errlen)
{
    int rc = rfs_md_cluster_version(src, &plan->source, &plan->source_info, err, errlen);
    if (rc)
        return rc;
    plan->source_known = true;
    json_object_set_new(plan->source_info, "kind", json_string("cluster"));
    int cm = rfs_md_compat_major(&plan->source);
    const char *deftype = cm >= 7 ? "_doc" : NULL;
    json_t *r = NULL;
    char e[1024];
    json_t *g = json_object();
    if (!(rc = sm_http_request_json(src, "GET", "/_template", NULL, &r, NULL, e, sizeof(e))))
        json_object_set(g, "templates", r);
    else if (rc != SM_ENOTFOUND)
        goto fail;
    json_decref(r);
    r = NULL;
    bool v2 = plan->source.opensearch || plan->source.major > 7 || (plan->source.major == 7 && plan->source.minor >= 8);
    if (v2) {
        static const char *const what[][3] = { { "/_component_template", "component_templates", "component_template" },
                                               { "/_index_template", "index_templates", "index_template" } };
        for (size_t w = 0; w < 2; w++) {
            if ((rc = sm_http_request_json(src, "GET", what[w][0], NULL, &r, NULL, e, sizeof(e))))
                goto fail;
            json_t *obj = json_object();
            size_t i;
            json_t *x;
            json_array_foreach(json_object_get(r, what[w][1]), i, x) {
                const char *n = json_string_value(json_object_get(x, "name"));
                if (n)
                    json_object_set(obj, n, json_object_get(x, what[w][2]));
            }
            json_object_set_new(g, what[w][2], obj);
            json_decref(r);
            r = NULL;
        }
    }
    add_templates(plan, g, cm >= 7);
    json_decref(g);
    if ((rc = sm_http_request_json(src, "GET", "/_all?flat_settings=true", NULL, &r, NULL, e, sizeof(e))))
        goto fail;
    const char *name;
    json_t *ix;
    json_object_foreach(r, name, ix) {
        if (!index_selected(plan, name)) {
            struct rfs_md_item *it = rfs_md_plan_add(plan, RFS_MD_INDEX, name, NULL);
            if (!it)
                return SM_ENOMEM;
            it->action = RFS_MD_SKIP;
            rfs_md_note(it, "not selected by --index");
            continue;
        }
        if (!rfs_md_plan_add(plan, RFS_MD_INDEX, name, rfs_md_normalize(ix, deftype))) {
            json_decref(r);
            return SM_ENOMEM;
        }
    }
    json_decref(r);
    return SM_OK;
fail:
    json_decref(r);
    json_decref(g);
    return sm_errf(err, errlen, rc, "source: %s", e);
}

/* ---- transformation pass ---- */

static const char *const system_templates =
    "ilm-history*,slm-history*,logs,logs-mappings,logs-settings,metrics,metrics-mappings,metrics-settings,"
    "synthetics,synthetics-mappings,synthetics-settings,security-index-template,security_audit_log,"
    "triggered_watches,watches,watch-history*,logstash-index-template,kibana_index_template*,"
    "data-streams-mappings,*@ilm,*@settings,*@mappings,*@package,*@custom";

static const char *system_reason(const struct rfs_md_item *it)
{
    if (it->name[0] == '.')
        return "system/internal (name starts with '.')";
    if (it->kind != RFS_MD_INDEX && sm_pattern_match(system_templates, it->name))
        return "X-Pack/stack template";
    if (json_is_true(json_object_get(json_object_get(it->body, "_meta"), "managed")))
        return "managed by the source cluster (_meta.managed)";
    if (json_is_true(json_object_get(it->body, "system")))
        return "system index";
    return NULL;
}

static int split_index(struct rfs_md_plan *plan, size_t idx)
{
    struct rfs_md_item *orig = plan->items[idx];
    json_t *maps = json_object_get(orig->body, "mappings");
    json_t *types = json_object();
    const char *t;
    json_t *m;
    bool typed_target = rfs_md_compat_major(&plan->target) < 7;
    json_object_foreach(maps, t, m) {
        if (!strcmp(t, "_default_"))
            continue;
        char name[512];
        snprintf(name, sizeof(name), "%s_%s", orig->name, t);
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        json_t *body = json_deep_copy(orig->body);
        json_t *one = json_object();
        json_object_set(one, t, m);
        json_object_set_new(body, "mappings", one);
        struct rfs_md_item *it = rfs_md_plan_add(plan, RFS_MD_INDEX, name, body);
        if (!it) {
            json_decref(types);
            return SM_ENOMEM;
        }
        orig = plan->items[idx];   /* the array may have moved */
        sm_free(it->source_name);
        it->source_name = sm_strdup(orig->source_name);
        json_decref(it->source);
        it->source = json_deep_copy(orig->source);
        json_t *tr = json_pack("{sss{s{ssso}}}", "mode", "split", "types", t, "index", name, "type",
                               typed_target ? json_string(t) : json_null());
        it->type_rule = tr;
        json_object_set(types, t, json_object_get(json_object_get(tr, "types"), t));
        rfs_md_note(it, "type [%s] of index [%s] (--multi-type split)", t, orig->name);
    }
    orig->action = RFS_MD_SKIP;
    rfs_md_note(orig, "multi-type index split into one index per type (--multi-type split)");
    orig->type_rule = json_pack("{ssso}", "mode", "split", "types", types);
    return SM_OK;
}

static size_t type_count(json_t *body)
{
    json_t *maps = json_object_get(body, "mappings");
    return json_object_size(maps) - (json_object_get(maps, "_default_") ? 1 : 0);
}

static int item_cmp(const void *a, const void *b)
{
    const struct rfs_md_item *x = *(const struct rfs_md_item *const *)a, *y = *(const struct rfs_md_item *const *)b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    return strcmp(x->name, y->name);
}

int rfs_md_transform(struct rfs_md_plan *plan)
{
    size_t n = plan->nitems;
    for (size_t i = 0; i < n; i++) {
        struct rfs_md_item *it = plan->items[i];
        if (it->action != RFS_MD_CREATE)
            continue;
        if (it->kind != RFS_MD_INDEX && plan->opts.template_pattern &&
            !sm_pattern_match(plan->opts.template_pattern, it->name)) {
            it->action = RFS_MD_SKIP;
            rfs_md_note(it, "not selected by --template");
            continue;
        }
        const char *sys = plan->opts.include_system ? NULL : system_reason(it);
        if (sys) {
            it->action = RFS_MD_SKIP;
            rfs_md_note(it, "%s: skipped (--include-system migrates it)", sys);
            continue;
        }
        if (it->kind == RFS_MD_INDEX && plan->opts.multi_type == RFS_MD_MULTI_SPLIT && type_count(it->body) > 1) {
            int rc = split_index(plan, i);
            if (rc)
                return rc;
        }
    }
    for (size_t i = 0; i < plan->nitems; i++) {
        struct rfs_md_item *it = plan->items[i];
        if (it->action != RFS_MD_CREATE)
            continue;
        int rc = rfs_md_apply_rules(plan, it);
        if (rc)
            return rc;
        if (json_array_size(it->problems) && it->action == RFS_MD_CREATE)
            it->action = RFS_MD_CONFLICT;
    }
    if (plan->nitems > 1)   /* items is NULL when there are none */
        qsort(plan->items, plan->nitems, sizeof(plan->items[0]), item_cmp);
    return SM_OK;
}

/* ---- rendering ---- */

static json_t *render_mappings(const struct rfs_md_plan *plan, const struct rfs_md_item *it)
{
    json_t *maps = json_object_get(it->body, "mappings");
    if (!json_object_size(maps))
        return NULL;
    bool typed = rfs_md_compat_major(&plan->target) < 7 && it->kind != RFS_MD_INDEX_TEMPLATE &&
                 it->kind != RFS_MD_COMPONENT_TEMPLATE;
    if (typed)
        return json_deep_copy(maps);
    void *iter = json_object_iter(maps);
    return json_deep_copy(json_object_iter_value(iter));
}

static void set_nonempty(json_t *o, const char *k, json_t *v)
{
    if (v && (!json_is_object(v) || json_object_size(v)))
        json_object_set_new(o, k, v);
    else
        json_decref(v);
}

json_t *rfs_md_render(const struct rfs_md_plan *plan, const struct rfs_md_item *it)
{
    json_t *b = it->body, *out = json_object();
    json_t *sec = json_object();
    set_nonempty(sec, "settings", json_deep_copy(json_object_get(b, "settings")));
    set_nonempty(sec, "mappings", render_mappings(plan, it));
    set_nonempty(sec, "aliases", json_deep_copy(json_object_get(b, "aliases")));
    static const char *const legacy_keys[] = { "index_patterns", "order", "version", NULL };
    static const char *const v2_keys[] = { "index_patterns", "composed_of", "priority", "version", "_meta",
                                           "data_stream", NULL };
    const char *const *keys = NULL;
    switch (it->kind) {
    case RFS_MD_INDEX:
        json_object_update(out, sec);
        break;
    case RFS_MD_LEGACY_TEMPLATE:
        json_object_update(out, sec);
        keys = legacy_keys;
        break;
    case RFS_MD_COMPONENT_TEMPLATE:
    case RFS_MD_INDEX_TEMPLATE:
        json_object_set(out, "template", sec);
        keys = v2_keys;
        break;
    default:
        break;
    }
    for (size_t i = 0; keys && keys[i]; i++) {
        json_t *v = json_object_get(b, keys[i]);
        if (v)
            json_object_set(out, keys[i], v);
    }
    json_decref(sec);
    return out;
}

static void item_path(const struct rfs_md_item *it, char *out, size_t len)
{
    char esc[600];
    path_escape(esc, sizeof(esc), it->name);
    static const char *const pfx[] = { "/_component_template/", "/_index_template/", "/_template/", "/" };
    snprintf(out, len, "%s%s", pfx[it->kind], esc);
}

static struct rfs_md_item *find_item(struct rfs_md_plan *plan, enum rfs_md_kind kind, const char *name)
{
    for (size_t i = 0; i < plan->nitems; i++)
        if (plan->items[i]->kind == kind && !strcmp(plan->items[i]->name, name))
            return plan->items[i];
    return NULL;
}

int rfs_md_check_target(struct rfs_md_plan *plan, struct sm_http_client *tgt, char *err, size_t errlen)
{
    for (size_t i = 0; i < plan->nitems; i++) {
        struct rfs_md_item *it = plan->items[i];
        if (it->action != RFS_MD_CREATE)
            continue;
        char path[700], e[1024];
        item_path(it, path, sizeof(path));
        json_t *r = NULL;
        long status = 0;
        int rc = sm_http_request_json(tgt, "GET", path, NULL, &r, &status, e, sizeof(e));
        if (rc == SM_OK) {
            if (it->kind == RFS_MD_INDEX && !json_object_get(r, it->name)) {
                it->action = RFS_MD_CONFLICT;
                rfs_md_problem(it, "[%s] is an alias on the target", it->name);
            } else {
                it->action = plan->opts.overwrite ? RFS_MD_OVERWRITE : RFS_MD_EXISTS;
                rfs_md_note(it, plan->opts.overwrite ? "exists on the target: replaced (--overwrite)"
                                                      : "exists on the target: left alone (--overwrite replaces it)");
            }
        } else if (rc != SM_ENOTFOUND) {
            json_decref(r);
            if (status == 0)
                return sm_errf(err, errlen, rc, "target: %s", e);
            /* e.g. 400/405: the target cannot answer for this kind */
            it->action = RFS_MD_CONFLICT;
            char *why = error_reason(r, e);
            rfs_md_problem(it, "the target cannot look it up: %s", why ? why : e);
            sm_free(why);
            continue;
        }
        json_decref(r);
    }
    /* composable templates need their component templates */
    for (size_t i = 0; i < plan->nitems; i++) {
        struct rfs_md_item *it = plan->items[i];
        if (it->kind != RFS_MD_INDEX_TEMPLATE || (it->action != RFS_MD_CREATE && it->action != RFS_MD_OVERWRITE))
            continue;
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(it->body, "composed_of"), k, c) {
            struct rfs_md_item *ct = find_item(plan, RFS_MD_COMPONENT_TEMPLATE, json_string_value(c));
            if (!ct || ct->action == RFS_MD_SKIP || ct->action == RFS_MD_CONFLICT || ct->action == RFS_MD_FAILED) {
                rfs_md_problem(it, "component template [%s] is not migrated", json_string_value(c));
                it->action = RFS_MD_CONFLICT;
            }
        }
    }
    return SM_OK;
}

size_t rfs_md_apply(struct rfs_md_plan *plan, struct sm_http_client *tgt)
{
    size_t failed = 0;
    for (int kind = 0; kind < RFS_MD_KINDS; kind++) {
        for (size_t i = 0; i < plan->nitems; i++) {
            struct rfs_md_item *it = plan->items[i];
            if ((int)it->kind != kind)
                continue;
            if (it->action == RFS_MD_FAILED || it->action == RFS_MD_CONFLICT) {
                failed++;
                continue;
            }
            if (it->action != RFS_MD_CREATE && it->action != RFS_MD_OVERWRITE)
                continue;
            char path[720], e[1024];
            item_path(it, path, sizeof(path) - 16);
            json_t *r = NULL;
            int rc = 0;
            if (it->action == RFS_MD_OVERWRITE && kind == RFS_MD_INDEX) {
                rc = sm_http_request_json(tgt, "DELETE", path, NULL, &r, NULL, e, sizeof(e));
                if (rc == SM_ENOTFOUND)
                    rc = 0;
            }
            if (!rc) {
                json_decref(r);
                r = NULL;
                if (it->action == RFS_MD_CREATE && kind != RFS_MD_INDEX) {
                    size_t pl = strlen(path);
                    snprintf(path + pl, sizeof(path) - pl, "?create=true");
                }
                json_t *body = rfs_md_render(plan, it);
                rc = sm_http_request_json(tgt, "PUT", path, body, &r, NULL, e, sizeof(e));
                json_decref(body);
            }
            if (rc) {
                it->action = RFS_MD_FAILED;
                sm_free(it->error);
                it->error = error_reason(r, e);
                rfs_md_problem(it, "the target rejected it: %s", it->error ? it->error : e);
                failed++;
            } else {
                it->done = true;
            }
            json_decref(r);
        }
    }
    return failed;
}

/* ---- report ---- */

json_t *rfs_md_report(const struct rfs_md_plan *plan, const char *mode)
{
    json_t *rep = json_object(), *items = json_array(), *types = json_object(), *sum = json_object();
    size_t counts[RFS_MD_FAILED + 1] = { 0 };
    for (size_t i = 0; i < plan->nitems; i++) {
        const struct rfs_md_item *it = plan->items[i];
        counts[it->action]++;
        json_t *o = json_pack("{sssssssssbsOsOsO}", "kind", rfs_md_kind_name(it->kind), "name", it->name,
                              "source_name", it->source_name, "action", rfs_md_action_name(it->action), "done",
                              it->done, "transformations", it->transforms, "notes", it->notes, "problems",
                              it->problems);
        if (it->error)
            json_object_set_new(o, "error", json_string(it->error));
        if (it->type_rule)
            json_object_set(o, "type_rule", it->type_rule);
        if (it->action == RFS_MD_CREATE || it->action == RFS_MD_OVERWRITE || it->action == RFS_MD_EXISTS ||
            it->action == RFS_MD_FAILED || it->action == RFS_MD_CONFLICT)
            json_object_set_new(o, "body", rfs_md_render(plan, it));
        json_array_append_new(items, o);
        /* per source index: how its documents' types map (split: the original's rule) */
        if (it->kind == RFS_MD_INDEX && it->type_rule && it->action != RFS_MD_FAILED &&
            (!json_object_get(types, it->source_name) || it->action == RFS_MD_SKIP))
            json_object_set(types, it->source_name, it->type_rule);
    }
    for (int a = 0; a <= RFS_MD_FAILED; a++)
        json_object_set_new(sum, rfs_md_action_name((enum rfs_md_action)a), json_integer((json_int_t)counts[a]));
    json_object_set_new(sum, "items", json_integer((json_int_t)plan->nitems));
    json_t *opts = json_pack("{s:o, s:o, s:s, s:b, s:b, s:I, s:b}", "index", plan->opts.index_pattern ? json_string(plan->opts.index_pattern)
                                                                               : json_null(),
                             "template", plan->opts.template_pattern ? json_string(plan->opts.template_pattern)
                                                                     : json_null(),
                             "multi_type", plan->opts.multi_type == RFS_MD_MULTI_SPLIT ? "split" : "union",
                             "overwrite", plan->opts.overwrite, "drop_allocation", plan->opts.drop_allocation,
                             "replicas", (json_int_t)plan->opts.replicas, "include_system", plan->opts.include_system);
    json_object_set_new(rep, "mode", json_string(mode));
    json_object_set(rep, "source", plan->source_info ? plan->source_info : json_null());
    json_object_set(rep, "target", plan->target_info ? plan->target_info : json_null());
    json_object_set_new(rep, "options", opts);
    json_object_set_new(rep, "summary", sum);
    json_object_set_new(rep, "type_rules", types);
    json_object_set_new(rep, "items", items);
    return rep;
}
