/* TrafficStream record builder (see record.h). */
#include "record/record.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define SEG_MIN 64   /* smallest segment worth starting in a partly used record */

enum flush_why { FL_FULL, FL_MUTATING, FL_IDLE, FL_BUDGET, FL_CLOSE, FL_ALL };

struct agent_rec_conn {
    struct agent_recorder *rb;
    char id[SM_TS_ID_MAX + 1];
    struct sm_ts_enc enc;       /* record being encoded (docs/records.md) */
    bool open;                  /* a record is being built */
    int32_t rec_prior;          /* its priorRequestsReceived */
    bool rec_unterminated;      /* its lastObservationWasUnterminatedRead */
    size_t est;                 /* upper bound of its encoded size */
    int32_t next_index;         /* 1-based */
    int32_t eoms;               /* endOfMessage indications written */
    bool unterminated;          /* reads written since the last EOM */
    bool was_full;              /* the last record was flushed full: presize the next */
    size_t presized;            /* buffer bytes beyond est counted in held_bytes */
    uint64_t last_ns;           /* time of the last observation */
    struct agent_rec_conn *prev, *next;   /* open-record list, oldest first */
    bool listed;
};

struct agent_recorder {
    char node_id[SM_TS_ID_MAX + 1];
    char prefix[64];
    size_t max_record;
    size_t hdr_est;             /* bound of a record's size without observations */
    uint64_t idle_ns;
    uint64_t budget;
    agent_rec_emit_fn emit;
    void *arg;
    uint64_t counter;
    struct agent_rec_conn *head, *tail;   /* connections holding a non-empty record */
    struct agent_rec_stats stats;
    struct sm_ratelimit rl;
};

/* ---- helpers -------------------------------------------------------------- */

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

static void list_remove(struct agent_recorder *rb, struct agent_rec_conn *c)
{
    if (!c->listed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        rb->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        rb->tail = c->prev;
    c->prev = c->next = NULL;
    c->listed = false;
}

static void list_append(struct agent_recorder *rb, struct agent_rec_conn *c)
{
    c->prev = rb->tail;
    c->next = NULL;
    if (rb->tail)
        rb->tail->next = c;
    else
        rb->head = c;
    rb->tail = c;
    c->listed = true;
}

static void touch(struct agent_rec_conn *c, uint64_t ts)
{
    struct agent_recorder *rb = c->rb;
    if (ts > c->last_ns)
        c->last_ns = ts;
    if (c->listed && rb->tail == c)
        return;
    list_remove(rb, c);
    list_append(rb, c);
}

static void flush(struct agent_rec_conn *c, bool last, enum flush_why why)
{
    struct agent_recorder *rb = c->rb;
    if (!c->open)
        return;
    c->open = false;
    c->was_full = why == FL_FULL;
    rb->stats.held_bytes -= c->est + c->presized;
    c->presized = 0;
    list_remove(rb, c);
    /* The record was encoded as it grew (sm_ts_enc): finishing appends the
     * trailing fields and hands the buffer over, no sizing or packing pass. */
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = sm_ts_enc_finish(&c->enc, c->next_index, last, rb->node_id, c->rec_prior,
                              c->rec_unterminated, &out, &len);
    c->next_index++;
    if (rc != SM_OK) {
        rb->stats.encode_errors++;
        uint64_t sup;
        if (sm_log_ratelimited(&rb->rl, 10000, &sup))
            sm_log_warn("record[%s]: encoding a record failed: %s (%" PRIu64 " more suppressed)",
                        c->id, sm_strerror(rc), sup);
        return;
    }
    switch (why) {
    case FL_FULL: rb->stats.flush_full++; break;
    case FL_MUTATING: rb->stats.flush_mutating++; break;
    case FL_IDLE: rb->stats.flush_idle++; break;
    case FL_BUDGET: rb->stats.flush_budget++; break;
    case FL_CLOSE: rb->stats.flush_close++; break;
    case FL_ALL: break;
    }
    rb->stats.records++;
    rb->stats.record_bytes += len;
    sm_dbg(SM_DBG_RECORD, "record[%s]: #%d%s %zu bytes", c->id, c->next_index - 1,
           last ? " (last)" : "", len);
    rb->emit(rb->arg, c->id, out, len, last);
}

static int start(struct agent_rec_conn *c)
{
    struct agent_recorder *rb = c->rb;
    /* A connection that filled its last record likely fills this one: take
     * the whole buffer at once (growing it by doubling copied each record
     * about once more: a third of the capture thread's memcpy). The buffer
     * counts in held_bytes as if full (presized shrinks as est grows), so the
     * budget bounds it like the data; only while half the budget is free. A
     * failure here is no error: the buffer grows as it is filled. */
    bool presize = c->was_full && rb->max_record > rb->hdr_est &&
                   rb->stats.held_bytes + rb->max_record <= rb->budget / 2 &&
                   sm_ts_enc_reserve(&c->enc, rb->max_record + 64) == SM_OK;
    if (sm_ts_enc_begin(&c->enc, c->id) != SM_OK)
        return SM_ENOMEM;
    c->open = true;
    c->rec_prior = c->eoms;
    c->rec_unterminated = c->unterminated;
    c->est = rb->hdr_est;
    c->presized = presize ? rb->max_record - rb->hdr_est : 0;
    rb->stats.held_bytes += c->est + c->presized;
    return SM_OK;
}

/* Makes room for an observation of at most need encoded bytes. */
static int ensure(struct agent_rec_conn *c, size_t need)
{
    if (c->open && c->est + need > c->rb->max_record)
        flush(c, false, FL_FULL);
    if (!c->open)
        return start(c);
    return SM_OK;
}

static void added(struct agent_rec_conn *c, size_t need, uint64_t ts)
{
    struct agent_recorder *rb = c->rb;
    c->est += need;
    size_t covered = need < c->presized ? need : c->presized;   /* already counted */
    c->presized -= covered;
    rb->stats.held_bytes += need - covered;
    touch(c, ts);
    while (rb->stats.held_bytes > rb->budget && rb->head)
        flush(rb->head, false, FL_BUDGET);
}

static int add(struct agent_rec_conn *c, enum sm_ts_kind kind, uint64_t ts, const void *p,
               size_t n, size_t need)
{
    int rc = ensure(c, need);
    if (rc)
        return rc;
    if (sm_ts_enc_add(&c->enc, kind, (int64_t)ts, p, n) != SM_OK)
        return SM_ENOMEM;
    added(c, need, ts);
    return SM_OK;
}

/* Largest payload that still fits the current record. */
static size_t room(const struct agent_rec_conn *c)
{
    size_t cap = c->rb->max_record;
    size_t base = sm_ts_obs_max_size(0);
    if (c->est + base >= cap)
        return 0;
    size_t k = cap - c->est - base;
    while (k > 0 && c->est + sm_ts_obs_max_size(k) > cap) {
        size_t over = c->est + sm_ts_obs_max_size(k) - cap;
        k = over < k ? k - over : 0;
    }
    return k;
}

/* Appends to the record's last observation when it is of the same kind with
 * the same timestamp (a head and body bytes from one packet): one observation
 * instead of two, nothing lost. */
static bool try_merge(struct agent_rec_conn *c, bool write, uint64_t ts, const uint8_t *p, size_t n)
{
    struct sm_ts_enc *e = &c->enc;
    enum sm_ts_kind kind = write ? SM_TS_WRITE : SM_TS_READ;
    if (!c->open || !e->n_obs || e->last_kind != kind || e->last_ns != (int64_t)ts)
        return false;
    size_t old = e->last_data;
    size_t grow = sm_ts_obs_max_size(old + n) - sm_ts_obs_max_size(old);
    if (c->est + grow > c->rb->max_record)
        return false;
    if (sm_ts_enc_extend(e, kind, (int64_t)ts, p, n) != SM_OK)
        return false;
    added(c, grow, ts);
    return true;
}

static int add_data(struct agent_rec_conn *c, bool write, uint64_t ts, const uint8_t *p, size_t n)
{
    struct agent_recorder *rb = c->rb;
    if (n == 0)
        return SM_OK;
    size_t need = sm_ts_obs_max_size(n);
    int rc;
    if (try_merge(c, write, ts, p, n)) {
        rc = SM_OK;
        goto out;
    }
    if (rb->hdr_est + need <= rb->max_record) {   /* fits a record: whole, maybe in the next */
        rc = add(c, write ? SM_TS_WRITE : SM_TS_READ, ts, p, n, need);
        goto out;
    }
    rb->stats.segmented_chunks++;
    while (n > 0) {
        if (!c->open && (rc = start(c)))
            goto out;
        size_t k = room(c);
        if (k < SEG_MIN && c->enc.n_obs > 0) {
            flush(c, false, FL_FULL);
            continue;
        }
        if (k > n)
            k = n;
        if (k == 0) {
            rc = SM_EFULL;
            goto out;
        }
        if (sm_ts_enc_add(&c->enc, write ? SM_TS_WRITE_SEGMENT : SM_TS_READ_SEGMENT, (int64_t)ts, p, k)) {
            rc = SM_ENOMEM;
            goto out;
        }
        if (!write)
            c->unterminated = true;
        added(c, sm_ts_obs_max_size(k), ts);
        p += k;
        n -= k;
        if (n > 0)
            flush(c, false, FL_FULL);
    }
    rc = add(c, SM_TS_SEGMENT_END, ts, NULL, 0, sm_ts_obs_max_size(0));
out:
    if (rc == SM_OK && !write)
        c->unterminated = true;
    return rc;
}

/* ---- public API ---------------------------------------------------------- */

struct agent_recorder *agent_recorder_new(const struct agent_rec_conf *conf, char *err, size_t errlen)
{
    if (!conf->emit) {
        sm_errf(err, errlen, SM_EINVAL, "record: no emit callback");
        return NULL;
    }
    size_t max = conf->max_record ? conf->max_record : AGENT_REC_MAX_RECORD_DEFAULT;
    if (max < AGENT_REC_MAX_RECORD_MIN) {
        sm_errf(err, errlen, SM_ECONFIG, "max-record-size %zu is below the minimum of %u bytes", max,
                AGENT_REC_MAX_RECORD_MIN);
        return NULL;
    }
    struct agent_recorder *rb = sm_calloc(1, sizeof(*rb));
    if (!rb) {
        sm_errf(err, errlen, SM_ENOMEM, "record: out of memory");
        return NULL;
    }
    if (conf->node_id && *conf->node_id) {
        snprintf(rb->node_id, sizeof(rb->node_id), "%.100s", conf->node_id);
    } else {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0 || !*host)
            snprintf(host, sizeof(host), "unknown-node");
        host[sizeof(host) - 1] = 0;
        snprintf(rb->node_id, sizeof(rb->node_id), "%.100s", host);
    }
    if (conf->id_prefix && *conf->id_prefix) {
        snprintf(rb->prefix, sizeof(rb->prefix), "%.40s", conf->id_prefix);
    } else {
        /* node hash, start time (ms) and 32 random bits: unique across nodes
         * and restarts without any state on disk */
        uint32_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
            rnd = (uint32_t)(sm_now_ns() ^ ((uint64_t)getpid() << 16));
        snprintf(rb->prefix, sizeof(rb->prefix), "%08" PRIx32 "-%011" PRIx64 "-%08" PRIx32,
                 fnv1a(rb->node_id), sm_wall_ms(), rnd);
    }
    rb->max_record = max;
    /* connectionId and nodeId (tag + length + bytes), priorRequestsReceived,
     * lastObservationWasUnterminatedRead and the index (tag + 5-byte varint) */
    rb->hdr_est = 2 + SM_TS_ID_MAX + 2 + strlen(rb->node_id) + 6 + 2 + 6;
    rb->idle_ns = conf->idle_flush_ns ? conf->idle_flush_ns : AGENT_REC_IDLE_FLUSH_DEFAULT_NS;
    rb->budget = conf->budget ? conf->budget : AGENT_REC_BUDGET_DEFAULT;
    rb->emit = conf->emit;
    rb->arg = conf->arg;
    return rb;
}

void agent_recorder_free(struct agent_recorder *rb)
{
    if (!rb)
        return;
    while (rb->head) {   /* connections still open with data: close them */
        struct agent_rec_conn *c = rb->head;
        agent_rec_close(c, c->last_ns);
    }
    sm_free(rb);
}

const char *agent_recorder_node_id(const struct agent_recorder *rb)
{
    return rb->node_id;
}

void agent_recorder_stats(const struct agent_recorder *rb, struct agent_rec_stats *out)
{
    *out = rb->stats;
}

void agent_recorder_tick(struct agent_recorder *rb, uint64_t now_ns)
{
    if (rb->idle_ns == UINT64_MAX)
        return;
    while (rb->head && rb->head->last_ns + rb->idle_ns <= now_ns)
        flush(rb->head, false, FL_IDLE);
}

void agent_recorder_flush_all(struct agent_recorder *rb)
{
    while (rb->head)
        flush(rb->head, false, FL_ALL);
}

struct agent_rec_conn *agent_rec_open(struct agent_recorder *rb)
{
    struct agent_rec_conn *c = sm_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->rb = rb;
    c->next_index = 1;
    rb->counter++;
    snprintf(c->id, sizeof(c->id), "%s-%010" PRIx64, rb->prefix, rb->counter);
    return c;
}

const char *agent_rec_conn_id(const struct agent_rec_conn *conn)
{
    return conn->id;
}

int agent_rec_read(struct agent_rec_conn *conn, uint64_t ts_ns, const uint8_t *p, size_t n)
{
    return add_data(conn, false, ts_ns, p, n);
}

int agent_rec_write(struct agent_rec_conn *conn, uint64_t ts_ns, const uint8_t *p, size_t n)
{
    return add_data(conn, true, ts_ns, p, n);
}

int agent_rec_eom(struct agent_rec_conn *conn, uint64_t ts_ns, int32_t first_line_len,
                  int32_t headers_len, bool mutating)
{
    /* inner message: two int32 fields, at most 1 + 10 bytes each */
    size_t need = sm_ts_obs_max_size(24);
    int rc = ensure(conn, need);
    if (rc)
        return rc;
    if (sm_ts_enc_add_eom(&conn->enc, (int64_t)ts_ns, first_line_len, headers_len) != SM_OK)
        return SM_ENOMEM;
    added(conn, need, ts_ns);
    conn->eoms++;
    conn->unterminated = false;
    conn->rb->stats.eoms++;
    if (mutating)
        flush(conn, false, FL_MUTATING);
    return SM_OK;
}

int agent_rec_dropped(struct agent_rec_conn *conn, uint64_t ts_ns)
{
    int rc = add(conn, SM_TS_REQUEST_DROPPED, ts_ns, NULL, 0, sm_ts_obs_max_size(0));
    if (rc == SM_OK)
        conn->unterminated = false;
    return rc;
}

int agent_rec_exception(struct agent_rec_conn *conn, uint64_t ts_ns, const char *msg)
{
    size_t n = strlen(msg);
    if (n > 1024)
        n = 1024;
    int rc = add(conn, SM_TS_CONNECTION_EXCEPTION, ts_ns, msg, n, sm_ts_obs_max_size(n + 6));
    if (rc == SM_OK) {
        conn->unterminated = false;
        conn->rb->stats.exceptions++;
    }
    return rc;
}

bool agent_rec_unterminated(const struct agent_rec_conn *conn)
{
    return conn->unterminated;
}

void agent_rec_close(struct agent_rec_conn *conn, uint64_t ts_ns)
{
    if (!conn)
        return;
    struct agent_recorder *rb = conn->rb;
    if (conn->open || conn->next_index > 1) {
        if (add(conn, SM_TS_CLOSE, ts_ns, NULL, 0, sm_ts_obs_max_size(0)) == SM_OK) {
            rb->stats.closes++;
            flush(conn, true, FL_CLOSE);
        } else if (conn->open) {
            flush(conn, true, FL_CLOSE);
        }
    }
    if (conn->open)
        rb->stats.held_bytes -= conn->est + conn->presized;
    sm_ts_enc_free(&conn->enc);
    list_remove(rb, conn);
    sm_free(conn);
}
