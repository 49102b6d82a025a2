/*
 * proof.c - inclusion proofs: one event's hash, the header of its block and
 * the audit path (RFC 9162 section 2.1.3) from the event to the block's
 * Merkle root. Checking needs nothing else: recompute the root from the
 * path, then the block header's hash, and compare it with a block hash the
 * checker trusts (e.g. taken from a verified copy of the chain).
 *
 * Encoding (deterministic CBOR):
 *   array(6) [ "theater-proof-1", chain: tstr, seq: uint,
 *              event_hash: bstr(32),
 *              block: array(6) [ prev: bstr(32) / null, index, first_seq,
 *                                count, merkle_root: bstr(32),
 *                                hash: bstr(32) ],
 *              path: array(k) of bstr(32) ]
 * The leaf index is seq - first_seq.
 */
#include "chain/internal.h"

#define PROOF_TAG "theater-proof-1"

int thx_prove(thx_chain *c, uint64_t seq, thx_proof *out, th_err *err)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&c->mu);
	if (seq >= c->n) {
		pthread_mutex_unlock(&c->mu);
		return th_err_set(err, TH_ENOTFOUND, "chain '%s' has no event %llu", c->name,
				  (unsigned long long)seq);
	}
	int rc = thx__seal_pending(c, err);
	if (rc) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	if (seq >= c->block_start) {
		pthread_mutex_unlock(&c->mu);
		return th_err_set(err, TH_ESTATE,
				  "chain '%s' event %llu is in the open block (seal it first)",
				  c->name, (unsigned long long)seq);
	}
	uint64_t lo = 0, hi = c->nblocks;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (c->blocks[mid].h.first_seq <= seq)
			lo = mid;
		else
			hi = mid;
	}
	thx_block b = c->blocks[lo].h;
	uint8_t (*leaves)[32] = th_malloc((size_t)b.count * 32);
	if (!leaves) {
		pthread_mutex_unlock(&c->mu);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	for (uint64_t i = 0; i < b.count; i++)
		memcpy(leaves[i], thx__ent_at(c, b.first_seq + i)->hash, 32);
	pthread_mutex_unlock(&c->mu);

	snprintf(out->chain, sizeof out->chain, "%s", c->name);
	out->seq = seq;
	out->block = b;
	out->leaf_index = seq - b.first_seq;
	memcpy(out->event_hash, leaves[out->leaf_index], 32);
	out->path_len = thx__merkle_path((const uint8_t (*)[32])leaves, (size_t)b.count,
					 (size_t)out->leaf_index, out->path);
	th_free(leaves);
	return 0;
}

int thx_proof_check(const thx_proof *p, const uint8_t *block_hash, th_err *err)
{
	uint8_t root[32];
	if (p->path_len > THX_PROOF_MAX_PATH || p->block.count == 0 ||
	    p->seq < p->block.first_seq || p->seq - p->block.first_seq != p->leaf_index)
		return th_err_set(err, TH_EINVAL, "proof: malformed");
	if (!thx__merkle_from_path(p->event_hash, (size_t)p->leaf_index,
				   (size_t)p->block.count, (const uint8_t (*)[32])p->path,
				   p->path_len, root))
		return th_err_set(err, TH_ECORRUPT,
				  "proof: the path does not fit leaf %llu of %llu",
				  (unsigned long long)p->leaf_index,
				  (unsigned long long)p->block.count);
	if (memcmp(root, p->block.merkle_root, 32))
		return th_err_set(err, TH_ECORRUPT,
				  "proof: the event is not in block %llu (Merkle root differs)",
				  (unsigned long long)p->block.index);
	thx_block h = p->block;
	if (!p->chain[0])
		return th_err_set(err, TH_EINVAL, "proof: no chain name");
	thx__block_hash(&h, p->chain);
	if (memcmp(h.hash, block_hash ? block_hash : p->block.hash, 32))
		return th_err_set(err, TH_ECORRUPT,
				  "proof: block header does not hash to the expected block hash");
	return 0;
}

int thx_proof_encode(const thx_proof *p, uint8_t **out, size_t *len, th_err *err)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, 6);
	th_cbor_put_cstr(&e, PROOF_TAG);
	th_cbor_put_cstr(&e, p->chain);
	th_cbor_put_uint(&e, p->seq);
	th_cbor_put_bytes(&e, p->event_hash, 32);
	th_cbor_put_array(&e, 6);
	if (p->block.has_prev)
		th_cbor_put_bytes(&e, p->block.prev, 32);
	else
		th_cbor_put_null(&e);
	th_cbor_put_uint(&e, p->block.index);
	th_cbor_put_uint(&e, p->block.first_seq);
	th_cbor_put_uint(&e, p->block.count);
	th_cbor_put_bytes(&e, p->block.merkle_root, 32);
	th_cbor_put_bytes(&e, p->block.hash, 32);
	th_cbor_put_array(&e, p->path_len);
	for (size_t i = 0; i < p->path_len && i < THX_PROOF_MAX_PATH; i++)
		th_cbor_put_bytes(&e, p->path[i], 32);
	if (th_cbor_enc_take(&e, out, len))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	return 0;
}

static int get_hash(th_cbor_dec *d, uint8_t out[32], const char *what, th_err *err)
{
	const uint8_t *h;
	size_t n;
	if (th_cbor_get_bytes(d, &h, &n, err) || n != 32)
		return th_err_set(err, TH_EINVAL, "proof: bad %s", what);
	memcpy(out, h, 32);
	return 0;
}

int thx_proof_decode(const uint8_t *in, size_t len, thx_proof *p, th_err *err)
{
	th_cbor_dec d;
	uint64_t n;
	const char *s;
	size_t sl;
	memset(p, 0, sizeof *p);
	if (!th_cbor_check_deterministic(in, len, err))
		return th_err_prefix(err, "proof");
	th_cbor_dec_init(&d, in, len);
	if (th_cbor_get_array(&d, &n, err) || n != 6 || th_cbor_get_text(&d, &s, &sl, err) ||
	    sl != strlen(PROOF_TAG) || memcmp(s, PROOF_TAG, sl))
		return th_err_set(err, TH_EINVAL, "proof: not a theater-proof-1");
	if (th_cbor_get_text(&d, &s, &sl, err) || sl == 0 || sl > THX_NAME_MAX)
		return th_err_set(err, TH_EINVAL, "proof: bad chain name");
	memcpy(p->chain, s, sl);
	p->chain[sl] = '\0';
	if (th_cbor_get_uint(&d, &p->seq, err) || get_hash(&d, p->event_hash, "event hash", err))
		return TH_EINVAL;
	if (th_cbor_get_array(&d, &n, err) || n != 6)
		return th_err_set(err, TH_EINVAL, "proof: bad block header");
	if (!th_cbor_get_null(&d)) {
		if (get_hash(&d, p->block.prev, "previous block hash", err))
			return TH_EINVAL;
		p->block.has_prev = true;
	}
	if (th_cbor_get_uint(&d, &p->block.index, err) ||
	    th_cbor_get_uint(&d, &p->block.first_seq, err) ||
	    th_cbor_get_uint(&d, &p->block.count, err) ||
	    get_hash(&d, p->block.merkle_root, "Merkle root", err) ||
	    get_hash(&d, p->block.hash, "block hash", err))
		return th_err_set(err, TH_EINVAL, "proof: bad block header");
	if (th_cbor_get_array(&d, &n, err) || n > THX_PROOF_MAX_PATH)
		return th_err_set(err, TH_EINVAL, "proof: bad path");
	p->path_len = (size_t)n;
	for (size_t i = 0; i < p->path_len; i++)
		if (get_hash(&d, p->path[i], "path hash", err))
			return TH_EINVAL;
	if (p->seq < p->block.first_seq)
		return th_err_set(err, TH_EINVAL, "proof: seq before its block");
	p->leaf_index = p->seq - p->block.first_seq;
	return 0;
}
