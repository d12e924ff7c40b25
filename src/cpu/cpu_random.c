/* cpu_random.c — Philox streams turned into tensor values (formulas in
 * dl_rng.h). Work is split by 4-word blocks, so threads need no shared
 * state: each block computes its own counter. */
#include "../dl_alloc.h"
#include "../ops/dl_random.h"
#include "cpu_iter.h"

#include <math.h> /* scalar libm: every element uses the same functions, whatever the split */
#include <stdlib.h>

#define BLOCK_GRAIN (DL_PARALLEL_GRAIN / 4)

/* Stores cnt values v[] (doubles or int64s) at element i0 of out. */
#define STORE(T, EXPR)                                                    \
  do {                                                                    \
    T *o_ = (T *)base + i0;                                               \
    for (int l_ = 0; l_ < cnt; l_++) o_[l_] = (T)(EXPR);                  \
  } while (0)

static void store_values(void *base, dl_dtype dt, int64_t i0, int cnt, const double *v) {
  switch (dt) {
  case DL_FLOAT32: STORE(float, v[l_]); break;
  case DL_FLOAT64: STORE(double, v[l_]); break;
  default: break;
  }
}

/* what a kernel's blocks need */
typedef struct {
  dl_rng_state st;
  dl_dtype dt;
  void *base;
  int64_t n;
  dl_rand_kind kind;
  double a, b;
  int64_t lo;
  uint64_t range;
  const double *probs;
  void *keys;
  const void *x;  /* dropout: the input */
  void *mask;     /* dropout: the mask written beside out */
} job;

/* ---- uniform / normal / exponential ---- */

static void float_blocks(void *ctx, int64_t b0, int64_t b1) {
  const job *j = ctx;
  bool f64 = j->dt == DL_FLOAT64;
  int per = f64 ? 2 : 4;
  for (int64_t blk = b0; blk < b1; blk++) {
    double v[4];
    int cnt = dl_rand_block_values(j->st, blk, f64, j->kind, j->a, j->b, v);
    int64_t i0 = blk * per;
    if (cnt > j->n - i0) cnt = (int)(j->n - i0);
    store_values(j->base, j->dt, i0, cnt, v);
  }
}

static int cpu_fill_float(dl_tensor *out, dl_rng_state st, dl_rand_kind kind, double a, double b) {
  job j = {.st = st, .dt = out->dtype, .base = dl_tensor_data(out), .n = out->numel, .kind = kind, .a = a, .b = b};
  int per = out->dtype == DL_FLOAT64 ? 2 : 4;
  dl_cpu_run_blocks((j.n + per - 1) / per, BLOCK_GRAIN, float_blocks, &j);
  return DL_KERNEL_OK;
}

/* ---- randint ---- */

static void store_ints(void *base, dl_dtype dt, int64_t i0, int cnt, const int64_t *v) {
  switch (dt) {
  case DL_FLOAT32: STORE(float, v[l_]); break;
  case DL_FLOAT64: STORE(double, v[l_]); break;
  case DL_INT64: STORE(int64_t, v[l_]); break;
  case DL_BOOL: STORE(uint8_t, v[l_] != 0); break;
  case DL_UINT8: STORE(uint8_t, v[l_]); break;
  default: break;
  }
}

static void int_blocks(void *ctx, int64_t b0, int64_t b1) {
  const job *j = ctx;
  bool wide = j->range > (UINT64_C(1) << 32);
  int per = wide ? 2 : 4;
  uint64_t lo = (uint64_t)j->lo, r = j->range;
  for (int64_t blk = b0; blk < b1; blk++) {
    uint32_t x[4];
    int64_t v[4];
    dl_rng_block(j->st, (uint64_t)blk, x);
    if (wide) {
      v[0] = (int64_t)(lo + ((((uint64_t)x[0] << 32) | x[1]) % r));
      v[1] = (int64_t)(lo + ((((uint64_t)x[2] << 32) | x[3]) % r));
    } else {
      for (int l = 0; l < 4; l++) v[l] = (int64_t)(lo + (uint64_t)x[l] % r);
    }
    int64_t i0 = blk * per;
    int cnt = per;
    if (cnt > j->n - i0) cnt = (int)(j->n - i0);
    store_ints(j->base, j->dt, i0, cnt, v);
  }
}

static int cpu_randint(dl_tensor *out, dl_rng_state st, int64_t lo, uint64_t range) {
  job j = {.st = st, .dt = out->dtype, .base = dl_tensor_data(out), .n = out->numel, .lo = lo, .range = range};
  int per = range > (UINT64_C(1) << 32) ? 2 : 4;
  dl_cpu_run_blocks((j.n + per - 1) / per, BLOCK_GRAIN, int_blocks, &j);
  return DL_KERNEL_OK;
}

/* ---- bernoulli ---- */

#if defined(__AVX512F__)
#include <immintrin.h>

/* the 32 x 32 -> 64 products of m (a constant, m_odd = m >> 32 lane-wise)
 * and c, lane by lane: high halves to *hi, low halves to *lo. Two vpmuludq
 * (even and odd lanes; a vpmulld would cost two more) and the halves moved
 * with vpshufd, not 64-bit shifts: shifts and multiplies share one port,
 * shuffles take another. */
static inline void mul_wide(__m512i m, __m512i m_odd, __m512i c, __m512i *hi, __m512i *lo) {
  __m512i even = _mm512_mul_epu32(m, c), odd = _mm512_mul_epu32(m_odd, _mm512_shuffle_epi32(c, _MM_PERM_DDBB));
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_shuffle_epi32(even, _MM_PERM_DDBB), odd);
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_shuffle_epi32(odd, _MM_PERM_CCAA));
}

/* dl_rng_block for blocks blk .. blk + 31 at once, one per lane of two
 * vectors: word w of block blk + l in x[w][l]. The same words as 32 scalar
 * calls; two independent 16-lane chains so one's multiplies run while the
 * other's wait (a round is a chain of dependent instructions). */
static void philox32(dl_rng_state st, uint64_t blk, uint32_t x[4][32]) {
  const uint64_t base = st.offset + blk;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i lo_base = _mm512_set1_epi32((int)(uint32_t)base), hi_base = _mm512_set1_epi32((int)(uint32_t)(base >> 32));
  const __m512i one = _mm512_set1_epi32(1);
  __m512i c0[2], c1[2], c2[2], c3[2];
  for (int v = 0; v < 2; v++) {
    c0[v] = _mm512_add_epi32(lo_base, _mm512_add_epi32(lane, _mm512_set1_epi32(16 * v)));
    /* the counter's high word, plus the carry where the low one wrapped */
    c1[v] = _mm512_mask_add_epi32(hi_base, _mm512_cmplt_epu32_mask(c0[v], lo_base), hi_base, one);
    c2[v] = c3[v] = _mm512_setzero_si512();
  }
  __m512i k0 = _mm512_set1_epi32((int)(uint32_t)st.seed), k1 = _mm512_set1_epi32((int)(uint32_t)(st.seed >> 32));
  const __m512i m0 = _mm512_set1_epi32((int)DL_PHILOX_M0), m1 = _mm512_set1_epi32((int)DL_PHILOX_M1);
  const __m512i w0 = _mm512_set1_epi32((int)DL_PHILOX_W0), w1 = _mm512_set1_epi32((int)DL_PHILOX_W1);
  const __m512i m0_odd = _mm512_srli_epi64(m0, 32), m1_odd = _mm512_srli_epi64(m1, 32);
  for (int r = 0; r < 10; r++) {
    for (int v = 0; v < 2; v++) {
      __m512i hi0, lo0, hi1, lo1;
      mul_wide(m0, m0_odd, c0[v], &hi0, &lo0);
      mul_wide(m1, m1_odd, c2[v], &hi1, &lo1);
      c0[v] = _mm512_ternarylogic_epi32(hi1, c1[v], k0, 0x96); /* a ^ b ^ c */
      c2[v] = _mm512_ternarylogic_epi32(hi0, c3[v], k1, 0x96);
      c1[v] = lo1;
      c3[v] = lo0;
    }
    k0 = _mm512_add_epi32(k0, w0);
    k1 = _mm512_add_epi32(k1, w1);
  }
  for (int v = 0; v < 2; v++) {
    _mm512_storeu_si512(x[0] + 16 * v, c0[v]);
    _mm512_storeu_si512(x[1] + 16 * v, c1[v]);
    _mm512_storeu_si512(x[2] + 16 * v, c2[v]);
    _mm512_storeu_si512(x[3] + 16 * v, c3[v]);
  }
}
#define BERN_LANES 32

#if defined(__BMI2__) && defined(__AVX512BW__)
/* (hi:lo >> 11) < thr for the 16 lanes of hi[], lo[], as a mask */
static inline __mmask16 u53_below(const uint32_t *hi, const uint32_t *lo, __m512i thr) {
  __mmask16 m = 0;
  for (int h = 0; h < 2; h++) {
    __m512i v = _mm512_or_si512(_mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm256_loadu_si256((const void *)(hi + 8 * h))), 32),
                                _mm512_cvtepu32_epi64(_mm256_loadu_si256((const void *)(lo + 8 * h))));
    m |= (__mmask16)(_mm512_cmplt_epu64_mask(_mm512_srli_epi64(v, 11), thr) << (8 * h));
  }
  return m;
}

/* the 32 mask values of the 16 full blocks from lane `off` of x (element
 * 2l from words 0:1 of block l, 2l + 1 from words 2:3), compared as vectors */
static inline uint32_t bern_bits16(uint32_t x[4][32], int off, uint64_t thr) {
  __m512i t = _mm512_set1_epi64((long long)thr);
  uint32_t a = u53_below(x[0] + off, x[1] + off, t), b = u53_below(x[2] + off, x[3] + off, t);
  return _pdep_u32(a, 0x55555555u) | _pdep_u32(b, 0xAAAAAAAAu);
}
#define BERN_STORE32(T, o, bits)                                                            \
  do {                                                                                      \
    if (sizeof(T) == 4) {                                                                   \
      const __m512 one = _mm512_set1_ps(1.0f);                                              \
      _mm512_storeu_ps((float *)(o), _mm512_maskz_mov_ps((__mmask16)(bits), one));          \
      _mm512_storeu_ps((float *)(o) + 16, _mm512_maskz_mov_ps((__mmask16)((bits) >> 16), one)); \
    } else {                                                                                \
      const __m512d one = _mm512_set1_pd(1.0);                                              \
      for (int q = 0; q < 4; q++)                                                           \
        _mm512_storeu_pd((double *)(o) + 8 * q, _mm512_maskz_mov_pd((__mmask8)((bits) >> (8 * q)), one)); \
    }                                                                                       \
  } while (0)
#define BERN_VECTOR 1
#endif
#else
/* 8 blocks computed before any is stored so their multiply chains overlap */
static void philox8(dl_rng_state st, uint64_t blk, uint32_t x[4][8]) {
  for (int l = 0; l < 8; l++) {
    uint32_t w[4];
    dl_rng_block(st, blk + (uint64_t)l, w);
    for (int k = 0; k < 4; k++) x[k][l] = w[k];
  }
}
#define BERN_LANES 8
#endif

/* A float mask with one probability (dropout's): the same draws as below,
 * u53(x0, x1) < p compared as integers ((x0:x1 >> 11) < ceil(p 2^53), the
 * same test since p 2^53 is exact), without a dtype switch per block, and
 * BERN_LANES blocks drawn at once (AVX-512: 16 Philox streams in vector
 * lanes; else 8 blocks whose multiply chains overlap) */
#define BERN_FLOAT(T)                                                                      \
  do {                                                                                     \
    T *o = (T *)j->base;                                                                   \
    const dl_rng_state st = j->st;                                                         \
    const int64_t n = j->n;                                                                \
    for (int64_t blk = b0; blk < b1; blk += BERN_LANES) {                                  \
      uint32_t x[4][BERN_LANES];                                                           \
      const int m = b1 - blk < BERN_LANES ? (int)(b1 - blk) : BERN_LANES;                  \
      BERN_DRAW(st, (uint64_t)blk, x);                                                     \
      if (BERN_FULL(m, blk, n)) {                                                          \
        BERN_FULL_STORE(T, o + blk * 2, x);                                                \
        continue;                                                                          \
      }                                                                                    \
      for (int l = 0; l < m; l++) {                                                        \
        const int64_t i0 = (blk + l) * 2;                                                  \
        o[i0] = (T)((((uint64_t)x[0][l] << 32 | x[1][l]) >> 11) < thr);                    \
        if (i0 + 1 < n) o[i0 + 1] = (T)((((uint64_t)x[2][l] << 32 | x[3][l]) >> 11) < thr); \
      }                                                                                    \
    }                                                                                      \
  } while (0)
#if defined(__AVX512F__)
#define BERN_DRAW philox32
#else
#define BERN_DRAW philox8
#endif
/* 32 whole blocks whose 64 elements all exist: compared and stored as vectors */
#ifdef BERN_VECTOR
#define BERN_FULL(m, blk, n) ((m) == 32 && ((blk) + 32) * 2 <= (n))
#define BERN_FULL_STORE(T, o, x)                     \
  do {                                               \
    for (int h_ = 0; h_ < 2; h_++) {                 \
      uint32_t bits_ = bern_bits16(x, 16 * h_, thr); \
      BERN_STORE32(T, (o) + 32 * h_, bits_);         \
    }                                                \
  } while (0)
#else
#define BERN_FULL(m, blk, n) 0
#define BERN_FULL_STORE(T, o, x) (void)0
#endif

static void bern_blocks(void *ctx, int64_t b0, int64_t b1) {
  const job *j = ctx;
  if (!j->probs && j->a >= 0 && j->a <= 1 && (j->dt == DL_FLOAT32 || j->dt == DL_FLOAT64)) {
    const uint64_t thr = (uint64_t)ceil(j->a * 9007199254740992.0);
    if (j->dt == DL_FLOAT32) BERN_FLOAT(float);
    else BERN_FLOAT(double);
    return;
  }
  for (int64_t blk = b0; blk < b1; blk++) {
    uint32_t x[4];
    int64_t v[2];
    dl_rng_block(j->st, (uint64_t)blk, x);
    int64_t i0 = blk * 2;
    int cnt = j->n - i0 < 2 ? 1 : 2;
    for (int l = 0; l < cnt; l++) {
      double p = j->probs ? j->probs[i0 + l] : j->a;
      v[l] = dl_rng_u53(x[2 * l], x[2 * l + 1]) < p;
    }
    store_ints(j->base, j->dt, i0, cnt, v);
  }
}

/* ---- dropout: one word an element, mask = (word < keep 2^32) scale, out = x mask ----
 * Element i takes word i % 4 of block i / 4 (randint's layout for a range
 * of 2^32): half the Philox work of bernoulli's 53-bit draws. */

#ifdef BERN_VECTOR
/* the 64 keep bits of 16 whole blocks from lane `off` of x: element 4l + w
 * from word w of block l */
static inline uint64_t keep_bits64(uint32_t x[4][32], int off, __m512i thr, bool all) {
  static const uint64_t spread[4] = {0x1111111111111111u, 0x2222222222222222u, 0x4444444444444444u,
                                     0x8888888888888888u};
  uint64_t bits = 0;
  for (int w = 0; w < 4; w++) {
    __mmask16 m = all ? 0xFFFF : _mm512_cmplt_epu32_mask(_mm512_loadu_si512(x[w] + off), thr);
    bits |= _pdep_u64(m, spread[w]);
  }
  return bits;
}
/* 64 elements from their keep bits: the uint8 mask and out = x kept scale */
static inline void drop64_f(float *out, uint8_t *mask, const float *x, uint64_t bits, float scale) {
  _mm512_storeu_si512(mask, _mm512_maskz_mov_epi8(bits, _mm512_set1_epi8(1)));
  const __m512 s = _mm512_set1_ps(scale);
  for (int q = 0; q < 4; q++)
    _mm512_storeu_ps(out + 16 * q, _mm512_maskz_mul_ps((__mmask16)(bits >> (16 * q)), _mm512_loadu_ps(x + 16 * q), s));
}
static inline void drop64_d(double *out, uint8_t *mask, const double *x, uint64_t bits, double scale) {
  _mm512_storeu_si512(mask, _mm512_maskz_mov_epi8(bits, _mm512_set1_epi8(1)));
  const __m512d s = _mm512_set1_pd(scale);
  for (int q = 0; q < 8; q++)
    _mm512_storeu_pd(out + 8 * q, _mm512_maskz_mul_pd((__mmask8)(bits >> (8 * q)), _mm512_loadu_pd(x + 8 * q), s));
}
#define DROP_FULL(S, T, i0, x)                                                                              \
  for (int h_ = 0; h_ < 2; h_++) {                                                                          \
    const __m512i thr_ = _mm512_set1_epi32((int)(uint32_t)(thr > 0xFFFFFFFFu ? 0 : thr));                    \
    drop64_##S(o + (i0) + 64 * h_, mk + (i0) + 64 * h_, xs + (i0) + 64 * h_,                                \
               keep_bits64(x, 16 * h_, thr_, thr > 0xFFFFFFFFu), scale);                                    \
  }
#define DROP_WHOLE(m, blk, n) ((m) == 32 && ((blk) + 32) * 4 <= (n))
#else
#define DROP_FULL(S, T, i0, x) (void)0
#define DROP_WHOLE(m, blk, n) 0
#endif

#define DROP(S, T)                                                                                  \
  do {                                                                                              \
    T *o = (T *)j->base;                                                                            \
    uint8_t *mk = (uint8_t *)j->mask;                                                               \
    const T *xs = (const T *)j->x, scale = (T)j->b;                                                 \
    const int64_t n = j->n;                                                                         \
    for (int64_t blk = b0; blk < b1; blk += BERN_LANES) {                                           \
      uint32_t x[4][BERN_LANES];                                                                    \
      const int m = b1 - blk < BERN_LANES ? (int)(b1 - blk) : BERN_LANES;                           \
      BERN_DRAW(st, (uint64_t)blk, x);                                                              \
      if (DROP_WHOLE(m, blk, n)) {                                                                  \
        DROP_FULL(S, T, blk * 4, x);                                                                \
        continue;                                                                                   \
      }                                                                                             \
      for (int l = 0; l < m; l++)                                                                   \
        for (int w = 0; w < 4 && (blk + l) * 4 + w < n; w++) {                                      \
          const int64_t i = (blk + l) * 4 + w;                                                      \
          const bool kept = (uint64_t)x[w][l] < thr;                                                \
          mk[i] = kept;                                                                             \
          o[i] = kept ? xs[i] * scale : (T)0;                                                       \
        }                                                                                           \
    }                                                                                               \
  } while (0)

static void drop_blocks(void *ctx, int64_t b0, int64_t b1) {
  const job *j = ctx;
  const dl_rng_state st = j->st;
  const uint64_t thr = (uint64_t)ceil(j->a * 4294967296.0);
  if (j->dt == DL_FLOAT32) DROP(f, float);
  else DROP(d, double);
}

static int cpu_dropout(dl_tensor *out, dl_tensor *mask, const dl_tensor *x, dl_rng_state st, double keep,
                       double scale) {
  job j = {.st = st, .dt = out->dtype, .base = dl_tensor_data(out), .n = out->numel, .a = keep, .b = scale,
           .x = dl_tensor_data(x), .mask = dl_tensor_data(mask)};
  dl_cpu_run_blocks((j.n + 3) / 4, BLOCK_GRAIN, drop_blocks, &j);
  return DL_KERNEL_OK;
}

#define DROP_BWD(T)                                                                   \
  do {                                                                                \
    T *o = dl_tensor_data(gx);                                                        \
    const T *gp = dl_tensor_data(g), sc = (T)scale;                                   \
    const uint8_t *mp = dl_tensor_data(mask);                                         \
    _Pragma("omp parallel for if (n > DL_PARALLEL_GRAIN)") for (int64_t i = 0; i < n; i++) \
      o[i] = gp[i] * (sc * (T)mp[i]); /* a multiply, not a select: it vectorises */  \
  } while (0)

static int cpu_dropout_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *mask, double scale) {
  const int64_t n = gx->numel;
  if (gx->dtype == DL_FLOAT32) DROP_BWD(float);
  else DROP_BWD(double);
  return DL_KERNEL_OK;
}

static int64_t cpu_bernoulli(dl_tensor *out, dl_rng_state st, double p, const dl_tensor *probs) {
  int64_t n = out->numel;
  const double *pp = probs ? (const double *)dl_tensor_data(probs) : NULL;
  if (pp) { /* validate first so a bad tensor leaves out untouched */
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !(pp[i] >= 0 && pp[i] <= 1);
    if (bad) return bad;
  }
  job j = {.st = st, .dt = out->dtype, .base = dl_tensor_data(out), .n = n, .a = p, .probs = pp};
  dl_cpu_run_blocks((n + 1) / 2, BLOCK_GRAIN, bern_blocks, &j);
  return 0;
}

/* ---- randperm: sort 1..n by random 64-bit keys (ties by index) ---- */

typedef struct { uint64_t key; int64_t idx; } perm_key;

static int cmp_key(const void *pa, const void *pb) {
  const perm_key *a = pa, *b = pb;
  if (a->key != b->key) return a->key < b->key ? -1 : 1;
  return (a->idx > b->idx) - (a->idx < b->idx);
}

static void key_blocks(void *ctx, int64_t b0, int64_t b1) {
  const job *j = ctx;
  perm_key *keys = j->keys;
  for (int64_t blk = b0; blk < b1; blk++) {
    uint32_t x[4];
    dl_rng_block(j->st, (uint64_t)blk, x);
    for (int l = 0; l < 2 && blk * 2 + l < j->n; l++) {
      int64_t i = blk * 2 + l;
      keys[i].key = ((uint64_t)x[2 * l] << 32) | x[2 * l + 1];
      keys[i].idx = i;
    }
  }
}

static int cpu_randperm(dl_tensor *out, dl_rng_state st) {
  int64_t n = out->numel;
  size_t bytes = (size_t)n * sizeof(perm_key);
  perm_key *keys = dl_host_alloc(bytes);
  if (!keys) return -1;
  job j = {.st = st, .n = n, .keys = keys};
  dl_cpu_run_blocks((n + 1) / 2, BLOCK_GRAIN, key_blocks, &j);
  qsort(keys, (size_t)n, sizeof(perm_key), cmp_key);
  int64_t *o = dl_tensor_data(out);
  for (int64_t i = 0; i < n; i++) o[i] = keys[i].idx + 1;
  dl_host_free(keys, bytes);
  return 0;
}

const struct dl_random_kernels dl_cpu_random = {
  .fill_float = cpu_fill_float,
  .randint = cpu_randint,
  .bernoulli = cpu_bernoulli,
  .randperm = cpu_randperm,
  .dropout = cpu_dropout,
  .dropout_backward = cpu_dropout_backward,
};
