/* dl_rnn_scan.h — one LSTM or GRU layer, one direction, over a whole
 * sequence, as one op: the input projection of every step as one GEMM,
 * then per step the hidden projection (by a weight packed once where the
 * backend can) and the fused cell. Written step by step with separate ops,
 * the backward pays per step a small weight-gradient GEMM (K = batch) and
 * an add of it into the weight's gradient; here each weight gradient is
 * one GEMM over every step (K = steps x batch). Built on the backend's
 * kernels (linalg gemm, the layer family's cells), so every device that
 * has them runs it. Dims are 0-based; every tensor float32 or float64, of
 * one dtype, on one device.
 *
 * G = 4 (LSTM, gates i f g o) or 3 (GRU, r z n); with reverse the steps run
 * from T-1 down to 0; T >= 1. */
#ifndef DL_OPS_RNN_SCAN_H
#define DL_OPS_RNN_SCAN_H

#include "../dl_backend.h"

/* the inputs of one layer in one direction */
typedef struct dl_rnn_scan_in {
  dl_tensor *x;           /* [T, B, I] */
  dl_tensor *h0, *c0;     /* [B, H]; c0 for the LSTM only */
  dl_tensor *w_ih, *w_hh; /* [G*H, I], [G*H, H] */
  dl_tensor *b_ih, *b_hh; /* [G*H] each, both or neither (NULL) */
  bool reverse;
} dl_rnn_scan_in;

/* their gradients (new references; x's only when asked, the biases' when
 * there are biases) */
typedef struct {
  dl_tensor *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh;
} dl_rnn_scan_grads;

/* hs, cs [T, B, H]: every step's h and c; gates [T, B, 4H]: every step's
 * pre-activations (kept for the backward). 0 / -1. */
int dl_op_lstm_scan(const dl_rnn_scan_in *in, dl_tensor **hs, dl_tensor **cs, dl_tensor **gates);
/* From ghs [T, B, H] (gradient of every h) and gc [B, H] (of the last c). */
int dl_op_lstm_scan_backward(const dl_rnn_scan_in *in, dl_tensor *ghs, dl_tensor *gc, dl_tensor *gates,
                             dl_tensor *hs, dl_tensor *cs, bool want_dx, dl_rnn_scan_grads *out);

/* hs [T, B, H]; gi, gh [T, B, 3H]: every step's x W_ih^T + b_ih and
 * h W_hh^T + b_hh (kept for the backward). */
int dl_op_gru_scan(const dl_rnn_scan_in *in, dl_tensor **hs, dl_tensor **gi, dl_tensor **gh);
/* From ghs [T, B, H]. */
int dl_op_gru_scan_backward(const dl_rnn_scan_in *in, dl_tensor *ghs, dl_tensor *gi, dl_tensor *gh, dl_tensor *hs,
                            bool want_dx, dl_rnn_scan_grads *out);

void dl_rnn_scan_grads_release(dl_rnn_scan_grads *g);

#endif
