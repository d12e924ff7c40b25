/* dl_ag_scope.h — the temporaries of a composed derivative rule, released
 * together: keep() each result, end the scope once (grad_conv.c,
 * grad_layer.c, grad_loss.c). */
#ifndef DL_AG_SCOPE_H
#define DL_AG_SCOPE_H

#include "../dl_tensor.h"
#include "../dl_core.h"

#define DL_AG_SCOPE_MAX 64
typedef struct {
  dl_tensor *t[DL_AG_SCOPE_MAX];
  int n;
  bool failed;
} dl_ag_scope;

/* keeps t for release at the scope's end; NULL marks the scope failed */
static inline dl_tensor *dl_ag_keep(dl_ag_scope *s, dl_tensor *t) {
  if (t && s->n == DL_AG_SCOPE_MAX) { /* a composition longer than the scope: a bug, but no overflow */
    dl_tensor_release(t);
    dl_error_set("autograd: internal error (too many temporaries)");
    t = NULL;
  }
  if (!t) s->failed = true;
  else s->t[s->n++] = t;
  return t;
}

static inline void dl_ag_scope_end(dl_ag_scope *s) {
  for (int i = 0; i < s->n; i++) dl_tensor_release(s->t[i]);
  s->n = 0;
}

#endif
