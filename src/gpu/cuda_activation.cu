/* cuda_activation.cu — GPU kernels of the fused activations, mirroring
 * src/cpu/cpu_activation.c formula for formula: point-wise forward and
 * backward over any strides (one thread per element), prelu and its slope
 * gradient on [outer, n, inner], and softmax / log_softmax with the max
 * subtracted and the sums in double. Rows along the last dim (inner == 1)
 * get a block each; otherwise a thread walks one column of n elements, so
 * neighbouring threads read neighbouring memory. */
#include "cuda_nn_util.cuh"

extern "C" {
#include "../ops/dl_activation.h"
}

/* ---- point-wise formulas: dl_act_math.h, the CPU's too, as templates ---- */

#define AM_QUAL template <typename T> __host__ __device__ __forceinline__
#define AM_T T
#define AM_FN(name) am_##name
#define AM_MATH(f) f
#include "../ops/dl_act_math.h"

/* act_f / act_b list every dl_act; a new one must be added there too */
static_assert(DL_NACTS == 7, "cuda_activation.cu: a dl_act without a GPU formula");

template <typename T> __host__ __device__ __forceinline__ T act_f(dl_act op, T x, T p0, T p1) {
  switch (op) {
  case DL_ACT_LEAKY_RELU: return am_leaky_f(x, p0, p1);
  case DL_ACT_ELU: return am_elu_f(x, p0, p1);
  case DL_ACT_GELU: return am_gelu_f(x, p0, p1);
  case DL_ACT_GELU_TANH: return am_gelut_f(x, p0, p1);
  case DL_ACT_SILU: return am_silu_f(x, p0, p1);
  case DL_ACT_SOFTPLUS: return am_softplus_f(x, p0, p1);
  default: return am_relu_f(x, p0, p1);
  }
}

template <typename T> __host__ __device__ __forceinline__ T act_b(dl_act op, T g, T x, T p0, T p1) {
  switch (op) {
  case DL_ACT_LEAKY_RELU: return am_leaky_b(g, x, p0, p1);
  case DL_ACT_ELU: return am_elu_b(g, x, p0, p1);
  case DL_ACT_GELU: return am_gelu_b(g, x, p0, p1);
  case DL_ACT_GELU_TANH: return am_gelut_b(g, x, p0, p1);
  case DL_ACT_SILU: return am_silu_b(g, x, p0, p1);
  case DL_ACT_SOFTPLUS: return am_softplus_b(g, x, p0, p1);
  default: return am_relu_b(g, x, p0, p1);
  }
}

template <typename T>
__global__ void act_forward_kernel(dl_act op, dl_cuda_view o, dl_cuda_view x, int64_t n, T p0, T p1) {
  DL_CUDA_FOR(i, n) dl_cuda_at<T>(o, i) = act_f<T>(op, dl_cuda_at<T>(x, i), p0, p1);
}

template <typename T>
__global__ void act_backward_kernel(dl_act op, dl_cuda_view gx, dl_cuda_view g, dl_cuda_view x, int64_t n, T p0,
                                    T p1) {
  DL_CUDA_FOR(i, n) dl_cuda_at<T>(gx, i) = act_b<T>(op, dl_cuda_at<T>(g, i), dl_cuda_at<T>(x, i), p0, p1);
}

static int cuda_act_forward(dl_act op, dl_tensor *out, const dl_tensor *x, double p0, double p1) {
  DL_CUDA_ENTRY();
  int64_t n = out->numel;
  if (n == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(out->dtype, T,
                         act_forward_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             op, dl_cuda_view_of(out), dl_cuda_view_of(x), n, (T)p0, (T)p1));
  DL_CUDA_LAUNCHED("activation forward");
  return dl_cuda_status();
}

static int cuda_act_backward(dl_act op, dl_tensor *gx, const dl_tensor *g, const dl_tensor *x, double p0,
                              double p1) {
  DL_CUDA_ENTRY();
  int64_t n = gx->numel;
  if (n == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(gx->dtype, T,
                         act_backward_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             op, dl_cuda_view_of(gx), dl_cuda_view_of(g), dl_cuda_view_of(x), n, (T)p0, (T)p1));
  DL_CUDA_LAUNCHED("activation backward");
  return dl_cuda_status();
}

/* ---- prelu: slope w[c] (or w[0]) on channel c of [outer, n, inner] ---- */

template <typename T>
__global__ void prelu_kernel(T *o, const T *x, const T *w, int64_t wn, int64_t total, int64_t n, int64_t inner) {
  DL_CUDA_FOR(i, total) {
    T a = w[wn == 1 ? 0 : (i / inner) % n];
    T v = x[i];
    o[i] = v > 0 ? v : a * v;
  }
}

template <typename T>
__global__ void prelu_gx_kernel(T *gx, const T *g, const T *x, const T *w, int64_t wn, int64_t total, int64_t n,
                                int64_t inner) {
  DL_CUDA_FOR(i, total) {
    T a = w[wn == 1 ? 0 : (i / inner) % n];
    gx[i] = x[i] > 0 ? g[i] : a * g[i];
  }
}

/* one block per slope: the sum of g * x over its elements where x <= 0
 * (every element for a shared slope), in double */
template <typename T>
__global__ void prelu_gw_kernel(T *gw, const T *g, const T *x, int64_t wn, int64_t outer, int64_t n,
                                int64_t inner) {
  __shared__ double sh[32];
  for (int64_t c = blockIdx.x; c < wn; c += gridDim.x) {
    double acc = 0;
    if (wn == 1) {
      int64_t total = outer * n * inner;
      for (int64_t i = threadIdx.x; i < total; i += blockDim.x)
        if (!(x[i] > 0)) acc += (double)g[i] * (double)x[i];
    } else {
      int64_t m = outer * inner;
      for (int64_t e = threadIdx.x; e < m; e += blockDim.x) {
        int64_t i = ((e / inner) * n + c) * inner + e % inner;
        if (!(x[i] > 0)) acc += (double)g[i] * (double)x[i];
      }
    }
    acc = dl_block_sum(acc, sh);
    if (threadIdx.x == 0) gw[c] = (T)acc;
  }
}

static int cuda_prelu(dl_tensor *out, const dl_tensor *x, const dl_tensor *w, int64_t outer, int64_t n,
                       int64_t inner) {
  DL_CUDA_ENTRY();
  int64_t total = outer * n * inner;
  if (total == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(out->dtype, T,
                         prelu_kernel<T><<<dl_cuda_blocks(total), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             (T *)dl_tensor_data(out), (const T *)dl_tensor_data(x), (const T *)dl_tensor_data(w),
                             w->numel, total, n, inner));
  DL_CUDA_LAUNCHED("prelu");
  return dl_cuda_status();
}

static int cuda_prelu_backward(dl_tensor *gx, dl_tensor *gw, const dl_tensor *g, const dl_tensor *x,
                                const dl_tensor *w, int64_t outer, int64_t n, int64_t inner) {
  DL_CUDA_ENTRY();
  int64_t total = outer * n * inner, wn = w->numel;
  cudaStream_t s = dl_cuda_stream();
  DL_CUDA_DISPATCH_FLOAT(gx->dtype, T, {
    if (total > 0)
      prelu_gx_kernel<T><<<dl_cuda_blocks(total), DL_CUDA_THREADS, 0, s>>>(
          (T *)dl_tensor_data(gx), (const T *)dl_tensor_data(g), (const T *)dl_tensor_data(x),
          (const T *)dl_tensor_data(w), wn, total, n, inner);
    /* runs even when total is 0, so the slope gradients come out as zeros */
    prelu_gw_kernel<T><<<dl_cuda_grid_items(wn), DL_CUDA_THREADS, 0, s>>>(
        (T *)dl_tensor_data(gw), (const T *)dl_tensor_data(g), (const T *)dl_tensor_data(x), wn, outer, n, inner);
  });
  DL_CUDA_LAUNCHED("prelu backward");
  return dl_cuda_status();
}

/* ---- softmax / log_softmax along the middle dim of [outer, n, inner] ---- */


/* inner == 1: one block per row of n contiguous elements */
template <typename T> __global__ void softmax_rows_kernel(bool is_log, T *o, const T *x, int64_t outer, int64_t n) {
  __shared__ double shd[32];
  __shared__ T sht[32];
  for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
    const T *xr = x + r * n;
    T *orow = o + r * n;
    T m = xr[0];
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) m = xr[k] > m ? xr[k] : m;
    m = dl_block_max<T>(m, xr[0], sht);
    double sum = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      T e = exp(xr[k] - m);
      if (!is_log) orow[k] = e;
      sum += (double)e;
    }
    sum = dl_block_sum(sum, shd);
    if (is_log) {
      /* (x - m) - log(sum): exact where x is near m, even far from 0 */
      T ls = (T)log(sum);
      for (int64_t k = threadIdx.x; k < n; k += blockDim.x) orow[k] = (xr[k] - m) - ls;
    } else {
      T inv = (T)(1.0 / sum);
      for (int64_t k = threadIdx.x; k < n; k += blockDim.x) orow[k] *= inv;
    }
  }
}

/* inner > 1: one thread per column (b, i), walking its n elements */
template <typename T>
__global__ void softmax_cols_kernel(bool is_log, T *o, const T *x, int64_t outer, int64_t n, int64_t inner) {
  DL_CUDA_FOR(col, outer * inner) {
    int64_t off = (col / inner) * n * inner + col % inner;
    const T *xc = x + off;
    T *oc = o + off;
    T m = xc[0];
    for (int64_t k = 1; k < n; k++) m = xc[k * inner] > m ? xc[k * inner] : m;
    double sum = 0;
    for (int64_t k = 0; k < n; k++) {
      T e = exp(xc[k * inner] - m);
      if (!is_log) oc[k * inner] = e;
      sum += (double)e;
    }
    if (is_log) {
      T ls = (T)log(sum);
      for (int64_t k = 0; k < n; k++) oc[k * inner] = (xc[k * inner] - m) - ls;
    } else {
      T inv = (T)(1.0 / sum);
      for (int64_t k = 0; k < n; k++) oc[k * inner] *= inv;
    }
  }
}

/* softmax: gx = y (g - sum(g y)); log_softmax: gx = g - exp(y) sum(g) */
template <typename T>
__global__ void softmax_bwd_rows_kernel(bool is_log, T *gx, const T *g, const T *y, int64_t outer, int64_t n) {
  __shared__ double shd[32];
  for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
    const T *gr = g + r * n, *yr = y + r * n;
    T *xr = gx + r * n;
    double acc = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
      acc += is_log ? (double)gr[k] : (double)gr[k] * (double)yr[k];
    T s = (T)dl_block_sum(acc, shd);
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
      xr[k] = is_log ? gr[k] - exp(yr[k]) * s : yr[k] * (gr[k] - s);
  }
}

template <typename T>
__global__ void softmax_bwd_cols_kernel(bool is_log, T *gx, const T *g, const T *y, int64_t outer, int64_t n,
                                        int64_t inner) {
  DL_CUDA_FOR(col, outer * inner) {
    int64_t off = (col / inner) * n * inner + col % inner;
    const T *gc = g + off, *yc = y + off;
    T *xc = gx + off;
    double acc = 0;
    for (int64_t k = 0; k < n; k++)
      acc += is_log ? (double)gc[k * inner] : (double)gc[k * inner] * (double)yc[k * inner];
    T d = (T)acc;
    for (int64_t k = 0; k < n; k++) {
      int64_t j = k * inner;
      xc[j] = is_log ? gc[j] - exp(yc[j]) * d : yc[j] * (gc[j] - d);
    }
  }
}

/* threads per row block: enough for n, a multiple of the warp */
static unsigned row_threads(int64_t n) {
  unsigned t = 32;
  while (t < 512 && (int64_t)t < n) t *= 2;
  return t;
}

static int cuda_softmax(bool log, dl_tensor *out, const dl_tensor *x, int64_t outer, int64_t n, int64_t inner) {
  DL_CUDA_ENTRY();
  if (n == 0 || outer * inner == 0) return dl_cuda_status();
  cudaStream_t s = dl_cuda_stream();
  DL_CUDA_DISPATCH_FLOAT(out->dtype, T, {
    T *o = (T *)dl_tensor_data(out);
    const T *xp = (const T *)dl_tensor_data(x);
    if (inner == 1)
      softmax_rows_kernel<T><<<dl_cuda_grid_items(outer), row_threads(n), 0, s>>>(log, o, xp, outer, n);
    else
      softmax_cols_kernel<T><<<dl_cuda_blocks(outer * inner), DL_CUDA_THREADS, 0, s>>>(log, o, xp, outer, n, inner);
  });
  DL_CUDA_LAUNCHED("softmax");
  return dl_cuda_status();
}

static int cuda_softmax_backward(bool log, dl_tensor *gx, const dl_tensor *g, const dl_tensor *y, int64_t outer,
                                  int64_t n, int64_t inner) {
  DL_CUDA_ENTRY();
  if (n == 0 || outer * inner == 0) return dl_cuda_status();
  cudaStream_t s = dl_cuda_stream();
  DL_CUDA_DISPATCH_FLOAT(gx->dtype, T, {
    T *o = (T *)dl_tensor_data(gx);
    const T *gp = (const T *)dl_tensor_data(g), *yp = (const T *)dl_tensor_data(y);
    if (inner == 1)
      softmax_bwd_rows_kernel<T><<<dl_cuda_grid_items(outer), row_threads(n), 0, s>>>(log, o, gp, yp, outer, n);
    else
      softmax_bwd_cols_kernel<T><<<dl_cuda_blocks(outer * inner), DL_CUDA_THREADS, 0, s>>>(log, o, gp, yp, outer, n,
                                                                                         inner);
  });
  DL_CUDA_LAUNCHED("softmax backward");
  return dl_cuda_status();
}

/* the table is filled in member order: a new member must be added below */
static_assert(sizeof(struct dl_act_kernels) == 6 * sizeof(void *),
              "dl_act_kernels changed: fill its new members");

extern "C" const struct dl_act_kernels dl_cuda_act = {
    cuda_act_forward, cuda_act_backward, cuda_prelu, cuda_prelu_backward, cuda_softmax, cuda_softmax_backward,
};
