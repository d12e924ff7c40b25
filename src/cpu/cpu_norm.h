/* cpu_norm.h — the CPU's normalisation kernels, batch norm
 * (cpu_batch_norm.c) and layer norm (cpu_layer_norm.c), entries of its
 * layer table (cpu_layer.c); contracts in src/ops/dl_layer.h. */
#ifndef DL_CPU_NORM_H
#define DL_CPU_NORM_H

#include "../dl_tensor.h"

int dl_cpu_bn_stats(const dl_tensor *x, int64_t N, int64_t C, int64_t L, dl_tensor *mean, dl_tensor *var,
                    dl_tensor *invstd, double eps);
int dl_cpu_bn_apply(dl_tensor *out, const dl_tensor *x, int64_t N, int64_t C, int64_t L, const dl_tensor *mean,
                    const dl_tensor *invstd, const dl_tensor *weight, const dl_tensor *bias, bool relu);
int dl_cpu_bn_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                       int64_t N, int64_t C, int64_t L, const dl_tensor *mean, const dl_tensor *invstd,
                       const dl_tensor *weight, const dl_tensor *bias, bool relu);
int dl_cpu_layer_norm(dl_tensor *y, dl_tensor *mean, dl_tensor *rstd, const dl_tensor *x, int64_t R, int64_t N,
                      const dl_tensor *w, const dl_tensor *b, double eps);
int dl_cpu_layer_norm_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *g, const dl_tensor *x,
                               const dl_tensor *mean, const dl_tensor *rstd, const dl_tensor *w, int64_t R, int64_t N);

#endif
