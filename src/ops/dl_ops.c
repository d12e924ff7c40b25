/* dl_ops.c — the op info table, generated from ops.def. */
#include "dl_ops.h"

#define DL_OP_ALL(ID, name, fam, ar, rule, ip, grad)                                                     \
  [DL_OP_##ID] = {#name, DL_INPLACE_##ip == DL_INPLACE_Y ? #name "_" : NULL, DL_FAM_##fam, DL_ARITY_##ar, \
                  DL_RULE_##rule, DL_INPLACE_##ip, DL_GRAD_DIFF(grad), DL_GRAD_NAME(grad), DL_LOCAL(fam, ID)},
const dl_op_info dl_op_infos[DL_NOPS] = {
#include "ops_each.h"
};

static const dl_op binop_ops[DL_NBINOPS] = {
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad) [DL_BIN_##ID] = DL_OP_##ID,
#include "ops_each.h"
};

static const dl_op unop_ops[DL_NUNOPS] = {
#define DL_OP_UNARY(ID, name, ar, rule, ip, grad) [DL_UN_##ID] = DL_OP_##ID,
#include "ops_each.h"
};

dl_op dl_binop_op(dl_binop op) { return binop_ops[op]; }
dl_op dl_unop_op(dl_unop op) { return unop_ops[op]; }
