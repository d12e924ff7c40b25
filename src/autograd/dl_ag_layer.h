/* dl_ag_layer.h — differentiable fused layer ops (grad_layer.c): the
 * dl_layer.h front-ends plus their backward and jvp rules. */
#ifndef DL_AG_LAYER_H
#define DL_AG_LAYER_H

#include "../ops/dl_layer.h"

dl_tensor *dl_ag_rbf(dl_tensor *x, dl_tensor *centers, dl_tensor *sigmas, bool bias_unit);
/* x itself (retained) when not training */
dl_tensor *dl_ag_dropout(dl_tensor *x, double p, bool training);
/* as dl_op_batch_norm; differentiable in x, weight and bias */
dl_tensor *dl_ag_batch_norm(dl_tensor *x, dl_tensor *weight, dl_tensor *bias, dl_tensor *running_mean,
                            dl_tensor *running_var, bool training, double momentum, double eps);

/* the recurrent cells (grad_rnn.c): *h and *c1 new references, 0 / -1 */
int dl_ag_lstm_cell(dl_tensor *gates, dl_tensor *c, dl_tensor **h, dl_tensor **c1);
dl_tensor *dl_ag_gru_cell(dl_tensor *gi, dl_tensor *gh, dl_tensor *h);
/* attention weights (grad_attention.c) */
dl_tensor *dl_ag_attn_softmax(dl_tensor *x, double scale, bool causal);

#endif
