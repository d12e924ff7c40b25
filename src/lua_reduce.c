/* lua_reduce.c — binding of the reduce op family (being written). */
#include "lua_dlua.h"

void dlua_open_reduce(lua_State *L) { (void)L; }
