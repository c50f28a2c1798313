/* Bounded on-disk spool (see spool.h for the format and rules). */
#include "sink/spool.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC_LEN 8u
#define PAYLOAD_HDR 3u
#define KEYTAB 4096u

enum { ENT_UNSENT = 0, ENT_SENT = 1, ENT_ACKED = 2 };

struct ent {
    uint64_t off;                /* frame offset in the segment */
    uint64_t khash;
    uint32_t plen;               /* payload length */
    uint8_t state;
};

struct seg {
    uint64_t base;               /* id of the first record */
    char *path;
    int fd;
    uint64_t size;
    struct ent *ents;
    size_t n, cap, nacked;
    bool writable;               /* created by this run: appends go here */
};

struct keycount {
    struct keycount *next;
    uint64_t h;
    uint64_t n;
};

struct agent_spool {
    char *dir;
    uint64_t max_bytes, seg_bytes;
    struct seg **segs;
    size_t nsegs, segcap;
    size_t cur_seg, cur_ent;     /* next record to hand out */
    bool peeked;
    uint64_t next_id;
    uint64_t unsent;
    struct keycount *keys[KEYTAB];
    uint8_t *rbuf;
    size_t rcap;
    char *kbuf;
    size_t kcap;
    struct agent_spool_stats st;
};

static uint64_t khash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
    return h;
}

static void key_add(struct agent_spool *sp, uint64_t h, int delta)
{
    struct keycount **pp = &sp->keys[h % KEYTAB];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->h != h)
            continue;
        if (delta > 0) {
            (*pp)->n++;
        } else if (--(*pp)->n == 0) {
            struct keycount *k = *pp;
            *pp = k->next;
            sm_free(k);
        }
        return;
    }
    if (delta <= 0)
        return;
    struct keycount *k = sm_calloc(1, sizeof(*k));
    if (!k)
        return;              /* only weakens ordering for this key */
    k->h = h;
    k->n = 1;
    k->next = sp->keys[h % KEYTAB];
    sp->keys[h % KEYTAB] = k;
}

bool agent_spool_has_key(const struct agent_spool *sp, const char *key, size_t key_len)
{
    uint64_t h = khash(key, key_len);
    for (const struct keycount *k = sp->keys[h % KEYTAB]; k; k = k->next)
        if (k->h == h)
            return true;
    return false;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int ent_push(struct seg *s, uint64_t off, uint32_t plen, uint64_t h)
{
    if (sm_grow(&s->ents, &s->cap, s->n, sizeof(*s->ents), 256))
        return SM_ENOMEM;
    s->ents[s->n++] = (struct ent){ off, h, plen, ENT_UNSENT };
    return SM_OK;
}

static void seg_free(struct seg *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    sm_free(s->path);
    sm_free(s->ents);
    sm_free(s);
}

static int segs_push(struct agent_spool *sp, struct seg *s)
{
    if (sm_grow(&sp->segs, &sp->segcap, sp->nsegs, sizeof(*sp->segs), 16))
        return SM_ENOMEM;
    sp->segs[sp->nsegs++] = s;
    return SM_OK;
}

static char *seg_path(const char *dir, uint64_t base)
{
    size_t n = strlen(dir) + 40;
    char *p = sm_malloc(n);
    if (p)
        snprintf(p, n, "%s/spool-%016" PRIx64 ".seg", dir, base);
    return p;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return SM_OK;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need)
        nc *= 2;
    uint8_t *nb = sm_realloc(*buf, nc);
    if (!nb)
        return SM_ENOMEM;
    *buf = nb;
    *cap = nc;
    return SM_OK;
}

static bool read_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* Scans one recovered segment; cuts a torn/corrupt tail. */
static int seg_recover(struct agent_spool *sp, struct seg *s)
{
    struct stat st;
    if (fstat(s->fd, &st))
        return SM_EIO;
    uint64_t fsize = (uint64_t)st.st_size, off = MAGIC_LEN;
    char magic[MAGIC_LEN];
    bool good_magic = fsize >= MAGIC_LEN && read_full(s->fd, magic, MAGIC_LEN, 0) &&
                      !memcmp(magic, AGENT_SPOOL_MAGIC, MAGIC_LEN);
    if (!good_magic) {
        sm_log_warn("spool: %s: not a spool segment (bad header): discarded", s->path);
        sp->st.truncated_bytes += fsize;
        s->size = 0;
        return SM_OK;
    }
    while (off + AGENT_SPOOL_FRAME <= fsize) {
        uint8_t hdr[AGENT_SPOOL_FRAME];
        if (!read_full(s->fd, hdr, sizeof(hdr), off))
            break;
        uint32_t plen = get32(hdr), crc = get32(hdr + 4);
        if (plen < PAYLOAD_HDR || off + AGENT_SPOOL_FRAME + plen > fsize)
            break;
        if (grow(&sp->rbuf, &sp->rcap, plen))
            return SM_ENOMEM;
        if (!read_full(s->fd, sp->rbuf, plen, off + AGENT_SPOOL_FRAME))
            break;
        if ((uint32_t)crc32(0L, sp->rbuf, plen) != crc)
            break;
        size_t kl = (size_t)sp->rbuf[0] | (size_t)sp->rbuf[1] << 8;
        if (PAYLOAD_HDR + kl > plen)
            break;
        uint64_t h = khash((const char *)sp->rbuf + PAYLOAD_HDR, kl);
        if (ent_push(s, off, plen, h))
            return SM_ENOMEM;
        key_add(sp, h, 1);
        off += AGENT_SPOOL_FRAME + plen;
    }
    if (off < fsize) {
        sm_log_warn("spool: %s: torn or corrupt tail at byte %" PRIu64 ": %" PRIu64 " bytes cut",
                    s->path, off, fsize - off);
        sp->st.truncated_bytes += fsize - off;
        if (ftruncate(s->fd, (off_t)off))
            return SM_EIO;
    }
    s->size = off;
    sp->st.recovered += s->n;
    sp->unsent += s->n;
    return SM_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int mkdirs(const char *dir)
{
    char buf[4096];
    size_t n = strlen(dir);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0750) && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    return 0;
}

static void seg_delete(struct agent_spool *sp, size_t i)
{
    struct seg *s = sp->segs[i];
    if (unlink(s->path) && errno != ENOENT)
        sm_log_warn("spool: cannot delete %s: %s", s->path, strerror(errno));
    sp->st.bytes -= s->size;
    for (size_t k = 0; k < s->n; k++)
        if (s->ents[k].state != ENT_ACKED) {
            key_add(sp, s->ents[k].khash, -1);
            if (s->ents[k].state == ENT_UNSENT)
                sp->unsent--;
        }
    seg_free(s);
    memmove(sp->segs + i, sp->segs + i + 1, (sp->nsegs - i - 1) * sizeof(*sp->segs));
    sp->nsegs--;
    if (sp->cur_seg > i)
        sp->cur_seg--;
    else if (sp->cur_seg == i)
        sp->cur_ent = 0;
    sp->peeked = false;
}

int agent_spool_open(const char *dir, uint64_t max_bytes, uint64_t segment_bytes,
                     struct agent_spool **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!dir || !*dir)
        dir = AGENT_SPOOL_DEFAULT_DIR;
    if (!max_bytes)
        max_bytes = AGENT_SPOOL_DEFAULT_MAX;
    if (!segment_bytes) {
        segment_bytes = max_bytes / 16;
        if (segment_bytes < (64u << 10))
            segment_bytes = 64u << 10;
        if (segment_bytes > (64u << 20))
            segment_bytes = 64u << 20;
    }
    if (mkdirs(dir))
        return sm_errf(err, errlen, SM_EIO, "spool: cannot create directory %s: %s", dir, strerror(errno));
    struct agent_spool *sp = sm_calloc(1, sizeof(*sp));
    if (!sp || !(sp->dir = sm_strdup(dir))) {
        sm_free(sp);
        return sm_errf(err, errlen, SM_ENOMEM, "spool: out of memory");
    }
    sp->max_bytes = max_bytes;
    sp->seg_bytes = segment_bytes;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        agent_spool_close(sp);
        return sm_errf(err, errlen, SM_EIO, "spool: cannot open directory %s: %s", dir, strerror(e));
    }
    uint64_t *bases = NULL;
    size_t nb = 0, cb = 0;
    struct dirent *de;
    int rc = SM_OK;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (strncmp(nm, "spool-", 6) || strlen(nm) != 6 + 16 + 4 || strcmp(nm + 22, ".seg"))
            continue;
        char hex[17];
        memcpy(hex, nm + 6, 16);
        hex[16] = 0;
        char *end;
        uint64_t b = strtoull(hex, &end, 16);
        if (*end)
            continue;
        if (nb == cb) {
            size_t nc = cb ? cb * 2 : 16;
            uint64_t *n2 = sm_realloc(bases, nc * sizeof(*n2));
            if (!n2) {
                rc = SM_ENOMEM;
                break;
            }
            bases = n2;
            cb = nc;
        }
        bases[nb++] = b;
    }
    closedir(d);
    if (nb)
        qsort(bases, nb, sizeof(*bases), cmp_u64);
    for (size_t i = 0; i < nb && !rc; i++) {
        struct seg *s = sm_calloc(1, sizeof(*s));
        if (!s || !(s->path = seg_path(dir, bases[i]))) {
            sm_free(s);
            rc = SM_ENOMEM;
            break;
        }
        s->base = bases[i];
        s->fd = open(s->path, O_RDWR | O_CLOEXEC);
        if (s->fd < 0) {
            sm_errf(err, errlen, SM_EIO, "spool: cannot open %s: %s", s->path, strerror(errno));
            seg_free(s);
            rc = SM_EIO;
            break;
        }
        rc = seg_recover(sp, s);
        if (rc) {
            sm_errf(err, errlen, rc, "spool: %s: cannot recover: %s", s->path, sm_strerror(rc));
            seg_free(s);
            break;
        }
        if (!s->n) {
            unlink(s->path);
            seg_free(s);
            continue;
        }
        sp->st.bytes += s->size;
        if (s->base + s->n > sp->next_id)
            sp->next_id = s->base + s->n;
        if ((rc = segs_push(sp, s))) {
            seg_free(s);
            break;
        }
    }
    sm_free(bases);
    if (rc) {
        if (rc == SM_ENOMEM)
            sm_errf(err, errlen, rc, "spool: out of memory");
        agent_spool_close(sp);
        return rc;
    }
    if (!sp->next_id)
        sp->next_id = 1ull << 40;   /* room below for agent_spool_prepend() */
    sp->st.segments = sp->nsegs;
    sp->st.records = sp->unsent;
    if (sp->st.recovered)
        sm_log_info("spool: %s: %" PRIu64 " records (%" PRIu64 " bytes) recovered from a previous run",
                    dir, sp->st.recovered, sp->st.bytes);
    *out = sp;
    return SM_OK;
}

static struct seg *seg_for_append(struct agent_spool *sp, size_t need, int *rc)
{
    struct seg *s = sp->nsegs ? sp->segs[sp->nsegs - 1] : NULL;
    /* recovered segments stay immutable: a fresh one is opened for appends */
    if (s && s->writable && s->size + need <= sp->seg_bytes)
        return s;
    if (sp->st.bytes + MAGIC_LEN + need > sp->max_bytes) {
        *rc = SM_EFULL;
        return NULL;
    }
    s = sm_calloc(1, sizeof(*s));
    if (!s || !(s->path = seg_path(sp->dir, sp->next_id))) {
        sm_free(s);
        *rc = SM_ENOMEM;
        return NULL;
    }
    s->base = sp->next_id;
    s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (s->fd < 0 || write(s->fd, AGENT_SPOOL_MAGIC, MAGIC_LEN) != MAGIC_LEN) {
        sm_log_err("spool: cannot create %s: %s", s->path, strerror(errno));
        if (s->fd >= 0)
            unlink(s->path);
        seg_free(s);
        *rc = SM_EIO;
        return NULL;
    }
    s->size = MAGIC_LEN;
    s->writable = true;
    if ((*rc = segs_push(sp, s))) {
        unlink(s->path);
        seg_free(s);
        return NULL;
    }
    sp->st.bytes += MAGIC_LEN;
    sp->st.segments = sp->nsegs;
    return s;
}

bool agent_spool_would_overflow(const struct agent_spool *sp, size_t key_len, size_t len)
{
    return sp->st.bytes + MAGIC_LEN + AGENT_SPOOL_FRAME + PAYLOAD_HDR + key_len + len > sp->max_bytes;
}

/* Writes one framed record at the end of segment s. */
static int seg_write(struct agent_spool *sp, struct seg *s, const char *key, size_t key_len,
                     const uint8_t *data, size_t len, bool last)
{
    size_t plen = PAYLOAD_HDR + key_len + len;
    size_t need = AGENT_SPOOL_FRAME + plen;
    uint8_t hdr[AGENT_SPOOL_FRAME + PAYLOAD_HDR];
    hdr[8] = (uint8_t)key_len;
    hdr[9] = (uint8_t)(key_len >> 8);
    hdr[10] = last ? 1 : 0;
    uLong crc = crc32(0L, hdr + 8, PAYLOAD_HDR);
    if (key_len)
        crc = crc32(crc, (const Bytef *)key, (uInt)key_len);
    if (len)
        crc = crc32(crc, data, (uInt)len);
    put32(hdr, (uint32_t)plen);
    put32(hdr + 4, (uint32_t)crc);
    struct iovec iov[3] = {
        { hdr, sizeof(hdr) }, { (void *)key, key_len }, { (void *)data, len },
    };
    size_t done = 0;
    int idx = 0;
    while (done < need) {
        ssize_t w = pwritev(s->fd, iov + idx, 3 - idx, (off_t)(s->size + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            sm_log_err("spool: write %s: %s", s->path, strerror(errno));
            if (ftruncate(s->fd, (off_t)s->size))
                sm_log_err("spool: cannot cut %s back: %s", s->path, strerror(errno));
            return SM_EIO;
        }
        done += (size_t)w;
        size_t k = (size_t)w;
        while (idx < 3 && k >= iov[idx].iov_len) {
            k -= iov[idx].iov_len;
            idx++;
        }
        if (idx < 3) {
            iov[idx].iov_base = (uint8_t *)iov[idx].iov_base + k;
            iov[idx].iov_len -= k;
        }
    }
    uint64_t h = khash(key, key_len);
    if (ent_push(s, s->size, (uint32_t)plen, h)) {
        if (ftruncate(s->fd, (off_t)s->size))
            sm_log_err("spool: cannot cut %s back: %s", s->path, strerror(errno));
        return SM_ENOMEM;
    }
    key_add(sp, h, 1);
    s->size += need;
    sp->st.bytes += need;
    sp->st.appended++;
    sp->st.appended_bytes += len;
    sp->unsent++;
    return SM_OK;
}

int agent_spool_append(struct agent_spool *sp, const char *key, size_t key_len,
                       const uint8_t *data, size_t len, bool last)
{
    if (key_len > 0xffff)
        key_len = 0xffff;
    size_t plen = PAYLOAD_HDR + key_len + len;
    size_t need = AGENT_SPOOL_FRAME + plen;
    if (plen > 0xffffffffu || sp->st.bytes + need > sp->max_bytes) {
        sp->st.refused_full++;
        return SM_EFULL;
    }
    int rc = SM_OK;
    struct seg *s = seg_for_append(sp, need, &rc);
    if (!s) {
        if (rc == SM_EFULL)
            sp->st.refused_full++;
        return rc;
    }
    rc = seg_write(sp, s, key, key_len, data, len, last);
    if (rc == SM_OK)
        sp->next_id++;
    return rc;
}

size_t agent_spool_prepend(struct agent_spool *sp, const struct agent_spool_rec *recs, size_t n)
{
    if (!n)
        return 0;
    uint64_t first = sp->nsegs ? sp->segs[0]->base : sp->next_id;
    if (first < n)
        return 0;
    struct seg *s = sm_calloc(1, sizeof(*s));
    if (!s || !(s->path = seg_path(sp->dir, first - n))) {
        sm_free(s);
        return 0;
    }
    s->base = first - n;
    s->fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (s->fd < 0 || write(s->fd, AGENT_SPOOL_MAGIC, MAGIC_LEN) != MAGIC_LEN) {
        sm_log_err("spool: cannot create %s: %s", s->path, strerror(errno));
        if (s->fd >= 0)
            unlink(s->path);
        seg_free(s);
        return 0;
    }
    s->size = MAGIC_LEN;
    sp->st.bytes += MAGIC_LEN;
    size_t done = 0;
    for (; done < n; done++) {
        size_t kl = recs[done].key_len > 0xffff ? 0xffff : recs[done].key_len;
        if (sp->st.bytes + AGENT_SPOOL_FRAME + PAYLOAD_HDR + kl + recs[done].len > sp->max_bytes) {
            sp->st.refused_full += n - done;
            break;
        }
        if (seg_write(sp, s, recs[done].key, kl, recs[done].data, recs[done].len, recs[done].last))
            break;
    }
    if (fsync(s->fd))
        sm_log_err("spool: fsync %s: %s", s->path, strerror(errno));
    /* ids of records not written stay unused: the segment's base stays first - n */
    if (segs_push(sp, s)) {
        seg_free(s);
        return done;
    }
    memmove(sp->segs + 1, sp->segs, (sp->nsegs - 1) * sizeof(*sp->segs));
    sp->segs[0] = s;
    sp->cur_seg = 0;
    sp->cur_ent = 0;
    sp->peeked = false;
    sp->st.segments = sp->nsegs;
    return done;
}

int agent_spool_peek(struct agent_spool *sp, struct agent_spool_rec *rec)
{
    sp->peeked = false;
    while (sp->cur_seg < sp->nsegs) {
        struct seg *s = sp->segs[sp->cur_seg];
        if (sp->cur_ent >= s->n) {
            sp->cur_seg++;
            sp->cur_ent = 0;
            continue;
        }
        struct ent *e = &s->ents[sp->cur_ent];
        if (e->state != ENT_UNSENT) {
            sp->cur_ent++;
            continue;
        }
        if (grow(&sp->rbuf, &sp->rcap, e->plen) || grow((uint8_t **)&sp->kbuf, &sp->kcap, 0x10000 + 1))
            return SM_ENOMEM;
        int bad = 0;
        uint8_t hdr[AGENT_SPOOL_FRAME];
        if (!read_full(s->fd, hdr, sizeof(hdr), e->off) || get32(hdr) != e->plen ||
            !read_full(s->fd, sp->rbuf, e->plen, e->off + AGENT_SPOOL_FRAME))
            bad = SM_EIO;
        else if ((uint32_t)crc32(0L, sp->rbuf, e->plen) != get32(hdr + 4))
            bad = SM_ECORRUPT;
        if (bad) {
            sm_log_err("spool: %s: record at byte %" PRIu64 " unreadable (%s): skipped", s->path, e->off,
                       sm_strerror(bad));
            sp->cur_ent++;
            agent_spool_ack(sp, s->base + (uint64_t)(e - s->ents));
            return bad;
        }
        size_t kl = (size_t)sp->rbuf[0] | (size_t)sp->rbuf[1] << 8;
        memcpy(sp->kbuf, sp->rbuf + PAYLOAD_HDR, kl);
        sp->kbuf[kl] = 0;
        rec->id = s->base + sp->cur_ent;
        rec->key = sp->kbuf;
        rec->key_len = kl;
        rec->data = sp->rbuf + PAYLOAD_HDR + kl;
        rec->len = e->plen - PAYLOAD_HDR - kl;
        rec->last = sp->rbuf[2] & 1;
        sp->peeked = true;
        return SM_OK;
    }
    return SM_EEOF;
}

void agent_spool_advance(struct agent_spool *sp)
{
    if (!sp->peeked || sp->cur_seg >= sp->nsegs)
        return;
    struct seg *s = sp->segs[sp->cur_seg];
    if (sp->cur_ent < s->n && s->ents[sp->cur_ent].state == ENT_UNSENT) {
        s->ents[sp->cur_ent].state = ENT_SENT;
        sp->unsent--;
    }
    sp->cur_ent++;
    sp->peeked = false;
}

void agent_spool_ack(struct agent_spool *sp, uint64_t id)
{
    for (size_t i = 0; i < sp->nsegs; i++) {
        struct seg *s = sp->segs[i];
        if (id < s->base || id >= s->base + s->n)
            continue;
        struct ent *e = &s->ents[id - s->base];
        if (e->state == ENT_ACKED)
            return;
        if (e->state == ENT_UNSENT)
            sp->unsent--;
        e->state = ENT_ACKED;
        s->nacked++;
        sp->st.acked++;
        key_add(sp, e->khash, -1);
        if (s->nacked == s->n) {
            /* fully acknowledged: the write segment too (the next append opens a new one) */
            seg_delete(sp, i);
            sp->st.segments = sp->nsegs;
        }
        return;
    }
}

void agent_spool_rewind(struct agent_spool *sp)
{
    for (size_t i = 0; i < sp->nsegs; i++) {
        struct seg *s = sp->segs[i];
        for (size_t k = 0; k < s->n; k++)
            if (s->ents[k].state == ENT_SENT) {
                s->ents[k].state = ENT_UNSENT;
                sp->unsent++;
            }
    }
    sp->cur_seg = 0;
    sp->cur_ent = 0;
    sp->peeked = false;
}

uint64_t agent_spool_unsent(const struct agent_spool *sp)
{
    return sp->unsent;
}

int agent_spool_sync(struct agent_spool *sp)
{
    if (sp->nsegs && fsync(sp->segs[sp->nsegs - 1]->fd)) {
        sm_log_err("spool: fsync %s: %s", sp->segs[sp->nsegs - 1]->path, strerror(errno));
        return SM_EIO;
    }
    return SM_OK;
}

void agent_spool_stats(const struct agent_spool *sp, struct agent_spool_stats *out)
{
    *out = sp->st;
    uint64_t n = 0;
    for (size_t i = 0; i < sp->nsegs; i++)
        n += sp->segs[i]->n - sp->segs[i]->nacked;
    out->records = n;
    out->segments = sp->nsegs;
}

const char *agent_spool_dir(const struct agent_spool *sp)
{
    return sp->dir;
}

void agent_spool_close(struct agent_spool *sp)
{
    if (!sp)
        return;
    agent_spool_sync(sp);
    for (size_t i = 0; i < sp->nsegs; i++)
        seg_free(sp->segs[i]);
    sm_free(sp->segs);
    for (size_t i = 0; i < KEYTAB; i++) {
        struct keycount *k = sp->keys[i], *kn;
        for (; k; k = kn) {
            kn = k->next;
            sm_free(k);
        }
    }
    sm_free(sp->rbuf);
    sm_free(sp->kbuf);
    sm_free(sp->dir);
    sm_free(sp);
}
