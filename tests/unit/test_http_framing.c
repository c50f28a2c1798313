/* HTTP/1.1 framing (agent/http/framer.c): transcripts fed whole, cut at every
 * byte boundary and byte by byte must give the same events; gaps, mid-stream
 * joins, giant heads and upgrades. */
#include "http/framer.h"

#include <sm/buf.h>
#include <sm/mem.h>

#include <stdio.h>

#include "sm_test.h"
#include "test_http_framing_transcript.h"

struct evlog {
    struct sm_buf log;
    struct sm_buf bytes[2];
    size_t body[2];
    const char *skip_prefix;   /* requests whose target starts with it are skipped */
};

static int ev_head(void *arg, const struct agent_http_head *hd)
{
    struct evlog *e = arg;
    e->body[hd->dir] = 0;
    if (hd->dir == AGENT_C2S) {
        sm_buf_printf(&e->log, "> %s %.*s %u/%zu;", hd->method_name, (int)hd->target_len, hd->target,
                      hd->first_line_len, hd->len - hd->first_line_len);
        if (e->skip_prefix && hd->target_len >= strlen(e->skip_prefix) &&
            !memcmp(hd->target, e->skip_prefix, strlen(e->skip_prefix))) {
            sm_buf_printf(&e->log, "skip;");
            return AGENT_HTTP_SKIP;
        }
    } else {
        sm_buf_printf(&e->log, "< %d%s;", hd->status, hd->interim ? " interim" : "");
    }
    sm_buf_append(&e->bytes[hd->dir], hd->data, hd->len);
    return AGENT_HTTP_KEEP;
}

static void ev_body(void *arg, enum agent_dir dir, const uint8_t *p, size_t n, uint64_t ts)
{
    struct evlog *e = arg;
    (void)ts;
    e->body[dir] += n;
    sm_buf_append(&e->bytes[dir], p, n);
}

static void ev_end(void *arg, enum agent_dir dir, uint64_t ts)
{
    struct evlog *e = arg;
    (void)ts;
    sm_buf_printf(&e->log, "%c end %zu;", dir == AGENT_C2S ? '>' : '<', e->body[dir]);
}

static void ev_end_skipped(void *arg, enum agent_dir dir, uint64_t ts)
{
    struct evlog *e = arg;
    (void)ts;
    sm_buf_printf(&e->log, "%c skipped;", dir == AGENT_C2S ? '>' : '<');
}

static void ev_broken(void *arg, enum agent_dir dir, bool in_message, const char *why, uint64_t ts)
{
    struct evlog *e = arg;
    (void)ts;
    sm_buf_printf(&e->log, "! %c%s %s;", dir == AGENT_C2S ? '>' : '<', in_message ? " msg" : "", why);
}

static void ev_upgrade(void *arg, const char *why, uint64_t ts)
{
    struct evlog *e = arg;
    (void)ts;
    (void)why;
    sm_buf_printf(&e->log, "^;");
}

static void ev_init(struct evlog *e)
{
    memset(e, 0, sizeof(*e));
    sm_buf_init(&e->log, 1 << 20);
    sm_buf_init(&e->bytes[0], 1 << 24);
    sm_buf_init(&e->bytes[1], 1 << 24);
    sm_buf_append(&e->log, "", 1);
    e->log.len = 0;
}

static void ev_free(struct evlog *e)
{
    sm_buf_free(&e->log);
    sm_buf_free(&e->bytes[0]);
    sm_buf_free(&e->bytes[1]);
}

static const char *ev_str(struct evlog *e)
{
    sm_buf_append(&e->log, "", 1);
    e->log.len--;
    return (const char *)e->log.data;
}

/* A script step: bytes in a direction, or a gap (data NULL). */
struct step { int dir; const uint8_t *data; size_t len; uint64_t lost; };

enum split { SPLIT_WHOLE, SPLIT_AT, SPLIT_BYTES };

static struct agent_http_framer *mk(struct evlog *e, bool mid, size_t max_header)
{
    struct agent_http_cb cb = { e, ev_head, ev_body, ev_end, ev_end_skipped, ev_broken, ev_upgrade };
    struct agent_http_limits lim = { max_header, NULL };
    return agent_http_framer_new(&lim, &cb, mid);
}

static void run_steps(struct evlog *e, const struct step *s, size_t n, enum split mode, size_t at,
                      bool mid, size_t max_header)
{
    struct agent_http_framer *fr = mk(e, mid, max_header);
    for (size_t i = 0; i < n; i++) {
        if (!s[i].data) {
            agent_http_framer_gap(fr, (enum agent_dir)s[i].dir, s[i].lost, "capture loss", i);
            continue;
        }
        enum agent_dir d = (enum agent_dir)s[i].dir;
        if (mode == SPLIT_WHOLE || s[i].len < 2) {
            agent_http_framer_feed(fr, d, s[i].data, s[i].len, i);
        } else if (mode == SPLIT_AT) {
            size_t k = at % s[i].len;
            agent_http_framer_feed(fr, d, s[i].data, k, i);
            agent_http_framer_feed(fr, d, s[i].data + k, s[i].len - k, i);
        } else {
            for (size_t j = 0; j < s[i].len; j++)
                agent_http_framer_feed(fr, d, s[i].data + j, 1, i);
        }
    }
    agent_http_framer_eof(fr, n);
    agent_http_framer_free(fr);
}

/* Runs the script whole, cut at every byte boundary and byte by byte; all
 * must give expect (if not NULL) and the same delivered bytes. */
static int check_steps(const struct step *s, size_t n, bool mid, size_t max_header, const char *expect,
                       const char *skip_prefix, struct evlog *whole_out)
{
    struct evlog whole;
    ev_init(&whole);
    whole.skip_prefix = skip_prefix;
    run_steps(&whole, s, n, SPLIT_WHOLE, 0, mid, max_header);
    if (expect && strcmp(ev_str(&whole), expect)) {
        fprintf(stderr, "events:   %s\nexpected: %s\n", ev_str(&whole), expect);
        ev_free(&whole);
        return 1;
    }
    size_t maxlen = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i].len > maxlen)
            maxlen = s[i].len;
    for (size_t k = 0; k <= maxlen + 1; k++) {
        struct evlog e;
        ev_init(&e);
        e.skip_prefix = skip_prefix;
        run_steps(&e, s, n, k == maxlen + 1 ? SPLIT_BYTES : SPLIT_AT, k, mid, max_header);
        int bad = strcmp(ev_str(&e), ev_str(&whole)) || e.bytes[0].len != whole.bytes[0].len ||
                  e.bytes[1].len != whole.bytes[1].len ||
                  (e.bytes[0].len && memcmp(e.bytes[0].data, whole.bytes[0].data, e.bytes[0].len)) ||
                  (e.bytes[1].len && memcmp(e.bytes[1].data, whole.bytes[1].data, e.bytes[1].len));
        if (bad)
            fprintf(stderr, "split %zu: %s\n   whole: %s\n", k, ev_str(&e), ev_str(&whole));
        ev_free(&e);
        if (bad) {
            ev_free(&whole);
            return 1;
        }
    }
    if (whole_out)
        *whole_out = whole;
    else
        ev_free(&whole);
    return 0;
}

/* Transcript: events as expected, and (clean) the delivered bytes equal the
 * input in each direction. */
static int check_transcript(const char *name, const char *expect, bool clean)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/fixtures/http/%s", name);
    struct transcript t;
    SM_CHECK(tr_load(sm_src_path(path), &t) == 0);
    struct step s[TR_MAX_BLOCKS] = { 0 };
    for (size_t i = 0; i < t.n; i++)
        s[i] = (struct step){ t.b[i].dir, t.b[i].data, t.b[i].len, 0 };
    struct evlog whole;
    int rc = check_steps(s, t.n, false, 0, expect, NULL, &whole);
    if (rc) {
        fprintf(stderr, "transcript %s\n", name);
        tr_free(&t);
        return rc;
    }
    for (int d = 0; clean && d < 2; d++) {
        size_t len;
        uint8_t *in = tr_dir_bytes(&t, d, &len);
        if (len != whole.bytes[d].len || memcmp(in, whole.bytes[d].data, len)) {
            fprintf(stderr, "%s: %s bytes differ (%zu in, %zu delivered)\n", name, d ? "s->c" : "c->s",
                    len, whole.bytes[d].len);
            rc = 1;
        }
        sm_free(in);
    }
    ev_free(&whole);
    tr_free(&t);
    return rc;
}

static int test_keepalive(void)
{
    return check_transcript("keepalive.t",
        "> GET /a 17/62;> end 0;< 200;< end 11;"
        "> PUT /idx/_doc/1 26/76;> end 13;< 201;< end 2;", true);
}

static int test_pipelining_and_head(void)
{
    return check_transcript("pipelining.t",
        "> GET /1 17/11;> end 0;> GET /2 17/11;> end 0;> HEAD /3 18/11;> end 0;"
        "> POST /4 18/30;> end 4;"
        "< 200;< end 1;< 200;< end 2;< 200;< end 0;< 200;< end 1;", true);
}

static int test_head(void)
{
    return check_transcript("head.t",
        "> HEAD /index.html 27/11;> end 0;< 200;< end 0;> GET /index.html 26/11;> end 0;< 200;< end 4;",
        true);
}

static int test_chunked(void)
{
    /* body bytes stay chunked, extensions and trailers included */
    return check_transcript("chunked.t",
        "> POST /_bulk 22/75;> end 72;< 200;< end 15;", true);
}

static int test_close_delimited(void)
{
    return check_transcript("close_delimited.t",
        "> GET /old 19/11;> end 0;< 200;< end 53;", true);
}

static int test_continue_and_304(void)
{
    return check_transcript("continue_100.t",
        "> PUT /big 19/53;< 100 interim;< end 0;> end 10;< 204;< end 0;"
        "> GET /cached 22/31;> end 0;< 304;< end 0;", true);
}

static int test_connection_close(void)
{
    /* HTTP/1.0 keep-alive, then a request and a response with Connection: close */
    return check_transcript("connection_close.t",
        "> GET /_nodes 22/35;> end 0;< 200;< end 2;> DELETE /old-index 28/30;> end 0;< 200;< end 21;", true);
}

static int test_upgrade(void)
{
    /* the 101 head is delivered, then nothing more of the connection */
    return check_transcript("upgrade.t", "> GET /ws 18/52;> end 0;< 101;< end 0;^;", false);
}

static int test_upgrade_refused(void)
{
    /* Upgrade: h2c answered with 200: the client's next request is HTTP again */
    return check_transcript("upgrade_refused.t",
        "> GET /h2 18/62;> end 0;< 200;< end 2;> GET /next 20/11;> end 0;< 200;< end 3;", true);
}

#define S(d, str) { d, (const uint8_t *)(str), sizeof(str) - 1, 0 }
#define GAP(d, n) { d, NULL, 0, n }

static int test_gap_in_request_body(void)
{
    static const struct step s[] = {
        S(0, "POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234"),
        GAP(0, 5),
        S(0, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"),
        S(1, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"),
        S(1, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB"),
    };
    return check_steps(s, SM_ARRAY_LEN(s), false, 0,
        "> POST /a 18/22;! > msg capture gap: 5 bytes lost in client->server stream (capture loss);"
        "> GET /b 17/11;> end 0;< 200;< end 1;< 200;< end 1;", NULL, NULL);
}

static int test_gap_resync_skips_garbage(void)
{
    /* the bytes after the gap continue the lost request's body; the framer
     * skips them up to the next request line, never gluing them to it */
    static const struct step s[] = {
        S(0, "PUT /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a\":"),
        GAP(0, 40),
        S(0, "\"tail of body\"}GE"),
        S(0, "T /next?q=1 HTTP/1.1\r\nHost: h\r\n\r\n"),
    };
    return check_steps(s, SM_ARRAY_LEN(s), false, 0,
        "> PUT /x 17/23;! > msg capture gap: 40 bytes lost in client->server stream (capture loss);"
        "> GET /next?q=1 24/11;> end 0;", NULL, NULL);
}

static int test_gap_in_response(void)
{
    static const struct step s[] = {
        S(0, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
        S(1, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nxx"),
        GAP(1, 98),
        S(1, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    };
    return check_steps(s, SM_ARRAY_LEN(s), false, 0,
        "> GET /a 17/2;> end 0;> GET /b 17/2;> end 0;< 200;"
        "! < msg capture gap: 98 bytes lost in server->client stream (capture loss);< 404;< end 0;",
        NULL, NULL);
}

static int test_mid_stream_join(void)
{
    /* joined in the middle of a request body and of a response */
    static const struct step s[] = {
        S(0, "ex\":\"i\"}}\n{\"f\":1}\n"),
        S(1, "ody of an older response"),
        S(0, "GET /_cluster/health HTTP/1.1\r\nHost: h\r\n\r\n"),
        S(1, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
    };
    return check_steps(s, SM_ARRAY_LEN(s), true, 0,
        "> GET /_cluster/health 31/11;> end 0;< 200;< end 2;", NULL, NULL);
}

static int test_giant_header(void)
{
    /* a head over the limit is reported and skipped; the next request is framed */
    size_t big = 70 * 1024;
    char *req = sm_malloc(big + 256);
    int n = snprintf(req, 64, "GET /big HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    size_t len = (size_t)n + big + 4;
    struct evlog e;
    ev_init(&e);
    struct agent_http_framer *fr = mk(&e, false, 0);
    for (size_t off = 0; off < len; off += 1460)
        agent_http_framer_feed(fr, AGENT_C2S, (const uint8_t *)req + off, SM_MIN(1460, len - off), 1);
    static const char next[] = "GET /small HTTP/1.1\r\n\r\n";
    agent_http_framer_feed(fr, AGENT_C2S, (const uint8_t *)next, sizeof(next) - 1, 2);
    struct agent_http_framer_stats st;
    agent_http_framer_stats(fr, &st);
    agent_http_framer_free(fr);
    sm_free(req);
    SM_CHECK_EQ_STR(ev_str(&e), "! > msg request header block larger than 65536 bytes;> GET /small 21/2;> end 0;");
    SM_CHECK_EQ_INT(st.oversized_heads, 1);
    ev_free(&e);
    return 0;
}

static int test_shared_budget(void)
{
    /* partial heads of all connections share one bound */
    struct agent_http_budget budget = { 0, 10000 };
    struct evlog ea, eb;
    ev_init(&ea);
    ev_init(&eb);
    struct agent_http_cb cba = { &ea, ev_head, ev_body, ev_end, ev_end_skipped, ev_broken, ev_upgrade };
    struct agent_http_cb cbb = { &eb, ev_head, ev_body, ev_end, ev_end_skipped, ev_broken, ev_upgrade };
    struct agent_http_limits lim = { 0, &budget };
    struct agent_http_framer *a = agent_http_framer_new(&lim, &cba, false);
    struct agent_http_framer *b = agent_http_framer_new(&lim, &cbb, false);
    char *big = sm_malloc(6000);
    memcpy(big, "GET /a HTTP/1.1\r\nX: ", 21);
    memset(big + 21, 'a', 6000 - 21);
    agent_http_framer_feed(a, AGENT_C2S, (const uint8_t *)big, 6000, 1);
    SM_CHECK_EQ_INT(budget.used, 6000);
    memcpy(big, "GET /b HTTP/1.1\r\nX: ", 21);
    agent_http_framer_feed(b, AGENT_C2S, (const uint8_t *)big, 5000, 2);   /* over the budget */
    SM_CHECK_EQ_STR(ev_str(&eb), "! > HTTP buffer budget for all connections exhausted (--max-http-buffered);");
    SM_CHECK_EQ_INT(budget.used, 6000);
    agent_http_framer_feed(a, AGENT_C2S, (const uint8_t *)"\r\n\r\n", 4, 3);   /* a's head completes */
    SM_CHECK_EQ_INT(budget.used, 0);
    static const char req[] = "GET /c HTTP/1.1\r\n\r\n";
    agent_http_framer_feed(b, AGENT_C2S, (const uint8_t *)req, sizeof(req) - 1, 4);
    SM_CHECK(strstr(ev_str(&eb), "> GET /c 17/2;> end 0;") != NULL);
    agent_http_framer_feed(a, AGENT_C2S, (const uint8_t *)big, 3000, 5);
    SM_CHECK_EQ_INT(budget.used, 3000);
    agent_http_framer_free(a);
    SM_CHECK_EQ_INT(budget.used, 0);
    agent_http_framer_free(b);
    sm_free(big);
    ev_free(&ea);
    ev_free(&eb);
    return 0;
}

static int test_parse_error_resync(void)
{
    static const struct step s[] = {
        S(0, "\x16\x03\x01\x02\x00garbage GET /x HTTP/1.1\r\n\r\n"),
    };
    return check_steps(s, SM_ARRAY_LEN(s), false, 0,
        "! > HTTP request parse error: Invalid method encountered;> GET /x 17/2;> end 0;", NULL, NULL);
}

static int test_skip_request_and_its_response(void)
{
    static const struct step s[] = {
        S(0, "GET /_cat/indices HTTP/1.1\r\n\r\nPOST /i/_doc HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"),
        S(1, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    };
    return check_steps(s, SM_ARRAY_LEN(s), false, 0,
        "> GET /_cat/indices 28/2;skip;> skipped;> POST /i/_doc 23/21;> end 2;< skipped;< 201;< end 0;",
        "/_cat", NULL);
}

static int test_space_before_colon(void)
{
    static const struct step s[] = {
        S(0, "POST /i/_doc HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}GET /x HTTP/1.1\r\n\r\n"),
        S(1, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc"),
    };
    /* old Netty (Elasticsearch 1.x-6.x) trims the space and takes the length: so
     * does the framer (llhttp with lenient headers) */
    return check_steps(s, SM_ARRAY_LEN(s), false, 0,
        "> POST /i/_doc 23/22;> end 2;> GET /x 17/2;> end 0;< 201;< end 0;< 200;< end 3;", NULL, NULL);
}

static int test_connect(void)
{
    static const struct step s[] = {
        S(0, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
        S(1, "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01"),
        S(0, "\x16\x03\x01\x00\x10"),
    };
    return check_steps(s, SM_ARRAY_LEN(s), false, 0,
        "> CONNECT example.com:443 34/25;> end 0;< 200;< end 0;^;", NULL, NULL);
}

static int test_scanners(void)
{
    bool partial;
    const char *a = "xx GET /a HTTP/1.1\r\n";
    SM_CHECK_EQ_INT(agent_http_scan_request((const uint8_t *)a, strlen(a), &partial), 3);
    SM_CHECK(!partial);
    const char *b = "body}PO";
    SM_CHECK_EQ_INT(agent_http_scan_request((const uint8_t *)b, strlen(b), &partial), 5);
    SM_CHECK(partial);
    const char *c = "GET a HTTP/1.1\r\nFOO /x HTTP/1.1\r\nGET /x HTTP/2\r\n";
    SM_CHECK_EQ_INT(agent_http_scan_request((const uint8_t *)c, strlen(c), &partial), strlen(c));
    const char *d = "junkHTTP/1.1 503 Service Unavailable\r\n";
    SM_CHECK_EQ_INT(agent_http_scan_response((const uint8_t *)d, strlen(d), &partial), 4);
    SM_CHECK(!partial);
    const char *f = "HTTP/1.1 20";
    SM_CHECK_EQ_INT(agent_http_scan_response((const uint8_t *)f, strlen(f), &partial), 0);
    SM_CHECK(partial);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_keepalive), SM_TC(test_pipelining_and_head), SM_TC(test_head),
             SM_TC(test_chunked), SM_TC(test_close_delimited), SM_TC(test_continue_and_304), SM_TC(test_connection_close),
             SM_TC(test_upgrade), SM_TC(test_upgrade_refused), SM_TC(test_gap_in_request_body),
             SM_TC(test_gap_resync_skips_garbage), SM_TC(test_gap_in_response),
             SM_TC(test_mid_stream_join), SM_TC(test_giant_header), SM_TC(test_shared_budget), SM_TC(test_parse_error_resync),
             SM_TC(test_skip_request_and_its_response), SM_TC(test_space_before_colon), SM_TC(test_connect), SM_TC(test_scanners))
