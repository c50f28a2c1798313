/* TCP reassembly: crafted packets fed straight into the flow table. */
#include "sm_test.h"
#include "test_flow_pkt.h"

#define S AGENT_TCP_SYN
#define A AGENT_TCP_ACK
#define F AGENT_TCP_FIN
#define R AGENT_TCP_RST
#define P (AGENT_TCP_PSH | AGENT_TCP_ACK)

struct fx {
    struct tp t;
    struct rec *r;
    struct agent_flow_table *ft;
    uint32_t c, s;           /* next client / server seq */
};

static int fx_init(struct fx *x, const struct agent_flow_cfg *cfg)
{
    static const uint16_t port = 9200;
    struct agent_flow_cfg def = { .ports = &port, .nports = 1 };
    tp_init(&x->t, AGENT_DLT_EN10MB, false, 40000, 9200);
    x->r = rec_new();
    struct agent_stream_cb cb = rec_cb(x->r);
    x->ft = agent_flow_table_new(cfg ? cfg : &def, &cb, NULL, 0);
    return x->ft && x->r ? 0 : 1;
}

static void fx_free(struct fx *x)
{
    agent_flow_table_free(x->ft, 0);
    rec_free(x->r);
}

static void feed(struct fx *x, int dir, uint32_t seq, uint32_t ack, uint8_t fl, const char *pl)
{
    x->t.ts_ns += 1000000;   /* 1 ms per packet */
    agent_flow_feed(x->ft, tp_tcp(&x->t, dir, seq, ack, fl, pl, pl ? strlen(pl) : 0));
}

static void handshake(struct fx *x, uint32_t cisn, uint32_t sisn)
{
    feed(x, 0, cisn, 0, S, NULL);
    feed(x, 1, sisn, cisn + 1, S | A, NULL);
    feed(x, 0, cisn + 1, sisn + 1, A, NULL);
    x->c = cisn + 1;
    x->s = sisn + 1;
}

static struct agent_flow_stats stats(struct fx *x)
{
    struct agent_flow_stats st;
    agent_flow_stats(x->ft, &st);
    return st;
}

static int test_in_order(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 1000, 5000);
    SM_CHECK_EQ_INT(x.r->nconns, 0);            /* no data yet: not opened */
    feed(&x, 0, x.c, x.s, P, "GET / HTTP/1.1\r\n");
    feed(&x, 0, x.c + 16, x.s, P, "Host: a\r\n\r\n");
    feed(&x, 1, x.s, x.c + 27, P, "HTTP/1.1 200 OK\r\n\r\n");
    feed(&x, 0, x.c + 27, x.s + 19, F | A, NULL);
    SM_CHECK(!x.r->c[0].closed);
    feed(&x, 1, x.s + 19, x.c + 28, F | A, NULL);
    feed(&x, 0, x.c + 28, x.s + 20, A, NULL);   /* last ACK: absorbed by the closed flow */
    SM_CHECK_EQ_INT(x.r->nconns, 1);
    struct rec_conn *c = &x.r->c[0];
    REC_STREAM_EQ(c, 0, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REC_STREAM_EQ(c, 1, "HTTP/1.1 200 OK\r\n\r\n");
    SM_CHECK(!c->info.mid_stream);
    SM_CHECK_EQ_INT(c->info.client_port, 40000);
    SM_CHECK_EQ_INT(c->info.server_port, 9200);
    SM_CHECK_EQ_INT(c->info.client_ip[3], 1);
    SM_CHECK_EQ_STR(c->log, "d0:16 d0:11 d1:19 close:fin");
    struct agent_flow_stats st = stats(&x);
    SM_CHECK_EQ_INT(st.flows_open, 0);
    SM_CHECK_EQ_INT(st.gaps, 0);
    SM_CHECK_EQ_INT(st.bytes_delivered, 46);
    SM_CHECK_EQ_INT(x.r->violations, 0);
    fx_free(&x);
    return 0;
}

static int test_out_of_order(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 1, 2);
    feed(&x, 0, x.c + 5, x.s, P, "world");
    feed(&x, 0, x.c + 10, x.s, P, "!!");
    SM_CHECK_EQ_INT(x.r->nconns, 0);            /* nothing in order yet */
    feed(&x, 0, x.c, x.s, P, "hello");
    SM_CHECK_EQ_INT(x.r->nconns, 1);
    REC_STREAM_EQ(&x.r->c[0], 0, "helloworld!!");
    SM_CHECK_EQ_STR(x.r->c[0].log, "d0:5 d0:5 d0:2 ");
    struct agent_flow_stats st = stats(&x);
    SM_CHECK_EQ_INT(st.ooo_segments, 2);
    fx_free(&x);
    return 0;
}

static int test_retransmission(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 100, 200);
    feed(&x, 0, x.c, x.s, P, "abc");
    feed(&x, 0, x.c, x.s, P, "abc");            /* retransmitted */
    feed(&x, 0, x.c, x.s, P, "abcdef");         /* retransmission with new bytes */
    feed(&x, 0, x.c + 10, x.s, P, "XY");        /* queued */
    feed(&x, 0, x.c + 10, x.s, P, "XY");        /* duplicate of a queued segment */
    feed(&x, 0, x.c + 6, x.s, P, "ghij");
    REC_STREAM_EQ(&x.r->c[0], 0, "abcdefghijXY");
    struct agent_flow_stats st = stats(&x);
    SM_CHECK_EQ_INT(st.retransmissions, 2);
    SM_CHECK_EQ_INT(st.overlaps, 1);
    SM_CHECK_EQ_INT(st.overlap_diff_bytes, 0);
    fx_free(&x);
    return 0;
}

static int test_overlap_same_and_different(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 7, 9);
    feed(&x, 0, x.c + 4, x.s, P, "EFGH");        /* queued [4,8) */
    feed(&x, 0, x.c + 2, x.s, P, "CDEFGHIJ");    /* overlaps with the same bytes */
    SM_CHECK_EQ_INT(stats(&x).overlap_diff_bytes, 0);
    SM_CHECK_EQ_INT(stats(&x).overlaps, 1);
    feed(&x, 0, x.c + 3, x.s, P, "dxfgZZZ");     /* differs at d, x, f, g vs DEFG; ZZZ vs HIJ */
    SM_CHECK_EQ_INT(stats(&x).overlap_diff_bytes, 7);
    feed(&x, 0, x.c + 8, x.s, P, "ijKL");        /* i j differ from IJ, KL new */
    SM_CHECK_EQ_INT(stats(&x).overlap_diff_bytes, 9);
    feed(&x, 0, x.c, x.s, P, "ab");
    REC_STREAM_EQ(&x.r->c[0], 0, "abCDEFGHIJKL");   /* first copy wins */
    SM_CHECK_EQ_INT(stats(&x).gaps, 0);
    fx_free(&x);
    return 0;
}

static int test_loss_gap_from_ack(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 1000, 2000);
    feed(&x, 0, x.c, x.s, P, "first-");          /* 6 bytes */
    /* 13 bytes at x.c+6 never captured */
    feed(&x, 0, x.c + 19, x.s, P, "third");
    SM_CHECK_EQ_STR(x.r->c[0].log, "d0:6 ");
    feed(&x, 1, x.s, x.c + 24, A, NULL);         /* server has all 24 bytes */
    struct rec_conn *c = &x.r->c[0];
    SM_CHECK_EQ_STR(c->log, "d0:6 g0:13 d0:5 ");
    REC_STREAM_EQ(c, 0, "first-third");
    SM_CHECK_EQ_INT(c->gap_bytes[0], 13);
    /* a loss at the end of the response: the client ACKs bytes never seen */
    feed(&x, 1, x.s, x.c + 24, P, "resp");
    feed(&x, 0, x.c + 24, x.s + 4 + 100, A, NULL);
    SM_CHECK_EQ_STR(c->log, "d0:6 g0:13 d0:5 d1:4 g1:100 ");
    struct agent_flow_stats st = stats(&x);
    SM_CHECK_EQ_INT(st.gaps, 2);
    SM_CHECK_EQ_INT(st.bytes_lost, 113);
    fx_free(&x);
    return 0;
}

static int test_mid_stream(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    feed(&x, 0, 555555, 777777, P, "tail of body");
    feed(&x, 1, 777777, 555555 + 12, P, "HTTP/1.1 200 OK\r\n");
    feed(&x, 0, 555555 + 12, 777777 + 17, P, "GET /next");
    SM_CHECK_EQ_INT(x.r->nconns, 1);
    struct rec_conn *c = &x.r->c[0];
    SM_CHECK(c->info.mid_stream);
    SM_CHECK_EQ_INT(c->info.server_port, 9200);
    REC_STREAM_EQ(c, 0, "tail of bodyGET /next");
    REC_STREAM_EQ(c, 1, "HTTP/1.1 200 OK\r\n");
    /* a mid-stream packet whose server port is not listed is not a flow */
    x.t.sport = 8080;
    feed(&x, 0, 1, 1, P, "zzz");
    SM_CHECK_EQ_INT(x.r->nconns, 1);
    SM_CHECK_EQ_INT(stats(&x).ignored, 1);
    agent_flow_table_free(x.ft, 0);
    SM_CHECK(c->closed);
    SM_CHECK_EQ_INT(c->reason, AGENT_CLOSE_SHUTDOWN);
    rec_free(x.r);
    return 0;
}

static int test_rst(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 10, 20);
    feed(&x, 0, x.c, x.s, P, "GET");
    feed(&x, 0, x.c + 5, x.s, P, "XX");           /* queued behind a 2-byte hole */
    feed(&x, 1, x.s, x.c + 3, R, NULL);
    struct rec_conn *c = &x.r->c[0];
    SM_CHECK(c->closed);
    SM_CHECK_EQ_INT(c->reason, AGENT_CLOSE_RST);
    SM_CHECK_EQ_STR(c->log, "d0:3 g0:2 d0:2 close:rst");
    feed(&x, 0, x.c + 7, x.s, P, "late");          /* absorbed by the tombstone */
    SM_CHECK_EQ_INT(x.r->nconns, 1);
    SM_CHECK_EQ_INT(x.r->violations, 0);
    fx_free(&x);
    return 0;
}

static int test_fin_both_sides(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 10, 20);
    feed(&x, 0, x.c, x.s, P | F, "req");          /* data + FIN in one segment */
    SM_CHECK(!x.r->c[0].closed);
    feed(&x, 1, x.s, x.c + 4, P, "resp1");
    feed(&x, 1, x.s + 5, x.c + 4, P, "resp2");
    SM_CHECK(!x.r->c[0].closed);                  /* half-closed: the server still sends */
    feed(&x, 1, x.s + 10, x.c + 4, F | A, NULL);
    SM_CHECK(x.r->c[0].closed);
    SM_CHECK_EQ_STR(x.r->c[0].log, "d0:3 d1:5 d1:5 close:fin");
    /* port reuse: a new SYN on the same tuple is a new connection */
    handshake(&x, 90000, 80000);
    feed(&x, 0, x.c, x.s, P, "again");
    SM_CHECK_EQ_INT(x.r->nconns, 2);
    REC_STREAM_EQ(&x.r->c[1], 0, "again");
    fx_free(&x);
    return 0;
}

static int test_fin_with_hole(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 10, 20);
    feed(&x, 0, x.c, x.s, P, "ab");
    feed(&x, 0, x.c + 4, x.s, P | F, "ef");       /* FIN at +6, hole [2,4) */
    feed(&x, 1, x.s, x.c + 7, F | A, NULL);       /* server acked everything and the FIN */
    struct rec_conn *c = &x.r->c[0];
    SM_CHECK_EQ_STR(c->log, "d0:2 g0:2 d0:2 close:fin");
    fx_free(&x);
    return 0;
}

static int test_wraparound(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 0xfffffff0u, 0xfffffffau);      /* client next = ...f1 */
    feed(&x, 0, x.c, x.s, P, "0123456789");        /* f1..fa */
    feed(&x, 0, x.c + 20, x.s, P, "KLMNO");        /* past 2^32, out of order */
    feed(&x, 0, x.c + 10, x.s, P, "ABCDEFGHIJ");   /* crosses 2^32 */
    feed(&x, 1, x.s, x.c + 25, P, "0123456789");   /* server seq crosses 2^32 too */
    feed(&x, 1, x.s + 10, x.c + 25, P, "abc");
    feed(&x, 0, x.c + 25, x.s + 13 + 7, A, NULL);  /* 7 server bytes lost across the wrap */
    struct rec_conn *c = &x.r->c[0];
    REC_STREAM_EQ(c, 0, "0123456789ABCDEFGHIJKLMNO");
    REC_STREAM_EQ(c, 1, "0123456789abc");
    SM_CHECK_EQ_INT(c->gap_bytes[1], 7);
    SM_CHECK_EQ_INT(c->gap_bytes[0], 0);
    fx_free(&x);
    return 0;
}

static int test_hole_timeout_and_queue_bound(void)
{
    static const uint16_t port = 9200;
    struct agent_flow_cfg cfg = { .ports = &port, .nports = 1, .hole_timeout_ns = 2000000000ull,
                                  .max_ooo_bytes = 10 };
    struct fx x;
    SM_CHECK(!fx_init(&x, &cfg));
    handshake(&x, 10, 20);
    feed(&x, 0, x.c, x.s, P, "ab");
    feed(&x, 0, x.c + 5, x.s, P, "fgh");           /* hole of 3 */
    SM_CHECK_EQ_STR(x.r->c[0].log, "d0:2 ");
    x.t.ts_ns += 3000000000ull;                     /* 3 s later, an unrelated packet */
    feed(&x, 1, x.s, x.c, A, NULL);
    SM_CHECK_EQ_STR(x.r->c[0].log, "d0:2 g0:3 d0:3 ");
    /* the bound: 10 bytes per direction */
    feed(&x, 0, x.c + 10, x.s, P, "123456");       /* hole of 2 at [8,10) */
    feed(&x, 0, x.c + 20, x.s, P, "abcdef");       /* would exceed 10: first hole forced */
    SM_CHECK_EQ_STR(x.r->c[0].log, "d0:2 g0:3 d0:3 g0:2 d0:6 ");
    SM_CHECK_EQ_INT(stats(&x).gaps, 2);
    fx_free(&x);
    return 0;
}

static int test_tfo_keepalive_zero_window(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    feed(&x, 0, 100, 0, S, "GET /tfo");             /* TCP Fast Open: data in the SYN */
    feed(&x, 1, 500, 109, S | A, NULL);
    feed(&x, 0, 109, 501, P, " HTTP/1.1\r\n");
    feed(&x, 0, 119, 501, A, "\x00");               /* keepalive: 1 old byte */
    feed(&x, 0, 120, 501, A, NULL);                 /* keepalive without data */
    feed(&x, 1, 501, 120, P, "R");
    feed(&x, 1, 502, 120, A, "x");                  /* zero-window probe: the next byte */
    feed(&x, 1, 502, 120, P, "xyz");                /* then sent for real */
    struct rec_conn *c = &x.r->c[0];
    REC_STREAM_EQ(c, 0, "GET /tfo HTTP/1.1\r\n");
    REC_STREAM_EQ(c, 1, "Rxyz");
    SM_CHECK(!c->info.mid_stream);
    SM_CHECK_EQ_INT(stats(&x).gaps, 0);
    fx_free(&x);
    return 0;
}

static int test_interleaving(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 10, 20);
    feed(&x, 0, x.c + 1, x.s, P, "B");             /* queued */
    feed(&x, 1, x.s, x.c, P, "1");
    feed(&x, 0, x.c, x.s + 1, P, "A");             /* releases AB */
    feed(&x, 1, x.s + 1, x.c + 2, P, "2");
    SM_CHECK_EQ_STR(x.r->c[0].log, "d1:1 d0:1 d0:1 d1:1 ");
    fx_free(&x);
    return 0;
}

static int test_truncated_packet(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 10, 20);
    x.t.ts_ns += 1000;
    const struct agent_pkt *pk = tp_tcp(&x.t, 0, x.c, x.s, P, "0123456789", 10);
    struct agent_pkt cut = *pk;
    cut.caplen -= 4;                                /* snaplen cut 4 payload bytes */
    agent_flow_feed(x.ft, &cut);
    feed(&x, 0, x.c + 10, x.s, P, "next");
    feed(&x, 1, x.s, x.c + 14, A, NULL);
    REC_STREAM_EQ(&x.r->c[0], 0, "012345next");
    SM_CHECK_EQ_STR(x.r->c[0].log, "d0:6 g0:4 d0:4 ");
    fx_free(&x);
    return 0;
}

static int test_shutdown_flushes(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 10, 20);
    feed(&x, 0, x.c, x.s, P, "abc");
    feed(&x, 0, x.c + 6, x.s, P, "ghi");
    agent_flow_table_free(x.ft, 0);
    struct rec_conn *c = &x.r->c[0];
    SM_CHECK_EQ_STR(c->log, "d0:3 g0:3 d0:3 close:shutdown");
    rec_free(x.r);
    return 0;
}

/* The old connection's FIN/RST was lost in capture and the client reuses the
 * tuple: the new SYN is held until the server's SYN-ACK acknowledges it, then
 * the old flow closes as "replaced" and the new one is tracked from its SYN. */
static int test_port_reuse_close_unseen(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 1000, 2000);
    feed(&x, 0, x.c, x.s, P, "GET /a");
    feed(&x, 1, x.s, x.c + 6, P, "200 a");
    /* no FIN seen; a new connection on the same tuple */
    feed(&x, 0, 500000, 0, S, NULL);
    SM_CHECK(!x.r->c[0].closed);                 /* a SYN alone proves nothing */
    feed(&x, 1, 900000, 500001, S | A, NULL);
    SM_CHECK(x.r->c[0].closed);
    SM_CHECK_EQ_INT(x.r->c[0].reason, AGENT_CLOSE_REPLACED);
    SM_CHECK_EQ_STR(x.r->c[0].log, "d0:6 d1:5 close:replaced");
    feed(&x, 0, 500001, 900001, A, NULL);
    feed(&x, 0, 500001, 900001, P, "GET /b");
    feed(&x, 1, 900001, 500007, P, "200 b");
    SM_CHECK_EQ_INT(x.r->nconns, 2);
    struct rec_conn *c = &x.r->c[1];
    SM_CHECK(!c->info.mid_stream);
    SM_CHECK_EQ_INT(c->info.client_port, 40000);
    REC_STREAM_EQ(c, 0, "GET /b");
    REC_STREAM_EQ(c, 1, "200 b");
    SM_CHECK_EQ_INT(c->gaps[0] + c->gaps[1], 0);
    struct agent_flow_stats st = stats(&x);
    SM_CHECK_EQ_INT(st.flows_replaced, 1);
    SM_CHECK_EQ_INT(st.flows_open, 1);
    SM_CHECK_EQ_INT(x.r->violations, 0);
    fx_free(&x);
    return 0;
}

/* Same, with the SYN-ACK lost too: the client's segment starting right after
 * its new ISN confirms the new connection; its ACK gives the server's next
 * byte. Data in the SYN (Fast Open) acknowledged by a SYN-ACK we did see is
 * reported as lost, not silently skipped. */
static int test_port_reuse_syn_ack_unseen(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 1000, 2000);
    feed(&x, 0, x.c, x.s, P, "GET /a");
    feed(&x, 0, 70000, 0, S, NULL);
    feed(&x, 0, 70001, 80001, P, "GET /b");
    feed(&x, 1, 80001, 70007, P, "200 b");
    SM_CHECK_EQ_INT(x.r->nconns, 2);
    SM_CHECK_EQ_INT(x.r->c[0].reason, AGENT_CLOSE_REPLACED);
    REC_STREAM_EQ(&x.r->c[1], 0, "GET /b");
    REC_STREAM_EQ(&x.r->c[1], 1, "200 b");
    SM_CHECK_EQ_INT(x.r->c[1].gaps[0] + x.r->c[1].gaps[1], 0);

    /* Fast Open: 4 bytes in the SYN we do not keep; the SYN-ACK acks them */
    feed(&x, 0, 300000, 0, S, "GET ");
    feed(&x, 1, 400000, 300005, S | A, NULL);
    feed(&x, 0, 300005, 400001, P, "/c");
    SM_CHECK_EQ_INT(x.r->nconns, 3);
    SM_CHECK_EQ_INT(x.r->c[1].reason, AGENT_CLOSE_REPLACED);
    SM_CHECK_EQ_STR(x.r->c[2].log, "g0:4 d0:2 ");
    SM_CHECK_EQ_INT(stats(&x).flows_replaced, 2);
    fx_free(&x);
    return 0;
}

/* A SYN with another ISN that the server answers with a challenge ACK (the
 * old connection is alive): nothing changes; the old connection's bytes go
 * on being delivered. The client's RST at the challenged point then ends it,
 * and the retried SYN starts the new connection from the tombstone. */
static int test_stray_syn_challenge_ack(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 1000, 2000);
    feed(&x, 0, x.c, x.s, P, "GET /a");
    feed(&x, 0, 123456, 0, S, NULL);
    feed(&x, 1, x.s, x.c + 6, A, NULL);           /* challenge ACK: the old point */
    feed(&x, 1, x.s, x.c + 6, P, "200 a");
    feed(&x, 0, x.c + 6, x.s + 5, P, "GET /x");
    SM_CHECK_EQ_INT(x.r->nconns, 1);
    SM_CHECK(!x.r->c[0].closed);
    REC_STREAM_EQ(&x.r->c[0], 0, "GET /aGET /x");
    REC_STREAM_EQ(&x.r->c[0], 1, "200 a");
    /* a retransmitted SYN of the first connection is not a new one either */
    feed(&x, 0, 1000, 0, S, NULL);
    feed(&x, 1, 2000, 1001, S | A, NULL);
    SM_CHECK(!x.r->c[0].closed);
    feed(&x, 0, x.c + 12, 0, R, NULL);
    SM_CHECK_EQ_INT(x.r->c[0].reason, AGENT_CLOSE_RST);
    feed(&x, 0, 123456, 0, S, NULL);
    feed(&x, 1, 654321, 123457, S | A, NULL);
    feed(&x, 0, 123457, 654322, P, "GET /b");
    SM_CHECK_EQ_INT(x.r->nconns, 2);
    SM_CHECK(!x.r->c[1].info.mid_stream);
    REC_STREAM_EQ(&x.r->c[1], 0, "GET /b");
    SM_CHECK_EQ_INT(stats(&x).flows_replaced, 0);
    fx_free(&x);
    return 0;
}

/* A connection joined mid-stream has no ISN to compare: a SYN-ACK answering
 * a new SYN replaces it. On a closed flow's tombstone, a SYN-ACK with a new
 * server ISN (its SYN lost) starts a connection; the old SYN-ACK resent does
 * not. */
static int test_port_reuse_mid_stream_and_tombstone(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    feed(&x, 0, 5000, 6000, P, "tail");
    feed(&x, 1, 6000, 5004, P, "resp");
    feed(&x, 0, 10, 0, S, NULL);
    feed(&x, 1, 20, 11, S | A, NULL);
    feed(&x, 0, 11, 21, P, "GET /n");
    SM_CHECK_EQ_INT(x.r->nconns, 2);
    SM_CHECK(x.r->c[0].info.mid_stream);
    SM_CHECK_EQ_INT(x.r->c[0].reason, AGENT_CLOSE_REPLACED);
    SM_CHECK(!x.r->c[1].info.mid_stream);
    REC_STREAM_EQ(&x.r->c[1], 0, "GET /n");
    /* close it orderly, then the server's SYN-ACK of it again: a straggler */
    feed(&x, 0, 17, 21, F | A, NULL);
    feed(&x, 1, 21, 18, F | A, NULL);
    SM_CHECK_EQ_INT(x.r->c[1].reason, AGENT_CLOSE_FIN);
    feed(&x, 1, 20, 11, S | A, NULL);
    feed(&x, 0, 11, 21, P, "GET /n");
    SM_CHECK_EQ_INT(x.r->nconns, 2);
    /* a new connection whose SYN was lost: its SYN-ACK has a new ISN */
    feed(&x, 1, 7777, 3334, S | A, NULL);
    feed(&x, 0, 3334, 7778, P, "GET /t");
    SM_CHECK_EQ_INT(x.r->nconns, 3);
    REC_STREAM_EQ(&x.r->c[2], 0, "GET /t");
    SM_CHECK_EQ_INT(x.r->c[2].info.client_port, 40000);
    SM_CHECK_EQ_INT(x.r->violations, 0);
    fx_free(&x);
    return 0;
}

/* A RST behind its sender's position (an earlier incarnation, a middlebox's
 * guess) is ignored and counted; the connection goes on. One ahead of it
 * (bytes lost in capture) is taken. */
static int test_rst_window(void)
{
    struct fx x;
    SM_CHECK(!fx_init(&x, NULL));
    handshake(&x, 1000, 2000);
    feed(&x, 0, x.c, x.s, P, "GET /a");
    feed(&x, 1, x.s - 50000, 0, R, NULL);
    feed(&x, 0, x.c - 1, 0, R | A, NULL);
    SM_CHECK(!x.r->c[0].closed);
    SM_CHECK_EQ_INT(stats(&x).rst_ignored, 2);
    feed(&x, 1, x.s, x.c + 6, P, "200 a");
    REC_STREAM_EQ(&x.r->c[0], 1, "200 a");
    feed(&x, 1, x.s + 5 + 1000, 0, R, NULL);      /* 1000 bytes we never saw, then RST */
    SM_CHECK_EQ_INT(x.r->c[0].reason, AGENT_CLOSE_RST);
    fx_free(&x);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_in_order), SM_TC(test_out_of_order), SM_TC(test_retransmission),
             SM_TC(test_overlap_same_and_different), SM_TC(test_loss_gap_from_ack),
             SM_TC(test_mid_stream), SM_TC(test_rst), SM_TC(test_fin_both_sides),
             SM_TC(test_fin_with_hole), SM_TC(test_wraparound),
             SM_TC(test_hole_timeout_and_queue_bound), SM_TC(test_tfo_keepalive_zero_window),
             SM_TC(test_interleaving), SM_TC(test_truncated_packet), SM_TC(test_shutdown_flushes),
             SM_TC(test_port_reuse_close_unseen), SM_TC(test_port_reuse_syn_ack_unseen),
             SM_TC(test_stray_syn_challenge_ack), SM_TC(test_port_reuse_mid_stream_and_tombstone),
             SM_TC(test_rst_window))
