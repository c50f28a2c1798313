/* Bulk layer of the backfill: builds `_bulk` bodies from ES documents and
 * sends them with per-item result handling.
 *
 * Body: for every document an `index` action line
 *   {"index":{"_index":"<target index>","_id":"<id>"[,"_type":"<type>"][,"routing":"<r>"]}}
 * and the _source on one line (JSON as stored, CR/LF bytes turned into
 * spaces; SMILE and CBOR converted to JSON; LZF-compressed ES 1.x sources
 * decompressed; YAML is refused). `index` ops with the document's own id are idempotent, so a
 * resumed work item may re-send documents without creating duplicates.
 *
 * Sending (rfs_bulk_send): the body goes out from the batch buffer
 * (SM_HTTP_DIRECT_BODY: not copied into curl's upload buffer); the request
 * is retried by the HTTP client on 429/502/503/504/connection errors, then
 * again here with capped exponential backoff; per-item results are read: 2xx acknowledged; 429, 5xx and
 * (es_)rejected_execution_exception retried (only those items are re-sent);
 * any other item error (mapper_parsing_exception, ...) is written with the
 * document to the failures file and counted, never retried. */
#ifndef RFS_BACKFILL_BULK_H
#define RFS_BACKFILL_BULK_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sm/buf.h>

#include "lucene/esdoc.h"

struct sm_http_client;

/* Where rejected documents go; shared by all senders (locked). */
struct rfs_bulk_failures {
    FILE *f;                   /* NULL: only counted (and logged) */
    pthread_mutex_t mu;
    uint64_t written;
    uint64_t unrecorded;       /* lines that could not be written (disk full, ...) */
    int last_errno;            /* of the last such failure */
};

/* Appends one line (len bytes, '\n' added) to the failures file under its
 * lock, whole or not at all (sm_fd_append_whole). A write that fails, or a
 * line that could not be built (NULL: out of memory), is counted in
 * unrecorded and logged (at most once per 10 s). */
void rfs_bulk_failures_put(struct rfs_bulk_failures *fl, const char *line, size_t len);

struct rfs_bulk_batch {
    struct sm_buf body;        /* NDJSON */
    size_t ndocs;
    size_t *offs;              /* doc i: body[offs[i], offs[i+1] or body.len) */
    size_t cap;
    uint64_t source_bytes;     /* _source bytes in the body */
    /* Position after the last document (checkpoint once acknowledged). */
    size_t end_seg;
    int end_doc;
    /* Results, filled by rfs_bulk_send. */
    int rc;
    uint64_t acked, rejected, retried_items, requests;
    char err[512];
    bool complete;             /* set by the sender when done */
    struct rfs_bulk_batch *next;
    /* Escaped action line start for prefix_index (kept across resets). */
    char *prefix_index;
    struct sm_buf prefix;
};

void rfs_bulk_batch_init(struct rfs_bulk_batch *b);
void rfs_bulk_batch_reset(struct rfs_bulk_batch *b);
void rfs_bulk_batch_free(struct rfs_bulk_batch *b);

struct rfs_bulk_doc_opts {
    const char *index;         /* target index name */
    const char *type;          /* "_type" to send (typed targets), or NULL */
};

/* Appends one document (action + source lines). Returns SM_OK, or an error
 * for this document (unsupported _source content type, SMILE decode error):
 * the batch is then unchanged. */
int rfs_bulk_add(struct rfs_bulk_batch *b, const struct rfs_bulk_doc_opts *o, const struct rfs_esdoc *d,
                 char *err, size_t errlen);

struct rfs_bulk_send_opts {
    const char *path;          /* "/_bulk" */
    int max_retries;           /* rounds of item/request retries here (after the client's) */
    uint64_t backoff_base_ms, backoff_cap_ms;
    struct rfs_bulk_failures *failures;
    volatile bool *abort;      /* stop retrying when it becomes true (may be NULL) */
};

/* Sends batch b until every document is acknowledged or rejected. Sets
 * b->rc: SM_OK (acked + rejected == ndocs), SM_EAGAIN (retryable errors
 * remained after max_retries rounds), SM_EPROTO (the whole request was
 * refused, e.g. 400/401/403/404), or a transport error; b->err says why. */
void rfs_bulk_send(struct sm_http_client *c, const struct rfs_bulk_send_opts *o, struct rfs_bulk_batch *b);

#endif
