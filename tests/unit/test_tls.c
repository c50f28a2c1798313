/* TLS decryption filter: real OpenSSL sessions (TLS 1.3 and 1.2, each AEAD
 * suite, KeyUpdate, resumption) recorded in-process, fed through the filter
 * in arbitrary segment sizes; late, missing and wrong secrets; passthrough;
 * key log following. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sm/err.h>
#include <sm/mem.h>

#include "sm_test.h"
#include "test_tls_session.h"
#include "tls/tls.h"

/* ---- downstream collector ---- */

struct col_conn {
    uint8_t data[2][262144];
    size_t len[2];
    int gaps[2];
    size_t gap_at[2];            /* bytes delivered before the last gap */
    const char *why;
    int opened, closed;
};

static struct col_conn col;

static void *c_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    (void)arg, (void)info, (void)ts;
    col.opened++;
    return &col;
}
static void c_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)arg, (void)ts;
    struct col_conn *c = conn;
    if (c->len[dir] + n <= sizeof c->data[dir]) {
        memcpy(c->data[dir] + c->len[dir], p, n);
    }
    c->len[dir] += n;
}
static void c_gap(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts, const char *why)
{
    (void)arg, (void)lost, (void)ts;
    struct col_conn *c = conn;
    c->gaps[dir]++;
    c->gap_at[dir] = c->len[dir];
    c->why = why;
}
static void c_close(void *arg, void *conn, enum agent_close_reason r, uint64_t ts)
{
    (void)arg, (void)r, (void)ts;
    ((struct col_conn *)conn)->closed++;
}
static const struct agent_stream_cb col_cb = { NULL, c_open, c_data, c_gap, c_close };

/* ---- helpers ---- */

static char keyfile[64];
static uint64_t fake_now;
static uint64_t fake_clock(void) { return fake_now; }

static void write_file(const char *path, const char *s, size_t n, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (!f)
        abort();
    fwrite(s, 1, n, f);
    fclose(f);
}

static struct agent_tls_filter *mk_filter(uint64_t max_pending)
{
    struct agent_tls_cfg cfg;
    agent_tls_cfg_init(&cfg);
    cfg.keylog_path = keyfile;
    cfg.ports[0] = 9200;
    cfg.nports = 1;
    cfg.clock_ns = fake_clock;
    cfg.poll_interval_ns = 0;
    if (max_pending)
        cfg.max_pending = max_pending;
    struct agent_tls_filter *tls = NULL;
    char err[256];
    memset(&col, 0, sizeof col);
    if (agent_tls_filter_new(&cfg, &col_cb, &tls, err, sizeof err) != SM_OK) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    return tls;
}

static uint32_t rng = 12345;
static size_t next_size(size_t max)
{
    rng = rng * 1103515245u + 12345u;
    size_t s = 1 + (rng >> 8) % 1500;
    return s < max ? s : max;
}

/* Feeds events [from, to) in random segment sizes (split and, within a
 * direction, across event boundaries as the transcript coalesced them). */
static void *feed_range(struct agent_tls_filter *tls, void *conn, const struct tt_transcript *t, size_t from,
                        size_t to, uint16_t port)
{
    const struct agent_stream_cb *up = agent_tls_filter_cb(tls);
    if (!conn) {
        struct agent_conn_info info = { .family = AF_INET, .client_port = 40000, .server_port = port };
        info.client_ip[0] = 127, info.client_ip[3] = 1, info.server_ip[0] = 127, info.server_ip[3] = 1;
        conn = up->open(up->arg, &info, 1);
    }
    for (size_t e = from; e < to && e < t->nev; e++) {
        size_t off = 0;
        while (off < t->ev[e].n) {
            size_t s = next_size(t->ev[e].n - off);
            up->data(up->arg, conn, (enum agent_dir)t->ev[e].dir, t->bytes + t->ev[e].off + off, s, 1000 + e);
            off += s;
        }
    }
    return conn;
}

static void close_conn(struct agent_tls_filter *tls, void *conn)
{
    const struct agent_stream_cb *up = agent_tls_filter_cb(tls);
    up->close(up->arg, conn, AGENT_CLOSE_FIN, 99999);
}

static int check_plain(const struct tt_transcript *t)
{
    SM_CHECK_EQ_INT(col.len[0], t->plen[0]);
    SM_CHECK_EQ_INT(col.len[1], t->plen[1]);
    SM_CHECK_MEM(col.data[0], t->plain[0], t->plen[0]);
    SM_CHECK_MEM(col.data[1], t->plain[1], t->plen[1]);
    SM_CHECK_EQ_INT(col.gaps[0] + col.gaps[1], 0);
    return 0;
}

/* TLS_FUZZ_SEEDS=DIR: the session as a fuzz_tls input (key log lines, then
 * the wire bytes in 1000-byte pieces); with drop, a hole per direction
 * [drop[d][0], drop[d][1]) becomes a gap record. */
static void write_seed(const struct tt_transcript *t, const char *name, const size_t (*drop)[2])
{
    static const size_t no_drop[2][2] = { { 0, 0 }, { 0, 0 } };
    if (!drop)
        drop = no_drop;
    const char *dir = getenv("TLS_FUZZ_SEEDS");
    if (!dir)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    for (size_t i = 0, s = 0; i <= t->kllen; i++) {
        if (i == t->kllen || t->keylog[i] == '\n') {
            size_t n = i - s;
            uint8_t h[3] = { 4, (uint8_t)n, (uint8_t)(n >> 8) };
            if (n) {
                fwrite(h, 1, 3, f);
                fwrite(t->keylog + s, 1, n, f);
            }
            s = i + 1;
        }
    }
    size_t pos[2] = { 0, 0 };
    for (size_t e = 0; e < t->nev; e++) {
        int d = t->ev[e].dir;
        const uint8_t *p = t->bytes + t->ev[e].off;
        for (size_t off = 0; off < t->ev[e].n;) {
            size_t a = pos[d] + off, n = t->ev[e].n - off < 1000 ? t->ev[e].n - off : 1000;
            if (a >= drop[d][0] && a < drop[d][1]) {               /* in the hole: skip to its end */
                size_t skip = drop[d][1] - a < t->ev[e].n - off ? drop[d][1] - a : t->ev[e].n - off;
                off += skip;
                if (a + skip == drop[d][1]) {
                    size_t lost = drop[d][1] - drop[d][0];
                    uint8_t h[3] = { (uint8_t)(2 + d), (uint8_t)lost, (uint8_t)(lost >> 8) };
                    fwrite(h, 1, 3, f);
                    static const uint8_t zero[65536];
                    fwrite(zero, 1, lost, f);                       /* the harness skips len bytes */
                }
                continue;
            }
            if (a < drop[d][0] && a + n > drop[d][0])
                n = drop[d][0] - a;
            uint8_t h[3] = { (uint8_t)d, (uint8_t)n, (uint8_t)(n >> 8) };
            fwrite(h, 1, 3, f);
            fwrite(p + off, 1, n, f);
            off += n;
        }
        pos[d] += t->ev[e].n;
    }
    fclose(f);
}

/* Whole session with its keys already in the key log. */
static int run_ok(const struct tt_opts *o, struct agent_tls_stats *st_out)
{
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, o) == 0);
    write_file(keyfile, t->keylog, t->kllen, "w");
    if (!o->body) {
        char name[96];
        snprintf(name, sizeof name, "%s-%s%s", o->version == TLS1_3_VERSION ? "tls13" : "tls12", o->suite,
                 o->key_update ? "-keyupdate" : "");
        write_seed(t, name, NULL);
    }
    struct agent_tls_filter *tls = mk_filter(0);
    void *conn = feed_range(tls, NULL, t, 0, t->nev, 9200);
    close_conn(tls, conn);
    SM_CHECK_EQ_INT(col.closed, 1);
    int rc = check_plain(t);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_tls, 1);
    SM_CHECK_EQ_INT(st.conns_decrypted, 1);
    SM_CHECK_EQ_INT(st.conns_undecryptable, 0);
    SM_CHECK_EQ_INT(st.auth_failures, 0);
    SM_CHECK_EQ_INT(st.bytes_plaintext, t->plen[0] + t->plen[1]);
    if (st_out)
        *st_out = st;
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return rc;
}

static int t13(const char *suite)
{
    struct tt_opts o = { .version = TLS1_3_VERSION, .suite = suite, .exchanges = 3, .body = 40000 };
    return run_ok(&o, NULL);
}
static int t12(const char *suite)
{
    struct tt_opts o = { .version = TLS1_2_VERSION, .suite = suite, .exchanges = 3, .body = 40000 };
    return run_ok(&o, NULL);
}

static int test_tls13_aes128gcm(void) { return t13("TLS_AES_128_GCM_SHA256"); }
static int test_tls13_aes256gcm(void) { return t13("TLS_AES_256_GCM_SHA384"); }
static int test_tls13_chacha20(void) { return t13("TLS_CHACHA20_POLY1305_SHA256"); }
static int test_tls12_aes128gcm(void) { return t12("ECDHE-RSA-AES128-GCM-SHA256"); }
static int test_tls12_aes256gcm(void) { return t12("ECDHE-RSA-AES256-GCM-SHA384"); }
static int test_tls12_chacha20(void) { return t12("ECDHE-RSA-CHACHA20-POLY1305"); }

static int test_tls13_key_update(void)
{
    struct tt_opts o = { .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256", .exchanges = 3,
                         .key_update = true };
    struct agent_tls_stats st;
    SM_CHECK_EQ_INT(run_ok(&o, &st), 0);
    SM_CHECK_EQ_INT(st.key_updates, 2);   /* client's, then the server's answer */
    return 0;
}

static int resume(int version, const char *suite)
{
    SSL_SESSION *sess = NULL;
    struct tt_opts o = { .version = version, .suite = suite, .exchanges = 1, .session_out = &sess };
    SM_CHECK_EQ_INT(run_ok(&o, NULL), 0);
    SM_CHECK(sess != NULL);
    struct tt_opts o2 = { .version = version, .suite = suite, .exchanges = 2, .resume = sess };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o2) == 0);
    SM_CHECK(t->reused);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    close_conn(tls, feed_range(tls, NULL, t, 0, t->nev, 9200));
    SM_CHECK_EQ_INT(check_plain(t), 0);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_decrypted, 1);
    SM_CHECK_EQ_INT(st.conns_resumed, 1);
    agent_tls_filter_free(tls);
    SSL_SESSION_free(sess);
    free(t->bytes);
    free(t);
    return 0;
}
/* TLS 1.2 resumption when the key log has only the first (full) handshake's
 * CLIENT_RANDOM: the master secret is found by ticket or session id. */
static int resume12_cached(bool no_ticket)
{
    SSL_SESSION *sess = NULL;
    const char *suite = "ECDHE-RSA-CHACHA20-POLY1305";
    struct tt_opts o = { .version = TLS1_2_VERSION, .suite = suite, .exchanges = 1, .session_out = &sess,
                         .no_ticket = no_ticket };
    struct tt_transcript *t1 = calloc(1, sizeof *t1), *t2 = calloc(1, sizeof *t2);
    SM_CHECK(t1 && t2 && tt_session(t1, &o) == 0 && sess);
    struct tt_opts o2 = { .version = TLS1_2_VERSION, .suite = suite, .exchanges = 2, .resume = sess,
                          .no_ticket = no_ticket };
    SM_CHECK(tt_session(t2, &o2) == 0);
    SM_CHECK(t2->reused);
    write_file(keyfile, t1->keylog, t1->kllen, "w");    /* not t2's */
    struct agent_tls_filter *tls = mk_filter(0);
    close_conn(tls, feed_range(tls, NULL, t1, 0, t1->nev, 9200));
    SM_CHECK_EQ_INT(check_plain(t1), 0);
    memset(&col, 0, sizeof col);
    close_conn(tls, feed_range(tls, NULL, t2, 0, t2->nev, 9200));
    SM_CHECK_EQ_INT(check_plain(t2), 0);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_decrypted, 2);
    SM_CHECK_EQ_INT(st.conns_resumed, 1);
    agent_tls_filter_free(tls);
    SSL_SESSION_free(sess);
    free(t1->bytes);
    free(t2->bytes);
    free(t1);
    free(t2);
    return 0;
}
static int test_tls12_resumption_ticket_cache(void) { return resume12_cached(false); }
static int test_tls12_resumption_sid_cache(void) { return resume12_cached(true); }

static int test_tls13_resumption(void) { return resume(TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384"); }
static int test_tls12_resumption(void) { return resume(TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256"); }

/* Secrets appended after the data arrived, within the wait: all decrypted. */
static int test_late_keys(void)
{
    struct tt_opts o = { .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256", .exchanges = 2 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, "# empty for now\n", 16, "w");
    fake_now = 1000000000;
    struct agent_tls_filter *tls = mk_filter(0);
    void *conn = feed_range(tls, NULL, t, 0, t->nev, 9200);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(col.len[0] + col.len[1], 0);
    SM_CHECK(st.pending_bytes > 0);
    fake_now += 1000000000;             /* 1 s later, within the 5 s wait */
    write_file(keyfile, t->keylog, t->kllen, "a");
    close_conn(tls, conn);              /* close re-reads the key log */
    SM_CHECK_EQ_INT(check_plain(t), 0);
    SM_CHECK_EQ_INT(col.closed, 1);
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.keys_late, 1);
    SM_CHECK_EQ_INT(st.pending_bytes, 0);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* Secrets never come: undecryptable after the wait, nothing emitted but gaps. */
static int test_missing_keys(void)
{
    struct tt_opts o = { .version = TLS1_2_VERSION, .suite = "ECDHE-RSA-AES256-GCM-SHA384", .exchanges = 2 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, "", 0, "w");
    fake_now = 1000000000;
    struct agent_tls_filter *tls = mk_filter(0);
    void *conn = feed_range(tls, NULL, t, 0, t->nev, 9200);
    close_conn(tls, conn);
    SM_CHECK_EQ_INT(col.closed, 0);     /* held: the secrets may still come */
    fake_now += 6000000000ull;
    agent_tls_filter_tick(tls);
    SM_CHECK_EQ_INT(col.closed, 1);
    SM_CHECK_EQ_INT(col.len[0] + col.len[1], 0);
    SM_CHECK_EQ_INT(col.gaps[0], 1);
    SM_CHECK_EQ_INT(col.gaps[1], 1);
    SM_CHECK_EQ_STR(col.why, "tls: no keys");
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_undecryptable, 1);
    SM_CHECK_EQ_INT(st.conns_no_keys, 1);
    SM_CHECK_EQ_INT(st.pending_bytes, 0);
    SM_CHECK(st.bytes_dropped > 0);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* Keys never come and the connection goes on: the buffer bound ends it. */
static int test_pending_bound(void)
{
    struct tt_opts o = { .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256", .exchanges = 3,
                         .body = 30000 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, "", 0, "w");
    struct agent_tls_filter *tls = mk_filter(16384);
    close_conn(tls, feed_range(tls, NULL, t, 0, t->nev, 9200));
    SM_CHECK_EQ_INT(col.closed, 1);
    SM_CHECK_EQ_INT(col.len[0] + col.len[1], 0);
    SM_CHECK_EQ_INT(col.gaps[0] + col.gaps[1], 2);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_pending_full, 1);
    SM_CHECK_EQ_INT(st.pending_bytes, 0);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* Keys never come for many connections: the bound over all connections
 * holds at every step (those that would pass it are reported undecryptable),
 * and everything held is freed when the wait ends. */
static int test_pending_total_bound(void)
{
    struct tt_opts o = { .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256", .exchanges = 2,
                         .body = 8000 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, "", 0, "w");
    fake_now = 1000000000;
    struct agent_tls_cfg cfg;
    agent_tls_cfg_init(&cfg);
    cfg.keylog_path = keyfile;
    cfg.clock_ns = fake_clock;
    cfg.poll_interval_ns = 0;
    cfg.max_pending_total = 65536;
    struct agent_tls_filter *tls = NULL;
    char err[256];
    memset(&col, 0, sizeof col);
    SM_CHECK(agent_tls_filter_new(&cfg, &col_cb, &tls, err, sizeof err) == SM_OK);
    void *conns[12];
    struct agent_tls_stats st;
    for (int i = 0; i < 12; i++) {
        conns[i] = feed_range(tls, NULL, t, 0, t->nev, 443);
        agent_tls_filter_stats(tls, &st);
        SM_CHECK(st.pending_bytes <= 65536);
    }
    SM_CHECK(st.conns_pending_full >= 6);                  /* ~20 KB each: at most 3 fit */
    SM_CHECK(st.pending_bytes > 0);
    for (int i = 0; i < 12; i++)
        close_conn(tls, conns[i]);
    fake_now += 6000000000ull;
    agent_tls_filter_tick(tls);
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.pending_bytes, 0);
    SM_CHECK_EQ_INT(st.conns_no_keys + st.conns_pending_full, 12);
    SM_CHECK_EQ_INT(st.conns_undecryptable, 12);
    SM_CHECK_EQ_INT(col.closed, 12);
    SM_CHECK_EQ_INT(col.len[0] + col.len[1], 0);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* Wrong secret / corrupted record: tag failure reported, no garbage emitted. */
static int test_auth_failure(void)
{
    struct tt_opts o = { .version = TLS1_3_VERSION, .suite = "TLS_CHACHA20_POLY1305_SHA256", .exchanges = 2 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    /* flip one bit in the last byte of the last server->client event (a record's tag) */
    size_t last = 0;
    for (size_t e = 0; e < t->nev; e++)
        if (t->ev[e].dir == 1)
            last = e;
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    void *conn = feed_range(tls, NULL, t, 0, last, 9200);
    size_t good1 = col.len[1];
    t->bytes[t->ev[last].off + t->ev[last].n - 1] ^= 1;
    feed_range(tls, conn, t, last, t->nev, 9200);
    close_conn(tls, conn);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.auth_failures, 1);
    SM_CHECK_EQ_INT(st.conns_undecryptable, 1);
    SM_CHECK_EQ_INT(col.gaps[1], 1);
    SM_CHECK_EQ_STR(col.why, "tls: authentication failure");
    SM_CHECK_EQ_INT(col.len[1], good1);   /* nothing after the bad record */
    SM_CHECK_MEM(col.data[1], t->plain[1], good1);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* Joined mid-stream: no ClientHello, reported undecryptable at once. */
static int test_mid_stream(void)
{
    struct tt_opts o = { .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256", .exchanges = 3 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    /* start at the first client event after the handshake (the first request) */
    size_t e0 = 0;
    for (size_t e = 0, seen = 0; e < t->nev; e++)
        if (t->ev[e].dir == 0 && ++seen == 3) {
            e0 = e;
            break;
        }
    SM_CHECK(e0 > 0);
    close_conn(tls, feed_range(tls, NULL, t, e0, t->nev, 9200));
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_no_handshake, 1);
    SM_CHECK_EQ_INT(col.len[0] + col.len[1], 0);
    SM_CHECK_EQ_INT(col.gaps[0] + col.gaps[1], 2);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* Clear HTTP on a TLS port and TLS on another port pass through untouched. */
static int test_passthrough(void)
{
    write_file(keyfile, "", 0, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    const struct agent_stream_cb *up = agent_tls_filter_cb(tls);
    struct agent_conn_info info = { .family = AF_INET, .client_port = 1, .server_port = 9200 };
    const char *req = "GET / HTTP/1.1\r\n\r\n", *resp = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    void *c = up->open(up->arg, &info, 1);
    up->data(up->arg, c, AGENT_C2S, (const uint8_t *)req, strlen(req), 2);
    up->data(up->arg, c, AGENT_S2C, (const uint8_t *)resp, strlen(resp), 3);
    up->close(up->arg, c, AGENT_CLOSE_FIN, 4);
    SM_CHECK_EQ_INT(col.len[0], strlen(req));
    SM_CHECK_EQ_INT(col.len[1], strlen(resp));
    SM_CHECK_MEM(col.data[0], req, strlen(req));
    const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0 };
    info.server_port = 8080;
    c = up->open(up->arg, &info, 1);
    up->data(up->arg, c, AGENT_C2S, hello, sizeof hello, 2);
    up->close(up->arg, c, AGENT_CLOSE_FIN, 4);
    SM_CHECK_EQ_INT(col.len[0], strlen(req) + sizeof hello);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_clear, 2);
    SM_CHECK_EQ_INT(st.conns_tls, 0);
    agent_tls_filter_free(tls);
    return 0;
}

/* The key log is followed: appended lines, truncation and replacement. */
static int test_keylog_follow(void)
{
    const char *l1 = "CLIENT_RANDOM 0101010101010101010101010101010101010101010101010101010101010101 "
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
    const char *l2 = "CLIENT_TRAFFIC_SECRET_0 0202020202020202020202020202020202020202020202020202020202020202 "
                     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n";
    write_file(keyfile, l1, strlen(l1), "w");
    struct agent_tls_filter *tls = mk_filter(0);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.keylog_lines, 1);
    write_file(keyfile, "CLIENT_RANDOM 01", 16, "a");   /* a partial line is held */
    agent_tls_filter_tick(tls);
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.keylog_lines, 1);
    SM_CHECK_EQ_INT(st.keylog_bad_lines, 0);
    write_file(keyfile, "zz\n# comment\nNOT_A_LABEL 00 00\n", 31, "a");
    agent_tls_filter_tick(tls);
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.keylog_bad_lines, 2);
    write_file(keyfile, l2, strlen(l2), "w");            /* truncated and rewritten */
    agent_tls_filter_tick(tls);
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.keylog_lines, 2);
    SM_CHECK_EQ_INT(st.keylog_reopens, 1);
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.new", keyfile);
    char l3[512];
    snprintf(l3, sizeof l3, "%s%s", l1, l2);
    l3[14] = '3';
    write_file(tmp, l3, strlen(l3), "w");
    SM_CHECK_EQ_INT(rename(tmp, keyfile), 0);            /* replaced (log rotation) */
    agent_tls_filter_tick(tls);
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.keylog_lines, 4);
    SM_CHECK_EQ_INT(st.keylog_reopens, 2);
    SM_CHECK_EQ_INT(st.keylog_entries, 3);
    SM_CHECK_EQ_INT(agent_tls_keylog_line(tls, "CLIENT_RANDOM 01 02", 19), SM_EPROTO);
    SM_CHECK_EQ_INT(agent_tls_keylog_line(tls, "EXPORTER_SECRET 01 02", 21), 1);
    agent_tls_filter_free(tls);
    return 0;
}

static int test_unsupported_suite(void)
{
    struct tt_opts o = { .version = TLS1_2_VERSION, .suite = "ECDHE-RSA-AES128-SHA", .exchanges = 1 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    close_conn(tls, feed_range(tls, NULL, t, 0, t->nev, 9200));
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_unsupported, 1);
    SM_CHECK(strstr(st.last_unsupported, "ECDHE-RSA-AES128-SHA") != NULL);
    SM_CHECK_EQ_INT(col.len[0] + col.len[1], 0);
    SM_CHECK_EQ_INT(col.gaps[0] + col.gaps[1], 2);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* ---- capture gaps: record resynchronisation ---- */

/* Like feed_range() over the whole transcript, but the bytes [drop[d][0],
 * drop[d][1]) of direction d's stream are missing (a capture gap reported
 * before the bytes after it, with the lost count when lost_known). */
static void *feed_dropped(struct agent_tls_filter *tls, const struct tt_transcript *t, const size_t drop[2][2],
                          bool lost_known)
{
    const struct agent_stream_cb *up = agent_tls_filter_cb(tls);
    struct agent_conn_info info = { .family = AF_INET, .client_port = 40001, .server_port = 9200 };
    void *conn = up->open(up->arg, &info, 1);
    size_t pos[2] = { 0, 0 };
    bool gapped[2] = { false, false };
    for (size_t e = 0; e < t->nev; e++) {
        int d = t->ev[e].dir;
        size_t off = 0;
        while (off < t->ev[e].n) {
            size_t s = next_size(t->ev[e].n - off);
            size_t a = pos[d], b = pos[d] + s;          /* this segment's stream range */
            const uint8_t *p = t->bytes + t->ev[e].off + off;
            size_t da = drop[d][0], db = drop[d][1];
            if (da < db && a < db && b > da) {          /* overlaps the hole: keep what is outside */
                if (a < da)
                    up->data(up->arg, conn, (enum agent_dir)d, p, da - a, 1000 + e);
                if (b > db) {
                    if (!gapped[d]) {
                        up->gap(up->arg, conn, (enum agent_dir)d, lost_known ? db - da : 0, 1000 + e,
                                "capture loss");
                        gapped[d] = true;
                    }
                    up->data(up->arg, conn, (enum agent_dir)d, p + (db - a), b - db, 1000 + e);
                }
            } else {
                if (da < db && a >= db && !gapped[d]) {
                    up->gap(up->arg, conn, (enum agent_dir)d, lost_known ? db - da : 0, 1000 + e, "capture loss");
                    gapped[d] = true;
                }
                up->data(up->arg, conn, (enum agent_dir)d, p, s, 1000 + e);
            }
            pos[d] = b;
            off += s;
        }
    }
    return conn;
}

/* Stream offset (per direction) where event number k of direction dir starts. */
static size_t dir_off(const struct tt_transcript *t, int dir, size_t k)
{
    size_t off = 0, seen = 0;
    for (size_t e = 0; e < t->nev; e++)
        if (t->ev[e].dir == dir) {
            if (seen++ == k)
                return off;
            off += t->ev[e].n;
        }
    return off;
}

/* Direction dir's delivered plaintext: one gap; before it a prefix of the
 * real plaintext, after it an exact suffix of at least min_tail bytes. */
static int check_gapped(const struct tt_transcript *t, int dir, size_t min_tail)
{
    SM_CHECK_EQ_INT(col.gaps[dir], 1);
    size_t g = col.gap_at[dir], n = col.len[dir];
    SM_CHECK(n <= t->plen[dir]);
    SM_CHECK(g <= n);
    SM_CHECK_MEM(col.data[dir], t->plain[dir], g);
    size_t tail = n - g;
    SM_CHECK(tail >= min_tail);
    SM_CHECK_MEM(col.data[dir] + g, t->plain[dir] + t->plen[dir] - tail, tail);
    SM_CHECK(g + tail < t->plen[dir]);                  /* something was lost */
    return 0;
}

/* A keep-alive session of 8 exchanges (20 KB responses: two records each);
 * the capture loses bytes from the middle of response 3 to the middle of
 * response 4 and, in the other direction, from inside request 3 to inside
 * request 4. The responses and requests after the hole come out exact. */
static int gap_case(int version, const char *suite, bool lost_known)
{
    struct tt_opts o = { .version = version, .suite = suite, .exchanges = 8, .body = 20000 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    /* client events: ClientHello, (Finished...), then one per request; find
     * the requests by counting back from the end (8 requests, close_notify) */
    size_t ncli = 0, nsrv = 0;
    for (size_t e = 0; e < t->nev; e++)
        *(t->ev[e].dir ? &nsrv : &ncli) += 1;
    size_t req3 = ncli - 1 - 8 + 3, resp3 = nsrv - 1 - 8 + 3;
    size_t drop[2][2] = {
        { dir_off(t, 0, req3) + 20, dir_off(t, 0, req3 + 1) + 30 },
        { dir_off(t, 1, resp3) + 9000, dir_off(t, 1, resp3 + 1) + 17000 },
    };
    close_conn(tls, feed_dropped(tls, t, drop, lost_known));
    size_t resp = t->plen[1] / 8, req = t->plen[0] / 8;
    SM_CHECK_EQ_INT(check_gapped(t, 1, 3 * resp), 0);  /* responses 5, 6, 7 at least */
    SM_CHECK_EQ_INT(check_gapped(t, 0, 3 * req), 0);   /* requests 5, 6, 7 at least */
    SM_CHECK(col.gap_at[1] >= 3 * resp);               /* responses 0..2 before it */
    SM_CHECK(col.gap_at[0] >= 3 * req);
    SM_CHECK_EQ_INT(col.closed, 1);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.gaps, 2);
    SM_CHECK_EQ_INT(st.resyncs, 2);
    SM_CHECK_EQ_INT(st.resync_failures, 0);
    SM_CHECK_EQ_INT(st.conns_undecryptable, 0);
    SM_CHECK_EQ_INT(st.auth_failures, 0);
    SM_CHECK(st.records_lost >= 2);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

static int test_gap_tls13_aes128gcm(void) { return gap_case(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", true); }
static int test_gap_tls13_chacha20(void) { return gap_case(TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", true); }
static int test_gap_tls13_unknown_loss(void) { return gap_case(TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", false); }
static int test_gap_tls12_aes128gcm(void) { return gap_case(TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256", true); }
static int test_gap_tls12_aes256gcm_unknown(void)
{
    return gap_case(TLS1_2_VERSION, "ECDHE-RSA-AES256-GCM-SHA384", false);
}
static int test_gap_tls12_chacha20(void) { return gap_case(TLS1_2_VERSION, "ECDHE-RSA-CHACHA20-POLY1305", true); }

/* Small keep-alive exchanges (one record per message): a whole response
 * record and a whole request record lost; the lost count is found from the
 * mean record size. Also writes fuzz seeds with gaps. */
static int gap_small(int version, const char *suite, const char *seed)
{
    struct tt_opts o = { .version = version, .suite = suite, .exchanges = 6 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    size_t ncli = 0, nsrv = 0;
    for (size_t e = 0; e < t->nev; e++)
        *(t->ev[e].dir ? &nsrv : &ncli) += 1;
    size_t req2 = ncli - 1 - 6 + 2, resp2 = nsrv - 1 - 6 + 2;
    size_t drop[2][2] = { { dir_off(t, 0, req2), dir_off(t, 0, req2 + 1) },
                          { dir_off(t, 1, resp2), dir_off(t, 1, resp2 + 2) } };   /* responses 2 and 3 */
    write_seed(t, seed, (const size_t (*)[2])drop);
    close_conn(tls, feed_dropped(tls, t, drop, true));
    size_t req = t->plen[0] / 6, resp = t->plen[1] / 6;
    SM_CHECK_EQ_INT(check_gapped(t, 0, 3 * req), 0);
    SM_CHECK_EQ_INT(check_gapped(t, 1, 2 * resp), 0);
    SM_CHECK_EQ_INT(col.len[0], 5 * req);              /* exactly one request lost */
    SM_CHECK_EQ_INT(col.len[1], 4 * resp);             /* exactly two responses lost */
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.resyncs, 2);
    SM_CHECK_EQ_INT(st.records_lost, 3);
    SM_CHECK_EQ_INT(st.conns_undecryptable, 0);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

static int test_gap_small_tls13_chacha20(void)
{
    return gap_small(TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", "gap-tls13-chacha20");
}
static int test_gap_small_tls12_aes128gcm(void)
{
    return gap_small(TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256", "gap-tls12-aes128gcm");
}

/* TLS 1.3: the client's KeyUpdate record is lost in a gap; the next record
 * opens with the next key generation at sequence number 0. */
static int test_gap_lost_key_update(void)
{
    struct tt_opts o = { .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256", .exchanges = 4,
                         .key_update = true };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    size_t ncli = 0;
    for (size_t e = 0; e < t->nev; e++)
        ncli += t->ev[e].dir == 0;
    /* request 1's event starts with the KeyUpdate record: cut into it */
    size_t req1 = ncli - 1 - 4 + 1, a = dir_off(t, 0, req1) + 3;
    size_t drop[2][2] = { { a, a + 10 }, { 0, 0 } };
    close_conn(tls, feed_dropped(tls, t, drop, true));
    size_t req = t->plen[0] / 4;
    SM_CHECK_EQ_INT(col.gaps[0], 1);                   /* reported, but ... */
    SM_CHECK_EQ_INT(col.len[0], t->plen[0]);           /* only the KeyUpdate was lost */
    SM_CHECK_MEM(col.data[0], t->plain[0], t->plen[0]);
    SM_CHECK(col.gap_at[0] >= req && col.gap_at[0] <= 2 * req);
    SM_CHECK_EQ_INT(col.len[1], t->plen[1]);
    SM_CHECK_MEM(col.data[1], t->plain[1], t->plen[1]);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.resyncs, 1);
    SM_CHECK_EQ_INT(st.conns_undecryptable, 0);
    SM_CHECK(st.key_updates >= 2);                     /* the lost one (found) and the server's */
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* A gap in the clear handshake cannot be recovered: the direction is
 * reported, nothing else is emitted for it. */
static int test_gap_in_handshake(void)
{
    struct tt_opts o = { .version = TLS1_2_VERSION, .suite = "ECDHE-RSA-AES128-GCM-SHA256", .exchanges = 2 };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    size_t drop[2][2] = { { 0, 0 }, { 100, 200 } };    /* inside the ServerHello flight */
    close_conn(tls, feed_dropped(tls, t, drop, true));
    SM_CHECK_EQ_INT(col.len[1], 0);
    SM_CHECK_EQ_INT(col.gaps[1], 1);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.resyncs, 0);
    SM_CHECK(st.conns_broken >= 1);
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

/* TLS 1.3 0-RTT: the early request is not decrypted (no early key
 * schedule); it is reported as a client->server gap naming 0-RTT, counted,
 * and the rest of the connection is decrypted exactly. */
static int test_tls13_early_data(void)
{
    SSL_SESSION *sess = NULL;
    struct tt_opts o1 = { .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256", .exchanges = 1,
                          .session_out = &sess, .early_data = true };
    struct tt_transcript *t1 = calloc(1, sizeof *t1), *t = calloc(1, sizeof *t);
    SM_CHECK(t1 && t && tt_session(t1, &o1) == 0 && sess);
    struct tt_opts o2 = { .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256", .exchanges = 2,
                          .resume = sess, .early_data = true };
    SM_CHECK(tt_session(t, &o2) == 0);
    SM_CHECK(t->reused && t->early_accepted && t->early_len > 0);
    SM_CHECK(strstr(t->keylog, "CLIENT_EARLY_TRAFFIC_SECRET") != NULL);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    close_conn(tls, feed_range(tls, NULL, t, 0, t->nev, 9200));
    SM_CHECK_EQ_INT(col.gaps[0], 1);
    SM_CHECK_EQ_INT(col.gap_at[0], 0);
    SM_CHECK_EQ_STR(col.why, "early data (TLS 1.3 0-RTT) not decrypted");
    SM_CHECK_EQ_INT(col.len[0], t->plen[0] - t->early_len);          /* the requests after it, exact */
    SM_CHECK_MEM(col.data[0], t->plain[0] + t->early_len, col.len[0]);
    SM_CHECK_EQ_INT(col.gaps[1], 0);
    SM_CHECK_EQ_INT(col.len[1], t->plen[1]);
    SM_CHECK_MEM(col.data[1], t->plain[1], t->plen[1]);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.conns_early_data, 1);
    SM_CHECK(st.early_data_skipped >= 1);
    SM_CHECK_EQ_INT(st.conns_undecryptable, 0);
    SM_CHECK_EQ_INT(st.auth_failures, 0);
    agent_tls_filter_free(tls);
    SSL_SESSION_free(sess);
    free(t1->bytes);
    free(t1);
    free(t->bytes);
    free(t);
    return 0;
}

/* TLS 1.2 renegotiation: detected (ClientHello inside the session), the
 * data before it decrypted exactly, then the connection reported
 * undecryptable naming renegotiation: no garbage, no auth failure. */
static int test_tls12_renegotiation(void)
{
    struct tt_opts o = { .version = TLS1_2_VERSION, .suite = "ECDHE-RSA-AES128-GCM-SHA256", .exchanges = 3,
                         .renegotiate = true };
    struct tt_transcript *t = calloc(1, sizeof *t);
    SM_CHECK(t && tt_session(t, &o) == 0);
    write_file(keyfile, t->keylog, t->kllen, "w");
    struct agent_tls_filter *tls = mk_filter(0);
    close_conn(tls, feed_range(tls, NULL, t, 0, t->nev, 9200));
    SM_CHECK_EQ_INT(col.len[0], t->plen[0] / 3);                      /* exchange 0 only */
    SM_CHECK_EQ_INT(col.len[1], t->plen[1] / 3);
    SM_CHECK_MEM(col.data[0], t->plain[0], col.len[0]);
    SM_CHECK_MEM(col.data[1], t->plain[1], col.len[1]);
    SM_CHECK_EQ_INT(col.gaps[0], 1);
    SM_CHECK_EQ_INT(col.gaps[1], 1);
    SM_CHECK_EQ_STR(col.why, "tls: renegotiation");
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    SM_CHECK_EQ_INT(st.renegotiations, 1);
    SM_CHECK_EQ_INT(st.conns_unsupported, 1);
    SM_CHECK_EQ_INT(st.auth_failures, 0);
    SM_CHECK_EQ_STR(st.last_unsupported, "TLS 1.2 renegotiation");
    agent_tls_filter_free(tls);
    free(t->bytes);
    free(t);
    return 0;
}

static void cleanup(void) { unlink(keyfile); }

int main(int argc, char **argv)
{
    snprintf(keyfile, sizeof keyfile, "/tmp/test_tls_keys.%d", (int)getpid());
    atexit(cleanup);
    static const struct sm_test_case tcs[] = {
                 SM_TC(test_tls13_aes128gcm), SM_TC(test_tls13_aes256gcm), SM_TC(test_tls13_chacha20),
                 SM_TC(test_tls12_aes128gcm), SM_TC(test_tls12_aes256gcm), SM_TC(test_tls12_chacha20),
                 SM_TC(test_tls13_key_update), SM_TC(test_tls13_resumption), SM_TC(test_tls12_resumption),
                 SM_TC(test_tls12_resumption_ticket_cache), SM_TC(test_tls12_resumption_sid_cache),
                 SM_TC(test_late_keys), SM_TC(test_missing_keys), SM_TC(test_pending_bound),
                 SM_TC(test_auth_failure), SM_TC(test_mid_stream), SM_TC(test_passthrough),
                 SM_TC(test_keylog_follow), SM_TC(test_unsupported_suite), SM_TC(test_gap_tls13_aes128gcm),
                 SM_TC(test_gap_tls13_chacha20), SM_TC(test_gap_tls13_unknown_loss),
                 SM_TC(test_gap_tls12_aes128gcm), SM_TC(test_gap_tls12_aes256gcm_unknown),
                 SM_TC(test_gap_tls12_chacha20), SM_TC(test_gap_lost_key_update), SM_TC(test_gap_in_handshake),
                 SM_TC(test_tls13_early_data), SM_TC(test_tls12_renegotiation),
                 SM_TC(test_gap_small_tls13_chacha20), SM_TC(test_gap_small_tls12_aes128gcm),
                 SM_TC(test_pending_total_bound) };
    return sm_test_run(tcs, sizeof tcs / sizeof tcs[0], argc, argv);
}
