/* dl_conv_block.h — a 2-D convolution, then batch norm's training pass, a
 * ReLU and optionally 2x2 stride-2 max pooling, as one op whose
 * convolution output stays in the backend's blocks of 16 channels between
 * the two (dl_conv.h conv_forward_c16, dl_layer.h bn_relu_c16): a CNN's
 * usual block without reordering that output, or its gradient, to
 * [N, C, H, W] and back. The autograd front-end (dl_ag_conv_block) runs
 * the ops one by one where this does not apply. */
#ifndef DL_OPS_CONV_BLOCK_H
#define DL_OPS_CONV_BLOCK_H

#include "dl_conv.h"

/* what the forward keeps for the backward (new references) */
typedef struct {
  dl_tensor *y;             /* the convolution's output, [N, O / 16, Ho, Wo, 16] */
  dl_tensor *mean, *invstd; /* the batch statistics [O] */
  dl_tensor *tap, *xs;      /* with pooling, the windows' record (dl_layer.h bn_relu_c16) */
  dl_tensor *xb;            /* or NULL: the input as the convolution read it, [N, C / 16, H, W, 16] */
} dl_conv_block_saved;

void dl_conv_block_saved_release(dl_conv_block_saved *s);

/* Whether x's backend runs the block: float32, groups 1, O a multiple of
 * 16 where its convolution computes in those blocks, out (the
 * convolution's output size, dl_conv_check's) at least 2x2 with pooling,
 * more than one value a channel without; bn_w, bn_b, running_mean,
 * running_var each NULL or a float32 [O] on x's device. p checked
 * (dl_conv_check). 0 when not, else the conv table's conv_c16 flags
 * (DL_CONV_C16_OUT set), for dl_op_conv_block. */
int dl_conv_block_fused(const dl_tensor *x, const dl_tensor *w, const dl_tensor *b, const dl_conv_params *p,
                        const int64_t *out, const dl_tensor *bn_w, const dl_tensor *bn_b,
                        const dl_tensor *running_mean, const dl_tensor *running_var, bool pool);
/* The block where dl_conv_block_fused gave c16 (its flags): *out
 * [N, O, Ho, Wo] (pooled: halved) and *saved; running statistics
 * (optional, together) move by momentum. 0, or -1 with an error. */
int dl_op_conv_block(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *p, int c16, dl_tensor *bn_w,
                     dl_tensor *bn_b, dl_tensor *running_mean, dl_tensor *running_var, double momentum, double eps,
                     bool pool, dl_tensor **out, dl_conv_block_saved *saved);
/* Its gradients from g (out's): each of gx, gw, gb (the convolution's),
 * gbn_w, gbn_b a NULL pointer when not wanted; has_bias whether the
 * convolution has a bias. */
int dl_op_conv_block_backward(dl_tensor *g, dl_tensor *x, dl_tensor *w, bool has_bias, const dl_conv_params *p,
                              dl_tensor *bn_w, dl_tensor *bn_b, const dl_conv_block_saved *s, bool pool,
                              dl_tensor **gx, dl_tensor **gw, dl_tensor **gb, dl_tensor **gbn_w, dl_tensor **gbn_b);

#endif
