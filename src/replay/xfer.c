/*
 * xfer.c - a chain as one self-contained file: export and import
 * (thrp_export, thrp_import).
 *
 * Format (version 1). All integers big-endian.
 *
 *   offset 0   8 bytes  magic "THXPORT1"
 *   then records, each:
 *              1 byte   kind
 *              4 bytes  payload length n
 *              n bytes  payload: one deterministic-CBOR item
 *   kinds, in this order:
 *     'H' once   [1, chain-name, events, block-events, objects, blocks]
 *     'O' each   [hash-hex, bytes]          a Store object the events
 *                                           reference (components)
 *     'B' each   [index, first-seq, count, block-hash]   sealed blocks
 *     'E' each   [seq, timestamp-ns, actor, type, data, description|null,
 *                 event-hash]               in seq order from 0
 *     'Z' last   32 bytes (not CBOR): SHA-256 of every byte before this
 *                record
 *
 * Import checks the framing and the checksum before touching anything,
 * then puts the objects (their hashes must come out as named), appends
 * the events with their timestamps (each must hash to the recorded hash:
 * the chain is re-created identical, links included), seals blocks where
 * the original was sealed and checks their hashes. A file that fails any
 * check is refused with the byte offset of the problem.
 */
#include <errno.h>
#include <openssl/evp.h>

#include "base/base.h"
#include "base/cbor.h"
#include "theater/replay.h"

#define XF_MAGIC "THXPORT1"
#define XF_OBJECT_MAX (256u << 20)
#define XF_MAX_OBJECTS 64

/* ---- export ------------------------------------------------------------- */

typedef struct xf_out {
	FILE *f;
	EVP_MD_CTX *md;
	int rc;
} xf_out;

static void emit(xf_out *o, const void *p, size_t n)
{
	if (o->rc)
		return;
	if (fwrite(p, 1, n, o->f) != n)
		o->rc = TH_EIO;
	else if (!EVP_DigestUpdate(o->md, p, n))
		o->rc = TH_EIO;
}

static void record(xf_out *o, char kind, th_cbor_enc *e)
{
	uint8_t head[5];
	if (e->err) {
		if (!o->rc)
			o->rc = e->err;
		th_cbor_enc_release(e);
		return;
	}
	if (e->len > UINT32_MAX) {
		o->rc = TH_ELIMIT;
		th_cbor_enc_release(e);
		return;
	}
	head[0] = (uint8_t)kind;
	head[1] = (uint8_t)(e->len >> 24);
	head[2] = (uint8_t)(e->len >> 16);
	head[3] = (uint8_t)(e->len >> 8);
	head[4] = (uint8_t)e->len;
	emit(o, head, 5);
	emit(o, e->buf, e->len);
	th_cbor_enc_release(e);
}

/* Hashes named by component.loaded / actor.restarted (first item). */
static int referenced(thx_chain *c, char (*hex)[THS_HEX_LEN + 1], size_t *n,
		      th_err *err)
{
	uint64_t count = thx_chain_count(c);
	*n = 0;
	for (uint64_t s = 0; s < count; s++) {
		thx_event ev = { 0 };
		th_cbor_dec d;
		uint64_t k;
		const char *h;
		size_t hl;
		int rc = thx_get(c, s, &ev, err);
		if (rc)
			return rc;
		if (ev.pruned) {
			thx_event_release(&ev);
			return th_err_set(err, TH_ESTATE, "event %llu is pruned: the chain "
					  "cannot be exported self-contained",
					  (unsigned long long)s);
		}
		if (strcmp(ev.type, "component.loaded") && strcmp(ev.type, "actor.restarted")) {
			thx_event_release(&ev);
			continue;
		}
		th_cbor_dec_init(&d, ev.data, ev.len);
		if (!th_cbor_get_array(&d, &k, NULL) && k >= 1 &&
		    !th_cbor_get_text(&d, &h, &hl, NULL) && hl == THS_HEX_LEN) {
			bool seen = false;
			for (size_t i = 0; i < *n; i++)
				seen |= !memcmp(hex[i], h, hl);
			if (!seen && *n < XF_MAX_OBJECTS) {
				memcpy(hex[*n], h, hl);
				hex[(*n)++][hl] = 0;
			}
		}
		thx_event_release(&ev);
	}
	return 0;
}

int thrp_export(thx_chain *c, ths_store *store, FILE *f, th_err *err)
{
	char (*hex)[THS_HEX_LEN + 1] = NULL;
	size_t nobj = 0;
	uint64_t count = thx_chain_count(c), nblocks = thx_block_count(c);
	thx_chain_opts copts;
	xf_out o = { .f = f };
	th_cbor_enc e;
	uint8_t sum[32], zhead[5] = { 'Z', 0, 0, 0, 32 };
	unsigned sl = 0;
	int rc;

	hex = th_calloc(XF_MAX_OBJECTS, sizeof *hex);
	o.md = EVP_MD_CTX_new();
	if (!hex || !o.md || !EVP_DigestInit_ex(o.md, EVP_sha256(), NULL)) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	rc = referenced(c, hex, &nobj, err);
	if (rc)
		goto out;
	thx_chain_opts_get(c, &copts);
	emit(&o, XF_MAGIC, 8);
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, 6);
	th_cbor_put_uint(&e, 1);
	th_cbor_put_cstr(&e, thx_chain_name(c));
	th_cbor_put_uint(&e, count);
	th_cbor_put_uint(&e, copts.block_events);
	th_cbor_put_uint(&e, nobj);
	th_cbor_put_uint(&e, nblocks);
	record(&o, 'H', &e);

	for (size_t i = 0; i < nobj && !o.rc; i++) {
		ths_hash h;
		uint8_t *bytes = NULL;
		size_t len = 0;
		rc = ths_hash_parse(hex[i], &h, err);
		if (!rc)
			rc = ths_get(store, &h, XF_OBJECT_MAX, &bytes, &len, err);
		if (rc) {
			th_err_prefix(err, "object %s referenced by the chain", hex[i]);
			goto out;
		}
		th_cbor_enc_init(&e, NULL, 0);
		th_cbor_put_array(&e, 2);
		th_cbor_put_cstr(&e, hex[i]);
		th_cbor_put_bytes(&e, bytes, len);
		ths_buf_free(bytes);
		record(&o, 'O', &e);
	}
	for (uint64_t b = 0; b < nblocks && !o.rc; b++) {
		thx_block blk;
		rc = thx_block_get(c, b, &blk, err);
		if (rc)
			goto out;
		th_cbor_enc_init(&e, NULL, 0);
		th_cbor_put_array(&e, 4);
		th_cbor_put_uint(&e, blk.index);
		th_cbor_put_uint(&e, blk.first_seq);
		th_cbor_put_uint(&e, blk.count);
		th_cbor_put_bytes(&e, blk.hash, THX_HASH_LEN);
		record(&o, 'B', &e);
	}
	for (uint64_t s = 0; s < count && !o.rc; s++) {
		thx_event ev = { 0 };
		rc = thx_get(c, s, &ev, err);
		if (rc)
			goto out;
		th_cbor_enc_init(&e, NULL, 0);
		th_cbor_put_array(&e, 7);
		th_cbor_put_uint(&e, ev.seq);
		th_cbor_put_uint(&e, ev.timestamp_ns);
		th_cbor_put_cstr(&e, ev.actor);
		th_cbor_put_cstr(&e, ev.type);
		th_cbor_put_bytes(&e, ev.data ? ev.data : (const uint8_t *)"", ev.len);
		if (ev.description)
			th_cbor_put_cstr(&e, ev.description);
		else
			th_cbor_put_null(&e);
		th_cbor_put_bytes(&e, ev.hash, THX_HASH_LEN);
		thx_event_release(&ev);
		record(&o, 'E', &e);
	}
	if (!o.rc && !EVP_DigestFinal_ex(o.md, sum, &sl))
		o.rc = TH_EIO;
	if (!o.rc && (fwrite(zhead, 1, 5, f) != 5 || fwrite(sum, 1, 32, f) != 32 ||
		      fflush(f)))
		o.rc = TH_EIO;
	if (o.rc)
		rc = th_err_set(err, o.rc, "writing the export failed: %s",
				o.rc == TH_EIO ? strerror(errno) : th_strerror(o.rc));
out:
	EVP_MD_CTX_free(o.md);
	th_free(hex);
	return rc;
}

/* ---- import ------------------------------------------------------------- */

typedef struct xf_rec {
	char kind;
	size_t at;        /* offset of the record */
	const uint8_t *p; /* payload */
	size_t n;
} xf_rec;

static int bad(th_err *err, size_t at, const char *what)
{
	return th_err_set(err, TH_EINVAL, "import: byte %zu: %s", at, what);
}

/* Next record at *pos; 0 ok, 1 at the end of input. */
static int next_rec(const uint8_t *p, size_t len, size_t *pos, xf_rec *r,
		    th_err *err)
{
	size_t at = *pos;
	if (at == len)
		return 1;
	if (len - at < 5)
		return bad(err, at, "truncated record header");
	r->kind = (char)p[at];
	r->n = (size_t)p[at + 1] << 24 | (size_t)p[at + 2] << 16 |
	       (size_t)p[at + 3] << 8 | p[at + 4];
	r->at = at;
	if (!strchr("HOBEZ", r->kind) || !r->kind) {
		char what[64];
		snprintf(what, sizeof what, "unknown record kind 0x%02x", p[at]);
		return bad(err, at, what);
	}
	if (r->n > len - at - 5)
		return bad(err, at, "record length runs past the end of the file");
	r->p = p + at + 5;
	*pos = at + 5 + r->n;
	return 0;
}

typedef struct xf_block {
	uint64_t first, count;
	uint8_t hash[THX_HASH_LEN];
} xf_block;

static int import_event(const xf_rec *r, thx_chain *c, uint64_t want_seq,
			th_err *err)
{
	th_cbor_dec d;
	uint64_t k, seq, ts;
	const char *actor, *type, *desc = NULL;
	size_t al, tl, dl = 0, dn, hn;
	const uint8_t *data, *hash;
	char a[THX_NAME_MAX + 1], t[THX_NAME_MAX + 1], *ds = NULL;
	uint8_t got[THX_HASH_LEN];
	uint64_t s;
	int rc;

	th_cbor_dec_init(&d, r->p, r->n);
	if (th_cbor_get_array(&d, &k, NULL) || k != 7 ||
	    th_cbor_get_uint(&d, &seq, NULL) || th_cbor_get_uint(&d, &ts, NULL) ||
	    th_cbor_get_text(&d, &actor, &al, NULL) ||
	    th_cbor_get_text(&d, &type, &tl, NULL) ||
	    th_cbor_get_bytes(&d, &data, &dn, NULL) ||
	    (!th_cbor_get_null(&d) && th_cbor_get_text(&d, &desc, &dl, NULL)) ||
	    th_cbor_get_bytes(&d, &hash, &hn, NULL) || hn != THX_HASH_LEN ||
	    !th_cbor_at_end(&d) || al > THX_NAME_MAX || tl > THX_NAME_MAX)
		return bad(err, r->at + 5 + d.pos, "malformed event record");
	if (seq != want_seq)
		return bad(err, r->at, "events out of order");
	memcpy(a, actor, al);
	a[al] = 0;
	memcpy(t, type, tl);
	t[tl] = 0;
	if (desc) {
		ds = th_strndup(desc, dl);
		if (!ds)
			return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	thx_event_in in = { .actor = a, .type = t, .data = data, .len = dn,
			    .description = ds, .timestamp_ns = ts };
	rc = thx_append(c, &in, &s, got, err);
	th_free(ds);
	if (rc)
		return rc;
	if (s != seq || memcmp(got, hash, THX_HASH_LEN))
		return th_err_set(err, TH_ECORRUPT, "import: byte %zu: event %llu does "
				  "not hash to its recorded hash (altered file)",
				  r->at, (unsigned long long)seq);
	return 0;
}

int thrp_import(const uint8_t *p, size_t len, thx_store *chains,
		ths_store *store, thrp_import_info *info, th_err *err)
{
	xf_rec r;
	size_t pos = 8, zat = 0;
	bool have_z = false;
	uint8_t sum[32];
	unsigned sl = 0;
	th_cbor_dec d;
	uint64_t k, ver, nev, bev, nobj, nblk;
	const char *name;
	size_t nl;
	thx_chain *c = NULL;
	thx_chain_opts copts = { 0 };
	xf_block *blocks = NULL;
	uint64_t got_blocks = 0, got_events = 0, got_objects = 0;
	int rc;

	memset(info, 0, sizeof *info);
	if (len < 8 || memcmp(p, XF_MAGIC, 8))
		return bad(err, 0, "not a Theater chain export (magic THXPORT1 missing)");
	/* Pass 1: framing and checksum, before anything is written. */
	for (;;) {
		rc = next_rec(p, len, &pos, &r, err);
		if (rc == 1)
			break;
		if (rc)
			return rc;
		if (have_z)
			return bad(err, r.at, "data after the checksum record");
		if (r.kind == 'Z') {
			if (r.n != 32)
				return bad(err, r.at, "checksum record is not 32 bytes");
			have_z = true;
			zat = r.at;
		}
	}
	if (!have_z)
		return bad(err, len, "no checksum record: the file is truncated");
	if (!EVP_Digest(p, zat, sum, &sl, EVP_sha256(), NULL) || sl != 32)
		return th_err_set(err, TH_ENOMEM, "hashing failed");
	if (memcmp(sum, p + zat + 5, 32))
		return bad(err, zat, "checksum mismatch: the file was altered or damaged");

	/* Pass 2: the header. */
	pos = 8;
	if (next_rec(p, len, &pos, &r, err) || r.kind != 'H')
		return bad(err, 8, "the first record must be the header");
	th_cbor_dec_init(&d, r.p, r.n);
	if (th_cbor_get_array(&d, &k, NULL) || k != 6 ||
	    th_cbor_get_uint(&d, &ver, NULL) ||
	    th_cbor_get_text(&d, &name, &nl, NULL) ||
	    th_cbor_get_uint(&d, &nev, NULL) || th_cbor_get_uint(&d, &bev, NULL) ||
	    th_cbor_get_uint(&d, &nobj, NULL) || th_cbor_get_uint(&d, &nblk, NULL) ||
	    nl == 0 || nl > THX_NAME_MAX || bev > UINT32_MAX || nblk > nev)
		return bad(err, r.at + 5 + d.pos, "malformed header");
	if (ver != 1)
		return bad(err, r.at, "unsupported export version");
	memcpy(info->chain, name, nl);
	info->chain[nl] = 0;
	if (!thx_chain_open(chains, info->chain, NULL, false, &c, NULL) &&
	    thx_chain_count(c) > 0)
		return th_err_set(err, TH_EEXIST, "chain %s already exists here "
				  "(import into a fresh $THEATER_HOME)", info->chain);
	blocks = th_calloc(nblk ? nblk : 1, sizeof *blocks);
	if (!blocks)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	copts.durability = THX_BATCH;
	copts.block_events = (uint32_t)bev;
	rc = thx_chain_open(chains, info->chain, &copts, true, &c, err);
	if (rc)
		goto out;

	for (;;) {
		rc = next_rec(p, len, &pos, &r, err);
		if (rc)
			goto out; /* 'Z' always comes before the end */
		if (r.kind == 'Z')
			break;
		th_cbor_dec_init(&d, r.p, r.n);
		if (r.kind == 'O') {
			const char *hex;
			size_t hl, bn;
			const uint8_t *bytes;
			ths_hash h;
			char out_hex[THS_HEX_LEN + 1];
			if (got_events || got_blocks || th_cbor_get_array(&d, &k, NULL) || k != 2 ||
			    th_cbor_get_text(&d, &hex, &hl, NULL) || hl != THS_HEX_LEN ||
			    th_cbor_get_bytes(&d, &bytes, &bn, NULL)) {
				rc = bad(err, r.at, "malformed object record");
				goto out;
			}
			rc = ths_put(store, bytes, bn, &h, err);
			if (rc)
				goto out;
			ths_hash_hex(&h, out_hex);
			if (memcmp(out_hex, hex, THS_HEX_LEN)) {
				rc = th_err_set(err, TH_ECORRUPT, "import: byte %zu: object "
						"%.64s has other content", r.at, hex);
				goto out;
			}
			got_objects++;
		} else if (r.kind == 'B') {
			uint64_t idx, first, cnt;
			const uint8_t *h;
			size_t hn;
			if (got_events || got_blocks >= nblk ||
			    th_cbor_get_array(&d, &k, NULL) || k != 4 ||
			    th_cbor_get_uint(&d, &idx, NULL) || idx != got_blocks ||
			    th_cbor_get_uint(&d, &first, NULL) ||
			    th_cbor_get_uint(&d, &cnt, NULL) || cnt == 0 ||
			    th_cbor_get_bytes(&d, &h, &hn, NULL) || hn != THX_HASH_LEN) {
				rc = bad(err, r.at, "malformed block record");
				goto out;
			}
			blocks[got_blocks].first = first;
			blocks[got_blocks].count = cnt;
			memcpy(blocks[got_blocks].hash, h, THX_HASH_LEN);
			got_blocks++;
		} else if (r.kind == 'E') {
			rc = import_event(&r, c, got_events, err);
			if (rc)
				goto out;
			got_events++;
			/* Seal where the original block ended (an explicit seal). */
			for (uint64_t b = 0; b < got_blocks; b++) {
				if (blocks[b].first + blocks[b].count != got_events)
					continue;
				if (thx_block_count(c) <= b) {
					rc = thx_seal_block(c, err);
					if (rc)
						goto out;
				}
				thx_block blk;
				rc = thx_block_get(c, b, &blk, err);
				if (rc)
					goto out;
				if (memcmp(blk.hash, blocks[b].hash, THX_HASH_LEN)) {
					rc = th_err_set(err, TH_ECORRUPT, "import: byte %zu: block "
							"%llu does not hash to its recorded hash",
							r.at, (unsigned long long)b);
					goto out;
				}
			}
		} else {
			rc = bad(err, r.at, "a second header");
			goto out;
		}
	}
	if (got_events != nev || got_objects != nobj || got_blocks != nblk) {
		rc = bad(err, zat, "the header's counts do not match the records");
		goto out;
	}
	rc = thx_store_sync(chains, err);
	info->events = got_events;
	info->objects = got_objects;
out:
	th_free(blocks);
	return rc;
}
