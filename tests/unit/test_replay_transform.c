/* Request transformations and HTTP message handling of the replayer. */
#include "http/msg.h"
#include "transform/transform.h"

#include <sm/buf.h>
#include <sm/err.h>

#include "sm_test.h"

static int parse(const char *raw, struct replay_http_msg *m)
{
    char err[256];
    return replay_http_parse((const uint8_t *)raw, strlen(raw), true, NULL, m, err, sizeof(err));
}

/* m serialised is exactly want */
static int serialized_as(const struct replay_http_msg *m, const char *want)
{
    struct sm_buf out;
    sm_buf_init(&out, 1 << 20);
    int rc = replay_http_serialize(m, &out);
    bool same = rc == SM_OK && out.len == strlen(want) && !memcmp(out.data, want, out.len);
    if (!same)
        fprintf(stderr, "serialised: \"%.*s\" (rc %d), expected \"%s\"\n", (int)out.len,
                out.data ? (const char *)out.data : "", rc, want);
    sm_buf_free(&out);
    return same ? 0 : 1;
}

static struct replay_transform *mk(bool types, const char *rename, const char *drop)
{
    static struct sm_strlist ren, drops, add, rm;
    sm_strlist_free(&ren);
    sm_strlist_free(&drops);
    if (rename)
        sm_strlist_push(&ren, rename);
    if (drop)
        sm_strlist_push(&drops, drop);
    struct replay_transform_cfg c = { false, &add, &rm, &ren, types, &drops };
    char err[256];
    return replay_transform_new(&c, err, sizeof(err));
}

static int test_parse_chunked_and_serialize(void)
{
    struct replay_http_msg m;
    const char *raw = "POST /i/_doc HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n";
    SM_CHECK_EQ_INT(parse(raw, &m), SM_OK);
    SM_CHECK(m.complete && m.was_chunked);
    SM_CHECK_EQ_STR(m.method, "POST");
    SM_CHECK_EQ_INT(m.body_len, 8);
    SM_CHECK_MEM(m.body, "{\"a\": 1}", 8);
    SM_CHECK_EQ_INT(serialized_as(&m, "POST /i/_doc HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n{\"a\": 1}"), 0);
    replay_http_msg_free(&m);
    return 0;
}

static int test_parse_head_response_and_errors(void)
{
    struct replay_http_msg m;
    char err[256];
    const char *resp = "HTTP/1.1 200 OK\r\ncontent-length: 120\r\n\r\n";
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)resp, strlen(resp), false, "HEAD", &m, err, sizeof(err)), SM_OK);
    SM_CHECK(m.complete);
    SM_CHECK_EQ_INT(m.status, 200);
    SM_CHECK_EQ_INT(m.body_len, 0);
    replay_http_msg_free(&m);
    const char *bad = "GARBAGE\r\n\r\n";
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)bad, strlen(bad), true, NULL, &m, err, sizeof(err)), SM_EPROTO);
    SM_CHECK(strstr(err, "HTTP request"));
    /* only HTTP/1.x: an HTTP/0.9-style line (llhttp takes it) is refused, not
     * replayed as "HTTP/0.9" */
    const char *v09 = "GET /x\r\nHost: a\r\n\r\n";
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)v09, strlen(v09), true, NULL, &m, err, sizeof(err)), SM_EPROTO);
    SM_CHECK(strstr(err, "only HTTP/1.x"));
    /* whitespace before the colon (the lenient parse lets it through) is
     * not part of the name: the header is found and serialised as usual */
    SM_CHECK_EQ_INT(parse("POST /x HTTP/1.1\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok", &m), SM_OK);
    SM_CHECK(m.complete && m.body_len == 2);
    SM_CHECK_EQ_STR(replay_http_header(&m, "x-a"), "b");
    SM_CHECK_EQ_INT(serialized_as(&m, "POST /x HTTP/1.1\r\nX-A: b\r\nContent-Length: 2\r\n\r\nok"), 0);
    replay_http_msg_free(&m);
    /* the head is bounded (2 MiB of strings): three 900 KiB values are
     * refused, two are taken; a bare LF ends lines as CRLF does */
    struct sm_buf big;
    sm_buf_init(&big, 8u << 20);
    SM_CHECK_EQ_INT(sm_buf_append_str(&big, "GET / HTTP/1.1\r\n"), SM_OK);
    for (int i = 0; i < 3; i++) {
        SM_CHECK_EQ_INT(sm_buf_printf(&big, "X-%d: ", i), SM_OK);
        SM_CHECK_EQ_INT(sm_buf_reserve(&big, 900u << 10), SM_OK);
        memset(big.data + big.len, 'v', 900u << 10);
        big.len += 900u << 10;
        SM_CHECK_EQ_INT(sm_buf_append_str(&big, "\r\n"), SM_OK);
        if (i == 1) {
            struct sm_buf two;
            sm_buf_init(&two, 8u << 20);
            SM_CHECK_EQ_INT(sm_buf_append(&two, big.data, big.len), SM_OK);
            SM_CHECK_EQ_INT(sm_buf_append_str(&two, "\r\n"), SM_OK);
            SM_CHECK_EQ_INT(replay_http_parse(two.data, two.len, true, NULL, &m, err, sizeof(err)), SM_OK);
            SM_CHECK(m.complete && m.n_headers == 2 && strlen(m.headers[1].value) == (900u << 10));
            replay_http_msg_free(&m);
            sm_buf_free(&two);
        }
    }
    SM_CHECK_EQ_INT(sm_buf_append_str(&big, "\r\n"), SM_OK);
    SM_CHECK_EQ_INT(replay_http_parse(big.data, big.len, true, NULL, &m, err, sizeof(err)), SM_EPROTO);
    sm_buf_free(&big);
    const char *lf = "HTTP/1.1 200 OK\nContent-Length: 2\n\nok";
    SM_CHECK_EQ_INT(replay_http_parse((const uint8_t *)lf, strlen(lf), false, "GET", &m, err, sizeof(err)), SM_OK);
    SM_CHECK(m.complete && m.status == 200 && m.body_len == 2);
    replay_http_msg_free(&m);
    return 0;
}

static int test_rename_and_types_in_path(void)
{
    struct replay_transform *t = mk(true, "logs-*=new-logs-*", NULL);
    SM_CHECK(t);
    struct replay_http_msg m;
    char err[256];
    SM_CHECK_EQ_INT(parse("PUT /logs-1/doc/abc?include_type_name=true&refresh=true HTTP/1.1\r\nHost: s\r\n\r\n", &m), SM_OK);
    SM_CHECK_EQ_INT(replay_transform_apply(t, &m, err, sizeof(err)), REPLAY_TX_SEND);
    SM_CHECK_EQ_STR(m.uri, "/new-logs-1/_doc/abc?refresh=true");
    SM_CHECK(replay_http_header(&m, "host") == NULL);
    replay_http_msg_free(&m);

    SM_CHECK_EQ_INT(parse("GET /logs-1,other/doc/_search HTTP/1.1\r\n\r\n", &m), SM_OK);
    SM_CHECK_EQ_INT(replay_transform_apply(t, &m, err, sizeof(err)), REPLAY_TX_SEND);
    SM_CHECK_EQ_STR(m.uri, "/new-logs-1,other/_search");
    replay_http_msg_free(&m);

    SM_CHECK_EQ_INT(parse("POST /logs-2/doc/7/_update HTTP/1.1\r\n\r\n", &m), SM_OK);
    SM_CHECK_EQ_INT(replay_transform_apply(t, &m, err, sizeof(err)), REPLAY_TX_SEND);
    SM_CHECK_EQ_STR(m.uri, "/new-logs-2/_update/7");
    replay_http_msg_free(&m);

    SM_CHECK_EQ_INT(parse("PUT /logs-2/_mapping/doc HTTP/1.1\r\n\r\n", &m), SM_OK);
    SM_CHECK_EQ_INT(replay_transform_apply(t, &m, err, sizeof(err)), REPLAY_TX_SEND);
    SM_CHECK_EQ_STR(m.uri, "/new-logs-2/_mapping");
    replay_http_msg_free(&m);

    SM_CHECK_EQ_INT(parse("GET /_cluster/health HTTP/1.1\r\n\r\n", &m), SM_OK);
    SM_CHECK_EQ_INT(replay_transform_apply(t, &m, err, sizeof(err)), REPLAY_TX_SEND);
    SM_CHECK_EQ_STR(m.uri, "/_cluster/health");
    replay_http_msg_free(&m);
    replay_transform_free(t);
    return 0;
}

static int test_bulk_body_rewrite(void)
{
    struct replay_transform *t = mk(true, "a=b", NULL);
    const char *raw = "POST /_bulk HTTP/1.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: 136\r\n\r\n"
                      "{\"index\":{\"_index\":\"a\",\"_type\":\"doc\",\"_id\":\"1\"}}\n{\"f\":1}\n"
                      "{\"delete\":{\"_index\":\"a\",\"_type\":\"doc\",\"_id\":\"2\"}}\n"
                      "{\"create\":{\"_index\":\"c\"}}\n{}\n";
    struct replay_http_msg m;
    char err[256];
    char buf[512];
    /* fix up Content-Length to the real body size */
    const char *body = strstr(raw, "\r\n\r\n") + 4;
    snprintf(buf, sizeof(buf), "POST /_bulk HTTP/1.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    SM_CHECK_EQ_INT(parse(buf, &m), SM_OK);
    SM_CHECK_EQ_INT(replay_transform_apply(t, &m, err, sizeof(err)), REPLAY_TX_SEND);
    SM_CHECK_EQ_STR((char *)m.body,
                    "{\"index\":{\"_index\":\"b\",\"_id\":\"1\"}}\n{\"f\":1}\n"
                    "{\"delete\":{\"_index\":\"b\",\"_id\":\"2\"}}\n"
                    "{\"create\":{\"_index\":\"c\"}}\n{}\n");
    replay_http_msg_free(&m);
    replay_transform_free(t);
    return 0;
}

static int test_drop_and_bad_rules(void)
{
    struct replay_transform *t = mk(false, NULL, "^GET /_cat/");
    struct replay_http_msg m;
    char err[256];
    SM_CHECK_EQ_INT(parse("GET /_cat/indices?v HTTP/1.1\r\n\r\n", &m), SM_OK);
    SM_CHECK_EQ_INT(replay_transform_apply(t, &m, err, sizeof(err)), REPLAY_TX_DROP);
    replay_http_msg_free(&m);
    SM_CHECK_EQ_INT(parse("GET /_search HTTP/1.1\r\n\r\n", &m), SM_OK);
    SM_CHECK_EQ_INT(replay_transform_apply(t, &m, err, sizeof(err)), REPLAY_TX_SEND);
    replay_http_msg_free(&m);
    replay_transform_free(t);
    SM_CHECK(mk(false, "x*=y", NULL) == NULL);     /* prefix rule needs * on both sides */
    SM_CHECK(mk(false, NULL, "([") == NULL);       /* bad regex */
    return 0;
}

static int test_gzip_body_decoded(void)
{
    /* "hello" gzip-compressed */
    static const uint8_t gz[] = { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd,
                                  0xc9, 0xc9, 0x07, 0x00, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00 };
    char raw[256];
    int n = snprintf(raw, sizeof(raw), "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", sizeof(gz));
    memcpy(raw + n, gz, sizeof(gz));
    struct replay_http_msg m;
    char err[256];
    SM_CHECK_EQ_INT(replay_http_parse((uint8_t *)raw, (size_t)n + sizeof(gz), false, "GET", &m, err, sizeof(err)), SM_OK);
    struct sm_buf out;
    sm_buf_init(&out, 1 << 20);
    SM_CHECK_EQ_INT(replay_http_body_decoded(&m, &out), SM_OK);
    SM_CHECK_EQ_INT(out.len, 5);
    SM_CHECK_MEM(out.data, "hello", 5);
    sm_buf_free(&out);
    replay_http_msg_free(&m);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_parse_chunked_and_serialize), SM_TC(test_parse_head_response_and_errors),
             SM_TC(test_rename_and_types_in_path), SM_TC(test_bulk_body_rewrite),
             SM_TC(test_drop_and_bad_rules), SM_TC(test_gzip_body_decoded))
