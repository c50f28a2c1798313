/* Allocation wrappers. Every allocation in searchmig goes through these so a
 * test build can make the n-th call fail (SM_FAIL_ALLOC=n in the environment,
 * or sm_mem_fail_after()). */
#ifndef SM_MEM_H
#define SM_MEM_H
#include <stddef.h>

void *sm_malloc(size_t n);
void *sm_calloc(size_t nmemb, size_t size);
void *sm_realloc(void *p, size_t n);
char *sm_strdup(const char *s);
char *sm_strndup(const char *s, size_t n);
void *sm_memdup(const void *p, size_t n);
void  sm_free(void *p);

/* Growable arrays: makes room for element n of the array *arr (arr is a T **,
 * *cap its capacity in elements of elem bytes): nothing when n < *cap, else
 * the capacity doubles (first when it was 0; at least n + 1). 0, or -1 when
 * the allocation fails or the size overflows (array and capacity unchanged). */
int sm_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first);

/* Tests: make the allocation after the next n succeed calls fail (n < 0: never). */
void sm_mem_fail_after(long n);

#endif
