#include "accum/accum.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <string.h>

enum conn_state {
    ST_WAIT_UNTERMINATED,   /* joined mid-request: skip until a write or an EOM */
    ST_WAIT_READ,           /* between messages: the next read starts a request */
    ST_READING,             /* accumulating a request */
    ST_SKIP_REQUEST,        /* request too large or broken: skip its reads until EOM */
    ST_RESPONSE,            /* request sent; accumulating its response */
};

struct conn {
    struct conn *hnext;                 /* hash chain */
    struct conn *lprev, *lnext;         /* activity list, oldest first */
    char *node_id, *conn_id;
    uint64_t hash;
    enum conn_state st;
    int32_t next_record;                /* next expected record index, 0 = unknown */
    uint64_t next_req_index;
    uint64_t resp_index;
    struct sm_buf req, resp;
    bool req_trunc, resp_trunc;
    int64_t req_first, req_last, resp_first, resp_last;
    int64_t last_ts;
    struct replay_origin req_origin;    /* pin of the request in progress */
    bool req_pinned;
    int32_t partition;                  /* of the last record fed; -1 none */
    uint64_t fed_ms;                    /* wall (monotonic) time of the last record */
};

struct replay_accum {
    struct replay_accum_cb cb;
    struct replay_accum_pins pins;
    struct replay_accum_limits lim;
    struct conn **tab;
    size_t tab_size;
    struct conn *lru_head, *lru_tail;
    struct replay_accum_stats st;
    int64_t newest_ts;
    const struct replay_origin *cur_origin;   /* of the record being fed */
    bool no_unpin;                            /* drop_partition: the caller forgets pins */
};

static uint64_t fnv(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (; *a; a++)
        h = (h ^ (uint8_t)*a) * 1099511628211ull;
    h = (h ^ 0x1f) * 1099511628211ull;
    for (; *b; b++)
        h = (h ^ (uint8_t)*b) * 1099511628211ull;
    return h;
}

/* The request in progress is abandoned: release its pin. */
static void req_unpin(struct replay_accum *acc, struct conn *c)
{
    if (!c->req_pinned)
        return;
    c->req_pinned = false;
    if (acc->pins.unpin && !acc->no_unpin)
        acc->pins.unpin(acc->pins.arg, &c->req_origin);
}

struct replay_accum *replay_accum_new(const struct replay_accum_cb *cb, const struct replay_accum_limits *limits)
{
    struct replay_accum *acc = sm_calloc(1, sizeof(*acc));
    if (!acc)
        return NULL;
    acc->cb = *cb;
    if (limits)
        acc->lim = *limits;
    if (!acc->lim.expiry_ns)
        acc->lim.expiry_ns = 360ull * 1000000000ull;
    if (!acc->lim.max_message)
        acc->lim.max_message = 64u << 20;
    if (!acc->lim.max_connections)
        acc->lim.max_connections = 100000;
    acc->tab_size = 4096;
    acc->tab = sm_calloc(acc->tab_size, sizeof(*acc->tab));
    if (!acc->tab) {
        sm_free(acc);
        return NULL;
    }
    return acc;
}

static void lru_unlink(struct replay_accum *acc, struct conn *c)
{
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        acc->lru_head = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    else
        acc->lru_tail = c->lprev;
    c->lprev = c->lnext = NULL;
}

static void lru_push(struct replay_accum *acc, struct conn *c)
{
    c->lprev = acc->lru_tail;
    c->lnext = NULL;
    if (acc->lru_tail)
        acc->lru_tail->lnext = c;
    else
        acc->lru_head = c;
    acc->lru_tail = c;
}

static void grow(struct replay_accum *acc)
{
    size_t nsize = acc->tab_size * 2;
    struct conn **nt = sm_calloc(nsize, sizeof(*nt));
    if (!nt)
        return;   /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < acc->tab_size; i++) {
        struct conn *c = acc->tab[i], *next;
        for (; c; c = next) {
            next = c->hnext;
            c->hnext = nt[c->hash & (nsize - 1)];
            nt[c->hash & (nsize - 1)] = c;
        }
    }
    sm_free(acc->tab);
    acc->tab = nt;
    acc->tab_size = nsize;
}

static void conn_free(struct conn *c)
{
    sm_buf_free(&c->req);
    sm_buf_free(&c->resp);
    sm_free(c->node_id);
    sm_free(c->conn_id);
    sm_free(c);
}

static void conn_remove(struct replay_accum *acc, struct conn *c)
{
    req_unpin(acc, c);
    struct conn **pp = &acc->tab[c->hash & (acc->tab_size - 1)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    lru_unlink(acc, c);
    acc->st.open_connections--;
    conn_free(c);
}

static void emit_response(struct replay_accum *acc, struct conn *c, enum replay_resp_end end)
{
    struct replay_msg m = {
        .node_id = c->node_id, .conn_id = c->conn_id, .index = c->resp_index,
        .data = c->resp.data, .len = c->resp.len,
        .first_ns = c->resp_first, .last_ns = c->resp_last, .truncated = c->resp_trunc,
    };
    acc->st.responses++;
    if (acc->cb.response)
        acc->cb.response(acc->cb.arg, &m, end);
    sm_buf_reset(&c->resp);
    c->resp_trunc = false;
    c->resp_first = c->resp_last = 0;
}

/* Ends whatever is in progress; used by close, expiry and capture gaps. */
static void end_in_progress(struct replay_accum *acc, struct conn *c, enum replay_resp_end end)
{
    if (c->st == ST_READING) {
        acc->st.requests_broken++;
        req_unpin(acc, c);
        sm_buf_reset(&c->req);
        c->req_trunc = false;
    } else if (c->st == ST_RESPONSE) {
        emit_response(acc, c, end);
    }
    c->st = ST_WAIT_READ;
}

static void end_conn(struct replay_accum *acc, struct conn *c, bool expired)
{
    end_in_progress(acc, c, expired ? REPLAY_RESP_EXPIRED : REPLAY_RESP_CLOSED);
    if (expired)
        acc->st.connections_expired++;
    else
        acc->st.connections_closed++;
    if (acc->cb.closed)
        acc->cb.closed(acc->cb.arg, c->node_id, c->conn_id, expired);
    conn_remove(acc, c);
}

static struct conn *conn_get(struct replay_accum *acc, const char *node, const char *cid, bool *created)
{
    uint64_t h = fnv(node, cid);
    *created = false;
    for (struct conn *c = acc->tab[h & (acc->tab_size - 1)]; c; c = c->hnext)
        if (c->hash == h && !strcmp(c->conn_id, cid) && !strcmp(c->node_id, node))
            return c;
    while (acc->st.open_connections >= acc->lim.max_connections && acc->lru_head)
        end_conn(acc, acc->lru_head, true);
    struct conn *c = sm_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->node_id = sm_strdup(node);
    c->conn_id = sm_strdup(cid);
    if (!c->node_id || !c->conn_id) {
        conn_free(c);
        return NULL;
    }
    c->hash = h;
    sm_buf_init(&c->req, acc->lim.max_message);
    sm_buf_init(&c->resp, acc->lim.max_message);
    c->hnext = acc->tab[h & (acc->tab_size - 1)];
    acc->tab[h & (acc->tab_size - 1)] = c;
    lru_push(acc, c);
    acc->st.open_connections++;
    acc->st.connections_opened++;
    if (acc->st.open_connections > acc->tab_size)
        grow(acc);
    *created = true;
    return c;
}

static void append(struct replay_accum *acc, struct sm_buf *b, bool *trunc, const uint8_t *p, size_t n)
{
    if (*trunc)
        return;
    if (sm_buf_append(b, p, n) != SM_OK) {
        size_t room = b->max - b->len;
        sm_buf_append(b, p, room < n ? room : n);
        *trunc = true;
        acc->st.oversize++;
    }
}

static void start_request(struct replay_accum *acc, struct conn *c, int64_t ts)
{
    if (c->st == ST_RESPONSE)
        emit_response(acc, c, REPLAY_RESP_NEXT_REQUEST);
    sm_buf_reset(&c->req);
    c->req_trunc = false;
    c->req_first = ts;
    c->st = ST_READING;
    req_unpin(acc, c);
    if (acc->cur_origin && acc->cur_origin->partition >= 0) {
        c->req_origin = *acc->cur_origin;
        c->req_pinned = true;
        if (acc->pins.pin)
            acc->pins.pin(acc->pins.arg, &c->req_origin);
    }
}

static void on_read(struct replay_accum *acc, struct conn *c, const uint8_t *p, size_t n, int64_t ts)
{
    switch (c->st) {
    case ST_WAIT_UNTERMINATED:
        acc->st.skipped_bytes += n;
        return;
    case ST_SKIP_REQUEST:
        return;
    case ST_WAIT_READ:
    case ST_RESPONSE:
        start_request(acc, c, ts);
        /* fall through */
    case ST_READING:
        append(acc, &c->req, &c->req_trunc, p, n);
        c->req_last = ts;
        if (c->req_trunc) {
            /* a request we cannot hold is not replayed half: skip to its end */
            acc->st.requests_broken++;
            req_unpin(acc, c);
            sm_buf_reset(&c->req);
            c->st = ST_SKIP_REQUEST;
        }
        return;
    }
}

static void on_write(struct replay_accum *acc, struct conn *c, const uint8_t *p, size_t n, int64_t ts)
{
    switch (c->st) {
    case ST_WAIT_UNTERMINATED:
        /* the request we joined in the middle was answered: its index is spent */
        acc->st.skipped_bytes += n;
        c->st = ST_WAIT_READ;
        return;
    case ST_RESPONSE:
        if (!c->resp.len && !c->resp_trunc)
            c->resp_first = ts;
        append(acc, &c->resp, &c->resp_trunc, p, n);
        c->resp_last = ts;
        return;
    case ST_READING:
        /* response bytes before the request's end of message: the capture lost
         * the EOM; the request cannot be trusted */
        acc->st.requests_broken++;
        req_unpin(acc, c);
        sm_buf_reset(&c->req);
        c->st = ST_WAIT_READ;
        return;
    case ST_WAIT_READ:
    case ST_SKIP_REQUEST:
        acc->st.skipped_bytes += n;
        return;
    }
}

static void on_eom(struct replay_accum *acc, struct conn *c)
{
    switch (c->st) {
    case ST_WAIT_UNTERMINATED:
        c->st = ST_WAIT_READ;      /* end of the request we joined mid-way */
        return;
    case ST_SKIP_REQUEST:
        c->next_req_index++;
        c->resp_index = c->next_req_index - 1;
        c->st = ST_WAIT_READ;
        return;
    case ST_READING: {
        struct replay_msg m = {
            .node_id = c->node_id, .conn_id = c->conn_id, .index = c->next_req_index,
            .data = c->req.data, .len = c->req.len,
            .first_ns = c->req_first, .last_ns = c->req_last,
        };
        m.origin.partition = -1;
        if (c->req_pinned) {
            m.origin = c->req_origin;       /* the pin goes with the request */
            c->req_pinned = false;
            if (!acc->cb.request && acc->pins.unpin)
                acc->pins.unpin(acc->pins.arg, &m.origin);
        }
        acc->st.requests++;
        if (acc->cb.request)
            acc->cb.request(acc->cb.arg, &m);
        c->resp_index = c->next_req_index++;
        sm_buf_reset(&c->req);
        c->st = ST_RESPONSE;
        return;
    }
    case ST_WAIT_READ:
    case ST_RESPONSE:
        return;   /* EOM without a request: nothing to end */
    }
}

void replay_accum_set_pins(struct replay_accum *acc, const struct replay_accum_pins *pins)
{
    acc->pins = *pins;
}

int replay_accum_feed(struct replay_accum *acc, const TrafficStream *ts)
{
    return replay_accum_feed_from(acc, ts, NULL);
}

static int feed(struct replay_accum *acc, const TrafficStream *ts);

int replay_accum_feed_from(struct replay_accum *acc, const TrafficStream *ts, const struct replay_origin *origin)
{
    acc->cur_origin = origin;
    int rc = feed(acc, ts);
    acc->cur_origin = NULL;
    return rc;
}

void replay_accum_drop_partition(struct replay_accum *acc, int32_t partition)
{
    acc->no_unpin = true;
    struct conn *c = acc->lru_head, *next;
    for (; c; c = next) {
        next = c->lnext;
        if (c->partition == partition) {
            c->req_pinned = false;
            end_conn(acc, c, true);
        }
    }
    acc->no_unpin = false;
}

static int feed(struct replay_accum *acc, const TrafficStream *ts)
{
    if (!ts->connectionid || !*ts->connectionid)
        return SM_EPROTO;
    acc->st.records++;
    const char *node = ts->nodeid ? ts->nodeid : "";
    bool created;
    struct conn *c = conn_get(acc, node, ts->connectionid, &created);
    if (!c)
        return SM_ENOMEM;

    int32_t idx = 0;
    bool last = false;
    bool has_idx = sm_ts_index(ts, &idx, &last);
    bool fresh_start = created;
    if (!created && has_idx && c->next_record) {
        if (idx < c->next_record) {
            acc->st.duplicate_records++;
            return SM_OK;
        }
        if (idx > c->next_record) {
            /* records went missing: whatever was in progress is broken */
            acc->st.out_of_order_records++;
            end_in_progress(acc, c, REPLAY_RESP_BROKEN);
            fresh_start = true;
        }
    }
    if (has_idx)
        c->next_record = idx + 1;
    if (fresh_start) {
        if (ts->has_priorrequestsreceived)
            c->next_req_index = (uint64_t)(ts->priorrequestsreceived > 0 ? ts->priorrequestsreceived : 0);
        if (ts->has_lastobservationwasunterminatedread && ts->lastobservationwasunterminatedread) {
            c->st = ST_WAIT_UNTERMINATED;
            c->next_req_index++;
        } else {
            c->st = ST_WAIT_READ;
        }
    }
    lru_unlink(acc, c);
    lru_push(acc, c);
    c->partition = acc->cur_origin ? acc->cur_origin->partition : -1;
    c->fed_ms = sm_now_ms();

    bool closed = false;
    for (size_t i = 0; i < ts->n_substream && !closed; i++) {
        const TrafficObservation *obs = ts->substream[i];
        acc->st.observations++;
        int64_t t = 0;
        sm_ts_obs_time_ns(obs, &t);
        if (t > c->last_ts)
            c->last_ts = t;
        if (t > acc->newest_ts)
            acc->newest_ts = t;
        const uint8_t *p = NULL;
        size_t n = 0;
        switch (sm_ts_obs_kind(obs)) {
        case SM_TS_READ:
        case SM_TS_READ_SEGMENT:
            sm_ts_obs_data(obs, &p, &n);
            on_read(acc, c, p, n, t);
            break;
        case SM_TS_WRITE:
        case SM_TS_WRITE_SEGMENT:
            sm_ts_obs_data(obs, &p, &n);
            on_write(acc, c, p, n, t);
            break;
        case SM_TS_END_OF_MESSAGE:
            on_eom(acc, c);
            break;
        case SM_TS_REQUEST_DROPPED:
            if (c->st == ST_READING || c->st == ST_SKIP_REQUEST) {
                acc->st.requests_dropped++;
                req_unpin(acc, c);
                sm_buf_reset(&c->req);
                c->st = ST_WAIT_READ;
            }
            break;
        case SM_TS_CONNECTION_EXCEPTION:
            acc->st.exceptions++;
            end_in_progress(acc, c, REPLAY_RESP_BROKEN);
            break;
        case SM_TS_CLOSE:
        case SM_TS_DISCONNECT:
            closed = true;
            break;
        default:
            break;   /* bind, connect, segmentEnd, requestReleasedDownstream */
        }
    }
    if (closed || last)
        end_conn(acc, c, false);
    if (acc->newest_ts)
        replay_accum_expire(acc, acc->newest_ts);
    return SM_OK;
}

void replay_accum_expire(struct replay_accum *acc, int64_t now_ns)
{
    int64_t cutoff = now_ns - (int64_t)acc->lim.expiry_ns;
    /* the list is in feed order, which is close to time order; stop at the
     * first connection still active */
    while (acc->lru_head && acc->lru_head->last_ts && acc->lru_head->last_ts < cutoff)
        end_conn(acc, acc->lru_head, true);
}

void replay_accum_end_idle_responses(struct replay_accum *acc, uint64_t idle_ms)
{
    uint64_t now = sm_now_ms();
    /* activity order: stop at the first connection fed recently */
    for (struct conn *c = acc->lru_head; c && c->fed_ms + idle_ms <= now; c = c->lnext)
        if (c->st == ST_RESPONSE)
            end_in_progress(acc, c, REPLAY_RESP_EXPIRED);
}

void replay_accum_finish(struct replay_accum *acc)
{
    while (acc->lru_head)
        end_conn(acc, acc->lru_head, true);
}

void replay_accum_stats(const struct replay_accum *acc, struct replay_accum_stats *out)
{
    *out = acc->st;
}

void replay_accum_free(struct replay_accum *acc)
{
    if (!acc)
        return;
    while (acc->lru_head)
        conn_remove(acc, acc->lru_head);
    sm_free(acc->tab);
    sm_free(acc);
}
