/* dl_decomp.h — matrix decompositions through LAPACK: the symmetric
 * eigendecomposition (dl.linalg.eigh). Front-ends take row-major views and
 * hand the backend column-major buffers, the convention LAPACK and
 * cuSOLVER share. */
#ifndef DL_OPS_DECOMP_H
#define DL_OPS_DECOMP_H

#include "../dl_backend.h"

/* Kernels of a backend. Pointers are device pointers of the backend.
 * syevd: eigendecomposition of the symmetric n x n column-major matrix a
 * (float32 or float64, lda = n), reading its upper triangle; on return a
 * holds the orthonormal eigenvectors as columns and w the n eigenvalues in
 * ascending order. Returns 0, 1 when the input holds NaN or Inf, 2 when the
 * algorithm did not converge, 3 when out of memory. */
struct dl_decomp_kernels {
  int (*syevd)(dl_dtype dt, int64_t n, void *a, void *w);
};

extern const struct dl_decomp_kernels dl_cpu_decomp;

/* eigh(A) for a symmetric float32/float64 n x n matrix A: *w gets the
 * eigenvalues [n] in ascending order and *v the eigenvectors [n, n] as
 * columns (A = V diag(w) V^T), both new contiguous tensors of A's dtype.
 * Only the lower triangle of A is read, as in PyTorch (uplo = "L"), or the
 * upper one when upper. No gradient is recorded. Returns 0, or -1 with an
 * error naming "linalg.eigh". */
int dl_op_eigh(dl_tensor *a, bool upper, dl_tensor **w, dl_tensor **v);

#endif
