/* Event layouts shared by the eBPF programs (ebpf/ *.bpf.c) and the agent's
 * eBPF engines (agent/source/ebpf_tc.c, ebpf_socket.c). Fixed-width types
 * only: the same bytes are written by the kernel and read by user space.
 * Both sides include this header; the BPF side gets __u8..__u64 from
 * vmlinux.h, user space from <linux/types.h>. */
#ifndef SM_EBPF_CAPTURE_EVENT_H
#define SM_EBPF_CAPTURE_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* TC filters of ours are recognised by this handle and priority on the
 * clsact ingress/egress hooks ("SM"). */
#define SM_TC_HANDLE   0x534du
#define SM_TC_PRIORITY 0x534du

#define SM_TC_SNAP_MAX 131072u     /* largest bytes copied per packet (a power of two; lo frames reach 65550, GSO 64 KiB + headers) */

/* Ring-buffer wakeups: the programs wake user space (BPF_RB_FORCE_WAKEUP)
 * only when the bytes waiting cross a multiple of the wake size, and with
 * every record once more than 8 wake sizes (half the ring) wait; else they
 * submit with BPF_RB_NO_WAKEUP, and user space reads the ring when its poll
 * times out (every SM_RB_POLL_MS: epoll does not see records submitted
 * without a wakeup). So below (wake size / SM_RB_POLL_MS) of capture no
 * wakeup is sent at all, and none waits longer than SM_RB_POLL_MS.
 * The wake size is the ring size >> SM_RB_WAKE_RING_SHIFT (4 MiB for the
 * default 64 MiB ring: no wakeups below about 400 MB/s), at least 64 KiB;
 * user space puts its log2 in the config map (wake_shift). Each wakeup is a
 * self-IPI for the ring's irq_work, charged to the traffic; on a VM a trapped
 * MSR write: a fixed 256 KiB (about 600 wakeups a second under wrk on lo)
 * still cost ebpf-tc 1 % of the traffic core's time (perf, native_write_msr
 * under bpf_ringbuf_submit); "every record from 256 KiB on", before that,
 * 3.7 % (docs/ebpf.md). avail = BPF_RB_AVAIL_DATA after the reservation
 * (concurrent reservations on other CPUs may move a crossing out of this
 * record's window: the next crossing or the lag bound wakes then), sz = the
 * bytes reserved (the 8-byte record header and rounding added here). */
#define SM_RB_WAKE_RING_SHIFT 4
#define SM_RB_WAKE_MIN_SHIFT 16
#define SM_RB_WAKE_DEFAULT_SHIFT 18   /* config map not filled yet */
#define SM_RB_POLL_MS 10
#if defined(__bpf__)
static __always_inline __u64 sm_rb_flags(__u64 avail, __u64 sz, __u32 shift)
{
    sz = (sz + 8 + 7) & ~7ull;
    __u64 before = avail > sz ? avail - sz : 0;
    shift &= 31;
    return avail >= (8ull << shift) || (avail >> shift) != (before >> shift)
           ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}
#endif

/* Server ports, both engines: array map "ports" of SM_PORT_WORDS __u64 words,
 * port p is bit p % 64 of word p / 64 (set by agent_ebpf_ports_set()). An
 * array lookup is inlined by the verifier: no hashing per packet or call (the
 * hash map this replaced cost ebpf-tc about 70 ns per packet). */
#define SM_PORT_WORDS 1024u
#if defined(__bpf__)
#define SM_PORTS_MAP                                    \
    struct {                                            \
        __uint(type, BPF_MAP_TYPE_ARRAY);               \
        __uint(max_entries, SM_PORT_WORDS);             \
        __type(key, __u32);                             \
        __type(value, __u64);                           \
    } ports SEC(".maps")

static __always_inline int sm_port_in(void *map, __u16 port)
{
    __u32 k = port >> 6;
    const __u64 *w = bpf_map_lookup_elem(map, &k);
    return w && ((*w >> (port & 63)) & 1);
}
#endif

/* ---- ebpf-tc ------------------------------------------------------------- */

enum sm_tc_dir { SM_TC_INGRESS = 0, SM_TC_EGRESS = 1 };

/* Run-time settings, array map "tc_config" key 0. */
struct sm_tc_config {
    __u32 snaplen;          /* bytes copied per packet (<= SM_TC_SNAP_MAX) */
    __u32 all_ports;        /* 1: every TCP port (ports map ignored) */
    __u32 wake_shift;       /* log2 of the ring-buffer wake size (sm_rb_flags) */
    __u32 raw_l2;           /* 1: some interface is SM_TC_L2_NONE (look up tc_ifaces); 0: all Ethernet */
};

/* Per interface (hash map "tc_ifaces", key ifindex): bytes before the IP
 * header that are not an Ethernet header: 0 for Ethernet/loopback
 * (the program parses Ethernet + VLAN), SM_TC_L2_NONE for raw IP devices. */
#define SM_TC_L2_ETHER 0u
#define SM_TC_L2_NONE  1u

/* One packet: header then caplen bytes from the start of the frame. */
struct sm_tc_event {
    __u64 ts_ns;            /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
    __u32 ifindex;
    __u32 len;              /* skb->len: length on the wire (GSO: super-packet) */
    __u32 caplen;           /* bytes following this header */
    __u8 dir;               /* enum sm_tc_dir */
    __u8 l2;                /* SM_TC_L2_* of the interface */
    __u16 pad;
};

/* ---- ebpf-socket --------------------------------------------------------- */

#define SM_SOCK_CHUNK     16384u   /* payload bytes per event */
#define SM_SOCK_SMALL     512u     /* record classes: payload room 512, 4096 or 16384 bytes */
#define SM_SOCK_MEDIUM    4096u
#define SM_SOCK_MAX_PIECES 64u     /* events per send/recv call: 1 MiB per call */

enum sm_sock_type { SM_SOCK_DATA = 1, SM_SOCK_GAP = 2, SM_SOCK_CLOSE = 3 };
enum sm_sock_dir { SM_SOCK_RECV = 0, SM_SOCK_SEND = 1 };   /* as seen by the server socket */

/* Run-time settings, array map "sock_config" key 0. */
struct sm_sock_config {
    __u32 all_ports;        /* 1: every local port (ports map ignored) */
    __u32 tgid;             /* 0: any process, else only this one */
    __u64 cgroup_id;        /* 0: any cgroup, else only this cgroup (v2 id) and those below it */
    __u32 wake_shift;       /* log2 of the ring-buffer wake size (sm_rb_flags) */
    __u32 cgroup_level;     /* depth of cgroup_id below the root: its descendants match too */
};

struct sm_sock_event {
    __u64 ts_ns;            /* bpf_ktime_get_ns() */
    __u64 cookie;           /* socket cookie: connection identity */
    __u64 offset;           /* stream offset of the first byte (DATA/GAP) */
    __u32 len;              /* DATA: bytes following; GAP: bytes not captured */
    __u32 tgid;
    __u8 type;              /* enum sm_sock_type */
    __u8 dir;               /* enum sm_sock_dir */
    __u16 family;           /* AF_INET / AF_INET6 */
    __u16 lport, rport;     /* local (server) and remote port, host order */
    __u8 laddr[16], raddr[16];   /* IPv4 in the first 4 bytes */
};

#endif
