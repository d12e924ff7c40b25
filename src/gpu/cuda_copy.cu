/* cuda_copy.cu — the backend's copy (any dtype pair, any layout, 0 strides
 * included) and fill. Equal dtypes and contiguous operands become one
 * device-to-device memcpy; everything else is one kernel per (destination,
 * source) dtype pair over coalesced views, with the conversions of
 * cpu_copy.c (NaN and out-of-range floats to INT64_MIN, bool as != 0). */
#include "cuda_common.cuh"

#include <string.h>

template <typename D, typename S> __global__ void copy_kernel(int64_t n, dl_cuda_view dst, dl_cuda_view src) {
  DL_CUDA_FOR(i, n) { dl_cuda_at<D>(dst, i) = dl_cuda_convert<D, S>(dl_cuda_at<S>(src, i)); }
}

/* bool and uint8 are both bytes; a uint8 copied into bool becomes 0/1 */
void dl_cuda_copy(dl_tensor *dst, const dl_tensor *src) {
  int64_t n = dst->numel;
  if (n == 0) return;
  if (dst->dtype == src->dtype && dl_tensor_is_contiguous(dst) && dl_tensor_is_contiguous(src) &&
      dl_tensor_same_shape(dst, src)) {
    DL_CUDA_CHECK(cudaMemcpyAsync(dl_tensor_data(dst), dl_tensor_data(src), (size_t)n * dl_dtype_size(dst->dtype),
                                  cudaMemcpyDeviceToDevice, dl_cuda_stream()));
    return;
  }
  dl_cuda_view v[2] = {dl_cuda_view_of(dst), dl_cuda_view_of(src)};
  dl_cuda_coalesce(v, 2);
  cudaStream_t s = dl_cuda_stream();
  DL_CUDA_DISPATCH(dst->dtype, D, DL_CUDA_DISPATCH(src->dtype, S, {
    copy_kernel<D, S><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v[0], v[1]);
  }));
  DL_CUDA_LAUNCHED("copy");
}

template <typename T> __global__ void fill_kernel(int64_t n, dl_cuda_view dst, T value) {
  DL_CUDA_FOR(i, n) { dl_cuda_at<T>(dst, i) = value; }
}

void dl_cuda_fill(dl_tensor *dst, dl_scalar v) {
  int64_t n = dst->numel;
  if (n == 0) return;
  dl_cuda_view view = dl_cuda_view_of(dst);
  dl_cuda_coalesce(&view, 1);
  cudaStream_t s = dl_cuda_stream();
  DL_CUDA_DISPATCH(dst->dtype, T, {
    T value = dl_cuda_scalar_as<T>(v);
    /* zero of any dtype, or a byte pattern: a memset */
    T zero = (T)0;
    if (view.contiguous && (memcmp(&value, &zero, sizeof(T)) == 0 || sizeof(T) == 1)) {
      unsigned char byte = 0;
      memcpy(&byte, &value, 1);
      DL_CUDA_CHECK(cudaMemsetAsync(view.data, byte, (size_t)n * sizeof(T), s));
      return;
    }
    fill_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, view, value);
  });
  DL_CUDA_LAUNCHED("fill");
}
