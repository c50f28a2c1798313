/* The Kafka sink (agent/sink/kafka.c): librdkafka producer with an on-disk
 * spool (spool.h); rules in kafka.c and docs/kafka.md. sink.c registers it as
 * kind "kafka" when this header exists. */
#ifndef AGENT_SINK_KAFKA_H
#define AGENT_SINK_KAFKA_H
#include <stdint.h>

#include "sink/sink.h"

extern const struct agent_sink_ops agent_sink_kafka_ops;

/* Records ever moved to the spool by this sink (metrics, tests). */
uint64_t agent_sink_kafka_spooled_total(struct agent_sink *sink);

#endif
