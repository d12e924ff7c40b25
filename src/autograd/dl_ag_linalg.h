/* dl_ag_linalg.h — differentiable matrix products (grad_linalg.c). Same
 * arguments as the dl_ front-ends of src/ops/dl_linalg.h; they record a
 * node when an input requires grad and carry tangents in forward mode. */
#ifndef DL_AG_LINALG_H
#define DL_AG_LINALG_H

#include "../ops/dl_linalg.h"

dl_tensor *dl_ag_matmul(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_ag_mm(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_ag_bmm(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_ag_mv(dl_tensor *a, dl_tensor *v);
dl_tensor *dl_ag_dot(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_ag_outer(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_ag_addmm(dl_tensor *input, dl_tensor *m1, dl_tensor *m2, double beta, double alpha);
/* The out= forms: as dl_op_matmul_out / dl_op_mm_out (out NULL: a new tensor);
 * an error when an operand requires grad (while recording) or carries a
 * tangent, as PyTorch's out= functions do. */
dl_tensor *dl_ag_matmul_out(dl_tensor *a, dl_tensor *b, dl_tensor *out);
dl_tensor *dl_ag_mm_out(dl_tensor *a, dl_tensor *b, dl_tensor *out);


#endif
