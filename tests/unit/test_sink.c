/* Sinks (agent/sink/): the file sink writes one base64 TrafficStream per
 * line, rotates by size, gzips; records read back equal what was written;
 * Kafka is refused clearly until its sink exists. */
#include "sink/sink.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sm_test.h"

static char g_dir[256];

static void mkdir_tmp(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/sm_test_sinkXXXXXX");
    if (!mkdtemp(g_dir))
        abort();
}

static void rm_tmp(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *de;
    char p[600];
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", g_dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(g_dir);
}

static uint8_t *make_record(int i, size_t *len)
{
    char id[64];
    snprintf(id, sizeof(id), "conn-%d", i);
    TrafficStream *ts = sm_ts_new(id, "node");
    char body[128];
    int n = snprintf(body, sizeof(body), "GET /%d HTTP/1.1\r\n\r\n", i);
    sm_ts_add(ts, SM_TS_READ, 1000 + i, body, (size_t)n);
    sm_ts_set_index(ts, 1, true);
    uint8_t *out;
    sm_ts_encode_alloc(ts, &out, len);
    sm_ts_free(ts);
    return out;
}

static int delivered;
static void on_delivery(void *arg, const struct agent_sink_msg *msg, int err)
{
    (void)arg;
    (void)msg;
    if (err == SM_OK)
        delivered++;
}

static int write_n(struct agent_sink *sink, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len;
        uint8_t *data = make_record(i, &len);
        char key[64];
        snprintf(key, sizeof(key), "conn-%d", i);
        struct agent_sink_msg *msg = agent_sink_msg_new(key, data, len, true);
        SM_CHECK(msg != NULL);
        SM_CHECK_EQ_INT(agent_sink_write(sink, msg), SM_OK);   /* the sink owns msg now */
    }
    return 0;
}

/* Reads every record of path; checks record i is conn-i (in order from first). */
static int read_back(const char *path, int *count, int first)
{
    char err[256];
    struct sm_ts_reader *r = sm_ts_reader_open(path, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    TrafficStream *ts;
    int rc;
    while ((rc = sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err))) == SM_OK) {
        char id[64];
        snprintf(id, sizeof(id), "conn-%d", first + *count);
        SM_CHECK_EQ_STR(ts->connectionid, id);
        SM_CHECK_EQ_INT(ts->n_substream, 1);
        sm_ts_free(ts);
        (*count)++;
    }
    struct sm_ts_reader_stats st;
    sm_ts_reader_stats(r, &st);
    sm_ts_reader_close(r);
    SM_CHECK_EQ_INT(rc, SM_EEOF);
    SM_CHECK_EQ_INT(st.malformed, 0);
    return 0;
}

static int test_file_plain(void)
{
    mkdir_tmp();
    char path[512];
    snprintf(path, sizeof(path), "%s/out.log", g_dir);
    struct agent_sink_conf conf = { .kind = "file", .path = path, .on_delivery = on_delivery };
    struct agent_sink *sink;
    char err[256];
    delivered = 0;
    SM_CHECK_EQ_INT(agent_sink_open(&conf, &sink, err, sizeof(err)), SM_OK);
    SM_CHECK(!agent_sink_full(sink));
    SM_CHECK(write_n(sink, 5) == 0);
    SM_CHECK_EQ_INT(agent_sink_flush(sink, sm_now_ms() + 1000), SM_OK);
    struct agent_sink_stats st;
    agent_sink_stats(sink, &st);
    SM_CHECK_EQ_INT(st.written, 5);
    SM_CHECK_EQ_INT(delivered, 5);
    agent_sink_close(sink);
    /* one base64 line per record */
    uint8_t *data;
    size_t len;
    SM_CHECK_EQ_INT(sm_read_file(path, 1 << 20, &data, &len), SM_OK);
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    SM_CHECK_EQ_INT(lines, 5);
    SM_CHECK(data[0] != '{' && data[len - 1] == '\n');
    sm_free(data);
    int count = 0;
    SM_CHECK(read_back(path, &count, 0) == 0);
    SM_CHECK_EQ_INT(count, 5);
    rm_tmp();
    return 0;
}

static int test_file_dir_gzip_rotation(void)
{
    mkdir_tmp();
    char path[512];
    snprintf(path, sizeof(path), "%s/", g_dir);
    struct agent_sink_conf conf = { .kind = "file", .path = path, .gzip = true, .max_size = 100,
                                    .node_id = "node/a" };
    struct agent_sink *sink;
    char err[256];
    SM_CHECK_EQ_INT(agent_sink_open(&conf, &sink, err, sizeof(err)), SM_OK);
    SM_CHECK(strstr(sink->name, "traffic-node_a-") != NULL);
    SM_CHECK(write_n(sink, 40) == 0);
    agent_sink_flush(sink, sm_now_ms() + 1000);
    agent_sink_close(sink);
    /* several .gz files, read in name order, hold all 40 records in order */
    struct dirent **names;
    int n = scandir(g_dir, &names, NULL, alphasort);
    int files = 0, count = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            SM_CHECK(strstr(names[i]->d_name, ".gz") != NULL);
            char p[600];
            snprintf(p, sizeof(p), "%s/%s", g_dir, names[i]->d_name);
            uint8_t *d;
            size_t l;
            SM_CHECK_EQ_INT(sm_read_file(p, 1 << 20, &d, &l), SM_OK);
            SM_CHECK(l > 2 && d[0] == 0x1f && d[1] == 0x8b);
            sm_free(d);
            SM_CHECK(read_back(p, &count, 0) == 0);
            files++;
        }
        free(names[i]);
    }
    free(names);
    SM_CHECK(files > 1);
    SM_CHECK_EQ_INT(count, 40);
    rm_tmp();
    return 0;
}

static int test_kafka_kind(void)
{
    if (agent_sink_kind_available("kafka")) {
        /* agent/sink/kafka.c is built in: tested by test_agent_kafka */
        fprintf(stderr, "note: this build has a Kafka sink\n");
        return 0;
    }
    struct agent_sink_conf conf = { .kind = "kafka" };
    struct agent_sink *sink = NULL;
    char err[256];
    SM_CHECK_EQ_INT(agent_sink_open(&conf, &sink, err, sizeof(err)), SM_EUNSUPPORTED);
    SM_CHECK(sink == NULL);
    SM_CHECK(strstr(err, "Kafka output is not available yet") != NULL);
    return 0;
}

static int test_bad_path(void)
{
    struct agent_sink_conf conf = { .kind = "file", .path = "/nonexistent-dir-sm/x/out.log" };
    struct agent_sink *sink = NULL;
    char err[256] = "";
    SM_CHECK(agent_sink_open(&conf, &sink, err, sizeof(err)) != SM_OK);
    SM_CHECK(sink == NULL);
    SM_CHECK(strstr(err, "/nonexistent-dir-sm/x/out.log") != NULL);
    return 0;
}

/* A full disk (here the file size limit): records the writer took and could
 * not write are counted failed, not delivered, with or without delivery
 * reports, and the file keeps whole lines only; writing resumes once there is
 * room again. */
static int full_disk(bool reports)
{
    mkdir_tmp();
    char path[512];
    snprintf(path, sizeof(path), "%s/full.log", g_dir);
    struct agent_sink_conf conf = { .kind = "file", .path = path, .on_delivery = reports ? on_delivery : NULL };
    struct agent_sink *sink;
    char err[256];
    delivered = 0;
    struct rlimit old;
    SM_CHECK_EQ_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    SM_CHECK_EQ_INT(agent_sink_open(&conf, &sink, err, sizeof(err)), SM_OK);
    SM_CHECK(write_n(sink, 3) == 0);
    SM_CHECK_EQ_INT(agent_sink_flush(sink, sm_now_ms() + 5000), SM_OK);
    struct stat fs;
    SM_CHECK_EQ_INT(stat(path, &fs), 0);
    struct rlimit lim = { .rlim_cur = (rlim_t)fs.st_size + 100, .rlim_max = old.rlim_max };
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    SM_CHECK(write_n(sink, 20) == 0);
    agent_sink_flush(sink, sm_now_ms() + 5000);
    struct agent_sink_stats st;
    agent_sink_stats(sink, &st);
    SM_CHECK_EQ_INT(st.written, 23);
    SM_CHECK_EQ_INT(st.delivered, 3);
    SM_CHECK_EQ_INT(st.failed, 20);
    if (reports)
        SM_CHECK_EQ_INT(delivered, 3);
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    SM_CHECK(write_n(sink, 2) == 0);
    SM_CHECK_EQ_INT(agent_sink_flush(sink, sm_now_ms() + 5000), SM_OK);
    agent_sink_stats(sink, &st);
    SM_CHECK_EQ_INT(st.delivered, 5);
    SM_CHECK_EQ_INT(st.failed, 20);
    if (reports)
        SM_CHECK_EQ_INT(delivered, 5);
    agent_sink_close(sink);
    signal(SIGXFSZ, SIG_DFL);
    static const char *const want[] = { "conn-0", "conn-1", "conn-2", "conn-0", "conn-1" };
    struct sm_ts_reader *r = sm_ts_reader_open(path, err, sizeof(err));
    SM_CHECK(r);
    TrafficStream *ts;
    for (size_t k = 0; k < 5; k++) {
        SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_STR(ts->connectionid, want[k]);
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err)), SM_EEOF);
    struct sm_ts_reader_stats rs;
    sm_ts_reader_stats(r, &rs);
    sm_ts_reader_close(r);
    SM_CHECK_EQ_INT(rs.malformed, 0);
    rm_tmp();
    return 0;
}

static int test_file_full_disk(void)
{
    return full_disk(false) || full_disk(true);
}

SM_TEST_MAIN(SM_TC(test_file_plain), SM_TC(test_file_full_disk), SM_TC(test_file_dir_gzip_rotation), SM_TC(test_kafka_kind),
             SM_TC(test_bad_path))
