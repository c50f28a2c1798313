/* Lucene index reader: the latest commit of a Lucene index directory (a
 * shard restored as an rfs_dir, a plain index directory), its segments, and
 * a streaming iterator over the live documents' stored fields.
 *
 * Versions: Lucene 4.x (4.8+ file formats, ES 1.x) through Lucene 10.x. Every
 * file's format is decided from its own header (codec name + version). A
 * format recognised but not verified on real bytes fails with
 * SM_EUNSUPPORTED ("untested Lucene format ...") unless
 * opts.allow_untested is set; unknown formats always fail. See docs/lucene.md.
 *
 * Memory: the index holds the commit (segment list). The iterator holds one
 * segment open at a time: its field infos, live/soft-deleted bitsets
 * (maxDoc / 8 bytes each) and the stored-fields reader (one decompressed
 * chunk); memory is bounded by a segment's chunk, not by the shard.
 *
 * Errors: every function taking err/errlen fills it with a message naming
 * the Lucene file ("_0.si: checksum failed ..."). */
#ifndef RFS_LUCENE_LUCENE_H
#define RFS_LUCENE_LUCENE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rfs_dir;
struct rfs_lucene_index;
struct rfs_lucene_iter;

struct rfs_lucene_opts {
    /* Accept formats that are implemented from documentation but were never
     * checked against real bytes (see docs/lucene.md). Default false. */
    bool allow_untested;
    /* Skip the full CRC32 pass over each segment's .fdt before reading it
     * (headers, footers and every small file are always verified). */
    bool skip_data_checksums;
    /* Instead of that pass: a segment read from its first document has the
     * .fdt CRC32 computed from the chunks as they are decoded and checked
     * when its last document has been read (rfs_lucene_iter_next then fails
     * with SM_ECORRUPT, after the segment's documents were handed out) or by
     * rfs_lucene_iter_finish_checksum(); one read of the data instead of two.
     * A segment entered at a later document is verified first as without it.
     * No effect with skip_data_checksums. */
    bool stream_data_checksums;
    /* The segment an iterator starts in, when it starts after the segment's
     * first document, is not checked: a split range, whose segment is checked
     * by the range that starts at its first document. */
    bool skip_start_checksum;
};

/* When each segment's stored-fields CRC32 is checked (the tools'
 * --segment-checksums): in a pass before its documents (FIRST), from the
 * decoding pass after them (STREAMED), or not at all (OFF). */
enum rfs_lu_checksums { RFS_LU_CRC_FIRST, RFS_LU_CRC_STREAMED, RFS_LU_CRC_OFF };
/* "first", "streamed", "off" -> *out; SM_EINVAL for anything else. */
int rfs_lu_checksums_parse(const char *s, enum rfs_lu_checksums *out);
/* Sets opts' skip_data_checksums / stream_data_checksums for mode. */
void rfs_lu_checksums_apply(enum rfs_lu_checksums mode, struct rfs_lucene_opts *opts);

/* Opens the latest commit (segments_N with the largest N) of dir and reads
 * every segment's .si. dir is borrowed and must outlive the index. opts may
 * be NULL (defaults). Returns SM_OK, SM_ENOTFOUND (no segments_N),
 * SM_ECORRUPT, SM_EUNSUPPORTED, SM_EIO, SM_ENOMEM. */
int rfs_lucene_open(struct rfs_dir *dir, const struct rfs_lucene_opts *opts,
                    struct rfs_lucene_index **out, char *err, size_t errlen);
void rfs_lucene_close(struct rfs_lucene_index *idx);     /* NULL-safe */

struct rfs_lucene_version { int major, minor, bugfix; };

struct rfs_lucene_commit_info {
    const char *file;                   /* "segments_3" */
    int64_t generation;
    int format;                         /* segments_N format (0..10) */
    struct rfs_lucene_version lucene_version;   /* writer of the commit (format >= 6, else 0.0.0) */
    int created_major;                  /* -1 when not recorded (format < 7) */
    size_t n_segments;
    int64_t max_doc;                    /* sum over segments */
    int64_t live_docs;                  /* sum of maxDoc - delCount - softDelCount */
};
void rfs_lucene_commit_info(const struct rfs_lucene_index *idx, struct rfs_lucene_commit_info *out);
/* Commit user data (ES: "translog_uuid", "history_uuid", "max_seq_no"...); NULL if absent. */
const char *rfs_lucene_user_data(const struct rfs_lucene_index *idx, const char *key);

struct rfs_lucene_segment_info {
    const char *name;                   /* "_0" */
    const char *codec;                  /* segment codec ("Lucene87", "Lucene410") */
    struct rfs_lucene_version version;  /* Lucene version that wrote the segment */
    int max_doc;                        /* documents incl. deleted */
    int del_count;                      /* hard deletes */
    int soft_del_count;                 /* soft deletes (Lucene 7.4+) */
    int live_docs;                      /* max_doc - del_count - soft_del_count */
    bool compound;
    int64_t doc_base;                   /* sum of max_doc of the preceding segments */
};
/* Segment i (0 <= i < n_segments) in segments_N order. Borrowed strings,
 * valid until rfs_lucene_close. Returns SM_EINVAL when i is out of range. */
int rfs_lucene_segment(const struct rfs_lucene_index *idx, size_t i,
                       struct rfs_lucene_segment_info *out);

/* Stored-field types (same values as enum rfs_sf_type). */
enum rfs_lucene_ftype {
    RFS_LUCENE_STRING = 0, RFS_LUCENE_BINARY = 1, RFS_LUCENE_INT = 2,
    RFS_LUCENE_FLOAT = 3, RFS_LUCENE_LONG = 4, RFS_LUCENE_DOUBLE = 5,
};

struct rfs_lucene_field {
    int number;
    const char *name;                   /* from the segment's field infos */
    int type;                           /* enum rfs_lucene_ftype */
    const uint8_t *bytes;               /* STRING (UTF-8, not NUL-terminated) / BINARY */
    size_t len;
    int64_t ival;                       /* INT, LONG */
    double dval;                        /* FLOAT, DOUBLE */
};

/* One live document. Everything is borrowed from the iterator and valid until
 * the next rfs_lucene_iter_next/close call. */
struct rfs_lucene_doc {
    size_t seg;                         /* segment index */
    const char *seg_name;
    int doc;                            /* doc id inside the segment */
    int64_t global_doc;                 /* doc_base + doc */
    size_t n_fields;
    const struct rfs_lucene_field *fields;
};

/* Iterates live documents (not hard-deleted, not soft-deleted) from
 * (seg, doc) on, through all later segments. Resume a checkpoint with the
 * position after the last processed document: (doc.seg, doc.doc + 1).
 * idx must outlive the iterator. */
int rfs_lucene_iter_open(struct rfs_lucene_index *idx, size_t seg, int doc,
                         struct rfs_lucene_iter **out, char *err, size_t errlen);
/* Stops the iterator before segment end_seg (default: the number of
 * segments), so that segments can be split between workers, each with its
 * own iterator on the same index (the index is read-only once open; the
 * rfs_dir must then allow concurrent open/read_at calls, as the fs dir does). */
void rfs_lucene_iter_limit(struct rfs_lucene_iter *it, size_t end_seg);
/* With stream_data_checksums: completes the check of the segment being read
 * (reading the rest of its .fdt) for a caller that stops inside it; SM_OK
 * when nothing is pending, else as rfs_lucene_iter_next's check. */
int rfs_lucene_iter_finish_checksum(struct rfs_lucene_iter *it, char *err, size_t errlen);
/* *out = the next live document, or NULL at the end. Returns SM_OK or an
 * error (the iterator is then unusable). */
int rfs_lucene_iter_next(struct rfs_lucene_iter *it, const struct rfs_lucene_doc **out,
                         char *err, size_t errlen);
void rfs_lucene_iter_close(struct rfs_lucene_iter *it);  /* NULL-safe */

/* Field of the current document by name, or NULL. */
const struct rfs_lucene_field *rfs_lucene_doc_field(const struct rfs_lucene_doc *doc,
                                                    const char *name);

/* Counters of the iterator so far. */
struct rfs_lucene_iter_stats {
    uint64_t docs;                      /* live documents produced */
    uint64_t hard_deleted;              /* skipped: .liv/.del */
    uint64_t soft_deleted;              /* skipped: soft-deletes doc values */
    uint64_t bytes;                     /* stored-field bytes produced */
};
void rfs_lucene_iter_stats(const struct rfs_lucene_iter *it, struct rfs_lucene_iter_stats *out);

#endif
