/* lua_conv.c — binding of the sliding-window ops dl.im2col and dl.col2im
 * (PyTorch's F.unfold and F.fold; the pooling layers of lua/dlua/nn/conv.lua
 * are built on them) and of dl.convolution (the convolution layers'). All
 * go through the differentiable front-ends (src/autograd/grad_conv.c). */
#include "lua_dlua.h"

#include "autograd/dl_ag_conv.h"

/* nd sizes from a number (repeated) or a list of nd integers, each >= min,
 * at stack index idx (argument arg, called what) */
static void read_sizes(lua_State *L, int arg, int idx, int nd, int64_t *out, const char *what, int64_t min) {
  if (lua_type(L, idx) == LUA_TTABLE) {
    int64_t v[DL_MAX_DIMS];
    int n = dlua_checkintlist(L, arg, idx, v, what);
    if (n != nd)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected %d values (one per spatial dim), got %d", what, nd, n));
    for (int d = 0; d < nd; d++) out[d] = v[d];
  } else {
    int ok;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (!ok || lua_type(L, idx) != LUA_TNUMBER)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected an integer or a list of %d, got %s", what, nd,
                                            lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx)));
    for (int d = 0; d < nd; d++) out[d] = v;
  }
  for (int d = 0; d < nd; d++)
    if (out[d] < min)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s must be >= %d, got %d", what, (int)min, (int)out[d]));
}

/* the number of spatial dims of x [N, C, *spatial] (argument #1): 1 to 3 */
static int spatial_dims(lua_State *L, const dl_tensor *x) {
  int nd = x->ndim - 2;
  if (nd < 1 || nd > DL_CONV_MAX_SPATIAL) {
    char b[64];
    luaL_argerror(L, 1, lua_pushfstring(L, "expected [N, C, *spatial] with 1 to %d spatial dims, got %s",
                                        DL_CONV_MAX_SPATIAL, dl_tensor_shape_str(x, b, sizeof b)));
  }
  return nd;
}

/* option key of the options table at arg into nd sizes (def when absent) */
static void opt_sizes(lua_State *L, int arg, const char *key, int nd, int64_t *out, int64_t def, int64_t min) {
  for (int d = 0; d < nd; d++) out[d] = def;
  if (!dlua_isoptions(L, arg)) return;
  lua_getfield(L, arg, key);
  if (!lua_isnil(L, -1)) read_sizes(L, arg, lua_gettop(L), nd, out, key, min);
  lua_pop(L, 1);
}

/* the window of nd spatial dims: kernel_size at karg, options at oarg */
static dl_window read_window(lua_State *L, int nd, int karg, int oarg, const char *fn, bool pad_value) {
  static const char *const allowed[] = {"stride", "padding", "padding_end", "dilation", "pad_value", NULL};
  static const char *const allowed_fold[] = {"stride", "padding", "padding_end", "dilation", NULL};
  if (!lua_isnoneornil(L, oarg) && !dlua_isoptions(L, oarg)) luaL_typeerror(L, oarg, "options table");
  dlua_checkoptions(L, oarg, fn, pad_value ? allowed : allowed_fold);
  dl_window w = {.nd = nd};
  read_sizes(L, karg, karg, nd, w.kernel, "kernel_size", 1);
  opt_sizes(L, oarg, "stride", nd, w.stride, 1, 1);
  opt_sizes(L, oarg, "dilation", nd, w.dilation, 1, 1);
  opt_sizes(L, oarg, "padding", nd, w.pad_lo, 0, 0);
  for (int d = 0; d < nd; d++) w.pad_hi[d] = w.pad_lo[d];
  opt_sizes(L, oarg, "padding_end", nd, w.pad_hi, 0, 0);
  if (dlua_isoptions(L, oarg)) {
    lua_getfield(L, oarg, "padding_end");
    bool has_end = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!has_end)
      for (int d = 0; d < nd; d++) w.pad_hi[d] = w.pad_lo[d];
  }
  w.pad_value = pad_value ? dlua_optnumber(L, oarg, "pad_value", 0) : 0;
  return w;
}

/* dl.im2col(x, kernel_size, {stride = 1, padding = 0, padding_end = padding,
 * dilation = 1, pad_value = 0}): x [N, C, *S] with 1 to 3 spatial dims ->
 * [N, C * prod(kernel_size), windows] */
static int l_im2col(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  int nd = spatial_dims(L, x);
  dl_window w = read_window(L, nd, 2, 3, "dl.im2col", true);
  dlua_push_or_error(L, dl_ag_im2col(x, &w));
  return 1;
}

/* dl.col2im(cols, output_size, kernel_size, {stride, padding, padding_end,
 * dilation}): [N, C * prod(kernel_size), windows] -> [N, C, *output_size],
 * each pixel the sum of the column entries that read it; output_size a
 * list (its length is the number of spatial dims) or a number (2-D) */
static int l_col2im(lua_State *L) {
  dl_tensor *cols = dlua_checktensor(L, 1);
  int nd = lua_type(L, 2) == LUA_TTABLE ? (int)lua_rawlen(L, 2) : 2;
  if (nd < 1 || nd > DL_CONV_MAX_SPATIAL)
    return luaL_argerror(L, 2, lua_pushfstring(L, "output_size: 1 to %d spatial sizes, got %d", DL_CONV_MAX_SPATIAL, nd));
  int64_t size[DL_CONV_MAX_SPATIAL];
  read_sizes(L, 2, 2, nd, size, "output_size", 0);
  dl_window w = read_window(L, nd, 3, 4, "dl.col2im", false);
  dlua_push_or_error(L, dl_ag_col2im(cols, &w, size));
  return 1;
}

/* dl.convolution(x, weight, bias, {stride = 1, padding = 0, padding_end =
 * padding, dilation = 1, groups = 1}): x [N, C, *S], weight [O, C / groups,
 * *kernel], bias [O] or nil -> [N, O, *out] (F.conv1d/2d/3d are built on it) */
/* the convolution options at index i for x (dl.convolution's) */
static dl_conv_params conv_params(lua_State *L, int i, const char *fn, const dl_tensor *x) {
  static const char *const allowed[] = {"stride", "padding", "padding_end", "dilation", "groups", NULL};
  int nd = spatial_dims(L, x);
  if (!lua_isnoneornil(L, i) && !dlua_isoptions(L, i)) luaL_typeerror(L, i, "options table");
  dlua_checkoptions(L, i, fn, allowed);
  dl_conv_params p = {.w = {.nd = nd}};
  opt_sizes(L, i, "stride", nd, p.w.stride, 1, 1);
  opt_sizes(L, i, "dilation", nd, p.w.dilation, 1, 1);
  opt_sizes(L, i, "padding", nd, p.w.pad_lo, 0, 0);
  for (int d = 0; d < nd; d++) p.w.pad_hi[d] = p.w.pad_lo[d];
  if (dlua_isoptions(L, i)) {
    lua_getfield(L, i, "padding_end");
    bool has_end = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (has_end) opt_sizes(L, i, "padding_end", nd, p.w.pad_hi, 0, 0);
  }
  int64_t groups[1];
  opt_sizes(L, i, "groups", 1, groups, 1, 1);
  p.groups = groups[0];
  return p;
}

static int l_convolution(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1), *w = dlua_checktensor(L, 2);
  dl_tensor *b = lua_isnoneornil(L, 3) ? NULL : dlua_checktensor(L, 3);
  dl_conv_params p = conv_params(L, 4, "dl.convolution", x);
  dlua_push_or_error(L, dl_ag_convolution(x, w, b, &p));
  return 1;
}

/* dl._conv_block(x, weight, bias, conv_opts, bn_weight, bn_bias,
 * running_mean, running_var, {momentum = 0.1, eps = 1e-5, pool = false}):
 * a 2-D convolution (conv_opts as dl.convolution's), batch norm with the
 * batch statistics (the running ones, optional, moved by momentum), a ReLU
 * and with pool 2x2 stride-2 max pooling, as one op (grad_conv_block.c):
 * what nn.Sequential runs for Conv2d, BatchNorm2d (training), ReLU and
 * MaxPool2d(2). Internal: the layers check their arguments first. */
static int l_conv_block(lua_State *L) {
  static const char fn[] = "dl._conv_block";
  static const char *const allowed[] = {"momentum", "eps", "pool", NULL};
  dl_tensor *x = dlua_checktensor(L, 1), *w = dlua_checktensor(L, 2);
  dl_tensor *b = lua_isnoneornil(L, 3) ? NULL : dlua_checktensor(L, 3);
  dl_conv_params p = conv_params(L, 4, fn, x);
  dl_tensor *t[4];
  for (int i = 0; i < 4; i++) t[i] = lua_isnoneornil(L, 5 + i) ? NULL : dlua_checktensor(L, 5 + i);
  if (!t[2] != !t[3]) return luaL_error(L, "%s: running_mean and running_var must be given together", fn);
  if (!lua_isnoneornil(L, 9) && !dlua_isoptions(L, 9)) luaL_typeerror(L, 9, "options table");
  dlua_checkoptions(L, 9, fn, allowed);
  double momentum = dlua_optnumber(L, 9, "momentum", 0.1), eps = dlua_optnumber(L, 9, "eps", 1e-5);
  bool pool = dlua_optbool(L, 9, "pool", false);
  dlua_push_or_error(L, dl_ag_conv_block(x, w, b, &p, t[0], t[1], t[2], t[3], momentum, eps, pool));
  return 1;
}

/* dl.max_pool(x, kernel_size, {stride = 1, padding = 0, padding_end =
 * padding, dilation = 1}): x [N, C, *S] -> the max of each window
 * [N, C, *out] and its 1-based flat index in its input plane (int64);
 * padding (at most half the kernel) never wins */
static int l_max_pool(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  int nd = spatial_dims(L, x);
  dl_window w = read_window(L, nd, 2, 3, "dl.max_pool", false);
  dl_tensor *idx = NULL;
  dl_tensor *y = dl_ag_max_pool(x, &w, &idx);
  if (!y) return dlua_engine_error(L);
  dlua_pushtensor(L, y);
  dlua_pushtensor(L, idx);
  return 2;
}

static const luaL_Reg functions[] = {
  {"im2col", l_im2col}, {"col2im", l_col2im}, {"convolution", l_convolution}, {"_conv_block", l_conv_block},
  {"max_pool", l_max_pool},
  {NULL, NULL},
};

void dlua_open_conv(lua_State *L) { dlua_register(L, NULL, functions); }
