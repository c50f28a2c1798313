/* Sink registry and dispatch (see sink.h). */
#include "sink/sink.h"

#include <sm/err.h>
#include <sm/mem.h>

#include <stdio.h>
#include <string.h>

#if defined(__has_include)
#if __has_include("sink/kafka.h")
#include "sink/kafka.h"
#define AGENT_SINK_HAVE_KAFKA 1
#endif
#endif

struct agent_sink_msg *agent_sink_msg_new(const char *key, uint8_t *data, size_t len, bool last)
{
    struct agent_sink_msg *msg = sm_calloc(1, sizeof(*msg));
    if (!msg || !(msg->key = sm_strdup(key ? key : ""))) {
        sm_free(msg);
        sm_free(data);
        return NULL;
    }
    msg->key_len = strlen(msg->key);
    msg->data = data;
    msg->len = len;
    msg->last = last;
    return msg;
}

void agent_sink_msg_free(struct agent_sink_msg *msg)
{
    if (!msg)
        return;
    sm_free(msg->key);
    sm_free(msg->data);
    sm_free(msg);
}

static const struct agent_sink_ops *find_kind(const char *kind)
{
    if (!strcmp(kind, "file"))
        return &agent_sink_file_ops;
#ifdef AGENT_SINK_HAVE_KAFKA
    if (!strcmp(kind, "kafka"))
        return &agent_sink_kafka_ops;
#endif
    return NULL;
}

bool agent_sink_kind_available(const char *kind)
{
    return find_kind(kind) != NULL;
}

int agent_sink_open(const struct agent_sink_conf *conf, struct agent_sink **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *kind = conf->kind ? conf->kind : "file";
    const struct agent_sink_ops *ops = find_kind(kind);
    if (!ops) {
        if (!strcmp(kind, "kafka"))
            return sm_errf(err, errlen, SM_EUNSUPPORTED,
                           "Kafka output is not available yet in this build; use --output FILE|DIR");
        return sm_errf(err, errlen, SM_ECONFIG, "unknown sink '%s'", kind);
    }
    struct agent_sink *sink = sm_calloc(1, sizeof(*sink));
    if (!sink)
        return sm_errf(err, errlen, SM_ENOMEM, "sink: out of memory");
    sink->ops = ops;
    sink->on_delivery = conf->on_delivery;
    sink->arg = conf->arg;
    snprintf(sink->name, sizeof(sink->name), "%s", ops->name);
    int rc = ops->open(sink, conf, err, errlen);
    if (rc) {
        sm_free(sink);
        return rc;
    }
    *out = sink;
    return SM_OK;
}

int agent_sink_write(struct agent_sink *sink, struct agent_sink_msg *msg)
{
    return sink->ops->write(sink, msg);
}

int agent_sink_poll(struct agent_sink *sink)
{
    return sink->ops->poll ? sink->ops->poll(sink) : SM_OK;
}

int agent_sink_flush(struct agent_sink *sink, uint64_t deadline_ms)
{
    return sink->ops->flush ? sink->ops->flush(sink, deadline_ms) : SM_OK;
}

bool agent_sink_full(struct agent_sink *sink)
{
    return sink->ops->full ? sink->ops->full(sink) : false;
}

void agent_sink_stats(struct agent_sink *sink, struct agent_sink_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (sink->ops->stats)
        sink->ops->stats(sink, out);
}

void agent_sink_close(struct agent_sink *sink)
{
    if (!sink)
        return;
    sink->ops->close(sink);
    sm_free(sink);
}

void agent_sink_report(struct agent_sink *sink, const struct agent_sink_msg *msg, int err)
{
    if (sink->on_delivery)
        sink->on_delivery(sink->arg, msg, err);
}
