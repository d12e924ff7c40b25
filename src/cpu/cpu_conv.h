/* cpu_conv.h — the CPU's fused float32 convolution on oneDNN
 * (cpu_dnnl_conv.c), built when the oneDNN headers are present: the
 * members of struct dl_conv_kernels (src/ops/dl_conv.h) it fills. */
#ifndef DL_CPU_CONV_H
#define DL_CPU_CONV_H

#include "../ops/dl_conv.h"

#ifdef DL_HAVE_DNNL
int dl_cpu_dnnl_conv_forward(dl_tensor *y, const dl_tensor *x, const dl_tensor *w, const dl_tensor *b,
                             const dl_conv_params *p);
int dl_cpu_dnnl_conv_backward_data(dl_tensor *gx, const dl_tensor *gy, const dl_tensor *w, const dl_conv_params *p);
int dl_cpu_dnnl_conv_backward_weights(dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                                      const dl_conv_params *p);
/* both backward passes, the output gradient reordered once */
int dl_cpu_dnnl_conv_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                              const dl_tensor *w, const dl_conv_params *p);
/* the output (gradient) in blocks of 16 channels (struct dl_conv_kernels) */
int dl_cpu_dnnl_conv_c16(const dl_tensor *x, const dl_tensor *w, bool bias, const dl_conv_params *p);
int dl_cpu_dnnl_conv_forward_c16(dl_tensor *yb, dl_tensor *xb, const dl_tensor *x, const dl_tensor *w,
                                 const dl_tensor *b, const dl_conv_params *p);
int dl_cpu_dnnl_conv_backward_c16(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gyb,
                                  const dl_tensor *xb, const dl_tensor *x, const dl_tensor *w, bool has_bias,
                                  const dl_conv_params *p);
#define DL_CPU_CONV_FUSED dl_cpu_dnnl_conv_forward, dl_cpu_dnnl_conv_backward_data, dl_cpu_dnnl_conv_backward_weights
#define DL_CPU_CONV_BACKWARD dl_cpu_dnnl_conv_backward
#define DL_CPU_CONV_C16 dl_cpu_dnnl_conv_c16, dl_cpu_dnnl_conv_forward_c16, dl_cpu_dnnl_conv_backward_c16
#else
#define DL_CPU_CONV_FUSED NULL, NULL, NULL
#define DL_CPU_CONV_BACKWARD NULL
#define DL_CPU_CONV_C16 NULL, NULL, NULL
#endif

#endif
