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
/* its gradients from gy by the composed formulas, as differentiable ops
 * (what its node records under create_graph); each of gx, gw, gb a NULL
 * pointer when not wanted (gb only with has_bias). 0, or -1 */
int dl_ag_convolution_grads(dl_tensor *gy, dl_tensor *x, dl_tensor *w, bool has_bias, const dl_conv_params *c,
                            dl_tensor **gx, dl_tensor **gw, dl_tensor **gb);
/* A 2-D convolution, then batch norm in training mode (batch statistics;
 * running_mean / running_var optional, together, moved by momentum), a
 * ReLU and with pool 2x2 stride-2 max pooling (grad_conv_block.c): what
 * nn.Sequential runs for Conv2d, BatchNorm2d, ReLU (and MaxPool2d(2)).
 * The values and gradients of those ops, which it runs one by one with
 * tangents or where the device has no blocked kernels
 * (ops/dl_conv_block.h); differentiable in x, w, b, bn_w, bn_b */
dl_tensor *dl_ag_conv_block(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *params, dl_tensor *bn_w,
                            dl_tensor *bn_b, dl_tensor *running_mean, dl_tensor *running_var, double momentum,
                            double eps, bool pool);
/* max pooling (dl_op_max_pool), differentiable in x; *idx as there */
dl_tensor *dl_ag_max_pool(dl_tensor *x, const dl_window *w, dl_tensor **idx);
/* its input gradient: g (the output's) added at idx into an input of shape
 * (ndim dims); one kernel pass, or with grad mode on (create_graph) a
 * differentiable scatter */
dl_tensor *dl_ag_max_pool_grad(dl_tensor *g, dl_tensor *idx, const int64_t *shape, int ndim);

#endif
