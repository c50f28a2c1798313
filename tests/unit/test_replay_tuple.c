/* Tuple serialisation of the replayer: replay_tuple_dump() must give the
 * bytes json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) gives (tuple files did
 * not change when the hand-written serialiser replaced jansson's dump), and
 * message copies must equal the original. */
#include "http/msg.h"
#include "tuple/tuple.h"

#include <sm/buf.h>
#include <sm/err.h>

#include <stdlib.h>

#include "sm_test.h"

static int same_as_jansson(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    SM_CHECK(v != NULL);
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
    struct sm_buf got;
    sm_buf_init(&got, 1 << 20);
    SM_CHECK_EQ_INT(replay_tuple_dump(v, &got), SM_OK);
    if (got.len != strlen(want) || memcmp(got.data, want, got.len)) {
        fprintf(stderr, "want %s\n got %.*s\n", want, (int)got.len, (const char *)got.data);
        SM_CHECK(0);
    }
    free(want);
    sm_buf_free(&got);
    json_decref(v);
    return 0;
}

static int test_dump_matches_jansson(void)
{
    static const char *const cases[] = {
        "{\"a\":\"x\\u0001y\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\",\"\\u00e9\":\"\\u65e5\\ud83d\\ude00 \\u007f\"}",
        "{\"n\":-12345678901,\"z\":0,\"arr\":[true,false,null,[],{}],\"nul\":\"a\\u0000b\"}",
        "[1.5,3.0,1e300,0.1,1e-5,2.5e-300,1e21,-3e25,100000000000000000000.0,1e22,-0.0]",
        "\"plain\"",
        "{\"sourceRequest\":{\"Host\":[\"h\"],\"Method\":\"GET\",\"payload\":{\"inlinedJsonBody\":{\"k\":[1,{\"x\":\"\"}]}}}}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (same_as_jansson(cases[i]))
            return 1;
    return 0;
}

static int test_msg_copy(void)
{
    const char *raw = "POST /i/_bulk?x=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 3\r\n\r\nabc";
    struct replay_http_msg m, c;
    char err[256];
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)raw, strlen(raw), true, NULL, &m, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(replay_http_msg_copy(&m, &c), SM_OK);
    SM_CHECK_EQ_STR(c.method, "POST");
    SM_CHECK_EQ_STR(c.uri, "/i/_bulk?x=1");
    SM_CHECK_EQ_INT(c.n_headers, m.n_headers);
    for (size_t i = 0; i < m.n_headers; i++) {
        SM_CHECK_EQ_STR(c.headers[i].name, m.headers[i].name);
        SM_CHECK_EQ_STR(c.headers[i].value, m.headers[i].value);
        SM_CHECK(c.headers[i].value != m.headers[i].value);
    }
    SM_CHECK_EQ_INT(c.body_len, 3);
    SM_CHECK_MEM(c.body, "abc", 4);      /* NUL-terminated like a parsed body */
    SM_CHECK(c.complete && c.is_request);
    struct sm_buf a, b;
    sm_buf_init(&a, 1 << 20);
    sm_buf_init(&b, 1 << 20);
    SM_CHECK_EQ_INT(replay_http_serialize(&m, &a), SM_OK);
    SM_CHECK_EQ_INT(replay_http_serialize(&c, &b), SM_OK);
    SM_CHECK_EQ_INT(a.len, b.len);
    SM_CHECK_MEM(a.data, b.data, a.len);
    sm_buf_free(&a);
    sm_buf_free(&b);
    replay_http_msg_free(&m);
    replay_http_msg_free(&c);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_dump_matches_jansson), SM_TC(test_msg_copy))
