/* Report aggregation: classes, status matrix, latency histograms per
 * endpoint, examples, errors, throughput; figures JSON; terminal table;
 * tuple file reading; the live replay's comparison hook. */
#include "report/report.h"

#include "compare/jdoc.h"
#include "tuple/tuple.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#define HIST_EXACT 1024
#define HIST_SUB 64
#define HIST_N (HIST_EXACT + 40 * HIST_SUB)
#define MAX_ENDPOINTS 2000
#define MAX_ERRORS 50
#define MAX_EXAMPLES 3
#define NSTATUS 600

struct hist {
    uint64_t n;
    uint64_t b[HIST_N];
};

struct endpoint {
    char *name;
    uint64_t count, cls[REPLAY_CMP_NCLASSES];
    struct hist *src, *tgt;
    json_t *examples;
};

struct err_count {
    char *msg;
    uint64_t n;
};

struct replay_report {
    uint64_t tuples, cls[REPLAY_CMP_NCLASSES];
    uint64_t *matrix;              /* NSTATUS x NSTATUS, status 0 = none */
    struct hist src, tgt;
    struct endpoint **eps;         /* open addressing, size eps_cap */
    size_t neps, eps_cap;
    struct endpoint other;         /* beyond MAX_ENDPOINTS */
    struct err_count errs[MAX_ERRORS + 1];
    size_t nerrs;
    struct jd_doc *doc;            /* for tuples given as jansson values */
    uint64_t *tp;                  /* tuples per second since tp_base */
    size_t ntp;
    int64_t tp_base;
};

/* ---- histograms (ms; exact below 1024, 64 log sub-buckets per power of 2 above) ---- */

static size_t hist_idx(uint64_t v)
{
    if (v < HIST_EXACT)
        return (size_t)v;
    int e = 63 - __builtin_clzll(v);   /* >= 10 */
    size_t i = HIST_EXACT + (size_t)(e - 10) * HIST_SUB + (size_t)((v >> (e - 6)) & (HIST_SUB - 1));
    return i < HIST_N ? i : HIST_N - 1;
}

static uint64_t hist_val(size_t i)
{
    if (i < HIST_EXACT)
        return i;
    size_t e = (i - HIST_EXACT) / HIST_SUB + 10, sub = (i - HIST_EXACT) % HIST_SUB;
    return ((uint64_t)1 << e) + ((uint64_t)sub << (e - 6));
}

static void hist_add(struct hist *h, int64_t v)
{
    if (v < 0)
        return;
    h->b[hist_idx((uint64_t)v)]++;
    h->n++;
}

/* value at quantile q (lower bound of its bucket) */
static uint64_t hist_q(const struct hist *h, double q)
{
    if (!h || !h->n)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n);
    if (want < 1)
        want = 1;
    uint64_t cum = 0;
    for (size_t i = 0; i < HIST_N; i++) {
        cum += h->b[i];
        if (cum >= want)
            return hist_val(i);
    }
    return hist_val(HIST_N - 1);
}

/* ---- report ---- */

struct replay_report *replay_report_new(void)
{
    struct replay_report *r = sm_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->matrix = sm_calloc((size_t)NSTATUS * NSTATUS, sizeof(uint64_t));
    r->eps_cap = 4096;
    r->eps = sm_calloc(r->eps_cap, sizeof(*r->eps));
    r->other.name = sm_strdup("(other endpoints)");
    r->doc = jd_doc_new();
    if (!r->matrix || !r->eps || !r->other.name || !r->doc) {
        replay_report_free(r);
        return NULL;
    }
    return r;
}

static void ep_free(struct endpoint *e)
{
    sm_free(e->name);
    sm_free(e->src);
    sm_free(e->tgt);
    json_decref(e->examples);
}

void replay_report_free(struct replay_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->eps && i < r->eps_cap; i++) {
        if (r->eps[i]) {
            ep_free(r->eps[i]);
            sm_free(r->eps[i]);
        }
    }
    ep_free(&r->other);
    for (size_t i = 0; i < r->nerrs; i++)
        sm_free(r->errs[i].msg);
    sm_free(r->eps);
    sm_free(r->matrix);
    sm_free(r->tp);
    jd_doc_free(r->doc);
    sm_free(r);
}

static uint64_t hstr(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static struct endpoint *ep_get(struct replay_report *r, const char *name)
{
    size_t i = hstr(name) & (r->eps_cap - 1);
    while (r->eps[i]) {
        if (!strcmp(r->eps[i]->name, name))
            return r->eps[i];
        i = (i + 1) & (r->eps_cap - 1);
    }
    if (r->neps >= MAX_ENDPOINTS)
        return &r->other;
    struct endpoint *e = sm_calloc(1, sizeof(*e));
    if (!e || !(e->name = sm_strdup(name))) {
        sm_free(e);
        return &r->other;
    }
    r->eps[i] = e;
    r->neps++;
    return e;
}

static struct hist *hist_lazy(struct hist **h)
{
    if (!*h)
        *h = sm_calloc(1, sizeof(**h));
    return *h;
}

static void count_error(struct replay_report *r, const char *msg)
{
    char buf[200];
    snprintf(buf, sizeof(buf), "%s", msg);
    for (size_t i = 0; i < r->nerrs; i++) {
        if (!strcmp(r->errs[i].msg, buf)) {
            r->errs[i].n++;
            return;
        }
    }
    size_t i = r->nerrs < MAX_ERRORS ? r->nerrs : MAX_ERRORS;
    if (i == MAX_ERRORS && r->nerrs == MAX_ERRORS + 1) {
        r->errs[i].n++;
        return;
    }
    r->errs[i].msg = sm_strdup(i == MAX_ERRORS ? "(other errors)" : buf);
    if (!r->errs[i].msg)
        return;
    r->errs[i].n = 1;
    r->nerrs = i + 1;
}

static void count_time(struct replay_report *r, int64_t ms)
{
    int64_t sec = ms / 1000;
    if (!r->tp) {
        r->tp = sm_calloc(64, sizeof(uint64_t));
        if (!r->tp)
            return;
        r->ntp = 64;
        r->tp_base = sec;
    }
    if (sec < r->tp_base) {
        size_t shift = (size_t)(r->tp_base - sec);
        if (shift > 30 * 86400)
            return;
        uint64_t *n = sm_calloc(r->ntp + shift, sizeof(uint64_t));
        if (!n)
            return;
        memcpy(n + shift, r->tp, r->ntp * sizeof(uint64_t));
        sm_free(r->tp);
        r->tp = n;
        r->ntp += shift;
        r->tp_base = sec;
    }
    size_t off = (size_t)(sec - r->tp_base);
    if (off >= r->ntp) {
        if (off > 30 * 86400)
            return;
        size_t nn = r->ntp;
        while (nn <= off)
            nn *= 2;
        uint64_t *n = sm_realloc(r->tp, nn * sizeof(uint64_t));
        if (!n)
            return;
        memset(n + r->ntp, 0, (nn - r->ntp) * sizeof(uint64_t));
        r->tp = n;
        r->ntp = nn;
    }
    r->tp[off]++;
}

static const char *req_line(const struct jd_val *tuple, char *buf, size_t n)
{
    const struct jd_val *q = jd_get(tuple, "sourceRequest");
    snprintf(buf, n, "%s %s", jd_str(jd_get(q, "Method")) ?: "?", jd_str(jd_get(q, "Request-URI")) ?: "?");
    return buf;
}

void replay_report_add(struct replay_report *r, const json_t *tuple, const json_t *cmp)
{
    jd_doc_reset(r->doc);
    const struct jd_val *t = jd_from_json(r->doc, tuple);
    if (t)
        replay_report_add_jd(r, t, cmp);
}

void replay_report_add_jd(struct replay_report *r, const struct jd_val *tuple, const json_t *cmp)
{
    const char *res = json_string_value(json_object_get(cmp, "result"));
    enum replay_cmp_class cls = REPLAY_CMP_SAME;
    for (int i = 0; i < REPLAY_CMP_NCLASSES; i++)
        if (res && !strcmp(res, replay_cmp_class_name((enum replay_cmp_class)i)))
            cls = (enum replay_cmp_class)i;
    const char *epname = json_string_value(json_object_get(cmp, "endpoint"));
    struct endpoint *e = ep_get(r, epname ? epname : "?");
    r->tuples++;
    r->cls[cls]++;
    e->count++;
    e->cls[cls]++;
    const struct jd_val *src = jd_get(tuple, "sourceResponse");
    const struct jd_val *tgt = replay_cmp_jd_target_response(tuple);
    int ss = replay_cmp_jd_status(src), ts = replay_cmp_jd_status(tgt);
    if (ss < 0 || ss >= NSTATUS)
        ss = 0;
    if (ts < 0 || ts >= NSTATUS)
        ts = 0;
    r->matrix[(size_t)ss * NSTATUS + (size_t)ts]++;
    int64_t sms = src ? replay_cmp_jd_response_ms(src) : -1, tms = tgt ? replay_cmp_jd_response_ms(tgt) : -1;
    if (sms >= 0) {
        hist_add(&r->src, sms);
        if (hist_lazy(&e->src))
            hist_add(e->src, sms);
    }
    if (tms >= 0) {
        hist_add(&r->tgt, tms);
        if (hist_lazy(&e->tgt))
            hist_add(e->tgt, tms);
    }
    if (cls == REPLAY_CMP_TARGET_ERROR) {
        const char *msg = jd_str(jd_get(tuple, "error"));
        count_error(r, msg && *msg ? msg : "no target response");
    }
    const struct jd_val *t = jd_get(tuple, REPLAY_REPORT_TIME_KEY);
    if (t && t->type == JD_INT)
        count_time(r, t->u.i);
    if ((cls == REPLAY_CMP_STATUS || cls == REPLAY_CMP_BODY) &&
        (!e->examples || json_array_size(e->examples) < MAX_EXAMPLES)) {
        if (!e->examples)
            e->examples = json_array();
        char rl[512];
        json_t *ex = json_pack("{s:s,s:s,s:s}", "connectionId",
                               jd_str(jd_get(tuple, "connectionId")) ?: "",
                               "request", req_line(tuple, rl, sizeof(rl)), "result", res ? res : "");
        json_object_set_new(ex, "source_status", json_integer(ss));
        json_object_set_new(ex, "target_status", json_integer(ts));
        json_t *d = json_object_get(cmp, "differences");
        json_object_set(ex, "differences", d ? d : json_array());
        json_array_append_new(e->examples, ex);
    }
}

/* ---- figures ---- */

static json_t *pct_json(const struct hist *h)
{
    if (!h || !h->n)
        return json_pack("{s:I,s:n,s:n,s:n}", "count", (json_int_t)0, "p50", "p90", "p99");
    return json_pack("{s:I,s:I,s:I,s:I}", "count", (json_int_t)(h ? h->n : 0), "p50", (json_int_t)hist_q(h, 0.50),
                     "p90", (json_int_t)hist_q(h, 0.90), "p99", (json_int_t)hist_q(h, 0.99));
}

static json_t *ratio(const struct hist *s, const struct hist *t, double q)
{
    if (!s || !t || !s->n || !t->n)
        return json_null();
    uint64_t a = hist_q(s, q), b = hist_q(t, q);
    if (!a)
        return json_null();
    return json_real(round((double)b / (double)a * 100.0) / 100.0);
}

static json_t *cdf_json(const struct hist *h)
{
    json_t *arr = json_array();
    if (!h->n)
        return arr;
    for (int i = 0; i <= 100; i++) {
        double q = i / 100.0;
        json_array_append_new(arr, json_pack("[I,f]", (json_int_t)hist_q(h, q ? q : 1.0 / (double)h->n), q));
    }
    return arr;
}

static int ep_cmp_count(const void *pa, const void *pb)
{
    const struct endpoint *a = *(const struct endpoint *const *)pa, *b = *(const struct endpoint *const *)pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->name, b->name);
}

static uint64_t ep_diff(const struct endpoint *e)
{
    return e->cls[REPLAY_CMP_STATUS] + e->cls[REPLAY_CMP_BODY];
}

static int ep_cmp_diff(const void *pa, const void *pb)
{
    const struct endpoint *a = *(const struct endpoint *const *)pa, *b = *(const struct endpoint *const *)pb;
    if (ep_diff(a) != ep_diff(b))
        return ep_diff(a) > ep_diff(b) ? -1 : 1;
    return ep_cmp_count(pa, pb);
}

static json_t *classes_json(const uint64_t *cls)
{
    json_t *o = json_object();
    for (int i = 0; i < REPLAY_CMP_NCLASSES; i++)
        json_object_set_new(o, replay_cmp_class_name((enum replay_cmp_class)i), json_integer((json_int_t)cls[i]));
    return o;
}

static double match_rate(const uint64_t *cls)
{
    uint64_t compared = cls[REPLAY_CMP_SAME] + cls[REPLAY_CMP_STATUS] + cls[REPLAY_CMP_BODY] +
                        cls[REPLAY_CMP_TARGET_ERROR];
    return compared ? round((double)cls[REPLAY_CMP_SAME] / (double)compared * 10000.0) / 10000.0 : 0.0;
}

json_t *replay_report_figures(struct replay_report *r, size_t top, const json_t *learned)
{
    json_t *f = json_object();
    json_object_set_new(f, "tuples", json_integer((json_int_t)r->tuples));
    json_object_set_new(f, "classes", classes_json(r->cls));
    json_object_set_new(f, "match_rate", json_real(match_rate(r->cls)));

    /* status matrix */
    bool srow[NSTATUS] = { false }, tcol[NSTATUS] = { false };
    for (size_t s = 0; s < NSTATUS; s++)
        for (size_t t = 0; t < NSTATUS; t++)
            if (r->matrix[s * NSTATUS + t])
                srow[s] = tcol[t] = true;
    json_t *sc = json_array(), *tc = json_array(), *counts = json_array();
    for (size_t t = 0; t < NSTATUS; t++)
        if (tcol[t])
            json_array_append_new(tc, json_integer((json_int_t)t));
    for (size_t s = 0; s < NSTATUS; s++) {
        if (!srow[s])
            continue;
        json_array_append_new(sc, json_integer((json_int_t)s));
        json_t *row = json_array();
        for (size_t t = 0; t < NSTATUS; t++)
            if (tcol[t])
                json_array_append_new(row, json_integer((json_int_t)r->matrix[s * NSTATUS + t]));
        json_array_append_new(counts, row);
    }
    json_object_set_new(f, "status_matrix", json_pack("{s:o,s:o,s:o}", "source", sc, "target", tc, "counts", counts));

    /* latency */
    json_t *lat = json_object();
    json_t *ls = pct_json(&r->src), *lt = pct_json(&r->tgt);
    json_object_set_new(ls, "cdf", cdf_json(&r->src));
    json_object_set_new(lt, "cdf", cdf_json(&r->tgt));
    json_object_set_new(lat, "source", ls);
    json_object_set_new(lat, "target", lt);
    json_object_set_new(lat, "ratio_p50", ratio(&r->src, &r->tgt, 0.50));
    json_object_set_new(lat, "ratio_p90", ratio(&r->src, &r->tgt, 0.90));
    json_object_set_new(lat, "ratio_p99", ratio(&r->src, &r->tgt, 0.99));
    json_object_set_new(f, "latency", lat);

    /* endpoints */
    size_t n = 0;
    struct endpoint **list = sm_calloc(r->neps + 1, sizeof(*list));
    if (list) {
        for (size_t i = 0; i < r->eps_cap; i++)
            if (r->eps[i])
                list[n++] = r->eps[i];
        if (r->other.count)
            list[n++] = &r->other;
    }
    json_t *eps = json_array();
    if (list)
        qsort(list, n, sizeof(*list), ep_cmp_count);
    for (size_t i = 0; i < n; i++) {
        struct endpoint *e = list[i];
        json_t *o = json_pack("{s:s,s:I}", "endpoint", e->name, "count", (json_int_t)e->count);
        json_object_set_new(o, "classes", classes_json(e->cls));
        json_object_set_new(o, "match_rate", json_real(match_rate(e->cls)));
        json_object_set_new(o, "source", pct_json(e->src));
        json_object_set_new(o, "target", pct_json(e->tgt));
        json_object_set_new(o, "ratio_p50", ratio(e->src, e->tgt, 0.50));
        json_object_set_new(o, "ratio_p90", ratio(e->src, e->tgt, 0.90));
        json_object_set_new(o, "ratio_p99", ratio(e->src, e->tgt, 0.99));
        json_array_append_new(eps, o);
    }
    json_object_set_new(f, "endpoints", eps);
    json_t *topd = json_array();
    if (list)
        qsort(list, n, sizeof(*list), ep_cmp_diff);
    for (size_t i = 0; i < n && i < top; i++) {
        struct endpoint *e = list[i];
        if (!ep_diff(e))
            break;
        json_array_append_new(topd, json_pack("{s:s,s:I,s:I,s:I,s:I,s:O}", "endpoint", e->name, "count",
                                              (json_int_t)e->count, "differing", (json_int_t)ep_diff(e), "status",
                                              (json_int_t)e->cls[REPLAY_CMP_STATUS], "body",
                                              (json_int_t)e->cls[REPLAY_CMP_BODY], "examples",
                                              e->examples ? e->examples : json_array()));
    }
    sm_free(list);
    json_object_set_new(f, "top_differing", topd);

    /* errors */
    json_t *errs = json_array();
    for (size_t i = 0; i < r->nerrs; i++)
        json_array_append_new(errs, json_pack("{s:s,s:I}", "error", r->errs[i].msg, "count", (json_int_t)r->errs[i].n));
    json_object_set_new(f, "errors", errs);

    /* throughput: at most 120 buckets */
    json_t *tp = json_object();
    size_t first = 0, last = 0;
    bool any = false;
    for (size_t i = 0; i < r->ntp; i++) {
        if (r->tp[i]) {
            if (!any)
                first = i;
            last = i;
            any = true;
        }
    }
    json_t *tpc = json_array();
    uint64_t peak = 0;
    size_t width = 1;
    if (any) {
        size_t span = last - first + 1;
        width = (span + 119) / 120;
        for (size_t b = first; b <= last; b += width) {
            uint64_t s = 0;
            for (size_t k = b; k < b + width && k <= last; k++) {
                s += r->tp[k];
                if (r->tp[k] > peak)
                    peak = r->tp[k];
            }
            json_array_append_new(tpc, json_integer((json_int_t)s));
        }
    }
    json_object_set_new(tp, "start_ms", json_integer(any ? (json_int_t)(r->tp_base + (int64_t)first) * 1000 : 0));
    json_object_set_new(tp, "bucket_s", json_integer((json_int_t)width));
    json_object_set_new(tp, "counts", tpc);
    json_object_set_new(tp, "peak_per_s", json_integer((json_int_t)peak));
    json_object_set_new(f, "throughput", tp);
    if (learned)
        json_object_set(f, "learned_noise", (json_t *)learned);
    return f;
}

/* ---- terminal ---- */

static json_int_t geti(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* an integer figure or "-" when null */
static const char *fmt_opt(const json_t *v, char *buf, size_t n)
{
    if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, n, "-");
    return buf;
}

void replay_report_print(const json_t *f, FILE *out)
{
    const json_t *cls = json_object_get(f, "classes");
    fprintf(out, "comparison of %lld tuples: match rate %.1f%%\n", (long long)geti(f, "tuples"),
            json_number_value(json_object_get(f, "match_rate")) * 100.0);
    fprintf(out, "  same %lld, status differs %lld, body differs %lld, target error %lld, no source %lld\n",
            (long long)geti(cls, "same"), (long long)geti(cls, "status"), (long long)geti(cls, "body"),
            (long long)geti(cls, "target_error"), (long long)geti(cls, "no_source"));
    const json_t *lat = json_object_get(f, "latency");
    const json_t *ls = json_object_get(lat, "source"), *lt = json_object_get(lat, "target");
    char b1[24], b2[24], b3[24], b4[24], b5[24], b6[24];
    fprintf(out, "  latency ms  source p50 %s p90 %s p99 %s | target p50 %s p90 %s p99 %s\n",
            fmt_opt(json_object_get(ls, "p50"), b1, sizeof(b1)), fmt_opt(json_object_get(ls, "p90"), b2, sizeof(b2)),
            fmt_opt(json_object_get(ls, "p99"), b3, sizeof(b3)), fmt_opt(json_object_get(lt, "p50"), b4, sizeof(b4)),
            fmt_opt(json_object_get(lt, "p90"), b5, sizeof(b5)), fmt_opt(json_object_get(lt, "p99"), b6, sizeof(b6)));
    fprintf(out, "  %-40s %9s %7s %9s %9s %9s %9s %6s\n", "endpoint", "count", "same%", "differ", "src p50",
            "tgt p50", "tgt p99", "x p99");
    const json_t *eps = json_object_get(f, "endpoints");
    size_t i;
    const json_t *e;
    json_array_foreach((json_t *)eps, i, e) {
        if (i >= 15) {
            fprintf(out, "  ... %zu more endpoints\n", json_array_size(eps) - i);
            break;
        }
        const json_t *c = json_object_get(e, "classes");
        const json_t *r = json_object_get(e, "ratio_p99");
        char rb[32];
        if (json_is_number(r))
            snprintf(rb, sizeof(rb), "%.2f", json_number_value(r));
        else
            snprintf(rb, sizeof(rb), "-");
        fprintf(out, "  %-40.40s %9lld %6.1f%% %9lld %9s %9s %9s %6s\n",
                json_string_value(json_object_get(e, "endpoint")), (long long)geti(e, "count"),
                json_number_value(json_object_get(e, "match_rate")) * 100.0,
                (long long)(geti(c, "status") + geti(c, "body")),
                fmt_opt(json_object_get(json_object_get(e, "source"), "p50"), b1, sizeof(b1)),
                fmt_opt(json_object_get(json_object_get(e, "target"), "p50"), b2, sizeof(b2)),
                fmt_opt(json_object_get(json_object_get(e, "target"), "p99"), b3, sizeof(b3)), rb);
    }
    const json_t *errs = json_object_get(f, "errors");
    json_array_foreach((json_t *)errs, i, e) {
        if (i >= 5)
            break;
        fprintf(out, "  target error x%lld: %s\n", (long long)geti(e, "count"),
                json_string_value(json_object_get(e, "error")));
    }
}

/* ---- reading tuple files ---- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct reader {
    void (*fn)(void *arg, json_t *tuple);
    void (*fn_jd)(void *arg, const struct jd_val *tuple);
    void *arg;
    struct jd_doc *doc;
    uint64_t *bad;
};

static void one_line(struct reader *rd, char *line, size_t l)
{
    if (rd->fn_jd) {
        jd_doc_reset(rd->doc);
        const struct jd_val *t = jd_parse(rd->doc, line, l);
        if (t && t->type == JD_OBJECT)
            rd->fn_jd(rd->arg, t);
        else if (rd->bad)
            (*rd->bad)++;
        return;
    }
    json_error_t je;
    json_t *t = json_loadb(line, l, 0, &je);
    if (json_is_object(t))
        rd->fn(rd->arg, t);
    else if (rd->bad)
        (*rd->bad)++;
    json_decref(t);
}

static int read_file_lines(const char *path, struct reader *rd, char *err, size_t errlen)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return sm_errf(err, errlen, SM_EIO, "%s: %s", path, strerror(errno));
    gzbuffer(gz, 1 << 17);
    size_t cap = 1 << 20, len = 0;
    char *buf = sm_malloc(cap + 1);
    if (!buf) {
        gzclose(gz);
        return SM_ENOMEM;
    }
    int rc = SM_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= ((size_t)1 << 30)) {
                rc = sm_errf(err, errlen, SM_EFULL, "%s: a line longer than 1 GiB", path);
                break;
            }
            char *nb = sm_realloc(buf, cap * 2 + 1);
            if (!nb) {
                rc = SM_ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        int got = gzread(gz, buf + len, (unsigned)(cap - len));
        if (got < 0) {
            int zerr;
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: %s", path, gzerror(gz, &zerr));
            break;
        }
        len += (size_t)got;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(buf + start, '\n', len - start);
            if (!nl && !(got == 0 && start < len))
                break;
            size_t l = nl ? (size_t)(nl - (buf + start)) : len - start;
            if (l && !(l == 1 && buf[start] == '\r'))
                one_line(rd, buf + start, l);   /* buf[start + l] is '\n' or spare: writable */
            start += l + (nl ? 1 : 0);
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (got == 0)
            break;
    }
    sm_free(buf);
    gzclose(gz);
    return rc;
}

static int read_tuples(const char *path, struct reader *rd, char *err, size_t errlen);

int replay_report_read_tuples(const char *path, void (*fn)(void *arg, json_t *tuple), void *arg, uint64_t *bad,
                              char *err, size_t errlen)
{
    struct reader rd = { fn, NULL, arg, NULL, bad };
    return read_tuples(path, &rd, err, errlen);
}

int replay_report_read_tuples_jd(const char *path, void (*fn)(void *arg, const struct jd_val *tuple), void *arg,
                                 uint64_t *bad, char *err, size_t errlen)
{
    struct reader rd = { NULL, fn, arg, jd_doc_new(), bad };
    if (!rd.doc)
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    int rc = read_tuples(path, &rd, err, errlen);
    jd_doc_free(rd.doc);
    return rc;
}

static int read_tuples(const char *path, struct reader *rd, char *err, size_t errlen)
{
    struct stat st;
    if (!strcmp(path, "-"))
        return sm_errf(err, errlen, SM_ECONFIG, "tuples from stdin are not supported; give files or directories");
    if (stat(path, &st) < 0)
        return sm_errf(err, errlen, SM_ENOTFOUND, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return read_file_lines(path, rd, err, errlen);
    DIR *d = opendir(path);
    if (!d)
        return sm_errf(err, errlen, SM_EIO, "%s: %s", path, strerror(errno));
    struct sm_strlist names = { 0 };
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
            sm_strlist_push(&names, full);
    }
    closedir(d);
    if (names.n > 1)
        qsort(names.v, names.n, sizeof(char *), name_cmp);
    int rc = SM_OK;
    for (size_t i = 0; i < names.n && !rc; i++)
        rc = read_file_lines(names.v[i], rd, err, errlen);
    sm_strlist_free(&names);
    return rc;
}

/* ---- live replay ---- */

int replay_live_compare_init(struct replay_live_compare *lc, const char *rules_file,
                             const struct sm_strlist *renames, char *err, size_t errlen)
{
    memset(lc, 0, sizeof(*lc));
    lc->cmp = replay_cmp_new();
    if (!lc->cmp)
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    int rc = rules_file ? replay_cmp_load_rules(lc->cmp, rules_file, err, errlen) : SM_OK;
    if (!rc)
        rc = replay_cmp_set_index_renames(lc->cmp, renames, err, errlen);
    if (rc) {
        replay_cmp_free(lc->cmp);
        lc->cmp = NULL;
    }
    return rc;
}

void replay_live_compare_fini(struct replay_live_compare *lc)
{
    replay_cmp_free(lc->cmp);
    lc->cmp = NULL;
    sm_buf_free(&lc->view);
}

static void cmp_part(struct replay_cmp_part *cp, const struct sm_buf *line, const struct replay_tuple_part *pt)
{
    memset(cp, 0, sizeof(*cp));
    if (!(cp->present = pt->msg != NULL))
        return;
    cp->is_request = pt->msg->is_request;
    if (pt->payload_off == SIZE_MAX || pt->payload_off >= pt->off + pt->len) {
        cp->json = (const char *)line->data + pt->off;     /* the whole message */
        cp->len = pt->len;
        return;
    }
    cp->payload_only = true;
    cp->json = (const char *)line->data + pt->payload_off;
    cp->len = pt->off + pt->len - 1 - pt->payload_off;
    cp->method = pt->msg->method;
    cp->uri = pt->msg->uri;
    cp->status = pt->msg->status;
}

int replay_live_compare_tuple(struct replay_cmp *cmp, struct sm_buf *view, const struct sm_buf *line,
                              const struct replay_tuple_parts *parts, struct sm_buf *out)
{
    struct replay_cmp_part p[3];
    cmp_part(&p[0], line, &parts->req);
    cmp_part(&p[1], line, &parts->src);
    cmp_part(&p[2], line, &parts->tgt);
    int cls = replay_cmp_tuple_parts(cmp, &p[0], &p[1], &p[2], out);
    if (cls >= 0)
        return cls;
    /* a part too deep for jd_parse(): the view as text, which falls back to jansson */
    if (!view->max)
        sm_buf_init(view, (size_t)1 << 31);
    sm_buf_reset(view);
    if (replay_tuple_cmp_view(line, parts, view))
        return -1;
    return (int)replay_cmp_tuple_text(cmp, (const char *)view->data, view->len, NULL, out);
}

void replay_live_compare_hook(void *arg, struct sm_buf *line, const struct replay_tuple_parts *parts)
{
    struct replay_live_compare *lc = arg;
    if (lc->cmp) {
        size_t mark = line->len;
        if (!sm_buf_append_str(line, ",\"comparison\":")) {
            size_t before = line->len;
            int cls = replay_live_compare_tuple(lc->cmp, &lc->view, line, parts, line);
            if (cls >= 0)
                lc->counts[cls]++;
            if (line->len == before)
                line->len = mark;           /* no comparison object (out of memory) */
        }
    }
    /* sm_buf_printf() would cost a vsnprintf per tuple */
    if (!sm_buf_append_str(line, ",\"" REPLAY_REPORT_TIME_KEY "\":"))
        sm_buf_append_int(line, (int64_t)sm_wall_ms());
}

void replay_live_compare_summary(const struct replay_live_compare *lc, FILE *out, const char *summary_json)
{
    if (!lc->cmp)
        return;
    fprintf(out, "  comparison          same %llu, status %llu, body %llu, target error %llu, no source %llu\n",
            (unsigned long long)lc->counts[REPLAY_CMP_SAME], (unsigned long long)lc->counts[REPLAY_CMP_STATUS],
            (unsigned long long)lc->counts[REPLAY_CMP_BODY], (unsigned long long)lc->counts[REPLAY_CMP_TARGET_ERROR],
            (unsigned long long)lc->counts[REPLAY_CMP_NO_SOURCE]);
    if (!summary_json)
        return;
    json_error_t je;
    json_t *j = json_load_file(summary_json, 0, &je);
    if (!j)
        return;
    json_object_set_new(j, "comparison", classes_json(lc->counts));
    json_dump_file(j, summary_json, JSON_INDENT(2));
    json_decref(j);
}
