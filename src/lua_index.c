/* lua_index.c — binding of the index op family (being written). */
#include "lua_dlua.h"

void dlua_open_index(lua_State *L) { (void)L; }
