/* searchmig-agent: passive HTTP capture on a source node, written as
 * TrafficStream records (docs/agent.md). A thin layer over agent_core:
 * options -> sink -> record pipeline -> capture engine, until EOF or
 * SIGTERM/SIGINT, then everything open is flushed and closed. SIGHUP reads the
 * server ports again and applies them without a restart. */
#include "ops/keys.h"
#include "ops/notify.h"
#include "ops/privs.h"
#include "record/pipeline.h"
#include "sink/sink.h"
#include "source/capture.h"
#include "tls/tls.h"

#include <sm/err.h>
#include <sm/kafka.h>
#include <sm/log.h>
#include <sm/metrics.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct agent_config {
    char *iface;
    struct sm_strlist ports;
    struct sm_strlist hosts;
    char *pcap;
    char *engine;
    char *tc_attach;
    int64_t pid;
    char *cgroup;
    char *bpf_filter;
    char *output;
    uint64_t output_max_size;
    bool output_gzip;
    struct sm_kafka_opts kafka;
    char *spool_dir;
    uint64_t spool_max;
    char *node_id;
    uint64_t max_record_size;
    uint64_t idle_flush_ms;
    uint64_t max_buffered;
    struct sm_strlist capture_paths, suppress_paths, capture_methods, suppress_methods;
    struct sm_strlist redact_headers;
    double sample_rate;
    uint64_t max_header_size;
    uint64_t max_http_buffered;
    uint64_t snaplen;
    uint64_t buffer_size;
    uint64_t idle_timeout_ms;
    uint64_t hole_timeout_ms;
    int64_t max_flows;
    uint64_t mem_cap;
    char *log_level;
    bool log_json;
    char *debug;
    uint64_t stats_interval_ms;
    char *metrics_listen;
    char *user;
    bool keep_privileges;
    bool cleanup;                 /* --cleanup (eBPF, docs/ebpf.md) */
    char *tls_keylog;             /* --tls-keylog (docs/tls.md) */
    struct sm_strlist tls_ports;
    uint64_t tls_key_wait_ms;
};

#define OFF(f) offsetof(struct agent_config, f)

static const struct sm_opt agent_opts[] = {
    /* capture */
    { "interface", SM_OPT_STR, OFF(iface), NULL, "capture live on this interface (libpcap)", NULL, 0, "IF" },
    { "port", SM_OPT_LIST, OFF(ports), NULL, "server port(s) to capture, repeatable (default: 9200)", NULL, 0, "N" },
    { "host", SM_OPT_LIST, OFF(hosts), NULL, "only traffic of these server addresses, repeatable", NULL, 0, "ADDR" },
    { "pcap", SM_OPT_STR, OFF(pcap), NULL, "read a capture file instead of an interface", NULL, 0, "FILE" },
    { "engine", SM_OPT_STR, OFF(engine), NULL,
      "capture engine: pcap | pcap-file | ebpf-tc | ebpf-socket (default: pcap-file with --pcap, else pcap)",
      NULL, 0, "NAME" },
    { "tc-attach", SM_OPT_STR, OFF(tc_attach), "auto",
      "ebpf-tc: auto (tcx links where the kernel has them, else clsact filters) | tcx | tc", NULL, 0, "MODE" },
    { "pid", SM_OPT_INT, OFF(pid), "0",
      "ebpf-socket: capture only this process's server sockets (0: any)", NULL, 0, "PID" },
    { "cgroup", SM_OPT_STR, OFF(cgroup), NULL,
      "ebpf-socket: capture only processes in this cgroup v2 directory or below it "
      "(e.g. /sys/fs/cgroup/system.slice/elasticsearch.service)", NULL, 0, "DIR" },
    { "bpf-filter", SM_OPT_STR, OFF(bpf_filter), NULL,
      "BPF filter replacing the one built from --port/--host", NULL, 0, "EXPR" },
    { "snaplen", SM_OPT_SIZE, OFF(snaplen), "262144", "bytes captured per packet", NULL, 0, "BYTES" },
    { "buffer-size", SM_OPT_SIZE, OFF(buffer_size), "64MiB", "kernel capture buffer (live)", NULL, 0, NULL },
    { "idle-timeout", SM_OPT_DURATION, OFF(idle_timeout_ms), "60s",
      "close connections idle this long", NULL, 0, NULL },
    { "hole-timeout", SM_OPT_DURATION, OFF(hole_timeout_ms), "5s",
      "give up waiting for missing TCP segments after this long (reported as a gap)", NULL, 0, NULL },
    { "max-flows", SM_OPT_INT, OFF(max_flows), "65536", "connections tracked at once", NULL, 0, "N" },
    { "mem-cap", SM_OPT_SIZE, OFF(mem_cap), "256MiB", "memory for flows and reassembly", NULL, 0, NULL },
    /* records */
    { "node-id", SM_OPT_STR, OFF(node_id), NULL, "nodeId in records (default: host name)", NULL, 0, "NAME" },
    { "max-record-size", SM_OPT_SIZE, OFF(max_record_size), "1MiB",
      "largest encoded TrafficStream record", NULL, 0, NULL },
    { "idle-flush", SM_OPT_DURATION, OFF(idle_flush_ms), "1s",
      "flush a connection's open record after this long without traffic", NULL, 0, NULL },
    { "max-buffered", SM_OPT_SIZE, OFF(max_buffered), "256MiB",
      "bytes held in open records; past it the oldest are flushed early", NULL, 0, NULL },
    { "max-header-size", SM_OPT_SIZE, OFF(max_header_size), "64KiB",
      "largest HTTP head (start line + headers) framed", NULL, 0, NULL },
    { "max-http-buffered", SM_OPT_SIZE, OFF(max_http_buffered), "64MiB",
      "bytes of partial HTTP heads buffered for all connections; past it heads are reported broken",
      NULL, 0, NULL },
    /* filters and privacy */
    { "capture-path", SM_OPT_LIST, OFF(capture_paths), NULL,
      "record only requests whose path matches this regex, repeatable", NULL, 0, "REGEX" },
    { "suppress-path", SM_OPT_LIST, OFF(suppress_paths), NULL,
      "never record requests whose path matches this regex (and their responses), repeatable", NULL, 0, "REGEX" },
    { "capture-method", SM_OPT_LIST, OFF(capture_methods), NULL,
      "record only these methods, repeatable", NULL, 0, "METHOD" },
    { "suppress-method", SM_OPT_LIST, OFF(suppress_methods), NULL,
      "never record these methods, repeatable", NULL, 0, "METHOD" },
    { "redact-header", SM_OPT_LIST, OFF(redact_headers), NULL,
      "replace this header's value with REDACTED, repeatable", NULL, 0, "NAME" },
    { "sample-rate", SM_OPT_DOUBLE, OFF(sample_rate), "1",
      "fraction of connections recorded (0 < x <= 1)", NULL, 0, "X" },
    /* output */
    { "output", SM_OPT_STR, OFF(output), NULL,
      "write records to FILE, or to a new file in DIR (one base64 TrafficStream per line)", NULL, 0, "FILE|DIR" },
    { "output-max-size", SM_OPT_SIZE, OFF(output_max_size), "0",
      "rotate output files at this size (0: one file)", NULL, 0, NULL },
    { "output-gzip", SM_OPT_BOOL, OFF(output_gzip), "false", "gzip output files", NULL, 0, NULL },
    SM_KAFKA_OPTS(struct agent_config, kafka),
    { "spool-dir", SM_OPT_STR, OFF(spool_dir), "/var/lib/searchmig/spool",
      "Kafka output: records wait here on disk while Kafka is slow or down", NULL, 0, "DIR" },
    { "spool-max", SM_OPT_SIZE, OFF(spool_max), "1GiB",
      "Kafka output: spool size cap; past it records are dropped (counted)", NULL, 0, NULL },
    /* operations */
    { "log-level", SM_OPT_STR, OFF(log_level), "info", "error | warn | info | debug", NULL, 0, "LEVEL" },
    { "log-json", SM_OPT_BOOL, OFF(log_json), "false", "log JSON lines", NULL, 0, NULL },
    { "debug", SM_OPT_STR, OFF(debug), NULL, "debug contexts: flow,http,record,sink,pcap or all", NULL, 0, "LIST" },
    { "stats-interval", SM_OPT_DURATION, OFF(stats_interval_ms), "60s",
      "log counters this often (0: only at exit)", NULL, 0, NULL },
    { "metrics-listen", SM_OPT_STR, OFF(metrics_listen), NULL,
      "serve Prometheus metrics (/metrics) and /health on HOST:PORT, e.g. 127.0.0.1:9464", NULL, 0,
      "HOST:PORT" },
    { "user", SM_OPT_STR, OFF(user), NULL,
      "run as this user once the capture is open (output and spool must be writable by it)", NULL, 0,
      "NAME" },
    { "keep-privileges", SM_OPT_BOOL, OFF(keep_privileges), "false",
      "do not drop capabilities after opening the capture (default: keep only what the engine needs)",
      NULL, 0, NULL },
    { "cleanup", SM_OPT_BOOL, OFF(cleanup), "false",
      "remove the TC filters a killed ebpf-tc agent left on --interface (default: all interfaces) and exit",
      NULL, 0, NULL },
    { "tls-keylog", SM_OPT_STR, OFF(tls_keylog), NULL,
      "decrypt TLS with the session secrets in this NSS key log file (docs/tls.md)", NULL, 0, "FILE" },
    { "tls-port", SM_OPT_LIST, OFF(tls_ports), NULL,
      "server port(s) carrying TLS (default: detect TLS on every port)", NULL, 0, "N" },
    { "tls-key-wait", SM_OPT_DURATION, OFF(tls_key_wait_ms), "5s",
      "how long a TLS connection waits for its secrets before it is reported undecryptable", NULL, 0, NULL },
    SM_OPT_END
};

static struct agent_capture *volatile g_cap;
static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_reload;   /* SIGHUP: read the server ports again */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    struct agent_capture *cap = g_cap;
    if (cap)
        agent_capture_stop(cap);
}

static void on_hup(int sig)
{
    (void)sig;
    g_reload = 1;
}

struct ticker {
    const struct sm_cli *cli;     /* for SIGHUP: parse the command line, environment and config again */
    int argc;
    char **argv;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    bool live;
    uint64_t stats_ms;
    struct agent_pipeline *pl;
    struct agent_capture *cap;
};

/* systemd STATUS= line: what is captured and what is lost. */
static void notify_status(struct agent_capture *cap, struct agent_pipeline *pl)
{
    struct agent_capture_stats cs;
    struct agent_pipeline_stats ps;
    agent_capture_stats(cap, &cs);
    agent_pipeline_stats(pl, &ps);
    char st[256];
    snprintf(st, sizeof(st), "STATUS=capturing %s: %" PRIu64 " requests, %" PRIu64 " drops, %" PRIu64
             " gaps, %" PRIu64 " records dropped", agent_capture_name(cap), ps.requests,
             cs.kernel_drops + cs.iface_drops, ps.gaps, ps.records_dropped);
    agent_notify(st);
}

static void log_stats(const char *what, struct agent_pipeline *pl, const struct agent_capture_stats *cs)
{
    struct agent_pipeline_stats ps;
    agent_pipeline_stats(pl, &ps);
    sm_log_info("%s: packets=%" PRIu64 " drops=%" PRIu64 " connections=%" PRIu64 " open=%" PRIu64
                " requests=%" PRIu64 " responses=%" PRIu64 " records=%" PRIu64 " record_bytes=%" PRIu64
                " gaps=%" PRIu64 " records_dropped=%" PRIu64,
                what, cs ? cs->packets : 0, cs ? cs->kernel_drops + cs->iface_drops : 0, ps.connections,
                ps.open, ps.requests, ps.responses, ps.rec.records, ps.rec.record_bytes, ps.gaps,
                ps.records_dropped);
}

static int build_capture_cfg(const struct agent_config *cfg, struct agent_capture_cfg *cc, char *err,
                             size_t errlen);

/* SIGHUP: the server ports and the ebpf-socket process filter (--pid,
 * --cgroup) are parsed again from the command line, the environment and the
 * config file (as at start) and given to the running capture
 * (agent_capture_set_ports: eBPF port maps, or a new pcap filter;
 * agent_capture_set_procs). Other settings need a restart. */
static void reload_ports(struct ticker *t)
{
    struct agent_config nc;
    memset(&nc, 0, sizeof(nc));
    char err[512];
    struct agent_capture_cfg cc;
    int rc = sm_opts_parse(t->cli, &nc, t->argc, t->argv, NULL, err, sizeof(err));
    if (rc == SM_OK)
        rc = build_capture_cfg(&nc, &cc, err, sizeof(err));
    if (rc == SM_OK)
        rc = agent_capture_set_ports(t->cap, cc.ports, cc.nports, err, sizeof(err));
    if (rc != SM_OK) {
        sm_log_warn("SIGHUP: server ports not changed: %s", rc == SM_EEOF ? "configuration not parsed" : err);
    } else {
        char list[AGENT_FLOW_MAX_PORTS * 6 + 1] = "";
        size_t o = 0;
        for (size_t i = 0; i < cc.nports && o + 7 < sizeof(list); i++)
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%u", i ? "," : "", (unsigned)cc.ports[i]);
        sm_log_info("SIGHUP: now capturing port(s) %s", list);
        if (agent_capture_set_procs(t->cap, cc.pid, cc.cgroup, err, sizeof(err)) != SM_OK)
            sm_log_warn("SIGHUP: process filter not changed: %s", err);
    }
    sm_opts_free(agent_opts, &nc);
}

static void *ticker_main(void *arg)
{
    struct ticker *t = arg;
    uint64_t next_stats = sm_now_ms() + t->stats_ms;
    uint64_t next_status = sm_now_ms() + 5000;
    pthread_mutex_lock(&t->lock);
    while (!t->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
        if (t->done)
            break;
        pthread_mutex_unlock(&t->lock);
        if (t->live) {   /* file engines flush on packet time in the data path */
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            agent_pipeline_tick(t->pl, (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec);
        }
        agent_pipeline_poll(t->pl);
        if (g_reload) {
            g_reload = 0;
            reload_ports(t);
        }
        if (t->stats_ms && sm_now_ms() >= next_stats) {
            struct agent_capture_stats cs;
            agent_capture_stats(t->cap, &cs);
            log_stats("stats", t->pl, &cs);
            next_stats = sm_now_ms() + t->stats_ms;
        }
        if (sm_now_ms() >= next_status) {
            notify_status(t->cap, t->pl);
            next_status = sm_now_ms() + 5000;
        }
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

struct metrics_ctx {
    struct agent_pipeline *pl;
    struct agent_capture *cap;
    uint64_t spool_max;                      /* Kafka output: --spool-max; 0 otherwise */
    struct sm_recent_growth lost, drops;     /* /ready: the metrics thread's own */
};

#define READY_WINDOW_NS (60ull * 1000000000u)

static void render_metrics(void *arg, struct sm_buf *out)
{
    struct metrics_ctx *mc = arg;
    struct agent_capture_stats cs;
    struct agent_pipeline_stats ps;
    agent_capture_stats(mc->cap, &cs);
    agent_pipeline_stats(mc->pl, &ps);
#define C(name, help, v) sm_metrics_put(out, "searchmig_agent_" name, "counter", help, v)
#define G(name, help, v) sm_metrics_put(out, "searchmig_agent_" name, "gauge", help, v)
    C("packets_total", "Packets captured.", cs.packets);
    C("packet_bytes_total", "Bytes of captured packets (wire length).", cs.bytes);
    C("kernel_drops_total", "Packets dropped by the kernel capture buffer.", cs.kernel_drops);
    C("interface_drops_total", "Packets dropped by the interface or driver.", cs.iface_drops);
    C("reassembly_gaps_total", "Gaps in reassembled TCP streams.", cs.flow.gaps);
    C("reassembly_bytes_lost_total", "Bytes lost in reassembly gaps.", cs.flow.bytes_lost);
    C("flows_evicted_total", "Connections let go of because the flow table or its memory was full.",
      cs.flow.flows_evicted);
    C("flows_replaced_total", "Connections ended by a new connection on their tuple (close not seen).",
      cs.flow.flows_replaced);
    C("rst_ignored_total", "RSTs behind their sender's sequence number (not acted on).", cs.flow.rst_ignored);
    G("flows_open", "Connections tracked by the flow table.", cs.flow.flows_open);
    G("flow_memory_bytes", "Memory of the flow table and queued segments.", cs.flow.mem_in_use);
    C("connections_total", "Connections recorded.", ps.connections);
    C("connections_sampled_out_total", "Connections not recorded by sampling.", ps.sampled_out);
    G("connections_open", "Connections being recorded.", ps.open);
    C("requests_total", "Requests recorded (endOfMessage written).", ps.requests);
    C("responses_total", "Responses recorded.", ps.responses);
    C("requests_suppressed_total", "Requests suppressed by filters.", ps.suppressed);
    C("messages_broken_total", "Messages reported broken (gaps, parse errors).", ps.broken);
    C("upgrades_total", "Connections that switched protocols.", ps.upgrades);
    C("recorded_c2s_bytes_total", "Client-to-server bytes recorded (read observations).", ps.bytes_c2s);
    C("recorded_s2c_bytes_total", "Server-to-client bytes recorded (write observations).", ps.bytes_s2c);
    C("records_total", "TrafficStream records produced.", ps.rec.records);
    C("record_bytes_total", "Encoded bytes of the records produced.", ps.rec.record_bytes);
    C("records_dropped_total", "Records the sink refused (lost).", ps.records_dropped);
    G("record_buffer_bytes", "Bytes held in open records.", ps.rec.held_bytes);
    G("http_buffer_bytes", "Bytes of partial HTTP heads and resync buffers.", ps.http_buffered);
    C("http_buffer_refusals_total", "Buffering refused by --max-http-buffered.", ps.http.budget_refusals);
    C("sink_records_total", "Records accepted by the sink.", ps.sink.written);
    C("sink_delivered_total", "Records the sink made durable.", ps.sink.delivered);
    C("sink_errors_total", "Sink I/O or client errors.", ps.sink.errors);
    C("sink_failed_total", "Records the sink accepted and then lost (write errors such as a full disk).",
      ps.sink.failed);
    G("spool_bytes", "Bytes in the on-disk spool.", ps.sink.spool_bytes);
#undef C
#undef G
}

static bool health(void *arg, char *why, size_t whylen)
{
    (void)arg;
    if (g_stop) {
        snprintf(why, whylen, "stopping");
        return false;
    }
    snprintf(why, whylen, "ok");
    return true;
}

/* /ready: healthy, and doing its job: no record lost (refused by a full
 * spool or lost by the sink, e.g. a full disk) and no packet dropped by the
 * kernel or the interface in the last minute, and the Kafka spool below 90 %
 * of --spool-max. /health stays 200 through these: a restart would not help. */
static bool ready(void *arg, char *why, size_t whylen)
{
    struct metrics_ctx *mc = arg;
    if (!health(arg, why, whylen))
        return false;
    struct agent_capture_stats cs;
    struct agent_pipeline_stats ps;
    agent_capture_stats(mc->cap, &cs);
    agent_pipeline_stats(mc->pl, &ps);
    uint64_t now = sm_now_ns();
    uint64_t lost = ps.records_dropped + ps.sink.failed, drops = cs.kernel_drops + cs.iface_drops;
    if (sm_recent_growth(&mc->lost, lost, now, READY_WINDOW_NS)) {
        snprintf(why, whylen, "losing records: %" PRIu64 " lost so far (%" PRIu64 " refused, %" PRIu64
                 " failed in the sink), the last within 60 s", lost, ps.records_dropped, ps.sink.failed);
        return false;
    }
    if (mc->spool_max && ps.sink.spool_bytes >= mc->spool_max / 10 * 9) {
        snprintf(why, whylen, "spool %" PRIu64 " of %" PRIu64 " bytes (Kafka not taking records)",
                 ps.sink.spool_bytes, mc->spool_max);
        return false;
    }
    if (sm_recent_growth(&mc->drops, drops, now, READY_WINDOW_NS)) {
        snprintf(why, whylen, "capture dropping packets: %" PRIu64 " dropped so far, the last within 60 s", drops);
        return false;
    }
    snprintf(why, whylen, "ok");
    return true;
}

static int build_capture_cfg(const struct agent_config *cfg, struct agent_capture_cfg *cc, char *err,
                             size_t errlen)
{
    agent_capture_cfg_init(cc);
    if (cfg->pcap && cfg->iface)
        return sm_errf(err, errlen, SM_ECONFIG, "give either --interface or --pcap, not both");
    cc->engine = cfg->engine ? cfg->engine : cfg->pcap ? "pcap-file" : "pcap";
    bool file = !strcmp(cc->engine, "pcap-file");
    if (!file && strcmp(cc->engine, "pcap") && strcmp(cc->engine, "ebpf-tc") && strcmp(cc->engine, "ebpf-socket"))
        return sm_errf(err, errlen, SM_ECONFIG, "unknown --engine '%s' (pcap, pcap-file, ebpf-tc, ebpf-socket)",
                       cc->engine);
    if (file && !cfg->pcap)
        return sm_errf(err, errlen, SM_ECONFIG, "--engine pcap-file needs --pcap FILE");
    if (!file && cfg->pcap)
        return sm_errf(err, errlen, SM_ECONFIG, "--pcap goes with --engine pcap-file, not %s", cc->engine);
    if ((!strcmp(cc->engine, "pcap") || !strcmp(cc->engine, "ebpf-tc")) && !cfg->iface)
        return sm_errf(err, errlen, SM_ECONFIG, "nothing to capture: give --interface IF (engine %s) or --pcap FILE",
                       cc->engine);
    cc->iface = cfg->iface;
    if (agent_tc_attach_mode(cfg->tc_attach) < 0)
        return sm_errf(err, errlen, SM_ECONFIG, "--tc-attach '%s': auto, tcx or tc", cfg->tc_attach);
    cc->tc_attach = cfg->tc_attach;
    if (cfg->pid < 0 || cfg->pid > INT32_MAX)
        return sm_errf(err, errlen, SM_ECONFIG, "--pid %" PRId64 ": not a process id", cfg->pid);
    int rc = agent_capture_check_procs(cc->engine, (uint32_t)cfg->pid, cfg->cgroup, err, errlen);
    if (rc != SM_OK)
        return rc;
    cc->pid = (uint32_t)cfg->pid;
    cc->cgroup = cfg->cgroup;
    cc->pcap_path = cfg->pcap;
    if (cfg->ports.n > AGENT_FLOW_MAX_PORTS)
        return sm_errf(err, errlen, SM_ECONFIG, "too many --port values (at most %d)", AGENT_FLOW_MAX_PORTS);
    if (cfg->ports.n == 0)
        cc->ports[cc->nports++] = 9200;
    for (size_t i = 0; i < cfg->ports.n; i++) {
        uint64_t p;
        if (sm_parse_u64(cfg->ports.v[i], 65535, &p) || p == 0)
            return sm_errf(err, errlen, SM_ECONFIG, "--port '%s': not a TCP port", cfg->ports.v[i]);
        cc->ports[cc->nports++] = (uint16_t)p;
    }
    if (cfg->hosts.n > AGENT_CAPTURE_MAX_HOSTS)
        return sm_errf(err, errlen, SM_ECONFIG, "too many --host values (at most %d)", AGENT_CAPTURE_MAX_HOSTS);
    for (size_t i = 0; i < cfg->hosts.n; i++)
        cc->hosts[cc->nhosts++] = cfg->hosts.v[i];
    cc->bpf_filter = cfg->bpf_filter;
    if (cfg->snaplen < 64 || cfg->snaplen > 262144)
        return sm_errf(err, errlen, SM_ECONFIG, "--snaplen %" PRIu64 ": must be 64..262144", cfg->snaplen);
    cc->snaplen = (uint32_t)cfg->snaplen;
    cc->buffer_size = cfg->buffer_size;
    cc->idle_timeout_ns = cfg->idle_timeout_ms * 1000000ull;
    cc->hole_timeout_ns = cfg->hole_timeout_ms * 1000000ull;
    if (cfg->max_flows <= 0 || cfg->max_flows > UINT32_MAX)
        return sm_errf(err, errlen, SM_ECONFIG, "--max-flows %" PRId64 ": out of range", cfg->max_flows);
    cc->max_flows = (uint32_t)cfg->max_flows;
    cc->mem_cap = cfg->mem_cap;
    return SM_OK;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "keys"))
        return agent_keys_main(argc - 1, argv + 1);
    struct agent_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sm_cli cli = {
        "searchmig-agent", "[OPTIONS]",
        "Passive HTTP/1.1 capture: records the traffic of a search node's REST port(s) as "
        "TrafficStream records (the OpenSearch Migration Assistant's format) in files or Kafka, "
        "without being in the traffic's path.",
        agent_opts, true,
    };
    char err[512];
    int rc = sm_opts_parse(&cli, &cfg, argc, argv, NULL, err, sizeof(err));
    if (rc == SM_EEOF) {   /* --help, --version, --check-config */
        sm_opts_free(agent_opts, &cfg);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "searchmig-agent: %s\n", err);
        sm_opts_free(agent_opts, &cfg);
        return 2;
    }

    int exit_code = 2;
    struct agent_sink *sink = NULL;
    struct agent_pipeline *pl = NULL;
    struct agent_capture *cap = NULL;
    struct agent_tls_filter *tls = NULL;
    struct ticker tk = { 0 };
    bool ticker_started = false;
    struct sm_metrics *metrics = NULL;
    struct metrics_ctx mctx = { 0 };

    struct sm_log_config lc = { SM_LOG_INFO, 0, cfg.log_json, false, "searchmig-agent" };
    if (sm_log_parse_level(cfg.log_level, &lc.level)) {
        fprintf(stderr, "searchmig-agent: --log-level '%s': use error, warn, info or debug\n", cfg.log_level);
        goto out;
    }
    if (cfg.debug && sm_log_parse_debug(cfg.debug, &lc.debug)) {
        fprintf(stderr, "searchmig-agent: --debug '%s': unknown context\n", cfg.debug);
        goto out;
    }
    sm_log_init(&lc);

    if (cfg.cleanup) {   /* eBPF: stale TC filters (docs/ebpf.md) */
        unsigned removed = 0;
        if (agent_ebpf_cleanup(cfg.iface, &removed, err, sizeof(err)) != SM_OK) {
            sm_log_err("%s", err);
            goto out;
        }
        sm_log_info("cleanup: removed %u TC filter(s)", removed);
        exit_code = 0;
        goto out;
    }

    struct agent_capture_cfg cc;
    if (build_capture_cfg(&cfg, &cc, err, sizeof(err))) {
        sm_log_err("%s", err);
        goto out;
    }
    if (!(cfg.sample_rate > 0 && cfg.sample_rate <= 1)) {
        sm_log_err("--sample-rate %g: must be in (0, 1]", cfg.sample_rate);
        goto out;
    }
    if (cfg.max_record_size < AGENT_REC_MAX_RECORD_MIN || cfg.max_record_size > 64u * 1024 * 1024) {
        sm_log_err("--max-record-size %" PRIu64 ": must be 1KiB..64MiB", cfg.max_record_size);
        goto out;
    }
    if (cfg.max_header_size < 1024 || cfg.max_header_size > 16u * 1024 * 1024) {
        sm_log_err("--max-header-size %" PRIu64 ": must be 1KiB..16MiB", cfg.max_header_size);
        goto out;
    }
    if (cfg.output && cfg.kafka.brokers) {
        sm_log_err("give either --output or --kafka-brokers, not both");
        goto out;
    }
    if (!cfg.output && !cfg.kafka.brokers) {
        sm_log_err("no output: give --output FILE|DIR (or --kafka-brokers HOSTS)");
        goto out;
    }

    char host[256] = "";
    const char *node_id = cfg.node_id;
    if (!node_id || !*node_id) {
        if (gethostname(host, sizeof(host) - 1) != 0 || !*host)
            snprintf(host, sizeof(host), "unknown-node");
        node_id = host;
    }

    struct agent_sink_conf sc = {
        .kind = cfg.kafka.brokers ? "kafka" : "file",
        .path = cfg.output, .gzip = cfg.output_gzip, .max_size = cfg.output_max_size, .node_id = node_id,
        .kafka = &cfg.kafka, .spool_dir = cfg.spool_dir, .spool_max = cfg.spool_max,
    };
    if ((rc = agent_sink_open(&sc, &sink, err, sizeof(err)))) {
        sm_log_err("%s", err);
        goto out;
    }

    struct agent_pipeline_conf pc = {
        .rec = { .node_id = node_id, .max_record = cfg.max_record_size,
                 .idle_flush_ns = cfg.idle_flush_ms ? cfg.idle_flush_ms * 1000000ull : UINT64_MAX,
                 .budget = cfg.max_buffered },
        .http = { .max_header = cfg.max_header_size },
        .http_budget = cfg.max_http_buffered,
        .filter = { .capture_paths = &cfg.capture_paths, .suppress_paths = &cfg.suppress_paths,
                    .capture_methods = &cfg.capture_methods, .suppress_methods = &cfg.suppress_methods,
                    .redact_headers = &cfg.redact_headers },
        .sample_rate = cfg.sample_rate,
        .sink = sink,
    };
    if (!(pl = agent_pipeline_new(&pc, err, sizeof(err)))) {
        sm_log_err("%s", err);
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct agent_stream_cb cb = agent_pipeline_stream_cb(pl);
    if (cfg.tls_keylog && *cfg.tls_keylog) {   /* TLS filter between capture and pipeline (docs/tls.md) */
        struct agent_tls_cfg tc;
        agent_tls_cfg_init(&tc);
        tc.keylog_path = cfg.tls_keylog;
        tc.key_wait_ns = cfg.tls_key_wait_ms * 1000000ull;
        for (size_t i = 0; i < cfg.tls_ports.n; i++) {
            uint64_t p;
            if (tc.nports >= AGENT_TLS_MAX_PORTS || sm_parse_u64(cfg.tls_ports.v[i], 65535, &p) || p == 0) {
                sm_log_err("--tls-port '%s': not a TCP port (at most %d)", cfg.tls_ports.v[i], AGENT_TLS_MAX_PORTS);
                goto out;
            }
            tc.ports[tc.nports++] = (uint16_t)p;
        }
        if ((rc = agent_tls_filter_new(&tc, &cb, &tls, err, sizeof(err)))) {
            sm_log_err("%s", err);
            goto out;
        }
        cb = *agent_tls_filter_cb(tls);
    }
    if ((rc = agent_capture_open(&cc, &cb, &cap, err, sizeof(err)))) {
        sm_log_err("%s", err);
        goto out;
    }
    g_cap = cap;
    sm_log_info("%s: capturing, node %s, writing to %s", agent_capture_name(cap), node_id, sink->name);
    agent_notify("READY=1");
    notify_status(cap, pl);

    if (cfg.metrics_listen && *cfg.metrics_listen) {
        mctx.pl = pl;
        mctx.cap = cap;
        mctx.spool_max = cfg.kafka.brokers ? cfg.spool_max : 0;
        if (!(metrics = sm_metrics_start(cfg.metrics_listen, render_metrics, health, ready, &mctx, err,
                                         sizeof(err)))) {
            sm_log_err("%s", err);
            goto out;
        }
        sm_log_info("metrics: http://%s/metrics (port %u)", cfg.metrics_listen, sm_metrics_port(metrics));
    }

    if (!cfg.keep_privileges) {
        if (agent_privs_drop(agent_capture_caps(cap), cfg.user, err, sizeof(err))) {
            sm_log_err("%s", err);
            exit_code = 1;
            goto out;
        }
        sm_log_info("privileges: running as uid %u with capabilities %#llx", (unsigned)getuid(),
                    agent_privs_effective());
    }

    tk.cli = &cli;
    tk.argc = argc;
    tk.argv = argv;
    tk.live = strcmp(cc.engine, "pcap-file") != 0;   /* wall-clock engines */
    tk.stats_ms = cfg.stats_interval_ms;
    tk.pl = pl;
    tk.cap = cap;
    pthread_mutex_init(&tk.lock, NULL);
    pthread_cond_init(&tk.cond, NULL);
    ticker_started = pthread_create(&tk.thread, NULL, ticker_main, &tk) == 0;

    exit_code = 0;
    if (!g_stop && agent_capture_run(cap, err, sizeof(err)) != SM_OK) {
        sm_log_err("%s", err);
        exit_code = 1;
    }
    if (g_stop)
        sm_log_info("signal received: flushing open connections and records");
    agent_notify("STOPPING=1\nSTATUS=flushing open connections and records");

    struct agent_capture_stats cs;
    agent_capture_stats(cap, &cs);
    sm_metrics_stop(metrics);   /* it reads cap's stats too */
    metrics = NULL;
    if (ticker_started) {   /* it reads cap's stats: stop it first */
        pthread_mutex_lock(&tk.lock);
        tk.done = true;
        pthread_cond_signal(&tk.cond);
        pthread_mutex_unlock(&tk.lock);
        pthread_join(tk.thread, NULL);
        ticker_started = false;
    }
    g_cap = NULL;
    agent_capture_close(cap);   /* open connections end here, with close records */
    cap = NULL;
    if (tls) {   /* connections still waiting for TLS secrets end here */
        struct agent_tls_stats ts;
        agent_tls_filter_drain(tls);
        agent_tls_filter_stats(tls, &ts);
        fprintf(stderr,
                "searchmig-agent: tls connections=%" PRIu64 " decrypted=%" PRIu64 " undecryptable=%" PRIu64
                " (no keys %" PRIu64 ", unsupported %" PRIu64 ", auth failures %" PRIu64 ") plaintext_bytes=%" PRIu64
                " gaps=%" PRIu64 " resyncs=%" PRIu64 " resync_failures=%" PRIu64 " records_lost=%" PRIu64
                " resync_trials=%" PRIu64 " early_data=%" PRIu64 " renegotiations=%" PRIu64 "\n",
                ts.conns_tls, ts.conns_decrypted, ts.conns_undecryptable, ts.conns_no_keys, ts.conns_unsupported,
                ts.auth_failures, ts.bytes_plaintext, ts.gaps, ts.resyncs, ts.resync_failures, ts.records_lost,
                ts.resync_trials, ts.conns_early_data, ts.renegotiations);
    }
    agent_pipeline_flush(pl);
    if (agent_sink_flush(sink, sm_now_ms() + 10000) != SM_OK)
        exit_code = 1;

    struct agent_pipeline_stats ps;
    agent_pipeline_stats(pl, &ps);
    fprintf(stderr,
            "searchmig-agent: packets=%" PRIu64 " drops=%" PRIu64 " (kernel %" PRIu64 ", interface %" PRIu64
            ") connections=%" PRIu64 " requests=%" PRIu64 " responses=%" PRIu64 " records=%" PRIu64
            " record_bytes=%" PRIu64 " bytes_c2s=%" PRIu64 " bytes_s2c=%" PRIu64 " gaps=%" PRIu64
            " broken=%" PRIu64 " suppressed=%" PRIu64 " sampled_out=%" PRIu64 " upgrades=%" PRIu64
            " records_dropped=%" PRIu64 " records_failed=%" PRIu64 " evicted=%" PRIu64 " bytes_lost=%" PRIu64
            " flow_mem_peak=%" PRIu64 "\n",
            cs.packets, cs.kernel_drops + cs.iface_drops, cs.kernel_drops, cs.iface_drops, ps.connections,
            ps.requests, ps.responses, ps.rec.records, ps.rec.record_bytes, ps.bytes_c2s, ps.bytes_s2c,
            ps.gaps, ps.broken, ps.suppressed, ps.sampled_out, ps.upgrades, ps.records_dropped, ps.sink.failed,
            cs.flow.flows_evicted, cs.flow.bytes_lost, cs.flow.mem_peak);

out:
    sm_metrics_stop(metrics);
    if (ticker_started) {
        pthread_mutex_lock(&tk.lock);
        tk.done = true;
        pthread_cond_signal(&tk.cond);
        pthread_mutex_unlock(&tk.lock);
        pthread_join(tk.thread, NULL);
    }
    g_cap = NULL;
    agent_capture_close(cap);
    agent_tls_filter_free(tls);
    agent_pipeline_free(pl);
    agent_sink_close(sink);
    sm_opts_free(agent_opts, &cfg);
    return exit_code;
}
