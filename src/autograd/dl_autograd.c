/* dl_autograd.c — nodes, saved tensors, and the backward pass (iterative:
 * no C recursion, so a chain of any length works). */
#include "dl_autograd.h"

#include "../dl_alloc.h"
#include "dl_autograd_ops.h"
#include "dl_ag_view.h"
#include "../ops/dl_ewise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local bool grad_mode = true;
static dl_pool node_pool = {sizeof(dl_node), 0};

bool dl_grad_enabled(void) { return grad_mode; }

bool dl_set_grad_enabled(bool on) {
  bool prev = grad_mode;
  grad_mode = on;
  return prev;
}

bool dl_ag_needs_grad(dl_tensor *const *inputs, int n) {
  if (!grad_mode) return false;
  for (int i = 0; i < n; i++)
    if (inputs[i] && inputs[i]->requires_grad) return true;
  return false;
}

/* ---- a growable pointer stack (no recursion anywhere) ---- */

typedef struct {
  void **items;
  size_t n, cap;
} ptr_stack;

static int stack_push(ptr_stack *s, void *p) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    void **items = realloc(s->items, cap * sizeof *items);
    if (!items) {
      dl_error_set("backward: out of memory");
      return -1;
    }
    s->items = items;
    s->cap = cap;
  }
  s->items[s->n++] = p;
  return 0;
}

/* ---- nodes ---- */

dl_node *dl_node_new(const dl_node_type *type, dl_tensor *const *inputs, int ninputs, int noutputs) {
  if (noutputs > DL_NODE_MAX_OUTPUTS) {
    dl_error_set("autograd: %s has %d outputs, at most %d supported", type->name, noutputs, DL_NODE_MAX_OUTPUTS);
    return NULL;
  }
  for (int i = 0; i < ninputs; i++)
    if (inputs[i] && inputs[i]->requires_grad && dl_ag_refresh_view(inputs[i])) return NULL;
  dl_node *n = dl_pool_get(&node_pool);
  if (!n) return NULL;
  n->refcount = 1;
  n->type = type;
  n->noutputs = noutputs;
  n->edges = n->edges_inline;
  if (ninputs > DL_NODE_INLINE_EDGES) {
    n->edges = calloc((size_t)ninputs, sizeof(dl_edge));
    if (!n->edges) {
      dl_pool_put(&node_pool, n);
      dl_error_set("autograd: out of memory");
      return NULL;
    }
  }
  n->nedges = ninputs;
  for (int i = 0; i < ninputs; i++) {
    dl_tensor *t = inputs[i];
    if (!t || !t->requires_grad) continue;
    if (t->grad_fn) {
      n->edges[i].fn = dl_node_retain(t->grad_fn);
      n->edges[i].output_nr = t->output_nr;
    } else {
      n->edges[i].leaf = dl_tensor_retain(t);
    }
  }
  return n;
}

dl_node *dl_node_retain(dl_node *n) {
  n->refcount++;
  return n;
}

static void free_saved(dl_node *n) {
  for (int i = 0; i < n->nsaved; i++) {
    dl_tensor_release(n->saved[i].t);
    n->saved[i].t = NULL;
  }
}

static void node_destroy(dl_node *n) {
  if (n->type->release) n->type->release(n);
  free_saved(n);
  for (int k = 0; k < DL_NODE_MAX_OUTPUTS; k++) {
    if (n->gbuf[k]) dl_tensor_release(n->gbuf[k]);
    if (n->retained[k]) n->retained[k]->retains_grad = false;
  }
  for (int i = 0; i < n->nedges; i++) {
    if (n->edges[i].fn) dl_node_release(n->edges[i].fn);
    if (n->edges[i].leaf) dl_tensor_release(n->edges[i].leaf);
  }
  if (n->edges != n->edges_inline) free(n->edges);
  dl_pool_put(&node_pool, n);
}

/* Releasing the last tensor of a long chain frees its whole graph: queue the
 * nodes instead of recursing. */
static _Thread_local ptr_stack release_queue;
static _Thread_local bool releasing;

void dl_node_release(dl_node *n) {
  if (!n || --n->refcount > 0) return;
  if (stack_push(&release_queue, n)) {
    node_destroy(n); /* out of memory for the queue: recurse this once */
    return;
  }
  if (releasing) return;
  releasing = true;
  while (release_queue.n) node_destroy(release_queue.items[--release_queue.n]);
  releasing = false;
}

/* a slot for one more saved tensor: more than DL_NODE_MAX_SAVED is a
 * rule's bug (its count is fixed by its code, never by input) */
static dl_saved *next_saved(dl_node *n) {
  if (n->nsaved >= DL_NODE_MAX_SAVED) {
    fprintf(stderr, "dlua: internal error: %s saves more than %d tensors\n", n->type->name, DL_NODE_MAX_SAVED);
    abort();
  }
  return &n->saved[n->nsaved++];
}

void dl_node_save(dl_node *n, dl_tensor *t) {
  dl_saved *s = next_saved(n);
  s->t = dl_tensor_retain(t);
  s->version = t->storage->version;
  s->is_output = 0;
}

void dl_node_save_output(dl_node *n, dl_tensor *out, int k) {
  dl_saved *s = next_saved(n);
  s->t = dl_tensor_alias(out); /* no grad_fn: no cycle node -> out -> node */
  s->version = out->storage->version;
  s->is_output = 1;
  s->output_nr = (int8_t)k;
}

dl_tensor *dl_node_saved(dl_node *n, int i) {
  if (n->freed) {
    dl_error_set("backward: trying to backward through the graph a second time (or directly access saved tensors "
                 "after they have already been freed); saved values are freed by backward() and autograd.grad() "
                 "unless retain_graph = true");
    return NULL;
  }
  dl_saved *s = &n->saved[i];
  if (s->t->storage->version != s->version) {
    dl_error_set("backward: one of the variables needed for gradient computation has been modified by an in-place "
                 "operation: a tensor saved by %s is at version %u; expected version %u",
                 n->type->name, s->t->storage->version, s->version);
    return NULL;
  }
  if (s->is_output && dl_grad_enabled()) {
    /* double backward: the saved output is this node's output again */
    dl_tensor *a = dl_tensor_alias(s->t);
    if (!a) return NULL;
    a->grad_fn = dl_node_retain(n);
    a->output_nr = s->output_nr;
    a->requires_grad = true;
    return a;
  }
  return dl_tensor_retain(s->t);
}

void dl_node_set_output(dl_node *n, dl_tensor *out, int k) {
  if (out->grad_fn) dl_node_release(out->grad_fn);
  out->grad_fn = dl_node_retain(n);
  out->output_nr = k;
  out->requires_grad = true;
  if (out->ndim > 0) memcpy(n->out[k].shape, out->shape, sizeof(int64_t) * (size_t)out->ndim);
  n->out[k].ndim = out->ndim;
  n->out[k].dtype = out->dtype;
  n->out_device = dl_tensor_device(out);
}

dl_node *dl_ag_record(const dl_node_type *type, dl_tensor *const *inputs, int ninputs, dl_tensor *out) {
  dl_node *n = dl_node_new(type, inputs, ninputs, 1);
  if (!n) return NULL;
  dl_node_set_output(n, out, 0);
  dl_node_release(n); /* out holds it now */
  return n;
}

void dl_autograd_clear(dl_tensor *t) {
  dl_node *n = t->grad_fn;
  if (!n) return;
  if (t->retains_grad && t->output_nr < DL_NODE_MAX_OUTPUTS && n->retained[t->output_nr] == t)
    n->retained[t->output_nr] = NULL;
  t->grad_fn = NULL;
  dl_node_release(n);
}

dl_tensor *dl_tensor_detach(dl_tensor *t) { return dl_tensor_alias(t); }

int dl_ag_check_inplace(const char *fn, const dl_tensor *t) {
  if (!grad_mode) return 0;
  if (t->requires_grad && !t->grad_fn) {
    dl_error_set("%s: a leaf tensor that requires grad is being used in an in-place operation (wrap it in dl.no_grad)",
                 fn);
    return -1;
  }
  if (t->base && t->base->requires_grad) {
    dl_error_set("%s: in-place operation on a view of a tensor that requires grad; only copy_, fill_ and index "
                 "assignment may write through such a view (use an out-of-place op)", fn);
    return -1;
  }
  return 0;
}

dl_tensor *dl_ag_sum_to(dl_tensor *g, const int64_t *shape, int ndim) {
  if (g->ndim == ndim) {
    bool same = true;
    for (int d = 0; d < ndim; d++) same = same && g->shape[d] == shape[d];
    if (same) return dl_tensor_retain(g);
  }
  int dims[DL_MAX_DIMS], nd = 0;
  int lead = g->ndim - ndim;
  for (int d = 0; d < g->ndim; d++) {
    if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1)) dims[nd++] = d;
  }
  dl_tensor *s = nd ? dl_ag_sum_dims(g, dims, nd, true) : dl_tensor_retain(g);
  if (!s) return NULL;
  dl_tensor *r = dl_ag_reshape(s, shape, ndim);
  dl_tensor_release(s);
  return r;
}

/* ---- forward mode ---- */

dl_tensor *dl_fw_tangent_or_zeros(dl_tensor *t) {
  if (t->tangent) return dl_tensor_retain(t->tangent);
  return dl_tensor_zeros(t->shape, t->ndim, t->dtype, dl_tensor_device(t));
}

int dl_fw_set(dl_tensor *out, dl_tensor *tangent) {
  if (!tangent) return -1;
  if (out->tangent) dl_tensor_release(out->tangent);
  out->tangent = tangent;
  return 0;
}

/* ---- backward ---- */

static uint64_t walk_counter;

/* acc = acc + g, taking over g */
static int accumulate(dl_tensor **acc, dl_tensor *g) {
  if (!*acc) {
    *acc = g;
    return 0;
  }
  dl_tensor *sum = dl_ag_add(*acc, g);
  dl_tensor_release(g);
  if (!sum) return -1;
  dl_tensor_release(*acc);
  *acc = sum;
  return 0;
}

/* g (taken over) into output k's gradient buffer of node m. A buffer the engine owns
 * (made or summed by it, never a tensor someone else holds) takes g in
 * place when no graph of the gradients is recorded. */
static int accumulate_buf(dl_node *m, int k, dl_tensor *g, bool create_graph) {
  dl_tensor **acc = &m->gbuf[k];
  uint8_t bit = (uint8_t)(1u << k);
  if (*acc && (m->gbuf_owned & bit) && !create_graph && g->dtype == (*acc)->dtype) {
    int rc = dl_op_binary_(DL_BIN_ADD, *acc, dl_operand_tensor(g), dl_scalar_i(1));
    dl_tensor_release(g);
    return rc;
  }
  bool summed = *acc != NULL;
  if (accumulate(acc, g)) return -1;
  if (summed && !create_graph) m->gbuf_owned |= bit;
  else m->gbuf_owned &= (uint8_t)~bit;
  return 0;
}

/* A narrow or select node's gradient goes straight into its region of the
 * input's gradient buffer (made the engine's own first: zeros, or a copy
 * of a gradient it was handed), instead of being embedded into a zero
 * tensor of the input's size and summed with the others: a loop over x[t]
 * or x:narrow(...) costs O(size of x) in backward, not O(T * size of x).
 * Not while recording a graph of the gradients (the embed is then the
 * differentiable rule). 1 done, 0 not applicable, -1 error. */
static int add_into_region(dl_node *n, dl_tensor *g, bool create_graph) {
  if (create_graph || n->nedges != 1 || !n->edges[0].fn || !dl_ag_cuts_region(n)) return 0;
  dl_node *m = n->edges[0].fn;
  int k = n->edges[0].output_nr;
  uint8_t bit = (uint8_t)(1u << k);
  dl_tensor **buf = &m->gbuf[k];
  /* a buffer of another precision than the output's sums by promotion instead */
  if (g->dtype != m->out[k].dtype || (*buf && (*buf)->dtype != m->out[k].dtype)) return 0;
  if (!*buf || !(m->gbuf_owned & bit)) {
    dl_tensor *own = *buf ? dl_tensor_clone(*buf)
                          : dl_tensor_zeros(m->out[k].shape, m->out[k].ndim, m->out[k].dtype, m->out_device);
    if (!own) return -1;
    dl_tensor_release(*buf);
    *buf = own;
    m->gbuf_owned |= bit;
  }
  dl_tensor *region = dl_ag_view_region(n, *buf);
  int rc = region ? dl_op_binary_(DL_BIN_ADD, region, dl_operand_tensor(g), dl_scalar_i(1)) : -1;
  dl_tensor_release(region);
  return rc ? -1 : 1;
}

static int check_grad_shape(const char *who, const dl_tensor *g, const int64_t *shape, int ndim) {
  bool same = g->ndim == ndim;
  for (int d = 0; same && d < ndim; d++) same = g->shape[d] == shape[d];
  if (same) return 0;
  char b1[128], b2[128];
  dl_error_set("backward: %s produced a gradient of shape %s for an input of shape %s", who,
               dl_tensor_shape_str(g, b1, sizeof b1), dl_shape_str(shape, ndim, b2, sizeof b2));
  return -1;
}

/* Gradient into a leaf's .grad. The stored grad must not alias another
 * tensor that a later in-place accumulation could change. */
static int accumulate_leaf(dl_tensor *leaf, dl_tensor *g, bool create_graph) {
  if (check_grad_shape("accumulation", g, leaf->shape, leaf->ndim)) {
    dl_tensor_release(g);
    return -1;
  }
  if (!leaf->grad) {
    /* taken over only when nothing else can see its storage (a view of a
     * shared gradient has a refcount of its own) and it is all of it (the
     * last piece of a cat's gradient would keep the whole alive) */
    if (g->refcount == 1 && g->storage->refcount == 1 && !g->grad_fn && dl_tensor_is_contiguous(g) &&
        g->dtype == leaf->dtype && g->offset == 0 &&
        (size_t)g->numel * dl_dtype_size(g->dtype) == g->storage->nbytes) {
      leaf->grad = g;
      return 0;
    }
    /* a copy (recorded under create_graph, as PyTorch's): g may be the
     * caller's gradient or another leaf's, and later sums go in place */
    dl_tensor *c = create_graph ? dl_ag_clone(g) : dl_tensor_clone(g);
    if (c && c->dtype != leaf->dtype) {
      dl_tensor *cc = dl_tensor_to_dtype(c, leaf->dtype);
      dl_tensor_release(c);
      c = cc;
    }
    dl_tensor_release(g);
    if (!c) return -1;
    leaf->grad = c;
    return 0;
  }
  /* added in place, as PyTorch's AccumulateGrad: a reference to .grad kept
   * across backward calls sees the sum; a recorded sum (create_graph) or a
   * .grad that cannot take the write gets a new tensor */
  dl_tensor *acc = leaf->grad;
  bool writable = !create_graph && !acc->grad_fn && !acc->requires_grad && acc->dtype == g->dtype;
  for (int d = 0; writable && d < acc->ndim; d++) writable = acc->stride[d] != 0 || acc->shape[d] <= 1;
  if (writable) {
    int rc = dl_op_binary_(DL_BIN_ADD, acc, dl_operand_tensor(g), dl_scalar_i(1));
    dl_tensor_release(g);
    return rc;
  }
  return accumulate(&leaf->grad, g);
}

typedef struct {
  dl_tensor *const *inputs; /* autograd.grad: capture these instead of .grad */
  int ninputs;
  dl_tensor **out;
} capture;

static int capture_grad(const capture *cap, const dl_tensor *t, dl_tensor *g) {
  for (int j = 0; j < cap->ninputs; j++) {
    if (cap->inputs[j] == t) {
      dl_tensor *gr = dl_tensor_retain(g);
      if (accumulate(&cap->out[j], gr)) return -1;
    }
  }
  return 0;
}

static dl_tensor *zeros_for_output(dl_node *n, int k) {
  return dl_tensor_zeros(n->out[k].shape, n->out[k].ndim, n->out[k].dtype, n->out_device);
}

/* backward passes running: a custom Function's backward may start one
 * inside another; grad hooks belong to the outermost only */
static int backward_depth;

/* counts, in discovery, a contribution to a hooked leaf's .grad */
static void hook_expect(dl_tensor *leaf, uint64_t walk) {
  dl_grad_hook *h = leaf->grad_hook;
  if (!h || backward_depth > 1) return;
  if (h->walk != walk) {
    h->walk = walk;
    h->pending = 0;
  }
  h->pending++;
}

/* one contribution done (given or not): the hook runs after the last */
static int hook_done(dl_tensor *leaf, uint64_t walk, ptr_stack *groups) {
  dl_grad_hook *h = leaf->grad_hook;
  if (!h || backward_depth > 1 || h->walk != walk || --h->pending != 0) return 0;
  bool seen = false;
  for (size_t i = 0; i < groups->n && !seen; i++) seen = groups->items[i] == h->group;
  if (!seen && h->group && stack_push(groups, h->group)) return -1;
  return h->ready(h, leaf);
}

static int run_backward(dl_tensor *const *roots, dl_tensor *const *grads, int nroots, bool retain_graph,
                        bool create_graph, const capture *cap) {
  bool prev_mode = dl_set_grad_enabled(create_graph);
  uint64_t walk = ++walk_counter;
  backward_depth++;
  ptr_stack todo = {0}, visited = {0}, ready = {0}, groups = {0};
  int rc = -1;

  /* discover the graph and count, for each node, the edges that reach it */
  for (int i = 0; i < nroots; i++) {
    if (dl_ag_refresh_view(roots[i])) goto done;
    dl_node *n = roots[i]->grad_fn;
    if (n && n->walk_id != walk) {
      n->walk_id = walk;
      n->deps = 0;
      if (stack_push(&todo, n) || stack_push(&visited, n)) goto done;
    }
  }
  while (todo.n) {
    dl_node *n = todo.items[--todo.n];
    for (int i = 0; i < n->nedges; i++) {
      dl_node *m = n->edges[i].fn;
      if (!m && n->edges[i].leaf && !cap) hook_expect(n->edges[i].leaf, walk);
      if (!m) continue;
      if (m->walk_id != walk) {
        m->walk_id = walk;
        m->deps = 0;
        if (stack_push(&todo, m) || stack_push(&visited, m)) goto done;
      }
      m->deps++;
    }
  }

  /* seed the roots */
  for (int i = 0; i < nroots; i++) {
    dl_tensor *r = roots[i];
    if (!r->requires_grad) {
      dl_error_set("backward: element %d of tensors does not require grad and does not have a grad_fn", i + 1);
      goto done;
    }
    dl_tensor *g;
    if (grads && grads[i]) {
      if (check_grad_shape("the given gradient", grads[i], r->shape, r->ndim)) goto done;
      g = dl_tensor_retain(grads[i]);
    } else {
      if (r->numel != 1) {
        char b[128];
        dl_error_set("backward: grad can be implicitly created only for scalar outputs (got shape %s)",
                     dl_tensor_shape_str(r, b, sizeof b));
        goto done;
      }
      g = dl_tensor_full(r->shape, r->ndim, r->dtype, dl_tensor_device(r), dl_scalar_i(1));
      if (!g) goto done;
    }
    if (r->grad_fn) {
      if (accumulate_buf(r->grad_fn, r->output_nr, g, create_graph)) goto done;
    } else if (cap) {
      int crc = capture_grad(cap, r, g);
      dl_tensor_release(g);
      if (crc) goto done;
    } else {
      hook_expect(r, walk);
      if (accumulate_leaf(r, g, create_graph) || hook_done(r, walk, &groups)) goto done;
    }
  }
  for (size_t i = 0; i < visited.n; i++) {
    dl_node *n = visited.items[i];
    if (n->deps == 0 && stack_push(&ready, n)) goto done;
  }

  while (ready.n) {
    dl_node *n = ready.items[--ready.n];
    dl_tensor *gout[DL_NODE_MAX_OUTPUTS] = {NULL};
    dl_tensor *gin_inline[DL_NODE_INLINE_EDGES] = {NULL};
    dl_tensor **gin = gin_inline;
    bool any = false;
    for (int k = 0; k < n->noutputs; k++) any = any || n->gbuf[k];
    if (any) {
      n->gbuf_owned = 0;
      for (int k = 0; k < n->noutputs; k++) {
        gout[k] = n->gbuf[k] ? n->gbuf[k] : zeros_for_output(n, k);
        n->gbuf[k] = NULL;
        if (!gout[k]) goto node_fail;
        if (n->retained[k]) {
          dl_tensor *t = n->retained[k];
          if (cap) {
            if (capture_grad(cap, t, gout[k])) goto node_fail;
          } else if (accumulate_leaf(t, dl_tensor_retain(gout[k]), create_graph)) {
            goto node_fail;
          }
        } else if (cap) {
          /* a non-leaf input of autograd.grad */
          for (int j = 0; j < cap->ninputs; j++)
            if (cap->inputs[j]->grad_fn == n && cap->inputs[j]->output_nr == k &&
                capture_grad(cap, cap->inputs[j], gout[k]))
              goto node_fail;
        }
      }
      if (n->nedges > DL_NODE_INLINE_EDGES) {
        gin = calloc((size_t)n->nedges, sizeof *gin);
        if (!gin) {
          dl_error_set("backward: out of memory");
          goto node_fail;
        }
      }
      int cut = add_into_region(n, gout[0], create_graph);
      if (cut < 0) goto node_fail;
      if (!cut && n->type->backward(n, gout, gin)) goto node_fail;
      /* done with the output gradients: a leaf can now take over an input
       * gradient that is a view of one (a Linear weight's, through its
       * transpose) instead of copying it */
      for (int k = 0; k < n->noutputs; k++) {
        dl_tensor_release(gout[k]);
        gout[k] = NULL;
      }
      for (int i = 0; i < n->nedges; i++) {
        dl_tensor *g = gin[i];
        gin[i] = NULL;
        if (!g) continue;
        dl_edge *e = &n->edges[i];
        if (e->fn) {
          if (check_grad_shape(n->type->name, g, e->fn->out[e->output_nr].shape, e->fn->out[e->output_nr].ndim)) {
            dl_tensor_release(g);
            goto node_fail;
          }
          if (accumulate_buf(e->fn, e->output_nr, g, create_graph)) goto node_fail; /* g taken over */
        } else if (e->leaf) {
          int lrc;
          if (cap) {
            lrc = capture_grad(cap, e->leaf, g);
            dl_tensor_release(g);
          } else {
            lrc = accumulate_leaf(e->leaf, g, create_graph);
          }
          if (lrc) goto node_fail;
        } else {
          dl_tensor_release(g);
        }
      }
    }
    for (int i = 0; i < n->nedges; i++) {
      dl_node *m = n->edges[i].fn;
      if (m && --m->deps == 0 && stack_push(&ready, m)) goto node_fail;
    }
    for (int k = 0; k < n->noutputs; k++) dl_tensor_release(gout[k]);
    if (gin != gin_inline) free(gin);
    for (int i = 0; i < n->nedges && !cap; i++)
      if (n->edges[i].leaf && hook_done(n->edges[i].leaf, walk, &groups)) goto done;
    if (!retain_graph) {
      free_saved(n);
      n->freed = true;
    }
    continue;
  node_fail:
    for (int k = 0; k < n->noutputs; k++) dl_tensor_release(gout[k]);
    for (int i = 0; i < n->nedges && gin; i++) dl_tensor_release(gin[i]);
    if (gin != gin_inline) free(gin);
    goto done;
  }
  rc = 0;

done:
  for (size_t i = 0; i < groups.n; i++) {
    dl_grad_hook_group *g = groups.items[i];
    if (g->finish(g, rc == 0)) rc = -1;
  }
  free(groups.items);
  /* leftover buffers after an error */
  for (size_t i = 0; i < visited.n; i++) {
    dl_node *n = visited.items[i];
    for (int k = 0; k < DL_NODE_MAX_OUTPUTS; k++) {
      dl_tensor_release(n->gbuf[k]);
      n->gbuf[k] = NULL;
    }
    n->gbuf_owned = 0;
  }
  free(todo.items);
  free(visited.items);
  free(ready.items);
  backward_depth--;
  dl_set_grad_enabled(prev_mode);
  return rc;
}

int dl_backward(dl_tensor *const *roots, dl_tensor *const *grads, int nroots, bool retain_graph, bool create_graph) {
  return run_backward(roots, grads, nroots, retain_graph || create_graph, create_graph, NULL);
}

int dl_autograd_grad(dl_tensor *const *roots, dl_tensor *const *grads, int nroots, dl_tensor *const *inputs,
                     int ninputs, bool retain_graph, bool create_graph, bool allow_unused, dl_tensor **out) {
  for (int j = 0; j < ninputs; j++) {
    out[j] = NULL;
    if (dl_ag_refresh_view(inputs[j])) return -1;
    if (!inputs[j]->requires_grad) {
      dl_error_set("autograd.grad: input %d does not require grad", j + 1);
      return -1;
    }
  }
  capture cap = {inputs, ninputs, out};
  if (run_backward(roots, grads, nroots, retain_graph || create_graph, create_graph, &cap)) {
    for (int j = 0; j < ninputs; j++) {
      dl_tensor_release(out[j]);
      out[j] = NULL;
    }
    return -1;
  }
  for (int j = 0; j < ninputs; j++) {
    if (!out[j] && !allow_unused) {
      dl_error_set("autograd.grad: input %d was not used in the graph (pass allow_unused = true)", j + 1);
      for (int k = 0; k < ninputs; k++) {
        dl_tensor_release(out[k]);
        out[k] = NULL;
      }
      return -1;
    }
  }
  return 0;
}
