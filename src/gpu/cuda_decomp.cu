/* cuda_decomp.cu — GPU decomposition kernels: cuSOLVER's divide-and-conquer
 * symmetric eigensolver (cusolverDn<t>syevd) on dlua's stream, with the
 * CPU kernel's contract (src/cpu/cpu_decomp.c): 0 ok, 1 when the input
 * holds NaN or Inf, 2 when the algorithm did not converge, 3 out of memory.
 * The status is a host value, so the call ends with a sync. cuSOLVER is
 * loaded on the first eigh (dl_cuda_library_symbol), as cuBLAS is on the
 * first GEMM, so processes that never call it do not pay its load time. */
#include "cuda_common.cuh"

#include <cusolverDn.h>
#include <mutex>

extern "C" {
#include "../ops/dl_decomp.h"
}

namespace {

/* cuSOLVER's entry points */
struct cusolver_api {
  decltype(&cusolverDnCreate) create;
  decltype(&cusolverDnSetStream) set_stream;
  decltype(&cusolverDnSsyevd_bufferSize) s_buffer;
  decltype(&cusolverDnDsyevd_bufferSize) d_buffer;
  decltype(&cusolverDnSsyevd) ssyevd;
  decltype(&cusolverDnDsyevd) dsyevd;
};
cusolver_api api;
bool api_loaded = false;

#define MAX_DEVICES 64
std::mutex lock;
cusolverDnHandle_t handles[MAX_DEVICES];

/* 0 ok, -1 with an error (lock held) */
int load_api(void) {
  if (api_loaded) return 0;
  const char *lib = "libcusolver.so." DL_CUDA_STR(CUSOLVER_VER_MAJOR);
#define LOAD(field, name) \
  if (!(api.field = (decltype(api.field))dl_cuda_library_symbol(lib, name))) return -1;
  LOAD(create, "cusolverDnCreate")
  LOAD(set_stream, "cusolverDnSetStream")
  LOAD(s_buffer, "cusolverDnSsyevd_bufferSize")
  LOAD(d_buffer, "cusolverDnDsyevd_bufferSize")
  LOAD(ssyevd, "cusolverDnSsyevd")
  LOAD(dsyevd, "cusolverDnDsyevd")
#undef LOAD
  api_loaded = true;
  return 0;
}

/* the current device's handle bound to dlua's stream; NULL on failure */
cusolverDnHandle_t handle_for(cudaStream_t s) {
  std::lock_guard<std::mutex> g(lock);
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= MAX_DEVICES) return NULL;
  if (load_api()) return NULL;
  if (!handles[dev] && api.create(&handles[dev]) != CUSOLVER_STATUS_SUCCESS) handles[dev] = NULL;
  if (handles[dev] && api.set_stream(handles[dev], s) != CUSOLVER_STATUS_SUCCESS) return NULL;
  return handles[dev];
}

} // namespace

/* non-finite entries, counted on the device; then syevd's info */
__device__ unsigned long long dl_cuda_decomp_bad;

/* over the triangle syevd reads ("upper" of the column-major n x n buffer,
 * element i + j n with i <= j); the other is never read, as in PyTorch */
template <typename T> __global__ void count_nonfinite_kernel(const T *a, int64_t n) {
  unsigned long long bad = 0;
  DL_CUDA_FOR(k, n * n) {
    int64_t i = k % n, j = k / n;
    if (i <= j) bad += !isfinite(a[k]);
  }
  if (bad) atomicAdd(&dl_cuda_decomp_bad, bad);
}

static cusolverStatus_t buffer_size(cusolverDnHandle_t h, dl_dtype dt, int n, void *a, void *w, int *lwork) {
  if (dt == DL_FLOAT32)
    return api.s_buffer(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_UPPER, n, (const float *)a, n,
                        (const float *)w, lwork);
  return api.d_buffer(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_UPPER, n, (const double *)a, n,
                      (const double *)w, lwork);
}

static cusolverStatus_t syevd(cusolverDnHandle_t h, dl_dtype dt, int n, void *a, void *w, void *work, int lwork,
                              int *info) {
  if (dt == DL_FLOAT32)
    return api.ssyevd(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_UPPER, n, (float *)a, n, (float *)w,
                      (float *)work, lwork, info);
  return api.dsyevd(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_UPPER, n, (double *)a, n, (double *)w,
                    (double *)work, lwork, info);
}

static int cuda_syevd(dl_dtype dt, int64_t n64, void *a, void *w) {
  if (n64 == 0) return 0;
  if (n64 > INT32_MAX) return 3;
  cudaStream_t s = dl_cuda_stream();
  int n = (int)n64;
  size_t esz = dt == DL_FLOAT32 ? sizeof(float) : sizeof(double);
  /* cuSOLVER, like LAPACK, may loop or return garbage on non-finite input */
  unsigned long long zero = 0, bad = 0;
  if (DL_CUDA_CHECK(cudaMemcpyToSymbolAsync(dl_cuda_decomp_bad, &zero, sizeof zero, 0, cudaMemcpyHostToDevice, s)))
    return 2;
  int64_t nn = n64 * n64;
  if (dt == DL_FLOAT32)
    count_nonfinite_kernel<float><<<dl_cuda_blocks(nn), DL_CUDA_THREADS, 0, s>>>((const float *)a, n);
  else
    count_nonfinite_kernel<double><<<dl_cuda_blocks(nn), DL_CUDA_THREADS, 0, s>>>((const double *)a, n);
  if (DL_CUDA_LAUNCHED("linalg.eigh") ||
      DL_CUDA_CHECK(cudaMemcpyFromSymbolAsync(&bad, dl_cuda_decomp_bad, sizeof bad, 0, cudaMemcpyDeviceToHost, s)) ||
      DL_CUDA_CHECK(cudaStreamSynchronize(s)))
    return 2;
  if (bad) return 1;
  cusolverDnHandle_t h = handle_for(s);
  if (!h) return 3;
  int lwork = 0;
  if (buffer_size(h, dt, n, a, w, &lwork) != CUSOLVER_STATUS_SUCCESS) return 2;
  /* workspace and the device info word in one scratch block */
  size_t wbytes = ((size_t)(lwork > 0 ? lwork : 1) * esz + 15) / 16 * 16, total = wbytes + sizeof(int);
  char *buf = (char *)dl_cuda_malloc(total);
  if (!buf) return 3;
  int *dinfo = (int *)(buf + wbytes), info = 0;
  cusolverStatus_t st = syevd(h, dt, n, a, w, buf, lwork, dinfo);
  int rc;
  if (st == CUSOLVER_STATUS_ALLOC_FAILED) rc = 3;
  else if (st != CUSOLVER_STATUS_SUCCESS) rc = 2;
  else if (DL_CUDA_CHECK(cudaMemcpyAsync(&info, dinfo, sizeof info, cudaMemcpyDeviceToHost, s)) ||
           DL_CUDA_CHECK(cudaStreamSynchronize(s)))
    rc = 2;
  else rc = info == 0 ? 0 : 2;
  dl_cuda_free(buf, total);
  return rc;
}

/* the table is filled in member order: a new member must be added below */
static_assert(sizeof(struct dl_decomp_kernels) == 1 * sizeof(void *),
              "dl_decomp_kernels changed: fill its new members");

extern "C" const struct dl_decomp_kernels dl_cuda_decomp = {
    cuda_syevd,
};
