/* The Prometheus metrics / health endpoint (common/src/metrics.c, shared by
 * searchmig-agent and searchmig-replay) served to a real loopback socket. */
#include <sm/buf.h>
#include <sm/err.h>
#include <sm/metrics.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sm_test.h"

static bool healthy = true;

static void render(void *arg, struct sm_buf *out)
{
    (void)arg;
    sm_metrics_put(out, "searchmig_agent_packets_total", "counter", "Packets captured.", 12345);
    sm_metrics_put_double(out, "searchmig_replay_lag_p99_seconds", "gauge", "Lag.", 0.0125);
}

static bool health(void *arg, char *why, size_t whylen)
{
    (void)arg;
    snprintf(why, whylen, "%s", healthy ? "ok" : "stopping");
    return healthy;
}

static bool is_ready = true;

static bool ready(void *arg, char *why, size_t whylen)
{
    (void)arg;
    snprintf(why, whylen, "%s", is_ready ? "ok" : "losing records: 3 lost");
    return is_ready;
}

static int get(uint16_t port, const char *req, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    send(fd, req, strlen(req), 0);
    size_t len = 0;
    ssize_t r;
    while (len < cap - 1 && (r = recv(fd, resp + len, cap - 1 - len, 0)) > 0)
        len += (size_t)r;
    resp[len] = 0;
    close(fd);
    return 0;
}

static int test_metrics_and_health(void)
{
    char err[256];
    healthy = true;
    struct sm_metrics *m = sm_metrics_start("127.0.0.1:0", render, health, ready, NULL, err, sizeof(err));
    if (!m)
        SM_SKIP("cannot listen on loopback: %s", err);
    uint16_t port = sm_metrics_port(m);
    SM_CHECK(port != 0);
    char resp[4096];
    SM_CHECK(get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
    SM_CHECK(strstr(resp, "text/plain; version=0.0.4") != NULL);
    SM_CHECK(strstr(resp, "# TYPE searchmig_agent_packets_total counter\nsearchmig_agent_packets_total 12345\n"));
    SM_CHECK(strstr(resp, "# TYPE searchmig_replay_lag_p99_seconds gauge\nsearchmig_replay_lag_p99_seconds 0.0125\n"));
    /* HEAD: the same head (Content-Length of the body), no body */
    const char *cl = strstr(resp, "Content-Length: ");
    SM_CHECK(cl != NULL);
    long body_len = strtol(cl + 16, NULL, 10);
    SM_CHECK_EQ_INT(strlen(strstr(resp, "\r\n\r\n") + 4), body_len);
    SM_CHECK(get(port, "HEAD /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
    cl = strstr(resp, "Content-Length: ");
    SM_CHECK(cl != NULL && strtol(cl + 16, NULL, 10) == body_len);
    SM_CHECK_EQ_STR(strstr(resp, "\r\n\r\n"), "\r\n\r\n");
    SM_CHECK(get(port, "GET /health HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK", 15) && strstr(resp, "\r\n\r\nok\n"));
    /* /ready has its own answer: not ready while still healthy */
    SM_CHECK(get(port, "GET /ready HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK", 15) && strstr(resp, "\r\n\r\nok\n"));
    is_ready = false;
    SM_CHECK(get(port, "GET /ready HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 503", 12) && strstr(resp, "\r\n\r\nlosing records: 3 lost\n"));
    SM_CHECK(get(port, "GET /health HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK", 15));
    is_ready = true;
    healthy = false;
    SM_CHECK(get(port, "GET /health HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 503", 12) && strstr(resp, "stopping"));
    SM_CHECK(get(port, "GET /nope HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 404", 12));
    SM_CHECK(get(port, "POST /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 405", 12));
    sm_metrics_stop(m);
    return 0;
}

static int test_no_health_callback(void)
{
    char err[256];
    struct sm_metrics *m = sm_metrics_start("127.0.0.1:0", render, NULL, NULL, NULL, err, sizeof(err));
    if (!m)
        SM_SKIP("cannot listen on loopback: %s", err);
    char resp[4096];
    SM_CHECK(get(sm_metrics_port(m), "GET /health HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK", 15) && strstr(resp, "\r\n\r\nok\n"));
    SM_CHECK(get(sm_metrics_port(m), "GET /ready HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK", 15) && strstr(resp, "\r\n\r\nok\n"));
    sm_metrics_stop(m);
    sm_metrics_stop(NULL);
    /* without a ready callback /ready answers as /health */
    healthy = false;
    m = sm_metrics_start("127.0.0.1:0", render, health, NULL, NULL, err, sizeof(err));
    SM_CHECK(m);
    SM_CHECK(get(sm_metrics_port(m), "GET /ready HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 503", 12) && strstr(resp, "stopping"));
    sm_metrics_stop(m);
    healthy = true;
    return 0;
}

/* A loss counter is "recent" for the window after the first call that sees
 * it grow, and not before any growth. */
static int test_recent_growth(void)
{
    struct sm_recent_growth g = { 0, 0 };
    const uint64_t w = 60;
    SM_CHECK(!sm_recent_growth(&g, 0, 1000, w));
    SM_CHECK(sm_recent_growth(&g, 2, 1010, w));
    SM_CHECK(sm_recent_growth(&g, 2, 1069, w));
    SM_CHECK(!sm_recent_growth(&g, 2, 1070, w));
    SM_CHECK(sm_recent_growth(&g, 3, 5000, w));
    SM_CHECK(!sm_recent_growth(&g, 3, 5060, w));
    return 0;
}

static int test_bad_listen(void)
{
    char err[256] = "";
    SM_CHECK(sm_metrics_start("nonsense", render, health, NULL, NULL, err, sizeof(err)) == NULL);
    SM_CHECK(strstr(err, "nonsense") != NULL);
    SM_CHECK(sm_metrics_start("127.0.0.1:", render, health, NULL, NULL, err, sizeof(err)) == NULL);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_metrics_and_health), SM_TC(test_no_health_callback), SM_TC(test_recent_growth),
             SM_TC(test_bad_listen))
