/* dl_npy.c — see dl_npy.h. The header is a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } which is
 * parsed by a small strict scanner (never evaluated). */
#include "dl_npy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dl_npy.c assumes a little-endian host"
#endif

static const char *descr_of(dl_dtype dt) {
  switch (dt) {
  case DL_FLOAT32: return "<f4";
  case DL_FLOAT64: return "<f8";
  case DL_INT64: return "<i8";
  case DL_UINT8: return "|u1";
  case DL_BOOL: return "|b1";
  default: return NULL;
  }
}

char *dl_npy_header(const dl_tensor *t, size_t *len) {
  const char *descr = descr_of(t->dtype);
  if (!descr) {
    dl_error_set("save: dtype %s cannot be written to .npy", dl_dtype_name(t->dtype));
    return NULL;
  }
  char dict[512];
  int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int d = 0; d < t->ndim; d++)
    k += snprintf(dict + k, sizeof dict - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
  /* a 1-tuple needs its comma, as Python's repr writes it */
  if (t->ndim == 1) k += snprintf(dict + k, sizeof dict - k, ",");
  k += snprintf(dict + k, sizeof dict - k, "), }");
  /* version 1.0 holds a 2-byte length; 2.0 a 4-byte one (never needed for
   * DL_MAX_DIMS dims, kept for the format's sake) */
  int major = k + 1 + 10 > 65535 ? 2 : 1;
  size_t pre = major == 1 ? 10 : 12;
  size_t total = (pre + (size_t)k + 1 + 63) / 64 * 64;
  char *h = malloc(total);
  if (!h) {
    dl_error_set("save: out of memory");
    return NULL;
  }
  size_t hl = total - pre;
  memcpy(h, DL_NPY_MAGIC, 6);
  h[6] = (char)major;
  h[7] = 0;
  if (major == 1) {
    h[8] = (char)(hl & 0xff);
    h[9] = (char)(hl >> 8);
  } else {
    for (int i = 0; i < 4; i++) h[8 + i] = (char)((hl >> (8 * i)) & 0xff);
  }
  memcpy(h + pre, dict, (size_t)k);
  memset(h + pre + k, ' ', total - pre - k - 1);
  h[total - 1] = '\n';
  *len = total;
  return h;
}

/* ---- header dict scanner ---- */

typedef struct {
  const char *p, *end;
  const char *name;
} scan;

static void skip_ws(scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int expect(scan *s, char c) {
  skip_ws(s);
  if (s->p >= s->end || *s->p != c) {
    dl_error_set("load: %s: bad npy header: expected '%c' in the header dict", s->name, c);
    return -1;
  }
  s->p++;
  return 0;
}

/* a quoted Python string without escapes, copied into out (cap bytes) */
static int scan_str(scan *s, char *out, size_t cap) {
  skip_ws(s);
  if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) {
    dl_error_set("load: %s: bad npy header: expected a quoted string", s->name);
    return -1;
  }
  char q = *s->p++;
  size_t n = 0;
  while (s->p < s->end && *s->p != q) {
    if (*s->p == '\\' || n + 1 >= cap) {
      dl_error_set("load: %s: bad npy header: unexpected string", s->name);
      return -1;
    }
    out[n++] = *s->p++;
  }
  if (s->p >= s->end) {
    dl_error_set("load: %s: bad npy header: unterminated string", s->name);
    return -1;
  }
  s->p++;
  out[n] = 0;
  return 0;
}

static int scan_word(scan *s, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(s->end - s->p) >= n && memcmp(s->p, w, n) == 0) {
    s->p += n;
    return 1;
  }
  return 0;
}

static int scan_shape(scan *s, int64_t *shape, int *ndim) {
  if (expect(s, '(') != 0) return -1;
  *ndim = 0;
  for (;;) {
    skip_ws(s);
    if (s->p < s->end && *s->p == ')') break;
    if (s->p >= s->end || !isdigit((unsigned char)*s->p)) {
      dl_error_set("load: %s: bad npy header: shape must be a tuple of non-negative integers", s->name);
      return -1;
    }
    int64_t v = 0;
    while (s->p < s->end && isdigit((unsigned char)*s->p)) {
      if (v > (INT64_MAX - 9) / 10) {
        dl_error_set("load: %s: bad npy header: shape dimension too large", s->name);
        return -1;
      }
      v = v * 10 + (*s->p++ - '0');
    }
    if (s->p < s->end && *s->p == 'L') s->p++;
    if (*ndim >= DL_MAX_DIMS) {
      dl_error_set("load: %s: bad npy header: more than %d dimensions", s->name, DL_MAX_DIMS);
      return -1;
    }
    shape[(*ndim)++] = v;
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
      s->p++;
      continue;
    }
    skip_ws(s);
    if (s->p >= s->end || *s->p != ')') {
      dl_error_set("load: %s: bad npy header: bad shape tuple", s->name);
      return -1;
    }
  }
  s->p++;
  return 0;
}

static void swap_bytes(unsigned char *p, int64_t count, size_t es) {
  for (int64_t i = 0; i < count; i++, p += es)
    for (size_t a = 0, b = es - 1; a < b; a++, b--) {
      unsigned char t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
}

dl_tensor *dl_npy_parse(const char *name, const unsigned char *buf, size_t n) {
  if (n < 10 || memcmp(buf, DL_NPY_MAGIC, 6) != 0) {
    dl_error_set("load: %s: not an npy file (%s)", name, n < 10 ? "truncated header" : "bad magic");
    return NULL;
  }
  int major = buf[6];
  size_t pre, hl;
  if (major == 1) {
    pre = 10;
    hl = (size_t)buf[8] | ((size_t)buf[9] << 8);
  } else if (major == 2 || major == 3) {
    if (n < 12) {
      dl_error_set("load: %s: truncated npy header", name);
      return NULL;
    }
    pre = 12;
    hl = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
  } else {
    dl_error_set("load: %s: unsupported npy format version %d.%d", name, major, buf[7]);
    return NULL;
  }
  if (hl > n - pre) {
    dl_error_set("load: %s: truncated npy header (header length %zu, file has %zu bytes after the preamble)", name,
                 hl, n - pre);
    return NULL;
  }
  scan s = {(const char *)buf + pre, (const char *)buf + pre + hl, name};
  char descr[16] = "";
  int fortran = -1, have_shape = 0, ndim = 0;
  int64_t shape[DL_MAX_DIMS];
  if (expect(&s, '{') != 0) return NULL;
  for (;;) {
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') break;
    char key[32];
    if (scan_str(&s, key, sizeof key) != 0 || expect(&s, ':') != 0) return NULL;
    skip_ws(&s);
    if (strcmp(key, "descr") == 0 && !descr[0]) {
      if (scan_str(&s, descr, sizeof descr) != 0) return NULL;
      if (!descr[0]) descr[0] = '?', descr[1] = 0;
    } else if (strcmp(key, "fortran_order") == 0 && fortran < 0) {
      if (scan_word(&s, "True")) fortran = 1;
      else if (scan_word(&s, "False")) fortran = 0;
      else {
        dl_error_set("load: %s: bad npy header: fortran_order must be True or False", name);
        return NULL;
      }
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      if (scan_shape(&s, shape, &ndim) != 0) return NULL;
      have_shape = 1;
    } else {
      dl_error_set("load: %s: bad npy header: unexpected or repeated key '%s'", name, key);
      return NULL;
    }
    skip_ws(&s);
    if (s.p < s.end && *s.p == ',') {
      s.p++;
      continue;
    }
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '}') {
      dl_error_set("load: %s: bad npy header: expected ',' or '}' in the header dict", name);
      return NULL;
    }
  }
  s.p++;
  skip_ws(&s);
  if (s.p != s.end) {
    dl_error_set("load: %s: bad npy header: trailing bytes after the header dict", name);
    return NULL;
  }
  if (!descr[0] || fortran < 0 || !have_shape) {
    dl_error_set("load: %s: bad npy header: missing key '%s'", name,
                 !descr[0] ? "descr" : fortran < 0 ? "fortran_order" : "shape");
    return NULL;
  }
  /* descr: byte order, kind, size */
  static const struct {
    const char *code;
    dl_dtype dt;
  } kinds[] = {{"f4", DL_FLOAT32}, {"f8", DL_FLOAT64}, {"i8", DL_INT64}, {"u1", DL_UINT8}, {"b1", DL_BOOL}};
  char order = descr[0];
  int found = -1;
  if (strchr("<>|=", order) && order)
    for (int i = 0; i < 5; i++)
      if (strcmp(descr + 1, kinds[i].code) == 0) found = i;
  if (found < 0) {
    dl_error_set("load: %s: unsupported npy dtype '%s' (expected <f4, <f8, <i8, |u1 or |b1)", name, descr);
    return NULL;
  }
  dl_dtype dt = kinds[found].dt;
  size_t es = dl_dtype_size(dt);
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++)
    if (__builtin_mul_overflow(numel, shape[d], &numel)) {
      dl_error_set("load: %s: npy shape too large", name);
      return NULL;
    }
  size_t data = n - pre - hl;
  int64_t nbytes;
  if (__builtin_mul_overflow(numel, (int64_t)es, &nbytes) || (uint64_t)nbytes != data) {
    char b[160];
    dl_error_set("load: %s: npy data size mismatch: shape %s of %s needs %s bytes, the file holds %zu", name,
                 dl_shape_str(shape, ndim, b, sizeof b), dl_dtype_name(dt),
                 nbytes < 0 || numel < 0 ? "too many" : "a different number of", data);
    return NULL;
  }
  /* Fortran order: read as the reversed shape in C order, then transpose */
  int64_t rshape[DL_MAX_DIMS];
  for (int d = 0; d < ndim; d++) rshape[d] = fortran ? shape[ndim - 1 - d] : shape[d];
  dl_tensor *t = dl_tensor_empty(rshape, ndim, dt, dl_device_cpu());
  if (!t) return NULL;
  unsigned char *p = dl_tensor_data(t);
  if (nbytes) memcpy(p, buf + pre + hl, (size_t)nbytes);
  if (order == '>' && es > 1) swap_bytes(p, numel, es);
  if (dt == DL_BOOL)
    for (int64_t i = 0; i < numel; i++) p[i] = p[i] != 0;
  if (fortran && ndim > 1) {
    int perm[DL_MAX_DIMS];
    for (int d = 0; d < ndim; d++) perm[d] = ndim - 1 - d;
    dl_tensor *v = dl_tensor_permute(t, perm, ndim);
    dl_tensor_release(t);
    if (!v) return NULL;
    t = dl_tensor_contiguous(v);
    dl_tensor_release(v);
  }
  return t;
}
