/* dl_reduce_plan.c — the loop nest of a reduction (dl_reduce_plan.h). */
#include "dl_reduce_plan.h"

#include <math.h>

/* the ops that accumulate integer inputs in int64 */
static bool int_op(dl_reduce_op op) {
  return op == DL_REDUCE_SUM || op == DL_REDUCE_PROD || op == DL_REDUCE_MAX || op == DL_REDUCE_MIN ||
         op == DL_REDUCE_ALL || op == DL_REDUCE_ANY || op == DL_REDUCE_COUNT_NONZERO;
}

static int norm_kind(double p) {
  if (p == 0) return DL_RP_ZERO;
  if (p == 1) return DL_RP_ONE;
  if (p == 2) return DL_RP_TWO;
  if (p == INFINITY) return DL_RP_INF;
  if (p == -INFINITY) return DL_RP_NINF;
  return DL_RP_GEN;
}

/* sorts dims by decreasing stride of t (stable): the last is innermost */
static void sort_dims(int *d, int n, const dl_tensor *t) {
  for (int i = 1; i < n; i++) {
    int x = d[i], j = i;
    while (j > 0 && t->stride[d[j - 1]] < t->stride[x]) {
      d[j] = d[j - 1];
      j--;
    }
    d[j] = x;
  }
}

int dl_scan_lines(const dl_tensor *dst, const dl_tensor *src, int dim, int64_t ksize[DL_MAX_DIMS],
                  int64_t kstr[2][DL_MAX_DIMS]) {
  int kd[DL_MAX_DIMS], nd = 0, nk = 0;
  for (int d = 0; d < src->ndim; d++)
    if (d != dim && src->shape[d] != 1) kd[nd++] = d;
  sort_dims(kd, nd, src);
  for (int i = 0; i < nd; i++) {
    int d = kd[i];
    int64_t s0 = src->stride[d], s1 = dst->stride[d];
    if (nk > 0 && kstr[0][nk - 1] == s0 * src->shape[d] && kstr[1][nk - 1] == s1 * src->shape[d]) {
      ksize[nk - 1] *= src->shape[d];
      kstr[0][nk - 1] = s0;
      kstr[1][nk - 1] = s1;
    } else {
      ksize[nk] = src->shape[d];
      kstr[0][nk] = s0;
      kstr[1][nk] = s1;
      nk++;
    }
  }
  return nk;
}

void dl_reduce_plan_init(dl_reduce_plan *P, const dl_reduce_call *c) {
  const dl_tensor *src = c->src;
  const dl_tensor *ops[DL_RK_NOPS] = {src, c->out, c->indices, c->aux};
  int kd[DL_MAX_DIMS], rd[DL_MAX_DIMS], nk = 0, nr = 0;
  for (int d = 0; d < src->ndim; d++) {
    if (src->shape[d] == 1) continue;
    if (c->out->shape[d] == 1) rd[nr++] = d;
    else kd[nk++] = d;
  }
  sort_dims(kd, nk, src);
  sort_dims(rd, nr, src);
  P->nk = P->nr = 0;
  for (int i = 0; i < nk; i++) {
    int d = kd[i], n = P->nk;
    int64_t st[DL_RK_NOPS];
    for (int k = 0; k < DL_RK_NOPS; k++) st[k] = ops[k] ? ops[k]->stride[d] : 0;
    bool merge = n > 0;
    for (int k = 0; k < DL_RK_NOPS && merge; k++)
      if (P->kstr[k][n - 1] != st[k] * src->shape[d]) merge = false;
    if (merge) {
      P->ksize[n - 1] *= src->shape[d];
      for (int k = 0; k < DL_RK_NOPS; k++) P->kstr[k][n - 1] = st[k];
    } else {
      P->ksize[n] = src->shape[d];
      for (int k = 0; k < DL_RK_NOPS; k++) P->kstr[k][n] = st[k];
      P->nk++;
    }
  }
  for (int i = 0; i < nr; i++) {
    int d = rd[i], n = P->nr;
    int64_t st = src->stride[d];
    if (n > 0 && P->rstr[n - 1] == st * src->shape[d]) {
      P->rsize[n - 1] *= src->shape[d];
      P->rstr[n - 1] = st;
    } else {
      P->rsize[n] = src->shape[d];
      P->rstr[n] = st;
      P->nr++;
    }
  }
  if (P->nr == 0) { /* nothing to fold: one element per output */
    P->rsize[0] = 1;
    P->rstr[0] = 0;
    P->nr = 1;
  }
  P->nout = 1;
  for (int i = 0; i < P->nk; i++) P->nout *= P->ksize[i];
  P->nred = 1;
  for (int i = 0; i < P->nr; i++) P->nred *= P->rsize[i];
  for (int k = 0; k < DL_RK_NOPS; k++) P->base[k] = ops[k] ? (char *)dl_tensor_data(ops[k]) : NULL;
  P->sdt = src->dtype;
  P->odt = c->out->dtype;
  P->adt = c->aux ? c->aux->dtype : DL_FLOAT64;
  P->op = c->op;
  P->ipath = !dl_dtype_is_float(src->dtype) && int_op(c->op);
  P->want_index = c->indices != NULL;
  P->has_aux = c->aux != NULL;
  P->pkind = norm_kind(c->p);
  P->p = c->p;
  P->correction = c->correction;
  P->take_sqrt = c->take_sqrt;
}
