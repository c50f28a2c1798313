/* HTTP client against the in-test scripted server: keep-alive, methods,
 * retries (429, 503 + Retry-After, closed connections, timeouts, refused
 * connections, a server that refuses for a while after answering: the down
 * wait), gzip both ways, Basic auth from the shared flag table and
 * the environment, SigV4 verified server-side, JSON helper errors, caps and
 * option validation. */
#define _GNU_SOURCE
#include <sm/buf.h>
#include <sm/err.h>
#include <sm/http.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/sigv4.h>
#include <sm/util.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "sm_test.h"
#include "test_http_server.h"

static struct test_server *g_srv;

static struct test_server *server(void)
{
    if (!g_srv)
        g_srv = ts_start(NULL, NULL, NULL);
    return g_srv;
}
#define srv (server())

struct observed {
    unsigned n;
    struct sm_http_attempt a[16];
};

static void observe(void *arg, const struct sm_http_attempt *a)
{
    struct observed *o = arg;
    if (o->n < 16)
        o->a[o->n] = *a;
    o->n++;
}

static void base_opts(struct sm_http_opts *o, int port)
{
    char url[64];
    sm_http_opts_init(o);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    o->url = sm_strdup(url);
    o->backoff_base_ms = 5;
    o->backoff_cap_ms = 20;
    o->max_retries = 3;
    o->timeout_ms = 5000;
    o->down_wait_ms = 0;     /* on in the down-wait tests only: ports get reused */
}

static struct sm_http_client *client(struct sm_http_opts *o)
{
    char err[256] = "";
    struct sm_http_client *c = sm_http_client_new(o, "target", err, sizeof(err));
    if (!c)
        fprintf(stderr, "client: %s\n", err);
    sm_http_opts_free(o);
    return c;
}

static int test_get_keepalive_and_headers(void)
{
    static const struct ts_step steps[] = {
        { TS_RESPOND, 200, "X-Thing: hello world \r\n", "{\"a\":1}", 0, 0 },
        { TS_RESPOND, 201, NULL, "second", 0, 0 },
    };
    ts_script(srv, steps, 2);
    int conns0 = ts_connections(srv);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct sm_http_response r;
    char err[256], v[64];
    const char *hdrs[] = { "X-Custom: 1", NULL };
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/idx/_search?q=a", hdrs, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK_EQ_STR((char *)r.body.data, "{\"a\":1}");
    SM_CHECK_EQ_STR(sm_http_response_header(&r, "x-thing", v, sizeof(v)), "hello world");
    SM_CHECK(sm_http_response_header(&r, "X-Missing", v, sizeof(v)) == NULL);
    SM_CHECK_EQ_INT(r.attempts, 1);
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(sm_http_request(c, "PUT", "idx", NULL, "{}", 2, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 201);
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ts_count(srv), 2);
    SM_CHECK_EQ_INT(ts_connections(srv) - conns0, 1);   /* the connection was reused */
    struct ts_request q;
    SM_CHECK(ts_get(srv, 0, &q));
    SM_CHECK_EQ_STR(q.method, "GET");
    SM_CHECK_EQ_STR(q.target, "/idx/_search?q=a");
    SM_CHECK_EQ_STR(ts_header(&q, "X-Custom", v, sizeof(v)), "1");
    SM_CHECK(ts_header(&q, "User-Agent", v, sizeof(v)) && !strncmp(v, "searchmig/", 10));
    SM_CHECK(ts_get(srv, 1, &q));
    SM_CHECK_EQ_STR(q.method, "PUT");
    SM_CHECK_EQ_STR(q.target, "/idx");
    SM_CHECK_EQ_STR((char *)q.body, "{}");
    SM_CHECK_EQ_STR(ts_header(&q, "Content-Type", v, sizeof(v)), "application/json");
    struct sm_http_stats st;
    sm_http_client_stats(c, &st);
    SM_CHECK_EQ_INT(st.requests, 2);
    SM_CHECK_EQ_INT(st.attempts, 2);
    SM_CHECK_EQ_INT(st.retries, 0);
    SM_CHECK_EQ_INT(st.failures, 0);
    sm_http_client_free(c);
    return 0;
}

static int test_methods_and_prefix(void)
{
    ts_script(srv, NULL, 0);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/proxy/es/", ts_port(srv));
    sm_free(o.url);
    o.url = sm_strdup(url);
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    SM_CHECK_EQ_STR(sm_http_client_url(c) + strlen(sm_http_client_url(c)) - 9, "/proxy/es");
    static const char *const methods[] = { "HEAD", "DELETE", "POST", "GET", "PUT" };
    struct sm_http_response r;
    char err[256];
    for (size_t i = 0; i < SM_ARRAY_LEN(methods); i++) {
        SM_CHECK_EQ_INT(sm_http_request(c, methods[i], "/_refresh", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_INT(r.status, 200);
        if (!strcmp(methods[i], "HEAD"))
            SM_CHECK_EQ_INT(r.body.len, 0);
        sm_http_response_free(&r);
    }
    /* a GET with a body (as _search takes) stays a GET */
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/_search", NULL, "{\"size\":0}", 10, &r, err, sizeof(err)), SM_OK);
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ts_count(srv), 6);
    struct ts_request q;
    char v[32];
    for (size_t i = 0; i < SM_ARRAY_LEN(methods); i++) {
        SM_CHECK(ts_get(srv, i, &q));
        SM_CHECK_EQ_STR(q.method, methods[i]);
        SM_CHECK_EQ_STR(q.target, "/proxy/es/_refresh");
        SM_CHECK_EQ_INT(q.body_len, 0);
        if (!strcmp(methods[i], "POST") || !strcmp(methods[i], "PUT"))
            SM_CHECK_EQ_STR(ts_header(&q, "Content-Length", v, sizeof(v)), "0");
    }
    SM_CHECK(ts_get(srv, 5, &q));
    SM_CHECK_EQ_STR(q.method, "GET");
    SM_CHECK_EQ_STR((char *)q.body, "{\"size\":0}");
    sm_http_client_free(c);
    return 0;
}

static int test_retry_429_then_ok(void)
{
    static const struct ts_step steps[] = {
        { TS_RESPOND, 429, NULL, "{\"error\":\"busy\"}", 0, 0 },
        { TS_RESPOND, 429, NULL, "{\"error\":\"busy\"}", 0, 0 },
        { TS_RESPOND, 200, NULL, "{\"errors\":false}", 0, 0 },
    };
    ts_script(srv, steps, 3);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct observed ob = { 0 };
    sm_http_client_set_attempt_cb(c, observe, &ob);
    struct sm_http_response r;
    char err[256];
    const char *body = "{\"index\":{}}\n{}\n";
    const char *hdrs[] = { "Content-Type: application/x-ndjson", NULL };
    sm_log_debug_cur |= SM_DBG_HTTP;
    SM_CHECK_EQ_INT(sm_http_request(c, "POST", "/_bulk", hdrs, body, strlen(body), &r, err, sizeof(err)), SM_OK);
    sm_log_debug_cur &= ~(unsigned)SM_DBG_HTTP;
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK_EQ_INT(r.attempts, 3);
    SM_CHECK_EQ_STR((char *)r.body.data, "{\"errors\":false}");
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ob.n, 3);
    SM_CHECK_EQ_INT(ob.a[0].status, 429);
    SM_CHECK(ob.a[0].will_retry && ob.a[1].will_retry && !ob.a[2].will_retry);
    SM_CHECK_EQ_INT(ob.a[2].status, 200);
    /* capped exponential backoff with full jitter: 0..5 ms, then 0..10 ms */
    SM_CHECK(ob.a[0].delay_ms <= 5);
    SM_CHECK(ob.a[1].delay_ms <= 10);
    /* the same body was sent each time */
    SM_CHECK_EQ_INT(ts_count(srv), 3);
    for (size_t i = 0; i < 3; i++) {
        struct ts_request q;
        char v[64];
        SM_CHECK(ts_get(srv, i, &q));
        SM_CHECK_EQ_STR((char *)q.body, body);
        SM_CHECK_EQ_STR(ts_header(&q, "Content-Type", v, sizeof(v)), "application/x-ndjson");
    }
    struct sm_http_stats st;
    sm_http_client_stats(c, &st);
    SM_CHECK_EQ_INT(st.attempts, 3);
    SM_CHECK_EQ_INT(st.retries, 2);
    SM_CHECK_EQ_INT(st.failures, 0);
    sm_http_client_free(c);
    return 0;
}

static int test_backoff_is_capped(void)
{
    static const struct ts_step steps[] = {
        { TS_RESPOND, 502, NULL, "", 0, 0 }, { TS_RESPOND, 504, NULL, "", 0, 0 },
        { TS_RESPOND, 503, NULL, "", 0, 0 }, { TS_RESPOND, 502, NULL, "", 0, 0 },
        { TS_RESPOND, 503, NULL, "", 0, 0 }, { TS_RESPOND, 503, NULL, "", 0, 0 },
    };
    ts_script(srv, steps, 6);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    o.max_retries = 5;
    o.backoff_base_ms = 2;
    o.backoff_cap_ms = 6;
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct observed ob = { 0 };
    sm_http_client_set_attempt_cb(c, observe, &ob);
    struct sm_http_response r;
    char err[256];
    /* retries exhausted: still SM_OK with the last status */
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 503);
    SM_CHECK_EQ_INT(r.attempts, 6);
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ob.n, 6);
    for (unsigned i = 0; i < 5; i++)
        SM_CHECK(ob.a[i].will_retry && ob.a[i].delay_ms <= 6);
    SM_CHECK(!ob.a[5].will_retry);
    struct sm_http_stats st;
    sm_http_client_stats(c, &st);
    SM_CHECK_EQ_INT(st.retries, 5);
    SM_CHECK_EQ_INT(st.failures, 1);
    /* a 500 or 4xx is final at once */
    static const struct ts_step s2[] = { { TS_RESPOND, 500, NULL, "{}", 0, 0 } };
    ts_script(srv, s2, 1);
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 500);
    SM_CHECK_EQ_INT(r.attempts, 1);
    sm_http_response_free(&r);
    sm_http_client_free(c);
    return 0;
}

static int test_retry_after(void)
{
    static const struct ts_step steps[] = {
        { TS_RESPOND, 503, "Retry-After: 1\r\n", "{}", 0, 0 },
        { TS_RESPOND, 200, NULL, NULL, 0, 0 },
    };
    ts_script(srv, steps, 2);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct observed ob = { 0 };
    sm_http_client_set_attempt_cb(c, observe, &ob);
    struct sm_http_response r;
    char err[256];
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK_EQ_INT(r.attempts, 2);
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ob.n, 2);
    SM_CHECK_EQ_INT(ob.a[0].retry_after_ms, 1000);
    SM_CHECK(ob.a[0].delay_ms >= 1000);         /* Retry-After is a floor over the jitter */
    /* Retry-After as an HTTP date two seconds ahead */
    char when[96];
    time_t t = time(NULL) + 2;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    struct ts_step dated[] = { { TS_RESPOND, 429, when, "{}", 0, 0 }, { TS_RESPOND, 200, NULL, NULL, 0, 0 } };
    ts_script(srv, dated, 2);
    ob.n = 0;
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    sm_http_response_free(&r);
    SM_CHECK(ob.a[0].retry_after_ms >= 1000 && ob.a[0].retry_after_ms <= 2000);
    /* with retries disabled for the request the 503 comes back at once */
    ts_script(srv, steps, 2);
    struct sm_http_req req = { "GET", "/", NULL, NULL, 0, SM_HTTP_NO_RETRY, 0 };
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 503);
    SM_CHECK_EQ_INT(r.attempts, 1);
    sm_http_response_free(&r);
    sm_http_client_free(c);
    return 0;
}

static int test_closed_connection(void)
{
    static const struct ts_step steps[] = {
        { TS_CLOSE, 0, NULL, NULL, 0, 0 }, { TS_CLOSE, 0, NULL, NULL, 0, 0 }, { TS_RESPOND, 200, NULL, "done", 0, 0 },
    };
    ts_script(srv, steps, 3);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct observed ob = { 0 };
    sm_http_client_set_attempt_cb(c, observe, &ob);
    struct sm_http_response r;
    char err[256];
    SM_CHECK_EQ_INT(sm_http_request(c, "POST", "/_bulk", NULL, "x\n", 2, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK_EQ_INT(r.attempts, 3);
    SM_CHECK_EQ_STR((char *)r.body.data, "done");
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ob.a[0].err, SM_EIO);
    SM_CHECK(strstr(ob.a[0].error, "closed") != NULL);
    sm_http_client_free(c);

    /* no retry: the error is reported with method and URL */
    static const struct ts_step s2[] = { { TS_CLOSE, 0, NULL, NULL, 0, 0 } };
    ts_script(srv, s2, 1);
    base_opts(&o, ts_port(srv));
    c = client(&o);
    SM_CHECK(c);
    struct sm_http_req req = { "POST", "/_bulk", NULL, "x\n", 2, SM_HTTP_NO_RETRY, 0 };
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_EIO);
    SM_CHECK_EQ_INT(r.attempts, 1);
    SM_CHECK_EQ_INT(r.status, 0);
    sm_http_response_free(&r);
    char want[128];
    snprintf(want, sizeof(want), "POST http://127.0.0.1:%d/_bulk: connection closed", ts_port(srv));
    SM_CHECK(!strncmp(err, want, strlen(want)));
    SM_CHECK_EQ_INT(ts_count(srv), 1);
    sm_http_client_free(c);
    return 0;
}

static int test_timeout(void)
{
    static const struct ts_step steps[] = {
        { TS_DELAY, 200, NULL, "late", 0, 3000 }, { TS_RESPOND, 200, NULL, "fast", 0, 0 },
    };
    ts_script(srv, steps, 2);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    o.timeout_ms = 1000;
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct observed ob = { 0 };
    sm_http_client_set_attempt_cb(c, observe, &ob);
    struct sm_http_response r;
    char err[256];
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/slow", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR((char *)r.body.data, "fast");
    SM_CHECK_EQ_INT(r.attempts, 2);
    SM_CHECK_EQ_INT(ob.a[0].err, SM_ETIMEOUT);
    sm_http_response_free(&r);
    sm_http_client_free(c);

    ts_script(srv, steps, 1);
    base_opts(&o, ts_port(srv));
    o.timeout_ms = 1000;
    o.max_retries = 0;
    c = client(&o);
    SM_CHECK(c);
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/slow", NULL, NULL, 0, &r, err, sizeof(err)), SM_ETIMEOUT);
    SM_CHECK(strstr(err, "GET http://127.0.0.1:") && strstr(err, "/slow: ") && strstr(err, "timed out"));
    sm_http_response_free(&r);
    sm_http_client_free(c);
    return 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || getsockname(fd, (struct sockaddr *)&sa, &sl)) {
        close(fd);
        return -1;
    }
    close(fd);   /* nobody listens there now */
    return ntohs(sa.sin_port);
}

static int test_connection_refused(void)
{
    int port = free_port();
    SM_CHECK(port > 0);
    struct sm_http_opts o;
    base_opts(&o, port);
    o.max_retries = 4;
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct sm_http_response r;
    char err[256], want[128];
    SM_CHECK_EQ_INT(sm_http_request(c, "POST", "/_bulk", NULL, "{}", 2, &r, err, sizeof(err)), SM_EIO);
    sm_http_response_free(&r);
    snprintf(want, sizeof(want), "POST http://127.0.0.1:%d/_bulk: connection refused after 5 attempts", port);
    SM_CHECK_EQ_STR(err, want);
    struct sm_http_stats st;
    sm_http_client_stats(c, &st);
    SM_CHECK_EQ_INT(st.attempts, 5);
    SM_CHECK_EQ_INT(st.failures, 1);
    sm_http_client_free(c);
    return 0;
}

static int gunzip(const uint8_t *in, size_t n, char *out, size_t outlen, size_t *got)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return 1;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)outlen;
    int zr = inflate(&zs, Z_FINISH);
    *got = outlen - zs.avail_out;
    inflateEnd(&zs);
    return zr != Z_STREAM_END;
}

/* A server on a fixed port that answers one request per connection, closes
 * its listener for down_ms after each answer (connections refused, as from a
 * restarting node) and listens again on the same port. */
struct flappy {
    int port, answers;
    unsigned down_ms;
    pthread_t th;
};

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *flappy_main(void *arg)
{
    struct flappy *f = arg;
    for (int i = 0; i < f->answers; i++) {
        int lfd = listen_on(f->port);
        if (lfd < 0)
            return NULL;
        int c = accept(lfd, NULL, NULL);
        close(lfd);
        if (c < 0)
            return NULL;
        char buf[65536];
        size_t got = 0;
        for (;;) {       /* head, then Content-Length bytes of body */
            ssize_t n = recv(c, buf + got, sizeof(buf) - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = 0;
            char *end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "Content-Length:");
            if (end && (!cl || cl > end || got >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10)))
                break;
        }
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        ssize_t w = send(c, resp, sizeof(resp) - 1, MSG_NOSIGNAL);
        (void)w;
        close(c);
        sm_sleep_ms(f->down_ms);
    }
    return NULL;
}

static int test_down_wait(void)
{
    struct flappy f = { free_port(), 3, 700, 0 };
    SM_CHECK(f.port > 0);
    SM_CHECK(pthread_create(&f.th, NULL, flappy_main, &f) == 0);
    struct sm_http_opts o;
    base_opts(&o, f.port);
    o.max_retries = 2;              /* 3 attempts: ~30 ms, far less than the outage */
    o.down_wait_ms = 10000;
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct sm_http_response r;
    char err[256];
    /* the first request answered (the server is known to be up) */
    int rc = SM_EIO;
    for (int i = 0; i < 100 && rc != SM_OK; i++) {   /* (until the thread listens) */
        rc = sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err));
        sm_http_response_free(&r);
        if (rc)
            sm_sleep_ms(10);
    }
    SM_CHECK_EQ_INT(rc, SM_OK);
    /* refused for 700 ms: held past the 3 attempts until the server is back */
    uint64_t t0 = sm_now_ms();
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/x", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK(r.attempts > 3);
    SM_CHECK(sm_now_ms() - t0 >= 500);
    sm_http_response_free(&r);
    /* the same through the client's own connection (bulk bodies) */
    const char *hdrs[] = { "Content-Type: application/x-ndjson", NULL };
    struct sm_http_req req = { "POST", "/_bulk", hdrs, "{}\n", 3, SM_HTTP_DIRECT_BODY, 0 };
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK(r.attempts > 3);
    sm_http_response_free(&r);
    sm_http_client_free(c);
    pthread_join(f.th, NULL);

    /* down_wait 0: the outage costs the request after the normal retries */
    struct flappy g = { free_port(), 2, 700, 0 };
    SM_CHECK(g.port > 0);
    SM_CHECK(pthread_create(&g.th, NULL, flappy_main, &g) == 0);
    base_opts(&o, g.port);
    o.max_retries = 2;
    c = client(&o);
    SM_CHECK(c);
    rc = SM_EIO;
    for (int i = 0; i < 100 && rc != SM_OK; i++) {
        rc = sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err));
        sm_http_response_free(&r);
        if (rc)
            sm_sleep_ms(10);
    }
    SM_CHECK_EQ_INT(rc, SM_OK);
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/x", NULL, NULL, 0, &r, err, sizeof(err)), SM_EIO);
    SM_CHECK(strstr(err, "connection refused after 3 attempts"));
    sm_http_response_free(&r);
    sm_sleep_ms(800);
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/y", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    sm_http_response_free(&r);
    sm_http_client_free(c);
    pthread_join(g.th, NULL);
    return 0;
}

static int test_gzip_both_ways(void)
{
    /* a gzip response body the client must decode */
    const char *plain = "{\"took\":1,\"errors\":false,\"items\":[]}";
    uint8_t gz[256];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    SM_CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)plain;
    zs.avail_in = (uInt)strlen(plain);
    zs.next_out = gz;
    zs.avail_out = sizeof(gz);
    SM_CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t gzlen = sizeof(gz) - zs.avail_out;
    deflateEnd(&zs);
    struct ts_step steps[] = { { TS_RESPOND, 200, "Content-Encoding: gzip\r\n", (const char *)gz, gzlen, 0 } };
    ts_script(srv, steps, 1);

    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    o.gzip = true;
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    char body[4096];
    size_t bl = 0;
    while (bl < 3000)
        bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "{\"index\":{\"_id\":\"%zu\"}}\n{\"f\":1}\n", bl);
    struct sm_http_response r;
    char err[256], v[64];
    SM_CHECK_EQ_INT(sm_http_request(c, "POST", "/_bulk", NULL, body, bl, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK_EQ_STR((char *)r.body.data, plain);
    sm_http_response_free(&r);
    struct ts_request q;
    SM_CHECK(ts_get(srv, 0, &q));
    SM_CHECK_EQ_STR(ts_header(&q, "Content-Encoding", v, sizeof(v)), "gzip");
    SM_CHECK(ts_header(&q, "Accept-Encoding", v, sizeof(v)) && strstr(v, "gzip"));
    SM_CHECK(q.body_len < bl);
    char back[8192];
    size_t got;
    SM_CHECK_EQ_INT(gunzip(q.body, q.body_len, back, sizeof(back), &got), 0);
    SM_CHECK_EQ_INT(got, bl);
    SM_CHECK_MEM(back, body, bl);

    /* SM_HTTP_NO_GZIP sends this one plain */
    ts_script(srv, NULL, 0);
    struct sm_http_req req = { "POST", "/_bulk", NULL, body, bl, SM_HTTP_NO_GZIP, 0 };
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_OK);
    sm_http_response_free(&r);
    SM_CHECK(ts_get(srv, 0, &q));
    SM_CHECK(ts_header(&q, "Content-Encoding", v, sizeof(v)) == NULL);
    SM_CHECK_EQ_INT(q.body_len, bl);
    sm_http_client_free(c);
    return 0;
}

struct tool_cfg {
    struct sm_http_opts target;
    struct sm_http_opts source;
    char *other;
};

static const struct sm_opt tool_opts[] = {
    SM_HTTP_OPTS("target", "SM_TARGET", struct tool_cfg, target),
    SM_HTTP_OPTS("source", "SM_SOURCE", struct tool_cfg, source),
    { "other", SM_OPT_STR, offsetof(struct tool_cfg, other), NULL, "x", NULL, 0, NULL },
    SM_OPT_END
};

static int test_flags_and_basic_auth(void)
{
    ts_script(srv, NULL, 0);
    char url[64], pwfile[] = "/tmp/sm_http_pw_XXXXXX";
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ts_port(srv));
    int fd = mkstemp(pwfile);
    SM_CHECK(fd >= 0);
    SM_CHECK(write(fd, "filepass\n", 9) == 9);
    close(fd);
    char *argv[] = { "tool", "--target", url, "--target-username", "elastic", "--target-max-retries=2",
                     "--target-timeout", "2s", "--target-gzip", "--source", url, "--source-username", "ro",
                     "--source-password-file", pwfile, NULL };
    int argc = (int)SM_ARRAY_LEN(argv) - 1;
    setenv("SM_TARGET_PASSWORD", "s3cr:et", 1);
    struct tool_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sm_cli cli = { "tool", NULL, NULL, tool_opts, false };
    char err[256];
    SM_CHECK_EQ_INT(sm_opts_parse(&cli, &cfg, argc, argv, NULL, err, sizeof(err)), SM_OK);
    unsetenv("SM_TARGET_PASSWORD");
    SM_CHECK_EQ_INT(cfg.target.max_retries, 2);
    SM_CHECK_EQ_INT(cfg.target.timeout_ms, 2000);
    SM_CHECK_EQ_INT(cfg.target.connect_timeout_ms, 10000);   /* default from the table */
    SM_CHECK_EQ_INT(cfg.source.max_retries, 5);
    SM_CHECK(cfg.target.gzip && !cfg.source.gzip && !cfg.target.insecure);
    SM_CHECK_EQ_STR(cfg.target.password, "s3cr:et");

    struct sm_http_client *t = sm_http_client_new(&cfg.target, "target", err, sizeof(err));
    struct sm_http_client *s = sm_http_client_new(&cfg.source, "source", err, sizeof(err));
    sm_opts_free(tool_opts, &cfg);
    unlink(pwfile);
    SM_CHECK(t && s);
    struct sm_http_response r;
    SM_CHECK_EQ_INT(sm_http_request(t, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(sm_http_request(s, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    sm_http_response_free(&r);
    struct ts_request q;
    char v[128], b64[128], want[160];
    SM_CHECK(ts_get(srv, 0, &q));
    sm_base64_encode("elastic:s3cr:et", 15, b64);
    snprintf(want, sizeof(want), "Basic %s", b64);
    SM_CHECK_EQ_STR(ts_header(&q, "Authorization", v, sizeof(v)), want);
    SM_CHECK(ts_get(srv, 1, &q));
    sm_base64_encode("ro:filepass", 11, b64);
    snprintf(want, sizeof(want), "Basic %s", b64);
    SM_CHECK_EQ_STR(ts_header(&q, "Authorization", v, sizeof(v)), want);
    sm_http_client_free(t);
    sm_http_client_free(s);

    /* the help text shows the prefixed flags and the secret's variable */
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    sm_opts_help(&cli, f);
    fclose(f);
    SM_CHECK(strstr(buf, "--target-ca-cert FILE") && strstr(buf, "--source-insecure") &&
             strstr(buf, "(env SM_TARGET_PASSWORD)") && strstr(buf, "--target-aws-service SERVICE"));
    free(buf);
    return 0;
}

/* The server side of SigV4: recompute the signature from what arrived. */
static int test_sigv4_signed_requests(void)
{
    ts_script(srv, NULL, 0);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretkey/xyz", 1);
    setenv("AWS_SESSION_TOKEN", "sessiontoken==", 1);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    o.aws_region = sm_strdup("eu-west-3");
    o.aws_service = sm_strdup("es");
    o.gzip = true;
    struct sm_http_client *c = client(&o);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    SM_CHECK(c);
    struct sm_http_response r;
    char err[256];
    const char *body = "{\"query\":{\"match_all\":{}}}";
    const char *hdrs[] = { "X-Opaque-Id: t1", NULL };
    /* through curl, then on the client's raw connection (SM_HTTP_DIRECT_BODY): the same signature */
    for (unsigned flags = 0; flags <= SM_HTTP_DIRECT_BODY; flags += SM_HTTP_DIRECT_BODY) {
    ts_script(srv, NULL, 0);
    sm_log_debug_cur |= SM_DBG_HTTP;   /* exercises the redacted canonical-request log */
    struct sm_http_req hreq = { "POST", "/logs%2A/_search?size=0&q=a%20b", hdrs, body, strlen(body), flags, 0 };
    SM_CHECK_EQ_INT(sm_http_send(c, &hreq, &r, err, sizeof(err)), SM_OK);
    sm_log_debug_cur &= ~(unsigned)SM_DBG_HTTP;
    SM_CHECK_EQ_INT(r.status, 200);
    sm_http_response_free(&r);
    struct ts_request q;
    SM_CHECK(ts_get(srv, 0, &q));
    char auth[512], date[32], tok[64], host[64];
    SM_CHECK(ts_header(&q, "Authorization", auth, sizeof(auth)));
    SM_CHECK(ts_header(&q, "X-Amz-Date", date, sizeof(date)));
    SM_CHECK_EQ_STR(ts_header(&q, "X-Amz-Security-Token", tok, sizeof(tok)), "sessiontoken==");
    SM_CHECK(ts_header(&q, "Host", host, sizeof(host)));
    char scope[64];
    snprintf(scope, sizeof(scope), "Credential=AKIDTEST/%.8s/eu-west-3/es/aws4_request,", date);
    SM_CHECK(strstr(auth, scope) != NULL);
    SM_CHECK(strstr(auth, "SignedHeaders=content-encoding;content-type;host;x-amz-date;x-amz-security-token;x-opaque-id,"));

    /* re-sign the received request with the same clock and compare */
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    SM_CHECK(strptime(date, "%Y%m%dT%H%M%SZ", &tm) != NULL);
    char l1[96], l2[96], l3[96], l4[96], l5[96];
    char ce[32], ct[64], op[32];
    snprintf(l1, sizeof(l1), "Host: %s", host);
    snprintf(l2, sizeof(l2), "Content-Type: %s", ts_header(&q, "Content-Type", ct, sizeof(ct)));
    snprintf(l3, sizeof(l3), "Content-Encoding: %s", ts_header(&q, "Content-Encoding", ce, sizeof(ce)));
    snprintf(l4, sizeof(l4), "X-Opaque-Id: %s", ts_header(&q, "X-Opaque-Id", op, sizeof(op)));
    snprintf(l5, sizeof(l5), "x-amz-security-token: %s", tok);
    const char *lines[] = { l1, l2, l3, l4, l5, NULL };
    struct sm_aws_creds creds = { (char *)"AKIDTEST", (char *)"secretkey/xyz", (char *)"sessiontoken==" };
    struct sm_sigv4_cfg cfg = { "eu-west-3", "es", &creds, 0 };
    char *qm = strchr(q.target, '?');
    SM_CHECK(qm);
    *qm = 0;
    struct sm_sigv4_req sreq = { q.method, q.target, qm + 1, lines, q.body, q.body_len, NULL, (int64_t)timegm(&tm) };
    struct sm_sigv4_result res;
    SM_CHECK_EQ_INT(sm_sigv4_sign(&cfg, &sreq, &res, err, sizeof(err)), SM_OK);
    *qm = '?';
    SM_CHECK_EQ_STR(auth, res.authorization);
    /* the path was sent as given and signed double-encoded; the body hash is of the gzip bytes */
    SM_CHECK(strstr(res.canonical_request, "POST\n/logs%252A/_search\nq=a%20b&size=0\n") == res.canonical_request);
    sm_sigv4_result_free(&res);
    }
    sm_http_client_free(c);

    /* no credentials anywhere: a clear configuration error */
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    base_opts(&o, ts_port(srv));
    o.aws_service = sm_strdup("aoss");
    o.aws_region = sm_strdup("us-east-1");
    c = sm_http_client_new(&o, "target", err, sizeof(err));
    sm_http_opts_free(&o);
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    SM_CHECK(c == NULL);
    SM_CHECK(strstr(err, "target: no AWS credentials") == err);
    return 0;
}

/* A one-connection raw server: reads one request (head + Content-Length
 * body) and writes a fixed response, then closes. */
struct raw_srv {
    int lfd, port;
    const char *response;
    pthread_t t;
};

static void *raw_main(void *arg)
{
    struct raw_srv *rs = arg;
    int fd = accept(rs->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[8192];
    size_t n = 0;
    char *e = NULL;
    while (!e && n < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = 0;
        e = strstr(buf, "\r\n\r\n");
    }
    const char *cl = e ? strcasestr(buf, "\r\nContent-Length:") : NULL;
    size_t want = cl ? strtoull(cl + 17, NULL, 10) : 0, have = e ? n - (size_t)(e + 4 - buf) : 0;
    while (have < want) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    /* in small pieces, so that the client parses lines split across reads */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t off = 0, len = strlen(rs->response); off < len; off += 16) {
        if (write(fd, rs->response + off, SM_MIN(len - off, (size_t)16)) < 0)
            perror("write");
        usleep(1000);
    }
    close(fd);
    return NULL;
}

static int raw_start(struct raw_srv *rs, const char *response)
{
    rs->response = response;
    rs->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (rs->lfd < 0 || bind(rs->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(rs->lfd, 4) ||
        getsockname(rs->lfd, (struct sockaddr *)&sa, &sl))
        return -1;
    rs->port = ntohs(sa.sin_port);
    return pthread_create(&rs->t, NULL, raw_main, rs) ? -1 : 0;
}

static void raw_stop(struct raw_srv *rs)
{
    pthread_join(rs->t, NULL);
    close(rs->lfd);
}

/* SM_HTTP_DIRECT_BODY: the body goes out from the caller's buffer on the
 * client's own connection, with the same headers, auth and retries. */
static int test_direct_body(void)
{
    static const struct ts_step steps[] = {
        { TS_RESPOND, 429, NULL, "{\"error\":\"busy\"}", 0, 0 },
        { TS_RESPOND, 200, "X-Thing: yes\r\n", "{\"errors\":false}", 0, 0 },
        { TS_RESPOND, 200, NULL, "get", 0, 0 },
        { TS_RESPOND, 201, NULL, "again", 0, 0 },
    };
    ts_script(srv, steps, 4);
    int conns0 = ts_connections(srv);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    o.username = sm_strdup("elastic");
    o.password = sm_strdup("pw");
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct observed ob = { 0 };
    sm_http_client_set_attempt_cb(c, observe, &ob);
    size_t blen = 3u << 20;
    char *body = sm_malloc(blen);
    SM_CHECK(body);
    for (size_t i = 0; i < blen; i++)
        body[i] = (char)('a' + i % 26);
    const char *hdrs[] = { "Content-Type: application/x-ndjson", "Expect:", NULL };
    struct sm_http_req req = { "POST", "/_bulk?refresh=false", hdrs, body, blen, SM_HTTP_DIRECT_BODY, 0 };
    struct sm_http_response r;
    char err[256], v[128];
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK_EQ_INT(r.attempts, 2);
    SM_CHECK_EQ_STR((char *)r.body.data, "{\"errors\":false}");
    SM_CHECK_EQ_STR(sm_http_response_header(&r, "X-Thing", v, sizeof(v)), "yes");
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ob.n, 2);
    SM_CHECK_EQ_INT(ob.a[0].status, 429);
    SM_CHECK(ob.a[0].will_retry);
    /* a request through curl in between, then the raw connection again */
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR((char *)r.body.data, "get");
    sm_http_response_free(&r);
    req.body_len = 10;
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 201);
    SM_CHECK_EQ_STR((char *)r.body.data, "again");
    sm_http_response_free(&r);
    SM_CHECK_EQ_INT(ts_count(srv), 4);
    SM_CHECK_EQ_INT(ts_connections(srv) - conns0, 2);    /* one raw (kept alive after the 429), one curl */
    for (size_t i = 0; i < 4; i++) {
        if (i == 2)
            continue;
        struct ts_request q;
        SM_CHECK(ts_get(srv, i, &q));
        SM_CHECK_EQ_STR(q.method, "POST");
        SM_CHECK_EQ_STR(q.target, "/_bulk?refresh=false");
        SM_CHECK_EQ_INT(q.body_len, i < 2 ? blen : 10);
        SM_CHECK(!memcmp(q.body, body, q.body_len));
        SM_CHECK_EQ_STR(ts_header(&q, "Content-Type", v, sizeof(v)), "application/x-ndjson");
        SM_CHECK_EQ_STR(ts_header(&q, "Authorization", v, sizeof(v)), "Basic ZWxhc3RpYzpwdw==");
        SM_CHECK(ts_header(&q, "User-Agent", v, sizeof(v)) && !strncmp(v, "searchmig/", 10));
        SM_CHECK_EQ_STR(ts_header(&q, "Host", v, sizeof(v)), sm_http_client_url(c) + strlen("http://"));
        SM_CHECK(ts_header(&q, "Expect", v, sizeof(v)) == NULL);
        SM_CHECK(ts_header(&q, "Accept-Encoding", v, sizeof(v)) == NULL);
    }
    struct sm_http_stats st;
    sm_http_client_stats(c, &st);
    SM_CHECK_EQ_INT(st.requests, 3);
    SM_CHECK_EQ_INT(st.attempts, 4);
    SM_CHECK_EQ_INT(st.retries, 1);
    sm_http_client_free(c);

    /* closed connections are retried; then a timeout (not retried: max_retries 0) */
    static const struct ts_step s2[] = {
        { TS_CLOSE, 0, NULL, NULL, 0, 0 }, { TS_RESPOND, 200, NULL, "done", 0, 0 },
        { TS_DELAY, 200, NULL, "late", 0, 3000 },
    };
    ts_script(srv, s2, 3);
    base_opts(&o, ts_port(srv));
    o.timeout_ms = 1000;
    c = client(&o);
    SM_CHECK(c);
    ob.n = 0;
    sm_http_client_set_attempt_cb(c, observe, &ob);
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR((char *)r.body.data, "done");
    SM_CHECK_EQ_INT(r.attempts, 2);
    SM_CHECK_EQ_INT(ob.a[0].err, SM_EIO);
    SM_CHECK(strstr(ob.a[0].error, "connection closed without a response") != NULL);
    sm_http_response_free(&r);
    req.flags |= SM_HTTP_NO_RETRY;
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_ETIMEOUT);
    SM_CHECK(strstr(err, "POST http://127.0.0.1:") && strstr(err, "/_bulk?refresh=false: timed out"));
    SM_CHECK_EQ_INT(r.status, 0);
    sm_http_response_free(&r);
    sm_http_client_free(c);

    /* response framings the test server does not produce: chunked, until close,
     * interim 100 responses; bodies over the cap, cut short, bad answers */
    char big[1200];
    int bl = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n");
    memset(big + bl, 'x', 1001);
    strcpy(big + bl + 1001, "\r\n0\r\n\r\n");
    const struct {
        const char *resp, *body;
        int rc;
        const char *what, *val;          /* a header and its value, or a piece of the error */
    } raw[] = {
        { "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n", "hello world", SM_OK,
          "Transfer-Encoding", "chunked" },
        { "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-Long-Header-Name: a value longer than 16 bytes\r\n\r\n"
          "until close", "until close", SM_OK, "X-Long-Header-Name", "a value longer than 16 bytes" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", NULL, SM_EFULL, "over the 1000 byte cap", NULL },
        { big, NULL, SM_EFULL, "over the 1000 byte cap", NULL },
        { "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nxx", NULL, SM_EPROTO,
          "unexpected Content-Encoding gzip", NULL },
        { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", NULL, SM_EIO, "closed in the response body", NULL },
        { "HTTP/1.1 200 OK\r\nContent-Le", NULL, SM_EIO, "closed in the response headers", NULL },
        { "SMTP ready\r\n\r\n", NULL, SM_EPROTO, "malformed response", NULL },
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(raw); i++) {
        struct raw_srv rs;
        SM_CHECK_EQ_INT(raw_start(&rs, raw[i].resp), 0);
        base_opts(&o, rs.port);
        o.max_response = 1000;
        c = client(&o);
        SM_CHECK(c);
        SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), raw[i].rc);
        if (raw[i].body) {
            SM_CHECK_EQ_INT(r.status, 200);
            SM_CHECK_EQ_STR((char *)r.body.data, raw[i].body);
            SM_CHECK_EQ_STR(sm_http_response_header(&r, raw[i].what, v, sizeof(v)), raw[i].val);
            SM_CHECK(sm_http_response_header(&r, "X-Interim", v, sizeof(v)) == NULL);
        } else {
            SM_CHECK(strstr(err, raw[i].what) != NULL);
            fprintf(stderr, "expected failure: %s\n", err);
        }
        sm_http_response_free(&r);
        sm_http_client_free(c);
        raw_stop(&rs);
    }
    sm_free(body);
    return 0;
}

static int test_json_helper(void)
{
    static const struct ts_step steps[] = {
        { TS_RESPOND, 200, NULL, "{\"acknowledged\":true}", 0, 0 },
        { TS_RESPOND, 404, NULL, "{\"error\":{\"root_cause\":[{\"type\":\"index_not_found_exception\",\"reason\":\"no such index [x]\"}],"
                                 "\"type\":\"index_not_found_exception\",\"reason\":\"no such index [x]\"},\"status\":404}", 0, 0 },
        { TS_RESPOND, 409, NULL, "{\"error\":{\"type\":\"version_conflict_engine_exception\",\"reason\":\"[w1]: version conflict\"},\"status\":409}", 0, 0 },
        { TS_RESPOND, 400, NULL, "not json at all", 0, 0 },
        { TS_RESPOND, 200, NULL, "<html>", 0, 0 },
    };
    ts_script(srv, steps, 5);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    json_t *body = json_pack("{s:{s:i}}", "settings", "number_of_shards", 1), *out;
    long status;
    char err[256];
    SM_CHECK_EQ_INT(sm_http_request_json(c, "PUT", "/idx", body, &out, &status, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(status, 200);
    SM_CHECK(json_is_true(json_object_get(out, "acknowledged")));
    json_decref(out);
    struct ts_request q;
    SM_CHECK(ts_get(srv, 0, &q));
    SM_CHECK_EQ_STR((char *)q.body, "{\"settings\":{\"number_of_shards\":1}}");
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/x", NULL, &out, &status, err, sizeof(err)), SM_ENOTFOUND);
    SM_CHECK_EQ_INT(status, 404);
    SM_CHECK(out != NULL);
    json_decref(out);
    SM_CHECK(strstr(err, "GET http://127.0.0.1:") && strstr(err, "/x: 404 index_not_found_exception: no such index [x]"));
    SM_CHECK_EQ_INT(sm_http_request_json(c, "PUT", "/w/_doc/1?if_seq_no=1&if_primary_term=1", body, NULL, &status,
                                         err, sizeof(err)), SM_ECONFLICT);
    SM_CHECK(strstr(err, "409 version_conflict_engine_exception: [w1]: version conflict"));
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/y", NULL, &out, NULL, err, sizeof(err)), SM_EPROTO);
    SM_CHECK(out == NULL && strstr(err, "400 not json at all"));
    SM_CHECK_EQ_INT(sm_http_request_json(c, "GET", "/z", NULL, &out, NULL, err, sizeof(err)), SM_EPROTO);
    SM_CHECK(strstr(err, "not JSON"));
    json_decref(body);
    sm_http_client_free(c);
    return 0;
}

static int test_response_cap(void)
{
    static char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    struct ts_step steps[] = { { TS_RESPOND, 200, NULL, big, 0, 0 }, { TS_RESPOND, 200, NULL, big, 0, 0 } };
    ts_script(srv, steps, 2);
    struct sm_http_opts o;
    base_opts(&o, ts_port(srv));
    o.max_response = 1000;
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    struct sm_http_response r;
    char err[256];
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/big", NULL, NULL, 0, &r, err, sizeof(err)), SM_EFULL);
    SM_CHECK_EQ_INT(r.attempts, 1);   /* not retried */
    SM_CHECK(strstr(err, "1000 byte cap"));
    sm_http_response_free(&r);
    struct sm_http_req req = { "GET", "/big", NULL, NULL, 0, 0, 10000 };   /* per-request cap */
    SM_CHECK_EQ_INT(sm_http_send(c, &req, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.body.len, sizeof(big) - 1);
    sm_http_response_free(&r);
    sm_http_client_free(c);
    return 0;
}

static int expect_config_error(struct sm_http_opts *o, const char *needle)
{
    char err[256] = "";
    struct sm_http_client *c = sm_http_client_new(o, "target", err, sizeof(err));
    sm_http_opts_free(o);
    if (c || !strstr(err, needle)) {
        fprintf(stderr, "expected error containing '%s', got '%s'\n", needle, err);
        sm_http_client_free(c);
        return 1;
    }
    return 0;
}

static int test_option_errors(void)
{
    struct sm_http_opts o;
    sm_http_opts_init(&o);
    SM_CHECK_EQ_INT(expect_config_error(&o, "target: no URL (--target URL)"), 0);
    sm_http_opts_init(&o);
    o.url = sm_strdup("ftp://h/x");
    SM_CHECK_EQ_INT(expect_config_error(&o, "scheme 'ftp' is not http or https"), 0);
    base_opts(&o, 9200);
    o.ca_cert = sm_strdup("/nonexistent/ca.pem");
    SM_CHECK_EQ_INT(expect_config_error(&o, "--target-ca-cert /nonexistent/ca.pem: No such file"), 0);
    base_opts(&o, 9200);
    o.username = sm_strdup("u");
    SM_CHECK_EQ_INT(expect_config_error(&o, "--target-username needs a password"), 0);
    base_opts(&o, 9200);
    o.username = sm_strdup("u");
    o.password = sm_strdup("p");
    o.aws_service = sm_strdup("es");
    SM_CHECK_EQ_INT(expect_config_error(&o, "not both"), 0);
    base_opts(&o, 9200);
    o.aws_service = sm_strdup("ec2");
    o.aws_region = sm_strdup("us-east-1");
    SM_CHECK_EQ_INT(expect_config_error(&o, "'ec2' is not es, aoss or s3"), 0);
    base_opts(&o, 9200);
    o.username = sm_strdup("u");
    o.password = sm_strdup("@/nonexistent/pw");
    SM_CHECK_EQ_INT(expect_config_error(&o, "--target-password: secret file /nonexistent/pw"), 0);
    /* credentials in the URL are used and kept out of messages */
    base_opts(&o, ts_port(srv));
    char url[96];
    snprintf(url, sizeof(url), "http://admin:pw@127.0.0.1:%d", ts_port(srv));
    sm_free(o.url);
    o.url = sm_strdup(url);
    struct sm_http_client *c = client(&o);
    SM_CHECK(c);
    SM_CHECK(strstr(sm_http_client_url(c), "pw@") == NULL);
    ts_script(srv, NULL, 0);
    struct sm_http_response r;
    char err[256], v[64];
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    sm_http_response_free(&r);
    struct ts_request q;
    SM_CHECK(ts_get(srv, 0, &q));
    SM_CHECK_EQ_STR(ts_header(&q, "Authorization", v, sizeof(v)), "Basic YWRtaW46cHc=");
    sm_http_client_free(c);
    return 0;
}

/* Allocation failures in client setup and sending give errors, not crashes. */
static int test_alloc_failures(void)
{
    ts_script(srv, NULL, 0);
    setenv("AWS_ACCESS_KEY_ID", "AK", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
    int ok = 0;
    for (long n = 0; n < 300 && !ok; n++) {
        struct sm_http_opts o;
        base_opts(&o, ts_port(srv));
        o.aws_region = sm_strdup("us-east-1");
        o.gzip = true;
        char err[256];
        sm_mem_fail_after(n);
        struct sm_http_client *c = sm_http_client_new(&o, "target", err, sizeof(err));
        struct sm_http_response r;
        int rc = c ? sm_http_request(c, "POST", "/a", NULL, "{}", 2, &r, err, sizeof(err)) : SM_ENOMEM;
        sm_mem_fail_after(-1);
        if (c)
            sm_http_response_free(&r);
        sm_http_client_free(c);
        sm_http_opts_free(&o);
        if (rc == SM_OK)
            ok = 1;
        else
            if (!(rc == SM_ENOMEM || rc == SM_ECONFIG || rc == SM_EFULL)) {
                fprintf(stderr, "n=%ld rc=%d err=%s\n", n, rc, err);
                return 1;
            }
    }
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    SM_CHECK(ok);
    return 0;
}

static int test_setup(void)
{
    SM_CHECK(srv != NULL);
    return 0;
}

static int test_teardown(void)
{
    ts_stop(g_srv);
    g_srv = NULL;
    return 0;
}

SM_TEST_MAIN(SM_TC(test_setup), SM_TC(test_get_keepalive_and_headers), SM_TC(test_methods_and_prefix),
             SM_TC(test_retry_429_then_ok), SM_TC(test_backoff_is_capped), SM_TC(test_retry_after),
             SM_TC(test_closed_connection), SM_TC(test_timeout), SM_TC(test_connection_refused), SM_TC(test_down_wait),
             SM_TC(test_gzip_both_ways), SM_TC(test_flags_and_basic_auth), SM_TC(test_sigv4_signed_requests),
             SM_TC(test_direct_body), SM_TC(test_json_helper), SM_TC(test_response_cap), SM_TC(test_option_errors), SM_TC(test_alloc_failures),
             SM_TC(test_teardown))
