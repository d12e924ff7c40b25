/* dl_file.c — see dl_file.h. */
#include "dl_file.h"

#include "dl_core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dl_file_writer {
  FILE *f;
  char *path;
  char *tmp;
  const char *op;
  size_t size;
};

static void writer_free(dl_file_writer *w) {
  free(w->path);
  free(w->tmp);
  free(w);
}

dl_file_writer *dl_file_writer_open(const char *op, const char *path) {
  if (!path || !*path) {
    dl_error_set("%s: empty file name", op);
    return NULL;
  }
  dl_file_writer *w = calloc(1, sizeof *w);
  size_t n = strlen(path);
  if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n + 12))) {
    if (w) writer_free(w);
    dl_error_set("%s: %s: out of memory", op, path);
    return NULL;
  }
  w->op = op;
  memcpy(w->tmp, path, n);
  memcpy(w->tmp + n, ".tmp.XXXXXX", 12);
  int fd = mkstemp(w->tmp);
  if (fd < 0) {
    dl_error_set("%s: %s: cannot create a temporary file: %s", op, path, strerror(errno));
    writer_free(w);
    return NULL;
  }
  /* mkstemp makes the file 0600; give it the mode a plain fopen would */
  mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd, 0666 & ~mask) != 0 || !(w->f = fdopen(fd, "wb"))) {
    dl_error_set("%s: %s: cannot open the temporary file: %s", op, path, strerror(errno));
    close(fd);
    unlink(w->tmp);
    writer_free(w);
    return NULL;
  }
  return w;
}

int dl_file_writer_write(dl_file_writer *w, const void *p, size_t n) {
  if (n && fwrite(p, 1, n, w->f) != n) {
    dl_error_set("%s: %s: write failed: %s", w->op, w->path, strerror(errno));
    return -1;
  }
  w->size += n;
  return 0;
}

size_t dl_file_writer_size(const dl_file_writer *w) { return w->size; }

void dl_file_writer_abort(dl_file_writer *w) {
  if (!w) return;
  if (w->f) fclose(w->f);
  unlink(w->tmp);
  writer_free(w);
}

/* fsync the directory so the rename itself survives a crash */
static void sync_dir(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(copy);
}

int dl_file_writer_commit(dl_file_writer *w) {
  FILE *f = w->f;
  w->f = NULL;
  const char *why = NULL;
  if (fflush(f) != 0) why = "flush failed";
  else if (fsync(fileno(f)) != 0) why = "fsync failed";
  int err = errno;
  if (fclose(f) != 0 && !why) {
    why = "close failed";
    err = errno;
  }
  if (!why && rename(w->tmp, w->path) != 0) {
    why = "cannot replace the file";
    err = errno;
  }
  if (why) {
    dl_error_set("%s: %s: %s: %s", w->op, w->path, why, strerror(err));
    unlink(w->tmp);
    writer_free(w);
    return -1;
  }
  sync_dir(w->path);
  writer_free(w);
  return 0;
}

void *dl_file_read_all(const char *op, const char *path, size_t *size, size_t max) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    dl_error_set("%s: %s: cannot open: %s", op, path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    dl_error_set("%s: %s: not a regular file", op, path);
    fclose(f);
    return NULL;
  }
  if ((uintmax_t)st.st_size > (uintmax_t)max) {
    dl_error_set("%s: %s: file too large (%lld bytes)", op, path, (long long)st.st_size);
    fclose(f);
    return NULL;
  }
  size_t n = (size_t)st.st_size;
  char *buf = malloc(n ? n : 1);
  if (!buf) {
    dl_error_set("%s: %s: out of memory reading %zu bytes", op, path, n);
    fclose(f);
    return NULL;
  }
  size_t got = n ? fread(buf, 1, n, f) : 0;
  /* a file that changed size under us is an error, not a short read */
  if (got != n || fgetc(f) != EOF) {
    dl_error_set("%s: %s: read failed (file changed while reading?)", op, path);
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *size = n;
  return buf;
}
