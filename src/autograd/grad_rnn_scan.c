/* grad_rnn_scan.c — the whole-sequence LSTM and GRU ops (ops/dl_rnn_scan.h):
 * forward wrapper, backward rule and jvp rule.
 *
 * Without a graph of the gradients the backward is the op's own
 * (dl_op_*_scan_backward: fused cell kernels, one GEMM per weight). With
 * create_graph the rule recomputes the layer from the saved inputs with
 * the differentiable ops (the input projection, addmm and the cell per
 * step) and runs backpropagation through time with them too (the cells'
 * vjp rules), so second derivatives follow. The jvp rule carries the
 * tangents step by step with the same ops on detached primals:
 *   t(xp) = t(x) W_ih^T + x t(W_ih)^T + t(b)   (the input projection)
 *   LSTM  t(gates_t) = t(xp_t) + t(h_{t-1}) W_hh^T + h_{t-1} t(W_hh)^T, then the cell's jvp
 *   GRU   t(gh_t) = t(h_{t-1}) W_hh^T + h_{t-1} t(W_hh)^T + t(b_hh), then the cell's jvp
 * The node's inputs are always (x, h0, c0, w_ih, w_hh, b_ih, b_hh), c0
 * and the biases possibly absent. */
#include "dl_ag_layer.h"

#include "../ops/dl_rnn_scan.h"
#include "dl_ag_ewise.h"
#include "dl_ag_index.h"
#include "dl_ag_linalg.h"
#include "dl_ag_reduce.h"
#include "dl_ag_scope.h"
#include "dl_ag_view.h"
#include "dl_autograd.h"

#include <stdlib.h>

enum { IN_X, IN_H0, IN_C0, IN_WIH, IN_WHH, IN_BIH, IN_BHH, IN_N };

typedef struct {
  bool reverse, lstm, has_bias;
} scan_ctx;

/* saved, in this order, those the node has: x h0 w_ih w_hh hs, the two
 * buffers (LSTM gates and cs, GRU gi and gh), c0 (LSTM), the biases */
enum { S_X, S_H0, S_WIH, S_WHH, S_HS, S_BUF1, S_BUF2, S_C0, S_BIH, S_BHH, S_N };

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }

/* the rules' temporaries live in a scope (several a step); these helpers do
 * nothing once it has failed, so calls nest */
#define K(e) (p->failed ? NULL : dl_ag_keep(p, (e)))
static dl_tensor *sel(dl_ag_scope *p, dl_tensor *t, int64_t i) { return K(dl_ag_select(t, 0, i)); }
static dl_tensor *tr(dl_ag_scope *p, dl_tensor *t) { return K(dl_ag_transpose(t, 0, 1)); }
static dl_tensor *mm(dl_ag_scope *p, dl_tensor *a, dl_tensor *b) { return K(dl_ag_mm(a, b)); }
/* c + a @ b */
static dl_tensor *addmm(dl_ag_scope *p, dl_tensor *c, dl_tensor *a, dl_tensor *b) { return K(dl_ag_addmm(c, a, b, 1, 1)); }
static dl_tensor *add(dl_ag_scope *p, dl_tensor *a, dl_tensor *b) { return K(dl_ag_add(a, b)); }
static dl_tensor *mat(dl_ag_scope *p, dl_tensor *t, int64_t r, int64_t c) {
  int64_t shape[2] = {r, c};
  return K(dl_ag_reshape(t, shape, 2));
}
static dl_tensor *seq(dl_ag_scope *p, dl_tensor *t, int64_t T, int64_t B, int64_t c) {
  int64_t shape[3] = {T, B, c};
  return K(dl_ag_reshape(t, shape, 3));
}
static dl_tensor *colsum(dl_ag_scope *p, dl_tensor *t) {
  int dim = 0;
  return K(dl_ag_sum(t, &dim, 1, false));
}
static dl_tensor *stack(dl_ag_scope *p, dl_tensor **ts, int64_t n) { return p->failed ? NULL : K(dl_ag_stack(ts, (int)n, 0)); }

static inline int64_t step_at(int64_t s, int64_t T, bool reverse) { return reverse ? T - 1 - s : s; }

/* x [T, B, I] @ w^T (+ b) as [T, B, G*H], b NULL for none */
static dl_tensor *projection(dl_ag_scope *p, dl_tensor *x, dl_tensor *w, dl_tensor *b) {
  int64_t T = x->shape[0], B = x->shape[1], GH = w->shape[0];
  dl_tensor *x2 = mat(p, x, T * B, x->shape[2]), *wt = tr(p, w);
  return seq(p, b ? addmm(p, b, x2, wt) : mm(p, x2, wt), T, B, GH);
}

/* From d [T, B, G*H], the gradient of the projection: x's, w_ih's and the
 * bias's (into g[IN_X], g[IN_WIH], *db), differentiable */
static void projection_grads(dl_ag_scope *p, dl_tensor *x, dl_tensor *w, dl_tensor *d, bool bias, dl_tensor **g,
                             dl_tensor **db) {
  int64_t T = x->shape[0], B = x->shape[1], GH = w->shape[0];
  dl_tensor *d2 = mat(p, d, T * B, GH);
  g[IN_X] = seq(p, mm(p, d2, w), T, B, x->shape[2]);
  g[IN_WIH] = mm(p, tr(p, d2), mat(p, x, T * B, x->shape[2]));
  *db = bias ? colsum(p, d2) : NULL;
}

/* hands r's tensors to out (new references) when nothing failed */
static int hand_over(dl_ag_scope *p, dl_tensor **out, dl_tensor *const *r, int n) {
  if (p->failed) return -1;
  for (int i = 0; i < n; i++) out[i] = r[i] ? dl_tensor_retain(r[i]) : NULL;
  return 0;
}

/* ==== backward with a graph of the gradients ==== */

static int lstm_graph_vjp(dl_ag_scope *p, dl_tensor **s, bool rev, dl_tensor *ghs, dl_tensor *gc, dl_tensor **gin) {
  const int64_t T = s[S_X]->shape[0];
  dl_tensor **g = calloc((size_t)(4 * T), sizeof *g), **h = g + T, **c = h + T, **d = c + T;
  if (!g) {
    dl_error_set("autograd: out of memory");
    return -1;
  }
  dl_tensor *bias = s[S_BIH] ? add(p, s[S_BIH], s[S_BHH]) : NULL;
  dl_tensor *xp = projection(p, s[S_X], s[S_WIH], bias), *wt = tr(p, s[S_WHH]);
  for (int64_t i = 0; i < T && !p->failed; i++) {
    dl_tensor *hp = i ? h[i - 1] : s[S_H0], *cp = i ? c[i - 1] : s[S_C0];
    g[i] = addmm(p, sel(p, xp, step_at(i, T, rev)), hp, wt);
    if (!p->failed && dl_ag_lstm_cell(g[i], cp, &h[i], &c[i])) p->failed = true;
    K(h[i]), K(c[i]);
  }
  dl_tensor *r[IN_N] = {NULL}, *dh_next = NULL, *dc = gc, *dw = NULL, *db = NULL;
  for (int64_t i = T - 1; i >= 0 && !p->failed; i--) {
    int64_t t = step_at(i, T, rev);
    dl_tensor *hp = i ? h[i - 1] : s[S_H0], *cp = i ? c[i - 1] : s[S_C0];
    dl_tensor *dh = sel(p, ghs, t), *dg = NULL, *dcp = NULL;
    if (dh_next) dh = add(p, dh, dh_next);
    if (!p->failed && dl_ag_lstm_cell_vjp(g[i], cp, dh, dc, &dg, &dcp)) p->failed = true;
    K(dg), K(dcp);
    d[t] = dg, dc = dcp;
    dh_next = mm(p, dg, s[S_WHH]);
    dl_tensor *term = mm(p, tr(p, dg), hp);
    dw = dw ? add(p, dw, term) : term;
  }
  dl_tensor *dxp = stack(p, d, T);
  projection_grads(p, s[S_X], s[S_WIH], dxp, bias != NULL, r, &db);
  free(g);
  r[IN_H0] = dh_next, r[IN_C0] = dc, r[IN_WHH] = dw;
  /* the two biases act as one: each gets the same sum, its own tensor */
  r[IN_BIH] = db, r[IN_BHH] = db ? colsum(p, mat(p, dxp, T * s[S_X]->shape[1], s[S_WHH]->shape[0])) : NULL;
  return hand_over(p, gin, r, IN_N);
}

static int gru_graph_vjp(dl_ag_scope *p, dl_tensor **s, bool rev, dl_tensor *ghs, dl_tensor **gin) {
  const int64_t T = s[S_X]->shape[0];
  dl_tensor **q = calloc((size_t)(4 * T), sizeof *q), **h = q + T, **di = h + T, **dq = di + T;
  if (!q) {
    dl_error_set("autograd: out of memory");
    return -1;
  }
  dl_tensor *gi = projection(p, s[S_X], s[S_WIH], s[S_BIH]), *wt = tr(p, s[S_WHH]);
  for (int64_t i = 0; i < T && !p->failed; i++) {
    dl_tensor *hp = i ? h[i - 1] : s[S_H0], *xt = sel(p, gi, step_at(i, T, rev));
    q[i] = s[S_BHH] ? addmm(p, s[S_BHH], hp, wt) : mm(p, hp, wt);
    h[i] = p->failed ? NULL : K(dl_ag_gru_cell(xt, q[i], hp));
  }
  dl_tensor *r[IN_N] = {NULL}, *dh_next = NULL, *dw = NULL, *db = NULL;
  for (int64_t i = T - 1; i >= 0 && !p->failed; i--) {
    int64_t t = step_at(i, T, rev);
    dl_tensor *hp = i ? h[i - 1] : s[S_H0];
    dl_tensor *g = sel(p, ghs, t), *xt = sel(p, gi, t), *a = NULL, *b = NULL, *dh = NULL;
    if (dh_next) g = add(p, g, dh_next);
    if (!p->failed && dl_ag_gru_cell_vjp(xt, q[i], hp, g, &a, &b, &dh)) p->failed = true;
    di[t] = K(a), dq[t] = K(b), K(dh);
    dh_next = add(p, dh, mm(p, dq[t], s[S_WHH]));
    dl_tensor *term = mm(p, tr(p, dq[t]), hp);
    dw = dw ? add(p, dw, term) : term;
  }
  projection_grads(p, s[S_X], s[S_WIH], stack(p, di, T), s[S_BIH] != NULL, r, &db);
  r[IN_H0] = dh_next, r[IN_WHH] = dw, r[IN_BIH] = db;
  if (s[S_BHH]) r[IN_BHH] = colsum(p, mat(p, stack(p, dq, T), T * s[S_X]->shape[1], s[S_WHH]->shape[0]));
  free(q);
  return hand_over(p, gin, r, IN_N);
}

/* ==== the node ==== */

static int scan_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const scan_ctx *x = (const scan_ctx *)n->ctx;
  bool has[S_N] = {true, true, true, true, true, true, true, x->lstm, x->has_bias, x->has_bias};
  dl_tensor *s[S_N] = {NULL};
  bool ok = true;
  for (int i = 0, k = 0; i < S_N && ok; i++)
    if (has[i]) ok = (s[i] = dl_node_saved(n, k++)) != NULL;
  int rc = -1;
  if (!ok) goto done;
  if (!dl_grad_enabled()) {
    dl_rnn_scan_in in = {s[S_X], s[S_H0], s[S_C0], s[S_WIH], s[S_WHH], s[S_BIH], s[S_BHH], x->reverse};
    dl_rnn_scan_grads g;
    rc = x->lstm ? dl_op_lstm_scan_backward(&in, gout[0], gout[1], s[S_BUF1], s[S_HS], s[S_BUF2], wants(n, IN_X), &g)
                 : dl_op_gru_scan_backward(&in, gout[0], s[S_BUF1], s[S_BUF2], s[S_HS], wants(n, IN_X), &g);
    if (!rc) {
      dl_tensor *r[IN_N] = {g.x, g.h0, g.c0, g.w_ih, g.w_hh, g.b_ih, g.b_hh};
      for (int i = 0; i < IN_N; i++) gin[i] = r[i];
    }
  } else {
    dl_ag_scope p = {.n = 0};
    rc = x->lstm ? lstm_graph_vjp(&p, s, x->reverse, gout[0], gout[1], gin)
                 : gru_graph_vjp(&p, s, x->reverse, gout[0], gin);
    dl_ag_scope_end(&p);
  }
done:
  for (int i = 0; i < S_N; i++) dl_tensor_release(s[i]);
  return rc;
}
static const dl_node_type lstm_scan_type = {"LstmScanBackward0", scan_backward, NULL};
static const dl_node_type gru_scan_type = {"GruScanBackward0", scan_backward, NULL};

/* the node of either op: buf1 / buf2 its two saved buffers */
static int record(const dl_rnn_scan_in *in, bool lstm, dl_tensor *hs, dl_tensor *c_last, dl_tensor *buf1,
                  dl_tensor *buf2) {
  dl_tensor *inputs[IN_N] = {in->x, in->h0, in->c0, in->w_ih, in->w_hh, in->b_ih, in->b_hh};
  dl_node *node = dl_node_new(lstm ? &lstm_scan_type : &gru_scan_type, inputs, IN_N, lstm ? 2 : 1);
  if (!node) return -1;
  *(scan_ctx *)node->ctx = (scan_ctx){in->reverse, lstm, in->b_ih != NULL};
  dl_node_save(node, in->x);
  dl_node_save(node, in->h0);
  dl_node_save(node, in->w_ih);
  dl_node_save(node, in->w_hh);
  dl_node_save_output(node, hs, 0);
  dl_node_save(node, buf1);
  dl_node_save(node, buf2);
  if (lstm) dl_node_save(node, in->c0);
  if (in->b_ih) {
    dl_node_save(node, in->b_ih);
    dl_node_save(node, in->b_hh);
  }
  dl_node_set_output(node, hs, 0);
  if (lstm) dl_node_set_output(node, c_last, 1);
  dl_node_release(node);
  return 0;
}

/* ==== forward mode ==== */

/* the tangent of the input projection, from detached x and w */
static dl_tensor *projection_tangent(dl_ag_scope *p, dl_tensor *const *in, dl_tensor *x0, dl_tensor *w0, bool lstm) {
  dl_tensor *tx = K(dl_fw_tangent_or_zeros(in[IN_X])), *tw = K(dl_fw_tangent_or_zeros(in[IN_WIH]));
  dl_tensor *tb = NULL;
  if (in[IN_BIH]) {
    tb = K(dl_fw_tangent_or_zeros(in[IN_BIH]));
    if (lstm) tb = add(p, tb, K(dl_fw_tangent_or_zeros(in[IN_BHH])));
  }
  int64_t T = x0->shape[0], B = x0->shape[1], I = x0->shape[2], GH = w0->shape[0];
  dl_tensor *t2 = addmm(p, mm(p, mat(p, tx, T * B, I), tr(p, w0)), mat(p, x0, T * B, I), tr(p, tw));
  if (tb) t2 = add(p, t2, tb);
  return seq(p, t2, T, B, GH);
}

/* tangents of hs (and, for the LSTM, the last c); buf1 / buf2 as saved */
static int scan_jvp(dl_tensor *const *in, bool lstm, bool rev, dl_tensor *buf1, dl_tensor *buf2, dl_tensor *hs,
                    dl_tensor *c_last) {
  const int64_t T = hs->shape[0];
  dl_ag_scope q = {.n = 0}, *p = &q;
  dl_tensor **th = calloc((size_t)T, sizeof *th);
  if (!th) p->failed = true, dl_error_set("autograd: out of memory");
  dl_tensor *x0 = K(dl_tensor_detach(in[IN_X])), *h0 = K(dl_tensor_detach(in[IN_H0]));
  dl_tensor *wi0 = K(dl_tensor_detach(in[IN_WIH])), *wh0 = K(dl_tensor_detach(in[IN_WHH]));
  dl_tensor *hs0 = K(dl_tensor_detach(hs)), *wt = tr(p, wh0);
  dl_tensor *txp = p->failed ? NULL : projection_tangent(p, in, x0, wi0, lstm);
  dl_tensor *twt = tr(p, K(dl_fw_tangent_or_zeros(in[IN_WHH])));
  dl_tensor *th_prev = K(dl_fw_tangent_or_zeros(in[IN_H0]));
  dl_tensor *tc = lstm ? K(dl_fw_tangent_or_zeros(in[IN_C0])) : NULL, *c0 = lstm ? K(dl_tensor_detach(in[IN_C0])) : NULL;
  dl_tensor *tbh = !lstm && in[IN_BHH] ? K(dl_fw_tangent_or_zeros(in[IN_BHH])) : NULL;
  for (int64_t i = 0; i < T && !p->failed; i++) {
    int64_t t = step_at(i, T, rev), tp = step_at(i - 1, T, rev);
    dl_tensor *hp = i ? sel(p, hs0, tp) : h0;
    /* the tangent of the hidden projection */
    dl_tensor *tq = addmm(p, mm(p, th_prev, wt), hp, twt);
    if (lstm) {
      dl_tensor *cp = i ? sel(p, buf2, tp) : c0, *gt = sel(p, buf1, t), *c1 = sel(p, buf2, t);
      dl_tensor *tg = add(p, sel(p, txp, t), tq), *a = NULL, *b = NULL;
      if (!p->failed && dl_ag_lstm_cell_jvp(gt, cp, c1, tg, tc, &a, &b)) p->failed = true;
      th[t] = th_prev = K(a);
      tc = K(b);
    } else {
      if (tbh) tq = add(p, tq, tbh);
      dl_tensor *xt = sel(p, buf1, t), *qt = sel(p, buf2, t), *tx = sel(p, txp, t);
      th[t] = th_prev = p->failed ? NULL : K(dl_ag_gru_cell_jvp(xt, qt, hp, tx, tq, th_prev));
    }
  }
  dl_tensor *ths = stack(p, th, T);
  int rc = -1;
  if (!p->failed && !dl_fw_set(hs, dl_tensor_retain(ths)) && (!lstm || !dl_fw_set(c_last, dl_tensor_retain(tc))))
    rc = 0;
  free(th);
  dl_ag_scope_end(p);
  return rc;
}

/* ==== front-ends ==== */

int dl_ag_lstm_scan(const dl_rnn_scan_in *in, dl_tensor **hs, dl_tensor **c_last) {
  dl_tensor *cs = NULL, *gates = NULL;
  *c_last = NULL;
  if (dl_op_lstm_scan(in, hs, &cs, &gates)) return -1;
  dl_tensor *inputs[IN_N] = {in->x, in->h0, in->c0, in->w_ih, in->w_hh, in->b_ih, in->b_hh};
  dl_tensor *last = dl_tensor_select(cs, 0, in->reverse ? 0 : cs->shape[0] - 1);
  *c_last = last ? dl_tensor_clone(last) : NULL;
  dl_tensor_release(last);
  int rc = *c_last ? 0 : -1;
  if (!rc && dl_ag_needs_grad(inputs, IN_N)) rc = record(in, true, *hs, *c_last, gates, cs);
  if (!rc && dl_fw_any(inputs, IN_N)) rc = scan_jvp(inputs, true, in->reverse, gates, cs, *hs, *c_last);
  dl_tensor_release(cs);
  dl_tensor_release(gates);
  if (rc) {
    dl_tensor_release(*hs);
    dl_tensor_release(*c_last);
    *hs = *c_last = NULL;
  }
  return rc;
}

dl_tensor *dl_ag_gru_scan(const dl_rnn_scan_in *in) {
  dl_tensor *hs = NULL, *gi = NULL, *gh = NULL;
  if (dl_op_gru_scan(in, &hs, &gi, &gh)) return NULL;
  dl_tensor *inputs[IN_N] = {in->x, in->h0, NULL, in->w_ih, in->w_hh, in->b_ih, in->b_hh};
  int rc = 0;
  if (dl_ag_needs_grad(inputs, IN_N)) rc = record(in, false, hs, NULL, gi, gh);
  if (!rc && dl_fw_any(inputs, IN_N)) rc = scan_jvp(inputs, false, in->reverse, gi, gh, hs, NULL);
  dl_tensor_release(gi);
  dl_tensor_release(gh);
  if (rc) {
    dl_tensor_release(hs);
    return NULL;
  }
  return hs;
}
