/* dl_safetensors.h — the safetensors format: an 8-byte little-endian header
 * length, a JSON header {"name": {"dtype": "F32", "shape": [...],
 * "data_offsets": [begin, end]}, "__metadata__": {"k": "v"}}, then the raw
 * little-endian C-order data. dtypes F32 F64 I64 U8 BOOL. */
#ifndef DL_SAFETENSORS_H
#define DL_SAFETENSORS_H

#include "dl_tensor.h"

/* largest JSON header accepted (the reference implementation's limit) */
#define DL_ST_MAX_HEADER ((uint64_t)100 << 20)

/* The 8-byte length plus the JSON header, padded with spaces to a multiple
 * of 8, for tensors laid out one after the other in the given order (the
 * caller writes their data in that order: *data_len bytes). meta holds
 * nmeta key/value pairs (k0, v0, k1, v1, ...). malloc'd; NULL with an error. */
char *dl_st_header(const char *const *names, dl_tensor *const *ts, int64_t n, const char *const *meta,
                   int64_t nmeta, size_t *len, uint64_t *data_len);

typedef struct {
  int64_t n;
  char **names;
  dl_tensor **tensors;
  int64_t nmeta;
  char **meta; /* key, value, key, value ... */
} dl_st_file;

/* Parses a whole safetensors blob (name is used in errors); every tensor is
 * copied out of buf into a new CPU tensor. 0 ok; -1 with "load: <name>: ..."
 * and nothing allocated. */
int dl_st_parse(const char *name, const unsigned char *buf, size_t n, dl_st_file *out);
void dl_st_file_free(dl_st_file *f);

#endif
