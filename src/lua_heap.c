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
 *    it (its block size and a per-process secret at the payload) and queues
 *    the tensor. The allocator must not call back into Lua, so the binding
 *    releases queued tensors at its next safe point (dlua_heap_drain: every
 *    new tensor, memory queries). Live tensor userdata are linked in a list
 *    so that closing the state releases them while the state still works
 *    (a sentinel's __gc, which lua_close runs before it frees anything).
 * States dlua did not create (require "dlua" from lua5.4) keep __gc. */
#include "lua_dlua.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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

typedef struct dlua_heap {
  free_block *lists[NSMALL];
  size_t cached;                /* bytes on the lists */
  size_t nblocks;               /* blocks Lua holds (to free the heap after lua_close) */
  size_t ud_block, ud_offset;   /* a tensor userdata's block size and payload offset */
  void *last_block;             /* calibration: the latest allocation */
  size_t last_size;
  free_block *pending;          /* freed tensor userdata blocks to release */
  dlua_tensor_ud live;          /* sentinel of the list of live tensor userdata */
  bool closing;                 /* lua_close is running: no more caching */
} dlua_heap;

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
  free(h);
}

static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  dlua_heap *h = ud;
  if (ptr == NULL) osize = 0; /* then osize is a type tag, not a size */
  if (nsize == 0) {
    if (!ptr) return NULL;
    if (osize == h->ud_block && osize != 0) {
      dlua_tensor_ud *u = (dlua_tensor_ud *)((char *)ptr + h->ud_offset);
      if (u->magic == dlua_ud_magic) {
        u->magic = 0;
        list_unlink(u);
        if (u->t && !h->closing) {
          /* the block itself carries the queue; drained later */
          free_block *b = ptr;
          b->next = h->pending;
          h->pending = b;
          return NULL;
        }
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

void dlua_heap_track(lua_State *L, dlua_tensor_ud *u) {
  dlua_heap *h = heap_of(L);
  if (!h) return;
  drain(h);
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
  drain(h);
  while (h->live.next != &h->live) {
    dlua_tensor_ud *u = h->live.next;
    list_unlink(u);
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
  /* learn where a tensor userdata's payload sits in its block */
  void *p = lua_newuserdatauv(L, sizeof(dlua_tensor_ud), 0);
  h->ud_block = h->last_size;
  h->ud_offset = (size_t)((char *)p - (char *)h->last_block);
  memset(p, 0, sizeof(dlua_tensor_ud));
  lua_pop(L, 1);
  /* the sentinel, reachable until lua_close */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sentinel_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SENTINEL_KEY);
  return L;
}
