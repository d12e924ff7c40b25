/* dlua_repl.h — the interactive loop of bin/dlua. */
#ifndef DLUA_REPL_H
#define DLUA_REPL_H

#include <lua.h>

/* Runs the REPL on the state until end of input; returns the exit status. */
int dlua_repl(lua_State *L);
/* Calls the function on the stack (with narg args) under a message handler
 * that adds a traceback and a SIGINT hook; prints errors. Returns LUA_OK or
 * an error status. */
int dlua_docall(lua_State *L, int narg, int nres);
/* Prints the error message at the top of the stack to stderr with the program name. */
void dlua_report(lua_State *L, int status);

#endif
