/* dl_cuda.h — the CUDA backend's management API for C callers (the Lua
 * binding): devices, synchronisation and the caching allocator's counters.
 * Defined in src/gpu/ and present only in CUDA builds (DL_HAVE_CUDA). */
#ifndef DL_CUDA_H
#define DL_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* devices the runtime reports; 0 when there is no driver or no GPU */
int dl_cuda_device_count(void);
/* why there is no device ("" when there is one) */
const char *dl_cuda_unavailable_reason(void);
/* waits for every kernel issued on the device; 0 ok, -1 with an error */
int dl_cuda_synchronize(int index);
/* returns every cached block of every device to the driver */
void dl_cuda_empty_cache(void);
/* bytes in live blocks (class-rounded), their peak since the last reset */
size_t dl_cuda_memory_allocated(int index);
size_t dl_cuda_max_memory_allocated(int index);
void dl_cuda_reset_peak_memory_stats(int index);
/* the card's name into buf; 0 ok, -1 with an error */
int dl_cuda_device_name(int index, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
