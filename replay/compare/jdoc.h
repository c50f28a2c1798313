/* A read-only JSON document for the comparator's hot path: parsed in place
 * (strings unescaped inside the caller's buffer) into an arena, about ten
 * times faster than building jansson values, which made jansson parsing
 * alone slower than the 50k tuples/s compare/report target. Documents from
 * jansson values (live replay) are converted with jd_from_json().
 * Objects keep member order and duplicates; lookups are linear. */
#ifndef REPLAY_JDOC_H
#define REPLAY_JDOC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum jd_type { JD_NULL, JD_FALSE, JD_TRUE, JD_INT, JD_REAL, JD_STRING, JD_ARRAY, JD_OBJECT };

struct jd_val {
    uint8_t type;
    uint32_t n;                 /* string bytes, array elements or object members */
    union {
        int64_t i;
        double d;
        const char *s;          /* NUL-terminated (may contain NULs from \u0000: use n) */
        struct jd_val *items;   /* array: n values; object: 2n values, key (string) then value */
    } u;
};

struct jd_doc;

struct jd_doc *jd_doc_new(void);
void jd_doc_free(struct jd_doc *d);
/* Forgets every value parsed so far (keeps the memory). */
void jd_doc_reset(struct jd_doc *d);

/* Parses buf[0..len) (buf[len] must be writable; the buffer is modified and
 * must outlive the values). Returns the root or NULL on bad JSON. */
const struct jd_val *jd_parse(struct jd_doc *d, char *buf, size_t len);
/* Copies a jansson value into the document. NULL on allocation failure. */
const struct jd_val *jd_from_json(struct jd_doc *d, const json_t *v);
/* New jansson value equal to v. */
json_t *jd_to_json(const struct jd_val *v);

const struct jd_val *jd_get(const struct jd_val *obj, const char *key);   /* NULL if absent or not an object */
const struct jd_val *jd_at(const struct jd_val *arr, size_t i);           /* NULL if out of range */
static inline size_t jd_size(const struct jd_val *v)
{
    return v && (v->type == JD_ARRAY || v->type == JD_OBJECT) ? v->n : 0;
}
static inline bool jd_is_number(const struct jd_val *v)
{
    return v && (v->type == JD_INT || v->type == JD_REAL);
}
static inline double jd_number(const struct jd_val *v)
{
    return !v ? 0 : v->type == JD_INT ? (double)v->u.i : v->type == JD_REAL ? v->u.d : 0;
}
static inline const char *jd_str(const struct jd_val *v)
{
    return v && v->type == JD_STRING ? v->u.s : NULL;
}
bool jd_equal(const struct jd_val *a, const struct jd_val *b);

#endif
