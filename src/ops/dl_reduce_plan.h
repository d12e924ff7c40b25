/* dl_reduce_plan.h — the loop nest of a reduction, planned once on the
 * host for every backend (cpu_reduce.c, cuda_reduce.cu): the kept dims and
 * the reduced dims of src, each sorted by decreasing stride and merged
 * where their strides chain, so the kernels walk as few dims as possible;
 * and the call's scalars in the form the kernels read. */
#ifndef DL_REDUCE_PLAN_H
#define DL_REDUCE_PLAN_H

#include "dl_reduce.h"

#ifdef __cplusplus
extern "C" {
#endif

/* operands: src, out, indices (max/min), aux (the mean of var) */
enum { DL_RK_SRC, DL_RK_OUT, DL_RK_IDX, DL_RK_AUX, DL_RK_NOPS };
/* norm kinds */
enum { DL_RP_ZERO, DL_RP_ONE, DL_RP_TWO, DL_RP_INF, DL_RP_NINF, DL_RP_GEN };

typedef struct {
  int nk, nr;
  int64_t ksize[DL_MAX_DIMS];
  int64_t kstr[DL_RK_NOPS][DL_MAX_DIMS]; /* elements of each operand (0: absent) */
  int64_t rsize[DL_MAX_DIMS];            /* at least one reduced dim, of size 1 if none */
  int64_t rstr[DL_MAX_DIMS];             /* elements of src */
  int64_t nout, nred;
  char *base[DL_RK_NOPS];                /* each operand's first element */
  dl_dtype sdt, odt, adt;
  dl_reduce_op op;
  int pkind;         /* NORM: which p */
  bool ipath;        /* integer input of an op that accumulates in int64 */
  bool want_index, has_aux, take_sqrt;
  double p, correction;
} dl_reduce_plan;

void dl_reduce_plan_init(dl_reduce_plan *P, const dl_reduce_call *c);

/* A scan's lines: every dim of src but dim (sizes > 1), sorted by
 * decreasing stride and merged where both src's and dst's strides chain;
 * strides in elements, kstr[0] of src, kstr[1] of dst. Returns their count. */
int dl_scan_lines(const dl_tensor *dst, const dl_tensor *src, int dim, int64_t ksize[DL_MAX_DIMS],
                  int64_t kstr[2][DL_MAX_DIMS]);

#ifdef __cplusplus
}
#endif

#endif
