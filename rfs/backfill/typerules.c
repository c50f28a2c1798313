/* Type rules and legacy booleans of a metadata report (typerules.h). */
#include "backfill/typerules.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct rfs_typerules {
    json_t *report;
    json_t *rules;      /* report.type_rules (borrowed) */
    json_t *bools;      /* target index -> mapping "properties" holding boolean fields (borrowed values) */
};

static bool has_boolean(json_t *props)
{
    const char *k;
    json_t *f;
    json_object_foreach(props, k, f) {
        const char *t = json_string_value(json_object_get(f, "type"));
        if (t && !strcmp(t, "boolean"))
            return true;
        if (json_is_object(json_object_get(f, "properties")) && has_boolean(json_object_get(f, "properties")))
            return true;
    }
    return false;
}

/* The "properties" of a rendered mapping: typeless {properties} or typed {type: {properties}}. */
static json_t *mapping_props(json_t *maps)
{
    if (json_is_object(json_object_get(maps, "properties")))
        return json_object_get(maps, "properties");
    const char *k;
    json_t *m;
    json_object_foreach(maps, k, m)
        if (strcmp(k, "_default_") && json_is_object(json_object_get(m, "properties")))
            return json_object_get(m, "properties");
    return NULL;
}

static bool notes_booleans(json_t *item)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(item, "notes"), i, n) {
        const char *s = json_string_value(n);
        if (s && strstr(s, "boolean field ["))
            return true;
    }
    return false;
}

int rfs_typerules_load(const char *path, bool coerce_all, struct rfs_typerules **out, char *err, size_t errlen)
{
    *out = NULL;
    json_error_t je;
    json_t *rep = json_load_file(path, 0, &je);
    if (!rep)
        return sm_errf(err, errlen, errno == ENOENT ? SM_ENOTFOUND : SM_ECONFIG, "metadata report %s: %s (line %d)",
                       path, je.text, je.line);
    json_t *rules = json_object_get(rep, "type_rules");
    if (!json_is_object(rules)) {
        json_decref(rep);
        return sm_errf(err, errlen, SM_ECONFIG, "metadata report %s: no \"type_rules\" object (not a report of "
                       "'searchmig-rfs metadata --report'?)", path);
    }
    const char *idx;
    json_t *r;
    json_object_foreach(rules, idx, r) {
        json_t *types = json_object_get(r, "types");
        const char *t;
        json_t *e;
        bool ok = json_is_object(types);
        json_object_foreach(types, t, e)
            ok = ok && json_is_string(json_object_get(e, "index")) &&
                 (json_is_null(json_object_get(e, "type")) || json_is_string(json_object_get(e, "type")));
        if (!ok) {
            json_decref(rep);
            return sm_errf(err, errlen, SM_ECONFIG, "metadata report %s: type_rules[%s]: expected {\"mode\", \"types\": "
                           "{TYPE: {\"index\": NAME, \"type\": NAME|null}}}", path, idx);
        }
    }
    struct rfs_typerules *tr = sm_calloc(1, sizeof(*tr));
    if (!tr) {
        json_decref(rep);
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    }
    tr->report = rep;
    tr->rules = rules;
    tr->bools = json_object();
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(rep, "items"), i, it) {
        const char *kind = json_string_value(json_object_get(it, "kind"));
        const char *name = json_string_value(json_object_get(it, "name"));
        if (!kind || strcmp(kind, "index") || !name || (!coerce_all && !notes_booleans(it)))
            continue;
        json_t *props = mapping_props(json_object_get(json_object_get(it, "body"), "mappings"));
        if (props && has_boolean(props))
            json_object_set(tr->bools, name, props);
    }
    *out = tr;
    return SM_OK;
}

void rfs_typerules_free(struct rfs_typerules *tr)
{
    if (!tr)
        return;
    json_decref(tr->bools);
    json_decref(tr->report);
    sm_free(tr);
}

void rfs_typerules_counts(const struct rfs_typerules *tr, size_t *rules, size_t *coerce_indices)
{
    *rules = tr ? json_object_size(tr->rules) : 0;
    *coerce_indices = tr ? json_object_size(tr->bools) : 0;
}

bool rfs_typerules_lookup(const struct rfs_typerules *tr, const char *index, const char *type, const char **tindex,
                          const char **ttype)
{
    json_t *types = json_object_get(json_object_get(tr->rules, index), "types");
    if (!json_is_object(types) || !json_object_size(types))
        return false;
    json_t *e = type ? json_object_get(types, type) : NULL;
    if (!e && json_object_size(types) == 1)
        e = json_object_iter_value(json_object_iter(types));    /* single-type index (none/drop/keep) */
    if (!e)
        return false;
    *tindex = json_string_value(json_object_get(e, "index"));
    *ttype = json_string_value(json_object_get(e, "type"));    /* NULL for null: typeless */
    return *tindex != NULL;
}

/* ---- legacy booleans ---- */

/* 1.x/2.x spellings; NULL: not a legacy boolean (left to the target). */
static json_t *legacy_bool(json_t *v)
{
    if (json_is_integer(v))
        return json_boolean(json_integer_value(v) != 0);
    if (json_is_real(v))
        return json_boolean(json_real_value(v) != 0.0);
    const char *s = json_string_value(v);
    if (!s)
        return NULL;
    static const char *const yes[] = { "on", "yes", "1", "True", "TRUE", "On", "ON", "Yes", "YES" };
    static const char *const no[] = { "off", "no", "0", "False", "FALSE", "Off", "OFF", "No", "NO" };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!strcmp(s, yes[i]))
            return json_true();
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (!strcmp(s, no[i]))
            return json_false();
    return NULL;
}

/* Mapping of source key k under props; dotted keys ("a.b") walk objects. */
static json_t *field_of(json_t *props, const char *k)
{
    json_t *f = json_object_get(props, k);
    if (f || !strchr(k, '.'))
        return f;
    char part[256];
    const char *p = k;
    while (props) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, p, n);
        part[n] = 0;
        f = json_object_get(props, part);
        if (!dot)
            return f;
        props = json_object_get(f, "properties");
        p = dot + 1;
    }
    return NULL;
}

static bool coerce_obj(json_t *src, json_t *props);

static bool coerce_value(json_t *parent_obj, const char *key, json_t *arr, size_t ai, json_t *v, json_t *f)
{
    const char *t = json_string_value(json_object_get(f, "type"));
    json_t *sub = json_object_get(f, "properties");
    bool changed = false;
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            changed |= coerce_value(NULL, NULL, v, i, x, f);
        return changed;
    }
    if (json_is_object(v) && json_is_object(sub))
        return coerce_obj(v, sub);
    if (!t || strcmp(t, "boolean"))
        return false;
    json_t *b = legacy_bool(v);
    if (!b)
        return false;
    if (parent_obj)
        json_object_set_new(parent_obj, key, b);
    else
        json_array_set_new(arr, ai, b);
    return true;
}

static bool coerce_obj(json_t *src, json_t *props)
{
    bool changed = false;
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(src, tmp, k, v) {
        json_t *f = field_of(props, k);
        if (f)
            changed |= coerce_value(src, k, NULL, 0, v, f);
    }
    return changed;
}

int rfs_typerules_coerce_last(const struct rfs_typerules *tr, const char *tindex, struct rfs_bulk_batch *b,
                              bool *changed)
{
    *changed = false;
    json_t *props = tr && tindex ? json_object_get(tr->bools, tindex) : NULL;
    if (!props || !b->ndocs)
        return SM_OK;
    size_t start = b->offs[b->ndocs - 1];
    const char *p = (const char *)b->body.data + start;
    const char *nl = memchr(p, '\n', b->body.len - start);
    if (!nl)
        return SM_OK;
    size_t src_off = (size_t)(nl + 1 - (const char *)b->body.data);
    size_t src_len = b->body.len - src_off;
    if (src_len && b->body.data[b->body.len - 1] == '\n')
        src_len--;
    json_t *doc = json_loadb((const char *)b->body.data + src_off, src_len, JSON_ALLOW_NUL, NULL);
    if (!doc)
        return SM_OK;                    /* not parsable here: sent as is, the target says why */
    int rc = SM_OK;
    if (json_is_object(doc) && coerce_obj(doc, props)) {
        char *s = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (!s) {
            rc = SM_ENOMEM;
        } else {
            b->body.len = src_off;
            size_t n = strlen(s);
            if (sm_buf_append(&b->body, s, n) || sm_buf_append(&b->body, "\n", 1)) {
                b->body.len = start;     /* the document is dropped from the batch */
                b->ndocs--;
                b->source_bytes -= src_len;
                rc = SM_ENOMEM;
            } else {
                b->source_bytes = b->source_bytes - src_len + n;
                *changed = true;
            }
            free(s);
        }
    }
    json_decref(doc);
    return rc;
}
