/* Test helpers for the capture tests: a packet builder (Ethernet/VLAN/SLL/
 * SLL2/loopback/raw, IPv4/IPv6, TCP) and a stream recorder implementing
 * agent_stream_cb that keeps per-connection byte streams and an event log. */
#ifndef TEST_FLOW_PKT_H
#define TEST_FLOW_PKT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow.h"
#include "flow/stream.h"
#include "source/decode.h"
#include "source/source.h"

/* ---- packet builder ------------------------------------------------------ */

struct tp {
    int link;               /* AGENT_DLT_* */
    bool v6;
    int vlans;              /* Ethernet: number of 802.1Q tags */
    uint8_t cip[16], sip[16];
    uint16_t cport, sport;
    uint64_t ts_ns;         /* timestamp of the next packet */
    uint8_t buf[70000];
    struct agent_pkt pkt;
};

static inline void tp_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void tp_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static inline void tp_init(struct tp *t, int link, bool v6, uint16_t cport, uint16_t sport)
{
    memset(t, 0, sizeof(*t));
    t->link = link;
    t->v6 = v6;
    t->cport = cport;
    t->sport = sport;
    if (v6) {
        t->cip[0] = 0xfd; t->cip[15] = 1;
        t->sip[0] = 0xfd; t->sip[15] = 2;
    } else {
        t->cip[0] = 10; t->cip[3] = 1;
        t->sip[0] = 10; t->sip[3] = 2;
    }
    t->ts_ns = 1700000000ull * 1000000000ull;
}

/* Builds one TCP packet. dir 0: client->server. Returns &t->pkt (valid until the next call). */
static inline const struct agent_pkt *tp_tcp(struct tp *t, int dir, uint32_t seq, uint32_t ack,
                                             uint8_t flags, const void *pl, size_t n)
{
    uint8_t *p = t->buf;
    size_t off = 0;
    uint16_t etype = t->v6 ? 0x86dd : 0x0800;
    switch (t->link) {
    case AGENT_DLT_EN10MB:
        memset(p, 0, 12);
        p[5] = dir ? 2 : 1;
        p[11] = dir ? 1 : 2;
        off = 12;
        for (int i = 0; i < t->vlans; i++) {
            tp_put16(p + off, i == 0 && t->vlans > 1 ? 0x88a8 : 0x8100);
            tp_put16(p + off + 2, (uint16_t)(100 + i));
            off += 4;
        }
        tp_put16(p + off, etype);
        off += 2;
        break;
    case AGENT_DLT_LINUX_SLL:
        memset(p, 0, 16);
        tp_put16(p + 14, etype);
        off = 16;
        break;
    case AGENT_DLT_LINUX_SLL2:
        memset(p, 0, 20);
        tp_put16(p, etype);
        off = 20;
        break;
    case AGENT_DLT_NULL:       /* host order, little endian here */
        memset(p, 0, 4);
        p[0] = t->v6 ? 10 : 2;
        off = 4;
        break;
    case AGENT_DLT_LOOP:
        memset(p, 0, 4);
        p[3] = t->v6 ? 10 : 2;
        off = 4;
        break;
    default:                   /* raw */
        break;
    }
    const uint8_t *src = dir ? t->sip : t->cip, *dst = dir ? t->cip : t->sip;
    size_t iph = t->v6 ? 40 : 20;
    uint8_t *ip = p + off;
    if (t->v6) {
        memset(ip, 0, 40);
        ip[0] = 0x60;
        tp_put16(ip + 4, (uint16_t)(20 + n));
        ip[6] = 6;
        ip[7] = 64;
        memcpy(ip + 8, src, 16);
        memcpy(ip + 24, dst, 16);
    } else {
        memset(ip, 0, 20);
        ip[0] = 0x45;
        tp_put16(ip + 2, (uint16_t)(20 + 20 + n));
        ip[6] = 0x40;          /* DF */
        ip[8] = 64;
        ip[9] = 6;
        memcpy(ip + 12, src, 4);
        memcpy(ip + 16, dst, 4);
    }
    uint8_t *tcp = ip + iph;
    memset(tcp, 0, 20);
    tp_put16(tcp, dir ? t->sport : t->cport);
    tp_put16(tcp + 2, dir ? t->cport : t->sport);
    tp_put32(tcp + 4, seq);
    tp_put32(tcp + 8, ack);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tp_put16(tcp + 14, 65535);
    if (n)
        memcpy(tcp + 20, pl, n);
    size_t total = off + iph + 20 + n;
    t->pkt.ts_ns = t->ts_ns;
    t->pkt.linktype = t->link;
    t->pkt.caplen = (uint32_t)total;
    t->pkt.len = (uint32_t)total;
    t->pkt.data = t->buf;
    return &t->pkt;
}

/* ---- recorder ------------------------------------------------------------ */

#define REC_MAX_CONNS 256

struct rec_conn {
    struct agent_conn_info info;
    uint8_t *s[2];
    size_t n[2], cap[2];
    uint64_t gap_bytes[2];
    int gaps[2];
    bool closed;
    int reason;
    char log[4096];           /* "d0:5 g1:10 d1:3 close:fin" */
};

struct rec {
    struct rec_conn c[REC_MAX_CONNS];
    int nconns;
    int violations;           /* events after close etc. */
};

static inline void rec_log(struct rec_conn *c, char kind, int dir, long long v)
{
    size_t l = strlen(c->log);
    if (l + 32 < sizeof(c->log))
        snprintf(c->log + l, sizeof(c->log) - l, "%c%d:%lld ", kind, dir, v);
}

static inline void *rec_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    struct rec *r = arg;
    (void)ts;
    if (r->nconns >= REC_MAX_CONNS)
        return NULL;
    struct rec_conn *c = &r->c[r->nconns++];
    memset(c, 0, sizeof(*c));
    c->info = *info;
    c->reason = -1;
    return c;
}

static inline void rec_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n,
                            uint64_t ts)
{
    struct rec *r = arg;
    struct rec_conn *c = conn;
    (void)ts;
    if (c->closed)
        r->violations++;
    if (c->n[dir] + n > c->cap[dir]) {
        c->cap[dir] = (c->n[dir] + n) * 2 + 64;
        c->s[dir] = realloc(c->s[dir], c->cap[dir]);
    }
    memcpy(c->s[dir] + c->n[dir], p, n);
    c->n[dir] += n;
    rec_log(c, 'd', (int)dir, (long long)n);
}

static inline void rec_gap(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts,
                           const char *why)
{
    struct rec *r = arg;
    struct rec_conn *c = conn;
    (void)ts; (void)why;
    if (c->closed)
        r->violations++;
    c->gaps[dir]++;
    c->gap_bytes[dir] += lost;
    rec_log(c, 'g', (int)dir, (long long)lost);
}

static inline void rec_close(void *arg, void *conn, enum agent_close_reason reason, uint64_t ts)
{
    struct rec *r = arg;
    struct rec_conn *c = conn;
    (void)ts;
    if (c->closed)
        r->violations++;
    c->closed = true;
    c->reason = (int)reason;
    size_t l = strlen(c->log);
    snprintf(c->log + l, sizeof(c->log) - l, "close:%s", agent_close_reason_name(reason));
}

static inline struct agent_stream_cb rec_cb(struct rec *r)
{
    struct agent_stream_cb cb = { r, rec_open, rec_data, rec_gap, rec_close };
    return cb;
}

static inline void rec_free(struct rec *r)
{
    for (int i = 0; i < r->nconns; i++) {
        free(r->c[i].s[0]);
        free(r->c[i].s[1]);
    }
    free(r);
}

static inline struct rec *rec_new(void) { return calloc(1, sizeof(struct rec)); }

#define REC_STREAM_EQ(c, dir, str) \
    do { SM_CHECK_EQ_INT((c)->n[dir], strlen(str)); SM_CHECK_MEM((c)->s[dir], (str), strlen(str)); } while (0)

#endif
