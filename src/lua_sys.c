/* lua_sys.c — small system helpers the Lua training tools need and plain Lua
 * lacks: whether a descriptor is a terminal, its width, a monotonic wall
 * clock (os.clock is CPU time, summed over OpenMP threads), whether a
 * function is written in Lua, and the reference pages built into the
 * program (for dl.help). */
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lua_dlua.h"

/* dl._isatty(fd) -> boolean */
static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 1024, 1, "file descriptor out of range");
  lua_pushboolean(L, isatty((int)fd) == 1);
  return 1;
}

/* dl._term_width(fd) -> columns, or nil when fd is not a terminal */
static int l_term_width(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 1024, 1, "file descriptor out of range");
  struct winsize ws;
  if (ioctl((int)fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    lua_pushinteger(L, ws.ws_col);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

/* dl._time() -> seconds on a monotonic clock (sub-microsecond resolution) */
static int l_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* dl._lua_function(v) -> whether v is a function written in Lua (not C):
 * what debug.getinfo(v, "S").what tells, without making its table (the
 * library asks it of ~1500 values as it loads) */
static int l_lua_function(lua_State *L) {
  lua_pushboolean(L, lua_type(L, 1) == LUA_TFUNCTION && !lua_iscfunction(L, 1));
  return 1;
}

typedef struct { const char *path; const char *text; size_t len; } dlua_doc_page;
extern const dlua_doc_page dlua_doc_pages[];

/* dl._reference_pages() -> {path = markdown text, ...}, the docs/ pages
 * embedded at build time (scripts/embed_lua.lua --docs) */
static int l_reference_pages(lua_State *L) {
  lua_newtable(L);
  for (int i = 0; dlua_doc_pages[i].path; i++) {
    lua_pushlstring(L, dlua_doc_pages[i].text, dlua_doc_pages[i].len);
    lua_setfield(L, -2, dlua_doc_pages[i].path);
  }
  return 1;
}

static const luaL_Reg functions[] = {
    {"_reference_pages", l_reference_pages},
    {"_isatty", l_isatty},
    {"_term_width", l_term_width},
    {"_time", l_time},
    {"_lua_function", l_lua_function},
    {NULL, NULL},
};

void dlua_open_sys(lua_State *L) { dlua_register(L, NULL, functions); }
