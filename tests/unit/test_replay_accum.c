/* Accumulator: requests and source responses rebuilt from TrafficStream
 * records with the Migration Assistant's semantics. */
#include "accum/accum.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>

#include "sm_test.h"

#define S(x) x, sizeof(x) - 1
#define SEC 1000000000LL

struct ev {
    char kind;               /* 'q' request, 'r' response, 'c' closed */
    char conn[32];
    uint64_t index;
    char data[256];
    int end;
    bool expired;
    bool truncated;
};

static struct ev evs[64];
static int nev;

static void on_req(void *arg, const struct replay_msg *m)
{
    struct ev *e = &evs[nev++];
    e->kind = 'q';
    snprintf(e->conn, sizeof(e->conn), "%s", m->conn_id);
    e->index = m->index;
    snprintf(e->data, sizeof(e->data), "%.*s", (int)m->len, (const char *)m->data);
}

static void on_resp(void *arg, const struct replay_msg *m, enum replay_resp_end end)
{
    struct ev *e = &evs[nev++];
    e->kind = 'r';
    snprintf(e->conn, sizeof(e->conn), "%s", m->conn_id);
    e->index = m->index;
    snprintf(e->data, sizeof(e->data), "%.*s", (int)m->len, m->len ? (const char *)m->data : "");
    e->end = end;
    e->truncated = m->truncated;
}

static void on_closed(void *arg, const char *node, const char *conn, bool expired)
{
    struct ev *e = &evs[nev++];
    e->kind = 'c';
    snprintf(e->conn, sizeof(e->conn), "%s", conn);
    e->expired = expired;
}

static struct replay_accum *mk(size_t max_message)
{
    nev = 0;
    memset(evs, 0, sizeof(evs));
    struct replay_accum_cb cb = { NULL, on_req, on_resp, on_closed };
    struct replay_accum_limits lim = { 10 * SEC, max_message, 100 };
    return replay_accum_new(&cb, &lim);
}

static TrafficStream *rec(const char *conn, int32_t number, bool last)
{
    TrafficStream *ts = sm_ts_new(conn, "node-1");
    sm_ts_set_index(ts, number, last);
    return ts;
}

static int feed(struct replay_accum *acc, TrafficStream *ts)
{
    int rc = replay_accum_feed(acc, ts);
    sm_ts_free(ts);
    return rc;
}

static int test_keepalive_two_requests(void)
{
    struct replay_accum *acc = mk(0);
    TrafficStream *ts = rec("c1", 1, true);
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("GET /a HTTP/1.1\r\n"));
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("Host: x\r\n\r\n"));
    sm_ts_add_eom(ts, 1 * SEC, 17, 28);
    sm_ts_add(ts, SM_TS_WRITE, 2 * SEC, S("HTTP/1.1 200 OK\r\n"));
    sm_ts_add(ts, SM_TS_WRITE, 2 * SEC, S("content-length: 0\r\n\r\n"));
    sm_ts_add(ts, SM_TS_READ, 3 * SEC, S("GET /b HTTP/1.1\r\n\r\n"));
    sm_ts_add_eom(ts, 3 * SEC, 17, 19);
    sm_ts_add(ts, SM_TS_WRITE, 4 * SEC, S("HTTP/1.1 404 Not Found\r\n\r\n"));
    sm_ts_add(ts, SM_TS_CLOSE, 5 * SEC, NULL, 0);
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    SM_CHECK_EQ_INT(nev, 5);
    SM_CHECK(evs[0].kind == 'q' && evs[0].index == 0);
    SM_CHECK_EQ_STR(evs[0].data, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    SM_CHECK(evs[1].kind == 'r' && evs[1].index == 0 && evs[1].end == REPLAY_RESP_NEXT_REQUEST);
    SM_CHECK_EQ_STR(evs[1].data, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    SM_CHECK(evs[2].kind == 'q' && evs[2].index == 1);
    SM_CHECK(evs[3].kind == 'r' && evs[3].index == 1 && evs[3].end == REPLAY_RESP_CLOSED);
    SM_CHECK_EQ_STR(evs[3].data, "HTTP/1.1 404 Not Found\r\n\r\n");
    SM_CHECK(evs[4].kind == 'c' && !evs[4].expired);
    struct replay_accum_stats st;
    replay_accum_stats(acc, &st);
    SM_CHECK_EQ_INT(st.open_connections, 0);
    SM_CHECK_EQ_INT(st.requests, 2);
    replay_accum_free(acc);
    return 0;
}

static int test_request_across_records_and_segments(void)
{
    struct replay_accum *acc = mk(0);
    TrafficStream *ts = rec("c2", 1, false);
    sm_ts_add(ts, SM_TS_READ_SEGMENT, 1 * SEC, S("PUT /i/_doc/1 HTTP/1.1\r\n"));
    sm_ts_set_unterminated_read(ts, false);
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    ts = rec("c2", 2, false);
    sm_ts_set_unterminated_read(ts, true);
    sm_ts_add(ts, SM_TS_READ_SEGMENT, 1 * SEC, S("content-length: 2\r\n\r\n{}"));
    sm_ts_add(ts, SM_TS_SEGMENT_END, 1 * SEC, NULL, 0);
    sm_ts_add_eom(ts, 1 * SEC, 24, 45);
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    SM_CHECK_EQ_INT(nev, 1);
    SM_CHECK_EQ_STR(evs[0].data, "PUT /i/_doc/1 HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}");
    ts = rec("c2", 3, true);
    sm_ts_add(ts, SM_TS_WRITE_SEGMENT, 2 * SEC, S("HTTP/1.1 201 Created\r\n"));
    sm_ts_add(ts, SM_TS_WRITE_SEGMENT, 2 * SEC, S("\r\n"));
    sm_ts_add(ts, SM_TS_SEGMENT_END, 2 * SEC, NULL, 0);
    sm_ts_add(ts, SM_TS_CLOSE, 3 * SEC, NULL, 0);
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    SM_CHECK_EQ_INT(nev, 3);
    SM_CHECK_EQ_STR(evs[1].data, "HTTP/1.1 201 Created\r\n\r\n");
    replay_accum_free(acc);
    return 0;
}

static int test_mid_connection_join(void)
{
    struct replay_accum *acc = mk(0);
    /* first record we see is the 7th of the connection: 5 requests before,
     * and it starts inside the 6th request (index 5) */
    TrafficStream *ts = rec("c3", 7, false);
    sm_ts_set_prior_requests(ts, 5);
    sm_ts_set_unterminated_read(ts, true);
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("tail of a body"));
    sm_ts_add_eom(ts, 1 * SEC, 20, 40);
    sm_ts_add(ts, SM_TS_WRITE, 1 * SEC, S("HTTP/1.1 200 OK\r\n\r\n"));
    sm_ts_add(ts, SM_TS_READ, 2 * SEC, S("GET /next HTTP/1.1\r\n\r\n"));
    sm_ts_add_eom(ts, 2 * SEC, 20, 22);
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    SM_CHECK_EQ_INT(nev, 1);
    SM_CHECK(evs[0].kind == 'q');
    SM_CHECK_EQ_INT(evs[0].index, 6);
    SM_CHECK_EQ_STR(evs[0].data, "GET /next HTTP/1.1\r\n\r\n");
    struct replay_accum_stats st;
    replay_accum_stats(acc, &st);
    SM_CHECK_EQ_INT(st.skipped_bytes, 14 + 19);
    replay_accum_free(acc);
    return 0;
}

static int test_dropped_and_exception(void)
{
    struct replay_accum *acc = mk(0);
    TrafficStream *ts = rec("c4", 1, true);
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("GET /_cat/health HTTP/1.1\r\n"));
    sm_ts_add(ts, SM_TS_REQUEST_DROPPED, 1 * SEC, NULL, 0);
    sm_ts_add(ts, SM_TS_READ, 2 * SEC, S("POST /x HTTP/1.1\r\ncontent-len"));
    sm_ts_add(ts, SM_TS_CONNECTION_EXCEPTION, 2 * SEC, S("capture gap: 1448 bytes lost"));
    sm_ts_add(ts, SM_TS_READ, 3 * SEC, S("GET /ok HTTP/1.1\r\n\r\n"));
    sm_ts_add_eom(ts, 3 * SEC, 18, 20);
    sm_ts_add(ts, SM_TS_WRITE, 3 * SEC, S("HTTP/1.1 200 OK\r\n\r\n"));
    sm_ts_add(ts, SM_TS_CLOSE, 4 * SEC, NULL, 0);
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    SM_CHECK_EQ_INT(nev, 3);
    SM_CHECK_EQ_STR(evs[0].data, "GET /ok HTTP/1.1\r\n\r\n");
    SM_CHECK_EQ_INT(evs[0].index, 0);
    struct replay_accum_stats st;
    replay_accum_stats(acc, &st);
    SM_CHECK_EQ_INT(st.requests_dropped, 1);
    SM_CHECK_EQ_INT(st.requests_broken, 1);
    SM_CHECK_EQ_INT(st.exceptions, 1);
    replay_accum_free(acc);
    return 0;
}

static int test_missing_record_breaks_request(void)
{
    struct replay_accum *acc = mk(0);
    TrafficStream *ts = rec("c5", 1, false);
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("PUT /big HTTP/1.1\r\n"));
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    ts = rec("c5", 1, false);                 /* duplicate: ignored */
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("PUT /big HTTP/1.1\r\n"));
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    ts = rec("c5", 3, true);                  /* record 2 never arrives */
    sm_ts_set_prior_requests(ts, 1);
    sm_ts_set_unterminated_read(ts, false);
    sm_ts_add(ts, SM_TS_READ, 2 * SEC, S("GET /after HTTP/1.1\r\n\r\n"));
    sm_ts_add_eom(ts, 2 * SEC, 21, 23);
    sm_ts_add(ts, SM_TS_CLOSE, 2 * SEC, NULL, 0);
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    SM_CHECK_EQ_INT(nev, 3);
    SM_CHECK_EQ_STR(evs[0].data, "GET /after HTTP/1.1\r\n\r\n");
    SM_CHECK_EQ_INT(evs[0].index, 1);
    SM_CHECK(evs[1].kind == 'r' && evs[1].end == REPLAY_RESP_CLOSED && evs[1].data[0] == 0);
    struct replay_accum_stats st;
    replay_accum_stats(acc, &st);
    SM_CHECK_EQ_INT(st.duplicate_records, 1);
    SM_CHECK_EQ_INT(st.out_of_order_records, 1);
    SM_CHECK_EQ_INT(st.requests_broken, 1);
    replay_accum_free(acc);
    return 0;
}

static int test_expiry_in_source_time(void)
{
    struct replay_accum *acc = mk(0);
    TrafficStream *ts = rec("idle", 1, false);
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("GET / HTTP/1.1\r\n\r\n"));
    sm_ts_add_eom(ts, 1 * SEC, 16, 18);
    sm_ts_add(ts, SM_TS_WRITE, 1 * SEC, S("HTTP/1.1 200 OK\r\n\r\n"));
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    ts = rec("busy", 1, false);
    sm_ts_add(ts, SM_TS_READ, 5 * SEC, S("GET /"));
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    SM_CHECK_EQ_INT(nev, 1);                   /* nothing expired yet */
    ts = rec("busy", 2, false);
    sm_ts_add(ts, SM_TS_READ, 12 * SEC, S(" HTTP/1.1\r\n\r\n"));
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);     /* 11 s after "idle" went quiet */
    SM_CHECK_EQ_INT(nev, 3);
    SM_CHECK(evs[1].kind == 'r' && evs[1].end == REPLAY_RESP_EXPIRED);
    SM_CHECK_EQ_STR(evs[1].conn, "idle");
    SM_CHECK(evs[2].kind == 'c' && evs[2].expired);
    replay_accum_finish(acc);                  /* "busy" had a partial request: broken */
    struct replay_accum_stats st;
    replay_accum_stats(acc, &st);
    SM_CHECK_EQ_INT(st.connections_expired, 2);
    SM_CHECK_EQ_INT(st.requests_broken, 1);
    SM_CHECK_EQ_INT(st.open_connections, 0);
    replay_accum_free(acc);
    return 0;
}

static int test_oversize_request_skipped(void)
{
    struct replay_accum *acc = mk(32);
    TrafficStream *ts = rec("big", 1, true);
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("POST /_bulk HTTP/1.1\r\ncontent-length: 100\r\n\r\n"));
    sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("more body bytes"));
    sm_ts_add_eom(ts, 1 * SEC, 22, 45);
    sm_ts_add(ts, SM_TS_WRITE, 1 * SEC, S("HTTP/1.1 413 x\r\n\r\n"));
    sm_ts_add(ts, SM_TS_READ, 2 * SEC, S("GET / HTTP/1.1\r\n\r\n"));
    sm_ts_add_eom(ts, 2 * SEC, 16, 18);
    SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    /* request 0 skipped, request 1 delivered with its own index, then close */
    SM_CHECK(evs[0].kind == 'q');
    SM_CHECK_EQ_INT(evs[0].index, 1);
    SM_CHECK_EQ_STR(evs[0].data, "GET / HTTP/1.1\r\n\r\n");
    struct replay_accum_stats st;
    replay_accum_stats(acc, &st);
    SM_CHECK_EQ_INT(st.oversize, 1);
    SM_CHECK_EQ_INT(st.requests_broken, 1);
    replay_accum_free(acc);
    return 0;
}

static int test_connection_cap(void)
{
    struct replay_accum *acc = mk(0);
    char id[16];
    for (int i = 0; i < 150; i++) {
        snprintf(id, sizeof(id), "k%d", i);
        TrafficStream *ts = rec(id, 1, false);
        sm_ts_add(ts, SM_TS_READ, 1 * SEC, S("GET"));
        SM_CHECK_EQ_INT(feed(acc, ts), SM_OK);
    }
    struct replay_accum_stats st;
    replay_accum_stats(acc, &st);
    SM_CHECK_EQ_INT(st.open_connections, 100);
    SM_CHECK_EQ_INT(st.connections_expired, 50);
    replay_accum_free(acc);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_keepalive_two_requests), SM_TC(test_request_across_records_and_segments),
             SM_TC(test_mid_connection_join), SM_TC(test_dropped_and_exception),
             SM_TC(test_missing_record_breaks_request), SM_TC(test_expiry_in_source_time),
             SM_TC(test_oversize_request_skipped), SM_TC(test_connection_cap))
