/* dl_plugin.c — finding and opening the engine's plugins (dl_plugin.h). */
#define _GNU_SOURCE
#include "dl_plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the directory of the object holding this code, into dir; its path into self */
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

void *dl_plugin_open(const char *name, const char *what, const char *env, const char *missing, char *reason,
                     size_t n) {
  char dir[PATH_MAX], self[PATH_MAX], path[PATH_MAX + 64];
  bool have_dir = own_dir(dir, sizeof dir, self, sizeof self);
  if (have_dir) dlopen(self, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL); /* our symbols, for the plugin */
  const char *found = env ? getenv(env) : NULL;
  if (found && !*found) found = NULL;
  static const char *const rel[] = {"/", "/../lib/", "/../../"};
  for (size_t i = 0; !found && have_dir && i < sizeof rel / sizeof rel[0]; i++) {
    snprintf(path, sizeof path, "%s%s%s", dir, rel[i], name);
    if (access(path, F_OK) == 0) found = path;
  }
  void *h = dlopen(found ? found : name, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    if (found) snprintf(reason, n, "%s failed to load: %s", what, dlerror());
    else snprintf(reason, n, "%s", missing);
  }
  return h;
}
