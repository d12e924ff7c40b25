/* cuda_cudnn.cu — convolution on the GPU through cuDNN: the fused
 * conv_forward / conv_backward_data / conv_backward_weights entries of
 * dl_conv.h for float32, the field's engine for convolution on NVIDIA
 * cards (its algorithms pick implicit GEMM, FFT or Winograd per shape;
 * im2col + cuBLAS moves every window through memory). cuDNN is loaded on
 * the first convolution (dlopen, as cuBLAS); where it cannot be loaded, or
 * for what it does not take (padding that differs before and after, which
 * "same" padding of an even kernel needs), conv_supported says no and the
 * engine runs im2col and GEMMs instead. FMA math (no TF32), so float32
 * keeps float32 accuracy as on the CPU; the algorithms are cuDNN's
 * deterministic ones, so a step gives the same sums on every run. One cuDNN
 * handle per device, on the device's stream; workspace from the caching
 * allocator. */
#include "cuda_common.cuh"

extern "C" {
#include "../ops/dl_conv.h"
}

#include <cudnn.h>
#include <mutex>
#include <stdio.h>

namespace {

#define MAX_DEVICES 64
#define MAX_ALGOS 16

struct cudnn_api {
  decltype(&cudnnCreate) create;
  decltype(&cudnnSetStream) set_stream;
  decltype(&cudnnGetErrorString) error_string;
  decltype(&cudnnCreateTensorDescriptor) create_tensor;
  decltype(&cudnnSetTensorNdDescriptor) set_tensor;
  decltype(&cudnnDestroyTensorDescriptor) destroy_tensor;
  decltype(&cudnnCreateFilterDescriptor) create_filter;
  decltype(&cudnnSetFilterNdDescriptor) set_filter;
  decltype(&cudnnDestroyFilterDescriptor) destroy_filter;
  decltype(&cudnnCreateConvolutionDescriptor) create_conv;
  decltype(&cudnnSetConvolutionNdDescriptor) set_conv;
  decltype(&cudnnSetConvolutionGroupCount) set_groups;
  decltype(&cudnnSetConvolutionMathType) set_math;
  decltype(&cudnnDestroyConvolutionDescriptor) destroy_conv;
  decltype(&cudnnGetConvolutionForwardAlgorithm_v7) fwd_algos;
  decltype(&cudnnGetConvolutionForwardWorkspaceSize) fwd_ws;
  decltype(&cudnnConvolutionForward) fwd;
  decltype(&cudnnAddTensor) add_tensor;
  decltype(&cudnnGetConvolutionBackwardDataAlgorithm_v7) bwd_data_algos;
  decltype(&cudnnGetConvolutionBackwardDataWorkspaceSize) bwd_data_ws;
  decltype(&cudnnConvolutionBackwardData) bwd_data;
  decltype(&cudnnGetConvolutionBackwardFilterAlgorithm_v7) bwd_filter_algos;
  decltype(&cudnnGetConvolutionBackwardFilterWorkspaceSize) bwd_filter_ws;
  decltype(&cudnnConvolutionBackwardFilter) bwd_filter;
  decltype(&cudnnConvolutionBackwardBias) bwd_bias;
};
cudnn_api api;
std::mutex lock;
int loaded = 0; /* 0 not tried, 1 loaded, -1 cannot be loaded */
cudnnHandle_t handles[MAX_DEVICES];

/* 1 loaded, -1 not (its error set); lock held */
int load_api(void) {
  if (loaded) return loaded;
  const char *lib = "libcudnn.so." DL_CUDA_STR(CUDNN_MAJOR);
  loaded = -1;
#define LOAD(field, name) \
  if (!(api.field = (decltype(api.field))dl_cuda_library_symbol(lib, #name))) return -1;
  LOAD(create, cudnnCreate)
  LOAD(set_stream, cudnnSetStream)
  LOAD(error_string, cudnnGetErrorString)
  LOAD(create_tensor, cudnnCreateTensorDescriptor)
  LOAD(set_tensor, cudnnSetTensorNdDescriptor)
  LOAD(destroy_tensor, cudnnDestroyTensorDescriptor)
  LOAD(create_filter, cudnnCreateFilterDescriptor)
  LOAD(set_filter, cudnnSetFilterNdDescriptor)
  LOAD(destroy_filter, cudnnDestroyFilterDescriptor)
  LOAD(create_conv, cudnnCreateConvolutionDescriptor)
  LOAD(set_conv, cudnnSetConvolutionNdDescriptor)
  LOAD(set_groups, cudnnSetConvolutionGroupCount)
  LOAD(set_math, cudnnSetConvolutionMathType)
  LOAD(destroy_conv, cudnnDestroyConvolutionDescriptor)
  LOAD(fwd_algos, cudnnGetConvolutionForwardAlgorithm_v7)
  LOAD(fwd_ws, cudnnGetConvolutionForwardWorkspaceSize)
  LOAD(fwd, cudnnConvolutionForward)
  LOAD(add_tensor, cudnnAddTensor)
  LOAD(bwd_data_algos, cudnnGetConvolutionBackwardDataAlgorithm_v7)
  LOAD(bwd_data_ws, cudnnGetConvolutionBackwardDataWorkspaceSize)
  LOAD(bwd_data, cudnnConvolutionBackwardData)
  LOAD(bwd_filter_algos, cudnnGetConvolutionBackwardFilterAlgorithm_v7)
  LOAD(bwd_filter_ws, cudnnGetConvolutionBackwardFilterWorkspaceSize)
  LOAD(bwd_filter, cudnnConvolutionBackwardFilter)
  LOAD(bwd_bias, cudnnConvolutionBackwardBias)
#undef LOAD
  loaded = 1;
  return 1;
}

int check(cudnnStatus_t st, const char *what) {
  if (st == CUDNN_STATUS_SUCCESS) return 0;
  dl_error_set("convolution: cuDNN %s failed: %s", what, api.error_string ? api.error_string(st) : "error");
  dl_cuda_note_failure();
  return -1;
}
#define CK(call) check((call), #call)

/* the current device's handle, on its stream (NULL with an error) */
cudnnHandle_t handle(void) {
  int d = dl_cuda_current_device();
  if (d < 0) d = 0;
  if (d >= MAX_DEVICES) {
    dl_error_set("convolution: device %d is beyond the %d cuDNN handles", d, MAX_DEVICES);
    dl_cuda_note_failure();
    return nullptr;
  }
  std::lock_guard<std::mutex> g(lock);
  if (load_api() < 0) {
    dl_cuda_note_failure();
    return nullptr;
  }
  if (!handles[d] && CK(api.create(&handles[d]))) {
    handles[d] = nullptr;
    return nullptr;
  }
  if (CK(api.set_stream(handles[d], dl_cuda_stream()))) return nullptr;
  return handles[d];
}

/* The descriptors of one convolution: cuDNN wants at least 4 dims, so 1-D
 * runs as 2-D with a leading spatial size of 1 */
struct descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, b = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~descs() {
    if (x) api.destroy_tensor(x);
    if (y) api.destroy_tensor(y);
    if (b) api.destroy_tensor(b);
    if (w) api.destroy_filter(w);
    if (conv) api.destroy_conv(conv);
  }
};

/* dims of [N, C, *S] padded to 4 when 1-D (a spatial 1 in front) and
 * their contiguous strides; returns the dim count, or -1 with an error
 * when a stride passes int (cuDNN's descriptors are int) */
int nchw(const int64_t *shape, int nd, int *dims, int *strides) {
  int n = nd + 2 < 4 ? 4 : nd + 2, pad = n - (nd + 2);
  int64_t full[5] = {shape[0], shape[1], 1, 1, 1}, st = 1;
  for (int i = 0; i < nd; i++) full[2 + pad + i] = shape[2 + i];
  for (int i = n - 1; i >= 0; i--) {
    if (full[i] > INT32_MAX || st > INT32_MAX) {
      dl_error_set("convolution: a tensor too large for cuDNN's int descriptors");
      dl_cuda_note_failure();
      return -1;
    }
    dims[i] = (int)full[i], strides[i] = (int)st;
    st *= full[i];
  }
  return n;
}

int tensor_desc(cudnnTensorDescriptor_t *d, const int64_t *shape, int nd) {
  int dims[5], strides[5], n = nchw(shape, nd, dims, strides);
  return n < 0 || CK(api.create_tensor(d)) || CK(api.set_tensor(*d, CUDNN_DATA_FLOAT, n, dims, strides));
}

/* x [N, C, *S], w [O, C / g, *k], y [N, O, *out] */
int make_descs(descs *d, const dl_tensor *x, const dl_tensor *w, const int64_t *yshape, const dl_conv_params *p,
               bool bias) {
  const int nd = p->w.nd;
  int wdims[5], ws[5], n = nchw(w->shape, nd, wdims, ws);
  if (n < 0 || tensor_desc(&d->x, x->shape, nd) || tensor_desc(&d->y, yshape, nd)) return -1;
  if (CK(api.create_filter(&d->w)) || CK(api.set_filter(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, n, wdims)))
    return -1;
  int pad[3], stride[3], dil[3], k = n - 2, off = k - nd;
  for (int i = 0; i < k; i++) pad[i] = 0, stride[i] = 1, dil[i] = 1;
  for (int i = 0; i < nd; i++) {
    pad[off + i] = (int)p->w.pad_lo[i];
    stride[off + i] = (int)p->w.stride[i];
    dil[off + i] = (int)p->w.dilation[i];
  }
  if (CK(api.create_conv(&d->conv)) ||
      CK(api.set_conv(d->conv, k, pad, stride, dil, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)) ||
      CK(api.set_groups(d->conv, (int)p->groups)) || CK(api.set_math(d->conv, CUDNN_FMA_MATH)))
    return -1;
  if (bias) {
    int64_t bshape[5] = {1, w->shape[0], 1, 1, 1};
    if (tensor_desc(&d->b, bshape, nd)) return -1;
  }
  return 0;
}

/* the first deterministic algorithm of cuDNN's ranking that succeeded (the
 * first of any kind when none is deterministic) */
template <typename Perf>
int pick(const Perf *perf, int count, const char *what) {
  int any = -1;
  for (int i = 0; i < count; i++) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (perf[i].determinism == CUDNN_DETERMINISTIC) return i;
    if (any < 0) any = i;
  }
  if (any < 0) {
    dl_error_set("convolution: cuDNN has no %s algorithm for this shape", what);
    dl_cuda_note_failure();
  }
  return any;
}

} // namespace

/* the conv table's fused entries (cuda_conv.cu) */
extern "C" {

int dl_cuda_conv_forward(dl_tensor *y, const dl_tensor *x, const dl_tensor *w, const dl_tensor *b,
                 const struct dl_conv_params *p) {
  DL_CUDA_ENTRY();
  cudnnHandle_t h = handle();
  descs d;
  if (!h || make_descs(&d, x, w, y->shape, p, b != nullptr)) return dl_cuda_status();
  cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
  int count = 0, i;
  size_t ws = 0;
  if (CK(api.fwd_algos(h, d.x, d.w, d.conv, d.y, MAX_ALGOS, &count, perf)) || (i = pick(perf, count, "forward")) < 0 ||
      CK(api.fwd_ws(h, d.x, d.w, d.conv, d.y, perf[i].algo, &ws)))
    return dl_cuda_status();
  dl_cuda_scratch s(ws);
  if (!s.p) return dl_cuda_status();
  const float one = 1, zero = 0;
  if (CK(api.fwd(h, &one, d.x, dl_tensor_data(x), d.w, dl_tensor_data(w), d.conv, perf[i].algo, s.p, ws, &zero, d.y,
                 dl_tensor_data(y))))
    return dl_cuda_status();
  if (b) CK(api.add_tensor(h, &one, d.b, dl_tensor_data(b), &one, d.y, dl_tensor_data(y)));
  return dl_cuda_status();
}

int dl_cuda_conv_backward_data(dl_tensor *gx, const dl_tensor *gy, const dl_tensor *w, const struct dl_conv_params *p) {
  DL_CUDA_ENTRY();
  cudnnHandle_t h = handle();
  descs d;
  if (!h || make_descs(&d, gx, w, gy->shape, p, false)) return dl_cuda_status();
  cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_ALGOS];
  int count = 0, i;
  size_t ws = 0;
  if (CK(api.bwd_data_algos(h, d.w, d.y, d.conv, d.x, MAX_ALGOS, &count, perf)) ||
      (i = pick(perf, count, "backward data")) < 0 || CK(api.bwd_data_ws(h, d.w, d.y, d.conv, d.x, perf[i].algo, &ws)))
    return dl_cuda_status();
  dl_cuda_scratch s(ws);
  if (!s.p) return dl_cuda_status();
  const float one = 1, zero = 0;
  CK(api.bwd_data(h, &one, d.w, dl_tensor_data(w), d.y, dl_tensor_data(gy), d.conv, perf[i].algo, s.p, ws, &zero, d.x,
                  dl_tensor_data(gx)));
  return dl_cuda_status();
}

int dl_cuda_conv_backward_weights(dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                          const struct dl_conv_params *p) {
  DL_CUDA_ENTRY();
  cudnnHandle_t h = handle();
  descs d;
  /* the filter's shape: gw's, or when only the bias is asked, rebuilt from
   * the output's channels, the input's and the window */
  int64_t wshape[2 + DL_CONV_MAX_SPATIAL] = {gy->shape[1], x->shape[1] / p->groups};
  for (int i = 0; i < p->w.nd; i++) wshape[2 + i] = p->w.kernel[i];
  dl_tensor wt = {};
  wt.ndim = 2 + p->w.nd;
  for (int i = 0; i < wt.ndim; i++) wt.shape[i] = wshape[i];
  if (!h || make_descs(&d, x, gw ? gw : &wt, gy->shape, p, gb != nullptr)) return dl_cuda_status();
  const float one = 1, zero = 0;
  if (gw) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_ALGOS];
    int count = 0, i;
    size_t ws = 0;
    if (CK(api.bwd_filter_algos(h, d.x, d.y, d.conv, d.w, MAX_ALGOS, &count, perf)) ||
        (i = pick(perf, count, "backward filter")) < 0 ||
        CK(api.bwd_filter_ws(h, d.x, d.y, d.conv, d.w, perf[i].algo, &ws)))
      return dl_cuda_status();
    dl_cuda_scratch s(ws);
    if (!s.p) return dl_cuda_status();
    if (CK(api.bwd_filter(h, &one, d.x, dl_tensor_data(x), d.y, dl_tensor_data(gy), d.conv, perf[i].algo, s.p, ws,
                          &zero, d.w, dl_tensor_data(gw))))
      return dl_cuda_status();
  }
  if (gb) CK(api.bwd_bias(h, &one, d.y, dl_tensor_data(gy), &zero, d.b, dl_tensor_data(gb)));
  return dl_cuda_status();
}

/* what cuDNN takes: float32, the same padding before and after each dim,
 * sizes within int, and a library that loads */
bool dl_cuda_conv_supported(const dl_tensor *x, const struct dl_conv_params *p) {
  if (x->dtype != DL_FLOAT32) return false;
  for (int i = 0; i < p->w.nd; i++)
    if (p->w.pad_lo[i] != p->w.pad_hi[i]) return false;
  if (x->numel > INT32_MAX) return false; /* the descriptors' strides are int */
  std::lock_guard<std::mutex> g(lock);
  return load_api() > 0;
}

} // extern "C"
