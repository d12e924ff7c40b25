/* cpu_attention.h — the CPU's attention-weight kernels
 * (cpu_attention.c), entries of its layer table (cpu_layer.c); contracts in
 * src/ops/dl_layer.h. */
#ifndef DL_CPU_ATTENTION_H
#define DL_CPU_ATTENTION_H

#include "../dl_tensor.h"

int dl_cpu_attn_softmax(dl_tensor *y, const dl_tensor *x, int64_t L, int64_t S, double scale, bool causal);
int dl_cpu_attn_softmax_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *y, int64_t S, double scale);

#endif
