/* lua_view.c — views (view, reshape, transpose, narrow, select, ...) and
 * copies (clone, contiguous, copy_, fill_, to, float, ...), through their
 * differentiable front-ends so they record autograd history. */
#include "lua_dlua.h"

#include <limits.h>

#include "autograd/dl_ag_view.h"

/* t.T reverses the dims, as PyTorch's .T */
static int g_T(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int perm[DL_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) perm[d] = t->ndim - 1 - d;
  dlua_push_or_error(L, dl_ag_permute(t, perm, t->ndim));
  return 1;
}

/* ---- views ---- */

/* sizes from arg 2 on, for view/reshape/expand (allow -1) */
static int read_view_sizes(lua_State *L, int arg, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, arg)) return dlua_checkintlist(L, arg, arg, shape, "sizes");
  while (!lua_isnone(L, arg + n)) {
    if (n >= DL_MAX_DIMS) luaL_argerror(L, arg + n, "too many dims");
    shape[n] = luaL_checkinteger(L, arg + n);
    n++;
  }
  return n;
}

/* view / reshape / expand: the tensor, then sizes (varargs or a table) */
typedef dl_tensor *(*shape_op)(dl_tensor *t, const int64_t *shape, int ndim);

static int apply_sizes(lua_State *L, shape_op op) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int64_t shape[DL_MAX_DIMS];
  int n = read_view_sizes(L, 2, shape);
  dlua_push_or_error(L, op(t, shape, n));
  return 1;
}

static int l_view(lua_State *L) { return apply_sizes(L, dl_ag_view); }
static int l_reshape(lua_State *L) { return apply_sizes(L, dl_ag_reshape); }
static int l_expand(lua_State *L) { return apply_sizes(L, dl_ag_expand); }

static int l_view_as(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1), *o = dlua_checktensor(L, 2);
  dlua_push_or_error(L, dl_ag_view(t, o->shape, o->ndim));
  return 1;
}

static int l_expand_as(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1), *o = dlua_checktensor(L, 2);
  dlua_push_or_error(L, dl_ag_expand(t, o->shape, o->ndim));
  return 1;
}

static int l_transpose(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d0 = dlua_checkdim(L, 2, t->ndim), d1 = dlua_checkdim(L, 3, t->ndim);
  dlua_push_or_error(L, dl_ag_transpose(t, d0, d1));
  return 1;
}

static int l_t(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->ndim > 2) return luaL_error(L, "dl.t: expects a tensor with <= 2 dims, got %d; use transpose", t->ndim);
  dlua_push_or_error(L, dl_ag_t(t));
  return 1;
}

static int l_permute(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int perm[DL_MAX_DIMS];
  int n = 0;
  if (lua_istable(L, 2)) {
    int64_t ds[DL_MAX_DIMS];
    n = dlua_checkintlist(L, 2, 2, ds, "dims");
    if (n != t->ndim) return luaL_error(L, "dl.permute: %d dims given for a %d-d tensor", n, t->ndim);
    lua_settop(L, 3); /* slot 3 holds each dim in turn for the checker */
    for (int i = 0; i < n; i++) {
      lua_pushinteger(L, ds[i]);
      lua_replace(L, 3);
      perm[i] = dlua_checkdim(L, 3, t->ndim);
    }
  } else {
    n = lua_gettop(L) - 1;
    if (n != t->ndim) return luaL_error(L, "dl.permute: %d dims given for a %d-d tensor", n, t->ndim);
    for (int i = 0; i < n; i++) perm[i] = dlua_checkdim(L, i + 2, t->ndim);
  }
  dlua_push_or_error(L, dl_ag_permute(t, perm, n));
  return 1;
}

static int l_narrow(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->ndim == 0) return luaL_error(L, "dl.narrow: cannot narrow a 0-d tensor");
  int d = dlua_checkdim(L, 2, t->ndim);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  int64_t size = t->shape[d];
  if (start < 0) start += size + 1;
  if (start < 1 || start > size + 1)
    return luaL_argerror(L, 3, lua_pushfstring(L, "start %I out of range for dim %d of size %I", luaL_checkinteger(L, 3), d + 1, (lua_Integer)size));
  if (len < 0 || start - 1 + len > size)
    return luaL_argerror(L, 4, lua_pushfstring(L, "length %I too long for dim %d of size %I from %I", len, d + 1, (lua_Integer)size, start));
  dlua_push_or_error(L, dl_ag_narrow(t, d, start - 1, len));
  return 1;
}

static int l_select(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->ndim == 0) return luaL_error(L, "dl.select: cannot index a 0-d tensor");
  int d = dlua_checkdim(L, 2, t->ndim);
  int64_t i = dlua_checkindex(L, 3, t->shape[d]);
  dlua_push_or_error(L, dl_ag_select(t, d, i));
  return 1;
}

static int l_squeeze(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d = lua_isnoneornil(L, 2) ? DL_ALL_DIMS : dlua_checkdim(L, 2, t->ndim);
  dlua_push_or_error(L, dl_ag_squeeze(t, d));
  return 1;
}

static int l_unsqueeze(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  lua_Integer d = luaL_checkinteger(L, 2);
  lua_Integer n = t->ndim + 1;
  if (d == 0 || d > n || d < -n)
    return luaL_argerror(L, 2, lua_pushfstring(L, "dim %I out of range for unsqueeze of a %d-d tensor", d, t->ndim));
  dlua_push_or_error(L, dl_ag_unsqueeze(t, (int)(d > 0 ? d - 1 : d + n)));
  return 1;
}

static int l_flatten(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int s = lua_isnoneornil(L, 2) ? 0 : dlua_checkdim(L, 2, t->ndim);
  int e = lua_isnoneornil(L, 3) ? (t->ndim ? t->ndim - 1 : 0) : dlua_checkdim(L, 3, t->ndim);
  dlua_push_or_error(L, dl_ag_flatten(t, s, e));
  return 1;
}

static int l_unfold(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d = dlua_checkdim(L, 2, t->ndim);
  dlua_push_or_error(L, dl_ag_unfold(t, d, luaL_checkinteger(L, 3), luaL_checkinteger(L, 4)));
  return 1;
}

/* chunk(n, dim) and split(size | {sizes}, dim) return a Lua list of views;
 * the piece at start of length len becomes element i of the list on top */
static void push_piece(lua_State *L, dl_tensor *t, int d, int64_t start, int64_t len, int i) {
  dlua_push_or_error(L, dl_ag_narrow(t, d, start, len));
  lua_rawseti(L, -2, i);
}

/* pieces of `each` along d (the last one shorter); one empty piece of an
 * empty dim */
static int push_even(lua_State *L, dl_tensor *t, int d, int64_t each) {
  int64_t size = t->shape[d];
  lua_createtable(L, size == 0 ? 1 : (int)((size - 1) / each + 1), 0);
  int i = 0;
  for (int64_t s = 0; s < size; s += each) push_piece(L, t, d, s, s + each <= size ? each : size - s, ++i);
  if (size == 0) push_piece(L, t, d, 0, 0, 1);
  return 1;
}

static int l_chunk(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  lua_Integer chunks = luaL_checkinteger(L, 2);
  if (chunks <= 0) return luaL_argerror(L, 2, "number of chunks must be positive");
  int d = lua_isnoneornil(L, 3) ? 0 : dlua_checkdim(L, 3, t->ndim);
  if (t->ndim == 0) return luaL_error(L, "dl.chunk: cannot chunk a 0-d tensor");
  int64_t size = t->shape[d];
  int64_t each = chunks >= size ? 1 : (size + chunks - 1) / chunks;
  return push_even(L, t, d, each);
}

static int l_split(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d = lua_isnoneornil(L, 3) ? 0 : dlua_checkdim(L, 3, t->ndim);
  if (t->ndim == 0) return luaL_error(L, "dl.split: cannot split a 0-d tensor");
  int64_t size = t->shape[d];
  if (!lua_istable(L, 2)) {
    lua_Integer each = luaL_checkinteger(L, 2);
    if (each <= 0) return luaL_argerror(L, 2, "split size must be positive");
    return push_even(L, t, d, each);
  }
  /* a list of sizes: checked whole before any piece is made */
  lua_Integer m = luaL_len(L, 2);
  int64_t total = 0;
  for (lua_Integer i = 1; i <= m; i++) {
    int ok;
    lua_rawgeti(L, 2, i);
    lua_Integer n = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok || n < 0) return luaL_argerror(L, 2, "sizes must be non-negative integers");
    total = n > INT64_MAX - total ? INT64_MAX : total + n; /* saturates: still != size */
  }
  if (total != size || m > INT_MAX)
    return luaL_error(L, "dl.split: sizes sum to %I but dim %d has size %I", (lua_Integer)total, d + 1,
                      (lua_Integer)size);
  lua_createtable(L, (int)m, 0);
  int64_t start = 0;
  for (lua_Integer i = 1; i <= m; i++) {
    lua_rawgeti(L, 2, i);
    int64_t n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    push_piece(L, t, d, start, n, (int)i);
    start += n;
  }
  return 1;
}

/* ---- copies ---- */

static int l_clone(lua_State *L) {
  dlua_push_or_error(L, dl_ag_clone(dlua_checktensor(L, 1)));
  return 1;
}

static int l_contiguous(lua_State *L) {
  dlua_push_or_error(L, dl_ag_contiguous(dlua_checktensor(L, 1)));
  return 1;
}

static int l_copy_(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1), *s = dlua_checktensor(L, 2);
  dlua_check_status(L, dl_ag_copy_(t, s));
  lua_settop(L, 1);
  return 1;
}

static int l_fill_(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dlua_check_status(L, dl_ag_fill_(t, dlua_checkscalar(L, 2)));
  lua_settop(L, 1);
  return 1;
}

static int l_zero_(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dlua_check_status(L, dl_ag_fill_(t, dl_scalar_i(0)));
  lua_settop(L, 1);
  return 1;
}

/* to(dtype | device | tensor, ...) */
static int l_to(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_tensor *cur = dl_tensor_retain(t);
  int top = lua_gettop(L);
  for (int i = 2; i <= top; i++) {
    dl_tensor *next = NULL;
    dl_tensor *other = dlua_totensor(L, i);
    if (other) {
      next = dl_ag_to_dtype(cur, other->dtype);
      if (next) {
        dl_tensor *n2 = dl_ag_to_device(next, dl_tensor_device(other));
        dl_tensor_release(next);
        next = n2;
      }
    } else if (lua_type(L, i) == LUA_TSTRING) {
      dl_dtype dt;
      dl_device dev;
      const char *s = lua_tostring(L, i);
      if (dl_dtype_from_name(s, &dt) == 0) next = dl_ag_to_dtype(cur, dt);
      else if (dl_device_parse(s, &dev) == 0) next = dl_ag_to_device(cur, dev);
      else {
        dl_tensor_release(cur);
        return luaL_argerror(L, i, lua_pushfstring(L, "'%s' is neither a dtype nor a device", s));
      }
    } else {
      dl_tensor_release(cur);
      return luaL_typeerror(L, i, "dtype, device or tensor");
    }
    dl_tensor_release(cur);
    if (!next) dlua_engine_error(L);
    cur = next;
  }
  dlua_pushtensor(L, cur);
  return 1;
}

static int to_dtype(lua_State *L, dl_dtype dt) {
  dlua_push_or_error(L, dl_ag_to_dtype(dlua_checktensor(L, 1), dt));
  return 1;
}
static int l_float(lua_State *L) { return to_dtype(L, DL_FLOAT32); }
static int l_double(lua_State *L) { return to_dtype(L, DL_FLOAT64); }
static int l_long(lua_State *L) { return to_dtype(L, DL_INT64); }
static int l_bool(lua_State *L) { return to_dtype(L, DL_BOOL); }
static int l_byte(lua_State *L) { return to_dtype(L, DL_UINT8); }

static int l_cpu(lua_State *L) {
  dlua_push_or_error(L, dl_ag_to_device(dlua_checktensor(L, 1), dl_device_cpu()));
  return 1;
}

static int l_cuda(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_device d = {DL_CUDA, (int8_t)luaL_optinteger(L, 2, 0)};
  dlua_push_or_error(L, dl_ag_to_device(t, d));
  return 1;
}

static int l_type(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_pushstring(L, dl_dtype_name(t->dtype));
    return 1;
  }
  return to_dtype(L, dlua_checkdtype(L, 2));
}

static int l_data_ptr(lua_State *L) {
  lua_pushlightuserdata(L, dl_tensor_data(dlua_checktensor(L, 1)));
  return 1;
}

static int l_element_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)dl_dtype_size(dlua_checktensor(L, 1)->dtype));
  return 1;
}

static const luaL_Reg methods[] = {
  {"view", l_view}, {"reshape", l_reshape}, {"expand", l_expand}, {"view_as", l_view_as},
  {"expand_as", l_expand_as}, {"reshape_as", l_view_as},
  {"transpose", l_transpose}, {"t", l_t}, {"permute", l_permute},
  {"narrow", l_narrow}, {"select", l_select}, {"squeeze", l_squeeze}, {"unsqueeze", l_unsqueeze},
  {"flatten", l_flatten}, {"unfold", l_unfold}, {"chunk", l_chunk}, {"split", l_split},
  {"clone", l_clone}, {"contiguous", l_contiguous}, {"copy_", l_copy_}, {"fill_", l_fill_},
  {"zero_", l_zero_}, {"to", l_to}, {"float", l_float}, {"double", l_double}, {"long", l_long},
  {"bool", l_bool}, {"byte", l_byte}, {"cpu", l_cpu}, {"cuda", l_cuda}, {"type", l_type},
  {"data_ptr", l_data_ptr}, {"element_size", l_element_size},
  {NULL, NULL},
};

static const luaL_Reg functions[] = {
  {"view", l_view}, {"reshape", l_reshape}, {"transpose", l_transpose},
  {"permute", l_permute}, {"narrow", l_narrow}, {"select", l_select}, {"squeeze", l_squeeze},
  {"unsqueeze", l_unsqueeze}, {"flatten", l_flatten}, {"chunk", l_chunk}, {"split", l_split},
  {"clone", l_clone}, {"t", l_t},
  {NULL, NULL},
};

static const luaL_Reg getters[] = {{"T", g_T}, {NULL, NULL}};

void dlua_open_view(lua_State *L) {
  dlua_register(L, methods, functions);
  dlua_register_getters(L, getters);
}
