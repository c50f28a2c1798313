/* searchmig: the migration console. One config file (migration.yaml) and
 * subcommands in the order a migration happens; each step delegates to the
 * component tools (searchmig-rfs, searchmig-replay, searchmig-agent). */
#ifndef CONSOLE_H
#define CONSOLE_H
#include <stdbool.h>
#include <stdint.h>

#include <sm/http.h>
#include <sm/opt.h>

struct console_cfg {
    char *config_path;
    struct sm_http_opts source, target;
    char *snapshot_repo;        /* DIR or s3://bucket/prefix: what the tools read */
    char *snapshot_name;
    char *snapshot_repo_name;   /* repository name registered on the source (_snapshot API) */
    char *snapshot_repo_path;   /* location the source writes to (fs repository "location") */
    char *s3_endpoint;
    char *capture_dir;          /* TrafficStream files written by the agents */
    char *kafka_brokers;
    char *kafka_topic;
    char *kafka_group_id;
    char *indices;              /* index pattern for metadata/backfill/compare */
    char *work_dir;             /* pids, logs, tuples, reports */
    int64_t backfill_workers;
    char *backfill_segment_checksums;   /* searchmig-rfs backfill --segment-checksums */
    char *backfill_ingest_pipeline;     /* searchmig-rfs backfill --ingest-pipeline */
    double replay_speedup;
    int64_t replay_workers;
    bool remove_types;
    bool quiet;
};

extern const struct sm_opt console_opts[];

/* Loads YAML (nested maps flattened with '-': source: {url: x} -> source-url)
 * into cfg through the option table: unknown keys are errors naming the
 * closest known key and the line. */
int console_config_load(struct console_cfg *cfg, const char *path, char *err, size_t errlen);

/* Tools */
const char *console_tool_path(const char *tool);   /* "searchmig-rfs" -> absolute path */
/* Runs a tool in the foreground, output to the terminal; returns its exit code
 * (or -1 when it could not be started). */
int console_run(const char *tool, char *const argv[]);
/* Starts a tool in the background, output to logfile, pid saved in pidfile. */
int console_start(const char *tool, char *const argv[], const char *logfile, const char *pidfile,
                  char *err, size_t errlen);
/* Stops a background tool (SIGTERM, then SIGKILL after grace_ms). */
int console_stop(const char *pidfile, uint64_t grace_ms, char *err, size_t errlen);
/* Is the tool of pidfile running? Fills *pid. */
bool console_running(const char *pidfile, long *pid);
/* Appends endpoint flags (--target URL --target-ca-cert ...) for prefix
 * "target"/"source"; secrets are put in the environment, never on argv. */
void console_endpoint_args(const struct sm_http_opts *o, const char *prefix, struct sm_strlist *args);
/* Path inside the work dir (static buffer rotation of 4). */
const char *console_path(const struct console_cfg *cfg, const char *name);

/* Steps */
int console_cmd_clusters(struct console_cfg *cfg, int argc, char **argv);
int console_cmd_snapshot(struct console_cfg *cfg, int argc, char **argv);
int console_cmd_metadata(struct console_cfg *cfg, int argc, char **argv);
int console_cmd_backfill(struct console_cfg *cfg, int argc, char **argv);
int console_cmd_replay(struct console_cfg *cfg, int argc, char **argv);
int console_cmd_compare(struct console_cfg *cfg, int argc, char **argv);

/* Output helpers */
void console_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_next(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
