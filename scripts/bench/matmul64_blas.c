/* matmul64_blas.c — the floor for scripts/bench/matmul64.lua: cblas_sgemm on
 * 64x64 float32 matrices called directly from C, one thread. Prints
 * `RESULT matmul64 cblas <ns> ns/op` (best of 5 runs). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int);

/* process CPU time, as Lua's os.clock measures the dlua side: with one
 * thread it is the loop's time, and other load on the machine does not
 * count against either side */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 20000;
  enum { N = 64 };
  static float a[N * N], b[N * N], c[N * N];
  openblas_set_num_threads(1);
  srand(0);
  for (int i = 0; i < N * N; i++) {
    a[i] = (float)rand() / (float)RAND_MAX;
    b[i] = (float)rand() / (float)RAND_MAX;
  }
  for (int i = 0; i < 1000; i++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    for (int i = 0; i < n; i++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
    double dt = (now() - t0) / n;
    if (dt < best) best = dt;
  }
  printf("RESULT matmul64 cblas %.1f ns/op (checksum %g)\n", best * 1e9, (double)c[N * N - 1]);
  return 0;
}
