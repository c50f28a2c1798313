/* Flow table and TCP reassembly; see flow.h and docs/capture.md. */
#include "flow/flow.h"

#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

#include "source/decode.h"

#define SEQ_WINDOW (1u << 30)   /* data further than this from the expected byte is bogus */

static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

struct seg {                    /* bytes held out of order */
    struct seg *next;
    uint64_t ts_ns;
    uint32_t seq, len;
    uint8_t data[];
};

struct half {                   /* one direction of a connection */
    uint32_t isn, next, fin_seq;
    bool init, fin, fin_done;
    bool isn_known;             /* isn seen in a SYN or implied by the peer's SYN-ACK */
    struct seg *q;              /* sorted by seq, non-overlapping, all after next */
    uint64_t qbytes;
    uint64_t hole_since_ns;     /* when the current first hole was noticed */
};

struct fkey {                   /* canonical: endpoint 0 sorts before endpoint 1 */
    uint8_t ip[2][16];
    uint16_t port[2];
    uint8_t family;
    uint8_t pad;
};

enum { FLOW_OPEN = 0, FLOW_CLOSED = 1 };

struct flow {
    struct flow *hnext;         /* hash chain */
    struct flow *lprev, *lnext; /* LRU list, least recently seen first */
    struct fkey key;
    uint32_t hash;
    uint8_t state;
    bool opened, ignored;
    uint8_t queued_dirs;        /* bit per direction with a non-empty queue */
    bool reuse_pending;         /* a SYN with another ISN came from side reuse_dir */
    uint8_t reuse_dir;
    uint32_t reuse_isn, reuse_len;  /* its ISN and payload bytes (Fast Open) */
    uint64_t last_ns;
    void *conn;
    struct agent_conn_info info;
    struct half h[2];
};

struct agent_flow_table {
    struct agent_stream_cb cb;
    uint16_t ports[AGENT_FLOW_MAX_PORTS];
    size_t nports;
    uint64_t idle_ns, hole_ns;
    uint32_t max_flows;
    uint64_t max_ooo, mem_cap;

    struct flow **buckets;
    uint32_t nbuckets;          /* power of two */
    uint32_t nflows;            /* entries, tombstones included */
    uint64_t seed;
    struct flow *lru_head, *lru_tail;
    uint64_t queued_flows;      /* directions with queued data */
    uint64_t now_ns, next_expire_ns, expire_step_ns;
    uint64_t serial;
    struct agent_flow_stats st;
};

/* ---- memory accounting ---------------------------------------------------- */

static void mem_add(struct agent_flow_table *ft, uint64_t n)
{
    ft->st.mem_in_use += n;
    if (ft->st.mem_in_use > ft->st.mem_peak)
        ft->st.mem_peak = ft->st.mem_in_use;
}

static void mem_sub(struct agent_flow_table *ft, uint64_t n) { ft->st.mem_in_use -= n; }

static uint64_t seg_cost(uint32_t len) { return sizeof(struct seg) + len; }

/* ---- events --------------------------------------------------------------- */

static bool ensure_open(struct agent_flow_table *ft, struct flow *flow, uint64_t ts)
{
    if (flow->ignored)
        return false;
    if (flow->opened)
        return true;
    flow->opened = true;
    flow->conn = ft->cb.open ? ft->cb.open(ft->cb.arg, &flow->info, ts) : NULL;
    if (!flow->conn) {
        flow->ignored = true;
        return false;
    }
    return true;
}

static void emit_data(struct agent_flow_table *ft, struct flow *flow, int dir, const uint8_t *p,
                      size_t n, uint64_t ts)
{
    if (n == 0 || !ensure_open(ft, flow, ts))
        return;
    ft->st.bytes_delivered += n;
    if (ft->cb.data)
        ft->cb.data(ft->cb.arg, flow->conn, (enum agent_dir)dir, p, n, ts);
}

static void emit_gap(struct agent_flow_table *ft, struct flow *flow, int dir, uint64_t lost,
                     uint64_t ts, const char *why)
{
    if (lost == 0 || !ensure_open(ft, flow, ts))
        return;
    ft->st.gaps++;
    ft->st.bytes_lost += lost;
    sm_dbg(SM_DBG_FLOW, "flow %llu: %s gap of %llu bytes (%s)", (unsigned long long)flow->info.engine_conn_id,
           dir == AGENT_C2S ? "c2s" : "s2c", (unsigned long long)lost, why);
    if (ft->cb.gap)
        ft->cb.gap(ft->cb.arg, flow->conn, (enum agent_dir)dir, lost, ts, why);
}

/* ---- reassembly ----------------------------------------------------------- */

static void queue_state(struct agent_flow_table *ft, struct flow *flow, int dir, uint64_t ts)
{
    uint8_t bit = (uint8_t)(1u << dir);
    bool had = flow->queued_dirs & bit;
    bool has = flow->h[dir].q != NULL;
    if (has && !had) {
        flow->queued_dirs |= bit;
        ft->queued_flows++;
        flow->h[dir].hole_since_ns = ts;
    } else if (!has && had) {
        flow->queued_dirs &= (uint8_t)~bit;
        ft->queued_flows--;
    }
}

/* Delivers queued bytes that became contiguous with next. */
static void deliver_queued(struct agent_flow_table *ft, struct flow *flow, int dir, uint64_t ts)
{
    struct half *h = &flow->h[dir];
    bool moved = false;
    while (h->q && seq_le(h->q->seq, h->next)) {
        struct seg *s = h->q;
        uint32_t end = s->seq + s->len;
        if (seq_lt(h->next, end)) {
            uint32_t off = h->next - s->seq;
            emit_data(ft, flow, dir, s->data + off, s->len - off, s->ts_ns);
            h->next = end;
        }
        h->q = s->next;
        h->qbytes -= s->len;
        mem_sub(ft, seg_cost(s->len));
        sm_free(s);
        moved = true;
    }
    if (moved && h->q)
        h->hole_since_ns = ts;     /* a new first hole starts now */
    queue_state(ft, flow, dir, ts);
}

/* Moves next up to target: holes become gaps, queued bytes are delivered. */
static void force_to(struct agent_flow_table *ft, struct flow *flow, int dir, uint32_t target,
                     uint64_t ts, const char *why)
{
    struct half *h = &flow->h[dir];
    while (seq_lt(h->next, target)) {
        if (h->q && seq_le(h->q->seq, h->next)) {
            deliver_queued(ft, flow, dir, ts);
            continue;
        }
        uint32_t hole_end = (h->q && seq_lt(h->q->seq, target)) ? h->q->seq : target;
        emit_gap(ft, flow, dir, hole_end - h->next, ts, why);
        h->next = hole_end;
    }
    deliver_queued(ft, flow, dir, ts);
}

static void force_first_hole(struct agent_flow_table *ft, struct flow *flow, int dir, uint64_t ts,
                             const char *why)
{
    if (flow->h[dir].q)
        force_to(ft, flow, dir, flow->h[dir].q->seq, ts, why);
}

/* Everything buffered goes out (end of the connection). */
static void flush_dir(struct agent_flow_table *ft, struct flow *flow, int dir, uint64_t ts)
{
    struct half *h = &flow->h[dir];
    while (h->q)
        force_first_hole(ft, flow, dir, ts, "connection end");
    if (h->init && h->fin && seq_lt(h->next, h->fin_seq))
        force_to(ft, flow, dir, h->fin_seq, ts, "connection end");
}

static struct seg *seg_new(struct agent_flow_table *ft, uint32_t seq, const uint8_t *p, uint32_t len,
                           uint64_t ts)
{
    struct seg *s = sm_malloc(sizeof(*s) + len);
    if (!s) {
        ft->st.dropped_bytes += len;
        return NULL;
    }
    s->next = NULL;
    s->ts_ns = ts;
    s->seq = seq;
    s->len = len;
    memcpy(s->data, p, len);
    mem_add(ft, seg_cost(len));
    return s;
}

/* Queues [start, start+len) around what is queued already: the first copy of
 * every byte wins; differing overlapping bytes are counted. */
static void queue_insert(struct agent_flow_table *ft, struct flow *flow, int dir, uint32_t start,
                         const uint8_t *p, uint32_t len, uint64_t ts)
{
    struct half *h = &flow->h[dir];
    struct seg **pp = &h->q;
    uint32_t cur = start, end = start + len;
    bool overlapped = false, added = false;

    while (*pp && seq_lt(cur, end)) {
        struct seg *q = *pp;
        uint32_t qs = q->seq, qe = q->seq + q->len;
        if (seq_le(qe, cur)) {
            pp = &q->next;
            continue;
        }
        if (seq_le(end, qs))
            break;
        if (seq_lt(cur, qs)) {
            struct seg *s = seg_new(ft, cur, p + (cur - start), qs - cur, ts);
            if (s) {
                s->next = q;
                *pp = s;
                pp = &s->next;
                h->qbytes += s->len;
                added = true;
            }
            cur = qs;
        }
        uint32_t oe = seq_lt(end, qe) ? end : qe;
        const uint8_t *a = p + (cur - start), *b = q->data + (cur - qs);
        for (uint32_t i = 0, n = oe - cur; i < n; i++)
            if (a[i] != b[i])
                ft->st.overlap_diff_bytes++;
        overlapped = true;
        cur = oe;
        pp = &q->next;
    }
    if (seq_lt(cur, end)) {
        struct seg *s = seg_new(ft, cur, p + (cur - start), end - cur, ts);
        if (s) {
            s->next = *pp;
            *pp = s;
            h->qbytes += s->len;
            added = true;
        }
    }
    if (overlapped) {
        if (added)
            ft->st.overlaps++;
        else
            ft->st.retransmissions++;
    }
    queue_state(ft, flow, dir, ts);
}

static void data_in(struct agent_flow_table *ft, struct flow *flow, int dir, uint32_t start,
                    const uint8_t *p, uint32_t len, uint64_t ts)
{
    struct half *h = &flow->h[dir];
    if (len == 0)
        return;
    if (h->fin && !seq_lt(start, h->fin_seq))
        return;                                      /* after FIN: bogus */
    if (h->fin && seq_lt(h->fin_seq, start + len))
        len = h->fin_seq - start;
    uint32_t end = start + len;
    if (seq_le(end, h->next)) {                      /* all delivered already */
        ft->st.retransmissions++;
        return;
    }
    if (seq_lt(start, h->next)) {                    /* partly delivered already */
        uint32_t off = h->next - start;
        p += off;
        len -= off;
        start = h->next;
        ft->st.overlaps++;
    }
    if (start - h->next >= SEQ_WINDOW) {
        ft->st.ignored++;
        return;
    }
    if (start == h->next && !h->q) {                 /* the common case: no copy */
        emit_data(ft, flow, dir, p, len, ts);
        h->next = end;
        return;
    }
    if (start != h->next) {
        ft->st.ooo_segments++;
        /* bounds: make room by giving up on the oldest hole of this direction */
        while (h->q && h->qbytes + len > ft->max_ooo)
            force_first_hole(ft, flow, dir, ts, "queue bound");
        while (h->q && ft->st.mem_in_use + seg_cost(len) > ft->mem_cap)
            force_first_hole(ft, flow, dir, ts, "memory cap");
        if (seq_le(end, h->next)) {                  /* forcing moved past it */
            return;
        }
        if (seq_lt(start, h->next)) {
            uint32_t off = h->next - start;
            p += off;
            len -= off;
            start = h->next;
        }
        if (start != h->next && (len > ft->max_ooo || ft->st.mem_in_use + seg_cost(len) > ft->mem_cap)) {
            ft->st.dropped_bytes += len;             /* becomes part of a gap later */
            return;
        }
        if (start == h->next && !h->q) {
            emit_data(ft, flow, dir, p, len, ts);
            h->next = end;
            return;
        }
    }
    queue_insert(ft, flow, dir, start, p, len, ts);
    deliver_queued(ft, flow, dir, ts);
}

/* ---- table ---------------------------------------------------------------- */

/* Word-wise multiply-xorshift over the key (38 bytes: 5 words), seeded per
 * table: a byte-wise FNV here was 4% of the agent's CPU (one serial multiply
 * per byte, two lookups per request). */
static uint32_t key_hash(const struct agent_flow_table *ft, const struct fkey *k)
{
    _Static_assert(sizeof(struct fkey) == 38, "fkey layout");
    uint64_t w[5] = { 0 };
    memcpy(w, k, sizeof(*k));
    uint64_t x = ft->seed ^ 0xcbf29ce484222325ull;
    for (size_t i = 0; i < 5; i++) {
        x = (x ^ w[i]) * 0x9e3779b97f4a7c15ull;
        x ^= x >> 29;
    }
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (uint32_t)x;
}

static bool key_eq(const struct fkey *a, const struct fkey *b)
{
    uint64_t x[5] = { 0 }, y[5] = { 0 };   /* inline word compares, not a memcmp() call */
    memcpy(x, a, sizeof(*a));
    memcpy(y, b, sizeof(*b));
    return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]));
}

static void lru_unlink(struct agent_flow_table *ft, struct flow *flow)
{
    if (flow->lprev)
        flow->lprev->lnext = flow->lnext;
    else
        ft->lru_head = flow->lnext;
    if (flow->lnext)
        flow->lnext->lprev = flow->lprev;
    else
        ft->lru_tail = flow->lprev;
    flow->lprev = flow->lnext = NULL;
}

static void lru_append(struct agent_flow_table *ft, struct flow *flow)
{
    flow->lprev = ft->lru_tail;
    flow->lnext = NULL;
    if (ft->lru_tail)
        ft->lru_tail->lnext = flow;
    else
        ft->lru_head = flow;
    ft->lru_tail = flow;
}

static void touch(struct agent_flow_table *ft, struct flow *flow)
{
    flow->last_ns = ft->now_ns;
    if (ft->lru_tail != flow) {
        lru_unlink(ft, flow);
        lru_append(ft, flow);
    }
}

static void free_queue(struct agent_flow_table *ft, struct flow *flow, int dir)
{
    struct half *h = &flow->h[dir];
    while (h->q) {
        struct seg *s = h->q;
        h->q = s->next;
        mem_sub(ft, seg_cost(s->len));
        sm_free(s);
    }
    h->qbytes = 0;
    queue_state(ft, flow, dir, 0);
}

/* Delivers what is buffered and tells downstream; the entry stays as a
 * tombstone (absorbing late packets) until it lingers out. */
static void flow_close(struct agent_flow_table *ft, struct flow *flow, enum agent_close_reason why,
                       uint64_t ts)
{
    if (flow->state == FLOW_CLOSED)
        return;
    flush_dir(ft, flow, AGENT_C2S, ts);
    flush_dir(ft, flow, AGENT_S2C, ts);
    free_queue(ft, flow, AGENT_C2S);
    free_queue(ft, flow, AGENT_S2C);
    if (flow->opened && !flow->ignored && ft->cb.close)
        ft->cb.close(ft->cb.arg, flow->conn, why, ts);
    flow->conn = NULL;
    flow->state = FLOW_CLOSED;
    ft->st.flows_open--;
    ft->st.flows_closed++;
    if (why == AGENT_CLOSE_IDLE)
        ft->st.flows_idle++;
    else if (why == AGENT_CLOSE_EVICTED)
        ft->st.flows_evicted++;
    else if (why == AGENT_CLOSE_REPLACED)
        ft->st.flows_replaced++;
}

static void flow_remove(struct agent_flow_table *ft, struct flow *flow)
{
    struct flow **pp = &ft->buckets[flow->hash & (ft->nbuckets - 1)];
    while (*pp && *pp != flow)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = flow->hnext;
    lru_unlink(ft, flow);
    free_queue(ft, flow, AGENT_C2S);
    free_queue(ft, flow, AGENT_S2C);
    ft->nflows--;
    mem_sub(ft, sizeof(*flow));
    sm_free(flow);
}

/* Closes (as evicted) and removes the least recently seen entry. */
static bool evict_one(struct agent_flow_table *ft, uint64_t ts)
{
    struct flow *flow = ft->lru_head;
    if (!flow)
        return false;
    flow_close(ft, flow, AGENT_CLOSE_EVICTED, ts);
    flow_remove(ft, flow);
    return true;
}

static struct flow *flow_lookup(struct agent_flow_table *ft, const struct fkey *k, uint32_t hash)
{
    for (struct flow *flow = ft->buckets[hash & (ft->nbuckets - 1)]; flow; flow = flow->hnext)
        if (flow->hash == hash && key_eq(&flow->key, k))
            return flow;
    return NULL;
}

static struct flow *flow_create(struct agent_flow_table *ft, const struct fkey *k, uint32_t hash,
                                const struct agent_tcp_seg *seg, bool src_is_client, uint64_t ts)
{
    while (ft->nflows >= ft->max_flows || ft->st.mem_in_use + sizeof(struct flow) > ft->mem_cap)
        if (!evict_one(ft, ts))
            break;
    struct flow *flow = sm_calloc(1, sizeof(*flow));
    if (!flow)
        return NULL;
    mem_add(ft, sizeof(*flow));
    flow->key = *k;
    flow->hash = hash;
    flow->info.family = seg->family;
    memcpy(flow->info.client_ip, src_is_client ? seg->src : seg->dst, 16);
    memcpy(flow->info.server_ip, src_is_client ? seg->dst : seg->src, 16);
    flow->info.client_port = src_is_client ? seg->sport : seg->dport;
    flow->info.server_port = src_is_client ? seg->dport : seg->sport;
    flow->info.mid_stream = !(seg->flags & AGENT_TCP_SYN);
    flow->info.engine_conn_id = ++ft->serial;
    struct flow **b = &ft->buckets[hash & (ft->nbuckets - 1)];
    flow->hnext = *b;
    *b = flow;
    flow->last_ns = ft->now_ns;
    lru_append(ft, flow);
    ft->nflows++;
    ft->st.flows_created++;
    ft->st.flows_open++;
    return flow;
}

static bool port_listed(const struct agent_flow_table *ft, uint16_t port)
{
    for (size_t i = 0; i < ft->nports; i++)
        if (ft->ports[i] == port)
            return true;
    return false;
}

/* ---- packets -------------------------------------------------------------- */

static void ack_in(struct agent_flow_table *ft, struct flow *flow, int dir, uint32_t ack, uint64_t ts)
{
    struct half *h = &flow->h[dir];        /* the direction being acknowledged */
    if (!h->init)
        return;
    uint32_t target = ack;
    if (h->fin && seq_lt(h->fin_seq, target))
        target = h->fin_seq;
    if (seq_lt(h->next, target) && target - h->next < SEQ_WINDOW)
        force_to(ft, flow, dir, target, ts, "capture loss");
}

static int seg_dir(const struct flow *flow, const struct agent_tcp_seg *seg)
{
    return (!memcmp(seg->src, flow->info.client_ip, 16) && seg->sport == flow->info.client_port)
           ? AGENT_C2S : AGENT_S2C;
}

/* Does a SYN at seq from the side h start another connection than the one
 * tracked? A half whose ISN is known compares it (a retransmitted SYN has the
 * same); a half joined mid-stream has no ISN to compare, so any SYN does. */
static bool syn_is_new(const struct half *h, uint32_t seq)
{
    return h->isn_known ? seq != h->isn : h->init;
}

/* A SYN with another ISN on an open flow is remembered, not acted on: it is
 * either a new connection on the same tuple whose predecessor ended without
 * a close we saw (its FIN or RST lost in capture), or a stray SYN that the
 * server answers with a challenge ACK (RFC 5961) while the old connection
 * goes on. The flow is replaced only once the new connection shows it was
 * accepted: the peer's SYN-ACK acknowledging that SYN, or the SYN sender's
 * next segment starting right after it (the SYN-ACK missed). */
static bool reuse_confirmed(const struct flow *flow, const struct agent_tcp_seg *seg, int dir)
{
    bool syn = seg->flags & AGENT_TCP_SYN, ack = seg->flags & AGENT_TCP_ACK;
    /* the byte after the SYN, or after its Fast Open data if that was taken */
    uint32_t first = flow->reuse_isn + 1, after = first + flow->reuse_len;
    if (dir != flow->reuse_dir)
        return syn && ack && (seg->ack == first || seg->ack == after);
    return !syn && ack && !(seg->flags & AGENT_TCP_RST) && (seg->seq == first || seg->seq == after) &&
           seg->seq != flow->h[dir].next;
}

/* Closes flow (AGENT_CLOSE_REPLACED, after delivering what it buffered) and
 * tracks the connection of its pending SYN in its place; seg is the packet
 * that confirmed it, from side dir. NULL if no flow could be made. */
static struct flow *flow_replace(struct agent_flow_table *ft, struct flow *flow,
                                 const struct agent_tcp_seg *seg, int dir, uint64_t ts)
{
    struct fkey k = flow->key;
    uint32_t hash = flow->hash, isn = flow->reuse_isn;
    bool src_is_client = dir == flow->reuse_dir;     /* the SYN sender is the client */
    flow_close(ft, flow, AGENT_CLOSE_REPLACED, ts);
    flow_remove(ft, flow);
    struct flow *nf = flow_create(ft, &k, hash, seg, src_is_client, ts);
    if (!nf)
        return NULL;
    nf->info.mid_stream = false;
    struct half *c = &nf->h[AGENT_C2S], *s = &nf->h[AGENT_S2C];
    c->init = c->isn_known = true;
    c->isn = isn;
    c->next = isn + 1;
    if (src_is_client && (seg->flags & AGENT_TCP_ACK)) {   /* the SYN-ACK was missed */
        s->init = s->isn_known = true;
        s->isn = seg->ack - 1;
        s->next = seg->ack;
    }
    return nf;
}

/* A RST counts only if its sequence number is where its sender is, or ahead
 * (bytes lost in capture): one behind belongs to an earlier incarnation or
 * comes from a middlebox the endpoint ignores too (RFC 5961 window check,
 * without knowing the receive window). */
static bool rst_acceptable(const struct half *h, uint32_t seq)
{
    return !h->init || seq - h->next < SEQ_WINDOW;
}

static void segment_in(struct agent_flow_table *ft, const struct agent_tcp_seg *seg, uint64_t ts)
{
    struct fkey k;
    memset(&k, 0, sizeof(k));
    int cmp = memcmp(seg->src, seg->dst, 16);
    bool src_first = cmp < 0 || (cmp == 0 && seg->sport <= seg->dport);
    memcpy(k.ip[src_first ? 0 : 1], seg->src, 16);
    memcpy(k.ip[src_first ? 1 : 0], seg->dst, 16);
    k.port[src_first ? 0 : 1] = seg->sport;
    k.port[src_first ? 1 : 0] = seg->dport;
    k.family = (uint8_t)seg->family;
    uint32_t hash = key_hash(ft, &k);
    bool syn = seg->flags & AGENT_TCP_SYN, ack = seg->flags & AGENT_TCP_ACK;
    bool rst = seg->flags & AGENT_TCP_RST, fin = seg->flags & AGENT_TCP_FIN;

    struct flow *flow = flow_lookup(ft, &k, hash);
    if (flow && flow->state == FLOW_CLOSED) {
        int sdir = seg_dir(flow, seg);
        if (syn && (!ack || syn_is_new(&flow->h[sdir], seg->seq))) {
            flow_remove(ft, flow);               /* port reuse: a new connection */
            flow = NULL;
        } else {
            ft->st.ignored++;                    /* straggler of a closed connection */
            return;
        }
    }
    if (!flow) {
        bool src_is_client;
        bool dl = port_listed(ft, seg->dport), sl = port_listed(ft, seg->sport);
        if (rst || (ft->nports && !dl && !sl)) {
            ft->st.ignored++;
            return;
        }
        if (syn)
            src_is_client = !ack;
        else if (seg->wirelen == 0) {            /* pure ACK/FIN of an unknown flow: nothing to join */
            ft->st.ignored++;
            return;
        } else if (ft->nports)
            src_is_client = dl;
        else
            src_is_client = seg->dport <= seg->sport;
        flow = flow_create(ft, &k, hash, seg, src_is_client, ts);
        if (!flow) {
            ft->st.ignored++;
            return;
        }
    }
    int dir = seg_dir(flow, seg);
    if (flow->reuse_pending && reuse_confirmed(flow, seg, dir)) {
        flow = flow_replace(ft, flow, seg, dir, ts);
        if (!flow) {
            ft->st.ignored++;
            return;
        }
        dir = seg_dir(flow, seg);
    }
    touch(ft, flow);
    struct half *h = &flow->h[dir], *o = &flow->h[!dir];

    if (rst) {
        if (!rst_acceptable(h, seg->seq)) {
            ft->st.rst_ignored++;
            return;
        }
        flow_close(ft, flow, AGENT_CLOSE_RST, ts);
        return;
    }
    uint32_t data_seq = seg->seq;
    if (syn) {
        if (syn_is_new(h, seg->seq)) {
            if (!ack) {                          /* maybe a new connection: wait for proof */
                flow->reuse_pending = true;
                flow->reuse_dir = (uint8_t)dir;
                flow->reuse_isn = seg->seq;
                flow->reuse_len = (uint32_t)seg->wirelen;
            }
            ft->st.ignored++;
            return;
        }
        if (!h->init) {
            h->init = h->isn_known = true;
            h->isn = seg->seq;
            h->next = seg->seq + 1;
        }
        data_seq = seg->seq + 1;
        if (ack && !o->init) {                   /* SYN-ACK: the client's next byte */
            o->init = o->isn_known = true;
            o->isn = seg->ack - 1;
            o->next = seg->ack;
        }
    } else if (!h->init) {                       /* mid-stream join */
        h->init = true;
        h->next = seg->seq;
    }
    /* the peer has what this ACK covers: bytes of it we lack are lost */
    if (ack)
        ack_in(ft, flow, !dir, seg->ack, ts);
    if (flow->state == FLOW_CLOSED)
        return;
    if (flow->ignored) {
        free_queue(ft, flow, AGENT_C2S);
        free_queue(ft, flow, AGENT_S2C);
    } else if (seg->paylen > 0) {
        data_in(ft, flow, dir, data_seq, seg->payload, seg->paylen, ts);
    }
    if (fin && !h->fin) {
        h->fin = true;
        h->fin_seq = data_seq + seg->wirelen;
        if (seq_lt(h->fin_seq, h->next))
            h->fin_seq = h->next;
    }
    for (int d = 0; d < 2; d++) {
        struct half *x = &flow->h[d];
        if (x->fin && !x->fin_done && (flow->ignored || !seq_lt(x->next, x->fin_seq)))
            x->fin_done = true;
    }
    if (flow->h[0].fin_done && flow->h[1].fin_done)
        flow_close(ft, flow, AGENT_CLOSE_FIN, ts);
}

/* ---- public --------------------------------------------------------------- */

const char *agent_close_reason_name(enum agent_close_reason reason)
{
    static const char *const names[] = { "fin", "rst", "idle", "shutdown", "evicted", "replaced" };
    return (unsigned)reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "?";
}

struct agent_flow_table *agent_flow_table_new(const struct agent_flow_cfg *cfg,
                                              const struct agent_stream_cb *cb,
                                              char *err, size_t errlen)
{
    struct agent_flow_table *ft = sm_calloc(1, sizeof(*ft));
    if (!ft) {
        sm_errf(err, errlen, SM_ENOMEM, "flow table: out of memory");
        return NULL;
    }
    ft->cb = *cb;
    ft->nports = cfg->nports < AGENT_FLOW_MAX_PORTS ? cfg->nports : AGENT_FLOW_MAX_PORTS;
    if (ft->nports)
        memcpy(ft->ports, cfg->ports, ft->nports * sizeof(uint16_t));
    ft->idle_ns = cfg->idle_timeout_ns ? cfg->idle_timeout_ns : AGENT_FLOW_IDLE_TIMEOUT_DEFAULT_NS;
    ft->hole_ns = cfg->hole_timeout_ns ? cfg->hole_timeout_ns : AGENT_FLOW_HOLE_TIMEOUT_DEFAULT_NS;
    ft->max_flows = cfg->max_flows ? cfg->max_flows : AGENT_FLOW_MAX_FLOWS_DEFAULT;
    ft->max_ooo = cfg->max_ooo_bytes ? cfg->max_ooo_bytes : AGENT_FLOW_MAX_OOO_DEFAULT;
    ft->mem_cap = cfg->mem_cap ? cfg->mem_cap : AGENT_FLOW_MEM_CAP_DEFAULT;
    uint32_t nb = 64;
    while (nb < ft->max_flows && nb < (1u << 22))
        nb <<= 1;
    ft->nbuckets = nb;
    ft->buckets = sm_calloc(nb, sizeof(*ft->buckets));
    if (!ft->buckets) {
        sm_free(ft);
        sm_errf(err, errlen, SM_ENOMEM, "flow table: out of memory for %u buckets", nb);
        return NULL;
    }
    mem_add(ft, sizeof(*ft) + (uint64_t)nb * sizeof(*ft->buckets));
    ft->seed = (uint64_t)(uintptr_t)ft ^ ((uint64_t)(uintptr_t)ft->buckets << 17);
    uint64_t step = 1000000000ull;
    if (ft->idle_ns / 4 < step)
        step = ft->idle_ns / 4;
    if (ft->hole_ns / 4 < step)
        step = ft->hole_ns / 4;
    ft->expire_step_ns = step ? step : 1;
    return ft;
}

void agent_flow_expire(struct agent_flow_table *ft, uint64_t now_ns)
{
    if (now_ns > ft->now_ns)
        ft->now_ns = now_ns;
    uint64_t now = ft->now_ns;
    ft->next_expire_ns = now + ft->expire_step_ns;
    uint64_t linger = AGENT_FLOW_LINGER_NS < ft->idle_ns ? AGENT_FLOW_LINGER_NS : ft->idle_ns;

    for (struct flow *flow = ft->lru_head, *next; flow; flow = next) {
        next = flow->lnext;
        if (flow->last_ns + linger > now)
            break;                              /* LRU order: the rest are younger */
        if (flow->state == FLOW_CLOSED) {
            flow_remove(ft, flow);
        } else if (flow->last_ns + ft->idle_ns <= now) {
            flow_close(ft, flow, AGENT_CLOSE_IDLE, now);
            flow_remove(ft, flow);
        }
    }
    if (ft->queued_flows == 0)
        return;
    for (struct flow *flow = ft->lru_head; flow; flow = flow->lnext) {
        if (!flow->queued_dirs)
            continue;
        for (int d = 0; d < 2; d++)
            while (flow->h[d].q && flow->h[d].hole_since_ns + ft->hole_ns <= now)
                force_first_hole(ft, flow, d, now, "hole timeout");
    }
}

void agent_flow_feed(struct agent_flow_table *ft, const struct agent_pkt *pkt)
{
    struct agent_tcp_seg seg;
    if (pkt->ts_ns > ft->now_ns)
        ft->now_ns = pkt->ts_ns;
    if (ft->now_ns >= ft->next_expire_ns)
        agent_flow_expire(ft, ft->now_ns);
    switch (agent_decode(pkt, &seg)) {
    case AGENT_DEC_TCP:
        segment_in(ft, &seg, pkt->ts_ns);
        break;
    case AGENT_DEC_NOT_TCP:
        ft->st.not_tcp++;
        break;
    case AGENT_DEC_FRAGMENT:
        ft->st.fragments++;
        break;
    default:
        ft->st.decode_errors++;
        break;
    }
}

void agent_flow_stats(const struct agent_flow_table *ft, struct agent_flow_stats *out)
{
    *out = ft->st;
}

void agent_flow_table_free(struct agent_flow_table *ft, uint64_t now_ns)
{
    if (!ft)
        return;
    uint64_t ts = now_ns ? now_ns : ft->now_ns;
    while (ft->lru_head) {
        struct flow *flow = ft->lru_head;
        flow_close(ft, flow, AGENT_CLOSE_SHUTDOWN, ts);
        flow_remove(ft, flow);
    }
    sm_free(ft->buckets);
    sm_free(ft);
}

void agent_flow_set_ports(struct agent_flow_table *ft, const uint16_t *ports, size_t nports)
{
    ft->nports = nports < AGENT_FLOW_MAX_PORTS ? nports : AGENT_FLOW_MAX_PORTS;
    if (ft->nports)
        memcpy(ft->ports, ports, ft->nports * sizeof(uint16_t));
}
