/* dl_file.c — see dl_file.h. */
#include "dl_file.h"

#include "dl_core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct dl_file_writer {
  FILE *f;
  char *path;   /* as the caller named it, for messages */
  char *target; /* the file replaced: path with symlinks followed */
  char *tmp;
  const char *op;
  size_t size;
};

static void writer_free(dl_file_writer *w) {
  free(w->path);
  free(w->target);
  free(w->tmp);
  free(w);
}

/* The file a write to `path` lands in: a symlink is followed (to its target,
 * even a dangling one), as fopen would, so the rename replaces the target and
 * leaves the link. Returns a malloc'd path, or NULL when out of memory. */
static char *write_target(const char *path) {
  char *p = strdup(path);
  for (int hops = 0; p && hops < 40; hops++) {
    struct stat st;
    if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode)) break;
    char link[4096];
    ssize_t k = readlink(p, link, sizeof link - 1);
    if (k <= 0) break;
    link[k] = 0;
    char *next;
    if (link[0] == '/') {
      next = strdup(link);
    } else { /* relative to the directory holding the link */
      char *dir = strdup(p);
      next = dir ? malloc(strlen(dir) + (size_t)k + 2) : NULL;
      if (next) sprintf(next, "%s/%s", dirname(dir), link);
      free(dir);
    }
    free(p);
    p = next;
  }
  return p;
}

/* Temporary files a save killed before its rename left beside `path`
 * (`<name>.tmp.XXXXXX`). One untouched for a minute is stale: a live save
 * writes its file continuously. */
static void remove_stale_temps(const char *path) {
  char *dcopy = strdup(path), *bcopy = strdup(path);
  DIR *d = dcopy && bcopy ? opendir(dirname(dcopy)) : NULL;
  if (d) {
    const char *base = basename(bcopy);
    size_t nb = strlen(base);
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strncmp(e->d_name, base, nb) != 0 || strncmp(e->d_name + nb, ".tmp.", 5) != 0 ||
          strlen(e->d_name + nb + 5) != 6)
        continue;
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
          now - st.st_mtime > 60)
        unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
  }
  free(dcopy);
  free(bcopy);
}

dl_file_writer *dl_file_writer_open(const char *op, const char *path) {
  if (!path || !*path) {
    dl_error_set("%s: empty file name", op);
    return NULL;
  }
  dl_file_writer *w = calloc(1, sizeof *w);
  char *target = write_target(path);
  size_t n = target ? strlen(target) : 0;
  if (!w || !target || !(w->path = strdup(path)) || !(w->tmp = malloc(n + 12))) {
    if (w) writer_free(w);
    free(target);
    dl_error_set("%s: %s: out of memory", op, path);
    return NULL;
  }
  w->op = op;
  w->target = target;
  memcpy(w->tmp, target, n);
  memcpy(w->tmp + n, ".tmp.XXXXXX", 12);
  int fd = mkstemp(w->tmp);
  if (fd < 0) {
    dl_error_set("%s: %s: cannot create a temporary file: %s", op, path, strerror(errno));
    writer_free(w);
    return NULL;
  }
  /* mkstemp makes the file 0600: keep the mode of the file being replaced,
   * or give a new one the mode a plain fopen would */
  struct stat st;
  mode_t mode;
  if (stat(target, &st) == 0 && S_ISREG(st.st_mode)) {
    mode = st.st_mode & 07777;
  } else {
    mode_t mask = umask(0);
    umask(mask);
    mode = 0666 & ~mask;
  }
  if (fchmod(fd, mode) != 0 || !(w->f = fdopen(fd, "wb"))) {
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
  if (!why && rename(w->tmp, w->target) != 0) {
    why = "cannot replace the file";
    err = errno;
  }
  if (why) {
    dl_error_set("%s: %s: %s: %s", w->op, w->path, why, strerror(err));
    unlink(w->tmp);
    writer_free(w);
    return -1;
  }
  sync_dir(w->target);
  remove_stale_temps(w->target);
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
