/* Accumulator: rebuilds requests and source responses from TrafficStream
 * records, per (nodeId, connectionId), with the Migration Assistant's
 * semantics (docs/capture-format.md section 5):
 *
 *  - records of one connection are taken in index order (`number`, then
 *    `numberOfThisLastChunk`); a missing index is a gap: the request in
 *    progress is dropped (counted) and the stream skips to the next clean
 *    request;
 *  - a stream that starts with lastObservationWasUnterminatedRead skips reads
 *    until a write or an endOfMessage, then waits for the next read;
 *  - read/readSegment bytes build a request; endOfMessageIndicator completes it
 *    (emitted at once); requestDropped forgets it; connectionException drops
 *    the request in progress and keeps the connection;
 *  - write/writeSegment bytes after a request build its source response, ended
 *    by the next read, a close, or expiry;
 *  - close ends the connection; connections idle for longer than the expiry
 *    (source time) are ended as "expired".
 *
 * Request index within the connection = priorRequestsReceived of the first
 * record seen (+1 if that record began with an unterminated read) + requests
 * counted since, so ids match the Migration Assistant's `<connectionId>.<n>`.
 *
 * Memory: each open connection holds at most one request and one response
 * (capped by max_message bytes; larger ones are dropped and counted), and the
 * number of connections is capped (oldest expired first). */
#ifndef REPLAY_ACCUM_H
#define REPLAY_ACCUM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/ts.h>

/* Where a request came from, for at-least-once input (Kafka): the record
 * (partition, offset) its first bytes came in. partition < 0: no origin
 * (file input). gen lets the owner ignore releases from before a rebalance. */
struct replay_origin {
    int32_t partition;
    uint32_t gen;
    int64_t offset;
};

struct replay_msg {
    struct replay_origin origin; /* requests: the pinned origin (see replay_accum_cb.pin) */
    const char *node_id;
    const char *conn_id;
    uint64_t index;              /* request index within the connection (0-based) */
    const uint8_t *data;         /* raw HTTP bytes as captured */
    size_t len;
    int64_t first_ns, last_ns;   /* source timestamps of the first and last byte */
    bool truncated;              /* longer than max_message: data holds the first part */
};

enum replay_resp_end {
    REPLAY_RESP_NEXT_REQUEST,    /* ended by the next read */
    REPLAY_RESP_CLOSED,          /* ended by close */
    REPLAY_RESP_EXPIRED,         /* connection expired while the response was open */
    REPLAY_RESP_BROKEN,          /* a capture gap (connectionException) cut it */
};

struct replay_accum_cb {
    void *arg;
    /* A complete request. Borrowed for the call. */
    void (*request)(void *arg, const struct replay_msg *req);
    /* The source response to request `resp->index` (len may be 0). Borrowed
     * for the call. Exactly one per request, after that request. */
    void (*response)(void *arg, const struct replay_msg *resp, enum replay_resp_end end);
    /* The connection ended (close seen or expired); no more events for it. */
    void (*closed)(void *arg, const char *node_id, const char *conn_id, bool expired);
};

/* Optional, for at-least-once input (replay_accum_set_pins): pin() when a
 * request starts accumulating in a record fed with an origin; unpin() when
 * that request is abandoned (dropped, broken, too large, connection ended). A
 * request that completes carries its pin in replay_msg.origin, and the request
 * callback's owner releases it (the engine does, once the tuple is written). */
struct replay_accum_pins {
    void *arg;
    void (*pin)(void *arg, const struct replay_origin *o);
    void (*unpin)(void *arg, const struct replay_origin *o);
};

struct replay_accum_limits {
    uint64_t expiry_ns;          /* idle expiry in source time; default 360 s */
    size_t max_message;          /* bytes per request/response; default 64 MiB */
    size_t max_connections;      /* default 100000 */
};

struct replay_accum_stats {
    uint64_t records, observations;
    uint64_t requests, responses;
    uint64_t requests_dropped;       /* requestDropped observations honoured */
    uint64_t requests_broken;        /* dropped: gap in record numbers, exception, too large */
    uint64_t skipped_bytes;          /* bytes skipped while joining mid-connection */
    uint64_t out_of_order_records;   /* records with an unexpected index */
    uint64_t duplicate_records;      /* index already seen: ignored */
    uint64_t connections_opened, connections_closed, connections_expired;
    uint64_t exceptions;             /* connectionException observations */
    uint64_t oversize;               /* messages over max_message */
    uint64_t open_connections;
};

struct replay_accum;

struct replay_accum *replay_accum_new(const struct replay_accum_cb *cb,
                                      const struct replay_accum_limits *limits);
void replay_accum_set_pins(struct replay_accum *acc, const struct replay_accum_pins *pins);
/* Feeds one record (borrowed). Returns SM_OK, or SM_EPROTO for a record without
 * connectionId (counted; nothing else happens). */
int replay_accum_feed(struct replay_accum *acc, const TrafficStream *ts);
/* The same, for a record with an origin (origin may be NULL). */
int replay_accum_feed_from(struct replay_accum *acc, const TrafficStream *ts, const struct replay_origin *origin);
/* Ends (as expired) every connection whose last record came from partition;
 * their in-progress requests are dropped WITHOUT unpin (the caller forgets the
 * partition's pins itself). Used when a Kafka partition is revoked. */
void replay_accum_drop_partition(struct replay_accum *acc, int32_t partition);
/* Expires connections idle since before now_ns - expiry (source time). Feeding
 * calls it with the newest timestamp seen, so callers need it only at the end
 * of input or on a timer. */
void replay_accum_expire(struct replay_accum *acc, int64_t now_ns);
/* Live input (Kafka): a source response ends with the next request or the
 * close, so the last response of a quiet keep-alive connection would stay open.
 * This ends (REPLAY_RESP_EXPIRED, connection kept) every response whose
 * connection got no record for idle_ms of wall time; later bytes of that
 * response are skipped. idle_ms 0 ends every open response (shutdown). */
void replay_accum_end_idle_responses(struct replay_accum *acc, uint64_t idle_ms);
/* Ends every open connection as expired (end of input). */
void replay_accum_finish(struct replay_accum *acc);
void replay_accum_stats(const struct replay_accum *acc, struct replay_accum_stats *out);
void replay_accum_free(struct replay_accum *acc);

#endif
