/* dl_dist_internal.h — what dl_dist.c shares with the gradient reducer and
 * the NCCL bootstrap (not part of the public engine API). */
#ifndef DL_DIST_INTERNAL_H
#define DL_DIST_INTERNAL_H

#include <stdint.h>

#include "dl_dist.h"

enum {
  DL_DIST_KIND_BARRIER,
  DL_DIST_KIND_ALL_REDUCE,
  DL_DIST_KIND_BROADCAST,
  DL_DIST_KIND_ALL_GATHER,
  DL_DIST_KIND_REDUCE_SCATTER,
};
const char *dl_dist_kind_name(int kind);

/* an error naming fn unless dl_dist_init has run */
int dl_dist_check_init(const char *fn);
/* the watchdog: a wait armed with what must be disarmed within the timeout */
void dl_dist_arm(const char *what);
void dl_dist_disarm(void);
/* every rank says what it is about to call (kind, op, t's dtype, device and
 * shape, root); 0 when all agree, -1 with an error naming the first rank
 * that differs from rank 0 (the same error on every rank) */
int dl_dist_agree(const char *fn, int kind, dl_dist_op op, const dl_tensor *t, int root);
/* the transport for t's device (MPI for the CPU, NCCL for CUDA) or NULL */
const dl_dist_transport *dl_dist_transport_for(const char *fn, const dl_tensor *t);
/* NCCL's transport for a CUDA tensor, its communicator made on first use
 * (the unique id broadcast over MPI); NULL with an error */
const dl_dist_transport *dl_dist_nccl_transport(const char *fn, const dl_tensor *t);
/* the MPI transport (host buffers) */
const dl_dist_transport *dl_dist_host_transport(void);
/* FNV-1a over n 64-bit words, from h (start with DL_DIST_HASH_START): the
 * fingerprint the ranks compare to find out whether they agree */
#define DL_DIST_HASH_START 1469598103934665603ULL
static inline uint64_t dl_dist_hash(uint64_t h, const int64_t *v, int n) {
  for (int i = 0; i < n; i++) h = (h ^ (uint64_t)v[i]) * 1099511628211ULL;
  return h;
}
/* t /= by, in place */
int dl_dist_divide(dl_tensor *t, int by);

#endif
