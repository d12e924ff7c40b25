/* dl_ag_activation.h — differentiable activations (grad_activation.c).
 * Same arguments as the dl_op_* front-ends they wrap (src/ops/
 * dl_activation.h); they record a node when an input requires grad and carry
 * tangents in forward mode. First-order backward runs the fused kernels;
 * under create_graph the rules are composed of differentiable ops, so higher
 * derivatives work. */
#ifndef DL_AG_ACTIVATION_H
#define DL_AG_ACTIVATION_H

#include "../ops/dl_activation.h"

dl_tensor *dl_ag_act(dl_act op, dl_tensor *x, double p0, double p1);
dl_tensor *dl_ag_prelu(dl_tensor *x, dl_tensor *w);
dl_tensor *dl_ag_softmax(dl_tensor *x, int dim, bool log);

#endif
