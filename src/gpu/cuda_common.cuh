/* cuda_common.cuh — what every CUDA kernel file shares: the engine headers
 * with C linkage, error capture into dl_error_set, launch geometry, dtype
 * dispatch, device scratch memory, and strided addressing of tensor views
 * inside kernels. Kernels never check arguments (the front-ends did). */
#ifndef DL_CUDA_COMMON_CUH
#define DL_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>
#include <type_traits>

extern "C" {
#include "../dl_backend.h"
#include "../dl_core.h"
#include "../dl_tensor.h"
}

/* ---- errors ---- */
/* 0 when err is cudaSuccess, else -1 with dl_error_set naming what failed. */
int dl_cuda_check(cudaError_t err, const char *what);
#define DL_CUDA_CHECK(call) dl_cuda_check((call), #call)
/* after a <<<...>>> launch: records a launch failure (bad geometry, no
 * kernel image for this card) as the engine error; 0 ok, -1 failed */
#define DL_CUDA_LAUNCHED(name) dl_cuda_check(cudaGetLastError(), name)

/* A kernel entry's status: every failure inside it (a launch, a library
 * call, a scratch allocation, in the entry or a helper it calls) is noted
 * on this thread; the entry starts with DL_CUDA_ENTRY() and returns
 * dl_cuda_status(): DL_KERNEL_OK, or DL_KERNEL_FAILED with the first
 * failure's message, which the front-end hands to the caller. */
void dl_cuda_note_failure(void);
void dl_cuda_status_begin(void);
int dl_cuda_status(void);
#define DL_CUDA_ENTRY() dl_cuda_status_begin()

/* ---- streams and memory ---- */
/* The stream every dlua kernel of the current device runs on; kernels are
 * issued in order, so no host sync is needed between them. */
cudaStream_t dl_cuda_stream(void);
/* Device memory from the caching allocator (NULL + dl_error_set on OOM). */
void *dl_cuda_malloc(size_t nbytes);
void dl_cuda_free(void *p, size_t nbytes);

/* ---- launch geometry: grid-stride loops over n elements ---- */
#define DL_CUDA_THREADS 256
inline unsigned dl_cuda_blocks(int64_t n) {
  int64_t b = (n + DL_CUDA_THREADS - 1) / DL_CUDA_THREADS;
  if (b < 1) b = 1;
  return (unsigned)(b > 65535 * 8 ? 65535 * 8 : b);
}
#define DL_CUDA_FOR(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)

/* ---- dtype dispatch: runs the statements with T bound to dt's C type ---- */
#define DL_CUDA_DISPATCH(dt, T, ...)                 \
  switch (dt) {                                      \
  case DL_FLOAT32: { typedef float T; __VA_ARGS__; } break;   \
  case DL_FLOAT64: { typedef double T; __VA_ARGS__; } break;  \
  case DL_INT64: { typedef int64_t T; __VA_ARGS__; } break;   \
  case DL_BOOL: { typedef bool T; __VA_ARGS__; } break;       \
  case DL_UINT8: { typedef uint8_t T; __VA_ARGS__; } break;   \
  default: break;                                    \
  }
#define DL_CUDA_DISPATCH_FLOAT(dt, T, ...)           \
  switch (dt) {                                      \
  case DL_FLOAT32: { typedef float T; __VA_ARGS__; } break;   \
  case DL_FLOAT64: { typedef double T; __VA_ARGS__; } break;  \
  default: break;                                    \
  }

/* ---- tensor views by value ---- */
/* Sizes and element strides of a view, passed by value to kernels so any
 * layout (transposed, narrowed, broadcast with 0 strides) is addressed
 * without a copy. contiguous is set when offset(i) == i. */
struct dl_cuda_view {
  char *data; /* the first element */
  int ndim;
  bool contiguous;
  int64_t size[DL_MAX_DIMS];
  int64_t stride[DL_MAX_DIMS];
};

/* t's view (a broadcast operand arrives expanded, with 0 strides) */
inline dl_cuda_view dl_cuda_view_of(const dl_tensor *t) {
  dl_cuda_view v;
  v.data = (char *)dl_tensor_data(t);
  v.ndim = t->ndim;
  int64_t expect = 1;
  v.contiguous = true;
  for (int d = t->ndim - 1; d >= 0; --d) {
    v.size[d] = t->shape[d];
    v.stride[d] = t->stride[d];
    if (t->shape[d] != 1 && t->stride[d] != expect) v.contiguous = false;
    expect *= t->shape[d];
  }
  return v;
}

/* element offset of the i-th element in C order */
__device__ __forceinline__ int64_t dl_cuda_offset(const dl_cuda_view &v, int64_t i) {
  if (v.contiguous) return i;
  int64_t off = 0;
  for (int d = v.ndim - 1; d >= 0; --d) {
    int64_t s = v.size[d];
    off += (i % s) * v.stride[d];
    i /= s;
  }
  return off;
}
template <typename T> __device__ __forceinline__ T &dl_cuda_at(const dl_cuda_view &v, int64_t i) {
  return ((T *)v.data)[dl_cuda_offset(v, i)];
}

/* ---- device selection and the C-side management API (cuda_backend.cu,
 * cuda_alloc.cu; declared for C in dl_cuda.h) ---- */
/* the device dl_cuda_backend_get last selected on this thread */
int dl_cuda_current_device(void);

/* ---- libraries loaded on first use ----
 * cuBLAS and cuSOLVER cost half a second and 200 MB to load, so a process
 * that never multiplies on the GPU should not link them: their entry points
 * come from dlopen on first call. lib is a soname ("libcublas.so.13"), found
 * through the binary's rpath; NULL with dl_error_set naming lib and name. */
void *dl_cuda_library_symbol(const char *lib, const char *name);
#define DL_CUDA_STR_(x) #x
#define DL_CUDA_STR(x) DL_CUDA_STR_(x)

/* ---- dtype conversions with the CPU's defined results (cpu_convert.h):
 * NaN and out-of-range floats become INT64_MIN, bool is "!= 0" ---- */
__host__ __device__ __forceinline__ int64_t dl_cuda_f2i(double x) {
  if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) return INT64_MIN;
  return (int64_t)x;
}
template <typename D, typename S> __host__ __device__ __forceinline__ D dl_cuda_convert(S x) {
  if constexpr (std::is_same<D, bool>::value) {
    return x != (S)0;
  } else if constexpr (std::is_integral<D>::value && std::is_floating_point<S>::value) {
    return (D)dl_cuda_f2i((double)x);
  } else {
    return (D)x;
  }
}
/* the dl_dtype of a C type (constexpr: kernels ask the op table's rules) */
template <typename T> __host__ __device__ constexpr dl_dtype dl_cuda_dtype_of() {
  return std::is_same<T, float>::value     ? DL_FLOAT32
         : std::is_same<T, double>::value  ? DL_FLOAT64
         : std::is_same<T, int64_t>::value ? DL_INT64
         : std::is_same<T, bool>::value    ? DL_BOOL
                                           : DL_UINT8;
}

/* a script number in dtype T, as dl_cpu_value_of converts it */
template <typename T> inline T dl_cuda_scalar_as(dl_scalar s) {
  double f = s.is_int ? (double)s.i : s.f;
  if constexpr (std::is_same<T, bool>::value) return s.is_int ? s.i != 0 : f != 0;
  else if constexpr (std::is_same<T, int64_t>::value) return s.is_int ? s.i : dl_cuda_f2i(f);
  else if constexpr (std::is_same<T, uint8_t>::value) return (uint8_t)(s.is_int ? (uint64_t)s.i : (uint64_t)dl_cuda_f2i(f));
  else return (T)f;
}

/* ---- coalescing: n views of one shape lose their size-1 dims, and
 * neighbouring dims merge when every view steps through them as one, so
 * strided kernels divide by fewer sizes per element ---- */
inline void dl_cuda_coalesce(dl_cuda_view *v, int n) {
  int nd = 0;
  for (int d = 0; d < v[0].ndim; d++) {
    if (v[0].size[d] == 1) continue;
    for (int k = 0; k < n; k++) {
      v[k].size[nd] = v[k].size[d];
      v[k].stride[nd] = v[k].stride[d];
    }
    nd++;
  }
  int m = 0; /* merged dims so far, outermost first */
  for (int d = 0; d < nd; d++) {
    bool merge = m > 0;
    for (int k = 0; k < n && merge; k++)
      if (v[k].stride[m - 1] != v[k].stride[d] * v[k].size[d]) merge = false;
    for (int k = 0; k < n; k++) {
      if (merge) {
        v[k].size[m - 1] *= v[k].size[d];
        v[k].stride[m - 1] = v[k].stride[d];
      } else {
        v[k].size[m] = v[k].size[d];
        v[k].stride[m] = v[k].stride[d];
      }
    }
    if (!merge) m++;
  }
  for (int k = 0; k < n; k++) {
    v[k].ndim = m;
    v[k].contiguous = m == 0 || (m == 1 && v[k].stride[0] == 1);
  }
}

/* scratch that lives until the end of the caller's scope; freed into the
 * cache, which is safe because later work runs on the same stream */
struct dl_cuda_scratch {
  void *p = nullptr;
  size_t n = 0;
  explicit dl_cuda_scratch(size_t nbytes) : p(dl_cuda_malloc(nbytes ? nbytes : 1)), n(nbytes ? nbytes : 1) {}
  ~dl_cuda_scratch() { if (p) dl_cuda_free(p, n); }
  dl_cuda_scratch(const dl_cuda_scratch &) = delete;
  dl_cuda_scratch &operator=(const dl_cuda_scratch &) = delete;
};

#endif
