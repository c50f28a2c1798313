/* Result tuples in the Migration Assistant's layout (docs/capture-format.md
 * section 6): one JSON line per source request with sourceRequest,
 * sourceResponse, targetRequest, targetResponses (one per attempt),
 * connectionId ("<connectionId>.<request index>"), numRequests, numErrors and
 * error; searchmig adds its comparison fields beside them. */
#ifndef REPLAY_TUPLE_H
#define REPLAY_TUPLE_H
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "http/msg.h"

/* JSON of one message: headers as name -> [values], request line or status
 * line fields, and "payload" holding exactly one of inlinedJsonBody,
 * inlinedJsonSequenceBodies, inlinedTextBody, inlinedFormEncodedBody or
 * inlinedBase64Body (after de-chunking and decompression). response_time_ms
 * is added for responses when >= 0. Returns a new reference or NULL. */
json_t *replay_tuple_msg_json(const struct replay_http_msg *msg, int64_t response_time_ms);

/* Decoded payload of a message as JSON (same rules as the "payload" object's
 * value), or NULL when the body is empty. New reference. */
json_t *replay_tuple_payload(const struct replay_http_msg *msg);

/* Appends v as compact JSON to o, byte-identical to
 * json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII). SM_OK or SM_ENOMEM/SM_EFULL. */
struct sm_buf;
int replay_tuple_dump(const json_t *v, struct sm_buf *o);

struct replay_tuple_writer;

/* Writes JSON lines to dir/tuples-NNNNNN.log (.log.gz with gzip), a new file
 * once one holds rotate_bytes (0: never). "-" as dir writes to stdout. */
struct replay_tuple_writer *replay_tuple_writer_open(const char *dir, bool gzip, uint64_t rotate_bytes,
                                                     char *err, size_t errlen);
/* Takes a reference-neutral borrow of tuple. */
int replay_tuple_writer_write(struct replay_tuple_writer *w, const json_t *tuple);
int replay_tuple_writer_flush(struct replay_tuple_writer *w);
uint64_t replay_tuple_writer_count(const struct replay_tuple_writer *w);
int replay_tuple_writer_close(struct replay_tuple_writer *w);

#endif
