/* Kafka input: consumer group member, at-least-once commits, dead letters
 * (see kafka.h and docs/kafka.md). */
#include "input/kafka.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_TOPICS 16
#define KEY(tidx, part) ((int32_t)(((uint32_t)(tidx) << 20) | ((uint32_t)(part) & 0xfffffu)))
#define KEY_TOPIC(key) ((int)((uint32_t)(key) >> 20))
#define KEY_PART(key) ((int32_t)((uint32_t)(key) & 0xfffffu))
#define DUP_SLOTS (1u << 18)

struct assigned {
    int32_t key;
    int64_t committed;           /* last offset committed by us; -1 none */
};

struct replay_kafka {
    struct replay_kafka_cfg cfg;
    rd_kafka_t *rk;
    char *topics[MAX_TOPICS];
    int ntopics;
    struct replay_offsets *offs;
    struct replay_accum *acc;
    struct replay_engine *eng;
    FILE *dlq;
    struct assigned *asg;
    size_t nasg, casg;
    bool closing;
    bool paused;                 /* the engine is full: assigned partitions paused */
    uint64_t paused_at_ms;
    uint64_t *dups;
    uint64_t next_commit_ms;
    struct replay_kafka_stats st;
    struct sm_ratelimit rl_bad, rl_err;
    struct sm_ts_arena *arena;   /* decoded records (one at a time) */
};

static int topic_index(struct replay_kafka *k, const char *name)
{
    for (int i = 0; i < k->ntopics; i++)
        if (!strcmp(k->topics[i], name))
            return i;
    return -1;
}

struct replay_offsets *replay_kafka_offsets(struct replay_kafka *k)
{
    return k->offs;
}

void replay_kafka_attach(struct replay_kafka *k, struct replay_accum *acc, struct replay_engine *eng)
{
    k->acc = acc;
    k->eng = eng;
}

/* ---- accumulator callbacks ---- */

void replay_kafka_on_request(void *arg, const struct replay_msg *req)
{
    struct replay_kafka *k = arg;
    uint64_t h = 1469598103934665603ull;
    for (const char *p = req->node_id ? req->node_id : ""; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ 0x1f) * 1099511628211ull;
    for (const char *p = req->conn_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ req->index) * 1099511628211ull;
    h |= 1;                      /* 0 marks an empty slot */
    if (k->dups) {
        uint64_t *slot = &k->dups[h & (DUP_SLOTS - 1)];
        if (*slot == h) {
            k->st.duplicates++;
            sm_dbg(SM_DBG_REPLAY, "kafka input: request %s.%" PRIu64 " seen again (replayed again)",
                   req->conn_id, req->index);
        }
        *slot = h;
    }
    replay_engine_on_request(k->eng, req);
}

void replay_kafka_on_response(void *arg, const struct replay_msg *resp, enum replay_resp_end end)
{
    struct replay_kafka *k = arg;
    replay_engine_on_response(k->eng, resp, end);
}

void replay_kafka_on_closed(void *arg, const char *node_id, const char *conn_id, bool expired)
{
    struct replay_kafka *k = arg;
    replay_engine_on_closed(k->eng, node_id, conn_id, expired);
}

/* ---- commits ---- */

static struct assigned *asg_find(struct replay_kafka *k, int32_t key)
{
    for (size_t i = 0; i < k->nasg; i++)
        if (k->asg[i].key == key)
            return &k->asg[i];
    return NULL;
}

static bool in_list(const rd_kafka_topic_partition_list_t *l, struct replay_kafka *k, int32_t key)
{
    for (int i = 0; i < l->cnt; i++)
        if (topic_index(k, l->elems[i].topic) == KEY_TOPIC(key) && l->elems[i].partition == KEY_PART(key))
            return true;
    return false;
}

/* Commits (synchronously) the commit point of every assigned partition (or of
 * those in only) that moved since the last commit. */
static void commit(struct replay_kafka *k, const rd_kafka_topic_partition_list_t *only)
{
    if (k->eng && replay_engine_flush_tuples(k->eng) != SM_OK) {
        sm_log_err("kafka input: cannot flush tuples: offsets not committed");
        k->st.commit_errors++;
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)k->nasg + 1);
    int64_t *points = sm_calloc(k->nasg + 1, sizeof(*points));
    if (!l || !points) {
        if (l)
            rd_kafka_topic_partition_list_destroy(l);
        sm_free(points);
        return;
    }
    for (size_t i = 0; i < k->nasg; i++) {
        struct assigned *a = &k->asg[i];
        points[i] = -1;
        if (only && !in_list(only, k, a->key))
            continue;
        int64_t cp = replay_offsets_commit_point(k->offs, a->key, NULL);
        if (cp < 0 || cp <= a->committed)
            continue;
        points[i] = cp;
        rd_kafka_topic_partition_list_add(l, k->topics[KEY_TOPIC(a->key)], KEY_PART(a->key))->offset = cp;
    }
    if (l->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, l, 0);
        if (e) {
            k->st.commit_errors++;
            sm_log_warn("kafka input: commit failed: %s", rd_kafka_err2str(e));
        } else {
            k->st.commits++;
            for (size_t i = 0; i < k->nasg; i++)
                if (points[i] >= 0) {
                    k->asg[i].committed = points[i];
                    sm_dbg(SM_DBG_REPLAY, "kafka input: committed %s[%d] at %" PRId64,
                           k->topics[KEY_TOPIC(k->asg[i].key)], (int)KEY_PART(k->asg[i].key), points[i]);
                }
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    sm_free(points);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct replay_kafka *k = opaque;
    const char *proto = rd_kafka_rebalance_protocol(rk);
    bool coop = proto && !strcmp(proto, "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            int t = topic_index(k, parts->elems[i].topic);
            if (t < 0)
                continue;
            int32_t key = KEY(t, parts->elems[i].partition);
            replay_offsets_assign(k->offs, key);
            if (!asg_find(k, key)) {
                if (k->nasg == k->casg) {
                    size_t nc = k->casg ? k->casg * 2 : 16;
                    struct assigned *na = sm_realloc(k->asg, nc * sizeof(*na));
                    if (!na)
                        continue;
                    k->asg = na;
                    k->casg = nc;
                }
                k->asg[k->nasg++] = (struct assigned){ key, -1 };
            } else {
                asg_find(k, key)->committed = -1;
            }
            k->st.assigned++;
            sm_log_info("kafka input: assigned %s[%d]", parts->elems[i].topic, (int)parts->elems[i].partition);
        }
        if (coop)
            rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (k->paused)   /* taken over while the engine is full: wait like the others */
            rd_kafka_pause_partitions(rk, parts);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* commit what is safe now; requests still in flight for these
         * partitions will be replayed again by the next owner (duplicates) */
        commit(k, parts);
        for (int i = 0; i < parts->cnt; i++) {
            int t = topic_index(k, parts->elems[i].topic);
            if (t < 0)
                continue;
            int32_t key = KEY(t, parts->elems[i].partition);
            if (k->acc && !k->closing)
                replay_accum_drop_partition(k->acc, key);
            replay_offsets_revoke(k->offs, key);
            struct assigned *a = asg_find(k, key);
            if (a)
                *a = k->asg[--k->nasg];
            k->st.revoked++;
            sm_log_info("kafka input: revoked %s[%d]", parts->elems[i].topic, (int)parts->elems[i].partition);
        }
        if (coop)
            rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
        return;
    }
    sm_log_err("kafka input: rebalance failed: %s", rd_kafka_err2str(err));
    rd_kafka_assign(rk, NULL);
}

/* ---- records ---- */

/* false: the dead-letter file could not take the record (the caller keeps its
 * offset from being committed, so a restart meets it again). */
static bool dead_letter(struct replay_kafka *k, const rd_kafka_message_t *m, const char *topic, const char *why)
{
    uint64_t sup = 0;
    if (sm_log_ratelimited(&k->rl_bad, 2000, &sup))
        sm_log_warn("kafka input: %s[%d] offset %" PRId64 ": %s%s (%" PRIu64 " similar suppressed)", topic,
                    (int)m->partition, m->offset, why, k->dlq ? ": moved to the dead-letter file" : "", sup);
    if (!k->dlq)
        return true;
    size_t bl = sm_base64_enc_len(m->len);
    char *b64 = sm_malloc(bl + 1);
    if (!b64) {
        sm_log_err("kafka input: out of memory writing a dead letter");
        return false;
    }
    size_t b64n = sm_base64_encode(m->payload, m->len, b64);
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", why);
    for (char *c = reason; *c; c++)
        if (*c == '|' || *c == '\n' || *c == '\r')
            *c = ' ';
    /* "<coordinates>|<base64>": readable again with --input (key|base64 lines); the
     * line goes in whole or not at all (sm_fd_append_whole) */
    char head[640];
    int hl = snprintf(head, sizeof(head), "topic=%s partition=%d offset=%" PRId64 " error=%s|", topic,
                      (int)m->partition, m->offset, reason);
    struct iovec iov[3] = { { head, hl > 0 && (size_t)hl < sizeof(head) ? (size_t)hl : strlen(head) },
                            { b64, b64n }, { (void *)"\n", 1 } };
    int e = sm_fd_append_whole(fileno(k->dlq), iov, 3, NULL);
    sm_free(b64);
    if (!e && fsync(fileno(k->dlq)))
        e = errno;
    if (e) {
        sm_log_err("kafka input: cannot write the dead-letter file %s: %s: %s[%d] offset %" PRId64
                   " stays uncommitted (a restart meets it again)", k->cfg.dead_letter_path, strerror(e), topic,
                   (int)m->partition, m->offset);
        k->st.dead_letter_errors++;
        return false;
    }
    k->st.dead_letters++;
    return true;
}

static void handle(struct replay_kafka *k, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return;
        k->st.consumer_errors++;
        uint64_t sup = 0;
        if (sm_log_ratelimited(&k->rl_err, 5000, &sup))
            sm_log_warn("kafka input: %s (%" PRIu64 " similar suppressed)", rd_kafka_message_errstr(m), sup);
        return;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    int t = topic_index(k, topic);
    if (t < 0)
        return;
    int32_t key = KEY(t, m->partition);
    struct replay_origin origin;
    if (!replay_offsets_origin(k->offs, key, m->offset, &origin))
        return;              /* partition no longer ours */
    k->st.records++;
    char err[256] = "";
    int rc = SM_EPROTO;
    unsigned tries = k->cfg.poison_retries ? k->cfg.poison_retries : 3;
    for (unsigned attempt = 0; attempt < tries; attempt++) {
        if (attempt)
            k->st.retries++;
        TrafficStream *ts = NULL;
        if (!k->arena && !(k->arena = sm_ts_arena_new()))
            rc = SM_ENOMEM;
        else
            rc = sm_ts_decode_in(k->arena, m->payload, m->len, SM_TS_DECODE_MAX, &ts, err, sizeof(err));
        if (rc == SM_OK) {
            rc = replay_accum_feed_from(k->acc, ts, &origin);
            if (rc == SM_EPROTO)
                snprintf(err, sizeof(err), "record without connectionId");
            else if (rc)
                snprintf(err, sizeof(err), "accumulator: %s", sm_strerror(rc));
        }
        if (rc == SM_OK || rc == SM_EPROTO || rc == SM_ECORRUPT)
            break;           /* done, or fails the same way every time */
        sm_sleep_ms(10u << attempt);
    }
    if (rc != SM_OK) {
        k->st.malformed++;
        if (!dead_letter(k, m, topic, err[0] ? err : sm_strerror(rc)))
            replay_offsets_pin(k->offs, &origin);   /* never released: no commit past it */
    }
    replay_offsets_consumed(k->offs, key, m->offset);
}

/* ---- lifecycle ---- */

struct replay_kafka *replay_kafka_new(const struct replay_kafka_cfg *cfg, char *err, size_t errlen)
{
    struct replay_kafka *k = sm_calloc(1, sizeof(*k));
    if (!k) {
        sm_errf(err, errlen, SM_ENOMEM, "kafka input: out of memory");
        return NULL;
    }
    k->cfg = *cfg;
    if (!k->cfg.commit_interval_ms)
        k->cfg.commit_interval_ms = 5000;
    if (!k->cfg.source_wait_ms)
        k->cfg.source_wait_ms = 30000;
    const char *topics = cfg->kafka->topic && *cfg->kafka->topic ? cfg->kafka->topic : SM_KAFKA_DEFAULT_TOPIC;
    for (const char *p = topics; *p && k->ntopics < MAX_TOPICS;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n)
            k->topics[k->ntopics++] = sm_strndup(p, n);
        p += n;
        if (*p == ',')
            p++;
    }
    k->offs = replay_offsets_new();
    k->dups = sm_calloc(DUP_SLOTS, sizeof(*k->dups));
    if (!k->offs || !k->dups || !k->ntopics || !k->topics[k->ntopics - 1]) {
        sm_errf(err, errlen, SM_ENOMEM, "kafka input: out of memory");
        replay_kafka_free(k);
        return NULL;
    }
    if (cfg->dead_letter_path && *cfg->dead_letter_path) {
        k->dlq = fopen(cfg->dead_letter_path, "a");
        if (!k->dlq) {
            sm_errf(err, errlen, SM_EIO, "--dead-letter-file %s: %s", cfg->dead_letter_path, strerror(errno));
            replay_kafka_free(k);
            return NULL;
        }
    }
    rd_kafka_conf_t *kc = sm_kafka_consumer_conf_new(cfg->kafka, err, errlen);
    if (!kc) {
        replay_kafka_free(k);
        return NULL;
    }
    rd_kafka_conf_set_opaque(kc, k);
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    k->rk = sm_kafka_consumer_new(kc, topics, err, errlen);
    if (!k->rk) {
        replay_kafka_free(k);
        return NULL;
    }
    return k;
}

/* Backpressure without leaving the group: while the engine is full (the
 * target slower than the traffic, or stalled), the assigned partitions are
 * paused and the loop goes on polling - rebalances, heartbeats and
 * max.poll.interval.ms are served, no record is delivered - instead of
 * blocking in the engine, which past max.poll.interval.ms (default 300 s)
 * would make librdkafka leave the group (a rebalance, and duplicates).
 * Resumed fetching starts at the next record not yet consumed. */
/* ends the current pause's time: added to paused_ms, returned in ms */
static uint64_t end_pause(struct replay_kafka *k)
{
    uint64_t d = sm_now_ms() - k->paused_at_ms;
    k->st.paused_ms += d;
    k->paused = false;
    return d;
}

static void hold_input(struct replay_kafka *k, bool hold)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t e = rd_kafka_assignment(k->rk, &l);
    if (!e && l) {
        e = hold ? rd_kafka_pause_partitions(k->rk, l) : rd_kafka_resume_partitions(k->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (e)
        sm_log_warn("kafka input: %s partitions: %s", hold ? "pausing" : "resuming", rd_kafka_err2str(e));
    if (hold) {
        k->st.pauses++;
        k->paused_at_ms = sm_now_ms();
        k->paused = true;
        sm_dbg(SM_DBG_REPLAY, "kafka input: engine full (%" PRIu64 " requests pending): partitions paused",
               replay_engine_pending(k->eng));
        return;
    }
    uint64_t d = end_pause(k);
    if (d >= 10000)
        sm_log_info("kafka input: partitions resumed after %.1f s paused (target slower than the input)",
                    (double)d / 1000.0);
}

int replay_kafka_run(struct replay_kafka *k, volatile sig_atomic_t *stop)
{
    k->next_commit_ms = sm_now_ms() + k->cfg.commit_interval_ms;
    uint64_t next_tick = 0;
    while (!*stop) {
        bool room = replay_engine_has_room(k->eng);
        if (room == k->paused)
            hold_input(k, !room);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, k->paused ? 20 : 100);
        if (m) {
            handle(k, m);
            rd_kafka_message_destroy(m);
        }
        if (k->cfg.tick)
            k->cfg.tick(k->cfg.tick_arg);
        uint64_t now = sm_now_ms();
        if (now >= next_tick) {
            /* quiet keep-alive connections: their last response ends after
             * source_wait of silence, so its tuple is written and the commit
             * point can pass it (engine backstop at twice that) */
            replay_accum_end_idle_responses(k->acc, k->cfg.source_wait_ms);
            replay_engine_expire_source_waits(k->eng, false);
            next_tick = now + 200;
        }
        if (now >= k->next_commit_ms) {
            commit(k, NULL);
            k->next_commit_ms = now + k->cfg.commit_interval_ms;
        }
        char fe[256];
        rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(k->rk, fe, sizeof(fe));
        if (fatal) {
            sm_log_err("kafka input: fatal consumer error: %s", fe);
            return SM_EIO;
        }
    }
    return SM_OK;
}

void replay_kafka_shutdown(struct replay_kafka *k, uint64_t deadline_ms)
{
    /* no more records; what was fed is sent, its tuples written (open source
     * responses end with what they have), then committed */
    replay_accum_end_idle_responses(k->acc, 0);
    while (replay_engine_pending(k->eng) && sm_now_ms() < deadline_ms) {
        replay_engine_expire_source_waits(k->eng, true);
        if (!replay_engine_pending(k->eng))
            break;
        sm_sleep_ms(20);
    }
    replay_engine_expire_source_waits(k->eng, true);
    if (replay_engine_pending(k->eng))
        sm_log_warn("kafka input: shutdown deadline: %" PRIu64 " requests unfinished (not committed)",
                    replay_engine_pending(k->eng));
    commit(k, NULL);
    if (k->paused)   /* the time of a pause still open counts too */
        end_pause(k);
    k->closing = true;
    rd_kafka_consumer_close(k->rk);
}

void replay_kafka_stats(struct replay_kafka *k, struct replay_kafka_stats *out)
{
    *out = k->st;
}

void replay_kafka_free(struct replay_kafka *k)
{
    if (!k)
        return;
    if (k->rk)
        rd_kafka_destroy(k->rk);
    if (k->dlq)
        fclose(k->dlq);
    for (int i = 0; i < k->ntopics; i++)
        sm_free(k->topics[i]);
    replay_offsets_free(k->offs);
    sm_free(k->dups);
    sm_free(k->asg);
    sm_ts_arena_free(k->arena);
    sm_free(k);
}
