/* Integration: the agent's Kafka sink (agent/sink/kafka.c + spool.c) against
 * sm-kafka-standin over TCP: records arrive in order per connection in one
 * partition; a broker outage moves records to the spool and after recovery
 * every record arrives exactly once and in order; a full spool refuses and
 * counts records with bounded memory; a spool with a torn tail left by a crash
 * is recovered and its intact records are sent at the next start.
 * Env SM_KAFKA_STANDIN: path of sm-kafka-standin. */
#include <sm/err.h>
#include <sm/kafka.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../integration/kafka/kstandin.h"
#include "sink/sink.h"
#include "sm_test.h"

#define NKEYS 3

static struct kstandin ks;
static char spool_dir[256];
static int delivered_ok, delivered_err;

static void on_delivery(void *arg, const struct agent_sink_msg *msg, int err)
{
    (void)arg;
    (void)msg;
    if (err)
        delivered_err++;
    else
        delivered_ok++;
}

static int setup(const char *topic)
{
    const char *path = getenv("SM_KAFKA_STANDIN");
    if (!path || access(path, X_OK))
        SM_SKIP("SM_KAFKA_STANDIN not set");
    if (!ks.pid && ks_start(&ks, path, "1", "sm-agent-base:1"))
        return -1;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "topic %s:4", topic);
    if (ks_command(&ks, cmd))
        return -1;
    snprintf(spool_dir, sizeof(spool_dir), "/tmp/sm_test_agent_kafka.%d/%s", (int)getpid(), topic);
    char rm[400];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", spool_dir);
    if (system(rm)) {}
    delivered_ok = delivered_err = 0;
    return 0;
}

static struct sm_kafka_opts ko;

static struct agent_sink *open_sink(const char *topic, uint64_t spool_max, const char *queue_max)
{
    sm_strlist_free(&ko.props);
    memset(&ko, 0, sizeof(ko));
    ko.brokers = ks.bootstrap;
    ko.topic = (char *)topic;
    sm_strlist_push(&ko.props, "reconnect.backoff.ms=50");
    sm_strlist_push(&ko.props, "reconnect.backoff.max.ms=500");
    if (queue_max) {
        char kv[64];
        snprintf(kv, sizeof(kv), "queue.buffering.max.messages=%s", queue_max);
        sm_strlist_push(&ko.props, kv);
    }
    struct agent_sink_conf c = {
        .kind = "kafka", .kafka = &ko, .spool_dir = spool_dir, .spool_max = spool_max,
        .on_delivery = on_delivery,
    };
    struct agent_sink *s = NULL;
    char err[512];
    if (agent_sink_open(&c, &s, err, sizeof(err))) {
        fprintf(stderr, "open: %s\n", err);
        return NULL;
    }
    return s;
}

/* Writes record seq (1-based) of each key; returns how many were refused. */
static int write_round(struct agent_sink *s, int seq, size_t pad)
{
    int refused = 0;
    for (int k = 0; k < NKEYS; k++) {
        char conn[64];
        snprintf(conn, sizeof(conn), "agent-test-conn-%d", k);
        TrafficStream *ts = sm_ts_new(conn, "agent-test-node");
        char *body = sm_malloc(pad + 64);
        int bl = snprintf(body, 64, "GET /%d HTTP/1.1\r\n", seq);
        memset(body + bl, 'p', pad);
        memcpy(body + bl + pad, "\r\n", 2);
        bl += (int)pad + 2;
        sm_ts_add(ts, SM_TS_READ, (int64_t)seq * 1000000, body, (size_t)bl);
        sm_ts_set_index(ts, seq, false);
        uint8_t *enc;
        size_t el;
        if (sm_ts_encode_alloc(ts, &enc, &el))
            abort();
        sm_free(body);
        sm_ts_free(ts);
        struct agent_sink_msg *m = agent_sink_msg_new(conn, enc, el, false);
        int rc = agent_sink_write(s, m);
        if (rc) {
            if (rc != SM_EFULL)
                fprintf(stderr, "write: %s\n", sm_strerror(rc));
            agent_sink_msg_free(m);
            refused++;
        }
    }
    agent_sink_poll(s);
    return refused;
}

struct seen {
    int count[NKEYS];
    int last[NKEYS];
    int partition[NKEYS];
    int total, disorder, dups;
};

/* Consumes topic until want records arrived, then 1.5 s more for duplicates. */
static int consume(const char *topic, int want, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    for (int k = 0; k < NKEYS; k++)
        s->partition[k] = -1;
    struct sm_kafka_opts co = { 0 };
    char group[64];
    snprintf(group, sizeof(group), "check-%s", topic);
    co.brokers = ks.bootstrap;
    co.group_id = group;
    char err[512];
    rd_kafka_conf_t *cc = sm_kafka_consumer_conf_new(&co, err, sizeof(err));
    rd_kafka_t *c = cc ? sm_kafka_consumer_new(cc, topic, err, sizeof(err)) : NULL;
    if (!c) {
        fprintf(stderr, "consumer: %s\n", err);
        return -1;
    }
    uint64_t deadline = sm_now_ms() + 40000, quiet_until = 0;
    while (sm_now_ms() < deadline) {
        if (s->total >= want) {
            if (!quiet_until)
                quiet_until = sm_now_ms() + 1500;
            else if (sm_now_ms() > quiet_until)
                break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        TrafficStream *ts = NULL;
        if (sm_ts_decode(m->payload, m->len, &ts, err, sizeof(err)) == SM_OK) {
            int k = -1;
            int32_t idx = 0;
            bool last;
            sm_ts_index(ts, &idx, &last);
            if (sscanf(ts->connectionid, "agent-test-conn-%d", &k) == 1 && k >= 0 && k < NKEYS &&
                m->key_len == strlen(ts->connectionid) && !memcmp(m->key, ts->connectionid, m->key_len)) {
                if (s->partition[k] < 0)
                    s->partition[k] = m->partition;
                if (s->partition[k] != m->partition)
                    s->disorder++;
                if (idx == s->last[k])
                    s->dups++;
                else if (idx < s->last[k]) {
                    fprintf(stderr, "key %d: index %d after %d\n", k, idx, s->last[k]);
                    s->disorder++;
                }
                s->last[k] = idx;
                s->count[k]++;
            } else {
                s->disorder++;
            }
            sm_ts_free(ts);
        }
        s->total++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return 0;
}

static int test_agent_kafka_produce(void)
{
    if (setup("agent-t1"))
        return 1;
    struct agent_sink *s = open_sink("agent-t1", 0, NULL);
    SM_CHECK(s);
    for (int seq = 1; seq <= 50; seq++)
        SM_CHECK_EQ_INT(write_round(s, seq, 100), 0);
    SM_CHECK_EQ_INT(agent_sink_flush(s, sm_now_ms() + 30000), SM_OK);
    struct agent_sink_stats st;
    agent_sink_stats(s, &st);
    SM_CHECK_EQ_INT(st.written, 150);
    SM_CHECK_EQ_INT(st.delivered, 150);
    SM_CHECK_EQ_INT(st.spooled, 0);
    SM_CHECK_EQ_INT(delivered_ok, 150);
    agent_sink_close(s);
    struct seen sn;
    SM_CHECK(consume("agent-t1", 150, &sn) == 0);
    SM_CHECK_EQ_INT(sn.total, 150);
    SM_CHECK_EQ_INT(sn.disorder, 0);
    SM_CHECK_EQ_INT(sn.dups, 0);
    for (int k = 0; k < NKEYS; k++) {
        SM_CHECK_EQ_INT(sn.count[k], 50);
        SM_CHECK_EQ_INT(sn.last[k], 50);
    }
    return 0;
}

static int test_agent_kafka_outage_spool(void)
{
    if (setup("agent-t2"))
        return 1;
    struct agent_sink *s = open_sink("agent-t2", 0, "20");
    SM_CHECK(s);
    for (int seq = 1; seq <= 20; seq++)
        SM_CHECK_EQ_INT(write_round(s, seq, 200), 0);
    SM_CHECK_EQ_INT(agent_sink_flush(s, sm_now_ms() + 30000), SM_OK);
    SM_CHECK(ks_command(&ks, "down") == 0);
    struct agent_sink_stats st;
    uint64_t max_spooled = 0, max_bytes = 0;
    for (int seq = 21; seq <= 80; seq++) {
        SM_CHECK_EQ_INT(write_round(s, seq, 200), 0);
        if (seq % 10 == 0)
            sm_sleep_ms(300);
        agent_sink_stats(s, &st);
        if (st.spooled > max_spooled)
            max_spooled = st.spooled;
        if (st.spool_bytes > max_bytes)
            max_bytes = st.spool_bytes;
    }
    fprintf(stderr, "while down: spooled up to %llu records, %llu bytes; delivered %llu\n",
            (unsigned long long)max_spooled, (unsigned long long)max_bytes, (unsigned long long)st.delivered);
    SM_CHECK(max_spooled >= 60);         /* the librdkafka queue holds at most 20 */
    SM_CHECK(max_bytes > max_spooled * 200);
    SM_CHECK(st.delivered < 60 + 20);    /* at most a queue's worth raced the outage */
    SM_CHECK(ks_command(&ks, "up") == 0);
    SM_CHECK_EQ_INT(agent_sink_flush(s, sm_now_ms() + 45000), SM_OK);
    agent_sink_stats(s, &st);
    SM_CHECK_EQ_INT(st.written, 240);
    SM_CHECK_EQ_INT(st.delivered, 240);
    SM_CHECK_EQ_INT(st.spooled, 0);
    SM_CHECK_EQ_INT(st.refused_full, 0);
    SM_CHECK_EQ_INT(delivered_err, 0);
    agent_sink_close(s);
    struct seen sn;
    SM_CHECK(consume("agent-t2", 240, &sn) == 0);
    SM_CHECK_EQ_INT(sn.total, 240);
    SM_CHECK_EQ_INT(sn.disorder, 0);
    SM_CHECK_EQ_INT(sn.dups, 0);
    for (int k = 0; k < NKEYS; k++)
        SM_CHECK_EQ_INT(sn.count[k], 80);
    return 0;
}

static int test_agent_kafka_spool_full(void)
{
    if (setup("agent-t3"))
        return 1;
    SM_CHECK(ks_command(&ks, "down") == 0);
    struct agent_sink *s = open_sink("agent-t3", 64 << 10, "10");
    SM_CHECK(s);
    int refused = 0;
    for (int seq = 1; seq <= 100; seq++) {
        refused += write_round(s, seq, 2000);
        if (seq % 20 == 0)
            sm_sleep_ms(100);
    }
    struct agent_sink_stats st;
    agent_sink_stats(s, &st);
    fprintf(stderr, "spool full: refused %d, spooled %llu (%llu bytes)\n", refused,
            (unsigned long long)st.spooled, (unsigned long long)st.spool_bytes);
    SM_CHECK(refused > 150);
    SM_CHECK_EQ_INT(st.refused_full, (uint64_t)refused);
    SM_CHECK(st.spool_bytes <= 64 << 10);
    SM_CHECK(st.spooled >= 20);
    SM_CHECK(agent_sink_full(s));
    uint64_t accepted = st.written;
    SM_CHECK_EQ_INT(accepted, 300 - (uint64_t)refused);
    SM_CHECK(ks_command(&ks, "up") == 0);
    SM_CHECK_EQ_INT(agent_sink_flush(s, sm_now_ms() + 45000), SM_OK);
    agent_sink_stats(s, &st);
    SM_CHECK_EQ_INT(st.delivered, accepted);
    SM_CHECK_EQ_INT(st.spool_bytes, 0);
    agent_sink_close(s);
    struct seen sn;
    SM_CHECK(consume("agent-t3", (int)accepted, &sn) == 0);
    SM_CHECK_EQ_INT(sn.total, (int)accepted);
    SM_CHECK_EQ_INT(sn.disorder, 0);
    return 0;
}

static int last_segment(char *path, size_t n)
{
    DIR *d = opendir(spool_dir);
    if (!d)
        return -1;
    char best[300] = "";
    struct dirent *de;
    int count = 0;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "spool-", 6)) {
            count++;
            if (strcmp(de->d_name, best) > 0)
                snprintf(best, sizeof(best), "%s", de->d_name);
        }
    closedir(d);
    if (!best[0])
        return -1;
    snprintf(path, n, "%s/%s", spool_dir, best);
    return count;
}

static int test_agent_kafka_spool_restart(void)
{
    if (setup("agent-t4"))
        return 1;
    SM_CHECK(ks_command(&ks, "down") == 0);
    struct agent_sink *s = open_sink("agent-t4", 0, "8");
    SM_CHECK(s);
    for (int seq = 1; seq <= 10; seq++) {
        SM_CHECK_EQ_INT(write_round(s, seq, 300), 0);
        sm_sleep_ms(20);
    }
    /* SIGTERM path: flush with a short deadline, then close; nothing is delivered */
    SM_CHECK_EQ_INT(agent_sink_flush(s, sm_now_ms() + 300), SM_ETIMEOUT);
    agent_sink_close(s);
    SM_CHECK_EQ_INT(delivered_ok, 0);
    SM_CHECK_EQ_INT(delivered_err, 0);
    /* a crash while writing the last record: its frame is torn */
    char seg[512];
    SM_CHECK(last_segment(seg, sizeof(seg)) >= 1);
    struct stat sb;
    SM_CHECK(stat(seg, &sb) == 0);
    SM_CHECK(truncate(seg, sb.st_size - 5) == 0);
    SM_CHECK(ks_command(&ks, "up") == 0);
    s = open_sink("agent-t4", 0, NULL);
    SM_CHECK(s);
    SM_CHECK_EQ_INT(agent_sink_flush(s, sm_now_ms() + 45000), SM_OK);
    struct agent_sink_stats st;
    agent_sink_stats(s, &st);
    SM_CHECK_EQ_INT(st.delivered, 29);
    SM_CHECK_EQ_INT(st.spooled, 0);
    SM_CHECK(last_segment(seg, sizeof(seg)) < 0);    /* acknowledged segments are deleted */
    agent_sink_close(s);
    struct seen sn;
    SM_CHECK(consume("agent-t4", 29, &sn) == 0);
    SM_CHECK_EQ_INT(sn.total, 29);
    SM_CHECK_EQ_INT(sn.disorder, 0);
    SM_CHECK_EQ_INT(sn.dups, 0);
    SM_CHECK_EQ_INT(sn.count[0] + sn.count[1] + sn.count[2], 29);
    SM_CHECK_EQ_INT(sn.last[2], 9);                 /* the torn record was key 2's 10th */
    SM_CHECK_EQ_INT(sn.last[0], 10);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_agent_kafka_produce), SM_TC(test_agent_kafka_outage_spool),
             SM_TC(test_agent_kafka_spool_full), SM_TC(test_agent_kafka_spool_restart))
