/* dl_backend.h — the per-device kernel table.
 * Op front-ends (src/ops/) check arguments, broadcast and pick dtypes once,
 * then call through dl_backend_get(device). Backends never check arguments.
 * Each op family declares its own kernel struct in src/ops/<family>.h. */
#ifndef DL_BACKEND_H
#define DL_BACKEND_H

#include "dl_tensor.h"

struct dl_ewise_kernels;
struct dl_reduce_kernels;
struct dl_index_kernels;
struct dl_linalg_kernels;
struct dl_random_kernels;
struct dl_act_kernels;
struct dl_loss_kernels;
struct dl_layer_kernels;
struct dl_optim_kernels;
struct dl_decomp_kernels;

typedef struct dl_backend {
  const char *name;
  void *(*alloc)(size_t nbytes); /* NULL + dl_error_set on failure */
  void (*free)(void *p, size_t nbytes);
  /* dst = src elementwise; equal shapes (src may have 0 strides), any dtypes */
  void (*copy)(dl_tensor *dst, const dl_tensor *src);
  void (*fill)(dl_tensor *dst, dl_scalar v);
  /* contiguous byte transfers between this device and the host; 0 ok */
  int (*to_host)(void *host, const void *dev, size_t nbytes);
  int (*from_host)(void *dev, const void *host, size_t nbytes);
  const struct dl_ewise_kernels *ewise;
  const struct dl_reduce_kernels *reduce;
  const struct dl_index_kernels *index;
  const struct dl_linalg_kernels *linalg;
  const struct dl_random_kernels *random;
  const struct dl_act_kernels *act;     /* activations (src/ops/dl_activation.h) */
  const struct dl_loss_kernels *loss;   /* losses (src/ops/dl_loss.h) */
  const struct dl_layer_kernels *layer; /* batch norm, dropout, RBF (src/ops/dl_layer.h) */
  const struct dl_optim_kernels *optim; /* fused optimiser steps (src/ops/dl_optim.h) */
  const struct dl_decomp_kernels *decomp; /* eigh (src/ops/dl_decomp.h) */
} dl_backend;

extern const dl_backend dl_cpu_backend;

/* NULL with an error when the device's backend is not built or present. */
const dl_backend *dl_backend_get(dl_device dev);
static inline const dl_backend *dl_backend_of(const dl_tensor *t) { return dl_backend_get(t->storage->device); }

#endif
