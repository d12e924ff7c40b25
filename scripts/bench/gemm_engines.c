/* gemm_engines.c — the measurement behind dlua's choice of float32 GEMM
 * engine (src/cpu/cpu_linalg.c): OpenBLAS's cblas_sgemm against oneDNN's
 * dnnl_sgemm on the fashion MLP's eleven products (forward, input and
 * weight gradients at batch 128) and on a sweep of sizes around the cut-off
 * (m n k = 2^20), each in the four transpose cases, and on row-major
 * A @ B^T products below the cut-off ("nt" rows). Row-major, as PyTorch
 * calls them; both libraries read libgomp's thread count.
 * Usage: gemm_engines THREADS. Prints one line per product: the best of 5
 * timings of each engine and OpenBLAS's time over oneDNN's (> 1: oneDNN
 * faster), then the MLP's totals. */
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { MAXF = 1 << 22 };
static float *A, *B, *C;

/* seconds per call of engine e (0 OpenBLAS, 1 oneDNN), best of 5 */
static double time_one(int e, char ta, char tb, int m, int n, int k) {
  int lda = ta == 'N' ? k : m, ldb = tb == 'N' ? n : k;
  double flop = 2.0 * m * n * k, best = 1e30;
  int iters = flop > 1e9 ? 5 : flop > 1e7 ? 50 : 1000;
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    for (int i = 0; i < iters; i++) {
      if (e == 0)
        cblas_sgemm(CblasRowMajor, ta == 'N' ? CblasNoTrans : CblasTrans, tb == 'N' ? CblasNoTrans : CblasTrans, m,
                    n, k, 1.f, A, lda, B, ldb, 0.f, C, n);
      else
        dnnl_sgemm(ta, tb, m, n, k, 1.f, A, lda, B, ldb, 0.f, C, n);
    }
    double t = (now() - t0) / iters;
    if (t < best) best = t;
  }
  return best;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  A = malloc(sizeof(float) * MAXF), B = malloc(sizeof(float) * MAXF), C = malloc(sizeof(float) * MAXF);
  if (!A || !B || !C) return 1;
  srand(0);
  for (int i = 0; i < MAXF; i++) A[i] = B[i] = (float)rand() / (float)RAND_MAX, C[i] = 0;

  /* y = x W^T; dX = g W; dW = g^T x (784-256-128-100-10, batch 128) */
  static const struct { char ta, tb; int m, n, k; } mlp[] = {
    {'N', 'T', 128, 256, 784}, {'N', 'T', 128, 128, 256}, {'N', 'T', 128, 100, 128}, {'N', 'T', 128, 10, 100},
    {'T', 'N', 10, 100, 128},  {'N', 'N', 128, 100, 10},  {'T', 'N', 100, 128, 128}, {'N', 'N', 128, 128, 100},
    {'T', 'N', 128, 256, 128}, {'N', 'N', 128, 256, 128}, {'T', 'N', 256, 784, 128},
  };
  printf("threads %d; us per product, OpenBLAS / oneDNN\n", threads);
  double tot[2] = {0, 0};
  for (size_t q = 0; q < sizeof mlp / sizeof mlp[0]; q++) {
    double t0 = time_one(0, mlp[q].ta, mlp[q].tb, mlp[q].m, mlp[q].n, mlp[q].k);
    double t1 = time_one(1, mlp[q].ta, mlp[q].tb, mlp[q].m, mlp[q].n, mlp[q].k);
    tot[0] += t0, tot[1] += t1;
    printf("mlp %c%c %5d %5d %5d  %9.1f %9.1f  %5.2f\n", mlp[q].ta, mlp[q].tb, mlp[q].m, mlp[q].n, mlp[q].k, t0 * 1e6,
           t1 * 1e6, t0 / t1);
  }
  printf("mlp total                %9.1f %9.1f  %5.2f\n", tot[0] * 1e6, tot[1] * 1e6, tot[0] / tot[1]);

  /* row-major A @ B^T between 64^3 and 2^20 multiply-adds (x @ W^T, the
   * attention scores q @ k^T and their gradient dO @ V^T) */
  static const int nt[][3] = {{128, 128, 32}, {32, 128, 128}, {128, 64, 64}, {96, 96, 96},  {70, 70, 70},
                              {100, 100, 30}, {1000, 10, 64}, {64, 10, 1000}, {512, 16, 100}, {128, 1000, 8},
                              {8, 1000, 100}, {2000, 4, 100}, {1, 1024, 512}, {1, 512, 1024}, {512, 1, 1024},
                              {2, 512, 512}};
  for (size_t q = 0; q < sizeof nt / sizeof nt[0]; q++) {
    int m = nt[q][0], n = nt[q][1], k = nt[q][2];
    double t0 = time_one(0, 'N', 'T', m, n, k), t1 = time_one(1, 'N', 'T', m, n, k);
    printf("nt    NT %5d %5d %5d  %9.1f %9.1f  %5.2f\n", m, n, k, t0 * 1e6, t1 * 1e6, t0 / t1);
  }

  static const int sweep[][3] = {{32, 32, 32},   {64, 64, 64},    {128, 64, 64},  {96, 96, 96},     {64, 128, 128},
                                 {128, 128, 128}, {256, 64, 64},  {1000, 1000, 64}, {64, 512, 2048}, {256, 256, 256},
                                 {1024, 1024, 1024}};
  for (size_t q = 0; q < sizeof sweep / sizeof sweep[0]; q++) {
    for (int t = 0; t < 4; t++) {
      char ta = t & 1 ? 'T' : 'N', tb = t & 2 ? 'T' : 'N';
      int m = sweep[q][0], n = sweep[q][1], k = sweep[q][2];
      double t0 = time_one(0, ta, tb, m, n, k), t1 = time_one(1, ta, tb, m, n, k);
      printf("sweep %c%c %5d %5d %5d  %9.1f %9.1f  %5.2f\n", ta, tb, m, n, k, t0 * 1e6, t1 * 1e6, t0 / t1);
    }
  }
  return 0;
}
