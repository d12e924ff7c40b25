/* dl_autograd.h — the reverse-mode graph and forward-mode tangents.
 *
 * A differentiable op's front-end (src/autograd/grad_<family>.c) computes its
 * result with the plain op, then, when recording is on and an input requires
 * grad, makes a node: the backward rule, the edges to its inputs' nodes (or
 * to the leaf tensors that accumulate .grad), the tensors the rule needs
 * (saved with their version, so in-place changes are caught) and a small
 * context of sizes and flags. Backward rules are written with the same
 * differentiable front-ends, so recording them (create_graph) gives higher
 * derivatives. Forward mode: every tensor may carry a tangent; each op's jvp
 * rule, beside its backward rule, computes the output's tangent. */
#ifndef DL_AUTOGRAD_H
#define DL_AUTOGRAD_H

#include "../dl_tensor.h"

#define DL_NODE_INLINE_EDGES 3
/* a rule saves at most this many tensors (the convolution block: 11) */
#define DL_NODE_MAX_SAVED 12
#define DL_NODE_MAX_OUTPUTS 4
#define DL_NODE_CTX_BYTES 448

struct dl_node;

typedef struct {
  struct dl_node *fn; /* producer of the input, or NULL */
  dl_tensor *leaf;    /* leaf that accumulates the gradient, or NULL */
  int output_nr;      /* which output of fn */
} dl_edge;

typedef struct {
  dl_tensor *t;     /* an alias without autograd state */
  uint32_t version; /* storage version when saved */
  int8_t is_output; /* saved output: its grad_fn is this node (no cycle kept) */
  int8_t output_nr;
} dl_saved;

/* gout[k]: gradient of output k (never NULL: zeros are materialised);
 * gin[i]: gradient for input edge i, NULL when none. 0 ok, -1 with error. */
typedef int (*dl_backward_fn)(struct dl_node *n, dl_tensor *const *gout, dl_tensor **gin);

typedef struct dl_node_type {
  const char *name; /* "MulBackward0", as PyTorch names them */
  dl_backward_fn backward;
  /* releases resources held in ctx (custom Lua functions); may be NULL */
  void (*release)(struct dl_node *n);
} dl_node_type;

typedef struct dl_node {
  int64_t refcount;
  const dl_node_type *type;
  int nedges;
  dl_edge *edges; /* edges_inline or heap */
  dl_edge edges_inline[DL_NODE_INLINE_EDGES];
  int nsaved;
  bool freed; /* saved tensors released after a backward without retain_graph */
  dl_saved saved[DL_NODE_MAX_SAVED];
  int noutputs;
  /* output metadata, for zero gradients and shape checks */
  struct {
    int64_t shape[DL_MAX_DIMS];
    int ndim;
    dl_dtype dtype;
  } out[DL_NODE_MAX_OUTPUTS];
  dl_device out_device;
  /* tensors that asked retain_grad(), not owned */
  dl_tensor *retained[DL_NODE_MAX_OUTPUTS];
  /* backward-pass scratch */
  uint64_t walk_id;
  int deps;
  dl_tensor *gbuf[DL_NODE_MAX_OUTPUTS];
  uint8_t gbuf_owned; /* bit k: gbuf[k] is the engine's own (may be added to in place) */
  /* op-specific: sizes, dims, scalars */
  _Alignas(16) unsigned char ctx[DL_NODE_CTX_BYTES];
} dl_node;

/* ---- grad mode ---- */
bool dl_grad_enabled(void);
/* returns the previous mode */
bool dl_set_grad_enabled(bool on);

/* ---- recording (used by the differentiable front-ends) ---- */
/* true when an op on these inputs must record: grad mode on and one of
 * them requires grad. NULL entries are skipped. */
bool dl_ag_needs_grad(dl_tensor *const *inputs, int n);
static inline bool dl_ag_needs1(const dl_tensor *a) { return a->requires_grad && dl_grad_enabled(); }
/* A node with edges to inputs (NULL inputs or ones not requiring grad get
 * empty edges), and `noutputs` outputs. NULL on OOM. */
dl_node *dl_node_new(const dl_node_type *type, dl_tensor *const *inputs, int ninputs, int noutputs);
/* Saves t for the backward rule (slot = order of calls). */
void dl_node_save(dl_node *n, dl_tensor *t);
/* Saves output k of this node (no reference cycle is kept). */
void dl_node_save_output(dl_node *n, dl_tensor *out, int k);
/* The saved tensor in slot i: a new reference, or NULL with an error when it
 * was modified in place since (naming the op) or freed by an earlier backward.
 * A saved output comes back with this node as grad_fn when recording. */
dl_tensor *dl_node_saved(dl_node *n, int i);
/* Attaches output k: out->grad_fn = n (takes a node reference), requires_grad. */
void dl_node_set_output(dl_node *n, dl_tensor *out, int k);
dl_node *dl_node_retain(dl_node *n);
void dl_node_release(dl_node *n);
/* Convenience for ops with one output: dl_node_new + dl_node_set_output. */
dl_node *dl_ag_record(const dl_node_type *type, dl_tensor *const *inputs, int ninputs, dl_tensor *out);

/* ---- backward ---- */
/* Accumulates d(roots)/d(leaves) into leaves' .grad. grads[i] may be NULL
 * for a scalar root (ones). */
int dl_backward(dl_tensor *const *roots, dl_tensor *const *grads, int nroots, bool retain_graph,
                bool create_graph);
/* Gradients of roots w.r.t. inputs (returned in out[], new references, NULL
 * where unreachable and allow_unused), without touching .grad. */
int dl_autograd_grad(dl_tensor *const *roots, dl_tensor *const *grads, int nroots, dl_tensor *const *inputs,
                     int ninputs, bool retain_graph, bool create_graph, bool allow_unused, dl_tensor **out);

/* ---- gradient hooks ----
 * A leaf's grad_hook is told when a backward pass has accumulated the last
 * contribution it makes to the leaf's .grad (PyTorch's post-accumulate-grad
 * hook; DistributedDataParallel starts communication from it). The group's
 * finish runs once at the end of every backward pass in which a member's
 * ready ran (ok false when the pass failed). autograd.grad, which does not
 * touch .grad, calls neither. */
typedef struct dl_grad_hook_group {
  int (*finish)(struct dl_grad_hook_group *g, bool ok);
} dl_grad_hook_group;
typedef struct dl_grad_hook {
  int (*ready)(struct dl_grad_hook *h, dl_tensor *leaf);
  dl_grad_hook_group *group;
  /* the engine's scratch: contributions still to come in pass `walk` */
  uint64_t walk;
  int pending;
} dl_grad_hook;

/* ---- tensor-level helpers ---- */
/* A view sharing storage, with no grad_fn and requires_grad false. */
dl_tensor *dl_tensor_detach(dl_tensor *t);
/* Error unless t may be written in place now (leaf requiring grad while
 * recording). fn names the op. */
int dl_ag_check_inplace(const char *fn, const dl_tensor *t);
/* Drops grad_fn / retained slots when a tensor dies (called by
 * dl_tensor_release). */
void dl_autograd_clear(dl_tensor *t);

/* Sums g over broadcast dims back to shape (for broadcasting ops' backward).
 * New reference (g itself, retained, when shapes already match). */
dl_tensor *dl_ag_sum_to(dl_tensor *g, const int64_t *shape, int ndim);

/* A recorded view whose storage was written since its history was derived
 * (in place through its base or through another view of it) derives it
 * again from the base's current history, as PyTorch regenerates a view's
 * grad_fn: the old node would route the gradient around the write. Called
 * wherever a tensor's history is read: recording, backward's roots, the
 * grad_fn and is_leaf accessors. 0, or -1 (out of memory). */
int dl_ag_view_rederive(dl_tensor *view);
static inline int dl_ag_refresh_view(dl_tensor *t) {
  return t->base && t->view_version != t->storage->version ? dl_ag_view_rederive(t) : 0;
}

/* ---- forward mode ---- */
static inline bool dl_fw_any(dl_tensor *const *inputs, int n) {
  for (int i = 0; i < n; i++)
    if (inputs[i] && inputs[i]->tangent) return true;
  return false;
}
/* the tangent of t, or a zeros tensor like t when it has none (new reference) */
dl_tensor *dl_fw_tangent_or_zeros(dl_tensor *t);
/* out->tangent = tangent (takes the reference); NULL tangent is an error */
int dl_fw_set(dl_tensor *out, dl_tensor *tangent);
/* the same after an in-place op on self: written into the tangent self's
 * views share (grad_view.c) */
int dl_fw_set_inplace(dl_tensor *self, dl_tensor *tangent);

#endif
