/* The record pipeline: stream events (agent/flow/stream.h) -> HTTP framing
 * (agent/http/framer.h) -> filters and redaction (filter.h) -> TrafficStream
 * records (record.h) -> a sink (agent/sink/sink.h).
 *
 * agent_pipeline_stream_cb() gives the callbacks a capture engine calls. All
 * entry points take the pipeline's lock, so a second thread may call
 * agent_pipeline_tick()/agent_pipeline_poll() while capture runs. Nothing
 * here blocks: a full sink costs records (counted), never capture time. */
#ifndef AGENT_RECORD_PIPELINE_H
#define AGENT_RECORD_PIPELINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "flow/stream.h"
#include "http/framer.h"
#include "record/filter.h"
#include "record/record.h"
#include "sink/sink.h"

#define AGENT_PIPELINE_HTTP_BUDGET_DEFAULT (64ull * 1024 * 1024)

struct agent_pipeline_conf {
    struct agent_rec_conf rec;          /* emit/arg are set by the pipeline */
    struct agent_http_limits http;      /* .budget is the pipeline's own */
    uint64_t http_budget;               /* bytes of partial heads etc. for all connections; 0: 64 MiB */
    struct agent_filter_conf filter;
    double sample_rate;                 /* fraction of connections recorded; 0 or >= 1: all */
    uint64_t sample_seed;               /* 0: random */
    struct agent_sink *sink;            /* borrowed; records go here */
};

struct agent_pipeline_stats {
    uint64_t connections;               /* opened and recorded */
    uint64_t sampled_out;               /* connections not recorded (sampling) */
    uint64_t open;                      /* connections open now */
    uint64_t requests, responses, interim; /* recorded messages */
    uint64_t suppressed;                /* requests suppressed by filters */
    uint64_t redacted;                  /* header values redacted */
    uint64_t gaps, broken;              /* gap events; broken messages reported */
    uint64_t upgrades;
    uint64_t bytes_c2s, bytes_s2c;      /* bytes recorded */
    uint64_t records_dropped;           /* the sink refused them (full/error) */
    uint64_t http_buffered;             /* bytes buffered by the framers now */
    struct agent_http_framer_stats http;   /* summed over closed connections + open ones */
    struct agent_rec_stats rec;
    struct agent_sink_stats sink;
};

struct agent_pipeline;

/* conf and its lists are copied; conf->sink is borrowed and must outlive
 * the pipeline. NULL on error (err filled). */
struct agent_pipeline *agent_pipeline_new(const struct agent_pipeline_conf *conf, char *err, size_t errlen);
/* Closes every connection still open (close observation, final record) and
 * frees the pipeline; the sink is not flushed or closed. NULL: no-op. */
void agent_pipeline_free(struct agent_pipeline *pl);
/* The callbacks for a capture engine (arg = pl). */
struct agent_stream_cb agent_pipeline_stream_cb(struct agent_pipeline *pl);
/* Idle flush at time now_ns (capture clock; live engines: wall clock). The
 * data path also ticks with packet times. */
void agent_pipeline_tick(struct agent_pipeline *pl, uint64_t now_ns);
/* Sink delivery reports. */
void agent_pipeline_poll(struct agent_pipeline *pl);
/* Flushes every open record (non-final) into the sink. */
void agent_pipeline_flush(struct agent_pipeline *pl);
void agent_pipeline_stats(struct agent_pipeline *pl, struct agent_pipeline_stats *out);
const char *agent_pipeline_node_id(const struct agent_pipeline *pl);

#endif
