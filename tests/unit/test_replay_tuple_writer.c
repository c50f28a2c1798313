/* Tuple files of the replayer on a full disk (RLIMIT_FSIZE stands in for
 * one): tuples of a batch that cannot be written are counted lost, the part of
 * the batch that reached the file is cut off again (whole lines only), flush
 * fails from then on (the Kafka input commits no offset past a lost tuple),
 * and writing goes on once there is room. */
#include "tuple/tuple.h"

#include <sm/err.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

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

SM_TEST_MAIN(SM_TC(test_full_disk))
