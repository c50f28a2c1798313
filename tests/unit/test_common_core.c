/* Unit tests for common/: errors, buffers, parsers, options and config files. */
#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "sm_test.h"

static int test_err_strings(void)
{
    SM_CHECK_EQ_STR(sm_strerror(SM_OK), "success");
    SM_CHECK_EQ_STR(sm_strerror(SM_ECORRUPT), "corrupt data");
    SM_CHECK_EQ_STR(sm_strerror(-999), "unknown error");
    SM_CHECK(sm_err_retriable(SM_EAGAIN));
    SM_CHECK(!sm_err_retriable(SM_ECORRUPT));
    char eb[64];
    SM_CHECK_EQ_INT(sm_errf(eb, sizeof(eb), SM_ECORRUPT, "crc %x != %x", 0x1a2bu, 0x3c4du), SM_ECORRUPT);
    SM_CHECK_EQ_STR(eb, "crc 1a2b != 3c4d");
    return 0;
}

static int test_buf_cap(void)
{
    struct sm_buf b;
    sm_buf_init(&b, 10);
    SM_CHECK_EQ_INT(sm_buf_append(&b, "0123456789", 10), SM_OK);
    SM_CHECK_EQ_INT(sm_buf_append(&b, "x", 1), SM_EFULL);
    SM_CHECK_EQ_INT(b.len, 10);
    sm_buf_consume(&b, 4);
    SM_CHECK_MEM(b.data, "456789", 6);
    SM_CHECK_EQ_INT(sm_buf_printf(&b, "%d", 1234), SM_OK);
    SM_CHECK_EQ_STR((char *)b.data, "4567891234");
    SM_CHECK_EQ_INT(sm_buf_printf(&b, "x"), SM_EFULL);
    sm_buf_free(&b);
    return 0;
}

static int test_alloc_failure_injection(void)
{
    struct sm_buf b;
    sm_buf_init(&b, 1 << 20);
    sm_mem_fail_after(0);
    int rc = sm_buf_append(&b, "abc", 3);
    sm_mem_fail_after(-1);
    SM_CHECK_EQ_INT(rc, SM_ENOMEM);
    SM_CHECK_EQ_INT(b.len, 0);
    SM_CHECK_EQ_INT(sm_buf_append(&b, "abc", 3), SM_OK);
    sm_buf_free(&b);
    return 0;
}

/* decimal formatting without printf: same text as PRId64/PRIu64 at the edges */
static int test_grow(void)
{
    int *a = NULL;
    size_t cap = 0;
    SM_CHECK_EQ_INT(sm_grow(&a, &cap, 0, sizeof(*a), 4), 0);   /* first allocation */
    SM_CHECK_EQ_INT(cap, 4);
    for (int i = 0; i < 4; i++)
        a[i] = i;
    SM_CHECK_EQ_INT(sm_grow(&a, &cap, 3, sizeof(*a), 4), 0);   /* room already */
    SM_CHECK_EQ_INT(cap, 4);
    SM_CHECK_EQ_INT(sm_grow(&a, &cap, 4, sizeof(*a), 4), 0);   /* doubles, keeps the elements */
    SM_CHECK_EQ_INT(cap, 8);
    SM_CHECK_EQ_INT(a[3], 3);
    SM_CHECK_EQ_INT(sm_grow(&a, &cap, 100, sizeof(*a), 4), 0); /* at least n + 1 */
    SM_CHECK_EQ_INT(cap, 101);
    int *before = a;
    sm_mem_fail_after(0);
    SM_CHECK_EQ_INT(sm_grow(&a, &cap, 101, sizeof(*a), 4), -1);   /* failure: unchanged */
    sm_mem_fail_after(-1);
    SM_CHECK(a == before);
    SM_CHECK_EQ_INT(cap, 101);
    size_t huge = SIZE_MAX / 2;
    SM_CHECK_EQ_INT(sm_grow(&a, &huge, SIZE_MAX / 2, sizeof(*a), 4), -1);   /* size overflow */
    SM_CHECK(a == before);
    SM_CHECK_EQ_INT(a[3], 3);
    sm_free(a);
    return 0;
}

static int test_fmt_int(void)
{
    const int64_t iv[] = { 0, 7, -1, 10, -10, 1234567890123, INT64_MAX, INT64_MIN };
    for (size_t i = 0; i < sizeof(iv) / sizeof(iv[0]); i++) {
        char want[32], got[32];
        snprintf(want, sizeof(want), "%" PRId64, iv[i]);
        got[sm_fmt_i64(got, iv[i])] = 0;
        SM_CHECK_EQ_STR(got, want);
    }
    char got[32];
    got[sm_fmt_u64(got, UINT64_MAX)] = 0;
    SM_CHECK_EQ_STR(got, "18446744073709551615");
    struct sm_buf b;
    sm_buf_init(&b, 64);
    SM_CHECK_EQ_INT(sm_buf_append_str(&b, "n="), SM_OK);
    SM_CHECK_EQ_INT(sm_buf_append_int(&b, -42), SM_OK);
    SM_CHECK_EQ_INT(b.len, 5);
    SM_CHECK_MEM(b.data, "n=-42", 5);
    sm_buf_free(&b);
    return 0;
}

static int test_parse_sizes_durations(void)
{
    uint64_t v;
    SM_CHECK_EQ_INT(sm_parse_size("64KiB", &v), SM_OK); SM_CHECK_EQ_INT(v, 65536);
    SM_CHECK_EQ_INT(sm_parse_size("1MiB", &v), SM_OK); SM_CHECK_EQ_INT(v, 1048576);
    SM_CHECK_EQ_INT(sm_parse_size("2GiB", &v), SM_OK); SM_CHECK_EQ_INT(v, 2147483648ull);
    SM_CHECK_EQ_INT(sm_parse_size("10MB", &v), SM_OK); SM_CHECK_EQ_INT(v, 10000000);
    SM_CHECK_EQ_INT(sm_parse_size("512", &v), SM_OK); SM_CHECK_EQ_INT(v, 512);
    SM_CHECK_EQ_INT(sm_parse_size("12 parsecs", &v), SM_ECONFIG);
    SM_CHECK_EQ_INT(sm_parse_size("-1", &v), SM_ECONFIG);
    SM_CHECK_EQ_INT(sm_parse_duration_ms("250ms", &v), SM_OK); SM_CHECK_EQ_INT(v, 250);
    SM_CHECK_EQ_INT(sm_parse_duration_ms("1.5s", &v), SM_OK); SM_CHECK_EQ_INT(v, 1500);
    SM_CHECK_EQ_INT(sm_parse_duration_ms("5m", &v), SM_OK); SM_CHECK_EQ_INT(v, 300000);
    SM_CHECK_EQ_INT(sm_parse_duration_ms("2", &v), SM_OK); SM_CHECK_EQ_INT(v, 2000);
    SM_CHECK_EQ_INT(sm_parse_duration_ms("soon", &v), SM_ECONFIG);
    int64_t i;
    SM_CHECK_EQ_INT(sm_parse_i64("42", 0, 100, &i), SM_OK); SM_CHECK_EQ_INT(i, 42);
    SM_CHECK_EQ_INT(sm_parse_i64("101", 0, 100, &i), SM_ECONFIG);
    SM_CHECK_EQ_INT(sm_parse_i64("4x", 0, 100, &i), SM_ECONFIG);
    return 0;
}

static int test_base64_crc(void)
{
    char out[64];
    sm_base64_encode("foobar", 6, out); SM_CHECK_EQ_STR(out, "Zm9vYmFy");
    sm_base64_encode("fooba", 5, out); SM_CHECK_EQ_STR(out, "Zm9vYmE=");
    sm_base64_encode("f", 1, out); SM_CHECK_EQ_STR(out, "Zg==");
    uint8_t dec[64];
    size_t dl;
    SM_CHECK_EQ_INT(sm_base64_decode("Zm9vYmE=\n", 9, dec, &dl), SM_OK);
    SM_CHECK_EQ_INT(dl, 5);
    SM_CHECK_MEM(dec, "fooba", 5);
    SM_CHECK_EQ_INT(sm_base64_decode("Zm9v!mE=", 8, dec, &dl), SM_EPROTO);
    /* ES auto-generated id bytes from the ES 6.8 fixture (snapshot-format.md 9.3) */
    static const uint8_t id[] = { 0x00, 0x4d, 0x3e, 0x66, 0x8e, 0x01, 0xed, 0x3f, 0x91, 0x4b, 0xf0, 0xb9, 0x88, 0x6e, 0x5e };
    sm_base64url_encode(id, sizeof(id), out);
    SM_CHECK_EQ_STR(out, "AE0-Zo4B7T-RS_C5iG5e");
    SM_CHECK_EQ_INT(sm_crc32(0, "123456789", 9), 0xCBF43926u);
    return 0;
}

/* The table-driven and AVX2 base64 paths against the plain definition, for
 * every length up to 300 (all tails and SIMD block boundaries), random and
 * all-ones/all-zeros bytes, both alphabets, and back through the decoder. */
static void b64_ref(const uint8_t *in, size_t n, char *out, const char *alpha, bool pad)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = alpha[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (i + 2 < n)
            out[o++] = alpha[v & 63];
        else if (pad)
            out[o++] = '=';
    }
    out[o] = 0;
}

static int test_base64_paths(void)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t in[300 + 16], dec[320];
    char got[420], want[420];
    uint64_t x = 88172645463325252ull;
    for (int pattern = 0; pattern < 3; pattern++) {
        for (size_t i = 0; i < sizeof(in); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[i] = pattern == 0 ? (uint8_t)x : pattern == 1 ? 0xff : 0x00;
        }
        for (size_t n = 0; n <= 300; n++) {
            size_t len = sm_base64_encode(in, n, got);
            b64_ref(in, n, want, std, true);
            SM_CHECK_EQ_STR(got, want);
            SM_CHECK_EQ_INT(len, strlen(want));
            SM_CHECK_EQ_INT(len, sm_base64_enc_len(n));
            size_t dl = 0;
            SM_CHECK_EQ_INT(sm_base64_decode(got, len, dec, &dl), SM_OK);
            SM_CHECK_EQ_INT(dl, n);
            SM_CHECK(n == 0 || memcmp(dec, in, n) == 0);
            len = sm_base64url_encode(in, n, got);
            b64_ref(in, n, want, url, false);
            SM_CHECK_EQ_STR(got, want);
            SM_CHECK_EQ_INT(len, strlen(want));
        }
    }
    /* every byte value at every place of the first two 32-character blocks
     * (the AVX2 decoder's unit) and in the tail: decoded as the definition
     * says, URL-safe characters included, anything else refused */
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < 72; at += (at < 64 ? 1 : 7)) {
            char enc[76];
            memset(enc, 'A', sizeof(enc));
            for (size_t k = 0; k < sizeof(enc); k++)
                enc[k] = std[(k * 7 + 3) % 64];
            enc[at] = (char)c;
            int v = strchr(std, c) && c ? (int)(strchr(std, c) - std)
                  : strchr(url, c) && c ? (int)(strchr(url, c) - url) : -1;
            size_t dl = 0;
            int rc = sm_base64_decode(enc, sizeof(enc), dec, &dl);
            if (v < 0) {
                SM_CHECK_EQ_INT(rc, SM_EPROTO);
                continue;
            }
            SM_CHECK_EQ_INT(rc, SM_OK);
            SM_CHECK_EQ_INT(dl, 57);
            for (size_t k = 0; k < sizeof(enc); k += 4) {   /* the definition, group by group */
                uint32_t w = 0;
                for (size_t q = 0; q < 4; q++) {
                    char ch = enc[k + q];
                    int d = k + q == at ? v : (int)(strchr(std, ch) - std);
                    w = w << 6 | (uint32_t)d;
                }
                SM_CHECK_EQ_INT(dec[k / 4 * 3], (uint8_t)(w >> 16));
                SM_CHECK_EQ_INT(dec[k / 4 * 3 + 1], (uint8_t)(w >> 8));
                SM_CHECK_EQ_INT(dec[k / 4 * 3 + 2], (uint8_t)w);
            }
        }
    }
    /* unaligned input and output */
    size_t len = sm_base64_encode(in + 1, 100, got + 3);
    b64_ref(in + 1, 100, want, std, true);
    SM_CHECK_EQ_INT(len, strlen(want));
    SM_CHECK_EQ_STR(got + 3, want);
    size_t dl = 0;
    SM_CHECK_EQ_INT(sm_base64_decode(got + 3, len, dec + 1, &dl), SM_OK);
    SM_CHECK_EQ_INT(dl, 100);
    SM_CHECK(memcmp(dec + 1, in + 1, 100) == 0);
    return 0;
}

static int test_patterns(void)
{
    SM_CHECK(sm_pattern_match("logs-*", "logs-2024"));
    SM_CHECK(!sm_pattern_match("logs-*", "metrics"));
    SM_CHECK(sm_pattern_match("logs-*,metrics", "metrics"));
    SM_CHECK(!sm_pattern_match("*,-.kibana*", ".kibana_1"));
    SM_CHECK(sm_pattern_match("-.kibana*", "posts"));
    return 0;
}

struct cfg {
    char *iface;
    int64_t port;
    bool verbose;
    uint64_t spool_max;
    uint64_t idle;
    struct sm_strlist kprops;
    char *password;
};
#define OFF(f) offsetof(struct cfg, f)
static const struct sm_opt opts[] = {
    { "interface", SM_OPT_STR, OFF(iface), "lo", "capture interface", NULL, 0, "IF" },
    { "port", SM_OPT_INT, OFF(port), "9200", "port", NULL, 0, NULL },
    { "verbose", SM_OPT_BOOL, OFF(verbose), "false", "chatty", NULL, 0, NULL },
    { "spool-max", SM_OPT_SIZE, OFF(spool_max), "1GiB", "spool cap", NULL, 0, NULL },
    { "idle-flush", SM_OPT_DURATION, OFF(idle), "1s", "idle flush", NULL, 0, NULL },
    { "kafka-property", SM_OPT_KV, OFF(kprops), NULL, "librdkafka k=v", NULL, 0, NULL },
    { "password", SM_OPT_STR, OFF(password), NULL, "secret", "SM_TEST_PASSWORD", SM_OPT_SECRET, NULL },
    SM_OPT_END
};

static int test_opts_cli_and_file(void)
{
    char path[] = "/tmp/sm_test_cfgXXXXXX";
    int fd = mkstemp(path);
    SM_CHECK(fd >= 0);
    const char *text = "# agent config\ninterface = eth0\nspool-max = 2GiB\nkafka-property = acks=all\n";
    SM_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);

    struct cfg c = { 0 };
    struct sm_cli cli = { "t", NULL, NULL, opts, true };
    char *argv[] = { "t", "--config", path, "--port=9300", "--verbose", "--kafka-property",
                     "linger.ms=5", "--idle-flush", "250ms", "extra", NULL };
    struct sm_strlist pos = { 0 };
    char err[256] = "";
    setenv("SM_TEST_PASSWORD", "s3cret", 1);
    int rc = sm_opts_parse(&cli, &c, 10, argv, &pos, err, sizeof(err));
    unsetenv("SM_TEST_PASSWORD");
    unlink(path);
    SM_CHECK_EQ_INT(rc, SM_OK);
    SM_CHECK_EQ_STR(c.iface, "eth0");
    SM_CHECK_EQ_INT(c.port, 9300);
    SM_CHECK(c.verbose);
    SM_CHECK_EQ_INT(c.spool_max, 2147483648ull);
    SM_CHECK_EQ_INT(c.idle, 250);
    SM_CHECK_EQ_INT(c.kprops.n, 2);
    SM_CHECK_EQ_STR(sm_strlist_kv_get(&c.kprops, "acks"), "all");
    SM_CHECK_EQ_STR(sm_strlist_kv_get(&c.kprops, "linger.ms"), "5");
    SM_CHECK_EQ_STR(c.password, "s3cret");
    SM_CHECK_EQ_INT(pos.n, 1);
    SM_CHECK_EQ_STR(pos.v[0], "extra");
    sm_strlist_free(&pos);
    sm_opts_free(opts, &c);
    return 0;
}

static int test_opts_errors_suggest(void)
{
    struct cfg c = { 0 };
    struct sm_cli cli = { "t", NULL, NULL, opts, true };
    char err[256] = "";
    char *argv[] = { "t", "--interfcae", "eth0", NULL };
    SM_CHECK_EQ_INT(sm_opts_parse(&cli, &c, 3, argv, NULL, err, sizeof(err)), SM_ECONFIG);
    SM_CHECK(strstr(err, "did you mean '--interface'"));
    sm_opts_free(opts, &c);

    memset(&c, 0, sizeof(c));
    char *argv2[] = { "t", "--spool-max", "lots", NULL };
    SM_CHECK_EQ_INT(sm_opts_parse(&cli, &c, 3, argv2, NULL, err, sizeof(err)), SM_ECONFIG);
    SM_CHECK(strstr(err, "--spool-max: 'lots' is not a size"));
    sm_opts_free(opts, &c);

    memset(&c, 0, sizeof(c));
    char path[] = "/tmp/sm_test_cfgXXXXXX";
    int fd = mkstemp(path);
    SM_CHECK(write(fd, "spool-mx = 1GiB\n", 16) == 16);
    close(fd);
    SM_CHECK_EQ_INT(sm_opts_defaults(opts, &c, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(sm_opts_load_file(opts, &c, path, err, sizeof(err)), SM_ECONFIG);
    unlink(path);
    SM_CHECK(strstr(err, ":1: unknown key 'spool-mx' (did you mean 'spool-max'?)"));
    sm_opts_free(opts, &c);
    return 0;
}

static int test_secret_from_file(void)
{
    char path[] = "/tmp/sm_test_secXXXXXX";
    int fd = mkstemp(path);
    SM_CHECK(write(fd, "hunter2\n", 8) == 8);
    close(fd);
    char ref[64];
    snprintf(ref, sizeof(ref), "@%s", path);
    char err[128];
    char *s = sm_secret_resolve(ref, err, sizeof(err));
    unlink(path);
    SM_CHECK_EQ_STR(s, "hunter2");
    sm_free(s);
    SM_CHECK(sm_secret_resolve("@/nonexistent/secret", err, sizeof(err)) == NULL);
    SM_CHECK(strstr(err, "/nonexistent/secret"));
    return 0;
}

static int test_log_debug_spec(void)
{
    unsigned bits;
    SM_CHECK_EQ_INT(sm_log_parse_debug("flow,http", &bits), SM_OK);
    SM_CHECK_EQ_INT(bits, SM_DBG_FLOW | SM_DBG_HTTP);
    SM_CHECK_EQ_INT(sm_log_parse_debug("flow,bogus", &bits), SM_ECONFIG);
    struct sm_ratelimit rl = { 0 };
    uint64_t sup = 0;
    SM_CHECK(sm_log_ratelimited(&rl, 60000, &sup));
    SM_CHECK(!sm_log_ratelimited(&rl, 60000, &sup));
    SM_CHECK(!sm_log_ratelimited(&rl, 60000, &sup));
    SM_CHECK_EQ_INT(rl.suppressed, 2);
    return 0;
}

/* sm_gzip: what zlib reads back is the input, for empty, small and a body
 * larger than libdeflate's blocks, with one compressor reused; the output is
 * a gzip member (magic, deflate method). */
static int test_gzip_round_trip(void)
{
    static const size_t sizes[] = { 0, 1, 300, 3u << 20 };
    size_t big = sizes[3];
    uint8_t *in = malloc(big), *back = malloc(big + 1);
    SM_CHECK(in && back);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < big; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        in[i] = (uint8_t)("{\"field\":\"value\"}\n"[i % 18] ^ ((x & 63) == 0 ? (uint8_t)x : 0));
    }
    struct sm_gzip *z = NULL;
    struct sm_buf out;
    sm_buf_init(&out, SIZE_MAX / 2);
    for (int rep = 0; rep < 2; rep++)
        for (size_t k = 0; k < SM_ARRAY_LEN(sizes); k++) {
            size_t n = sizes[k];
            SM_CHECK_EQ_INT(sm_gzip(&z, &out, in, n), SM_OK);
            SM_CHECK(z != NULL);
            SM_CHECK(out.len >= 18 && out.data[0] == 0x1f && out.data[1] == 0x8b && out.data[2] == 8);
            if (n == big)
                SM_CHECK(out.len < n / 2);
            z_stream zs;
            memset(&zs, 0, sizeof(zs));
            SM_CHECK_EQ_INT(inflateInit2(&zs, 16 + 15), Z_OK);
            zs.next_in = out.data;
            zs.avail_in = (uInt)out.len;
            zs.next_out = back;
            zs.avail_out = (uInt)(big + 1);
            SM_CHECK_EQ_INT(inflate(&zs, Z_FINISH), Z_STREAM_END);
            SM_CHECK_EQ_INT(zs.total_out, n);
            SM_CHECK_EQ_INT(zs.avail_in, 0);
            inflateEnd(&zs);
            SM_CHECK(!memcmp(back, in, n));
        }
    sm_gzip_free(z);
    sm_gzip_free(NULL);
    sm_buf_free(&out);
    free(in);
    free(back);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_err_strings), SM_TC(test_buf_cap), SM_TC(test_alloc_failure_injection),
             SM_TC(test_parse_sizes_durations), SM_TC(test_base64_crc), SM_TC(test_base64_paths), SM_TC(test_patterns), SM_TC(test_fmt_int), SM_TC(test_grow),
             SM_TC(test_opts_cli_and_file), SM_TC(test_opts_errors_suggest),
             SM_TC(test_secret_from_file), SM_TC(test_log_debug_spec), SM_TC(test_gzip_round_trip))
