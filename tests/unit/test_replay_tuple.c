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

/* Parsed messages keep their strings in one block (msg->strs): headers past
 * the first 32, an empty value, a split start line, and edits that replace
 * or remove block strings (the sanitizer build checks the frees). */
static int test_msg_string_block(void)
{
    struct sm_buf raw;
    sm_buf_init(&raw, 1 << 20);
    SM_CHECK_EQ_INT(sm_buf_append_str(&raw, "PUT /i/_doc/1?refresh=true HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n"), SM_OK);
    for (int i = 0; i < 40; i++)
        SM_CHECK_EQ_INT(sm_buf_printf(&raw, "X-H%d: v%d\r\n", i, i), SM_OK);
    SM_CHECK_EQ_INT(sm_buf_append_str(&raw, "Content-Length: 2\r\n\r\n{}"), SM_OK);
    struct replay_http_msg m, c;
    char err[256];
    SM_CHECK_EQ_INT(replay_http_parse(raw.data, raw.len, true, NULL, &m, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(m.method, "PUT");
    SM_CHECK_EQ_STR(m.uri, "/i/_doc/1?refresh=true");
    SM_CHECK_EQ_INT(m.n_headers, 43);
    SM_CHECK_EQ_STR(m.headers[1].name, "X-Empty");
    SM_CHECK_EQ_STR(m.headers[1].value, "");
    SM_CHECK_EQ_STR(m.headers[41].name, "X-H39");
    SM_CHECK_EQ_STR(m.headers[41].value, "v39");
    SM_CHECK_EQ_STR(replay_http_header(&m, "content-length"), "2");
    SM_CHECK_EQ_INT(m.body_len, 2);
    SM_CHECK_EQ_INT(replay_http_msg_copy(&m, &c), SM_OK);
    SM_CHECK_EQ_INT(replay_http_set_header(&m, "host", "target"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_set_header(&c, "X-New", "n"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_remove_header(&m, "x-h3"), 1);
    SM_CHECK_EQ_INT(replay_http_set_uri(&m, "/j/_doc/1"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_set_uri(&c, "/k/_doc/1"), SM_OK);
    SM_CHECK_EQ_STR(replay_http_header(&m, "Host"), "target");
    SM_CHECK_EQ_STR(replay_http_header(&c, "Host"), "h");
    SM_CHECK_EQ_STR(replay_http_header(&c, "x-new"), "n");
    SM_CHECK_EQ_INT(m.n_headers, 42);
    SM_CHECK_EQ_STR(m.uri, "/j/_doc/1");
    SM_CHECK_EQ_STR(c.uri, "/k/_doc/1");
    replay_http_msg_free(&m);
    replay_http_msg_free(&c);
    /* response: reason phrase in the block */
    const char *resp = "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)resp, strlen(resp), false, "GET", &m, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(m.status, 404);
    SM_CHECK_EQ_STR(m.reason, "Not Found");
    SM_CHECK_EQ_INT(m.n_headers, 2);
    replay_http_msg_free(&m);
    sm_buf_free(&raw);
    return 0;
}

static bool in_block(const struct replay_http_msg *m, const void *p)
{
    return m->strs && (const char *)p >= m->strs && (const char *)p < m->strs + m->strs_len;
}

/* The headers array and a body of known length up to 16 KiB live in the
 * string block too (parse, incremental parse and copy); chunked and longer
 * bodies and a HEAD response's have their own; adding a header or replacing
 * the body moves them out (the sanitizer build checks the frees). */
static int test_msg_block_layout(void)
{
    struct replay_http_msg m, c;
    char err[256];
    const char *req = "POST /i/_doc HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                      "Content-Length: 7\r\n\r\n{\"a\":1}";
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)req, strlen(req), true, NULL, &m, err, sizeof(err)), SM_OK);
    SM_CHECK(in_block(&m, m.headers) && in_block(&m, m.body));
    SM_CHECK_EQ_INT(m.body_len, 7);
    SM_CHECK_EQ_STR((const char *)m.body, "{\"a\":1}");
    SM_CHECK_EQ_INT((uintptr_t)m.headers % _Alignof(struct replay_header), 0);
    SM_CHECK_EQ_INT(replay_http_msg_copy(&m, &c), SM_OK);
    SM_CHECK(in_block(&c, c.headers) && in_block(&c, c.body));
    SM_CHECK_EQ_STR((const char *)c.body, "{\"a\":1}");
    SM_CHECK_EQ_STR(replay_http_header(&c, "content-type"), "application/json");
    SM_CHECK_EQ_INT(replay_http_set_header(&m, "X-New", "n"), SM_OK);   /* array moved out */
    SM_CHECK(!in_block(&m, m.headers));
    SM_CHECK_EQ_STR(replay_http_header(&m, "host"), "h");
    SM_CHECK_EQ_STR(replay_http_header(&m, "x-new"), "n");
    SM_CHECK_EQ_INT(replay_http_set_body(&c, "{}", 2), SM_OK);
    SM_CHECK(!in_block(&c, c.body));
    SM_CHECK_EQ_STR((const char *)c.body, "{}");
    SM_CHECK_EQ_INT(replay_http_set_header(&c, "X-More", "1"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_set_header(&c, "X-Most", "2"), SM_OK);   /* and grown with realloc */
    SM_CHECK_EQ_STR(replay_http_header(&c, "x-most"), "2");
    replay_http_msg_free(&m);
    replay_http_msg_free(&c);
    /* chunked and over 16 KiB: a buffer of their own; HEAD: no body */
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)chunked, strlen(chunked), false, "GET", &m, err, sizeof(err)),
                    SM_OK);
    SM_CHECK(in_block(&m, m.headers) && !in_block(&m, m.body));
    SM_CHECK_EQ_STR((const char *)m.body, "abc");
    replay_http_msg_free(&m);
    struct sm_buf big;
    sm_buf_init(&big, 1 << 20);
    SM_CHECK_EQ_INT(sm_buf_printf(&big, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 20000), SM_OK);
    for (int i = 0; i < 20000; i++)
        SM_CHECK_EQ_INT(sm_buf_append(&big, "x", 1), SM_OK);
    SM_CHECK_EQ_INT(replay_http_parse(big.data, big.len, false, "GET", &m, err, sizeof(err)), SM_OK);
    SM_CHECK(!in_block(&m, m.body));
    SM_CHECK_EQ_INT(m.body_len, 20000);
    SM_CHECK_EQ_INT(replay_http_msg_copy(&m, &c), SM_OK);
    SM_CHECK(!in_block(&c, c.body) && c.body_len == 20000 && c.body[19999] == 'x' && c.body[20000] == 0);
    replay_http_msg_free(&m);
    replay_http_msg_free(&c);
    sm_buf_free(&big);
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n";
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)head, strlen(head), false, "HEAD", &m, err, sizeof(err)), SM_OK);
    SM_CHECK(m.body == NULL && m.body_len == 0);
    replay_http_msg_free(&m);
    /* incremental, the body split over reads and cut short by the peer */
    struct replay_http_inc *h = replay_http_inc_new();
    SM_CHECK(h != NULL);
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef";
    size_t used, n = strlen(resp);
    bool done;
    SM_CHECK_EQ_INT(replay_http_inc_begin(h, false, "GET"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_inc_feed(h, (const uint8_t *)resp, n - 4, &used, &done, err, sizeof(err)), SM_OK);
    SM_CHECK(!done);
    SM_CHECK_EQ_INT(replay_http_inc_feed(h, (const uint8_t *)resp + n - 4, 4, &used, &done, err, sizeof(err)), SM_OK);
    SM_CHECK(done);
    SM_CHECK_EQ_INT(replay_http_inc_take(h, &m, err, sizeof(err)), SM_OK);
    SM_CHECK(in_block(&m, m.body));
    SM_CHECK_EQ_STR((const char *)m.body, "abcdef");
    replay_http_msg_free(&m);
    SM_CHECK_EQ_INT(replay_http_inc_begin(h, false, "GET"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_inc_feed(h, (const uint8_t *)resp, n - 4, &used, &done, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(replay_http_inc_take(h, &m, err, sizeof(err)), SM_OK);   /* cut short */
    SM_CHECK_EQ_INT(m.body_len, 2);
    SM_CHECK_EQ_STR((const char *)m.body, "ab");
    replay_http_msg_free(&m);
    SM_CHECK_EQ_INT(replay_http_inc_begin(h, false, "GET"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_inc_feed(h, (const uint8_t *)resp, n - 6, &used, &done, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(replay_http_inc_take(h, &m, err, sizeof(err)), SM_OK);   /* headers only */
    SM_CHECK(m.body == NULL && m.body_len == 0);
    replay_http_msg_free(&m);
    SM_CHECK_EQ_INT(replay_http_inc_begin(h, false, "GET"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_inc_feed(h, (const uint8_t *)resp, n - 1, &used, &done, err, sizeof(err)), SM_OK);
    replay_http_inc_free(h);   /* abandoned with the body in the block */
    return 0;
}

/* The direct serialiser gives the jansson path's bytes for messages whose
 * payloads cover each body kind (fuzz_tuple_canon checks arbitrary ones). */
static int test_msg_dump_matches_tree(void)
{
    static const char *const msgs[] = {
        "POST /i/_search HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 43\r\n\r\n"
        "{\"q\":{\"a\":[1,2.50,-0,1e2]},\"s\":\"\\u00e9\\/x\"}",
        "POST /_bulk HTTP/1.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: 36\r\n\r\n"
        "{\"index\":{\"_id\":\"1\"}}\n{\"a\":1}\r\n\n{}\n",
        "POST /x HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":1,\"a\":2}",
        "POST /x HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        "POST /x HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2",
        "POST /x HTTP/1.1\r\npayload: p\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 2\r\n\r\n[]",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n\x01\xff\x00",
    };
    struct replay_tuple_scratch s = { 0 };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        bool req = msgs[i][0] != 'H';
        size_t len = strlen(msgs[i]) + (i == 6 ? 1 : 0);
        struct replay_http_msg m;
        char err[256];
        SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)msgs[i], len, req, "GET", &m, err, sizeof(err)), SM_OK);
        json_t *t = replay_tuple_msg_json(&m, req ? -1 : 7);
        struct sm_buf want, got;
        sm_buf_init(&want, 1 << 20);
        sm_buf_init(&got, 1 << 20);
        SM_CHECK_EQ_INT(replay_tuple_dump(t, &want), SM_OK);
        size_t po;
        SM_CHECK_EQ_INT(replay_tuple_msg_dump(&m, req ? -1 : 7, &got, &s, &po), SM_OK);
        if (want.len != got.len || memcmp(want.data, got.data, want.len)) {
            fprintf(stderr, "want %.*s\n got %.*s\n", (int)want.len, (char *)want.data, (int)got.len, (char *)got.data);
            SM_CHECK(0);
        }
        SM_CHECK(i == 5 ? po == SIZE_MAX : po < got.len);   /* a header named "payload": the tree's path */
        json_decref(t);
        sm_buf_free(&want);
        sm_buf_free(&got);
        replay_http_msg_free(&m);
    }
    replay_tuple_scratch_free(&s);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_dump_matches_jansson), SM_TC(test_msg_copy), SM_TC(test_msg_string_block), SM_TC(test_msg_block_layout),
             SM_TC(test_msg_dump_matches_tree))
