#include "console.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Tools are looked up: $SM_TOOLS_DIR/<tool>; next to this executable; in the
 * build tree layout (<build>/console/searchmig -> <build>/<dir>/<tool>); PATH. */
const char *console_tool_path(const char *tool)
{
    static char path[4][PATH_MAX];
    static int k;
    k = (k + 1) & 3;
    char *out = path[k];
    const char *env = getenv("SM_TOOLS_DIR");
    if (env) {
        if (snprintf(out, PATH_MAX, "%s/%s", env, tool) < PATH_MAX && access(out, X_OK) == 0)
            return out;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            if (snprintf(out, PATH_MAX, "%s/%s", self, tool) < PATH_MAX && access(out, X_OK) == 0)
                return out;
            const char *sub = strrchr(tool, '-') ? strrchr(tool, '-') + 1 : tool;
            if (snprintf(out, PATH_MAX, "%s/../%s/%s", self, sub, tool) < PATH_MAX && access(out, X_OK) == 0)
                return out;
        }
    }
    return tool;   /* execvp searches PATH */
}

int console_run(const char *tool, char *const argv[])
{
    const char *path = console_tool_path(tool);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp(path, argv);
        fprintf(stderr, "searchmig: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int console_start(const char *tool, char *const argv[], const char *logfile, const char *pidfile,
                  char *err, size_t errlen)
{
    long old;
    if (console_running(pidfile, &old))
        return sm_errf(err, errlen, SM_EINVAL, "%s is already running (pid %ld, %s)", tool, old, pidfile);
    const char *path = console_tool_path(tool);
    pid_t pid = fork();
    if (pid < 0)
        return sm_errf(err, errlen, SM_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
        setsid();
        int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        execvp(path, argv);
        fprintf(stderr, "searchmig: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    FILE *f = fopen(pidfile, "w");
    if (!f)
        return sm_errf(err, errlen, SM_EIO, "%s: %s", pidfile, strerror(errno));
    fprintf(f, "%ld\n", (long)pid);
    fclose(f);
    return SM_OK;
}

bool console_running(const char *pidfile, long *pid)
{
    FILE *f = fopen(pidfile, "r");
    if (!f)
        return false;
    long p = 0;
    int n = fscanf(f, "%ld", &p);
    fclose(f);
    if (n != 1 || p <= 0)
        return false;
    *pid = p;
    /* reap it if it is our child that ended */
    int st;
    if (waitpid((pid_t)p, &st, WNOHANG) == (pid_t)p)
        return false;
    return kill((pid_t)p, 0) == 0;
}

int console_stop(const char *pidfile, uint64_t grace_ms, char *err, size_t errlen)
{
    long pid;
    if (!console_running(pidfile, &pid))
        return sm_errf(err, errlen, SM_ENOTFOUND, "not running (%s)", pidfile);
    kill((pid_t)pid, SIGTERM);
    uint64_t end = sm_now_ms() + grace_ms;
    while (sm_now_ms() < end) {
        if (kill((pid_t)pid, 0) != 0)
            break;
        int st;
        if (waitpid((pid_t)pid, &st, WNOHANG) == (pid_t)pid)
            break;
        sm_sleep_ms(50);
    }
    if (kill((pid_t)pid, 0) == 0)
        kill((pid_t)pid, SIGKILL);
    unlink(pidfile);
    return SM_OK;
}

void console_endpoint_args(const struct sm_http_opts *o, const char *prefix, struct sm_strlist *args)
{
    char flag[64];
#define ADD_STR(name, val) do { if (val) { snprintf(flag, sizeof(flag), "--%s%s", prefix, name); \
        sm_strlist_push(args, flag); sm_strlist_push(args, val); } } while (0)
    ADD_STR("", o->url);
    ADD_STR("-ca-cert", o->ca_cert);
    ADD_STR("-client-cert", o->client_cert);
    ADD_STR("-client-key", o->client_key);
    ADD_STR("-username", o->username);
    ADD_STR("-password-file", o->password_file);
    ADD_STR("-aws-region", o->aws_region);
    ADD_STR("-aws-service", o->aws_service);
    ADD_STR("-aws-profile", o->aws_profile);
#undef ADD_STR
    if (o->insecure) {
        snprintf(flag, sizeof(flag), "--%s-insecure", prefix);
        sm_strlist_push(args, flag);
    }
    if (o->password) {
        /* never on a command line: children read SM_<PREFIX>_PASSWORD */
        char env[64];
        snprintf(env, sizeof(env), "SM_%s_PASSWORD", !strcmp(prefix, "source") ? "SOURCE" : "TARGET");
        setenv(env, o->password, 1);
    }
}

const char *console_path(const struct console_cfg *cfg, const char *name)
{
    static char buf[4][PATH_MAX];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", cfg->work_dir, name);
    return buf[k];
}

void console_step(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool tty = isatty(1);
    printf(tty ? "\n\033[1m== " : "\n== ");
    vprintf(fmt, ap);
    printf(tty ? " ==\033[0m\n" : " ==\n");
    va_end(ap);
    fflush(stdout);
}

void console_next(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("Next: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}
