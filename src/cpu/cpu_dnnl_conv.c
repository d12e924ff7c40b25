/* cpu_dnnl_conv.c — the CPU's fused float32 convolution (dl_conv.h) on
 * oneDNN, the engine PyTorch runs convolution through on this machine.
 * oneDNN picks its own blocked layouts ("any"); plain NC* tensors are
 * reordered in and out around each primitive. Primitives, their reorders
 * and their blocked buffers are made once per problem and kept in a small
 * per-thread cache (each thread has its own engine and stream, so dlua
 * states in several host threads never share one). Built when the oneDNN
 * headers are present (DL_HAVE_DNNL); without them the backend has no
 * fused convolution and the op composes im2col and GEMMs. */
#include "../ops/dl_conv.h"
#include "cpu_conv.h"

#ifdef DL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

#include <string.h>

enum { FWD, BWD_DATA, BWD_WEIGHTS };

typedef struct {
  int kind, nd;
  bool bias;
  int64_t N, C, O, groups, S[DL_CONV_MAX_SPATIAL], k[DL_CONV_MAX_SPATIAL], s[DL_CONV_MAX_SPATIAL],
      d[DL_CONV_MAX_SPATIAL], lo[DL_CONV_MAX_SPATIAL], hi[DL_CONV_MAX_SPATIAL];
} conv_key;

/* one operand of a primitive: the plain tensor's memory, and where the
 * primitive wants another layout, its buffer and the reorder between them */
typedef struct {
  int arg;
  bool output;
  dnnl_memory_t user, inner;
  dnnl_primitive_t reorder;
  dnnl_memory_t blocked; /* the inner layout over a caller's buffer (the _c16 entries), made on first use */
  bool c16;              /* the inner layout is nChw16c (blocks of 16 channels) */
} slot;

#define MAX_SLOTS 4
typedef struct {
  conv_key key;
  uint64_t used; /* last use, for eviction */
  dnnl_primitive_t prim;
  int nslots;
  slot slots[MAX_SLOTS];
} entry;

/* the CNN demo's three convolutions hold 9 entries (forward, both backward passes) */
#define CACHE 16
static _Thread_local dnnl_engine_t engine;
static _Thread_local dnnl_stream_t stream;
static _Thread_local entry cache[CACHE];
static _Thread_local uint64_t clock_;

static int failed(dnnl_status_t s, const char *what) {
  if (s == dnnl_success) return 0;
  dl_error_set("cpu: oneDNN %s failed (status %d)", what, (int)s);
  return -1;
}
#define TRY(call, what) \
  do {                  \
    if (failed((call), what)) goto fail; \
  } while (0)

static void entry_free(entry *e) {
  if (e->prim) dnnl_primitive_destroy(e->prim);
  for (int i = 0; i < e->nslots; i++) {
    slot *s = &e->slots[i];
    if (s->reorder) dnnl_primitive_destroy(s->reorder);
    if (s->inner) dnnl_memory_destroy(s->inner);
    if (s->user) dnnl_memory_destroy(s->user);
    if (s->blocked) dnnl_memory_destroy(s->blocked);
  }
  memset(e, 0, sizeof *e);
}

/* the plain layouts of images and weights for nd spatial dims */
static dnnl_format_tag_t data_tag(int nd) { return nd == 1 ? dnnl_ncw : nd == 2 ? dnnl_nchw : dnnl_ncdhw; }
static dnnl_format_tag_t weight_tag(int nd, bool grouped) {
  if (grouped) return nd == 1 ? dnnl_goiw : nd == 2 ? dnnl_goihw : dnnl_goidhw;
  return nd == 1 ? dnnl_oiw : nd == 2 ? dnnl_oihw : dnnl_oidhw;
}

/* plain and "any" descriptors of the image, weights and output of key */
/* A pointwise (1x1, stride 1, unpadded, ungrouped) convolution is one
 * GEMM per image over plain N C (spatial) data: oneDNN's gemm
 * implementation runs it on the plain tensors as fast as its blocked 1x1
 * kernel runs on reordered ones, and the reorders in and out are saved —
 * a depthwise-separable block [32, 64, 32, 32] -> 128 channels spent
 * 15.5 ms a step in reorders, 4.6 with this (docs/reference/cnn.md). */
static bool plain_data(const conv_key *k) {
  if (k->groups != 1) return false;
  for (int i = 0; i < k->nd; i++)
    if (k->k[i] != 1 || k->s[i] != 1 || k->lo[i] != 0 || k->hi[i] != 0) return false;
  return true;
}

static int descs(const conv_key *k, dnnl_memory_desc_t *src, dnnl_memory_desc_t *wei, dnnl_memory_desc_t *dst,
                 dnnl_memory_desc_t *bias, dnnl_format_tag_t tag) {
  dnnl_dims_t sd = {k->N, k->C}, dd = {k->N, k->O}, wd, bd = {k->O};
  int64_t out[DL_CONV_MAX_SPATIAL];
  for (int i = 0; i < k->nd; i++) {
    sd[2 + i] = k->S[i];
    out[i] = (k->S[i] + k->lo[i] + k->hi[i] - k->d[i] * (k->k[i] - 1) - 1) / k->s[i] + 1;
    dd[2 + i] = out[i];
  }
  int wn;
  if (k->groups == 1) {
    wd[0] = k->O, wd[1] = k->C, wn = 2;
  } else {
    wd[0] = k->groups, wd[1] = k->O / k->groups, wd[2] = k->C / k->groups, wn = 3;
  }
  for (int i = 0; i < k->nd; i++) wd[wn + i] = k->k[i];
  bool any = tag == dnnl_format_tag_any, plain = plain_data(k);
  if (dnnl_memory_desc_init_by_tag(src, 2 + k->nd, sd, dnnl_f32, any && !plain ? tag : data_tag(k->nd)) ||
      dnnl_memory_desc_init_by_tag(dst, 2 + k->nd, dd, dnnl_f32, any && !plain ? tag : data_tag(k->nd)) ||
      dnnl_memory_desc_init_by_tag(wei, wn + k->nd, wd, dnnl_f32, any ? tag : weight_tag(k->nd, k->groups > 1)) ||
      dnnl_memory_desc_init_by_tag(bias, 1, bd, dnnl_f32, dnnl_x)) {
    dl_error_set("cpu: oneDNN memory descriptors failed");
    return -1;
  }
  return 0;
}

/* Winograd F(4x4, 3x3) for 3x3 stride-1 undilated ungrouped 2-D
 * convolutions with enough channels: forward + both backward passes of a
 * [32, 64, 32, 32] 64 -> 64 layer take 31 ms instead of 60 at one thread,
 * while with few channels or small images the tile transforms cost more
 * than they save (16 -> 32 channels on 14x14: 0.68x; 1 input channel:
 * 5x slower) — figures from a grid over 16..128 channels, 8..32 pixels,
 * batch 32 and 128 (docs/reference/cnn.md). oneDNN implements it on
 * AVX-512 CPUs; elsewhere creating it fails and the direct algorithm is
 * used. Its float32 error is ~4x the direct one's (relative ~2e-6). */
static bool wants_winograd(const conv_key *k) {
  if (k->nd != 2 || k->groups != 1 || k->C < 32 || k->O < 32) return false;
  for (int i = 0; i < 2; i++)
    if (k->k[i] != 3 || k->s[i] != 1 || k->d[i] != 1) return false;
  return k->C * k->O >= 2048 || k->S[0] * k->S[1] >= 28 * 28;
}

/* the operation descriptor of kind over "any" layouts */
static int op_desc(const conv_key *k, int kind, dnnl_alg_kind_t alg, dnnl_convolution_desc_t *cd) {
  dnnl_memory_desc_t src, wei, dst, bias;
  if (descs(k, &src, &wei, &dst, &bias, dnnl_format_tag_any)) return -1;
  dnnl_dims_t st, dil, pl, pr;
  for (int i = 0; i < k->nd; i++) st[i] = k->s[i], dil[i] = k->d[i] - 1, pl[i] = k->lo[i], pr[i] = k->hi[i];
  dnnl_status_t s;
  if (kind == FWD)
    s = dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_training, alg, &src, &wei,
                                                   k->bias ? &bias : NULL, &dst, st, dil, pl, pr);
  else if (kind == BWD_DATA)
    s = dnnl_dilated_convolution_backward_data_desc_init(cd, alg, &src, &wei, &dst, st, dil, pl, pr);
  else
    s = dnnl_dilated_convolution_backward_weights_desc_init(cd, alg, &src, &wei,
                                                            k->bias ? &bias : NULL, &dst, st, dil, pl, pr);
  return failed(s, "convolution descriptor");
}

/* a slot for arg: the plain memory, and a buffer plus reorder where the
 * primitive's layout differs */
static int add_slot(entry *e, dnnl_primitive_desc_t pd, int arg, const dnnl_memory_desc_t *plain, bool output) {
  slot *s = &e->slots[e->nslots++];
  s->arg = arg, s->output = output;
  const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
  if (failed(dnnl_memory_create(&s->user, plain, engine, DNNL_MEMORY_NONE), "memory")) return -1;
  if (!want || dnnl_memory_desc_equal(want, plain)) return 0;
  if (failed(dnnl_memory_create(&s->inner, want, engine, DNNL_MEMORY_ALLOCATE), "memory")) return -1;
  dnnl_memory_desc_t c16;
  s->c16 = want->ndims == 4 &&
           dnnl_memory_desc_init_by_tag(&c16, 4, want->dims, dnnl_f32, dnnl_nChw16c) == dnnl_success &&
           dnnl_memory_desc_equal(want, &c16);
  dnnl_primitive_desc_t rpd;
  if (failed(output ? dnnl_reorder_primitive_desc_create(&rpd, want, engine, plain, engine, NULL)
                    : dnnl_reorder_primitive_desc_create(&rpd, plain, engine, want, engine, NULL),
             "reorder"))
    return -1;
  dnnl_status_t st = dnnl_primitive_create(&s->reorder, rpd);
  dnnl_primitive_desc_destroy(rpd);
  return failed(st, "reorder");
}

/* the cached (or new) primitive for key */
static entry *get(const conv_key *key) {
  if (!engine) {
    if (failed(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine")) return NULL;
    if (failed(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "stream")) return NULL;
  }
  clock_++;
  entry *victim = &cache[0];
  for (int i = 0; i < CACHE; i++) {
    if (cache[i].prim && memcmp(&cache[i].key, key, sizeof *key) == 0) {
      cache[i].used = clock_;
      return &cache[i];
    }
    if (cache[i].used < victim->used) victim = &cache[i];
  }
  entry_free(victim);
  entry *e = victim;
  e->key = *key;
  e->used = clock_;
  dnnl_primitive_desc_t fwd = NULL, pd = NULL;
  dnnl_convolution_desc_t cd;
  dnnl_memory_desc_t src, wei, dst, bias;
  if (descs(key, &src, &wei, &dst, &bias, dnnl_format_tag_undef)) goto fail;
  dnnl_alg_kind_t alg = dnnl_convolution_direct;
  if (wants_winograd(key) && op_desc(key, FWD, dnnl_convolution_winograd, &cd) == 0 &&
      dnnl_primitive_desc_create(&fwd, &cd, NULL, engine, NULL) == dnnl_success)
    alg = dnnl_convolution_winograd;
  else {
    if (op_desc(key, FWD, alg, &cd)) goto fail;
    TRY(dnnl_primitive_desc_create(&fwd, &cd, NULL, engine, NULL), "convolution");
  }
  if (key->kind == FWD) {
    pd = fwd;
    fwd = NULL;
  } else {
    if (op_desc(key, key->kind, alg, &cd)) goto fail;
    TRY(dnnl_primitive_desc_create(&pd, &cd, NULL, engine, fwd), "convolution backward");
  }
  TRY(dnnl_primitive_create(&e->prim, pd), "convolution primitive");
  int rc = 0;
  if (key->kind == FWD) {
    rc = add_slot(e, pd, DNNL_ARG_SRC, &src, false) || add_slot(e, pd, DNNL_ARG_WEIGHTS, &wei, false) ||
         (key->bias && add_slot(e, pd, DNNL_ARG_BIAS, &bias, false)) || add_slot(e, pd, DNNL_ARG_DST, &dst, true);
  } else if (key->kind == BWD_DATA) {
    rc = add_slot(e, pd, DNNL_ARG_DIFF_DST, &dst, false) || add_slot(e, pd, DNNL_ARG_WEIGHTS, &wei, false) ||
         add_slot(e, pd, DNNL_ARG_DIFF_SRC, &src, true);
  } else {
    rc = add_slot(e, pd, DNNL_ARG_SRC, &src, false) || add_slot(e, pd, DNNL_ARG_DIFF_DST, &dst, false) ||
         add_slot(e, pd, DNNL_ARG_DIFF_WEIGHTS, &wei, true) ||
         (key->bias && add_slot(e, pd, DNNL_ARG_DIFF_BIAS, &bias, true));
  }
  if (rc) goto fail;
  dnnl_primitive_desc_destroy(pd);
  return e;
fail:
  if (fwd) dnnl_primitive_desc_destroy(fwd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  entry_free(e);
  return NULL;
}

/* runs e with the slots' plain data at ptrs (in slot order); a slot i with
 * given[i] (given may be NULL) takes that memory, already in the layout it
 * wants (no reorder either way) */
static int run_with(entry *e, void *const *ptrs, const dnnl_memory_t *given) {
  dnnl_exec_arg_t args[MAX_SLOTS];
  for (int i = 0; i < e->nslots; i++) {
    slot *s = &e->slots[i];
    args[i].arg = s->arg;
    if (given && given[i]) {
      args[i].memory = given[i];
      continue;
    }
    if (failed(dnnl_memory_set_data_handle(s->user, ptrs[i]), "memory")) return -1;
    args[i].memory = s->inner ? s->inner : s->user;
    if (s->reorder && !s->output) {
      dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, s->user}, {DNNL_ARG_TO, s->inner}};
      if (failed(dnnl_primitive_execute(s->reorder, stream, 2, r), "reorder")) return -1;
    }
  }
  if (failed(dnnl_primitive_execute(e->prim, stream, e->nslots, args), "convolution")) return -1;
  for (int i = 0; i < e->nslots; i++) {
    slot *s = &e->slots[i];
    if (s->reorder && s->output && !(given && given[i])) {
      dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, s->inner}, {DNNL_ARG_TO, s->user}};
      if (failed(dnnl_primitive_execute(s->reorder, stream, 2, r), "reorder")) return -1;
    }
  }
  return failed(dnnl_stream_wait(stream), "stream");
}
static int run(entry *e, void *const *ptrs) { return run_with(e, ptrs, NULL); }

static conv_key key_of(int kind, const dl_tensor *x, const dl_tensor *w, bool bias, const dl_conv_params *p) {
  conv_key k;
  memset(&k, 0, sizeof k); /* padding bytes too: keys are compared with memcmp */
  k.kind = kind, k.nd = p->w.nd, k.bias = bias;
  k.N = x->shape[0], k.C = x->shape[1], k.O = w->shape[0], k.groups = p->groups;
  for (int i = 0; i < k.nd; i++) {
    k.S[i] = x->shape[2 + i], k.k[i] = p->w.kernel[i], k.s[i] = p->w.stride[i], k.d[i] = p->w.dilation[i];
    k.lo[i] = p->w.pad_lo[i], k.hi[i] = p->w.pad_hi[i];
  }
  return k;
}

int dl_cpu_dnnl_conv_forward(dl_tensor *y, const dl_tensor *x, const dl_tensor *w, const dl_tensor *b,
                             const dl_conv_params *p) {
  conv_key k = key_of(FWD, x, w, b != NULL, p);
  entry *e = get(&k);
  if (!e) return DL_KERNEL_FAILED;
  void *ptrs[4] = {dl_tensor_data(x), dl_tensor_data(w)};
  int n = 2;
  if (b) ptrs[n++] = dl_tensor_data(b);
  ptrs[n] = dl_tensor_data(y);
  return run(e, ptrs) ? DL_KERNEL_FAILED : DL_KERNEL_OK;
}

int dl_cpu_dnnl_conv_backward_data(dl_tensor *gx, const dl_tensor *gy, const dl_tensor *w, const dl_conv_params *p) {
  conv_key k = key_of(BWD_DATA, gx, w, false, p);
  entry *e = get(&k);
  if (!e) return DL_KERNEL_FAILED;
  void *ptrs[3] = {dl_tensor_data(gy), dl_tensor_data(w), dl_tensor_data(gx)};
  return run(e, ptrs) ? DL_KERNEL_FAILED : DL_KERNEL_OK;
}

/* the weights of a convolution of x into gy: gw, or scratch of w's shape */
static dl_tensor *weight_scratch(const dl_tensor *gy, const dl_tensor *x, const dl_conv_params *p) {
  int64_t wshape[2 + DL_CONV_MAX_SPATIAL] = {gy->shape[1], x->shape[1] / p->groups};
  for (int i = 0; i < p->w.nd; i++) wshape[2 + i] = p->w.kernel[i];
  return dl_tensor_empty(wshape, 2 + p->w.nd, DL_FLOAT32, dl_tensor_device(x));
}

/* The slots of the output gradient: BWD_DATA's first, BWD_WEIGHTS's second
 * (get's order). Where both want it reordered to the same layout, the
 * weights pass reads the data pass's copy: the output gradient of the
 * CNN demo's 64-channel 14x14 layer is 6.4 MB a step. */
int dl_cpu_dnnl_conv_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                              const dl_tensor *w, const dl_conv_params *p) {
  dl_tensor *scratch = gw ? NULL : weight_scratch(gy, x, p);
  if (!gw && !scratch) return DL_KERNEL_FAILED;
  dl_tensor *wt = gw ? gw : scratch;
  conv_key kd = key_of(BWD_DATA, gx, w, false, p), kw = key_of(BWD_WEIGHTS, x, wt, gb != NULL, p);
  /* (the second get cannot evict the first: the cache drops its least recently used entry) */
  entry *ed = get(&kd), *ew = ed ? get(&kw) : NULL;
  int rc = DL_KERNEL_FAILED;
  if (ed && ew) {
    void *pd[3] = {dl_tensor_data(gy), dl_tensor_data(w), dl_tensor_data(gx)};
    void *pw[4] = {dl_tensor_data(x), dl_tensor_data(gy), dl_tensor_data(wt), gb ? dl_tensor_data(gb) : NULL};
    const slot *sd = &ed->slots[0], *sw = &ew->slots[1];
    const dnnl_memory_desc_t *md = NULL, *mw = NULL;
    bool share = sd->arg == DNNL_ARG_DIFF_DST && sw->arg == DNNL_ARG_DIFF_DST && sd->inner && sw->inner &&
                 dnnl_memory_get_memory_desc(sd->inner, &md) == dnnl_success &&
                 dnnl_memory_get_memory_desc(sw->inner, &mw) == dnnl_success && dnnl_memory_desc_equal(md, mw);
    const dnnl_memory_t given[MAX_SLOTS] = {NULL, share ? sd->inner : NULL};
    if (run(ed, pd) == 0 && run_with(ew, pw, given) == 0) rc = DL_KERNEL_OK;
  }
  dl_tensor_release(scratch);
  return rc;
}

/* oneDNN computes weights and bias gradients together; a gradient not
 * asked for goes to scratch */
int dl_cpu_dnnl_conv_backward_weights(dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                                      const dl_conv_params *p) {
  dl_tensor *scratch = gw ? NULL : weight_scratch(gy, x, p);
  if (!gw && !scratch) return DL_KERNEL_FAILED;
  dl_tensor *wt = gw ? gw : scratch;
  conv_key k = key_of(BWD_WEIGHTS, x, wt, gb != NULL, p);
  entry *e = get(&k);
  int rc = DL_KERNEL_FAILED;
  if (e) {
    void *ptrs[4] = {dl_tensor_data(x), dl_tensor_data(gy), dl_tensor_data(wt), gb ? dl_tensor_data(gb) : NULL};
    rc = run(e, ptrs) ? DL_KERNEL_FAILED : DL_KERNEL_OK;
  }
  dl_tensor_release(scratch);
  return rc;
}

/* ---- the output in blocks of 16 channels ----
 * The forward's output and the backward's output gradient in the layout
 * the primitives compute in, nChw16c ([N, O / 16, H, W, 16]), so batch
 * norm's kernels read and write it there (cpu_bn_c16.c) and neither is
 * reordered: for the CNN demo ~2.5 ms of a 25 ms step at two threads. */

/* the slot of arg in e, or -1 */
static int slot_of(const entry *e, int arg) {
  for (int i = 0; i < e->nslots; i++)
    if (e->slots[i].arg == arg) return i;
  return -1;
}

/* whether e's primitive takes arg in nChw16c (and not the plain layout) */
static bool slot_c16(const entry *e, int arg) {
  const int i = slot_of(e, arg);
  return i >= 0 && e->slots[i].c16;
}

/* slot i's layout over data (a memory made once, its handle set per call) */
static dnnl_memory_t blocked_over(entry *e, int i, void *data) {
  slot *s = &e->slots[i];
  const dnnl_memory_desc_t *md = NULL;
  if (!s->blocked && (failed(dnnl_memory_get_memory_desc(s->inner, &md), "memory") ||
                      failed(dnnl_memory_create(&s->blocked, md, engine, DNNL_MEMORY_NONE), "memory")))
    return NULL;
  return failed(dnnl_memory_set_data_handle(s->blocked, data), "memory") ? NULL : s->blocked;
}

/* whether slot arg of a and of b want one layout (both blocked) */
static bool same_inner(const entry *a, const entry *b, int arg) {
  const int i = slot_of(a, arg), j = slot_of(b, arg);
  const dnnl_memory_desc_t *ma = NULL, *mb = NULL;
  return i >= 0 && j >= 0 && a->slots[i].inner && b->slots[j].inner &&
         dnnl_memory_get_memory_desc(a->slots[i].inner, &ma) == dnnl_success &&
         dnnl_memory_get_memory_desc(b->slots[j].inner, &mb) == dnnl_success && dnnl_memory_desc_equal(ma, mb);
}

int dl_cpu_dnnl_conv_c16(const dl_tensor *x, const dl_tensor *w, bool bias, const dl_conv_params *p) {
  if (p->w.nd != 2 || x->dtype != DL_FLOAT32 || w->shape[0] % 16 != 0) return 0;
  conv_key kf = key_of(FWD, x, w, bias, p), kd = key_of(BWD_DATA, x, w, false, p),
           kw = key_of(BWD_WEIGHTS, x, w, bias, p);
  /* (three entries: none evicts another, the cache drops its least recently used) */
  entry *ef = get(&kf), *ed = ef ? get(&kd) : NULL, *ew = ed ? get(&kw) : NULL;
  if (!ew || !slot_c16(ef, DNNL_ARG_DST) || !slot_c16(ed, DNNL_ARG_DIFF_DST) || !slot_c16(ew, DNNL_ARG_DIFF_DST))
    return 0;
  /* (with C not a multiple of 16 the blocks are padded: [N, C / 16, ...] would not hold them) */
  const bool in = x->shape[1] % 16 == 0 && slot_c16(ef, DNNL_ARG_SRC) && same_inner(ef, ew, DNNL_ARG_SRC);
  return DL_CONV_C16_OUT | (in ? DL_CONV_C16_IN : 0);
}

/* e (from get) with its c16 operands over caller's buffers: arg over data,
 * and arg2 (0: none) over data2; ptrs as run's */
static int run_c16(entry *e, void *const *ptrs, int arg, void *data, int arg2, void *data2) {
  if (!e) return -1;
  dnnl_memory_t given[MAX_SLOTS] = {NULL};
  const int args[2] = {arg, arg2};
  void *const datas[2] = {data, data2};
  for (int k = 0; k < 2 && args[k]; k++) {
    const int i = slot_of(e, args[k]);
    if (i < 0 || !e->slots[i].c16) {
      dl_error_set("cpu: this convolution does not compute in blocks of 16 channels");
      return -1;
    }
    if (!(given[i] = blocked_over(e, i, datas[k]))) return -1;
  }
  return run_with(e, ptrs, given);
}

/* x reordered into xb, the forward's source layout (slot SRC of e) */
static int reorder_src(entry *e, const dl_tensor *x, dl_tensor *xb) {
  const int i = e ? slot_of(e, DNNL_ARG_SRC) : -1;
  if (i < 0 || !e->slots[i].c16) {
    dl_error_set("cpu: this convolution does not read its input in blocks of 16 channels");
    return -1;
  }
  slot *s = &e->slots[i];
  dnnl_memory_t to = blocked_over(e, i, dl_tensor_data(xb));
  if (!to || failed(dnnl_memory_set_data_handle(s->user, dl_tensor_data(x)), "memory")) return -1;
  dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, s->user}, {DNNL_ARG_TO, to}};
  return failed(dnnl_primitive_execute(s->reorder, stream, 2, r), "reorder");
}

int dl_cpu_dnnl_conv_forward_c16(dl_tensor *yb, dl_tensor *xb, const dl_tensor *x, const dl_tensor *w,
                                 const dl_tensor *b, const dl_conv_params *p) {
  conv_key k = key_of(FWD, x, w, b != NULL, p);
  entry *e = get(&k);
  void *ptrs[4] = {dl_tensor_data(x), dl_tensor_data(w)};
  int n = 2;
  if (b) ptrs[n++] = dl_tensor_data(b);
  ptrs[n] = NULL; /* the output slot: given */
  if (!e || (xb && reorder_src(e, x, xb))) return DL_KERNEL_FAILED;
  return run_c16(e, ptrs, DNNL_ARG_DST, dl_tensor_data(yb), xb ? DNNL_ARG_SRC : 0, xb ? dl_tensor_data(xb) : NULL)
             ? DL_KERNEL_FAILED
             : DL_KERNEL_OK;
}

int dl_cpu_dnnl_conv_backward_c16(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gyb,
                                  const dl_tensor *xb, const dl_tensor *x, const dl_tensor *w, bool has_bias,
                                  const dl_conv_params *p) {
  if (gx) {
    conv_key kd = key_of(BWD_DATA, gx, w, false, p);
    void *pd[3] = {NULL, dl_tensor_data(w), dl_tensor_data(gx)};
    if (run_c16(get(&kd), pd, DNNL_ARG_DIFF_DST, dl_tensor_data(gyb), 0, NULL)) return DL_KERNEL_FAILED;
  }
  if (!gw && !gb) return DL_KERNEL_OK;
  /* the weights' pass of the problem conv_c16 checked: with the bias's gradient where the convolution has a
   * bias, wanted or not (scratch for what is not wanted) */
  const int64_t bshape[1] = {w->shape[0]};
  dl_tensor *sw = gw ? NULL : dl_tensor_empty(w->shape, w->ndim, DL_FLOAT32, dl_tensor_device(w));
  dl_tensor *sb = gb || !has_bias ? NULL : dl_tensor_empty(bshape, 1, DL_FLOAT32, dl_tensor_device(w));
  int rc = DL_KERNEL_FAILED;
  if ((gw || sw) && (gb || sb || !has_bias)) {
    dl_tensor *wt = gw ? gw : sw, *bt = gb ? gb : sb;
    conv_key kw = key_of(BWD_WEIGHTS, x, wt, has_bias, p);
    void *pw[4] = {dl_tensor_data(x), NULL, dl_tensor_data(wt), bt ? dl_tensor_data(bt) : NULL};
    rc = run_c16(get(&kw), pw, DNNL_ARG_DIFF_DST, dl_tensor_data(gyb), xb ? DNNL_ARG_SRC : 0,
                 xb ? dl_tensor_data(xb) : NULL)
             ? DL_KERNEL_FAILED
             : DL_KERNEL_OK;
  }
  dl_tensor_release(sw);
  dl_tensor_release(sb);
  return rc;
}

#endif
