/* dl_core.h — engine-wide basics: dtypes, devices, scalars, errors.
 * The engine never includes lua.h; every failing function returns NULL or -1
 * and leaves a message for dl_error_get(). */
#ifndef DL_CORE_H
#define DL_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DL_MAX_DIMS 8

typedef enum {
  DL_FLOAT32 = 0,
  DL_FLOAT64,
  DL_INT64,
  DL_BOOL,
  DL_UINT8,
  DL_NDTYPES
} dl_dtype;

typedef enum { DL_CPU = 0, DL_CUDA = 1, DL_NDEVTYPES } dl_devtype;

typedef struct {
  int8_t type;  /* dl_devtype */
  int8_t index; /* ordinal for CUDA, 0 for CPU */
} dl_device;

/* A number from a script: kept as an integer when it is one, so int64
 * tensors stay exact past 2^53. A boolean is the integer 0 or 1 marked
 * is_bool: in type promotion it counts as bool, as PyTorch's Python bool. */
typedef struct {
  bool is_int;
  int64_t i;
  double f;
  bool is_bool;
} dl_scalar;

static inline dl_scalar dl_scalar_f(double f) { dl_scalar s = {false, (int64_t)0, f, false}; return s; }
static inline dl_scalar dl_scalar_i(int64_t i) { dl_scalar s = {true, i, (double)i, false}; return s; }
static inline dl_scalar dl_scalar_b(bool b) { dl_scalar s = {true, b ? 1 : 0, b ? 1.0 : 0.0, true}; return s; }

/* dtypes */
size_t dl_dtype_size(dl_dtype dt);
const char *dl_dtype_name(dl_dtype dt);
int dl_dtype_from_name(const char *name, dl_dtype *out); /* 0 ok, -1 unknown */
bool dl_dtype_is_float(dl_dtype dt);
/* PyTorch's promotion between two tensor dtypes. */
dl_dtype dl_dtype_promote(dl_dtype a, dl_dtype b);
/* dtype of (tensor of dtype dt) op (scalar s): a scalar never widens a
 * tensor of its own category; a float scalar makes integer tensors float32. */
dl_dtype dl_dtype_promote_scalar(dl_dtype dt, dl_scalar s);

/* devices */
static inline dl_device dl_device_cpu(void) { dl_device d = {DL_CPU, 0}; return d; }
static inline bool dl_device_eq(dl_device a, dl_device b) { return a.type == b.type && a.index == b.index; }
/* "cpu", "cuda", "cuda:1"; 0 ok, -1 bad */
int dl_device_parse(const char *s, dl_device *out);
/* writes "cpu" or "cuda:N" into buf */
const char *dl_device_str(dl_device d, char *buf, size_t n);

/* errors: a per-thread message */
void dl_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *dl_error_get(void);
/* "fn: " before the current message (a kernel's error becomes its op's) */
void dl_error_prefix(const char *fn);

/* "[2,3]" into buf; returns buf */
const char *dl_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);

/* threads: one count drives OpenMP loops and OpenBLAS (dl_threads.h) */
void dl_set_num_threads(int n);
int dl_get_num_threads(void);

#endif
