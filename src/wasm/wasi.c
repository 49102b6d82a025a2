/*
 * wasi.c - the WASI preview1 subset of include/theater/wasi.h, written only
 * against the engine's public API.
 *
 * Each WASI function is a host function whose ctx is the thw_wasi. A call
 * works on guest memory through three helpers that check bounds and log what
 * they touched for the recording hook:
 *   g_in(..)   read guest bytes the host consumes (payloads, paths);
 *   g_out(..)  write bytes into guest memory (results, data);
 *   g_span(..) a checked direct pointer for zero-copy readv/writev, logged
 *              by the caller once the transfer size is known.
 * At the end of every call, finish() hands the log to the hook and returns
 * the errno as the function's i32 result.
 *
 * File descriptors: a small table of guest fds. 0-2 are the host's stdio
 * (never closed on the host), then one per preopened directory, then files
 * the guest opened with path_open. Closed slots are reused lowest first, as
 * POSIX does.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#include "base/base.h"
#include "theater/wasi.h"

/* WASI constants (witx: wasi_snapshot_preview1). */
enum {
	W_2BIG = 1, W_ACCES = 2, W_AGAIN = 6, W_BADF = 8, W_EXIST = 20,
	W_FAULT = 21, W_FBIG = 22, W_INTR = 27, W_INVAL = 28, W_IO = 29,
	W_ISDIR = 31, W_LOOP = 32, W_MFILE = 33, W_NAMETOOLONG = 37,
	W_NOENT = 44, W_NOMEM = 48, W_NOSPC = 51, W_NOSYS = 52, W_NOTDIR = 54,
	W_NOTEMPTY = 55, W_PERM = 63, W_PIPE = 64, W_ROFS = 69, W_SPIPE = 70,
	W_NOTCAPABLE = 76
};
enum {
	FT_UNKNOWN = 0, FT_BLOCK = 1, FT_CHAR = 2, FT_DIR = 3, FT_REG = 4,
	FT_SOCK_STREAM = 6, FT_SYMLINK = 7
};
enum { OF_CREAT = 1, OF_DIRECTORY = 2, OF_EXCL = 4, OF_TRUNC = 8 };
enum { FDF_APPEND = 1, FDF_DSYNC = 2, FDF_NONBLOCK = 4, FDF_RSYNC = 8, FDF_SYNC = 16 };
#define R_FD_READ (1ull << 1)
#define R_FD_WRITE (1ull << 6)
#define R_FD_ALLOCATE (1ull << 8)
#define R_FD_READDIR (1ull << 14)
#define R_FD_FILESTAT_SET_SIZE (1ull << 22)
#define R_ALL 0x1FFFFFFFull

#define MAX_FDS 1024
#define MAX_PATH 4096
#define MAX_IOVS 1024

typedef struct wfd {
	int host;          /* -1 when the slot is free */
	uint8_t type;      /* FT_* */
	bool own;          /* close host on fd_close / free */
	char *guest_path;  /* preopens only */
} wfd;

struct thw_wasi {
	char **argv, **env;
	int argc, nenv;
	wfd *fds;
	uint32_t nfds;
	thw_wasi_hook hook;
	void *hook_ctx;
	bool exited;
	uint32_t exit_code;
	/* Per-call log for the hook (reset by each call). */
	thw_wasi_span *in, *out;
	uint32_t nin, nout, cap_in, cap_out;
	struct nosys *nosys; /* records of ENOSYS imports (list) */
};

/* An import answered with ENOSYS; owned by the thw_wasi. */
struct nosys {
	thw_wasi *w;
	char *name;
	uint32_t nargs;
	struct nosys *next;
};

/* ---- The per-call log and guest-memory helpers ------------------------ */

static void log_reset(thw_wasi *w)
{
	w->nin = w->nout = 0;
}

static void log_span(thw_wasi *w, bool out, uint32_t off, const uint8_t *p,
		     uint32_t len)
{
	if (!w->hook || len == 0)
		return;
	thw_wasi_span **arr = out ? &w->out : &w->in;
	uint32_t *n = out ? &w->nout : &w->nin, *cap = out ? &w->cap_out : &w->cap_in;
	if (*n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 8;
		thw_wasi_span *na = th_realloc(*arr, nc * sizeof *na);
		if (!na)
			return; /* the call still happens; the hook sees a short log */
		*arr = na;
		*cap = nc;
	}
	(*arr)[(*n)++] = (thw_wasi_span){ off, len, p };
}

/* A checked pointer into guest memory, or NULL (bounds, or no memory). */
static uint8_t *g_span(thw_memory *m, uint32_t off, uint32_t len)
{
	if (!m)
		return NULL;
	return thw_memory_ptr(m, off, len);
}

static int g_in(thw_wasi *w, thw_memory *m, uint32_t off, void *dst, uint32_t len)
{
	uint8_t *p = g_span(m, off, len);
	if (!p)
		return -1;
	memcpy(dst, p, len);
	log_span(w, false, off, p, len);
	return 0;
}

static int g_out(thw_wasi *w, thw_memory *m, uint32_t off, const void *src,
		 uint32_t len)
{
	if (!m || thw_memory_write(m, off, src, len) != 0)
		return -1;
	log_span(w, true, off, thw_memory_ptr(m, off, len), len);
	return 0;
}

static int g_u32(thw_wasi *w, thw_memory *m, uint32_t off, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };
	return g_out(w, m, off, b, 4);
}

static void put_u64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static int g_u64(thw_wasi *w, thw_memory *m, uint32_t off, uint64_t v)
{
	uint8_t b[8];
	put_u64(b, v);
	return g_out(w, m, off, b, 8);
}

static uint32_t get_u32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

/* Report the call to the hook and produce the i32 errno result. */
static thw_hostret finish(thw_wasi *w, const char *name, const thw_val *args,
			  uint32_t nargs, uint32_t err, thw_val *results)
{
	if (w->hook) {
		thw_wasi_call c = { name, args, nargs, err, w->in, w->nin,
				    w->out, w->nout };
		w->hook(w->hook_ctx, &c);
	}
	results[0].type = THW_I32;
	results[0].of.i32 = err;
	return THW_HOST_OK;
}

static uint32_t map_errno(int e)
{
	switch (e) {
	case 0: return 0;
	case E2BIG: return W_2BIG;
	case EACCES: return W_ACCES;
	case EAGAIN: return W_AGAIN;
	case EBADF: return W_BADF;
	case EEXIST: return W_EXIST;
	case EFAULT: return W_FAULT;
	case EFBIG: return W_FBIG;
	case EINTR: return W_INTR;
	case EINVAL: return W_INVAL;
	case EISDIR: return W_ISDIR;
	case ELOOP: return W_LOOP;
	case EMFILE: case ENFILE: return W_MFILE;
	case ENAMETOOLONG: return W_NAMETOOLONG;
	case ENOENT: return W_NOENT;
	case ENOMEM: return W_NOMEM;
	case ENOSPC: return W_NOSPC;
	case ENOSYS: return W_NOSYS;
	case ENOTDIR: return W_NOTDIR;
	case ENOTEMPTY: return W_NOTEMPTY;
	case EPERM: return W_PERM;
	case EPIPE: return W_PIPE;
	case EROFS: return W_ROFS;
	case ESPIPE: return W_SPIPE;
	case EXDEV: return W_NOTCAPABLE;
	default: return W_IO;
	}
}

static uint8_t filetype_of(mode_t mode)
{
	if (S_ISREG(mode))
		return FT_REG;
	if (S_ISDIR(mode))
		return FT_DIR;
	if (S_ISCHR(mode))
		return FT_CHAR;
	if (S_ISBLK(mode))
		return FT_BLOCK;
	if (S_ISSOCK(mode))
		return FT_SOCK_STREAM;
	if (S_ISLNK(mode))
		return FT_SYMLINK;
	return FT_UNKNOWN;
}

static wfd *fd_get(thw_wasi *w, uint32_t fd)
{
	if (fd >= w->nfds || w->fds[fd].host < 0)
		return NULL;
	return &w->fds[fd];
}

/* Lowest free slot, growing the table; -1 when full. */
static int64_t fd_alloc(thw_wasi *w)
{
	for (uint32_t i = 0; i < w->nfds; i++)
		if (w->fds[i].host < 0)
			return i;
	if (w->nfds >= MAX_FDS)
		return -1;
	uint32_t n = w->nfds ? w->nfds * 2 : 8;
	if (n > MAX_FDS)
		n = MAX_FDS;
	wfd *nf = th_realloc(w->fds, n * sizeof *nf);
	if (!nf)
		return -1;
	for (uint32_t i = w->nfds; i < n; i++)
		nf[i] = (wfd){ -1, FT_UNKNOWN, false, NULL };
	w->fds = nf;
	uint32_t first = w->nfds;
	w->nfds = n;
	return first;
}

/* ---- Host functions --------------------------------------------------- */

#define HOSTFN(name)                                                              \
	static thw_hostret name(thw_caller *c, void *ctx, const thw_val *a, \
				thw_val *r)
#define BEGIN                                         \
	thw_wasi *w = ctx;                            \
	thw_memory *m = thw_caller_memory(c);         \
	log_reset(w);                                 \
	TH_UNUSED(m)

/* args_get / environ_get: pointer array then NUL-terminated strings. */
static uint32_t strings_get(thw_wasi *w, thw_memory *m, char **v, int n,
			    uint32_t ptrs, uint32_t buf)
{
	for (int i = 0; i < n; i++) {
		size_t len = strlen(v[i]) + 1;
		if (g_u32(w, m, ptrs + 4u * (uint32_t)i, buf) != 0 ||
		    g_out(w, m, buf, v[i], (uint32_t)len) != 0)
			return W_FAULT;
		buf += (uint32_t)len;
	}
	return 0;
}

static uint32_t strings_sizes(thw_wasi *w, thw_memory *m, char **v, int n,
			      uint32_t count_ptr, uint32_t size_ptr)
{
	uint64_t total = 0;
	for (int i = 0; i < n; i++)
		total += strlen(v[i]) + 1;
	if (total > UINT32_MAX)
		return W_2BIG;
	if (g_u32(w, m, count_ptr, (uint32_t)n) != 0 ||
	    g_u32(w, m, size_ptr, (uint32_t)total) != 0)
		return W_FAULT;
	return 0;
}

HOSTFN(w_args_get)
{
	BEGIN;
	uint32_t e = strings_get(w, m, w->argv, w->argc, a[0].of.i32, a[1].of.i32);
	return finish(w, "args_get", a, 2, e, r);
}

HOSTFN(w_args_sizes_get)
{
	BEGIN;
	uint32_t e = strings_sizes(w, m, w->argv, w->argc, a[0].of.i32, a[1].of.i32);
	return finish(w, "args_sizes_get", a, 2, e, r);
}

HOSTFN(w_environ_get)
{
	BEGIN;
	uint32_t e = strings_get(w, m, w->env, w->nenv, a[0].of.i32, a[1].of.i32);
	return finish(w, "environ_get", a, 2, e, r);
}

HOSTFN(w_environ_sizes_get)
{
	BEGIN;
	uint32_t e = strings_sizes(w, m, w->env, w->nenv, a[0].of.i32, a[1].of.i32);
	return finish(w, "environ_sizes_get", a, 2, e, r);
}

static bool clock_of(uint32_t id, clockid_t *out)
{
	switch (id) {
	case 0: *out = CLOCK_REALTIME; return true;
	case 1: *out = CLOCK_MONOTONIC; return true;
	case 2: *out = CLOCK_PROCESS_CPUTIME_ID; return true;
	case 3: *out = CLOCK_THREAD_CPUTIME_ID; return true;
	default: return false;
	}
}

HOSTFN(w_clock_res_get)
{
	BEGIN;
	clockid_t id;
	struct timespec ts;
	uint32_t e = 0;
	if (!clock_of(a[0].of.i32, &id))
		e = W_INVAL;
	else if (clock_getres(id, &ts) != 0)
		e = map_errno(errno);
	else if (g_u64(w, m, a[1].of.i32,
		       (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) != 0)
		e = W_FAULT;
	return finish(w, "clock_res_get", a, 2, e, r);
}

HOSTFN(w_clock_time_get)
{
	BEGIN;
	clockid_t id;
	struct timespec ts;
	uint32_t e = 0;
	if (!clock_of(a[0].of.i32, &id))
		e = W_INVAL;
	else if (clock_gettime(id, &ts) != 0)
		e = map_errno(errno);
	else if (g_u64(w, m, a[2].of.i32,
		       (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) != 0)
		e = W_FAULT;
	return finish(w, "clock_time_get", a, 3, e, r);
}

HOSTFN(w_random_get)
{
	BEGIN;
	uint32_t off = a[0].of.i32, len = a[1].of.i32, e = 0;
	uint8_t *p = g_span(m, off, len);
	if (!p && len) {
		e = W_FAULT;
	} else {
		for (uint32_t done = 0; done < len;) {
			ssize_t n = getrandom(p + done, len - done, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				e = W_IO;
				break;
			}
			done += (uint32_t)n;
		}
		if (!e)
			log_span(w, true, off, p, len);
	}
	return finish(w, "random_get", a, 2, e, r);
}

/* Gather the guest's iovec array into host iovecs (pointers into linear
 * memory, checked). Returns 0 or a WASI errno. */
static uint32_t gather(thw_memory *m, uint32_t iovs, uint32_t n,
		       struct iovec *out, uint32_t *gofs)
{
	if (n > MAX_IOVS)
		return W_INVAL;
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *d = g_span(m, iovs + 8 * i, 8);
		if (!d)
			return W_FAULT;
		uint32_t buf = get_u32(d), len = get_u32(d + 4);
		uint8_t *p = g_span(m, buf, len);
		if (!p && len)
			return W_FAULT;
		total += len;
		if (total > INT32_MAX)
			return W_INVAL;
		out[i].iov_base = p;
		out[i].iov_len = len;
		gofs[i] = buf;
	}
	return 0;
}

/* Log the first `done` bytes of the iovecs as in- or output spans. */
static void log_iovs(thw_wasi *w, bool out, const struct iovec *v,
		     const uint32_t *gofs, uint32_t n, size_t done)
{
	for (uint32_t i = 0; i < n && done; i++) {
		size_t k = v[i].iov_len < done ? v[i].iov_len : done;
		log_span(w, out, gofs[i], v[i].iov_base, (uint32_t)k);
		done -= k;
	}
}

static thw_hostret rw(thw_caller *c, thw_wasi *w, const thw_val *a, thw_val *r,
		      bool write)
{
	thw_memory *m = thw_caller_memory(c);
	const char *name = write ? "fd_write" : "fd_read";
	uint32_t n = a[2].of.i32, e;
	wfd *f;
	log_reset(w);
	if (!(f = fd_get(w, a[0].of.i32)))
		return finish(w, name, a, 4, W_BADF, r);
	if (f->type == FT_DIR)
		return finish(w, name, a, 4, W_ISDIR, r);
	struct iovec *v = th_malloc((n ? n : 1) * sizeof *v);
	uint32_t *gofs = th_malloc((n ? n : 1) * sizeof *gofs);
	if (!v || !gofs) {
		e = W_NOMEM;
		goto out;
	}
	if ((e = gather(m, a[1].of.i32, n, v, gofs)) != 0)
		goto out;
	ssize_t k;
	do
		k = write ? writev(f->host, v, (int)n) : readv(f->host, v, (int)n);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		e = map_errno(errno);
		goto out;
	}
	log_iovs(w, !write, v, gofs, n, (size_t)k);
	if (g_u32(w, m, a[3].of.i32, (uint32_t)k) != 0)
		e = W_FAULT;
out:
	th_free(v);
	th_free(gofs);
	return finish(w, name, a, 4, e, r);
}

HOSTFN(w_fd_write)
{
	return rw(c, ctx, a, r, true);
}

HOSTFN(w_fd_read)
{
	return rw(c, ctx, a, r, false);
}

HOSTFN(w_fd_close)
{
	BEGIN;
	wfd *f = fd_get(w, a[0].of.i32);
	uint32_t e = 0;
	if (!f) {
		e = W_BADF;
	} else {
		if (f->own && close(f->host) != 0)
			e = map_errno(errno);
		th_free(f->guest_path);
		*f = (wfd){ -1, FT_UNKNOWN, false, NULL };
	}
	return finish(w, "fd_close", a, 1, e, r);
}

HOSTFN(w_fd_seek)
{
	BEGIN;
	wfd *f = fd_get(w, a[0].of.i32);
	uint32_t whence = a[2].of.i32, e = 0;
	if (!f) {
		e = W_BADF;
	} else if (whence > 2) {
		e = W_INVAL;
	} else if (f->type == FT_DIR) {
		e = W_BADF;
	} else {
		/* WASI's whence values are SEEK_SET, SEEK_CUR, SEEK_END. */
		off_t pos = lseek(f->host, (off_t)(int64_t)a[1].of.i64,
				  whence == 0 ? SEEK_SET : whence == 1 ? SEEK_CUR : SEEK_END);
		if (pos < 0)
			e = map_errno(errno);
		else if (g_u64(w, m, a[3].of.i32, (uint64_t)pos) != 0)
			e = W_FAULT;
	}
	return finish(w, "fd_seek", a, 4, e, r);
}

HOSTFN(w_fd_fdstat_get)
{
	BEGIN;
	wfd *f = fd_get(w, a[0].of.i32);
	uint32_t e = 0;
	uint8_t st[24];
	memset(st, 0, sizeof st);
	if (!f) {
		e = W_BADF;
	} else {
		int fl = fcntl(f->host, F_GETFL);
		uint16_t flags = 0;
		if (fl >= 0 && (fl & O_APPEND))
			flags |= FDF_APPEND;
		if (fl >= 0 && (fl & O_NONBLOCK))
			flags |= FDF_NONBLOCK;
		st[0] = f->type;
		st[2] = (uint8_t)flags;
		st[3] = (uint8_t)(flags >> 8);
		/* A terminal must not claim seek/tell rights: wasi-libc's isatty
		 * looks for exactly that. */
		uint64_t rights = f->type == FT_CHAR ? R_ALL & ~((1ull << 2) | (1ull << 5))
						     : R_ALL;
		put_u64(st + 8, rights);
		put_u64(st + 16, R_ALL);
		if (g_out(w, m, a[1].of.i32, st, sizeof st) != 0)
			e = W_FAULT;
	}
	return finish(w, "fd_fdstat_get", a, 2, e, r);
}

HOSTFN(w_fd_filestat_get)
{
	BEGIN;
	wfd *f = fd_get(w, a[0].of.i32);
	uint32_t e = 0;
	struct stat sb;
	if (!f) {
		e = W_BADF;
	} else if (fstat(f->host, &sb) != 0) {
		e = map_errno(errno);
	} else {
		uint8_t st[64];
		memset(st, 0, sizeof st);
		put_u64(st, (uint64_t)sb.st_dev);
		put_u64(st + 8, (uint64_t)sb.st_ino);
		st[16] = filetype_of(sb.st_mode);
		put_u64(st + 24, (uint64_t)sb.st_nlink);
		put_u64(st + 32, (uint64_t)sb.st_size);
		put_u64(st + 40, (uint64_t)sb.st_atim.tv_sec * 1000000000u +
					 (uint64_t)sb.st_atim.tv_nsec);
		put_u64(st + 48, (uint64_t)sb.st_mtim.tv_sec * 1000000000u +
					 (uint64_t)sb.st_mtim.tv_nsec);
		put_u64(st + 56, (uint64_t)sb.st_ctim.tv_sec * 1000000000u +
					 (uint64_t)sb.st_ctim.tv_nsec);
		if (g_out(w, m, a[1].of.i32, st, sizeof st) != 0)
			e = W_FAULT;
	}
	return finish(w, "fd_filestat_get", a, 2, e, r);
}

HOSTFN(w_fd_prestat_get)
{
	BEGIN;
	wfd *f = fd_get(w, a[0].of.i32);
	uint32_t e = 0;
	if (!f || !f->guest_path) {
		e = W_BADF;
	} else {
		uint8_t st[8] = { 0 }; /* tag 0 = directory, then u32 name length */
		uint32_t n = (uint32_t)strlen(f->guest_path);
		st[4] = (uint8_t)n;
		st[5] = (uint8_t)(n >> 8);
		st[6] = (uint8_t)(n >> 16);
		st[7] = (uint8_t)(n >> 24);
		if (g_out(w, m, a[1].of.i32, st, sizeof st) != 0)
			e = W_FAULT;
	}
	return finish(w, "fd_prestat_get", a, 2, e, r);
}

HOSTFN(w_fd_prestat_dir_name)
{
	BEGIN;
	wfd *f = fd_get(w, a[0].of.i32);
	uint32_t e = 0;
	if (!f || !f->guest_path) {
		e = W_BADF;
	} else {
		uint32_t n = (uint32_t)strlen(f->guest_path);
		if (a[2].of.i32 < n)
			e = W_NAMETOOLONG;
		else if (g_out(w, m, a[1].of.i32, f->guest_path, n) != 0)
			e = W_FAULT;
	}
	return finish(w, "fd_prestat_dir_name", a, 3, e, r);
}

/* True when the relative path stays inside its directory lexically: not
 * absolute, and no ".." climbs above the start. */
static bool path_beneath(const char *p)
{
	int depth = 0;
	if (*p == '/')
		return false;
	while (*p) {
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - s);
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (--depth < 0)
				return false;
		} else if (n && !(n == 1 && s[0] == '.')) {
			depth++;
		}
		while (*p == '/')
			p++;
	}
	return true;
}

static int open_beneath(int dirfd, const char *path, int flags, bool follow)
{
#ifdef SYS_openat2
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	how.mode = (flags & O_CREAT) ? 0644 : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
	if (fd >= 0 || errno != ENOSYS)
		return (int)fd;
#endif
	return openat(dirfd, path, flags | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW), 0644);
}

HOSTFN(w_path_open)
{
	BEGIN;
	wfd *d = fd_get(w, a[0].of.i32);
	uint32_t dirflags = a[1].of.i32, off = a[2].of.i32, len = a[3].of.i32;
	uint32_t oflags = a[4].of.i32, fdflags = a[7].of.i32, e = 0;
	uint64_t rights = a[5].of.i64;
	char path[MAX_PATH + 1];
	int host = -1;
	if (!d) {
		e = W_BADF;
		goto out;
	}
	if (d->type != FT_DIR) {
		e = W_NOTDIR;
		goto out;
	}
	if (len > MAX_PATH) {
		e = W_NAMETOOLONG;
		goto out;
	}
	if (g_in(w, m, off, path, len) != 0) {
		e = W_FAULT;
		goto out;
	}
	path[len] = 0;
	if (memchr(path, 0, len)) {
		e = W_INVAL;
		goto out;
	}
	if (!path_beneath(path)) {
		e = W_NOTCAPABLE;
		goto out;
	}
	bool rd = rights & (R_FD_READ | R_FD_READDIR);
	bool wr = rights & (R_FD_WRITE | R_FD_ALLOCATE | R_FD_FILESTAT_SET_SIZE);
	int flags = wr ? (rd ? O_RDWR : O_WRONLY) : O_RDONLY;
	if (oflags & OF_CREAT)
		flags |= O_CREAT;
	if (oflags & OF_DIRECTORY)
		flags = O_RDONLY | O_DIRECTORY;
	if (oflags & OF_EXCL)
		flags |= O_EXCL;
	if (oflags & OF_TRUNC)
		flags |= O_TRUNC;
	if (fdflags & FDF_APPEND)
		flags |= O_APPEND;
	if (fdflags & FDF_NONBLOCK)
		flags |= O_NONBLOCK;
	if (fdflags & (FDF_SYNC | FDF_RSYNC))
		flags |= O_SYNC;
	else if (fdflags & FDF_DSYNC)
		flags |= O_DSYNC;
	host = open_beneath(d->host, *path ? path : ".", flags, dirflags & 1);
	if (host < 0) {
		e = errno == EXDEV ? W_NOTCAPABLE : map_errno(errno);
		goto out;
	}
	struct stat sb;
	if (fstat(host, &sb) != 0) {
		e = map_errno(errno);
		goto out;
	}
	int64_t slot = fd_alloc(w);
	if (slot < 0) {
		e = W_MFILE;
		goto out;
	}
	if (g_u32(w, m, a[8].of.i32, (uint32_t)slot) != 0) {
		e = W_FAULT;
		goto out;
	}
	w->fds[slot] = (wfd){ host, filetype_of(sb.st_mode), true, NULL };
	host = -1;
out:
	if (host >= 0)
		close(host);
	return finish(w, "path_open", a, 9, e, r);
}

HOSTFN(w_sched_yield)
{
	BEGIN;
	return finish(w, "sched_yield", a, 0, 0, r);
}

HOSTFN(w_proc_exit)
{
	BEGIN;
	char msg[64];
	w->exited = true;
	w->exit_code = a[0].of.i32;
	if (w->hook) {
		thw_wasi_call call = { "proc_exit", a, 1, w->exit_code, NULL, 0, NULL, 0 };
		w->hook(w->hook_ctx, &call);
	}
	TH_UNUSED(r);
	snprintf(msg, sizeof msg, THW_WASI_EXIT_PREFIX "%" PRIu32, w->exit_code);
	return thw_call_trap(c, msg);
}

/* Any other WASI function whose result is an errno: ctx is its nosys
 * record, so the hook still learns the name and arguments. */
static thw_hostret w_nosys(thw_caller *c, void *ctx, const thw_val *a,
			   thw_val *r)
{
	struct nosys *ns = ctx;
	TH_UNUSED(c);
	log_reset(ns->w);
	return finish(ns->w, ns->name, a, ns->nargs, W_NOSYS, r);
}

/* ---- Table of functions ---------------------------------------------- */

/* Signatures: 'i' = i32, 'I' = i64; every function returns one i32 errno
 * except proc_exit, which returns nothing. */
static const struct wasi_fn {
	const char *name;
	const char *params;
	bool result;
	thw_hostfn fn;
} wasi_fns[] = {
	{ "args_get", "ii", true, w_args_get },
	{ "args_sizes_get", "ii", true, w_args_sizes_get },
	{ "environ_get", "ii", true, w_environ_get },
	{ "environ_sizes_get", "ii", true, w_environ_sizes_get },
	{ "clock_res_get", "ii", true, w_clock_res_get },
	{ "clock_time_get", "iIi", true, w_clock_time_get },
	{ "random_get", "ii", true, w_random_get },
	{ "fd_write", "iiii", true, w_fd_write },
	{ "fd_read", "iiii", true, w_fd_read },
	{ "fd_close", "i", true, w_fd_close },
	{ "fd_seek", "iIii", true, w_fd_seek },
	{ "fd_fdstat_get", "ii", true, w_fd_fdstat_get },
	{ "fd_filestat_get", "ii", true, w_fd_filestat_get },
	{ "fd_prestat_get", "ii", true, w_fd_prestat_get },
	{ "fd_prestat_dir_name", "iii", true, w_fd_prestat_dir_name },
	{ "path_open", "iiiiiIIii", true, w_path_open },
	{ "sched_yield", "", true, w_sched_yield },
	{ "proc_exit", "i", false, w_proc_exit },
};

static bool type_is(const thw_functype *t, const char *params, bool result)
{
	size_t np = strlen(params);
	if (t->nparams != np || t->nresults != (result ? 1u : 0u))
		return false;
	for (size_t i = 0; i < np; i++)
		if (t->params[i] != (params[i] == 'I' ? THW_I64 : THW_I32))
			return false;
	return !result || t->results[0] == THW_I32;
}

static void name_text(char *out, size_t cap, const char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7F) {
			out[o++] = (char)ch;
		} else {
			snprintf(out + o, cap - o, "\\%02x", ch);
			o += 3;
		}
	}
	out[o] = 0;
}

int thw_wasi_import(thw_wasi *w, thw_realm *r, const thw_importdesc *imp,
		    thw_extern *out, th_err *err)
{
	char mn[128], fn[128];
	name_text(mn, sizeof mn, imp->module, imp->module_len);
	name_text(fn, sizeof fn, imp->name, imp->name_len);
	if (imp->module_len != strlen(THW_WASI_MODULE) ||
	    memcmp(imp->module, THW_WASI_MODULE, imp->module_len) ||
	    imp->type.kind != THW_EXTERN_FUNC)
		return th_err_set(err, TH_ENOTFOUND, "unknown import %s.%s", mn, fn);
	const thw_functype *t = &imp->type.func;
	for (size_t i = 0; i < TH_ARRAY_LEN(wasi_fns); i++) {
		const struct wasi_fn *f = &wasi_fns[i];
		if (strlen(f->name) != imp->name_len ||
		    memcmp(f->name, imp->name, imp->name_len))
			continue;
		if (!type_is(t, f->params, f->result))
			return th_err_set(err, TH_EINVAL,
					  "incompatible import type %s.%s", mn, fn);
		out->kind = THW_EXTERN_FUNC;
		return thw_func_new_host(r, t, f->fn, w, f->name, &out->of.func, err);
	}
	if (t->nresults != 1 || t->results[0] != THW_I32)
		return th_err_set(err, TH_ENOTFOUND, "unknown import %s.%s", mn, fn);
	struct nosys *ns = th_calloc(1, sizeof *ns);
	if (!ns || !(ns->name = th_strndup(imp->name, imp->name_len))) {
		th_free(ns);
		return th_err_set(err, TH_ENOMEM, "wasi: out of memory");
	}
	ns->w = w;
	ns->nargs = t->nparams;
	ns->next = w->nosys;
	w->nosys = ns;
	out->kind = THW_EXTERN_FUNC;
	return thw_func_new_host(r, t, w_nosys, ns, ns->name, &out->of.func, err);
}

int thw_wasi_link(thw_wasi *w, thw_realm *r, const thw_module *m,
		  thw_extern *imports, th_err *err)
{
	uint32_t n = thw_module_import_count(m);
	for (uint32_t i = 0; i < n; i++) {
		thw_importdesc d;
		thw_module_import(m, i, &d);
		int rc = thw_wasi_import(w, r, &d, &imports[i], err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

bool thw_wasi_exited(const thw_wasi *w, uint32_t *code)
{
	if (w && w->exited && code)
		*code = w->exit_code;
	return w && w->exited;
}

/* ---- Life cycle ------------------------------------------------------ */

static char **copy_strings(const char *const *v, int n)
{
	char **out = th_calloc((size_t)(n > 0 ? n : 1), sizeof *out);
	if (!out)
		return NULL;
	for (int i = 0; i < n; i++) {
		out[i] = th_strdup(v[i] ? v[i] : "");
		if (!out[i]) {
			for (int k = 0; k < i; k++)
				th_free(out[k]);
			th_free(out);
			return NULL;
		}
	}
	return out;
}

static void free_strings(char **v, int n)
{
	if (!v)
		return;
	for (int i = 0; i < n; i++)
		th_free(v[i]);
	th_free(v);
}

static uint8_t host_filetype(int fd)
{
	struct stat sb;
	if (isatty(fd))
		return FT_CHAR;
	if (fstat(fd, &sb) != 0)
		return FT_UNKNOWN;
	return filetype_of(sb.st_mode);
}

int thw_wasi_new(const thw_wasi_config *cfg, thw_wasi **out, th_err *err)
{
	thw_wasi *w = th_calloc(1, sizeof *w);
	*out = NULL;
	if (!w)
		return th_err_set(err, TH_ENOMEM, "wasi: out of memory");
	w->argc = cfg->argc > 0 ? cfg->argc : 0;
	w->nenv = cfg->nenv > 0 ? cfg->nenv : 0;
	w->argv = copy_strings(cfg->argv, w->argc);
	w->env = copy_strings(cfg->env, w->nenv);
	w->hook = cfg->hook;
	w->hook_ctx = cfg->hook_ctx;
	if (!w->argv || !w->env)
		goto oom;
	int stdio[3] = { 0, 1, 2 };
	if (cfg->custom_stdio) {
		stdio[0] = cfg->stdin_fd;
		stdio[1] = cfg->stdout_fd;
		stdio[2] = cfg->stderr_fd;
	}
	for (int i = 0; i < 3; i++) {
		int64_t slot = fd_alloc(w);
		if (slot != i)
			goto oom;
		w->fds[i] = (wfd){ stdio[i], host_filetype(stdio[i]), false, NULL };
	}
	for (uint32_t i = 0; i < cfg->npreopens; i++) {
		const thw_wasi_preopen *p = &cfg->preopens[i];
		int fd = open(p->host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int rc = th_err_set(err, TH_EIO, "wasi: cannot open directory %s: %s",
					    p->host_path, strerror(errno));
			thw_wasi_free(w);
			return rc;
		}
		int64_t slot = fd_alloc(w);
		char *gp = th_strdup(p->guest_path ? p->guest_path : p->host_path);
		if (slot < 0 || !gp) {
			close(fd);
			th_free(gp);
			goto oom;
		}
		w->fds[slot] = (wfd){ fd, FT_DIR, true, gp };
	}
	*out = w;
	return 0;
oom:
	thw_wasi_free(w);
	return th_err_set(err, TH_ENOMEM, "wasi: out of memory");
}

void thw_wasi_free(thw_wasi *w)
{
	if (!w)
		return;
	for (uint32_t i = 0; i < w->nfds; i++) {
		if (w->fds[i].host >= 0 && w->fds[i].own)
			close(w->fds[i].host);
		th_free(w->fds[i].guest_path);
	}
	th_free(w->fds);
	free_strings(w->argv, w->argc);
	free_strings(w->env, w->nenv);
	while (w->nosys) {
		struct nosys *next = w->nosys->next;
		th_free(w->nosys->name);
		th_free(w->nosys);
		w->nosys = next;
	}
	th_free(w->in);
	th_free(w->out);
	th_free(w);
}
