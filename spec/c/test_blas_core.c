/* test_blas_core.c — OpenBLAS runs kernels that match the CPU's vector
 * unit once the engine is loaded (cpu_blas_core.c): on a CPU with AVX2 +
 * FMA, a DYNAMIC_ARCH OpenBLAS never runs one of the pre-AVX2 cores it
 * falls back to for a model it does not recognise, unless the user chose
 * one with OPENBLAS_CORETYPE. */
#include "ctest.h"
#include "../../src/cpu/cpu_backend.h"

#include <stdlib.h>
#include <strings.h>

char *openblas_get_corename(void);
void gotoblas_dynamic_init(void) __attribute__((weak)); /* present in DYNAMIC_ARCH builds only */

int main(void) {
  const char *core = openblas_get_corename();
  CHECK(core != NULL);
  printf("OpenBLAS core: %s\n", core ? core : "?");
  __builtin_cpu_init();
  const char *user = getenv("OPENBLAS_CORETYPE");
  if (core && gotoblas_dynamic_init && !(user && *user) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    static const char *const old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Nano",
                                      "Katmai", "Coppermine", "Northwood", "Banias", "Opteron", "Barcelona",
                                      "Bobcat", "Sandybridge", "Bulldozer", "Piledriver", "Steamroller",
                                      "Excavator"};
    for (size_t i = 0; i < sizeof old / sizeof *old; i++) CHECK(strcasecmp(core, old[i]) != 0);
  }
  /* rerunning it is harmless (OpenBLAS's choice then stands) */
  dl_cpu_blas_core_fix();
  CHECK(openblas_get_corename() != NULL);
  CTEST_END();
}
