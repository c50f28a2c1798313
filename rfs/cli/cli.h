/* searchmig-rfs subcommands. Each command parses its own option table
 * (argv[0] is the command name) and returns the process exit code:
 * 0 success, 1 failure (message on stderr), 2 usage error. */
#ifndef RFS_CLI_CLI_H
#define RFS_CLI_CLI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sm/buf.h>

struct rfs_cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

int rfs_cmd_snapshots(int argc, char **argv);
int rfs_cmd_indices(int argc, char **argv);
int rfs_cmd_docs(int argc, char **argv);
int rfs_cmd_restore_shard(int argc, char **argv);
int rfs_cmd_backfill(int argc, char **argv);          /* cmd_backfill.c */
int rfs_cmd_backfill_status(int argc, char **argv);   /* cmd_backfill_status.c */
int rfs_cmd_metadata(int argc, char **argv);          /* cmd_metadata.c */

/* Shared helpers (cli_common.c). */
#define RFS_CLI_EXIT_OK    0
#define RFS_CLI_EXIT_FAIL  1
#define RFS_CLI_EXIT_USAGE 2

/* Runs sm_opts_parse for a subcommand; returns -1 to continue, else the exit code. */
struct sm_cli;
struct sm_strlist;
int rfs_cli_parse(const struct sm_cli *cli, void *cfg, int argc, char **argv, struct sm_strlist *pos);
/* "2024-03-22T15:18:47.418Z" or "-" for ms < 0. */
const char *rfs_cli_time(int64_t ms, char *buf, size_t len);
/* "14.2 KiB" */
const char *rfs_cli_size(uint64_t bytes, char *buf, size_t len);

/* --segment-checksums first|streamed|off into a char * field f of T, and its
 * check: SM_OK, or a usage message on stderr and SM_EINVAL. */
#define RFS_CLI_OPT_SEGMENT_CHECKSUMS(T, f)                                                                    \
    { "segment-checksums", SM_OPT_STR, offsetof(T, f), "first",                                             \
      "each segment's stored-fields CRC32: first (a read pass before its documents are used), streamed "   \
      "(checked from the decoding pass after them: the data is read once; a mismatch is an error after "    \
      "the segment's documents), off", NULL, 0, "first|streamed|off" }
enum rfs_lu_checksums;
int rfs_cli_segment_checksums(const char *prog, const char *value, enum rfs_lu_checksums *out);

#endif
