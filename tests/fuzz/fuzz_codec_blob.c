/* libFuzzer harness: CodecUtil header/footer, DFL/ZSTD/LZF wrappers and
 * metadata blob decoding (SMILE or JSON inside), as a repository blob would
 * be read; plus the streaming footer/CRC check over a memory blob, and the
 * CBOR -> JSON converter used for CBOR _source. */
#include "repo/cbor_json.h"
#include "repo/codec.h"

#include <sm/buf.h>
#include <sm/mem.h>

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *j = NULL;
    if (rfs_codec_decode_xcontent(data, size, NULL, true, &j, "fuzz", err, sizeof(err)) == 0)
        json_decref(j);
    struct rfs_codec_header hdr;
    (void)rfs_codec_read_header(data, size, true, NULL, 0, 100, &hdr, "fuzz", err, sizeof(err));
    uint8_t *out = NULL;
    size_t outlen = 0;
    if (rfs_codec_decompress(data, size, 1 << 20, &out, &outlen, "fuzz", err, sizeof(err)) == 0)
        sm_free(out);
    struct sm_buf b;
    sm_buf_init(&b, 1 << 20);
    (void)rfs_cbor_to_json(data, size, &b, err, sizeof(err));
    sm_buf_free(&b);
    struct rfs_blob *blob = NULL;
    if (rfs_blob_open_mem(data, size, false, "fuzz", &blob) == 0) {
        uint64_t crc;
        (void)rfs_codec_blob_verify(blob, &crc, err, sizeof(err));
        rfs_blob_close(blob);
    }
    return 0;
}
