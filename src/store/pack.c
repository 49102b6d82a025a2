/*
 * pack.c - pack files (see pack.h for the interface).
 *
 * WHY. One file per chunk costs a create, a rename and directory updates
 * per 64 KiB on the put path, and the durable variant must then flush
 * thousands of small files. A pack holds all the new chunks of one put in
 * one file written sequentially: one create, one fdatasync, one rename
 * and one directory fsync per put, whatever its size.
 *
 * FORMAT (ROOT/packs/NAME.pack; all integers little-endian)
 *
 *   0        8   magic "THSPACK1"
 *   8        ..  entries, back to back; each is
 *                  32  SHA-256 of the object (its name)
 *                   8  size N of the object
 *                   N  the object's bytes
 *   X        ..  index: one 48-byte record per entry, in file order:
 *                  32  hash, 8  offset of the object's bytes, 8  size N
 *   end-56   56  footer: "THSPIDX1", entry count (8), X (8), SHA-256 of
 *                the index records (32)
 *
 *   NAME is the 64 hex digits of that last SHA-256. The entry headers
 *   repeat the index so that a pack's objects can be found by a scan if
 *   its index is damaged; readers use the index.
 *
 * A pack is valid when: both magics are in place, X + 48 * count + 56 is
 * the file size, the index hashes to the footer's hash and to NAME, and
 * every record lies between byte 8 + 40 and X. A pack whose footer or
 * index is not valid (a flipped byte, say) is loaded from its entry
 * headers instead (pack_scan; each object is still checked against its
 * hash when read), so its objects stay readable, and `verify` reports
 * it. A file without the leading magic is ignored and reported.
 *
 * INVARIANTS (extending store.c's)
 *   P1. A file under packs/ is complete: it was written whole under
 *       ROOT/tmp, made durable (fdatasync), and only then renamed in
 *       (atomic), after which the directory is made durable. A crash
 *       leaves a stray file in tmp/ (GC deletes it) and never a partial
 *       pack.
 *   P2. Packs are immutable. Removing objects (GC) writes a new pack
 *       with the live ones of every pack it rewrites (and of the small
 *       packs it merges), makes it durable and visible, and only then
 *       unlinks the old packs: at every instant each live object is in at
 *       least one valid pack. The same object may sit in two packs (two
 *       puts racing, or a crash in the middle of a repack); any copy
 *       serves.
 *   P3. An object's bytes are checked against its hash by every reader
 *       (store.c), as for loose objects; a flipped byte is reported with
 *       the pack's path and the object's offset in it.
 *
 * WRITING. ths__packw copies the appended objects into one of four 4 MiB
 * buffers aligned to 4 KiB; a full buffer goes to a writer thread that
 * writes it while the caller fills the next (up to three queued, which
 * rides out the disk's latency spikes). The file is opened with
 * O_DIRECT: the data goes to the disk during the put instead of all at
 * once in the final fdatasync, and the kernel neither copies it into the
 * page cache (measured here: a buffered write of a big file costs a
 * third of SHA-256's CPU time) nor keeps bytes nobody is reading; the
 * tail (last partial buffer, index, footer) is written through the page
 * cache. Without O_DIRECT support the same code writes buffered. With
 * THS_SYNC_NONE only the fdatasync and directory fsync are skipped.
 *
 * FINDING. The set keeps every valid pack's records in one hash map. A
 * lookup that misses looks at packs/ again if its mtime changed since the
 * last scan, or if that scan began less than 50 ms after the mtime (file
 * times are taken from a coarse clock, so a change within the same tick
 * would not show): a pack another process renamed in is seen, and one GC
 * unlinked is dropped (a reader already holding it open keeps reading
 * the unlinked file).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/pack.h"
#include "store/store_int.h"

#define PACK_MAGIC "THSPACK1"
#define IDX_MAGIC "THSPIDX1"
#define MAGIC_LEN 8
#define ENT_HDR 40
#define REC_LEN 48
#define FOOT_LEN 56
#define WBUF (4u << 20)
#define NBUF 4 /* buffers: one being filled, up to three being written */
#define ALIGN 4096u
#define NAME_LEN (THS_HEX_LEN + 5) /* hex + ".pack" */
/* Packs kept open for reading; beyond this, reads open and close. */
#define MAX_OPEN 128
#define SCAN_MARGIN_NS 50000000
/* GC merges the packs holding less than SMALL_PACK bytes of objects into
 * one once there are SMALL_PACKS_MAX of them: puts of a few chunks each
 * (actor states, say) would otherwise leave one small pack apiece. */
#define SMALL_PACK ((uint64_t)4 << 20)
#define SMALL_PACKS_MAX 8
/* Prefetch asks the kernel for this much of a pack past the object asked
 * for: a put writes chunks in content order, so a sequential reader
 * reads a pack front to back, and one 64 KiB chunk ahead is too little
 * to hide a disk's latency. */
#define RA_WINDOW (8u << 20)

struct pack;

struct pentry {
	ths_hash h;
	uint64_t off, size;
	struct pack *pk;
};

struct pack {
	struct pack *next;
	char name[NAME_LEN + 1];
	int fd;          /* -1 until read (then kept, up to MAX_OPEN) */
	unsigned refs;   /* readers using it now */
	bool gone;       /* unlinked: freed when refs drops to 0 */
	bool seen;       /* scan mark */
	bool damaged;    /* index unusable: entries found by pack_scan */
	int64_t mtime_ns;
	uint64_t ra_end;  /* read-ahead asked up to here (prefetch) */
	struct pentry *e;
	size_t n;
};

struct ths__packset {
	char *root;
	int packsfd, tmpfd, sync;
	pthread_mutex_t mu;
	struct pack *packs;
	ths__hmap map;   /* hash -> struct pentry * */
	ths__hmap dead;  /* hashes removed by GC, awaiting repack */
	int64_t dir_mtime, scan_ns;
	bool stale;      /* map incomplete (out of memory): rebuild */
	char (*bad)[NAME_LEN + 1]; /* names that failed to load */
	size_t nbad, nopen;
	_Atomic uint64_t seq;
};

/* ---- Small helpers ---------------------------------------------------------- */

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int sys_err(th_err *err, int e, const char *what, const char *root,
		   const char *rel)
{
	int code = ths__errno_code(e);
	if (code == TH_ENOSPC)
		return th_err_set(err, code, "no space left on device: %s "
				  "%s/%s", what, root, rel);
	return th_err_set(err, code, "%s %s/%s: %s", what, root, rel,
			  strerror(e));
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off, size_t *got)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));
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

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		off += (uint64_t)w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- Loading a pack's index -------------------------------------------------- */

static void pack_free(ths__packset *ps, struct pack *pk)
{
	if (pk->fd >= 0) {
		close(pk->fd);
		ps->nopen--;
	}
	th_free(pk->e);
	th_free(pk);
}

/* Reads and checks pack `name`; *out gets it (fd closed) or *problem
 * (static text or msg) says why not. TH_ENOMEM and I/O errors are
 * returned; an invalid pack returns 0 with *out NULL. */
/* Recovers the entries of a pack whose index or footer is damaged from
 * the entry headers, scanning from byte 8 while they fit below limit.
 * Every object found is still checked against its hash when read. */
static int pack_scan(int fd, uint64_t limit, struct pack *pk)
{
	size_t cap = 0, got;
	uint64_t off = MAGIC_LEN;
	uint8_t hdr[ENT_HDR];
	th_free(pk->e);
	pk->e = NULL;
	pk->n = 0;
	while (off + ENT_HDR <= limit) {
		if (pread_all(fd, hdr, ENT_HDR, off, &got) || got != ENT_HDR)
			break;
		uint64_t size = get_u64(hdr + 32);
		if (size > limit - off - ENT_HDR)
			break;
		if (pk->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct pentry *ne = th_realloc(pk->e, ncap * sizeof *ne);
			if (!ne)
				return TH_ENOMEM;
			pk->e = ne;
			cap = ncap;
		}
		struct pentry *e = &pk->e[pk->n++];
		memcpy(e->h.b, hdr, THS_HASH_LEN);
		e->off = off + ENT_HDR;
		e->size = size;
		e->pk = pk;
		off += ENT_HDR + size;
	}
	return 0;
}

/* Reads and checks pack `name`. *out gets it (fd closed), or NULL if the
 * file is no pack at all; *msg says what is wrong. A pack whose index or
 * footer is damaged is still loaded, from its entry headers, with
 * damaged set (verify reports it). TH_ENOMEM is returned, and
 * TH_ENOTFOUND if the file vanished. */
static int pack_load(ths__packset *ps, const char *name, struct pack **out,
		     char *msg, size_t msglen)
{
	int rc = 0;
	uint8_t *idx = NULL;
	struct pack *pk = NULL;
	uint8_t head[MAGIC_LEN], foot[FOOT_LEN];
	size_t got;
	struct stat st;
	*out = NULL;
	int fd = openat(ps->packsfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, msglen, "cannot open: %s", strerror(errno));
		return errno == ENOENT ? TH_ENOTFOUND : 0;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(msg, msglen, "cannot stat: %s", strerror(errno));
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size, limit = size;
	if (size < MAGIC_LEN + FOOT_LEN) {
		snprintf(msg, msglen, "%llu bytes: too short for a pack",
			 (unsigned long long)size);
		goto out;
	}
	if (pread_all(fd, head, MAGIC_LEN, 0, &got) || got != MAGIC_LEN ||
	    memcmp(head, PACK_MAGIC, MAGIC_LEN) != 0) {
		snprintf(msg, msglen, "bad magic at byte 0 (not a pack)");
		goto out;
	}
	if (!(pk = th_calloc(1, sizeof *pk))) {
		rc = TH_ENOMEM;
		goto out;
	}
	memcpy(pk->name, name, NAME_LEN + 1);
	pk->fd = -1;
	pk->mtime_ns = ts_ns(&st.st_mtim);
	if (pread_all(fd, foot, FOOT_LEN, size - FOOT_LEN, &got) ||
	    got != FOOT_LEN || memcmp(foot, IDX_MAGIC, MAGIC_LEN) != 0) {
		snprintf(msg, msglen, "bad footer magic at byte %llu",
			 (unsigned long long)(size - FOOT_LEN));
		goto damaged;
	}
	uint64_t n = get_u64(foot + 8), x = get_u64(foot + 16);
	if (n > (size - MAGIC_LEN - FOOT_LEN) / REC_LEN ||
	    x != size - FOOT_LEN - n * REC_LEN || x < MAGIC_LEN) {
		snprintf(msg, msglen, "footer at byte %llu: %llu entries at "
			 "byte %llu do not fit the file's %llu bytes",
			 (unsigned long long)(size - FOOT_LEN),
			 (unsigned long long)n, (unsigned long long)x,
			 (unsigned long long)size);
		goto damaged;
	}
	limit = x;
	size_t ilen = (size_t)(n * REC_LEN);
	idx = th_malloc(ilen ? ilen : 1);
	if (!idx || !(pk->e = th_calloc(n ? n : 1, sizeof *pk->e))) {
		rc = TH_ENOMEM;
		goto out;
	}
	if (pread_all(fd, idx, ilen, x, &got) || got != ilen) {
		snprintf(msg, msglen, "cannot read the index at byte %llu",
			 (unsigned long long)x);
		goto damaged;
	}
	ths_hash ih;
	char hex[THS_HEX_LEN + 1];
	if ((rc = ths__sha256(idx, ilen, &ih)) != 0)
		goto out;
	if (memcmp(ih.b, foot + 24, THS_HASH_LEN) != 0) {
		snprintf(msg, msglen, "index (bytes %llu..%llu) is corrupt: "
			 "it does not hash to the footer's hash",
			 (unsigned long long)x, (unsigned long long)(x + ilen));
		goto damaged;
	}
	ths_hash_hex(&ih, hex);
	if (strlen(name) != NAME_LEN || memcmp(name, hex, THS_HEX_LEN) != 0) {
		snprintf(msg, msglen, "name does not match its index hash %s",
			 hex);
		goto damaged;
	}
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *r = idx + i * REC_LEN;
		struct pentry *e = &pk->e[i];
		memcpy(e->h.b, r, THS_HASH_LEN);
		e->off = get_u64(r + 32);
		e->size = get_u64(r + 40);
		if (e->off < MAGIC_LEN + ENT_HDR || e->off > x ||
		    e->size > x - e->off) {
			snprintf(msg, msglen, "index record %llu (byte %llu): "
				 "object at %llu (%llu bytes) is outside the "
				 "data", (unsigned long long)i,
				 (unsigned long long)(x + i * REC_LEN),
				 (unsigned long long)e->off,
				 (unsigned long long)e->size);
			goto damaged;
		}
		e->pk = pk;
	}
	pk->n = (size_t)n;
	*out = pk;
	pk = NULL;
	goto out;
damaged:
	if ((rc = pack_scan(fd, limit, pk)) != 0)
		goto out;
	pk->damaged = true;
	size_t len = strlen(msg);
	snprintf(msg + len, msglen - len, "; %zu object%s found by scanning "
		 "the entry headers", pk->n, pk->n == 1 ? "" : "s");
	*out = pk;
	pk = NULL;
out:
	if (pk) {
		th_free(pk->e);
		th_free(pk);
	}
	th_free(idx);
	close(fd);
	return rc;
}

static bool is_pack_name(const char *name)
{
	size_t n = strlen(name);
	if (n != NAME_LEN || strcmp(name + THS_HEX_LEN, ".pack") != 0)
		return false;
	for (size_t i = 0; i < THS_HEX_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		      (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

/* ---- The set ----------------------------------------------------------------- */

static int map_add(ths__packset *ps, struct pack *pk)
{
	for (size_t i = 0; i < pk->n; i++) {
		ths__hval *v;
		int r = ths__hmap_upsert(&ps->map, &pk->e[i].h, &v);
		if (r < 0)
			return TH_ENOMEM;
		if (r == 1)
			v->p = &pk->e[i];
	}
	return 0;
}

static int map_rebuild(ths__packset *ps)
{
	ths__hmap_release(&ps->map);
	for (struct pack *pk = ps->packs; pk; pk = pk->next)
		if (map_add(ps, pk) != 0)
			return TH_ENOMEM;
	return 0;
}

static bool is_bad(ths__packset *ps, const char *name)
{
	for (size_t i = 0; i < ps->nbad; i++)
		if (strcmp(ps->bad[i], name) == 0)
			return true;
	return false;
}

/* Reads packs/ from the start (through its own descriptor). */
static int open_dir(ths__packset *ps, DIR **out, th_err *err)
{
	int dfd = dup(ps->packsfd);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!dir) {
		if (dfd >= 0)
			close(dfd);
		return sys_err(err, errno, "cannot read directory", ps->root,
			       "packs");
	}
	rewinddir(dir);
	*out = dir;
	return 0;
}

/* Brings the set up to date with the directory (see FINDING). */
static int refresh_locked(ths__packset *ps, bool force, th_err *err)
{
	struct stat st;
	if (fstat(ps->packsfd, &st) != 0)
		return sys_err(err, errno, "cannot stat", ps->root, "packs");
	int64_t m = ts_ns(&st.st_mtim);
	if (!force && !ps->stale && m == ps->dir_mtime &&
	    ps->scan_ns > m + SCAN_MARGIN_NS)
		return 0;
	ps->scan_ns = (int64_t)th_wall_ns();
	ps->dir_mtime = m;
	DIR *dir;
	int rc0 = open_dir(ps, &dir, err);
	if (rc0)
		return rc0;
	for (struct pack *pk = ps->packs; pk; pk = pk->next)
		pk->seen = false;
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(dir)) != NULL) {
		if (!is_pack_name(de->d_name))
			continue;
		struct pack *pk = ps->packs;
		while (pk && strcmp(pk->name, de->d_name) != 0)
			pk = pk->next;
		if (pk) {
			pk->seen = true;
			continue;
		}
		if (is_bad(ps, de->d_name))
			continue;
		char msg[400];
		rc = pack_load(ps, de->d_name, &pk, msg, sizeof msg);
		if (rc == TH_ENOTFOUND) { /* unlinked meanwhile */
			rc = 0;
			continue;
		}
		if (rc)
			break;
		if (!pk) {
			void *nb = th_realloc(ps->bad, (ps->nbad + 1) *
					      sizeof *ps->bad);
			if (!nb) {
				rc = TH_ENOMEM;
				break;
			}
			ps->bad = nb;
			memcpy(ps->bad[ps->nbad++], de->d_name, NAME_LEN + 1);
			continue;
		}
		pk->seen = true;
		pk->next = ps->packs;
		ps->packs = pk;
		if ((rc = map_add(ps, pk)) != 0)
			ps->stale = true;
	}
	closedir(dir);
	if (rc) {
		/* Not every pack was seen: drop none, look again next time. */
		ps->dir_mtime = -1;
		return rc == TH_ENOMEM
			       ? th_err_set(err, rc, "out of memory (pack index)")
			       : rc;
	}
	bool shrank = false;
	for (struct pack **pp = &ps->packs; *pp;) {
		struct pack *pk = *pp;
		if (pk->seen) {
			pp = &pk->next;
			continue;
		}
		*pp = pk->next;
		pk->gone = true;
		shrank = true;
		if (pk->refs == 0)
			pack_free(ps, pk);
	}
	if (shrank || ps->stale)
		ps->stale = (rc = map_rebuild(ps)) != 0;
	if (rc == TH_ENOMEM)
		return th_err_set(err, rc, "out of memory (pack index)");
	return rc;
}

int ths__packset_open(const char *root, int rootfd, int tmpfd, int sync,
		      ths__packset **out, th_err *err)
{
	ths__packset *ps = th_calloc(1, sizeof *ps);
	if (!ps)
		return th_err_set(err, TH_ENOMEM, "out of memory (packs)");
	pthread_mutex_init(&ps->mu, NULL);
	ths__hmap_init(&ps->map);
	ths__hmap_init(&ps->dead);
	ps->packsfd = -1;
	ps->tmpfd = tmpfd;
	ps->sync = sync;
	int rc = 0;
	if (!(ps->root = th_strdup(root))) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (packs)");
		goto fail;
	}
	if (mkdirat(rootfd, "packs", 0755) != 0 && errno != EEXIST) {
		rc = sys_err(err, errno, "cannot create directory", root,
			     "packs");
		goto fail;
	}
	ps->packsfd = openat(rootfd, "packs", O_RDONLY | O_DIRECTORY |
			     O_CLOEXEC);
	if (ps->packsfd < 0) {
		rc = sys_err(err, errno, "cannot open directory", root, "packs");
		goto fail;
	}
	if ((rc = refresh_locked(ps, true, err)) != 0)
		goto fail;
	*out = ps;
	return 0;
fail:
	ths__packset_free(ps);
	return rc;
}

void ths__packset_free(ths__packset *ps)
{
	if (!ps)
		return;
	while (ps->packs) {
		struct pack *pk = ps->packs;
		ps->packs = pk->next;
		pack_free(ps, pk);
	}
	ths__hmap_release(&ps->map);
	ths__hmap_release(&ps->dead);
	if (ps->packsfd >= 0)
		close(ps->packsfd);
	pthread_mutex_destroy(&ps->mu);
	th_free(ps->bad);
	th_free(ps->root);
	th_free(ps);
}

/* A located object; holds a reference on its pack until loc_release. */
struct loc {
	struct pack *pk;
	uint64_t off, size;
	int64_t mtime_ns;
};

static bool loc_get(ths__packset *ps, const ths_hash *h, bool force,
		    struct loc *out)
{
	pthread_mutex_lock(&ps->mu);
	ths__hval *v = force ? NULL : ths__hmap_find(&ps->map, h);
	if (!v && refresh_locked(ps, force, NULL) == 0)
		v = ths__hmap_find(&ps->map, h);
	if (v) {
		struct pentry *e = v->p;
		*out = (struct loc){ e->pk, e->off, e->size, e->pk->mtime_ns };
		e->pk->refs++;
	}
	pthread_mutex_unlock(&ps->mu);
	return v != NULL;
}

static void loc_release(ths__packset *ps, struct loc *l)
{
	pthread_mutex_lock(&ps->mu);
	if (--l->pk->refs == 0 && l->pk->gone)
		pack_free(ps, l->pk);
	pthread_mutex_unlock(&ps->mu);
}

/* The pack's descriptor: kept open in pk->fd, or a new one (*owned). */
static int loc_fd(ths__packset *ps, struct loc *l, bool *owned)
{
	*owned = false;
	pthread_mutex_lock(&ps->mu);
	int fd = l->pk->fd;
	if (fd < 0) {
		fd = openat(ps->packsfd, l->pk->name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && ps->nopen < MAX_OPEN) {
			l->pk->fd = fd;
			ps->nopen++;
		} else if (fd >= 0) {
			*owned = true;
		}
	}
	int e = errno;
	pthread_mutex_unlock(&ps->mu);
	errno = e;
	return fd;
}

static void loc_where(ths__packset *ps, const struct loc *l, char *buf,
		      size_t n)
{
	snprintf(buf, n, "%s/packs/%s, object at byte %llu (%llu bytes)",
		 ps->root, l->pk->name, (unsigned long long)l->off,
		 (unsigned long long)l->size);
}

/* Reads n bytes of the object at l into buf. On ENOENT (the pack was
 * unlinked by a GC since it was found) returns TH_ENOTFOUND with no
 * message so that the caller looks again. */
static int loc_read(ths__packset *ps, struct loc *l, uint8_t *buf, size_t n,
		    th_err *err)
{
	bool owned;
	char where[4400];
	int fd = loc_fd(ps, l, &owned);
	if (fd < 0) {
		if (errno == ENOENT)
			return TH_ENOTFOUND;
		loc_where(ps, l, where, sizeof where);
		return th_err_set(err, ths__errno_code(errno), "cannot open "
				  "%s: %s", where, strerror(errno));
	}
	size_t got;
	int e = pread_all(fd, buf, n, l->off, &got);
	if (owned)
		close(fd);
	if (e || got != n) {
		loc_where(ps, l, where, sizeof where);
		return e ? th_err_set(err, ths__errno_code(e), "cannot read "
				      "%s: %s", where, strerror(e))
			 : th_err_set(err, TH_ECORRUPT, "%s: file is shorter "
				      "than its index says", where);
	}
	return 0;
}

int ths__packset_stat(ths__packset *ps, const ths_hash *h,
		      struct ths__obj_info *out)
{
	struct loc l;
	if (!loc_get(ps, h, false, &l))
		return TH_ENOTFOUND;
	out->hash = *h;
	out->size = l.size;
	out->mtime_ns = l.mtime_ns;
	loc_release(ps, &l);
	return 0;
}

/* Reads min(n, size) bytes (whole: n = SIZE_MAX, into a new buffer). */
static int read_obj(ths__packset *ps, const ths_hash *h, size_t max,
		    uint8_t *into, size_t n, uint8_t **buf, size_t *len,
		    th_err *err)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct loc l;
		if (!loc_get(ps, h, attempt > 0, &l))
			return TH_ENOTFOUND;
		int rc = 0;
		uint8_t *b = into;
		size_t want = l.size < n ? (size_t)l.size : n;
		if (!into) {
			if (l.size > max) {
				char where[4400];
				loc_where(ps, &l, where, sizeof where);
				rc = th_err_set(err, TH_ELIMIT, "object %s is "
						"too big (limit %zu)", where, max);
			} else if (!(b = th_malloc(want ? want : 1))) {
				rc = th_err_set(err, TH_ENOMEM, "out of memory "
						"reading %zu bytes", want);
			}
		}
		if (!rc)
			rc = loc_read(ps, &l, b, want, err);
		loc_release(ps, &l);
		if (rc == TH_ENOTFOUND) {
			if (!into)
				th_free(b);
			continue;
		}
		if (rc) {
			if (!into)
				th_free(b);
			return rc;
		}
		if (buf)
			*buf = b;
		*len = want;
		return 0;
	}
	return TH_ENOTFOUND;
}

int ths__packset_read(ths__packset *ps, const ths_hash *h, size_t max,
		      uint8_t **buf, size_t *len, th_err *err)
{
	return read_obj(ps, h, max, NULL, SIZE_MAX, buf, len, err);
}

int ths__packset_peek(ths__packset *ps, const ths_hash *h, uint8_t *buf,
		      size_t n, size_t *got, th_err *err)
{
	return read_obj(ps, h, SIZE_MAX, buf, n, NULL, got, err);
}

void ths__packset_prefetch(ths__packset *ps, const ths_hash *h)
{
	struct loc l;
	bool owned;
	if (!loc_get(ps, h, false, &l))
		return;
	uint64_t start = l.off, end = l.off + l.size;
	pthread_mutex_lock(&ps->mu);
	if (end + RA_WINDOW / 2 > l.pk->ra_end || start + RA_WINDOW <
						     l.pk->ra_end) {
		/* Past half of the window asked before (or far behind it):
		 * ask for the next window from where the last one ended. */
		if (start < l.pk->ra_end && l.pk->ra_end < start + RA_WINDOW)
			start = l.pk->ra_end;
		end = l.off + RA_WINDOW;
		l.pk->ra_end = end;
	} else {
		end = start; /* already asked for */
	}
	pthread_mutex_unlock(&ps->mu);
	int fd = end > start ? loc_fd(ps, &l, &owned) : -1;
	if (fd >= 0) {
		posix_fadvise(fd, (off_t)start, (off_t)(end - start),
			      POSIX_FADV_WILLNEED);
		if (owned)
			close(fd);
	}
	loc_release(ps, &l);
}

int ths__packset_touch(ths__packset *ps, const ths_hash *h, th_err *err)
{
	struct loc l;
	if (!loc_get(ps, h, false, &l))
		return TH_ENOTFOUND;
	int rc = 0;
	if (utimensat(ps->packsfd, l.pk->name, NULL, 0) != 0) {
		rc = sys_err(err, errno, "cannot touch", ps->root, l.pk->name);
	} else {
		pthread_mutex_lock(&ps->mu);
		l.pk->mtime_ns = (int64_t)th_wall_ns();
		pthread_mutex_unlock(&ps->mu);
	}
	loc_release(ps, &l);
	return rc;
}

bool ths__packset_where(ths__packset *ps, const ths_hash *h, char *buf,
			size_t n)
{
	struct loc l;
	if (!loc_get(ps, h, false, &l))
		return false;
	loc_where(ps, &l, buf, n);
	loc_release(ps, &l);
	return true;
}

int ths__packset_list(ths__packset *ps, bool (*skip)(void *, const ths_hash *),
		      void *skip_ud, ths__list_fn fn, void *ud, th_err *err)
{
	/* A snapshot, so that fn may call back into the store unlocked. */
	struct ths__obj_info *v = NULL;
	size_t n = 0;
	pthread_mutex_lock(&ps->mu);
	int rc = refresh_locked(ps, true, err);
	for (struct pack *pk = ps->packs; pk && !rc; pk = pk->next) {
		struct stat st;
		if (fstatat(ps->packsfd, pk->name, &st, 0) == 0)
			pk->mtime_ns = ts_ns(&st.st_mtim);
	}
	if (!rc && !(v = th_malloc((ps->map.count ? ps->map.count : 1) *
				   sizeof *v)))
		rc = th_err_set(err, TH_ENOMEM, "out of memory (listing packs)");
	for (size_t i = 0; i < ps->map.cap && !rc; i++) {
		struct ths__hslot *sl = &ps->map.slots[i];
		if (!sl->used || (skip && skip(skip_ud, &sl->key)))
			continue;
		const struct pentry *e = sl->val.p;
		v[n++] = (struct ths__obj_info){ .hash = e->h, .size = e->size,
						 .mtime_ns = e->pk->mtime_ns };
	}
	pthread_mutex_unlock(&ps->mu);
	for (size_t i = 0; i < n && !rc; i++)
		rc = fn(ud, &v[i]);
	th_free(v);
	if (rc && err && !err->code)
		th_err_set(err, rc, "listing packed objects stopped: %s",
			   th_strerror(rc));
	return rc;
}

bool ths__packset_remove(ths__packset *ps, const ths_hash *h)
{
	pthread_mutex_lock(&ps->mu);
	bool found = ths__hmap_find(&ps->map, h) != NULL;
	ths__hval *v;
	if (found && ths__hmap_upsert(&ps->dead, h, &v) < 0)
		found = false; /* out of memory: the object stays (safe) */
	pthread_mutex_unlock(&ps->mu);
	return found;
}

int ths__packset_check(ths__packset *ps, ths__problem_fn fn, void *ud,
		       th_err *err)
{
	DIR *dir;
	int rc0 = open_dir(ps, &dir, err);
	if (rc0)
		return rc0;
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(dir)) != NULL) {
		char path[4400], msg[400];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/packs/%s", ps->root, de->d_name);
		if (!is_pack_name(de->d_name)) {
			fn(ud, path, "not a pack file name (64 hex digits "
			   "and .pack)");
			continue;
		}
		struct pack *pk = NULL;
		rc = pack_load(ps, de->d_name, &pk, msg, sizeof msg);
		if (rc == TH_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (!rc && (!pk || pk->damaged))
			fn(ud, path, msg);
		if (pk) {
			th_free(pk->e);
			th_free(pk);
		}
	}
	closedir(dir);
	if (rc == TH_ENOMEM)
		return th_err_set(err, rc, "out of memory (pack check)");
	return rc;
}

/* ---- Writing ------------------------------------------------------------------ */

struct rec {
	ths_hash h;
	uint64_t off, size;
};

struct ths__packw {
	ths__packset *ps;
	int fd;
	char tmp[64];
	uint8_t *mem, *buf[NBUF];
	size_t fill;          /* bytes in the buffer being filled */
	struct rec *recs;
	size_t n, cap;
	/* The writer thread. Job k is buffer k % NBUF, written whole at file
	 * offset k * WBUF; jobs [written, queued) are waiting or being
	 * written, and the caller fills buffer queued % NBUF. */
	pthread_t th;
	bool threaded, stop, direct;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t queued, written;
	int werr;             /* errno of a failed write, sticky */
};

/* Writes one job; falls back from O_DIRECT if the file system refuses. */
static int w_write(ths__packw *w, const uint8_t *p, size_t n, uint64_t off)
{
	int e = pwrite_all(w->fd, p, n, off);
	if (e == EINVAL && w->direct) {
		int fl = fcntl(w->fd, F_GETFL);
		if (fl >= 0 && fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) == 0) {
			w->direct = false;
			e = pwrite_all(w->fd, p, n, off);
		}
	}
	return e;
}

static void *w_main(void *arg)
{
	ths__packw *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->written == w->queued && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->written == w->queued)
			break;
		uint64_t k = w->written;
		bool skip = w->werr != 0;
		pthread_mutex_unlock(&w->mu);
		int e = skip ? 0 : w_write(w, w->buf[k % NBUF], WBUF, k * WBUF);
		pthread_mutex_lock(&w->mu);
		if (e && !w->werr)
			w->werr = e;
		w->written++;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Waits until at most `most` jobs are pending; returns the sticky errno. */
static int w_wait(ths__packw *w, uint64_t most)
{
	if (!w->threaded)
		return w->werr;
	pthread_mutex_lock(&w->mu);
	while (w->queued - w->written > most)
		pthread_cond_wait(&w->cv, &w->mu);
	int e = w->werr;
	pthread_mutex_unlock(&w->mu);
	return e;
}

static void w_stop(ths__packw *w)
{
	if (!w->threaded)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	w->threaded = false;
}

static int w_errmsg(ths__packw *w, int e, th_err *err)
{
	return sys_err(err, e, "cannot write", w->ps->root, w->tmp);
}

/* Hands the full current buffer to the writer, then waits until the
 * next one is free. */
static int w_flush(ths__packw *w, th_err *err)
{
	int e;
	if (!w->threaded) {
		uint64_t k = w->queued;
		if ((e = w_write(w, w->buf[k % NBUF], WBUF, k * WBUF)) != 0) {
			w->werr = e;
			return w_errmsg(w, e, err);
		}
		w->queued = w->written = k + 1;
	} else {
		pthread_mutex_lock(&w->mu);
		w->queued++;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	w->fill = 0;
	if ((e = w_wait(w, NBUF - 1)) != 0)
		return w_errmsg(w, e, err);
	return 0;
}

static int w_append(ths__packw *w, const uint8_t *p, size_t n, th_err *err)
{
	while (n) {
		size_t take = WBUF - w->fill;
		if (take > n)
			take = n;
		memcpy(w->buf[w->queued % NBUF] + w->fill, p, take);
		w->fill += take;
		p += take;
		n -= take;
		if (w->fill == WBUF) {
			int rc = w_flush(w, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int ths__packw_begin(ths__packset *ps, ths__packw **out, th_err *err)
{
	ths__packw *w = th_calloc(1, sizeof *w);
	if (!w)
		return th_err_set(err, TH_ENOMEM, "out of memory (pack)");
	w->ps = ps;
	w->fd = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	int rc = 0;
	w->mem = th_malloc(NBUF * (size_t)WBUF + ALIGN);
	if (!w->mem) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (pack buffer)");
		goto fail;
	}
	uintptr_t a = ((uintptr_t)w->mem + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
	for (int i = 0; i < NBUF; i++)
		w->buf[i] = (uint8_t *)a + (size_t)i * WBUF;
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
	w->direct = true; /* see WRITING */
	for (int tries = 0; w->fd < 0; tries++) {
		snprintf(w->tmp, sizeof w->tmp, "%ld.%llu.pack", (long)getpid(),
			 (unsigned long long)atomic_fetch_add(&ps->seq, 1));
		w->fd = openat(ps->tmpfd, w->tmp,
			       flags | (w->direct ? O_DIRECT : 0), 0444);
		if (w->fd < 0 && errno == EINVAL && w->direct) {
			w->direct = false;
			continue;
		}
		if (w->fd < 0 && (errno != EEXIST || tries > 100)) {
			char rel[80];
			snprintf(rel, sizeof rel, "tmp/%s", w->tmp);
			rc = sys_err(err, errno, "cannot create", ps->root, rel);
			goto fail;
		}
	}
	w->threaded = pthread_create(&w->th, NULL, w_main, w) == 0;
	if ((rc = w_append(w, (const uint8_t *)PACK_MAGIC, MAGIC_LEN, err)))
		goto fail;
	*out = w;
	return 0;
fail:
	ths__packw_abort(w);
	return rc;
}

int ths__packw_add(ths__packw *w, const ths_hash *h, const void *data,
		   size_t len, th_err *err)
{
	if (w->werr)
		return w_errmsg(w, w->werr, err);
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 64;
		struct rec *nr = th_realloc(w->recs, ncap * sizeof *nr);
		if (!nr)
			return th_err_set(err, TH_ENOMEM, "out of memory (pack "
					  "index)");
		w->recs = nr;
		w->cap = ncap;
	}
	uint8_t hdr[ENT_HDR];
	memcpy(hdr, h->b, THS_HASH_LEN);
	put_u64(hdr + 32, len);
	struct rec *r = &w->recs[w->n];
	r->h = *h;
	r->off = w->queued * WBUF + w->fill + ENT_HDR;
	r->size = len;
	int rc = w_append(w, hdr, ENT_HDR, err);
	if (!rc)
		rc = w_append(w, data, len, err);
	if (!rc)
		w->n++;
	return rc;
}

size_t ths__packw_count(const ths__packw *w)
{
	return w->n;
}

void ths__packw_abort(ths__packw *w)
{
	if (!w)
		return;
	w_stop(w);
	if (w->fd >= 0) {
		close(w->fd);
		unlinkat(w->ps->tmpfd, w->tmp, 0);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	th_free(w->recs);
	th_free(w->mem);
	th_free(w);
}

int ths__packw_commit(ths__packw *w, th_err *err)
{
	ths__packset *ps = w->ps;
	int rc = 0;
	uint8_t *idx = NULL;
	int e = w_wait(w, 0);
	w_stop(w);
	if (e) {
		rc = w_errmsg(w, e, err);
		goto out;
	}
	/* The tail is not a multiple of the block size: write it buffered. */
	if (w->direct) {
		int fl = fcntl(w->fd, F_GETFL);
		if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) != 0) {
			rc = w_errmsg(w, errno, err);
			goto out;
		}
		w->direct = false;
	}
	size_t ilen = w->n * REC_LEN;
	idx = th_malloc(ilen + FOOT_LEN);
	if (!idx) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (pack index)");
		goto out;
	}
	for (size_t i = 0; i < w->n; i++) {
		uint8_t *r = idx + i * REC_LEN;
		memcpy(r, w->recs[i].h.b, THS_HASH_LEN);
		put_u64(r + 32, w->recs[i].off);
		put_u64(r + 40, w->recs[i].size);
	}
	ths_hash ih;
	if ((rc = ths__sha256(idx, ilen, &ih)) != 0) {
		th_err_set(err, rc, "out of memory (hashing)");
		goto out;
	}
	uint64_t tail = w->queued * WBUF, x = tail + w->fill;
	uint8_t *f = idx + ilen;
	memcpy(f, IDX_MAGIC, MAGIC_LEN);
	put_u64(f + 8, w->n);
	put_u64(f + 16, x);
	memcpy(f + 24, ih.b, THS_HASH_LEN);
	if ((e = pwrite_all(w->fd, w->buf[w->queued % NBUF], w->fill,
			    tail)) != 0 ||
	    (e = pwrite_all(w->fd, idx, ilen + FOOT_LEN, x)) != 0) {
		rc = w_errmsg(w, e, err);
		goto out;
	}
	/* P1: durable before visible, visible before acknowledged. */
	if (ps->sync == THS_SYNC_FULL && fdatasync(w->fd) != 0) {
		rc = sys_err(err, errno, "fdatasync", ps->root, w->tmp);
		goto out;
	}
	close(w->fd);
	w->fd = -1;
	char name[NAME_LEN + 1];
	ths_hash_hex(&ih, name);
	memcpy(name + THS_HEX_LEN, ".pack", 6);
	if (renameat(ps->tmpfd, w->tmp, ps->packsfd, name) != 0) {
		rc = sys_err(err, errno, "cannot rename into", ps->root, "packs");
		unlinkat(ps->tmpfd, w->tmp, 0);
		goto out;
	}
	if (ps->sync == THS_SYNC_FULL && fsync(ps->packsfd) != 0) {
		rc = sys_err(err, errno, "fsync of directory", ps->root, "packs");
		goto out;
	}
	pthread_mutex_lock(&ps->mu);
	rc = refresh_locked(ps, true, err);
	pthread_mutex_unlock(&ps->mu);
out:
	th_free(idx);
	ths__packw_abort(w);
	return rc;
}

/* ---- Repacking (GC) ------------------------------------------------------------ */

/* Copies the live objects of packs todo[0..n) into one new pack, each
 * hash once (nothing live: nothing written). */
static int repack_into_one(ths__packset *ps, struct pack **todo, size_t n,
			   th_err *err)
{
	ths__packw *w = NULL;
	uint8_t *buf = NULL;
	size_t cap = 0;
	ths__hmap copied;
	ths__hmap_init(&copied);
	int rc = 0;
	for (size_t k = 0; k < n; k++) {
		struct pack *pk = todo[k];
		for (size_t i = 0; i < pk->n; i++) {
			struct pentry *e = &pk->e[i];
			ths__hval *v;
			pthread_mutex_lock(&ps->mu);
			bool dead = ths__hmap_find(&ps->dead, &e->h) != NULL;
			pthread_mutex_unlock(&ps->mu);
			if (dead)
				continue;
			int r = ths__hmap_upsert(&copied, &e->h, &v);
			if (r == 0)
				continue; /* already copied from another pack */
			if (r >= 0 && e->size > cap) {
				th_free(buf);
				cap = (size_t)e->size;
				if (!(buf = th_malloc(cap)))
					cap = 0;
			}
			if (r < 0 || cap < e->size) {
				rc = th_err_set(err, TH_ENOMEM, "out of memory "
						"(repack)");
				goto out;
			}
			struct loc l = { pk, e->off, e->size, 0 };
			rc = loc_read(ps, &l, buf, (size_t)e->size, err);
			if (rc == TH_ENOTFOUND)
				rc = th_err_set(err, rc, "pack %s/packs/%s "
						"vanished during GC", ps->root,
						pk->name);
			if (rc)
				goto out;
			if (!w && (rc = ths__packw_begin(ps, &w, err)) != 0)
				goto out;
			rc = ths__packw_add(w, &e->h, buf, (size_t)e->size, err);
			if (rc)
				goto out;
		}
	}
	if (w) {
		rc = ths__packw_commit(w, err);
		w = NULL;
	}
out:
	ths__packw_abort(w);
	ths__hmap_release(&copied);
	th_free(buf);
	return rc;
}

static uint64_t pack_bytes(const struct pack *pk)
{
	uint64_t b = 0;
	for (size_t i = 0; i < pk->n; i++)
		b += pk->e[i].size;
	return b;
}

int ths__packset_repack(ths__packset *ps, th_err *err)
{
	struct pack **todo = NULL;
	size_t n = 0, nsmall = 0;
	int rc = 0;
	pthread_mutex_lock(&ps->mu);
	size_t np = 0;
	for (struct pack *pk = ps->packs; pk; pk = pk->next) {
		np++;
		nsmall += pack_bytes(pk) < SMALL_PACK;
	}
	bool merge_small = nsmall >= SMALL_PACKS_MAX;
	if (ps->dead.count || merge_small) {
		todo = th_calloc(np ? np : 1, sizeof *todo);
		if (!todo)
			rc = th_err_set(err, TH_ENOMEM, "out of memory (repack)");
	}
	for (struct pack *pk = ps->packs; pk && todo; pk = pk->next) {
		bool take = merge_small && pack_bytes(pk) < SMALL_PACK;
		for (size_t i = 0; i < pk->n && !take; i++)
			take = ths__hmap_find(&ps->dead, &pk->e[i].h) != NULL;
		if (take) {
			pk->refs++;
			todo[n++] = pk;
		}
	}
	pthread_mutex_unlock(&ps->mu);
	/* P2: the live objects are in a durable new pack before any old
	 * pack goes. */
	if (!rc && n)
		rc = repack_into_one(ps, todo, n, err);
	for (size_t i = 0; i < n && !rc; i++)
		if (unlinkat(ps->packsfd, todo[i]->name, 0) != 0 &&
		    errno != ENOENT)
			rc = sys_err(err, errno, "cannot remove", ps->root,
				     todo[i]->name);
	if (!rc && n && ps->sync == THS_SYNC_FULL && fsync(ps->packsfd) != 0)
		rc = sys_err(err, errno, "fsync of directory", ps->root, "packs");
	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < n; i++)
		if (--todo[i]->refs == 0 && todo[i]->gone)
			pack_free(ps, todo[i]);
	ths__hmap_release(&ps->dead);
	int r2 = refresh_locked(ps, true, rc ? NULL : err);
	pthread_mutex_unlock(&ps->mu);
	th_free(todo);
	return rc ? rc : r2;
}
