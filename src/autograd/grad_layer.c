/* grad_layer.c (being written) */
#include "dl_ag_nn.h"

#include <stddef.h>

const char *const dl_grad_layer_names[] = {NULL};
