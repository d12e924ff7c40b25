/* dl_file.h — whole-file reads with size checks and atomic writes (a temp
 * file in the target's directory, fsync, rename): a crash or an error
 * mid-write leaves the previous file intact. */
#ifndef DL_FILE_H
#define DL_FILE_H

#include <stddef.h>

typedef struct dl_file_writer dl_file_writer;

/* Creates "<target>.tmp.XXXXXX" next to the file path names (a symlink is
 * followed, so the write replaces its target and the link stays), with the
 * mode of the file it replaces (a new one: 0666 less the umask); NULL with
 * an error naming op and path. */
dl_file_writer *dl_file_writer_open(const char *op, const char *path);
/* 0 ok, -1 with an error (the writer stays open; abort it). */
int dl_file_writer_write(dl_file_writer *w, const void *p, size_t n);
/* Bytes written so far. */
size_t dl_file_writer_size(const dl_file_writer *w);
/* Flushes, fsyncs and renames over the target, then removes the temp files
 * of saves killed before their rename (same name, untouched for a minute);
 * frees w either way (on failure the temp file is removed). 0 ok, -1 with an
 * error. */
int dl_file_writer_commit(dl_file_writer *w);
/* Closes and removes the temp file; frees w. */
void dl_file_writer_abort(dl_file_writer *w);

/* Reads a whole regular file (at most max bytes) into a malloc'd buffer
 * (*size bytes; never NULL on success). NULL with an error naming op and
 * path. */
void *dl_file_read_all(const char *op, const char *path, size_t *size, size_t max);

#endif
