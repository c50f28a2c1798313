/* The transformation table: one row per rule, applied in table order to each
 * item whose kind is in the row's mask and whose (source, target) compat
 * majors are in the row's ranges. Each rule records what it changed so the
 * report can show it. To add a rule: write a function over the internal body
 * form (metadata.h) and add a row. */
#include "metadata/metadata.h"

#include <sm/err.h>
#include <sm/mem.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* ---- recording ---- */

__attribute__((format(printf, 2, 0))) static void push_fmt(json_t *arr, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    if (arr)
        json_array_append_new(arr, json_string(buf));
}

void rfs_md_change(struct rfs_md_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_fmt(ctx->changes, fmt, ap);
    va_end(ap);
}

void rfs_md_problem(struct rfs_md_item *item, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_fmt(item->problems, fmt, ap);
    va_end(ap);
}

void rfs_md_note(struct rfs_md_item *item, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_fmt(item->notes, fmt, ap);
    va_end(ap);
}

/* ---- mapping walking ---- */

typedef void (*field_fn)(struct rfs_md_ctx *ctx, const char *path, json_t *field);
typedef void (*root_fn)(struct rfs_md_ctx *ctx, const char *type, json_t *mapping);

static void walk_props(struct rfs_md_ctx *ctx, json_t *props, const char *prefix, field_fn fn)
{
    const char *name;
    json_t *f;
    if (!json_is_object(props))
        return;
    json_object_foreach(props, name, f) {
        if (!json_is_object(f))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s%s", prefix, name);
        fn(ctx, path, f);
        char sub[520];
        snprintf(sub, sizeof(sub), "%s.", path);
        walk_props(ctx, json_object_get(f, "properties"), sub, fn);
        walk_props(ctx, json_object_get(f, "fields"), sub, fn);
    }
}

static void each_mapping(struct rfs_md_ctx *ctx, json_t *body, root_fn rfn, field_fn ffn)
{
    json_t *maps = json_object_get(body, "mappings");
    const char *type;
    json_t *m;
    if (!json_is_object(maps))
        return;
    json_object_foreach(maps, type, m) {
        if (!json_is_object(m))
            continue;
        if (rfn)
            rfn(ctx, type, m);
        if (ffn)
            walk_props(ctx, json_object_get(m, "properties"), "", ffn);
        /* dynamic templates carry field mappings too */
        json_t *dts = json_object_get(m, "dynamic_templates");
        size_t i;
        json_t *dt;
        if (ffn && json_is_array(dts))
            json_array_foreach(dts, i, dt) {
                const char *dn;
                json_t *dv;
                json_object_foreach(dt, dn, dv) {
                    json_t *fm = json_object_get(dv, "mapping");
                    if (json_is_object(fm)) {
                        char p[300];
                        snprintf(p, sizeof(p), "dynamic_templates.%s", dn);
                        ffn(ctx, p, fm);
                    }
                }
            }
    }
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool del(json_t *o, const char *key)
{
    return json_object_get(o, key) && !json_object_del(o, key);
}

/* ---- mapping rules ---- */

static int r_default_mapping(struct rfs_md_ctx *ctx, json_t *body)
{
    json_t *maps = json_object_get(body, "mappings");
    if (del(maps, "_default_"))
        rfs_md_change(ctx, "removed the _default_ mapping");
    return 0;
}

/* ES 1/2 string: not_analyzed -> keyword, no -> keyword not indexed, else text. */
static const char *const text_only[] = { "ignore_above", "doc_values", "null_value", "normalizer", NULL };
static const char *const keyword_only[] = { "analyzer", "search_analyzer", "search_quote_analyzer", "term_vector",
                                            "position_increment_gap", "position_offset_gap", "fielddata", NULL };

static void f_string(struct rfs_md_ctx *ctx, const char *path, json_t *f)
{
    const char *t = str_of(f, "type");
    if (!t || strcmp(t, "string"))
        return;
    json_t *ix = json_object_get(f, "index");
    const char *iv = json_string_value(ix);
    bool keyword = iv && (!strcmp(iv, "not_analyzed") || !strcmp(iv, "no"));
    bool noindex = (iv && !strcmp(iv, "no")) || json_is_false(ix);
    json_object_set_new(f, "type", json_string(keyword ? "keyword" : "text"));
    if (ix) {
        if (noindex)
            json_object_set_new(f, "index", json_false());
        else
            json_object_del(f, "index");
    }
    const char *const *drop = keyword ? keyword_only : text_only;
    for (size_t i = 0; drop[i]; i++)
        if (del(f, drop[i]))
            rfs_md_change(ctx, "%s: dropped %s (not valid for %s)", path, drop[i], keyword ? "keyword" : "text");
    rfs_md_change(ctx, "%s: string -> %s%s", path, keyword ? "keyword" : "text",
                  noindex ? " (index: false)" : "");
}

static int r_string_fields(struct rfs_md_ctx *ctx, json_t *body)
{
    each_mapping(ctx, body, NULL, f_string);
    return 0;
}

static void f_index_value(struct rfs_md_ctx *ctx, const char *path, json_t *f)
{
    const char *iv = str_of(f, "index");
    if (!iv)
        return;
    bool on = strcmp(iv, "no") && strcmp(iv, "false");
    rfs_md_change(ctx, "%s: index \"%s\" -> %s", path, iv, on ? "true" : "false");
    json_object_set_new(f, "index", json_boolean(on));   /* frees iv */
}

static int r_index_values(struct rfs_md_ctx *ctx, json_t *body)
{
    each_mapping(ctx, body, NULL, f_index_value);
    return 0;
}

static const char *const removed_params[] = { "index_name", "path", "doc_values_format", "postings_format",
                                              "payloads", "precision_step", "compress", "compress_threshold",
                                              "lat_lon", "geohash", "geohash_precision", "geohash_prefix", NULL };

static void f_legacy_params(struct rfs_md_ctx *ctx, const char *path, json_t *f)
{
    for (size_t i = 0; removed_params[i]; i++)
        if (del(f, removed_params[i]))
            rfs_md_change(ctx, "%s: removed %s", path, removed_params[i]);
    json_t *ia = json_object_get(f, "index_analyzer");
    if (ia) {
        if (!json_object_get(f, "analyzer"))
            json_object_set(f, "analyzer", ia);
        json_object_del(f, "index_analyzer");
        rfs_md_change(ctx, "%s: index_analyzer -> analyzer", path);
    }
    json_t *pog = json_object_get(f, "position_offset_gap");
    if (pog) {
        json_object_set(f, "position_increment_gap", pog);
        json_object_del(f, "position_offset_gap");
        rfs_md_change(ctx, "%s: position_offset_gap -> position_increment_gap", path);
    }
    json_t *norms = json_object_get(f, "norms");
    if (json_is_object(norms)) {
        json_t *en = json_object_get(norms, "enabled");
        json_object_set_new(f, "norms", json_boolean(!en || json_is_true(en) ||
                                                      (json_is_string(en) && !strcmp(json_string_value(en), "true"))));
        rfs_md_change(ctx, "%s: norms {enabled} -> norms %s", path,
                      json_is_true(json_object_get(f, "norms")) ? "true" : "false");
    }
    json_t *on = json_object_get(f, "omit_norms");
    if (on) {
        json_object_set_new(f, "norms", json_boolean(!json_is_true(on)));
        json_object_del(f, "omit_norms");
        rfs_md_change(ctx, "%s: omit_norms -> norms", path);
    }
    json_t *fd = json_object_get(f, "fielddata");
    if (json_is_object(fd)) {
        json_object_del(f, "fielddata");
        rfs_md_change(ctx, "%s: removed fielddata settings object", path);
    }
}

static int r_legacy_field_params(struct rfs_md_ctx *ctx, json_t *body)
{
    each_mapping(ctx, body, NULL, f_legacy_params);
    return 0;
}

static void f_include_in_all(struct rfs_md_ctx *ctx, const char *path, json_t *f)
{
    if (del(f, "include_in_all"))
        rfs_md_change(ctx, "%s: removed include_in_all", path);
}

static void root_include_in_all(struct rfs_md_ctx *ctx, const char *type, json_t *m)
{
    if (del(m, "include_in_all"))
        rfs_md_change(ctx, "%s: removed include_in_all", type);
}

static int r_include_in_all(struct rfs_md_ctx *ctx, json_t *body)
{
    each_mapping(ctx, body, root_include_in_all, f_include_in_all);
    return 0;
}

static void root_all(struct rfs_md_ctx *ctx, const char *type, json_t *m)
{
    if (del(m, "_all"))
        rfs_md_change(ctx, "%s: removed _all", type);
}

static int r_all_field(struct rfs_md_ctx *ctx, json_t *body)
{
    each_mapping(ctx, body, root_all, NULL);
    return 0;
}

static const char *const removed_meta[] = { "_timestamp", "_ttl", "_boost", "_index", "_analyzer", "_type",
                                            "_uid", "_id", "_version", "_field_names_", "analyzer",
                                            "index_analyzer", "search_analyzer", NULL };

static void root_meta(struct rfs_md_ctx *ctx, const char *type, json_t *m)
{
    for (size_t i = 0; removed_meta[i]; i++)
        if (del(m, removed_meta[i]))
            rfs_md_change(ctx, "%s: removed %s", type, removed_meta[i]);
    json_t *r = json_object_get(m, "_routing");
    if (json_is_object(r) && del(r, "path"))
        rfs_md_change(ctx, "%s: removed _routing.path", type);
    if (json_is_object(r) && !json_object_size(r)) {
        json_object_del(m, "_routing");
    }
    json_t *src = json_object_get(m, "_source");
    if (json_is_object(src)) {
        bool c1 = del(src, "compress"), c2 = del(src, "compress_threshold");
        if (c1 || c2)
            rfs_md_change(ctx, "%s: removed _source compression options", type);
        json_t *en = json_object_get(src, "enabled");
        if (json_is_string(en)) {
            bool v = !strcmp(json_string_value(en), "true");
            json_object_set_new(src, "enabled", json_boolean(v));
            rfs_md_change(ctx, "%s: _source.enabled \"%s\" -> %s", type, v ? "true" : "false", v ? "true" : "false");
        }
        /* what the backfill can copy depends on it (docs/backfill.md, "Per-item results") */
        if (json_is_false(json_object_get(src, "enabled")))
            rfs_md_note(ctx->item, "%s: _source disabled: the backfill cannot copy these documents (each goes to its "
                        "failures file as no_source); only replayed traffic fills such an index", type);
        else if (json_array_size(json_object_get(src, "includes")) || json_array_size(json_object_get(src, "excludes")))
            rfs_md_note(ctx->item, "%s: _source includes/excludes: the backfill copies only the stored part of each "
                        "document", type);
    }
    if (json_object_get(m, "_parent"))
        rfs_md_problem(ctx->item, "%s: _parent (parent/child) has no equivalent without a join field; not migrated",
                       type);
}

static int r_removed_meta_fields(struct rfs_md_ctx *ctx, json_t *body)
{
    each_mapping(ctx, body, root_meta, NULL);
    return 0;
}

static void f_boolean(struct rfs_md_ctx *ctx, const char *path, json_t *f)
{
    const char *t = str_of(f, "type");
    if (t && !strcmp(t, "boolean"))
        rfs_md_note(ctx->item, "boolean field [%s]: 1.x/2.x accepted \"on\"/\"off\"/\"yes\"/\"no\"/0/1, the target "
                    "only true/false: documents with other values will be rejected by the target", path);
}

static int r_lenient_booleans(struct rfs_md_ctx *ctx, json_t *body)
{
    each_mapping(ctx, body, NULL, f_boolean);
    return 0;
}

/* Joda camelCase names of built-in formats -> snake_case (ES 7 dropped them). */
static const char *const camel_formats[] = {
    "basicDate", "basicDateTime", "basicDateTimeNoMillis", "basicOrdinalDate", "basicTime", "basicTimeNoMillis",
    "basicTTime", "basicTTimeNoMillis", "basicWeekDate", "basicWeekDateTime", "dateHour", "dateHourMinute",
    "dateHourMinuteSecond", "dateHourMinuteSecondFraction", "dateHourMinuteSecondMillis", "dateOptionalTime",
    "dateTime", "dateTimeNoMillis", "hourMinute", "hourMinuteSecond", "hourMinuteSecondFraction",
    "hourMinuteSecondMillis", "ordinalDate", "ordinalDateTime", "ordinalDateTimeNoMillis", "timeNoMillis",
    "tTime", "tTimeNoMillis", "weekDate", "weekDateTime", "weekDateTimeNoMillis", "weekyearWeek",
    "weekyearWeekDay", "yearMonth", "yearMonthDay", "strictDateOptionalTime", "strictDateTime",
    "strictDateTimeNoMillis", "strictDate", "strictBasicWeekDate", "strictYearMonthDay", NULL
};

static bool camel_known(const char *s, size_t n)
{
    for (size_t i = 0; camel_formats[i]; i++)
        if (strlen(camel_formats[i]) == n && !memcmp(camel_formats[i], s, n))
            return true;
    return false;
}

static void f_date_format(struct rfs_md_ctx *ctx, const char *path, json_t *f)
{
    const char *fmt = str_of(f, "format");
    if (!fmt)
        return;
    char out[512];
    size_t o = 0;
    bool changed = false;
    const char *p = fmt;
    while (*p && o + 2 < sizeof(out)) {
        const char *e = strstr(p, "||");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (camel_known(p, n)) {
            for (size_t i = 0; i < n && o + 3 < sizeof(out); i++) {
                if (isupper((unsigned char)p[i])) {
                    out[o++] = '_';
                    out[o++] = (char)tolower((unsigned char)p[i]);
                } else {
                    out[o++] = p[i];
                }
            }
            changed = true;
        } else {
            for (size_t i = 0; i < n && o + 1 < sizeof(out); i++)
                out[o++] = p[i];
        }
        if (!e)
            break;
        if (o + 3 < sizeof(out)) {
            out[o++] = '|';
            out[o++] = '|';
        }
        p = e + 2;
    }
    out[o] = 0;
    if (changed) {
        rfs_md_change(ctx, "%s: format \"%s\" -> \"%s\"", path, fmt, out);
        json_object_set_new(f, "format", json_string(out));
    }
}

static void root_date_formats(struct rfs_md_ctx *ctx, const char *type, json_t *m)
{
    json_t *ddf = json_object_get(m, "dynamic_date_formats");
    size_t i;
    json_t *v;
    json_array_foreach(ddf, i, v) {
        json_t *tmp = json_pack("{sO}", "format", v);
        char p[300];
        snprintf(p, sizeof(p), "%s.dynamic_date_formats[%zu]", type, i);
        f_date_format(ctx, p, tmp);
        json_array_set(ddf, i, json_object_get(tmp, "format"));
        json_decref(tmp);
    }
}

static int r_date_formats(struct rfs_md_ctx *ctx, json_t *body)
{
    each_mapping(ctx, body, root_date_formats, f_date_format);
    return 0;
}

/* Mapping types: one type kept on typed targets; typeless targets get the
 * single mapping; several types are merged (union) or were split before. */
static int r_type_removal(struct rfs_md_ctx *ctx, json_t *body)
{
    json_t *maps = json_object_get(body, "mappings");
    struct rfs_md_item *item = ctx->item;
    size_t n = json_object_size(maps);
    if (n == 0)
        return 0;
    if (n == 1) {
        const char *type = json_object_iter_key(json_object_iter(maps));
        if (ctx->tgt_major >= 7) {
            if (item->kind == RFS_MD_INDEX || item->kind == RFS_MD_LEGACY_TEMPLATE)
                rfs_md_change(ctx, "type [%s] removed: typeless mapping%s", type,
                              ctx->tgt_major == 7 ? " (request without include_type_name)" : "");
            if (item->kind == RFS_MD_INDEX && !item->type_rule)
                item->type_rule = json_pack("{s:s, s:{s:{s:s, s:o}}}", "mode", strcmp(type, "_doc") ? "drop" : "none",
                                            "types", type, "index", item->name, "type", json_null());
        } else if (item->kind == RFS_MD_INDEX && !item->type_rule) {
            item->type_rule = json_pack("{s:s, s:{s:{s:s, s:s}}}", "mode", "keep", "types", type, "index", item->name, "type",
                                        type);
        }
        return 0;
    }
    /* several types: union */
    json_t *u = rfs_md_union_mappings(item, maps);
    if (!u)
        return SM_ENOMEM;
    json_t *types = json_object();
    const char *t;
    json_t *m;
    char list[512] = "";
    size_t o = 0;
    const char *newtype = ctx->tgt_major >= 7 ? NULL : "_doc";
    json_object_foreach(maps, t, m) {
        json_object_set_new(types, t, json_pack("{s:s, s:o}", "index", item->name, "type",
                                                newtype ? json_string(newtype) : json_null()));
        int w = snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", t);
        if (w > 0 && (size_t)w < sizeof(list) - o)
            o += (size_t)w;
    }
    rfs_md_change(ctx, "types [%s] merged into one %s mapping (union)", list, newtype ? "_doc" : "typeless");
    if (item->kind == RFS_MD_INDEX)
        rfs_md_note(item, "union of types [%s]: a document _id used in two types keeps only one document "
                    "(--multi-type split keeps both)", list);
    if (item->kind == RFS_MD_INDEX && !item->type_rule)
        item->type_rule = json_pack("{s:s, s:o}", "mode", "union", "types", types);
    else
        json_decref(types);
    json_t *nm = json_object();
    json_object_set_new(nm, "_doc", u);
    json_object_set_new(body, "mappings", nm);
    return 0;
}

/* ---- settings rules ---- */

static size_t del_settings(struct rfs_md_ctx *ctx, json_t *settings, bool (*match)(const char *k, json_t *v,
                                                                                      const void *arg),
                           const void *arg, const char *why)
{
    const char *k;
    json_t *v;
    void *tmp;
    size_t n = 0;
    json_object_foreach_safe(settings, tmp, k, v) {
        if (match(k, v, arg)) {
            rfs_md_change(ctx, "removed %s=%s (%s)", k, json_is_string(v) ? json_string_value(v) : "...", why);
            json_object_del(settings, k);
            n++;
        }
    }
    return n;
}

static bool in_list(const char *k, json_t *v, const void *arg)
{
    (void)v;
    for (const char *const *l = arg; *l; l++) {
        size_t n = strlen(*l);
        if ((*l)[n - 1] == '*' ? !strncmp(k, *l, n - 1) : !strcmp(k, *l))
            return true;
    }
    return false;
}

static const char *const private_settings[] = {
    "index.uuid", "index.version.created", "index.version.created_string", "index.version.upgraded",
    "index.version.upgraded_string", "index.version.minimum_compatible", "index.creation_date",
    "index.creation_date_string", "index.provided_name", "index.resize.source.*", "index.shrink.source.*",
    "index.history.uuid", "index.verified_before_close", NULL
};

static int r_private_settings(struct rfs_md_ctx *ctx, json_t *body)
{
    del_settings(ctx, json_object_get(body, "settings"), in_list, private_settings, "set by the target");
    return 0;
}

static const char *const removed_settings_7[] = { "index.mapping.single_type", "index.mapper.dynamic", NULL };

static int r_removed_settings(struct rfs_md_ctx *ctx, json_t *body)
{
    del_settings(ctx, json_object_get(body, "settings"), in_list, removed_settings_7, "removed in 7.0");
    return 0;
}

static const char *const removed_settings_5[] = {
    "index.merge.policy.type", "index.merge.scheduler.type", "index.translog.fs.type",
    "index.translog.flush_threshold_ops", "index.translog.interval", "index.cache.filter.*",
    "index.cache.field.*", "index.store.throttle.*", "index.compound_format", "index.compound_on_flush",
    "index.warmer.enabled", "index.mapping.allow_type_wrapper", "index.codec.bloom.load",
    "index.load_fixed_bitset_filters_eagerly", NULL
};

static int r_legacy_settings(struct rfs_md_ctx *ctx, json_t *body)
{
    del_settings(ctx, json_object_get(body, "settings"), in_list, removed_settings_5, "removed in 5.0");
    json_t *s = json_object_get(body, "settings");
    json_t *qc = json_object_get(s, "index.cache.query.enable");
    if (qc) {
        json_object_set(s, "index.requests.cache.enable", qc);
        json_object_del(s, "index.cache.query.enable");
        rfs_md_change(ctx, "index.cache.query.enable -> index.requests.cache.enable");
    }
    return 0;
}

static bool soft_deletes_off(const char *k, json_t *v, const void *arg)
{
    (void)arg;
    return !strcmp(k, "index.soft_deletes.enabled") && json_is_string(v) && !strcmp(json_string_value(v), "false");
}

static int r_soft_deletes(struct rfs_md_ctx *ctx, json_t *body)
{
    del_settings(ctx, json_object_get(body, "settings"), soft_deletes_off, NULL,
                 "the target requires soft deletes");
    return 0;
}

static bool tier_pref(const char *k, json_t *v, const void *arg)
{
    (void)v;
    (void)arg;
    const char *t = strstr(k, "._tier_preference");
    return !strncmp(k, "index.routing.allocation.", 25) && t && !t[17];
}

static int r_tier_preference(struct rfs_md_ctx *ctx, json_t *body)
{
    const struct rfs_md_version *t = &ctx->plan->target;
    if (!t->opensearch && (t->major > 7 || (t->major == 7 && t->minor >= 10)))
        return 0;
    del_settings(ctx, json_object_get(body, "settings"), tier_pref, NULL, "Elasticsearch data tiers");
    return 0;
}

/* Settings of one distribution's plugins the other rejects as unknown. */
static const char *const es_only_settings[] = { "index.lifecycle.*", "index.xpack.*", "index.frozen",
                                                 "index.search.throttled", "index.mapping.source.mode",
                                                 "index.time_series.*", "index.mode", NULL };
static const char *const os_only_settings[] = { "index.replication.type", "index.remote_store.*",
                                                 "index.plugins.*", "index.opendistro.*", "index.knn",
                                                 "index.knn.*", NULL };

static int r_distribution_settings(struct rfs_md_ctx *ctx, json_t *body)
{
    const struct rfs_md_plan *p = ctx->plan;
    if (p->source.opensearch == p->target.opensearch)
        return 0;
    del_settings(ctx, json_object_get(body, "settings"), in_list,
                 p->source.opensearch ? os_only_settings : es_only_settings,
                 p->source.opensearch ? "OpenSearch only" : "Elasticsearch/X-Pack only");
    return 0;
}

static const char *const allocation_settings[] = { "index.routing.allocation.*", NULL };

static int r_allocation(struct rfs_md_ctx *ctx, json_t *body)
{
    if (ctx->plan->opts.drop_allocation)
        del_settings(ctx, json_object_get(body, "settings"), in_list, allocation_settings, "--drop-allocation");
    return 0;
}

static int r_replicas(struct rfs_md_ctx *ctx, json_t *body)
{
    int64_t r = ctx->plan->opts.replicas;
    if (r < 0)
        return 0;
    json_t *s = json_object_get(body, "settings");
    char v[32];
    snprintf(v, sizeof(v), "%lld", (long long)r);
    const char *old = str_of(s, "index.number_of_replicas");
    if (old && !strcmp(old, v))
        return 0;
    rfs_md_change(ctx, "index.number_of_replicas %s -> %s", old ? old : "(default)", v);
    json_object_set_new(s, "index.number_of_replicas", json_string(v));
    return 0;
}

static int r_routing_shards(struct rfs_md_ctx *ctx, json_t *body)
{
    json_t *s = json_object_get(body, "settings");
    json_int_t rns = json_integer_value(json_object_get(body, "routing_num_shards"));
    const char *ns = str_of(s, "index.number_of_shards");
    if (!ns || json_object_get(s, "index.number_of_routing_shards"))
        return 0;   /* set explicitly on the source: kept */
    if (rns <= 0 && ctx->src_major >= 7) {
        /* live 7.x+ sources do not expose it: the target's default applies */
        rfs_md_note(ctx->item, "routing shards of the source unknown: the target's default applies");
        return 0;
    }
    if (rns <= 0)
        rns = strtoll(ns, NULL, 10);   /* before 7.0: hash % number_of_shards */
    if (rns <= 0)
        return 0;
    char v[32];
    snprintf(v, sizeof(v), "%lld", (long long)rns);
    json_object_set_new(s, "index.number_of_routing_shards", json_string(v));
    rfs_md_change(ctx, "index.number_of_routing_shards=%s (shards %s kept; documents route as on the source)", v,
                  ns);
    return 0;
}

/* ---- template rules ---- */

static int r_template_patterns(struct rfs_md_ctx *ctx, json_t *body)
{
    json_t *t = json_object_get(body, "template");
    if (json_is_string(t) && !json_object_get(body, "index_patterns")) {
        json_object_set_new(body, "index_patterns", json_pack("[O]", t));
        rfs_md_change(ctx, "template \"%s\" -> index_patterns [\"%s\"]", json_string_value(t), json_string_value(t));
        json_object_del(body, "template");
    }
    json_t *ip = json_object_get(body, "index_patterns");
    if (json_is_string(ip))
        json_object_set_new(body, "index_patterns", json_pack("[O]", ip));
    return 0;
}

static bool has_composable(const struct rfs_md_version *t)
{
    return t->opensearch || t->major > 7 || (t->major == 7 && t->minor >= 8);
}

/* Objects merged recursively, b wins. */
static void deep_merge(json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)b, k, v) {
        json_t *cur = json_object_get(a, k);
        if (json_is_object(cur) && json_is_object(v))
            deep_merge(cur, v);
        else
            json_object_set_new(a, k, json_deep_copy(v));
    }
}

/* Targets without composable templates: an index template becomes a legacy
 * template holding its component templates' sections (in composed_of
 * order) and its own; priority becomes order. */
static int r_composable_to_legacy(struct rfs_md_ctx *ctx, json_t *body)
{
    if (has_composable(&ctx->plan->target))
        return 0;
    json_t *merged = json_pack("{s:o, s:o, s:o}", "settings", json_object(), "mappings", json_object(), "aliases",
                               json_object());
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(body, "composed_of"), i, c) {
        const char *cn = json_string_value(c);
        const struct rfs_md_item *ct = NULL;
        for (size_t k = 0; cn && k < ctx->plan->nitems; k++)
            if (ctx->plan->items[k]->kind == RFS_MD_COMPONENT_TEMPLATE && !strcmp(ctx->plan->items[k]->name, cn))
                ct = ctx->plan->items[k];
        if (!ct) {
            rfs_md_problem(ctx->item, "component template [%s] not found in the source", cn ? cn : "?");
            continue;
        }
        deep_merge(merged, ct->source);
        rfs_md_change(ctx, "component template [%s] folded in", cn);
    }
    json_t *own = json_pack("{s:O, s:O, s:O}", "settings", json_object_get(body, "settings"), "mappings",
                            json_object_get(body, "mappings"), "aliases", json_object_get(body, "aliases"));
    if (own)
        deep_merge(merged, own);
    json_decref(own);
    json_object_update(body, merged);
    json_decref(merged);
    json_t *pr = json_object_get(body, "priority");
    json_object_set_new(body, "order", json_integer(json_is_integer(pr) ? json_integer_value(pr) : 0));
    static const char *const gone[] = { "priority", "composed_of", "_meta", "data_stream", NULL };
    for (const char *const *g = gone; *g; g++)
        json_object_del(body, *g);
    ctx->item->kind = RFS_MD_LEGACY_TEMPLATE;
    rfs_md_change(ctx, "composable index template -> legacy template (the target %s has no composable templates)",
                  ctx->plan->target.number);
    return 0;
}

static int r_component_unsupported(struct rfs_md_ctx *ctx, json_t *body)
{
    (void)body;
    if (has_composable(&ctx->plan->target))
        return 0;
    ctx->item->action = RFS_MD_SKIP;
    rfs_md_note(ctx->item, "the target (%s) has no component templates: folded into the legacy templates made "
                "from the index templates that use it", ctx->plan->target.number);
    return 0;
}

#define K(k) RFS_MD_KIND_BIT(RFS_MD_##k)
#define MAPPINGS (RFS_MD_ALL_KINDS)
#define SETTINGS (RFS_MD_ALL_KINDS)

const struct rfs_md_rule rfs_md_rules[] = {
    { "composable_to_legacy", "composable index templates become legacy templates (component templates folded in, "
      "priority -> order) on targets without composable templates (before 7.8)", 7, 99, 1, 7, K(INDEX_TEMPLATE),
      r_composable_to_legacy },
    { "default_mapping", "the _default_ mapping (removed in 7.0) is dropped", 1, 6, 6, 99, MAPPINGS,
      r_default_mapping },
    { "string_fields", "string fields become text (analyzed) or keyword (not_analyzed; index: no -> index: false)",
      1, 4, 5, 99, MAPPINGS, r_string_fields },
    { "index_values", "old index values analyzed/not_analyzed/no become true/false", 1, 4, 5, 99, MAPPINGS,
      r_index_values },
    { "legacy_field_params", "1.x/2.x field parameters: index_analyzer -> analyzer, norms objects, omit_norms, "
      "index_name, path, postings/doc_values formats, payloads, precision_step, fielddata objects", 1, 4, 5, 99,
      MAPPINGS, r_legacy_field_params },
    { "lenient_booleans", "boolean fields noted: 1.x/2.x documents may hold on/off/yes/no/0/1, which 6.0+ rejects "
      "(a note, no change)", 1, 2, 6, 99, MAPPINGS, r_lenient_booleans },
    { "include_in_all", "include_in_all (removed in 7.0) is dropped", 1, 6, 7, 99, MAPPINGS, r_include_in_all },
    { "all_field", "the _all field (disabled in 6.0, removed in 7.0) is dropped", 1, 6, 6, 99, MAPPINGS,
      r_all_field },
    { "removed_meta_fields", "_timestamp, _ttl, _boost, _index, _analyzer, _id/_routing paths and type-level "
      "analyzers (removed in 5.0) are dropped; _source options normalised", 1, 4, 5, 99, MAPPINGS,
      r_removed_meta_fields },
    { "date_formats", "Joda camelCase format names (dateOptionalTime) become snake_case (date_optional_time)", 1, 6,
      7, 99, MAPPINGS, r_date_formats },
    { "type_removal", "mapping types: kept on typed targets, removed for typeless targets; several types are "
      "merged (--multi-type union) or split into <index>_<type> indices (--multi-type split)", 1, 99, 1, 99,
      K(INDEX) | K(LEGACY_TEMPLATE), r_type_removal },
    { "private_settings", "settings the target sets itself (index.uuid, index.version.*, index.creation_date, "
      "index.provided_name, index.resize.source.*) are removed", 1, 99, 1, 99, SETTINGS, r_private_settings },
    { "legacy_settings", "index settings removed in 5.0 are dropped (index.cache.query.enable renamed)", 1, 4, 5,
      99, SETTINGS, r_legacy_settings },
    { "removed_settings", "index.mapping.single_type and index.mapper.dynamic (removed in 7.0) are dropped", 1, 6,
      7, 99, SETTINGS, r_removed_settings },
    { "soft_deletes", "index.soft_deletes.enabled=false is dropped where soft deletes are mandatory", 6, 99, 8, 99,
      SETTINGS, r_soft_deletes },
    { "tier_preference", "Elasticsearch data tier allocation (index.routing.allocation.*._tier_preference) is "
      "dropped for targets without data tiers (OpenSearch, Elasticsearch before 7.10)", 7, 99, 1, 99, SETTINGS,
      r_tier_preference },
    { "distribution_settings", "settings of the other distribution's features are dropped: Elasticsearch -> "
      "OpenSearch index.lifecycle.*, index.xpack.*, index.frozen, index.mode...; OpenSearch -> Elasticsearch "
      "index.replication.type, index.remote_store.*, index.plugins.*, index.opendistro.*, index.knn", 1, 99, 1, 99,
      SETTINGS, r_distribution_settings },
    { "drop_allocation", "index.routing.allocation.* removed (only with --drop-allocation)", 1, 99, 1, 99, SETTINGS,
      r_allocation },
    { "replicas", "index.number_of_replicas set to --replicas N", 1, 99, 1, 99, K(INDEX), r_replicas },
    { "routing_shards", "number of shards kept; index.number_of_routing_shards set to the source's routing shards "
      "so routing places documents as on the source", 1, 99, 6, 99, K(INDEX), r_routing_shards },
    { "template_patterns", "legacy template \"template\" pattern becomes \"index_patterns\" (6.0+)", 1, 5, 6, 99,
      K(LEGACY_TEMPLATE), r_template_patterns },
    { "component_templates", "component templates are skipped on targets without them (before 7.8): their "
      "sections are folded into the legacy templates made from the index templates", 7, 99, 1, 7,
      K(COMPONENT_TEMPLATE), r_component_unsupported },
};
const size_t rfs_md_nrules = sizeof(rfs_md_rules) / sizeof(rfs_md_rules[0]);

static int run_rule(const struct rfs_md_plan *plan, struct rfs_md_item *item, const struct rfs_md_rule *r)
{
    struct rfs_md_ctx ctx = { .plan = plan, .src_major = rfs_md_compat_major(&plan->source),
                              .tgt_major = rfs_md_compat_major(&plan->target),
                              .tgt_opensearch = plan->target.opensearch, .item = item };
    ctx.changes = json_array();
    if (!ctx.changes)
        return SM_ENOMEM;
    int rc = r->apply(&ctx, item->body);
    if (!rc && json_array_size(ctx.changes))
        json_array_append_new(item->transforms, json_pack("{sssssO}", "rule", r->name, "description",
                                                          r->description, "changes", ctx.changes));
    json_decref(ctx.changes);
    return rc;
}

int rfs_md_apply_rules(const struct rfs_md_plan *plan, struct rfs_md_item *item)
{
    int src = rfs_md_compat_major(&plan->source), tgt = rfs_md_compat_major(&plan->target);
    for (size_t i = 0; i < rfs_md_nrules; i++) {
        const struct rfs_md_rule *r = &rfs_md_rules[i];
        if (!(r->kinds & RFS_MD_KIND_BIT(item->kind)) || src < r->src_min || src > r->src_max ||
            tgt < r->tgt_min || tgt > r->tgt_max)
            continue;
        int rc = run_rule(plan, item, r);
        if (rc)
            return rc;
    }
    return 0;
}

int rfs_md_apply_rule(const struct rfs_md_plan *plan, struct rfs_md_item *item, const char *rule)
{
    for (size_t i = 0; i < rfs_md_nrules; i++)
        if (!strcmp(rfs_md_rules[i].name, rule))
            return run_rule(plan, item, &rfs_md_rules[i]);
    return SM_ENOTFOUND;
}

/* ---- union of types ---- */

static void merge_props(struct rfs_md_item *item, json_t *dst, json_t *src, const char *prefix, const char *t1,
                        const char *t2)
{
    const char *name;
    json_t *f;
    json_object_foreach(src, name, f) {
        json_t *cur = json_object_get(dst, name);
        char path[512];
        snprintf(path, sizeof(path), "%s%s", prefix, name);
        if (!cur) {
            json_object_set_new(dst, name, json_deep_copy(f));
            continue;
        }
        json_t *cp = json_object_get(cur, "properties"), *sp = json_object_get(f, "properties");
        if (cp && sp) {
            json_t *ca = json_deep_copy(cur), *sa = json_deep_copy(f);
            json_object_del(ca, "properties");
            json_object_del(sa, "properties");
            if (!json_equal(ca, sa))
                rfs_md_problem(item, "field [%s] is defined differently in types [%s] and [%s]", path, t1, t2);
            json_decref(ca);
            json_decref(sa);
            char sub[520];
            snprintf(sub, sizeof(sub), "%s.", path);
            merge_props(item, cp, sp, sub, t1, t2);
        } else if (!json_equal(cur, f)) {
            char *a = json_dumps(cur, JSON_COMPACT | JSON_SORT_KEYS), *b = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
            rfs_md_problem(item, "field [%s] is defined differently in types [%s] %s and [%s] %s: use --multi-type split",
                           path, t1, a ? a : "", t2, b ? b : "");
            free(a);
            free(b);
        }
    }
}

json_t *rfs_md_union_mappings(struct rfs_md_item *item, const json_t *typed)
{
    json_t *out = json_object();
    json_t *props = json_object();
    const char *t, *first = NULL;
    json_t *m;
    if (!out || !props) {
        json_decref(out);
        json_decref(props);
        return NULL;
    }
    json_object_foreach((json_t *)typed, t, m) {
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v) {
            if (!strcmp(k, "properties"))
                continue;
            json_t *cur = json_object_get(out, k);
            if (!cur)
                json_object_set_new(out, k, json_deep_copy(v));
            else if (!json_equal(cur, v))
                rfs_md_problem(item, "mapping parameter [%s] differs between types [%s] and [%s]", k, first, t);
        }
        merge_props(item, props, json_object_get(m, "properties"), "", first ? first : t, t);
        if (!first)
            first = t;
    }
    json_object_set_new(out, "properties", props);
    return out;
}
