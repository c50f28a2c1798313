/* capture_dump: runs a capture engine (agent_capture_*: pcap, pcap-file,
 * ebpf-tc, ebpf-socket) and writes what reaches the stream boundary, for the
 * capture and eBPF integration tests:
 *   OUT/conn-N.c2s, OUT/conn-N.s2c   reassembled bytes per direction
 *   OUT/events.txt                   one line per event:
 *       open N <client-ip> <client-port> <server-ip> <server-port> mid=0|1
 *       gap N c2s|s2c BYTES WHY
 *       close N fin|rst|idle|shutdown|evicted|replaced
 *       ports N rc=RC ERR             (after a --ports-file reload)
 *       procs rc=RC ERR               (the same, when the file has "pid N" / "cgroup DIR" lines)
 *   OUT/stats.txt                    name=value counters
 * Usage: capture_dump --engine E (--iface IF | --file F) --out DIR [--port P]...
 *        [--idle-ms N] [--ready-file F] [--max-seconds N] [--ports-file F] [--no-data 1]
 *        [--tc-attach M] [--pid PID] [--cgroup DIR]
 *        capture_dump --cleanup IFACES|all      (TC filters a killed ebpf-tc left)
 * Live capture stops on SIGTERM/SIGINT or after --max-seconds. SIGUSR1
 * re-reads --ports-file (one port per line) and applies it with
 * agent_capture_set_ports(). --no-data 1 counts bytes without writing them.
 * Exit codes: 0 ok, 1 error, 77 live capture or BPF not permitted here. */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sm/err.h>
#include <sm/util.h>

#include "flow/flow.h"
#include "source/capture.h"
#include "source/source.h"

struct conn {
    int id;
    FILE *f[2];
};

static const char *outdir, *ports_file;
static FILE *events;
static int nconns;
static bool no_data;
static uint64_t data_bytes[2];
static struct agent_capture *g_cap;
static volatile sig_atomic_t reload;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        reload = 1;
        return;
    }
    if (g_cap)
        agent_capture_stop(g_cap);
}

static void *on_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    (void)arg; (void)ts;
    struct conn *c = calloc(1, sizeof(*c));
    char path[4096], cip[64], sip[64];
    if (!c)
        exit(1);
    c->id = nconns++;
    for (int d = 0; d < 2 && !no_data; d++) {
        snprintf(path, sizeof(path), "%s/conn-%d.%s", outdir, c->id, d ? "s2c" : "c2s");
        c->f[d] = fopen(path, "wb");
        if (!c->f[d]) {
            perror(path);
            exit(1);
        }
    }
    inet_ntop(info->family, info->client_ip, cip, sizeof(cip));
    inet_ntop(info->family, info->server_ip, sip, sizeof(sip));
    fprintf(events, "open %d %s %u %s %u mid=%d\n", c->id, cip, info->client_port, sip,
            info->server_port, info->mid_stream ? 1 : 0);
    return c;
}

static void on_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)arg; (void)ts;
    struct conn *c = conn;
    data_bytes[dir] += n;
    if (c->f[dir] && fwrite(p, 1, n, c->f[dir]) != n)
        exit(1);
}

static void on_gap(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts, const char *why)
{
    (void)arg; (void)ts;
    struct conn *c = conn;
    fprintf(events, "gap %d %s %llu %s\n", c->id, dir ? "s2c" : "c2s", (unsigned long long)lost, why);
}

static void on_close(void *arg, void *conn, enum agent_close_reason reason, uint64_t ts)
{
    (void)arg; (void)ts;
    struct conn *c = conn;
    fprintf(events, "close %d %s\n", c->id, agent_close_reason_name(reason));
    for (int d = 0; d < 2; d++)
        if (c->f[d])
            fclose(c->f[d]);
    free(c);
}

/* Applies --ports-file after SIGUSR1 (agent_capture_set_ports() is thread-safe). */
static void *reloader(void *arg)
{
    (void)arg;
    for (;;) {
        usleep(50000);
        if (!reload || !g_cap)
            continue;
        reload = 0;
        uint16_t ports[AGENT_FLOW_MAX_PORTS];
        size_t n = 0;
        FILE *f = fopen(ports_file, "r");
        char line[4096], err[256] = "", cgroup[4096] = "";
        uint64_t v, pid = 0;
        bool procs = false;
        while (f && n < AGENT_FLOW_MAX_PORTS && fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!strncmp(line, "pid ", 4) && sm_parse_u64(line + 4, UINT32_MAX, &pid) == SM_OK)
                procs = true;
            else if (!strncmp(line, "cgroup ", 7)) {
                snprintf(cgroup, sizeof(cgroup), "%s", line + 7);
                procs = true;
            } else if (*line && sm_parse_u64(line, 65535, &v) == SM_OK)
                ports[n++] = (uint16_t)v;
        }
        if (f)
            fclose(f);
        int rc = agent_capture_set_ports(g_cap, ports, n, err, sizeof(err));
        fprintf(events, "ports %zu rc=%d %s\n", n, rc, err);
        if (procs) {
            rc = agent_capture_set_procs(g_cap, (uint32_t)pid, *cgroup ? cgroup : NULL, err, sizeof(err));
            fprintf(events, "procs rc=%d %s\n", rc, err);
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/ports-applied", outdir);
        FILE *a = fopen(path, "w");
        if (a) {
            fprintf(a, "%zu\n", n);
            fclose(a);
        }
    }
    return NULL;
}

static void write_stats(const struct agent_capture_stats *st)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/stats.txt", outdir);
    FILE *sf = fopen(path, "w");
    if (!sf)
        return;
    fprintf(sf, "packets=%llu\nkernel_drops=%llu\ndecode_errors=%llu\nfragments=%llu\n"
            "flows_created=%llu\ngaps=%llu\nbytes_lost=%llu\nooo_segments=%llu\n"
            "retransmissions=%llu\noverlaps=%llu\noverlap_diff_bytes=%llu\nmem_peak=%llu\n"
            "flows_replaced=%llu\nrst_ignored=%llu\nc2s_bytes=%llu\ns2c_bytes=%llu\nconns=%d\n",
            (unsigned long long)st->packets, (unsigned long long)st->kernel_drops,
            (unsigned long long)st->flow.decode_errors, (unsigned long long)st->flow.fragments,
            (unsigned long long)st->flow.flows_created, (unsigned long long)st->flow.gaps,
            (unsigned long long)st->flow.bytes_lost, (unsigned long long)st->flow.ooo_segments,
            (unsigned long long)st->flow.retransmissions, (unsigned long long)st->flow.overlaps,
            (unsigned long long)st->flow.overlap_diff_bytes, (unsigned long long)st->flow.mem_peak,
            (unsigned long long)st->flow.flows_replaced, (unsigned long long)st->flow.rst_ignored,
            (unsigned long long)data_bytes[0], (unsigned long long)data_bytes[1], nconns);
    fclose(sf);
}

int main(int argc, char **argv)
{
    struct agent_capture_cfg cfg;
    const char *ready = NULL;
    uint64_t max_seconds = 0;
    agent_capture_cfg_init(&cfg);
    if (argc == 3 && !strcmp(argv[1], "--cleanup")) {
        char err[512] = "";
        unsigned removed = 0;
        int rc = agent_ebpf_cleanup(strcmp(argv[2], "all") ? argv[2] : NULL, &removed, err, sizeof(err));
        printf("removed=%u\n", removed);
        if (rc != SM_OK)
            fprintf(stderr, "capture_dump: %s\n", err);
        return rc == SM_OK ? 0 : rc == SM_EUNSUPPORTED ? 77 : 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!v) {
            fprintf(stderr, "capture_dump: %s needs a value\n", a);
            return 1;
        }
        i++;
        if (!strcmp(a, "--engine"))
            cfg.engine = v;
        else if (!strcmp(a, "--iface"))
            cfg.iface = v;
        else if (!strcmp(a, "--tc-attach"))
            cfg.tc_attach = v;
        else if (!strcmp(a, "--pid"))
            cfg.pid = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--cgroup"))
            cfg.cgroup = v;
        else if (!strcmp(a, "--file"))
            cfg.pcap_path = v;
        else if (!strcmp(a, "--out"))
            outdir = v;
        else if (!strcmp(a, "--ready-file"))
            ready = v;
        else if (!strcmp(a, "--ports-file"))
            ports_file = v;
        else if (!strcmp(a, "--no-data"))
            no_data = !strcmp(v, "1");
        else if (!strcmp(a, "--port") && sm_parse_u64(v, 65535, &n) == SM_OK && cfg.nports < AGENT_FLOW_MAX_PORTS)
            cfg.ports[cfg.nports++] = (uint16_t)n;
        else if (!strcmp(a, "--idle-ms") && sm_parse_u64(v, UINT64_MAX / 1000000, &n) == SM_OK)
            cfg.idle_timeout_ns = n * 1000000ull;
        else if (!strcmp(a, "--max-seconds") && sm_parse_u64(v, 86400, &n) == SM_OK)
            max_seconds = n;
        else {
            fprintf(stderr, "capture_dump: bad argument %s %s\n", a, v);
            return 1;
        }
    }
    if (!outdir) {
        fprintf(stderr, "capture_dump: --out DIR required\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/events.txt", outdir);
    events = fopen(path, "w");
    if (!events) {
        perror(path);
        return 1;
    }
    setvbuf(events, NULL, _IOLBF, 0);
    struct agent_stream_cb cb = { NULL, on_open, on_data, on_gap, on_close };
    char err[512] = "";
    int rc = agent_capture_open(&cfg, &cb, &g_cap, err, sizeof(err));
    if (rc != SM_OK) {
        fprintf(stderr, "capture_dump: %s\n", err);
        /* a live engine this machine does not permit: skip; a bad file: error */
        return (rc == SM_EIO || rc == SM_EUNSUPPORTED) && !cfg.pcap_path ? 77 : 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    if (ports_file) {
        pthread_t t;
        pthread_create(&t, NULL, reloader, NULL);
        pthread_detach(t);
    }
    if (max_seconds)
        alarm((unsigned)max_seconds);
    if (ready) {
        FILE *f = fopen(ready, "w");
        if (f)
            fclose(f);
    }
    rc = agent_capture_run(g_cap, err, sizeof(err));
    if (rc != SM_OK)
        fprintf(stderr, "capture_dump: %s\n", err);
    struct agent_capture_stats st;
    agent_capture_stats(g_cap, &st);
    struct agent_capture *cap = g_cap;
    g_cap = NULL;
    agent_capture_close(cap);
    write_stats(&st);
    fclose(events);
    return rc == SM_OK ? 0 : 1;
}
