/* grad_activation.c (being written) */
#include "dl_ag_nn.h"

#include <stddef.h>

const char *const dl_grad_activation_names[] = {NULL};
