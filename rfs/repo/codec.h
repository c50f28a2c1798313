/* Elasticsearch/OpenSearch repository blob encodings:
 *  - Lucene CodecUtil header/footer (ES 2.x+ metadata blobs, every Lucene file)
 *    with CRC32 verification;
 *  - compression wrappers: DFL\0 (raw deflate), ZSTD\0 (OpenSearch), LZF ZV chunks
 *    (ES 1.x; liblzf decodes the chunk bodies);
 *  - "XContent" decoding of a whole metadata blob into a jansson tree (SMILE or JSON).
 *
 * All functions work on bytes in memory (metadata blobs are small, capped by
 * RFS_REPO_META_MAX) and name the blob in every error message. */
#ifndef RFS_REPO_CODEC_H
#define RFS_REPO_CODEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "io/blob.h"

#define RFS_CODEC_MAGIC        0x3fd76c17u
#define RFS_CODEC_FOOTER_MAGIC 0xc02893e8u
#define RFS_CODEC_FOOTER_LEN   16
#define RFS_REPO_META_MAX      (256u * 1024 * 1024)   /* largest metadata blob / decompressed payload */

struct rfs_codec_header {
    char codec[128];          /* "snapshot", "segments", ... */
    int32_t version;
    bool has_id;              /* index header (writeIndexHeader) */
    uint8_t id[16];
    char suffix[256];         /* index header suffix ("" if none) */
    size_t len;               /* header length in bytes */
};

/* Parses a CodecUtil header at the start of p[0..n). If id_and_suffix, also
 * the 16-byte object id and the suffix (Lucene index header). expect_codec
 * (may be NULL) must equal the codec name; version must be within
 * [min_ver, max_ver]. */
int rfs_codec_read_header(const uint8_t *p, size_t n, bool id_and_suffix, const char *expect_codec,
                          int32_t min_ver, int32_t max_ver, struct rfs_codec_header *hdr,
                          const char *name, char *err, size_t errlen);

/* Checks the 16-byte footer of p[0..n): magic, algorithm 0, and the CRC32 of
 * p[0..n-8) against the stored value. *crc receives the stored checksum. */
int rfs_codec_check_footer(const uint8_t *p, size_t n, uint64_t *crc, const char *name,
                           char *err, size_t errlen);

/* Reads only the footer of a (possibly large) blob: magic + algorithm and the
 * stored checksum, without computing anything. */
int rfs_codec_blob_footer(struct rfs_blob *blob, uint64_t *crc, char *err, size_t errlen);

/* Streams the whole blob through CRC32 and compares with its footer. */
int rfs_codec_blob_verify(struct rfs_blob *blob, uint64_t *crc, char *err, size_t errlen);

/* Compression wrapper of a payload. */
enum rfs_codec_compression { RFS_COMP_NONE, RFS_COMP_DEFLATE, RFS_COMP_LZF, RFS_COMP_ZSTD };
enum rfs_codec_compression rfs_codec_detect_compression(const uint8_t *p, size_t n);

/* Decompresses p[0..n) according to its magic (DFL\0, ZSTD\0, ZV) into a new
 * sm_malloc'd buffer (+1 NUL byte, not counted), at most max bytes. Input
 * without a known magic is copied. */
int rfs_codec_decompress(const uint8_t *p, size_t n, size_t max, uint8_t **out, size_t *outlen,
                         const char *name, char *err, size_t errlen);

/* LZF "ZV" chunk stream (Ning compress-lzf framing) -> bytes. */
int rfs_lzf_decode(const uint8_t *p, size_t n, size_t max, uint8_t **out, size_t *outlen,
                   const char *name, char *err, size_t errlen);

/* Whole metadata blob -> JSON tree. Accepts:
 *  - CodecUtil blob (expect_codec, version 1) whose payload is SMILE or JSON,
 *    optionally DFL/ZSTD/LZF-compressed (ES 2.x+, OS);
 *  - a blob without CodecUtil header: plain JSON or SMILE, optionally LZF
 *    (ES 1.x) -- only when allow_plain.
 * The footer CRC is always verified when a CodecUtil header is present. */
int rfs_codec_decode_xcontent(const uint8_t *p, size_t n, const char *expect_codec, bool allow_plain,
                              json_t **out, const char *name, char *err, size_t errlen);

/* Reads dir/path (at most RFS_REPO_META_MAX bytes) and decodes it as above. */
int rfs_repo_read_xcontent(struct rfs_dir *dir, const char *path, const char *expect_codec,
                           bool allow_plain, json_t **out, char *err, size_t errlen);

#endif
