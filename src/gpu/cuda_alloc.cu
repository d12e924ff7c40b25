/* cuda_alloc.cu — the caching device allocator.
 * cudaMalloc and cudaFree synchronise the device and cost microseconds, so
 * blocks are rounded to size classes (four per power of two, as dl_alloc.c
 * does on the host) and kept on per-device free lists when released; a
 * training loop stops calling cudaMalloc after its first step. Reusing a
 * block is safe without events because every dlua kernel of a device runs
 * on one stream: work on the new owner is queued after work on the old.
 * When cudaMalloc runs out of memory the device's cache is returned and the
 * call tried again, then the holder of this thread's tensors is asked to
 * give the dead ones back (a full Lua collection, dl_alloc_reclaim) and the
 * call tried a last time; any other failure (a sticky fault from an
 * earlier kernel) is reported as what it is. Bytes the device newly
 * gives (cudaMalloc, not a cache hit) feed the Lua collector's pressure
 * counter: a loop whose garbage the cache absorbs costs no collection, and
 * one that outgrows the cache gets collected at the pace it allocates. */
#include "cuda_common.cuh"
#include "dl_cuda.h"

extern "C" {
#include "../dl_alloc.h"
}

#include <mutex>
#include <vector>

#define MIN_BLOCK 512 /* keeps every block 16-byte aligned for vector loads */
#define NCLASSES (64 * 4)
#define MAX_DEVICES 64

namespace {

struct device_cache {
  std::vector<void *> lists[NCLASSES];
  size_t allocated = 0, cached = 0, peak = 0;
};

std::mutex lock;
device_cache caches[MAX_DEVICES];

size_t class_of(size_t n, size_t *rounded) {
  if (n <= MIN_BLOCK) {
    *rounded = MIN_BLOCK;
    return 0;
  }
  int p = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^p < n <= 2^(p+1) */
  size_t step = (size_t)1 << (p - 1);
  size_t k = (n + step - 1) / step;
  if (k < 3) k = 3;
  *rounded = k * step;
  return (size_t)p * 4 + (k - 1);
}

/* frees the cached blocks of one device (lock held; device selected) */
void release_cached(device_cache &c) {
  for (auto &l : c.lists) {
    for (void *p : l) cudaFree(p);
    l.clear();
  }
  c.cached = 0;
}

int device_slot() {
  int d = dl_cuda_current_device();
  return d < 0 ? 0 : d % MAX_DEVICES;
}

} // namespace

/* a block of class cls from the cache or cudaMalloc (lock held);
 * cudaSuccess or the failure of the last cudaMalloc tried */
static cudaError_t take(device_cache &c, size_t cls, size_t rounded, void **p) {
  if (cls < NCLASSES && !c.lists[cls].empty()) {
    *p = c.lists[cls].back();
    c.lists[cls].pop_back();
    c.cached -= rounded;
    return cudaSuccess;
  }
  cudaError_t e = cudaMalloc(p, rounded);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError(); /* running out is not sticky: clear it */
    release_cached(c);
    e = cudaMalloc(p, rounded);
  }
  if (e == cudaErrorMemoryAllocation) cudaGetLastError();
  if (e == cudaSuccess) dl_alloc_add_pressure(rounded);
  return e;
}

void *dl_cuda_malloc(size_t nbytes) {
  size_t rounded;
  size_t cls = class_of(nbytes ? nbytes : 1, &rounded);
  int dev = device_slot();
  void *p = nullptr;
  cudaError_t e;
  {
    std::lock_guard<std::mutex> g(lock);
    e = take(caches[dev], cls, rounded, &p);
  }
  /* out of memory: dead tensors give their blocks back (outside the lock,
   * as their release frees through it), then a last try */
  if (e == cudaErrorMemoryAllocation && dl_alloc_reclaim()) {
    std::lock_guard<std::mutex> g(lock);
    e = take(caches[dev], cls, rounded, &p);
  }
  std::lock_guard<std::mutex> g(lock);
  device_cache &c = caches[dev];
  if (e != cudaSuccess) {
    if (e == cudaErrorMemoryAllocation)
      dl_error_set("out of memory on cuda:%d (asked for %zu bytes, %zu allocated)", dev, nbytes, c.allocated);
    else
      dl_error_set("cuda: cudaMalloc failed on cuda:%d: %s", dev, cudaGetErrorString(e));
    dl_cuda_note_failure();
    return nullptr;
  }
  c.allocated += rounded;
  if (c.allocated > c.peak) c.peak = c.allocated;
  return p;
}

void dl_cuda_free(void *p, size_t nbytes) {
  if (!p) return;
  size_t rounded;
  size_t cls = class_of(nbytes ? nbytes : 1, &rounded);
  std::lock_guard<std::mutex> g(lock);
  device_cache &c = caches[device_slot()];
  c.allocated -= rounded;
  if (cls >= NCLASSES) {
    cudaFree(p);
    return;
  }
  c.lists[cls].push_back(p);
  c.cached += rounded;
}

extern "C" void dl_cuda_empty_cache(void) {
  int n = dl_cuda_device_count();
  if (n == 0) return;
  int cur = dl_cuda_current_device();
  std::lock_guard<std::mutex> g(lock);
  for (int d = 0; d < n && d < MAX_DEVICES; d++) {
    bool any = caches[d].cached > 0;
    if (!any) continue;
    cudaSetDevice(d);
    release_cached(caches[d]);
  }
  if (cur >= 0) cudaSetDevice(cur);
}

static device_cache *cache_of(int index) {
  if (index < 0 || index >= MAX_DEVICES || index >= dl_cuda_device_count()) return nullptr;
  return &caches[index];
}

extern "C" size_t dl_cuda_memory_allocated(int index) {
  std::lock_guard<std::mutex> g(lock);
  device_cache *c = cache_of(index);
  return c ? c->allocated : 0;
}

extern "C" size_t dl_cuda_max_memory_allocated(int index) {
  std::lock_guard<std::mutex> g(lock);
  device_cache *c = cache_of(index);
  return c ? c->peak : 0;
}

extern "C" void dl_cuda_reset_peak_memory_stats(int index) {
  std::lock_guard<std::mutex> g(lock);
  device_cache *c = cache_of(index);
  if (c) c->peak = c->allocated;
}
