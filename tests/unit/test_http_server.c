/* In-test scripted HTTP/1.1 server (plain or TLS); see test_http_server.h. */
#define _GNU_SOURCE
#include "test_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TS_MAX_REQ 256
#define TS_MAX_STEPS 64
#define TS_BUF_MAX (8u << 20)

struct test_server {
    int lfd;
    int port;
    SSL_CTX *ssl;
    pthread_t thr;
    atomic_bool stop;
    pthread_mutex_t mu;
    struct ts_step steps[TS_MAX_STEPS];
    size_t nsteps, next_step;
    struct ts_request reqs[TS_MAX_REQ];
    size_t nreqs;
    int conns;
    int active;
    int tls_failures;
    char alpn[32];              /* protocol negotiated on the last TLS connection ("" none) */
};

struct conn {
    int fd;
    SSL *ssl;
    uint8_t *buf;
    size_t len, cap;
};

static void msleep(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1)
        ;
}

static ssize_t c_read(struct conn *c, void *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)n);
        return r > 0 ? r : -1;
    }
    return recv(c->fd, p, n, 0);
}

static int c_write(struct conn *c, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n) {
        ssize_t w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, s, (int)n);
            w = r > 0 ? r : -1;
        } else {
            w = send(c->fd, s, n, MSG_NOSIGNAL);
        }
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Waits until the connection has data (1), the server stops (0) or an
 * error (-1). */
static int wait_readable(struct test_server *ts, struct conn *c)
{
    if (c->ssl && SSL_pending(c->ssl) > 0)
        return 1;
    for (;;) {
        struct pollfd p = { c->fd, POLLIN, 0 };
        int n = poll(&p, 1, 50);
        if (atomic_load(&ts->stop))
            return 0;
        if (n < 0)
            return -1;
        if (p.revents)
            return 1;
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static const char *find_hdr(const char *head, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *s = head; s && *s;) {
        const char *e = strstr(s, "\r\n");
        if (!e)
            break;
        if ((size_t)(e - s) > nl && s[nl] == ':' && !strncasecmp(s, name, nl)) {
            const char *v = s + nl + 1;
            while (*v == ' ')
                v++;
            *vlen = (size_t)(e - v);
            return v;
        }
        s = e + 2;
    }
    return NULL;
}

const char *ts_header(const struct ts_request *r, const char *name, char *val, size_t vallen)
{
    size_t vl;
    const char *v = find_hdr(r->head, name, &vl);
    if (!v || !vallen)
        return NULL;
    if (vl >= vallen)
        vl = vallen - 1;
    memcpy(val, v, vl);
    val[vl] = 0;
    return val;
}

/* Serves requests on one connection until it closes or a step closes it. */
static void serve_conn(struct test_server *ts, struct conn *c, int conn_no)
{
    for (;;) {
        /* read the head */
        char *end = NULL;
        while (!(end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL)) {
            if (wait_readable(ts, c) <= 0)
                return;
            if (c->len + 65536 > c->cap) {
                if (c->cap >= TS_BUF_MAX)
                    return;
                c->cap = c->cap ? c->cap * 2 : 131072;
                c->buf = realloc(c->buf, c->cap);
            }
            ssize_t r = c_read(c, c->buf + c->len, c->cap - c->len);
            if (r <= 0)
                return;
            c->len += (size_t)r;
        }
        size_t head_len = (size_t)(end - (char *)c->buf) + 4;
        char *head = strndup((char *)c->buf, head_len);
        size_t cl = 0, vl;
        const char *clv = find_hdr(strstr(head, "\r\n") + 2, "Content-Length", &vl);
        if (clv)
            cl = strtoul(clv, NULL, 10);
        while (c->len < head_len + cl) {
            if (wait_readable(ts, c) <= 0) {
                free(head);
                return;
            }
            if (head_len + cl > c->cap) {
                c->cap = head_len + cl;
                c->buf = realloc(c->buf, c->cap);
            }
            ssize_t r = c_read(c, c->buf + c->len, c->cap - c->len);
            if (r <= 0) {
                free(head);
                return;
            }
            c->len += (size_t)r;
        }
        struct ts_request rq;
        memset(&rq, 0, sizeof(rq));
        sscanf(head, "%15s %2047s", rq.method, rq.target);
        rq.head = strdup(strstr(head, "\r\n") + 2);
        rq.body = malloc(cl + 1);
        memcpy(rq.body, c->buf + head_len, cl);
        rq.body[cl] = 0;
        rq.body_len = cl;
        rq.conn = conn_no;
        free(head);
        memmove(c->buf, c->buf + head_len + cl, c->len - head_len - cl);
        c->len -= head_len + cl;

        struct ts_step st = { TS_RESPOND, 200, NULL, NULL, 0, 0 };
        pthread_mutex_lock(&ts->mu);
        if (ts->nreqs < TS_MAX_REQ)
            ts->reqs[ts->nreqs++] = rq;
        else {
            free(rq.head);
            free(rq.body);
        }
        if (ts->next_step < ts->nsteps)
            st = ts->steps[ts->next_step++];
        pthread_mutex_unlock(&ts->mu);

        if (st.action == TS_CLOSE)
            return;
        for (unsigned w = 0; st.action == TS_DELAY && w < st.delay_ms && !atomic_load(&ts->stop); w += 10)
            msleep(10);
        const char *body = st.body ? st.body : "{\"ok\":true}";
        size_t blen = st.body ? (st.body_len ? st.body_len : strlen(st.body)) : strlen(body);
        int status = st.status ? st.status : 200;
        char hdr[4096];
        int hl = snprintf(hdr, sizeof(hdr),
                          "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
                          status, reason(status), strcmp(rq.method, "HEAD") ? blen : 0,
                          st.headers ? st.headers : "");
        if (c_write(c, hdr, (size_t)hl))
            return;
        if (strcmp(rq.method, "HEAD") && c_write(c, body, blen))
            return;
    }
}

struct conn_arg {
    struct test_server *ts;
    int fd;
    int no;
};

static void *conn_main(void *arg)
{
    struct conn_arg *ca = arg;
    struct test_server *ts = ca->ts;
    struct conn c = { ca->fd, NULL, NULL, 0, 0 };
    bool ok = true;
    if (ts->ssl) {
        c.ssl = SSL_new(ts->ssl);
        SSL_set_fd(c.ssl, c.fd);
        if (SSL_accept(c.ssl) != 1) {
            ok = false;
            pthread_mutex_lock(&ts->mu);
            ts->tls_failures++;
            pthread_mutex_unlock(&ts->mu);
            ERR_clear_error();
        } else {
            const unsigned char *ap = NULL;
            unsigned al = 0;
            SSL_get0_alpn_selected(c.ssl, &ap, &al);
            pthread_mutex_lock(&ts->mu);
            snprintf(ts->alpn, sizeof(ts->alpn), "%.*s", (int)al, ap ? (const char *)ap : "");
            pthread_mutex_unlock(&ts->mu);
        }
    }
    if (ok)
        serve_conn(ts, &c, ca->no);
    if (c.ssl) {
        if (ok)
            SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    free(c.buf);
    close(c.fd);
    free(ca);
    pthread_mutex_lock(&ts->mu);
    ts->active--;
    pthread_mutex_unlock(&ts->mu);
    return NULL;
}

static void *server_main(void *arg)
{
    struct test_server *ts = arg;
    while (!atomic_load(&ts->stop)) {
        struct pollfd p = { ts->lfd, POLLIN, 0 };
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(ts->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct conn_arg *ca = malloc(sizeof(*ca));
        pthread_mutex_lock(&ts->mu);
        ca->ts = ts;
        ca->fd = fd;
        ca->no = ++ts->conns;
        ts->active++;
        pthread_mutex_unlock(&ts->mu);
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, ca)) {
            close(fd);
            free(ca);
            pthread_mutex_lock(&ts->mu);
            ts->active--;
            pthread_mutex_unlock(&ts->mu);
            continue;
        }
        pthread_detach(t);
    }
    /* connection threads notice the stop flag within ~50 ms */
    for (;;) {
        pthread_mutex_lock(&ts->mu);
        int n = ts->active;
        pthread_mutex_unlock(&ts->mu);
        if (!n)
            break;
        msleep(10);
    }
    return NULL;
}

struct test_server *ts_start(const char *cert, const char *key, const char *client_ca)
{
    struct test_server *ts = calloc(1, sizeof(*ts));
    if (!ts)
        return NULL;
    pthread_mutex_init(&ts->mu, NULL);
    ts->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ts->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (ts->lfd < 0 || bind(ts->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(ts->lfd, 16) ||
        getsockname(ts->lfd, (struct sockaddr *)&sa, &sl)) {
        if (ts->lfd >= 0)
            close(ts->lfd);
        free(ts);
        return NULL;
    }
    ts->port = ntohs(sa.sin_port);
    if (cert) {
        ts->ssl = SSL_CTX_new(TLS_server_method());
        if (!ts->ssl || SSL_CTX_use_certificate_chain_file(ts->ssl, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ts->ssl, key, SSL_FILETYPE_PEM) != 1) {
            ERR_print_errors_fp(stderr);
            if (ts->ssl)
                SSL_CTX_free(ts->ssl);
            close(ts->lfd);
            free(ts);
            return NULL;
        }
        if (client_ca) {
            SSL_CTX_load_verify_locations(ts->ssl, client_ca, NULL);
            SSL_CTX_set_verify(ts->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
    }
    if (pthread_create(&ts->thr, NULL, server_main, ts)) {
        close(ts->lfd);
        free(ts);
        return NULL;
    }
    return ts;
}

int ts_port(const struct test_server *ts)
{
    return ts->port;
}

static void clear_reqs(struct test_server *ts)
{
    for (size_t i = 0; i < ts->nreqs; i++) {
        free(ts->reqs[i].head);
        free(ts->reqs[i].body);
    }
    ts->nreqs = 0;
}

void ts_script(struct test_server *ts, const struct ts_step *steps, size_t n)
{
    pthread_mutex_lock(&ts->mu);
    if (n > TS_MAX_STEPS)
        n = TS_MAX_STEPS;
    if (n)
        memcpy(ts->steps, steps, n * sizeof(*steps));
    ts->nsteps = n;
    ts->next_step = 0;
    clear_reqs(ts);
    pthread_mutex_unlock(&ts->mu);
}

size_t ts_count(struct test_server *ts)
{
    pthread_mutex_lock(&ts->mu);
    size_t n = ts->nreqs;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

bool ts_get(struct test_server *ts, size_t i, struct ts_request *out)
{
    pthread_mutex_lock(&ts->mu);
    bool ok = i < ts->nreqs;
    if (ok)
        *out = ts->reqs[i];
    pthread_mutex_unlock(&ts->mu);
    return ok;
}

int ts_connections(struct test_server *ts)
{
    pthread_mutex_lock(&ts->mu);
    int n = ts->conns;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

/* ALPN: h2 when the client offers it (this server only speaks HTTP/1.1, so a
 * client that then sends HTTP/1.1 text would still be answered: tests check
 * ts_alpn()), else http/1.1. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    static const unsigned char pref[] = "\x02h2\x08http/1.1";
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, pref, sizeof(pref) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    return SSL_TLSEXT_ERR_OK;
}

void ts_prefer_h2(struct test_server *ts)
{
    if (ts->ssl)
        SSL_CTX_set_alpn_select_cb(ts->ssl, alpn_select, NULL);
}

const char *ts_alpn(struct test_server *ts, char *buf, size_t len)
{
    pthread_mutex_lock(&ts->mu);
    snprintf(buf, len, "%s", ts->alpn);
    pthread_mutex_unlock(&ts->mu);
    return buf;
}

int ts_tls_failures(struct test_server *ts)
{
    pthread_mutex_lock(&ts->mu);
    int n = ts->tls_failures;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

void ts_stop(struct test_server *ts)
{
    if (!ts)
        return;
    atomic_store(&ts->stop, true);
    pthread_join(ts->thr, NULL);
    close(ts->lfd);
    clear_reqs(ts);
    if (ts->ssl)
        SSL_CTX_free(ts->ssl);
    pthread_mutex_destroy(&ts->mu);
    free(ts);
}
