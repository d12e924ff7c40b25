/* lua_layer.c (being written) */
#include "lua_dlua.h"

void dlua_open_layer(lua_State *L) { (void)L; }
