/*
 * index.c - the in-memory indexes of the Event Chain: interned strings
 * (actor ids and event types, stored once per store and named by a u32),
 * posting lists (type -> seqs, actor -> seqs per chain) and the queries
 * that use them. Timestamps never decrease within a chain, so a time range
 * is two binary searches over the chain's entries. All of it is rebuilt
 * from the segments when a store is opened (recover.c).
 */
#include "chain/internal.h"

/* ---- interned strings (actor ids, event types) ---- */

uint64_t thx__hash_str(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

/* Interned strings live in pages that never move (page j holds 64 << j
 * of them, so 32 pages hold any u32 id); a string is written once, then
 * published by a release store of nstrs_pub, so thx__str needs no lock. */
static char **str_slot(thx_store *s, uint32_t id)
{
	unsigned j = 63u - (unsigned)__builtin_clzll(((uint64_t)id >> 6) + 1);
	return &s->strpages[j][(uint64_t)id - ((((uint64_t)1 << j) - 1) << 6)];
}

const char *thx__str(thx_store *s, uint32_t id)
{
	if (id >= atomic_load_explicit(&s->nstrs_pub, memory_order_acquire))
		return "";
	return *str_slot(s, id);
}

void thx__strs_release(thx_store *s)
{
	for (size_t i = 0; i < s->nstrs; i++)
		th_free(*str_slot(s, (uint32_t)i));
	for (size_t j = 0; j < TH_ARRAY_LEN(s->strpages); j++)
		th_free(s->strpages[j]);
}

/* Lookup without inserting; s->lk held. */
bool thx__str_find(thx_store *s, const char *str, size_t n, uint32_t *id)
{
	if (!s->strmap_cap)
		return false;
	size_t mask = s->strmap_cap - 1;
	for (size_t i = thx__hash_str(str, n) & mask;; i = (i + 1) & mask) {
		uint32_t v = s->strmap[i];
		if (!v)
			return false;
		const char *c = *str_slot(s, v - 1);
		if (strlen(c) == n && memcmp(c, str, n) == 0) {
			*id = v - 1;
			return true;
		}
	}
}

int thx__intern(thx_store *s, const char *str, size_t n, uint32_t *id,
		      const char **interned)
{
	pthread_rwlock_rdlock(&s->lk);
	bool found = thx__str_find(s, str, n, id);
	if (found)
		*interned = *str_slot(s, *id);
	pthread_rwlock_unlock(&s->lk);
	if (found)
		return 0;
	pthread_rwlock_wrlock(&s->lk);
	int rc = 0;
	if (thx__str_find(s, str, n, id)) {
		*interned = *str_slot(s, *id);
		goto out;
	}
	if ((s->nstrs + 1) * 2 > s->strmap_cap) {
		size_t cap = s->strmap_cap ? s->strmap_cap * 2 : 256;
		uint32_t *m = th_calloc(cap, sizeof *m);
		if (!m) {
			rc = TH_ENOMEM;
			goto out;
		}
		for (size_t k = 0; k < s->nstrs; k++) {
			const char *c = *str_slot(s, (uint32_t)k);
			size_t i = thx__hash_str(c, strlen(c)) & (cap - 1);
			while (m[i])
				i = (i + 1) & (cap - 1);
			m[i] = (uint32_t)k + 1;
		}
		th_free(s->strmap);
		s->strmap = m;
		s->strmap_cap = cap;
	}
	if (s->nstrs >= UINT32_MAX) {
		rc = TH_ENOMEM;
		goto out;
	}
	unsigned pg = 63u - (unsigned)__builtin_clzll(((uint64_t)s->nstrs >> 6) + 1);
	if (!s->strpages[pg] && !(s->strpages[pg] = th_malloc(((size_t)64 << pg) *
							      sizeof(char *)))) {
		rc = TH_ENOMEM;
		goto out;
	}
	char *copy = th_strndup(str, n);
	if (!copy) {
		rc = TH_ENOMEM;
		goto out;
	}
	size_t i = thx__hash_str(str, n) & (s->strmap_cap - 1);
	while (s->strmap[i])
		i = (i + 1) & (s->strmap_cap - 1);
	*str_slot(s, (uint32_t)s->nstrs) = copy;
	s->strmap[i] = (uint32_t)s->nstrs + 1;
	*id = (uint32_t)s->nstrs++;
	atomic_store_explicit(&s->nstrs_pub, (uint32_t)s->nstrs, memory_order_release);
	*interned = copy;
out:
	pthread_rwlock_unlock(&s->lk);
	return rc;
}

/* ---- posting lists: id -> seqs, for type and actor lookups ---- */

thx__post *thx__pmap_find(thx__pmap *m, uint32_t id)
{
	if (!m->nslots)
		return NULL;
	size_t mask = m->nslots - 1;
	for (size_t i = (id * 2654435761u) & mask;; i = (i + 1) & mask) {
		uint32_t v = m->slots[i];
		if (!v)
			return NULL;
		if (m->posts[v - 1].id == id)
			return &m->posts[v - 1];
	}
}

/* Appends to a chain mostly repeat the last type and actor, so the last
 * post reserved is remembered and found without hashing. */
thx__post *thx__pmap_reserve(thx__pmap *m, uint32_t id)
{
	thx__post *p;
	if (m->last && m->posts[m->last - 1].id == id)
		p = &m->posts[m->last - 1];
	else
		p = thx__pmap_find(m, id);
	if (p) {
		m->last = (uint32_t)(p - m->posts) + 1;
		if (p->n < p->cap)
			return p;
		size_t cap = p->cap * 2;
		uint64_t *a = th_realloc(p->seqs, cap * sizeof *a);
		if (!a)
			return NULL;
		p->seqs = a;
		p->cap = cap;
		return p;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4;
		thx__post *a = th_realloc(m->posts, cap * sizeof *a);
		if (!a)
			return NULL;
		m->posts = a;
		m->cap = cap;
	}
	if ((m->n + 1) * 2 > m->nslots) {
		size_t cap = m->nslots ? m->nslots * 2 : 8;
		uint32_t *sl = th_calloc(cap, sizeof *sl);
		if (!sl)
			return NULL;
		for (size_t k = 0; k < m->n; k++) {
			size_t i = (m->posts[k].id * 2654435761u) & (cap - 1);
			while (sl[i])
				i = (i + 1) & (cap - 1);
			sl[i] = (uint32_t)k + 1;
		}
		th_free(m->slots);
		m->slots = sl;
		m->nslots = cap;
	}
	uint64_t *a = th_malloc(8 * sizeof *a);
	if (!a)
		return NULL;
	thx__post *np = &m->posts[m->n];
	np->id = id;
	np->seqs = a;
	np->n = 0;
	np->cap = 8;
	size_t i = (id * 2654435761u) & (m->nslots - 1);
	while (m->slots[i])
		i = (i + 1) & (m->nslots - 1);
	m->slots[i] = (uint32_t)++m->n;
	m->last = (uint32_t)m->n;
	return np;
}

/* Appends leave the posting lists alone (an append is the hot path, a
 * query by type or actor the rare one): the first query after appends
 * adds them here. Entries never change type or actor once appended, and
 * lost ones (THX__E_MISSING) are in no list. */
int thx__index_catch_up(thx_chain *c, th_err *err)
{
	for (; c->indexed < c->n; c->indexed++) {
		const thx__ent *e = thx__ent_at(c, c->indexed);
		if (e->flags & THX__E_MISSING)
			continue;
		thx__post *tp = thx__pmap_reserve(&c->types, e->type_id);
		if (!tp)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		thx__post *ap = thx__pmap_reserve(&c->actors, e->actor_id);
		if (!ap)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		/* both reserved before either is filled: a failure leaves
		 * both lists and indexed as they were */
		tp->seqs[tp->n++] = c->indexed;
		ap->seqs[ap->n++] = c->indexed;
	}
	return 0;
}

void thx__pmap_release(thx__pmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		th_free(m->posts[i].seqs);
	th_free(m->posts);
	th_free(m->slots);
	memset(m, 0, sizeof *m);
}

/* ---- queries ---- */

/* First seq with ts >= t (timestamps never decrease). */
uint64_t thx__ts_lower(thx_chain *c, uint64_t t)
{
	uint64_t lo = 0, hi = c->n;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (thx__ent_at(c, mid)->ts < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First index in a sorted seq list with value >= v. */
static size_t seq_lower(const uint64_t *a, size_t n, uint64_t v)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int thx_query_run(thx_chain *c, const thx_query *q, thx_event_fn fn, void *arg,
		  th_err *err)
{
	thx_query none = { 0 };
	uint32_t tid = 0, aid = 0;
	if (!q)
		q = &none;
	pthread_rwlock_rdlock(&c->s->lk);
	bool tfound = q->type && thx__str_find(c->s, q->type, strlen(q->type), &tid);
	bool afound = q->actor && thx__str_find(c->s, q->actor, strlen(q->actor), &aid);
	pthread_rwlock_unlock(&c->s->lk);
	if ((q->type && !tfound) || (q->actor && !afound))
		return 0;

	pthread_mutex_lock(&c->mu);
	int rc = thx__index_catch_up(c, err);
	if (rc) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	uint64_t lo = q->from_seq, hi = c->n;
	if (q->since_ns) {
		uint64_t t = thx__ts_lower(c, q->since_ns);
		if (t > lo)
			lo = t;
	}
	if (q->until_ns) {
		uint64_t t = thx__ts_lower(c, q->until_ns);
		if (t < hi)
			hi = t;
	}
	/* Drive the walk by the shortest posting list that applies. */
	const uint64_t *list = NULL;
	size_t ln = 0;
	thx__post *tp = q->type ? thx__pmap_find(&c->types, tid) : NULL;
	thx__post *ap = q->actor ? thx__pmap_find(&c->actors, aid) : NULL;
	if ((q->type && !tp) || (q->actor && !ap) || lo >= hi) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	if (tp && (!ap || tp->n <= ap->n)) {
		list = tp->seqs;
		ln = tp->n;
	} else if (ap) {
		list = ap->seqs;
		ln = ap->n;
	}
	size_t cap = 64, n = 0;
	uint64_t *hits = th_malloc(cap * sizeof *hits);
	if (!hits) {
		pthread_mutex_unlock(&c->mu);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	size_t i = list ? seq_lower(list, ln, lo) : 0;
	for (uint64_t seq = list ? 0 : lo;; ) {
		if (list) {
			if (i >= ln)
				break;
			seq = list[i++];
		} else if (seq >= hi) {
			break;
		}
		if (seq >= hi)
			break;
		const thx__ent *e = thx__ent_at(c, seq);
		if ((!q->type || e->type_id == tid) && (!q->actor || e->actor_id == aid) &&
		    !(e->flags & THX__E_MISSING)) {
			if (n == cap) {
				uint64_t *a = th_realloc(hits, cap * 2 * sizeof *a);
				if (!a) {
					th_free(hits);
					pthread_mutex_unlock(&c->mu);
					return th_err_set(err, TH_ENOMEM, "out of memory");
				}
				hits = a;
				cap *= 2;
			}
			hits[n++] = seq;
			if (q->limit && n >= q->limit)
				break;
		}
		if (!list)
			seq++;
	}
	pthread_mutex_unlock(&c->mu);

	for (size_t k = 0; k < n && !rc; k++) {
		thx_event ev;
		th_err e2 = { 0 };
		if ((rc = thx_get(c, hits[k], &ev, &e2))) {
			if (rc != TH_ECORRUPT) {
				if (err)
					*err = e2;
				break;
			}
			ev.damaged = true; /* index fields only; the walk goes on */
		}
		rc = fn(&ev, arg);
		thx_event_release(&ev);
	}
	th_free(hits);
	return rc;
}
