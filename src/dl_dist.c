/* dl_dist.c — dl.dist's collectives (dl_dist.h): the MPI plugin opened at
 * init, the signature check that catches mismatched calls, the watchdog
 * that bounds every wait, and the tensor-level work the transports leave
 * to the engine (contiguous staging, avg as a sum divided, shapes). */
#define _GNU_SOURCE
#include "dl_dist.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dl_dist_internal.h"
#include "dl_plugin.h"
#include "ops/dl_ewise.h"

#define PLUGIN_NAME "libdlua_mpi.so"

static const dl_mpi_plugin *mpi;
static bool initialized, finalized; /* MPI cannot start again once finalized */
static int my_rank, world = 1;
static double timeout_s = 600;
static bool checks = true; /* the signature check before each collective */

const char *dl_dist_op_name(dl_dist_op op) {
  static const char *const names[] = {"sum", "avg", "max", "min"};
  return op >= 0 && op < DL_DIST_NOPS ? names[op] : "?";
}

/* ---- the watchdog ----
 * One thread looks, a few times a second, at the wait armed now; one that
 * has passed its deadline ends the process (mpirun then ends the job)
 * instead of hanging every rank. Arming is two atomic stores, so a 4 KB
 * all-reduce does not pay a thread wake-up. */
static _Atomic(const char *) wd_what; /* NULL: disarmed */
static _Atomic int64_t wd_deadline;   /* ns, CLOCK_MONOTONIC */

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *watchdog(void *arg) {
  (void)arg;
  for (;;) {
    double poll = timeout_s / 10 < 0.1 ? timeout_s / 10 : 0.1; /* timeout_s < NO_TIMEOUT when armed */
    struct timespec nap = {(time_t)poll, (long)((poll - (double)(time_t)poll) * 1e9)};
    nanosleep(&nap, NULL);
    const char *what = atomic_load(&wd_what);
    if (what && now_ns() > atomic_load(&wd_deadline)) {
      fprintf(stderr,
              "dl.dist: rank %d: %s did not complete within %g s (another rank failed, hangs, or did not "
              "call it); ending this rank\n",
              my_rank, what, timeout_s);
      fflush(stderr);
      _exit(1);
    }
  }
  return NULL;
}

static int start_watchdog(void) {
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&th, &attr, watchdog, NULL);
  pthread_attr_destroy(&attr);
  if (rc) {
    dl_error_set("dl.dist.init: could not start the watchdog thread");
    return -1;
  }
  return 0;
}

/* a timeout this long (or infinite) means no watchdog */
#define NO_TIMEOUT 1e9

void dl_dist_arm(const char *what) {
  if (timeout_s >= NO_TIMEOUT) return;
  atomic_store(&wd_deadline, now_ns() + (int64_t)(timeout_s * 1e9));
  atomic_store(&wd_what, what);
}

void dl_dist_disarm(void) { atomic_store(&wd_what, NULL); }

/* ---- lifetime ---- */
/* at exit: a clean end finalizes; a failed one (a Lua error, os.exit(1))
 * aborts the job, so the other ranks end now instead of waiting in
 * MPI_Finalize's fence or a collective for a rank that is gone */
static void at_exit(int status, void *arg) {
  (void)arg;
  if (!initialized) return;
  if (status != 0) {
    fflush(NULL);
    fprintf(stderr, "dl.dist: rank %d exits with status %d; ending every rank of the job\n", my_rank, status);
    fflush(stderr);
    mpi->abort(status);
  }
  dl_dist_finalize();
}

void dl_dist_set_checks(bool on) { checks = on; }

int dl_dist_init(double timeout) {
  if (!(timeout > 0)) { /* math.huge: no watchdog */
    dl_error_set("dl.dist.init: timeout must be a positive number of seconds, got %g", timeout);
    return -1;
  }
  timeout_s = timeout;
  if (initialized) return 0;
  if (finalized) {
    dl_error_set("dl.dist.init: dl.dist was finalized in this process, and MPI cannot start again");
    return -1;
  }
  char reason[512];
  void *h = dl_plugin_open(PLUGIN_NAME, "the MPI plugin", "DLUA_MPI_PLUGIN",
                           "dl.dist: built without MPI (no " PLUGIN_NAME "; install libopenmpi-dev and rebuild)",
                           reason, sizeof reason);
  if (!h) {
    dl_error_set("%s", reason);
    return -1;
  }
  const dl_mpi_plugin *(*entry)(void) = (const dl_mpi_plugin *(*)(void))dlsym(h, DL_MPI_PLUGIN_SYMBOL);
  const dl_mpi_plugin *p = entry ? entry() : NULL;
  if (!p || p->abi != DL_MPI_PLUGIN_ABI) {
    dl_error_set("dl.dist: the MPI plugin was built from other headers than this dlua");
    return -1;
  }
  if (p->init(&my_rank, &world)) return -1;
  if (start_watchdog()) return -1;
  mpi = p;
  initialized = true;
  on_exit(at_exit, NULL);
  return 0;
}

bool dl_dist_is_initialized(void) { return initialized; }
int dl_dist_rank(void) { return my_rank; }
int dl_dist_size(void) { return world; }
const char *dl_dist_library_version(void) { return mpi ? mpi->library_version() : ""; }

int dl_dist_finalize(void) {
  if (!initialized) return 0;
  initialized = false;
  finalized = true;
  return mpi->finalize();
}

void dl_dist_abort(int code) {
  if (initialized) mpi->abort(code);
}

int dl_dist_check_init(const char *fn) {
  if (initialized) return 0;
  dl_error_set("%s: dl.dist.init() has not been called", fn);
  return -1;
}

/* ---- the signature check ----
 * Before a collective every rank shares what it is about to do; any
 * difference is reported on every rank (each sees the same table). */
enum { SIG_KIND, SIG_OP, SIG_DTYPE, SIG_DEVICE, SIG_ROOT, SIG_NDIM, SIG_SHAPE, SIG_LEN = SIG_SHAPE + DL_MAX_DIMS };

static void describe(const int64_t *sig, char *buf, size_t n) {
  char shape[128];
  dl_shape_str(sig + SIG_SHAPE, (int)sig[SIG_NDIM], shape, sizeof shape);
  snprintf(buf, n, "%s(%s) of a %s%s tensor %s", dl_dist_kind_name((int)sig[SIG_KIND]),
           dl_dist_op_name((dl_dist_op)sig[SIG_OP]), sig[SIG_DEVICE] == DL_CUDA ? "CUDA " : "",
           dl_dtype_name((dl_dtype)sig[SIG_DTYPE]), shape);
}

const char *dl_dist_kind_name(int kind) {
  static const char *const names[] = {"barrier", "all_reduce", "broadcast", "all_gather", "reduce_scatter"};
  return kind >= 0 && kind < (int)(sizeof names / sizeof names[0]) ? names[kind] : "?";
}

int dl_dist_agree(const char *fn, int kind, dl_dist_op op, const dl_tensor *t, int root) {
  if (!checks) return 0;
  int64_t sig[SIG_LEN] = {0};
  sig[SIG_KIND] = kind;
  sig[SIG_OP] = op;
  sig[SIG_ROOT] = root;
  if (t) {
    sig[SIG_DTYPE] = t->dtype;
    sig[SIG_DEVICE] = dl_tensor_device(t).type;
    sig[SIG_NDIM] = t->ndim;
    memcpy(sig + SIG_SHAPE, t->shape, (size_t)t->ndim * sizeof(int64_t));
  }
  /* the common case costs one all-reduce of two numbers: the largest and
   * (negated) smallest hash of the signatures differ only when they do */
  uint64_t h = dl_dist_hash(DL_DIST_HASH_START, sig, SIG_LEN);
  int64_t span[2] = {(int64_t)(h >> 2), -(int64_t)(h >> 2)};
  if (mpi->host.all_reduce(span, 2, DL_INT64, DL_DIST_MAX)) return -1;
  if (span[0] == -span[1]) return 0;
  /* they differ: every rank gathers every signature to say how */
  int64_t *all = malloc((size_t)world * sizeof sig);
  if (!all) {
    dl_error_set("%s: out of memory", fn);
    return -1;
  }
  int rc = mpi->host.all_gather(sig, all, sizeof sig);
  for (int r = 0; rc == 0 && r < world; r++) {
    if (memcmp(all + (size_t)r * SIG_LEN, all, sizeof sig) == 0) continue;
    char a[256], b[256];
    describe(all, a, sizeof a);
    describe(all + (size_t)r * SIG_LEN, b, sizeof b);
    if (all[SIG_ROOT] != all[(size_t)r * SIG_LEN + SIG_ROOT] && !strcmp(a, b))
      dl_error_set("%s: the ranks disagree: rank 0 called it with root %lld, rank %d with root %lld", fn,
                   (long long)all[SIG_ROOT], r, (long long)all[(size_t)r * SIG_LEN + SIG_ROOT]);
    else
      dl_error_set("%s: the ranks disagree: rank 0 called %s, rank %d %s", fn, a, r, b);
    rc = -1;
    break; /* the first rank that differs */
  }
  if (rc == 0) dl_error_set("%s: the ranks disagree (their signatures' hashes differ)", fn);
  free(all);
  return -1;
}

/* ---- collectives ---- */
const dl_dist_transport *dl_dist_host_transport(void) { return &mpi->host; }

const dl_dist_transport *dl_dist_transport_for(const char *fn, const dl_tensor *t) {
  if (dl_tensor_device(t).type == DL_CPU) return &mpi->host;
  return dl_dist_nccl_transport(fn, t);
}

/* the collectives work on dl_tensor_contiguous(t) (t itself when it is);
 * this writes such a copy's result back into t when t was not contiguous */
static int unstage(dl_tensor *t, dl_tensor *c) {
  if (c == t) {
    dl_tensor_bump_version(t);
    return 0;
  }
  return dl_tensor_copy_(t, c);
}

static int check_avg(const char *fn, const dl_tensor *t, dl_dist_op op) {
  if (op == DL_DIST_AVG && t->dtype != DL_FLOAT32 && t->dtype != DL_FLOAT64) {
    dl_error_set("%s: op 'avg' needs a floating-point tensor, got %s (use 'sum')", fn, dl_dtype_name(t->dtype));
    return -1;
  }
  return 0;
}

int dl_dist_divide(dl_tensor *t, int by) {
  return dl_op_binary_(DL_BIN_DIV, t, dl_operand_scalar(dl_scalar_i(by)), dl_scalar_i(1));
}

int dl_dist_all_reduce(const char *fn, dl_tensor *t, dl_dist_op op) {
  if (dl_dist_check_init(fn) || check_avg(fn, t, op)) return -1;
  /* the ranks agree first (over MPI), so a rank with a CUDA tensor never
   * starts NCCL's bootstrap while another has a CPU one */
  dl_dist_arm(fn);
  int rc = dl_dist_agree(fn, DL_DIST_KIND_ALL_REDUCE, op, t, 0);
  const dl_dist_transport *tr = rc ? NULL : dl_dist_transport_for(fn, t);
  if (!tr) rc = -1;
  dl_tensor *c = rc ? NULL : dl_tensor_contiguous(t);
  if (!rc && !c) rc = -1;
  if (!rc) rc = tr->all_reduce(dl_tensor_data(c), (size_t)c->numel, c->dtype, op == DL_DIST_AVG ? DL_DIST_SUM : op);
  dl_dist_disarm();
  if (!rc && op == DL_DIST_AVG) rc = dl_dist_divide(c, world);
  if (!rc) rc = unstage(t, c);
  dl_tensor_release(c);
  return rc;
}

int dl_dist_broadcast(const char *fn, dl_tensor *t, int root) {
  if (dl_dist_check_init(fn)) return -1;
  if (root < 0 || root >= world) {
    dl_error_set("%s: root %d is not a rank (0 to %d)", fn, root, world - 1);
    return -1;
  }
  dl_dist_arm(fn);
  int rc = dl_dist_agree(fn, DL_DIST_KIND_BROADCAST, DL_DIST_SUM, t, root);
  const dl_dist_transport *tr = rc ? NULL : dl_dist_transport_for(fn, t);
  if (!tr) rc = -1;
  dl_tensor *c = rc ? NULL : dl_tensor_contiguous(t);
  if (!rc && !c) rc = -1;
  if (!rc) rc = tr->broadcast(dl_tensor_data(c), (size_t)c->numel * dl_dtype_size(c->dtype), root);
  dl_dist_disarm();
  if (!rc) rc = unstage(t, c);
  dl_tensor_release(c);
  return rc;
}

dl_tensor *dl_dist_all_gather(const char *fn, dl_tensor *t) {
  if (dl_dist_check_init(fn)) return NULL;
  if (t->ndim + 1 > DL_MAX_DIMS) {
    dl_error_set("%s: a %d-dim tensor gathers into %d dims, more than %d", fn, t->ndim, t->ndim + 1, DL_MAX_DIMS);
    return NULL;
  }
  int64_t shape[DL_MAX_DIMS];
  shape[0] = world;
  memcpy(shape + 1, t->shape, (size_t)t->ndim * sizeof(int64_t));
  dl_tensor *out = dl_tensor_empty(shape, t->ndim + 1, t->dtype, dl_tensor_device(t));
  dl_tensor *c = out ? dl_tensor_contiguous(t) : NULL;
  if (!c) {
    dl_tensor_release(out);
    return NULL;
  }
  dl_dist_arm(fn);
  int rc = dl_dist_agree(fn, DL_DIST_KIND_ALL_GATHER, DL_DIST_SUM, t, 0);
  const dl_dist_transport *tr = rc ? NULL : dl_dist_transport_for(fn, t);
  if (!tr) rc = -1;
  if (!rc) rc = tr->all_gather(dl_tensor_data(c), dl_tensor_data(out), (size_t)c->numel * dl_dtype_size(c->dtype));
  dl_dist_disarm();
  dl_tensor_release(c);
  if (rc) {
    dl_tensor_release(out);
    return NULL;
  }
  return out;
}

dl_tensor *dl_dist_reduce_scatter(const char *fn, dl_tensor *t, dl_dist_op op) {
  if (dl_dist_check_init(fn) || check_avg(fn, t, op)) return NULL;
  if (t->ndim < 1 || t->shape[0] % world != 0) {
    char b[128];
    dl_error_set("%s: the first dim of a tensor of shape %s must divide into %d ranks", fn,
                 dl_tensor_shape_str(t, b, sizeof b), world);
    return NULL;
  }
  int64_t shape[DL_MAX_DIMS];
  memcpy(shape, t->shape, (size_t)t->ndim * sizeof(int64_t));
  shape[0] /= world;
  dl_tensor *out = dl_tensor_empty(shape, t->ndim, t->dtype, dl_tensor_device(t));
  dl_tensor *c = out ? dl_tensor_contiguous(t) : NULL;
  if (!c) {
    dl_tensor_release(out);
    return NULL;
  }
  dl_dist_arm(fn);
  int rc = dl_dist_agree(fn, DL_DIST_KIND_REDUCE_SCATTER, op, t, 0);
  const dl_dist_transport *tr = rc ? NULL : dl_dist_transport_for(fn, t);
  if (!tr) rc = -1;
  if (!rc)
    rc = tr->reduce_scatter(dl_tensor_data(c), dl_tensor_data(out), (size_t)out->numel, c->dtype,
                            op == DL_DIST_AVG ? DL_DIST_SUM : op);
  dl_dist_disarm();
  dl_tensor_release(c);
  if (!rc && op == DL_DIST_AVG) rc = dl_dist_divide(out, world);
  if (rc) {
    dl_tensor_release(out);
    return NULL;
  }
  return out;
}

int dl_dist_barrier(void) {
  const char *fn = "dl.dist.barrier";
  if (dl_dist_check_init(fn)) return -1;
  dl_dist_arm(fn);
  int rc = dl_dist_agree(fn, DL_DIST_KIND_BARRIER, DL_DIST_SUM, NULL, 0);
  if (!rc) rc = mpi->barrier();
  dl_dist_disarm();
  return rc;
}
