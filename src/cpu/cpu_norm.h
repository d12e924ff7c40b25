/* cpu_norm.h — the CPU's layer-norm kernels (cpu_layer_norm.c), entries of
 * its layer table (cpu_layer.c); contracts in src/ops/dl_layer.h. */
#ifndef DL_CPU_NORM_H
#define DL_CPU_NORM_H

#include "../dl_tensor.h"

int dl_cpu_layer_norm(dl_tensor *y, dl_tensor *mean, dl_tensor *rstd, const dl_tensor *x, int64_t R, int64_t N,
                      const dl_tensor *w, const dl_tensor *b, double eps);
int dl_cpu_layer_norm_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *g, const dl_tensor *x,
                               const dl_tensor *mean, const dl_tensor *rstd, const dl_tensor *w, int64_t R, int64_t N);

#endif
