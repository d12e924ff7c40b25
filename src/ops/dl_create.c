/* dl_create.c — arange, linspace and eye. */
#include "dl_create.h"

#include <math.h>

static double num(dl_scalar s) { return s.is_int ? (double)s.i : s.f; }

/* the CPU tensor t moved to dev (t released either way) */
static dl_tensor *to_device(dl_tensor *t, dl_device dev) {
  if (!t || dev.type == DL_CPU) return t;
  dl_tensor *d = dl_tensor_to_device(t, dev);
  dl_tensor_release(t);
  return d;
}

dl_tensor *dl_op_arange(dl_scalar start, dl_scalar stop, dl_scalar step, dl_dtype dt, dl_device dev) {
  double a = num(start), b = num(stop), s = num(step);
  if (s == 0) {
    dl_error_set("arange: step must be nonzero");
    return NULL;
  }
  if (!isfinite(a) || !isfinite(b) || !isfinite(s)) {
    dl_error_set("arange: bounds must be finite");
    return NULL;
  }
  if ((b - a) / s < 0) {
    dl_error_set("arange: upper bound and step have inconsistent signs (start %f, stop %f, step %f)", a, b, s);
    return NULL;
  }
  double nd = ceil((b - a) / s);
  if (nd > 1e12) {
    dl_error_set("arange: too many elements");
    return NULL;
  }
  int64_t n = (int64_t)nd;
  dl_tensor *t = dl_tensor_empty(&n, 1, dt, dl_device_cpu());
  if (!t) return NULL;
  if (start.is_int && stop.is_int && step.is_int && dt == DL_INT64) {
    int64_t *p = dl_tensor_data(t);
    for (int64_t i = 0; i < n; i++) p[i] = start.i + i * step.i;
  } else {
    for (int64_t i = 0; i < n; i++) dl_tensor_init_linear(t, i, dl_scalar_f(a + (double)i * s));
  }
  return to_device(t, dev);
}

dl_tensor *dl_op_linspace(double a, double b, int64_t n, dl_dtype dt, dl_device dev) {
  if (n < 0) {
    dl_error_set("linspace: number of steps must be non-negative, got %lld", (long long)n);
    return NULL;
  }
  dl_tensor *t = dl_tensor_empty(&n, 1, dt, dl_device_cpu());
  if (!t) return NULL;
  double step = n > 1 ? (b - a) / (double)(n - 1) : 0;
  for (int64_t i = 0; i < n; i++) {
    double v = i < n / 2 ? a + step * (double)i : b - step * (double)(n - 1 - i);
    dl_tensor_init_linear(t, i, dl_scalar_f(v));
  }
  return to_device(t, dev);
}

dl_tensor *dl_op_eye(int64_t n, int64_t m, dl_dtype dt, dl_device dev) {
  if (n < 0 || m < 0) {
    dl_error_set("eye: size must be non-negative, got %lld x %lld", (long long)n, (long long)m);
    return NULL;
  }
  int64_t shape[2] = {n, m};
  dl_tensor *t = dl_tensor_zeros(shape, 2, dt, dl_device_cpu());
  if (!t) return NULL;
  for (int64_t i = 0; i < n && i < m; i++) dl_tensor_init_linear(t, i * m + i, dl_scalar_i(1));
  return to_device(t, dev);
}
