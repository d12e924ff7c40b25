/* lua_layer.c — binding of the fused layer ops: dl.rbf, dl.dropout and
 * dl.batch_norm (the dl.F forms in lua/dlua/nn/layers.lua call these).
 * All go through the differentiable front-ends (src/autograd/grad_layer.c). */
#include "lua_dlua.h"
#include "ops/dl_rnn_scan.h"

#include "autograd/dl_ag_layer.h"

/* a tensor or nil at arg (NULL for nil) */
static dl_tensor *opttensor(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return NULL;
  return dlua_checktensor(L, arg);
}

/* a tensor or nil in field key of the options table at arg */
static dl_tensor *opttensorfield(lua_State *L, int arg, const char *fn, const char *key) {
  if (!dlua_isoptions(L, arg)) return NULL;
  lua_getfield(L, arg, key);
  dl_tensor *t = NULL;
  if (!lua_isnil(L, -1) && !(t = dlua_totensor(L, -1)))
    luaL_error(L, "%s: option '%s' must be a tensor, got %s", fn, key, luaL_typename(L, -1));
  lua_pop(L, 1); /* the options table still holds it */
  return t;
}

static void checkopts(lua_State *L, int arg, const char *fn, const char *const *allowed) {
  if (!lua_isnoneornil(L, arg) && !dlua_isoptions(L, arg)) luaL_typeerror(L, arg, "options table");
  dlua_checkoptions(L, arg, fn, allowed);
}

/* dl.rbf(x, centers, sigmas, {bias_unit = false}) */
static int l_rbf(lua_State *L) {
  static const char *const allowed[] = {"bias_unit", NULL};
  dl_tensor *x = dlua_checktensor(L, 1), *c = dlua_checktensor(L, 2), *s = dlua_checktensor(L, 3);
  checkopts(L, 4, "dl.rbf", allowed);
  dlua_push_or_error(L, dl_ag_rbf(x, c, s, dlua_optbool(L, 4, "bias_unit", false)));
  return 1;
}

/* dl.dropout(x, p = 0.5, training = true) */
static int l_dropout(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  double p = luaL_optnumber(L, 2, 0.5);
  bool training = lua_isnoneornil(L, 3) ? true : (luaL_checktype(L, 3, LUA_TBOOLEAN), lua_toboolean(L, 3));
  dlua_push_or_error(L, dl_ag_dropout(x, p, training));
  return 1;
}

/* dl.batch_norm(x, running_mean, running_var, {weight, bias, training = false,
 * momentum = 0.1, eps = 1e-5}); dl._batch_norm_relu(...) the same followed
 * by a ReLU in one pass, dl._batch_norm_relu_pool(x [N, C, H, W], ...) by a
 * ReLU and 2x2 max pooling (what nn.Sequential runs for BatchNorm, ReLU
 * and MaxPool2d(2)) */
static int batch_norm(lua_State *L, const char *fn, dl_bn_epilogue ep) {
  static const char *const allowed[] = {"weight", "bias", "training", "momentum", "eps", NULL};
  dl_tensor *x = dlua_checktensor(L, 1), *rm = opttensor(L, 2), *rv = opttensor(L, 3);
  checkopts(L, 4, fn, allowed);
  dl_tensor *w = opttensorfield(L, 4, fn, "weight"), *b = opttensorfield(L, 4, fn, "bias");
  bool training = dlua_optbool(L, 4, "training", false);
  double momentum = dlua_optnumber(L, 4, "momentum", 0.1), eps = dlua_optnumber(L, 4, "eps", 1e-5);
  dlua_push_or_error(L, dl_ag_batch_norm(x, w, b, rm, rv, training, momentum, eps, ep));
  return 1;
}
static int l_batch_norm(lua_State *L) { return batch_norm(L, "dl.batch_norm", DL_BN_PLAIN); }
static int l_batch_norm_relu(lua_State *L) { return batch_norm(L, "dl._batch_norm_relu", DL_BN_RELU); }
static int l_batch_norm_relu_pool(lua_State *L) { return batch_norm(L, "dl._batch_norm_relu_pool", DL_BN_RELU_POOL2); }

/* dl.lstm_cell(gates, c) -> h, c1: gates [B, 4H] pre-activations (i, f, g, o), c [B, H] */
static int l_lstm_cell(lua_State *L) {
  dl_tensor *gates = dlua_checktensor(L, 1), *c = dlua_checktensor(L, 2), *h, *c1;
  dlua_check_status(L, dl_ag_lstm_cell(gates, c, &h, &c1));
  dlua_pushtensor(L, h);
  dlua_pushtensor(L, c1);
  return 2;
}

/* dl.gru_cell(gi, gh, h) -> h1: gi, gh [B, 3H] (r, z, n), h [B, H] */
static int l_gru_cell(lua_State *L) {
  dl_tensor *gi = dlua_checktensor(L, 1), *gh = dlua_checktensor(L, 2), *h = dlua_checktensor(L, 3);
  dlua_push_or_error(L, dl_ag_gru_cell(gi, gh, h));
  return 1;
}

/* dl._layer_norm(x, N, weight or nil, bias or nil, eps): layer norm over
 * the trailing dims of x that hold N elements (F.layer_norm's engine) */
static int l_layer_norm(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  lua_Integer N = luaL_checkinteger(L, 2);
  dl_tensor *w = lua_isnoneornil(L, 3) ? NULL : dlua_checktensor(L, 3);
  dl_tensor *b = lua_isnoneornil(L, 4) ? NULL : dlua_checktensor(L, 4);
  double eps = luaL_checknumber(L, 5);
  dlua_push_or_error(L, dl_ag_layer_norm(x, N, w, b, eps));
  return 1;
}

/* the arguments of dl._lstm_scan / dl._gru_scan from 1: x, h0, [c0,] w_ih,
 * w_hh, b_ih or nil, b_hh or nil, reverse */
static dl_rnn_scan_in scan_args(lua_State *L, bool lstm) {
  int a = 1;
  dl_rnn_scan_in in = {NULL};
  in.x = dlua_checktensor(L, a++);
  in.h0 = dlua_checktensor(L, a++);
  if (lstm) in.c0 = dlua_checktensor(L, a++);
  in.w_ih = dlua_checktensor(L, a++);
  in.w_hh = dlua_checktensor(L, a++);
  in.b_ih = lua_isnoneornil(L, a) ? NULL : dlua_checktensor(L, a);
  a++;
  in.b_hh = lua_isnoneornil(L, a) ? NULL : dlua_checktensor(L, a);
  a++;
  in.reverse = lua_toboolean(L, a);
  return in;
}

/* dl._lstm_scan(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse) -> hs, c: one
 * LSTM layer in one direction over a sequence (nn.LSTM's engine; shapes in
 * ops/dl_rnn_scan.h) */
static int l_lstm_scan(lua_State *L) {
  dl_rnn_scan_in in = scan_args(L, true);
  dl_tensor *hs, *c;
  dlua_check_status(L, dl_ag_lstm_scan(&in, &hs, &c));
  dlua_pushtensor(L, hs);
  dlua_pushtensor(L, c);
  return 2;
}

/* dl._gru_scan(x, h0, w_ih, w_hh, b_ih, b_hh, reverse) -> hs: one GRU layer
 * in one direction over a sequence (nn.GRU's engine) */
static int l_gru_scan(lua_State *L) {
  dl_rnn_scan_in in = scan_args(L, false);
  dlua_push_or_error(L, dl_ag_gru_scan(&in));
  return 1;
}

/* dl.attention_softmax(scores, scale = 1, is_causal = false): softmax over the
 * last dim of scale * scores, keys after the query left out when causal */
static int l_attention_softmax(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  double scale = luaL_optnumber(L, 2, 1.0);
  bool causal = lua_isnoneornil(L, 3) ? false : (luaL_checktype(L, 3, LUA_TBOOLEAN), lua_toboolean(L, 3));
  dlua_push_or_error(L, dl_ag_attn_softmax(x, scale, causal));
  return 1;
}

static const luaL_Reg functions[] = {
  {"rbf", l_rbf},
  {"dropout", l_dropout},
  {"batch_norm", l_batch_norm},
  {"_batch_norm_relu", l_batch_norm_relu},
  {"_batch_norm_relu_pool", l_batch_norm_relu_pool},
  {"lstm_cell", l_lstm_cell},
  {"gru_cell", l_gru_cell},
  {"attention_softmax", l_attention_softmax},
  {"_lstm_scan", l_lstm_scan},
  {"_layer_norm", l_layer_norm},
  {"_gru_scan", l_gru_scan},
  {NULL, NULL},
};

void dlua_open_layer(lua_State *L) { dlua_register(L, NULL, functions); }
