#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sm_buf_init(struct sm_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void sm_buf_free(struct sm_buf *b)
{
    sm_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void sm_buf_reset(struct sm_buf *b)
{
    b->len = 0;
}

int sm_buf_reserve(struct sm_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return SM_EFULL;
    size_t need = b->len + extra;
    if (need + 1 <= b->cap)   /* keep room for a NUL terminator */
        return SM_OK;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need + 1)
        ncap = ncap > SIZE_MAX / 2 ? need + 1 : ncap * 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    uint8_t *p = sm_realloc(b->data, ncap);
    if (!p)
        return SM_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return SM_OK;
}

int sm_buf_append_grow(struct sm_buf *b, const void *p, size_t n)
{
    int rc = sm_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return SM_OK;
}

int sm_buf_append_int(struct sm_buf *b, int64_t v)
{
    char num[21];
    return sm_buf_append(b, num, sm_fmt_i64(num, v));
}

int sm_buf_printf(struct sm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SM_EINVAL;
    int rc = sm_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SM_OK;
}

void sm_buf_consume(struct sm_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

uint8_t *sm_buf_steal(struct sm_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
