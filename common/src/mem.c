#include <sm/mem.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* < 0: never fail. Otherwise the number of allocations still allowed. */
static _Atomic long fail_after = -1;
static _Atomic int fail_init;

static void init_from_env(void)
{
    /* a plain load once initialised: a compare-and-swap per allocation
     * took the cache line exclusively, from every thread that allocates */
    if (atomic_load_explicit(&fail_init, memory_order_acquire))
        return;
    int expected = 0;
    if (atomic_compare_exchange_strong(&fail_init, &expected, 1)) {
        const char *e = getenv("SM_FAIL_ALLOC");
        if (e && *e)
            atomic_store(&fail_after, strtol(e, NULL, 10));
    }
}

static int should_fail(void)
{
    init_from_env();
    long v = atomic_load(&fail_after);
    if (v < 0)
        return 0;
    if (v == 0)
        return 1;
    atomic_fetch_sub(&fail_after, 1);
    return 0;
}

void sm_mem_fail_after(long n)
{
    atomic_store(&fail_init, 1);
    atomic_store(&fail_after, n);
}

void *sm_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *sm_calloc(size_t nmemb, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *sm_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void *sm_memdup(const void *p, size_t n)
{
    void *q = sm_malloc(n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

char *sm_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *q = sm_malloc(len + 1);
    if (!q)
        return NULL;
    memcpy(q, s, len);
    q[len] = '\0';
    return q;
}

char *sm_strdup(const char *s)
{
    return s ? sm_strndup(s, strlen(s)) : NULL;
}

void sm_free(void *p)
{
    free(p);
}

int sm_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? (*cap > SIZE_MAX / 2 ? SIZE_MAX : *cap * 2) : first;
    if (nc <= n)
        nc = n + 1;
    if (nc <= n || (elem && nc > SIZE_MAX / elem))
        return -1;
    void *old;
    memcpy(&old, arr, sizeof(old));   /* arr is a T **: no void ** aliasing */
    void *p = sm_realloc(old, nc * elem);
    if (!p)
        return -1;
    memcpy(arr, &p, sizeof(p));
    *cap = nc;
    return 0;
}
