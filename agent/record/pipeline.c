/* The record pipeline (see pipeline.h). */
#include "record/pipeline.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <inttypes.h>
#include <llhttp.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#define HELD_MAX     (16u * 1024u)              /* interim responses held per connection */
#define TICK_NS      (100ull * 1000 * 1000)     /* data-path idle check period */

struct pl_conn {
    struct agent_pipeline *pl;
    struct agent_http_framer *fr;
    struct agent_rec_conn *rec;     /* NULL once the record stream is closed (upgrade) */
    struct pl_conn *prev, *next;
    int32_t first_line_len, headers_len;
    bool mutating;
    bool resp_interim;
    struct sm_buf held;             /* interim responses waiting for the request's end */
    uint64_t held_ts;
};

struct agent_pipeline {
    pthread_mutex_t lock;
    struct agent_recorder *rb;
    struct agent_filter *filter;
    struct agent_sink *sink;
    struct agent_http_limits http;
    struct agent_http_budget budget;
    double sample_rate;
    uint64_t rng;
    uint64_t last_tick;
    struct sm_buf scratch;          /* redacted heads */
    struct pl_conn *conns;          /* open connections */
    struct agent_pipeline_stats st;
    struct agent_http_framer_stats http_closed;
    struct sm_ratelimit rl_drop;
};

/* ---- records to the sink ----------------------------------------------- */

static void emit(void *arg, const char *key, uint8_t *data, size_t len, bool last)
{
    struct agent_pipeline *pl = arg;
    struct agent_sink_msg *msg = agent_sink_msg_new(key, data, len, last);
    int rc = msg ? agent_sink_write(pl->sink, msg) : SM_ENOMEM;
    if (rc == SM_OK)
        return;
    agent_sink_msg_free(msg);
    pl->st.records_dropped++;
    uint64_t sup;
    if (sm_log_ratelimited(&pl->rl_drop, 10000, &sup))
        sm_log_warn("pipeline: %s refused a record (%s): dropped (%" PRIu64 " more since last report)",
                    pl->sink->name, sm_strerror(rc), sup);
}

/* ---- HTTP events -------------------------------------------------------- */

static bool mutating_method(int m)
{
    return m == HTTP_POST || m == HTTP_PUT || m == HTTP_DELETE || m == HTTP_PATCH;
}

static void release_held(struct pl_conn *c, uint64_t ts)
{
    if (!c->held.len)
        return;
    if (c->rec)
        agent_rec_write(c->rec, ts > c->held_ts ? ts : c->held_ts, c->held.data, c->held.len);
    c->pl->st.bytes_s2c += c->held.len;
    sm_buf_reset(&c->held);
}

static int on_head(void *arg, const struct agent_http_head *hd)
{
    struct pl_conn *c = arg;
    struct agent_pipeline *pl = c->pl;
    if (!c->rec)
        return AGENT_HTTP_SKIP;
    if (hd->dir == AGENT_C2S &&
        agent_filter_suppress(pl->filter, hd->method_name, hd->target, hd->target_len)) {
        pl->st.suppressed++;
        return AGENT_HTTP_SKIP;
    }
    const uint8_t *d = hd->data;
    size_t len = hd->len;
    if (agent_filter_redacts(pl->filter)) {
        int n = agent_filter_redact(pl->filter, hd->data, hd->len, hd->first_line_len, &pl->scratch);
        if (n > 0) {
            d = pl->scratch.data;
            len = pl->scratch.len;
            pl->st.redacted += (uint64_t)n;
        }
    }
    if (hd->dir == AGENT_C2S) {
        c->first_line_len = (int32_t)hd->first_line_len;
        c->headers_len = (int32_t)(len - hd->first_line_len);
        c->mutating = mutating_method(hd->method);
        agent_rec_read(c->rec, hd->ts_ns, d, len);
        pl->st.bytes_c2s += len;
        return AGENT_HTTP_KEEP;
    }
    c->resp_interim = hd->interim;
    if (hd->interim && agent_rec_unterminated(c->rec)) {
        /* 100 Continue while the request body is still to come: written after
         * the request's end so its reads stay contiguous */
        if (!c->held.len)
            c->held_ts = hd->ts_ns;
        if (sm_buf_append(&c->held, d, len) == SM_OK)
            return AGENT_HTTP_KEEP;
    }
    release_held(c, hd->ts_ns);
    agent_rec_write(c->rec, hd->ts_ns, d, len);
    pl->st.bytes_s2c += len;
    return AGENT_HTTP_KEEP;
}

static void on_body(void *arg, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    struct pl_conn *c = arg;
    if (!c->rec)
        return;
    if (dir == AGENT_C2S) {
        agent_rec_read(c->rec, ts, p, n);
        c->pl->st.bytes_c2s += n;
    } else {
        release_held(c, ts);
        agent_rec_write(c->rec, ts, p, n);
        c->pl->st.bytes_s2c += n;
    }
}

static void on_end(void *arg, enum agent_dir dir, uint64_t ts)
{
    struct pl_conn *c = arg;
    if (!c->rec)
        return;
    if (dir == AGENT_C2S) {
        agent_rec_eom(c->rec, ts, c->first_line_len, c->headers_len, c->mutating);
        c->pl->st.requests++;
        release_held(c, ts);
    } else if (c->resp_interim) {
        c->pl->st.interim++;
    } else {
        c->pl->st.responses++;
    }
}

static void on_broken(void *arg, enum agent_dir dir, bool in_message, const char *why, uint64_t ts)
{
    struct pl_conn *c = arg;
    (void)dir;
    (void)in_message;
    c->pl->st.broken++;
    sm_buf_reset(&c->held);
    if (c->rec)
        agent_rec_exception(c->rec, ts, why);
    sm_dbg(SM_DBG_HTTP, "http[%s]: %s", c->rec ? agent_rec_conn_id(c->rec) : "-", why);
}

static void on_upgrade(void *arg, const char *why, uint64_t ts)
{
    struct pl_conn *c = arg;
    c->pl->st.upgrades++;
    if (!c->rec)
        return;
    release_held(c, ts);
    agent_rec_exception(c->rec, ts, why);
    agent_rec_close(c->rec, ts);
    c->rec = NULL;
}

/* ---- stream events ------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;   /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void *st_open(void *arg, const struct agent_conn_info *info, uint64_t ts)
{
    struct agent_pipeline *pl = arg;
    (void)ts;
    pthread_mutex_lock(&pl->lock);
    struct pl_conn *c = NULL;
    if (pl->sample_rate > 0 && pl->sample_rate < 1 &&
        (double)(rng_next(&pl->rng) >> 11) / 9007199254740992.0 >= pl->sample_rate) {
        pl->st.sampled_out++;
        goto out;
    }
    c = sm_calloc(1, sizeof(*c));
    if (!c)
        goto out;
    c->pl = pl;
    sm_buf_init(&c->held, HELD_MAX);
    struct agent_http_cb cb = {
        .arg = c, .head = on_head, .body = on_body, .end = on_end, .end_skipped = NULL,
        .broken = on_broken, .upgrade = on_upgrade,
    };
    c->fr = agent_http_framer_new(&pl->http, &cb, info->mid_stream);
    c->rec = agent_rec_open(pl->rb);
    if (!c->fr || !c->rec) {
        agent_http_framer_free(c->fr);
        agent_rec_close(c->rec, ts);
        sm_free(c);
        c = NULL;
        goto out;
    }
    c->next = pl->conns;
    if (pl->conns)
        pl->conns->prev = c;
    pl->conns = c;
    pl->st.connections++;
    pl->st.open++;
    sm_dbg(SM_DBG_RECORD, "record[%s]: new connection port %u -> %u%s", agent_rec_conn_id(c->rec),
           info->client_port, info->server_port, info->mid_stream ? " (mid-stream)" : "");
out:
    pthread_mutex_unlock(&pl->lock);
    return c;
}

static void st_data(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    struct agent_pipeline *pl = arg;
    struct pl_conn *c = conn;
    pthread_mutex_lock(&pl->lock);
    agent_http_framer_feed(c->fr, dir, p, n, ts);
    if (ts >= pl->last_tick + TICK_NS) {
        pl->last_tick = ts;
        agent_recorder_tick(pl->rb, ts);
    }
    pthread_mutex_unlock(&pl->lock);
}

static void st_gap(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts, const char *why)
{
    struct agent_pipeline *pl = arg;
    struct pl_conn *c = conn;
    pthread_mutex_lock(&pl->lock);
    pl->st.gaps++;
    agent_http_framer_gap(c->fr, dir, lost, why, ts);
    pthread_mutex_unlock(&pl->lock);
}

static void add_http(struct agent_http_framer_stats *a, const struct agent_http_framer_stats *b)
{
    a->requests += b->requests;
    a->responses += b->responses;
    a->interim += b->interim;
    a->broken += b->broken;
    a->skipped_bytes += b->skipped_bytes;
    a->resyncs += b->resyncs;
    a->parse_errors += b->parse_errors;
    a->oversized_heads += b->oversized_heads;
    a->pipeline_overflow += b->pipeline_overflow;
    a->budget_refusals += b->budget_refusals;
}

static void conn_close(struct agent_pipeline *pl, struct pl_conn *c, uint64_t ts)
{
    agent_http_framer_eof(c->fr, ts);
    if (c->rec) {
        release_held(c, ts);
        agent_rec_close(c->rec, ts);
    }
    struct agent_http_framer_stats hs;
    agent_http_framer_stats(c->fr, &hs);
    add_http(&pl->http_closed, &hs);
    agent_http_framer_free(c->fr);
    sm_buf_free(&c->held);
    if (c->prev)
        c->prev->next = c->next;
    else
        pl->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pl->st.open--;
    sm_free(c);
}

static void st_close(void *arg, void *conn, enum agent_close_reason reason, uint64_t ts)
{
    struct agent_pipeline *pl = arg;
    struct pl_conn *c = conn;
    pthread_mutex_lock(&pl->lock);
    if (reason == AGENT_CLOSE_EVICTED && c->rec) {
        /* the connection goes on but capture lets go of it: say so */
        agent_rec_exception(c->rec, ts, "capture stopped following this connection (flow table or "
                                        "memory limit): later traffic is recorded as a new connection");
    }
    conn_close(pl, conn, ts);
    pthread_mutex_unlock(&pl->lock);
}

/* ---- public API --------------------------------------------------------- */

struct agent_pipeline *agent_pipeline_new(const struct agent_pipeline_conf *conf, char *err, size_t errlen)
{
    if (!conf->sink) {
        sm_errf(err, errlen, SM_EINVAL, "pipeline: no sink");
        return NULL;
    }
    struct agent_pipeline *pl = sm_calloc(1, sizeof(*pl));
    if (!pl) {
        sm_errf(err, errlen, SM_ENOMEM, "pipeline: out of memory");
        return NULL;
    }
    pthread_mutex_init(&pl->lock, NULL);
    pl->sink = conf->sink;
    pl->http = conf->http;
    if (!pl->http.max_header)
        pl->http.max_header = AGENT_HTTP_MAX_HEADER_DEFAULT;
    pl->budget.max = conf->http_budget ? conf->http_budget : AGENT_PIPELINE_HTTP_BUDGET_DEFAULT;
    pl->http.budget = &pl->budget;
    pl->sample_rate = conf->sample_rate;
    pl->rng = conf->sample_seed;
    if (!pl->rng && getrandom(&pl->rng, sizeof(pl->rng), GRND_NONBLOCK) != (ssize_t)sizeof(pl->rng))
        pl->rng = sm_now_ns();
    if (!pl->rng)
        pl->rng = 0x9e3779b97f4a7c15ull;
    sm_buf_init(&pl->scratch, pl->http.max_header * 2 + 4096);
    struct agent_rec_conf rc = conf->rec;
    rc.emit = emit;
    rc.arg = pl;
    if (!(pl->filter = agent_filter_new(&conf->filter, err, errlen)) ||
        !(pl->rb = agent_recorder_new(&rc, err, errlen))) {
        agent_pipeline_free(pl);
        return NULL;
    }
    return pl;
}

void agent_pipeline_free(struct agent_pipeline *pl)
{
    if (!pl)
        return;
    while (pl->conns) {
        struct pl_conn *c = pl->conns;
        conn_close(pl, c, 0);
    }
    agent_recorder_free(pl->rb);
    agent_filter_free(pl->filter);
    sm_buf_free(&pl->scratch);
    pthread_mutex_destroy(&pl->lock);
    sm_free(pl);
}

struct agent_stream_cb agent_pipeline_stream_cb(struct agent_pipeline *pl)
{
    struct agent_stream_cb cb = {
        .arg = pl, .open = st_open, .data = st_data, .gap = st_gap, .close = st_close,
    };
    return cb;
}

void agent_pipeline_tick(struct agent_pipeline *pl, uint64_t now_ns)
{
    pthread_mutex_lock(&pl->lock);
    agent_recorder_tick(pl->rb, now_ns);
    pthread_mutex_unlock(&pl->lock);
}

void agent_pipeline_poll(struct agent_pipeline *pl)
{
    pthread_mutex_lock(&pl->lock);
    agent_sink_poll(pl->sink);
    pthread_mutex_unlock(&pl->lock);
}

void agent_pipeline_flush(struct agent_pipeline *pl)
{
    pthread_mutex_lock(&pl->lock);
    agent_recorder_flush_all(pl->rb);
    pthread_mutex_unlock(&pl->lock);
}

void agent_pipeline_stats(struct agent_pipeline *pl, struct agent_pipeline_stats *out)
{
    pthread_mutex_lock(&pl->lock);
    *out = pl->st;
    out->http = pl->http_closed;
    for (struct pl_conn *c = pl->conns; c; c = c->next) {
        struct agent_http_framer_stats hs;
        agent_http_framer_stats(c->fr, &hs);
        add_http(&out->http, &hs);
    }
    out->http_buffered = pl->budget.used;
    agent_recorder_stats(pl->rb, &out->rec);
    agent_sink_stats(pl->sink, &out->sink);
    pthread_mutex_unlock(&pl->lock);
}

const char *agent_pipeline_node_id(const struct agent_pipeline *pl)
{
    return agent_recorder_node_id(pl->rb);
}
