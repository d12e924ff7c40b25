/* dl_decomp.c — front-end of the symmetric eigendecomposition. */
#include "dl_decomp.h"

#include <limits.h>

/* the device's decomposition kernels; a backend without them refuses */
static const struct dl_decomp_kernels *decomp_kernels(const dl_tensor *t) {
  return DL_KERNELS("linalg.eigh", dl_tensor_device(t), decomp);
}

int dl_op_eigh(dl_tensor *a, bool upper, dl_tensor **w, dl_tensor **v) {
  char buf[64];
  *w = *v = NULL;
  if (a->ndim != 2 || a->shape[0] != a->shape[1]) {
    dl_error_set("linalg.eigh: expected a square 2-D matrix, got %s", dl_tensor_shape_str(a, buf, sizeof buf));
    return -1;
  }
  if (a->dtype != DL_FLOAT32 && a->dtype != DL_FLOAT64) {
    dl_error_set("linalg.eigh: expected a float32 or float64 matrix, got %s", dl_dtype_name(a->dtype));
    return -1;
  }
  int64_t n = a->shape[0];
  /* LAPACK takes int sizes; dsyevd's workspace is 1 + 6n + 2n^2 */
  if (n > 30000) {
    dl_error_set("linalg.eigh: matrix of order %lld is too large (at most 30000)", (long long)n);
    return -1;
  }
  const struct dl_decomp_kernels *k = decomp_kernels(a);
  if (!k) return -1;
  /* The column-major view of row-major storage is A^T: its upper triangle
   * is A's lower one. The copy is overwritten by the eigenvectors, stored
   * column-major, i.e. as the rows of V^T. */
  dl_tensor *vt = dl_tensor_clone(a);
  dl_tensor *vals = dl_tensor_empty(&n, 1, a->dtype, dl_tensor_device(a));
  if (!vt || !vals) goto fail;
  if (upper) {
    /* read A's upper triangle: hand LAPACK A^T's storage instead */
    dl_tensor *at = dl_tensor_transpose(a, 0, 1);
    int rc = at ? dl_tensor_copy_(vt, at) : -1;
    if (at) dl_tensor_release(at);
    if (rc != 0) goto fail;
  }
  if (n > 0) {
    int rc = k->syevd(a->dtype, n, dl_tensor_data(vt), dl_tensor_data(vals));
    if (rc == 1) {
      dl_error_set("linalg.eigh: the input matrix contains NaN or Inf");
      goto fail;
    }
    if (rc == 2) {
      dl_error_set("linalg.eigh: the algorithm failed to converge");
      goto fail;
    }
    if (rc != 0) {
      dl_error_set("linalg.eigh: out of memory for the LAPACK workspace (order %lld)", (long long)n);
      goto fail;
    }
  }
  dl_tensor *vv = dl_tensor_transpose(vt, 0, 1);
  dl_tensor *vc = vv ? dl_tensor_contiguous(vv) : NULL;
  if (vv) dl_tensor_release(vv);
  if (!vc) goto fail;
  dl_tensor_release(vt);
  *w = vals;
  *v = vc;
  return 0;
fail:
  if (vt) dl_tensor_release(vt);
  if (vals) dl_tensor_release(vals);
  return -1;
}
