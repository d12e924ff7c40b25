/* sgemm_cublas.cu — the reference for dl.matmul on the GPU: cublasSgemm on
 * two n x n float32 matrices (default math mode, no TF32), timed with CUDA
 * events, best of 5 batches after a warm-up:
 *   RESULT gpu-sgemm-<n> cublas <GFLOP/s> GFLOP/s
 * Build: nvcc -O2 -o sgemm_cublas sgemm_cublas.cu -lcublas
 * Usage: sgemm_cublas [n] [iters] */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                  \
  do {                                                                               \
    cudaError_t e_ = (call);                                                         \
    if (e_ != cudaSuccess) {                                                         \
      fprintf(stderr, "sgemm_cublas: %s: %s\n", #call, cudaGetErrorString(e_));     \
      return 1;                                                                      \
    }                                                                                \
  } while (0)
#define CHECK_BLAS(call)                                                             \
  do {                                                                               \
    cublasStatus_t s_ = (call);                                                      \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                               \
      fprintf(stderr, "sgemm_cublas: %s: status %d\n", #call, (int)s_);             \
      return 1;                                                                      \
    }                                                                                \
  } while (0)

__global__ void fill(float *p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
    unsigned x = (unsigned)i * 2654435761u + seed;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    p[i] = (float)(x & 0xffff) / 65536.0f - 0.5f;
  }
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 4096, iters = argc > 2 ? atoi(argv[2]) : 10;
  if (n <= 0 || iters <= 0) {
    fprintf(stderr, "usage: sgemm_cublas [n] [iters]\n");
    return 2;
  }
  size_t nn = (size_t)n * n;
  float *a, *b, *c;
  CHECK(cudaMalloc(&a, nn * sizeof(float)));
  CHECK(cudaMalloc(&b, nn * sizeof(float)));
  CHECK(cudaMalloc(&c, nn * sizeof(float)));
  fill<<<1024, 256>>>(a, nn, 1);
  fill<<<1024, 256>>>(b, nn, 2);
  CHECK(cudaGetLastError());
  cublasHandle_t h;
  CHECK_BLAS(cublasCreate(&h));
  const float one = 1, zero = 0;
  for (int i = 0; i < iters / 10 + 1; i++)
    CHECK_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c, n));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  float best = 1e30f;
  for (int batch = 0; batch < 5; batch++) {
    CHECK(cudaEventRecord(e0));
    for (int i = 0; i < iters; i++)
      CHECK_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c, n));
    CHECK(cudaEventRecord(e1));
    CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (ms / iters < best) best = ms / iters;
  }
  printf("RESULT gpu-sgemm-%d cublas %.0f GFLOP/s\n", n, 2.0 * n * (double)n * n / (best * 1e-3) / 1e9);
  cublasDestroy(h);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 0;
}
