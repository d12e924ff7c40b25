/* dl_conv.c — front-ends of im2col and col2im (dl_conv.h): window checks,
 * output sizes, contiguous operands; the copying is the backend's. */
#include "dl_conv.h"

#include <inttypes.h>
#include <stdio.h>

static const struct dl_conv_kernels *kernels_of(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), conv);
}

int dl_window_out(const char *fn, const dl_window *w, const int64_t *size, const dl_tensor *x, int64_t *out) {
  char b[64];
  if (w->nd < 1 || w->nd > DL_CONV_MAX_SPATIAL) {
    dl_error_set("%s: %d spatial dims (1 to %d)", fn, w->nd, DL_CONV_MAX_SPATIAL);
    return -1;
  }
  for (int d = 0; d < w->nd; d++) {
    if (w->kernel[d] < 1 || w->stride[d] < 1 || w->dilation[d] < 1) {
      dl_error_set("%s: kernel size, stride and dilation must be >= 1, got %" PRId64 ", %" PRId64 " and %" PRId64
                   " for spatial dim %d",
                   fn, w->kernel[d], w->stride[d], w->dilation[d], d + 1);
      return -1;
    }
    if (w->pad_lo[d] < 0 || w->pad_hi[d] < 0) {
      dl_error_set("%s: negative padding %" PRId64 " for spatial dim %d", fn, w->pad_lo[d] < 0 ? w->pad_lo[d] : w->pad_hi[d],
                   d + 1);
      return -1;
    }
    int64_t span, padded;
    if (__builtin_mul_overflow(w->dilation[d], w->kernel[d] - 1, &span) ||
        __builtin_add_overflow(size[d], w->pad_lo[d], &padded) || __builtin_add_overflow(padded, w->pad_hi[d], &padded)) {
      dl_error_set("%s: window sizes overflow for spatial dim %d", fn, d + 1);
      return -1;
    }
    out[d] = padded - span - 1 < 0 ? 0 : (padded - span - 1) / w->stride[d] + 1;
    if (out[d] < 1) {
      dl_error_set("%s: input %s (padded to %" PRId64 " in spatial dim %d) is smaller than the %s kernel of size %" PRId64
                   ", so the output would be empty",
                   fn, dl_tensor_shape_str(x, b, sizeof b), padded, d + 1, w->dilation[d] > 1 ? "dilated" : "",
                   span + 1);
      return -1;
    }
  }
  return 0;
}

/* x is [N, C, *S] with S of w->nd dims, of a float dtype */
static int check_image(const char *fn, const dl_tensor *x, int nd, int64_t extra_dims) {
  char b[64];
  if (!dl_dtype_is_float(x->dtype)) {
    dl_error_set("%s: expected a float32 or float64 input, got %s", fn, dl_dtype_name(x->dtype));
    return -1;
  }
  if (x->ndim != nd + extra_dims) {
    dl_error_set("%s: expected a %" PRId64 "-D input for %d spatial dims, got %s", fn, nd + extra_dims, nd,
                 dl_tensor_shape_str(x, b, sizeof b));
    return -1;
  }
  return 0;
}

dl_tensor *dl_op_im2col(dl_tensor *x, const dl_window *w) {
  static const char fn[] = "im2col";
  int64_t out[DL_CONV_MAX_SPATIAL];
  if (w->nd < 1 || w->nd > DL_CONV_MAX_SPATIAL) return dl_window_out(fn, w, NULL, x, out), NULL;
  if (check_image(fn, x, w->nd, 2) || dl_window_out(fn, w, x->shape + 2, x, out)) return NULL;
  const struct dl_conv_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  int64_t N = x->shape[0], C = x->shape[1], rows = C, L = 1;
  for (int d = 0; d < w->nd; d++) {
    if (__builtin_mul_overflow(rows, w->kernel[d], &rows) || __builtin_mul_overflow(L, out[d], &L)) {
      dl_error_set("%s: the columns would hold too many elements", fn);
      return NULL;
    }
  }
  int64_t shape[3] = {N, rows, L};
  dl_tensor *xc = dl_tensor_contiguous(x);
  dl_tensor *cols = xc ? dl_tensor_empty(shape, 3, x->dtype, dl_tensor_device(x)) : NULL;
  if (cols && cols->numel > 0) cols = dl_kernel_result(fn, cols, k->im2col(cols, xc, N, C, x->shape + 2, out, w));
  dl_tensor_release(xc);
  return cols;
}

dl_tensor *dl_op_col2im(dl_tensor *cols, const dl_window *w, const int64_t *size) {
  static const char fn[] = "col2im";
  char b[64];
  int64_t out[DL_CONV_MAX_SPATIAL];
  if (w->nd < 1 || w->nd > DL_CONV_MAX_SPATIAL) return dl_window_out(fn, w, NULL, cols, out), NULL;
  if (check_image(fn, cols, 1, 2)) return NULL;
  for (int d = 0; d < w->nd; d++)
    if (size[d] < 0) {
      dl_error_set("%s: negative output size %" PRId64 " for spatial dim %d", fn, size[d], d + 1);
      return NULL;
    }
  if (dl_window_out(fn, w, size, cols, out)) return NULL;
  int64_t K = 1, L = 1;
  for (int d = 0; d < w->nd; d++) K *= w->kernel[d], L *= out[d];
  int64_t N = cols->shape[0], rows = cols->shape[1];
  if (rows % K != 0 || cols->shape[2] != L) {
    dl_error_set("%s: input %s does not hold [N, C x %" PRId64 " (the kernel), %" PRId64 " (the windows)] columns", fn,
                 dl_tensor_shape_str(cols, b, sizeof b), K, L);
    return NULL;
  }
  int64_t C = rows / K, shape[2 + DL_CONV_MAX_SPATIAL] = {N, C};
  for (int d = 0; d < w->nd; d++) shape[2 + d] = size[d];
  const struct dl_conv_kernels *k = kernels_of(fn, cols);
  if (!k) return NULL;
  dl_tensor *cc = dl_tensor_contiguous(cols);
  dl_tensor *x = cc ? dl_tensor_empty(shape, 2 + w->nd, cols->dtype, dl_tensor_device(cols)) : NULL;
  if (x && x->numel > 0) x = dl_kernel_result(fn, x, k->col2im(x, cc, N, C, size, out, w));
  dl_tensor_release(cc);
  return x;
}
