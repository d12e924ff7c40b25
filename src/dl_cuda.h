/* dl_cuda.h — the CUDA backend's management API for C callers (the Lua
 * binding): devices, synchronisation and the caching allocator's counters.
 *
 * The backend is a plugin: src/gpu/ builds lib/libdlua_cuda.so, and the
 * engine opens it the first time a CUDA device is asked for (dl_cuda.c),
 * so libdlua runs on machines without the CUDA runtime. Without the plugin
 * (a CPU-only build, or one that cannot load) there is no device: counts
 * are 0 and dl_cuda_unavailable_reason() says why. */
#ifndef DL_CUDA_H
#define DL_CUDA_H

#include <stddef.h>

#include "dl_backend.h"
#include "dl_dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* devices the runtime reports; 0 when there is no plugin, driver or GPU */
int dl_cuda_device_count(void);
/* why there is no device ("" when there is one) */
const char *dl_cuda_unavailable_reason(void);
/* waits for every kernel issued on the device; 0 ok, -1 with an error */
int dl_cuda_synchronize(int index);
/* returns every cached block of every device to the driver */
void dl_cuda_empty_cache(void);
/* bytes in live blocks (class-rounded), their peak since the last reset */
size_t dl_cuda_memory_allocated(int index);
size_t dl_cuda_max_memory_allocated(int index);
void dl_cuda_reset_peak_memory_stats(int index);
/* the card's name into buf; 0 ok, -1 with an error */
int dl_cuda_device_name(int index, char *buf, size_t n);
/* the backend of cuda:index, or NULL with an error */
const dl_backend *dl_cuda_backend_get(int index);
/* the plugin's NCCL, or NULL with an error saying why there is none */
typedef struct dl_cuda_nccl_s dl_cuda_nccl;
const dl_cuda_nccl *dl_cuda_nccl_get(void);

/* ---- the plugin's side ----
 * libdlua_cuda.so exports one symbol, DL_CUDA_PLUGIN_SYMBOL, a function
 * returning this table; abi and the struct sizes must match the engine's,
 * or the plugin is refused (it was built from other headers). */
#define DL_CUDA_PLUGIN_ABI 2
#define DL_CUDA_PLUGIN_SYMBOL "dl_cuda_plugin_v1"
/* NCCL for dl.dist (libnccl opened on first use): the communicator of this
 * process on `device`, made from a unique id that rank 0 drew and every
 * rank received over MPI; collectives on the plugin's stream of that
 * device, the blocking ones waited for. */
struct dl_cuda_nccl_s {
  size_t id_bytes; /* sizeof(ncclUniqueId) */
  int (*unique_id)(void *id);
  int (*init)(int device, int rank, int size, const void *id);
  const dl_dist_transport *transport;
};
typedef struct {
  int abi;
  size_t backend_size, nops; /* sizeof(dl_backend), DL_NOPS */
  const dl_backend *(*backend_get)(int index);
  int (*device_count)(void);
  const char *(*unavailable_reason)(void);
  int (*synchronize)(int index);
  void (*empty_cache)(void);
  size_t (*memory_allocated)(int index);
  size_t (*max_memory_allocated)(int index);
  void (*reset_peak_memory_stats)(int index);
  int (*device_name)(int index, char *buf, size_t n);
  const dl_cuda_nccl *nccl; /* NULL: built without NCCL */
} dl_cuda_plugin;

#ifdef __cplusplus
}
#endif

#endif
