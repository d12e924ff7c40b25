/* dl_rnn_scan.c — the whole-sequence LSTM and GRU layer ops (see
 * dl_rnn_scan.h). Per step: one GEMM into that step's slice of a
 * [T, B, G*H] buffer and one fused cell kernel writing that step's slice
 * of the outputs; the step slices are headers on the stack over the
 * buffers, so a step allocates nothing. Backward runs the steps in
 * reverse with the cells' backward kernels, adds each step's hidden-state
 * gradient into the previous step's slice with a GEMM, and forms the
 * weight, bias and input gradients once from every step's gate gradients. */
#include "dl_rnn_scan.h"

#include "dl_ewise.h"
#include "dl_layer.h"
#include "dl_linalg.h"
#include "dl_reduce.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

/* ---- argument checks ---- */

static int shape_fail(const char *fn, const char *what, const dl_tensor *t, const char *want) {
  char b[64];
  dl_error_set("%s: %s has shape %s, expected %s", fn, what, dl_tensor_shape_str(t, b, sizeof b), want);
  return -1;
}

/* t is [r, c] (r < 0: [c]) with x's dtype and device */
static int check_mat(const char *fn, const char *what, const dl_tensor *t, const dl_tensor *x, int64_t r, int64_t c) {
  if (dl_check_same_device(fn, x, t)) return -1;
  if (t->dtype != x->dtype) {
    dl_error_set("%s: %s is %s, expected %s", fn, what, dl_dtype_name(t->dtype), dl_dtype_name(x->dtype));
    return -1;
  }
  char want[64];
  snprintf(want, sizeof want, r < 0 ? "[%" PRId64 "]" : "[%" PRId64 ", %" PRId64 "]", r < 0 ? c : r, c);
  if (r < 0 ? t->ndim == 1 && t->shape[0] == c : t->ndim == 2 && t->shape[0] == r && t->shape[1] == c) return 0;
  return shape_fail(fn, what, t, want);
}

/* t is [T, B, c] with x's dtype (a gradient or a saved buffer) */
static int check_seq(const char *fn, const char *what, const dl_tensor *t, const dl_tensor *x, int64_t c) {
  if (dl_check_same_device(fn, x, t)) return -1;
  if (t->ndim == 3 && t->shape[0] == x->shape[0] && t->shape[1] == x->shape[1] && t->shape[2] == c &&
      t->dtype == x->dtype)
    return 0;
  char want[64];
  snprintf(want, sizeof want, "[%" PRId64 ", %" PRId64 ", %" PRId64 "] (%s)", x->shape[0], x->shape[1], c,
           dl_dtype_name(x->dtype));
  return shape_fail(fn, what, t, want);
}

typedef struct {
  int64_t T, B, I, H, GH;
} dims;

static int check_in(const char *fn, const dl_rnn_scan_in *in, int G, dims *d) {
  const dl_tensor *x = in->x;
  if (!dl_dtype_is_float(x->dtype)) {
    dl_error_set("%s: expected a float32 or float64 input, got %s", fn, dl_dtype_name(x->dtype));
    return -1;
  }
  if (x->ndim != 3 || x->shape[0] < 1) return shape_fail(fn, "the input", x, "[T >= 1, B, I]");
  if (x->shape[2] < 1) return shape_fail(fn, "the input", x, "[T >= 1, B, I >= 1]");
  if (in->h0->ndim != 2 || in->h0->shape[1] < 1) return shape_fail(fn, "the initial hidden state", in->h0, "[B, H >= 1]");
  d->T = x->shape[0], d->B = x->shape[1], d->I = x->shape[2], d->H = in->h0->shape[1], d->GH = G * d->H;
  if (d->T * d->B * (d->GH > d->I ? d->GH : d->I) > INT_MAX || d->GH * d->H > INT_MAX) {
    dl_error_set("%s: sequence too large for BLAS (%" PRId64 " steps x %" PRId64 " rows)", fn, d->T, d->B);
    return -1;
  }
  if (check_mat(fn, "the initial hidden state", in->h0, x, d->B, d->H) ||
      (G == 4 && check_mat(fn, "the initial cell state", in->c0, x, d->B, d->H)) ||
      check_mat(fn, "the input weight", in->w_ih, x, d->GH, d->I) ||
      check_mat(fn, "the hidden weight", in->w_hh, x, d->GH, d->H))
    return -1;
  if (!in->b_ih != !in->b_hh) {
    dl_error_set("%s: give both biases or neither", fn);
    return -1;
  }
  if (in->b_ih && (check_mat(fn, "the input bias", in->b_ih, x, -1, d->GH) ||
                   check_mat(fn, "the hidden bias", in->b_hh, x, -1, d->GH)))
    return -1;
  return 0;
}

/* ---- step slices and products ---- */

/* rows x cols header over the contiguous block of base that starts `row`
 * rows of `cols` in: the kernels read storage, offset, dtype and shape */
static dl_tensor block(const dl_tensor *base, int64_t row, int64_t rows, int64_t cols) {
  dl_tensor v = *base;
  v.refcount = 1;
  v.offset = base->offset + row * cols;
  v.ndim = 2;
  v.shape[0] = rows, v.shape[1] = cols;
  v.stride[0] = cols, v.stride[1] = 1;
  v.numel = rows * cols;
  v.requires_grad = v.retains_grad = false;
  v.grad = NULL, v.grad_fn = NULL, v.tangent = NULL, v.grad_hook = NULL, v.base = NULL;
  return v;
}

/* row-major c [M, N] = op(a) op(b) + beta c, with op(a) [M, K], op(b)
 * [K, N]; lda / ldb the row lengths of a and b as stored. Column-major
 * BLAS sees c^T = op(b)^T op(a)^T. */
static int gemm(const struct dl_linalg_kernels *k, const dl_tensor *c, int64_t M, int64_t N, int64_t K,
                const dl_tensor *a, bool ta, int64_t lda, const dl_tensor *b, bool tb, int64_t ldb, double beta) {
  return k->gemm(c->dtype, tb, ta, N, M, K, 1.0, dl_tensor_data(b), ldb, dl_tensor_data(a), lda, beta,
                 dl_tensor_data(c), N);
}

/* out [T, B, GH] = x [T, B, I] @ w^T + bias (bias [GH] or NULL) */
static int project(const struct dl_linalg_kernels *k, dl_tensor *out, const dl_tensor *x, const dl_tensor *w,
                   const dl_tensor *bias, const dims *d) {
  int64_t rows = d->T * d->B;
  if (bias && k->gemm_bias)
    return k->gemm_bias(x->dtype, true, false, d->GH, rows, d->I, 1.0, dl_tensor_data(w), d->I, dl_tensor_data(x),
                        d->I, 1.0, dl_tensor_data(bias), 1, dl_tensor_data(out), d->GH);
  if (bias && dl_tensor_copy_(out, bias)) return DL_KERNEL_FAILED;
  return gemm(k, out, rows, d->GH, d->I, x, false, d->I, w, true, d->I, bias ? 1 : 0);
}

/* The hidden weight's product at every step, c [M, N] = a [M, K] @ op(w)
 * + beta c (op(w) = w^T when tw): the weight is packed once for all the
 * steps where the backend can (pack_a), else each step is a plain GEMM. */
typedef struct {
  const struct dl_linalg_kernels *k;
  const dl_tensor *w;
  bool tw;
  int64_t N, K;
  void *pack;
} weight_product;

static weight_product weight_init(const struct dl_linalg_kernels *k, const dl_tensor *w, bool tw, int64_t N,
                                  int64_t K) {
  weight_product p = {k, w, tw, N, K, NULL};
  /* row-major a @ op(w) is column-major op(w)^T a^T: w is BLAS's A */
  if (k->pack_a) p.pack = k->pack_a(w->dtype, tw, N, K, dl_tensor_data(w), w->shape[1]);
  return p;
}

static int weight_apply(const weight_product *p, const dl_tensor *c, int64_t M, const dl_tensor *a, double beta) {
  if (p->pack) return p->k->gemm_packed(p->pack, false, M, dl_tensor_data(a), p->K, beta, dl_tensor_data(c), p->N);
  return gemm(p->k, c, M, p->N, p->K, a, false, p->K, p->w, p->tw, p->w->shape[1], beta);
}

static void weight_end(weight_product *p) {
  if (p->pack) p->k->pack_free(p->pack);
  p->pack = NULL;
}

/* the step processed s-th (s - 1: the one before it) */
static inline int64_t step_at(int64_t s, int64_t T, bool reverse) { return reverse ? T - 1 - s : s; }

typedef struct {
  const struct dl_layer_kernels *layer;
  const struct dl_linalg_kernels *linalg;
} scan_kernels;

static int kernels(const char *fn, const dl_tensor *t, scan_kernels *k) {
  dl_device dev = dl_tensor_device(t);
  k->layer = DL_KERNELS(fn, dev, layer);
  k->linalg = k->layer ? DL_KERNELS(fn, dev, linalg) : NULL;
  return k->linalg ? 0 : -1;
}

static void release_all(dl_tensor **ts, int n) {
  for (int i = 0; i < n; i++) dl_tensor_release(ts[i]);
}

void dl_rnn_scan_grads_release(dl_rnn_scan_grads *g) {
  dl_tensor *all[7] = {g->x, g->h0, g->c0, g->w_ih, g->w_hh, g->b_ih, g->b_hh};
  release_all(all, 7);
  *g = (dl_rnn_scan_grads){NULL};
}

static dl_tensor *new_seq(const dims *d, int64_t cols, const dl_tensor *like) {
  int64_t shape[3] = {d->T, d->B, cols};
  return dl_tensor_empty(shape, 3, like->dtype, dl_tensor_device(like));
}

static dl_tensor *new_mat(int64_t r, int64_t c, const dl_tensor *like) {
  int64_t shape[2] = {r, c};
  return dl_tensor_empty(shape, 2, like->dtype, dl_tensor_device(like));
}

/* c = in with every tensor contiguous (new references; NULL ones stay
 * NULL); false when a copy failed (c is still safe to release) */
static bool contig_make(const dl_rnn_scan_in *in, dl_rnn_scan_in *c) {
  *c = *in;
  dl_tensor **t[7] = {&c->x, &c->h0, &c->c0, &c->w_ih, &c->w_hh, &c->b_ih, &c->b_hh};
  bool ok = true;
  for (int i = 0; i < 7; i++) {
    dl_tensor *src = *t[i];
    *t[i] = src ? dl_tensor_contiguous(src) : NULL;
    if (src && !*t[i]) ok = false;
  }
  return ok;
}

static void contig_release(dl_rnn_scan_in *c) {
  dl_tensor *all[7] = {c->x, c->h0, c->c0, c->w_ih, c->w_hh, c->b_ih, c->b_hh};
  release_all(all, 7);
}

/* dw [GH, H] = sum over steps of d[t]^T h_prev(t): one GEMM over every
 * step but the first processed (whose previous h is h0, not in hs), then
 * that step's term. d [T, B, GH], hs [T, B, H]. */
static int weight_grad(const struct dl_linalg_kernels *k, dl_tensor *dw, const dl_tensor *d, const dl_tensor *hs,
                       const dl_tensor *h0, const dims *z, bool reverse) {
  int64_t T = z->T, B = z->B, GH = z->GH, H = z->H;
  int rc = DL_KERNEL_OK;
  double beta = 0;
  if (T > 1) {
    /* forward: d[1..T-1] with hs[0..T-2]; reverse: d[0..T-2] with hs[1..T-1] */
    dl_tensor dv = block(d, reverse ? 0 : B, (T - 1) * B, GH), hv = block(hs, reverse ? B : 0, (T - 1) * B, H);
    rc = gemm(k, dw, GH, H, (T - 1) * B, &dv, true, GH, &hv, false, H, 0);
    beta = 1;
  }
  dl_tensor d0 = block(d, step_at(0, T, reverse) * B, B, GH);
  if (rc == DL_KERNEL_OK) rc = gemm(k, dw, GH, H, B, &d0, true, GH, h0, false, H, beta);
  return rc;
}

/* From d [T, B, GH], the gradient of the input projection x w_ih^T + b:
 * w_ih's (d^T x), the bias's (d summed over steps and rows: into *db) and,
 * asked, x's (d w_ih). -2: an op failed (its error set). */
static int input_grads(const struct dl_linalg_kernels *k, const dl_rnn_scan_in *c, const dl_tensor *d, const dims *z,
                       bool want_dx, dl_rnn_scan_grads *out, dl_tensor **db) {
  int64_t rows = z->T * z->B;
  if (!(out->w_ih = new_mat(z->GH, z->I, d))) return -2;
  int rc = gemm(k, out->w_ih, z->GH, z->I, rows, d, true, z->GH, c->x, false, z->I, 0);
  if (rc == DL_KERNEL_OK && c->b_ih) {
    int sum_dims[2] = {0, 1};
    if (!(*db = dl_op_sum(d, sum_dims, 2, false))) return -2;
  }
  if (rc == DL_KERNEL_OK && want_dx) {
    if (!(out->x = new_seq(z, z->I, d))) return -2;
    rc = gemm(k, out->x, rows, z->I, z->GH, d, false, z->GH, c->w_ih, false, z->I, 0);
  }
  return rc;
}

/* 0 when rc says the kernels ran; else -1 with fn's error (rc -2: an op's
 * error is already set) */
static int finish(const char *fn, int rc) { return rc == DL_KERNEL_OK ? 0 : rc == -2 ? -1 : dl_kernel_fail(fn); }

/* ---- LSTM ---- */

int dl_op_lstm_scan(const dl_rnn_scan_in *in, dl_tensor **hs, dl_tensor **cs, dl_tensor **gates) {
  static const char fn[] = "lstm_scan";
  *hs = *cs = *gates = NULL;
  dims z;
  scan_kernels k;
  if (check_in(fn, in, 4, &z) || kernels(fn, in->x, &k)) return -1;
  const int64_t B = z.B, H = z.H, T = z.T;
  dl_rnn_scan_in c;
  dl_tensor *o[3] = {NULL, NULL, NULL}, *bias = NULL;
  int rc = -2;
  if (!contig_make(in, &c)) goto done;
  /* the LSTM's two biases act as one */
  if (c.b_ih && !(bias = dl_op_binary(DL_BIN_ADD, c.b_ih, c.b_hh, dl_scalar_i(1)))) goto done;
  if (!(o[0] = new_seq(&z, H, c.x)) || !(o[1] = new_seq(&z, H, c.x)) || !(o[2] = new_seq(&z, 4 * H, c.x))) goto done;
  rc = project(k.linalg, o[2], c.x, c.w_ih, bias, &z);
  weight_product wp = weight_init(k.linalg, c.w_hh, true, 4 * H, H);
  for (int64_t s = 0; s < T && rc == DL_KERNEL_OK; s++) {
    int64_t t = step_at(s, T, in->reverse), tp = step_at(s - 1, T, in->reverse);
    dl_tensor g = block(o[2], t * B, B, 4 * H), h = block(o[0], t * B, B, H), cc = block(o[1], t * B, B, H);
    dl_tensor hp = s ? block(o[0], tp * B, B, H) : block(c.h0, 0, B, H);
    dl_tensor cp = s ? block(o[1], tp * B, B, H) : block(c.c0, 0, B, H);
    rc = weight_apply(&wp, &g, B, &hp, 1);
    if (rc == DL_KERNEL_OK) rc = k.layer->lstm_cell(&h, &cc, &g, &cp);
  }
  weight_end(&wp);
done:
  contig_release(&c);
  dl_tensor_release(bias);
  if (finish(fn, rc)) {
    release_all(o, 3);
    return -1;
  }
  *hs = o[0], *cs = o[1], *gates = o[2];
  return 0;
}

int dl_op_lstm_scan_backward(const dl_rnn_scan_in *in, dl_tensor *ghs, dl_tensor *gc, dl_tensor *gates,
                             dl_tensor *hs, dl_tensor *cs, bool want_dx, dl_rnn_scan_grads *out) {
  static const char fn[] = "lstm_scan_backward";
  *out = (dl_rnn_scan_grads){NULL};
  dims z;
  scan_kernels k;
  if (check_in(fn, in, 4, &z) || check_seq(fn, "the output gradient", ghs, in->x, z.H) ||
      check_seq(fn, "the saved gates", gates, in->x, 4 * z.H) || check_seq(fn, "the saved h", hs, in->x, z.H) ||
      check_seq(fn, "the saved c", cs, in->x, z.H) || check_mat(fn, "the last c's gradient", gc, in->x, z.B, z.H) ||
      kernels(fn, in->x, &k))
    return -1;
  const int64_t B = z.B, H = z.H, T = z.T;
  dl_rnn_scan_in c;
  /* d: every step's gate gradient; dh: every step's h gradient, what later
   * steps add to it included; dc / dc_next: the cell-state gradient the
   * step being run receives and the one it passes back */
  dl_tensor *sv[3] = {dl_tensor_contiguous(gates), dl_tensor_contiguous(hs), dl_tensor_contiguous(cs)};
  dl_tensor *d = NULL, *dh = NULL, *dc = NULL, *dc_next = NULL, *db = NULL;
  int rc = -2;
  if (!contig_make(in, &c) || !sv[0] || !sv[1] || !sv[2]) goto done;
  if (!(d = new_seq(&z, 4 * H, c.x)) || !(dh = dl_tensor_clone(ghs)) || !(dc = dl_tensor_clone(gc)) ||
      !(dc_next = new_mat(B, H, c.x)) || !(out->h0 = new_mat(B, H, c.x)) || !(out->w_hh = new_mat(4 * H, H, c.x)))
    goto done;
  rc = DL_KERNEL_OK;
  weight_product wp = weight_init(k.linalg, c.w_hh, false, H, 4 * H);
  for (int64_t s = T - 1; s >= 0 && rc == DL_KERNEL_OK; s--) {
    int64_t t = step_at(s, T, in->reverse), tp = step_at(s - 1, T, in->reverse);
    dl_tensor dg = block(d, t * B, B, 4 * H), g = block(sv[0], t * B, B, 4 * H);
    dl_tensor gh = block(dh, t * B, B, H), c1 = block(sv[2], t * B, B, H);
    dl_tensor cp = s ? block(sv[2], tp * B, B, H) : block(c.c0, 0, B, H);
    dl_tensor gc1 = block(dc, 0, B, H), dcp = block(dc_next, 0, B, H);
    rc = k.layer->lstm_cell_backward(&dg, &dcp, &gh, &gc1, &g, &cp, &c1);
    dl_tensor *swap = dc;
    dc = dc_next, dc_next = swap;
    /* the previous step's h gradient gains dg W_hh (h0's is only that) */
    dl_tensor dhp = s ? block(dh, tp * B, B, H) : block(out->h0, 0, B, H);
    if (rc == DL_KERNEL_OK) rc = weight_apply(&wp, &dhp, B, &dg, s ? 1 : 0);
  }
  weight_end(&wp);
  if (rc == DL_KERNEL_OK) rc = weight_grad(k.linalg, out->w_hh, d, sv[1], c.h0, &z, in->reverse);
  if (rc == DL_KERNEL_OK) rc = input_grads(k.linalg, &c, d, &z, want_dx, out, &db);
  /* both biases get the gate gradients' sum, each its own tensor */
  if (rc == DL_KERNEL_OK && db && !(out->b_hh = dl_tensor_clone(db))) rc = -2;
  out->b_ih = db, db = NULL;
  out->c0 = dc, dc = NULL;
done:
  contig_release(&c);
  release_all(sv, 3);
  dl_tensor_release(d);
  dl_tensor_release(dh);
  dl_tensor_release(dc);
  dl_tensor_release(dc_next);
  if (finish(fn, rc)) {
    dl_rnn_scan_grads_release(out);
    return -1;
  }
  return 0;
}

/* ---- GRU ---- */

int dl_op_gru_scan(const dl_rnn_scan_in *in, dl_tensor **hs, dl_tensor **gi, dl_tensor **gh) {
  static const char fn[] = "gru_scan";
  *hs = *gi = *gh = NULL;
  dims z;
  scan_kernels k;
  if (check_in(fn, in, 3, &z) || kernels(fn, in->x, &k)) return -1;
  const int64_t B = z.B, H = z.H, T = z.T;
  dl_rnn_scan_in c;
  dl_tensor *o[3] = {NULL, NULL, NULL};
  int rc = -2;
  if (!contig_make(in, &c)) goto done;
  if (!(o[0] = new_seq(&z, H, c.x)) || !(o[1] = new_seq(&z, 3 * H, c.x)) || !(o[2] = new_seq(&z, 3 * H, c.x)))
    goto done;
  /* every step's gh starts as b_hh, the step's GEMM adds h W_hh^T to it */
  if (c.b_hh && dl_tensor_copy_(o[2], c.b_hh)) goto done;
  rc = project(k.linalg, o[1], c.x, c.w_ih, c.b_ih, &z);
  weight_product wp = weight_init(k.linalg, c.w_hh, true, 3 * H, H);
  for (int64_t s = 0; s < T && rc == DL_KERNEL_OK; s++) {
    int64_t t = step_at(s, T, in->reverse), tp = step_at(s - 1, T, in->reverse);
    dl_tensor q = block(o[2], t * B, B, 3 * H), x = block(o[1], t * B, B, 3 * H), h = block(o[0], t * B, B, H);
    dl_tensor hp = s ? block(o[0], tp * B, B, H) : block(c.h0, 0, B, H);
    rc = weight_apply(&wp, &q, B, &hp, c.b_hh ? 1 : 0);
    if (rc == DL_KERNEL_OK) rc = k.layer->gru_cell(&h, &x, &q, &hp);
  }
  weight_end(&wp);
done:
  contig_release(&c);
  if (finish(fn, rc)) {
    release_all(o, 3);
    return -1;
  }
  *hs = o[0], *gi = o[1], *gh = o[2];
  return 0;
}

int dl_op_gru_scan_backward(const dl_rnn_scan_in *in, dl_tensor *ghs, dl_tensor *gi, dl_tensor *gh, dl_tensor *hs,
                            bool want_dx, dl_rnn_scan_grads *out) {
  static const char fn[] = "gru_scan_backward";
  *out = (dl_rnn_scan_grads){NULL};
  dims z;
  scan_kernels k;
  if (check_in(fn, in, 3, &z) || check_seq(fn, "the output gradient", ghs, in->x, z.H) ||
      check_seq(fn, "the saved input gates", gi, in->x, 3 * z.H) ||
      check_seq(fn, "the saved hidden gates", gh, in->x, 3 * z.H) || check_seq(fn, "the saved h", hs, in->x, z.H) ||
      kernels(fn, in->x, &k))
    return -1;
  const int64_t B = z.B, H = z.H, T = z.T;
  dl_rnn_scan_in c;
  /* dgi, dgh: every step's gradients of gi and gh; dh: every step's h
   * gradient; dd: a step's direct part of the previous h's gradient (z g) */
  dl_tensor *sv[3] = {dl_tensor_contiguous(gi), dl_tensor_contiguous(gh), dl_tensor_contiguous(hs)};
  dl_tensor *dgi = NULL, *dgh = NULL, *dh = NULL, *dd = NULL;
  int rc = -2;
  if (!contig_make(in, &c) || !sv[0] || !sv[1] || !sv[2]) goto done;
  if (!(dgi = new_seq(&z, 3 * H, c.x)) || !(dgh = new_seq(&z, 3 * H, c.x)) || !(dh = dl_tensor_clone(ghs)) ||
      !(dd = new_mat(B, H, c.x)) || !(out->h0 = new_mat(B, H, c.x)) || !(out->w_hh = new_mat(3 * H, H, c.x)))
    goto done;
  rc = DL_KERNEL_OK;
  weight_product wp = weight_init(k.linalg, c.w_hh, false, H, 3 * H);
  for (int64_t s = T - 1; s >= 0 && rc == DL_KERNEL_OK; s--) {
    int64_t t = step_at(s, T, in->reverse), tp = step_at(s - 1, T, in->reverse);
    dl_tensor da = block(dgi, t * B, B, 3 * H), dq = block(dgh, t * B, B, 3 * H);
    dl_tensor g = block(dh, t * B, B, H), x = block(sv[0], t * B, B, 3 * H), q = block(sv[1], t * B, B, 3 * H);
    dl_tensor hp = s ? block(sv[2], tp * B, B, H) : block(c.h0, 0, B, H);
    /* the direct part goes straight to h0's gradient at the first step;
     * elsewhere to dd, added to the previous step's gradient below */
    dl_tensor direct = s ? block(dd, 0, B, H) : block(out->h0, 0, B, H);
    rc = k.layer->gru_cell_backward(&da, &dq, &direct, &g, &x, &q, &hp);
    dl_tensor dhp = s ? block(dh, tp * B, B, H) : direct;
    if (rc == DL_KERNEL_OK) rc = weight_apply(&wp, &dhp, B, &dq, 1);
    if (rc == DL_KERNEL_OK && s) {
      dl_tensor *prev = dl_tensor_select(dh, 0, tp);
      rc = prev && !dl_op_binary_(DL_BIN_ADD, prev, dl_operand_tensor(dd), dl_scalar_i(1)) ? DL_KERNEL_OK : -2;
      dl_tensor_release(prev);
    }
  }
  weight_end(&wp);
  if (rc == DL_KERNEL_OK) rc = weight_grad(k.linalg, out->w_hh, dgh, sv[2], c.h0, &z, in->reverse);
  if (rc == DL_KERNEL_OK) rc = input_grads(k.linalg, &c, dgi, &z, want_dx, out, &out->b_ih);
  if (rc == DL_KERNEL_OK && c.b_hh) {
    int sum_dims[2] = {0, 1};
    if (!(out->b_hh = dl_op_sum(dgh, sum_dims, 2, false))) rc = -2;
  }
done:
  contig_release(&c);
  release_all(sv, 3);
  dl_tensor_release(dgi);
  dl_tensor_release(dgh);
  dl_tensor_release(dh);
  dl_tensor_release(dd);
  if (finish(fn, rc)) {
    dl_rnn_scan_grads_release(out);
    return -1;
  }
  return 0;
}
