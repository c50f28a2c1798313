/* File sink: one base64 TrafficStream per line (the Migration Assistant
 * replayer's file input), rotated by size, optionally gzip; written with the
 * sm_ts line writer (<sm/ts.h>).
 *
 * A writer thread does the base64 encoding and the writes, so the capture
 * thread only queues the record (offline bench: base64 + write() of 2 GB
 * into tmpfs were about half of the agent's time; on a busy disk they would
 * stall capture). The queue is bounded (QUEUE_MAX records, QUEUE_BYTES
 * bytes); when it is full, write() waits for room, as the synchronous
 * writer waited for the disk before: records are never dropped for it.
 * A record is "delivered" once written to the file (the OS has it); delivery
 * reports are given by poll() and flush() in the caller's thread, and
 * flush() waits until the queue is empty and the writer's buffers are
 * flushed. The sink is never full. */
#include "sink/sink.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX   4096u                 /* records waiting for the writer */
#define QUEUE_BYTES (8u * 1024 * 1024)    /* their bytes (peak RSS: part of the agent's budget) */
#define BATCH       64u                   /* records the writer takes at once */
/* The writer is woken once this many records or bytes wait, and by every
 * poll() (the agent polls every 100 ms) and flush(): one wakeup per record
 * cost a futex wake and a context switch per record (offline bench: 213k). */
#define WAKE_COUNT  32u
#define WAKE_BYTES  (256u * 1024)

struct file_ctx {
    struct sm_ts_writer *w;       /* used by the writer thread only (flush: while it is idle) */
    char *path;
    struct agent_sink *sink;
    struct sm_ratelimit rl;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;         /* guards everything below */
    pthread_cond_t work;          /* queue not empty, or stopping */
    pthread_cond_t space;         /* queue shrank, or the writer went idle */
    struct agent_sink_msg *q[QUEUE_MAX];   /* ring */
    size_t q_head, q_count;
    uint64_t q_bytes;
    bool busy;                    /* the writer holds a batch */
    bool stopping;
    bool gzip;
    struct agent_sink_msg **done; /* written, waiting for their report (only with on_delivery) */
    int *done_rc;
    size_t n_done, cap_done;
    struct agent_sink_stats st;
    uint64_t lost_seen;           /* sm_ts_writer_lost() already moved from delivered to failed */
};

static void ctx_free(struct file_ctx *fc);

/* Records counted delivered when the writer took them into its batch, and
 * lost since with a batch that failed to write (disk full): failed, not
 * delivered. Under fc->lock, while the writer thread is not writing. */
static void account_lost(struct file_ctx *fc)
{
    uint64_t lost = sm_ts_writer_lost(fc->w);
    if (lost == fc->lost_seen)
        return;
    uint64_t d = lost - fc->lost_seen;
    fc->lost_seen = lost;
    fc->st.delivered = fc->st.delivered >= d ? fc->st.delivered - d : 0;
    fc->st.failed += d;
}
static void *writer_main(void *arg);

static void on_file_close(void *arg, const char *path, uint64_t bytes, uint64_t records)
{
    struct file_ctx *fc = arg;   /* writer thread (rotation) or close() */
    pthread_mutex_lock(&fc->lock);
    fc->st.files++;
    pthread_mutex_unlock(&fc->lock);
    sm_log_info("file: completed %s (%" PRIu64 " bytes, %" PRIu64 " records)", path, bytes, records);
}

static int file_open(struct agent_sink *sink, const struct agent_sink_conf *conf, char *err, size_t errlen)
{
    if (!conf->path || !*conf->path)
        return sm_errf(err, errlen, SM_ECONFIG, "file sink: no --output path");
    struct file_ctx *fc = sm_calloc(1, sizeof(*fc));
    if (!fc)
        return sm_errf(err, errlen, SM_ENOMEM, "file sink: out of memory");
    fc->sink = sink;
    fc->gzip = conf->gzip;
    pthread_mutex_init(&fc->lock, NULL);
    pthread_cond_init(&fc->work, NULL);
    pthread_cond_init(&fc->space, NULL);
    struct stat st;
    size_t pl = strlen(conf->path);
    bool dir = (stat(conf->path, &st) == 0 && S_ISDIR(st.st_mode)) || conf->path[pl - 1] == '/';
    char buf[4096];
    if (dir) {
        if (mkdir(conf->path, 0750) != 0 && errno != EEXIST) {
            ctx_free(fc);
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
        ctx_free(fc);
        return SM_EIO;
    }
    sink->ctx = fc;
    snprintf(sink->name, sizeof(sink->name), "file[%s]", fc->path);
    if (pthread_create(&fc->thread, NULL, writer_main, fc) != 0) {
        sm_ts_writer_close(fc->w, NULL, 0);
        ctx_free(fc);
        sink->ctx = NULL;
        return sm_errf(err, errlen, SM_EIO, "file sink: cannot start the writer thread");
    }
    fc->thread_started = true;
    return SM_OK;
}

/* Keeps a written record for its delivery report (lock held). */
static void keep_done(struct file_ctx *fc, struct agent_sink_msg *msg, int rc)
{
    if (fc->n_done == fc->cap_done) {
        size_t cap = fc->cap_done ? fc->cap_done * 2 : 256;
        struct agent_sink_msg **d = sm_realloc(fc->done, cap * sizeof(*d));
        int *r = d ? sm_realloc(fc->done_rc, cap * sizeof(*r)) : NULL;
        if (d)
            fc->done = d;
        if (r)
            fc->done_rc = r;
        if (!d || !r) {   /* no memory for the report: the record is written, drop the report */
            agent_sink_msg_free(msg);
            return;
        }
        fc->cap_done = cap;
    }
    fc->done[fc->n_done] = msg;
    fc->done_rc[fc->n_done++] = rc;
}

static void *writer_main(void *arg)
{
    struct file_ctx *fc = arg;
    struct agent_sink_msg *batch[BATCH];
    int rcs[BATCH];
    char err[256];
    pthread_mutex_lock(&fc->lock);
    for (;;) {
        while (!fc->q_count && !fc->stopping)
            pthread_cond_wait(&fc->work, &fc->lock);
        if (!fc->q_count)
            break;   /* stopping and drained */
        size_t n = 0;
        while (fc->q_count && n < BATCH) {
            batch[n++] = fc->q[fc->q_head];
            fc->q_head = (fc->q_head + 1) % QUEUE_MAX;
            fc->q_count--;
        }
        fc->busy = true;
        pthread_mutex_unlock(&fc->lock);
        uint64_t bytes = 0, errors = 0;
        for (size_t i = 0; i < n; i++) {
            bytes += batch[i]->len;
            rcs[i] = sm_ts_writer_write_raw(fc->w, batch[i]->key, batch[i]->data, batch[i]->len, err,
                                            sizeof(err));
            if (rcs[i]) {
                errors++;
                uint64_t sup;
                if (sm_log_ratelimited(&fc->rl, 10000, &sup))
                    sm_log_err("%s: %s (%" PRIu64 " more suppressed)", fc->sink->name, err, sup);
            }
        }
        bool report = fc->sink->on_delivery != NULL;
        uint64_t lost_now = 0;
        if (report) {
            /* a report says "written": the batch goes out now (the only lines buffered),
             * and the records a failed write lost are reported failed, not delivered */
            uint64_t before = sm_ts_writer_lost(fc->w);
            if (sm_ts_writer_flush(fc->w, err, sizeof(err)) != SM_OK) {
                uint64_t sup;
                if (sm_log_ratelimited(&fc->rl, 10000, &sup))
                    sm_log_err("%s: %s (%" PRIu64 " more suppressed)", fc->sink->name, err, sup);
            }
            lost_now = sm_ts_writer_lost(fc->w);
            for (size_t i = n, lost = (size_t)(lost_now - before); i-- > 0 && lost;)
                if (rcs[i] == SM_OK) {
                    rcs[i] = SM_EIO;
                    errors++;
                    lost--;
                }
        } else {
            for (size_t i = 0; i < n; i++)
                agent_sink_msg_free(batch[i]);
        }
        pthread_mutex_lock(&fc->lock);
        if (!fc->q_count && !fc->gzip) {   /* idle: hand the batched lines to the OS now
                                              * (gzip keeps its stream until flush()) */
            pthread_mutex_unlock(&fc->lock);
            if (sm_ts_writer_flush(fc->w, err, sizeof(err)) != SM_OK) {
                uint64_t sup;
                if (sm_log_ratelimited(&fc->rl, 10000, &sup))
                    sm_log_err("%s: %s (%" PRIu64 " more suppressed)", fc->sink->name, err, sup);
            }
            pthread_mutex_lock(&fc->lock);
        }
        fc->q_bytes -= bytes;
        fc->st.delivered += n - errors;
        fc->st.failed += errors;
        fc->st.errors += errors;
        if (report)
            fc->lost_seen = lost_now;   /* counted in errors above */
        account_lost(fc);
        if (report)
            for (size_t i = 0; i < n; i++)
                keep_done(fc, batch[i], rcs[i]);
        fc->busy = false;
        pthread_cond_broadcast(&fc->space);
    }
    pthread_mutex_unlock(&fc->lock);
    return NULL;
}

/* Gives the delivery reports of written records (caller's thread). */
static void report_done(struct agent_sink *sink)
{
    struct file_ctx *fc = sink->ctx;
    pthread_mutex_lock(&fc->lock);
    struct agent_sink_msg **done = fc->done;
    int *rcs = fc->done_rc;
    size_t n = fc->n_done;
    fc->done = NULL;
    fc->done_rc = NULL;
    fc->n_done = fc->cap_done = 0;
    pthread_mutex_unlock(&fc->lock);
    for (size_t i = 0; i < n; i++) {
        agent_sink_report(sink, done[i], rcs[i]);
        agent_sink_msg_free(done[i]);
    }
    sm_free(done);
    sm_free(rcs);
}

static int file_write(struct agent_sink *sink, struct agent_sink_msg *msg)
{
    struct file_ctx *fc = sink->ctx;
    pthread_mutex_lock(&fc->lock);
    while (fc->q_count == QUEUE_MAX || (fc->q_count && fc->q_bytes + msg->len > QUEUE_BYTES)) {
        pthread_cond_signal(&fc->work);
        pthread_cond_wait(&fc->space, &fc->lock);   /* the writer is behind: wait as for the disk */
    }
    fc->q[(fc->q_head + fc->q_count) % QUEUE_MAX] = msg;
    fc->q_count++;
    fc->q_bytes += msg->len;
    fc->st.written++;
    fc->st.written_bytes += msg->len;
    if (fc->q_count == WAKE_COUNT || (fc->q_bytes >= WAKE_BYTES && fc->q_bytes - msg->len < WAKE_BYTES))
        pthread_cond_signal(&fc->work);
    pthread_mutex_unlock(&fc->lock);
    return SM_OK;
}

static int file_poll(struct agent_sink *sink)
{
    struct file_ctx *fc = sink->ctx;
    pthread_mutex_lock(&fc->lock);
    if (fc->q_count)
        pthread_cond_signal(&fc->work);
    pthread_mutex_unlock(&fc->lock);
    report_done(sink);
    return SM_OK;
}

static int file_flush(struct agent_sink *sink, uint64_t deadline_ms)
{
    struct file_ctx *fc = sink->ctx;
    char err[256];
    int rc = SM_OK;
    pthread_mutex_lock(&fc->lock);
    if (fc->q_count)
        pthread_cond_signal(&fc->work);
    while (fc->q_count || fc->busy) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now = sm_now_ms();
        if (now >= deadline_ms) {
            rc = SM_ETIMEOUT;
            break;
        }
        uint64_t wait_ms = deadline_ms - now < 100 ? deadline_ms - now : 100;
        ts.tv_nsec += (long)(wait_ms * 1000000);
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&fc->space, &fc->lock, &ts);
    }
    if (rc == SM_OK && (rc = sm_ts_writer_flush(fc->w, err, sizeof(err))) != SM_OK)
        sm_log_err("%s: %s", sink->name, err);   /* the writer is idle: its buffers are ours */
    account_lost(fc);
    pthread_mutex_unlock(&fc->lock);
    report_done(sink);
    return rc;
}

static void file_stats(struct agent_sink *sink, struct agent_sink_stats *out)
{
    struct file_ctx *fc = sink->ctx;
    pthread_mutex_lock(&fc->lock);
    *out = fc->st;
    pthread_mutex_unlock(&fc->lock);
}

static void ctx_free(struct file_ctx *fc)
{
    pthread_mutex_destroy(&fc->lock);
    pthread_cond_destroy(&fc->work);
    pthread_cond_destroy(&fc->space);
    sm_free(fc->path);
    sm_free(fc);
}

static void file_close(struct agent_sink *sink)
{
    struct file_ctx *fc = sink->ctx;
    if (!fc)
        return;
    if (fc->thread_started) {   /* the writer drains the queue before it ends */
        pthread_mutex_lock(&fc->lock);
        fc->stopping = true;
        pthread_cond_signal(&fc->work);
        pthread_mutex_unlock(&fc->lock);
        pthread_join(fc->thread, NULL);
    }
    report_done(sink);
    char err[256];
    if (sm_ts_writer_close(fc->w, err, sizeof(err)))
        sm_log_err("%s: %s", sink->name, err);
    ctx_free(fc);
    sink->ctx = NULL;
}

const struct agent_sink_ops agent_sink_file_ops = {
    .name = "file",
    .open = file_open,
    .write = file_write,
    .poll = file_poll,
    .flush = file_flush,
    .full = NULL,
    .stats = file_stats,
    .close = file_close,
};
