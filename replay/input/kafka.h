/* Kafka input for searchmig-replay (docs/kafka.md): a consumer-group member
 * reading TrafficStream records, feeding the accumulator with each record's
 * origin, committing at-least-once (input/offsets.h), and moving poison
 * records to a dead-letter file.
 *
 *   k = replay_kafka_new(&cfg, err, errlen);           // subscribes
 *   accumulator callbacks: arg k, replay_kafka_on_request/_on_response/_on_closed,
 *                          pin_arg replay_kafka_offsets(k), replay_offsets_pin/_release
 *   engine cfg: release = replay_offsets_release, release_arg = replay_kafka_offsets(k)
 *   replay_kafka_attach(k, acc, eng);
 *   replay_kafka_run(k, &stop_flag);                    // until stop_flag
 *   replay_kafka_shutdown(k, deadline_ms);              // drain, commit, leave the group
 *   replay_kafka_free(k);
 */
#ifndef REPLAY_INPUT_KAFKA_H
#define REPLAY_INPUT_KAFKA_H
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/kafka.h>

#include "accum/accum.h"
#include "input/offsets.h"
#include "send/engine.h"

struct replay_kafka_cfg {
    const struct sm_kafka_opts *kafka;   /* brokers, topic(s), group, properties */
    const char *dead_letter_path;        /* NULL: poison records are only logged */
    uint64_t commit_interval_ms;         /* default 5000 */
    unsigned poison_retries;             /* attempts before dead-lettering; default 3 */
    uint64_t source_wait_ms;             /* end source responses idle this long; default 30 s */
    /* Optional: called on the consuming thread after every poll (at least
     * every 100 ms), e.g. to hand replay_kafka_stats() to other threads. */
    void (*tick)(void *arg);
    void *tick_arg;
};

struct replay_kafka_stats {
    uint64_t records;            /* consumed */
    uint64_t malformed;          /* undecodable or rejected records */
    uint64_t dead_letters;       /* written to the dead-letter file */
    uint64_t dead_letter_errors; /* could not be written there: offset kept uncommitted */
    uint64_t retries;            /* extra attempts on failing records */
    uint64_t commits, commit_errors;
    uint64_t assigned, revoked;  /* partitions, over all rebalances */
    uint64_t duplicates;         /* requests seen again in this process (same id) */
    uint64_t consumer_errors;
    uint64_t pauses;             /* times the partitions were paused (engine full) */
    uint64_t paused_ms;          /* time spent paused (closed pauses) */
};

struct replay_kafka;

struct replay_kafka *replay_kafka_new(const struct replay_kafka_cfg *cfg, char *err, size_t errlen);
struct replay_offsets *replay_kafka_offsets(struct replay_kafka *k);
void replay_kafka_attach(struct replay_kafka *k, struct replay_accum *acc, struct replay_engine *eng);
/* Accumulator callbacks (arg = k): count duplicates, forward to the engine. */
void replay_kafka_on_request(void *k, const struct replay_msg *req);
void replay_kafka_on_response(void *k, const struct replay_msg *resp, enum replay_resp_end end);
void replay_kafka_on_closed(void *k, const char *node_id, const char *conn_id, bool expired);
/* Consumes until *stop; commits every commit_interval. SM_OK or SM_ECONFIG/SM_EIO on a fatal error. */
int replay_kafka_run(struct replay_kafka *k, volatile sig_atomic_t *stop);
/* Stops consuming, waits (until deadline_ms) for requests in the engine,
 * writing tuples still waiting for a source response, commits synchronously
 * and leaves the group. */
void replay_kafka_shutdown(struct replay_kafka *k, uint64_t deadline_ms);
void replay_kafka_stats(struct replay_kafka *k, struct replay_kafka_stats *out);
void replay_kafka_free(struct replay_kafka *k);

#endif
