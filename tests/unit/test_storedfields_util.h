/* Shared helpers of the stored-fields / doc-values tests: open a Lucene
 * index directory with the rfs_lucene internals and walk every stored
 * document of every segment (deleted ones included). */
#ifndef TEST_STOREDFIELDS_UTIL_H
#define TEST_STOREDFIELDS_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sm/err.h>

#include "io/blob.h"
#include "lucene/lucene_int.h"
#include "lucene/storedfields.h"

typedef int (*sf_seg_fn)(void *arg, const struct rfs_lu_segment *seg, struct rfs_dir *dir,
                         struct rfs_dir *cfs);

static inline int sf_open_seg_file(struct rfs_dir *dir, struct rfs_dir *cfs, const char *seg,
                                   const char *ext, struct rfs_blob **out, char *err,
                                   size_t errlen)
{
    char name[256];
    snprintf(name, sizeof(name), "%s%s", seg, ext);
    *out = NULL;
    if (cfs && rfs_dir_open(cfs, name, out, err, errlen) == SM_OK)
        return SM_OK;
    return rfs_dir_open(dir, name, out, err, errlen);
}

/* Calls fn for each segment of the latest commit in path. */
static inline int sf_each_segment(const char *path, sf_seg_fn fn, void *arg, char *err,
                                  size_t errlen)
{
    struct rfs_dir *dir = NULL;
    struct rfs_lu_commit *c = NULL;
    int rc = rfs_dir_open_fs(path, &dir, err, errlen);
    if (rc)
        return rc;
    rc = rfs_lu_commit_read(dir, &c, err, errlen);
    for (size_t i = 0; !rc && i < c->n_seg; i++) {
        struct rfs_dir *cfs = NULL;
        if (c->seg[i].compound) {
            rc = rfs_lu_cfs_open(dir, &c->seg[i], &cfs, err, errlen);
            if (rc)
                break;
        }
        rc = fn(arg, &c->seg[i], dir, cfs);
        rfs_dir_close(cfs);
    }
    rfs_lu_commit_free(c);
    rfs_dir_close(dir);
    return rc;
}

/* Opens the stored-fields reader of seg. Blobs are returned for closing. */
static inline int sf_open_reader(const struct rfs_lu_segment *seg, struct rfs_dir *dir,
                                 struct rfs_dir *cfs, struct rfs_blob **fdt, struct rfs_blob **fdm,
                                 struct rfs_sf_reader **r, char *err, size_t errlen)
{
    *fdm = NULL;
    int rc = sf_open_seg_file(dir, cfs, seg->name, ".fdt", fdt, err, errlen);
    if (rc)
        return rc;
    char e2[256];
    if (sf_open_seg_file(dir, cfs, seg->name, ".fdm", fdm, e2, sizeof(e2)))
        *fdm = NULL;
    rc = rfs_sf_open(*fdt, NULL, *fdm, seg->has_id ? seg->id : NULL, "", seg->max_doc, r, err,
                     errlen);
    if (rc) {
        rfs_blob_close(*fdm);
        rfs_blob_close(*fdt);
        *fdm = *fdt = NULL;
    }
    return rc;
}

/* 64-bit FNV-1a, the hash the Java dumper also computes. */
static inline unsigned long long sf_fnv64(const unsigned char *p, size_t n)
{
    unsigned long long h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#endif
