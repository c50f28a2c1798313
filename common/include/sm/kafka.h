/* Kafka helpers on librdkafka shared by the agent (producer) and the replayer
 * (consumer): configuration with every librdkafka property passed through
 * (TLS and SASL therefore work), librdkafka logs routed into <sm/log.h>, the
 * shared --kafka-* flags, and producer/consumer constructors with searchmig's
 * defaults. See docs/records.md for what goes into the topic. */
#ifndef SM_KAFKA_H
#define SM_KAFKA_H
#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include <sm/opt.h>

#define SM_KAFKA_DEFAULT_TOPIC "logging-traffic-topic"

/* The shared Kafka settings; embed one in a tool's config struct and add the
 * table entries with SM_KAFKA_OPTS / SM_KAFKA_CONSUMER_OPTS. Freed by
 * sm_opts_free() with the rest of the config. */
struct sm_kafka_opts {
    char *brokers;             /* --kafka-brokers host:port,... */
    char *topic;               /* --kafka-topic (default logging-traffic-topic) */
    struct sm_strlist props;   /* --kafka-property k=v (repeatable) */
    char *props_file;          /* --kafka-properties-file FILE */
    char *group_id;            /* --kafka-group-id (consumers) */
};

/* Option-table fragment: `SM_KAFKA_OPTS(struct agent_config, kafka),` inside
 * a struct sm_opt table, where `kafka` is a struct sm_kafka_opts member. */
#define SM_KAFKA_OPTS(type, member) \
    { "kafka-brokers", SM_OPT_STR, offsetof(type, member.brokers), NULL, \
      "Kafka bootstrap servers (host:port,...)", "SM_KAFKA_BROKERS", 0, "HOSTS" }, \
    { "kafka-topic", SM_OPT_STR, offsetof(type, member.topic), SM_KAFKA_DEFAULT_TOPIC, \
      "Kafka topic of the TrafficStream records", NULL, 0, "TOPIC" }, \
    { "kafka-property", SM_OPT_KV, offsetof(type, member.props), NULL, \
      "librdkafka property key=value, repeatable (security.protocol, sasl.*, ssl.*, ...); " \
      "a value @FILE is read from FILE", NULL, 0, "KEY=VALUE" }, \
    { "kafka-properties-file", SM_OPT_STR, offsetof(type, member.props_file), NULL, \
      "librdkafka properties in a Java-style properties file (key=value lines)", NULL, 0, "FILE" }
/* Producer and consumer settings plus --kafka-group-id. */
#define SM_KAFKA_CONSUMER_OPTS(type, member, default_group) \
    SM_KAFKA_OPTS(type, member), \
    { "kafka-group-id", SM_OPT_STR, offsetof(type, member.group_id), default_group, \
      "Kafka consumer group id", NULL, 0, "GROUP" }

/* New librdkafka configuration: bootstrap.servers = brokers (if not NULL),
 * then the properties file (if not NULL), then props ("key=value" entries;
 * later entries win, so the command line overrides the file). A value written
 * "@FILE" (or "file:FILE") is read from FILE (sm_secret_resolve), so secrets
 * such as sasl.password stay off the command line. Installs a log callback
 * sending librdkafka's logs to sm_log (level mapped from syslog levels;
 * `debug` contexts at SM_DBG_KAFKA). Unknown properties or bad values are
 * errors naming the property (and file:line); values of secret-looking keys
 * are never echoed. Returns NULL on error. Caller owns the conf (passes it
 * to rd_kafka_new() or a helper below, or rd_kafka_conf_destroy()). */
rd_kafka_conf_t *sm_kafka_conf_new(const char *brokers, const struct sm_strlist *props,
                                   const char *props_file, char *err, size_t errlen);

/* Sets one property with searchmig's error text. SM_OK or SM_ECONFIG. */
int sm_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val,
                      char *err, size_t errlen);

/* Producer configuration: first searchmig's defaults, then the user's
 * properties over them: enable.idempotence=true, acks=all,
 * compression.type=lz4, linger.ms=5, message.max.bytes=1048588 (the
 * broker's default limit, so a 1 MiB record fits). Register callbacks (rd_kafka_conf_set_dr_msg_cb, opaque) on the
 * result before sm_kafka_producer_new(). NULL on error. */
rd_kafka_conf_t *sm_kafka_producer_conf_new(const struct sm_kafka_opts *ko, char *err, size_t errlen);
/* Consumer configuration: defaults group.id = ko->group_id (required),
 * enable.auto.commit=false, enable.auto.offset.store=false,
 * auto.offset.reset=earliest, then the user's properties. NULL on error. */
rd_kafka_conf_t *sm_kafka_consumer_conf_new(const struct sm_kafka_opts *ko, char *err, size_t errlen);

/* Creates the producer. Takes ownership of conf in every case (destroys it
 * on failure). NULL on error with err filled. */
rd_kafka_t *sm_kafka_producer_new(rd_kafka_conf_t *conf, char *err, size_t errlen);
/* Creates the consumer, redirects the main queue to the consumer queue and
 * subscribes to topics (comma-separated). Takes ownership of conf in every
 * case. NULL on error. */
rd_kafka_t *sm_kafka_consumer_new(rd_kafka_conf_t *conf, const char *topics, char *err, size_t errlen);

/* Produces one record: key (may be NULL), value copied. Returns SM_OK,
 * SM_EFULL when librdkafka's queue is full (caller spools or retries after
 * rd_kafka_poll), SM_EIO otherwise. msg_opaque reaches the delivery report. */
int sm_kafka_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, void *msg_opaque, char *err, size_t errlen);

/* librdkafka's description of err (never NULL). */
const char *sm_kafka_err_str(rd_kafka_resp_err_t err);
/* Maps a librdkafka error to enum sm_err: queue full -> SM_EFULL, timeouts ->
 * SM_ETIMEOUT, retriable/transport errors -> SM_EAGAIN, invalid config or
 * arguments -> SM_ECONFIG, message too large -> SM_EPROTO, others -> SM_EIO. */
int sm_kafka_err_to_sm(rd_kafka_resp_err_t err);

/* True if key names a secret whose value must not be echoed. */
bool sm_kafka_key_is_secret(const char *key);

#endif
