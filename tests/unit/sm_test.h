/* Tiny test harness: each case is a function returning 0 on success.
 *   static int test_x(void) { SM_CHECK(a == b); return 0; }
 *   SM_TEST_MAIN(test_x, test_y)
 * SM_SKIP("reason") exits 77 (ctest: skipped). */
#ifndef SM_TEST_H
#define SM_TEST_H
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SM_CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); return 1; } } while (0)
#define SM_CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); if (_a != _b) { \
    fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, _a, #b, _b); return 1; } } while (0)
#define SM_CHECK_EQ_STR(a, b) do { const char *_a = (a), *_b = (b); if (!_a || !_b || strcmp(_a, _b)) { \
    fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, _a ? _a : "(null)", _b ? _b : "(null)"); return 1; } } while (0)
#define SM_CHECK_MEM(a, b, n) do { if (memcmp((a), (b), (n))) { \
    fprintf(stderr, "%s:%d: memory differs: %s vs %s\n", __FILE__, __LINE__, #a, #b); return 1; } } while (0)
#define SM_SKIP(...) do { fprintf(stderr, "SKIP: "); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(77); } while (0)

struct sm_test_case { const char *name; int (*fn)(void); };
#define SM_TC(f) { #f, f }

static inline int sm_test_run(const struct sm_test_case *tc, size_t n, int argc, char **argv)
{
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && !strstr(tc[i].name, argv[1]))
            continue;
        ran++;
        int rc = tc[i].fn();
        printf("%s %s\n", rc ? "FAIL" : "ok  ", tc[i].name);
        if (rc)
            failed++;
    }
    printf("%d passed, %d failed\n", ran - failed, failed);
    return failed ? 1 : 0;
}

#define SM_TEST_MAIN(...) \
    int main(int argc, char **argv) { \
        static const struct sm_test_case tcs[] = { __VA_ARGS__ }; \
        return sm_test_run(tcs, sizeof(tcs) / sizeof(tcs[0]), argc, argv); }

/* Path of a file under the source tree: sm_src_path("tests/fixtures/x"). */
static inline const char *sm_src_path(const char *rel)
{
    static char buf[4][4096];
    static int k;
    const char *root = getenv("SM_SOURCE_DIR");
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", root ? root : ".", rel);
    return buf[k];
}
#endif
