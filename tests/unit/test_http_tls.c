/* HTTP client over TLS against the in-test server with certificates made by
 * `openssl req` at test time: verification is on by default (a self-signed
 * server fails), --ca-cert makes it pass, --insecure skips it, and client
 * certificates are presented when the server asks. Skips (77) without the
 * openssl command. */
#define _GNU_SOURCE
#include <sm/err.h>
#include <sm/http.h>
#include <sm/mem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sm_test.h"
#include "test_http_server.h"

static char dir[64];
static char srv_crt[128], srv_key[128], cli_crt[128], cli_key[128];

static int make_cert(const char *crt, const char *key, const char *cn, const char *san)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-keyout %s -out %s -subj /CN=%s %s%s >/dev/null 2>&1",
             key, crt, cn, san ? "-addext subjectAltName=" : "", san ? san : "");
    return system(cmd);
}

static int setup(void)
{
    if (dir[0])
        return 0;
    if (system("openssl version >/dev/null 2>&1") != 0)
        SM_SKIP("no openssl command to make test certificates");
    snprintf(dir, sizeof(dir), "/tmp/sm_http_tls_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(srv_crt, sizeof(srv_crt), "%s/server.crt", dir);
    snprintf(srv_key, sizeof(srv_key), "%s/server.key", dir);
    snprintf(cli_crt, sizeof(cli_crt), "%s/client.crt", dir);
    snprintf(cli_key, sizeof(cli_key), "%s/client.key", dir);
    if (make_cert(srv_crt, srv_key, "127.0.0.1", "IP:127.0.0.1,DNS:localhost") ||
        make_cert(cli_crt, cli_key, "searchmig-test-client", NULL))
        return 1;
    return 0;
}

static struct sm_http_client *client(int port, const char *ca, bool insecure, bool with_cert, char *err,
                                     size_t errlen)
{
    struct sm_http_opts o;
    char url[64];
    sm_http_opts_init(&o);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
    o.url = sm_strdup(url);
    o.max_retries = 0;
    o.timeout_ms = 5000;
    o.ca_cert = ca ? sm_strdup(ca) : NULL;
    o.insecure = insecure;
    if (with_cert) {
        o.client_cert = sm_strdup(cli_crt);
        o.client_key = sm_strdup(cli_key);
    }
    struct sm_http_client *c = sm_http_client_new(&o, "target", err, errlen);
    sm_http_opts_free(&o);
    return c;
}

static int test_verification(void)
{
    SM_CHECK_EQ_INT(setup(), 0);
    struct test_server *ts = ts_start(srv_crt, srv_key, NULL);
    SM_CHECK(ts);
    char err[512];
    struct sm_http_response r;

    /* default: verification on, the self-signed certificate is rejected */
    struct sm_http_client *c = client(ts_port(ts), NULL, false, false, err, sizeof(err));
    SM_CHECK(c);
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_EIO);
    SM_CHECK_EQ_INT(r.attempts, 1);            /* certificate errors are not retried */
    sm_http_response_free(&r);
    fprintf(stderr, "expected failure: %s\n", err);
    SM_CHECK(strstr(err, "GET https://127.0.0.1:") == err);
    SM_CHECK(strstr(err, "certificate") != NULL);
    SM_CHECK_EQ_INT(ts_count(ts), 0);
    /* the same on the client's raw connection (SM_HTTP_DIRECT_BODY) */
    struct sm_http_req dreq = { "POST", "/_bulk", NULL, "{}\n", 3, SM_HTTP_DIRECT_BODY, 0 };
    int drc = sm_http_send(c, &dreq, &r, err, sizeof(err));
    fprintf(stderr, "direct: %d %s\n", drc, err);
    SM_CHECK_EQ_INT(drc, SM_EIO);
    SM_CHECK_EQ_INT(r.attempts, 1);
    sm_http_response_free(&r);
    fprintf(stderr, "expected failure: %s\n", err);
    SM_CHECK(strstr(err, "certificate") != NULL);
    SM_CHECK_EQ_INT(ts_count(ts), 0);
    sm_http_client_free(c);

    /* --ca-cert with the server's certificate: verified */
    c = client(ts_port(ts), srv_crt, false, false, err, sizeof(err));
    SM_CHECK(c);
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    SM_CHECK_EQ_STR((char *)r.body.data, "{\"ok\":true}");
    sm_http_response_free(&r);
    /* a 2 MiB body written through TLS from the caller's buffer, twice on one connection */
    size_t blen = 2u << 20;
    char *big = malloc(blen);
    SM_CHECK(big);
    for (size_t i = 0; i < blen; i++)
        big[i] = (char)('0' + i % 10);
    int conns0 = ts_connections(ts);
    for (int k = 0; k < 2; k++) {
        struct sm_http_req breq = { "POST", "/_bulk", NULL, big, blen, SM_HTTP_DIRECT_BODY, 0 };
        SM_CHECK_EQ_INT(sm_http_send(c, &breq, &r, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_INT(r.status, 200);
        SM_CHECK_EQ_STR((char *)r.body.data, "{\"ok\":true}");
        sm_http_response_free(&r);
        struct ts_request q;
        SM_CHECK(ts_get(ts, (size_t)k + 1, &q));
        SM_CHECK_EQ_INT(q.body_len, blen);
        SM_CHECK(!memcmp(q.body, big, blen));
    }
    SM_CHECK_EQ_INT(ts_connections(ts) - conns0, 1);
    free(big);
    sm_http_client_free(c);

    /* a CA that did not sign the server's certificate: rejected */
    c = client(ts_port(ts), cli_crt, false, false, err, sizeof(err));
    SM_CHECK(c);
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)), SM_EIO);
    sm_http_response_free(&r);
    sm_http_client_free(c);

    /* --insecure: no verification */
    c = client(ts_port(ts), NULL, true, false, err, sizeof(err));
    SM_CHECK(c);
    SM_CHECK_EQ_INT(sm_http_request(c, "POST", "/_bulk", NULL, "{}\n", 3, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    sm_http_response_free(&r);
    sm_http_client_free(c);
    SM_CHECK_EQ_INT(ts_count(ts), 4);
    ts_stop(ts);
    return 0;
}

static int test_client_certificate(void)
{
    SM_CHECK_EQ_INT(setup(), 0);
    struct test_server *ts = ts_start(srv_crt, srv_key, cli_crt);
    SM_CHECK(ts);
    char err[512];
    struct sm_http_response r;
    struct sm_http_client *c = client(ts_port(ts), srv_crt, false, false, err, sizeof(err));
    SM_CHECK(c);
    SM_CHECK(sm_http_request(c, "GET", "/", NULL, NULL, 0, &r, err, sizeof(err)) != SM_OK);
    fprintf(stderr, "expected failure: %s\n", err);
    sm_http_response_free(&r);
    sm_http_client_free(c);
    SM_CHECK_EQ_INT(ts_count(ts), 0);

    c = client(ts_port(ts), srv_crt, false, true, err, sizeof(err));
    SM_CHECK(c);
    SM_CHECK_EQ_INT(sm_http_request(c, "GET", "/_cluster/health", NULL, NULL, 0, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    sm_http_response_free(&r);
    /* the raw connection presents the client certificate too, and offers
     * only http/1.1 by ALPN (it speaks HTTP/1.1 itself; curl would otherwise
     * offer h2 and a server preferring it would pick it) */
    ts_prefer_h2(ts);
    struct sm_http_req dreq = { "POST", "/_bulk", NULL, "{}\n", 3, SM_HTTP_DIRECT_BODY, 0 };
    SM_CHECK_EQ_INT(sm_http_send(c, &dreq, &r, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(r.status, 200);
    sm_http_response_free(&r);
    char alpn[32];
    SM_CHECK_EQ_STR(ts_alpn(ts, alpn, sizeof(alpn)), "http/1.1");
    sm_http_client_free(c);
    SM_CHECK_EQ_INT(ts_count(ts), 2);
    ts_stop(ts);
    return 0;
}

static int test_cleanup(void)
{
    if (!dir[0])
        return 0;
    unlink(srv_crt);
    unlink(srv_key);
    unlink(cli_crt);
    unlink(cli_key);
    rmdir(dir);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_verification), SM_TC(test_client_certificate), SM_TC(test_cleanup))
