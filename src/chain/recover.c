/*
 * recover.c - rebuilding a chain store's index from its segments when it is
 * opened (see the RECOVERY section of the design essay in chain.c): records
 * are applied in log order, a torn tail of the last segment is truncated,
 * damage elsewhere is noted on its chain and skipped, and the last blocks
 * of every chain are re-hashed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain/internal.h"

/* ---- recovery ---- */

static void damage(thx_chain *c, uint64_t seq, const char *fmt, ...) TH_PRINTF(3, 4);
static void damage(thx_chain *c, uint64_t seq, const char *fmt, ...)
{
	c->s->damage_notes++;
	if (c->damaged && c->damaged_seq <= seq)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->damage, sizeof c->damage, fmt, ap);
	va_end(ap);
	c->damaged = true;
	c->damaged_seq = seq;
}

static int apply_chain_rec(thx_store *s, const uint8_t *p, size_t n, th_err *err)
{
	th_cbor_dec d;
	uint64_t cnt, no, v[6];
	const char *name;
	size_t nl;
	th_cbor_dec_init(&d, p, n);
	if (th_cbor_get_array(&d, &cnt, err) || cnt != 8 || th_cbor_get_uint(&d, &no, err) ||
	    th_cbor_get_text(&d, &name, &nl, err) || nl == 0 || nl > THX_NAME_MAX ||
	    no > UINT32_MAX - 1)
		return th_err_set(err, TH_EINVAL, "malformed chain record");
	for (int i = 0; i < 6; i++)
		if (th_cbor_get_uint(&d, &v[i], err))
			return th_err_set(err, TH_EINVAL, "malformed chain record");
	thx_chain_opts o = { 0 };
	o.durability = v[0] <= THX_BATCH ? (thx_durability)v[0] : THX_ALWAYS;
	o.batch_ms = (uint32_t)v[1];
	o.block_events = v[2] ? (uint32_t)v[2] : 256;
	o.retention.max_age_ns = v[3];
	o.retention.max_events = v[4];
	o.retention.max_bytes = v[5];
	thx_chain *c = thx__chain_by_no(s, (uint32_t)no);
	if (c) {
		c->opts = o;
		thx__opts_fill(&c->opts);
		return 0;
	}
	char nm[THX_NAME_MAX + 1];
	memcpy(nm, name, nl);
	nm[nl] = '\0';
	return thx__chain_new(s, (uint32_t)no, nm, &o, &c, err);
}

/* Index one event (or stub) of chain c. parent is its parent hash for the
 * link check, NULL when the check was done when its segment's index file
 * was written. */
static int apply_event(thx_chain *c, uint8_t type, uint64_t seq, uint64_t ts,
		       uint64_t data_len, bool has_parent, const uint8_t *parent,
		       const uint8_t hash[32], uint32_t tid, uint32_t aid, uint32_t slot,
		       uint64_t off, bool bad, const char *file, th_err *err)
{
	if (seq < c->n) {
		if (!(thx__ent_at(c, seq)->flags & THX__E_MISSING))
			damage(c, seq, "%s offset %llu: duplicate event", file,
			       (unsigned long long)off);
		return 0;
	}
	if (seq - c->n > c->s->recover_bytes / THX__MIN_EVENT_REC) {
		/* more events lost than the whole log could have held */
		damage(c, c->n, "%s offset %llu: event seq %llu is implausible (chain has %llu)",
		       file, (unsigned long long)off, (unsigned long long)seq,
		       (unsigned long long)c->n);
		return 0;
	}
	if (!thx__ents_reserve(c, seq + 1))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	if (seq > c->n) {
		damage(c, c->n, "events %llu..%llu lost before %s offset %llu",
		       (unsigned long long)c->n, (unsigned long long)seq - 1, file,
		       (unsigned long long)off);
		for (uint64_t i = c->n; i < seq; i++) {
			memset(thx__ent_at(c, i), 0, sizeof(thx__ent));
			thx__ent_at(c, i)->flags = THX__E_MISSING;
			thx__ent_at(c, i)->slot = UINT32_MAX;
			thx__ent_at(c, i)->ts = c->last_ts;
		}
	} else if (seq > 0 && !(thx__ent_at(c, seq - 1)->flags & THX__E_MISSING) &&
		   (!has_parent ||
		    (parent && memcmp(parent, thx__ent_at(c, seq - 1)->hash, 32)))) {
		damage(c, seq, "%s offset %llu: parent link broken", file,
		       (unsigned long long)off);
	}
	thx__ent *e = thx__ent_at(c, seq);
	memset(e, 0, sizeof *e);
	memcpy(e->hash, hash, 32);
	e->ts = ts < c->last_ts ? c->last_ts : ts;
	e->type_id = tid;
	e->actor_id = aid;
	e->slot = slot;
	e->off = off;
	e->size = (uint32_t)data_len & ((1u << 26) - 1);
	if (type == THX__REC_STUB)
		e->flags |= THX__E_PRUNED;
	else
		c->kept_bytes += e->size;
	if (bad) {
		e->flags |= THX__E_BAD;
		damage(c, seq, "%s offset %llu: record checksum mismatch", file,
		       (unsigned long long)off);
	}
	c->last_ts = e->ts;
	c->n = seq + 1;
	return 0;
}

static int apply_event_rec(thx_store *s, uint8_t type, const uint8_t *p, size_t n,
			   uint32_t slot, uint64_t off, bool bad, const char *file,
			   th_err *err)
{
	if (n < 36)
		return th_err_set(err, TH_EINVAL, "short event record");
	thx_chain *c = thx__chain_by_no(s, thx__le32(p));
	if (!c)
		return th_err_set(err, TH_EINVAL, "event of unknown chain %u", thx__le32(p));
	thx__ev ev;
	int rc = type == THX__REC_EVENT ? thx__dec_event(p + 36, n - 36, &ev, err)
					: thx__dec_stub(p + 36, n - 36, &ev, err);
	if (rc)
		return rc;
	uint32_t tid, aid;
	const char *is;
	if (thx__intern(s, ev.type, ev.type_len, &tid, &is) ||
	    thx__intern(s, ev.actor, ev.actor_len, &aid, &is))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	return apply_event(c, type, ev.seq, ev.ts, ev.data_len, ev.has_parent, ev.parent,
			   p + 4, tid, aid, slot, off, bad, file, err);
}

static int apply_block_rec(thx_store *s, const uint8_t *p, size_t n, uint32_t slot,
			   uint64_t off, const char *file, th_err *err)
{
	if (n < 36)
		return th_err_set(err, TH_EINVAL, "short block record");
	thx_chain *c = thx__chain_by_no(s, thx__le32(p));
	if (!c)
		return th_err_set(err, TH_EINVAL, "block of unknown chain");
	thx__blk b = { 0 };
	const char *nm;
	size_t nl;
	if (thx__dec_block(p + 36, n - 36, &b.h, &nm, &nl, err))
		return TH_EINVAL;
	memcpy(b.h.hash, p + 4, 32);
	b.slot = slot;
	b.off = off;
	if (b.h.index != c->nblocks || b.h.first_seq != c->block_start ||
	    b.h.count > c->n - c->block_start ||
	    b.h.has_prev != (c->nblocks > 0) ||
	    (c->nblocks && memcmp(b.h.prev, c->blocks[c->nblocks - 1].h.hash, 32))) {
		damage(c, b.h.first_seq, "%s offset %llu: block %llu does not follow block %llu",
		       file, (unsigned long long)off, (unsigned long long)b.h.index,
		       (unsigned long long)c->nblocks);
		return 0; /* not indexed: verification reports it in place */
	}
	if (!thx__grow((void **)&c->blocks, &c->capblocks, c->nblocks + 1, sizeof *c->blocks))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	c->blocks[c->nblocks++] = b;
	c->block_start = b.h.first_seq + b.h.count;
	return 0;
}

static int apply_prune_rec(thx_store *s, const uint8_t *p, size_t n, th_err *err)
{
	th_cbor_dec d;
	uint64_t cnt, no, below;
	th_cbor_dec_init(&d, p, n);
	if (th_cbor_get_array(&d, &cnt, err) || cnt != 2 || th_cbor_get_uint(&d, &no, err) ||
	    th_cbor_get_uint(&d, &below, err) || no > UINT32_MAX)
		return th_err_set(err, TH_EINVAL, "malformed prune record");
	thx_chain *c = thx__chain_by_no(s, (uint32_t)no);
	if (c && below > c->prune_below)
		c->prune_below = below;
	return 0;
}

/* Whether a complete, valid record starts at p (n bytes available). */
static bool rec_at(const uint8_t *p, size_t n, size_t *len)
{
	if (n < THX__REC_HDR)
		return false;
	long pl = thx__hdr_len(p);
	if (pl < 0 || (size_t)pl > n - THX__REC_HDR)
		return false;
	if (!thx__rec_crc_ok(p, (uint32_t)pl))
		return false;
	*len = THX__REC_HDR + (size_t)pl;
	return true;
}

static size_t next_valid(const uint8_t *m, size_t size, size_t from)
{
	size_t len;
	for (size_t q = from; q + THX__REC_HDR <= size; q++) {
		const uint8_t *f = memchr(m + q, 'T', size - THX__REC_HDR + 1 - q);
		if (!f)
			break;
		q = (size_t)(f - m);
		if (rec_at(m + q, size - q, &len))
			return q;
	}
	return SIZE_MAX;
}

static int apply_rec(thx_store *s, const uint8_t *r, size_t len, uint32_t slot,
		     uint64_t off, bool bad, const char *file, th_err *err)
{
	const uint8_t *p = r + THX__REC_HDR;
	size_t n = len - THX__REC_HDR;
	switch (r[8]) {
	case THX__REC_CHAIN:
		return apply_chain_rec(s, p, n, err);
	case THX__REC_EVENT:
	case THX__REC_STUB:
		return apply_event_rec(s, r[8], p, n, slot, off, bad, file, err);
	case THX__REC_BLOCK:
		return bad ? 0 : apply_block_rec(s, p, n, slot, off, file, err);
	case THX__REC_PRUNE:
		return apply_prune_rec(s, p, n, err);
	default:
		return th_err_set(err, TH_EINVAL, "unknown record type %u", r[8]);
	}
}

/* Scan one segment file and apply its records; *clean: every record was
 * valid and applied without complaint. */
static int scan_segment(thx_store *s, thx__seg *seg, bool last, bool *clean, th_err *err)
{
	uint64_t size = atomic_load(&seg->size);
	*clean = true;
	if (size <= THX__SEG_HDR)
		return 0;
	uint8_t *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, seg->fd, 0);
	if (m == MAP_FAILED)
		return th_err_set(err, TH_EIO, "mmap %s/%s: %s", s->dir, seg->name,
				  strerror(errno));
	int rc = 0;
	size_t pos = THX__SEG_HDR, len;
	while (pos < size) {
		if (rec_at(m + pos, size - pos, &len)) {
			th_err e2 = { 0 };
			if (apply_rec(s, m + pos, len, seg->slot, pos, false, seg->name, &e2)) {
				if (e2.code == TH_ENOMEM) {
					rc = th_err_set(err, TH_ENOMEM, "out of memory");
					break;
				}
				/* A valid CRC over nonsense: remember and go on. */
				*clean = false;
				if (!s->opts.read_only)
					fprintf(stderr, "theater: chain store %s/%s offset %zu: %s\n",
						s->dir, seg->name, pos, e2.msg);
			}
			pos += len;
			continue;
		}
		*clean = false;
		size_t q = next_valid(m, size, pos + 1);
		if (q == SIZE_MAX && last) {
			/* torn tail */
			if (!s->opts.read_only) {
				if (ftruncate(seg->fd, (off_t)pos) != 0 || fdatasync(seg->fd) != 0) {
					rc = th_err_set(err, TH_EIO, "truncating %s/%s: %s", s->dir,
							seg->name, strerror(errno));
					break;
				}
				atomic_store(&seg->size, pos);
			}
			break;
		}
		/* Damage in the middle: try to attribute the broken record. */
		long pl = thx__hdr_len(m + pos);
		size_t end = q == SIZE_MAX ? size : q;
		if (pl >= 0 && pos + THX__REC_HDR + (size_t)pl <= end) {
			th_err e2 = { 0 };
			if (apply_rec(s, m + pos, THX__REC_HDR + (size_t)pl, seg->slot, pos, true,
				      seg->name, &e2) == TH_ENOMEM) {
				rc = th_err_set(err, TH_ENOMEM, "out of memory");
				break;
			}
		}
		pos = end;
	}
	munmap(m, size);
	return rc;
}

/* Apply seg's index file instead of reading the segment (segidx.c). *used
 * stays false, and nothing is applied, when there is no usable one. */
static int apply_index(thx_store *s, thx__seg *seg, uint64_t size,
		       const uint8_t hdr[THX__SEG_HDR], bool *used, th_err *err)
{
	*used = false;
	thx__idx x;
	int rc = thx__idx_read(s, seg, size, hdr, &x);
	if (rc == TH_ENOMEM)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	if (rc)
		return 0;
	/* Check the whole structure first: all or nothing. */
	size_t start = x.pos;
	thx__idx_ent e;
	int r;
	while ((r = thx__idx_next(&x, &e)) == 1)
		if (e.off < THX__SEG_HDR || e.off >= size)
			r = -1;
	uint32_t *sid = r == 0 ? th_malloc(((size_t)x.nstr + 1) * sizeof *sid) : NULL;
	if (r == 0 && !sid)
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
	for (uint32_t i = 0; sid && i < x.nstr && !rc; i++) {
		const char *is;
		if (thx__intern(s, (const char *)x.strs[i] + 1, x.strs[i][0], &sid[i], &is))
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
	}
	if (r != 0 || rc)
		goto out;
	x.pos = start;
	while (thx__idx_next(&x, &e) == 1) {
		th_err e2 = { 0 };
		int arc = 0;
		if (e.type == THX__REC_CHAIN) {
			arc = apply_chain_rec(s, e.payload, e.len, &e2);
		} else if (e.type == THX__REC_BLOCK) {
			arc = apply_block_rec(s, e.payload, e.len, seg->slot, e.off, seg->name, &e2);
		} else if (e.type == THX__REC_PRUNE) {
			arc = apply_prune_rec(s, e.payload, e.len, &e2);
		} else {
			thx_chain *c = thx__chain_by_no(s, e.chain);
			arc = !c ? th_err_set(&e2, TH_EINVAL, "event of unknown chain %u", e.chain)
				 : apply_event(c, e.type, e.seq, e.ts, e.size, e.has_parent, NULL,
					       e.hash, sid[e.type_sid], sid[e.actor_sid],
					       seg->slot, e.off, false, seg->name, &e2);
		}
		if (arc == TH_ENOMEM) {
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
			goto out;
		}
		if (arc && !s->opts.read_only)
			fprintf(stderr, "theater: chain store %s/%s offset %llu: %s\n", s->dir,
				seg->name, (unsigned long long)e.off, e2.msg);
	}
	*used = true;
	seg->indexed = true;
	atomic_fetch_add(&s->idx_loaded, 1);
out:
	th_free(sid);
	thx__idx_release(&x);
	return rc;
}

struct segfile {
	uint32_t segno, version;
	char name[64];
};

static int segfile_cmp(const void *a, const void *b)
{
	const struct segfile *x = a, *y = b;
	if (x->segno != y->segno)
		return x->segno < y->segno ? -1 : 1;
	return x->version < y->version ? -1 : x->version > y->version;
}

/* Re-hash the last two blocks and the open block of c. */
static void check_tail(thx_chain *c)
{
	uint64_t from = c->nblocks >= 2 ? c->blocks[c->nblocks - 2].h.first_seq
		      : 0;
	uint64_t bfirst = c->nblocks >= 2 ? c->nblocks - 2 : 0;
	for (uint64_t seq = from; seq < c->n; seq++) {
		thx__ent *e = thx__ent_at(c, seq);
		if (e->flags & (THX__E_PRUNED | THX__E_MISSING | THX__E_BAD))
			continue;
		uint8_t *rec = NULL, h[32], stored[32];
		const uint8_t *cb;
		size_t cbl;
		thx__ev ev;
		if (thx__read_event(c, seq, &rec, &ev, stored, &cb, &cbl, NULL) == 0) {
			thx__sha256(cb, cbl, h);
			if (memcmp(h, stored, 32)) {
				thx__seg *sg = thx__log_seg(&c->s->log, e->slot);
				damage(c, seq, "%s offset %llu: event hash mismatch",
				       sg ? sg->name : "?", (unsigned long long)e->off);
			}
		}
		th_free(rec);
	}
	for (uint64_t b = bfirst; b < c->nblocks; b++) {
		thx__blk *bl = &c->blocks[b];
		uint8_t (*leaves)[32] = th_malloc((size_t)bl->h.count * 32);
		if (!leaves)
			return;
		for (uint64_t i = 0; i < bl->h.count; i++)
			memcpy(leaves[i], thx__ent_at(c, bl->h.first_seq + i)->hash, 32);
		uint8_t root[32];
		thx__merkle_root((const uint8_t (*)[32])leaves, (size_t)bl->h.count, root);
		th_free(leaves);
		thx_block h = bl->h;
		thx__block_hash(&h, c->name);
		if (memcmp(root, bl->h.merkle_root, 32) || memcmp(h.hash, bl->h.hash, 32)) {
			thx__seg *sg = thx__log_seg(&c->s->log, bl->slot);
			damage(c, bl->h.first_seq, "%s offset %llu: block %llu does not match its events",
			       sg ? sg->name : "?", (unsigned long long)bl->off,
			       (unsigned long long)b);
		}
	}
}

int thx__recover(thx_store *s, th_err *err)
{
	DIR *d = opendir(s->dir);
	if (!d)
		return th_err_set(err, TH_EIO, "opendir %s: %s", s->dir, strerror(errno));
	struct segfile *files = NULL;
	size_t nf = 0, capf = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct segfile f;
		int used = 0;
		if (sscanf(de->d_name, "seg-%8u.%u.log%n", &f.segno, &f.version, &used) == 2 &&
		    used == (int)strlen(de->d_name)) {
			if (nf == capf) {
				size_t cap = capf ? capf * 2 : 16;
				struct segfile *a = th_realloc(files, cap * sizeof *a);
				if (!a) {
					rc = th_err_set(err, TH_ENOMEM, "out of memory");
					break;
				}
				files = a;
				capf = cap;
			}
			snprintf(f.name, sizeof f.name, "%s", de->d_name);
			files[nf++] = f;
		} else if (!s->opts.read_only && strncmp(de->d_name, "seg-", 4) == 0 &&
			   strstr(de->d_name, ".tmp")) {
			unlinkat(s->log.dirfd, de->d_name, 0); /* unfinished compaction/index */
		} else if (!s->opts.read_only &&
			   sscanf(de->d_name, "seg-%8u.%u.idx%n", &f.segno, &f.version, &used) == 2 &&
			   used == (int)strlen(de->d_name)) {
			/* an index whose segment is gone */
			char ln[64];
			snprintf(ln, sizeof ln, "seg-%08u.%u.log", f.segno, f.version);
			if (faccessat(s->log.dirfd, ln, F_OK, 0) != 0 && errno == ENOENT)
				unlinkat(s->log.dirfd, de->d_name, 0);
		}
	}
	closedir(d);
	if (rc)
		goto out;
	if (nf > 1)
		qsort(files, nf, sizeof *files, segfile_cmp);
	/* The most events the log could hold: bounds the gaps a damaged or
	 * forged seq number may claim (apply_event). */
	s->recover_bytes = 0;
	for (size_t i = 0; i < nf; i++) {
		struct stat fst;
		if (fstatat(s->log.dirfd, files[i].name, &fst, 0) == 0)
			s->recover_bytes += (uint64_t)fst.st_size;
	}
	thx__seg *lastseg = NULL;
	for (size_t i = 0; i < nf; i++) {
		if (i + 1 < nf && files[i + 1].segno == files[i].segno) {
			/* superseded by a compacted version */
			if (!s->opts.read_only) {
				unlinkat(s->log.dirfd, files[i].name, 0);
				thx__seg old = { .segno = files[i].segno, .version = files[i].version };
				char in[64];
				thx__idx_name(&old, false, in, sizeof in);
				unlinkat(s->log.dirfd, in, 0);
			}
			continue;
		}
		int fd = openat(s->log.dirfd, files[i].name,
				(s->opts.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0) {
			/* A reader racing with the writer's compaction: the caller
			 * (thx_store_open) starts over. */
			int e = errno;
			rc = th_err_set(err, e == ENOENT && s->opts.read_only ? TH_EBUSY : TH_EIO,
					"open %s/%s: %s", s->dir, files[i].name, strerror(e));
			goto out;
		}
		struct stat st = { 0 };
		uint8_t hdr[THX__SEG_HDR];
		uint32_t segno, version;
		bool last = i + 1 == nf;
		if (fstat(fd, &st) != 0 ||
		    pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
		    !thx__seg_header_ok(hdr, &segno, &version) || segno != files[i].segno) {
			close(fd);
			if (last && !s->opts.read_only && st.st_size < 4096) {
				/* created but its header never made it: torn */
				unlinkat(s->log.dirfd, files[i].name, 0);
				continue;
			}
			rc = th_err_set(err, TH_ECORRUPT, "%s/%s: bad segment header", s->dir,
					files[i].name);
			goto out;
		}
		thx__seg *seg;
		if ((rc = thx__log_adopt(&s->log, files[i].segno, files[i].version, fd,
					 (uint64_t)st.st_size, &seg, err))) {
			close(fd);
			goto out;
		}
		/* Single-threaded here: no background thread yet. Sealed
		 * segments come from their index file when it is usable; one
		 * that scans clean gets a new index file. */
		bool used = false, clean;
		if (!last && (rc = apply_index(s, seg, (uint64_t)st.st_size, hdr, &used, err)))
			goto out;
		if (!used) {
			uint64_t notes = s->damage_notes;
			if ((rc = scan_segment(s, seg, last, &clean, err)))
				goto out;
			if (!last && clean && notes == s->damage_notes && !s->opts.read_only)
				thx__idx_build(s, seg); /* a cache: failing costs a scan later */
		}
		lastseg = seg;
	}
	/* Apply prunes, then re-check the tails. */
	for (size_t i = 0; i < s->nchains; i++) {
		thx_chain *c = s->chains[i];
		if (c->prune_below > c->n)
			c->prune_below = c->n;
		for (uint64_t k = 0; k < c->prune_below; k++) {
			thx__ent *e = thx__ent_at(c, k);
			if (e->flags & (THX__E_PRUNED | THX__E_MISSING))
				continue;
			e->flags |= THX__E_PRUNED;
			c->kept_bytes -= e->size;
			thx__seg *sg = thx__log_seg(&s->log, e->slot);
			if (sg)
				atomic_fetch_add(&sg->garbage, e->size ? e->size : 1);
		}
		c->durable_n = c->n;
		check_tail(c);
	}
	if (lastseg)
		thx__log_resume(&s->log, lastseg);
out:
	th_free(files);
	return rc;
}
