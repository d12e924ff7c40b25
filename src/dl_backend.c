/* dl_backend.c — device -> kernel table. */
#include "dl_backend.h"
#include "dl_cuda.h"

#include <stdio.h>

const dl_backend *dl_backend_get(dl_device dev) {
  if (dev.type == DL_CPU) return &dl_cpu_backend;
  return dl_cuda_backend_get(dev.index); /* the plugin's, or NULL with the reason */
}

int dl_kernel_fail(const char *fn) {
  dl_error_prefix(fn);
  return -1;
}

const dl_backend *dl_backend_unsupported(const char *fn, const dl_backend *be, dl_device dev, dl_dtype dt) {
  if (be) {
    char b[32];
    dl_error_set("%s: not supported on %s for %s", fn, dl_device_str(dev, b, sizeof b), dl_dtype_name(dt));
  }
  return NULL;
}

const void *dl_backend_family(const char *fn, dl_device dev, size_t member_offset) {
  const dl_backend *be = dl_backend_get(dev);
  if (!be) return NULL;
  const void *k = *(const void *const *)((const char *)be + member_offset);
  if (!k) {
    char b[32];
    dl_error_set("%s: not supported on %s", fn, dl_device_str(dev, b, sizeof b));
  }
  return k;
}
