/* lua_linalg.c — binding of the linalg op family (being written). */
#include "lua_dlua.h"

void dlua_open_linalg(lua_State *L) { (void)L; }
