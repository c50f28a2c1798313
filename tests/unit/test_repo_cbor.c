/* CBOR _source -> JSON: RFC 8949 appendix A vectors, indefinite items, bignum
 * tags, Jackson-style output, and malformed input. */
#include "repo/cbor_json.h"

#include <sm/buf.h>
#include <sm/err.h>

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

static int conv(const char *hex, char *out, size_t cap, int *rc)
{
    uint8_t in[512];
    size_t n = unhex(hex, in, sizeof(in));
    struct sm_buf b;
    sm_buf_init(&b, 1 << 16);
    char err[256] = "";
    *rc = rfs_cbor_to_json(in, n, &b, err, sizeof(err));
    snprintf(out, cap, "%.*s", (int)b.len, b.data ? (char *)b.data : "");
    if (*rc)
        snprintf(out, cap, "%s", err);
    sm_buf_free(&b);
    return 0;
}

static int test_vectors(void)
{
    static const struct { const char *hex, *json; } v[] = {
        { "a26161016162820203", "{\"a\":1,\"b\":[2,3]}" },
        { "bf61610161629f0203ffff", "{\"a\":1,\"b\":[2,3]}" },
        { "5f42010243030405ff", "\"AQIDBAU=\"" },
        { "7f657374726561646d696e67ff", "\"streaming\"" },
        { "c249010000000000000000", "18446744073709551616" },
        { "c349010000000000000000", "-18446744073709551617" },
        { "3bffffffffffffffff", "-18446744073709551616" },
        { "1bffffffffffffffff", "18446744073709551615" },
        { "3903e7", "-1000" },
        { "84f4f5f6f7", "[false,true,null,null]" },
        { "83f93c00fb3ff199999999999af97c00", "[1.0,1.1,\"Infinity\"]" },
        { "fa47c35000", "100000.0" },
        { "d9d9f7a1616101", "{\"a\":1}" },
        { "a10102", "{\"1\":2}" },
        { "a1200f", "{\"-1\":15}" },
        { "a0", "{}" },
        { "80", "[]" },
        { "a162c3a962225c", "{\"\xc3\xa9\":\"\\\"\\\\\"}" },
        { "a3616180616280616381a0", "{\"a\":[],\"b\":[],\"c\":[{}]}" },
        { "9f9fff80ff", "[[],[]]" },
        { "c11a514b67b0", "1363896240" },
        { "7f61616162ff", "\"ab\"" },
    };
    char out[256];
    int rc;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        conv(v[i].hex, out, sizeof(out), &rc);
        if (rc || strcmp(out, v[i].json))
            fprintf(stderr, "%s -> %s (rc %d), want %s\n", v[i].hex, out, rc, v[i].json);
        SM_CHECK_EQ_INT(rc, SM_OK);
        SM_CHECK_EQ_STR(out, v[i].json);
    }
    return 0;
}

static int test_errors(void)
{
    static const struct { const char *hex; int rc; const char *msg; } v[] = {
        { "a2616101", SM_ECORRUPT, "truncated" },
        { "0102", SM_ECORRUPT, "trailing" },
        { "a18001", SM_EUNSUPPORTED, "map key is an array" },
        { "a1f401", SM_EUNSUPPORTED, "map key" },
        { "a1410001", SM_EUNSUPPORTED, "byte string" },
        { "ff", SM_ECORRUPT, "break outside" },
        { "bf6161ff", SM_ECORRUPT, "key without a value" },
        { "62ff00", SM_ECORRUPT, "UTF-8" },
        { "7f01ff", SM_ECORRUPT, "" },
        { "1c", SM_ECORRUPT, "malformed" },
        { "", SM_ECORRUPT, "truncated" },
    };
    char out[256];
    int rc;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        conv(v[i].hex, out, sizeof(out), &rc);
        if (rc != v[i].rc || !strstr(out, v[i].msg))
            fprintf(stderr, "%s -> rc %d '%s', want %d '%s'\n", v[i].hex, rc, out, v[i].rc, v[i].msg);
        SM_CHECK_EQ_INT(rc, v[i].rc);
        SM_CHECK(strstr(out, v[i].msg) != NULL);
    }
    /* depth cap */
    char deep[700];
    for (int i = 0; i < 300; i++)
        memcpy(deep + 2 * i, "81", 2);
    memcpy(deep + 600, "00", 3);
    conv(deep, out, sizeof(out), &rc);
    SM_CHECK_EQ_INT(rc, SM_EFULL);
    /* output cap leaves the buffer as it was */
    uint8_t in[] = { 0x63, 'a', 'b', 'c' };
    struct sm_buf b;
    sm_buf_init(&b, 4);
    sm_buf_append(&b, "x", 1);
    char err[128];
    SM_CHECK_EQ_INT(rfs_cbor_to_json(in, sizeof(in), &b, err, sizeof(err)), SM_EFULL);
    SM_CHECK_EQ_INT(b.len, 1);
    sm_buf_free(&b);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_vectors), SM_TC(test_errors))
