/* lua_data.c (being written) */
#include "lua_dlua.h"

void dlua_open_data(lua_State *L) { (void)L; }
