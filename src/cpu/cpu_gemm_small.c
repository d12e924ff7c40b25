/* cpu_gemm_small.c — float32 GEMM for small products (see
 * cpu_gemm_small.h). A 16x6 block of C lives in 12 AVX registers while
 * the k loop streams 16 rows of op(A) (contiguous, loaded) and 6 values of
 * op(B) (broadcast from wherever they lie, so B is never packed). A is
 * used in place when it is column-major; a transposed A is repacked once
 * (8x8 register transposes). alpha and beta are applied as C is stored,
 * so there is no separate pass over C. The last m % 8 rows use masked
 * loads and stores; row vectors (m == 1) take a dot-product / axpy path.
 * Shapes outside the measured range go to BLAS. */
#include "cpu_gemm_small.h"
#include "cpu_backend.h"

#if defined(__AVX2__) && defined(__FMA__)

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The small path's range (measured against OpenBLAS 0.3.21 on Zen 3, one
 * thread): up to 64^3 multiply-adds it is 1.1-4x faster; up to 128^3 about
 * even, so it is kept there only on one thread (OpenBLAS splits products
 * above 64^3 across threads); above, BLAS's cache blocking wins. */
#define SMALL_MAX_DIM 256
#define SMALL_MNK_ANY_THREADS ((int64_t)64 * 64 * 64)
#define SMALL_MNK_ONE_THREAD ((int64_t)128 * 128 * 128)
/* OpenBLAS's AVX-512 kernels (SkylakeX and later) beat this AVX2 path from
 * about 16^3 up (one thread, Xeon with AVX-512: matmul 64^3 3.4 vs 6.6 us,
 * the 8-64-64-64-1 MLP step 47 vs 62 us), so with them it keeps only the
 * products whose call overhead dominates */
#define SMALL_MNK_AVX512_BLAS ((int64_t)16 * 16 * 16)
#define PACK_MAX ((int64_t)256 * 256)

/* the repacked transposed A of the calling thread */
static _Thread_local float pack_buf[PACK_MAX] __attribute__((aligned(64)));

/* C[i, j] (i < 8 MV, j < NR) = alpha sum_p A[i, p] B[p, j] + beta C[i, j]
 * with A[i, p] = a[i + p lda], B[p, j] = b[p sbp + j sbj]; with a bias,
 * beta bias[i] replaces beta C[i, j] (C is not read). MASKED (MV = 1): only
 * the rows whose lane is set in mask exist; the others are neither read
 * nor written. */
ALWAYS_INLINE void ukr(const int MV, const int NR, const bool MASKED, __m256i mask, int64_t k, const float *a,
                       int64_t lda, const float *b, int64_t sbp, int64_t sbj, float *c, int64_t ldc, float alpha,
                       float beta, const float *bias) {
  __m256 acc[2][6];
#pragma GCC unroll 6
  for (int j = 0; j < NR; j++) {
    acc[0][j] = _mm256_setzero_ps();
    acc[1][j] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < k; p++) {
    const float *ap = a + p * lda, *bp = b + p * sbp;
    __m256 a0 = MASKED ? _mm256_maskload_ps(ap, mask) : _mm256_loadu_ps(ap);
    __m256 a1 = MV > 1 ? _mm256_loadu_ps(ap + 8) : a0;
#pragma GCC unroll 6
    for (int j = 0; j < NR; j++) {
      __m256 bj = _mm256_broadcast_ss(bp + j * sbj);
      acc[0][j] = _mm256_fmadd_ps(a0, bj, acc[0][j]);
      if (MV > 1) acc[1][j] = _mm256_fmadd_ps(a1, bj, acc[1][j]);
    }
  }
  __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int j = 0; j < NR; j++) {
#pragma GCC unroll 2
    for (int v = 0; v < MV; v++) {
      float *cp = c + j * ldc + 8 * v;
      __m256 r = _mm256_mul_ps(acc[v][j], va);
      if (bias) {
        __m256 bv = MASKED ? _mm256_maskload_ps(bias + 8 * v, mask) : _mm256_loadu_ps(bias + 8 * v);
        r = _mm256_fmadd_ps(bv, vb, r);
        if (MASKED) _mm256_maskstore_ps(cp, mask, r);
        else _mm256_storeu_ps(cp, r);
      } else if (MASKED) {
        if (beta != 0) r = _mm256_fmadd_ps(_mm256_maskload_ps(cp, mask), vb, r);
        _mm256_maskstore_ps(cp, mask, r);
      } else {
        if (beta != 0) r = _mm256_fmadd_ps(_mm256_loadu_ps(cp), vb, r);
        _mm256_storeu_ps(cp, r);
      }
    }
  }
}

/* one column block (nr <= 6 columns) of C over all m rows */
ALWAYS_INLINE void column_block(const int NR, int64_t m, int64_t k, const float *a, int64_t lda, const float *b,
                                int64_t sbp, int64_t sbj, float *c, int64_t ldc, float alpha, float beta,
                                const float *bias) {
  __m256i all = _mm256_set1_epi32(-1);
  int64_t i = 0;
  for (; i + 16 <= m; i += 16)
    ukr(2, NR, false, all, k, a + i, lda, b, sbp, sbj, c + i, ldc, alpha, beta, bias ? bias + i : NULL);
  if (i + 8 <= m) {
    ukr(1, NR, false, all, k, a + i, lda, b, sbp, sbj, c + i, ldc, alpha, beta, bias ? bias + i : NULL);
    i += 8;
  }
  if (i < m) { /* the last m % 8 rows */
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(m - i)), lanes);
    ukr(1, NR, true, mask, k, a + i, lda, b, sbp, sbj, c + i, ldc, alpha, beta, bias ? bias + i : NULL);
  }
}

static void gemm_blocked(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                         int64_t sbp, int64_t sbj, float beta, const float *bias, float *c, int64_t ldc) {
  int64_t j = 0;
  for (; j + 6 <= n; j += 6)
    column_block(6, m, k, a, lda, b + j * sbj, sbp, sbj, c + j * ldc, ldc, alpha, beta, bias);
  const float *bj = b + j * sbj;
  float *cj = c + j * ldc;
  switch (n - j) {
  case 5: column_block(5, m, k, a, lda, bj, sbp, sbj, cj, ldc, alpha, beta, bias); break;
  case 4: column_block(4, m, k, a, lda, bj, sbp, sbj, cj, ldc, alpha, beta, bias); break;
  case 3: column_block(3, m, k, a, lda, bj, sbp, sbj, cj, ldc, alpha, beta, bias); break;
  case 2: column_block(2, m, k, a, lda, bj, sbp, sbj, cj, ldc, alpha, beta, bias); break;
  case 1: column_block(1, m, k, a, lda, bj, sbp, sbj, cj, ldc, alpha, beta, bias); break;
  default: break;
  }
}

/* dst[i + p m] = src[p + i lds] for i < m, p < k: the transposed A made
 * column-major */
static void pack_transposed(int64_t m, int64_t k, const float *src, int64_t lds, float *dst) {
  int64_t p = 0, m8 = m & ~(int64_t)7;
  for (; p + 8 <= k; p += 8) {
    for (int64_t i = m8; i < m; i++)
      for (int q = 0; q < 8; q++) dst[i + (p + q) * m] = src[p + q + i * lds];
    for (int64_t i = 0; i < m8; i += 8) {
      __m256 r[8], t[8];
      for (int q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(src + p + (i + q) * lds); /* row i+q: A[i+q, p..p+7] */
      for (int q = 0; q < 8; q += 2) {
        t[q] = _mm256_unpacklo_ps(r[q], r[q + 1]);
        t[q + 1] = _mm256_unpackhi_ps(r[q], r[q + 1]);
      }
      for (int q = 0; q < 8; q += 4) {
        r[q] = _mm256_shuffle_ps(t[q], t[q + 2], 0x44);
        r[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], 0xEE);
        r[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
        r[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
      }
      /* r[0..3] hold columns 0,1,2,3 (rows i..i+3 low, i+4.. in r[4..7]) per 128-bit lane */
      static const int order[8] = {0, 1, 2, 3, 0, 1, 2, 3};
      for (int q = 0; q < 8; q++) {
        int lo = order[q];
        __m256 v = q < 4 ? _mm256_permute2f128_ps(r[lo], r[lo + 4], 0x20)
                         : _mm256_permute2f128_ps(r[lo], r[lo + 4], 0x31);
        _mm256_storeu_ps(dst + i + (p + q) * m, v);
      }
    }
  }
  for (; p < k; p++)
    for (int64_t i = 0; i < m; i++) dst[i + p * m] = src[p + i * lds];
}

static float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* m == 1: C[0, j] = alpha sum_p A[0, p] B[p, j] + beta C[0, j] (+ beta
 * bias[0] instead, with a bias) */
static void gemm_row(bool tb, int64_t n, int64_t k, float alpha, const float *arow, int64_t sa, const float *b,
                     int64_t ldb, float beta, const float *bias, float *c, int64_t ldc) {
  float *av = pack_buf; /* the row of A, contiguous */
  for (int64_t p = 0; p < k; p++) av[p] = arow[p * sa];
  if (!tb) { /* column j of B is contiguous: one dot product per j */
    for (int64_t j = 0; j < n; j++) {
      const float *bj = b + j * ldb;
      __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
      int64_t p = 0;
      for (; p + 16 <= k; p += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(av + p), _mm256_loadu_ps(bj + p), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(av + p + 8), _mm256_loadu_ps(bj + p + 8), s1);
      }
      float s = hsum(_mm256_add_ps(s0, s1));
      for (; p < k; p++) s += av[p] * bj[p];
      float r = alpha * s;
      c[j * ldc] = bias ? r + beta * bias[0] : beta != 0 ? r + beta * c[j * ldc] : r;
    }
    return;
  }
  /* row p of B is contiguous: accumulate A[0, p] B[p, :] in 8-wide chunks */
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t p = 0; p < k; p++)
      s = _mm256_fmadd_ps(_mm256_set1_ps(av[p]), _mm256_loadu_ps(b + j + p * ldb), s);
    float o[8];
    _mm256_storeu_ps(o, _mm256_mul_ps(s, _mm256_set1_ps(alpha)));
    for (int q = 0; q < 8; q++)
      c[(j + q) * ldc] = bias ? o[q] + beta * bias[0] : beta != 0 ? o[q] + beta * c[(j + q) * ldc] : o[q];
  }
  for (; j < n; j++) {
    float s = 0;
    for (int64_t p = 0; p < k; p++) s += av[p] * b[j + p * ldb];
    c[j * ldc] = bias ? alpha * s + beta * bias[0] : beta != 0 ? alpha * s + beta * c[j * ldc] : alpha * s;
  }
}

bool dl_cpu_sgemm_small(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                        int64_t lda, const float *b, int64_t ldb, float beta, const float *bias, float *c,
                        int64_t ldc) {
  if (m <= 0 || n <= 0 || k <= 0 || alpha == 0) return false;
  if (m > SMALL_MAX_DIM || n > SMALL_MAX_DIM || k > SMALL_MAX_DIM) return false;
  int64_t mnk = m * n * k;
  if (dl_cpu_blas_avx512() && mnk > SMALL_MNK_AVX512_BLAS) return false;
  if (mnk > SMALL_MNK_ANY_THREADS && (mnk > SMALL_MNK_ONE_THREAD || omp_get_max_threads() > 1)) return false;
  if (m == 1) {
    if (k > PACK_MAX) return false;
    gemm_row(tb, n, k, alpha, a, ta ? 1 : lda, b, ldb, beta, bias, c, ldc);
    return true;
  }
  /* rows padded to 8 lanes: beyond a quarter of wasted lanes BLAS wins
   * unless the product is tiny (call overhead dominates) */
  int64_t padded = (m + 7) & ~(int64_t)7;
  if (4 * (padded - m) > padded && mnk > SMALL_MNK_ANY_THREADS / 4) return false;
  int64_t sbp = tb ? ldb : 1, sbj = tb ? 1 : ldb; /* B[p, j] = b[p sbp + j sbj] */
  if (ta) {
    if (m * k > PACK_MAX) return false;
    pack_transposed(m, k, a, lda, pack_buf);
    a = pack_buf;
    lda = m;
  }
  gemm_blocked(m, n, k, alpha, a, lda, b, sbp, sbj, beta, bias, c, ldc);
  return true;
}

bool dl_cpu_sgemm_tn_repacked(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  if (m <= 1 || n <= 0 || k <= 0 || m * k > PACK_MAX || !dl_cpu_blas_avx512()) return false;
  if (m * n * k > SMALL_MNK_ANY_THREADS) return false; /* 128^3: 39.8 us direct, 42.6 repacked */
  /* the repack costs m k, the product m n k: a matrix-vector product (a
   * Linear layer on one row) would spend its time repacking the weight */
  if (n < 16) return false;
  pack_transposed(m, k, a, lda, pack_buf);
  cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, pack_buf,
              (blasint)m, b, (blasint)ldb, beta, c, (blasint)ldc);
  return true;
}

#else /* no AVX2/FMA: BLAS for everything */

bool dl_cpu_sgemm_tn_repacked(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
  return false;
}

bool dl_cpu_sgemm_small(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                        int64_t lda, const float *b, int64_t ldb, float beta, const float *bias, float *c,
                        int64_t ldc) {
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta,
      (void)bias, (void)c, (void)ldc;
  return false;
}

#endif
