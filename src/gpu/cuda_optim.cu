/* cuda_optim.cu — fused optimiser updates on the GPU: one kernel launch
 * per parameter tensor, each element of the parameter, its gradient and
 * its state read and written once, in the parameter's dtype with the order
 * of operations of src/cpu/cpu_optim.c (PyTorch's single-tensor updates).
 * The options are plain kernel arguments, so no host sync. */
#include "cuda_common.cuh"

extern "C" {
#include "../ops/dl_optim.h"
}

/* the scalars of one update in T, hoisted once per launch */
template <typename T> struct opt_args {
  T *p;
  const T *gr;
  T *s0, *s1, *s2;
  int64_t n;
  T wd, gs, lr, mom, d1, clr, eps, al, a1, b1, b2, c1, c2, bc, dec, cg, ca, rho, r1;
  bool has_wd, first, nest, has_dec;
};

template <typename T> static opt_args<T> args_of(const dl_optim_call *c) {
  const dl_optim_hp *hp = c->hp;
  opt_args<T> a;
  a.p = (T *)dl_tensor_data(c->param);
  a.gr = (const T *)dl_tensor_data(c->grad);
  a.s0 = c->s[0] ? (T *)dl_tensor_data(c->s[0]) : NULL;
  a.s1 = c->s[1] ? (T *)dl_tensor_data(c->s[1]) : NULL;
  a.s2 = c->s[2] ? (T *)dl_tensor_data(c->s[2]) : NULL;
  a.n = c->param->numel;
  a.wd = (T)hp->weight_decay;
  a.gs = hp->maximize ? (T)-1 : (T)1;
  a.has_wd = hp->weight_decay != 0;
  a.lr = (T)hp->lr;
  a.mom = (T)hp->momentum;
  a.d1 = (T)(1 - hp->dampening);
  a.first = hp->first;
  a.nest = hp->nesterov;
  a.clr = (T)hp->clr;
  a.eps = (T)hp->eps;
  a.al = (T)hp->alpha;
  a.a1 = (T)(1 - hp->alpha);
  a.b1 = (T)hp->beta1;
  a.b2 = (T)hp->beta2;
  a.c1 = (T)(1 - hp->beta1);
  a.c2 = (T)(1 - hp->beta2);
  a.bc = (T)hp->bc2;
  a.dec = (T)hp->decay;
  a.has_dec = hp->decay != 1;
  a.cg = (T)hp->c_grad;
  a.ca = (T)hp->c_avg;
  a.rho = (T)hp->rho;
  a.r1 = (T)(1 - hp->rho);
  return a;
}

/* g_i with maximize and coupled weight decay applied */
template <typename T> __host__ __device__ __forceinline__ T grad_at(const opt_args<T> &a, int64_t i) {
  return a.has_wd ? a.gs * a.gr[i] + a.wd * a.p[i] : a.gs * a.gr[i];
}

template <typename T> __host__ __device__ inline void sgd_elem(const opt_args<T> &a, int64_t i) {
  T g = grad_at(a, i);
  if (!a.s0) {
    a.p[i] = a.p[i] + -a.lr * g;
  } else {
    T bi = a.first ? g : a.mom * a.s0[i] + a.d1 * g;
    a.s0[i] = bi;
    a.p[i] = a.p[i] + -a.lr * (a.nest ? g + a.mom * bi : bi);
  }
}

template <typename T> __host__ __device__ inline void adagrad_elem(const opt_args<T> &a, int64_t i) {
  T g = grad_at(a, i);
  T si = a.s0[i] + g * g;
  a.s0[i] = si;
  a.p[i] = a.p[i] + -a.clr * (g / (sqrt(si) + a.eps));
}

/* s0 square_avg, s1 grad_avg (centered), s2 momentum buffer */
template <typename T> __host__ __device__ inline void rmsprop_elem(const opt_args<T> &a, int64_t i) {
  T g = grad_at(a, i);
  T vi = a.al * a.s0[i] + a.a1 * (g * g);
  a.s0[i] = vi;
  T d;
  if (a.s1) {
    T mi = a.al * a.s1[i] + a.a1 * g;
    a.s1[i] = mi;
    d = sqrt(vi + -(mi * mi)) + a.eps;
  } else {
    d = sqrt(vi) + a.eps;
  }
  if (a.s2) {
    T bi = a.mom * a.s2[i] + g / d;
    a.s2[i] = bi;
    a.p[i] = a.p[i] + -a.lr * bi;
  } else {
    a.p[i] = a.p[i] + -a.lr * (g / d);
  }
}

/* s0 exp_avg, s1 exp_avg_sq, s2 max_exp_avg_sq (amsgrad); AdamW decays p first */
template <typename T> __host__ __device__ inline void adam_elem(const opt_args<T> &a, int64_t i) {
  T pi = a.has_dec ? a.p[i] * a.dec : a.p[i];
  T g = a.has_wd ? a.gs * a.gr[i] + a.wd * pi : a.gs * a.gr[i];
  T mi = a.b1 * a.s0[i] + a.c1 * g, vi = a.b2 * a.s1[i] + a.c2 * (g * g);
  a.s0[i] = mi;
  a.s1[i] = vi;
  if (a.s2) {
    T mx = a.s2[i] > vi ? a.s2[i] : vi;
    a.s2[i] = mx;
    vi = mx;
  }
  a.p[i] = pi + -a.clr * (mi / (sqrt(vi) / a.bc + a.eps));
}

template <typename T> __host__ __device__ inline void adamax_elem(const opt_args<T> &a, int64_t i) {
  T g = grad_at(a, i);
  T mi = a.b1 * a.s0[i] + a.c1 * g;
  a.s0[i] = mi;
  T ua = a.s1[i] * a.b2, ub = fabs(g) + a.eps;
  T ui = ua > ub || ua != ua ? ua : ub; /* amax propagates NaN */
  a.s1[i] = ui;
  a.p[i] = a.p[i] + -a.clr * (mi / ui);
}

template <typename T> __host__ __device__ inline void nadam_elem(const opt_args<T> &a, int64_t i) {
  T g = grad_at(a, i);
  T mi = a.b1 * a.s0[i] + a.c1 * g, vi = a.b2 * a.s1[i] + a.c2 * (g * g);
  a.s0[i] = mi;
  a.s1[i] = vi;
  T d = sqrt(vi / a.bc) + a.eps;
  T pi = a.p[i] + a.cg * (g / d);
  a.p[i] = pi + a.ca * (mi / d);
}

template <typename T> __host__ __device__ inline void adadelta_elem(const opt_args<T> &a, int64_t i) {
  T g = grad_at(a, i);
  T vi = a.rho * a.s0[i] + a.r1 * (g * g);
  a.s0[i] = vi;
  T dx = sqrt(a.s1[i] + a.eps) / sqrt(vi + a.eps) * g;
  a.s1[i] = a.rho * a.s1[i] + a.r1 * (dx * dx);
  a.p[i] = a.p[i] + -a.lr * dx;
}

/* one thread per element; the element updates are host-callable, so their
 * transcription of the CPU kernels can be tested on the host */
#define KERNEL(name) \
  template <typename T> __global__ void name##_kernel(opt_args<T> a) { DL_CUDA_FOR(i, a.n) name##_elem<T>(a, i); }
KERNEL(sgd)
KERNEL(adagrad)
KERNEL(rmsprop)
KERNEL(adam)
KERNEL(adamax)
KERNEL(nadam)
KERNEL(adadelta)

/* one launch per parameter of the group */
#define LAUNCHER(name)                                                                                          \
  static int name(const dl_optim_call *calls, int ncalls) {                                                     \
    DL_CUDA_ENTRY();                                                                                            \
    for (int j = 0; j < ncalls; j++) {                                                                          \
      const dl_optim_call *c = &calls[j];                                                                       \
      int64_t n = c->param->numel;                                                                              \
      if (n == 0) continue;                                                                                     \
      if (c->param->dtype == DL_FLOAT64)                                                                        \
        name##_kernel<double><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(args_of<double>(c)); \
      else                                                                                                      \
        name##_kernel<float><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(args_of<float>(c));   \
      DL_CUDA_LAUNCHED(#name);                                                                                  \
    }                                                                                                           \
    return dl_cuda_status();                                                                                    \
  }
LAUNCHER(sgd)
LAUNCHER(adagrad)
LAUNCHER(rmsprop)
LAUNCHER(adam)
LAUNCHER(adamax)
LAUNCHER(nadam)
LAUNCHER(adadelta)

/* the table is filled in member order: a new member must be added below */
static_assert(sizeof(struct dl_optim_kernels) == 7 * sizeof(void *),
              "dl_optim_kernels changed: fill its new members");

static_assert(DL_OPTIM_NALGOS == 7, "dl_cuda_optim lists every algorithm in dl_optim_algo order");

/* in dl_optim_algo order */
extern "C" const struct dl_optim_kernels dl_cuda_optim = {
    {sgd, adagrad, rmsprop, adam, adamax, nadam, adadelta},
};
