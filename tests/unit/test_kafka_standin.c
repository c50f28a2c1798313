/* Integration: the Kafka stand-in (sm-kafka-standin, librdkafka mock cluster
 * in its own process) with searchmig's producer and consumer helpers over
 * TCP, kcat against it, and a broker outage in the middle.
 *
 * argv[1]: path of sm-kafka-standin. */
#include <sm/err.h>
#include <sm/kafka.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sm_test.h"

#define NKEYS 3
#define PHASE1 30     /* records per key before the outage */
#define PHASE2 20     /* records per key produced while all brokers are down (stdin "down") */
#define PHASE3 5      /* records per key produced while down by SIGUSR1 */
#define TOPIC "sm-test-topic"

static const char *standin_path;
static pid_t standin_pid = -1;
static int standin_in = -1, standin_out = -1;
static char bootstrap[1024];
static char bootstrap_file[64];

/* Reads one line from the stand-in's stdout (timeout ms). */
static int read_line(char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    uint64_t deadline = sm_now_ms() + (uint64_t)timeout_ms;
    while (n + 1 < cap) {
        uint64_t now = sm_now_ms();
        if (now >= deadline)
            return -1;
        struct pollfd pf = { standin_out, POLLIN, 0 };
        if (poll(&pf, 1, (int)(deadline - now)) <= 0)
            continue;
        char c;
        ssize_t r = read(standin_out, &c, 1);
        if (r <= 0)
            return -1;
        if (c == '\n') {
            buf[n] = 0;
            return 0;
        }
        buf[n++] = c;
    }
    return -1;
}

static int command(const char *cmd, const char *expect)
{
    char line[256];
    size_t n = strlen(cmd);
    if (write(standin_in, cmd, n) != (ssize_t)n || write(standin_in, "\n", 1) != 1)
        return -1;
    if (read_line(line, sizeof(line), 10000))
        return -1;
    if (strcmp(line, expect)) {
        fprintf(stderr, "stand-in replied '%s' to '%s'\n", line, cmd);
        return -1;
    }
    return 0;
}

static int start_standin(void)
{
    int in[2], out[2];
    snprintf(bootstrap_file, sizeof(bootstrap_file), "/tmp/sm_test_bootstrap.%d", (int)getpid());
    if (pipe(in) || pipe(out))
        return -1;
    standin_pid = fork();
    if (standin_pid < 0)
        return -1;
    if (standin_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execl(standin_path, "sm-kafka-standin", "--brokers", "3", "--topic", TOPIC ":4",
              "--bootstrap-file", bootstrap_file, "--exit-on-eof", "--die-with-parent", (char *)NULL);
        perror("exec sm-kafka-standin");
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    standin_in = in[1];
    standin_out = out[0];
    char line[1024];
    if (read_line(line, sizeof(line), 20000) || strncmp(line, "bootstrap=", 10)) {
        fprintf(stderr, "stand-in did not print its bootstrap address\n");
        return -1;
    }
    snprintf(bootstrap, sizeof(bootstrap), "%s", line + 10);
    /* the same list is in --bootstrap-file */
    FILE *f = fopen(bootstrap_file, "r");
    char fl[1024] = "";
    if (!f || !fgets(fl, sizeof(fl), f)) {
        fprintf(stderr, "no bootstrap file\n");
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    fl[strcspn(fl, "\n")] = 0;
    if (strcmp(fl, bootstrap)) {
        fprintf(stderr, "bootstrap file says '%s'\n", fl);
        return -1;
    }
    return 0;
}

static int stop_standin(void)
{
    close(standin_in);   /* --exit-on-eof */
    int status = 0;
    for (int i = 0; i < 200; i++) {
        pid_t p = waitpid(standin_pid, &status, WNOHANG);
        if (p == standin_pid) {
            if (access(bootstrap_file, F_OK) == 0) {
                fprintf(stderr, "bootstrap file left behind\n");
                return -1;
            }
            return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
        }
        sm_sleep_ms(50);
    }
    kill(standin_pid, SIGKILL);
    waitpid(standin_pid, &status, 0);
    fprintf(stderr, "stand-in did not exit on stdin EOF\n");
    return -1;
}

struct dr_state { int ok, failed; };

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct dr_state *st = opaque;
    if (m->err) {
        st->failed++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        st->ok++;
    }
}

static int produce_range(rd_kafka_t *rk, int from, int to)
{
    for (int seq = from; seq < to; seq++) {
        for (int k = 0; k < NKEYS; k++) {
            char conn[64];
            snprintf(conn, sizeof(conn), "0242acfffe12000b-conn-%d", k);
            TrafficStream *ts = sm_ts_new(conn, "standin-test-node");
            char body[64];
            int bl = snprintf(body, sizeof(body), "GET /%d HTTP/1.1\r\n\r\n", seq);
            sm_ts_add(ts, SM_TS_READ, (int64_t)seq * 1000000, body, (size_t)bl);
            sm_ts_add_eom(ts, (int64_t)seq * 1000000, bl - 2, bl);
            sm_ts_set_index(ts, seq + 1, false);
            uint8_t *enc;
            size_t el;
            if (sm_ts_encode_alloc(ts, &enc, &el))
                return -1;
            char err[256];
            int rc;
            while ((rc = sm_kafka_produce(rk, TOPIC, conn, strlen(conn), enc, el, NULL, err, sizeof(err))) ==
                   SM_EFULL)
                rd_kafka_poll(rk, 100);
            sm_free(enc);
            sm_ts_free(ts);
            if (rc) {
                fprintf(stderr, "%s\n", err);
                return -1;
            }
        }
    }
    return 0;
}

struct seen { int next[NKEYS]; int partition[NKEYS]; int total; int dup_or_gap; };

/* Consumes until every key reached want records (or 60 s). */
static int consume_until(rd_kafka_t *c, struct seen *s, int want)
{
    uint64_t deadline = sm_now_ms() + 60000;
    for (;;) {
        bool done = true;
        for (int k = 0; k < NKEYS; k++)
            if (s->next[k] < want)
                done = false;
        if (done)
            return 0;
        if (sm_now_ms() > deadline) {
            fprintf(stderr, "consumer: timed out; have %d %d %d\n", s->next[0], s->next[1], s->next[2]);
            return -1;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "consumer: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        TrafficStream *ts = NULL;
        char err[256];
        int rc = sm_ts_decode(m->payload, m->len, &ts, err, sizeof(err));
        if (rc) {
            fprintf(stderr, "consumer: %s\n", err);
            rd_kafka_message_destroy(m);
            return -1;
        }
        int k = -1;
        if (ts->connectionid && sscanf(ts->connectionid, "0242acfffe12000b-conn-%d", &k) != 1)
            k = -1;
        bool keymatch = m->key_len == strlen(ts->connectionid) && !memcmp(m->key, ts->connectionid, m->key_len);
        int32_t idx;
        bool last;
        sm_ts_index(ts, &idx, &last);
        if (k < 0 || k >= NKEYS || !keymatch) {
            fprintf(stderr, "consumer: unexpected record key\n");
            s->dup_or_gap++;
        } else {
            if (s->partition[k] < 0)
                s->partition[k] = m->partition;
            if (s->partition[k] != m->partition) {
                fprintf(stderr, "key %d in two partitions\n", k);
                s->dup_or_gap++;
            }
            if (idx != s->next[k] + 1) {
                fprintf(stderr, "key %d: got index %d, expected %d\n", k, idx, s->next[k] + 1);
                s->dup_or_gap++;
            } else {
                s->next[k]++;
            }
        }
        s->total++;
        rd_kafka_commit_message(c, m, 1);
        sm_ts_free(ts);
        rd_kafka_message_destroy(m);
    }
}

static int test_standin_produce_consume_outage(void)
{
    if (start_standin())
        return 1;
    fprintf(stderr, "stand-in at %s\n", bootstrap);

    /* kcat talks to it too */
    if (system("kcat -V >/dev/null 2>&1") == 0) {
        char cmd[1400];
        snprintf(cmd, sizeof(cmd), "kcat -b '%s' -L -t " TOPIC " -m 15 2>&1", bootstrap);
        FILE *p = popen(cmd, "r");
        SM_CHECK(p);
        char out[8192];
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = 0;
        pclose(p);
        SM_CHECK(strstr(out, "topic \"" TOPIC "\" with 4 partitions"));
        SM_CHECK(strstr(out, " 3 brokers:"));
    } else {
        fprintf(stderr, "note: kcat not installed; skipped the kcat -L check\n");
    }

    char err[512];
    struct sm_kafka_opts ko = { 0 };
    ko.brokers = bootstrap;
    ko.group_id = "sm-test-group";
    sm_strlist_push(&ko.props, "message.timeout.ms=120000");
    sm_strlist_push(&ko.props, "reconnect.backoff.max.ms=500");   /* quick return after outages */
    rd_kafka_conf_t *pc = sm_kafka_producer_conf_new(&ko, err, sizeof(err));
    SM_CHECK(pc);
    struct dr_state dr = { 0, 0 };
    rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
    rd_kafka_conf_set_opaque(pc, &dr);
    rd_kafka_t *prod = sm_kafka_producer_new(pc, err, sizeof(err));
    SM_CHECK(prod);

    SM_CHECK_EQ_INT(produce_range(prod, 0, PHASE1), 0);
    SM_CHECK_EQ_INT(rd_kafka_flush(prod, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    SM_CHECK_EQ_INT(dr.ok, NKEYS * PHASE1);
    SM_CHECK_EQ_INT(dr.failed, 0);

    rd_kafka_conf_t *cc = sm_kafka_consumer_conf_new(&ko, err, sizeof(err));
    SM_CHECK(cc);
    rd_kafka_t *cons = sm_kafka_consumer_new(cc, TOPIC, err, sizeof(err));
    SM_CHECK(cons);
    struct seen s = { { 0 }, { -1, -1, -1 }, 0, 0 };
    SM_CHECK_EQ_INT(consume_until(cons, &s, PHASE1), 0);
    SM_CHECK_EQ_INT(s.dup_or_gap, 0);
    SM_CHECK_EQ_INT(s.total, NKEYS * PHASE1);

    /* outage: every broker down; records queue in the producer */
    SM_CHECK_EQ_INT(command("down", "ok down"), 0);
    SM_CHECK_EQ_INT(produce_range(prod, PHASE1, PHASE1 + PHASE2), 0);
    for (int i = 0; i < 10; i++)
        rd_kafka_poll(prod, 100);
    SM_CHECK_EQ_INT(dr.ok, NKEYS * PHASE1);   /* nothing can be delivered while down */
    SM_CHECK_EQ_INT(dr.failed, 0);
    SM_CHECK(rd_kafka_outq_len(prod) >= NKEYS * PHASE2);
    SM_CHECK_EQ_INT(command("up", "ok up"), 0);
    SM_CHECK_EQ_INT(rd_kafka_flush(prod, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
    SM_CHECK_EQ_INT(dr.ok, NKEYS * (PHASE1 + PHASE2));
    SM_CHECK_EQ_INT(dr.failed, 0);

    /* the same by signal; a command round trip after kill() guarantees the
     * stand-in handled the signal (it reads its signalfd before stdin) */
    SM_CHECK_EQ_INT(kill(standin_pid, SIGUSR1), 0);
    SM_CHECK_EQ_INT(command("rtt -1 0", "ok rtt"), 0);
    SM_CHECK_EQ_INT(produce_range(prod, PHASE1 + PHASE2, PHASE1 + PHASE2 + PHASE3), 0);
    for (int i = 0; i < 5; i++)
        rd_kafka_poll(prod, 100);
    SM_CHECK_EQ_INT(dr.ok, NKEYS * (PHASE1 + PHASE2));
    SM_CHECK_EQ_INT(kill(standin_pid, SIGUSR2), 0);
    SM_CHECK_EQ_INT(command("rtt -1 0", "ok rtt"), 0);
    SM_CHECK_EQ_INT(rd_kafka_flush(prod, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
    SM_CHECK_EQ_INT(dr.ok, NKEYS * (PHASE1 + PHASE2 + PHASE3));
    SM_CHECK_EQ_INT(dr.failed, 0);

    /* all records, once each, in order per key (the consumer may need to
     * reconnect after the outages) */
    SM_CHECK_EQ_INT(consume_until(cons, &s, PHASE1 + PHASE2 + PHASE3), 0);
    /* drain briefly: a duplicate would show up right behind */
    for (int i = 0; i < 5; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 200);
        if (m) {
            if (!m->err) {
                fprintf(stderr, "unexpected extra record at offset %lld\n", (long long)m->offset);
                s.dup_or_gap++;
            }
            rd_kafka_message_destroy(m);
        }
    }
    SM_CHECK_EQ_INT(s.dup_or_gap, 0);
    SM_CHECK_EQ_INT(s.total, NKEYS * (PHASE1 + PHASE2 + PHASE3));

    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    sm_strlist_free(&ko.props);
    SM_CHECK_EQ_INT(command("topic extra:2", "ok topic"), 0);
    SM_CHECK_EQ_INT(command("bogus", "error unknown command bogus"), 0);
    SM_CHECK_EQ_INT(stop_standin(), 0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_kafka_standin PATH-TO-sm-kafka-standin\n");
        return 2;
    }
    standin_path = argv[1];
    if (access(standin_path, X_OK))
        SM_SKIP("%s not built", standin_path);
    signal(SIGPIPE, SIG_IGN);
    static const struct sm_test_case tcs[] = { SM_TC(test_standin_produce_consume_outage) };
    int rc = sm_test_run(tcs, 1, 1, argv);
    if (standin_pid > 0 && waitpid(standin_pid, NULL, WNOHANG) == 0) {
        kill(standin_pid, SIGTERM);
        waitpid(standin_pid, NULL, 0);
    }
    unlink(bootstrap_file);
    return rc;
}
