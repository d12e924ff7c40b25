/* dl_ops.h — what ops.def generates: the op enums, the op info table, and
 * the dtype rules. Read by the C engine, the binding and the CUDA backend
 * (the rule functions are constexpr there, so kernels can ask at compile
 * time which dtypes an op computes in).
 *
 * To walk the table, define the macros you need and include "ops_each.h":
 *   DL_OP_ALL(ID, name, family, arity, rule, inplace, grad)   every line
 *   DL_OP_BINARY(ID, name, arity, rule, inplace, grad)        one family
 *   (likewise DL_OP_UNARY, DL_OP_EWISE, DL_OP_VIEW, ...)
 * Undefined ones expand to nothing; ops_each.h undefines them after. */
#ifndef DL_OPS_H
#define DL_OPS_H

#include "../dl_core.h"

#ifdef __CUDACC__
#define DL_OPS_FN constexpr __host__ __device__ inline
#elif defined(__cplusplus)
#define DL_OPS_FN constexpr inline
#else
#define DL_OPS_FN static inline
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  DL_FAM_BINARY, DL_FAM_UNARY, DL_FAM_EWISE, DL_FAM_VIEW, DL_FAM_REDUCE,
  DL_FAM_INDEX, DL_FAM_LINALG, DL_FAM_ACT, DL_FAM_LOSS, DL_FAM_LAYER,
} dl_op_family;

/* Which dtypes an op accepts and computes in (ops.def's rule column). */
typedef enum {
  DL_RULE_ANY,         /* every dtype; the result keeps the (promoted) dtype */
  DL_RULE_NUMERIC,     /* bool refused */
  DL_RULE_BOOL_AS_INT, /* bool computed as int64 (square) */
  DL_RULE_FLOAT_ONLY,  /* integers and bool refused */
  DL_RULE_TO_FLOAT,    /* integers and bool computed as float32 */
  DL_RULE_TO_BOOL,     /* every dtype in, bool out */
} dl_dtype_rule;

typedef enum { DL_INPLACE_N, DL_INPLACE_Y, DL_INPLACE_ONLY } dl_inplace_form;

/* Every op, DL_OP_<ID>. */
typedef enum {
#define DL_OP_ALL(ID, name, fam, ar, rule, ip, grad) DL_OP_##ID,
#include "ops_each.h"
  DL_NOPS
} dl_op;

/* The element-wise ops with one generic kernel entry each. */
typedef enum {
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad) DL_BIN_##ID,
#include "ops_each.h"
  DL_NBINOPS
} dl_binop;

typedef enum {
#define DL_OP_UNARY(ID, name, ar, rule, ip, grad) DL_UN_##ID,
#include "ops_each.h"
  DL_NUNOPS
} dl_unop;

/* the grad column: node type names, and whether the op has a derivative */
#define DL_GRAD_NAME(g) DL_GRAD_NAME_##g
#define DL_GRAD_NAME_NOGRAD NULL
#define DL_GRAD_NAME_DIFF NULL
#define DL_GRAD_NAME_NODE(a) #a
#define DL_GRAD_NAME_NODE2(a, b) #a
/* the node type when one operand is a number */
#define DL_GRAD_NAME_NUM(g) DL_GRAD_NAME_NUM_##g
#define DL_GRAD_NAME_NUM_NOGRAD NULL
#define DL_GRAD_NAME_NUM_DIFF NULL
#define DL_GRAD_NAME_NUM_NODE(a) #a
#define DL_GRAD_NAME_NUM_NODE2(a, b) #b
#define DL_GRAD_DIFF(g) DL_GRAD_DIFF_##g
#define DL_GRAD_DIFF_NOGRAD 0
#define DL_GRAD_DIFF_DIFF 1
#define DL_GRAD_DIFF_NODE(a) 1
#define DL_GRAD_DIFF_NODE2(a, b) 1
#define DL_LOCAL(fam, ID) DL_LOCAL_##fam(ID)
#define DL_LOCAL_BINARY(ID) DL_BIN_##ID
#define DL_LOCAL_UNARY(ID) DL_UN_##ID
#define DL_LOCAL_EWISE(ID) -1
#define DL_LOCAL_VIEW(ID) -1
#define DL_LOCAL_REDUCE(ID) -1
#define DL_LOCAL_INDEX(ID) -1
#define DL_LOCAL_LINALG(ID) -1
#define DL_LOCAL_ACT(ID) -1
#define DL_LOCAL_LOSS(ID) -1
#define DL_LOCAL_LAYER(ID) -1
#define DL_ARITY_N (-1)
#define DL_ARITY_0 0
#define DL_ARITY_1 1
#define DL_ARITY_2 2
#define DL_ARITY_3 3
#define DL_ARITY_4 4
#define DL_ARITY_5 5

typedef struct {
  const char *name;      /* "floor_divide" */
  const char *name_;     /* its in-place form "floor_divide_", or NULL */
  dl_op_family family;
  int8_t arity;          /* tensor operands, -1: any number */
  dl_dtype_rule rule;
  dl_inplace_form inplace;
  bool differentiable;
  const char *grad;      /* node type name, NULL when not from the table */
  int16_t local;         /* DL_BIN_* / DL_UN_* of a BINARY / UNARY op, else -1 */
} dl_op_info;

extern const dl_op_info dl_op_infos[DL_NOPS];

static inline const dl_op_info *dl_op_get(dl_op op) { return &dl_op_infos[op]; }
static inline const char *dl_op_name(dl_op op) { return dl_op_infos[op].name; }

/* the global op of a family-local one */
dl_op dl_binop_op(dl_binop op);
dl_op dl_unop_op(dl_unop op);

DL_OPS_FN dl_dtype_rule dl_binop_rule(int op) {
  switch (op) {
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad) case DL_BIN_##ID: return DL_RULE_##rule;
#include "ops_each.h"
  default: return DL_RULE_ANY;
  }
}

DL_OPS_FN dl_dtype_rule dl_unop_rule(int op) {
  switch (op) {
#define DL_OP_UNARY(ID, name, ar, rule, ip, grad) case DL_UN_##ID: return DL_RULE_##rule;
#include "ops_each.h"
  default: return DL_RULE_ANY;
  }
}

/* Whether a kernel of this rule computes in dtype dt (the front-end casts
 * the operands first: TO_FLOAT ops compute in float, BOOL_AS_INT in int64). */
DL_OPS_FN bool dl_rule_computes_in(dl_dtype_rule rule, dl_dtype dt) {
  switch (rule) {
  case DL_RULE_NUMERIC:
  case DL_RULE_BOOL_AS_INT: return dt != DL_BOOL;
  case DL_RULE_FLOAT_ONLY:
  case DL_RULE_TO_FLOAT: return dt == DL_FLOAT32 || dt == DL_FLOAT64;
  default: return true;
  }
}

DL_OPS_FN bool dl_rule_writes_bool(dl_dtype_rule rule) { return rule == DL_RULE_TO_BOOL; }

#ifdef __cplusplus
}
#endif

#endif
