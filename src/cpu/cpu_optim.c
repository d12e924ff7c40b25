/* cpu_optim.c — fused optimiser updates on contiguous float32/float64
 * buffers: each element of the parameter, its gradient and its state is
 * read and written once. Arithmetic is in the parameter's dtype with the
 * order of operations of PyTorch's single-tensor updates (see dl_optim.h);
 * options are hoisted into local constants so the loops unswitch and
 * vectorise. A batch of a param group's parameters is updated in one
 * parallel region above the grain. */
#include "../ops/dl_optim.h"
#include "cpu_iter.h"

#include <math.h>
#ifdef __SSE__
#include <immintrin.h>
#endif

#define SQRT_float sqrtf
#define SQRT_double sqrt
#define FABS_float fabsf
#define FABS_double fabs

#ifdef _OPENMP
#define OPT_SIMD _Pragma("omp simd")
#else
#define OPT_SIMD
#endif

/* for i in [lo, hi): BODY, a SIMD loop over the kernel's restrict
 * pointers (the group runner below splits the work across threads) */
#define OPT_LOOP(...) OPT_SIMD for (int64_t i = lo; i < hi; i++) { __VA_ARGS__ }

/* g_i with maximize and coupled weight decay applied */
#define GRAD_IN(T)                                                               \
  T *restrict p = (T *)dl_tensor_data(c->param);                               \
  const T *restrict gr = (const T *)dl_tensor_data(c->grad);                   \
  const dl_optim_hp *hp = c->hp;                                                \
  const T wd = (T)hp->weight_decay, gs = hp->maximize ? (T)-1 : (T)1;          \
  const bool has_wd = hp->weight_decay != 0;

#define G_AT(i) (has_wd ? gs * gr[i] + wd * p[i] : gs * gr[i])

#define S(k, T) ((T *)(c->s[k] ? dl_tensor_data(c->s[k]) : NULL))

#define KERNELS(T)                                                               \
  static void sgd_##T(const dl_optim_call *c, int64_t lo, int64_t hi) {         \
    GRAD_IN(T)                                                                  \
    const T lr = (T)hp->lr, mom = (T)hp->momentum, d1 = (T)(1 - hp->dampening); \
    T *restrict b = S(0, T);                                                    \
    if (!b) {                                                                   \
      OPT_LOOP(p[i] = p[i] + -lr * G_AT(i););                                   \
    } else {                                                                    \
      const bool first = hp->first, nest = hp->nesterov;                        \
      OPT_LOOP(                                                                 \
        T g = G_AT(i);                                                          \
        T bi = first ? g : mom * b[i] + d1 * g;                                 \
        b[i] = bi;                                                              \
        p[i] = p[i] + -lr * (nest ? g + mom * bi : bi);                         \
      );                                                                         \
    }                                                                           \
  }                                                                             \
  static void adagrad_##T(const dl_optim_call *c, int64_t lo, int64_t hi) {     \
    GRAD_IN(T)                                                                  \
    const T clr = (T)hp->clr, eps = (T)hp->eps;                                 \
    T *restrict s = S(0, T);                                                    \
    OPT_LOOP(                                                                   \
      T g = G_AT(i);                                                            \
      T si = s[i] + g * g;                                                      \
      s[i] = si;                                                                \
      p[i] = p[i] + -clr * (g / (SQRT_##T(si) + eps));                          \
    );                                                                           \
  }                                                                             \
  static void rmsprop_##T(const dl_optim_call *c, int64_t lo, int64_t hi) {     \
    GRAD_IN(T)                                                                  \
    const T lr = (T)hp->lr, eps = (T)hp->eps, al = (T)hp->alpha, a1 = (T)(1 - hp->alpha); \
    const T mom = (T)hp->momentum;                                              \
    T *restrict v = S(0, T), *restrict m = S(1, T), *restrict b = S(2, T);      \
    const bool cen = m != NULL, hasb = b != NULL;                               \
    OPT_LOOP(                                                                   \
      T g = G_AT(i);                                                            \
      T vi = al * v[i] + a1 * (g * g);                                          \
      v[i] = vi;                                                                \
      T a;                                                                      \
      if (cen) {                                                                \
        T mi = al * m[i] + a1 * g;                                              \
        m[i] = mi;                                                              \
        a = SQRT_##T(vi + -(mi * mi)) + eps;                                    \
      } else {                                                                  \
        a = SQRT_##T(vi) + eps;                                                 \
      }                                                                         \
      if (hasb) {                                                               \
        T bi = mom * b[i] + g / a;                                              \
        b[i] = bi;                                                              \
        p[i] = p[i] + -lr * bi;                                                 \
      } else {                                                                  \
        p[i] = p[i] + -lr * (g / a);                                            \
      }                                                                         \
    );                                                                           \
  }                                                                             \
  static void adam_##T(const dl_optim_call *c, int64_t lo, int64_t hi) {        \
    GRAD_IN(T)                                                                  \
    const T ss = (T)hp->clr, eps = (T)hp->eps, b1 = (T)hp->beta1, b2 = (T)hp->beta2; \
    const T c1 = (T)(1 - hp->beta1), c2 = (T)(1 - hp->beta2), bc = (T)hp->bc2, dec = (T)hp->decay; \
    const bool has_dec = hp->decay != 1;                                        \
    T *restrict m = S(0, T), *restrict v = S(1, T), *restrict vm = S(2, T);    \
    if (vm) {                                                                   \
      OPT_LOOP(                                                                 \
        T pi = has_dec ? p[i] * dec : p[i];                                     \
        T g = has_wd ? gs * gr[i] + wd * pi : gs * gr[i];                       \
        T mi = b1 * m[i] + c1 * g, vi = b2 * v[i] + c2 * (g * g);               \
        m[i] = mi;                                                              \
        v[i] = vi;                                                              \
        T mx = vm[i] > vi ? vm[i] : vi;                                         \
        vm[i] = mx;                                                             \
        p[i] = pi + -ss * (mi / (SQRT_##T(mx) / bc + eps));                     \
      );                                                                         \
    } else {                                                                    \
      OPT_LOOP(                                                                 \
        T pi = has_dec ? p[i] * dec : p[i];                                     \
        T g = has_wd ? gs * gr[i] + wd * pi : gs * gr[i];                       \
        T mi = b1 * m[i] + c1 * g, vi = b2 * v[i] + c2 * (g * g);               \
        m[i] = mi;                                                              \
        v[i] = vi;                                                              \
        p[i] = pi + -ss * (mi / (SQRT_##T(vi) / bc + eps));                     \
      );                                                                         \
    }                                                                           \
  }                                                                             \
  static void adamax_##T(const dl_optim_call *c, int64_t lo, int64_t hi) {      \
    GRAD_IN(T)                                                                  \
    const T clr = (T)hp->clr, eps = (T)hp->eps, b1 = (T)hp->beta1, b2 = (T)hp->beta2; \
    const T c1 = (T)(1 - hp->beta1);                                            \
    T *restrict m = S(0, T), *restrict u = S(1, T);                             \
    OPT_LOOP(                                                                   \
      T g = G_AT(i);                                                            \
      T mi = b1 * m[i] + c1 * g;                                                \
      m[i] = mi;                                                                \
      T ua = u[i] * b2, ub = FABS_##T(g) + eps;                                 \
      T ui = ua > ub || ua != ua ? ua : ub; /* amax propagates NaN */           \
      u[i] = ui;                                                                \
      p[i] = p[i] + -clr * (mi / ui);                                           \
    );                                                                           \
  }                                                                             \
  static void nadam_##T(const dl_optim_call *c, int64_t lo, int64_t hi) {       \
    GRAD_IN(T)                                                                  \
    const T eps = (T)hp->eps, b1 = (T)hp->beta1, b2 = (T)hp->beta2, bc = (T)hp->bc2; \
    const T c1 = (T)(1 - hp->beta1), c2 = (T)(1 - hp->beta2);                   \
    const T cg = (T)hp->c_grad, ca = (T)hp->c_avg;                              \
    T *restrict m = S(0, T), *restrict v = S(1, T);                             \
    OPT_LOOP(                                                                   \
      T g = G_AT(i);                                                            \
      T mi = b1 * m[i] + c1 * g, vi = b2 * v[i] + c2 * (g * g);                 \
      m[i] = mi;                                                                \
      v[i] = vi;                                                                \
      T d = SQRT_##T(vi / bc) + eps;                                            \
      T pi = p[i] + cg * (g / d);                                               \
      p[i] = pi + ca * (mi / d);                                                \
    );                                                                           \
  }                                                                             \
  static void adadelta_##T(const dl_optim_call *c, int64_t lo, int64_t hi) {    \
    GRAD_IN(T)                                                                  \
    const T lr = (T)hp->lr, eps = (T)hp->eps, rho = (T)hp->rho, r1 = (T)(1 - hp->rho); \
    T *restrict v = S(0, T), *restrict u = S(1, T);                             \
    OPT_LOOP(                                                                   \
      T g = G_AT(i);                                                            \
      T vi = rho * v[i] + r1 * (g * g);                                         \
      v[i] = vi;                                                                \
      T dx = SQRT_##T(u[i] + eps) / SQRT_##T(vi + eps) * g;                     \
      u[i] = rho * u[i] + r1 * (dx * dx);                                       \
      p[i] = p[i] + -lr * dx;                                                   \
    );                                                                           \
  }

KERNELS(float)
KERNELS(double)

typedef void (*opt_range)(const dl_optim_call *c, int64_t lo, int64_t hi);

/* Subnormal numbers are flushed to zero during an update (MXCSR's FTZ and
 * DAZ, per thread, restored after; x86 only): a state entry whose
 * gradient stays 0 (a dead ReLU's weights) decays by beta or momentum each
 * step into the subnormal range, where every x86 operation on it takes a
 * microcode assist; the fashion MLP's Adam step became 15x slower after a
 * few thousand steps. The flush applies to everything the update reads and
 * writes: subnormal gradients and parameters read as 0, and a result
 * below the smallest normal number is stored as 0. A subnormal moment
 * moves no parameter of normal size (its update is below the parameter's
 * last bit). */
static inline unsigned ftz_enter(void) {
#ifdef __SSE__
  unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u); /* FTZ | DAZ */
  return csr;
#else
  return 0;
#endif
}

static inline void ftz_leave(unsigned csr) {
#ifdef __SSE__
  _mm_setcsr(csr);
#else
  (void)csr;
#endif
}

/* one batch of calls (up to 64 contiguous parameters of a group,
 * lua_optim.c) and its two kernels */
typedef struct {
  opt_range f32, f64;
  const dl_optim_call *calls;
  int n;
  int64_t total; /* elements of all the parameters, laid end to end */
} opt_group;

/* elements [16 b0, 16 b1) of the group, laid end to end */
static void run_span(void *ctx, int64_t b0, int64_t b1) {
  const opt_group *g = ctx;
  const int64_t lo = 16 * b0, hi = 16 * b1 < g->total ? 16 * b1 : g->total;
  unsigned csr = ftz_enter();
  int64_t base = 0;
  for (int j = 0; j < g->n && base < hi; j++) {
    const dl_optim_call *c = &g->calls[j];
    const int64_t m = c->param->numel, a = lo > base ? lo - base : 0, b = hi - base < m ? hi - base : m;
    if (a < b) (c->param->dtype == DL_FLOAT64 ? g->f64 : g->f32)(c, a, b);
    base += m;
  }
  ftz_leave(csr);
}

/* One parallel region for the calls of one batch: each thread takes an
 * equal share of their elements laid end to end (in blocks of 16), so
 * small tensors (biases, narrow layers) do not run on one thread while the
 * other waits, and the batch pays one fork instead of one per tensor. */
static void run_group(opt_range f32, opt_range f64, const dl_optim_call *calls, int n) {
  opt_group g = {f32, f64, calls, n, 0};
  for (int j = 0; j < n; j++) g.total += calls[j].param->numel;
  dl_cpu_run_blocks((g.total + 15) / 16, DL_PARALLEL_GRAIN / 16, run_span, &g);
}

#define DISPATCH(name)                                                          \
  static int name(const dl_optim_call *calls, int n) {                          \
    run_group(name##_float, name##_double, calls, n);                           \
    return DL_KERNEL_OK;                                                        \
  }
DISPATCH(sgd)
DISPATCH(adagrad)
DISPATCH(rmsprop)
DISPATCH(adam)
DISPATCH(adamax)
DISPATCH(nadam)
DISPATCH(adadelta)

const struct dl_optim_kernels dl_cpu_optim = {
  .step = {
    [DL_OPTIM_SGD] = sgd,
    [DL_OPTIM_ADAGRAD] = adagrad,
    [DL_OPTIM_RMSPROP] = rmsprop,
    [DL_OPTIM_ADAM] = adam,
    [DL_OPTIM_ADAMAX] = adamax,
    [DL_OPTIM_NADAM] = nadam,
    [DL_OPTIM_ADADELTA] = adadelta,
  },
};
