/* Flow table and TCP reassembly.
 *
 * Packets (struct agent_pkt) go in; per-connection stream events
 * (agent/flow/stream.h) come out, in capture order: bytes that are in order
 * are delivered at once, on the packet that completed them, so the two
 * directions of a connection interleave as captured.
 *
 * Rules (docs/capture.md has the full list):
 * - The flow key is the 5-tuple; both directions map to one flow. The
 *   server is the side whose port is in ports[] (else the SYN receiver,
 *   else the lower port).
 * - A flow is opened downstream (cb->open) at its first data or gap event:
 *   connections that never carry data (SYN floods, probes) cost only a small
 *   table entry and produce no events.
 * - Out-of-order segments wait in a sorted per-direction queue; the first
 *   copy of a byte wins; retransmissions and overlaps are counted.
 * - A hole becomes a gap event (with the exact number of missing bytes) when
 *   the peer's ACK passes it, the queue exceeds max_ooo_bytes or the memory
 *   cap, the hole is older than hole_timeout, or the flow ends. Bytes are
 *   never glued across a hole.
 * - Without a SYN the flow starts mid-stream at the first packet seen in
 *   each direction (conn_info.mid_stream = true).
 *
 * Not thread-safe: one thread feeds a table. */
#ifndef AGENT_FLOW_FLOW_H
#define AGENT_FLOW_FLOW_H
#include <stddef.h>
#include <stdint.h>

#include "flow/stream.h"
#include "source/source.h"

#define AGENT_FLOW_IDLE_TIMEOUT_DEFAULT_NS (60ull * 1000000000ull)
#define AGENT_FLOW_HOLE_TIMEOUT_DEFAULT_NS (5ull * 1000000000ull)
#define AGENT_FLOW_LINGER_NS               (5ull * 1000000000ull)  /* closed flows kept to absorb stragglers */
#define AGENT_FLOW_MAX_FLOWS_DEFAULT       65536u
#define AGENT_FLOW_MAX_OOO_DEFAULT         (4ull * 1024 * 1024)
#define AGENT_FLOW_MEM_CAP_DEFAULT         (256ull * 1024 * 1024)
#define AGENT_FLOW_MAX_PORTS               64

struct agent_flow_cfg {
    const uint16_t *ports;        /* server ports (copied); none: every port */
    size_t nports;                /* <= AGENT_FLOW_MAX_PORTS */
    uint64_t idle_timeout_ns;     /* 0: 60 s */
    uint64_t hole_timeout_ns;     /* 0: 5 s */
    uint32_t max_flows;           /* 0: 65536 */
    uint64_t max_ooo_bytes;       /* per direction; 0: 4 MiB */
    uint64_t mem_cap;             /* whole table incl. queued data; 0: 256 MiB */
};

struct agent_flow_stats {
    uint64_t decode_errors;       /* malformed/truncated headers, unknown link type */
    uint64_t fragments;           /* IP fragments (dropped) */
    uint64_t not_tcp;             /* valid non-TCP packets */
    uint64_t ignored;             /* TCP packets not matching ports / of no flow */
    uint64_t flows_open;          /* connections currently tracked (not closed) */
    uint64_t flows_created;
    uint64_t flows_evicted;       /* closed because the table or memory was full */
    uint64_t flows_idle;          /* closed by idle timeout */
    uint64_t flows_replaced;      /* closed by a new connection on the tuple (close not seen) */
    uint64_t rst_ignored;         /* RSTs behind their sender's sequence (not acted on) */
    uint64_t flows_closed;        /* all closes, any reason */
    uint64_t bytes_delivered;     /* data bytes passed to cb->data */
    uint64_t gaps;                /* gap events */
    uint64_t bytes_lost;          /* sum of gap sizes */
    uint64_t ooo_segments;        /* segments queued out of order */
    uint64_t retransmissions;     /* segments whose bytes had all been seen */
    uint64_t overlaps;            /* segments partly overlapping seen bytes */
    uint64_t overlap_diff_bytes;  /* overlapping bytes differing from the first copy */
    uint64_t dropped_bytes;       /* payload dropped for queue/memory bounds (also in gaps) */
    uint64_t mem_in_use;          /* table + flows + queued segments, bytes */
    uint64_t mem_peak;
};

struct agent_flow_table;

/* New table delivering to cb (copied; cb->arg borrowed for the table's life).
 * NULL on allocation failure (err filled). */
struct agent_flow_table *agent_flow_table_new(const struct agent_flow_cfg *cfg,
                                              const struct agent_stream_cb *cb,
                                              char *err, size_t errlen);
/* Decodes and processes one packet; runs idle expiry as packet time passes. */
void agent_flow_feed(struct agent_flow_table *ft, const struct agent_pkt *pkt);
/* Closes flows idle longer than the idle timeout at now_ns and forces holes
 * older than the hole timeout (called by live sources on wall-clock ticks). */
void agent_flow_expire(struct agent_flow_table *ft, uint64_t now_ns);
void agent_flow_stats(const struct agent_flow_table *ft, struct agent_flow_stats *out);
/* "fin", "rst", "idle", "shutdown", "evicted", "replaced" ("?" otherwise). */
const char *agent_close_reason_name(enum agent_close_reason reason);
/* Replaces the server ports (at most AGENT_FLOW_MAX_PORTS; more are ignored).
 * Existing flows keep their roles. */
void agent_flow_set_ports(struct agent_flow_table *ft, const uint16_t *ports, size_t nports);
/* Delivers every buffered byte (gaps for holes), closes every open flow with
 * AGENT_CLOSE_SHUTDOWN at now_ns (0: last packet time) and frees the table.
 * NULL is a no-op. */
void agent_flow_table_free(struct agent_flow_table *ft, uint64_t now_ns);

#endif
