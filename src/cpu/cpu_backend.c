/* cpu_backend.c — the CPU kernel table. */
#include "cpu_backend.h"

#include "../dl_alloc.h"
#include "cpu_ewise.h"

#include <string.h>

extern const struct dl_ewise_kernels dl_cpu_ewise;
extern const struct dl_reduce_kernels dl_cpu_reduce;
extern const struct dl_index_kernels dl_cpu_index;
extern const struct dl_linalg_kernels dl_cpu_linalg;
extern const struct dl_random_kernels dl_cpu_random;
extern const struct dl_act_kernels dl_cpu_act;
extern const struct dl_loss_kernels dl_cpu_loss;
extern const struct dl_layer_kernels dl_cpu_layer;
extern const struct dl_conv_kernels dl_cpu_conv;
extern const struct dl_optim_kernels dl_cpu_optim;
extern const struct dl_decomp_kernels dl_cpu_decomp;

/* (op, dtype) pairs: the element-wise kernel tables say; the other
 * families' front-ends check dtypes themselves and every CPU family has
 * kernels. One bit per dtype, read from the tables once at load. */
static uint8_t dtype_mask[DL_NOPS];

__attribute__((constructor)) static void fill_dtype_mask(void) {
  for (int op = 0; op < DL_NOPS; op++) {
    const dl_op_info *in = dl_op_get((dl_op)op);
    for (int dt = 0; dt < DL_NDTYPES; dt++) {
      bool has = in->family == DL_FAM_BINARY  ? dl_cpu_binary_has((dl_binop)in->local, (dl_dtype)dt)
                 : in->family == DL_FAM_UNARY ? dl_cpu_unary_has((dl_unop)in->local, (dl_dtype)dt)
                                              : true;
      if (has) dtype_mask[op] |= (uint8_t)(1u << dt);
    }
  }
}

static bool cpu_supports_op(dl_op op, dl_dtype dt) { return (dtype_mask[op] >> dt) & 1; }

static int host_copy(void *dst, const void *src, size_t n) {
  memcpy(dst, src, n);
  return 0;
}

/* a reference that keeps cpu_blas_core.o, whose constructor must run, in
 * programs linked against the static library */
void (*const dl_cpu_blas_core_keep)(void) = dl_cpu_blas_core_fix;

const dl_backend dl_cpu_backend = {
  .name = "cpu",
  .supports_op = cpu_supports_op,
  .alloc = dl_host_alloc,
  .free = dl_host_free,
  .copy = dl_cpu_copy,
  .fill = dl_cpu_fill,
  .to_host = host_copy,
  .from_host = host_copy,
  .ewise = &dl_cpu_ewise,
  .reduce = &dl_cpu_reduce,
  .index = &dl_cpu_index,
  .linalg = &dl_cpu_linalg,
  .random = &dl_cpu_random,
  .act = &dl_cpu_act,
  .loss = &dl_cpu_loss,
  .layer = &dl_cpu_layer,
  .optim = &dl_cpu_optim,
  .decomp = &dl_cpu_decomp,
  .conv = &dl_cpu_conv,
};
