/* Fuzz harness: the TLS filter's record layer, handshake parser, key log
 * parser and waiting logic (agent/tls).
 *
 * Input: type-length-value records:
 *   u8  kind   0/1: stream bytes client->server / server->client
 *              2/3: capture gap in that direction
 *              4:   an NSS key log line (given to the parser directly)
 *              5:   the clock advances 1 s, then a tick
 *              6:   the connection closes and a new one opens
 *   u16 len    little endian
 *   len bytes
 * Small bounds (8 KiB pending, 2 s key wait) make the limits reachable.
 * The downstream callbacks abort() on a violation: no event after close,
 * one close per open, no data after an undecryptable ("tls: ...") gap, plaintext total
 * equal to the filter's counter, pending bytes within the bound.
 * Seeds: tests/unit/test_tls with TLS_FUZZ_SEEDS=DIR writes real sessions
 * (key log lines followed by the wire bytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls/tls.h"

struct fconn { int closed; int dead[2]; };

static uint64_t fnow;
static uint64_t fclock(void) { return fnow; }
static uint64_t plain_total;

static void *f_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    (void)arg, (void)info, (void)ts;
    return calloc(1, sizeof(struct fconn));
}
static void f_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)arg, (void)ts;
    struct fconn *c = conn;
    if (c->closed || c->dead[dir] || !n)
        abort();
    volatile uint8_t x = p[0] ^ p[n - 1];
    (void)x;
    plain_total += n;
}
static void f_gap(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts, const char *why)
{
    (void)arg, (void)lost, (void)ts;
    struct fconn *c = conn;
    if (c->closed || !why)
        abort();
    if (!strncmp(why, "tls:", 4))   /* undecryptable: nothing may follow */
        c->dead[dir] = 1;
}
static void f_close(void *arg, void *conn, enum agent_close_reason r, uint64_t ts)
{
    (void)arg, (void)r, (void)ts;
    struct fconn *c = conn;
    if (c->closed)
        abort();
    free(c);
}

static const struct agent_stream_cb fcb = { NULL, f_open, f_data, f_gap, f_close };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_tls_cfg cfg;
    agent_tls_cfg_init(&cfg);
    cfg.max_pending = 8192;
    cfg.key_wait_ns = 2000000000ull;
    cfg.poll_interval_ns = 0;
    cfg.clock_ns = fclock;
    cfg.max_keys = 4;
    fnow = 1;
    plain_total = 0;
    struct agent_tls_filter *tls;
    char err[128];
    if (agent_tls_filter_new(&cfg, &fcb, &tls, err, sizeof err) != 0)
        abort();
    const struct agent_stream_cb *up = agent_tls_filter_cb(tls);
    struct agent_conn_info info = { .family = AF_INET, .client_port = 1234, .server_port = 443 };
    void *conn = up->open(up->arg, &info, 1);
    uint64_t ts = 1, nconns = 1;
    while (size >= 3 && conn) {
        uint8_t kind = data[0];
        size_t len = (size_t)data[1] | (size_t)data[2] << 8;
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        ts++;
        switch (kind % 7) {
        case 0: case 1:
            if (len)
                up->data(up->arg, conn, (enum agent_dir)(kind % 7), data, len, ts);
            break;
        case 2: case 3:
            up->gap(up->arg, conn, (enum agent_dir)(kind % 7 - 2), len, ts, "capture loss");
            break;
        case 4:
            agent_tls_keylog_line(tls, (const char *)data, len);
            break;
        case 5:
            fnow += 1000000000ull;
            agent_tls_filter_tick(tls);
            break;
        case 6:
            up->close(up->arg, conn, AGENT_CLOSE_FIN, ts);
            conn = up->open(up->arg, &info, ts);
            nconns++;
            break;
        }
        data += len;
        size -= len;
        struct agent_tls_stats st;
        agent_tls_filter_stats(tls, &st);
        if (st.pending_bytes > nconns * cfg.max_pending || st.bytes_plaintext + st.bytes_clear != plain_total)
            abort();
    }
    if (conn)
        up->close(up->arg, conn, AGENT_CLOSE_FIN, ts);
    agent_tls_filter_free(tls);
    return 0;
}
