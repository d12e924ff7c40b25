/* cpu_decomp.c — CPU decomposition kernels: LAPACK's divide-and-conquer
 * symmetric eigensolver (ssyevd_/dsyevd_) as OpenBLAS ships it. */
#include "../ops/dl_decomp.h"

#include <math.h>
#include <stdlib.h>

/* Fortran calling convention: every argument by reference, hidden string
 * lengths last. */
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w, float *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

/* LAPACK may loop or return garbage on non-finite input: the triangle it
 * reads ("U" of the column-major n x n buffer) must be finite; the other
 * one is never read, as in PyTorch */
#define DL_TRIANGLE_FINITE(T, a, n)                    \
  do {                                                 \
    const T *p_ = (const T *)(a);                      \
    for (int64_t j_ = 0; j_ < (n); j_++)               \
      for (int64_t i_ = 0; i_ <= j_; i_++)             \
        if (!isfinite(p_[i_ + j_ * (n)])) return 1;    \
  } while (0)

/* the documented minimum workspaces for jobz = "V", used when the query's
 * answer (a float for ssyevd) rounds below them */
static int max_int(int64_t a, int64_t b) { return (int)(a > b ? a : b); }

static int cpu_syevd(dl_dtype dt, int64_t n64, void *a, void *w) {
  int n = (int)n64, lda = n, info = 0, query = -1, liwork = 0, lwork;
  int iq = 0;
  int64_t min_lwork = 1 + 6 * n64 + 2 * n64 * n64, min_liwork = 3 + 5 * n64;
  if (dt == DL_FLOAT32) {
    DL_TRIANGLE_FINITE(float, a, n64);
    float wq = 0;
    ssyevd_("V", "U", &n, a, &lda, w, &wq, &query, &iq, &query, &info, 1, 1);
    if (info != 0) return 2;
    lwork = max_int((int64_t)wq, min_lwork);
    liwork = max_int(iq, min_liwork);
    float *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
      free(work);
      free(iwork);
      return 3;
    }
    ssyevd_("V", "U", &n, a, &lda, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
  } else {
    DL_TRIANGLE_FINITE(double, a, n64);
    double wq = 0;
    dsyevd_("V", "U", &n, a, &lda, w, &wq, &query, &iq, &query, &info, 1, 1);
    if (info != 0) return 2;
    lwork = max_int((int64_t)wq, min_lwork);
    liwork = max_int(iq, min_liwork);
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
      free(work);
      free(iwork);
      return 3;
    }
    dsyevd_("V", "U", &n, a, &lda, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
  }
  return info == 0 ? 0 : 2;
}

const struct dl_decomp_kernels dl_cpu_decomp = {
    .syevd = cpu_syevd,
};
