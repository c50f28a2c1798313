/* bench_replay_gen: writes TrafficStream records (base64 lines) for the replay
 * timing test and benchmark.
 *
 * Usage: bench_replay_gen OUT NCONNS NREQS DURATION_MS BODY_BYTES [JITTER]
 *
 * Request k (0..NREQS-1) is received by the source at
 *   T0 + k * DURATION_MS / NREQS   (plus up to JITTER percent of that step,
 *                                  deterministic, when JITTER is given)
 * on connection k % NCONNS, as its request number k / NCONNS; it is
 * "GET /b/<conn>/<seq>?o=<offset_ns>" (or a POST with a BODY_BYTES JSON body)
 * where offset_ns is its source time minus T0. Each request is one record
 * (read, endOfMessage, then the source's 200 response 100 us later); after
 * the last request every connection gets a record with a close, so all NCONNS
 * source connections stay open until the end. */
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/ts.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0_NS 1700000000000000000ll

static const char resp_text[] = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n"
                                "{\"result\":\"ok\"}";

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s OUT NCONNS NREQS DURATION_MS BODY_BYTES [JITTER_PCT]\n", argv[0]);
        return 2;
    }
    const char *out = argv[1];
    uint64_t nconns = strtoull(argv[2], NULL, 10), nreqs = strtoull(argv[3], NULL, 10);
    uint64_t dur_ms = strtoull(argv[4], NULL, 10), body_len = strtoull(argv[5], NULL, 10);
    uint64_t jitter = argc > 6 ? strtoull(argv[6], NULL, 10) : 0;
    if (!nconns || !nreqs || body_len > 60000 || jitter > 99) {
        fprintf(stderr, "bench_replay_gen: bad arguments\n");
        return 2;
    }
    char err[256];
    struct sm_ts_writer_conf wc = { .path = out };
    struct sm_ts_writer *w = sm_ts_writer_open(&wc, err, sizeof(err));
    if (!w) {
        fprintf(stderr, "bench_replay_gen: %s\n", err);
        return 1;
    }
    char *body = sm_malloc(body_len + 1);
    char *req = sm_malloc(body_len + 512);
    uint32_t *chunk = sm_calloc(nconns, sizeof(*chunk));
    if (!body || !req || !chunk)
        return 1;
    if (body_len) {
        memset(body, 'x', body_len);
        if (body_len >= 8) {
            memcpy(body, "{\"f\":\"", 6);
            memcpy(body + body_len - 2, "\"}", 2);
        }
    }
    double step = (double)dur_ms * 1e6 / (double)nreqs;
    uint64_t rng = 88172645463325252ull;
    int rc = 0;
    int64_t last_t = 0;
    for (uint64_t k = 0; k < nreqs && !rc; k++) {
        double off = step * (double)k;
        if (jitter) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            off += step * (double)jitter / 100.0 * (double)(rng % 1000) / 1000.0;
        }
        int64_t t = T0_NS + (int64_t)off;
        last_t = t;
        uint64_t c = k % nconns, seq = k / nconns;
        char cid[64];
        snprintf(cid, sizeof(cid), "conn%06" PRIu64, c);
        int hl = snprintf(req, 512,
                          "%s /b/%" PRIu64 "/%" PRIu64 "?o=%" PRId64 " HTTP/1.1\r\nHost: source:9200\r\n"
                          "User-Agent: bench\r\n",
                          body_len ? "POST" : "GET", c, seq, (int64_t)off);
        int fl = (int)(strchr(req, '\n') - req) + 1;
        if (body_len)
            hl += snprintf(req + hl, (size_t)(512 - hl),
                           "Content-Type: application/json\r\nContent-Length: %" PRIu64 "\r\n", body_len);
        hl += snprintf(req + hl, (size_t)(512 - hl), "\r\n");
        memcpy(req + hl, body, body_len);
        TrafficStream *ts = sm_ts_new(cid, "bench-node");
        if (!ts)
            return 1;
        sm_ts_set_index(ts, (int32_t)++chunk[c], false);
        if (seq == 0)
            sm_ts_set_prior_requests(ts, 0);
        sm_ts_add(ts, SM_TS_READ, t, req, (size_t)hl + body_len);
        sm_ts_add_eom(ts, t, fl, hl);
        sm_ts_add(ts, SM_TS_WRITE, t + 100000, resp_text, sizeof(resp_text) - 1);
        rc = sm_ts_writer_write(w, ts, err, sizeof(err));
        sm_ts_free(ts);
    }
    for (uint64_t c = 0; c < nconns && !rc; c++) {
        char cid[64];
        snprintf(cid, sizeof(cid), "conn%06" PRIu64, c);
        TrafficStream *ts = sm_ts_new(cid, "bench-node");
        if (!ts)
            return 1;
        sm_ts_set_index(ts, (int32_t)++chunk[c], true);
        sm_ts_add(ts, SM_TS_CLOSE, last_t + 1000000, NULL, 0);
        rc = sm_ts_writer_write(w, ts, err, sizeof(err));
        sm_ts_free(ts);
    }
    if (rc || sm_ts_writer_close(w, err, sizeof(err))) {
        fprintf(stderr, "bench_replay_gen: %s\n", err);
        return 1;
    }
    sm_free(body);
    sm_free(req);
    sm_free(chunk);
    return 0;
}
