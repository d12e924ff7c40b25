/* lua_loss.c (being written) */
#include "lua_dlua.h"

void dlua_open_loss(lua_State *L) { (void)L; }
