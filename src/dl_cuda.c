/* dl_cuda.c — opening the CUDA plugin (found as dl_plugin.h says;
 * DLUA_CUDA_PLUGIN names it outright) and the management API that forwards
 * to it (dl_cuda.h). */
#define _GNU_SOURCE
#include "dl_cuda.h"

#include "dl_plugin.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PLUGIN_NAME "libdlua_cuda.so"

static const dl_cuda_plugin *plugin;
static char reason[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
  void *h = dl_plugin_open(PLUGIN_NAME, "the CUDA plugin", "DLUA_CUDA_PLUGIN",
                           "dlua built without CUDA: no " PLUGIN_NAME, reason, sizeof reason);
  if (!h) return;
  const dl_cuda_plugin *(*entry)(void) = (const dl_cuda_plugin *(*)(void))dlsym(h, DL_CUDA_PLUGIN_SYMBOL);
  const dl_cuda_plugin *p = entry ? entry() : NULL;
  if (!p || p->abi != DL_CUDA_PLUGIN_ABI || p->backend_size != sizeof(dl_backend) || p->nops != DL_NOPS) {
    snprintf(reason, sizeof reason, "the CUDA plugin was built from other headers than this dlua");
    return;
  }
  plugin = p;
}

static const dl_cuda_plugin *get(void) {
  pthread_once(&once, load);
  return plugin;
}

int dl_cuda_device_count(void) { return get() ? plugin->device_count() : 0; }

const char *dl_cuda_unavailable_reason(void) { return get() ? plugin->unavailable_reason() : reason; }

int dl_cuda_synchronize(int index) { return get() && plugin->device_count() > 0 ? plugin->synchronize(index) : 0; }

void dl_cuda_empty_cache(void) {
  if (get()) plugin->empty_cache();
}

size_t dl_cuda_memory_allocated(int index) { return get() ? plugin->memory_allocated(index) : 0; }

size_t dl_cuda_max_memory_allocated(int index) { return get() ? plugin->max_memory_allocated(index) : 0; }

void dl_cuda_reset_peak_memory_stats(int index) {
  if (get()) plugin->reset_peak_memory_stats(index);
}

const dl_cuda_nccl *dl_cuda_nccl_get(void) {
  if (!get()) {
    dl_error_set("dl.dist: no NCCL: %s", reason);
    return NULL;
  }
  if (!plugin->nccl) dl_error_set("dl.dist: the CUDA plugin was built without NCCL");
  return plugin->nccl;
}

static void no_device(int index) {
  dl_error_set("cuda: no CUDA device available (%s; cuda:%d is not available)", reason, index);
}

int dl_cuda_device_name(int index, char *buf, size_t n) {
  if (get()) return plugin->device_name(index, buf, n);
  no_device(index);
  return -1;
}

const dl_backend *dl_cuda_backend_get(int index) {
  if (get()) return plugin->backend_get(index);
  no_device(index);
  return NULL;
}
