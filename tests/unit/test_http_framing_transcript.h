/* Transcript fixtures (tests/fixtures/http/README.md): `>>>` client bytes,
 * `<<<` server bytes. Shared by the framing and record tests. */
#ifndef TEST_HTTP_FRAMING_TRANSCRIPT_H
#define TEST_HTTP_FRAMING_TRANSCRIPT_H
#include <sm/buf.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TR_MAX_BLOCKS 64

struct tr_block { int dir; uint8_t *data; size_t len; };   /* dir 0: c->s, 1: s->c */
struct transcript { struct tr_block b[TR_MAX_BLOCKS]; size_t n; };

static inline void tr_free(struct transcript *t)
{
    for (size_t i = 0; i < t->n; i++)
        sm_free(t->b[i].data);
    t->n = 0;
}

/* Parses transcript text; returns 0 on success. */
static inline int tr_parse(const char *text, size_t len, struct transcript *t)
{
    memset(t, 0, sizeof(*t));
    if (len && text[len - 1] == '\n')
        len--;                                  /* the file's final newline */
    struct sm_buf cur;
    sm_buf_init(&cur, 1 << 24);
    int dir = -1;
    size_t i = 0;
    bool have_last = false;                     /* a pending line not yet terminated */
    size_t last_start = 0, last_len = 0;
    for (;;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *line = text + i;
        size_t ll = end - i;
        bool marker = ll == 3 && (!memcmp(line, ">>>", 3) || !memcmp(line, "<<<", 3));
        if (marker || dir < 0) {
            if (have_last && dir >= 0) {        /* last line of the block */
                sm_buf_append(&cur, text + last_start, last_len);
                if (last_len == 0)
                    sm_buf_append(&cur, "\r\n", 2);
            }
            have_last = false;
            if (dir >= 0 && cur.len) {
                if (t->n == TR_MAX_BLOCKS)
                    return -1;
                t->b[t->n].dir = dir;
                t->b[t->n].data = sm_buf_steal(&cur, &t->b[t->n].len);
                t->n++;
            }
            sm_buf_reset(&cur);
            if (marker)
                dir = line[0] == '>' ? 0 : 1;
        } else {
            if (have_last) {
                sm_buf_append(&cur, text + last_start, last_len);
                sm_buf_append(&cur, "\r\n", 2);
            }
            have_last = true;
            last_start = i;
            last_len = ll;
        }
        if (!nl)
            break;
        i = end + 1;
    }
    if (have_last && dir >= 0) {
        sm_buf_append(&cur, text + last_start, last_len);
        if (last_len == 0)
            sm_buf_append(&cur, "\r\n", 2);
    }
    if (dir >= 0 && cur.len) {
        t->b[t->n].dir = dir;
        t->b[t->n].data = sm_buf_steal(&cur, &t->b[t->n].len);
        t->n++;
    }
    sm_buf_free(&cur);
    return 0;
}

static inline int tr_load(const char *path, struct transcript *t)
{
    uint8_t *data;
    size_t len;
    if (sm_read_file(path, 1 << 24, &data, &len) != 0)
        return -1;
    int rc = tr_parse((const char *)data, len, t);
    sm_free(data);
    return rc;
}

/* All bytes of one direction, concatenated (caller frees). */
static inline uint8_t *tr_dir_bytes(const struct transcript *t, int dir, size_t *len)
{
    struct sm_buf b;
    sm_buf_init(&b, 1 << 24);
    for (size_t i = 0; i < t->n; i++)
        if (t->b[i].dir == dir)
            sm_buf_append(&b, t->b[i].data, t->b[i].len);
    uint8_t *p = sm_buf_steal(&b, len);
    return p;
}
#endif
