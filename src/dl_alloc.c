/* dl_alloc.c — host caching allocator and object pools.
 * Small blocks (up to 64 KiB) and pooled structs are cached per thread, so
 * the hot path of a tensor op takes no lock; larger blocks share one list
 * per size class under a mutex. Statistics are relaxed atomics. */
#include "dl_alloc.h"

#include "dl_core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BLOCK 64
#define NCLASSES (64 * 4)
/* Cached bytes beyond this go back to the system on free. */
#define CACHE_LIMIT ((size_t)2 << 30)
#define LOCAL_MAX_BYTES ((size_t)64 << 10)
/* a thread keeps up to this many bytes per class (at least LOCAL_MIN_BLOCKS
 * blocks): a collection frees thousands of small tensors at once, and they
 * should all come back without the lock */
#define LOCAL_CLASS_BYTES ((size_t)256 << 10)
#define LOCAL_MIN_BLOCKS 64

typedef struct free_block { struct free_block *next; } free_block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static free_block *free_lists[NCLASSES];
static size_t st_allocated, st_cached, st_peak;
static uint64_t st_sys_allocs;
static _Thread_local size_t pressure;

/* per-thread LIFO of small blocks, by class */
static _Thread_local free_block *local_lists[NCLASSES];
static _Thread_local uint16_t local_counts[NCLASSES];

/* A thread that ends hands its cached blocks to the shared lists and frees
 * its pooled objects (a host running a thread per request would otherwise
 * lose them with each thread): a key destructor, registered by the first
 * block or object the thread caches. */
static pthread_key_t exit_key;
static bool exit_key_made; /* false: out of keys, the caches stay with the thread */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static _Thread_local bool exit_registered;
static void thread_exit(void *unused);
static void make_exit_key(void) { exit_key_made = pthread_key_create(&exit_key, thread_exit) == 0; }
static inline void on_thread_exit_flush(void) {
  if (exit_registered) return;
  exit_registered = true;
  pthread_once(&exit_once, make_exit_key);
  if (exit_key_made) pthread_setspecific(exit_key, (void *)1);
}

#define ADD(var, n) __atomic_add_fetch(&(var), (n), __ATOMIC_RELAXED)
#define SUB(var, n) __atomic_sub_fetch(&(var), (n), __ATOMIC_RELAXED)
#define LOAD(var) __atomic_load_n(&(var), __ATOMIC_RELAXED)

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

static void note_allocated(size_t rounded) {
  size_t now = ADD(st_allocated, rounded);
  if (now > LOAD(st_peak)) __atomic_store_n(&st_peak, now, __ATOMIC_RELAXED);
}

void *dl_host_alloc(size_t nbytes) {
#ifdef DL_NO_CACHE
  /* sanitizer builds: every block straight from the system */
  pressure += nbytes;
  void *raw = malloc(nbytes ? nbytes : 1);
  if (!raw) dl_error_set("out of memory allocating %zu bytes", nbytes);
  else note_allocated(nbytes);
  return raw;
#endif
  size_t rounded;
  size_t c = class_of(nbytes ? nbytes : 1, &rounded);
  pressure += rounded;
  free_block *b = NULL;
  if (c < NCLASSES && local_lists[c]) {
    b = local_lists[c];
    local_lists[c] = b->next;
    local_counts[c]--;
  } else if (c < NCLASSES) {
    pthread_mutex_lock(&lock);
    b = free_lists[c];
    if (b) free_lists[c] = b->next;
    pthread_mutex_unlock(&lock);
  }
  if (b) {
    SUB(st_cached, rounded);
    note_allocated(rounded);
    return b;
  }
  void *p = aligned_alloc(64, rounded);
  if (!p) {
    dl_host_empty_cache();
    p = aligned_alloc(64, rounded);
  }
  if (!p) {
    dl_error_set("out of memory allocating %zu bytes", nbytes);
    return NULL;
  }
  ADD(st_sys_allocs, 1);
  note_allocated(rounded);
  return p;
}

void dl_host_free(void *p, size_t nbytes) {
  if (!p) return;
#ifdef DL_NO_CACHE
  SUB(st_allocated, nbytes);
  free(p);
  return;
#endif
  size_t rounded;
  size_t c = class_of(nbytes ? nbytes : 1, &rounded);
  SUB(st_allocated, rounded);
  if (c >= NCLASSES || LOAD(st_cached) + rounded > CACHE_LIMIT) {
    free(p);
    return;
  }
  ADD(st_cached, rounded);
  free_block *b = p;
  if (rounded <= LOCAL_MAX_BYTES &&
      (local_counts[c] < LOCAL_MIN_BLOCKS || (size_t)local_counts[c] * rounded < LOCAL_CLASS_BYTES)) {
    on_thread_exit_flush();
    b->next = local_lists[c];
    local_lists[c] = b;
    local_counts[c]++;
    return;
  }
  pthread_mutex_lock(&lock);
  b->next = free_lists[c];
  free_lists[c] = b;
  pthread_mutex_unlock(&lock);
}

static size_t free_chain(free_block *b) {
  size_t n = 0;
  while (b) {
    free_block *next = b->next;
    free(b);
    b = next;
    n++;
  }
  return n;
}

void dl_host_empty_cache(void) {
  for (int c = 0; c < NCLASSES; c++) {
    size_t rounded;
    size_t n;
    /* class c holds blocks of one rounded size: recover it from a representative */
    if (!local_lists[c] && !free_lists[c]) continue;
    size_t p = (size_t)c / 4, k = (size_t)c % 4 + 1;
    rounded = c == 0 ? MIN_BLOCK : k * ((size_t)1 << (p - 1));
    n = free_chain(local_lists[c]);
    local_lists[c] = NULL;
    local_counts[c] = 0;
    pthread_mutex_lock(&lock);
    free_block *g = free_lists[c];
    free_lists[c] = NULL;
    pthread_mutex_unlock(&lock);
    n += free_chain(g);
    SUB(st_cached, n * rounded);
  }
}

void dl_host_stats(dl_alloc_stats *out) {
  out->allocated = LOAD(st_allocated);
  out->cached = LOAD(st_cached);
  out->peak = LOAD(st_peak);
  out->sys_allocs = LOAD(st_sys_allocs);
}

size_t dl_host_live_bytes(void) { return LOAD(st_allocated); }

size_t dl_alloc_take_pressure(void) {
  size_t p = pressure;
  pressure = 0;
  return p;
}

void dl_alloc_add_pressure(size_t nbytes) { pressure += nbytes; }

static void (*reclaim_fn)(void);
void dl_alloc_set_reclaim(void (*fn)(void)) { reclaim_fn = fn; }
bool dl_alloc_reclaim(void) {
  if (!reclaim_fn) return false;
  reclaim_fn();
  return true;
}

/* ---- pools: one free list per pool and thread ---- */

#define MAX_POOLS 16
static _Thread_local void *pool_heads[MAX_POOLS];
static int pool_count;

static int pool_id(dl_pool *pool) {
  int id = __atomic_load_n(&pool->id, __ATOMIC_ACQUIRE);
  if (id) return id - 1;
  pthread_mutex_lock(&lock);
  if (!pool->id) __atomic_store_n(&pool->id, ++pool_count, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&lock);
  return pool->id - 1;
}

void *dl_pool_get(dl_pool *pool) {
#ifdef DL_NO_CACHE
  void *fresh = calloc(1, pool->objsize);
  if (!fresh) dl_error_set("out of memory");
  return fresh;
#endif
  int id = pool_id(pool);
  void *obj = id < MAX_POOLS ? pool_heads[id] : NULL;
  if (obj) pool_heads[id] = *(void **)obj;
  else if (!(obj = malloc(pool->objsize))) {
    dl_error_set("out of memory");
    return NULL;
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
  int id = pool_id(pool);
  if (id >= MAX_POOLS) {
    free(obj);
    return;
  }
  on_thread_exit_flush();
  *(void **)obj = pool_heads[id];
  pool_heads[id] = obj;
}

static void thread_exit(void *unused) {
  (void)unused;
  for (int c = 0; c < NCLASSES; c++) {
    free_block *b = local_lists[c];
    if (!b) continue;
    free_block *last = b;
    while (last->next) last = last->next;
    pthread_mutex_lock(&lock);
    last->next = free_lists[c];
    free_lists[c] = b;
    pthread_mutex_unlock(&lock);
    local_lists[c] = NULL;
    local_counts[c] = 0;
  }
  for (int id = 0; id < MAX_POOLS; id++) {
    void *obj = pool_heads[id];
    while (obj) {
      void *next = *(void **)obj;
      free(obj);
      obj = next;
    }
    pool_heads[id] = NULL;
  }
  /* another key's destructor may still free dlua memory on this thread:
   * the next block cached registers the flush again (glibc runs the
   * destructors of keys set during this round in another round) */
  exit_registered = false;
}
