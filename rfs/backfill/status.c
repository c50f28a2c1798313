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

#define STATUS_MAX_ITEMS 10000

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
    json_t *body = json_pack("{s{s{ss}}si}", "query", "term", "kind", "item", "size", STATUS_MAX_ITEMS);
    rc = rfs_coord_search(&co, body, &hits, err, errlen);
    json_decref(body);
    if (rc)
        goto out;
    uint64_t n = 0, ndone = 0, nleased = 0, navail = 0, nfailed = 0, acked = 0, rejected = 0, bytes = 0, est = 0,
             est_done = 0, takeovers = 0;
    int64_t first_start = 0, last_update = 0;
    size_t i;
    json_t *h;
    uint64_t now = sm_wall_ms();
    json_array_foreach(hits, i, h) {
        json_t *s = json_object_get(h, "_source");
        const char *state = json_string_value(json_object_get(s, "state"));
        n++;
        uint64_t e = (uint64_t)json_integer_value(json_object_get(s, "est_docs"));
        est += e;
        acked += (uint64_t)json_integer_value(json_object_get(s, "docs_acked"));
        rejected += (uint64_t)json_integer_value(json_object_get(s, "docs_rejected"));
        bytes += (uint64_t)json_integer_value(json_object_get(s, "bytes"));
        takeovers += (uint64_t)json_integer_value(json_object_get(s, "takeovers"));
        int64_t st = json_integer_value(json_object_get(s, "started_ms"));
        int64_t up = json_integer_value(json_object_get(s, "updated_ms"));
        if (st && (!first_start || st < first_start))
            first_start = st;
        if (st && up > last_update)
            last_update = up;
        if (!state)
            continue;
        if (!strcmp(state, "done")) {
            ndone++;
            est_done += e;
        } else if (!strcmp(state, "failed")) {
            nfailed++;
            est_done += e;
        } else if (!strcmp(state, "leased") &&
                   json_integer_value(json_object_get(s, "lease_expiry_ms")) > (json_int_t)now) {
            nleased++;
        } else {
            navail++;
        }
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
            json_t *s = json_object_get(h, "_source");
            const char *state = json_string_value(json_object_get(s, "state"));
            const char *e = json_string_value(json_object_get(s, "error"));
            if (state && !strcmp(state, "failed"))
                fprintf(out, "failed: %s: %s\n", json_string_value(json_object_get(h, "_id")), e ? e : "?");
        }
        fprintf(out, "state: %s\n", done ? "complete" : left ? "in progress" : nfailed ? "finished with failures"
                                                                          : "finished");
    }
    if (left)
        ex = RFS_BACKFILL_EXIT_MORE;
    else if (nfailed || rejected)
        ex = RFS_BACKFILL_EXIT_FAILED;
    else
        ex = RFS_BACKFILL_EXIT_DONE;
    (void)est_done;
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
