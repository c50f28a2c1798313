/* Operations (agent/ops/): the metrics/health endpoint served to a real
 * socket, and systemd notifications. */
#include "ops/metrics.h"
#include "ops/notify.h"
#include "ops/privs.h"
#include "source/source.h"

#include <sm/buf.h>
#include <sm/err.h>

#include <arpa/inet.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sm_test.h"

static bool healthy = true;

static void render(void *arg, struct sm_buf *out)
{
    (void)arg;
    agent_metrics_put(out, "searchmig_agent_packets_total", "counter", "Packets captured.", 12345);
}

static bool health(void *arg, char *why, size_t whylen)
{
    (void)arg;
    snprintf(why, whylen, "%s", healthy ? "ok" : "stopping");
    return healthy;
}

static int get(uint16_t port, const char *req, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    send(fd, req, strlen(req), 0);
    size_t len = 0;
    ssize_t r;
    while (len < cap - 1 && (r = recv(fd, resp + len, cap - 1 - len, 0)) > 0)
        len += (size_t)r;
    resp[len] = 0;
    close(fd);
    return 0;
}

static int test_metrics_and_health(void)
{
    char err[256];
    struct agent_metrics *m = agent_metrics_start("127.0.0.1:0", render, health, NULL, err, sizeof(err));
    if (!m)
        SM_SKIP("cannot listen on loopback: %s", err);
    uint16_t port = agent_metrics_port(m);
    SM_CHECK(port != 0);
    char resp[4096];
    SM_CHECK(get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
    SM_CHECK(strstr(resp, "text/plain; version=0.0.4") != NULL);
    SM_CHECK(strstr(resp, "# TYPE searchmig_agent_packets_total counter\nsearchmig_agent_packets_total 12345\n"));
    SM_CHECK(get(port, "GET /health HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 200 OK", 15) && strstr(resp, "\r\n\r\nok\n"));
    healthy = false;
    SM_CHECK(get(port, "GET /health HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 503", 12) && strstr(resp, "stopping"));
    SM_CHECK(get(port, "GET /nope HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 404", 12));
    SM_CHECK(get(port, "POST /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp)) == 0);
    SM_CHECK(!strncmp(resp, "HTTP/1.1 405", 12));
    agent_metrics_stop(m);
    return 0;
}

static int test_bad_listen(void)
{
    char err[256] = "";
    SM_CHECK(agent_metrics_start("nonsense", render, health, NULL, err, sizeof(err)) == NULL);
    SM_CHECK(strstr(err, "nonsense") != NULL);
    return 0;
}

static int test_notify(void)
{
    unsetenv("NOTIFY_SOCKET");
    SM_CHECK_EQ_INT(agent_notify("READY=1"), 0);   /* not under systemd */
    char path[64];
    snprintf(path, sizeof(path), "/tmp/sm_test_notify_%d", (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    SM_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    setenv("NOTIFY_SOCKET", path, 1);
    SM_CHECK_EQ_INT(agent_notify("READY=1\nSTATUS=capturing"), 1);
    char buf[128];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    SM_CHECK(n > 0);
    buf[n] = 0;
    SM_CHECK_EQ_STR(buf, "READY=1\nSTATUS=capturing");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path);
    return 0;
}

/* In a child (the drop is for good): returns its exit status. */
static int drop_in_child(const char *user)
{
    pid_t pid = fork();
    if (pid == 0) {
        char err[256];
        if (agent_privs_drop(AGENT_CAP_NET_RAW, user, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            _exit(10);
        }
        if (agent_privs_effective() != (1ull << CAP_NET_RAW))
            _exit(11);
        if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0)   /* gone from the bounding set */
            _exit(12);
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
            _exit(13);
        if (user && getuid() == 0)
            _exit(14);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static int test_privilege_drop(void)
{
    if (geteuid() != 0 || !(agent_privs_effective() & (1ull << CAP_SETPCAP))) {
        fprintf(stderr, "note: not root: privilege drop not tested\n");
        return 0;
    }
    SM_CHECK_EQ_INT(drop_in_child(NULL), 0);
    SM_CHECK_EQ_INT(drop_in_child("nobody"), 0);
    char err[128];
    SM_CHECK_EQ_INT(agent_privs_drop(0, "no-such-user-sm", err, sizeof(err)), SM_ENOTFOUND);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_metrics_and_health), SM_TC(test_bad_listen), SM_TC(test_notify),
             SM_TC(test_privilege_drop))
