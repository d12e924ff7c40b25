/* lua_data.c — file readers behind dl.data: read_idx and read_csv. The rest
 * of dl.data (Dataset, DataLoader, ...) is Lua, in lua/dlua/data/. */
#include <stdlib.h>
#include <string.h>

#include "dl_csv.h"
#include "dl_idx.h"
#include "lua_dlua.h"

/* dl.data.read_idx(path) -> tensor */
static int l_read_idx(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  dlua_push_or_error(L, dl_idx_read(path));
  return 1;
}

/* The `columns` option: a list of names (strings) or 1-based indices. */
typedef struct {
  const char **names;
  int64_t *index;
  int n;
} csv_columns;

static void csv_columns_free(csv_columns *c) {
  free(c->names);
  free(c->index);
}

static int csv_checkcolumns(lua_State *L, int opts, csv_columns *c) {
  memset(c, 0, sizeof *c);
  if (!dlua_isoptions(L, opts)) return 0;
  lua_getfield(L, opts, "columns");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1)) return luaL_argerror(L, opts, "columns must be a list of names or indices");
  lua_Integer n = luaL_len(L, -1);
  if (n < 1 || n > (1 << 24)) return luaL_argerror(L, opts, "columns must be a non-empty list");
  c->names = calloc((size_t)n, sizeof *c->names);
  c->index = calloc((size_t)n, sizeof *c->index);
  c->n = (int)n;
  if (!c->names || !c->index) {
    csv_columns_free(c);
    return luaL_error(L, "read_csv: out of memory");
  }
  for (lua_Integer i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, -1, i);
    if (t == LUA_TSTRING) {
      c->names[i - 1] = lua_tostring(L, -1); /* anchored by the options table */
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      c->index[i - 1] = lua_tointeger(L, -1) - 1;
    } else {
      csv_columns_free(c);
      return luaL_argerror(L, opts, lua_pushfstring(L, "columns[%d] must be a name or an index >= 1", (int)i));
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* dl.data.read_csv(path, {header = true, sep = ",", columns = {...},
 * dtype = "float32"}) -> tensor, names (nil without a header) */
static int l_read_csv(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  static const char *const allowed[] = {"header", "sep", "columns", "dtype", NULL};
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  dlua_checkoptions(L, 2, "read_csv", allowed);
  dl_csv_options opt = {.sep = ',', .header = dlua_optbool(L, 2, "header", true), .dtype = DL_FLOAT32};
  const char *sep = dlua_optstring(L, 2, "sep", ",");
  if (strlen(sep) != 1 || sep[0] == '"' || sep[0] == '\n' || sep[0] == '\r')
    return luaL_argerror(L, 2, "sep must be one character other than a quote or a newline");
  opt.sep = sep[0];
  const char *dtype = dlua_optstring(L, 2, "dtype", "float32");
  if (dl_dtype_from_name(dtype, &opt.dtype) != 0 || !dl_dtype_is_float(opt.dtype))
    return luaL_argerror(L, 2, lua_pushfstring(L, "dtype must be float32 or float64, got '%s'", dtype));
  csv_columns cols;
  csv_checkcolumns(L, 2, &cols);
  opt.col_names = cols.names;
  opt.col_index = cols.index;
  opt.ncols = cols.n;
  dl_csv_result r;
  int rc = dl_csv_read(path, &opt, &r);
  csv_columns_free(&cols);
  if (rc != 0) return dlua_engine_error(L);
  dlua_push_or_error(L, r.values);
  if (r.names) {
    lua_createtable(L, r.ncols, 0);
    for (int j = 0; j < r.ncols; j++) {
      lua_pushstring(L, r.names[j]);
      lua_rawseti(L, -2, j + 1);
    }
    dl_csv_free_names(&r);
  } else {
    lua_pushnil(L);
  }
  return 2;
}

static const luaL_Reg data_functions[] = {
    {"read_idx", l_read_idx},
    {"read_csv", l_read_csv},
    {NULL, NULL},
};

/* Fills dl.data (made here when absent; lua/dlua/data adds the rest). */
void dlua_open_data(lua_State *L) {
  if (lua_getfield(L, -1, "data") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "data");
  }
  luaL_setfuncs(L, data_functions, 0);
  lua_pop(L, 1);
}
