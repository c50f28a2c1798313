// SPDX-License-Identifier: GPL-2.0
/* ebpf-socket engine. Raw syscall tracepoints with BTF (sys_enter and
 * sys_exit; the calls read, write, readv, writev, recvfrom, sendto, recvmsg
 * and sendmsg are acted on, every other call returns after a switch) copy
 * the bytes that a server socket (TCP, local port in map "ports") receives
 * and sends, in the order the application sees them, as events of at most
 * SM_SOCK_CHUNK bytes; at most SM_SOCK_MAX_PIECES events per call, the rest
 * is reported as a GAP event. The raw tracepoint inet_sock_set_state
 * (-> TCP_CLOSE) reports the end of the connection. Every event carries the
 * socket's address as its identity and the stream offset of its first byte
 * (from the socket's byte counters), so user space can tell loss (failed
 * ring-buffer reservations, counted in "drops"; bytes moved by
 * sendfile/splice, which these hooks do not see) exactly.
 * Syscall hooks rather than fentry on tcp_recvmsg/tcp_sendmsg: they need
 * neither BPF trampolines (ftrace) nor CONFIG_KPROBES (docs/ebpf.md); their
 * price is that every system call on the host takes the kernel's syscall
 * tracing path while the engine runs (docs/ebpf.md, bench_engines). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "capture_event.h"

#define AF_INET_ 2
#define AF_INET6_ 10
#define MSG_PEEK_ 2
#define S_IFMT_ 00170000
#define S_IFSOCK_ 0140000
#define TCP_CLOSE_ 7
#define TCP_LISTEN_ 10

char LICENSE[] SEC("license") = "GPL";

/* Submit flags for a record of sz bytes (what was reserved); see sm_rb_flags(). Set
 * after the maps below. */
#define RB_FLAGS(sz) sm_rb_flags(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), (sz), wake_shift())

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 24);          /* resized by user space before load */
} events SEC(".maps");

SM_PORTS_MAP;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sm_sock_config);
} sock_config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} drops SEC(".maps");

/* What sys_enter saw, for sys_exit. */
struct pend {
    __u64 sk;               /* struct sock * */
    __u64 base;             /* kind 0: user buffer; kind 1: user struct iovec[] */
    __u64 nr_segs;
    __u64 offset;           /* stream offset of the first byte */
    __u32 kind;
    __u32 dir;              /* enum sm_sock_dir */
    /* The connection's ports when the call started: a reset handled inside
     * the call (release_sock) moves the socket to TCP_CLOSE and unhashes it,
     * which zeroes its local port before sys_exit reads it. */
    __u16 lport, rport;
    __u32 close_after;      /* its TCP_CLOSE came during this call: report after the data */
    __u32 active;           /* 1 from sys_enter to sys_exit of a call we copy */
};

/* Per thread (task-local storage: a pointer in the task, where a hash map
 * keyed by thread id cost a lookup at every sys_exit on the host). */
struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct pend);
} pending SEC(".maps");

static __always_inline __u32 wake_shift(void)
{
    __u32 k = 0;
    const struct sm_sock_config *cfg = bpf_map_lookup_elem(&sock_config, &k);
    return cfg ? cfg->wake_shift : SM_RB_WAKE_DEFAULT_SHIFT;
}

static __always_inline void count_drop(void)
{
    __u32 k = 0;
    __u64 *d = bpf_map_lookup_elem(&drops, &k);
    if (d)
        *d += 1;
}

/* The TCP socket behind fd of the current task if we capture it, else NULL. */
static __always_inline struct sock *wanted_fd(unsigned long fd)
{
    __u32 k = 0;
    const struct sm_sock_config *cfg = bpf_map_lookup_elem(&sock_config, &k);
    if (!cfg)
        return 0;
    if (cfg->tgid && (bpf_get_current_pid_tgid() >> 32) != cfg->tgid)
        return 0;
    if (cfg->cgroup_id && bpf_get_current_ancestor_cgroup_id((int)cfg->cgroup_level) != cfg->cgroup_id)
        return 0;
    /* BTF pointers: plain loads (checked by the kernel) instead of helper calls */
    struct task_struct *task = bpf_get_current_task_btf();
    struct files_struct *files = task->files;
    if (!files)
        return 0;
    struct fdtable *fdt = files->fdt;
    if (!fdt || fd >= fdt->max_fds)
        return 0;
    struct file **fds = fdt->fd;
    struct file *f = 0;
    if (bpf_probe_read_kernel(&f, sizeof(f), fds + fd) < 0 || !f)
        return 0;
    umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
    if ((mode & S_IFMT_) != S_IFSOCK_)
        return 0;
    struct socket *sock = BPF_CORE_READ(f, private_data);
    struct sock *sk = BPF_CORE_READ(sock, sk);
    if (!sk)
        return 0;
    if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
        return 0;
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (family != AF_INET_ && family != AF_INET6_)
        return 0;
    if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_LISTEN_)
        return 0;
    if (!cfg->all_ports) {
        __u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
        if (!sm_port_in(&ports, lport))
            return 0;
    }
    return sk;
}

static __always_inline void fill(struct sm_sock_event *e, struct sock *sk, __u8 type, __u8 dir)
{
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->cookie = (__u64)sk;
    e->tgid = bpf_get_current_pid_tgid() >> 32;
    e->type = type;
    e->dir = dir;
    e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
    e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
    e->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
    if (e->family == AF_INET_) {
        __u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
        __u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
        __builtin_memcpy(e->laddr, &l, 4);
        __builtin_memcpy(e->raddr, &r, 4);
    } else {
        BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
        BPF_CORE_READ_INTO(&e->raddr, sk, __sk_common.skc_v6_daddr);
    }
}

static __always_inline void enter(unsigned long fd, __u64 base, __u64 nr_segs, __u32 kind, __u32 dir)
{
    struct sock *sk = wanted_fd(fd);
    if (!sk)
        return;
    struct tcp_sock *tp = (struct tcp_sock *)sk;
    struct pend p = { .sk = (__u64)sk, .base = base, .nr_segs = nr_segs, .kind = kind, .dir = dir };
    p.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
    p.rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
    if (dir == SM_SOCK_SEND) {
        /* next byte written = bytes acknowledged + bytes queued unacknowledged */
        __u64 acked = BPF_CORE_READ(tp, bytes_acked);
        __u32 wseq = BPF_CORE_READ(tp, write_seq), una = BPF_CORE_READ(tp, snd_una);
        p.offset = acked + (__u32)(wseq - una);
    } else {
        /* next byte read = bytes received - bytes received but not yet read */
        __u64 rcvd = BPF_CORE_READ(tp, bytes_received);
        __u32 nxt = BPF_CORE_READ(tp, rcv_nxt), copied = BPF_CORE_READ(tp, copied_seq);
        p.offset = rcvd - (__u32)(nxt - copied);
    }
    p.active = 1;
    struct pend *pp = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (pp)
        *pp = p;
}

static __always_inline void emit_gap(struct sock *sk, const struct pend *p, __u64 offset, __u64 lost)
{
    struct sm_sock_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return;
    }
    fill(e, sk, SM_SOCK_GAP, (__u8)p->dir);
    e->lport = p->lport;
    e->rport = p->rport;
    e->offset = offset;
    e->len = lost > 0xffffffffull ? 0xffffffffu : (__u32)lost;
    bpf_ringbuf_submit(e, RB_FLAGS(sizeof(*e)));
}

/* State of one call's copy loop (bpf_loop keeps the verifier's work per
 * iteration constant). */
struct copy_state {
    struct sm_sock_event hdr;
    __u64 base, nr_segs, offset;
    __u64 total, done, ptr, left, seg;
    __u32 kind, pieces;
};

static long copy_piece(__u32 i, void *arg)
{
    struct copy_state *c = arg;
    if (c->done >= c->total || c->pieces >= SM_SOCK_MAX_PIECES)
        return 1;
    if (c->left == 0) {
        if (c->kind != 1 || c->seg >= c->nr_segs)
            return 1;
        struct iovec v;
        if (bpf_probe_read_user(&v, sizeof(v), (void *)(c->base + c->seg * sizeof(struct iovec))) < 0)
            return 1;
        c->ptr = (__u64)v.iov_base;
        c->left = v.iov_len;
        c->seg++;
        return 0;
    }
    __u64 n = c->total - c->done;
    if (n > c->left)
        n = c->left;
    if (n > SM_SOCK_CHUNK)
        n = SM_SOCK_CHUNK;
    struct sm_sock_event *e;
    __u32 cls;
    /* record sizes must be constants: three classes keep ring space use
     * within 4x of the payload */
    if (n <= SM_SOCK_SMALL) {
        cls = SM_SOCK_SMALL;
        e = bpf_ringbuf_reserve(&events, sizeof(*e) + SM_SOCK_SMALL, 0);
        if (e) {
            __builtin_memcpy(e, &c->hdr, sizeof(*e));
            __u32 m = ((__u32)n - 1) & (SM_SOCK_SMALL - 1);
            if (bpf_probe_read_user((void *)(e + 1), m + 1, (void *)c->ptr) < 0)
                e->type = SM_SOCK_GAP;
        }
    } else if (n <= SM_SOCK_MEDIUM) {
        cls = SM_SOCK_MEDIUM;
        e = bpf_ringbuf_reserve(&events, sizeof(*e) + SM_SOCK_MEDIUM, 0);
        if (e) {
            __builtin_memcpy(e, &c->hdr, sizeof(*e));
            __u32 m = ((__u32)n - 1) & (SM_SOCK_MEDIUM - 1);
            if (bpf_probe_read_user((void *)(e + 1), m + 1, (void *)c->ptr) < 0)
                e->type = SM_SOCK_GAP;
        }
    } else {
        cls = SM_SOCK_CHUNK;
        e = bpf_ringbuf_reserve(&events, sizeof(*e) + SM_SOCK_CHUNK, 0);
        if (e) {
            __builtin_memcpy(e, &c->hdr, sizeof(*e));
            __u32 m = ((__u32)n - 1) & (SM_SOCK_CHUNK - 1);
            if (bpf_probe_read_user((void *)(e + 1), m + 1, (void *)c->ptr) < 0)
                e->type = SM_SOCK_GAP;
        }
    }
    if (e) {
        e->offset = c->offset + c->done;
        e->len = (__u32)n;
        e->ts_ns = bpf_ktime_get_ns();
        bpf_ringbuf_submit(e, RB_FLAGS(sizeof(*e) + cls));
    } else {
        count_drop();
    }
    c->done += n;
    c->ptr += n;
    c->left -= n;
    c->pieces++;
    return 0;
}

static __always_inline void copy_out(struct sock *sk, const struct pend *pp, long ret)
{
    struct pend p = *pp;
    struct copy_state c;
    __builtin_memset(&c, 0, sizeof(c));
    fill(&c.hdr, sk, SM_SOCK_DATA, (__u8)p.dir);
    c.hdr.lport = p.lport;
    c.hdr.rport = p.rport;
    c.base = p.base;
    c.nr_segs = p.nr_segs;
    c.offset = p.offset;
    c.total = (__u64)ret;
    c.kind = p.kind;
    if (p.kind == 0) {
        c.ptr = p.base;
        c.left = c.total;
    }
    bpf_loop(2 * SM_SOCK_MAX_PIECES, copy_piece, &c, 0);
    if (c.done < c.total)
        emit_gap(sk, &p, p.offset + c.done, c.total - c.done);
}

static __always_inline void emit_close(__u64 cookie, __u16 family, __u16 lport, __u16 rport)
{
    struct sm_sock_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->cookie = cookie;
    e->type = SM_SOCK_CLOSE;
    e->family = family;
    e->lport = lport;
    e->rport = rport;
    bpf_ringbuf_submit(e, RB_FLAGS(sizeof(*e)));
}

static __always_inline void leave(long ret)
{
    struct pend *pp = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
    if (!pp || !pp->active)
        return;
    struct pend p = *pp;
    pp->active = 0;
    struct sock *sk = (struct sock *)p.sk;
    if (ret > 0)
        copy_out(sk, &p, ret);
    if (p.close_after)
        emit_close(p.sk, BPF_CORE_READ(sk, __sk_common.skc_family), p.lport, p.rport);
}

/* x86_64 system call numbers (SmBpf builds for x86 only). */
#define NR_read_ 0
#define NR_write_ 1
#define NR_readv_ 19
#define NR_writev_ 20
#define NR_sendto_ 44
#define NR_recvfrom_ 45
#define NR_sendmsg_ 46
#define NR_recvmsg_ 47
#define TS_COMPAT_ 0x0002          /* thread_info.status: a 32-bit call (ia32 task, or int 0x80), other numbers */

static __always_inline void enter_msg(unsigned long fd, unsigned long umsg, unsigned long flags, __u32 dir)
{
    struct user_msghdr m;
    if (dir == SM_SOCK_RECV && (flags & MSG_PEEK_))
        return;
    if (bpf_probe_read_user(&m, sizeof(m), (void *)umsg) < 0)
        return;
    enter(fd, (__u64)m.msg_iov, m.msg_iovlen, 1, dir);
}

/* One program at the raw sys_enter tracepoint and one at sys_exit, rather
 * than one perf-event tracepoint per call: the perf path built a trace record
 * for every call before our program ran (docs/ebpf.md "Cost to the host"). */
SEC("tp_btf/sys_enter")
int BPF_PROG(sm_sys_enter, struct pt_regs *regs, long id)
{
    switch (id) {
    case NR_read_: case NR_write_: case NR_readv_: case NR_writev_:
    case NR_sendto_: case NR_recvfrom_: case NR_sendmsg_: case NR_recvmsg_:
        break;
    default:
        return 0;
    }
    if (bpf_get_current_task_btf()->thread_info.status & TS_COMPAT_)
        return 0;
    unsigned long fd = regs->di, a1 = regs->si, a2 = regs->dx, a3 = regs->r10;
    switch (id) {
    case NR_read_:
        enter(fd, a1, 0, 0, SM_SOCK_RECV);
        break;
    case NR_recvfrom_:
        if (!(a3 & MSG_PEEK_))
            enter(fd, a1, 0, 0, SM_SOCK_RECV);
        break;
    case NR_readv_:
        enter(fd, a1, a2, 1, SM_SOCK_RECV);
        break;
    case NR_recvmsg_:
        enter_msg(fd, a1, a2, SM_SOCK_RECV);
        break;
    case NR_write_:
    case NR_sendto_:
        enter(fd, a1, 0, 0, SM_SOCK_SEND);
        break;
    case NR_writev_:
        enter(fd, a1, a2, 1, SM_SOCK_SEND);
        break;
    case NR_sendmsg_:
        enter_msg(fd, a1, a2, SM_SOCK_SEND);
        break;
    }
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sm_sys_exit, struct pt_regs *regs, long ret)
{
    switch (regs->orig_ax) {
    case NR_read_: case NR_write_: case NR_readv_: case NR_writev_:
    case NR_sendto_: case NR_recvfrom_: case NR_sendmsg_: case NR_recvmsg_:
        leave(ret);
        break;
    }
    return 0;
}

/* sock/inet_sock_set_state, raw with BTF (no tracefs needed): called
 * before the state changes, so the local port is still bound. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sm_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
    if (newstate != TCP_CLOSE_ || sk->sk_protocol != IPPROTO_TCP)
        return 0;
    __u32 k = 0;
    const struct sm_sock_config *cfg = bpf_map_lookup_elem(&sock_config, &k);
    __u16 sport = sk->__sk_common.skc_num;
    if (!cfg || (!cfg->all_ports && !sm_port_in(&ports, sport)))
        return 0;
    /* Closed inside a read/write of the current task on this socket (a reset
     * processed in release_sock): the call's data comes at sys_exit, after
     * this; report the close there, after the data, so that the data is not
     * taken for a new connection. */
    struct pend *pp = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
    if (pp && pp->active && pp->sk == (__u64)sk) {
        pp->close_after = 1;
        return 0;
    }
    emit_close((__u64)sk, sk->__sk_common.skc_family, sport, __builtin_bswap16(sk->__sk_common.skc_dport));
    return 0;
}
