/* CodecUtil header/footer with CRC32 verification, DFL/ZSTD/LZF wrappers, and
 * whole-blob XContent decoding: good blobs, every flipped byte, every cut. */
#include "repo/codec.h"
#include "smile/smile.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <lzf.h>
#include <zlib.h>
#include <zstd.h>

#include "sm_test.h"

#define SNAP_7_10 "tests/fixtures/snapshots/ES_7_10_Single/snap-7_1RHMshSc6c0cuzX1NCDg.dat"

static int load(const char *rel, uint8_t **data, size_t *len)
{
    return sm_read_file(sm_src_path(rel), 1 << 24, data, len);
}

static int test_header_and_footer_good(void)
{
    uint8_t *d;
    size_t n;
    SM_CHECK_EQ_INT(load(SNAP_7_10, &d, &n), SM_OK);
    struct rfs_codec_header h;
    char err[256];
    SM_CHECK_EQ_INT(rfs_codec_read_header(d, n, false, "snapshot", 1, 1, &h, "snap", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(h.codec, "snapshot");
    SM_CHECK_EQ_INT(h.version, 1);
    SM_CHECK_EQ_INT(h.len, 17);
    uint64_t crc = 0;
    SM_CHECK_EQ_INT(rfs_codec_check_footer(d, n, &crc, "snap", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(crc, 0x88e0bd7du);
    /* wrong codec / version range */
    SM_CHECK_EQ_INT(rfs_codec_read_header(d, n, false, "metadata", 1, 1, &h, "x/snap.dat", err, sizeof(err)),
                    SM_ECORRUPT);
    SM_CHECK_EQ_STR(err, "x/snap.dat: codec 'snapshot', expected 'metadata'");
    SM_CHECK_EQ_INT(rfs_codec_read_header(d, n, false, NULL, 2, 3, &h, "x", err, sizeof(err)), SM_EUNSUPPORTED);
    sm_free(d);
    return 0;
}

static int test_index_header_with_id_and_suffix(void)
{
    /* ES_7_10_Updates_Deletes_w_Soft segments_3 lives in meta_hash; a Lucene
     * file from the repository: _0_2_Lucene80_0.dvd */
    uint8_t *d;
    size_t n;
    SM_CHECK_EQ_INT(load("tests/fixtures/snapshots/ES_7_10_Updates_Deletes_w_Soft/indices/ADqaSwRmQGeZpfc8raDTtA/0/"
                         "__-yEaPZRTQfSRwCiHpq5vHQ", &d, &n), SM_OK);
    SM_CHECK_EQ_INT(n, 75);
    struct rfs_codec_header h;
    char err[256];
    SM_CHECK_EQ_INT(rfs_codec_read_header(d, n, true, NULL, 0, 10, &h, "dvd", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(h.codec, "Lucene80DocValuesData");
    SM_CHECK(h.has_id);
    SM_CHECK_EQ_STR(h.suffix, "2_Lucene80_0");
    uint64_t crc;
    SM_CHECK_EQ_INT(rfs_codec_check_footer(d, n, &crc, "dvd", err, sizeof(err)), SM_OK);
    uint32_t want;
    /* checksum in the shard metadata: "1in2hg2" (base 36) */
    want = 0;
    for (const char *p = "1in2hg2"; *p; p++)
        want = want * 36 + (uint32_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
    SM_CHECK_EQ_INT(crc, want);
    /* the suffix length runs past the end */
    SM_CHECK_EQ_INT(rfs_codec_read_header(d, h.len - 3, true, NULL, 0, 10, &h, "dvd", err, sizeof(err)), SM_ECORRUPT);
    sm_free(d);
    return 0;
}

/* Every single flipped byte and every truncation gives an error naming the blob. */
static int test_every_flip_and_cut_fails(void)
{
    uint8_t *d;
    size_t n;
    SM_CHECK_EQ_INT(load(SNAP_7_10, &d, &n), SM_OK);
    char err[256];
    json_t *j = NULL;
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent(d, n, "snapshot", false, &j, "snap-7.dat", err, sizeof(err)), SM_OK);
    json_decref(j);
    for (size_t i = 0; i < n; i++) {
        d[i] ^= 0x01;
        j = NULL;
        err[0] = 0;
        int rc = rfs_codec_decode_xcontent(d, n, "snapshot", false, &j, "indices/x/0/snap-u.dat", err, sizeof(err));
        d[i] ^= 0x01;
        if (rc == SM_OK) {
            fprintf(stderr, "flip at %zu accepted\n", i);
            json_decref(j);
            return 1;
        }
        SM_CHECK(!strncmp(err, "indices/x/0/snap-u.dat: ", 24));
        if (i >= 17 && i < n - 16)   /* payload bytes: caught by the CRC */
            SM_CHECK(strstr(err, "footer CRC ") != NULL);
    }
    /* the documented message form */
    d[100] ^= 0xff;
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent(d, n, "snapshot", false, &j, "indices/x/0/snap-u.dat", err, sizeof(err)),
                    SM_ECORRUPT);
    uint32_t actual = sm_crc32(0, d, n - 8);
    char want[128];
    snprintf(want, sizeof(want), "indices/x/0/snap-u.dat: footer CRC %08x != 88e0bd7d", actual);
    SM_CHECK_EQ_STR(err, want);
    d[100] ^= 0xff;
    for (size_t cut = 0; cut < n; cut++) {
        int rc = rfs_codec_decode_xcontent(d, cut, "snapshot", false, &j, "snap-u.dat", err, sizeof(err));
        SM_CHECK(rc != SM_OK);
        SM_CHECK(!strncmp(err, "snap-u.dat: ", 12));
    }
    sm_free(d);
    return 0;
}

/* Builds a CodecUtil blob around payload, with a correct footer. */
static void make_blob(struct sm_buf *b, const char *codec, const uint8_t *payload, size_t n)
{
    sm_buf_append(b, "\x3f\xd7\x6c\x17", 4);
    uint8_t l = (uint8_t)strlen(codec);
    sm_buf_append(b, &l, 1);
    sm_buf_append_str(b, codec);
    sm_buf_append(b, "\0\0\0\1", 4);
    sm_buf_append(b, payload, n);
    sm_buf_append(b, "\xc0\x28\x93\xe8\0\0\0\0\0\0\0\0", 12);
    uint32_t crc = sm_crc32(0, b->data, b->len - 4);
    uint8_t c[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc };
    sm_buf_append(b, c, 4);
}

static int smile_payload(uint8_t **p, size_t *n)
{
    uint8_t *d;
    size_t len;
    if (load(SNAP_7_10, &d, &len))
        return 1;
    *n = len - 17 - 16;
    *p = sm_memdup(d + 17, *n);
    sm_free(d);
    return 0;
}

static int test_deflate_wrapper(void)
{
    uint8_t *smile;
    size_t sn;
    SM_CHECK_EQ_INT(smile_payload(&smile, &sn), 0);
    uint8_t comp[4096];
    memcpy(comp, "DFL\0", 4);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    SM_CHECK_EQ_INT(deflateInit2(&zs, 3, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = smile;
    zs.avail_in = (uInt)sn;
    zs.next_out = comp + 4;
    zs.avail_out = sizeof(comp) - 4;
    SM_CHECK_EQ_INT(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t cn = 4 + zs.total_out;
    deflateEnd(&zs);
    SM_CHECK_EQ_INT(rfs_codec_detect_compression(comp, cn), RFS_COMP_DEFLATE);
    struct sm_buf b;
    sm_buf_init(&b, 1 << 20);
    make_blob(&b, "snapshot", comp, cn);
    json_t *j = NULL, *ref = NULL;
    char err[256];
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent(b.data, b.len, "snapshot", false, &j, "dfl", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(rfs_smile_to_jansson(smile, sn, NULL, &ref, err, sizeof(err)), SM_OK);
    SM_CHECK(json_equal(j, ref));
    json_decref(j);
    /* a truncated deflate stream (valid CRC over the cut stream) is an error */
    sm_buf_reset(&b);
    make_blob(&b, "snapshot", comp, cn - 10);
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent(b.data, b.len, "snapshot", false, &j, "dfl", err, sizeof(err)),
                    SM_ECORRUPT);
    SM_CHECK(strstr(err, "dfl: ") == err);
    /* a corrupt stream */
    comp[6] ^= 0xff;
    comp[7] ^= 0xff;
    sm_buf_reset(&b);
    make_blob(&b, "snapshot", comp, cn);
    SM_CHECK(rfs_codec_decode_xcontent(b.data, b.len, "snapshot", false, &j, "dfl", err, sizeof(err)) != SM_OK);
    /* output cap */
    uint8_t *out;
    size_t outlen;
    comp[6] ^= 0xff;
    comp[7] ^= 0xff;
    SM_CHECK_EQ_INT(rfs_codec_decompress(comp, cn, 100, &out, &outlen, "dfl", err, sizeof(err)), SM_EFULL);
    SM_CHECK_EQ_INT(rfs_codec_decompress(comp, cn, 1 << 20, &out, &outlen, "dfl", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(outlen, sn);
    SM_CHECK_MEM(out, smile, sn);
    sm_free(out);
    json_decref(ref);
    sm_buf_free(&b);
    sm_free(smile);
    return 0;
}

static int test_zstd_wrapper(void)
{
    uint8_t *smile;
    size_t sn;
    SM_CHECK_EQ_INT(smile_payload(&smile, &sn), 0);
    uint8_t comp[4096];
    memcpy(comp, "ZSTD\0", 5);
    size_t zn = ZSTD_compress(comp + 5, sizeof(comp) - 5, smile, sn, 3);
    SM_CHECK(!ZSTD_isError(zn));
    struct sm_buf b;
    sm_buf_init(&b, 1 << 20);
    make_blob(&b, "snapshot", comp, 5 + zn);
    json_t *j = NULL, *ref = NULL;
    char err[256];
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent(b.data, b.len, "snapshot", false, &j, "zstd", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(rfs_smile_to_jansson(smile, sn, NULL, &ref, err, sizeof(err)), SM_OK);
    SM_CHECK(json_equal(j, ref));
    json_decref(j);
    json_decref(ref);
    sm_buf_reset(&b);
    make_blob(&b, "snapshot", comp, 5 + zn - 4);
    SM_CHECK(rfs_codec_decode_xcontent(b.data, b.len, "snapshot", false, &j, "zstd", err, sizeof(err)) != SM_OK);
    SM_CHECK(strstr(err, "zstd: ") == err);
    sm_buf_free(&b);
    sm_free(smile);
    return 0;
}

static int test_lzf_fixture_es1(void)
{
    /* ES 1.7.4 compress:true wrote snapshot-snap1x as one compressed LZF chunk;
     * the same content uncompressed is snapshot-snap1x_uncompressed except the name. */
    uint8_t *d, *u;
    size_t n, un;
    SM_CHECK_EQ_INT(load("tests/fixtures/snapshots/ES_1_7_4_compressed/snapshot-snap1x", &d, &n), SM_OK);
    SM_CHECK_EQ_INT(rfs_codec_detect_compression(d, n), RFS_COMP_LZF);
    char err[256];
    uint8_t *out;
    size_t outlen;
    SM_CHECK_EQ_INT(rfs_lzf_decode(d, n, 1 << 20, &out, &outlen, "snapshot-snap1x", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(outlen, 192);
    SM_CHECK_EQ_STR((char *)out, "{\"snapshot\":{\"name\":\"snap1x\",\"version_id\":1070499,\"indices\":[\"idx\"],"
                                 "\"state\":\"SUCCESS\",\"start_time\":1482168226535,\"end_time\":1482168226563,"
                                 "\"total_shards\":5,\"successful_shards\":5,\"failures\":[]}}");
    sm_free(out);
    /* type-0 (stored) chunk: metadata-snap1x */
    SM_CHECK_EQ_INT(load("tests/fixtures/snapshots/ES_1_7_4_compressed/metadata-snap1x", &u, &un), SM_OK);
    SM_CHECK_EQ_INT(rfs_lzf_decode(u, un, 1 << 20, &out, &outlen, "metadata-snap1x", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR((char *)out, "{\"meta-data\":{\"version\":5,\"uuid\":\"Frltp3ZrQ1WLeUtsJyqjzg\",\"templates\":{}}}");
    sm_free(out);
    /* cut and flipped chunks fail with the blob's name */
    for (size_t cut = 1; cut < n; cut++) {
        int rc = rfs_lzf_decode(d, cut, 1 << 20, &out, &outlen, "snapshot-snap1x", err, sizeof(err));
        SM_CHECK(rc != SM_OK);
        SM_CHECK(strstr(err, "snapshot-snap1x: ") == err);
    }
    d[3] ^= 0x40;   /* compressed length */
    SM_CHECK(rfs_lzf_decode(d, n, 1 << 20, &out, &outlen, "s", err, sizeof(err)) != SM_OK);
    d[3] ^= 0x40;
    d[6] ^= 0x01;   /* uncompressed length */
    SM_CHECK(rfs_lzf_decode(d, n, 1 << 20, &out, &outlen, "s", err, sizeof(err)) != SM_OK);
    d[6] ^= 0x01;
    d[2] = 7;       /* chunk type */
    SM_CHECK_EQ_INT(rfs_lzf_decode(d, n, 1 << 20, &out, &outlen, "s", err, sizeof(err)), SM_ECORRUPT);
    sm_free(d);
    sm_free(u);
    return 0;
}

/* Multi-chunk stream made with liblzf's compressor (64 KiB chunks, as Ning's encoder). */
static int test_lzf_multi_chunk_roundtrip(void)
{
    size_t total = 300000;
    uint8_t *src = sm_malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (uint8_t)((i * 7) % 251 < 100 ? 'a' + i % 3 : i % 256);
    struct sm_buf b;
    sm_buf_init(&b, 1 << 22);
    uint8_t tmp[70000];
    for (size_t off = 0; off < total; off += 65535) {
        size_t len = total - off < 65535 ? total - off : 65535;
        unsigned c = lzf_compress(src + off, (unsigned)len, tmp, (unsigned)len - 1);
        if (c) {
            uint8_t h[7] = { 'Z', 'V', 1, (uint8_t)(c >> 8), (uint8_t)c, (uint8_t)(len >> 8), (uint8_t)len };
            sm_buf_append(&b, h, 7);
            sm_buf_append(&b, tmp, c);
        } else {
            uint8_t h[5] = { 'Z', 'V', 0, (uint8_t)(len >> 8), (uint8_t)len };
            sm_buf_append(&b, h, 5);
            sm_buf_append(&b, src + off, len);
        }
    }
    uint8_t *out;
    size_t outlen;
    char err[256];
    SM_CHECK_EQ_INT(rfs_codec_decompress(b.data, b.len, 1 << 22, &out, &outlen, "lzf", err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(outlen, total);
    SM_CHECK_MEM(out, src, total);
    sm_free(out);
    SM_CHECK_EQ_INT(rfs_codec_decompress(b.data, b.len, 1000, &out, &outlen, "lzf", err, sizeof(err)), SM_EFULL);
    sm_buf_free(&b);
    sm_free(src);
    return 0;
}

static int test_plain_and_es1_xcontent(void)
{
    static const char js[] = "  {\"snapshots\":[\"a\",\"b\"]}";
    json_t *j = NULL;
    char err[256];
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent((const uint8_t *)js, strlen(js), NULL, true, &j, "index", err,
                                              sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(json_array_size(json_object_get(j, "snapshots")), 2);
    json_decref(j);
    /* without allow_plain a header is required */
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent((const uint8_t *)js, strlen(js), NULL, false, &j, "snap-x.dat", err,
                                              sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "snap-x.dat: no codec header"));
    static const char bad[] = "{\"a\":";
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent((const uint8_t *)bad, strlen(bad), NULL, true, &j, "index", err,
                                              sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "index: invalid JSON"));
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent((const uint8_t *)"xyz", 3, NULL, true, &j, "index", err, sizeof(err)),
                    SM_ECORRUPT);
    return 0;
}

static int test_blob_verify_streaming(void)
{
    char err[256];
    struct rfs_blob *blob;
    SM_CHECK_EQ_INT(rfs_blob_open_file(sm_src_path(SNAP_7_10), "snap", &blob, err, sizeof(err)), SM_OK);
    uint64_t crc;
    SM_CHECK_EQ_INT(rfs_codec_blob_footer(blob, &crc, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(crc, 0x88e0bd7du);
    SM_CHECK_EQ_INT(rfs_codec_blob_verify(blob, &crc, err, sizeof(err)), SM_OK);
    rfs_blob_close(blob);
    uint8_t *d;
    size_t n;
    SM_CHECK_EQ_INT(load(SNAP_7_10, &d, &n), SM_OK);
    d[50] ^= 4;
    SM_CHECK_EQ_INT(rfs_blob_open_mem(d, n, false, "mem-snap", &blob), SM_OK);
    SM_CHECK_EQ_INT(rfs_codec_blob_footer(blob, &crc, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(rfs_codec_blob_verify(blob, &crc, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "mem-snap: footer CRC ") == err);
    rfs_blob_close(blob);
    SM_CHECK_EQ_INT(rfs_blob_open_mem(d, 10, false, "tiny", &blob), SM_OK);
    SM_CHECK_EQ_INT(rfs_codec_blob_footer(blob, &crc, err, sizeof(err)), SM_ECORRUPT);
    rfs_blob_close(blob);
    sm_free(d);
    return 0;
}

/* Shard-level index-<gen> (BlobStoreIndexShardSnapshots), codec "snapshots" (spec 4.3). The
 * file union can be larger than the snapshot's list (6.8: 11 vs 10, an older commit's file). */
static int test_shard_index_gen_blobs(void)
{
    static const struct { const char *path; size_t files; bool state_id; } cases[] = {
        { "ES_5_6_Updates_Deletes/indices/-KQKQKwfQ8-nhYQ8JfijxQ/0/index-0", 10, false },
        { "ES_6_8_Single/indices/d3oMxx4IROOWpmPdoY9f_Q/0/index-1", 11, false },
        { "ES_7_10_Updates_Deletes_w_Soft/indices/ADqaSwRmQGeZpfc8raDTtA/0/index-_5mr5NhPQfOXBKkFGoyXuA", 13, true },
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
        char rel[512];
        snprintf(rel, sizeof(rel), "tests/fixtures/snapshots/%s", cases[i].path);
        uint8_t *d;
        size_t n;
        SM_CHECK_EQ_INT(load(rel, &d, &n), SM_OK);
        struct rfs_codec_header h;
        char err[256];
        SM_CHECK_EQ_INT(rfs_codec_read_header(d, n, false, "snapshots", 1, 1, &h, rel, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_INT(h.len, 18);
        json_t *j = NULL;
        SM_CHECK_EQ_INT(rfs_codec_decode_xcontent(d, n, "snapshots", false, &j, rel, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_INT(json_array_size(json_object_get(j, "files")), cases[i].files);
        json_t *snaps = json_object_get(j, "snapshots");
        SM_CHECK(json_object_size(snaps) >= 1);
        const char *name;
        json_t *v;
        json_object_foreach(snaps, name, v) {
            SM_CHECK(json_is_array(json_object_get(v, "files")));
            SM_CHECK_EQ_INT(json_object_get(v, "shard_state_id") != NULL, cases[i].state_id);
        }
        json_decref(j);
        sm_free(d);
    }
    return 0;
}

SM_TEST_MAIN(SM_TC(test_header_and_footer_good), SM_TC(test_index_header_with_id_and_suffix),
             SM_TC(test_every_flip_and_cut_fails), SM_TC(test_deflate_wrapper), SM_TC(test_zstd_wrapper),
             SM_TC(test_lzf_fixture_es1), SM_TC(test_lzf_multi_chunk_roundtrip), SM_TC(test_plain_and_es1_xcontent),
             SM_TC(test_blob_verify_streaming), SM_TC(test_shard_index_gen_blobs))
