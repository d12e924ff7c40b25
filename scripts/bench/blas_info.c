/* blas_info.c — prints the OpenBLAS that dlua links (the OpenMP build the
 * Makefile names) with the kernels dlua selects for this CPU (linked with
 * src/cpu/cpu_blas_core.c, whose constructor selects them), as
 * BENCHMARKS.md records it:
 *   OpenBLAS <config string>, core <name>, <threading>
 * With --core, only the core's name. */
#include <stdio.h>
#include <string.h>

char *openblas_get_config(void);
char *openblas_get_corename(void);
int openblas_get_parallel(void);

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--core") == 0) {
    printf("%s\n", openblas_get_corename());
    return 0;
  }
  /* openblas_get_parallel: 0 sequential, 1 pthreads, 2 OpenMP */
  static const char *const model[] = {"sequential", "pthreads", "OpenMP"};
  int p = openblas_get_parallel();
  printf("%s, core %s, %s build\n", openblas_get_config(), openblas_get_corename(),
         p >= 0 && p <= 2 ? model[p] : "unknown");
  return 0;
}
