/* cpu_reduce.c — the CPU reduction kernel.
 *
 * The dims of src split into kept dims (out's size equals src's) and reduced
 * ones; each class is sorted by src stride and coalesced. Then one of:
 *  - inner: the reduced dims are innermost in memory; each output folds
 *    contiguous runs of src (threads over outputs, or over the reduction
 *    itself when there are few outputs);
 *  - outer: a kept dim is innermost; a block of outputs along it is a row
 *    of accumulators, and every reduced position adds one src row to it,
 *    so the loads stay contiguous and the loop vectorises.
 * Floating inputs accumulate in double, integer and bool ones in int64
 * (wrapping as PyTorch's do), so float32 sums of 1e7 ones are exact. */
#include "../ops/dl_reduce.h"
#include "../ops/dl_reduce_plan.h"
#include "cpu_backend.h"
#include "cpu_iter.h"
#include "cpu_reduce_util.h"

#include "cpu_vecmath.h"

#ifdef __AVX__
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#define B DL_RED_BLOCK
/* outputs per outer-mode work item: a wide row keeps each src row read
 * long (whole pages), which matters when rows are far apart */
#define RB 1024
#define MAX_PARTS 64


/* the shared plan (dl_reduce_plan.h), with strides turned into bytes */
typedef dl_reduce_plan plan;

typedef struct {
  double a, b;
  int64_t v, idx;
} rstate;

typedef struct {
  double a[RB], b[RB], m[RB];
  int64_t v[RB], idx[RB];
} rows;

/* ---- plan ---- */

static void plan_init(plan *P, const dl_reduce_call *c) {
  dl_reduce_plan_init(P, c);
  const dl_tensor *ops[DL_RK_NOPS] = {c->src, c->out, c->indices, c->aux};
  for (int k = 0; k < DL_RK_NOPS; k++) {
    int64_t es = ops[k] ? (int64_t)dl_dtype_size(ops[k]->dtype) : 0;
    for (int i = 0; i < P->nk; i++) P->kstr[k][i] *= es;
  }
  int64_t es = (int64_t)dl_dtype_size(c->src->dtype);
  for (int i = 0; i < P->nr; i++) P->rstr[i] *= es;
}

/* ---- one accumulator ---- */

static void state_init(const plan *P, rstate *st) {
  st->a = st->b = 0;
  st->v = 0;
  st->idx = -1;
  switch (P->op) {
  case DL_REDUCE_PROD: case DL_REDUCE_ALL: st->a = 1; st->v = 1; break;
  case DL_REDUCE_MAX: st->a = -INFINITY; st->v = INT64_MIN; break;
  case DL_REDUCE_MIN: st->a = INFINITY; st->v = INT64_MAX; break;
  case DL_REDUCE_NORM: st->a = P->pkind == DL_RP_NINF ? INFINITY : 0; break;
  default: break;
  }
}

/* NaN wins, then the larger (smaller) value; ties keep the earlier one */
#define BETTER_MAX(x, best) ((x) > (best) || ((x) != (x) && (best) == (best)))
#define BETTER_MIN(x, best) ((x) < (best) || ((x) != (x) && (best) == (best)))

/* sums with 16 independent lanes: a fixed-count inner loop that -O2
 * vectorises into several vector accumulators, so the adds overlap */
#define LANE_SUM(NAME, T, F)                                            \
  static double NAME(const T *x, int64_t n) {                           \
    double acc[16] = {0};                                               \
    int64_t i = 0;                                                      \
    for (; i + 16 <= n; i += 16)                                        \
      for (int l = 0; l < 16; l++) acc[l] += F((double)x[i + l]);       \
    double s = 0;                                                       \
    for (; i < n; i++) s += F((double)x[i]);                            \
    for (int l = 0; l < 16; l++) s += acc[l];                           \
    return s;                                                           \
  }
#define ID(v) (v)
#define SQ(v) ((v) * (v))
LANE_SUM(sum_d, double, ID)
LANE_SUM(sum_f, float, ID)
LANE_SUM(sumsq_d, double, SQ)
LANE_SUM(sumsq_f, float, SQ)

/* the largest (smallest) element of a non-empty block, NaN when any is;
 * an int64 NaN flag keeps the lanes one width, so the loop vectorises */
#define BLOCK_EXTREME(NAME, RED, INIT, CMP, F)                          \
  static double NAME(const double *x, int64_t n) {                      \
    double m = INIT;                                                    \
    int64_t nanf = 0;                                                   \
    DL_SIMD_REDUCE2(RED, m, |, nanf)                                    \
    for (int64_t i = 0; i < n; i++) {                                   \
      double y = F(x[i]);                                               \
      m = y CMP m ? y : m;                                              \
      nanf |= y != y;                                                   \
    }                                                                   \
    return nanf ? NAN : m;                                              \
  }
BLOCK_EXTREME(block_max, max, -INFINITY, >, ID)
BLOCK_EXTREME(block_min, min, INFINITY, <, ID)
BLOCK_EXTREME(block_absmax, max, -INFINITY, >, fabs)
BLOCK_EXTREME(block_absmin, min, INFINITY, <, fabs)

static void block_d(const plan *P, const double *x, int64_t n, int64_t pos, rstate *st, double m) {
  switch (P->op) {
  case DL_REDUCE_SUM: case DL_REDUCE_MEAN: st->a += sum_d(x, n); break;
  case DL_REDUCE_PROD: {
    double p = 1;
    DL_SIMD_REDUCE(*, p)
    for (int64_t i = 0; i < n; i++) p *= x[i];
    st->a *= p;
    break;
  }
  case DL_REDUCE_MAX: case DL_REDUCE_MIN: {
    /* the block's extreme first (vectorised), then its first position */
    bool mx = P->op == DL_REDUCE_MAX;
    double r = mx ? block_max(x, n) : block_min(x, n);
    bool take = mx ? BETTER_MAX(r, st->a) : BETTER_MIN(r, st->a);
    if (P->want_index && (take || st->idx < 0)) {
      int64_t i = 0;
      if (r != r) while (x[i] == x[i]) i++;
      else while (x[i] != r) i++;
      st->idx = pos + i;
      take = true;
    }
    if (take) st->a = r;
    break;
  }
  case DL_REDUCE_ALL:
    for (int64_t i = 0; i < n; i++) if (x[i] == 0) { st->a = 0; break; }
    break;
  case DL_REDUCE_ANY:
    for (int64_t i = 0; i < n; i++) if (x[i] != 0) { st->a = 1; break; }
    break;
  case DL_REDUCE_COUNT_NONZERO: {
    double c = 0;
    DL_SIMD_REDUCE(+, c)
    for (int64_t i = 0; i < n; i++) c += x[i] != 0;
    st->a += c;
    break;
  }
  case DL_REDUCE_NORM: {
    double a = 0, p = P->p;
    switch (P->pkind) {
    case DL_RP_ZERO:
      DL_SIMD_REDUCE(+, a)
      for (int64_t i = 0; i < n; i++) a += x[i] != 0;
      break;
    case DL_RP_ONE:
      DL_SIMD_REDUCE(+, a)
      for (int64_t i = 0; i < n; i++) a += fabs(x[i]);
      break;
    case DL_RP_TWO: a = sumsq_d(x, n); break;
    case DL_RP_INF: {
      double r = block_absmax(x, n);
      st->a = BETTER_MAX(r, st->a) ? r : st->a;
      return;
    }
    case DL_RP_NINF: {
      double r = block_absmin(x, n);
      st->a = BETTER_MIN(r, st->a) ? r : st->a;
      return;
    }
    default: for (int64_t i = 0; i < n; i++) a += pow(fabs(x[i]), p); break;
    }
    st->a += a;
    break;
  }
  case DL_REDUCE_VAR: {
    /* the sum of deviations corrects a mean that is off by rounding */
    double s = 0, q = 0;
    DL_SIMD_REDUCE2(+, s, +, q)
    for (int64_t i = 0; i < n; i++) {
      double d = x[i] - m;
      s += d;
      q += d * d;
    }
    st->a += s;
    st->b += q;
    break;
  }
  case DL_REDUCE_LOGSUMEXP: {
    double s = 0;
    if (P->sdt == DL_FLOAT32) /* float precision suffices, and expf is faster */
      for (int64_t i = 0; i < n; i++) s += expf((float)(x[i] - m));
    else
      for (int64_t i = 0; i < n; i++) s += exp(x[i] - m);
    st->a += s;
    break;
  }
  default: break;
  }
}

static void block_i(const plan *P, const int64_t *x, int64_t n, int64_t pos, rstate *st) {
  switch (P->op) {
  case DL_REDUCE_SUM: {
    uint64_t s = 0; /* wraps like PyTorch, without UB */
    DL_SIMD_REDUCE(+, s)
    for (int64_t i = 0; i < n; i++) s += (uint64_t)x[i];
    st->v = (int64_t)((uint64_t)st->v + s);
    break;
  }
  case DL_REDUCE_PROD: {
    uint64_t p = (uint64_t)st->v;
    for (int64_t i = 0; i < n; i++) p *= (uint64_t)x[i];
    st->v = (int64_t)p;
    break;
  }
  case DL_REDUCE_MAX: case DL_REDUCE_MIN: {
    bool mx = P->op == DL_REDUCE_MAX;
    int64_t r = x[0];
    if (mx) {
      DL_SIMD_REDUCE(max, r)
      for (int64_t i = 1; i < n; i++) r = x[i] > r ? x[i] : r;
    } else {
      DL_SIMD_REDUCE(min, r)
      for (int64_t i = 1; i < n; i++) r = x[i] < r ? x[i] : r;
    }
    bool take = mx ? r > st->v : r < st->v;
    if (P->want_index && (take || st->idx < 0)) {
      int64_t i = 0;
      while (x[i] != r) i++;
      st->idx = pos + i;
      take = true;
    }
    if (take) st->v = r;
    break;
  }
  case DL_REDUCE_ALL:
    for (int64_t i = 0; i < n; i++) if (!x[i]) { st->v = 0; break; }
    break;
  case DL_REDUCE_ANY:
    for (int64_t i = 0; i < n; i++) if (x[i]) { st->v = 1; break; }
    break;
  case DL_REDUCE_COUNT_NONZERO: {
    int64_t c = 0;
    DL_SIMD_REDUCE(+, c)
    for (int64_t i = 0; i < n; i++) c += x[i] != 0;
    st->v += c;
    break;
  }
  default: break;
  }
}

/* folds partial state o (from later positions) into s */
static void state_combine(const plan *P, rstate *s, const rstate *o) {
  switch (P->op) {
  case DL_REDUCE_SUM:
    if (P->ipath) s->v = (int64_t)((uint64_t)s->v + (uint64_t)o->v);
    else s->a += o->a;
    break;
  case DL_REDUCE_PROD:
    if (P->ipath) s->v = (int64_t)((uint64_t)s->v * (uint64_t)o->v);
    else s->a *= o->a;
    break;
  case DL_REDUCE_MAX: case DL_REDUCE_MIN: {
    bool mx = P->op == DL_REDUCE_MAX;
    if (P->want_index && o->idx < 0) break;
    bool take;
    if (P->ipath) take = mx ? o->v > s->v : o->v < s->v;
    else take = mx ? BETTER_MAX(o->a, s->a) : BETTER_MIN(o->a, s->a);
    if (take || (P->want_index && s->idx < 0)) *s = *o;
    break;
  }
  case DL_REDUCE_ALL: s->a = s->a && o->a; s->v = s->v && o->v; break;
  case DL_REDUCE_ANY: s->a = s->a || o->a; s->v = s->v || o->v; break;
  case DL_REDUCE_NORM:
    if (P->pkind == DL_RP_INF) s->a = BETTER_MAX(o->a, s->a) ? o->a : s->a;
    else if (P->pkind == DL_RP_NINF) s->a = BETTER_MIN(o->a, s->a) ? o->a : s->a;
    else s->a += o->a;
    break;
  default: /* sums */
    s->a += o->a;
    s->b += o->b;
    s->v += o->v;
    break;
  }
}

/* the double-path result from a finished state; m is the aux value */
static double finish_d(const plan *P, double a, double b, double m) {
  double n = (double)P->nred;
  switch (P->op) {
  case DL_REDUCE_MEAN: return a / n;
  case DL_REDUCE_NORM:
    if (P->pkind == DL_RP_TWO) return sqrt(a);
    if (P->pkind == DL_RP_GEN) return pow(a, 1.0 / P->p);
    return a;
  case DL_REDUCE_VAR: {
    double dof = n - P->correction;
    if (dof < 0) dof = 0;
    double v = (b - a * a / n) / dof;
    if (v < 0) v = 0;
    return P->take_sqrt ? sqrt(v) : v;
  }
  case DL_REDUCE_LOGSUMEXP: return isfinite(m) ? log(a) + m : m;
  default: return a;
  }
}

/* ---- inner mode ---- */

static bool fused_f32(const plan *P, int64_t istr) {
  return P->sdt == DL_FLOAT32 && istr == (int64_t)sizeof(float) &&
         (P->op == DL_REDUCE_SUM || P->op == DL_REDUCE_MEAN || (P->op == DL_REDUCE_NORM && P->pkind == DL_RP_TWO));
}

/* folds reduced positions [begin, end) of the output whose src block
 * starts at sbase */
static void reduce_range(const plan *P, const char *sbase, int64_t begin, int64_t end, rstate *st, double m) {
  if (begin >= end) return; /* also an empty reduction: no division by a zero size */
  int nr = P->nr;
  int64_t inner = P->rsize[nr - 1], istr = P->rstr[nr - 1];
  int64_t idx[DL_MAX_DIMS];
  int64_t rem = begin;
  for (int d = nr - 1; d >= 0; d--) {
    idx[d] = rem % P->rsize[d];
    rem /= P->rsize[d];
  }
  double dbuf[B];
  int64_t ibuf[B];
  int64_t pos = begin;
  while (pos < end) {
    const char *p = sbase;
    for (int d = 0; d < nr; d++) p += idx[d] * P->rstr[d];
    int64_t n = inner - idx[nr - 1];
    if (n > end - pos) n = end - pos;
    if (fused_f32(P, istr)) { /* contiguous float32 sums: no buffer */
      if (P->op == DL_REDUCE_NORM) st->a += sumsq_f((const float *)p, n);
      else st->a += sum_f((const float *)p, n);
    } else for (int64_t off = 0; off < n; off += B) {
      int64_t nb = n - off < B ? n - off : B;
      const char *q = p + off * istr;
      if (P->ipath) block_i(P, dl_load_i(P->sdt, q, istr, nb, ibuf), nb, pos + off, st);
      else block_d(P, dl_load_d(P->sdt, q, istr, nb, dbuf), nb, pos + off, st, m);
    }
    pos += n;
    idx[nr - 1] += n;
    for (int d = nr - 1; d > 0 && idx[d] >= P->rsize[d]; d--) {
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
}

/* byte offsets of output o (over all kept dims, or all but the innermost) */
static void kept_offsets(const plan *P, int64_t o, int nk, int64_t *off) {
  for (int k = 0; k < DL_RK_NOPS; k++) off[k] = 0;
  for (int d = nk - 1; d >= 0; d--) {
    int64_t i = o % P->ksize[d];
    o /= P->ksize[d];
    for (int k = 0; k < DL_RK_NOPS; k++) off[k] += i * P->kstr[k][d];
  }
}

static void store_one(const plan *P, const int64_t *off, const rstate *st, double m) {
  if (P->ipath) {
    dl_store_i(P->odt, P->base[DL_RK_OUT] + off[DL_RK_OUT], 0, 1, &st->v);
  } else {
    double r = finish_d(P, st->a, st->b, m);
    dl_store_d(P->odt, P->base[DL_RK_OUT] + off[DL_RK_OUT], 0, 1, &r);
  }
  if (P->want_index) {
    int64_t i = st->idx + 1; /* 1-based */
    dl_store_i(DL_INT64, P->base[DL_RK_IDX] + off[DL_RK_IDX], 0, 1, &i);
  }
}

static double aux_at(const plan *P, const int64_t *off) {
  if (!P->has_aux) return 0;
  double m;
  dl_load_d_copy(P->adt, P->base[DL_RK_AUX] + off[DL_RK_AUX], 0, 1, &m);
  return m;
}

/* one output, its reduction split across threads when it is large */
static void reduce_one_split(const plan *P, int64_t o) {
  int64_t off[DL_RK_NOPS];
  kept_offsets(P, o, P->nk, off);
  double m = aux_at(P, off);
  const char *sbase = P->base[DL_RK_SRC] + off[DL_RK_SRC];
  rstate st;
  state_init(P, &st);
#ifdef _OPENMP
  if (P->nred >= DL_PARALLEL_GRAIN && omp_get_max_threads() > 1) {
    rstate part[MAX_PARTS];
    int T = omp_get_max_threads() < MAX_PARTS ? omp_get_max_threads() : MAX_PARTS;
    for (int t = 0; t < T; t++) state_init(P, &part[t]);
#pragma omp parallel num_threads(T)
    {
      int nt = omp_get_num_threads(), id = omp_get_thread_num();
      int64_t chunk = (P->nred + nt - 1) / nt;
      int64_t b = (int64_t)id * chunk, e = b + chunk < P->nred ? b + chunk : P->nred;
      if (b < e) reduce_range(P, sbase, b, e, &part[id], m);
    }
    for (int t = 0; t < T; t++) state_combine(P, &st, &part[t]);
    store_one(P, off, &st, m);
    return;
  }
#endif
  reduce_range(P, sbase, 0, P->nred, &st, m);
  store_one(P, off, &st, m);
}

/* output o, its reduction in one run */
static void reduce_one(const plan *P, int64_t o) {
  int64_t off[DL_RK_NOPS];
  kept_offsets(P, o, P->nk, off);
  double m = aux_at(P, off);
  rstate st;
  state_init(P, &st);
  reduce_range(P, P->base[DL_RK_SRC] + off[DL_RK_SRC], 0, P->nred, &st, m);
  store_one(P, off, &st, m);
}

static void reduce_inner(const plan *P) {
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  /* few outputs: parallelise each reduction instead */
  if (P->nout < 2 * (int64_t)threads) {
    for (int64_t o = 0; o < P->nout; o++) reduce_one_split(P, o);
    return;
  }
  if (P->nout * P->nred < DL_PARALLEL_GRAIN || threads == 1) { /* no idle parallel region (futex calls) */
    for (int64_t o = 0; o < P->nout; o++) reduce_one(P, o);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < P->nout; o++) reduce_one(P, o);
}

/* ---- outer mode ---- */

static void rows_init(const plan *P, rows *R, int64_t nb) {
  rstate s;
  state_init(P, &s);
  for (int64_t j = 0; j < nb; j++) {
    R->a[j] = s.a;
    R->b[j] = 0;
    R->v[j] = s.v;
    R->idx[j] = -1;
  }
}

static void rows_d(const plan *P, const double *x, int64_t n, int64_t r, rows *R) {
  double *a = R->a, *b = R->b;
  const double *m = R->m;
  switch (P->op) {
  case DL_REDUCE_SUM: case DL_REDUCE_MEAN: DL_SIMD for (int64_t j = 0; j < n; j++) a[j] += x[j]; break;
  case DL_REDUCE_PROD: DL_SIMD for (int64_t j = 0; j < n; j++) a[j] *= x[j]; break;
  case DL_REDUCE_MAX:
    if (P->want_index) {
      int64_t *ix = R->idx;
      DL_SIMD for (int64_t j = 0; j < n; j++) {
        bool t = ix[j] < 0 || BETTER_MAX(x[j], a[j]);
        a[j] = t ? x[j] : a[j];
        ix[j] = t ? r : ix[j];
      }
    } else {
      DL_SIMD for (int64_t j = 0; j < n; j++) a[j] = BETTER_MAX(x[j], a[j]) ? x[j] : a[j];
    }
    break;
  case DL_REDUCE_MIN:
    if (P->want_index) {
      int64_t *ix = R->idx;
      DL_SIMD for (int64_t j = 0; j < n; j++) {
        bool t = ix[j] < 0 || BETTER_MIN(x[j], a[j]);
        a[j] = t ? x[j] : a[j];
        ix[j] = t ? r : ix[j];
      }
    } else {
      DL_SIMD for (int64_t j = 0; j < n; j++) a[j] = BETTER_MIN(x[j], a[j]) ? x[j] : a[j];
    }
    break;
  case DL_REDUCE_ALL: for (int64_t j = 0; j < n; j++) a[j] = (a[j] != 0 && x[j] != 0); break;
  case DL_REDUCE_ANY: for (int64_t j = 0; j < n; j++) a[j] = (a[j] != 0 || x[j] != 0); break;
  case DL_REDUCE_COUNT_NONZERO: DL_SIMD for (int64_t j = 0; j < n; j++) a[j] += x[j] != 0; break;
  case DL_REDUCE_NORM:
    switch (P->pkind) {
    case DL_RP_ZERO: DL_SIMD for (int64_t j = 0; j < n; j++) a[j] += x[j] != 0; break;
    case DL_RP_ONE: DL_SIMD for (int64_t j = 0; j < n; j++) a[j] += fabs(x[j]); break;
    case DL_RP_TWO: DL_SIMD for (int64_t j = 0; j < n; j++) a[j] += x[j] * x[j]; break;
    case DL_RP_INF:
      for (int64_t j = 0; j < n; j++) { double y = fabs(x[j]); a[j] = BETTER_MAX(y, a[j]) ? y : a[j]; }
      break;
    case DL_RP_NINF:
      for (int64_t j = 0; j < n; j++) { double y = fabs(x[j]); a[j] = BETTER_MIN(y, a[j]) ? y : a[j]; }
      break;
    default: for (int64_t j = 0; j < n; j++) a[j] += pow(fabs(x[j]), P->p); break;
    }
    break;
  case DL_REDUCE_VAR:
    DL_SIMD for (int64_t j = 0; j < n; j++) {
      double d = x[j] - m[j];
      a[j] += d;
      b[j] += d * d;
    }
    break;
  case DL_REDUCE_LOGSUMEXP:
    if (P->sdt == DL_FLOAT32)
      for (int64_t j = 0; j < n; j++) a[j] += expf((float)(x[j] - m[j]));
    else
      for (int64_t j = 0; j < n; j++) a[j] += exp(x[j] - m[j]);
    break;
  default: break;
  }
}

static void rows_i(const plan *P, const int64_t *x, int64_t n, int64_t r, rows *R) {
  int64_t *v = R->v;
  switch (P->op) {
  case DL_REDUCE_SUM:
    DL_SIMD for (int64_t j = 0; j < n; j++) v[j] = (int64_t)((uint64_t)v[j] + (uint64_t)x[j]);
    break;
  case DL_REDUCE_PROD:
    for (int64_t j = 0; j < n; j++) v[j] = (int64_t)((uint64_t)v[j] * (uint64_t)x[j]);
    break;
  case DL_REDUCE_MAX:
    if (P->want_index) {
      int64_t *ix = R->idx;
      DL_SIMD for (int64_t j = 0; j < n; j++) {
        bool t = ix[j] < 0 || x[j] > v[j];
        v[j] = t ? x[j] : v[j];
        ix[j] = t ? r : ix[j];
      }
    } else {
      DL_SIMD for (int64_t j = 0; j < n; j++) v[j] = x[j] > v[j] ? x[j] : v[j];
    }
    break;
  case DL_REDUCE_MIN:
    if (P->want_index) {
      int64_t *ix = R->idx;
      DL_SIMD for (int64_t j = 0; j < n; j++) {
        bool t = ix[j] < 0 || x[j] < v[j];
        v[j] = t ? x[j] : v[j];
        ix[j] = t ? r : ix[j];
      }
    } else {
      DL_SIMD for (int64_t j = 0; j < n; j++) v[j] = x[j] < v[j] ? x[j] : v[j];
    }
    break;
  case DL_REDUCE_ALL: for (int64_t j = 0; j < n; j++) v[j] = v[j] && x[j]; break;
  case DL_REDUCE_ANY: for (int64_t j = 0; j < n; j++) v[j] = v[j] || x[j]; break;
  case DL_REDUCE_COUNT_NONZERO: for (int64_t j = 0; j < n; j++) v[j] += x[j] != 0; break;
  default: break;
  }
}

/* Column sums of float32 rows (a bias gradient: [rows, n] summed over
 * rows), 32 columns at a time in eight AVX registers of doubles, so no
 * accumulator goes through memory per row. Same order of additions as the
 * row loop. Returns how many leading columns it summed into a. */
static int64_t colsum_f32(const char *p, int64_t rstride, int64_t nrows, int64_t n, double *a) {
#ifdef __AVX__
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256d s[8];
    for (int q = 0; q < 8; q++) s[q] = _mm256_loadu_pd(a + j + 4 * q);
    const char *row = p + j * (int64_t)sizeof(float);
    for (int64_t r = 0; r < nrows; r++, row += rstride) {
      const float *x = (const float *)row;
      for (int q = 0; q < 8; q++) s[q] = _mm256_add_pd(s[q], _mm256_cvtps_pd(_mm_loadu_ps(x + 4 * q)));
    }
    for (int q = 0; q < 8; q++) _mm256_storeu_pd(a + j + 4 * q, s[q]);
  }
  return j;
#else
  (void)p, (void)rstride, (void)nrows, (void)n, (void)a;
  return 0;
#endif
}

/* work item w: a block of up to `width` (<= RB) outputs along the
 * innermost kept dim */
static void reduce_block(const plan *P, int64_t w, int64_t nblk, int64_t width) {
  int nk = P->nk, ki = nk - 1;
  int64_t k0 = P->ksize[ki];
  int64_t blk = w % nblk;
  int64_t off[DL_RK_NOPS];
  kept_offsets(P, w / nblk, ki, off);
  for (int k = 0; k < DL_RK_NOPS; k++) off[k] += blk * width * P->kstr[k][ki];
  int64_t nb = k0 - blk * width < width ? k0 - blk * width : width;
  rows R;
  double dbuf[RB];
  int64_t ibuf[RB];
  rows_init(P, &R, nb);
  if (P->has_aux) dl_load_d_copy(P->adt, P->base[DL_RK_AUX] + off[DL_RK_AUX], P->kstr[DL_RK_AUX][ki], nb, R.m);
  int nr = P->nr;
  int64_t ridx[DL_MAX_DIMS] = {0};
  const char *p = P->base[DL_RK_SRC] + off[DL_RK_SRC];
  int64_t sstr = P->kstr[DL_RK_SRC][ki];
  /* contiguous float32 rows added straight into the double accumulators */
  bool fused = P->sdt == DL_FLOAT32 && sstr == (int64_t)sizeof(float) &&
               (P->op == DL_REDUCE_SUM || P->op == DL_REDUCE_MEAN);
  int64_t done = 0; /* leading outputs already summed by colsum_f32 */
  if (fused && nr == 1) {
    done = colsum_f32(p, P->rstr[0], P->nred, nb, R.a);
    p += done * (int64_t)sizeof(float);
  }
  for (int64_t r = 0; r < P->nred && done < nb; r++) {
    if (fused) {
      const float *x = (const float *)p;
      DL_SIMD for (int64_t j = 0; j < nb - done; j++) R.a[done + j] += (double)x[j];
    } else if (P->ipath) {
      rows_i(P, dl_load_i(P->sdt, p, sstr, nb, ibuf), nb, r, &R);
    } else {
      rows_d(P, dl_load_d(P->sdt, p, sstr, nb, dbuf), nb, r, &R);
    }
    /* next reduced position */
    for (int d = nr - 1; d >= 0; d--) {
      p += P->rstr[d];
      if (++ridx[d] < P->rsize[d]) break;
      p -= ridx[d] * P->rstr[d];
      ridx[d] = 0;
    }
  }
  char *out = P->base[DL_RK_OUT] + off[DL_RK_OUT];
  if (P->ipath) {
    dl_store_i(P->odt, out, P->kstr[DL_RK_OUT][ki], nb, R.v);
  } else {
    for (int64_t j = 0; j < nb; j++) dbuf[j] = finish_d(P, R.a[j], R.b[j], R.m[j]);
    dl_store_d(P->odt, out, P->kstr[DL_RK_OUT][ki], nb, dbuf);
  }
  if (P->want_index) {
    for (int64_t j = 0; j < nb; j++) ibuf[j] = R.idx[j] + 1;
    dl_store_i(DL_INT64, P->base[DL_RK_IDX] + off[DL_RK_IDX], P->kstr[DL_RK_IDX][ki], nb, ibuf);
  }
}

static void reduce_outer(const plan *P) {
  int64_t k0 = P->ksize[P->nk - 1], outer = P->nout / k0;
  bool par = P->nout * P->nred >= DL_PARALLEL_GRAIN;
  /* wide rows, narrowed until every thread has a few work items */
  int64_t width = RB;
#ifdef _OPENMP
  int64_t want = par ? 4 * (int64_t)omp_get_max_threads() : 1;
  while (width > 64 && outer * ((k0 + width - 1) / width) < want) width /= 2;
#endif
  int64_t nblk = (k0 + width - 1) / width;
  int64_t nwork = outer * nblk;
  par = par && nwork > 1;
#ifdef _OPENMP
  par = par && omp_get_max_threads() > 1;
#endif
  if (!par) { /* not even an idle parallel region: it costs futex calls */
    for (int64_t w = 0; w < nwork; w++) reduce_block(P, w, nblk, width);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t w = 0; w < nwork; w++) reduce_block(P, w, nblk, width);
}

/* ---- entry ---- */

static int cpu_reduce(const dl_reduce_call *c) {
  if (c->out->numel == 0) return DL_KERNEL_OK;
  plan P;
  plan_init(&P, c);
  if (P.nk == 0) {
    reduce_one_split(&P, 0);
    return DL_KERNEL_OK;
  }
  /* inner when the reduction is innermost in memory and its runs are long
   * enough to beat strided row loads */
  int64_t rs = P.rstr[P.nr - 1], ks = P.kstr[DL_RK_SRC][P.nk - 1];
  bool inner = P.nred > 1 && rs < ks && P.rsize[P.nr - 1] >= 16;
  if (inner) reduce_inner(&P);
  else reduce_outer(&P);
  return DL_KERNEL_OK;
}

const struct dl_reduce_kernels dl_cpu_reduce = {
  .reduce = cpu_reduce,
  .scan = dl_cpu_scan,
};
