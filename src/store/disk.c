/*
 * disk.c - the local-disk object backend (see backend.h for the contract
 * and store.c's essay for the layout).
 *
 *   ROOT/objects/ab/cdef...   object whose hash is abcdef... (2 + 62 hex
 *                             digits); the file holds exactly the object's
 *                             bytes, so SHA-256 of the file is its name
 *   ROOT/tmp/PID.SEQ.HASH8    an object being written (never read)
 *   ROOT/packs/NAME.pack      many objects in one file (pack.c)
 *
 * A batch begun with `many` (the chunks of a chunked put) goes to one new
 * pack (pack.c); any other batch to loose files as below. Reads look in
 * the packs first (an in-memory map), then for a loose file.
 *
 * Writes: each staged object goes to a new file in tmp/ (O_EXCL), then at
 * commit the data is made durable, the files are renamed into objects/,
 * and the directories that received names are made durable. rename() is
 * atomic, so a name in objects/ always refers to a complete file; a crash
 * leaves at most stray files in tmp/, which GC deletes.
 *
 * fsync batching: a batch of up to SMALL_BATCH files is synced file by file
 * (fsync each, then fsync each touched objects/xx directory); a larger
 * loose batch uses one syncfs() for the data and one for the names, whose
 * cost does not grow with the number of files. (store.c's loose batches
 * hold one object - small content or a manifest - since chunks go to
 * packs; the larger-batch path keeps the backend correct and its open
 * descriptors bounded for any caller that does not pass `many`.)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/hmap.h"
#include "store/pack.h"

#define SMALL_BATCH 8

struct disk {
	ths__backend base;
	char *root;
	int rootfd, objfd, tmpfd;
	int sync;
	_Atomic uint64_t seq;
	ths__packset *ps;
};

struct staged {
	ths_hash hash;
	char tmp[64];
	int fd; /* open only while the batch is small (fsync per file) */
};

struct ths__batch {
	struct disk *d;
	struct staged *v;
	size_t n, cap;
	bool big; /* more than SMALL_BATCH files: syncfs instead of fsync */
	ths__packw *pw; /* a pack batch: everything goes there */
};

int ths__errno_code(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT: return TH_ENOSPC;
	case ENOENT: return TH_ENOTFOUND;
	case ENOMEM: return TH_ENOMEM;
	case EEXIST: return TH_EEXIST;
	default: return TH_EIO;
	}
}

static int sys_err(th_err *err, int e, const char *what, const char *path)
{
	int code = ths__errno_code(e);
	if (code == TH_ENOSPC)
		return th_err_set(err, code, "no space left on device: %s %s",
				  what, path);
	return th_err_set(err, code, "%s %s: %s", what, path, strerror(e));
}

/* "ab/cdef..." relative to objects/. */
static void obj_rel(const ths_hash *h, char out[THS_HEX_LEN + 2])
{
	char hex[THS_HEX_LEN + 1];
	th_hex(h->b, THS_HASH_LEN, hex);
	out[0] = hex[0];
	out[1] = hex[1];
	out[2] = '/';
	memcpy(out + 3, hex + 2, THS_HEX_LEN - 2 + 1);
}

static void disk_where(ths__backend *be, const ths_hash *h, char *buf, size_t n)
{
	struct disk *d = (struct disk *)be;
	char rel[THS_HEX_LEN + 2];
	if (ths__packset_where(d->ps, h, buf, n))
		return;
	obj_rel(h, rel);
	snprintf(buf, n, "%s/objects/%s", d->root, rel);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t len, size_t *got)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = read(fd, p + done, len - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

static int disk_open_obj(struct disk *d, const ths_hash *h, th_err *err)
{
	char rel[THS_HEX_LEN + 2];
	obj_rel(h, rel);
	int fd = openat(d->objfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		char where[4200];
		int e = errno;
		disk_where(&d->base, h, where, sizeof where);
		if (e == ENOENT)
			return th_err_set(err, TH_ENOTFOUND, "no object %s",
					  where);
		return sys_err(err, e, "cannot open", where);
	}
	return fd;
}

static int disk_read(ths__backend *be, const ths_hash *h, size_t max,
		     uint8_t **buf, size_t *len, th_err *err)
{
	struct disk *d = (struct disk *)be;
	char where[4200];
	int rc = 0;
	uint8_t *b = NULL;
	rc = ths__packset_read(d->ps, h, max, buf, len, err);
	if (rc != TH_ENOTFOUND)
		return rc;
	rc = 0;
	int fd = disk_open_obj(d, h, err);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		disk_where(be, h, where, sizeof where);
		rc = sys_err(err, errno, "cannot stat", where);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		disk_where(be, h, where, sizeof where);
		rc = th_err_set(err, TH_ELIMIT, "object %s is %lld bytes (limit %zu)",
				where, (long long)st.st_size, max);
		goto out;
	}
	size_t n = (size_t)st.st_size, got = 0;
	b = th_malloc(n);
	if (!b) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory reading %zu bytes", n);
		goto out;
	}
	int e = read_all(fd, b, n, &got);
	if (e || got != n) {
		disk_where(be, h, where, sizeof where);
		rc = e ? sys_err(err, e, "cannot read", where)
		       : th_err_set(err, TH_ECORRUPT, "object %s shrank while read",
				    where);
		goto out;
	}
	*buf = b;
	*len = n;
	b = NULL;
out:
	th_free(b);
	close(fd);
	return rc;
}

static int disk_peek(ths__backend *be, const ths_hash *h, uint8_t *buf,
		     size_t n, size_t *got, th_err *err)
{
	struct disk *d = (struct disk *)be;
	int rc = ths__packset_peek(d->ps, h, buf, n, got, err);
	if (rc != TH_ENOTFOUND)
		return rc;
	int fd = disk_open_obj(d, h, err);
	if (fd < 0)
		return fd;
	int e = read_all(fd, buf, n, got);
	close(fd);
	if (e) {
		char where[4200];
		disk_where(be, h, where, sizeof where);
		return sys_err(err, e, "cannot read", where);
	}
	return 0;
}

static void disk_prefetch(ths__backend *be, const ths_hash *h)
{
	struct disk *d = (struct disk *)be;
	char rel[THS_HEX_LEN + 2];
	struct ths__obj_info info;
	if (ths__packset_stat(d->ps, h, &info) == 0) {
		ths__packset_prefetch(d->ps, h);
		return;
	}
	obj_rel(h, rel);
	int fd = openat(d->objfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* The kernel starts reading into the page cache and keeps going
	 * after the close. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	close(fd);
}

static int disk_stat(ths__backend *be, const ths_hash *h,
		     struct ths__obj_info *out, th_err *err)
{
	struct disk *d = (struct disk *)be;
	char rel[THS_HEX_LEN + 2];
	struct stat st;
	if (ths__packset_stat(d->ps, h, out) == 0)
		return 0;
	obj_rel(h, rel);
	if (fstatat(d->objfd, rel, &st, 0) != 0) {
		char where[4200];
		int e = errno;
		disk_where(be, h, where, sizeof where);
		if (e == ENOENT)
			return th_err_set(err, TH_ENOTFOUND, "no object %s",
					  where);
		return sys_err(err, e, "cannot stat", where);
	}
	out->hash = *h;
	out->size = (uint64_t)st.st_size;
	out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			st.st_mtim.tv_nsec;
	return 0;
}

static int disk_touch(ths__backend *be, const ths_hash *h, th_err *err)
{
	struct disk *d = (struct disk *)be;
	char rel[THS_HEX_LEN + 2];
	obj_rel(h, rel);
	if (utimensat(d->objfd, rel, NULL, 0) != 0) {
		char where[4200];
		if (errno == ENOENT) {
			int rc = ths__packset_touch(d->ps, h, err);
			if (rc != TH_ENOTFOUND)
				return rc;
			errno = ENOENT;
		}
		disk_where(be, h, where, sizeof where);
		return sys_err(err, errno, "cannot touch", where);
	}
	return 0;
}

static int disk_batch_begin(ths__backend *be, bool many, ths__batch **out,
			    th_err *err)
{
	ths__batch *b = th_calloc(1, sizeof *b);
	if (!b)
		return th_err_set(err, TH_ENOMEM, "out of memory (write batch)");
	b->d = (struct disk *)be;
	if (many) {
		int rc = ths__packw_begin(b->d->ps, &b->pw, err);
		if (rc) {
			th_free(b);
			return rc;
		}
	}
	*out = b;
	return 0;
}

static void batch_close_fds(ths__batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].fd >= 0)
			close(b->v[i].fd);
		b->v[i].fd = -1;
	}
}

static int disk_batch_add(ths__batch *b, const ths_hash *h, const void *data,
			  size_t len, th_err *err)
{
	struct disk *d = b->d;
	if (b->pw)
		return ths__packw_add(b->pw, h, data, len, err);
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 16;
		struct staged *nv = th_realloc(b->v, ncap * sizeof *nv);
		if (!nv)
			return th_err_set(err, TH_ENOMEM,
					  "out of memory (write batch)");
		b->v = nv;
		b->cap = ncap;
	}
	struct staged *s = &b->v[b->n];
	char hex[THS_HEX_LEN + 1];
	th_hex(h->b, THS_HASH_LEN, hex);
	int fd = -1;
	for (int tries = 0; fd < 0; tries++) {
		uint64_t seq = atomic_fetch_add(&d->seq, 1);
		snprintf(s->tmp, sizeof s->tmp, "%ld.%llu.%.16s", (long)getpid(),
			 (unsigned long long)seq, hex);
		fd = openat(d->tmpfd, s->tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
		if (fd < 0 && (errno != EEXIST || tries > 100)) {
			char path[4200];
			snprintf(path, sizeof path, "%s/tmp/%s", d->root, s->tmp);
			return sys_err(err, errno, "cannot create", path);
		}
	}
	int e = write_all(fd, data, len);
	if (e) {
		char path[4200];
		close(fd);
		unlinkat(d->tmpfd, s->tmp, 0);
		snprintf(path, sizeof path, "%s/tmp/%s (object %s)", d->root,
			 s->tmp, hex);
		return sys_err(err, e, "cannot write", path);
	}
	s->hash = *h;
	s->fd = fd;
	b->n++;
	if (d->sync == THS_SYNC_NONE || b->n > SMALL_BATCH) {
		b->big = b->n > SMALL_BATCH;
		batch_close_fds(b);
	}
	return 0;
}

static void disk_batch_abort(ths__batch *b)
{
	if (!b)
		return;
	ths__packw_abort(b->pw);
	batch_close_fds(b);
	for (size_t i = 0; i < b->n; i++)
		unlinkat(b->d->tmpfd, b->v[i].tmp, 0);
	th_free(b->v);
	th_free(b);
}

static int fsync_dirat(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int e = fsync(fd) == 0 ? 0 : errno;
	close(fd);
	return e;
}

static int disk_batch_commit(ths__batch *b, th_err *err)
{
	struct disk *d = b->d;
	bool full = d->sync == THS_SYNC_FULL;
	int rc = 0;
	size_t done = 0;
	uint8_t touched[256] = { 0 };
	int ntouched = 0;
	bool made_dir = false;

	if (b->pw) {
		rc = ths__packw_commit(b->pw, err);
		th_free(b);
		return rc;
	}

	/* 1. Data durable. */
	if (full) {
		if (b->big) {
			if (syncfs(d->rootfd) != 0) {
				rc = sys_err(err, errno, "syncfs", d->root);
				goto out;
			}
		} else {
			for (size_t i = 0; i < b->n; i++) {
				if (fsync(b->v[i].fd) != 0) {
					rc = sys_err(err, errno, "fsync",
						     b->v[i].tmp);
					goto out;
				}
			}
		}
	}
	batch_close_fds(b);
	/* 2. Names visible: rename is atomic. */
	for (; done < b->n; done++) {
		struct staged *s = &b->v[done];
		char rel[THS_HEX_LEN + 2];
		obj_rel(&s->hash, rel);
		int r = renameat(d->tmpfd, s->tmp, d->objfd, rel);
		if (r != 0 && errno == ENOENT) {
			char dir[3] = { rel[0], rel[1], 0 };
			if (mkdirat(d->objfd, dir, 0755) != 0 && errno != EEXIST) {
				rc = sys_err(err, errno, "cannot create directory",
					     dir);
				goto out;
			}
			made_dir = true;
			r = renameat(d->tmpfd, s->tmp, d->objfd, rel);
		}
		if (r != 0) {
			char where[4200];
			disk_where(&d->base, &s->hash, where, sizeof where);
			rc = sys_err(err, errno, "cannot rename into", where);
			goto out;
		}
		if (!touched[s->hash.b[0]]) {
			touched[s->hash.b[0]] = 1;
			ntouched++;
		}
	}
	/* 3. Names durable. */
	if (full) {
		int e = 0;
		if (ntouched > SMALL_BATCH) {
			e = syncfs(d->rootfd) == 0 ? 0 : errno;
		} else {
			for (int i = 0; i < 256 && !e; i++) {
				if (!touched[i])
					continue;
				char dir[3];
				snprintf(dir, sizeof dir, "%02x", i);
				e = fsync_dirat(d->objfd, dir);
			}
			if (!e && made_dir)
				e = fsync(d->objfd) == 0 ? 0 : errno;
		}
		if (e)
			rc = sys_err(err, e, "fsync of directories in", d->root);
	}
out:
	batch_close_fds(b);
	for (size_t i = done; i < b->n; i++)
		unlinkat(d->tmpfd, b->v[i].tmp, 0);
	th_free(b->v);
	th_free(b);
	return rc;
}

static int disk_remove(ths__backend *be, const ths_hash *h, th_err *err)
{
	struct disk *d = (struct disk *)be;
	char rel[THS_HEX_LEN + 2];
	/* A packed copy goes at the next sync (repack). */
	bool packed = ths__packset_remove(d->ps, h);
	obj_rel(h, rel);
	if (unlinkat(d->objfd, rel, 0) != 0) {
		char where[4200];
		if (errno == ENOENT && packed)
			return 0;
		snprintf(where, sizeof where, "%s/objects/%s", d->root, rel);
		return sys_err(err, errno, "cannot remove", where);
	}
	return 0;
}

static bool list_skip(void *ud, const ths_hash *h)
{
	return ths__hmap_find(ud, h) != NULL;
}

/* Loose objects first (each hash once; a copy also in a pack reports the
 * later mtime of the two), then packed objects with no loose copy. */
static int disk_list(ths__backend *be, ths__list_fn fn, void *ud, th_err *err)
{
	struct disk *d = (struct disk *)be;
	ths__hmap loose;
	ths__hmap_init(&loose);
	int rc = 0;
	for (int i = 0; i < 256 && !rc; i++) {
		char dname[3];
		snprintf(dname, sizeof dname, "%02x", i);
		int dfd = openat(d->objfd, dname,
				 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			if (errno == ENOENT)
				continue;
			rc = sys_err(err, errno, "cannot open directory", dname);
			break;
		}
		DIR *dir = fdopendir(dfd);
		if (!dir) {
			close(dfd);
			rc = sys_err(err, errno, "cannot read directory", dname);
			break;
		}
		struct dirent *de;
		while (!rc && (de = readdir(dir)) != NULL) {
			char hex[THS_HEX_LEN + 1];
			struct ths__obj_info info;
			struct stat st;
			if (strlen(de->d_name) != THS_HEX_LEN - 2)
				continue;
			hex[0] = dname[0];
			hex[1] = dname[1];
			memcpy(hex + 2, de->d_name, THS_HEX_LEN - 2 + 1);
			if (!th_unhex(hex, info.hash.b, THS_HASH_LEN))
				continue;
			if (fstatat(dirfd(dir), de->d_name, &st, 0) != 0)
				continue; /* removed meanwhile */
			if (!S_ISREG(st.st_mode))
				continue;
			info.size = (uint64_t)st.st_size;
			info.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
					st.st_mtim.tv_nsec;
			struct ths__obj_info pinfo;
			if (ths__packset_stat(d->ps, &info.hash, &pinfo) == 0 &&
			    pinfo.mtime_ns > info.mtime_ns)
				info.mtime_ns = pinfo.mtime_ns;
			ths__hval *v;
			if (ths__hmap_upsert(&loose, &info.hash, &v) < 0)
				rc = TH_ENOMEM;
			else
				rc = fn(ud, &info);
		}
		closedir(dir);
	}
	if (rc && err && !err->code)
		th_err_set(err, rc, "listing objects stopped: %s",
			   th_strerror(rc));
	if (!rc)
		rc = ths__packset_list(d->ps, list_skip, &loose, fn, ud, err);
	ths__hmap_release(&loose);
	return rc;
}

static int disk_sweep_tmp(ths__backend *be, uint64_t *removed, th_err *err)
{
	struct disk *d = (struct disk *)be;
	int fd = dup(d->tmpfd);
	if (fd < 0)
		return sys_err(err, errno, "dup", "tmp");
	DIR *dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return sys_err(err, errno, "cannot read directory", "tmp");
	}
	rewinddir(dir);
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(d->tmpfd, de->d_name, 0) == 0)
			(*removed)++;
	}
	closedir(dir);
	return 0;
}

static int disk_sync(ths__backend *be, th_err *err)
{
	struct disk *d = (struct disk *)be;
	int rc = ths__packset_repack(d->ps, err);
	if (rc)
		return rc;
	if (d->sync == THS_SYNC_FULL && syncfs(d->rootfd) != 0)
		return sys_err(err, errno, "syncfs", d->root);
	return 0;
}

static int disk_check(ths__backend *be, ths__problem_fn fn, void *ud,
		      th_err *err)
{
	struct disk *d = (struct disk *)be;
	return ths__packset_check(d->ps, fn, ud, err);
}

static void disk_destroy(ths__backend *be)
{
	struct disk *d = (struct disk *)be;
	if (!d)
		return;
	ths__packset_free(d->ps);
	if (d->tmpfd >= 0)
		close(d->tmpfd);
	if (d->objfd >= 0)
		close(d->objfd);
	if (d->rootfd >= 0)
		close(d->rootfd);
	th_free(d->root);
	th_free(d);
}

static const struct ths__backend_ops disk_ops = {
	.read = disk_read,
	.peek = disk_peek,
	.prefetch = disk_prefetch,
	.stat = disk_stat,
	.touch = disk_touch,
	.batch_begin = disk_batch_begin,
	.batch_add = disk_batch_add,
	.batch_commit = disk_batch_commit,
	.batch_abort = disk_batch_abort,
	.remove = disk_remove,
	.list = disk_list,
	.sweep_tmp = disk_sweep_tmp,
	.sync = disk_sync,
	.where = disk_where,
	.check = disk_check,
	.destroy = disk_destroy,
};

static int open_subdir(struct disk *d, const char *name, int *out, th_err *err)
{
	if (mkdirat(d->rootfd, name, 0755) != 0 && errno != EEXIST)
		return sys_err(err, errno, "cannot create directory", name);
	*out = openat(d->rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*out < 0)
		return sys_err(err, errno, "cannot open directory", name);
	return 0;
}

int ths__disk_open(const char *root, int sync, ths__backend **out, th_err *err)
{
	struct disk *d = th_calloc(1, sizeof *d);
	if (!d)
		return th_err_set(err, TH_ENOMEM, "out of memory (disk backend)");
	d->base.ops = &disk_ops;
	d->rootfd = d->objfd = d->tmpfd = -1;
	d->sync = sync;
	int rc = 0;
	d->root = th_strdup(root);
	if (!d->root) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (disk backend)");
		goto fail;
	}
	d->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->rootfd < 0) {
		rc = sys_err(err, errno, "cannot open store directory", root);
		goto fail;
	}
	if ((rc = open_subdir(d, "objects", &d->objfd, err)) != 0 ||
	    (rc = open_subdir(d, "tmp", &d->tmpfd, err)) != 0 ||
	    (rc = ths__packset_open(root, d->rootfd, d->tmpfd, sync, &d->ps,
				    err)) != 0)
		goto fail;
	*out = &d->base;
	return 0;
fail:
	disk_destroy(&d->base);
	return rc;
}
