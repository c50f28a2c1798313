/* Capture driver: a packet source (agent/source/source.h) feeding the flow
 * table (agent/flow/flow.h), which calls the stream callbacks
 * (agent/flow/stream.h). This is what the agent's main loop uses.
 *
 *   struct agent_capture_cfg cfg;
 *   agent_capture_cfg_init(&cfg);
 *   cfg.engine = "pcap"; cfg.iface = "eth0"; cfg.ports[0] = 9200; cfg.nports = 1;
 *   if (agent_capture_open(&cfg, &cb, &cap, err, sizeof err) == SM_OK) {
 *       agent_capture_run(cap, err, sizeof err);   // until EOF or agent_capture_stop()
 *       agent_capture_close(cap);                  // closes flows: AGENT_CLOSE_SHUTDOWN
 *   }
 *
 * Threading: open/run/close on one thread (callbacks run on it); stop() from
 * anywhere including signal handlers; stats() from any thread (it reads a
 * snapshot published by the capture thread about every 100 ms and at the end
 * of run). */
#ifndef AGENT_SOURCE_CAPTURE_H
#define AGENT_SOURCE_CAPTURE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "flow/flow.h"
#include "flow/stream.h"
#include "source/source.h"

#define AGENT_CAPTURE_MAX_HOSTS 32
#define AGENT_CAPTURE_SNAPLEN_DEFAULT 262144u
#define AGENT_CAPTURE_BUFFER_DEFAULT  (64ull * 1024 * 1024)

struct agent_capture_cfg {
    const char *engine;            /* "pcap" (live), "pcap-file", "ebpf-tc", "ebpf-socket"; NULL (default): "pcap-file"
                                    * when pcap_path/pcap_fp is set, else "pcap" */
    const char *iface;             /* live interface */
    const char *pcap_path;         /* pcap-file: path ... */
    FILE *pcap_fp;                 /* ... or an open stream (e.g. fmemopen); always
                                    * consumed by agent_capture_open(), even on failure */
    uint16_t ports[AGENT_FLOW_MAX_PORTS];   /* server ports; 0 ports: all TCP */
    size_t nports;
    const char *hosts[AGENT_CAPTURE_MAX_HOSTS];  /* BPF "host" terms (IPs or names) */
    size_t nhosts;
    const char *bpf_filter;        /* overrides the filter built from ports/hosts */
    uint32_t snaplen;              /* default 262144 */
    uint64_t buffer_size;          /* live kernel buffer, default 64 MiB */
    uint64_t idle_timeout_ns;      /* default 60 s (packet time for files, wall time live) */
    uint64_t hole_timeout_ns;      /* default 5 s */
    uint32_t max_flows;            /* default 65536 */
    uint64_t max_ooo_bytes;        /* per direction, default 4 MiB */
    uint64_t mem_cap;              /* default 256 MiB */
    const char *tc_attach;         /* ebpf-tc: NULL/"auto", "tcx", "tc" (agent_source_cfg) */
    uint32_t pid;                  /* ebpf-socket: only this process (0: any) */
    const char *cgroup;            /* ebpf-socket: only this cgroup v2 directory and below (NULL: any) */
};

/* Counters; see docs/capture.md. */
struct agent_capture_stats {
    uint64_t packets, bytes;       /* from the source */
    uint64_t kernel_drops, iface_drops;
    struct agent_flow_stats flow;  /* decode, flow and reassembly counters */
};

struct agent_capture;

/* Sets the defaults above (engine chosen automatically, no ports). */
void agent_capture_cfg_init(struct agent_capture_cfg *cfg);

/* Opens the source (needs CAP_NET_RAW for "pcap") and the flow table.
 * cfg and its strings are only read during the call; cb is copied.
 * SM_OK and *out, or SM_ECONFIG (bad engine/settings/filter), SM_EIO (cannot
 * open the interface/file: err names it), SM_EUNSUPPORTED (link type),
 * SM_ENOMEM. */
int agent_capture_open(const struct agent_capture_cfg *cfg, const struct agent_stream_cb *cb,
                       struct agent_capture **out, char *err, size_t errlen);
/* Capabilities the engine needs (enum agent_cap bits). */
unsigned agent_capture_caps(const struct agent_capture *cap);
/* "pcap[eth0]" / "pcap-file[x.pcap]". */
const char *agent_capture_name(const struct agent_capture *cap);
/* Runs until EOF (files), agent_capture_stop() or a capture error; drives
 * idle expiry. SM_OK or SM_EIO. Buffered data stays until close(). */
int agent_capture_run(struct agent_capture *cap, char *err, size_t errlen);
/* Async-signal-safe. Makes run() return soon. */
void agent_capture_stop(struct agent_capture *cap);
void agent_capture_stats(struct agent_capture *cap, struct agent_capture_stats *out);
/* Replaces the server ports while running: the eBPF engines change their
 * kernel port maps at once (set_ports), pcap gets a filter rebuilt from the
 * new ports and the --host terms (set_filter; set by the capture thread at its
 * next poll), the flow table takes them at its next tick. Any thread. SM_OK,
 * SM_EUNSUPPORTED (pcap-file, or pcap with --bpf-filter), SM_ECONFIG, SM_EIO
 * (err filled). */
int agent_capture_set_ports(struct agent_capture *cap, const uint16_t *ports, size_t nports, char *err,
                            size_t errlen);
/* SM_OK when a process filter (pid, cgroup; 0/NULL: none) suits engine: only
 * ebpf-socket has one. Else SM_ECONFIG, err saying so. */
int agent_capture_check_procs(const char *engine, uint32_t pid, const char *cgroup, char *err, size_t errlen);
/* Replaces the process filter of the ebpf-socket engine (pid 0 and cgroup
 * NULL: every process) while running. Any thread. SM_OK (also for no filter
 * on an engine without one), SM_ECONFIG (a filter on another engine, a cgroup
 * that is not one, a pid of no process), SM_EIO (err filled). */
int agent_capture_set_procs(struct agent_capture *cap, uint32_t pid, const char *cgroup, char *err, size_t errlen);
/* Delivers buffered bytes, closes open flows with AGENT_CLOSE_SHUTDOWN,
 * closes the source and frees cap. NULL is a no-op. */
void agent_capture_close(struct agent_capture *cap);

#endif
