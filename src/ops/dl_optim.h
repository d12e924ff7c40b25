/* dl_optim.h — fused optimiser updates. One call updates one parameter in
 * place together with its state tensors, reading the gradient once: one
 * pass over memory and no temporaries. The update rules and their order of
 * operations are PyTorch 1.13's single-tensor implementations; everything
 * that depends only on the step count (bias corrections, the current lr) is
 * computed by the caller once per parameter and handed over as scalars.
 *
 * Per element, with g the gradient (negated when maximize) plus
 * weight_decay * p where the algorithm has coupled weight decay:
 *   SGD      b = first ? g : momentum b + (1 - dampening) g;
 *            p -= lr (nesterov ? g + momentum b : b)       (b only if momentum)
 *   Adagrad  s += g^2; p -= clr g / (sqrt(s) + eps)
 *   RMSprop  v = alpha v + (1 - alpha) g^2; [m = alpha m + (1 - alpha) g;
 *            v' = v - m^2]; a = sqrt(v') + eps;
 *            momentum ? (b = momentum b + g / a; p -= lr b) : p -= lr g / a
 *   Adam     (AdamW: p *= decay first) m = b1 m + (1 - b1) g;
 *            v = b2 v + (1 - b2) g^2; [vmax = max(vmax, v)];
 *            p -= step_size m / (sqrt(v or vmax) / bc2_sqrt + eps)
 *   Adamax   m = b1 m + (1 - b1) g; u = max(b2 u, |g| + eps); p -= clr m / u
 *   NAdam    m, v as Adam; d = sqrt(v / bc2) + eps;
 *            p += c_grad g / d; p += c_avg m / d
 *   Adadelta v = rho v + (1 - rho) g^2; dx = sqrt(u + eps) / sqrt(v + eps) g;
 *            u = rho u + (1 - rho) dx^2; p -= lr dx */
#ifndef DL_OPS_OPTIM_H
#define DL_OPS_OPTIM_H

#include "../dl_backend.h"

typedef enum {
  DL_OPTIM_SGD,
  DL_OPTIM_ADAGRAD,
  DL_OPTIM_RMSPROP,
  DL_OPTIM_ADAM, /* also AdamW: decay != 1, weight_decay = 0 */
  DL_OPTIM_ADAMAX,
  DL_OPTIM_NADAM,
  DL_OPTIM_ADADELTA,
  DL_OPTIM_NALGOS
} dl_optim_algo;

/* Scalars of one update; which ones are read depends on the algorithm. */
typedef struct {
  double lr;           /* SGD, RMSprop, Adadelta */
  double weight_decay; /* coupled decay (added to the gradient); 0: none */
  bool maximize;
  /* SGD */
  double momentum, dampening;
  bool nesterov, first; /* first: the momentum buffer is new (b = g) */
  /* Adagrad / Adamax: the step's lr; Adam: lr / bias_correction1 */
  double clr;
  double eps;
  /* RMSprop */
  double alpha;
  bool centered;
  /* Adam, Adamax, NAdam */
  double beta1, beta2;
  double bc2;      /* Adam: sqrt(bias_correction2); NAdam: bias_correction2 */
  double decay;    /* AdamW: 1 - lr * weight_decay (1: none) */
  bool amsgrad;
  double c_grad, c_avg; /* NAdam's two addcdiv coefficients */
  /* Adadelta */
  double rho;
} dl_optim_hp;

/* The scalars of update number `step` (1-based) that depend on the step
 * count: Adagrad's decayed lr, Adam's and Adamax's bias corrections,
 * NAdam's momentum schedule. base holds the group's settings (lr, betas);
 * lr_decay is Adagrad's, momentum_decay NAdam's. NAdam carries the running
 * product of its momentum factors in *mu_product (1 before the first step;
 * other algorithms may pass NULL). */
void dl_optim_hp_for_step(dl_optim_algo algo, dl_optim_hp *hp, double step, double lr_decay, double momentum_decay,
                          double *mu_product);

/* ---- the kernel interface ----
 * All tensors contiguous, of one float dtype and device, same numel. */
typedef struct {
  dl_tensor *param;
  dl_tensor *grad; /* read only */
  dl_tensor *s[3]; /* state, by algorithm (NULL when unused):
                      SGD {buf}; Adagrad {sum}; RMSprop {square_avg, grad_avg, buf};
                      Adam {exp_avg, exp_avg_sq, max_exp_avg_sq};
                      Adamax {exp_avg, exp_inf}; NAdam {exp_avg, exp_avg_sq};
                      Adadelta {square_avg, acc_delta} */
  const dl_optim_hp *hp;
} dl_optim_call;

/* step[algo] updates calls[0..n): the parameters of one group, each with
 * its own scalars (the step count may differ between parameters) */
struct dl_optim_kernels {
  int (*step[DL_OPTIM_NALGOS])(const dl_optim_call *calls, int n);
};

/* ---- front-end ----
 * dl_optim_check checks one call: param (float32/float64), grad and the
 * state tensors the algorithm needs (same shape, dtype and device; state
 * contiguous); it clears the slots the algorithm does not read. fn names
 * the optimiser and names[i] (or "state tensor i" when names is NULL) the
 * state in errors. Returns 0, or -1 with an error set. */
int dl_optim_check(const char *fn, dl_optim_algo algo, dl_optim_call *c, const char *const names[3]);

/* Runs calls[0..n), each one that passed dl_optim_check: the contiguous
 * ones on the first call's device go to the backend in one kernel call (on
 * the CPU, one parallel region for all of them); the others run one by one,
 * a non-contiguous grad read through a contiguous copy, a non-contiguous
 * param updated through one and copied back. When two parameters share a
 * storage (tied or overlapping), every call runs one by one, in order.
 * Bumps the versions of the params and state tensors. Reorders calls.
 * Returns 0, or -1 with an error set. */
int dl_optim_step_checked(const char *fn, dl_optim_algo algo, dl_optim_call *calls, int n);

/* One parameter: dl_optim_check, then dl_optim_step_checked. */
int dl_optim_step(const char *fn, dl_optim_algo algo, dl_tensor *param, dl_tensor *grad, dl_tensor *const s[3],
                  const char *const names[3], const dl_optim_hp *hp);

/* Which state slots the algorithm uses, given its options (bit i: s[i]). */
unsigned dl_optim_state_mask(dl_optim_algo algo, const dl_optim_hp *hp);

#endif
