/* dl_loss.h — fused losses: cross-entropy on logits (log-softmax + gather
 * + weighting + label smoothing in one pass, without materialising
 * probabilities) and NLL on log-probabilities, forward and backward; and
 * the element-wise regression losses (MSE, L1, smooth L1) as one pass each
 * way. Class indices are 1-based int64 (dlua's index convention).
 *
 * Layout: the front-end views the input as [N, C, D] (D = product of the
 * trailing dims d1..., 1 for [N, C] and for an unbatched [C]) and the target
 * as [N, D]. Per element i the loss is
 *   l_i = -sum_c q_ic * logp_ic,
 *   q_ic = (1 - s) w_{y_i} [c == y_i] + (s / C) w_c   (0 when y_i is ignored)
 * with logp = log_softmax(x) (cross-entropy) or x itself (NLL, s = 0), w the
 * class weights (ones when absent) and s the label smoothing. Its gradient
 * is p_ic * sum_c q_ic - q_ic (cross-entropy) or -q_ic (NLL). The mean
 * reduction divides by sum_i w_{y_i} over non-ignored elements, as PyTorch. */
#ifndef DL_OPS_LOSS_H
#define DL_OPS_LOSS_H

#include "../dl_backend.h"

typedef enum { DL_REDUCTION_NONE, DL_REDUCTION_MEAN, DL_REDUCTION_SUM } dl_reduction;

/* ---- the kernel interface ---- */

typedef struct {
  const dl_tensor *input;  /* [N, C, D] contiguous, float32 or float64 */
  const dl_tensor *target; /* [N, D] contiguous int64, 1-based */
  const dl_tensor *weight; /* [C] contiguous, input's dtype, or NULL */
  dl_tensor *loss;         /* [N, D] contiguous, input's dtype */
  dl_tensor *wt;           /* [N, D]: w_{y_i} (0 when ignored), or NULL */
  dl_tensor *lse;          /* [N, D]: logsumexp of each row (log_softmax), or NULL */
  int64_t ignore_index;
  double smoothing;
  bool log_softmax; /* cross-entropy; false: NLL */
  /* set by the kernel: a target outside 1..C that is not ignore_index */
  bool bad;
  int64_t bad_value;
} dl_class_loss_call;

typedef struct {
  dl_tensor *grad;         /* [N, C, D] contiguous, input's dtype */
  const dl_tensor *input;  /* as in the forward call */
  const dl_tensor *target;
  const dl_tensor *weight;
  const dl_tensor *lse;    /* [N, D] from the forward (softmax_term) */
  const dl_tensor *gout;   /* [N, D] contiguous, or one element broadcast */
  int64_t ignore_index;
  double smoothing;
  bool softmax_term; /* add p * sum(q) (cross-entropy); false: -q only */
} dl_class_loss_backward_call;

/* element-wise regression losses of d = x - t */
typedef enum {
  DL_LOSS_MSE,       /* d^2; gradient 2 d */
  DL_LOSS_L1,        /* |d|; gradient sign(d) */
  DL_LOSS_SMOOTH_L1, /* |d| < beta: d^2 / (2 beta), else |d| - beta / 2; gradient clamp(d / beta, -1, 1) */
} dl_pointwise_loss;

struct dl_loss_kernels {
  int (*class_forward)(dl_class_loss_call *c);
  int (*class_backward)(const dl_class_loss_backward_call *c);
  /* out = loss(x - t); one shape and one float dtype, any strides */
  int (*pointwise)(dl_tensor *out, const dl_tensor *x, const dl_tensor *t, dl_pointwise_loss kind, double beta);
  /* gx = g * loss'(x - t); g expanded to x's shape (0 strides allowed) */
  int (*pointwise_backward)(dl_tensor *gx, const dl_tensor *g, const dl_tensor *x, const dl_tensor *t,
                             dl_pointwise_loss kind, double beta);
};

/* ---- front-ends ----
 * fn names the op in errors ("cross_entropy", "nll_loss"). input: [C],
 * [N, C] or [N, C, d1, ...] float; target: int64 of shape [], [N] or
 * [N, d1, ...]; weight: [C] or NULL. Returns the loss (target's shape for
 * DL_REDUCTION_NONE, else 0-d), or NULL with an error. When lse/wsum are
 * given, *lse receives the row logsumexps (cross-entropy) and *wsum the
 * mean's denominator (0-d; DL_REDUCTION_MEAN only), for the backward. */
dl_tensor *dl_op_class_loss(const char *fn, const dl_tensor *input, const dl_tensor *target,
                            const dl_tensor *weight, int64_t ignore_index, double smoothing, bool log_softmax,
                            dl_reduction red, dl_tensor **lse, dl_tensor **wsum);
/* d loss / d input for the upstream gradient gout (target's shape, or one
 * element, already divided by wsum for the mean). softmax_term false gives
 * -q * gout (NLL's gradient; for cross-entropy the part without p). */
dl_tensor *dl_op_class_loss_backward(const char *fn, const dl_tensor *gout, const dl_tensor *input,
                                     const dl_tensor *target, const dl_tensor *weight, const dl_tensor *lse,
                                     int64_t ignore_index, double smoothing, bool softmax_term);

/* fn names the op ("mse_loss", ...). input and target: float tensors of one
 * shape (computed in their promoted dtype); beta > 0 for smooth L1. Returns
 * the loss (input's shape for DL_REDUCTION_NONE, else 0-d). */
/* float input and target of one shape on one device; 0, or -1 with an
 * error naming fn and both shapes */
int dl_loss_check_pair(const char *fn, const dl_tensor *x, const dl_tensor *t);
dl_tensor *dl_op_pointwise_loss(const char *fn, const dl_tensor *input, const dl_tensor *target,
                                dl_pointwise_loss kind, double beta, dl_reduction red);
/* g * loss'(input - target) in the promoted dtype; g: the loss's shape
 * (DL_REDUCTION_NONE) or one element, which the mean divides by numel */
dl_tensor *dl_op_pointwise_loss_backward(const char *fn, const dl_tensor *g, const dl_tensor *input,
                                         const dl_tensor *target, dl_pointwise_loss kind, double beta,
                                         dl_reduction red);

/* "mean", "sum", "none" -> 0 and *out; -1 otherwise (no error set) */
int dl_reduction_parse(const char *s, dl_reduction *out);

#endif
