/* allreduce_mpi.c — Open MPI's own MPI_Allreduce from C, the reference
 * dist.lua compares dl.dist.all_reduce with: float32 sums in place over
 * every rank, bus bandwidth (bytes x 2(p-1)/p / time, NCCL-tests' measure)
 * of the best of 5 batches. Rank 0 prints, per size in bytes given:
 *   RESULT allreduce-<label> mpi <GB/s> GB/s
 * Usage: mpirun -np 2 allreduce_mpi BYTES:ITERS... */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static const char *label(long bytes, char *buf, size_t n) {
  if (bytes >= 1 << 20) snprintf(buf, n, "%ldMB", bytes >> 20);
  else snprintf(buf, n, "%ldKB", bytes >> 10);
  return buf;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (int a = 1; a < argc; a++) {
    long bytes = 0, iters = 0;
    if (sscanf(argv[a], "%ld:%ld", &bytes, &iters) != 2 || bytes < 4 || iters < 1) continue;
    int n = (int)(bytes / 4);
    float *x = malloc((size_t)n * sizeof *x);
    for (int i = 0; i < n; i++) x[i] = 1.0f;
    MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
    double best = 1e30;
    for (int b = 0; b < 5; b++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      for (long i = 0; i < iters; i++) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double t = (MPI_Wtime() - t0) / (double)iters;
      MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (t < best) best = t;
    }
    char buf[32];
    if (rank == 0)
      printf("RESULT allreduce-%s mpi %.3f GB/s\n", label(bytes, buf, sizeof buf),
             (double)bytes * 2.0 * (size - 1) / size / best / 1e9);
    free(x);
  }
  MPI_Finalize();
  return 0;
}
