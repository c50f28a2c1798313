/* Snapshot repositories: Elasticsearch 1.x to 8.x and OpenSearch 1.x to 3.x,
 * on any rfs_dir (local filesystem now, S3 through the same interface).
 *
 *   rfs_repo_open(dir)                     repository data: snapshots and indices
 *     rfs_repo_snapshot_at(repo, i)        name, uuid, state, version, times, indices
 *     rfs_snapshot_open(repo, name)        one snapshot
 *       rfs_snapshot_index_at(snap, i)     index: name, repository id, metadata
 *       rfs_snapshot_global_metadata()     templates, cluster settings (JSON)
 *       rfs_shard_open(snap, index, n)     shard file list (Lucene name -> blobs)
 *         rfs_shard_dir_open(shard)        rfs_dir of the shard's Lucene files
 *
 * Layouts (decided from the blobs present, not from a version number):
 *   ES 1.x  root `index` {"snapshots":[names]}, `snapshot-<name>`, `metadata-<name>`,
 *           `indices/<index name>/snapshot-<name>`, `indices/<index name>/<n>/snapshot-<name>`;
 *           plain JSON, optionally LZF.
 *   ES 2.x  root `index`, `snap-<name>.dat`, `meta-<name>.dat`, `indices/<index name>/meta-<name>.dat`,
 *           `indices/<index name>/<n>/snap-<name>.dat`; CodecUtil + SMILE (+DFL/LZF).
 *   ES 5.0+ `index.latest` + `index-N` (RepositoryData JSON), `snap-<uuid>.dat`, `meta-<uuid>.dat`,
 *   and OS  `indices/<index id>/meta-<uuid or 7.9+ identifier>.dat`, `indices/<id>/<n>/snap-<uuid>.dat`;
 *           pre-5.4.1 object-form index snapshot lists, 7.6+ shard generations, 7.9+ index
 *           metadata lookup, OpenSearch hashed shard paths via `snapshot_shard_paths/`.
 *
 * Lifetimes: the repository borrows dir (dir outlives repo); a snapshot
 * borrows its repo; a shard borrows its snapshot; a shard dir borrows its
 * shard. Strings and json_t returned by accessors are borrowed from the
 * object that returned them. Loading is lazy (index metadata on first use):
 * call rfs_snapshot_load_all() once, after which the snapshot (and its repo)
 * is read-only and rfs_snapshot_index_at()/rfs_shard_open() may be called
 * from several threads (given a thread-safe rfs_dir). Shards and shard dirs
 * are independent once open; one shard dir per thread.
 *
 * Every error fills err with the blob path ("indices/x/0/snap-u.dat: footer CRC
 * 1a2b3c4d != 5e6f7a8b"). */
#ifndef RFS_SNAPSHOT_SNAPSHOT_H
#define RFS_SNAPSHOT_SNAPSHOT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <sm/opt.h>

#include "io/blob.h"

enum rfs_repo_layout {
    RFS_LAYOUT_V1 = 1,     /* ES 1.x: snapshot-<name> JSON blobs */
    RFS_LAYOUT_V2 = 2,     /* ES 2.x: snap-<name>.dat CodecUtil/SMILE, index dirs by name */
    RFS_LAYOUT_V5 = 5,     /* ES 5.0+ / OpenSearch: index-N RepositoryData */
};

enum rfs_snapshot_state {
    RFS_SNAP_IN_PROGRESS = 0, RFS_SNAP_SUCCESS = 1, RFS_SNAP_FAILED = 2,
    RFS_SNAP_PARTIAL = 3, RFS_SNAP_INCOMPATIBLE = 4, RFS_SNAP_UNKNOWN = -1,
};
const char *rfs_snapshot_state_name(int state);   /* "SUCCESS", ... */

/* Version ids: ES major*1000000 + minor*10000 + revision*100 + build;
 * OpenSearch ids have bit 27 (0x08000000) set. Formats "7.10.2" (also for
 * OpenSearch "2.11.1": see rfs_version_product) into buf; returns buf.
 * Elasticsearch 8.11+ index versions are numbered apart from releases
 * (RFS_INDEX_VERSION_DETACHED up): "8.11+ (index version 8500003)",
 * "9.0+ (index version 9000000)"; the major is right either way. */
#define RFS_INDEX_VERSION_DETACHED 8500000u
const char *rfs_version_format(uint32_t id, char *buf, size_t len);
bool rfs_version_is_opensearch(uint32_t id);
/* "Elasticsearch" or "OpenSearch". */
const char *rfs_version_product(uint32_t id);
/* Major version of an ES id (OpenSearch ids: the OS major). */
int rfs_version_major(uint32_t id);

struct rfs_snapshot_info {
    char *name;
    char *uuid;                /* NULL for ES 1.x/2.x (snapshots are keyed by name) */
    int state;                 /* enum rfs_snapshot_state */
    char *version;             /* version that wrote it ("7.10.2", "2.11.1"), NULL if unknown */
    uint32_t version_id;       /* 0 if unknown */
    const char *product;       /* "Elasticsearch"/"OpenSearch" from version_id, NULL if unknown */
    int64_t start_ms, end_ms;  /* -1 if unknown */
    struct sm_strlist indices; /* index names */
    bool details_loaded;       /* snap-*.dat read (start/end/version_id) */
    char *details_error;       /* why the snapshot blob could not be read, if it could not */
};

struct rfs_repo;

/* Opens the repository on dir (borrowed). Reads only the root blobs
 * (`index.latest` + `index-N`, or `index`). */
int  rfs_repo_open(struct rfs_dir *dir, struct rfs_repo **out, char *err, size_t errlen);
void rfs_repo_close(struct rfs_repo *repo);   /* NULL-safe */
enum rfs_repo_layout rfs_repo_layout(const struct rfs_repo *repo);
int64_t rfs_repo_generation(const struct rfs_repo *repo);   /* N of index-N, -1 for 1.x/2.x */
struct rfs_dir *rfs_repo_dir(struct rfs_repo *repo);
/* The parsed RepositoryData (index-N) or root `index` JSON; borrowed. */
json_t *rfs_repo_data(struct rfs_repo *repo);

size_t rfs_repo_snapshot_count(const struct rfs_repo *repo);
/* Snapshot i in repository order. Details (times, version id, indices for
 * 1.x/2.x) are read from the snapshot blob on first call; if that fails the
 * entry is still returned with details_error set. */
const struct rfs_snapshot_info *rfs_repo_snapshot_at(struct rfs_repo *repo, size_t i);
/* Index of the snapshot with this name (or uuid), or SM_ENOTFOUND. */
int rfs_repo_snapshot_find(const struct rfs_repo *repo, const char *name, size_t *idx);

struct rfs_index_info {
    char *name;
    char *repo_id;             /* directory under indices/ (random id in 5.0+, the name before) */
    char *meta_blob;           /* path of the index metadata blob */
    json_t *metadata;          /* IndexMetadata object (value under the index name) */
    json_t *settings;          /* flat settings object {"index.number_of_shards":"1",...} */
    json_t *mappings;          /* object type -> mapping ({"_doc":{...}}), normalised from the array form */
    json_t *aliases;           /* object alias -> {...} (empty object if none) */
    int number_of_shards;
    char *index_uuid;          /* settings index.uuid, NULL if absent */
    uint32_t created_id;       /* settings index.version.created, 0 if absent */
    char created_version[48];  /* formatted created_id, "" if absent */
    const char *created_product; /* "Elasticsearch"/"OpenSearch", NULL if absent */
    json_t *shard_generations; /* 7.6+: array (borrowed from repository data) or NULL */
    int shard_path_type;       /* OpenSearch shard_path_type: 0 FIXED (default) */
};

struct rfs_snapshot;

/* Opens snapshot by name (or uuid). Fails with SM_ENOTFOUND naming the
 * snapshots that exist, SM_EUNSUPPORTED for in-progress/failed/incompatible
 * snapshots. */
int  rfs_snapshot_open(struct rfs_repo *repo, const char *name, struct rfs_snapshot **out,
                       char *err, size_t errlen);
void rfs_snapshot_close(struct rfs_snapshot *snap);   /* NULL-safe */
const struct rfs_snapshot_info *rfs_snapshot_info(const struct rfs_snapshot *snap);

size_t rfs_snapshot_index_count(const struct rfs_snapshot *snap);
const char *rfs_snapshot_index_name(const struct rfs_snapshot *snap, size_t i);
/* Loads (once) and returns index i's metadata. */
int rfs_snapshot_index_at(struct rfs_snapshot *snap, size_t i, const struct rfs_index_info **out,
                          char *err, size_t errlen);
int rfs_snapshot_index_find(const struct rfs_snapshot *snap, const char *name, size_t *idx);
/* Loads every index's metadata now (see the threading note above). Fails on
 * the first index whose metadata cannot be read. */
int rfs_snapshot_load_all(struct rfs_snapshot *snap, char *err, size_t errlen);
/* Global metadata object (`meta-data` content: templates, persistent settings,
 * index graveyard, ...); loaded once; borrowed. SM_ENOTFOUND if the snapshot
 * has no global metadata blob. */
int rfs_snapshot_global_metadata(struct rfs_snapshot *snap, json_t **out, char *err, size_t errlen);

struct rfs_shard_file {
    char *name;                /* blob name: "__abc" or "v__abc" (virtual) */
    char *physical_name;       /* Lucene file name: "_0.cfs", "segments_3" */
    uint64_t length;
    char *checksum;            /* as stored: CRC32 in base 36 ("1piemnx"), or legacy Adler32 */
    bool has_crc;              /* checksum parsed as base-36 CRC32 into crc */
    uint32_t crc;
    uint64_t part_size;        /* 0: one part */
    uint32_t parts;            /* number of blobs (.partN when > 1) */
    char *written_by;          /* Lucene version, NULL if absent */
    uint8_t *meta_hash;        /* inline contents (segments_N, .si), NULL if absent */
    size_t meta_hash_len;
    bool is_virtual;           /* "v__": contents only in meta_hash */
};

struct rfs_shard {
    char *index_name;
    int shard;
    char *path;                /* shard directory in the repository: "indices/<id>/0" */
    char *blob;                /* the file-list blob read: "indices/<id>/0/snap-<uuid>.dat" */
    size_t nfiles;
    struct rfs_shard_file *files;
    uint64_t total_bytes;      /* sum of file lengths */
    int64_t start_ms, time_ms; /* -1 if unknown */
    struct rfs_snapshot *snap; /* borrowed */
};

/* Reads the file list of shard n of index i. SM_ENOTFOUND when the shard is
 * absent from the snapshot (partial snapshots), SM_EUNSUPPORTED for OpenSearch
 * shallow (remote store) snapshots. */
int  rfs_shard_open(struct rfs_snapshot *snap, size_t index, int shard, struct rfs_shard **out,
                    char *err, size_t errlen);
void rfs_shard_close(struct rfs_shard *shard);   /* NULL-safe */
/* The file with this Lucene name, or NULL. */
const struct rfs_shard_file *rfs_shard_file_find(const struct rfs_shard *shard, const char *physical);
/* The commit point file (segments_N), or NULL. */
const struct rfs_shard_file *rfs_shard_segments_file(const struct rfs_shard *shard);

enum rfs_shard_dir_flags {
    RFS_SHARD_VERIFY_FOOTER = 1u << 0,   /* on open: footer checksum == metadata checksum (cheap, default) */
    RFS_SHARD_VERIFY_CRC    = 1u << 1,   /* on open: recompute the CRC32 of the whole file (reads it all) */
};
#define RFS_SHARD_DIR_DEFAULT RFS_SHARD_VERIFY_FOOTER

/* An rfs_dir whose names are the shard's Lucene physical names; open()
 * returns a blob backed by the repository blob(s) (.partN concatenated) or
 * by meta_hash bytes for virtual files, after checking the length (and the
 * checksums selected by flags). The shard (and the repository dir) must
 * outlive the returned dir. */
int rfs_shard_dir_open(struct rfs_shard *shard, unsigned flags, struct rfs_dir **out,
                       char *err, size_t errlen);

/* Opens one file of the shard (same checks as the shard dir). */
int rfs_shard_file_open(struct rfs_shard *shard, const struct rfs_shard_file *file, unsigned flags,
                        struct rfs_blob **out, char *err, size_t errlen);

/* Parses Long.toString(crc, 36). */
bool rfs_checksum_parse_base36(const char *s, uint32_t *crc);

#endif
