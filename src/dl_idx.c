/* dl_idx.c — IDX reader (MNIST's format): 4-byte magic {0, 0, type, ndim},
 * ndim big-endian uint32 sizes, then the data in big-endian C order.
 * Gzipped files go through zlib; plain ones must match the file size exactly. */
#include "dl_idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* deflate cannot compress better than about 1032:1, so a gzip file of n
 * bytes never inflates past this: a lying header cannot make us allocate
 * more than the file could hold. */
#define DL_IDX_MAX_RATIO 1100
#define DL_IDX_CHUNK (1u << 28)

typedef struct {
  const char *path;
  gzFile gz;
} idx_file;

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads exactly n bytes; 0 ok, -1 with an error naming what was being read. */
static int idx_read(idx_file *f, void *buf, size_t n, const char *what) {
  char *p = buf;
  size_t done = 0;
  while (done < n) {
    size_t want = n - done > DL_IDX_CHUNK ? DL_IDX_CHUNK : n - done;
    int got = gzread(f->gz, p + done, (unsigned)want);
    if (got < 0) {
      int zerr;
      const char *msg = gzerror(f->gz, &zerr);
      if (zerr == Z_BUF_ERROR)
        dl_error_set("read_idx: %s: truncated %s (%zu of %zu bytes; the gzip stream ends early)", f->path,
                     what, done, n);
      else
        dl_error_set("read_idx: %s: corrupt gzip data in %s (%s)", f->path, what, msg);
      return -1;
    }
    if (got == 0) {
      dl_error_set("read_idx: %s: truncated %s (%zu of %zu bytes)", f->path, what, done, n);
      return -1;
    }
    done += (size_t)got;
  }
  return 0;
}

static int idx_dtype(const char *path, int code, dl_dtype *dt, size_t *elsize) {
  switch (code) {
  case 0x08: *dt = DL_UINT8; *elsize = 1; return 0;
  case 0x09: *dt = DL_INT64; *elsize = 1; return 0;
  case 0x0B: *dt = DL_INT64; *elsize = 2; return 0;
  case 0x0C: *dt = DL_INT64; *elsize = 4; return 0;
  case 0x0D: *dt = DL_FLOAT32; *elsize = 4; return 0;
  case 0x0E: *dt = DL_FLOAT64; *elsize = 8; return 0;
  default:
    dl_error_set("read_idx: %s: unknown data type byte 0x%02X (expected 08, 09, 0B, 0C, 0D or 0E)", path,
                 (unsigned)code);
    return -1;
  }
}

/* Big-endian file bytes (n elements of elsize) -> host values in out. */
static void idx_convert(const unsigned char *src, size_t n, size_t elsize, dl_dtype dt, void *out) {
  if (dt == DL_INT64) {
    int64_t *o = out;
    if (elsize == 1)
      for (size_t i = 0; i < n; i++) o[i] = (int8_t)src[i];
    else if (elsize == 2)
      for (size_t i = 0; i < n; i++) o[i] = (int16_t)((uint16_t)src[2 * i] << 8 | src[2 * i + 1]);
    else
      for (size_t i = 0; i < n; i++) o[i] = (int32_t)be32(src + 4 * i);
  } else if (dt == DL_FLOAT32) {
    uint32_t *o = out;
    for (size_t i = 0; i < n; i++) o[i] = be32(src + 4 * i);
  } else if (dt == DL_FLOAT64) {
    uint64_t *o = out;
    for (size_t i = 0; i < n; i++) o[i] = (uint64_t)be32(src + 8 * i) << 32 | be32(src + 8 * i + 4);
  }
}

/* Reads the payload into t, converting in chunks so no second full-size
 * buffer is needed. */
static int idx_read_payload(idx_file *f, dl_tensor *t, size_t n, size_t elsize) {
  if (t->dtype == DL_UINT8) return idx_read(f, dl_tensor_data(t), n, "data");
  enum { BLOCK = 1 << 16 };
  unsigned char *buf = malloc(BLOCK * 8);
  if (!buf) {
    dl_error_set("read_idx: %s: out of memory", f->path);
    return -1;
  }
  char *out = dl_tensor_data(t);
  size_t osize = dl_dtype_size(t->dtype);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i += BLOCK) {
    size_t m = n - i < BLOCK ? n - i : BLOCK;
    rc = idx_read(f, buf, m * elsize, "data");
    if (rc == 0) idx_convert(buf, m, elsize, t->dtype, out + i * osize);
  }
  free(buf);
  return rc;
}

dl_tensor *dl_idx_read(const char *path) {
  idx_file f = {path, NULL};
  FILE *raw = fopen(path, "rb");
  if (!raw) {
    dl_error_set("read_idx: %s: cannot open (%s)", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  unsigned char magic2[2] = {0, 0};
  if (fstat(fileno(raw), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(raw);
    dl_error_set("read_idx: %s: not a regular file", path);
    return NULL;
  }
  size_t nmagic = fread(magic2, 1, 2, raw);
  fclose(raw);
  bool gzipped = nmagic == 2 && magic2[0] == 0x1f && magic2[1] == 0x8b;
  uint64_t fsize = (uint64_t)st.st_size;

  f.gz = gzopen(path, "rb");
  if (!f.gz) {
    dl_error_set("read_idx: %s: cannot open (%s)", path, strerror(errno));
    return NULL;
  }
  gzbuffer(f.gz, 1 << 18);
  dl_tensor *t = NULL;
  unsigned char head[4];
  if (idx_read(&f, head, 4, "header") != 0) goto fail;
  if (head[0] != 0 || head[1] != 0) {
    dl_error_set("read_idx: %s: wrong magic %02X %02X %02X %02X (an IDX file starts with 00 00 <type> <ndim>)",
                 path, head[0], head[1], head[2], head[3]);
    goto fail;
  }
  dl_dtype dt;
  size_t elsize;
  if (idx_dtype(path, head[2], &dt, &elsize) != 0) goto fail;
  int ndim = head[3];
  if (ndim < 1 || ndim > DL_MAX_DIMS) {
    dl_error_set("read_idx: %s: %d dimensions (1 to %d supported)", path, ndim, DL_MAX_DIMS);
    goto fail;
  }
  unsigned char dims[4 * DL_MAX_DIMS];
  if (idx_read(&f, dims, 4 * (size_t)ndim, "dimension sizes") != 0) goto fail;
  int64_t shape[DL_MAX_DIMS];
  uint64_t numel = 1;
  bool overflow = false;
  for (int i = 0; i < ndim; i++) {
    shape[i] = be32(dims + 4 * i);
    /* sizes are < 2^32; keep the product under 2^60 so bytes never wrap */
    if (shape[i] != 0 && numel > (UINT64_C(1) << 60) / (uint64_t)shape[i]) overflow = true;
    else numel *= (uint64_t)shape[i];
  }
  char sbuf[160];
  if (overflow) {
    dl_error_set("read_idx: %s: dimensions %s overflow", path, dl_shape_str(shape, ndim, sbuf, sizeof sbuf));
    goto fail;
  }
  uint64_t header = 4 + 4 * (uint64_t)ndim, payload = numel * elsize;
  if (!gzipped && header + payload != fsize) {
    dl_error_set("read_idx: %s: dimensions %s need %llu bytes of data but the file has %llu after the header%s",
                 path, dl_shape_str(shape, ndim, sbuf, sizeof sbuf), (unsigned long long)payload,
                 (unsigned long long)(fsize - header), header + payload > fsize ? " (truncated)" : "");
    goto fail;
  }
  if (gzipped && payload / DL_IDX_MAX_RATIO > fsize) {
    dl_error_set("read_idx: %s: dimensions %s need %llu bytes, more than a %llu-byte gzip file can hold", path,
                 dl_shape_str(shape, ndim, sbuf, sizeof sbuf), (unsigned long long)payload,
                 (unsigned long long)fsize);
    goto fail;
  }
  t = dl_tensor_empty(shape, ndim, dt, dl_device_cpu());
  if (!t) goto fail;
  if (idx_read_payload(&f, t, (size_t)numel, elsize) != 0) goto fail;
  if (gzipped) {
    unsigned char extra;
    int got = gzread(f.gz, &extra, 1), zerr = Z_OK;
    if (got == 0) gzerror(f.gz, &zerr); /* end of the data: the trailer (CRC, length) must be whole and match */
    if (got != 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
      dl_error_set("read_idx: %s: %s after the %llu data bytes the dimensions %s call for", path,
                   got > 0 ? "extra bytes" : "a corrupt or truncated gzip stream", (unsigned long long)payload,
                   dl_shape_str(shape, ndim, sbuf, sizeof sbuf));
      goto fail;
    }
  }
  gzclose(f.gz);
  return t;
fail:
  if (t) dl_tensor_release(t);
  gzclose(f.gz);
  return NULL;
}
