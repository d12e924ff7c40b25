/* host_train.c — the engine alone, from C, no Lua: a 2-32-1 MLP fitted to
 * y = sin(3 x1) + x2^2 with Adam, as a Lua script would write it
 * (forward through the differentiable dl_ag_* ops, dl_backward, the fused
 * Adam update with the engine's bias corrections). Prints the loss before
 * and after; exits 1 unless the loss fell below a tenth. Built and run by
 * `make test`:
 *   cc -Isrc scripts/host_train.c lib/libdlua.a $(pkg-config --libs dlua) */
#include <stdio.h>

#include "autograd/dl_ag_ewise.h"
#include "autograd/dl_ag_linalg.h"
#include "autograd/dl_ag_loss.h"
#include "autograd/dl_autograd.h"
#include "ops/dl_optim.h"
#include "ops/dl_random.h"

#define CHECK(x)                                                      \
  do {                                                                \
    if (!(x)) {                                                       \
      fprintf(stderr, "host_train: %s: %s\n", #x, dl_error_get());   \
      return 1;                                                       \
    }                                                                 \
  } while (0)

enum { N = 256, IN = 2, HID = 32, STEPS = 300 };

/* a parameter: uniform in [-bound, bound), requiring grad, and Adam's state */
typedef struct {
  dl_tensor *p, *s[3];
} param;

static int make_param(param *w, const int64_t *shape, int ndim, double bound) {
  w->p = dl_tensor_empty(shape, ndim, DL_FLOAT32, dl_device_cpu());
  if (!w->p || dl_tensor_uniform_(w->p, -bound, bound)) return -1;
  w->p->requires_grad = true;
  for (int k = 0; k < 3; k++) w->s[k] = k < 2 ? dl_tensor_zeros(shape, ndim, DL_FLOAT32, dl_device_cpu()) : NULL;
  return w->s[0] && w->s[1] ? 0 : -1;
}

/* loss of the MLP on (x, y); a new 0-d tensor with its graph */
static dl_tensor *forward(param *w, dl_tensor *x, dl_tensor *y) {
  dl_tensor *h = dl_ag_addmm(w[1].p, x, w[0].p, 1, 1); /* x W1 + b1 */
  dl_tensor *a = h ? dl_ag_relu(h) : NULL;
  dl_tensor *o = a ? dl_ag_addmm(w[3].p, a, w[2].p, 1, 1) : NULL;
  dl_tensor *loss = o ? dl_ag_mse_loss(o, y, DL_REDUCTION_MEAN) : NULL;
  dl_tensor_release(h);
  dl_tensor_release(a);
  dl_tensor_release(o);
  return loss;
}

int main(void) {
  dl_rng_manual_seed(0);
  int64_t xs[2] = {N, IN};
  dl_tensor *x = dl_tensor_empty(xs, 2, DL_FLOAT32, dl_device_cpu());
  CHECK(x && !dl_tensor_uniform_(x, -1, 1));
  /* the target, computed by the engine too */
  dl_tensor *x1 = dl_tensor_narrow(x, 1, 0, 1), *x2 = dl_tensor_narrow(x, 1, 1, 1);
  dl_tensor *s = dl_op_binary_ex(DL_BIN_MUL, dl_operand_tensor(x1), dl_operand_scalar(dl_scalar_f(3)), dl_scalar_i(1));
  dl_tensor *sn = s ? dl_op_unary(DL_UN_SIN, s) : NULL;
  dl_tensor *sq = dl_op_unary(DL_UN_SQUARE, x2);
  dl_tensor *y = sn && sq ? dl_op_binary(DL_BIN_ADD, sn, sq, dl_scalar_i(1)) : NULL;
  CHECK(y && y->ndim == 2 && y->shape[0] == N && y->shape[1] == 1);
  dl_tensor_release(x1), dl_tensor_release(x2), dl_tensor_release(s), dl_tensor_release(sn), dl_tensor_release(sq);

  param w[4];
  int64_t w1[2] = {IN, HID}, b1[1] = {HID}, w2[2] = {HID, 1}, b2[1] = {1};
  CHECK(!make_param(&w[0], w1, 2, 0.7) && !make_param(&w[1], b1, 1, 0.7));
  CHECK(!make_param(&w[2], w2, 2, 0.17) && !make_param(&w[3], b2, 1, 0.17));

  dl_optim_hp hp = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .decay = 1};
  double first = 0, last = 0;
  for (int step = 1; step <= STEPS; step++) {
    dl_tensor *loss = forward(w, x, y);
    CHECK(loss);
    last = dl_tensor_get_linear(loss, 0).f;
    if (step == 1) first = last;
    CHECK(!dl_backward(&loss, NULL, 1, false, false));
    dl_tensor_release(loss);
    dl_optim_hp h = hp;
    dl_optim_hp_for_step(DL_OPTIM_ADAM, &h, step, 0, 0, NULL);
    for (int k = 0; k < 4; k++) {
      CHECK(!dl_optim_step("Adam", DL_OPTIM_ADAM, w[k].p, w[k].p->grad, w[k].s, NULL, &h));
      dl_tensor_release(w[k].p->grad); /* zero_grad(set_to_none) */
      w[k].p->grad = NULL;
    }
  }
  printf("host_train: MLP %d-%d-1, Adam, %d steps: mse %.4f -> %.4f\n", IN, HID, STEPS, first, last);
  for (int k = 0; k < 4; k++) {
    dl_tensor_release(w[k].p);
    for (int j = 0; j < 3; j++) dl_tensor_release(w[k].s[j]);
  }
  dl_tensor_release(x);
  dl_tensor_release(y);
  return last < first / 10 ? 0 : 1;
}
