/* cpu_ewise.h — shared machinery of the CPU element-wise kernels: running a
 * typed inner loop over operands that are tensors or broadcast numbers, and
 * converting numbers to a compute dtype. */
#ifndef DL_CPU_EWISE_H
#define DL_CPU_EWISE_H

#include "../ops/dl_ewise.h"
#include "cpu_convert.h"
#include "cpu_iter.h"

/* A number held in every dtype's representation; handed to inner loops as
 * an operand with stride 0. */
typedef union {
  float f;
  double d;
  int64_t i;
  uint8_t u;
} dl_cpu_value;

static inline dl_cpu_value dl_cpu_value_of(dl_scalar s, dl_dtype dt) {
  dl_cpu_value v;
  v.i = 0;
  double f = s.is_int ? (double)s.i : s.f;
  switch (dt) {
  case DL_FLOAT32: v.f = (float)f; break;
  case DL_FLOAT64: v.d = f; break;
  case DL_INT64: v.i = s.is_int ? s.i : dl_f2i(f); break;
  case DL_BOOL: v.u = (uint8_t)(s.is_int ? s.i != 0 : f != 0); break;
  default: v.u = (uint8_t)(s.is_int ? (uint64_t)s.i : (uint64_t)dl_f2i(f)); break;
  }
  return v;
}

/* dl_dtype_size without the call: float32, float64, int64, bool, uint8 */
static inline int64_t dl_cpu_elsize(dl_dtype dt) {
  static const int8_t sizes[DL_NDTYPES] = {4, 8, 8, 1, 1};
  return sizes[dt];
}

/* ops[k] is a tensor of ops[0]'s shape, or NULL for the number at vals[k]
 * (stride 0). ops[0] (the output) is a tensor. Contiguous operands run as
 * one flat loop; others go through dl_iter. Threads above the grain. */
void dl_cpu_run(int nops, dl_tensor *const *ops, const dl_cpu_value *vals, dl_iter_fn fn, void *ctx);

/* The ewise entries of the CPU backend (cpu_ewise*.c); each returns
 * DL_KERNEL_OK (binary also DL_EWISE_ZERODIV). Twin of cuda_ewise.cu's
 * list: each backend declares its own entries of struct dl_ewise_kernels. */
int dl_cpu_ewise_unary(dl_unop op, dl_tensor *out, const dl_tensor *a);
int dl_cpu_ewise_clamp(dl_tensor *out, const dl_tensor *a, const dl_operand *lo, const dl_operand *hi);
int dl_cpu_ewise_lerp(dl_tensor *out, const dl_tensor *a, const dl_tensor *end, dl_operand w);
int dl_cpu_ewise_addc(bool div, dl_tensor *out, const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2,
                      dl_scalar value);
int dl_cpu_ewise_where(dl_tensor *out, const dl_tensor *cond, dl_operand a, dl_operand b);
int dl_cpu_ewise_isclose(dl_tensor *out, const dl_tensor *a, const dl_tensor *b, double rtol, double atol,
                         bool equal_nan);
int dl_cpu_ewise_all(const dl_tensor *t, bool *out);
/* whether the kernel tables hold (op, dtype) */
bool dl_cpu_binary_has(dl_binop op, dl_dtype dt);
bool dl_cpu_unary_has(dl_unop op, dl_dtype dt);

/* Type-level helpers for the loop macros */
#define DL_IADD(x, y) ((int64_t)((uint64_t)(x) + (uint64_t)(y)))
#define DL_ISUB(x, y) ((int64_t)((uint64_t)(x) - (uint64_t)(y)))
#define DL_IMUL(x, y) ((int64_t)((uint64_t)(x) * (uint64_t)(y)))

/* Inner-loop generators. EXPR is a macro of the operands; strides come in
 * bytes. The contiguous variant is what the compiler vectorises. */
#define DL_LOOP2(NAME, OT, T, EXPR)                                               \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {            \
    (void)ctx;                                                                    \
    if (s[0] == (int64_t)sizeof(OT) && s[1] == (int64_t)sizeof(T)) {              \
      OT *o = (OT *)p[0];                                                         \
      const T *a = (const T *)p[1];                                               \
      for (int64_t i = 0; i < n; i++) o[i] = (OT)EXPR(a[i]);                      \
    } else {                                                                      \
      for (int64_t i = 0; i < n; i++) {                                           \
        T x = *(const T *)(p[1] + i * s[1]);                                      \
        *(OT *)(p[0] + i * s[0]) = (OT)EXPR(x);                                   \
      }                                                                           \
    }                                                                             \
  }

#endif
