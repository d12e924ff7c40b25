/* ctest.h — a tiny harness for the engine's C unit tests. Each CHECK counts;
 * main ends with CTEST_END, which prints "ctest: N passed, M failed". */
#ifndef DL_CTEST_H
#define DL_CTEST_H

#include <math.h>
#include <stdio.h>

static int ctest_pass, ctest_fail;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) ctest_pass++;                                                \
    else {                                                                 \
      ctest_fail++;                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

#define CHECK_NEAR(a, b, tol) CHECK(fabs((double)(a) - (double)(b)) <= (tol))

#define CTEST_END()                                                        \
  do {                                                                     \
    printf("ctest %s: %d passed, %d failed\n", __FILE__, ctest_pass, ctest_fail); \
    return ctest_fail ? 1 : 0;                                             \
  } while (0)

#endif
