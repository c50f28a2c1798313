/* TrafficStream record builder: one record stream per connection with the
 * Migration Assistant's semantics (docs/agent.md, capture-format.md):
 * read / write observations, endOfMessageIndicator after each complete
 * request, readSegment / writeSegment + segmentEnd when a chunk does not fit
 * the space left in a record, connectionException, close; connectionId,
 * nodeId, priorRequestsReceived and lastObservationWasUnterminatedRead in
 * every record; 1-based `number`, then `numberOfThisLastChunk` on the last.
 *
 * Records are capped by their encoded size and flushed when full, after a
 * complete mutating request (POST, PUT, DELETE, PATCH), at close, after an
 * idle time (capture clock, agent_recorder_tick) and when the bytes held in
 * open records pass a budget (oldest first). A flushed record is encoded and
 * handed to the emit callback.
 *
 * Not thread-safe: one recorder is used from one thread (or under a lock). */
#ifndef AGENT_RECORD_RECORD_H
#define AGENT_RECORD_RECORD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_REC_MAX_RECORD_DEFAULT   (1024u * 1024u)
#define AGENT_REC_MAX_RECORD_MIN       1024u
#define AGENT_REC_IDLE_FLUSH_DEFAULT_NS (1000ull * 1000 * 1000)
#define AGENT_REC_BUDGET_DEFAULT       (256ull * 1024 * 1024)

/* Receives one encoded record. key is the connectionId (NUL-terminated,
 * borrowed for the call). Ownership of data (sm_malloc'd) passes to the
 * callee in every case. last: the connection's final record. */
typedef void (*agent_rec_emit_fn)(void *arg, const char *key, uint8_t *data, size_t len,
                                  bool last);

struct agent_rec_conf {
    const char *node_id;          /* <= 100 bytes (longer is cut); NULL: hostname */
    const char *id_prefix;        /* connectionId prefix; NULL: "<node hash>-<boot id>" */
    size_t max_record;            /* encoded size cap; 0: 1 MiB */
    uint64_t idle_flush_ns;       /* 0: 1 s; UINT64_MAX: never */
    uint64_t budget;              /* bytes held in open records; 0: 256 MiB */
    agent_rec_emit_fn emit;
    void *arg;
};

struct agent_rec_stats {
    uint64_t records, record_bytes;       /* emitted */
    uint64_t flush_full, flush_mutating, flush_idle, flush_budget, flush_close;
    uint64_t segmented_chunks;
    uint64_t eoms, exceptions, closes;
    uint64_t held_bytes;                  /* in open records now */
    uint64_t encode_errors;               /* records lost to allocation failure */
};

struct agent_recorder;
struct agent_rec_conn;

/* New recorder (conf copied, strings too). NULL on error (err filled). */
struct agent_recorder *agent_recorder_new(const struct agent_rec_conf *conf, char *err, size_t errlen);
/* Frees the recorder. Close every connection first; those still holding an
 * open record are closed here (close observation + final record at their
 * last observation time), others would leak. NULL: no-op. */
void agent_recorder_free(struct agent_recorder *rb);
const char *agent_recorder_node_id(const struct agent_recorder *rb);
void agent_recorder_stats(const struct agent_recorder *rb, struct agent_rec_stats *out);
/* Flushes records idle for idle_flush_ns at capture time now_ns. */
void agent_recorder_tick(struct agent_recorder *rb, uint64_t now_ns);
/* Flushes every open record (non-final). */
void agent_recorder_flush_all(struct agent_recorder *rb);

/* New connection with a fresh connectionId. NULL on allocation failure. */
struct agent_rec_conn *agent_rec_open(struct agent_recorder *rb);
const char *agent_rec_conn_id(const struct agent_rec_conn *conn);

/* Observations. All return SM_OK or SM_ENOMEM (the observation is lost and
 * counted). Data is copied. */
int agent_rec_read(struct agent_rec_conn *conn, uint64_t ts_ns, const uint8_t *p, size_t n);
int agent_rec_write(struct agent_rec_conn *conn, uint64_t ts_ns, const uint8_t *p, size_t n);
/* endOfMessageIndicator; mutating: flush the record after it. */
int agent_rec_eom(struct agent_rec_conn *conn, uint64_t ts_ns, int32_t first_line_len,
                  int32_t headers_len, bool mutating);
/* requestDropped: cancels the reads of the request in progress. */
int agent_rec_dropped(struct agent_rec_conn *conn, uint64_t ts_ns);
int agent_rec_exception(struct agent_rec_conn *conn, uint64_t ts_ns, const char *msg);
/* True when reads were written for a request without its EOM yet. */
bool agent_rec_unterminated(const struct agent_rec_conn *conn);
/* close observation, final record, frees conn. A connection that never
 * produced an observation emits nothing. */
void agent_rec_close(struct agent_rec_conn *conn, uint64_t ts_ns);

#endif
