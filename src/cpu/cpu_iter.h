/* cpu_iter.h — walks several same-shape strided tensors in C order, handing
 * 1-D runs (pointers + byte strides) to a typed inner loop. Dims are
 * coalesced first, so contiguous operands become one run. */
#ifndef DL_CPU_ITER_H
#define DL_CPU_ITER_H

#include "../dl_tensor.h"

#define DL_ITER_MAXOPS 4
/* Below this many elements a loop stays on one thread. */
#define DL_PARALLEL_GRAIN 32768

typedef struct {
  int nops;
  int ndim; /* after coalescing; the last dim is the inner run */
  int64_t numel;
  int64_t shape[DL_MAX_DIMS];
  int64_t stride[DL_ITER_MAXOPS][DL_MAX_DIMS]; /* bytes */
  char *data[DL_ITER_MAXOPS];
} dl_iter;

/* ptrs[k] points at operand k's first element of the run; strides in bytes */
typedef void (*dl_iter_fn)(char **ptrs, const int64_t *strides, int64_t n, void *ctx);

/* ops[0..nops) share ops[0]'s shape (broadcast operands are expanded views) */
void dl_iter_init(dl_iter *it, int nops, dl_tensor *const *ops);
/* elements [begin, end) in C order */
void dl_iter_run(const dl_iter *it, int64_t begin, int64_t end, dl_iter_fn fn, void *ctx);
/* all elements, split across threads when there are at least `grain` */
void dl_iter_parallel(const dl_iter *it, dl_iter_fn fn, void *ctx, int64_t grain);

/* fn(ctx, b0, b1) over blocks [0, nb) of whatever the caller cuts into
 * blocks: one equal run of blocks per thread when there are at least
 * `grain` blocks and more than one thread (an idle parallel region still
 * costs futex calls), else all of them on the calling thread */
typedef void (*dl_block_fn)(void *ctx, int64_t b0, int64_t b1);
void dl_cpu_run_blocks(int64_t nb, int64_t grain, dl_block_fn fn, void *ctx);

/* true when every operand's inner stride equals its element size */
static inline bool dl_iter_inner_contiguous(const int64_t *strides, const int64_t *elsizes, int nops) {
  for (int k = 0; k < nops; k++)
    if (strides[k] != elsizes[k]) return false;
  return true;
}

#endif
