/*
 * hasher.c - deferred hashing of memory chains: one thread per store;
 * the canonical encoding of a memory chain's event from its entry.
 *
 * An append to a memory (THX_NONE) chain stores the event (entry + data)
 * and returns its seq without encoding or hashing it; about 60% of a small
 * append was SHA-256. The hasher thread computes the hashes later, in seq
 * order per chain, on another core. Nothing observable changes: every
 * reader of a hash (thx_get, thx_chain_head, blocks, proofs, verify,
 * pruning, subscriptions through thx_get) first calls thx__hash_upto,
 * which waits for the hasher if it is hashing that chain and hashes the
 * rest inline.
 *
 * PROTOCOL (per chain, fields in thx_chain)
 *   hashed   events [0, hashed) have their hash; only grows; under c->mu.
 *   hashing  the hasher is hashing [hashed, x) with c->mu released: it took
 *            the entries' addresses under c->mu (entry pages never move;
 *            the page table may) and writes only their hash fields. Entries
 *            at or above `hashed` are not otherwise written once appended
 *            (pruning first hashes up to its bound), so readers of other
 *            fields need no wait. A reader that needs a hash waits on hcv.
 *   hqueued  c is on the store's queue or being hashed: set by an
 *            appender (under c->mu) that then pushes c; cleared by the
 *            hasher under c->mu only once hashed == n (else the hasher
 *            pushes c again itself), so no appended event is ever left
 *            unqueued.
 *
 * ROUNDS. The hasher takes the whole queue, makes the spares its chains
 * lack, then hashes each chain up to where it was when its turn came;
 * events appended meanwhile wait for the next round (the chain is pushed
 * again), so one chain appended to faster than it can be hashed does not
 * keep the hasher from the others.
 *
 * WAKE-UPS: an appender signals the hasher only when it sleeps idle. After
 * a round the hasher sleeps THX__HASH_PERIOD_MS before the next one, so in
 * a steady stream it is woken by its timer, about once per batch of many
 * events, and appenders make no system call for it; after a round that
 * left work behind it goes on at once. A queue found empty after that
 * sleep sends it back to the idle sleep.
 *
 * SPARES. The first write to a fresh page costs a page fault that zeroes
 * it; an append that starts a new data chunk or entry page would take them
 * all, and in a long run they were a fifth of the appending thread's time.
 * So for a chain that is already large (its last chunk at least
 * THX__SPARE_CHUNK, its next entry page at least THX__SPARE_PAGE entries)
 * and has used half of its current chunk or page, the hasher allocates the
 * next chunk or entry page, touches every page of it with c->mu released,
 * and leaves it in c->mspare or c->espare, where the append that needs it
 * takes it: at the start of a round, between claims and after hashing (a
 * spare made only after a long round came too late: the appender faulted
 * its pages in itself). A chain has at most one of each: the memory held
 * ahead is at most the size of its next chunk and page (2 MiB each, huge
 * pages: internal.h THX__HUGE), and small chains (most actors) never get
 * any. (Spares made as soon as a chunk or page was started were never used
 * by a chain that stopped before filling it: in a 1M-hop ThreadRing, 100
 * chains left 400 MB of touched spares and the hasher spent more time
 * zeroing pages than hashing.)
 *
 * PAIRS. The hasher visits two chains at a time and hashes their events
 * in pairs (thx__sha256_x2, sha256.c): the SHA unit then works on two
 * independent messages, where one chain alone is a single dependent
 * sequence (each event's encoding holds its parent's hash).
 *
 * Lock order: c->mu -> s->hq_mu never happens; the hasher takes hq_mu, then
 * (after releasing it) c->mu.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "chain/internal.h"

#define THX__HASH_PERIOD_MS 1
#define THX__HASH_RUN 64 /* events hashed per claim (c->mu released) */
#define THX__SPARE_CHUNK ((size_t)64 << 10) /* bytes */
#define THX__SPARE_PAGE 512		    /* entries */
#define THX__PAGE 4096

/* The fields of a memory-chain event beyond its entry: strings, data and
 * description (in its memory chunk). */
typedef struct mem_fields {
	const char *actor, *type, *desc;
	const uint8_t *data;
	size_t alen, tlen, len, dlen;
} mem_fields;

/* The hasher's memory of interned strings it has seen, with their
 * lengths (direct-mapped by id; interned strings never move or change). */
#define STRCACHE 64
typedef struct strcache {
	uint32_t id[STRCACHE];
	const char *s[STRCACHE];
	size_t len[STRCACHE];
} strcache;

static void strcache_init(strcache *sc)
{
	memset(sc->id, 0xff, sizeof sc->id);
}

static const char *str_of(thx_store *s, strcache *sc, uint32_t id, size_t *len)
{
	if (!sc) {
		const char *p = thx__str(s, id);
		*len = strlen(p);
		return p;
	}
	uint32_t k = id % STRCACHE;
	if (sc->id[k] != id) {
		sc->s[k] = thx__str(s, id);
		sc->len[k] = strlen(sc->s[k]);
		/* "" stands for an id not yet published: not remembered */
		sc->id[k] = sc->len[k] ? id : UINT32_MAX;
	}
	*len = sc->len[k];
	return sc->s[k];
}

static void fields_of(thx_store *s, strcache *sc, const thx__ent *e, mem_fields *f)
{
	f->actor = str_of(s, sc, e->actor_id, &f->alen);
	f->type = str_of(s, sc, e->type_id, &f->tlen);
	f->data = e->mem;
	f->desc = NULL;
	f->dlen = 0;
	if (e->flags & THX__E_DESC) {
		f->dlen = thx__le32(e->mem);
		f->data = e->mem + 4;
		f->desc = (const char *)f->data + (e->size - f->dlen);
	}
	f->len = e->size - f->dlen;
}

static size_t encode(const mem_fields *f, const uint8_t *parent, uint64_t seq, uint64_t ts,
		     uint8_t *out)
{
	return thx__enc_event_raw(out, parent, f->actor, f->alen, seq, ts, f->type, f->tlen,
				  f->data, f->len, f->desc, f->dlen);
}

int thx__mem_encode(thx_chain *c, uint64_t seq, uint8_t **out, size_t *len,
		    th_err *err)
{
	const thx__ent *e = thx__ent_at(c, seq);
	mem_fields f;
	fields_of(c->s, NULL, e, &f);
	uint8_t *buf = th_malloc(thx__event_bound(f.alen, f.tlen, f.len, f.dlen));
	if (!buf)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	*len = encode(&f, seq ? thx__ent_at(c, seq - 1)->hash : NULL, seq, e->ts, buf);
	*out = buf;
	return 0;
}

/* Encode memory-chain event seq (entry e, its parent's entry prev or NULL
 * for seq 0) into *buf, grown as needed (*buf == stack: not owned); returns
 * its length, 0 when out of memory (an encoding is never empty). */
static size_t enc_ent(thx_store *s, strcache *sc, const thx__ent *prev, const thx__ent *e,
		      uint64_t seq, uint8_t **buf, size_t *cap, uint8_t *stack)
{
	mem_fields f;
	fields_of(s, sc, e, &f);
	size_t need = thx__event_bound(f.alen, f.tlen, f.len, f.dlen);
	if (need > *cap) {
		uint8_t *nb = th_malloc(need);
		if (!nb)
			return 0;
		if (*buf != stack)
			th_free(*buf);
		*buf = nb;
		*cap = need;
	}
	return encode(&f, prev ? prev->hash : NULL, seq, e->ts, *buf);
}

int thx__hash_upto(thx_chain *c, uint64_t need, th_err *err)
{
	if (c->opts.durability != THX_NONE || c->hashed >= need)
		return 0;
	/* A process forked while the hasher held a claim on c has no hasher
	 * to finish it: there the claim's events are simply hashed again
	 * (hq_pid was written before the hasher could set c->hashing). */
	while (c->hashing && c->s->hq_pid == getpid()) {
		c->hwaiters++;
		pthread_cond_wait(&c->hcv, &c->mu);
		c->hwaiters--;
	}
	if (need > c->n)
		need = c->n;
	uint8_t stack[1024];
	uint8_t *buf = stack;
	size_t cap = sizeof stack;
	int rc = 0;
	while (c->hashed < need) {
		uint64_t i = c->hashed;
		thx__ent *e = thx__ent_at(c, i);
		size_t len = enc_ent(c->s, NULL, i ? thx__ent_at(c, i - 1) : NULL, e, i,
				     &buf, &cap, stack);
		if (!len) {
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
			break;
		}
		thx__sha256(buf, len, e->hash);
		c->hashed = i + 1;
	}
	if (buf != stack)
		th_free(buf);
	return rc;
}

/* The spares c lacks (c->mu held): *chunk bytes of data chunk, *page
 * entries for entry page *j; 0 when none is wanted. */
static void spares_wanted(thx_chain *c, size_t *chunk, size_t *page, uint32_t *j)
{
	*chunk = 0;
	*page = 0;
	*j = c->nepages;
	if (!c->mspare && c->mtail && c->mtail->cap >= THX__SPARE_CHUNK &&
	    c->mtail->used >= c->mtail->cap / 2)
		*chunk = thx__memchunk_next(c->mtail);
	if (c->espare || thx__ent_page_len(*j) < THX__SPARE_PAGE)
		return;
	uint64_t off;
	uint32_t cur = thx__ent_page(c->n, &off); /* where the next entry goes */
	if (cur >= *j || (cur + 1 == *j && off >= thx__ent_page_len(cur) / 2))
		*page = thx__ent_page_len(*j);
}

/* Fault in every page of [p, p + n): the whole pages in one call where
 * the kernel can (MADV_POPULATE_WRITE, Linux 5.14), else a write to each. */
static void touch(void *p, size_t n)
{
	uintptr_t a = ((uintptr_t)p + THX__PAGE - 1) & ~(uintptr_t)(THX__PAGE - 1);
	uintptr_t b = ((uintptr_t)p + n) & ~(uintptr_t)(THX__PAGE - 1);
#ifdef MADV_POPULATE_WRITE
	if (b > a && madvise((void *)a, b - a, MADV_POPULATE_WRITE) == 0) {
		((volatile uint8_t *)p)[0] = 0;
		((volatile uint8_t *)p)[n - 1] = 0;
		return;
	}
#endif
	for (size_t o = 0; o < n; o += THX__PAGE)
		((volatile uint8_t *)p)[o] = 0;
	((volatile uint8_t *)p)[n - 1] = 0;
}

/* Make the spares wanted (c->mu not held): allocate and fault them in,
 * then hand them over unless the chain moved past them meanwhile. Out of
 * memory is no error here: the append allocates for itself. */
static void make_spares(thx_chain *c, size_t chunk, size_t page, uint32_t j)
{
	thx__memchunk *k = chunk ? thx__chunk_new(chunk) : NULL;
	thx__ent *pg = page ? thx__mem_alloc(page * sizeof *pg) : NULL;
	if (k)
		touch(k, sizeof *k + chunk);
	if (pg)
		touch(pg, page * sizeof *pg);
	pthread_mutex_lock(&c->mu);
	if (k && !c->mspare && thx__memchunk_next(c->mtail) <= chunk) {
		c->mspare = k;
		k = NULL;
	}
	if (pg && !c->espare && c->nepages == j) {
		c->espare = pg;
		pg = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	thx__chunk_free(k);
	thx__mem_free(pg, page * sizeof *pg);
}

/* Make the spares c lacks (c->mu held; released while making them). */
static void spares_locked(thx_chain *c)
{
	size_t chunk, page;
	uint32_t j;
	spares_wanted(c, &chunk, &page, &j);
	if (chunk || page) {
		pthread_mutex_unlock(&c->mu);
		make_spares(c, chunk, page, j);
		pthread_mutex_lock(&c->mu);
	}
}

/* A chain the hasher is visiting: it hashes the events appended before
 * the visit began (end), THX__HASH_RUN per claim ([from, to), hashed up
 * to done, with c->mu released), and makes the spares c lacks between
 * claims too. Events appended meanwhile are left for the next round (c is
 * pushed again: again), so that a chain appended to faster than it is
 * hashed cannot hold the hasher while other chains' spares run out. The
 * hasher visits two chains at a time, their events hashed in pairs
 * (thx__sha256_x2): within one chain each hash feeds the next. */
typedef struct lane {
	thx_chain *c;
	uint64_t end, from, to, done;
	const thx__ent *prev;
	thx__ent *ents[THX__HASH_RUN];
	uint8_t *buf;
	size_t cap;
	uint8_t stack[1024];
} lane;

/* Claim the next events of l's chain (c->mu held); false if none are
 * left before its end. */
static bool lane_claim_locked(lane *l)
{
	thx_chain *c = l->c;
	uint64_t from = c->hashed, to = l->end;
	if (from >= to)
		return false;
	if (to - from > THX__HASH_RUN)
		to = from + THX__HASH_RUN;
	l->prev = from ? thx__ent_at(c, from - 1) : NULL;
	for (uint64_t i = from; i < to; i++)
		l->ents[i - from] = thx__ent_at(c, i);
	l->from = l->done = from;
	l->to = to;
	c->hashing = true;
	return true;
}

/* End l's visit (c->mu held; released): requeue its chain if events came
 * meanwhile. Returns whether it did. */
static bool lane_finish(lane *l, bool failed)
{
	thx_chain *c = l->c;
	bool again = !failed && c->hashed < c->n;
	c->hqueued = again; /* after a failure readers hash the rest inline */
	spares_locked(c);
	pthread_mutex_unlock(&c->mu);
	if (again)
		thx__hasher_push(c);
	l->c = NULL;
	return again;
}

/* Start visiting c (l->c stays NULL when it has nothing to hash). */
static void lane_start(lane *l, thx_chain *c, bool *behind)
{
	l->c = c;
	pthread_mutex_lock(&c->mu);
	l->end = c->n;
	if (lane_claim_locked(l))
		pthread_mutex_unlock(&c->mu);
	else
		*behind |= lane_finish(l, false);
}

/* l's claim is done (or failed short of to): publish it, make spares and
 * claim more; at the end of the visit l->c becomes NULL. */
static void lane_next(lane *l, bool *behind)
{
	thx_chain *c = l->c;
	pthread_mutex_lock(&c->mu);
	c->hashed = l->done;
	c->hashing = false;
	if (c->hwaiters)
		pthread_cond_broadcast(&c->hcv);
	if (l->done < l->to) { /* out of memory */
		*behind |= lane_finish(l, true);
		return;
	}
	spares_locked(c);
	if (lane_claim_locked(l))
		pthread_mutex_unlock(&c->mu);
	else
		*behind |= lane_finish(l, false);
}

/* Encode l's next event; its length, 0 when out of memory. */
static size_t lane_enc(lane *l, strcache *sc)
{
	thx__ent *e = l->ents[l->done - l->from];
	return enc_ent(l->c->s, sc, l->prev, e, l->done, &l->buf, &l->cap, l->stack);
}

static void lane_hashed(lane *l)
{
	l->prev = l->ents[l->done - l->from];
	l->done++;
}

/* Visit every chain of list, two at a time. Returns whether any was
 * pushed again (appends outran the hashing). */
static bool hash_round(thx_chain *list, lane *ln, strcache *sc)
{
	bool behind = false;
	lane *a = &ln[0], *b = &ln[1];
	for (;;) {
		/* fill the idle lanes from the list (c->hnext is read before
		 * c can be pushed again) */
		for (int i = 0; i < 2; i++) {
			lane *l = &ln[i];
			while (!l->c && list) {
				thx_chain *c = list;
				list = c->hnext;
				lane_start(l, c, &behind);
			}
		}
		if (!a->c && !b->c)
			return behind;
		if (a->c && b->c) {
			size_t la = lane_enc(a, sc), lb = la ? lane_enc(b, sc) : 0;
			if (la && lb) {
				thx__sha256_x2(a->buf, la, a->ents[a->done - a->from]->hash,
					       b->buf, lb, b->ents[b->done - b->from]->hash);
				lane_hashed(a);
				lane_hashed(b);
			}
			if (!la || a->done == a->to)
				lane_next(a, &behind);
			if ((la && !lb) || b->done == b->to)
				lane_next(b, &behind);
			continue;
		}
		lane *l = a->c ? a : b;
		size_t len = lane_enc(l, sc);
		if (len) {
			thx__sha256(l->buf, len, l->ents[l->done - l->from]->hash);
			lane_hashed(l);
		}
		if (!len || l->done == l->to)
			lane_next(l, &behind);
	}
}

static void *hasher_main(void *arg)
{
	thx_store *s = arg;
	pthread_setname_np(pthread_self(), "theater-hasher"); /* for top -H, perf */
	strcache sc;
	strcache_init(&sc);
	lane ln[2];
	memset(ln, 0, sizeof ln);
	for (int i = 0; i < 2; i++) {
		ln[i].buf = ln[i].stack;
		ln[i].cap = sizeof ln[i].stack;
	}
	pthread_mutex_lock(&s->hq_mu);
	while (!s->hq_stop) {
		if (!s->hq_head) {
			s->hq_idle = true;
			pthread_cond_broadcast(&s->hq_done_cv);
			pthread_cond_wait(&s->hq_cv, &s->hq_mu);
			s->hq_idle = false;
			continue;
		}
		thx_chain *list = s->hq_head;
		s->hq_head = NULL;
		pthread_mutex_unlock(&s->hq_mu);
		/* Spares first: when the hasher lags, a round of hashing can
		 * last longer than a chain's entry page or chunk, and a spare
		 * made only after its chain's hashing comes too late (the
		 * append then faults the pages in itself). The list is stable
		 * until each chain's hashing clears hqueued. */
		for (thx_chain *c = list; c; c = c->hnext) {
			pthread_mutex_lock(&c->mu);
			spares_locked(c);
			pthread_mutex_unlock(&c->mu);
		}
		bool behind = hash_round(list, ln, &sc);
		pthread_mutex_lock(&s->hq_mu);
		if (s->hq_stop)
			break;
		if (behind)
			continue; /* no pause while appends outrun the hashing */
		/* let the next batch gather: appenders do not signal meanwhile */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + THX__HASH_PERIOD_MS * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&s->hq_cv, &s->hq_mu, &ts);
	}
	pthread_mutex_unlock(&s->hq_mu);
	for (int i = 0; i < 2; i++)
		if (ln[i].buf != ln[i].stack)
			th_free(ln[i].buf);
	return NULL;
}

void thx__hasher_push(thx_chain *c)
{
	thx_store *s = c->s;
	pthread_mutex_lock(&s->hq_mu);
	if (!s->hq_running && !s->hq_stop &&
	    pthread_create(&s->hq_thread, NULL, hasher_main, s) == 0) {
		s->hq_running = true;
		s->hq_pid = getpid();
	}
	/* Without a thread (it could not start, or the store is closing) the
	 * chain stays queued: its readers hash inline, which is correct. */
	c->hnext = s->hq_head;
	s->hq_head = c;
	if (s->hq_idle)
		pthread_cond_signal(&s->hq_cv);
	pthread_mutex_unlock(&s->hq_mu);
}

void thx_store_wait_hashed(thx_store *s)
{
	pthread_mutex_lock(&s->hq_mu);
	/* (a child forked after the start has no hasher thread) */
	while (s->hq_running && s->hq_pid == getpid() && !s->hq_stop &&
	       (s->hq_head || !s->hq_idle))
		pthread_cond_wait(&s->hq_done_cv, &s->hq_mu);
	pthread_mutex_unlock(&s->hq_mu);
}

void thx__hasher_stop(thx_store *s)
{
	pthread_mutex_lock(&s->hq_mu);
	s->hq_stop = true;
	pthread_cond_signal(&s->hq_cv);
	pthread_cond_broadcast(&s->hq_done_cv);
	/* a child forked after the start has no hasher thread to join */
	bool running = s->hq_running && s->hq_pid == getpid();
	pthread_mutex_unlock(&s->hq_mu);
	if (running)
		pthread_join(s->hq_thread, NULL);
}
