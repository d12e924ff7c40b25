/* test_ops.c — the op table (src/ops/ops.def) and what is generated from
 * it: names, in-place forms, family-local ids, and the agreement between
 * each element-wise op's dtype rule (which the CUDA backend instantiates
 * from) and the CPU kernel tables; the one "not supported" message. */
#include "ctest.h"
#include "dl_backend.h"
#include "ops/dl_ewise.h"

#include <string.h>

int main(void) {
  int nbin = 0, nun = 0;
  for (int i = 0; i < DL_NOPS; i++) {
    const dl_op_info *a = dl_op_get((dl_op)i);
    CHECK(a->name && a->name[0]);
    /* names are unique, in-place forms are name .. "_" */
    bool unique = true;
    for (int j = 0; j < i; j++) unique = unique && strcmp(a->name, dl_op_get((dl_op)j)->name) != 0;
    CHECK(unique);
    if (a->inplace == DL_INPLACE_Y) {
      size_t n = strlen(a->name);
      CHECK(a->name_ && strncmp(a->name_, a->name, n) == 0 && strcmp(a->name_ + n, "_") == 0);
    } else {
      CHECK(a->name_ == NULL);
    }
    /* a node type name only where the table generates the node */
    if (a->grad) CHECK(a->differentiable && strstr(a->grad, "Backward") != NULL);
    if (a->family == DL_FAM_BINARY) {
      nbin++;
      CHECK(a->local >= 0 && a->local < DL_NBINOPS && dl_binop_op((dl_binop)a->local) == (dl_op)i);
      CHECK(strcmp(dl_binop_name((dl_binop)a->local), a->name) == 0);
      CHECK(a->arity == 2);
    } else if (a->family == DL_FAM_UNARY) {
      nun++;
      CHECK(a->local >= 0 && a->local < DL_NUNOPS && dl_unop_op((dl_unop)a->local) == (dl_op)i);
      CHECK(strcmp(dl_unop_name((dl_unop)a->local), a->name) == 0);
      CHECK(a->arity == 1);
    } else {
      CHECK(a->local == -1);
    }
  }
  CHECK(nbin == DL_NBINOPS);
  CHECK(nun == DL_NUNOPS);

  /* the CPU tables hold exactly the (op, dtype) pairs the rule computes in:
   * the CUDA kernels are instantiated from the rule, so both backends agree */
  const dl_backend *cpu = dl_backend_get(dl_device_cpu());
  for (int i = 0; i < DL_NOPS; i++) {
    const dl_op_info *a = dl_op_get((dl_op)i);
    if (a->family != DL_FAM_BINARY && a->family != DL_FAM_UNARY) continue;
    bool agree = true;
    for (int dt = 0; dt < DL_NDTYPES; dt++) {
      bool want = dl_rule_computes_in(a->rule, (dl_dtype)dt);
      if (want != cpu->supports_op((dl_op)i, (dl_dtype)dt)) {
        fprintf(stderr, "%s for %s: the rule says %d, the CPU table %d\n", a->name, dl_dtype_name((dl_dtype)dt),
                want, !want);
        agree = false;
      }
    }
    CHECK(agree);
  }

  /* one message for a pair a device does not run */
  CHECK(dl_backend_for_op("erf", DL_OP_ERF, dl_device_cpu(), DL_INT64) == NULL);
  CHECK(strcmp(dl_error_get(), "erf: not supported on cpu for int64") == 0);
  CHECK(dl_backend_for_op("erf", DL_OP_ERF, dl_device_cpu(), DL_FLOAT64) == cpu);
  CTEST_END();
}
