/* lua_activation.c (being written) */
#include "lua_dlua.h"

void dlua_open_activation(lua_State *L) { (void)L; }
