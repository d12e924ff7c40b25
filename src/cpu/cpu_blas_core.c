/* cpu_blas_core.c — makes OpenBLAS run the kernels this CPU has.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from the
 * CPU's family and model numbers. A CPU it does not know — a newer Xeon,
 * or any CPU behind a hypervisor that reports a generic model — falls back
 * to "Prescott", the SSE3 kernels: on an AVX-512 Xeon here sgemm ran at
 * 33 GFLOP/s a thread instead of 158 with the SkylakeX kernels. So at load
 * (a constructor: before any BLAS call, for bin/dlua, the Lua module and
 * host programs alike) we read what the CPU supports and, when OpenBLAS
 * chose a core older than the CPU's vector unit, select the matching one
 * through OpenBLAS's own switch (OPENBLAS_CORETYPE, read by its dynamic
 * init, which we rerun). A user's OPENBLAS_CORETYPE is left alone, and an
 * OpenBLAS without the dynamic-arch entry points is left as built. */
#include "cpu_backend.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *openblas_get_corename(void);
/* DYNAMIC_ARCH builds only: weak, so other builds link and skip this */
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));

/* OpenBLAS's cores by vector unit: AVX-512 kernels, AVX2 + FMA kernels */
static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
static const char *const avx2_cores[] = {"Haswell", "Zen", NULL};

static bool core_in(const char *name, const char *const *list) {
  for (; *list; list++)
    if (strcasecmp(name, *list) == 0) return true;
  return false;
}

/* cores whose kernels use AVX2 + FMA or wider: nothing to gain */
static bool modern_core(const char *name) { return core_in(name, avx512_cores) || core_in(name, avx2_cores); }

/* the OpenBLAS core for this CPU's vector unit, or NULL */
static const char *core_for_cpu(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return NULL;
}

__attribute__((constructor)) void dl_cpu_blas_core_fix(void) {
  const char *user = getenv("OPENBLAS_CORETYPE");
  if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || (user && *user)) return;
  const char *now = openblas_get_corename(), *want = core_for_cpu();
  if (!want || !now || modern_core(now)) return;
  if (setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  /* ours, not the environment child processes see */
  if (user) setenv("OPENBLAS_CORETYPE", user, 1);
  else unsetenv("OPENBLAS_CORETYPE");
}

/* whether OpenBLAS runs AVX-512 kernels (its SkylakeX family of cores) */
bool dl_cpu_blas_avx512(void) {
  static int known = -1;
  if (known < 0) {
    const char *core = openblas_get_corename();
    known = core && core_in(core, avx512_cores);
  }
  return known == 1;
}
