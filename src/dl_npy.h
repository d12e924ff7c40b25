/* dl_npy.h — NumPy .npy files (format 1.0/2.0/3.0 read, 1.0 or 2.0 written):
 * little-endian, C order, dtypes f4 f8 i8 u1 b1. Reading also accepts
 * big-endian data (byte-swapped) and Fortran order (transposed to C order).
 * Bytes are parsed as hostile: every length and the shape are checked
 * against the buffer size. */
#ifndef DL_NPY_H
#define DL_NPY_H

#include "dl_tensor.h"

#define DL_NPY_MAGIC "\x93NUMPY"

/* The header (magic, version, length, dict, padding to 64 bytes) for a
 * tensor of t's dtype and shape; malloc'd, *len bytes. The raw C-order data
 * follows it. NULL with an error. */
char *dl_npy_header(const dl_tensor *t, size_t *len);
/* Parses a whole .npy file held in buf; name is used in errors. New CPU
 * tensor, or NULL with "load: <name>: ..." */
dl_tensor *dl_npy_parse(const char *name, const unsigned char *buf, size_t n);

#endif
