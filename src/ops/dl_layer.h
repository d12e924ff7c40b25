/* dl_layer.h — fused layer ops: radial basis functions, batch
 * normalisation and dropout. Front-ends (dl_layer.c) check shapes, dtypes
 * and devices, make operands contiguous and allocate outputs; the kernels
 * of struct dl_layer_kernels do the arithmetic. Dims are 0-based. */
#ifndef DL_OPS_LAYER_H
#define DL_OPS_LAYER_H

#include "../dl_backend.h"

/* Every tensor a kernel sees is contiguous, of one float dtype (float32 or
 * float64) and on one device; optional ones may be NULL. Batch-norm tensors
 * are viewed as [N, C, L] (L = 1 for 2-D input); per-channel ones are [C]. */
struct dl_layer_kernels {
  /* out [N, n + bias_unit]: column 0 is 1 when bias_unit, then
   * exp(-|x_i - c_j|^2 / (2 s_j^2)); x [N, D], centers [n, D], sigmas [n],
   * scratch [2n] */
  int (*rbf_forward)(dl_tensor *out, const dl_tensor *x, const dl_tensor *centers, const dl_tensor *sigmas,
                      dl_tensor *scratch, bool bias_unit);
  /* RBF gradients from the output gradient g and the output phi (both
   * [N, n + bias_unit]), with A = g phi / s^2 in scratch [N, n]:
   * gx = A @ c - rowsum(A) x, gc = A^T @ x - colsum(A) c,
   * gs = -2 / s colsum(g phi ln phi) (= colsum(g phi D) / s^3); each output optional */
  int (*rbf_backward)(dl_tensor *gx, dl_tensor *gc, dl_tensor *gs, const dl_tensor *g, const dl_tensor *phi,
                       const dl_tensor *x, const dl_tensor *centers, const dl_tensor *sigmas, dl_tensor *scratch,
                       bool bias_unit);
  /* per channel: mean, biased var and 1/sqrt(var + eps) */
  int (*bn_stats)(const dl_tensor *x, int64_t N, int64_t C, int64_t L, dl_tensor *mean, dl_tensor *var,
                   dl_tensor *invstd, double eps);
  /* out = (x - mean) a + bias with a = invstd * weight (weight, bias
   * optional; the product and sum one fused multiply-add), then with relu
   * max(out, 0) (NaN stays NaN) */
  int (*bn_apply)(dl_tensor *out, const dl_tensor *x, int64_t N, int64_t C, int64_t L, const dl_tensor *mean,
                   const dl_tensor *invstd, const dl_tensor *weight, const dl_tensor *bias, bool relu);
  /* training-mode gradients: gx = w invstd (g - mean(g) - xhat mean(g xhat)),
   * gw = sum(g xhat), gb = sum(g); each output optional. g = gy, or with
   * relu gy where bn_apply's pre-activation (recomputed alike) is > 0 or
   * NaN, else 0 */
  int (*bn_backward)(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                      int64_t N, int64_t C, int64_t L, const dl_tensor *mean, const dl_tensor *invstd,
                      const dl_tensor *weight, const dl_tensor *bias, bool relu);
  /* LSTM cell, per row of B: gates [B, 4H] pre-activations in PyTorch's
   * order i, f, g, o, c [B, H]: c1 = sig(f) c + sig(i) tanh(g) and
   * h = sig(o) tanh(c1), into h and c1 [B, H] */
  int (*lstm_cell)(dl_tensor *h, dl_tensor *c1, const dl_tensor *gates, const dl_tensor *c);
  /* its gradients from gh, gc1 (of h and c1, both given): dgates [B, 4H], dc [B, H] */
  int (*lstm_cell_backward)(dl_tensor *dgates, dl_tensor *dc, const dl_tensor *gh, const dl_tensor *gc1,
                             const dl_tensor *gates, const dl_tensor *c, const dl_tensor *c1);
  /* GRU cell: gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh [B, 3H] (r, z, n),
   * h [B, H]: r = sig(gi_r + gh_r), z = sig(gi_z + gh_z),
   * n = tanh(gi_n + r gh_n), h1 = n + z (h - n) */
  int (*gru_cell)(dl_tensor *h1, const dl_tensor *gi, const dl_tensor *gh, const dl_tensor *h);
  /* its gradients from g (of h1): dgi, dgh [B, 3H], dh [B, H] */
  int (*gru_cell_backward)(dl_tensor *dgi, dl_tensor *dgh, dl_tensor *dh, const dl_tensor *g, const dl_tensor *gi,
                            const dl_tensor *gh, const dl_tensor *h);
  /* attention weights: x seen as rows of S (R = numel / S rows), row r the
   * query r % L: y = softmax(scale x) over the row, with causal the columns
   * j > r % L left out (0) */
  int (*attn_softmax)(dl_tensor *y, const dl_tensor *x, int64_t L, int64_t S, double scale, bool causal);
  /* gx = scale y (g - sum(g y)) per row of S */
  int (*attn_softmax_backward)(dl_tensor *gx, const dl_tensor *g, const dl_tensor *y, int64_t S, double scale);
  /* Optional (NULL: the autograd front-end composes layer norm from
   * element-wise ops). x as R rows of N: mean, rstd [R] (rstd =
   * 1 / sqrt(biased var + eps)) and y = (x - mean) rstd w + b, w and b [N]
   * optional */
  int (*layer_norm)(dl_tensor *y, dl_tensor *mean, dl_tensor *rstd, const dl_tensor *x, int64_t R, int64_t N,
                    const dl_tensor *w, const dl_tensor *b, double eps);
  /* gx = rstd (gy - mean(gy) - xhat mean(gy xhat)) per row with gy = g w,
   * gw = sum(g xhat), gb = sum(g) over the rows; each output optional */
  int (*layer_norm_backward)(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *g, const dl_tensor *x,
                             const dl_tensor *mean, const dl_tensor *rstd, const dl_tensor *w, int64_t R, int64_t N);
  /* Optional (NULL: the front-end composes batch norm + ReLU and max
   * pooling). x [N, C, H, W], H and W >= 2: out [N, C, H / 2, W / 2] the
   * max of each 2x2 window (stride 2) of bn_apply's values with relu;
   * the first maximum, a NaN wins (the last), as max_pool's. With tap and
   * xs (both or neither, [N, C, H / 2, W / 2]; tap uint8, xs x's dtype),
   * each window's winner for the backward: tap = its tap (0..3, row-major
   * in the window) + 4 when the ReLU passes its gradient, xs = its x */
  int (*bn_relu_pool)(dl_tensor *out, dl_tensor *tap, dl_tensor *xs, const dl_tensor *x, int64_t N, int64_t C,
                      int64_t H, int64_t W, const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight,
                      const dl_tensor *bias);
  /* its training-mode gradients from gp [N, C, H / 2, W / 2] and the
   * forward's tap and xs: bn_backward's with g = gp at each window's
   * winner where the ReLU passes it, 0 elsewhere */
  int (*bn_relu_pool_backward)(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gp, const dl_tensor *x,
                               const dl_tensor *tap, const dl_tensor *xs, int64_t N, int64_t C, int64_t H, int64_t W,
                               const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight);
  /* Optional (NULL: none; only with the conv table's c16 entries). Batch
   * norm's training pass + ReLU (+ with pool bn_relu_pool's 2x2 pooling)
   * of float32 y in blocks of 16 channels, [N, C / 16, H, W, 16] (C a
   * multiple of 16; dl_conv.h conv_forward_c16's output): mean, var
   * (biased), invstd [C] the batch statistics, out the plain
   * [N, C, H, W] (pooled: [N, C, H / 2, W / 2]) output; with pool, tap and
   * xs as bn_relu_pool's record but blocked, [N, C / 16, H / 2, W / 2, 16] */
  int (*bn_relu_c16)(dl_tensor *out, dl_tensor *tap, dl_tensor *xs, dl_tensor *mean, dl_tensor *var,
                     dl_tensor *invstd, const dl_tensor *y, int64_t N, int64_t C, int64_t H, int64_t W,
                     const dl_tensor *weight, const dl_tensor *bias, double eps, bool pool);
  /* its gradients from g (out's, plain): gy blocked as y, gw, gb [C]; each
   * optional. Without pool the ReLU's mask is recomputed from y */
  int (*bn_relu_c16_backward)(dl_tensor *gy, dl_tensor *gw, dl_tensor *gb, const dl_tensor *g, const dl_tensor *y,
                              const dl_tensor *tap, const dl_tensor *xs, int64_t N, int64_t C, int64_t H, int64_t W,
                              const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight,
                              const dl_tensor *bias, bool pool);
};

extern const struct dl_layer_kernels dl_cpu_layer;

/* ---- front-ends (new references; NULL / -1 with an error) ---- */

/* RBF features of x [N, D] for centers [n, D] and widths sigmas [n]:
 * [N, n], or [N, n + 1] with a constant-1 first column when bias_unit. */
dl_tensor *dl_op_rbf(dl_tensor *x, dl_tensor *centers, dl_tensor *sigmas, bool bias_unit);
/* Its gradients (fused) from the output gradient g and the output out;
 * gx/gc/gs NULL pointers skip them. 0 ok, -1 with an error. */
int dl_op_rbf_backward(dl_tensor *g, dl_tensor *out, dl_tensor *x, dl_tensor *centers, dl_tensor *sigmas,
                    bool bias_unit, dl_tensor **gx, dl_tensor **gc, dl_tensor **gs);

/* Batch norm of x [N, C] or [N, C, L]. training: batch statistics (biased
 * variance), and when running_mean/running_var are given they move by
 * momentum towards the batch mean and unbiased variance; otherwise the
 * running statistics (required) normalise. weight, bias, running_* may be
 * NULL. *save_mean / *save_invstd (may be NULL pointers) receive the [C]
 * statistics used. 0 ok, -1 with an error. */
int dl_op_batch_norm(dl_tensor *x, dl_tensor *weight, dl_tensor *bias, dl_tensor *running_mean,
                  dl_tensor *running_var, bool training, double momentum, double eps, dl_tensor **out,
                  dl_tensor **save_mean, dl_tensor **save_invstd);
/* The running statistics' training update from the batch's mean and
 * biased var [C] over M values a channel: running = (1 - momentum)
 * running + momentum stat, the variance made unbiased (var is scaled in
 * place by M / (M - 1)). 0 ok, -1 with an error. */
int dl_batch_norm_update_running(dl_tensor *running_mean, dl_tensor *running_var, dl_tensor *mean, dl_tensor *var,
                                 double M, double momentum);
/* what runs after the normalisation, in the same pass */
typedef enum {
  DL_BN_PLAIN,
  DL_BN_RELU,       /* a ReLU */
  DL_BN_RELU_POOL2, /* a ReLU, then 2x2 stride-2 max pooling (bn_relu_pool): x [N, C, H, W] */
} dl_bn_epilogue;
/* whether x's backend runs DL_BN_RELU_POOL2 on x (a float [N, C, H, W], H
 * and W >= 2); otherwise callers compose it */
bool dl_batch_norm_pool_fused(const dl_tensor *x);
/* dl_op_batch_norm followed by epilogue ep in the same pass; with
 * DL_BN_RELU_POOL2, winners (a NULL pointer, or an array of 2) receives
 * the pooling's winners for the backward (the kernel's tap and xs) */
int dl_op_batch_norm_ex(dl_tensor *x, dl_tensor *weight, dl_tensor *bias, dl_tensor *running_mean,
                        dl_tensor *running_var, bool training, double momentum, double eps, dl_bn_epilogue ep,
                        dl_tensor **out, dl_tensor **save_mean, dl_tensor **save_invstd, dl_tensor **winners);
/* The normalisation alone with given [C] statistics (the bn_apply kernel):
 * the same values as dl_op_batch_norm_ex's output for them. */
dl_tensor *dl_op_batch_norm_apply(dl_tensor *x, dl_tensor *mean, dl_tensor *invstd, dl_tensor *weight,
                                  dl_tensor *bias, bool relu);
/* The training-mode gradients (fused; with an epilogue, of the whole
 * (bias given), gy the epilogue's output gradient, with pooling the
 * forward's winners); gx/gw/gb NULL pointers skip them. */
int dl_op_batch_norm_backward(dl_tensor *gy, dl_tensor *x, dl_tensor *mean, dl_tensor *invstd, dl_tensor *weight,
                              dl_tensor *bias, dl_bn_epilogue ep, dl_tensor *const *winners, dl_tensor **gx,
                              dl_tensor **gw, dl_tensor **gb);

/* The recurrent cells (the kernels' formulas above), each one pass over
 * its rows; operands of one float dtype and device, any strides. */
int dl_op_lstm_cell(dl_tensor *gates, dl_tensor *c, dl_tensor **h, dl_tensor **c1);
int dl_op_lstm_cell_backward(dl_tensor *gh, dl_tensor *gc1, dl_tensor *gates, dl_tensor *c, dl_tensor *c1,
                             dl_tensor **dgates, dl_tensor **dc);
dl_tensor *dl_op_gru_cell(dl_tensor *gi, dl_tensor *gh, dl_tensor *h);
int dl_op_gru_cell_backward(dl_tensor *g, dl_tensor *gi, dl_tensor *gh, dl_tensor *h, dl_tensor **dgi,
                            dl_tensor **dgh, dl_tensor **dh);

/* Attention weights from scores [..., L, S] (at least 2-D): softmax over
 * the last dim of scale * scores; with causal, key j > query i is left out
 * (weight 0; top-left aligned when L != S), with no mask tensor. */
dl_tensor *dl_op_attn_softmax(dl_tensor *scores, double scale, bool causal);
/* its gradient (and tangent): scale y (g - sum(g y)) over the last dim */
dl_tensor *dl_op_attn_softmax_backward(dl_tensor *g, dl_tensor *y, double scale);

/* Inverted dropout of a float tensor: each element kept with probability
 * 1 - p (one Philox word an element, dl_random.h) and scaled by
 * 1 / (1 - p); *mask gets which were kept (uint8 0/1). p in [0, 1]; p = 1
 * gives zeros. The gradient is dl_op_dropout_backward(g, mask, 1 / (1 - p)). */
int dl_op_dropout(dl_tensor *x, double p, dl_tensor **out, dl_tensor **mask);

/* Layer norm over the last dims of x that hold N elements (w, b: N
 * elements each, optional), with the backend's kernel: *y, *mean, *rstd
 * ([R], R = numel / N) new tensors, 0; 1 when the backend has no kernel
 * (nothing done); -1 error. The autograd front-end checks the arguments. */
int dl_op_layer_norm(dl_tensor *x, int64_t N, dl_tensor *w, dl_tensor *b, double eps, dl_tensor **y, dl_tensor **mean,
                     dl_tensor **rstd);
/* its gradients; gx, gw, gb NULL when not wanted (new tensors: gx of x's
 * shape, gw and gb [N]); gw needs w */
int dl_op_layer_norm_backward(dl_tensor *g, dl_tensor *x, dl_tensor *mean, dl_tensor *rstd, dl_tensor *w, int64_t N,
                              dl_tensor **gx, dl_tensor **gw, dl_tensor **gb);

#endif
