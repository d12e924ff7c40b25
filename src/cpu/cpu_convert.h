/* cpu_convert.h — scalar conversions between dtypes with defined results
 * (C leaves float -> int overflow undefined; NaN and out-of-range become
 * INT64_MIN, as x86 and PyTorch do). */
#ifndef DL_CPU_CONVERT_H
#define DL_CPU_CONVERT_H

#include <math.h>
#include <stdint.h>

static inline int64_t dl_f2i(double x) {
  if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) return INT64_MIN;
  return (int64_t)x;
}
static inline uint8_t dl_f2u8(double x) { return (uint8_t)dl_f2i(x); }

#endif
