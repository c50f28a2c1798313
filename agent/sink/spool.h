/* Bounded on-disk spool for the Kafka sink (docs/kafka.md).
 *
 * Records that cannot go to Kafka now are appended to segment files
 * `spool-<first id, 16 hex>.seg` in one directory. A segment starts with the
 * 8-byte magic "SMSPOOL1"; each record is framed as
 *
 *   u32 LE payload length | u32 LE CRC-32 (zlib) of the payload | payload
 *   payload = u16 LE key length | u8 flags (1 = last record) | key | value
 *
 * Records get increasing ids and are handed out again in append order
 * (peek/advance) until acknowledged. A segment is deleted once every record in
 * it is acknowledged. Crash safety: at open every segment is scanned, and a
 * torn or corrupt tail (short frame or CRC mismatch) is cut off with
 * ftruncate(); intact records are handed out again (acknowledgements are not
 * persisted, so records acknowledged before a crash may be sent twice).
 * The spool never holds more than max_bytes of segment files: append returns
 * SM_EFULL instead. Per-key counts of unacknowledged records let the caller
 * keep a key's later records behind its spooled ones.
 *
 * Not thread-safe: one thread at a time. */
#ifndef AGENT_SINK_SPOOL_H
#define AGENT_SINK_SPOOL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_SPOOL_DEFAULT_DIR "/var/lib/searchmig/spool"
#define AGENT_SPOOL_DEFAULT_MAX (1ull << 30)
#define AGENT_SPOOL_MAGIC "SMSPOOL1"
#define AGENT_SPOOL_FRAME 8u        /* length + CRC */

struct agent_spool;

/* One record handed out by agent_spool_peek(); buffers belong to the spool
 * and stay valid until the next peek/advance/close. */
struct agent_spool_rec {
    uint64_t id;
    const char *key;             /* NUL-terminated */
    size_t key_len;
    const uint8_t *data;
    size_t len;
    bool last;
};

struct agent_spool_stats {
    uint64_t records;            /* unacknowledged records on disk */
    uint64_t bytes;              /* segment file bytes on disk */
    uint64_t segments;
    uint64_t appended, appended_bytes;   /* since open */
    uint64_t acked;
    uint64_t refused_full;       /* appends refused: over max_bytes */
    uint64_t recovered;          /* intact records found at open */
    uint64_t truncated_bytes;    /* torn/corrupt tail bytes cut at open */
};

/* Opens (creating dir if needed) and recovers existing segments. max_bytes 0:
 * AGENT_SPOOL_DEFAULT_MAX; segment_bytes 0: max_bytes/16 clamped to
 * [64 KiB, 64 MiB]. SM_OK, SM_EIO, SM_ENOMEM, SM_ECONFIG. */
int agent_spool_open(const char *dir, uint64_t max_bytes, uint64_t segment_bytes,
                     struct agent_spool **out, char *err, size_t errlen);
/* Appends one record. SM_OK, SM_EFULL (would exceed max_bytes), SM_EIO. */
int agent_spool_append(struct agent_spool *sp, const char *key, size_t key_len,
                       const uint8_t *data, size_t len, bool last);
/* Writes recs (in order) as a new segment placed before every record in the
 * spool (ids below the first one): used at close for records taken back from
 * librdkafka, which precede the spooled records of their keys. Returns how
 * many were written (stops at the size cap or an error). */
size_t agent_spool_prepend(struct agent_spool *sp, const struct agent_spool_rec *recs, size_t n);
/* Next record not yet handed out (and not acknowledged): SM_OK, SM_EEOF when
 * none, SM_EIO/SM_ECORRUPT if the file went bad (the record is skipped). */
int agent_spool_peek(struct agent_spool *sp, struct agent_spool_rec *rec);
/* Marks the record last peeked as handed out. */
void agent_spool_advance(struct agent_spool *sp);
/* Acknowledges a record; deletes segments that become fully acknowledged. */
void agent_spool_ack(struct agent_spool *sp, uint64_t id);
/* Hands out again every unacknowledged record that was handed out. */
void agent_spool_rewind(struct agent_spool *sp);
/* True while key has unacknowledged records in the spool. */
bool agent_spool_has_key(const struct agent_spool *sp, const char *key, size_t key_len);
/* Unacknowledged records not handed out yet. */
uint64_t agent_spool_unsent(const struct agent_spool *sp);
/* True if a record of this size would not fit now. */
bool agent_spool_would_overflow(const struct agent_spool *sp, size_t key_len, size_t len);
/* fsync()s the segment being written. */
int agent_spool_sync(struct agent_spool *sp);
void agent_spool_stats(const struct agent_spool *sp, struct agent_spool_stats *out);
const char *agent_spool_dir(const struct agent_spool *sp);
void agent_spool_close(struct agent_spool *sp);   /* syncs; NULL is a no-op */

#endif
