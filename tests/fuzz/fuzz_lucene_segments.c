/* Fuzzes the Lucene layer: segments_N, .si, .cfe/.cfs, .fnm, .liv/.del and
 * the whole iterator (stored fields and doc values included) over a
 * memory-backed directory.
 *
 * Input: records [u8 name length][name][u32 LE data length][data], one per
 * file. Files ending in a Lucene codec footer get their CRC recomputed so
 * mutations reach the parsers behind the checksum checks. */
#include "io/blob.h"
#include "lucene/esdoc.h"
#include "lucene/lucene.h"
#include "lucene/lucene_int.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mfile { char name[256]; uint8_t *data; size_t len; };
struct mdir { struct mfile f[MAX_FILES]; size_t n; };

static int md_list(struct rfs_dir *dir, const char *prefix, struct sm_strlist *names)
{
    struct mdir *md = dir->ctx;
    if (prefix && *prefix)
        return SM_OK;
    for (size_t i = 0; i < md->n; i++)
        if (sm_strlist_push(names, md->f[i].name))
            return SM_ENOMEM;
    return SM_OK;
}

static int md_open(struct rfs_dir *dir, const char *path, struct rfs_blob **out, char *err,
                   size_t errlen)
{
    struct mdir *md = dir->ctx;
    for (size_t i = 0; i < md->n; i++)
        if (!strcmp(md->f[i].name, path))
            return rfs_blob_open_mem(md->f[i].data, md->f[i].len, false, path, out);
    return sm_errf(err, errlen, SM_ENOTFOUND, "%s: not found", path);
}

static void md_close(struct rfs_dir *dir)
{
    (void)dir;
}

static const struct rfs_dir_ops md_ops = { "fuzz-mem", md_list, md_open, md_close };

static void fix_footer(uint8_t *p, size_t n)
{
    if (n < 16 || p[n - 16] != 0xc0 || p[n - 15] != 0x28 || p[n - 14] != 0x93 || p[n - 13] != 0xe8)
        return;
    uint32_t crc = sm_crc32(0, p, n - 8);
    memset(p + n - 8, 0, 4);
    p[n - 4] = (uint8_t)(crc >> 24);
    p[n - 3] = (uint8_t)(crc >> 16);
    p[n - 2] = (uint8_t)(crc >> 8);
    p[n - 1] = (uint8_t)crc;
}

static void parse_alone(struct mfile *f)
{
    char err[256];
    struct rfs_blob *b = NULL;
    if (rfs_blob_open_mem(f->data, f->len, false, f->name, &b))
        return;
    size_t nl = strlen(f->name);
    struct rfs_lu_segment seg;
    memset(&seg, 0, sizeof(seg));
    seg.name = (char *)"_0";
    if (!strncmp(f->name, "segments_", 9)) {
        struct rfs_lu_commit *c = NULL;
        if (!rfs_lu_segments_parse(b, f->name, -1, &c, err, sizeof(err)))
            rfs_lu_commit_free(c);
    } else if (nl > 3 && !strcmp(f->name + nl - 3, ".si")) {
        rfs_lu_si_parse(b, f->name, &seg, err, sizeof(err));
        seg.name = NULL;
        rfs_lu_segment_free(&seg);
    } else if (nl > 4 && !strcmp(f->name + nl - 4, ".cfe")) {
        struct sm_strlist names = { 0 };
        uint64_t *offs = NULL, *lens = NULL;
        if (!rfs_lu_cfe_parse(b, f->name, &seg, &names, &offs, &lens, err, sizeof(err))) {
            sm_free(offs);
            sm_free(lens);
        }
        sm_strlist_free(&names);
    } else if (nl > 4 && !strcmp(f->name + nl - 4, ".fnm")) {
        struct rfs_lu_fieldinfos *fis = NULL;
        if (!rfs_lu_fnm_parse(b, f->name, &seg, NULL, &fis, err, sizeof(err)))
            rfs_lu_fieldinfos_free(fis);
    }
    rfs_blob_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mdir md;
    md.n = 0;
    size_t pos = 0;
    while (pos < size && md.n < MAX_FILES) {
        size_t nl = data[pos++];
        if (nl == 0 || pos + nl + 4 > size)
            break;
        struct mfile *f = &md.f[md.n];
        memcpy(f->name, data + pos, nl);
        f->name[nl] = 0;
        pos += nl;
        size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8 | (size_t)data[pos + 2] << 16 |
                     (size_t)data[pos + 3] << 24;
        pos += 4;
        if (len > size - pos)
            len = size - pos;
        f->data = malloc(len ? len : 1);
        if (!f->data)
            break;
        memcpy(f->data, data + pos, len);
        f->len = len;
        pos += len;
        if (strchr(f->name, '/') || memchr(data + pos - len - 4 - nl, 0, nl)) {
            free(f->data);
            continue;
        }
        fix_footer(f->data, f->len);
        md.n++;
    }
    for (size_t i = 0; i < md.n; i++)
        parse_alone(&md.f[i]);

    struct rfs_dir dir = { &md_ops, &md, (char *)"fuzz" };
    /* odd sizes: the .fdt CRC streamed from the decoding pass and checked
     * after each segment's last document, instead of a pass first */
    struct rfs_lucene_opts opts = { .allow_untested = true, .stream_data_checksums = size & 1 };
    struct rfs_lucene_index *idx = NULL;
    char err[512];
    if (!rfs_lucene_open(&dir, &opts, &idx, err, sizeof(err))) {
        struct rfs_lucene_commit_info ci;
        rfs_lucene_commit_info(idx, &ci);
        struct rfs_es_iter *it = NULL;
        if (!rfs_es_iter_open(idx, 0, 0, &it, err, sizeof(err))) {
            const struct rfs_esdoc *d;
            int guard = 0;
            while (!rfs_es_iter_next(it, &d, err, sizeof(err)) && d && guard++ < 100000) {
                volatile size_t sink = d->source_len + d->id_len;
                (void)sink;
            }
            rfs_es_iter_close(it);
        }
        rfs_lucene_close(idx);
    }
    for (size_t i = 0; i < md.n; i++)
        free(md.f[i].data);
    return 0;
}
