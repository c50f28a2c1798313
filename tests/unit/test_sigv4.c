/* SigV4 against AWS's published test suite (tests/fixtures/sigv4/v4, from
 * aws-c-auth's copy of the Signature Version 4 Test Suite) and the S3
 * documentation example (tests/fixtures/sigv4/s3), plus credential and region
 * loading and the encoding rules that the vectors do not cover. */
#define _GNU_SOURCE
#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/sigv4.h>
#include <sm/util.h>

#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sm_test.h"

#define MAX_HDRS 32

struct vec {
    char method[16];
    char *path, *query;
    char *hdr[MAX_HDRS + 1];
    size_t nhdr;
    char *body;
    size_t body_len;
    struct sm_aws_creds creds;
    char region[32], service[32];
    int64_t time;
    unsigned flags;
};

static void vec_free(struct vec *v)
{
    sm_free(v->path);
    sm_free(v->query);
    for (size_t i = 0; i < v->nhdr; i++)
        sm_free(v->hdr[i]);
    sm_free(v->body);
    sm_aws_creds_free(&v->creds);
    memset(v, 0, sizeof(*v));
}

static char *read_text(const char *path)
{
    uint8_t *d = NULL;
    size_t n = 0;
    int rc = sm_read_file(path, 1 << 20, &d, &n);
    return rc ? NULL : (char *)d;
}

static int64_t parse_iso(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return -1;
    return (int64_t)timegm(&tm);
}

/* request.txt: "METHOD path HTTP/1.1", header lines (continuations start
 * with whitespace), blank line, body. */
static int load_vec(const char *dir, struct vec *v)
{
    char p[8192];
    memset(v, 0, sizeof(*v));
    snprintf(p, sizeof(p), "%s/request.txt", dir);
    char *req = read_text(p);
    if (!req)
        return 1;
    char *line_end = strchr(req, '\n');
    char *sp = strchr(req, ' ');
    char *proto = line_end ? line_end : req + strlen(req);
    while (proto > req && strncmp(proto, " HTTP/", 6))
        proto--;
    if (!sp || proto <= sp || (size_t)(sp - req) >= sizeof(v->method)) {
        sm_free(req);
        return 1;
    }
    memcpy(v->method, req, (size_t)(sp - req));
    char *target = sm_strndup(sp + 1, (size_t)(proto - sp - 1));
    char *q = strchr(target, '?');
    if (q) {
        v->query = sm_strdup(q + 1);
        *q = 0;
    }
    v->path = target;
    char *s = line_end ? line_end + 1 : req + strlen(req);
    while (*s && *s != '\n') {
        char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if ((*s == ' ' || *s == '\t') && v->nhdr) {
            char *prev = v->hdr[v->nhdr - 1];
            size_t pl = strlen(prev);
            char *np = sm_realloc(prev, pl + len + 2);
            np[pl] = '\n';
            memcpy(np + pl + 1, s, len);
            np[pl + 1 + len] = 0;
            v->hdr[v->nhdr - 1] = np;
        } else if (v->nhdr < MAX_HDRS) {
            v->hdr[v->nhdr++] = sm_strndup(s, len);
        }
        s = e ? e + 1 : s + len;
    }
    if (*s == '\n') {
        s++;
        v->body_len = strlen(s);
        v->body = sm_strdup(s);
    }
    sm_free(req);

    snprintf(p, sizeof(p), "%s/context.json", dir);
    json_error_t je;
    json_t *ctx = json_load_file(p, 0, &je);
    if (!ctx)
        return 1;
    json_t *cr = json_object_get(ctx, "credentials");
    const char *tok = json_string_value(json_object_get(cr, "token"));
    v->creds.access_key_id = sm_strdup(json_string_value(json_object_get(cr, "access_key_id")));
    v->creds.secret_access_key = sm_strdup(json_string_value(json_object_get(cr, "secret_access_key")));
    v->creds.session_token = tok ? sm_strdup(tok) : NULL;
    snprintf(v->region, sizeof(v->region), "%s", json_string_value(json_object_get(ctx, "region")));
    snprintf(v->service, sizeof(v->service), "%s", json_string_value(json_object_get(ctx, "service")));
    v->time = parse_iso(json_string_value(json_object_get(ctx, "timestamp")));
    if (json_is_false(json_object_get(ctx, "normalize")))
        v->flags |= SM_SIGV4_NO_NORMALIZE;
    if (json_is_true(json_object_get(ctx, "sign_body")))
        v->flags |= SM_SIGV4_CONTENT_SHA256;
    if (json_is_true(json_object_get(ctx, "omit_session_token")))
        v->flags |= SM_SIGV4_OMIT_TOKEN;
    json_decref(ctx);
    return v->time < 0;
}

static int check_file(const char *dir, const char *name, const char *got)
{
    char p[8192];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    char *want = read_text(p);
    if (!want) {
        fprintf(stderr, "%s: cannot read\n", p);
        return 1;
    }
    int rc = strcmp(want, got) != 0;
    if (rc)
        fprintf(stderr, "%s differs:\n--- want\n%s\n--- got\n%s\n", p, want, got);
    sm_free(want);
    return rc;
}

static int run_vector(const char *dir)
{
    struct vec v;
    if (load_vec(dir, &v)) {
        fprintf(stderr, "%s: cannot load vector\n", dir);
        vec_free(&v);
        return 1;
    }
    struct sm_sigv4_cfg cfg = { v.region, v.service, &v.creds, v.flags };
    struct sm_sigv4_req req = { v.method, v.path, v.query, (const char *const *)v.hdr, v.body,
                                v.body_len, NULL, v.time };
    struct sm_sigv4_result res;
    char err[256] = "";
    int rc = sm_sigv4_sign(&cfg, &req, &res, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: sign failed: %s\n", dir, err);
        vec_free(&v);
        return 1;
    }
    int bad = check_file(dir, "header-canonical-request.txt", res.canonical_request);
    bad |= check_file(dir, "header-string-to-sign.txt", res.string_to_sign);
    bad |= check_file(dir, "header-signature.txt", res.signature);
    /* the Authorization value carries the same signature and signed headers */
    char want_tail[100];
    snprintf(want_tail, sizeof(want_tail), ", Signature=%s", res.signature);
    if (!strstr(res.authorization, want_tail) || strncmp(res.authorization, "AWS4-HMAC-SHA256 Credential=", 28))
        bad |= 1;
    sm_sigv4_result_free(&res);
    vec_free(&v);
    return bad;
}

static int run_dir(const char *rel, int *count)
{
    const char *root = sm_src_path(rel);
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", root);
        return 1;
    }
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", root, e->d_name);
        if (run_vector(p)) {
            fprintf(stderr, "vector %s FAILED\n", e->d_name);
            bad = 1;
        }
        (*count)++;
    }
    closedir(d);
    return bad;
}

static int test_aws_test_suite(void)
{
    int n = 0;
    SM_CHECK_EQ_INT(run_dir("tests/fixtures/sigv4/v4", &n), 0);
    SM_CHECK(n >= 38);   /* every vector of the suite ran */
    return 0;
}

static int test_s3_doc_example(void)
{
    int n = 0;
    SM_CHECK_EQ_INT(run_dir("tests/fixtures/sigv4/s3", &n), 0);
    SM_CHECK(n >= 1);
    return 0;
}

/* The S3 GET example also gives the whole Authorization value. */
static int test_s3_authorization_header(void)
{
    struct sm_aws_creds creds = { (char *)"AKIAIOSFODNN7EXAMPLE",
                                  (char *)"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL };
    struct sm_sigv4_cfg cfg = { "us-east-1", "s3", &creds, 0 };
    const char *hdrs[] = { "Host: examplebucket.s3.amazonaws.com", "Range: bytes=0-9", NULL };
    struct sm_sigv4_req req = { "GET", "/test.txt", NULL, hdrs, NULL, 0, NULL, 1369353600 };
    struct sm_sigv4_result r;
    SM_CHECK_EQ_INT(sm_sigv4_sign(&cfg, &req, &r, NULL, 0), SM_OK);
    SM_CHECK_EQ_STR(r.authorization,
                    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    SM_CHECK_EQ_STR(r.add_headers[0], "X-Amz-Date: 20130524T000000Z");
    SM_CHECK_EQ_STR(r.add_headers[1],
                    "X-Amz-Content-Sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    SM_CHECK(!strncmp(r.add_headers[2], "Authorization: AWS4-HMAC-SHA256 ", 32));
    SM_CHECK(r.add_headers[3] == NULL);
    sm_sigv4_result_free(&r);

    /* UNSIGNED-PAYLOAD changes the hash line and the header */
    cfg.flags = SM_SIGV4_UNSIGNED_PAYLOAD;
    SM_CHECK_EQ_INT(sm_sigv4_sign(&cfg, &req, &r, NULL, 0), SM_OK);
    SM_CHECK_EQ_STR(r.payload_hash, "UNSIGNED-PAYLOAD");
    SM_CHECK_EQ_STR(r.add_headers[1], "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD");
    size_t cl = strlen(r.canonical_request);
    SM_CHECK(cl > 16 && !strcmp(r.canonical_request + cl - 16, "UNSIGNED-PAYLOAD"));
    SM_CHECK(strstr(r.canonical_request, "\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n") != NULL);
    sm_sigv4_result_free(&r);
    return 0;
}

static char *canon(const char *service, const char *path, const char *query)
{
    struct sm_aws_creds creds = { (char *)"AK", (char *)"SK", NULL };
    struct sm_sigv4_cfg cfg = { "eu-west-1", service, &creds, 0 };
    const char *hdrs[] = { "Host: h", NULL };
    struct sm_sigv4_req req = { "GET", path, query, hdrs, NULL, 0, NULL, 0 };
    struct sm_sigv4_result r;
    if (sm_sigv4_sign(&cfg, &req, &r, NULL, 0))
        return NULL;
    /* second and third lines: URI and query */
    char *a = strchr(r.canonical_request, '\n') + 1;
    char *b = strchr(a, '\n');
    b = strchr(b + 1, '\n');
    char *res = sm_strndup(a, (size_t)(b - a));
    sm_sigv4_result_free(&r);
    return res;
}

static int test_path_and_query_encoding(void)
{
    char *c;
    /* es/aoss: the sent path is encoded again ("double encoding") */
    SM_CHECK_EQ_STR(c = canon("es", "/idx/_doc/a%2Fb", NULL), "/idx/_doc/a%252Fb\n");
    sm_free(c);
    SM_CHECK_EQ_STR(c = canon("aoss", "/idx/_doc/x:y", NULL), "/idx/_doc/x%3Ay\n");
    sm_free(c);
    SM_CHECK_EQ_STR(c = canon("es", "/a/./b/../c//", NULL), "/a/c/\n");
    sm_free(c);
    /* s3: encoded once, not normalised, an encoded slash in a key kept */
    SM_CHECK_EQ_STR(c = canon("s3", "/bucket/a%2Fb/./c", NULL), "/bucket/a%2Fb/./c\n");
    sm_free(c);
    SM_CHECK_EQ_STR(c = canon("s3", "/test$file.text", NULL), "/test%24file.text\n");
    sm_free(c);
    SM_CHECK_EQ_STR(c = canon("s3", "/k%20x", NULL), "/k%20x\n");
    sm_free(c);
    /* query: decoded, strictly re-encoded, sorted; valueless keys get "=" */
    SM_CHECK_EQ_STR(c = canon("s3", "/", "prefix=J&max-keys=2"), "/\nmax-keys=2&prefix=J");
    sm_free(c);
    SM_CHECK_EQ_STR(c = canon("es", "/_search", "q=a+b%2Cc&pretty&b=%7e"), "/_search\nb=~&pretty=&q=a%2Bb%2Cc");
    sm_free(c);
    SM_CHECK_EQ_STR(c = canon("es", "", ""), "/\n");
    sm_free(c);
    return 0;
}

static int test_missing_inputs(void)
{
    struct sm_aws_creds creds = { (char *)"AK", (char *)"SK", NULL };
    struct sm_sigv4_cfg cfg = { "eu-west-1", "es", &creds, 0 };
    const char *nohost[] = { "Content-Type: application/json", NULL };
    struct sm_sigv4_req req = { "GET", "/", NULL, nohost, NULL, 0, NULL, 0 };
    struct sm_sigv4_result r;
    char err[128];
    SM_CHECK_EQ_INT(sm_sigv4_sign(&cfg, &req, &r, err, sizeof(err)), SM_EINVAL);
    SM_CHECK(strstr(err, "Host") != NULL);
    cfg.region = NULL;
    SM_CHECK_EQ_INT(sm_sigv4_sign(&cfg, &req, &r, err, sizeof(err)), SM_EINVAL);
    SM_CHECK(strstr(err, "region") != NULL);
    cfg.region = "eu-west-1";
    cfg.creds = NULL;
    SM_CHECK_EQ_INT(sm_sigv4_sign(&cfg, &req, &r, err, sizeof(err)), SM_EINVAL);
    SM_CHECK(strstr(err, "credentials") != NULL);
    return 0;
}

static void clear_aws_env(void)
{
    static const char *const vars[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                        "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
                                        "AWS_REGION", "AWS_DEFAULT_REGION" };
    for (size_t i = 0; i < SM_ARRAY_LEN(vars); i++)
        unsetenv(vars[i]);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    fputs(text, f);
    return fclose(f) != 0;
}

static int test_credentials_env_and_files(void)
{
    char dir[] = "/tmp/sm_sigv4_XXXXXX";
    SM_CHECK(mkdtemp(dir) != NULL);
    char cred[256], conf[256];
    snprintf(cred, sizeof(cred), "%s/credentials", dir);
    snprintf(conf, sizeof(conf), "%s/config", dir);
    SM_CHECK_EQ_INT(write_file(cred, "# comment\n[default]\naws_access_key_id = AKDEF\n"
                                     "aws_secret_access_key = SKDEF\n\n[migr]\n"
                                     "aws_access_key_id=AKMIGR\naws_secret_access_key=SKMIGR\n"
                                     "aws_session_token = TOKMIGR\n[broken]\naws_access_key_id=X\n"), 0);
    SM_CHECK_EQ_INT(write_file(conf, "[default]\nregion = eu-central-1\n[profile migr]\nregion=ap-south-1\n"), 0);

    struct sm_aws_creds c;
    char err[256];
    clear_aws_env();
    setenv("HOME", dir, 1);   /* no ~/.aws there */
    SM_CHECK_EQ_INT(sm_aws_creds_load(&c, NULL, err, sizeof(err)), SM_ENOTFOUND);
    SM_CHECK(strstr(err, "AWS_ACCESS_KEY_ID") != NULL);

    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
    setenv("AWS_SESSION_TOKEN", "TOKENV", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    SM_CHECK_EQ_INT(sm_aws_creds_load(&c, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(c.access_key_id, "AKENV");   /* environment wins over the file */
    SM_CHECK_EQ_STR(c.session_token, "TOKENV");
    sm_aws_creds_free(&c);

    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    SM_CHECK_EQ_INT(sm_aws_creds_load(&c, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(c.access_key_id, "AKDEF");
    SM_CHECK(c.session_token == NULL);
    sm_aws_creds_free(&c);

    setenv("AWS_PROFILE", "migr", 1);
    SM_CHECK_EQ_INT(sm_aws_creds_load(&c, NULL, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(c.access_key_id, "AKMIGR");
    SM_CHECK_EQ_STR(c.secret_access_key, "SKMIGR");
    SM_CHECK_EQ_STR(c.session_token, "TOKMIGR");
    sm_aws_creds_free(&c);

    SM_CHECK_EQ_INT(sm_aws_creds_load(&c, "broken", err, sizeof(err)), SM_ECONFIG);
    SM_CHECK(strstr(err, "[broken]") != NULL);
    SM_CHECK_EQ_INT(sm_aws_creds_load(&c, "nope", err, sizeof(err)), SM_ENOTFOUND);
    SM_CHECK(strstr(err, "[nope]") != NULL);

    /* region: AWS_REGION > AWS_DEFAULT_REGION > config file profile */
    setenv("AWS_CONFIG_FILE", conf, 1);
    char *r = sm_aws_region_default(NULL);
    SM_CHECK_EQ_STR(r, "ap-south-1");
    sm_free(r);
    unsetenv("AWS_PROFILE");
    r = sm_aws_region_default(NULL);
    SM_CHECK_EQ_STR(r, "eu-central-1");
    sm_free(r);
    setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
    r = sm_aws_region_default(NULL);
    SM_CHECK_EQ_STR(r, "us-west-1");
    sm_free(r);
    setenv("AWS_REGION", "us-east-2", 1);
    r = sm_aws_region_default(NULL);
    SM_CHECK_EQ_STR(r, "us-east-2");
    sm_free(r);
    clear_aws_env();

    unlink(cred);
    unlink(conf);
    rmdir(dir);
    return 0;
}

/* Requests rebuilt from captured traffic reach the signer unvalidated:
 * random paths, queries and headers from a hostile alphabet must sign or be
 * refused cleanly (run under ASan/UBSan in CI). */
static int test_random_inputs(void)
{
    static const char alpha[] = "/%.=&?+ aZ09~-_\t:;,\x80\xff" "2F";
    struct sm_aws_creds creds = { (char *)"AK", (char *)"SK", NULL };
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 3000; i++) {
        char path[64], query[64], h1[64];
        char *bufs[3] = { path, query, h1 };
        for (int b = 0; b < 3; b++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t n = (size_t)(x % 60);
            for (size_t k = 0; k < n; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                bufs[b][k] = alpha[x % (sizeof(alpha) - 1)];
            }
            bufs[b][n] = 0;
        }
        const char *hdrs[] = { "Host: h", h1, NULL };
        struct sm_sigv4_cfg cfg = { "r", (i & 1) ? "s3" : "es", &creds, (unsigned)(i & 6) };
        struct sm_sigv4_req req = { "GET", path, query, hdrs, NULL, 0, NULL, 1 };
        struct sm_sigv4_result r;
        int rc = sm_sigv4_sign(&cfg, &req, &r, NULL, 0);
        SM_CHECK(rc == SM_OK || rc == SM_EINVAL);   /* EINVAL: h1 is not "Name: value" */
        if (rc == SM_OK) {
            SM_CHECK(strlen(r.signature) == 64);
            /* the canonical URI starts with '/' and holds only unreserved, '/' and %XX */
            const char *u = strchr(r.canonical_request, '\n') + 1;
            SM_CHECK(*u == '/');
            for (; *u != '\n'; u++)
                SM_CHECK(strchr("/%-._~", *u) || (*u >= '0' && *u <= '9') || (*u >= 'A' && *u <= 'Z') ||
                         (*u >= 'a' && *u <= 'z'));
            sm_sigv4_result_free(&r);
        }
    }
    return 0;
}

/* Every allocation failure point gives SM_ENOMEM, never a crash or leak. */
static int test_alloc_failures(void)
{
    struct sm_aws_creds creds = { (char *)"AK", (char *)"SK", (char *)"TOK" };
    struct sm_sigv4_cfg cfg = { "eu-west-1", "s3", &creds, 0 };
    const char *hdrs[] = { "Host: h", "X-A: 1  2", "x-a: 3", "Content-Type: t", NULL };
    struct sm_sigv4_req req = { "PUT", "/b/k%2Fx/./y", "b=2&a=1&c", hdrs, "body", 4, NULL, 1369353600 };
    struct sm_sigv4_result r;
    int ok = 0, nomem = 0;
    for (long n = 0; n < 400; n++) {
        sm_mem_fail_after(n);
        int rc = sm_sigv4_sign(&cfg, &req, &r, NULL, 0);
        sm_mem_fail_after(-1);
        if (rc == SM_OK) {
            ok++;
            sm_sigv4_result_free(&r);
            break;
        }
        SM_CHECK_EQ_INT(rc, SM_ENOMEM);
        nomem++;
    }
    SM_CHECK_EQ_INT(ok, 1);
    SM_CHECK(nomem > 10);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_alloc_failures), SM_TC(test_random_inputs), SM_TC(test_aws_test_suite), SM_TC(test_s3_doc_example), SM_TC(test_s3_authorization_header),
             SM_TC(test_path_and_query_encoding), SM_TC(test_missing_inputs),
             SM_TC(test_credentials_env_and_files))
