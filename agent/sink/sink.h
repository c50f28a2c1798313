/* Record sinks behind one interface: file now, Kafka (+ on-disk spool) later.
 *
 * A sink takes encoded TrafficStream records (struct agent_sink_msg: key =
 * connectionId, value = record bytes) and never blocks the pipeline: when it
 * cannot take more it says so (agent_sink_full(), or SM_EFULL from write) and
 * the caller counts the record as dropped. A Kafka sink is expected to move
 * records to its spool rather than report full while the spool has room.
 * The file sink is the exception: it queues records for its writer thread
 * and waits for room when that bounded queue is full (file.c), as a
 * synchronous write waits for the disk. Delivery reports always come from
 * poll() or flush(), in the caller's thread.
 *
 *   struct agent_sink *sink;
 *   agent_sink_open(&conf, &sink, err, sizeof err);
 *   msg = agent_sink_msg_new(key, data, len, last);     // takes data
 *   if (agent_sink_write(sink, msg) != SM_OK) agent_sink_msg_free(msg);
 *   agent_sink_poll(sink);                               // delivery reports, never sleeps
 *   agent_sink_flush(sink, sm_now_ms() + 10000);         // at exit
 *   agent_sink_close(sink);
 *
 * Threading: one thread at a time per sink (the pipeline holds its lock). */
#ifndef AGENT_SINK_SINK_H
#define AGENT_SINK_SINK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/kafka.h>

/* One record on its way out. */
struct agent_sink_msg {
    char *key;               /* connectionId, NUL-terminated (owned) */
    size_t key_len;
    uint8_t *data;           /* encoded TrafficStream (owned) */
    size_t len;
    bool last;               /* the connection's final record */
};

/* New message; takes ownership of data (sm_malloc'd) in every case, copies
 * key. NULL on allocation failure (data freed). */
struct agent_sink_msg *agent_sink_msg_new(const char *key, uint8_t *data, size_t len, bool last);
void agent_sink_msg_free(struct agent_sink_msg *msg);   /* NULL: no-op */

/* Delivery report: err SM_OK once the record is durable (file written,
 * Kafka acknowledged), else the error that lost it. msg is borrowed. */
typedef void (*agent_sink_delivery_fn)(void *arg, const struct agent_sink_msg *msg, int err);

struct agent_sink_conf {
    const char *kind;                   /* "file" or "kafka" */
    /* file */
    const char *path;                   /* FILE, or DIR (existing directory or trailing '/') */
    bool gzip;
    uint64_t max_size;                  /* rotate after this many bytes; 0: never */
    const char *node_id;                /* names files in a directory */
    /* kafka (agent/sink/kafka.c) */
    const struct sm_kafka_opts *kafka;
    const char *spool_dir;
    uint64_t spool_max;
    /* reports */
    agent_sink_delivery_fn on_delivery; /* may be NULL */
    void *arg;
};

struct agent_sink_stats {
    uint64_t written, written_bytes;    /* accepted by write() */
    uint64_t delivered;                 /* durable */
    uint64_t failed;                    /* lost after being accepted */
    uint64_t refused_full;              /* write() returned SM_EFULL */
    uint64_t spooled, spool_bytes;      /* Kafka: on disk now */
    uint64_t files;                     /* file: files completed */
    uint64_t errors;                    /* I/O or client errors */
};

struct agent_sink;

struct agent_sink_ops {
    const char *name;                   /* "file", "kafka" */
    int  (*open)(struct agent_sink *sink, const struct agent_sink_conf *conf, char *err, size_t errlen);
    /* SM_OK: the sink owns msg; else (SM_EFULL, SM_EIO, ...) the caller does. */
    int  (*write)(struct agent_sink *sink, struct agent_sink_msg *msg);
    /* Serves delivery reports and background work; never sleeps. */
    int  (*poll)(struct agent_sink *sink);
    /* Pushes everything out, waiting at most until deadline_ms (sm_now_ms
     * clock). SM_OK, SM_ETIMEOUT (records still pending) or SM_EIO. */
    int  (*flush)(struct agent_sink *sink, uint64_t deadline_ms);
    bool (*full)(struct agent_sink *sink);
    void (*stats)(struct agent_sink *sink, struct agent_sink_stats *out);
    void (*close)(struct agent_sink *sink);
};

struct agent_sink {
    const struct agent_sink_ops *ops;
    void *ctx;                          /* the kind's private state */
    char name[128];                     /* "file[/var/lib/x.log]" for messages */
    agent_sink_delivery_fn on_delivery;
    void *arg;
};

extern const struct agent_sink_ops agent_sink_file_ops;
/* The Kafka sink: agent/sink/kafka.c defines agent_sink_kafka_ops and
 * agent/sink/kafka.h declares it; sink.c picks it up when kafka.h exists
 * (__has_include), until then "kafka" is refused with a clear message. */

/* True when this build has a sink of that kind ("file", "kafka"). */
bool agent_sink_kind_available(const char *kind);

/* Opens a sink of conf->kind. SM_OK and *out; SM_EUNSUPPORTED for a kind not
 * in this build (err says so); SM_ECONFIG, SM_EIO, SM_ENOMEM. */
int agent_sink_open(const struct agent_sink_conf *conf, struct agent_sink **out, char *err, size_t errlen);
/* See struct agent_sink_ops. */
int agent_sink_write(struct agent_sink *sink, struct agent_sink_msg *msg);
int agent_sink_poll(struct agent_sink *sink);
int agent_sink_flush(struct agent_sink *sink, uint64_t deadline_ms);
bool agent_sink_full(struct agent_sink *sink);
void agent_sink_stats(struct agent_sink *sink, struct agent_sink_stats *out);
/* Closes without flushing (call flush first); NULL is a no-op. */
void agent_sink_close(struct agent_sink *sink);
/* For sink kinds: reports a delivery to the owner. */
void agent_sink_report(struct agent_sink *sink, const struct agent_sink_msg *msg, int err);

#endif
