/* lua_decomp.c (being written) */
#include "lua_dlua.h"

void dlua_open_decomp(lua_State *L) { (void)L; }
