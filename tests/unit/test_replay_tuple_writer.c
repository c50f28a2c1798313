/* Tuple files of the replayer on a full disk (RLIMIT_FSIZE stands in for
 * one): tuples of a batch that cannot be written are counted lost, the part of
 * the batch that reached the file is cut off again (whole lines only), flush
 * fails from then on (the Kafka input commits no offset past a lost tuple),
 * and writing goes on once there is room. */
#include "tuple/tuple.h"

#include <sm/err.h>
#include <sm/util.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sm_test.h"

static int write_lines(struct replay_tuple_writer *w, int from, int to, int *taken)
{
    char line[2000];
    for (int i = from; i < to; i++) {
        int n = snprintf(line, sizeof(line), "{\"n\":%d,\"pad\":\"%01500d\"}", i, 0);
        if (replay_tuple_writer_write_line(w, line, (size_t)n) == SM_OK)
            (*taken)++;
    }
    return 0;
}

static int test_full_disk(void)
{
    char dir[] = "/tmp/sm_test_twXXXXXX";
    SM_CHECK(mkdtemp(dir) != NULL);
    char err[256], path[300];
    snprintf(path, sizeof(path), "%s/tuples-000001.log", dir);
    struct rlimit old;
    SM_CHECK_EQ_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    struct replay_tuple_writer *w = replay_tuple_writer_open(dir, false, 0, err, sizeof(err));
    SM_CHECK(w != NULL);
    int taken = 0;
    write_lines(w, 0, 100, &taken);
    SM_CHECK_EQ_INT(replay_tuple_writer_flush(w), SM_OK);
    struct stat st;
    SM_CHECK_EQ_INT(stat(path, &st), 0);
    off_t good = st.st_size;
    struct rlimit lim = { .rlim_cur = (rlim_t)good + 50000, .rlim_max = old.rlim_max };
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    write_lines(w, 100, 300, &taken);   /* ~300 KB: part of it fits */
    SM_CHECK_EQ_INT(replay_tuple_writer_lost(w), 0);
    SM_CHECK_EQ_INT(replay_tuple_writer_flush(w), SM_EIO);
    SM_CHECK_EQ_INT(replay_tuple_writer_lost(w), 200);
    SM_CHECK_EQ_INT(stat(path, &st), 0);
    SM_CHECK_EQ_INT(st.st_size, good);          /* the partial batch was cut off */
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    write_lines(w, 300, 310, &taken);
    SM_CHECK_EQ_INT(replay_tuple_writer_flush(w), SM_EIO);   /* sticky: tuples were lost */
    SM_CHECK_EQ_INT(taken, 310);
    SM_CHECK_EQ_INT(replay_tuple_writer_count(w), 310);
    SM_CHECK_EQ_INT(replay_tuple_writer_close(w), SM_EIO);
    signal(SIGXFSZ, SIG_DFL);
    /* whole lines only: 0..99 then 300..309 */
    FILE *f = fopen(path, "r");
    SM_CHECK(f != NULL);
    static char line[4000];
    int k = 0;
    while (fgets(line, sizeof(line), f)) {
        int want = k < 100 ? k : 300 + (k - 100), got = -1;
        SM_CHECK(strlen(line) > 1 && line[strlen(line) - 1] == '\n');
        SM_CHECK_EQ_INT(sscanf(line, "{\"n\":%d,", &got), 1);
        SM_CHECK_EQ_INT(got, want);
        k++;
    }
    fclose(f);
    SM_CHECK_EQ_INT(k, 110);
    SM_CHECK_EQ_INT(unlink(path), 0);
    SM_CHECK_EQ_INT(rmdir(dir), 0);
    return 0;
}

/* gzip tuples: a failed write breaks the stream; the tuples it held are lost
 * (counted) and the next tuples go to a new file, which reads whole. */
static int test_full_disk_gzip(void)
{
    char dir[] = "/tmp/sm_test_twgXXXXXX";
    SM_CHECK(mkdtemp(dir) != NULL);
    char err[256], p1[300], p2[300], p3[300];
    snprintf(p1, sizeof(p1), "%s/tuples-000001.log.gz", dir);
    snprintf(p2, sizeof(p2), "%s/tuples-000002.log.gz", dir);
    snprintf(p3, sizeof(p3), "%s/tuples-000003.log.gz", dir);
    struct rlimit old;
    SM_CHECK_EQ_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    struct replay_tuple_writer *w = replay_tuple_writer_open(dir, true, 0, err, sizeof(err));
    SM_CHECK(w != NULL);
    replay_tuple_writer_set_gz_retry(w, 300);
    char line[600];
    unsigned x = 12345;
    for (int i = 0; i < 20; i++) {
        int n = snprintf(line, sizeof(line), "{\"n\":%d}", i);
        SM_CHECK_EQ_INT(replay_tuple_writer_write_line(w, line, (size_t)n), SM_OK);
    }
    SM_CHECK_EQ_INT(replay_tuple_writer_flush(w), SM_OK);
    struct stat st;
    SM_CHECK_EQ_INT(stat(p1, &st), 0);
    struct rlimit lim = { .rlim_cur = (rlim_t)st.st_size, .rlim_max = old.rlim_max };
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (int i = 20; i < 400; i++) {   /* ~200 KB of poorly compressible text */
        int n = snprintf(line, sizeof(line), "{\"n\":%d,\"r\":\"", i);
        for (int k = 0; k < 500; k++) {
            x = x * 1103515245u + 12345u;
            line[n++] = "0123456789abcdef"[(x >> 16) & 15];
        }
        line[n++] = '"';
        line[n++] = '}';
        replay_tuple_writer_write_line(w, line, (size_t)n);
    }
    SM_CHECK_EQ_INT(replay_tuple_writer_flush(w), SM_EIO);
    uint64_t lost = replay_tuple_writer_lost(w);
    SM_CHECK(lost >= 1 && lost <= 380);
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    sm_sleep_ms(350);   /* past the retry wait: the next tuple opens a new file */
    for (int i = 400; i < 410; i++) {
        int n = snprintf(line, sizeof(line), "{\"n\":%d}", i);
        SM_CHECK_EQ_INT(replay_tuple_writer_write_line(w, line, (size_t)n), SM_OK);
    }
    SM_CHECK_EQ_INT(replay_tuple_writer_count(w), 410);
    replay_tuple_writer_close(w);
    signal(SIGXFSZ, SIG_DFL);
    /* the tuples after the break: a new file (the second: at most one per retry wait) that
     * reads whole */
    SM_CHECK_EQ_INT(access(p3, F_OK), -1);
    gzFile g = gzopen(p2, "rb");
    SM_CHECK(g != NULL);
    int k = 400, got = -1;
    while (gzgets(g, line, sizeof(line))) {
        SM_CHECK_EQ_INT(sscanf(line, "{\"n\":%d}", &got), 1);
        SM_CHECK_EQ_INT(got, k);
        k++;
    }
    int zerr;
    gzerror(g, &zerr);
    SM_CHECK_EQ_INT(zerr, Z_OK);
    gzclose(g);
    SM_CHECK_EQ_INT(k, 410);
    unlink(p1);
    unlink(p2);
    SM_CHECK_EQ_INT(rmdir(dir), 0);
    return 0;
}

/* The tuples directory disappears (a new file cannot be opened at rotation):
 * tuples are counted lost until a new file can be opened, tried at most once
 * per retry wait; then writing goes on. */
static int test_dir_gone(void)
{
    char dir[] = "/tmp/sm_test_twdXXXXXX";
    SM_CHECK(mkdtemp(dir) != NULL);
    char err[256], path[300];
    struct replay_tuple_writer *w = replay_tuple_writer_open(dir, false, 1000, err, sizeof(err));
    SM_CHECK(w != NULL);
    replay_tuple_writer_set_gz_retry(w, 200);
    char line[100];
    for (int i = 0; i < 30; i++) {   /* 30 x ~40 bytes: rotated once */
        int n = snprintf(line, sizeof(line), "{\"n\":%d,\"pad\":\"%020d\"}", i, 0);
        SM_CHECK_EQ_INT(replay_tuple_writer_write_line(w, line, (size_t)n), SM_OK);
    }
    SM_CHECK_EQ_INT(replay_tuple_writer_flush(w), SM_OK);
    for (int k = 1; k <= 2; k++) {
        snprintf(path, sizeof(path), "%s/tuples-%06d.log", dir, k);
        unlink(path);
    }
    SM_CHECK_EQ_INT(rmdir(dir), 0);
    int lost_calls = 0;
    for (int i = 30; i < 80; i++) {   /* the next rotation cannot open a file */
        int n = snprintf(line, sizeof(line), "{\"n\":%d,\"pad\":\"%020d\"}", i, 0);
        lost_calls += replay_tuple_writer_write_line(w, line, (size_t)n) != SM_OK;
    }
    SM_CHECK(lost_calls > 0);
    SM_CHECK(replay_tuple_writer_lost(w) > 0);
    SM_CHECK_EQ_INT(mkdir(dir, 0700), 0);
    sm_sleep_ms(250);
    for (int i = 80; i < 90; i++) {
        int n = snprintf(line, sizeof(line), "{\"n\":%d,\"pad\":\"%020d\"}", i, 0);
        SM_CHECK_EQ_INT(replay_tuple_writer_write_line(w, line, (size_t)n), SM_OK);
    }
    replay_tuple_writer_close(w);
    /* the tuples after the directory came back are in it, whole */
    DIR *d = opendir(dir);
    SM_CHECK(d != NULL);
    struct dirent *de;
    int lines = 0, last = -1;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        SM_CHECK(f != NULL);
        while (fgets(line, sizeof(line), f)) {
            int got;
            SM_CHECK_EQ_INT(sscanf(line, "{\"n\":%d,", &got), 1);
            SM_CHECK(got >= 80 && got > last);
            last = got;
            lines++;
        }
        fclose(f);
        unlink(path);
    }
    closedir(d);
    SM_CHECK_EQ_INT(lines, 10);
    SM_CHECK_EQ_INT(rmdir(dir), 0);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_full_disk), SM_TC(test_full_disk_gzip), SM_TC(test_dir_gone))
