/* Benchmark: compare + report over generated tuples (default 120000), one
 * thread. Prints tuples/s for reading+parsing+comparing+aggregating and for
 * the whole run including the HTML and JSON output. Usage:
 *   bench_compare [N] [--keep DIR]
 * No timing assertion: the figure goes to docs/compare.md. */
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compare/compare.h"
#include "report/report.h"

#define HEADERS "\"content-type\":[\"application/json; charset=UTF-8\"],\"content-length\":[\"%d\"],"

static void write_tuple(FILE *f, unsigned i)
{
    char src[4096], tgt[4096], req[1024];
    int kind = (int)(i % 10);
    unsigned id = i * 2654435761u % 100000;
    int sms = 2 + (int)(i % 37), tms = 1 + (int)(i * 7 % 53);
    const char *method = "GET";
    char uri[256];
    if (kind < 5) {
        /* search: three hits, two tied; every 20th differs */
        snprintf(uri, sizeof(uri), "/logs-%u/_search", i % 7);
        method = "POST";
#define HIT "{\"_index\":\"logs-%u\",\"_type\":\"_doc\",\"_id\":\"%u\",\"_score\":%s," \
                          "\"_source\":{\"message\":\"GET /api/v1/items/%u HTTP/1.1\",\"status\":200,\"bytes\":%u," \
                          "\"@timestamp\":\"2024-03-01T12:%02u:00Z\",\"host\":\"web-%u\"}}"
        char h1[512], h2[512], h3[512];
        snprintf(h1, sizeof(h1), HIT, i % 7, id, "2.5", id, id * 3, id % 60, id % 9);
        snprintf(h2, sizeof(h2), HIT, i % 7, id + 1, "1.0", id + 1, id * 5, (id + 1) % 60, id % 5);
        snprintf(h3, sizeof(h3), HIT, i % 7, id + 2, "1.0", id + 2, id * 7, (id + 2) % 60, id % 3);
        snprintf(src, sizeof(src),
                 "{\"took\":%d,\"timed_out\":false,\"_shards\":{\"total\":5,\"successful\":5,\"skipped\":0,\"failed\":0},"
                 "\"hits\":{\"total\":%u,\"max_score\":2.5,\"hits\":[%s,%s,%s]}}", sms, 3 + id % 50, h1, h2, h3);
        snprintf(tgt, sizeof(tgt),
                 "{\"took\":%d,\"timed_out\":false,\"_shards\":{\"total\":1,\"successful\":1,\"skipped\":0,\"failed\":0},"
                 "\"hits\":{\"total\":{\"value\":%u,\"relation\":\"eq\"},\"max_score\":2.5,\"hits\":[%s,%s,%s]}}",
                 tms, 3 + id % 50 + (i % 20 == 0), h1, h3, h2);
        snprintf(req, sizeof(req), "{\"query\":{\"match\":{\"message\":\"items %u\"}},\"size\":3}", id);
    } else if (kind < 8) {
        snprintf(uri, sizeof(uri), "/logs-%u/_doc/%u", i % 7, id);
#define DOC "{\"_index\":\"logs-%u\",\"_type\":\"_doc\",\"_id\":\"%u\",\"_version\":%u,\"_seq_no\":%u," \
                          "\"_primary_term\":1,\"found\":true,\"_source\":{\"message\":\"hello %u\",\"n\":%u}}"
        snprintf(src, sizeof(src), DOC, i % 7, id, 1 + id % 3, id, id, id % 100);
        snprintf(tgt, sizeof(tgt), DOC, i % 7, id, 1u, id % 10, id, id % 100 + (i % 50 == 0));
        req[0] = 0;
    } else if (kind == 8) {
        snprintf(uri, sizeof(uri), "/_bulk");
        method = "POST";
#define ITEM "{\"index\":{\"_index\":\"logs-1\",\"_id\":\"%u\",\"_version\":1,\"result\":\"created\"," \
                           "\"_shards\":{\"total\":2,\"successful\":%d,\"failed\":0},\"_seq_no\":%u,\"_primary_term\":1," \
                           "\"status\":201}}"
        char a[512], b[512], c[512], d[512];
        snprintf(a, sizeof(a), ITEM, id, 2, id);
        snprintf(b, sizeof(b), ITEM, id + 1, 2, id + 1);
        snprintf(c, sizeof(c), ITEM, id, 1, id % 10);
        snprintf(d, sizeof(d), ITEM, id + 1, 1, id % 10 + 1);
        snprintf(src, sizeof(src), "{\"took\":%d,\"errors\":false,\"items\":[%s,%s]}", sms, a, b);
        snprintf(tgt, sizeof(tgt), "{\"took\":%d,\"errors\":false,\"items\":[%s,%s]}", tms, c, d);
        snprintf(req, sizeof(req), "{\"index\":{\"_index\":\"logs-1\",\"_id\":\"%u\"}},{\"m\":1},"
                 "{\"index\":{\"_index\":\"logs-1\",\"_id\":\"%u\"}},{\"m\":2}", id, id + 1);
    } else {
        snprintf(uri, sizeof(uri), "/_cluster/health");
        snprintf(src, sizeof(src), "{\"cluster_name\":\"prod\",\"status\":\"green\",\"timed_out\":false,"
                 "\"number_of_nodes\":3,\"number_of_data_nodes\":3,\"active_primary_shards\":35,\"active_shards\":70,"
                 "\"number_of_pending_tasks\":%u,\"task_max_waiting_in_queue_millis\":0}", id % 3);
        snprintf(tgt, sizeof(tgt), "%s", src);
        req[0] = 0;
    }
    fprintf(f, "{\"sourceRequest\":{\"Host\":[\"search:9200\"],\"Method\":\"%s\",\"Request-URI\":\"%s\","
               "\"HTTP-Version\":\"HTTP/1.1\",\"payload\":{", method, uri);
    if (kind == 8)
        fprintf(f, "\"inlinedJsonSequenceBodies\":[%s]", req);
    else if (req[0])
        fprintf(f, "\"inlinedJsonBody\":%s", req);
    fprintf(f, "}},\"sourceResponse\":{");
    fprintf(f, HEADERS, (int)strlen(src));
    fprintf(f, "\"HTTP-Version\":\"HTTP/1.1\",\"Status-Code\":200,\"Reason-Phrase\":\"OK\",\"response_time_ms\":%d,"
               "\"payload\":{\"inlinedJsonBody\":%s}},", sms, src);
    if (i % 500 == 7) {
        fprintf(f, "\"targetResponses\":[],\"connectionId\":\"c%u.%u\",\"numRequests\":3,\"numErrors\":1,"
                   "\"error\":\"timeout after 30000 ms\",\"replayedAtMs\":%llu}\n",
                i % 97, i, 1700000000000ull + i / 5);
        return;
    }
    fprintf(f, "\"targetResponses\":[{");
    fprintf(f, HEADERS, (int)strlen(tgt));
    fprintf(f, "\"HTTP-Version\":\"HTTP/1.1\",\"Status-Code\":%d,\"Reason-Phrase\":\"OK\",\"response_time_ms\":%d,"
               "\"payload\":{\"inlinedJsonBody\":%s}}],\"connectionId\":\"c%u.%u\",\"numRequests\":1,\"numErrors\":0,"
               "\"replayedAtMs\":%llu}\n", i % 333 == 5 ? 404 : 200, tms, tgt, i % 97, i, 1700000000000ull + i / 5);
}

/* CPU time of this (single-threaded) process: the rate on one core, not
 * disturbed by other processes sharing it */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct ctx {
    struct replay_cmp *cmp;
    struct replay_report *rep;
    uint64_t n;
};

static void on_tuple(void *arg, const struct jd_val *t)
{
    struct ctx *c = arg;
    json_t *cmp = NULL;
    replay_cmp_tuple_jd(c->cmp, t, &cmp);
    replay_report_add_jd(c->rep, t, cmp);
    json_decref(cmp);
    c->n++;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 120000;
    if (n < 1000)
        n = 1000;
    char dir[] = "/tmp/sm-bench-compareXXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256], html[256], js[256];
    snprintf(path, sizeof(path), "%s/tuples-000001.log", dir);
    snprintf(html, sizeof(html), "%s/report.html", dir);
    snprintf(js, sizeof(js), "%s/figures.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    for (unsigned i = 0; i < n; i++)
        write_tuple(f, i);
    long bytes = ftell(f);
    fclose(f);

    struct ctx c = { replay_cmp_new(), replay_report_new(), 0 };
    char err[256];
    uint64_t bad = 0, t0 = sm_now_ns(), c0 = cpu_ns();
    int rc = replay_report_read_tuples_jd(path, on_tuple, &c, &bad, err, sizeof(err));
    uint64_t t1 = sm_now_ns();
    json_t *fig = replay_report_figures(c.rep, 10, NULL);
    rc |= replay_report_write_html(fig, html, err, sizeof(err));
    rc |= json_dump_file(fig, js, JSON_INDENT(1)) ? SM_EIO : SM_OK;
    uint64_t t2 = sm_now_ns(), c2 = cpu_ns();
    const json_t *cls = json_object_get(fig, "classes");
    printf("bench_compare: %llu tuples (%.1f MB, %llu bad), classes same %lld status %lld body %lld target_error %lld\n",
           (unsigned long long)c.n, bytes / 1e6, (unsigned long long)bad,
           (long long)json_integer_value(json_object_get(cls, "same")),
           (long long)json_integer_value(json_object_get(cls, "status")),
           (long long)json_integer_value(json_object_get(cls, "body")),
           (long long)json_integer_value(json_object_get(cls, "target_error")));
    printf("bench_compare: read+parse+compare+aggregate %.3f s = %.0f tuples/s (%.1f MB/s)\n", (t1 - t0) / 1e9,
           c.n / ((t1 - t0) / 1e9), bytes / 1e6 / ((t1 - t0) / 1e9));
    printf("bench_compare: figures+HTML+JSON %.3f s; whole run %.0f tuples/s wall clock\n", (t2 - t1) / 1e9,
           c.n / ((t2 - t0) / 1e9));
    printf("bench_compare: whole run %.3f s CPU = %.0f tuples/s on one core (target >= 50000)\n", (c2 - c0) / 1e9,
           c.n / ((c2 - c0) / 1e9));
    json_decref(fig);
    replay_cmp_free(c.cmp);
    replay_report_free(c.rep);
    bool keep = argc > 2 && !strcmp(argv[2], "--keep");
    if (!keep) {
        unlink(path);
        unlink(html);
        unlink(js);
        rmdir(dir);
    } else {
        printf("bench_compare: kept %s\n", dir);
    }
    /* correctness guard, not timing: every tuple classified */
    if (rc || c.n != n || bad) {
        fprintf(stderr, "bench_compare: failed (%s)\n", rc ? err : "count mismatch");
        return 1;
    }
    return 0;
}
