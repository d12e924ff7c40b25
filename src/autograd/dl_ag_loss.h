/* dl_ag_loss.h — differentiable losses (grad_loss.c).
 *
 * MSE, L1 and smooth L1, cross-entropy with class indices and NLL run the
 * fused kernels of src/ops/dl_loss.h: one pass forward, and a first-order
 * backward of one fused pass; under create_graph their rules are composed
 * from differentiable ops, so higher derivatives follow. Binary
 * cross-entropy has its own node with PyTorch's gradient formula
 * (x - t) / max(x (1 - x), 1e-12). BCE with logits and cross-entropy with
 * class probabilities (a float target of the input's shape) are
 * compositions of differentiable ops.
 *
 * Inputs and targets of the element-wise losses have one shape; weight and
 * pos_weight (NULL: none) broadcast to it. Every function returns the loss
 * (input's shape for DL_REDUCTION_NONE, else 0-d), or NULL with an error
 * that starts with the loss's name. */
#ifndef DL_AG_LOSS_H
#define DL_AG_LOSS_H

#include "../ops/dl_loss.h"

dl_tensor *dl_ag_mse_loss(dl_tensor *input, dl_tensor *target, dl_reduction red);
dl_tensor *dl_ag_l1_loss(dl_tensor *input, dl_tensor *target, dl_reduction red);
/* beta >= 0; beta == 0 is the L1 loss */
dl_tensor *dl_ag_smooth_l1_loss(dl_tensor *input, dl_tensor *target, double beta, dl_reduction red);
/* input in [0, 1]; logs clamped at -100 as PyTorch */
dl_tensor *dl_ag_binary_cross_entropy(dl_tensor *input, dl_tensor *target, dl_tensor *weight, dl_reduction red);
dl_tensor *dl_ag_binary_cross_entropy_with_logits(dl_tensor *input, dl_tensor *target, dl_tensor *weight,
                                                  dl_tensor *pos_weight, dl_reduction red);
/* target: int64 1-based class indices ([], [N] or [N, d1, ...]) or float
 * class probabilities (input's shape); weight: [C] or NULL */
dl_tensor *dl_ag_cross_entropy(dl_tensor *input, dl_tensor *target, dl_tensor *weight, int64_t ignore_index,
                               double label_smoothing, dl_reduction red);
/* input: log-probabilities; target: int64 1-based class indices */
dl_tensor *dl_ag_nll_loss(dl_tensor *input, dl_tensor *target, dl_tensor *weight, int64_t ignore_index,
                          dl_reduction red);

#endif
