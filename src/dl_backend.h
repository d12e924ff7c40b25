/* dl_backend.h — the per-device kernel table.
 * Op front-ends (src/ops/) check arguments, broadcast and pick dtypes once,
 * then call through dl_backend_get(device). Backends never check arguments.
 * Each op family declares its own kernel struct in src/ops/<family>.h. */
#ifndef DL_BACKEND_H
#define DL_BACKEND_H

#include "dl_tensor.h"
#include "ops/dl_ops.h"

#include <stddef.h>

/* What a kernel returns: 0 done, -1 failed with dl_error_set (a launch or
 * allocation failure). Families may add positive codes of their own. */
#define DL_KERNEL_OK 0
#define DL_KERNEL_FAILED (-1)

/* A front-end's view of a kernel's status rc: 0 when it ran, -1 when it
 * failed, its message then prefixed with the op's name fn ("sum: cuda:
 * reduce failed on cuda:0: ..."). */
int dl_kernel_fail(const char *fn);
static inline int dl_kernel_status(const char *fn, int rc) { return rc == DL_KERNEL_OK ? 0 : dl_kernel_fail(fn); }
/* out, when the kernel that filled it returned rc == DL_KERNEL_OK; else
 * NULL (out released) with fn's error */
static inline dl_tensor *dl_kernel_result(const char *fn, dl_tensor *out, int rc) {
  if (rc == DL_KERNEL_OK) return out;
  dl_tensor_release(out);
  dl_kernel_fail(fn);
  return NULL;
}

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
struct dl_conv_kernels;

typedef struct dl_backend {
  const char *name;
  /* whether this backend computes op in dtype dt; the front-end asks
   * before it calls the op's kernel (dl_backend_for_op) */
  bool (*supports_op)(dl_op op, dl_dtype dt);
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
  const struct dl_conv_kernels *conv;     /* im2col, col2im (src/ops/dl_conv.h) */
} dl_backend;

extern const dl_backend dl_cpu_backend;

/* NULL with an error when the device's backend is not built or present. */
const dl_backend *dl_backend_get(dl_device dev);
/* NULL with the one message for an (op, dtype) pair a device lacks:
 * "<fn>: not supported on <device> for <dtype>" (be NULL: its error stands) */
const dl_backend *dl_backend_unsupported(const char *fn, const dl_backend *be, dl_device dev, dl_dtype dt);
/* A family's kernel table (a member of dl_backend), or NULL with
 * "<fn>: not supported on <device>". */
const void *dl_backend_family(const char *fn, dl_device dev, size_t member_offset);
#define DL_KERNELS(fn, dev, member) \
  ((const struct dl_##member##_kernels *)dl_backend_family((fn), (dev), offsetof(dl_backend, member)))

static inline const dl_backend *dl_backend_of(const dl_tensor *t) { return dl_backend_get(t->storage->device); }

/* The backend that runs op in dtype dt on dev, or NULL with the one message
 * for it. Inline: every element-wise op asks. */
static inline const dl_backend *dl_backend_for_op(const char *fn, dl_op op, dl_device dev, dl_dtype dt) {
  const dl_backend *be = dev.type == DL_CPU ? &dl_cpu_backend : dl_backend_get(dev);
  if (be && be->supports_op(op, dt)) return be;
  return dl_backend_unsupported(fn, be, dev, dt);
}

#endif
