/* Internal interface shared by the Lucene decoders in rfs/lucene/ (segment
 * infos, compound files, field infos, live docs, stored fields, doc values).
 * Not for use outside rfs/lucene/: the public API is lucene.h / esdoc.h.
 *
 * Prefix rfs_lu_ = internal. Stable: other engineers build on this header;
 * only additive changes.
 *
 * 1. DataInput (struct rfs_lu_in): a buffered, bounds-checked reader over an
 *    rfs_blob with Lucene's primitives. Errors are STICKY: a failed read
 *    returns 0 / does nothing and records the first error in in->err with a
 *    message in in->msg that names the file and the offset; later reads are
 *    no-ops. Check in->err (or rfs_lu_in_err()) at convenient points.
 *    Fixed-width ints: rfs_lu_i16/i32/i64 follow in->le (false = big endian,
 *    Lucene <= 8; true = little endian, Lucene >= 9 file bodies); codec
 *    headers, footers and all of segments_N are always BE: use rfs_lu_be32/64.
 * 2. CodecUtil: headers (plain and index headers), footers, streamed CRC32.
 * 3. Decoded structures: segment info, field infos, live docs.
 * 4. A segment context (struct rfs_lu_segctx) that opens a segment's files
 *    by their full name whether they sit in the index directory or inside the
 *    segment's compound file. */
#ifndef RFS_LUCENE_LUCENE_INT_H
#define RFS_LUCENE_LUCENE_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/opt.h>       /* struct sm_strlist */

#include "io/blob.h"

/* ------------------------------------------------------------------ */
/* 1. DataInput                                                         */

#define RFS_LU_BUF_SIZE 8192
#define RFS_LU_MAX_STRING (1u << 20)     /* cap on one String read (1 MiB) */
#define RFS_LU_MAX_COLLECTION 100000     /* cap on map/set entry counts */

struct rfs_lu_in {
    struct rfs_blob *blob;      /* borrowed */
    const char *name;           /* file name for messages (defaults to blob->name) */
    uint64_t len;               /* = blob->size */
    uint64_t pos;               /* logical position of the next byte */
    bool le;                    /* rfs_lu_i16/i32/i64 little endian (Lucene 9+) */
    int err;                    /* sticky first error (enum sm_err), 0 = ok */
    char msg[256];              /* "_0.si @ 42: ..." once err != 0 */
    uint64_t buf_off;           /* blob offset of buf[0] */
    size_t buf_len;             /* valid bytes in buf */
    uint8_t buf[RFS_LU_BUF_SIZE];
};

/* Starts reading blob at offset 0. name may be NULL (blob->name is used);
 * both are borrowed and must outlive in. Never fails. */
void rfs_lu_in_init(struct rfs_lu_in *in, struct rfs_blob *blob, const char *name);
/* Records an error (if none yet) with a printf message; the message is
 * prefixed with "<name> @ <pos>: ". Returns in->err (the first error). */
int  rfs_lu_fail(struct rfs_lu_in *in, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies the sticky error message into err/errlen; returns in->err. */
int  rfs_lu_in_err(const struct rfs_lu_in *in, char *err, size_t errlen);

static inline uint64_t rfs_lu_pos(const struct rfs_lu_in *in) { return in->pos; }
static inline uint64_t rfs_lu_remaining(const struct rfs_lu_in *in)
{
    return in->pos < in->len ? in->len - in->pos : 0;
}
/* Seeks (pos <= len, else SM_ECORRUPT). */
void rfs_lu_seek(struct rfs_lu_in *in, uint64_t pos);
void rfs_lu_skip(struct rfs_lu_in *in, uint64_t n);

/* Copies n bytes to dst (large reads bypass the buffer). On error dst is zeroed. */
void     rfs_lu_bytes(struct rfs_lu_in *in, void *dst, size_t n);
uint8_t  rfs_lu_byte(struct rfs_lu_in *in);
int16_t  rfs_lu_i16(struct rfs_lu_in *in);      /* endianness from in->le */
int32_t  rfs_lu_i32(struct rfs_lu_in *in);
int64_t  rfs_lu_i64(struct rfs_lu_in *in);
int32_t  rfs_lu_be32(struct rfs_lu_in *in);     /* always big endian */
int64_t  rfs_lu_be64(struct rfs_lu_in *in);
int32_t  rfs_lu_le32(struct rfs_lu_in *in);     /* always little endian */
int64_t  rfs_lu_le64(struct rfs_lu_in *in);
int32_t  rfs_lu_vint(struct rfs_lu_in *in);     /* 1-5 bytes; >5 bytes = SM_ECORRUPT */
int64_t  rfs_lu_vlong(struct rfs_lu_in *in);    /* 1-9 bytes, non-negative */
int32_t  rfs_lu_zint(struct rfs_lu_in *in);
int64_t  rfs_lu_zlong(struct rfs_lu_in *in);
/* A VInt that must lie in [min, max]; else SM_ECORRUPT naming what. */
int32_t  rfs_lu_vint_range(struct rfs_lu_in *in, int32_t min, int32_t max, const char *what);

/* String = VInt length + UTF-8. Returns an sm_malloc'd NUL-terminated copy
 * (NULL on error; the string may contain NUL bytes: *len, if non-NULL, gets
 * its byte length). Length capped at RFS_LU_MAX_STRING. */
char *rfs_lu_string(struct rfs_lu_in *in, size_t *len);

/* Map<String,String>, insertion order kept. */
struct rfs_lu_kv {
    size_t n;
    char **key;
    char **val;
};
/* Value of key or NULL. */
const char *rfs_lu_kv_get(const struct rfs_lu_kv *kv, const char *key);
void rfs_lu_kv_free(struct rfs_lu_kv *kv);          /* keeps the struct, zeroes it */
/* readMapOfStrings (VInt count, Lucene 5.1+) or, with i32_count, the older
 * readStringStringMap (Int32 BE count). Replaces *out (call on a zeroed kv). */
void rfs_lu_kv_read(struct rfs_lu_in *in, bool i32_count, struct rfs_lu_kv *out);
/* readSetOfStrings (VInt count) / readStringSet (Int32 BE count); appends. */
void rfs_lu_set_read(struct rfs_lu_in *in, bool i32_count, struct sm_strlist *out);

/* ------------------------------------------------------------------ */
/* 2. CodecUtil                                                         */

#define RFS_LU_CODEC_MAGIC  0x3fd76c17
#define RFS_LU_FOOTER_MAGIC ((int32_t)0xc02893e8)
#define RFS_LU_FOOTER_LEN 16
#define RFS_LU_ID_LEN 16

/* A header as read from the file. */
struct rfs_lu_header {
    char codec[128];            /* codec name ("Lucene90SegmentInfo") */
    int32_t version;
    bool has_id;                /* index header (id + suffix follow) */
    uint8_t id[RFS_LU_ID_LEN];
    char suffix[256];
    uint64_t end;               /* offset just past the header */
};

/* Reads magic + codec + version (plain header, checkHeader). Fails
 * SM_ECORRUPT on a bad magic. */
void rfs_lu_read_header(struct rfs_lu_in *in, struct rfs_lu_header *h);
/* Reads the id and suffix of an index header that follows a plain header. */
void rfs_lu_read_header_id(struct rfs_lu_in *in, struct rfs_lu_header *h);

/* checkIndexHeader: codec must equal `codec` (SM_ECORRUPT otherwise),
 * version in [minv, maxv] (SM_EUNSUPPORTED "unsupported Lucene format
 * <codec> version <v> (supported minv..maxv)"), id equal to `id` unless
 * id == NULL, suffix equal to `suffix` unless suffix == NULL. *version gets
 * the version (may be NULL). */
void rfs_lu_check_index_header(struct rfs_lu_in *in, const char *codec, int32_t minv,
                               int32_t maxv, const uint8_t *id, const char *suffix,
                               int32_t *version);
/* checkHeader (no id/suffix: Lucene 4 files). */
void rfs_lu_check_header(struct rfs_lu_in *in, const char *codec, int32_t minv, int32_t maxv,
                         int32_t *version);
/* Length of an index header for codec/suffix (CodecUtil.indexHeaderLength). */
uint64_t rfs_lu_index_header_len(const char *codec, const char *suffix);

/* Footer check without CRC: in must be positioned exactly at len - 16
 * (checks that nothing is left over), magic, algorithm 0, high CRC bits 0.
 * *crc (may be NULL) gets the stored CRC. */
void rfs_lu_check_footer_pos(struct rfs_lu_in *in, uint32_t *crc);
/* Streams the whole blob, computes CRC32 of [0, size - 8) and compares with
 * the footer (magic, algorithm id, value). SM_ECORRUPT with a message naming
 * `name` ("_0.si: checksum failed (stored 1a2b3c4d, computed ...)"). */
int rfs_lu_verify_checksum(struct rfs_blob *blob, const char *name, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* 3. Structures                                                        */

struct rfs_lu_version {
    int32_t major, minor, bugfix;
};
/* a < b: negative; equal: 0. */
int rfs_lu_version_cmp(struct rfs_lu_version a, int32_t major, int32_t minor, int32_t bugfix);

/* Doc-values update files of one field (segments_N). */
struct rfs_lu_dv_update {
    int32_t field;
    struct sm_strlist files;
};

/* One segment: from segments_N (commit-level fields) plus its .si. */
struct rfs_lu_segment {
    char *name;                 /* "_0" */
    bool has_id;
    uint8_t id[RFS_LU_ID_LEN];  /* segment id (Lucene 5+) */
    char *codec;                /* segment codec in segments_N: "Lucene87", "Lucene46" */
    int64_t del_gen;            /* -1: no live-docs file */
    int32_t del_count;          /* hard deletes */
    int32_t soft_del_count;     /* 0 before format 9 */
    int64_t field_infos_gen;    /* -1: <name>.fnm, else <name>_<gen36>.fnm */
    int64_t dv_gen;             /* -1: no doc-values updates */
    bool has_sci_id;
    uint8_t sci_id[RFS_LU_ID_LEN];
    struct sm_strlist field_infos_files;
    struct rfs_lu_dv_update *dv_updates;
    size_t n_dv_updates;
    /* Lucene 4.x only: per-field norms/doc-values generations are not
     * supported (see docs/lucene.md). */

    /* from .si */
    char si_codec[128];         /* "Lucene90SegmentInfo", "Lucene46SegmentInfo" */
    int32_t si_version;         /* .si header version */
    struct rfs_lu_version version;      /* Lucene version that wrote the segment */
    bool has_min_version;
    struct rfs_lu_version min_version;
    int32_t max_doc;            /* DocCount, includes deleted docs */
    bool compound;              /* .cfs/.cfe */
    bool has_blocks;            /* Lucene 9.9+ .si */
    struct rfs_lu_kv diagnostics;
    struct rfs_lu_kv attributes;
    struct sm_strlist files;

    /* derived */
    bool le;                    /* fixed-width ints in this segment's files are LE (Lucene 9+) */
};

void rfs_lu_segment_free(struct rfs_lu_segment *seg);   /* frees members, not seg */

/* The latest commit (segments_N). */
struct rfs_lu_commit {
    char *file;                 /* "segments_5" */
    int64_t gen;
    int32_t format;             /* 0..3 Lucene 4 (VERSION_40..49), 4..10 Lucene 5+ */
    bool has_id;
    uint8_t id[RFS_LU_ID_LEN];
    struct rfs_lu_version lucene_version;      /* format >= 6 */
    int32_t created_major;                     /* format >= 7, else -1 */
    int64_t version;
    int64_t counter;
    struct rfs_lu_segment *seg;
    size_t n_seg;
    struct rfs_lu_kv user_data;
};

void rfs_lu_commit_free(struct rfs_lu_commit *c);    /* NULL-safe, frees c */

/* Normalized doc-values type (the Lucene 5+ .fnm byte). */
enum rfs_lu_dv_type {
    RFS_LU_DV_NONE = 0, RFS_LU_DV_NUMERIC = 1, RFS_LU_DV_BINARY = 2, RFS_LU_DV_SORTED = 3,
    RFS_LU_DV_SORTED_SET = 4, RFS_LU_DV_SORTED_NUMERIC = 5,
};

#define RFS_LU_FI_TERM_VECTORS 0x01
#define RFS_LU_FI_OMIT_NORMS   0x02
#define RFS_LU_FI_PAYLOADS     0x04
#define RFS_LU_FI_SOFT_DELETES 0x08
#define RFS_LU_FI_PARENT       0x10
#define RFS_LU_FI_DV_SKIPPER   0x20

struct rfs_lu_field {
    int32_t number;
    char *name;
    uint8_t bits;               /* RFS_LU_FI_* (Lucene 4 bits are mapped onto these) */
    uint8_t index_options;      /* 0 NONE, 1 DOCS .. 4 +OFFSETS */
    uint8_t dv_type;            /* enum rfs_lu_dv_type */
    uint8_t dv_skip_index;      /* Lucene 10: 0 NONE, 1 RANGE */
    int64_t dv_gen;             /* -1: base doc values */
    struct rfs_lu_kv attributes;
    int32_t point_dims, point_index_dims, point_num_bytes;
    int32_t vector_dims;
    uint8_t vector_encoding, vector_similarity;
    bool soft_deletes;          /* bits & RFS_LU_FI_SOFT_DELETES */
};

struct rfs_lu_fieldinfos {
    char codec[128];            /* "Lucene60FieldInfos" */
    int32_t version;
    struct rfs_lu_field *v;     /* in file order */
    size_t n;
    int32_t *by_number;         /* number -> index in v, -1 if absent */
    int32_t max_number;         /* size of by_number - 1 */
};

/* Field with that number or NULL. */
const struct rfs_lu_field *rfs_lu_field_by_number(const struct rfs_lu_fieldinfos *fis,
                                                  int32_t number);
const struct rfs_lu_field *rfs_lu_field_by_name(const struct rfs_lu_fieldinfos *fis,
                                                const char *name);
/* The soft-deletes field (flag 0x08, else named "__soft_deletes") or NULL. */
const struct rfs_lu_field *rfs_lu_soft_deletes_field(const struct rfs_lu_fieldinfos *fis);
void rfs_lu_fieldinfos_free(struct rfs_lu_fieldinfos *fis);    /* NULL-safe, frees fis */

/* ------------------------------------------------------------------ */
/* 4. Segment context                                                   */

/* Everything a per-segment decoder (stored fields, doc values) needs. All
 * members are owned by the index; decoders borrow them. */
struct rfs_lu_segctx {
    const struct rfs_lu_segment *si;
    const struct rfs_lu_fieldinfos *fis;
    struct rfs_dir *dir;        /* the index directory (generation files live here) */
    struct rfs_dir *cfs;        /* the compound file as a dir of full names ("_0.fdt"), or NULL */
};

/* Opens a file of the segment by its full name ("_0.fdt", "_0_Lucene80_0.dvm",
 * "_0_2_Lucene80_0.dvd"): from the compound file when the segment is compound
 * and the file is in it, else from the index directory. SM_ENOTFOUND names
 * the file when it is in neither. */
int rfs_lu_seg_open(const struct rfs_lu_segctx *ctx, const char *file, struct rfs_blob **out,
                    char *err, size_t errlen);

/* Base-36 (lowercase) of v into out (14 bytes suffice). Returns out. */
char *rfs_lu_base36(uint64_t v, char *out, size_t outlen);
/* "<seg>" + (gen == -1 ? "" : "_" + base36(gen)) + ext ("<seg>_3.liv"). */
int rfs_lu_gen_file_name(const char *seg, int64_t gen, const char *ext, char *out, size_t outlen);

/* ------------------------------------------------------------------ */
/* Decoders implemented in this folder (used by lucene.c).              */

/* Reads the latest commit of dir: the segments_N with the largest N
 * (pending_segments_N ignored), checksum verified, then every segment's
 * .si. SM_ENOTFOUND when there is no segments_N. */
int rfs_lu_commit_read(struct rfs_dir *dir, struct rfs_lu_commit **out, char *err,
                       size_t errlen);
/* Parses one segments_N blob (no .si reading); used by the fuzzer. */
int rfs_lu_segments_parse(struct rfs_blob *blob, const char *file, int64_t gen,
                          struct rfs_lu_commit **out, char *err, size_t errlen);
/* Parses <seg>.si into the ".si" members of seg and verifies its checksum.
 * seg->name (and, for Lucene 5+, seg->id/has_id from segments_N) must be set
 * beforehand; the .si id is checked against seg->id when has_id. */
int rfs_lu_si_parse(struct rfs_blob *blob, const char *file, struct rfs_lu_segment *seg,
                    char *err, size_t errlen);

/* Opens the compound file of segment seg in dir as a dir whose entries are
 * full file names ("_0.fdt"); sub-files are slices of the .cfs. Checks the
 * .cfe/.cfs headers and the .cfe checksum (the .cfs checksum is not streamed
 * here: every sub-file has its own footer). */
int rfs_lu_cfs_open(struct rfs_dir *dir, const struct rfs_lu_segment *seg, struct rfs_dir **out,
                    char *err, size_t errlen);
/* Parses a .cfe-style entry table (Lucene 5+ or 4.x); for the fuzzer. */
int rfs_lu_cfe_parse(struct rfs_blob *cfe, const char *file, const struct rfs_lu_segment *seg,
                     struct sm_strlist *names, uint64_t **offs, uint64_t **lens, char *err,
                     size_t errlen);

/* Reads the field infos of a segment (the <seg>_<fieldInfosGen>.fnm
 * generation file when field_infos_gen != -1). */
int rfs_lu_fieldinfos_read(const struct rfs_lu_segctx *ctx, struct rfs_lu_fieldinfos **out,
                           char *err, size_t errlen);
int rfs_lu_fnm_parse(struct rfs_blob *blob, const char *file, const struct rfs_lu_segment *seg,
                     const char *suffix, struct rfs_lu_fieldinfos **out, char *err,
                     size_t errlen);

/* Live docs: a bitset of max_doc bits (bit set = live), or NULL when the
 * segment has no hard deletes. words has ceil(max_doc / 64) entries. */
int rfs_lu_livedocs_read(const struct rfs_lu_segctx *ctx, uint64_t **words, char *err,
                         size_t errlen);

static inline bool rfs_lu_bit_get(const uint64_t *words, uint32_t doc)
{
    return (words[doc >> 6] >> (doc & 63)) & 1;
}

#endif
