/* dl_backend.c — device -> kernel table. */
#include "dl_backend.h"

#include <stdio.h>

/* Filled by src/gpu/ when built with CUDA. */
extern const dl_backend *dl_cuda_backend_get(int index) __attribute__((weak));

const dl_backend *dl_backend_get(dl_device dev) {
  if (dev.type == DL_CPU) return &dl_cpu_backend;
  if (dev.type == DL_CUDA && dl_cuda_backend_get) {
    const dl_backend *be = dl_cuda_backend_get(dev.index);
    if (be) return be;
  }
  dl_error_set("device cuda:%d is not available (dlua built without CUDA, or no GPU present)", dev.index);
  return NULL;
}
