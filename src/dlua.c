/* dlua.c — the dlua program: `lua` with the `dl` library preloaded.
 *   dlua script.lua args...   dlua -e 'stat'   dlua -i script   dlua -   dlua -v
 *   dlua --nproc N script.lua args...   (N ranks of dl.dist under mpirun)
 * With no script and a terminal on stdin: the REPL; otherwise stdin runs as a
 * script. Options, `arg`, LUA_INIT and exit statuses follow lua.c (5.4). */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlua.h"
#include "dlua_repl.h"
#include "lua_dlua.h"

static const char *progname = "dlua";

static void print_usage(const char *badopt) {
  if (badopt[1] == 'e' || badopt[1] == 'l')
    fprintf(stderr, "%s: '%s' needs argument\n", progname, badopt);
  else fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badopt);
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
          "  -W        turn warnings on\n"
          "  --        stop handling options\n"
          "  --nproc N run N processes under mpirun (dl.dist; first option only)\n"
          "  -         execute stdin and stop handling options\n",
          progname);
  fflush(stderr);
}

static void print_version(void) {
  printf("dlua %s (%s)  Copyright (C) 1994-2023 Lua.org, PUC-Rio\n", DLUA_VERSION, LUA_RELEASE);
  fflush(stdout);
}

/* global `arg` as lua.c builds it: the script at 0, the program and options
 * before it at negative indices, the script's arguments at 1.. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  if (script == argc) script = 0; /* no script: the program name goes to 0 */
  int narg = argc - (script + 1);
  lua_createtable(L, narg > 0 ? narg : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = dlua_docall(L, 0, 0);
  return dlua_report(L, status);
}

static int dofile(lua_State *L, const char *name) { return dochunk(L, luaL_loadfile(L, name)); }

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l mod or -l g=mod: require "mod" and store the result in global mod (g) */
static int dolibrary(lua_State *L, char *globname) {
  char *modname = strchr(globname, '=');
  if (modname == NULL) {
    modname = globname;
    /* like lua.c: the global is the name up to a '-' (a version suffix) */
    char *suffix = strchr(modname, '-');
    if (suffix) *suffix = '\0';
  } else {
    *modname = '\0';
    modname++;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = dlua_docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, globname);
  return dlua_report(L, status);
}

/* the script's arguments (arg[1..n]) go on the stack as `...` */
static int pushargs(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -(n + 1)); /* the table */
  return n;
}

static int handle_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = dlua_docall(L, n, LUA_MULTRET);
  }
  return dlua_report(L, status);
}

#define has_error 1 /* bad option */
#define has_i 2     /* -i */
#define has_v 4     /* -v */
#define has_e 8     /* -e */
#define has_E 16    /* -E */

/* Scans the options; *first gets the index of the script, or argc when there
 * is none (the index of the bad option on has_error). */
static int collect_args(char **argv, int *first) {
  int args = 0;
  int i;
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args; /* the script */
    switch (argv[i][1]) {
    case '-': /* -- */
      if (argv[i][2] != '\0') return has_error;
      *first = i + 1;
      return args;
    case '\0': return args; /* - : the script is stdin */
    case 'E':
      if (argv[i][2] != '\0') return has_error;
      args |= has_E;
      break;
    case 'W':
      if (argv[i][2] != '\0') return has_error;
      break;
    case 'i':
      args |= has_i; /* -i implies -v */
      /* fallthrough */
    case 'v':
      if (argv[i][2] != '\0') return has_error;
      args |= has_v;
      break;
    case 'e':
      args |= has_e;
      /* fallthrough */
    case 'l': /* both need an argument */
      if (argv[i][2] == '\0') {
        i++;
        if (argv[i] == NULL || argv[i][0] == '-') return has_error; /* *first: the option */
      }
      break;
    default: return has_error;
    }
  }
  *first = i;
  return args;
}

/* -e, -l and -W in order; 0 when one fails */
static int run_args(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    int opt = argv[i][1];
    switch (opt) {
    case 'e':
    case 'l': {
      char *extra = argv[i] + 2;
      if (*extra == '\0') extra = argv[++i];
      int status = opt == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
      if (status != LUA_OK) return 0;
      break;
    }
    case 'W': lua_warning(L, "@on", 0); break;
    }
  }
  return 1;
}

/* LUA_INIT_5_4 or LUA_INIT: a chunk, or @file, run before the arguments */
static int handle_luainit(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return dofile(L, init + 1);
  return dostring(L, init, name);
}

/* Everything runs in protected mode: a memory error while opening the
 * libraries is reported, not a crash. Returns true on success. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script = argc;
  int args = collect_args(argv, &script);
  if (args == has_error) {
    print_usage(argv[script]);
    return 0;
  }
  if (args & has_v) print_version();
  if (args & has_E) {
    /* the package library then ignores LUA_PATH and LUA_CPATH */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  luaL_requiref(L, "dlua", luaopen_dlua, 0);
  lua_setglobal(L, "dl");
  create_arg_table(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0); /* minor collections reclaim short-lived tensors cheaply */
  if (!(args & has_E) && handle_luainit(L) != LUA_OK) return 0;
  if (!run_args(L, argv, script)) return 0;
  if (script < argc && handle_script(L, argv + script) != LUA_OK) return 0;
  if (args & has_i) {
    dlua_repl(L);
  } else if (script == argc && !(args & (has_e | has_v))) {
    if (isatty(STDIN_FILENO)) {
      print_version();
      dlua_repl(L);
    } else if (dofile(L, NULL) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* dlua --nproc N [options] script args: mpirun -np N of this program on
 * this machine (dl.dist's ranks) */
static int launch(int argc, char **argv) {
  char *end = NULL;
  long n = argc > 2 ? strtol(argv[2], &end, 10) : 0;
  if (argc < 4 || !end || *end || n < 1 || n > 4096) {
    fprintf(stderr, "%s: --nproc needs a number of processes (1 to 4096) and a script\n", progname);
    return EXIT_FAILURE;
  }
  char self[4096];
  ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
  if (k <= 0) {
    fprintf(stderr, "%s: --nproc: cannot find this program's path\n", progname);
    return EXIT_FAILURE;
  }
  self[k] = 0;
  char **args = calloc((size_t)argc + 8, sizeof *args);
  if (!args) return EXIT_FAILURE;
  int a = 0;
  args[a++] = "mpirun";
  args[a++] = "-np";
  args[a++] = argv[2];
  /* Open MPI counts cores, not hardware threads, as its slots: allowing
   * more ranks than slots keeps N up to the CPUs (and past) working; it
   * still binds each rank to a core while there are enough */
  args[a++] = "--oversubscribe";
  if (geteuid() == 0) args[a++] = "--allow-run-as-root";
  args[a++] = self;
  for (int i = 3; i < argc; i++) args[a++] = argv[i];
  execvp("mpirun", args);
  fprintf(stderr, "%s: --nproc starts mpirun, which was not found (Open MPI: the openmpi-bin package)\n", progname);
  free(args);
  return EXIT_FAILURE;
}

int main(int argc, char **argv) {
  if (argv[0] && argv[0][0]) progname = argv[0];
  if (argc > 1 && strcmp(argv[1], "--nproc") == 0) return launch(argc, argv);
  lua_State *L = dlua_state_new();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP); /* no collections while building the state */
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int ok = lua_toboolean(L, -1);
  dlua_report(L, status);
  lua_close(L);
  return ok && status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
