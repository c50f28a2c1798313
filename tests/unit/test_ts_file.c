/* TrafficStream file forms: base64 lines, "<key>|<base64>" lines, gzip,
 * rotation, and a reader that counts malformed lines with their numbers. */
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sm_test.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static char tmpdir[64];

static const char *tmp(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) & 3;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/sm_test_tsfXXXXXX");
        if (!mkdtemp(tmpdir))
            abort();
    }
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
    return buf[k];
}

static TrafficStream *make_rec(int conn, int idx, size_t body)
{
    char id[32];
    snprintf(id, sizeof(id), "conn-%d", conn);
    TrafficStream *ts = sm_ts_new(id, "node|with|bars");
    static char payload[200000];
    memset(payload, 'a' + conn % 26, sizeof(payload));
    sm_ts_add(ts, SM_TS_READ, (int64_t)idx * 1000, payload, body);
    sm_ts_add_eom(ts, (int64_t)idx * 1000, 10, 20);
    sm_ts_set_index(ts, idx, false);
    return ts;
}

static int check_rec(const TrafficStream *ts, int conn, int idx, size_t body)
{
    char id[32];
    snprintf(id, sizeof(id), "conn-%d", conn);
    SM_CHECK_EQ_STR(ts->connectionid, id);
    SM_CHECK_EQ_INT(ts->n_substream, 2);
    const uint8_t *d;
    size_t dl;
    SM_CHECK(sm_ts_obs_data(ts->substream[0], &d, &dl));
    SM_CHECK_EQ_INT(dl, body);
    int32_t i;
    bool last;
    SM_CHECK(sm_ts_index(ts, &i, &last));
    SM_CHECK_EQ_INT(i, idx);
    return 0;
}

/* writes n records through a writer with conf, reads them back from path */
static int roundtrip(struct sm_ts_writer_conf *conf, const char *readpath, bool expect_gzip)
{
    char err[256];
    struct sm_ts_writer *w = sm_ts_writer_open(conf, err, sizeof(err));
    SM_CHECK(w);
    for (int i = 1; i <= 50; i++) {
        TrafficStream *ts = make_rec(i % 3, i, (size_t)i * 37);
        SM_CHECK_EQ_INT(sm_ts_writer_write(w, ts, err, sizeof(err)), SM_OK);
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(sm_ts_writer_close(w, err, sizeof(err)), SM_OK);
    struct sm_ts_reader *r = sm_ts_reader_open(readpath, err, sizeof(err));
    SM_CHECK(r);
    TrafficStream *ts;
    const char *key;
    uint64_t line;
    for (int i = 1; i <= 50; i++) {
        SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_INT(line, i);
        if (check_rec(ts, i % 3, i, (size_t)i * 37))
            return 1;
        if (conf->with_key)
            SM_CHECK_EQ_STR(key, ts->connectionid);
        else
            SM_CHECK_EQ_STR(key, "");
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_EEOF);
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_EEOF);
    struct sm_ts_reader_stats st;
    sm_ts_reader_stats(r, &st);
    SM_CHECK_EQ_INT(st.records, 50);
    SM_CHECK_EQ_INT(st.malformed, 0);
    SM_CHECK_EQ_INT(st.gzip, expect_gzip);
    SM_CHECK(!st.truncated);
    sm_ts_reader_close(r);
    return 0;
}

static int test_plain_roundtrip(void)
{
    struct sm_ts_writer_conf c = { .path = tmp("plain.b64") };
    if (roundtrip(&c, c.path, false))
        return 1;
    /* the file is plain base64 lines: line 1 decodes with the codec directly */
    FILE *f = fopen(c.path, "r");
    SM_CHECK(f);
    char line[4096];
    SM_CHECK(fgets(line, sizeof(line), f));
    fclose(f);
    size_t n = strlen(line);
    SM_CHECK(n > 1 && line[n - 1] == '\n');
    SM_CHECK(!strchr(line, '|'));
    uint8_t dec[4096];
    size_t dl;
    SM_CHECK_EQ_INT(sm_base64_decode(line, n - 1, dec, &dl), SM_OK);
    TrafficStream *ts;
    SM_CHECK_EQ_INT(sm_ts_decode(dec, dl, &ts, NULL, 0), SM_OK);
    if (check_rec(ts, 1, 1, 37))
        return 1;
    sm_ts_free(ts);
    unlink(c.path);
    return 0;
}

static int test_gzip_keyed_roundtrip(void)
{
    struct sm_ts_writer_conf c = { .path = tmp("keyed.gz"), .gzip = true, .with_key = true };
    if (roundtrip(&c, c.path, true))
        return 1;
    /* really gzip, and lines are key|base64 (zlib reads it back) */
    gzFile gz = gzopen(c.path, "rb");
    SM_CHECK(gz);
    SM_CHECK(gzdirect(gz) == 0);
    char line[4096];
    SM_CHECK(gzgets(gz, line, sizeof(line)));
    gzclose(gz);
    SM_CHECK(!strncmp(line, "conn-1|", 7));
    /* appending to an existing single file adds a gzip member: both read back */
    struct sm_ts_writer_conf c2 = c;
    char err[256];
    struct sm_ts_writer *w = sm_ts_writer_open(&c2, err, sizeof(err));
    SM_CHECK(w);
    TrafficStream *ts = make_rec(4, 51, 5);
    SM_CHECK_EQ_INT(sm_ts_writer_write(w, ts, err, sizeof(err)), SM_OK);
    sm_ts_free(ts);
    SM_CHECK_EQ_INT(sm_ts_writer_close(w, err, sizeof(err)), SM_OK);
    struct sm_ts_reader *r = sm_ts_reader_open(c.path, err, sizeof(err));
    SM_CHECK(r);
    int n = 0;
    const char *key;
    uint64_t ln;
    while (sm_ts_reader_next(r, &ts, &key, &ln, err, sizeof(err)) == SM_OK) {
        n++;
        if (n == 51) {
            SM_CHECK_EQ_STR(key, "conn-4");
            SM_CHECK_EQ_INT(ln, 51);
        }
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(n, 51);
    sm_ts_reader_close(r);
    unlink(c.path);
    return 0;
}

struct closed { int n; uint64_t bytes[64]; uint64_t recs[64]; char names[64][256]; };

static void on_close(void *arg, const char *path, uint64_t bytes, uint64_t records)
{
    struct closed *c = arg;
    if (c->n < 64) {
        snprintf(c->names[c->n], sizeof(c->names[0]), "%s", path);
        c->bytes[c->n] = bytes;
        c->recs[c->n] = records;
        c->n++;
    }
}

static int test_rotation(void)
{
    struct closed cl = { 0 };
    char err[256];
    const char *base = tmp("rot.log.gz");
    /* a pre-existing rotated file is never overwritten: numbering continues */
    FILE *f = fopen(tmp("rot.log.000003.gz"), "w");
    SM_CHECK(f);
    fclose(f);
    struct sm_ts_writer_conf c = { .path = base, .gzip = true, .gzip_level = 1, .rotate_bytes = 8192,
                                   .on_close = on_close, .arg = &cl };
    struct sm_ts_writer *w = sm_ts_writer_open(&c, err, sizeof(err));
    SM_CHECK(w);
    SM_CHECK_EQ_STR(sm_ts_writer_path(w), tmp("rot.log.000004.gz"));
    /* incompressible-ish payloads so files fill up */
    uint64_t total = 0;
    for (int i = 1; i <= 40; i++) {
        TrafficStream *ts = sm_ts_new("rot", NULL);
        uint8_t buf[3000];
        for (size_t k = 0; k < sizeof(buf); k++)
            buf[k] = (uint8_t)((k * 2654435761u + (unsigned)i * 97u) >> 13);
        sm_ts_add(ts, SM_TS_WRITE, i, buf, sizeof(buf));
        sm_ts_set_index(ts, i, false);
        SM_CHECK_EQ_INT(sm_ts_writer_write(w, ts, err, sizeof(err)), SM_OK);
        sm_ts_free(ts);
        total++;
    }
    SM_CHECK_EQ_INT(sm_ts_writer_close(w, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(cl.n, 14);   /* 40 records, 3 per file */
    uint64_t recs = 0;
    int32_t expect = 1;
    for (int i = 0; i < cl.n; i++) {
        char want[256];
        snprintf(want, sizeof(want), "%s/rot.log.%06d.gz", tmpdir, i + 4);
        SM_CHECK_EQ_STR(cl.names[i], want);
        /* lines of ~4 KiB: a file closes at the third (>= 8192 bytes before gzip) */
        if (i < cl.n - 1)
            SM_CHECK_EQ_INT(cl.recs[i], 3);
        SM_CHECK(cl.bytes[i] > 20);   /* size on disk reported */
        recs += cl.recs[i];
        /* each file is a complete gzip stream of whole records, in order */
        struct sm_ts_reader *r = sm_ts_reader_open(cl.names[i], err, sizeof(err));
        SM_CHECK(r);
        TrafficStream *ts;
        uint64_t k = 0;
        while (sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err)) == SM_OK) {
            int32_t idx;
            bool last;
            SM_CHECK(sm_ts_index(ts, &idx, &last));
            SM_CHECK_EQ_INT(idx, expect);
            expect++;
            k++;
            sm_ts_free(ts);
        }
        struct sm_ts_reader_stats st;
        sm_ts_reader_stats(r, &st);
        SM_CHECK(!st.truncated);
        SM_CHECK_EQ_INT(k, cl.recs[i]);
        sm_ts_reader_close(r);
        unlink(cl.names[i]);
    }
    SM_CHECK_EQ_INT(recs, total);
    unlink(tmp("rot.log.000003.gz"));
    return 0;
}

struct bad { int n; uint64_t lines[32]; char reasons[32][160]; char name[256]; };

static void on_bad(void *arg, const char *name, uint64_t line, const char *reason)
{
    struct bad *b = arg;
    if (b->n < 32) {
        b->lines[b->n] = line;
        snprintf(b->reasons[b->n], sizeof(b->reasons[0]), "%s", reason);
        snprintf(b->name, sizeof(b->name), "%s", name);
        b->n++;
    }
}

/* builds the mixed test input: good lines among malformed ones */
static char *mixed_input(size_t *len)
{
    char *out = NULL;
    size_t olen = 0;
    FILE *f = open_memstream(&out, &olen);
    for (int i = 1; i <= 3; i++) {
        TrafficStream *ts = make_rec(i, i, 10);
        uint8_t *enc;
        size_t el;
        sm_ts_encode_alloc(ts, &enc, &el);
        char *b64 = sm_malloc(sm_base64_enc_len(el) + 1);
        sm_base64_encode(enc, el, b64);
        switch (i) {
        case 1: fprintf(f, "%s\n", b64); break;                         /* line 1: plain */
        case 2: fprintf(f, "my|odd|key|%s\r\n", b64); break;            /* line 5: key with bars, CRLF */
        case 3: fprintf(f, "%s", b64); break;                           /* line 9: no final newline */
        }
        if (i == 1) {
            fputs("this is not base64!\n", f);                         /* line 2 */
            fputs("\n", f);                                             /* line 3: blank */
            fputs("/////w==\n", f);                                     /* line 4: base64, not protobuf */
        }
        if (i == 2) {
            fputs("key-only|\n", f);                                    /* line 6 */
            for (int k = 0; k < 300; k++)                               /* line 7: too long */
                fputs("QUFBQUFB", f);
            fputs("\n   \t\n", f);                                      /* line 8: blank with spaces */
        }
        sm_free(b64);
        sm_free(enc);
        sm_ts_free(ts);
    }
    fclose(f);
    *len = olen;
    return out;
}

static int read_mixed(struct sm_ts_reader *r, const char *expect_name)
{
    char err[256];
    struct bad b = { 0 };
    sm_ts_reader_set_bad_line_cb(r, on_bad, &b);
    sm_ts_reader_set_max_line(r, 1024);
    TrafficStream *ts;
    const char *key;
    uint64_t line;
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(line, 1);
    SM_CHECK_EQ_STR(key, "");
    SM_CHECK(!check_rec(ts, 1, 1, 10));
    sm_ts_free(ts);
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(line, 5);
    SM_CHECK_EQ_STR(key, "my|odd|key");
    SM_CHECK(!check_rec(ts, 2, 2, 10));
    sm_ts_free(ts);
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(line, 9);
    SM_CHECK(!check_rec(ts, 3, 3, 10));
    sm_ts_free(ts);
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_EEOF);
    SM_CHECK_EQ_INT(b.n, 4);
    SM_CHECK_EQ_INT(b.lines[0], 2);
    SM_CHECK(strstr(b.reasons[0], "base64"));
    SM_CHECK_EQ_INT(b.lines[1], 4);
    SM_CHECK(strstr(b.reasons[1], "TrafficStream"));
    SM_CHECK_EQ_INT(b.lines[2], 6);
    SM_CHECK_EQ_INT(b.lines[3], 7);
    SM_CHECK(strstr(b.reasons[3], "longer than 1024"));
    SM_CHECK_EQ_STR(b.name, expect_name);
    struct sm_ts_reader_stats st;
    sm_ts_reader_stats(r, &st);
    SM_CHECK_EQ_INT(st.lines, 9);
    SM_CHECK_EQ_INT(st.records, 3);
    SM_CHECK_EQ_INT(st.malformed, 4);
    SM_CHECK_EQ_INT(st.last_malformed_line, 7);
    return 0;
}

static int test_malformed_lines_counted(void)
{
    size_t len;
    char *in = mixed_input(&len);
    char err[256];
    /* from memory */
    struct sm_ts_reader *r = sm_ts_reader_open_mem(in, len, "mixed.txt", err, sizeof(err));
    SM_CHECK(r);
    if (read_mixed(r, "mixed.txt"))
        return 1;
    sm_ts_reader_close(r);
    /* from a plain file */
    const char *p = tmp("mixed.txt");
    FILE *f = fopen(p, "wb");
    SM_CHECK(f && fwrite(in, 1, len, f) == len);
    fclose(f);
    r = sm_ts_reader_open(p, err, sizeof(err));
    SM_CHECK(r);
    if (read_mixed(r, p))
        return 1;
    sm_ts_reader_close(r);
    /* gzip of the same, written by zlib directly, read via a file descriptor */
    const char *gp = tmp("mixed.gz");
    gzFile gz = gzopen(gp, "wb9");
    SM_CHECK(gz && gzwrite(gz, in, (unsigned)len) == (int)len);
    gzclose(gz);
    int fd = open(gp, O_RDONLY);
    SM_CHECK(fd >= 0);
    r = sm_ts_reader_open_fd(fd, "gz-fd", err, sizeof(err));
    SM_CHECK(r);
    if (read_mixed(r, "gz-fd"))
        return 1;
    struct sm_ts_reader_stats st;
    sm_ts_reader_stats(r, &st);
    SM_CHECK(st.gzip);
    sm_ts_reader_close(r);
    close(fd);
    unlink(p);
    unlink(gp);
    free(in);
    return 0;
}

static int test_gzip_truncated_and_corrupt(void)
{
    char err[256];
    /* gzip of 200 records, cut in the middle: the records before the cut are
     * returned, the reader notes the truncation and ends */
    uint8_t *gzbuf = NULL;
    size_t gzlen = 0;
    {
        const char *p = tmp("trunc.gz");
        struct sm_ts_writer_conf c = { .path = p, .gzip = true };
        struct sm_ts_writer *w = sm_ts_writer_open(&c, err, sizeof(err));
        SM_CHECK(w);
        for (int i = 1; i <= 200; i++) {
            TrafficStream *ts = make_rec(i, i, 300);
            SM_CHECK_EQ_INT(sm_ts_writer_write(w, ts, err, sizeof(err)), SM_OK);
            sm_ts_free(ts);
        }
        SM_CHECK_EQ_INT(sm_ts_writer_close(w, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_INT(sm_read_file(p, 1 << 24, &gzbuf, &gzlen), SM_OK);
        unlink(p);
    }
    struct bad b = { 0 };
    struct sm_ts_reader *r = sm_ts_reader_open_mem(gzbuf, gzlen / 2, "half.gz", err, sizeof(err));
    SM_CHECK(r);
    sm_ts_reader_set_bad_line_cb(r, on_bad, &b);
    TrafficStream *ts;
    int n = 0, rc;
    while ((rc = sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err))) == SM_OK) {
        n++;
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(rc, SM_EEOF);
    struct sm_ts_reader_stats st;
    sm_ts_reader_stats(r, &st);
    SM_CHECK(st.truncated);
    SM_CHECK(n > 0 && n < 200);
    SM_CHECK(b.n <= 1);   /* at most the cut line */
    sm_ts_reader_close(r);

    /* corrupt deflate data: records before are returned, then SM_ECORRUPT, sticky */
    gzbuf[gzlen / 2] ^= 0xff;
    gzbuf[gzlen / 2 + 1] ^= 0x55;
    r = sm_ts_reader_open_mem(gzbuf, gzlen, "corrupt.gz", err, sizeof(err));
    SM_CHECK(r);
    sm_ts_reader_set_bad_line_cb(r, on_bad, &b);
    n = 0;
    while ((rc = sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err))) == SM_OK) {
        n++;
        sm_ts_free(ts);
    }
    /* a flipped byte is almost always detected by inflate or the CRC check;
     * either way the reader stops cleanly */
    SM_CHECK(rc == SM_ECORRUPT || rc == SM_EEOF);
    if (rc == SM_ECORRUPT) {
        SM_CHECK(strstr(err, "corrupt.gz"));
        SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err)), SM_ECORRUPT);
    }
    sm_ts_reader_close(r);
    sm_free(gzbuf);

    /* empty input and a lone gzip magic byte */
    r = sm_ts_reader_open_mem("", 0, "empty", err, sizeof(err));
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err)), SM_EEOF);
    sm_ts_reader_close(r);
    r = sm_ts_reader_open_mem("\x1f", 1, "one", err, sizeof(err));
    sm_ts_reader_set_bad_line_cb(r, on_bad, &b);
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, NULL, NULL, err, sizeof(err)), SM_EEOF);
    sm_ts_reader_close(r);
    /* missing file */
    SM_CHECK(sm_ts_reader_open(tmp("nope"), err, sizeof(err)) == NULL);
    SM_CHECK(strstr(err, "nope"));
    return 0;
}

static int test_next_raw_and_report(void)
{
    char err[256];
    static const char in[] = "QUJD\nkey|REVG\n";
    struct sm_ts_reader *r = sm_ts_reader_open_mem(in, sizeof(in) - 1, "raw", err, sizeof(err));
    struct bad b = { 0 };
    sm_ts_reader_set_bad_line_cb(r, on_bad, &b);
    const uint8_t *d;
    size_t dl;
    const char *key;
    uint64_t line;
    SM_CHECK_EQ_INT(sm_ts_reader_next_raw(r, &d, &dl, &key, &line, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(dl, 3);
    SM_CHECK_MEM(d, "ABC", 3);
    SM_CHECK_EQ_INT(sm_ts_reader_next_raw(r, &d, &dl, &key, &line, err, sizeof(err)), SM_OK);
    SM_CHECK_MEM(d, "DEF", 3);
    SM_CHECK_EQ_STR(key, "key");
    SM_CHECK_EQ_INT(line, 2);
    sm_ts_reader_report_bad(r, line, "poison");
    SM_CHECK_EQ_INT(b.n, 1);
    SM_CHECK_EQ_STR(b.reasons[0], "poison");
    SM_CHECK_EQ_INT(sm_ts_reader_next_raw(r, &d, &dl, &key, &line, err, sizeof(err)), SM_EEOF);
    sm_ts_reader_close(r);
    return 0;
}

static int test_cleanup(void)
{
    if (tmpdir[0])
        SM_CHECK_EQ_INT(rmdir(tmpdir), 0);   /* every test removed its files */
    return 0;
}

/* A batch that cannot be written whole (here: the file size limit, as a full
 * disk would) loses its records, counted by sm_ts_writer_lost(), and is cut
 * off the file again: the lines before and after it read back whole, no line
 * is glued to a broken one. */
static int test_write_failure(void)
{
    struct rlimit old;
    SM_CHECK_EQ_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);   /* EFBIG instead of the signal */
    char err[256];
    struct sm_ts_writer_conf c = { .path = tmp("full.b64") };
    struct sm_ts_writer *w = sm_ts_writer_open(&c, err, sizeof(err));
    SM_CHECK(w);
    for (int i = 1; i <= 5; i++) {   /* written whole: about 5 x 13 KB */
        TrafficStream *ts = make_rec(1, i, 10000);
        SM_CHECK_EQ_INT(sm_ts_writer_write(w, ts, err, sizeof(err)), SM_OK);
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(sm_ts_writer_flush(w, err, sizeof(err)), SM_OK);
    struct stat st;
    SM_CHECK_EQ_INT(stat(c.path, &st), 0);
    off_t good = st.st_size;
    struct rlimit lim = { .rlim_cur = (rlim_t)good + 20000, .rlim_max = old.rlim_max };
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (int i = 6; i <= 25; i++) {   /* ~270 KB: only part of it fits */
        TrafficStream *ts = make_rec(2, i, 10000);
        SM_CHECK_EQ_INT(sm_ts_writer_write(w, ts, err, sizeof(err)), SM_OK);
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(sm_ts_writer_lost(w), 0);
    SM_CHECK_EQ_INT(sm_ts_writer_flush(w, err, sizeof(err)), SM_EIO);
    SM_CHECK(strstr(err, "20 records lost") && strstr(err, "partial lines removed"));
    SM_CHECK_EQ_INT(sm_ts_writer_lost(w), 20);
    SM_CHECK_EQ_INT(stat(c.path, &st), 0);
    SM_CHECK_EQ_INT(st.st_size, good);
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &old), 0);   /* space again */
    for (int i = 26; i <= 28; i++) {
        TrafficStream *ts = make_rec(3, i, 10000);
        SM_CHECK_EQ_INT(sm_ts_writer_write(w, ts, err, sizeof(err)), SM_OK);
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(sm_ts_writer_close(w, err, sizeof(err)), SM_OK);
    signal(SIGXFSZ, SIG_DFL);
    struct sm_ts_reader *r = sm_ts_reader_open(c.path, err, sizeof(err));
    SM_CHECK(r);
    static const int want[][2] = { { 1, 1 }, { 1, 2 }, { 1, 3 }, { 1, 4 }, { 1, 5 },
                                   { 3, 26 }, { 3, 27 }, { 3, 28 } };
    TrafficStream *ts;
    const char *key;
    uint64_t line;
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_OK);
        if (check_rec(ts, want[k][0], want[k][1], 10000))
            return 1;
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_EEOF);
    struct sm_ts_reader_stats rs;
    sm_ts_reader_stats(r, &rs);
    SM_CHECK_EQ_INT(rs.malformed, 0);
    sm_ts_reader_close(r);
    SM_CHECK_EQ_INT(unlink(c.path), 0);
    /* gzip: what zlib held since the last flush is lost with the failed flush, counted */
    struct sm_ts_writer_conf g = { .path = tmp("full.b64.gz"), .gzip = true, .gz_retry_ms = 200 };
    signal(SIGXFSZ, SIG_IGN);
    w = sm_ts_writer_open(&g, err, sizeof(err));
    SM_CHECK(w);
    TrafficStream *t1 = make_rec(1, 1, 1000);
    SM_CHECK_EQ_INT(sm_ts_writer_write(w, t1, err, sizeof(err)), SM_OK);
    sm_ts_free(t1);
    SM_CHECK_EQ_INT(sm_ts_writer_flush(w, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(stat(g.path, &st), 0);
    lim.rlim_cur = (rlim_t)st.st_size;   /* not one byte more */
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (int i = 2; i <= 6; i++) {
        TrafficStream *t = make_rec(1, i, 1000);
        SM_CHECK_EQ_INT(sm_ts_writer_write(w, t, err, sizeof(err)), SM_OK);   /* zlib holds them */
        sm_ts_free(t);
    }
    SM_CHECK_EQ_INT(sm_ts_writer_flush(w, err, sizeof(err)), SM_EIO);
    SM_CHECK_EQ_INT(sm_ts_writer_lost(w), 5);
    SM_CHECK(strstr(err, "later records go to a new file"));
    SM_CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    TrafficStream *t0 = make_rec(1, 99, 1000);   /* too soon after the break: refused, no new file */
    SM_CHECK_EQ_INT(sm_ts_writer_write(w, t0, err, sizeof(err)), SM_EIO);
    sm_ts_free(t0);
    SM_CHECK(strstr(err, "a new file is tried"));
    sm_sleep_ms(250);
    for (int i = 7; i <= 8; i++) {   /* room again: a new, readable file */
        TrafficStream *t = make_rec(1, i, 1000);
        SM_CHECK_EQ_INT(sm_ts_writer_write(w, t, err, sizeof(err)), SM_OK);
        sm_ts_free(t);
    }
    SM_CHECK_EQ_INT(sm_ts_writer_close(w, err, sizeof(err)), SM_OK);
    signal(SIGXFSZ, SIG_DFL);
    const char *next = tmp("full.b64.000001.gz");
    r = sm_ts_reader_open(next, err, sizeof(err));
    SM_CHECK(r);
    for (int i = 7; i <= 8; i++) {
        SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_OK);
        if (check_rec(ts, 1, i, 1000))
            return 1;
        sm_ts_free(ts);
    }
    SM_CHECK_EQ_INT(sm_ts_reader_next(r, &ts, &key, &line, err, sizeof(err)), SM_EEOF);
    sm_ts_reader_close(r);
    SM_CHECK_EQ_INT(unlink(next), 0);
    SM_CHECK_EQ_INT(unlink(g.path), 0);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_plain_roundtrip), SM_TC(test_write_failure), SM_TC(test_gzip_keyed_roundtrip), SM_TC(test_rotation),
             SM_TC(test_malformed_lines_counted), SM_TC(test_gzip_truncated_and_corrupt),
             SM_TC(test_next_raw_and_report), SM_TC(test_cleanup))
