/* CBOR -> JSON text over libcbor's streaming decoder (cbor_json.h). */
#include "repo/cbor_json.h"

#include "smile/smile.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/utf8.h>
#include <sm/util.h>

#include <cbor.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CBOR_MAX_DEPTH 256

struct frame {
    bool map;
    bool indefinite;
    uint64_t remaining;          /* items left (2 per map pair) for definite containers */
    uint64_t count;              /* items seen */
};

struct conv {
    struct sm_buf *out;
    struct frame stack[CBOR_MAX_DEPTH];
    unsigned depth;
    bool done;                   /* the top-level item is complete */
    int rc;
    const char *why;
    uint64_t tag;                /* pending tag of the next item (0 = none) */
    bool has_tag;
    /* indefinite string being assembled: 0 none, 1 text, 2 bytes */
    int in_str;
    bool str_is_key;
    uint64_t str_tag;
    struct sm_buf bytes;         /* byte string chunks */
};

static void failv(struct conv *c, int rc, const char *why)
{
    if (!c->rc) {
        c->rc = rc;
        c->why = why;
    }
}

static int put(struct conv *c, const char *s, size_t n)
{
    int rc = sm_buf_append(c->out, s, n);
    if (rc)
        failv(c, rc, "output too large");
    return rc;
}

/* Before an item: separators; tells whether the item is a map key. */
static bool begin_item(struct conv *c, bool *is_key)
{
    *is_key = false;
    if (c->rc)
        return false;
    if (c->in_str) {
        failv(c, SM_ECORRUPT, "item inside an indefinite string");
        return false;
    }
    if (!c->depth) {
        if (c->done) {
            failv(c, SM_ECORRUPT, "more than one top-level item");
            return false;
        }
        return true;
    }
    struct frame *f = &c->stack[c->depth - 1];
    if (f->map) {
        if (f->count % 2 == 0) {
            *is_key = true;
            if (f->count && put(c, ",", 1))
                return false;
        } else if (put(c, ":", 1)) {
            return false;
        }
    } else if (f->count && put(c, ",", 1)) {
        return false;
    }
    return true;
}

/* After an item: count it; close finished definite containers. */
static void end_item(struct conv *c)
{
    c->has_tag = false;
    while (c->depth) {
        struct frame *f = &c->stack[c->depth - 1];
        f->count++;
        if (f->indefinite || --f->remaining)
            return;
        if (put(c, f->map ? "}" : "]", 1))
            return;
        c->depth--;
    }
    c->done = true;
}

static void scalar_text(struct conv *c, const char *text, bool quote_if_key)
{
    bool key;
    if (!begin_item(c, &key))
        return;
    if (key && !quote_if_key) {
        failv(c, SM_EUNSUPPORTED, "map key is not a string or integer");
        return;
    }
    if (key && put(c, "\"", 1))
        return;
    if (put(c, text, strlen(text)))
        return;
    if (key && put(c, "\"", 1))
        return;
    end_item(c);
}

static void on_uint(struct conv *c, uint64_t v)
{
    char t[32];
    snprintf(t, sizeof(t), "%" PRIu64, v);
    scalar_text(c, t, true);
}

static void on_negint(struct conv *c, uint64_t n)   /* value = -1 - n */
{
    char t[32];
    if (n == UINT64_MAX)
        snprintf(t, sizeof(t), "-18446744073709551616");
    else
        snprintf(t, sizeof(t), "-%" PRIu64, n + 1);
    scalar_text(c, t, true);
}

static void cb_u8(void *ctx, uint8_t v) { on_uint(ctx, v); }
static void cb_u16(void *ctx, uint16_t v) { on_uint(ctx, v); }
static void cb_u32(void *ctx, uint32_t v) { on_uint(ctx, v); }
static void cb_u64(void *ctx, uint64_t v) { on_uint(ctx, v); }
static void cb_n8(void *ctx, uint8_t v) { on_negint(ctx, v); }
static void cb_n16(void *ctx, uint16_t v) { on_negint(ctx, v); }
static void cb_n32(void *ctx, uint32_t v) { on_negint(ctx, v); }
static void cb_n64(void *ctx, uint64_t v) { on_negint(ctx, v); }

/* A complete byte string: base64, or an exact integer under tag 2/3. */
static void emit_bytes(struct conv *c, const uint8_t *p, size_t n, bool tagged, uint64_t tag)
{
    struct sm_buf *o = c->out;
    int rc;
    if (tagged && (tag == 2 || tag == 3)) {
        /* tag 2: unsigned magnitude; tag 3: -1 - magnitude = ~magnitude in two's complement */
        uint8_t *t = sm_malloc(n + 1);
        if (!t) {
            failv(c, SM_ENOMEM, "out of memory");
            return;
        }
        t[0] = tag == 2 ? 0x00 : 0xff;
        for (size_t i = 0; i < n; i++)
            t[i + 1] = tag == 2 ? p[i] : (uint8_t)~p[i];
        rc = rfs_json_append_bigint(o, t, n + 1);
        sm_free(t);
    } else {
        rc = sm_buf_reserve(o, sm_base64_enc_len(n) + 3);
        if (!rc) {
            o->data[o->len++] = '"';
            o->len += sm_base64_encode(p, n, (char *)o->data + o->len);
            o->data[o->len++] = '"';
        }
    }
    if (rc)
        failv(c, rc, "output too large");
}

static void cb_bytes(void *ctx, cbor_data p, size_t n)
{
    struct conv *c = ctx;
    if (c->rc)
        return;
    if (c->in_str == 2) {
        if (sm_buf_append(&c->bytes, p, n))
            failv(c, SM_EFULL, "byte string too large");
        return;
    }
    bool key;
    bool tagged = c->has_tag;
    uint64_t tag = c->tag;
    if (!begin_item(c, &key))
        return;
    if (key) {
        failv(c, SM_EUNSUPPORTED, "map key is a byte string");
        return;
    }
    emit_bytes(c, p, n, tagged, tag);
    if (!c->rc)
        end_item(c);
}

static void cb_bytes_start(void *ctx)
{
    struct conv *c = ctx;
    bool key;
    c->str_tag = c->has_tag ? c->tag : 0;
    if (!begin_item(c, &key))
        return;
    if (key) {
        failv(c, SM_EUNSUPPORTED, "map key is a byte string");
        return;
    }
    c->in_str = 2;
    sm_buf_reset(&c->bytes);
}

static void cb_string(void *ctx, cbor_data p, size_t n)
{
    struct conv *c = ctx;
    if (c->rc)
        return;
    if (!sm_utf8_valid(p, n)) {
        failv(c, SM_ECORRUPT, "text string is not valid UTF-8");
        return;
    }
    if (c->in_str == 1) {
        if (rfs_json_append_escaped(c->out, p, n))
            failv(c, SM_EFULL, "output too large");
        return;
    }
    if (c->in_str) {
        failv(c, SM_ECORRUPT, "text chunk inside a byte string");
        return;
    }
    bool key;
    if (!begin_item(c, &key))
        return;
    if (rfs_json_append_string(c->out, p, n)) {
        failv(c, SM_EFULL, "output too large");
        return;
    }
    end_item(c);
}

static void cb_string_start(void *ctx)
{
    struct conv *c = ctx;
    bool key;
    if (!begin_item(c, &key))
        return;
    c->in_str = 1;
    c->str_is_key = key;
    put(c, "\"", 1);
}

static void open_container(struct conv *c, bool map, bool indefinite, size_t size)
{
    bool key;
    if (!begin_item(c, &key))
        return;
    if (key) {
        failv(c, SM_EUNSUPPORTED, "map key is an array or map");
        return;
    }
    if (put(c, map ? "{" : "[", 1))
        return;
    if (!indefinite && size == 0) {
        if (!put(c, map ? "}" : "]", 1))
            end_item(c);
        return;
    }
    if (c->depth >= CBOR_MAX_DEPTH) {
        failv(c, SM_EFULL, "nesting deeper than 256");
        return;
    }
    c->has_tag = false;
    struct frame *f = &c->stack[c->depth++];
    f->map = map;
    f->indefinite = indefinite;
    f->remaining = map ? (uint64_t)size * 2 : size;
    f->count = 0;
}

static void cb_array(void *ctx, size_t n) { open_container(ctx, false, false, n); }
static void cb_indef_array(void *ctx) { open_container(ctx, false, true, 0); }
static void cb_map(void *ctx, size_t n) { open_container(ctx, true, false, n); }
static void cb_indef_map(void *ctx) { open_container(ctx, true, true, 0); }

static void cb_break(void *ctx)
{
    struct conv *c = ctx;
    if (c->rc)
        return;
    if (c->in_str == 1) {
        c->in_str = 0;
        if (!put(c, "\"", 1))
            end_item(c);
        return;
    }
    if (c->in_str == 2) {
        c->in_str = 0;
        emit_bytes(c, c->bytes.data, c->bytes.len, c->str_tag == 2 || c->str_tag == 3, c->str_tag);
        if (!c->rc)
            end_item(c);
        return;
    }
    if (!c->depth || !c->stack[c->depth - 1].indefinite) {
        failv(c, SM_ECORRUPT, "break outside an indefinite item");
        return;
    }
    struct frame *f = &c->stack[c->depth - 1];
    if (f->map && f->count % 2) {
        failv(c, SM_ECORRUPT, "map key without a value");
        return;
    }
    if (put(c, f->map ? "}" : "]", 1))
        return;
    c->depth--;
    end_item(c);
}

static void cb_tag(void *ctx, uint64_t tag)
{
    struct conv *c = ctx;
    c->tag = tag;
    c->has_tag = true;
}

static void on_double(struct conv *c, double v, bool is_float)
{
    bool key;
    if (!begin_item(c, &key))
        return;
    if (key) {
        failv(c, SM_EUNSUPPORTED, "map key is a float");
        return;
    }
    if (rfs_json_append_double(c->out, v, is_float)) {
        failv(c, SM_EFULL, "output too large");
        return;
    }
    end_item(c);
}

static void cb_f2(void *ctx, float v) { on_double(ctx, v, true); }
static void cb_f4(void *ctx, float v) { on_double(ctx, v, true); }
static void cb_f8(void *ctx, double v) { on_double(ctx, v, false); }
static void cb_null(void *ctx) { scalar_text(ctx, "null", false); }
static void cb_bool(void *ctx, bool v) { scalar_text(ctx, v ? "true" : "false", false); }

static const struct cbor_callbacks callbacks = {
    .uint8 = cb_u8, .uint16 = cb_u16, .uint32 = cb_u32, .uint64 = cb_u64,
    .negint8 = cb_n8, .negint16 = cb_n16, .negint32 = cb_n32, .negint64 = cb_n64,
    .byte_string_start = cb_bytes_start, .byte_string = cb_bytes,
    .string = cb_string, .string_start = cb_string_start,
    .indef_array_start = cb_indef_array, .array_start = cb_array,
    .indef_map_start = cb_indef_map, .map_start = cb_map,
    .tag = cb_tag, .float2 = cb_f2, .float4 = cb_f4, .float8 = cb_f8,
    .undefined = cb_null, .null = cb_null, .boolean = cb_bool, .indef_break = cb_break,
};

int rfs_cbor_to_json(const void *data, size_t len, struct sm_buf *out, char *err, size_t errlen)
{
    struct conv c = { .out = out };
    sm_buf_init(&c.bytes, len + 1);
    size_t start = out->len, pos = 0;
    const uint8_t *p = data;
    while (!c.rc && !c.done) {
        if (pos >= len) {
            failv(&c, SM_ECORRUPT, "truncated document");
            break;
        }
        struct cbor_decoder_result r = cbor_stream_decode(p + pos, len - pos, &callbacks, &c);
        if (r.status == CBOR_DECODER_NEDATA) {
            failv(&c, SM_ECORRUPT, "truncated item");
            break;
        }
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0) {
            failv(&c, SM_ECORRUPT, "malformed item");
            break;
        }
        pos += r.read;
    }
    if (!c.rc && pos != len)
        failv(&c, SM_ECORRUPT, "trailing bytes after the document");
    sm_buf_free(&c.bytes);
    if (c.rc) {
        out->len = start;
        return sm_errf(err, errlen, c.rc, "cbor: %s at offset %zu", c.why, pos);
    }
    return SM_OK;
}
