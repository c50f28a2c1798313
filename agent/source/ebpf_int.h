/* Helpers shared by the eBPF engines (ebpf_tc.c, ebpf_socket.c); private to
 * agent/source. Only compiled with SM_WITH_EBPF. */
#ifndef AGENT_SOURCE_EBPF_INT_H
#define AGENT_SOURCE_EBPF_INT_H
#include <stddef.h>
#include <stdint.h>

/* Checks what every eBPF engine needs before loading: kernel BTF, the
 * capabilities in need (enum agent_cap bits), and routes libbpf's messages
 * into our log. SM_OK or SM_EUNSUPPORTED / SM_EIO with err naming what is
 * missing. */
int agent_ebpf_precheck(const char *who, unsigned need, char *err, size_t errlen);
/* Explains a failed libbpf call (negative errno rc) in err. Returns SM_EIO. */
int agent_ebpf_fail(const char *who, const char *what, int rc, unsigned need, char *err, size_t errlen);
/* Ring buffer size for a requested byte budget: a power of two >= 1 MiB. */
uint32_t agent_ebpf_ringbuf_size(uint64_t want);
/* log2 of the ring-buffer wake size for a ring of ring_size bytes (sm_rb_flags). */
uint32_t agent_ebpf_wake_shift(uint32_t ring_size);
/* Nanoseconds to add to bpf_ktime_get_ns() for CLOCK_REALTIME. */
uint64_t agent_ebpf_mono_to_real(void);
uint64_t agent_ebpf_now_real(void);
/* Bounded ring-buffer consumption. libbpf's ring_buffer__poll/consume loop as
 * long as records keep coming, and stop early only when a callback returns a
 * negative value (the record it was called for counts as consumed). The
 * engines' callbacks end with agent_ebpf_after_record(): it returns
 * AGENT_RB_YIELD every AGENT_RB_BATCH records, so a flood cannot keep the
 * engine loop from its ticks (idle flush, expiry) and from seeing a stop
 * request, and for every record once the engine has been stopping for
 * AGENT_RB_DRAIN_MS. agent_ebpf_drain() consumes what is in the ring at stop
 * for at most that long (SIGTERM then ends the agent even under traffic). */
#define AGENT_RB_YIELD (-11000)
#define AGENT_RB_BATCH 4096u
#define AGENT_RB_DRAIN_MS 2000u
struct agent_rb_pace {
    unsigned batch;           /* records since the last yield */
    uint64_t stop_ns;         /* first record seen while stopping (realtime), 0: none yet */
};
int agent_ebpf_after_record(struct agent_rb_pace *pc, int stopping);
struct ring_buffer;
void agent_ebpf_drain(struct ring_buffer *rb, struct agent_rb_pace *pc);
/* Sum of a per-CPU __u64 counter (array map, key 0). */
uint64_t agent_ebpf_percpu_sum(int map_fd);
/* Sets the port bitmap (array map of SM_PORT_WORDS words, capture_event.h) to ports. 0 or -errno. */
int agent_ebpf_ports_set(int map_fd, const uint16_t *ports, size_t nports);

/* ---- ebpf-socket: events -> stream callbacks (ebpf_socket.c) ----------------
 * Independent of BPF so unit tests feed it crafted struct sm_sock_event
 * records. Connections are keyed by the event's cookie; open at the first
 * DATA/GAP event (mid_stream when its offset is not 0), close at CLOSE
 * (AGENT_CLOSE_FIN), idle expiry, eviction (oldest at max_conns) or
 * close_all (AGENT_CLOSE_SHUTDOWN). Offsets beyond the next expected one
 * become "capture loss" gaps of the exact size; GAP events "truncated" gaps;
 * bytes already delivered are skipped. An event whose ports/peer differ from
 * its connection's closes that one (its close event was lost) and opens anew. */
struct agent_ebpf_stream_stats {
    uint64_t events, bytes, conns, open, gaps, bytes_lost, evicted;
    uint64_t reused;          /* a new 4-tuple on a known socket address: old one closed */
};
struct agent_ebpf_streams;
struct agent_stream_cb;
/* cb borrowed (may be NULL until set_cb); idle_ns 0: 60 s; max_conns 0: 65536. */
struct agent_ebpf_streams *agent_ebpf_streams_new(const struct agent_stream_cb *cb, uint64_t idle_ns,
                                                  uint32_t max_conns);
void agent_ebpf_streams_set_cb(struct agent_ebpf_streams *ss, const struct agent_stream_cb *cb);
/* One ring-buffer record (struct sm_sock_event + payload); ts_ns realtime. */
void agent_ebpf_streams_feed(struct agent_ebpf_streams *ss, const void *rec, size_t size, uint64_t ts_ns);
/* Ends connections idle for idle_ns, and closed ones whose grace period for
 * late data (200 ms after their close event) has passed. */
void agent_ebpf_streams_expire(struct agent_ebpf_streams *ss, uint64_t now_ns);
void agent_ebpf_streams_close_all(struct agent_ebpf_streams *ss, uint64_t now_ns);
void agent_ebpf_streams_stats(const struct agent_ebpf_streams *ss, struct agent_ebpf_stream_stats *out);
/* Frees without callbacks. NULL is a no-op. */
void agent_ebpf_streams_free(struct agent_ebpf_streams *ss);

#endif
