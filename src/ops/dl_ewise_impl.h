/* dl_ewise_impl.h — what the element-wise front-end files share: operand
 * preparation (device check, broadcasting, casting) and in-place targets. */
#ifndef DL_EWISE_IMPL_H
#define DL_EWISE_IMPL_H

#include "../dl_backend.h"
#include "dl_ewise.h"

#define DL_EWISE_MAXIN 4

typedef struct {
  int n;
  dl_operand op[DL_EWISE_MAXIN];   /* cast to their compute dtype, expanded */
  dl_tensor *hold[DL_EWISE_MAXIN]; /* references owned by the prep */
  int64_t shape[DL_MAX_DIMS];      /* the broadcast shape */
  int ndim;
  dl_device dev;
  const struct dl_ewise_kernels *k;
} dl_ewise_prep;

/* Checks devices, asks the device whether it runs op in the compute dtype
 * cts[n-1], broadcasts the tensor inputs, casts input k to cts[k] and
 * expands it to the broadcast shape. With self (in-place), the broadcast
 * shape must be self's, and an input that overlaps self without being the
 * same view is copied first. 0 ok; -1 with an error naming fn. */
int dl_ewise_prep_init(dl_ewise_prep *p, const char *fn, dl_op op, int n, const dl_operand *in, const dl_dtype *cts,
                       const dl_tensor *self);
void dl_ewise_prep_free(dl_ewise_prep *p);

/* In-place: checks that a result of dtype rt can be cast into self and that
 * self has no broadcast (self-overlapping) dims. */
int dl_ewise_check_inplace(const char *fn, const dl_tensor *self, dl_dtype rt);
/* Where an in-place kernel writes: self itself when it holds dtype ot and
 * nothing forces a temporary, else a fresh tensor of self's shape. */
dl_tensor *dl_ewise_inplace_target(dl_tensor *self, dl_dtype ot, bool force_tmp);
/* Copies target into self when they differ, releases target, bumps self's
 * version. */
void dl_ewise_inplace_finish(dl_tensor *self, dl_tensor *target);

/* The ewise kernels that run op in compute dtype ct on dev, or NULL with
 * the one "not supported" error naming fn. */
static inline const struct dl_ewise_kernels *dl_ewise_kernels_for(const char *fn, dl_op op, dl_device dev,
                                                                  dl_dtype ct) {
  const dl_backend *be = dl_backend_for_op(fn, op, dev, ct);
  return be ? be->ewise : NULL;
}
/* After an ewise kernel returned rc: a failed kernel's error becomes the
 * op's ("ZeroDivisionError" for integer division by zero); 0 or -1. */
int dl_ewise_fail(const char *fn, int rc);
static inline int dl_ewise_status(const char *fn, int rc) { return rc == DL_KERNEL_OK ? 0 : dl_ewise_fail(fn, rc); }

#endif
