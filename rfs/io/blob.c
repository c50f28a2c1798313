#include "io/blob.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rfs_blob_read_at(struct rfs_blob *blob, uint64_t off, void *buf, size_t len)
{
    if (blob->err)
        return blob->err;
    if (off > blob->size || len > blob->size - off)
        return SM_EEOF;     /* not sticky: callers probe lengths */
    if (len == 0)
        return SM_OK;
    int rc = blob->ops->read_at(blob, off, buf, len);
    if (rc && rc != SM_EEOF)
        blob->err = rc;
    return rc;
}

void rfs_blob_close(struct rfs_blob *blob)
{
    if (!blob)
        return;
    if (blob->ops->close)
        blob->ops->close(blob);
    sm_free(blob->name);
    sm_free(blob);
}

int rfs_blob_read_all(struct rfs_blob *blob, size_t max, uint8_t **out, size_t *len)
{
    if (blob->size > max)
        return SM_EFULL;
    uint8_t *p = sm_malloc((size_t)blob->size + 1);
    if (!p)
        return SM_ENOMEM;
    int rc = rfs_blob_read_at(blob, 0, p, (size_t)blob->size);
    if (rc) {
        sm_free(p);
        return rc;
    }
    p[blob->size] = 0;
    *out = p;
    *len = (size_t)blob->size;
    return SM_OK;
}

static struct rfs_blob *blob_new(const struct rfs_blob_ops *ops, void *ctx, uint64_t size, const char *name)
{
    struct rfs_blob *b = sm_calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->name = sm_strdup(name ? name : "");
    if (!b->name) {
        sm_free(b);
        return NULL;
    }
    b->ops = ops;
    b->ctx = ctx;
    b->size = size;
    return b;
}

/* file */
static int file_read_at(struct rfs_blob *blob, uint64_t off, void *buf, size_t len)
{
    int fd = (int)(intptr_t)blob->ctx;
    uint8_t *p = buf;
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return SM_EIO;
        }
        if (r == 0)
            return SM_EEOF;   /* file shrank under us */
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return SM_OK;
}

static void file_close(struct rfs_blob *blob)
{
    close((int)(intptr_t)blob->ctx);
}

static const struct rfs_blob_ops file_ops = { "file", file_read_at, file_close };

int rfs_blob_open_file(const char *path, const char *name, struct rfs_blob **out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sm_errf(err, errlen, errno == ENOENT ? SM_ENOTFOUND : SM_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sm_errf(err, errlen, SM_EIO, "%s: not a regular file", path);
    }
    struct rfs_blob *b = blob_new(&file_ops, (void *)(intptr_t)fd, (uint64_t)st.st_size, name ? name : path);
    if (!b) {
        close(fd);
        return SM_ENOMEM;
    }
    *out = b;
    return SM_OK;
}

/* mem */
struct mem_ctx { const uint8_t *data; bool owned; };

static int mem_read_at(struct rfs_blob *blob, uint64_t off, void *buf, size_t len)
{
    struct mem_ctx *m = blob->ctx;
    memcpy(buf, m->data + off, len);
    return SM_OK;
}

static void mem_close(struct rfs_blob *blob)
{
    struct mem_ctx *m = blob->ctx;
    if (m->owned)
        sm_free((void *)m->data);
    sm_free(m);
}

static const struct rfs_blob_ops mem_ops = { "mem", mem_read_at, mem_close };

int rfs_blob_open_mem(const void *data, size_t len, bool copy, const char *name, struct rfs_blob **out)
{
    struct mem_ctx *m = sm_calloc(1, sizeof(*m));
    if (!m)
        return SM_ENOMEM;
    m->owned = copy;
    m->data = copy ? sm_memdup(data, len) : data;
    if (!m->data) {
        sm_free(m);
        return SM_ENOMEM;
    }
    struct rfs_blob *b = blob_new(&mem_ops, m, len, name);
    if (!b) {
        if (copy)
            sm_free((void *)m->data);
        sm_free(m);
        return SM_ENOMEM;
    }
    *out = b;
    return SM_OK;
}

/* slice */
struct slice_ctx { struct rfs_blob *parent; uint64_t base; };

static int slice_read_at(struct rfs_blob *blob, uint64_t off, void *buf, size_t len)
{
    struct slice_ctx *s = blob->ctx;
    return rfs_blob_read_at(s->parent, s->base + off, buf, len);
}

static void slice_close(struct rfs_blob *blob)
{
    sm_free(blob->ctx);
}

static const struct rfs_blob_ops slice_ops = { "slice", slice_read_at, slice_close };

int rfs_blob_open_slice(struct rfs_blob *parent, uint64_t off, uint64_t len, const char *name, struct rfs_blob **out)
{
    if (off > parent->size || len > parent->size - off)
        return SM_ECORRUPT;
    struct slice_ctx *s = sm_calloc(1, sizeof(*s));
    if (!s)
        return SM_ENOMEM;
    s->parent = parent;
    s->base = off;
    struct rfs_blob *b = blob_new(&slice_ops, s, len, name);
    if (!b) {
        sm_free(s);
        return SM_ENOMEM;
    }
    *out = b;
    return SM_OK;
}

/* concat */
struct concat_ctx { size_t n; struct rfs_blob **parts; uint64_t *start; };

static int concat_read_at(struct rfs_blob *blob, uint64_t off, void *buf, size_t len)
{
    struct concat_ctx *c = blob->ctx;
    uint8_t *p = buf;
    size_t i = 0;
    while (i + 1 < c->n && c->start[i + 1] <= off)
        i++;
    while (len) {
        if (i >= c->n)
            return SM_EEOF;
        uint64_t in_part = off - c->start[i];
        uint64_t avail = c->parts[i]->size - in_part;
        size_t take = avail < len ? (size_t)avail : len;
        int rc = rfs_blob_read_at(c->parts[i], in_part, p, take);
        if (rc)
            return rc;
        p += take;
        off += take;
        len -= take;
        i++;
    }
    return SM_OK;
}

static void concat_close(struct rfs_blob *blob)
{
    struct concat_ctx *c = blob->ctx;
    for (size_t i = 0; i < c->n; i++)
        rfs_blob_close(c->parts[i]);
    sm_free(c->parts);
    sm_free(c->start);
    sm_free(c);
}

static const struct rfs_blob_ops concat_ops = { "concat", concat_read_at, concat_close };

int rfs_blob_open_concat(struct rfs_blob **parts, size_t n, const char *name, struct rfs_blob **out)
{
    struct concat_ctx *c = sm_calloc(1, sizeof(*c));
    struct rfs_blob *b = NULL;
    if (!c)
        goto fail;
    c->parts = sm_calloc(n ? n : 1, sizeof(*c->parts));
    c->start = sm_calloc(n ? n : 1, sizeof(*c->start));
    if (!c->parts || !c->start)
        goto fail;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        c->parts[i] = parts[i];
        c->start[i] = total;
        total += parts[i]->size;
    }
    c->n = n;
    b = blob_new(&concat_ops, c, total, name);
    if (!b)
        goto fail;
    *out = b;
    return SM_OK;
fail:
    if (c) {
        sm_free(c->parts);
        sm_free(c->start);
        sm_free(c);
    }
    for (size_t i = 0; i < n; i++)
        rfs_blob_close(parts[i]);
    return SM_ENOMEM;
}

/* fs dir */
struct fs_dir { char *root; };

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int fs_list(struct rfs_dir *dir, const char *prefix, struct sm_strlist *names)
{
    struct fs_dir *fd = dir->ctx;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", fd->root, prefix ? prefix : "");
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? SM_ENOTFOUND : SM_EIO;
    struct dirent *de;
    int rc = SM_OK;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if ((rc = sm_strlist_push(names, de->d_name)))
            break;
    }
    closedir(d);
    if (!rc && names->n)
        qsort(names->v, names->n, sizeof(char *), cmp_str);
    return rc;
}

static int fs_open(struct rfs_dir *dir, const char *rel, struct rfs_blob **out, char *err, size_t errlen)
{
    struct fs_dir *fd = dir->ctx;
    if (strstr(rel, "..") || rel[0] == '/')
        return sm_errf(err, errlen, SM_EINVAL, "refusing path '%s' outside %s", rel, fd->root);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", fd->root, rel);
    return rfs_blob_open_file(path, rel, out, err, errlen);
}

static void fs_close(struct rfs_dir *dir)
{
    struct fs_dir *fd = dir->ctx;
    sm_free(fd->root);
    sm_free(fd);
}

static const struct rfs_dir_ops fs_dir_ops = { "fs", fs_list, fs_open, fs_close };

void rfs_dir_close(struct rfs_dir *dir)
{
    if (!dir)
        return;
    dir->ops->close(dir);
    sm_free(dir->desc);
    sm_free(dir);
}

int rfs_dir_open_fs(const char *path, struct rfs_dir **out, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return sm_errf(err, errlen, SM_ENOTFOUND, "%s: not a directory", path);
    struct rfs_dir *dir = sm_calloc(1, sizeof(*dir));
    struct fs_dir *fd = sm_calloc(1, sizeof(*fd));
    char desc[4200];
    snprintf(desc, sizeof(desc), "fs:%s", path);
    if (!dir || !fd || !(fd->root = sm_strdup(path)) || !(dir->desc = sm_strdup(desc))) {
        if (fd)
            sm_free(fd->root);
        sm_free(fd);
        if (dir)
            sm_free(dir->desc);
        sm_free(dir);
        return SM_ENOMEM;
    }
    dir->ops = &fs_dir_ops;
    dir->ctx = fd;
    *out = dir;
    return SM_OK;
}
