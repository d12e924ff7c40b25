/* dl_threads.c — the thread count and its monitor (dl_threads.h). */
#define _GNU_SOURCE
#include "dl_threads.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS is the OpenMP build, so both share libgomp's one pool of threads
 * and can never oversubscribe each other. */
void openblas_set_num_threads(int);

static _Atomic int asked = 0;         /* the user's count; 0: not settled yet */
_Atomic int dl_threads_target = 0;    /* the monitor's wish; 0: none yet */
int dl_threads_applied = 0;           /* what OpenMP and OpenBLAS run with */
static pthread_once_t monitor_once = PTHREAD_ONCE_INIT;

static void run_with(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  openblas_set_num_threads(n);
  dl_threads_applied = n;
}

int dl_threads_fit(int cpus, int wanted, int others) {
  int n = cpus - (others > 0 ? others : 0);
  if (n > wanted) n = wanted;
  return n < 1 ? 1 : n;
}

int dl_threads_step(dl_threads_state *s, int want) {
  if (want == s->current) {
    s->streak = 0;
    return s->current;
  }
  int need = want < s->current ? 2 : 4;
  /* a streak counts samples that all point the same way */
  if ((s->streak > 0) != (want > s->current)) s->streak = 0;
  s->streak += want > s->current ? 1 : -1;
  if (abs(s->streak) >= need) {
    s->current = want;
    s->streak = 0;
  }
  return s->current;
}

/* cores this process may run on (mpirun's binding, taskset) */
static int usable_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* runnable tasks on the machine (loadavg's "running/total") */
static int runnable_tasks(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f) return -1;
  double a, b, c;
  int running = -1, total;
  if (fscanf(f, "%lf %lf %lf %d/%d", &a, &b, &c, &running, &total) != 5) running = -1;
  fclose(f);
  return running;
}

/* this process's threads that are running or runnable now */
static int own_running(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  char path[64], buf[256];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%.32s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    char *close = strrchr(buf, ')'); /* the state follows the name's ")" */
    if (close && close[1] == ' ' && close[2] == 'R') n++;
  }
  closedir(d);
  return n;
}

/* the count the cores left free allow now; -1 when /proc cannot say */
static int sample_want(void) {
  int total = runnable_tasks(), ours = own_running();
  if (total < 0 || ours < 0) return -1;
  /* this thread is running as it reads, counted in both */
  return dl_threads_fit(usable_cpus(), asked, total - ours);
}

/* A first look decides at once, without the hysteresis: a short script
 * (an epoch of 25 ms) started beside a busy process ran its first 100 ms,
 * all of its work, with a thread the scheduler kept putting aside. */
int dl_threads_first(int current, int want) { return want > 0 && want < current ? want : current; }

/* The first look takes the largest count of three samples 5 ms apart: one
 * sample can count a thread of ours that blocked between the two reads as
 * another process (a single-sample look made a 2-thread add-1M run on one). */
static void first_look(dl_threads_state *s) {
  const struct timespec gap = {0, 5 * 1000 * 1000};
  int want = 0;
  for (int i = 0; i < 3 && want >= 0; i++) {
    if (i) nanosleep(&gap, NULL);
    int w = sample_want();
    want = w < 0 ? -1 : w > want ? w : want;
  }
  s->current = dl_threads_first(s->current, want);
  atomic_store_explicit(&dl_threads_target, s->current, memory_order_relaxed);
}

static void *monitor(void *arg) {
  (void)arg;
  int seen = asked;
  dl_threads_state s = {seen, 0};
  first_look(&s);
  const struct timespec period = {0, 50 * 1000 * 1000};
  for (;;) {
    nanosleep(&period, NULL);
    if (asked != seen) { /* dl.set_num_threads: start over from the new count */
      seen = asked;
      s = (dl_threads_state){seen, 0};
      first_look(&s);
      continue;
    }
    int want = sample_want();
    if (want < 0) continue;
    atomic_store_explicit(&dl_threads_target, dl_threads_step(&s, want), memory_order_relaxed);
  }
  return NULL;
}

static void start_monitor(void) {
  const char *off = getenv("DLUA_ADAPT_THREADS");
  if (off && strcmp(off, "0") == 0) return;
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&th, &attr, monitor, NULL); /* without it the count stays as asked */
  pthread_attr_destroy(&attr);
}

void dl_threads_apply(void) {
  int t = atomic_load_explicit(&dl_threads_target, memory_order_relaxed);
  if (t < 1 || t > asked) t = asked;
  if (t != dl_threads_applied) run_with(t);
}

void dl_set_num_threads(int n) {
  if (n < 1) n = 1;
  asked = n;
  atomic_store(&dl_threads_target, n); /* the monitor starts over from the new count */
  run_with(n);
  if (n > 1) pthread_once(&monitor_once, start_monitor);
}

int dl_get_num_threads(void) {
  if (asked == 0) {
#ifdef _OPENMP
    dl_set_num_threads(omp_get_max_threads());
#else
    dl_set_num_threads(1);
#endif
  }
  return asked;
}

int dl_threads_in_use(void) {
  dl_get_num_threads();
  return dl_threads_applied;
}
