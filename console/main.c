/* searchmig: migration console. */
#include "console.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/opt.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
    const char *name;
    const char *summary;
    int (*run)(struct console_cfg *cfg, int argc, char **argv);
} cmds[] = {
    { "clusters", "check: reach both clusters, show versions and health, warn about unsupported pairs", console_cmd_clusters },
    { "snapshot", "create|status: take the source snapshot (source _snapshot API) / show it in the repository", console_cmd_snapshot },
    { "metadata", "evaluate|migrate: templates, indices, mappings, settings, aliases onto the target", console_cmd_metadata },
    { "backfill", "start [--wait]|status|cleanup|stop: reindex every document of the snapshot into the target", console_cmd_backfill },
    { "replay", "start [--wait]|status|stop: replay the captured traffic against the target", console_cmd_replay },
    { "compare", "document counts per index source vs target, and the replay report", console_cmd_compare },
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: searchmig [--config migration.yaml] COMMAND [SUBCOMMAND]\n\n"
                 "Walks a migration from a source to a target cluster, step by step:\n\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(out, "  %-9s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(out, "\nThe config file (default ./migration.yaml, or $SEARCHMIG_CONFIG) holds the clusters,\n"
                 "the snapshot repository and where captured traffic is; secrets may come from the\n"
                 "environment (SM_SOURCE_PASSWORD, SM_TARGET_PASSWORD) or password-file keys.\n"
                 "Keys (YAML, nested maps joined with '-'):\n");
    for (const struct sm_opt *o = console_opts; o->name; o++)
        if (!(o->flags & SM_OPT_HIDDEN))
            fprintf(out, "  %-28s %s\n", o->name, o->help);
    fprintf(out, "\n  --help     show this help\n  --version  show the version\n");
}

int main(int argc, char **argv)
{
    struct sm_log_config lc = { .level = SM_LOG_WARN, .ident = "searchmig" };
    sm_log_init(&lc);
    const char *config = getenv("SEARCHMIG_CONFIG");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("searchmig %s\n", sm_version_string);
            return 0;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
            continue;
        }
        if (!strncmp(argv[i], "--config=", 9)) {
            config = argv[i] + 9;
            continue;
        }
        fprintf(stderr, "searchmig: unknown option '%s'; see --help\n", argv[i]);
        return 2;
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (!config)
        config = "migration.yaml";
    struct console_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    char err[1024];
    int rc = sm_opts_defaults(console_opts, &cfg, err, sizeof(err));
    if (!rc)
        rc = console_config_load(&cfg, config, err, sizeof(err));
    if (!rc)
        rc = sm_opts_apply_env(console_opts, &cfg, err, sizeof(err));   /* SM_SOURCE_PASSWORD, ... */
    if (rc) {
        fprintf(stderr, "searchmig: %s\n", err);
        sm_opts_free(console_opts, &cfg);
        return 2;
    }
    cfg.config_path = (char *)config;
    if (mkdir(cfg.work_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "searchmig: work-dir %s: %s\n", cfg.work_dir, strerror(errno));
        sm_opts_free(console_opts, &cfg);
        return 2;
    }
    rc = -1;
    for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
        if (!strcmp(argv[i], cmds[k].name))
            rc = cmds[k].run(&cfg, argc - i, argv + i);
    if (rc == -1) {
        fprintf(stderr, "searchmig: unknown command '%s'\n\n", argv[i]);
        usage(stderr);
        rc = 2;
    }
    sm_opts_free(console_opts, &cfg);
    return rc;
}
