/* The Lucene iterator against an index written by real Lucene 8.7 at test
 * time (tests/lucene-gen/GenIndex.java): the documents produced must be
 * exactly those Lucene's dump marks live (hard) and not soft-deleted, in
 * order, with identical stored fields (FNV-64 of bytes, numeric values).
 *   test_lucene_gen INDEX_DIR DUMP_FILE */
#include "io/blob.h"
#include "lucene/esdoc.h"
#include "lucene/lucene.h"

#include <sm/err.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s INDEX_DIR DUMP\n", argv[0]);
        return 2;
    }
    char err[512] = "", line[512];
    struct rfs_dir *dir = NULL;
    struct rfs_lucene_index *idx = NULL;
    struct rfs_lucene_iter *it = NULL;
    FILE *dump = fopen(argv[2], "r");
    if (!dump || rfs_dir_open_fs(argv[1], &dir, err, sizeof(err)) ||
        rfs_lucene_open(dir, NULL, &idx, err, sizeof(err)) ||
        rfs_lucene_iter_open(idx, 0, 0, &it, err, sizeof(err))) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    size_t seg = (size_t)-1;
    long expected_docs = 0, soft_skipped = 0, hard_skipped = 0, fields_checked = 0;
    const struct rfs_lucene_doc *cur = NULL;   /* our document matching the dump's doc */
    size_t fi = 0;
    bool want = false;
    int failures = 0;
    while (fgets(line, sizeof(line), dump)) {
        if (!strncmp(line, "segment ", 8)) {
            seg++;
            continue;
        }
        if (!strncmp(line, "doc ", 4)) {
            if (want && cur && fi != cur->n_fields) {
                fprintf(stderr, "seg %zu doc %d: %zu fields, dump has %zu\n", seg, cur->doc,
                        cur->n_fields, fi);
                failures++;
            }
            int d, live, soft;
            if (sscanf(line, "doc %d live %d soft %d", &d, &live, &soft) != 3)
                return 1;
            want = live && !soft;
            soft_skipped += live && soft;
            hard_skipped += !live;
            fi = 0;
            cur = NULL;
            if (!want)
                continue;
            expected_docs++;
            if (rfs_lucene_iter_next(it, &cur, err, sizeof(err)) || !cur) {
                fprintf(stderr, "iterator ended/failed before seg %zu doc %d: %s\n", seg, d, err);
                return 1;
            }
            if (cur->seg != seg || cur->doc != d) {
                fprintf(stderr, "got seg %zu doc %d, expected seg %zu doc %d\n", cur->seg, cur->doc,
                        seg, d);
                return 1;
            }
            continue;
        }
        if (!strncmp(line, "f ", 2) && want && cur) {
            int num;
            char t;
            char rest[128];
            if (sscanf(line, "f %d %c %127[^\n]", &num, &t, rest) != 3)
                return 1;
            if (fi >= cur->n_fields) {
                fi++;
                continue;
            }
            const struct rfs_lucene_field *f = &cur->fields[fi++];
            bool ok = f->number == num;
            if (t == 's' || t == 'b') {
                size_t len;
                uint64_t h;
                sscanf(rest, "%zu %" SCNx64, &len, &h);
                ok = ok && f->type == (t == 's' ? RFS_LUCENE_STRING : RFS_LUCENE_BINARY) &&
                     f->len == len && fnv(f->bytes, f->len) == h;
            } else if (t == 'i' || t == 'l') {
                ok = ok && f->type == (t == 'i' ? RFS_LUCENE_INT : RFS_LUCENE_LONG) &&
                     f->ival == strtoll(rest, NULL, 10);
            } else {
                ok = ok && f->type == (t == 'f' ? RFS_LUCENE_FLOAT : RFS_LUCENE_DOUBLE);
            }
            fields_checked++;
            if (!ok) {
                fprintf(stderr, "seg %zu doc %d field %d (%c) differs\n", seg, cur->doc, num, t);
                failures++;
            }
        }
    }
    const struct rfs_lucene_doc *extra = NULL;
    if (rfs_lucene_iter_next(it, &extra, err, sizeof(err)) || extra) {
        fprintf(stderr, "iterator yields more documents than Lucene: %s\n", err);
        return 1;
    }
    struct rfs_lucene_iter_stats st;
    rfs_lucene_iter_stats(it, &st);
    printf("docs %ld (ours %" PRIu64 "), soft-deleted %ld (ours %" PRIu64 "), hard-deleted %ld "
           "(ours %" PRIu64 "), fields %ld, failures %d\n",
           expected_docs, st.docs, soft_skipped, st.soft_deleted, hard_skipped, st.hard_deleted,
           fields_checked, failures);
    if ((long)st.docs != expected_docs)
        failures++;
    rfs_lucene_iter_close(it);
    rfs_lucene_close(idx);
    rfs_dir_close(dir);
    fclose(dump);
    return failures ? 1 : 0;
}
