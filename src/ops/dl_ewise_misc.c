/* dl_ewise_misc.c — front-ends of clamp, lerp, addcmul/addcdiv, where,
 * masked_fill and the closeness tests (isclose, allclose, equal). */
#include "dl_ewise_impl.h"

/* After the kernel: self finished in place or the result handed out; a
 * failed kernel's target is dropped. 0 or -1. */
static int land(const char *fn, dl_tensor *self, dl_tensor *target, int rc, dl_tensor **result) {
  if (dl_ewise_status(fn, rc)) {
    dl_tensor_release(target);
    return -1;
  }
  if (self) dl_ewise_inplace_finish(self, target);
  else *result = target;
  return 0;
}

/* ---- clamp ---- */

/* operands {a, lo, hi}; absent bounds are skipped in promotion */
static int clamp_run(const char *fn, dl_tensor *self, const dl_tensor *a, const dl_operand *lo, const dl_operand *hi,
                     dl_tensor **result) {
  if (!lo && !hi) {
    dl_error_set("%s: at least one of min and max must be given", fn);
    return -1;
  }
  dl_operand in[3] = {dl_operand_tensor(a), lo ? *lo : dl_operand_scalar(dl_scalar_i(0)),
                      hi ? *hi : dl_operand_scalar(dl_scalar_i(0))};
  dl_operand list[3];
  int n = 0;
  list[n++] = in[0];
  if (lo) list[n++] = *lo;
  if (hi) list[n++] = *hi;
  dl_dtype ct = dl_result_type(list, n);
  if (self && dl_ewise_check_inplace(fn, self, ct)) return -1;
  dl_dtype cts[3] = {ct, ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, DL_OP_CLAMP, 3, in, cts, self)) return -1;
  dl_tensor *target = self ? dl_ewise_inplace_target(self, ct, false) : dl_tensor_empty(p.shape, p.ndim, ct, p.dev);
  int rc = target ? land(fn, self, target, p.k->clamp(target, p.op[0].t, lo ? &p.op[1] : NULL, hi ? &p.op[2] : NULL), result) : -1;
  dl_ewise_prep_free(&p);
  return rc;
}

dl_tensor *dl_op_clamp(const dl_tensor *a, const dl_operand *lo, const dl_operand *hi) {
  dl_tensor *r = NULL;
  return clamp_run("clamp", NULL, a, lo, hi, &r) ? NULL : r;
}

int dl_op_clamp_(dl_tensor *self, const dl_operand *lo, const dl_operand *hi) {
  return clamp_run("clamp_", self, self, lo, hi, NULL);
}

/* ---- lerp ---- */

static int lerp_run(const char *fn, dl_tensor *self, const dl_tensor *a, const dl_tensor *end, dl_operand w,
                    dl_tensor **result) {
  /* the weight is cast to the type of a and end, which must be floats */
  dl_operand in[3] = {dl_operand_tensor(a), dl_operand_tensor(end), w};
  dl_dtype ct = dl_result_type(in, 2);
  if (!dl_dtype_is_float(ct)) {
    dl_error_set("%s: expected floating point tensors, got %s", fn, dl_dtype_name(ct));
    return -1;
  }
  if (self && dl_ewise_check_inplace(fn, self, ct)) return -1;
  dl_dtype cts[3] = {ct, ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, DL_OP_LERP, 3, in, cts, self)) return -1;
  dl_tensor *target = self ? dl_ewise_inplace_target(self, ct, false) : dl_tensor_empty(p.shape, p.ndim, ct, p.dev);
  int rc = target ? land(fn, self, target, p.k->lerp(target, p.op[0].t, p.op[1].t, p.op[2]), result) : -1;
  dl_ewise_prep_free(&p);
  return rc;
}

dl_tensor *dl_op_lerp(const dl_tensor *a, const dl_tensor *end, dl_operand w) {
  dl_tensor *r = NULL;
  return lerp_run("lerp", NULL, a, end, w, &r) ? NULL : r;
}

int dl_op_lerp_(dl_tensor *self, const dl_tensor *end, dl_operand w) {
  return lerp_run("lerp_", self, self, end, w, NULL);
}

/* ---- addcmul, addcdiv ---- */

static int addc_run(const char *fn, bool div, dl_tensor *self, const dl_tensor *a, const dl_tensor *t1,
                    const dl_tensor *t2, dl_scalar value, dl_tensor **result) {
  if (div && !dl_dtype_is_float(t1->dtype) && !dl_dtype_is_float(t2->dtype)) {
    dl_error_set("%s: integer division is not supported (tensor1 and tensor2 are %s and %s); use float tensors", fn,
                 dl_dtype_name(t1->dtype), dl_dtype_name(t2->dtype));
    return -1;
  }
  /* value does not take part in promotion: it must suit the tensors' type */
  dl_operand in[3] = {dl_operand_tensor(a), dl_operand_tensor(t1), dl_operand_tensor(t2)};
  dl_dtype ct = dl_result_type(in, 3);
  if (div && !dl_dtype_is_float(ct)) ct = DL_FLOAT32;
  if (ct == DL_BOOL) {
    dl_error_set("%s: not supported for bool tensors", fn);
    return -1;
  }
  if (!dl_dtype_is_float(ct) && !value.is_int) {
    dl_error_set("%s: value must be an integer for integer tensors, got %g", fn, value.f);
    return -1;
  }
  if (self && dl_ewise_check_inplace(fn, self, ct)) return -1;
  dl_dtype cts[3] = {ct, ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, div ? DL_OP_ADDCDIV : DL_OP_ADDCMUL, 3, in, cts, self)) return -1;
  dl_tensor *target = self ? dl_ewise_inplace_target(self, ct, false) : dl_tensor_empty(p.shape, p.ndim, ct, p.dev);
  int rc = target ? land(fn, self, target, p.k->addc(div, target, p.op[0].t, p.op[1].t, p.op[2].t, value), result) : -1;
  dl_ewise_prep_free(&p);
  return rc;
}

dl_tensor *dl_op_addcmul(const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2, dl_scalar value) {
  dl_tensor *r = NULL;
  return addc_run("addcmul", false, NULL, a, t1, t2, value, &r) ? NULL : r;
}

int dl_op_addcmul_(dl_tensor *self, const dl_tensor *t1, const dl_tensor *t2, dl_scalar value) {
  return addc_run("addcmul_", false, self, self, t1, t2, value, NULL);
}

dl_tensor *dl_op_addcdiv(const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2, dl_scalar value) {
  dl_tensor *r = NULL;
  return addc_run("addcdiv", true, NULL, a, t1, t2, value, &r) ? NULL : r;
}

int dl_op_addcdiv_(dl_tensor *self, const dl_tensor *t1, const dl_tensor *t2, dl_scalar value) {
  return addc_run("addcdiv_", true, self, self, t1, t2, value, NULL);
}

/* ---- where, masked_fill ---- */

static int check_bool(const char *fn, const char *what, const dl_tensor *t) {
  if (t->dtype == DL_BOOL) return 0;
  dl_error_set("%s: %s must be a bool tensor, got %s", fn, what, dl_dtype_name(t->dtype));
  return -1;
}

dl_tensor *dl_op_where(const dl_tensor *cond, dl_operand a, dl_operand b) {
  const char *fn = "where";
  if (check_bool(fn, "condition", cond)) return NULL;
  dl_operand ab[2] = {a, b};
  dl_dtype ct = dl_result_type(ab, 2);
  dl_operand in[3] = {dl_operand_tensor(cond), a, b};
  dl_dtype cts[3] = {DL_BOOL, ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, DL_OP_WHERE, 3, in, cts, NULL)) return NULL;
  dl_tensor *out = dl_tensor_empty(p.shape, p.ndim, ct, p.dev);
  if (out && land(fn, NULL, out, p.k->where(out, p.op[0].t, p.op[1], p.op[2]), &out)) out = NULL;
  dl_ewise_prep_free(&p);
  return out;
}

static int masked_fill_run(const char *fn, dl_tensor *self, const dl_tensor *a, const dl_tensor *mask, dl_operand value,
                           dl_tensor **result) {
  if (check_bool(fn, "mask", mask)) return -1;
  if (value.t && value.t->ndim != 0) {
    char b[128];
    dl_error_set("%s: value must be a number or a 0-d tensor, got a tensor of shape %s", fn,
                 dl_tensor_shape_str(value.t, b, sizeof b));
    return -1;
  }
  if (self && dl_ewise_check_inplace(fn, self, self->dtype)) return -1;
  dl_dtype dt = a->dtype;
  dl_operand in[3] = {dl_operand_tensor(mask), value, dl_operand_tensor(a)};
  dl_dtype cts[3] = {DL_BOOL, dt, dt};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, DL_OP_MASKED_FILL, 3, in, cts, self)) return -1;
  dl_tensor *target = self ? dl_tensor_retain(self) : dl_tensor_empty(p.shape, p.ndim, dt, p.dev);
  int rc = target ? land(fn, self, target, p.k->where(target, p.op[0].t, p.op[1], p.op[2]), result) : -1;
  dl_ewise_prep_free(&p);
  return rc;
}

dl_tensor *dl_op_masked_fill(const dl_tensor *a, const dl_tensor *mask, dl_operand value) {
  dl_tensor *r = NULL;
  return masked_fill_run("masked_fill", NULL, a, mask, value, &r) ? NULL : r;
}

int dl_op_masked_fill_(dl_tensor *self, const dl_tensor *mask, dl_operand value) {
  return masked_fill_run("masked_fill_", self, self, mask, value, NULL);
}

/* ---- closeness ---- */

static dl_tensor *isclose_run(const char *fn, const dl_tensor *a, const dl_tensor *b, double rtol, double atol,
                              bool equal_nan) {
  if (!(rtol >= 0) || !(atol >= 0)) {
    dl_error_set("%s: rtol and atol must be non-negative, got rtol=%g atol=%g", fn, rtol, atol);
    return NULL;
  }
  dl_operand in[2] = {dl_operand_tensor(a), dl_operand_tensor(b)};
  dl_dtype ct = dl_result_type(in, 2);
  dl_dtype cts[2] = {ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, DL_OP_ISCLOSE, 2, in, cts, NULL)) return NULL;
  dl_tensor *out = dl_tensor_empty(p.shape, p.ndim, DL_BOOL, p.dev);
  if (out && land(fn, NULL, out, p.k->isclose(out, p.op[0].t, p.op[1].t, rtol, atol, equal_nan), &out)) out = NULL;
  dl_ewise_prep_free(&p);
  return out;
}

dl_tensor *dl_op_isclose(const dl_tensor *a, const dl_tensor *b, double rtol, double atol, bool equal_nan) {
  return isclose_run("isclose", a, b, rtol, atol, equal_nan);
}

int dl_op_allclose(const dl_tensor *a, const dl_tensor *b, double rtol, double atol, bool equal_nan, bool *out) {
  dl_tensor *c = isclose_run("allclose", a, b, rtol, atol, equal_nan);
  if (!c) return -1;
  *out = true;
  int rc = c->numel == 0 ? 0 : dl_ewise_status("allclose", dl_backend_of(c)->ewise->all(c, out));
  dl_tensor_release(c);
  return rc;
}

int dl_op_equal(const dl_tensor *a, const dl_tensor *b, bool *out) {
  if (dl_check_same_device("equal", a, b)) return -1;
  if (!dl_tensor_same_shape(a, b)) {
    *out = false;
    return 0;
  }
  if (a->numel == 0) {
    *out = true;
    return 0;
  }
  dl_operand in[2] = {dl_operand_tensor(a), dl_operand_tensor(b)};
  dl_dtype ct = dl_result_type(in, 2);
  dl_dtype cts[2] = {ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, "equal", DL_OP_EQ, 2, in, cts, NULL)) return -1;
  dl_tensor *eq = dl_tensor_empty(p.shape, p.ndim, DL_BOOL, p.dev);
  int rc = -1;
  if (eq) {
    rc = dl_ewise_status("equal", p.k->binary(DL_BIN_EQ, eq, p.op[0], p.op[1], dl_scalar_i(1)));
    if (!rc) rc = dl_ewise_status("equal", p.k->all(eq, out));
    dl_tensor_release(eq);
  }
  dl_ewise_prep_free(&p);
  return rc;
}
