/*
 * log.c - segment files and group commit.
 *
 * Appenders insert finished records into one in-memory buffer under
 * l->mu (a memcpy: hashing and encoding happened before, outside any
 * store-wide lock). Each record's position (segment slot, offset) is fixed
 * at insertion, so the chain's index can point at it before it reaches
 * the disk. A record never spans segments: when it would cross seg_max, a
 * new segment begins, and a "split" marks where in the buffer its 32-byte
 * header starts.
 *
 * Writing is done by one leader at a time (l->writing). A thread that
 * needs its records written (or fsynced) and finds no leader becomes one:
 * it swaps the buffer with the spare, drops the lock, writes everything
 * (creating new segment files at splits), fsyncs if asked, retakes the lock
 * and publishes wr_lsn / sync_lsn. Meanwhile other appenders keep
 * inserting into the fresh buffer and `always` appenders wait on l->cv;
 * the next leader writes all of them with one fsync. That is group commit:
 * the number of fsyncs follows the disk's speed, not the append rate.
 *
 * LSNs count bytes inserted since open. Invariants (under l->mu):
 *   sync_lsn <= wr_lsn <= ins_lsn;  wr_lsn + len(buf) + len(wbuf) == ins_lsn
 *   while a leader writes, len(buf) counts only bytes inserted after swap.
 * A write error (full disk ...) truncates the segment back to its size
 * before the write, so no partial record stays behind, and makes the log
 * refuse all further work (l->failed) until the store is reopened: the
 * records that were lost were never acknowledged as durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain/internal.h"

_Atomic long long thx__fault_write_budget = -1;

int thx__log_init(thx__log *l, const char *dir, bool read_only,
		  uint64_t seg_max, th_err *err)
{
	memset(l, 0, sizeof *l);
	l->dirfd = -1;
	l->read_only = read_only;
	l->seg_max = seg_max;
	l->next_segno = 1;
	l->dir = th_strdup(dir);
	if (!l->dir)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0) {
		int e = errno;
		th_free(l->dir);
		l->dir = NULL;
		return th_err_set(err, TH_EIO, "open %s: %s", dir, strerror(e));
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	return 0;
}

void thx__log_release(thx__log *l)
{
	if (!l->dir)
		return;
	for (uint32_t i = 0; i < l->nslots; i++) {
		thx__seg *s = l->segs[i];
		if (!s)
			continue;
		if (s->fd >= 0)
			close(s->fd);
		pthread_rwlock_destroy(&s->lk);
		th_free(s);
	}
	th_free(l->buf);
	th_free(l->wbuf);
	th_free(l->splits);
	th_free(l->wsplits);
	if (l->dirfd >= 0)
		close(l->dirfd);
	th_free(l->dir);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	memset(l, 0, sizeof *l);
}

thx__seg *thx__log_seg(thx__log *l, uint32_t slot)
{
	return slot < atomic_load(&l->nslots) ? l->segs[slot] : NULL;
}

static thx__seg *seg_new(thx__log *l, uint32_t segno, uint32_t version, th_err *err)
{
	uint32_t slot = atomic_load(&l->nslots);
	if (slot >= THX__MAX_SEGS) {
		th_err_set(err, TH_ELIMIT, "chain store %s: more than %d segment files",
			   l->dir, THX__MAX_SEGS);
		return NULL;
	}
	thx__seg *s = th_calloc(1, sizeof *s);
	if (!s) {
		th_err_set(err, TH_ENOMEM, "out of memory");
		return NULL;
	}
	s->slot = slot;
	s->segno = segno;
	s->version = version;
	s->fd = -1;
	snprintf(s->name, sizeof s->name, "seg-%08u.%u.log", segno, version);
	pthread_rwlock_init(&s->lk, NULL);
	return s;
}

static void seg_publish(thx__log *l, thx__seg *s)
{
	l->segs[s->slot] = s;
	atomic_store(&l->nslots, s->slot + 1);
	if (s->segno >= l->next_segno)
		l->next_segno = s->segno + 1;
}

int thx__log_adopt(thx__log *l, uint32_t segno, uint32_t version, int fd,
		   uint64_t size, thx__seg **out, th_err *err)
{
	pthread_mutex_lock(&l->mu);
	thx__seg *s = seg_new(l, segno, version, err);
	if (s) {
		s->fd = fd;
		atomic_store(&s->size, size);
		s->sealed = true;
		seg_publish(l, s);
		l->nsegments++;
	}
	pthread_mutex_unlock(&l->mu);
	if (!s)
		return err ? err->code : TH_ENOMEM;
	*out = s;
	return 0;
}

void thx__log_resume(thx__log *l, thx__seg *seg)
{
	pthread_mutex_lock(&l->mu);
	if (!l->read_only && atomic_load(&seg->size) < l->seg_max) {
		seg->sealed = false;
		l->ins = l->wr = seg;
		l->ins_off = atomic_load(&seg->size);
	}
	pthread_mutex_unlock(&l->mu);
}

uint64_t thx__log_ins_lsn(thx__log *l)
{
	pthread_mutex_lock(&l->mu);
	uint64_t v = l->ins_lsn;
	pthread_mutex_unlock(&l->mu);
	return v;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	size_t bytes;
	if (!th_mul_ok(c, elem, &bytes))
		return false;
	void *n = th_realloc(*p, bytes);
	if (!n)
		return false;
	*p = n;
	*cap = c;
	return true;
}

static int failed_err(thx__log *l, th_err *err)
{
	return th_err_set(err, l->failed, "%s (the chain store refuses writes until reopened)",
			  l->failmsg);
}

int thx__log_put(thx__log *l, const uint8_t *recs, const size_t *lens, size_t n,
		 uint32_t *slot, uint64_t *off, uint64_t *lsn, int *flush_now,
		 th_err *err)
{
	thx__seg *fresh[4] = { 0 };
	size_t nfresh = 0, total = 0;
	int rc = 0;

	if (n > TH_ARRAY_LEN(fresh))
		return th_err_set(err, TH_EINVAL, "too many records in one insert");
	pthread_mutex_lock(&l->mu);
	if (l->failed) {
		rc = failed_err(l, err);
		goto out;
	}
	if (l->read_only) {
		rc = th_err_set(err, TH_ESTATE, "chain store %s is open read-only", l->dir);
		goto out;
	}
	/* Dry run: which records start a new segment. Allocate everything
	 * before inserting anything, so a failure leaves no trace. */
	uint64_t o = l->ins ? l->ins_off : 0;
	bool have = l->ins != NULL;
	uint32_t next_segno = l->next_segno;
	for (size_t i = 0; i < n; i++) {
		if (!have || (o + lens[i] > l->seg_max && o > THX__SEG_HDR)) {
			thx__seg *s = seg_new(l, next_segno++, 0, err);
			if (!s) {
				rc = err ? err->code : TH_ENOMEM;
				goto undo;
			}
			/* reserve the slot so the next seg_new gets another */
			s->slot += (uint32_t)nfresh;
			fresh[nfresh++] = s;
			o = THX__SEG_HDR;
			have = true;
			total += THX__SEG_HDR;
		}
		o += lens[i];
		total += lens[i];
	}
	if (atomic_load(&l->nslots) + nfresh > THX__MAX_SEGS) {
		rc = th_err_set(err, TH_ELIMIT, "chain store: too many segment files");
		goto undo;
	}
	if (!grow((void **)&l->buf, &l->cap, l->len + total, 1) ||
	    !grow((void **)&l->splits, &l->splitcap, l->nsplits + nfresh,
		  sizeof *l->splits)) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto undo;
	}
	{
		size_t k = 0;
		const uint8_t *p = recs;
		for (size_t i = 0; i < n; i++) {
			if (!l->ins || (l->ins_off + lens[i] > l->seg_max &&
					l->ins_off > THX__SEG_HDR)) {
				thx__seg *s = fresh[k++];
				seg_publish(l, s);
				l->nsegments++;
				l->splits[l->nsplits].at = l->len;
				l->splits[l->nsplits++].seg = s;
				thx__seg_header(l->buf + l->len, s->segno, s->version);
				l->len += THX__SEG_HDR;
				l->ins = s;
				l->ins_off = THX__SEG_HDR;
			}
			memcpy(l->buf + l->len, p, lens[i]);
			slot[i] = l->ins->slot;
			off[i] = l->ins_off;
			l->len += lens[i];
			l->ins_off += lens[i];
			p += lens[i];
		}
		l->ins_lsn += total;
		*lsn = l->ins_lsn;
		*flush_now = l->len >= (64u << 20) ? 2 : l->len >= (4u << 20) ? 1 : 0;
	}
	pthread_mutex_unlock(&l->mu);
	return 0;
undo:
	for (size_t i = 0; i < nfresh; i++) {
		pthread_rwlock_destroy(&fresh[i]->lk);
		th_free(fresh[i]);
	}
out:
	pthread_mutex_unlock(&l->mu);
	return rc;
}

/* Write n bytes at the end of s, all or nothing (a failure truncates back). */
static int seg_write(thx__log *l, thx__seg *s, const uint8_t *p, size_t n,
		     char *msg, size_t msgcap)
{
	uint64_t start = atomic_load(&s->size), at = start;
	size_t left = n;
	while (left > 0) {
		size_t chunk = left;
		long long budget = atomic_load(&thx__fault_write_budget);
		int fault = 0;
		if (budget >= 0) {
			if ((long long)chunk > budget) {
				chunk = (size_t)budget;
				fault = ENOSPC;
			}
			atomic_store(&thx__fault_write_budget, budget - (long long)chunk);
		}
		ssize_t w = chunk ? pwrite(s->fd, p, chunk, (off_t)at) : 0;
		if (w < 0 && errno == EINTR)
			continue;
		if (w > 0) {
			p += w;
			at += (uint64_t)w;
			left -= (size_t)w;
		}
		if (w < 0 || fault || (w == 0 && left > 0)) {
			int e = w < 0 ? errno : fault ? fault : ENOSPC;
			snprintf(msg, msgcap, "writing %s/%s at offset %llu: %s", l->dir,
				 s->name, (unsigned long long)at, strerror(e));
			if (ftruncate(s->fd, (off_t)start) != 0) {
				/* Recovery truncates the torn tail at the next open. */
			}
			return e == ENOSPC || e == EDQUOT ? TH_ENOSPC : TH_EIO;
		}
	}
	atomic_store(&s->size, at);
	return 0;
}

static int seg_sync(thx__log *l, thx__seg *s, char *msg, size_t msgcap)
{
	if (fdatasync(s->fd) != 0) {
		snprintf(msg, msgcap, "fsync %s/%s: %s", l->dir, s->name, strerror(errno));
		return TH_EIO;
	}
	l->fsyncs++;
	return 0;
}

static int seg_create(thx__log *l, thx__seg *s, char *msg, size_t msgcap)
{
	s->fd = openat(l->dirfd, s->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (s->fd < 0) {
		int e = errno;
		snprintf(msg, msgcap, "creating %s/%s: %s", l->dir, s->name, strerror(e));
		return e == ENOSPC || e == EDQUOT ? TH_ENOSPC : TH_EIO;
	}
	if (fsync(l->dirfd) != 0) {
		snprintf(msg, msgcap, "fsync %s: %s", l->dir, strerror(errno));
		return TH_EIO;
	}
	return 0;
}

/* The leader's work: wbuf[0..n) with nsplits new-segment points. */
static int write_out(thx__log *l, size_t n, size_t nsplits, bool sync, char *msg,
		     size_t msgcap)
{
	size_t pos = 0;
	int rc;
	for (size_t j = 0; j <= nsplits; j++) {
		size_t end = j < nsplits ? l->wsplits[j].at : n;
		if (end > pos) {
			if ((rc = seg_write(l, l->wr, l->wbuf + pos, end - pos, msg, msgcap)))
				return rc;
			l->writes++;
			l->bytes_written += end - pos;
		}
		pos = end;
		if (j == nsplits)
			break;
		/* Seal the segment being left: its records must be durable
		 * before anything after them is. */
		if (l->wr && (rc = seg_sync(l, l->wr, msg, msgcap)))
			return rc;
		if ((rc = seg_create(l, l->wsplits[j].seg, msg, msgcap)))
			return rc;
		l->wr = l->wsplits[j].seg;
	}
	if (sync && l->wr)
		return seg_sync(l, l->wr, msg, msgcap);
	return 0;
}

int thx__log_commit(thx__log *l, uint64_t lsn, bool sync, th_err *err)
{
	int rc = 0;
	char msg[TH_ERR_MSG_MAX];
	pthread_mutex_lock(&l->mu);
	for (;;) {
		if (l->failed) {
			rc = failed_err(l, err);
			break;
		}
		if ((sync ? l->sync_lsn : l->wr_lsn) >= lsn)
			break;
		if (l->writing) {
			pthread_cond_wait(&l->cv, &l->mu);
			continue;
		}
		l->writing = true;
		uint8_t *tb = l->buf;
		size_t tc = l->cap;
		l->buf = l->wbuf;
		l->cap = l->wcap;
		l->wbuf = tb;
		l->wcap = tc;
		size_t n = l->len;
		l->len = 0;
		struct thx__split *ts = l->splits;
		size_t tsc = l->splitcap;
		l->splits = l->wsplits;
		l->splitcap = l->wsplitcap;
		l->wsplits = ts;
		l->wsplitcap = tsc;
		size_t nsplits = l->nsplits;
		l->nsplits = 0;
		uint64_t end = l->ins_lsn;
		pthread_mutex_unlock(&l->mu);

		msg[0] = '\0';
		int wrc = write_out(l, n, nsplits, sync, msg, sizeof msg);

		pthread_mutex_lock(&l->mu);
		l->writing = false;
		if (wrc) {
			l->failed = wrc;
			snprintf(l->failmsg, sizeof l->failmsg, "%s", msg);
		} else {
			l->wr_lsn = end;
			if (sync)
				l->sync_lsn = end;
			for (uint32_t i = 0; i < atomic_load(&l->nslots); i++)
				if (l->segs[i] && l->segs[i] != l->ins && l->segs[i] != l->wr &&
				    !l->segs[i]->sealed)
					l->segs[i]->sealed = true;
		}
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int thx__log_read(thx__log *l, uint32_t slot, uint64_t off, uint8_t **rec,
		  size_t *len, th_err *err)
{
	thx__seg *s = thx__log_seg(l, slot);
	uint8_t hdr[THX__REC_HDR];
	int rc;
	*rec = NULL;
	if (!s)
		return th_err_set(err, TH_EINVAL, "no segment in slot %u", slot);
	if (off + THX__REC_HDR > atomic_load(&s->size)) {
		/* Still in the buffer: write it out (no fsync needed to read). */
		if ((rc = thx__log_commit(l, thx__log_ins_lsn(l), false, err)))
			return rc;
	}
	pthread_rwlock_rdlock(&s->lk);
	if (s->fd < 0) {
		pthread_rwlock_unlock(&s->lk);
		return th_err_set(err, TH_ESTATE, "%s was replaced by compaction", s->name);
	}
	ssize_t r = pread(s->fd, hdr, sizeof hdr, (off_t)off);
	long plen = r == (ssize_t)sizeof hdr ? thx__hdr_len(hdr) : -1;
	if (plen < 0) {
		pthread_rwlock_unlock(&s->lk);
		return th_err_set(err, TH_ECORRUPT, "%s/%s offset %llu: no valid record header",
				  l->dir, s->name, (unsigned long long)off);
	}
	uint8_t *b = th_malloc(THX__REC_HDR + (size_t)plen);
	if (!b) {
		pthread_rwlock_unlock(&s->lk);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	memcpy(b, hdr, sizeof hdr);
	r = pread(s->fd, b + THX__REC_HDR, (size_t)plen, (off_t)(off + THX__REC_HDR));
	pthread_rwlock_unlock(&s->lk);
	if (r != plen) {
		th_free(b);
		return th_err_set(err, TH_ECORRUPT, "%s/%s offset %llu: record truncated",
				  l->dir, s->name, (unsigned long long)off);
	}
	*rec = b;
	*len = THX__REC_HDR + (size_t)plen;
	if (!thx__rec_crc_ok(b, (uint32_t)plen))
		return th_err_set(err, TH_ECORRUPT, "%s/%s offset %llu: record checksum mismatch",
				  l->dir, s->name, (unsigned long long)off);
	return 0;
}
