/* Capture driver and source registry; see capture.h. */
#include "source/capture.h"

#include "source/decode.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

static const struct agent_source_ops *const sources[] = {
    &agent_source_pcap_live,
    &agent_source_pcap_file,
#ifdef SM_WITH_EBPF
    &agent_source_ebpf_tc,
    &agent_source_ebpf_socket,
#endif
    NULL,
};

const struct agent_source_ops *const *agent_source_list(void) { return sources; }

const struct agent_source_ops *agent_source_find(const char *name)
{
    for (size_t i = 0; sources[i]; i++)
        if (name && !strcmp(sources[i]->name, name))
            return sources[i];
    return NULL;
}

static int put(char *out, size_t outlen, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (n >= outlen - *pos)
        return SM_EFULL;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return SM_OK;
}

int agent_source_build_filter(const uint16_t *ports, size_t nports, const char *const *hosts,
                              size_t nhosts, char *out, size_t outlen)
{
    size_t pos = 0;
    char num[16];
    if (!out || outlen == 0)
        return SM_EFULL;
    out[0] = 0;
    if (put(out, outlen, &pos, "tcp"))
        return SM_EFULL;
    for (size_t i = 0; i < nports; i++) {
        snprintf(num, sizeof(num), "%u", (unsigned)ports[i]);
        if (put(out, outlen, &pos, i ? " or port " : " and (port ") || put(out, outlen, &pos, num))
            return SM_EFULL;
    }
    if (nports && put(out, outlen, &pos, ")"))
        return SM_EFULL;
    for (size_t i = 0; i < nhosts; i++)
        if (put(out, outlen, &pos, i ? " or host " : " and (host ") || put(out, outlen, &pos, hosts[i]))
            return SM_EFULL;
    if (nhosts && put(out, outlen, &pos, ")"))
        return SM_EFULL;
    return SM_OK;
}

/* ---- driver --------------------------------------------------------------- */

struct agent_capture {
    struct agent_source src;
    bool src_open;
    struct agent_flow_table *ft;
    volatile sig_atomic_t stop;
    pthread_mutex_t lock;           /* guards pub */
    struct agent_capture_stats pub; /* snapshot for other threads */
    uint64_t last_pub_ns;
    uint64_t pkts_since_pub;
    uint64_t warned_drops, warned_lost;   /* loss already reported in a log line */
    struct sm_ratelimit loss_rl;
    struct agent_stream_cb cb;      /* for engines delivering streams (ebpf-socket) */
    char *hosts[AGENT_CAPTURE_MAX_HOSTS];     /* --host terms, for a filter rebuilt with new ports */
    size_t nhosts;
    bool custom_filter;                       /* --bpf-filter given: ports cannot be changed */
    uint16_t new_ports[AGENT_FLOW_MAX_PORTS];   /* agent_capture_set_ports(), under lock */
    size_t new_nports;
    bool ports_pending;
};

void agent_capture_cfg_init(struct agent_capture_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->engine = NULL;             /* auto: pcap-file when a file is given */
    cfg->snaplen = AGENT_CAPTURE_SNAPLEN_DEFAULT;
    cfg->buffer_size = AGENT_CAPTURE_BUFFER_DEFAULT;
    cfg->idle_timeout_ns = AGENT_FLOW_IDLE_TIMEOUT_DEFAULT_NS;
    cfg->hole_timeout_ns = AGENT_FLOW_HOLE_TIMEOUT_DEFAULT_NS;
    cfg->max_flows = AGENT_FLOW_MAX_FLOWS_DEFAULT;
    cfg->max_ooo_bytes = AGENT_FLOW_MAX_OOO_DEFAULT;
    cfg->mem_cap = AGENT_FLOW_MEM_CAP_DEFAULT;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void collect(struct agent_capture *cap, struct agent_capture_stats *out)
{
    struct agent_src_stats ss;
    memset(out, 0, sizeof(*out));
    if (cap->src_open) {
        cap->src.ops->stats(&cap->src, &ss);
        out->packets = ss.packets;
        out->bytes = ss.bytes;
        out->kernel_drops = ss.kernel_drops;
        out->iface_drops = ss.iface_drops;
    }
    if (cap->ft)
        agent_flow_stats(cap->ft, &out->flow);
}

static void publish(struct agent_capture *cap)
{
    struct agent_capture_stats s;
    collect(cap, &s);
    pthread_mutex_lock(&cap->lock);
    cap->pub = s;
    pthread_mutex_unlock(&cap->lock);
    cap->last_pub_ns = mono_ns();
    cap->pkts_since_pub = 0;
}

static void on_pkt(void *arg, const struct agent_pkt *pkt)
{
    struct agent_capture *cap = arg;
    agent_flow_feed(cap->ft, pkt);
    /* the clock is read once per 4096 packets, not on every packet after
     * the 4096th (that was 3 % of the offline bench: kvm-clock) */
    if (++cap->pkts_since_pub >= 4096) {
        cap->pkts_since_pub = 0;
        if (mono_ns() - cap->last_pub_ns >= 100000000ull)
            publish(cap);
    }
    if (cap->stop)
        cap->src.ops->stop(&cap->src);
}

/* At most one line per 10 s about new loss; the counters carry the rest. */
static void warn_loss(struct agent_capture *cap)
{
    uint64_t drops = cap->pub.kernel_drops + cap->pub.iface_drops, lost = cap->pub.flow.bytes_lost;
    uint64_t suppressed;
    if ((drops > cap->warned_drops || lost > cap->warned_lost) &&
        sm_log_ratelimited(&cap->loss_rl, 10000, &suppressed)) {
        sm_log_warn("%s: capture loss: %llu packets dropped by kernel/interface, %llu bytes lost in "
                    "%llu reassembly gaps so far", cap->src.name, (unsigned long long)drops,
                    (unsigned long long)lost, (unsigned long long)cap->pub.flow.gaps);
        cap->warned_drops = drops;
        cap->warned_lost = lost;
    }
}

static void on_tick(void *arg, uint64_t now_ns)
{
    struct agent_capture *cap = arg;
    pthread_mutex_lock(&cap->lock);
    if (cap->ports_pending) {   /* the flow table follows a run-time port change */
        agent_flow_set_ports(cap->ft, cap->new_ports, cap->new_nports);
        cap->ports_pending = false;
    }
    pthread_mutex_unlock(&cap->lock);
    agent_flow_expire(cap->ft, now_ns);
    publish(cap);
    warn_loss(cap);
}

int agent_capture_open(const struct agent_capture_cfg *cfg, const struct agent_stream_cb *cb,
                       struct agent_capture **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *engine = cfg->engine && *cfg->engine ? cfg->engine
                         : (cfg->pcap_path || cfg->pcap_fp) ? "pcap-file" : "pcap";
    const struct agent_source_ops *ops = agent_source_find(engine);
    int rc;
    if (!ops) {
        if (cfg->pcap_fp)
            fclose(cfg->pcap_fp);
        return sm_errf(err, errlen, SM_ECONFIG, "capture: unknown engine \"%s\" (known: pcap, pcap-file"
#ifdef SM_WITH_EBPF
                       ", ebpf-tc, ebpf-socket"
#endif
                       ")",
                       engine);
    }
    if (cfg->nports > AGENT_FLOW_MAX_PORTS || cfg->nhosts > AGENT_CAPTURE_MAX_HOSTS) {
        if (cfg->pcap_fp)
            fclose(cfg->pcap_fp);
        return sm_errf(err, errlen, SM_ECONFIG, "capture: at most %d ports and %d hosts",
                       AGENT_FLOW_MAX_PORTS, AGENT_CAPTURE_MAX_HOSTS);
    }
    if (!strncmp(ops->name, "ebpf-", 5) && (cfg->nhosts || cfg->bpf_filter)) {   /* docs/ebpf.md */
        if (cfg->pcap_fp)
            fclose(cfg->pcap_fp);
        return sm_errf(err, errlen, SM_ECONFIG, "capture: engine %s filters by port only (no --host or "
                       "--bpf-filter)", ops->name);
    }
    if ((rc = agent_capture_check_procs(ops->name, cfg->pid, cfg->cgroup, err, errlen)) != SM_OK) {
        if (cfg->pcap_fp)
            fclose(cfg->pcap_fp);
        return rc;
    }
    struct agent_capture *cap = sm_calloc(1, sizeof(*cap));
    if (!cap) {
        if (cfg->pcap_fp)
            fclose(cfg->pcap_fp);
        return sm_errf(err, errlen, SM_ENOMEM, "capture: out of memory");
    }
    pthread_mutex_init(&cap->lock, NULL);
    cap->src.ops = ops;
    cap->custom_filter = cfg->bpf_filter != NULL;
    for (size_t i = 0; i < cfg->nhosts; i++) {
        if (!(cap->hosts[i] = sm_strdup(cfg->hosts[i]))) {
            if (cfg->pcap_fp)
                fclose(cfg->pcap_fp);
            rc = sm_errf(err, errlen, SM_ENOMEM, "capture: out of memory");
            goto fail;
        }
        cap->nhosts = i + 1;
    }

    char filter[4096];
    const char *fexpr = cfg->bpf_filter;
    if (!fexpr) {
        if (agent_source_build_filter(cfg->ports, cfg->nports, cfg->hosts, cfg->nhosts, filter,
                                      sizeof(filter)) != SM_OK) {
            if (cfg->pcap_fp)
                fclose(cfg->pcap_fp);
            rc = sm_errf(err, errlen, SM_ECONFIG, "capture: filter too long");
            goto fail;
        }
        fexpr = filter;
    }
    struct agent_source_cfg scfg = {
        .iface = cfg->iface, .path = cfg->pcap_path, .fp = cfg->pcap_fp, .filter = fexpr,
        .snaplen = cfg->snaplen, .buffer_size = cfg->buffer_size,
        .ports = cfg->ports, .nports = cfg->nports, .idle_timeout_ns = cfg->idle_timeout_ns,
        .tc_attach = cfg->tc_attach, .pid = cfg->pid, .cgroup = cfg->cgroup,
    };
    cap->cb = *cb;
    if ((rc = ops->open(&cap->src, &scfg, err, errlen)) != SM_OK)
        goto fail;
    cap->src_open = true;
    if (!agent_decode_link_supported(cap->src.linktype)) {
        rc = sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: link type %d not supported (Ethernet, Linux "
                     "cooked SLL/SLL2, loopback, raw IP are)", cap->src.name, cap->src.linktype);
        goto fail;
    }

    struct agent_flow_cfg fcfg = {
        .ports = cfg->ports, .nports = cfg->nports,
        .idle_timeout_ns = cfg->idle_timeout_ns, .hole_timeout_ns = cfg->hole_timeout_ns,
        .max_flows = cfg->max_flows, .max_ooo_bytes = cfg->max_ooo_bytes, .mem_cap = cfg->mem_cap,
    };
    cap->ft = agent_flow_table_new(&fcfg, cb, err, errlen);
    if (!cap->ft) {
        rc = SM_ENOMEM;
        goto fail;
    }
    publish(cap);
    *out = cap;
    return SM_OK;
fail:
    if (cap->src_open)
        ops->close(&cap->src);
    for (size_t i = 0; i < cap->nhosts; i++)
        sm_free(cap->hosts[i]);
    pthread_mutex_destroy(&cap->lock);
    sm_free(cap);
    return rc;
}

unsigned agent_capture_caps(const struct agent_capture *cap) { return cap->src.ops->caps; }

const char *agent_capture_name(const struct agent_capture *cap) { return cap->src.name; }

int agent_capture_run(struct agent_capture *cap, char *err, size_t errlen)
{
    struct agent_source_handler h = { .pkt = on_pkt, .tick = on_tick, .arg = cap, .stream = &cap->cb };
    int rc = SM_OK;
    if (!cap->stop)
        rc = cap->src.ops->run(&cap->src, &h, err, errlen);
    if (cap->src.ops->live)
        agent_flow_expire(cap->ft, 0);
    publish(cap);
    return rc;
}

void agent_capture_stop(struct agent_capture *cap)
{
    cap->stop = 1;
    cap->src.ops->stop(&cap->src);
}

int agent_capture_check_procs(const char *engine, uint32_t pid, const char *cgroup, char *err, size_t errlen)
{
    if ((pid || cgroup) && strcmp(engine, "ebpf-socket"))
        return sm_errf(err, errlen, SM_ECONFIG, "capture: --pid and --cgroup go with --engine ebpf-socket "
                       "(engine %s sees packets, not the processes behind them)", engine);
    return SM_OK;
}

int agent_capture_set_procs(struct agent_capture *cap, uint32_t pid, const char *cgroup, char *err, size_t errlen)
{
    if (cap->src.ops->set_procs)
        return cap->src.ops->set_procs(&cap->src, pid, cgroup, err, errlen);
    return agent_capture_check_procs(cap->src.ops->name, pid, cgroup, err, errlen);
}

int agent_capture_set_ports(struct agent_capture *cap, const uint16_t *ports, size_t nports, char *err,
                            size_t errlen)
{
    if (nports > AGENT_FLOW_MAX_PORTS)
        return sm_errf(err, errlen, SM_ECONFIG, "capture: at most %d ports", AGENT_FLOW_MAX_PORTS);
    int rc;
    if (cap->src.ops->set_ports) {            /* eBPF: the kernel port maps */
        rc = cap->src.ops->set_ports(&cap->src, ports, nports, err, errlen);
    } else if (cap->src.ops->set_filter && !cap->custom_filter) {   /* pcap: a new BPF filter */
        char filter[4096];
        if (agent_source_build_filter(ports, nports, (const char *const *)cap->hosts, cap->nhosts, filter,
                                      sizeof(filter)) != SM_OK)
            return sm_errf(err, errlen, SM_ECONFIG, "capture: filter too long");
        rc = cap->src.ops->set_filter(&cap->src, filter, err, errlen);
    } else {
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: ports cannot change while running%s", cap->src.name,
                       cap->custom_filter ? " (they come from --bpf-filter)" : "");
    }
    if (rc != SM_OK)
        return rc;
    pthread_mutex_lock(&cap->lock);
    if (nports)
        memcpy(cap->new_ports, ports, nports * sizeof(*ports));
    cap->new_nports = nports;
    cap->ports_pending = true;
    pthread_mutex_unlock(&cap->lock);
    return SM_OK;
}

void agent_capture_stats(struct agent_capture *cap, struct agent_capture_stats *out)
{
    pthread_mutex_lock(&cap->lock);
    *out = cap->pub;
    pthread_mutex_unlock(&cap->lock);
}

void agent_capture_close(struct agent_capture *cap)
{
    if (!cap)
        return;
    struct agent_capture_stats last;
    collect(cap, &last);
    agent_flow_table_free(cap->ft, 0);
    cap->ft = NULL;
    sm_log_info("%s: %llu packets, %llu kernel drops, %llu flows, %llu gaps (%llu bytes lost)",
                cap->src.name, (unsigned long long)last.packets, (unsigned long long)last.kernel_drops,
                (unsigned long long)last.flow.flows_created, (unsigned long long)last.flow.gaps,
                (unsigned long long)last.flow.bytes_lost);
    if (cap->src_open)
        cap->src.ops->close(&cap->src);
    for (size_t i = 0; i < cap->nhosts; i++)
        sm_free(cap->hosts[i]);
    pthread_mutex_destroy(&cap->lock);
    sm_free(cap);
}
