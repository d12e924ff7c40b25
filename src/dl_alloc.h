/* dl_alloc.h — the host caching allocator and small-object pools.
 * Blocks are rounded to size classes (four per power of two) and kept on
 * free lists when released, so a training loop stops calling malloc after
 * its first step. */
#ifndef DL_ALLOC_H
#define DL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 64-byte aligned; NULL (with dl_error_set) when out of memory. */
void *dl_host_alloc(size_t nbytes);
void dl_host_free(void *p, size_t nbytes);
/* Returns every cached block to the system. */
void dl_host_empty_cache(void);

typedef struct {
  size_t allocated;    /* bytes in live blocks (class-rounded) */
  size_t cached;       /* bytes held on free lists */
  size_t peak;         /* highest `allocated` seen */
  uint64_t sys_allocs; /* calls that reached the system allocator */
} dl_alloc_stats;
void dl_host_stats(dl_alloc_stats *out);
/* bytes in live blocks (cheap; for pacing the Lua collector) */
size_t dl_host_live_bytes(void);

/* Bytes newly handed out since the last call (any device). The binding feeds
 * this to Lua's collector so garbage tensors are reclaimed at the pace they
 * are made. */
size_t dl_alloc_take_pressure(void);
void dl_alloc_add_pressure(size_t nbytes);

/* When a device allocation fails, the allocator asks whoever holds tensors
 * on this thread to give the dead ones back (the binding: a full Lua
 * collection of the thread's state) and tries again. dl_alloc_reclaim runs
 * the hook; false when there is none. */
void dl_alloc_set_reclaim(void (*fn)(void));
bool dl_alloc_reclaim(void);

/* Fixed-size object pool (tensor and storage structs). */
typedef struct dl_pool {
  size_t objsize;
  int id; /* assigned on first use */
} dl_pool;
void *dl_pool_get(dl_pool *pool);  /* zeroed; NULL on OOM */
void dl_pool_put(dl_pool *pool, void *obj);

#endif
