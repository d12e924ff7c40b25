/* dl_autograd_ops.h — the differentiable front-ends the autograd engine
 * itself uses (gradient accumulation, reducing broadcast gradients). They
 * record when grad mode is on, so create_graph works through them. */
#ifndef DL_AUTOGRAD_OPS_H
#define DL_AUTOGRAD_OPS_H

#include "../dl_tensor.h"

/* a + b with broadcasting (grad_ewise.c) */
dl_tensor *dl_ag_add(dl_tensor *a, dl_tensor *b);
/* sum over dims (0-based, sorted, unique) with keepdim (grad_reduce.c) */
dl_tensor *dl_ag_sum_dims(dl_tensor *t, const int *dims, int ndims, bool keepdim);
/* reshape (grad_view.c) */
dl_tensor *dl_ag_reshape(dl_tensor *t, const int64_t *shape, int ndim);

#endif
