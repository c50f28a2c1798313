/* Test helper: runs sm-kafka-standin (docs/standins-kafka.md) as a child with
 * its stdin/stdout on pipes, reads its bootstrap address and sends control
 * lines ("down", "up", "topic T:N"). Header-only, for the Kafka tests. */
#ifndef SM_TEST_KSTANDIN_H
#define SM_TEST_KSTANDIN_H
#include <sm/util.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct kstandin {
    pid_t pid;
    int in, out;
    char bootstrap[1024];
};

static inline int ks_read_line(struct kstandin *k, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    uint64_t deadline = sm_now_ms() + (uint64_t)timeout_ms;
    while (n + 1 < cap) {
        uint64_t now = sm_now_ms();
        if (now >= deadline)
            return -1;
        struct pollfd pf = { k->out, POLLIN, 0 };
        if (poll(&pf, 1, (int)(deadline - now)) <= 0)
            continue;
        char c;
        if (read(k->out, &c, 1) != 1)
            return -1;
        if (c == '\n') {
            buf[n] = 0;
            return 0;
        }
        buf[n++] = c;
    }
    return -1;
}

/* Sends one control line and waits for its "ok ..." reply. */
static inline int ks_command(struct kstandin *k, const char *cmd)
{
    char line[256];
    size_t n = strlen(cmd);
    if (write(k->in, cmd, n) != (ssize_t)n || write(k->in, "\n", 1) != 1)
        return -1;
    if (ks_read_line(k, line, sizeof(line), 10000) || strncmp(line, "ok", 2)) {
        fprintf(stderr, "stand-in: '%s' answered '%s'\n", cmd, line);
        return -1;
    }
    return 0;
}

/* Starts the stand-in with `brokers` brokers and one topic spec (NAME:N). */
static inline int ks_start(struct kstandin *k, const char *path, const char *brokers, const char *topic)
{
    int in[2], out[2];
    memset(k, 0, sizeof(*k));
    if (pipe(in) || pipe(out))
        return -1;
    k->pid = fork();
    if (k->pid < 0)
        return -1;
    if (k->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execl(path, "sm-kafka-standin", "--brokers", brokers, "--topic", topic, "--exit-on-eof",
              "--die-with-parent", (char *)NULL);
        perror("exec sm-kafka-standin");
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    k->in = in[1];
    k->out = out[0];
    char line[1024];
    if (ks_read_line(k, line, sizeof(line), 20000) || strncmp(line, "bootstrap=", 10)) {
        fprintf(stderr, "stand-in did not print its bootstrap address\n");
        return -1;
    }
    snprintf(k->bootstrap, sizeof(k->bootstrap), "%s", line + 10);
    return 0;
}

static inline void ks_stop(struct kstandin *k)
{
    if (k->pid <= 0)
        return;
    close(k->in);
    close(k->out);
    int status;
    for (int i = 0; i < 100; i++) {
        if (waitpid(k->pid, &status, WNOHANG) == k->pid) {
            k->pid = 0;
            return;
        }
        sm_sleep_ms(50);
    }
    kill(k->pid, SIGKILL);
    waitpid(k->pid, &status, 0);
    k->pid = 0;
}

#endif
