/* cpu_index.c — CPU kernels of the index family: gather/scatter through the
 * strided iterator (the dim's stride is zeroed in a local view and the index
 * value adds it back), row copies for index_select, two-pass parallel
 * compaction for masked_select and nonzero. Sort and topk: cpu_sort.c. */
#include "cpu_backend.h"
#include "cpu_convert.h"
#include "cpu_iter.h"

#include "../ops/dl_index.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- chunking for passes whose chunks must be combined in order ---- */

#define MAX_CHUNKS 256

static int chunk_count(int64_t n) {
#ifdef _OPENMP
  if (n >= DL_PARALLEL_GRAIN) {
    int t = omp_get_max_threads();
    return t < 1 ? 1 : t > MAX_CHUNKS ? MAX_CHUNKS : t;
  }
#endif
  (void)n;
  return 1;
}

static inline int64_t chunk_begin(int64_t n, int nc, int c) { return n / nc * c + (c < n % nc ? c : n % nc); }

static inline bool par_ok(int64_t n) {
#ifdef _OPENMP
  return n >= DL_PARALLEL_GRAIN && omp_get_max_threads() > 1;
#else
  (void)n;
  return false;
#endif
}

/* ---- minmax ---- */

typedef struct { int64_t mn, mx; } minmax_acc;

static void minmax_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
  minmax_acc *a = ctx;
  int64_t mn = a->mn, mx = a->mx;
  if (s[0] == 8) {
    const int64_t *x = (const int64_t *)p[0];
    for (int64_t i = 0; i < n; i++) {
      mn = x[i] < mn ? x[i] : mn;
      mx = x[i] > mx ? x[i] : mx;
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      int64_t v = *(const int64_t *)(p[0] + i * s[0]);
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
    }
  }
  a->mn = mn;
  a->mx = mx;
}

static int cpu_minmax(const dl_tensor *idx, int64_t *mn, int64_t *mx) {
  dl_iter it;
  dl_tensor *op = (dl_tensor *)idx;
  dl_iter_init(&it, 1, &op);
  int nc = chunk_count(idx->numel);
  minmax_acc acc[MAX_CHUNKS];
#pragma omp parallel for num_threads(nc) if (nc > 1)
  for (int c = 0; c < nc; c++) {
    acc[c].mn = INT64_MAX;
    acc[c].mx = INT64_MIN;
    dl_iter_run(&it, chunk_begin(idx->numel, nc, c), chunk_begin(idx->numel, nc, c + 1), minmax_loop, &acc[c]);
  }
  *mn = INT64_MAX;
  *mx = INT64_MIN;
  for (int c = 0; c < nc; c++) {
    if (acc[c].mn < *mn) *mn = acc[c].mn;
    if (acc[c].mx > *mx) *mx = acc[c].mx;
  }
  return DL_KERNEL_OK;
}

/* ---- count_nonzero ---- */

#define COUNT_LOOP(NAME, T)                                                \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {     \
    int64_t c = 0;                                                         \
    if (s[0] == (int64_t)sizeof(T)) {                                      \
      const T *x = (const T *)p[0];                                        \
      for (int64_t i = 0; i < n; i++) c += x[i] != 0;                      \
    } else {                                                               \
      for (int64_t i = 0; i < n; i++) c += *(const T *)(p[0] + i * s[0]) != 0; \
    }                                                                      \
    *(int64_t *)ctx += c;                                                  \
  }
COUNT_LOOP(count_f, float)
COUNT_LOOP(count_d, double)
COUNT_LOOP(count_i, int64_t)
COUNT_LOOP(count_b, uint8_t)

static const dl_iter_fn count_fns[DL_NDTYPES] = {count_f, count_d, count_i, count_b, count_b};

/* per-chunk counts of t's nonzeros in C order; returns the chunk count */
static int chunk_counts(const dl_tensor *t, int64_t *counts) {
  dl_iter it;
  dl_tensor *op = (dl_tensor *)t;
  dl_iter_init(&it, 1, &op);
  int nc = chunk_count(t->numel);
  dl_iter_fn fn = count_fns[t->dtype];
#pragma omp parallel for num_threads(nc) if (nc > 1)
  for (int c = 0; c < nc; c++) {
    counts[c] = 0;
    dl_iter_run(&it, chunk_begin(t->numel, nc, c), chunk_begin(t->numel, nc, c + 1), fn, &counts[c]);
  }
  return nc;
}

static int64_t cpu_count_nonzero(const dl_tensor *t) {
  int64_t counts[MAX_CHUNKS], total = 0;
  int nc = chunk_counts(t, counts);
  for (int c = 0; c < nc; c++) total += counts[c];
  return total;
}

/* ---- gather (and the general index_select) ---- */

typedef struct {
  int64_t dstride; /* bytes per step of the index along dim */
} gather_ctx;

/* p[0] out, p[1] index, p[2] src with its dim stride zeroed */
#define GATHER_LOOP(NAME, T)                                                        \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {              \
    int64_t ds = ((const gather_ctx *)ctx)->dstride;                                \
    if (s[0] == (int64_t)sizeof(T) && s[1] == 8 && s[2] == 0) {                     \
      T *o = (T *)p[0];                                                             \
      const int64_t *ix = (const int64_t *)p[1];                                    \
      const char *x = p[2];                                                         \
      for (int64_t i = 0; i < n; i++) o[i] = *(const T *)(x + (ix[i] - 1) * ds);   \
    } else {                                                                        \
      for (int64_t i = 0; i < n; i++) {                                             \
        int64_t j = *(const int64_t *)(p[1] + i * s[1]) - 1;                        \
        *(T *)(p[0] + i * s[0]) = *(const T *)(p[2] + i * s[2] + j * ds);           \
      }                                                                             \
    }                                                                               \
  }
GATHER_LOOP(gather_1, uint8_t)
GATHER_LOOP(gather_4, uint32_t)
GATHER_LOOP(gather_8, uint64_t)

static dl_iter_fn by_size(size_t es, dl_iter_fn f1, dl_iter_fn f4, dl_iter_fn f8) {
  return es == 1 ? f1 : es == 4 ? f4 : f8;
}

static int cpu_gather(dl_tensor *out, const dl_tensor *src, int dim, const dl_tensor *idx) {
  size_t es = dl_dtype_size(src->dtype);
  dl_tensor sv = *src; /* src seen with idx's shape, dim stride zeroed */
  sv.ndim = idx->ndim;
  for (int d = 0; d < idx->ndim; d++) {
    sv.shape[d] = idx->shape[d];
    sv.stride[d] = d == dim ? 0 : src->stride[d];
  }
  sv.numel = idx->numel;
  gather_ctx c = {src->stride[dim] * (int64_t)es};
  dl_tensor *ops[3] = {out, (dl_tensor *)idx, &sv};
  dl_iter it;
  dl_iter_init(&it, 3, ops);
  dl_iter_parallel(&it, by_size(es, gather_1, gather_4, gather_8), &c, DL_PARALLEL_GRAIN);
  return DL_KERNEL_OK;
}

/* ---- index_select ---- */

static int cpu_index_select(dl_tensor *out, const dl_tensor *src, int dim, const dl_tensor *idx) {
  size_t es = dl_dtype_size(src->dtype);
  if (dl_tensor_is_contiguous(out) && dl_tensor_is_contiguous(src)) {
    /* whole rows: out[o, j, :] = src[o, idx[j] - 1, :] (the DataLoader's
     * batch gather along dim 1) */
    int64_t outer = 1, inner = 1, n = idx->numel, size = src->shape[dim];
    for (int d = 0; d < dim; d++) outer *= src->shape[d];
    for (int d = dim + 1; d < src->ndim; d++) inner *= src->shape[d];
    size_t row = (size_t)inner * es;
    const int64_t *ix = (const int64_t *)dl_tensor_data(idx);
    int64_t ist = idx->stride[0];
    const char *x = dl_tensor_data(src);
    char *o = dl_tensor_data(out);
    int64_t rows = outer * n;
    bool par = par_ok(out->numel) && rows > 1;
#pragma omp parallel for if (par) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      int64_t a = r / n, j = r % n;
      const char *from = x + ((size_t)a * size + (size_t)(ix[j * ist] - 1)) * row;
      char *to = o + (size_t)r * row;
      switch (row) {
      case 4: *(uint32_t *)to = *(const uint32_t *)from; break;
      case 8: *(uint64_t *)to = *(const uint64_t *)from; break;
      default: memcpy(to, from, row);
      }
    }
    return DL_KERNEL_OK;
  }
  /* general case: a gather whose index is idx broadcast over other dims */
  dl_tensor iv = *idx;
  iv.ndim = out->ndim;
  for (int d = 0; d < out->ndim; d++) {
    iv.shape[d] = out->shape[d];
    iv.stride[d] = d == dim ? idx->stride[0] : 0;
  }
  iv.numel = out->numel;
  cpu_gather(out, src, dim, &iv);
  return DL_KERNEL_OK;
}

/* ---- scatter ---- */

typedef union {
  float f;
  double d;
  int64_t i;
  uint8_t b;
} typed_value;

typedef struct {
  int64_t dstride;
  typed_value v; /* value, or the factor applied to src under ADD */
} scatter_ctx;

static typed_value to_typed(dl_dtype dt, dl_scalar v) {
  typed_value t;
  memset(&t, 0, sizeof t);
  double f = v.is_int ? (double)v.i : v.f;
  switch (dt) {
  case DL_FLOAT32: t.f = (float)f; break;
  case DL_FLOAT64: t.d = f; break;
  case DL_INT64: t.i = v.is_int ? v.i : dl_f2i(f); break;
  case DL_BOOL: t.b = v.is_int ? v.i != 0 : f != 0; break;
  default: t.b = v.is_int ? (uint8_t)v.i : dl_f2u8(f); break;
  }
  return t;
}

/* p[0] self with its dim stride zeroed, p[1] index, p[2] src */
#define SCATTER_SET_SRC(NAME, T)                                          \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {    \
    int64_t ds = ((const scatter_ctx *)ctx)->dstride;                     \
    for (int64_t i = 0; i < n; i++) {                                     \
      int64_t j = *(const int64_t *)(p[1] + i * s[1]) - 1;                \
      *(T *)(p[0] + i * s[0] + j * ds) = *(const T *)(p[2] + i * s[2]);   \
    }                                                                     \
  }
#define SCATTER_SET_VAL(NAME, T, FIELD)                                   \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {    \
    const scatter_ctx *c = ctx;                                           \
    T v;                                                                  \
    memcpy(&v, &c->v.FIELD, sizeof v);                                    \
    for (int64_t i = 0; i < n; i++) {                                     \
      int64_t j = *(const int64_t *)(p[1] + i * s[1]) - 1;                \
      *(T *)(p[0] + i * s[0] + j * c->dstride) = v;                       \
    }                                                                     \
  }
/* ADD with src: self += alpha * src; OP combines (old, alpha, src) */
#define SCATTER_ADD_SRC(NAME, T, FIELD, OP)                               \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {    \
    const scatter_ctx *c = ctx;                                           \
    T a = (T)c->v.FIELD;                                                  \
    if (s[0] == 0 && s[1] == sizeof(int64_t) && s[2] == sizeof(T)) {      \
      /* a row scattered into one row (max pooling's backward) */         \
      T *d = (T *)p[0];                                                   \
      const int64_t *ix = (const int64_t *)p[1], ds = c->dstride / (int64_t)sizeof(T); \
      const T *x = (const T *)p[2];                                       \
      for (int64_t i = 0; i < n; i++) d[(ix[i] - 1) * ds] = OP(d[(ix[i] - 1) * ds], a, x[i]); \
      return;                                                             \
    }                                                                     \
    for (int64_t i = 0; i < n; i++) {                                     \
      int64_t j = *(const int64_t *)(p[1] + i * s[1]) - 1;                \
      T *d = (T *)(p[0] + i * s[0] + j * c->dstride);                     \
      T x = *(const T *)(p[2] + i * s[2]);                                \
      *d = OP(*d, a, x);                                                  \
    }                                                                     \
  }
#define SCATTER_ADD_VAL(NAME, T, FIELD, OP)                               \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {    \
    const scatter_ctx *c = ctx;                                           \
    T v = (T)c->v.FIELD;                                                  \
    for (int64_t i = 0; i < n; i++) {                                     \
      int64_t j = *(const int64_t *)(p[1] + i * s[1]) - 1;                \
      T *d = (T *)(p[0] + i * s[0] + j * c->dstride);                     \
      *d = OP(*d, (T)1, v);                                               \
    }                                                                     \
  }
#define AXPY(d, a, x) ((d) + (a) * (x))
#define WRAP_U8(d, a, x) ((uint8_t)((d) + (a) * (x)))
#define OR_B(d, a, x) ((uint8_t)((d) || ((a) && (x))))

SCATTER_SET_SRC(sset_1, uint8_t)
SCATTER_SET_SRC(sset_4, uint32_t)
SCATTER_SET_SRC(sset_8, uint64_t)
SCATTER_SET_VAL(sval_f, float, f)
SCATTER_SET_VAL(sval_d, double, d)
SCATTER_SET_VAL(sval_i, int64_t, i)
SCATTER_SET_VAL(sval_b, uint8_t, b)
SCATTER_ADD_SRC(sadd_f, float, f, AXPY)
SCATTER_ADD_SRC(sadd_d, double, d, AXPY)
SCATTER_ADD_SRC(sadd_i, int64_t, i, AXPY)
SCATTER_ADD_SRC(sadd_b, uint8_t, b, OR_B)
SCATTER_ADD_SRC(sadd_u, uint8_t, b, WRAP_U8)
SCATTER_ADD_VAL(saddv_f, float, f, AXPY)
SCATTER_ADD_VAL(saddv_d, double, d, AXPY)
SCATTER_ADD_VAL(saddv_i, int64_t, i, AXPY)
SCATTER_ADD_VAL(saddv_b, uint8_t, b, OR_B)
SCATTER_ADD_VAL(saddv_u, uint8_t, b, WRAP_U8)

static const dl_iter_fn set_val_fns[DL_NDTYPES] = {sval_f, sval_d, sval_i, sval_b, sval_b};
static const dl_iter_fn add_src_fns[DL_NDTYPES] = {sadd_f, sadd_d, sadd_i, sadd_b, sadd_u};
static const dl_iter_fn add_val_fns[DL_NDTYPES] = {saddv_f, saddv_d, saddv_i, saddv_b, saddv_u};

/* moves dim d of a local view to the last position */
static void move_dim_last(dl_tensor *t, int d) {
  int64_t sh = t->shape[d], st = t->stride[d];
  for (int k = d; k < t->ndim - 1; k++) {
    t->shape[k] = t->shape[k + 1];
    t->stride[k] = t->stride[k + 1];
  }
  t->shape[t->ndim - 1] = sh;
  t->stride[t->ndim - 1] = st;
}

static int cpu_scatter(dl_tensor *self, int dim, const dl_tensor *idx, const dl_tensor *src, dl_scalar value,
                        dl_scatter_mode mode) {
  size_t es = dl_dtype_size(self->dtype);
  dl_tensor sv = *self, iv = *idx, xv;
  sv.ndim = idx->ndim;
  for (int d = 0; d < idx->ndim; d++) {
    sv.shape[d] = idx->shape[d];
    sv.stride[d] = d == dim ? 0 : self->stride[d];
  }
  sv.numel = idx->numel;
  if (src) xv = *src;
  scatter_ctx c = {self->stride[dim] * (int64_t)es, to_typed(self->dtype, value)};
  dl_iter_fn fn;
  if (mode == DL_SCATTER_SET) fn = src ? by_size(es, sset_1, sset_4, sset_8) : set_val_fns[self->dtype];
  else fn = src ? add_src_fns[self->dtype] : add_val_fns[self->dtype];
  dl_tensor *ops[3] = {&sv, &iv, &xv};
  int nops = src ? 3 : 2;
  int64_t numel = idx->numel, len = idx->shape[dim];
  dl_iter it;
  if (!par_ok(numel) || numel == len) {
    dl_iter_init(&it, nops, ops);
    dl_iter_run(&it, 0, numel, fn, &c);
    return DL_KERNEL_OK;
  }
  /* Parallel: with dim innermost, each slice along dim (all the elements
   * that may hit one location) is a contiguous range of positions, so
   * threads own whole slices and never write the same element. */
  for (int k = 0; k < nops; k++) move_dim_last(ops[k], dim);
  dl_iter_init(&it, nops, ops);
  int64_t nslices = numel / len;
#pragma omp parallel
  {
#ifdef _OPENMP
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
#else
    int nt = 1, id = 0;
#endif
    int64_t b = chunk_begin(nslices, nt, id), e = chunk_begin(nslices, nt, id + 1);
    dl_iter_run(&it, b * len, e * len, fn, &c);
  }
  return DL_KERNEL_OK;
}

/* ---- masked_select ---- */

typedef struct {
  char *out;
} select_ctx;

/* p[0] src, p[1] mask */
#define SELECT_LOOP(NAME, T)                                              \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {    \
    select_ctx *c = ctx;                                                  \
    T *o = (T *)c->out;                                                   \
    for (int64_t i = 0; i < n; i++)                                       \
      if (*(const uint8_t *)(p[1] + i * s[1])) *o++ = *(const T *)(p[0] + i * s[0]); \
    c->out = (char *)o;                                                   \
  }
SELECT_LOOP(select_1, uint8_t)
SELECT_LOOP(select_4, uint32_t)
SELECT_LOOP(select_8, uint64_t)

static int cpu_masked_select(dl_tensor *out, const dl_tensor *src, const dl_tensor *mask) {
  size_t es = dl_dtype_size(src->dtype);
  int64_t counts[MAX_CHUNKS];
  int nc = chunk_counts(mask, counts);
  dl_tensor *ops[2] = {(dl_tensor *)src, (dl_tensor *)mask};
  dl_iter it;
  dl_iter_init(&it, 2, ops);
  dl_iter_fn fn = by_size(es, select_1, select_4, select_8);
  int64_t ost = out->stride[0] * (int64_t)es;
  /* out is written through a contiguous staging run when it is strided */
  bool direct = ost == (int64_t)es;
  char *base = dl_tensor_data(out);
  int64_t start[MAX_CHUNKS + 1];
  start[0] = 0;
  for (int c = 0; c < nc; c++) start[c + 1] = start[c] + counts[c];
  if (!direct) { /* rare: a strided output; select one by one */
    int64_t k = 0;
    for (int64_t i = 0; i < src->numel; i++) {
      select_ctx one;
      char tmp[8];
      one.out = tmp;
      dl_iter_run(&it, i, i + 1, fn, &one);
      if (one.out != tmp) memcpy(base + (k++) * ost, tmp, es);
    }
    return DL_KERNEL_OK;
  }
#pragma omp parallel for num_threads(nc) if (nc > 1)
  for (int c = 0; c < nc; c++) {
    select_ctx sc = {base + start[c] * (int64_t)es};
    dl_iter_run(&it, chunk_begin(src->numel, nc, c), chunk_begin(src->numel, nc, c + 1), fn, &sc);
  }
  return DL_KERNEL_OK;
}

/* ---- nonzero ---- */

static inline bool nonzero_at(const char *p, dl_dtype dt) {
  switch (dt) {
  case DL_FLOAT32: return *(const float *)p != 0;
  case DL_FLOAT64: return *(const double *)p != 0;
  case DL_INT64: return *(const int64_t *)p != 0;
  default: return *(const uint8_t *)p != 0;
  }
}

static int cpu_nonzero(dl_tensor *out, const dl_tensor *t) {
  int64_t counts[MAX_CHUNKS];
  int nc = chunk_counts(t, counts);
  int64_t start[MAX_CHUNKS + 1];
  start[0] = 0;
  for (int c = 0; c < nc; c++) start[c + 1] = start[c] + counts[c];
  int nd = t->ndim;
  size_t es = dl_dtype_size(t->dtype);
  const char *data = dl_tensor_data(t);
  int64_t *o = (int64_t *)dl_tensor_data(out);
  int64_t os0 = out->stride[0], os1 = out->stride[1];
#pragma omp parallel for num_threads(nc) if (nc > 1)
  for (int c = 0; c < nc; c++) {
    int64_t b = chunk_begin(t->numel, nc, c), e = chunk_begin(t->numel, nc, c + 1);
    int64_t ix[DL_MAX_DIMS], off = 0, rem = b, row = start[c];
    for (int d = nd - 1; d >= 0; d--) {
      ix[d] = rem % t->shape[d];
      rem /= t->shape[d];
      off += ix[d] * t->stride[d];
    }
    for (int64_t pos = b; pos < e; pos++) {
      if (nonzero_at(data + off * (int64_t)es, t->dtype)) {
        for (int d = 0; d < nd; d++) o[row * os0 + d * os1] = ix[d] + 1;
        row++;
      }
      for (int d = nd - 1; d >= 0; d--) { /* odometer step */
        off += t->stride[d];
        if (++ix[d] < t->shape[d]) break;
        off -= ix[d] * t->stride[d];
        ix[d] = 0;
      }
    }
  }
  return DL_KERNEL_OK;
}

/* ---- flip ---- */

static int cpu_flip(dl_tensor *out, const dl_tensor *src, uint32_t dims) {
  /* src seen through negative strides, then the strided copy */
  dl_tensor v = *src;
  for (int d = 0; d < src->ndim; d++)
    if ((dims >> d) & 1u && src->shape[d] > 1) {
      v.offset += (src->shape[d] - 1) * src->stride[d];
      v.stride[d] = -src->stride[d];
    }
  dl_cpu_copy(out, &v);
  return DL_KERNEL_OK;
}

int dl_cpu_sort(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, bool descending);
int dl_cpu_topk(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, int64_t k, bool largest,
                bool sorted);

const struct dl_index_kernels dl_cpu_index = {
  .minmax = cpu_minmax,
  .count_nonzero = cpu_count_nonzero,
  .index_select = cpu_index_select,
  .gather = cpu_gather,
  .scatter = cpu_scatter,
  .masked_select = cpu_masked_select,
  .nonzero = cpu_nonzero,
  .sort = dl_cpu_sort,
  .topk = dl_cpu_topk,
  .flip = cpu_flip,
};
