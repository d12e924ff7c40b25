/* dl_ag_view.h — differentiable views and copies (grad_view.c). Same
 * arguments as the dl_tensor_* functions they wrap; they record a node when
 * an input requires grad and carry tangents in forward mode. */
#ifndef DL_AG_VIEW_H
#define DL_AG_VIEW_H

#include "../dl_tensor.h"

dl_tensor *dl_ag_view(dl_tensor *t, const int64_t *shape, int ndim);
dl_tensor *dl_ag_reshape(dl_tensor *t, const int64_t *shape, int ndim);
dl_tensor *dl_ag_transpose(dl_tensor *t, int d0, int d1);
/* t(): a matrix transposed; fewer dims: the tensor itself (ndim <= 2) */
dl_tensor *dl_ag_t(dl_tensor *t);
dl_tensor *dl_ag_permute(dl_tensor *t, const int *perm, int n);
dl_tensor *dl_ag_narrow(dl_tensor *t, int dim, int64_t start, int64_t len);
dl_tensor *dl_ag_select(dl_tensor *t, int dim, int64_t index);
dl_tensor *dl_ag_squeeze(dl_tensor *t, int dim);
dl_tensor *dl_ag_unsqueeze(dl_tensor *t, int dim);
dl_tensor *dl_ag_expand(dl_tensor *t, const int64_t *shape, int ndim);
dl_tensor *dl_ag_flatten(dl_tensor *t, int start, int end);
dl_tensor *dl_ag_unfold(dl_tensor *t, int dim, int64_t size, int64_t step);
dl_tensor *dl_ag_alias(dl_tensor *t);
dl_tensor *dl_ag_clone(dl_tensor *t);
dl_tensor *dl_ag_contiguous(dl_tensor *t);
dl_tensor *dl_ag_to_dtype(dl_tensor *t, dl_dtype dt);
dl_tensor *dl_ag_to_device(dl_tensor *t, dl_device dev);
/* In place, with history: dst takes src's values (broadcast). */
int dl_ag_copy_(dl_tensor *dst, dl_tensor *src);
int dl_ag_fill_(dl_tensor *dst, dl_scalar v);
/* zeros of `shape` with g written at [start, start+len) along dim: the
 * backward of narrow (and, unsqueezed, of select) */
dl_tensor *dl_ag_embed(dl_tensor *g, const int64_t *shape, int ndim, int dim, int64_t start);


/* For the engine's backward: true when n is a narrow or select node (a
 * region cut out of its one input); dl_ag_view_region gives that region
 * of `full`, a tensor shaped as the input (a view; NULL on error). */
struct dl_node;
bool dl_ag_cuts_region(const struct dl_node *n);
dl_tensor *dl_ag_view_region(const struct dl_node *n, dl_tensor *full);

#endif
