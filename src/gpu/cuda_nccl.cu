/* cuda_nccl.cu — NCCL for dl.dist's CUDA tensors (dl_cuda.h's
 * dl_cuda_nccl). libnccl (200 MB) is opened on first use, as cuBLAS is, so
 * the plugin loads without it. Collectives run on the plugin's stream of
 * the communicator's device; the blocking ones wait for the stream, so the
 * engine's watchdog bounds them like MPI's. */
#include <nccl.h>
#include <stdio.h>
#include <string.h>

#include "cuda_common.cuh"
#include "dl_cuda.h"

#define NCCL_LIB "libnccl.so.2"

static struct {
  decltype(&ncclGetUniqueId) get_unique_id;
  decltype(&ncclCommInitRank) comm_init_rank;
  decltype(&ncclAllReduce) all_reduce;
  decltype(&ncclBroadcast) broadcast;
  decltype(&ncclAllGather) all_gather;
  decltype(&ncclReduceScatter) reduce_scatter;
  decltype(&ncclGetErrorString) error_string;
} api;
static ncclComm_t comm;
static int comm_device = -1;

static int load(void) {
  if (api.error_string) return 0;
#define SYM(field, name) \
  if (!(api.field = (decltype(api.field))dl_cuda_library_symbol(NCCL_LIB, name))) return -1
  SYM(get_unique_id, "ncclGetUniqueId");
  SYM(comm_init_rank, "ncclCommInitRank");
  SYM(all_reduce, "ncclAllReduce");
  SYM(broadcast, "ncclBroadcast");
  SYM(all_gather, "ncclAllGather");
  SYM(reduce_scatter, "ncclReduceScatter");
  SYM(error_string, "ncclGetErrorString");
#undef SYM
  return 0;
}

static int check(ncclResult_t r, const char *what) {
  if (r == ncclSuccess) return 0;
  dl_error_set("dl.dist: %s failed: %s", what, api.error_string ? api.error_string(r) : "NCCL error");
  return -1;
}

/* the communicator's device and stream */
static cudaStream_t stream(void) {
  dl_cuda_backend_get(comm_device);
  return dl_cuda_stream();
}

static int finish(void) { return DL_CUDA_CHECK(cudaStreamSynchronize(dl_cuda_stream())) ? -1 : 0; }

/* bool is a byte that reduces logically: or as max, and as min */
static ncclDataType_t nccl_type(dl_dtype dt) {
  switch (dt) {
  case DL_FLOAT32: return ncclFloat32;
  case DL_FLOAT64: return ncclFloat64;
  case DL_INT64: return ncclInt64;
  default: return ncclUint8;
  }
}

static ncclRedOp_t nccl_op(dl_dist_op op, dl_dtype dt) {
  if (dt == DL_BOOL) return op == DL_DIST_MIN ? ncclMin : ncclMax;
  switch (op) {
  case DL_DIST_MAX: return ncclMax;
  case DL_DIST_MIN: return ncclMin;
  default: return ncclSum;
  }
}

static int unique_id(void *id) {
  if (load()) return -1;
  return check(api.get_unique_id((ncclUniqueId *)id), "ncclGetUniqueId");
}

static int init(int device, int rank, int size, const void *id) {
  if (load() || !dl_cuda_backend_get(device)) return -1;
  ncclUniqueId uid;
  memcpy(&uid, id, sizeof uid);
  if (check(api.comm_init_rank(&comm, size, uid, rank), "ncclCommInitRank")) return -1;
  comm_device = device;
  return 0;
}

static int iall_reduce(void *buf, size_t count, dl_dtype dt, dl_dist_op op) {
  if (check(api.all_reduce(buf, buf, count, nccl_type(dt), nccl_op(op, dt), comm, stream()), "ncclAllReduce"))
    return -1;
  return 0; /* one request: the stream */
}

static int all_reduce(void *buf, size_t count, dl_dtype dt, dl_dist_op op) {
  return iall_reduce(buf, count, dt, op) ? -1 : finish();
}

static int broadcast(void *buf, size_t bytes, int root) {
  if (check(api.broadcast(buf, buf, bytes, ncclUint8, root, comm, stream()), "ncclBroadcast")) return -1;
  return finish();
}

static int all_gather(const void *send, void *recv, size_t bytes) {
  if (check(api.all_gather(send, recv, bytes, ncclUint8, comm, stream()), "ncclAllGather")) return -1;
  return finish();
}

static int reduce_scatter(const void *send, void *recv, size_t count, dl_dtype dt, dl_dist_op op) {
  if (check(api.reduce_scatter(send, recv, count, nccl_type(dt), nccl_op(op, dt), comm, stream()),
            "ncclReduceScatter"))
    return -1;
  return finish();
}

/* stream order completes every bucket before the engine's next kernels;
 * the end of backward waits for the stream once */
static int test(int req, bool *done) {
  (void)req;
  *done = cudaStreamQuery(stream()) == cudaSuccess;
  cudaGetLastError();
  return 0;
}

static int wait(int req) {
  (void)req;
  stream();
  return finish();
}

static const dl_dist_transport transport = {all_reduce, broadcast, all_gather, reduce_scatter,
                                             iall_reduce, test,      wait};

extern "C" const dl_cuda_nccl *dl_cuda_nccl_table(void) {
  static const dl_cuda_nccl table = {sizeof(ncclUniqueId), unique_id, init, &transport};
  return &table;
}
