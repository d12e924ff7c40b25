/* dl_threads.h — how many threads dlua's parallel work uses: the count the
 * user asked for (dl.set_num_threads, OMP_NUM_THREADS, else every core),
 * lowered while other processes keep cores busy.
 *
 * One count drives the OpenMP loops and OpenBLAS (its OpenMP build shares
 * libgomp's pool). On a machine where another busy process takes a core,
 * a parallel region whose threads outnumber the free cores waits at every
 * barrier for a thread the scheduler has put aside: 2 threads beside one
 * busy process on 2 cores ran the fashion MLP 5x slower than 1 thread. A
 * monitor thread therefore looks, every 50 ms, at how many tasks are
 * runnable on the machine besides dlua's own (/proc/loadavg less this
 * process's running threads) and lowers the count to the cores left free
 * (at least 1); it raises it again when they are. Its first look, when
 * the count is set, lowers at once. The thread that runs Lua
 * applies a change between ops (dl_threads_poll), where no parallel region
 * is open. DLUA_ADAPT_THREADS=0 turns the monitor off. */
#ifndef DL_THREADS_H
#define DL_THREADS_H

#include <stdatomic.h>
#include <stdbool.h>

void dl_set_num_threads(int n);
/* the count asked for (not lowered by the monitor) */
int dl_get_num_threads(void);
/* the count parallel work runs with now */
int dl_threads_in_use(void);

/* the monitor's wish and what is applied; dl_threads_poll applies a change */
extern _Atomic int dl_threads_target;
extern int dl_threads_applied;
void dl_threads_apply(void);
static inline void dl_threads_poll(void) {
  if (atomic_load_explicit(&dl_threads_target, memory_order_relaxed) != dl_threads_applied) dl_threads_apply();
}

/* ---- the decision, apart for its unit test ----
 * cpus: cores this process may run on; asked: the user's count; others:
 * runnable tasks not of this process. The count the cores left free
 * allow, between 1 and asked. */
int dl_threads_fit(int cpus, int asked, int others);
/* hysteresis: a lower count is taken after 2 samples in a row want it
 * (100 ms), a higher after 4 (200 ms), so a short-lived process does not
 * make the count swing. state: the current count and a streak. */
typedef struct {
  int current;
  int streak;
} dl_threads_state;
int dl_threads_step(dl_threads_state *s, int want);
/* the first look after a count is set (the monitor's start, a new
 * dl.set_num_threads) takes a lower count at once; want < 1: no reading */
int dl_threads_first(int current, int want);

#endif
