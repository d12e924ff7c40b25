/* dl_mpi.c — the MPI transport of dl.dist, built as lib/libdlua_mpi.so when
 * Open MPI's headers are there and opened by dl_dist_init (dl_dist.h), so
 * libdlua loads on machines without MPI. It moves contiguous host buffers;
 * the engine checks arguments, signatures and timeouts. MPI's errors come
 * back as return codes (MPI_ERRORS_RETURN) and become the engine's error. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl_dist.h"

#define EXPORT __attribute__((visibility("default")))

static int we_started; /* MPI_Init was ours, so MPI_Finalize is too */

static int fail(const char *what, int code) {
  char msg[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(code, msg, &n) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", code);
  dl_error_set("dl.dist: %s failed: %s", what, msg);
  return -1;
}
#define CHECK(what, call)                     \
  do {                                        \
    int rc_ = (call);                         \
    if (rc_ != MPI_SUCCESS) return fail(what, rc_); \
  } while (0)

static MPI_Datatype mpi_type(dl_dtype dt) {
  switch (dt) {
  case DL_FLOAT32: return MPI_FLOAT;
  case DL_FLOAT64: return MPI_DOUBLE;
  case DL_INT64: return MPI_INT64_T;
  case DL_UINT8: return MPI_UINT8_T;
  case DL_BOOL: return MPI_C_BOOL;
  default: return MPI_DATATYPE_NULL;
  }
}

/* bool reduces logically: sum and max are an or, min an and */
static MPI_Op mpi_op(dl_dist_op op, dl_dtype dt) {
  if (dt == DL_BOOL) return op == DL_DIST_MIN ? MPI_LAND : MPI_LOR;
  switch (op) {
  case DL_DIST_MAX: return MPI_MAX;
  case DL_DIST_MIN: return MPI_MIN;
  default: return MPI_SUM;
  }
}

/* MPI counts are ints: larger buffers go in slices */
#define SLICE ((size_t)1 << 30)

static int init(int *rank, int *size) {
  int done = 0;
  CHECK("MPI_Initialized", MPI_Initialized(&done));
  if (!done) {
    int provided;
    /* SINGLE, not FUNNELED: only the main thread ever calls MPI (OpenMP
     * workers and the watchdog never do), and Open MPI locks every call
     * above SINGLE: 13% of a 4 KB all-reduce */
    CHECK("MPI_Init_thread", MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided));
    we_started = 1;
  }
  CHECK("MPI_Comm_set_errhandler", MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  CHECK("MPI_Comm_rank", MPI_Comm_rank(MPI_COMM_WORLD, rank));
  CHECK("MPI_Comm_size", MPI_Comm_size(MPI_COMM_WORLD, size));
  return 0;
}

static int finalize(void) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (we_started && !fin) CHECK("MPI_Finalize", MPI_Finalize());
  return 0;
}

static void abort_job(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

static int barrier(void) {
  CHECK("MPI_Barrier", MPI_Barrier(MPI_COMM_WORLD));
  return 0;
}

static const char *library_version(void) {
  static char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0;
  if (MPI_Get_library_version(v, &n) != MPI_SUCCESS) return "";
  char *nl = strchr(v, ',');
  if (nl) *nl = 0; /* "Open MPI v4.1.4" without the build details */
  return v;
}

static int all_reduce(void *buf, size_t count, dl_dtype dt, dl_dist_op op) {
  size_t esz = dl_dtype_size(dt), at = 0;
  do { /* (an empty tensor still makes its one call, as every rank does) */
    size_t k = count - at < SLICE ? count - at : SLICE;
    CHECK("MPI_Allreduce", MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * esz, (int)k, mpi_type(dt),
                                         mpi_op(op, dt), MPI_COMM_WORLD));
    at += k;
  } while (at < count);
  return 0;
}

static int broadcast(void *buf, size_t bytes, int root) {
  for (size_t at = 0; at < bytes; at += SLICE) {
    size_t k = bytes - at < SLICE ? bytes - at : SLICE;
    CHECK("MPI_Bcast", MPI_Bcast((char *)buf + at, (int)k, MPI_BYTE, root, MPI_COMM_WORLD));
  }
  return 0;
}

static int all_gather(const void *send, void *recv, size_t bytes) {
  if (bytes > (size_t)INT_MAX) {
    dl_error_set("dl.dist: all_gather of %zu bytes a rank is more than one MPI call moves (%d)", bytes, INT_MAX);
    return -1;
  }
  CHECK("MPI_Allgather", MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD));
  return 0;
}

static int reduce_scatter(const void *send, void *recv, size_t count, dl_dtype dt, dl_dist_op op) {
  if (count > (size_t)INT_MAX) {
    dl_error_set("dl.dist: reduce_scatter of %zu elements a rank is more than one MPI call moves (%d)", count,
                 INT_MAX);
    return -1;
  }
  CHECK("MPI_Reduce_scatter_block",
        MPI_Reduce_scatter_block(send, recv, (int)count, mpi_type(dt), mpi_op(op, dt), MPI_COMM_WORLD));
  return 0;
}

/* ---- non-blocking all-reduce: requests live in a growing table ---- */
static MPI_Request *reqs;
static int nreqs;

static int iall_reduce(void *buf, size_t count, dl_dtype dt, dl_dist_op op) {
  if (count > (size_t)INT_MAX) {
    dl_error_set("dl.dist: a bucket of %zu elements is more than one MPI call moves (%d)", count, INT_MAX);
    return -1;
  }
  int slot = 0;
  while (slot < nreqs && reqs[slot] != MPI_REQUEST_NULL) slot++;
  if (slot == nreqs) {
    int n = nreqs ? 2 * nreqs : 16;
    MPI_Request *r = realloc(reqs, (size_t)n * sizeof *r);
    if (!r) {
      dl_error_set("dl.dist: out of memory");
      return -1;
    }
    for (int i = nreqs; i < n; i++) r[i] = MPI_REQUEST_NULL;
    reqs = r;
    nreqs = n;
  }
  int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(dt), mpi_op(op, dt), MPI_COMM_WORLD, &reqs[slot]);
  if (rc != MPI_SUCCESS) return fail("MPI_Iallreduce", rc);
  return slot;
}

static int valid(int req) {
  if (req < 0 || req >= nreqs) {
    dl_error_set("dl.dist: no request %d", req);
    return 0;
  }
  return 1;
}

static int test(int req, bool *done) {
  if (!valid(req)) return -1;
  int flag = 0;
  CHECK("MPI_Test", MPI_Test(&reqs[req], &flag, MPI_STATUS_IGNORE));
  *done = flag != 0;
  return 0;
}

static int wait(int req) {
  if (!valid(req)) return -1;
  CHECK("MPI_Wait", MPI_Wait(&reqs[req], MPI_STATUS_IGNORE));
  return 0;
}

static const dl_mpi_plugin table = {
  .abi = DL_MPI_PLUGIN_ABI,
  .init = init,
  .finalize = finalize,
  .abort = abort_job,
  .barrier = barrier,
  .library_version = library_version,
  .host = {all_reduce, broadcast, all_gather, reduce_scatter, iall_reduce, test, wait},
};

EXPORT const dl_mpi_plugin *dl_mpi_plugin_v1(void) { return &table; }
