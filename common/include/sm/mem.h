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

/* Tests: make the allocation after the next n succeed calls fail (n < 0: never). */
void sm_mem_fail_after(long n);

#endif
