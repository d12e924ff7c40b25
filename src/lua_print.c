/* lua_print.c — tostring(t): PyTorch's layout, summarised past 1000
 * elements (3 edge items per dim), one number format per tensor. */
#include "lua_dlua.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SUMMARY_THRESHOLD 1000
#define EDGE_ITEMS 3
#define LINE_WIDTH 80

typedef enum { FMT_INT, FMT_BOOL, FMT_FIXED_INT, FMT_FIXED, FMT_SCI } fmt_kind;

typedef struct {
  fmt_kind kind;
  int width;
  bool summarize;
} formatter;

static bool shown(const dl_tensor *t, const int64_t *idx, bool summarize) {
  if (!summarize) return true;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] > 2 * EDGE_ITEMS && idx[d] >= EDGE_ITEMS && idx[d] < t->shape[d] - EDGE_ITEMS) return false;
  return true;
}

static int format_value(char *buf, size_t n, dl_scalar v, fmt_kind k) {
  double f = v.is_int ? (double)v.i : v.f;
  switch (k) {
  case FMT_INT: return snprintf(buf, n, "%lld", (long long)v.i);
  case FMT_BOOL: return snprintf(buf, n, "%s", v.i ? "True" : "False");
  default: break;
  }
  if (isnan(f)) return snprintf(buf, n, "nan");
  if (isinf(f)) return snprintf(buf, n, f > 0 ? "inf" : "-inf");
  if (k == FMT_FIXED_INT) return snprintf(buf, n, "%.0f.", f);
  if (k == FMT_FIXED) return snprintf(buf, n, "%.4f", f);
  return snprintf(buf, n, "%.4e", f);
}

static void choose_format(const dl_tensor *t, formatter *fm) {
  fm->summarize = t->numel > SUMMARY_THRESHOLD;
  if (t->dtype == DL_BOOL) fm->kind = FMT_BOOL;
  else if (!dl_dtype_is_float(t->dtype)) fm->kind = FMT_INT;
  else {
    bool all_int = true;
    double amax = 0, amin = INFINITY;
    int64_t idx[DL_MAX_DIMS] = {0};
    for (int64_t i = 0; i < t->numel; i++) {
      int64_t r = i;
      for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = r % t->shape[d];
        r /= t->shape[d];
      }
      if (!shown(t, idx, fm->summarize)) continue;
      double f = dl_tensor_get(t, idx).f;
      if (!isfinite(f)) continue;
      if (f != floor(f)) all_int = false;
      double a = fabs(f);
      if (a > amax) amax = a;
      if (a > 0 && a < amin) amin = a;
    }
    if (all_int) fm->kind = amax > 1e8 ? FMT_SCI : FMT_FIXED_INT;
    else if (amax > 1e8 || (amin < 1e-4) || (amin < INFINITY && amax / amin > 1000)) fm->kind = FMT_SCI;
    else fm->kind = FMT_FIXED;
  }
  /* common width */
  fm->width = 1;
  int64_t idx[DL_MAX_DIMS] = {0};
  char buf[64];
  for (int64_t i = 0; i < t->numel; i++) {
    int64_t r = i;
    for (int d = t->ndim - 1; d >= 0; d--) {
      idx[d] = r % t->shape[d];
      r /= t->shape[d];
    }
    if (!shown(t, idx, fm->summarize)) continue;
    int w = format_value(buf, sizeof buf, dl_tensor_get(t, idx), fm->kind);
    if (w > fm->width) fm->width = w;
  }
}

static void add_value(luaL_Buffer *b, const dl_tensor *t, const int64_t *idx, const formatter *fm) {
  char buf[64];
  int w = format_value(buf, sizeof buf, dl_tensor_get(t, idx), fm->kind);
  for (int i = w; i < fm->width; i++) luaL_addchar(b, ' ');
  luaL_addstring(b, buf);
}

static void add_spaces(luaL_Buffer *b, int n) {
  for (int i = 0; i < n; i++) luaL_addchar(b, ' ');
}

static void print_rec(luaL_Buffer *b, const dl_tensor *t, int dim, int64_t *idx, const formatter *fm, int indent) {
  int64_t n = t->shape[dim];
  luaL_addchar(b, '[');
  bool cut = fm->summarize && n > 2 * EDGE_ITEMS;
  if (dim == t->ndim - 1) {
    int per_line = (LINE_WIDTH - indent) / (fm->width + 2);
    if (per_line < 1) per_line = 1;
    int col = 0;
    for (int64_t i = 0; i < n; i++) {
      if (i > 0) {
        luaL_addchar(b, ',');
        if (col >= per_line) {
          luaL_addchar(b, '\n');
          add_spaces(b, indent + 1);
          col = 0;
        } else {
          luaL_addchar(b, ' ');
        }
      }
      if (cut && i == EDGE_ITEMS) {
        luaL_addstring(b, "..., ");
        i = n - EDGE_ITEMS;
      }
      idx[dim] = i;
      add_value(b, t, idx, fm);
      col++;
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      if (cut && i == EDGE_ITEMS) {
        luaL_addstring(b, "\n");
        add_spaces(b, indent + 1);
        luaL_addstring(b, "...,");
        i = n - EDGE_ITEMS;
      }
      if (i > 0) {
        for (int k = 0; k < t->ndim - 1 - dim; k++) luaL_addchar(b, '\n');
        add_spaces(b, indent + 1);
      }
      idx[dim] = i;
      print_rec(b, t, dim + 1, idx, fm, indent + 1);
      if (i < n - 1) luaL_addchar(b, ',');
    }
  }
  luaL_addchar(b, ']');
}

/* Extra text after the values (grad_fn, requires_grad): the autograd layer
 * may provide it. */
const char *dl_autograd_describe(const dl_tensor *t, char *buf, size_t n) __attribute__((weak));

static int l_tostring(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_tensor *h = dl_tensor_to_device(t, dl_device_cpu());
  if (!h) return dlua_engine_error(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  formatter fm;
  if (h->numel == 0) {
    luaL_addstring(&b, "[]");
  } else {
    choose_format(h, &fm);
    int64_t idx[DL_MAX_DIMS] = {0};
    if (h->ndim == 0) add_value(&b, h, idx, &fm);
    else print_rec(&b, h, 0, idx, &fm, 7);
  }
  if (h->numel == 0 && h->ndim != 1) {
    luaL_addstring(&b, ", size=(");
    for (int d = 0; d < h->ndim; d++) {
      lua_pushfstring(L, d ? ", %I" : "%I", (lua_Integer)h->shape[d]);
      luaL_addvalue(&b);
    }
    luaL_addstring(&b, h->ndim == 1 ? ",)" : ")");
  }
  if (dl_tensor_device(t).type != DL_CPU) {
    char dev[32];
    lua_pushfstring(L, ", device='%s'", dl_device_str(dl_tensor_device(t), dev, sizeof dev));
    luaL_addvalue(&b);
  }
  if (t->dtype != DL_FLOAT32 && t->dtype != DL_INT64 && t->dtype != DL_BOOL) {
    lua_pushfstring(L, ", dtype=%s", dl_dtype_name(t->dtype));
    luaL_addvalue(&b);
  }
  char extra[128];
  if (dl_autograd_describe && dl_autograd_describe(t, extra, sizeof extra)) luaL_addstring(&b, extra);
  else if (t->requires_grad) luaL_addstring(&b, ", requires_grad=True");
  luaL_addchar(&b, ')');
  dl_tensor_release(h);
  luaL_pushresult(&b);
  return 1;
}

static const luaL_Reg meta[] = {{"__tostring", l_tostring}, {NULL, NULL}};
static const luaL_Reg methods[] = {{"tostring", l_tostring}, {NULL, NULL}};

void dlua_open_print(lua_State *L) {
  dlua_register_meta(L, meta);
  dlua_register(L, methods, NULL);
}
