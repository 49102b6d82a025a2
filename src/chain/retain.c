/*
 * retain.c - retention and pruning. A chain's retention policy (age, count,
 * bytes) decides how long a prefix of it is pruned: the index keeps those
 * events' hashes (so verification and proofs still work end to end), a
 * prune record goes to the log, memory chains free whole chunks, and
 * compaction (compact.c) later reclaims the space on disk.
 */
#include "chain/internal.h"

/* Copy the chain list (chains live until the store closes), so that
 * c->mu can be taken without s->lk held (lock order: c->mu before s->lk). */
int thx__chains_snapshot(thx_store *s, thx_chain ***out, size_t *n, th_err *err)
{
	pthread_rwlock_rdlock(&s->lk);
	thx_chain **a = th_malloc((s->nchains ? s->nchains : 1) * sizeof *a);
	if (a) {
		if (s->nchains) /* s->chains is NULL until the first chain */
			memcpy(a, s->chains, s->nchains * sizeof *a);
		*n = s->nchains;
	}
	pthread_rwlock_unlock(&s->lk);
	if (!a)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	*out = a;
	return 0;
}

/* ---- retention ---- */

/* Prune seqs below `below` with c->mu held; writes a prune record. */
static int prune_locked(thx_chain *c, uint64_t below, uint64_t *count, th_err *err)
{
	if (below > c->n)
		below = c->n;
	if (below <= c->prune_below)
		return 0;
	/* memory chains: the data pruned must be hashed first */
	int hrc = thx__hash_upto(c, below, err);
	if (hrc)
		return hrc;
	if (c->opts.durability != THX_NONE) {
		th_cbor_enc e;
		uint8_t buf[64];
		th_cbor_enc_init(&e, buf, sizeof buf);
		th_cbor_put_raw(&e, (uint8_t[THX__REC_HDR]){ 0 }, THX__REC_HDR);
		th_cbor_put_array(&e, 2);
		th_cbor_put_uint(&e, c->no);
		th_cbor_put_uint(&e, below);
		thx__frame(buf, THX__REC_PRUNE, (uint32_t)(e.len - THX__REC_HDR));
		int rc = thx__put_one(c->s, buf, e.len, false, err);
		if (rc)
			return rc;
	}
	for (uint64_t i = c->prune_below; i < below; i++) {
		thx__ent *e = thx__ent_at(c, i);
		if (e->flags & (THX__E_PRUNED | THX__E_MISSING))
			continue;
		e->flags |= THX__E_PRUNED;
		c->kept_bytes -= e->size;
		if (e->slot == UINT32_MAX) {
			e->mem = NULL;
		} else {
			thx__seg *sg = thx__log_seg(&c->s->log, e->slot);
			if (sg)
				atomic_fetch_add(&sg->garbage, e->size ? e->size : 1);
		}
		if (count)
			(*count)++;
	}
	c->prune_below = below;
	/* Free memory chunks that hold only pruned events (the last chunk
	 * stays: appends continue there). */
	while (c->mhead && c->mhead != c->mtail && c->mhead->last_seq < below) {
		thx__memchunk *k = c->mhead;
		c->mhead = k->next;
		if (!c->mspare && k->cap >= THX__CHUNK_MAX) /* one full-size chunk is kept
							     for reuse: no new pages */
			c->mspare = k;
		else
			thx__chunk_free(k);
	}
	return 0;
}

int thx_prune_below(thx_chain *c, uint64_t seq, th_err *err)
{
	pthread_mutex_lock(&c->mu);
	int rc = prune_locked(c, seq, NULL, err);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int retention_apply(thx_chain *c, uint64_t now, uint64_t *count, th_err *err)
{
	pthread_mutex_lock(&c->mu);
	const thx_retention *r = &c->opts.retention;
	if (!r->max_age_ns && !r->max_events && !r->max_bytes) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	uint64_t below = c->prune_below;
	if (r->max_events && c->n > r->max_events && c->n - r->max_events > below)
		below = c->n - r->max_events;
	if (r->max_age_ns && now > r->max_age_ns) {
		uint64_t t = thx__ts_lower(c, now - r->max_age_ns);
		if (t > below)
			below = t;
	}
	if (r->max_bytes) {
		uint64_t kept = c->kept_bytes;
		uint64_t i = c->prune_below;
		for (; i < below; i++)
			if (!(thx__ent_at(c, i)->flags & (THX__E_PRUNED | THX__E_MISSING)))
				kept -= thx__ent_at(c, i)->size;
		while (kept > r->max_bytes && i < c->n) {
			if (!(thx__ent_at(c, i)->flags & (THX__E_PRUNED | THX__E_MISSING)))
				kept -= thx__ent_at(c, i)->size;
			i++;
		}
		if (i > below)
			below = i;
	}
	int rc = prune_locked(c, below, count, err);
	pthread_mutex_unlock(&c->mu);
	return rc;
}


int thx_prune(thx_store *s, uint64_t *pruned, th_err *err)
{
	uint64_t now = th_wall_ns(), count = 0;
	thx_chain **all;
	size_t n;
	int rc = thx__chains_snapshot(s, &all, &n, err);
	for (size_t i = 0; i < n && !rc; i++)
		rc = retention_apply(all[i], now, &count, err);
	th_free(all);
	if (pruned)
		*pruned = count;
	return rc;
}
