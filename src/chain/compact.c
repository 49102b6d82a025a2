/*
 * compact.c - reclaiming the space of pruned events.
 *
 * Pruning only marks events (and writes a prune record); their bytes stay
 * in the segments. Compaction rewrites one sealed segment at a time: every
 * record is copied in order, except that an event record of a pruned event
 * becomes a stub (the same chain number and event hash, and the event's
 * parent, actor, seq, timestamp and type, without data or description).
 *
 *   1. write seg-N.(v+1).log.tmp, fsync it
 *   2. rename it to seg-N.(v+1).log, fsync the directory
 *      (from here recovery prefers version v+1 and deletes version v)
 *   3. register the new file in a new slot; repoint each moved event and
 *      block, one chain at a time under that chain's lock
 *   4. mark the old slot dead, close its descriptor once no reader holds
 *      it (seg->lk), unlink it
 *
 * Appends never wait for this: they only touch the open segment, which is
 * never compacted, and each chain lock is held only while its entries are
 * repointed. A reader that raced with step 4 sees the dead slot and looks
 * its entry up again (thx__read_event). Segments with damage are left
 * alone, so verification can still report the damage where it was found.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chain/internal.h"

typedef struct moved {
	uint32_t no;
	bool block;
	uint64_t key; /* seq, or block index */
	uint64_t old_off, new_off;
} moved;

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int moved_cmp(const void *a, const void *b)
{
	const moved *x = a, *y = b;
	if (x->no != y->no)
		return x->no < y->no ? -1 : 1;
	return 0;
}

/* Rewrite one segment. *reclaimed += bytes saved. */
static int compact_one(thx_store *s, thx__seg *seg, const uint64_t *below,
		       uint32_t nbelow, uint64_t *reclaimed, th_err *err)
{
	thx__log *l = &s->log;
	uint64_t size = atomic_load(&seg->size);
	uint64_t garbage0 = atomic_load(&seg->garbage);
	char tmp[80], final[48];
	uint8_t *m = MAP_FAILED;
	int fd = -1, rc = 0;
	moved *mv = NULL;
	size_t nmv = 0, capmv = 0;
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);

	snprintf(final, sizeof final, "seg-%08u.%u.log", seg->segno, seg->version + 1);
	snprintf(tmp, sizeof tmp, "%s.tmp", final);
	if (size <= THX__SEG_HDR)
		return 0;
	m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, seg->fd, 0);
	if (m == MAP_FAILED)
		return th_err_set(err, TH_EIO, "mmap %s: %s", seg->name, strerror(errno));
	/* Damaged segments are left as they are. */
	for (size_t pos = THX__SEG_HDR; pos < size;) {
		long pl = size - pos >= THX__REC_HDR ? thx__hdr_len(m + pos) : -1;
		if (pl < 0 || (size_t)pl > size - pos - THX__REC_HDR ||
		    !thx__rec_crc_ok(m + pos, (uint32_t)pl))
			goto out;
		pos += THX__REC_HDR + (size_t)pl;
	}
	fd = openat(l->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = th_err_set(err, TH_EIO, "create %s/%s: %s", s->dir, tmp, strerror(errno));
		goto out;
	}
	uint8_t hdr[THX__SEG_HDR];
	thx__seg_header(hdr, seg->segno, seg->version + 1);
	th_cbor_put_raw(&e, hdr, sizeof hdr);
	for (size_t pos = THX__SEG_HDR; pos < size;) {
		const uint8_t *r = m + pos;
		size_t n = thx__le32(r + 4);
		const uint8_t *p = r + THX__REC_HDR;
		uint8_t type = r[8];
		uint64_t new_off = e.len;
		uint32_t no = n >= 4 ? thx__le32(p) : UINT32_MAX;
		bool track = (type == THX__REC_EVENT || type == THX__REC_STUB ||
			      type == THX__REC_BLOCK) && n >= 36;
		uint64_t key = 0;
		thx__ev ev;
		bool stubbed = false;
		if (track && type == THX__REC_BLOCK) {
			thx_block b;
			const char *nm;
			size_t nl;
			if (thx__dec_block(p + 36, n - 36, &b, &nm, &nl, NULL))
				track = false;
			key = b.index;
		} else if (track) {
			int d = type == THX__REC_EVENT ? thx__dec_event(p + 36, n - 36, &ev, NULL)
						       : thx__dec_stub(p + 36, n - 36, &ev, NULL);
			if (d)
				track = false;
			key = ev.seq;
			if (!d && type == THX__REC_EVENT && no < nbelow && ev.seq < below[no]) {
				/* the stub: header | no | hash | stub CBOR */
				size_t at = e.len;
				th_cbor_put_raw(&e, r, THX__REC_HDR + 36);
				char actor[THX_NAME_MAX + 1], etype[THX_NAME_MAX + 1];
				memcpy(actor, ev.actor, ev.actor_len);
				actor[ev.actor_len] = '\0';
				memcpy(etype, ev.type, ev.type_len);
				etype[ev.type_len] = '\0';
				thx__enc_stub(&e, ev.has_parent ? ev.parent : NULL, actor, ev.seq,
					      ev.ts, etype, ev.data_len);
				if (!e.err)
					thx__frame(e.buf + at, THX__REC_STUB,
						   (uint32_t)(e.len - at - THX__REC_HDR));
				stubbed = true;
			}
		}
		if (!stubbed)
			th_cbor_put_raw(&e, r, THX__REC_HDR + n);
		if (track) {
			if (nmv == capmv) {
				size_t cap = capmv ? capmv * 2 : 256;
				moved *a = th_realloc(mv, cap * sizeof *a);
				if (!a) {
					rc = th_err_set(err, TH_ENOMEM, "out of memory");
					goto out;
				}
				mv = a;
				capmv = cap;
			}
			mv[nmv++] = (moved){ no, type == THX__REC_BLOCK, key, pos, new_off };
		}
		pos += THX__REC_HDR + n;
		if (e.err) {
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (write_all(fd, e.buf, e.len) != 0 || fsync(fd) != 0) {
		int er = errno;
		rc = th_err_set(err, er == ENOSPC ? TH_ENOSPC : TH_EIO, "writing %s/%s: %s",
				s->dir, tmp, strerror(er));
		goto out;
	}
	if (renameat(l->dirfd, tmp, l->dirfd, final) != 0 || fsync(l->dirfd) != 0) {
		rc = th_err_set(err, TH_EIO, "rename %s/%s: %s", s->dir, tmp, strerror(errno));
		goto out;
	}
	thx__seg *ns;
	if ((rc = thx__log_adopt(l, seg->segno, seg->version + 1, fd, e.len, &ns, err)))
		goto out; /* the file stays; recovery will use it */
	fd = -1;
	/* Repoint, chain by chain. */
	qsort(mv, nmv, sizeof *mv, moved_cmp);
	for (size_t i = 0; i < nmv;) {
		size_t j = i;
		while (j < nmv && mv[j].no == mv[i].no)
			j++;
		pthread_rwlock_rdlock(&s->lk);
		thx_chain *c = thx__chain_by_no(s, mv[i].no);
		pthread_rwlock_unlock(&s->lk);
		if (c) {
			pthread_mutex_lock(&c->mu);
			for (size_t k = i; k < j; k++) {
				if (mv[k].block) {
					if (mv[k].key < c->nblocks &&
					    c->blocks[mv[k].key].slot == seg->slot &&
					    c->blocks[mv[k].key].off == mv[k].old_off) {
						c->blocks[mv[k].key].slot = ns->slot;
						c->blocks[mv[k].key].off = mv[k].new_off;
					}
				} else if (mv[k].key < c->n && thx__ent_at(c, mv[k].key)->slot == seg->slot &&
					   thx__ent_at(c, mv[k].key)->off == mv[k].old_off) {
					thx__ent_at(c, mv[k].key)->slot = ns->slot;
					thx__ent_at(c, mv[k].key)->off = mv[k].new_off;
				}
			}
			pthread_mutex_unlock(&c->mu);
		}
		i = j;
	}
	uint64_t g = atomic_load(&seg->garbage);
	atomic_store(&ns->garbage, g > garbage0 ? g - garbage0 : 0);
	pthread_mutex_lock(&l->mu);
	seg->dead = true;
	pthread_mutex_unlock(&l->mu);
	pthread_rwlock_wrlock(&seg->lk);
	close(seg->fd);
	seg->fd = -1;
	pthread_rwlock_unlock(&seg->lk);
	unlinkat(l->dirfd, seg->name, 0);
	char in[64];
	thx__idx_name(seg, false, in, sizeof in);
	unlinkat(l->dirfd, in, 0); /* the new version gets its own */
	if (fsync(l->dirfd) != 0)
		rc = th_err_set(err, TH_EIO, "fsync %s: %s", s->dir, strerror(errno));
	if (reclaimed && size > e.len)
		*reclaimed += size - e.len;
	atomic_fetch_add(&s->compactions, 1);
out:
	if (fd >= 0) {
		close(fd);
		unlinkat(l->dirfd, tmp, 0);
	}
	munmap(m, size);
	th_cbor_enc_release(&e);
	th_free(mv);
	return rc;
}

int thx_compact(thx_store *s, uint64_t *reclaimed, th_err *err)
{
	thx__seg **segs = NULL;
	size_t n = 0;
	uint64_t *below = NULL;
	int rc = 0;
	if (reclaimed)
		*reclaimed = 0;
	if (s->opts.read_only)
		return th_err_set(err, TH_ESTATE, "chain store %s is open read-only", s->dir);
	pthread_mutex_lock(&s->compact_mu);
	if ((rc = thx__live_segs(s, &segs, &n, err)))
		goto out;
	pthread_rwlock_rdlock(&s->lk);
	uint32_t nb = s->next_no;
	thx_chain **bn = s->by_no;
	below = th_calloc(nb ? nb : 1, sizeof *below);
	thx_chain **cs = below ? th_malloc((nb ? nb : 1) * sizeof *cs) : NULL;
	if (cs && nb) /* by_no is NULL until the first chain */
		memcpy(cs, bn, nb * sizeof *cs);
	pthread_rwlock_unlock(&s->lk);
	if (!cs) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < nb; i++) {
		if (!cs[i])
			continue;
		pthread_mutex_lock(&cs[i]->mu);
		below[i] = cs[i]->prune_below;
		pthread_mutex_unlock(&cs[i]->mu);
	}
	th_free(cs);
	for (size_t i = 0; i < n && !rc; i++) {
		pthread_mutex_lock(&s->log.mu);
		bool eligible = segs[i]->sealed && !segs[i]->dead &&
				atomic_load(&segs[i]->garbage) > 0;
		pthread_mutex_unlock(&s->log.mu);
		if (eligible)
			rc = compact_one(s, segs[i], below, nb, reclaimed, err);
	}
out:
	pthread_mutex_unlock(&s->compact_mu);
	th_free(segs);
	th_free(below);
	return rc;
}
