/* Internal helpers of the stored-fields and doc-values decoders. */
#ifndef RFS_LUCENE_STOREDFIELDS_INT_H
#define RFS_LUCENE_STOREDFIELDS_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

/* Every decompression output buffer has this many writable bytes past the
 * decoded length (wild copies, liblz4 capacity padding). */
#define RFS_SF_OUT_SLACK 64

/* Lucene LZ4 without a compressed length: decodes exactly n bytes into out
 * (out must have n + RFS_SF_OUT_SLACK writable bytes; match offsets may only
 * reach back to out[0]). Returns input bytes consumed, or -1 if the input is
 * malformed or shorter than needed. Never reads past in + in_len. */
long rfs_sf_lz4_lucene(const uint8_t *in, size_t in_len, uint8_t *out, size_t n);

/* Same walk as rfs_sf_lz4_lucene without producing output: input bytes an
 * n-byte block occupies, or -1. */
long rfs_sf_lz4_skip(const uint8_t *in, size_t in_len, size_t n);

/* One LZ4 block of exactly in_len compressed bytes decoding to exactly n bytes
 * (out has n + RFS_SF_OUT_SLACK bytes), with an optional dictionary that
 * offsets may reach into. SM_OK or SM_ECORRUPT. */
int rfs_sf_lz4_block(const uint8_t *in, size_t in_len, uint8_t *out, size_t n,
                     const uint8_t *dict, size_t dict_len);

/* Raw DEFLATE of exactly in_len bytes to exactly n bytes, optional preset
 * dictionary. *inited tracks z's state (inflateEnd it when true). */
int rfs_sf_inflate(z_stream *z, bool *inited, const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t n, const uint8_t *dict, size_t dict_len);

/* One zstd frame to exactly n bytes, optional raw-content dictionary.
 * *dctx is created on first use (free with ZSTD_freeDCtx). */
int rfs_sf_zstd(void **dctx, const uint8_t *in, size_t in_len, uint8_t *out, size_t n,
                const uint8_t *dict, size_t dict_len);

#endif
