/* lua_random.c — binding of the random op family (being written). */
#include "lua_dlua.h"

void dlua_open_random(lua_State *L) { (void)L; }
