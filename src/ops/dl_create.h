/* dl_create.h — tensors made from a formula: arange, linspace, eye. Each
 * returns a new tensor on dev (made on the CPU and copied once), version 0,
 * or NULL with an error naming the function. */
#ifndef DL_OPS_CREATE_H
#define DL_OPS_CREATE_H

#include "../dl_tensor.h"

/* start, start + step, ... up to stop excluded, as PyTorch's arange. When
 * all three numbers are integers and dt is int64, the values are exact. */
dl_tensor *dl_op_arange(dl_scalar start, dl_scalar stop, dl_scalar step, dl_dtype dt, dl_device dev);
/* n points from a to b, both included; PyTorch's symmetric form (the
 * second half counts back from b) */
dl_tensor *dl_op_linspace(double a, double b, int64_t n, dl_dtype dt, dl_device dev);
/* an n x m matrix with ones on the diagonal */
dl_tensor *dl_op_eye(int64_t n, int64_t m, dl_dtype dt, dl_device dev);

#endif
