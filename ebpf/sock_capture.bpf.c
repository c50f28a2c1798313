// SPDX-License-Identifier: GPL-2.0
/* ebpf-socket engine. Syscall tracepoints (read, write, readv, writev,
 * recvfrom, sendto, recvmsg, sendmsg: enter + exit) copy the bytes that a
 * server socket (TCP, local port in map "ports") receives and sends, in the
 * order the application sees them, as events of at most SM_SOCK_CHUNK bytes;
 * at most SM_SOCK_MAX_PIECES events per call, the rest is reported as a GAP
 * event. The tracepoint sock/inet_sock_set_state (-> TCP_CLOSE) reports the
 * end of the connection. Every event carries the socket's address as its
 * identity and the stream offset of its first byte (from the socket's byte
 * counters), so user space can tell loss (failed ring-buffer reservations,
 * counted in "drops"; bytes moved by sendfile/splice, which these hooks do
 * not see) exactly.
 * Tracepoints rather than fentry/kprobes: they need neither BPF trampolines
 * nor CONFIG_KPROBES (docs/ebpf.md). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "capture_event.h"

#define AF_INET_ 2
#define AF_INET6_ 10
#define MSG_PEEK_ 2
#define S_IFMT_ 00170000
#define S_IFSOCK_ 0140000
#define TCP_CLOSE_ 7
#define TCP_LISTEN_ 10

char LICENSE[] SEC("license") = "GPL";

/* Submit flags for a record of sz bytes (what was reserved); see SM_RB_WAKE_BYTES. Set
 * after the maps below. */
#define RB_FLAGS(sz) sm_rb_flags(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), (sz))

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 24);          /* resized by user space before load */
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u16);                    /* local port, host order */
    __type(value, __u8);
} ports SEC(".maps");

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
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);                    /* pid_tgid */
    __type(value, struct pend);
} pending SEC(".maps");

/* Syscall tracepoint records (tracefs events/syscalls/.../format). */
struct sys_enter_ctx {
    __u64 common;
    long nr;
    unsigned long args[6];
};
struct sys_exit_ctx {
    __u64 common;
    long nr;
    long ret;
};

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
    if (cfg->cgroup_id && bpf_get_current_cgroup_id() != cfg->cgroup_id)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
        return 0;
    struct file **fds = BPF_CORE_READ(fdt, fd);
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
        if (!bpf_map_lookup_elem(&ports, &lport))
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
    __u64 id = bpf_get_current_pid_tgid();
    bpf_map_update_elem(&pending, &id, &p, BPF_ANY);
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
    __u64 id = bpf_get_current_pid_tgid();
    struct pend *pp = bpf_map_lookup_elem(&pending, &id);
    if (!pp)
        return;
    struct pend p = *pp;
    bpf_map_delete_elem(&pending, &id);
    struct sock *sk = (struct sock *)p.sk;
    if (ret > 0)
        copy_out(sk, &p, ret);
    if (p.close_after)
        emit_close(p.sk, BPF_CORE_READ(sk, __sk_common.skc_family), p.lport, p.rport);
}

SEC("tracepoint/syscalls/sys_enter_read")
int sm_enter_read(struct sys_enter_ctx *ctx)
{
    enter(ctx->args[0], ctx->args[1], 0, 0, SM_SOCK_RECV);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sm_enter_recvfrom(struct sys_enter_ctx *ctx)
{
    if (!(ctx->args[3] & MSG_PEEK_))
        enter(ctx->args[0], ctx->args[1], 0, 0, SM_SOCK_RECV);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_readv")
int sm_enter_readv(struct sys_enter_ctx *ctx)
{
    enter(ctx->args[0], ctx->args[1], ctx->args[2], 1, SM_SOCK_RECV);
    return 0;
}

static __always_inline void enter_msg(struct sys_enter_ctx *ctx, __u32 dir)
{
    struct user_msghdr m;
    if (dir == SM_SOCK_RECV && (ctx->args[2] & MSG_PEEK_))
        return;
    if (bpf_probe_read_user(&m, sizeof(m), (void *)ctx->args[1]) < 0)
        return;
    enter(ctx->args[0], (__u64)m.msg_iov, m.msg_iovlen, 1, dir);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sm_enter_recvmsg(struct sys_enter_ctx *ctx)
{
    enter_msg(ctx, SM_SOCK_RECV);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int sm_enter_write(struct sys_enter_ctx *ctx)
{
    enter(ctx->args[0], ctx->args[1], 0, 0, SM_SOCK_SEND);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sm_enter_sendto(struct sys_enter_ctx *ctx)
{
    enter(ctx->args[0], ctx->args[1], 0, 0, SM_SOCK_SEND);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int sm_enter_writev(struct sys_enter_ctx *ctx)
{
    enter(ctx->args[0], ctx->args[1], ctx->args[2], 1, SM_SOCK_SEND);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sm_enter_sendmsg(struct sys_enter_ctx *ctx)
{
    enter_msg(ctx, SM_SOCK_SEND);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int sm_exit_read(struct sys_exit_ctx *ctx) { leave(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int sm_exit_recvfrom(struct sys_exit_ctx *ctx) { leave(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_readv")
int sm_exit_readv(struct sys_exit_ctx *ctx) { leave(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int sm_exit_recvmsg(struct sys_exit_ctx *ctx) { leave(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_write")
int sm_exit_write(struct sys_exit_ctx *ctx) { leave(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_sendto")
int sm_exit_sendto(struct sys_exit_ctx *ctx) { leave(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_writev")
int sm_exit_writev(struct sys_exit_ctx *ctx) { leave(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sm_exit_sendmsg(struct sys_exit_ctx *ctx) { leave(ctx->ret); return 0; }

/* sock/inet_sock_set_state (tracefs format). */
struct set_state_ctx {
    __u64 common;
    const void *skaddr;
    int oldstate, newstate;
    __u16 sport, dport, family, protocol;
    __u8 saddr[4], daddr[4], saddr_v6[16], daddr_v6[16];
};

SEC("tracepoint/sock/inet_sock_set_state")
int sm_set_state(struct set_state_ctx *ctx)
{
    if (ctx->newstate != TCP_CLOSE_ || ctx->protocol != IPPROTO_TCP)
        return 0;
    __u32 k = 0;
    const struct sm_sock_config *cfg = bpf_map_lookup_elem(&sock_config, &k);
    __u16 sport = ctx->sport;
    if (!cfg || (!cfg->all_ports && !bpf_map_lookup_elem(&ports, &sport)))
        return 0;
    /* Closed inside a read/write of the current task on this socket (a reset
     * processed in release_sock): the call's data comes at sys_exit, after
     * this; report the close there, after the data, so that the data is not
     * taken for a new connection. */
    __u64 id = bpf_get_current_pid_tgid();
    struct pend *pp = bpf_map_lookup_elem(&pending, &id);
    if (pp && pp->sk == (__u64)ctx->skaddr) {
        pp->close_after = 1;
        return 0;
    }
    emit_close((__u64)ctx->skaddr, ctx->family, ctx->sport, ctx->dport);
    return 0;
}
