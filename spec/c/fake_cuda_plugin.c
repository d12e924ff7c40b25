/* fake_cuda_plugin.c — a stand-in CUDA plugin for the specs: "cuda:N"
 * tensors live in host memory (the CPU's copy and fill serve them), and
 * every element-wise and reduction kernel fails on purpose, as a failed
 * launch would, so spec/kernel_status_spec.lua can show that a kernel's
 * failure reaches the caller as the op's error. It has two devices and,
 * like CUDA, a current one (the last backend_get): a host transfer must be
 * issued with its block's device current (on that device's stream), or it
 * fails. Its memory is 4 MB: an allocation past that asks the engine to
 * reclaim dead tensors (dl_alloc_reclaim, as the CUDA allocator does) and
 * tries once more. Loaded through DLUA_CUDA_PLUGIN; the engine's symbols
 * come from the program. */
#include <stdlib.h>
#include <string.h>

#include "dl_alloc.h"
#include "dl_cuda.h"
#include "ops/dl_ewise.h"
#include "ops/dl_reduce.h"

static int fail(void) {
  dl_error_set("cuda: fake kernel failed on purpose");
  return DL_KERNEL_FAILED;
}

static int binary(dl_binop op, dl_tensor *out, dl_operand a, dl_operand b, dl_scalar alpha) {
  (void)op, (void)out, (void)a, (void)b, (void)alpha;
  return fail();
}
static int unary(dl_unop op, dl_tensor *out, const dl_tensor *a) {
  (void)op, (void)out, (void)a;
  return fail();
}
static int reduce(const dl_reduce_call *c) {
  (void)c;
  return fail();
}
static int scan(dl_tensor *dst, const dl_tensor *src, int dim, dl_scan_op op) {
  (void)dst, (void)src, (void)dim, (void)op;
  return fail();
}

static const struct dl_ewise_kernels ewise = {.binary = binary, .unary = unary};
static const struct dl_reduce_kernels reduce_k = {.reduce = reduce, .scan = scan};

static bool supports(dl_op op, dl_dtype dt) {
  (void)op, (void)dt;
  return true;
}
/* blocks carry their device in a 16-byte header */
#define BUDGET ((size_t)4 << 20)
static int current;
static size_t in_use;
static void *alloc(size_t n) {
  if (in_use + n > BUDGET) dl_alloc_reclaim();
  if (in_use + n > BUDGET) {
    dl_error_set("out of memory on cuda:%d (asked for %zu bytes, %zu allocated)", current, n, in_use);
    return NULL;
  }
  char *p = malloc(16 + (n ? n : 1));
  if (!p) return NULL;
  *(int *)p = current;
  in_use += n;
  return p + 16;
}
static void release(void *p, size_t n) {
  in_use -= n;
  if (p) free((char *)p - 16);
}
static int on_current(const char *what, const void *block) {
  int dev = *(const int *)((const char *)block - 16);
  if (dev == current) return 0;
  dl_error_set("cuda: %s of a cuda:%d block issued on cuda:%d's stream", what, dev, current);
  return -1;
}
static int to_host(void *dst, const void *src, size_t n) {
  if (on_current("download", src)) return -1;
  memcpy(dst, src, n);
  return 0;
}
static int from_host(void *dst, const void *src, size_t n) {
  if (on_current("upload", dst)) return -1;
  memcpy(dst, src, n);
  return 0;
}
static void copy(dl_tensor *dst, const dl_tensor *src) { dl_cpu_backend.copy(dst, src); }
static void fill(dl_tensor *dst, dl_scalar v) { dl_cpu_backend.fill(dst, v); }

static const dl_backend backend = {
  .name = "cuda",
  .supports_op = supports,
  .alloc = alloc,
  .free = release,
  .copy = copy,
  .fill = fill,
  .to_host = to_host,
  .from_host = from_host,
  .ewise = &ewise,
  .reduce = &reduce_k,
};

static const dl_backend *backend_get(int index) {
  if (index < 0 || index > 1) {
    dl_error_set("cuda: device cuda:%d is not available (2 devices present)", index);
    return NULL;
  }
  current = index;
  return &backend;
}
static int device_count(void) { return 2; }
static const char *reason(void) { return ""; }
static int synchronize(int index) { return index >= 0 && index <= 1 ? 0 : -1; }
static void empty_cache(void) {}
static size_t memory(int index) {
  (void)index;
  return 0;
}
static void reset(int index) { (void)index; }
static int device_name(int index, char *buf, size_t n) {
  (void)index;
  strncpy(buf, "fake", n);
  return 0;
}

__attribute__((visibility("default"))) const dl_cuda_plugin *dl_cuda_plugin_v1(void) {
  static const dl_cuda_plugin p = {DL_CUDA_PLUGIN_ABI, sizeof(dl_backend), DL_NOPS, backend_get, device_count,
                                   reason, synchronize, empty_cache, memory, memory, reset, device_name, NULL};
  return &p;
}
