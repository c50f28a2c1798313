/* SMILE decoder: see smile.h. Format: FasterXML smile-format-specification 1.0.6
 * and docs/snapshot-format.md section 3.3. */
#include "smile/smile.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/utf8.h>
#include <sm/util.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARED_MAX 1024

struct ref { size_t off, len; };

struct parser {
    const uint8_t *p;
    size_t n, pos;
    bool share_names, share_values;
    struct ref *names, *vals;
    size_t nnames, nvals;
    unsigned max_depth;
    size_t max_events, events;
    rfs_smile_cb cb;
    void *arg;
    struct sm_buf scratch;
    char *err;
    size_t errlen;
};

static int corrupt(struct parser *P, size_t at, const char *what)
{
    return sm_errf(P->err, P->errlen, SM_ECORRUPT, "smile: %s at offset %zu", what, at);
}

static int emit(struct parser *P, struct rfs_smile_event *ev)
{
    if (++P->events > P->max_events)
        return sm_errf(P->err, P->errlen, SM_EFULL, "smile: more than %zu tokens", P->max_events);
    int rc = P->cb(P->arg, ev);
    if (rc && P->err && P->errlen && !P->err[0])
        sm_errf(P->err, P->errlen, rc, "smile: consumer failed at offset %zu: %s", ev->offset,
                sm_strerror(rc));
    return rc;
}

/* SMILE VInt: 7-bit groups MSB first, last byte has bit 7 set and 6 bits. */
static int read_vint(struct parser *P, unsigned bits, uint64_t *out)
{
    size_t start = P->pos;
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (P->pos >= P->n)
            return corrupt(P, start, "truncated VInt");
        uint8_t c = P->p[P->pos++];
        if (c & 0x80) {
            if (v >> (64 - 6))
                return corrupt(P, start, "VInt overflows 64 bits");
            v = (v << 6) | (c & 0x3f);
            if (bits < 64 && (v >> bits))
                return corrupt(P, start, "VInt out of range");
            *out = v;
            return SM_OK;
        }
        if (v >> (64 - 7))
            return corrupt(P, start, "VInt overflows 64 bits");
        v = (v << 7) | c;
    }
    return corrupt(P, start, "VInt longer than 10 bytes");
}

static int need(struct parser *P, size_t at, size_t n, const char *what)
{
    if (n > P->n - P->pos)
        return corrupt(P, at, what);
    return SM_OK;
}

/* Decodes a 7-bit encoded binary of raw length n into P->scratch. */
static int read_7bit(struct parser *P, size_t at, uint64_t n, size_t cap)
{
    if (n > cap)
        return sm_errf(P->err, P->errlen, SM_EFULL, "smile: binary of %llu bytes at offset %zu exceeds limit",
                       (unsigned long long)n, at);
    uint64_t full = n / 7, rest = n % 7;
    uint64_t enc = full * 8 + (rest ? rest + 1 : 0);
    if (enc > P->n - P->pos)
        return corrupt(P, at, "truncated 7-bit binary");
    sm_buf_reset(&P->scratch);
    int rc = sm_buf_reserve(&P->scratch, (size_t)n + 1);
    if (rc)
        return sm_errf(P->err, P->errlen, rc, "smile: binary of %llu bytes at offset %zu: %s",
                       (unsigned long long)n, at, sm_strerror(rc));
    uint8_t *o = P->scratch.data;
    const uint8_t *in = P->p + P->pos;
    for (uint64_t g = 0; g < full; g++, in += 8, o += 7) {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v = (v << 7) | (in[k] & 0x7f);
        for (int k = 6; k >= 0; k--) {
            o[k] = (uint8_t)v;
            v >>= 8;
        }
    }
    if (rest) {
        uint64_t v = 0;
        for (uint64_t k = 0; k < rest; k++)
            v = (v << 7) | (in[k] & 0x7f);
        v = (v << rest) | (in[rest] & ((1u << rest) - 1));
        for (int k = (int)rest - 1; k >= 0; k--) {
            o[k] = (uint8_t)v;
            v >>= 8;
        }
    }
    P->scratch.len = (size_t)n;
    P->pos += (size_t)enc;
    return SM_OK;
}

static void add_ref(struct ref *tab, size_t *count, size_t off, size_t len)
{
    if (*count >= SHARED_MAX)
        *count = 0;
    tab[*count].off = off;
    tab[*count].len = len;
    (*count)++;
}

/* Scans to the 0xfc end-of-string marker; returns the length before it. */
static int read_until_fc(struct parser *P, size_t at, size_t *len)
{
    const uint8_t *e = memchr(P->p + P->pos, 0xfc, P->n - P->pos);
    if (!e)
        return corrupt(P, at, "unterminated long string");
    *len = (size_t)(e - (P->p + P->pos));
    return SM_OK;
}

static int parse_value(struct parser *P, unsigned depth);

static int parse_object(struct parser *P, unsigned depth)
{
    for (;;) {
        size_t at = P->pos;
        if (P->pos >= P->n)
            return corrupt(P, at, "truncated object");
        uint8_t b = P->p[P->pos++];
        struct rfs_smile_event ev = { .type = RFS_SMILE_KEY, .offset = at };
        int rc;
        if (b == 0xfb) {
            ev.type = RFS_SMILE_END_OBJECT;
            return emit(P, &ev);
        } else if (b == 0x20) {
            ev.str = (const uint8_t *)"";
            ev.len = 0;
        } else if (b >= 0x30 && b <= 0x33) {
            if ((rc = need(P, at, 1, "truncated key reference")))
                return rc;
            size_t idx = ((size_t)(b & 3) << 8) | P->p[P->pos++];
            if (!P->share_names || idx >= P->nnames)
                return corrupt(P, at, "invalid shared key reference");
            ev.str = P->p + P->names[idx].off;
            ev.len = P->names[idx].len;
        } else if (b >= 0x40 && b <= 0x7f) {
            size_t idx = b & 0x3f;
            if (!P->share_names || idx >= P->nnames)
                return corrupt(P, at, "invalid shared key reference");
            ev.str = P->p + P->names[idx].off;
            ev.len = P->names[idx].len;
        } else if (b == 0x34 || (b >= 0x80 && b <= 0xf7)) {
            size_t len = 0;
            if (b == 0x34) {
                if ((rc = read_until_fc(P, at, &len)))
                    return rc;
            } else {
                len = b < 0xc0 ? (size_t)(b & 0x3f) + 1 : (size_t)(b & 0x3f) + 2;
                if ((rc = need(P, at, len, "truncated key")))
                    return rc;
            }
            ev.str = P->p + P->pos;
            ev.len = len;
            if (P->share_names)
                add_ref(P->names, &P->nnames, P->pos, len);
            P->pos += len + (b == 0x34 ? 1 : 0);
        } else {
            return corrupt(P, at, "invalid key token");
        }
        if ((rc = emit(P, &ev)))
            return rc;
        if ((rc = parse_value(P, depth)))
            return rc;
    }
}

static int parse_value(struct parser *P, unsigned depth)
{
    size_t at = P->pos;
    if (P->pos >= P->n)
        return corrupt(P, at, "truncated value");
    uint8_t b = P->p[P->pos++];
    struct rfs_smile_event ev = { .offset = at };
    uint64_t u;
    int rc;

    if (b >= 0x01 && b <= 0x1f) {
        size_t idx = (size_t)b - 1;
        if (!P->share_values || idx >= P->nvals)
            return corrupt(P, at, "invalid shared value reference");
        ev.type = RFS_SMILE_STRING;
        ev.str = P->p + P->vals[idx].off;
        ev.len = P->vals[idx].len;
        return emit(P, &ev);
    }
    if (b >= 0x40 && b <= 0xbf) {
        size_t len = 0;
        if (b < 0x60)      len = (size_t)(b & 0x1f) + 1;
        else if (b < 0x80) len = (size_t)(b & 0x1f) + 33;
        else if (b < 0xa0) len = (size_t)(b & 0x1f) + 2;
        else               len = (size_t)(b & 0x1f) + 34;
        if ((rc = need(P, at, len, "truncated string")))
            return rc;
        ev.type = RFS_SMILE_STRING;
        ev.str = P->p + P->pos;
        ev.len = len;
        if (P->share_values && len <= 64)
            add_ref(P->vals, &P->nvals, P->pos, len);
        P->pos += len;
        return emit(P, &ev);
    }
    if (b >= 0xc0 && b <= 0xdf) {
        unsigned z = b & 0x1f;
        ev.type = RFS_SMILE_INT;
        ev.i = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        return emit(P, &ev);
    }
    switch (b) {
    case 0x20:
        ev.type = RFS_SMILE_STRING;
        ev.str = (const uint8_t *)"";
        return emit(P, &ev);
    case 0x21: ev.type = RFS_SMILE_NULL; return emit(P, &ev);
    case 0x22: ev.type = RFS_SMILE_FALSE; return emit(P, &ev);
    case 0x23: ev.type = RFS_SMILE_TRUE; return emit(P, &ev);
    case 0x24:
        if ((rc = read_vint(P, 32, &u)))
            return rc;
        ev.type = RFS_SMILE_INT;
        ev.i = (int32_t)(uint32_t)((u >> 1) ^ (0u - (u & 1)));
        return emit(P, &ev);
    case 0x25:
        if ((rc = read_vint(P, 64, &u)))
            return rc;
        ev.type = RFS_SMILE_INT;
        ev.i = (int64_t)((u >> 1) ^ (0u - (u & 1)));
        return emit(P, &ev);
    case 0x26:
    case 0x2a: {
        int32_t scale = 0;
        if (b == 0x2a) {
            if ((rc = read_vint(P, 32, &u)))
                return rc;
            scale = (int32_t)(uint32_t)((u >> 1) ^ (0u - (u & 1)));
        }
        if ((rc = read_vint(P, 64, &u)))
            return rc;
        if (u == 0)
            return corrupt(P, at, "empty big number");
        if ((rc = read_7bit(P, at, u, RFS_SMILE_MAX_BIGNUM_BYTES)))
            return rc;
        ev.type = b == 0x26 ? RFS_SMILE_BIGINT : RFS_SMILE_BIGDEC;
        ev.str = P->scratch.data;
        ev.len = P->scratch.len;
        ev.scale = scale;
        return emit(P, &ev);
    }
    case 0x28: {
        if ((rc = need(P, at, 5, "truncated float")))
            return rc;
        uint64_t v = 0;
        for (int k = 0; k < 5; k++)
            v = (v << 7) | (P->p[P->pos++] & 0x7f);
        uint32_t bits = (uint32_t)v;
        float f;
        memcpy(&f, &bits, sizeof(f));
        ev.type = RFS_SMILE_FLOAT;
        ev.d = f;
        return emit(P, &ev);
    }
    case 0x29: {
        if ((rc = need(P, at, 10, "truncated double")))
            return rc;
        uint64_t v = 0;
        for (int k = 0; k < 10; k++)
            v = (v << 7) | (P->p[P->pos++] & 0x7f);
        double d;
        memcpy(&d, &v, sizeof(d));
        ev.type = RFS_SMILE_DOUBLE;
        ev.d = d;
        return emit(P, &ev);
    }
    case 0xe0:
    case 0xe4: {
        size_t len = 0;
        if ((rc = read_until_fc(P, at, &len)))
            return rc;
        ev.type = RFS_SMILE_STRING;
        ev.str = P->p + P->pos;
        ev.len = len;
        P->pos += len + 1;
        return emit(P, &ev);
    }
    case 0xe8:
        if ((rc = read_vint(P, 64, &u)))
            return rc;
        if ((rc = read_7bit(P, at, u, P->n)))   /* 7/8 of the input at most */
            return rc;
        ev.type = RFS_SMILE_BINARY;
        ev.str = P->scratch.data;
        ev.len = P->scratch.len;
        return emit(P, &ev);
    case 0xec: case 0xed: case 0xee: case 0xef: {
        if ((rc = need(P, at, 1, "truncated value reference")))
            return rc;
        size_t idx = ((size_t)(b & 3) << 8) | P->p[P->pos++];
        if (!P->share_values || idx >= P->nvals)
            return corrupt(P, at, "invalid shared value reference");
        ev.type = RFS_SMILE_STRING;
        ev.str = P->p + P->vals[idx].off;
        ev.len = P->vals[idx].len;
        return emit(P, &ev);
    }
    case 0xfd:
        if ((rc = read_vint(P, 64, &u)))
            return rc;
        if (u > P->n - P->pos)
            return corrupt(P, at, "truncated raw binary");
        ev.type = RFS_SMILE_BINARY;
        ev.str = P->p + P->pos;
        ev.len = (size_t)u;
        P->pos += (size_t)u;
        return emit(P, &ev);
    case 0xf8:
    case 0xfa:
        if (depth >= P->max_depth)
            return sm_errf(P->err, P->errlen, SM_EFULL, "smile: nesting deeper than %u at offset %zu",
                           P->max_depth, at);
        ev.type = b == 0xf8 ? RFS_SMILE_START_ARRAY : RFS_SMILE_START_OBJECT;
        if ((rc = emit(P, &ev)))
            return rc;
        if (b == 0xfa)
            return parse_object(P, depth + 1);
        for (;;) {
            if (P->pos >= P->n)
                return corrupt(P, P->pos, "truncated array");
            if (P->p[P->pos] == 0xf9) {
                struct rfs_smile_event end = { .type = RFS_SMILE_END_ARRAY, .offset = P->pos++ };
                return emit(P, &end);
            }
            if ((rc = parse_value(P, depth + 1)))
                return rc;
        }
    default:
        return corrupt(P, at, "invalid value token");
    }
}

bool rfs_smile_detect(const void *data, size_t len)
{
    const uint8_t *p = data;
    return len >= 4 && p[0] == 0x3a && p[1] == 0x29 && p[2] == 0x0a && (p[3] & 0xf0) == 0;
}

int rfs_smile_parse(const void *data, size_t len, const struct rfs_smile_limits *lim,
                    rfs_smile_cb cb, void *arg, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (len < 4 || memcmp(data, ":)\n", 3))
        return sm_errf(err, errlen, SM_ECORRUPT, "smile: missing header");
    const uint8_t *p = data;
    if (p[3] & 0xf0)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "smile: version %u not supported", p[3] >> 4);
    struct parser P = {
        .p = p, .n = len, .pos = 4,
        .share_names = (p[3] & 0x01) != 0, .share_values = (p[3] & 0x02) != 0,
        .max_depth = lim && lim->max_depth ? lim->max_depth : RFS_SMILE_MAX_DEPTH_DEFAULT,
        .max_events = lim && lim->max_events ? lim->max_events : RFS_SMILE_MAX_EVENTS_DEFAULT,
        .cb = cb, .arg = arg, .err = err, .errlen = errlen,
    };
    sm_buf_init(&P.scratch, len + 16);
    int rc = SM_OK;
    if (P.share_names && !(P.names = sm_calloc(SHARED_MAX, sizeof(struct ref))))
        rc = SM_ENOMEM;
    if (!rc && P.share_values && !(P.vals = sm_calloc(SHARED_MAX, sizeof(struct ref))))
        rc = SM_ENOMEM;
    if (!rc)
        rc = parse_value(&P, 0);
    if (!rc && P.pos < P.n && P.p[P.pos] == 0xff)
        P.pos++;
    if (!rc && P.pos != P.n)
        rc = corrupt(&P, P.pos, "trailing bytes after document");
    sm_buf_free(&P.scratch);
    sm_free(P.names);
    sm_free(P.vals);
    return rc;
}

/* ---- number formatting shared by the consumers ---- */

/* Decimal text of a two's complement big-endian integer. */
int rfs_json_append_bigint(struct sm_buf *out, const uint8_t *mag, size_t n)
{
    bool neg = n && (mag[0] & 0x80);
    size_t nl = (n + 3) / 4;
    uint32_t *limbs = sm_calloc(nl ? nl : 1, sizeof(uint32_t));   /* little-endian limbs */
    char *digits = sm_malloc(n * 3 + 16);
    int rc = SM_OK;
    if (!limbs || !digits) {
        rc = SM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t bit = (n - 1 - i) * 8;
        uint8_t v = neg ? (uint8_t)~mag[i] : mag[i];
        limbs[bit / 32] |= (uint32_t)v << (bit % 32);
    }
    if (neg) {   /* two's complement: -(~x + 1) */
        for (size_t i = 0; i < nl; i++)
            if (++limbs[i] != 0)
                break;
    }
    size_t nd = 0, top = nl;
    while (top && !limbs[top - 1])
        top--;
    while (top) {
        uint64_t r = 0;
        for (size_t i = top; i-- > 0;) {
            uint64_t cur = (r << 32) | limbs[i];
            limbs[i] = (uint32_t)(cur / 1000000000u);
            r = cur % 1000000000u;
        }
        while (top && !limbs[top - 1])
            top--;
        for (int k = 0; k < 9; k++) {
            digits[nd++] = (char)('0' + r % 10);
            r /= 10;
            if (!top && !r)
                break;
        }
    }
    if (!nd)
        digits[nd++] = '0';
    if (neg && (rc = sm_buf_append(out, "-", 1)))
        goto out;
    for (size_t i = nd; i-- > 0;)
        if ((rc = sm_buf_append(out, &digits[i], 1)))
            goto out;
out:
    sm_free(limbs);
    sm_free(digits);
    return rc;
}

/* Java BigDecimal.toString() of unscaled * 10^-scale. */
static int bigdec_to_text(const uint8_t *mag, size_t n, int32_t scale, struct sm_buf *out)
{
    struct sm_buf d;
    sm_buf_init(&d, n * 3 + 32);
    int rc = rfs_json_append_bigint(&d, mag, n);
    if (rc) {
        sm_buf_free(&d);
        return rc;
    }
    const char *s = (const char *)d.data;
    size_t len = d.len;
    bool neg = len && s[0] == '-';
    if (neg) {
        s++;
        len--;
    }
    int64_t adjusted = -(int64_t)scale + (int64_t)(len - 1);
    if (neg && (rc = sm_buf_append(out, "-", 1)))
        goto out;
    if (scale == 0) {
        rc = sm_buf_append(out, s, len);
    } else if (scale > 0 && adjusted >= -6) {
        if ((size_t)scale >= len) {
            if ((rc = sm_buf_append(out, "0.", 2)))
                goto out;
            for (size_t i = 0; i < (size_t)scale - len; i++)
                if ((rc = sm_buf_append(out, "0", 1)))
                    goto out;
            rc = sm_buf_append(out, s, len);
        } else {
            if ((rc = sm_buf_append(out, s, len - (size_t)scale)) || (rc = sm_buf_append(out, ".", 1)))
                goto out;
            rc = sm_buf_append(out, s + len - (size_t)scale, (size_t)scale);
        }
    } else {
        if ((rc = sm_buf_append(out, s, 1)))
            goto out;
        if (len > 1 && ((rc = sm_buf_append(out, ".", 1)) || (rc = sm_buf_append(out, s + 1, len - 1))))
            goto out;
        rc = sm_buf_printf(out, "E%s%lld", adjusted >= 0 ? "+" : "", (long long)adjusted);
    }
out:
    sm_buf_free(&d);
    return rc;
}

/* Java Double.toString / Float.toString layout over the shortest round-trip digits. */
int rfs_json_append_double(struct sm_buf *out, double v, bool is_float)
{
    if (isnan(v))
        return sm_buf_append_str(out, "\"NaN\"");
    if (isinf(v))
        return sm_buf_append_str(out, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    if (v == 0)
        return sm_buf_append_str(out, signbit(v) ? "-0.0" : "0.0");
    char tmp[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
            break;
    }
    /* tmp = [-]d.ddde[+-]xx */
    char digits[32];
    size_t nd = 0;
    const char *q = tmp;
    bool neg = *q == '-';
    if (neg)
        q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < sizeof(digits) - 1)
            digits[nd++] = *q;
    int exp10 = *q == 'e' ? (int)strtol(q + 1, NULL, 10) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    int rc = SM_OK;
    if (neg && (rc = sm_buf_append(out, "-", 1)))
        return rc;
    double a = fabs(v);
    if (a >= 1e-3 && a < 1e7) {
        if (exp10 >= 0) {
            for (int i = 0; i <= exp10; i++)
                if ((rc = sm_buf_append(out, (size_t)i < nd ? &digits[i] : "0", 1)))
                    return rc;
            if ((rc = sm_buf_append(out, ".", 1)))
                return rc;
            if ((size_t)exp10 + 1 < nd)
                return sm_buf_append(out, digits + exp10 + 1, nd - (size_t)exp10 - 1);
            return sm_buf_append(out, "0", 1);
        }
        if ((rc = sm_buf_append(out, "0.", 2)))
            return rc;
        for (int i = 0; i < -exp10 - 1; i++)
            if ((rc = sm_buf_append(out, "0", 1)))
                return rc;
        return sm_buf_append(out, digits, nd);
    }
    if ((rc = sm_buf_append(out, digits, 1)) || (rc = sm_buf_append(out, ".", 1)))
        return rc;
    if ((rc = sm_buf_append(out, nd > 1 ? digits + 1 : "0", nd > 1 ? nd - 1 : 1)))
        return rc;
    return sm_buf_printf(out, "E%d", exp10);
}

int rfs_json_append_string(struct sm_buf *out, const uint8_t *s, size_t n)
{
    int rc = sm_buf_append(out, "\"", 1);
    if (!rc)
        rc = rfs_json_append_escaped(out, s, n);
    if (!rc)
        rc = sm_buf_append(out, "\"", 1);
    return rc;
}

int rfs_json_append_escaped(struct sm_buf *out, const uint8_t *s, size_t n)
{
    int rc = SM_OK;
    size_t run = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        uint8_t c = s[i];
        const char *esc = NULL;
        char ubuf[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
                esc = ubuf;
            }
        }
        if (!esc)
            continue;
        rc = sm_buf_append(out, s + run, i - run);
        if (!rc)
            rc = sm_buf_append_str(out, esc);
        run = i + 1;
    }
    if (!rc)
        rc = sm_buf_append(out, s + run, n - run);
    return rc;
}

/* ---- JSON text consumer ---- */

struct json_writer {
    struct sm_buf *out;
    bool need_comma, after_key;
};

static int jw_sep(struct json_writer *w)
{
    int rc = SM_OK;
    if (w->need_comma && !w->after_key)
        rc = sm_buf_append(w->out, ",", 1);
    w->after_key = false;
    return rc;
}

static int jw_base64(struct sm_buf *out, const uint8_t *p, size_t n)
{
    int rc = sm_buf_reserve(out, sm_base64_enc_len(n) + 3);
    if (rc)
        return rc;
    out->data[out->len++] = '"';
    out->len += sm_base64_encode(p, n, (char *)out->data + out->len);
    out->data[out->len++] = '"';
    return SM_OK;
}

static int jw_cb(void *arg, const struct rfs_smile_event *ev)
{
    struct json_writer *w = arg;
    struct sm_buf *o = w->out;
    int rc;
    switch (ev->type) {
    case RFS_SMILE_END_OBJECT:
    case RFS_SMILE_END_ARRAY:
        w->need_comma = true;
        w->after_key = false;
        return sm_buf_append(o, ev->type == RFS_SMILE_END_OBJECT ? "}" : "]", 1);
    case RFS_SMILE_KEY:
        if (w->need_comma && (rc = sm_buf_append(o, ",", 1)))
            return rc;
        if (!sm_utf8_valid(ev->str, ev->len))
            return SM_ECORRUPT;
        if ((rc = rfs_json_append_string(o, ev->str, ev->len)) || (rc = sm_buf_append(o, ":", 1)))
            return rc;
        w->after_key = true;
        return SM_OK;
    default:
        break;
    }
    if ((rc = jw_sep(w)))
        return rc;
    switch (ev->type) {
    case RFS_SMILE_START_OBJECT:
    case RFS_SMILE_START_ARRAY:
        w->need_comma = false;
        return sm_buf_append(o, ev->type == RFS_SMILE_START_OBJECT ? "{" : "[", 1);
    case RFS_SMILE_STRING:
        if (!sm_utf8_valid(ev->str, ev->len))
            return SM_ECORRUPT;
        rc = rfs_json_append_string(o, ev->str, ev->len);
        break;
    case RFS_SMILE_INT: rc = sm_buf_printf(o, "%lld", (long long)ev->i); break;
    case RFS_SMILE_BIGINT: rc = rfs_json_append_bigint(o, ev->str, ev->len); break;
    case RFS_SMILE_BIGDEC: rc = bigdec_to_text(ev->str, ev->len, ev->scale, o); break;
    case RFS_SMILE_FLOAT: rc = rfs_json_append_double(o, ev->d, true); break;
    case RFS_SMILE_DOUBLE: rc = rfs_json_append_double(o, ev->d, false); break;
    case RFS_SMILE_TRUE: rc = sm_buf_append_str(o, "true"); break;
    case RFS_SMILE_FALSE: rc = sm_buf_append_str(o, "false"); break;
    case RFS_SMILE_NULL: rc = sm_buf_append_str(o, "null"); break;
    case RFS_SMILE_BINARY: rc = jw_base64(o, ev->str, ev->len); break;
    default: rc = SM_EINVAL; break;
    }
    w->need_comma = true;
    return rc;
}

int rfs_smile_to_json(const void *data, size_t len, const struct rfs_smile_limits *lim,
                      struct sm_buf *out, char *err, size_t errlen)
{
    struct json_writer w = { .out = out };
    size_t start = out->len;
    int rc = rfs_smile_parse(data, len, lim, jw_cb, &w, err, errlen);
    if (rc)
        out->len = start;
    return rc;
}

/* ---- jansson consumer ---- */

struct jb {
    json_t **stack;
    unsigned depth, cap;
    json_t *root;
    struct sm_buf key;
    bool have_key;
};

static int jb_add(struct jb *b, json_t *v)
{
    if (!v)
        return SM_ECORRUPT;   /* jansson rejects invalid UTF-8 or is out of memory */
    if (!b->depth) {
        if (b->root) {
            json_decref(v);
            return SM_ECORRUPT;
        }
        b->root = v;
        return SM_OK;
    }
    json_t *top = b->stack[b->depth - 1];
    int r;
    if (json_is_object(top)) {
        if (!b->have_key) {
            json_decref(v);
            return SM_ECORRUPT;
        }
        r = json_object_setn_new(top, (const char *)b->key.data, b->key.len, v);
        b->have_key = false;
    } else {
        r = json_array_append_new(top, v);
    }
    return r ? SM_ECORRUPT : SM_OK;
}

static json_t *bignum_real(const struct rfs_smile_event *ev)
{
    struct sm_buf t;
    sm_buf_init(&t, ev->len * 3 + 64);
    int rc = ev->type == RFS_SMILE_BIGINT ? rfs_json_append_bigint(&t, ev->str, ev->len)
                                          : bigdec_to_text(ev->str, ev->len, ev->scale, &t);
    json_t *v = NULL;
    if (!rc && !sm_buf_append(&t, "", 1)) {
        const char *s = (const char *)t.data;
        if (ev->type == RFS_SMILE_BIGINT) {
            int64_t i;
            if (sm_parse_i64(s, INT64_MIN, INT64_MAX, &i) == SM_OK)
                v = json_integer(i);
        }
        if (!v)
            v = json_real(strtod(s, NULL));
    }
    sm_buf_free(&t);
    return v;
}

static int jb_cb(void *arg, const struct rfs_smile_event *ev)
{
    struct jb *b = arg;
    json_t *v = NULL;
    switch (ev->type) {
    case RFS_SMILE_START_OBJECT:
    case RFS_SMILE_START_ARRAY: {
        v = ev->type == RFS_SMILE_START_OBJECT ? json_object() : json_array();
        if (!v)
            return SM_ENOMEM;
        json_incref(v);
        int rc = jb_add(b, v);
        if (rc) {
            json_decref(v);
            return rc;
        }
        if (b->depth == b->cap) {
            unsigned ncap = b->cap ? b->cap * 2 : 16;
            json_t **ns = sm_realloc(b->stack, ncap * sizeof(*ns));
            if (!ns) {
                json_decref(v);
                return SM_ENOMEM;
            }
            b->stack = ns;
            b->cap = ncap;
        }
        b->stack[b->depth++] = v;   /* holds the extra reference */
        return SM_OK;
    }
    case RFS_SMILE_END_OBJECT:
    case RFS_SMILE_END_ARRAY:
        if (!b->depth)
            return SM_ECORRUPT;
        json_decref(b->stack[--b->depth]);
        return SM_OK;
    case RFS_SMILE_KEY:
        sm_buf_reset(&b->key);
        if (sm_buf_append(&b->key, ev->str, ev->len) || sm_buf_append(&b->key, "", 1))
            return SM_ENOMEM;
        b->key.len--;
        b->have_key = true;
        return SM_OK;
    case RFS_SMILE_STRING: v = json_stringn((const char *)ev->str, ev->len); break;
    case RFS_SMILE_INT: v = json_integer(ev->i); break;
    case RFS_SMILE_FLOAT:
    case RFS_SMILE_DOUBLE: v = json_real(ev->d); break;
    case RFS_SMILE_BIGINT:
    case RFS_SMILE_BIGDEC: v = bignum_real(ev); break;
    case RFS_SMILE_TRUE: v = json_true(); break;
    case RFS_SMILE_FALSE: v = json_false(); break;
    case RFS_SMILE_NULL: v = json_null(); break;
    case RFS_SMILE_BINARY: {
        char *s = sm_malloc(sm_base64_enc_len(ev->len) + 1);
        if (!s)
            return SM_ENOMEM;
        size_t n = sm_base64_encode(ev->str, ev->len, s);
        v = json_stringn(s, n);
        sm_free(s);
        break;
    }
    }
    return jb_add(b, v);
}

int rfs_smile_to_jansson(const void *data, size_t len, const struct rfs_smile_limits *lim,
                         json_t **out, char *err, size_t errlen)
{
    struct jb b = { 0 };
    sm_buf_init(&b.key, 1 << 20);
    int rc = rfs_smile_parse(data, len, lim, jb_cb, &b, err, errlen);
    while (b.depth)
        json_decref(b.stack[--b.depth]);
    sm_free(b.stack);
    sm_buf_free(&b.key);
    if (rc) {
        json_decref(b.root);
        return rc;
    }
    *out = b.root;
    return SM_OK;
}
