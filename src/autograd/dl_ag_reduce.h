/* dl_ag_reduce.h — differentiable reductions and scans (grad_reduce.c).
 * Same arguments as the dl_op_* front-ends they wrap (0-based dims; ndims
 * == 0: every dim); they record a node when a floating-point input requires
 * grad and carry tangents in forward mode. Indices (max_dim's) never record. */
#ifndef DL_AG_REDUCE_H
#define DL_AG_REDUCE_H

#include "../ops/dl_reduce.h"

dl_tensor *dl_ag_sum(dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_ag_mean(dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_ag_prod(dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_ag_var(dl_tensor *t, const int *dims, int ndims, double correction, bool keepdim);
dl_tensor *dl_ag_std(dl_tensor *t, const int *dims, int ndims, double correction, bool keepdim);
dl_tensor *dl_ag_norm(dl_tensor *t, double p, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_ag_logsumexp(dl_tensor *t, const int *dims, int ndims, bool keepdim);
/* the gradient is shared evenly among tied extremes */
dl_tensor *dl_ag_amax(dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_ag_amin(dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_ag_max(dl_tensor *t);
dl_tensor *dl_ag_min(dl_tensor *t);
/* along dim: the gradient goes to the element the index names */
int dl_ag_max_dim(dl_tensor *t, int dim, bool keepdim, dl_tensor **values, dl_tensor **indices);
int dl_ag_min_dim(dl_tensor *t, int dim, bool keepdim, dl_tensor **values, dl_tensor **indices);
dl_tensor *dl_ag_cumsum(dl_tensor *t, int dim);
dl_tensor *dl_ag_cumprod(dl_tensor *t, int dim);


#endif
