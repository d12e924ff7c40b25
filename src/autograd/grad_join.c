/* grad_join.c — joining and reordering (cat, stack, flip, roll): forward,
 * backward rule and jvp rule of each, side by side. A join's gradient is
 * the incoming gradient cut back into the inputs' slabs (each cast to its
 * input's dtype); a reordering's is the inverse reordering. */
#include "dl_ag_index.h"

#include "dl_ag_view.h"
#include "dl_autograd.h"

#include <stdlib.h>
#include <string.h>

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }

static dl_tensor *fail(dl_tensor *out) {
  dl_tensor_release(out);
  return NULL;
}

/* g cast to dt, recording (new reference) */
static dl_tensor *cast_to(dl_tensor *g, dl_dtype dt) {
  if (!g || g->dtype == dt) return g;
  dl_tensor *c = dl_ag_to_dtype(g, dt);
  dl_tensor_release(g);
  return c;
}

/* ---- cat / stack ---- */

#define JOIN_INLINE 16

typedef struct {
  int64_t len;    /* size along the cat dim */
  int32_t dtype;  /* dl_dtype of the input */
  int32_t skip;   /* a 1-D empty input that cat skipped */
} join_part;

typedef struct {
  int dim; /* wrapped: into the output's dims */
  int n;
  join_part *heap; /* parts past JOIN_INLINE inputs, or NULL */
  join_part parts[JOIN_INLINE];
} join_ctx;

_Static_assert(sizeof(join_ctx) <= DL_NODE_CTX_BYTES, "join_ctx fits a node");

static join_part *parts_of(join_ctx *c) { return c->heap ? c->heap : c->parts; }

static void join_release(dl_node *n) {
  join_ctx *c = (join_ctx *)n->ctx;
  free(c->heap);
  c->heap = NULL;
}

static int cat_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  join_ctx *c = (join_ctx *)n->ctx;
  join_part *p = parts_of(c);
  int64_t off = 0;
  for (int i = 0; i < c->n; i++) {
    if (p[i].skip) {
      int64_t zero = 0;
      if (wants(n, i) && !(gin[i] = dl_tensor_zeros(&zero, 1, (dl_dtype)p[i].dtype, dl_tensor_device(gout[0]))))
        return -1;
      continue;
    }
    if (wants(n, i) && !(gin[i] = cast_to(dl_ag_narrow(gout[0], c->dim, off, p[i].len), (dl_dtype)p[i].dtype)))
      return -1;
    off += p[i].len;
  }
  return 0;
}
static const dl_node_type cat_type = {"CatBackward0", cat_backward, join_release};

static int stack_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  join_ctx *c = (join_ctx *)n->ctx;
  join_part *p = parts_of(c);
  for (int i = 0; i < c->n; i++)
    if (wants(n, i) && !(gin[i] = cast_to(dl_ag_select(gout[0], c->dim, i), (dl_dtype)p[i].dtype))) return -1;
  return 0;
}
static const dl_node_type stack_type = {"StackBackward0", stack_backward, join_release};

/* records the join node; 0 or -1 */
static int record_join(const dl_node_type *type, dl_tensor *const *ts, int n, int dim, bool is_cat,
                       dl_tensor *out) {
  join_ctx c = {dim, n, NULL, {{0, 0, 0}}};
  if (n > JOIN_INLINE && !(c.heap = calloc((size_t)n, sizeof(join_part)))) {
    dl_error_set("%s: out of memory", is_cat ? "cat" : "stack");
    return -1;
  }
  join_part *p = parts_of(&c);
  for (int i = 0; i < n; i++) {
    p[i].dtype = ts[i]->dtype;
    p[i].skip = is_cat && ts[i]->ndim == 1 && ts[i]->numel == 0;
    p[i].len = is_cat && !p[i].skip ? ts[i]->shape[dim] : 1;
  }
  dl_node *node = dl_node_new(type, ts, n, 1);
  if (!node) {
    free(c.heap);
    return -1;
  }
  memcpy(node->ctx, &c, sizeof c);
  dl_node_set_output(node, out, 0);
  dl_node_release(node);
  return 0;
}

/* the inputs' tangents joined by op (zeros for inputs without one) */
static dl_tensor *join_tangents(dl_tensor *(*op)(dl_tensor *const *, int, int), dl_tensor *const *ts, int n,
                                int dim, dl_dtype dt) {
  dl_tensor *buf[JOIN_INLINE * 4] = {NULL};
  dl_tensor **tg = n <= (int)(sizeof buf / sizeof buf[0]) ? buf : calloc((size_t)n, sizeof *tg);
  if (!tg) {
    dl_error_set("cat: out of memory");
    return NULL;
  }
  dl_tensor *out = NULL;
  int made = 0;
  for (; made < n; made++)
    if (!(tg[made] = dl_fw_tangent_or_zeros(ts[made]))) goto done;
  out = op(tg, n, dim);
  if (out && out->dtype != dt) {
    dl_tensor *c = dl_tensor_to_dtype(out, dt);
    dl_tensor_release(out);
    out = c;
  }
done:
  for (int i = 0; i < made; i++) dl_tensor_release(tg[i]);
  if (tg != buf) free(tg);
  return out;
}

dl_tensor *dl_ag_cat(dl_tensor *const *ts, int n, int dim) {
  dl_tensor *out = dl_op_cat(ts, n, dim);
  if (!out) return NULL;
  if (dl_ag_needs_grad(ts, n)) {
    /* the dim as cat wrapped it: against the first non-skipped input */
    int d = 0;
    for (int i = 0; i < n; i++)
      if (!(ts[i]->ndim == 1 && ts[i]->numel == 0)) {
        d = dl_wrap_dim("cat", dim, ts[i]->ndim);
        break;
      }
    if (record_join(&cat_type, ts, n, d, true, out)) return fail(out);
  }
  if (dl_fw_any(ts, n) && dl_fw_set(out, join_tangents(dl_op_cat, ts, n, dim, out->dtype))) return fail(out);
  return out;
}

dl_tensor *dl_ag_stack(dl_tensor *const *ts, int n, int dim) {
  dl_tensor *out = dl_op_stack(ts, n, dim);
  if (!out) return NULL;
  if (dl_ag_needs_grad(ts, n) && record_join(&stack_type, ts, n, dl_wrap_dim("stack", dim, out->ndim), false, out))
    return fail(out);
  if (dl_fw_any(ts, n) && dl_fw_set(out, join_tangents(dl_op_stack, ts, n, dim, out->dtype))) return fail(out);
  return out;
}

/* ---- flip: its own inverse ---- */

typedef struct {
  int dims[DL_MAX_DIMS];
  int n;
} flip_ctx;

static int flip_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const flip_ctx *c = (const flip_ctx *)n->ctx;
  gin[0] = dl_ag_flip(gout[0], c->dims, c->n);
  return gin[0] ? 0 : -1;
}
static const dl_node_type flip_type = {"FlipBackward0", flip_backward, NULL};

dl_tensor *dl_ag_flip(dl_tensor *t, const int *dims, int n) {
  dl_tensor *out = dl_op_flip(t, dims, n);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    dl_node *node = dl_ag_record(&flip_type, &t, 1, out);
    if (!node) return fail(out);
    flip_ctx c = {{0}, n};
    memcpy(c.dims, dims, sizeof(int) * (size_t)n);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (t->tangent && dl_fw_set(out, dl_op_flip(t->tangent, dims, n))) return fail(out);
  return out;
}

/* ---- roll: rolled back by the opposite shifts ---- */

typedef struct {
  int64_t back[DL_MAX_DIMS]; /* opposite shifts, reduced modulo the size */
  int dims[DL_MAX_DIMS];
  int nshifts, ndims;
} roll_ctx;

_Static_assert(sizeof(roll_ctx) <= DL_NODE_CTX_BYTES, "roll_ctx fits a node");

static int roll_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const roll_ctx *c = (const roll_ctx *)n->ctx;
  gin[0] = dl_ag_roll(gout[0], c->back, c->nshifts, c->dims, c->ndims);
  return gin[0] ? 0 : -1;
}
static const dl_node_type roll_type = {"RollBackward0", roll_backward, NULL};

dl_tensor *dl_ag_roll(dl_tensor *t, const int64_t *shifts, int nshifts, const int *dims, int ndims) {
  dl_tensor *out = dl_op_roll(t, shifts, nshifts, dims, ndims);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    dl_node *node = dl_ag_record(&roll_type, &t, 1, out);
    if (!node) return fail(out);
    roll_ctx c = {{0}, {0}, nshifts, ndims};
    for (int i = 0; i < nshifts; i++) {
      /* reduced first, so negating never overflows */
      int64_t size = ndims == 0 ? t->numel : (t->ndim ? t->shape[dl_wrap_dim("roll", dims[i], t->ndim)] : 1);
      c.back[i] = size ? -(shifts[i] % size) : 0;
    }
    memcpy(c.dims, dims, sizeof(int) * (size_t)ndims);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (t->tangent && dl_fw_set(out, dl_op_roll(t->tangent, shifts, nshifts, dims, ndims))) return fail(out);
  return out;
}
