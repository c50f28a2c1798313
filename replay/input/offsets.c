/* At-least-once offset bookkeeping (see offsets.h). */
#include "input/offsets.h"

#include <sm/log.h>
#include <sm/mem.h>

#include <pthread.h>
#include <string.h>

struct pin { int64_t offset; uint64_t count; };

struct part {
    int32_t key;
    bool assigned;
    uint32_t gen;
    int64_t consumed;            /* last handled offset; -1 none */
    struct pin *pins;            /* ring, sorted by offset */
    size_t head, len, cap;
    uint64_t npinned;
};

struct replay_offsets {
    pthread_mutex_t lock;
    struct part *parts;
    size_t nparts, cparts;
    uint32_t next_gen;
};

struct replay_offsets *replay_offsets_new(void)
{
    struct replay_offsets *o = sm_calloc(1, sizeof(*o));
    if (o)
        pthread_mutex_init(&o->lock, NULL);
    return o;
}

void replay_offsets_free(struct replay_offsets *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->nparts; i++)
        sm_free(o->parts[i].pins);
    sm_free(o->parts);
    pthread_mutex_destroy(&o->lock);
    sm_free(o);
}

static struct part *find(struct replay_offsets *o, int32_t key, bool create)
{
    for (size_t i = 0; i < o->nparts; i++)
        if (o->parts[i].key == key)
            return &o->parts[i];
    if (!create)
        return NULL;
    if (o->nparts == o->cparts) {
        size_t nc = o->cparts ? o->cparts * 2 : 16;
        struct part *np = sm_realloc(o->parts, nc * sizeof(*np));
        if (!np)
            return NULL;
        o->parts = np;
        o->cparts = nc;
    }
    struct part *p = &o->parts[o->nparts++];
    memset(p, 0, sizeof(*p));
    p->key = key;
    p->consumed = -1;
    return p;
}

static void reset(struct part *p)
{
    p->head = p->len = 0;
    p->npinned = 0;
    p->consumed = -1;
}

void replay_offsets_assign(struct replay_offsets *o, int32_t key)
{
    pthread_mutex_lock(&o->lock);
    struct part *p = find(o, key, true);
    if (p) {
        reset(p);
        p->assigned = true;
        p->gen = ++o->next_gen;
    }
    pthread_mutex_unlock(&o->lock);
}

void replay_offsets_revoke(struct replay_offsets *o, int32_t key)
{
    pthread_mutex_lock(&o->lock);
    struct part *p = find(o, key, false);
    if (p) {
        reset(p);
        p->assigned = false;
        p->gen = ++o->next_gen;
    }
    pthread_mutex_unlock(&o->lock);
}

bool replay_offsets_origin(struct replay_offsets *o, int32_t key, int64_t offset, struct replay_origin *origin)
{
    pthread_mutex_lock(&o->lock);
    struct part *p = find(o, key, false);
    bool ok = p && p->assigned;
    if (ok)
        *origin = (struct replay_origin){ key, p->gen, offset };
    pthread_mutex_unlock(&o->lock);
    return ok;
}

void replay_offsets_consumed(struct replay_offsets *o, int32_t key, int64_t offset)
{
    pthread_mutex_lock(&o->lock);
    struct part *p = find(o, key, false);
    if (p && p->assigned && offset > p->consumed)
        p->consumed = offset;
    pthread_mutex_unlock(&o->lock);
}

static struct pin *at(struct part *p, size_t i)
{
    return &p->pins[(p->head + i) % p->cap];
}

void replay_offsets_pin(void *arg, const struct replay_origin *org)
{
    struct replay_offsets *o = arg;
    pthread_mutex_lock(&o->lock);
    struct part *p = find(o, org->partition, false);
    if (!p || !p->assigned || p->gen != org->gen)
        goto out;
    if (p->len && at(p, p->len - 1)->offset == org->offset) {
        at(p, p->len - 1)->count++;
        p->npinned++;
        goto out;
    }
    if (p->len && at(p, p->len - 1)->offset > org->offset) {
        /* not in consumption order (should not happen): keep the deque sorted */
        sm_log_warn("kafka input: pin %lld below %lld on partition key %d", (long long)org->offset,
                    (long long)at(p, p->len - 1)->offset, (int)org->partition);
    }
    if (p->len == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        struct pin *np = sm_malloc(nc * sizeof(*np));
        if (!np)
            goto out;
        for (size_t i = 0; i < p->len; i++)
            np[i] = *at(p, i);
        sm_free(p->pins);
        p->pins = np;
        p->cap = nc;
        p->head = 0;
    }
    /* insert keeping order (normally at the end) */
    size_t i = p->len;
    p->len++;
    while (i > 0 && at(p, i - 1)->offset > org->offset) {
        *at(p, i) = *at(p, i - 1);
        i--;
    }
    *at(p, i) = (struct pin){ org->offset, 1 };
    p->npinned++;
out:
    pthread_mutex_unlock(&o->lock);
}

void replay_offsets_release(void *arg, const struct replay_origin *org)
{
    struct replay_offsets *o = arg;
    pthread_mutex_lock(&o->lock);
    struct part *p = find(o, org->partition, false);
    if (!p || !p->assigned || p->gen != org->gen || !p->len)
        goto out;
    /* binary search */
    size_t lo = 0, hi = p->len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (at(p, mid)->offset < org->offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < p->len && at(p, lo)->offset == org->offset && at(p, lo)->count) {
        at(p, lo)->count--;
        p->npinned--;
    }
    while (p->len && !at(p, 0)->count) {
        p->head = (p->head + 1) % p->cap;
        p->len--;
    }
out:
    pthread_mutex_unlock(&o->lock);
}

int64_t replay_offsets_commit_point(struct replay_offsets *o, int32_t key, uint64_t *pinned)
{
    pthread_mutex_lock(&o->lock);
    int64_t cp = -1;
    struct part *p = find(o, key, false);
    if (pinned)
        *pinned = p ? p->npinned : 0;
    if (p && p->assigned) {
        if (p->len)
            cp = at(p, 0)->offset;
        else if (p->consumed >= 0)
            cp = p->consumed + 1;
    }
    pthread_mutex_unlock(&o->lock);
    return cp;
}

uint64_t replay_offsets_pinned(struct replay_offsets *o)
{
    pthread_mutex_lock(&o->lock);
    uint64_t n = 0;
    for (size_t i = 0; i < o->nparts; i++)
        n += o->parts[i].npinned;
    pthread_mutex_unlock(&o->lock);
    return n;
}
