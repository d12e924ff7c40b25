/* dl_dist_nccl.c — dl.dist on CUDA tensors: NCCL's communicator, made on
 * the first collective over a CUDA tensor from a unique id rank 0 draws and
 * MPI broadcasts; one communicator a process, on that tensor's device. */
#include <stdlib.h>

#include "dl_cuda.h"
#include "dl_dist_internal.h"

static const dl_cuda_nccl *nccl;
static int comm_device = -1;

const dl_dist_transport *dl_dist_nccl_transport(const char *fn, const dl_tensor *t) {
  int device = dl_tensor_device(t).index;
  if (comm_device >= 0) {
    if (device == comm_device) return nccl->transport;
    dl_error_set("%s: this rank's NCCL communicator is on cuda:%d, the tensor on cuda:%d (one device a rank)", fn,
                 comm_device, device);
    return NULL;
  }
  const dl_cuda_nccl *n = dl_cuda_nccl_get();
  if (!n) return NULL;
  unsigned char *id = calloc(1, n->id_bytes);
  if (!id) {
    dl_error_set("%s: out of memory", fn);
    return NULL;
  }
  int rc = dl_dist_rank() == 0 ? n->unique_id(id) : 0;
  /* every rank takes part in the broadcast, so a failed draw on rank 0
   * reaches the others as a zero id (NCCL then fails there too) */
  dl_dist_arm(fn);
  if (dl_dist_host_transport()->broadcast(id, n->id_bytes, 0)) rc = -1;
  if (!rc) rc = n->init(device, dl_dist_rank(), dl_dist_size(), id);
  dl_dist_disarm();
  free(id);
  if (rc) return NULL;
  nccl = n;
  comm_device = device;
  return nccl->transport;
}
