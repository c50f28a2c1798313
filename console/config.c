#include "console.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define OFF(f) offsetof(struct console_cfg, f)
const struct sm_opt console_opts[] = {
    SM_HTTP_OPTS("source", "SM_SOURCE", struct console_cfg, source),
    SM_HTTP_OPTS("target", "SM_TARGET", struct console_cfg, target),
    { "snapshot-repo", SM_OPT_STR, OFF(snapshot_repo), NULL, "snapshot repository the tools read: DIR or s3://bucket/prefix", NULL, 0, "REPO" },
    { "snapshot-name", SM_OPT_STR, OFF(snapshot_name), "searchmig-migration", "snapshot to take and migrate from", NULL, 0, "NAME" },
    { "snapshot-repo-name", SM_OPT_STR, OFF(snapshot_repo_name), "searchmig", "repository name registered on the source cluster", NULL, 0, "NAME" },
    { "snapshot-repo-path", SM_OPT_STR, OFF(snapshot_repo_path), NULL, "filesystem location of the repository as the source nodes see it (registering an fs repository)", NULL, 0, "DIR" },
    { "snapshot-s3-endpoint", SM_OPT_STR, OFF(s3_endpoint), NULL, "S3-compatible endpoint for s3:// repositories", NULL, 0, "URL" },
    { "capture-dir", SM_OPT_STR, OFF(capture_dir), NULL, "directory of TrafficStream files written by the agents (instead of Kafka)", NULL, 0, "DIR" },
    { "kafka-brokers", SM_OPT_STR, OFF(kafka_brokers), NULL, "Kafka bootstrap servers the agents write to", NULL, 0, "HOSTS" },
    { "kafka-topic", SM_OPT_STR, OFF(kafka_topic), "logging-traffic-topic", "Kafka topic of the captured traffic", NULL, 0, "TOPIC" },
    { "kafka-group-id", SM_OPT_STR, OFF(kafka_group_id), "searchmig-replay", "consumer group of the replayers", NULL, 0, "ID" },
    { "indices", SM_OPT_STR, OFF(indices), "*,-.*", "index pattern to migrate (comma list, -excludes)", NULL, 0, "PATTERN" },
    { "work-dir", SM_OPT_STR, OFF(work_dir), "searchmig-work", "where the console keeps logs, pids, tuples and reports", NULL, 0, "DIR" },
    { "backfill-workers", SM_OPT_INT, OFF(backfill_workers), "2", "backfill worker threads", NULL, 0, "N" },
    { "backfill-segment-checksums", SM_OPT_STR, OFF(backfill_segment_checksums), "first",
      "first|streamed|off: when each segment's stored-fields CRC32 is checked (searchmig-rfs backfill --segment-checksums)",
      NULL, 0, "MODE" },
    { "backfill-ingest-pipeline", SM_OPT_STR, OFF(backfill_ingest_pipeline), "_none",
      "_none|default|NAME: the ingest pipeline of the backfill's bulk requests (searchmig-rfs backfill "
      "--ingest-pipeline; _none: the indices' default pipelines are skipped, they ran on the source)",
      NULL, 0, "NAME" },
    { "replay-speedup", SM_OPT_DOUBLE, OFF(replay_speedup), "1", "replay speed relative to the source (0 = as fast as possible)", NULL, 0, "F" },
    { "replay-workers", SM_OPT_INT, OFF(replay_workers), "256", "requests the replayer has in flight at once (searchmig-replay --workers)", NULL, 0, "N" },
    { "remove-types", SM_OPT_BOOL, OFF(remove_types), "false", "remove mapping types when replaying (Elasticsearch 6 sources to typeless targets)", NULL, 0, NULL },
    SM_OPT_END
};

/* Flattens nested YAML maps into "a-b-c" keys; "<endpoint>-url" becomes
 * "<endpoint>" (the flag is --source URL). Sequences become comma lists. */
struct flat {
    char stack[8][128];
    int depth;
    char key[512];
    bool have_key;
};

static void build_name(struct flat *f, const char *leaf, char *out, size_t n)
{
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < f->depth; i++)
        o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%s-", f->stack[i]);
    snprintf(out + (o < n ? o : n - 1), o < n ? n - o : 1, "%s", leaf);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
    if (!strcmp(out, "source-url") || !strcmp(out, "target-url"))
        out[6] = 0;
}

int console_config_load(struct console_cfg *cfg, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return sm_errf(err, errlen, SM_ECONFIG, "config %s: cannot open", path);
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, fp);
    struct flat f;
    memset(&f, 0, sizeof(f));
    int rc = SM_OK;
    bool done = false;
    char seqbuf[4096];
    bool in_seq = false;
    seqbuf[0] = 0;
    while (!done && !rc) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = sm_errf(err, errlen, SM_ECONFIG, "%s:%zu: YAML error: %s", path, p.problem_mark.line + 1,
                         p.problem ? p.problem : "?");
            break;
        }
        size_t line = ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
            if (f.have_key) {
                if (f.depth >= 8) {
                    rc = sm_errf(err, errlen, SM_ECONFIG, "%s:%zu: nested too deep", path, line);
                    break;
                }
                snprintf(f.stack[f.depth++], sizeof(f.stack[0]), "%.127s", f.key);
                f.have_key = false;
            }
            break;
        case YAML_MAPPING_END_EVENT:
            if (f.depth > 0)
                f.depth--;
            break;
        case YAML_SEQUENCE_START_EVENT:
            in_seq = true;
            seqbuf[0] = 0;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_SCALAR_EVENT: {
            const char *val = NULL;
            if (ev.type == YAML_SCALAR_EVENT) {
                if (in_seq) {
                    size_t l = strlen(seqbuf);
                    snprintf(seqbuf + l, sizeof(seqbuf) - l, "%s%s", l ? "," : "", (char *)ev.data.scalar.value);
                    break;
                }
                if (!f.have_key) {
                    snprintf(f.key, sizeof(f.key), "%s", (char *)ev.data.scalar.value);
                    f.have_key = true;
                    break;
                }
                val = (const char *)ev.data.scalar.value;
            } else {
                in_seq = false;
                val = seqbuf;
            }
            char name[700];
            build_name(&f, f.key, name, sizeof(name));
            f.have_key = false;
            char sub[512];
            int r = sm_opts_set(console_opts, cfg, name, val, sub, sizeof(sub));
            if (r && strstr(sub, "unknown option")) {
                /* suggest in the file's own terms: "source: {url: ...}" is key source-url */
                const char *best = NULL;
                size_t bestd = 4;
                for (const struct sm_opt *o = console_opts; o->name; o++) {
                    char cand[128];
                    snprintf(cand, sizeof(cand), "%s%s", o->name,
                             (!strcmp(o->name, "source") || !strcmp(o->name, "target")) ? "-url" : "");
                    size_t d = sm_edit_distance(cand, name);
                    if (d < bestd) {
                        bestd = d;
                        best = o->name;
                    }
                }
                if (best)
                    rc = sm_errf(err, errlen, SM_ECONFIG, "%s:%zu: unknown key '%s' (did you mean '%s%s'?)", path, line,
                                 name, best, (!strcmp(best, "source") || !strcmp(best, "target")) ? "-url" : "");
                else
                    rc = sm_errf(err, errlen, SM_ECONFIG, "%s:%zu: unknown key '%s' (see searchmig --help)", path, line, name);
            } else if (r) {
                rc = sm_errf(err, errlen, SM_ECONFIG, "%s:%zu: %s", path, line, sub);
            }
            break;
        }
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    fclose(fp);
    return rc;
}
