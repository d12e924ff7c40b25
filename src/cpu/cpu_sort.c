/* cpu_sort.c — sort and topk along a dim. Each slice's values become
 * unsigned keys whose integer order is the wanted order (floats by their
 * sign-folded bits, NaN largest, -0 == +0; every bit inverted when
 * descending), then: a stable LSD radix sort of (key, position) pairs for a
 * full sort, or for a small k a bounded heap ordered by (key, position) and
 * a heap-sort of the survivors. Values are written back from the source, so
 * they keep their exact bits. Slices run in parallel above the grain. */
#include "cpu_backend.h"
#include "cpu_iter.h"

#include "../dl_alloc.h"
#include "../ops/dl_index.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define SMALL_SORT 48 /* insertion sort below this */

typedef struct {
  const char *src;
  int64_t sst; /* bytes */
  char *val;
  int64_t vst; /* bytes */
  int64_t *ind;
  int64_t ist; /* elements */
  int64_t n, k;
  size_t es;
  dl_dtype dt;
  bool desc;
} slice_io;

/* ---- keys ---- */

static inline uint32_t key_f32(float x) {
  if (x != x) return UINT32_MAX;
  if (x == 0) x = 0.0f;
  uint32_t b;
  memcpy(&b, &x, 4);
  return (b >> 31) ? ~b : b | 0x80000000u;
}

static inline uint64_t key_f64(double x) {
  if (x != x) return UINT64_MAX;
  if (x == 0) x = 0.0;
  uint64_t b;
  memcpy(&b, &x, 8);
  return (b >> 63) ? ~b : b | 0x8000000000000000ull;
}

static void load_keys32(const slice_io *io, uint32_t *k) {
  uint32_t flip = io->desc ? UINT32_MAX : 0;
  const char *s = io->src;
  if (io->dt == DL_FLOAT32)
    for (int64_t p = 0; p < io->n; p++) k[p] = key_f32(*(const float *)(s + p * io->sst)) ^ flip;
  else /* bool, uint8 */
    for (int64_t p = 0; p < io->n; p++) k[p] = (uint32_t)*(const uint8_t *)(s + p * io->sst) ^ flip;
}

static void load_keys64(const slice_io *io, uint64_t *k) {
  uint64_t flip = io->desc ? UINT64_MAX : 0;
  const char *s = io->src;
  if (io->dt == DL_FLOAT64)
    for (int64_t p = 0; p < io->n; p++) k[p] = key_f64(*(const double *)(s + p * io->sst)) ^ flip;
  else /* int64 */
    for (int64_t p = 0; p < io->n; p++)
      k[p] = ((uint64_t) * (const int64_t *)(s + p * io->sst) ^ 0x8000000000000000ull) ^ flip;
}

/* ---- per key width: radix sort, heap select ---- */

#define DEFINE_KEY_SORT(SUF, K)                                                              \
  /* stable: sorts (k, ix) by k, ties keep their order */                                   \
  static void rsort_##SUF(K *k, int64_t *ix, K *tk, int64_t *ti, int64_t n) {               \
    if (n <= SMALL_SORT) {                                                                  \
      for (int64_t i = 1; i < n; i++) {                                                     \
        K x = k[i];                                                                         \
        int64_t xi = ix[i], j = i;                                                          \
        for (; j > 0 && k[j - 1] > x; j--) {                                                \
          k[j] = k[j - 1];                                                                  \
          ix[j] = ix[j - 1];                                                                \
        }                                                                                   \
        k[j] = x;                                                                           \
        ix[j] = xi;                                                                         \
      }                                                                                     \
      return;                                                                               \
    }                                                                                       \
    K *ak = k, *bk = tk;                                                                    \
    int64_t *ai = ix, *bi = ti;                                                             \
    for (unsigned shift = 0; shift < 8 * sizeof(K); shift += 8) {                           \
      int64_t cnt[256] = {0};                                                               \
      for (int64_t i = 0; i < n; i++) cnt[(ak[i] >> shift) & 255]++;                        \
      if (cnt[(ak[0] >> shift) & 255] == n) continue; /* one digit: pass is a no-op */     \
      int64_t sum = 0;                                                                      \
      for (int b = 0; b < 256; b++) {                                                       \
        int64_t c = cnt[b];                                                                 \
        cnt[b] = sum;                                                                       \
        sum += c;                                                                           \
      }                                                                                     \
      for (int64_t i = 0; i < n; i++) {                                                     \
        int64_t o = cnt[(ak[i] >> shift) & 255]++;                                          \
        bk[o] = ak[i];                                                                      \
        bi[o] = ai[i];                                                                      \
      }                                                                                     \
      K *t1 = ak; ak = bk; bk = t1;                                                         \
      int64_t *t2 = ai; ai = bi; bi = t2;                                                   \
    }                                                                                       \
    if (ak != k) {                                                                          \
      memcpy(k, ak, (size_t)n * sizeof(K));                                                 \
      memcpy(ix, ai, (size_t)n * sizeof(int64_t));                                          \
    }                                                                                       \
  }                                                                                         \
  /* (a, ia) strictly before (b, ib) */                                                     \
  static inline bool before_##SUF(K a, int64_t ia, K b, int64_t ib) {                       \
    return a < b || (a == b && ia < ib);                                                    \
  }                                                                                         \
  static void sift_down_##SUF(K *hk, int64_t *hi, int64_t size, int64_t i, K x, int64_t xi) { \
    for (;;) {                                                                              \
      int64_t c = 2 * i + 1;                                                                \
      if (c >= size) break;                                                                 \
      if (c + 1 < size && before_##SUF(hk[c], hi[c], hk[c + 1], hi[c + 1])) c++;           \
      if (!before_##SUF(x, xi, hk[c], hi[c])) break;                                        \
      hk[i] = hk[c];                                                                        \
      hi[i] = hi[c];                                                                        \
      i = c;                                                                                \
    }                                                                                       \
    hk[i] = x;                                                                              \
    hi[i] = xi;                                                                             \
  }                                                                                         \
  /* the k best of keys[0..n) into hk/hi, best first */                                     \
  static void select_##SUF(const K *keys, int64_t n, int64_t k, K *hk, int64_t *hi) {        \
    int64_t size = 0;                                                                       \
    for (int64_t p = 0; p < n; p++) { /* max-heap: the worst kept is the root */           \
      K x = keys[p];                                                                        \
      if (size < k) {                                                                       \
        int64_t i = size++;                                                                 \
        for (; i > 0 && before_##SUF(hk[(i - 1) / 2], hi[(i - 1) / 2], x, p); i = (i - 1) / 2) { \
          hk[i] = hk[(i - 1) / 2];                                                          \
          hi[i] = hi[(i - 1) / 2];                                                          \
        }                                                                                   \
        hk[i] = x;                                                                          \
        hi[i] = p;                                                                          \
      } else if (before_##SUF(x, p, hk[0], hi[0])) {                                        \
        sift_down_##SUF(hk, hi, k, 0, x, p);                                                \
      }                                                                                     \
    }                                                                                       \
    for (int64_t end = k - 1; end > 0; end--) { /* heap-sort: worst to the back */         \
      K x = hk[end];                                                                        \
      int64_t xi = hi[end];                                                                 \
      hk[end] = hk[0];                                                                      \
      hi[end] = hi[0];                                                                      \
      sift_down_##SUF(hk, hi, end, 0, x, xi);                                               \
    }                                                                                       \
  }                                                                                         \
  static void slice_##SUF(const slice_io *io, void *scratch, void (*load)(const slice_io *, K *)) { \
    int64_t n = io->n, k = io->k;                                                           \
    K *kb = (K *)scratch;                                                                   \
    int64_t *ib = (int64_t *)((char *)scratch + (size_t)n * 8);                             \
    K *tk = (K *)((char *)scratch + (size_t)n * 16);                                        \
    int64_t *ti = (int64_t *)((char *)scratch + (size_t)n * 24);                            \
    load(io, kb);                                                                           \
    if (k * 8 >= n || n <= 64) {                                                            \
      for (int64_t p = 0; p < n; p++) ib[p] = p;                                            \
      rsort_##SUF(kb, ib, tk, ti, n);                                                       \
    } else {                                                                                \
      select_##SUF(kb, n, k, tk, ti);                                                       \
      memcpy(ib, ti, (size_t)k * sizeof(int64_t));                                          \
    }                                                                                       \
    write_out(io, ib);                                                                      \
  }

/* values come from the source at the sorted positions: exact bits */
static void write_out(const slice_io *io, const int64_t *ib) {
  for (int64_t j = 0; j < io->k; j++) {
    const char *from = io->src + ib[j] * io->sst;
    char *to = io->val + j * io->vst;
    switch (io->es) {
    case 1: *(uint8_t *)to = *(const uint8_t *)from; break;
    case 4: *(uint32_t *)to = *(const uint32_t *)from; break;
    default: *(uint64_t *)to = *(const uint64_t *)from; break;
    }
    io->ind[j * io->ist] = ib[j] + 1;
  }
}

DEFINE_KEY_SORT(k32, uint32_t)
DEFINE_KEY_SORT(k64, uint64_t)

static void run_slice(const slice_io *io, void *scratch) {
  if (io->dt == DL_FLOAT64 || io->dt == DL_INT64) slice_k64(io, scratch, load_keys64);
  else slice_k32(io, scratch, load_keys32);
}

/* byte offsets of slice s (all coordinates but dim) in each tensor */
static void slice_offsets(int64_t s, const dl_tensor *src, int dim, const dl_tensor *val, const dl_tensor *ind,
                          int64_t *os, int64_t *ov, int64_t *oi) {
  int64_t a = 0, b = 0, c = 0;
  for (int d = src->ndim - 1; d >= 0; d--) {
    if (d == dim) continue;
    int64_t x = s % src->shape[d];
    s /= src->shape[d];
    a += x * src->stride[d];
    b += x * val->stride[d];
    c += x * ind->stride[d];
  }
  *os = a * (int64_t)dl_dtype_size(src->dtype);
  *ov = b * (int64_t)dl_dtype_size(val->dtype);
  *oi = c;
}

static int run_slices(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, int64_t k, bool desc) {
  int64_t n = src->shape[dim];
  if (n == 0 || k == 0) return 0;
  int64_t nslices = src->numel / n;
  int nt = 1;
#ifdef _OPENMP
  if (src->numel >= DL_PARALLEL_GRAIN && nslices > 1) {
    nt = omp_get_max_threads();
    if (nt > nslices) nt = (int)nslices;
  }
#endif
  size_t per = (size_t)n * 32; /* keys, positions and their radix buffers */
  char *scratch = dl_host_alloc(per * (size_t)nt);
  if (!scratch) return -1;
  size_t es = dl_dtype_size(src->dtype);
  const char *sbase = dl_tensor_data(src);
  char *vbase = dl_tensor_data(values);
  int64_t *ibase = (int64_t *)dl_tensor_data(indices);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t s = 0; s < nslices; s++) {
#ifdef _OPENMP
    int tid = omp_get_thread_num();
#else
    int tid = 0;
#endif
    int64_t os, ov, oi;
    slice_offsets(s, src, dim, values, indices, &os, &ov, &oi);
    slice_io io = {sbase + os, src->stride[dim] * (int64_t)es, vbase + ov, values->stride[dim] * (int64_t)es,
                   ibase + oi, indices->stride[dim], n, k, es, src->dtype, desc};
    run_slice(&io, scratch + per * (size_t)tid);
  }
  dl_host_free(scratch, per * (size_t)nt);
  return 0;
}

/* sort and topk are one slice runner here and in cuda_sort.cu (a twin by
 * shape: each backend's entries of struct dl_index_kernels) */
int dl_cpu_sort(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, bool descending) {
  return run_slices(values, indices, src, dim, src->shape[dim], descending);
}

/* The k results always come out best first: cheap next to the selection,
 * and a valid answer when sorted is false. */
int dl_cpu_topk(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, int64_t k, bool largest,
                bool sorted) {
  (void)sorted;
  return run_slices(values, indices, src, dim, k, largest);
}
