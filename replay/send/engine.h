/* Replay engine: schedules captured requests on the source's timeline, sends
 * them to the target, keeps the order of each source connection (the next
 * request goes only after the previous one's response), pairs each with its
 * source response and writes the result tuple.
 *
 * Sending: sender loops (cfg.send_threads event-loop threads) each own the
 * target connections of their source connections, given out round robin
 * (non-blocking sockets in the loop's epoll set, TLS with OpenSSL, requests
 * serialised by hand, responses framed with llhttp); each loop has its
 * share of `workers`. Each source connection gets a target
 * connection of its own, opened when its first request is sent and closed
 * when the source connection ends (connection mirroring). At most `workers`
 * requests are in flight at once. Retries: connection errors, timeouts and
 * 429/502/503/504 with capped exponential backoff and full jitter (the
 * target options' --target-max-retries/-backoff-*, Retry-After honoured);
 * a `_bulk` answered 200 with item failures 429/5xx is resent with only
 * those items. Every attempt's response goes into the tuple.
 *
 * Timing: a request due at source time t is sent at
 *   start + (t - t0) / speedup
 * where t0 is the first request's time and start the moment it was submitted;
 * speedup 0 sends as fast as the target answers. Lag behind this schedule is
 * measured per request.
 *
 * Memory is bounded: submit() blocks the input side while max_pending
 * requests are queued, in flight or waiting for their tuple (backpressure
 * instead of growth; it resumes at 7/8 of the limit). Requests that only wait
 * for their source response are not counted: that needs more input (about
 * one per open source connection). Tuples are written by a tuple thread. */
#ifndef REPLAY_SEND_ENGINE_H
#define REPLAY_SEND_ENGINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/http.h>

#include "accum/accum.h"
#include "transform/transform.h"
#include "tuple/tuple.h"

struct replay_engine_cfg {
    const struct sm_http_opts *target;   /* target URL, TLS, auth, timeouts, retries (borrowed) */
    unsigned workers;                    /* requests in flight at once; default 256 */
    unsigned send_threads;               /* sender loops; 0: the online CPUs, at most 4 (never more than workers) */
    double speedup;                      /* 0: unlimited */
    /* queued + in flight; 0: 10000, or at speedup 0 with a blocking input
     * (files) 8 per worker within [512, 10000]: reading further ahead than
     * the senders can use only spreads the requests' memory over more cache
     * than the machine has */
    size_t max_pending;
    /* A target that cannot be reached (connect refused, unreachable, connect
     * timeout: the request never left) is retried beyond the target's
     * max_retries for up to this long from a request's first attempt, probing
     * at least every 5 s: an outage shorter than this loses no request (the
     * input waits behind --max-pending). 0: max_retries only. */
    uint64_t target_down_wait_ms;
    /* Kafka: submitting never waits for room (the input thread must keep
     * polling to stay in its consumer group); the input asks
     * replay_engine_has_room() before each record instead, so one record's
     * requests may go past max_pending. */
    bool input_never_blocks;
    struct replay_transform *transform;  /* borrowed; may be NULL */
    struct replay_tuple_writer *tuples;  /* borrowed; may be NULL */
    /* Optional comparison hook: line holds the tuple serialised so far, a
     * JSON object without its closing brace, parts where the messages the
     * comparison reads sit in it (replay_tuple_cmp_view()); the hook may
     * append members (",\"comparison\":{...}"). One tuple at a time. */
    void (*compare)(void *arg, struct sm_buf *line, const struct replay_tuple_parts *parts);
    void *compare_arg;
    /* At-least-once input (Kafka): called (with the engine lock held; must not
     * call back into the engine) once a request whose origin has a partition
     * is finished: tuple written, or dropped/failed. */
    void (*release)(void *arg, const struct replay_origin *origin);
    void *release_arg;
    /* A request's tuple waits for its source response, which ends with the
     * next request or the close of the source connection. After the target
     * answered, wait at most this long (0: forever), then write the tuple
     * without the source response ("sourceResponseTimedOut": true). */
    uint64_t source_wait_ms;
};

struct replay_engine_stats {
    uint64_t submitted;          /* requests handed to the engine */
    uint64_t sent;               /* requests that got a target response */
    uint64_t target_errors;      /* transport errors/timeouts after retries */
    uint64_t dropped;            /* dropped by a transformation rule */
    uint64_t unparsable;         /* source requests the HTTP parser rejected */
    uint64_t transform_errors;
    uint64_t attempts;           /* target attempts including retries */
    uint64_t tuples;             /* tuples handed to the tuple writer */
    uint64_t tuples_lost;        /* of those, not written (replay_tuple_writer_lost: disk full, ...) */
    uint64_t status_match, status_differ;
    uint64_t pending;            /* queued + in flight now */
    uint64_t source_waits_expired;   /* tuples written without the source response */
    uint64_t bulk_item_retries;      /* _bulk items resent after a retryable item error */
    uint64_t down_retries;           /* attempts past max_retries on an unreachable target */
    uint64_t lag_p50_us, lag_p99_us, lag_max_us;   /* send time behind schedule */
};

struct replay_engine;

struct replay_engine *replay_engine_new(const struct replay_engine_cfg *cfg, char *err, size_t errlen);
/* Accumulator callbacks: plug these into struct replay_accum_cb with the engine as arg. */
void replay_engine_on_request(void *engine, const struct replay_msg *req);
void replay_engine_on_response(void *engine, const struct replay_msg *resp, enum replay_resp_end end);
void replay_engine_on_closed(void *engine, const char *node_id, const char *conn_id, bool expired);
/* Writes the tuples of requests sent whose source response did not come
 * within source_wait_ms (all of them when all is true: shutdown). Call it
 * periodically from the input thread (the one feeding the accumulator). */
void replay_engine_expire_source_waits(struct replay_engine *eng, bool all);
/* Flushes the tuple writer (under the engine lock). */
int replay_engine_flush_tuples(struct replay_engine *eng);
/* Requests queued or in flight. */
uint64_t replay_engine_pending(struct replay_engine *eng);
/* Whether the input may read more (input_never_blocks): false from the
 * moment max_pending is reached until pending is back down to 7/8 of it,
 * as a blocking submit would wait. */
bool replay_engine_has_room(struct replay_engine *eng);
/* Stops holding requests for an unreachable target (target_down_wait): they
 * fail at their next attempt. Async-signal-safe (one atomic store): call it
 * from a SIGTERM handler, so shutdown does not wait out target_down_wait. */
void replay_engine_stop_holding(struct replay_engine *eng);
/* Waits until every submitted request is sent and its tuple written. */
void replay_engine_drain(struct replay_engine *eng);
void replay_engine_stats(struct replay_engine *eng, struct replay_engine_stats *out);
/* Stops the workers (after drain, or abandoning what is queued) and frees. */
void replay_engine_free(struct replay_engine *eng);

#endif
