/* Bounded growable byte buffer: every buffer has a cap set at init and fails
 * with SM_EFULL past it. */
#ifndef SM_BUF_H
#define SM_BUF_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sm_buf {
    uint8_t *data;
    size_t len;
    size_t cap;     /* allocated */
    size_t max;     /* hard limit on len */
};

void sm_buf_init(struct sm_buf *b, size_t max);
void sm_buf_free(struct sm_buf *b);           /* releases memory, keeps max */
void sm_buf_reset(struct sm_buf *b);          /* len = 0, keeps memory */
int  sm_buf_reserve(struct sm_buf *b, size_t extra);          /* SM_OK|SM_EFULL|SM_ENOMEM */
/* Appends n bytes (the data stays NUL-terminated). Inline when they fit the
 * allocation (the replayer appends ~80 short pieces per request); past it
 * sm_buf_append_grow() reserves and fails with SM_EFULL/SM_ENOMEM. */
int  sm_buf_append_grow(struct sm_buf *b, const void *p, size_t n);
static inline int sm_buf_append(struct sm_buf *b, const void *p, size_t n)
{
    /* len < cap whenever cap > 0 (room for the NUL), and cap <= max + 1 */
    if (n < b->cap - b->len) {
        if (n)
            memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
    }
    return sm_buf_append_grow(b, p, n);
}
static inline int sm_buf_append_str(struct sm_buf *b, const char *s)
{
    return sm_buf_append(b, s, strlen(s));
}
int  sm_buf_append_int(struct sm_buf *b, int64_t v);           /* decimal, no printf */
int  sm_buf_printf(struct sm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void sm_buf_consume(struct sm_buf *b, size_t n);
/* Detaches the data (caller frees with sm_free); buffer becomes empty. */
uint8_t *sm_buf_steal(struct sm_buf *b, size_t *len);

#endif
