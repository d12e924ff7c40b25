/* cpu_rnn.h — the CPU's recurrent-cell kernels (cpu_rnn.c), entries of
 * its layer table (cpu_layer.c); contracts in src/ops/dl_layer.h. */
#ifndef DL_CPU_RNN_H
#define DL_CPU_RNN_H

#include "../dl_tensor.h"

int dl_cpu_lstm_cell(dl_tensor *h, dl_tensor *c1, const dl_tensor *gates, const dl_tensor *c);
int dl_cpu_lstm_cell_backward(dl_tensor *dgates, dl_tensor *dc, const dl_tensor *gh, const dl_tensor *gc1,
                              const dl_tensor *gates, const dl_tensor *c, const dl_tensor *c1);
int dl_cpu_gru_cell(dl_tensor *h1, const dl_tensor *gi, const dl_tensor *gh, const dl_tensor *h);
int dl_cpu_gru_cell_backward(dl_tensor *dgi, dl_tensor *dgh, dl_tensor *dh, const dl_tensor *g, const dl_tensor *gi,
                             const dl_tensor *gh, const dl_tensor *h);

#endif
