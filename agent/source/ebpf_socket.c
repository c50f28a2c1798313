/* "ebpf-socket" engine: raw syscall tracepoints copy what server sockets
 * (local port in the ports map) read and write, already in stream order
 * (ebpf/sock_capture.bpf.c). No packets and no reassembly: events go straight
 * to the stream callbacks (agent/flow/stream.h). Stream offsets carried by
 * every event turn lost events into exact gaps. docs/ebpf.md. */
#define _GNU_SOURCE   /* name_to_handle_at */
#ifdef SM_WITH_EBPF
#include "source/source.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

#include "capture_event.h"
#include "sock_capture.skel.h"
#include "source/ebpf_int.h"

#define TICK_MS 100
#define SOCK_BUCKETS 16384u
#define SOCK_MAX_CONNS 65536u
#define SOCK_IDLE_DEFAULT_NS (60ull * 1000000000ull)
/* A socket's TCP_CLOSE can be reported before the data of a read/write that
 * was in progress on it (the close came from another CPU's softirq while the
 * call ran; the call's data is sent at sys_exit): a closed connection stays
 * this long for such data before it is ended. */
#define SOCK_CLOSE_GRACE_NS (200ull * 1000000ull)

struct sconn {
    struct sconn *next;           /* bucket chain */
    struct sconn *lru_prev, *lru_next;
    uint64_t cookie;
    void *handle;                 /* from cb->open; NULL: declined */
    uint64_t expect[2];           /* next stream offset per direction (AGENT_C2S/S2C) */
    bool started[2];
    bool mid;
    uint64_t last_ns;
    uint16_t lport, rport;        /* identity check: the kernel reuses socket addresses */
    uint8_t raddr[16];
    bool closing;                 /* TCP_CLOSE seen: ended after SOCK_CLOSE_GRACE_NS */
    uint64_t close_ns;
    struct sconn *closing_next;   /* in agent_ebpf_streams.closing */
};

struct agent_ebpf_streams {
    const struct agent_stream_cb *cb;   /* NULL: deliver nothing */
    uint64_t idle_ns;
    uint32_t max_conns;
    struct sconn *buckets[SOCK_BUCKETS];
    struct sconn lru;             /* sentinel: lru.lru_next is the oldest */
    struct sconn *closing;        /* connections in their close grace period */
    size_t nconns;
    uint64_t conn_serial;
    struct agent_ebpf_stream_stats st;
};

struct sock_ctx {
    struct sock_capture *skel;
    struct ring_buffer *rb;
    volatile sig_atomic_t stop;
    struct agent_rb_pace pace;
    const struct agent_source_handler *h;
    struct agent_src_stats st;
    uint64_t mono_to_real;
    struct agent_ebpf_streams *ss;
};

static uint32_t hash_cookie(uint64_t c)
{
    c ^= c >> 33;
    c *= 0xff51afd7ed558ccdull;
    c ^= c >> 33;
    return (uint32_t)c & (SOCK_BUCKETS - 1);
}

static struct sconn *find(struct agent_ebpf_streams *ss, uint64_t cookie)
{
    for (struct sconn *c = ss->buckets[hash_cookie(cookie)]; c; c = c->next)
        if (c->cookie == cookie)
            return c;
    return NULL;
}

static void lru_unlink(struct sconn *c)
{
    c->lru_prev->lru_next = c->lru_next;
    c->lru_next->lru_prev = c->lru_prev;
}

static void lru_push(struct agent_ebpf_streams *ss, struct sconn *c)
{
    c->lru_prev = ss->lru.lru_prev;
    c->lru_next = &ss->lru;
    ss->lru.lru_prev->lru_next = c;
    ss->lru.lru_prev = c;
}

static void drop_conn(struct agent_ebpf_streams *ss, struct sconn *c, enum agent_close_reason why, uint64_t ts)
{
    struct sconn **pp = &ss->buckets[hash_cookie(c->cookie)];
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    lru_unlink(c);
    if (c->closing) {
        struct sconn **cp = &ss->closing;
        while (*cp != c)
            cp = &(*cp)->closing_next;
        *cp = c->closing_next;
        why = AGENT_CLOSE_FIN;   /* it did end with a close, whoever ends it now */
        ts = c->last_ns > c->close_ns ? c->last_ns : c->close_ns;
    }
    ss->nconns--;
    if (c->handle && ss->cb && ss->cb->close)
        ss->cb->close(ss->cb->arg, c->handle, why, ts);
    sm_free(c);
}

static struct sconn *open_conn(struct agent_ebpf_streams *ss, const struct sm_sock_event *e, uint64_t ts)
{
    if (ss->nconns >= ss->max_conns) {
        drop_conn(ss, ss->lru.lru_next, AGENT_CLOSE_EVICTED, ts);
        ss->st.evicted++;
    }
    struct sconn *c = sm_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cookie = e->cookie;
    c->mid = e->offset != 0;
    c->lport = e->lport;
    c->rport = e->rport;
    memcpy(c->raddr, e->raddr, 16);
    uint32_t b = hash_cookie(e->cookie);
    c->next = ss->buckets[b];
    ss->buckets[b] = c;
    lru_push(ss, c);
    ss->nconns++;
    ss->st.conns++;
    struct agent_conn_info info;
    memset(&info, 0, sizeof(info));
    info.family = e->family == 10 ? AF_INET6 : AF_INET;
    memcpy(info.server_ip, e->laddr, 16);
    memcpy(info.client_ip, e->raddr, 16);
    info.server_port = e->lport;
    info.client_port = e->rport;
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (info.family == AF_INET6 && !memcmp(info.server_ip, v4mapped, 12) &&
        !memcmp(info.client_ip, v4mapped, 12)) {   /* dual-stack socket, IPv4 peer */
        info.family = AF_INET;
        memmove(info.server_ip, info.server_ip + 12, 4);
        memmove(info.client_ip, info.client_ip + 12, 4);
        memset(info.server_ip + 4, 0, 12);
        memset(info.client_ip + 4, 0, 12);
    }
    info.mid_stream = c->mid;
    info.engine_conn_id = ++ss->conn_serial;
    c->handle = ss->cb && ss->cb->open ? ss->cb->open(ss->cb->arg, &info, ts) : NULL;
    return c;
}

static void gap(struct agent_ebpf_streams *ss, struct sconn *c, enum agent_dir dir, uint64_t lost, uint64_t ts,
                const char *why)
{
    ss->st.gaps++;
    ss->st.bytes_lost += lost;
    if (c->handle && ss->cb->gap)
        ss->cb->gap(ss->cb->arg, c->handle, dir, lost, ts, why);
}

struct agent_ebpf_streams *agent_ebpf_streams_new(const struct agent_stream_cb *cb, uint64_t idle_ns,
                                                  uint32_t max_conns)
{
    struct agent_ebpf_streams *ss = sm_calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    ss->cb = cb;
    ss->idle_ns = idle_ns ? idle_ns : SOCK_IDLE_DEFAULT_NS;
    ss->max_conns = max_conns ? max_conns : SOCK_MAX_CONNS;
    ss->lru.lru_next = ss->lru.lru_prev = &ss->lru;
    return ss;
}

void agent_ebpf_streams_set_cb(struct agent_ebpf_streams *ss, const struct agent_stream_cb *cb) { ss->cb = cb; }

void agent_ebpf_streams_feed(struct agent_ebpf_streams *ss, const void *rec, size_t size, uint64_t ts)
{
    const struct sm_sock_event *e = rec;
    if (size < sizeof(*e) || !ss->cb)
        return;
    ss->st.events++;
    struct sconn *c = find(ss, e->cookie);
    if (e->type == SM_SOCK_CLOSE) {
        if (c && !c->closing) {   /* ended by agent_ebpf_streams_expire() after the grace period */
            c->closing = true;
            c->close_ns = ts;
            c->closing_next = ss->closing;
            ss->closing = c;
        }
        return;
    }
    if (e->type != SM_SOCK_DATA && e->type != SM_SOCK_GAP)
        return;
    if (e->type == SM_SOCK_DATA && e->len > size - sizeof(*e))
        return;
    if (c && (c->lport != e->lport || c->rport != e->rport || memcmp(c->raddr, e->raddr, 16))) {
        /* the socket's memory now holds another connection (its close event
         * was lost, or its grace period is not over yet) */
        if (!c->closing)
            ss->st.reused++;
        drop_conn(ss, c, AGENT_CLOSE_FIN, ts);
        c = NULL;
    }
    if (!c && !(c = open_conn(ss, e, ts)))
        return;
    lru_unlink(c);
    lru_push(ss, c);
    c->last_ns = ts;
    enum agent_dir dir = e->dir == SM_SOCK_RECV ? AGENT_C2S : AGENT_S2C;
    if (!c->started[dir]) {
        c->started[dir] = true;
        c->expect[dir] = c->mid ? e->offset : 0;
    }
    uint64_t off = e->offset, n = e->len;
    const uint8_t *p = (const uint8_t *)(e + 1);
    if (off > c->expect[dir]) {          /* events we never got: exact loss */
        gap(ss, c, dir, off - c->expect[dir], ts, "capture loss");
        c->expect[dir] = off;
    } else if (off < c->expect[dir]) {   /* already delivered (concurrent callers) */
        uint64_t skip = c->expect[dir] - off;
        if (skip >= n)
            return;
        off += skip;
        p += skip;
        n -= skip;
    }
    if (e->type == SM_SOCK_GAP) {
        gap(ss, c, dir, n, ts, "truncated");
    } else if (c->handle && ss->cb->data) {
        ss->st.bytes += n;
        ss->cb->data(ss->cb->arg, c->handle, dir, p, (size_t)n, ts);
    }
    c->expect[dir] = off + n;
}

void agent_ebpf_streams_expire(struct agent_ebpf_streams *ss, uint64_t now_ns)
{
    for (struct sconn *c = ss->closing, *next; c; c = next) {
        next = c->closing_next;
        if (now_ns >= c->close_ns + SOCK_CLOSE_GRACE_NS)
            drop_conn(ss, c, AGENT_CLOSE_FIN, now_ns);
    }
    while (ss->lru.lru_next != &ss->lru && now_ns - ss->lru.lru_next->last_ns > ss->idle_ns)
        drop_conn(ss, ss->lru.lru_next, AGENT_CLOSE_IDLE, now_ns);
}

void agent_ebpf_streams_close_all(struct agent_ebpf_streams *ss, uint64_t now_ns)
{
    while (ss->lru.lru_next != &ss->lru)
        drop_conn(ss, ss->lru.lru_next, AGENT_CLOSE_SHUTDOWN, now_ns);
}

void agent_ebpf_streams_stats(const struct agent_ebpf_streams *ss, struct agent_ebpf_stream_stats *out)
{
    *out = ss->st;
    out->open = ss->nconns;
}

void agent_ebpf_streams_free(struct agent_ebpf_streams *ss)
{
    if (!ss)
        return;
    ss->cb = NULL;   /* no callbacks: close_all only frees */
    agent_ebpf_streams_close_all(ss, 0);
    sm_free(ss);
}

static int on_event(void *arg, void *data, size_t size)
{
    struct sock_ctx *ctx = arg;
    const struct sm_sock_event *e = data;
    if (size < sizeof(*e))
        return 0;
    agent_ebpf_streams_feed(ctx->ss, data, size, e->ts_ns + ctx->mono_to_real);
    return agent_ebpf_after_record(&ctx->pace, ctx->stop);
}

static void sock_free(struct sock_ctx *ctx)
{
    if (!ctx)
        return;
    ring_buffer__free(ctx->rb);
    sock_capture__destroy(ctx->skel);   /* links go with it */
    agent_ebpf_streams_free(ctx->ss);
    sm_free(ctx);
}

/* The run-time settings (map sock_config, key 0), read and written back whole
 * by the changes made while running. */
static int config_get(struct agent_source *src, struct sm_sock_config *c, char *err, size_t errlen)
{
    struct sock_ctx *ctx = src->ctx;
    uint32_t k = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(ctx->skel->maps.sock_config), &k, c) != 0)
        return agent_ebpf_fail(src->name, "reading sock_config", -errno, AGENT_CAP_BPF, err, errlen);
    return SM_OK;
}

static int config_put(struct agent_source *src, const struct sm_sock_config *c, char *err, size_t errlen)
{
    struct sock_ctx *ctx = src->ctx;
    uint32_t k = 0;
    if (bpf_map_update_elem(bpf_map__fd(ctx->skel->maps.sock_config), &k, c, BPF_ANY) != 0)
        return agent_ebpf_fail(src->name, "updating sock_config", -errno, AGENT_CAP_BPF, err, errlen);
    return SM_OK;
}

static int sock_set_ports(struct agent_source *src, const uint16_t *ports, size_t nports, char *err,
                          size_t errlen)
{
    struct sock_ctx *ctx = src->ctx;
    struct sm_sock_config c;
    int rc = config_get(src, &c, err, errlen);
    if (rc)
        return rc;
    if ((rc = agent_ebpf_ports_set(bpf_map__fd(ctx->skel->maps.ports), ports, nports)))
        return agent_ebpf_fail(src->name, "updating the ports map", rc, AGENT_CAP_BPF, err, errlen);
    c.all_ports = nports == 0;
    if ((rc = config_put(src, &c, err, errlen)))
        return rc;
    sm_log_info("%s: now capturing %zu port(s)%s", src->name, nports, nports ? "" : " (all TCP)");
    return SM_OK;
}

/* The cgroup v2 id of directory path (the kernel's id is the directory's file
 * handle on cgroup2) and its depth below the hierarchy's root (what
 * bpf_get_current_ancestor_cgroup_id() counts), found by walking up while the
 * parent is on the same file system. */
static int cgroup_resolve(const char *name, const char *path, uint64_t *id, uint32_t *level, char *err,
                          size_t errlen)
{
    char real[PATH_MAX];
    struct statfs sfs;
    if (!realpath(path, real) || statfs(real, &sfs) != 0)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: --cgroup %s: %s", name, path, strerror(errno));
    if (sfs.f_type != CGROUP2_SUPER_MAGIC)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: --cgroup %s: not a cgroup v2 directory (cgroup2 is "
                       "mounted at /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems)", name, path);
    union {
        struct file_handle fh;
        char space[sizeof(struct file_handle) + 64];
    } h;
    h.fh.handle_bytes = 64;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, real, &h.fh, &mount_id, 0) != 0 || h.fh.handle_bytes != sizeof(uint64_t))
        return sm_errf(err, errlen, SM_ECONFIG, "%s: --cgroup %s: no cgroup id (%s)", name, path,
                       errno ? strerror(errno) : "unexpected handle size");
    memcpy(id, h.fh.f_handle, sizeof(*id));
    struct stat st;
    if (stat(real, &st) != 0)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: --cgroup %s: %s", name, path, strerror(errno));
    dev_t dev = st.st_dev;
    uint32_t depth = 0;
    for (char *slash; (slash = strrchr(real, '/')) && slash != real;) {
        *slash = 0;
        if (stat(real, &st) != 0 || st.st_dev != dev)
            break;
        depth++;
    }
    *level = depth;
    return SM_OK;
}

/* The process filter's map fields from --pid/--cgroup (checked: the process
 * exists, the directory is a cgroup v2 one). */
static int procs_resolve(const char *name, uint32_t pid, const char *cgroup, struct sm_sock_config *c, char *err,
                         size_t errlen)
{
    c->tgid = pid;
    c->cgroup_id = 0;
    c->cgroup_level = 0;
    if (pid && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: --pid %u: no such process", name, pid);
    if (cgroup) {
        uint64_t id;
        uint32_t level;
        int rc = cgroup_resolve(name, cgroup, &id, &level, err, errlen);
        if (rc)
            return rc;
        c->cgroup_id = id;
        c->cgroup_level = level;
    }
    return SM_OK;
}

static void procs_log(const char *name, const char *what, const struct sm_sock_config *c, const char *cgroup)
{
    char only[PATH_MAX + 96] = "";
    if (c->tgid)
        snprintf(only, sizeof(only), ", process %u only", c->tgid);
    if (cgroup)
        snprintf(only + strlen(only), sizeof(only) - strlen(only), ", cgroup %s (id %" PRIu64 ", level %u) and below only",
                 cgroup, (uint64_t)c->cgroup_id, c->cgroup_level);
    sm_log_info("%s: %s%s", name, what, *only ? only : ", every process");
}

static int sock_set_procs(struct agent_source *src, uint32_t pid, const char *cgroup, char *err, size_t errlen)
{
    struct sm_sock_config c;
    int rc = config_get(src, &c, err, errlen);
    if (!rc)
        rc = procs_resolve(src->name, pid, cgroup, &c, err, errlen);
    if (!rc)
        rc = config_put(src, &c, err, errlen);
    if (rc)
        return rc;
    procs_log(src->name, "process filter now", &c, cgroup);
    return SM_OK;
}

static int sock_open(struct agent_source *src, const struct agent_source_cfg *cfg, char *err, size_t errlen)
{
    const unsigned need = AGENT_CAP_BPF | AGENT_CAP_PERFMON;
    int rc;
    snprintf(src->name, sizeof(src->name), "ebpf-socket[%s]", cfg->nports ? "ports" : "all");
    src->linktype = AGENT_DLT_RAW;   /* no packets; keeps the driver's link check happy */
    if (cfg->nports > 64)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: at most 64 ports", src->name);
    struct sm_sock_config procs = { 0 };
    if ((rc = procs_resolve(src->name, cfg->pid, cfg->cgroup, &procs, err, errlen)))
        return rc;
    if ((rc = agent_ebpf_precheck(src->name, need, err, errlen)) != SM_OK)
        return rc;
    struct sock_ctx *ctx = sm_calloc(1, sizeof(*ctx));
    if (!ctx)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
    ctx->mono_to_real = agent_ebpf_mono_to_real();
    ctx->ss = agent_ebpf_streams_new(NULL, cfg->idle_timeout_ns, SOCK_MAX_CONNS);
    if (!ctx->ss) {
        rc = sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
        goto fail;
    }
    ctx->skel = sock_capture__open();
    if (!ctx->skel) {
        rc = agent_ebpf_fail(src->name, "opening the BPF object", -errno, need, err, errlen);
        goto fail;
    }
    uint32_t ring = agent_ebpf_ringbuf_size(cfg->buffer_size ? cfg->buffer_size : 64ull << 20);
    bpf_map__set_max_entries(ctx->skel->maps.events, ring);
    if ((rc = sock_capture__load(ctx->skel)) != 0) {
        rc = agent_ebpf_fail(src->name, "loading the BPF programs", rc, need, err, errlen);
        goto fail;
    }
    struct sm_sock_config c = procs;
    c.all_ports = cfg->nports == 0;
    c.wake_shift = agent_ebpf_wake_shift(ring);
    uint32_t k = 0;
    if (bpf_map_update_elem(bpf_map__fd(ctx->skel->maps.sock_config), &k, &c, BPF_ANY) != 0 ||
        (rc = agent_ebpf_ports_set(bpf_map__fd(ctx->skel->maps.ports), cfg->ports, cfg->nports)) != 0) {
        rc = agent_ebpf_fail(src->name, "filling the maps", -errno, need, err, errlen);
        goto fail;
    }
    ctx->rb = ring_buffer__new(bpf_map__fd(ctx->skel->maps.events), on_event, ctx, NULL);
    if (!ctx->rb) {
        rc = agent_ebpf_fail(src->name, "opening the ring buffer", -errno, need, err, errlen);
        goto fail;
    }
    if ((rc = sock_capture__attach(ctx->skel)) != 0) {
        rc = agent_ebpf_fail(src->name, "attaching the raw tracepoints", rc, need, err, errlen);
        goto fail;
    }
    src->ctx = ctx;
    char what[96];
    snprintf(what, sizeof(what), "raw syscall tracepoints attached, %zu port(s)", cfg->nports);
    procs_log(src->name, what, &c, cfg->cgroup);
    return SM_OK;
fail:
    sock_free(ctx);
    return rc;
}

static int sock_run(struct agent_source *src, const struct agent_source_handler *h, char *err, size_t errlen)
{
    struct sock_ctx *ctx = src->ctx;
    uint64_t last_tick = 0;
    if (!h->stream)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: needs stream callbacks", src->name);
    ctx->h = h;
    agent_ebpf_streams_set_cb(ctx->ss, h->stream);
    while (!ctx->stop) {
        int n = ring_buffer__poll(ctx->rb, SM_RB_POLL_MS);
        if (n == 0)   /* records submitted without a wakeup (sm_rb_flags): epoll does not see them */
            n = ring_buffer__consume(ctx->rb);
        if (n < 0 && n != -EINTR && n != AGENT_RB_YIELD) {
            agent_ebpf_streams_close_all(ctx->ss, agent_ebpf_now_real());
            agent_ebpf_streams_set_cb(ctx->ss, NULL);
            ctx->h = NULL;
            return sm_errf(err, errlen, SM_EIO, "%s: ring buffer: %s", src->name, strerror(-n));
        }
        uint64_t now = agent_ebpf_now_real();
        if (now - last_tick >= TICK_MS * 1000000ull) {
            last_tick = now;
            agent_ebpf_streams_expire(ctx->ss, now);
            if (h->tick)
                h->tick(h->arg, now);
        }
    }
    agent_ebpf_drain(ctx->rb, &ctx->pace);
    agent_ebpf_streams_close_all(ctx->ss, agent_ebpf_now_real());
    agent_ebpf_streams_set_cb(ctx->ss, NULL);
    ctx->h = NULL;
    return SM_OK;
}

static void sock_stop(struct agent_source *src)
{
    struct sock_ctx *ctx = src->ctx;
    if (ctx)
        ctx->stop = 1;
}

static void sock_stats(struct agent_source *src, struct agent_src_stats *out)
{
    struct sock_ctx *ctx = src->ctx;
    struct agent_ebpf_stream_stats ss;
    agent_ebpf_streams_stats(ctx->ss, &ss);
    memset(out, 0, sizeof(*out));
    out->packets = ss.events;
    out->bytes = ss.bytes;
    out->kernel_drops = agent_ebpf_percpu_sum(bpf_map__fd(ctx->skel->maps.drops));
}

static void sock_close(struct agent_source *src)
{
    struct sock_ctx *ctx = src->ctx;
    struct agent_ebpf_stream_stats ss;
    if (ctx) {
        agent_ebpf_streams_stats(ctx->ss, &ss);
        sm_log_info("%s: %llu connections, %llu bytes, %llu gaps (%llu bytes lost), %llu evicted", src->name,
                    (unsigned long long)ss.conns, (unsigned long long)ss.bytes, (unsigned long long)ss.gaps,
                    (unsigned long long)ss.bytes_lost, (unsigned long long)ss.evicted);
    }
    sock_free(ctx);
    src->ctx = NULL;
}

const struct agent_source_ops agent_source_ebpf_socket = {
    .name = "ebpf-socket",
    .caps = AGENT_CAP_BPF | AGENT_CAP_PERFMON,
    .live = true,
    .open = sock_open,
    .run = sock_run,
    .stop = sock_stop,
    .stats = sock_stats,
    .close = sock_close,
    .set_ports = sock_set_ports,
    .set_procs = sock_set_procs,
};

#else
typedef int agent_ebpf_socket_unused;   /* ISO C forbids an empty translation unit */
#endif
