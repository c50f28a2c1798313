/* Operations (agent/ops/): systemd notifications and the privilege drop.
 * The metrics/health endpoint is common code now (tests/unit/test_metrics.c). */
#include "ops/notify.h"
#include "ops/privs.h"
#include "source/source.h"

#include <sm/err.h>

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sm_test.h"

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

SM_TEST_MAIN(SM_TC(test_notify), SM_TC(test_privilege_drop))
