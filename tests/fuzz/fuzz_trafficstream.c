/* Fuzz harness for the TrafficStream decoder and the line reader.
 * Every input is tried both ways: as one encoded TrafficStream (decode,
 * walk every observation through the accessors, dump, re-encode and decode
 * again: the re-encoding must decode to the same size; the arena decoder must
 * give the same encoding; whatever the arena's fast path decodes, protobuf-c
 * decodes to the same record, and the fast path takes every record protobuf-c
 * re-encodes without unknown fields) and as a records file (base64 /
 * key|base64 lines, plain or gzip). */
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

/* true when protobuf-c kept unknown fields anywhere in m */
static bool has_unknown(const ProtobufCMessage *m)
{
    if (!m)
        return false;
    if (m->n_unknown_fields)
        return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (has_unknown(arr[k]))
                    return true;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (has_unknown(*(ProtobufCMessage *const *)(base + f->offset)))
            return true;
    }
    return false;
}

/* The fast path against protobuf-c on the same bytes. */
static void check_fast(const uint8_t *data, size_t size, const TrafficStream *slow)
{
    static struct sm_ts_arena *fa;
    if (!fa && !(fa = sm_ts_arena_new()))
        abort();
    TrafficStream *fast = NULL;
    int rc = sm_ts_decode_fast(fa, data, size, &fast);
    if (rc == SM_ENOMEM)
        return;
    if (rc != SM_OK) {
        if (rc != SM_EAGAIN || fast)
            abort();
        return;
    }
    if (!slow)
        abort();   /* the fast path accepted what protobuf-c refuses */
    uint8_t *a, *b;
    size_t al, bl;
    if (sm_ts_encode_alloc(fast, &a, &al) != SM_OK)
        abort();
    if (sm_ts_encode_alloc(slow, &b, &bl) != SM_OK || al != bl || memcmp(a, b, al) != 0)
        abort();   /* a different record */
    if (slow->n_substream != fast->n_substream)
        abort();
    sm_free(a);
    sm_free(b);
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
    if (sm_ts_decode(data, size, &ts, err, sizeof(err)) != SM_OK)
        ts = NULL;
    check_fast(data, size, ts);
    if (ts) {
        walk(ts);
        uint8_t *enc;
        size_t el;
        if (sm_ts_encode_alloc(ts, &enc, &el) == SM_OK) {
            /* a plain encoding: the fast path takes it */
            if (!has_unknown(&ts->base)) {
                static struct sm_ts_arena *pa;
                TrafficStream *f = NULL;
                if ((!pa && !(pa = sm_ts_arena_new())) || sm_ts_decode_fast(pa, enc, el, &f) == SM_EAGAIN)
                    abort();
            }
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
