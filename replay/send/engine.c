#define _GNU_SOURCE 1 /* epoll_pwait2, SOCK_NONBLOCK */
#include "send/engine.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/sigv4.h>
#include <sm/utf8.h>
#include <sm/util.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LAG_SAMPLES 65536
#define TUPLE_BATCH 64
#define TUPLE_WAIT_NS 1000000L

struct rconn;
struct tconn;

struct attempt_resp {
    struct replay_http_msg msg;
    int64_t ms;
};

struct job {
    struct job *next;              /* in conn->jobs, index order */
    struct job *done_next;         /* in engine->done: both halves finished, tuple pending */
    bool tuple_written;
    int8_t match;                  /* status comparison: 1 same, -1 differ, 0 not compared */
    struct rconn *conn;
    uint64_t index;
    struct replay_origin origin;   /* released when the job is finished */
    uint64_t target_done_ns;
    bool src_wait_expired;
    uint64_t due_ns;               /* monotonic; 0: now */
    int64_t src_req_last_ns;
    bool parse_ok, dropped, sent_started;
    bool target_done, source_done;
    struct replay_http_msg src_req, tgt_req;
    /* target result: one response per attempt that got one */
    struct attempt_resp *resps;
    size_t nresps;
    bool have_tgt_resp;            /* nresps > 0 */
    bool have_merged;              /* tgt_resp: _bulk response with item retries merged in */
    struct replay_http_msg tgt_resp;
    unsigned attempts;
    unsigned down_retries;         /* attempts past max_retries while the target was unreachable */
    uint64_t t_first_ns;           /* first attempt (monotonic) */
    char error[512];
    /* send state (event-loop thread only) */
    const uint8_t *body;           /* body of the current attempt */
    size_t body_len;
    uint8_t *body_owned;           /* _bulk item retry: the retried items */
    size_t *bulk_map;              /* item i of the current body -> item of the original */
    size_t bulk_n;
    json_t *bulk_merged;           /* first response body, retried items replaced */
    /* source result */
    bool have_src_resp;
    struct replay_http_msg src_resp;
    int64_t src_ms;
    enum replay_resp_end src_end;
};

struct rconn {
    struct rconn *hnext;
    char *key;                     /* node \x1f conn */
    char *conn_id;
    struct job *jobs, *jobs_tail;  /* all unfinished jobs, index order */
    struct job *to_send;           /* next job to send (NULL: none queued) */
    struct tconn *tc;              /* its target connection (1:1); set by the loop while busy */
    struct sloop *loop;            /* the sender loop that owns tc */
    bool busy, in_heap, closed;
    size_t heap_pos;
};

/* One target connection, owned by the event-loop thread. A source
 * connection's requests all go over its own tconn (connection mirroring). */
enum { TC_CLOSED, TC_CONNECTING, TC_HANDSHAKE, TC_SEND, TC_RECV, TC_IDLE, TC_BACKOFF };

struct tconn {
    int fd;
    SSL *ssl;
    int state;
    bool reused;                   /* served a response before: a close before any byte is resent once */
    bool resent;
    bool want_out;                 /* EPOLLOUT registered */
    bool in_idle, in_busy;
    bool resp_done;
    struct rconn *rc;              /* NULL once orphaned (source connection gone) */
    struct job *job;               /* in flight or just finished */
    struct sm_buf out;
    size_t out_off;
    struct replay_http_inc *inc;   /* the response being parsed (from a pool while a job runs) */
    size_t resp_len;               /* response bytes consumed so far */
    uint64_t t_attempt, deadline, retry_at;
    bool unreached;                /* connecting: an error now means the request never left */
    struct tconn *iprev, *inext;   /* idle LRU (open, no job) */
    struct tconn *bprev, *bnext;   /* busy list (job in flight or in backoff) */
    struct tconn *fnext;           /* finished list, or close list */
};

#define INC_POOL 64   /* response parsers kept for reuse by the loop thread */

/* One sender loop: a thread with its epoll set and the target connections
 * of its source connections. Several loops share the engine (its lock, the
 * job lists); each has its share of the in-flight requests (--workers). */
struct sloop {
    struct replay_engine *e;
    pthread_t thread;
    bool started;
    /* under the engine lock */
    bool sleeping;                 /* in epoll_wait: submitters write evfd */
    struct rconn **heap;           /* its source connections ready to send, by due time */
    size_t heap_len, heap_cap;
    size_t inflight, quota;        /* connections popped and not finished (<= quota) */
    struct tconn *close_list;      /* orphaned tconns to close */
    struct tconn *fin_head;        /* finished in this turn, applied under the lock */
    struct job *fail_head;         /* could not start (out of memory) */
    /* loop thread only */
    int epfd, evfd;
    struct replay_http_inc *inc_pool[INC_POOL];
    size_t n_inc_pool;
    struct tconn *idle_head, *idle_tail, *busy_head;
    size_t open_fds, fd_budget;
    uint64_t rng;
    uint8_t *rbuf;                 /* read buffer */
    struct sm_buf gz;
    struct sm_gzip *gzc;           /* --target-gzip compressor of this loop */
};

struct replay_engine {
    struct replay_engine_cfg cfg;
    pthread_mutex_t lock;
    pthread_cond_t space_cv;
    size_t low_water;              /* input resumes once pending is down to this */
    bool input_held;               /* has_room() said no; until low_water */
    atomic_bool no_hold;           /* stopping: target_down_wait no longer applies */
    _Atomic uint64_t down_warn_ms; /* last "target unreachable" warning */
    uint64_t err_warn_ms;          /* last "request failed" warning (lock held) */
    uint64_t err_unwarned;         /* target errors since then, not logged */
    /* Sent requests whose source response has not come yet: they can only
     * finish with more input (the response ends with the connection's next
     * request or close), so they do not count against max_pending - holding
     * the input for them would deadlock with many open connections. */
    uint64_t awaiting_source;
    bool stopping;

    struct rconn **tab;
    size_t tab_size, nconns;

    /* Finished jobs wait here (still linked in their connection) while the
     * tuple thread builds and writes their tuples outside the engine lock;
     * tlock serialises the comparison hook and the writer. */
    struct job *done, *done_tail;
    size_t done_n;                 /* jobs on the done list */
    unsigned done_busy;            /* batches being written */
    unsigned done_waiters;         /* threads waiting for the done list to be worked off */
    /* the tuple thread waits for any job (idle), or for a batch of
     * TUPLE_BATCH jobs for at most TUPLE_WAIT_NS (batching): woken per job it
     * cost a wakeup and a lock handoff per request */
    bool tuple_idle, tuple_batching;
    pthread_mutex_t tlock;
    pthread_cond_t done_cv;
    pthread_t tuple_thread;
    bool tuple_started;

    /* sender loops: each source connection belongs to one (round robin) */
    struct sloop *loops;
    unsigned nloops, next_loop;
    size_t fd_budget;              /* descriptors for target connections, all loops */

    /* target */
    struct sm_http_client *client;   /* parses and checks the target options; not used to send */
    struct sm_http_endpoint ep;       /* its URL parts, credentials and SigV4 settings */
    bool host_is_ip, drop_auth;
    char *basic_line;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int family;
    SSL_CTX *ssl_ctx;

    bool timeline_set;
    int64_t t0_ns;
    uint64_t start_mono_ns;

    struct replay_engine_stats st;
    uint64_t bulk_item_retries;
    uint64_t *lags;
    size_t nlags;
    uint64_t lag_max;
};

static void wake_loop(struct sloop *L)
{
    if (L->sleeping) {
        L->sleeping = false;
        uint64_t one = 1;
        ssize_t w = write(L->evfd, &one, sizeof(one));
        (void)w;
    }
}

/* ---- connection table ---- */

static uint64_t hstr(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static struct rconn *conn_find(struct replay_engine *e, const char *key, bool create, const char *conn_id)
{
    uint64_t h = hstr(key) & (e->tab_size - 1);
    for (struct rconn *c = e->tab[h]; c; c = c->hnext)
        if (!strcmp(c->key, key))
            return c;
    if (!create)
        return NULL;
    struct rconn *c = sm_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->key = sm_strdup(key);
    c->conn_id = sm_strdup(conn_id);
    if (!c->key || !c->conn_id) {
        sm_free(c->key);
        sm_free(c->conn_id);
        sm_free(c);
        return NULL;
    }
    c->hnext = e->tab[h];
    e->tab[h] = c;
    e->nconns++;
    return c;
}

static void conn_maybe_free(struct replay_engine *e, struct rconn *c)
{
    if (!c->closed || c->jobs || c->busy || c->in_heap)
        return;
    uint64_t h = hstr(c->key) & (e->tab_size - 1);
    struct rconn **pp = &e->tab[h];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    e->nconns--;
    if (c->tc) {        /* its loop closes and frees it */
        struct sloop *L = c->loop;
        c->tc->rc = NULL;
        c->tc->fnext = L->close_list;
        L->close_list = c->tc;
        wake_loop(L);
    }
    sm_free(c->key);
    sm_free(c->conn_id);
    sm_free(c);
}

/* ---- heap of connections ready to send, by due time of their next job ---- */

static uint64_t cdue(const struct rconn *c)
{
    return c->to_send ? c->to_send->due_ns : UINT64_MAX;
}

static void heap_swap(struct sloop *L, size_t a, size_t b)
{
    struct rconn *t = L->heap[a];
    L->heap[a] = L->heap[b];
    L->heap[b] = t;
    L->heap[a]->heap_pos = a;
    L->heap[b]->heap_pos = b;
}

static void heap_up(struct sloop *L, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (cdue(L->heap[p]) <= cdue(L->heap[i]))
            break;
        heap_swap(L, p, i);
        i = p;
    }
}

static void heap_down(struct sloop *L, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < L->heap_len && cdue(L->heap[l]) < cdue(L->heap[m]))
            m = l;
        if (r < L->heap_len && cdue(L->heap[r]) < cdue(L->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(L, i, m);
        i = m;
    }
}

/* wake: signal an idle worker (not needed when the caller is a worker that
 * goes back to the heap itself right away). */
static int heap_push(struct rconn *c, bool wake)
{
    struct sloop *L = c->loop;
    if (c->in_heap || c->busy || !c->to_send)
        return SM_OK;
    if (sm_grow(&L->heap, &L->heap_cap, L->heap_len, sizeof(*L->heap), 1024))
        return SM_ENOMEM;
    c->in_heap = true;
    c->heap_pos = L->heap_len;
    L->heap[L->heap_len++] = c;
    heap_up(L, c->heap_pos);
    /* only when the loop would not get to c by itself: c is now the earliest
     * (a later one is covered by the loop's timer for the earliest) and a
     * worker is free (else the loop starts it when a response frees one).
     * An eventfd write and a wakeup per request showed in profiles. */
    if (wake && c->heap_pos == 0 && L->inflight < L->quota)
        wake_loop(L);
    return SM_OK;
}

static struct rconn *heap_pop(struct sloop *L)
{
    struct rconn *c = L->heap[0];
    L->heap_len--;
    if (L->heap_len) {
        L->heap[0] = L->heap[L->heap_len];
        L->heap[0]->heap_pos = 0;
        heap_down(L, 0);
    }
    c->in_heap = false;
    return c;
}

/* ---- job state (lock held) ---- */

/* The input's hysteresis: it stops at max_pending requests queued or in
 * flight (sent ones awaiting their source response do not count: they
 * finish only with more input) and goes on once they are down to low_water. */
static uint64_t input_load(const struct replay_engine *e)
{
    return e->st.pending - e->awaiting_source;
}

static bool input_full(const struct replay_engine *e)
{
    return input_load(e) >= e->cfg.max_pending;
}

static bool input_drained(const struct replay_engine *e)
{
    return input_load(e) <= e->low_water;
}

static void set_target_done(struct replay_engine *e, struct job *j)
{
    j->target_done = true;
    j->target_done_ns = sm_now_ns();
    if (!j->source_done) {
        e->awaiting_source++;
        if (input_drained(e))
            pthread_cond_broadcast(&e->space_cv);
    }
}

static void set_source_done(struct replay_engine *e, struct job *j)
{
    if (j->target_done)
        e->awaiting_source--;
    j->source_done = true;
}

/* ---- tuples ---- */

static void job_free(struct job *j)
{
    replay_http_msg_free(&j->src_req);
    replay_http_msg_free(&j->tgt_req);
    replay_http_msg_free(&j->tgt_resp);
    for (size_t i = 0; i < j->nresps; i++)
        replay_http_msg_free(&j->resps[i].msg);
    sm_free(j->resps);
    sm_free(j->body_owned);
    sm_free(j->bulk_map);
    json_decref(j->bulk_merged);
    replay_http_msg_free(&j->src_resp);
    sm_free(j);
}

/* pre, the decimal of v, post */
static int put_uint(struct sm_buf *b, const char *pre, uint64_t v, const char *post)
{
    char num[20];
    int rc = sm_buf_append_str(b, pre);
    if (!rc)
        rc = sm_buf_append(b, num, sm_fmt_u64(num, v));
    return rc ? rc : sm_buf_append_str(b, post);
}

/* Per tuple-writing thread: the line being built and the serialiser's
 * buffers, reused from tuple to tuple. */
struct tuple_ctx {
    struct sm_buf line;
    struct replay_tuple_scratch scratch;
};

static void tuple_ctx_init(struct tuple_ctx *tc)
{
    memset(tc, 0, sizeof(*tc));
    sm_buf_init(&tc->line, (size_t)1 << 31);
}

static void tuple_ctx_fini(struct tuple_ctx *tc)
{
    sm_buf_free(&tc->line);
    replay_tuple_scratch_free(&tc->scratch);
}

/* ",\"key\":" (no comma first) */
static int put_key(struct sm_buf *l, const char *key)
{
    int rc = l->len > 1 ? sm_buf_append(l, ",\"", 2) : sm_buf_append(l, "\"", 1);
    if (!rc)
        rc = sm_buf_append_str(l, key);
    return rc ? rc : sm_buf_append(l, "\":", 2);
}

/* "key": message JSON; left out when it fails (as a NULL member was); pt
 * (may be NULL) says where it went */
static void put_msg(struct sm_buf *l, struct replay_tuple_scratch *s, const char *key,
                    const struct replay_http_msg *m, int64_t ms, struct replay_tuple_part *pt)
{
    size_t mark = l->len, off, po;
    if (put_key(l, key) || (off = l->len, replay_tuple_msg_dump(m, ms, l, s, &po))) {
        l->len = mark;
        return;
    }
    if (pt)
        *pt = (struct replay_tuple_part){ m, off, l->len - off, po };
}

/* Builds and writes one tuple; runs without the engine lock (the job is
 * finished: no other thread touches it). The tuple is serialised straight
 * from the messages (replay_tuple_msg_dump(); same bytes as the jansson tree
 * it replaced). Returns 1 when the statuses match, -1 when they differ, 0
 * otherwise; *written says whether the tuple went out. */
static int write_tuple(struct replay_engine *e, struct job *j, bool *written, struct tuple_ctx *tc)
{
    int match = 0;
    *written = false;
    struct sm_buf *l = &tc->line;
    sm_buf_reset(l);
    if (sm_buf_append(l, "{", 1))
        return 0;
    struct replay_tuple_parts parts = { { 0 }, { 0 }, { 0 } };
    if (j->parse_ok) {
        put_msg(l, &tc->scratch, "sourceRequest", &j->src_req, -1, &parts.req);
        if (!j->dropped)
            put_msg(l, &tc->scratch, "targetRequest", &j->tgt_req, -1, NULL);
    }
    if (j->have_src_resp)
        put_msg(l, &tc->scratch, "sourceResponse", &j->src_resp, j->src_ms, &parts.src);
    int rc = put_key(l, "targetResponses") || sm_buf_append(l, "[", 1);
    for (size_t i = 0; i < j->nresps && !rc; i++) {     /* every attempt that got a response */
        size_t mark = l->len, po;
        if ((i && l->data[l->len - 1] != '[' && sm_buf_append(l, ",", 1)) ||
            replay_tuple_msg_dump(&j->resps[i].msg, j->resps[i].ms, l, &tc->scratch, &po)) {
            l->len = mark;
        } else {
            size_t off = l->data[mark] == ',' ? mark + 1 : mark;
            parts.tgt = (struct replay_tuple_part){ &j->resps[i].msg, off, l->len - off, po };
        }
    }
    if (rc || sm_buf_append(l, "]", 1))
        return 0;
    const struct replay_http_msg *tgt = j->have_merged ? &j->tgt_resp
                                      : j->nresps ? &j->resps[j->nresps - 1].msg : NULL;
    char cid[512], num[20];
    size_t nl = sm_fmt_u64(num, j->index), cl = strlen(j->conn->conn_id);
    cl = SM_MIN(cl, sizeof(cid) - nl - 2);
    memcpy(cid, j->conn->conn_id, cl);
    cid[cl] = '.';
    memcpy(cid + cl + 1, num, nl);
    cid[cl + 1 + nl] = 0;
    /* string members as json_string() took them: left out unless UTF-8 */
    if (sm_utf8_valid(cid, cl + 1 + nl) && (put_key(l, "connectionId") || replay_tuple_dump_str(l, cid, cl + 1 + nl)))
        return 0;
    if (put_uint(l, ",\"numRequests\":", j->attempts, j->error[0] ? ",\"numErrors\":1" : ",\"numErrors\":0"))
        return 0;
    if (j->error[0] && sm_utf8_valid(j->error, strlen(j->error)) &&
        (put_key(l, "error") || replay_tuple_dump_str(l, j->error, strlen(j->error))))
        return 0;
    if (j->src_wait_expired && sm_buf_append_str(l, ",\"sourceResponseTimedOut\":true"))
        return 0;
    if (j->have_src_resp && tgt)
        match = j->src_resp.status == tgt->status ? 1 : -1;
    pthread_mutex_lock(&e->tlock);
    if (e->cfg.compare)
        e->cfg.compare(e->cfg.compare_arg, l, &parts);
    if (!sm_buf_append(l, "}", 1) && e->cfg.tuples &&
        replay_tuple_writer_write_line(e->cfg.tuples, l->data, l->len) == SM_OK)
        *written = true;
    pthread_mutex_unlock(&e->tlock);
    return match;
}

/* Called with the lock held when either half of a job finished: once both
 * are, the job goes to the done list, which the tuple thread works off. */
static void job_maybe_finish(struct replay_engine *e, struct job *j)
{
    if (!j->target_done || !j->source_done)
        return;
    j->done_next = NULL;
    if (e->done_tail)
        e->done_tail->done_next = j;
    else
        e->done = j;
    e->done_tail = j;
    e->done_n++;
    if (e->tuple_idle || (e->tuple_batching && e->done_n >= TUPLE_BATCH)) {
        e->tuple_idle = e->tuple_batching = false;     /* one signal, not one per job */
        pthread_cond_signal(&e->done_cv);
    }
}

/* Called with the lock held after the tuple of j was written (or skipped);
 * the caller frees j (after releasing the lock). */
static void job_final(struct replay_engine *e, struct job *j)
{
    if (j->origin.partition >= 0 && e->cfg.release)
        e->cfg.release(e->cfg.release_arg, &j->origin);
    struct rconn *c = j->conn;
    struct job **pp = &c->jobs;
    struct job *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp)
        *pp = j->next;
    if (c->jobs_tail == j)
        c->jobs_tail = prev;
    e->st.pending--;
    /* hysteresis: waking the input for every finished request costs a
     * context switch per request when it is held at max_pending */
    if (input_drained(e))
        pthread_cond_broadcast(&e->space_cv);
    conn_maybe_free(e, c);
}

/* With the lock held: writes the tuples of every job on the done list with
 * the lock released (JSON building, comparison and serialisation are most of
 * a request's cost: under the engine lock they serialised all workers), then
 * finishes them (offset release, pending count) under the lock again. */
static void process_done(struct replay_engine *e, struct tuple_ctx *tc)
{
    while (e->done) {
        struct job *batch = e->done;
        e->done = e->done_tail = NULL;
        e->done_n = 0;
        e->done_busy++;
        pthread_mutex_unlock(&e->lock);
        for (struct job *j = batch; j; j = j->done_next) {
            j->tuple_written = false;
            j->match = j->dropped ? 0 : (int8_t)write_tuple(e, j, &j->tuple_written, tc);
        }
        pthread_mutex_lock(&e->lock);
        struct job *jn;
        for (struct job *j = batch; j; j = jn) {
            jn = j->done_next;
            if (j->tuple_written)
                e->st.tuples++;
            if (j->match > 0)
                e->st.status_match++;
            else if (j->match < 0)
                e->st.status_differ++;
            job_final(e, j);
        }
        e->done_busy--;
        if (e->done_waiters)   /* not for the input thread: it waits for pending, woken by job_final */
            pthread_cond_broadcast(&e->space_cv);
        /* free outside the lock: the loop thread must not wait on it */
        pthread_mutex_unlock(&e->lock);
        for (struct job *j = batch; j; j = jn) {
            jn = j->done_next;
            job_free(j);
        }
        pthread_mutex_lock(&e->lock);
    }
}

/* The tuple thread: writes the tuples of finished requests, so that senders
 * go straight on to their next request and the input thread keeps reading. */
static void *tuple_worker(void *arg)
{
    struct replay_engine *e = arg;
    struct tuple_ctx tc;
    tuple_ctx_init(&tc);
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->done && !e->stopping) {
            e->tuple_idle = true;
            pthread_cond_wait(&e->done_cv, &e->lock);
        }
        e->tuple_idle = false;
        if (!e->done)
            break;
        if (e->done_n < TUPLE_BATCH && !e->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += TUPLE_WAIT_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            e->tuple_batching = true;
            pthread_cond_timedwait(&e->done_cv, &e->lock, &ts);
            e->tuple_batching = false;
        }
        process_done(e, &tc);
    }
    pthread_mutex_unlock(&e->lock);
    tuple_ctx_fini(&tc);
    return NULL;
}

/* ---- target client setup (URL, auth, TLS) ---- */

static int parse_target(struct replay_engine *e, char *err, size_t errlen)
{
    const struct sm_http_opts *o = e->cfg.target;
    /* the common client parses and validates the options (URL, files, auth
     * combinations, credentials) with the same messages as every other tool */
    if (!(e->client = sm_http_client_new(o, "target", err, errlen)))
        return SM_ECONFIG;
    sm_http_client_endpoint(e->client, &e->ep);
    int rc = SM_OK;
    if (e->ep.username) {
        size_t ul = strlen(e->ep.username), wl = strlen(e->ep.password);
        char *up = sm_malloc(ul + wl + 2);
        char *enc = sm_malloc(sm_base64_enc_len(ul + wl + 1) + 1);
        e->basic_line = sm_malloc(sm_base64_enc_len(ul + wl + 1) + 32);
        if (up && enc && e->basic_line) {
            memcpy(up, e->ep.username, ul);
            up[ul] = ':';
            memcpy(up + ul + 1, e->ep.password, wl);
            size_t el = sm_base64_encode(up, ul + wl + 1, enc);
            enc[el] = 0;
            sprintf(e->basic_line, "Authorization: Basic %s", enc);
            memset(up, 0, ul + wl + 1);
        } else {
            rc = SM_ENOMEM;
        }
        sm_free(up);
        sm_free(enc);
        if (rc)
            return rc;
    }

    /* address */
    struct addrinfo hints = { 0 }, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int gr = getaddrinfo(e->ep.host, e->ep.port, &hints, &ai);
    if (gr || !ai) {
        rc = sm_errf(err, errlen, SM_ECONFIG, "target: cannot resolve %s: %s", e->ep.host, gai_strerror(gr));
        goto out;
    }
    memcpy(&e->addr, ai->ai_addr, ai->ai_addrlen);
    e->addrlen = ai->ai_addrlen;
    e->family = ai->ai_family;
    freeaddrinfo(ai);

    /* TLS: verification on unless --target-insecure */
    if (e->ep.tls) {
        e->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!e->ssl_ctx) {
            rc = sm_errf(err, errlen, SM_ENOMEM, "target: cannot create the TLS context");
            goto out;
        }
        SSL_CTX_set_min_proto_version(e->ssl_ctx, TLS1_2_VERSION);
        SSL_CTX_set_mode(e->ssl_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
        if (o->insecure) {
            SSL_CTX_set_verify(e->ssl_ctx, SSL_VERIFY_NONE, NULL);
        } else {
            SSL_CTX_set_verify(e->ssl_ctx, SSL_VERIFY_PEER, NULL);
            if (o->ca_cert ? SSL_CTX_load_verify_locations(e->ssl_ctx, o->ca_cert, NULL) != 1
                           : SSL_CTX_set_default_verify_paths(e->ssl_ctx) != 1) {
                rc = sm_errf(err, errlen, SM_ECONFIG, "target: cannot load CA certificates%s%s",
                             o->ca_cert ? " from " : "", o->ca_cert ? o->ca_cert : "");
                goto out;
            }
        }
        if (o->client_cert &&
            (SSL_CTX_use_certificate_chain_file(e->ssl_ctx, o->client_cert) != 1 ||
             SSL_CTX_use_PrivateKey_file(e->ssl_ctx, o->client_key ? o->client_key : o->client_cert,
                                         SSL_FILETYPE_PEM) != 1)) {
            rc = sm_errf(err, errlen, SM_ECONFIG, "target: cannot load the client certificate/key");
            goto out;
        }
        struct in6_addr tmp;
        e->host_is_ip = inet_pton(AF_INET, e->ep.host, &tmp) == 1 || inet_pton(AF_INET6, e->ep.host, &tmp) == 1;
    }
out:
    return rc;
}

/* ---- sending: the sender loops ----
 *
 * Each loop (struct sloop, one thread) owns the target connections
 * (struct tconn) of its source connections: non-blocking sockets in its own
 * epoll set, requests written by hand, responses framed with
 * llhttp, TLS through OpenSSL memory-less SSL objects on the sockets.
 * Due times and retry backoffs are the epoll timeout (epoll_pwait2, ns). */

#define RBUF_SIZE (64u << 10)

static const char *const skip_headers[] = { "host", "content-length", "transfer-encoding", "connection",
                                            "keep-alive", "expect", "proxy-connection", NULL };

static bool skip_header(const char *n, bool drop_auth)
{
    for (size_t i = 0; skip_headers[i]; i++)
        if (!strcasecmp(n, skip_headers[i]))
            return true;
    return drop_auth && !strcasecmp(n, "authorization");
}

static uint64_t rnd(struct sloop *L)
{
    uint64_t x = L->rng;      /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    L->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* capped exponential backoff with full jitter, as the common client */
static uint64_t backoff_ms(struct sloop *L, unsigned retry)
{
    struct replay_engine *e = L->e;
    const struct sm_http_opts *o = e->cfg.target;
    uint64_t cap = o->backoff_cap_ms, d = o->backoff_base_ms;
    for (unsigned i = 1; i < retry && d < cap; i++)
        d *= 2;
    d = SM_MIN(d, cap);
    return d ? rnd(L) % (d + 1) : 0;
}

static uint64_t retry_after_ms(const struct replay_http_msg *m)
{
    const char *v = replay_http_header(m, "retry-after");
    if (!v || !*v)
        return 0;
    uint64_t secs, ms;
    if (!sm_parse_u64(v, UINT64_MAX / 1000, &secs)) {
        ms = secs * 1000;
    } else {
        time_t t = curl_getdate(v, NULL), now = time(NULL);
        if (t == (time_t)-1 || t <= now)
            return 0;
        ms = (uint64_t)(t - now) * 1000;
    }
    return SM_MIN(ms, (uint64_t)SM_HTTP_RETRY_AFTER_MAX_MS);
}

/* Serialises the current attempt of j into tc->out: request line with the
 * URL's path prefix, Host of the target, the request's own headers (minus
 * hop-by-hop ones and, when the client authenticates, Authorization), the
 * client's auth (Basic header, or SigV4 signed now), Content-Length. */
static int build_request(struct sloop *L, struct tconn *tc, struct job *j, char *err, size_t errlen)
{
    struct replay_engine *e = L->e;
    const struct replay_http_msg *q = &j->tgt_req;
    const struct sm_http_opts *o = e->cfg.target;
    struct sm_buf *b = &tc->out;
    sm_buf_reset(b);
    tc->out_off = 0;
    const uint8_t *body = j->body;
    size_t blen = j->body_len;
    bool gz = false;
    if (o->gzip && blen && !replay_http_header(q, "content-encoding")) {
        if (sm_gzip(&L->gzc, &L->gz, body, blen))
            return sm_errf(err, errlen, SM_ENOMEM, "gzip failed");
        body = L->gz.data;
        blen = L->gz.len;
        gz = true;
    }
    const char *uri = q->uri && *q->uri ? q->uri : "/";
    const char *slash = uri[0] == '/' ? "" : "/";
    /* appends, not sm_buf_printf(): vsnprintf cost ~2k instructions a call */
    int rc = sm_buf_append_str(b, q->method);
    if (!rc && !(rc = sm_buf_append(b, " ", 1)) && !(rc = sm_buf_append_str(b, e->ep.prefix)) &&
        !(rc = sm_buf_append_str(b, slash)) && !(rc = sm_buf_append_str(b, uri)) &&
        !(rc = sm_buf_append(b, " HTTP/1.1\r\n", 11)) && !(rc = sm_buf_append_str(b, e->ep.host_hdr)))
        rc = sm_buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < q->n_headers && !rc; i++) {
        const struct replay_header *h = &q->headers[i];
        if (skip_header(h->name, e->drop_auth))
            continue;
        size_t nl = strlen(h->name), vl = strlen(h->value);
        if (!(rc = sm_buf_reserve(b, nl + vl + 4))) {
            memcpy(b->data + b->len, h->name, nl);
            b->data[b->len + nl] = ':';
            b->data[b->len + nl + 1] = ' ';
            memcpy(b->data + b->len + nl + 2, h->value, vl);
            b->data[b->len + nl + 2 + vl] = '\r';
            b->data[b->len + nl + 3 + vl] = '\n';
            b->len += nl + vl + 4;
        }
    }
    if (!rc && gz)
        rc = sm_buf_append_str(b, "Content-Encoding: gzip\r\n");
    if (!rc && e->basic_line && !(rc = sm_buf_append_str(b, e->basic_line)))
        rc = sm_buf_append(b, "\r\n", 2);
    if (!rc && e->ep.sigv4) {
        /* the signer wants "Name: value" lines; signing is per attempt (time) */
        const char **lines = sm_calloc(q->n_headers + 4, sizeof(*lines));
        char **owned = sm_calloc(q->n_headers + 1, sizeof(*owned));
        size_t n = 0, no = 0;
        rc = lines && owned ? SM_OK : SM_ENOMEM;
        for (size_t i = 0; i < q->n_headers && !rc; i++) {
            if (skip_header(q->headers[i].name, e->drop_auth))
                continue;
            size_t l = strlen(q->headers[i].name) + strlen(q->headers[i].value) + 3;
            if (!(owned[no] = sm_malloc(l))) {
                rc = SM_ENOMEM;
                break;
            }
            snprintf(owned[no], l, "%s: %s", q->headers[i].name, q->headers[i].value);
            lines[n++] = owned[no++];
        }
        if (!rc) {
            lines[n++] = e->ep.host_hdr;
            if (gz)
                lines[n++] = "Content-Encoding: gzip";
            char path[8192];
            snprintf(path, sizeof(path), "%s%s%s", e->ep.prefix, slash, uri);
            char *qm = strchr(path, '?');
            if (qm)
                *qm = 0;
            struct sm_sigv4_cfg cfg = { e->ep.region, e->ep.service, e->ep.creds, 0 };
            struct sm_sigv4_req sreq = { q->method, path, qm ? qm + 1 : NULL, lines, body, blen, NULL,
                                         (int64_t)(sm_wall_ms() / 1000) };
            struct sm_sigv4_result res;
            char sub[256] = "";
            if ((rc = sm_sigv4_sign(&cfg, &sreq, &res, sub, sizeof(sub)))) {
                sm_errf(err, errlen, rc, "SigV4: %s", sub);
            } else {
                for (size_t i = 0; res.add_headers[i] && !rc; i++)
                    rc = sm_buf_printf(b, "%s\r\n", res.add_headers[i]);
                sm_sigv4_result_free(&res);
            }
        }
        for (size_t i = 0; i < no; i++)
            sm_free(owned[i]);
        sm_free(owned);
        sm_free(lines);
    }
    bool want_len = blen || !strcmp(q->method, "POST") || !strcmp(q->method, "PUT") ||
                    !strcmp(q->method, "PATCH") || replay_http_header(q, "content-length");
    if (!rc && want_len)
        rc = put_uint(b, "Content-Length: ", blen, "\r\n");
    if (!rc)
        rc = sm_buf_append(b, "\r\n", 2);
    if (!rc && blen)
        rc = sm_buf_append(b, body, blen);
    if (rc && !err[0])
        sm_errf(err, errlen, rc, "cannot build the request: %s", sm_strerror(rc));
    return rc;
}

/* -- lists (loop thread) -- */

static void idle_remove(struct sloop *L, struct tconn *tc)
{
    if (!tc->in_idle)
        return;
    if (tc->iprev)
        tc->iprev->inext = tc->inext;
    else
        L->idle_head = tc->inext;
    if (tc->inext)
        tc->inext->iprev = tc->iprev;
    else
        L->idle_tail = tc->iprev;
    tc->iprev = tc->inext = NULL;
    tc->in_idle = false;
}

static void idle_add(struct sloop *L, struct tconn *tc)
{
    tc->iprev = L->idle_tail;
    tc->inext = NULL;
    if (L->idle_tail)
        L->idle_tail->inext = tc;
    else
        L->idle_head = tc;
    L->idle_tail = tc;
    tc->in_idle = true;
}

static void busy_remove(struct sloop *L, struct tconn *tc)
{
    if (!tc->in_busy)
        return;
    if (tc->bprev)
        tc->bprev->bnext = tc->bnext;
    else
        L->busy_head = tc->bnext;
    if (tc->bnext)
        tc->bnext->bprev = tc->bprev;
    tc->bprev = tc->bnext = NULL;
    tc->in_busy = false;
}

static void busy_add(struct sloop *L, struct tconn *tc)
{
    tc->bprev = NULL;
    tc->bnext = L->busy_head;
    if (L->busy_head)
        L->busy_head->bprev = tc;
    L->busy_head = tc;
    tc->in_busy = true;
}

static void tc_close(struct sloop *L, struct tconn *tc)
{
    if (tc->ssl) {
        SSL_free(tc->ssl);
        tc->ssl = NULL;
    }
    if (tc->fd >= 0) {
        close(tc->fd);     /* also leaves the epoll set */
        tc->fd = -1;
        L->open_fds--;
    }
    idle_remove(L, tc);
    tc->want_out = false;
    tc->reused = false;
}

/* A response parser for an attempt (they are per job, not per target
 * connection: 10k open connections would hold 10k of them otherwise). */
static struct replay_http_inc *inc_get(struct sloop *L)
{
    return L->n_inc_pool ? L->inc_pool[--L->n_inc_pool] : replay_http_inc_new();
}

static void inc_put(struct sloop *L, struct replay_http_inc *h)
{
    if (!h)
        return;
    if (L->n_inc_pool < INC_POOL && replay_http_inc_begin(h, false, NULL) == SM_OK)
        L->inc_pool[L->n_inc_pool++] = h;   /* begin: whatever it held is freed */
    else
        replay_http_inc_free(h);
}

static void tc_free(struct sloop *L, struct tconn *tc)
{
    tc_close(L, tc);
    busy_remove(L, tc);
    sm_buf_free(&tc->out);
    inc_put(L, tc->inc);
    sm_free(tc);
}

/* closes and frees the target connections whose source connection ended
 * (under the engine lock, or after the loop thread stopped) */
static void free_orphans(struct sloop *L)
{
    while (L->close_list) {
        struct tconn *tc = L->close_list;
        L->close_list = tc->fnext;
        tc_free(L, tc);
    }
}

static void tc_want_out(struct sloop *L, struct tconn *tc, bool want)
{
    if (tc->want_out == want || tc->fd < 0)
        return;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0), .data.ptr = tc };
    epoll_ctl(L->epfd, EPOLL_CTL_MOD, tc->fd, &ev);
    tc->want_out = want;
}

/* -- finishing attempts -- */

static void attempt_begin(struct sloop *L, struct tconn *tc);

/* The job is done (response or final error): it goes to the finished list,
 * applied under the engine lock at the next loop turn. */
static void job_done(struct sloop *L, struct tconn *tc)
{
    struct job *j = tc->job;
    busy_remove(L, tc);
    if (j->bulk_merged && j->nresps > 1) {
        /* the response as if the retried items had succeeded the first time */
        size_t n = json_array_size(json_object_get(j->bulk_merged, "items"));
        bool errors = false;
        for (size_t i = 0; i < n; i++) {
            json_t *it = json_array_get(json_object_get(j->bulk_merged, "items"), i);
            const char *k;
            json_t *v;
            json_object_foreach(it, k, v) {
                json_int_t st = json_integer_value(json_object_get(v, "status"));
                if (st < 200 || st > 299)
                    errors = true;
            }
        }
        json_object_set_new(j->bulk_merged, "errors", json_boolean(errors));
        char *s = json_dumps(j->bulk_merged, JSON_COMPACT);
        struct replay_http_msg *m = &j->tgt_resp;
        memset(m, 0, sizeof(*m));
        m->http_major = m->http_minor = 1;
        m->status = 200;
        m->reason = sm_strdup("OK");
        m->complete = true;
        replay_http_set_header(m, "content-type", "application/json; charset=UTF-8");
        if (s)
            replay_http_set_body(m, s, strlen(s));
        free(s);
        j->have_merged = true;
    }
    j->have_tgt_resp = j->nresps > 0;
    tc->fnext = L->fin_head;
    L->fin_head = tc;
    sm_buf_free(&tc->out);
    inc_put(L, tc->inc);
    tc->inc = NULL;
    if (tc->fd >= 0) {
        tc->state = TC_IDLE;
        idle_add(L, tc);
    } else {
        tc->state = TC_CLOSED;
    }
}

static void schedule_retry(struct sloop *L, struct tconn *tc, uint64_t extra_ms)
{
    uint64_t d = SM_MAX(backoff_ms(L, tc->job->attempts), extra_ms);
    tc->retry_at = sm_now_ns() + d * 1000000ull;
    tc->state = TC_BACKOFF;
    sm_dbg(SM_DBG_HTTP, "replay: %s: retry in %llu ms", tc->job->tgt_req.uri, (unsigned long long)d);
}

static bool attempts_left(struct replay_engine *e, const struct job *j)
{
    return j->attempts <= (unsigned)e->cfg.target->max_retries;
}

/* An unreachable target: retried until target_down_wait from the first attempt. */
#define DOWN_PROBE_MAX_MS 5000u

static bool down_wait_left(struct replay_engine *e, const struct job *j)
{
    return e->cfg.target_down_wait_ms && !atomic_load_explicit(&e->no_hold, memory_order_relaxed) &&
           sm_now_ns() - j->t_first_ns < e->cfg.target_down_wait_ms * 1000000ull;
}

void replay_engine_stop_holding(struct replay_engine *e)
{
    atomic_store_explicit(&e->no_hold, true, memory_order_relaxed);
}

/* one warning every 10 s at most, whichever loop meets the refusal */
static void warn_down(struct replay_engine *e, const char *what)
{
    uint64_t now = sm_now_ms(), last = atomic_load_explicit(&e->down_warn_ms, memory_order_relaxed);
    if ((last && now - last < 10000) ||
        !atomic_compare_exchange_strong_explicit(&e->down_warn_ms, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    sm_log_warn("replay: target %s unreachable (%s): requests are held and retried for up to %.0f s each "
                "(--target-down-wait) before they count as errors", e->ep.base, what,
                (double)e->cfg.target_down_wait_ms / 1000.0);
}

/* A transport error on the attempt in flight. */
static void conn_error(struct sloop *L, struct tconn *tc, const char *what, bool retryable)
{
    struct replay_engine *e = L->e;
    struct job *j = tc->job;
    bool fresh = tc->reused && !tc->resent && tc->resp_len == 0 &&
                 (tc->state == TC_SEND || tc->state == TC_RECV);
    bool unreached = tc->unreached;
    tc->unreached = false;
    tc_close(L, tc);
    if (fresh && retryable) {
        /* a kept-alive connection the target closed while idle: resend on a
         * new one without counting an attempt (as curl does) */
        tc->resent = true;
        j->attempts--;
        attempt_begin(L, tc);
        return;
    }
    if (retryable && attempts_left(e, j)) {
        sm_dbg(SM_DBG_HTTP, "replay: %s %s: attempt %u: %s", j->tgt_req.method, j->tgt_req.uri, j->attempts, what);
        schedule_retry(L, tc, 0);
        return;
    }
    if (retryable && unreached && down_wait_left(e, j)) {
        warn_down(e, what);
        j->down_retries++;
        schedule_retry(L, tc, 0);
        uint64_t cap = sm_now_ns() + DOWN_PROBE_MAX_MS * 1000000ull;
        if (tc->retry_at > cap)
            tc->retry_at = cap;
        return;
    }
    snprintf(j->error, sizeof(j->error), "%s %.200s%s%.160s: %.100s after %u attempt%s", j->tgt_req.method, e->ep.base,
             j->tgt_req.uri[0] == '/' ? "" : "/", j->tgt_req.uri, what, j->attempts, j->attempts == 1 ? "" : "s");
    job_done(L, tc);
}

static void ssl_error_text(struct tconn *tc, int ret, char *out, size_t n, bool *retryable)
{
    unsigned long le = ERR_get_error();
    long vr = tc->ssl ? SSL_get_verify_result(tc->ssl) : X509_V_OK;
    *retryable = false;
    if (vr != X509_V_OK) {
        snprintf(out, n, "TLS: certificate verify failed: %s", X509_verify_cert_error_string(vr));
    } else if (le) {
        char b[256];
        ERR_error_string_n(le, b, sizeof(b));
        snprintf(out, n, "TLS: %s", b);
    } else {
        snprintf(out, n, "TLS: %s", ret == 0 ? "connection closed" : strerror(errno));
        *retryable = true;
    }
    ERR_clear_error();
}

/* -- bulk item retries -- */

static bool is_bulk(const char *uri)
{
    size_t l = strcspn(uri, "?");
    return (l >= 6 && !memcmp(uri + l - 6, "/_bulk", 6)) || (l == 5 && !memcmp(uri, "_bulk", 5));
}

struct bulk_item { size_t start, end; };

/* Splits an NDJSON bulk body into items (action line + source line, delete
 * has none). Returns the count, or (size_t)-1 when the body is not one. */
static size_t bulk_split(const uint8_t *b, size_t n, struct bulk_item **out)
{
    size_t cap = 16, cnt = 0, p = 0;
    struct bulk_item *it = sm_malloc(cap * sizeof(*it));
    if (!it)
        return (size_t)-1;
    while (p < n) {
        const uint8_t *nl = memchr(b + p, '\n', n - p);
        size_t le = nl ? (size_t)(nl - b) + 1 : n;
        size_t ll = le - p - (nl ? 1 : 0);
        if (!ll || (ll == 1 && b[p] == '\r')) {
            p = le;
            continue;
        }
        json_error_t je;
        json_t *a = json_loadb((const char *)b + p, ll, 0, &je);
        const char *act = a && json_is_object(a) && json_object_size(a) == 1 ? json_object_iter_key(json_object_iter(a)) : NULL;
        bool has_src = act && strcmp(act, "delete");
        json_decref(a);
        if (!act) {
            sm_free(it);
            return (size_t)-1;
        }
        size_t start = p;
        p = le;
        if (has_src) {
            const uint8_t *nl2 = p < n ? memchr(b + p, '\n', n - p) : NULL;
            p = nl2 ? (size_t)(nl2 - b) + 1 : n;
        }
        if (cnt == cap) {
            struct bulk_item *ni = sm_realloc(it, 2 * cap * sizeof(*it));
            if (!ni) {
                sm_free(it);
                return (size_t)-1;
            }
            it = ni;
            cap *= 2;
        }
        it[cnt].start = start;
        it[cnt].end = p;
        cnt++;
    }
    *out = it;
    return cnt;
}

static bool item_retryable(json_t *item)
{
    const char *k;
    json_t *v;
    json_object_foreach(item, k, v) {
        json_int_t st = json_integer_value(json_object_get(v, "status"));
        return st == 429 || st >= 500;
    }
    return false;
}

/* After a 200 to a _bulk request: when items failed with retryable statuses
 * (429, 5xx) and attempts are left, makes the body of the next attempt from
 * only those items and returns true. Merges this response's item results into
 * the first response's (j->bulk_merged). */
static bool bulk_prepare_retry(struct replay_engine *e, struct job *j, const struct replay_http_msg *resp)
{
    if (replay_http_header(&j->tgt_req, "content-encoding"))
        return false;          /* compressed bulk bodies are not split */
    struct sm_buf b;
    sm_buf_init(&b, (size_t)1 << 31);
    if (replay_http_body_decoded(resp, &b) != SM_OK || !b.len ||
        !memmem(b.data, b.len, "\"errors\"", 8)) {
        sm_buf_free(&b);
        if (j->bulk_merged && j->bulk_map) {
            /* nothing to merge from a body we cannot read: keep what we have */
        }
        return false;
    }
    json_error_t je;
    json_t *r = json_loadb((const char *)b.data, b.len, 0, &je);
    sm_buf_free(&b);
    json_t *items = json_object_get(r, "items");
    struct bulk_item *bi = NULL;
    size_t n = json_is_array(items) ? bulk_split(j->body, j->body_len, &bi) : (size_t)-1;
    if (n == (size_t)-1 || n != json_array_size(items)) {
        sm_free(bi);
        json_decref(r);
        return false;
    }
    /* merge into the first response */
    if (!j->bulk_merged) {
        j->bulk_merged = json_incref(r);
    } else if (j->bulk_map) {
        json_t *mi = json_object_get(j->bulk_merged, "items");
        for (size_t i = 0; i < n; i++)
            json_array_set(mi, j->bulk_map[i], json_array_get(items, i));
        if (j->bulk_merged != r)
            json_object_set(j->bulk_merged, "took", json_object_get(r, "took"));
    }
    bool retry = json_is_true(json_object_get(r, "errors")) && attempts_left(e, j);
    size_t nr = 0;
    for (size_t i = 0; retry && i < n; i++)
        nr += item_retryable(json_array_get(items, i));
    if (!retry || !nr) {
        sm_free(bi);
        json_decref(r);
        return false;
    }
    size_t tot = 0;
    for (size_t i = 0; i < n; i++)
        if (item_retryable(json_array_get(items, i)))
            tot += bi[i].end - bi[i].start + 1;
    uint8_t *nb = sm_malloc(tot + 1);
    size_t *nm = sm_malloc(nr * sizeof(*nm));
    if (!nb || !nm) {
        sm_free(nb);
        sm_free(nm);
        sm_free(bi);
        json_decref(r);
        return false;
    }
    size_t off = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!item_retryable(json_array_get(items, i)))
            continue;
        size_t l = bi[i].end - bi[i].start;
        memcpy(nb + off, j->body + bi[i].start, l);
        off += l;
        if (!l || nb[off - 1] != '\n')
            nb[off++] = '\n';
        nm[k++] = j->bulk_map ? j->bulk_map[i] : i;
    }
    sm_free(bi);
    json_decref(r);
    sm_free(j->body_owned);
    sm_free(j->bulk_map);
    j->body_owned = nb;
    j->body = nb;
    j->body_len = off;
    j->bulk_map = nm;
    j->bulk_n = nr;
    __atomic_add_fetch(&e->bulk_item_retries, nr, __ATOMIC_RELAXED);
    return true;
}

/* A complete response of len bytes in data. */
static void response_done(struct sloop *L, struct tconn *tc, bool keep)
{
    struct replay_engine *e = L->e;
    struct job *j = tc->job;
    struct replay_http_msg m;
    char err[256];
    uint64_t now = sm_now_ns();
    if (!keep)
        tc_close(L, tc);
    tc->reused = tc->fd >= 0;
    tc->resent = false;
    if (replay_http_inc_take(tc->inc, &m, err, sizeof(err)) != SM_OK) {
        tc_close(L, tc);
        snprintf(j->error, sizeof(j->error), "bad response from the target: %s", err);
        job_done(L, tc);
        return;
    }
    struct attempt_resp *nr = sm_realloc(j->resps, (j->nresps + 1) * sizeof(*nr));
    if (!nr) {
        replay_http_msg_free(&m);
        snprintf(j->error, sizeof(j->error), "out of memory");
        job_done(L, tc);
        return;
    }
    j->resps = nr;
    nr[j->nresps].msg = m;
    nr[j->nresps].ms = (int64_t)((now - tc->t_attempt) / 1000000u);
    j->nresps++;
    const struct replay_http_msg *r = &nr[j->nresps - 1].msg;
    if (sm_http_status_retriable(r->status) && attempts_left(e, j)) {
        schedule_retry(L, tc, retry_after_ms(r));
        return;
    }
    if (r->status == 200 && is_bulk(j->tgt_req.uri) && bulk_prepare_retry(e, j, r)) {
        schedule_retry(L, tc, 0);
        return;
    }
    job_done(L, tc);
}

/* -- I/O -- */

static void tc_flush(struct sloop *L, struct tconn *tc);

static void tc_handshake(struct sloop *L, struct tconn *tc)
{
    int r = SSL_connect(tc->ssl);
    if (r == 1) {
        tc->state = TC_SEND;
        tc_flush(L, tc);
        return;
    }
    int se = SSL_get_error(tc->ssl, r);
    if (se == SSL_ERROR_WANT_READ) {
        tc_want_out(L, tc, false);
    } else if (se == SSL_ERROR_WANT_WRITE) {
        tc_want_out(L, tc, true);
    } else {
        char msg[320];
        bool retryable;
        ssl_error_text(tc, r, msg, sizeof(msg), &retryable);
        conn_error(L, tc, msg, retryable);
    }
}

static void tc_connected(struct sloop *L, struct tconn *tc)
{
    struct replay_engine *e = L->e;
    tc->unreached = false;
    if (!e->ep.tls) {
        tc->state = TC_SEND;
        tc_flush(L, tc);
        return;
    }
    tc->ssl = SSL_new(e->ssl_ctx);
    if (!tc->ssl || SSL_set_fd(tc->ssl, tc->fd) != 1) {
        conn_error(L, tc, "TLS: cannot create the session", false);
        return;
    }
    if (!e->host_is_ip)
        SSL_set_tlsext_host_name(tc->ssl, e->ep.host);
    if (!e->cfg.target->insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(tc->ssl);
        if (e->host_is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, e->ep.host);
        else
            SSL_set1_host(tc->ssl, e->ep.host);
    }
    tc->state = TC_HANDSHAKE;
    tc->deadline = tc->t_attempt + e->cfg.target->connect_timeout_ms * 1000000ull;
    tc_handshake(L, tc);
}

static void tc_connect(struct sloop *L, struct tconn *tc)
{
    struct replay_engine *e = L->e;
    while (L->open_fds >= L->fd_budget && L->idle_head)
        tc_close(L, L->idle_head);   /* least recently used idle connection */
    if (L->open_fds >= L->fd_budget) {
        conn_error(L, tc, "too many open target connections", true);
        return;
    }
    int fd = socket(e->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        conn_error(L, tc, strerror(errno), true);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    tc->fd = fd;
    tc->unreached = true;
    L->open_fds++;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = tc };
    epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev);
    tc->want_out = true;
    tc->deadline = tc->t_attempt + e->cfg.target->connect_timeout_ms * 1000000ull;
    if (connect(fd, (struct sockaddr *)&e->addr, e->addrlen) == 0) {
        tc_connected(L, tc);
    } else if (errno == EINPROGRESS) {
        tc->state = TC_CONNECTING;
    } else {
        char m[160];
        snprintf(m, sizeof(m), "%s", strerror(errno));
        m[0] = (char)tolower((unsigned char)m[0]);
        conn_error(L, tc, m, true);
    }
}

static void tc_flush(struct sloop *L, struct tconn *tc)
{
    struct replay_engine *e = L->e;
    while (tc->out_off < tc->out.len) {
        size_t n = tc->out.len - tc->out_off;
        ssize_t w;
        if (tc->ssl) {
            int r = SSL_write(tc->ssl, tc->out.data + tc->out_off, (int)SM_MIN(n, (size_t)INT32_MAX));
            if (r <= 0) {
                int se = SSL_get_error(tc->ssl, r);
                if (se == SSL_ERROR_WANT_WRITE || se == SSL_ERROR_WANT_READ) {
                    tc_want_out(L, tc, se == SSL_ERROR_WANT_WRITE);
                    return;
                }
                char msg[320];
                bool retryable;
                ssl_error_text(tc, r, msg, sizeof(msg), &retryable);
                conn_error(L, tc, msg, true);
                return;
            }
            w = r;
        } else {
            w = send(tc->fd, tc->out.data + tc->out_off, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    tc_want_out(L, tc, true);
                    return;
                }
                conn_error(L, tc, errno == EPIPE || errno == ECONNRESET ? "connection reset" : strerror(errno), true);
                return;
            }
        }
        tc->out_off += (size_t)w;
    }
    tc_want_out(L, tc, false);
    tc->state = TC_RECV;
    tc->deadline = tc->t_attempt + e->cfg.target->timeout_ms * 1000000ull;
    tc->resp_done = false;
    tc->resp_len = 0;
    inc_put(L, tc->inc);   /* a parser is taken when the first response bytes come */
    tc->inc = NULL;
}

/* Feeds the n bytes just read at p (n = 0: the connection ended) to the
 * response parser: the message is built as it arrives, no byte is kept or
 * parsed twice. Returns true when the attempt ended. */
static bool tc_feed(struct sloop *L, struct tconn *tc, const uint8_t *p, size_t n, bool eof)
{
    struct replay_engine *e = L->e;
    size_t used;
    bool done;
    char m[300];
    if (!tc->inc) {
        /* taken here, not when the request is sent: thousands of requests may
         * wait for their responses, each parser is ~1 KiB */
        if (eof) {
            conn_error(L, tc, "connection closed without a response", true);
            return true;
        }
        if (!(tc->inc = inc_get(L)) || replay_http_inc_begin(tc->inc, false, tc->job->tgt_req.method) != SM_OK) {
            conn_error(L, tc, "out of memory", false);
            return true;
        }
    }
    if (replay_http_inc_feed(tc->inc, p, eof ? 0 : n, &used, &done, m, sizeof(m)) != SM_OK) {
        char b[320];
        snprintf(b, sizeof(b), "bad response: %s", m);
        conn_error(L, tc, b, false);
        return true;
    }
    if (done) {
        tc->resp_done = true;
        response_done(L, tc, !eof && replay_http_inc_keep_alive(tc->inc));
        return true;
    }
    if (eof) {
        conn_error(L, tc, tc->resp_len ? "connection closed in the middle of the response"
                                       : "connection closed without a response", true);
        return true;
    }
    tc->resp_len += used;
    if (tc->resp_len > e->cfg.target->max_response + (64u << 10)) {
        conn_error(L, tc, "response over the size cap", false);
        return true;
    }
    return false;
}

static void tc_read(struct sloop *L, struct tconn *tc)
{
    for (;;) {
        ssize_t r;
        if (tc->ssl) {
            int sr = SSL_read(tc->ssl, L->rbuf, RBUF_SIZE);
            if (sr <= 0) {
                int se = SSL_get_error(tc->ssl, sr);
                if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
                    tc_want_out(L, tc, se == SSL_ERROR_WANT_WRITE);
                    return;
                }
                if (se == SSL_ERROR_ZERO_RETURN || (se == SSL_ERROR_SYSCALL && sr == 0)) {
                    ERR_clear_error();
                    r = 0;
                } else {
                    char msg[320];
                    bool retryable;
                    ssl_error_text(tc, sr, msg, sizeof(msg), &retryable);
                    conn_error(L, tc, msg, true);
                    return;
                }
            } else {
                r = sr;
            }
        } else {
            r = recv(tc->fd, L->rbuf, RBUF_SIZE, 0);
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return;
                conn_error(L, tc, errno == ECONNRESET ? "connection reset" : strerror(errno), true);
                return;
            }
        }
        if (r == 0) {
            tc_feed(L, tc, L->rbuf, 0, true);
            return;
        }
        if (tc_feed(L, tc, L->rbuf, (size_t)r, false))
            return;
        if (!tc->ssl && (size_t)r < RBUF_SIZE)
            return;      /* drained: wait for the next readiness */
    }
}

/* Starts (or restarts) an attempt of tc->job. */
static void attempt_begin(struct sloop *L, struct tconn *tc)
{
    struct job *j = tc->job;
    char err[256] = "";
    j->attempts++;
    tc->t_attempt = sm_now_ns();
    if (!j->t_first_ns)
        j->t_first_ns = tc->t_attempt;
    if (build_request(L, tc, j, err, sizeof(err))) {
        snprintf(j->error, sizeof(j->error), "%s", err);
        job_done(L, tc);
        return;
    }
    idle_remove(L, tc);
    if (tc->fd < 0) {
        tc_connect(L, tc);
    } else {
        tc->state = TC_SEND;
        tc_flush(L, tc);
    }
}

static void job_start(struct sloop *L, struct rconn *c, struct job *j)
{
    struct tconn *tc = c->tc;
    if (!tc) {
        tc = sm_calloc(1, sizeof(*tc));
        if (!tc) {
            snprintf(j->error, sizeof(j->error), "out of memory");
            j->done_next = L->fail_head;
            L->fail_head = j;
            return;
        }
        tc->fd = -1;
        tc->rc = c;
        sm_buf_init(&tc->out, SIZE_MAX / 2);
        c->tc = tc;
    }
    tc->job = j;
    j->body = j->tgt_req.body;
    j->body_len = j->tgt_req.body_len;
    j->attempts = 0;
    j->t_first_ns = 0;
    busy_add(L, tc);
    attempt_begin(L, tc);
}

static void tc_event(struct sloop *L, struct tconn *tc, uint32_t ev)
{
    switch (tc->state) {
    case TC_CONNECTING: {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(tc->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            char m[160];
            snprintf(m, sizeof(m), "%s", strerror(soerr));
            m[0] = (char)tolower((unsigned char)m[0]);
            conn_error(L, tc, m, true);
        } else if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            tc_connected(L, tc);
        }
        break;
    }
    case TC_HANDSHAKE:
        tc_handshake(L, tc);
        break;
    case TC_SEND:
        tc_flush(L, tc);
        break;
    case TC_RECV:
        tc_read(L, tc);
        break;
    default: {
        /* idle (or in backoff): the target closed it, or sent garbage */
        char b[256];
        ssize_t r = tc->ssl ? 0 : recv(tc->fd, b, sizeof(b), MSG_DONTWAIT);
        if (tc->ssl || r >= 0 || (errno != EAGAIN && errno != EINTR))
            tc_close(L, tc);
        break;
    }
    }
}

/* Retries due and timeouts; returns the next instant something is due. */
static uint64_t busy_scan(struct sloop *L, uint64_t now)
{
    struct replay_engine *e = L->e;
    uint64_t next = UINT64_MAX;
    struct tconn *tc = L->busy_head, *tn;
    for (; tc; tc = tn) {
        tn = tc->bnext;
        if (tc->state == TC_BACKOFF) {
            if (now >= tc->retry_at)
                attempt_begin(L, tc);
            else
                next = SM_MIN(next, tc->retry_at);
            continue;
        }
        if (tc->state == TC_IDLE || tc->state == TC_CLOSED)
            continue;
        if (now >= tc->deadline) {
            char m[96];
            bool conn = tc->state == TC_CONNECTING || tc->state == TC_HANDSHAKE;
            snprintf(m, sizeof(m), "%s timed out after %llu ms", conn ? "connect" : "request",
                     (unsigned long long)(conn ? e->cfg.target->connect_timeout_ms : e->cfg.target->timeout_ms));
            conn_error(L, tc, m, true);
        } else {
            next = SM_MIN(next, tc->deadline);
        }
    }
    return next;
}

static void record_lag(struct replay_engine *e, uint64_t lag_ns)
{
    uint64_t us = lag_ns / 1000;
    e->lags[e->nlags % LAG_SAMPLES] = us;
    e->nlags++;
    if (us > e->lag_max)
        e->lag_max = us;
}

/* Under the lock: a request that got no response from the target (its error
 * is in its tuple) is also logged, the first at once and then one line every
 * 10 s at most with the number left out: a target that cannot be spoken to at
 * all (certificate refused, wrong port) shows on the terminal, not only in the
 * tuples and the summary's count. */
static void warn_target_error(struct replay_engine *e, const struct job *j)
{
    uint64_t now = sm_now_ms();
    if (e->err_warn_ms && now - e->err_warn_ms < 10000) {
        e->err_unwarned++;
        return;
    }
    if (e->err_unwarned)
        sm_log_warn("replay: request failed: %s (and %" PRIu64 " more target errors since the last warning)",
                    j->error[0] ? j->error : "no response", e->err_unwarned);
    else
        sm_log_warn("replay: request failed: %s", j->error[0] ? j->error : "no response");
    e->err_warn_ms = now;
    e->err_unwarned = 0;
}

/* Under the lock: a job's target side ended (loop finished or failed it). */
static void finish_locked(struct replay_engine *e, struct job *j)
{
    struct rconn *c = j->conn;
    c->loop->inflight--;
    e->st.attempts += j->attempts;
    e->st.down_retries += j->down_retries;
    if (j->have_tgt_resp)
        e->st.sent++;
    else {
        e->st.target_errors++;
        warn_target_error(e, j);
    }
    set_target_done(e, j);
    c->busy = false;
    struct job *n = j->next;
    while (n && n->target_done)
        n = n->next;
    c->to_send = n;
    heap_push(c, false);
    job_maybe_finish(e, j);
}

/* Under the lock: applies the jobs the loop finished since the last turn. */
static void apply_finished(struct sloop *L)
{
    struct replay_engine *e = L->e;
    struct tconn *tc = L->fin_head, *tn;
    L->fin_head = NULL;
    for (; tc; tc = tn) {
        tn = tc->fnext;
        tc->fnext = NULL;
        struct job *j = tc->job;
        tc->job = NULL;
        finish_locked(e, j);
    }
    struct job *j = L->fail_head, *jn;
    L->fail_head = NULL;
    for (; j; j = jn) {
        jn = j->done_next;
        j->done_next = NULL;
        finish_locked(e, j);
    }
}

struct start_item { struct rconn *c; struct job *j; };

static void *loop_main(void *arg)
{
    struct sloop *L = arg;
    struct replay_engine *e = L->e;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);   /* due times to the microsecond, not 50 us */
    enum { MAXEV = 256 };
    struct epoll_event evs[MAXEV];
    size_t scap = L->quota < 4096 ? L->quota : 4096;
    struct start_item *start = sm_calloc(scap, sizeof(*start));
    bool have_pwait2 = true;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        apply_finished(L);
        free_orphans(L);
        if (e->stopping)
            break;
        uint64_t now = sm_now_ns();
        size_t ns = 0;
        while (start && ns < scap && L->heap_len && L->inflight < L->quota && cdue(L->heap[0]) <= now) {
            struct rconn *c = heap_pop(L);
            struct job *j = c->to_send;
            c->busy = true;
            L->inflight++;
            if (j->due_ns)
                record_lag(e, now > j->due_ns ? now - j->due_ns : 0);
            start[ns].c = c;
            start[ns].j = j;
            ns++;
        }
        uint64_t next = UINT64_MAX;
        if (L->heap_len && L->inflight < L->quota)
            next = cdue(L->heap[0]);
        L->sleeping = !ns && !L->fin_head;
        pthread_mutex_unlock(&e->lock);

        for (size_t i = 0; i < ns; i++)
            job_start(L, start[i].c, start[i].j);
        now = sm_now_ns();
        next = SM_MIN(next, busy_scan(L, now));
        if (L->fin_head || L->fail_head || ns)
            next = now;   /* apply them first (the loop's lock turn is cheap) */
        struct timespec ts, *tsp = NULL;
        if (next != UINT64_MAX) {
            uint64_t d = next > now ? next - now : 0;
            ts.tv_sec = (time_t)(d / 1000000000u);
            ts.tv_nsec = (long)(d % 1000000000u);
            tsp = &ts;
        }
        int n;
        if (have_pwait2) {
            n = epoll_pwait2(L->epfd, evs, MAXEV, tsp, NULL);
            if (n < 0 && errno == ENOSYS) {
                have_pwait2 = false;
                n = 0;
            }
        } else {
            int ms = tsp ? (int)SM_MIN((uint64_t)ts.tv_sec * 1000 + ((uint64_t)ts.tv_nsec + 999999) / 1000000,
                                       (uint64_t)INT32_MAX) : -1;
            n = epoll_wait(L->epfd, evs, MAXEV, ms);
        }
        for (int i = 0; i < n; i++) {
            struct tconn *tc = evs[i].data.ptr;
            if (!tc) {
                uint64_t v;
                ssize_t r = read(L->evfd, &v, sizeof(v));
                (void)r;
                continue;
            }
            if (tc->fd >= 0)
                tc_event(L, tc, evs[i].events);
        }
        pthread_mutex_lock(&e->lock);
        L->sleeping = false;
    }
    pthread_mutex_unlock(&e->lock);
    sm_free(start);
    return NULL;
}

/* ---- public ---- */

struct replay_engine *replay_engine_new(const struct replay_engine_cfg *cfg, char *err, size_t errlen)
{
    struct replay_engine *e = sm_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->cfg = *cfg;
    if (!e->cfg.workers)
        e->cfg.workers = 256;
    if (!e->cfg.max_pending)
        e->cfg.max_pending = e->cfg.speedup > 0 || e->cfg.input_never_blocks
                                 ? 10000 : SM_MIN(SM_MAX(8 * (size_t)e->cfg.workers, (size_t)512), (size_t)10000);
    unsigned nl = e->cfg.send_threads;
    if (!nl) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nl = cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus;
    }
    e->nloops = SM_MIN(nl, e->cfg.workers);
    e->tab_size = 1u << 14;
    e->tab = sm_calloc(e->tab_size, sizeof(*e->tab));
    e->lags = sm_calloc(LAG_SAMPLES, sizeof(*e->lags));
    e->loops = sm_calloc(e->nloops, sizeof(*e->loops));
    for (unsigned i = 0; e->loops && i < e->nloops; i++)
        e->loops[i].epfd = e->loops[i].evfd = -1;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->tlock, NULL);
    pthread_cond_init(&e->space_cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    e->low_water = e->cfg.max_pending - 1 - e->cfg.max_pending / 8;
    if (!e->tab || !e->lags || !e->loops) {
        sm_errf(err, errlen, SM_ENOMEM, "out of memory");
        replay_engine_free(e);
        return NULL;
    }
    uint64_t seed = sm_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)e;
    for (unsigned i = 0; i < e->nloops; i++) {
        struct sloop *L = &e->loops[i];
        L->e = e;
        /* the in-flight requests shared out: every loop at least one (nloops <= workers) */
        L->quota = e->cfg.workers / e->nloops + (i < e->cfg.workers % e->nloops);
        L->rng = (seed + i * 0x9e3779b97f4a7c15ull) | 1;
        L->rbuf = sm_malloc(RBUF_SIZE);
        sm_buf_init(&L->gz, SIZE_MAX / 2);
        if (!L->rbuf) {
            sm_errf(err, errlen, SM_ENOMEM, "out of memory");
            replay_engine_free(e);
            return NULL;
        }
    }
    if (parse_target(e, err, errlen)) {
        replay_engine_free(e);
        return NULL;
    }
    const struct sm_http_opts *o = e->cfg.target;
    e->drop_auth = o->username || o->aws_region || o->aws_service || e->basic_line;
    /* one socket per open source connection: use the whole descriptor limit */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        e->fd_budget = rl.rlim_cur > 1024 ? (size_t)SM_MIN(rl.rlim_cur - 256, (rlim_t)1 << 24)
                                          : (size_t)rl.rlim_cur / 2;
    } else {
        e->fd_budget = 512;
    }
    for (unsigned i = 0; i < e->nloops; i++) {
        struct sloop *L = &e->loops[i];
        L->fd_budget = SM_MAX(e->fd_budget / e->nloops, (size_t)1);
        L->epfd = epoll_create1(EPOLL_CLOEXEC);
        L->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        if (L->epfd < 0 || L->evfd < 0 || epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->evfd, &ev)) {
            sm_errf(err, errlen, SM_EIO, "epoll: %s", strerror(errno));
            replay_engine_free(e);
            return NULL;
        }
    }
    if (!pthread_create(&e->tuple_thread, NULL, tuple_worker, e))
        e->tuple_started = true;
    for (unsigned i = 0; i < e->nloops && e->tuple_started; i++) {
        struct sloop *L = &e->loops[i];
        if (pthread_create(&L->thread, NULL, loop_main, L))
            break;
        L->started = true;
    }
    if (!e->tuple_started || !e->loops[e->nloops - 1].started) {
        sm_errf(err, errlen, SM_ENOMEM, "cannot start the sender threads");
        replay_engine_free(e);
        return NULL;
    }
    return e;
}

/* node \x1f conn, truncated to n - 1 bytes as snprintf() did (without its
 * cost: two calls per request) */
static void conn_key(char *out, size_t n, const char *node, const char *conn)
{
    size_t nl = node ? strlen(node) : 0, cl = strlen(conn), w = 0;
    size_t k = SM_MIN(nl, n - 1);
    if (k)
        memcpy(out, node, k);
    w = k;
    if (w < n - 1)
        out[w++] = '\x1f';
    k = SM_MIN(cl, n - 1 - w);
    memcpy(out + w, conn, k);
    out[w + k] = 0;
}

void replay_engine_on_request(void *arg, const struct replay_msg *req)
{
    struct replay_engine *e = arg;
    struct job *j = sm_calloc(1, sizeof(*j));
    if (!j) {
        sm_log_err("replay: out of memory: request %s.%llu lost", req->conn_id, (unsigned long long)req->index);
        if (req->origin.partition >= 0 && e->cfg.release) {
            pthread_mutex_lock(&e->lock);
            e->cfg.release(e->cfg.release_arg, &req->origin);
            pthread_mutex_unlock(&e->lock);
        }
        return;
    }
    j->index = req->index;
    j->origin = req->origin;
    j->src_req_last_ns = req->last_ns;
    char err[256];
    if (replay_http_parse(req->data, req->len, true, NULL, &j->src_req, err, sizeof(err)) == SM_OK &&
        j->src_req.complete) {
        j->parse_ok = true;
        /* the target copy, then transform */
        if (replay_http_msg_copy(&j->src_req, &j->tgt_req)) {
            snprintf(j->error, sizeof(j->error), "out of memory");
            j->parse_ok = false;
        }
        if (j->parse_ok && e->cfg.transform) {
            int tr = replay_transform_apply(e->cfg.transform, &j->tgt_req, err, sizeof(err));
            if (tr == REPLAY_TX_DROP)
                j->dropped = true;
            else if (tr < 0) {
                snprintf(j->error, sizeof(j->error), "transformation failed: %s", err);
                j->parse_ok = false;
            }
        }
    } else {
        snprintf(j->error, sizeof(j->error), "unparsable source request: %s",
                 j->src_req.method ? "incomplete message" : err);
    }

    pthread_mutex_lock(&e->lock);
    if (!e->cfg.input_never_blocks && input_full(e))
        while (!input_drained(e) && !e->stopping)
            pthread_cond_wait(&e->space_cv, &e->lock);
    char key[512];
    conn_key(key, sizeof(key), req->node_id, req->conn_id);
    struct rconn *c = conn_find(e, key, true, req->conn_id);
    if (!c) {
        if (j->origin.partition >= 0 && e->cfg.release)
            e->cfg.release(e->cfg.release_arg, &j->origin);
        pthread_mutex_unlock(&e->lock);
        job_free(j);
        return;
    }
    if (!c->loop)
        c->loop = &e->loops[e->next_loop++ % e->nloops];
    j->conn = c;
    e->st.submitted++;
    e->st.pending++;
    if (!e->timeline_set) {
        e->timeline_set = true;
        e->t0_ns = req->first_ns;
        e->start_mono_ns = sm_now_ns();
    }
    if (e->cfg.speedup > 0) {
        double off = (double)(req->first_ns - e->t0_ns) / e->cfg.speedup;
        j->due_ns = e->start_mono_ns + (uint64_t)(off > 0 ? off : 0) + 1;
    }
    if (c->jobs_tail)
        c->jobs_tail->next = j;
    else
        c->jobs = j;
    c->jobs_tail = j;
    if (!j->parse_ok || j->dropped) {
        if (j->dropped)
            e->st.dropped++;
        else if (strstr(j->error, "transformation"))
            e->st.transform_errors++;
        else
            e->st.unparsable++;
        set_target_done(e, j);
    } else if (!c->to_send) {
        c->to_send = j;
        heap_push(c, true);
    }
    pthread_mutex_unlock(&e->lock);
}

void replay_engine_on_response(void *arg, const struct replay_msg *resp, enum replay_resp_end end)
{
    struct replay_engine *e = arg;
    char key[512];
    conn_key(key, sizeof(key), resp->node_id, resp->conn_id);
    pthread_mutex_lock(&e->lock);
    struct rconn *c = conn_find(e, key, false, NULL);
    /* usually the newest request: responses follow their request in the input */
    struct job *j = c ? c->jobs_tail : NULL;
    if (j && j->index != resp->index)
        for (j = c->jobs; j && j->index != resp->index; j = j->next)
            ;
    if (!j || j->source_done) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    const char *method = j->parse_ok ? j->src_req.method : NULL;
    pthread_mutex_unlock(&e->lock);

    /* parse outside the lock: the job cannot go away before source_done */
    struct replay_http_msg m;
    char err[256];
    bool ok = resp->len && replay_http_parse(resp->data, resp->len, false, method, &m, err, sizeof(err)) == SM_OK;

    pthread_mutex_lock(&e->lock);
    if (ok) {
        j->src_resp = m;
        j->have_src_resp = true;
        j->src_ms = (resp->last_ns - j->src_req_last_ns) / 1000000;
        if (j->src_ms < 0)
            j->src_ms = 0;
    }
    j->src_end = end;
    set_source_done(e, j);
    job_maybe_finish(e, j);
    pthread_mutex_unlock(&e->lock);
}

void replay_engine_on_closed(void *arg, const char *node_id, const char *conn_id, bool expired)
{
    struct replay_engine *e = arg;
    char key[512];
    conn_key(key, sizeof(key), node_id, conn_id);
    pthread_mutex_lock(&e->lock);
    struct rconn *c = conn_find(e, key, false, NULL);
    if (c) {
        c->closed = true;
        conn_maybe_free(e, c);
    }
    pthread_mutex_unlock(&e->lock);
}

void replay_engine_expire_source_waits(struct replay_engine *e, bool all)
{
    if (!all && !e->cfg.source_wait_ms)
        return;
    uint64_t now = sm_now_ns(), wait = e->cfg.source_wait_ms * 1000000ull;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->tab_size; i++) {
        struct rconn *c = e->tab[i], *cn;
        for (; c; c = cn) {
            cn = c->hnext;
            struct job *j = c->jobs, *jn;
            bool last_job = false;
            for (; j && !last_job; j = jn) {
                jn = j->next;
                last_job = !jn;          /* c may be freed by the last finish */
                if (!j->target_done || j->source_done)
                    continue;
                if (!all && now - j->target_done_ns < wait)
                    continue;
                set_source_done(e, j);
                j->src_wait_expired = true;
                e->st.source_waits_expired++;
                job_maybe_finish(e, j);
            }
        }
    }
    if (all) {   /* shutdown: callers expect these tuples written on return */
        struct tuple_ctx tc;
        tuple_ctx_init(&tc);
        process_done(e, &tc);
        tuple_ctx_fini(&tc);
        e->done_waiters++;
        while (e->done_busy || e->done)
            pthread_cond_wait(&e->space_cv, &e->lock);
        e->done_waiters--;
    }
    pthread_mutex_unlock(&e->lock);
}

int replay_engine_flush_tuples(struct replay_engine *e)
{
    int rc = SM_OK;
    pthread_mutex_lock(&e->tlock);
    if (e->cfg.tuples)
        rc = replay_tuple_writer_flush(e->cfg.tuples);
    pthread_mutex_unlock(&e->tlock);
    return rc;
}

uint64_t replay_engine_pending(struct replay_engine *e)
{
    pthread_mutex_lock(&e->lock);
    uint64_t n = e->st.pending;
    pthread_mutex_unlock(&e->lock);
    return n;
}

bool replay_engine_has_room(struct replay_engine *e)
{
    pthread_mutex_lock(&e->lock);
    if (input_full(e))
        e->input_held = true;
    else if (input_drained(e))
        e->input_held = false;
    bool room = !e->input_held;
    pthread_mutex_unlock(&e->lock);
    return room;
}

void replay_engine_drain(struct replay_engine *e)
{
    pthread_mutex_lock(&e->lock);
    while (e->st.pending)
        pthread_cond_wait(&e->space_cv, &e->lock);
    pthread_mutex_unlock(&e->lock);
    pthread_mutex_lock(&e->tlock);
    if (e->cfg.tuples)
        replay_tuple_writer_flush(e->cfg.tuples);
    pthread_mutex_unlock(&e->tlock);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void replay_engine_stats(struct replay_engine *e, struct replay_engine_stats *out)
{
    pthread_mutex_lock(&e->lock);
    *out = e->st;
    size_t n = e->nlags < LAG_SAMPLES ? e->nlags : LAG_SAMPLES;
    uint64_t *tmp = n ? sm_malloc(n * sizeof(*tmp)) : NULL;
    if (tmp)
        memcpy(tmp, e->lags, n * sizeof(*tmp));
    out->lag_max_us = e->lag_max;
    out->bulk_item_retries = __atomic_load_n(&e->bulk_item_retries, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&e->lock);
    pthread_mutex_lock(&e->tlock);
    out->tuples_lost = replay_tuple_writer_lost(e->cfg.tuples);
    pthread_mutex_unlock(&e->tlock);
    if (tmp) {
        qsort(tmp, n, sizeof(*tmp), cmp_u64);
        out->lag_p50_us = tmp[n / 2];
        out->lag_p99_us = tmp[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
        sm_free(tmp);
    }
}

void replay_engine_free(struct replay_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    for (unsigned i = 0; e->loops && i < e->nloops; i++) {
        e->loops[i].sleeping = e->loops[i].evfd >= 0;
        wake_loop(&e->loops[i]);
    }
    pthread_cond_broadcast(&e->space_cv);
    pthread_cond_broadcast(&e->done_cv);
    pthread_mutex_unlock(&e->lock);
    for (unsigned i = 0; e->loops && i < e->nloops; i++)
        if (e->loops[i].started)
            pthread_join(e->loops[i].thread, NULL);
    if (e->tuple_started)
        pthread_join(e->tuple_thread, NULL);
    for (unsigned i = 0; e->loops && i < e->nloops; i++)
        free_orphans(&e->loops[i]);
    for (size_t i = 0; e->tab && i < e->tab_size; i++) {
        struct rconn *c = e->tab[i], *cn;
        for (; c; c = cn) {
            cn = c->hnext;
            struct job *j = c->jobs, *jn;
            for (; j; j = jn) {
                jn = j->next;
                job_free(j);
            }
            if (c->tc)
                tc_free(c->loop, c->tc);
            sm_free(c->key);
            sm_free(c->conn_id);
            sm_free(c);
        }
    }
    for (unsigned i = 0; e->loops && i < e->nloops; i++) {
        struct sloop *L = &e->loops[i];
        if (L->epfd >= 0)
            close(L->epfd);
        if (L->evfd >= 0)
            close(L->evfd);
        sm_free(L->rbuf);
        sm_buf_free(&L->gz);
        sm_gzip_free(L->gzc);
        sm_free(L->heap);
        for (size_t k = 0; k < L->n_inc_pool; k++)
            replay_http_inc_free(L->inc_pool[k]);
    }
    sm_free(e->loops);
    if (e->ssl_ctx)
        SSL_CTX_free(e->ssl_ctx);
    if (e->basic_line)
        memset(e->basic_line, 0, strlen(e->basic_line));
    sm_free(e->basic_line);
    sm_http_client_free(e->client);   /* owns the strings of e->ep */
    sm_free(e->tab);
    sm_free(e->lags);
    pthread_cond_destroy(&e->space_cv);
    pthread_cond_destroy(&e->done_cv);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->tlock);
    sm_free(e);
}
