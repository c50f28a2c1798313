#include "send/engine.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LAG_SAMPLES 65536

struct rconn;

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
    /* target result */
    bool have_tgt_resp;
    struct replay_http_msg tgt_resp;
    int64_t tgt_ms;
    unsigned attempts;
    char error[512];
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
    bool busy, in_heap, closed;
    size_t heap_pos;
};

struct replay_engine {
    struct replay_engine_cfg cfg;
    pthread_mutex_t lock;
    /* Idle workers all sleep until the earliest due time: the first one the
     * kernel runs takes the request. (A single "timer" worker handing the role
     * on saves wakeups but doubled p99 lateness on a loaded 2-core machine:
     * one thread's scheduling delay instead of the best of several.) */
    pthread_cond_t work_cv, space_cv;
    size_t low_water;              /* input resumes once pending is down to this */
    /* Sent requests whose source response has not come yet: they can only
     * finish with more input (the response ends with the connection's next
     * request or close), so they do not count against max_pending - holding
     * the input for them would deadlock with many open connections. */
    uint64_t awaiting_source;
    pthread_t *threads;
    unsigned nthreads;
    bool stopping;

    struct rconn **tab;
    size_t tab_size, nconns;
    struct rconn **heap;
    size_t heap_len, heap_cap;

    /* Finished jobs wait here (still linked in their connection) while the
     * thread that finished them builds and writes their tuples outside the
     * engine lock; tlock serialises the comparison hook and the writer. */
    struct job *done, *done_tail;
    unsigned done_busy;            /* batches being written */
    pthread_mutex_t tlock;
    pthread_cond_t done_cv;
    pthread_t tuple_thread;
    bool tuple_started;

    bool timeline_set;
    int64_t t0_ns;
    uint64_t start_mono_ns;

    struct replay_engine_stats st;
    uint64_t *lags;
    size_t nlags;
    uint64_t lag_max;
};

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
    sm_free(c->key);
    sm_free(c->conn_id);
    sm_free(c);
}

/* ---- heap of connections ready to send, by due time of their next job ---- */

static uint64_t cdue(const struct rconn *c)
{
    return c->to_send ? c->to_send->due_ns : UINT64_MAX;
}

static void heap_swap(struct replay_engine *e, size_t a, size_t b)
{
    struct rconn *t = e->heap[a];
    e->heap[a] = e->heap[b];
    e->heap[b] = t;
    e->heap[a]->heap_pos = a;
    e->heap[b]->heap_pos = b;
}

static void heap_up(struct replay_engine *e, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (cdue(e->heap[p]) <= cdue(e->heap[i]))
            break;
        heap_swap(e, p, i);
        i = p;
    }
}

static void heap_down(struct replay_engine *e, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < e->heap_len && cdue(e->heap[l]) < cdue(e->heap[m]))
            m = l;
        if (r < e->heap_len && cdue(e->heap[r]) < cdue(e->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(e, i, m);
        i = m;
    }
}

/* wake: signal an idle worker (not needed when the caller is a worker that
 * goes back to the heap itself right away). */
static int heap_push(struct replay_engine *e, struct rconn *c, bool wake)
{
    if (c->in_heap || c->busy || !c->to_send)
        return SM_OK;
    if (e->heap_len == e->heap_cap) {
        size_t ncap = e->heap_cap ? e->heap_cap * 2 : 1024;
        struct rconn **nh = sm_realloc(e->heap, ncap * sizeof(*nh));
        if (!nh)
            return SM_ENOMEM;
        e->heap = nh;
        e->heap_cap = ncap;
    }
    c->in_heap = true;
    c->heap_pos = e->heap_len;
    e->heap[e->heap_len++] = c;
    heap_up(e, c->heap_pos);
    if (wake)
        pthread_cond_signal(&e->work_cv);
    return SM_OK;
}

static struct rconn *heap_pop(struct replay_engine *e)
{
    struct rconn *c = e->heap[0];
    e->heap_len--;
    if (e->heap_len) {
        e->heap[0] = e->heap[e->heap_len];
        e->heap[0]->heap_pos = 0;
        heap_down(e, 0);
    }
    c->in_heap = false;
    return c;
}

/* ---- job state (lock held) ---- */

static void set_target_done(struct replay_engine *e, struct job *j)
{
    j->target_done = true;
    j->target_done_ns = sm_now_ns();
    if (!j->source_done) {
        e->awaiting_source++;
        if (e->st.pending - e->awaiting_source <= e->low_water)
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
    replay_http_msg_free(&j->src_resp);
    sm_free(j);
}

/* Builds and writes one tuple; runs without the engine lock (the job is
 * finished: no other thread touches it). Returns 1 when the statuses match,
 * -1 when they differ, 0 otherwise; *written says whether the tuple went out. */
static int write_tuple(struct replay_engine *e, struct job *j, bool *written)
{
    int match = 0;
    *written = false;
    json_t *t = json_object();
    if (!t)
        return 0;
    if (j->parse_ok) {
        json_object_set_new(t, "sourceRequest", replay_tuple_msg_json(&j->src_req, -1));
        if (!j->dropped)
            json_object_set_new(t, "targetRequest", replay_tuple_msg_json(&j->tgt_req, -1));
    }
    if (j->have_src_resp)
        json_object_set_new(t, "sourceResponse", replay_tuple_msg_json(&j->src_resp, j->src_ms));
    json_t *tr = json_array();
    if (j->have_tgt_resp)
        json_array_append_new(tr, replay_tuple_msg_json(&j->tgt_resp, j->tgt_ms));
    json_object_set_new(t, "targetResponses", tr);
    char cid[512];
    snprintf(cid, sizeof(cid), "%s.%llu", j->conn->conn_id, (unsigned long long)j->index);
    json_object_set_new(t, "connectionId", json_string(cid));
    json_object_set_new(t, "numRequests", json_integer(j->attempts));
    json_object_set_new(t, "numErrors", json_integer(j->error[0] ? 1 : 0));
    if (j->error[0])
        json_object_set_new(t, "error", json_string(j->error));
    if (j->src_wait_expired)
        json_object_set_new(t, "sourceResponseTimedOut", json_true());
    if (j->have_src_resp && j->have_tgt_resp)
        match = j->src_resp.status == j->tgt_resp.status ? 1 : -1;
    pthread_mutex_lock(&e->tlock);
    if (e->cfg.compare)
        e->cfg.compare(e->cfg.compare_arg, t, j->have_src_resp ? &j->src_resp : NULL,
                       j->have_tgt_resp ? &j->tgt_resp : NULL);
    if (e->cfg.tuples && replay_tuple_writer_write(e->cfg.tuples, t) == SM_OK)
        *written = true;
    pthread_mutex_unlock(&e->tlock);
    json_decref(t);
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
    pthread_cond_signal(&e->done_cv);
}

/* Called with the lock held after the tuple of j was written (or skipped). */
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
    job_free(j);
    e->st.pending--;
    /* hysteresis: waking the input for every finished request costs a
     * context switch per request when it is held at max_pending */
    if (e->st.pending - e->awaiting_source <= e->low_water)
        pthread_cond_broadcast(&e->space_cv);
    conn_maybe_free(e, c);
}

/* With the lock held: writes the tuples of every job on the done list with
 * the lock released (JSON building, comparison and serialisation are most of
 * a request's cost: under the engine lock they serialised all workers), then
 * finishes them (offset release, pending count) under the lock again. */
static void process_done(struct replay_engine *e)
{
    while (e->done) {
        struct job *batch = e->done;
        e->done = e->done_tail = NULL;
        e->done_busy++;
        pthread_mutex_unlock(&e->lock);
        for (struct job *j = batch; j; j = j->done_next) {
            j->tuple_written = false;
            j->match = j->dropped ? 0 : (int8_t)write_tuple(e, j, &j->tuple_written);
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
        pthread_cond_broadcast(&e->space_cv);
    }
}

/* The tuple thread: writes the tuples of finished requests, so that senders
 * go straight on to their next request and the input thread keeps reading. */
static void *tuple_worker(void *arg)
{
    struct replay_engine *e = arg;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->done && !e->stopping)
            pthread_cond_wait(&e->done_cv, &e->lock);
        if (!e->done)
            break;
        process_done(e);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- sending ---- */

static const char *const skip_headers[] = { "host", "content-length", "transfer-encoding", "connection",
                                            "keep-alive", "expect", "proxy-connection", NULL };

static bool skip_header(const char *n, bool drop_auth)
{
    for (size_t i = 0; skip_headers[i]; i++)
        if (!strcasecmp(n, skip_headers[i]))
            return true;
    return drop_auth && !strcasecmp(n, "authorization");
}

static void fill_target_response(struct job *j, const struct sm_http_response *r)
{
    struct replay_http_msg *m = &j->tgt_resp;
    memset(m, 0, sizeof(*m));
    m->is_request = false;
    m->http_major = 1;
    m->http_minor = 1;
    m->status = (int)r->status;
    m->complete = true;
    const char *p = r->headers.len ? (const char *)r->headers.data : "", *end = p + r->headers.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t ll = l && p[l - 1] == '\r' ? l - 1 : l;
        if (!strncasecmp(p, "HTTP/", 5)) {
            const char *sp = memchr(p, ' ', ll);
            const char *sp2 = sp ? memchr(sp + 1, ' ', (size_t)(p + ll - sp - 1)) : NULL;
            sm_free(m->reason);
            m->reason = sp2 ? sm_strndup(sp2 + 1, (size_t)(p + ll - sp2 - 1)) : sm_strdup("");
        } else {
            const char *colon = memchr(p, ':', ll);
            if (colon) {
                char *name = sm_strndup(p, (size_t)(colon - p));
                const char *v = colon + 1;
                while (v < p + ll && (*v == ' ' || *v == '\t'))
                    v++;
                char *val = sm_strndup(v, (size_t)(p + ll - v));
                /* curl already decoded the body: the encoding no longer applies */
                if (name && val && strcasecmp(name, "content-encoding"))
                    replay_http_set_header(m, name, val);
                sm_free(name);
                sm_free(val);
            }
        }
        p += l + 1;
    }
    if (!m->reason)
        m->reason = sm_strdup("");
    if (r->body.len)
        replay_http_set_body(m, r->body.data, r->body.len);
}

static void send_job(struct replay_engine *e, struct sm_http_client *cli, struct job *j, bool drop_auth)
{
    const struct replay_http_msg *q = &j->tgt_req;
    const char **hdrs = sm_calloc(q->n_headers + 3, sizeof(char *));
    char **owned = sm_calloc(q->n_headers + 1, sizeof(char *));
    size_t nh = 0;
    if (!hdrs || !owned) {
        snprintf(j->error, sizeof(j->error), "out of memory");
        goto out;
    }
    bool has_accept = false;
    for (size_t i = 0; i < q->n_headers; i++) {
        if (skip_header(q->headers[i].name, drop_auth))
            continue;
        if (!strcasecmp(q->headers[i].name, "accept"))
            has_accept = true;
        size_t l = strlen(q->headers[i].name) + strlen(q->headers[i].value) + 3;
        owned[nh] = sm_malloc(l);
        if (!owned[nh])
            break;
        snprintf(owned[nh], l, "%s: %s", q->headers[i].name, q->headers[i].value);
        hdrs[nh] = owned[nh];
        nh++;
    }
    size_t nx = nh;
    hdrs[nx++] = "Expect:";                 /* no 100-continue round trip the source did not have */
    if (!has_accept)
        hdrs[nx++] = "Accept:";             /* curl would add one the source did not send */
    hdrs[nx] = NULL;
    struct sm_http_req req = {
        .method = q->method, .path = q->uri, .headers = hdrs,
        .body = q->body_len ? q->body : NULL, .body_len = q->body_len,
    };
    struct sm_http_response resp;
    char err[256] = "";
    uint64_t t0 = sm_now_ns();
    int rc = sm_http_send(cli, &req, &resp, err, sizeof(err));
    j->tgt_ms = (int64_t)((sm_now_ns() - t0) / 1000000u);
    j->attempts = resp.attempts ? resp.attempts : 1;
    if (rc == SM_OK) {
        fill_target_response(j, &resp);
        j->have_tgt_resp = true;
    } else {
        snprintf(j->error, sizeof(j->error), "%s", err[0] ? err : sm_strerror(rc));
    }
    sm_http_response_free(&resp);
out:
    for (size_t i = 0; owned && i < nh; i++)
        sm_free(owned[i]);
    sm_free(owned);
    sm_free(hdrs);
}

static void record_lag(struct replay_engine *e, uint64_t lag_ns)
{
    uint64_t us = lag_ns / 1000;
    e->lags[e->nlags % LAG_SAMPLES] = us;
    e->nlags++;
    if (us > e->lag_max)
        e->lag_max = us;
}

struct worker_arg { struct replay_engine *e; };

static void *worker(void *arg)
{
    struct replay_engine *e = arg;
    char err[256];
    struct sm_http_client *cli = sm_http_client_new(e->cfg.target, "target", err, sizeof(err));
    if (!cli)
        sm_log_err("replay: target client: %s", err);
    const struct sm_http_opts *o = e->cfg.target;
    bool drop_auth = o->username || o->aws_region || o->aws_service;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->stopping && (!e->heap_len || cdue(e->heap[0]) > sm_now_ns())) {
            if (!e->heap_len) {
                pthread_cond_wait(&e->work_cv, &e->lock);
            } else {
                uint64_t due = cdue(e->heap[0]);
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
                uint64_t wait = due > now ? due - now : 0;
                if (wait > 100000000u)
                    wait = 100000000u;
                uint64_t ns = (uint64_t)ts.tv_nsec + wait;
                ts.tv_sec += (time_t)(ns / 1000000000u);
                ts.tv_nsec = (long)(ns % 1000000000u);
                pthread_cond_timedwait(&e->work_cv, &e->lock, &ts);
            }
        }
        if (e->stopping)
            break;
        struct rconn *c = heap_pop(e);
        struct job *j = c->to_send;
        c->busy = true;
        if (j->due_ns)
            record_lag(e, sm_now_ns() > j->due_ns ? sm_now_ns() - j->due_ns : 0);
        pthread_mutex_unlock(&e->lock);

        if (cli)
            send_job(e, cli, j, drop_auth);
        else
            snprintf(j->error, sizeof(j->error), "target client unavailable: %s", err);

        pthread_mutex_lock(&e->lock);
        e->st.attempts += j->attempts;
        if (j->have_tgt_resp)
            e->st.sent++;
        else
            e->st.target_errors++;
        set_target_done(e, j);
        c->busy = false;
        /* next job of this connection that needs sending */
        struct job *n = j->next;
        while (n && n->target_done)
            n = n->next;
        c->to_send = n;
        /* this worker goes back to the heap itself: wake another one only if
         * there is more than this connection or it is not due yet (then every
         * idle worker waits for the earliest due time, as on submit) */
        heap_push(e, c, e->heap_len > 0 || cdue(c) > sm_now_ns());
        job_maybe_finish(e, j);
    }
    pthread_mutex_unlock(&e->lock);
    sm_http_client_free(cli);
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
        e->cfg.workers = 16;
    if (!e->cfg.max_pending)
        e->cfg.max_pending = 10000;
    e->tab_size = 1u << 14;
    e->tab = sm_calloc(e->tab_size, sizeof(*e->tab));
    e->lags = sm_calloc(LAG_SAMPLES, sizeof(*e->lags));
    e->threads = sm_calloc(e->cfg.workers, sizeof(*e->threads));
    if (!e->tab || !e->lags || !e->threads) {
        sm_free(e->tab);
        sm_free(e->lags);
        sm_free(e->threads);
        sm_free(e);
        sm_errf(err, errlen, SM_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->tlock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&e->space_cv, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    e->low_water = e->cfg.max_pending - 1 - e->cfg.max_pending / 8;
    if (!pthread_create(&e->tuple_thread, NULL, tuple_worker, e))
        e->tuple_started = true;
    for (unsigned i = 0; i < e->cfg.workers && e->tuple_started; i++) {
        if (pthread_create(&e->threads[i], NULL, worker, e))
            break;
        e->nthreads++;
    }
    if (!e->nthreads) {
        sm_errf(err, errlen, SM_ENOMEM, "cannot start worker threads");
        replay_engine_free(e);
        return NULL;
    }
    return e;
}

static void conn_key(char *out, size_t n, const char *node, const char *conn)
{
    snprintf(out, n, "%s\x1f%s", node ? node : "", conn);
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
        /* the target copy: parse again, then transform */
        replay_http_parse(req->data, req->len, true, NULL, &j->tgt_req, err, sizeof(err));
        if (e->cfg.transform) {
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
    if (e->st.pending - e->awaiting_source >= e->cfg.max_pending)
        while (e->st.pending - e->awaiting_source > e->low_water && !e->stopping)
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
        heap_push(e, c, true);
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
        process_done(e);
        while (e->done_busy || e->done)
            pthread_cond_wait(&e->space_cv, &e->lock);
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
    pthread_mutex_unlock(&e->lock);
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
    pthread_cond_broadcast(&e->work_cv);
    pthread_cond_broadcast(&e->space_cv);
    pthread_cond_broadcast(&e->done_cv);
    pthread_mutex_unlock(&e->lock);
    for (unsigned i = 0; i < e->nthreads; i++)
        pthread_join(e->threads[i], NULL);
    if (e->tuple_started)
        pthread_join(e->tuple_thread, NULL);
    for (size_t i = 0; i < e->tab_size; i++) {
        struct rconn *c = e->tab[i], *cn;
        for (; c; c = cn) {
            cn = c->hnext;
            struct job *j = c->jobs, *jn;
            for (; j; j = jn) {
                jn = j->next;
                job_free(j);
            }
            sm_free(c->key);
            sm_free(c->conn_id);
            sm_free(c);
        }
    }
    sm_free(e->tab);
    sm_free(e->heap);
    sm_free(e->lags);
    sm_free(e->threads);
    pthread_cond_destroy(&e->work_cv);
    pthread_cond_destroy(&e->space_cv);
    pthread_cond_destroy(&e->done_cv);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->tlock);
    sm_free(e);
}
