/* lua_print.c — tostring(t) as PyTorch's repr (torch/_tensor_str.py):
 * one number format per tensor, summarised past `threshold` elements with
 * `edgeitems` per dim, lines wrapped at `linewidth`, suffixes for device,
 * dtype and autograd state; dl.set_printoptions / dl.get_printoptions. */
#include "lua_dlua.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- options (process-wide, as PyTorch's PRINT_OPTS) ---- */

typedef struct {
  int precision;
  double threshold; /* may be inf ("full" profile) */
  int edgeitems;
  int linewidth;
  int sci_mode; /* -1: chosen per tensor, 0: never, 1: always */
} print_options;

#define DEFAULT_OPTIONS {4, 1000, 3, 80, -1}
static print_options opts = DEFAULT_OPTIONS;

#define INDENT 7 /* strlen("tensor(") */
#define VALUE_BUF 400 /* fits any double in %.20f */

/* ---- the formatter: picks a format and a width from the shown values ---- */

typedef struct {
  bool floating, is_bool;
  bool int_mode, sci_mode;
  int width;
} formatter;

static int format_value(char *buf, dl_scalar v, const formatter *fm) {
  int n;
  if (fm->is_bool) n = snprintf(buf, VALUE_BUF, "%s", v.i ? "True" : "False");
  else if (!fm->floating) n = snprintf(buf, VALUE_BUF, "%lld", (long long)v.i);
  else if (isnan(v.f)) n = snprintf(buf, VALUE_BUF, "nan"); /* never "-nan" */
  else if (isinf(v.f)) n = snprintf(buf, VALUE_BUF, v.f > 0 ? "inf" : "-inf");
  else if (fm->sci_mode) n = snprintf(buf, VALUE_BUF, "%.*e", opts.precision, v.f);
  else if (fm->int_mode) n = snprintf(buf, VALUE_BUF, "%.0f.", v.f);
  else n = snprintf(buf, VALUE_BUF, "%.*f", opts.precision, v.f);
  return n < VALUE_BUF ? n : VALUE_BUF - 1;
}

/* Calls fn on every element the summary shows (all when !summarize). */
typedef void (*visit_fn)(void *ctx, dl_scalar v);

static void visit(const dl_tensor *t, int d, int64_t *idx, bool summarize, visit_fn fn, void *ctx) {
  if (d == t->ndim) {
    fn(ctx, dl_tensor_get(t, idx));
    return;
  }
  int64_t n = t->shape[d];
  bool cut = summarize && n > 2 * (int64_t)opts.edgeitems;
  for (int64_t i = 0; i < n; i++) {
    if (cut && i == opts.edgeitems) i = n - opts.edgeitems;
    idx[d] = i;
    visit(t, d + 1, idx, summarize, fn, ctx);
  }
}

typedef struct {
  formatter *fm;
  bool any;
  double amin, amax;
} float_stats;

static void int_width(void *ctx, dl_scalar v) {
  formatter *fm = ctx;
  char buf[VALUE_BUF];
  int w = format_value(buf, v, fm);
  if (w > fm->width) fm->width = w;
}

/* nonzero finite values decide the mode: integral? range? */
static void float_scan(void *ctx, dl_scalar v) {
  float_stats *s = ctx;
  if (v.f == 0 || !isfinite(v.f)) return;
  double a = fabs(v.f);
  if (!s->any || a < s->amin) s->amin = a;
  if (!s->any || a > s->amax) s->amax = a;
  s->any = true;
  if (v.f != ceil(v.f)) s->fm->int_mode = false;
}

static void float_width(void *ctx, dl_scalar v) {
  if (v.f == 0 || !isfinite(v.f)) return;
  int_width(ctx, v);
}

static void formatter_init(formatter *fm, const dl_tensor *t, bool summarize) {
  int64_t idx[DL_MAX_DIMS] = {0};
  memset(fm, 0, sizeof *fm);
  fm->floating = dl_dtype_is_float(t->dtype);
  fm->is_bool = t->dtype == DL_BOOL;
  fm->int_mode = true;
  fm->width = 1;
  if (!fm->floating) {
    visit(t, 0, idx, summarize, int_width, fm);
    return;
  }
  float_stats s = {fm, false, 0, 0};
  visit(t, 0, idx, summarize, float_scan, &s);
  if (!s.any) return;
  bool wide = s.amax / s.amin > 1000.0 || s.amax > 1.0e8;
  fm->sci_mode = fm->int_mode ? wide : wide || s.amin < 1.0e-4;
  /* widths in the chosen mode; int mode counts the trailing dot */
  visit(t, 0, idx, summarize, float_width, fm);
  if (opts.sci_mode >= 0) fm->sci_mode = opts.sci_mode;
}

/* ---- layout ---- */

static void add_spaces(luaL_Buffer *b, int n) {
  for (int i = 0; i < n; i++) luaL_addchar(b, ' ');
}

static void add_value(luaL_Buffer *b, dl_scalar v, const formatter *fm) {
  char buf[VALUE_BUF];
  int n = format_value(buf, v, fm);
  add_spaces(b, fm->width - n);
  luaL_addlstring(b, buf, (size_t)n);
}

/* A 1-D run: elements (and " ..." when cut) in lines of a fixed count. */
static void add_vector(luaL_Buffer *b, const dl_tensor *t, int64_t *idx, const formatter *fm, bool summarize,
                       int indent) {
  int d = t->ndim - 1;
  int64_t n = t->shape[d];
  bool cut = summarize && n > 2 * (int64_t)opts.edgeitems;
  int per_line = (opts.linewidth - indent) / (fm->width + 2);
  if (per_line < 1) per_line = 1;
  int col = 0;
  luaL_addchar(b, '[');
  for (int64_t i = 0; i < n; i++) {
    bool dots = cut && i == opts.edgeitems;
    if (i > 0) {
      luaL_addchar(b, ',');
      if (col == per_line) {
        luaL_addchar(b, '\n');
        add_spaces(b, indent + 1);
        col = 0;
      } else {
        luaL_addchar(b, ' ');
      }
    }
    if (dots) {
      luaL_addstring(b, " ..."); /* an element of its own, as in PyTorch */
      col++;
      i = n - opts.edgeitems - 1;
      continue;
    }
    idx[d] = i;
    add_value(b, dl_tensor_get(t, idx), fm);
    col++;
  }
  luaL_addchar(b, ']');
}

static void add_slices(luaL_Buffer *b, const dl_tensor *t, int d, int64_t *idx, const formatter *fm,
                       bool summarize, int indent) {
  if (d == t->ndim - 1) {
    add_vector(b, t, idx, fm, summarize, indent);
    return;
  }
  int64_t n = t->shape[d];
  bool cut = summarize && n > 2 * (int64_t)opts.edgeitems;
  int sub_dim = t->ndim - d; /* dims of the slice being joined */
  luaL_addchar(b, '[');
  for (int64_t i = 0; i < n; i++) {
    if (i > 0) {
      luaL_addchar(b, ',');
      for (int k = 0; k < sub_dim - 1; k++) luaL_addchar(b, '\n');
      add_spaces(b, indent + 1);
    }
    if (cut && i == opts.edgeitems) {
      luaL_addstring(b, "...");
      i = n - opts.edgeitems - 1;
      continue;
    }
    idx[d] = i;
    add_slices(b, t, d + 1, idx, fm, summarize, indent + 1);
  }
  luaL_addchar(b, ']');
}

/* ---- suffixes: wrapped onto a new line past linewidth ---- */

typedef struct {
  int last_line; /* PyTorch counts the characters after the last newline, plus 2 */
} suffix_state;

static void add_suffix(luaL_Buffer *b, suffix_state *s, const char *suffix) {
  int n = (int)strlen(suffix);
  if (s->last_line + n + 2 > opts.linewidth) {
    luaL_addstring(b, ",\n");
    add_spaces(b, INDENT);
    s->last_line = INDENT + n;
  } else {
    luaL_addstring(b, ", ");
    s->last_line += n + 2;
  }
  luaL_addlstring(b, suffix, (size_t)n);
}

static void add_suffixes(luaL_Buffer *b, const dl_tensor *t) {
  size_t len = luaL_bufflen(b);
  const char *s = luaL_buffaddr(b);
  size_t line = len;
  for (size_t i = len; i > 0; i--)
    if (s[i - 1] == '\n') {
      line = len - i;
      break;
    }
  suffix_state st = {(int)line + 2};
  char text[160];
  if (dl_tensor_device(t).type != DL_CPU) {
    char dev[32];
    snprintf(text, sizeof text, "device='%s'", dl_device_str(dl_tensor_device(t), dev, sizeof dev));
    add_suffix(b, &st, text);
  }
  if (t->numel == 0) {
    if (t->ndim != 1) {
      int k = snprintf(text, sizeof text, "size=(");
      for (int d = 0; d < t->ndim && k < (int)sizeof text; d++)
        k += snprintf(text + k, sizeof text - (size_t)k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
      if (k < (int)sizeof text) snprintf(text + k, sizeof text - (size_t)k, ")");
      add_suffix(b, &st, text);
    }
    if (t->dtype != DL_FLOAT32) {
      snprintf(text, sizeof text, "dtype=%s", dl_dtype_name(t->dtype));
      add_suffix(b, &st, text);
    }
  } else if (t->dtype != DL_FLOAT32 && t->dtype != DL_INT64 && t->dtype != DL_BOOL) {
    snprintf(text, sizeof text, "dtype=%s", dl_dtype_name(t->dtype));
    add_suffix(b, &st, text);
  }
  const char *extra = dlua_autograd_describe(t, text, sizeof text);
  if (extra && extra[0]) {
    if (strncmp(extra, ", ", 2) == 0) extra += 2;
    add_suffix(b, &st, extra);
  } else if (t->requires_grad) {
    add_suffix(b, &st, "requires_grad=True");
  }
}

/* ---- tostring ---- */

static int l_tostring(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_tensor *h = dl_tensor_to_device(t, dl_device_cpu());
  if (!h) return dlua_engine_error(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  if (h->numel == 0) {
    luaL_addstring(&b, "[]");
  } else {
    bool summarize = (double)h->numel > opts.threshold;
    formatter fm;
    formatter_init(&fm, h, summarize);
    int64_t idx[DL_MAX_DIMS] = {0};
    if (h->ndim == 0) add_value(&b, dl_tensor_get(h, idx), &fm);
    else add_slices(&b, h, 0, idx, &fm, summarize, INDENT);
  }
  add_suffixes(&b, t);
  luaL_addchar(&b, ')');
  dl_tensor_release(h);
  luaL_pushresult(&b);
  return 1;
}

/* ---- print options ---- */

static int opt_int(lua_State *L, const char *key, int def, int lo, int hi) {
  if (lua_getfield(L, 1, key) == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint || v < lo || v > hi)
    luaL_error(L, "dl.set_printoptions: option '%s' must be an integer in [%d, %d]", key, lo, hi);
  lua_pop(L, 1);
  return (int)v;
}

/* dl.set_printoptions{precision, threshold, edgeitems, linewidth, profile,
 * sci_mode}: like torch.set_printoptions, an absent sci_mode goes back to
 * automatic. */
static int l_set_printoptions(lua_State *L) {
  static const char *const allowed[] = {"precision", "threshold", "edgeitems", "linewidth",
                                        "profile",   "sci_mode",  NULL};
  if (lua_isnoneornil(L, 1)) { /* set_printoptions(): back to automatic sci_mode only */
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  dlua_checkoptions(L, 1, "dl.set_printoptions", allowed);
  print_options o = opts;
  lua_getfield(L, 1, "profile");
  if (!lua_isnil(L, -1)) {
    const char *p = lua_tostring(L, -1);
    print_options def = DEFAULT_OPTIONS;
    if (lua_type(L, -1) != LUA_TSTRING) p = "";
    if (strcmp(p, "default") == 0) o = def;
    else if (strcmp(p, "short") == 0) o.precision = 2, o.threshold = 1000, o.edgeitems = 2, o.linewidth = 80;
    else if (strcmp(p, "full") == 0) o.precision = 4, o.threshold = HUGE_VAL, o.edgeitems = 3, o.linewidth = 80;
    else return luaL_error(L, "dl.set_printoptions: profile must be 'default', 'short' or 'full'");
  }
  lua_pop(L, 1);
  o.precision = opt_int(L, "precision", o.precision, 0, 20);
  o.edgeitems = opt_int(L, "edgeitems", o.edgeitems, 1, 1 << 20);
  o.linewidth = opt_int(L, "linewidth", o.linewidth, 1, 1 << 20);
  if (lua_getfield(L, 1, "threshold") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
      return luaL_error(L, "dl.set_printoptions: option 'threshold' must be a number >= 0");
    o.threshold = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  int sci = lua_getfield(L, 1, "sci_mode");
  if (sci != LUA_TNIL && sci != LUA_TBOOLEAN)
    return luaL_error(L, "dl.set_printoptions: option 'sci_mode' must be a boolean or nil");
  o.sci_mode = sci == LUA_TNIL ? -1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  opts = o;
  return 0;
}

static int l_get_printoptions(lua_State *L) {
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, opts.precision);
  lua_setfield(L, -2, "precision");
  if (opts.threshold == floor(opts.threshold) && opts.threshold < 1e15) lua_pushinteger(L, (lua_Integer)opts.threshold);
  else lua_pushnumber(L, opts.threshold);
  lua_setfield(L, -2, "threshold");
  lua_pushinteger(L, opts.edgeitems);
  lua_setfield(L, -2, "edgeitems");
  lua_pushinteger(L, opts.linewidth);
  lua_setfield(L, -2, "linewidth");
  if (opts.sci_mode >= 0) {
    lua_pushboolean(L, opts.sci_mode);
    lua_setfield(L, -2, "sci_mode");
  }
  return 1;
}

static const luaL_Reg meta[] = {{"__tostring", l_tostring}, {NULL, NULL}};
static const luaL_Reg methods[] = {{"tostring", l_tostring}, {NULL, NULL}};
static const luaL_Reg functions[] = {
  {"set_printoptions", l_set_printoptions},
  {"get_printoptions", l_get_printoptions},
  {NULL, NULL},
};

void dlua_open_print(lua_State *L) {
  dlua_register_meta(L, meta);
  dlua_register(L, methods, functions);
}
