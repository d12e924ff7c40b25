/* cpu_gemm_packed.c — float32 GEMM with one operand packed once and used
 * for many products: a recurrent layer multiplies the same weight by a new
 * hidden state at every step, and BLAS would repack that weight (a few
 * hundred KB) on every call (packing was ~20% of an LSTM step's time).
 *
 * Column-major, as dl_linalg.h: C = op(A) @ op(B) + beta C. op(A) (m x k)
 * is packed in panels of 32 rows, each panel k columns of 32 contiguous
 * floats (zero past m). The micro-kernel holds a 32 x NR block of C in
 * 2 NR AVX-512 registers: per k, two loads of the panel and NR broadcasts
 * of op(B), 2 NR FMAs. A panel (16 KB at k = 128) stays in L1 while the
 * columns of C pass over it. AVX-512 only; elsewhere pack returns NULL and
 * the caller runs the plain GEMM. */
#include "cpu_gemm_packed.h"

#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)

#include <immintrin.h>
#include <omp.h>

#define MR 32 /* rows of a panel: two registers */
#define NR 8  /* columns of C a micro-kernel keeps */

struct dl_cpu_packed {
  int64_t m, k, panels;
  float *data; /* panels x k x MR, 64-byte aligned */
};

dl_cpu_packed *dl_cpu_pack_a(bool transa, int64_t m, int64_t k, const float *a, int64_t lda) {
  if (m < 1 || k < 1) return NULL;
  dl_cpu_packed *p = malloc(sizeof *p);
  if (!p) return NULL;
  p->m = m, p->k = k, p->panels = (m + MR - 1) / MR;
  size_t bytes = (size_t)(p->panels * k * MR) * sizeof(float);
  p->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p->data) {
    free(p);
    return NULL;
  }
  for (int64_t q = 0; q < p->panels; q++) {
    float *dst = p->data + q * k * MR;
    int64_t rows = m - q * MR < MR ? m - q * MR : MR;
    for (int64_t l = 0; l < k; l++) {
      float *d = dst + l * MR;
      for (int64_t i = 0; i < rows; i++) {
        int64_t r = q * MR + i; /* op(A)(r, l) */
        d[i] = transa ? a[l + r * lda] : a[r + l * lda];
      }
      for (int64_t i = rows; i < MR; i++) d[i] = 0;
    }
  }
  return p;
}

void dl_cpu_pack_free(dl_cpu_packed *p) {
  if (!p) return;
  free(p->data);
  free(p);
}

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* C[0:rows, 0:NC] (+)= panel @ B[0:k, 0:NC]; B(l, j) = b[l sbl + j sbj];
 * the rows past `rows` (the last panel) are masked off */
ALWAYS_INLINE void ukr(const int NC, int64_t k, const float *pa, const float *b, int64_t sbl, int64_t sbj, float *c,
                       int64_t ldc, float beta, __mmask16 m0, __mmask16 m1) {
  __m512 acc[NR][2];
#pragma GCC unroll 8
  for (int j = 0; j < NC; j++) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
  for (int64_t l = 0; l < k; l++) {
    __m512 a0 = _mm512_load_ps(pa + l * MR), a1 = _mm512_load_ps(pa + l * MR + 16);
    const float *bl = b + l * sbl;
#pragma GCC unroll 8
    for (int j = 0; j < NC; j++) {
      __m512 bj = _mm512_set1_ps(bl[j * sbj]);
      acc[j][0] = _mm512_fmadd_ps(a0, bj, acc[j][0]);
      acc[j][1] = _mm512_fmadd_ps(a1, bj, acc[j][1]);
    }
  }
  __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int j = 0; j < NC; j++) {
    float *cj = c + j * ldc;
    if (beta != 0) {
      acc[j][0] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cj), acc[j][0]);
      acc[j][1] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cj + 16), acc[j][1]);
    }
    _mm512_mask_storeu_ps(cj, m0, acc[j][0]);
    _mm512_mask_storeu_ps(cj + 16, m1, acc[j][1]);
  }
}

/* one panel against columns [j0, j0 + nc) of B and C, nc <= NR */
static void block(const dl_cpu_packed *p, int64_t q, int64_t j0, int64_t nc, const float *b, int64_t sbl,
                  int64_t sbj, float beta, float *c, int64_t ldc) {
  int64_t rows = p->m - q * MR < MR ? p->m - q * MR : MR;
  __mmask16 m0 = rows >= 16 ? 0xFFFF : (__mmask16)((1u << rows) - 1);
  __mmask16 m1 = rows >= 32 ? 0xFFFF : rows > 16 ? (__mmask16)((1u << (rows - 16)) - 1) : 0;
  const float *pa = p->data + q * p->k * MR, *bj = b + j0 * sbj;
  float *cj = c + q * MR + j0 * ldc;
  switch (nc) {
#define CASE(n) \
  case n: ukr(n, p->k, pa, bj, sbl, sbj, cj, ldc, beta, m0, m1); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
  default: break;
  }
}

/* threads only above this many multiply-adds (a fork costs ~2 us) */
#define PACKED_PARALLEL_MNK ((int64_t)1 << 20)

bool dl_cpu_gemm_packed(const dl_cpu_packed *p, bool transb, int64_t n, const float *b, int64_t ldb, float beta,
                        float *c, int64_t ldc) {
  if (!p || n < 1) return p != NULL;
  /* op(B)(l, j): b[l + j ldb], or b[j + l ldb] transposed */
  int64_t sbl = transb ? ldb : 1, sbj = transb ? 1 : ldb;
  int64_t nblocks = (n + NR - 1) / NR, tasks = p->panels * nblocks;
  bool par = p->m * n * p->k >= PACKED_PARALLEL_MNK && omp_get_max_threads() > 1;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t q = t / nblocks, j0 = (t % nblocks) * NR;
    block(p, q, j0, n - j0 < NR ? n - j0 : NR, b, sbl, sbj, beta, c, ldc);
  }
  return true;
}

#else /* no AVX-512: the callers run their plain GEMM */

dl_cpu_packed *dl_cpu_pack_a(bool transa, int64_t m, int64_t k, const float *a, int64_t lda) {
  (void)transa, (void)m, (void)k, (void)a, (void)lda;
  return NULL;
}
void dl_cpu_pack_free(dl_cpu_packed *p) { (void)p; }
bool dl_cpu_gemm_packed(const dl_cpu_packed *p, bool transb, int64_t n, const float *b, int64_t ldb, float beta,
                        float *c, int64_t ldc) {
  (void)p, (void)transb, (void)n, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
  return false;
}

#endif
