/* Integration: searchmig-replay reading TrafficStream records from Kafka
 * (sm-kafka-standin) and replaying them to the target stand-in.
 *
 *  test_replay_kafka_single: one replayer; every request reaches the target,
 *    the tuples pair each with its source response, a poison record goes to
 *    the dead-letter file and does not stall its partition, and after SIGTERM
 *    the group's committed offsets are at the end of every partition.
 *  test_replay_kafka_group: two replayers in one consumer group share four
 *    partitions; one is SIGKILLed mid-stream; the other takes over its
 *    partitions from the last commit: every request reaches the target,
 *    duplicates are bounded, and the survivor's duplicate count is consistent.
 *  test_replay_kafka_stall: the target stalls one request for longer than
 *    max.poll.interval.ms while the engine is full (--max-pending): the
 *    replayer pauses its partitions and keeps polling, so it stays in its
 *    group (no revocation) and every request reaches the target exactly once.
 *
 * Env: SM_KAFKA_STANDIN, SM_REPLAY (binaries), SM_SOURCE_DIR (target stand-in). */
#include <sm/err.h>
#include <sm/kafka.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kstandin.h"
#include "sm_test.h"

#define MAXC 16
#define MAXR 64

static struct kstandin ks;
static char work[256];
static pid_t target_pid;
static int target_port;
static char target_log[300];

/* more arguments for the next start_replayer() (NULL-terminated) */
static const char *more_args[12];

/* Replayers started by a test; a failed check returns early, so cleanup()
 * (also run at exit and before the next test) ends whatever is still alive. */
static pid_t replayers[16];
static int nreplayers;

static void cleanup(void)
{
    for (int i = 0; i < nreplayers; i++)
        if (replayers[i] > 0 && waitpid(replayers[i], NULL, WNOHANG) == 0) {
            kill(replayers[i], SIGKILL);
            waitpid(replayers[i], NULL, 0);
        }
    nreplayers = 0;
    if (target_pid > 0) {
        kill(target_pid, SIGTERM);
        waitpid(target_pid, NULL, 0);
        target_pid = 0;
    }
    ks_stop(&ks);
}

static int setup(const char *name)
{
    const char *kpath = getenv("SM_KAFKA_STANDIN"), *rpath = getenv("SM_REPLAY");
    if (!kpath || !rpath || access(kpath, X_OK) || access(rpath, X_OK))
        SM_SKIP("SM_KAFKA_STANDIN / SM_REPLAY not set");
    if (access("/usr/bin/python3", X_OK))
        SM_SKIP("no /usr/bin/python3 for the target stand-in");
    static bool at_exit;
    if (!at_exit) {
        atexit(cleanup);
        at_exit = true;
    }
    cleanup();   /* leftovers of a test that failed early */
    snprintf(work, sizeof(work), "/tmp/sm_test_replay_kafka.%d.%s", (int)getpid(), name);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s/tuples'", work, work);
    if (system(cmd))
        return -1;
    atexit(cleanup);
    if (ks_start(&ks, kpath, "1", "rt:4"))
        return -1;
    /* target stand-in */
    char portfile[300];
    snprintf(portfile, sizeof(portfile), "%s/target.port", work);
    snprintf(target_log, sizeof(target_log), "%s/target.log", work);
    target_pid = fork();
    if (target_pid == 0) {
        char script[512];
        snprintf(script, sizeof(script), "%s/tests/standins/target/target_standin.py", getenv("SM_SOURCE_DIR"));
        execl("/usr/bin/python3", "python3", script, "--port", "0", "--port-file", portfile, "--flavor",
              "opensearch-2.11", "--log", target_log, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &target_port) == 1;
            fclose(f);
            if (ok && target_port > 0)
                return 0;
        }
        sm_sleep_ms(50);
    }
    fprintf(stderr, "target stand-in did not start\n");
    return -1;
}

static rd_kafka_t *producer(void)
{
    struct sm_kafka_opts ko = { 0 };
    ko.brokers = ks.bootstrap;
    char err[512];
    rd_kafka_conf_t *c = sm_kafka_producer_conf_new(&ko, err, sizeof(err));
    rd_kafka_t *rk = c ? sm_kafka_producer_new(c, err, sizeof(err)) : NULL;
    if (!rk)
        fprintf(stderr, "producer: %s\n", err);
    return rk;
}

static void conn_name(char *out, size_t n, int c)
{
    snprintf(out, n, "rtconn-%02d", c);
}

static int produce_raw(rd_kafka_t *rk, const char *key, const void *v, size_t len)
{
    char err[256];
    int rc;
    while ((rc = sm_kafka_produce(rk, "rt", key, strlen(key), v, len, NULL, err, sizeof(err))) == SM_EFULL)
        rd_kafka_poll(rk, 50);
    if (rc)
        fprintf(stderr, "%s\n", err);
    return rc;
}

/* Record r of connection c: request r (read + EOM), its source response (write);
 * close at the end if last. */
static int produce_req(rd_kafka_t *rk, int c, int r, bool close_after)
{
    char conn[32], req[128], resp[128];
    conn_name(conn, sizeof(conn), c);
    TrafficStream *ts = sm_ts_new(conn, "rt-node");
    int64_t t = (int64_t)sm_wall_ms() * 1000000 + r * 1000;
    int rl = snprintf(req, sizeof(req), "GET /kt/_doc/c%d_r%d HTTP/1.1\r\nHost: source\r\n\r\n", c, r);
    int bl = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{\"r\":%6d}", r);
    sm_ts_add(ts, SM_TS_READ, t, req, (size_t)rl);
    sm_ts_add_eom(ts, t, (int32_t)strcspn(req, "\r"), rl);
    sm_ts_add(ts, SM_TS_WRITE, t + 500, resp, (size_t)bl);
    if (close_after)
        sm_ts_add(ts, SM_TS_CLOSE, t + 900, NULL, 0);
    sm_ts_set_prior_requests(ts, r);
    sm_ts_set_index(ts, r + 1, close_after);
    uint8_t *enc;
    size_t el;
    if (sm_ts_encode_alloc(ts, &enc, &el))
        return -1;
    sm_ts_free(ts);
    int rc = produce_raw(rk, conn, enc, el);
    sm_free(enc);
    return rc;
}

static pid_t start_replayer(const char *tag, const char *group, const char *extra1, const char *extra2)
{
    char target[64], tuples[300], dlq[300], summary[300], logf[300];
    snprintf(target, sizeof(target), "http://127.0.0.1:%d", target_port);
    snprintf(tuples, sizeof(tuples), "%s/tuples/%s", work, tag);
    snprintf(dlq, sizeof(dlq), "%s/%s.dead", work, tag);
    snprintf(summary, sizeof(summary), "%s/%s.summary.json", work, tag);
    snprintf(logf, sizeof(logf), "%s/%s.log", work, tag);
    mkdir(tuples, 0755);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        const char *argv[64];
        int n = 0;
        argv[n++] = "searchmig-replay";
        argv[n++] = "--kafka-brokers"; argv[n++] = ks.bootstrap;
        argv[n++] = "--kafka-topic"; argv[n++] = "rt";
        argv[n++] = "--kafka-group-id"; argv[n++] = group;
        argv[n++] = "--kafka-property"; argv[n++] = "session.timeout.ms=6000";
        argv[n++] = "--kafka-property"; argv[n++] = "heartbeat.interval.ms=500";
        argv[n++] = "--kafka-property"; argv[n++] = "reconnect.backoff.max.ms=500";
        argv[n++] = "--target"; argv[n++] = target;
        argv[n++] = "--tuples-dir"; argv[n++] = tuples;
        argv[n++] = "--dead-letter-file"; argv[n++] = dlq;
        argv[n++] = "--summary-json"; argv[n++] = summary;
        argv[n++] = "--speedup-factor"; argv[n++] = "0";
        argv[n++] = "--commit-interval"; argv[n++] = "500ms";
        argv[n++] = "--source-response-wait"; argv[n++] = "3s";
        argv[n++] = "--workers"; argv[n++] = "4";
        if (extra1)
            argv[n++] = extra1;
        if (extra2)
            argv[n++] = extra2;
        for (int i = 0; more_args[i] && n < 62; i++)
            argv[n++] = more_args[i];
        argv[n] = NULL;
        execv(getenv("SM_REPLAY"), (char *const *)argv);
        _exit(127);
    }
    if (pid > 0 && nreplayers < (int)(sizeof(replayers) / sizeof(replayers[0])))
        replayers[nreplayers++] = pid;
    return pid;
}

/* Counts target requests per (c, r) from the stand-in's log. */
static int count_target(int counts[MAXC][MAXR], int *total)
{
    memset(counts, 0, sizeof(int) * MAXC * MAXR);
    *total = 0;
    FILE *f = fopen(target_log, "r");
    if (!f)
        return 0;
    char line[1024];
    int distinct = 0;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "/kt/_doc/c");
        int c, r;
        if (!p || sscanf(p, "/kt/_doc/c%d_r%d", &c, &r) != 2 || c < 0 || c >= MAXC || r < 0 || r >= MAXR)
            continue;
        if (!counts[c][r]++)
            distinct++;
        (*total)++;
    }
    fclose(f);
    return distinct;
}

static int wait_distinct(int want, int timeout_ms)
{
    int counts[MAXC][MAXR], total, d = 0;
    uint64_t deadline = sm_now_ms() + (uint64_t)timeout_ms;
    while (sm_now_ms() < deadline) {
        d = count_target(counts, &total);
        if (d >= want)
            return d;
        sm_sleep_ms(100);
    }
    return d;
}

static int stop_replayer(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 600; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        sm_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static json_t *load_summary(const char *tag)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/%s.summary.json", work, tag);
    return json_load_file(p, 0, NULL);
}

static long long jint(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Committed offset of group == high watermark on every partition of rt. */
static int check_committed(const char *group, int *partitions_with_data)
{
    struct sm_kafka_opts ko = { 0 };
    ko.brokers = ks.bootstrap;
    ko.group_id = (char *)group;
    char err[512];
    rd_kafka_conf_t *c = sm_kafka_consumer_conf_new(&ko, err, sizeof(err));
    rd_kafka_t *rk = c ? rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err)) : NULL;
    if (!rk)
        return -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int p = 0; p < 4; p++)
        rd_kafka_topic_partition_list_add(l, "rt", p);
    int bad = 0;
    *partitions_with_data = 0;
    if (rd_kafka_committed(rk, l, 10000)) {
        bad = -1;
    } else {
        for (int p = 0; p < 4; p++) {
            int64_t lo = 0, hi = 0;
            rd_kafka_query_watermark_offsets(rk, "rt", p, &lo, &hi, 5000);
            if (hi > 0)
                (*partitions_with_data)++;
            if (hi > 0 && l->elems[p].offset != hi) {
                fprintf(stderr, "partition %d: committed %lld, end %lld\n", p, (long long)l->elems[p].offset,
                        (long long)hi);
                bad++;
            }
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return bad;
}

/* Reads every tuple line under dir; checks ids and responses. */
static int check_tuples(const char *dir, int nconn, int nreq, int quiet)
{
    static int seen[MAXC][MAXR];
    memset(seen, 0, sizeof(seen));
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    int bad = 0, n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        FILE *f = fopen(p, "r");
        char *line = NULL;
        size_t cap = 0;
        while (f && getline(&line, &cap, f) > 0) {
            json_t *t = json_loads(line, 0, NULL);
            int c, r, idx;
            const char *cid = json_string_value(json_object_get(t, "connectionId"));
            const char *uri = json_string_value(json_object_get(json_object_get(t, "sourceRequest"), "Request-URI"));
            json_t *sr = json_object_get(t, "sourceResponse");
            json_t *tr = json_array_get(json_object_get(t, "targetResponses"), 0);
            if (!cid || sscanf(cid, "rtconn-%d.%d", &c, &idx) != 2 || !uri ||
                sscanf(uri, "/kt/_doc/c%d_r%d", &c, &r) != 2 || c >= MAXC || r >= MAXR || idx != r) {
                fprintf(stderr, "bad tuple: %s", line);
                bad++;
            } else {
                seen[c][r]++;
                if (!sr || json_integer_value(json_object_get(sr, "Status-Code")) != 200 ||
                    json_integer_value(json_object_get(json_object_get(json_object_get(sr, "payload"),
                                                                       "inlinedJsonBody"), "r")) != r) {
                    fprintf(stderr, "tuple %s: source response missing or not its own\n", cid);
                    bad++;
                }
                if (!tr || json_integer_value(json_object_get(tr, "Status-Code")) != 404) {
                    fprintf(stderr, "tuple %s: no target response\n", cid);
                    bad++;
                }
            }
            n++;
            json_decref(t);
        }
        free(line);
        if (f)
            fclose(f);
    }
    closedir(d);
    for (int c = 0; c < nconn; c++)
        for (int r = 0; r < nreq; r++)
            if (seen[c][r] != 1) {
                fprintf(stderr, "tuple rtconn-%02d.%d seen %d times\n", c, r, seen[c][r]);
                bad++;
            }
    if (quiet >= 0 && seen[quiet][0] != 1) {
        fprintf(stderr, "quiet connection's tuple seen %d times\n", seen[quiet][0]);
        bad++;
    }
    if (n != nconn * nreq + (quiet >= 0))
        bad++;
    return bad;
}

static int test_replay_kafka_single(void)
{
    if (setup("single"))
        return 1;
    enum { NC = 4, NR = 12 };
    rd_kafka_t *rk = producer();
    SM_CHECK(rk);
    pid_t rp = start_replayer("one", "g-single", NULL, NULL);
    static const uint8_t poison[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 'p', 'o', 'i', 's', 'o', 'n' };
    for (int r = 0; r < NR; r++) {
        for (int c = 0; c < NC; c++)
            SM_CHECK(produce_req(rk, c, r, r == NR - 1) == 0);
        if (r == 0)     /* a quiet keep-alive connection: one request, no close */
            SM_CHECK(produce_req(rk, NC, 0, false) == 0);
        if (r == 4) {   /* a poison record in connection 0's partition, mid-stream */
            char conn[32];
            conn_name(conn, sizeof(conn), 0);
            SM_CHECK(produce_raw(rk, conn, poison, sizeof(poison)) == 0);
        }
    }
    SM_CHECK_EQ_INT(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    int d = wait_distinct(NC * NR + 1, 30000);
    SM_CHECK_EQ_INT(d, NC * NR + 1);
    /* while it runs, commits reach the end of every partition: the poison
     * record does not stall its partition, and the quiet connection's last
     * response ends after --source-response-wait, so it does not pin either */
    int with_data = 0, bad = -1;
    for (uint64_t dl = sm_now_ms() + 20000; bad && sm_now_ms() < dl;) {
        sm_sleep_ms(250);
        bad = check_committed("g-single", &with_data);
    }
    SM_CHECK_EQ_INT(bad, 0);
    SM_CHECK(with_data >= 1);
    SM_CHECK_EQ_INT(stop_replayer(rp), 0);
    int counts[MAXC][MAXR], total;
    count_target(counts, &total);
    SM_CHECK_EQ_INT(total, NC * NR + 1);               /* no duplicates in a clean run */
    char tuples[300], dlq[300];
    snprintf(tuples, sizeof(tuples), "%s/tuples/one", work);
    SM_CHECK_EQ_INT(check_tuples(tuples, NC, NR, NC), 0);
    /* the poison record: dead-lettered with its coordinates, base64 intact */
    snprintf(dlq, sizeof(dlq), "%s/one.dead", work);
    char b64[64];
    sm_base64_encode(poison, sizeof(poison), b64);
    char needle[100];
    snprintf(needle, sizeof(needle), "|%s", b64);
    SM_CHECK(file_contains(dlq, "topic=rt partition="));
    SM_CHECK(file_contains(dlq, needle));
    json_t *s = load_summary("one");
    SM_CHECK(s);
    SM_CHECK_EQ_INT(jint(s, "dead_letters"), 1);
    SM_CHECK_EQ_INT(jint(s, "kafka_malformed"), 1);
    SM_CHECK_EQ_INT(jint(s, "kafka_records"), NC * NR + 2);
    SM_CHECK_EQ_INT(jint(s, "duplicates"), 0);
    SM_CHECK_EQ_INT(jint(s, "tuples"), NC * NR + 1);
    SM_CHECK_EQ_INT(jint(s, "source_waits_expired"), 0);   /* the accumulator ended it, with its bytes */
    SM_CHECK(jint(s, "commits") >= 1);
    json_decref(s);
    SM_CHECK_EQ_INT(check_committed("g-single", &with_data), 0);
    cleanup();
    return 0;
}

static bool log_has(const char *tag, const char *needle)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/%s.log", work, tag);
    return file_contains(p, needle);
}

static int test_replay_kafka_group(void)
{
    if (setup("group"))
        return 1;
    enum { NC = 8, NR = 40, HALF = 20 };
    rd_kafka_t *rk = producer();
    SM_CHECK(rk);
    pid_t a = start_replayer("a", "g-group", NULL, NULL);
    uint64_t dl = sm_now_ms() + 20000;
    while (!log_has("a", "assigned") && sm_now_ms() < dl)
        sm_sleep_ms(100);
    pid_t b = start_replayer("b", "g-group", NULL, NULL);
    /* the rebalance that brings b in waits for a's next poll and heartbeat:
     * on a loaded machine (CI runs two builds' tests side by side) it can take
     * tens of seconds, so b gets its own, generous deadline */
    dl = sm_now_ms() + 60000;
    while (!(log_has("b", "assigned") && log_has("a", "revoked")) && sm_now_ms() < dl)
        sm_sleep_ms(100);
    SM_CHECK(log_has("b", "assigned"));
    sm_sleep_ms(1000);
    for (int r = 0; r < HALF; r++) {
        for (int c = 0; c < NC; c++)
            SM_CHECK(produce_req(rk, c, r, false) == 0);
        rd_kafka_poll(rk, 0);
        sm_sleep_ms(30);
    }
    SM_CHECK_EQ_INT(rd_kafka_flush(rk, 10000), 0);
    /* both are replaying; kill one without warning in the middle */
    SM_CHECK(wait_distinct(NC * HALF / 2, 60000) >= NC * HALF / 2);
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    for (int r = HALF; r < NR; r++)
        for (int c = 0; c < NC; c++)
            SM_CHECK(produce_req(rk, c, r, r == NR - 1) == 0);
    SM_CHECK_EQ_INT(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    int d = wait_distinct(NC * NR, 90000);
    SM_CHECK_EQ_INT(d, NC * NR);                       /* nothing lost */
    sm_sleep_ms(1500);
    SM_CHECK_EQ_INT(stop_replayer(b), 0);
    int counts[MAXC][MAXR], total;
    count_target(counts, &total);
    int dups = total - NC * NR;
    json_t *s = load_summary("b");
    SM_CHECK(s);
    fprintf(stderr, "group: %d requests at the target for %d distinct; survivor counted %lld duplicates, "
            "revoked %s\n", total, NC * NR, jint(s, "duplicates"), log_has("b", "revoked") ? "yes" : "no");
    SM_CHECK(dups >= 0);
    SM_CHECK(dups <= NC * NR);                         /* bounded: at most one replay too many each */
    for (int c = 0; c < NC; c++)
        for (int r = 0; r < NR; r++)
            SM_CHECK(counts[c][r] >= 1 && counts[c][r] <= 3);
    SM_CHECK(jint(s, "duplicates") <= dups);           /* what it counted did reach the target twice */
    SM_CHECK_EQ_INT(jint(s, "dead_letters"), 0);
    json_decref(s);
    int with_data = 0;
    SM_CHECK_EQ_INT(check_committed("g-group", &with_data), 0);
    SM_CHECK(with_data >= 2);
    cleanup();
    return 0;
}

/* The dead-letter file cannot be written (/dev/full: every write fails with
 * ENOSPC): the poison record's offset is never committed, so a restart meets
 * it again; everything else is replayed and the other partitions commit to
 * their end. Before, the record was counted dead-lettered and committed past:
 * lost. */
static int test_replay_kafka_dlq_unwritable(void)
{
    if (setup("dlqfull"))
        return 1;
    enum { NC = 2, NR = 4 };
    rd_kafka_t *rk = producer();
    SM_CHECK(rk);
    pid_t rp = start_replayer("dq", "g-dlq", "--dead-letter-file", "/dev/full");
    static const uint8_t poison[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 'b', 'a', 'd' };
    for (int r = 0; r < NR; r++) {
        for (int c = 0; c < NC; c++)
            SM_CHECK(produce_req(rk, c, r, r == NR - 1) == 0);
        if (r == 1) {
            char conn[32];
            conn_name(conn, sizeof(conn), 0);
            SM_CHECK(produce_raw(rk, conn, poison, sizeof(poison)) == 0);
        }
    }
    SM_CHECK_EQ_INT(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    SM_CHECK_EQ_INT(wait_distinct(NC * NR, 30000), NC * NR);
    sm_sleep_ms(2500);   /* several commit intervals (500 ms) */
    int with_data = 0;
    SM_CHECK_EQ_INT(check_committed("g-dlq", &with_data), 1);   /* the poison's partition only */
    SM_CHECK(with_data >= 1);
    SM_CHECK_EQ_INT(stop_replayer(rp), 1);
    SM_CHECK(log_has("dq", "stays uncommitted"));
    json_t *s = load_summary("dq");
    SM_CHECK(s);
    SM_CHECK_EQ_INT(jint(s, "dead_letters"), 0);
    SM_CHECK_EQ_INT(jint(s, "dead_letter_errors"), 1);
    SM_CHECK_EQ_INT(jint(s, "tuples"), NC * NR);
    json_decref(s);
    SM_CHECK_EQ_INT(check_committed("g-dlq", &with_data), 1);   /* the shutdown commit too */
    cleanup();
    return 0;
}

static int test_replay_kafka_stall(void)
{
    if (setup("stall"))
        return 1;
    enum { NC = 4, NR = 12 };
    /* connection 0's first request is answered after 7 s; its other 11 queue
     * behind it (per-connection order) and fill --max-pending 6 */
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' "
             "-d '[{\"path\":\"^/kt/_doc/c0_r0$\",\"latency_ms\":7000,\"count\":1}]' "
             "http://127.0.0.1:%d/_standin/faults", target_port);
    SM_CHECK_EQ_INT(system(cmd), 0);
    rd_kafka_t *rk = producer();
    SM_CHECK(rk);
    static const char *args[] = { "--max-pending", "6", "--kafka-property", "max.poll.interval.ms=2500",
                                  "--kafka-property", "session.timeout.ms=2500", NULL };
    memcpy(more_args, args, sizeof(args));
    pid_t rp = start_replayer("st", "g-stall", NULL, NULL);
    more_args[0] = NULL;
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            SM_CHECK(produce_req(rk, c, r, r == NR - 1) == 0);
    SM_CHECK_EQ_INT(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    SM_CHECK_EQ_INT(wait_distinct(NC * NR, 40000), NC * NR);
    sm_sleep_ms(1500);   /* commits, and time for a late rebalance to show */
    SM_CHECK_EQ_INT(stop_replayer(rp), 0);
    int counts[MAXC][MAXR], total;
    count_target(counts, &total);
    SM_CHECK_EQ_INT(total, NC * NR);                   /* exactly once: no rebalance redelivered */
    json_t *s = load_summary("st");
    SM_CHECK(s);
    SM_CHECK(jint(s, "kafka_pauses") >= 1);            /* the engine filled up and the input paused */
    /* one assignment of the 4 partitions (leaving the group and rejoining
     * would assign them again; the close at SIGTERM revokes them once) */
    SM_CHECK_EQ_INT(jint(s, "kafka_partitions_assigned"), 4);
    SM_CHECK_EQ_INT(jint(s, "kafka_partitions_revoked"), 4);
    SM_CHECK_EQ_INT(jint(s, "duplicates"), 0);
    SM_CHECK_EQ_INT(jint(s, "tuples"), NC * NR);
    json_decref(s);
    SM_CHECK(!log_has("st", "maximum poll interval"));
    int with_data = 0;
    SM_CHECK_EQ_INT(check_committed("g-stall", &with_data), 0);
    cleanup();
    return 0;
}

SM_TEST_MAIN(SM_TC(test_replay_kafka_single), SM_TC(test_replay_kafka_group), SM_TC(test_replay_kafka_dlq_unwritable),
             SM_TC(test_replay_kafka_stall))
