/* cpu_norm.h — the CPU's normalisation kernels, batch norm
 * (cpu_batch_norm.c) and layer norm (cpu_layer_norm.c), entries of its
 * layer table (cpu_layer.c); contracts in src/ops/dl_layer.h. */
#ifndef DL_CPU_NORM_H
#define DL_CPU_NORM_H

#include "../dl_tensor.h"

/* batch norm's map per channel c (rp invstd, wp / bp weight / bias or
 * NULL, mp mean in scope): y = (x - m) a + s, then ReLU, the product and
 * sum one fused multiply-add, FMA_T(x - m, a, s) (x centred first: an
 * offset of the data costs no precision). Every kernel that recomputes the
 * ReLU's mask uses the same expression, so forward and backward round
 * alike. */
#define BN_COEFFS(T, c, m, a, s) const T m = mp[c], a = rp[c] * (wp ? wp[c] : (T)1), s = bp ? bp[c] : (T)0
#define FMA_float __builtin_fmaf
#define FMA_double __builtin_fma
/* the input gradient's coefficients per channel from the sums sg = sum g
 * and sgx = sum g xhat over M elements (r invstd, w weight or 1):
 * gx = kf g + slope (x - mu) + off, each element one fused multiply-add of
 * the other two terms */
static inline void bn_grad_coeffs(double r, double w, double sg, double sgx, double M, double *kf, double *slope,
                                  double *off) {
  const double k = r * w;
  *kf = k, *off = -k * (sg / M), *slope = -k * r * (sgx / M);
}

/* relu's forward (NaN stays NaN) and backward (the gradient passes unless
 * the output is <= 0), as the activation kernels have them */
#define RELU_OUT(v) ((v) < 0 ? 0 : (v))
#define RELU_PASS(v, g) ((v) <= 0 ? 0 : (g))

int dl_cpu_bn_stats(const dl_tensor *x, int64_t N, int64_t C, int64_t L, dl_tensor *mean, dl_tensor *var,
                    dl_tensor *invstd, double eps);
int dl_cpu_bn_apply(dl_tensor *out, const dl_tensor *x, int64_t N, int64_t C, int64_t L, const dl_tensor *mean,
                    const dl_tensor *invstd, const dl_tensor *weight, const dl_tensor *bias, bool relu);
int dl_cpu_bn_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                       int64_t N, int64_t C, int64_t L, const dl_tensor *mean, const dl_tensor *invstd,
                       const dl_tensor *weight, const dl_tensor *bias, bool relu);
/* batch norm + ReLU + 2x2 max pooling (cpu_bn_pool.c) */
int dl_cpu_bn_relu_pool(dl_tensor *out, dl_tensor *tap, dl_tensor *xs, const dl_tensor *x, int64_t N, int64_t C,
                        int64_t H, int64_t W, const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight,
                        const dl_tensor *bias);
int dl_cpu_bn_relu_pool_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gp, const dl_tensor *x,
                                 const dl_tensor *tap, const dl_tensor *xs, int64_t N, int64_t C, int64_t H, int64_t W,
                                 const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight);
/* the same over a convolution's output in blocks of 16 channels (cpu_bn_c16.c) */
int dl_cpu_bn_relu_c16(dl_tensor *out, dl_tensor *tap, dl_tensor *xs, dl_tensor *mean, dl_tensor *var,
                       dl_tensor *invstd, const dl_tensor *y, int64_t N, int64_t C, int64_t H, int64_t W,
                       const dl_tensor *weight, const dl_tensor *bias, double eps, bool pool);
int dl_cpu_bn_relu_c16_backward(dl_tensor *gy, dl_tensor *gw, dl_tensor *gb, const dl_tensor *g, const dl_tensor *y,
                                const dl_tensor *tap, const dl_tensor *xs, int64_t N, int64_t C, int64_t H, int64_t W,
                                const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight,
                                const dl_tensor *bias, bool pool);
int dl_cpu_layer_norm(dl_tensor *y, dl_tensor *mean, dl_tensor *rstd, const dl_tensor *x, int64_t R, int64_t N,
                      const dl_tensor *w, const dl_tensor *b, double eps);
int dl_cpu_layer_norm_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *g, const dl_tensor *x,
                               const dl_tensor *mean, const dl_tensor *rstd, const dl_tensor *w, int64_t R, int64_t N);

#endif
