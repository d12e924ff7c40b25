/* dl_ag_layer.h — differentiable fused layer ops (grad_layer.c): the
 * dl_layer.h front-ends plus their backward and jvp rules. */
#ifndef DL_AG_LAYER_H
#define DL_AG_LAYER_H

#include "../ops/dl_layer.h"

dl_tensor *dl_ag_rbf(dl_tensor *x, dl_tensor *centers, dl_tensor *sigmas, bool bias_unit);
/* x itself (retained) when not training */
dl_tensor *dl_ag_dropout(dl_tensor *x, double p, bool training);
/* as dl_op_batch_norm_ex; differentiable in x, weight and bias. With an
 * epilogue, the ReLU's mask (and the pooling's maxima) are recomputed in
 * the backward: the values and gradients of the separate ops, which it
 * runs as when tangents are present (or, for the pooling, on a device
 * without its kernels) */
dl_tensor *dl_ag_batch_norm(dl_tensor *x, dl_tensor *weight, dl_tensor *bias, dl_tensor *running_mean,
                            dl_tensor *running_var, bool training, double momentum, double eps, dl_bn_epilogue ep);
/* batch norm's (and its epilogue's) training-mode gradients from g as
 * differentiable ops, what its node records under create_graph: x the
 * input ([N, C, L], or [N, C, H, W] with pooling), mean / invstd its batch
 * statistics (for the ReLU's mask and the pooling's maxima); gin[i] where
 * want[i] (x, w, b; new references). 0, or -1 with an error. */
int dl_ag_batch_norm_grads(dl_tensor *g, dl_tensor *x, dl_tensor *mean, dl_tensor *invstd, dl_tensor *w,
                           dl_tensor *b, double eps, dl_bn_epilogue ep, const bool *want, dl_tensor **gin);

/* layer norm over the trailing dims of x that hold N elements (w, b: N
 * elements each, optional; grad_layer_norm.c) */
dl_tensor *dl_ag_layer_norm(dl_tensor *x, int64_t N, dl_tensor *w, dl_tensor *b, double eps);

/* the recurrent cells (grad_rnn.c): *h and *c1 new references, 0 / -1 */
int dl_ag_lstm_cell(dl_tensor *gates, dl_tensor *c, dl_tensor **h, dl_tensor **c1);
dl_tensor *dl_ag_gru_cell(dl_tensor *gi, dl_tensor *gh, dl_tensor *h);
/* the cells' derivative rules written with the differentiable ops (so they
 * record under create_graph), for the whole-sequence ops too:
 * vjp: input gradients from output gradients (dh, dc1 / g);
 * jvp: output tangents from input tangents, on detached primals */
int dl_ag_lstm_cell_vjp(dl_tensor *gates, dl_tensor *c, dl_tensor *dh, dl_tensor *dc1, dl_tensor **dgates,
                        dl_tensor **dc);
int dl_ag_lstm_cell_jvp(dl_tensor *gates, dl_tensor *c, dl_tensor *c1, dl_tensor *tg, dl_tensor *tc, dl_tensor **th,
                        dl_tensor **tc1);
int dl_ag_gru_cell_vjp(dl_tensor *gi, dl_tensor *gh, dl_tensor *h, dl_tensor *g, dl_tensor **dgi, dl_tensor **dgh,
                       dl_tensor **dh);
dl_tensor *dl_ag_gru_cell_jvp(dl_tensor *gi, dl_tensor *gh, dl_tensor *h, dl_tensor *ti, dl_tensor *tq,
                              dl_tensor *th);
/* one layer, one direction, over a whole sequence (grad_rnn_scan.c; the
 * inputs as ops/dl_rnn_scan.h gives them): the LSTM gives every step's h
 * and the last c (*hs, *c_last new references, 0 / -1), the GRU every
 * step's h */
struct dl_rnn_scan_in;
int dl_ag_lstm_scan(const struct dl_rnn_scan_in *in, dl_tensor **hs, dl_tensor **c_last);
dl_tensor *dl_ag_gru_scan(const struct dl_rnn_scan_in *in);
/* attention weights (grad_attention.c) */
dl_tensor *dl_ag_attn_softmax(dl_tensor *x, double scale, bool causal);

#endif
