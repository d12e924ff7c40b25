/* dl_ag_nn.h — Lua-visible names of the differentiable nn ops, one list per
 * family (grad_activation.c, grad_loss.c, grad_layer.c). */
#ifndef DL_AG_NN_H
#define DL_AG_NN_H

extern const char *const dl_grad_activation_names[];
extern const char *const dl_grad_loss_names[];
extern const char *const dl_grad_layer_names[];

#endif
