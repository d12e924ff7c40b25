/* lua_linalg.c — binding of the matrix products: dl.matmul, mm, bmm, mv,
 * dot, outer, addmm, each also a tensor method; matmul and mm take
 * {out = c} to write into an existing tensor. All go through the
 * differentiable front-ends (src/autograd/grad_linalg.c). */
#include "lua_dlua.h"

#include "autograd/dl_ag_linalg.h"

typedef dl_tensor *(*binary_fn)(dl_tensor *, dl_tensor *);

static int binary(lua_State *L, binary_fn f) {
  dl_tensor *a = dlua_checktensor(L, 1), *b = dlua_checktensor(L, 2);
  dlua_push_or_error(L, f(a, b));
  return 1;
}

typedef dl_tensor *(*out_fn)(dl_tensor *, dl_tensor *, dl_tensor *);

/* f(a, b, {out = c}): the product written into c, which is returned */
static int binary_out(lua_State *L, const char *fn, out_fn f) {
  static const char *const allowed[] = {"out", NULL};
  dl_tensor *a = dlua_checktensor(L, 1), *b = dlua_checktensor(L, 2);
  dlua_gc_point(L);
  if (lua_isnoneornil(L, 3)) {
    dlua_push_or_error(L, f(a, b, NULL));
    return 1;
  }
  if (!dlua_isoptions(L, 3)) return luaL_typeerror(L, 3, "options table");
  dlua_checkoptions(L, 3, fn, allowed);
  lua_getfield(L, 3, "out");
  if (lua_isnil(L, -1)) {
    dlua_push_or_error(L, f(a, b, NULL));
    return 1;
  }
  dl_tensor *out = dlua_totensor(L, -1);
  if (!out) return luaL_error(L, "%s: option 'out' must be a tensor, got %s", fn, luaL_typename(L, -1));
  dl_tensor *r = f(a, b, out);
  if (!r) return dlua_engine_error(L);
  dl_tensor_release(r); /* the userdata at the top already holds out */
  return 1;
}

static int l_matmul(lua_State *L) { return binary_out(L, "dl.matmul", dl_ag_matmul_out); }
static int l_mm(lua_State *L) { return binary_out(L, "dl.mm", dl_ag_mm_out); }
static int l_bmm(lua_State *L) { return binary(L, dl_ag_bmm); }
static int l_mv(lua_State *L) { return binary(L, dl_ag_mv); }
static int l_dot(lua_State *L) { return binary(L, dl_ag_dot); }
static int l_outer(lua_State *L) { return binary(L, dl_ag_outer); }

/* addmm(input, m1, m2, {beta = 1, alpha = 1}) */
static int l_addmm(lua_State *L) {
  static const char *const allowed[] = {"beta", "alpha", NULL};
  dl_tensor *input = dlua_checktensor(L, 1), *m1 = dlua_checktensor(L, 2), *m2 = dlua_checktensor(L, 3);
  if (!lua_isnoneornil(L, 4) && !dlua_isoptions(L, 4)) return luaL_typeerror(L, 4, "options table");
  dlua_checkoptions(L, 4, "dl.addmm", allowed);
  double beta = dlua_optnumber(L, 4, "beta", 1), alpha = dlua_optnumber(L, 4, "alpha", 1);
  dlua_gc_point(L);
  dlua_push_or_error(L, dl_ag_addmm(input, m1, m2, beta, alpha));
  return 1;
}

static const luaL_Reg functions[] = {
  {"matmul", l_matmul}, {"mm", l_mm}, {"bmm", l_bmm}, {"mv", l_mv},
  {"dot", l_dot}, {"outer", l_outer}, {"addmm", l_addmm}, {NULL, NULL},
};

void dlua_open_linalg(lua_State *L) { dlua_register(L, functions, functions); }
