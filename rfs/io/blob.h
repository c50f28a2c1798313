/* Blob and directory access for the snapshot reader.
 *
 * A blob is one immutable byte object (a file, an S3 object, a window of
 * another blob, the concatenation of .partN blobs, or memory). A dir is a
 * named set of blobs: a repository root, a Lucene index directory, a shard's
 * file list in a snapshot, a compound file. Readers stream through read_at;
 * nothing requires the whole blob in memory.
 *
 * Errors: read_at fails with SM_EEOF when [off, off+len) is outside the blob,
 * SM_EIO on I/O errors. The first error is sticky in blob->err. */
#ifndef RFS_IO_BLOB_H
#define RFS_IO_BLOB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/opt.h>

struct rfs_blob;

struct rfs_blob_ops {
    const char *kind;                     /* "file", "mem", "slice", "concat", "s3" */
    int (*read_at)(struct rfs_blob *blob, uint64_t off, void *buf, size_t len);
    void (*close)(struct rfs_blob *blob);
};

struct rfs_blob {
    const struct rfs_blob_ops *ops;
    void *ctx;
    uint64_t size;
    char *name;                           /* for error messages: "indices/x/0/__abc" */
    int err;                              /* sticky first error */
};

/* Reads exactly len bytes at off. */
int  rfs_blob_read_at(struct rfs_blob *blob, uint64_t off, void *buf, size_t len);
/* NULL-safe. */
void rfs_blob_close(struct rfs_blob *blob);
/* Reads the whole blob (SM_EFULL if larger than max) into an sm_malloc'd buffer
 * with one extra NUL byte after len. */
int  rfs_blob_read_all(struct rfs_blob *blob, size_t max, uint8_t **out, size_t *len);

int rfs_blob_open_file(const char *path, const char *name, struct rfs_blob **out,
                       char *err, size_t errlen);
/* copy=false: data must outlive the blob. */
int rfs_blob_open_mem(const void *data, size_t len, bool copy, const char *name,
                      struct rfs_blob **out);
/* A window [off, off+len) of parent; parent must outlive the slice. */
int rfs_blob_open_slice(struct rfs_blob *parent, uint64_t off, uint64_t len, const char *name,
                        struct rfs_blob **out);
/* Concatenation of parts in order; takes ownership of parts[] elements (not of
 * the array) on success and on failure. */
int rfs_blob_open_concat(struct rfs_blob **parts, size_t n, const char *name,
                         struct rfs_blob **out);

struct rfs_dir;

struct rfs_dir_ops {
    const char *kind;                     /* "fs", "s3", "shard-snapshot", "cfs" */
    /* Names directly inside prefix ("" = root), no recursion; sorted. */
    int  (*list)(struct rfs_dir *dir, const char *prefix, struct sm_strlist *names);
    /* Opens blob at a relative path ("indices/x/0/snap-u.dat", "_0.cfs"). */
    int  (*open)(struct rfs_dir *dir, const char *path, struct rfs_blob **out,
                 char *err, size_t errlen);
    void (*close)(struct rfs_dir *dir);
};

struct rfs_dir {
    const struct rfs_dir_ops *ops;
    void *ctx;
    char *desc;                           /* "fs:/data/repo", for messages */
};

static inline int rfs_dir_list(struct rfs_dir *dir, const char *prefix, struct sm_strlist *names)
{
    return dir->ops->list(dir, prefix, names);
}
static inline int rfs_dir_open(struct rfs_dir *dir, const char *path, struct rfs_blob **out,
                               char *err, size_t errlen)
{
    return dir->ops->open(dir, path, out, err, errlen);
}
void rfs_dir_close(struct rfs_dir *dir);   /* NULL-safe */

/* A local directory (repository root or Lucene index directory). */
int rfs_dir_open_fs(const char *path, struct rfs_dir **out, char *err, size_t errlen);

#endif
