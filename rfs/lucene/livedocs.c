/* Hard deletes: Lucene50/90 live docs (_<seg>_<gen>.liv, one bit per doc,
 * 64-bit words) and Lucene 4.x BitVector deletion files (_<seg>_<gen>.del). */
#include "lucene/lucene_int.h"

#include <sm/err.h>
#include <sm/mem.h>

#include <stdio.h>
#include <string.h>

static uint64_t popcount_words(const uint64_t *w, size_t n)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += (uint64_t)__builtin_popcountll(w[i]);
    return c;
}

/* Lucene 4.x BitVector (Lucene40LiveDocsFormat): Int32 -2, header
 * "BitVector" v0..2, Int32 size, then either bits (Int32 count, bytes) or,
 * when size == -1, d-gaps of cleared bytes (Int32 size, Int32 count, VInt gap
 * + byte ...). Bit (doc & 7) of byte (doc >> 3) set = live. */
static int32_t read_bitvector(struct rfs_lu_in *in, const struct rfs_lu_segment *seg,
                              uint64_t *words, size_t nwords)
{
    int32_t version = 0;
    int32_t first = rfs_lu_be32(in);
    if (in->err)
        return 0;
    if (first != -2) {
        rfs_lu_fail(in, SM_EUNSUPPORTED,
                    "unsupported Lucene format BitVector (pre-4.0 deletion file, first int %d)",
                    first);
        return 0;
    }
    rfs_lu_check_header(in, "BitVector", 1, 2, &version);
    int32_t size = rfs_lu_be32(in);
    bool dgaps = size == -1;
    if (dgaps)
        size = rfs_lu_be32(in);
    int32_t count = rfs_lu_be32(in);
    if (in->err)
        return 0;
    if (size != seg->max_doc || count < 0 || count > size) {
        rfs_lu_fail(in, SM_ECORRUPT, "bit vector size %d/count %d does not match maxDoc %d", size,
                    count, seg->max_doc);
        return 0;
    }
    size_t nbytes = ((size_t)size + 7) / 8;
    uint8_t *bytes = sm_malloc(nbytes ? nbytes : 1);
    if (!bytes) {
        rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        return 0;
    }
    if (!dgaps) {
        rfs_lu_bytes(in, bytes, nbytes);
    } else {
        memset(bytes, 0xff, nbytes);
        if (size & 7)
            bytes[nbytes - 1] = (uint8_t)((1u << (size & 7)) - 1);
        int64_t cleared = (int64_t)size - count;
        size_t last = 0;
        while (cleared > 0 && !in->err) {
            int32_t gap = rfs_lu_vint(in);
            if (in->err)
                break;
            if (gap < 0 || last + (size_t)gap >= nbytes) {
                rfs_lu_fail(in, SM_ECORRUPT, "invalid d-gap %d", gap);
                break;
            }
            last += (size_t)gap;
            bytes[last] = rfs_lu_byte(in);
            cleared -= 8 - __builtin_popcount(bytes[last]);
        }
    }
    if (!in->err) {
        memset(words, 0, nwords * sizeof(uint64_t));
        for (size_t i = 0; i < nbytes; i++)
            words[i >> 3] |= (uint64_t)bytes[i] << ((i & 7) * 8);
        if (size & 63)
            words[nwords - 1] &= (1ull << (size & 63)) - 1;
        uint64_t live = popcount_words(words, nwords);
        if (live != (uint64_t)count)
            rfs_lu_fail(in, SM_ECORRUPT, "bit vector count %d but %llu bits set", count,
                        (unsigned long long)live);
    }
    sm_free(bytes);
    if (version >= 2)
        rfs_lu_check_footer_pos(in, NULL);
    else if (!in->err && rfs_lu_remaining(in))
        rfs_lu_fail(in, SM_ECORRUPT, "trailing bytes after bit vector");
    return version;
}

int rfs_lu_livedocs_read(const struct rfs_lu_segctx *ctx, uint64_t **out, char *err,
                         size_t errlen)
{
    const struct rfs_lu_segment *seg = ctx->si;
    *out = NULL;
    if (seg->del_gen == -1) {
        if (seg->del_count)
            return sm_errf(err, errlen, SM_ECORRUPT,
                           "segment %s: %d deletions but no live-docs generation", seg->name,
                           seg->del_count);
        return SM_OK;
    }
    if (seg->del_gen < 0)
        return sm_errf(err, errlen, SM_ECORRUPT, "segment %s: invalid delGen %lld", seg->name,
                       (long long)seg->del_gen);
    bool lu4 = !seg->has_id;
    char file[300], gen[16];
    int rc = rfs_lu_gen_file_name(seg->name, seg->del_gen, lu4 ? ".del" : ".liv", file,
                                  sizeof(file));
    if (rc)
        return sm_errf(err, errlen, rc, "%s: segment name too long", seg->name);
    rfs_lu_base36((uint64_t)seg->del_gen, gen, sizeof(gen));
    struct rfs_blob *blob = NULL;
    if ((rc = rfs_dir_open(ctx->dir, file, &blob, err, errlen)))
        return rc;
    size_t nwords = ((size_t)seg->max_doc + 63) / 64;
    /* size check before allocating maxDoc bits */
    uint64_t want = lu4 ? 0 : rfs_lu_index_header_len("Lucene50LiveDocs", gen) + 8 * (uint64_t)nwords +
                                  RFS_LU_FOOTER_LEN;
    if ((!lu4 && blob->size != want) || (lu4 && blob->size > 64 + 2 * (uint64_t)nwords * 8 + 16)) {
        rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: %llu bytes, expected %llu for maxDoc %d", file,
                     (unsigned long long)blob->size, (unsigned long long)want, seg->max_doc);
        rfs_blob_close(blob);
        return rc;
    }
    uint64_t *words = sm_calloc(nwords ? nwords : 1, sizeof(uint64_t));
    struct rfs_lu_in *in = sm_malloc(sizeof(*in));
    if (!words || !in) {
        rc = sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", file);
        goto out;
    }
    rfs_lu_in_init(in, blob, file);
    bool footer = true;
    if (lu4) {
        footer = read_bitvector(in, seg, words, nwords) >= 2;
    } else {
        struct rfs_lu_header h;
        rfs_lu_read_header(in, &h);
        if (!in->err && strcmp(h.codec, "Lucene50LiveDocs") && strcmp(h.codec, "Lucene90LiveDocs"))
            rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene live docs format %s version %d",
                        h.codec, h.version);
        else if (!in->err && h.version != 0)
            rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene format %s version %d (supported 0..0)",
                        h.codec, h.version);
        rfs_lu_read_header_id(in, &h);
        if (!in->err && memcmp(h.id, seg->id, RFS_LU_ID_LEN))
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: id differs from segment %s", seg->name);
        if (!in->err && strcmp(h.suffix, gen))
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: suffix '%s', expected '%s'", h.suffix,
                        gen);
        in->le = !strcmp(h.codec, "Lucene90LiveDocs");
        for (size_t i = 0; i < nwords && !in->err; i++)
            words[i] = (uint64_t)rfs_lu_i64(in);
        rfs_lu_check_footer_pos(in, NULL);
        if (!in->err && (seg->max_doc & 63) && (words[nwords - 1] >> (seg->max_doc & 63)))
            rfs_lu_fail(in, SM_ECORRUPT, "live bits set past maxDoc %d", seg->max_doc);
    }
    if (!in->err) {
        uint64_t live = popcount_words(words, nwords);
        if ((uint64_t)seg->max_doc - live != (uint64_t)seg->del_count)
            rfs_lu_fail(in, SM_ECORRUPT, "%llu deleted docs but segments_N says %d",
                        (unsigned long long)((uint64_t)seg->max_doc - live), seg->del_count);
    }
    rc = rfs_lu_in_err(in, err, errlen);
    if (!rc && footer)
        rc = rfs_lu_verify_checksum(blob, file, err, errlen);
out:
    sm_free(in);
    rfs_blob_close(blob);
    if (rc) {
        sm_free(words);
        return rc;
    }
    *out = words;
    return SM_OK;
}
