/* cpu_linalg.c — GEMM on the CPU: OpenBLAS for float64 and small-to-mid
 * float32 products, oneDNN's sgemm where it is there for larger float32
 * ones and for mid-sized row-major A @ B^T (small products in
 * cpu_gemm_small.c), a plain loop for int64. Column-major, as dl_linalg.h
 * defines the kernels. */
#include "../ops/dl_linalg.h"
#include "cpu_gemm_packed.h"
#include "cpu_gemm_small.h"
#include "cpu_iter.h"

#include <cblas.h>
#include <string.h>
#ifdef DL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#ifdef DL_HAVE_DNNL
/* From m n k = 2^20 up oneDNN's JIT sgemm beats OpenBLAS on this project's
 * shapes (scripts/bench/gemm_engines.sh): the fashion MLP's eleven
 * products took 537-648 us against 764-933 at two threads and 955-997
 * against 1102-1155 at one over three runs, and 1024^3 runs 1.08-1.13x
 * faster; below it (64^3 and less) OpenBLAS's small kernels win by up to
 * 2x. Both read the same thread count (libgomp's). */
#define DNNL_SGEMM_MNK (1 << 20)
/* Row-major A @ B^T (column-major transposed A, plain B: x @ W^T, the
 * attention scores q @ k^T) is OpenBLAS's slow case: above 64^3 (below, the
 * repacked path of cpu_gemm_small.c) oneDNN ran 128x128x32 in 7.5 against
 * 11.1 us and was 1.01-1.89x faster on fourteen of fifteen other shapes up
 * to 2^20, single rows among them, at one thread (64x10x1000 lost: 18.7
 * against 15.8 us); 1.05-4.1x faster on all sixteen at two, where
 * OpenBLAS's split ran most of them slower than one thread did
 * (gemm_engines.sh, "nt" rows; Xeon with AVX-512). With both held to AVX2
 * kernels on that machine (OPENBLAS_CORETYPE=Haswell,
 * ONEDNN_MAX_CPU_ISA=AVX2) oneDNN was 1.12-5.0x faster on all sixteen at
 * one thread and two. */
#define DNNL_SGEMM_NT_MNK (64 * 64 * 64)

/* column-major C = op(A) op(B) is row-major C^T = op(B)^T op(A)^T */
static bool sgemm_dnnl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  double mnk = (double)m * (double)n * (double)k;
  if (mnk < DNNL_SGEMM_MNK && !(ta && !tb && mnk > DNNL_SGEMM_NT_MNK)) return false;
  return dnnl_sgemm(tb ? 'T' : 'N', ta ? 'T' : 'N', n, m, k, alpha, b, ldb, a, lda, beta, c, ldc) == dnnl_success;
}
#else
static bool sgemm_dnnl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta;
  (void)c, (void)ldc;
  return false;
}
#endif

/* int64: C = alpha op(A) op(B) + beta C, wrapping like PyTorch's integer
 * matmul (unsigned arithmetic, so overflow is defined) */
static void gemm_i64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t alpha, const int64_t *a,
                     int64_t lda, const int64_t *b, int64_t ldb, int64_t beta, int64_t *c, int64_t ldc) {
  int64_t sai = ta ? lda : 1, sap = ta ? 1 : lda; /* A(i, p) = a[i*sai + p*sap] */
  int64_t sbp = tb ? ldb : 1, sbj = tb ? 1 : ldb; /* B(p, j) = b[p*sbp + j*sbj] */
  for (int64_t j = 0; j < n; j++) {
    for (int64_t i = 0; i < m; i++) {
      uint64_t acc = 0;
      for (int64_t p = 0; p < k; p++) acc += (uint64_t)a[i * sai + p * sap] * (uint64_t)b[p * sbp + j * sbj];
      uint64_t v = acc * (uint64_t)alpha;
      if (beta != 0) v += (uint64_t)beta * (uint64_t)c[i + j * ldc];
      c[i + j * ldc] = (int64_t)v;
    }
  }
}

static void gemm_one(dl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                     int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  enum CBLAS_TRANSPOSE cta = ta ? CblasTrans : CblasNoTrans, ctb = tb ? CblasTrans : CblasNoTrans;
  switch (dt) {
  case DL_FLOAT32:
    if (dl_cpu_sgemm_small(ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, NULL, c, ldc)) break;
    if (sgemm_dnnl(ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc)) break;
    if (ta && !tb && dl_cpu_sgemm_tn_repacked(m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc)) break;
    cblas_sgemm(CblasColMajor, cta, ctb, (blasint)m, (blasint)n, (blasint)k, (float)alpha, a, (blasint)lda, b,
                (blasint)ldb, (float)beta, c, (blasint)ldc);
    break;
  case DL_FLOAT64:
    cblas_dgemm(CblasColMajor, cta, ctb, (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b,
                (blasint)ldb, beta, c, (blasint)ldc);
    break;
  case DL_INT64:
    gemm_i64(ta, tb, m, n, k, (int64_t)alpha, a, lda, b, ldb, (int64_t)beta, c, ldc);
    break;
  default:
    break;
  }
}

static int cpu_gemm(dl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                     int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  gemm_one(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  return DL_KERNEL_OK;
}

/* C[i, j] += beta * bias[i * s] for every column j, after the product:
 * one pass over a C that is still in cache. (Filling C with the bias and
 * running the product at beta = 1 gives the same sums but makes the GEMM
 * read C: 4-8 us more per Linear layer of the fashion MLP at two threads,
 * oneDNN and OpenBLAS alike.) Columns are split across threads when C is
 * large. */
#define ADD_COLUMNS(T, MUL)                                                                        \
  for (int64_t j = j0; j < j1; j++) {                                                               \
    T *cj = (T *)a->c + j * a->ldc;                                                                 \
    const T *bv = a->bias;                                                                          \
    if (a->s == 1 && a->beta == 1) for (int64_t i = 0; i < a->m; i++) cj[i] += bv[i];              \
    else for (int64_t i = 0; i < a->m; i++) cj[i] += MUL(bv[i * a->s]);                             \
  }

typedef struct {
  dl_dtype dt;
  int64_t m, s, ldc;
  double beta;
  const void *bias;
  void *c;
} bias_columns;

static void add_columns(void *ctx, int64_t j0, int64_t j1) {
  const bias_columns *a = ctx;
  switch (a->dt) {
  case DL_FLOAT32: {
    float fb = (float)a->beta;
#define MUL_F(v) (fb * (v))
    ADD_COLUMNS(float, MUL_F)
#undef MUL_F
    break;
  }
  case DL_FLOAT64: {
#define MUL_D(v) (a->beta * (v))
    ADD_COLUMNS(double, MUL_D)
#undef MUL_D
    break;
  }
  case DL_INT64: { /* wrapping, as gemm_i64 */
    uint64_t ib = (uint64_t)(int64_t)a->beta;
    for (int64_t j = j0; j < j1; j++) {
      uint64_t *cj = (uint64_t *)a->c + j * a->ldc;
      const int64_t *bv = a->bias;
      for (int64_t i = 0; i < a->m; i++) cj[i] += ib * (uint64_t)bv[i * a->s];
    }
    break;
  }
  default: break;
  }
}

/* a Linear layer's forward: the small float32 kernel adds the bias as it
 * stores C; otherwise the product is stored (beta 0) and the bias added */
static int cpu_gemm_bias(dl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                          const void *a, int64_t lda, const void *b, int64_t ldb, double beta, const void *bias,
                          int64_t bias_stride, void *c, int64_t ldc) {
  if (dt == DL_FLOAT32 && bias_stride == 1 &&
      dl_cpu_sgemm_small(ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, bias, c, ldc))
    return DL_KERNEL_OK;
  gemm_one(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, 0, c, ldc);
  bias_columns bc = {dt, m, bias_stride, ldc, beta, bias, c};
  dl_cpu_run_blocks(n, (DL_PARALLEL_GRAIN + m - 1) / m, add_columns, &bc);
  return DL_KERNEL_OK;
}

/* Many small products run one per thread (OpenBLAS and oneDNN stay
 * single-threaded inside a parallel region); large ones use the engines'
 * own threads. */
#define SMALL_GEMM_FLOPS (128.0 * 128 * 128)

static int cpu_gemm_strided_batched(dl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                                     const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                                     int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c,
                                     int64_t batch) {
  size_t es = dl_dtype_size(dt);
  const char *pa = a, *pb = b;
  char *pc = c;
  double flops = (double)m * (double)n * (double)k;
  bool par = batch > 1 && flops < SMALL_GEMM_FLOPS && flops * (double)batch >= (double)DL_PARALLEL_GRAIN * 8;
  if (!par) { /* not even an idle parallel region: it costs futex calls */
    for (int64_t i = 0; i < batch; i++)
      gemm_one(dt, ta, tb, m, n, k, alpha, pa + i * stride_a * (int64_t)es, lda, pb + i * stride_b * (int64_t)es,
               ldb, beta, pc + i * stride_c * (int64_t)es, ldc);
    return DL_KERNEL_OK;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < batch; i++)
    gemm_one(dt, ta, tb, m, n, k, alpha, pa + i * stride_a * (int64_t)es, lda, pb + i * stride_b * (int64_t)es, ldb,
             beta, pc + i * stride_c * (int64_t)es, ldc);
  return DL_KERNEL_OK;
}

/* float32 only: float64 products run BLAS each time */
static void *cpu_pack_a(dl_dtype dt, bool transa, int64_t m, int64_t k, const void *a, int64_t lda) {
  return dt == DL_FLOAT32 ? dl_cpu_pack_a(transa, m, k, a, lda) : NULL;
}

static int cpu_gemm_packed(const void *pack, bool transb, int64_t n, const void *b, int64_t ldb, double beta,
                           void *c, int64_t ldc) {
  return dl_cpu_gemm_packed(pack, transb, n, b, ldb, (float)beta, c, ldc) ? DL_KERNEL_OK : DL_KERNEL_FAILED;
}

static void cpu_pack_free(void *pack) { dl_cpu_pack_free(pack); }

const struct dl_linalg_kernels dl_cpu_linalg = {
  .gemm = cpu_gemm,
  .gemm_strided_batched = cpu_gemm_strided_batched,
  .gemm_bias = cpu_gemm_bias,
  .pack_a = cpu_pack_a,
  .gemm_packed = cpu_gemm_packed,
  .pack_free = cpu_pack_free,
};
