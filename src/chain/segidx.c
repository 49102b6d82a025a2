/*
 * segidx.c - per-segment index files: what opening a store needs from a
 * sealed segment, without reading the segment.
 *
 * Opening a store rebuilds every chain's in-memory index (recover.c). For a
 * sealed segment that means reading all of it, checking every record's CRC
 * and decoding every event's CBOR. seg-N.V.idx, written beside
 * seg-N.V.log once the segment is sealed, holds the same facts in a compact
 * form: recovery applies it instead and reads the segment not at all.
 *
 * The index is a cache. Nothing depends on it being there or right:
 *   - it is written to seg-N.V.idx.tmp, fsynced and renamed, so a crash
 *     leaves either no index or a complete one (a leftover .tmp is removed
 *     at open);
 *   - recovery uses it only if its header names this segment (number,
 *     version, creation time from the segment header, size of the segment
 *     in bytes) and both CRCs check; otherwise it is ignored, the segment is
 *     scanned as before and the index rewritten (missing, stale or corrupt);
 *   - it is written only from a segment whose every record checked and
 *     applied cleanly, so damage is found again by the next scan;
 *   - reads still fetch each event from the segment and check its record
 *     (CRC, chain number, hash), and thx_verify never uses the index.
 * The last segment (still open for appends) is always scanned.
 *
 * FORMAT (all integers little-endian)
 *   header, 40 bytes:
 *     0  8  "THXIDX01"
 *     8  4  segment number       12  4  segment version
 *    16  8  segment size in bytes covered (the whole sealed file)
 *    24  8  segment creation time (bytes 16..23 of its header)
 *    32  4  CRC32C of the body   36  4  CRC32C of bytes 0..35
 *   body:
 *     u32 nstr, then nstr strings (u8 length 1..255, bytes): the actor ids
 *     and event types used below, by index
 *     entries, back to back, each starting with its record type:
 *       1 chain, 4 block, 5 prune: u64 offset, u32 length, the record's
 *         payload as in the segment
 *       2 event, 3 pruned event: u64 offset, u32 chain number,
 *         u8 has_parent, 32-byte event hash, u64 seq, u64 timestamp,
 *         u64 data+description bytes, u32 actor string, u32 type string
 * An event in the index is 78 bytes, against 16 + 36 + its CBOR in the
 * segment (about 200 bytes for 40 bytes of data, 384 for 256).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain/internal.h"

#define IDX_MAGIC "THXIDX01"
#define IDX_HDR 40
#define IDX_EV 77 /* bytes of an event entry after its type byte */

void thx__idx_name(const thx__seg *seg, bool tmp, char *out, size_t n)
{
	snprintf(out, n, "seg-%08u.%u.idx%s", seg->segno, seg->version, tmp ? ".tmp" : "");
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Local string number of store string id (added on first use). */
static bool str_local(thx_store *s, th_cbor_enc *strs, uint32_t **map, size_t *mapn,
		      uint32_t *nstr, const char *str, size_t len, uint32_t *out)
{
	uint32_t id;
	pthread_rwlock_rdlock(&s->lk);
	bool found = thx__str_find(s, str, len, &id);
	pthread_rwlock_unlock(&s->lk);
	if (!found)
		return false;
	if (id >= *mapn) {
		size_t n = (size_t)id * 2 + 16;
		uint32_t *m = th_realloc(*map, n * sizeof *m);
		if (!m)
			return false;
		memset(m + *mapn, 0, (n - *mapn) * sizeof *m);
		*map = m;
		*mapn = n;
	}
	if (!(*map)[id]) {
		uint8_t l = (uint8_t)len;
		th_cbor_put_raw(strs, &l, 1);
		th_cbor_put_raw(strs, str, len);
		(*map)[id] = ++*nstr;
	}
	*out = (*map)[id] - 1;
	return true;
}

int thx__idx_build(thx_store *s, thx__seg *seg)
{
	uint64_t size = atomic_load(&seg->size);
	if (size < THX__SEG_HDR || s->opts.read_only)
		return TH_EINVAL;
	pthread_rwlock_rdlock(&seg->lk);
	if (seg->fd < 0) {
		pthread_rwlock_unlock(&seg->lk);
		return TH_ESTATE;
	}
	/* The index must never outlive what it describes: the segment's
	 * bytes are made durable first (usually a no-op: the log fsynced). */
	uint8_t *m = fdatasync(seg->fd) == 0
			     ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, seg->fd, 0)
			     : MAP_FAILED;
	pthread_rwlock_unlock(&seg->lk);
	if (m == MAP_FAILED)
		return TH_EIO;
	th_cbor_enc strs, ents;
	th_cbor_enc_init(&strs, NULL, 0);
	th_cbor_enc_init(&ents, NULL, 0);
	uint32_t *map = NULL, nstr = 0;
	size_t mapn = 0;
	int rc = TH_ECORRUPT;
	uint32_t segno, version;
	if (!thx__seg_header_ok(m, &segno, &version) || segno != seg->segno)
		goto out;
	size_t pos = THX__SEG_HDR;
	while (pos < size) {
		long pl = size - pos >= THX__REC_HDR ? thx__hdr_len(m + pos) : -1;
		if (pl < 0 || (uint64_t)pl > size - pos - THX__REC_HDR ||
		    !thx__rec_crc_ok(m + pos, (uint32_t)pl))
			goto out; /* damage: leave it to the scan */
		const uint8_t *p = m + pos + THX__REC_HDR;
		size_t n = (size_t)pl;
		uint8_t type = m[pos + 8], e[IDX_EV + 13];
		th_cbor_put_raw(&ents, &type, 1);
		thx__put_le64(e, pos);
		if (type == THX__REC_EVENT || type == THX__REC_STUB) {
			thx__ev ev;
			uint32_t a, t;
			if (n < 36 || (type == THX__REC_EVENT ? thx__dec_event(p + 36, n - 36, &ev, NULL)
							      : thx__dec_stub(p + 36, n - 36, &ev, NULL)) ||
			    !str_local(s, &strs, &map, &mapn, &nstr, ev.actor, ev.actor_len, &a) ||
			    !str_local(s, &strs, &map, &mapn, &nstr, ev.type, ev.type_len, &t))
				goto out;
			memcpy(e + 8, p, 4);
			e[12] = ev.has_parent;
			memcpy(e + 13, p + 4, 32);
			thx__put_le64(e + 45, ev.seq);
			thx__put_le64(e + 53, ev.ts);
			thx__put_le64(e + 61, ev.data_len);
			thx__put_le32(e + 69, a);
			thx__put_le32(e + 73, t);
			th_cbor_put_raw(&ents, e, IDX_EV);
		} else if (type == THX__REC_CHAIN || type == THX__REC_BLOCK ||
			   type == THX__REC_PRUNE) {
			thx__put_le32(e + 8, (uint32_t)n);
			th_cbor_put_raw(&ents, e, 12);
			th_cbor_put_raw(&ents, p, n);
		} else {
			goto out;
		}
		pos += THX__REC_HDR + n;
	}
	if (strs.err || ents.err) {
		rc = TH_ENOMEM;
		goto out;
	}
	uint8_t hdr[IDX_HDR], cnt[4];
	thx__put_le32(cnt, nstr);
	uint32_t crc = thx__crc32c(0, cnt, 4);
	crc = thx__crc32c(crc, strs.buf, strs.len);
	crc = thx__crc32c(crc, ents.buf, ents.len);
	memcpy(hdr, IDX_MAGIC, 8);
	thx__put_le32(hdr + 8, seg->segno);
	thx__put_le32(hdr + 12, seg->version);
	thx__put_le64(hdr + 16, size);
	memcpy(hdr + 24, m + 16, 8);
	thx__put_le32(hdr + 32, crc);
	thx__put_le32(hdr + 36, thx__crc32c(0, hdr, 36));
	char tmp[64], fin[64];
	thx__idx_name(seg, true, tmp, sizeof tmp);
	thx__idx_name(seg, false, fin, sizeof fin);
	int fd = openat(s->log.dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	rc = TH_EIO;
	if (fd < 0)
		goto out;
	bool ok = write_all(fd, hdr, sizeof hdr) == 0 && write_all(fd, cnt, 4) == 0 &&
		  write_all(fd, strs.buf, strs.len) == 0 &&
		  write_all(fd, ents.buf, ents.len) == 0 && fdatasync(fd) == 0;
	close(fd);
	if (!ok || renameat(s->log.dirfd, tmp, s->log.dirfd, fin) != 0) {
		unlinkat(s->log.dirfd, tmp, 0);
		goto out;
	}
	/* No directory fsync: losing the rename only costs a rebuild. */
	seg->indexed = true;
	atomic_fetch_add(&s->idx_built, 1);
	rc = 0;
out:
	munmap(m, size);
	th_cbor_enc_release(&strs);
	th_cbor_enc_release(&ents);
	th_free(map);
	return rc;
}

int thx__idx_read(thx_store *s, const thx__seg *seg, uint64_t seg_size,
		  const uint8_t seg_hdr[THX__SEG_HDR], thx__idx *out)
{
	memset(out, 0, sizeof *out);
	char name[64];
	thx__idx_name(seg, false, name, sizeof name);
	int fd = openat(s->log.dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return TH_ENOTFOUND;
	struct stat st;
	uint8_t *buf = NULL;
	int rc = TH_ECORRUPT;
	if (fstat(fd, &st) != 0 || st.st_size < IDX_HDR + 4 || st.st_size > (1ll << 40))
		goto out;
	size_t len = (size_t)st.st_size;
	if (!(buf = th_malloc(len))) {
		rc = TH_ENOMEM;
		goto out;
	}
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, buf + got, len - got, (off_t)got);
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	if (memcmp(buf, IDX_MAGIC, 8) || thx__le32(buf + 36) != thx__crc32c(0, buf, 36) ||
	    thx__le32(buf + 8) != seg->segno || thx__le32(buf + 12) != seg->version ||
	    thx__le64(buf + 16) != seg_size || memcmp(buf + 24, seg_hdr + 16, 8) ||
	    thx__le32(buf + 32) != thx__crc32c(0, buf + IDX_HDR, len - IDX_HDR))
		goto out;
	/* The strings, checked once; entries are bounds-checked by next. */
	size_t pos = IDX_HDR + 4;
	uint32_t nstr = thx__le32(buf + IDX_HDR);
	if (nstr > (len - pos) / 2)
		goto out;
	const uint8_t **strs = th_malloc(((size_t)nstr + 1) * sizeof *strs);
	if (!strs) {
		rc = TH_ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < nstr; i++) {
		if (pos >= len || buf[pos] == 0 || buf[pos] > len - pos - 1) {
			th_free(strs);
			goto out;
		}
		strs[i] = buf + pos;
		pos += 1 + (size_t)buf[pos];
	}
	out->buf = buf;
	out->len = len;
	out->pos = pos;
	out->strs = strs;
	out->nstr = nstr;
	buf = NULL;
	rc = 0;
out:
	th_free(buf);
	close(fd);
	return rc;
}

int thx__idx_next(thx__idx *x, thx__idx_ent *e)
{
	if (x->pos >= x->len)
		return 0;
	const uint8_t *p = x->buf + x->pos;
	size_t left = x->len - x->pos;
	memset(e, 0, sizeof *e);
	e->type = p[0];
	if (left < 13)
		return -1;
	e->off = thx__le64(p + 1);
	if (e->type == THX__REC_EVENT || e->type == THX__REC_STUB) {
		if (left < 1 + IDX_EV)
			return -1;
		e->chain = thx__le32(p + 9);
		e->has_parent = p[13] != 0;
		memcpy(e->hash, p + 14, 32);
		e->seq = thx__le64(p + 46);
		e->ts = thx__le64(p + 54);
		e->size = thx__le64(p + 62);
		uint32_t a = thx__le32(p + 70), t = thx__le32(p + 74);
		if (a >= x->nstr || t >= x->nstr)
			return -1;
		e->actor = (const char *)x->strs[a] + 1;
		e->actor_len = x->strs[a][0];
		e->actor_sid = a;
		e->type_str = (const char *)x->strs[t] + 1;
		e->type_len = x->strs[t][0];
		e->type_sid = t;
		x->pos += 1 + IDX_EV;
		return 1;
	}
	if (e->type != THX__REC_CHAIN && e->type != THX__REC_BLOCK && e->type != THX__REC_PRUNE)
		return -1;
	uint32_t n = thx__le32(p + 9);
	if (n > left - 13)
		return -1;
	e->payload = p + 13;
	e->len = n;
	x->pos += 13 + (size_t)n;
	return 1;
}

void thx__idx_release(thx__idx *x)
{
	th_free(x->buf);
	th_free(x->strs);
	memset(x, 0, sizeof *x);
}

void thx__idx_build_sealed(thx_store *s)
{
	if (s->opts.read_only)
		return;
	pthread_mutex_lock(&s->compact_mu); /* no segment is replaced meanwhile */
	uint32_t n = atomic_load(&s->log.nslots);
	for (uint32_t i = 0; i < n; i++) {
		thx__seg *seg = s->log.segs[i];
		if (!seg)
			continue;
		pthread_mutex_lock(&s->log.mu);
		bool todo = seg->sealed && !seg->dead && !seg->indexed && !seg->no_index;
		pthread_mutex_unlock(&s->log.mu);
		if (todo && thx__idx_build(s, seg) != 0)
			seg->no_index = true; /* damaged or unwritable: do not retry */
	}
	pthread_mutex_unlock(&s->compact_mu);
}
