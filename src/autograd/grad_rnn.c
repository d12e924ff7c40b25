/* grad_rnn.c — the recurrent cells (dl_op_lstm_cell, dl_op_gru_cell):
 * forward, backward rule and jvp rule. Without a graph of the gradients
 * the backward is one fused kernel (dl_op_*_backward); with create_graph
 * it is the same formulas written with the differentiable dl_ag_ ops, so
 * second derivatives follow. The jvp rules use those ops on detached
 * primals, where they act as plain ones.
 *
 * LSTM, gates (i, f, g, o) pre-activations, s = sigmoid:
 *   c1 = s(f) c + s(i) tanh(g), h = s(o) tanh(c1)
 *   dc1' = dc1 + dh s(o) (1 - tanh(c1)^2); d(gates) = dc1' (tanh(g) s'(i),
 *   c s'(f), s(i) (1 - tanh(g)^2)) and dh tanh(c1) s'(o); dc = dc1' s(f)
 * GRU, gi / gh (r, z, n): r = s(gi_r + gh_r), z = s(gi_z + gh_z),
 *   n = tanh(gi_n + r gh_n), h1 = n + z (h - n)
 *   dn = g (1 - z) (1 - n^2), dr = dn gh_n s'(r), dz = g (h - n) s'(z),
 *   dgi = (dr, dz, dn), dgh = (dr, dz, dn r), dh = g z */
#include "dl_ag_layer.h"

#include "dl_ag_ewise.h"
#include "dl_ag_index.h"
#include "dl_ag_scope.h"
#include "dl_ag_view.h"
#include "dl_autograd.h"

#include <string.h>

/* scope helpers: each result kept, nothing evaluated once one failed */
#define K(e) (p->failed ? NULL : dl_ag_keep(p, (e)))

static dl_tensor *piece(dl_ag_scope *p, dl_tensor *t, int64_t k, int64_t H) {
  return K(dl_ag_narrow(t, t->ndim - 1, k * H, H));
}
static dl_tensor *sig(dl_ag_scope *p, dl_tensor *t) { return K(dl_ag_unary(DL_UN_SIGMOID, t)); }
static dl_tensor *tanh_(dl_ag_scope *p, dl_tensor *t) { return K(dl_ag_unary(DL_UN_TANH, t)); }
static dl_tensor *mul(dl_ag_scope *p, dl_tensor *a, dl_tensor *b) { return K(dl_ag_mul(a, b)); }
static dl_tensor *add(dl_ag_scope *p, dl_tensor *a, dl_tensor *b) { return K(dl_ag_add(a, b)); }
static dl_tensor *sub(dl_ag_scope *p, dl_tensor *a, dl_tensor *b) { return K(dl_ag_sub(a, b)); }
/* 1 - t */
static dl_tensor *one_minus(dl_ag_scope *p, dl_tensor *t) { return K(dl_ag_rsub_scalar(dl_scalar_i(1), t)); }
/* s (1 - s): the derivative of a sigmoid from its value */
static dl_tensor *dsig(dl_ag_scope *p, dl_tensor *s) { return mul(p, s, one_minus(p, s)); }
/* 1 - t^2: the derivative of tanh from its value */
static dl_tensor *dtanh(dl_ag_scope *p, dl_tensor *t) { return one_minus(p, mul(p, t, t)); }
static dl_tensor *cat(dl_ag_scope *p, dl_tensor *const *ts, int n, int dim) {
  return p->failed ? NULL : K(dl_ag_cat(ts, n, dim));
}

static int64_t units(const dl_tensor *state) { return state->shape[state->ndim - 1]; }

/* ==== LSTM cell ==== */

/* i, f, g, o activations of gates */
static void lstm_gates(dl_ag_scope *p, dl_tensor *gates, int64_t H, dl_tensor **a) {
  a[0] = sig(p, piece(p, gates, 0, H));
  a[1] = sig(p, piece(p, gates, 1, H));
  a[2] = tanh_(p, piece(p, gates, 2, H));
  a[3] = sig(p, piece(p, gates, 3, H));
}

/* dgates, dc from dh, dc1 written with the differentiable ops (second
 * derivatives follow when recording) */
int dl_ag_lstm_cell_vjp(dl_tensor *gates, dl_tensor *c, dl_tensor *dh, dl_tensor *dc1, dl_tensor **dgates,
                        dl_tensor **dc) {
  dl_ag_scope s = {.n = 0}, *p = &s;
  const int64_t H = units(c);
  dl_tensor *a[4];
  lstm_gates(p, gates, H, a);
  /* c1 again, from the inputs, so its dependence on them is recorded */
  dl_tensor *cn = add(p, mul(p, a[1], c), mul(p, a[0], a[2])), *tc = tanh_(p, cn);
  dl_tensor *dcn = add(p, dc1, mul(p, mul(p, dh, a[3]), dtanh(p, tc)));
  dl_tensor *d[4] = {mul(p, mul(p, dcn, a[2]), dsig(p, a[0])), mul(p, mul(p, dcn, c), dsig(p, a[1])),
                     mul(p, mul(p, dcn, a[0]), dtanh(p, a[2])), mul(p, mul(p, dh, tc), dsig(p, a[3]))};
  dl_tensor *dg = cat(p, d, 4, gates->ndim - 1), *dcp = mul(p, dcn, a[1]);
  int rc = -1;
  if (!p->failed) {
    *dgates = dl_tensor_retain(dg), *dc = dl_tensor_retain(dcp);
    rc = 0;
  }
  dl_ag_scope_end(p);
  return rc;
}

static int lstm_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  dl_tensor *gates = dl_node_saved(n, 0), *c = gates ? dl_node_saved(n, 1) : NULL;
  dl_tensor *c1 = c ? dl_node_saved(n, 2) : NULL;
  int rc = -1;
  if (c1) {
    if (!dl_grad_enabled()) /* no graph of the gradients: the fused kernel */
      rc = dl_op_lstm_cell_backward(gout[0], gout[1], gates, c, c1, &gin[0], &gin[1]);
    else
      rc = dl_ag_lstm_cell_vjp(gates, c, gout[0], gout[1], &gin[0], &gin[1]);
  }
  dl_tensor_release(gates);
  dl_tensor_release(c);
  dl_tensor_release(c1);
  return rc;
}
static const dl_node_type lstm_type = {"ThnnFusedLstmCellBackward0", lstm_backward, NULL};

int dl_ag_lstm_cell_jvp(dl_tensor *gates, dl_tensor *c, dl_tensor *c1, dl_tensor *tg, dl_tensor *tc, dl_tensor **th,
                        dl_tensor **tc1) {
  dl_ag_scope s = {.n = 0}, *p = &s;
  const int64_t H = units(c);
  dl_tensor *a[4];
  lstm_gates(p, gates, H, a);
  dl_tensor *ti = mul(p, dsig(p, a[0]), piece(p, tg, 0, H)), *tf = mul(p, dsig(p, a[1]), piece(p, tg, 1, H));
  dl_tensor *tgg = mul(p, dtanh(p, a[2]), piece(p, tg, 2, H)), *to = mul(p, dsig(p, a[3]), piece(p, tg, 3, H));
  dl_tensor *tn = add(p, add(p, mul(p, tf, c), mul(p, a[1], tc)), add(p, mul(p, ti, a[2]), mul(p, a[0], tgg)));
  dl_tensor *t = tanh_(p, c1);
  dl_tensor *tho = add(p, mul(p, to, t), mul(p, mul(p, a[3], dtanh(p, t)), tn));
  int rc = -1;
  if (!p->failed) {
    *th = dl_tensor_retain(tho), *tc1 = dl_tensor_retain(tn);
    rc = 0;
  }
  dl_ag_scope_end(p);
  return rc;
}

/* tangents of h and c1 from those of gates and c (zeros where absent) */
static int lstm_jvp(dl_tensor *gates, dl_tensor *c, dl_tensor *h, dl_tensor *c1) {
  dl_ag_scope s = {.n = 0}, *p = &s;
  dl_tensor *g0 = K(dl_tensor_detach(gates)), *c0 = K(dl_tensor_detach(c)), *cn = K(dl_tensor_detach(c1));
  dl_tensor *tg = K(dl_fw_tangent_or_zeros(gates)), *tc = K(dl_fw_tangent_or_zeros(c));
  dl_tensor *th = NULL, *tc1 = NULL;
  int rc = -1;
  if (!p->failed && !dl_ag_lstm_cell_jvp(g0, c0, cn, tg, tc, &th, &tc1)) {
    rc = dl_fw_set(h, th);
    if (dl_fw_set(c1, tc1)) rc = -1;
  }
  dl_ag_scope_end(p);
  return rc;
}

int dl_ag_lstm_cell(dl_tensor *gates, dl_tensor *c, dl_tensor **h, dl_tensor **c1) {
  if (dl_op_lstm_cell(gates, c, h, c1)) return -1;
  dl_tensor *in[2] = {gates, c};
  if (dl_ag_needs_grad(in, 2)) {
    dl_node *node = dl_node_new(&lstm_type, in, 2, 2);
    if (!node) goto fail;
    dl_node_save(node, gates);
    dl_node_save(node, c);
    dl_node_save_output(node, *c1, 1);
    dl_node_set_output(node, *h, 0);
    dl_node_set_output(node, *c1, 1);
    dl_node_release(node);
  }
  if (dl_fw_any(in, 2) && lstm_jvp(gates, c, *h, *c1)) goto fail;
  return 0;
fail:
  dl_tensor_release(*h);
  dl_tensor_release(*c1);
  *h = *c1 = NULL;
  return -1;
}

/* ==== GRU cell ==== */

/* r, z, n of the cell, and gh's n piece */
static void gru_gates(dl_ag_scope *p, dl_tensor *gi, dl_tensor *gh, int64_t H, dl_tensor **a, dl_tensor **q_n) {
  a[0] = sig(p, add(p, piece(p, gi, 0, H), piece(p, gh, 0, H)));
  a[1] = sig(p, add(p, piece(p, gi, 1, H), piece(p, gh, 1, H)));
  *q_n = piece(p, gh, 2, H);
  a[2] = tanh_(p, add(p, piece(p, gi, 2, H), mul(p, a[0], *q_n)));
}

int dl_ag_gru_cell_vjp(dl_tensor *gi, dl_tensor *gh, dl_tensor *h, dl_tensor *g, dl_tensor **dgi, dl_tensor **dgh,
                       dl_tensor **dh) {
  dl_ag_scope s = {.n = 0}, *p = &s;
  const int64_t H = units(h);
  dl_tensor *a[3], *q_n;
  gru_gates(p, gi, gh, H, a, &q_n);
  dl_tensor *dn = mul(p, mul(p, g, one_minus(p, a[1])), dtanh(p, a[2]));
  dl_tensor *dr = mul(p, mul(p, dn, q_n), dsig(p, a[0]));
  dl_tensor *dz = mul(p, mul(p, g, sub(p, h, a[2])), dsig(p, a[1]));
  dl_tensor *di[3] = {dr, dz, dn}, *dq[3] = {dr, dz, mul(p, dn, a[0])};
  int d = gi->ndim - 1;
  dl_tensor *a_gi = cat(p, di, 3, d), *a_gh = cat(p, dq, 3, d), *a_h = mul(p, g, a[1]);
  int rc = -1;
  if (!p->failed) {
    *dgi = dl_tensor_retain(a_gi), *dgh = dl_tensor_retain(a_gh), *dh = dl_tensor_retain(a_h);
    rc = 0;
  }
  dl_ag_scope_end(p);
  return rc;
}

static int gru_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  dl_tensor *gi = dl_node_saved(n, 0), *gh = gi ? dl_node_saved(n, 1) : NULL, *h = gh ? dl_node_saved(n, 2) : NULL;
  int rc = -1;
  if (h) {
    if (!dl_grad_enabled())
      rc = dl_op_gru_cell_backward(gout[0], gi, gh, h, &gin[0], &gin[1], &gin[2]);
    else
      rc = dl_ag_gru_cell_vjp(gi, gh, h, gout[0], &gin[0], &gin[1], &gin[2]);
  }
  dl_tensor_release(gi);
  dl_tensor_release(gh);
  dl_tensor_release(h);
  return rc;
}
static const dl_node_type gru_type = {"GruCellBackward0", gru_backward, NULL};

dl_tensor *dl_ag_gru_cell_jvp(dl_tensor *gi, dl_tensor *gh, dl_tensor *h, dl_tensor *ti, dl_tensor *tq,
                              dl_tensor *th) {
  dl_ag_scope s = {.n = 0}, *p = &s;
  const int64_t H = units(h);
  dl_tensor *a[3], *q_n;
  gru_gates(p, gi, gh, H, a, &q_n);
  dl_tensor *tr = mul(p, dsig(p, a[0]), add(p, piece(p, ti, 0, H), piece(p, tq, 0, H)));
  dl_tensor *tz = mul(p, dsig(p, a[1]), add(p, piece(p, ti, 1, H), piece(p, tq, 1, H)));
  dl_tensor *tpre = add(p, piece(p, ti, 2, H), add(p, mul(p, tr, q_n), mul(p, a[0], piece(p, tq, 2, H))));
  dl_tensor *tn = mul(p, dtanh(p, a[2]), tpre);
  dl_tensor *t1 = add(p, add(p, mul(p, tn, one_minus(p, a[1])), mul(p, tz, sub(p, h, a[2]))), mul(p, a[1], th));
  dl_tensor *out = p->failed ? NULL : dl_tensor_retain(t1);
  dl_ag_scope_end(p);
  return out;
}

static int gru_jvp(dl_tensor *gi, dl_tensor *gh, dl_tensor *h, dl_tensor *h1) {
  dl_ag_scope s = {.n = 0}, *p = &s;
  dl_tensor *i0 = K(dl_tensor_detach(gi)), *q0 = K(dl_tensor_detach(gh)), *h0 = K(dl_tensor_detach(h));
  dl_tensor *ti = K(dl_fw_tangent_or_zeros(gi)), *tq = K(dl_fw_tangent_or_zeros(gh)), *th = K(dl_fw_tangent_or_zeros(h));
  dl_tensor *t1 = p->failed ? NULL : dl_ag_gru_cell_jvp(i0, q0, h0, ti, tq, th);
  int rc = t1 && !dl_fw_set(h1, t1) ? 0 : -1;
  dl_ag_scope_end(p);
  return rc;
}

dl_tensor *dl_ag_gru_cell(dl_tensor *gi, dl_tensor *gh, dl_tensor *h) {
  dl_tensor *out = dl_op_gru_cell(gi, gh, h);
  if (!out) return NULL;
  dl_tensor *in[3] = {gi, gh, h};
  if (dl_ag_needs_grad(in, 3)) {
    dl_node *node = dl_node_new(&gru_type, in, 3, 1);
    if (!node) goto fail;
    for (int i = 0; i < 3; i++) dl_node_save(node, in[i]);
    dl_node_set_output(node, out, 0);
    dl_node_release(node);
  }
  if (dl_fw_any(in, 3) && gru_jvp(gi, gh, h, out)) goto fail;
  return out;
fail:
  dl_tensor_release(out);
  return NULL;
}
