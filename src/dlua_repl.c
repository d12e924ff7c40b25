/* dlua_repl.c — the interactive loop (libedit), error reporting, calls under
 * a traceback handler, Tab completion of names and the display of results.
 * Modelled on lua.c: "return " is tried first so expressions print, input
 * continues while the syntax error ends in <eof>, SIGINT only sets a hook.
 * help(x) and ?x print dl.help(x), the reference entry of x. */
#include "dlua_repl.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "dl_dist.h"
#include "dlua.h"

/* ---- calls and errors ---- */

static lua_State *global_L = NULL;
static bool in_repl = false; /* errors in the REPL carry no program name */

/* SIGINT: set a hook that raises an error at the next Lua instruction */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void laction(int i) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  signal(i, SIG_DFL); /* a second SIGINT before the hook runs kills, as in lua.c */
  lua_sethook(global_L, lstop, flag, 1);
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int dlua_docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  global_L = L;
  signal(SIGINT, laction);
  int status = lua_pcall(L, narg, nres, base);
  signal(SIGINT, SIG_DFL);
  lua_remove(L, base);
  return status;
}

int dlua_report(lua_State *L, int status) {
  if (status == LUA_OK) return status;
  const char *msg = lua_tostring(L, -1);
  if (msg == NULL) msg = "(error object is not a string)";
  if (in_repl) fprintf(stderr, "%s\n", msg);
  else if (dl_dist_size() > 1) fprintf(stderr, "dlua: rank %d: %s\n", dl_dist_rank(), msg);
  else fprintf(stderr, "dlua: %s\n", msg);
  fflush(stderr);
  lua_pop(L, 1);
  return status;
}

/* ---- input: libedit on a terminal, plain lines otherwise ---- */

#define PROMPT "> "
#define PROMPT2 ">> "
#define HISTORY_MAX 1000

static bool use_editline = false;
static char history_path[4096];

/* Ctrl-C at the prompt: the line is dropped and a new prompt shown, as
 * Python's REPL does (Ctrl-D still ends the session) */
static volatile sig_atomic_t prompt_interrupted = 0;
static void on_prompt_sigint(int sig) {
  (void)sig;
  prompt_interrupted = 1;
}

/* a malloc'd line without its newline, or NULL at end of input */
static char *read_input(const char *prompt) {
  if (use_editline) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prompt_sigint; /* no SA_RESTART: the read returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    char *line;
    for (;;) {
      prompt_interrupted = 0;
      line = readline(prompt);
      if (line || !prompt_interrupted) break;
      fputs("^C\n", stdout);
      fflush(stdout);
    }
    sigaction(SIGINT, &old, NULL);
    return line;
  }
  fputs(prompt, stdout);
  fflush(stdout);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    free(line);
    return NULL;
  }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  return line;
}

/* history is written after each entry, so a killed session keeps it */
static void save_line(const char *line) {
  if (!use_editline || line[0] == '\0') return;
  add_history(line);
  if (history_path[0]) write_history(history_path);
}

/* _PROMPT / _PROMPT2 override the prompts, as in lua.c; leaves it on the stack */
static const char *get_prompt(lua_State *L, int firstline) {
  if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushstring(L, firstline ? PROMPT : PROMPT2);
  } else {
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
  }
  return lua_tostring(L, -1);
}

static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= 5 && strcmp(msg + lmsg - 5, "<eof>") == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* pushes a line; 0 at end of input */
static int pushline(lua_State *L, int firstline) {
  char *b = read_input(get_prompt(L, firstline));
  lua_pop(L, 1); /* the prompt */
  if (b == NULL) return 0;
  if (firstline && b[0] == '=') lua_pushfstring(L, "return %s", b + 1); /* 5.2's '=expr' */
  else if (firstline && b[0] == '?') lua_pushfstring(L, "help(%s)", b + 1); /* ?x: x's reference entry */
  else lua_pushstring(L, b);
  free(b);
  return 1;
}

/* the line as an expression whose values print */
static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2);
    save_line(line);
  } else {
    lua_pop(L, 2);
  }
  return status;
}

/* reads more lines while the chunk is incomplete */
static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, line, len, "=stdin");
    if (!incomplete(L, status) || !pushline(L, 0)) {
      save_line(line);
      return status;
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

/* a compiled chunk on the stack, an error status, or -1 at end of input */
static int loadline(lua_State *L) {
  lua_settop(L, 0);
  if (!pushline(L, 1)) return -1;
  int status = addreturn(L);
  if (status != LUA_OK) status = multiline(L);
  lua_remove(L, 1);
  return status;
}

/* ---- completion: globals, fields after '.', methods after ':' ---- */

static const char *const keywords[] = {
  "and",  "break", "do",     "else", "elseif", "end",   "false", "for",   "function", "goto", "if",
  "in",   "local", "nil",    "not",  "or",     "repeat", "return", "then", "true",    "until", "while",
  NULL,
};

/* properties of a tensor read through t.<name> (the getters) */
static const char *const tensor_fields[] = {
  "shape", "dtype", "device", "ndim", "T", "requires_grad", "grad", "grad_fn", "is_leaf", "data", NULL,
};

static bool is_identifier(const char *s, size_t n) {
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

/* adds name to the set at index `set` when it extends the prefix */
static void add_candidate(lua_State *L, int set, const char *name, const char *prefix) {
  if (strncmp(name, prefix, strlen(prefix)) != 0) return;
  lua_pushboolean(L, 1);
  lua_setfield(L, set, name);
}

/* the identifier keys of table `tab` (and of its __index tables: classes),
 * functions only when `methods` */
static void add_keys(lua_State *L, int set, int tab, const char *prefix, bool methods, int depth) {
  tab = lua_absindex(L, tab);
  if (lua_type(L, tab) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, tab)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, -2, &n);
        int vt = lua_type(L, -1);
        if (is_identifier(k, n) && (!methods || vt == LUA_TFUNCTION || vt == LUA_TTABLE))
          add_candidate(L, set, k, prefix);
      }
      lua_pop(L, 1);
    }
  }
  if (depth < 8 && luaL_getmetafield(L, tab, "__index") != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TTABLE) add_keys(L, set, -1, prefix, methods, depth + 1);
    lua_pop(L, 1);
  }
}

/* candidates for the value at index v after sep ('.' or ':') */
static void add_members(lua_State *L, int set, int v, char sep, const char *prefix) {
  v = lua_absindex(L, v);
  dl_tensor *t = dlua_totensor(L, v);
  if (t) {
    /* the methods live in dl.Tensor; the properties behind getters */
    lua_getfield(L, LUA_REGISTRYINDEX, "dlua.module");
    if (lua_istable(L, -1) && lua_getfield(L, -1, "Tensor") == LUA_TTABLE) add_keys(L, set, -1, prefix, sep == ':', 0);
    lua_settop(L, v);
    if (sep == '.')
      for (const char *const *f = tensor_fields; *f; f++) add_candidate(L, set, *f, prefix);
  } else if (lua_type(L, v) == LUA_TSTRING && sep == ':') {
    lua_getglobal(L, "string");
    add_keys(L, set, -1, prefix, true, 0);
  } else {
    add_keys(L, set, v, prefix, sep == ':', 0);
  }
  lua_settop(L, v);
}

/* completions(text) -> array of full replacement strings (protected) */
static int l_completions(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  lua_newtable(L);
  int set = lua_gettop(L);
  const char *sep = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':') sep = p;
  if (sep == NULL) {
    lua_pushglobaltable(L);
    add_keys(L, set, -1, text, false, 0);
    lua_pop(L, 1);
    for (const char *const *k = keywords; *k; k++) add_candidate(L, set, *k, text);
  } else {
    /* walk name.name.name from the globals; no calls, no ':' inside */
    lua_pushglobaltable(L);
    for (const char *p = text;;) {
      const char *q = p;
      while (q < sep && *q != '.') q++;
      int ty = lua_type(L, -1);
      if (!is_identifier(p, (size_t)(q - p)) || (ty != LUA_TTABLE && ty != LUA_TUSERDATA)) return 0;
      lua_pushlstring(L, p, (size_t)(q - p));
      lua_gettable(L, -2); /* may run __index: we are protected */
      lua_remove(L, -2);
      if (q == sep) break;
      p = q + 1;
    }
    add_members(L, set, -1, *sep, sep + 1);
  }
  /* the set -> {"dl.zeros", ...} */
  lua_newtable(L);
  lua_Integer n = 0;
  size_t head = (size_t)(sep ? sep - text + 1 : 0);
  lua_pushnil(L);
  while (lua_next(L, set)) {
    lua_pop(L, 1);
    lua_pushlstring(L, text, head);
    lua_pushvalue(L, -2);
    lua_concat(L, 2);
    lua_rawseti(L, -3, ++n);
  }
  return 1;
}

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* readline's contract: [0] the common prefix, then the matches, NULL */
static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  lua_State *L = global_L;
  int top = lua_gettop(L);
  char **matches = NULL;
  lua_pushcfunction(L, l_completions);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    size_t n = lua_rawlen(L, -1);
    if (n > 0 && (matches = calloc(n + 2, sizeof *matches)) != NULL) {
      for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        matches[i + 1] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
      }
      qsort(matches + 1, n, sizeof *matches, compare_strings);
      /* sorted: the common prefix of all is that of the first and last */
      size_t k = 0;
      while (matches[1][k] && matches[1][k] == matches[n][k]) k++;
      matches[0] = strndup(matches[1], k);
    }
  }
  lua_settop(L, top);
  return matches;
}

/* ---- printing results: tensors by tostring, plain tables shallowly ---- */

#define SHOW_DEPTH 2
#define SHOW_ITEMS 40

static void show_value(lua_State *L, int idx, int depth);

/* pushes s in double quotes, escaped */
static void push_quoted(lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '"');
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"' || s[i] == '\\') luaL_addchar(&b, '\\');
    if (s[i] == '\n') luaL_addstring(&b, "\\n");
    else luaL_addchar(&b, s[i]);
  }
  luaL_addchar(&b, '"');
  luaL_pushresult(&b);
}

/* a table with no __tostring or __name of its own: shown as {1, 2, k = v} */
static bool is_plain_table(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return false;
  int t1 = luaL_getmetafield(L, idx, "__tostring");
  if (t1 != LUA_TNIL) lua_pop(L, 1);
  int t2 = luaL_getmetafield(L, idx, "__name");
  if (t2 != LUA_TNIL) lua_pop(L, 1);
  return t1 == LUA_TNIL && t2 == LUA_TNIL;
}

/* appends the value on top (as shown) to the string below it */
static void append_shown(lua_State *L, int depth) {
  show_value(L, lua_gettop(L), depth);
  lua_remove(L, -2); /* the value */
  lua_concat(L, 2);
}

/* pushes "{1, 2, k = v}": the sequence, then the other keys sorted */
static void show_table(lua_State *L, int idx, int depth) {
  if (depth >= SHOW_DEPTH) {
    lua_pushliteral(L, "{...}");
    return;
  }
  luaL_checkstack(L, 8, "table too deep to show");
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
  int shown = 0;
  lua_pushliteral(L, "{");
  int acc = lua_gettop(L);
  for (lua_Integer i = 1; i <= len && shown <= SHOW_ITEMS; i++) {
    if (shown) lua_pushliteral(L, ", ");
    lua_concat(L, shown ? 2 : 1);
    if (shown++ == SHOW_ITEMS) {
      lua_pushliteral(L, "...");
      lua_concat(L, 2);
      break;
    }
    lua_rawgeti(L, idx, i);
    append_shown(L, depth + 1);
  }
  /* the other keys, sorted by their text */
  lua_newtable(L);
  int keys = lua_gettop(L);
  lua_Integer nkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= len) continue;
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, ++nkeys);
  }
  lua_newtable(L); /* text -> key */
  int bytext = lua_gettop(L);
  lua_createtable(L, (int)nkeys, 0);
  int texts = lua_gettop(L);
  for (lua_Integer i = 1; i <= nkeys; i++) {
    lua_rawgeti(L, keys, i);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t kn;
      const char *k = lua_tolstring(L, -1, &kn);
      if (is_identifier(k, kn)) lua_pushvalue(L, -1);
      else {
        lua_pushliteral(L, "[");
        push_quoted(L, k, kn);
        lua_pushliteral(L, "]");
        lua_concat(L, 3);
      }
    } else {
      lua_pushliteral(L, "[");
      luaL_tolstring(L, -2, NULL);
      lua_pushliteral(L, "]");
      lua_concat(L, 3);
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, texts, i);
    lua_insert(L, -2);
    lua_rawset(L, bytext);
  }
  lua_getglobal(L, "table");
  if (lua_istable(L, -1) && lua_getfield(L, -1, "sort") == LUA_TFUNCTION) {
    lua_pushvalue(L, texts);
    lua_call(L, 1, 0);
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  for (lua_Integer i = 1; i <= nkeys && shown <= SHOW_ITEMS; i++) {
    lua_pushvalue(L, acc);
    if (shown) lua_pushliteral(L, ", ");
    lua_concat(L, shown ? 2 : 1);
    if (shown++ == SHOW_ITEMS) {
      lua_pushliteral(L, "...");
      lua_concat(L, 2);
      lua_replace(L, acc);
      break;
    }
    lua_rawgeti(L, texts, i);
    lua_pushliteral(L, " = ");
    lua_concat(L, 3);
    lua_rawgeti(L, texts, i);
    lua_rawget(L, bytext); /* the key */
    lua_rawget(L, idx);    /* its value */
    append_shown(L, depth + 1);
    lua_replace(L, acc);
  }
  lua_settop(L, acc);
  lua_pushliteral(L, "}");
  lua_concat(L, 2);
}

/* pushes the text of the value at idx: tostring, strings quoted in tables */
static void show_value(lua_State *L, int idx, int depth) {
  if (lua_type(L, idx) == LUA_TSTRING && depth > 0) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    push_quoted(L, s, n);
  } else if (is_plain_table(L, idx)) {
    show_table(L, idx, depth);
  } else {
    luaL_tolstring(L, idx, NULL);
  }
}

/* print(...) with plain tables replaced by their display (protected) */
static int l_print_results(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    if (!is_plain_table(L, i)) continue;
    show_table(L, i, 0);
    lua_replace(L, i);
  }
  lua_getglobal(L, "print");
  lua_insert(L, 1);
  lua_call(L, n, 0);
  return 0;
}

static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_pushcfunction(L, l_print_results);
  lua_insert(L, 1);
  if (lua_pcall(L, n, 0, 0) != LUA_OK) {
    fprintf(stderr, "error calling 'print' (%s)\n", lua_tostring(L, -1));
    fflush(stderr);
  }
}

/* ---- the loop ---- */

static void init_editline(lua_State *L) {
  use_editline = isatty(STDIN_FILENO);
  if (!use_editline) return;
  global_L = L;
  rl_readline_name = "dlua";
  /* '.' and ':' stay inside the word so dl.ze<Tab> sees "dl.ze" */
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#";
  rl_attempted_completion_function = complete;
  rl_completion_append_character = '\0';
  stifle_history(HISTORY_MAX);
  const char *home = getenv("HOME");
  if (home && home[0]) {
    snprintf(history_path, sizeof history_path, "%s/.dlua_history", home);
    read_history(history_path);
  }
}

/* help(x) prints dl.help(x); help() says how to use it. A global of the
 * REPL's only, and only when the user has none of that name. */
static const char help_code[] =
  "return function(...)\n"
  "  if select('#', ...) == 0 then\n"
  "    print('help(x) or ?x prints the reference entry of x: a function, class or module of dl, or its name '\n"
  "      .. '(help(dl.nn.Conv2d), ?dl.optim.Adam, help(\"F.relu\")). docs/guide.md is the first hour.')\n"
  "    return\n"
  "  end\n"
  "  print(dl.help((...)))\n"
  "end\n";

static void define_help(lua_State *L) {
  if (lua_getglobal(L, "help") != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, help_code, sizeof help_code - 1, "=help") == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK)
    lua_setglobal(L, "help");
  else
    lua_pop(L, 1);
}

void dlua_repl(lua_State *L) {
  init_editline(L);
  define_help(L);
  in_repl = true;
  int status;
  while ((status = loadline(L)) != -1) {
    if (status == LUA_OK) status = dlua_docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) print_results(L);
    else dlua_report(L, status);
  }
  in_repl = false;
  lua_settop(L, 0);
  fputs("\n", stdout);
  fflush(stdout);
  if (use_editline && history_path[0]) write_history(history_path);
}
