/* dl_random.c — front-ends of the random ops: argument checks, stream
 * reservation, and strided views filled through a contiguous buffer so
 * element i of any view gets stream element i. */
#include "dl_random.h"

#include <math.h>

static const struct dl_random_kernels *kernels_of(const char *fn, dl_device dev) { return DL_KERNELS(fn, dev, random); }

static int check_float(const char *fn, dl_dtype dt) {
  if (dl_dtype_is_float(dt)) return 0;
  dl_error_set("%s: expected a floating-point dtype, got %s", fn, dl_dtype_name(dt));
  return -1;
}

/* words a float op draws: w per element, normals in whole pairs */
static uint64_t float_words(const dl_tensor *t, dl_rand_kind kind) {
  uint64_t n = (uint64_t)t->numel;
  if (kind == DL_RAND_NORMAL) n += n & 1;
  return n * (t->dtype == DL_FLOAT64 ? 2 : 1);
}

/* Runs gen on t, or on a contiguous buffer copied into t when t is a
 * strided view (not copied when gen reports something: > 0 for the op to
 * look at, < 0 for a kernel that failed, which fails the fill). */
typedef int64_t (*gen_fn)(const struct dl_random_kernels *k, dl_tensor *out, void *ctx);

static int fill_through(const char *fn, dl_tensor *t, gen_fn gen, void *ctx) {
  const struct dl_random_kernels *k = kernels_of(fn, dl_tensor_device(t));
  if (!k) return -1;
  if (t->numel == 0) return 0;
  if (dl_tensor_is_contiguous(t)) return gen(k, t, ctx) < 0 ? dl_kernel_fail(fn) : 0;
  dl_tensor *tmp = dl_tensor_empty(t->shape, t->ndim, t->dtype, dl_tensor_device(t));
  if (!tmp) return -1;
  int64_t r = gen(k, tmp, ctx);
  if (r == 0) dl_backend_of(t)->copy(t, tmp);
  dl_tensor_release(tmp);
  return r < 0 ? dl_kernel_fail(fn) : 0;
}

/* ---- float fills ---- */

typedef struct { dl_rand_kind kind; double a, b; } float_ctx;

static int64_t gen_float(const struct dl_random_kernels *k, dl_tensor *out, void *ctx) {
  const float_ctx *c = ctx;
  return k->fill_float(out, dl_rng_reserve(float_words(out, c->kind)), c->kind, c->a, c->b) == DL_KERNEL_OK ? 0 : -1;
}

static int fill_float(const char *fn, dl_tensor *t, dl_rand_kind kind, double a, double b) {
  if (check_float(fn, t->dtype)) return -1;
  float_ctx c = {kind, a, b};
  return fill_through(fn, t, gen_float, &c);
}

int dl_tensor_uniform_(dl_tensor *t, double a, double b) {
  if (!isfinite(a) || !isfinite(b) || a > b) {
    dl_error_set("uniform_: expected finite a <= b, got a=%g, b=%g", a, b);
    return -1;
  }
  if (fill_float("uniform_", t, DL_RAND_UNIFORM, a, b)) return -1;
  dl_tensor_bump_version(t);
  return 0;
}

int dl_tensor_normal_(dl_tensor *t, double mean, double std) {
  if (!isfinite(mean) || !isfinite(std) || std < 0) {
    dl_error_set("normal_: expected a finite mean and std >= 0, got mean=%g, std=%g", mean, std);
    return -1;
  }
  if (fill_float("normal_", t, DL_RAND_NORMAL, mean, std)) return -1;
  dl_tensor_bump_version(t);
  return 0;
}

int dl_tensor_exponential_(dl_tensor *t, double lambd) {
  if (!(lambd > 0) || !isfinite(lambd)) {
    dl_error_set("exponential_: expected a finite lambd > 0, got %g", lambd);
    return -1;
  }
  if (fill_float("exponential_", t, DL_RAND_EXPONENTIAL, lambd, 0)) return -1;
  dl_tensor_bump_version(t);
  return 0;
}

static dl_tensor *new_float(const char *fn, const int64_t *shape, int ndim, dl_dtype dt, dl_device dev,
                            dl_rand_kind kind) {
  if (check_float(fn, dt)) return NULL;
  if (!kernels_of(fn, dev)) return NULL;
  dl_tensor *t = dl_tensor_empty(shape, ndim, dt, dev);
  if (!t) return NULL;
  if (fill_float(fn, t, kind, 0, 1)) {
    dl_tensor_release(t);
    return NULL;
  }
  return t;
}

dl_tensor *dl_op_rand(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev) {
  return new_float("rand", shape, ndim, dt, dev, DL_RAND_UNIFORM);
}

dl_tensor *dl_op_randn(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev) {
  return new_float("randn", shape, ndim, dt, dev, DL_RAND_NORMAL);
}

/* ---- integers ---- */

typedef struct { int64_t lo; uint64_t range; } int_ctx;

static int64_t gen_int(const struct dl_random_kernels *k, dl_tensor *out, void *ctx) {
  const int_ctx *c = ctx;
  uint64_t w = c->range <= (UINT64_C(1) << 32) ? 1 : 2;
  return k->randint(out, dl_rng_reserve((uint64_t)out->numel * w), c->lo, c->range) == DL_KERNEL_OK ? 0 : -1;
}

/* [lo, hi) must be non-empty and representable in dt */
static int check_int_range(const char *fn, int64_t lo, int64_t hi, dl_dtype dt) {
  if (lo >= hi) {
    dl_error_set("%s: expected lo < hi, got lo=%lld, hi=%lld", fn, (long long)lo, (long long)hi);
    return -1;
  }
  int64_t mn, mx; /* inclusive bounds of the values dt holds exactly */
  switch (dt) {
  case DL_BOOL: mn = 0; mx = 1; break;
  case DL_UINT8: mn = 0; mx = 255; break;
  case DL_FLOAT32: mn = -(INT64_C(1) << 24); mx = INT64_C(1) << 24; break;
  case DL_FLOAT64: mn = -(INT64_C(1) << 53); mx = INT64_C(1) << 53; break;
  default: return 0;
  }
  if (lo < mn || hi - 1 > mx) {
    dl_error_set("%s: range [%lld, %lld) is out of bounds for dtype %s", fn, (long long)lo, (long long)hi,
                 dl_dtype_name(dt));
    return -1;
  }
  return 0;
}

static int fill_int(const char *fn, dl_tensor *t, int64_t lo, int64_t hi) {
  if (check_int_range(fn, lo, hi, t->dtype)) return -1;
  int_ctx c = {lo, (uint64_t)hi - (uint64_t)lo};
  return fill_through(fn, t, gen_int, &c);
}

int dl_tensor_random_(dl_tensor *t, int64_t lo, int64_t hi) {
  if (fill_int("random_", t, lo, hi)) return -1;
  dl_tensor_bump_version(t);
  return 0;
}

dl_tensor *dl_op_randint(int64_t lo, int64_t hi, const int64_t *shape, int ndim, dl_dtype dt, dl_device dev) {
  if (check_int_range("randint", lo, hi, dt)) return NULL;
  if (!kernels_of("randint", dev)) return NULL;
  dl_tensor *t = dl_tensor_empty(shape, ndim, dt, dev);
  if (!t) return NULL;
  if (fill_int("randint", t, lo, hi)) {
    dl_tensor_release(t);
    return NULL;
  }
  return t;
}

dl_tensor *dl_op_randperm(int64_t n, dl_dtype dt, dl_device dev) {
  if (n < 0) {
    dl_error_set("randperm: n must be non-negative, got %lld", (long long)n);
    return NULL;
  }
  int64_t mx = dt == DL_BOOL ? 1 : dt == DL_UINT8 ? 255 : dt == DL_FLOAT32 ? INT64_C(1) << 24 : INT64_MAX;
  if (n > mx) {
    dl_error_set("randperm: n=%lld is out of bounds for dtype %s", (long long)n, dl_dtype_name(dt));
    return NULL;
  }
  const struct dl_random_kernels *k = kernels_of("randperm", dev);
  if (!k) return NULL;
  dl_tensor *t = dl_tensor_empty(&n, 1, DL_INT64, dev);
  if (!t) return NULL;
  if (n > 0 && k->randperm(t, dl_rng_reserve((uint64_t)n * 2))) {
    dl_tensor_release(t);
    return NULL;
  }
  if (dt == DL_INT64) return t;
  dl_tensor *c = dl_tensor_to_dtype(t, dt);
  dl_tensor_release(t);
  return c;
}

/* ---- bernoulli ---- */

typedef struct { double p; const dl_tensor *probs; int64_t bad; } bern_ctx;

static int64_t gen_bern(const struct dl_random_kernels *k, dl_tensor *out, void *ctx) {
  bern_ctx *c = ctx;
  c->bad = k->bernoulli(out, dl_rng_reserve((uint64_t)out->numel * 2), c->p, c->probs);
  return c->bad;
}

int dl_tensor_bernoulli_(dl_tensor *t, double p) {
  if (!(p >= 0 && p <= 1)) {
    dl_error_set("bernoulli_: p must be in [0, 1], got %g", p);
    return -1;
  }
  bern_ctx c = {p, NULL, 0};
  if (fill_through("bernoulli_", t, gen_bern, &c)) return -1;
  dl_tensor_bump_version(t);
  return 0;
}

int dl_op_dropout_fused(dl_tensor *x, double keep, double scale, dl_tensor **out, dl_tensor **mask) {
  *out = *mask = NULL;
  const struct dl_random_kernels *k = kernels_of("dropout", dl_tensor_device(x));
  if (!k) return -1;
  if (!k->dropout || !k->dropout_backward) {
    dl_error_set("dropout: not supported on this device");
    return -1;
  }
  dl_device dev = dl_tensor_device(x);
  dl_tensor *xc = dl_tensor_contiguous(x); /* a view draws as its contiguous copy */
  dl_tensor *o = xc ? dl_tensor_empty(x->shape, x->ndim, x->dtype, dev) : NULL;
  dl_tensor *m = o ? dl_tensor_empty(x->shape, x->ndim, DL_UINT8, dev) : NULL;
  /* one stream word an element */
  int rc = m ? dl_kernel_status("dropout", k->dropout(o, m, xc, dl_rng_reserve((uint64_t)x->numel), keep, scale)) : -1;
  dl_tensor_release(xc);
  if (rc) {
    dl_tensor_release(o);
    dl_tensor_release(m);
    return -1;
  }
  *out = o, *mask = m;
  return 0;
}

dl_tensor *dl_op_dropout_backward(dl_tensor *g, dl_tensor *mask, double scale) {
  static const char fn[] = "dropout_backward";
  if (!dl_dtype_is_float(g->dtype) || mask->dtype != DL_UINT8 || !dl_tensor_same_shape(g, mask)) {
    char b1[64], b2[64];
    dl_error_set("%s: gradient %s (%s) and mask %s (%s) must be float and uint8 of one shape", fn,
                 dl_tensor_shape_str(g, b1, sizeof b1), dl_dtype_name(g->dtype), dl_tensor_shape_str(mask, b2, sizeof b2),
                 dl_dtype_name(mask->dtype));
    return NULL;
  }
  if (dl_check_same_device(fn, g, mask)) return NULL;
  const struct dl_random_kernels *k = kernels_of(fn, dl_tensor_device(g));
  if (!k) return NULL;
  if (!k->dropout_backward) {
    dl_error_set("%s: not supported on this device", fn);
    return NULL;
  }
  dl_tensor *gc = dl_tensor_contiguous(g), *mc = gc ? dl_tensor_contiguous(mask) : NULL;
  dl_tensor *gx = mc ? dl_tensor_empty(g->shape, g->ndim, g->dtype, dl_tensor_device(g)) : NULL;
  if (gx && gx->numel) gx = dl_kernel_result(fn, gx, k->dropout_backward(gx, gc, mc, scale));
  dl_tensor_release(gc);
  dl_tensor_release(mc);
  return gx;
}

dl_tensor *dl_op_bernoulli_like(const dl_tensor *t, double p) {
  dl_tensor *r = dl_tensor_empty(t->shape, t->ndim, t->dtype, dl_tensor_device(t));
  if (r && dl_tensor_bernoulli_(r, p)) {
    dl_tensor_release(r);
    return NULL;
  }
  if (r) r->storage->version = 0; /* a new tensor: no write to see */
  return r;
}

/* p as a contiguous float64 tensor of t's shape */
static dl_tensor *probs_for(const char *fn, const dl_tensor *t, const dl_tensor *p) {
  char b1[128], b2[128];
  if (dl_check_same_device(fn, t, p)) return NULL;
  if (!dl_dtype_is_float(p->dtype)) {
    dl_error_set("%s: probabilities must be a floating-point tensor, got %s", fn, dl_dtype_name(p->dtype));
    return NULL;
  }
  int64_t bshape[DL_MAX_DIMS];
  int bn;
  if (dl_broadcast_shapes(fn, p->shape, p->ndim, t->shape, t->ndim, bshape, &bn)) return NULL;
  bool same = bn == t->ndim;
  for (int d = 0; same && d < bn; d++) same = bshape[d] == t->shape[d];
  if (!same) {
    dl_error_set("%s: probabilities of shape %s cannot be broadcast to %s", fn, dl_tensor_shape_str(p, b1, sizeof b1),
                 dl_tensor_shape_str(t, b2, sizeof b2));
    return NULL;
  }
  dl_tensor *e = dl_tensor_expand((dl_tensor *)p, t->shape, t->ndim);
  if (!e) return NULL;
  dl_tensor *c = dl_tensor_empty(t->shape, t->ndim, DL_FLOAT64, dl_tensor_device(t));
  if (c && dl_tensor_copy_(c, e)) {
    dl_tensor_release(c);
    c = NULL;
  }
  dl_tensor_release(e);
  return c;
}

static int bernoulli_probs(const char *fn, dl_tensor *t, const dl_tensor *p) {
  dl_tensor *probs = probs_for(fn, t, p);
  if (!probs) return -1;
  bern_ctx c = {0, probs, 0};
  int rc = fill_through(fn, t, gen_bern, &c);
  dl_tensor_release(probs);
  if (rc == 0 && c.bad) {
    dl_error_set("%s: probabilities must be in [0, 1] (%lld are not)", fn, (long long)c.bad);
    rc = -1;
  }
  return rc;
}

int dl_tensor_bernoulli_tensor_(dl_tensor *t, const dl_tensor *p) {
  if (bernoulli_probs("bernoulli_", t, p)) return -1;
  dl_tensor_bump_version(t);
  return 0;
}

dl_tensor *dl_op_bernoulli(const dl_tensor *probs) {
  if (check_float("bernoulli", probs->dtype)) return NULL;
  dl_tensor *t = dl_tensor_empty(probs->shape, probs->ndim, probs->dtype, dl_tensor_device(probs));
  if (!t) return NULL;
  if (bernoulli_probs("bernoulli", t, probs)) {
    dl_tensor_release(t);
    return NULL;
  }
  return t;
}
