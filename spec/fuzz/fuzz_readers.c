/* fuzz_readers.c — an in-process mutation fuzzer for the file readers:
 * npy, safetensors, IDX (raw and gzipped), CSV and checkpoints.
 *
 *   fuzz_readers FORMAT N [SEED]   FORMAT: npy safetensors idx idxgz csv checkpoint
 *
 * Each input is a file of spec/fuzz/corpus/FORMAT/ with 1 to 8 mutations
 * (one in three inputs of four: bit flips, random and boundary bytes,
 * boundary 32/64-bit integers, inserted, deleted, duplicated and truncated
 * ranges), read by the engine's
 * reader. A reader may refuse an input (an error) but must not crash, trip a
 * sanitizer or hang: a watchdog stops the run when 1024 inputs take over 10 s
 * of CPU time (CPU, not wall: a fuzzer at low priority on a busy machine is
 * not hung; the readers work in memory, so a hang spins) or 10 minutes of
 * wall time, and a crash or hang writes the input to spec/fuzz/crash-FORMAT.bin. The
 * path-based readers (IDX, CSV) read a memfd through /proc/self/fd, so no
 * input touches the disk. Checkpoints are read by dl.load in a dlua state
 * (their structure decoder is in the binding), through pcall. Prints inputs, refusals and inputs per second. */
#define _GNU_SOURCE
#include <sys/time.h>
#include "dl_core.h"
#include "dl_csv.h"
#include "dl_idx.h"
#include "dl_npy.h"
#include "dl_safetensors.h"
#include "dlua.h"

#include <lauxlib.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FUZZ_MAX_INPUT (1u << 16)
#define FUZZ_MAX_SEEDS 64

static unsigned char cur[FUZZ_MAX_INPUT * 2];
static size_t cur_n;
static char crash_path[256];

/* xorshift64*: the fuzzer's own generator, seeded from the command line */
static uint64_t rng_state;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* on a crash or a hang: keep the input (write() only, signal-safe) */
static void keep_input(int sig) {
  int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, cur, cur_n);
    (void)w;
    close(fd);
  }
  static const char msg[] = "fuzz_readers: crash or hang; input kept in spec/fuzz/crash-*.bin\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  signal(sig, SIG_DFL);
  raise(sig);
}

typedef struct {
  unsigned char *p;
  size_t n;
} blob;

static int load_corpus(const char *dir, blob *seeds) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < FUZZ_MAX_SEEDS) {
    if (e->d_name[0] == '.') continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    unsigned char *p = malloc(FUZZ_MAX_INPUT);
    size_t got = p ? fread(p, 1, FUZZ_MAX_INPUT, f) : 0;
    fclose(f);
    if (!p || !got) {
      free(p);
      continue;
    }
    seeds[n++] = (blob){p, got};
  }
  closedir(d);
  return n;
}

static const uint64_t boundary[] = {0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                                    0x7FFFFFFFFFFFFFFFULL, 0x8000000000000000ULL, 0xFFFFFFFFFFFFFFFFULL};

static void mutate(void) {
  /* mostly one mutation, so inputs stay close to valid and reach deep */
  int k = below(4) ? 1 : 2 + (int)below(7);
  for (int m = 0; m < k; m++) {
    size_t at = below(cur_n + 1);
    switch (below(8)) {
    case 0: /* bit flip */
      if (cur_n) cur[below(cur_n)] ^= (unsigned char)(1u << below(8));
      break;
    case 1: /* random byte */
      if (cur_n) cur[below(cur_n)] = (unsigned char)rnd();
      break;
    case 2: /* boundary byte, or an ASCII digit (headers and CSV are text) */
      if (cur_n) cur[below(cur_n)] = below(2) ? (unsigned char)boundary[below(5)] : (unsigned char)('0' + below(10));
      break;
    case 3: { /* boundary integer, 4 or 8 bytes, either byte order */
      size_t w = below(2) ? 4 : 8;
      if (cur_n >= w) {
        uint64_t v = boundary[below(sizeof boundary / sizeof boundary[0])];
        size_t pos = below(cur_n - w + 1);
        bool big = below(2);
        for (size_t i = 0; i < w; i++) cur[pos + i] = (unsigned char)(v >> (8 * (big ? w - 1 - i : i)));
      }
      break;
    }
    case 4: { /* insert random bytes */
      size_t len = 1 + below(16);
      if (cur_n + len > FUZZ_MAX_INPUT) break;
      memmove(cur + at + len, cur + at, cur_n - at);
      for (size_t i = 0; i < len; i++) cur[at + i] = (unsigned char)rnd();
      cur_n += len;
      break;
    }
    case 5: { /* delete a range */
      size_t len = 1 + below(16);
      if (at + len > cur_n) break;
      memmove(cur + at, cur + at + len, cur_n - at - len);
      cur_n -= len;
      break;
    }
    case 6: { /* duplicate a range */
      if (!cur_n) break;
      size_t from = below(cur_n), len = 1 + below(cur_n - from < 64 ? cur_n - from : 64);
      if (cur_n + len > FUZZ_MAX_INPUT) break;
      memmove(cur + at + len, cur + at, cur_n - at);
      memmove(cur + at, cur + (from >= at ? from + len : from), len);
      cur_n += len;
      break;
    }
    default: /* truncate */
      cur_n = below(cur_n + 1);
      break;
    }
  }
}

/* the input as the file a path reader opens */
static int memfd = -1;
static char memfd_path[64];
static int as_file(const unsigned char *p, size_t n) {
  if (ftruncate(memfd, 0) != 0 || pwrite(memfd, p, n, 0) != (ssize_t)n) return -1;
  return 0;
}

/* gzip the mutated bytes for idxgz about half the time, so both the inflater
 * (corrupt streams) and the parser behind it (valid streams of bad IDX) run */
static unsigned char gzbuf[FUZZ_MAX_INPUT * 2 + 1024];
static size_t gzip_into(const unsigned char *p, size_t n) {
  z_stream z = {0};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  z.next_in = (unsigned char *)p;
  z.avail_in = (uInt)n;
  z.next_out = gzbuf;
  z.avail_out = sizeof gzbuf;
  int rc = deflate(&z, Z_FINISH);
  size_t out = rc == Z_STREAM_END ? z.total_out : 0;
  deflateEnd(&z);
  return out;
}

/* checkpoints: dl.load in a dlua state; the function returns 1 when the
 * file was read, 0 when refused with an error message */
static lua_State *L;
static int load_ref;
static int lua_setup(void) {
  L = dlua_newstate();
  const char *code = "return function(path) local ok, e = pcall(dl.load, path) "
                     "if ok then return 1 end "
                     "if type(e) ~= 'string' or not e:find('dl.load', 1, true) then "
                     "error('an error that names no function: ' .. tostring(e)) end return 0 end";
  if (!L || luaL_dostring(L, code) != LUA_OK) return -1;
  load_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}
static int run_checkpoint(void) {
  if (as_file(cur, cur_n) != 0) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, load_ref);
  lua_pushstring(L, memfd_path);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_readers: %s\n", lua_tostring(L, -1));
    keep_input(SIGABRT);
  }
  int ok = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return ok;
}

/* 1: read, 0: refused with an error */
static int run_one(const char *fmt) {
  if (!strcmp(fmt, "checkpoint")) return run_checkpoint();
  if (!strcmp(fmt, "npy")) {
    dl_tensor *t = dl_npy_parse("fuzz.npy", cur, cur_n);
    if (t) dl_tensor_release(t);
    return t != NULL;
  }
  if (!strcmp(fmt, "safetensors")) {
    dl_st_file f;
    if (dl_st_parse("fuzz.safetensors", cur, cur_n, &f) != 0) return 0;
    dl_st_file_free(&f);
    return 1;
  }
  if (!strcmp(fmt, "idx") || !strcmp(fmt, "idxgz")) {
    int ok;
    if (!strcmp(fmt, "idxgz") && below(2)) {
      size_t n = gzip_into(cur, cur_n);
      ok = as_file(gzbuf, n);
    } else {
      ok = as_file(cur, cur_n);
    }
    if (ok != 0) return 0;
    dl_tensor *t = dl_idx_read(memfd_path);
    if (t) dl_tensor_release(t);
    return t != NULL;
  }
  /* csv: with and without a header, float32 and float64, all columns or two */
  if (as_file(cur, cur_n) != 0) return 0;
  static const char *const names[] = {"a", "b"};
  static const int64_t index[] = {1, 0};
  dl_csv_options o = {below(4) ? ',' : ';', below(4) != 0, below(2) ? DL_FLOAT32 : DL_FLOAT64, NULL, NULL, 0};
  switch (below(4)) {
  case 0: o.col_names = names, o.ncols = 2; break;
  case 1: o.col_index = index, o.ncols = 2; break;
  default: break;
  }
  if (o.col_names && !o.header) o.col_names = NULL, o.ncols = 0;
  dl_csv_result r = {0};
  if (dl_csv_read(memfd_path, &o, &r) != 0) return 0;
  dl_tensor_release(r.values);
  dl_csv_free_names(&r);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fuzz_readers npy|safetensors|idx|idxgz|csv|checkpoint N [SEED]\n");
    return 2;
  }
  const char *fmt = argv[1];
  long long n = atoll(argv[2]);
  rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) * 0x9E3779B97F4A7C15ULL + 1 : 0x853C49E6748FEA9BULL;
  static const char *const formats[] = {"npy", "safetensors", "idx", "idxgz", "csv", "checkpoint"};
  bool known = false;
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) known = known || !strcmp(fmt, formats[i]);
  if (!known || n < 1) {
    fprintf(stderr, "fuzz_readers: unknown format '%s' or bad count\n", fmt);
    return 2;
  }
  char dir[256];
  snprintf(dir, sizeof dir, "spec/fuzz/corpus/%s", !strcmp(fmt, "idxgz") ? "idx" : fmt);
  snprintf(crash_path, sizeof crash_path, "spec/fuzz/crash-%s.bin", fmt);
  blob seeds[FUZZ_MAX_SEEDS];
  int nseeds = load_corpus(dir, seeds);
  if (!nseeds) {
    fprintf(stderr, "fuzz_readers: no corpus in %s (run from the repository root)\n", dir);
    return 2;
  }
  memfd = memfd_create("fuzz", 0);
  if (memfd < 0) {
    perror("fuzz_readers: memfd_create");
    return 2;
  }
  snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
  if (!strcmp(fmt, "checkpoint") && lua_setup() != 0) {
    fprintf(stderr, "fuzz_readers: cannot make a dlua state\n");
    return 2;
  }
  signal(SIGSEGV, keep_input);
  signal(SIGBUS, keep_input);
  signal(SIGABRT, keep_input);
  signal(SIGFPE, keep_input);
  signal(SIGALRM, keep_input);
  signal(SIGPROF, keep_input);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long long refused = 0;
  for (long long i = 0; i < n; i++) {
    blob *s = &seeds[below((size_t)nseeds)];
    memcpy(cur, s->p, s->n);
    cur_n = s->n;
    mutate();
    if ((i & 1023) == 0) { /* a hang: no 1024 inputs in 10 s of CPU time */
      struct itimerval cpu = {{0, 0}, {10, 0}};
      setitimer(ITIMER_PROF, &cpu, NULL);
      alarm(600);
    }
    refused += !run_one(fmt);
    if (L && (i & 1023) == 1023) lua_gc(L, LUA_GCCOLLECT); /* the tensors of loaded files */
  }
  alarm(0);
  setitimer(ITIMER_PROF, &(struct itimerval){{0, 0}, {0, 0}}, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("fuzz %-11s %lld inputs, %lld refused, 0 crashes, %.1f s, %.0f inputs/s\n", fmt, n, refused, secs,
         (double)n / secs);
  for (int i = 0; i < nseeds; i++) free(seeds[i].p);
  close(memfd);
  if (L) lua_close(L);
  return 0;
}
