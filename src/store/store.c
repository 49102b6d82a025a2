/*
 * store.c - Theater's content-addressed Store: opening, putting and getting
 * content, pins. Labels are in label.c, garbage collection in gc.c,
 * verification in verify.c, the object files in disk.c (behind the
 * backend vtable of backend.h), the cache in cache.c, chunk boundaries in
 * cdc.c and the manifest format in manifest.h.
 *
 * ON-DISK LAYOUT (one store root; the CLI's is $THEATER_HOME/store)
 *
 *   ROOT/LOCK                      empty; flock()ed, see LOCKING
 *   ROOT/objects/ab/cdef...        one object: a file whose bytes are
 *                                  exactly the object, named by the 64 hex
 *                                  digits of their SHA-256 (first two as a
 *                                  fan-out directory). No header, so
 *                                  `sha256sum` of any object file prints
 *                                  its name.
 *   ROOT/packs/NAME.pack           many objects in one file: the
 *                                  chunks of a chunked put (format,
 *                                  invariants P1-P3 and repacking in
 *                                  pack.c). Not `sha256sum`-checkable
 *                                  as a whole; `verify` checks each
 *                                  object in it.
 *   ROOT/tmp/PID.SEQ.HASH8         objects being written; never read
 *   ROOT/tmp/PID.SEQ.pack          a pack being written; never read
 *   ROOT/stores/ID/LOCK            flock()ed while a label of ID changes
 *   ROOT/stores/ID/labels/NAME     one label: exactly 65 bytes, the 64
 *                                  lowercase hex digits of the hash and
 *                                  "\n". "default" always exists.
 *
 * An object is either plain content or a manifest (format in manifest.h:
 * 8-byte magic "\0THSMF1\n", total size, chunk count, then 36 bytes per
 * chunk: SHA-256 and size). Chunks are plain objects.
 *
 * NAMING RULES
 *   R1. put(content) of at most THS_SMALL_MAX (64 KiB) bytes that does not
 *       start with the manifest magic stores one plain object; the name is
 *       SHA-256(content).
 *   R2. Any other content is cut into chunks by content-defined chunking
 *       (cdc.c: 16 KiB min, 64 KiB average, 256 KiB max), each stored as a
 *       plain object, and the name is SHA-256(manifest). Reading a name
 *       back, a top-level object is a manifest iff it starts with the
 *       magic and parses; by R1 no plain top-level object starts with the
 *       magic, so the two readings never collide. (A *chunk* may start
 *       with the magic; chunks are only ever read as chunks.)
 *   Both rules are functions of the bytes alone, so equal content gets an
 *   equal name whoever stores it, and is stored once.
 *
 * INVARIANTS
 *   I1. A file under objects/ is complete: its bytes hash to its name
 *       (unless the disk flipped bits since; reads and `verify` check).
 *       A pack under packs/ is complete, and each object in it hashes
 *       to its name (pack.c, P1 and P3).
 *   I2. If a manifest is in objects/, every chunk it lists is too.
 *       (Puts commit chunks, durably, before the manifest; GC deletes
 *       unreachable manifests, durably, before unreachable plain objects.)
 *   I3. A label names an object that was present when the label was
 *       written (ths_label_set checks under the shared lock, so GC cannot
 *       run in between) and GC never deletes what a label names.
 *   I4. Objects are immutable; only GC deletes them.
 *
 * WRITING (crash safety)
 *   Every object, pack and label file is written to a new temporary
 *   file, made durable (fsync/fdatasync), renamed into place (atomic),
 *   and then its directory is made durable. A crash (kill -9, power
 *   loss) at any point leaves either no file or the complete file under
 *   the final name, plus perhaps stray temporaries that nothing reads
 *   and GC deletes. A put returns (acknowledges the hash) only after the
 *   last step, so an acknowledged object survives power loss.
 *   fsync policy of one put: content of at most 64 KiB is one loose
 *   object: fsync of the file, of objects/xx (and of objects/ if xx was
 *   new). Chunked content: its new chunks go to ONE pack (a new pack
 *   every 1 GiB): the pack is written during the put (O_DIRECT), then
 *   one fdatasync of the pack, rename, one fsync of packs/; then the
 *   manifest as a loose object as above. So 2 data syncs and 2-3
 *   directory syncs per put, whatever its size.
 *   With THS_SYNC_NONE the fsyncs are skipped: atomicity against a
 *   process crash remains, durability against power loss does not.
 *
 * PUT PIPELINE (a chunked put of at least 4 MiB)
 *   The calling thread finds chunk boundaries (cdc.c) and copies new
 *   chunks into the pack's buffer; a helper thread hashes chunks
 *   (hasher.c); the pack's writer thread writes full 4 MiB buffers. No
 *   byte is read twice from the input and none is re-read from disk.
 *
 * GARBAGE COLLECTION (gc.c): mark and sweep under the exclusive lock.
 *   Roots: every label of every named store, every pin of this handle, and
 *   every object whose mtime is within the grace period before GC began
 *   (a put that returned a hash not yet labelled; a put of content already
 *   present touches the object so that it counts as fresh; a packed
 *   object's mtime is its pack's). Marking a manifest marks its chunks.
 *   Sweep deletes unmarked manifests first, syncs, then the other
 *   unmarked objects (a pack holding some is rewritten without them,
 *   the new pack durable before the old one goes), then stray
 *   temporaries (no writer can be active: they hold the shared lock).
 *   GC only ever
 *   deletes unreachable objects, so stopping it at any point is safe; the
 *   order keeps I2 true at every instant.
 *
 * LOCKING AND THREADS
 *   Many threads may share one handle. Objects are immutable, so reads
 *   need no lock (the cache has its own mutex; cached objects are
 *   reference counted). Puts and label changes hold ROOT/LOCK shared
 *   (flock through their own open file description, so this works between
 *   threads and between processes alike); a label change additionally
 *   holds stores/ID/LOCK exclusively, which makes compare-and-swap atomic.
 *   GC holds ROOT/LOCK exclusively. Pins are in memory under the handle's
 *   mutex, and only the GC of the same handle sees them.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/cdc.h"
#include "store/hasher.h"
#include "store/store_int.h"

#define DEFAULT_CACHE (64u << 20)
#define DEFAULT_READAHEAD 4
/* Input window of a streaming put: at least two maximal chunks. */
#define PUT_WINDOW (4u << 20)
/* A put from a descriptor reads PUT_WINDOW at a time into the free tail
 * of a buffer this big while the chunks before are still being hashed;
 * only when the tail is full are the unread bytes moved to the front,
 * which first waits for every chunk pointing into the buffer. */
#define PUT_BUF (16u << 20)
/* A batch of loose files is committed once it holds this many files or
 * bytes; a pack (the chunks of a chunked put) once it holds PACK_BYTES. */
#define BATCH_FILES 512
#define BATCH_BYTES (64u << 20)
#define PACK_BYTES ((size_t)1 << 30)
/* Chunks a streaming reader of big content reads and hashes ahead. */
#define GET_AHEAD 8
/* Largest object file read whole (a manifest of ~1.8 TB of content). */
#define OBJECT_MAX ((size_t)1 << 30)

/* ---- Small helpers -------------------------------------------------------- */

static EVP_MD *sha_md;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
	sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int ths__sha256(const void *p, size_t n, ths_hash *out)
{
	pthread_once(&sha_once, sha_init);
	unsigned len = 0;
	if (!sha_md || !EVP_Digest(p, n, out->b, &len, sha_md, NULL) ||
	    len != THS_HASH_LEN)
		return TH_ENOMEM; /* OpenSSL fails only when it cannot allocate */
	return 0;
}

void ths_hash_hex(const ths_hash *h, char out[THS_HEX_LEN + 1])
{
	th_hex(h->b, THS_HASH_LEN, out);
}

int ths_hash_parse(const char *text, ths_hash *out, th_err *err)
{
	size_t n = text ? strlen(text) : 0;
	if (n != THS_HEX_LEN)
		return th_err_set(err, TH_EINVAL,
				  "bad hash '%.80s%s': must be 64 hex digits, "
				  "got %zu characters", text ? text : "",
				  n > 80 ? "..." : "", n);
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return th_err_set(err, TH_EINVAL,
					  "bad hash '%s': character %zu ('%c') "
					  "is not a hex digit", text, i + 1,
					  c >= 32 && c < 127 ? c : '?');
	}
	if (!th_unhex(text, out->b, THS_HASH_LEN)) {
		char low[THS_HEX_LEN + 1];
		for (size_t i = 0; i <= n; i++)
			low[i] = (char)((text[i] >= 'A' && text[i] <= 'F')
					? text[i] - 'A' + 'a' : text[i]);
		if (!th_unhex(low, out->b, THS_HASH_LEN))
			return th_err_set(err, TH_EINVAL, "bad hash '%s'", text);
	}
	return 0;
}

void ths_buf_free(void *p)
{
	th_free(p);
}

int ths__lock(ths_store *s, const char *rel, bool exclusive, int *fd,
	      th_err *err)
{
	int f = openat(s->rootfd, rel, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f < 0)
		return th_err_set(err, ths__errno_code(errno),
				  "cannot open lock %s/%s: %s", s->root, rel,
				  strerror(errno));
	while (flock(f, exclusive ? LOCK_EX : LOCK_SH) != 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(f);
		return th_err_set(err, TH_EIO, "cannot lock %s/%s: %s", s->root,
				  rel, strerror(e));
	}
	*fd = f;
	return 0;
}

void ths__unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

/* ---- Open / close ----------------------------------------------------------- */

int ths_open(const char *root, const ths_options *opt, ths_store **out,
	     th_err *err)
{
	int rc = 0;
	ths_store *s = th_calloc(1, sizeof *s);
	if (!s)
		return th_err_set(err, TH_ENOMEM, "out of memory (store handle)");
	s->rootfd = -1;
	s->sync = opt ? opt->sync : THS_SYNC_FULL;
	s->readahead = opt && opt->readahead ? opt->readahead
					       : DEFAULT_READAHEAD;
	s->single_thread = opt && opt->single_thread;
	ths__cache_init(&s->cache, opt && opt->cache_bytes ? opt->cache_bytes
							   : DEFAULT_CACHE);
	pthread_mutex_init(&s->mu, NULL);
	ths__hmap_init(&s->pins);
	if (!root || !*root) {
		rc = th_err_set(err, TH_EINVAL, "store root path is empty");
		goto fail;
	}
	s->root = th_strdup(root);
	if (!s->root) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (store handle)");
		goto fail;
	}
	if (mkdir(root, 0755) != 0 && errno != EEXIST) {
		rc = th_err_set(err, ths__errno_code(errno),
				"cannot create store directory %s: %s", root,
				strerror(errno));
		goto fail;
	}
	s->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		rc = th_err_set(err, ths__errno_code(errno),
				"cannot open store directory %s: %s", root,
				strerror(errno));
		goto fail;
	}
	if ((rc = ths__disk_open(root, s->sync, &s->be, err)) != 0)
		goto fail;
	if (mkdirat(s->rootfd, "stores", 0755) != 0 && errno != EEXIST) {
		rc = th_err_set(err, ths__errno_code(errno),
				"cannot create %s/stores: %s", root,
				strerror(errno));
		goto fail;
	}
	if (mkdirat(s->rootfd, "stores/" THS_DEFAULT_STORE, 0755) != 0 &&
	    errno != EEXIST) {
		rc = th_err_set(err, ths__errno_code(errno),
				"cannot create the default store in %s: %s",
				root, strerror(errno));
		goto fail;
	}
	if (mkdirat(s->rootfd, "stores/" THS_DEFAULT_STORE "/labels", 0755) != 0 &&
	    errno != EEXIST) {
		rc = th_err_set(err, ths__errno_code(errno),
				"cannot create the default store in %s: %s",
				root, strerror(errno));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	ths_close(s);
	return rc;
}

void ths_close(ths_store *s)
{
	if (!s)
		return;
	if (s->be)
		s->be->ops->destroy(s->be);
	ths__cache_release(&s->cache);
	ths__hmap_release(&s->pins);
	pthread_mutex_destroy(&s->mu);
	if (s->rootfd >= 0)
		close(s->rootfd);
	th_free(s->root);
	th_free(s);
}

/* ---- Put -------------------------------------------------------------------- */

/* One put in progress: the write batch and the manifest being built. */
struct put_ctx {
	ths_store *s;
	ths__batch *batch;
	size_t staged_files, staged_bytes;
	ths__hmap staged; /* hashes in the open batch (in-put duplicates) */
	bool many;        /* chunks: one pack per batch */
	th_err *err;
};

static int put_commit(struct put_ctx *c)
{
	if (!c->batch)
		return 0;
	ths__batch *b = c->batch;
	c->batch = NULL;
	int rc = c->s->be->ops->batch_commit(b, c->err);
	if (rc == 0) {
		atomic_fetch_add(&c->s->n_written, c->staged_files);
		atomic_fetch_add(&c->s->b_written, c->staged_bytes);
	}
	c->staged_files = c->staged_bytes = 0;
	ths__hmap_release(&c->staged);
	return rc;
}

/* Stages object h unless it exists. top: a name handed back to the caller,
 * touched when present so that GC's grace period covers it. */
static int put_object(struct put_ctx *c, const ths_hash *h, const uint8_t *p,
		      size_t n, bool top)
{
	ths__backend *be = c->s->be;
	struct ths__obj_info info;
	th_err serr = { 0 };
	if (ths__hmap_find(&c->staged, h))
		return 0;
	int rc = be->ops->stat(be, h, &info, &serr);
	if (rc == 0)
		return top ? be->ops->touch(be, h, c->err) : 0;
	if (rc != TH_ENOTFOUND) {
		if (c->err)
			*c->err = serr;
		return rc;
	}
	if (!c->batch &&
	    (rc = be->ops->batch_begin(be, c->many, &c->batch, c->err)))
		return rc;
	ths__hval *slot;
	if (ths__hmap_upsert(&c->staged, h, &slot) < 0)
		return th_err_set(c->err, TH_ENOMEM, "out of memory (put)");
	if ((rc = be->ops->batch_add(c->batch, h, p, n, c->err)) != 0)
		return rc;
	c->staged_files++;
	c->staged_bytes += n;
	if (c->many ? c->staged_bytes >= PACK_BYTES
		    : c->staged_files >= BATCH_FILES ||
		      c->staged_bytes >= BATCH_BYTES)
		return put_commit(c);
	return 0;
}

/* The input of a put: a memory range, or a window over a file descriptor. */
struct put_src {
	int fd;             /* -1 for memory */
	const uint8_t *base;
	uint8_t *buf;       /* fd window (owned) */
	size_t start, end;  /* unread bytes: base[start..end) */
	bool eof;
	uint64_t consumed;  /* bytes cut so far */
};

/* Whether the next src_fill moves the unread bytes (invalidating every
 * pointer into the buffer). */
static bool src_must_move(const struct put_src *src)
{
	return src->fd >= 0 && !src->eof && src->start &&
	       src->end + PUT_WINDOW > PUT_BUF;
}

/* Tops the unread bytes up to PUT_WINDOW (or EOF), at the buffer's tail. */
static int src_fill(struct put_src *src, th_err *err)
{
	if (src->fd < 0 || src->eof)
		return 0;
	if (src_must_move(src)) {
		memmove(src->buf, src->buf + src->start, src->end - src->start);
		src->end -= src->start;
		src->start = 0;
	}
	size_t want = src->start + PUT_WINDOW;
	while (src->end < want) {
		ssize_t r = read(src->fd, src->buf + src->end, want - src->end);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return th_err_set(err, TH_EIO, "cannot read input: %s",
					  strerror(errno));
		}
		if (r == 0) {
			src->eof = true;
			break;
		}
		src->end += (size_t)r;
	}
	return 0;
}

/* Takes back one hashed chunk and stores it: 1 if there was one, 0 if
 * none was ready, negative on error. */
static int put_take_one(struct put_ctx *c, ths__hasher *hs,
			ths__mf_builder *mf, struct put_src *src, bool wait,
			ths_progress_fn progress, void *ud, uint64_t total)
{
	struct ths__hjob j;
	if (!ths__hasher_take(hs, wait, &j))
		return 0;
	int rc;
	if (j.rc)
		return th_err_set(c->err, j.rc, "out of memory (hashing)");
	if ((rc = put_object(c, &j.hash, j.p, j.n, false)) != 0)
		return rc;
	if (ths__mf_builder_add(mf, &j.hash, (uint32_t)j.n) != 0)
		return th_err_set(c->err, TH_ENOMEM, "out of memory (manifest)");
	src->consumed += j.n;
	if (progress)
		progress(ud, src->consumed, total);
	return 1;
}

/* Stores every hashed chunk (with wait: every submitted chunk). */
static int put_take(struct put_ctx *c, ths__hasher *hs, ths__mf_builder *mf,
		    struct put_src *src, bool wait, ths_progress_fn progress,
		    void *ud, uint64_t total)
{
	int rc;
	while ((rc = put_take_one(c, hs, mf, src, wait, progress, ud, total)) > 0)
		;
	return rc;
}

static int put_run(ths_store *s, struct put_src *src, uint64_t total_hint,
		   ths_progress_fn progress, void *ud, ths_hash *out,
		   uint64_t *size_out, th_err *err)
{
	struct put_ctx c = { .s = s, .err = err };
	ths__mf_builder mf = { 0 };
	ths__hasher *hs = NULL;
	int lockfd = -1;
	int rc;
	ths__hmap_init(&c.staged);
	if ((rc = ths__lock(s, "LOCK", false, &lockfd, err)) != 0)
		goto out;
	if ((rc = src_fill(src, err)) != 0)
		goto out;
	size_t avail = src->end - src->start;
	const uint8_t *p = src->base + src->start;
	if (src->eof && avail <= THS_SMALL_MAX &&
	    !ths__mf_has_magic(p, avail)) {
		/* R1: one plain object. */
		ths_hash h;
		if ((rc = ths__sha256(p, avail, &h)) != 0) {
			th_err_set(err, rc, "out of memory (hashing)");
			goto out;
		}
		if ((rc = put_object(&c, &h, p, avail, true)) != 0 ||
		    (rc = put_commit(&c)) != 0)
			goto out;
		*out = h;
		if (size_out)
			*size_out = avail;
		if (progress)
			progress(ud, avail, total_hint);
		goto out;
	}
	/* R2: chunks, then the manifest. */
	if (ths__mf_builder_init(&mf) != 0) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (manifest)");
		goto out;
	}
	/* Hash on a helper thread when the content is big enough to pay for
	 * starting one (at least a full window). */
	hs = ths__hasher_new(avail >= PUT_WINDOW && !s->single_thread);
	if (!hs) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (hasher)");
		goto out;
	}
	c.many = true;
	for (;;) {
		if (!src->eof && src->end - src->start < THS_CHUNK_MAX) {
			/* Moving the unread bytes: finish what points into
			 * the buffer first. */
			if (src_must_move(src) &&
			    (rc = put_take(&c, hs, &mf, src, true, progress, ud,
					   total_hint)) != 0)
				goto out;
			if ((rc = src_fill(src, err)) != 0)
				goto out;
		}
		avail = src->end - src->start;
		if (avail == 0)
			break;
		p = src->base + src->start;
		size_t cut = ths__cdc_cut(p, avail);
		if (ths__hasher_pending(hs) == THS__HASHER_RING &&
		    (rc = put_take_one(&c, hs, &mf, src, true, progress, ud,
				       total_hint)) < 0)
			goto out;
		ths__hasher_submit(hs, p, cut);
		src->start += cut;
		if ((rc = put_take(&c, hs, &mf, src, false, progress, ud,
				   total_hint)) != 0)
			goto out;
	}
	if ((rc = put_take(&c, hs, &mf, src, true, progress, ud, total_hint)))
		goto out;
	/* I2: the chunks are durable and visible before the manifest is. */
	if ((rc = put_commit(&c)) != 0)
		goto out;
	c.many = false;
	ths__mf_builder_finish(&mf);
	ths_hash mh;
	if ((rc = ths__sha256(mf.buf, mf.len, &mh)) != 0) {
		th_err_set(err, rc, "out of memory (hashing)");
		goto out;
	}
	if ((rc = put_object(&c, &mh, mf.buf, mf.len, true)) != 0 ||
	    (rc = put_commit(&c)) != 0)
		goto out;
	*out = mh;
	if (size_out)
		*size_out = mf.total;
out:
	ths__hasher_free(hs); /* before the window it reads can go away */
	if (c.batch)
		s->be->ops->batch_abort(c.batch);
	ths__hmap_release(&c.staged);
	ths__mf_builder_release(&mf);
	ths__unlock(lockfd);
	return rc;
}

int ths_put(ths_store *s, const void *data, size_t len, ths_hash *out,
	    th_err *err)
{
	if (!data && len)
		return th_err_set(err, TH_EINVAL, "put: NULL data");
	struct put_src src = { .fd = -1, .base = data ? data : (const uint8_t *)"",
			       .end = len, .eof = true };
	return put_run(s, &src, len, NULL, NULL, out, NULL, err);
}

int ths_put_fd(ths_store *s, int fd, uint64_t total_hint,
	       ths_progress_fn progress, void *ud, ths_hash *out,
	       uint64_t *size_out, th_err *err)
{
	struct put_src src = { .fd = fd };
	src.buf = th_malloc(PUT_BUF);
	if (!src.buf)
		return th_err_set(err, TH_ENOMEM, "out of memory (put window)");
	src.base = src.buf;
	int rc = put_run(s, &src, total_hint, progress, ud, out, size_out, err);
	th_free(src.buf);
	return rc;
}

/* ---- Get ---------------------------------------------------------------------- */

int ths__load(ths_store *s, const ths_hash *h, bool cache_it, ths__cobj **out,
	      th_err *err)
{
	ths__cobj *o = ths__cache_get(&s->cache, h);
	if (o) {
		*out = o;
		return 0;
	}
	uint8_t *buf;
	size_t len;
	int rc = s->be->ops->read(s->be, h, OBJECT_MAX, &buf, &len, err);
	if (rc)
		return rc;
	ths_hash got;
	if ((rc = ths__sha256(buf, len, &got)) != 0) {
		th_free(buf);
		return th_err_set(err, rc, "out of memory (hashing)");
	}
	if (memcmp(got.b, h->b, THS_HASH_LEN) != 0) {
		char where[4200], hex[THS_HEX_LEN + 1];
		s->be->ops->where(s->be, h, where, sizeof where);
		ths_hash_hex(&got, hex);
		th_free(buf);
		return th_err_set(err, TH_ECORRUPT,
				  "object %s is corrupt: its %zu bytes hash to %s",
				  where, len, hex);
	}
	o = ths__cobj_new(h, buf, len);
	if (!o)
		return th_err_set(err, TH_ENOMEM, "out of memory (object)");
	if (cache_it)
		ths__cache_put(&s->cache, o);
	*out = o;
	return 0;
}

int ths__as_manifest(const uint8_t *p, size_t n, ths__manifest *mf,
		     th_err *err)
{
	if (!ths__mf_has_magic(p, n))
		return 0;
	th_err perr = { 0 };
	int rc = ths__mf_parse(p, n, mf, &perr);
	if (rc == TH_ENOMEM)
		return th_err_set(err, rc, "out of memory (manifest)");
	return rc == 0 ? 1 : 0;
}

struct ths_reader {
	ths_store *s;
	ths_hash hash;
	ths__manifest mf;
	bool chunked;
	bool cache_chunks;
	ths__cobj *cur;      /* the whole object, or the current chunk */
	size_t cur_pos;
	size_t idx;          /* next chunk to load */
	size_t prefetched;   /* chunks below this have been prefetched */
	uint64_t total;
	/* Verify pipeline (big content, see reader_next_chunk): chunks
	 * [idx, sent) are read and queued on hs for hashing; reading chunk
	 * ahead_at failed with ahead_rc / ahead_err, reported when the
	 * reader gets there. */
	ths__hasher *hs;
	size_t sent, ahead_at;
	int ahead_rc;
	th_err ahead_err;
};

int ths_reader_open(ths_store *s, const ths_hash *h, ths_reader **out,
		    th_err *err)
{
	ths_reader *r = th_calloc(1, sizeof *r);
	if (!r)
		return th_err_set(err, TH_ENOMEM, "out of memory (reader)");
	r->s = s;
	r->hash = *h;
	ths__cobj *o = NULL;
	int rc = ths__load(s, h, true, &o, err);
	if (rc)
		goto fail;
	rc = ths__as_manifest(o->data, o->len, &r->mf, err);
	if (rc < 0)
		goto fail;
	if (rc == 1) {
		r->chunked = true;
		r->total = r->mf.total;
		/* Scan resistance: a big object streams past the cache. */
		r->cache_chunks = r->total <= s->cache.budget / 8;
		ths__cobj_release(o);
		/* Big content streaming past the cache is hashed on a helper
		 * thread while the next chunks are read. */
		if (!r->cache_chunks && r->total >= PUT_WINDOW &&
		    !s->single_thread) {
			r->hs = ths__hasher_new(true);
			if (!r->hs) {
				rc = th_err_set(err, TH_ENOMEM,
						"out of memory (reader)");
				ths__mf_release(&r->mf);
				o = NULL;
				goto fail;
			}
		}
	} else {
		r->cur = o;
		r->total = o->len;
	}
	*out = r;
	return 0;
fail:
	ths__cobj_release(o);
	th_free(r);
	return rc;
}

uint64_t ths_reader_size(const ths_reader *r)
{
	return r->total;
}

/* Reads chunks ahead into the verify pipeline, up to GET_AHEAD. */
static void reader_fill(ths_reader *r)
{
	ths__backend *be = r->s->be;
	while (!r->ahead_rc && r->sent < r->mf.n &&
	       ths__hasher_pending(r->hs) < GET_AHEAD) {
		size_t ra_end = r->sent + 1 + r->s->readahead;
		if (ra_end > r->mf.n)
			ra_end = r->mf.n;
		if (r->prefetched < r->sent + 1)
			r->prefetched = r->sent + 1;
		for (; r->prefetched < ra_end; r->prefetched++) {
			be->ops->prefetch(be, &r->mf.chunks[r->prefetched].hash);
			atomic_fetch_add(&r->s->n_readahead, 1);
		}
		uint8_t *buf;
		size_t len;
		r->ahead_rc = be->ops->read(be, &r->mf.chunks[r->sent].hash,
					    OBJECT_MAX, &buf, &len,
					    &r->ahead_err);
		if (r->ahead_rc) {
			r->ahead_at = r->sent;
			break;
		}
		ths__hasher_submit(r->hs, buf, len);
		r->sent++;
	}
}

/* The next chunk from the verify pipeline, checked against the manifest
 * (what ths__load does inline for other readers). */
static int reader_take(ths_reader *r, ths__cobj **out, th_err *err)
{
	const struct ths__mf_chunk *c = &r->mf.chunks[r->idx];
	reader_fill(r);
	struct ths__hjob j;
	if (!ths__hasher_take(r->hs, true, &j)) {
		/* Nothing queued: reading chunk idx (= ahead_at) failed. */
		if (err)
			*err = r->ahead_err;
		return r->ahead_rc;
	}
	uint8_t *buf = (uint8_t *)j.p; /* ours: read by reader_fill */
	if (j.rc) {
		th_free(buf);
		return th_err_set(err, j.rc, "out of memory (hashing)");
	}
	if (memcmp(j.hash.b, c->hash.b, THS_HASH_LEN) != 0) {
		char where[4200], hex[THS_HEX_LEN + 1];
		r->s->be->ops->where(r->s->be, &c->hash, where, sizeof where);
		ths_hash_hex(&j.hash, hex);
		th_free(buf);
		return th_err_set(err, TH_ECORRUPT, "object %s is corrupt: "
				  "its %zu bytes hash to %s", where, j.n, hex);
	}
	if (!(*out = ths__cobj_new(&c->hash, buf, j.n)))
		return th_err_set(err, TH_ENOMEM, "out of memory (object)");
	return 0;
}

/* The next chunk through the cache, hashed inline. */
static int reader_load(ths_reader *r, ths__cobj **out, th_err *err)
{
	ths_store *s = r->s;
	/* Read-ahead: ask the backend for the next chunks while this one is
	 * hashed and consumed. */
	size_t ra_end = r->idx + 1 + s->readahead;
	if (ra_end > r->mf.n)
		ra_end = r->mf.n;
	if (r->prefetched < r->idx + 1)
		r->prefetched = r->idx + 1;
	for (; r->prefetched < ra_end; r->prefetched++) {
		s->be->ops->prefetch(s->be, &r->mf.chunks[r->prefetched].hash);
		atomic_fetch_add(&s->n_readahead, 1);
	}
	return ths__load(s, &r->mf.chunks[r->idx].hash, r->cache_chunks, out,
			 err);
}

static int reader_next_chunk(ths_reader *r, th_err *err)
{
	ths_store *s = r->s;
	const struct ths__mf_chunk *c = &r->mf.chunks[r->idx];
	ths__cobj *o = NULL;
	int rc = r->hs ? reader_take(r, &o, err) : reader_load(r, &o, err);
	if (rc == 0 && o->len != c->size) {
		char where[4200];
		s->be->ops->where(s->be, &c->hash, where, sizeof where);
		rc = th_err_set(err, TH_ECORRUPT, "chunk has %zu bytes, "
				"manifest says %u", o->len, (unsigned)c->size);
		ths__cobj_release(o);
	}
	if (rc) {
		char hex[THS_HEX_LEN + 1];
		ths_hash_hex(&r->hash, hex);
		return th_err_prefix(err, "chunk %zu of %s (content bytes "
				     "%llu..%llu)", r->idx, hex,
				     (unsigned long long)c->offset,
				     (unsigned long long)(c->offset + c->size));
	}
	r->cur = o;
	r->cur_pos = 0;
	r->idx++;
	return 0;
}

int ths_reader_read(ths_reader *r, void *buf, size_t n, size_t *got,
		    th_err *err)
{
	size_t done = 0;
	while (done < n) {
		if (!r->cur || r->cur_pos == r->cur->len) {
			if (!r->chunked || r->idx == r->mf.n)
				break;
			ths__cobj_release(r->cur);
			r->cur = NULL;
			int rc = reader_next_chunk(r, err);
			if (rc) {
				*got = done;
				return rc;
			}
		}
		size_t take = r->cur->len - r->cur_pos;
		if (take > n - done)
			take = n - done;
		memcpy((uint8_t *)buf + done, r->cur->data + r->cur_pos, take);
		r->cur_pos += take;
		done += take;
	}
	*got = done;
	return 0;
}

void ths_reader_close(ths_reader *r)
{
	if (!r)
		return;
	struct ths__hjob j;
	while (r->hs && ths__hasher_take(r->hs, true, &j))
		th_free((uint8_t *)j.p); /* read ahead, never consumed */
	ths__hasher_free(r->hs);
	ths__cobj_release(r->cur);
	ths__mf_release(&r->mf);
	th_free(r);
}

int ths_get(ths_store *s, const ths_hash *h, size_t max, uint8_t **data,
	    size_t *len, th_err *err)
{
	ths_reader *r;
	uint8_t *buf = NULL;
	int rc = ths_reader_open(s, h, &r, err);
	if (rc)
		return rc;
	if (r->total > max) {
		char hex[THS_HEX_LEN + 1];
		ths_hash_hex(h, hex);
		rc = th_err_set(err, TH_ELIMIT, "content %s is %llu bytes "
				"(limit %zu)", hex, (unsigned long long)r->total,
				max);
		goto out;
	}
	buf = th_malloc((size_t)r->total);
	if (!buf) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (%llu bytes)",
				(unsigned long long)r->total);
		goto out;
	}
	size_t got;
	if ((rc = ths_reader_read(r, buf, (size_t)r->total, &got, err)) != 0)
		goto out;
	*data = buf;
	*len = got;
	buf = NULL;
out:
	th_free(buf);
	ths_reader_close(r);
	return rc;
}

int ths_get_fd(ths_store *s, const ths_hash *h, int fd,
	       ths_progress_fn progress, void *ud, th_err *err)
{
	ths_reader *r;
	int rc = ths_reader_open(s, h, &r, err);
	if (rc)
		return rc;
	size_t cap = THS_CHUNK_MAX;
	uint8_t *buf = th_malloc(cap);
	uint64_t done = 0;
	if (!buf) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory (get buffer)");
		goto out;
	}
	for (;;) {
		size_t got;
		if ((rc = ths_reader_read(r, buf, cap, &got, err)) != 0 || !got)
			break;
		for (size_t off = 0; off < got;) {
			ssize_t w = write(fd, buf + off, got - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = th_err_set(err, ths__errno_code(errno),
						"cannot write output: %s",
						strerror(errno));
				goto out;
			}
			off += (size_t)w;
		}
		done += got;
		if (progress)
			progress(ud, done, r->total);
	}
out:
	th_free(buf);
	ths_reader_close(r);
	return rc;
}

int ths_exists(ths_store *s, const ths_hash *h, th_err *err)
{
	struct ths__obj_info info;
	int rc = s->be->ops->stat(s->be, h, &info, err);
	if (rc == TH_ENOTFOUND) {
		if (err)
			err->code = 0;
		return 0;
	}
	return rc ? rc : 1;
}

int ths_size(ths_store *s, const ths_hash *h, uint64_t *size, th_err *err)
{
	ths_reader *r;
	int rc = ths_reader_open(s, h, &r, err);
	if (rc)
		return rc;
	*size = r->total;
	ths_reader_close(r);
	return 0;
}

/* ---- Pins and statistics -------------------------------------------------------- */

int ths_pin(ths_store *s, const ths_hash *h, th_err *err)
{
	ths__hval *v;
	pthread_mutex_lock(&s->mu);
	int rc = ths__hmap_upsert(&s->pins, h, &v);
	if (rc >= 0)
		v->n++;
	pthread_mutex_unlock(&s->mu);
	return rc < 0 ? th_err_set(err, TH_ENOMEM, "out of memory (pin)") : 0;
}

int ths_unpin(ths_store *s, const ths_hash *h, th_err *err)
{
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	ths__hval *v = ths__hmap_find(&s->pins, h);
	if (!v) {
		char hex[THS_HEX_LEN + 1];
		ths_hash_hex(h, hex);
		rc = th_err_set(err, TH_ENOTFOUND, "%s is not pinned", hex);
	} else if (--v->n == 0) {
		ths__hmap_del(&s->pins, h);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void ths_get_stats(ths_store *s, ths_stats *out)
{
	memset(out, 0, sizeof *out);
	ths__cache_stats(&s->cache, &out->cache_hits, &out->cache_misses,
			 &out->cache_evictions, &out->cache_bytes);
	out->cache_budget = s->cache.budget;
	out->readahead = atomic_load(&s->n_readahead);
	out->objects_written = atomic_load(&s->n_written);
	out->bytes_written = atomic_load(&s->b_written);
	pthread_mutex_lock(&s->mu);
	out->pins = s->pins.count;
	pthread_mutex_unlock(&s->mu);
}
