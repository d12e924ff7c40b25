/* cpu_scan.c — running sums and products along one dim (cumsum, cumprod).
 * When the scanned dim is innermost in memory each line runs on its own
 * (threads over lines); otherwise a block of lines along the innermost
 * other dim advances together, one contiguous row per step. Floating
 * inputs accumulate in double, integer and bool ones in int64. */
#include "../ops/dl_reduce.h"
#include "../ops/dl_reduce_plan.h"
#include "cpu_backend.h"
#include "cpu_iter.h"
#include "cpu_reduce_util.h"

#define B DL_RED_BLOCK

typedef struct {
  int nk;
  int64_t ksize[DL_MAX_DIMS];
  int64_t kstr[2][DL_MAX_DIMS]; /* bytes: src, dst */
  int64_t len, sstr, dstr;      /* the scanned dim */
  int64_t nlines;
  const char *src;
  char *dst;
  dl_dtype sdt, ddt;
  bool ipath, prod;
} scan_plan;

static void scan_plan_init(scan_plan *P, dl_tensor *dst, const dl_tensor *src, int dim, dl_scan_op op) {
  int64_t es = (int64_t)dl_dtype_size(src->dtype), ed = (int64_t)dl_dtype_size(dst->dtype);
  P->nk = dl_scan_lines(dst, src, dim, P->ksize, P->kstr);
  for (int i = 0; i < P->nk; i++) { /* bytes */
    P->kstr[0][i] *= es;
    P->kstr[1][i] *= ed;
  }
  P->nlines = 1;
  for (int i = 0; i < P->nk; i++) P->nlines *= P->ksize[i];
  P->len = src->shape[dim];
  P->sstr = src->stride[dim] * es;
  P->dstr = dst->stride[dim] * ed;
  P->src = dl_tensor_data(src);
  P->dst = dl_tensor_data(dst);
  P->sdt = src->dtype;
  P->ddt = dst->dtype;
  P->ipath = !dl_dtype_is_float(src->dtype);
  P->prod = op == DL_SCAN_PROD;
}

static void line_offsets(const scan_plan *P, int64_t o, int nk, int64_t *so, int64_t *dof) {
  *so = *dof = 0;
  for (int d = nk - 1; d >= 0; d--) {
    int64_t i = o % P->ksize[d];
    o /= P->ksize[d];
    *so += i * P->kstr[0][d];
    *dof += i * P->kstr[1][d];
  }
}

/* one line, in blocks */
static void scan_line(const scan_plan *P, int64_t o) {
  int64_t so, dof;
  line_offsets(P, o, P->nk, &so, &dof);
  const char *s = P->src + so;
  char *d = P->dst + dof;
  double dbuf[B], dacc = P->prod ? 1 : 0;
  int64_t ibuf[B], iacc = P->prod ? 1 : 0;
  for (int64_t off = 0; off < P->len; off += B) {
    int64_t n = P->len - off < B ? P->len - off : B;
    if (P->ipath) {
      const int64_t *x = dl_load_i(P->sdt, s + off * P->sstr, P->sstr, n, ibuf);
      uint64_t a = (uint64_t)iacc; /* wraps, without UB */
      for (int64_t i = 0; i < n; i++) {
        a = P->prod ? a * (uint64_t)x[i] : a + (uint64_t)x[i];
        ibuf[i] = (int64_t)a;
      }
      iacc = (int64_t)a;
      dl_store_i(P->ddt, d + off * P->dstr, P->dstr, n, ibuf);
    } else {
      const double *x = dl_load_d(P->sdt, s + off * P->sstr, P->sstr, n, dbuf);
      for (int64_t i = 0; i < n; i++) {
        dacc = P->prod ? dacc * x[i] : dacc + x[i];
        dbuf[i] = dacc;
      }
      dl_store_d(P->ddt, d + off * P->dstr, P->dstr, n, dbuf);
    }
  }
}

/* a block of up to B lines along the innermost other dim, advancing
 * together one row at a time */
static void scan_block(const scan_plan *P, int64_t w, int64_t nblk) {
  int ki = P->nk - 1;
  int64_t k0 = P->ksize[ki], blk = w % nblk;
  int64_t so, dof;
  line_offsets(P, w / nblk, ki, &so, &dof);
  so += blk * B * P->kstr[0][ki];
  dof += blk * B * P->kstr[1][ki];
  int64_t nb = k0 - blk * B < B ? k0 - blk * B : B;
  double dacc[B], dbuf[B];
  int64_t iacc[B], ibuf[B];
  for (int64_t j = 0; j < nb; j++) {
    dacc[j] = P->prod ? 1 : 0;
    iacc[j] = P->prod ? 1 : 0;
  }
  for (int64_t r = 0; r < P->len; r++) {
    const char *s = P->src + so + r * P->sstr;
    char *d = P->dst + dof + r * P->dstr;
    if (P->ipath) {
      const int64_t *x = dl_load_i(P->sdt, s, P->kstr[0][ki], nb, ibuf);
      if (P->prod)
        for (int64_t j = 0; j < nb; j++) iacc[j] = (int64_t)((uint64_t)iacc[j] * (uint64_t)x[j]);
      else
        DL_SIMD for (int64_t j = 0; j < nb; j++) iacc[j] = (int64_t)((uint64_t)iacc[j] + (uint64_t)x[j]);
      dl_store_i(P->ddt, d, P->kstr[1][ki], nb, iacc);
    } else {
      const double *x = dl_load_d(P->sdt, s, P->kstr[0][ki], nb, dbuf);
      if (P->prod)
        DL_SIMD for (int64_t j = 0; j < nb; j++) dacc[j] *= x[j];
      else
        DL_SIMD for (int64_t j = 0; j < nb; j++) dacc[j] += x[j];
      dl_store_d(P->ddt, d, P->kstr[1][ki], nb, dacc);
    }
  }
}

int dl_cpu_scan(dl_tensor *dst, const dl_tensor *src, int dim, dl_scan_op op) {
  if (dst->numel == 0) return DL_KERNEL_OK;
  scan_plan P;
  scan_plan_init(&P, dst, src, dim, op);
  bool par = src->numel >= DL_PARALLEL_GRAIN;
  (void)par;
  /* lines on their own when the scanned dim is innermost and long */
  if (P.nk == 0 || (P.sstr < P.kstr[0][P.nk - 1] && P.len >= 16)) {
#pragma omp parallel for schedule(static) if (par && P.nlines > 1)
    for (int64_t o = 0; o < P.nlines; o++) scan_line(&P, o);
    return DL_KERNEL_OK;
  }
  int64_t k0 = P.ksize[P.nk - 1];
  int64_t nblk = (k0 + B - 1) / B;
  int64_t nwork = P.nlines / k0 * nblk;
#pragma omp parallel for schedule(static) if (par && nwork > 1)
  for (int64_t w = 0; w < nwork; w++) scan_block(&P, w, nblk);
  return DL_KERNEL_OK;
}
