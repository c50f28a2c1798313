/* sm-kafka-standin: a Kafka broker for tests, built on librdkafka's mock
 * cluster. Tests, kcat and the tools talk real Kafka protocol over TCP to it.
 *
 *   sm-kafka-standin [--brokers N] [--topic NAME[:PARTITIONS]]... [--bootstrap-file F]
 *                    [--exit-on-eof] [--die-with-parent]
 *
 * Prints "bootstrap=<host:port,...>" on stdout once listening (and writes the
 * list to --bootstrap-file, atomically). Serves until SIGTERM/SIGINT (or stdin
 * EOF with --exit-on-eof). Outage control:
 *   SIGUSR1: all brokers down   SIGUSR2: all brokers up
 *   stdin lines: "down", "up", "down <id>", "up <id>", "rtt <id|-1> <ms>",
 *                "topic NAME[:PARTITIONS]", "quit"; each is answered on stdout
 *                with "ok <command>" or "error <reason>".
 * See docs/standins-kafka.md. */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define MAX_TOPICS 64

struct topic_spec { char name[256]; int partitions; };

static void usage(FILE *f)
{
    fputs("usage: sm-kafka-standin [--brokers N] [--topic NAME[:PARTITIONS]]... [--bootstrap-file F]\n"
          "                        [--exit-on-eof] [--die-with-parent]\n"
          "Kafka stand-in for tests on librdkafka's mock cluster. Prints bootstrap=<hosts>.\n"
          "Control: SIGUSR1 all brokers down, SIGUSR2 all up; stdin lines:\n"
          "  down | up | down ID | up ID | rtt ID|-1 MS | topic NAME[:PARTS] | quit\n",
          f);
}

static bool parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_topic(const char *arg, struct topic_spec *t)
{
    const char *colon = strrchr(arg, ':');
    size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
    if (!n || n >= sizeof(t->name))
        return false;
    memcpy(t->name, arg, n);
    t->name[n] = 0;
    t->partitions = 1;
    if (colon) {
        long p;
        if (!parse_int(colon + 1, 1, 10000, &p))
            return false;
        t->partitions = (int)p;
    }
    return true;
}

static int nbrokers = 1;

static int create_topic(rd_kafka_mock_cluster_t *mc, const struct topic_spec *t)
{
    int repl = nbrokers < 3 ? nbrokers : 3;
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, t->name, t->partitions, repl);
    if (e) {
        fprintf(stderr, "sm-kafka-standin: topic %s: %s\n", t->name, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Next whitespace-separated word of *p (NUL-terminated in place), or NULL. */
static char *word(char **p)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    if (!*s)
        return NULL;
    char *w = s;
    while (*s && *s != ' ' && *s != '\t' && *s != '\r')
        s++;
    if (*s)
        *s++ = 0;
    *p = s;
    return w;
}

/* Runs one control line; returns 1 to quit. */
static int control(rd_kafka_mock_cluster_t *mc, char *line)
{
    char *p = line;
    char *cmd = word(&p);
    char *a1 = cmd ? word(&p) : NULL;
    char *a2 = a1 ? word(&p) : NULL;
    if (!cmd)
        return 0;
    long id = -1;
    if (!strcmp(cmd, "quit") || !strcmp(cmd, "exit")) {
        reply("ok %s", cmd);
        return 1;
    }
    if (!strcmp(cmd, "down") || !strcmp(cmd, "up")) {
        if (a1 && !parse_int(a1, -1, nbrokers, &id)) {
            reply("error bad broker id %s", a1);
            return 0;
        }
        rd_kafka_resp_err_t e = !strcmp(cmd, "down") ? rd_kafka_mock_broker_set_down(mc, (int32_t)id)
                                                      : rd_kafka_mock_broker_set_up(mc, (int32_t)id);
        if (e)
            reply("error %s", rd_kafka_err2str(e));
        else
            reply("ok %s", cmd);
        return 0;
    }
    if (!strcmp(cmd, "rtt")) {
        long ms;
        if (!a1 || !a2 || !parse_int(a1, -1, nbrokers, &id) || !parse_int(a2, 0, 600000, &ms)) {
            reply("error %s", "usage: rtt ID|-1 MS");
            return 0;
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_rtt(mc, (int32_t)id, (int)ms);
        if (e)
            reply("error %s", rd_kafka_err2str(e));
        else
            reply("ok %s", cmd);
        return 0;
    }
    if (!strcmp(cmd, "topic")) {
        struct topic_spec t;
        if (!a1 || !parse_topic(a1, &t)) {
            reply("error %s", "usage: topic NAME[:PARTITIONS]");
            return 0;
        }
        if (create_topic(mc, &t))
            reply("error cannot create topic %s", t.name);
        else
            reply("ok %s", cmd);
        return 0;
    }
    reply("error unknown command %s", cmd);
    return 0;
}

static int write_bootstrap_file(const char *path, const char *bootstraps)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", bootstraps);
    if (fclose(f) || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct topic_spec topics[MAX_TOPICS];
    int ntopics = 0;
    const char *bootstrap_file = NULL;
    bool exit_on_eof = false, die_with_parent = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--brokers") && v) {
            long n;
            if (!parse_int(v, 1, 32, &n)) {
                fprintf(stderr, "sm-kafka-standin: --brokers: '%s' is not 1..32\n", v);
                return 2;
            }
            nbrokers = (int)n;
            i++;
        } else if (!strcmp(a, "--topic") && v) {
            if (ntopics == MAX_TOPICS || !parse_topic(v, &topics[ntopics])) {
                fprintf(stderr, "sm-kafka-standin: --topic: bad '%s' (NAME[:PARTITIONS])\n", v);
                return 2;
            }
            ntopics++;
            i++;
        } else if (!strcmp(a, "--bootstrap-file") && v) {
            bootstrap_file = v;
            i++;
        } else if (!strcmp(a, "--exit-on-eof")) {
            exit_on_eof = true;
        } else if (!strcmp(a, "--die-with-parent")) {
            die_with_parent = true;
        } else {
            fprintf(stderr, "sm-kafka-standin: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (die_with_parent)
        prctl(PR_SET_PDEATHSIG, SIGTERM);

    /* Block the control signals before librdkafka starts threads, so that
     * every thread inherits the mask and only the signalfd sees them. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("sm-kafka-standin: signalfd");
        return 1;
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "client.id", "sm-kafka-standin", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "sm-kafka-standin: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        fprintf(stderr, "sm-kafka-standin: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < ntopics; i++)
        if (create_topic(mc, &topics[i]))
            rc = 1;
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (!rc && bootstrap_file && write_bootstrap_file(bootstrap_file, bootstraps)) {
        fprintf(stderr, "sm-kafka-standin: cannot write %s: %s\n", bootstrap_file, strerror(errno));
        rc = 1;
    }
    if (rc) {
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return rc;
    }
    printf("bootstrap=%s\n", bootstraps);
    fflush(stdout);
    fprintf(stderr, "sm-kafka-standin: %d broker(s) at %s\n", nbrokers, bootstraps);

    char line[1024];
    size_t ll = 0;
    bool stdin_open = true;
    bool quit = false;
    while (!quit) {
        struct pollfd pf[2] = { { sfd, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
        int n = poll(pf, stdin_open ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("sm-kafka-standin: poll");
            break;
        }
        if (pf[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGUSR1) {
                    rd_kafka_mock_broker_set_down(mc, -1);
                    fprintf(stderr, "sm-kafka-standin: all brokers down\n");
                } else if (si.ssi_signo == SIGUSR2) {
                    rd_kafka_mock_broker_set_up(mc, -1);
                    fprintf(stderr, "sm-kafka-standin: all brokers up\n");
                } else {
                    quit = true;
                }
            }
        }
        if (stdin_open && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[512];
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                stdin_open = false;
                if (exit_on_eof)
                    quit = true;
                continue;
            }
            for (ssize_t i = 0; i < r && !quit; i++) {
                if (buf[i] == '\n') {
                    line[ll] = 0;
                    quit = control(mc, line) == 1;
                    ll = 0;
                } else if (ll + 1 < sizeof(line)) {
                    line[ll++] = buf[i];
                }
            }
        }
    }
    fprintf(stderr, "sm-kafka-standin: shutting down\n");
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    if (bootstrap_file)
        unlink(bootstrap_file);
    return 0;
}
