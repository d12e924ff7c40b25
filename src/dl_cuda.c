/* dl_cuda.c — finding and opening the CUDA plugin (dl_cuda.h), and the
 * management API that forwards to it. The plugin is looked for beside the
 * object that holds the engine: lib/libdlua_cuda.so next to libdlua.so,
 * from bin/dlua one directory up, from the Lua module lib/lua/5.4/dlua.so
 * two up; DLUA_CUDA_PLUGIN names it outright, and the loader's search path
 * is the last resort (an installed dlua). The engine's own symbols are made
 * global first, so the plugin resolves them even when the engine itself was
 * opened RTLD_LOCAL (require "dlua" from lua5.4). */
#define _GNU_SOURCE
#include "dl_cuda.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLUGIN_NAME "libdlua_cuda.so"

static const dl_cuda_plugin *plugin;
static char reason[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* the directory of the object holding this code, into dir */
static bool own_dir(char *dir, size_t n, char *self, size_t m) {
  Dl_info info;
  char path[PATH_MAX];
  if (!dladdr((void *)own_dir, &info) || !info.dli_fname) return false;
  const char *f = info.dli_fname;
  if (!strchr(f, '/')) { /* the main program: its path from /proc */
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    if (k <= 0) return false;
    path[k] = 0;
    f = path;
  }
  char real[PATH_MAX];
  if (!realpath(f, real)) return false;
  snprintf(self, m, "%s", real);
  char *slash = strrchr(real, '/');
  if (!slash) return false;
  *slash = 0;
  snprintf(dir, n, "%s", real);
  return true;
}

static void load(void) {
  char dir[PATH_MAX], self[PATH_MAX], path[PATH_MAX + 64];
  bool have_dir = own_dir(dir, sizeof dir, self, sizeof self);
  if (have_dir) dlopen(self, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL); /* our symbols, for the plugin */
  const char *found = getenv("DLUA_CUDA_PLUGIN");
  if (found && !*found) found = NULL;
  static const char *const rel[] = {"/" PLUGIN_NAME, "/../lib/" PLUGIN_NAME, "/../../" PLUGIN_NAME};
  for (size_t i = 0; !found && have_dir && i < sizeof rel / sizeof rel[0]; i++) {
    snprintf(path, sizeof path, "%s%s", dir, rel[i]);
    if (access(path, F_OK) == 0) found = path;
  }
  void *h = dlopen(found ? found : PLUGIN_NAME, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    if (found) snprintf(reason, sizeof reason, "the CUDA plugin failed to load: %s", dlerror());
    else snprintf(reason, sizeof reason, "dlua built without CUDA: no %s", PLUGIN_NAME);
    return;
  }
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
