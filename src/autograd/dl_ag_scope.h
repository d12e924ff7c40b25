/* dl_ag_scope.h — the temporaries of a composed derivative rule, released
 * together: keep() each result, end the scope once (grad_conv.c,
 * grad_layer.c, grad_loss.c; grad_rnn_scan.c keeps a few per time step).
 * The first DL_AG_SCOPE_MAX live in the scope itself; more go to a heap
 * array that grows as needed. */
#ifndef DL_AG_SCOPE_H
#define DL_AG_SCOPE_H

#include "../dl_tensor.h"
#include "../dl_core.h"

#include <stdlib.h>

#define DL_AG_SCOPE_MAX 64
typedef struct {
  dl_tensor *t[DL_AG_SCOPE_MAX];
  int n;
  bool failed;
  dl_tensor **more; /* past the first DL_AG_SCOPE_MAX */
  int64_t nmore, capmore;
} dl_ag_scope;

/* keeps t for release at the scope's end; NULL marks the scope failed */
static inline dl_tensor *dl_ag_keep(dl_ag_scope *s, dl_tensor *t) {
  if (!t) {
    s->failed = true;
    return NULL;
  }
  if (s->n < DL_AG_SCOPE_MAX) {
    s->t[s->n++] = t;
    return t;
  }
  if (s->nmore == s->capmore) {
    int64_t cap = s->capmore ? 2 * s->capmore : 256;
    dl_tensor **m = realloc(s->more, (size_t)cap * sizeof *m);
    if (!m) {
      dl_tensor_release(t);
      dl_error_set("autograd: out of memory");
      s->failed = true;
      return NULL;
    }
    s->more = m, s->capmore = cap;
  }
  s->more[s->nmore++] = t;
  return t;
}

static inline void dl_ag_scope_end(dl_ag_scope *s) {
  for (int i = 0; i < s->n; i++) dl_tensor_release(s->t[i]);
  for (int64_t i = 0; i < s->nmore; i++) dl_tensor_release(s->more[i]);
  free(s->more);
  s->n = 0, s->more = NULL, s->nmore = s->capmore = 0;
}

#endif
