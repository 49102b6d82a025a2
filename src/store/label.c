/*
 * label.c - named stores and their labels (Theater's store interface:
 * new, label, get-by-label, remove-label, store-at-label,
 * replace-at-label, list-labels, list-all-content, calculate-total-size).
 *
 * A label is one 65-byte file, ROOT/stores/ID/labels/NAME, holding the hex
 * hash and "\n" (layout in store.c). Changing a label writes a temporary
 * file in ROOT/tmp, fsyncs it, renames it over the label (atomic) and
 * fsyncs the labels directory, all while holding ROOT/LOCK shared (no GC
 * meanwhile) and stores/ID/LOCK exclusive (no other change to the same
 * store meanwhile), which is what makes compare-and-swap atomic across
 * threads and processes. Reading a label takes no lock: rename guarantees
 * a reader sees the old or the new file, never a mix.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

#define LABEL_FILE_LEN (THS_HEX_LEN + 1)
#define PATH_LEN (THS_NAME_MAX * 2 + 64)

static _Atomic uint64_t label_seq;

int ths_name_check(const char *what, const char *name, th_err *err)
{
	static const char rule[] = "must be 1-200 characters from A-Z a-z 0-9 "
				   "and . _ - : @ + =, not starting with '.'";
	if (!name || !*name)
		return th_err_set(err, TH_EINVAL, "%s is empty: %s %s", what,
				  what, rule);
	size_t n = strlen(name);
	if (n > THS_NAME_MAX)
		return th_err_set(err, TH_EINVAL, "%s '%.40s...' is %zu bytes "
				  "long: %s %s", what, name, n, what, rule);
	if (name[0] == '.')
		return th_err_set(err, TH_EINVAL, "%s '%s' starts with '.': "
				  "%s %s", what, name, what, rule);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("._-:@+=", c))
			continue;
		if (c == '/' || c == '\\')
			return th_err_set(err, TH_EINVAL, "%s '%s' contains a "
					  "path separator '%c': %s %s", what,
					  name, c, what, rule);
		return th_err_set(err, TH_EINVAL, "%s '%s': character %zu "
				  "(0x%02x) not allowed: %s %s", what, name,
				  i + 1, c, what, rule);
	}
	return 0;
}

static int store_dir_check(ths_store *s, const char *id, th_err *err)
{
	int rc = ths_name_check("store id", id, err);
	if (rc)
		return rc;
	char path[PATH_LEN];
	struct stat st;
	snprintf(path, sizeof path, "stores/%s/labels", id);
	if (fstatat(s->rootfd, path, &st, 0) != 0 || !S_ISDIR(st.st_mode))
		return th_err_set(err, TH_ENOTFOUND, "no store '%s' in %s", id,
				  s->root);
	return 0;
}

int ths_store_check(ths_store *s, const char *store_id, th_err *err)
{
	return store_dir_check(s, store_id, err);
}

int ths_store_new(ths_store *s, char id[THS_NAME_MAX + 1], th_err *err)
{
	uint8_t rnd[16];
	char path[PATH_LEN];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return th_err_set(err, TH_EIO, "getrandom: %s", strerror(errno));
	th_hex(rnd, sizeof rnd, id);
	snprintf(path, sizeof path, "stores/%s", id);
	if (mkdirat(s->rootfd, path, 0755) != 0)
		return th_err_set(err, ths__errno_code(errno),
				  "cannot create %s/%s: %s", s->root, path,
				  strerror(errno));
	snprintf(path, sizeof path, "stores/%s/labels", id);
	if (mkdirat(s->rootfd, path, 0755) != 0)
		return th_err_set(err, ths__errno_code(errno),
				  "cannot create %s/%s: %s", s->root, path,
				  strerror(errno));
	if (s->sync == THS_SYNC_FULL) {
		int fd = openat(s->rootfd, "stores", O_RDONLY | O_DIRECTORY |
				O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return 0;
}

/* Reads a label file. TH_ENOTFOUND if absent, TH_ECORRUPT if malformed. */
static int label_read(ths_store *s, const char *path, ths_hash *out,
		      th_err *err)
{
	char buf[LABEL_FILE_LEN + 1];
	int fd = openat(s->rootfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return TH_ENOTFOUND;
		return th_err_set(err, ths__errno_code(errno),
				  "cannot open label %s/%s: %s", s->root, path,
				  strerror(errno));
	}
	ssize_t n;
	do
		n = read(fd, buf, sizeof buf);
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (n < 0)
		return th_err_set(err, TH_EIO, "cannot read label %s/%s: %s",
				  s->root, path, strerror(e));
	if (n != LABEL_FILE_LEN || buf[THS_HEX_LEN] != '\n')
		return th_err_set(err, TH_ECORRUPT, "label file %s/%s is "
				  "malformed (%zd bytes, expected 64 hex digits "
				  "and a newline)", s->root, path, n);
	buf[THS_HEX_LEN] = '\0';
	if (!th_unhex(buf, out->b, THS_HASH_LEN))
		return th_err_set(err, TH_ECORRUPT, "label file %s/%s is "
				  "malformed (not hex)", s->root, path);
	return 0;
}

static int fsync_dir(ths_store *s, const char *rel, th_err *err)
{
	if (s->sync != THS_SYNC_FULL)
		return 0;
	int fd = openat(s->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = fd < 0 || fsync(fd) != 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	if (e)
		return th_err_set(err, ths__errno_code(e), "fsync %s/%s: %s",
				  s->root, rel, strerror(e));
	return 0;
}

static int label_write(ths_store *s, const char *id, const char *path,
		       const ths_hash *h, th_err *err)
{
	char tmp[96], line[LABEL_FILE_LEN + 1], dir[PATH_LEN];
	snprintf(tmp, sizeof tmp, "tmp/label.%ld.%llu", (long)getpid(),
		 (unsigned long long)atomic_fetch_add(&label_seq, 1));
	ths_hash_hex(h, line);
	line[THS_HEX_LEN] = '\n';
	int fd = openat(s->rootfd, tmp, O_WRONLY | O_CREAT | O_TRUNC |
			O_CLOEXEC, 0644);
	if (fd < 0)
		return th_err_set(err, ths__errno_code(errno), "cannot create "
				  "%s/%s: %s", s->root, tmp, strerror(errno));
	ssize_t w = write(fd, line, LABEL_FILE_LEN);
	int e = w == LABEL_FILE_LEN ? 0 : (w < 0 ? errno : ENOSPC);
	if (!e && s->sync == THS_SYNC_FULL && fsync(fd) != 0)
		e = errno;
	close(fd);
	if (!e && renameat(s->rootfd, tmp, s->rootfd, path) != 0)
		e = errno;
	if (e) {
		unlinkat(s->rootfd, tmp, 0);
		if (e == ENOSPC || e == EDQUOT)
			return th_err_set(err, TH_ENOSPC, "no space left on "
					  "device: cannot write label %s/%s",
					  s->root, path);
		return th_err_set(err, ths__errno_code(e), "cannot write label "
				  "%s/%s: %s", s->root, path, strerror(e));
	}
	snprintf(dir, sizeof dir, "stores/%s/labels", id);
	return fsync_dir(s, dir, err);
}

enum label_op { OP_SET, OP_CAS, OP_REPLACE, OP_REMOVE };

static int label_update(ths_store *s, const char *id, const char *label,
			enum label_op op, const ths_hash *expected,
			const ths_hash *desired, th_err *err)
{
	char path[PATH_LEN], lockrel[PATH_LEN];
	int rootlock = -1, storelock = -1, rc;
	if ((rc = store_dir_check(s, id, err)) != 0 ||
	    (rc = ths_name_check("label", label, err)) != 0)
		return rc;
	snprintf(path, sizeof path, "stores/%s/labels/%s", id, label);
	snprintf(lockrel, sizeof lockrel, "stores/%s/LOCK", id);
	if ((rc = ths__lock(s, "LOCK", false, &rootlock, err)) != 0 ||
	    (rc = ths__lock(s, lockrel, true, &storelock, err)) != 0)
		goto out;
	ths_hash cur;
	rc = label_read(s, path, &cur, err);
	bool present = rc == 0;
	if (rc && rc != TH_ENOTFOUND)
		goto out;
	rc = 0;
	if ((op == OP_REPLACE || op == OP_REMOVE) && !present) {
		rc = th_err_set(err, TH_ENOTFOUND, "no label '%s' in store '%s'",
				label, id);
		goto out;
	}
	if (op == OP_CAS) {
		bool ok = expected ? present && !memcmp(cur.b, expected->b,
							THS_HASH_LEN)
				   : !present;
		if (!ok) {
			char hex[THS_HEX_LEN + 1] = "(none)";
			if (present)
				ths_hash_hex(&cur, hex);
			rc = th_err_set(err, TH_ECONFLICT, "label '%s' in store "
					"'%s' changed: it is now %s", label, id,
					hex);
			goto out;
		}
	}
	if (!desired) {
		if (present && unlinkat(s->rootfd, path, 0) != 0) {
			rc = th_err_set(err, ths__errno_code(errno), "cannot "
					"remove label %s/%s: %s", s->root, path,
					strerror(errno));
			goto out;
		}
		char dir[PATH_LEN];
		snprintf(dir, sizeof dir, "stores/%s/labels", id);
		rc = present ? fsync_dir(s, dir, err) : 0;
		goto out;
	}
	/* I3: the object is present, and GC is excluded until we are done. */
	rc = ths_exists(s, desired, err);
	if (rc == 0) {
		char hex[THS_HEX_LEN + 1];
		ths_hash_hex(desired, hex);
		rc = th_err_set(err, TH_ENOTFOUND, "cannot label '%s': no object "
				"%s in the store", label, hex);
	}
	if (rc < 0)
		goto out;
	rc = label_write(s, id, path, desired, err);
out:
	ths__unlock(storelock);
	ths__unlock(rootlock);
	return rc;
}

int ths_label_set(ths_store *s, const char *store_id, const char *label,
		  const ths_hash *h, th_err *err)
{
	return label_update(s, store_id, label, OP_SET, NULL, h, err);
}

int ths_label_remove(ths_store *s, const char *store_id, const char *label,
		     th_err *err)
{
	return label_update(s, store_id, label, OP_REMOVE, NULL, NULL, err);
}

int ths_label_cas(ths_store *s, const char *store_id, const char *label,
		  const ths_hash *expected, const ths_hash *desired, th_err *err)
{
	return label_update(s, store_id, label, OP_CAS, expected, desired, err);
}

int ths_label_replace(ths_store *s, const char *store_id, const char *label,
		      const ths_hash *h, th_err *err)
{
	return label_update(s, store_id, label, OP_REPLACE, NULL, h, err);
}

int ths_label_get(ths_store *s, const char *store_id, const char *label,
		  ths_hash *out, th_err *err)
{
	char path[PATH_LEN];
	int rc;
	if ((rc = store_dir_check(s, store_id, err)) != 0 ||
	    (rc = ths_name_check("label", label, err)) != 0)
		return rc;
	snprintf(path, sizeof path, "stores/%s/labels/%s", store_id, label);
	rc = label_read(s, path, out, err);
	if (rc == TH_ENOTFOUND)
		return th_err_set(err, rc, "no label '%s' in store '%s'", label,
				  store_id);
	return rc;
}

int ths_store_at_label(ths_store *s, const char *store_id, const char *label,
		       const void *data, size_t len, ths_hash *out, th_err *err)
{
	int rc, lockfd = -1;
	if ((rc = store_dir_check(s, store_id, err)) != 0 ||
	    (rc = ths_name_check("label", label, err)) != 0)
		return rc;
	/* Shared lock across both steps: no GC between the put and the
	 * label, whatever its grace period. */
	if ((rc = ths__lock(s, "LOCK", false, &lockfd, err)) != 0)
		return rc;
	if ((rc = ths_put(s, data, len, out, err)) == 0)
		rc = ths_label_set(s, store_id, label, out, err);
	ths__unlock(lockfd);
	return rc;
}

int ths_replace_content_at_label(ths_store *s, const char *store_id,
				 const char *label, const void *data,
				 size_t len, ths_hash *out, th_err *err)
{
	ths_hash cur;
	int rc, lockfd = -1;
	if ((rc = ths_label_get(s, store_id, label, &cur, err)) != 0)
		return rc;
	if ((rc = ths__lock(s, "LOCK", false, &lockfd, err)) != 0)
		return rc;
	if ((rc = ths_put(s, data, len, out, err)) == 0)
		rc = ths_label_replace(s, store_id, label, out, err);
	ths__unlock(lockfd);
	return rc;
}

/* Growable array of label entries. */
struct label_vec {
	ths_label_entry *v;
	size_t n, cap;
};

static int vec_push(struct label_vec *lv, const char *name, const ths_hash *h)
{
	if (lv->n == lv->cap) {
		size_t ncap = lv->cap ? lv->cap * 2 : 16;
		ths_label_entry *nv = th_realloc(lv->v, ncap * sizeof *nv);
		if (!nv)
			return TH_ENOMEM;
		lv->v = nv;
		lv->cap = ncap;
	}
	snprintf(lv->v[lv->n].name, sizeof lv->v[lv->n].name, "%s", name);
	lv->v[lv->n].hash = *h;
	lv->n++;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const ths_label_entry *)a)->name,
		      ((const ths_label_entry *)b)->name);
}

/* Calls fn for each label of store id. */
static int labels_of(ths_store *s, const char *id, ths__label_fn fn, void *ud,
		     th_err *err)
{
	char dir[PATH_LEN];
	snprintf(dir, sizeof dir, "stores/%s/labels", id);
	int fd = openat(s->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return th_err_set(err, ths__errno_code(errno), "cannot open "
				  "%s/%s: %s", s->root, dir, strerror(errno));
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return th_err_set(err, TH_ENOMEM, "cannot read %s/%s", s->root,
				  dir);
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[PATH_LEN * 2];
		th_err lerr = { 0 };
		ths_hash h;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		int lrc = label_read(s, path, &h, &lerr);
		if (lrc == TH_ENOTFOUND)
			continue; /* removed meanwhile */
		if (lrc == TH_ENOMEM) {
			rc = th_err_set(err, lrc, "%s", lerr.msg);
			break;
		}
		rc = fn(ud, id, de->d_name, lrc ? NULL : &h, path,
			lrc ? lerr.msg : NULL);
	}
	closedir(d);
	return rc;
}

int ths__labels_each(ths_store *s, ths__label_fn fn, void *ud, th_err *err)
{
	int fd = openat(s->rootfd, "stores", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return th_err_set(err, ths__errno_code(errno), "cannot open "
				  "%s/stores: %s", s->root, strerror(errno));
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return th_err_set(err, TH_ENOMEM, "cannot read %s/stores",
				  s->root);
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		rc = labels_of(s, de->d_name, fn, ud, err);
	}
	closedir(d);
	return rc;
}

struct list_ud {
	struct label_vec vec;
	th_err *err;
};

static int list_cb(void *ud, const char *store_id, const char *label,
		   const ths_hash *hash, const char *path, const char *problem)
{
	struct list_ud *l = ud;
	TH_UNUSED(store_id);
	TH_UNUSED(path);
	if (!hash)
		return th_err_set(l->err, TH_ECORRUPT, "%s", problem);
	if (vec_push(&l->vec, label, hash))
		return th_err_set(l->err, TH_ENOMEM, "out of memory (labels)");
	return 0;
}

int ths_label_list(ths_store *s, const char *store_id, ths_label_entry **out,
		   size_t *n, th_err *err)
{
	struct list_ud l = { .err = err };
	int rc = store_dir_check(s, store_id, err);
	if (!rc)
		rc = labels_of(s, store_id, list_cb, &l, err);
	if (rc) {
		th_free(l.vec.v);
		return rc;
	}
	if (l.vec.n)
		qsort(l.vec.v, l.vec.n, sizeof *l.vec.v, entry_cmp);
	*out = l.vec.v;
	*n = l.vec.n;
	return 0;
}

/* ---- list-all-content, calculate-total-size -------------------------------- */

struct content_vec {
	ths_content_entry *v;
	size_t n, cap;
	ths_store *s;
	th_err *err;
};

static int content_push(struct content_vec *cv, const ths_content_entry *e)
{
	if (cv->n == cv->cap) {
		size_t ncap = cv->cap ? cv->cap * 2 : 64;
		ths_content_entry *nv = th_realloc(cv->v, ncap * sizeof *nv);
		if (!nv)
			return th_err_set(cv->err, TH_ENOMEM,
					  "out of memory (content list)");
		cv->v = nv;
		cv->cap = ncap;
	}
	cv->v[cv->n++] = *e;
	return 0;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Whether the object file is a manifest (by its header and size), and if
 * so the size of the content it lists. */
static bool manifest_file(ths_store *s, const ths_hash *h, uint64_t file_size,
			  uint64_t *content_size)
{
	uint8_t head[THS__MF_HDR];
	size_t got = 0;
	if (s->be->ops->peek(s->be, h, head, sizeof head, &got, NULL) != 0 ||
	    got != THS__MF_HDR || !ths__mf_has_magic(head, got))
		return false;
	uint64_t n = head[16] | (uint64_t)head[17] << 8 |
		     (uint64_t)head[18] << 16 | (uint64_t)head[19] << 24;
	if (file_size != THS__MF_HDR + n * THS__MF_ENTRY)
		return false;
	*content_size = le64(head + 8);
	return true;
}

static int all_cb(void *ud, const struct ths__obj_info *info)
{
	struct content_vec *cv = ud;
	ths_content_entry e = { .hash = info->hash, .size = info->size,
				.disk = info->size };
	e.chunked = manifest_file(cv->s, &info->hash, info->size, &e.size);
	return content_push(cv, &e);
}

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(((const ths_content_entry *)a)->hash.b,
		      ((const ths_content_entry *)b)->hash.b, THS_HASH_LEN);
}

int ths_content_list(ths_store *s, const char *store_id,
		     ths_content_entry **out, size_t *n, th_err *err)
{
	struct content_vec cv = { .s = s, .err = err };
	int rc = 0;
	if (!store_id) {
		rc = s->be->ops->list(s->be, all_cb, &cv, err);
	} else {
		ths_label_entry *labels = NULL;
		size_t nl = 0;
		if ((rc = ths_label_list(s, store_id, &labels, &nl, err)) != 0)
			return rc;
		ths__hmap seen;
		ths__hmap_init(&seen);
		for (size_t i = 0; i < nl && !rc; i++) {
			ths__hval *v;
			int r = ths__hmap_upsert(&seen, &labels[i].hash, &v);
			if (r < 0) {
				rc = th_err_set(err, TH_ENOMEM, "out of memory");
				break;
			}
			if (r == 0)
				continue;
			ths_content_entry e = { .hash = labels[i].hash };
			struct ths__obj_info info;
			if ((rc = s->be->ops->stat(s->be, &e.hash, &info, err)))
				break;
			e.disk = info.size;
			e.size = info.size;
			e.chunked = manifest_file(s, &e.hash, info.size, &e.size);
			rc = content_push(&cv, &e);
		}
		ths__hmap_release(&seen);
		th_free(labels);
	}
	if (rc) {
		th_free(cv.v);
		return rc;
	}
	if (cv.n)
		qsort(cv.v, cv.n, sizeof *cv.v, hash_cmp);
	*out = cv.v;
	*n = cv.n;
	return 0;
}

int ths_total_size(ths_store *s, const char *store_id, uint64_t *bytes,
		   th_err *err)
{
	ths_content_entry *v;
	size_t n;
	int rc = ths_content_list(s, store_id, &v, &n, err);
	if (rc)
		return rc;
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += store_id ? v[i].size : v[i].disk;
	th_free(v);
	*bytes = sum;
	return 0;
}
