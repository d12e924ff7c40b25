/* dl_alloc.c — host caching allocator and object pools. */
#include "dl_alloc.h"

#include "dl_core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BLOCK 64
#define NCLASSES (64 * 4)
/* Cached bytes beyond this go back to the system on free. */
#define CACHE_LIMIT ((size_t)2 << 30)

typedef struct free_block { struct free_block *next; } free_block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static free_block *free_lists[NCLASSES];
static dl_alloc_stats stats;
static _Thread_local size_t pressure;

/* Four classes per power of two: at most 25% waste. */
static size_t class_of(size_t n, size_t *rounded) {
  if (n <= MIN_BLOCK) { *rounded = MIN_BLOCK; return 0; }
  int p = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^p < n <= 2^(p+1) */
  size_t step = (size_t)1 << (p - 1);                        /* quarter of 2^(p+1) */
  size_t k = (n + step - 1) / step;                          /* 3..4 -> sub-classes */
  if (k < 3) k = 3;
  *rounded = k * step;
  return (size_t)p * 4 + (k - 1);
}

void *dl_host_alloc(size_t nbytes) {
#ifdef DL_NO_CACHE
  /* sanitizer builds: every block straight from the system */
  pressure += nbytes;
  void *raw = malloc(nbytes ? nbytes : 1);
  if (!raw) dl_error_set("out of memory allocating %zu bytes", nbytes);
  return raw;
#endif
  size_t rounded;
  size_t c = class_of(nbytes ? nbytes : 1, &rounded);
  pressure += rounded;
  pthread_mutex_lock(&lock);
  free_block *b = c < NCLASSES ? free_lists[c] : NULL;
  if (b) {
    free_lists[c] = b->next;
    stats.cached -= rounded;
  }
  stats.allocated += rounded;
  if (stats.allocated > stats.peak) stats.peak = stats.allocated;
  if (!b) stats.sys_allocs++;
  pthread_mutex_unlock(&lock);
  if (b) return b;
  void *p = aligned_alloc(64, rounded);
  if (!p) {
    dl_host_empty_cache();
    p = aligned_alloc(64, rounded);
  }
  if (!p) {
    pthread_mutex_lock(&lock);
    stats.allocated -= rounded;
    pthread_mutex_unlock(&lock);
    dl_error_set("out of memory allocating %zu bytes", nbytes);
  }
  return p;
}

void dl_host_free(void *p, size_t nbytes) {
  if (!p) return;
#ifdef DL_NO_CACHE
  (void)nbytes;
  free(p);
  return;
#endif
  size_t rounded;
  size_t c = class_of(nbytes ? nbytes : 1, &rounded);
  pthread_mutex_lock(&lock);
  stats.allocated -= rounded;
  if (c < NCLASSES && stats.cached + rounded <= CACHE_LIMIT) {
    free_block *b = p;
    b->next = free_lists[c];
    free_lists[c] = b;
    stats.cached += rounded;
    p = NULL;
  }
  pthread_mutex_unlock(&lock);
  free(p);
}

void dl_host_empty_cache(void) {
  pthread_mutex_lock(&lock);
  for (int c = 0; c < NCLASSES; c++) {
    free_block *b = free_lists[c];
    while (b) {
      free_block *next = b->next;
      free(b);
      b = next;
    }
    free_lists[c] = NULL;
  }
  stats.cached = 0;
  pthread_mutex_unlock(&lock);
}

void dl_host_stats(dl_alloc_stats *out) {
  pthread_mutex_lock(&lock);
  *out = stats;
  pthread_mutex_unlock(&lock);
}

size_t dl_alloc_take_pressure(void) {
  size_t p = pressure;
  pressure = 0;
  return p;
}

void dl_alloc_add_pressure(size_t nbytes) { pressure += nbytes; }

/* ---- pools ---- */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

void *dl_pool_get(dl_pool *pool) {
#ifdef DL_NO_CACHE
  void *fresh = calloc(1, pool->objsize);
  if (!fresh) dl_error_set("out of memory");
  return fresh;
#endif
  pthread_mutex_lock(&pool_lock);
  void *obj = pool->free_list;
  if (obj) pool->free_list = *(void **)obj;
  pthread_mutex_unlock(&pool_lock);
  if (!obj) {
    obj = malloc(pool->objsize);
    if (!obj) { dl_error_set("out of memory"); return NULL; }
  }
  memset(obj, 0, pool->objsize);
  return obj;
}

void dl_pool_put(dl_pool *pool, void *obj) {
#ifdef DL_NO_CACHE
  (void)pool;
  free(obj);
  return;
#endif
  pthread_mutex_lock(&pool_lock);
  *(void **)obj = pool->free_list;
  pool->free_list = obj;
  pthread_mutex_unlock(&pool_lock);
}
