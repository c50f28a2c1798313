/* TrafficStream records: the Migration Assistant's capture format
 * (common/proto/TrafficCaptureStream.proto, docs/records.md).
 *
 * The message structs are protobuf-c's generated ones (TrafficStream,
 * TrafficObservation, ...; fields in lower case: ts->connectionid,
 * ts->substream[i]->read->data). This header adds what every user needs on
 * top of them: building, encoding, decoding with a size cap, observation
 * accessors, a text dump, and the line-oriented file forms.
 *
 * Memory: every TrafficStream returned by sm_ts_new() or sm_ts_decode() is one
 * tree allocated through sm_malloc() and released with sm_ts_free(). Messages
 * built by hand with the generated *__INIT macros may be encoded too, but are
 * freed by whoever built them.
 *
 * proto3 compatibility: upstream is proto3, ours proto2 (see the .proto). The
 * builders below never set a "has_" flag for a default value (empty bytes,
 * 0, false), so what we write is byte-identical to what proto3 writes. */
#ifndef SM_TS_H
#define SM_TS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "TrafficCaptureStream.pb-c.h"

/* Default maximum encoded size of one record (one Kafka message). */
#define SM_TS_RECORD_MAX_DEFAULT   (1024u * 1024u)
/* Largest encoded TrafficStream sm_ts_decode() accepts. */
#define SM_TS_DECODE_MAX           (16u * 1024u * 1024u)
/* connectionId / nodeId limit of the format (bytes). */
#define SM_TS_ID_MAX               100u

/* Observation kinds; values are the proto field numbers of the Capture oneof. */
enum sm_ts_kind {
    SM_TS_NONE                  = 0,   /* capture not set (or unknown to us) */
    SM_TS_BIND                  = 2,
    SM_TS_CONNECT               = 3,
    SM_TS_READ                  = 4,
    SM_TS_READ_SEGMENT          = 5,
    SM_TS_REQUEST_RELEASED      = 6,   /* requestReleasedDownstream */
    SM_TS_WRITE                 = 8,
    SM_TS_WRITE_SEGMENT         = 9,
    SM_TS_DISCONNECT            = 10,
    SM_TS_CLOSE                 = 11,
    SM_TS_CONNECTION_EXCEPTION  = 12,
    SM_TS_SEGMENT_END           = 14,
    SM_TS_END_OF_MESSAGE        = 15,  /* endOfMessageIndicator */
    SM_TS_REQUEST_DROPPED       = 16,
};

/* ---- building ------------------------------------------------------------ */

/* New empty record; ids are copied (NULL or "" leave the field unset).
 * Returns NULL on allocation failure. Free with sm_ts_free(). */
TrafficStream *sm_ts_new(const char *connection_id, const char *node_id);
/* Frees a record from sm_ts_new()/sm_ts_decode(); NULL is a no-op. */
void sm_ts_free(TrafficStream *ts);

/* Appends one observation timestamped time_ns (ns since the Unix epoch).
 * data/len: payload of READ, WRITE, READ_SEGMENT, WRITE_SEGMENT (copied; len 0
 * leaves the field absent as proto3 does) or the message text of
 * CONNECTION_EXCEPTION (len bytes, copied). Ignored for other kinds.
 * For END_OF_MESSAGE use sm_ts_add_eom(). Returns the new observation (owned
 * by ts) or NULL on allocation failure or an unknown kind. */
TrafficObservation *sm_ts_add(TrafficStream *ts, enum sm_ts_kind kind, int64_t time_ns,
                              const void *data, size_t len);
/* Appends an endOfMessageIndicator; a negative length leaves that field absent. */
TrafficObservation *sm_ts_add_eom(TrafficStream *ts, int64_t time_ns,
                                  int32_t first_line_len, int32_t headers_len);
/* Index: last=false sets `number`, last=true `numberOfThisLastChunk`. */
void sm_ts_set_index(TrafficStream *ts, int32_t index, bool last);
/* priorRequestsReceived / lastObservationWasUnterminatedRead with explicit
 * presence (the fields are `optional` upstream). */
void sm_ts_set_prior_requests(TrafficStream *ts, int32_t prior);
void sm_ts_set_unterminated_read(TrafficStream *ts, bool unterminated);

/* Upper bound of the bytes one observation carrying len payload bytes adds to
 * a record's encoded size (tag, length prefix, timestamp, capture). Record
 * builders use it to decide when a chunk must be cut into segments. */
size_t sm_ts_obs_max_size(size_t len);

/* ---- encoding / decoding ------------------------------------------------- */

/* Exact encoded size of ts. */
size_t sm_ts_encoded_size(const TrafficStream *ts);
/* Encodes ts into out (cap bytes). SM_OK and *outlen, or SM_EFULL if cap is
 * smaller than sm_ts_encoded_size(ts) (nothing written then). */
int sm_ts_encode(const TrafficStream *ts, uint8_t *out, size_t cap, size_t *outlen);
/* Encodes into a new sm_malloc'd buffer (*out, caller frees with sm_free). */
int sm_ts_encode_alloc(const TrafficStream *ts, uint8_t **out, size_t *outlen);

/* Decodes len bytes. On SM_OK *out is a new record (free with sm_ts_free).
 * Inputs longer than SM_TS_DECODE_MAX are refused (SM_EFULL); bytes that are
 * not a TrafficStream give SM_ECORRUPT; SM_ENOMEM. err names the problem. */
int sm_ts_decode(const uint8_t *data, size_t len, TrafficStream **out, char *err, size_t errlen);
/* Same with an explicit cap instead of SM_TS_DECODE_MAX. */
int sm_ts_decode_max(const uint8_t *data, size_t len, size_t max, TrafficStream **out,
                     char *err, size_t errlen);

/* Reusable memory for decoded records, for readers that are done with a
 * record before they decode the next: sm_ts_decode_in() places the record in
 * the arena (one allocation per record at most, none once the arena has grown
 * to the records' size, instead of one per message and bytes value) and ends
 * the life of the record decoded into it before. Never sm_ts_free() such a
 * record. NULL on allocation failure. */
struct sm_ts_arena;
struct sm_ts_arena *sm_ts_arena_new(void);
void sm_ts_arena_free(struct sm_ts_arena *a);
/* sm_ts_decode_max() into a (errors alike; *out NULL on error). Bytes values
 * (the observations' data) may point into data: keep data unchanged while
 * the record is in use. */
int sm_ts_decode_in(struct sm_ts_arena *a, const uint8_t *data, size_t len, size_t max, TrafficStream **out,
                    char *err, size_t errlen);
/* The fast path sm_ts_decode_in() tries first: records as writers make them
 * (each singular field at most once, no unknown fields) in one pass. SM_OK;
 * SM_EAGAIN when the record needs protobuf-c (nothing decoded, no verdict on
 * its validity); SM_ENOMEM. */
int sm_ts_decode_fast(struct sm_ts_arena *a, const uint8_t *data, size_t len, TrafficStream **out);

/* ---- streaming encoder ----------------------------------------------------- */

/* Writes one encoded TrafficStream straight into a growing buffer, without
 * building the message tree: one copy of each payload, no allocation per
 * observation, no sizing pass (the agent's record builder: docs/records.md).
 * The bytes are exactly those sm_ts_encode() writes for the same record
 * built with sm_ts_new()/sm_ts_add()/sm_ts_add_eom() and the setters
 * (test_ts compares them on generated records): fields in field-number
 * order, connectionId, the observations, the index, nodeId,
 * priorRequestsReceived, lastObservationWasUnterminatedRead.
 *
 * Usage: sm_ts_enc_init() once; per record sm_ts_enc_begin(), any number of
 * sm_ts_enc_add*()/sm_ts_enc_extend(), then sm_ts_enc_finish() (hands the
 * bytes over) or sm_ts_enc_reset() (drops them); sm_ts_enc_free() at the end.
 * After SM_ENOMEM the record is incomplete: reset it. The fields are
 * read-only for callers. */
struct sm_ts_enc {
    uint8_t *buf;            /* sm_malloc'd, NULL when empty */
    size_t len, cap;
    size_t n_obs;            /* observations in the record */
    /* the last observation, which sm_ts_enc_extend() may grow */
    size_t last_off;         /* offset of its subStream tag */
    size_t last_hdr;         /* bytes before its payload */
    size_t last_data;        /* payload bytes */
    enum sm_ts_kind last_kind;
    int64_t last_ns;
};

void sm_ts_enc_init(struct sm_ts_enc *e);
/* Starts a record (dropping any unfinished one). connection_id NULL or ""
 * leaves the field absent. SM_OK or SM_ENOMEM. */
int sm_ts_enc_begin(struct sm_ts_enc *e, const char *connection_id);
/* As sm_ts_add() (same kinds, same payload rules): SM_OK, SM_ENOMEM, or
 * SM_EINVAL for an unknown kind or END_OF_MESSAGE. */
int sm_ts_enc_add(struct sm_ts_enc *e, enum sm_ts_kind kind, int64_t time_ns, const void *data, size_t len);
/* As sm_ts_add_eom(). SM_OK or SM_ENOMEM. */
int sm_ts_enc_add_eom(struct sm_ts_enc *e, int64_t time_ns, int32_t first_line_len, int32_t headers_len);
/* Appends len bytes to the payload of the last observation if it is of kind
 * (SM_TS_READ or SM_TS_WRITE) with timestamp time_ns: the record then reads
 * as if that observation had been added with all the bytes. SM_OK,
 * SM_EINVAL (no such last observation: nothing changed) or SM_ENOMEM. */
int sm_ts_enc_extend(struct sm_ts_enc *e, enum sm_ts_kind kind, int64_t time_ns, const void *data, size_t len);
/* Appends the index (`number`, or `numberOfThisLastChunk` when last), nodeId
 * (NULL or "": absent), priorRequestsReceived and
 * lastObservationWasUnterminatedRead (each absent when negative) and hands
 * the record over: *out is sm_malloc'd (caller frees with sm_free), *outlen
 * its size; e is empty again. SM_OK or SM_ENOMEM (record dropped). */
int sm_ts_enc_finish(struct sm_ts_enc *e, int32_t index, bool last, const char *node_id, int32_t prior,
                     int unterminated, uint8_t **out, size_t *outlen);
/* Makes the buffer hold at least cap bytes (contents kept), so that a record
 * known to grow large is not copied by each doubling. SM_OK or SM_ENOMEM. */
int sm_ts_enc_reserve(struct sm_ts_enc *e, size_t cap);
/* Drops the record being built (the buffer is kept for the next one). */
void sm_ts_enc_reset(struct sm_ts_enc *e);
/* Releases the buffer; e can be begun again. */
void sm_ts_enc_free(struct sm_ts_enc *e);

/* ---- reading observations ------------------------------------------------ */

enum sm_ts_kind sm_ts_obs_kind(const TrafficObservation *obs);
/* "read", "readSegment", "endOfMessageIndicator", ... (the proto field name);
 * "unset" for SM_TS_NONE, "unknown" otherwise. */
const char *sm_ts_kind_name(enum sm_ts_kind kind);
/* Timestamp in ns since the epoch; false (and *ns = 0) when absent. */
bool sm_ts_obs_time_ns(const TrafficObservation *obs, int64_t *ns);
/* Payload of read/write/readSegment/writeSegment (data may be NULL with len 0
 * when empty) and the message of connectionException. False for other kinds. */
bool sm_ts_obs_data(const TrafficObservation *obs, const uint8_t **data, size_t *len);
/* endOfMessageIndicator lengths, -1 when a field is absent. False for other kinds. */
bool sm_ts_obs_eom(const TrafficObservation *obs, int32_t *first_line_len, int32_t *headers_len);
/* Record index: returns false when neither oneof member is set. */
bool sm_ts_index(const TrafficStream *ts, int32_t *index, bool *last);

/* Writes ts as protobuf text format, field names as in the .proto, as
 * `protoc --decode=TrafficStream` prints it (bytes as C-escaped strings). */
void sm_ts_dump(FILE *out, const TrafficStream *ts);

/* ---- file forms ---------------------------------------------------------- */

/* Writer: one base64 TrafficStream per line ("\n"), or "<key>|<base64>" lines
 * when with_key is set (the key is the connectionId), optionally gzip, with
 * rotation by size. */
struct sm_ts_writer;

struct sm_ts_writer_conf {
    const char *path;        /* file to write; "-" = stdout (no rotation, no rename) */
    bool gzip;               /* gzip the stream */
    int gzip_level;          /* 1..9, 0 = zlib default */
    bool with_key;           /* "<connectionId>|<base64>" lines */
    uint64_t rotate_bytes;   /* 0: one file at path (appended to). >0: rotated files (see below) */
    /* Called after a file is complete (at rotation and at close), with its
     * final path, size on disk and record count. May be NULL. */
    void (*on_close)(void *arg, const char *path, uint64_t bytes, uint64_t records);
    void *arg;
    /* gzip: after a failed write (the stream is broken) the next file is tried no
     * sooner than this (0: 10 s); records written before that fail (SM_EIO). */
    uint64_t gz_retry_ms;
};
/* Rotation: with rotate_bytes > 0 files are named <path>.<NNNNNN>, or with a
 * trailing ".gz" in path <stem>.<NNNNNN>.gz, NNNNNN counting from 000001; a
 * file is closed once it holds at least rotate_bytes of lines (counted before
 * compression, so gzip files are smaller on disk; records are never split)
 * and the next record opens the following number.
 * Existing files are never overwritten: numbering starts after the highest
 * present. Returns NULL on error (err filled). */
struct sm_ts_writer *sm_ts_writer_open(const struct sm_ts_writer_conf *conf, char *err, size_t errlen);
/* Encodes and writes one record. SM_OK, SM_EIO, SM_ENOMEM. */
int sm_ts_writer_write(struct sm_ts_writer *w, const TrafficStream *ts, char *err, size_t errlen);
/* Writes an already encoded record; key used when with_key (NULL: empty key). */
int sm_ts_writer_write_raw(struct sm_ts_writer *w, const char *key, const uint8_t *data, size_t len,
                           char *err, size_t errlen);
/* Flushes buffers to the OS (gzip: Z_SYNC_FLUSH, readable up to here). */
/* Records that write()/write_raw() accepted (SM_OK) and that were then lost
 * because writing their batch failed (disk full, I/O error): cumulative. A
 * failed batch is cut off the file again (plain regular files), so the file
 * holds whole lines only. */
uint64_t sm_ts_writer_lost(const struct sm_ts_writer *w);
int sm_ts_writer_flush(struct sm_ts_writer *w, char *err, size_t errlen);
/* Path of the file currently written (NULL if none open yet). */
const char *sm_ts_writer_path(const struct sm_ts_writer *w);
/* Finishes the current file and frees w (NULL is a no-op). Returns the first
 * error seen while closing. */
int sm_ts_writer_close(struct sm_ts_writer *w, char *err, size_t errlen);

/* Reader: accepts plain text or gzip (auto-detected by its magic, concatenated
 * members allowed), lines of "<base64>" or "<key>|<base64>" (split at the last
 * '|'), CRLF or LF, blank lines skipped. A malformed line (bad base64, not a
 * TrafficStream, longer than max_line) is counted, reported with file:line
 * (to the bad-line callback, or a rate-limited warning) and skipped. */
struct sm_ts_reader;

struct sm_ts_reader_stats {
    uint64_t lines;        /* lines seen, blank ones included */
    uint64_t records;      /* records returned */
    uint64_t malformed;    /* lines skipped as malformed */
    uint64_t last_malformed_line;  /* line number of the last one, 0 if none */
    bool gzip;             /* input was gzip */
    bool truncated;        /* gzip stream ended early (file still being written?) */
};

typedef void (*sm_ts_bad_line_cb)(void *arg, const char *name, uint64_t line, const char *reason);

/* path "-" reads stdin. Returns NULL on error (err names the file). */
struct sm_ts_reader *sm_ts_reader_open(const char *path, char *err, size_t errlen);
/* Reads from a file descriptor (not closed by the reader); name is used in messages. */
struct sm_ts_reader *sm_ts_reader_open_fd(int fd, const char *name, char *err, size_t errlen);
/* Reads from memory (borrowed until sm_ts_reader_close). */
struct sm_ts_reader *sm_ts_reader_open_mem(const void *data, size_t len, const char *name,
                                           char *err, size_t errlen);
/* Longest line accepted (default: base64 of SM_TS_DECODE_MAX plus a key). */
void sm_ts_reader_set_max_line(struct sm_ts_reader *r, size_t max_line);
/* Bad-line callback; replaces the default rate-limited sm_log_warn. */
void sm_ts_reader_set_bad_line_cb(struct sm_ts_reader *r, sm_ts_bad_line_cb cb, void *arg);

/* Next record. SM_OK: *ts is new (caller frees with sm_ts_free); if key is
 * not NULL, *key points to the line's key (NUL-terminated, "" when the line
 * had none), valid until the next call; if line is not NULL it receives the
 * line number. SM_EEOF at the end. SM_EIO/SM_ECORRUPT when the input itself
 * cannot be read further (I/O error, corrupt gzip data): err says where;
 * records before it were returned. */
int sm_ts_reader_next(struct sm_ts_reader *r, TrafficStream **ts, const char **key,
                      uint64_t *line, char *err, size_t errlen);
/* Same, decoding into a (sm_ts_decode_in): *ts lives until the next decode
 * into a; not freed by the caller. */
int sm_ts_reader_next_in(struct sm_ts_reader *r, struct sm_ts_arena *a, TrafficStream **ts, const char **key,
                         uint64_t *line, char *err, size_t errlen);
/* Same but returns the encoded bytes without decoding them (valid until the
 * next call); only base64 is checked, so decode errors are the caller's. */
int sm_ts_reader_next_raw(struct sm_ts_reader *r, const uint8_t **data, size_t *len,
                          const char **key, uint64_t *line, char *err, size_t errlen);
/* Counts a line as malformed (for callers of next_raw whose decode failed). */
void sm_ts_reader_report_bad(struct sm_ts_reader *r, uint64_t line, const char *reason);
void sm_ts_reader_stats(const struct sm_ts_reader *r, struct sm_ts_reader_stats *out);
void sm_ts_reader_close(struct sm_ts_reader *r);

#endif
