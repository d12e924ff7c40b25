/* cuda_reduce.cu — the CUDA reduction and scan kernels.
 *
 * The plan is cpu_reduce.c's: src's dims split into kept dims (out's size
 * equals src's) and reduced ones, each class sorted by src stride and
 * coalesced, and the same accumulator semantics: floating inputs fold in
 * double, integer and bool ones in wrapping int64; max/min let NaN win and
 * keep the first position (1-based indices); var folds deviations from the
 * front-end's mean; logsumexp shifts by the front-end's max. Two layouts:
 *  - thread per output, when a kept dim is innermost in memory and there
 *    are many outputs: neighbouring threads read neighbouring elements
 *    (long reductions split across blocks, as column sums are);
 *  - a group per output (a warp, or a block of 256 threads when the
 *    reduction is long), combined by warp shuffles and shared memory; few
 *    long reductions are also split across blocks, whose partial states a
 *    second kernel folds in order.
 * Ties between partial states go to the lower position, so indices are
 * those of the CPU whatever the order the threads finish in. Scans run one
 * thread per line, sequentially along the line (double or int64 carry);
 * a few long lines are cut into chunks whose totals become carries. */
#include "cuda_common.cuh"

extern "C" {
#include "../ops/dl_reduce.h"
#include "../ops/dl_reduce_plan.h"
}

#include <math.h>

namespace {


/* the plan the CPU uses too (dl_reduce_plan.h), strides in elements */
typedef dl_reduce_plan rplan;

struct rstate {
  double a, b;
  int64_t v, idx;
};

void plan_init(rplan *P, const dl_reduce_call *c) { dl_reduce_plan_init(P, c); }

/* ---- element access by runtime dtype ---- */

__device__ __forceinline__ double load_d(int dt, const char *base, int64_t off) {
  switch (dt) {
  case DL_FLOAT32: return (double)((const float *)base)[off];
  case DL_FLOAT64: return ((const double *)base)[off];
  case DL_INT64: return (double)((const int64_t *)base)[off];
  default: return (double)((const uint8_t *)base)[off];
  }
}

__device__ __forceinline__ int64_t load_i(int dt, const char *base, int64_t off) {
  switch (dt) {
  case DL_FLOAT32: return dl_cuda_f2i((double)((const float *)base)[off]);
  case DL_FLOAT64: return dl_cuda_f2i(((const double *)base)[off]);
  case DL_INT64: return ((const int64_t *)base)[off];
  default: return (int64_t)((const uint8_t *)base)[off];
  }
}

__device__ __forceinline__ void store_d(int dt, char *base, int64_t off, double v) {
  switch (dt) {
  case DL_FLOAT32: ((float *)base)[off] = (float)v; break;
  case DL_FLOAT64: ((double *)base)[off] = v; break;
  case DL_INT64: ((int64_t *)base)[off] = dl_cuda_f2i(v); break;
  case DL_BOOL: ((uint8_t *)base)[off] = v != 0; break;
  default: ((uint8_t *)base)[off] = (uint8_t)dl_cuda_f2i(v); break;
  }
}

__device__ __forceinline__ void store_i(int dt, char *base, int64_t off, int64_t v) {
  switch (dt) {
  case DL_FLOAT32: ((float *)base)[off] = (float)v; break;
  case DL_FLOAT64: ((double *)base)[off] = (double)v; break;
  case DL_INT64: ((int64_t *)base)[off] = v; break;
  case DL_BOOL: ((uint8_t *)base)[off] = v != 0; break;
  default: ((uint8_t *)base)[off] = (uint8_t)v; break;
  }
}

/* ---- one accumulator ---- */

__device__ __forceinline__ bool better_max(double x, double best) { return x > best || (x != x && best == best); }
__device__ __forceinline__ bool better_min(double x, double best) { return x < best || (x != x && best == best); }

__device__ __forceinline__ rstate state_init(const rplan &P) {
  rstate st;
  st.a = st.b = 0;
  st.v = 0;
  st.idx = -1;
  switch (P.op) {
  case DL_REDUCE_PROD: case DL_REDUCE_ALL: st.a = 1; st.v = 1; break;
  case DL_REDUCE_MAX: st.a = -INFINITY; st.v = INT64_MIN; break;
  case DL_REDUCE_MIN: st.a = INFINITY; st.v = INT64_MAX; break;
  case DL_REDUCE_NORM: st.a = P.pkind == DL_RP_NINF ? INFINITY : 0; break;
  default: break;
  }
  return st;
}

/* folds the element at reduced position pos (positions arrive in
 * increasing order per thread) */
__device__ __forceinline__ void add_d(const rplan &P, rstate &st, double x, int64_t pos, double m) {
  switch (P.op) {
  case DL_REDUCE_SUM: case DL_REDUCE_MEAN: st.a += x; break;
  case DL_REDUCE_PROD: st.a *= x; break;
  case DL_REDUCE_MAX:
    if (better_max(x, st.a) || (P.want_index && st.idx < 0)) {
      st.a = x;
      st.idx = pos;
    }
    break;
  case DL_REDUCE_MIN:
    if (better_min(x, st.a) || (P.want_index && st.idx < 0)) {
      st.a = x;
      st.idx = pos;
    }
    break;
  case DL_REDUCE_ALL: if (x == 0) st.a = 0; break;
  case DL_REDUCE_ANY: if (x != 0) st.a = 1; break;
  case DL_REDUCE_COUNT_NONZERO: st.a += x != 0; break;
  case DL_REDUCE_NORM:
    switch (P.pkind) {
    case DL_RP_ZERO: st.a += x != 0; break;
    case DL_RP_ONE: st.a += fabs(x); break;
    case DL_RP_TWO: st.a += x * x; break;
    case DL_RP_INF: { double y = fabs(x); if (better_max(y, st.a)) st.a = y; break; }
    case DL_RP_NINF: { double y = fabs(x); if (better_min(y, st.a)) st.a = y; break; }
    default: st.a += pow(fabs(x), P.p); break;
    }
    break;
  case DL_REDUCE_VAR: {
    double d = x - m;
    st.a += d;
    st.b += d * d;
    break;
  }
  case DL_REDUCE_LOGSUMEXP:
    if (P.sdt == DL_FLOAT32) st.a += expf((float)(x - m)); /* as the CPU: float precision suffices */
    else st.a += exp(x - m);
    break;
  default: break;
  }
}

__device__ __forceinline__ void add_i(const rplan &P, rstate &st, int64_t x, int64_t pos) {
  switch (P.op) {
  case DL_REDUCE_SUM: st.v = (int64_t)((uint64_t)st.v + (uint64_t)x); break;
  case DL_REDUCE_PROD: st.v = (int64_t)((uint64_t)st.v * (uint64_t)x); break;
  case DL_REDUCE_MAX:
    if (x > st.v || (P.want_index && st.idx < 0)) {
      st.v = x;
      st.idx = pos;
    }
    break;
  case DL_REDUCE_MIN:
    if (x < st.v || (P.want_index && st.idx < 0)) {
      st.v = x;
      st.idx = pos;
    }
    break;
  case DL_REDUCE_ALL: if (!x) st.v = 0; break;
  case DL_REDUCE_ANY: if (x) st.v = 1; break;
  case DL_REDUCE_COUNT_NONZERO: st.v += x != 0; break;
  default: break;
  }
}

/* folds partial state o into s; ties between extremes go to the lower
 * position, so the order partials arrive in does not matter */
__device__ __forceinline__ void combine(const rplan &P, rstate &s, const rstate &o) {
  switch (P.op) {
  case DL_REDUCE_SUM:
    if (P.ipath) s.v = (int64_t)((uint64_t)s.v + (uint64_t)o.v);
    else s.a += o.a;
    break;
  case DL_REDUCE_PROD:
    if (P.ipath) s.v = (int64_t)((uint64_t)s.v * (uint64_t)o.v);
    else s.a *= o.a;
    break;
  case DL_REDUCE_MAX: case DL_REDUCE_MIN: {
    bool mx = P.op == DL_REDUCE_MAX;
    if (P.want_index) {
      if (o.idx < 0) break;
      if (s.idx < 0) {
        s = o;
        break;
      }
    }
    bool take, tie;
    if (P.ipath) {
      take = mx ? o.v > s.v : o.v < s.v;
      tie = o.v == s.v;
    } else {
      take = mx ? better_max(o.a, s.a) : better_min(o.a, s.a);
      tie = o.a == s.a || (o.a != o.a && s.a != s.a);
    }
    if (take || (P.want_index && tie && o.idx < s.idx)) s = o;
    break;
  }
  case DL_REDUCE_ALL: s.a = s.a != 0 && o.a != 0; s.v = s.v && o.v; break;
  case DL_REDUCE_ANY: s.a = s.a != 0 || o.a != 0; s.v = s.v || o.v; break;
  case DL_REDUCE_NORM:
    if (P.pkind == DL_RP_INF) s.a = better_max(o.a, s.a) ? o.a : s.a;
    else if (P.pkind == DL_RP_NINF) s.a = better_min(o.a, s.a) ? o.a : s.a;
    else s.a += o.a;
    break;
  default:
    s.a += o.a;
    s.b += o.b;
    s.v += o.v;
    break;
  }
}

__device__ __forceinline__ double finish_d(const rplan &P, double a, double b, double m) {
  double n = (double)P.nred;
  switch (P.op) {
  case DL_REDUCE_MEAN: return a / n;
  case DL_REDUCE_NORM:
    if (P.pkind == DL_RP_TWO) return sqrt(a);
    if (P.pkind == DL_RP_GEN) return pow(a, 1.0 / P.p);
    return a;
  case DL_REDUCE_VAR: {
    double dof = n - P.correction;
    if (dof < 0) dof = 0;
    double v = (b - a * a / n) / dof;
    if (v < 0) v = 0;
    return P.take_sqrt ? sqrt(v) : v;
  }
  case DL_REDUCE_LOGSUMEXP: return isfinite(m) ? log(a) + m : m;
  default: return a;
  }
}

/* element offsets of output o in src, out, indices and aux */
__device__ __forceinline__ void kept_offsets(const rplan &P, int64_t o, int64_t *off) {
  for (int k = 0; k < DL_RK_NOPS; k++) off[k] = 0;
  for (int d = P.nk - 1; d >= 0; d--) {
    int64_t i = o % P.ksize[d];
    o /= P.ksize[d];
    for (int k = 0; k < DL_RK_NOPS; k++) off[k] += i * P.kstr[k][d];
  }
}

__device__ __forceinline__ int64_t red_offset(const rplan &P, int64_t r) {
  if (P.nr == 1) return r * P.rstr[0];
  int64_t off = 0;
  for (int d = P.nr - 1; d >= 0; d--) {
    off += (r % P.rsize[d]) * P.rstr[d];
    r /= P.rsize[d];
  }
  return off;
}

__device__ __forceinline__ double aux_at(const rplan &P, const int64_t *off) {
  return P.has_aux ? load_d(P.adt, P.base[DL_RK_AUX], off[DL_RK_AUX]) : 0.0;
}

/* reduced positions begin, begin + step, ... below end */
__device__ __forceinline__ void fold(const rplan &P, rstate &st, int64_t soff, int64_t begin, int64_t end,
                                     int64_t step, double m) {
  const char *src = P.base[DL_RK_SRC];
  if (P.ipath) {
    for (int64_t r = begin; r < end; r += step) add_i(P, st, load_i(P.sdt, src, soff + red_offset(P, r)), r);
  } else if (P.sdt == DL_FLOAT32 && P.nr == 1 && (P.op == DL_REDUCE_SUM || P.op == DL_REDUCE_MEAN)) {
    /* the common case without the dtype and op switches */
    const float *x = (const float *)src + soff;
    int64_t rs = P.rstr[0];
    double a = 0;
    for (int64_t r = begin; r < end; r += step) a += (double)x[r * rs];
    st.a += a;
  } else {
    for (int64_t r = begin; r < end; r += step) add_d(P, st, load_d(P.sdt, src, soff + red_offset(P, r)), r, m);
  }
}

__device__ __forceinline__ void store_one(const rplan &P, const int64_t *off, const rstate &st, double m) {
  if (P.ipath) store_i(P.odt, P.base[DL_RK_OUT], off[DL_RK_OUT], st.v);
  else store_d(P.odt, P.base[DL_RK_OUT], off[DL_RK_OUT], finish_d(P, st.a, st.b, m));
  if (P.want_index) ((int64_t *)P.base[DL_RK_IDX])[off[DL_RK_IDX]] = st.idx + 1; /* 1-based */
}

/* ---- kernels ---- */

__global__ void reduce_thread_per_output(rplan P) {
  DL_CUDA_FOR(o, P.nout) {
    int64_t off[DL_RK_NOPS];
    kept_offsets(P, o, off);
    double m = aux_at(P, off);
    rstate st = state_init(P);
    fold(P, st, off[DL_RK_SRC], 0, P.nred, 1, m);
    store_one(P, off, st, m);
  }
}

/* the same, the reduction split in blockIdx.y chunks (few outputs, long
 * reductions: column sums such as a bias gradient); partial states out */
__global__ void reduce_thread_split(rplan P, int64_t nsplit, rstate *partial) {
  int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= P.nout) return;
  int64_t off[DL_RK_NOPS];
  kept_offsets(P, o, off);
  double m = aux_at(P, off);
  rstate st = state_init(P);
  int64_t chunk = (P.nred + nsplit - 1) / nsplit;
  int64_t b = (int64_t)blockIdx.y * chunk, e = b + chunk < P.nred ? b + chunk : P.nred;
  fold(P, st, off[DL_RK_SRC], b, e, 1, m);
  partial[o * nsplit + blockIdx.y] = st;
}

__device__ __forceinline__ rstate shfl_down(const rstate &s, int delta) {
  rstate o;
  o.a = __shfl_down_sync(0xffffffffu, s.a, delta);
  o.b = __shfl_down_sync(0xffffffffu, s.b, delta);
  o.v = (int64_t)__shfl_down_sync(0xffffffffu, (long long)s.v, delta);
  o.idx = (int64_t)__shfl_down_sync(0xffffffffu, (long long)s.idx, delta);
  return o;
}

/* G threads per output (32 or 256), 256 / G outputs per block; blockIdx.y
 * is the split of the reduction. nsplit > 1 writes partial states. */
template <int G> __global__ void reduce_group(rplan P, int64_t nsplit, rstate *partial) {
  __shared__ rstate warp_states[DL_CUDA_THREADS / 32];
  int lane = threadIdx.x % G;
  int64_t o = (int64_t)blockIdx.x * (DL_CUDA_THREADS / G) + threadIdx.x / G;
  bool live = o < P.nout;
  int64_t off[DL_RK_NOPS] = {0, 0, 0, 0};
  double m = 0;
  rstate st = state_init(P);
  if (live) {
    kept_offsets(P, o, off);
    m = aux_at(P, off);
    int64_t chunk = (P.nred + nsplit - 1) / nsplit;
    int64_t b = (int64_t)blockIdx.y * chunk, e = b + chunk < P.nred ? b + chunk : P.nred;
    fold(P, st, off[DL_RK_SRC], b + lane, e, G, m);
  }
  /* within the warp (a group of 32, or a warp of a 256-group) */
  for (int d = 16; d > 0; d /= 2) {
    rstate other = shfl_down(st, d);
    if ((threadIdx.x % 32) + d < 32) combine(P, st, other);
  }
  if (G > 32) {
    int w = threadIdx.x / 32;
    if (threadIdx.x % 32 == 0) warp_states[w] = st;
    __syncthreads();
    if (threadIdx.x == 0)
      for (int k = 1; k < G / 32; k++) combine(P, st, warp_states[k]);
  }
  if (!live || lane != 0) return;
  if (nsplit > 1) partial[o * nsplit + blockIdx.y] = st;
  else store_one(P, off, st, m);
}

__global__ void reduce_finish_partials(rplan P, int64_t nsplit, const rstate *partial) {
  DL_CUDA_FOR(o, P.nout) {
    int64_t off[DL_RK_NOPS];
    kept_offsets(P, o, off);
    double m = aux_at(P, off);
    rstate st = state_init(P);
    for (int64_t s = 0; s < nsplit; s++) combine(P, st, partial[o * nsplit + s]);
    store_one(P, off, st, m);
  }
}

int cuda_reduce(const dl_reduce_call *c) {
  DL_CUDA_ENTRY();
  if (c->out->numel == 0) return dl_cuda_status();
  rplan P;
  plan_init(&P, c);
  cudaStream_t s = dl_cuda_stream();
  bool outer = P.nk > 0 && !(P.nred > 1 && P.rstr[P.nr - 1] < P.kstr[DL_RK_SRC][P.nk - 1]);
  if (outer && P.nout >= 1024) {
    /* enough threads to fill the card: split long reductions */
    int64_t nsplit = (131072 + P.nout - 1) / P.nout, most = (P.nred + 63) / 64;
    if (nsplit > most) nsplit = most;
    if (nsplit > 65535) nsplit = 65535;
    if (nsplit <= 1 || (P.nout + DL_CUDA_THREADS - 1) / DL_CUDA_THREADS > 0x7fffffff) {
      reduce_thread_per_output<<<dl_cuda_blocks(P.nout), DL_CUDA_THREADS, 0, s>>>(P);
      DL_CUDA_LAUNCHED("reduce");
      return dl_cuda_status();
    }
    dl_cuda_scratch part((size_t)(P.nout * nsplit) * sizeof(rstate));
    if (!part.p) return dl_cuda_status();
    dim3 grid((unsigned)((P.nout + DL_CUDA_THREADS - 1) / DL_CUDA_THREADS), (unsigned)nsplit);
    reduce_thread_split<<<grid, DL_CUDA_THREADS, 0, s>>>(P, nsplit, (rstate *)part.p);
    DL_CUDA_LAUNCHED("reduce");
    reduce_finish_partials<<<dl_cuda_blocks(P.nout), DL_CUDA_THREADS, 0, s>>>(P, nsplit, (const rstate *)part.p);
    DL_CUDA_LAUNCHED("reduce");
    return dl_cuda_status();
  }
  if (P.nred <= 512) {
    int64_t nblk = (P.nout + DL_CUDA_THREADS / 32 - 1) / (DL_CUDA_THREADS / 32);
    reduce_group<32><<<dim3((unsigned)nblk, 1), DL_CUDA_THREADS, 0, s>>>(P, 1, nullptr);
    DL_CUDA_LAUNCHED("reduce");
    return dl_cuda_status();
  }
  /* long reductions: a block each, split across blocks when there are few
   * outputs, each block keeping at least 4096 elements */
  int64_t nsplit = 1;
  if (P.nout < 512) {
    nsplit = (1024 + P.nout - 1) / P.nout;
    int64_t most = (P.nred + 4095) / 4096;
    if (nsplit > most) nsplit = most;
    if (nsplit > 65535) nsplit = 65535;
    if (nsplit < 1) nsplit = 1;
  }
  if (nsplit == 1) {
    reduce_group<DL_CUDA_THREADS><<<dim3((unsigned)P.nout, 1), DL_CUDA_THREADS, 0, s>>>(P, 1, nullptr);
    DL_CUDA_LAUNCHED("reduce");
    return dl_cuda_status();
  }
  dl_cuda_scratch part((size_t)(P.nout * nsplit) * sizeof(rstate));
  if (!part.p) return dl_cuda_status();
  reduce_group<DL_CUDA_THREADS><<<dim3((unsigned)P.nout, (unsigned)nsplit), DL_CUDA_THREADS, 0, s>>>(
    P, nsplit, (rstate *)part.p);
  DL_CUDA_LAUNCHED("reduce");
  reduce_finish_partials<<<dl_cuda_blocks(P.nout), DL_CUDA_THREADS, 0, s>>>(P, nsplit, (const rstate *)part.p);
  DL_CUDA_LAUNCHED("reduce");
  return dl_cuda_status();
}

/* ---- scans ---- */

struct splan {
  int nk;
  int64_t ksize[DL_MAX_DIMS];
  int64_t kstr[2][DL_MAX_DIMS]; /* elements: src, dst */
  int64_t len, sstr, dstr, nlines;
  const char *src;
  char *dst;
  int sdt, ddt;
  bool ipath, prod;
};

__device__ __forceinline__ void line_offsets(const splan &P, int64_t o, int64_t *so, int64_t *dof) {
  int64_t a = 0, b = 0;
  for (int d = P.nk - 1; d >= 0; d--) {
    int64_t i = o % P.ksize[d];
    o /= P.ksize[d];
    a += i * P.kstr[0][d];
    b += i * P.kstr[1][d];
  }
  *so = a;
  *dof = b;
}

/* Few long lines: each line cut into nc chunks; (1) every chunk's total,
 * (2) one thread per line turns the totals into carries, (3) every chunk
 * rescans itself from its carry and writes. */
__global__ void scan_chunk_totals(splan P, int64_t nc, int64_t chunk, double *dt, uint64_t *it) {
  DL_CUDA_FOR(e, P.nlines * nc) {
    int64_t o = e / nc, c = e % nc, so, dof;
    line_offsets(P, o, &so, &dof);
    int64_t b = c * chunk, end = b + chunk < P.len ? b + chunk : P.len;
    if (P.ipath) {
      uint64_t acc = P.prod ? 1 : 0;
      for (int64_t r = b; r < end; r++) {
        uint64_t x = (uint64_t)load_i(P.sdt, P.src, so + r * P.sstr);
        acc = P.prod ? acc * x : acc + x;
      }
      it[e] = acc;
    } else {
      double acc = P.prod ? 1 : 0;
      for (int64_t r = b; r < end; r++) {
        double x = load_d(P.sdt, P.src, so + r * P.sstr);
        acc = P.prod ? acc * x : acc + x;
      }
      dt[e] = acc;
    }
  }
}

__global__ void scan_chunk_carries(splan P, int64_t nc, double *dt, uint64_t *it) {
  DL_CUDA_FOR(o, P.nlines) {
    double dacc = P.prod ? 1 : 0;
    uint64_t iacc = P.prod ? 1 : 0;
    for (int64_t c = 0; c < nc; c++) {
      int64_t e = o * nc + c;
      if (P.ipath) {
        uint64_t t = it[e];
        it[e] = iacc;
        iacc = P.prod ? iacc * t : iacc + t;
      } else {
        double t = dt[e];
        dt[e] = dacc;
        dacc = P.prod ? dacc * t : dacc + t;
      }
    }
  }
}

__global__ void scan_chunk_apply(splan P, int64_t nc, int64_t chunk, const double *dt, const uint64_t *it) {
  DL_CUDA_FOR(e, P.nlines * nc) {
    int64_t o = e / nc, c = e % nc, so, dof;
    line_offsets(P, o, &so, &dof);
    int64_t b = c * chunk, end = b + chunk < P.len ? b + chunk : P.len;
    if (P.ipath) {
      uint64_t acc = it[e];
      for (int64_t r = b; r < end; r++) {
        uint64_t x = (uint64_t)load_i(P.sdt, P.src, so + r * P.sstr);
        acc = P.prod ? acc * x : acc + x;
        store_i(P.ddt, P.dst, dof + r * P.dstr, (int64_t)acc);
      }
    } else {
      double acc = dt[e];
      for (int64_t r = b; r < end; r++) {
        double x = load_d(P.sdt, P.src, so + r * P.sstr);
        acc = P.prod ? acc * x : acc + x;
        store_d(P.ddt, P.dst, dof + r * P.dstr, acc);
      }
    }
  }
}

__global__ void scan_lines(splan P) {
  DL_CUDA_FOR(o, P.nlines) {
    int64_t so, dof;
    line_offsets(P, o, &so, &dof);
    if (P.ipath) {
      uint64_t acc = P.prod ? 1 : 0;
      for (int64_t r = 0; r < P.len; r++) {
        uint64_t x = (uint64_t)load_i(P.sdt, P.src, so + r * P.sstr);
        acc = P.prod ? acc * x : acc + x;
        store_i(P.ddt, P.dst, dof + r * P.dstr, (int64_t)acc);
      }
    } else {
      double acc = P.prod ? 1 : 0;
      for (int64_t r = 0; r < P.len; r++) {
        double x = load_d(P.sdt, P.src, so + r * P.sstr);
        acc = P.prod ? acc * x : acc + x;
        store_d(P.ddt, P.dst, dof + r * P.dstr, acc);
      }
    }
  }
}

int cuda_scan(dl_tensor *dst, const dl_tensor *src, int dim, dl_scan_op op) {
  DL_CUDA_ENTRY();
  if (dst->numel == 0) return dl_cuda_status();
  splan P;
  P.nk = dl_scan_lines(dst, src, dim, P.ksize, P.kstr);
  P.nlines = 1;
  for (int i = 0; i < P.nk; i++) P.nlines *= P.ksize[i];
  P.len = src->ndim ? src->shape[dim] : 1;
  P.sstr = src->ndim ? src->stride[dim] : 0;
  P.dstr = dst->ndim ? dst->stride[dim] : 0;
  P.src = (const char *)dl_tensor_data(src);
  P.dst = (char *)dl_tensor_data(dst);
  P.sdt = src->dtype;
  P.ddt = dst->dtype;
  P.ipath = !dl_dtype_is_float(src->dtype);
  P.prod = op == DL_SCAN_PROD;
  cudaStream_t s = dl_cuda_stream();
  if (P.nlines < 4096 && P.len >= 2048) {
    /* chunks of at least 32 elements, about 64K threads in all. The
     * 64-bit temporaries: int64 and double carries need them. */
    int64_t nc = 65536 / P.nlines, most = P.len / 32;
    if (nc > most) nc = most;
    int64_t chunk = (P.len + nc - 1) / nc;
    nc = (P.len + chunk - 1) / chunk;
    dl_cuda_scratch tot((size_t)(P.nlines * nc) * 8);
    if (!tot.p) return dl_cuda_status();
    unsigned b = dl_cuda_blocks(P.nlines * nc);
    scan_chunk_totals<<<b, DL_CUDA_THREADS, 0, s>>>(P, nc, chunk, (double *)tot.p, (uint64_t *)tot.p);
    scan_chunk_carries<<<dl_cuda_blocks(P.nlines), DL_CUDA_THREADS, 0, s>>>(P, nc, (double *)tot.p, (uint64_t *)tot.p);
    scan_chunk_apply<<<b, DL_CUDA_THREADS, 0, s>>>(P, nc, chunk, (const double *)tot.p, (const uint64_t *)tot.p);
    DL_CUDA_LAUNCHED("scan");
    return dl_cuda_status();
  }
  scan_lines<<<dl_cuda_blocks(P.nlines), DL_CUDA_THREADS, 0, s>>>(P);
  DL_CUDA_LAUNCHED("scan");
  return dl_cuda_status();
}

} // namespace

extern "C" const struct dl_reduce_kernels dl_cuda_reduce = {
  cuda_reduce,
  cuda_scan,
};
