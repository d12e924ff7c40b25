/* cuda_linalg.cu — GEMM on the GPU: cuBLAS for float32/float64 (the
 * kernel interface is already column-major and cuBLAS-shaped, see
 * dl_linalg.h, so arguments pass straight through), a plain kernel for
 * int64 that wraps like the CPU's loop. One cuBLAS handle per device, bound
 * to the device's stream; TF32 stays off (cuBLAS's default math mode), so
 * float32 products keep float32 accuracy. The 64-bit cuBLAS entry points
 * take sizes beyond 2^31 without narrowing. cuBLAS itself is loaded on
 * the first GEMM (dlopen), so processes that never multiply on the GPU do
 * not pay its load time. */
#include "cuda_common.cuh"

extern "C" {
#include "../ops/dl_linalg.h"
}

#include <cublas_v2.h>
#include <mutex>
#include <stdio.h>

namespace {

#define MAX_DEVICES 64
std::mutex handle_lock;
cublasHandle_t handles[MAX_DEVICES];

/* cuBLAS's entry points, loaded on the first GEMM (see cuda_common.cuh) */
struct cublas_api {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSgemm_v2_64) sgemm;
  decltype(&cublasDgemm_v2_64) dgemm;
  decltype(&cublasSgemmStridedBatched_64) sgemm_batched;
  decltype(&cublasDgemmStridedBatched_64) dgemm_batched;
};
cublas_api api;
bool api_loaded = false;

/* 0 ok, -1 with an error (handle_lock held) */
int load_api(void) {
  if (api_loaded) return 0;
  const char *lib = "libcublas.so." DL_CUDA_STR(CUBLAS_VER_MAJOR);
#define LOAD(field, name)                                                       \
  if (!(api.field = (decltype(api.field))dl_cuda_library_symbol(lib, name))) { \
    char why[256];                                                              \
    snprintf(why, sizeof why, "%s", dl_error_get());                            \
    dl_error_set("matmul: %s", why);                                            \
    dl_cuda_note_failure();                                                     \
    return -1;                                                                  \
  }
  LOAD(create, "cublasCreate_v2")
  LOAD(set_stream, "cublasSetStream_v2")
  LOAD(sgemm, "cublasSgemm_v2_64")
  LOAD(dgemm, "cublasDgemm_v2_64")
  LOAD(sgemm_batched, "cublasSgemmStridedBatched_64")
  LOAD(dgemm_batched, "cublasDgemmStridedBatched_64")
#undef LOAD
  api_loaded = true;
  return 0;
}

const char *status_name(cublasStatus_t st) {
  switch (st) {
  case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
  case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
  default: return "internal error";
  }
}

int check(cublasStatus_t st, const char *what) {
  if (st == CUBLAS_STATUS_SUCCESS) return 0;
  dl_error_set("matmul: %s failed: %s", what, status_name(st));
  dl_cuda_note_failure();
  return -1;
}

/* the current device's handle, on its stream (NULL with an error) */
cublasHandle_t handle(void) {
  int d = dl_cuda_current_device();
  if (d < 0) d = 0;
  std::lock_guard<std::mutex> g(handle_lock);
  if (load_api()) return nullptr;
  if (!handles[d] && check(api.create(&handles[d]), "cublasCreate")) {
    handles[d] = nullptr;
    return nullptr;
  }
  if (check(api.set_stream(handles[d], dl_cuda_stream()), "cublasSetStream")) return nullptr;
  return handles[d];
}

/* C_i = alpha op(A_i) op(B_i) + beta C_i over int64, column-major; beta == 0
 * does not read C */
__global__ void gemm_i64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t alpha, const int64_t *a,
                         int64_t lda, int64_t sa, const int64_t *b, int64_t ldb, int64_t sb, int64_t beta, int64_t *c,
                         int64_t ldc, int64_t sc, int64_t batch) {
  int64_t per = m * n;
  DL_CUDA_FOR(e, per * batch) {
    int64_t bi = e / per, r = e % per, i = r % m, j = r / m;
    const int64_t *A = a + bi * sa, *B = b + bi * sb;
    int64_t sai = ta ? lda : 1, sap = ta ? 1 : lda; /* A(i, p) = A[i*sai + p*sap] */
    int64_t sbp = tb ? ldb : 1, sbj = tb ? 1 : ldb; /* B(p, j) = B[p*sbp + j*sbj] */
    uint64_t acc = 0;
    for (int64_t p = 0; p < k; p++) acc += (uint64_t)A[i * sai + p * sap] * (uint64_t)B[p * sbp + j * sbj];
    uint64_t v = acc * (uint64_t)alpha;
    int64_t *C = c + bi * sc + i + j * ldc;
    if (beta != 0) v += (uint64_t)beta * (uint64_t)*C;
    *C = (int64_t)v;
  }
}

int cuda_gemm_strided_batched(dl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                               const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                               int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch) {
  DL_CUDA_ENTRY();
  if (m == 0 || n == 0 || batch == 0) return dl_cuda_status();
  if (dt == DL_INT64) {
    gemm_i64<<<dl_cuda_blocks(m * n * batch), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
      ta, tb, m, n, k, (int64_t)alpha, (const int64_t *)a, lda, stride_a, (const int64_t *)b, ldb, stride_b,
      (int64_t)beta, (int64_t *)c, ldc, stride_c, batch);
    DL_CUDA_LAUNCHED("matmul");
    return dl_cuda_status();
  }
  cublasHandle_t h = handle();
  if (!h) return dl_cuda_status();
  cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (dt == DL_FLOAT32) {
    float al = (float)alpha, be = (float)beta;
    if (batch == 1)
      check(api.sgemm(h, oa, ob, m, n, k, &al, (const float *)a, lda, (const float *)b, ldb, &be, (float *)c, ldc),
            "cublasSgemm");
    else
      check(api.sgemm_batched(h, oa, ob, m, n, k, &al, (const float *)a, lda, stride_a, (const float *)b,
                                         ldb, stride_b, &be, (float *)c, ldc, stride_c, batch),
            "cublasSgemmStridedBatched");
  } else if (dt == DL_FLOAT64) {
    if (batch == 1)
      check(api.dgemm(h, oa, ob, m, n, k, &alpha, (const double *)a, lda, (const double *)b, ldb, &beta,
                           (double *)c, ldc),
            "cublasDgemm");
    else
      check(api.dgemm_batched(h, oa, ob, m, n, k, &alpha, (const double *)a, lda, stride_a,
                                         (const double *)b, ldb, stride_b, &beta, (double *)c, ldc, stride_c, batch),
            "cublasDgemmStridedBatched");
  }
  return dl_cuda_status();
}

int cuda_gemm(dl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
               int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  return cuda_gemm_strided_batched(dt, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

} // namespace

extern "C" const struct dl_linalg_kernels dl_cuda_linalg = {
  cuda_gemm,
  cuda_gemm_strided_batched,
  /* gemm_bias: the front-end's fallback (bias copied into C, then gemm with
   * beta = 1) is the same work on the GPU */
  nullptr,
  /* pack_a, gemm_packed, pack_free: cuBLAS reads the weight in place, so
   * the recurrent layers call gemm each step */
  nullptr,
  nullptr,
  nullptr,
};
