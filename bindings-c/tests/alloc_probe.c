/* LD_PRELOAD probe for the real-time test: counts, per thread, calls to
 * malloc, calloc, realloc and free (glibc's own functions do the work), and
 * lock operations: pthread_mutex_lock and futex system calls (how Rust's
 * std blocks on a lock, a condition variable or a channel). The test finds
 * alloc_probe_count() and lock_probe_count() with dlsym and reads them
 * around each frame call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static __thread unsigned long allocs, locks;

unsigned long alloc_probe_count(void) { return allocs; }
unsigned long lock_probe_count(void) { return locks; }

void *malloc(size_t n) { allocs++; return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { allocs++; return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { allocs++; return __libc_realloc(p, n); }
void free(void *p) { if (p) allocs++; __libc_free(p); }

int pthread_mutex_lock(pthread_mutex_t *m) {
    static int (*real)(pthread_mutex_t *);
    if (!real) real = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    locks++;
    return real(m);
}

long syscall(long number, ...) {
    static long (*real)(long, ...);
    if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_futex) locks++;
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
