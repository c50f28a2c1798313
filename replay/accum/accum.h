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

struct replay_msg {
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
/* Feeds one record (borrowed). Returns SM_OK, or SM_EPROTO for a record without
 * connectionId (counted; nothing else happens). */
int replay_accum_feed(struct replay_accum *acc, const TrafficStream *ts);
/* Expires connections idle since before now_ns - expiry (source time). Feeding
 * calls it with the newest timestamp seen, so callers need it only at the end
 * of input or on a timer. */
void replay_accum_expire(struct replay_accum *acc, int64_t now_ns);
/* Ends every open connection as expired (end of input). */
void replay_accum_finish(struct replay_accum *acc);
void replay_accum_stats(const struct replay_accum *acc, struct replay_accum_stats *out);
void replay_accum_free(struct replay_accum *acc);

#endif
