/* dl_conv.h — sliding windows over the spatial dims of [N, C, *S] tensors:
 * im2col (PyTorch's F.unfold) gathers every window into a column, col2im
 * (F.fold) sums columns back. Convolution is im2col then one GEMM, pooling
 * im2col then a reduction (lua/dlua/nn/conv.lua); both ops are linear, so
 * each one's backward is the other. Front-ends (dl_conv.c) check shapes and
 * sizes and make operands contiguous; kernels (struct dl_conv_kernels) do
 * the copying. Up to 3 spatial dims. */
#ifndef DL_OPS_CONV_H
#define DL_OPS_CONV_H

#include "../dl_backend.h"

#define DL_CONV_MAX_SPATIAL 3

struct dl_conv_params;

/* A window over nd spatial dims. Padding may differ before and after (ceil
 * mode pooling pads the end further); what it reads is pad_value (0 for
 * convolution, -inf for max pooling). */
typedef struct dl_window {
  int nd;
  int64_t kernel[DL_CONV_MAX_SPATIAL], stride[DL_CONV_MAX_SPATIAL], dilation[DL_CONV_MAX_SPATIAL];
  int64_t pad_lo[DL_CONV_MAX_SPATIAL], pad_hi[DL_CONV_MAX_SPATIAL];
  double pad_value;
} dl_window;

/* A convolution: the window of its kernel (pad_value 0) and the groups */
typedef struct dl_conv_params {
  dl_window w;
  int64_t groups;
} dl_conv_params;

/* The kernels see tensors of one float dtype on one device; x is
 * contiguous. size: the spatial sizes of the image, out: the number of
 * windows along each dim (both nd long). cols is [N, C * prod(kernel),
 * prod(out)], rows ordered (c, k1, .., knd), columns (o1, .., ond), as
 * PyTorch's; its windows are contiguous and sn, sr are the element strides
 * of its image and row dims (im2col makes [rows, N, L] storage, so that a
 * convolution is one GEMM over the whole batch). */
struct dl_conv_kernels {
  int (*im2col)(dl_tensor *cols, int64_t sn, int64_t sr, const dl_tensor *x, int64_t N, int64_t C,
                const int64_t *size, const int64_t *out, const dl_window *w);
  /* x = 0, then each column entry added where its window reads x */
  int (*col2im)(dl_tensor *x, const dl_tensor *cols, int64_t sn, int64_t sr, int64_t N, int64_t C,
                const int64_t *size, const int64_t *out, const dl_window *w);
  /* A fused float32 convolution (oneDNN on the CPU), or NULL where the
   * backend has none: convolution is then im2col and GEMMs (grad_conv.c).
   * x [N, C, *S], w [O, C / groups, *k], b [O] or NULL, y / gy [N, O, *out],
   * all contiguous; gw, gb optional. */
  int (*conv_forward)(dl_tensor *y, const dl_tensor *x, const dl_tensor *w, const dl_tensor *b,
                      const struct dl_conv_params *p);
  int (*conv_backward_data)(dl_tensor *gx, const dl_tensor *gy, const dl_tensor *w, const struct dl_conv_params *p);
  int (*conv_backward_weights)(dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                               const struct dl_conv_params *p);
  /* max pooling of the NC planes of x (contiguous [NC, *size]): y [NC, L]
   * the first maximum of each window (a NaN wins, the last one, as in
   * PyTorch's kernels), idx [NC, L]
   * int64 its 1-based flat index in the plane (the engine's index ops are
   * 1-based); padding never wins */
  int (*max_pool)(dl_tensor *y, dl_tensor *idx, const dl_tensor *x, int64_t NC, const int64_t *size,
                  const int64_t *out, const dl_window *w);
  /* Optional (NULL: the fused convolution takes every float32 one): whether
   * it takes this one (cuDNN: not padding that differs before and after,
   * nor when the library cannot be loaded; im2col and GEMMs run instead) */
  bool (*conv_supported)(const dl_tensor *x, const struct dl_conv_params *p);
  /* max pooling's input gradient: gx [NC, plane] = 0, then g [NC, L] added
   * at idx [NC, L] (max_pool's 1-based indices, which autograd keeps under
   * their version counter), each plane in index order (deterministic with
   * overlapping windows); an index outside the plane fails on the CPU and
   * is skipped on CUDA (a kernel cannot report it) */
  int (*max_pool_backward)(dl_tensor *gx, const dl_tensor *g, const dl_tensor *idx, int64_t NC, int64_t plane,
                           int64_t L);
  /* Optional (NULL: conv_backward_data, then conv_backward_weights): both
   * backward passes from one gy, gx and at least one of gw, gb, sharing
   * what they can (oneDNN: gy converted to the kernels' layout once) */
  int (*conv_backward)(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                       const dl_tensor *w, const struct dl_conv_params *p);
  /* Optional (NULL: none). The output and its gradient in blocks of 16
   * channels, yb / gyb [N, O / 16, *out, 16] (oneDNN's nChw16c: channel
   * 16 b + l of a position at [n, b, ..., l]), the layout the CPU's
   * kernels compute in, for batch norm's blocked kernels (dl_layer.h
   * bn_relu_c16) to read and write without a reorder either way.
   * conv_c16: for this problem (float32, 2-D, O % 16 == 0), 0, or
   * DL_CONV_C16_OUT when the forward and both backward passes take the
   * output that way, | DL_CONV_C16_IN when the forward and the weights'
   * pass read x in blocks of 16 too. Then conv_forward_c16 fills yb, and xb
   * (optional, with DL_CONV_C16_IN: [N, C / 16, *S, 16]) with x as it
   * reads it, for conv_backward_c16's weights pass to read instead of
   * converting x again; conv_backward_c16 fills gx, gw, gb (each optional)
   * from gyb (xb optional), has_bias whether the convolution has a bias
   * (whose gradient is then computed, wanted or not, as conv_c16 checked). */
  int (*conv_c16)(const dl_tensor *x, const dl_tensor *w, bool bias, const struct dl_conv_params *p);
  int (*conv_forward_c16)(dl_tensor *yb, dl_tensor *xb, const dl_tensor *x, const dl_tensor *w, const dl_tensor *b,
                          const struct dl_conv_params *p);
  int (*conv_backward_c16)(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gyb, const dl_tensor *xb,
                           const dl_tensor *x, const dl_tensor *w, bool has_bias, const struct dl_conv_params *p);
};

#define DL_CONV_C16_OUT 1
#define DL_CONV_C16_IN 2

extern const struct dl_conv_kernels dl_cpu_conv;

/* The window as 3-D for the kernels of both backends (any rank runs as 3-D
 * with leading size-1 dims): S image sizes, O window counts, k kernel, s
 * stride, d dilation, lo padding before. */
typedef struct dl_window_geo {
  int64_t S[3], O[3], k[3], s[3], d[3], lo[3];
} dl_window_geo;

static inline dl_window_geo dl_window_geometry(const int64_t *size, const int64_t *out, const dl_window *w) {
  dl_window_geo g;
  int off = 3 - w->nd;
  for (int i = 0; i < 3; i++) g.S[i] = g.O[i] = g.k[i] = g.s[i] = g.d[i] = 1, g.lo[i] = 0;
  for (int i = 0; i < w->nd; i++) {
    g.S[off + i] = size[i], g.O[off + i] = out[i], g.k[off + i] = w->kernel[i];
    g.s[off + i] = w->stride[i], g.d[off + i] = w->dilation[i], g.lo[off + i] = w->pad_lo[i];
  }
  return g;
}

/* The number of windows along each spatial dim of an image of `size`
 * (floor((size + lo + hi - dilation (kernel - 1) - 1) / stride) + 1);
 * -1 with an error naming fn and the input shape when one is < 1 or a
 * window parameter is out of range. */
int dl_window_out(const char *fn, const dl_window *w, const int64_t *size, const dl_tensor *x, int64_t *out);

/* [N, C, *S] -> [N, C * prod(kernel), L] (new reference, NULL with an
 * error): a view of [C * prod(kernel), N, L] storage (strides L, N L, 1) */
dl_tensor *dl_op_im2col(dl_tensor *x, const dl_window *w);
/* [N, C * prod(kernel), L] -> [N, C, *size]: the sum of every column entry
 * over the pixel it came from (padding dropped) */
dl_tensor *dl_op_col2im(dl_tensor *cols, const dl_window *w, const int64_t *size);

/* Max pooling of x [N, C, *S] over windows w (pad_value ignored: padding
 * never wins): [N, C, *out], and *idx (int64, same shape) the 1-based flat
 * index of each maximum in its input plane. */
dl_tensor *dl_op_max_pool(dl_tensor *x, const dl_window *w, dl_tensor **idx);
/* max_pool's input gradient (not differentiable; autograd records its own
 * rule under create_graph): g and idx [N, C, *out] from dl_op_max_pool
 * of an input of `shape` (ndim dims) -> gx of that shape. */
dl_tensor *dl_op_max_pool_backward(dl_tensor *g, dl_tensor *idx, const int64_t *shape, int ndim);

/* Checks a convolution's operands (x [N, C, *S], w [O, C / groups, *k], b
 * [O] or NULL; p->w.kernel is taken from w) and fills p's kernel and *out
 * (the output's spatial sizes); -1 with an error naming both shapes. */
int dl_conv_check(const char *fn, const dl_tensor *x, const dl_tensor *w, const dl_tensor *b, dl_conv_params *p,
                  int64_t *out);
/* Whether x's device has a fused convolution for x's dtype that takes p */
bool dl_conv_fused(const dl_tensor *x, const dl_conv_params *p);
/* The fused convolution and its gradients (new references; gx/gw/gb NULL
 * pointers skip them); only where dl_conv_fused. */
dl_tensor *dl_op_conv_fused(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *p);
int dl_op_conv_fused_backward(dl_tensor *gy, dl_tensor *x, dl_tensor *w, bool has_bias, const dl_conv_params *p,
                              dl_tensor **gx, dl_tensor **gw, dl_tensor **gb);

#endif
