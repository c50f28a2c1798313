/* Fuzz harness for the TrafficStream decoder and the line reader.
 * Every input is tried both ways: as one encoded TrafficStream (decode,
 * walk every observation through the accessors, dump, re-encode and decode
 * again: the re-encoding must decode to the same size; the arena decoder must
 * give the same encoding) and as a records file
 * (base64 / key|base64 lines, plain or gzip). */
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/ts.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

static void walk(const TrafficStream *ts)
{
    for (size_t i = 0; i < ts->n_substream; i++) {
        const TrafficObservation *o = ts->substream[i];
        int64_t ns;
        const uint8_t *d;
        size_t dl;
        int32_t a, b;
        (void)sm_ts_obs_time_ns(o, &ns);
        (void)sm_ts_kind_name(sm_ts_obs_kind(o));
        if (sm_ts_obs_data(o, &d, &dl) && dl)
            (void)d[dl - 1];
        (void)sm_ts_obs_eom(o, &a, &b);
    }
    int32_t idx;
    bool last;
    (void)sm_ts_index(ts, &idx, &last);
    sm_ts_dump(devnull, ts);
}

static void ignore_bad(void *arg, const char *name, uint64_t line, const char *reason)
{
    (void)arg; (void)name; (void)line; (void)reason;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull) {
        if (!(devnull = fopen("/dev/null", "w")))
            abort();
        struct sm_log_config lc = { SM_LOG_ERR, 0, false, false, "fuzz" };
        sm_log_init(&lc);   /* truncated-gzip warnings are expected here */
    }
    TrafficStream *ts = NULL;
    char err[256];
    if (sm_ts_decode(data, size, &ts, err, sizeof(err)) == SM_OK) {
        walk(ts);
        uint8_t *enc;
        size_t el;
        if (sm_ts_encode_alloc(ts, &enc, &el) == SM_OK) {
            TrafficStream *again = NULL;
            if (sm_ts_decode(enc, el, &again, err, sizeof(err)) != SM_OK)
                abort();   /* our own encoding must decode */
            if (sm_ts_encoded_size(again) != el)
                abort();   /* and be stable */
            sm_ts_free(again);
            /* the arena decoder gives the same record (same encoding) */
            static struct sm_ts_arena *arena;
            if (!arena && !(arena = sm_ts_arena_new()))
                abort();
            TrafficStream *in_arena = NULL;
            if (sm_ts_decode_in(arena, data, size, SM_TS_DECODE_MAX, &in_arena, err, sizeof(err)) != SM_OK ||
                sm_ts_encoded_size(in_arena) != el)
                abort();
            uint8_t *enc2;
            size_t el2;
            if (sm_ts_encode_alloc(in_arena, &enc2, &el2) != SM_OK || el2 != el || memcmp(enc, enc2, el) != 0)
                abort();
            sm_free(enc2);
            sm_free(enc);
        }
        sm_ts_free(ts);
    }

    struct sm_ts_reader *r = sm_ts_reader_open_mem(data, size, "fuzz", err, sizeof(err));
    if (!r)
        return 0;
    sm_ts_reader_set_bad_line_cb(r, ignore_bad, NULL);
    sm_ts_reader_set_max_line(r, 1 << 16);
    const char *key;
    uint64_t line;
    while (sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)) == SM_OK) {
        walk(ts);
        sm_ts_free(ts);
    }
    sm_ts_reader_close(r);
    return 0;
}
