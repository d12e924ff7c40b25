/* dl_linalg.h — matrix products: front-ends and the kernel table.
 * Front-ends take row-major (C order) views and hand the backend
 * column-major GEMMs, the convention BLAS and cuBLAS share: a row-major
 * C = A @ B is the column-major C^T = B^T @ A^T, so no operand moves. */
#ifndef DL_OPS_LINALG_H
#define DL_OPS_LINALG_H

#include "../dl_backend.h"

/* Column-major GEMM, cuBLAS-shaped (cublas<t>gemmStridedBatched): for
 * i in [0, batch), with X_i = X + i * stride_x elements,
 *   C_i = alpha * op(A_i) @ op(B_i) + beta * C_i
 * op(A) is m x k (A stored k x m, lda >= max(1, k), when transa), op(B) is
 * k x n, C is m x n with ldc >= max(1, m). beta == 0: C is not read (NaN in
 * C is ignored). dt is float32, float64 or int64 (alpha, beta truncated to
 * integers). Pointers are device pointers of the backend. */
struct dl_linalg_kernels {
  int (*gemm)(dl_dtype dt, bool transa, bool transb, int64_t m, int64_t n, int64_t k, double alpha,
               const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);
  int (*gemm_strided_batched)(dl_dtype dt, bool transa, bool transb, int64_t m, int64_t n, int64_t k,
                               double alpha, const void *a, int64_t lda, int64_t stride_a, const void *b,
                               int64_t ldb, int64_t stride_b, double beta, void *c, int64_t ldc,
                               int64_t stride_c, int64_t batch);
  /* Optional (NULL: the front-end copies the bias into C and calls gemm
   * with beta = 1). One product with a bias folded in:
   *   C[i, j] = alpha * (op(A) @ op(B))[i, j] + beta * bias[i * bias_stride]
   * (bias_stride may be 0); C is not read. beta != 0. */
  int (*gemm_bias)(dl_dtype dt, bool transa, bool transb, int64_t m, int64_t n, int64_t k, double alpha,
                    const void *a, int64_t lda, const void *b, int64_t ldb, double beta, const void *bias,
                    int64_t bias_stride, void *c, int64_t ldc);
  /* Optional (NULL, or pack_a returning NULL: gemm each time). For many
   * products by one fixed operand, a recurrent layer's weight: pack_a packs
   * op(A) (m x k) once, gemm_packed computes C = op(A) @ op(B) + beta C
   * (C m x n, op(B) k x n) from the pack, pack_free releases it. */
  void *(*pack_a)(dl_dtype dt, bool transa, int64_t m, int64_t k, const void *a, int64_t lda);
  int (*gemm_packed)(const void *pack, bool transb, int64_t n, const void *b, int64_t ldb, double beta, void *c,
                     int64_t ldc);
  void (*pack_free)(void *pack);
};

extern const struct dl_linalg_kernels dl_cpu_linalg;

/* PyTorch's matmul: 1-D @ 1-D -> 0-d dot; 1-D operands get a dim prepended
 * (left) or appended (right) and removed from the result; batch dims
 * broadcast. */
dl_tensor *dl_op_matmul(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_op_mm(dl_tensor *a, dl_tensor *b);    /* 2-D @ 2-D */
/* The product written into out (contiguous, of the result's shape and
 * dtype, sharing no memory with a or b); returns out with a new reference. */
dl_tensor *dl_op_matmul_out(dl_tensor *a, dl_tensor *b, dl_tensor *out);
dl_tensor *dl_op_mm_out(dl_tensor *a, dl_tensor *b, dl_tensor *out);
dl_tensor *dl_op_bmm(dl_tensor *a, dl_tensor *b);   /* [B,n,k] @ [B,k,m] */
dl_tensor *dl_op_mv(dl_tensor *a, dl_tensor *v);    /* 2-D @ 1-D */
dl_tensor *dl_op_dot(dl_tensor *a, dl_tensor *b);   /* 1-D . 1-D -> 0-d */
dl_tensor *dl_op_outer(dl_tensor *a, dl_tensor *b); /* [n] x [m] -> [n,m] */
/* beta * input + alpha * (m1 @ m2); input broadcasts to the result; beta == 0
 * ignores input (NaN included). */
dl_tensor *dl_op_addmm(dl_tensor *input, dl_tensor *m1, dl_tensor *m2, double beta, double alpha);

#endif
