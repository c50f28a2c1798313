/* "ebpf-tc" engine: TC (clsact) programs on ingress and egress of the chosen
 * interfaces keep TCP packets of the server ports in the kernel (ports in a
 * BPF hash map, changeable while running) and pass them through a BPF ring
 * buffer; each event becomes a struct agent_pkt for the shared flow table.
 * Also the helpers both eBPF engines share (ebpf_int.h) and
 * agent_ebpf_cleanup(). docs/ebpf.md. */
#include "source/source.h"

#include <sm/err.h>

#ifdef SM_WITH_EBPF
#include <errno.h>
#include <stddef.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <sm/log.h>
#include <sm/mem.h>

#include "capture_event.h"
#include "source/ebpf_int.h"
#include "tc_capture.skel.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define TC_MAX_IFACES 16
#define TICK_MS 100
#define IFACE_CHECK_TICKS 10   /* attached interfaces still there: checked every second */

/* ---- shared helpers (ebpf_int.h) ------------------------------------------ */

static _Thread_local bool quiet;   /* probing for our filters: "not found" is expected */

__attribute__((format(printf, 2, 0)))
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    char line[1024];
    if (quiet && level == LIBBPF_WARN)
        level = LIBBPF_DEBUG;
    if (level == LIBBPF_DEBUG && !(sm_log_debug_cur & SM_DBG_BPF))
        return 0;
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    if (level == LIBBPF_WARN)
        sm_log_warn("libbpf: %s", line);
    else
        sm_dbg(SM_DBG_BPF, "libbpf: %s", line);
    return 0;
}

static bool have_cap(const struct __user_cap_data_struct *d, int cap)
{
    return (d[cap / 32].effective >> (cap % 32)) & 1u;
}

/* Names of the capabilities in need that the process lacks ("" if none). */
static void missing_caps(unsigned need, char *out, size_t outlen)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    out[0] = 0;
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &hdr, d) != 0)
        return;
    bool admin = have_cap(d, CAP_SYS_ADMIN);
    size_t pos = 0;
    struct { unsigned bit; int cap; const char *name; bool admin_ok; } list[] = {
        { AGENT_CAP_BPF, CAP_BPF, "CAP_BPF", true },
        { AGENT_CAP_PERFMON, CAP_PERFMON, "CAP_PERFMON", true },
        { AGENT_CAP_NET_ADMIN, CAP_NET_ADMIN, "CAP_NET_ADMIN", false },
    };
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
        if (!(need & list[i].bit) || have_cap(d, list[i].cap) || (list[i].admin_ok && admin))
            continue;
        int n = snprintf(out + pos, outlen - pos, "%s%s", pos ? ", " : "", list[i].name);
        if (n < 0 || (size_t)n >= outlen - pos)
            break;
        pos += (size_t)n;
    }
}

int agent_ebpf_precheck(const char *who, unsigned need, char *err, size_t errlen)
{
    struct stat st;
    char miss[128];
    libbpf_set_print(libbpf_log);
    if (stat("/sys/kernel/btf/vmlinux", &st) != 0)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: the kernel has no BTF (/sys/kernel/btf/vmlinux "
                       "missing: needs CONFIG_DEBUG_INFO_BTF=y); use --engine pcap", who);
    missing_caps(need, miss, sizeof(miss));
    if (miss[0])
        return sm_errf(err, errlen, SM_EIO, "%s: missing capabilities %s (run as root or grant them, "
                       "e.g. AmbientCapabilities= in the systemd unit)", who, miss);
    return SM_OK;
}

int agent_ebpf_fail(const char *who, const char *what, int rc, unsigned need, char *err, size_t errlen)
{
    char miss[128];
    int e = rc < 0 ? -rc : rc;
    missing_caps(need, miss, sizeof(miss));
    if (e == ENOSYS)
        return sm_errf(err, errlen, SM_EIO, "%s: %s: the kernel has no BPF support (bpf(2): ENOSYS)", who, what);
    if (e == EPERM || e == EACCES)
        return sm_errf(err, errlen, SM_EIO, "%s: %s: %s (%s%s; also check kernel.unprivileged_bpf_disabled, "
                       "lockdown and seccomp)", who, what, strerror(e), miss[0] ? "missing " : "capabilities present",
                       miss);
    return sm_errf(err, errlen, SM_EIO, "%s: %s: %s", who, what, strerror(e));
}

uint32_t agent_ebpf_ringbuf_size(uint64_t want)
{
    uint64_t n = 1u << 20;
    if (want > (1ull << 30))
        want = 1ull << 30;
    while (n < want)
        n <<= 1;
    return (uint32_t)n;
}

uint32_t agent_ebpf_wake_shift(uint32_t ring_size)
{
    uint32_t shift = (uint32_t)__builtin_ctz(ring_size) - SM_RB_WAKE_RING_SHIFT;
    return shift < SM_RB_WAKE_MIN_SHIFT ? SM_RB_WAKE_MIN_SHIFT : shift;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t agent_ebpf_mono_to_real(void) { return clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC); }
uint64_t agent_ebpf_now_real(void) { return clock_ns(CLOCK_REALTIME); }

int agent_ebpf_after_record(struct agent_rb_pace *pc, int stopping)
{
    if (stopping) {
        uint64_t now = agent_ebpf_now_real();
        if (!pc->stop_ns)
            pc->stop_ns = now;
        else if (now - pc->stop_ns > AGENT_RB_DRAIN_MS * 1000000ull)
            return AGENT_RB_YIELD;
    }
    if (++pc->batch >= AGENT_RB_BATCH) {
        pc->batch = 0;
        return AGENT_RB_YIELD;
    }
    return 0;
}

void agent_ebpf_drain(struct ring_buffer *rb, struct agent_rb_pace *pc)
{
    while (ring_buffer__consume(rb) == AGENT_RB_YIELD)
        if (pc->stop_ns && agent_ebpf_now_real() - pc->stop_ns > AGENT_RB_DRAIN_MS * 1000000ull) {
            sm_log_warn("ebpf: stopped draining the ring buffer after %u ms (records still coming)",
                        AGENT_RB_DRAIN_MS);
            return;
        }
}

uint64_t agent_ebpf_percpu_sum(int map_fd)
{
    int ncpu = libbpf_num_possible_cpus();
    uint64_t vals[1024], sum = 0;
    uint32_t k = 0;
    if (ncpu <= 0 || ncpu > 1024 || bpf_map_lookup_elem(map_fd, &k, vals) != 0)
        return 0;
    for (int i = 0; i < ncpu; i++)
        sum += vals[i];
    return sum;
}

int agent_ebpf_ports_set(int map_fd, const uint16_t *ports, size_t nports)
{
    uint64_t want[SM_PORT_WORDS] = { 0 };
    for (size_t i = 0; i < nports; i++)
        want[ports[i] >> 6] |= 1ull << (ports[i] & 63);
    /* add the new ports first, then remove the others: no moment without them */
    uint64_t have[SM_PORT_WORDS];
    for (uint32_t k = 0; k < SM_PORT_WORDS; k++) {
        if (bpf_map_lookup_elem(map_fd, &k, &have[k]) != 0)
            return -errno;
        uint64_t both = have[k] | want[k];
        if (both != have[k] && bpf_map_update_elem(map_fd, &k, &both, BPF_ANY) != 0)
            return -errno;
        have[k] = both;
    }
    for (uint32_t k = 0; k < SM_PORT_WORDS; k++)
        if (have[k] != want[k] && bpf_map_update_elem(map_fd, &k, &want[k], BPF_ANY) != 0)
            return -errno;
    return 0;
}

/* ---- engine ---------------------------------------------------------------- */

struct tc_iface {
    char name[IF_NAMESIZE];
    int ifindex;
    bool loopback;
    bool hook_created;      /* we created the clsact qdisc: destroy it on close */
    bool attached[2];       /* classic TC filter: ingress, egress */
    int link_fd[2];         /* tcx link: ingress, egress (-1: none); closing it detaches */
    int claim_fd;           /* this agent's claim on the interface (claim_iface), -1: none */
};

struct tc_ctx {
    struct tc_capture *skel;
    struct ring_buffer *rb;
    struct tc_iface ifs[TC_MAX_IFACES];
    int nifs;
    volatile sig_atomic_t stop;
    struct agent_rb_pace pace;
    const struct agent_source_handler *h;
    struct agent_src_stats st;
    uint64_t mono_to_real;
    bool tcx;               /* attached through tcx links (else classic clsact filters) */
};

/* ---- tcx links ------------------------------------------------------------ *
 * Kernels from 6.6 run TC programs from tcx links: no clsact qdisc, no
 * cls_bpf/tcf_classify layer around the program (less work per packet in the
 * traffic's path), several programs per hook without handles or priorities,
 * and the link goes away with its file descriptor, so an agent that dies, even
 * by SIGKILL, leaves nothing attached. libbpf 1.1 (Debian 12) predates the
 * attach types, so the link is made with the BPF_LINK_CREATE command directly;
 * the values are the kernel's UAPI (include/uapi/linux/bpf.h). */
#define SM_BPF_TCX_INGRESS 46
#define SM_BPF_TCX_EGRESS  47
#define SM_BPF_F_BEFORE    (1u << 3)

/* A tcx link of prog_fd on ifindex, placed before every other program of the
 * hook (a passive observer must see each packet before another program can
 * drop or redirect it). The link's fd, or -errno (EINVAL/EOPNOTSUPP on
 * kernels without tcx). */
static int tcx_link(int prog_fd, int ifindex, bool egress)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.link_create.prog_fd = (__u32)prog_fd;
    a.link_create.target_ifindex = (__u32)ifindex;
    a.link_create.attach_type = egress ? SM_BPF_TCX_EGRESS : SM_BPF_TCX_INGRESS;
    a.link_create.flags = SM_BPF_F_BEFORE;   /* no relative fd/id: first of the hook */
    int fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
    return fd >= 0 ? fd : -errno;
}

static int detach_ours(int ifindex, enum bpf_tc_attach_point ap)
{
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ap);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SM_TC_HANDLE, .priority = SM_TC_PRIORITY);
    quiet = true;
    int rc = bpf_tc_detach(&hook, &opts);
    quiet = false;
    return rc;
}

static int iface_flags(const char *name, bool *loopback, int *arptype)
{
    char path[128];
    *arptype = 1;
    snprintf(path, sizeof(path), "/sys/class/net/%s/type", name);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%d", arptype) != 1)
            *arptype = 1;
        fclose(f);
    }
    *loopback = *arptype == 772;   /* ARPHRD_LOOPBACK */
    return 0;
}

/* Our filters have a fixed handle and priority, so a second agent attaching
 * on the same interface would replace the first one's (which then captures
 * nothing, silently), and the "stale filter" removal at start cannot tell a
 * dead agent's filter from a live one's. A live agent therefore holds a claim
 * on each interface: an abstract UNIX socket bound to a name made of the
 * interface index. Abstract names live in the network namespace, like the
 * interfaces; the kernel releases the name when the process ends, however it
 * ends (SIGKILL included), and no file or directory permission is involved.
 * Returns the socket, or -1 with errno (EADDRINUSE: a live agent holds it). */
static int claim_iface(int ifindex)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "searchmig-agent/ebpf-tc/%d", ifindex);
    if (bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void tc_detach_all(struct tc_ctx *ctx)
{
    for (int i = 0; i < ctx->nifs; i++) {
        struct tc_iface *it = &ctx->ifs[i];
        for (int d = 0; d < 2; d++)
            if (it->link_fd[d] >= 0) {
                close(it->link_fd[d]);
                it->link_fd[d] = -1;
            }
        for (int d = 0; d < 2; d++)
            if (it->attached[d]) {
                int rc = detach_ours(it->ifindex, d ? BPF_TC_EGRESS : BPF_TC_INGRESS);
                if (rc && rc != -ENOENT && rc != -ENODEV)
                    sm_log_warn("ebpf-tc[%s]: removing %s filter: %s", it->name, d ? "egress" : "ingress",
                                strerror(-rc));
                it->attached[d] = false;
            }
        if (it->hook_created) {
            LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = it->ifindex,
                        .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
            bpf_tc_hook_destroy(&hook);
            it->hook_created = false;
        }
        if (it->claim_fd >= 0) {
            close(it->claim_fd);
            it->claim_fd = -1;
        }
    }
}

static int on_event(void *arg, void *data, size_t size)
{
    struct tc_ctx *ctx = arg;
    const struct sm_tc_event *e = data;
    if (size < sizeof(*e) || e->caplen > size - sizeof(*e))
        return 0;
    struct agent_pkt pkt = {
        .ts_ns = e->ts_ns + ctx->mono_to_real,
        .linktype = e->l2 == SM_TC_L2_NONE ? AGENT_DLT_RAW : AGENT_DLT_EN10MB,
        .caplen = e->caplen,
        .len = e->len < e->caplen ? e->caplen : e->len,
        .data = (const uint8_t *)(e + 1),
    };
    ctx->st.packets++;
    ctx->st.bytes += pkt.len;
    ctx->h->pkt(ctx->h->arg, &pkt);
    return agent_ebpf_after_record(&ctx->pace, ctx->stop);
}

static void tc_free(struct tc_ctx *ctx)
{
    if (!ctx)
        return;
    ring_buffer__free(ctx->rb);
    tc_detach_all(ctx);
    tc_capture__destroy(ctx->skel);
    sm_free(ctx);
}

static int tc_set_ports(struct agent_source *src, const uint16_t *ports, size_t nports, char *err,
                        size_t errlen)
{
    struct tc_ctx *ctx = src->ctx;
    struct sm_tc_config c;
    uint32_t k = 0;
    int cfd = bpf_map__fd(ctx->skel->maps.tc_config);
    if (bpf_map_lookup_elem(cfd, &k, &c) != 0)
        return agent_ebpf_fail(src->name, "reading tc_config", -errno, AGENT_CAP_BPF, err, errlen);
    int rc = agent_ebpf_ports_set(bpf_map__fd(ctx->skel->maps.ports), ports, nports);
    if (rc)
        return agent_ebpf_fail(src->name, "updating the ports map", rc, AGENT_CAP_BPF, err, errlen);
    c.all_ports = nports == 0;
    if (bpf_map_update_elem(cfd, &k, &c, BPF_ANY) != 0)
        return agent_ebpf_fail(src->name, "updating tc_config", -errno, AGENT_CAP_BPF, err, errlen);
    sm_log_info("%s: now capturing %zu port(s)%s", src->name, nports, nports ? "" : " (all TCP)");
    return SM_OK;
}

static int tc_open(struct agent_source *src, const struct agent_source_cfg *cfg, char *err, size_t errlen)
{
    const unsigned need = AGENT_CAP_BPF | AGENT_CAP_NET_ADMIN;
    int rc;
    snprintf(src->name, sizeof(src->name), "ebpf-tc[%s]", cfg->iface ? cfg->iface : "");
    src->linktype = AGENT_DLT_EN10MB;
    if (!cfg->iface || !*cfg->iface || !strcmp(cfg->iface, "any"))
        return sm_errf(err, errlen, SM_ECONFIG, "ebpf-tc: --interface IF[,IF...] required (\"any\" is not "
                       "supported: TC programs attach to named interfaces)");
    if (cfg->nports > 64)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: at most 64 ports", src->name);
    int mode = agent_tc_attach_mode(cfg->tc_attach);
    if (mode < 0)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: --tc-attach '%s': auto, tcx or tc", src->name, cfg->tc_attach);
    if ((rc = agent_ebpf_precheck(src->name, need, err, errlen)) != SM_OK)
        return rc;
    struct tc_ctx *ctx = sm_calloc(1, sizeof(*ctx));
    if (!ctx)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
    ctx->mono_to_real = agent_ebpf_mono_to_real();

    /* interfaces */
    char list[512];
    snprintf(list, sizeof(list), "%s", cfg->iface);
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!*tok)
            continue;
        if (ctx->nifs == TC_MAX_IFACES) {
            rc = sm_errf(err, errlen, SM_ECONFIG, "%s: at most %d interfaces", src->name, TC_MAX_IFACES);
            goto fail;
        }
        struct tc_iface *it = &ctx->ifs[ctx->nifs];
        snprintf(it->name, sizeof(it->name), "%s", tok);
        it->claim_fd = -1;
        it->link_fd[0] = it->link_fd[1] = -1;
        it->ifindex = (int)if_nametoindex(tok);
        if (!it->ifindex) {
            rc = sm_errf(err, errlen, SM_EIO, "%s: no interface \"%s\"", src->name, tok);
            goto fail;
        }
        ctx->nifs++;
        if ((it->claim_fd = claim_iface(it->ifindex)) < 0) {
            rc = errno == EADDRINUSE
                     ? sm_errf(err, errlen, SM_ECONFLICT, "%s: another searchmig-agent is capturing on %s with "
                               "ebpf-tc; attaching would replace its filter: stop it first (one ebpf-tc "
                               "agent per interface)", src->name, tok)
                     : sm_errf(err, errlen, SM_EIO, "%s: claiming %s: %s", src->name, tok, strerror(errno));
            goto fail;
        }
    }

    ctx->skel = tc_capture__open();
    if (!ctx->skel) {
        rc = agent_ebpf_fail(src->name, "opening the BPF object", -errno, need, err, errlen);
        goto fail;
    }
    uint32_t ring = agent_ebpf_ringbuf_size(cfg->buffer_size ? cfg->buffer_size : 64ull << 20);
    bpf_map__set_max_entries(ctx->skel->maps.events, ring);
    if ((rc = tc_capture__load(ctx->skel)) != 0) {
        rc = agent_ebpf_fail(src->name, "loading the BPF programs", rc, need, err, errlen);
        goto fail;
    }
    struct sm_tc_config c = {
        .snaplen = cfg->snaplen ? (cfg->snaplen < SM_TC_SNAP_MAX ? cfg->snaplen : SM_TC_SNAP_MAX) : SM_TC_SNAP_MAX,
        .all_ports = cfg->nports == 0,
        .wake_shift = agent_ebpf_wake_shift(ring),
    };
    for (int i = 0; i < ctx->nifs; i++) {
        struct tc_iface *it = &ctx->ifs[i];
        int arptype;
        iface_flags(it->name, &it->loopback, &arptype);
        uint32_t l2 = (arptype == 1 || arptype == 772) ? SM_TC_L2_ETHER : SM_TC_L2_NONE;
        uint32_t ifk = (uint32_t)it->ifindex;
        if (bpf_map_update_elem(bpf_map__fd(ctx->skel->maps.tc_ifaces), &ifk, &l2, BPF_ANY) != 0) {
            rc = agent_ebpf_fail(src->name, "filling the interface map", -errno, need, err, errlen);
            goto fail;
        }
        c.raw_l2 |= l2 == SM_TC_L2_NONE;
    }
    uint32_t k = 0;
    if (bpf_map_update_elem(bpf_map__fd(ctx->skel->maps.tc_config), &k, &c, BPF_ANY) != 0 ||
        (rc = agent_ebpf_ports_set(bpf_map__fd(ctx->skel->maps.ports), cfg->ports, cfg->nports)) != 0) {
        rc = agent_ebpf_fail(src->name, "filling the maps", -errno, need, err, errlen);
        goto fail;
    }

    int pfd[2] = { bpf_program__fd(ctx->skel->progs.sm_tc_ingress), bpf_program__fd(ctx->skel->progs.sm_tc_egress) };
    /* A previous agent's classic filters, left by SIGKILL, go first in either mode. */
    for (int i = 0; i < ctx->nifs; i++)
        for (int d = 0; d < 2; d++)
            if (detach_ours(ctx->ifs[i].ifindex, d ? BPF_TC_EGRESS : BPF_TC_INGRESS) == 0)
                sm_log_warn("%s: removed a stale %s filter of a previous agent on %s", src->name,
                            d ? "egress" : "ingress", ctx->ifs[i].name);
    ctx->tcx = mode != 2;
    for (int i = 0; i < ctx->nifs && ctx->tcx; i++) {
        struct tc_iface *it = &ctx->ifs[i];
        for (int d = 0; d < 2; d++) {
            /* On loopback every packet passes egress and then ingress of the
             * same device: ingress alone sees each packet once. */
            if (d == 1 && it->loopback)
                continue;
            int fd = tcx_link(pfd[d], it->ifindex, d == 1);
            if (fd >= 0) {
                it->link_fd[d] = fd;
                continue;
            }
            if (mode == 0 && (fd == -EINVAL || fd == -EOPNOTSUPP) && i == 0 && d == 0) {
                sm_log_info("%s: no tcx on this kernel (%s): classic TC filters", src->name, strerror(-fd));
                ctx->tcx = false;
                break;
            }
            char what[96];
            snprintf(what, sizeof(what), "attaching the tcx %s link on %s", d ? "egress" : "ingress", it->name);
            rc = agent_ebpf_fail(src->name, what, fd, need, err, errlen);
            goto fail;
        }
    }
    for (int i = 0; i < ctx->nifs && !ctx->tcx; i++) {
        struct tc_iface *it = &ctx->ifs[i];
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = it->ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
        rc = bpf_tc_hook_create(&hook);
        if (rc && rc != -EEXIST) {
            rc = agent_ebpf_fail(src->name, "creating the clsact qdisc", rc, need, err, errlen);
            goto fail;
        }
        it->hook_created = rc == 0;
        for (int d = 0; d < 2; d++) {
            if (d == 1 && it->loopback)
                continue;
            hook.attach_point = d ? BPF_TC_EGRESS : BPF_TC_INGRESS;
            LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SM_TC_HANDLE, .priority = SM_TC_PRIORITY, .prog_fd = pfd[d]);
            rc = bpf_tc_attach(&hook, &opts);
            if (rc) {
                char what[96];
                snprintf(what, sizeof(what), "attaching the %s filter on %s", d ? "egress" : "ingress", it->name);
                rc = agent_ebpf_fail(src->name, what, rc, need, err, errlen);
                goto fail;
            }
            it->attached[d] = true;
        }
    }
    ctx->rb = ring_buffer__new(bpf_map__fd(ctx->skel->maps.events), on_event, ctx, NULL);
    if (!ctx->rb) {
        rc = agent_ebpf_fail(src->name, "opening the ring buffer", -errno, need, err, errlen);
        goto fail;
    }
    src->ctx = ctx;
    if (ctx->tcx)
        sm_log_info("%s: tcx links attached, %zu port(s)", src->name, cfg->nports);
    else
        sm_log_info("%s: TC filters attached (handle 0x%x, priority 0x%x), %zu port(s)", src->name, SM_TC_HANDLE,
                    SM_TC_PRIORITY, cfg->nports);
    return SM_OK;
fail:
    tc_free(ctx);
    return rc;
}

/* An attached interface that no longer exists (deleted; a device made again
 * under the same name has another index): its hooks went with it, so the
 * engine would capture nothing from then on. pcap reports the same ("The
 * interface disappeared") and the agent exits with an error (systemd restarts
 * it). Renamed interfaces keep their index and their hooks: not an error. */
static const struct tc_iface *iface_gone(const struct tc_ctx *ctx)
{
    char name[IF_NAMESIZE];
    for (int i = 0; i < ctx->nifs; i++)
        if (!if_indextoname((unsigned)ctx->ifs[i].ifindex, name) && errno == ENXIO)
            return &ctx->ifs[i];
    return NULL;
}

static int tc_run(struct agent_source *src, const struct agent_source_handler *h, char *err, size_t errlen)
{
    struct tc_ctx *ctx = src->ctx;
    uint64_t last_tick = 0, ticks = 0;
    ctx->h = h;
    while (!ctx->stop) {
        int n = ring_buffer__poll(ctx->rb, SM_RB_POLL_MS);
        if (n == 0)   /* records submitted without a wakeup (sm_rb_flags): epoll does not see them */
            n = ring_buffer__consume(ctx->rb);
        if (n < 0 && n != -EINTR && n != AGENT_RB_YIELD) {
            ctx->h = NULL;
            return sm_errf(err, errlen, SM_EIO, "%s: ring buffer: %s", src->name, strerror(-n));
        }
        uint64_t now = agent_ebpf_now_real();
        if (now - last_tick >= TICK_MS * 1000000ull) {
            last_tick = now;
            if (h->tick)
                h->tick(h->arg, now);
            if (++ticks % IFACE_CHECK_TICKS == 0) {
                const struct tc_iface *gone = iface_gone(ctx);
                if (gone) {
                    agent_ebpf_drain(ctx->rb, &ctx->pace);
                    ctx->h = NULL;
                    return sm_errf(err, errlen, SM_EIO, "%s: interface %s (index %d) disappeared: nothing left "
                                   "to capture (restart the agent once it is back)", src->name, gone->name,
                                   gone->ifindex);
                }
            }
        }
    }
    /* what is already in the ring buffer still counts */
    agent_ebpf_drain(ctx->rb, &ctx->pace);
    ctx->h = NULL;
    return SM_OK;
}

static void tc_stop(struct agent_source *src)
{
    struct tc_ctx *ctx = src->ctx;
    if (ctx)
        ctx->stop = 1;
}

static void tc_stats(struct agent_source *src, struct agent_src_stats *out)
{
    struct tc_ctx *ctx = src->ctx;
    *out = ctx->st;
    out->kernel_drops = agent_ebpf_percpu_sum(bpf_map__fd(ctx->skel->maps.drops));
}

static void tc_close(struct agent_source *src)
{
    tc_free(src->ctx);
    src->ctx = NULL;
}

const struct agent_source_ops agent_source_ebpf_tc = {
    .name = "ebpf-tc",
    .caps = AGENT_CAP_BPF | AGENT_CAP_NET_ADMIN,
    .live = true,
    .open = tc_open,
    .run = tc_run,
    .stop = tc_stop,
    .stats = tc_stats,
    .close = tc_close,
    .set_ports = tc_set_ports,
};

int agent_ebpf_cleanup(const char *ifaces, unsigned *removed, char *err, size_t errlen)
{
    unsigned n = 0;
    int rc = SM_OK;
    libbpf_set_print(libbpf_log);
    struct if_nameindex *all = NULL;
    char list[512];
    if (ifaces && *ifaces) {
        snprintf(list, sizeof(list), "%s", ifaces);
    } else {
        all = if_nameindex();
        if (!all)
            return sm_errf(err, errlen, SM_EIO, "ebpf cleanup: listing interfaces: %s", strerror(errno));
        size_t pos = 0;
        list[0] = 0;
        for (struct if_nameindex *p = all; p->if_index; p++) {
            int w = snprintf(list + pos, sizeof(list) - pos, "%s%s", pos ? "," : "", p->if_name);
            if (w < 0 || (size_t)w >= sizeof(list) - pos)
                break;
            pos += (size_t)w;
        }
        if_freenameindex(all);
    }
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int idx = (int)if_nametoindex(tok);
        if (!idx) {
            rc = sm_errf(err, errlen, SM_EIO, "ebpf cleanup: no interface \"%s\"", tok);
            continue;
        }
        int claim = claim_iface(idx);
        if (claim < 0 && errno == EADDRINUSE) {
            sm_log_warn("ebpf cleanup: %s: a running searchmig-agent captures there; its filters stay", tok);
            continue;
        }
        for (int d = 0; d < 2; d++) {
            int r = detach_ours(idx, d ? BPF_TC_EGRESS : BPF_TC_INGRESS);
            if (r == 0) {
                n++;
                sm_log_info("ebpf cleanup: removed our %s filter on %s", d ? "egress" : "ingress", tok);
            } else if (r != -ENOENT && r != -EINVAL) {
                rc = agent_ebpf_fail("ebpf cleanup", tok, r, AGENT_CAP_NET_ADMIN, err, errlen);
            }
        }
        if (claim >= 0)
            close(claim);
    }
    if (removed)
        *removed = n;
    return rc;
}

#else /* !SM_WITH_EBPF */

int agent_ebpf_cleanup(const char *ifaces, unsigned *removed, char *err, size_t errlen)
{
    (void)ifaces;
    if (removed)
        *removed = 0;
    return sm_errf(err, errlen, SM_EUNSUPPORTED, "built without eBPF support (SM_WITH_EBPF=OFF)");
}

#endif
