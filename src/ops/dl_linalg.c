/* dl_linalg.c — front-ends of the matrix products: shape, dtype and device
 * checks, batch broadcasting by strides (never materialised), and the
 * row-major -> column-major GEMM mapping. Operands reach the kernel in
 * place when each matrix is row- or column-major with a valid leading
 * dimension; only other layouts are copied. */
#include "dl_linalg.h"

#include <limits.h>
#include <math.h>

static const struct dl_linalg_kernels *kernels_of(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), linalg);
}

static int check_pair(const char *fn, const dl_tensor *a, const dl_tensor *b) {
  if (dl_check_same_device(fn, a, b)) return -1;
  if (a->dtype != b->dtype) {
    dl_error_set("%s: expected both operands to have the same dtype, got %s and %s", fn, dl_dtype_name(a->dtype),
                 dl_dtype_name(b->dtype));
    return -1;
  }
  if (a->dtype != DL_FLOAT32 && a->dtype != DL_FLOAT64 && a->dtype != DL_INT64) {
    dl_error_set("%s: dtype %s is not supported (float32, float64, int64)", fn, dl_dtype_name(a->dtype));
    return -1;
  }
  return 0;
}

static dl_tensor *shape_error(const char *fn, const char *what, const dl_tensor *a, const dl_tensor *b) {
  char b1[128], b2[128];
  dl_error_set("%s: %s, %s @ %s", fn, what, dl_tensor_shape_str(a, b1, sizeof b1), dl_tensor_shape_str(b, b2, sizeof b2));
  return NULL;
}

static inline int64_t max1(int64_t v) { return v > 1 ? v : 1; }

/* BLAS takes int sizes and leading dims */
#define BLAS_MAX ((int64_t)INT_MAX)

/* How a rows x cols matrix with element strides (sr, sc) reaches BLAS:
 * 0 row-major, 1 column-major (*ld set), -1 neither (copy it). Size-1
 * dims place no constraint on their stride. */
static int mat_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc, int64_t *ld) {
  if (rows == 0 || cols == 0) { /* nothing is read */
    *ld = max1(cols);
    return 0;
  }
  if ((cols <= 1 || sc == 1) && (rows <= 1 || sr >= max1(cols))) {
    *ld = rows <= 1 ? max1(cols) : sr;
    return 0;
  }
  if ((rows <= 1 || sr == 1) && (cols <= 1 || sc >= max1(rows))) {
    *ld = cols <= 1 ? max1(rows) : sc;
    return 1;
  }
  return -1;
}

/* a's matrix layout, replacing *a by a contiguous copy (owned: *own) when
 * BLAS cannot read it in place (or its leading dim overflows an int) */
static int operand_layout(dl_tensor **a, dl_tensor **own, int64_t *ld) {
  dl_tensor *t = *a;
  int n = t->ndim;
  int lay = mat_layout(t->shape[n - 2], t->shape[n - 1], t->stride[n - 2], t->stride[n - 1], ld);
  if (lay >= 0 && *ld <= BLAS_MAX) return lay;
  *own = dl_tensor_contiguous(t);
  if (!*own) return -1;
  *a = *own;
  int lay2 = mat_layout(t->shape[n - 2], t->shape[n - 1], (*own)->stride[n - 2], (*own)->stride[n - 1], ld);
  if (lay2 < 0) dl_error_set("matmul: unexpected layout of a contiguous operand");
  return lay2;
}

/* dst may receive the product: contiguous, of the product's shape, dtype
 * and device, sharing no memory with the operands (BLAS reads them while
 * it writes). odst is the caller's tensor, named in errors. */
static int check_dst(const char *fn, const dl_tensor *dst, const dl_tensor *odst, const int64_t *shape, int n,
                     const dl_tensor *a, const dl_tensor *b) {
  char b1[128], b2[128];
  if (dl_check_same_device(fn, a, dst)) return -1;
  bool ok = dst->ndim == n && dst->dtype == a->dtype;
  for (int d = 0; ok && d < n; d++) ok = dst->shape[d] == shape[d];
  if (!ok) {
    dl_error_set("%s: out is %s %s, the product is %s %s", fn, dl_dtype_name(odst->dtype),
                 dl_tensor_shape_str(odst, b1, sizeof b1), dl_dtype_name(a->dtype), dl_shape_str(shape, n, b2, sizeof b2));
    return -1;
  }
  if (!dl_tensor_is_contiguous(dst)) {
    dl_error_set("%s: out must be contiguous", fn);
    return -1;
  }
  if (dst->storage == a->storage || dst->storage == b->storage) {
    dl_error_set("%s: out must not share memory with the operands", fn);
    return -1;
  }
  return 0;
}

/* out = beta * input + alpha * a @ b for a [..., M, K], b [..., K, N]
 * (ndim >= 2 each, batch dims broadcast). oa/ob are the caller's operands,
 * named in errors. input may be NULL. The result goes to a new tensor, or
 * to dst (returned with a new reference) when given. */
static dl_tensor *gemm_core(const char *fn, dl_tensor *a, dl_tensor *b, const dl_tensor *oa, const dl_tensor *ob,
                            const dl_tensor *input, double beta, double alpha, dl_tensor *dst, const dl_tensor *odst) {
  const struct dl_linalg_kernels *k = kernels_of(fn, a);
  if (!k) return NULL;
  int an = a->ndim, bn = b->ndim;
  int64_t M = a->shape[an - 2], K = a->shape[an - 1], N = b->shape[bn - 1];
  if (b->shape[bn - 2] != K) return shape_error(fn, "size mismatch", oa, ob);
  if (M > BLAS_MAX || N > BLAS_MAX || K > BLAS_MAX) return shape_error(fn, "matrix dims too large for BLAS", oa, ob);

  /* broadcast batch dims */
  int nb = (an > bn ? an : bn) - 2;
  int64_t oshape[DL_MAX_DIMS], sa[DL_MAX_DIMS], sb[DL_MAX_DIMS];
  for (int j = 0; j < nb; j++) {
    int da = j - (nb - (an - 2)), db = j - (nb - (bn - 2));
    int64_t za = da >= 0 ? a->shape[da] : 1, zb = db >= 0 ? b->shape[db] : 1;
    if (za != zb && za != 1 && zb != 1) return shape_error(fn, "batch dims cannot be broadcast", oa, ob);
    oshape[j] = za > zb ? za : zb;
    if (za == 0 || zb == 0) oshape[j] = 0;
    sa[j] = za == 1 ? 0 : a->stride[da];
    sb[j] = zb == 1 ? 0 : b->stride[db];
  }
  oshape[nb] = M;
  oshape[nb + 1] = N;
  int on = nb + 2;

  if (input) {
    bool ok = input->ndim <= on;
    for (int d = 0; ok && d < input->ndim; d++) {
      int64_t z = input->shape[input->ndim - 1 - d];
      ok = z == 1 || z == oshape[on - 1 - d];
    }
    if (!ok) {
      char b1[128], b2[128];
      dl_error_set("%s: input of shape %s cannot be broadcast to the product's shape %s", fn,
                   dl_tensor_shape_str(input, b1, sizeof b1), dl_shape_str(oshape, on, b2, sizeof b2));
      return NULL;
    }
  }

  dl_tensor *out;
  if (dst) {
    if (check_dst(fn, dst, odst, oshape, on, a, b)) return NULL;
    out = dl_tensor_retain(dst);
    dl_tensor_bump_version(out);
  } else {
    out = dl_tensor_empty(oshape, on, a->dtype, dl_tensor_device(a));
  }
  if (!out || out->numel == 0) return out;
  /* a bias broadcast along the rows (Linear) goes to the kernel with the
   * product instead of being copied into out first */
  bool fold = input && beta != 0 && on == 2 && k->gemm_bias &&
              (input->ndim <= 1 || (input->ndim == 2 && input->shape[0] == 1));
  if (input && beta != 0 && !fold) {
    if (dl_tensor_copy_(out, input)) {
      dl_tensor_release(out);
      return NULL;
    }
    if (!dst) out->storage->version = 0;
  } else if (!fold) {
    beta = 0;
  }

  dl_tensor *owna = NULL, *ownb = NULL;
  int64_t lda, ldb;
  int la = operand_layout(&a, &owna, &lda), lb = operand_layout(&b, &ownb, &ldb);
  if (la < 0 || lb < 0) {
    dl_tensor_release(owna);
    dl_tensor_release(ownb);
    dl_tensor_release(out);
    return NULL;
  }
  /* a copied operand has new batch strides */
  for (int j = 0; j < nb; j++) {
    int da = j - (nb - (an - 2)), db = j - (nb - (bn - 2));
    if (owna && sa[j]) sa[j] = a->stride[da];
    if (ownb && sb[j]) sb[j] = b->stride[db];
  }

  /* coalesce batch dims: drop size 1, merge when all three step as one */
  int64_t bsz[DL_MAX_DIMS], bs[3][DL_MAX_DIMS];
  int nd = 0;
  int64_t sc = M * N;
  for (int j = nb - 1; j >= 0; j--) { /* innermost first */
    if (oshape[j] == 1) continue;
    if (nd > 0 && sa[j] == bs[0][nd - 1] * bsz[nd - 1] && sb[j] == bs[1][nd - 1] * bsz[nd - 1] &&
        sc == bs[2][nd - 1] * bsz[nd - 1]) {
      bsz[nd - 1] *= oshape[j];
    } else {
      bsz[nd] = oshape[j];
      bs[0][nd] = sa[j];
      bs[1][nd] = sb[j];
      bs[2][nd] = sc;
      nd++;
    }
    sc *= oshape[j];
  }
  /* the innermost batch dim goes to the kernel; the kernel loops over it */
  int64_t inner = nd ? bsz[0] : 1, ia = nd ? bs[0][0] : 0, ib = nd ? bs[1][0] : 0, ic = nd ? bs[2][0] : 0;
  int64_t outer = 1;
  for (int d = 1; d < nd; d++) outer *= bsz[d];

  size_t es = dl_dtype_size(a->dtype);
  const char *pa = dl_tensor_data(a), *pb = dl_tensor_data(b);
  char *pc = dl_tensor_data(out);
  int64_t idx[DL_MAX_DIMS] = {0};
  int rc = DL_KERNEL_OK;
  for (int64_t o = 0; o < outer && rc == DL_KERNEL_OK; o++) {
    int64_t offa = 0, offb = 0, offc = 0;
    for (int d = 1; d < nd; d++) {
      offa += idx[d] * bs[0][d];
      offb += idx[d] * bs[1][d];
      offc += idx[d] * bs[2][d];
    }
    /* row-major C = A B is column-major C^T = B^T A^T */
    if (fold) {
      int last = input->ndim - 1;
      int64_t bias_stride = last < 0 || input->shape[last] == 1 ? 0 : input->stride[last];
      rc = k->gemm_bias(a->dtype, lb == 1, la == 1, N, M, K, alpha, pb, ldb, pa, lda, beta, dl_tensor_data(input),
                        bias_stride, pc, max1(N));
      break;
    }
    rc = k->gemm_strided_batched(a->dtype, lb == 1, la == 1, N, M, K, alpha, pb + offb * (int64_t)es, ldb, ib,
                                 pa + offa * (int64_t)es, lda, ia, beta, pc + offc * (int64_t)es, max1(N), ic, inner);
    for (int d = 1; d < nd && ++idx[d] == bsz[d]; d++) idx[d] = 0;
  }
  dl_tensor_release(owna);
  dl_tensor_release(ownb);
  return dl_kernel_result(fn, out, rc);
}

/* Runs gemm_core on a and b with 1-D operands promoted ([K] -> [1,K] on
 * the left, [K,1] on the right); the added dims are removed again (dst, if
 * given, gets them added as a view). */
static dl_tensor *product(const char *fn, dl_tensor *a, dl_tensor *b, dl_tensor *dst) {
  if (dst && (a->ndim == 1 || b->ndim == 1)) {
    if (dst->ndim + 2 > DL_MAX_DIMS) {
      dl_error_set("%s: out has too many dims", fn);
      return NULL;
    }
    dl_tensor *d1 = b->ndim == 1 ? dl_tensor_unsqueeze(dst, dst->ndim) : dl_tensor_retain(dst);
    dl_tensor *d2 = d1 && a->ndim == 1 ? dl_tensor_unsqueeze(d1, d1->ndim > 0 ? d1->ndim - 1 : 0) : d1;
    if (d2 != d1) dl_tensor_release(d1);
    if (!d2) return NULL;
    dl_tensor *a2 = a->ndim == 1 ? dl_tensor_unsqueeze(a, 0) : dl_tensor_retain(a);
    dl_tensor *b2 = b->ndim == 1 ? dl_tensor_unsqueeze(b, 1) : dl_tensor_retain(b);
    dl_tensor *r = a2 && b2 ? gemm_core(fn, a2, b2, a, b, NULL, 0, 1, d2, dst) : NULL;
    dl_tensor_release(a2);
    dl_tensor_release(b2);
    dl_tensor_release(d2);
    if (!r) return NULL;
    dl_tensor_release(r);
    return dl_tensor_retain(dst);
  }
  if (a->ndim > 1 && b->ndim > 1) return gemm_core(fn, a, b, a, b, NULL, 0, 1, dst, dst);
  dl_tensor *a2 = a->ndim == 1 ? dl_tensor_unsqueeze(a, 0) : dl_tensor_retain(a);
  dl_tensor *b2 = b->ndim == 1 ? dl_tensor_unsqueeze(b, 1) : dl_tensor_retain(b);
  dl_tensor *r = a2 && b2 ? gemm_core(fn, a2, b2, a, b, NULL, 0, 1, NULL, NULL) : NULL;
  dl_tensor_release(a2);
  dl_tensor_release(b2);
  if (!r) return r;
  int64_t shape[DL_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < r->ndim; d++) {
    if (a->ndim == 1 && d == r->ndim - 2) continue;
    if (b->ndim == 1 && d == r->ndim - 1) continue;
    shape[n++] = r->shape[d];
  }
  dl_tensor *v = dl_tensor_view(r, shape, n);
  dl_tensor_release(r);
  return v;
}

dl_tensor *dl_op_matmul_out(dl_tensor *a, dl_tensor *b, dl_tensor *out) {
  if (check_pair("matmul", a, b)) return NULL;
  if (a->ndim == 0 || b->ndim == 0) return shape_error("matmul", "both operands need at least 1 dim", a, b);
  return product("matmul", a, b, out);
}

dl_tensor *dl_op_matmul(dl_tensor *a, dl_tensor *b) { return dl_op_matmul_out(a, b, NULL); }

dl_tensor *dl_op_mm_out(dl_tensor *a, dl_tensor *b, dl_tensor *out) {
  if (check_pair("mm", a, b)) return NULL;
  if (a->ndim != 2 || b->ndim != 2) return shape_error("mm", "expected 2-D matrices", a, b);
  return gemm_core("mm", a, b, a, b, NULL, 0, 1, out, out);
}

dl_tensor *dl_op_mm(dl_tensor *a, dl_tensor *b) { return dl_op_mm_out(a, b, NULL); }

dl_tensor *dl_op_bmm(dl_tensor *a, dl_tensor *b) {
  if (check_pair("bmm", a, b)) return NULL;
  if (a->ndim != 3 || b->ndim != 3) return shape_error("bmm", "expected 3-D tensors", a, b);
  if (a->shape[0] != b->shape[0]) return shape_error("bmm", "batch size mismatch", a, b);
  return gemm_core("bmm", a, b, a, b, NULL, 0, 1, NULL, NULL);
}

dl_tensor *dl_op_mv(dl_tensor *a, dl_tensor *v) {
  if (check_pair("mv", a, v)) return NULL;
  if (a->ndim != 2 || v->ndim != 1) return shape_error("mv", "expected a 2-D matrix and a 1-D vector", a, v);
  return product("mv", a, v, NULL);
}

dl_tensor *dl_op_dot(dl_tensor *a, dl_tensor *b) {
  if (check_pair("dot", a, b)) return NULL;
  if (a->ndim != 1 || b->ndim != 1) return shape_error("dot", "expected 1-D vectors", a, b);
  return product("dot", a, b, NULL);
}

dl_tensor *dl_op_outer(dl_tensor *a, dl_tensor *b) {
  if (check_pair("outer", a, b)) return NULL;
  if (a->ndim != 1 || b->ndim != 1) return shape_error("outer", "expected 1-D vectors", a, b);
  dl_tensor *a2 = dl_tensor_unsqueeze(a, 1), *b2 = dl_tensor_unsqueeze(b, 0);
  dl_tensor *r = a2 && b2 ? gemm_core("outer", a2, b2, a, b, NULL, 0, 1, NULL, NULL) : NULL;
  dl_tensor_release(a2);
  dl_tensor_release(b2);
  return r;
}

dl_tensor *dl_op_addmm(dl_tensor *input, dl_tensor *m1, dl_tensor *m2, double beta, double alpha) {
  if (check_pair("addmm", m1, m2) || check_pair("addmm", input, m1)) return NULL;
  if (m1->ndim != 2 || m2->ndim != 2) return shape_error("addmm", "expected 2-D matrices", m1, m2);
  if (!isfinite(alpha) || !isfinite(beta) ||
      (m1->dtype == DL_INT64 && (alpha != floor(alpha) || beta != floor(beta) || fabs(alpha) > 9.2e18 ||
                                 fabs(beta) > 9.2e18))) {
    dl_error_set("addmm: alpha and beta must be finite%s, got alpha=%g, beta=%g",
                 m1->dtype == DL_INT64 ? " integers for int64 tensors" : "", alpha, beta);
    return NULL;
  }
  return gemm_core("addmm", m1, m2, m1, m2, input, beta, alpha, NULL, NULL);
}
