/* libpcap engines: "pcap" (live) and "pcap-file" (offline file or FILE *). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <pcap/pcap.h>

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

#include "source/decode.h"
#include "source/source.h"

#define TICK_MS 100
#define BLOCK_TIMEOUT_MS 10      /* live: a TPACKET_V3 block is handed over at the latest after this */
#define DRAIN_MAX_MS 2000        /* live: longest drain of the ring after stop() */
#define FILE_BUF (1024 * 1024)   /* stdio buffer of a capture file */

struct pcap_ctx {
    pcap_t *p;
    bool nano;                      /* timestamps in ns (else us) */
    volatile sig_atomic_t stop;
    int wake[2];                    /* self-pipe: stop() wakes poll() */
    const struct agent_source_handler *h;
    int linktype;
    struct agent_src_stats st;
    uint32_t last_recv, last_drop, last_ifdrop;   /* 32-bit pcap_stats, widened */
    /* pcap-file, classic pcap format: packets read straight from a mapping
     * of the file (below); p is still open for the link type and filter */
    int map_fd;                     /* -1: libpcap reads the file */
    size_t map_len;                 /* file size */
    const uint8_t *win;             /* mapped window [win_off, win_off + win_len) */
    size_t win_off, win_len;
    bool swapped, map_nano;
    bool have_prog;
    struct bpf_program prog;
    /* live: a filter given by set_filter(), applied by the capture thread */
    pthread_mutex_t flock;
    char *new_filter;
};

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *hdr, const u_char *bytes)
{
    struct pcap_ctx *ctx = (struct pcap_ctx *)user;
    struct agent_pkt pkt;
    pkt.ts_ns = (uint64_t)hdr->ts.tv_sec * 1000000000ull +
                (uint64_t)hdr->ts.tv_usec * (ctx->nano ? 1ull : 1000ull);
    pkt.linktype = ctx->linktype;
    pkt.caplen = hdr->caplen;
    pkt.len = hdr->len;
    pkt.data = bytes;
    ctx->st.packets++;
    ctx->st.bytes += hdr->len;
    ctx->h->pkt(ctx->h->arg, &pkt);
}

/* Compiles filter for handle p of link type linktype. On Ethernet it also
 * matches inside one or two VLAN tags: the "vlan" keyword shifts offsets for
 * the rest of the expression, hence the nesting; other link types do not
 * support it. */
static int compile_filter(struct agent_source *src, pcap_t *p, int linktype, const char *filter,
                          struct bpf_program *prog, char *err, size_t errlen)
{
    char *wrapped = NULL;
    if (linktype == DLT_EN10MB) {
        size_t n = 5 * strlen(filter) + 64;
        wrapped = sm_malloc(n);
        if (!wrapped)
            return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
        snprintf(wrapped, n, "(%s) or (vlan and ((%s) or (vlan and (%s))))", filter, filter, filter);
    }
    int crc = pcap_compile(p, prog, wrapped ? wrapped : filter, 1, PCAP_NETMASK_UNKNOWN);
    sm_free(wrapped);
    if (crc < 0)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: filter \"%s\": %s", src->name, filter, pcap_geterr(p));
    return SM_OK;
}

static int apply_filter(struct agent_source *src, struct pcap_ctx *ctx, const char *filter,
                        char *err, size_t errlen)
{
    if (!filter || !*filter)
        return SM_OK;
    struct bpf_program prog;
    int crc = compile_filter(src, ctx->p, ctx->linktype, filter, &prog, err, errlen);
    if (crc != SM_OK)
        return crc;
    int rc = pcap_setfilter(ctx->p, &prog);
    if (rc >= 0 && ctx->map_fd >= 0) {   /* the mapped reader filters with pcap_offline_filter() */
        ctx->prog = prog;
        ctx->have_prog = true;
        return SM_OK;
    }
    pcap_freecode(&prog);
    if (rc < 0)
        return sm_errf(err, errlen, SM_EIO, "%s: setting filter: %s", src->name, pcap_geterr(ctx->p));
    return SM_OK;
}

/* Live capture on a loopback device: the kernel hands every packet sent on lo
 * to a packet socket twice, once as sent (a clone of the packet, the filter
 * run on it, a copy into the ring) and once as received; libpcap then drops
 * the sent copy in user space. PACKET_IGNORE_OUTGOING (Linux 4.20) stops the
 * first delivery before the clone: the same packets are captured, once,
 * with about half the kernel work (charged to the threads sending them) and
 * half the ring traffic (our wakeups). Not for other devices, where the
 * server's own packets are only seen as sent. Best effort: on failure
 * libpcap drops the duplicates as before. */
static void ignore_outgoing(struct agent_source *src, struct pcap_ctx *ctx, const char *iface)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    size_t n = strlen(iface);
    if (n >= sizeof(ifr.ifr_name))
        return;
    memcpy(ifr.ifr_name, iface, n);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    bool lo = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_LOOPBACK);
    close(fd);
    int one = 1;
    if (lo && setsockopt(pcap_get_selectable_fd(ctx->p), SOL_PACKET, PACKET_IGNORE_OUTGOING, &one,
                         sizeof(one)) != 0)
        sm_log_info("%s: loopback packets are captured twice (libpcap drops the sent copies): "
                    "PACKET_IGNORE_OUTGOING: %s", src->name, strerror(errno));
}

static struct pcap_ctx *ctx_new(void)
{
    struct pcap_ctx *ctx = sm_calloc(1, sizeof(*ctx));
    if (ctx) {
        ctx->wake[0] = ctx->wake[1] = ctx->map_fd = -1;
        pthread_mutex_init(&ctx->flock, NULL);
    }
    return ctx;
}

static void ctx_free(struct pcap_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->win)
        munmap((void *)ctx->win, ctx->win_len);
    if (ctx->have_prog)
        pcap_freecode(&ctx->prog);
    if (ctx->p)
        pcap_close(ctx->p);
    if (ctx->wake[0] >= 0)
        close(ctx->wake[0]);
    if (ctx->wake[1] >= 0)
        close(ctx->wake[1]);
    sm_free(ctx->new_filter);
    pthread_mutex_destroy(&ctx->flock);
    sm_free(ctx);
}

static void widen(uint64_t *acc, uint32_t *last, uint32_t now)
{
    *acc += (uint32_t)(now - *last);   /* modulo 2^32: survives the kernel counter wrapping */
    *last = now;
}

/* ---- live ----------------------------------------------------------------- */

static int live_open(struct agent_source *src, const struct agent_source_cfg *cfg, char *err,
                     size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    const char *iface = cfg->iface && *cfg->iface ? cfg->iface : NULL;
    if (!iface)
        return sm_errf(err, errlen, SM_ECONFIG, "pcap: no interface given");
    snprintf(src->name, sizeof(src->name), "pcap[%s]", iface);
    struct pcap_ctx *ctx = ctx_new();
    if (!ctx)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
    int rc = SM_EIO;
    ctx->p = pcap_create(iface, ebuf);
    if (!ctx->p) {
        sm_errf(err, errlen, SM_EIO, "%s: %s", src->name, ebuf);
        goto fail;
    }
    uint64_t bufsz = cfg->buffer_size ? cfg->buffer_size : 64ull * 1024 * 1024;
    if (bufsz > 0x7fffffff)
        bufsz = 0x7fffffff;
    pcap_set_snaplen(ctx->p, cfg->snaplen ? (int)cfg->snaplen : 262144);
    pcap_set_promisc(ctx->p, 0);
    /* Not immediate mode: libpcap then uses a TPACKET_V3 ring, where the
     * kernel packs packets back to back into blocks and wakes us once per
     * block (full, or BLOCK_TIMEOUT_MS after its first packet) instead of
     * once per packet. Immediate mode (TPACKET_V2, one slot per packet sized
     * for the snap length) cost the source a wakeup and a context switch per
     * packet and, on lo (64 KiB MTU), left room for only ~1000 packets in
     * 64 MiB: kernel drops under load (bench_engines, docs/capture.md).
     * Records are flushed after a second of idleness anyway, so 10 ms of
     * extra latency changes nothing downstream. */
    pcap_set_immediate_mode(ctx->p, 0);
    pcap_set_timeout(ctx->p, BLOCK_TIMEOUT_MS);
    pcap_set_buffer_size(ctx->p, (int)bufsz);
    ctx->nano = pcap_set_tstamp_precision(ctx->p, PCAP_TSTAMP_PRECISION_NANO) == 0;
    int act = pcap_activate(ctx->p);
    if (act < 0) {
        const char *detail = pcap_geterr(ctx->p);
        sm_errf(err, errlen, SM_EIO, "%s: cannot capture: %s%s%s", src->name, pcap_statustostr(act),
                detail && *detail ? ": " : "", detail ? detail : "");
        goto fail;
    }
    if (act > 0)
        sm_log_warn("%s: %s: %s", src->name, pcap_statustostr(act), pcap_geterr(ctx->p));
    ctx->nano = pcap_get_tstamp_precision(ctx->p) == PCAP_TSTAMP_PRECISION_NANO;
    ctx->linktype = pcap_datalink(ctx->p);
    if (!agent_decode_link_supported(ctx->linktype)) {
        rc = sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: link type %d not supported (Ethernet, Linux "
                     "cooked SLL/SLL2, loopback, raw IP are)", src->name, ctx->linktype);
        goto fail;
    }
    if ((rc = apply_filter(src, ctx, cfg->filter, err, errlen)) != SM_OK)
        goto fail;
    ignore_outgoing(src, ctx, iface);
    rc = SM_EIO;
    if (pcap_setnonblock(ctx->p, 1, ebuf) < 0) {
        sm_errf(err, errlen, SM_EIO, "%s: non-blocking mode: %s", src->name, ebuf);
        goto fail;
    }
    if (pcap_get_selectable_fd(ctx->p) < 0) {
        sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: no selectable descriptor", src->name);
        goto fail;
    }
    if (pipe(ctx->wake) < 0) {
        sm_errf(err, errlen, SM_EIO, "%s: pipe: %s", src->name, strerror(errno));
        goto fail;
    }
    fcntl(ctx->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(ctx->wake[1], F_SETFL, O_NONBLOCK);
    src->ctx = ctx;
    src->linktype = ctx->linktype;
    sm_log_info("%s: capturing, link type %s, buffer %llu bytes, filter \"%s\"", src->name,
                pcap_datalink_val_to_name(ctx->linktype) ? pcap_datalink_val_to_name(ctx->linktype) : "?",
                (unsigned long long)bufsz, cfg->filter ? cfg->filter : "");
    return SM_OK;
fail:
    ctx_free(ctx);
    return rc;
}

static void live_poll_stats(struct pcap_ctx *ctx)
{
    struct pcap_stat ps;
    if (pcap_stats(ctx->p, &ps) == 0) {
        uint64_t dummy = 0;
        widen(&dummy, &ctx->last_recv, ps.ps_recv);
        widen(&ctx->st.kernel_drops, &ctx->last_drop, ps.ps_drop);
        widen(&ctx->st.iface_drops, &ctx->last_ifdrop, ps.ps_ifdrop);
    }
}

/* Capture thread: sets a filter handed over by live_set_filter() (compiled on
 * the live handle, as at open). pcap_setfilter() replaces the kernel filter at
 * once; packets already in the ring are filtered again in user space by
 * libpcap, so a port taken out is not delivered after the change. */
static void live_apply_new_filter(struct agent_source *src, struct pcap_ctx *ctx)
{
    pthread_mutex_lock(&ctx->flock);
    char *f = ctx->new_filter;
    ctx->new_filter = NULL;
    pthread_mutex_unlock(&ctx->flock);
    if (!f)
        return;
    char err[512];
    if (apply_filter(src, ctx, f, err, sizeof(err)) != SM_OK)
        sm_log_warn("%s: new filter not set: %s", src->name, err);
    else
        sm_log_info("%s: filter now \"%s\"", src->name, f);
    sm_free(f);
}

/* Any thread: checks filter on a dead handle of the same link type (a syntax
 * or host name error is returned here), then leaves it to the capture thread,
 * which owns the live handle. */
static int live_set_filter(struct agent_source *src, const char *filter, char *err, size_t errlen)
{
    struct pcap_ctx *ctx = src->ctx;
    pcap_t *dead = pcap_open_dead(ctx->linktype, 262144);
    if (!dead)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
    struct bpf_program prog;
    int rc = compile_filter(src, dead, ctx->linktype, filter, &prog, err, errlen);
    if (rc == SM_OK)
        pcap_freecode(&prog);
    pcap_close(dead);
    if (rc != SM_OK)
        return rc;
    char *copy = sm_strdup(filter);
    if (!copy)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
    pthread_mutex_lock(&ctx->flock);
    sm_free(ctx->new_filter);
    ctx->new_filter = copy;
    pthread_mutex_unlock(&ctx->flock);
    ssize_t w = write(ctx->wake[1], "f", 1);   /* the capture thread's poll() returns */
    (void)w;
    return SM_OK;
}

static int live_run(struct agent_source *src, const struct agent_source_handler *h, char *err,
                    size_t errlen)
{
    struct pcap_ctx *ctx = src->ctx;
    struct pollfd pfd[2];
    uint64_t last_tick = 0;
    ctx->h = h;
    pfd[0].fd = pcap_get_selectable_fd(ctx->p);
    pfd[0].events = POLLIN;
    pfd[1].fd = ctx->wake[0];
    pfd[1].events = POLLIN;
    while (!ctx->stop) {
        int n = poll(pfd, 2, TICK_MS);
        if (n < 0 && errno != EINTR)
            return sm_errf(err, errlen, SM_EIO, "%s: poll: %s", src->name, strerror(errno));
        if (ctx->stop)
            break;
        if (pfd[1].revents & POLLIN) {   /* set_filter() or stop() wrote to the pipe */
            char b[64];
            while (read(ctx->wake[0], b, sizeof(b)) > 0) {
            }
        }
        live_apply_new_filter(src, ctx);
        for (;;) {
            int got = pcap_dispatch(ctx->p, 4096, on_packet, (u_char *)ctx);
            if (got < 0) {
                if (got == PCAP_ERROR_BREAK)
                    break;
                return sm_errf(err, errlen, SM_EIO, "%s: %s", src->name, pcap_geterr(ctx->p));
            }
            if (got < 4096 || ctx->stop)
                break;
        }
        uint64_t now = wall_ns();
        if (now - last_tick >= TICK_MS * 1000000ull) {
            last_tick = now;
            live_poll_stats(ctx);
            if (h->tick)
                h->tick(h->arg, now);
        }
    }
    /* Stopped (SIGTERM): packets the kernel has captured already are still
     * delivered, or a capture that fell behind (a busy host) would lose its
     * last requests. The ring holds at most --buffer-size bytes; a partly
     * filled block is handed over BLOCK_TIMEOUT_MS after its first packet, so
     * the drain ends once two of those pass with nothing new, or after
     * DRAIN_MAX_MS whatever the traffic. */
    uint64_t start = wall_ns(), quiet_since = start;
    while (wall_ns() - start < DRAIN_MAX_MS * 1000000ull &&
           wall_ns() - quiet_since < 2 * BLOCK_TIMEOUT_MS * 1000000ull) {
        int got = pcap_dispatch(ctx->p, 4096, on_packet, (u_char *)ctx);
        if (got < 0)
            break;
        if (got > 0) {
            quiet_since = wall_ns();
            continue;
        }
        poll(pfd, 1, BLOCK_TIMEOUT_MS);
    }
    live_poll_stats(ctx);
    return SM_OK;
}

static void pcap_stop(struct agent_source *src)
{
    struct pcap_ctx *ctx = src->ctx;
    if (!ctx || ctx->stop)
        return;              /* woken already (the driver calls this again for every packet drained) */
    ctx->stop = 1;
    if (ctx->wake[1] >= 0) {
        char c = 1;
        ssize_t w = write(ctx->wake[1], &c, 1);   /* async-signal-safe */
        (void)w;
    }
}

static void pcap_src_stats(struct agent_source *src, struct agent_src_stats *out)
{
    struct pcap_ctx *ctx = src->ctx;
    if (!ctx) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = ctx->st;
}

static void pcap_src_close(struct agent_source *src)
{
    ctx_free(src->ctx);
    src->ctx = NULL;
}

const struct agent_source_ops agent_source_pcap_live = {
    .name = "pcap",
    .caps = AGENT_CAP_NET_RAW,
    .live = true,
    .open = live_open,
    .run = live_run,
    .stop = pcap_stop,
    .stats = pcap_src_stats,
    .close = pcap_src_close,
    .set_filter = live_set_filter,
};

/* ---- file ----------------------------------------------------------------- */

static void map_file(struct pcap_ctx *ctx, int fd);

static int file_open(struct agent_source *src, const struct agent_source_cfg *cfg, char *err,
                     size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    if (!cfg->fp && !(cfg->path && *cfg->path))
        return sm_errf(err, errlen, SM_ECONFIG, "pcap-file: no file given");
    snprintf(src->name, sizeof(src->name), "pcap-file[%s]", cfg->fp ? "stream" : cfg->path);
    struct pcap_ctx *ctx = ctx_new();
    if (!ctx) {
        if (cfg->fp)
            fclose(cfg->fp);
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
    }
    FILE *fp = cfg->fp;
    if (!fp && strcmp(cfg->path, "-") != 0 && (fp = fopen(cfg->path, "rbe")) != NULL) {
        /* Classic pcap files are then read through a mapping (map_file);
         * for pcapng libpcap reads through stdio, whose default 4 KiB
         * buffer means one read() per 4 KiB: a file we open ourselves gets
         * a 1 MiB buffer. pcap_close() closes it. */
        setvbuf(fp, NULL, _IOFBF, FILE_BUF);
    }
    if (fp)
        ctx->p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    else   /* "-" (stdin), or a file fopen() refused: libpcap opens it and names the error */
        ctx->p = pcap_open_offline_with_tstamp_precision(cfg->path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    if (!ctx->p) {
        if (fp)
            fclose(fp);               /* fp is consumed in every case */
        ctx_free(ctx);
        return sm_errf(err, errlen, SM_EIO, "%s: %s", src->name, ebuf);
    }
    ctx->nano = true;
    ctx->linktype = pcap_datalink(ctx->p);
    if (!cfg->fp && fp)
        map_file(ctx, fileno(fp));
    int rc;
    if (!agent_decode_link_supported(ctx->linktype))
        rc = sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: link type %d not supported (Ethernet, Linux "
                     "cooked SLL/SLL2, loopback, raw IP are)", src->name, ctx->linktype);
    else
        rc = apply_filter(src, ctx, cfg->filter, err, errlen);
    if (rc != SM_OK) {
        ctx_free(ctx);                 /* pcap_close() closes fp */
        return rc;
    }
    src->ctx = ctx;
    src->linktype = ctx->linktype;
    return SM_OK;
}

/* Classic pcap files (not pcapng) are read from a read-only mapping instead
 * of through libpcap's stdio reads: no copy of the 1.6 GB benchmark capture
 * into the kernel's and libpcap's buffers (about 12 % of the agent's CPU
 * offline, docs/agent.md). libpcap still opens the file (it validates the
 * header, names the link type and compiles the filter); the records are
 * walked here: 16-byte header (seconds, micro- or nanoseconds, captured and
 * wire length) in the file's byte order, then the packet. Anything the
 * mapping cannot serve (pcapng, pipes, mmap failure) stays with libpcap. */
static uint32_t rd32(const uint8_t *p, bool swapped)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

static void map_file(struct pcap_ctx *ctx, int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 24)
        return;
    uint8_t hdr[4];
    if (pread(fd, hdr, 4, 0) != 4)
        return;
    uint32_t magic;
    memcpy(&magic, hdr, 4);
    switch (magic) {
    case 0xa1b2c3d4: ctx->swapped = false; ctx->map_nano = false; break;
    case 0xd4c3b2a1: ctx->swapped = true; ctx->map_nano = false; break;
    case 0xa1b23c4d: ctx->swapped = false; ctx->map_nano = true; break;
    case 0x4d3cb2a1: ctx->swapped = true; ctx->map_nano = true; break;
    default: return;   /* pcapng or unknown: libpcap reads it */
    }
    ctx->map_fd = fd;   /* owned by libpcap's FILE: open until pcap_close() */
    ctx->map_len = (size_t)st.st_size;
}

/* The file is mapped in windows of MAP_WINDOW bytes (populated at once),
 * not whole: a whole mapping would count the entire file in the agent's
 * resident set. Returns the bytes at file offset off, at least need of them
 * mapped, or NULL (mmap failed). */
#define MAP_WINDOW (8u * 1024 * 1024)

static const uint8_t *map_at(struct pcap_ctx *ctx, size_t off, size_t need)
{
    if (ctx->win && off >= ctx->win_off && off + need <= ctx->win_off + ctx->win_len)
        return ctx->win + (off - ctx->win_off);
    if (ctx->win)
        munmap((void *)ctx->win, ctx->win_len);
    ctx->win = NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t start = off / page * page;
    size_t len = off + need - start > MAP_WINDOW ? off + need - start : MAP_WINDOW;
    if (len > ctx->map_len - start)
        len = ctx->map_len - start;
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, ctx->map_fd, (off_t)start);
    if (m == MAP_FAILED)
        return NULL;
    ctx->win = m;
    ctx->win_off = start;
    ctx->win_len = len;
    return ctx->win + (off - start);
}

static int mapped_run(struct agent_source *src, struct pcap_ctx *ctx, char *err, size_t errlen)
{
    size_t off = 24;   /* file header */
    while (!ctx->stop && off < ctx->map_len) {
        if (ctx->map_len - off < 16)
            return sm_errf(err, errlen, SM_EIO, "%s: truncated dump file; tried to read 16 header bytes, "
                           "only got %zu", src->name, ctx->map_len - off);
        const uint8_t *r = map_at(ctx, off, 16);
        if (!r)
            return sm_errf(err, errlen, SM_EIO, "%s: mmap: %s", src->name, strerror(errno));
        struct pcap_pkthdr hdr;
        hdr.ts.tv_sec = (time_t)rd32(r, ctx->swapped);
        uint32_t frac = rd32(r + 4, ctx->swapped);
        hdr.caplen = rd32(r + 8, ctx->swapped);
        hdr.len = rd32(r + 12, ctx->swapped);
        /* on_packet() expects nanoseconds (the file was opened with nanosecond precision) */
        hdr.ts.tv_usec = (suseconds_t)(ctx->map_nano ? frac : frac * 1000ull);
        if (hdr.caplen > 0x10000000u)
            return sm_errf(err, errlen, SM_EIO, "%s: invalid packet capture length %u", src->name,
                           hdr.caplen);
        if (ctx->map_len - off - 16 < hdr.caplen)
            return sm_errf(err, errlen, SM_EIO, "%s: truncated dump file; tried to read %u captured bytes, "
                           "only got %zu", src->name, hdr.caplen, ctx->map_len - off - 16);
        if (!(r = map_at(ctx, off, 16 + (size_t)hdr.caplen)))
            return sm_errf(err, errlen, SM_EIO, "%s: mmap: %s", src->name, strerror(errno));
        const u_char *data = r + 16;
        off += 16 + hdr.caplen;
        if (ctx->have_prog && !pcap_offline_filter(&ctx->prog, &hdr, data))
            continue;
        on_packet((u_char *)ctx, &hdr, data);
    }
    return SM_OK;
}

static int file_run(struct agent_source *src, const struct agent_source_handler *h, char *err,
                    size_t errlen)
{
    struct pcap_ctx *ctx = src->ctx;
    ctx->h = h;
    if (ctx->map_fd >= 0)
        return mapped_run(src, ctx, err, errlen);
    while (!ctx->stop) {
        struct pcap_pkthdr *hdr;
        const u_char *bytes;
        int rc = pcap_next_ex(ctx->p, &hdr, &bytes);
        if (rc == 1) {
            on_packet((u_char *)ctx, hdr, bytes);
            continue;
        }
        if (rc == PCAP_ERROR_BREAK)          /* end of file */
            break;
        if (rc == 0)
            continue;
        return sm_errf(err, errlen, SM_EIO, "%s: %s", src->name, pcap_geterr(ctx->p));
    }
    return SM_OK;
}

const struct agent_source_ops agent_source_pcap_file = {
    .name = "pcap-file",
    .caps = 0,
    .live = false,
    .open = file_open,
    .run = file_run,
    .stop = pcap_stop,
    .stats = pcap_src_stats,
    .close = pcap_src_close,
};
