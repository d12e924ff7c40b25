/* lua_ewise.c — binding of the ewise op family (being written). */
#include "lua_dlua.h"

void dlua_open_ewise(lua_State *L) { (void)L; }
