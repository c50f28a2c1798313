/* Fuzzes the stored-fields chunk decoder (and the LZ4 and document parsers).
 * Input: byte 0 selects the format (codec + version), byte 1 = maxDoc,
 * the rest is the .fdt data area (chunks) that gets wrapped in a valid
 * index header and footer, so the fuzzer spends its time in the chunks. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/blob.h"
#include "lucene/storedfields.h"
#include "lucene/storedfields_int.h"

struct fmt {
    const char *codec;
    int version;
    const char *meta;    /* .fdm codec or NULL (ChunkSize in .fdt) */
    int plain_header;    /* Lucene 4: no id/suffix */
};

static const struct fmt fmts[] = {
    { "Lucene41StoredFieldsData", 2, NULL, 1 },
    { "Lucene50StoredFieldsFastData", 1, NULL, 0 },
    { "Lucene50StoredFieldsHighData", 1, NULL, 0 },
    { "Lucene87StoredFieldsFastData", 3, "Lucene85FieldsIndexMeta", 0 },
    { "Lucene87StoredFieldsHighData", 4, "Lucene85FieldsIndexMeta", 0 },
    { "Lucene90StoredFieldsFastData", 1, "Lucene90FieldsIndexMeta", 0 },
    { "Lucene90StoredFieldsHighData", 1, "Lucene90FieldsIndexMeta", 0 },
    { "Lucene87StoredFieldsFastData", 4, "Lucene85FieldsIndexMeta", 0 },
    { "Lucene87StoredFieldsHighData", 3, "Lucene85FieldsIndexMeta", 0 },
};

static size_t put_header(uint8_t *p, const char *codec, int version, int plain)
{
    size_t n = 0, l = strlen(codec);
    p[n++] = 0x3f; p[n++] = 0xd7; p[n++] = 0x6c; p[n++] = 0x17;
    p[n++] = (uint8_t)l;
    memcpy(p + n, codec, l);
    n += l;
    p[n++] = 0; p[n++] = 0; p[n++] = 0; p[n++] = (uint8_t)version;
    if (!plain) {
        memset(p + n, 7, 16);
        n += 16;
        p[n++] = 0;
    }
    return n;
}

static size_t put_footer(uint8_t *p)
{
    static const uint8_t f[16] = { 0xc0, 0x28, 0x93, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
    memcpy(p, f, 16);
    return 16;
}

static int visit(void *arg, int field, int type, const uint8_t *b, size_t len, int64_t iv,
                 double dv)
{
    (void)field, (void)type, (void)iv, (void)dv;
    size_t *sum = arg;
    for (size_t i = 0; i < len; i += 97)   /* touch the bytes: ASan checks the bounds */
        *sum += b[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const struct fmt *f = &fmts[data[0] % (sizeof(fmts) / sizeof(fmts[0]))];
    int max_doc = data[1];
    data += 2;
    size -= 2;

    /* the raw parsers on the same bytes */
    uint8_t *out = malloc(4096 + RFS_SF_OUT_SLACK);
    if (!out)
        return 0;
    rfs_sf_lz4_lucene(data, size, out, size < 4096 ? size * 3 % 4096 : 4096);
    size_t sum = 0;
    rfs_sf_parse_doc(data, size, max_doc % 8, max_doc & 1 ? RFS_SF_NUM_Z_LE : RFS_SF_NUM_Z_BE,
                     visit, &sum, NULL, 0);
    free(out);

    uint8_t *fdt = malloc(size + 128), fdm[128];
    if (!fdt)
        return 0;
    const uint8_t id[16] = { 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7 };
    size_t n = put_header(fdt, f->codec, f->version, f->plain_header), m = 0;
    if (f->plain_header) {
        fdt[n++] = 0x80;     /* Lucene 4 slices implicitly: keep the real 16384 */
        fdt[n++] = 0x80;
        fdt[n++] = 0x01;
        fdt[n++] = 2;
    } else if (!f->meta) {
        fdt[n++] = 0x40;     /* ChunkSize 64: small, so slicing is reachable */
        fdt[n++] = 2;        /* PackedIntsVersion */
    } else {
        m = put_header(fdm, f->meta, f->version, 0);
        fdm[m++] = 0x40;
        fdm[m++] = 2;
        m += put_footer(fdm + m);
    }
    memcpy(fdt + n, data, size);
    n += size;
    n += put_footer(fdt + n);

    struct rfs_blob *b = NULL, *mb = NULL;
    struct rfs_sf_reader *r = NULL;
    if (rfs_blob_open_mem(fdt, n, false, "fuzz.fdt", &b) == 0 &&
        (!m || rfs_blob_open_mem(fdm, m, false, "fuzz.fdm", &mb) == 0) &&
        rfs_sf_open(b, NULL, mb, f->plain_header ? NULL : id, "", max_doc, &r, NULL, 0) == 0) {
        int d = 0;
        char err[256] = "";
        for (; d < max_doc; d++)
            if (rfs_sf_document(r, d, visit, &sum, err, sizeof(err)) != 0)
                break;
        if (getenv("FUZZ_SF_VERBOSE"))
            fprintf(stderr, "%s v%d: %d of %d docs decoded %s\n", f->codec, f->version, d,
                    max_doc, err);
        /* random access backwards after the sequential pass, then the CRC */
        if (max_doc > 1)
            rfs_sf_document(r, max_doc / 2, visit, &sum, NULL, 0);
        rfs_sf_verify_checksum(r, NULL, 0);
    }
    rfs_sf_close(r);
    rfs_blob_close(mb);
    rfs_blob_close(b);
    free(fdt);
    return 0;
}
