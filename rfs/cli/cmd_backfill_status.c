/* searchmig-rfs backfill-status: work items done / in progress / left,
 * documents, rate and ETA from the coordination index; --cleanup deletes
 * that index once the backfill is complete. Exit codes: 0 done,
 * 1 failed items or rejected documents (or an error), 2 usage, 3 work remains. */
#include "cli/cli.h"

#include "backfill/backfill.h"

#include <sm/http.h>
#include <sm/opt.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct status_cli {
    struct sm_http_opts target;
    char *coord_index;
    bool json, cleanup, force;
};

static const struct sm_opt status_opts[] = {
    SM_HTTP_OPTS("target", "SM_TARGET", struct status_cli, target),
    { "coordination-index", SM_OPT_STR, offsetof(struct status_cli, coord_index), RFS_BACKFILL_DEFAULT_COORD_INDEX,
      "index on the target holding the work items", NULL, 0, "NAME" },
    { "json", SM_OPT_BOOL, offsetof(struct status_cli, json), "false", "one JSON object instead of text", NULL, 0,
      NULL },
    { "cleanup", SM_OPT_BOOL, offsetof(struct status_cli, cleanup), "false",
      "delete the coordination index once the backfill is complete (refused while work remains or items failed)",
      NULL, 0, NULL },
    { "force", SM_OPT_BOOL, offsetof(struct status_cli, force), "false",
      "with --cleanup: delete it even then", NULL, 0, NULL },
    SM_OPT_END
};

int rfs_cmd_backfill_status(int argc, char **argv)
{
    struct status_cli cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sm_cli cli = { "searchmig-rfs backfill-status",
                          "--target URL [--coordination-index NAME] [--json] [--cleanup [--force]]",
                          "Summarises a backfill from its coordination index; with --cleanup deletes that index "
                          "once the backfill is complete. Exit codes: 0 done (deleted), 1 failed items or "
                          "rejected documents, 2 usage, 3 work remains.", status_opts, true };
    int ex = rfs_cli_parse(&cli, &cfg, argc, argv, NULL);
    if (ex >= 0)
        goto out;
    if (!cfg.target.url) {
        fprintf(stderr, "%s: --target URL is required\n", cli.prog);
        ex = RFS_CLI_EXIT_USAGE;
        goto out;
    }
    char err[1024] = "";
    if (cfg.force && !cfg.cleanup) {
        fprintf(stderr, "%s: --force only goes with --cleanup\n", cli.prog);
        ex = RFS_CLI_EXIT_USAGE;
        goto out;
    }
    if (cfg.cleanup)
        ex = rfs_backfill_cleanup(&cfg.target, cfg.coord_index, cfg.force, stdout, err, sizeof(err));
    else
        ex = rfs_backfill_status(&cfg.target, cfg.coord_index, stdout, isatty(1) != 0, cfg.json, err, sizeof(err));
    if (err[0] && ex == 1)
        fprintf(stderr, "%s: %s\n", cli.prog, err);
out:
    sm_opts_free(status_opts, &cfg);
    return ex;
}
