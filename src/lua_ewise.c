/* lua_ewise.c — binding of the element-wise ops: arithmetic with its
 * operators (+ - * / % ^ // and unary -), math functions, comparisons,
 * logical ops, clamp, lerp, addcmul/addcdiv, where, masked_fill, allclose.
 * Differentiable ops go through their dl_ag_* front-ends (which record
 * autograd history only when an operand requires grad or has a tangent). */
#include "lua_dlua.h"

#include "autograd/dl_ag_ewise.h"

/* ---- arguments ---- */

static inline dl_tensor *check_tensor(lua_State *L, int idx) {
  dl_tensor *t = dlua_totensor(L, idx);
  return t ? t : dlua_checktensor(L, idx);
}

/* a tensor or a number (booleans count as 0/1) */
static dl_operand check_operand(lua_State *L, int arg) {
  dl_tensor *t = dlua_totensor(L, arg);
  if (t) return dl_operand_tensor(t);
  int ty = lua_type(L, arg);
  if (ty == LUA_TNUMBER || ty == LUA_TBOOLEAN) return dl_operand_scalar(dlua_checkscalar(L, arg));
  if (ty == LUA_TUSERDATA) dlua_checktensor(L, arg); /* a closed tensor says so */
  luaL_typeerror(L, arg, "tensor or number");
  return dl_operand_scalar(dl_scalar_i(0));
}

/* an optional options table at arg with only the keys in allowed */
static bool check_opts(lua_State *L, int arg, const char *fn, const char *const *allowed) {
  if (lua_isnoneornil(L, arg)) return false;
  if (!dlua_isoptions(L, arg)) luaL_typeerror(L, arg, "options table");
  dlua_checkoptions(L, arg, fn, allowed);
  return true;
}

/* a number option kept as an integer when it is one */
static dl_scalar opt_scalar(lua_State *L, int arg, const char *key, dl_scalar def) {
  lua_getfield(L, arg, key);
  dl_scalar s = def;
  if (lua_type(L, -1) == LUA_TNUMBER) s = dlua_toscalar(L, -1);
  else if (!lua_isnil(L, -1)) luaL_error(L, "option '%s' must be a number, got %s", key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return s;
}

static const char *const no_opts[] = {NULL};
static const char *const alpha_opts[] = {"alpha", NULL};

static dl_scalar read_alpha(lua_State *L, int arg, dl_binop op) {
  dl_scalar one = dl_scalar_i(1);
  bool takes_alpha = op == DL_BIN_ADD || op == DL_BIN_SUB;
  if (lua_isnoneornil(L, arg)) return one;
  check_opts(L, arg, lua_pushfstring(L, "dl.%s", dl_binop_name(op)), takes_alpha ? alpha_opts : no_opts);
  lua_pop(L, 1);
  return opt_scalar(L, arg, "alpha", one);
}

/* ---- binary ---- */

/* (a, b [, {alpha}]): either may be a number; also the metamethods */
static int binary(lua_State *L, dl_binop op) {
  dlua_gc_point(L);
  dl_tensor *a = dlua_totensor(L, 1), *b = dlua_totensor(L, 2);
  dl_scalar alpha = lua_gettop(L) >= 3 ? read_alpha(L, 3, op) : dl_scalar_i(1);
  if (a && b) {
    dlua_push_or_error(L, dl_ag_binary_t(op, a, b, alpha));
    return 1;
  }
  dl_operand oa = check_operand(L, 1), ob = check_operand(L, 2);
  if (!oa.t && !ob.t) return luaL_typeerror(L, 1, "tensor");
  dlua_push_or_error(L, dl_ag_binary(op, oa, ob, alpha));
  return 1;
}

/* self:op_(b [, {alpha}]) */
static int binary_(lua_State *L, dl_binop op) {
  dl_tensor *self = check_tensor(L, 1);
  dl_operand b = check_operand(L, 2);
  dl_scalar alpha = read_alpha(L, 3, op);
  dlua_check_status(L, dl_ag_binary_(op, self, b, alpha));
  lua_settop(L, 1);
  return 1;
}

/* l_bin_<ID> and l_bin_<ID>_ for every BINARY line of the op table */
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad)                     \
  static int l_bin_##ID(lua_State *L) { return binary(L, DL_BIN_##ID); } \
  static int l_bin_##ID##_(lua_State *L) { return binary_(L, DL_BIN_##ID); }
#include "ops/ops_each.h"

/* ---- unary ---- */

static int unary(lua_State *L, dl_unop op) {
  dlua_gc_point(L);
  dlua_push_or_error(L, dl_ag_unary(op, check_tensor(L, 1)));
  return 1;
}

static int unary_(lua_State *L, dl_unop op) {
  dl_tensor *self = check_tensor(L, 1);
  dlua_check_status(L, dl_ag_unary_(op, self));
  lua_settop(L, 1);
  return 1;
}

#define DL_OP_UNARY(ID, name, ar, rule, ip, grad)                    \
  static int l_un_##ID(lua_State *L) { return unary(L, DL_UN_##ID); } \
  static int l_un_##ID##_(lua_State *L) { return unary_(L, DL_UN_##ID); }
#include "ops/ops_each.h"

/* ---- clamp ---- */

static const char *const clamp_opts[] = {"min", "max", NULL};

/* t:clamp(lo, hi) with either nil, or t:clamp{min =, max =}; bounds are
 * numbers or tensors */
static int clamp_common(lua_State *L, bool inplace, int which) {
  dl_tensor *t = check_tensor(L, 1);
  dl_operand lo, hi;
  bool has_lo = false, has_hi = false;
  if (which != 0) { /* clamp_min / clamp_max: one bound at arg 2 */
    if (lua_isnoneornil(L, 2)) return luaL_argerror(L, 2, "bound expected");
    if (which < 0) lo = check_operand(L, 2), has_lo = true;
    else hi = check_operand(L, 2), has_hi = true;
  } else if (dlua_isoptions(L, 2)) {
    const char *called = dlua_function_name(L); /* dl.clip or dl.clamp */
    dlua_checkoptions(L, 2, called ? called : inplace ? "dl.clamp_" : "dl.clamp", clamp_opts);
    lua_getfield(L, 2, "min");
    lua_getfield(L, 2, "max");
    if (!lua_isnil(L, -2)) lo = check_operand(L, lua_absindex(L, -2)), has_lo = true;
    if (!lua_isnil(L, -1)) hi = check_operand(L, lua_absindex(L, -1)), has_hi = true;
  } else {
    if (!lua_isnoneornil(L, 2)) lo = check_operand(L, 2), has_lo = true;
    if (!lua_isnoneornil(L, 3)) hi = check_operand(L, 3), has_hi = true;
  }
  if (!has_lo && !has_hi)
    return dlua_error_named(L, inplace ? "dl.clamp_" : "dl.clamp", "at least one of min and max must be given");
  const dl_operand *plo = has_lo ? &lo : NULL, *phi = has_hi ? &hi : NULL;
  if (inplace) {
    dlua_check_status(L, dl_ag_clamp_(t, plo, phi));
    lua_settop(L, 1);
  } else {
    dlua_push_or_error(L, dl_ag_clamp(t, plo, phi));
  }
  return 1;
}

static int l_clamp(lua_State *L) { return clamp_common(L, false, 0); }
static int l_clamp_(lua_State *L) { return clamp_common(L, true, 0); }
static int l_clamp_min(lua_State *L) { return clamp_common(L, false, -1); }
static int l_clamp_min_(lua_State *L) { return clamp_common(L, true, -1); }
static int l_clamp_max(lua_State *L) { return clamp_common(L, false, 1); }
static int l_clamp_max_(lua_State *L) { return clamp_common(L, true, 1); }

/* ---- lerp, addcmul, addcdiv ---- */

static int lerp_common(lua_State *L, bool inplace) {
  dl_tensor *t = check_tensor(L, 1), *end = check_tensor(L, 2);
  if (lua_isnoneornil(L, 3)) return luaL_argerror(L, 3, "weight (number or tensor) expected");
  dl_operand w = check_operand(L, 3);
  if (inplace) {
    dlua_check_status(L, dl_ag_lerp_(t, end, w));
    lua_settop(L, 1);
  } else {
    dlua_push_or_error(L, dl_ag_lerp(t, end, w));
  }
  return 1;
}

static int l_lerp(lua_State *L) { return lerp_common(L, false); }
static int l_lerp_(lua_State *L) { return lerp_common(L, true); }

static const char *const value_opts[] = {"value", NULL};

/* t:addcmul(t1, t2 [, {value = v} | v]) */
static int addc_common(lua_State *L, bool div, bool inplace) {
  dl_tensor *t = check_tensor(L, 1), *t1 = check_tensor(L, 2), *t2 = check_tensor(L, 3);
  dl_scalar value = dl_scalar_i(1);
  if (lua_type(L, 4) == LUA_TNUMBER) value = dlua_toscalar(L, 4);
  else if (check_opts(L, 4, div ? "dl.addcdiv" : "dl.addcmul", value_opts)) value = opt_scalar(L, 4, "value", value);
  if (inplace) {
    dlua_check_status(L, div ? dl_ag_addcdiv_(t, t1, t2, value) : dl_ag_addcmul_(t, t1, t2, value));
    lua_settop(L, 1);
  } else {
    dlua_push_or_error(L, div ? dl_ag_addcdiv(t, t1, t2, value) : dl_ag_addcmul(t, t1, t2, value));
  }
  return 1;
}

static int l_addcmul(lua_State *L) { return addc_common(L, false, false); }
static int l_addcmul_(lua_State *L) { return addc_common(L, false, true); }
static int l_addcdiv(lua_State *L) { return addc_common(L, true, false); }
static int l_addcdiv_(lua_State *L) { return addc_common(L, true, true); }

/* ---- where, masked_fill ---- */

/* dl.where(cond, a, b) */
static int l_where(lua_State *L) {
  dl_tensor *cond = check_tensor(L, 1);
  dl_operand a = check_operand(L, 2), b = check_operand(L, 3);
  dlua_push_or_error(L, dl_ag_where(cond, a, b));
  return 1;
}

/* x:where(cond, y) == dl.where(cond, x, y), as PyTorch's Tensor.where */
static int l_where_method(lua_State *L) {
  dl_tensor *x = check_tensor(L, 1), *cond = check_tensor(L, 2);
  dl_operand y = check_operand(L, 3);
  dlua_push_or_error(L, dl_ag_where(cond, dl_operand_tensor(x), y));
  return 1;
}

static int masked_fill_common(lua_State *L, bool inplace) {
  dl_tensor *t = check_tensor(L, 1), *mask = check_tensor(L, 2);
  dl_operand v = check_operand(L, 3);
  if (inplace) {
    dlua_check_status(L, dl_ag_masked_fill_(t, mask, v));
    lua_settop(L, 1);
  } else {
    dlua_push_or_error(L, dl_ag_masked_fill(t, mask, v));
  }
  return 1;
}

static int l_masked_fill(lua_State *L) { return masked_fill_common(L, false); }
static int l_masked_fill_(lua_State *L) { return masked_fill_common(L, true); }

/* ---- closeness ---- */

static const char *const close_opts[] = {"rtol", "atol", "equal_nan", NULL};

static void read_close_opts(lua_State *L, int arg, const char *fn, double *rtol, double *atol, bool *equal_nan) {
  *rtol = 1e-5;
  *atol = 1e-8;
  *equal_nan = false;
  if (!check_opts(L, arg, fn, close_opts)) return;
  *rtol = dlua_optnumber(L, arg, "rtol", *rtol);
  *atol = dlua_optnumber(L, arg, "atol", *atol);
  *equal_nan = dlua_optbool(L, arg, "equal_nan", false);
}

static int l_isclose(lua_State *L) {
  dl_tensor *a = check_tensor(L, 1), *b = check_tensor(L, 2);
  double rtol, atol;
  bool equal_nan;
  read_close_opts(L, 3, "dl.isclose", &rtol, &atol, &equal_nan);
  dlua_push_or_error(L, dl_op_isclose(a, b, rtol, atol, equal_nan));
  return 1;
}

static int l_allclose(lua_State *L) {
  dl_tensor *a = check_tensor(L, 1), *b = check_tensor(L, 2);
  double rtol, atol;
  bool equal_nan, r;
  read_close_opts(L, 3, "dl.allclose", &rtol, &atol, &equal_nan);
  dlua_check_status(L, dl_op_allclose(a, b, rtol, atol, equal_nan, &r));
  lua_pushboolean(L, r);
  return 1;
}

static int l_equal(lua_State *L) {
  dl_tensor *a = check_tensor(L, 1), *b = check_tensor(L, 2);
  bool r;
  dlua_check_status(L, dl_op_equal(a, b, &r));
  lua_pushboolean(L, r);
  return 1;
}

/* ---- registration ---- */

static int m_unm(lua_State *L) { return unary(L, DL_UN_NEG); }

static const luaL_Reg meta[] = {
  {"__add", l_bin_ADD}, {"__sub", l_bin_SUB}, {"__mul", l_bin_MUL}, {"__div", l_bin_DIV}, {"__mod", l_bin_REMAINDER},
  {"__pow", l_bin_POW}, {"__idiv", l_bin_FLOOR_DIVIDE}, {"__unm", m_unm},
  {NULL, NULL},
};

/* every BINARY and UNARY op of the table under its name, and its in-place
 * form where the table gives one */
typedef struct {
  dl_op op;
  lua_CFunction fn, fn_;
} table_op;

static const table_op table_ops[] = {
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad) {DL_OP_##ID, l_bin_##ID, l_bin_##ID##_},
#define DL_OP_UNARY(ID, name, ar, rule, ip, grad) {DL_OP_##ID, l_un_##ID, l_un_##ID##_},
#include "ops/ops_each.h"
};
_Static_assert(sizeof table_ops / sizeof table_ops[0] == DL_NBINOPS + DL_NUNOPS, "one entry per table op");

/* the other element-wise ops: argument forms of their own */
#define BOTH(NAME) {#NAME, l_##NAME}
#define BOTH_(NAME) {#NAME, l_##NAME}, {#NAME "_", l_##NAME##_}
#define COMMON                                                                                     \
  BOTH_(clamp), BOTH_(clamp_min), BOTH_(clamp_max), BOTH_(lerp), BOTH_(addcmul), BOTH_(addcdiv),  \
  BOTH_(masked_fill), BOTH(isclose), BOTH(allclose), BOTH(equal)

static const luaL_Reg methods[] = {
  COMMON,
  {"where", l_where_method},
  {NULL, NULL},
};

static const luaL_Reg functions[] = {
  COMMON,
  {"where", l_where},
  {NULL, NULL},
};

/* PyTorch's other names for the same ops */
const dlua_alias dlua_ewise_aliases[] = {
  {"negative", "neg"}, {"absolute", "abs"}, {"true_divide", "div"}, {"multiply", "mul"}, {"subtract", "sub"},
  {"divide", "div"},   {"clip", "clamp"},   {"clip_", "clamp_"},    {NULL, NULL},
};

/* t[alias] = t[name]'s C function, as a closure of its own so that errors
 * can name the alias the user called (lua_names.c) */
static void set_aliases(lua_State *L, int t) {
  for (const dlua_alias *a = dlua_ewise_aliases; a->alias; a++) {
    lua_getfield(L, t, a->name);
    lua_CFunction f = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    lua_pushboolean(L, 1); /* an upvalue makes a distinct function object */
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, t, a->alias);
  }
}

void dlua_open_ewise(lua_State *L) {
  int dl = lua_gettop(L);
  luaL_getmetatable(L, DLUA_TENSOR_TYPE);
  luaL_setfuncs(L, meta, 0);
  lua_pop(L, 1);
  /* dl.Tensor is the method table */
  lua_getfield(L, dl, "Tensor");
  int tensor = lua_gettop(L);
  luaL_setfuncs(L, methods, 0);
  for (size_t k = 0; k < sizeof table_ops / sizeof table_ops[0]; k++) {
    const dl_op_info *in = dl_op_get(table_ops[k].op);
    const int tables[2] = {dl, tensor};
    for (int j = 0; j < 2; j++) {
      int t = tables[j];
      lua_pushcfunction(L, table_ops[k].fn);
      lua_setfield(L, t, in->name);
      if (in->name_) {
        lua_pushcfunction(L, table_ops[k].fn_);
        lua_setfield(L, t, in->name_);
      }
    }
  }
  set_aliases(L, tensor);
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
  set_aliases(L, dl);
  lua_settop(L, dl);
}
