/*
 * h_fs.c - theater:simple/filesystem, inside the actor's root directory.
 *
 * The root is the effective permissions' fs.path (with new_dir: a fresh
 * directory named by the actor id under it, or under $home/fs). A guest
 * path is relative to the root; it may not be absolute, contain "..", a
 * NUL, or pass through a symbolic link (every existing component below the
 * root is checked with lstat, and files are opened with O_NOFOLLOW), so it
 * cannot escape the root. allowed_paths, when given, narrows further; read
 * and write gate the operations. Every function runs on the runtime's
 * blocking-work pool while the actor is suspended.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "handlers/handlers.h"

#define READ_MAX (8u << 20) /* the chain records it: stay well below 16 MiB */

static int root_of(rta_actor *a, char out[PATH_MAX], char *why, size_t cap)
{
	const thm_fs_perms *p = &a->perm.fs;
	char dir[PATH_MAX];
	if (p->new_dir) {
		if (p->path)
			snprintf(dir, sizeof dir, "%s/%s", p->path, a->id);
		else
			snprintf(dir, sizeof dir, "%s/fs/%s", a->rt->home, a->id);
		if (!p->path) {
			char parent[PATH_MAX];
			snprintf(parent, sizeof parent, "%s/fs", a->rt->home);
			mkdir(parent, 0700);
		}
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			snprintf(why, cap, "cannot create %s: %s", dir, strerror(errno));
			return -1;
		}
	} else if (p->path) {
		snprintf(dir, sizeof dir, "%s", p->path);
	} else {
		snprintf(why, cap, "no filesystem root configured (path)");
		return -1;
	}
	if (!realpath(dir, out)) {
		snprintf(why, cap, "filesystem root %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Resolve the guest path argument into out. Returns RTH_OK, or a denial
 * (already answered) / trap. */
static rth_ret resolve(rth_call *c, bool write, char out[PATH_MAX])
{
	rta_actor *a = c->a;
	const thm_fs_perms *p = &a->perm.fs;
	char root[PATH_MAX], why[PATH_MAX + 64];
	const char *path;
	size_t len, rl, pos;
	struct stat st;

	path = rth_str(&c->args[0], &len);
	if (!path)
		return rth_deny(c, "path is not a string");
	if (write ? !p->write : !p->read)
		return rth_deny(c, "the filesystem is not %s for this actor",
				write ? "writable" : "readable");
	if (root_of(a, root, why, sizeof why))
		return rth_deny(c, "%s", why);
	if (memchr(path, 0, len))
		return rth_deny(c, "path contains a NUL byte");
	if (len && path[0] == '/')
		return rth_deny(c, "absolute path \"%.*s\" (paths are relative to the "
				"actor's root)", (int)(len > 200 ? 200 : len), path);
	rl = strlen(root);
	if (rl + 1 + len + 1 > PATH_MAX)
		return rth_deny(c, "path too long");
	memcpy(out, root, rl);
	pos = rl;
	/* Copy component by component: drop "." and empty ones, refuse "..". */
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && path[j] != '/')
			j++;
		size_t k = j - i;
		if (k == 2 && path[i] == '.' && path[i + 1] == '.')
			return rth_deny(c, "path \"%.*s\" leaves the root (..)",
					(int)(len > 200 ? 200 : len), path);
		if (k && !(k == 1 && path[i] == '.')) {
			out[pos++] = '/';
			memcpy(out + pos, path + i, k);
			pos += k;
		}
		i = j + 1;
	}
	out[pos] = 0;
	for (size_t i = rl + 1; i <= pos; i++) {
		if (i != pos && out[i] != '/')
			continue;
		char save = out[i];
		out[i] = 0;
		int r = lstat(out, &st);
		out[i] = save;
		if (r != 0)
			break; /* does not exist: nothing below it does */
		if (S_ISLNK(st.st_mode))
			return rth_deny(c, "path \"%.*s\" goes through a symbolic link",
					(int)(len > 200 ? 200 : len), path);
	}
	if (p->allowed_paths.set) {
		bool ok = false;
		for (size_t i = 0; i < p->allowed_paths.n && !ok; i++) {
			char real[PATH_MAX];
			const char *allowed = p->allowed_paths.v[i];
			if (realpath(allowed, real))
				allowed = real;
			ok = thm_path_within(out, allowed);
		}
		if (!ok)
			return rth_deny(c, "path \"%.*s\" is outside allowed_paths",
					(int)(len > 200 ? 200 : len), path);
	}
	return RTH_OK;
}

static rth_ret os_err(rth_call *c, const char *what)
{
	size_t len = 0;
	const char *path = rth_str(&c->args[0], &len);
	return rth_err(c, "%s \"%.*s\": %s", what, (int)(len > 200 ? 200 : len),
		       path ? path : "", strerror(errno));
}

static rth_ret fn_read(rth_call *c)
{
	char path[PATH_MAX];
	rth_ret r = resolve(c, false, path);
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd;
	if (r != RTH_OK)
		return r;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return os_err(c, "read-file");
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return os_err(c, "read-file");
	}
	if ((uint64_t)st.st_size > READ_MAX) {
		close(fd);
		return rth_err(c, "read-file: file of %lld bytes is larger than %u",
			       (long long)st.st_size, READ_MAX);
	}
	buf = th_malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return rth_oom(c);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	r = rth_ok_bytes(c, buf, got);
	th_free(buf);
	return r;
}

static rth_ret fn_write(rth_call *c)
{
	char path[PATH_MAX];
	rth_ret r = resolve(c, true, path);
	const uint8_t *p;
	uint8_t *tmp;
	size_t n, done = 0;
	int fd;
	if (r != RTH_OK)
		return r;
	p = rth_bytes(&c->args[1], &n, &tmp);
	if (!p)
		return rth_oom(c);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		th_free(tmp);
		return os_err(c, "write-file");
	}
	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			close(fd);
			th_free(tmp);
			errno = e;
			return os_err(c, "write-file");
		}
		done += (size_t)w;
	}
	th_free(tmp);
	if (close(fd) != 0)
		return os_err(c, "write-file");
	return rth_ok_unit(c);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static rth_ret fn_list(rth_call *c)
{
	char path[PATH_MAX];
	rth_ret r = resolve(c, false, path);
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	thc_val list = { 0 };

	if (r != RTH_OK)
		return r;
	d = opendir(path);
	if (!d)
		return os_err(c, "list-files");
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nv = th_realloc(names, nc * sizeof *nv);
			if (!nv)
				goto oom;
			names = nv;
			cap = nc;
		}
		if (!(names[n] = th_strdup(e->d_name)))
			goto oom;
		n++;
	}
	closedir(d);
	d = NULL;
	/* Sorted: the answer does not depend on directory order. */
	qsort(names, n, sizeof *names, cmp_str);
	if (thc_val_agg(THC_LIST, (uint32_t)n, &list))
		goto oom;
	for (size_t i = 0; i < n; i++)
		if (thc_val_string(names[i], strlen(names[i]), &list.of.agg.items[i]))
			goto oom;
	for (size_t i = 0; i < n; i++)
		th_free(names[i]);
	th_free(names);
	return rth_ok_val(c, &list);
oom:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		th_free(names[i]);
	th_free(names);
	thc_val_release(&list);
	return rth_oom(c);
}

static rth_ret fn_delete_file(rth_call *c)
{
	char path[PATH_MAX];
	rth_ret r = resolve(c, true, path);
	if (r != RTH_OK)
		return r;
	if (unlink(path) != 0)
		return os_err(c, "delete-file");
	return rth_ok_unit(c);
}

static rth_ret fn_create_dir(rth_call *c)
{
	char path[PATH_MAX];
	rth_ret r = resolve(c, true, path);
	if (r != RTH_OK)
		return r;
	if (mkdir(path, 0755) != 0)
		return os_err(c, "create-dir");
	return rth_ok_unit(c);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	TH_UNUSED(st);
	TH_UNUSED(f);
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static rth_ret fn_delete_dir(rth_call *c)
{
	char path[PATH_MAX], root[PATH_MAX], why[PATH_MAX + 64];
	rth_ret r = resolve(c, true, path);
	struct stat st;
	if (r != RTH_OK)
		return r;
	if (root_of(c->a, root, why, sizeof why) == 0 && !strcmp(root, path))
		return rth_deny(c, "the root directory itself cannot be deleted");
	if (lstat(path, &st) != 0)
		return os_err(c, "delete-dir");
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return os_err(c, "delete-dir");
	}
	/* Depth first, never following links: only the tree below. */
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
		return os_err(c, "delete-dir");
	return rth_ok_unit(c);
}

static rth_ret fn_exists(rth_call *c)
{
	char path[PATH_MAX];
	rth_ret r = resolve(c, false, path);
	struct stat st;
	thc_val v;
	if (r != RTH_OK)
		return r;
	v = thc_val_bool(lstat(path, &st) == 0);
	return rth_ok_val(c, &v);
}

#define FS "theater:simple/filesystem"
#define F(name, fn) { FS, name, "host." FS "." name, THM_H_FILESYSTEM, \
		      RTH_DENY_ERR, NULL, fn }
const rth_fn rth_fs_fns[] = {
	F("read-file", fn_read),
	F("write-file", fn_write),
	F("list-files", fn_list),
	F("delete-file", fn_delete_file),
	F("create-dir", fn_create_dir),
	F("delete-dir", fn_delete_dir),
	F("path-exists", fn_exists),
	{ 0 }
};
