/* Packet sources: one const ops table per engine plus an instance.
 *
 * Every packet engine (pcap live, pcap file, later eBPF TC) hands the same
 * struct agent_pkt to the flow table (agent/flow/flow.h). The eBPF socket
 * engine joins after reassembly, at agent/flow/stream.h.
 *
 * Threading: a source is driven by one thread (open, run, stats, close);
 * only stop() may be called from elsewhere, including a signal handler. */
#ifndef AGENT_SOURCE_SOURCE_H
#define AGENT_SOURCE_SOURCE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#include "flow/stream.h"

/* Link types as pcap's DLT_ values (pcap_datalink()); LINKTYPE_RAW (101)
 * is accepted beside DLT_RAW (12 on Linux, 14 on some BSDs). */
#define AGENT_DLT_NULL      0
#define AGENT_DLT_EN10MB    1
#define AGENT_DLT_RAW       12
#define AGENT_DLT_RAW_BSD   14
#define AGENT_LINKTYPE_RAW  101
#define AGENT_DLT_LOOP      108
#define AGENT_DLT_LINUX_SLL 113
#define AGENT_DLT_IPV4      228
#define AGENT_DLT_IPV6      229
#define AGENT_DLT_LINUX_SLL2 276

/* One captured packet. data is borrowed for the duration of the callback. */
struct agent_pkt {
    uint64_t ts_ns;        /* capture time, ns since the Unix epoch */
    int linktype;          /* AGENT_DLT_* */
    uint32_t caplen;       /* bytes at data */
    uint32_t len;          /* length on the wire (>= caplen when truncated by snaplen) */
    const uint8_t *data;
};

/* Capabilities a source needs (kept after privilege drop; see agent/ops). */
enum agent_cap {
    AGENT_CAP_NET_RAW   = 1u << 0,
    AGENT_CAP_NET_ADMIN = 1u << 1,
    AGENT_CAP_BPF       = 1u << 2,
    AGENT_CAP_PERFMON   = 1u << 3,
};

/* What run() calls. pkt: every packet. tick: at least every ~100 ms of wall
 * time while a live source waits (now_ns = CLOCK_REALTIME ns), so the
 * caller can expire idle flows; file sources do not tick. */
struct agent_source_handler {
    void (*pkt)(void *arg, const struct agent_pkt *pkt);
    void (*tick)(void *arg, uint64_t now_ns);
    void *arg;
    /* Stream callbacks, for engines that deliver in-order bytes themselves
     * (ebpf-socket) instead of packets. */
    const struct agent_stream_cb *stream;
};

/* Counters of one source; 64-bit even where the kernel's are 32-bit. */
struct agent_src_stats {
    uint64_t packets;          /* packets handed to the handler */
    uint64_t bytes;            /* their wire length */
    uint64_t kernel_drops;     /* dropped by the kernel buffer (pcap ps_drop) */
    uint64_t iface_drops;      /* dropped by the interface/driver (pcap ps_ifdrop) */
};

struct agent_source_cfg {
    const char *iface;         /* live: interface ("lo", "eth0", "any") */
    const char *path;          /* file: capture file path (pcap or pcapng) */
    FILE *fp;                  /* file: alternative to path; always consumed by open()
                                * (closed by close(), or by open() when it fails) */
    const char *filter;        /* BPF filter expression, NULL/"" for none */
    uint32_t snaplen;          /* 0: 262144 */
    uint64_t buffer_size;      /* live kernel buffer bytes; 0: 64 MiB */
    const uint16_t *ports;     /* server ports (eBPF engines filter on them in the kernel) */
    size_t nports;             /* 0: every port */
    uint64_t idle_timeout_ns;  /* engines tracking connections themselves (ebpf-socket) */
    const char *tc_attach;     /* ebpf-tc: "auto" (NULL: tcx links where the kernel has them,
                                * else classic clsact filters), "tcx", "tc" */
    uint32_t pid;              /* ebpf-socket: 0, or only this process's sockets */
    const char *cgroup;        /* ebpf-socket: NULL, or only processes in this cgroup v2
                                * directory or below it */
};

/* --tc-attach: "auto" (or NULL/"") 0, "tcx" 1, "tc" 2, anything else -1. */
static inline int agent_tc_attach_mode(const char *s)
{
    if (!s || !*s || !strcmp(s, "auto"))
        return 0;
    return !strcmp(s, "tcx") ? 1 : !strcmp(s, "tc") ? 2 : -1;
}

struct agent_source;

struct agent_source_ops {
    const char *name;          /* "pcap", "pcap-file" */
    unsigned caps;             /* enum agent_cap bits needed while capturing */
    bool live;                 /* true: wall-clock source (idle expiry in wall time) */
    /* SM_OK or a negative sm_err with err naming the interface/file. */
    int  (*open)(struct agent_source *src, const struct agent_source_cfg *cfg,
                 char *err, size_t errlen);
    /* Blocks delivering packets until EOF (files), stop() or an error.
     * SM_OK at EOF/stop, SM_EIO on a capture error (err filled). */
    int  (*run)(struct agent_source *src, const struct agent_source_handler *h,
                char *err, size_t errlen);
    void (*stop)(struct agent_source *src);            /* async-signal-safe */
    void (*stats)(struct agent_source *src, struct agent_src_stats *out);
    void (*close)(struct agent_source *src);           /* frees ctx; src stays valid */
    /* Optional (NULL: not supported): replaces the server ports while
     * running, without reloading (eBPF engines). Thread-safe. */
    int  (*set_ports)(struct agent_source *src, const uint16_t *ports, size_t nports,
                      char *err, size_t errlen);
    /* Optional (NULL: not supported): replaces the capture filter expression
     * while running (pcap: checked here, compiled and set by the capture
     * thread at its next poll). Thread-safe. */
    int  (*set_filter)(struct agent_source *src, const char *filter, char *err, size_t errlen);
    /* Optional (NULL: not supported): replaces the process filter (pid 0 and
     * cgroup NULL: none) while running (ebpf-socket). Thread-safe. */
    int  (*set_procs)(struct agent_source *src, uint32_t pid, const char *cgroup, char *err, size_t errlen);
};

struct agent_source {
    const struct agent_source_ops *ops;
    void *ctx;                 /* engine private */
    char name[96];             /* "pcap[eth0]" for messages */
    int linktype;              /* link type of the packets (after open) */
};

/* The known engines, by name; NULL if unknown. */
const struct agent_source_ops *agent_source_find(const char *name);
/* NULL-terminated list of the known engines (for --help and errors). */
const struct agent_source_ops *const *agent_source_list(void);

extern const struct agent_source_ops agent_source_pcap_live;
extern const struct agent_source_ops agent_source_pcap_file;
#ifdef SM_WITH_EBPF
extern const struct agent_source_ops agent_source_ebpf_tc;      /* agent/source/ebpf_tc.c */
extern const struct agent_source_ops agent_source_ebpf_socket;  /* agent/source/ebpf_socket.c */
#endif

/* Removes the TC filters the ebpf-tc engine leaves behind when it is killed
 * (recognised by handle/priority, docs/ebpf.md) from the comma-separated
 * interfaces ifaces, or from every interface when ifaces is NULL/"".
 * *removed (may be NULL) counts filters removed. SM_OK, or SM_EUNSUPPORTED
 * when built without eBPF, SM_EIO (err filled). */
int agent_ebpf_cleanup(const char *ifaces, unsigned *removed, char *err, size_t errlen);

/* Builds the BPF filter for server ports and hosts:
 * "tcp and (port 9200 or port 9300) and (host a or host b)".
 * Returns SM_OK, SM_EFULL if out is too small. */
int agent_source_build_filter(const uint16_t *ports, size_t nports, const char *const *hosts,
                              size_t nhosts, char *out, size_t outlen);

#endif
