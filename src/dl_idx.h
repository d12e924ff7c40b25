/* dl_idx.h — reader for IDX files (MNIST's format), gzipped or not.
 * The file is hostile bytes: every length is checked against the file size
 * before anything is read, and a failure leaves no tensor behind. */
#ifndef DL_IDX_H
#define DL_IDX_H

#include "dl_tensor.h"

/* Reads an IDX file into a new CPU tensor. Type byte 0x08 -> uint8,
 * 0x09/0x0B/0x0C (int8/int16/int32) -> int64, 0x0D -> float32,
 * 0x0E -> float64. A gzip stream (magic 1f 8b) is inflated through zlib.
 * NULL with an error "read_idx: <path>: <what is wrong>" on failure. */
dl_tensor *dl_idx_read(const char *path);

#endif
