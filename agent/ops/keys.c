/* searchmig-agent keys attach|detach: loads the JSSE key-log agent
 * (packaging/java-keylog) into a running Java node through the JDK attach
 * mechanism, so HTTPS traffic of Elasticsearch/OpenSearch nodes can be
 * decrypted with --tls-keylog without restarting them. */
#include "ops/keys.h"

#include <sm/err.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SM_KEYLOG_JAR_DEFAULT "/usr/share/searchmig/java/searchmig-keylog.jar"

struct keys_cfg {
    int64_t pid;
    char *keylog;
    char *jar;
    char *java;
};

#define OFF(f) offsetof(struct keys_cfg, f)
static const struct sm_opt keys_opts[] = {
    { "pid", SM_OPT_INT, OFF(pid), "0", "process id of the Java node (Elasticsearch/OpenSearch)", NULL, 0, "PID" },
    { "keylog", SM_OPT_STR, OFF(keylog), NULL, "key log file the node writes (NSS format, created with mode 0600); give the same to --tls-keylog", NULL, 0, "FILE" },
    { "jar", SM_OPT_STR, OFF(jar), SM_KEYLOG_JAR_DEFAULT, "the key-log agent jar (searchmig-keylog-boot.jar must sit beside it)", "SM_KEYLOG_JAR", 0, "FILE" },
    { "java", SM_OPT_STR, OFF(java), "java", "java launcher of a JDK (the attach API needs jdk.attach); ideally the node's own", NULL, 0, "PATH" },
    SM_OPT_END
};

int agent_keys_main(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    bool attach = !strcmp(sub, "attach"), detach = !strcmp(sub, "detach");
    struct keys_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sm_cli cli = {
        "searchmig-agent keys", "attach|detach --pid PID [--keylog FILE] [--jar FILE]",
        "attach: load the JSSE key-log agent into a running Java node (no restart) so it\n"
        "writes its TLS session secrets to --keylog; run searchmig-agent with --tls-keylog FILE.\n"
        "detach: stop the node's key logging (the agent stays loaded but inert).\n"
        "Run as the node's user (or root). See docs/tls.md, 'Java nodes', for the security trade-off.",
        keys_opts, false,
    };
    if (!attach && !detach) {
        if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
            sm_opts_help(&cli, stdout);
            return 0;
        }
        fprintf(stderr, "usage: searchmig-agent keys attach|detach --pid PID [--keylog FILE]\n");
        return 2;
    }
    char err[512];
    int rc = sm_opts_parse(&cli, &cfg, argc - 1, argv + 1, NULL, err, sizeof(err));
    if (rc == SM_EEOF) {
        sm_opts_free(keys_opts, &cfg);
        return 0;
    }
    if (!rc && cfg.pid <= 0)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--pid PID is required");
    if (!rc && attach && !cfg.keylog)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--keylog FILE is required for attach");
    if (!rc && access(cfg.jar, R_OK) != 0)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "%s: %s (build it with packaging/java-keylog/build.sh, or --jar)",
                     cfg.jar, strerror(errno));
    if (!rc && kill((pid_t)cfg.pid, 0) != 0 && errno == ESRCH)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "no process %lld", (long long)cfg.pid);
    if (rc) {
        fprintf(stderr, "searchmig-agent keys: %s\n", err);
        sm_opts_free(keys_opts, &cfg);
        return 2;
    }
    char pid[32];
    snprintf(pid, sizeof(pid), "%lld", (long long)cfg.pid);
    char *args[] = { cfg.java, "-cp", cfg.jar, "searchmig.keylog.AttachMain", pid,
                     attach ? cfg.keylog : "off", NULL };
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        execvp(cfg.java, args);
        fprintf(stderr, "searchmig-agent keys: cannot run %s: %s\n", cfg.java, strerror(errno));
        _exit(127);
    }
    int st = 0;
    while (child > 0 && waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    int code = child < 0 ? 1 : (WIFEXITED(st) ? WEXITSTATUS(st) : 1);
    if (code == 0)
        printf("%s: process %s %s\n", attach ? "attached" : "detached", pid,
               attach ? cfg.keylog : "(key logging off)");
    sm_opts_free(keys_opts, &cfg);
    return code;
}
