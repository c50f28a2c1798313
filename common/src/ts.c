/* TrafficStream codec helpers over protobuf-c's generated code: building,
 * encoding, capped decoding, accessors and the text dump. */
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/ts.h>

#include <inttypes.h>
#include <pthread.h>
#include <string.h>

/* protobuf-c allocations go through sm_malloc so that built and decoded
 * records share one free path and tests can inject allocation failures. */
struct alloc_state { bool failed; };

static void *pb_alloc(void *data, size_t n)
{
    void *p = sm_malloc(n ? n : 1);
    if (!p && data)
        ((struct alloc_state *)data)->failed = true;
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    sm_free(p);
}

static ProtobufCAllocator sm_pb_allocator = { pb_alloc, pb_free, NULL };

/* ---- building ------------------------------------------------------------ */

TrafficStream *sm_ts_new(const char *connection_id, const char *node_id)
{
    TrafficStream *ts = sm_malloc(sizeof(*ts));
    if (!ts)
        return NULL;
    traffic_stream__init(ts);
    if (connection_id && *connection_id && !(ts->connectionid = sm_strdup(connection_id)))
        goto fail;
    if (node_id && *node_id && !(ts->nodeid = sm_strdup(node_id)))
        goto fail;
    return ts;
fail:
    sm_ts_free(ts);
    return NULL;
}

void sm_ts_free(TrafficStream *ts)
{
    if (ts)
        protobuf_c_message_free_unpacked(&ts->base, &sm_pb_allocator);
}

/* Allocates and initialises a generated message of the given descriptor. */
static void *msg_new(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = sm_malloc(desc->sizeof_message);
    if (m)
        desc->message_init(m);
    return m;
}

static int set_bytes(ProtobufCBinaryData *bd, protobuf_c_boolean *has, const void *data, size_t len)
{
    if (!len)
        return SM_OK;   /* proto3: empty bytes are not written */
    bd->data = sm_memdup(data, len);
    if (!bd->data)
        return SM_ENOMEM;
    bd->len = len;
    *has = 1;
    return SM_OK;
}

/* Appends obs to ts->substream (array grows in powers of two). */
static int push_obs(TrafficStream *ts, TrafficObservation *obs)
{
    /* The array may come from protobuf-c's decoder (exact size), so its
     * capacity is unknown: grow by one (glibc realloc mostly extends in place). */
    TrafficObservation **arr = sm_realloc(ts->substream, (ts->n_substream + 1) * sizeof(*arr));
    if (!arr)
        return SM_ENOMEM;
    ts->substream = arr;
    ts->substream[ts->n_substream++] = obs;
    return SM_OK;
}

static TrafficObservation *obs_new(int64_t time_ns)
{
    TrafficObservation *obs = msg_new(&traffic_observation__descriptor);
    if (!obs)
        return NULL;
    Google__Protobuf__Timestamp *t = msg_new(&google__protobuf__timestamp__descriptor);
    if (!t) {
        sm_free(obs);
        return NULL;
    }
    int64_t s = time_ns / 1000000000;
    int64_t ns = time_ns % 1000000000;
    if (ns < 0) {
        ns += 1000000000;
        s -= 1;
    }
    t->seconds = s;
    t->nanos = (int32_t)ns;
    obs->ts = t;
    return obs;
}

TrafficObservation *sm_ts_add(TrafficStream *ts, enum sm_ts_kind kind, int64_t time_ns,
                              const void *data, size_t len)
{
    TrafficObservation *obs = obs_new(time_ns);
    if (!obs)
        return NULL;
    int rc = SM_OK;
    switch (kind) {
    case SM_TS_BIND:
        rc = (obs->bind = msg_new(&bind_observation__descriptor)) ? SM_OK : SM_ENOMEM;
        break;
    case SM_TS_CONNECT:
        rc = (obs->connect = msg_new(&connect_observation__descriptor)) ? SM_OK : SM_ENOMEM;
        break;
    case SM_TS_READ:
        if (!(obs->read = msg_new(&read_observation__descriptor)))
            rc = SM_ENOMEM;
        else
            rc = set_bytes(&obs->read->data, &obs->read->has_data, data, len);
        break;
    case SM_TS_READ_SEGMENT:
        if (!(obs->readsegment = msg_new(&read_segment_observation__descriptor)))
            rc = SM_ENOMEM;
        else
            rc = set_bytes(&obs->readsegment->data, &obs->readsegment->has_data, data, len);
        break;
    case SM_TS_REQUEST_RELEASED:
        rc = (obs->requestreleaseddownstream =
                  msg_new(&proxy_finishes_forwarding_request_observation__descriptor)) ? SM_OK : SM_ENOMEM;
        break;
    case SM_TS_WRITE:
        if (!(obs->write = msg_new(&write_observation__descriptor)))
            rc = SM_ENOMEM;
        else
            rc = set_bytes(&obs->write->data, &obs->write->has_data, data, len);
        break;
    case SM_TS_WRITE_SEGMENT:
        if (!(obs->writesegment = msg_new(&write_segment_observation__descriptor)))
            rc = SM_ENOMEM;
        else
            rc = set_bytes(&obs->writesegment->data, &obs->writesegment->has_data, data, len);
        break;
    case SM_TS_DISCONNECT:
        rc = (obs->disconnect = msg_new(&disconnect_observation__descriptor)) ? SM_OK : SM_ENOMEM;
        break;
    case SM_TS_CLOSE:
        rc = (obs->close = msg_new(&close_observation__descriptor)) ? SM_OK : SM_ENOMEM;
        break;
    case SM_TS_CONNECTION_EXCEPTION:
        if (!(obs->connectionexception = msg_new(&connection_exception_observation__descriptor)))
            rc = SM_ENOMEM;
        else if (len && !(obs->connectionexception->message = sm_strndup(data, len)))
            rc = SM_ENOMEM;
        break;
    case SM_TS_SEGMENT_END:
        rc = (obs->segmentend = msg_new(&end_of_segments_indication__descriptor)) ? SM_OK : SM_ENOMEM;
        break;
    case SM_TS_END_OF_MESSAGE:
        rc = (obs->endofmessageindicator = msg_new(&end_of_message_indication__descriptor)) ? SM_OK : SM_ENOMEM;
        break;
    case SM_TS_REQUEST_DROPPED:
        rc = (obs->requestdropped = msg_new(&request_intentionally_dropped__descriptor)) ? SM_OK : SM_ENOMEM;
        break;
    default:
        rc = SM_EINVAL;
        break;
    }
    /* set the case even on failure so free_unpacked releases what exists */
    obs->capture_case = (TrafficObservation__CaptureCase)kind;
    if (rc == SM_OK)
        rc = push_obs(ts, obs);
    if (rc) {
        if (rc == SM_EINVAL)
            obs->capture_case = TRAFFIC_OBSERVATION__CAPTURE__NOT_SET;
        protobuf_c_message_free_unpacked(&obs->base, &sm_pb_allocator);
        return NULL;
    }
    return obs;
}

TrafficObservation *sm_ts_add_eom(TrafficStream *ts, int64_t time_ns, int32_t first_line_len,
                                  int32_t headers_len)
{
    TrafficObservation *obs = sm_ts_add(ts, SM_TS_END_OF_MESSAGE, time_ns, NULL, 0);
    if (!obs)
        return NULL;
    EndOfMessageIndication *e = obs->endofmessageindicator;
    if (first_line_len >= 0) {
        e->has_firstlinebytelength = 1;
        e->firstlinebytelength = first_line_len;
    }
    if (headers_len >= 0) {
        e->has_headersbytelength = 1;
        e->headersbytelength = headers_len;
    }
    return obs;
}

void sm_ts_set_index(TrafficStream *ts, int32_t index, bool last)
{
    if (last) {
        ts->index_case = TRAFFIC_STREAM__INDEX_NUMBER_OF_THIS_LAST_CHUNK;
        ts->numberofthislastchunk = index;
    } else {
        ts->index_case = TRAFFIC_STREAM__INDEX_NUMBER;
        ts->number = index;
    }
}

void sm_ts_set_prior_requests(TrafficStream *ts, int32_t prior)
{
    ts->has_priorrequestsreceived = 1;
    ts->priorrequestsreceived = prior;
}

void sm_ts_set_unterminated_read(TrafficStream *ts, bool unterminated)
{
    ts->has_lastobservationwasunterminatedread = 1;
    ts->lastobservationwasunterminatedread = unterminated;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t sm_ts_obs_max_size(size_t len)
{
    /* inner capture: tag + varint(len) + len */
    size_t inner = 1 + varint_len(len) + len;
    /* timestamp: tag 1 + len 1 + seconds (1 + 10) + nanos (1 + 5) */
    size_t tsz = 2 + 11 + 6;
    /* observation: ts + capture tag (2 bytes for field 16) + varint(inner) + inner */
    size_t obs = tsz + 2 + varint_len(inner) + inner;
    /* TrafficStream.subStream: tag + varint(obs) + obs */
    return 1 + varint_len(obs) + obs;
}

/* ---- encoding / decoding ------------------------------------------------- */

size_t sm_ts_encoded_size(const TrafficStream *ts)
{
    return protobuf_c_message_get_packed_size(&ts->base);
}

int sm_ts_encode(const TrafficStream *ts, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t n = protobuf_c_message_get_packed_size(&ts->base);
    if (n > cap)
        return SM_EFULL;
    size_t w = protobuf_c_message_pack(&ts->base, out);
    if (w != n)
        return SM_EPROTO;
    *outlen = n;
    return SM_OK;
}

int sm_ts_encode_alloc(const TrafficStream *ts, uint8_t **out, size_t *outlen)
{
    size_t n = protobuf_c_message_get_packed_size(&ts->base);
    uint8_t *buf = sm_malloc(n ? n : 1);
    if (!buf)
        return SM_ENOMEM;
    int rc = sm_ts_encode(ts, buf, n, outlen);
    if (rc) {
        sm_free(buf);
        return rc;
    }
    *out = buf;
    return SM_OK;
}

/* ---- streaming encoder ----------------------------------------------------- */

#define ENC_MIN_CAP 4096u
#define OBS_HDR_MAX 64u   /* tag + len + timestamp (<= 24) + capture tag + len + data tag + len */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* protobuf int32: negative values are sign-extended to 64 bits (10 bytes) */
static size_t put_int32(uint8_t *p, int32_t v)
{
    return put_varint(p, (uint64_t)(int64_t)v);
}

int sm_ts_enc_reserve(struct sm_ts_enc *e, size_t cap)
{
    if (e->cap >= cap)
        return SM_OK;
    uint8_t *b = sm_realloc(e->buf, cap);
    if (!b)
        return SM_ENOMEM;
    e->buf = b;
    e->cap = cap;
    return SM_OK;
}

/* Room for more bytes after len, growing by doubling. */
static int enc_reserve(struct sm_ts_enc *e, size_t more)
{
    if (e->cap - e->len >= more)
        return SM_OK;
    size_t cap = e->cap ? e->cap : ENC_MIN_CAP;
    while (cap - e->len < more)
        cap *= 2;
    return sm_ts_enc_reserve(e, cap);
}

void sm_ts_enc_init(struct sm_ts_enc *e)
{
    memset(e, 0, sizeof(*e));
}

void sm_ts_enc_reset(struct sm_ts_enc *e)
{
    e->len = 0;
    e->n_obs = 0;
    e->last_kind = SM_TS_NONE;
}

void sm_ts_enc_free(struct sm_ts_enc *e)
{
    sm_free(e->buf);
    sm_ts_enc_init(e);
}

int sm_ts_enc_begin(struct sm_ts_enc *e, const char *connection_id)
{
    sm_ts_enc_reset(e);
    size_t n = connection_id ? strlen(connection_id) : 0;
    if (enc_reserve(e, 11 + n))
        return SM_ENOMEM;
    if (n) {
        e->buf[e->len++] = 0x0a;   /* 1: connectionId */
        e->len += put_varint(e->buf + e->len, n);
        memcpy(e->buf + e->len, connection_id, n);
        e->len += n;
    }
    return SM_OK;
}

/* Field number of the inner payload of a data-carrying kind (0: none). */
static unsigned data_field(enum sm_ts_kind kind)
{
    switch (kind) {
    case SM_TS_READ: case SM_TS_WRITE: case SM_TS_CONNECTION_EXCEPTION: return 1;
    case SM_TS_READ_SEGMENT: case SM_TS_WRITE_SEGMENT: return 2;
    default: return 0;
    }
}

/* The bytes of an observation before its payload (or the whole observation
 * when it has none: inner holds the body of an inner message without bytes,
 * e.g. an endOfMessageIndicator). Returns the header length. */
static size_t obs_header(uint8_t *h, enum sm_ts_kind kind, int64_t time_ns, bool has_data, size_t data_len,
                         const uint8_t *inner, size_t inner_len)
{
    /* Timestamp as obs_new() builds it; proto3: zero fields are not written */
    int64_t sec = time_ns / 1000000000;
    int64_t nsec = time_ns % 1000000000;
    if (nsec < 0) {
        nsec += 1000000000;
        sec -= 1;
    }
    uint8_t t[24];
    size_t tl = 0;
    if (sec) {
        t[tl++] = 0x08;
        tl += put_varint(t + tl, (uint64_t)sec);
    }
    if (nsec) {
        t[tl++] = 0x10;
        tl += put_varint(t + tl, (uint64_t)nsec);
    }
    /* the capture's inner message */
    uint8_t d[12];
    size_t dl = 0;
    if (has_data) {
        d[dl++] = (uint8_t)(data_field(kind) << 3 | 2);
        dl += put_varint(d + dl, data_len);
    }
    size_t inner_total = dl + (has_data ? data_len : inner_len);
    uint8_t c[16];
    size_t cl = put_varint(c, (uint64_t)kind << 3 | 2);
    cl += put_varint(c + cl, inner_total);
    size_t obs_len = 1 + 1 + tl + cl + inner_total;   /* ts tag + ts len (< 128) + ... */
    size_t n = 0;
    h[n++] = 0x12;   /* 2: subStream */
    n += put_varint(h + n, obs_len);
    h[n++] = 0x0a;   /* 1: ts */
    h[n++] = (uint8_t)tl;
    memcpy(h + n, t, tl);
    n += tl;
    memcpy(h + n, c, cl);
    n += cl;
    memcpy(h + n, d, dl);
    n += dl;
    if (!has_data && inner_len) {
        memcpy(h + n, inner, inner_len);
        n += inner_len;
    }
    return n;
}

static int enc_obs(struct sm_ts_enc *e, enum sm_ts_kind kind, int64_t time_ns, bool has_data,
                   const void *data, size_t len, const uint8_t *inner, size_t inner_len)
{
    uint8_t h[OBS_HDR_MAX];
    size_t hl = obs_header(h, kind, time_ns, has_data, len, inner, inner_len);
    if (enc_reserve(e, hl + (has_data ? len : 0)))
        return SM_ENOMEM;
    e->last_off = e->len;
    memcpy(e->buf + e->len, h, hl);
    e->len += hl;
    if (has_data && len) {
        memcpy(e->buf + e->len, data, len);
        e->len += len;
    }
    e->last_hdr = hl;
    e->last_data = has_data ? len : 0;
    e->last_kind = kind;
    e->last_ns = time_ns;
    e->n_obs++;
    return SM_OK;
}

int sm_ts_enc_add(struct sm_ts_enc *e, enum sm_ts_kind kind, int64_t time_ns, const void *data, size_t len)
{
    switch (kind) {
    case SM_TS_READ: case SM_TS_READ_SEGMENT: case SM_TS_WRITE: case SM_TS_WRITE_SEGMENT:
        /* proto3: empty bytes are not written */
        return enc_obs(e, kind, time_ns, len > 0, data, len, NULL, 0);
    case SM_TS_CONNECTION_EXCEPTION:
        /* a string: sm_ts_add() keeps it up to a NUL, and writes it whenever len > 0 */
        return enc_obs(e, kind, time_ns, len > 0, data, len ? strnlen(data, len) : 0, NULL, 0);
    case SM_TS_BIND: case SM_TS_CONNECT: case SM_TS_REQUEST_RELEASED: case SM_TS_DISCONNECT:
    case SM_TS_CLOSE: case SM_TS_SEGMENT_END: case SM_TS_REQUEST_DROPPED:
        return enc_obs(e, kind, time_ns, false, NULL, 0, NULL, 0);
    default:
        return SM_EINVAL;
    }
}

int sm_ts_enc_add_eom(struct sm_ts_enc *e, int64_t time_ns, int32_t first_line_len, int32_t headers_len)
{
    uint8_t in[22];
    size_t n = 0;
    if (first_line_len >= 0) {
        in[n++] = 0x08;
        n += put_int32(in + n, first_line_len);
    }
    if (headers_len >= 0) {
        in[n++] = 0x10;
        n += put_int32(in + n, headers_len);
    }
    return enc_obs(e, SM_TS_END_OF_MESSAGE, time_ns, false, NULL, 0, in, n);
}

int sm_ts_enc_extend(struct sm_ts_enc *e, enum sm_ts_kind kind, int64_t time_ns, const void *data, size_t len)
{
    if (!e->n_obs || e->last_kind != kind || e->last_ns != time_ns ||
        (kind != SM_TS_READ && kind != SM_TS_WRITE))
        return SM_EINVAL;
    if (!len)
        return SM_OK;
    size_t total = e->last_data + len;
    uint8_t h[OBS_HDR_MAX];
    size_t hl = obs_header(h, kind, time_ns, true, total, NULL, 0);
    if (enc_reserve(e, hl - e->last_hdr + len))   /* headers only grow with the payload */
        return SM_ENOMEM;
    uint8_t *obs = e->buf + e->last_off;
    if (hl != e->last_hdr && e->last_data)   /* a length field got longer: shift the payload */
        memmove(obs + hl, obs + e->last_hdr, e->last_data);
    memcpy(obs, h, hl);
    memcpy(obs + hl + e->last_data, data, len);
    e->len = e->last_off + hl + total;
    e->last_hdr = hl;
    e->last_data = total;
    return SM_OK;
}

int sm_ts_enc_finish(struct sm_ts_enc *e, int32_t index, bool last, const char *node_id, int32_t prior,
                     int unterminated, uint8_t **out, size_t *outlen)
{
    size_t nl = node_id ? strlen(node_id) : 0;
    if (enc_reserve(e, 11 + 11 + nl + 11 + 2)) {
        sm_ts_enc_reset(e);
        return SM_ENOMEM;
    }
    uint8_t *p = e->buf + e->len;
    *p++ = last ? 0x20 : 0x18;   /* 4: numberOfThisLastChunk / 3: number */
    p += put_int32(p, index);
    if (nl) {
        *p++ = 0x2a;             /* 5: nodeId */
        p += put_varint(p, nl);
        memcpy(p, node_id, nl);
        p += nl;
    }
    if (prior >= 0) {
        *p++ = 0x30;             /* 6: priorRequestsReceived */
        p += put_int32(p, prior);
    }
    if (unterminated >= 0) {
        *p++ = 0x38;             /* 7: lastObservationWasUnterminatedRead */
        *p++ = unterminated ? 1 : 0;
    }
    e->len = (size_t)(p - e->buf);
    uint8_t *buf = e->buf;
    if (e->cap - e->len >= ENC_MIN_CAP && e->cap / 2 >= e->len) {   /* give back the growth slack */
        uint8_t *b = sm_realloc(buf, e->len);
        if (b)
            buf = b;
    }
    *out = buf;
    *outlen = e->len;
    e->buf = NULL;
    e->cap = 0;
    sm_ts_enc_reset(e);
    return SM_OK;
}

/* True if m or a sub-message holds an unknown field numbered 0. protobuf-c
 * accepts such a tag when its varint is over-long (80 00) although field 0
 * is invalid (protobuf-java rejects it), and then re-encodes it as a plain
 * 00 that it rejects itself: refuse it up front. */
static bool has_field_zero(const ProtobufCMessage *m, int depth)
{
    if (!m || depth > 8)
        return false;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + fd->offset);
            for (size_t k = 0; k < n; k++)
                if (has_field_zero(arr[k], depth + 1))
                    return true;
        } else {
            if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
                continue;
            if (has_field_zero(*(ProtobufCMessage *const *)(base + fd->offset), depth + 1))
                return true;
        }
    }
    return false;
}

/* False when data cannot hold a tag of field number 0: protobuf-c refuses a
 * plain one (a single byte 00-07), so such a tag is a byte 80-87 followed by
 * zero or more 80 bytes and a 00 - and then a 00 follows a byte 80-87. Only
 * when that pair occurs (binary bodies, mostly) is the decoded tree walked:
 * the walk was ~2% of the replayer's instructions. */
static bool may_have_field_zero(const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *end = data + len;
    while (p < end && (p = memchr(p, 0, (size_t)(end - p)))) {
        if (p > data && (p[-1] & 0xF8) == 0x80)
            return true;
        p++;
    }
    return false;
}

/* Unpacks with pa; *failed tells an allocation failure from bad bytes. */
static int decode_with(ProtobufCAllocator *pa, const bool *failed, const uint8_t *data, size_t len, size_t max,
                       TrafficStream **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len > max)
        return sm_errf(err, errlen, SM_EFULL, "TrafficStream of %zu bytes exceeds the %zu byte limit",
                       len, max);
    TrafficStream *ts = traffic_stream__unpack(pa, len, data);
    if (!ts) {
        if (*failed)
            return sm_errf(err, errlen, SM_ENOMEM, "TrafficStream of %zu bytes: out of memory", len);
        return sm_errf(err, errlen, SM_ECORRUPT, "%zu bytes are not a valid TrafficStream protobuf", len);
    }
    if (may_have_field_zero(data, len) && has_field_zero(&ts->base, 0)) {
        protobuf_c_message_free_unpacked(&ts->base, pa);
        return sm_errf(err, errlen, SM_ECORRUPT, "%zu bytes are not a valid TrafficStream protobuf "
                       "(field number 0)", len);
    }
    *out = ts;
    return SM_OK;
}

int sm_ts_decode_max(const uint8_t *data, size_t len, size_t max, TrafficStream **out,
                     char *err, size_t errlen)
{
    struct alloc_state st = { false };
    ProtobufCAllocator a = { pb_alloc, pb_free, &st };
    /* a decoded tree is freed with the stateless allocator: same functions */
    return decode_with(&a, &st.failed, data, len, max, out, err, errlen);
}

/* ---- decoding into an arena ------------------------------------------------ */

/* protobuf-c allocates every message, repeated-field array and bytes value of
 * a record separately and frees them one by one: about a sixth of the
 * replayer's user-space instructions per request went to that (callgrind). */
struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char mem[];
};

struct sm_ts_arena {
    struct arena_chunk *head;
    bool failed;
};

#define ARENA_MIN_CHUNK (64u * 1024)
#define ARENA_KEEP_MAX (8u * 1024 * 1024)   /* one chunk this large at most is kept between records */

struct sm_ts_arena *sm_ts_arena_new(void)
{
    return sm_calloc(1, sizeof(struct sm_ts_arena));
}

static void arena_chunks_free(struct arena_chunk *c)
{
    while (c) {
        struct arena_chunk *n = c->next;
        sm_free(c);
        c = n;
    }
}

void sm_ts_arena_free(struct sm_ts_arena *a)
{
    if (a) {
        arena_chunks_free(a->head);
        sm_free(a);
    }
}

static void *arena_alloc(void *data, size_t n)
{
    struct sm_ts_arena *a = data;
    n = (n + 15) & ~(size_t)15;
    if (!n)
        n = 16;
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = c ? c->cap * 2 : ARENA_MIN_CHUNK;
        if (cap < n)
            cap = n;
        if (cap > SIZE_MAX - sizeof(*c) || !(c = sm_malloc(sizeof(*c) + cap))) {
            a->failed = true;
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    return p;
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p;   /* all at the next reset */
}

/* Ends the life of the previous record: one chunk is kept, sized for what the
 * previous record used (so the next similar one needs one chunk). */
static void arena_reset(struct sm_ts_arena *a)
{
    a->failed = false;
    struct arena_chunk *c = a->head;
    if (!c)
        return;
    if (!c->next) {
        c->used = 0;
        return;
    }
    size_t total = 0;
    for (struct arena_chunk *x = c; x; x = x->next)
        total += x->used;
    arena_chunks_free(c);
    a->head = NULL;
    if (total <= ARENA_KEEP_MAX && (c = sm_malloc(sizeof(*c) + total))) {
        c->cap = total;
        c->used = 0;
        c->next = NULL;
        a->head = c;
    }
}

/* ---- the fast path of sm_ts_decode_in() -----------------------------------
 *
 * protobuf-c scans a record into a table of members, looks each field up in
 * the descriptor, then allocates every message and copies every bytes value:
 * ~16 % of the replayer's user-space instructions per request (callgrind).
 * Records as writers make them (each singular field at most once, no unknown
 * fields, varints of at most 10 bytes, booleans of one byte) are decoded here
 * in one pass straight into the arena, bytes values pointing into the input.
 * Anything else is left to protobuf-c (SM_EAGAIN, nothing kept), so its rules
 * for the rest (merging a repeated message field, last-wins oneofs, unknown
 * fields, errors and their messages) stay its own. fuzz_trafficstream checks
 * that whatever is decoded here is what protobuf-c decodes. */

struct rd { const uint8_t *p, *end; };

/* a varint of at most maxlen bytes (a tenth byte only 0 or 1: no bits that
 * protobuf-c and a plain shift would treat differently) */
static bool rd_varint(struct rd *r, unsigned maxlen, uint64_t *out)
{
    const uint8_t *p = r->p;
    uint64_t v = 0;
    for (unsigned i = 0; i < maxlen && p < r->end; i++) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i == 9 && b > 1)
                return false;
            r->p = p;
            *out = v;
            return true;
        }
    }
    return false;
}

/* a tag of a field number 1-31 (ours go to 18; field 0 is protobuf-c's) */
static bool rd_tag(struct rd *r, uint32_t *field, unsigned *wire)
{
    uint64_t v;
    if (!rd_varint(r, 5, &v) || v < 8 || v >= 32u << 3)
        return false;
    *field = (uint32_t)(v >> 3);
    *wire = (unsigned)(v & 7);
    return true;
}

/* a length-prefixed value: as protobuf-c, a prefix of at most 5 bytes */
static bool rd_len(struct rd *r, struct rd *val)
{
    uint64_t n;
    if (!rd_varint(r, 5, &n) || n > INT32_MAX || n > (uint64_t)(r->end - r->p))
        return false;
    val->p = r->p;
    val->end = r->p + n;
    r->p = val->end;
    return true;
}

/* field descriptors by number for the two messages with many fields (found
 * by protobuf-c's binary search, that lookup was a fifth of this path) */
static const ProtobufCFieldDescriptor *stream_by_id[32], *obs_by_id[32];
static pthread_once_t by_id_once = PTHREAD_ONCE_INIT;

static void by_id_init(void)
{
    for (unsigned i = 0; i < traffic_stream__descriptor.n_fields; i++)
        stream_by_id[traffic_stream__descriptor.fields[i].id & 31] = &traffic_stream__descriptor.fields[i];
    for (unsigned i = 0; i < traffic_observation__descriptor.n_fields; i++)
        obs_by_id[traffic_observation__descriptor.fields[i].id & 31] = &traffic_observation__descriptor.fields[i];
}

/* the small messages (two fields at most): a look along the list */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d, uint32_t fn)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].id == fn)
            return &d->fields[i];
    return NULL;
}

static void *fast_msg(struct sm_ts_arena *a, const ProtobufCMessageDescriptor *d)
{
    void *m = arena_alloc(a, d->sizeof_message);
    if (m)
        d->message_init(m);
    return m;
}

/* One scalar, string or bytes field into msg (the oneof case is the caller's). */
static int fast_scalar(struct sm_ts_arena *a, struct rd *r, unsigned wire, const ProtobufCFieldDescriptor *f,
                       char *msg)
{
    void *dst = msg + f->offset;
    uint64_t v = 0;
    struct rd s;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL:
        if (wire != PROTOBUF_C_WIRE_TYPE_VARINT || !rd_varint(r, f->type == PROTOBUF_C_TYPE_BOOL ? 1 : 10, &v))
            return SM_EAGAIN;
        if (f->type == PROTOBUF_C_TYPE_INT32)
            *(int32_t *)dst = (int32_t)(uint32_t)v;
        else if (f->type == PROTOBUF_C_TYPE_INT64)
            *(int64_t *)dst = (int64_t)v;
        else if (f->type == PROTOBUF_C_TYPE_UINT64)
            *(uint64_t *)dst = v;
        else
            *(protobuf_c_boolean *)dst = v != 0;
        break;
    case PROTOBUF_C_TYPE_STRING: {
        if (wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || !rd_len(r, &s))
            return SM_EAGAIN;
        size_t n = (size_t)(s.end - s.p);
        char *str = arena_alloc(a, n + 1);
        if (!str)
            return SM_ENOMEM;
        memcpy(str, s.p, n);
        str[n] = 0;
        *(char **)dst = str;
        return SM_OK;    /* no has_ flag: the pointer says it */
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || !rd_len(r, &s))
            return SM_EAGAIN;
        ProtobufCBinaryData *bd = dst;
        bd->len = (size_t)(s.end - s.p);
        bd->data = bd->len ? (uint8_t *)(uintptr_t)s.p : NULL;   /* as protobuf-c: no data, no pointer */
        break;
    }
    default:
        return SM_EAGAIN;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        *(protobuf_c_boolean *)(msg + f->quantifier_offset) = 1;
    return SM_OK;
}

/* A message of scalar fields only: the observations' payloads, Timestamp. */
static int fast_scalars(struct sm_ts_arena *a, struct rd r, const ProtobufCMessageDescriptor *d, void **out)
{
    char *msg = fast_msg(a, d);
    if (!msg)
        return SM_ENOMEM;
    uint32_t seen = 0;
    while (r.p < r.end) {
        uint32_t fn;
        unsigned wire;
        if (!rd_tag(&r, &fn, &wire) || (seen & (1u << fn)))
            return SM_EAGAIN;
        seen |= 1u << fn;
        const ProtobufCFieldDescriptor *f = field_of(d, fn);
        if (!f || f->label == PROTOBUF_C_LABEL_REPEATED || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            return SM_EAGAIN;
        int rc = fast_scalar(a, &r, wire, f, msg);
        if (rc)
            return rc;
    }
    *out = msg;
    return SM_OK;
}

/* TrafficObservation and TrafficStream: scalars, singular messages (made of
 * scalars), one oneof, and TrafficStream's repeated subStream (field 2). */
static int fast_message(struct sm_ts_arena *a, struct rd r, const ProtobufCMessageDescriptor *d, void **out)
{
    bool top = d == &traffic_stream__descriptor;
    TrafficStream *ts = NULL;
    if (top) {
        /* count the observations first: the array is allocated once */
        size_t nobs = 0;
        for (struct rd c = r; c.p < c.end;) {
            uint32_t fn;
            unsigned wire;
            uint64_t v;
            struct rd s;
            if (!rd_tag(&c, &fn, &wire))
                return SM_EAGAIN;
            if (wire == PROTOBUF_C_WIRE_TYPE_VARINT ? !rd_varint(&c, 10, &v)
                : wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || !rd_len(&c, &s))
                return SM_EAGAIN;
            nobs += fn == 2;
        }
        if (!(ts = fast_msg(a, d)))
            return SM_ENOMEM;
        if (nobs && !(ts->substream = arena_alloc(a, nobs * sizeof(*ts->substream))))
            return SM_ENOMEM;
    }
    char *msg = top ? (char *)ts : fast_msg(a, d);
    if (!msg)
        return SM_ENOMEM;
    uint32_t seen = 0, *oneof_case = NULL;
    const ProtobufCFieldDescriptor *const *by_id = top ? stream_by_id : obs_by_id;
    while (r.p < r.end) {
        uint32_t fn;
        unsigned wire;
        if (!rd_tag(&r, &fn, &wire))
            return SM_EAGAIN;
        const ProtobufCFieldDescriptor *f = by_id[fn];   /* rd_tag: fn < 32 */
        if (!f)
            return SM_EAGAIN;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            struct rd s;
            void *obs;
            int rc;
            if (!top || fn != 2 || wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || !rd_len(&r, &s))
                return SM_EAGAIN;
            if ((rc = fast_message(a, s, &traffic_observation__descriptor, &obs)))
                return rc;
            ts->substream[ts->n_substream++] = obs;
            continue;
        }
        if (seen & (1u << fn))
            return SM_EAGAIN;
        seen |= 1u << fn;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            oneof_case = (uint32_t *)(msg + f->quantifier_offset);
            if (*oneof_case)
                return SM_EAGAIN;   /* a second member: protobuf-c's last-wins */
            *oneof_case = fn;
        }
        int rc;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            struct rd s;
            if (wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || !rd_len(&r, &s))
                return SM_EAGAIN;
            rc = fast_scalars(a, s, f->descriptor, (void **)(msg + f->offset));
        } else {
            rc = fast_scalar(a, &r, wire, f, msg);
        }
        if (rc)
            return rc;
    }
    *out = msg;
    return SM_OK;
}

int sm_ts_decode_fast(struct sm_ts_arena *a, const uint8_t *data, size_t len, TrafficStream **out)
{
    arena_reset(a);
    *out = NULL;
    pthread_once(&by_id_once, by_id_init);
    struct rd r = { data, data + len };
    void *m = NULL;
    int rc = fast_message(a, r, &traffic_stream__descriptor, &m);
    if (rc == SM_ENOMEM || a->failed)
        return SM_ENOMEM;
    if (rc)
        return rc;
    *out = m;
    return SM_OK;
}

int sm_ts_decode_in(struct sm_ts_arena *a, const uint8_t *data, size_t len, size_t max, TrafficStream **out,
                    char *err, size_t errlen)
{
    if (len <= max) {
        int rc = sm_ts_decode_fast(a, data, len, out);
        if (rc == SM_OK)
            return SM_OK;
        if (rc == SM_ENOMEM)
            return sm_errf(err, errlen, SM_ENOMEM, "TrafficStream of %zu bytes: out of memory", len);
    }
    arena_reset(a);
    ProtobufCAllocator pa = { arena_alloc, arena_free, a };
    return decode_with(&pa, &a->failed, data, len, max, out, err, errlen);
}

int sm_ts_decode(const uint8_t *data, size_t len, TrafficStream **out, char *err, size_t errlen)
{
    return sm_ts_decode_max(data, len, SM_TS_DECODE_MAX, out, err, errlen);
}

/* ---- reading observations ------------------------------------------------ */

enum sm_ts_kind sm_ts_obs_kind(const TrafficObservation *obs)
{
    switch (obs->capture_case) {
    case TRAFFIC_OBSERVATION__CAPTURE_BIND: return SM_TS_BIND;
    case TRAFFIC_OBSERVATION__CAPTURE_CONNECT: return SM_TS_CONNECT;
    case TRAFFIC_OBSERVATION__CAPTURE_READ: return SM_TS_READ;
    case TRAFFIC_OBSERVATION__CAPTURE_READ_SEGMENT: return SM_TS_READ_SEGMENT;
    case TRAFFIC_OBSERVATION__CAPTURE_REQUEST_RELEASED_DOWNSTREAM: return SM_TS_REQUEST_RELEASED;
    case TRAFFIC_OBSERVATION__CAPTURE_WRITE: return SM_TS_WRITE;
    case TRAFFIC_OBSERVATION__CAPTURE_WRITE_SEGMENT: return SM_TS_WRITE_SEGMENT;
    case TRAFFIC_OBSERVATION__CAPTURE_DISCONNECT: return SM_TS_DISCONNECT;
    case TRAFFIC_OBSERVATION__CAPTURE_CLOSE: return SM_TS_CLOSE;
    case TRAFFIC_OBSERVATION__CAPTURE_CONNECTION_EXCEPTION: return SM_TS_CONNECTION_EXCEPTION;
    case TRAFFIC_OBSERVATION__CAPTURE_SEGMENT_END: return SM_TS_SEGMENT_END;
    case TRAFFIC_OBSERVATION__CAPTURE_END_OF_MESSAGE_INDICATOR: return SM_TS_END_OF_MESSAGE;
    case TRAFFIC_OBSERVATION__CAPTURE_REQUEST_DROPPED: return SM_TS_REQUEST_DROPPED;
    default: return SM_TS_NONE;
    }
}

const char *sm_ts_kind_name(enum sm_ts_kind kind)
{
    switch (kind) {
    case SM_TS_NONE: return "unset";
    case SM_TS_BIND: return "bind";
    case SM_TS_CONNECT: return "connect";
    case SM_TS_READ: return "read";
    case SM_TS_READ_SEGMENT: return "readSegment";
    case SM_TS_REQUEST_RELEASED: return "requestReleasedDownstream";
    case SM_TS_WRITE: return "write";
    case SM_TS_WRITE_SEGMENT: return "writeSegment";
    case SM_TS_DISCONNECT: return "disconnect";
    case SM_TS_CLOSE: return "close";
    case SM_TS_CONNECTION_EXCEPTION: return "connectionException";
    case SM_TS_SEGMENT_END: return "segmentEnd";
    case SM_TS_END_OF_MESSAGE: return "endOfMessageIndicator";
    case SM_TS_REQUEST_DROPPED: return "requestDropped";
    }
    return "unknown";
}

bool sm_ts_obs_time_ns(const TrafficObservation *obs, int64_t *ns)
{
    if (!obs->ts) {
        *ns = 0;
        return false;
    }
    /* saturate instead of overflowing on absurd seconds */
    int64_t s = obs->ts->seconds;
    if (s > INT64_MAX / 1000000000 - 1)
        s = INT64_MAX / 1000000000 - 1;
    if (s < INT64_MIN / 1000000000 + 1)
        s = INT64_MIN / 1000000000 + 1;
    *ns = s * 1000000000 + obs->ts->nanos;
    return true;
}

static bool bd_out(const ProtobufCBinaryData *bd, const uint8_t **data, size_t *len)
{
    *data = bd->data;
    *len = bd->data ? bd->len : 0;
    return true;
}

bool sm_ts_obs_data(const TrafficObservation *obs, const uint8_t **data, size_t *len)
{
    switch (obs->capture_case) {
    case TRAFFIC_OBSERVATION__CAPTURE_READ: return bd_out(&obs->read->data, data, len);
    case TRAFFIC_OBSERVATION__CAPTURE_READ_SEGMENT: return bd_out(&obs->readsegment->data, data, len);
    case TRAFFIC_OBSERVATION__CAPTURE_WRITE: return bd_out(&obs->write->data, data, len);
    case TRAFFIC_OBSERVATION__CAPTURE_WRITE_SEGMENT: return bd_out(&obs->writesegment->data, data, len);
    case TRAFFIC_OBSERVATION__CAPTURE_CONNECTION_EXCEPTION: {
        const char *m = obs->connectionexception->message;
        *data = (const uint8_t *)m;
        *len = m ? strlen(m) : 0;
        return true;
    }
    default:
        *data = NULL;
        *len = 0;
        return false;
    }
}

bool sm_ts_obs_eom(const TrafficObservation *obs, int32_t *first_line_len, int32_t *headers_len)
{
    if (obs->capture_case != TRAFFIC_OBSERVATION__CAPTURE_END_OF_MESSAGE_INDICATOR) {
        *first_line_len = *headers_len = -1;
        return false;
    }
    const EndOfMessageIndication *e = obs->endofmessageindicator;
    *first_line_len = e->has_firstlinebytelength ? e->firstlinebytelength : -1;
    *headers_len = e->has_headersbytelength ? e->headersbytelength : -1;
    return true;
}

bool sm_ts_index(const TrafficStream *ts, int32_t *index, bool *last)
{
    switch (ts->index_case) {
    case TRAFFIC_STREAM__INDEX_NUMBER:
        *index = ts->number;
        *last = false;
        return true;
    case TRAFFIC_STREAM__INDEX_NUMBER_OF_THIS_LAST_CHUNK:
        *index = ts->numberofthislastchunk;
        *last = true;
        return true;
    default:
        *index = 0;
        *last = false;
        return false;
    }
}

/* ---- text dump (protobuf text format, as protoc --decode prints) --------- */

static void dump_escaped(FILE *out, const uint8_t *p, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        switch (c) {
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '"': fputs("\\\"", out); break;
        case '\'': fputs("\\'", out); break;
        case '\\': fputs("\\\\", out); break;
        default:
            if (c < 0x20 || c >= 0x7f)
                fprintf(out, "\\%03o", c);
            else
                fputc(c, out);
        }
    }
    fputc('"', out);
}

static void indent(FILE *out, int depth)
{
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

static void dump_bytes_msg(FILE *out, int d, const char *name, const char *field, bool has,
                           const ProtobufCBinaryData *bd)
{
    indent(out, d);
    fprintf(out, "%s {\n", name);
    if (has) {
        indent(out, d + 1);
        fprintf(out, "%s: ", field);
        dump_escaped(out, bd->data, bd->data ? bd->len : 0);
        fputc('\n', out);
    }
    indent(out, d);
    fputs("}\n", out);
}

static void dump_obs(FILE *out, const TrafficObservation *obs)
{
    const int d = 0;
    indent(out, d);
    fputs("subStream {\n", out);
    if (obs->ts) {
        indent(out, d + 1);
        fputs("ts {\n", out);
        if (obs->ts->seconds) {
            indent(out, d + 2);
            fprintf(out, "seconds: %" PRId64 "\n", obs->ts->seconds);
        }
        if (obs->ts->nanos) {
            indent(out, d + 2);
            fprintf(out, "nanos: %" PRId32 "\n", obs->ts->nanos);
        }
        indent(out, d + 1);
        fputs("}\n", out);
    }
    enum sm_ts_kind k = sm_ts_obs_kind(obs);
    const char *name = sm_ts_kind_name(k);
    switch (k) {
    case SM_TS_READ:
        dump_bytes_msg(out, d + 1, name, "data", obs->read->has_data, &obs->read->data);
        break;
    case SM_TS_READ_SEGMENT:
        dump_bytes_msg(out, d + 1, name, "data", obs->readsegment->has_data, &obs->readsegment->data);
        break;
    case SM_TS_WRITE:
        dump_bytes_msg(out, d + 1, name, "data", obs->write->has_data, &obs->write->data);
        break;
    case SM_TS_WRITE_SEGMENT:
        dump_bytes_msg(out, d + 1, name, "data", obs->writesegment->has_data, &obs->writesegment->data);
        break;
    case SM_TS_REQUEST_RELEASED:
        indent(out, d + 1);
        fprintf(out, "%s {\n", name);
        if (obs->requestreleaseddownstream->has_timedout) {
            indent(out, d + 2);
            fprintf(out, "timedOut: %s\n", obs->requestreleaseddownstream->timedout ? "true" : "false");
        }
        indent(out, d + 1);
        fputs("}\n", out);
        break;
    case SM_TS_CONNECTION_EXCEPTION:
        indent(out, d + 1);
        fprintf(out, "%s {\n", name);
        if (obs->connectionexception->message) {
            indent(out, d + 2);
            fputs("message: ", out);
            dump_escaped(out, (const uint8_t *)obs->connectionexception->message,
                         strlen(obs->connectionexception->message));
            fputc('\n', out);
        }
        indent(out, d + 1);
        fputs("}\n", out);
        break;
    case SM_TS_END_OF_MESSAGE: {
        const EndOfMessageIndication *e = obs->endofmessageindicator;
        indent(out, d + 1);
        fprintf(out, "%s {\n", name);
        if (e->has_firstlinebytelength) {
            indent(out, d + 2);
            fprintf(out, "firstLineByteLength: %" PRId32 "\n", e->firstlinebytelength);
        }
        if (e->has_headersbytelength) {
            indent(out, d + 2);
            fprintf(out, "headersByteLength: %" PRId32 "\n", e->headersbytelength);
        }
        indent(out, d + 1);
        fputs("}\n", out);
        break;
    }
    case SM_TS_NONE:
        break;
    default:
        indent(out, d + 1);
        fprintf(out, "%s {\n", name);
        indent(out, d + 1);
        fputs("}\n", out);
        break;
    }
    if (obs->has_manifestcycle) {
        indent(out, d + 1);
        fprintf(out, "manifestCycle: %" PRIu64 "\n", obs->manifestcycle);
    }
    if (obs->has_connectionobservationsequence) {
        indent(out, d + 1);
        fprintf(out, "connectionObservationSequence: %" PRIu64 "\n", obs->connectionobservationsequence);
    }
    indent(out, d);
    fputs("}\n", out);
}

void sm_ts_dump(FILE *out, const TrafficStream *ts)
{
    /* field-number order, as protoc prints */
    if (ts->connectionid) {
        fputs("connectionId: ", out);
        dump_escaped(out, (const uint8_t *)ts->connectionid, strlen(ts->connectionid));
        fputc('\n', out);
    }
    for (size_t i = 0; i < ts->n_substream; i++)
        dump_obs(out, ts->substream[i]);
    if (ts->index_case == TRAFFIC_STREAM__INDEX_NUMBER)
        fprintf(out, "number: %" PRId32 "\n", ts->number);
    else if (ts->index_case == TRAFFIC_STREAM__INDEX_NUMBER_OF_THIS_LAST_CHUNK)
        fprintf(out, "numberOfThisLastChunk: %" PRId32 "\n", ts->numberofthislastchunk);
    if (ts->nodeid) {
        fputs("nodeId: ", out);
        dump_escaped(out, (const uint8_t *)ts->nodeid, strlen(ts->nodeid));
        fputc('\n', out);
    }
    if (ts->has_priorrequestsreceived)
        fprintf(out, "priorRequestsReceived: %" PRId32 "\n", ts->priorrequestsreceived);
    if (ts->has_lastobservationwasunterminatedread)
        fprintf(out, "lastObservationWasUnterminatedRead: %s\n",
                ts->lastobservationwasunterminatedread ? "true" : "false");
    if (ts->has_partition)
        fprintf(out, "partition: %" PRId32 "\n", ts->partition);
}
