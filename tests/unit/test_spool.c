/* Unit tests of the Kafka sink's on-disk spool (agent/sink/spool.c): order,
 * acknowledgements and segment deletion, rewind, per-key tracking, the size
 * cap, and crash recovery (torn and corrupt tails cut by CRC). */
#include <sm/err.h>
#include <sm/mem.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink/spool.h"
#include "sm_test.h"

static char dir[256];

static void mkdir_tmp(const char *tag)
{
    snprintf(dir, sizeof(dir), "/tmp/sm_test_spool.%d.%s", (int)getpid(), tag);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

static void rm_tmp(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

static int count_segments(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "spool-", 6))
            n++;
    closedir(d);
    return n;
}

static int append_n(struct agent_spool *sp, int from, int to, size_t vlen)
{
    uint8_t *v = sm_malloc(vlen + 1);
    for (int i = from; i < to; i++) {
        char key[32];
        int kl = snprintf(key, sizeof(key), "conn-%d", i % 3);
        memset(v, 'a' + i % 26, vlen);
        snprintf((char *)v, vlen, "rec-%06d", i);
        int rc = agent_spool_append(sp, key, (size_t)kl, v, vlen, i % 5 == 4);
        if (rc) {
            sm_free(v);
            return rc;
        }
    }
    sm_free(v);
    return 0;
}

/* checks that the next record is rec-<i> */
static int expect_rec(struct agent_spool *sp, int i, uint64_t *id)
{
    struct agent_spool_rec r;
    SM_CHECK_EQ_INT(agent_spool_peek(sp, &r), SM_OK);
    char want[16];
    snprintf(want, sizeof(want), "rec-%06d", i);
    SM_CHECK(r.len > 10 && !memcmp(r.data, want, 10));
    char key[32];
    snprintf(key, sizeof(key), "conn-%d", i % 3);
    SM_CHECK_EQ_STR(r.key, key);
    SM_CHECK_EQ_INT(r.last, i % 5 == 4);
    *id = r.id;
    agent_spool_advance(sp);
    return 0;
}

static int test_spool_order_ack_rewind(void)
{
    mkdir_tmp("order");
    struct agent_spool *sp;
    char err[256];
    /* 64 KiB segments, 1 MiB cap */
    SM_CHECK_EQ_INT(agent_spool_open(dir, 1 << 20, 64 << 10, &sp, err, sizeof(err)), SM_OK);
    SM_CHECK(!agent_spool_has_key(sp, "conn-0", 6));
    SM_CHECK_EQ_INT(append_n(sp, 0, 300, 1000), 0);   /* ~300 KB: several segments */
    struct agent_spool_stats st;
    agent_spool_stats(sp, &st);
    SM_CHECK_EQ_INT(st.records, 300);
    SM_CHECK(st.segments >= 4);
    SM_CHECK_EQ_INT(count_segments(), (int)st.segments);
    SM_CHECK(agent_spool_has_key(sp, "conn-1", 6));
    SM_CHECK(!agent_spool_has_key(sp, "conn-9", 6));
    SM_CHECK_EQ_INT(agent_spool_unsent(sp), 300);

    uint64_t ids[300];
    for (int i = 0; i < 100; i++)
        if (expect_rec(sp, i, &ids[i]))
            return 1;
    SM_CHECK_EQ_INT(agent_spool_unsent(sp), 200);
    /* ack 0..49 out of order; rewind hands out 50..99 again */
    for (int i = 49; i >= 0; i--)
        agent_spool_ack(sp, ids[i]);
    agent_spool_rewind(sp);
    SM_CHECK_EQ_INT(agent_spool_unsent(sp), 250);
    for (int i = 50; i < 300; i++)
        if (expect_rec(sp, i, &ids[i]))
            return 1;
    struct agent_spool_rec r;
    SM_CHECK_EQ_INT(agent_spool_peek(sp, &r), SM_EEOF);
    /* the first segment(s) are gone once fully acknowledged */
    agent_spool_stats(sp, &st);
    SM_CHECK_EQ_INT(st.records, 250);
    SM_CHECK(st.segments < 6);
    for (int i = 50; i < 300; i++)
        agent_spool_ack(sp, ids[i]);
    agent_spool_stats(sp, &st);
    SM_CHECK_EQ_INT(st.records, 0);
    SM_CHECK_EQ_INT(st.segments, 0);
    SM_CHECK_EQ_INT(st.bytes, 0);
    SM_CHECK_EQ_INT(count_segments(), 0);
    SM_CHECK(!agent_spool_has_key(sp, "conn-0", 6));
    /* appends continue after everything was deleted */
    SM_CHECK_EQ_INT(append_n(sp, 300, 310, 100), 0);
    for (int i = 300; i < 310; i++)
        if (expect_rec(sp, i, &ids[0]))
            return 1;
    agent_spool_close(sp);
    rm_tmp();
    return 0;
}

static int test_spool_cap(void)
{
    mkdir_tmp("cap");
    struct agent_spool *sp;
    char err[256];
    SM_CHECK_EQ_INT(agent_spool_open(dir, 100 << 10, 16 << 10, &sp, err, sizeof(err)), SM_OK);
    int accepted = 0, refused = 0;
    uint8_t v[1000];
    memset(v, 'x', sizeof(v));
    for (int i = 0; i < 500; i++) {
        int rc = agent_spool_append(sp, "k", 1, v, sizeof(v), false);
        if (rc == SM_OK)
            accepted++;
        else if (rc == SM_EFULL)
            refused++;
        else
            return 1;
    }
    struct agent_spool_stats st;
    agent_spool_stats(sp, &st);
    SM_CHECK(accepted > 50 && accepted < 102);
    SM_CHECK_EQ_INT(refused, 500 - accepted);
    SM_CHECK_EQ_INT(st.refused_full, (uint64_t)refused);
    SM_CHECK(st.bytes <= 100 << 10);
    SM_CHECK(agent_spool_would_overflow(sp, 1, sizeof(v)));
    /* draining makes room again */
    struct agent_spool_rec r;
    for (int i = 0; i < accepted / 2; i++) {
        SM_CHECK_EQ_INT(agent_spool_peek(sp, &r), SM_OK);
        agent_spool_advance(sp);
        agent_spool_ack(sp, r.id);
    }
    SM_CHECK_EQ_INT(agent_spool_append(sp, "k", 1, v, sizeof(v), false), SM_OK);
    agent_spool_close(sp);
    rm_tmp();
    return 0;
}

static int last_segment(char *path, size_t n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char best[300] = "";
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "spool-", 6) && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", de->d_name);
    closedir(d);
    if (!best[0])
        return -1;
    snprintf(path, n, "%s/%s", dir, best);
    return 0;
}

static int test_spool_crash_recovery(void)
{
    mkdir_tmp("crash");
    struct agent_spool *sp;
    char err[256];
    SM_CHECK_EQ_INT(agent_spool_open(dir, 1 << 20, 1 << 20, &sp, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(append_n(sp, 0, 20, 200), 0);
    /* a crash: no close, the file keeps what was written; cut 7 bytes off the tail */
    char seg[512];
    SM_CHECK(last_segment(seg, sizeof(seg)) == 0);
    struct stat st0;
    SM_CHECK(stat(seg, &st0) == 0);
    SM_CHECK(truncate(seg, st0.st_size - 7) == 0);
    agent_spool_close(sp);   /* only closes fds and syncs; nothing more is written */

    SM_CHECK_EQ_INT(agent_spool_open(dir, 1 << 20, 1 << 20, &sp, err, sizeof(err)), SM_OK);
    struct agent_spool_stats st;
    agent_spool_stats(sp, &st);
    SM_CHECK_EQ_INT(st.recovered, 19);
    SM_CHECK_EQ_INT(st.records, 19);
    SM_CHECK(st.truncated_bytes > 0);
    struct stat st1;
    SM_CHECK(stat(seg, &st1) == 0);
    SM_CHECK(st1.st_size < st0.st_size - 7);          /* the torn frame is gone */
    SM_CHECK(agent_spool_has_key(sp, "conn-2", 6));
    /* new records go after the recovered ones, into a new segment */
    SM_CHECK_EQ_INT(append_n(sp, 20, 25, 200), 0);
    uint64_t id;
    for (int i = 0; i < 19; i++)
        if (expect_rec(sp, i, &id))
            return 1;
    for (int i = 20; i < 25; i++)
        if (expect_rec(sp, i, &id))
            return 1;
    agent_spool_close(sp);

    /* corrupt a byte in the middle of a record: everything from there is cut */
    SM_CHECK_EQ_INT(agent_spool_open(dir, 1 << 20, 1 << 20, &sp, err, sizeof(err)), SM_OK);
    agent_spool_stats(sp, &st);
    SM_CHECK_EQ_INT(st.recovered, 24);
    agent_spool_close(sp);
    SM_CHECK(last_segment(seg, sizeof(seg)) == 0);
    int fd = open(seg, O_RDWR);
    SM_CHECK(fd >= 0);
    /* the third record of the newest segment: 8 magic + 2 frames of (8 + 3 + 6 + 200) + a bit */
    off_t off = 8 + 2 * (8 + 3 + 6 + 200) + 50;
    SM_CHECK(pwrite(fd, "\xff", 1, off) == 1);
    close(fd);
    SM_CHECK_EQ_INT(agent_spool_open(dir, 1 << 20, 1 << 20, &sp, err, sizeof(err)), SM_OK);
    agent_spool_stats(sp, &st);
    SM_CHECK_EQ_INT(st.recovered, 19 + 2);
    for (int i = 0; i < 19; i++)
        if (expect_rec(sp, i, &id))
            return 1;
    for (int i = 20; i < 22; i++)
        if (expect_rec(sp, i, &id))
            return 1;
    struct agent_spool_rec r;
    SM_CHECK_EQ_INT(agent_spool_peek(sp, &r), SM_EEOF);
    agent_spool_close(sp);

    /* a segment that is not a spool file (bad magic) is discarded */
    SM_CHECK(last_segment(seg, sizeof(seg)) == 0);
    fd = open(seg, O_RDWR);
    SM_CHECK(fd >= 0 && pwrite(fd, "XXXX", 4, 0) == 4);
    close(fd);
    SM_CHECK_EQ_INT(agent_spool_open(dir, 1 << 20, 1 << 20, &sp, err, sizeof(err)), SM_OK);
    agent_spool_stats(sp, &st);
    SM_CHECK_EQ_INT(st.recovered, 19);
    agent_spool_close(sp);
    rm_tmp();
    return 0;
}

/* records taken back from librdkafka at close go in front of the spool */
static int test_spool_prepend(void)
{
    mkdir_tmp("prepend");
    struct agent_spool *sp;
    char err[256];
    SM_CHECK_EQ_INT(agent_spool_open(dir, 1 << 20, 0, &sp, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(append_n(sp, 10, 20, 100), 0);
    uint8_t v[5][100];
    struct agent_spool_rec recs[5];
    char keys[5][16];
    for (int i = 0; i < 5; i++) {
        memset(v[i], 'a' + i, 100);
        snprintf((char *)v[i], 100, "rec-%06d", 5 + i);
        snprintf(keys[i], sizeof(keys[i]), "conn-%d", (5 + i) % 3);
        recs[i] = (struct agent_spool_rec){ 0, keys[i], strlen(keys[i]), v[i], 100, (5 + i) % 5 == 4 };
    }
    SM_CHECK_EQ_INT(agent_spool_prepend(sp, recs, 5), 5);
    uint64_t id;
    for (int i = 5; i < 20; i++)
        if (expect_rec(sp, i, &id))
            return 1;
    agent_spool_close(sp);
    /* the order survives a restart */
    SM_CHECK_EQ_INT(agent_spool_open(dir, 1 << 20, 0, &sp, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(agent_spool_prepend(sp, recs, 5), 5);   /* again, in front of everything */
    for (int i = 5; i < 10; i++)
        if (expect_rec(sp, i, &id))
            return 1;
    for (int i = 5; i < 20; i++)
        if (expect_rec(sp, i, &id))
            return 1;
    struct agent_spool_stats st;
    agent_spool_stats(sp, &st);
    SM_CHECK_EQ_INT(st.recovered, 15);
    SM_CHECK_EQ_INT(st.records, 20);
    agent_spool_close(sp);
    rm_tmp();
    return 0;
}

SM_TEST_MAIN(SM_TC(test_spool_order_ack_rewind), SM_TC(test_spool_cap), SM_TC(test_spool_crash_recovery),
             SM_TC(test_spool_prepend))
