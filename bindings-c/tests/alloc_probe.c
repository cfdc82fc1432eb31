/* LD_PRELOAD probe for the real-time test: counts malloc, calloc, realloc and
 * free per thread (glibc's own functions do the work). The test finds
 * alloc_probe_count() with dlsym and reads it around each frame call. */
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static __thread unsigned long calls;

unsigned long alloc_probe_count(void) { return calls; }

void *malloc(size_t n) { calls++; return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { calls++; return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { calls++; return __libc_realloc(p, n); }
void free(void *p) { if (p) calls++; __libc_free(p); }
