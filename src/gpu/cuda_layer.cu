/* cuda_layer.cu — GPU kernels of the fused layer ops (src/ops/dl_layer.h),
 * twins of src/cpu/cpu_layer.c: RBF features (the cross terms by one GEMM
 * through the device's linalg table, then exp), batch norm's per-channel
 * statistics in one pass (Welford per thread, merged across the block, in
 * double), normalisation, and the closed-form backward. Operands are
 * contiguous and of one float dtype. */
#include "cuda_nn_util.cuh"

extern "C" {
#include "../ops/dl_layer.h"
#include "../ops/dl_linalg.h"
}

/* row-major GEMMs as column-major calls on the transposed problem */
static const struct dl_linalg_kernels *linalg_of(const dl_tensor *t) {
  const dl_backend *be = dl_backend_get(dl_tensor_device(t));
  return be ? be->linalg : NULL;
}

/* ---- RBF ---- */

/* c2[j] = |c_j|^2 and inv[j] = 1 / (2 s_j^2), as the CPU rounds them */
template <typename T> __global__ void rbf_center_kernel(T *c2, T *inv, const T *c, const T *sg, int64_t n, int64_t D) {
  DL_CUDA_FOR(j, n) {
    double s = 0;
    for (int64_t d = 0; d < D; d++) s += (double)c[j * D + d] * c[j * D + d];
    c2[j] = (T)s;
    inv[j] = (T)(1.0 / (2.0 * (double)sg[j] * sg[j]));
  }
}

/* one block per row: |x_i|^2, then out = exp(-max(d2, 0) inv_j) with
 * d2 = |x_i|^2 + |c_j|^2 - 2 x_i . c_j (the dot already in out) */
template <typename T>
__global__ void rbf_rows_kernel(T *out, const T *x, const T *c2, const T *inv, int64_t N, int64_t n, int64_t D,
                                int64_t b, bool have_dot) {
  __shared__ double sh[32];
  const int64_t ld = n + b;
  for (int64_t i = blockIdx.x; i < N; i += gridDim.x) {
    double s = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += (double)x[i * D + d] * x[i * D + d];
    T x2 = (T)dl_block_sum(s, sh);
    T *row = out + i * ld;
    if (b && threadIdx.x == 0) row[0] = 1;
    row += b;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      T dot = have_dot ? row[j] : (T)0;
      T d2 = x2 + c2[j] - 2 * dot;
      row[j] = exp(-(d2 > 0 ? d2 : (T)0) * inv[j]);
    }
  }
}

static int cuda_rbf_forward(dl_tensor *out, const dl_tensor *x, const dl_tensor *centers, const dl_tensor *sigmas,
                             dl_tensor *scratch, bool bias_unit) {
  DL_CUDA_ENTRY();
  int64_t N = x->shape[0], D = x->shape[1], n = centers->shape[0], b = bias_unit ? 1 : 0, ld = n + b;
  cudaStream_t st = dl_cuda_stream();
  bool have_dot = N > 0 && n > 0 && D > 0;
  if (have_dot) {
    const struct dl_linalg_kernels *la = linalg_of(out);
    if (!la) return dl_cuda_status();
    /* out[:, b:]^T (n x N, ld) = C (n x D) @ X^T (D x N): centers stored
     * column-major as D x n (transposed), x as D x N */
    la->gemm(x->dtype, true, false, n, N, D, 1.0, dl_tensor_data(centers), D, dl_tensor_data(x), D, 0.0,
             (char *)dl_tensor_data(out) + b * dl_dtype_size(out->dtype), ld);
  }
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T, {
    T *c2 = (T *)dl_tensor_data(scratch), *inv = c2 + n;
    if (n > 0)
      rbf_center_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, st>>>(
          c2, inv, (const T *)dl_tensor_data(centers), (const T *)dl_tensor_data(sigmas), n, D);
    if (N > 0)
      rbf_rows_kernel<T><<<dl_cuda_grid_items(N), DL_CUDA_THREADS, 0, st>>>(
          (T *)dl_tensor_data(out), (const T *)dl_tensor_data(x), c2, inv, N, n, D, b, have_dot);
  });
  DL_CUDA_LAUNCHED("rbf");
  return dl_cuda_status();
}

/* A[i, j] = g phi / s_j^2 */
template <typename T>
__global__ void rbf_a_kernel(T *a, const T *g, const T *phi, const T *sg, int64_t N, int64_t n, int64_t b) {
  const int64_t ld = n + b;
  DL_CUDA_FOR(e, N * n) {
    int64_t i = e / n, j = e % n;
    a[e] = g[i * ld + b + j] * phi[i * ld + b + j] / (sg[j] * sg[j]);
  }
}

/* gx[i, :] -= rowsum(A)_i x_i */
template <typename T> __global__ void rbf_gx_fix_kernel(T *o, const T *a, const T *x, int64_t N, int64_t n, int64_t D) {
  DL_CUDA_FOR(i, N) {
    double r = 0;
    for (int64_t j = 0; j < n; j++) r += a[i * n + j];
    for (int64_t d = 0; d < D; d++) o[i * D + d] -= (T)r * x[i * D + d];
  }
}

/* gc[j, :] -= colsum(A)_j c_j (gc zeroed first when there is no GEMM) */
template <typename T>
__global__ void rbf_gc_fix_kernel(T *o, const T *a, const T *c, int64_t N, int64_t n, int64_t D, bool zero) {
  DL_CUDA_FOR(j, n) {
    double r = 0;
    for (int64_t i = 0; i < N; i++) r += a[i * n + j];
    for (int64_t d = 0; d < D; d++) {
      T base = zero ? (T)0 : o[j * D + d];
      o[j * D + d] = base - (T)r * c[j * D + d];
    }
  }
}

/* gs_j = -2 / s_j sum_i g phi ln phi */
template <typename T>
__global__ void rbf_gs_kernel(T *o, const T *g, const T *phi, const T *sg, int64_t N, int64_t n, int64_t b) {
  const int64_t ld = n + b;
  DL_CUDA_FOR(j, n) {
    double r = 0;
    for (int64_t i = 0; i < N; i++) {
      double p = phi[i * ld + b + j];
      if (p > 0) r += g[i * ld + b + j] * p * log(p);
    }
    o[j] = (T)(-2 * r / sg[j]);
  }
}

static int cuda_rbf_backward(dl_tensor *gx, dl_tensor *gc, dl_tensor *gs, const dl_tensor *g, const dl_tensor *phi,
                              const dl_tensor *x, const dl_tensor *centers, const dl_tensor *sigmas,
                              dl_tensor *scratch, bool bias_unit) {
  DL_CUDA_ENTRY();
  int64_t N = x->shape[0], D = x->shape[1], n = centers->shape[0], b = bias_unit ? 1 : 0;
  cudaStream_t st = dl_cuda_stream();
  const struct dl_linalg_kernels *la = linalg_of(x);
  if (!la) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T, {
    const T *gp = (const T *)dl_tensor_data(g), *pp = (const T *)dl_tensor_data(phi);
    const T *xp = (const T *)dl_tensor_data(x), *cp = (const T *)dl_tensor_data(centers);
    const T *sp = (const T *)dl_tensor_data(sigmas);
    T *ap = (T *)dl_tensor_data(scratch);
    if (N * n > 0) rbf_a_kernel<T><<<dl_cuda_blocks(N * n), DL_CUDA_THREADS, 0, st>>>(ap, gp, pp, sp, N, n, b);
    if (gx && N > 0 && D > 0) {
      T *o = (T *)dl_tensor_data(gx);
      /* gx^T (D x N) = C^T (D x n) @ A^T (n x N) */
      if (n > 0)
        la->gemm(x->dtype, false, false, D, N, n, 1.0, cp, D, ap, n, 0.0, o, D);
      else
        DL_CUDA_CHECK(cudaMemsetAsync(o, 0, (size_t)(N * D) * sizeof(T), st));
      rbf_gx_fix_kernel<T><<<dl_cuda_blocks(N), DL_CUDA_THREADS, 0, st>>>(o, ap, xp, N, n, D);
    }
    if (gc && n > 0 && D > 0) {
      T *o = (T *)dl_tensor_data(gc);
      /* gc^T (D x n) = X^T (D x N) @ A (N x n) */
      if (N > 0) la->gemm(x->dtype, false, true, D, n, N, 1.0, xp, D, ap, n, 0.0, o, D);
      rbf_gc_fix_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, st>>>(o, ap, cp, N, n, D, N == 0);
    }
    if (gs && n > 0)
      rbf_gs_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, st>>>((T *)dl_tensor_data(gs), gp, pp, sp, N, n, b);
  });
  DL_CUDA_LAUNCHED("rbf backward");
  return dl_cuda_status();
}

/* ---- batch norm on [N, C, L]: one block per channel ---- */

template <typename T>
__global__ void bn_stats_kernel(const T *x, int64_t N, int64_t C, int64_t L, T *mean, T *var, T *invstd, double eps) {
  __shared__ dl_welford sh[32];
  const int64_t M = N * L;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    dl_welford a = {0, 0, 0};
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) dl_welford_add(a, (double)x[((e / L) * C + c) * L + e % L]);
    a = dl_block_welford(a, sh);
    if (threadIdx.x == 0) {
      double mu = M > 0 ? a.mean : 0, v = M > 0 ? a.m2 / (double)M : 0;
      mean[c] = (T)mu;
      var[c] = (T)v;
      invstd[c] = (T)(1.0 / sqrt(v + eps));
    }
    __syncthreads(); /* sh is reused by the next channel */
  }
}

static int cuda_bn_stats(const dl_tensor *x, int64_t N, int64_t C, int64_t L, dl_tensor *mean, dl_tensor *var,
                          dl_tensor *invstd, double eps) {
  DL_CUDA_ENTRY();
  if (C == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T,
                         bn_stats_kernel<T><<<dl_cuda_grid_items(C), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             (const T *)dl_tensor_data(x), N, C, L, (T *)dl_tensor_data(mean),
                             (T *)dl_tensor_data(var), (T *)dl_tensor_data(invstd), eps));
  DL_CUDA_LAUNCHED("batch_norm");
  return dl_cuda_status();
}

/* the normalisation's pre-activation (x - mean_c) a_c + b_c (a_c =
 * invstd_c w_c), the product and sum one fused multiply-add as on the CPU,
 * so the backward's recomputed ReLU mask matches the forward's output */
template <typename T>
__device__ T bn_pre(T x, int64_t c, const T *mp, const T *rp, const T *wp, const T *bp) {
  return fma(x - mp[c], rp[c] * (wp ? wp[c] : (T)1), bp ? bp[c] : (T)0);
}

/* out = the pre-activation, then max(out, 0) with relu (NaN stays NaN) */
template <typename T>
__global__ void bn_apply_kernel(T *o, const T *x, int64_t total, int64_t C, int64_t L, const T *mp, const T *rp,
                                const T *wp, const T *bp, bool relu) {
  DL_CUDA_FOR(e, total) {
    T v = bn_pre(x[e], (e / L) % C, mp, rp, wp, bp);
    o[e] = relu && v < 0 ? (T)0 : v;
  }
}

static int cuda_bn_apply(dl_tensor *out, const dl_tensor *x, int64_t N, int64_t C, int64_t L, const dl_tensor *mean,
                          const dl_tensor *invstd, const dl_tensor *weight, const dl_tensor *bias, bool relu) {
  DL_CUDA_ENTRY();
  int64_t total = N * C * L;
  if (total == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T,
                         bn_apply_kernel<T><<<dl_cuda_blocks(total), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             (T *)dl_tensor_data(out), (const T *)dl_tensor_data(x), total, C, L,
                             (const T *)dl_tensor_data(mean), (const T *)dl_tensor_data(invstd),
                             weight ? (const T *)dl_tensor_data(weight) : NULL,
                             bias ? (const T *)dl_tensor_data(bias) : NULL, relu));
  DL_CUDA_LAUNCHED("batch_norm");
  return dl_cuda_status();
}

/* per channel: sums of g and g xhat (block reductions in double), then gx;
 * g = gy, or with relu gy where the pre-activation is > 0 or NaN */
template <typename T>
__global__ void bn_backward_kernel(T *gx, T *gw, T *gb, const T *gy, const T *x, int64_t N, int64_t C, int64_t L,
                                   const T *mp, const T *rp, const T *wp, const T *bp, bool relu) {
  __shared__ double sh[32];
  const int64_t M = N * L;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double mu = mp[c], r = rp[c], sg = 0, sgx = 0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
      int64_t at = ((e / L) * C + c) * L + e % L;
      double g = relu && bn_pre(x[at], c, mp, rp, wp, bp) <= 0 ? 0.0 : (double)gy[at];
      sg += g;
      sgx += g * (x[at] - mu) * r;
    }
    sg = dl_block_sum(sg, sh);
    sgx = dl_block_sum(sgx, sh);
    if (threadIdx.x == 0) {
      if (gw) gw[c] = (T)sgx;
      if (gb) gb[c] = (T)sg;
    }
    if (gx) {
      double k = r * (wp ? (double)wp[c] : 1.0), mg = sg / (double)M, mgx = sgx / (double)M;
      for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
        int64_t at = ((e / L) * C + c) * L + e % L;
        double xh = (x[at] - mu) * r, g = relu && bn_pre(x[at], c, mp, rp, wp, bp) <= 0 ? 0.0 : (double)gy[at];
        gx[at] = (T)(k * (g - mg - xh * mgx));
      }
    }
  }
}

static int cuda_bn_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                             int64_t N, int64_t C, int64_t L, const dl_tensor *mean, const dl_tensor *invstd,
                             const dl_tensor *weight, const dl_tensor *bias, bool relu) {
  DL_CUDA_ENTRY();
  if (C == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T,
                         bn_backward_kernel<T><<<dl_cuda_grid_items(C), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             gx ? (T *)dl_tensor_data(gx) : NULL, gw ? (T *)dl_tensor_data(gw) : NULL,
                             gb ? (T *)dl_tensor_data(gb) : NULL, (const T *)dl_tensor_data(gy),
                             (const T *)dl_tensor_data(x), N, C, L, (const T *)dl_tensor_data(mean),
                             (const T *)dl_tensor_data(invstd), weight ? (const T *)dl_tensor_data(weight) : NULL,
                             bias ? (const T *)dl_tensor_data(bias) : NULL, relu));
  DL_CUDA_LAUNCHED("batch_norm backward");
  return dl_cuda_status();
}

/* ---- recurrent cells: one thread per (row, unit), the CPU's formulas ---- */

template <typename T> __device__ T sig(T z) {
  T e = exp(-fabs(z)), r = (T)1 / ((T)1 + e);
  return z >= 0 ? r : e * r;
}

template <typename T> __global__ void lstm_cell_kernel(T *h, T *c1, const T *gates, const T *c, int64_t B, int64_t H) {
  DL_CUDA_FOR(e, B * H) {
    const int64_t b = e / H, j = e % H;
    const T *g = gates + b * 4 * H;
    const T i = sig(g[j]), f = sig(g[H + j]), gg = tanh(g[2 * H + j]), o = sig(g[3 * H + j]);
    const T cn = f * c[e] + i * gg;
    c1[e] = cn;
    h[e] = o * tanh(cn);
  }
}

template <typename T>
__global__ void lstm_cell_backward_kernel(T *dgates, T *dc, const T *gh, const T *gc1, const T *gates, const T *c,
                                          const T *c1, int64_t B, int64_t H) {
  DL_CUDA_FOR(e, B * H) {
    const int64_t b = e / H, j = e % H;
    const T *g = gates + b * 4 * H;
    T *d = dgates + b * 4 * H;
    const T i = sig(g[j]), f = sig(g[H + j]), gg = tanh(g[2 * H + j]), o = sig(g[3 * H + j]);
    const T tc = tanh(c1[e]), dh = gh[e];
    const T dcn = gc1[e] + dh * o * ((T)1 - tc * tc);
    d[j] = dcn * gg * i * ((T)1 - i);
    d[H + j] = dcn * c[e] * f * ((T)1 - f);
    d[2 * H + j] = dcn * i * ((T)1 - gg * gg);
    d[3 * H + j] = dh * tc * o * ((T)1 - o);
    dc[e] = dcn * f;
  }
}

template <typename T> __global__ void gru_cell_kernel(T *h1, const T *gi, const T *gh, const T *h, int64_t B, int64_t H) {
  DL_CUDA_FOR(e, B * H) {
    const int64_t b = e / H, j = e % H;
    const T *a = gi + b * 3 * H, *q = gh + b * 3 * H;
    const T r = sig(a[j] + q[j]), z = sig(a[H + j] + q[H + j]);
    const T n = tanh(a[2 * H + j] + r * q[2 * H + j]);
    h1[e] = n + z * (h[e] - n);
  }
}

template <typename T>
__global__ void gru_cell_backward_kernel(T *dgi, T *dgh, T *dh, const T *g, const T *gi, const T *gh, const T *h,
                                         int64_t B, int64_t H) {
  DL_CUDA_FOR(e, B * H) {
    const int64_t b = e / H, j = e % H;
    const T *a = gi + b * 3 * H, *q = gh + b * 3 * H;
    T *da = dgi + b * 3 * H, *dq = dgh + b * 3 * H;
    const T r = sig(a[j] + q[j]), z = sig(a[H + j] + q[H + j]);
    const T n = tanh(a[2 * H + j] + r * q[2 * H + j]), go = g[e];
    const T dn = go * ((T)1 - z) * ((T)1 - n * n);
    const T dr = dn * q[2 * H + j] * r * ((T)1 - r), dz = go * (h[e] - n) * z * ((T)1 - z);
    da[j] = dq[j] = dr;
    da[H + j] = dq[H + j] = dz;
    da[2 * H + j] = dn;
    dq[2 * H + j] = dn * r;
    dh[e] = go * z;
  }
}

/* rows and units of a [B, H] or [H] state */
static void rows_units(const dl_tensor *s, int64_t *B, int64_t *H) {
  *B = s->ndim == 2 ? s->shape[0] : 1;
  *H = s->shape[s->ndim - 1];
}

#define DATA(t) ((T *)dl_tensor_data(t))
#define CDATA(t) ((const T *)dl_tensor_data(t))

static int cuda_lstm_cell(dl_tensor *h, dl_tensor *c1, const dl_tensor *gates, const dl_tensor *c) {
  DL_CUDA_ENTRY();
  int64_t B, H;
  rows_units(c, &B, &H);
  if (B * H == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(c->dtype, T,
                         lstm_cell_kernel<T><<<dl_cuda_blocks(B * H), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             DATA(h), DATA(c1), CDATA(gates), CDATA(c), B, H));
  DL_CUDA_LAUNCHED("lstm_cell");
  return dl_cuda_status();
}

static int cuda_lstm_cell_backward(dl_tensor *dgates, dl_tensor *dc, const dl_tensor *gh, const dl_tensor *gc1,
                                    const dl_tensor *gates, const dl_tensor *c, const dl_tensor *c1) {
  DL_CUDA_ENTRY();
  int64_t B, H;
  rows_units(c, &B, &H);
  if (B * H == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(
      c->dtype, T,
      lstm_cell_backward_kernel<T><<<dl_cuda_blocks(B * H), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
          DATA(dgates), DATA(dc), CDATA(gh), CDATA(gc1), CDATA(gates), CDATA(c), CDATA(c1),
          B, H));
  DL_CUDA_LAUNCHED("lstm_cell backward");
  return dl_cuda_status();
}

static int cuda_gru_cell(dl_tensor *h1, const dl_tensor *gi, const dl_tensor *gh, const dl_tensor *h) {
  DL_CUDA_ENTRY();
  int64_t B, H;
  rows_units(h, &B, &H);
  if (B * H == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(h->dtype, T,
                         gru_cell_kernel<T><<<dl_cuda_blocks(B * H), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                             DATA(h1), CDATA(gi), CDATA(gh), CDATA(h), B, H));
  DL_CUDA_LAUNCHED("gru_cell");
  return dl_cuda_status();
}

static int cuda_gru_cell_backward(dl_tensor *dgi, dl_tensor *dgh, dl_tensor *dh, const dl_tensor *g,
                                   const dl_tensor *gi, const dl_tensor *gh, const dl_tensor *h) {
  DL_CUDA_ENTRY();
  int64_t B, H;
  rows_units(h, &B, &H);
  if (B * H == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(
      h->dtype, T,
      gru_cell_backward_kernel<T><<<dl_cuda_blocks(B * H), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
          DATA(dgi), DATA(dgh), DATA(dh), CDATA(g), CDATA(gi), CDATA(gh), CDATA(h), B, H));
  DL_CUDA_LAUNCHED("gru_cell backward");
  return dl_cuda_status();
}

/* ---- attention weights: one block per row, a causal row stopping at its query ---- */

template <typename T>
__global__ void attn_softmax_kernel(T *y, const T *x, int64_t R, int64_t L, int64_t S, T scale, bool causal) {
  __shared__ double shd[32];
  __shared__ T sht[32];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T *xr = x + r * S;
    T *yr = y + r * S;
    const int64_t n = causal && r % L + 1 < S ? r % L + 1 : S;
    T m = scale * xr[0];
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) m = scale * xr[k] > m ? scale * xr[k] : m;
    m = dl_block_max<T>(m, scale * xr[0], sht);
    double sum = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      T e = exp(scale * xr[k] - m);
      yr[k] = e;
      sum += (double)e;
    }
    sum = dl_block_sum(sum, shd);
    T inv = (T)(1.0 / sum);
    for (int64_t k = threadIdx.x; k < S; k += blockDim.x) yr[k] = k < n ? yr[k] * inv : (T)0;
  }
}

template <typename T> __global__ void attn_softmax_bwd_kernel(T *gx, const T *g, const T *y, int64_t R, int64_t S, T scale) {
  __shared__ double shd[32];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T *gr = g + r * S, *yr = y + r * S;
    double dot = 0;
    for (int64_t k = threadIdx.x; k < S; k += blockDim.x) dot += (double)gr[k] * yr[k];
    T d = (T)dl_block_sum(dot, shd);
    for (int64_t k = threadIdx.x; k < S; k += blockDim.x) gx[r * S + k] = scale * (yr[k] * (gr[k] - d));
  }
}

static unsigned attn_threads(int64_t S) {
  unsigned t = 32;
  while (t < 512 && (int64_t)t < S) t *= 2;
  return t;
}

static int cuda_attn_softmax(dl_tensor *y, const dl_tensor *x, int64_t L, int64_t S, double scale, bool causal) {
  DL_CUDA_ENTRY();
  const int64_t R = x->numel / S;
  DL_CUDA_DISPATCH_FLOAT(x->dtype, T,
                         attn_softmax_kernel<T><<<dl_cuda_grid_items(R), attn_threads(S), 0, dl_cuda_stream()>>>(
                             DATA(y), CDATA(x), R, L, S, (T)scale, causal));
  DL_CUDA_LAUNCHED("attention_softmax");
  return dl_cuda_status();
}

static int cuda_attn_softmax_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *y, int64_t S, double scale) {
  DL_CUDA_ENTRY();
  const int64_t R = y->numel / S;
  DL_CUDA_DISPATCH_FLOAT(y->dtype, T,
                         attn_softmax_bwd_kernel<T><<<dl_cuda_grid_items(R), attn_threads(S), 0, dl_cuda_stream()>>>(
                             DATA(gx), CDATA(g), CDATA(y), R, S, (T)scale));
  DL_CUDA_LAUNCHED("attention_softmax backward");
  return dl_cuda_status();
}

#undef DATA
#undef CDATA

/* the table is filled in member order: a new member must be added below */
static_assert(sizeof(struct dl_layer_kernels) == 17 * sizeof(void *),
              "dl_layer_kernels changed: fill its new members");

extern "C" const struct dl_layer_kernels dl_cuda_layer = {
    cuda_rbf_forward,  cuda_rbf_backward,          cuda_bn_stats, cuda_bn_apply,         cuda_bn_backward,
    cuda_lstm_cell,    cuda_lstm_cell_backward,    cuda_gru_cell, cuda_gru_cell_backward, cuda_attn_softmax,
    cuda_attn_softmax_backward,
    /* layer_norm, layer_norm_backward: composed from element-wise ops by
     * the autograd front-end on this device */
    nullptr,
    nullptr,
    /* bn_relu_pool, bn_relu_pool_backward: batch norm + ReLU, then max
     * pooling, as two ops on this device */
    nullptr,
    nullptr,
    /* bn_relu_c16, bn_relu_c16_backward: no blocked convolution output here */
    nullptr,
    nullptr,
};
