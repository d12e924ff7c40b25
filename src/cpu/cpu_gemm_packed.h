/* cpu_gemm_packed.h — float32 GEMM by an operand packed once (see
 * cpu_gemm_packed.c), column-major with dl_linalg.h's convention. */
#ifndef DL_CPU_GEMM_PACKED_H
#define DL_CPU_GEMM_PACKED_H

#include <stdbool.h>
#include <stdint.h>

typedef struct dl_cpu_packed dl_cpu_packed;

/* op(A) (m x k) packed; NULL when this CPU has no packed kernel or on
 * allocation failure (the caller then runs its plain GEMM) */
dl_cpu_packed *dl_cpu_pack_a(bool transa, int64_t m, int64_t k, const float *a, int64_t lda);
void dl_cpu_pack_free(dl_cpu_packed *p);
/* C (m x n, ldc) = op(A) @ op(B) + beta C with op(A) from p (beta == 0:
 * C not read); op(B) is k x n. false when p is NULL. */
bool dl_cpu_gemm_packed(const dl_cpu_packed *p, bool transb, int64_t n, const float *b, int64_t ldb, float beta,
                        float *c, int64_t ldc);

#endif
