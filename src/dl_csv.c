/* dl_csv.c — CSV -> numeric tensor. The whole file is read once into memory,
 * records are split in place (quoted fields unescaped where they lie), and
 * the selected fields are parsed with strtod into a growing float64 buffer. */
#include "dl_csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct {
  char *p;
  size_t len;
  int64_t line; /* physical line the field starts on */
} csv_field;

typedef struct {
  const char *path;
  char sep;
  char *buf;
  size_t n, i;
  int64_t line;
  csv_field *fields;
  int nfields, cap;
} csv_parser;

static int csv_push(csv_parser *ps, char *p, size_t len, int64_t line) {
  if (ps->nfields == ps->cap) {
    int cap = ps->cap ? 2 * ps->cap : 64;
    if (cap > (1 << 24)) {
      dl_error_set("read_csv: %s: line %lld has more than %d fields", ps->path, (long long)line, 1 << 24);
      return -1;
    }
    csv_field *f = realloc(ps->fields, (size_t)cap * sizeof *f);
    if (!f) {
      dl_error_set("read_csv: %s: out of memory", ps->path);
      return -1;
    }
    ps->fields = f;
    ps->cap = cap;
  }
  ps->fields[ps->nfields++] = (csv_field){p, len, line};
  return 0;
}

/* Splits the next record into ps->fields. 1: a record, 0: end of file,
 * -1: error. Blank lines are skipped. */
static int csv_next(csv_parser *ps) {
  char *b = ps->buf;
  size_t n = ps->n;
  while (ps->i < n && (b[ps->i] == '\n' || b[ps->i] == '\r')) {
    ps->i += b[ps->i] == '\r' && ps->i + 1 < n && b[ps->i + 1] == '\n' ? 2 : 1;
    ps->line++;
  }
  if (ps->i >= n) return 0;
  ps->nfields = 0;
  for (;;) {
    size_t i = ps->i;
    int64_t fline = ps->line;
    int col = ps->nfields + 1;
    char *start = b + i;
    size_t len;
    if (i < n && b[i] == '"') {
      size_t w = i;
      i++;
      for (;;) {
        if (i >= n) {
          dl_error_set("read_csv: %s: line %lld, column %d: unterminated quoted field", ps->path,
                       (long long)fline, col);
          return -1;
        }
        char c = b[i];
        if (c == '"') {
          if (i + 1 < n && b[i + 1] == '"') {
            b[w++] = '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (c == '\n' || (c == '\r' && !(i + 1 < n && b[i + 1] == '\n'))) ps->line++;
        b[w++] = c;
        i++;
      }
      len = w - (size_t)(start - b);
      while (i < n && (b[i] == ' ' || b[i] == '\t') && b[i] != ps->sep) i++;
      if (i < n && b[i] != ps->sep && b[i] != '\n' && b[i] != '\r') {
        dl_error_set("read_csv: %s: line %lld, column %d: unexpected character '%c' after a closing quote",
                     ps->path, (long long)ps->line, col, b[i]);
        return -1;
      }
    } else {
      while (i < n && b[i] != ps->sep && b[i] != '\n' && b[i] != '\r') i++;
      len = (size_t)(b + i - start);
    }
    if (csv_push(ps, start, len, fline) != 0) return -1;
    if (i < n && b[i] == ps->sep) {
      ps->i = i + 1;
      continue;
    }
    /* end of record: \n, \r\n, a lone \r (old Mac files), or end of file */
    if (i < n && (b[i] == '\r' || b[i] == '\n')) {
      i += b[i] == '\r' && i + 1 < n && b[i + 1] == '\n' ? 2 : 1;
      ps->line++;
    }
    ps->i = i;
    return 1;
  }
}

static bool csv_is_missing(const char *s, size_t len) {
  if (len == 0) return true;
  static const char *const na[] = {"NA", "NaN", "N/A", "null", "nan", "NULL"};
  for (size_t k = 0; k < sizeof na / sizeof na[0]; k++)
    if (strlen(na[k]) == len && strncasecmp(s, na[k], len) == 0) return true;
  return false;
}

/* Parses one field as a number; NaN for a missing value. */
static int csv_number(csv_parser *ps, const csv_field *f, int col, double *out) {
  const char *s = f->p;
  size_t len = f->len;
  while (len > 0 && (*s == ' ' || *s == '\t')) s++, len--;
  while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
  if (csv_is_missing(s, len)) {
    *out = NAN;
    return 0;
  }
  char tmp[128];
  if (len < sizeof tmp) {
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *end;
    double v = strtod(tmp, &end);
    /* decimal only, as Python's float(): strtod would also read hex
     * ("0x10" as 16) */
    if (end == tmp + len && !memchr(tmp, 'x', len) && !memchr(tmp, 'X', len)) {
      *out = v;
      return 0;
    }
  }
  int shown = len > 40 ? 40 : (int)len;
  dl_error_set("read_csv: %s: line %lld, column %d: cannot read \"%.*s%s\" as a number", ps->path,
               (long long)f->line, col, shown, s, len > 40 ? "..." : "");
  return -1;
}

static char *csv_read_file(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    dl_error_set("read_csv: %s: cannot open (%s)", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(fp);
    dl_error_set("read_csv: %s: not a regular file", path);
    return NULL;
  }
  size_t size = (size_t)st.st_size;
  char *buf = malloc(size + 1);
  if (!buf) {
    fclose(fp);
    dl_error_set("read_csv: %s: out of memory reading %zu bytes", path, size);
    return NULL;
  }
  size_t got = fread(buf, 1, size, fp);
  fclose(fp);
  if (got != size) {
    free(buf);
    dl_error_set("read_csv: %s: read %zu of %zu bytes", path, got, size);
    return NULL;
  }
  buf[size] = 0;
  *n = size;
  return buf;
}

/* Resolves the selection into 0-based indices (sel, nsel). */
static int csv_select(csv_parser *ps, const dl_csv_options *opt, char **header, int m, int **sel, int *nsel) {
  int k = opt->ncols > 0 ? opt->ncols : m;
  int *s = malloc((size_t)(k > 0 ? k : 1) * sizeof *s);
  if (!s) {
    dl_error_set("read_csv: %s: out of memory", ps->path);
    return -1;
  }
  for (int j = 0; j < k; j++) {
    if (opt->ncols == 0) {
      s[j] = j;
    } else if (opt->col_names && opt->col_names[j]) {
      if (!header) {
        free(s);
        dl_error_set("read_csv: %s: column \"%s\" chosen by name but the file has no header", ps->path,
                     opt->col_names[j]);
        return -1;
      }
      int found = -1;
      for (int c = 0; c < m && found < 0; c++)
        if (strcmp(header[c], opt->col_names[j]) == 0) found = c;
      if (found < 0) {
        free(s);
        dl_error_set("read_csv: %s: no column named \"%s\"", ps->path, opt->col_names[j]);
        return -1;
      }
      s[j] = found;
    } else {
      int64_t c = opt->col_index[j];
      if (c < 0 || c >= m) {
        free(s);
        dl_error_set("read_csv: %s: column %lld out of range (the file has %d columns)", ps->path,
                     (long long)c + 1, m);
        return -1;
      }
      s[j] = (int)c;
    }
  }
  *sel = s;
  *nsel = k;
  return 0;
}

static void csv_free_strs(char **v, int n) {
  if (!v) return;
  for (int i = 0; i < n; i++) free(v[i]);
  free(v);
}

int dl_csv_read(const char *path, const dl_csv_options *opt, dl_csv_result *out) {
  memset(out, 0, sizeof *out);
  if (opt->dtype != DL_FLOAT32 && opt->dtype != DL_FLOAT64) {
    dl_error_set("read_csv: dtype must be float32 or float64, got %s", dl_dtype_name(opt->dtype));
    return -1;
  }
  csv_parser ps = {.path = path, .sep = opt->sep, .line = 1};
  ps.buf = csv_read_file(path, &ps.n);
  if (!ps.buf) return -1;
  /* a UTF-8 byte order mark is not part of the first name */
  if (ps.n >= 3 && memcmp(ps.buf, "\xEF\xBB\xBF", 3) == 0) ps.i = 3;

  char **header = NULL;
  int *sel = NULL, nsel = 0, m = 0;
  double *vals = NULL;
  size_t nvals = 0, cap = 0;
  int64_t rows = 0, first_line = 1;
  int rc = csv_next(&ps);
  if (rc < 0) goto fail;
  if (rc == 0) {
    dl_error_set("read_csv: %s: empty file", path);
    goto fail;
  }
  m = ps.nfields;
  first_line = ps.fields[0].line;
  if (opt->header) {
    header = calloc((size_t)m, sizeof *header);
    if (!header) goto oom;
    for (int c = 0; c < m; c++) {
      header[c] = strndup(ps.fields[c].p, ps.fields[c].len);
      if (!header[c]) goto oom;
    }
  }
  if (csv_select(&ps, opt, header, m, &sel, &nsel) != 0) goto fail;
  /* without a header the record already split is the first data row */
  for (bool pending = !opt->header;; pending = false) {
    if (!pending) {
      rc = csv_next(&ps);
      if (rc < 0) goto fail;
      if (rc == 0) break;
    }
    if (ps.nfields != m) {
      dl_error_set("read_csv: %s: line %lld has %d fields, expected %d (as on line %lld)", path,
                   (long long)ps.fields[0].line, ps.nfields, m, (long long)first_line);
      goto fail;
    }
    if (nvals + (size_t)nsel > cap) {
      size_t ncap = cap ? 2 * cap : 4096;
      while (ncap < nvals + (size_t)nsel) ncap *= 2;
      double *nv = realloc(vals, ncap * sizeof *nv);
      if (!nv) goto oom;
      vals = nv;
      cap = ncap;
    }
    for (int j = 0; j < nsel; j++)
      if (csv_number(&ps, &ps.fields[sel[j]], sel[j] + 1, &vals[nvals + (size_t)j]) != 0) goto fail;
    nvals += (size_t)nsel;
    rows++;
  }

  int64_t shape[2] = {rows, nsel};
  dl_tensor *t = dl_tensor_empty(shape, 2, DL_FLOAT64, dl_device_cpu());
  if (!t) goto fail;
  if (nvals) memcpy(dl_tensor_data(t), vals, nvals * sizeof *vals);
  if (opt->dtype != DL_FLOAT64) {
    dl_tensor *c = dl_tensor_to_dtype(t, opt->dtype);
    dl_tensor_release(t);
    if (!c) goto fail;
    t = c;
  }
  if (header) {
    out->names = calloc((size_t)(nsel > 0 ? nsel : 1), sizeof *out->names);
    if (!out->names) {
      dl_tensor_release(t);
      goto oom;
    }
    for (int j = 0; j < nsel; j++) {
      out->names[j] = strdup(header[sel[j]]);
      if (!out->names[j]) {
        csv_free_strs(out->names, nsel);
        out->names = NULL;
        dl_tensor_release(t);
        goto oom;
      }
    }
  }
  out->values = t;
  out->ncols = nsel;
  csv_free_strs(header, m);
  free(sel);
  free(vals);
  free(ps.fields);
  free(ps.buf);
  return 0;
oom:
  dl_error_set("read_csv: %s: out of memory", path);
fail:
  csv_free_strs(header, m);
  free(sel);
  free(vals);
  free(ps.fields);
  free(ps.buf);
  return -1;
}

void dl_csv_free_names(dl_csv_result *r) {
  csv_free_strs(r->names, r->ncols);
  r->names = NULL;
}
