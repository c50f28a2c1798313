/* S3 rfs_dir against tests/standins/s3/s3_standin.py (SigV4 verified):
 * listings and object bytes equal the filesystem dir for a fixture snapshot
 * (with 2-entry list pages, so continuation tokens are exercised), read-ahead
 * turns small sequential reads into few GETs, a snapshot opens through
 * rfs_dir_open_uri, and wrong credentials / missing keys / missing buckets
 * give errors naming the key id (never the secret) or the object. */
#include "io/s3.h"
#include "snapshot/snapshot.h"

#include "sm_test.h"

#include <sm/err.h>
#include <sm/http.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PY "/usr/bin/python3"
#define FIXTURE "tests/fixtures/snapshots/OS_2_11_Deletes_w_Soft_Multi_Seg"

static pid_t pid_s3;
static int port_s3;
static char port_file[64], endpoint[64];

static void stop(void)
{
    if (pid_s3 > 0) {
        kill(pid_s3, SIGTERM);
        waitpid(pid_s3, NULL, 0);
        pid_s3 = 0;
    }
    if (port_file[0])
        unlink(port_file);
}

static int start(void)
{
    if (pid_s3)
        return 0;
    const char *script = sm_src_path("tests/standins/s3/s3_standin.py");
    if (access(PY, X_OK) || access(script, R_OK))
        SM_SKIP("needs %s and %s", PY, script);
    char bucket[4200];
    snprintf(bucket, sizeof(bucket), "repo=%s", sm_src_path(FIXTURE));
    snprintf(port_file, sizeof(port_file), "/tmp/sm_s3_standin_%d.port", (int)getpid());
    unlink(port_file);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        execl(PY, PY, script, "--port", "0", "--port-file", port_file, "--bucket", bucket, "--access-key",
              "AKIDTEST", "--secret-key", "s3cr3t-value", "--page-size", "2", (char *)NULL);
        _exit(127);
    }
    pid_s3 = pid;
    atexit(stop);
    for (int i = 0; i < 300; i++) {
        uint8_t *d;
        size_t n;
        if (!sm_read_file(port_file, 64, &d, &n)) {
            int64_t port = 0;
            while (n && d[n - 1] == '\n')
                d[--n] = 0;
            int rc = sm_parse_i64((char *)d, 1, 65535, &port);
            sm_free(d);
            if (!rc) {
                port_s3 = (int)port;
                snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port_s3);
                return 0;
            }
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid_s3 = 0;
            return 1;
        }
        sm_sleep_ms(100);
    }
    return 1;
}

static void creds(const char *id, const char *secret)
{
    setenv("AWS_ACCESS_KEY_ID", id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_REGION", "us-east-1", 1);
}

static int open_s3(const char *uri, struct rfs_dir **d, char *err, size_t errlen)
{
    struct rfs_s3_opts o = { .endpoint = endpoint, .max_retries = 1, .readahead = 64 * 1024 };
    return rfs_dir_open_uri(uri, &o, d, err, errlen);
}

/* Same names and same bytes as the fs dir, recursively. */
static int compare_tree(struct rfs_dir *s3, struct rfs_dir *fs, const char *prefix, int *files)
{
    struct sm_strlist a = { 0 }, b = { 0 };
    int ra = rfs_dir_list(s3, prefix, &a), rb = rfs_dir_list(fs, prefix, &b);
    SM_CHECK_EQ_INT(ra, rb);
    SM_CHECK_EQ_INT(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        SM_CHECK_EQ_STR(a.v[i], b.v[i]);
        char path[1024], err[512];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", a.v[i]);
        struct rfs_blob *fb = NULL;
        if (rfs_dir_open(fs, path, &fb, err, sizeof(err))) {     /* a directory */
            if (compare_tree(s3, fs, path, files))
                return 1;
            continue;
        }
        struct rfs_blob *sb = NULL;
        SM_CHECK_EQ_INT(rfs_dir_open(s3, path, &sb, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_INT(sb->size, fb->size);
        uint8_t *x = NULL, *y = NULL;
        size_t nx = 0, ny = 0;
        SM_CHECK_EQ_INT(rfs_blob_read_all(sb, 64 << 20, &x, &nx), SM_OK);
        SM_CHECK_EQ_INT(rfs_blob_read_all(fb, 64 << 20, &y, &ny), SM_OK);
        SM_CHECK_EQ_INT(nx, ny);
        SM_CHECK_MEM(x, y, nx);
        /* Unaligned small reads at scattered offsets. */
        for (uint64_t off = 0; sb->size > 7 && off + 7 <= sb->size; off += sb->size / 5 + 1) {
            uint8_t t[7];
            SM_CHECK_EQ_INT(rfs_blob_read_at(sb, off, t, 7), SM_OK);
            SM_CHECK_MEM(t, y + off, 7);
        }
        uint8_t t;
        SM_CHECK_EQ_INT(rfs_blob_read_at(sb, sb->size, &t, 1), SM_EEOF);
        sm_free(x);
        sm_free(y);
        rfs_blob_close(sb);
        rfs_blob_close(fb);
        (*files)++;
    }
    sm_strlist_free(&a);
    sm_strlist_free(&b);
    return 0;
}

static int test_s3_tree_equals_fs(void)
{
    SM_CHECK_EQ_INT(start(), 0);
    creds("AKIDTEST", "s3cr3t-value");
    char err[1024];
    struct rfs_dir *s3 = NULL, *fs = NULL;
    SM_CHECK_EQ_INT(open_s3("s3://repo", &s3, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(rfs_dir_open_uri(sm_src_path(FIXTURE), NULL, &fs, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(s3->ops->kind, "s3");
    SM_CHECK_EQ_STR(fs->ops->kind, "fs");
    int files = 0;
    if (compare_tree(s3, fs, "", &files))
        return 1;
    SM_CHECK(files > 5);
    struct sm_strlist none = { 0 };
    SM_CHECK_EQ_INT(rfs_dir_list(s3, "no-such-dir", &none), SM_ENOTFOUND);
    rfs_dir_close(s3);
    rfs_dir_close(fs);
    return 0;
}

static int test_s3_prefix_and_snapshot(void)
{
    SM_CHECK_EQ_INT(start(), 0);
    creds("AKIDTEST", "s3cr3t-value");
    char err[1024];
    struct rfs_dir *s3 = NULL;
    struct rfs_repo *repo = NULL;
    SM_CHECK_EQ_INT(open_s3("s3://repo/", &s3, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(rfs_repo_open(s3, &repo, err, sizeof(err)), SM_OK);
    SM_CHECK(rfs_repo_snapshot_count(repo) >= 1);
    const struct rfs_snapshot_info *si = rfs_repo_snapshot_at(repo, 0);
    SM_CHECK(si && si->name);
    struct rfs_snapshot *snap = NULL;
    SM_CHECK_EQ_INT(rfs_snapshot_open(repo, si->name, &snap, err, sizeof(err)), SM_OK);
    SM_CHECK(rfs_snapshot_index_count(snap) >= 1);
    rfs_snapshot_close(snap);
    rfs_repo_close(repo);
    rfs_dir_close(s3);
    /* A prefix: the "indices" sub-tree as a dir. */
    SM_CHECK_EQ_INT(open_s3("s3://repo/indices", &s3, err, sizeof(err)), SM_OK);
    struct sm_strlist names = { 0 };
    SM_CHECK_EQ_INT(rfs_dir_list(s3, "", &names), SM_OK);
    SM_CHECK(names.n >= 1);
    SM_CHECK(!strchr(names.v[0], '/'));
    sm_strlist_free(&names);
    rfs_dir_close(s3);
    return 0;
}

static int test_s3_readahead(void)
{
    SM_CHECK_EQ_INT(start(), 0);
    creds("AKIDTEST", "s3cr3t-value");
    char err[1024];
    struct rfs_dir *s3 = NULL;
    struct rfs_s3_opts o = { .endpoint = endpoint, .max_retries = 1, .readahead = 512 };
    SM_CHECK_EQ_INT(rfs_dir_open_uri("s3://repo", &o, &s3, err, sizeof(err)), SM_OK);
    /* The largest blob under indices/: read it 16 bytes at a time. */
    struct sm_strlist l = { 0 };
    SM_CHECK_EQ_INT(rfs_dir_list(s3, "indices", &l), SM_OK);
    char dirp[512];
    snprintf(dirp, sizeof(dirp), "indices/%s/0", l.v[0]);
    sm_strlist_free(&l);
    SM_CHECK_EQ_INT(rfs_dir_list(s3, dirp, &l), SM_OK);
    struct rfs_blob *best = NULL;
    for (size_t i = 0; i < l.n; i++) {
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dirp, l.v[i]);
        struct rfs_blob *b = NULL;
        if (rfs_dir_open(s3, p, &b, err, sizeof(err)))
            continue;
        if (!best || b->size > best->size) {
            rfs_blob_close(best);
            best = b;
        } else {
            rfs_blob_close(b);
        }
    }
    sm_strlist_free(&l);
    SM_CHECK(best && best->size > 2048);
    struct rfs_s3_stats before, after;
    rfs_s3_stats(s3, &before);
    uint8_t buf[16];
    uint64_t reads = 0;
    for (uint64_t off = 0; off + sizeof(buf) <= best->size; off += sizeof(buf), reads++)
        SM_CHECK_EQ_INT(rfs_blob_read_at(best, off, buf, sizeof(buf)), SM_OK);
    rfs_s3_stats(s3, &after);
    uint64_t gets = after.requests - before.requests;
    /* One GET per 512-byte window, not one per 16-byte read. */
    SM_CHECK(gets <= best->size / 512 + 1);
    SM_CHECK(gets * 20 < reads);
    rfs_blob_close(best);
    rfs_dir_close(s3);
    return 0;
}

static int test_s3_errors(void)
{
    SM_CHECK_EQ_INT(start(), 0);
    char err[1024];
    struct rfs_dir *s3 = NULL;
    /* Wrong secret: 403 SignatureDoesNotMatch naming the key id, not the secret. */
    creds("AKIDTEST", "wrong-secret-xyz");
    SM_CHECK_EQ_INT(open_s3("s3://repo/", &s3, err, sizeof(err)), SM_ECONFIG);
    SM_CHECK(strstr(err, "SignatureDoesNotMatch"));
    SM_CHECK(strstr(err, "AKIDTEST"));
    SM_CHECK(!strstr(err, "wrong-secret-xyz"));
    /* Unknown key id. */
    creds("AKIDNOBODY", "s3cr3t-value");
    SM_CHECK_EQ_INT(open_s3("s3://repo/", &s3, err, sizeof(err)), SM_ECONFIG);
    SM_CHECK(strstr(err, "InvalidAccessKeyId"));
    SM_CHECK(strstr(err, "AKIDNOBODY"));
    /* No credentials at all. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    SM_CHECK(open_s3("s3://repo/", &s3, err, sizeof(err)) != SM_OK);
    SM_CHECK(strstr(err, "s3://repo"));
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    /* Missing bucket, missing key. */
    creds("AKIDTEST", "s3cr3t-value");
    SM_CHECK_EQ_INT(open_s3("s3://nobucket/x", &s3, err, sizeof(err)), SM_ENOTFOUND);
    SM_CHECK(strstr(err, "no such bucket"));
    SM_CHECK_EQ_INT(open_s3("s3://repo", &s3, err, sizeof(err)), SM_OK);
    struct rfs_blob *b = NULL;
    SM_CHECK_EQ_INT(rfs_dir_open(s3, "indices/missing-blob.dat", &b, err, sizeof(err)), SM_ENOTFOUND);
    SM_CHECK(strstr(err, "s3://repo/indices/missing-blob.dat"));
    SM_CHECK(strstr(err, "no such key"));
    rfs_dir_close(s3);
    return 0;
}

static const struct sm_test_case cases[] = {
    SM_TC(test_s3_tree_equals_fs), SM_TC(test_s3_prefix_and_snapshot), SM_TC(test_s3_readahead),
    SM_TC(test_s3_errors),
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    return sm_test_run(cases, SM_ARRAY_LEN(cases), argc, argv);
}
