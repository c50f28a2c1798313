/* Backfill workers: setup of work items, claims with leases, streaming
 * documents into bulk requests with several in flight, checkpoints of the
 * acknowledged prefix (docs/backfill.md). */
#include "backfill/backfill.h"

#include "backfill/bulk.h"
#include "backfill/coord.h"
#include "backfill/typerules.h"
#include "lucene/esdoc.h"
#include "lucene/lucene.h"
#include "snapshot/snapshot.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/http.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/sigv4.h>
#include <sm/util.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SETUP_ID "_setup"
#define DONE_ID "_done"

/* One work item as enumerated at setup. */
struct bf_item {
    char id[600];
    const char *index;          /* borrowed from the snapshot */
    size_t index_pos;
    int shard;
    size_t start_seg, end_seg;  /* [start, end): end_seg == n_segments, end_doc == 0 for "to the end" */
    int start_doc, end_doc;
    int64_t est_docs;
};

struct bf_shared {
    const struct rfs_backfill_cfg *cfg;
    struct rfs_dir *dir;
    struct rfs_repo *repo;
    struct rfs_snapshot *snap;
    pthread_mutex_t snap_mu;          /* the snapshot is not thread-safe */
    struct rfs_target_info target;
    struct rfs_bulk_failures failures;
    char bulk_path[512];
    uint64_t start_ms;
    _Atomic uint64_t docs_acked, docs_rejected, docs_sent, bytes, retried_items, bulk_requests;
    _Atomic uint64_t items_processed, items_done_here, items_failed_here, items_ended;
    _Atomic int active_workers;
    pthread_mutex_t end_mu;           /* with end_cv: a worker thread ended */
    pthread_cond_t end_cv;
    _Atomic bool all_done, more_left;
    char fatal[1024];
    pthread_mutex_t fatal_mu;
};

/* Per worker: a claimed item and its bulk pipeline. */
struct bf_worker {
    struct bf_shared *sh;
    int n;
    char id[200];
    struct sm_http_client *cc;        /* coordination requests */
    struct rfs_coord co;
    /* senders */
    pthread_t *threads;
    struct sm_http_client **clients;
    int nsenders;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct rfs_bulk_batch *qhead, *qtail;      /* to send */
    struct rfs_bulk_batch *ohead, *otail;      /* outstanding, in submit order */
    struct rfs_bulk_batch *free_list;
    int pending;                               /* submitted, not complete */
    bool quit;
    volatile bool abort;
    struct rfs_bulk_send_opts sopts;
    /* current item */
    json_t *doc;
    char item_id[600];
    int64_t seq, term;
    uint64_t last_write_ms;
    size_t ck_seg;
    int ck_doc;
    uint64_t acked, rejected, sent, bytes;
    uint64_t wait_ns;                          /* reader blocked on full bulk slots (debug output) */
    bool lost;
    char item_err[1200];
};

static bool stopping(const struct bf_shared *sh)
{
    return sh->cfg->stop && *sh->cfg->stop;
}

static const char *target_index_name(const struct rfs_backfill_cfg *cfg, const char *index)
{
    const char *r = cfg->rename ? sm_strlist_kv_get(cfg->rename, index) : NULL;
    return r && *r ? r : index;
}

/* The single mapping type of an ES <= 6 index when it is not "_doc". */
static const char *legacy_type(const struct rfs_index_info *ii)
{
    if (!ii->created_id || !ii->created_product || strcmp(ii->created_product, "Elasticsearch") ||
        rfs_version_major(ii->created_id) > 6 || json_object_size(ii->mappings) != 1)
        return NULL;
    const char *type;
    json_t *m;
    json_object_foreach(ii->mappings, type, m)
        return type;
    return NULL;
}

/* Target index and _type of one document: --type-index INDEX/TYPE=NEW sends
 * a type of a multi-type index to its own index (the "split" strategy);
 * typed targets get the document's type (else the index's single type, else
 * _doc). tbuf/ibuf hold the strings o points to. */
static void doc_opts(const struct rfs_backfill_cfg *cfg, bool typed, const char *index, const char *tindex,
                     const char *ltype, const struct rfs_esdoc *doc, char tbuf[256], char ibuf[600],
                     struct rfs_bulk_doc_opts *o)
{
    const char *type = ltype;
    if (doc->type) {
        snprintf(tbuf, 256, "%.*s", (int)doc->type_len, doc->type);
        type = tbuf;
    }
    o->index = tindex;
    const char *stype = type, *ri, *rt;
    if (cfg->typerules && rfs_typerules_lookup(cfg->typerules, index, type, &ri, &rt)) {
        /* the metadata migration's rule: its target index (and type for typed targets) */
        o->index = target_index_name(cfg, ri);
        if (rt)
            type = rt;
    }
    if (stype && cfg->type_index && cfg->type_index->n) {
        snprintf(ibuf, 600, "%s/%s", index, stype);
        const char *ti = sm_strlist_kv_get(cfg->type_index, ibuf);
        if (ti && *ti)
            o->index = ti;
    }
    o->type = typed ? (type ? type : "_doc") : NULL;
}

/* Legacy booleans of the last document added (--metadata-report): re-serialised only when changed. */
static int coerce(const struct rfs_backfill_cfg *cfg, const struct rfs_bulk_doc_opts *o, struct rfs_bulk_batch *b,
                  char *err, size_t errlen)
{
    bool changed;
    if (!cfg->typerules || !rfs_typerules_coerce_last(cfg->typerules, o->index, b, &changed))
        return SM_OK;
    return sm_errf(err, errlen, SM_ENOMEM, "out of memory coercing legacy booleans");
}

/* ---- enumeration of work items ---- */

struct item_list {
    struct bf_item *v;
    size_t n, cap;
};

static int items_push(struct item_list *l, const struct bf_item *it)
{
    if (sm_grow(&l->v, &l->cap, l->n, sizeof(*l->v), 64))
        return SM_ENOMEM;
    l->v[l->n++] = *it;
    return SM_OK;
}

static void item_id(struct bf_item *it)
{
    snprintf(it->id, sizeof(it->id), "%s~%d~%zu~%d", it->index, it->shard, it->start_seg, it->start_doc);
}

static int open_shard(struct bf_shared *sh, size_t index_pos, int shard, struct rfs_shard **shp, struct rfs_dir **sdp,
                      const struct rfs_index_info **iip, char *err, size_t errlen)
{
    if (sh->cfg->lucene_dir) {
        *shp = NULL;
        if (iip)
            *iip = NULL;
        return rfs_dir_open_uri(sh->cfg->lucene_dir, sh->cfg->s3, sdp, err, errlen);
    }
    pthread_mutex_lock(&sh->snap_mu);
    const struct rfs_index_info *ii = NULL;
    int rc = rfs_snapshot_index_at(sh->snap, index_pos, &ii, err, errlen);
    if (!rc)
        rc = rfs_shard_open(sh->snap, index_pos, shard, shp, err, errlen);
    pthread_mutex_unlock(&sh->snap_mu);
    if (!rc)
        rc = rfs_shard_dir_open(*shp, sh->cfg->verify_crc ? RFS_SHARD_VERIFY_CRC : RFS_SHARD_DIR_DEFAULT, sdp, err,
                                errlen);
    if (iip)
        *iip = ii;
    return rc;
}

/* Every item of the snapshot, in a deterministic order. */
static int enumerate(struct bf_shared *sh, struct item_list *out, char *err, size_t errlen)
{
    const struct rfs_backfill_cfg *cfg = sh->cfg;
    size_t matched = 0, nidx = cfg->lucene_dir ? 1 : rfs_snapshot_index_count(sh->snap);
    for (size_t i = 0; i < nidx; i++) {
        const char *name = cfg->lucene_dir ? cfg->snapshot : rfs_snapshot_index_name(sh->snap, i);
        if (!cfg->lucene_dir && cfg->index_pattern && !sm_pattern_match(cfg->index_pattern, name))
            continue;
        matched++;
        const struct rfs_index_info *ii = NULL;
        int rc = cfg->lucene_dir ? SM_OK : rfs_snapshot_index_at(sh->snap, i, &ii, err, errlen);
        if (rc)
            return rc;
        for (int s = 0; s < (ii ? ii->number_of_shards : 1); s++) {
            struct rfs_shard *shd = NULL;
            struct rfs_dir *sd = NULL;
            struct rfs_lucene_index *li = NULL;
            char sub[800];
            rc = open_shard(sh, i, s, &shd, &sd, NULL, sub, sizeof(sub));
            struct rfs_lucene_opts lo = { .allow_untested = cfg->allow_untested };
            if (!rc)
                rc = rfs_lucene_open(sd, &lo, &li, sub, sizeof(sub));
            if (rc) {
                /* Still one item for the whole shard: it fails (and says why)
                 * when processed, and the other shards go on. */
                rfs_dir_close(sd);
                rfs_shard_close(shd);
                /* Only for errors every process sees alike: a transient one
                 * (I/O, S3 throttling) here but not in another process would
                 * give the two processes different item sets. */
                if (rc == SM_ENOMEM || rc == SM_EIO || rc == SM_EAGAIN || rc == SM_ETIMEOUT)
                    return sm_errf(err, errlen, rc, "index %s shard %d: %s", name, s, sub);
                sm_log_warn("index %s shard %d: %s", name, s, sub);
                struct bf_item whole = { .index = name, .index_pos = i, .shard = s, .end_seg = INT32_MAX };
                item_id(&whole);
                if ((rc = items_push(out, &whole)))
                    return sm_errf(err, errlen, rc, "out of memory");
                continue;
            }
            struct rfs_lucene_commit_info ci;
            rfs_lucene_commit_info(li, &ci);
            struct bf_item it = { .index = name, .index_pos = i, .shard = s, .end_seg = ci.n_segments };
            int64_t in_item = 0;
            for (size_t g = 0; g < ci.n_segments && !rc; g++) {
                struct rfs_lucene_segment_info si;
                rfs_lucene_segment(li, g, &si);
                int doc = 0;
                while (cfg->split_docs && in_item + (si.max_doc - doc) > (int64_t)cfg->split_docs) {
                    int take = (int)((int64_t)cfg->split_docs - in_item);
                    doc += take;
                    /* close the current item at (g, doc), open the next */
                    struct bf_item cur = it;
                    cur.end_seg = g;
                    cur.end_doc = doc;
                    cur.est_docs = in_item + take;
                    item_id(&cur);
                    if ((rc = items_push(out, &cur)))
                        break;
                    it.start_seg = g;
                    it.start_doc = doc;
                    in_item = 0;
                }
                in_item += si.max_doc - doc;
            }
            if (!rc) {
                it.end_seg = ci.n_segments;
                it.end_doc = 0;
                it.est_docs = in_item;
                item_id(&it);
                rc = items_push(out, &it);
            }
            rfs_lucene_close(li);
            rfs_dir_close(sd);
            rfs_shard_close(shd);
            if (rc)
                return sm_errf(err, errlen, rc, "out of memory");
        }
    }
    if (!matched)
        return sm_errf(err, errlen, SM_ENOTFOUND, "no index of snapshot %s matches '%s'", cfg->snapshot,
                       cfg->index_pattern ? cfg->index_pattern : "*");
    return SM_OK;
}

static json_t *item_json(const struct rfs_backfill_cfg *cfg, const struct bf_item *it)
{
    return json_pack("{ss ss ss ss si si si si si sI ss sn sI si si sI sI sI sI si sI sI sI sn}", "kind", "item",
                     "snapshot", cfg->snapshot, "index", it->index, "target_index",
                     target_index_name(cfg, it->index), "shard", it->shard, "start_seg", (int)it->start_seg,
                     "start_doc", it->start_doc, "end_seg", (int)it->end_seg, "end_doc", it->end_doc, "est_docs",
                     (json_int_t)it->est_docs, "state", "available", "owner", "lease_expiry_ms", (json_int_t)0,
                     "ckpt_seg", (int)it->start_seg, "ckpt_doc", it->start_doc, "docs_acked", (json_int_t)0,
                     "docs_rejected", (json_int_t)0, "docs_sent", (json_int_t)0, "bytes", (json_int_t)0,
                     "attempts", 0, "started_ms", (json_int_t)0, "updated_ms", (json_int_t)sm_wall_ms(),
                     "finished_ms", (json_int_t)0, "error");
}

/* Creates every item once (op_type=create), then the setup marker. Workers
 * starting together all do this; deterministic ids make it idempotent. */
static int setup(struct bf_shared *sh, struct rfs_coord *co, char *err, size_t errlen)
{
    const struct rfs_backfill_cfg *cfg = sh->cfg;
    int rc = rfs_coord_ensure(co, err, errlen);
    if (rc)
        return rc;
    json_t *s = NULL;
    rc = rfs_coord_get(co, SETUP_ID, &s, NULL, NULL, err, errlen);
    if (!rc) {
        const char *snap = json_string_value(json_object_get(s, "snapshot"));
        const char *pat = json_string_value(json_object_get(s, "index_pattern"));
        const char *want = cfg->index_pattern ? cfg->index_pattern : "*";
        if (!snap || strcmp(snap, cfg->snapshot) || !pat || strcmp(pat, want) || json_string_value(json_object_get(s, "repo")) == NULL) {
            rc = sm_errf(err, errlen, SM_ECONFIG,
                         "coordination index %s holds the backfill of snapshot %s (indices '%s'), not of %s ('%s'): "
                         "use another --coordination-index or delete it", co->index, snap ? snap : "?",
                         pat ? pat : "?", cfg->snapshot, want);
        }
        json_decref(s);
        return rc;
    }
    if (rc != SM_ENOTFOUND)
        return rc;
    struct item_list items = { 0 };
    rc = enumerate(sh, &items, err, errlen);
    uint64_t created = 0, existed = 0;
    for (size_t i = 0; !rc && i < items.n; i++) {
        json_t *j = item_json(cfg, &items.v[i]);
        char sub[512];
        int crc = rfs_coord_create(co, items.v[i].id, j, sub, sizeof(sub));
        json_decref(j);
        if (crc == SM_ECONFLICT)
            existed++;
        else if (crc)
            rc = sm_errf(err, errlen, crc, "creating work item %s: %s", items.v[i].id, sub);
        else
            created++;
    }
    if (!rc) {
        json_t *m = json_pack("{ss ss ss ss sI sI}", "kind", "setup", "snapshot", cfg->snapshot, "index_pattern",
                              cfg->index_pattern ? cfg->index_pattern : "*", "repo", cfg->repo, "items",
                              (json_int_t)items.n, "created_ms", (json_int_t)sm_wall_ms());
        char sub[512];
        int crc = rfs_coord_create(co, SETUP_ID, m, sub, sizeof(sub));
        json_decref(m);
        if (crc && crc != SM_ECONFLICT)
            rc = sm_errf(err, errlen, crc, "creating setup marker: %s", sub);
        sm_log_info("backfill setup: %zu work items (%llu created here, %llu already there)", items.n,
                    (unsigned long long)created, (unsigned long long)existed);
    }
    sm_free(items.v);
    return rc;
}

/* ---- senders ---- */

static void *sender_main(void *arg)
{
    struct bf_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    int slot = -1;
    for (int i = 0; i < w->nsenders; i++)
        if (pthread_equal(w->threads[i], pthread_self()))
            slot = i;
    for (;;) {
        while (!w->qhead && !w->quit)
            pthread_cond_wait(&w->work, &w->mu);
        if (!w->qhead)
            break;
        struct rfs_bulk_batch *b = w->qhead;
        w->qhead = b->next;
        if (!w->qhead)
            w->qtail = NULL;
        b->next = NULL;
        pthread_mutex_unlock(&w->mu);
        rfs_bulk_send(w->clients[slot < 0 ? 0 : slot], &w->sopts, b);
        pthread_mutex_lock(&w->mu);
        b->complete = true;
        w->pending--;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Outstanding batches are tracked in a separate array-free list: each batch
 * sits in the outstanding chain (onext) from submit until drained. */
struct obatch {
    struct rfs_bulk_batch *b;
    struct obatch *next;
};

/* ---- item processing ---- */

static void json_set_int(json_t *o, const char *k, int64_t v)
{
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

/* Writes the worker's view of the item (state, lease, checkpoint, counts). */
static int write_item_q(struct bf_worker *w, const char *state, const char *error, bool quiet);

static int write_item(struct bf_worker *w, const char *state, const char *error)
{
    return write_item_q(w, state, error, false);
}

static int write_item_q(struct bf_worker *w, const char *state, const char *error, bool quiet)
{
    struct bf_shared *sh = w->sh;
    json_t *d = w->doc;
    uint64_t now = sm_wall_ms();
    json_object_set_new(d, "state", json_string(state));
    if (!strcmp(state, "leased")) {
        json_object_set_new(d, "owner", json_string(w->id));
        json_set_int(d, "lease_expiry_ms", (int64_t)(now + sh->cfg->lease_ms));
    } else {
        json_object_set_new(d, "owner", strcmp(state, "available") ? json_string(w->id) : json_null());
        json_set_int(d, "lease_expiry_ms", 0);
    }
    json_set_int(d, "ckpt_seg", (int64_t)w->ck_seg);
    json_set_int(d, "ckpt_doc", w->ck_doc);
    json_set_int(d, "docs_acked", (int64_t)w->acked);
    json_set_int(d, "docs_rejected", (int64_t)w->rejected);
    json_set_int(d, "docs_sent", (int64_t)w->sent);
    json_set_int(d, "bytes", (int64_t)w->bytes);
    json_set_int(d, "updated_ms", (int64_t)now);
    if (!strcmp(state, "done") || !strcmp(state, "failed"))
        json_set_int(d, "finished_ms", (int64_t)now);
    if (error)
        json_object_set_new(d, "error", json_string(error));
    char err[512];
    int rc = rfs_coord_replace(&w->co, w->item_id, d, &w->seq, &w->term, err, sizeof(err));
    if (rc == SM_ECONFLICT) {
        if (!quiet)
            sm_log_warn("worker %s: lost the lease of item %s (taken over by another worker)", w->id, w->item_id);
        w->lost = true;
        w->abort = true;
    } else if (rc) {
        sm_log_warn("worker %s: updating item %s: %s", w->id, w->item_id, err);
    } else {
        w->last_write_ms = sm_now_ms();
    }
    return rc;
}

static void maybe_renew(struct bf_worker *w)
{
    const struct rfs_backfill_cfg *cfg = w->sh->cfg;
    uint64_t every = cfg->lease_ms / 3;
    if (cfg->checkpoint_ms && cfg->checkpoint_ms < every)
        every = cfg->checkpoint_ms;
    if (!w->lost && sm_now_ms() - w->last_write_ms >= every)
        write_item(w, "leased", NULL);
}

/* Moves completed batches at the head of the outstanding list into the
 * checkpoint; stops at the first batch still in flight or failed. Called
 * with w->mu held. Returns true when a failed batch is at the head. */
static bool drain(struct bf_worker *w, struct obatch **oh, struct obatch **ot)
{
    struct bf_shared *sh = w->sh;
    while (*oh && (*oh)->b->complete) {
        struct rfs_bulk_batch *b = (*oh)->b;
        atomic_fetch_add(&sh->retried_items, b->retried_items);
        atomic_fetch_add(&sh->bulk_requests, b->requests);
        if (b->rc) {
            if (!w->item_err[0])
                snprintf(w->item_err, sizeof(w->item_err), "bulk: %s", b->err);
            w->abort = true;
            return true;
        }
        w->ck_seg = b->end_seg;
        w->ck_doc = b->end_doc;
        w->acked += b->acked;
        w->rejected += b->rejected;
        atomic_fetch_add(&sh->docs_acked, b->acked);
        atomic_fetch_add(&sh->docs_rejected, b->rejected);
        struct obatch *o = *oh;
        *oh = o->next;
        if (!*oh)
            *ot = NULL;
        b->next = w->free_list;
        w->free_list = b;
        sm_free(o);
    }
    return false;
}

static struct rfs_bulk_batch *new_batch(struct bf_worker *w)
{
    pthread_mutex_lock(&w->mu);
    struct rfs_bulk_batch *b = w->free_list;
    if (b)
        w->free_list = b->next;
    pthread_mutex_unlock(&w->mu);
    if (!b) {
        b = sm_malloc(sizeof(*b));
        if (!b)
            return NULL;
        rfs_bulk_batch_init(b);
    }
    rfs_bulk_batch_reset(b);
    return b;
}

/* Waits until fewer than limit batches are in flight (limit 0: none),
 * renewing the lease meanwhile. */
static void wait_inflight(struct bf_worker *w, int limit, struct obatch **oh, struct obatch **ot)
{
    pthread_mutex_lock(&w->mu);
    for (;;) {
        drain(w, oh, ot);
        if (w->pending < (limit ? limit : 1) && (limit || w->pending == 0))
            break;
        uint64_t t0 = sm_now_ns();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->done, &w->mu, &ts);
        w->wait_ns += sm_now_ns() - t0;
        pthread_mutex_unlock(&w->mu);
        maybe_renew(w);
        pthread_mutex_lock(&w->mu);
    }
    drain(w, oh, ot);
    pthread_mutex_unlock(&w->mu);
}

static int submit(struct bf_worker *w, struct rfs_bulk_batch *b, struct obatch **oh, struct obatch **ot)
{
    struct obatch *o = sm_calloc(1, sizeof(*o));
    if (!o)
        return SM_ENOMEM;
    o->b = b;
    w->sent += b->ndocs;
    w->bytes += b->body.len;
    atomic_fetch_add(&w->sh->docs_sent, b->ndocs);
    atomic_fetch_add(&w->sh->bytes, b->body.len);
    pthread_mutex_lock(&w->mu);
    if (*ot)
        (*ot)->next = o;
    else
        *oh = o;
    *ot = o;
    b->next = NULL;
    b->complete = false;
    if (w->qtail)
        w->qtail->next = b;
    else
        w->qhead = b;
    w->qtail = b;
    w->pending++;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return SM_OK;
}

/* CPU time of the calling thread (debug output: what the reader thread costs). */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool pos_before(size_t seg, int doc, size_t eseg, int edoc)
{
    return seg < eseg || (seg == eseg && doc < edoc);
}

/* A document that could not be turned into a bulk line. */
static void reject_local_as(struct bf_worker *w, const char *index, const struct rfs_esdoc *d, const char *type,
                            const char *why)
{
    struct rfs_bulk_failures *fl = &w->sh->failures;
    static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
    static struct sm_ratelimit rl;
    uint64_t suppressed = 0;
    pthread_mutex_lock(&log_mu);
    bool log = sm_log_ratelimited(&rl, 5000, &suppressed);
    pthread_mutex_unlock(&log_mu);
    if (log)
        sm_log_warn("index %s: document %s not sent: %s", index, d->id, why);
    if (fl->f) {
        json_t *rec = json_pack("{ss ss# si s{ss ss}}", "index", index, "id", d->id, d->id_len, "status", 0, "error",
                                "type", type, "reason", why);
        char *s = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        rfs_bulk_failures_put(fl, s, s ? strlen(s) : 0);
        free(s);
        json_decref(rec);
    }
    w->rejected++;
    atomic_fetch_add(&w->sh->docs_rejected, 1);
}

static void reject_local(struct bf_worker *w, const char *index, const struct rfs_esdoc *d, const char *why)
{
    reject_local_as(w, index, d, "source_conversion", why);
}

/* Reading options for an item whose range starts at document start_doc of
 * segment start_seg, read from segment from_seg on (its checkpoint). The CRC
 * check of a segment's stored fields is made by the item that starts at the
 * segment's first document; an item starting inside a segment (split
 * shards) skips it for that segment rather than re-reading it, unless it
 * resumes in a later one (which it then checks first, as any segment it
 * does not enter at its first document). */
static struct rfs_lucene_opts lucene_opts(const struct rfs_backfill_cfg *cfg, size_t start_seg, int start_doc,
                                          size_t from_seg)
{
    struct rfs_lucene_opts lo = { .allow_untested = cfg->allow_untested,
                                  .skip_start_checksum = start_doc > 0 && from_seg == start_seg };
    rfs_lu_checksums_apply(cfg->segment_checksums, &lo);
    return lo;
}

/* Streams the claimed item. Returns the new state: "done", "available"
 * (released for a retry), "failed", or NULL when the lease was lost. */
static const char *process_item(struct bf_worker *w)
{
    struct bf_shared *sh = w->sh;
    const struct rfs_backfill_cfg *cfg = sh->cfg;
    json_t *d = w->doc;
    const char *index = json_string_value(json_object_get(d, "index"));
    const char *tindex = json_string_value(json_object_get(d, "target_index"));
    int shard = (int)json_integer_value(json_object_get(d, "shard"));
    size_t end_seg = (size_t)json_integer_value(json_object_get(d, "end_seg"));
    int end_doc = (int)json_integer_value(json_object_get(d, "end_doc"));
    w->ck_seg = (size_t)json_integer_value(json_object_get(d, "ckpt_seg"));
    w->ck_doc = (int)json_integer_value(json_object_get(d, "ckpt_doc"));
    w->acked = (uint64_t)json_integer_value(json_object_get(d, "docs_acked"));
    w->rejected = (uint64_t)json_integer_value(json_object_get(d, "docs_rejected"));
    w->sent = (uint64_t)json_integer_value(json_object_get(d, "docs_sent"));
    w->bytes = (uint64_t)json_integer_value(json_object_get(d, "bytes"));
    w->item_err[0] = 0;
    w->abort = false;
    size_t ipos;
    if (!index || !tindex || (cfg->lucene_dir ? (ipos = 0, strcmp(index, cfg->snapshot) != 0)
                                                : rfs_snapshot_index_find(sh->snap, index, &ipos) != SM_OK)) {
        snprintf(w->item_err, sizeof(w->item_err), "index %s is not in snapshot %s", index ? index : "?",
                 cfg->snapshot);
        return "failed";
    }
    char err[1024];
    struct rfs_shard *shd = NULL;
    struct rfs_dir *sd = NULL;
    struct rfs_lucene_index *li = NULL;
    struct rfs_es_iter *it = NULL;
    const struct rfs_index_info *ii = NULL;
    struct rfs_lucene_opts lo = lucene_opts(cfg, (size_t)json_integer_value(json_object_get(d, "start_seg")),
                                            (int)json_integer_value(json_object_get(d, "start_doc")), w->ck_seg);
    int rc = open_shard(sh, ipos, shard, &shd, &sd, &ii, err, sizeof(err));
    if (!rc)
        rc = rfs_lucene_open(sd, &lo, &li, err, sizeof(err));
    if (!rc)
        rc = rfs_es_iter_open(li, w->ck_seg, w->ck_doc, &it, err, sizeof(err));
    if (!rc && end_doc == 0)
        rfs_es_iter_limit(it, end_seg);   /* the range ends with a segment: the next one is not opened */
    if (!rc)
        rfs_es_iter_yield_sourceless(it, true);   /* each one into the failures file, not skipped unseen */
    struct rfs_bulk_doc_opts dopts = { .index = tindex };
    const char *ltype = ii ? legacy_type(ii) : NULL;
    struct obatch *oh = NULL, *ot = NULL;
    struct rfs_bulk_batch *b = NULL;
    uint64_t resumed_from_acked = w->acked;
    unsigned since_renew_check = 0;
    w->wait_ns = 0;
    uint64_t cpu0 = thread_cpu_ns();
    sm_log_info("worker %s: item %s from (%zu,%d)", w->id, w->item_id, w->ck_seg, w->ck_doc);
    while (!rc && !w->abort) {
        if (stopping(sh)) {
            snprintf(w->item_err, sizeof(w->item_err), "stopped");
            break;
        }
        const struct rfs_esdoc *doc = NULL;
        if ((rc = rfs_es_iter_next(it, &doc, err, sizeof(err))) || !doc)
            break;
        if (!pos_before(doc->lucene->seg, doc->lucene->doc, end_seg, end_doc))
            break;
        if (!b && !(b = new_batch(w))) {
            rc = SM_ENOMEM;
            snprintf(err, sizeof(err), "out of memory");
            break;
        }
        char tbuf[256], ibuf[600], derr[512];
        doc_opts(cfg, sh->target.typed, index, tindex, ltype, doc, tbuf, ibuf, &dopts);
        if (!doc->source)
            reject_local_as(w, index, doc, "no_source", "no _source stored (disabled or excluded in the index "
                            "mapping): the document cannot be re-indexed from the snapshot");
        else if (rfs_bulk_add(b, &dopts, doc, derr, sizeof(derr)))
            reject_local(w, index, doc, derr);
        else if (coerce(cfg, &dopts, b, derr, sizeof(derr)))
            reject_local(w, index, doc, derr);
        b->end_seg = doc->lucene->seg;
        b->end_doc = doc->lucene->doc + 1;
        if (b->ndocs >= cfg->batch_docs || b->body.len >= cfg->batch_bytes) {
            wait_inflight(w, w->nsenders, &oh, &ot);
            if ((rc = submit(w, b, &oh, &ot))) {
                snprintf(err, sizeof(err), "out of memory");
                break;
            }
            b = NULL;
        }
        if (!(++since_renew_check & 255))
            maybe_renew(w);           /* a clock read per 256 documents, not per document */
    }
    /* a range that ends inside a segment it read from the first document:
     * that segment's streamed check is completed here (the rest is read) */
    if (!rc && !w->abort && !stopping(sh))
        rc = rfs_es_iter_finish_checksum(it, err, sizeof(err));
    bool reader_failed = rc != SM_OK;
    if (!rc && !w->abort && !stopping(sh) && b && b->ndocs) {
        wait_inflight(w, w->nsenders, &oh, &ot);     /* the last, partial batch */
        if (!submit(w, b, &oh, &ot))
            b = NULL;
    }
    if (b) {
        pthread_mutex_lock(&w->mu);
        b->next = w->free_list;
        w->free_list = b;
        pthread_mutex_unlock(&w->mu);
    }
    wait_inflight(w, 0, &oh, &ot);
    /* Batches behind a failed one: their documents are re-sent by whoever resumes. */
    pthread_mutex_lock(&w->mu);
    while (oh) {
        struct obatch *o = oh;
        oh = o->next;
        o->b->next = w->free_list;
        w->free_list = o->b;
        sm_free(o);
    }
    pthread_mutex_unlock(&w->mu);
    rfs_es_iter_close(it);
    rfs_lucene_close(li);
    rfs_dir_close(sd);
    rfs_shard_close(shd);
    sm_dbg(SM_DBG_BACKFILL, "worker %s: item %s: acked %" PRIu64 " (+%" PRIu64 "), reader cpu %" PRIu64 " ms, "
           "waited %" PRIu64 " ms for bulk slots", w->id, w->item_id, w->acked, w->acked - resumed_from_acked,
           (thread_cpu_ns() - cpu0) / 1000000, w->wait_ns / 1000000);
    if (w->lost)
        return NULL;
    if (reader_failed) {
        snprintf(w->item_err, sizeof(w->item_err), "index %.100s shard %d: %.1000s", index, shard, err);
        /* --segment-checksums streamed: documents of the damaged segment were
         * sent, and a retry would resume from the checkpoint, after them,
         * without reading that segment again: the item fails for good */
        if (rc == SM_ECORRUPT && cfg->segment_checksums == RFS_LU_CRC_STREAMED) {
            sm_log_err("worker %s: item %s failed: %s", w->id, w->item_id, w->item_err);
            return "failed";
        }
        return "retry";
    }
    if (w->item_err[0])
        return stopping(sh) && !strcmp(w->item_err, "stopped") ? "available" : "retry";
    w->ck_seg = end_seg;
    w->ck_doc = end_doc;
    return "done";
}

/* Claims one item: available ones, leased ones whose lease expired, and
 * ones still leased to this worker: it left them when it could not write
 * their end (the target was unreachable for longer than the down wait), and
 * waiting for its own lease to expire would stall it for --lease.
 * Returns SM_OK with w->doc set, SM_ENOTFOUND when none is claimable. */
static int claim(struct bf_worker *w, char *err, size_t errlen)
{
    uint64_t now = sm_wall_ms();
    int rc = rfs_coord_refresh(&w->co, err, errlen);
    if (rc)
        return rc;
    json_t *expired = json_pack("{s{s[{s{ss}}{s{s{sI}}}]}}", "bool", "filter", "term", "state", "leased", "range",
                                "lease_expiry_ms", "lt", (json_int_t)now);
    json_t *mine = json_pack("{s{s[{s{ss}}{s{ss}}]}}", "bool", "filter", "term", "state", "leased", "term", "owner",
                             w->id);
    json_t *q = json_pack("{s{s[{s{ss}}]s[{s{ss}}oo]si}}", "bool", "filter", "term", "kind", "item", "should", "term",
                          "state", "available", expired, mine, "minimum_should_match", 1);
    json_t *body = json_pack("{so si sb}", "query", q, "size", 64, "seq_no_primary_term", 1);
    json_t *hits = NULL;
    rc = rfs_coord_search(&w->co, body, &hits, err, errlen);
    json_decref(body);
    if (rc)
        return rc;
    size_t n = json_array_size(hits);
    if (!n) {
        json_decref(hits);
        return SM_ENOTFOUND;
    }
    /* Start at a random hit so that workers spread over the items. */
    size_t start = (size_t)rand() % n, conflicts = 0;
    rc = SM_ENOTFOUND;
    for (size_t k = 0; k < n && rc == SM_ENOTFOUND; k++) {
        json_t *h = json_array_get(hits, (start + k) % n);
        const char *id = json_string_value(json_object_get(h, "_id"));
        json_t *src = json_object_get(h, "_source");
        if (!id || !json_is_object(src))
            continue;
        w->seq = json_integer_value(json_object_get(h, "_seq_no"));
        w->term = json_integer_value(json_object_get(h, "_primary_term"));
        json_decref(w->doc);
        w->doc = json_deep_copy(src);
        snprintf(w->item_id, sizeof(w->item_id), "%s", id);
        const char *prev = json_string_value(json_object_get(w->doc, "state"));
        char prev_owner[200];
        snprintf(prev_owner, sizeof(prev_owner), "%s",
                 json_string_value(json_object_get(w->doc, "owner")) ? json_string_value(json_object_get(w->doc, "owner"))
                                                                     : "?");
        bool takeover = prev && !strcmp(prev, "leased") && strcmp(prev_owner, w->id);
        if (!json_integer_value(json_object_get(w->doc, "started_ms")))
            json_set_int(w->doc, "started_ms", (int64_t)sm_wall_ms());
        if (takeover)
            json_set_int(w->doc, "takeovers", json_integer_value(json_object_get(w->doc, "takeovers")) + 1);
        /* carry the stored counters and checkpoint */
        w->ck_seg = (size_t)json_integer_value(json_object_get(w->doc, "ckpt_seg"));
        w->ck_doc = (int)json_integer_value(json_object_get(w->doc, "ckpt_doc"));
        w->acked = (uint64_t)json_integer_value(json_object_get(w->doc, "docs_acked"));
        w->rejected = (uint64_t)json_integer_value(json_object_get(w->doc, "docs_rejected"));
        w->sent = (uint64_t)json_integer_value(json_object_get(w->doc, "docs_sent"));
        w->bytes = (uint64_t)json_integer_value(json_object_get(w->doc, "bytes"));
        w->lost = false;
        char sub[512];
        int wrc = write_item_q(w, "leased", NULL, true);
        if (wrc == SM_ECONFLICT)
            conflicts++;
        if (wrc == SM_OK) {
            if (takeover)
                sm_log_warn("worker %s: took over item %s from %s (lease expired), resuming at (%zu,%d)", w->id, id,
                            prev_owner, w->ck_seg, w->ck_doc);
            rc = SM_OK;
        } else if (wrc != SM_ECONFLICT) {
            rc = sm_errf(err, errlen, wrc, "claiming %s failed", id);
            (void)sub;
        }
    }
    json_decref(hits);
    if (rc == SM_ENOTFOUND && conflicts)
        rc = SM_ECONFLICT;      /* others were faster: look again */
    return rc;
}

/* Items not yet done or failed, and failed ones. */
static int remaining(struct rfs_coord *co, int64_t *left, int64_t *failed, char *err, size_t errlen)
{
    json_t *q = json_pack("{s{s[{s{ss}}{s{s[ss]}}]}}", "bool", "filter", "term", "kind", "item", "terms", "state",
                          "available", "leased");
    int rc = rfs_coord_count(co, q, left, err, errlen);
    json_decref(q);
    if (rc)
        return rc;
    q = json_pack("{s{s[{s{ss}}{s{ss}}]}}", "bool", "filter", "term", "kind", "item", "term", "state", "failed");
    rc = rfs_coord_count(co, q, failed, err, errlen);
    json_decref(q);
    return rc;
}

static void *worker_main(void *arg)
{
    struct bf_worker *w = arg;
    struct bf_shared *sh = w->sh;
    const struct rfs_backfill_cfg *cfg = sh->cfg;
    char err[1024];
    while (!stopping(sh)) {
        int rc = claim(w, err, sizeof(err));
        if (rc == SM_ECONFLICT) {
            sm_sleep_ms(10 + (uint64_t)(rand() % 50));
            continue;
        }
        if (rc == SM_ENOTFOUND) {
            int64_t left = 0, failed = 0;
            if ((rc = remaining(&w->co, &left, &failed, err, sizeof(err)))) {
                sm_log_warn("worker %s: %s", w->id, err);
                sm_sleep_ms(cfg->poll_ms);
                continue;
            }
            if (!left) {
                sh->all_done = true;
                break;
            }
            if (cfg->no_wait) {
                sh->more_left = true;
                break;
            }
            /* Others hold the rest: wait for them to finish or for a lease to
             * expire; look again at once when a worker of this process ends an item. */
            uint64_t seen = atomic_load(&sh->items_ended);
            for (uint64_t t = 0; t < cfg->poll_ms && !stopping(sh) && atomic_load(&sh->items_ended) == seen; t += 20)
                sm_sleep_ms(20);
            continue;
        }
        if (rc) {
            sm_log_warn("worker %s: %s", w->id, err);
            sm_sleep_ms(cfg->poll_ms);
            continue;
        }
        atomic_fetch_add(&sh->items_processed, 1);
        const char *next = process_item(w);
        if (!next) {
            atomic_fetch_add(&sh->items_ended, 1);
            continue;                                    /* lease lost: the new owner goes on */
        }
        if (!strcmp(next, "retry")) {
            int attempts = (int)json_integer_value(json_object_get(w->doc, "attempts")) + 1;
            json_set_int(w->doc, "attempts", attempts);
            next = attempts >= cfg->max_item_attempts ? "failed" : "available";
            sm_log_warn("worker %s: item %s attempt %d failed: %s%s", w->id, w->item_id, attempts, w->item_err,
                        !strcmp(next, "failed") ? " (giving up on it)" : "");
        }
        int wrc = write_item(w, next, w->item_err[0] ? w->item_err : NULL);
        if (!wrc && !strcmp(next, "done"))
            atomic_fetch_add(&sh->items_done_here, 1);
        if (!wrc && !strcmp(next, "failed"))
            atomic_fetch_add(&sh->items_failed_here, 1);
        atomic_fetch_add(&sh->items_ended, 1);
        if (!strcmp(next, "available") && !stopping(sh))
            sm_sleep_ms(cfg->poll_ms / 2 + 1);           /* let the cause (target overload) pass */
    }
    pthread_mutex_lock(&sh->end_mu);
    atomic_fetch_sub(&sh->active_workers, 1);
    pthread_cond_broadcast(&sh->end_cv);
    pthread_mutex_unlock(&sh->end_mu);
    return NULL;
}

static int worker_init(struct bf_worker *w, struct bf_shared *sh, int n, char *err, size_t errlen)
{
    const struct rfs_backfill_cfg *cfg = sh->cfg;
    w->sh = sh;
    w->n = n;
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    if (cfg->worker_id)
        snprintf(w->id, sizeof(w->id), "%s%s%d", cfg->worker_id, cfg->workers > 1 ? "/" : "",
                 cfg->workers > 1 ? n : 0);
    else
        snprintf(w->id, sizeof(w->id), "%s-%d/%d", host, (int)getpid(), n);
    if (cfg->worker_id && cfg->workers <= 1)
        snprintf(w->id, sizeof(w->id), "%s", cfg->worker_id);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->done, NULL);
    if (!(w->cc = sm_http_client_new(cfg->target, "target", err, errlen)))
        return SM_ECONFIG;
    w->co.c = w->cc;
    w->co.index = cfg->coord_index;
    w->co.typed = sh->target.typed;
    w->nsenders = cfg->inflight;
    w->threads = sm_calloc((size_t)w->nsenders, sizeof(pthread_t));
    w->clients = sm_calloc((size_t)w->nsenders, sizeof(*w->clients));
    if (!w->threads || !w->clients)
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    for (int i = 0; i < w->nsenders; i++)
        if (!(w->clients[i] = sm_http_client_new(cfg->target, "target", err, errlen)))
            return SM_ECONFIG;
    w->sopts.path = sh->bulk_path;
    w->sopts.max_retries = cfg->bulk_retries;
    w->sopts.backoff_base_ms = cfg->target->backoff_base_ms;
    w->sopts.backoff_cap_ms = cfg->target->backoff_cap_ms;
    w->sopts.failures = &sh->failures;
    w->sopts.abort = NULL;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->nsenders; i++)
        if (pthread_create(&w->threads[i], NULL, sender_main, w)) {
            pthread_mutex_unlock(&w->mu);
            return sm_errf(err, errlen, SM_ENOMEM, "cannot start threads");
        }
    pthread_mutex_unlock(&w->mu);
    return SM_OK;
}

static void worker_free(struct bf_worker *w)
{
    if (w->threads) {
        pthread_mutex_lock(&w->mu);
        w->quit = true;
        pthread_cond_broadcast(&w->work);
        pthread_mutex_unlock(&w->mu);
        for (int i = 0; i < w->nsenders; i++)
            if (w->threads[i])
                pthread_join(w->threads[i], NULL);
    }
    for (int i = 0; w->clients && i < w->nsenders; i++)
        sm_http_client_free(w->clients[i]);
    sm_free(w->clients);
    sm_free(w->threads);
    while (w->free_list) {
        struct rfs_bulk_batch *b = w->free_list;
        w->free_list = b->next;
        rfs_bulk_batch_free(b);
        sm_free(b);
    }
    sm_http_client_free(w->cc);
    json_decref(w->doc);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->done);
}

static int open_snapshot(struct bf_shared *sh, char *err, size_t errlen)
{
    const struct rfs_backfill_cfg *cfg = sh->cfg;
    if (cfg->lucene_dir)
        return SM_OK;                /* one Lucene directory, opened per item */
    int rc = rfs_dir_open_uri(cfg->repo, cfg->s3, &sh->dir, err, errlen);
    if (!rc)
        rc = rfs_repo_open(sh->dir, &sh->repo, err, errlen);
    if (!rc)
        rc = rfs_snapshot_open(sh->repo, cfg->snapshot, &sh->snap, err, errlen);
    return rc;
}

static void close_snapshot(struct bf_shared *sh)
{
    rfs_snapshot_close(sh->snap);
    rfs_repo_close(sh->repo);
    rfs_dir_close(sh->dir);
}

static void progress_line(struct bf_shared *sh, bool final)
{
    const struct rfs_backfill_cfg *cfg = sh->cfg;
    if (!cfg->progress)
        return;
    double secs = (double)(sm_now_ms() - sh->start_ms) / 1000.0;
    if (secs <= 0)
        secs = 0.001;
    uint64_t acked = atomic_load(&sh->docs_acked), bytes = atomic_load(&sh->bytes);
    if (cfg->progress_tty) {
        fprintf(cfg->progress, "\r\033[Kbackfill: %" PRIu64 " docs acked, %" PRIu64 " rejected, %.0f docs/s, "
                "%.1f MB/s, items done here %" PRIu64 "%s", acked, atomic_load(&sh->docs_rejected), (double)acked / secs,
                (double)bytes / secs / 1e6, atomic_load(&sh->items_done_here), final ? "\n" : "");
    } else {
        fprintf(cfg->progress, "backfill: %.0fs docs_acked=%" PRIu64 " docs_rejected=%" PRIu64 " docs_per_s=%.0f "
                "mb_per_s=%.2f items_done=%" PRIu64 " retried_items=%" PRIu64 "\n", secs, acked,
                atomic_load(&sh->docs_rejected), (double)acked / secs, (double)bytes / secs / 1e6,
                atomic_load(&sh->items_done_here), atomic_load(&sh->retried_items));
    }
    fflush(cfg->progress);
}

/* The bulk endpoint with the ingest pipeline choice (rfs_backfill_cfg.ingest_pipeline). */
static int bulk_path(struct bf_shared *sh, const char *pipeline, char *err, size_t errlen)
{
    const char *p = pipeline && *pipeline ? pipeline : "_none";
    int minor = 0;
    const char *dot = strchr(sh->target.version, '.');
    if (dot)
        minor = atoi(dot + 1);
    bool knows_none = sh->target.opensearch || sh->target.major > 6 || (sh->target.major == 6 && minor >= 5);
    if (!strcmp(p, "default") || (!strcmp(p, "_none") && !knows_none)) {   /* before 6.5: no default pipelines */
        snprintf(sh->bulk_path, sizeof(sh->bulk_path), "/_bulk");
        return SM_OK;
    }
    struct sm_buf b;
    sm_buf_init(&b, sizeof(sh->bulk_path) - 1);
    int rc = sm_buf_append_str(&b, "/_bulk?pipeline=");
    if (!rc)
        rc = sm_uri_encode(&b, p, strlen(p), false);
    if (!rc)
        snprintf(sh->bulk_path, sizeof(sh->bulk_path), "%.*s", (int)b.len, (const char *)b.data);
    sm_buf_free(&b);
    if (rc)
        return sm_errf(err, errlen, SM_ECONFIG, "--ingest-pipeline '%s': name too long", p);
    return SM_OK;
}

int rfs_backfill_run(const struct rfs_backfill_cfg *cfg, struct rfs_backfill_summary *sum, char *err, size_t errlen)
{
    memset(sum, 0, sizeof(*sum));
    struct bf_shared *sh = sm_calloc(1, sizeof(*sh));
    if (!sh) {
        sm_errf(err, errlen, SM_ENOMEM, "out of memory");
        return RFS_BACKFILL_EXIT_FAILED;
    }
    sh->cfg = cfg;
    sh->start_ms = sm_now_ms();
    srand((unsigned)(sm_now_ns() ^ (uint64_t)getpid()));
    pthread_mutex_init(&sh->snap_mu, NULL);
    pthread_mutex_init(&sh->fatal_mu, NULL);
    pthread_mutex_init(&sh->failures.mu, NULL);
    pthread_mutex_init(&sh->end_mu, NULL);
    pthread_cond_init(&sh->end_cv, NULL);
    int ex = RFS_BACKFILL_EXIT_FAILED;
    struct bf_worker *ws = NULL;
    struct sm_http_client *c = NULL;
    if (cfg->failures_file && !(sh->failures.f = fopen(cfg->failures_file, "a"))) {
        sm_errf(err, errlen, SM_EIO, "%s: %s", cfg->failures_file, strerror(errno));
        goto out;
    }
    if (open_snapshot(sh, err, errlen))
        goto out;
    if (!(c = sm_http_client_new(cfg->target, "target", err, errlen)))
        goto out;
    if (rfs_target_info(c, &sh->target, err, errlen))
        goto out;
    if (bulk_path(sh, cfg->ingest_pipeline, err, errlen))
        goto out;
    sm_log_info("target %s: %s %s (%s), bulk requests to %s", sm_http_client_url(c),
                sh->target.opensearch ? "OpenSearch" : "Elasticsearch", sh->target.version,
                sh->target.typed ? "typed" : "typeless", sh->bulk_path);
    struct rfs_coord co = { .c = c, .index = cfg->coord_index, .typed = sh->target.typed };
    if (setup(sh, &co, err, errlen))
        goto out;
    ws = sm_calloc((size_t)cfg->workers, sizeof(*ws));
    if (!ws) {
        sm_errf(err, errlen, SM_ENOMEM, "out of memory");
        goto out;
    }
    pthread_t *tids = sm_calloc((size_t)cfg->workers, sizeof(pthread_t));
    int started = 0;
    for (int i = 0; i < cfg->workers && tids; i++) {
        if (worker_init(&ws[i], sh, i, err, errlen))
            break;
        atomic_fetch_add(&sh->active_workers, 1);
        if (pthread_create(&tids[i], NULL, worker_main, &ws[i])) {
            atomic_fetch_sub(&sh->active_workers, 1);
            break;
        }
        started++;
    }
    /* Wait for the workers (woken as soon as the last one ends), with
     * the progress line every progress_ms. */
    uint64_t last = sm_now_ms();
    pthread_mutex_lock(&sh->end_mu);
    while (atomic_load(&sh->active_workers) > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sh->end_cv, &sh->end_mu, &ts);
        if (cfg->progress_ms && sm_now_ms() - last >= cfg->progress_ms) {
            last = sm_now_ms();
            pthread_mutex_unlock(&sh->end_mu);
            progress_line(sh, false);
            pthread_mutex_lock(&sh->end_mu);
        }
    }
    pthread_mutex_unlock(&sh->end_mu);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    sm_free(tids);
    progress_line(sh, true);
    for (int i = 0; i < cfg->workers; i++)
        worker_free(&ws[i]);
    if (started < cfg->workers && !started)
        goto out;
    /* Final state from the coordination index. */
    int64_t left = 0, failed = 0;
    if (remaining(&co, &left, &failed, err, errlen))
        goto out;
    sum->items_left = (uint64_t)left;
    sum->items_failed = (uint64_t)failed;
    if (!left && !failed) {
        json_t *m = json_pack("{ss ss sI}", "kind", "done", "snapshot", cfg->snapshot, "finished_ms",
                              (json_int_t)sm_wall_ms());
        char sub[256];
        int crc = rfs_coord_create(&co, DONE_ID, m, sub, sizeof(sub));
        json_decref(m);
        if (crc && crc != SM_ECONFLICT)
            sm_log_warn("writing the done marker: %s", sub);
    }
    if (left)
        ex = RFS_BACKFILL_EXIT_MORE;
    else if (failed || atomic_load(&sh->docs_rejected))
        ex = RFS_BACKFILL_EXIT_FAILED;
    else
        ex = RFS_BACKFILL_EXIT_DONE;
    if (failed)
        sm_errf(err, errlen, SM_EIO, "%" PRId64 " work items failed (backfill-status shows why)", failed);
    else if (ex == RFS_BACKFILL_EXIT_FAILED)
        sm_errf(err, errlen, SM_EPROTO, "%" PRIu64 " documents were rejected by the target%s%s",
                atomic_load(&sh->docs_rejected), cfg->failures_file ? " (see " : "",
                cfg->failures_file ? cfg->failures_file : "");
    if (ex == RFS_BACKFILL_EXIT_FAILED && cfg->failures_file && !failed) {
        size_t l = strlen(err);
        if (sh->failures.unrecorded && l < errlen)
            snprintf(err + l, errlen - l, "; %" PRIu64 " of them NOT recorded there: %s)", sh->failures.unrecorded,
                     strerror(sh->failures.last_errno));
        else if (l + 2 < errlen)
            snprintf(err + l, errlen - l, ")");
    }
out:
    sum->items_processed = atomic_load(&sh->items_processed);
    sum->items_done = atomic_load(&sh->items_done_here);
    sum->docs_acked = atomic_load(&sh->docs_acked);
    sum->docs_rejected = atomic_load(&sh->docs_rejected);
    sum->docs_sent = atomic_load(&sh->docs_sent);
    sum->bytes = atomic_load(&sh->bytes);
    sum->retried_items = atomic_load(&sh->retried_items);
    sum->bulk_requests = atomic_load(&sh->bulk_requests);
    sum->elapsed_ms = sm_now_ms() - sh->start_ms;
    sm_free(ws);
    sm_http_client_free(c);
    close_snapshot(sh);
    if (sh->failures.f)
        fclose(sh->failures.f);
    pthread_mutex_destroy(&sh->snap_mu);
    pthread_mutex_destroy(&sh->fatal_mu);
    pthread_mutex_destroy(&sh->failures.mu);
    pthread_mutex_destroy(&sh->end_mu);
    pthread_cond_destroy(&sh->end_cv);
    sm_free(sh);
    return ex;
}

int rfs_backfill_dry_run(const struct rfs_backfill_cfg *cfg, const char *path, bool typed,
                         struct rfs_backfill_summary *sum, char *err, size_t errlen)
{
    memset(sum, 0, sizeof(*sum));
    struct bf_shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.cfg = cfg;
    sh.target.typed = typed;
    pthread_mutex_init(&sh.snap_mu, NULL);
    uint64_t t0 = sm_now_ms();
    int rc = SM_OK;
    FILE *out = NULL;
    struct item_list items = { 0 };
    struct rfs_bulk_batch b;
    rfs_bulk_batch_init(&b);
    if ((rc = open_snapshot(&sh, err, errlen)))
        goto out;
    if (!strcmp(path, "-"))
        out = stdout;
    else if (!(out = fopen(path, "wb"))) {
        rc = sm_errf(err, errlen, SM_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((rc = enumerate(&sh, &items, err, errlen)))
        goto out;
    for (size_t i = 0; i < items.n && !rc; i++) {
        struct bf_item *it = &items.v[i];
        struct rfs_shard *shd = NULL;
        struct rfs_dir *sd = NULL;
        struct rfs_lucene_index *li = NULL;
        struct rfs_es_iter *iter = NULL;
        const struct rfs_index_info *ii = NULL;
        struct rfs_lucene_opts lo = lucene_opts(cfg, it->start_seg, it->start_doc, it->start_seg);
        char sub[800];
        rc = open_shard(&sh, it->index_pos, it->shard, &shd, &sd, &ii, sub, sizeof(sub));
        if (!rc)
            rc = rfs_lucene_open(sd, &lo, &li, sub, sizeof(sub));
        if (!rc)
            rc = rfs_es_iter_open(li, it->start_seg, it->start_doc, &iter, sub, sizeof(sub));
        if (!rc)
            rfs_es_iter_yield_sourceless(iter, true);
        struct rfs_bulk_doc_opts dopts = { .index = target_index_name(cfg, it->index) };
        const char *ltype = ii ? legacy_type(ii) : NULL;
        while (!rc) {
            const struct rfs_esdoc *doc = NULL;
            if ((rc = rfs_es_iter_next(iter, &doc, sub, sizeof(sub))) || !doc)
                break;
            if (!(doc->lucene->seg < it->end_seg || (doc->lucene->seg == it->end_seg && doc->lucene->doc < it->end_doc)))
                break;
            char tbuf[256], ibuf[600];
            doc_opts(cfg, typed, it->index, target_index_name(cfg, it->index), ltype, doc, tbuf, ibuf, &dopts);
            char derr[512];
            if (!doc->source) {
                fprintf(stderr, "index %s: document %s not written: no _source stored (disabled or excluded in the "
                        "index mapping)\n", it->index, doc->id);
                sum->docs_rejected++;
                continue;
            }
            if (rfs_bulk_add(&b, &dopts, doc, derr, sizeof(derr)) || coerce(cfg, &dopts, &b, derr, sizeof(derr))) {
                fprintf(stderr, "index %s: document %s not converted: %s\n", it->index, doc->id, derr);
                sum->docs_rejected++;
                continue;
            }
            sum->docs_sent++;
            if (b.ndocs >= cfg->batch_docs || b.body.len >= cfg->batch_bytes) {
                if (fwrite(b.body.data, 1, b.body.len, out) != b.body.len)
                    rc = SM_EIO;
                sum->bytes += b.body.len;
                rfs_bulk_batch_reset(&b);
            }
        }
        if (rc && rc != SM_EIO)
            sm_errf(err, errlen, rc, "index %s shard %d: %s", it->index, it->shard, sub);
        if (!rc && b.ndocs) {
            if (fwrite(b.body.data, 1, b.body.len, out) != b.body.len)
                rc = SM_EIO;
            sum->bytes += b.body.len;
        }
        rfs_bulk_batch_reset(&b);
        rfs_es_iter_close(iter);
        rfs_lucene_close(li);
        rfs_dir_close(sd);
        rfs_shard_close(shd);
        sum->items_processed++;
        sum->items_done++;
    }
    sum->items_total = items.n;
    if (rc == SM_EIO)
        sm_errf(err, errlen, rc, "%s: write failed", path);
out:
    if (out && out != stdout && fclose(out) && !rc)
        rc = sm_errf(err, errlen, SM_EIO, "%s: %s", path, strerror(errno));
    else if (out == stdout)
        fflush(stdout);
    rfs_bulk_batch_free(&b);
    sm_free(items.v);
    close_snapshot(&sh);
    pthread_mutex_destroy(&sh.snap_mu);
    sum->elapsed_ms = sm_now_ms() - t0;
    return rc;
}
