/* File sink: one base64 TrafficStream per line (the Migration Assistant
 * replayer's file input), rotated by size, optionally gzip; written with the
 * sm_ts line writer (<sm/ts.h>). Writes are synchronous, so a record is
 * "delivered" once written to the file (the OS has it; flush() syncs the
 * writer's buffers). The sink is never full. */
#include "sink/sink.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct file_ctx {
    struct sm_ts_writer *w;
    char *path;
    struct agent_sink_stats st;
    struct sm_ratelimit rl;
};

static void on_file_close(void *arg, const char *path, uint64_t bytes, uint64_t records)
{
    struct file_ctx *fc = arg;
    fc->st.files++;
    sm_log_info("file: completed %s (%" PRIu64 " bytes, %" PRIu64 " records)", path, bytes, records);
}

static int file_open(struct agent_sink *sink, const struct agent_sink_conf *conf, char *err, size_t errlen)
{
    if (!conf->path || !*conf->path)
        return sm_errf(err, errlen, SM_ECONFIG, "file sink: no --output path");
    struct file_ctx *fc = sm_calloc(1, sizeof(*fc));
    if (!fc)
        return sm_errf(err, errlen, SM_ENOMEM, "file sink: out of memory");
    struct stat st;
    size_t pl = strlen(conf->path);
    bool dir = (stat(conf->path, &st) == 0 && S_ISDIR(st.st_mode)) || conf->path[pl - 1] == '/';
    char buf[4096];
    if (dir) {
        if (mkdir(conf->path, 0750) != 0 && errno != EEXIST) {
            sm_free(fc);
            return sm_errf(err, errlen, SM_EIO, "file sink: cannot create directory %s: %s", conf->path,
                           strerror(errno));
        }
        char node[64] = "agent";
        if (conf->node_id && *conf->node_id) {
            snprintf(node, sizeof(node), "%s", conf->node_id);
            for (char *c = node; *c; c++)
                if (*c == '/' || *c == ' ')
                    *c = '_';
        }
        snprintf(buf, sizeof(buf), "%s%straffic-%s-%" PRIu64 ".log%s", conf->path,
                 conf->path[pl - 1] == '/' ? "" : "/", node, sm_wall_ms() / 1000, conf->gzip ? ".gz" : "");
    } else {
        snprintf(buf, sizeof(buf), "%s", conf->path);
    }
    fc->path = sm_strdup(buf);
    struct sm_ts_writer_conf wc = {
        .path = fc->path, .gzip = conf->gzip, .rotate_bytes = conf->max_size,
        .on_close = on_file_close, .arg = fc,
    };
    if (!fc->path || !(fc->w = sm_ts_writer_open(&wc, err, errlen))) {
        sm_free(fc->path);
        sm_free(fc);
        return SM_EIO;
    }
    sink->ctx = fc;
    snprintf(sink->name, sizeof(sink->name), "file[%s]", fc->path);
    return SM_OK;
}

static int file_write(struct agent_sink *sink, struct agent_sink_msg *msg)
{
    struct file_ctx *fc = sink->ctx;
    char err[256];
    int rc = sm_ts_writer_write_raw(fc->w, msg->key, msg->data, msg->len, err, sizeof(err));
    if (rc) {
        fc->st.errors++;
        uint64_t sup;
        if (sm_log_ratelimited(&fc->rl, 10000, &sup))
            sm_log_err("%s: %s (%" PRIu64 " more suppressed)", sink->name, err, sup);
        return rc;
    }
    fc->st.written++;
    fc->st.written_bytes += msg->len;
    fc->st.delivered++;
    agent_sink_report(sink, msg, SM_OK);
    agent_sink_msg_free(msg);
    return SM_OK;
}

static int file_flush(struct agent_sink *sink, uint64_t deadline_ms)
{
    (void)deadline_ms;
    struct file_ctx *fc = sink->ctx;
    char err[256];
    int rc = sm_ts_writer_flush(fc->w, err, sizeof(err));
    if (rc)
        sm_log_err("%s: %s", sink->name, err);
    return rc;
}

static void file_stats(struct agent_sink *sink, struct agent_sink_stats *out)
{
    struct file_ctx *fc = sink->ctx;
    *out = fc->st;
}

static void file_close(struct agent_sink *sink)
{
    struct file_ctx *fc = sink->ctx;
    if (!fc)
        return;
    char err[256];
    if (sm_ts_writer_close(fc->w, err, sizeof(err)))
        sm_log_err("%s: %s", sink->name, err);
    sm_free(fc->path);
    sm_free(fc);
    sink->ctx = NULL;
}

const struct agent_sink_ops agent_sink_file_ops = {
    .name = "file",
    .open = file_open,
    .write = file_write,
    .poll = NULL,
    .flush = file_flush,
    .full = NULL,
    .stats = file_stats,
    .close = file_close,
};
