/* Live monitoring of searchmig-replay (docs/replay.md, "Live summary and
 * metrics"): Prometheus metrics and /health on --metrics-listen (the common
 * endpoint, sm/metrics.h), and a summary every --summary-interval (requests/s
 * over the interval, requests sent, status-match rate, lag p99, pending):
 * redrawn in place on a terminal, log lines otherwise.
 *
 * Threads: the engine's counters are read under its lock
 * (replay_engine_stats). The input side's counters (accumulator, file reader,
 * Kafka consumer) belong to the input thread, which hands copies over with
 * replay_monitor_publish(); the metrics and summary threads read only those
 * copies. */
#ifndef REPLAY_OPS_MONITOR_H
#define REPLAY_OPS_MONITOR_H
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/ts.h>

#include "accum/accum.h"
#include "input/kafka.h"
#include "send/engine.h"

struct replay_monitor_cfg {
    const char *metrics_listen;          /* HOST:PORT; NULL or "": no endpoint */
    uint64_t summary_interval_ms;        /* 0: no periodic summary */
    bool tty;                            /* redraw one status line instead of logging */
    bool kafka;                          /* Kafka input: export its counters */
    struct replay_engine *eng;           /* borrowed; must outlive replay_monitor_stop() */
    volatile sig_atomic_t *stop;         /* set by SIGTERM/SIGINT: /health turns 503 */
};

struct replay_monitor;

/* Starts the endpoint (if asked) and the summary thread (if asked). NULL on
 * error: err names the address. */
struct replay_monitor *replay_monitor_start(const struct replay_monitor_cfg *cfg, char *err, size_t errlen);
/* The port the endpoint bound (0 without one). */
uint16_t replay_monitor_port(const struct replay_monitor *mon);
/* From the input thread: copies its counters for the other threads. ks is
 * NULL for file input; rs is NULL for Kafka input. Cheap (a lock and a copy):
 * call it after every record. mon may be NULL. */
void replay_monitor_publish(struct replay_monitor *mon, const struct replay_accum_stats *as,
                            const struct sm_ts_reader_stats *rs, const struct replay_kafka_stats *ks);
/* Stops both threads (the status line on a terminal ends with its last
 * values) and frees mon (NULL: no-op). */
void replay_monitor_stop(struct replay_monitor *mon);

#endif
