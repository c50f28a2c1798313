/* libpcap engines: "pcap" (live) and "pcap-file" (offline file or FILE *). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <pcap/pcap.h>

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

#include "source/decode.h"
#include "source/source.h"

#define TICK_MS 100

struct pcap_ctx {
    pcap_t *p;
    bool nano;                      /* timestamps in ns (else us) */
    volatile sig_atomic_t stop;
    int wake[2];                    /* self-pipe: stop() wakes poll() */
    const struct agent_source_handler *h;
    int linktype;
    struct agent_src_stats st;
    uint32_t last_recv, last_drop, last_ifdrop;   /* 32-bit pcap_stats, widened */
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

static int apply_filter(struct agent_source *src, struct pcap_ctx *ctx, const char *filter,
                        char *err, size_t errlen)
{
    if (!filter || !*filter)
        return SM_OK;
    /* On Ethernet, also match inside one or two VLAN tags. The "vlan"
     * keyword shifts offsets for the rest of the expression, hence the
     * nesting; other link types do not support it. */
    char *wrapped = NULL;
    if (ctx->linktype == DLT_EN10MB) {
        size_t n = 5 * strlen(filter) + 64;
        wrapped = sm_malloc(n);
        if (!wrapped)
            return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", src->name);
        snprintf(wrapped, n, "(%s) or (vlan and ((%s) or (vlan and (%s))))", filter, filter, filter);
    }
    struct bpf_program prog;
    int crc = pcap_compile(ctx->p, &prog, wrapped ? wrapped : filter, 1, PCAP_NETMASK_UNKNOWN);
    sm_free(wrapped);
    if (crc < 0)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: filter \"%s\": %s", src->name, filter,
                       pcap_geterr(ctx->p));
    int rc = pcap_setfilter(ctx->p, &prog);
    pcap_freecode(&prog);
    if (rc < 0)
        return sm_errf(err, errlen, SM_EIO, "%s: setting filter: %s", src->name, pcap_geterr(ctx->p));
    return SM_OK;
}

static struct pcap_ctx *ctx_new(void)
{
    struct pcap_ctx *ctx = sm_calloc(1, sizeof(*ctx));
    if (ctx)
        ctx->wake[0] = ctx->wake[1] = -1;
    return ctx;
}

static void ctx_free(struct pcap_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->p)
        pcap_close(ctx->p);
    if (ctx->wake[0] >= 0)
        close(ctx->wake[0]);
    if (ctx->wake[1] >= 0)
        close(ctx->wake[1]);
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
    pcap_set_immediate_mode(ctx->p, 1);
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
    live_poll_stats(ctx);
    return SM_OK;
}

static void pcap_stop(struct agent_source *src)
{
    struct pcap_ctx *ctx = src->ctx;
    if (!ctx)
        return;
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
};

/* ---- file ----------------------------------------------------------------- */

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
    if (cfg->fp)
        ctx->p = pcap_fopen_offline_with_tstamp_precision(cfg->fp, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    else
        ctx->p = pcap_open_offline_with_tstamp_precision(cfg->path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    if (!ctx->p) {
        if (cfg->fp)
            fclose(cfg->fp);          /* fp is consumed in every case */
        ctx_free(ctx);
        return sm_errf(err, errlen, SM_EIO, "%s: %s", src->name, ebuf);
    }
    ctx->nano = true;
    ctx->linktype = pcap_datalink(ctx->p);
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

static int file_run(struct agent_source *src, const struct agent_source_handler *h, char *err,
                    size_t errlen)
{
    struct pcap_ctx *ctx = src->ctx;
    ctx->h = h;
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
