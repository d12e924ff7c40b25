/* dlua.c — the dlua program: `lua` with the `dl` library preloaded.
 *   dlua script.lua args...   dlua -e 'stat'   dlua -i script   dlua -   dlua -v
 * With no script and a terminal on stdin: the REPL. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlua.h"
#include "dlua_repl.h"

static const char *progname = "dlua";

static void print_usage(const char *badopt) {
  if (badopt[1] == 'e') fprintf(stderr, "%s: '%s' needs argument\n", progname, badopt);
  else fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badopt);
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -v        show version information\n"
          "  --        stop handling options\n"
          "  -         execute stdin and stop handling options\n",
          progname);
}

static void print_version(void) {
  printf("dlua %s (%s)\n", DLUA_VERSION, LUA_RELEASE);
}

/* global `arg` as lua.c builds it: script at 0, options before it negative */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  int narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = dlua_docall(L, 0, 0);
  if (status != LUA_OK) dlua_report(L, status);
  return status;
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

static int dolibrary(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  int status = dlua_docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, name);
  else dlua_report(L, status);
  return status;
}

static int handle_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = 0;
    for (char **a = argv + 1; *a; a++) n++;
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++) lua_pushstring(L, argv[i]);
    status = dlua_docall(L, n, LUA_MULTRET);
  }
  if (status != LUA_OK) dlua_report(L, status);
  return status;
}

#define has_error 1
#define has_i 2
#define has_v 4
#define has_e 8

/* scans options; returns the index of the script (or argc) in *first */
static int collect_args(char **argv, int *first) {
  int args = 0;
  int i;
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args;
    switch (argv[i][1]) {
    case '-':
      if (argv[i][2] != '\0') return has_error;
      *first = i + 1;
      return args;
    case '\0': return args;
    case 'i': args |= has_i | has_v; if (argv[i][2]) return has_error; break;
    case 'v': args |= has_v; if (argv[i][2]) return has_error; break;
    case 'e':
      args |= has_e;
      /* fallthrough */
    case 'l':
      if (argv[i][2] == '\0') {
        i++;
        if (argv[i] == NULL || argv[i][0] == '-') return has_error;
      }
      break;
    default: return has_error;
    }
  }
  *first = i;
  return args;
}

static int run_args(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    int opt = argv[i][1];
    if (opt == 'e' || opt == 'l') {
      const char *extra = argv[i] + 2;
      if (*extra == '\0') extra = argv[++i];
      int status = opt == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
      if (status != LUA_OK) return 0;
    }
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argv[0] && argv[0][0]) progname = argv[0];
  lua_State *L = dlua_newstate();
  if (!L) {
    fprintf(stderr, "%s: cannot create state: %s\n", progname, dl_error_get());
    return EXIT_FAILURE;
  }
  int script = argc;
  int args = collect_args(argv, &script);
  int ok = 1;
  if (args == has_error) {
    print_usage(argv[script]);
    lua_close(L);
    return EXIT_FAILURE;
  }
  if (args & has_v) print_version();
  create_arg_table(L, argv, argc, script == argc ? 0 : script);
  lua_gc(L, LUA_GCGEN, 0, 0); /* lua.c's default */
  lua_gc(L, LUA_GCINC, 0, 0); /* tensors' external memory is paced in incremental mode */
  if (!run_args(L, argv, script)) ok = 0;
  if (ok && script < argc && handle_script(L, argv + script) != LUA_OK) ok = 0;
  if (ok) {
    if (args & has_i) {
      dlua_repl(L);
    } else if (script == argc && !(args & (has_e | has_v))) {
      if (isatty(0)) {
        print_version();
        dlua_repl(L);
      } else {
        ok = dochunk(L, luaL_loadfile(L, NULL)) == LUA_OK;
      }
    }
  }
  lua_close(L);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
