/* capture_dump: runs the capture engine (agent_capture_*) and writes what
 * reaches the stream boundary, for the integration tests:
 *   OUT/conn-N.c2s, OUT/conn-N.s2c   reassembled bytes per direction
 *   OUT/events.txt                   one line per event:
 *       open N <client-ip> <client-port> <server-ip> <server-port> mid=0|1
 *       gap N c2s|s2c BYTES WHY
 *       close N fin|rst|idle|shutdown|evicted
 *   OUT/stats.txt                    name=value counters
 * Usage: capture_dump --engine pcap|pcap-file (--iface IF | --file F) --out DIR
 *        [--port P]... [--idle-ms N] [--ready-file F] [--max-seconds N]
 * Live capture stops on SIGTERM/SIGINT or after --max-seconds.
 * Exit codes: 0 ok, 1 error, 77 cannot open the live interface (no permission). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sm/err.h>
#include <sm/util.h>

#include "source/capture.h"

struct conn {
    int id;
    FILE *f[2];
};

static const char *outdir;
static FILE *events;
static int nconns;
static struct agent_capture *g_cap;

static void on_signal(int sig)
{
    (void)sig;
    if (g_cap)
        agent_capture_stop(g_cap);
}

static void *on_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    (void)arg; (void)ts;
    struct conn *c = calloc(1, sizeof(*c));
    char path[4096], cip[64], sip[64];
    c->id = nconns++;
    for (int d = 0; d < 2; d++) {
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
    if (fwrite(p, 1, n, c->f[dir]) != n)
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
    static const char *names[] = { "fin", "rst", "idle", "shutdown", "evicted" };
    (void)arg; (void)ts;
    struct conn *c = conn;
    fprintf(events, "close %d %s\n", c->id, names[reason]);
    fclose(c->f[0]);
    fclose(c->f[1]);
    free(c);
}

int main(int argc, char **argv)
{
    struct agent_capture_cfg cfg;
    const char *ready = NULL;
    uint64_t max_seconds = 0;
    agent_capture_cfg_init(&cfg);
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
        else if (!strcmp(a, "--file"))
            cfg.pcap_path = v;
        else if (!strcmp(a, "--out"))
            outdir = v;
        else if (!strcmp(a, "--ready-file"))
            ready = v;
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
        return rc == SM_EIO && cfg.iface ? 77 : 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
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
    snprintf(path, sizeof(path), "%s/stats.txt", outdir);
    FILE *sf = fopen(path, "w");
    if (sf) {
        fprintf(sf, "packets=%llu\nkernel_drops=%llu\ndecode_errors=%llu\nfragments=%llu\n"
                "flows_created=%llu\ngaps=%llu\nbytes_lost=%llu\nooo_segments=%llu\n"
                "retransmissions=%llu\noverlaps=%llu\noverlap_diff_bytes=%llu\nmem_peak=%llu\n",
                (unsigned long long)st.packets, (unsigned long long)st.kernel_drops,
                (unsigned long long)st.flow.decode_errors, (unsigned long long)st.flow.fragments,
                (unsigned long long)st.flow.flows_created, (unsigned long long)st.flow.gaps,
                (unsigned long long)st.flow.bytes_lost, (unsigned long long)st.flow.ooo_segments,
                (unsigned long long)st.flow.retransmissions, (unsigned long long)st.flow.overlaps,
                (unsigned long long)st.flow.overlap_diff_bytes, (unsigned long long)st.flow.mem_peak);
        fclose(sf);
    }
    agent_capture_close(g_cap);
    g_cap = NULL;
    fclose(events);
    return rc == SM_OK ? 0 : 1;
}
