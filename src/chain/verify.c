/*
 * verify.c - full verification of a chain store.
 *
 * Reads every segment sequentially (the fastest way through the disk and
 * the page cache) and, for each chain being checked, recomputes every
 * event hash from its canonical encoding, checks each parent link and
 * sequence number, and recomputes every block's Merkle root, previous-block
 * link and header hash. Pruned events (stubs) contribute their stored hash,
 * so a pruned chain still verifies end to end. Memory-only chains are
 * checked from memory the same way.
 *
 * Events appended while verification runs are outside its snapshot: the
 * number of events per chain is taken before the log is flushed, and
 * records beyond it are ignored.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chain/internal.h"

typedef struct vchain {
	thx_chain *c;
	uint64_t snap_n;     /* events to find */
	uint64_t next;       /* next seq expected */
	uint8_t last[32];
	uint8_t (*leaves)[32];
	size_t nleaves, cap;
	uint64_t block_index, block_start;
	uint8_t last_block[32];
	bool failed;
} vchain;

typedef struct vstate {
	thx_verify_report *r;
	vchain *vc;    /* by chain number */
	uint32_t nvc;
	bool all;
} vstate;

static void problem(vstate *st, vchain *v, uint64_t seq, const char *file,
		    uint64_t off, const char *fmt, ...) TH_PRINTF(6, 7);
static void problem(vstate *st, vchain *v, uint64_t seq, const char *file,
		    uint64_t off, const char *fmt, ...)
{
	if (v)
		v->failed = true;
	if (!st->r->ok)
		return;
	st->r->ok = false;
	snprintf(st->r->chain, sizeof st->r->chain, "%s", v ? v->c->name : "");
	st->r->seq = seq;
	snprintf(st->r->file, sizeof st->r->file, "%s", file);
	st->r->offset = off;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->r->what, sizeof st->r->what, fmt, ap);
	va_end(ap);
}

static bool add_leaf(vchain *v, const uint8_t h[32])
{
	if (v->nleaves == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		uint8_t (*a)[32] = th_realloc(v->leaves, cap * 32);
		if (!a)
			return false;
		v->leaves = a;
		v->cap = cap;
	}
	memcpy(v->leaves[v->nleaves++], h, 32);
	return true;
}

/* One event (full or stub). cbor NULL for stubs. */
static int check_event(vstate *st, vchain *v, const thx__ev *ev, const uint8_t *stored,
		       const uint8_t *cbor, size_t cbor_len, const char *file,
		       uint64_t off)
{
	if (ev->seq >= v->snap_n)
		return 0;
	if (v->failed) {
		v->next = ev->seq + 1;
		return 0;
	}
	if (ev->seq != v->next) {
		problem(st, v, v->next, file, off, ev->seq > v->next
			? "events %llu..%llu missing" : "event %llu repeated",
			(unsigned long long)(ev->seq > v->next ? v->next : ev->seq),
			(unsigned long long)ev->seq - 1);
		return 0;
	}
	if (ev->seq > 0 && (!ev->has_parent || memcmp(ev->parent, v->last, 32))) {
		problem(st, v, ev->seq, file, off, "parent hash does not match event %llu",
			(unsigned long long)ev->seq - 1);
		return 0;
	}
	if (ev->seq == 0 && ev->has_parent) {
		problem(st, v, 0, file, off, "first event has a parent");
		return 0;
	}
	if (cbor) {
		uint8_t h[32];
		thx__sha256(cbor, cbor_len, h);
		st->r->bytes += cbor_len;
		if (memcmp(h, stored, 32)) {
			problem(st, v, ev->seq, file, off, "event hash mismatch");
			return 0;
		}
	} else {
		st->r->pruned++;
	}
	memcpy(v->last, stored, 32);
	v->next++;
	st->r->events++;
	if (!add_leaf(v, stored))
		return TH_ENOMEM;
	return 0;
}

static void check_block(vstate *st, vchain *v, const thx_block *b, const char *chain,
			size_t chain_len, const uint8_t *stored, const char *file,
			uint64_t off)
{
	if (v->failed || b->first_seq >= v->snap_n)
		return;
	uint8_t root[32];
	thx_block h = *b;
	if (chain_len != strlen(v->c->name) || memcmp(chain, v->c->name, chain_len)) {
		problem(st, v, b->first_seq, file, off, "block %llu names another chain",
			(unsigned long long)b->index);
		return;
	}
	if (b->index != v->block_index || b->first_seq != v->block_start ||
	    b->count != v->nleaves) {
		problem(st, v, b->first_seq, file, off,
			"block %llu (events %llu..+%llu) does not follow block %llu",
			(unsigned long long)b->index, (unsigned long long)b->first_seq,
			(unsigned long long)b->count, (unsigned long long)v->block_index);
		return;
	}
	if (b->has_prev != (b->index > 0) ||
	    (b->has_prev && memcmp(b->prev, v->last_block, 32))) {
		problem(st, v, b->first_seq, file, off, "block %llu: previous-block hash broken",
			(unsigned long long)b->index);
		return;
	}
	thx__merkle_root((const uint8_t (*)[32])v->leaves, v->nleaves, root);
	if (memcmp(root, b->merkle_root, 32)) {
		problem(st, v, b->first_seq, file, off, "block %llu: Merkle root mismatch",
			(unsigned long long)b->index);
		return;
	}
	thx__block_hash(&h, v->c->name);
	if (memcmp(h.hash, stored, 32)) {
		problem(st, v, b->first_seq, file, off, "block %llu: header hash mismatch",
			(unsigned long long)b->index);
		return;
	}
	memcpy(v->last_block, stored, 32);
	v->block_index++;
	v->block_start += b->count;
	v->nleaves = 0;
	st->r->blocks++;
}

static vchain *target(vstate *st, const uint8_t *payload, size_t n)
{
	if (n < 4)
		return NULL;
	uint32_t no = thx__le32(payload);
	if (no >= st->nvc || !st->vc[no].c)
		return NULL;
	return &st->vc[no];
}

static int scan(vstate *st, thx__seg *seg, uint64_t size, bool last,
		thx_progress_fn progress, void *arg, uint64_t *done, uint64_t total)
{
	if (size <= THX__SEG_HDR)
		return 0;
	const uint8_t *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, seg->fd, 0);
	if (m == MAP_FAILED)
		return TH_EIO;
	madvise((void *)m, size, MADV_SEQUENTIAL);
	size_t pos = THX__SEG_HDR;
	uint64_t last_report = 0;
	int rc = 0;
	while (pos < size && !rc) {
		const uint8_t *r = m + pos;
		long pl = size - pos >= THX__REC_HDR ? thx__hdr_len(r) : -1;
		if (pl < 0 || (size_t)pl > size - pos - THX__REC_HDR ||
		    !thx__rec_crc_ok(r, (uint32_t)pl)) {
			/* resync at the next valid record */
			size_t q = pos + 1;
			for (; q + THX__REC_HDR <= size; q++) {
				long ql = thx__hdr_len(m + q);
				if (ql >= 0 && (size_t)ql <= size - q - THX__REC_HDR &&
				    thx__rec_crc_ok(m + q, (uint32_t)ql))
					break;
			}
			bool found = q + THX__REC_HDR <= size;
			if (!found && last) {
				/* a torn tail that the next writer will truncate (or a
				 * record being written right now): never acknowledged */
				st->r->torn_bytes += size - pos;
				break;
			}
			vchain *v = pl >= 0 && (size_t)pl <= size - pos - THX__REC_HDR
				? target(st, r + THX__REC_HDR, (size_t)pl) : NULL;
			if (v || st->all)
				problem(st, v, v ? v->next : 0, seg->name, pos,
					pl < 0 ? "no valid record header"
					       : "record checksum mismatch");
			pos = found ? q : size;
			continue;
		}
		const uint8_t *p = r + THX__REC_HDR;
		size_t n = (size_t)pl;
		uint8_t type = r[8];
		vchain *v = (type == THX__REC_EVENT || type == THX__REC_STUB ||
			     type == THX__REC_BLOCK) ? target(st, p, n) : NULL;
		if (v && n >= 36) {
			th_err e = { 0 };
			if (type == THX__REC_BLOCK) {
				thx_block b;
				const char *nm;
				size_t nl;
				if (thx__dec_block(p + 36, n - 36, &b, &nm, &nl, &e))
					problem(st, v, v->block_start, seg->name, pos, "%s", e.msg);
				else
					check_block(st, v, &b, nm, nl, p + 4, seg->name, pos);
			} else {
				thx__ev ev;
				int d = type == THX__REC_EVENT
					? thx__dec_event(p + 36, n - 36, &ev, &e)
					: thx__dec_stub(p + 36, n - 36, &ev, &e);
				if (d)
					problem(st, v, v->next, seg->name, pos, "%s", e.msg);
				else
					rc = check_event(st, v, &ev, p + 4,
							 type == THX__REC_EVENT ? p + 36 : NULL,
							 n - 36, seg->name, pos);
			}
		}
		pos += THX__REC_HDR + n;
		if (progress && pos - last_report >= (1u << 20)) {
			progress(*done + pos, total, arg);
			last_report = pos;
		}
	}
	*done += size;
	munmap((void *)m, size);
	return rc;
}

/* A memory-only chain, straight from its entries. */
static int verify_mem(vstate *st, vchain *v)
{
	thx_chain *c = v->c;
	pthread_mutex_lock(&c->mu);
	th_err er0 = { 0 };
	int rc = thx__seal_pending(c, &er0);
	for (uint64_t i = 0; i < v->snap_n && !rc; i++) {
		thx__ent *e = thx__ent_at(c, i);
		thx__ev ev = { 0 };
		th_err er = { 0 };
		if (!(e->flags & THX__E_PRUNED)) {
			uint8_t *enc;
			size_t elen;
			if (thx__mem_encode(c, i, &enc, &elen, &er)) {
				rc = er.code; /* out of memory */
				break;
			}
			if (thx__dec_event(enc, elen, &ev, &er)) {
				problem(st, v, i, "", 0, "%s", er.msg);
				th_free(enc);
				break;
			}
			rc = check_event(st, v, &ev, e->hash, enc, elen, "", 0);
			th_free(enc);
		} else {
			ev.seq = i;
			ev.has_parent = i > 0;
			if (i > 0)
				memcpy(ev.parent, thx__ent_at(c, i - 1)->hash, 32);
			rc = check_event(st, v, &ev, e->hash, NULL, 0, "", 0);
		}
		while (!rc && v->block_index < c->nblocks &&
		       c->blocks[v->block_index].h.first_seq + c->blocks[v->block_index].h.count ==
			       i + 1) {
			thx_block b = c->blocks[v->block_index].h;
			check_block(st, v, &b, c->name, strlen(c->name), b.hash, "", 0);
			if (v->failed)
				break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int thx_verify(thx_store *s, const char *chain, thx_progress_fn progress, void *arg,
	       thx_verify_report *report, th_err *err)
{
	vstate st = { 0 };
	thx__seg **segs = NULL;
	uint64_t *sizes = NULL;
	size_t nsegs = 0;
	int rc = 0;
	memset(report, 0, sizeof *report);
	report->ok = true;
	st.r = report;
	st.all = chain == NULL;
	thx_chain *only = NULL;
	if (chain && (rc = thx_chain_open(s, chain, NULL, false, &only, err)))
		return rc;

	pthread_rwlock_rdlock(&s->lk);
	st.nvc = s->next_no;
	st.vc = th_calloc(st.nvc ? st.nvc : 1, sizeof *st.vc);
	if (st.vc)
		for (size_t i = 0; i < s->nchains; i++)
			if (!only || s->chains[i] == only)
				st.vc[s->chains[i]->no].c = s->chains[i];
	pthread_rwlock_unlock(&s->lk);
	if (!st.vc)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < st.nvc; i++) {
		thx_chain *c = st.vc[i].c;
		if (!c)
			continue;
		pthread_mutex_lock(&c->mu);
		st.vc[i].snap_n = c->n;
		pthread_mutex_unlock(&c->mu);
		report->chains++;
	}
	/* In the writer, no compaction replaces a segment while it is read
	 * (a replaced one is closed: its events would look missing). */
	bool writer = !s->opts.read_only;
	if (writer)
		pthread_mutex_lock(&s->compact_mu);
	if (writer && (rc = thx__log_commit(&s->log, thx__log_ins_lsn(&s->log), false, err)))
		goto out;
	if ((rc = thx__live_segs(s, &segs, &nsegs, err)))
		goto out;
	sizes = th_malloc((nsegs ? nsegs : 1) * sizeof *sizes);
	if (!sizes) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	uint64_t total = 0, done = 0;
	for (size_t i = 0; i < nsegs; i++) {
		sizes[i] = atomic_load(&segs[i]->size);
		total += sizes[i];
	}
	for (size_t i = 0; i < nsegs && !rc; i++) {
		thx__seg *sg = segs[i];
		pthread_rwlock_rdlock(&sg->lk);
		if (sg->fd >= 0)
			rc = scan(&st, sg, sizes[i], i + 1 == nsegs, progress, arg, &done,
				  total);
		pthread_rwlock_unlock(&sg->lk);
		if (rc == TH_EIO)
			th_err_set(err, rc, "mmap %s/%s: %s", s->dir, sg->name, strerror(errno));
		else if (rc)
			th_err_set(err, rc, "out of memory");
	}
	for (uint32_t i = 0; i < st.nvc && !rc; i++) {
		vchain *v = &st.vc[i];
		if (!v->c)
			continue;
		if (v->c->opts.durability == THX_NONE) {
			if ((rc = verify_mem(&st, v)))
				th_err_set(err, rc, "out of memory");
			continue;
		}
		if (!v->failed && v->next < v->snap_n)
			problem(&st, v, v->next, "", 0, "events %llu..%llu not found on disk",
				(unsigned long long)v->next, (unsigned long long)v->snap_n - 1);
	}
	if (progress)
		progress(total, total, arg);
out:
	if (writer)
		pthread_mutex_unlock(&s->compact_mu);
	for (uint32_t i = 0; i < st.nvc; i++)
		th_free(st.vc[i].leaves);
	th_free(st.vc);
	th_free(segs);
	th_free(sizes);
	return rc;
}
