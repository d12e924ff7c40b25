/* grad_ewise_impl.h — what the element-wise autograd files share.
 *
 * Every element-wise op is a function of at most three broadcast operands,
 * so one machinery serves them all: the op's rule gives, for operand k, the
 * product of its local derivative with a tensor v (ew_local). The backward
 * rule applies it to the output gradient and sums the result back to
 * operand k's shape and dtype; the jvp rule applies it to each operand's
 * tangent and adds the terms. Rules use the differentiable dl_ag_* ops on
 * saved tensors, so create_graph gives higher derivatives; masks (which
 * elements a clamp lets through, ties of maximum) are constants. */
#ifndef GRAD_EWISE_IMPL_H
#define GRAD_EWISE_IMPL_H

#include "dl_ag_ewise.h"
#include "dl_autograd.h"

typedef enum {
  EW_BINARY,      /* (a, b), op is a dl_binop */
  EW_UNARY,       /* (a), op is a dl_unop */
  EW_CLAMP,       /* (x, lo, hi), a bound may be absent */
  EW_LERP,        /* (a, end, w) */
  EW_ADDCMUL,     /* (a, t1, t2), alpha = value */
  EW_ADDCDIV,     /* (a, t1, t2), alpha = value */
  EW_WHERE,       /* (cond, a, b) */
  EW_MASKED_FILL, /* (a, mask, value) */
} ew_kind;

#define EW_MAXIN 3

/* the node's ctx; numbers are kept as doubles (only floating-point results
 * record) */
typedef struct {
  int64_t shape[EW_MAXIN][DL_MAX_DIMS];
  double s[EW_MAXIN]; /* number operands */
  double alpha;       /* add/sub alpha, addcmul/addcdiv value */
  int8_t ndim[EW_MAXIN];
  uint8_t dtype[EW_MAXIN];
  uint8_t kind, op, nin, out_dtype;
  uint8_t present;   /* bit k: operand k is given (tensor or number) */
  uint8_t is_tensor; /* bit k: operand k is a tensor */
  int8_t slot[EW_MAXIN], slot_y; /* saved-tensor slots, -1: not saved */
} ew_ctx;
_Static_assert(sizeof(ew_ctx) <= DL_NODE_CTX_BYTES, "ew_ctx fits a node");

static inline bool ew_has(const ew_ctx *c, int k) { return (c->present >> k) & 1; }
static inline bool ew_is_tensor(const ew_ctx *c, int k) { return (c->is_tensor >> k) & 1; }
/* a tensor that requires grad or carries a tangent: leaves the fast path */
static inline bool ew_active(const dl_tensor *t) { return t && (t->requires_grad || t->tangent); }

/* ctx for an op with operands ops[0..n); bit k of present: operand k is
 * given. Shapes and slots are filled when it records. */
void ew_ctx_init(ew_ctx *c, ew_kind kind, int op, int n, const dl_operand *ops, unsigned present);

/* After an out-of-place forward: records the node and sets the tangent as
 * needed. in[k]: operand k when a tensor, else NULL. Returns out, or NULL
 * (out released) on error. */
dl_tensor *ew_record(ew_ctx *c, dl_tensor *const *in, dl_tensor *out);

/* In place on in[0]: ew_inplace_begin before the write (checks, node with
 * the old history, old values saved), ew_inplace_end after it with the
 * write's status (attaches the history and the tangent). */
typedef struct {
  dl_node *node;
  bool save_y;
  bool fw;
  dl_tensor *x[EW_MAXIN];  /* detached operand values for the jvp */
  dl_tensor *tg[EW_MAXIN]; /* operands' tangents */
} ew_pending;
int ew_inplace_begin(ew_ctx *c, const char *name, dl_tensor *const *in, ew_pending *p);
int ew_inplace_end(ew_ctx *c, dl_tensor *const *in, ew_pending *p, int rc);

/* the backward rule of every element-wise node */
int ew_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin);

/* ---- the rules (grad_ewise_rules.c) ---- */
/* d out / d operand k times v, unreduced (broadcasts to the output's
 * shape). x[j]: operand j's value (a 0-d tensor for a number; NULL when the
 * rule does not use it), y: the output (NULL when unused). New reference or
 * NULL with an error. */
dl_tensor *ew_local(const ew_ctx *c, int k, dl_tensor *const *x, dl_tensor *y, dl_tensor *v);
/* which values the rule for operand k uses: sets x[j] and *y (or-ing) */
void ew_uses(const ew_ctx *c, int k, bool *x, bool *y);
/* the node type ("MulBackward0") */
const dl_node_type *ew_type(const ew_ctx *c);
/* the op's Lua name with "_" ("add_"), for in-place errors */
const char *ew_inplace_name(const ew_ctx *c);

#endif
