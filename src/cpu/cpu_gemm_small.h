/* cpu_gemm_small.h — a register-blocked float32 GEMM for the small
 * products of small networks (dims up to a few hundred), where OpenBLAS's
 * packing of both operands and its separate beta pass cost as much as the
 * arithmetic. Column-major, with dl_linalg.h's argument convention. */
#ifndef DL_CPU_GEMM_SMALL_H
#define DL_CPU_GEMM_SMALL_H

#include <stdbool.h>
#include <stdint.h>

/* C = alpha op(A) op(B) + beta C when the shape is one this kernel runs
 * faster than BLAS (true); false, touching nothing, otherwise. beta == 0
 * does not read C. With a bias (m contiguous floats, else NULL), C[i, j] =
 * alpha (op(A) op(B))[i, j] + beta bias[i] and C is not read. */
bool dl_cpu_sgemm_small(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                        int64_t lda, const float *b, int64_t ldb, float beta, const float *bias, float *c,
                        int64_t ldc);

/* C = alpha A^T B + beta C (column-major A stored k x m, B k x n) through
 * A repacked column-major and BLAS's plain product, where that is faster:
 * with AVX-512 OpenBLAS, products up to 64^3 with 16 columns or more (the
 * repack is paid once for them) that the kernel above leaves to BLAS.
 * OpenBLAS's small-matrix kernels skip this case and pack both operands:
 * 64^3 took 6.1 us against 5.2 repacked. true when it ran. */
bool dl_cpu_sgemm_tn_repacked(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif
