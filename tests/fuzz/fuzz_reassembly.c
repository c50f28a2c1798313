/* Fuzz harness: packet sequences through decode + flow table + reassembly.
 *
 * Input: type-length-value records, one packet each:
 *   u8  kind   bits 0-2: link type (index into links[]), bits 3-7: time step
 *              (in 50 ms units) before this packet
 *   u16 len    little endian
 *   len bytes  the packet as captured on that link
 * Small bounds (16 flows, 4 KiB out-of-order per direction, 192 KiB memory,
 * 1 s idle, 300 ms hole timeout) make every limit reachable.
 *
 * The stream callbacks check invariants and abort() on a violation: no event
 * after close, one close per opened connection, no empty data or gap, the
 * per-direction byte totals add up to the table's counters, and memory stays
 * within the cap. tests/integration/capture/gen_cases.py --fuzz-seeds writes
 * the seed corpus from its crafted pcaps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow.h"

#define MAX_CONNS 4096

static const int links[8] = { AGENT_DLT_EN10MB, AGENT_DLT_LINUX_SLL, AGENT_DLT_LINUX_SLL2,
                              AGENT_DLT_NULL, AGENT_DLT_LOOP, AGENT_LINKTYPE_RAW, AGENT_DLT_IPV4,
                              AGENT_DLT_IPV6 };

struct fconn {
    int closed;
    uint64_t data[2], lost[2];
};

struct fstate {
    struct fconn conns[MAX_CONNS];
    int n;
    uint64_t opens;
    uint64_t data_total, lost_total;
};

static struct fstate fs;

static void *f_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    (void)arg; (void)ts;
    if (info->client_port == 0 && info->server_port == 0)
        return NULL;               /* exercise declined connections */
    fs.opens++;
    if (fs.n >= MAX_CONNS)
        return NULL;
    struct fconn *c = &fs.conns[fs.n++];
    memset(c, 0, sizeof(*c));
    return c;
}

static void f_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)arg; (void)ts;
    struct fconn *c = conn;
    if (c->closed || n == 0 || (dir != AGENT_C2S && dir != AGENT_S2C))
        abort();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < n; i++)   /* touch every byte: ASan checks the borrowed buffer */
        sink ^= p[i];
    (void)sink;
    c->data[dir] += n;
    fs.data_total += n;
}

static void f_gap(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts, const char *why)
{
    (void)arg; (void)ts;
    struct fconn *c = conn;
    if (c->closed || lost == 0 || !why || (dir != AGENT_C2S && dir != AGENT_S2C))
        abort();
    c->lost[dir] += lost;
    fs.lost_total += lost;
}

static void f_close(void *arg, void *conn, enum agent_close_reason reason, uint64_t ts)
{
    (void)arg; (void)ts;
    struct fconn *c = conn;
    if (c->closed || reason > AGENT_CLOSE_REPLACED)
        abort();
    c->closed = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t ports[] = { 9200, 80 };
    struct agent_flow_cfg cfg = {
        .ports = ports, .nports = size > 0 && (data[0] & 0x80) ? 0 : 2,
        .idle_timeout_ns = 1000000000ull, .hole_timeout_ns = 300000000ull,
        .max_flows = 16, .max_ooo_bytes = 4096, .mem_cap = 192 * 1024,
    };
    struct agent_stream_cb cb = { NULL, f_open, f_data, f_gap, f_close };
    memset(&fs, 0, sizeof(fs));
    struct agent_flow_table *ft = agent_flow_table_new(&cfg, &cb, NULL, 0);
    if (!ft)
        return 0;
    uint64_t ts = 1700000000ull * 1000000000ull;
    size_t off = 0;
    while (off + 3 <= size) {
        uint8_t kind = data[off];
        size_t len = (size_t)data[off + 1] | ((size_t)data[off + 2] << 8);
        off += 3;
        if (len > size - off)
            len = size - off;
        ts += (uint64_t)(kind >> 3) * 50000000ull;
        /* an exact-size copy so reads past the packet are caught */
        uint8_t *pkt = malloc(len ? len : 1);
        if (!pkt)
            break;
        memcpy(pkt, data + off, len);
        struct agent_pkt p = { .ts_ns = ts, .linktype = links[kind & 7], .caplen = (uint32_t)len,
                               .len = (uint32_t)len, .data = pkt };
        agent_flow_feed(ft, &p);
        free(pkt);
        off += len;
    }
    struct agent_flow_stats st;
    agent_flow_stats(ft, &st);
    if (st.mem_peak > cfg.mem_cap)
        abort();
    if (st.bytes_delivered != fs.data_total || st.bytes_lost != fs.lost_total)
        abort();
    agent_flow_table_free(ft, 0);
    for (int i = 0; i < fs.n; i++)
        if (!fs.conns[i].closed)
            abort();                 /* every opened connection is closed at shutdown */
    return 0;
}
