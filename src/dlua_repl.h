/* dlua_repl.h — the interactive loop of bin/dlua and the call helpers the
 * program shares with it (modelled on lua.c). */
#ifndef DLUA_REPL_H
#define DLUA_REPL_H

#include <lua.h>

/* Runs the read-eval-print loop on the state until end of input. On a
 * terminal it edits lines with libedit, completes names on Tab and keeps
 * history in ~/.dlua_history; otherwise it reads plain lines. */
void dlua_repl(lua_State *L);
/* Calls the function on the stack (with narg args) under a message handler
 * that adds a traceback; SIGINT interrupts it with an error. Returns LUA_OK
 * or an error status, with the error message on the stack. */
int dlua_docall(lua_State *L, int narg, int nres);
/* When status is not LUA_OK, prints the message at the top of the stack to
 * stderr (prefixed "dlua: " outside the REPL) and pops it. Returns status. */
int dlua_report(lua_State *L, int status);

#endif
