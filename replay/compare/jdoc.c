/* In-place JSON parser into an arena (see jdoc.h). */
#include "compare/jdoc.h"

#include <sm/mem.h>
#include <sm/utf8.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK ((size_t)256 << 10)
#define MAX_NEST 512

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct jd_doc {
    struct chunk *head;         /* current chunk first */
    struct jd_val *stack;       /* values of open containers */
    size_t sp, scap;
};

struct jd_doc *jd_doc_new(void)
{
    return sm_calloc(1, sizeof(struct jd_doc));
}

void jd_doc_free(struct jd_doc *d)
{
    if (!d)
        return;
    for (struct chunk *c = d->head, *n; c; c = n) {
        n = c->next;
        sm_free(c);
    }
    sm_free(d->stack);
    sm_free(d);
}

void jd_doc_reset(struct jd_doc *d)
{
    /* keep the most recent chunk only */
    if (!d->head)
        return;
    struct chunk *c = d->head->next;
    while (c) {
        struct chunk *n = c->next;
        sm_free(c);
        c = n;
    }
    d->head->next = NULL;
    d->head->used = 0;
    d->sp = 0;
}

static void *arena(struct jd_doc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct chunk *c = d->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK ? n : CHUNK;
        c = sm_malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = d->head;
        d->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static bool push(struct jd_doc *d, const struct jd_val *v)
{
    if (sm_grow(&d->stack, &d->scap, d->sp, sizeof(*d->stack), 1024))
        return false;
    d->stack[d->sp++] = *v;
    return true;
}

struct parser {
    struct jd_doc *d;
    char *p, *end;
    int depth;
};

static inline void ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool hex4(const char *s, const char *end, unsigned *out)
{
    if (end - s < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexv(s[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return true;
}

/* at the opening quote; unescapes in place */
static bool parse_string(struct parser *ps, struct jd_val *v)
{
    char *r = ++ps->p, *w = r, *start = r, *end = ps->end;
    /* fast scan for the common case: no escapes; eight bytes at a time
     * (any '"', '\\' or control byte among them stops it) */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - r >= 8) {
        uint64_t x;
        memcpy(&x, r, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        if ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs)
            break;
        r += 8;
    }
    while (r < end && *r != '"' && *r != '\\' && (unsigned char)*r >= 0x20)
        r++;
    w = r;
    while (r < end && *r != '"') {
        unsigned char c = (unsigned char)*r;
        if (c < 0x20)
            return false;
        if (c != '\\') {
            *w++ = *r++;
            continue;
        }
        if (++r >= end)
            return false;
        switch (*r++) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!hex4(r, end, &cp))
                return false;
            r += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (end - r < 6 || r[0] != '\\' || r[1] != 'u' || !hex4(r + 2, end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                r += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return false;
            }
            if (cp < 0x80) {
                *w++ = (char)cp;
            } else if (cp < 0x800) {
                *w++ = (char)(0xC0 | cp >> 6);
                *w++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *w++ = (char)(0xE0 | cp >> 12);
                *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *w++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *w++ = (char)(0xF0 | cp >> 18);
                *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *w++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            return false;
        }
    }
    if (r >= end)
        return false;
    ps->p = r + 1;
    *w = 0;   /* w <= r: inside the string's raw bytes or on its closing quote */
    v->type = JD_STRING;
    v->n = (uint32_t)(w - start);
    v->u.s = start;
    return true;
}

static bool parse_number(struct parser *ps, struct jd_val *v)
{
    char *s = ps->p, *q = s;
    bool neg = false, isint = true;
    if (q < ps->end && *q == '-') {
        neg = true;
        q++;
    }
    if (q >= ps->end || *q < '0' || *q > '9')
        return false;
    uint64_t acc = 0;
    int digits = 0;
    while (q < ps->end && *q >= '0' && *q <= '9') {
        acc = acc * 10 + (uint64_t)(*q - '0');
        digits++;
        q++;
    }
    if (q < ps->end && (*q == '.' || *q == 'e' || *q == 'E'))
        isint = false;
    if (isint && digits <= 19 && acc <= (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
        v->type = JD_INT;
        v->u.i = neg ? (int64_t)(0 - acc) : (int64_t)acc;
        ps->p = q;
        return true;
    }
    char save = *ps->end;   /* strtod needs a terminator; buf[len] is writable */
    *ps->end = 0;
    char *e;
    double d = strtod(s, &e);
    *ps->end = save;
    if (e == s)
        return false;
    if (!isfinite(d))   /* 1e999: jansson rejects it; keep it as the largest double (both sides alike) */
        d = copysign(DBL_MAX, d);
    v->type = JD_REAL;
    v->u.d = d;
    ps->p = e;
    return true;
}

static bool parse_value(struct parser *ps, struct jd_val *v);

static bool finish_container(struct parser *ps, struct jd_val *v, size_t base, uint8_t type)
{
    struct jd_doc *d = ps->d;
    size_t cnt = d->sp - base;
    v->type = type;
    v->n = (uint32_t)(type == JD_OBJECT ? cnt / 2 : cnt);
    v->u.items = NULL;
    if (cnt) {
        v->u.items = arena(d, cnt * sizeof(struct jd_val));
        if (!v->u.items)
            return false;
        memcpy(v->u.items, d->stack + base, cnt * sizeof(struct jd_val));
    }
    d->sp = base;
    return true;
}

static bool parse_value(struct parser *ps, struct jd_val *v)
{
    ws(ps);
    if (ps->p >= ps->end)
        return false;
    char c = *ps->p;
    if (c == '"')
        return parse_string(ps, v);
    if (c == '{' || c == '[') {
        if (++ps->depth > MAX_NEST)
            return false;
        size_t base = ps->d->sp;
        bool obj = c == '{';
        ps->p++;
        ws(ps);
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            ps->p++;
        } else {
            for (;;) {
                struct jd_val e;
                if (obj) {
                    ws(ps);
                    if (ps->p >= ps->end || *ps->p != '"' || !parse_string(ps, &e) || !push(ps->d, &e))
                        return false;
                    ws(ps);
                    if (ps->p >= ps->end || *ps->p != ':')
                        return false;
                    ps->p++;
                }
                if (!parse_value(ps, &e) || !push(ps->d, &e))
                    return false;
                ws(ps);
                if (ps->p >= ps->end)
                    return false;
                if (*ps->p == ',') {
                    ps->p++;
                    continue;
                }
                if (*ps->p != (obj ? '}' : ']'))
                    return false;
                ps->p++;
                break;
            }
        }
        ps->depth--;
        return finish_container(ps, v, base, obj ? JD_OBJECT : JD_ARRAY);
    }
    if (c == 't' && ps->end - ps->p >= 4 && !memcmp(ps->p, "true", 4)) {
        v->type = JD_TRUE;
        ps->p += 4;
        return true;
    }
    if (c == 'f' && ps->end - ps->p >= 5 && !memcmp(ps->p, "false", 5)) {
        v->type = JD_FALSE;
        ps->p += 5;
        return true;
    }
    if (c == 'n' && ps->end - ps->p >= 4 && !memcmp(ps->p, "null", 4)) {
        v->type = JD_NULL;
        ps->p += 4;
        return true;
    }
    return parse_number(ps, v);
}

const struct jd_val *jd_parse(struct jd_doc *d, char *buf, size_t len)
{
    struct parser ps = { d, buf, buf + len, 0 };
    struct jd_val v;
    d->sp = 0;
    if (!parse_value(&ps, &v))
        return NULL;
    ws(&ps);
    if (ps.p != ps.end)
        return NULL;
    struct jd_val *root = arena(d, sizeof(*root));
    if (root)
        *root = v;
    return root;
}

static bool from_json(struct jd_doc *d, const json_t *j, struct jd_val *v)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(j), k = 0;
        v->type = JD_OBJECT;
        v->n = (uint32_t)n;
        v->u.items = n ? arena(d, 2 * n * sizeof(struct jd_val)) : NULL;
        if (n && !v->u.items)
            return false;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)j, key, val) {
            if (k >= n)
                break;
            v->u.items[2 * k].type = JD_STRING;
            v->u.items[2 * k].n = (uint32_t)strlen(key);
            v->u.items[2 * k].u.s = key;
            if (!from_json(d, val, &v->u.items[2 * k + 1]))
                return false;
            k++;
        }
        return true;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        v->type = JD_ARRAY;
        v->n = (uint32_t)n;
        v->u.items = n ? arena(d, n * sizeof(struct jd_val)) : NULL;
        if (n && !v->u.items)
            return false;
        for (size_t i = 0; i < n; i++)
            if (!from_json(d, json_array_get(j, i), &v->u.items[i]))
                return false;
        return true;
    }
    case JSON_STRING:
        v->type = JD_STRING;
        v->n = (uint32_t)json_string_length(j);
        v->u.s = json_string_value(j);   /* borrowed from the jansson value */
        return true;
    case JSON_INTEGER:
        v->type = JD_INT;
        v->u.i = json_integer_value(j);
        return true;
    case JSON_REAL:
        v->type = JD_REAL;
        v->u.d = json_real_value(j);
        return true;
    case JSON_TRUE:
        v->type = JD_TRUE;
        return true;
    case JSON_FALSE:
        v->type = JD_FALSE;
        return true;
    default:
        v->type = JD_NULL;
        return true;
    }
}

const struct jd_val *jd_from_json(struct jd_doc *d, const json_t *v)
{
    struct jd_val *root = arena(d, sizeof(*root));
    if (!root || !v || !from_json(d, v, root))
        return NULL;
    return root;
}

json_t *jd_to_json(const struct jd_val *v)
{
    if (!v)
        return NULL;
    switch (v->type) {
    case JD_OBJECT: {
        json_t *o = json_object();
        for (uint32_t i = 0; i < v->n; i++) {
            const struct jd_val *k = &v->u.items[2 * i];
            json_t *val = jd_to_json(&v->u.items[2 * i + 1]);
            int rc;
            if (sm_utf8_valid(k->u.s, k->n)) {
                rc = json_object_setn_new(o, k->u.s, k->n, val);
            } else {   /* jd_parse passes raw bytes through; jansson keys must be UTF-8 */
                size_t rn;
                char *r = sm_utf8_repair(k->u.s, k->n, &rn);
                rc = r ? json_object_setn_new(o, r, rn, val) : (json_decref(val), -1);
                sm_free(r);
            }
            if (rc || !val) {   /* out of memory: no silently missing member */
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case JD_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < v->n; i++) {
            if (json_array_append_new(a, jd_to_json(&v->u.items[i]))) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case JD_STRING: {
        json_t *j = json_stringn(v->u.s, v->n);
        if (!j) {   /* not valid UTF-8: jansson refuses it; keep it readable */
            size_t rn;
            char *r = sm_utf8_repair(v->u.s, v->n, &rn);
            j = r ? json_stringn(r, rn) : NULL;
            sm_free(r);
        }
        return j;
    }
    case JD_INT:
        return json_integer(v->u.i);
    case JD_REAL:
        return json_real(v->u.d);
    case JD_TRUE:
        return json_true();
    case JD_FALSE:
        return json_false();
    default:
        return json_null();
    }
}

const struct jd_val *jd_get(const struct jd_val *obj, const char *key)
{
    if (!obj || obj->type != JD_OBJECT)
        return NULL;
    for (uint32_t i = 0; i < obj->n; i++) {
        const struct jd_val *k = &obj->u.items[2 * i];
        if (k->u.s[0] == key[0] && !strcmp(k->u.s, key))
            return &obj->u.items[2 * i + 1];
    }
    return NULL;
}

const struct jd_val *jd_at(const struct jd_val *arr, size_t i)
{
    return arr && arr->type == JD_ARRAY && i < arr->n ? &arr->u.items[i] : NULL;
}

bool jd_equal(const struct jd_val *a, const struct jd_val *b)
{
    if (!a || !b)
        return a == b;
    if (jd_is_number(a) && jd_is_number(b)) {
        if (a->type == JD_INT && b->type == JD_INT)
            return a->u.i == b->u.i;
        return jd_number(a) == jd_number(b);
    }
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case JD_STRING:
        return a->n == b->n && !memcmp(a->u.s, b->u.s, a->n);
    case JD_ARRAY:
        if (a->n != b->n)
            return false;
        for (uint32_t i = 0; i < a->n; i++)
            if (!jd_equal(&a->u.items[i], &b->u.items[i]))
                return false;
        return true;
    case JD_OBJECT:
        if (a->n != b->n)
            return false;
        for (uint32_t i = 0; i < a->n; i++)
            if (!jd_equal(&a->u.items[2 * i + 1], jd_get(b, a->u.items[2 * i].u.s)))
                return false;
        return true;
    default:
        return true;
    }
}
