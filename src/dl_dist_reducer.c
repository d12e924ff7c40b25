/* dl_dist_reducer.c — gradient averaging during backward, for
 * DistributedDataParallel (dl_dist.h). Each parameter carries an autograd
 * grad hook; when a bucket's last gradient is final its non-blocking
 * all-reduce starts, so communication overlaps the rest of backward. Buckets
 * start strictly in index order (the same on every rank, whatever order the
 * graph finishes them in); the hook group's finish, at the end of backward,
 * starts what is left and waits; each .grad is then a view of its bucket,
 * holding the mean over the ranks (each gradient was divided by the world
 * size on its way into the bucket). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/dl_autograd.h"
#include "dl_dist_internal.h"

struct dl_dist_reducer;

typedef struct {
  dl_grad_hook hook; /* first: the engine hands this back */
  struct dl_dist_reducer *r;
  dl_tensor *param;
  int bucket;
  int64_t offset; /* in the bucket's flat buffer */
  dl_tensor *view; /* the parameter's part of the flat buffer, in its shape */
} param_slot;

typedef struct {
  dl_tensor *flat; /* the bucket's gradients, back to back */
  int first, count; /* its parameters: slots[first .. first+count) */
  int pending;      /* parameters not final yet in this pass */
  int req;          /* the running all-reduce, -1 when none */
  bool done;        /* its all-reduce has completed */
} bucket;

struct dl_dist_reducer {
  dl_grad_hook_group group; /* first: the engine hands this back */
  int nparams, nbuckets;
  param_slot *slots;
  bucket *buckets;
  int next;    /* the next bucket to start */
  bool sync;   /* off inside no_sync */
  bool active; /* a backward pass has started one of its hooks */
  bool freed;  /* freed by its owner during a pass: the pass's end frees it */
  bool find_unused; /* a parameter no rank used keeps .grad nil */
  uint8_t *used;    /* per slot: had a gradient this pass (find_unused) */
  const dl_dist_transport *tr;
  int world;
};

/* the reducer whose pass is running: one a backward pass (two would post
 * their all-reduces in an order that may differ between ranks) */
static dl_dist_reducer *running;

static void destroy(dl_dist_reducer *r);

static const char *FN = "DistributedDataParallel";

/* the view of a bucket's flat buffer that holds slot s's gradient (made
 * once, with the buffers) */
static dl_tensor *slot_view(dl_dist_reducer *r, const param_slot *s) {
  dl_tensor *part = dl_tensor_narrow(r->buckets[s->bucket].flat, 0, s->offset, s->param->numel);
  if (!part) return NULL;
  dl_tensor *v = dl_tensor_view(part, s->param->shape, s->param->ndim);
  dl_tensor_release(part);
  return v;
}

/* whether g is already the view v of the flat buffer (the .grad the last
 * step left, kept when zero_grad zeroes in place) */
static bool same_memory(const dl_tensor *g, dl_tensor *v) {
  return g == v || (g->storage == v->storage && g->offset == v->offset && dl_tensor_is_contiguous(g));
}

/* copies the bucket's gradients in (zeros for a parameter without one) and
 * starts its all-reduce: non-blocking while backward has work left to
 * overlap, blocking for the last bucket (backward is all but done then, and
 * MPI's blocking all-reduce is faster than its non-blocking one) */
static int start(dl_dist_reducer *r, bucket *b) {
  for (int i = b->first; i < b->first + b->count; i++) {
    param_slot *s = &r->slots[i];
    dl_tensor *v = s->view;
    /* divided by the world size on the way in, while it is in cache (as
     * PyTorch's DDP divides before its all-reduce): the sum is the mean */
    dl_tensor *g = s->param->grad;
    int rc = 0;
    if (r->used) r->used[i] = g != NULL;
    if (!g) rc = dl_tensor_fill_(v, dl_scalar_i(0));
    else if (!same_memory(g, v)) rc = dl_tensor_copy_(v, g);
    if (g && !rc && r->world > 1) rc = dl_dist_divide(v, r->world);
    if (rc) return -1;
  }
  void *data = dl_tensor_data(b->flat);
  size_t n = (size_t)b->flat->numel;
  if (b == &r->buckets[r->nbuckets - 1]) {
    dl_dist_arm("DistributedDataParallel (the gradients' all-reduce)");
    int rc = r->tr->all_reduce(data, n, b->flat->dtype, DL_DIST_SUM);
    dl_dist_disarm();
    b->done = true;
    return rc;
  }
  b->req = r->tr->iall_reduce(data, n, b->flat->dtype, DL_DIST_SUM);
  return b->req < 0 ? -1 : 0;
}

/* lets the transport progress the running all-reduces (MPI moves
 * non-blocking collectives only inside MPI calls) */
static int progress(dl_dist_reducer *r) {
  for (int i = 0; i < r->next; i++) {
    bucket *b = &r->buckets[i];
    if (b->done) continue;
    if (r->tr->test(b->req, &b->done)) return -1;
    if (!b->done) break;
  }
  return 0;
}

static int begin_pass(dl_dist_reducer *r) {
  if (!dl_dist_is_initialized()) {
    dl_error_set("%s: dl.dist was finalized; the gradients cannot be averaged", FN);
    return -1;
  }
  if (running && running != r) {
    dl_error_set("%s: two wrapped models take part in one backward pass; wrap one module holding both", FN);
    return -1;
  }
  running = r;
  r->active = true;
  r->next = 0;
  for (int i = 0; i < r->nbuckets; i++) {
    r->buckets[i].pending = r->buckets[i].count;
    r->buckets[i].req = -1;
    r->buckets[i].done = false;
  }
  return 0;
}

static int on_ready(dl_grad_hook *h, dl_tensor *leaf) {
  (void)leaf;
  param_slot *s = (param_slot *)h;
  dl_dist_reducer *r = s->r;
  if (!r->sync || r->freed) return 0;
  if (!r->active && begin_pass(r)) return -1;
  r->buckets[s->bucket].pending--;
  while (r->next < r->nbuckets && r->buckets[r->next].pending == 0)
    if (start(r, &r->buckets[r->next++])) return -1;
  return progress(r);
}

static int on_finish(dl_grad_hook_group *g, bool ok) {
  dl_dist_reducer *r = (dl_dist_reducer *)g;
  if (r->freed) { /* its owner let go during the pass */
    if (running == r) running = NULL;
    destroy(r);
    return 0;
  }
  if (!r->active) return 0;
  r->active = false;
  running = NULL;
  int rc = 0;
  /* buckets whose parameters this rank did not use start now, in order,
   * so every rank runs the same collectives */
  while (ok && rc == 0 && r->next < r->nbuckets) rc = start(r, &r->buckets[r->next++]);
  dl_dist_arm("DistributedDataParallel (the gradients' all-reduce)");
  for (int i = 0; i < r->next; i++) /* (a bucket that failed to start has no request) */
    if (!r->buckets[i].done && r->buckets[i].req >= 0 && r->tr->wait(r->buckets[i].req) && rc == 0) rc = -1;
  /* which parameters some rank used: the others keep .grad nil */
  if (ok && rc == 0 && r->used) rc = dl_dist_host_transport()->all_reduce(r->used, (size_t)r->nparams, DL_UINT8,
                                                                           DL_DIST_MAX);
  dl_dist_disarm();
  if (!ok || rc) return rc;
  /* each .grad becomes its view of the flat buffer (PyTorch's
   * gradient_as_bucket_view): no copy back */
  for (int i = 0; i < r->nparams && rc == 0; i++) {
    param_slot *s = &r->slots[i];
    if (r->used && !r->used[i]) continue;
    dl_tensor *g = s->param->grad;
    if (g == s->view) continue;
    s->param->grad = dl_tensor_retain(s->view);
    dl_tensor_release(g);
  }
  return rc;
}

/* every rank must wrap the same parameters: counts, sizes, dtypes */
static int check_same_model(dl_dist_reducer *r) {
  int64_t mine[3] = {r->nparams, 0, 0};
  uint64_t h = DL_DIST_HASH_START;
  for (int i = 0; i < r->nparams; i++) {
    const dl_tensor *p = r->slots[i].param;
    int64_t dtype = p->dtype;
    mine[1] += p->numel;
    h = dl_dist_hash(dl_dist_hash(h, &dtype, 1), p->shape, p->ndim);
  }
  mine[2] = (int64_t)(h >> 1);
  int world = dl_dist_size();
  int64_t *all = malloc((size_t)world * sizeof mine);
  if (!all) {
    dl_error_set("%s: out of memory", FN);
    return -1;
  }
  dl_dist_arm(FN);
  int rc = dl_dist_host_transport()->all_gather(mine, all, sizeof mine);
  dl_dist_disarm();
  for (int k = 1; rc == 0 && k < world; k++) {
    if (memcmp(all, all + 3 * k, sizeof mine) == 0) continue;
    dl_error_set("%s: the ranks wrap different models: rank 0 has %lld parameters of %lld elements, rank %d "
                 "%lld of %lld%s",
                 FN, (long long)all[0], (long long)all[1], k, (long long)all[3 * k], (long long)all[3 * k + 1],
                 all[0] == all[3 * k] && all[1] == all[3 * k + 1] ? " (other shapes or dtypes)" : "");
    rc = -1;
  }
  free(all);
  return rc;
}

dl_dist_reducer *dl_dist_reducer_new(dl_tensor *const *params, int n, size_t bucket_bytes, bool find_unused) {
  if (dl_dist_check_init(FN)) return NULL;
  if (n < 1) {
    dl_error_set("%s: the model has no parameter that requires grad", FN);
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    const dl_tensor *p = params[i];
    if (!p->requires_grad || p->grad_fn) {
      dl_error_set("%s: parameter %d is not a leaf that requires grad", FN, i + 1);
      return NULL;
    }
    if (p->grad_hook) {
      dl_error_set("%s: parameter %d is already in a DistributedDataParallel", FN, i + 1);
      return NULL;
    }
    if (dl_tensor_device(p).type != dl_tensor_device(params[0]).type ||
        dl_tensor_device(p).index != dl_tensor_device(params[0]).index) {
      dl_error_set("%s: parameters 1 and %d are on different devices (one device a rank)", FN, i + 1);
      return NULL;
    }
    if (p->dtype != DL_FLOAT32 && p->dtype != DL_FLOAT64) {
      dl_error_set("%s: parameter %d is %s; gradients are averaged in floating point", FN, i + 1,
                   dl_dtype_name(p->dtype));
      return NULL;
    }
    for (int j = 0; j < i; j++)
      if (params[j] == p) {
        dl_error_set("%s: parameters %d and %d are the same tensor", FN, j + 1, i + 1);
        return NULL;
      }
  }
  dl_dist_reducer *r = calloc(1, sizeof *r);
  if (!r || !(r->slots = calloc((size_t)n, sizeof *r->slots)) ||
      !(r->buckets = calloc((size_t)n, sizeof *r->buckets)) ||
      (find_unused && !(r->used = calloc((size_t)n, 1)))) {
    dl_error_set("%s: out of memory", FN);
    if (r) {
      free(r->slots);
      free(r->buckets);
    }
    free(r);
    return NULL;
  }
  r->group.finish = on_finish;
  r->nparams = n;
  r->sync = true;
  r->find_unused = find_unused;
  r->world = dl_dist_size();
  /* slots in reverse parameter order: backward finishes the last layers
   * first, so the first bucket fills first */
  for (int i = 0; i < n; i++) {
    param_slot *s = &r->slots[i];
    s->param = dl_tensor_retain(params[n - 1 - i]);
    s->hook.ready = on_ready;
    s->hook.group = &r->group;
    s->r = r;
  }
  int64_t size = 0;
  for (int i = 0; i < n; i++) {
    param_slot *s = &r->slots[i];
    bucket *b = &r->buckets[r->nbuckets - 1 >= 0 ? r->nbuckets - 1 : 0];
    size_t esz = dl_dtype_size(s->param->dtype);
    bool fresh = r->nbuckets == 0 || r->slots[b->first].param->dtype != s->param->dtype ||
                 (size > 0 && (size_t)(size + s->param->numel) * esz > bucket_bytes);
    if (fresh) {
      b = &r->buckets[r->nbuckets++];
      b->first = i;
      size = 0;
    }
    s->bucket = (int)(b - r->buckets);
    s->offset = size;
    size += s->param->numel;
    b->count++;
  }
  /* the ranks agree on the model before anything else is collective
   * (a CUDA model's first use of NCCL is) */
  if (check_same_model(r) || !(r->tr = dl_dist_transport_for(FN, params[0]))) {
    destroy(r);
    return NULL;
  }
  for (int k = 0; k < r->nbuckets; k++) {
    bucket *b = &r->buckets[k];
    const dl_tensor *p = r->slots[b->first].param;
    int64_t len = 0;
    for (int i = b->first; i < b->first + b->count; i++) len += r->slots[i].param->numel;
    if (len > INT_MAX) { /* one MPI call moves at most INT_MAX elements */
      dl_error_set("%s: a bucket of %lld elements is more than one all-reduce moves (%d); a parameter that large "
                   "cannot be averaged",
                   FN, (long long)len, INT_MAX);
      destroy(r);
      return NULL;
    }
    if (!(b->flat = dl_tensor_zeros(&len, 1, p->dtype, dl_tensor_device(p)))) {
      destroy(r);
      return NULL;
    }
  }
  for (int i = 0; i < n; i++) {
    if (!(r->slots[i].view = slot_view(r, &r->slots[i]))) {
      destroy(r);
      return NULL;
    }
  }
  for (int i = 0; i < n; i++) r->slots[i].param->grad_hook = &r->slots[i].hook;
  return r;
}

void dl_dist_reducer_set_sync(dl_dist_reducer *r, bool on) { r->sync = on; }

bool dl_dist_reducer_sync(const dl_dist_reducer *r) { return r->sync; }

int dl_dist_reducer_nbuckets(const dl_dist_reducer *r) { return r->nbuckets; }

static void destroy(dl_dist_reducer *r) {
  for (int i = 0; i < r->nparams; i++) {
    param_slot *s = &r->slots[i];
    if (!s->param) continue;
    if (s->param->grad_hook == &s->hook) s->param->grad_hook = NULL;
    dl_tensor_release(s->param);
    dl_tensor_release(s->view);
  }
  for (int k = 0; k < r->nbuckets; k++) dl_tensor_release(r->buckets[k].flat);
  free(r->slots);
  free(r->buckets);
  free(r->used);
  free(r);
}

void dl_dist_reducer_free(dl_dist_reducer *r) {
  if (!r) return;
  if (r->active) { /* a backward pass still holds it: its end frees it */
    r->freed = true;
    return;
  }
  destroy(r);
}
