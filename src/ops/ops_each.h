/* ops_each.h — one pass over ops.def (no include guard: include it once per
 * pass). Define DL_OP_ALL and/or the family macros (DL_OP_BINARY,
 * DL_OP_UNARY, DL_OP_EWISE, DL_OP_VIEW, DL_OP_REDUCE, DL_OP_INDEX,
 * DL_OP_LINALG, DL_OP_ACT, DL_OP_LOSS, DL_OP_LAYER) first; the ones left
 * undefined expand to nothing, and all of them are undefined after. */
#ifndef DL_OP_ALL
#define DL_OP_ALL(ID, name, fam, ar, rule, ip, grad)
#endif
#ifndef DL_OP_BINARY
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_UNARY
#define DL_OP_UNARY(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_EWISE
#define DL_OP_EWISE(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_VIEW
#define DL_OP_VIEW(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_REDUCE
#define DL_OP_REDUCE(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_INDEX
#define DL_OP_INDEX(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_LINALG
#define DL_OP_LINALG(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_ACT
#define DL_OP_ACT(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_LOSS
#define DL_OP_LOSS(ID, name, ar, rule, ip, grad)
#endif
#ifndef DL_OP_LAYER
#define DL_OP_LAYER(ID, name, ar, rule, ip, grad)
#endif

#define DL_OP(ID, name, fam, ar, rule, ip, grad) \
  DL_OP_ALL(ID, name, fam, ar, rule, ip, grad) DL_OP_##fam(ID, name, ar, rule, ip, grad)
#include "ops.def"
#undef DL_OP

#undef DL_OP_ALL
#undef DL_OP_BINARY
#undef DL_OP_UNARY
#undef DL_OP_EWISE
#undef DL_OP_VIEW
#undef DL_OP_REDUCE
#undef DL_OP_INDEX
#undef DL_OP_LINALG
#undef DL_OP_ACT
#undef DL_OP_LOSS
#undef DL_OP_LAYER
