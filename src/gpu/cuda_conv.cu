/* cuda_conv.cu — GPU kernels of im2col and col2im (src/ops/dl_conv.h),
 * twins of src/cpu/cpu_conv.c. One thread per column entry for im2col; for
 * col2im one thread per image pixel, which gathers every column entry that
 * reads it (no atomics, the same sums on every run). Any spatial rank up
 * to 3 runs as 3-D with leading size-1 dims. */
#include "cuda_common.cuh"

extern "C" {
#include "../ops/dl_conv.h"
}

namespace {

/* cols[n, (c, k0, k1, k2), (o0, o1, o2)] = x[n, c, o s + k d - lo] or pad */
template <typename T>
__global__ void im2col_kernel(T *cols, int64_t sn, int64_t sr, const T *x, int64_t N, int64_t C, dl_window_geo g, T pad) {
  const int64_t K = g.k[0] * g.k[1] * g.k[2], L = g.O[0] * g.O[1] * g.O[2];
  const int64_t plane = g.S[0] * g.S[1] * g.S[2];
  DL_CUDA_FOR(e, N * C * K * L) {
    int64_t l = e % L, r = e / L, kk = r % K, nc = r / K;
    int64_t o2 = l % g.O[2], o1 = (l / g.O[2]) % g.O[1], o0 = l / (g.O[2] * g.O[1]);
    int64_t k2 = kk % g.k[2], k1 = (kk / g.k[2]) % g.k[1], k0 = kk / (g.k[2] * g.k[1]);
    int64_t i0 = o0 * g.s[0] + k0 * g.d[0] - g.lo[0], i1 = o1 * g.s[1] + k1 * g.d[1] - g.lo[1],
            i2 = o2 * g.s[2] + k2 * g.d[2] - g.lo[2];
    bool in = i0 >= 0 && i0 < g.S[0] && i1 >= 0 && i1 < g.S[1] && i2 >= 0 && i2 < g.S[2];
    cols[(nc / C) * sn + ((nc % C) * K + kk) * sr + l] = in ? x[nc * plane + (i0 * g.S[1] + i1) * g.S[2] + i2] : pad;
  }
}

/* the windows o of one dim whose tap k reads pixel i: o s + k d - lo = i */
template <typename T>
__global__ void col2im_kernel(T *x, const T *cols, int64_t sn, int64_t sr, int64_t N, int64_t C, dl_window_geo g) {
  const int64_t K = g.k[0] * g.k[1] * g.k[2];
  const int64_t plane = g.S[0] * g.S[1] * g.S[2];
  DL_CUDA_FOR(e, N * C * plane) {
    int64_t p = e % plane, nc = e / plane;
    int64_t i2 = p % g.S[2], i1 = (p / g.S[2]) % g.S[1], i0 = p / (g.S[2] * g.S[1]);
    double acc = 0;
    for (int64_t k0 = 0; k0 < g.k[0]; k0++) {
      int64_t t0 = i0 + g.lo[0] - k0 * g.d[0];
      if (t0 < 0 || t0 % g.s[0] != 0 || t0 / g.s[0] >= g.O[0]) continue;
      for (int64_t k1 = 0; k1 < g.k[1]; k1++) {
        int64_t t1 = i1 + g.lo[1] - k1 * g.d[1];
        if (t1 < 0 || t1 % g.s[1] != 0 || t1 / g.s[1] >= g.O[1]) continue;
        for (int64_t k2 = 0; k2 < g.k[2]; k2++) {
          int64_t t2 = i2 + g.lo[2] - k2 * g.d[2];
          if (t2 < 0 || t2 % g.s[2] != 0 || t2 / g.s[2] >= g.O[2]) continue;
          int64_t kk = (k0 * g.k[1] + k1) * g.k[2] + k2;
          int64_t l = (t0 / g.s[0] * g.O[1] + t1 / g.s[1]) * g.O[2] + t2 / g.s[2];
          acc += (double)cols[(nc / C) * sn + ((nc % C) * K + kk) * sr + l];
        }
      }
    }
    x[e] = (T)acc;
  }
}

/* one thread per window: the first maximum of its real taps (the last NaN
 * wins, as the CPU's and PyTorch's) and its flat index in the plane */
template <typename T>
__global__ void max_pool_kernel(T *y, int64_t *idx, const T *x, int64_t NC, dl_window_geo g) {
  const int64_t L = g.O[0] * g.O[1] * g.O[2], plane = g.S[0] * g.S[1] * g.S[2];
  DL_CUDA_FOR(e, NC * L) {
    int64_t l = e % L, nc = e / L;
    int64_t o2 = l % g.O[2], o1 = (l / g.O[2]) % g.O[1], o0 = l / (g.O[2] * g.O[1]);
    const T *src = x + nc * plane;
    T best = -INFINITY;
    int64_t where = -1;
    for (int64_t k0 = 0; k0 < g.k[0]; k0++) {
      int64_t i0 = o0 * g.s[0] + k0 * g.d[0] - g.lo[0];
      if (i0 < 0 || i0 >= g.S[0]) continue;
      for (int64_t k1 = 0; k1 < g.k[1]; k1++) {
        int64_t i1 = o1 * g.s[1] + k1 * g.d[1] - g.lo[1];
        if (i1 < 0 || i1 >= g.S[1]) continue;
        for (int64_t k2 = 0; k2 < g.k[2]; k2++) {
          int64_t i2 = o2 * g.s[2] + k2 * g.d[2] - g.lo[2];
          if (i2 < 0 || i2 >= g.S[2]) continue;
          int64_t at = (i0 * g.S[1] + i1) * g.S[2] + i2;
          T v = src[at];
          if (where < 0 || v > best || v != v) best = v, where = at;
        }
      }
    }
    y[e] = best;
    idx[e] = where + 1; /* 1-based, as the engine's index ops take them */
  }
}

int cuda_max_pool(dl_tensor *y, dl_tensor *idx, const dl_tensor *x, int64_t NC, const int64_t *size, const int64_t *out,
                  const dl_window *w) {
  DL_CUDA_ENTRY();
  dl_window_geo g = dl_window_geometry(size, out, w);
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T,
                         max_pool_kernel<T><<<dl_cuda_blocks(y->numel), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             (T *)dl_tensor_data(y), (int64_t *)dl_tensor_data(idx), (const T *)dl_tensor_data(x), NC,
                             g));
  DL_CUDA_LAUNCHED("max_pool");
  return dl_cuda_status();
}

/* one thread per plane, so overlapping windows add in window order as on
 * the CPU (deterministic, no atomics; few large planes leave most of the
 * card idle). The indices are max_pool's own (saved by autograd, guarded by
 * their version counter); one outside the plane is skipped rather than
 * written out of bounds (the CPU's kernel fails instead). */
template <typename T>
__global__ void max_pool_backward_kernel(T *gx, const T *g, const int64_t *idx, int64_t NC, int64_t plane, int64_t L) {
  DL_CUDA_FOR(nc, NC) {
    T *dst = gx + nc * plane;
    for (int64_t j = 0; j < plane; j++) dst[j] = 0;
    for (int64_t l = 0; l < L; l++) {
      const uint64_t j = (uint64_t)idx[nc * L + l] - 1;
      if (j < (uint64_t)plane) dst[j] += g[nc * L + l];
    }
  }
}

int cuda_max_pool_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *idx, int64_t NC, int64_t plane,
                           int64_t L) {
  DL_CUDA_ENTRY();
  DL_CUDA_DISPATCH_FLOAT(g->dtype, T,
                         max_pool_backward_kernel<T><<<dl_cuda_blocks(NC), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             (T *)dl_tensor_data(gx), (const T *)dl_tensor_data(g),
                             (const int64_t *)dl_tensor_data(idx), NC, plane, L));
  DL_CUDA_LAUNCHED("max_pool_backward");
  return dl_cuda_status();
}

int cuda_im2col(dl_tensor *cols, int64_t sn, int64_t sr, const dl_tensor *x, int64_t N, int64_t C, const int64_t *size,
                const int64_t *out, const dl_window *w) {
  DL_CUDA_ENTRY();
  dl_window_geo g = dl_window_geometry(size, out, w);
  int64_t n = cols->numel;
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T,
                         im2col_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             (T *)dl_tensor_data(cols), sn, sr, (const T *)dl_tensor_data(x), N, C, g,
                             (T)w->pad_value));
  DL_CUDA_LAUNCHED("im2col");
  return dl_cuda_status();
}

int cuda_col2im(dl_tensor *x, const dl_tensor *cols, int64_t sn, int64_t sr, int64_t N, int64_t C, const int64_t *size,
                const int64_t *out, const dl_window *w) {
  DL_CUDA_ENTRY();
  dl_window_geo g = dl_window_geometry(size, out, w);
  int64_t n = x->numel;
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T,
                         col2im_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             (T *)dl_tensor_data(x), (const T *)dl_tensor_data(cols), sn, sr, N, C, g));
  DL_CUDA_LAUNCHED("col2im");
  return dl_cuda_status();
}

} // namespace

/* the table is filled in member order: a new member must be added below */
static_assert(sizeof(struct dl_conv_kernels) == 12 * sizeof(void *), "dl_conv_kernels changed: fill its new members");

/* the fused convolution: cuDNN (cuda_cudnn.cu) */
extern "C" {
int dl_cuda_conv_forward(dl_tensor *y, const dl_tensor *x, const dl_tensor *w, const dl_tensor *b,
                         const struct dl_conv_params *p);
int dl_cuda_conv_backward_data(dl_tensor *gx, const dl_tensor *gy, const dl_tensor *w, const struct dl_conv_params *p);
int dl_cuda_conv_backward_weights(dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                                  const struct dl_conv_params *p);
bool dl_cuda_conv_supported(const dl_tensor *x, const struct dl_conv_params *p);
}

extern "C" const struct dl_conv_kernels dl_cuda_conv = {cuda_im2col,
                                                        cuda_col2im,
                                                        dl_cuda_conv_forward,
                                                        dl_cuda_conv_backward_data,
                                                        dl_cuda_conv_backward_weights,
                                                        cuda_max_pool,
                                                        dl_cuda_conv_supported,
                                                        cuda_max_pool_backward,
                                                        /* conv_backward: cuDNN's two passes in turn */
                                                        nullptr,
                                                        /* conv_c16, conv_forward_c16, conv_backward_c16:
                                                         * the output stays [N, C, H, W] */
                                                        nullptr,
                                                        nullptr,
                                                        nullptr};
