/* Comparator: rules, ES/OS-aware body comparison, noise learning. */
#include "compare/compare.h"
#include "tuple/tuple.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/utf8.h>
#include <sm/util.h>

#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/jdoc.h"
#include "transform/transform.h"

#define MAX_DEPTH 128
#define DEFAULT_MAX_DIFFS 20
#define ENDPOINT_LEN 256
#define ACTIVE_CACHE 64

static inline uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

struct rule {
    char *endpoint;       /* fnmatch pattern on the endpoint; NULL: every endpoint */
    char *text;           /* the path as given */
    bool ignore;          /* false: unignore */
    bool learned;
    bool deflt;           /* built in: not applied inside documents (_source) */
    char **segs;
    size_t nsegs;
    const char *last;     /* last segment when literal (quick reject), else NULL */
    uint32_t last_h;      /* its hash */
};

struct seg {
    const char *s;        /* NUL-terminated */
    uint32_t h;           /* key_hash(s) */
    char num[24];
};

struct replay_cmp {
    struct rule *rules;
    size_t nrules, cap;
    unsigned gen;
    double tol_rel, tol_abs;
    size_t max_diffs;
    struct replay_transform *renames;
    char *scope;          /* current [endpoint] while loading rules */
    /* active rules per endpoint: a small direct-mapped cache */
    struct active_set {
        char ep[ENDPOINT_LEN];
        unsigned gen;
        size_t *idx;
        size_t n;
    } cache[ACTIVE_CACHE];
    const size_t *active;
    size_t nactive;
    struct jd_doc *doc;   /* for tuples given as jansson values */
    struct sm_buf text;   /* replay_cmp_tuple_text(): copy parsed in place */
};

/* per-comparison state */
struct ctx {
    struct replay_cmp *c;
    struct seg path[MAX_DEPTH];
    size_t depth;
    json_t *diffs;        /* bounded list, or NULL: count only (or none yet) */
    bool want_diffs;      /* diffs made at the first difference */
    size_t ndiffs, max;
    bool learn;           /* collect generalised paths instead */
    bool auto_id_root;
    const bool *auto_ids; /* bulk items whose action line had no _id */
    size_t nauto;
};

static const char *const class_names[] = { "same", "status", "body", "target_error", "no_source" };

const char *replay_cmp_class_name(enum replay_cmp_class c)
{
    return (unsigned)c < REPLAY_CMP_NCLASSES ? class_names[c] : "?";
}

/* ---- rules ---- */

static void rule_free(struct rule *r)
{
    sm_free(r->endpoint);
    sm_free(r->text);
    for (size_t i = 0; i < r->nsegs; i++)
        sm_free(r->segs[i]);
    sm_free(r->segs);
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* Splits a path into segments: JSON pointer (leading '/', ~0 ~1 escapes,
 * anchored) or dotted (floating: a leading "**" is added). */
static int parse_path(const char *text, struct rule *r)
{
    bool ptr = text[0] == '/';
    size_t cap = 8, n = 0;
    char **segs = sm_calloc(cap, sizeof(*segs));
    if (!segs)
        return SM_ENOMEM;
    if (!ptr && text[0]) {
        segs[n++] = sm_strdup("**");
    }
    const char *p = ptr ? text + 1 : text;
    char sep = ptr ? '/' : '.';
    if (*p || !ptr) {
        for (;;) {
            const char *e = strchr(p, sep);
            size_t l = e ? (size_t)(e - p) : strlen(p);
            if (n + 1 >= cap) {
                char **ns = sm_realloc(segs, cap * 2 * sizeof(*segs));
                if (!ns)
                    goto nomem;
                segs = ns;
                cap *= 2;
            }
            char *s = sm_malloc(l + 1);
            if (!s)
                goto nomem;
            size_t k = 0;
            for (size_t i = 0; i < l; i++) {
                if (ptr && p[i] == '~' && i + 1 < l && (p[i + 1] == '0' || p[i + 1] == '1')) {
                    s[k++] = p[i + 1] == '0' ? '~' : '/';
                    i++;
                } else {
                    s[k++] = p[i];
                }
            }
            s[k] = 0;
            segs[n++] = s;
            if (!e)
                break;
            p = e + 1;
        }
    }
    r->segs = segs;
    r->nsegs = n;
    r->last = n && !has_glob(segs[n - 1]) ? segs[n - 1] : NULL;
    r->last_h = r->last ? key_hash(r->last) : 0;
    return SM_OK;
nomem:
    for (size_t i = 0; i < n; i++)
        sm_free(segs[i]);
    sm_free(segs);
    return SM_ENOMEM;
}

static int add_rule(struct replay_cmp *c, const char *endpoint, const char *path, bool ignore, bool learned)
{
    if (sm_grow(&c->rules, &c->cap, c->nrules, sizeof(*c->rules), 32))
        return SM_ENOMEM;
    struct rule *r = &c->rules[c->nrules];
    memset(r, 0, sizeof(*r));
    r->ignore = ignore;
    r->learned = learned;
    r->text = sm_strdup(path);
    r->endpoint = endpoint && strcmp(endpoint, "*") ? sm_strdup(endpoint) : NULL;
    if (!r->text || (endpoint && strcmp(endpoint, "*") && !r->endpoint) || parse_path(path, r)) {
        rule_free(r);
        return SM_ENOMEM;
    }
    c->nrules++;
    c->gen++;
    return SM_OK;
}

static const char *const default_rules[] = {
    /* every endpoint */
    "ignore took",
    "ignore _shards.total", "ignore _shards.successful", "ignore _shards.skipped", "ignore _shards.failed",
    "ignore _seq_no", "ignore _primary_term", "ignore _version", "ignore _type",
    "ignore _nodes", "ignore cluster_name", "ignore cluster_uuid", "ignore index_uuid", "ignore node",
    "ignore error.**.reason", "ignore error.**.stack_trace", "ignore doc_count_error_upper_bound",
    "[GET /]", "ignore /name", "ignore /tagline", "ignore /version",
    "[HEAD /]", "ignore /",
    "[* /_cluster/*]", "ignore timestamp", "ignore *_in_millis", "ignore *_millis", "ignore nodes",
    "ignore master_node", "ignore cluster_manager_node", "ignore state_uuid", "ignore /version",
    "ignore number_of_pending_tasks", "ignore number_of_in_flight_fetch",
    "[* /_nodes*]", "ignore /",
    "[* /_cat/*]", "ignore /",
    "[*]",
    NULL,
};

struct replay_cmp *replay_cmp_new(void)
{
    struct replay_cmp *c = sm_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->tol_rel = 1e-4;
    c->tol_abs = 1e-6;
    c->max_diffs = DEFAULT_MAX_DIFFS;
    c->doc = jd_doc_new();
    sm_buf_init(&c->text, (size_t)1 << 31);
    if (!c->doc) {
        sm_free(c);
        return NULL;
    }
    for (size_t i = 0; default_rules[i]; i++) {
        if (replay_cmp_add_rule_line(c, default_rules[i], NULL, 0)) {
            replay_cmp_free(c);
            return NULL;
        }
        if (c->nrules)
            c->rules[c->nrules - 1].deflt = true;
    }
    return c;
}

void replay_cmp_free(struct replay_cmp *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nrules; i++)
        rule_free(&c->rules[i]);
    sm_free(c->rules);
    sm_free(c->scope);
    for (size_t i = 0; i < ACTIVE_CACHE; i++)
        sm_free(c->cache[i].idx);
    replay_transform_free(c->renames);
    jd_doc_free(c->doc);
    sm_buf_free(&c->text);
    sm_free(c);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t l = strlen(s);
    while (l && isspace((unsigned char)s[l - 1]))
        s[--l] = 0;
    return s;
}

int replay_cmp_add_rule_line(struct replay_cmp *c, const char *line, char *err, size_t errlen)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", line);
    char *h = strchr(buf, '#');
    if (h)
        *h = 0;
    char *s = trim(buf);
    if (!*s)
        return SM_OK;
    if (*s == '[') {
        size_t l = strlen(s);
        if (s[l - 1] != ']')
            return sm_errf(err, errlen, SM_ECONFIG, "'%s': endpoint scope needs a closing ]", line);
        s[l - 1] = 0;
        char *ep = trim(s + 1);
        sm_free(c->scope);
        c->scope = strcmp(ep, "*") && *ep ? sm_strdup(ep) : NULL;
        return SM_OK;
    }
    char *arg = s + strcspn(s, " \t");
    if (*arg)
        *arg++ = 0;
    arg = trim(arg);
    if (!strcmp(s, "ignore") || !strcmp(s, "unignore")) {
        if (!*arg)
            return sm_errf(err, errlen, SM_ECONFIG, "'%s': %s needs a path", line, s);
        int rc = add_rule(c, c->scope, arg, s[0] == 'i', false);
        return rc ? sm_errf(err, errlen, rc, "out of memory") : SM_OK;
    }
    if (!strcmp(s, "tolerance")) {
        double t;
        if (sm_parse_double(arg, &t) || t < 0)
            return sm_errf(err, errlen, SM_ECONFIG, "'%s': tolerance must be a number >= 0", line);
        c->tol_rel = t;
        return SM_OK;
    }
    if (!strcmp(s, "max-differences")) {
        int64_t v;
        if (sm_parse_i64(arg, 0, 100000, &v))
            return sm_errf(err, errlen, SM_ECONFIG, "'%s': max-differences must be 0..100000", line);
        c->max_diffs = (size_t)v;
        return SM_OK;
    }
    return sm_errf(err, errlen, SM_ECONFIG, "'%s': expected ignore, unignore, tolerance, max-differences or [ENDPOINT]",
                   line);
}

static int load_json_rules(struct replay_cmp *c, json_t *j, const char *path, char *err, size_t errlen)
{
    json_t *v;
    if ((v = json_object_get(j, "tolerance"))) {
        if (!json_is_number(v) || json_number_value(v) < 0)
            return sm_errf(err, errlen, SM_ECONFIG, "%s: tolerance must be a number >= 0", path);
        c->tol_rel = json_number_value(v);
    }
    if ((v = json_object_get(j, "max_differences"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return sm_errf(err, errlen, SM_ECONFIG, "%s: max_differences must be an integer >= 0", path);
        c->max_diffs = (size_t)json_integer_value(v);
    }
    json_t *rules = json_object_get(j, "rules");
    if (rules && !json_is_array(rules))
        return sm_errf(err, errlen, SM_ECONFIG, "%s: rules must be an array", path);
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) {
        json_t *ep = json_object_get(r, "endpoint");
        if (ep && !json_is_string(ep))
            return sm_errf(err, errlen, SM_ECONFIG, "%s: rules[%zu].endpoint must be a string", path, i);
        for (int k = 0; k < 2; k++) {
            json_t *list = json_object_get(r, k ? "unignore" : "ignore");
            if (json_is_string(list)) {
                if (add_rule(c, ep ? json_string_value(ep) : NULL, json_string_value(list), !k, false))
                    return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
                continue;
            }
            if (list && !json_is_array(list))
                return sm_errf(err, errlen, SM_ECONFIG, "%s: rules[%zu].%s must be a list of paths", path, i,
                               k ? "unignore" : "ignore");
            size_t m;
            json_t *p;
            json_array_foreach(list, m, p) {
                if (!json_is_string(p))
                    return sm_errf(err, errlen, SM_ECONFIG, "%s: rules[%zu]: paths must be strings", path, i);
                if (add_rule(c, ep ? json_string_value(ep) : NULL, json_string_value(p), !k, false))
                    return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
            }
        }
    }
    return SM_OK;
}

int replay_cmp_load_rules(struct replay_cmp *c, const char *path, char *err, size_t errlen)
{
    uint8_t *data;
    size_t len;
    if (sm_read_file(path, 16u << 20, &data, &len))
        return sm_errf(err, errlen, SM_EIO, "%s: cannot read rules file", path);
    const char *p = (const char *)data;
    while (*p && isspace((unsigned char)*p))
        p++;
    int rc = SM_OK;
    if (*p == '{') {
        json_error_t je;
        json_t *j = json_loadb((const char *)data, len, 0, &je);
        if (!j)
            rc = sm_errf(err, errlen, SM_ECONFIG, "%s:%d: %s", path, je.line, je.text);
        else
            rc = load_json_rules(c, j, path, err, errlen);
        json_decref(j);
    } else {
        unsigned lineno = 0;
        char *save = (char *)data;
        while (save && !rc) {
            char *nl = strchr(save, '\n');
            if (nl)
                *nl = 0;
            lineno++;
            char e2[512];
            rc = replay_cmp_add_rule_line(c, save, e2, sizeof(e2));
            if (rc)
                sm_errf(err, errlen, rc, "%s:%u: %s", path, lineno, e2);
            save = nl ? nl + 1 : NULL;
        }
        sm_free(c->scope);
        c->scope = NULL;
    }
    sm_free(data);
    return rc;
}

int replay_cmp_set_index_renames(struct replay_cmp *c, const struct sm_strlist *renames, char *err, size_t errlen)
{
    replay_transform_free(c->renames);
    c->renames = NULL;
    if (!renames || !renames->n)
        return SM_OK;
    struct replay_transform_cfg tc = { .index_renames = renames };
    c->renames = replay_transform_new(&tc, err, errlen);
    return c->renames ? SM_OK : SM_ECONFIG;
}

/* ---- path matching ---- */

static bool seg_match(const char *pat, const char *s)
{
    if (pat[0] == '*' && !pat[1])
        return true;
    if (!has_glob(pat))
        return !strcmp(pat, s);
    return fnmatch(pat, s, 0) == 0;
}

static bool segs_match(char *const *p, size_t m, const struct seg *s, size_t n)
{
    while (m) {
        if (p[0][0] == '*' && p[0][1] == '*' && !p[0][2]) {
            if (m == 1)
                return true;
            for (size_t k = 0; k <= n; k++)
                if (segs_match(p + 1, m - 1, s + k, n - k))
                    return true;
            return false;
        }
        if (!n || !seg_match(p[0], s[0].s))
            return false;
        p++, m--, s++, n--;
    }
    return n == 0;
}

static void refresh_active(struct replay_cmp *c, const char *endpoint)
{
    struct active_set *a = &c->cache[key_hash(endpoint) % ACTIVE_CACHE];
    if (!a->idx || a->gen != c->gen || strcmp(a->ep, endpoint)) {
        sm_free(a->idx);
        a->n = 0;
        a->idx = sm_calloc(c->nrules ? c->nrules : 1, sizeof(size_t));
        if (a->idx) {
            for (size_t i = 0; i < c->nrules; i++) {
                const struct rule *r = &c->rules[i];
                if (!r->endpoint || !fnmatch(r->endpoint, endpoint, 0))
                    a->idx[a->n++] = i;
            }
        }
        snprintf(a->ep, sizeof(a->ep), "%s", endpoint);
        a->gen = c->gen;
    }
    c->active = a->idx;
    c->nactive = a->idx ? a->n : 0;
}

/* inside a stored document, where user fields may be named like the
 * fields the default rules ignore ("took", "node", "timestamp") */
static bool in_document(const struct ctx *x)
{
    static uint32_t h_source;
    if (!h_source)
        h_source = key_hash("_source");
    for (size_t i = 0; i + 1 < x->depth; i++)
        if (x->path[i].h == h_source && !strcmp(x->path[i].s, "_source"))
            return true;
    return false;
}

static bool ignored(const struct ctx *x)
{
    const struct replay_cmp *c = x->c;
    const struct seg *top = x->depth ? &x->path[x->depth - 1] : NULL;
    for (size_t k = c->nactive; k-- > 0;) {
        const struct rule *r = &c->rules[c->active[k]];
        if (r->last && (!top || r->last_h != top->h || strcmp(r->last, top->s)))
            continue;
        if (r->deflt && in_document(x))
            continue;
        if (segs_match(r->segs, r->nsegs, x->path, x->depth))
            return r->ignore;
    }
    return false;
}

/* ---- differences ---- */

static void ptr_append(struct sm_buf *b, const char *s, bool generalise)
{
    sm_buf_append(b, "/", 1);
    if (generalise && *s && strspn(s, "0123456789") == strlen(s)) {
        sm_buf_append(b, "*", 1);
        return;
    }
    for (; *s; s++) {
        if (*s == '~')
            sm_buf_append(b, "~0", 2);
        else if (*s == '/')
            sm_buf_append(b, "~1", 2);
        else
            sm_buf_append(b, s, 1);
    }
}

static json_t *path_string(const struct ctx *x, bool generalise)
{
    struct sm_buf b;
    sm_buf_init(&b, 1 << 16);
    for (size_t i = 0; i < x->depth; i++)
        ptr_append(&b, x->path[i].s, generalise);
    json_t *s = json_stringn(b.len ? (const char *)b.data : "", b.len);
    sm_buf_free(&b);
    return s;
}

static void diff(struct ctx *x, const struct jd_val *a, const struct jd_val *b)
{
    x->ndiffs++;
    if (x->learn) {
        json_t *p = path_string(x, true);
        if (p)
            json_array_append_new(x->diffs, p);
        return;
    }
    if (!x->diffs && x->want_diffs)
        x->diffs = json_array();   /* not per tuple: most have no difference */
    if (!x->diffs || json_array_size(x->diffs) >= x->max)
        return;
    json_t *d = json_object();
    json_object_set_new(d, "path", path_string(x, false));
    if (a)
        json_object_set_new(d, "source", jd_to_json(a));
    if (b)
        json_object_set_new(d, "target", jd_to_json(b));
    json_array_append_new(x->diffs, d);
}

static bool push(struct ctx *x, const char *key)
{
    if (x->depth >= MAX_DEPTH)
        return false;
    x->path[x->depth].s = key;
    x->path[x->depth++].h = key_hash(key);
    return true;
}

static bool push_index(struct ctx *x, size_t i)
{
    if (x->depth >= MAX_DEPTH)
        return false;
    struct seg *s = &x->path[x->depth++];
    s->num[sm_fmt_u64(s->num, i)] = 0;   /* snprintf is slow on this path */
    s->s = s->num;
    s->h = key_hash(s->num);
    return true;
}

static const char *key_at(const struct ctx *x, size_t from_end)
{
    return x->depth > from_end ? x->path[x->depth - 1 - from_end].s : NULL;
}

static bool key_is(const struct ctx *x, size_t from_end, const char *k)
{
    const char *s = key_at(x, from_end);
    return s && !strcmp(s, k);
}

/* ---- comparison ---- */

static void cmp_node(struct ctx *x, const struct jd_val *a, const struct jd_val *b);

static bool num_close(const struct ctx *x, double a, double b)
{
    double d = fabs(a - b), m = fmax(fabs(a), fabs(b));
    return d <= x->c->tol_abs + x->c->tol_rel * m;
}

static bool score_eq(const struct ctx *x, const struct jd_val *a, const struct jd_val *b)
{
    if (jd_is_number(a) && jd_is_number(b))
        return num_close(x, jd_number(a), jd_number(b));
    return jd_equal(a, b);
}

static void total_norm(const struct jd_val *t, int64_t *v, const char **rel)
{
    *v = -1;
    *rel = "eq";
    if (t && t->type == JD_INT) {
        *v = t->u.i;
    } else if (t && t->type == JD_OBJECT) {
        const struct jd_val *val = jd_get(t, "value"), *r = jd_get(t, "relation");
        if (val && val->type == JD_INT)
            *v = val->u.i;
        if (jd_str(r))
            *rel = jd_str(r);
    }
}

static bool index_eq(const struct ctx *x, const char *sa, const char *sb)
{
    if (!strcmp(sa, sb))
        return true;
    if (!x->c->renames)
        return false;
    char *r = replay_transform_rename_index(x->c->renames, sa);
    bool eq = r && !strcmp(r, sb);
    sm_free(r);
    return eq;
}

struct keyed {
    char *key;
    size_t idx;
};

static int keyed_cmp(const void *pa, const void *pb)
{
    const struct keyed *a = pa, *b = pb;
    int r = strcmp(a->key, b->key);
    return r ? r : (a->idx < b->idx ? -1 : a->idx > b->idx);
}

/* compact JSON of v in sm_malloc'd memory */
static char *dumps_sm(const struct jd_val *v)
{
    json_t *j = jd_to_json(v);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char *out = s ? sm_strdup(s) : sm_strdup("");
    free(s);
    json_decref(j);
    return out;
}

static char *hit_key(const struct ctx *x, const struct jd_val *h, bool source_side)
{
    const char *idx = jd_str(jd_get(h, "_index"));
    const char *id = jd_str(jd_get(h, "_id"));
    if (!id)
        return dumps_sm(h);
    char *ren = source_side && idx && x->c->renames ? replay_transform_rename_index(x->c->renames, idx) : NULL;
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s\x1f%s", ren ? ren : idx ? idx : "", id);
    sm_free(ren);
    return sm_strdup(buf);
}

static char *bucket_key(const struct jd_val *b)
{
    const struct jd_val *k = jd_get(b, "key");
    char buf[64];
    if (k && k->type == JD_STRING) {
        char *out = sm_malloc(k->n + 2);
        if (out) {
            out[0] = 's';
            memcpy(out + 1, k->u.s, k->n + 1);
        }
        return out;
    }
    if (jd_is_number(k))
        snprintf(buf, sizeof(buf), "n%.17g", jd_number(k));
    else
        return k ? dumps_sm(k) : NULL;
    return sm_strdup(buf);
}

/* Matches elements a[ai..ai+na) with b[bi..bi+nb) by key (hits: _index and
 * _id; buckets: key); unmatched ones are differences. */
static void cmp_keyed(struct ctx *x, const struct jd_val *a, size_t ai, size_t na, const struct jd_val *b, size_t bi,
                      size_t nb, bool hits)
{
    struct keyed *ka = sm_calloc(na + 1, sizeof(*ka)), *kb = sm_calloc(nb + 1, sizeof(*kb));
    if (!ka || !kb)
        goto out;
    for (size_t i = 0; i < na; i++) {
        const struct jd_val *e = jd_at(a, ai + i);
        ka[i].key = hits ? hit_key(x, e, true) : bucket_key(e);
        ka[i].idx = ai + i;
        if (!ka[i].key)
            ka[i].key = sm_strdup("");
    }
    for (size_t i = 0; i < nb; i++) {
        const struct jd_val *e = jd_at(b, bi + i);
        kb[i].key = hits ? hit_key(x, e, false) : bucket_key(e);
        kb[i].idx = bi + i;
        if (!kb[i].key)
            kb[i].key = sm_strdup("");
    }
    qsort(ka, na, sizeof(*ka), keyed_cmp);
    qsort(kb, nb, sizeof(*kb), keyed_cmp);
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        int r = i >= na ? 1 : j >= nb ? -1 : strcmp(ka[i].key ? ka[i].key : "", kb[j].key ? kb[j].key : "");
        if (r == 0) {
            if (push_index(x, ka[i].idx)) {
                cmp_node(x, jd_at(a, ka[i].idx), jd_at(b, kb[j].idx));
                x->depth--;
            }
            i++, j++;
        } else if (r < 0) {
            if (push_index(x, ka[i].idx)) {
                if (!ignored(x))
                    diff(x, jd_at(a, ka[i].idx), NULL);
                x->depth--;
            }
            i++;
        } else {
            if (push_index(x, kb[j].idx)) {
                if (!ignored(x))
                    diff(x, NULL, jd_at(b, kb[j].idx));
                x->depth--;
            }
            j++;
        }
    }
out:
    if (ka)
        for (size_t k = 0; k < na; k++)
            sm_free(ka[k].key);
    if (kb)
        for (size_t k = 0; k < nb; k++)
            sm_free(kb[k].key);
    sm_free(ka);
    sm_free(kb);
}

static bool tie(const struct ctx *x, const struct jd_val *h1, const struct jd_val *h2)
{
    const struct jd_val *s1 = jd_get(h1, "sort"), *s2 = jd_get(h2, "sort");
    if (s1 || s2)
        return s1 && s2 && jd_equal(s1, s2);
    const struct jd_val *a = jd_get(h1, "_score"), *b = jd_get(h2, "_score");
    if (jd_is_number(a) && jd_is_number(b))
        return num_close(x, jd_number(a), jd_number(b));
    return (!a || a->type == JD_NULL) && (!b || b->type == JD_NULL);
}

static void cmp_positional(struct ctx *x, const struct jd_val *a, const struct jd_val *b, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (!push_index(x, i))
            return;
        cmp_node(x, jd_at(a, i), jd_at(b, i));
        x->depth--;
    }
}

static void cmp_hits(struct ctx *x, const struct jd_val *a, const struct jd_val *b)
{
    size_t n = jd_size(a), m = jd_size(b);
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && tie(x, jd_at(a, i), jd_at(a, j)))
            j++;
        if (j - i == 1 || i >= m) {
            cmp_positional(x, a, b, i, j);
        } else {
            size_t bend = j < m ? j : m;
            cmp_keyed(x, a, i, j - i, b, i, bend - i, true);
        }
        i = j;
    }
    cmp_positional(x, a, b, n, m);
}

static bool all_have_key(const struct jd_val *arr)
{
    for (size_t i = 0; i < jd_size(arr); i++) {
        const struct jd_val *e = jd_at(arr, i);
        if (e->type != JD_OBJECT || !jd_get(e, "key"))
            return false;
    }
    return true;
}

static void cmp_node(struct ctx *x, const struct jd_val *a, const struct jd_val *b)
{
    if (ignored(x))
        return;
    if (!a || !b) {
        diff(x, a, b);
        return;
    }
    const char *key = key_at(x, 0);
    if (key && key[0] == '_' && !strcmp(key, "_id") && (x->auto_id_root || x->nauto)) {
        if (x->depth == 1 && x->auto_id_root)
            return;
        if (x->depth == 4 && key_is(x, 3, "items")) {
            char *end;
            unsigned long k = strtoul(x->path[1].s, &end, 10);
            if (!*end && k < x->nauto && x->auto_ids[k])
                return;
        }
    }
    if (key && (!strcmp(key, "_score") || !strcmp(key, "max_score"))) {
        if (!score_eq(x, a, b))
            diff(x, a, b);
        return;
    }
    if (key && !strcmp(key, "total") && key_is(x, 1, "hits") && a->type != JD_ARRAY) {
        int64_t va, vb;
        const char *ra, *rb;
        total_norm(a, &va, &ra);
        total_norm(b, &vb, &rb);
        if (va < 0 || vb < 0 || va != vb || strcmp(ra, rb))
            diff(x, a, b);
        return;
    }
    if (a->type != b->type) {
        if (jd_is_number(a) && jd_is_number(b) && jd_number(a) == jd_number(b))
            return;
        diff(x, a, b);
        return;
    }
    switch (a->type) {
    case JD_OBJECT:
        for (uint32_t i = 0; i < a->n; i++) {
            const char *k = a->u.items[2 * i].u.s;
            if (!push(x, k))
                return;
            cmp_node(x, &a->u.items[2 * i + 1], jd_get(b, k));
            x->depth--;
        }
        for (uint32_t i = 0; i < b->n; i++) {
            const char *k = b->u.items[2 * i].u.s;
            if (jd_get(a, k))
                continue;
            if (!push(x, k))
                return;
            cmp_node(x, NULL, &b->u.items[2 * i + 1]);
            x->depth--;
        }
        return;
    case JD_ARRAY:
        if (key && !strcmp(key, "hits") && key_is(x, 1, "hits")) {
            cmp_hits(x, a, b);
        } else if (key && !strcmp(key, "buckets") && all_have_key(a) && all_have_key(b)) {
            cmp_keyed(x, a, 0, a->n, b, 0, b->n, false);
        } else {
            cmp_positional(x, a, b, 0, a->n > b->n ? a->n : b->n);
        }
        return;
    case JD_STRING:
        if (key && (!strcmp(key, "_index") || !strcmp(key, "index"))) {
            if (!index_eq(x, a->u.s, b->u.s))
                diff(x, a, b);
            return;
        }
        if (a->n != b->n || memcmp(a->u.s, b->u.s, a->n))
            diff(x, a, b);
        return;
    case JD_INT:
        if (a->u.i != b->u.i)
            diff(x, a, b);
        return;
    case JD_REAL:
        if (a->u.d != b->u.d)
            diff(x, a, b);
        return;
    default:
        return;   /* true/false/null: same type is equal */
    }
}

/* ---- tuples ---- */

const json_t *replay_cmp_target_response(const json_t *tuple)
{
    const json_t *tr = json_object_get(tuple, "targetResponses");
    size_t n = json_array_size(tr);
    return n ? json_array_get(tr, n - 1) : NULL;
}

const struct jd_val *replay_cmp_jd_target_response(const struct jd_val *tuple)
{
    const struct jd_val *tr = jd_get(tuple, "targetResponses");
    size_t n = tr && tr->type == JD_ARRAY ? tr->n : 0;
    return n ? jd_at(tr, n - 1) : NULL;
}

int replay_cmp_jd_status(const struct jd_val *msg)
{
    const struct jd_val *s = jd_get(msg, "Status-Code");
    return s && s->type == JD_INT ? (int)s->u.i : 0;
}

int64_t replay_cmp_jd_response_ms(const struct jd_val *msg)
{
    const struct jd_val *s = jd_get(msg, "response_time_ms");
    return jd_is_number(s) ? (int64_t)jd_number(s) : -1;
}

/* the payload's single value and its kind */
static const struct jd_val *payload_of(const struct jd_val *msg, const char **kind)
{
    const struct jd_val *p = jd_get(msg, "payload");
    if (p && p->type == JD_OBJECT && p->n) {
        *kind = p->u.items[0].u.s;
        return &p->u.items[1];
    }
    *kind = "";
    return NULL;
}

/* bulk: which action lines had no _id (their item's _id is generated) */
static bool *bulk_auto_ids(const struct jd_val *tuple, size_t *n)
{
    const char *kind;
    const struct jd_val *lines = payload_of(jd_get(tuple, "sourceRequest"), &kind);
    *n = 0;
    if (!lines || lines->type != JD_ARRAY)
        return NULL;
    size_t cnt = lines->n;
    bool *out = sm_calloc(cnt + 1, sizeof(bool));
    if (!out)
        return NULL;
    for (size_t i = 0; i < cnt; i++) {
        const struct jd_val *l = jd_at(lines, i);
        if (l->type != JD_OBJECT || l->n != 1)
            continue;
        const char *act = l->u.items[0].u.s;
        const struct jd_val *meta = &l->u.items[1];
        if (meta->type != JD_OBJECT)
            continue;
        bool del = !strcmp(act, "delete");
        if (!del && strcmp(act, "index") && strcmp(act, "create") && strcmp(act, "update"))
            continue;
        out[(*n)++] = !jd_get(meta, "_id");
        if (!del)
            i++;   /* skip the document line */
    }
    return out;
}

static void request_endpoint(const struct jd_val *tuple, char *ep, size_t eplen)
{
    const struct jd_val *req = jd_get(tuple, "sourceRequest");
    if (!req)
        req = jd_get(tuple, "targetRequest");
    replay_cmp_endpoint(jd_str(jd_get(req, "Method")), jd_str(jd_get(req, "Request-URI")), ep, eplen);
}

static void compare_bodies(struct ctx *x, const struct jd_val *tuple, const struct jd_val *ma,
                           const struct jd_val *mb, const char *ep)
{
    const char *ka, *kb;
    const struct jd_val *a = payload_of(ma, &ka), *b = payload_of(mb, &kb);
    bool *autos = NULL;
    if (!strncmp(ep, "POST /", 6) && strstr(ep, "_bulk")) {
        autos = bulk_auto_ids(tuple, &x->nauto);
        x->auto_ids = autos;
    } else if (!strcmp(ep, "POST /{index}/_doc") || !strcmp(ep, "POST /{index}/{type}")) {
        x->auto_id_root = true;
    }
    if (a && b && strcmp(ka, kb)) {
        if (!ignored(x))
            diff(x, a, b);
    } else {
        cmp_node(x, a, b);
    }
    sm_free(autos);
    x->auto_ids = NULL;
    x->nauto = 0;
}

/* The comparison of one tuple; x->diffs (when wanted) is left to the caller. */
struct verdict {
    enum replay_cmp_class cls;
    char ep[ENDPOINT_LEN];
    const struct jd_val *src, *tgt;
    int ss, ts;
};

static void classify(struct replay_cmp *c, const struct jd_val *tuple, struct ctx *x, bool want_diffs,
                     struct verdict *v)
{
    request_endpoint(tuple, v->ep, sizeof(v->ep));
    v->src = jd_get(tuple, "sourceResponse");
    v->tgt = replay_cmp_jd_target_response(tuple);
    v->ss = replay_cmp_jd_status(v->src);
    v->ts = replay_cmp_jd_status(v->tgt);
    x->c = c;
    x->depth = 0;
    x->diffs = NULL;
    x->want_diffs = want_diffs;
    x->ndiffs = 0;
    x->max = c->max_diffs;
    x->learn = false;
    x->auto_id_root = false;
    x->auto_ids = NULL;
    x->nauto = 0;
    if (!v->tgt)
        v->cls = REPLAY_CMP_TARGET_ERROR;
    else if (!v->src)
        v->cls = REPLAY_CMP_NO_SOURCE;
    else if (v->ss != v->ts)
        v->cls = REPLAY_CMP_STATUS;
    else {
        refresh_active(c, v->ep);
        compare_bodies(x, tuple, v->src, v->tgt, v->ep);
        v->cls = x->ndiffs ? REPLAY_CMP_BODY : REPLAY_CMP_SAME;
    }
}

enum replay_cmp_class replay_cmp_tuple_jd(struct replay_cmp *c, const struct jd_val *tuple, json_t **out)
{
    struct ctx x;
    struct verdict v;
    classify(c, tuple, &x, out != NULL, &v);
    if (out) {
        json_t *o = json_object();
        json_object_set_new(o, "result", json_string(class_names[v.cls]));
        json_object_set_new(o, "endpoint", json_string(v.ep));
        if (v.src)
            json_object_set_new(o, "source_status", json_integer(v.ss));
        if (v.tgt)
            json_object_set_new(o, "target_status", json_integer(v.ts));
        json_object_set_new(o, "num_differences", json_integer((json_int_t)x.ndiffs));
        json_object_set_new(o, "differences", x.diffs ? x.diffs : json_array());
        *out = o;
    }
    return v.cls;
}

/* The "comparison" object of replay_cmp_tuple_jd() written straight to out
 * (same bytes as replay_tuple_dump() of it): building it as jansson values
 * and serialising them cost as much as the comparison itself. */
static enum replay_cmp_class tuple_jd_text(struct replay_cmp *c, const struct jd_val *tuple, struct sm_buf *out)
{
    struct ctx x;
    struct verdict v;
    classify(c, tuple, &x, true, &v);
    size_t mark = out->len, el = strlen(v.ep);
    int rc = sm_buf_append_str(out, "{\"result\":");
    if (!rc)
        rc = replay_tuple_dump_str(out, class_names[v.cls], strlen(class_names[v.cls]));
    if (!rc && sm_utf8_valid(v.ep, el) && !(rc = sm_buf_append_str(out, ",\"endpoint\":")))
        rc = replay_tuple_dump_str(out, v.ep, el);
    if (!rc && v.src && !(rc = sm_buf_append_str(out, ",\"source_status\":")))
        rc = sm_buf_append_int(out, v.ss);
    if (!rc && v.tgt && !(rc = sm_buf_append_str(out, ",\"target_status\":")))
        rc = sm_buf_append_int(out, v.ts);
    if (!rc && !(rc = sm_buf_append_str(out, ",\"num_differences\":")))
        rc = sm_buf_append_int(out, (int64_t)x.ndiffs);
    if (!rc && x.want_diffs && !(rc = sm_buf_append_str(out, ",\"differences\":")))
        rc = x.diffs ? replay_tuple_dump(x.diffs, out) : sm_buf_append(out, "[]", 2);
    if (!rc)
        rc = sm_buf_append(out, "}", 1);
    if (rc)
        out->len = mark;
    json_decref(x.diffs);
    return v.cls;
}

enum replay_cmp_class replay_cmp_tuple(struct replay_cmp *c, const json_t *tuple, json_t **out)
{
    jd_doc_reset(c->doc);
    const struct jd_val *t = jd_from_json(c->doc, tuple);
    if (!t) {
        if (out)
            *out = NULL;
        return REPLAY_CMP_TARGET_ERROR;
    }
    return replay_cmp_tuple_jd(c, t, out);
}

enum replay_cmp_class replay_cmp_tuple_text(struct replay_cmp *c, const char *text, size_t len, const char *tail,
                                            struct sm_buf *out)
{
    size_t tl = tail ? strlen(tail) : 0;
    sm_buf_reset(&c->text);
    if (!sm_buf_reserve(&c->text, len + tl + 1)) {
        char *buf = (char *)c->text.data;
        memcpy(buf, text, len);
        if (tl)
            memcpy(buf + len, tail, tl);
        jd_doc_reset(c->doc);
        const struct jd_val *t = jd_parse(c->doc, buf, len + tl);
        if (t)
            return tuple_jd_text(c, t, out);
    }
    /* deeper than jd_parse's nesting limit (or out of memory): through jansson */
    enum replay_cmp_class cls = REPLAY_CMP_TARGET_ERROR;
    sm_buf_reset(&c->text);
    if (sm_buf_append(&c->text, text, len) || (tl && sm_buf_append(&c->text, tail, tl)))
        return cls;
    json_error_t je;
    json_t *v = json_loadb((const char *)c->text.data, c->text.len, JSON_ALLOW_NUL, &je);
    json_t *cmp = NULL;
    if (v) {
        cls = replay_cmp_tuple(c, v, &cmp);
        size_t mark = out->len;
        if (cmp && replay_tuple_dump(cmp, out))
            out->len = mark;
    }
    json_decref(cmp);
    json_decref(v);
    return cls;
}

static void jd_set_str(struct jd_val *v, const char *s, size_t n)
{
    v->type = JD_STRING;
    v->n = (uint32_t)n;
    v->u.s = s;
}

int replay_cmp_tuple_parts(struct replay_cmp *c, const struct replay_cmp_part *req, const struct replay_cmp_part *src,
                           const struct replay_cmp_part *tgt, struct sm_buf *out)
{
    const struct replay_cmp_part *ps[3] = { req, src, tgt };
    static const char *const keys[3] = { "sourceRequest", "sourceResponse", "targetResponses" };
    struct jd_val msgs[3], members[3][6], root_items[6], tr;
    size_t total = 1;
    for (int i = 0; i < 3; i++)
        if (ps[i]->present)
            total += ps[i]->len + 1;
    sm_buf_reset(&c->text);
    if (sm_buf_reserve(&c->text, total))
        return -1;
    jd_doc_reset(c->doc);
    char *buf = (char *)c->text.data;
    size_t off = 0, nroot = 0;
    for (int i = 0; i < 3; i++) {
        const struct replay_cmp_part *p = ps[i];
        if (!p->present)
            continue;
        /* the comparison reads the source request's payload for _bulk
         * only (bulk_auto_ids(); the endpoint holds "_bulk" only when the
         * URI does): other requests' bodies are not parsed */
        bool skip = i == 0 && p->payload_only && !(p->uri && strstr(p->uri, "_bulk"));
        const struct jd_val *v = NULL;
        if (!skip) {
            memcpy(buf + off, p->json, p->len);    /* parsed in place; buf[off + len] is the gap */
            v = jd_parse(c->doc, buf + off, p->len);
            off += p->len + 1;
            if (!v)
                return -1;
        }
        if (!p->payload_only) {
            msgs[i] = *v;
        } else {
            size_t n = 0;
            struct jd_val *m = members[i];
            if (p->is_request) {
                size_t l;
                if (p->method && sm_utf8_valid(p->method, l = strlen(p->method))) {
                    jd_set_str(&m[2 * n], "Method", 6);
                    jd_set_str(&m[2 * n++ + 1], p->method, l);
                }
                if (p->uri && sm_utf8_valid(p->uri, l = strlen(p->uri))) {
                    jd_set_str(&m[2 * n], "Request-URI", 11);
                    jd_set_str(&m[2 * n++ + 1], p->uri, l);
                }
            } else {
                jd_set_str(&m[2 * n], "Status-Code", 11);
                m[2 * n + 1].type = JD_INT;
                m[2 * n++ + 1].u.i = p->status;
            }
            if (v) {
                jd_set_str(&m[2 * n], "payload", 7);
                m[2 * n++ + 1] = *v;
            }
            msgs[i].type = JD_OBJECT;
            msgs[i].n = (uint32_t)n;
            msgs[i].u.items = m;
        }
        if (i < 2) {
            jd_set_str(&root_items[2 * nroot], keys[i], strlen(keys[i]));
            root_items[2 * nroot++ + 1] = msgs[i];
        }
    }
    tr.type = JD_ARRAY;
    tr.n = tgt->present ? 1 : 0;
    tr.u.items = tgt->present ? &msgs[2] : NULL;
    jd_set_str(&root_items[2 * nroot], keys[2], strlen(keys[2]));
    root_items[2 * nroot++ + 1] = tr;
    struct jd_val root = { .type = JD_OBJECT, .n = (uint32_t)nroot, .u.items = root_items };
    return (int)tuple_jd_text(c, &root, out);
}

size_t replay_cmp_learn_pair(struct replay_cmp *c, const json_t *tuple_a, const json_t *tuple_b)
{
    jd_doc_reset(c->doc);
    const struct jd_val *a = jd_from_json(c->doc, tuple_a), *b = jd_from_json(c->doc, tuple_b);
    const struct jd_val *ta = replay_cmp_jd_target_response(a), *tb = replay_cmp_jd_target_response(b);
    if (!ta || !tb || replay_cmp_jd_status(ta) != replay_cmp_jd_status(tb))
        return 0;
    char ep[ENDPOINT_LEN];
    request_endpoint(a, ep, sizeof(ep));
    struct ctx x;
    memset(&x, 0, sizeof(x));
    x.c = c;
    x.learn = true;
    x.diffs = json_array();
    refresh_active(c, ep);
    compare_bodies(&x, a, ta, tb, ep);
    size_t learned = 0, i;
    json_t *p;
    json_array_foreach(x.diffs, i, p) {
        const char *path = json_string_value(p);
        bool dup = false;
        for (size_t k = 0; k < c->nrules && !dup; k++) {
            const struct rule *r = &c->rules[k];
            dup = r->learned && r->endpoint && !strcmp(r->endpoint, ep) && !strcmp(r->text, *path ? path : "/");
        }
        /* a JSON pointer "" (whole body) is written "/" as a rule */
        if (!dup && add_rule(c, ep, *path ? path : "/", true, true) == SM_OK)
            learned++;
    }
    json_decref(x.diffs);
    return learned;
}

json_t *replay_cmp_learned_json(const struct replay_cmp *c)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < c->nrules; i++) {
        const struct rule *r = &c->rules[i];
        if (r->learned)
            json_array_append_new(arr, json_pack("{s:s,s:s}", "endpoint", r->endpoint ? r->endpoint : "*",
                                                 "path", r->text));
    }
    return arr;
}
