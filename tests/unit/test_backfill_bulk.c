/* Backfill bulk layer with synthetic documents: body layout (action line
 * with _index/_id/_type/routing, one-line source), refusal of non-object
 * sources, and rfs_bulk_send against the target stand-in: item-level 429s
 * retried (only those items re-sent), a mapping error written to the failures
 * file with the document and counted, whole-request 503s exhausting retries. */
#include "backfill/bulk.h"

#include "sm_test.h"

#include <sm/err.h>
#include <sm/http.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PY "/usr/bin/python3"

static pid_t pid_t_standin;
static int port;
static char port_file[64];

static void stop(void)
{
    if (pid_t_standin > 0) {
        kill(pid_t_standin, SIGTERM);
        waitpid(pid_t_standin, NULL, 0);
        pid_t_standin = 0;
    }
    if (port_file[0])
        unlink(port_file);
}

static int start(void)
{
    if (pid_t_standin)
        return 0;
    const char *script = sm_src_path("tests/standins/target/target_standin.py");
    if (access(PY, X_OK) || access(script, R_OK))
        SM_SKIP("needs %s and %s", PY, script);
    snprintf(port_file, sizeof(port_file), "/tmp/sm_bf_bulk_%d.port", (int)getpid());
    unlink(port_file);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        execl(PY, PY, script, "--port", "0", "--port-file", port_file, "--flavor", "opensearch-2.11", (char *)NULL);
        _exit(127);
    }
    pid_t_standin = pid;
    atexit(stop);
    for (int i = 0; i < 300; i++) {
        uint8_t *d;
        size_t n;
        if (!sm_read_file(port_file, 64, &d, &n)) {
            int64_t p = 0;
            while (n && d[n - 1] == '\n')
                d[--n] = 0;
            int rc = sm_parse_i64((char *)d, 1, 65535, &p);
            sm_free(d);
            if (!rc) {
                port = (int)p;
                return 0;
            }
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid_t_standin = 0;
            return 1;
        }
        sm_sleep_ms(100);
    }
    return 1;
}

static struct sm_http_client *client(int64_t retries)
{
    struct sm_http_opts o;
    sm_http_opts_init(&o);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    o.url = url;
    o.max_retries = retries;
    o.backoff_base_ms = 5;
    o.backoff_cap_ms = 20;
    char err[256];
    struct sm_http_client *c = sm_http_client_new(&o, "target", err, sizeof(err));
    o.url = NULL;
    sm_http_opts_free(&o);
    return c;
}

static void mkdoc(struct rfs_esdoc *d, const char *id, const char *routing, const char *src)
{
    memset(d, 0, sizeof(*d));
    d->id = id;
    d->id_len = strlen(id);
    d->routing = routing;
    d->routing_len = routing ? strlen(routing) : 0;
    d->source = (const uint8_t *)src;
    d->source_len = strlen(src);
    d->content_type = rfs_es_content_type(d->source, d->source_len);
}

static int test_bulk_body_layout(void)
{
    struct rfs_bulk_batch b;
    rfs_bulk_batch_init(&b);
    struct rfs_esdoc d;
    char err[256];
    struct rfs_bulk_doc_opts o = { .index = "idx\"1", .type = NULL };
    mkdoc(&d, "a/1", "r\\1", "{\"x\":\n1,\r\n\"y\":\"z\"}");
    SM_CHECK_EQ_INT(rfs_bulk_add(&b, &o, &d, err, sizeof(err)), SM_OK);
    o.type = "doc";
    mkdoc(&d, "2", NULL, "  {}");
    SM_CHECK_EQ_INT(rfs_bulk_add(&b, &o, &d, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(b.ndocs, 2);
    const char *want = "{\"index\":{\"_index\":\"idx\\\"1\",\"_id\":\"a/1\",\"routing\":\"r\\\\1\"}}\n"
                       "{\"x\": 1,  \"y\":\"z\"}\n"
                       "{\"index\":{\"_index\":\"idx\\\"1\",\"_id\":\"2\",\"_type\":\"doc\"}}\n"
                       "  {}\n";
    SM_CHECK_EQ_INT(b.body.len, strlen(want));
    SM_CHECK_MEM(b.body.data, want, b.body.len);
    /* Not an object: refused, batch unchanged. */
    size_t len = b.body.len;
    mkdoc(&d, "3", NULL, "[1,2]");
    SM_CHECK(rfs_bulk_add(&b, &o, &d, err, sizeof(err)) != SM_OK);
    SM_CHECK(strstr(err, "not supported") || strstr(err, "not a JSON object"));
    SM_CHECK_EQ_INT(b.body.len, len);
    SM_CHECK_EQ_INT(b.ndocs, 2);
    /* The usual documents (JSON without CR/LF, no _type, nothing to escape:
     * built with plain copies) next to ones that need escaping. */
    rfs_bulk_batch_reset(&b);
    o.index = "logs";
    o.type = NULL;
    mkdoc(&d, "p1", "rt", "{\"a\":1}");
    SM_CHECK_EQ_INT(rfs_bulk_add(&b, &o, &d, err, sizeof(err)), SM_OK);
    mkdoc(&d, "p2", NULL, " \t{\"b\":\"\\u00e9\"}");
    SM_CHECK_EQ_INT(rfs_bulk_add(&b, &o, &d, err, sizeof(err)), SM_OK);
    mkdoc(&d, "q\"3", NULL, "{}");
    SM_CHECK_EQ_INT(rfs_bulk_add(&b, &o, &d, err, sizeof(err)), SM_OK);
    mkdoc(&d, "p4", "r\tx", "{}");
    SM_CHECK_EQ_INT(rfs_bulk_add(&b, &o, &d, err, sizeof(err)), SM_OK);
    const char *want2 = "{\"index\":{\"_index\":\"logs\",\"_id\":\"p1\",\"routing\":\"rt\"}}\n{\"a\":1}\n"
                        "{\"index\":{\"_index\":\"logs\",\"_id\":\"p2\"}}\n \t{\"b\":\"\\u00e9\"}\n"
                        "{\"index\":{\"_index\":\"logs\",\"_id\":\"q\\\"3\"}}\n{}\n"
                        "{\"index\":{\"_index\":\"logs\",\"_id\":\"p4\",\"routing\":\"r\\tx\"}}\n{}\n";
    SM_CHECK_EQ_INT(b.body.len, strlen(want2));
    SM_CHECK_MEM(b.body.data, want2, b.body.len);
    SM_CHECK_EQ_INT(b.ndocs, 4);
    SM_CHECK_EQ_INT(b.offs[1], strlen("{\"index\":{\"_index\":\"logs\",\"_id\":\"p1\",\"routing\":\"rt\"}}\n{\"a\":1}\n"));
    SM_CHECK_EQ_INT(b.source_bytes, strlen("{\"a\":1}") + strlen(" \t{\"b\":\"\\u00e9\"}") + 2 + 2);
    rfs_bulk_batch_free(&b);
    return 0;
}

static int put_json(struct sm_http_client *c, const char *method, const char *path, const char *body)
{
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    char err[256];
    int rc = sm_http_request_json(c, method, path, j, NULL, NULL, err, sizeof(err));
    json_decref(j);
    if (rc)
        fprintf(stderr, "%s %s: %s\n", method, path, err);
    return rc;
}

static int test_bulk_send_items(void)
{
    SM_CHECK_EQ_INT(start(), 0);
    struct sm_http_client *c = client(2);
    SM_CHECK(c);
    SM_CHECK_EQ_INT(put_json(c, "PUT", "/items", "{\"mappings\":{\"properties\":{\"n\":{\"type\":\"long\"}}}}"), 0);
    SM_CHECK_EQ_INT(put_json(c, "PUT", "/_standin/faults",
                             "[{\"path\":\"*_bulk\",\"bulk_item_status\":429,\"item_count\":3}]"), 0);
    SM_CHECK_EQ_INT(put_json(c, "DELETE", "/_standin/stats", NULL), 0);
    struct rfs_bulk_batch b;
    rfs_bulk_batch_init(&b);
    struct rfs_bulk_doc_opts o = { .index = "items" };
    char ids[10][8], srcs[10][64], err[256];
    for (int i = 0; i < 10; i++) {
        struct rfs_esdoc d;
        snprintf(ids[i], sizeof(ids[i]), "d%d", i);
        if (i == 6)
            snprintf(srcs[i], sizeof(srcs[i]), "{\"n\":\"not-a-number\"}");
        else
            snprintf(srcs[i], sizeof(srcs[i]), "{\"n\":%d}", i);
        mkdoc(&d, ids[i], i == 2 ? "rt" : NULL, srcs[i]);
        SM_CHECK_EQ_INT(rfs_bulk_add(&b, &o, &d, err, sizeof(err)), SM_OK);
    }
    char fpath[64];
    snprintf(fpath, sizeof(fpath), "/tmp/sm_bf_fail_%d.ndjson", (int)getpid());
    struct rfs_bulk_failures fl = { .f = fopen(fpath, "w") };
    pthread_mutex_init(&fl.mu, NULL);
    SM_CHECK(fl.f);
    struct rfs_bulk_send_opts so = { .path = "/_bulk", .max_retries = 3, .backoff_base_ms = 5, .backoff_cap_ms = 20,
                                     .failures = &fl };
    rfs_bulk_send(c, &so, &b);
    fclose(fl.f);
    SM_CHECK_EQ_INT(b.rc, SM_OK);
    SM_CHECK_EQ_INT(b.acked, 9);
    SM_CHECK_EQ_INT(b.rejected, 1);
    SM_CHECK_EQ_INT(b.retried_items, 3);
    SM_CHECK_EQ_INT(b.requests, 2);
    SM_CHECK_EQ_INT(fl.written, 1);
    /* The failures file holds the document and the reason. */
    json_error_t je;
    json_t *rec = json_load_file(fpath, 0, &je);
    unlink(fpath);
    SM_CHECK(rec);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(rec, "id")), "d6");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(rec, "index")), "items");
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(rec, "status")), 400);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(rec, "error"), "type")),
                    "mapper_parsing_exception");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(rec, "source"), "n")), "not-a-number");
    json_decref(rec);
    /* The stand-in saw 10 + 3 items; the index holds the 9 accepted documents, d2 with its routing. */
    json_t *st = NULL, *cnt = NULL;
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/_standin/stats", NULL, &st, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(st, "bulk"), "items")), 13);
    json_decref(st);
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/items/_count", NULL, &cnt, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(cnt, "count")), 9);
    json_decref(cnt);
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/items/_doc/d2?routing=rt", NULL, &cnt, NULL, err, sizeof(err)),
                    SM_OK);
    SM_CHECK(json_is_true(json_object_get(cnt, "found")));
    json_decref(cnt);
    rfs_bulk_batch_free(&b);
    pthread_mutex_destroy(&fl.mu);
    sm_http_client_free(c);
    return 0;
}

static int test_bulk_send_unavailable(void)
{
    SM_CHECK_EQ_INT(start(), 0);
    struct sm_http_client *c = client(1);
    SM_CHECK(c);
    SM_CHECK_EQ_INT(put_json(c, "PUT", "/_standin/faults", "[{\"path\":\"*_bulk\",\"status\":503,\"count\":100}]"), 0);
    struct rfs_bulk_batch b;
    rfs_bulk_batch_init(&b);
    struct rfs_bulk_doc_opts o = { .index = "down" };
    struct rfs_esdoc d;
    char err[256];
    mkdoc(&d, "x", NULL, "{\"a\":1}");
    SM_CHECK_EQ_INT(rfs_bulk_add(&b, &o, &d, err, sizeof(err)), SM_OK);
    struct rfs_bulk_send_opts so = { .path = "/_bulk", .max_retries = 2, .backoff_base_ms = 5, .backoff_cap_ms = 10 };
    rfs_bulk_send(c, &so, &b);
    SM_CHECK_EQ_INT(b.rc, SM_EAGAIN);
    SM_CHECK(strstr(b.err, "503"));
    SM_CHECK_EQ_INT(b.acked, 0);
    SM_CHECK_EQ_INT(b.requests, 3);
    SM_CHECK_EQ_INT(put_json(c, "DELETE", "/_standin/faults", NULL), 0);
    rfs_bulk_batch_free(&b);
    sm_http_client_free(c);
    return 0;
}

/* The failures file on a full disk (RLIMIT_FSIZE stands in for one): a line
 * that cannot be written is counted unrecorded and cut off again, lines
 * before and after it are whole. */
static int test_failures_file_full(void)
{
    char path[] = "/tmp/sm_test_failuresXXXXXX";
    int fd = mkstemp(path);
    SM_CHECK(fd >= 0);
    close(fd);
    struct rfs_bulk_failures fl = { .f = fopen(path, "a") };
    SM_CHECK(fl.f != NULL);
    pthread_mutex_init(&fl.mu, NULL);
    static char big[20000];
    memset(big, 'x', sizeof(big) - 1);
    rfs_bulk_failures_put(&fl, "{\"id\":\"1\"}", 10);
    struct stat st;
    SM_CHECK_EQ_INT(stat(path, &st), 0);
    struct rlimit old, lim;
    SM_CHECK_EQ_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim.rlim_cur = (rlim_t)st.st_size + 5000;
    lim.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rfs_bulk_failures_put(&fl, big, strlen(big));   /* 20 KB: a part fits */
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    rfs_bulk_failures_put(&fl, "{\"id\":\"3\"}", 10);
    fclose(fl.f);
    pthread_mutex_destroy(&fl.mu);
    SM_CHECK_EQ_INT(fl.written, 2);
    SM_CHECK_EQ_INT(fl.unrecorded, 1);
    SM_CHECK_EQ_INT(fl.last_errno, EFBIG);
    uint8_t *data;
    size_t len;
    SM_CHECK_EQ_INT(sm_read_file(path, 1 << 20, &data, &len), SM_OK);
    SM_CHECK_EQ_INT(len, 22);
    SM_CHECK(!memcmp(data, "{\"id\":\"1\"}\n{\"id\":\"3\"}\n", 22));
    sm_free(data);
    unlink(path);
    return 0;
}

static const struct sm_test_case cases[] = {
    SM_TC(test_failures_file_full),
    SM_TC(test_bulk_body_layout), SM_TC(test_bulk_send_items), SM_TC(test_bulk_send_unavailable),
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    return sm_test_run(cases, SM_ARRAY_LEN(cases), argc, argv);
}
