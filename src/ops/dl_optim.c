/* dl_optim.c — front-end of the fused optimiser updates: checks the
 * parameter, its gradient and state, then calls the backend's kernel. */
#include "dl_optim.h"

#include <math.h>

unsigned dl_optim_state_mask(dl_optim_algo algo, const dl_optim_hp *hp) {
  switch (algo) {
  case DL_OPTIM_SGD: return hp->momentum != 0 ? 1u : 0u;
  case DL_OPTIM_ADAGRAD: return 1u;
  case DL_OPTIM_RMSPROP: return 1u | (hp->centered ? 2u : 0u) | (hp->momentum > 0 ? 4u : 0u);
  case DL_OPTIM_ADAM: return 3u | (hp->amsgrad ? 4u : 0u);
  case DL_OPTIM_ADAMAX: return 3u;
  case DL_OPTIM_NADAM: return 3u;
  case DL_OPTIM_ADADELTA: return 3u;
  default: return 0u;
  }
}

static int check_like(const char *fn, const char *what, const dl_tensor *p, const dl_tensor *t) {
  char b1[128], b2[128];
  if (!dl_tensor_same_shape(p, t)) {
    dl_error_set("%s: %s has shape %s but the parameter has shape %s", fn, what,
                 dl_tensor_shape_str(t, b1, sizeof b1), dl_tensor_shape_str(p, b2, sizeof b2));
    return -1;
  }
  if (t->dtype != p->dtype) {
    dl_error_set("%s: %s has dtype %s but the parameter has dtype %s", fn, what, dl_dtype_name(t->dtype),
                 dl_dtype_name(p->dtype));
    return -1;
  }
  return dl_check_same_device(fn, p, t);
}

static const char *const default_slot_names[3] = {"state tensor 1", "state tensor 2", "state tensor 3"};

int dl_optim_check(const char *fn, dl_optim_algo algo, dl_optim_call *c, const char *const names[3]) {
  if (!names) names = default_slot_names;
  if ((unsigned)algo >= DL_OPTIM_NALGOS) {
    dl_error_set("%s: unknown optimiser", fn);
    return -1;
  }
  const dl_tensor *param = c->param;
  if (param->dtype != DL_FLOAT32 && param->dtype != DL_FLOAT64) {
    dl_error_set("%s: parameters must be float32 or float64, got %s", fn, dl_dtype_name(param->dtype));
    return -1;
  }
  if (check_like(fn, "grad", param, c->grad)) return -1;
  unsigned mask = dl_optim_state_mask(algo, c->hp);
  for (int i = 0; i < 3; i++) {
    if (!(mask & (1u << i))) {
      c->s[i] = NULL;
      continue;
    }
    if (!c->s[i]) {
      dl_error_set("%s: missing %s", fn, names[i]);
      return -1;
    }
    if (check_like(fn, names[i], param, c->s[i])) return -1;
    if (!dl_tensor_is_contiguous(c->s[i])) {
      dl_error_set("%s: %s is not contiguous", fn, names[i]);
      return -1;
    }
  }
  const struct dl_optim_kernels *k = dl_backend_of(param)->optim;
  if (!k || !k->step[algo]) {
    dl_error_set("%s: not supported on this device", fn);
    return -1;
  }
  return 0;
}

static void bump_state(const dl_optim_call *c) {
  for (int i = 0; i < 3; i++)
    if (c->s[i]) dl_tensor_bump_version(c->s[i]);
}

/* one checked call; a non-contiguous gradient or parameter goes through a
 * contiguous copy */
static int run_one(const char *fn, dl_optim_algo algo, dl_optim_call c) {
  dl_tensor *param = c.param;
  if (param->numel == 0) return 0;
  dl_tensor *gc = NULL, *pc = NULL;
  if (!dl_tensor_is_contiguous(c.grad)) {
    if (!(gc = dl_tensor_contiguous(c.grad))) return -1;
    c.grad = gc;
  }
  if (!dl_tensor_is_contiguous(param)) {
    if (!(pc = dl_tensor_contiguous(param))) {
      dl_tensor_release(gc);
      return -1;
    }
    c.param = pc;
  }
  int rc = dl_kernel_status(fn, dl_backend_of(param)->optim->step[algo](&c, 1));
  if (pc) {
    if (dl_tensor_copy_(param, pc)) rc = -1;
    dl_tensor_release(pc);
  } else {
    dl_tensor_bump_version(param);
  }
  dl_tensor_release(gc);
  bump_state(&c);
  return rc;
}

/* whether two of the calls update one storage (tied or overlapping
 * parameters): their updates must run one after the other, in order */
static bool shares_storage(const dl_optim_call *calls, int n) {
  for (int i = 1; i < n; i++)
    for (int j = 0; j < i; j++)
      if (calls[i].param->storage == calls[j].param->storage) return true;
  return false;
}

int dl_optim_step_checked(const char *fn, dl_optim_algo algo, dl_optim_call *calls, int n) {
  int batch = 0;
  if (!shares_storage(calls, n)) { /* the batched ones first: no order to keep */
    const dl_backend *be = n > 0 ? dl_backend_of(calls[0].param) : NULL;
    for (int j = 0; j < n; j++) {
      const dl_optim_call *c = &calls[j];
      if (c->param->numel > 0 && dl_backend_of(c->param) == be && dl_tensor_is_contiguous(c->param) &&
          dl_tensor_is_contiguous(c->grad)) {
        dl_optim_call t = calls[batch];
        calls[batch++] = *c;
        calls[j] = t;
      }
    }
    if (batch > 0) {
      int rc = dl_kernel_status(fn, be->optim->step[algo](calls, batch));
      for (int j = 0; j < batch; j++) {
        dl_tensor_bump_version(calls[j].param);
        bump_state(&calls[j]);
      }
      if (rc) return rc;
    }
  }
  for (int j = batch; j < n; j++)
    if (run_one(fn, algo, calls[j])) return -1;
  return 0;
}

int dl_optim_step(const char *fn, dl_optim_algo algo, dl_tensor *param, dl_tensor *grad, dl_tensor *const s[3],
                  const char *const names[3], const dl_optim_hp *hp) {
  dl_optim_call c = {.param = param, .grad = grad, .s = {s[0], s[1], s[2]}, .hp = hp};
  return dl_optim_check(fn, algo, &c, names) ? -1 : dl_optim_step_checked(fn, algo, &c, 1);
}

void dl_optim_hp_for_step(dl_optim_algo algo, dl_optim_hp *hp, double step, double lr_decay, double momentum_decay,
                          double *mu_product) {
  double lr = hp->lr;
  switch (algo) {
  case DL_OPTIM_ADAGRAD: hp->clr = lr / (1 + (step - 1) * lr_decay); break;
  case DL_OPTIM_ADAM:
    hp->clr = lr / (1 - pow(hp->beta1, step));
    hp->bc2 = sqrt(1 - pow(hp->beta2, step));
    break;
  case DL_OPTIM_ADAMAX: hp->clr = lr / (1 - pow(hp->beta1, step)); break;
  case DL_OPTIM_NADAM: {
    hp->bc2 = 1 - pow(hp->beta2, step);
    double mu = hp->beta1 * (1. - 0.5 * pow(0.96, step * momentum_decay));
    double mu_next = hp->beta1 * (1. - 0.5 * pow(0.96, (step + 1) * momentum_decay));
    double mp = *mu_product * mu;
    *mu_product = mp;
    /* PyTorch 1.13 multiplies mu in twice here; kept for equal trajectories */
    double mp_next = mp * mu * mu_next;
    hp->c_grad = -lr * (1. - mu) / (1. - mp);
    hp->c_avg = -lr * mu_next / (1. - mp_next);
    break;
  }
  default: break;
  }
}
