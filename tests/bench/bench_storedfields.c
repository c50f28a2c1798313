/* Stored-fields decoding benchmark (not a timed test; label "bench").
 *   bench_storedfields decode INDEX_DIR   decode every stored field of every doc,
 *                                         report docs/s, _source MB/s, peak RSS
 *   bench_storedfields lz4 INDEX_DIR      plain liblz4 decompression of the same
 *                                         _source bytes (64 KiB blocks), MB/s
 * Output: one "key value" line per figure, read by bench_storedfields.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <lz4.h>

#include <sm/err.h>
#include <sm/mem.h>

#include "io/blob.h"
#include "lucene/lucene_int.h"
#include "lucene/storedfields.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct bench {
    int source_field;
    uint64_t docs, source_bytes, checksum;
    /* lz4 mode: the _source stream cut into blocks */
    int lz4;
    uint8_t *blk;
    size_t blk_len;
    char **cblocks;
    int *clens, *ulens;
    size_t nblocks, cap_blocks;
};

#define BLOCK (64 * 1024)

static void lz4_flush(struct bench *b)
{
    if (!b->blk_len)
        return;
    if (b->nblocks == b->cap_blocks) {
        b->cap_blocks = b->cap_blocks ? b->cap_blocks * 2 : 1024;
        b->cblocks = realloc(b->cblocks, b->cap_blocks * sizeof(char *));
        b->clens = realloc(b->clens, b->cap_blocks * sizeof(int));
        b->ulens = realloc(b->ulens, b->cap_blocks * sizeof(int));
    }
    int bound = LZ4_compressBound((int)b->blk_len);
    char *c = malloc((size_t)bound);
    int n = LZ4_compress_default((const char *)b->blk, c, (int)b->blk_len, bound);
    b->cblocks[b->nblocks] = realloc(c, (size_t)n);
    b->clens[b->nblocks] = n;
    b->ulens[b->nblocks] = (int)b->blk_len;
    b->nblocks++;
    b->blk_len = 0;
}

static int visit(void *arg, int field, int type, const uint8_t *p, size_t len, int64_t iv,
                 double dv)
{
    struct bench *b = arg;
    (void)type, (void)iv, (void)dv;
    if (field == b->source_field) {
        b->source_bytes += len;
        if (len)
            b->checksum += p[0] + p[len - 1];
        if (b->lz4) {
            while (len) {
                size_t k = BLOCK - b->blk_len < len ? BLOCK - b->blk_len : len;
                memcpy(b->blk + b->blk_len, p, k);
                b->blk_len += k;
                p += k;
                len -= k;
                if (b->blk_len == BLOCK)
                    lz4_flush(b);
            }
        }
    }
    return 0;
}

static int run(const char *path, struct bench *b, char *err, size_t errlen)
{
    struct rfs_dir *dir = NULL;
    struct rfs_lu_commit *c = NULL;
    int rc = rfs_dir_open_fs(path, &dir, err, errlen);
    if (!rc)
        rc = rfs_lu_commit_read(dir, &c, err, errlen);
    for (size_t i = 0; !rc && i < c->n_seg; i++) {
        const struct rfs_lu_segment *seg = &c->seg[i];
        struct rfs_dir *cfs = NULL;
        if (seg->compound && (rc = rfs_lu_cfs_open(dir, seg, &cfs, err, errlen)))
            break;
        struct rfs_lu_segctx ctx = { seg, NULL, dir, cfs };
        struct rfs_lu_fieldinfos *fis = NULL;
        struct rfs_blob *fdt = NULL, *fdm = NULL;
        struct rfs_sf_reader *r = NULL;
        char name[128];
        rc = rfs_lu_fieldinfos_read(&ctx, &fis, err, errlen);
        if (!rc) {
            const struct rfs_lu_field *f = rfs_lu_field_by_name(fis, "_source");
            b->source_field = f ? f->number : -1;
            snprintf(name, sizeof(name), "%s.fdt", seg->name);
            rc = rfs_lu_seg_open(&ctx, name, &fdt, err, errlen);
        }
        if (!rc) {
            snprintf(name, sizeof(name), "%s.fdm", seg->name);
            char e2[256];
            if (rfs_lu_seg_open(&ctx, name, &fdm, e2, sizeof(e2)))
                fdm = NULL;
            rc = rfs_sf_open(fdt, NULL, fdm, seg->has_id ? seg->id : NULL, "", seg->max_doc, &r,
                             err, errlen);
        }
        for (int d = 0; !rc && d < seg->max_doc; d++) {
            rc = rfs_sf_document(r, d, visit, b, err, errlen);
            b->docs++;
        }
        rfs_sf_close(r);
        rfs_blob_close(fdm);
        rfs_blob_close(fdt);
        rfs_lu_fieldinfos_free(fis);
        rfs_dir_close(cfs);
    }
    rfs_lu_commit_free(c);
    rfs_dir_close(dir);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "decode") && strcmp(argv[1], "lz4"))) {
        fprintf(stderr, "usage: %s decode|lz4 INDEX_DIR\n", argv[0]);
        return 2;
    }
    struct bench b = { 0 };
    char err[512] = "";
    if (!strcmp(argv[1], "decode")) {
        double best = 0;
        for (int round = 0; round < 3; round++) {
            memset(&b, 0, sizeof(b));
            double t0 = now();
            int rc = run(argv[2], &b, err, sizeof(err));
            double t = now() - t0;
            if (rc) {
                fprintf(stderr, "error: %s\n", err);
                return 1;
            }
            if (round == 0 || t < best)
                best = t;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("c_docs %llu\nc_source_bytes %llu\nc_seconds %.3f\nc_peak_rss_kib %ld\n",
               (unsigned long long)b.docs, (unsigned long long)b.source_bytes, best, ru.ru_maxrss);
        return 0;
    }
    b.lz4 = 1;
    b.blk = malloc(BLOCK);
    if (run(argv[2], &b, err, sizeof(err))) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    lz4_flush(&b);
    char *out = malloc(BLOCK);
    double best = 0;
    uint64_t total = 0, ctotal = 0;
    for (int round = 0; round < 3; round++) {
        total = ctotal = 0;
        double t0 = now();
        for (size_t i = 0; i < b.nblocks; i++) {
            int n = LZ4_decompress_safe(b.cblocks[i], out, b.clens[i], BLOCK);
            if (n != b.ulens[i]) {
                fprintf(stderr, "lz4 block %zu failed\n", i);
                return 1;
            }
            total += (uint64_t)n;
            ctotal += (uint64_t)b.clens[i];
        }
        double t = now() - t0;
        if (round == 0 || t < best)
            best = t;
    }
    printf("lz4_bytes %llu\nlz4_compressed_bytes %llu\nlz4_seconds %.3f\n",
           (unsigned long long)total, (unsigned long long)ctotal, best);
    return 0;
}
