/* lua_optim.c (being written) */
#include "lua_dlua.h"

void dlua_open_optim(lua_State *L) { (void)L; }
