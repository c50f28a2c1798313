/* Real TLS sessions made in-process with OpenSSL (memory BIOs), recorded as
 * a transcript of wire bytes per direction, with the client's NSS key log.
 * Shared by the TLS unit tests and the fuzz seed generator. */
#ifndef TEST_TLS_SESSION_H
#define TEST_TLS_SESSION_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct tt_event { int dir; size_t off, n; };   /* dir 0: client->server */

struct tt_transcript {
    uint8_t *bytes;
    size_t len, cap;
    struct tt_event ev[4096];
    size_t nev;
    char keylog[16384];
    size_t kllen;
    /* expected plaintext per direction */
    uint8_t plain[2][262144];
    size_t plen[2];
    bool reused;
    bool early_accepted;         /* 0-RTT: the server read the early data */
    size_t early_len;            /* 0-RTT: bytes of plain[0] sent as early data */
};

static struct tt_transcript *tt_cur;

static void tt_keylog_cb(const SSL *ssl, const char *line)
{
    (void)ssl;
    size_t n = strlen(line);
    if (tt_cur && tt_cur->kllen + n + 1 < sizeof tt_cur->keylog) {
        memcpy(tt_cur->keylog + tt_cur->kllen, line, n);
        tt_cur->kllen += n;
        tt_cur->keylog[tt_cur->kllen++] = '\n';
    }
}

static void tt_add(struct tt_transcript *t, int dir, const uint8_t *p, size_t n)
{
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2 + 4096;
        t->bytes = realloc(t->bytes, t->cap);
        if (!t->bytes)
            abort();
    }
    memcpy(t->bytes + t->len, p, n);
    if (t->nev && t->ev[t->nev - 1].dir == dir && t->ev[t->nev - 1].off + t->ev[t->nev - 1].n == t->len) {
        t->ev[t->nev - 1].n += n;
    } else if (t->nev < sizeof t->ev / sizeof t->ev[0]) {
        t->ev[t->nev++] = (struct tt_event){ dir, t->len, n };
    } else {
        abort();
    }
    t->len += n;
}

/* Moves pending bytes from one side's write BIO to the other's read BIO. */
static int tt_pump(struct tt_transcript *t, SSL *cli, SSL *srv)
{
    uint8_t buf[32768];
    int moved = 0, r;
    while ((r = BIO_read(SSL_get_wbio(cli), buf, sizeof buf)) > 0) {
        tt_add(t, 0, buf, (size_t)r);
        BIO_write(SSL_get_rbio(srv), buf, r);
        moved += r;
    }
    while ((r = BIO_read(SSL_get_wbio(srv), buf, sizeof buf)) > 0) {
        tt_add(t, 1, buf, (size_t)r);
        BIO_write(SSL_get_rbio(cli), buf, r);
        moved += r;
    }
    return moved;
}

static EVP_PKEY *tt_key;
static X509 *tt_cert;

static void tt_make_cert(void)
{
    if (tt_cert)
        return;
    tt_key = EVP_RSA_gen(2048);
    tt_cert = X509_new();
    if (!tt_key || !tt_cert)
        abort();
    X509_set_version(tt_cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(tt_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(tt_cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(tt_cert), 86400);
    X509_set_pubkey(tt_cert, tt_key);
    X509_NAME *nm = X509_get_subject_name(tt_cert);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(tt_cert, nm);
    if (!X509_sign(tt_cert, tt_key, EVP_sha256()))
        abort();
}

struct tt_opts {
    int version;                 /* TLS1_2_VERSION or TLS1_3_VERSION */
    const char *suite;           /* cipher list (1.2) or ciphersuites (1.3) */
    int exchanges;               /* request/response pairs */
    bool key_update;             /* 1.3: client KeyUpdate (update_requested) after the first exchange */
    SSL_SESSION *resume;         /* resume this session */
    SSL_SESSION **session_out;   /* keep the session for a later resumption */
    size_t body;                 /* response body size (0: small) */
    bool no_ticket;              /* 1.2: session-id resumption (no tickets) */
    bool early_data;             /* 1.3: with session_out, tickets allow 0-RTT; with resume, a
                                  * request is sent as early data (plain[0] starts with it) */
    bool renegotiate;            /* 1.2: client-initiated renegotiation after the first exchange */
};

static void tt_exchange_side(struct tt_transcript *t, SSL *w, SSL *r, SSL *cli, SSL *srv, int dir,
                             const uint8_t *msg, size_t n)
{
    size_t off = 0;
    while (off < n) {
        int k = SSL_write(w, msg + off, (int)(n - off));
        if (k <= 0)
            abort();
        off += (size_t)k;
        tt_pump(t, cli, srv);
    }
    memcpy(t->plain[dir] + t->plen[dir], msg, n);
    t->plen[dir] += n;
    size_t got = 0;
    uint8_t buf[65536];
    while (got < n) {
        int k = SSL_read(r, buf, sizeof buf);
        if (k <= 0) {
            if (SSL_get_error(r, k) == SSL_ERROR_WANT_READ && tt_pump(t, cli, srv))
                continue;
            abort();
        }
        if (memcmp(buf, msg + got, (size_t)k))
            abort();
        got += (size_t)k;
    }
    tt_pump(t, cli, srv);
}

/* Runs one session; fills t (zeroed by the caller). 0 or -1. */
static int tt_session(struct tt_transcript *t, const struct tt_opts *o)
{
    tt_make_cert();
    SSL_CTX *cc = SSL_CTX_new(TLS_client_method()), *sc = SSL_CTX_new(TLS_server_method());
    if (!cc || !sc)
        return -1;
    SSL_CTX_set_min_proto_version(cc, o->version);
    SSL_CTX_set_max_proto_version(cc, o->version);
    SSL_CTX_set_min_proto_version(sc, o->version);
    SSL_CTX_set_max_proto_version(sc, o->version);
    if (o->version == TLS1_3_VERSION) {
        if (!SSL_CTX_set_ciphersuites(cc, o->suite) || !SSL_CTX_set_ciphersuites(sc, o->suite))
            return -1;
    } else if (!SSL_CTX_set_cipher_list(cc, o->suite) || !SSL_CTX_set_cipher_list(sc, o->suite)) {
        return -1;
    }
    SSL_CTX_use_certificate(sc, tt_cert);
    SSL_CTX_use_PrivateKey(sc, tt_key);
    SSL_CTX_set_keylog_callback(cc, tt_keylog_cb);
    if (o->early_data && o->session_out)
        SSL_CTX_set_max_early_data(sc, 16384);
    if (o->renegotiate)
        SSL_CTX_set_options(sc, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    if (o->no_ticket) {
        SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
        SSL_CTX_set_options(cc, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_id_context(sc, (const unsigned char *)"tt", 2);
    }
    static SSL_CTX *resume_sc;   /* tickets are bound to the server's ticket key: reuse one ctx */
    if (o->resume && resume_sc) {
        SSL_CTX_free(sc);
        sc = resume_sc;
        SSL_CTX_up_ref(sc);
    } else if (o->session_out) {
        if (resume_sc)
            SSL_CTX_free(resume_sc);
        resume_sc = sc;
        SSL_CTX_up_ref(sc);
    }
    SSL *cli = SSL_new(cc), *srv = SSL_new(sc);
    SSL_set_bio(cli, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_bio(srv, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(cli);
    SSL_set_accept_state(srv);
    if (o->resume)
        SSL_set_session(cli, o->resume);
    tt_cur = t;
    bool early = o->early_data && o->resume;
    if (early) {                 /* 0-RTT: a request before the handshake completes */
        static const char ereq[] = "GET /early HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
        size_t w = 0;
        if (SSL_SESSION_get_max_early_data(o->resume) == 0 ||
            !SSL_write_early_data(cli, ereq, sizeof ereq - 1, &w) || w != sizeof ereq - 1)
            return -1;
        memcpy(t->plain[0], ereq, w);
        t->plen[0] = t->early_len = w;
        tt_pump(t, cli, srv);
    }
    int done = 0;
    for (int i = 0; i < 100 && done != 3; i++) {
        if (SSL_do_handshake(cli) == 1)
            done |= 1;
        tt_pump(t, cli, srv);
        if (early) {
            uint8_t eb[4096];
            size_t rb = 0;
            int r = SSL_read_early_data(srv, eb, sizeof eb, &rb);
            if (r == SSL_READ_EARLY_DATA_SUCCESS)
                t->early_accepted = true;
            else if (r == SSL_READ_EARLY_DATA_FINISH)
                early = false;
            tt_pump(t, cli, srv);
            continue;
        }
        if (SSL_do_handshake(srv) == 1)
            done |= 2;
        tt_pump(t, cli, srv);
    }
    if (done != 3) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    t->reused = SSL_session_reused(cli);
    int nex = o->exchanges ? o->exchanges : 1;
    for (int i = 0; i < nex; i++) {
        char req[256], *resp;
        int rl = snprintf(req, sizeof req,
                          "GET /idx/_search?q=%d HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", i);
        size_t bl = o->body ? o->body : 20;
        resp = malloc(bl + 128);
        int hl = snprintf(resp, 128, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", bl);
        for (size_t k = 0; k < bl; k++)
            resp[hl + (int)k] = (char)('a' + (k * 7 + (size_t)i) % 26);
        tt_exchange_side(t, cli, srv, cli, srv, 0, (const uint8_t *)req, (size_t)rl);
        tt_exchange_side(t, srv, cli, cli, srv, 1, (const uint8_t *)resp, (size_t)hl + bl);
        free(resp);
        if (o->key_update && i == 0) {
            if (!SSL_key_update(cli, SSL_KEY_UPDATE_REQUESTED))
                return -1;
        }
        if (o->renegotiate && i == 0) {
            if (!SSL_renegotiate(cli))
                return -1;
            uint8_t rb[64];
            for (int k = 0; k < 100 && SSL_renegotiate_pending(cli); k++) {
                SSL_do_handshake(cli);
                tt_pump(t, cli, srv);
                SSL_read(srv, rb, sizeof rb);   /* processes the handshake; no application data */
                tt_pump(t, cli, srv);
                SSL_read(cli, rb, sizeof rb);
                tt_pump(t, cli, srv);
            }
            if (SSL_renegotiate_pending(cli))
                return -1;
        }
    }
    if (o->session_out)
        *o->session_out = SSL_get1_session(cli);
    SSL_shutdown(cli);
    tt_pump(t, cli, srv);
    SSL_shutdown(srv);           /* else the server drops the session from its cache */
    tt_pump(t, cli, srv);
    tt_cur = NULL;
    SSL_free(cli);
    SSL_free(srv);
    SSL_CTX_free(cc);
    SSL_CTX_free(sc);
    return 0;
}

#endif
