/* tls_dump: a pcap file through the capture engine and the TLS filter; writes
 * what reaches the pipeline boundary, for run_tls.py:
 *   OUT/conn-N.c2s, OUT/conn-N.s2c   plaintext per direction
 *   OUT/events.txt                   open N <client-port> <server-port> /
 *                                    gap N c2s|s2c <bytes before> <lost> WHY / close N
 *   OUT/stats.txt                    name=value TLS counters
 * Usage: tls_dump --file PCAP --keylog FILE --out DIR [--port P]... [--key-wait-ms N] [--discard 1]
 * --discard 1: no conn-N files (plaintext only counted; bench_tls times capture + decryption alone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sm/err.h>
#include <sm/mem.h>

#include "source/capture.h"
#include "tls/tls.h"

struct conn { int id; FILE *f[2]; uint64_t n[2]; };

static const char *outdir;
static int discard;
static FILE *events;
static int nconns;

static void *d_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    (void)arg, (void)ts;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->id = ++nconns;
    char path[512];
    for (int d = 0; d < 2 && !discard; d++) {
        snprintf(path, sizeof path, "%s/conn-%d.%s", outdir, c->id, d ? "s2c" : "c2s");
        if (!(c->f[d] = fopen(path, "wb")))
            abort();
    }
    fprintf(events, "open %d %u %u\n", c->id, info->client_port, info->server_port);
    return c;
}
static void d_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)arg, (void)ts;
    if (!discard)
        fwrite(p, 1, n, ((struct conn *)conn)->f[dir]);
    ((struct conn *)conn)->n[dir] += n;
}
static void d_gap(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts, const char *why)
{
    (void)arg, (void)ts;
    struct conn *c = conn;
    fprintf(events, "gap %d %s %llu %llu %s\n", c->id, dir ? "s2c" : "c2s", (unsigned long long)c->n[dir],
            (unsigned long long)lost, why);
}
static void d_close(void *arg, void *conn, enum agent_close_reason r, uint64_t ts)
{
    (void)arg, (void)ts, (void)r;
    struct conn *c = conn;
    fprintf(events, "close %d\n", c->id);
    if (!discard) {
        fclose(c->f[0]);
        fclose(c->f[1]);
    }
    free(c);
}

int main(int argc, char **argv)
{
    struct agent_capture_cfg cc;
    struct agent_tls_cfg tc;
    agent_capture_cfg_init(&cc);
    agent_tls_cfg_init(&tc);
    cc.engine = "pcap-file";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--file"))
            cc.pcap_path = argv[i + 1];
        else if (!strcmp(argv[i], "--keylog"))
            tc.keylog_path = argv[i + 1];
        else if (!strcmp(argv[i], "--out"))
            outdir = argv[i + 1];
        else if (!strcmp(argv[i], "--port") && cc.nports < AGENT_FLOW_MAX_PORTS) {
            cc.ports[cc.nports++] = (uint16_t)strtoul(argv[i + 1], NULL, 10);
            tc.ports[tc.nports++] = cc.ports[cc.nports - 1];
        } else if (!strcmp(argv[i], "--discard"))
            discard = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--key-wait-ms"))
            tc.key_wait_ns = strtoull(argv[i + 1], NULL, 10) * 1000000ull;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!cc.pcap_path || !outdir)
        return 2;
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/events.txt", outdir);
    if (!(events = fopen(path, "w")))
        return 1;
    struct agent_stream_cb cb = { NULL, d_open, d_data, d_gap, d_close };
    struct agent_tls_filter *tls;
    struct agent_capture *cap;
    if (agent_tls_filter_new(&tc, &cb, &tls, err, sizeof err) != SM_OK ||
        agent_capture_open(&cc, agent_tls_filter_cb(tls), &cap, err, sizeof err) != SM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = agent_capture_run(cap, err, sizeof err);
    agent_capture_close(cap);
    agent_tls_filter_drain(tls);
    struct agent_tls_stats st;
    agent_tls_filter_stats(tls, &st);
    agent_tls_filter_free(tls);
    fclose(events);
    snprintf(path, sizeof path, "%s/stats.txt", outdir);
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
#define S(x) fprintf(f, #x "=%llu\n", (unsigned long long)st.x)
    S(conns_tls); S(conns_clear); S(conns_decrypted); S(conns_undecryptable); S(conns_no_keys);
    S(conns_no_handshake); S(conns_unsupported); S(conns_resumed); S(records); S(records_decrypted);
    S(auth_failures); S(key_updates); S(bytes_plaintext); S(keylog_lines);
    S(gaps); S(resyncs); S(resync_failures); S(records_lost); S(resync_trials); S(conns_broken);
    S(conns_early_data); S(early_data_skipped); S(renegotiations);
#undef S
    fclose(f);
    if (rc != SM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}
