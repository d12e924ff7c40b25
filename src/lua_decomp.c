/* lua_decomp.c — binding of the decompositions in the dl.linalg table:
 *   local w, V = dl.linalg.eigh(A)        -- A = V diag(w) V^T, w ascending
 *   dl.linalg.eigh(A, "U")                -- read the upper triangle
 * (src/ops/dl_decomp.c). No gradient is recorded. */
#include "lua_dlua.h"

#include "ops/dl_decomp.h"

#include <string.h>

/* eigh(A, UPLO = "L"): eigenvalues ascending, eigenvectors as columns */
static int l_eigh(lua_State *L) {
  dl_tensor *a = dlua_checktensor(L, 1);
  const char *uplo = luaL_optstring(L, 2, "L");
  if (strcmp(uplo, "L") != 0 && strcmp(uplo, "U") != 0)
    return luaL_argerror(L, 2, lua_pushfstring(L, "UPLO must be \"L\" or \"U\", got \"%s\"", uplo));
  dl_tensor *w, *v;
  if (dl_op_eigh(a, uplo[0] == 'U', &w, &v) != 0) return dlua_engine_error(L);
  dlua_pushtensor(L, w);
  dlua_pushtensor(L, v);
  return 2;
}

static const luaL_Reg linalg_functions[] = {
    {"eigh", l_eigh},
    {NULL, NULL},
};

/* adds the functions to dl.linalg, creating the table when no other file
 * has yet */
void dlua_open_decomp(lua_State *L) {
  lua_getfield(L, -1, "linalg");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "linalg");
  }
  luaL_setfuncs(L, linalg_functions, 0);
  lua_pop(L, 1);
}
