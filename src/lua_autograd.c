/* lua_autograd.c — autograd's Lua face: requires_grad/grad/grad_fn/is_leaf,
 * backward, detach, retain_grad, grad mode, autograd.grad, and the nodes of
 * custom functions whose backward is Lua code. */
#include "lua_dlua.h"

#include "autograd/dl_ag_ewise.h"
#include "autograd/dl_ag_index.h"
#include "autograd/dl_ag_linalg.h"
#include "autograd/dl_ag_view.h"
#include "autograd/dl_ag_reduce.h"
#include "autograd/dl_autograd.h"

#include <stdlib.h>
#include <string.h>

/* ---- grad_fn userdata ---- */

#define NODE_TYPE "dlua.Node"

typedef struct {
  dl_node *n;
} node_ud;

static void push_node(lua_State *L, dl_node *n) {
  if (!n) {
    lua_pushnil(L);
    return;
  }
  node_ud *u = lua_newuserdatauv(L, sizeof(node_ud), 0);
  u->n = dl_node_retain(n);
  luaL_setmetatable(L, NODE_TYPE);
}

static int node_gc(lua_State *L) {
  node_ud *u = luaL_checkudata(L, 1, NODE_TYPE);
  if (u->n) dl_node_release(u->n);
  u->n = NULL;
  return 0;
}

static int node_tostring(lua_State *L) {
  node_ud *u = luaL_checkudata(L, 1, NODE_TYPE);
  lua_pushfstring(L, "<%s>", u->n ? u->n->type->name : "released");
  return 1;
}

static int node_name(lua_State *L) {
  node_ud *u = luaL_checkudata(L, 1, NODE_TYPE);
  lua_pushstring(L, u->n ? u->n->type->name : "released");
  return 1;
}

/* next_functions: a list of {node or "AccumulateGrad" or false, output_nr} */
static int node_next_functions(lua_State *L) {
  node_ud *u = luaL_checkudata(L, 1, NODE_TYPE);
  lua_newtable(L);
  for (int i = 0; u->n && i < u->n->nedges; i++) {
    dl_edge *e = &u->n->edges[i];
    lua_createtable(L, 2, 0);
    if (e->fn) push_node(L, e->fn);
    else if (e->leaf) lua_pushstring(L, "AccumulateGrad");
    else lua_pushboolean(L, 0);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, e->output_nr + 1);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* ---- properties ---- */

static int g_requires_grad(lua_State *L) {
  lua_pushboolean(L, dlua_checktensor(L, 1)->requires_grad);
  return 1;
}

static int set_requires_grad(lua_State *L, dl_tensor *t, bool on) {
  if (t->grad_fn && !on)
    return dlua_error_named(L, "dl.requires_grad",
                            "you can only change requires_grad flags of leaf tensors; use detach()");
  if (on && !dl_dtype_is_float(t->dtype))
    return dlua_error_named(L, "dl.requires_grad", "only floating-point tensors can require gradients (got %s)",
                            dl_dtype_name(t->dtype));
  if (!t->grad_fn) t->requires_grad = on;
  return 0;
}

static int s_requires_grad(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  luaL_checktype(L, 3, LUA_TBOOLEAN);
  return set_requires_grad(L, t, lua_toboolean(L, 3));
}

static int g_grad(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->grad) dlua_pushtensor(L, dl_tensor_retain(t->grad));
  else lua_pushnil(L);
  return 1;
}

static int s_grad(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_isnil(L, 3)) {
    dl_tensor_release(t->grad);
    t->grad = NULL;
    return 0;
  }
  dl_tensor *g = dlua_checktensor(L, 3);
  if (!dl_tensor_same_shape(t, g)) {
    char b1[128], b2[128];
    return dlua_error_named(L, "Tensor.grad", "assigned grad has shape %s but the tensor has shape %s",
                            dl_tensor_shape_str(g, b1, sizeof b1), dl_tensor_shape_str(t, b2, sizeof b2));
  }
  if (g->dtype != t->dtype)
    return dlua_error_named(L, "Tensor.grad", "assigned grad has dtype %s but the tensor has dtype %s",
                            dl_dtype_name(g->dtype), dl_dtype_name(t->dtype));
  if (dl_check_same_device("grad", t, g)) return dlua_engine_error(L);
  dl_tensor_release(t->grad);
  t->grad = dl_tensor_retain(g);
  return 0;
}

static int g_grad_fn(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (dl_ag_refresh_view(t)) return dlua_engine_error(L);
  push_node(L, t->grad_fn);
  return 1;
}

static int g_is_leaf(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (dl_ag_refresh_view(t)) return dlua_engine_error(L);
  lua_pushboolean(L, t->grad_fn == NULL);
  return 1;
}

static int g_retains_grad(lua_State *L) {
  lua_pushboolean(L, dlua_checktensor(L, 1)->retains_grad);
  return 1;
}

/* t.data = other: t keeps its identity (and autograd flags) and takes
 * other's contents, dtype and shape, as PyTorch's .data assignment */
static int s_data(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_tensor *src = dlua_checktensor(L, 3);
  if (t->requires_grad && !dl_dtype_is_float(src->dtype))
    return luaL_error(L, "dl.data: a tensor that requires grad cannot take %s data", dl_dtype_name(src->dtype));
  dl_tensor_set_(t, src);
  return 0;
}

static int g_data(lua_State *L) {
  dlua_push_or_error(L, dl_tensor_detach(dlua_checktensor(L, 1)));
  return 1;
}

/* ---- methods ---- */

static int l_requires_grad_(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  set_requires_grad(L, t, lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2));
  lua_settop(L, 1);
  return 1;
}

static int l_detach(lua_State *L) {
  dlua_push_or_error(L, dl_tensor_detach(dlua_checktensor(L, 1)));
  return 1;
}

static int l_detach_(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_autograd_clear(t);
  t->requires_grad = false;
  if (t->base) { /* a leaf now: never derived from its base again */
    dl_tensor_release(t->base);
    t->base = NULL;
  }
  lua_settop(L, 1);
  return 1;
}

static int l_retain_grad(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (!t->requires_grad) return luaL_error(L, "dl.retain_grad: can't retain_grad on a tensor that has requires_grad=false");
  if (t->grad_fn && !t->retains_grad) {
    dl_node *n = t->grad_fn;
    if (n->retained[t->output_nr] && n->retained[t->output_nr] != t)
      n->retained[t->output_nr]->retains_grad = false;
    n->retained[t->output_nr] = t;
    t->retains_grad = true;
  }
  lua_settop(L, 1);
  return 1;
}

/* a tensor or a list of tensors at idx -> array (borrowed); returns count */
static int read_tensor_list(lua_State *L, int idx, dl_tensor **out, int max, const char *what) {
  dl_tensor *t = dlua_totensor(L, idx);
  if (t) {
    out[0] = t;
    return 1;
  }
  if (!lua_istable(L, idx)) return luaL_typeerror(L, idx, what);
  int n = (int)lua_rawlen(L, idx);
  if (n > max) return luaL_argerror(L, idx, "too many tensors");
  if (dlua_list_extra_key(L, idx, n))
    return luaL_argerror(L, idx, lua_pushfstring(L, "not a list: it has the key %s besides its %d entries",
                                                 lua_tostring(L, -1), n));
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    out[i] = dlua_totensor(L, -1);
    if (!out[i]) return luaL_argerror(L, idx, lua_pushfstring(L, "entry %d is not a tensor", i + 1));
    lua_pop(L, 1); /* still referenced by the table */
  }
  return n;
}

#define MAX_ROOTS 64

/* autograd.grad's grad_outputs at idx: a tensor (one output) or a list of
 * one entry per output, where nil or false stands for the implicit
 * gradient of a one-element output (PyTorch's None) */
static void read_grad_outputs(lua_State *L, int idx, dl_tensor **out, int no) {
  dl_tensor *t = dlua_totensor(L, idx);
  if (t || !lua_istable(L, idx)) {
    if (!t) luaL_typeerror(L, idx, "tensor or list of tensors");
    if (no != 1) luaL_error(L, "dl.autograd.grad: 1 grad_outputs for %d outputs", no);
    out[0] = t;
    return;
  }
  int n = (int)lua_rawlen(L, idx);
  if (n > no) luaL_error(L, "dl.autograd.grad: %d grad_outputs for %d outputs", n, no);
  if (dlua_list_extra_key(L, idx, no))
    luaL_argerror(L, idx, lua_pushfstring(L, "not a list: it has the key %s besides its entries", lua_tostring(L, -1)));
  for (int i = 0; i < no; i++) {
    lua_rawgeti(L, idx, i + 1);
    if (lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
      out[i] = NULL;
    } else if (!(out[i] = dlua_totensor(L, -1))) {
      luaL_argerror(L, idx, lua_pushfstring(L, "entry %d is not a tensor (nil or false: the implicit gradient)", i + 1));
    }
    lua_pop(L, 1); /* still referenced by the table */
  }
}

static int l_backward(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_tensor *g = NULL;
  int opts = 2;
  if (!lua_isnoneornil(L, 2) && !dlua_isoptions(L, 2)) {
    g = dlua_checktensor(L, 2);
    opts = 3;
  } else if (lua_isnil(L, 2)) {
    opts = 3;
  }
  static const char *const allowed[] = {"retain_graph", "create_graph", NULL};
  dlua_checkoptions(L, opts, "dl.backward", allowed);
  bool create = dlua_optbool(L, opts, "create_graph", false);
  bool retain = dlua_optbool(L, opts, "retain_graph", create);
  dlua_check_status(L, dl_backward(&t, &g, 1, retain, create));
  dlua_gc_after_backward(L);
  return 0;
}

/* dl.autograd.grad(outputs, inputs, grad_outputs?, {retain_graph, create_graph, allow_unused})
 * -> one gradient per input (multiple results) */
static int l_autograd_grad(lua_State *L) {
  dl_tensor *outs[MAX_ROOTS], *ins[MAX_ROOTS], *gouts[MAX_ROOTS] = {NULL};
  int no = read_tensor_list(L, 1, outs, MAX_ROOTS, "tensor or list of tensors");
  int ni = read_tensor_list(L, 2, ins, MAX_ROOTS, "tensor or list of tensors");
  if (no == 0) return luaL_argerror(L, 1, "no outputs to differentiate");
  if (ni == 0) return luaL_argerror(L, 2, "no inputs to differentiate with respect to");
  int opts = 3;
  if (!lua_isnoneornil(L, 3) && !dlua_isoptions(L, 3)) {
    read_grad_outputs(L, 3, gouts, no);
    opts = 4;
  } else if (lua_isnil(L, 3)) {
    opts = 4;
  }
  static const char *const allowed[] = {"retain_graph", "create_graph", "allow_unused", NULL};
  dlua_checkoptions(L, opts, "dl.autograd.grad", allowed);
  bool create = dlua_optbool(L, opts, "create_graph", false);
  bool retain = dlua_optbool(L, opts, "retain_graph", create);
  bool unused = dlua_optbool(L, opts, "allow_unused", false);
  dl_tensor *res[MAX_ROOTS];
  if (dl_autograd_grad(outs, gouts, no, ins, ni, retain, create, unused, res)) return dlua_engine_error(L);
  dlua_gc_after_backward(L); /* a training step can end here too (res are held by C until pushed) */
  luaL_checkstack(L, ni, "too many inputs");
  for (int i = 0; i < ni; i++) {
    if (res[i]) dlua_pushtensor(L, res[i]);
    else lua_pushnil(L);
  }
  return ni;
}

/* ---- grad mode ---- */

static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, dl_grad_enabled());
  return 1;
}

static int l_set_grad_enabled(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, dl_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}

/* runs fn(...) with grad mode `on`, restoring it even when fn errors */
static int with_grad_mode(lua_State *L, bool on) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int nargs = lua_gettop(L) - 1;
  bool prev = dl_set_grad_enabled(on);
  int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
  dl_set_grad_enabled(prev);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int l_no_grad(lua_State *L) { return with_grad_mode(L, false); }
static int l_enable_grad(lua_State *L) { return with_grad_mode(L, true); }

/* ---- forward-mode primitives (used by lua/dlua/autograd.lua) ---- */

/* _make_dual(primal, tangent) -> a view of primal carrying the tangent */
static int l_make_dual(lua_State *L) {
  dl_tensor *p = dlua_checktensor(L, 1), *tg = dlua_checktensor(L, 2);
  if (!dl_tensor_same_shape(p, tg)) {
    char b1[128], b2[128];
    return luaL_error(L, "dl.autograd.jvp: tangent shape %s does not match primal shape %s",
                      dl_tensor_shape_str(tg, b1, sizeof b1), dl_tensor_shape_str(p, b2, sizeof b2));
  }
  if (!dl_dtype_is_float(p->dtype)) return luaL_error(L, "dl.autograd.jvp: primals must be floating point");
  if (dl_check_same_device("jvp", p, tg)) return dlua_engine_error(L);
  dl_tensor *d = dl_tensor_detach(p);
  if (!d) return dlua_engine_error(L);
  dl_tensor *tc = dl_tensor_to_dtype(tg, p->dtype);
  if (!tc) {
    dl_tensor_release(d);
    return dlua_engine_error(L);
  }
  d->tangent = tc;
  dlua_pushtensor(L, d);
  return 1;
}

/* _unpack_dual(t) -> primal (detached, no tangent), tangent or nil */
static int l_unpack_dual(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_tensor *p = dl_tensor_detach(t);
  if (!p) return dlua_engine_error(L);
  dlua_pushtensor(L, p);
  if (t->tangent) dlua_pushtensor(L, dl_tensor_retain(t->tangent));
  else lua_pushnil(L);
  return 2;
}

/* ---- custom functions: a node whose backward calls Lua ---- */

/* Whether the Lua state that made a custom node is still open: a host can
 * keep a tensor (and so its node) past lua_close. One per state, shared by
 * its nodes; the state's registry holds a userdata whose __gc marks it
 * closed. Freed by the last of them. */
typedef struct {
  int64_t refs;
  bool open;
} state_token;

#define STATE_TOKEN_KEY "dlua.state_token"

static void token_drop(state_token *tk) {
  if (--tk->refs == 0) free(tk);
}

static int token_gc(lua_State *L) {
  state_token **p = lua_touserdata(L, 1);
  if (p && *p) {
    (*p)->open = false;
    token_drop(*p);
    *p = NULL;
  }
  return 0;
}

/* the state's token (a new reference), or NULL with a Lua error raised */
static state_token *token_of(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, STATE_TOKEN_KEY);
  state_token **p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!p) {
    p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, token_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    if (!(*p = calloc(1, sizeof **p))) luaL_error(L, "dl.autograd.Function: out of memory");
    (*p)->refs = 1, (*p)->open = true;
    lua_setfield(L, LUA_REGISTRYINDEX, STATE_TOKEN_KEY);
  }
  (*p)->refs++;
  return *p;
}

typedef struct {
  lua_State *L;  /* the main thread of the state that made the node */
  state_token *token; /* whether L is still open */
  int fn_ref;    /* backward function */
  int ctx_ref;   /* ctx table */
} lua_fn_ctx;
_Static_assert(sizeof(lua_fn_ctx) <= DL_NODE_CTX_BYTES, "lua_fn_ctx must fit a node's ctx");

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int lua_fn_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  lua_fn_ctx *c = (lua_fn_ctx *)n->ctx;
  if (!c->L || !c->token->open) {
    dl_error_set("backward: the Lua state that defined this custom Function has been closed");
    return -1;
  }
  lua_State *L = c->L;
  int top = lua_gettop(L);
  if (!lua_checkstack(L, n->noutputs + 8)) {
    dl_error_set("backward: Lua stack overflow");
    return -1;
  }
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->ctx_ref);
  for (int k = 0; k < n->noutputs; k++) dlua_pushtensor(L, dl_tensor_retain(gout[k]));
  if (lua_pcall(L, n->noutputs + 1, n->nedges, top + 1) != LUA_OK) {
    dl_error_set("backward: error in the backward of a custom Function: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    return -1;
  }
  int first = top + 2;
  for (int i = 0; i < n->nedges; i++) {
    int idx = first + i;
    if (lua_isnil(L, idx)) continue;
    dl_tensor *g = dlua_totensor(L, idx);
    if (!g) {
      dl_error_set("backward: custom Function backward returned a %s for input %d; expected a tensor or nil",
                   luaL_typename(L, idx), i + 1);
      for (int j = 0; j < i; j++) {
        dl_tensor_release(gin[j]);
        gin[j] = NULL;
      }
      lua_settop(L, top);
      return -1;
    }
    const dl_edge *e = &n->edges[i];
    if (!e->fn && !e->leaf) continue;
    /* the input's shape; a gradient of a shape it broadcasts to is summed
     * back to it, as PyTorch does, anything else is an error */
    const int64_t *shape = e->leaf ? e->leaf->shape : e->fn->out[e->output_nr].shape;
    int ndim = e->leaf ? e->leaf->ndim : e->fn->out[e->output_nr].ndim;
    bool fits = g->ndim >= ndim;
    for (int d = 0; fits && d < ndim; d++) {
      int64_t want = shape[ndim - 1 - d], got = g->shape[g->ndim - 1 - d];
      fits = want == got || want == 1;
    }
    gin[i] = fits ? dl_ag_sum_to(g, shape, ndim) : NULL;
    if (!gin[i]) {
      if (!fits) {
        char b1[128], b2[128];
        dl_error_set("backward: custom Function backward returned a gradient of shape %s for input %d of shape %s",
                     dl_tensor_shape_str(g, b1, sizeof b1), i + 1, dl_shape_str(shape, ndim, b2, sizeof b2));
      }
      for (int j = 0; j < i; j++) {
        dl_tensor_release(gin[j]);
        gin[j] = NULL;
      }
      lua_settop(L, top);
      return -1;
    }
  }
  lua_settop(L, top);
  return 0;
}

static void lua_fn_release(dl_node *n) {
  lua_fn_ctx *c = (lua_fn_ctx *)n->ctx;
  if (!c->L) return;
  if (c->token->open) { /* a closed state freed its registry already */
    luaL_unref(c->L, LUA_REGISTRYINDEX, c->fn_ref);
    luaL_unref(c->L, LUA_REGISTRYINDEX, c->ctx_ref);
  }
  token_drop(c->token);
  c->L = NULL;
}

static const dl_node_type lua_fn_type = {"CustomFunctionBackward", lua_fn_backward, lua_fn_release};

/* _attach(ctx, backward, {inputs...}, {outputs...}) -> outputs as new tensors
 * whose grad_fn is the custom node. Inputs that are not tensors take no edge
 * (their gradient slot is ignored). */
static int l_attach(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  int nin = (int)lua_rawlen(L, 3), nout = (int)lua_rawlen(L, 4);
  if (nin > 64) return luaL_error(L, "dl.autograd.Function: at most 64 inputs");
  if (nout > DL_NODE_MAX_OUTPUTS) return luaL_error(L, "dl.autograd.Function: at most %d tensor outputs", DL_NODE_MAX_OUTPUTS);
  dl_tensor *ins[64];
  for (int i = 0; i < nin; i++) {
    lua_rawgeti(L, 3, i + 1);
    ins[i] = dlua_totensor(L, -1);
    lua_pop(L, 1);
  }
  lua_createtable(L, nout, 0);
  int result = lua_gettop(L);
  bool record = dl_ag_needs_grad(ins, nin);
  dl_node *n = NULL;
  if (record) {
    state_token *tk = token_of(L);
    n = dl_node_new(&lua_fn_type, ins, nin, nout);
    if (!n) {
      token_drop(tk);
      return dlua_engine_error(L);
    }
    lua_fn_ctx *c = (lua_fn_ctx *)n->ctx;
    c->token = tk;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    c->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    c->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    c->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  for (int k = 0; k < nout; k++) {
    lua_rawgeti(L, 4, k + 1);
    dl_tensor *o = dlua_totensor(L, -1);
    lua_pop(L, 1);
    if (!o) {
      if (n) dl_node_release(n);
      return luaL_error(L, "dl.autograd.Function: output %d is not a tensor", k + 1);
    }
    dl_tensor *a = dl_tensor_detach(o);
    if (!a) {
      if (n) dl_node_release(n);
      return dlua_engine_error(L);
    }
    if (n) {
      if (!dl_dtype_is_float(a->dtype)) {
        dl_tensor_release(a);
        dl_node_release(n);
        return luaL_error(L, "dl.autograd.Function: output %d is not floating point", k + 1);
      }
      dl_node_set_output(n, a, k);
    }
    dlua_pushtensor(L, a);
    lua_rawseti(L, result, k + 1);
  }
  if (n) dl_node_release(n);
  lua_pushboolean(L, record);
  return 2;
}

/* _version(t): how many in-place writes its storage has seen (saved tensors
 * are checked against it, as PyTorch's t._version) */
static int l_version(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)dlua_checktensor(L, 1)->storage->version);
  return 1;
}

/* ctx.needs_input_grad for the current inputs */
static int l_needs_input_grad(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 1);
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    dl_tensor *t = dlua_totensor(L, -1);
    lua_pop(L, 1);
    lua_pushboolean(L, t && t->requires_grad && dl_grad_enabled());
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* dl.autograd.differentiable_ops(): every name of every op the table marks
 * differentiable, its in-place form and its aliases */
static int l_differentiable_ops(lua_State *L) {
  lua_newtable(L);
  int k = 0;
  for (int op = 0; op < DL_NOPS; op++) {
    const dl_op_info *in = dl_op_get((dl_op)op);
    if (!in->differentiable) continue;
    lua_pushstring(L, in->name);
    lua_rawseti(L, -2, ++k);
    if (in->name_) {
      lua_pushstring(L, in->name_);
      lua_rawseti(L, -2, ++k);
    }
    for (const dlua_alias *a = dlua_ewise_aliases; a->alias; a++)
      if (strcmp(a->name, in->name) == 0 || (in->name_ && strcmp(a->name, in->name_) == 0)) {
        lua_pushstring(L, a->alias);
        lua_rawseti(L, -2, ++k);
      }
  }
  return 1;
}

/* tostring suffix, used by lua_print.c */
const char *dlua_autograd_describe(const dl_tensor *t, char *buf, size_t n) {
  dl_ag_refresh_view((dl_tensor *)t); /* the history grad_fn would give (out of memory: the old one) */
  if (t->grad_fn) snprintf(buf, n, ", grad_fn=<%s>", t->grad_fn->type->name);
  else if (t->requires_grad) snprintf(buf, n, ", requires_grad=True");
  else return NULL;
  return buf;
}

static const luaL_Reg getters[] = {
  {"requires_grad", g_requires_grad}, {"grad", g_grad}, {"grad_fn", g_grad_fn}, {"is_leaf", g_is_leaf},
  {"retains_grad", g_retains_grad}, {"data", g_data}, {NULL, NULL},
};
static const luaL_Reg setters[] = {
  {"requires_grad", s_requires_grad}, {"grad", s_grad}, {"data", s_data}, {NULL, NULL},
};
static const luaL_Reg methods[] = {
  {"requires_grad_", l_requires_grad_}, {"detach", l_detach}, {"detach_", l_detach_},
  {"retain_grad", l_retain_grad}, {"backward", l_backward}, {NULL, NULL},
};
static const luaL_Reg functions[] = {
  {"no_grad", l_no_grad}, {"enable_grad", l_enable_grad}, {"is_grad_enabled", l_is_grad_enabled},
  {"set_grad_enabled", l_set_grad_enabled}, {"detach", l_detach}, {NULL, NULL},
};
static const luaL_Reg autograd_functions[] = {
  {"grad", l_autograd_grad}, {"backward", l_backward}, {"_make_dual", l_make_dual},
  {"_unpack_dual", l_unpack_dual}, {"_attach", l_attach}, {"_needs_input_grad", l_needs_input_grad},
  {"_version", l_version},
  {"differentiable_ops", l_differentiable_ops},
  {NULL, NULL},
};
static const luaL_Reg node_methods[] = {
  {"name", node_name}, {"next_functions", node_next_functions}, {NULL, NULL},
};

void dlua_open_autograd(lua_State *L) {
  luaL_newmetatable(L, NODE_TYPE);
  lua_pushcfunction(L, node_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, node_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, node_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  dlua_register(L, methods, functions);
  dlua_register_getters(L, getters);
  dlua_register_setters(L, setters);
  lua_newtable(L);
  luaL_setfuncs(L, autograd_functions, 0);
  lua_setfield(L, -2, "autograd");
}
