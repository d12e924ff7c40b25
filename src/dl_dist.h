/* dl_dist.h — data-parallel communication between processes (dl.dist).
 *
 * dlua runs on the field's engines, not sockets of its own: Open MPI for CPU
 * tensors, NCCL for CUDA tensors (its communicator bootstrapped through
 * MPI). The MPI transport is a plugin, lib/libdlua_mpi.so (src/mpi/), opened
 * by dl_dist_init, so libdlua never needs MPI to load; NCCL lives in the
 * CUDA plugin. Without the MPI plugin dl_dist_init fails with "built without
 * MPI".
 *
 * Every collective is called by every rank in the same order with tensors
 * of the same dtype and shape; the engine checks that (an all-reduce of a
 * 16-byte signature hash before the operation, an all-gather of the
 * signatures when they differ) and reports a mismatch on every rank
 * instead of reducing garbage. A watchdog thread bounds every wait: a
 * collective that does not complete within the timeout (another rank died,
 * hangs, or never called it) prints which operation timed out and ends the
 * process, which makes mpirun end the others. */
#ifndef DL_DIST_H
#define DL_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "dl_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DL_DIST_SUM = 0, DL_DIST_AVG, DL_DIST_MAX, DL_DIST_MIN, DL_DIST_NOPS } dl_dist_op;

/* ---- the engine's API ---- */
/* Starts MPI (MPI_Init_thread, unless the host did) and reads the rank and
 * size mpirun gave; idempotent. timeout_s bounds every later collective
 * (> 0; 1e9 or more, or infinity: no bound). 0 ok, -1 with an error
 * ("built without MPI", or MPI's own). */
int dl_dist_init(double timeout_s);
bool dl_dist_is_initialized(void);
/* off: collectives skip the signature check (one small all-reduce each;
 * a mismatch then goes unreported). On by default. */
void dl_dist_set_checks(bool on);
/* 0-based rank and world size; 0 and 1 before init */
int dl_dist_rank(void);
int dl_dist_size(void);
/* the MPI library's version string ("" before init) */
const char *dl_dist_library_version(void);
/* MPI_Finalize at a clean end (nothing when not initialized) */
int dl_dist_finalize(void);
/* ends every rank of the job with exit status code (MPI_Abort); returns
 * only when not initialized */
void dl_dist_abort(int code);

int dl_dist_barrier(void);
/* In place, on every rank: t = op over ranks of t. Any dtype except avg on
 * integers and bool (sum/max on bool is a logical or, min a logical and);
 * contiguous or not; CPU over MPI, CUDA over NCCL. fn names the caller. */
int dl_dist_all_reduce(const char *fn, dl_tensor *t, dl_dist_op op);
/* In place: t = rank root's t. */
int dl_dist_broadcast(const char *fn, dl_tensor *t, int root);
/* A new tensor of shape {size, t's shape...}: slot r is rank r's t. */
dl_tensor *dl_dist_all_gather(const char *fn, dl_tensor *t);
/* t's first dim split into size equal chunks; returns op over ranks of
 * chunk rank (a new tensor of shape {t.shape[0] / size, ...}). */
dl_tensor *dl_dist_reduce_scatter(const char *fn, dl_tensor *t, dl_dist_op op);
const char *dl_dist_op_name(dl_dist_op op);

/* ---- gradient averaging during backward (DistributedDataParallel) ----
 * Parameters are put in buckets of about bucket_bytes, in reverse order
 * (the order backward makes their gradients). When the last gradient of a
 * bucket is accumulated (an autograd grad hook) the bucket is copied into a
 * flat buffer and a non-blocking all-reduce starts; buckets start in index
 * order on every rank. At the end of backward every bucket is waited for;
 * each .grad is then a view of its bucket holding the mean over the ranks (every
 * gradient divided by the world size on its way in). A parameter that got
 * no gradient on this rank contributes zeros. One reducer a backward pass. */
typedef struct dl_dist_reducer dl_dist_reducer;
/* params: leaves requiring grad, all on one device; retained. Checks that
 * every rank passed the same shapes and dtypes. find_unused: one more
 * all-reduce a step (a byte a parameter) finds the parameters no rank used,
 * whose .grad then stays nil, as in one process; without it they get zeros. */
dl_dist_reducer *dl_dist_reducer_new(dl_tensor *const *params, int n, size_t bucket_bytes, bool find_unused);
/* off: backward accumulates locally, communicates nothing (no_sync) */
void dl_dist_reducer_set_sync(dl_dist_reducer *r, bool on);
bool dl_dist_reducer_sync(const dl_dist_reducer *r);
int dl_dist_reducer_nbuckets(const dl_dist_reducer *r);
void dl_dist_reducer_free(dl_dist_reducer *r);

/* ---- transports ----
 * A transport moves contiguous buffers of one device. count: elements;
 * op: SUM, MAX or MIN (AVG is a SUM the engine divides). 0 ok, -1 with an
 * error set. */
typedef struct {
  int (*all_reduce)(void *buf, size_t count, dl_dtype dt, dl_dist_op op);
  int (*broadcast)(void *buf, size_t bytes, int root);
  /* recv holds size * bytes */
  int (*all_gather)(const void *send, void *recv, size_t bytes);
  /* send holds size * count, recv count */
  int (*reduce_scatter)(const void *send, void *recv, size_t count, dl_dtype dt, dl_dist_op op);
  /* a non-blocking all-reduce in place: a request >= 0, or -1 */
  int (*iall_reduce)(void *buf, size_t count, dl_dtype dt, dl_dist_op op);
  /* progress: *done true when request req has completed (and is freed) */
  int (*test)(int req, bool *done);
  int (*wait)(int req);
} dl_dist_transport;

/* lib/libdlua_mpi.so exports DL_MPI_PLUGIN_SYMBOL, a function returning this
 * table; abi must match or the plugin is refused. */
#define DL_MPI_PLUGIN_ABI 1
#define DL_MPI_PLUGIN_SYMBOL "dl_mpi_plugin_v1"
typedef struct {
  int abi;
  /* MPI_Init_thread (SINGLE: only the main thread calls MPI) unless MPI is
   * initialized; rank and size */
  int (*init)(int *rank, int *size);
  int (*finalize)(void);
  void (*abort)(int code);
  int (*barrier)(void);
  const char *(*library_version)(void);
  dl_dist_transport host;
} dl_mpi_plugin;

#ifdef __cplusplus
}
#endif

#endif
