/* cuda_backend.cu — the CUDA kernel table and device management.
 * dl_backend.c reaches this file through the weak symbol
 * dl_cuda_backend_get(index): it selects the device (cudaSetDevice, cached
 * per thread) and returns the table, so every kernel, allocation and free
 * that follows runs on that device and its one stream. A machine without a
 * driver or a GPU answers NULL with an error that says why, never a crash.
 * The host transfers here are the user-visible sync points (item, printing,
 * cpu()): they queue on the device's stream and wait for it. */
#include "cuda_common.cuh"
#include "dl_cuda.h"

#include <dlfcn.h>
#include <mutex>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "../ops/dl_ewise.h"
}

#define MAX_DEVICES 64

extern "C" const struct dl_ewise_kernels dl_cuda_ewise;
extern "C" const struct dl_reduce_kernels dl_cuda_reduce;
extern "C" const struct dl_index_kernels dl_cuda_index;
extern "C" const struct dl_linalg_kernels dl_cuda_linalg;
extern "C" const struct dl_random_kernels dl_cuda_random;
extern "C" const struct dl_act_kernels dl_cuda_act;
extern "C" const struct dl_loss_kernels dl_cuda_loss;
extern "C" const struct dl_layer_kernels dl_cuda_layer;
extern "C" const struct dl_conv_kernels dl_cuda_conv;
extern "C" const struct dl_optim_kernels dl_cuda_optim;
extern "C" const struct dl_decomp_kernels dl_cuda_decomp;

void dl_cuda_copy(dl_tensor *dst, const dl_tensor *src); /* cuda_copy.cu */
void dl_cuda_fill(dl_tensor *dst, dl_scalar v);

namespace {

std::once_flag count_once;
int device_count = 0;
char reason[200] = "";
cudaStream_t streams[MAX_DEVICES];
std::mutex stream_lock;
thread_local int current = -1;

void count_devices() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    snprintf(reason, sizeof reason, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
    cudaGetLastError();
    n = 0;
  } else if (n == 0) {
    snprintf(reason, sizeof reason, "the driver reports no GPU");
  }
  device_count = n > MAX_DEVICES ? MAX_DEVICES : n;
}

/* makes index current on this thread; 0 ok, -1 with an error */
int select_device(int index) {
  int n = dl_cuda_device_count();
  if (n == 0) {
    dl_error_set("cuda: no CUDA device available (%s; cuda:%d is not available)", reason, index);
    return -1;
  }
  if (index < 0 || index >= n) {
    dl_error_set("cuda: device cuda:%d is not available (%d device%s present)", index, n, n == 1 ? "" : "s");
    return -1;
  }
  if (current != index) {
    if (DL_CUDA_CHECK(cudaSetDevice(index))) return -1;
    current = index;
  }
  return 0;
}

int to_host(void *host, const void *dev, size_t nbytes) {
  if (nbytes == 0) return 0;
  cudaStream_t s = dl_cuda_stream();
  if (DL_CUDA_CHECK(cudaMemcpyAsync(host, dev, nbytes, cudaMemcpyDeviceToHost, s))) return -1;
  return DL_CUDA_CHECK(cudaStreamSynchronize(s)) ? -1 : 0;
}

int from_host(void *dev, const void *host, size_t nbytes) {
  if (nbytes == 0) return 0;
  cudaStream_t s = dl_cuda_stream();
  if (DL_CUDA_CHECK(cudaMemcpyAsync(dev, host, nbytes, cudaMemcpyHostToDevice, s))) return -1;
  /* the host buffer may be freed as soon as we return */
  return DL_CUDA_CHECK(cudaStreamSynchronize(s));
}

/* (op, dtype) pairs: element-wise kernels exist where the op's dtype rule
 * computes (cuda_ewise*.cu instantiate exactly those); the other families'
 * front-ends check dtypes themselves */
bool supports_op(dl_op op, dl_dtype dt) {
  const dl_op_info *in = dl_op_get(op);
  if (in->family == DL_FAM_BINARY || in->family == DL_FAM_UNARY) return dl_rule_computes_in(in->rule, dt);
  return true;
}

const dl_backend table = {
  "cuda",
  supports_op,
  dl_cuda_malloc,
  dl_cuda_free,
  dl_cuda_copy,
  dl_cuda_fill,
  to_host,
  from_host,
  &dl_cuda_ewise,
  &dl_cuda_reduce,
  &dl_cuda_index,
  &dl_cuda_linalg,
  &dl_cuda_random,
  &dl_cuda_act,
  &dl_cuda_loss,
  &dl_cuda_layer,
  &dl_cuda_optim,
  &dl_cuda_decomp,
  &dl_cuda_conv,
};

} // namespace

/* failures since the kernel entry began, per thread; inside an entry the
 * first failure's message stays the thread's error until it returns */
static thread_local int failures;
static thread_local bool in_entry;

void dl_cuda_note_failure(void) { failures++; }
void dl_cuda_status_begin(void) {
  failures = 0;
  in_entry = true;
}
int dl_cuda_status(void) {
  int r = failures ? DL_KERNEL_FAILED : DL_KERNEL_OK;
  failures = 0;
  in_entry = false;
  return r;
}

int dl_cuda_check(cudaError_t err, const char *what) {
  if (err == cudaSuccess) return 0;
  if (!in_entry || !failures)
    dl_error_set("cuda: %s failed on cuda:%d: %s", what, current < 0 ? 0 : current, cudaGetErrorString(err));
  dl_cuda_note_failure();
  return -1;
}

int dl_cuda_current_device(void) { return current; }

cudaStream_t dl_cuda_stream(void) {
  int d = current < 0 ? 0 : current;
  std::lock_guard<std::mutex> g(stream_lock);
  if (!streams[d]) {
    /* non-blocking: no implicit ordering with the legacy default stream,
     * so every transfer names this stream */
    if (cudaStreamCreateWithFlags(&streams[d], cudaStreamNonBlocking) != cudaSuccess) {
      cudaGetLastError();
      streams[d] = 0;
      return cudaStreamPerThread;
    }
  }
  return streams[d];
}

extern "C" const dl_backend *dl_cuda_backend_get(int index) {
  if (select_device(index)) return NULL;
  return &table;
}

extern "C" int dl_cuda_device_count(void) {
  std::call_once(count_once, count_devices);
  return device_count;
}

extern "C" const char *dl_cuda_unavailable_reason(void) {
  dl_cuda_device_count();
  return reason;
}

extern "C" int dl_cuda_synchronize(int index) {
  if (select_device(index)) return -1;
  return DL_CUDA_CHECK(cudaStreamSynchronize(dl_cuda_stream())) ? -1 : 0;
}

extern "C" int dl_cuda_device_name(int index, char *buf, size_t n) {
  if (select_device(index)) return -1;
  cudaDeviceProp prop;
  if (DL_CUDA_CHECK(cudaGetDeviceProperties(&prop, index))) return -1;
  snprintf(buf, n, "%s", prop.name);
  return 0;
}

extern "C" const dl_cuda_nccl *dl_cuda_nccl_table(void);

/* the plugin's one exported symbol (the objects are built with hidden
 * visibility): the engine's loader checks abi and the struct sizes */
extern "C" __attribute__((visibility("default"))) const dl_cuda_plugin *dl_cuda_plugin_v1(void) {
  static const dl_cuda_plugin plugin = {
    DL_CUDA_PLUGIN_ABI,
    sizeof(dl_backend),
    DL_NOPS,
    dl_cuda_backend_get,
    dl_cuda_device_count,
    dl_cuda_unavailable_reason,
    dl_cuda_synchronize,
    dl_cuda_empty_cache,
    dl_cuda_memory_allocated,
    dl_cuda_max_memory_allocated,
    dl_cuda_reset_peak_memory_stats,
    dl_cuda_device_name,
    dl_cuda_nccl_table(),
  };
  return &plugin;
}

void *dl_cuda_library_symbol(const char *lib, const char *name) {
  static std::mutex lib_lock;
  static struct {
    char soname[64];
    void *handle;
  } libs[8];
  std::lock_guard<std::mutex> g(lib_lock);
  int slot = -1;
  for (int i = 0; i < 8 && slot < 0; i++)
    if (libs[i].handle && strcmp(libs[i].soname, lib) == 0) slot = i;
  if (slot < 0) {
    for (int i = 0; i < 8 && slot < 0; i++)
      if (!libs[i].handle) slot = i;
    if (slot < 0) {
      dl_error_set("cuda: too many libraries to load (%s)", lib);
      dl_cuda_note_failure();
      return NULL;
    }
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
#ifdef DL_CUDA_LIBDIR
    if (!h) { /* the toolkit's own directory, as the Makefile found it */
      char path[512];
      snprintf(path, sizeof path, "%s/%s", DL_CUDA_LIBDIR, lib);
      h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
#endif
    if (!h) {
      const char *e = dlerror();
      dl_error_set("cuda: cannot load %s: %s", lib, e ? e : "not found");
      dl_cuda_note_failure();
      return NULL;
    }
    snprintf(libs[slot].soname, sizeof libs[slot].soname, "%s", lib);
    libs[slot].handle = h;
  }
  void *f = dlsym(libs[slot].handle, name);
  if (!f) {
    dl_error_set("cuda: %s has no %s", lib, name);
    dl_cuda_note_failure();
  }
  return f;
}
