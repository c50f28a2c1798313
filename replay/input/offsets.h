/* At-least-once bookkeeping for Kafka input (docs/kafka.md, "Commit rules").
 *
 * Per assigned partition: the last consumed offset and a multiset of pinned
 * offsets (a request being accumulated or in the engine pins the offset of the
 * first record it used). The commit point is min(pinned), or last consumed + 1
 * when nothing is pinned: every record before it has been fully handled.
 * Pins arrive in consumption order, so each partition keeps a sorted deque.
 *
 * Partitions are keys (topic index << 20 | partition). Each assignment gets a
 * new generation; pins and releases from an older generation are ignored, so
 * requests still in flight after a rebalance cannot release a new owner's pins.
 * Thread-safe (releases come from engine workers). */
#ifndef REPLAY_INPUT_OFFSETS_H
#define REPLAY_INPUT_OFFSETS_H
#include <stdbool.h>
#include <stdint.h>

#include "accum/accum.h"

struct replay_offsets;

struct replay_offsets *replay_offsets_new(void);
void replay_offsets_free(struct replay_offsets *o);
/* A partition was assigned: fresh state and generation. */
void replay_offsets_assign(struct replay_offsets *o, int32_t key);
/* A partition was revoked: its state (and pins) are forgotten. */
void replay_offsets_revoke(struct replay_offsets *o, int32_t key);
/* Fills *origin for a record of an assigned partition; false otherwise. */
bool replay_offsets_origin(struct replay_offsets *o, int32_t key, int64_t offset, struct replay_origin *origin);
/* The record at offset is handled (fed, or dead-lettered). */
void replay_offsets_consumed(struct replay_offsets *o, int32_t key, int64_t offset);
/* Pin / release callbacks (accumulator pin/unpin, engine release); arg is o. */
void replay_offsets_pin(void *o, const struct replay_origin *origin);
void replay_offsets_release(void *o, const struct replay_origin *origin);
/* Offset to commit for key, or -1 when nothing was consumed since assignment.
 * *pinned (may be NULL) gets the number of pins outstanding. */
int64_t replay_offsets_commit_point(struct replay_offsets *o, int32_t key, uint64_t *pinned);
/* Pins outstanding over every partition. */
uint64_t replay_offsets_pinned(struct replay_offsets *o);

#endif
