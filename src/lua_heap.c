/* lua_heap.c — the Lua allocator of the states dlua creates (the dlua
 * program and dlua_newstate), and with it the lifetime of tensor userdata.
 *
 * Two jobs, both for the per-op cost of `c = a + b` on small tensors:
 * 1. Small blocks come from per-state free lists, so the userdata of a
 *    short-lived tensor costs no malloc/free (a state runs on one thread at
 *    a time, so the lists take no lock).
 * 2. Tensor userdata need no __gc. A finalizer costs a protected call per
 *    dead object and keeps the object for one more cycle; here, when Lua
 *    frees the memory of a dead tensor userdata, the allocator recognises
 *    it and queues the tensor. Recognition is by address: every userdata
 *    of a tensor's block size lives in the state's slab (a reserved range
 *    of its own, committed in 64 KiB pages), and a page keeps one flag per
 *    block that dlua_heap_track sets for a tensor — no bytes Lua code can
 *    write (a string of that size) are ever taken for a tensor. The
 *    allocator must not call back into Lua, so the binding releases queued
 *    tensors at its next safe point (dlua_heap_drain: every new tensor,
 *    memory queries, cache releases). Live tensor userdata are linked in a
 *    list so that closing the state releases them while the state still
 *    works (a sentinel's __gc, which lua_close runs before it frees
 *    anything).
 * States dlua did not create (require "dlua" from lua5.4) keep __gc. */
#include "lua_dlua.h"
#include "dl_alloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#define SMALL_STEP 16
#define SMALL_MAX 256
#define NSMALL (SMALL_MAX / SMALL_STEP)
/* bytes kept on the free lists beyond which blocks go back to malloc
 * (sanitizer builds keep none, so every block is checked) */
#ifdef DL_NO_CACHE
#define CACHE_MAX ((size_t)0)
#else
#define CACHE_MAX ((size_t)16 << 20)
#endif

typedef struct free_block { struct free_block *next; } free_block;

/* ---- the slab: userdata blocks of a tensor's size ---- */

/* free slab blocks are poisoned for AddressSanitizer but for their link */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SLAB_POISON(b, n) ASAN_POISON_MEMORY_REGION((char *)(b) + sizeof(free_block), (n) - sizeof(free_block))
#define SLAB_UNPOISON(b, n) ASAN_UNPOISON_MEMORY_REGION((char *)(b) + sizeof(free_block), (n) - sizeof(free_block))
#else
#define SLAB_POISON(b, n) ((void)(b), (void)(n))
#define SLAB_UNPOISON(b, n) ((void)(b), (void)(n))
#endif

#define SLAB_PAGE ((size_t)1 << 16)
#define SLAB_MAXBLOCKS 2048 /* blocks of at least 32 bytes in a page */

/* One reserved range of address space per state (committed a page at a
 * time), so "is this a slab block" is one comparison. 2 GiB holds some 25
 * million tensor userdata; past that, allocating one fails as out of memory. */
#define SLAB_RESERVE ((size_t)2 << 30)

typedef struct slab_page {
  size_t stride;
  uint8_t tensor[SLAB_MAXBLOCKS]; /* 1: the block holds a tensor userdata */
  _Alignas(16) char blocks[];
} slab_page;

typedef struct dlua_heap {
  free_block *lists[NSMALL];
  size_t cached;                /* bytes on the lists */
  size_t nblocks;               /* blocks Lua holds (to free the heap after lua_close) */
  size_t ud_block, ud_offset;   /* a tensor userdata's block size and payload offset */
  void *last_block;             /* calibration: the latest allocation */
  size_t last_size;
  char *slab;                   /* the reserved range (NULL: not yet) */
  size_t slab_used;             /* its committed bytes, whole pages */
  free_block *slab_free;        /* free slab blocks */
  free_block *pending;          /* freed tensor userdata blocks to release */
  dlua_tensor_ud live;          /* sentinel of the list of live tensor userdata */
  bool closing;                 /* lua_close is running: no more caching */
} dlua_heap;

/* the page of a slab block, or NULL when p is no slab block of h */
static inline slab_page *slab_page_of(const dlua_heap *h, const void *p) {
  size_t off = (size_t)((uintptr_t)p - (uintptr_t)h->slab);
  return off < h->slab_used ? (slab_page *)(h->slab + (off & ~(SLAB_PAGE - 1))) : NULL;
}

static inline uint8_t *slab_flag(slab_page *pg, const void *p) {
  return &pg->tensor[(size_t)((const char *)p - pg->blocks) / pg->stride];
}

/* commits the next page; its blocks go onto the free list */
static bool slab_grow(dlua_heap *h) {
  if (!h->slab) {
    void *r = mmap(NULL, SLAB_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) return false;
    h->slab = r;
  }
  if (h->slab_used + SLAB_PAGE > SLAB_RESERVE) return false;
  slab_page *pg = (slab_page *)(h->slab + h->slab_used);
  if (mprotect(pg, SLAB_PAGE, PROT_READ | PROT_WRITE)) return false;
  h->slab_used += SLAB_PAGE;
  size_t stride = (h->ud_block + 15) & ~(size_t)15;
  pg->stride = stride;
  size_t n = (SLAB_PAGE - sizeof *pg) / stride;
  if (n > SLAB_MAXBLOCKS) n = SLAB_MAXBLOCKS;
  for (size_t i = n; i-- > 0;) {
    free_block *b = (free_block *)(pg->blocks + i * stride);
    b->next = h->slab_free;
    h->slab_free = b;
    SLAB_POISON(b, h->ud_block);
  }
  return true;
}

uint64_t dlua_ud_magic;

static void init_magic(void) {
  uint64_t m = 0;
  if (getrandom(&m, sizeof m, GRND_NONBLOCK) != (ssize_t)sizeof m) {
    /* no entropy yet: mix the clock and an address (ASLR) */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m = ((uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(uintptr_t)&m ^ ((uint64_t)ts.tv_sec << 32);
  }
  dlua_ud_magic = m | 1; /* never 0: a cleared payload is not a tensor */
}

static size_t small_class(size_t n) { return (n + SMALL_STEP - 1) / SMALL_STEP - 1; }

static void list_unlink(dlua_tensor_ud *u) {
  if (!u->prev) return;
  u->prev->next = u->next;
  u->next->prev = u->prev;
  u->prev = u->next = NULL;
}

static void block_free(dlua_heap *h, void *p, size_t n) {
  h->nblocks--;
  if (n == h->ud_block && slab_page_of(h, p)) { /* back to the slab */
    free_block *b = p;
    b->next = h->slab_free;
    h->slab_free = b;
    SLAB_POISON(b, n);
    return;
  }
  size_t c = small_class(n), rounded = (c + 1) * SMALL_STEP;
  if (n != 0 && n <= SMALL_MAX && !h->closing && h->cached + rounded <= CACHE_MAX) {
    free_block *b = p;
    b->next = h->lists[c];
    h->lists[c] = b;
    h->cached += rounded;
    return;
  }
  free(p);
}

static void heap_destroy(dlua_heap *h) {
  for (int c = 0; c < NSMALL; c++) {
    free_block *b = h->lists[c];
    while (b) {
      free_block *next = b->next;
      free(b);
      b = next;
    }
  }
  if (h->slab) munmap(h->slab, SLAB_RESERVE);
  free(h);
}

static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  dlua_heap *h = ud;
  if (ptr == NULL) {
    /* osize is the object's type tag: userdata of a tensor's size come
     * from the slab */
    if (osize == LUA_TUSERDATA && nsize == h->ud_block && nsize != 0) {
      if (!h->slab_free && !slab_grow(h)) return NULL; /* Lua collects and retries */
      free_block *b = h->slab_free;
      SLAB_UNPOISON(b, nsize);
      h->slab_free = b->next;
      h->nblocks++;
      h->last_block = b;
      h->last_size = nsize;
      return b;
    }
    osize = 0;
  }
  if (nsize == 0) {
    if (!ptr) return NULL;
    slab_page *pg = osize == h->ud_block ? slab_page_of(h, ptr) : NULL;
    if (pg && *slab_flag(pg, ptr)) {
      *slab_flag(pg, ptr) = 0;
      dlua_tensor_ud *u = (dlua_tensor_ud *)((char *)ptr + h->ud_offset);
      u->magic = 0; /* the next userdata in this block is no tensor */
      list_unlink(u);
      if (u->t && !h->closing) {
        /* the block itself carries the queue; drained later */
        free_block *b = ptr;
        b->next = h->pending;
        h->pending = b;
        return NULL;
      }
    }
    block_free(h, ptr, osize);
    if (h->closing && h->nblocks == 0) heap_destroy(h); /* lua_close's last free */
    return NULL;
  }
  void *p;
  if (ptr && osize > SMALL_MAX && nsize > SMALL_MAX) return realloc(ptr, nsize);
  if (ptr && osize <= SMALL_MAX && nsize <= SMALL_MAX && small_class(nsize) == small_class(osize))
    return ptr; /* same class: the block already fits */
  size_t c = small_class(nsize);
  if (nsize <= SMALL_MAX && h->lists[c]) {
    p = h->lists[c];
    h->lists[c] = h->lists[c]->next;
    h->cached -= (c + 1) * SMALL_STEP;
  } else {
    p = malloc(nsize <= SMALL_MAX ? (c + 1) * SMALL_STEP : nsize);
    if (!p) return NULL; /* Lua collects and retries */
  }
  h->nblocks++;
  if (ptr) {
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    block_free(h, ptr, osize);
  }
  h->last_block = p;
  h->last_size = nsize;
  return p;
}

static dlua_heap *heap_of(lua_State *L) {
  void *ud;
  return lua_getallocf(L, &ud) == heap_alloc ? ud : NULL;
}

bool dlua_heap_owned(lua_State *L) { return heap_of(L) != NULL; }

/* releases the queued tensors; pops one at a time, since a release may
 * free memory through this allocator */
static void drain(dlua_heap *h) {
  while (h->pending) {
    free_block *b = h->pending;
    h->pending = b->next;
    dlua_tensor_ud *u = (dlua_tensor_ud *)((char *)b + h->ud_offset);
    dl_tensor *t = u->t;
    u->t = NULL;
    block_free(h, b, h->ud_block);
    dl_tensor_release(t);
  }
}

void dlua_heap_drain(lua_State *L) {
  dlua_heap *h = heap_of(L);
  if (h) drain(h);
}

/* The dlua-made state that last made a tensor on this thread: a device
 * allocator that ran out of memory asks it to give its dead tensors back
 * (dl_alloc_reclaim). Forgotten when the state closes. */
static _Thread_local lua_State *current_state;

static void reclaim(void) {
  lua_State *L = current_state;
  if (L) dlua_gc_full_collect(L);
}

void dlua_heap_track(lua_State *L, dlua_tensor_ud *u) {
  dlua_heap *h = heap_of(L);
  if (!h) return;
  current_state = L;
  drain(h);
  void *block = (char *)u - h->ud_offset;
  *slab_flag(slab_page_of(h, block), block) = 1;
  u->next = h->live.next;
  u->prev = &h->live;
  h->live.next->prev = u;
  h->live.next = u;
}

/* lua_close runs finalizers before it frees any object: release every live
 * tensor while the state (registry references of custom autograd functions
 * included) still works. */
static int sentinel_gc(lua_State *L) {
  dlua_heap *h = heap_of(L);
  if (!h) return 0;
  if (current_state == L) current_state = NULL;
  drain(h);
  /* pops the head through the sentinel's own fields. Written as a loop
   * of list_unlink(h->live.next), the -O3 build (GCC 12) spun forever at
   * exit after two t:close() among a few thousand live tensors: its code
   * kept the node it had just unlinked as the next head when that node's
   * tensor was closed (seen in the disassembly; a walk of the list at the
   * loop's start found it consistent, and that build did not spin) */
  dlua_tensor_ud *u;
  while ((u = h->live.next) != &h->live) {
    h->live.next = u->next;
    u->next->prev = &h->live;
    u->prev = u->next = NULL;
    dl_tensor *t = u->t;
    u->t = NULL;
    if (t) dl_tensor_release(t);
  }
  h->closing = true;
  return 0;
}

static int panic(lua_State *L) {
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
  lua_writestringerror("PANIC: unprotected error in call to Lua API (%s)\n", msg);
  return 0;
}

/* warnings as lua.c prints them: off until "@on" */
static void warn_off(void *ud, const char *msg, int tocont);
static void warn_on(void *ud, const char *msg, int tocont);
static void warn_cont(void *ud, const char *msg, int tocont);

static int warn_control(lua_State *L, const char *msg, int tocont) {
  if (tocont || *msg != '@') return 0;
  if (strcmp(msg, "@off") == 0) lua_setwarnf(L, warn_off, L);
  else if (strcmp(msg, "@on") == 0) lua_setwarnf(L, warn_on, L);
  return 1;
}
static void warn_off(void *ud, const char *msg, int tocont) { warn_control(ud, msg, tocont); }
static void warn_cont(void *ud, const char *msg, int tocont) {
  lua_writestringerror("%s", msg);
  if (tocont) {
    lua_setwarnf(ud, warn_cont, ud);
  } else {
    lua_writestringerror("%s", "\n");
    lua_setwarnf(ud, warn_on, ud);
  }
}
static void warn_on(void *ud, const char *msg, int tocont) {
  if (warn_control(ud, msg, tocont)) return;
  lua_writestringerror("%s", "Lua warning: ");
  warn_cont(ud, msg, tocont);
}

static const char SENTINEL_KEY = 0;

void dlua_ud_magic_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_magic);
}

lua_State *dlua_state_new(void) {
  dlua_ud_magic_init();
  dl_alloc_set_reclaim(reclaim);
  dlua_heap *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->live.next = h->live.prev = &h->live;
  lua_State *L = lua_newstate(heap_alloc, h);
  if (!L) {
    heap_destroy(h);
    return NULL;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warn_off, L);
  /* learn where a tensor userdata's payload sits in its block, then check
   * that the next one comes from the slab with the same layout */
  void *p = lua_newuserdatauv(L, sizeof(dlua_tensor_ud), 0);
  h->ud_block = h->last_size;
  h->ud_offset = (size_t)((char *)p - (char *)h->last_block);
  memset(p, 0, sizeof(dlua_tensor_ud));
  void *q = lua_newuserdatauv(L, sizeof(dlua_tensor_ud), 0);
  memset(q, 0, sizeof(dlua_tensor_ud));
  bool calibrated = h->ud_block >= sizeof(dlua_tensor_ud) && h->ud_offset + sizeof(dlua_tensor_ud) <= h->ud_block &&
                    h->last_size == h->ud_block && (char *)q - (char *)h->last_block == (ptrdiff_t)h->ud_offset &&
                    slab_page_of(h, h->last_block) && SLAB_PAGE / ((h->ud_block + 15) & ~(size_t)15) > 1;
  lua_pop(L, 2);
  if (!calibrated) {
    h->closing = true; /* the last free then destroys the heap */
    lua_close(L);
    dl_error_set("dlua: the tensor userdata layout of this Lua build is not the one dlua calibrated for");
    return NULL;
  }
  /* the sentinel, reachable until lua_close */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sentinel_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SENTINEL_KEY);
  return L;
}
