/* Helpers shared by the searchmig-rfs subcommands. */
#include "cli/cli.h"
#include "lucene/lucene.h"

#include <sm/err.h>
#include <sm/opt.h>

#include <stdio.h>
#include <time.h>

int rfs_cli_parse(const struct sm_cli *cli, void *cfg, int argc, char **argv, struct sm_strlist *pos)
{
    char err[512];
    int rc = sm_opts_parse(cli, cfg, argc, argv, pos, err, sizeof(err));
    if (rc == SM_EEOF)
        return RFS_CLI_EXIT_OK;
    if (rc) {
        fprintf(stderr, "%s: %s\n", cli->prog, err);
        fprintf(stderr, "Try '%s --help'.\n", cli->prog);
        return RFS_CLI_EXIT_USAGE;
    }
    return -1;
}

int rfs_cli_segment_checksums(const char *prog, const char *value, enum rfs_lu_checksums *out)
{
    if (rfs_lu_checksums_parse(value, out) == SM_OK)
        return SM_OK;
    fprintf(stderr, "%s: --segment-checksums first|streamed|off, not '%s'\n", prog, value ? value : "");
    return SM_EINVAL;
}

const char *rfs_cli_time(int64_t ms, char *buf, size_t len)
{
    if (ms < 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[32];
    strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", tmp, (int)(ms % 1000));
    return buf;
}

const char *rfs_cli_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}
