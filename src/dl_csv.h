/* dl_csv.h — a CSV reader for numeric tables. Fields may be quoted
 * (RFC 4180: "a,b", "" for a quote, newlines inside quotes); empty fields and
 * NA/NaN read as NaN. The file is hostile bytes: a malformed row gives an
 * error naming the file, the line and the column, and no tensor. */
#ifndef DL_CSV_H
#define DL_CSV_H

#include "dl_tensor.h"

typedef struct {
  char sep;          /* field separator */
  bool header;       /* first record holds the column names */
  dl_dtype dtype;    /* DL_FLOAT32 or DL_FLOAT64 */
  /* selected columns, in output order: by name (needs a header) or by
   * 0-based index; both NULL/0 for every column */
  const char *const *col_names;
  const int64_t *col_index;
  int ncols;
} dl_csv_options;

typedef struct {
  dl_tensor *values; /* rows x selected columns */
  char **names;      /* selected column names (NULL without a header) */
  int ncols;
} dl_csv_result;

/* 0 ok; -1 with "read_csv: <path>: ..." */
int dl_csv_read(const char *path, const dl_csv_options *opt, dl_csv_result *out);
/* Frees the names (the tensor is the caller's). */
void dl_csv_free_names(dl_csv_result *r);

#endif
