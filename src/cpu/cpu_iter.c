/* cpu_iter.c — strided multi-operand iteration. */
#include "cpu_iter.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void dl_iter_init(dl_iter *it, int nops, dl_tensor *const *ops) {
  const dl_tensor *t0 = ops[0];
  it->nops = nops;
  it->numel = t0->numel;
  for (int k = 0; k < nops; k++) it->data[k] = dl_tensor_data(ops[k]);
  /* drop size-1 dims, then merge a dim into the next inner one when every
   * operand steps through both as one */
  int n = 0;
  for (int d = 0; d < t0->ndim; d++) {
    if (t0->shape[d] == 1) continue;
    it->shape[n] = t0->shape[d];
    for (int k = 0; k < nops; k++) it->stride[k][n] = ops[k]->stride[d] * (int64_t)dl_dtype_size(ops[k]->dtype);
    if (n > 0) {
      bool merge = true;
      for (int k = 0; k < nops; k++)
        if (it->stride[k][n - 1] != it->stride[k][n] * it->shape[n]) { merge = false; break; }
      if (merge) {
        it->shape[n - 1] *= it->shape[n];
        for (int k = 0; k < nops; k++) it->stride[k][n - 1] = it->stride[k][n];
        continue;
      }
    }
    n++;
  }
  if (n == 0) { /* a single element */
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->stride[k][0] = (int64_t)dl_dtype_size(ops[k]->dtype);
    n = 1;
  }
  it->ndim = n;
}

void dl_iter_run(const dl_iter *it, int64_t begin, int64_t end, dl_iter_fn fn, void *ctx) {
  if (begin >= end) return;
  int nd = it->ndim, nops = it->nops;
  int64_t inner = it->shape[nd - 1];
  int64_t idx[DL_MAX_DIMS];
  char *ptrs[DL_ITER_MAXOPS];
  int64_t istr[DL_ITER_MAXOPS];
  for (int k = 0; k < nops; k++) istr[k] = it->stride[k][nd - 1];
  /* position of `begin` */
  int64_t rem = begin;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = rem % it->shape[d];
    rem /= it->shape[d];
  }
  int64_t pos = begin;
  while (pos < end) {
    for (int k = 0; k < nops; k++) {
      char *p = it->data[k];
      for (int d = 0; d < nd; d++) p += idx[d] * it->stride[k][d];
      ptrs[k] = p;
    }
    int64_t n = inner - idx[nd - 1];
    if (n > end - pos) n = end - pos;
    fn(ptrs, istr, n, ctx);
    pos += n;
    idx[nd - 1] += n;
    for (int d = nd - 1; d > 0 && idx[d] >= it->shape[d]; d--) {
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
}

void dl_iter_parallel(const dl_iter *it, dl_iter_fn fn, void *ctx, int64_t grain) {
  int64_t n = it->numel;
#ifdef _OPENMP
  if (n >= grain && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      int nt = omp_get_num_threads(), id = omp_get_thread_num();
      int64_t chunk = (n + nt - 1) / nt;
      int64_t b = (int64_t)id * chunk, e = b + chunk < n ? b + chunk : n;
      dl_iter_run(it, b, e, fn, ctx);
    }
    return;
  }
#else
  (void)grain;
#endif
  dl_iter_run(it, 0, n, fn, ctx);
}

void dl_cpu_run_blocks(int64_t nb, int64_t grain, dl_block_fn fn, void *ctx) {
#ifdef _OPENMP
  if (nb >= grain && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
      int64_t chunk = (nb + nt - 1) / nt, b0 = id * chunk, b1 = b0 + chunk < nb ? b0 + chunk : nb;
      if (b0 < b1) fn(ctx, b0, b1);
    }
    return;
  }
#else
  (void)grain;
#endif
  fn(ctx, 0, nb);
}
