/*
 * fs: file-system helpers shared by every role.  0 or -errno; err (where
 * taken) gets a one-line reason naming the call and the path.
 */
#ifndef EGR_FS_H
#define EGR_FS_H

#include <stddef.h>

/* fsync a directory (after a rename into it). */
int egr_fs_fsync_dir(const char *path);
/* Write text to path atomically (path.tmp, fsync, rename). */
int egr_fs_write_atomic(const char *path, const char *text, char *err, size_t errlen);
/*
 * The same without the fsync: readers never see half a file, but a crash
 * may lose it.  For views rewritten often (job status, metrics).
 */
int egr_fs_write_view(const char *path, const char *text, char *err, size_t errlen);
/*
 * rm -r path (file or directory); 0 if it did not exist.  -EINVAL for a
 * path that is not absolute or names a top-level directory.
 */
int egr_fs_remove_tree(const char *path);

#endif
