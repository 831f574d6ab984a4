/*
 * safepath: the trust boundary between the paths a job names and the file
 * system.  Every latents, weights and output path of a job goes through here
 * before anything reads or writes it.
 *
 * Trust model (Postfix's safe_open and openat2(2) are the models):
 *   - The administrator names the roots: [paths] allow_read (what jobs may
 *     read) and allow_write (where outputs may go), absolute directories
 *     opened once (O_PATH) when the process starts.  With no root of a kind,
 *     every path of that kind is refused with a message naming the key.
 *   - A job's path is checked as a string first: absolute, no empty, "." or
 *     ".." component, no control character; it must lie under a root
 *     (compared component by component, so /data2 is not under /data).
 *   - It is then resolved from the root's fd, never from "/": openat2 with
 *     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the kernel has it (5.6+),
 *     else a walk that opens one component at a time with O_NOFOLLOW.  No
 *     symbolic link is followed anywhere under a root, not even one that
 *     stays inside it: the user gives the real path.
 *   - What comes back is a descriptor, and everything afterwards acts
 *     through it (*at calls), so a directory or link swapped in after the
 *     check redirects nothing (no check-then-use).
 *   - Inputs must be regular files (never a device, FIFO, socket, directory
 *     or link).  Outputs are written under an unpredictable temporary name
 *     created with O_CREAT|O_EXCL|O_NOFOLLOW inside the opened parent, then
 *     renamed over the final name by egr_safepath_commit, which applies the
 *     overwrite policy once more at the moment of the rename.
 *   - An existing output is replaced only with overwrite = yes, and then
 *     only a regular file, or a directory egressd made (it holds the marker
 *     file EGR_SAFEPATH_MARKER owned by egressd's user); never a device,
 *     FIFO, socket, link or foreign directory, never the job's own inputs or
 *     a directory holding them.
 *
 * Errors: functions return 0 or -errno and fill err with ONE line a person
 * can act on that names the user's path (control characters shown as '?'),
 * never a temporary name and never a byte of any file's contents:
 *   latents "/etc/shadow" is not under any allow_read root (set [paths] allow_read)
 *   output "/data/x.y4m" exists; set overwrite = yes to replace it
 *
 * Descriptors are O_CLOEXEC.  Nothing here keeps global state except a flag
 * remembering that openat2 is missing; all of it is safe in any process.
 */
#ifndef EGR_SAFEPATH_H
#define EGR_SAFEPATH_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define EGR_SAFEPATH_MAX 1024		/* longest path, NUL included (= EGR_PATH_MAX) */
#define EGR_SAFEPATH_MAX_ROOTS 16	/* per kind */
/* the file egressd leaves in every output directory it creates */
#define EGR_SAFEPATH_MARKER ".egressd-output"

enum egr_safepath_access { EGR_SAFEPATH_READ = 0, EGR_SAFEPATH_WRITE = 1 };

struct egr_safepath_root {
	char path[EGR_SAFEPATH_MAX];	/* as configured, without a trailing '/' ("/" stays) */
	size_t len;
	int fd;				/* O_PATH | O_DIRECTORY */
};

/* The root set: allow_read and allow_write, opened. */
struct egr_safepath {
	struct egr_safepath_root roots[2][EGR_SAFEPATH_MAX_ROOTS];	/* [enum egr_safepath_access] */
	unsigned nroots[2];
	int walk_only;		/* tests: 1 resolves with the O_NOFOLLOW walk even where openat2 exists */
};

/* An input opened for reading. */
struct egr_safepath_file {
	int fd;			/* O_RDONLY, a regular file; -1 when closed */
	int dirfd;		/* its directory (O_PATH), for the containment checks */
	struct stat st;		/* fstat of fd: st_size is the size */
	char what[16];		/* "latents", "weights" */
	char path[EGR_SAFEPATH_MAX];	/* the user's path */
};

enum egr_safepath_exists {
	EGR_SAFEPATH_NONE,	/* nothing at the output name */
	EGR_SAFEPATH_FILE,	/* a regular file */
	EGR_SAFEPATH_OURDIR,	/* a directory egressd made (marker inside, egressd's uid) */
	EGR_SAFEPATH_DIR,	/* any other directory */
	EGR_SAFEPATH_OTHER,	/* symlink, FIFO, socket, device */
};

/* An output: its parent directory opened, and what is at its name now. */
struct egr_safepath_out {
	int dirfd;		/* the parent, O_RDONLY | O_DIRECTORY (fsync-able); -1 when closed */
	char name[256];		/* the final component */
	char what[16];		/* "output" */
	char path[EGR_SAFEPATH_MAX];	/* the user's path */
	enum egr_safepath_exists exists;	/* as of the last egr_safepath_inspect */
	struct stat st;		/* lstat of what exists (exists != NONE) */
};

/*
 * Open the roots: allow_read and allow_write are space-separated absolute
 * directories (either may be NULL or empty: no roots of that kind).  Each
 * must pass egr_safepath_check_syntax and be an existing directory.  0 or
 * -errno with err naming the key and the directory.
 */
int egr_safepath_init(struct egr_safepath *sp, const char *allow_read, const char *allow_write, char *err,
		      size_t errlen);
void egr_safepath_close(struct egr_safepath *sp);

/*
 * The string checks alone (what = "latents", "output", "allow_read"...):
 * absolute, shorter than EGR_SAFEPATH_MAX, components of at most 255 bytes,
 * no empty, "." or ".." component, no byte below 0x20 and no 0x7f.
 * 0 or -EINVAL / -ENAMETOOLONG with err set.
 */
int egr_safepath_check_syntax(const char *what, const char *path, char *err, size_t errlen);

/*
 * Open an input for reading: path under an allow_read root, resolved without
 * following links, a regular file (checked before the open, so a device or
 * FIFO is never opened, and again by fstat after it).  f is filled, its fds
 * are the caller's (egr_safepath_file_close).  0 or -errno.
 */
int egr_safepath_open_input(const struct egr_safepath *sp, const char *what, const char *path,
			    struct egr_safepath_file *f, char *err, size_t errlen);
void egr_safepath_file_close(struct egr_safepath_file *f);

/*
 * Open an output's parent: path under an allow_write root (and not a root
 * itself), its parent an existing directory writable by this process,
 * resolved without following links; then egr_safepath_inspect.  o is filled,
 * o->dirfd is the caller's (egr_safepath_out_close).  0 or -errno.
 */
int egr_safepath_open_output(const struct egr_safepath *sp, const char *what, const char *path,
			     struct egr_safepath_out *o, char *err, size_t errlen);
void egr_safepath_out_close(struct egr_safepath_out *o);

/* Look at what is at o->name now (fstatat, no link followed): sets o->exists, o->st.  0 or -errno. */
int egr_safepath_inspect(struct egr_safepath_out *o);

/*
 * The overwrite policy, before any decoding: may the output be written?
 * want_dir: the format writes a directory (png) rather than a file (y4m).
 * inputs: the job's opened inputs (n of them); the output must not be one of
 * them, nor an existing directory that holds one.  0, or -EEXIST / -EINVAL /
 * -EPERM with err set, e.g.
 *   output "/d/x.y4m" exists; set overwrite = yes to replace it
 *   output "/d/clip.npy" is the job's latents; choose another output
 *   output "/d/frames" is a directory egressd did not create; it replaces only its own: choose another output
 */
int egr_safepath_check_output(const struct egr_safepath_out *o, int overwrite, int want_dir,
			      const struct egr_safepath_file *inputs, size_t n, char *err, size_t errlen);

/*
 * A temporary name for the output whose final component is final:
 * ".<final>.<64 random bits in hex>.egressd-tmp" (getrandom).  0 or -errno.
 */
int egr_safepath_temp_name(const char *final, char *buf, size_t len);
/*
 * Create the temporary output inside o->dirfd: tmpname if the caller gives
 * one (from egr_safepath_temp_name, recorded before the create: one try,
 * -EEXIST if something is there), else a fresh name made from o->name and
 * 64 random bits (getrandom), created with O_CREAT|O_EXCL|O_NOFOLLOW (a file,
 * opened O_WRONLY) or mkdirat + open(O_DIRECTORY|O_NOFOLLOW) (a directory,
 * with EGR_SAFEPATH_MARKER created inside).  mode is the file's or the
 * directory's mode (set with fchmod, so the umask does not narrow it).
 * tmpname (at least 300 bytes) receives the name, *fd the open descriptor.
 * Errors name the user's output path, not the temporary.  0 or -errno.
 */
int egr_safepath_create_temp(const struct egr_safepath_out *o, int is_dir, mode_t mode, char *tmpname,
			     size_t tmplen, int *fd, char *err, size_t errlen);

/*
 * Move the temporary over the output name, with the overwrite policy applied
 * again at that moment: overwrite = no renames with RENAME_NOREPLACE (so an
 * output that appeared while the job ran is kept, -EEXIST); overwrite = yes
 * replaces a regular file (file) or exchanges an egressd directory
 * (directory; the old one, checked once more to be egressd's, is removed).
 * The caller fsyncs the file or directory first and o->dirfd after.
 * 0 or -errno; on failure the temporary is left for the caller to remove.
 */
int egr_safepath_commit(struct egr_safepath_out *o, const char *tmpname, int is_dir, int overwrite, char *err,
			size_t errlen);

/*
 * rm -r of dirfd/name without following any link (a link is removed, never
 * its target); for removing a temporary output.  0 if it did not exist.
 */
int egr_safepath_remove_at(int dirfd, const char *name);

/*
 * Mode for an output that reveals no more than its inputs: owner rw, and
 * group/other read only where every input has it (a 0600 latents file gives
 * a 0600 output); directories get x wherever they get r.
 */
mode_t egr_safepath_output_mode(const struct egr_safepath_file *inputs, size_t n, int is_dir);

#endif
