/* test_tensor.c — engine-only checks of storage, views and copies. */
#include <stdint.h>
#include "ctest.h"
#include <pthread.h>
#include "dl_alloc.h"
#include "dl_tensor.h"

#include <string.h>

static int released;
static void on_release(void *data, void *ctx) {
  (void)data;
  (void)ctx;
  released++;
}

#ifndef DL_NO_CACHE /* the sanitizer build caches nothing */
#define THREAD_BLOCKS 40
#define THREAD_BLOCK_BYTES 3000 /* a size class nothing above uses */

/* allocates and frees blocks on its own thread (into its own cache) */
static void *cache_blocks(void *unused) {
  (void)unused;
  void *blocks[THREAD_BLOCKS];
  for (int i = 0; i < THREAD_BLOCKS; i++) blocks[i] = dl_host_alloc(THREAD_BLOCK_BYTES);
  for (int i = 0; i < THREAD_BLOCKS; i++) dl_host_free(blocks[i], THREAD_BLOCK_BYTES);
  int64_t n = 5; /* and a pooled tensor header and storage */
  dl_tensor_release(dl_tensor_zeros(&n, 1, DL_FLOAT32, dl_device_cpu()));
  return NULL;
}
#endif

int main(void) {
  int64_t shape[2] = {2, 3};
  dl_tensor *t = dl_tensor_zeros(shape, 2, DL_FLOAT32, dl_device_cpu());
  CHECK(t && t->numel == 6 && t->stride[0] == 3 && t->stride[1] == 1);
  CHECK(dl_tensor_is_contiguous(t));
  for (int64_t i = 0; i < 6; i++) ((float *)dl_tensor_data(t))[i] = (float)i;

  /* transpose is a view with swapped strides */
  dl_tensor *tt = dl_tensor_transpose(t, 0, 1);
  CHECK(tt && tt->shape[0] == 3 && tt->stride[0] == 1 && !dl_tensor_is_contiguous(tt));
  int64_t ix[2] = {2, 1};
  CHECK(dl_tensor_get(tt, ix).f == 5.0);

  /* contiguous copy of a transposed view keeps the values */
  dl_tensor *c = dl_tensor_contiguous(tt);
  CHECK(c && dl_tensor_is_contiguous(c) && ((float *)dl_tensor_data(c))[1] == 3.0f);

  /* view of a non-contiguous tensor fails; reshape copies */
  int64_t flat = 6;
  CHECK(dl_tensor_view(tt, &flat, 1) == NULL);
  CHECK(strstr(dl_error_get(), "view") != NULL);
  dl_tensor *r = dl_tensor_reshape(tt, &flat, 1);
  CHECK(r && ((float *)dl_tensor_data(r))[1] == 3.0f);

  /* narrow and select share storage */
  dl_tensor *n = dl_tensor_narrow(t, 1, 1, 2);
  CHECK(n && n->shape[1] == 2 && n->offset == 1 && n->storage == t->storage);
  dl_tensor *s = dl_tensor_select(t, 0, 1);
  CHECK(s && s->ndim == 1 && s->offset == 3);
  CHECK(dl_tensor_select(t, 0, 2) == NULL);

  /* expand gives 0 strides; copy_ broadcasts and converts dtype */
  int64_t one = 3;
  dl_tensor *row = dl_tensor_empty(&one, 1, DL_FLOAT64, dl_device_cpu());
  for (int i = 0; i < 3; i++) ((double *)dl_tensor_data(row))[i] = i + 0.5;
  CHECK(dl_tensor_copy_(t, row) == 0);
  int64_t ij[2] = {1, 2};
  CHECK(dl_tensor_get(t, ij).f == 2.5);
  int64_t bad[2] = {4, 3};
  CHECK(dl_tensor_expand(t, bad, 2) == NULL);

  /* broadcasting shapes */
  int64_t a[2] = {4, 1}, b[1] = {5}, out[DL_MAX_DIMS];
  int nd;
  CHECK(dl_broadcast_shapes("add", a, 2, b, 1, out, &nd) == 0 && nd == 2 && out[0] == 4 && out[1] == 5);
  int64_t b2[1] = {3};
  int64_t a2[2] = {2, 2};
  CHECK(dl_broadcast_shapes("add", a2, 2, b2, 1, out, &nd) == -1);
  CHECK(strstr(dl_error_get(), "[2,2] and [3]") != NULL);

  /* host buffers are wrapped, not copied, and released once */
  float buf[4] = {1, 2, 3, 4};
  int64_t s4 = 4;
  dl_tensor *w = dl_tensor_from_buffer(buf, &s4, 1, NULL, DL_FLOAT32, on_release, NULL);
  CHECK(w && dl_tensor_data(w) == buf);
  dl_tensor *wv = dl_tensor_narrow(w, 0, 1, 2);
  dl_tensor_release(w);
  CHECK(released == 0);
  dl_tensor_release(wv);
  CHECK(released == 1);

  /* the caching allocator reuses blocks */
  dl_alloc_stats st0, st1;
  dl_tensor *big = dl_tensor_empty(shape, 2, DL_FLOAT32, dl_device_cpu());
  dl_tensor_release(big);
  dl_host_stats(&st0);
  for (int i = 0; i < 100; i++) dl_tensor_release(dl_tensor_empty(shape, 2, DL_FLOAT32, dl_device_cpu()));
  dl_host_stats(&st1);
#ifndef DL_NO_CACHE
  CHECK(st1.sys_allocs == st0.sys_allocs);
#endif

  dl_tensor *objs[] = {t, tt, c, r, n, s, row};
  for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) dl_tensor_release(objs[i]);
  /* a NULL release: the host keeps its buffer, dlua never frees it (a
   * stack buffer here, which a free would corrupt) */
  {
    float stack_buf[4] = {1, 2, 3, 4};
    int64_t n4[1] = {4};
    for (int round = 0; round < 3; round++) {
      dl_tensor *b = dl_tensor_from_buffer(stack_buf, n4, 1, NULL, DL_FLOAT32, NULL, NULL);
      CHECK(b && ((float *)dl_tensor_data(b))[3] == 4.0f);
      dl_tensor_release(b);
    }
    dl_tensor *after = dl_tensor_zeros(n4, 1, DL_FLOAT32, dl_device_cpu());
    CHECK(after && (void *)dl_tensor_data(after) != (void *)stack_buf && stack_buf[0] == 1.0f);
    dl_tensor_release(after);
  }
  /* bad host buffers are errors, never tensors that read outside them */
  {
    float one[1] = {1};
    int64_t n3[1] = {3}, z2[2] = {0, 3}, huge[1] = {INT64_MAX / 2};
    CHECK(dl_tensor_from_buffer(NULL, NULL, 0, NULL, DL_FLOAT32, NULL, NULL) == NULL); /* a 0-d tensor reads one */
    CHECK(strstr(dl_error_get(), "NULL data") != NULL);
    CHECK(dl_tensor_from_buffer(one, NULL, 2, NULL, DL_FLOAT32, NULL, NULL) == NULL);
    CHECK(strstr(dl_error_get(), "NULL shape") != NULL);
    CHECK(dl_tensor_from_buffer(one, n3, 1, NULL, (dl_dtype)7, NULL, NULL) == NULL);
    CHECK(strstr(dl_error_get(), "unknown dtype 7") != NULL);
    CHECK(dl_tensor_from_buffer(one, n3, 1, huge, DL_FLOAT32, NULL, NULL) == NULL);
    CHECK(strstr(dl_error_get(), "addressable") != NULL);
    int64_t neg[1] = {-1};
    CHECK(dl_tensor_from_buffer(one, n3, 1, neg, DL_FLOAT32, NULL, NULL) == NULL);
    CHECK(strstr(dl_error_get(), "negative stride") != NULL);
    int64_t z1[1] = {0}; /* with no elements too */
    CHECK(dl_tensor_from_buffer(one, z1, 1, neg, DL_FLOAT32, NULL, NULL) == NULL);
    /* an empty tensor over NULL data is fine, and its views share the storage's count */
    dl_tensor *e = dl_tensor_from_buffer(NULL, z2, 2, NULL, DL_FLOAT32, NULL, NULL);
    CHECK(e && e->numel == 0);
    dl_tensor *ev = e ? dl_tensor_narrow(e, 1, 0, 2) : NULL;
    CHECK(ev && ev->storage == e->storage && e->storage->refcount == 2);
    dl_tensor_release(e);
    CHECK(ev && ev->storage->refcount == 1);
    dl_tensor_release(ev);
  }
#ifndef DL_NO_CACHE
  /* a thread that ends hands its cached blocks to the others: the main
   * thread gets them back without asking the system */
  {
    pthread_t th;
    CHECK(pthread_create(&th, NULL, cache_blocks, NULL) == 0);
    pthread_join(th, NULL);
    dl_alloc_stats a0, a1;
    dl_host_stats(&a0);
    void *blocks[THREAD_BLOCKS];
    for (int i = 0; i < THREAD_BLOCKS; i++) blocks[i] = dl_host_alloc(THREAD_BLOCK_BYTES);
    dl_host_stats(&a1);
    CHECK(a1.sys_allocs == a0.sys_allocs);
    for (int i = 0; i < THREAD_BLOCKS; i++) dl_host_free(blocks[i], THREAD_BLOCK_BYTES);
  }
#endif
  CTEST_END();
}
