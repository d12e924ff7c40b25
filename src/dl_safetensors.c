/* dl_safetensors.c — see dl_safetensors.h. The JSON header is read by a
 * small strict parser for exactly the shape the format allows. */
#include "dl_safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dl_safetensors.c assumes a little-endian host"
#endif

static const struct {
  const char *name;
  dl_dtype dt;
} st_dtypes[] = {{"F32", DL_FLOAT32}, {"F64", DL_FLOAT64}, {"I64", DL_INT64}, {"U8", DL_UINT8}, {"BOOL", DL_BOOL}};

static const char *st_dtype_name(dl_dtype dt) {
  for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
    if (st_dtypes[i].dt == dt) return st_dtypes[i].name;
  return NULL;
}

/* ---- writing ---- */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->cap ? b->cap * 2 : 256);
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_str(sbuf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char e[8];
    if (*c == '"' || *c == '\\') {
      e[0] = '\\', e[1] = (char)*c;
      sb_put(b, e, 2);
    } else if (*c < 0x20) {
      snprintf(e, sizeof e, "\\u%04x", *c);
      sb_put(b, e, 6);
    } else {
      sb_put(b, (const char *)c, 1);
    }
  }
  sb_put(b, "\"", 1);
}

char *dl_st_header(const char *const *names, dl_tensor *const *ts, int64_t n, const char *const *meta,
                   int64_t nmeta, size_t *len, uint64_t *data_len) {
  sbuf b = {0};
  sb_put(&b, "\0\0\0\0\0\0\0\0", 8);
  sb_str(&b, "{");
  int first = 1;
  if (nmeta > 0) {
    sb_str(&b, "\"__metadata__\":{");
    for (int64_t i = 0; i < nmeta; i++) {
      if (i) sb_str(&b, ",");
      sb_json_str(&b, meta[2 * i]);
      sb_str(&b, ":");
      sb_json_str(&b, meta[2 * i + 1]);
    }
    sb_str(&b, "}");
    first = 0;
  }
  uint64_t off = 0;
  for (int64_t i = 0; i < n; i++) {
    const char *dn = st_dtype_name(ts[i]->dtype);
    if (!dn) {
      free(b.p);
      dl_error_set("save: dtype %s cannot be written to safetensors", dl_dtype_name(ts[i]->dtype));
      return NULL;
    }
    char num[64];
    if (!first) sb_str(&b, ",");
    first = 0;
    sb_json_str(&b, names[i]);
    sb_str(&b, ":{\"dtype\":\"");
    sb_str(&b, dn);
    sb_str(&b, "\",\"shape\":[");
    for (int d = 0; d < ts[i]->ndim; d++) {
      snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)ts[i]->shape[d]);
      sb_str(&b, num);
    }
    uint64_t nb = (uint64_t)ts[i]->numel * dl_dtype_size(ts[i]->dtype);
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
             (unsigned long long)(off + nb));
    sb_str(&b, num);
    off += nb;
  }
  sb_str(&b, "}");
  /* pad so the data starts 8-byte aligned, as the reference writer does */
  while (!b.oom && b.n % 8) sb_put(&b, " ", 1);
  if (b.oom) {
    free(b.p);
    dl_error_set("save: out of memory");
    return NULL;
  }
  uint64_t hl = b.n - 8;
  for (int i = 0; i < 8; i++) b.p[i] = (char)((hl >> (8 * i)) & 0xff);
  *len = b.n;
  *data_len = off;
  return b.p;
}

/* ---- JSON header parsing ---- */

typedef struct {
  const char *p, *end;
  const char *name;
} js;

static int jfail(js *j, const char *what) {
  dl_error_set("load: %s: bad safetensors header: %s", j->name, what);
  return -1;
}

static void jws(js *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int jexpect(js *j, char c) {
  jws(j);
  if (j->p >= j->end || *j->p != c) {
    char msg[48];
    snprintf(msg, sizeof msg, "invalid JSON (expected '%c')", c);
    return jfail(j, msg);
  }
  j->p++;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_hex4(js *j, unsigned *u) {
  if (j->end - j->p < 4) return -1;
  *u = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(j->p[i]);
    if (h < 0) return -1;
    *u = *u * 16 + (unsigned)h;
  }
  j->p += 4;
  return 0;
}

/* a JSON string, decoded to a malloc'd UTF-8 C string (no NUL inside) */
static char *jstring(js *j) {
  jws(j);
  if (j->p >= j->end || *j->p != '"') {
    jfail(j, "invalid JSON (expected a string)");
    return NULL;
  }
  j->p++;
  sbuf b = {0};
  for (;;) {
    if (j->p >= j->end) {
      free(b.p);
      jfail(j, "invalid JSON (unterminated string)");
      return NULL;
    }
    unsigned char c = (unsigned char)*j->p++;
    if (c == '"') break;
    if (c < 0x20) {
      free(b.p);
      jfail(j, "invalid JSON (control character in a string)");
      return NULL;
    }
    if (c != '\\') {
      sb_put(&b, (const char *)&c, 1);
      continue;
    }
    if (j->p >= j->end) break;
    char e = *j->p++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (simple && e) {
      static const char out[] = "\"\\/\b\f\n\r\t";
      sb_put(&b, &out[simple - "\"\\/bfnrt"], 1);
      continue;
    }
    unsigned u;
    if (e != 'u' || read_hex4(j, &u) != 0) {
      free(b.p);
      jfail(j, "invalid JSON (bad escape in a string)");
      return NULL;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
      unsigned lo;
      if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || (j->p += 2, read_hex4(j, &lo) != 0) ||
          lo < 0xDC00 || lo > 0xDFFF) {
        free(b.p);
        jfail(j, "invalid JSON (bad surrogate pair)");
        return NULL;
      }
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    } else if ((u >= 0xDC00 && u <= 0xDFFF) || u == 0) {
      free(b.p);
      jfail(j, "invalid JSON (bad \\u escape)");
      return NULL;
    }
    char o[4];
    int k;
    if (u < 0x80) o[0] = (char)u, k = 1;
    else if (u < 0x800) o[0] = (char)(0xC0 | (u >> 6)), o[1] = (char)(0x80 | (u & 0x3F)), k = 2;
    else if (u < 0x10000)
      o[0] = (char)(0xE0 | (u >> 12)), o[1] = (char)(0x80 | ((u >> 6) & 0x3F)), o[2] = (char)(0x80 | (u & 0x3F)), k = 3;
    else
      o[0] = (char)(0xF0 | (u >> 18)), o[1] = (char)(0x80 | ((u >> 12) & 0x3F)),
      o[2] = (char)(0x80 | ((u >> 6) & 0x3F)), o[3] = (char)(0x80 | (u & 0x3F)), k = 4;
    sb_put(&b, o, (size_t)k);
  }
  sb_put(&b, "", 0);
  if (b.oom || !b.p) {
    /* empty string: b.p may be NULL */
    if (!b.oom) {
      char *s = calloc(1, 1);
      if (s) return s;
    }
    free(b.p);
    jfail(j, "out of memory");
    return NULL;
  }
  b.p[b.n] = 0;
  return b.p;
}

/* a non-negative JSON integer */
static int juint(js *j, int64_t *v, const char *what) {
  jws(j);
  char msg[160];
  if (j->p < j->end && *j->p == '-') {
    snprintf(msg, sizeof msg, "negative value in %s", what);
    return jfail(j, msg);
  }
  if (j->p >= j->end || *j->p < '0' || *j->p > '9') {
    snprintf(msg, sizeof msg, "%s must hold non-negative integers", what);
    return jfail(j, msg);
  }
  int64_t x = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    if (x > (INT64_MAX - 9) / 10) {
      snprintf(msg, sizeof msg, "integer too large in %s", what);
      return jfail(j, msg);
    }
    x = x * 10 + (*j->p++ - '0');
  }
  if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) {
    snprintf(msg, sizeof msg, "%s must hold integers", what);
    return jfail(j, msg);
  }
  *v = x;
  return 0;
}

/* [a, b, ...] of non-negative integers, at most max of them */
static int jintlist(js *j, int64_t *out, int max, int *count, const char *what) {
  if (jexpect(j, '[') != 0) return -1;
  *count = 0;
  jws(j);
  if (j->p < j->end && *j->p == ']') {
    j->p++;
    return 0;
  }
  for (;;) {
    if (*count >= max) {
      char msg[160];
      snprintf(msg, sizeof msg, "too many entries in %s", what);
      return jfail(j, msg);
    }
    if (juint(j, &out[(*count)++], what) != 0) return -1;
    jws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    return jexpect(j, ']');
  }
}

typedef struct {
  char *name;
  dl_dtype dt;
  int ndim;
  int64_t shape[DL_MAX_DIMS];
  int64_t begin, end;
} st_entry;

static int parse_entry(js *j, st_entry *e) {
  int have_dt = 0, have_shape = 0, have_off = 0;
  if (jexpect(j, '{') != 0) return -1;
  jws(j);
  if (j->p < j->end && *j->p == '}') return jfail(j, "tensor entry without dtype, shape and data_offsets");
  for (;;) {
    char *key = jstring(j);
    if (!key) return -1;
    if (jexpect(j, ':') != 0) {
      free(key);
      return -1;
    }
    int rc = 0;
    if (strcmp(key, "dtype") == 0 && !have_dt) {
      char *v = jstring(j);
      if (!v) rc = -1;
      else {
        int f = -1;
        for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
          if (strcmp(v, st_dtypes[i].name) == 0) f = (int)i;
        if (f < 0) {
          char msg[160];
          snprintf(msg, sizeof msg, "unsupported dtype \"%.40s\" (expected F32, F64, I64, U8 or BOOL)", v);
          rc = jfail(j, msg);
        } else {
          e->dt = st_dtypes[f].dt;
        }
        free(v);
      }
      have_dt = 1;
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      rc = jintlist(j, e->shape, DL_MAX_DIMS, &e->ndim, "shape");
      have_shape = 1;
    } else if (strcmp(key, "data_offsets") == 0 && !have_off) {
      int64_t off[2];
      int c;
      rc = jintlist(j, off, 2, &c, "data_offsets");
      if (rc == 0 && c != 2) rc = jfail(j, "data_offsets must be [begin, end]");
      e->begin = off[0], e->end = off[1];
      have_off = 1;
    } else {
      char msg[160];
      snprintf(msg, sizeof msg, "unexpected or repeated key \"%.40s\" in a tensor entry", key);
      rc = jfail(j, msg);
    }
    free(key);
    if (rc != 0) return -1;
    jws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (jexpect(j, '}') != 0) return -1;
    break;
  }
  if (!have_dt || !have_shape || !have_off)
    return jfail(j, !have_dt ? "tensor entry without dtype" : !have_shape ? "tensor entry without shape"
                                                                       : "tensor entry without data_offsets");
  return 0;
}

static int parse_meta(js *j, dl_st_file *f, size_t *cap) {
  if (jexpect(j, '{') != 0) return -1;
  jws(j);
  if (j->p < j->end && *j->p == '}') {
    j->p++;
    return 0;
  }
  for (;;) {
    char *k = jstring(j);
    if (!k) return -1;
    char *v = NULL;
    if (jexpect(j, ':') != 0 || !(v = jstring(j))) {
      free(k);
      return -1;
    }
    if ((size_t)(2 * f->nmeta + 2) > *cap) {
      size_t nc = *cap ? *cap * 2 : 8;
      char **m = realloc(f->meta, nc * sizeof *m);
      if (!m) {
        free(k), free(v);
        return jfail(j, "out of memory");
      }
      f->meta = m, *cap = nc;
    }
    f->meta[2 * f->nmeta] = k;
    f->meta[2 * f->nmeta + 1] = v;
    f->nmeta++;
    jws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    return jexpect(j, '}');
  }
}

static int cmp_begin(const void *a, const void *b) {
  const st_entry *x = *(st_entry *const *)a, *y = *(st_entry *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

void dl_st_file_free(dl_st_file *f) {
  for (int64_t i = 0; i < f->n; i++) {
    free(f->names[i]);
    if (f->tensors[i]) dl_tensor_release(f->tensors[i]);
  }
  for (int64_t i = 0; i < 2 * f->nmeta; i++) free(f->meta[i]);
  free(f->names);
  free(f->tensors);
  free(f->meta);
  memset(f, 0, sizeof *f);
}

int dl_st_parse(const char *name, const unsigned char *buf, size_t n, dl_st_file *out) {
  memset(out, 0, sizeof *out);
  if (n < 8) {
    dl_error_set("load: %s: truncated safetensors file (%zu bytes, the header length alone takes 8)", name, n);
    return -1;
  }
  uint64_t hl = 0;
  for (int i = 0; i < 8; i++) hl |= (uint64_t)buf[i] << (8 * i);
  if (hl > DL_ST_MAX_HEADER || hl > n - 8) {
    dl_error_set("load: %s: safetensors header length %llu is past the end of the file (%zu bytes)", name,
                 (unsigned long long)hl, n);
    return -1;
  }
  if (hl < 2) {
    dl_error_set("load: %s: bad safetensors header: too short", name);
    return -1;
  }
  js j = {(const char *)buf + 8, (const char *)buf + 8 + hl, name};
  st_entry *es = NULL;
  size_t nes = 0, ces = 0, mcap = 0;
  int rc = -1;
  if (jexpect(&j, '{') != 0) goto done;
  jws(&j);
  if (j.p < j.end && *j.p == '}') j.p++;
  else
    for (;;) {
      char *key = jstring(&j);
      if (!key) goto done;
      if (jexpect(&j, ':') != 0) {
        free(key);
        goto done;
      }
      if (strcmp(key, "__metadata__") == 0) {
        free(key);
        if (out->meta || out->nmeta) {
          jfail(&j, "repeated __metadata__");
          goto done;
        }
        if (parse_meta(&j, out, &mcap) != 0) goto done;
        if (!out->meta) out->meta = calloc(1, sizeof(char *)); /* marks "seen" */
      } else {
        for (size_t i = 0; i < nes; i++)
          if (strcmp(es[i].name, key) == 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "duplicate tensor name \"%.40s\"", key);
            free(key);
            jfail(&j, msg);
            goto done;
          }
        if (nes == ces) {
          size_t nc = ces ? ces * 2 : 16;
          st_entry *ne = realloc(es, nc * sizeof *ne);
          if (!ne) {
            free(key);
            jfail(&j, "out of memory");
            goto done;
          }
          es = ne, ces = nc;
        }
        memset(&es[nes], 0, sizeof *es);
        es[nes].name = key;
        nes++;
        if (parse_entry(&j, &es[nes - 1]) != 0) goto done;
      }
      jws(&j);
      if (j.p < j.end && *j.p == ',') {
        j.p++;
        continue;
      }
      if (jexpect(&j, '}') != 0) goto done;
      break;
    }
  jws(&j);
  if (j.p != j.end) {
    jfail(&j, "invalid JSON (trailing bytes after the header object)");
    goto done;
  }
  /* offsets: inside the data, matching the size, not overlapping */
  uint64_t data_len = n - 8 - hl;
  st_entry **order = malloc((nes ? nes : 1) * sizeof *order);
  if (!order) {
    jfail(&j, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < nes; i++) {
    st_entry *e = &es[i];
    order[i] = e;
    int64_t numel = 1, nb;
    int ovf = 0;
    for (int d = 0; d < e->ndim; d++) ovf |= __builtin_mul_overflow(numel, e->shape[d], &numel);
    ovf |= __builtin_mul_overflow(numel, (int64_t)dl_dtype_size(e->dt), &nb);
    char b[160];
    if (e->begin > e->end) {
      dl_error_set("load: %s: tensor \"%s\": data_offsets [%lld, %lld] begin after end", name, e->name,
                   (long long)e->begin, (long long)e->end);
      free(order);
      goto done;
    }
    if ((uint64_t)e->end > data_len) {
      dl_error_set("load: %s: tensor \"%s\": data_offsets [%lld, %lld] past the end of the data (%llu bytes)", name,
                   e->name, (long long)e->begin, (long long)e->end, (unsigned long long)data_len);
      free(order);
      goto done;
    }
    if (ovf || nb != e->end - e->begin) {
      dl_error_set("load: %s: tensor \"%s\": shape %s of %s does not match data_offsets [%lld, %lld]", name,
                   e->name, dl_shape_str(e->shape, e->ndim, b, sizeof b), dl_dtype_name(e->dt), (long long)e->begin,
                   (long long)e->end);
      free(order);
      goto done;
    }
  }
  if (nes > 1) qsort(order, nes, sizeof *order, cmp_begin);
  for (size_t i = 1; i < nes; i++)
    if (order[i]->begin < order[i - 1]->end) {
      dl_error_set("load: %s: tensors \"%s\" and \"%s\" overlap in the data", name, order[i - 1]->name,
                   order[i]->name);
      free(order);
      goto done;
    }
  /* packed as the format requires (the reference reader refuses the rest):
   * the tensors tile the data from byte 0 to its end, without gaps */
  for (size_t i = 0; i <= nes; i++) {
    int64_t at = i == 0 ? 0 : order[i - 1]->end;
    int64_t next = i < nes ? order[i]->begin : (int64_t)data_len;
    if (next != at) {
      if (i < nes)
        dl_error_set("load: %s: %lld unused bytes in the data before tensor \"%s\" (the format packs tensors "
                     "without gaps)", name, (long long)(next - at), order[i]->name);
      else
        dl_error_set("load: %s: %lld bytes after the last tensor's data (the format packs tensors without gaps)",
                     name, (long long)(next - at));
      free(order);
      goto done;
    }
  }
  free(order);
  /* everything checked: copy the tensors out */
  out->names = calloc(nes ? nes : 1, sizeof *out->names);
  out->tensors = calloc(nes ? nes : 1, sizeof *out->tensors);
  if (!out->names || !out->tensors) {
    jfail(&j, "out of memory");
    goto done;
  }
  const unsigned char *data = buf + 8 + hl;
  for (size_t i = 0; i < nes; i++) {
    st_entry *e = &es[i];
    dl_tensor *t = dl_tensor_empty(e->shape, e->ndim, e->dt, dl_device_cpu());
    if (!t) goto done;
    out->names[i] = e->name;
    out->tensors[i] = t;
    e->name = NULL;
    out->n = (int64_t)i + 1;
    unsigned char *p = dl_tensor_data(t);
    size_t nb = (size_t)(e->end - e->begin);
    if (nb) memcpy(p, data + e->begin, nb);
    if (e->dt == DL_BOOL)
      for (size_t k = 0; k < nb; k++) p[k] = p[k] != 0;
  }
  rc = 0;
done:
  for (size_t i = 0; i < nes; i++) free(es[i].name);
  free(es);
  if (rc != 0) dl_st_file_free(out);
  return rc;
}
