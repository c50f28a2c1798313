/* Flow table: link types end to end, idle expiry, eviction, memory bounds
 * under floods, role detection, and the capture driver over an in-memory
 * pcap file (fmemopen) and over pcap files read through a mapping. */
#include "sm_test.h"
#include "test_flow_pkt.h"

#include <sys/socket.h>
#include <unistd.h>

#include <sm/err.h>

#include "source/capture.h"

#define S AGENT_TCP_SYN
#define A AGENT_TCP_ACK
#define F AGENT_TCP_FIN
#define P (AGENT_TCP_PSH | AGENT_TCP_ACK)

static const uint16_t port9200 = 9200;

static struct agent_flow_table *table(struct rec *r, struct agent_flow_cfg *cfg)
{
    struct agent_stream_cb cb = rec_cb(r);
    return agent_flow_table_new(cfg, &cb, NULL, 0);
}

static void conv(struct agent_flow_table *ft, struct tp *t, uint32_t cisn, uint32_t sisn)
{
    agent_flow_feed(ft, tp_tcp(t, 0, cisn, 0, S, NULL, 0));
    agent_flow_feed(ft, tp_tcp(t, 1, sisn, cisn + 1, S | A, NULL, 0));
    agent_flow_feed(ft, tp_tcp(t, 0, cisn + 1, sisn + 1, P, "ping", 4));
    agent_flow_feed(ft, tp_tcp(t, 1, sisn + 1, cisn + 5, P, "pong!", 5));
    agent_flow_feed(ft, tp_tcp(t, 0, cisn + 5, sisn + 6, F | A, NULL, 0));
    agent_flow_feed(ft, tp_tcp(t, 1, sisn + 6, cisn + 6, F | A, NULL, 0));
}

static int test_links_end_to_end(void)
{
    static const int links[] = { AGENT_DLT_EN10MB, AGENT_DLT_LINUX_SLL, AGENT_DLT_LINUX_SLL2,
                                 AGENT_DLT_NULL, AGENT_DLT_LOOP, AGENT_DLT_RAW };
    static struct tp t;
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        for (int v6 = 0; v6 < 2; v6++)
            for (int vlans = 0; vlans < (links[i] == AGENT_DLT_EN10MB ? 3 : 1); vlans++) {
                struct rec *r = rec_new();
                struct agent_flow_cfg cfg = { .ports = &port9200, .nports = 1 };
                struct agent_flow_table *ft = table(r, &cfg);
                tp_init(&t, links[i], v6, 33333, 9200);
                t.vlans = vlans;
                conv(ft, &t, 0x12345678, 0x9abcdef0);
                SM_CHECK_EQ_INT(r->nconns, 1);
                struct rec_conn *c = &r->c[0];
                REC_STREAM_EQ(c, 0, "ping");
                REC_STREAM_EQ(c, 1, "pong!");
                SM_CHECK_EQ_INT(c->reason, AGENT_CLOSE_FIN);
                SM_CHECK_EQ_INT(c->info.family, v6 ? AF_INET6 : AF_INET);
                SM_CHECK_MEM(c->info.server_ip, t.sip, 16);
                agent_flow_table_free(ft, 0);
                rec_free(r);
            }
    return 0;
}

static int test_idle_expiry(void)
{
    static struct tp t;
    struct rec *r = rec_new();
    struct agent_flow_cfg cfg = { .ports = &port9200, .nports = 1, .idle_timeout_ns = 2000000000ull };
    struct agent_flow_table *ft = table(r, &cfg);
    tp_init(&t, AGENT_DLT_EN10MB, false, 40000, 9200);
    agent_flow_feed(ft, tp_tcp(&t, 0, 1, 0, S, NULL, 0));
    agent_flow_feed(ft, tp_tcp(&t, 1, 1, 2, S | A, NULL, 0));
    agent_flow_feed(ft, tp_tcp(&t, 0, 2, 2, P, "GET", 3));
    t.ts_ns += 1500000000ull;                   /* 1.5 s: still alive */
    agent_flow_feed(ft, tp_tcp(&t, 0, 5, 2, P, "!", 1));
    t.ts_ns += 1500000000ull;
    t.cport = 40001;                            /* another flow moves time on */
    agent_flow_feed(ft, tp_tcp(&t, 0, 9, 0, S, NULL, 0));
    SM_CHECK(!r->c[0].closed);
    t.ts_ns += 1000000000ull;                   /* 2.5 s after the last packet */
    agent_flow_feed(ft, tp_tcp(&t, 0, 9, 0, S, NULL, 0));
    SM_CHECK(r->c[0].closed);
    SM_CHECK_EQ_INT(r->c[0].reason, AGENT_CLOSE_IDLE);
    REC_STREAM_EQ(&r->c[0], 0, "GET!");
    struct agent_flow_stats st;
    agent_flow_stats(ft, &st);
    SM_CHECK_EQ_INT(st.flows_idle, 1);
    SM_CHECK_EQ_INT(st.flows_open, 1);          /* the 40001 half-open one */
    /* wall-clock expiry (live sources call this on ticks) */
    agent_flow_expire(ft, t.ts_ns + 10000000000ull);
    agent_flow_stats(ft, &st);
    SM_CHECK_EQ_INT(st.flows_open, 0);
    SM_CHECK_EQ_INT(st.flows_idle, 2);
    SM_CHECK_EQ_INT(r->nconns, 1);              /* the dataless flow produced no events */
    agent_flow_table_free(ft, 0);
    rec_free(r);
    return 0;
}

static int test_max_flows_eviction(void)
{
    static struct tp t;
    struct rec *r = rec_new();
    struct agent_flow_cfg cfg = { .ports = &port9200, .nports = 1, .max_flows = 4 };
    struct agent_flow_table *ft = table(r, &cfg);
    tp_init(&t, AGENT_DLT_EN10MB, false, 40000, 9200);
    for (int i = 0; i < 10; i++) {
        t.cport = (uint16_t)(40000 + i);
        t.ts_ns += 1000;
        agent_flow_feed(ft, tp_tcp(&t, 0, 100, 0, S, NULL, 0));
        agent_flow_feed(ft, tp_tcp(&t, 1, 200, 101, S | A, NULL, 0));
        agent_flow_feed(ft, tp_tcp(&t, 0, 101, 201, P, "data", 4));
    }
    struct agent_flow_stats st;
    agent_flow_stats(ft, &st);
    SM_CHECK_EQ_INT(st.flows_created, 10);
    SM_CHECK_EQ_INT(st.flows_evicted, 6);
    SM_CHECK_EQ_INT(st.flows_open, 4);
    SM_CHECK_EQ_INT(r->nconns, 10);
    for (int i = 0; i < 6; i++) {                /* the oldest went first */
        SM_CHECK_EQ_INT(r->c[i].info.client_port, 40000 + i);
        SM_CHECK_EQ_INT(r->c[i].reason, AGENT_CLOSE_EVICTED);
        REC_STREAM_EQ(&r->c[i], 0, "data");
    }
    SM_CHECK(!r->c[6].closed);
    agent_flow_table_free(ft, 0);
    SM_CHECK_EQ_INT(r->c[9].reason, AGENT_CLOSE_SHUTDOWN);
    SM_CHECK_EQ_INT(r->violations, 0);
    rec_free(r);
    return 0;
}

static int test_memory_cap_ooo_flood(void)
{
    static struct tp t;
    static uint8_t chunk[1400];
    struct rec *r = rec_new();
    const uint64_t cap = 2 * 1024 * 1024;
    struct agent_flow_cfg cfg = { .ports = &port9200, .nports = 1, .mem_cap = cap,
                                  .max_ooo_bytes = 256 * 1024 };
    struct agent_flow_table *ft = table(r, &cfg);
    memset(chunk, 'x', sizeof(chunk));
    tp_init(&t, AGENT_DLT_EN10MB, false, 40000, 9200);
    /* 100 connections, each sending 400 KiB with the first 1400 bytes missing */
    for (int i = 0; i < 100; i++) {
        t.cport = (uint16_t)(20000 + i);
        agent_flow_feed(ft, tp_tcp(&t, 0, 0, 0, S, NULL, 0));
        agent_flow_feed(ft, tp_tcp(&t, 1, 0, 1, S | A, NULL, 0));
        for (uint32_t off = 1400; off < 400 * 1024; off += 1400)
            agent_flow_feed(ft, tp_tcp(&t, 0, 1 + off, 1, P, chunk, sizeof(chunk)));
    }
    struct agent_flow_stats st;
    agent_flow_stats(ft, &st);
    SM_CHECK(st.mem_peak <= cap);
    SM_CHECK(st.mem_in_use <= cap);
    SM_CHECK(st.gaps >= 100);                    /* every flow had its hole forced */
    SM_CHECK(st.ooo_segments > 1000);
    agent_flow_table_free(ft, 0);
    /* every byte is accounted for: delivered or reported lost */
    for (int i = 0; i < r->nconns; i++) {
        struct rec_conn *c = &r->c[i];
        uint64_t sent = 1400 + ((400 * 1024 - 1400 + 1399) / 1400) * 1400ull;
        SM_CHECK_EQ_INT(c->n[0] + c->gap_bytes[0], sent);
        SM_CHECK(c->gaps[0] >= 1);
    }
    SM_CHECK_EQ_INT(r->nconns, 100);
    rec_free(r);
    return 0;
}

static int test_memory_cap_syn_flood(void)
{
    static struct tp t;
    struct rec *r = rec_new();
    const uint64_t cap = 4 * 1024 * 1024;
    struct agent_flow_cfg cfg = { .ports = &port9200, .nports = 1, .mem_cap = cap };
    struct agent_flow_table *ft = table(r, &cfg);
    tp_init(&t, AGENT_DLT_EN10MB, false, 40000, 9200);
    for (uint32_t i = 0; i < 200000; i++) {
        t.cport = (uint16_t)(1024 + i % 60000);
        t.cip[1] = (uint8_t)(i / 60000);
        t.cip[2] = (uint8_t)(i >> 8);
        agent_flow_feed(ft, tp_tcp(&t, 0, i * 7919u, 0, S, NULL, 0));
    }
    struct agent_flow_stats st;
    agent_flow_stats(ft, &st);
    SM_CHECK(st.mem_peak <= cap);
    SM_CHECK_EQ_INT(st.flows_created, 200000);
    SM_CHECK(st.flows_evicted > 100000);
    SM_CHECK(st.flows_open <= AGENT_FLOW_MAX_FLOWS_DEFAULT);
    SM_CHECK_EQ_INT(r->nconns, 0);               /* nothing reached downstream */
    /* a real connection still works during the flood */
    tp_init(&t, AGENT_DLT_EN10MB, false, 50000, 9200);
    conv(ft, &t, 5, 6);
    SM_CHECK_EQ_INT(r->nconns, 1);
    REC_STREAM_EQ(&r->c[0], 1, "pong!");
    agent_flow_table_free(ft, 0);
    rec_free(r);
    return 0;
}

static int test_roles_without_ports(void)
{
    static struct tp t;
    struct rec *r = rec_new();
    struct agent_flow_cfg cfg = { 0 };
    struct agent_flow_table *ft = table(r, &cfg);
    /* mid-stream, no ports configured: the lower port is the server */
    tp_init(&t, AGENT_DLT_EN10MB, false, 50000, 8080);
    agent_flow_feed(ft, tp_tcp(&t, 1, 10, 20, P, "resp", 4));
    SM_CHECK_EQ_INT(r->c[0].info.server_port, 8080);
    REC_STREAM_EQ(&r->c[0], 1, "resp");
    /* a SYN decides, whatever the ports */
    tp_init(&t, AGENT_DLT_EN10MB, false, 80, 60000);
    conv(ft, &t, 1, 2);
    SM_CHECK_EQ_INT(r->c[1].info.client_port, 80);
    REC_STREAM_EQ(&r->c[1], 0, "ping");
    /* a pure ACK of an unknown flow creates nothing */
    tp_init(&t, AGENT_DLT_EN10MB, false, 1234, 4321);
    agent_flow_feed(ft, tp_tcp(&t, 0, 1, 1, A, NULL, 0));
    struct agent_flow_stats st;
    agent_flow_stats(ft, &st);
    SM_CHECK_EQ_INT(st.flows_created, 2);
    agent_flow_table_free(ft, 0);
    rec_free(r);
    return 0;
}

static void *open_none(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    (void)info; (void)ts;
    (*(int *)arg)++;
    return NULL;
}

static void data_fail(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)conn; (void)dir; (void)p; (void)n; (void)ts;
    (*(int *)arg) += 1000;
}

static int test_open_declined(void)
{
    static struct tp t;
    int calls = 0;
    struct agent_stream_cb cb = { &calls, open_none, data_fail, NULL, NULL };
    struct agent_flow_cfg cfg = { .ports = &port9200, .nports = 1 };
    struct agent_flow_table *ft = agent_flow_table_new(&cfg, &cb, NULL, 0);
    tp_init(&t, AGENT_DLT_EN10MB, false, 40000, 9200);
    conv(ft, &t, 1, 2);
    agent_flow_feed(ft, tp_tcp(&t, 0, 50, 0, P, "more", 4));
    SM_CHECK_EQ_INT(calls, 1);
    struct agent_flow_stats st;
    agent_flow_stats(ft, &st);
    SM_CHECK_EQ_INT(st.bytes_delivered, 0);
    agent_flow_table_free(ft, 0);
    return 0;
}

/* ---- pcap file through the capture driver ---------------------------------- */

static void put32le(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }

static size_t pcap_header(uint8_t *out, uint32_t linktype)
{
    put32le(out, 0xa1b23c4d);          /* nanosecond pcap */
    out[4] = 2; out[5] = 0; out[6] = 4; out[7] = 0;
    put32le(out + 8, 0);
    put32le(out + 12, 0);
    put32le(out + 16, 262144);
    put32le(out + 20, linktype);
    return 24;
}

static size_t pcap_record(uint8_t *out, const struct agent_pkt *pkt)
{
    put32le(out, (uint32_t)(pkt->ts_ns / 1000000000ull));
    put32le(out + 4, (uint32_t)(pkt->ts_ns % 1000000000ull));
    put32le(out + 8, pkt->caplen);
    put32le(out + 12, pkt->len);
    memcpy(out + 16, pkt->data, pkt->caplen);
    return 16 + pkt->caplen;
}

static int test_capture_pcap_file_fmemopen(void)
{
    static struct tp t;
    static uint8_t file[1 << 16];
    size_t n = pcap_header(file, 1);
    tp_init(&t, AGENT_DLT_EN10MB, false, 45000, 9200);
    n += pcap_record(file + n, tp_tcp(&t, 0, 1, 0, S, NULL, 0));
    n += pcap_record(file + n, tp_tcp(&t, 1, 7, 2, S | A, NULL, 0));
    n += pcap_record(file + n, tp_tcp(&t, 0, 2, 8, P, "GET /", 5));
    t.ts_ns += 1000;
    n += pcap_record(file + n, tp_tcp(&t, 1, 8, 7, P, "200", 3));
    tp_init(&t, AGENT_DLT_EN10MB, false, 45001, 9999);   /* filtered out by the BPF filter */
    n += pcap_record(file + n, tp_tcp(&t, 0, 1, 0, P, "other", 5));

    struct rec *r = rec_new();
    struct agent_stream_cb cb = rec_cb(r);
    struct agent_capture_cfg cfg;
    agent_capture_cfg_init(&cfg);
    cfg.engine = "pcap-file";
    cfg.pcap_fp = fmemopen(file, n, "rb");
    cfg.ports[0] = 9200;
    cfg.nports = 1;
    struct agent_capture *cap;
    char err[256] = "";
    SM_CHECK_EQ_INT(agent_capture_open(&cfg, &cb, &cap, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(agent_capture_caps(cap), 0);
    SM_CHECK_EQ_INT(agent_capture_run(cap, err, sizeof(err)), SM_OK);
    struct agent_capture_stats st;
    agent_capture_stats(cap, &st);
    SM_CHECK_EQ_INT(st.packets, 4);               /* the filter dropped the 9999 packet */
    SM_CHECK_EQ_INT(st.flow.flows_open, 1);
    SM_CHECK(!r->c[0].closed);
    agent_capture_close(cap);
    SM_CHECK_EQ_INT(r->nconns, 1);
    REC_STREAM_EQ(&r->c[0], 0, "GET /");
    REC_STREAM_EQ(&r->c[0], 1, "200");
    SM_CHECK_EQ_INT(r->c[0].reason, AGENT_CLOSE_SHUTDOWN);
    rec_free(r);

    /* errors name what failed */
    agent_capture_cfg_init(&cfg);
    cfg.engine = "pcap-file";
    cfg.pcap_path = "/nonexistent/x.pcap";
    SM_CHECK_EQ_INT(agent_capture_open(&cfg, &cb, &cap, err, sizeof(err)), SM_EIO);
    SM_CHECK(strstr(err, "/nonexistent/x.pcap") != NULL);
    cfg.engine = "carrier-pigeon";
    SM_CHECK_EQ_INT(agent_capture_open(&cfg, &cb, &cap, err, sizeof(err)), SM_ECONFIG);
    SM_CHECK(strstr(err, "carrier-pigeon") != NULL);
    cfg.engine = "pcap-file";
    cfg.bpf_filter = "tcp and (";
    cfg.pcap_fp = fmemopen(file, n, "rb");
    SM_CHECK_EQ_INT(agent_capture_open(&cfg, &cb, &cap, err, sizeof(err)), SM_ECONFIG);
    SM_CHECK(strstr(err, "filter") != NULL);
    cfg.bpf_filter = NULL;
    /* engine chosen from the settings; a link type we cannot decode is refused up front */
    agent_capture_cfg_init(&cfg);
    pcap_header(file, 147);                       /* LINKTYPE_USER0 */
    cfg.pcap_fp = fmemopen(file, 24, "rb");
    SM_CHECK_EQ_INT(agent_capture_open(&cfg, &cb, &cap, err, sizeof(err)), SM_EUNSUPPORTED);
    SM_CHECK(strstr(err, "pcap-file[stream]") != NULL);
    SM_CHECK(strstr(err, "link type 147") != NULL);
    cfg.engine = "pcap";
    cfg.iface = "sm-no-such-if0";
    SM_CHECK(agent_capture_open(&cfg, &cb, &cap, err, sizeof(err)) != SM_OK);
    SM_CHECK(strstr(err, "sm-no-such-if0") != NULL);
    return 0;
}

/* A pcap file given by path is read through a mapping (agent/source/pcap.c):
 * the same packets in both byte orders, with micro- and nanosecond
 * timestamps, give the same streams and timestamps as libpcap's reading of
 * the nanosecond file; the filter applies; a truncated record is an error. */
static uint64_t g_data_ts[8];
static int g_ndata;

static void ts_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    if (g_ndata < 8)
        g_data_ts[g_ndata++] = ts;
    rec_data(arg, conn, dir, p, n, ts);
}

static void put32(uint8_t *p, uint32_t v, bool be)
{
    if (be) {
        p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
    } else {
        put32le(p, v);
    }
}

static size_t pcap_file_variant(uint8_t *out, bool be, bool nano, struct tp *t)
{
    put32(out, nano ? 0xa1b23c4d : 0xa1b2c3d4, be);
    out[4] = be ? 0 : 2; out[5] = be ? 2 : 0; out[6] = be ? 0 : 4; out[7] = be ? 4 : 0;
    put32(out + 8, 0, be);
    put32(out + 12, 0, be);
    put32(out + 16, 262144, be);
    put32(out + 20, 1, be);
    size_t n = 24;
    tp_init(t, AGENT_DLT_EN10MB, false, 45000, 9200);
    t->ts_ns = 1700000000ull * 1000000000ull + 123456000ull;   /* whole microseconds */
    for (int i = 0; i < 5; i++) {
        const struct agent_pkt *pk;
        if (i == 0) pk = tp_tcp(t, 0, 1, 0, S, NULL, 0);
        else if (i == 1) pk = tp_tcp(t, 1, 7, 2, S | A, NULL, 0);
        else if (i == 2) pk = tp_tcp(t, 0, 2, 8, P, "GET /", 5);
        else if (i == 3) { t->ts_ns += 1000; pk = tp_tcp(t, 1, 8, 7, P, "200", 3); }
        else { tp_init(t, AGENT_DLT_EN10MB, false, 45001, 9999); pk = tp_tcp(t, 0, 1, 0, P, "other", 5); }
        uint64_t sec = pk->ts_ns / 1000000000ull, frac = pk->ts_ns % 1000000000ull;
        put32(out + n, (uint32_t)sec, be);
        put32(out + n + 4, (uint32_t)(nano ? frac : frac / 1000), be);
        put32(out + n + 8, pk->caplen, be);
        put32(out + n + 12, pk->len, be);
        memcpy(out + n + 16, pk->data, pk->caplen);
        n += 16 + pk->caplen;
    }
    return n;
}

static int run_pcap_path(const char *path, uint64_t *ts_out, int *nts, struct rec *r, char *err, size_t errlen)
{
    struct agent_stream_cb cb = rec_cb(r);
    cb.data = ts_data;
    struct agent_capture_cfg cfg;
    agent_capture_cfg_init(&cfg);
    cfg.pcap_path = path;
    cfg.ports[0] = 9200;
    cfg.nports = 1;
    struct agent_capture *cap;
    g_ndata = 0;
    int rc = agent_capture_open(&cfg, &cb, &cap, err, errlen);
    if (rc)
        return rc;
    rc = agent_capture_run(cap, err, errlen);
    struct agent_capture_stats st;
    agent_capture_stats(cap, &st);
    agent_capture_close(cap);
    if (rc == SM_OK && st.packets != 4)
        return -100;
    memcpy(ts_out, g_data_ts, sizeof(g_data_ts));
    *nts = g_ndata;
    return rc;
}

static int test_capture_pcap_file_mapped(void)
{
    static struct tp t;
    static uint8_t file[1 << 16];
    char path[] = "/tmp/sm_test_flow_XXXXXX";
    int fd = mkstemp(path);
    SM_CHECK(fd >= 0);
    close(fd);
    char err[256] = "";
    uint64_t want_ts[8] = { 0 };
    int want_n = -1;
    for (int v = 0; v < 4; v++) {
        bool be = v & 1, nano = v & 2;
        size_t n = pcap_file_variant(file, be, nano, &t);
        FILE *f = fopen(path, "wb");
        SM_CHECK(f && fwrite(file, 1, n, f) == n);
        fclose(f);
        struct rec *r = rec_new();
        uint64_t ts[8];
        int nts = 0;
        int rc = run_pcap_path(path, ts, &nts, r, err, sizeof(err));
        if (rc)
            fprintf(stderr, "variant be=%d nano=%d: rc %d: %s\n", be, nano, rc, err);
        SM_CHECK_EQ_INT(rc, SM_OK);
        SM_CHECK_EQ_INT(r->nconns, 1);
        REC_STREAM_EQ(&r->c[0], 0, "GET /");
        REC_STREAM_EQ(&r->c[0], 1, "200");
        SM_CHECK_EQ_INT(nts, 2);
        SM_CHECK_EQ_INT(ts[0], 1700000000ull * 1000000000ull + 123456000ull);
        SM_CHECK_EQ_INT(ts[1], ts[0] + 1000);
        if (want_n < 0) {
            want_n = nts;
            memcpy(want_ts, ts, sizeof(ts));
        }
        SM_CHECK(memcmp(ts, want_ts, sizeof(uint64_t) * 2) == 0);
        rec_free(r);
        /* the same file through libpcap (a stream): same timestamps */
        if (nano && !be) {
            struct rec *r2 = rec_new();
            struct agent_stream_cb cb = rec_cb(r2);
            cb.data = ts_data;
            struct agent_capture_cfg cfg;
            agent_capture_cfg_init(&cfg);
            cfg.pcap_fp = fmemopen(file, n, "rb");
            cfg.ports[0] = 9200;
            cfg.nports = 1;
            struct agent_capture *cap;
            g_ndata = 0;
            SM_CHECK_EQ_INT(agent_capture_open(&cfg, &cb, &cap, err, sizeof(err)), SM_OK);
            SM_CHECK_EQ_INT(agent_capture_run(cap, err, sizeof(err)), SM_OK);
            agent_capture_close(cap);
            SM_CHECK_EQ_INT(g_ndata, 2);
            SM_CHECK(memcmp(g_data_ts, want_ts, sizeof(uint64_t) * 2) == 0);
            rec_free(r2);
        }
        /* cut inside the last record: an error naming the truncation */
        f = fopen(path, "wb");
        SM_CHECK(f && fwrite(file, 1, n - 3, f) == n - 3);
        fclose(f);
        r = rec_new();
        rc = run_pcap_path(path, ts, &nts, r, err, sizeof(err));
        SM_CHECK_EQ_INT(rc, SM_EIO);
        SM_CHECK(strstr(err, "truncated") != NULL);
        rec_free(r);
    }
    unlink(path);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_links_end_to_end), SM_TC(test_idle_expiry), SM_TC(test_max_flows_eviction),
             SM_TC(test_memory_cap_ooo_flood), SM_TC(test_memory_cap_syn_flood),
             SM_TC(test_roles_without_ports), SM_TC(test_open_declined),
             SM_TC(test_capture_pcap_file_fmemopen), SM_TC(test_capture_pcap_file_mapped))
