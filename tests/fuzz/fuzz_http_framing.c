/* Fuzz harness: HTTP framing + record pipeline on type-length-value chunks.
 * Each record: 1 byte type, 2 bytes little-endian length, data.
 *   type & 3 == 0: client->server bytes, 1: server->client bytes,
 *   2: gap in direction (data[0] & 1) of data[1] bytes, 3: idle tick.
 * Bit 0x80 of the first input byte starts the connection mid-stream; bit 0x40
 * selects a 1 KiB record cap (segments), bit 0x20 enables suppression and
 * redaction filters. Records are encoded, decoded and checked. */
#include "record/pipeline.h"
#include "sink/sink.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/ts.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t g_cap;

static int fz_open(struct agent_sink *sink, const struct agent_sink_conf *conf, char *err, size_t errlen)
{
    (void)sink; (void)conf; (void)err; (void)errlen;
    return SM_OK;
}

static int fz_write(struct agent_sink *sink, struct agent_sink_msg *msg)
{
    (void)sink;
    if (msg->len > g_cap)
        abort();                       /* a record over its cap */
    TrafficStream *ts = NULL;
    if (sm_ts_decode(msg->data, msg->len, &ts, NULL, 0) != SM_OK)
        abort();                       /* we wrote something unreadable */
    if (!ts->connectionid || strcmp(ts->connectionid, msg->key))
        abort();
    sm_ts_free(ts);
    agent_sink_msg_free(msg);
    return SM_OK;
}

static void fz_close(struct agent_sink *sink) { (void)sink; }

static const struct agent_sink_ops fz_ops = { "fuzz", fz_open, fz_write, NULL, NULL, NULL, NULL, fz_close };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    data++;
    size--;
    struct agent_sink sink = { .ops = &fz_ops, .name = "fuzz" };
    struct sm_strlist sup = { 0 }, red = { 0 };
    if (flags & 0x20) {
        sm_strlist_push(&sup, "^/_cat");
        sm_strlist_push(&red, "Authorization");
    }
    g_cap = (flags & 0x40) ? 1024 : AGENT_REC_MAX_RECORD_DEFAULT;
    struct agent_pipeline_conf conf = {
        .rec = { .node_id = "fuzz", .id_prefix = "fuzz", .max_record = g_cap, .idle_flush_ns = 1000 },
        .http = { .max_header = 4096 },
        .filter = { .suppress_paths = &sup, .redact_headers = &red },
        .sample_rate = 1, .sample_seed = 1, .sink = &sink,
    };
    struct agent_pipeline *pl = agent_pipeline_new(&conf, NULL, 0);
    if (!pl)
        abort();
    struct agent_stream_cb cb = agent_pipeline_stream_cb(pl);
    struct agent_conn_info info = { .mid_stream = (flags & 0x80) != 0 };
    uint64_t ts = 1;
    void *conn = cb.open(cb.arg, &info, ts);
    size_t i = 0;
    while (conn && i + 3 <= size) {
        uint8_t type = data[i];
        size_t len = (size_t)data[i + 1] | ((size_t)data[i + 2] << 8);
        i += 3;
        if (len > size - i)
            len = size - i;
        const uint8_t *p = data + i;
        i += len;
        ts += 100;
        switch (type & 3) {
        case 0:
            cb.data(cb.arg, conn, AGENT_C2S, p, len, ts);
            break;
        case 1:
            cb.data(cb.arg, conn, AGENT_S2C, p, len, ts);
            break;
        case 2:
            cb.gap(cb.arg, conn, len && (p[0] & 1) ? AGENT_S2C : AGENT_C2S, len > 1 ? p[1] : 0, ts,
                   "fuzz");
            break;
        default:
            agent_pipeline_tick(pl, ts += 5000);
            break;
        }
    }
    if (conn)
        cb.close(cb.arg, conn, AGENT_CLOSE_FIN, ts + 1);
    agent_pipeline_free(pl);
    sm_strlist_free(&sup);
    sm_strlist_free(&red);
    return 0;
}
