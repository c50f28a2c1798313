/* TLS stream filter: record layer, handshake parsing, key matching, waiting
 * for late secrets, decryption to the downstream callbacks. See tls.h and
 * docs/tls.md. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include "tls/tls_int.h"

#define HS_BODY_MAX 65536u       /* ClientHello/ServerHello/KeyUpdate bodies we collect */
#define SESS_CACHE 1024u         /* TLS 1.2 sessions remembered for resumption */
/* Resynchronisation after a capture gap (docs/tls.md "Capture gaps"). */
#define RESYNC_BUF (2u * (5u + TLS_MAX_CIPHER + 256u))  /* bytes held while looking for a record */
#define RESYNC_SCAN_MAX (4u << 20)     /* give up after this many bytes without a record */
#define RESYNC_WINDOW_MAX 65536u       /* sequence numbers tried per candidate record */
#define RESYNC_TRIAL_BYTES (16u << 20) /* AEAD trial bytes per gap (~5-10 ms of CPU) */
#define RESYNC_KU_WINDOW 1024u         /* 1.3: sequence numbers tried with the next key generation */

enum cstate { C_DETECT, C_CLEAR, C_TLS, C_WAIT, C_DEAD };
enum epoch { EP_CLEAR, EP_HS, EP_APP };

struct hs_parser {               /* handshake messages across records */
    uint8_t hdr[4];
    size_t hlen;
    uint32_t left;               /* body bytes still to come */
    bool collect;
    uint8_t *body;
    size_t blen;
};

struct dir_state {
    uint8_t hdr[5];
    size_t hlen;                 /* record header bytes held */
    uint8_t *rbuf;               /* record body being assembled */
    size_t rlen, rcap;
    enum epoch epoch;
    bool switch_after;           /* 1.3: Finished seen in this record -> application keys */
    bool update_after;           /* 1.3: KeyUpdate seen in this record */
    struct tls_aead hs, app;     /* 1.3 handshake / application (1.2: app only) */
    struct hs_parser hsp;
    bool dead;
    uint32_t avg_rec;            /* running mean of record sizes (header included) */
    bool have_en;                /* 1.2 GCM: explicit nonce of the last record ... */
    uint64_t last_en, en_seq;    /* ... and its sequence number */
    /* after a capture gap: looking for the next record (resync) */
    bool resync;
    uint8_t *sbuf;               /* bytes after the gap (RESYNC_BUF) */
    size_t slen;
    uint64_t skip;               /* rest of the record the gap cut (lost known) */
    uint64_t seq_min, seq_est, win;
    uint64_t scanned, trial_bytes;
};

struct chunk {                   /* held while waiting for secrets */
    struct chunk *next;
    uint8_t dir;
    bool gap;
    uint64_t ts_ns, lost;
    const char *why;
    size_t n;
    uint8_t data[];
};

struct conn {
    struct agent_tls_filter *tls;
    void *down;
    enum cstate st;
    struct dir_state d[2];
    bool have_ch, have_sh, tls13, keys, early_data, early_reported, reneg;
    uint8_t crandom[32], srandom[32];
    uint8_t csid[32], csidlen;
    uint8_t ssid[32], ssidlen;   /* ServerHello session id */
    bool resumed12;              /* TLS 1.2 abbreviated handshake */
    bool ch_ticket, nst_ticket;  /* ClientHello offered / server issued a ticket */
    uint8_t ch_ticket_h[32], nst_ticket_h[32];   /* SHA-256 of the tickets */
    uint8_t master[48];          /* TLS 1.2, once known: for resumed sessions */
    bool have_master;
    uint16_t suite_id;
    const struct tls_suite *suite;
    struct chunk *qhead, *qtail;
    uint64_t qbytes, deadline;
    bool closing;
    enum agent_close_reason close_reason;
    uint64_t close_ts;
    struct conn *wprev, *wnext;  /* waiting list */
    char name[112];
};

/* TLS 1.2 resumption without a key log line for the new client random (a
 * key source that logs only full handshakes): the master secret of earlier
 * sessions by session id and by ticket. */
struct sess_entry {
    uint8_t id[32];              /* session id, or SHA-256 of a ticket */
    uint8_t idlen;
    bool ticket;
    uint8_t master[48];
};

struct agent_tls_filter {
    struct agent_tls_cfg cfg;
    struct agent_stream_cb down, up;
    struct tls_keylog kl;
    struct agent_tls_stats st;
    uint64_t last_poll;
    struct conn *waiting;
    struct sess_entry sess[SESS_CACHE];
    unsigned sess_next;
    uint8_t out[TLS_MAX_CIPHER + 256];
};

static const uint8_t hrr_random[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
};

static uint64_t now_ns(const struct agent_tls_filter *tls)
{
    return tls->cfg.clock_ns ? tls->cfg.clock_ns() : sm_now_ns();
}

void agent_tls_cfg_init(struct agent_tls_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->key_wait_ns = 5000000000ull;
    cfg->max_pending = 1u << 20;
    cfg->max_pending_total = 256u << 20;
    cfg->max_keys = 65536;
    cfg->poll_interval_ns = 20000000ull;
}

/* ---- waiting list ------------------------------------------------------ */

static void wait_add(struct conn *c)
{
    struct agent_tls_filter *tls = c->tls;
    c->wprev = NULL;
    c->wnext = tls->waiting;
    if (tls->waiting)
        tls->waiting->wprev = c;
    tls->waiting = c;
}

static void wait_del(struct conn *c)
{
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else if (c->tls->waiting == c)
        c->tls->waiting = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    c->wprev = c->wnext = NULL;
}

static void queue_free(struct conn *c)
{
    for (struct chunk *k = c->qhead, *n; k; k = n) {
        n = k->next;
        sm_free(k);
    }
    c->tls->st.pending_bytes -= c->qbytes;
    c->qhead = c->qtail = NULL;
    c->qbytes = 0;
}

static void conn_free(struct conn *c)
{
    queue_free(c);
    for (int i = 0; i < 2; i++) {
        sm_free(c->d[i].rbuf);
        sm_free(c->d[i].sbuf);
        sm_free(c->d[i].hsp.body);
        tls_aead_clear(&c->d[i].hs);
        tls_aead_clear(&c->d[i].app);
    }
    OPENSSL_cleanse(c, sizeof *c);
    sm_free(c);
}

/* ---- undecryptable ------------------------------------------------------ */

static void kill_dir(struct conn *c, int dir, uint64_t ts, const char *why)
{
    if (c->d[dir].dead)
        return;
    c->d[dir].dead = true;
    c->tls->down.gap(c->tls->down.arg, c->down, (enum agent_dir)dir, 0, ts, why);
}

/* The whole connection cannot be decrypted: one gap per direction downstream
 * (the pipeline turns it into a ConnectionException), counted, logged. */
static void undecryptable(struct conn *c, uint64_t ts, const char *why, uint64_t *counter, const char *detail)
{
    struct agent_tls_filter *tls = c->tls;
    if (c->st == C_DEAD)
        return;
    if (c->st == C_WAIT)
        wait_del(c);
    for (struct chunk *k = c->qhead; k; k = k->next)
        tls->st.bytes_dropped += k->n;
    queue_free(c);
    c->st = C_DEAD;
    tls->st.conns_undecryptable++;
    if (counter)
        (*counter)++;
    sm_log_warn("tls: %s: undecryptable (%s%s%s)", c->name, why, detail ? ": " : "", detail ? detail : "");
    kill_dir(c, AGENT_C2S, ts, why);
    kill_dir(c, AGENT_S2C, ts, why);
}

/* ---- keys --------------------------------------------------------------- */

static bool sec_has(const struct tls_keys *k, int s) { return k->have & (1u << s); }

static void sess_put(struct agent_tls_filter *tls, const uint8_t *id, size_t idlen, bool ticket,
                     const uint8_t master[48])
{
    struct sess_entry *e = &tls->sess[tls->sess_next++ % SESS_CACHE];
    memcpy(e->id, id, idlen);
    e->idlen = (uint8_t)idlen;
    e->ticket = ticket;
    memcpy(e->master, master, 48);
}

static const uint8_t *sess_get(const struct agent_tls_filter *tls, const uint8_t *id, size_t idlen, bool ticket)
{
    for (unsigned i = 0; i < SESS_CACHE; i++) {
        const struct sess_entry *e = &tls->sess[i];
        if (e->idlen && e->idlen == idlen && e->ticket == ticket && !memcmp(e->id, id, idlen))
            return e->master;
    }
    return NULL;
}

/* A TLS 1.2 connection's master secret is known: remember it for sessions
 * that resume this one. */
static void sess_remember(struct conn *c)
{
    if (!c->have_master)
        return;
    if (c->ssidlen)
        sess_put(c->tls, c->ssid, c->ssidlen, false, c->master);
    if (c->nst_ticket)
        sess_put(c->tls, c->nst_ticket_h, 32, true, c->master);
}

static int install12(struct conn *c, const uint8_t *master)
{
    int rc = tls12_aead_set(&c->d[AGENT_C2S].app, &c->d[AGENT_S2C].app, c->suite, master, 48, c->crandom,
                            c->srandom);
    if (rc == SM_OK) {
        memcpy(c->master, master, 48);
        c->have_master = true;
        sess_remember(c);
    }
    return rc;
}

/* Installs the connection's secrets if the key log has them. */
static bool try_keys(struct conn *c)
{
    if (c->keys)
        return true;
    if (!c->have_ch || !c->have_sh || !c->suite)
        return false;
    const struct tls_keys *k = tls_keylog_find(&c->tls->kl, c->crandom);
    if (!k && !c->tls13 && c->resumed12) {
        const uint8_t *m = c->ch_ticket ? sess_get(c->tls, c->ch_ticket_h, 32, true) : NULL;
        if (!m)
            m = sess_get(c->tls, c->csid, c->csidlen, false);
        if (m && install12(c, m) == SM_OK) {
            c->keys = true;
            c->tls->st.conns_decrypted++;
            return true;
        }
    }
    if (!k)
        return false;
    struct dir_state *cd = &c->d[AGENT_C2S], *sd = &c->d[AGENT_S2C];
    int rc;
    if (c->tls13) {
        if (!sec_has(k, TLS_SEC_CTS0) || !sec_has(k, TLS_SEC_STS0))
            return false;
        rc = tls13_aead_set(&cd->app, c->suite, k->sec[TLS_SEC_CTS0], k->len[TLS_SEC_CTS0]);
        if (rc == SM_OK)
            rc = tls13_aead_set(&sd->app, c->suite, k->sec[TLS_SEC_STS0], k->len[TLS_SEC_STS0]);
        if (rc == SM_OK && sec_has(k, TLS_SEC_CHS))
            rc = tls13_aead_set(&cd->hs, c->suite, k->sec[TLS_SEC_CHS], k->len[TLS_SEC_CHS]);
        if (rc == SM_OK && sec_has(k, TLS_SEC_SHS))
            rc = tls13_aead_set(&sd->hs, c->suite, k->sec[TLS_SEC_SHS], k->len[TLS_SEC_SHS]);
    } else {
        if (!sec_has(k, TLS_SEC_MASTER))
            return false;
        rc = install12(c, k->sec[TLS_SEC_MASTER]);
    }
    if (rc != SM_OK) {
        sm_log_warn("tls: %s: key schedule failed: %s", c->name, sm_strerror(rc));
        return false;
    }
    c->keys = true;
    c->tls->st.conns_decrypted++;
    return true;
}

static void poll_keylog(struct agent_tls_filter *tls, uint64_t now)
{
    tls->last_poll = now;
    tls_keylog_poll(&tls->kl);
}

/* ---- handshake ---------------------------------------------------------- */

struct rd { const uint8_t *p; size_t n; bool bad; };

static uint32_t rd_u(struct rd *r, size_t w)
{
    uint32_t v = 0;
    if (r->n < w) {
        r->bad = true;
        r->n = 0;
        return 0;
    }
    for (size_t i = 0; i < w; i++)
        v = v << 8 | r->p[i];
    if (w) {
        r->p += w;
        r->n -= w;
    }
    return v;
}

static const uint8_t *rd_take(struct rd *r, size_t w)
{
    if (r->n < w) {
        r->bad = true;
        r->n = 0;
        return NULL;
    }
    const uint8_t *p = r->p;
    if (w) {
        r->p += w;
        r->n -= w;
    }
    return p;
}

/* The next w bytes as a reader of their own (empty and bad if short). */
static struct rd rd_sub(struct rd *r, size_t w)
{
    const uint8_t *p = rd_take(r, w);
    struct rd s = { p, r->bad ? 0 : w, r->bad };
    return s;
}

static void on_client_hello(struct conn *c, const uint8_t *b, size_t n, uint64_t ts)
{
    struct rd r = { b, n, false };
    rd_u(&r, 2);
    const uint8_t *rnd = rd_take(&r, 32);
    uint32_t sl = rd_u(&r, 1);
    const uint8_t *sid = rd_take(&r, sl);
    rd_take(&r, rd_u(&r, 2));       /* cipher suites */
    rd_take(&r, rd_u(&r, 1));       /* compression */
    if (r.bad || sl > 32) {
        undecryptable(c, ts, "tls: malformed ClientHello", &c->tls->st.conns_broken, NULL);
        return;
    }
    if (r.n >= 2) {
        struct rd e = rd_sub(&r, rd_u(&r, 2));
        while (e.n >= 4) {
            uint32_t type = rd_u(&e, 2), len = rd_u(&e, 2);
            if (!rd_take(&e, len))
                break;
            if (type == 42 && !c->early_data) {
                c->early_data = true;
                c->tls->st.conns_early_data++;
            }
            else if (type == 35 && len) {   /* session_ticket offered */
                c->ch_ticket = EVP_Digest(e.p - len, len, c->ch_ticket_h, NULL, EVP_sha256(), NULL) == 1;
            }
        }
    }
    memcpy(c->crandom, rnd, 32);
    memcpy(c->csid, sid, sl);
    c->csidlen = (uint8_t)sl;
    c->have_ch = true;
}

static void on_server_hello(struct conn *c, const uint8_t *b, size_t n, uint64_t ts)
{
    struct agent_tls_filter *tls = c->tls;
    struct rd r = { b, n, false };
    uint32_t ver = rd_u(&r, 2);
    const uint8_t *rnd = rd_take(&r, 32);
    uint32_t sl = rd_u(&r, 1);
    const uint8_t *sid = rd_take(&r, sl);
    uint32_t suite = rd_u(&r, 2);
    rd_u(&r, 1);
    bool psk = false;
    if (!r.bad && r.n >= 2) {
        struct rd e = rd_sub(&r, rd_u(&r, 2));
        while (!e.bad && e.n >= 4) {
            uint32_t type = rd_u(&e, 2), len = rd_u(&e, 2);
            struct rd x = rd_sub(&e, len);
            if (type == 43)
                ver = rd_u(&x, 2);
            else if (type == 41)
                psk = true;
        }
    }
    if (r.bad || !rnd || sl > 32) {
        undecryptable(c, ts, "tls: malformed ServerHello", &tls->st.conns_broken, NULL);
        return;
    }
    if (!memcmp(rnd, hrr_random, 32))
        return;                     /* HelloRetryRequest: a second ClientHello follows */
    if (!c->have_ch) {
        undecryptable(c, ts, "tls: no handshake", &tls->st.conns_no_handshake, "ServerHello without ClientHello");
        return;
    }
    memcpy(c->srandom, rnd, 32);
    c->suite_id = (uint16_t)suite;
    c->have_sh = true;
    char name[64];
    if (ver != 0x0304 && ver != 0x0303) {
        snprintf(name, sizeof name, "TLS version 0x%04x", ver);
        snprintf(tls->st.last_unsupported, sizeof tls->st.last_unsupported, "%s", name);
        undecryptable(c, ts, "tls: unsupported version", &tls->st.conns_unsupported, name);
        return;
    }
    c->tls13 = ver == 0x0304;
    const struct tls_suite *s = tls_suite_find((uint16_t)suite);
    tls_suite_name((uint16_t)suite, name, sizeof name);
    if (!s || s->tls13 != c->tls13) {
        snprintf(tls->st.last_unsupported, sizeof tls->st.last_unsupported, "%s", name);
        undecryptable(c, ts, "tls: unsupported cipher suite", &tls->st.conns_unsupported, name);
        return;
    }
    c->suite = s;
    memcpy(c->ssid, sid, sl);
    c->ssidlen = (uint8_t)sl;
    c->resumed12 = !c->tls13 && sl && sl == c->csidlen && !memcmp(sid, c->csid, sl);
    if (c->tls13 ? psk : c->resumed12)
        tls->st.conns_resumed++;
    if (c->tls13) {
        c->d[AGENT_C2S].epoch = EP_HS;
        c->d[AGENT_S2C].epoch = EP_HS;
    }
}

static void on_handshake_msg(struct conn *c, int dir, uint8_t type, const uint8_t *b, size_t n, uint64_t ts)
{
    struct dir_state *d = &c->d[dir];
    if (d->epoch == EP_CLEAR) {
        if (dir == AGENT_C2S && type == 1)
            on_client_hello(c, b, n, ts);
        else if (dir == AGENT_S2C && type == 2)
            on_server_hello(c, b, n, ts);
        else if (dir == AGENT_S2C && type == 4 && !c->tls13 && n >= 6) {   /* 1.2 NewSessionTicket */
            size_t tl = (size_t)b[4] << 8 | b[5];
            if (tl && 6 + tl <= n &&
                EVP_Digest(b + 6, tl, c->nst_ticket_h, NULL, EVP_sha256(), NULL) == 1) {
                c->nst_ticket = true;
                sess_remember(c);
            }
        } else if (dir == AGENT_C2S && !c->have_ch)
            undecryptable(c, ts, "tls: no handshake", &c->tls->st.conns_no_handshake, NULL);
        return;
    }
    if (!c->tls13) {                /* 1.2 Finished: not needed; renegotiation: detected */
        if (d->epoch == EP_APP && dir == AGENT_C2S && type == 1 && !c->reneg) {
            c->reneg = true;
            c->tls->st.renegotiations++;
            sm_log_warn("tls: %s: TLS 1.2 renegotiation (ClientHello inside the session); not followed: "
                        "the connection is undecryptable from its ChangeCipherSpec on", c->name);
        }
        return;
    }
    if (d->epoch == EP_HS && type == 20)
        d->switch_after = true;
    else if (d->epoch == EP_APP && type == 24)
        d->update_after = true;
}

static bool hs_collects(uint8_t type) { return type == 1 || type == 2 || type == 4 || type == 24; }

static void hs_feed(struct conn *c, int dir, const uint8_t *p, size_t n, uint64_t ts)
{
    struct hs_parser *h = &c->d[dir].hsp;
    while (n && c->st != C_DEAD) {
        if (h->hlen < 4) {
            size_t t = 4 - h->hlen < n ? 4 - h->hlen : n;
            memcpy(h->hdr + h->hlen, p, t);
            h->hlen += t;
            p += t;
            n -= t;
            if (h->hlen < 4)
                return;
            h->left = (uint32_t)h->hdr[1] << 16 | (uint32_t)h->hdr[2] << 8 | h->hdr[3];
            h->collect = hs_collects(h->hdr[0]);
            h->blen = 0;
            if (h->collect && h->left > HS_BODY_MAX) {
                undecryptable(c, ts, "tls: malformed handshake", &c->tls->st.conns_broken, "oversized message");
                return;
            }
            if (h->collect && !(h->body = sm_malloc(h->left ? h->left : 1))) {
                undecryptable(c, ts, "tls: memory", &c->tls->st.conns_broken, NULL);
                return;
            }
        }
        size_t t = h->left < n ? h->left : n;
        if (h->collect) {
            memcpy(h->body + h->blen, p, t);
            h->blen += t;
        }
        p += t;
        n -= t;
        h->left -= (uint32_t)t;
        if (!h->left) {
            h->hlen = 0;
            on_handshake_msg(c, dir, h->hdr[0], h->collect ? h->body : NULL, h->blen, ts);
            sm_free(h->body);
            h->body = NULL;
        }
    }
}

/* ---- records ------------------------------------------------------------ */

enum { REC_OK, REC_NEED_KEYS, REC_FAIL };

static void deliver(struct conn *c, int dir, uint8_t type, const uint8_t *p, size_t n, uint64_t ts)
{
    struct agent_tls_filter *tls = c->tls;
    if (type == 23) {
        if (n) {
            tls->st.bytes_plaintext += n;
            tls->down.data(tls->down.arg, c->down, (enum agent_dir)dir, p, n, ts);
        }
    } else if (type == 22) {
        hs_feed(c, dir, p, n, ts);
    }
    /* alerts (21) and others: nothing for HTTP */
}

/* 0-RTT early data (TLS 1.3): not decrypted; one gap downstream (so the
 * request it carried is not silently missing), counted and logged. */
static void early_data(struct conn *c, size_t n, uint64_t ts)
{
    struct agent_tls_filter *tls = c->tls;
    tls->st.early_data_skipped++;
    if (c->early_reported)
        return;
    c->early_reported = true;
    sm_log_warn("tls: %s: TLS 1.3 0-RTT early data not decrypted (%zu bytes in the first record)", c->name, n);
    tls->down.gap(tls->down.arg, c->down, AGENT_C2S, n, ts, "early data (TLS 1.3 0-RTT) not decrypted");
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* An application record opened: what resynchronisation needs later. */
static void app_opened(struct dir_state *d, const uint8_t *body, size_t n)
{
    uint32_t sz = (uint32_t)n + 5;
    d->avg_rec = d->avg_rec ? d->avg_rec - d->avg_rec / 8 + sz / 8 : sz;
    if (d->app.suite->explicit_nonce) {
        d->last_en = be64(body);
        d->en_seq = d->app.seq - 1;
        d->have_en = true;
    }
}

static int record(struct conn *c, int dir, const uint8_t *hdr, const uint8_t *body, size_t n, uint64_t ts)
{
    struct agent_tls_filter *tls = c->tls;
    struct dir_state *d = &c->d[dir];
    uint8_t type = hdr[0];
    tls->st.records++;
    if (d->epoch == EP_CLEAR) {
        if (type == 20 && c->have_sh && !c->tls13) {     /* 1.2 ChangeCipherSpec */
            if (!try_keys(c))
                return REC_NEED_KEYS;
            d->epoch = EP_APP;
            d->hsp.hlen = 0;
            return REC_OK;
        }
        if (type == 22) {
            hs_feed(c, dir, body, n, ts);
            return REC_OK;
        }
        if (dir == AGENT_C2S && c->early_data && c->have_ch && !c->have_sh && (type == 23 || type == 20)) {
            if (type == 23)         /* 0-RTT right after the ClientHello (and its compatibility CCS) */
                early_data(c, n, ts);
            return REC_OK;
        }
        if (type == 23 || (type == 20 && !c->have_sh)) {
            if (!c->have_ch)
                undecryptable(c, ts, "tls: no handshake", &tls->st.conns_no_handshake, NULL);
            else
                undecryptable(c, ts, "tls: malformed", &tls->st.conns_broken, "encrypted record before keys change");
            return REC_FAIL;
        }
        return REC_OK;
    }
    if (c->tls13 && type != 23)     /* middlebox-compatibility CCS, plaintext alerts */
        return REC_OK;
    if (!c->tls13 && type == 20) {  /* ChangeCipherSpec inside the session: renegotiation */
        if (!c->reneg) {
            c->reneg = true;
            tls->st.renegotiations++;
        }
        undecryptable(c, ts, "tls: renegotiation", &tls->st.conns_unsupported,
                      "TLS 1.2 renegotiation is not followed");
        snprintf(tls->st.last_unsupported, sizeof tls->st.last_unsupported, "TLS 1.2 renegotiation");
        return REC_FAIL;
    }
    if (!try_keys(c))
        return REC_NEED_KEYS;
    uint8_t itype = 0;
    size_t pl = 0;
    if (d->epoch == EP_HS) {
        if (d->hs.ready && tls_aead_open(&d->hs, hdr, body, n, tls->out, &pl, &itype) == SM_OK) {
            tls->st.records_decrypted++;
            d->switch_after = false;
            deliver(c, dir, itype, tls->out, pl, ts);
            if (c->st == C_DEAD)
                return REC_FAIL;
            if (d->switch_after) {
                d->epoch = EP_APP;
                d->hsp.hlen = 0;
            }
            return REC_OK;
        }
        if (tls_aead_open(&d->app, hdr, body, n, tls->out, &pl, &itype) == SM_OK) {
            d->epoch = EP_APP;      /* handshake secrets absent or a message we did not see */
            d->hsp.hlen = 0;
        } else if (dir == AGENT_C2S && c->early_data && d->hs.ready) {
            early_data(c, n, ts);   /* neither handshake nor application key: 0-RTT */
            return REC_OK;
        } else if (!d->hs.ready) {
            return REC_OK;          /* a handshake (or 0-RTT) record we cannot open: skip */
        } else {
            goto authfail;
        }
    } else if (tls_aead_open(&d->app, hdr, body, n, tls->out, &pl, &itype) != SM_OK) {
        goto authfail;
    }
    app_opened(d, body, n);
    tls->st.records_decrypted++;
    d->update_after = false;
    deliver(c, dir, itype, tls->out, pl, ts);
    if (d->update_after && c->st != C_DEAD) {
        if (tls13_aead_update(&d->app) != SM_OK)
            goto authfail;
        tls->st.key_updates++;
    }
    return c->st == C_DEAD ? REC_FAIL : REC_OK;
authfail:
    tls->st.auth_failures++;
    undecryptable(c, ts, "tls: authentication failure", NULL, "wrong secrets or corrupted record");
    return REC_FAIL;
}

static int enqueue(struct conn *c, int dir, const uint8_t *a, size_t an, const uint8_t *b, size_t bn, uint64_t ts,
                   bool gap, uint64_t lost, const char *why)
{
    struct agent_tls_filter *tls = c->tls;
    if (c->qbytes + an + bn > tls->cfg.max_pending ||
        (tls->cfg.max_pending_total && tls->st.pending_bytes + an + bn > tls->cfg.max_pending_total)) {
        tls->st.bytes_dropped += an + bn;
        undecryptable(c, ts, "tls: buffer bound", &tls->st.conns_pending_full, "secrets did not arrive in time");
        return SM_EFULL;
    }
    struct chunk *k = sm_malloc(sizeof *k + an + bn);
    if (!k) {
        undecryptable(c, ts, "tls: memory", &tls->st.conns_broken, NULL);
        return SM_ENOMEM;
    }
    k->next = NULL;
    k->dir = (uint8_t)dir;
    k->gap = gap;
    k->lost = lost;
    k->why = why;
    k->ts_ns = ts;
    k->n = an + bn;
    if (an)
        memcpy(k->data, a, an);
    if (bn)
        memcpy(k->data + an, b, bn);
    if (c->qtail)
        c->qtail->next = k;
    else
        c->qhead = k;
    c->qtail = k;
    c->qbytes += k->n;
    tls->st.pending_bytes += k->n;
    return SM_OK;
}

static void start_wait(struct conn *c)
{
    c->st = C_WAIT;
    c->deadline = now_ns(c->tls) + c->tls->cfg.key_wait_ns;
    wait_add(c);
}

static void resync_feed(struct conn *c, int dir, const uint8_t *p, size_t n, uint64_t ts);

/* Ciphertext of one direction, in stream order. */
static void feed(struct conn *c, int dir, const uint8_t *p, size_t n, uint64_t ts)
{
    struct agent_tls_filter *tls = c->tls;
    struct dir_state *d = &c->d[dir];
    while (n) {
        if (c->st == C_WAIT) {
            enqueue(c, dir, NULL, 0, p, n, ts, false, 0, NULL);
            return;
        }
        if (c->st == C_DEAD || d->dead) {
            tls->st.bytes_dropped += n;
            return;
        }
        if (d->resync) {
            resync_feed(c, dir, p, n, ts);
            return;
        }
        if (d->hlen < 5) {
            size_t t = 5 - d->hlen < n ? 5 - d->hlen : n;
            memcpy(d->hdr + d->hlen, p, t);
            d->hlen += t;
            p += t;
            n -= t;
            if (d->hlen < 5)
                return;
            size_t len = (size_t)d->hdr[3] << 8 | d->hdr[4];
            if (d->hdr[0] < 20 || d->hdr[0] > 24 || d->hdr[1] != 3 || len > TLS_MAX_CIPHER + 256) {
                undecryptable(c, ts, "tls: malformed", &tls->st.conns_broken, "bad record header");
                continue;
            }
            d->rlen = 0;
        }
        size_t len = (size_t)d->hdr[3] << 8 | d->hdr[4];
        const uint8_t *body;
        if (d->rlen == 0 && n >= len) {          /* whole record in this chunk: no copy */
            body = p;
            p += len;
            n -= len;
        } else {
            if (d->rcap < len) {
                uint8_t *nb = sm_realloc(d->rbuf, len);
                if (!nb) {
                    undecryptable(c, ts, "tls: memory", &tls->st.conns_broken, NULL);
                    continue;
                }
                d->rbuf = nb;
                d->rcap = len;
            }
            size_t t = len - d->rlen < n ? len - d->rlen : n;
            memcpy(d->rbuf + d->rlen, p, t);
            d->rlen += t;
            p += t;
            n -= t;
            if (d->rlen < len)
                return;
            body = d->rbuf;
        }
        uint8_t hdr[5];
        memcpy(hdr, d->hdr, 5);
        d->hlen = 0;
        d->rlen = 0;
        if (record(c, dir, hdr, body, len, ts) == REC_NEED_KEYS) {
            /* hold this record and everything after it until the secrets come */
            poll_keylog(tls, now_ns(tls));
            if (try_keys(c)) {      /* just written: body is still intact */
                record(c, dir, hdr, body, len, ts);
                continue;
            }
            start_wait(c);
            uint8_t *tmp = sm_malloc(5 + len);
            if (!tmp) {
                undecryptable(c, ts, "tls: memory", &tls->st.conns_broken, NULL);
                return;
            }
            memcpy(tmp, hdr, 5);
            memcpy(tmp + 5, body, len);
            enqueue(c, dir, tmp, 5 + len, p, n, ts, false, 0, NULL);
            sm_free(tmp);
            return;
        }
    }
}

/* ---- capture gaps: record resynchronisation ------------------------------
 *
 * A gap loses record boundaries and, for the nonce (TLS 1.3, ChaCha20) and
 * the additional data (all suites), the record sequence number. After a gap
 * the bytes are scanned for a plausible record header (type, version 3.3,
 * length within bounds); a candidate is accepted only if it opens with the
 * direction's key at a sequence number in a bounded window (the AEAD tag
 * makes a false acceptance practically impossible). The window starts at the
 * number of records the gap must have cut and is searched outward from an
 * estimate: lost bytes / mean record size (the packet engines report lost
 * bytes exactly); for TLS 1.2 GCM the explicit nonce's advance is tried
 * first (OpenSSL and JSSE increment it per record). TLS 1.3: a KeyUpdate lost
 * in the gap is covered by trying the next key generation from 0. The gap
 * itself goes downstream at once, so the HTTP message it cut is reported
 * broken and nothing is glued across it. */

static bool plausible_header(const struct conn *c, const uint8_t *h)
{
    if (h[1] != 3 || h[2] != 3)
        return false;
    size_t len = (size_t)h[3] << 8 | h[4];
    const struct tls_suite *s = c->suite;
    if (c->tls13)
        return h[0] == 23 && len >= 17 && len <= TLS_MAX_PLAIN + 256;
    size_t over = 16 + (s->explicit_nonce ? 8 : 0);
    return h[0] >= 21 && h[0] <= 23 && len >= over && len <= TLS_MAX_CIPHER;
}

static bool open_at(struct conn *c, struct dir_state *d, struct tls_aead *a, uint64_t seq, const uint8_t *hdr,
                    const uint8_t *body, size_t n, size_t *pl, uint8_t *itype)
{
    uint64_t keep = a->seq;
    a->seq = seq;
    d->trial_bytes += n;
    c->tls->st.resync_trials++;
    if (tls_aead_open(a, hdr, body, n, c->tls->out, pl, itype) == SM_OK)
        return true;
    a->seq = keep;
    return false;
}

/* 1 opened (d->app advanced, plaintext in tls->out), 0 not this candidate,
 * -1 trial budget spent. */
static int resync_try(struct conn *c, int dir, const uint8_t *hdr, const uint8_t *body, size_t n, size_t *pl,
                      uint8_t *itype)
{
    struct dir_state *d = &c->d[dir];
    struct tls_aead *a = &d->app;
    uint64_t lo = d->seq_min, hi = d->seq_min + d->win;
    if (a->suite->explicit_nonce && d->have_en && n >= 8) {
        uint64_t s = d->en_seq + (be64(body) - d->last_en);
        if (s >= lo && s < hi && open_at(c, d, a, s, hdr, body, n, pl, itype))
            return 1;
    }
    uint64_t est = d->seq_est < lo ? lo : d->seq_est >= hi ? hi - 1 : d->seq_est;
    for (uint64_t k = 0;; k++) {
        bool any = false;
        if (est + k < hi) {
            any = true;
            if (open_at(c, d, a, est + k, hdr, body, n, pl, itype))
                return 1;
        }
        if (k && est >= lo + k) {
            any = true;
            if (open_at(c, d, a, est - k, hdr, body, n, pl, itype))
                return 1;
        }
        if (!any)
            break;
        if (d->trial_bytes > RESYNC_TRIAL_BYTES)
            return -1;
    }
    if (c->tls13 && a->slen) {      /* a KeyUpdate lost in the gap: next generation */
        struct tls_aead nx;
        memset(&nx, 0, sizeof nx);
        nx.suite = a->suite;
        nx.ready = true;
        memcpy(nx.secret, a->secret, a->slen);
        nx.slen = a->slen;
        int ok = 0;
        if (tls13_aead_update(&nx) == SM_OK) {
            uint64_t w = d->win < RESYNC_KU_WINDOW ? d->win : RESYNC_KU_WINDOW;
            for (uint64_t s = 0; s < w && !ok && d->trial_bytes <= RESYNC_TRIAL_BYTES; s++)
                ok = open_at(c, d, &nx, s, hdr, body, n, pl, itype);
        }
        if (ok) {
            tls_aead_clear(a);
            *a = nx;
            c->tls->st.key_updates++;
            return 1;
        }
        tls_aead_clear(&nx);
    }
    return d->trial_bytes > RESYNC_TRIAL_BYTES ? -1 : 0;
}

static void resync_fail(struct conn *c, int dir, uint64_t ts, const char *detail)
{
    struct agent_tls_filter *tls = c->tls;
    struct dir_state *d = &c->d[dir];
    d->resync = false;
    tls->st.bytes_dropped += d->slen;
    d->slen = 0;
    sm_free(d->sbuf);
    d->sbuf = NULL;
    tls->st.resync_failures++;
    tls->st.conns_broken++;
    sm_log_warn("tls: %s: no record found after a capture gap (%s), direction %s no longer decrypted", c->name,
                detail, dir == AGENT_C2S ? "client->server" : "server->client");
    kill_dir(c, dir, ts, "tls: resync failed");
}

/* Bytes after a gap, until a record opens again. */
static void resync_feed(struct conn *c, int dir, const uint8_t *p, size_t n, uint64_t ts)
{
    struct agent_tls_filter *tls = c->tls;
    struct dir_state *d = &c->d[dir];
    if (d->skip) {                  /* the rest of the record the gap cut */
        size_t t = d->skip < n ? (size_t)d->skip : n;
        d->skip -= t;
        tls->st.bytes_dropped += t;
        p += t;
        n -= t;
    }
    if (!d->sbuf && n && !(d->sbuf = sm_malloc(RESYNC_BUF))) {
        resync_fail(c, dir, ts, "out of memory");
        return;
    }
    while (n) {
        size_t t = RESYNC_BUF - d->slen < n ? RESYNC_BUF - d->slen : n;
        memcpy(d->sbuf + d->slen, p, t);
        d->slen += t;
        p += t;
        n -= t;
        size_t i = 0;
        while (i + 5 <= d->slen) {
            const uint8_t *h = d->sbuf + i;
            if (!plausible_header(c, h)) {
                i++;
                continue;
            }
            size_t len = (size_t)h[3] << 8 | h[4];
            if (i + 5 + len > d->slen)
                break;              /* candidate: wait for the rest of it */
            size_t pl = 0;
            uint8_t itype = 0;
            int r = resync_try(c, dir, h, h + 5, len, &pl, &itype);
            if (r < 0) {
                resync_fail(c, dir, ts, "trial budget spent");
                return;
            }
            if (r == 0) {
                i++;
                continue;
            }
            /* found: the record stream continues here */
            uint64_t seq = d->app.seq - 1;
            tls->st.records_lost += seq - d->seq_min;
            tls->st.resyncs++;
            tls->st.records++;
            tls->st.bytes_dropped += i;
            d->resync = false;
            d->epoch = EP_APP;
            d->hlen = d->rlen = 0;
            app_opened(d, h + 5, len);
            tls->st.records_decrypted++;
            d->update_after = false;
            deliver(c, dir, itype, tls->out, pl, ts);
            if (d->update_after && c->st != C_DEAD) {
                if (tls13_aead_update(&d->app) != SM_OK) {
                    undecryptable(c, ts, "tls: authentication failure", NULL, "KeyUpdate failed");
                    return;
                }
                tls->st.key_updates++;
            }
            size_t used = i + 5 + len, rest = d->slen - used;
            uint8_t *sb = d->sbuf;  /* not written again before the next gap */
            d->sbuf = NULL;
            d->slen = 0;
            if (rest)
                feed(c, dir, sb + used, rest, ts);
            sm_free(sb);            /* memory only while resynchronising */
            if (n)
                feed(c, dir, p, n, ts);
            return;
        }
        d->scanned += i;
        tls->st.bytes_dropped += i;
        memmove(d->sbuf, d->sbuf + i, d->slen - i);
        d->slen -= i;
        if (d->scanned > RESYNC_SCAN_MAX) {
            resync_fail(c, dir, ts, "no record in the bytes that followed");
            return;
        }
    }
}

/* A capture gap in one direction of a TLS connection (keys known). */
static void tls_gap(struct conn *c, int dir, uint64_t lost, uint64_t ts, const char *why)
{
    struct agent_tls_filter *tls = c->tls;
    struct dir_state *d = &c->d[dir];
    if (c->st == C_DEAD || d->dead)
        return;
    tls->st.gaps++;
    if (!c->keys || !d->app.ready || d->epoch == EP_CLEAR) {
        /* in the clear handshake: hellos (random, suite) or ChangeCipherSpec lost */
        tls->st.conns_broken++;
        sm_log_warn("tls: %s: capture gap (%s) in the handshake, direction %s no longer decrypted", c->name, why,
                    dir == AGENT_C2S ? "client->server" : "server->client");
        kill_dir(c, dir, ts, why);
        return;
    }
    /* the HTTP layer marks the message the gap cut (as for clear traffic);
     * lost: bytes of the TCP stream (ciphertext), as the capture reported */
    tls->down.gap(tls->down.arg, c->down, (enum agent_dir)dir, lost, ts, why);
    uint64_t rest = lost;           /* lost bytes after the cut record, if known */
    if (d->resync) {                /* a second gap before the stream was found again */
        if (lost && d->skip > lost) {
            d->skip -= lost;
            rest = 0;
        } else {
            rest = lost ? lost - d->skip + d->slen + d->scanned : 0;
            d->skip = 0;
        }
        tls->st.bytes_dropped += d->slen;
        d->slen = 0;
        d->scanned = 0;
    } else {
        d->skip = 0;
        d->seq_min = d->epoch == EP_APP ? d->app.seq : 0;
        if (d->epoch == EP_APP && d->hlen) {         /* a record was cut: it is lost */
            d->seq_min++;
            if (d->hlen == 5) {
                uint64_t rem = ((size_t)d->hdr[3] << 8 | d->hdr[4]) - d->rlen;
                if (lost && rem > lost) {
                    d->skip = rem - lost;            /* the next header follows it exactly */
                    rest = 0;
                } else if (lost) {
                    rest = lost - rem;
                }
            }
            tls->st.bytes_dropped += d->hlen + d->rlen;
        }
        d->seq_est = d->seq_min;
        d->hlen = d->rlen = 0;
        d->hsp.hlen = 0;            /* a handshake message cut by the gap is dropped */
        sm_free(d->hsp.body);
        d->hsp.body = NULL;
        d->scanned = d->trial_bytes = 0;
        d->win = 0;
        d->resync = true;
    }
    uint32_t minrec = c->tls13 ? 5 + 17 : 5 + 16 + (c->suite->explicit_nonce ? 8 : 0);
    if (lost) {                     /* at most rest / (smallest record) records lost */
        d->seq_est += d->avg_rec ? (rest + d->avg_rec / 2) / d->avg_rec : 0;
        d->win += rest / minrec + 2;
        if (d->win > RESYNC_WINDOW_MAX)
            d->win = RESYNC_WINDOW_MAX;
    } else {
        d->win = RESYNC_WINDOW_MAX;
    }
}

static void finish_close(struct conn *c)
{
    struct agent_tls_filter *tls = c->tls;
    tls->down.close(tls->down.arg, c->down, c->close_reason, c->close_ts);
    conn_free(c);
}

/* Waiting connection: secrets arrived (replay held bytes) or time is up. */
static void resolve(struct conn *c, uint64_t now, bool final)
{
    struct agent_tls_filter *tls = c->tls;
    if (try_keys(c)) {
        wait_del(c);
        tls->st.keys_late++;
        c->st = C_TLS;
        struct chunk *q = c->qhead;
        tls->st.pending_bytes -= c->qbytes;
        c->qhead = c->qtail = NULL;
        c->qbytes = 0;
        for (struct chunk *k = q, *nx; k; k = nx) {
            nx = k->next;
            if (k->gap) {
                if (c->st == C_TLS)
                    tls_gap(c, k->dir, k->lost, k->ts_ns, k->why);
            } else {
                feed(c, k->dir, k->data, k->n, k->ts_ns);
            }
            sm_free(k);
        }
    } else if (final || now >= c->deadline) {
        undecryptable(c, c->qtail ? c->qtail->ts_ns : 0, "tls: no keys", &tls->st.conns_no_keys,
                      "secrets not in the key log");
    } else {
        return;
    }
    if (c->closing && c->st != C_WAIT)
        finish_close(c);
}

void agent_tls_filter_tick(struct agent_tls_filter *tls)
{
    uint64_t now = now_ns(tls);
    poll_keylog(tls, now);
    for (struct conn *c = tls->waiting, *nx; c; c = nx) {
        nx = c->wnext;
        resolve(c, now, false);
    }
}

static void maybe_tick(struct agent_tls_filter *tls)
{
    uint64_t now = now_ns(tls);
    if (now - tls->last_poll >= tls->cfg.poll_interval_ns)
        agent_tls_filter_tick(tls);
}

/* ---- upstream callbacks ------------------------------------------------- */

static bool tls_port(const struct agent_tls_filter *tls, uint16_t port)
{
    if (!tls->cfg.nports)
        return true;
    for (size_t i = 0; i < tls->cfg.nports; i++)
        if (tls->cfg.ports[i] == port)
            return true;
    return false;
}

static void *up_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    struct agent_tls_filter *tls = arg;
    maybe_tick(tls);
    void *down = tls->down.open(tls->down.arg, info, ts);
    if (!down)
        return NULL;
    struct conn *c = sm_calloc(1, sizeof *c);
    if (!c) {   /* cannot track: let it through as it is */
        tls->down.close(tls->down.arg, down, AGENT_CLOSE_EVICTED, ts);
        return NULL;
    }
    c->tls = tls;
    c->down = down;
    c->st = tls_port(tls, info->server_port) ? C_DETECT : C_CLEAR;
    if (c->st == C_CLEAR)
        tls->st.conns_clear++;
    char a[INET6_ADDRSTRLEN] = "?", b[INET6_ADDRSTRLEN] = "?";
    inet_ntop(info->family, info->client_ip, a, sizeof a);
    inet_ntop(info->family, info->server_ip, b, sizeof b);
    snprintf(c->name, sizeof c->name, "%s:%u->%s:%u", a, info->client_port, b, info->server_port);
    return c;
}

static void up_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    struct agent_tls_filter *tls = arg;
    struct conn *c = conn;
    maybe_tick(tls);
    if (c->st == C_DETECT && n) {
        /* a TLS record header: content type 20..23, major version 3 */
        bool looks = p[0] >= 20 && p[0] <= 23 && (n < 2 || p[1] == 3);
        if (looks) {
            c->st = C_TLS;
            tls->st.conns_tls++;
        } else {
            c->st = C_CLEAR;
            tls->st.conns_clear++;
        }
    }
    if (c->st == C_CLEAR || c->st == C_DETECT) {
        tls->st.bytes_clear += n;
        tls->down.data(tls->down.arg, c->down, dir, p, n, ts);
        return;
    }
    feed(c, dir, p, n, ts);
}

static void up_gap(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts, const char *why)
{
    struct agent_tls_filter *tls = arg;
    struct conn *c = conn;
    maybe_tick(tls);
    if (c->st == C_CLEAR || c->st == C_DETECT) {
        tls->down.gap(tls->down.arg, c->down, dir, lost, ts, why);
    } else if (c->st == C_WAIT) {
        enqueue(c, dir, NULL, 0, NULL, 0, ts, true, lost, why);
    } else if (c->st == C_TLS) {
        tls_gap(c, dir, lost, ts, why);
    }
}

static void up_close(void *arg, void *conn, enum agent_close_reason reason, uint64_t ts)
{
    struct agent_tls_filter *tls = arg;
    struct conn *c = conn;
    c->close_reason = reason;
    c->close_ts = ts;
    if (c->st == C_WAIT) {
        uint64_t now = now_ns(tls);
        poll_keylog(tls, now);
        c->closing = true;
        resolve(c, now, false);     /* closes it when resolved; else held until the deadline */
        return;
    }
    finish_close(c);
}

/* ---- public ------------------------------------------------------------- */

int agent_tls_filter_new(const struct agent_tls_cfg *cfg, const struct agent_stream_cb *downstream,
                         struct agent_tls_filter **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!downstream || !downstream->open || !downstream->data || !downstream->gap || !downstream->close)
        return sm_errf(err, errlen, SM_ECONFIG, "tls filter: downstream callbacks missing");
    if (cfg->nports > AGENT_TLS_MAX_PORTS)
        return sm_errf(err, errlen, SM_ECONFIG, "tls filter: at most %d TLS ports", AGENT_TLS_MAX_PORTS);
    if (cfg->max_pending == 0)
        return sm_errf(err, errlen, SM_ECONFIG, "tls filter: pending buffer bound must be > 0");
    struct agent_tls_filter *tls = sm_calloc(1, sizeof *tls);
    if (!tls)
        return sm_errf(err, errlen, SM_ENOMEM, "tls filter: out of memory");
    tls->cfg = *cfg;
    tls->cfg.keylog_path = NULL;
    tls->down = *downstream;
    tls->up = (struct agent_stream_cb){ tls, up_open, up_data, up_gap, up_close };
    tls_keylog_init(&tls->kl, cfg->max_keys, &tls->st);
    if (tls_keylog_set_path(&tls->kl, cfg->keylog_path) != SM_OK) {
        sm_free(tls);
        return sm_errf(err, errlen, SM_ENOMEM, "tls filter: out of memory");
    }
    tls->cfg.keylog_path = tls->kl.path;
    if (cfg->keylog_path) {
        tls_keylog_poll(&tls->kl);
        if (tls->kl.fd < 0)
            sm_log_warn("tls: key log %s not readable yet; waiting for it", cfg->keylog_path);
    } else {
        sm_log_warn("tls: no key log: TLS connections will be reported undecryptable");
    }
    tls->last_poll = now_ns(tls);
    *out = tls;
    return SM_OK;
}

const struct agent_stream_cb *agent_tls_filter_cb(struct agent_tls_filter *tls)
{
    return &tls->up;
}

void agent_tls_filter_stats(const struct agent_tls_filter *tls, struct agent_tls_stats *out)
{
    *out = tls->st;
}

int agent_tls_keylog_line(struct agent_tls_filter *tls, const char *line, size_t n)
{
    return tls_keylog_parse(&tls->kl, line, n);
}

void agent_tls_filter_drain(struct agent_tls_filter *tls)
{
    uint64_t now = now_ns(tls);
    poll_keylog(tls, now);
    while (tls->waiting) {
        struct conn *c = tls->waiting;
        if (!c->closing) {
            c->closing = true;
            c->close_reason = AGENT_CLOSE_SHUTDOWN;
            c->close_ts = c->qtail ? c->qtail->ts_ns : 0;
        }
        resolve(c, now, true);
    }
}

void agent_tls_filter_free(struct agent_tls_filter *tls)
{
    if (!tls)
        return;
    agent_tls_filter_drain(tls);
    tls_keylog_fini(&tls->kl);
    OPENSSL_cleanse(tls->sess, sizeof tls->sess);
    sm_free(tls);
}
