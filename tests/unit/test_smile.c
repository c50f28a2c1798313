/* SMILE decoder: every token type, shared names/values (incl. the 1024 reset),
 * limits, truncation, and the real blobs Elasticsearch/OpenSearch wrote. */
#include "repo/codec.h"
#include "smile/smile.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include "sm_test.h"

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (h[0] && h[1] && n < cap) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

/* Built by an independent encoder following the SMILE specification (see
 * tests/unit/test_smile.c history: fields e..kkk cover every value token). */
static const char ALL_TOKENS_HEX[] =
    "3a290a04fa806520806e2180662280742382693332241f8f856933326d6178241f7f7f7fbe826936342501471957636bb3856936"
    "346d696e25037f7f7f7f7f7f7f7fbf8262696726892000000000000000000000836e626967268960000000000000000000008266"
    "6c7428037e0000008264626c29003f5c6633194c66331a8364626c3229004425465c4d370b5e508162642a848267710382626432"
    "2a948102018173616061616161616161616161616161616161616161616161616161616161616161616181747580c3a9817375a0"
    "c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9816c61e06262626262626262626262626262"
    "62626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262"
    "62626262fc816c75e4c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a"
    "22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a"
    "22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22c3a90a22fc816237e88a0000202018100a060342010182726177fd8300ff10"
    "817369df817370de20c0c3c3a974c3a921346b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b"
    "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6bfcf8f8f9fafbf9fbff";

static int to_json(const uint8_t *p, size_t n, char **out)
{
    struct sm_buf b;
    sm_buf_init(&b, 1 << 20);
    char err[256];
    int rc = rfs_smile_to_json(p, n, NULL, &b, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "to_json: %s\n", err);
        sm_buf_free(&b);
        return rc;
    }
    sm_buf_append(&b, "", 1);
    *out = (char *)b.data;
    return SM_OK;
}

static int test_all_value_tokens_to_json(void)
{
    uint8_t doc[2048];
    size_t n = unhex(ALL_TOKENS_HEX, doc, sizeof(doc));
    char *js = NULL;
    SM_CHECK_EQ_INT(to_json(doc, n, &js), SM_OK);
    struct sm_buf exp;
    sm_buf_init(&exp, 1 << 16);
    sm_buf_append_str(&exp, "{\"e\":\"\",\"n\":null,\"f\":false,\"t\":true,\"i32\":-1000,\"i32max\":2147483647,"
                            "\"i64\":-1711120727418,\"i64min\":-9223372036854775808,"
                            "\"big\":1180591620717411303424,\"nbig\":-1180591620717411303424,"
                            "\"flt\":1.5,\"dbl\":0.1,\"dbl2\":1.0E21,\"bd\":-123.45,\"bd2\":5E-10,\"sa\":\"");
    for (int i = 0; i < 33; i++)
        sm_buf_append_str(&exp, "a");
    sm_buf_append_str(&exp, "\",\"tu\":\"\xc3\xa9\",\"su\":\"");
    for (int i = 0; i < 17; i++)
        sm_buf_append_str(&exp, "\xc3\xa9");
    sm_buf_append_str(&exp, "\",\"la\":\"");
    for (int i = 0; i < 70; i++)
        sm_buf_append_str(&exp, "b");
    sm_buf_append_str(&exp, "\",\"lu\":\"");
    for (int i = 0; i < 30; i++)
        sm_buf_append_str(&exp, "\xc3\xa9\\n\\\"");
    sm_buf_append_str(&exp, "\",\"b7\":\"AAECAwQFBgcICQ==\",\"raw\":\"AP8Q\",\"si\":-16,\"sp\":15,\"\":0,"
                            "\"\xc3\xa9t\xc3\xa9\":null,\"");
    for (int i = 0; i < 70; i++)
        sm_buf_append_str(&exp, "k");
    sm_buf_append_str(&exp, "\":[[],{}]}");
    sm_buf_append(&exp, "", 1);
    if (strcmp(js, (char *)exp.data))
        fprintf(stderr, "got      %s\nexpected %s\n", js, (char *)exp.data);
    SM_CHECK_EQ_STR(js, (char *)exp.data);
    sm_free(js);
    sm_buf_free(&exp);
    return 0;
}

static int test_all_value_tokens_to_jansson(void)
{
    uint8_t doc[2048];
    size_t n = unhex(ALL_TOKENS_HEX, doc, sizeof(doc));
    json_t *j = NULL;
    char err[256];
    SM_CHECK_EQ_INT(rfs_smile_to_jansson(doc, n, NULL, &j, err, sizeof(err)), SM_OK);
    SM_CHECK(json_is_object(j));
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(j, "i32")), -1000);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(j, "i64")), -1711120727418LL);
    SM_CHECK(json_integer_value(json_object_get(j, "i64min")) == INT64_MIN);
    SM_CHECK(json_real_value(json_object_get(j, "flt")) == 1.5);
    SM_CHECK(json_real_value(json_object_get(j, "dbl")) == 0.1);
    SM_CHECK(json_real_value(json_object_get(j, "bd")) == -123.45);
    SM_CHECK(json_is_real(json_object_get(j, "big")));
    SM_CHECK_EQ_STR(json_string_value(json_object_get(j, "raw")), "AP8Q");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(j, "tu")), "\xc3\xa9");
    SM_CHECK(json_is_null(json_object_get(j, "\xc3\xa9t\xc3\xa9")));
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(j, "")), 0);
    SM_CHECK_EQ_INT(json_object_size(j), 27);
    json_decref(j);
    return 0;
}

/* Header 0x03: shared names and shared values. */
static int test_shared_names_and_values(void)
{
    static const uint8_t doc[] = {
        0x3a, 0x29, 0x0a, 0x03, 0xf8,
        0xfa, 0x81, 'i', 'd', 0xc2, 0x83, 'n', 'a', 'm', 'e', 0x42, 'f', 'o', 'o', 0xfb,
        0xfa, 0x40, 0xc4, 0x41, 0x01, 0xfb,          /* short key refs 0, 1; short value ref 0 */
        0xfa, 0x30, 0x00, 0xc6, 0x30, 0x01, 0xec, 0x00, 0xfb,   /* long key refs, long value ref */
        0xf9,
    };
    char *js = NULL;
    SM_CHECK_EQ_INT(to_json(doc, sizeof(doc), &js), SM_OK);
    SM_CHECK_EQ_STR(js, "[{\"id\":1,\"name\":\"foo\"},{\"id\":2,\"name\":\"foo\"},{\"id\":3,\"name\":\"foo\"}]");
    sm_free(js);
    /* the same references without the header flags are errors */
    uint8_t copy[sizeof(doc)];
    memcpy(copy, doc, sizeof(doc));
    copy[3] = 0x01;   /* names only: value reference invalid */
    struct sm_buf b;
    sm_buf_init(&b, 4096);
    char err[256];
    SM_CHECK_EQ_INT(rfs_smile_to_json(copy, sizeof(copy), NULL, &b, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "shared value reference"));
    copy[3] = 0x02;   /* values only: key reference invalid */
    SM_CHECK_EQ_INT(rfs_smile_to_json(copy, sizeof(copy), NULL, &b, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "shared key reference"));
    sm_buf_free(&b);
    return 0;
}

/* 1030 distinct names: the table resets at 1024, so reference 0 is the 1025th name. */
static int test_shared_name_table_reset(void)
{
    struct sm_buf d;
    sm_buf_init(&d, 1 << 20);
    sm_buf_append(&d, ":)\n\x03\xfa", 5);
    char k[16];
    for (unsigned i = 0; i < 1030; i++) {
        snprintf(k, sizeof(k), "k%04u", i);
        uint8_t t = 0x84;
        sm_buf_append(&d, &t, 1);
        sm_buf_append(&d, k, 5);
        /* value: a 5-byte shareable string v%04d, then later references */
        snprintf(k, sizeof(k), "v%04u", i);
        t = 0x44;
        sm_buf_append(&d, &t, 1);
        sm_buf_append(&d, k, 5);
    }
    /* key ref 0 -> "k1024"; value ref 0 -> "v1024"; long refs idx 5 -> k1029/v1029 */
    sm_buf_append(&d, "\x40\x01\x30\x05\xec\x05\xfb", 7);
    json_t *j = NULL;
    char err[256];
    SM_CHECK_EQ_INT(rfs_smile_to_jansson(d.data, d.len, NULL, &j, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(json_object_size(j), 1030);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(j, "k1024")), "v1024");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(j, "k1029")), "v1029");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(j, "k0000")), "v0000");
    json_decref(j);
    /* a reference past the current table size is rejected */
    d.len -= 7;
    sm_buf_append(&d, "\x30\x06\x21\xfb", 4);
    SM_CHECK_EQ_INT(rfs_smile_to_jansson(d.data, d.len, NULL, &j, err, sizeof(err)), SM_ECORRUPT);
    sm_buf_free(&d);
    return 0;
}

static int test_truncation_and_garbage(void)
{
    uint8_t doc[2048];
    size_t n = unhex(ALL_TOKENS_HEX, doc, sizeof(doc));
    struct sm_buf b;
    sm_buf_init(&b, 1 << 20);
    char err[256];
    /* every prefix short of the end marker fails cleanly; n-1 (no 0xff) is complete */
    for (size_t cut = 0; cut < n - 1; cut++) {
        int rc = rfs_smile_to_json(doc, cut, NULL, &b, err, sizeof(err));
        if (rc == SM_OK)
            fprintf(stderr, "prefix %zu accepted\n", cut);
        SM_CHECK(rc != SM_OK);
        SM_CHECK_EQ_INT(b.len, 0);
    }
    SM_CHECK_EQ_INT(rfs_smile_to_json(doc, n - 1, NULL, &b, err, sizeof(err)), SM_OK);
    sm_buf_reset(&b);
    /* trailing bytes after the document */
    uint8_t extra[2050];
    memcpy(extra, doc, n);
    extra[n] = 0x21;
    SM_CHECK_EQ_INT(rfs_smile_to_json(extra, n + 1, NULL, &b, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "trailing"));
    /* reserved tokens */
    static const uint8_t bad1[] = { 0x3a, 0x29, 0x0a, 0x00, 0x27 };
    SM_CHECK_EQ_INT(rfs_smile_to_json(bad1, sizeof(bad1), NULL, &b, err, sizeof(err)), SM_ECORRUPT);
    static const uint8_t bad2[] = { 0x3a, 0x29, 0x0a, 0x00, 0xfa, 0x21 };   /* 0x21 invalid key */
    SM_CHECK_EQ_INT(rfs_smile_to_json(bad2, sizeof(bad2), NULL, &b, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "offset 5"));
    static const uint8_t bad3[] = { 0x3a, 0x29, 0x0a, 0x10, 0x21 };         /* version 1 */
    SM_CHECK_EQ_INT(rfs_smile_to_json(bad3, sizeof(bad3), NULL, &b, err, sizeof(err)), SM_EUNSUPPORTED);
    static const uint8_t bad4[] = { 0x3a, 0x29, 0x0a, 0x00, 0x24, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x81 };
    SM_CHECK_EQ_INT(rfs_smile_to_json(bad4, sizeof(bad4), NULL, &b, err, sizeof(err)), SM_ECORRUPT);
    static const uint8_t bad5[] = { 0x3a, 0x29, 0x0a, 0x00, 0x40, 0xff };   /* invalid UTF-8 string */
    SM_CHECK(rfs_smile_to_json(bad5, sizeof(bad5), NULL, &b, err, sizeof(err)) != SM_OK);
    json_t *j = NULL;
    SM_CHECK(rfs_smile_to_jansson(bad5, sizeof(bad5), NULL, &j, err, sizeof(err)) != SM_OK);
    static const uint8_t bad6[] = { 0x3a, 0x29, 0x0a, 0x00, 0xfd, 0x8a, 0x01 };  /* raw length 10 > input */
    SM_CHECK_EQ_INT(rfs_smile_to_json(bad6, sizeof(bad6), NULL, &b, err, sizeof(err)), SM_ECORRUPT);
    static const uint8_t bad7[] = { 0x3a, 0x29, 0x0a, 0x00, 0xe8, 0x01, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f,
                                    0x7f, 0x7f, 0x7f, 0xff };               /* 7-bit length overflows */
    SM_CHECK(rfs_smile_to_json(bad7, sizeof(bad7), NULL, &b, err, sizeof(err)) != SM_OK);
    sm_buf_free(&b);
    return 0;
}

static int test_depth_and_event_limits(void)
{
    uint8_t doc[4 + 600];
    memcpy(doc, ":)\n\x00", 4);
    for (int i = 0; i < 300; i++) {
        doc[4 + i] = 0xf8;
        doc[4 + 300 + i] = 0xf9;
    }
    struct sm_buf b;
    sm_buf_init(&b, 1 << 20);
    char err[256];
    SM_CHECK_EQ_INT(rfs_smile_to_json(doc, sizeof(doc), NULL, &b, err, sizeof(err)), SM_EFULL);
    struct rfs_smile_limits lim = { .max_depth = 400 };
    SM_CHECK_EQ_INT(rfs_smile_to_json(doc, sizeof(doc), &lim, &b, err, sizeof(err)), SM_OK);
    sm_buf_reset(&b);
    lim.max_events = 100;
    SM_CHECK_EQ_INT(rfs_smile_to_json(doc, sizeof(doc), &lim, &b, err, sizeof(err)), SM_EFULL);
    /* output cap */
    struct sm_buf small;
    sm_buf_init(&small, 10);
    static const uint8_t s[] = { 0x3a, 0x29, 0x0a, 0x00, 0x5f, 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                                 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                                 'a', 'a', 'a', 'a', 'a', 'a' };
    SM_CHECK_EQ_INT(rfs_smile_to_json(s, sizeof(s), NULL, &small, err, sizeof(err)), SM_EFULL);
    sm_buf_free(&small);
    sm_buf_free(&b);
    return 0;
}

/* Real blobs: the spec's worked examples, checked through the whole stack. */
static int read_fixture(const char *rel, uint8_t **data, size_t *len)
{
    return sm_read_file(sm_src_path(rel), 1 << 24, data, len);
}

static int test_fixture_snapshot_info(void)
{
    uint8_t *data;
    size_t len;
    SM_CHECK_EQ_INT(read_fixture("tests/fixtures/snapshots/ES_7_10_Single/snap-7_1RHMshSc6c0cuzX1NCDg.dat", &data,
                                 &len), SM_OK);
    SM_CHECK_EQ_INT(len, 306);
    /* payload at 17..290: SMILE with flags 0x05 */
    SM_CHECK(rfs_smile_detect(data + 17, len - 17 - 16));
    SM_CHECK_EQ_INT(data[20], 0x05);
    json_t *j = NULL;
    char err[256];
    SM_CHECK_EQ_INT(rfs_smile_to_jansson(data + 17, len - 17 - 16, NULL, &j, err, sizeof(err)), SM_OK);
    json_t *s = json_object_get(j, "snapshot");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(s, "name")), "global_state_snapshot");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(s, "uuid")), "7_1RHMshSc6c0cuzX1NCDg");
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(s, "version_id")), 7100299);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(s, "start_time")), 1711120727418LL);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(s, "total_shards")), 2);
    SM_CHECK(json_is_true(json_object_get(s, "include_global_state")));
    SM_CHECK(json_is_null(json_object_get(s, "metadata")));
    SM_CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(s, "indices"), 1)), "posts_2024_01_01");
    json_decref(j);
    sm_free(data);
    return 0;
}

static int test_fixture_shard_meta_hash(void)
{
    uint8_t *data;
    size_t len;
    SM_CHECK_EQ_INT(read_fixture("tests/fixtures/snapshots/ES_7_10_Updates_Deletes_w_Soft/indices/"
                                 "ADqaSwRmQGeZpfc8raDTtA/0/snap-4qK_DdtfTcao0zoxNElf9Q.dat", &data, &len), SM_OK);
    /* key "meta_hash" (token at 229, the spec says 230) then raw binary 0xfd, length 05 b0 = 368 */
    SM_CHECK_MEM(data + 229, "\x88meta_hash\xfd\x05\xb0", 13);
    json_t *j = NULL;
    char err[256];
    SM_CHECK_EQ_INT(rfs_codec_decode_xcontent(data, len, "snapshot", false, &j, "snap", err, sizeof(err)), SM_OK);
    json_t *f0 = json_array_get(json_object_get(j, "files"), 0);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(f0, "name")), "v__BJlG2gDYRtiGULzK9iCfmA");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(f0, "physical_name")), "_0.si");
    const char *mh = json_string_value(json_object_get(f0, "meta_hash"));
    SM_CHECK(mh);
    uint8_t raw[512];
    size_t rawlen = 0;
    SM_CHECK_EQ_INT(sm_base64_decode(mh, strlen(mh), raw, &rawlen), SM_OK);
    SM_CHECK_EQ_INT(rawlen, 368);
    SM_CHECK_MEM(raw, "\x3f\xd7\x6c\x17", 4);
    SM_CHECK_MEM(raw, data + 242, 368);
    json_decref(j);
    sm_free(data);
    return 0;
}

/* Every SMILE blob of every fixture decodes and converts to JSON text that
 * jansson parses back to the same tree. */
static int test_fixture_all_blobs_roundtrip(void)
{
    static const char *blobs[] = {
        "ES_2_4_5/snap-test_1.dat", "ES_2_4_5/meta-test_1.dat", "ES_2_4_5/indices/index-2.4.5/meta-test_1.dat",
        "ES_2_4_5/indices/index-2.4.5/0/snap-test_1.dat", "ES_2_4_5/indices/index-2.4.5/0/index-0",
        "ES_5_6_Updates_Deletes/meta-FGgvQ_1CTymrGgoBFrwNTg.dat",
        "ES_6_8_Single/meta-5imyqv54TKyHTPTCOAOt2g.dat",
        "ES_7_10_Single/meta-7_1RHMshSc6c0cuzX1NCDg.dat",
        "OS_2_11_Deletes_w_Soft_Multi_Seg/indices/nGYnc_K_Rl6L6kzn8H9rQw/meta-DTv-7ZUBcBwLVKIRx6vE.dat",
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(blobs); i++) {
        char rel[512];
        snprintf(rel, sizeof(rel), "tests/fixtures/snapshots/%s", blobs[i]);
        uint8_t *data;
        size_t len;
        SM_CHECK_EQ_INT(read_fixture(rel, &data, &len), SM_OK);
        struct rfs_codec_header hdr;
        char err[256];
        SM_CHECK_EQ_INT(rfs_codec_read_header(data, len, false, NULL, 1, 1, &hdr, blobs[i], err, sizeof(err)), SM_OK);
        const uint8_t *p = data + hdr.len;
        size_t n = len - hdr.len - 16;
        json_t *a = NULL, *b = NULL;
        SM_CHECK_EQ_INT(rfs_smile_to_jansson(p, n, NULL, &a, err, sizeof(err)), SM_OK);
        char *js = NULL;
        SM_CHECK_EQ_INT(to_json(p, n, &js), SM_OK);
        json_error_t je;
        b = json_loads(js, 0, &je);
        SM_CHECK(b != NULL);
        if (!json_equal(a, b))
            fprintf(stderr, "%s: tree and text differ\n", blobs[i]);
        SM_CHECK(json_equal(a, b));
        json_decref(a);
        json_decref(b);
        sm_free(js);
        sm_free(data);
    }
    return 0;
}

SM_TEST_MAIN(SM_TC(test_all_value_tokens_to_json), SM_TC(test_all_value_tokens_to_jansson),
             SM_TC(test_shared_names_and_values), SM_TC(test_shared_name_table_reset),
             SM_TC(test_truncation_and_garbage), SM_TC(test_depth_and_event_limits),
             SM_TC(test_fixture_snapshot_info), SM_TC(test_fixture_shard_meta_hash),
             SM_TC(test_fixture_all_blobs_roundtrip))
