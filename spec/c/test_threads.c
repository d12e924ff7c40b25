/* test_threads.c — the thread count's decisions (dl_threads.h): how many
 * threads the free cores allow, the hysteresis that keeps a passing
 * process from making the count swing, and the first look that lowers
 * at once. */
#include "ctest.h"
#include "dl_threads.h"

int main(void) {
  /* free cores, capped by the count asked for, never below 1 */
  CHECK(dl_threads_fit(2, 2, 0) == 2);
  CHECK(dl_threads_fit(2, 2, 1) == 1); /* one busy process on 2 cores */
  CHECK(dl_threads_fit(2, 2, 5) == 1);
  CHECK(dl_threads_fit(8, 4, 2) == 4); /* enough free: what was asked */
  CHECK(dl_threads_fit(8, 8, 3) == 5);
  CHECK(dl_threads_fit(4, 1, 0) == 1);
  CHECK(dl_threads_fit(4, 4, -1) == 4); /* a count read mid-change */

  /* lower after 2 samples in a row, higher after 4 */
  dl_threads_state s = {2, 0};
  CHECK(dl_threads_step(&s, 1) == 2);
  CHECK(dl_threads_step(&s, 1) == 1);
  CHECK(dl_threads_step(&s, 2) == 1);
  CHECK(dl_threads_step(&s, 2) == 1);
  CHECK(dl_threads_step(&s, 2) == 1);
  CHECK(dl_threads_step(&s, 2) == 2);
  /* a single sample either way changes nothing */
  CHECK(dl_threads_step(&s, 1) == 2);
  CHECK(dl_threads_step(&s, 2) == 2);
  CHECK(dl_threads_step(&s, 1) == 2);
  /* a streak broken by a sample the other way starts over */
  dl_threads_state u = {1, 0};
  CHECK(dl_threads_step(&u, 2) == 1);
  CHECK(dl_threads_step(&u, 2) == 1);
  CHECK(dl_threads_step(&u, 2) == 1);
  CHECK(dl_threads_step(&u, 1) == 1);
  CHECK(dl_threads_step(&u, 2) == 1);
  CHECK(dl_threads_step(&u, 2) == 1);
  CHECK(dl_threads_step(&u, 2) == 1);
  CHECK(dl_threads_step(&u, 2) == 2);

  /* the first look lowers at once, never raises, and ignores no reading */
  CHECK(dl_threads_first(2, 1) == 1);
  CHECK(dl_threads_first(4, 2) == 2);
  CHECK(dl_threads_first(2, 2) == 2);
  CHECK(dl_threads_first(1, 2) == 1);
  CHECK(dl_threads_first(2, -1) == 2);

  /* the count asked for is what is applied until the monitor says more */
  dl_set_num_threads(3);
  CHECK(dl_get_num_threads() == 3);
  CHECK(dl_threads_in_use() == 3);
  dl_set_num_threads(0);
  CHECK(dl_get_num_threads() == 1);
  CTEST_END();
}
