/* Compares our stored-fields and soft-deletes decoding of a Lucene index
 * with what real Lucene read back from it (tests/lucene-gen/GenIndex.java
 * "dump" format). Every document of every segment, deleted ones included;
 * every field: number, type, length and FNV-64 of the bytes, or the value.
 * Usage: test_storedfields_lucene INDEX_DIR DUMP_FILE */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sm/mem.h>

#include "lucene/docvalues.h"
#include "test_storedfields_util.h"

struct cmp {
    FILE *dump;
    char line[512];
    long lineno;
    long docs, fields, softdel;
    int failed;
    bool replay;               /* second pass: hash only, no dump lines */
    unsigned long long dochash;
};

static void hash_line(struct cmp *c, const char *line)
{
    c->dochash = (c->dochash ^ sf_fnv64((const unsigned char *)line, strlen(line))) *
                 0x100000001b3ull;
}

static bool next_line(struct cmp *c)
{
    if (!fgets(c->line, sizeof(c->line), c->dump)) {
        c->line[0] = 0;
        return false;
    }
    c->lineno++;
    c->line[strcspn(c->line, "\n")] = 0;
    return true;
}

static int mismatch(struct cmp *c, const char *got)
{
    fprintf(stderr, "dump line %ld: expected \"%s\", decoded \"%s\"\n", c->lineno, c->line, got);
    c->failed = 1;
    return SM_ECORRUPT;
}

static int visit(void *arg, int field, int type, const uint8_t *b, size_t len, int64_t iv,
                 double dv)
{
    struct cmp *c = arg;
    char got[256];
    switch (type) {
    case RFS_SF_STRING:
    case RFS_SF_BYTES:
        snprintf(got, sizeof(got), "f %d %c %zu %016llx", field, type == RFS_SF_STRING ? 's' : 'b',
                 len, sf_fnv64(b, len));
        break;
    case RFS_SF_INT:
    case RFS_SF_LONG:
        snprintf(got, sizeof(got), "f %d %c %" PRId64, field, type == RFS_SF_INT ? 'i' : 'l', iv);
        break;
    case RFS_SF_FLOAT: {
        float f = (float)dv;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        snprintf(got, sizeof(got), "f %d f %08x", field, bits);
        break;
    }
    default: {
        uint64_t bits;
        memcpy(&bits, &dv, 8);
        snprintf(got, sizeof(got), "f %d d %016llx", field, (unsigned long long)bits);
    }
    }
    hash_line(c, got);
    if (c->replay)
        return 0;
    if (!next_line(c) || strcmp(c->line, got))
        return mismatch(c, got);
    c->fields++;
    return 0;
}

/* Fields listed in the dump's "binc" (Lucene80 v2 compressed BINARY). */
static unsigned binc_flags(void *arg, int field)
{
    const char *list = arg;
    char key[16];
    snprintf(key, sizeof(key), ",%d,", field);
    return strstr(list, key) ? RFS_DV_F_BINARY_COMPRESSED : 0;
}

static int seg_fn(void *arg, const struct rfs_lu_segment *seg, struct rfs_dir *dir,
                  struct rfs_dir *cfs)
{
    struct cmp *c = arg;
    char name[64], fmt[32], sfx[32], err[512];
    int maxdoc, compound, softfield, softcount;
    char binc[256] = "-", bincl[260];
    long long dvgen;
    if (!next_line(c) ||
        sscanf(c->line, "segment %63s maxdoc %d compound %d softfield %d dvgen %lld dvformat %31s "
               "dvsuffix %31s softcount %d binc %255s", name, &maxdoc, &compound, &softfield, &dvgen,
               fmt, sfx, &softcount, binc) != 9) {
        fprintf(stderr, "dump line %ld: expected a segment line: %s\n", c->lineno, c->line);
        return SM_ECORRUPT;
    }
    if (strcmp(name, seg->name) || maxdoc != seg->max_doc) {
        fprintf(stderr, "segment %s/%d in the commit, %s/%d in the dump\n", seg->name,
                seg->max_doc, name, maxdoc);
        return SM_ECORRUPT;
    }
    struct rfs_dv_docset soft = { 0 };
    if (softfield >= 0 && softcount > 0) {
        char hsfx[160], file[200], gen36[16];
        if (dvgen == -1)
            snprintf(hsfx, sizeof(hsfx), "%s_%s", fmt, sfx);
        else
            snprintf(hsfx, sizeof(hsfx), "%s_%s_%s", rfs_lu_base36((uint64_t)dvgen, gen36,
                     sizeof(gen36)), fmt, sfx);
        struct rfs_blob *dvm = NULL, *dvd = NULL;
        /* generation files are never inside the compound file */
        snprintf(file, sizeof(file), "_%s.dvm", hsfx);
        int rc = sf_open_seg_file(dir, dvgen == -1 ? cfs : NULL, seg->name, file, &dvm, err,
                                  sizeof(err));
        snprintf(file, sizeof(file), "_%s.dvd", hsfx);
        if (!rc)
            rc = sf_open_seg_file(dir, dvgen == -1 ? cfs : NULL, seg->name, file, &dvd, err,
                                  sizeof(err));
        snprintf(bincl, sizeof(bincl), ",%s,", binc);
        if (!rc)
            rc = rfs_dv_numeric_docs(dvm, dvd, seg->id, hsfx, softfield, seg->max_doc, binc_flags,
                                     bincl, &soft, err, sizeof(err));
        /* walk every entry of the .dvm (all doc-values types) to its footer */
        struct rfs_dv_docset none;
        char e2[512];
        if (!rc && rfs_dv_numeric_docs(dvm, dvd, seg->id, hsfx, 99999, seg->max_doc, binc_flags,
                                       bincl, &none, e2, sizeof(e2)) != SM_ENOTFOUND) {
            snprintf(err, sizeof(err), "walking all .dvm entries: %.400s", e2);
            rc = SM_ECORRUPT;
        }
        rfs_blob_close(dvd);
        rfs_blob_close(dvm);
        if (rc) {
            fprintf(stderr, "%s soft deletes: %s\n", seg->name, err);
            return rc;
        }
        if (soft.count != softcount) {
            fprintf(stderr, "%s: %d soft-deleted docs decoded, SoftDelCount %d\n", seg->name,
                    soft.count, softcount);
            rfs_dv_docset_free(&soft);
            return SM_ECORRUPT;
        }
    }
    struct rfs_blob *fdt, *fdm;
    struct rfs_sf_reader *r;
    int rc = sf_open_reader(seg, dir, cfs, &fdt, &fdm, &r, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: %s\n", seg->name, err);
        rfs_dv_docset_free(&soft);
        return rc;
    }
    unsigned long long *hashes = calloc((size_t)seg->max_doc + 1, sizeof(*hashes));
    for (int d = 0; d < seg->max_doc && !rc; d++) {
        int dd, live, sd;
        if (!next_line(c) || sscanf(c->line, "doc %d live %d soft %d", &dd, &live, &sd) != 3 ||
            dd != d) {
            fprintf(stderr, "dump line %ld: expected doc %d: %s\n", c->lineno, d, c->line);
            rc = SM_ECORRUPT;
            break;
        }
        if (sd != (int)rfs_dv_docset_has(&soft, d)) {
            fprintf(stderr, "%s doc %d: soft-deleted %d in Lucene, %d decoded\n", seg->name, d, sd,
                    (int)rfs_dv_docset_has(&soft, d));
            rc = SM_ECORRUPT;
            break;
        }
        c->softdel += sd;
        c->dochash = 0;
        rc = rfs_sf_document(r, d, visit, c, err, sizeof(err));
        hashes[d] = c->dochash;
        if (rc) {
            if (!c->failed)
                fprintf(stderr, "%s doc %d: %s\n", seg->name, d, err);
            break;
        }
        c->docs++;
    }
    /* after the sequential pass the streamed CRC must match the footer */
    if (!rc && (rc = rfs_sf_verify_checksum(r, err, sizeof(err))))
        fprintf(stderr, "%s: %s\n", seg->name, err);
    rfs_sf_close(r);
    /* sparse, out-of-order visits on a fresh reader (chunk skipping and
     * rewinding) must give the same documents */
    if (!rc && (rc = rfs_sf_open(fdt, NULL, fdm, seg->id, "", seg->max_doc, &r, err,
                                 sizeof(err))) == 0) {
        int order[] = { seg->max_doc / 2, seg->max_doc - 1, 0, seg->max_doc / 3,
                        seg->max_doc - 1, seg->max_doc / 2 + 1 };
        c->replay = true;
        for (size_t k = 0; k < sizeof(order) / sizeof(order[0]) && !rc; k++) {
            int d = order[k];
            if (d < 0 || d >= seg->max_doc)
                continue;
            c->dochash = 0;
            rc = rfs_sf_document(r, d, visit, c, err, sizeof(err));
            if (!rc && c->dochash != hashes[d]) {
                snprintf(err, sizeof(err), "doc %d differs when visited out of order", d);
                rc = SM_ECORRUPT;
            }
        }
        c->replay = false;
        rfs_sf_close(r);
    }
    free(hashes);
    rfs_blob_close(fdm);
    rfs_blob_close(fdt);
    rfs_dv_docset_free(&soft);
    if (rc && err[0])
        fprintf(stderr, "%s: %s\n", seg->name, err);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s INDEX_DIR DUMP_FILE\n", argv[0]);
        return 2;
    }
    struct cmp c = { 0 };
    c.dump = fopen(argv[2], "r");
    if (!c.dump) {
        perror(argv[2]);
        return 1;
    }
    char err[512] = "";
    int rc = sf_each_segment(argv[1], seg_fn, &c, err, sizeof(err));
    if (!rc && next_line(&c)) {
        fprintf(stderr, "dump line %ld not consumed: %s\n", c.lineno, c.line);
        rc = SM_ECORRUPT;
    }
    fclose(c.dump);
    if (rc) {
        fprintf(stderr, "FAIL %s: %s %s\n", argv[1], sm_strerror(rc), err);
        return 1;
    }
    printf("ok %s: %ld docs, %ld fields, %ld soft-deleted match Lucene\n", argv[1], c.docs,
           c.fields, c.softdel);
    return 0;
}
