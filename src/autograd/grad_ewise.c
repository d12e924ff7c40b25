/* grad_ewise.c — the element-wise autograd machinery (recording, backward
 * and jvp driven by the rules in grad_ewise_rules.c, in-place history) and
 * the binary arithmetic front-ends. Broadcast inputs get their gradient
 * summed back to their own shape and dtype. */
#include "grad_ewise_impl.h"

#include "dl_ag_view.h"
#include "dl_autograd_ops.h"

#include <string.h>

static dl_tensor *fail(dl_tensor *out) {
  dl_tensor_release(out);
  return NULL;
}

static double scalar_value(dl_scalar s) { return s.is_int ? (double)s.i : s.f; }

void ew_ctx_init(ew_ctx *c, ew_kind kind, int op, int n, const dl_operand *ops, unsigned present) {
  c->kind = (uint8_t)kind;
  c->op = (uint8_t)op;
  c->nin = (uint8_t)n;
  c->present = (uint8_t)present;
  c->is_tensor = 0;
  c->alpha = 1;
  for (int k = 0; k < n; k++) {
    c->s[k] = 0;
    c->slot[k] = -1;
    c->ndim[k] = 0;
    if (!((present >> k) & 1)) continue;
    if (ops[k].t) c->is_tensor |= (uint8_t)(1u << k);
    else c->s[k] = scalar_value(ops[k].s);
  }
  c->slot_y = -1;
}

/* shapes and dtypes of the tensor operands */
static void fill_shapes(ew_ctx *c, dl_tensor *const *in, dl_dtype out_dtype) {
  c->out_dtype = (uint8_t)out_dtype;
  for (int k = 0; k < c->nin && k < EW_MAXIN; k++) {
    if (!in[k]) continue;
    memcpy(c->shape[k], in[k]->shape, sizeof(int64_t) * (size_t)in[k]->ndim);
    c->ndim[k] = (int8_t)in[k]->ndim;
    c->dtype[k] = (uint8_t)in[k]->dtype;
  }
}

/* what the rules of the operands that need a gradient use */
static void uses_of(const ew_ctx *c, dl_tensor *const *in, bool *x, bool *y) {
  for (int j = 0; j < EW_MAXIN; j++) x[j] = false;
  *y = false;
  for (int k = 0; k < c->nin; k++)
    if (in[k] && in[k]->requires_grad) ew_uses(c, k, x, y);
}

/* a number operand as a 0-d tensor of the output's dtype */
static dl_tensor *number_tensor(const ew_ctx *c, int k, dl_device dev) {
  return dl_tensor_scalar(dl_scalar_f(c->s[k]), (dl_dtype)c->out_dtype, dev);
}

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }

static dl_tensor *reduce_to_input(const ew_ctx *c, int k, dl_tensor *g) {
  dl_tensor *s = dl_ag_sum_to(g, c->shape[k], c->ndim[k]);
  if (!s || s->dtype == (dl_dtype)c->dtype[k]) return s;
  dl_tensor *r = dl_ag_to_dtype(s, (dl_dtype)c->dtype[k]);
  dl_tensor_release(s);
  return r;
}

static void release_all(dl_tensor **t, int n) {
  for (int i = 0; i < n; i++) {
    dl_tensor_release(t[i]);
    t[i] = NULL;
  }
}

int ew_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const ew_ctx *c = (const ew_ctx *)n->ctx;
  dl_tensor *x[EW_MAXIN] = {NULL, NULL, NULL}, *y = NULL;
  dl_device dev = dl_tensor_device(gout[0]);
  int rc = -1;
  for (int j = 0; j < c->nin; j++) {
    if (c->slot[j] >= 0) {
      if (!(x[j] = dl_node_saved(n, c->slot[j]))) goto done;
    } else if (ew_has(c, j) && !ew_is_tensor(c, j)) {
      if (!(x[j] = number_tensor(c, j, dev))) goto done;
    }
  }
  if (c->slot_y >= 0 && !(y = dl_node_saved(n, c->slot_y))) goto done;
  for (int k = 0; k < c->nin; k++) {
    if (!ew_is_tensor(c, k) || !wants(n, k)) continue;
    dl_tensor *d = ew_local(c, k, x, y, gout[0]);
    if (!d) goto done;
    gin[k] = reduce_to_input(c, k, d);
    dl_tensor_release(d);
    if (!gin[k]) goto done;
  }
  rc = 0;
done:
  release_all(x, EW_MAXIN);
  dl_tensor_release(y);
  return rc;
}

/* The output's tangent: the sum over operands with a tangent of the local
 * derivative times it, with grad mode off, at out's shape and dtype. x, y
 * are plain values (no history, no tangents). */
/* a / b with a tangent on b: PyTorch's (t_a - t_b y) / b, one division, so
 * the tangent where b = 0 is PyTorch's too (the sum of the two local terms,
 * t_a / b - t_b a / b^2, gives inf - inf = NaN there) */
static dl_tensor *div_jvp(dl_tensor *const *x, dl_tensor *y, dl_tensor *const *tg) {
  dl_tensor *p = dl_op_binary(DL_BIN_MUL, tg[1], y, dl_scalar_i(1));
  dl_tensor *n = p ? (tg[0] ? dl_op_binary(DL_BIN_SUB, tg[0], p, dl_scalar_i(1)) : dl_op_unary(DL_UN_NEG, p)) : NULL;
  dl_tensor *r = n ? dl_op_binary(DL_BIN_DIV, n, x[1], dl_scalar_i(1)) : NULL;
  dl_tensor_release(p);
  dl_tensor_release(n);
  return r;
}

static dl_tensor *ew_jvp(const ew_ctx *c, dl_tensor *const *x, dl_tensor *y, dl_tensor *const *tg, const dl_tensor *out) {
  bool prev = dl_set_grad_enabled(false);
  dl_tensor *acc = NULL;
  bool div = c->kind == EW_BINARY && c->op == DL_BIN_DIV && tg[1] && x[1];
  if (div && !(acc = div_jvp(x, y, tg))) goto fail;
  for (int k = 0; !div && k < c->nin; k++) {
    if (!tg[k]) continue;
    dl_tensor *d = ew_local(c, k, x, y, tg[k]);
    if (!d) goto fail;
    if (!acc) {
      acc = d;
      continue;
    }
    dl_tensor *s = dl_op_binary(DL_BIN_ADD, acc, d, dl_scalar_i(1));
    dl_tensor_release(acc);
    dl_tensor_release(d);
    if (!(acc = s)) goto fail;
  }
  if (!acc) acc = dl_tensor_zeros(out->shape, out->ndim, out->dtype, dl_tensor_device(out));
  if (acc && acc->dtype != out->dtype) {
    dl_tensor *t = dl_tensor_to_dtype(acc, out->dtype);
    dl_tensor_release(acc);
    acc = t;
  }
  if (acc && !dl_tensor_same_shape(acc, out)) {
    dl_tensor *e = dl_tensor_expand(acc, out->shape, out->ndim);
    dl_tensor_release(acc);
    acc = e ? dl_tensor_clone(e) : NULL;
    dl_tensor_release(e);
  }
  /* an operand's own tangent is not shared with the output */
  for (int k = 0; acc && k < c->nin; k++) {
    if (acc != tg[k]) continue;
    dl_tensor *cl = dl_tensor_clone(acc);
    dl_tensor_release(acc);
    acc = cl;
  }
  dl_set_grad_enabled(prev);
  return acc;
fail:
  dl_tensor_release(acc);
  dl_set_grad_enabled(prev);
  return NULL;
}

/* plain values of the operands for the jvp (numbers as 0-d tensors) */
static int jvp_values(const ew_ctx *c, dl_tensor *const *in, dl_device dev, dl_tensor **x) {
  for (int j = 0; j < c->nin; j++) {
    x[j] = NULL;
    if (in[j]) x[j] = dl_tensor_detach(in[j]);
    else if (ew_has(c, j)) x[j] = number_tensor(c, j, dev);
    else continue;
    if (!x[j]) {
      release_all(x, j);
      return -1;
    }
  }
  return 0;
}

dl_tensor *ew_record(ew_ctx *c, dl_tensor *const *in, dl_tensor *out) {
  if (!dl_dtype_is_float(out->dtype)) return out;
  int n = c->nin;
  fill_shapes(c, in, out->dtype);
  if (dl_ag_needs_grad(in, n)) {
    dl_node *node = dl_ag_record(ew_type(c), in, n, out);
    if (!node) return fail(out);
    bool ux[EW_MAXIN], uy;
    uses_of(c, in, ux, &uy);
    for (int j = 0; j < n; j++) {
      if (!ux[j] || !in[j]) continue;
      c->slot[j] = (int8_t)node->nsaved;
      dl_node_save(node, in[j]);
    }
    if (uy) {
      c->slot_y = (int8_t)node->nsaved;
      dl_node_save_output(node, out, 0);
    }
    memcpy(node->ctx, c, sizeof *c);
  }
  if (dl_fw_any(in, n)) {
    dl_tensor *x[EW_MAXIN] = {NULL, NULL, NULL}, *tg[EW_MAXIN] = {NULL, NULL, NULL};
    for (int j = 0; j < n; j++) tg[j] = in[j] ? in[j]->tangent : NULL;
    if (jvp_values(c, in, dl_tensor_device(out), x)) return fail(out);
    dl_tensor *y = dl_tensor_detach(out);
    dl_tensor *t = y ? ew_jvp(c, x, y, tg, out) : NULL;
    release_all(x, n);
    dl_tensor_release(y);
    if (!t) return fail(out);
    dl_fw_set(out, t);
  }
  return out;
}

/* ---- in place ---- */

/* the value of in[j] as it is before self (in[0]) is written: a copy when it
 * shares self's storage. With history (dl_ag_clone) for the backward,
 * without for the jvp. */
static dl_tensor *value_before_write(dl_tensor *const *in, int j, bool history) {
  dl_tensor *t = in[j];
  bool copy = j == 0 || t->storage == in[0]->storage;
  if (history) return copy ? dl_ag_clone(t) : dl_tensor_retain(t);
  return copy ? dl_tensor_clone(t) : dl_tensor_detach(t);
}

int ew_inplace_begin(ew_ctx *c, const char *name, dl_tensor *const *in, ew_pending *p) {
  memset(p, 0, sizeof *p);
  dl_tensor *self = in[0];
  int n = c->nin;
  /* an integer self cannot take a float result: the write fails by itself */
  if (!dl_dtype_is_float(self->dtype)) return 0;
  if (self->requires_grad && dl_ag_check_inplace(name, self)) return -1;
  fill_shapes(c, in, self->dtype);
  if (dl_ag_needs_grad(in, n)) {
    dl_node *node = dl_node_new(ew_type(c), in, n, 1);
    if (!node) return -1;
    bool ux[EW_MAXIN], uy;
    uses_of(c, in, ux, &uy);
    for (int j = 0; j < n; j++) {
      if (!ux[j] || !in[j]) continue;
      dl_tensor *v = value_before_write(in, j, true);
      if (!v) {
        dl_node_release(node);
        return -1;
      }
      c->slot[j] = (int8_t)node->nsaved;
      dl_node_save(node, v);
      dl_tensor_release(v);
    }
    p->save_y = uy;
    memcpy(node->ctx, c, sizeof *c);
    p->node = node;
  }
  if (dl_fw_any(in, n)) {
    p->fw = true;
    for (int j = 0; j < n; j++) {
      if (in[j]) {
        p->tg[j] = in[j]->tangent ? dl_tensor_retain(in[j]->tangent) : NULL;
        p->x[j] = value_before_write(in, j, false);
      } else if (ew_has(c, j)) {
        p->x[j] = number_tensor(c, j, dl_tensor_device(self));
      } else {
        continue;
      }
      if (!p->x[j]) {
        ew_inplace_end(c, in, p, -1);
        return -1;
      }
    }
  }
  return 0;
}

int ew_inplace_end(ew_ctx *c, dl_tensor *const *in, ew_pending *p, int rc) {
  dl_tensor *self = in[0];
  if (p->node) {
    if (!rc) {
      dl_node_set_output(p->node, self, 0);
      if (p->save_y) {
        ((ew_ctx *)p->node->ctx)->slot_y = (int8_t)p->node->nsaved;
        dl_node_save_output(p->node, self, 0);
      }
    }
    dl_node_release(p->node);
    p->node = NULL;
  }
  if (p->fw && !rc) {
    dl_tensor *y = dl_tensor_detach(self);
    dl_tensor *t = y ? ew_jvp(c, p->x, y, p->tg, self) : NULL;
    dl_tensor_release(y);
    if (dl_fw_set_inplace(self, t)) rc = -1;
  }
  release_all(p->x, EW_MAXIN);
  release_all(p->tg, EW_MAXIN);
  return rc ? -1 : 0;
}

/* ---- binary arithmetic ---- */

dl_tensor *dl_ag_binary_finish(dl_binop op, dl_operand a, dl_operand b, dl_scalar alpha, dl_tensor *out) {
  if (op >= DL_BIN_EQ) return out; /* comparisons and logical ops: not differentiable */
  dl_operand ops[2] = {a, b};
  ew_ctx c;
  ew_ctx_init(&c, EW_BINARY, op, 2, ops, 3);
  c.alpha = scalar_value(alpha);
  dl_tensor *in[2] = {(dl_tensor *)a.t, (dl_tensor *)b.t};
  return ew_record(&c, in, out);
}

dl_tensor *dl_ag_binary(dl_binop op, dl_operand a, dl_operand b, dl_scalar alpha) {
  dl_tensor *out = a.t && b.t ? dl_op_binary(op, a.t, b.t, alpha) : dl_op_binary_ex(op, a, b, alpha);
  if (!out || !(ew_active(a.t) || ew_active(b.t))) return out;
  return dl_ag_binary_finish(op, a, b, alpha, out);
}

int dl_ag_binary_(dl_binop op, dl_tensor *self, dl_operand b, dl_scalar alpha) {
  if (op >= DL_BIN_EQ || !(ew_active(self) || ew_active(b.t))) return dl_op_binary_(op, self, b, alpha);
  dl_operand ops[2] = {dl_operand_tensor(self), b};
  ew_ctx c;
  ew_ctx_init(&c, EW_BINARY, op, 2, ops, 3);
  c.alpha = scalar_value(alpha);
  dl_tensor *in[2] = {self, (dl_tensor *)b.t};
  ew_pending p;
  if (ew_inplace_begin(&c, ew_inplace_name(&c), in, &p)) return -1;
  return ew_inplace_end(&c, in, &p, dl_op_binary_(op, self, b, alpha));
}

static dl_tensor *binary_tt(dl_binop op, dl_tensor *a, dl_tensor *b) {
  return dl_ag_binary_t(op, a, b, dl_scalar_i(1));
}

dl_tensor *dl_ag_add(dl_tensor *a, dl_tensor *b) { return binary_tt(DL_BIN_ADD, a, b); }
dl_tensor *dl_ag_sub(dl_tensor *a, dl_tensor *b) { return binary_tt(DL_BIN_SUB, a, b); }
dl_tensor *dl_ag_mul(dl_tensor *a, dl_tensor *b) { return binary_tt(DL_BIN_MUL, a, b); }
dl_tensor *dl_ag_div(dl_tensor *a, dl_tensor *b) { return binary_tt(DL_BIN_DIV, a, b); }

static dl_tensor *with_number(dl_binop op, dl_tensor *a, dl_scalar s) {
  return dl_ag_binary(op, dl_operand_tensor(a), dl_operand_scalar(s), dl_scalar_i(1));
}
dl_tensor *dl_ag_add_scalar(dl_tensor *a, dl_scalar s) { return with_number(DL_BIN_ADD, a, s); }
dl_tensor *dl_ag_mul_scalar(dl_tensor *a, dl_scalar s) { return with_number(DL_BIN_MUL, a, s); }
dl_tensor *dl_ag_div_scalar(dl_tensor *a, dl_scalar s) { return with_number(DL_BIN_DIV, a, s); }
dl_tensor *dl_ag_pow_scalar(dl_tensor *a, dl_scalar s) { return with_number(DL_BIN_POW, a, s); }
dl_tensor *dl_ag_rsub_scalar(dl_scalar s, dl_tensor *a) {
  return dl_ag_binary(DL_BIN_SUB, dl_operand_scalar(s), dl_operand_tensor(a), dl_scalar_i(1));
}
