/* searchmig-rfs: reindex-from-snapshot tool. A thin dispatcher over the
 * subcommands in rfs/cli/ (each parses its own options). */
#include "cli/cli.h"

#include <sm/log.h>
#include <sm/opt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Add new subcommands here (name, one-line summary, entry point). */
static const struct rfs_cli_cmd cmds[] = {
    { "snapshots", "list the snapshots of a repository", rfs_cmd_snapshots },
    { "indices", "list the indices of a snapshot: shards, documents, size, settings, mappings", rfs_cmd_indices },
    { "docs", "write every live document of a snapshot or Lucene directory as JSON lines", rfs_cmd_docs },
    { "restore-shard", "copy one shard's Lucene files out of a snapshot (checked against its metadata)",
      rfs_cmd_restore_shard },
    { "backfill", "send every document of a snapshot to a target cluster (many workers, resumable)", rfs_cmd_backfill },
    { "backfill-status", "progress of a backfill: items done/in progress/left, rate, ETA", rfs_cmd_backfill_status },
    { "metadata", "evaluate|migrate templates, indices, mappings, settings, aliases to a target", rfs_cmd_metadata },
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: searchmig-rfs COMMAND [OPTIONS]\n\n"
                 "Reads Elasticsearch (1.x-8.x) and OpenSearch snapshot repositories without Java.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(out, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(out, "\n  --help       show this help ('searchmig-rfs COMMAND --help' for a command)\n"
                 "  --version    show the version\n"
                 "\nEnvironment: SM_LOG_LEVEL=error|warn|info|debug, SM_DEBUG=repo,lucene,smile (debug contexts)\n");
}

int main(int argc, char **argv)
{
    struct sm_log_config lc = { .level = SM_LOG_WARN, .ident = "searchmig-rfs" };
    const char *lvl = getenv("SM_LOG_LEVEL"), *dbg = getenv("SM_DEBUG");
    if (lvl && sm_log_parse_level(lvl, &lc.level))
        fprintf(stderr, "searchmig-rfs: ignoring SM_LOG_LEVEL=%s\n", lvl);
    if (dbg && sm_log_parse_debug(dbg, &lc.debug))
        fprintf(stderr, "searchmig-rfs: ignoring SM_DEBUG=%s\n", dbg);
    if (lc.debug)
        lc.level = SM_LOG_DEBUG;
    sm_log_init(&lc);

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("searchmig-rfs %s\n", sm_version_string);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "searchmig-rfs: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
