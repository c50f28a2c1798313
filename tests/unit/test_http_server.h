/* In-test HTTP/1.1 server for the HTTP client tests: a thread on
 * 127.0.0.1:<ephemeral> (plain TCP or TLS via OpenSSL) that records every
 * request and answers from a script: respond, close without responding, or
 * respond after a delay. Requests past the script get 200 {"ok":true}. */
#ifndef TEST_HTTP_SERVER_H
#define TEST_HTTP_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ts_action { TS_RESPOND = 0, TS_CLOSE, TS_DELAY };

struct ts_step {
    enum ts_action action;
    int status;                 /* 0: 200 */
    const char *headers;        /* extra "Name: value\r\n" lines, or NULL */
    const char *body;           /* NULL: {"ok":true} */
    size_t body_len;            /* 0: strlen(body) */
    unsigned delay_ms;          /* TS_DELAY */
};

struct ts_request {
    char method[16];
    char target[2048];          /* path and query as received */
    char *head;                 /* header lines as received ("Name: value\r\n"...) */
    uint8_t *body;
    size_t body_len;
    int conn;                   /* 1-based connection number */
};

struct test_server;

/* cert/key: PEM files for TLS, NULL for plain HTTP. client_ca: require a
 * client certificate signed by it (NULL: none asked). NULL on failure. */
struct test_server *ts_start(const char *cert, const char *key, const char *client_ca);
int  ts_port(const struct test_server *ts);
/* Replaces the script and forgets recorded requests. */
void ts_script(struct test_server *ts, const struct ts_step *steps, size_t n);
size_t ts_count(struct test_server *ts);
/* Copy of request i (0-based); false if absent. Strings stay owned by ts. */
bool ts_get(struct test_server *ts, size_t i, struct ts_request *out);
/* Value of header name in a recorded request, copied into val. */
const char *ts_header(const struct ts_request *r, const char *name, char *val, size_t vallen);
int  ts_connections(struct test_server *ts);
int  ts_tls_failures(struct test_server *ts);
/* TLS: select h2 by ALPN when a client offers it (call before connecting);
 * ts_alpn() gives the protocol negotiated on the last TLS connection. */
void ts_prefer_h2(struct test_server *ts);
const char *ts_alpn(struct test_server *ts, char *buf, size_t len);
void ts_stop(struct test_server *ts);

#endif
