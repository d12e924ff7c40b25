/* dl_ag_index.h — differentiable indexing, joining and sorting
 * (grad_index.c). Same arguments as the dl_op_* front-ends they wrap (0-based
 * dims, 1-based int64 index tensors); they record a node when a float input
 * requires grad and carry tangents in forward mode. Index outputs (sort's and
 * topk's indices) never record. */
#ifndef DL_AG_INDEX_H
#define DL_AG_INDEX_H

#include "../ops/dl_index.h"

/* joining */
dl_tensor *dl_ag_cat(dl_tensor *const *ts, int n, int dim);
dl_tensor *dl_ag_stack(dl_tensor *const *ts, int n, int dim);

/* gathering */
dl_tensor *dl_ag_index_select(dl_tensor *t, int dim, dl_tensor *idx);
dl_tensor *dl_ag_gather(dl_tensor *t, int dim, dl_tensor *idx);
dl_tensor *dl_ag_masked_select(dl_tensor *t, dl_tensor *mask);

/* scattering: the plain form returns a new tensor (self is untouched), the
 * in-place form (trailing _) writes self, rebases its history and returns
 * 0 or -1 with an error */
dl_tensor *dl_ag_scatter(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
int dl_ag_scatter_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
dl_tensor *dl_ag_scatter_value(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value);
int dl_ag_scatter_value_(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value);
dl_tensor *dl_ag_scatter_add(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
int dl_ag_scatter_add_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
dl_tensor *dl_ag_index_add(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar alpha);
int dl_ag_index_add_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar alpha);
dl_tensor *dl_ag_index_copy(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
int dl_ag_index_copy_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
dl_tensor *dl_ag_index_fill(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value);
int dl_ag_index_fill_(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value);

/* reordering */
dl_tensor *dl_ag_flip(dl_tensor *t, const int *dims, int n);
dl_tensor *dl_ag_roll(dl_tensor *t, const int64_t *shifts, int nshifts, const int *dims, int ndims);
dl_tensor *dl_ag_tri(dl_tensor *t, int64_t k, bool upper);

/* sorting: values are differentiable, indices are not */
int dl_ag_sort(dl_tensor *t, int dim, bool descending, dl_tensor **values, dl_tensor **indices);
int dl_ag_topk(dl_tensor *t, int64_t k, int dim, bool largest, bool sorted, dl_tensor **values,
               dl_tensor **indices);


#endif
