/* Integration: the HTTP client against the target stand-in
 * (tests/standins/target/target_standin.py, opensearch-2.11 flavor, Basic
 * auth on) with faults injected through /_standin/faults: 429s on _bulk,
 * 503 with Retry-After, 502s until the retries run out, a dropped
 * connection. Bodies go gzip'd; the stand-in decodes them. Skips (77)
 * without /usr/bin/python3 or the stand-in. */
#define _GNU_SOURCE
#include <sm/err.h>
#include <sm/http.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sm_test.h"

#define PY "/usr/bin/python3"

static pid_t standin_pid;
static int standin_port;
static char port_file[64];

static void stop_standin(void)
{
    if (standin_pid > 0) {
        kill(standin_pid, SIGTERM);
        waitpid(standin_pid, NULL, 0);
        standin_pid = 0;
    }
    if (port_file[0])
        unlink(port_file);
}

static int start_standin(void)
{
    if (standin_pid)
        return 0;
    const char *script = sm_src_path("tests/standins/target/target_standin.py");
    if (access(PY, X_OK) || access(script, R_OK))
        SM_SKIP("needs %s and %s", PY, script);
    snprintf(port_file, sizeof(port_file), "/tmp/sm_http_standin_%d.port", (int)getpid());
    unlink(port_file);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        execl(PY, PY, script, "--port", "0", "--port-file", port_file, "--flavor", "opensearch-2.11",
              "--username", "admin", "--password", "pw-123", (char *)NULL);
        _exit(127);
    }
    standin_pid = pid;
    atexit(stop_standin);
    for (int i = 0; i < 300; i++) {      /* up to 30 s */
        uint8_t *d;
        size_t n;
        if (!sm_read_file(port_file, 64, &d, &n)) {
            int64_t port = 0;
            while (n && (d[n - 1] == '\n'))
                d[--n] = 0;
            int rc = sm_parse_i64((char *)d, 1, 65535, &port);
            sm_free(d);
            if (!rc) {
                standin_port = (int)port;
                return 0;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            standin_pid = 0;
            fprintf(stderr, "stand-in exited early\n");
            return 1;
        }
        sm_sleep_ms(100);
    }
    return 1;
}

struct tool_cfg { struct sm_http_opts target; };
static const struct sm_opt opts[] = {
    SM_HTTP_OPTS("target", "SM_TARGET", struct tool_cfg, target),
    SM_OPT_END
};

struct observed { unsigned n; long status[16]; uint64_t retry_after[16]; };

static void observe(void *arg, const struct sm_http_attempt *a)
{
    struct observed *o = arg;
    if (o->n < 16) {
        o->status[o->n] = a->status;
        o->retry_after[o->n] = a->retry_after_ms;
    }
    o->n++;
}

/* Client built from command-line flags, password from the environment. */
static struct sm_http_client *client(const char *extra_flag, const char *password)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", standin_port);
    char *argv[] = { "test", "--target", url, "--target-username", "admin", "--target-gzip",
                     "--target-backoff-base", "10ms", "--target-backoff-cap", "50ms",
                     (char *)(extra_flag ? extra_flag : "--target-max-retries=5"), NULL };
    struct tool_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sm_cli cli = { "test", NULL, NULL, opts, false };
    char err[256];
    setenv("SM_TARGET_PASSWORD", password, 1);
    int rc = sm_opts_parse(&cli, &cfg, (int)SM_ARRAY_LEN(argv) - 1, argv, NULL, err, sizeof(err));
    unsetenv("SM_TARGET_PASSWORD");
    struct sm_http_client *c = rc ? NULL : sm_http_client_new(&cfg.target, "target", err, sizeof(err));
    if (!c)
        fprintf(stderr, "client: %s\n", err);
    sm_opts_free(opts, &cfg);
    return c;
}

static int fault(struct sm_http_client *c, const char *method, const char *json)
{
    json_error_t je;
    json_t *body = json ? json_loads(json, 0, &je) : NULL;
    char err[256];
    int rc = sm_http_request_json(c, method, "/_standin/faults", body, NULL, NULL, err, sizeof(err));
    if (rc)
        fprintf(stderr, "fault: %s\n", err);
    json_decref(body);
    return rc;
}

static int test_auth(void)
{
    SM_CHECK_EQ_INT(start_standin(), 0);
    struct sm_http_client *c = client(NULL, "pw-123");
    SM_CHECK(c);
    json_t *out = NULL;
    char err[256];
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/", NULL, &out, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK(json_string_value(json_object_get(json_object_get(out, "version"), "number")) != NULL);
    json_decref(out);
    sm_http_client_free(c);

    c = client(NULL, "wrong");
    SM_CHECK(c);
    long status = 0;
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/", NULL, NULL, &status, err, sizeof(err)), SM_EPROTO);
    SM_CHECK_EQ_INT(status, 401);
    sm_http_client_free(c);
    return 0;
}

static int test_bulk_through_429s(void)
{
    SM_CHECK_EQ_INT(start_standin(), 0);
    struct sm_http_client *c = client(NULL, "pw-123");
    SM_CHECK(c);
    SM_CHECK_EQ_INT(fault(c, "PUT", "{\"status\":429,\"count\":2,\"path\":\"/_bulk\"}"), 0);
    struct observed ob = { 0 };
    sm_http_client_set_attempt_cb(c, observe, &ob);
    const char *bulk = "{\"index\":{\"_index\":\"mig\",\"_id\":\"1\"}}\n{\"n\":1}\n"
                       "{\"index\":{\"_index\":\"mig\",\"_id\":\"2\",\"routing\":\"r\"}}\n{\"n\":2}\n"
                       "{\"create\":{\"_index\":\"mig\",\"_id\":\"3\"}}\n{\"n\":3}\n";
    const char *hdrs[] = { "Content-Type: application/x-ndjson", NULL };
    struct sm_http_response r;
    char err[256];
    SM_CHECK_EQ_INT(sm_http_request(c, "POST", "/_bulk?refresh=true", hdrs, bulk, strlen(bulk), &r, err,
                                    sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK_EQ_INT(r.attempts, 3);
    json_error_t je;
    json_t *res = json_loadb((const char *)r.body.data, r.body.len, 0, &je);
    SM_CHECK(res && json_is_false(json_object_get(res, "errors")));
    SM_CHECK_EQ_INT(json_array_size(json_object_get(res, "items")), 3);
    json_decref(res);
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ob.n, 3);
    SM_CHECK(ob.status[0] == 429 && ob.status[1] == 429 && ob.status[2] == 200);

    json_t *out = NULL;
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/mig/_count", NULL, &out, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(out, "count")), 3);
    json_decref(out);
    SM_CHECK_EQ_INT(fault(c, "DELETE", NULL), 0);
    sm_http_client_free(c);
    return 0;
}

static int test_retry_after_and_exhaustion(void)
{
    SM_CHECK_EQ_INT(start_standin(), 0);
    struct sm_http_client *c = client("--target-max-retries=2", "pw-123");
    SM_CHECK(c);
    SM_CHECK_EQ_INT(fault(c, "PUT", "[{\"status\":503,\"count\":1,\"retry_after\":1,\"path\":\"/_cluster/health\"},"
                                    "{\"status\":502,\"count\":10,\"path\":\"/_cat/indices\"}]"), 0);
    struct observed ob = { 0 };
    sm_http_client_set_attempt_cb(c, observe, &ob);
    char err[256];
    long status;
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/_cluster/health", NULL, NULL, &status, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(ob.n, 2);
    SM_CHECK_EQ_INT(ob.status[0], 503);
    SM_CHECK_EQ_INT(ob.retry_after[0], 1000);
    ob.n = 0;
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/_cat/indices?format=json", NULL, NULL, &status, err,
                                         sizeof(err)), SM_EAGAIN);
    SM_CHECK_EQ_INT(status, 502);
    SM_CHECK_EQ_INT(ob.n, 3);                       /* 1 + max-retries */
    SM_CHECK(strstr(err, "GET http://127.0.0.1:") && strstr(err, "/_cat/indices?format=json: 502"));
    struct sm_http_stats st;
    sm_http_client_stats(c, &st);
    SM_CHECK_EQ_INT(st.failures, 1);
    SM_CHECK_EQ_INT(fault(c, "DELETE", NULL), 0);
    sm_http_client_free(c);
    return 0;
}

static int test_dropped_connection(void)
{
    SM_CHECK_EQ_INT(start_standin(), 0);
    struct sm_http_client *c = client(NULL, "pw-123");
    SM_CHECK(c);
    SM_CHECK_EQ_INT(fault(c, "PUT", "{\"drop\":true,\"count\":2,\"path\":\"/_bulk\"}"), 0);
    const char *bulk = "{\"index\":{\"_index\":\"drop\",\"_id\":\"a\"}}\n{\"x\":1}\n";
    const char *hdrs[] = { "Content-Type: application/x-ndjson", NULL };
    struct sm_http_response r;
    char err[256];
    SM_CHECK_EQ_INT(sm_http_request(c, "POST", "/_bulk?refresh=true", hdrs, bulk, strlen(bulk), &r, err,
                                    sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    sm_http_response_free(&r);
    json_t *out = NULL;
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/_standin/stats", NULL, &out, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(out, "dropped_connections")), 2);
    json_decref(out);
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/drop/_count", NULL, &out, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(out, "count")), 1);
    json_decref(out);
    SM_CHECK_EQ_INT(fault(c, "DELETE", NULL), 0);
    sm_http_client_free(c);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_auth), SM_TC(test_bulk_through_429s), SM_TC(test_retry_after_and_exhaustion),
             SM_TC(test_dropped_connection))
