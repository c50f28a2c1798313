/* Unit: the replayer's at-least-once bookkeeping (replay/input/offsets.c) and
 * the accumulator's pins: the commit point never passes a record that a
 * request in progress or in flight came from; releases from before a
 * rebalance are ignored; abandoned requests release their pin; a revoked
 * partition's connections are dropped without releasing. */
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/ts.h>

#include <stdio.h>
#include <string.h>

#include "accum/accum.h"
#include "input/offsets.h"
#include "sm_test.h"

static int test_offsets_commit_point(void)
{
    struct replay_offsets *o = replay_offsets_new();
    SM_CHECK(o);
    struct replay_origin a, b, c;
    SM_CHECK(!replay_offsets_origin(o, 3, 0, &a));          /* not assigned */
    replay_offsets_assign(o, 3);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, NULL), -1);
    SM_CHECK(replay_offsets_origin(o, 3, 5, &a));
    SM_CHECK(replay_offsets_origin(o, 3, 7, &c));
    b = a;
    replay_offsets_pin(o, &a);
    replay_offsets_consumed(o, 3, 5);
    replay_offsets_pin(o, &b);                               /* two requests from offset 5 */
    replay_offsets_consumed(o, 3, 6);
    replay_offsets_pin(o, &c);
    replay_offsets_consumed(o, 3, 9);
    uint64_t pinned;
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, &pinned), 5);
    SM_CHECK_EQ_INT(pinned, 3);
    replay_offsets_release(o, &c);                           /* out of order */
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, NULL), 5);
    replay_offsets_release(o, &a);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, NULL), 5);
    replay_offsets_release(o, &b);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, &pinned), 10);   /* last consumed + 1 */
    SM_CHECK_EQ_INT(pinned, 0);
    /* rebalance: a release from the old generation does not touch new pins */
    SM_CHECK(replay_offsets_origin(o, 3, 12, &a));
    replay_offsets_pin(o, &a);
    replay_offsets_consumed(o, 3, 12);
    replay_offsets_revoke(o, 3);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, NULL), -1);
    replay_offsets_assign(o, 3);
    SM_CHECK(replay_offsets_origin(o, 3, 12, &b));
    SM_CHECK(b.gen != a.gen);
    replay_offsets_pin(o, &b);
    replay_offsets_consumed(o, 3, 14);
    replay_offsets_release(o, &a);                           /* stale */
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, &pinned), 12);
    SM_CHECK_EQ_INT(pinned, 1);
    SM_CHECK_EQ_INT(replay_offsets_pinned(o), 1);
    /* many pins: the ring grows and stays ordered */
    replay_offsets_release(o, &b);
    struct replay_origin many[1000];
    for (int i = 0; i < 1000; i++) {
        SM_CHECK(replay_offsets_origin(o, 3, 100 + i, &many[i]));
        replay_offsets_pin(o, &many[i]);
        replay_offsets_consumed(o, 3, 100 + i);
    }
    for (int i = 999; i >= 1; i--)
        replay_offsets_release(o, &many[i]);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, NULL), 100);
    replay_offsets_release(o, &many[0]);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(o, 3, NULL), 1100);
    replay_offsets_free(o);
    return 0;
}

struct ctx {
    struct replay_offsets *o;
    int requests;
    struct replay_origin last;
    bool release_now;
};

static void on_req(void *arg, const struct replay_msg *m)
{
    struct ctx *c = arg;
    c->requests++;
    c->last = m->origin;
    if (c->release_now && m->origin.partition >= 0)
        replay_offsets_release(c->o, &m->origin);
}

static TrafficStream *rec(const char *conn, int idx, const char *read, bool eom, const char *write, bool drop)
{
    TrafficStream *ts = sm_ts_new(conn, "n");
    int64_t t = 1700000000000000000ll + idx * 1000000ll;
    if (write)
        sm_ts_add(ts, SM_TS_WRITE, t, write, strlen(write));
    if (read)
        sm_ts_add(ts, SM_TS_READ, t, read, strlen(read));
    if (eom)
        sm_ts_add_eom(ts, t, 14, (int32_t)strlen(read ? read : ""));
    if (drop)
        sm_ts_add(ts, SM_TS_REQUEST_DROPPED, t, NULL, 0);
    sm_ts_set_index(ts, idx, false);
    return ts;
}

static int feed(struct replay_accum *acc, struct replay_offsets *o, int32_t key, int64_t off, TrafficStream *ts)
{
    struct replay_origin org;
    if (!replay_offsets_origin(o, key, off, &org))
        return -1;
    int rc = replay_accum_feed_from(acc, ts, &org);
    replay_offsets_consumed(o, key, off);
    sm_ts_free(ts);
    return rc;
}

static int test_accum_pins(void)
{
    struct ctx c = { 0 };
    c.o = replay_offsets_new();
    replay_offsets_assign(c.o, 0);
    struct replay_accum_cb cb = { &c, on_req, NULL, NULL };
    struct replay_accum *acc = replay_accum_new(&cb, NULL);
    struct replay_accum_pins pins = { c.o, replay_offsets_pin, replay_offsets_release };
    replay_accum_set_pins(acc, &pins);

    /* a request split over offsets 0 and 1: pinned at 0 until released */
    SM_CHECK_EQ_INT(feed(acc, c.o, 0, 0, rec("c1", 1, "GET / HTTP/1.1\r\n", false, NULL, false)), 0);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(c.o, 0, NULL), 0);
    SM_CHECK_EQ_INT(feed(acc, c.o, 0, 1, rec("c1", 2, "Host: x\r\n\r\n", true, NULL, false)), 0);
    SM_CHECK_EQ_INT(c.requests, 1);
    SM_CHECK_EQ_INT(c.last.offset, 0);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(c.o, 0, NULL), 0);   /* in the engine */
    /* response at 2; another connection's request starts at 3 */
    SM_CHECK_EQ_INT(feed(acc, c.o, 0, 2, rec("c1", 3, NULL, false, "HTTP/1.1 200 OK\r\n\r\n", false)), 0);
    SM_CHECK_EQ_INT(feed(acc, c.o, 0, 3, rec("c2", 1, "GET /a HTTP/1.1\r\n", false, NULL, false)), 0);
    replay_offsets_release(c.o, &c.last);                 /* the engine wrote c1's tuple */
    SM_CHECK_EQ_INT(replay_offsets_commit_point(c.o, 0, NULL), 3);   /* c2 in progress pins 3 */
    /* c2's request is dropped by the capture: the pin goes */
    SM_CHECK_EQ_INT(feed(acc, c.o, 0, 4, rec("c2", 2, NULL, false, NULL, true)), 0);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(c.o, 0, NULL), 5);
    /* a response cut by the next read: a broken request (write before EOM) unpins */
    SM_CHECK_EQ_INT(feed(acc, c.o, 0, 5, rec("c3", 1, "GET /b HTTP/1.1\r\n", false, NULL, false)), 0);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(c.o, 0, NULL), 5);
    SM_CHECK_EQ_INT(feed(acc, c.o, 0, 6, rec("c3", 2, NULL, false, "HTTP/1.1 200 OK\r\n\r\n", false)), 0);
    SM_CHECK_EQ_INT(replay_offsets_commit_point(c.o, 0, NULL), 7);
    /* revoke: connections of the partition are dropped without releasing */
    SM_CHECK_EQ_INT(feed(acc, c.o, 0, 7, rec("c4", 1, "GET /c HTTP/1.1\r\n", false, NULL, false)), 0);
    SM_CHECK_EQ_INT(replay_offsets_pinned(c.o), 1);
    replay_accum_drop_partition(acc, 0);
    SM_CHECK_EQ_INT(replay_offsets_pinned(c.o), 1);         /* the caller revokes */
    struct replay_accum_stats st;
    replay_accum_stats(acc, &st);
    SM_CHECK_EQ_INT(st.open_connections, 0);
    replay_offsets_revoke(c.o, 0);
    SM_CHECK_EQ_INT(replay_offsets_pinned(c.o), 0);
    replay_accum_free(acc);
    replay_offsets_free(c.o);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_offsets_commit_point), SM_TC(test_accum_pins))
