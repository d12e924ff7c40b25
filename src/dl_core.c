/* dl_core.c — dtypes, devices, error messages, shape strings (threads:
 * dl_threads.c). */
#include "dl_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes ---- */

static const size_t dtype_sizes[DL_NDTYPES] = {4, 8, 8, 1, 1};
static const char *const dtype_names[DL_NDTYPES] = {"float32", "float64", "int64", "bool", "uint8"};

size_t dl_dtype_size(dl_dtype dt) { return dtype_sizes[dt]; }
const char *dl_dtype_name(dl_dtype dt) { return dtype_names[dt]; }
bool dl_dtype_is_float(dl_dtype dt) { return dt == DL_FLOAT32 || dt == DL_FLOAT64; }

int dl_dtype_from_name(const char *name, dl_dtype *out) {
  static const struct { const char *name; dl_dtype dt; } aliases[] = {
    {"float32", DL_FLOAT32}, {"float", DL_FLOAT32}, {"float64", DL_FLOAT64},
    {"double", DL_FLOAT64},  {"int64", DL_INT64},   {"long", DL_INT64},
    {"bool", DL_BOOL},       {"uint8", DL_UINT8},   {"byte", DL_UINT8},
  };
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcmp(name, aliases[i].name) == 0) { *out = aliases[i].dt; return 0; }
  return -1;
}

/* rank in PyTorch's lattice: bool < uint8 < int64 < float32 < float64 */
static int dtype_rank(dl_dtype dt) {
  switch (dt) {
  case DL_BOOL: return 0;
  case DL_UINT8: return 1;
  case DL_INT64: return 2;
  case DL_FLOAT32: return 3;
  default: return 4;
  }
}

dl_dtype dl_dtype_promote(dl_dtype a, dl_dtype b) {
  return dtype_rank(a) >= dtype_rank(b) ? a : b;
}

dl_dtype dl_dtype_promote_scalar(dl_dtype dt, dl_scalar s) {
  if (dl_dtype_is_float(dt)) return dt;
  if (!s.is_int) return DL_FLOAT32;
  if (dt == DL_BOOL) return DL_INT64;
  return dt;
}

/* ---- devices ---- */

int dl_device_parse(const char *s, dl_device *out) {
  if (strcmp(s, "cpu") == 0) { out->type = DL_CPU; out->index = 0; return 0; }
  if (strncmp(s, "cuda", 4) == 0) {
    out->type = DL_CUDA;
    out->index = 0;
    if (s[4] == '\0') return 0;
    if (s[4] != ':' || s[5] == '\0') return -1;
    char *end;
    long idx = strtol(s + 5, &end, 10);
    if (*end != '\0' || idx < 0 || idx > 127) return -1;
    out->index = (int8_t)idx;
    return 0;
  }
  return -1;
}

const char *dl_device_str(dl_device d, char *buf, size_t n) {
  if (d.type == DL_CPU) snprintf(buf, n, "cpu");
  else snprintf(buf, n, "cuda:%d", d.index);
  return buf;
}

/* ---- errors ---- */

static _Thread_local char error_buf[512];

void dl_error_set(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_buf, sizeof error_buf, fmt, ap);
  va_end(ap);
}

const char *dl_error_get(void) { return error_buf[0] ? error_buf : "unknown error"; }

void dl_error_prefix(const char *fn) {
  char old[sizeof error_buf];
  snprintf(old, sizeof old, "%s", dl_error_get());
  size_t n = (size_t)snprintf(error_buf, sizeof error_buf, "%s: ", fn);
  if (n < sizeof error_buf) memcpy(error_buf + n, old, strnlen(old, sizeof error_buf - n - 1) + 1);
  error_buf[sizeof error_buf - 1] = 0;
}

const char *dl_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
  size_t used = 0;
  used += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (used < n) snprintf(buf + used, n - used, "]");
  return buf;
}

