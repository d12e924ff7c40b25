/* dl_ag_conv.h — differentiable im2col and col2im (grad_conv.c): the
 * dl_conv.h front-ends plus their backward and jvp rules. */
#ifndef DL_AG_CONV_H
#define DL_AG_CONV_H

#include "../ops/dl_conv.h"

dl_tensor *dl_ag_im2col(dl_tensor *x, const dl_window *w);
dl_tensor *dl_ag_col2im(dl_tensor *cols, const dl_window *w, const int64_t *size);
/* x [N, C, *S] with w [O, C / groups, *k] and b [O] or NULL (params'
 * kernel is taken from w): fused where the device has it (float32 on the
 * CPU with oneDNN), else composed of im2col and GEMMs */
dl_tensor *dl_ag_convolution(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *params);
/* max pooling (dl_op_max_pool), differentiable in x; *idx as there */
dl_tensor *dl_ag_max_pool(dl_tensor *x, const dl_window *w, dl_tensor **idx);
/* its input gradient: g (the output's) added at idx into an input of shape
 * (ndim dims); one kernel pass, or with grad mode on (create_graph) a
 * differentiable scatter */
dl_tensor *dl_ag_max_pool_grad(dl_tensor *g, dl_tensor *idx, const int64_t *shape, int ndim);

#endif
