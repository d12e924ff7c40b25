/* cpu_backend.h — the CPU backend's entries, shared by src/cpu/ files. */
#ifndef DL_CPU_BACKEND_H
#define DL_CPU_BACKEND_H

#include "../dl_backend.h"

void dl_cpu_copy(dl_tensor *dst, const dl_tensor *src);
void dl_cpu_fill(dl_tensor *dst, dl_scalar v);
/* selects OpenBLAS's kernels for this CPU (cpu_blas_core.c); runs at load */
void dl_cpu_blas_core_fix(void);
/* whether OpenBLAS runs AVX-512 kernels (after that selection) */
bool dl_cpu_blas_avx512(void);

#endif
