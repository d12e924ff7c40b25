/* cuda_loss.cu — GPU kernels of the fused losses (src/cpu/cpu_loss.c's
 * twins). Cross-entropy / NLL: one warp per row of C classes (stride D in
 * the [N, C, D] layout), max and logsumexp by warp shuffles in double, the
 * loss and the gradient written in the same pass without materialising
 * probabilities. A target outside 1..C (not ignore_index) is flagged in
 * device memory and reported at the next sync point, so a training step
 * never waits for the GPU here. Regression losses: one thread
 * per element over any strides. */
#include "cuda_nn_util.cuh"

extern "C" {
#include "../ops/dl_loss.h"
}

#define ROWS_PER_BLOCK (DL_CUDA_THREADS / DL_CUDA_WARP)

/* The first bad target seen: flag (0/1), value and class count. The class
 * forward reads it (one 16-byte copy and a sync) and clears it, so the op
 * itself reports the bad target and nothing is left for a later op. */
struct bad_target {
  int flag;
  long long value;
  long long classes;
};
__device__ bad_target dl_cuda_loss_bad;

template <typename T>
__global__ void class_forward_kernel(const T *x, const int64_t *y, const T *w, T *loss, T *wt, T *lse, int64_t rows,
                                     int64_t C, int64_t D, double s, bool lsm, int64_t ign) {
  const int lane = threadIdx.x % DL_CUDA_WARP;
  const int64_t warp0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / DL_CUDA_WARP;
  const int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) / DL_CUDA_WARP;
  for (int64_t r = warp0; r < rows; r += nwarps) {
    const T *xr = x + (r / D) * C * D + r % D;
    double l = 0;
    if (lsm) {
      T m = -INFINITY;
      for (int64_t j = lane; j < C; j += DL_CUDA_WARP) m = xr[j * D] > m ? xr[j * D] : m;
      m = dl_warp_max(m);
      m = __shfl_sync(DL_CUDA_FULL_MASK, m, 0);
      double acc = 0;
      for (int64_t j = lane; j < C; j += DL_CUDA_WARP) acc += (double)exp(xr[j * D] - m);
      acc = __shfl_sync(DL_CUDA_FULL_MASK, dl_warp_sum(acc), 0);
      l = (double)m + log(acc);
      if (lse && lane == 0) lse[r] = (T)l;
    }
    const int64_t yi = y[r];
    if (yi == ign || yi < 1 || yi > C) {
      if (lane == 0) {
        if (yi != ign && atomicCAS(&dl_cuda_loss_bad.flag, 0, 1) == 0) {
          dl_cuda_loss_bad.value = (long long)yi;
          dl_cuda_loss_bad.classes = (long long)C;
        }
        loss[r] = 0;
        if (wt) wt[r] = 0;
      }
      continue;
    }
    const int64_t k = yi - 1;
    const double wy = w ? (double)w[k] : 1.0;
    double v = -(1.0 - s) * wy * ((double)xr[k * D] - l);
    if (s > 0) {
      /* sum_j w_j (x_j - l) */
      double acc = 0;
      for (int64_t j = lane; j < C; j += DL_CUDA_WARP)
        acc += (w ? (double)w[j] : 1.0) * ((double)xr[j * D] - l);
      acc = dl_warp_sum(acc);
      v -= s / (double)C * acc;
    }
    if (lane == 0) {
      loss[r] = (T)v;
      if (wt) wt[r] = (T)wy;
    }
  }
}

/* A target out of range is found by the kernel and read back here (16
 * bytes and a sync), so the op itself fails and no flag is left set for an
 * unrelated later op to trip over. */
static int cuda_class_forward(dl_class_loss_call *c) {
  DL_CUDA_ENTRY();
  c->bad = false;
  c->bad_value = 0;
  const int64_t C = c->input->shape[1], D = c->input->shape[2], rows = c->input->shape[0] * D;
  if (rows == 0) return dl_cuda_status();
  cudaStream_t st = dl_cuda_stream();
  unsigned blocks = dl_cuda_blocks(rows * DL_CUDA_WARP);
  DL_CUDA_DISPATCH_FLOAT(c->input->dtype, T,
                         class_forward_kernel<T><<<blocks, DL_CUDA_THREADS, 0, st>>>(
                             (const T *)dl_tensor_data(c->input), (const int64_t *)dl_tensor_data(c->target),
                             c->weight ? (const T *)dl_tensor_data(c->weight) : NULL, (T *)dl_tensor_data(c->loss),
                             c->wt ? (T *)dl_tensor_data(c->wt) : NULL, c->lse ? (T *)dl_tensor_data(c->lse) : NULL,
                             rows, C, D, c->smoothing, c->log_softmax, c->ignore_index));
  if (DL_CUDA_LAUNCHED("cross_entropy")) return dl_cuda_status();
  bad_target bad = {0, 0, 0};
  if (DL_CUDA_CHECK(cudaMemcpyFromSymbolAsync(&bad, dl_cuda_loss_bad, sizeof bad, 0, cudaMemcpyDeviceToHost, st)) ||
      DL_CUDA_CHECK(cudaStreamSynchronize(st)))
    return dl_cuda_status();
  if (bad.flag) {
    c->bad = true;
    c->bad_value = (int64_t)bad.value;
    bad_target zero = {0, 0, 0};
    DL_CUDA_CHECK(cudaMemcpyToSymbolAsync(dl_cuda_loss_bad, &zero, sizeof zero, 0, cudaMemcpyHostToDevice, st));
  }
  return dl_cuda_status();
}

/* gr_j = gs (p_j qsum - sc w_j) (p_j = exp(x_j - l), or 0 without the
 * softmax term), and the target's -gs (1 - s) w_y on top */
template <typename T>
__global__ void class_backward_kernel(T *gx, const T *x, const int64_t *y, const T *w, const T *lse, const T *g,
                                      int64_t gstep, int64_t rows, int64_t C, int64_t D, double s, bool sm,
                                      int64_t ign) {
  const int lane = threadIdx.x % DL_CUDA_WARP;
  const int64_t warp0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / DL_CUDA_WARP;
  const int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) / DL_CUDA_WARP;
  const double sc = s / (double)C;
  for (int64_t r = warp0; r < rows; r += nwarps) {
    const int64_t off = (r / D) * C * D + r % D;
    const T *xr = x + off;
    T *gr = gx + off;
    const int64_t yi = y[r];
    if (yi == ign || yi < 1 || yi > C) {
      for (int64_t j = lane; j < C; j += DL_CUDA_WARP) gr[j * D] = 0;
      continue;
    }
    /* sum_c w_c (only the smoothing term reads it) */
    double wall = (double)C;
    if (w && s > 0) {
      double acc = 0;
      for (int64_t j = lane; j < C; j += DL_CUDA_WARP) acc += (double)w[j];
      wall = __shfl_sync(DL_CUDA_FULL_MASK, dl_warp_sum(acc), 0);
    }
    const int64_t k = yi - 1;
    const double gs = (double)g[r * gstep];
    const double wy = w ? (double)w[k] : 1.0;
    const T qs = (T)((1.0 - s) * wy + sc * wall);
    const T l = sm ? lse[r] : (T)0;
    const T tsc = (T)sc, tgs = (T)gs;
    for (int64_t j = lane; j < C; j += DL_CUDA_WARP) {
      const T wj = w ? w[j] : (T)1;
      T v = sm ? tgs * (exp(xr[j * D] - l) * qs - tsc * wj) : -tgs * tsc * wj;
      if (j == k) v = (T)((double)v - gs * (1.0 - s) * wy);
      gr[j * D] = v;
    }
  }
}

static int cuda_class_backward(const dl_class_loss_backward_call *c) {
  DL_CUDA_ENTRY();
  const int64_t C = c->input->shape[1], D = c->input->shape[2], rows = c->input->shape[0] * D;
  if (rows == 0) return dl_cuda_status();
  const int64_t gstep = c->gout->numel == 1 ? 0 : 1;
  unsigned blocks = dl_cuda_blocks(rows * DL_CUDA_WARP);
  DL_CUDA_DISPATCH_FLOAT(c->input->dtype, T,
                         class_backward_kernel<T><<<blocks, DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             (T *)dl_tensor_data(c->grad), (const T *)dl_tensor_data(c->input),
                             (const int64_t *)dl_tensor_data(c->target),
                             c->weight ? (const T *)dl_tensor_data(c->weight) : NULL,
                             c->lse ? (const T *)dl_tensor_data(c->lse) : NULL, (const T *)dl_tensor_data(c->gout),
                             gstep, rows, C, D, c->smoothing, c->softmax_term, c->ignore_index));
  DL_CUDA_LAUNCHED("cross_entropy backward");
  return dl_cuda_status();
}

/* ---- element-wise regression losses: the CPU's formulas, with the same
 * float -> double promotions ---- */

#define SIGN(d) ((d) > 0 ? 1 : (d) < 0 ? -1 : (d))

template <typename T> __device__ __forceinline__ T pw_f(dl_pointwise_loss kind, T d, T b) {
  switch (kind) {
  case DL_LOSS_MSE: return (T)(d * d);
  case DL_LOSS_L1: return (T)fabs((double)d);
  default: return (T)(fabs((double)d) < b ? 0.5 * d * d / b : fabs((double)d) - 0.5 * b);
  }
}

template <typename T> __device__ __forceinline__ T pw_d(dl_pointwise_loss kind, T d, T b) {
  switch (kind) {
  case DL_LOSS_MSE: return (T)(2 * d);
  case DL_LOSS_L1: return d == d ? (T)SIGN(d) : (T)0; /* sign(NaN) = 0 here, as PyTorch's l1_loss backward */
  default: return (T)(fabs((double)d) < b ? d / b : SIGN(d));
  }
}

template <typename T>
__global__ void pw_kernel(dl_cuda_view o, dl_cuda_view x, dl_cuda_view t, int64_t n, dl_pointwise_loss kind, T b) {
  DL_CUDA_FOR(i, n) {
    const T d = dl_cuda_at<T>(x, i) - dl_cuda_at<T>(t, i);
    dl_cuda_at<T>(o, i) = pw_f<T>(kind, d, b);
  }
}

template <typename T>
__global__ void pw_back_kernel(dl_cuda_view gx, dl_cuda_view g, dl_cuda_view x, dl_cuda_view t, int64_t n,
                               dl_pointwise_loss kind, T b) {
  DL_CUDA_FOR(i, n) {
    const T d = dl_cuda_at<T>(x, i) - dl_cuda_at<T>(t, i);
    dl_cuda_at<T>(gx, i) = dl_cuda_at<T>(g, i) * pw_d<T>(kind, d, b);
  }
}

static int cuda_pointwise(dl_tensor *out, const dl_tensor *x, const dl_tensor *t, dl_pointwise_loss kind,
                           double beta) {
  DL_CUDA_ENTRY();
  int64_t n = out->numel;
  if (n == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(out->dtype, T,
                         pw_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             dl_cuda_view_of(out), dl_cuda_view_of(x), dl_cuda_view_of(t), n, kind, (T)beta));
  DL_CUDA_LAUNCHED("loss");
  return dl_cuda_status();
}

static int cuda_pointwise_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *x, const dl_tensor *t,
                                    dl_pointwise_loss kind, double beta) {
  DL_CUDA_ENTRY();
  int64_t n = gx->numel;
  if (n == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(gx->dtype, T,
                         pw_back_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             dl_cuda_view_of(gx), dl_cuda_view_of(g), dl_cuda_view_of(x), dl_cuda_view_of(t), n, kind,
                             (T)beta));
  DL_CUDA_LAUNCHED("loss backward");
  return dl_cuda_status();
}

/* the table is filled in member order: a new member must be added below */
static_assert(sizeof(struct dl_loss_kernels) == 4 * sizeof(void *),
              "dl_loss_kernels changed: fill its new members");

extern "C" const struct dl_loss_kernels dl_cuda_loss = {
    cuda_class_forward,
    cuda_class_backward,
    cuda_pointwise,
    cuda_pointwise_backward,
};
