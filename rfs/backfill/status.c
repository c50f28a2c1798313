/* backfill-status: summary of the coordination index. */
#include "backfill/backfill.h"

#include "backfill/coord.h"

#include <sm/err.h>
#include <sm/http.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#define STATUS_MAX_FAILED 100   /* failed items listed by name */

static uint64_t agg_u64(const json_t *aggs, const char *name)
{
    double v = json_number_value(json_object_get(json_object_get(aggs, name), "value"));
    return v > 0 ? (uint64_t)(v + 0.5) : 0;
}

static int64_t total_hits(const json_t *resp)
{
    const json_t *t = json_object_get(json_object_get(resp, "hits"), "total");
    return json_is_object(t) ? json_integer_value(json_object_get(t, "value")) : json_integer_value(t);
}

static void fmt_dur(double s, char *buf, size_t len)
{
    if (s < 0) {
        snprintf(buf, len, "-");
        return;
    }
    uint64_t t = (uint64_t)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
    else
        snprintf(buf, len, "%" PRIu64 "s", t);
}

int rfs_backfill_status(const struct sm_http_opts *target, const char *coord_index, FILE *out, bool tty, bool json,
                        char *err, size_t errlen)
{
    struct sm_http_client *c = sm_http_client_new(target, "target", err, errlen);
    if (!c)
        return RFS_BACKFILL_EXIT_FAILED;
    struct rfs_target_info ti;
    int ex = RFS_BACKFILL_EXIT_FAILED;
    json_t *setup = NULL, *done = NULL, *hits = NULL;
    if (rfs_target_info(c, &ti, err, errlen))
        goto out;
    struct rfs_coord co = { .c = c, .index = coord_index, .typed = ti.typed };
    int rc = rfs_coord_get(&co, "_setup", &setup, NULL, NULL, err, errlen);
    if (rc == SM_ENOTFOUND) {
        fprintf(out, "no backfill set up in %s on %s yet\n", coord_index, sm_http_client_url(c));
        ex = RFS_BACKFILL_EXIT_MORE;
        goto out;
    }
    if (rc)
        goto out;
    if (rfs_coord_get(&co, "_done", &done, NULL, NULL, err, errlen) == SM_ENOTFOUND)
        err[0] = 0;   /* not complete: no error (it was printed as one when items failed) */
    if (rfs_coord_refresh(&co, err, errlen))
        goto out;
    /* counted by the target (aggregations), not by reading item documents: any
     * number of items, and the exit code is right past the 10000 a search returns */
    uint64_t now = sm_wall_ms();
    json_t *body = json_pack(
        "{si sb s{s{ss}} s{s{s{ss si}} s{s{s{s[{s{ss}} {s{s{sI}}}]}}} s{s{ss}} s{s{ss}} s{s{ss}} s{s{ss}} s{s{ss}}"
        " s{s{s{s{si}}} s{s{s{ss}} s{s{ss}}}}}}",
        "size", 0, "track_total_hits", 1, "query", "term", "kind", "item", "aggs",
        "states", "terms", "field", "state", "size", 16,
        "live", "filter", "bool", "filter", "term", "state", "leased", "range", "lease_expiry_ms", "gt",
        (json_int_t)now,
        "acked", "sum", "field", "docs_acked", "rejected", "sum", "field", "docs_rejected",
        "bytes", "sum", "field", "bytes", "est", "sum", "field", "est_docs", "takeovers", "sum", "field", "takeovers",
        "started", "filter", "range", "started_ms", "gt", 0, "aggs", "first", "min", "field", "started_ms",
        "last", "max", "field", "updated_ms");
    json_t *resp = NULL;
    rc = body ? rfs_coord_search_raw(&co, body, &resp, err, errlen) : SM_ENOMEM;
    json_decref(body);
    if (rc)
        goto out;
    const json_t *aggs = json_object_get(resp, "aggregations");
    uint64_t n = (uint64_t)total_hits(resp), ndone = 0, nleased, nleased_any = 0, navail = 0, nfailed = 0;
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(json_object_get(aggs, "states"), "buckets"), i, h) {
        const char *state = json_string_value(json_object_get(h, "key"));
        uint64_t count = (uint64_t)json_integer_value(json_object_get(h, "doc_count"));
        if (!state)
            continue;
        if (!strcmp(state, "done"))
            ndone = count;
        else if (!strcmp(state, "failed"))
            nfailed = count;
        else if (!strcmp(state, "leased"))
            nleased_any = count;
        else
            navail += count;
    }
    nleased = (uint64_t)json_integer_value(json_object_get(json_object_get(aggs, "live"), "doc_count"));
    navail += nleased_any > nleased ? nleased_any - nleased : 0;   /* expired leases: claimable again */
    uint64_t acked = agg_u64(aggs, "acked"), rejected = agg_u64(aggs, "rejected"), bytes = agg_u64(aggs, "bytes"),
             est = agg_u64(aggs, "est"), takeovers = agg_u64(aggs, "takeovers");
    const json_t *started = json_object_get(aggs, "started");
    int64_t first_start = (int64_t)agg_u64(started, "first"), last_update = (int64_t)agg_u64(started, "last");
    json_decref(resp);
    if (nfailed && !json) {
        json_t *fq = json_pack("{si s{s{s[{s{ss}}{s{ss}}]}}}", "size", STATUS_MAX_FAILED, "query", "bool", "filter",
                               "term", "kind", "item", "term", "state", "failed");
        rc = fq ? rfs_coord_search(&co, fq, &hits, err, errlen) : SM_ENOMEM;
        json_decref(fq);
        if (rc)
            goto out;
    }
    uint64_t left = navail + nleased;
    double secs = first_start ? (double)((done || !left ? last_update : (int64_t)now) - first_start) / 1000.0 : 0;
    double rate = secs > 0 ? (double)acked / secs : 0, mbs = secs > 0 ? (double)bytes / secs / 1e6 : 0;
    double eta = -1;
    if (left && rate > 0 && est > acked)
        eta = (double)(est - acked) / rate;
    else if (!left)
        eta = 0;
    char etas[32], el[32];
    fmt_dur(eta, etas, sizeof(etas));
    fmt_dur(secs, el, sizeof(el));
    if (json) {
        json_t *o = json_pack("{ss sI sI sI sI sI sI sI sI sf sf sb}", "snapshot",
                              json_string_value(json_object_get(setup, "snapshot")) ?
                              json_string_value(json_object_get(setup, "snapshot")) : "",
                              "items", (json_int_t)n, "done", (json_int_t)ndone, "in_progress", (json_int_t)nleased,
                              "left", (json_int_t)navail, "failed", (json_int_t)nfailed, "docs", (json_int_t)acked,
                              "docs_rejected", (json_int_t)rejected, "bytes", (json_int_t)bytes, "docs_per_s", rate,
                              "eta_s", eta, "complete", done != NULL);
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fprintf(out, "%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        fprintf(out, "backfill of snapshot %s (%s) on %s\n",
                json_string_value(json_object_get(setup, "snapshot")) ?
                json_string_value(json_object_get(setup, "snapshot")) : "?",
                json_string_value(json_object_get(setup, "repo")) ? json_string_value(json_object_get(setup, "repo"))
                                                                   : "?",
                sm_http_client_url(c));
        if (tty && n) {
            int width = 40, fill = (int)((ndone + nfailed) * (uint64_t)width / n);
            fprintf(out, "[");
            for (int k = 0; k < width; k++)
                fputc(k < fill ? '#' : '.', out);
            fprintf(out, "] %3d%%\n", (int)((ndone + nfailed) * 100 / n));
        }
        fprintf(out, "items: %" PRIu64 " total, %" PRIu64 " done, %" PRIu64 " in progress, %" PRIu64 " left, %" PRIu64
                " failed%s\n", n, ndone, nleased, navail, nfailed, takeovers ? "" : "");
        fprintf(out, "documents: %" PRIu64 " indexed, %" PRIu64 " rejected, of about %" PRIu64 "\n", acked, rejected,
                est);
        fprintf(out, "rate: %.0f docs/s, %.2f MB/s over %s; ETA %s\n", rate, mbs, el, etas);
        if (takeovers)
            fprintf(out, "takeovers: %" PRIu64 " (leases expired and items resumed by another worker)\n", takeovers);
        json_array_foreach(hits, i, h) {
            const char *e = json_string_value(json_object_get(json_object_get(h, "_source"), "error"));
            fprintf(out, "failed: %s: %s\n", json_string_value(json_object_get(h, "_id")), e ? e : "?");
        }
        if (nfailed > json_array_size(hits))
            fprintf(out, "failed: ... and %" PRIu64 " more items\n", nfailed - (uint64_t)json_array_size(hits));
        fprintf(out, "state: %s\n", done ? "complete" : left ? "in progress" : nfailed ? "finished with failures"
                                                                          : "finished");
    }
    if (left)
        ex = RFS_BACKFILL_EXIT_MORE;
    else if (nfailed || rejected)
        ex = RFS_BACKFILL_EXIT_FAILED;
    else
        ex = RFS_BACKFILL_EXIT_DONE;
out:
    json_decref(setup);
    json_decref(done);
    json_decref(hits);
    sm_http_client_free(c);
    return ex;
}

int rfs_backfill_cleanup(const struct sm_http_opts *target, const char *coord_index, bool force, FILE *out,
                         char *err, size_t errlen)
{
    struct sm_http_client *c = sm_http_client_new(target, "target", err, errlen);
    if (!c)
        return RFS_BACKFILL_EXIT_FAILED;
    struct rfs_target_info ti;
    if (rfs_target_info(c, &ti, err, errlen)) {
        sm_http_client_free(c);
        return RFS_BACKFILL_EXIT_FAILED;
    }
    struct rfs_coord co = { .c = c, .index = coord_index, .typed = ti.typed };
    json_t *setup = NULL;
    int rc = rfs_coord_get(&co, "_setup", &setup, NULL, NULL, err, errlen);
    json_decref(setup);
    if (rc == SM_ENOTFOUND && !force) {   /* absent, or a backfill still setting up */
        err[0] = 0;
        fprintf(out, "no backfill set up in %s: nothing deleted\n", coord_index);
        sm_http_client_free(c);
        return RFS_BACKFILL_EXIT_DONE;
    }
    if (rc && rc != SM_ENOTFOUND) {
        sm_http_client_free(c);
        return RFS_BACKFILL_EXIT_FAILED;
    }
    FILE *null = fopen("/dev/null", "w");
    if (!null) {
        snprintf(err, errlen, "/dev/null: %s", strerror(errno));
        sm_http_client_free(c);
        return RFS_BACKFILL_EXIT_FAILED;
    }
    char serr[512] = "";
    int ex = rc ? RFS_BACKFILL_EXIT_MORE
                : rfs_backfill_status(target, coord_index, null, false, false, serr, sizeof(serr));
    fclose(null);
    if (ex == RFS_BACKFILL_EXIT_FAILED && serr[0]) {   /* could not read the state */
        snprintf(err, errlen, "%s", serr);
        sm_http_client_free(c);
        return ex;
    }
    if (ex != RFS_BACKFILL_EXIT_DONE && !force) {
        fprintf(out, "%s not deleted: %s (see backfill-status; --force deletes it anyway)\n", coord_index,
                ex == RFS_BACKFILL_EXIT_MORE ? "work remains" : "items failed or documents were rejected");
        sm_http_client_free(c);
        return ex;
    }
    rc = rfs_coord_delete_index(&co, err, errlen);
    sm_http_client_free(c);
    if (rc == SM_ENOTFOUND) {
        err[0] = 0;
        fprintf(out, "%s: no such index (nothing to delete)\n", coord_index);
        return RFS_BACKFILL_EXIT_DONE;
    }
    if (rc)
        return RFS_BACKFILL_EXIT_FAILED;
    fprintf(out, "%s deleted\n", coord_index);
    return RFS_BACKFILL_EXIT_DONE;
}
