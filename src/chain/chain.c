/*
 * chain.c - the Event Chain store: open/close, chains, appends, reads,
 * subscriptions and the background thread; the design of the whole.
 *
 * DESIGN
 *
 * A chain store is a directory:
 *
 *     LOCK                  flock()ed by the one process that writes
 *     seg-00000001.0.log    segment files, in log order by number
 *     seg-00000002.0.log
 *     seg-00000001.1.log    a compacted rewrite of segment 1 (version 1)
 *     seg-00000001.1.idx    index file of a sealed segment (segidx.c): a
 *                           cache that spares recovery reading the segment
 *
 * All chains of a store share the segments: one log, so one fsync makes a
 * whole batch of many chains durable (group commit, see log.c). Segment
 * files are append-only; only compaction replaces a sealed one, whole.
 *
 * SEGMENT FORMAT (all integers little-endian)
 *
 *   header, 32 bytes:
 *     0   8  magic "THXSEG01"
 *     8   4  segment number (log order)
 *    12   4  version (0 = as written; n = n-th compaction)
 *    16   8  creation time, ns since the Unix epoch
 *    24   4  zero
 *    28   4  CRC32C of bytes 0..27
 *   then records, back to back, each:
 *     0   4  magic "THXR"
 *     4   4  payload length L (at most 16 MiB + 4 KiB)
 *     8   1  type: 1 chain, 2 event, 3 pruned event, 4 block, 5 prune
 *     9   3  zero
 *    12   4  CRC32C over bytes 4..11 and the L payload bytes
 *    16   L  payload:
 *       chain  CBOR [no, name, durability, batch_ms, block_events,
 *                    max_age_ns, max_events, max_bytes]
 *       event  u32 chain no | 32-byte event hash | event CBOR (hashed)
 *       stub   u32 chain no | 32-byte event hash | stub CBOR
 *       block  u32 chain no | 32-byte block hash | block header CBOR
 *       prune  CBOR [no, below_seq]
 *   (codec.c has the CBOR layouts; docs/chain.md a worked example.)
 *
 * A record is valid when its magic, type and CRC check. The event hash is
 * SHA-256 of the event CBOR, which contains the parent hash: the CRC
 * catches torn and flipped bytes cheaply at open, the hashes make the
 * history tamper-evident (thx_verify recomputes them all).
 *
 * INVARIANTS
 *   1. In the log, a chain's records appear in seq order; its chain record
 *      comes first; a block record follows the last event it covers.
 *   2. ents[i].hash is the hash of event i; event i (i > 0) names
 *      ents[i-1].hash as parent; timestamps never decrease within a chain.
 *   3. Blocks partition [0, block_start): block k covers [first_seq,
 *      first_seq + count), its prev is block k-1's hash, its Merkle root
 *      is over exactly those events' hashes.
 *   4. Events below prune_below have no data in memory and may be stubs
 *      on disk; their hash is kept, so 2 and 3 still hold.
 *   5. Memory (THX_NONE) chains never reach the log. They keep each event's
 *      data (and description) only; the rest of its encoding is rebuilt
 *      from the entry (parent = previous hash, interned actor and type).
 *      Their blocks are built lazily (thx__seal_pending): [block_start, n)
 *      may hold complete blocks not built yet; c->seal_at says where each
 *      ends, exactly where an on-disk chain would have sealed it.
 *
 * RECOVERY (thx_store_open)
 *   Segments are read in number order (for two versions of one number the
 *   higher wins: compaction wrote and fsynced it completely before
 *   unlinking the lower). A sealed segment with a valid index file (same
 *   number, version, size and creation time; CRCs check) is applied from
 *   it without reading the segment; one without is scanned and, when it
 *   scanned clean, indexed. Records are applied to rebuild every chain's
 *   index. At the first invalid record the scanner looks for any valid
 *   record after it: none, in the last segment, means a torn tail (a
 *   write cut short by a crash) and the file is truncated there; else it
 *   is damage, noted on the chain (appends to it are refused; all its
 *   other events stay readable) and scanning resumes at the next valid
 *   record. Finally the last two blocks and the open block of every chain
 *   are re-hashed and their Merkle roots recomputed.
 *
 * THREADS
 *   s->lk (rwlock): chain tables, interned strings, subscribers.
 *   c->mu: one chain's index (entries, blocks, postings, options).
 *   l->mu (log.c): the insert buffer and the leader election.
 *   Lock order: c->dmu -> c->mu -> s->lk -> l->mu -> seg->lk. An append
 *   interns new strings under c->mu, so code that walks all chains copies
 *   the list first and never holds s->lk while taking c->mu. An append
 *   holds c->mu while it encodes and hashes (so seq order = log order for
 *   that chain) and l->mu only for the memcpy into the buffer; durability
 *   waits and subscriber calls happen with no lock held. c->dmu serialises
 *   delivery to subscribers (in seq order) and is never held during a
 *   callback; a deliverer pins each subscription it calls (inflight, taken
 *   under s->lk), so thx_unsubscribe can wait for the calls under way.
 *   Memory chains are hashed by a hasher thread (hasher.c: protocol,
 *   waits), not in the append; readers of hashes call thx__hash_upto.
 *   The background thread (bg_main) fsyncs batch chains every
 *   batch_ms, writes the buffer when an appender asks (4 MiB), and runs
 *   retention, compaction and the indexing of newly sealed segments every
 *   retention_ms.
 *
 * FILES: this one (store, chains, appends, reads, subscriptions), index.c,
 * retain.c, recover.c, segidx.c, log.c, codec.c, hash.c, verify.c,
 * compact.c, proof.c; internal.h lists what each holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain/internal.h"

/* ---- per-thread scratch buffer ---- */

struct scratch {
	uint8_t *p;
	size_t cap;
};
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v)
{
	struct scratch *s = v;
	th_free(s->p);
	th_free(s);
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static uint8_t *scratch_get(size_t need)
{
	pthread_once(&scratch_once, scratch_init);
	struct scratch *s = pthread_getspecific(scratch_key);
	if (!s) {
		s = th_calloc(1, sizeof *s);
		if (!s)
			return NULL;
		if (pthread_setspecific(scratch_key, s) != 0) {
			th_free(s);
			return NULL;
		}
	}
	if (s->cap < need) {
		size_t cap = need < 4096 ? 4096 : need;
		uint8_t *p = th_realloc(s->p, cap);
		if (!p)
			return NULL;
		s->p = p;
		s->cap = cap;
	}
	return s->p;
}

/* ---- chains ---- */

void thx__opts_fill(thx_chain_opts *o)
{
	if (!o->batch_ms)
		o->batch_ms = 10;
	if (!o->block_events)
		o->block_events = 256;
}

static void chain_free(thx_chain *c)
{
	if (!c)
		return;
	thx__chunk_free(c->mspare);
	thx__mem_free(c->espare, thx__ent_page_len(c->nepages) * sizeof(thx__ent));
	while (c->mhead) {
		thx__memchunk *k = c->mhead;
		c->mhead = k->next;
		thx__chunk_free(k);
	}
	for (uint32_t j = 0; j < c->nepages; j++)
		thx__mem_free(c->epages[j], thx__ent_page_len(j) * sizeof(thx__ent));
	th_free(c->epages);
	th_free(c->blocks);
	thx__pmap_release(&c->types);
	thx__pmap_release(&c->actors);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->dmu);
	pthread_cond_destroy(&c->hcv);
	th_free(c);
}

thx_chain *thx__chain_by_no(thx_store *s, uint32_t no)
{
	return no < s->nnos ? s->by_no[no] : NULL;
}

/* Chains by name: open addressing with linear probing; s->lk held. Each
 * slot keeps the name's hash beside the chain, so probing and growing
 * compare and rehash without touching the chains themselves. */
static thx_chain *name_get(thx_store *s, const char *name, uint64_t h)
{
	if (!s->namecap)
		return NULL;
	size_t mask = s->namecap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		thx__name *t = &s->names[i];
		if (!t->c || (t->h == h && strcmp(t->c->name, name) == 0))
			return t->c;
	}
}

/* Room for one more name (so that name_put cannot fail). */
static bool name_reserve(thx_store *s)
{
	if ((s->nchains + 1) * 2 <= s->namecap)
		return true;
	size_t cap = s->namecap ? s->namecap * 2 : 64;
	thx__name *t = th_calloc(cap, sizeof *t);
	if (!t)
		return false;
	for (size_t k = 0; k < s->namecap; k++) {
		if (!s->names[k].c)
			continue;
		size_t i = s->names[k].h & (cap - 1);
		while (t[i].c)
			i = (i + 1) & (cap - 1);
		t[i] = s->names[k];
	}
	th_free(s->names);
	s->names = t;
	s->namecap = cap;
	return true;
}

static void name_put(thx_store *s, thx_chain *c)
{
	size_t mask = s->namecap - 1;
	size_t i = c->name_hash & mask;
	while (s->names[i].c)
		i = (i + 1) & mask;
	s->names[i] = (thx__name){ c->name_hash, c };
}

/* Remove c, shifting later members of its probe run back. */
static void name_del(thx_store *s, thx_chain *c)
{
	size_t mask = s->namecap - 1;
	size_t i = c->name_hash & mask;
	while (s->names[i].c != c)
		i = (i + 1) & mask;
	s->names[i].c = NULL;
	for (size_t j = (i + 1) & mask; s->names[j].c; j = (j + 1) & mask) {
		size_t home = s->names[j].h & mask;
		/* m may move to the hole at i if i lies between home and j */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			s->names[i] = s->names[j];
			s->names[j].c = NULL;
			i = j;
		}
	}
}

/* Create the in-memory chain (s->lk held for writing). */
int thx__chain_new(thx_store *s, uint32_t no, const char *name,
		     const thx_chain_opts *opts, thx_chain **out, th_err *err)
{
	size_t nlen = strlen(name);
	uint64_t h = thx__hash_str(name, nlen);
	if (name_get(s, name, h))
		return th_err_set(err, TH_EEXIST, "chain '%s' exists", name);
	if (!name_reserve(s))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	if (s->nchains == s->capchains) {
		size_t cap = s->capchains ? s->capchains * 2 : 16;
		thx_chain **a = th_realloc(s->chains, cap * sizeof *a);
		if (!a)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		s->chains = a;
		s->capchains = cap;
	}
	if (no >= s->nnos) {
		size_t cap = (size_t)no + 1 < 16 ? 16 : ((size_t)no + 1) * 2;
		thx_chain **a = th_realloc(s->by_no, cap * sizeof *a);
		if (!a)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		memset(a + s->nnos, 0, (cap - s->nnos) * sizeof *a);
		s->by_no = a;
		s->nnos = (uint32_t)cap;
	}
	/* One allocation: the chain, then its name. Everything else (entry
	 * pages, postings, data chunks) waits for the first append. */
	thx_chain *c = th_calloc(1, sizeof *c + nlen + 1);
	if (!c)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	c->name = (char *)(c + 1);
	memcpy(c->name, name, nlen + 1);
	c->name_hash = h;
	c->s = s;
	c->no = no;
	c->opts = *opts;
	thx__opts_fill(&c->opts);
	c->seal_at = c->opts.block_events - 1;
	/* Adaptive: an actor's chain is appended to by its own turn and by
	 * senders recording arrivals, each holding the lock briefly; a short
	 * spin beats sleeping in the kernel (futex wait/wake was 10-20% of a
	 * one-receiver benchmark's CPU with a plain mutex). */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&c->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_mutex_init(&c->dmu, NULL);
	pthread_cond_init(&c->hcv, NULL);
	s->chains[s->nchains++] = c;
	name_put(s, c);
	s->by_no[no] = c;
	if (no + 1 > s->next_no)
		s->next_no = no + 1;
	if (c->opts.durability == THX_BATCH) {
		uint32_t cur = atomic_load(&s->batch_ms);
		while ((cur == 0 || c->opts.batch_ms < cur) &&
		       !atomic_compare_exchange_weak(&s->batch_ms, &cur, c->opts.batch_ms))
			;
	}
	*out = c;
	return 0;
}

/* Whether p holds only ASCII (always valid UTF-8): 8 bytes at a time. */
static bool all_ascii(const char *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (uint8_t)p[i];
	return !(acc & 0x8080808080808080ull);
}

static bool name_ok(const char *name, th_err *err, const char *what)
{
	size_t n = name ? strlen(name) : 0, bad;
	if (n == 0 || n > THX_NAME_MAX) {
		th_err_set(err, TH_EINVAL, "%s must have 1..%d bytes (has %zu)", what,
			   THX_NAME_MAX, n);
		return false;
	}
	if (!all_ascii(name, n) && !th_cbor_utf8_ok(name, n, &bad)) {
		th_err_set(err, TH_EINVAL, "%s is not valid UTF-8 (byte %zu)", what, bad);
		return false;
	}
	return true;
}

/* Encode a chain record into a heap buffer (framed). */
static int chain_record(const thx_chain *c, uint8_t **out, size_t *len, th_err *err)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_raw(&e, (uint8_t[THX__REC_HDR]){ 0 }, THX__REC_HDR);
	th_cbor_put_array(&e, 8);
	th_cbor_put_uint(&e, c->no);
	th_cbor_put_cstr(&e, c->name);
	th_cbor_put_uint(&e, c->opts.durability);
	th_cbor_put_uint(&e, c->opts.batch_ms);
	th_cbor_put_uint(&e, c->opts.block_events);
	th_cbor_put_uint(&e, c->opts.retention.max_age_ns);
	th_cbor_put_uint(&e, c->opts.retention.max_events);
	th_cbor_put_uint(&e, c->opts.retention.max_bytes);
	if (th_cbor_enc_take(&e, out, len))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	thx__frame(*out, THX__REC_CHAIN, (uint32_t)(*len - THX__REC_HDR));
	return 0;
}

/* Whether an appender must write the log buffer itself: when it is large,
 * the background thread is asked to (so appending and writing overlap on
 * two cores); only past the hard limit, or with no background thread, does
 * the appender write (backpressure). */
static bool must_write(thx_store *s, int flush)
{
	if (flush == 0)
		return false;
	if (flush == 2 || !s->bg_running)
		return true;
	if (!atomic_exchange(&s->bg_kicked, true)) {
		pthread_mutex_lock(&s->bg_mu);
		pthread_cond_signal(&s->bg_cv);
		pthread_mutex_unlock(&s->bg_mu);
	}
	return false;
}

/* Insert one framed record and, if sync, wait until it is durable. */
int thx__put_one(thx_store *s, const uint8_t *rec, size_t len, bool sync,
		   th_err *err)
{
	uint32_t slot;
	uint64_t off, lsn;
	int flush;
	int rc = thx__log_put(&s->log, rec, &len, 1, &slot, &off, &lsn, &flush, err);
	if (!rc && (sync || must_write(s, flush)))
		rc = thx__log_commit(&s->log, lsn, sync, err);
	return rc;
}

int thx_chain_open(thx_store *s, const char *name, const thx_chain_opts *opts,
		   bool create, thx_chain **out, th_err *err)
{
	if (!name_ok(name, err, "chain name"))
		return TH_EINVAL;
	uint64_t h = thx__hash_str(name, strlen(name));
	pthread_rwlock_rdlock(&s->lk);
	thx_chain *found = name_get(s, name, h);
	pthread_rwlock_unlock(&s->lk);
	if (found) {
		*out = found;
		return 0;
	}
	if (!create)
		return th_err_set(err, TH_ENOTFOUND, "no chain '%s' in %s", name, s->dir);
	thx_chain_opts o = { 0 };
	if (opts)
		o = *opts;
	if (o.durability > THX_NONE)
		return th_err_set(err, TH_EINVAL, "bad durability %d", (int)o.durability);
	if (s->opts.read_only && o.durability != THX_NONE)
		return th_err_set(err, TH_ESTATE, "chain store %s is open read-only", s->dir);

	pthread_rwlock_wrlock(&s->lk);
	if ((found = name_get(s, name, h))) {
		*out = found;
		pthread_rwlock_unlock(&s->lk);
		return 0;
	}
	thx_chain *c;
	int rc = thx__chain_new(s, s->next_no, name, &o, &c, err);
	if (rc) {
		pthread_rwlock_unlock(&s->lk);
		return rc;
	}
	if (o.durability != THX_NONE) {
		uint8_t *rec;
		size_t len;
		rc = chain_record(c, &rec, &len, err);
		if (!rc) {
			rc = thx__put_one(s, rec, len, false, err);
			th_free(rec);
		}
		if (rc) {
			/* undo: it never reached the log */
			name_del(s, c);
			s->nchains--; /* it was appended last, under this lock */
			s->by_no[c->no] = NULL;
			chain_free(c);
			pthread_rwlock_unlock(&s->lk);
			return rc;
		}
	}
	pthread_rwlock_unlock(&s->lk);
	/* The chain record must be durable before any `always` event of it
	 * is acknowledged; the event's own commit covers it (log order). */
	*out = c;
	return 0;
}

const char *thx_chain_name(const thx_chain *c)
{
	return c->name;
}

uint64_t thx_chain_count(thx_chain *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->n;
	pthread_mutex_unlock(&c->mu);
	return n;
}

bool thx_chain_head(thx_chain *c, uint8_t hash[THX_HASH_LEN])
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->n;
	bool any = n > 0 && thx__hash_upto(c, n, NULL) == 0;
	if (any)
		memcpy(hash, thx__ent_at(c, n - 1)->hash, 32);
	pthread_mutex_unlock(&c->mu);
	return any;
}

void thx_chain_opts_get(thx_chain *c, thx_chain_opts *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->opts;
	pthread_mutex_unlock(&c->mu);
}

int thx_chain_configure(thx_chain *c, const thx_chain_opts *opts, th_err *err)
{
	thx_chain_opts o = *opts;
	thx__opts_fill(&o);
	pthread_mutex_lock(&c->mu);
	if ((o.durability == THX_NONE) != (c->opts.durability == THX_NONE)) {
		pthread_mutex_unlock(&c->mu);
		return th_err_set(err, TH_EUNSUPPORTED,
				  "chain '%s': cannot switch between memory-only and on-disk",
				  c->name);
	}
	int rc = thx__seal_pending(c, err); /* blocks so far follow the old size */
	if (rc) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	thx_chain_opts old = c->opts;
	c->opts = o;
	c->seal_at = c->block_start + o.block_events - 1;
	if (c->seal_at < c->n)
		c->seal_at = c->n;
	if (o.durability != THX_NONE) {
		uint8_t *rec;
		size_t len;
		rc = chain_record(c, &rec, &len, err);
		if (!rc) {
			rc = thx__put_one(c->s, rec, len, false, err);
			th_free(rec);
		}
		if (rc)
			c->opts = old;
	}
	pthread_mutex_unlock(&c->mu);
	if (!rc && o.durability == THX_BATCH) {
		uint32_t cur = atomic_load(&c->s->batch_ms);
		while ((cur == 0 || o.batch_ms < cur) &&
		       !atomic_compare_exchange_weak(&c->s->batch_ms, &cur, o.batch_ms))
			;
	}
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int thx_store_list(thx_store *s, char ***names, size_t *n, th_err *err)
{
	pthread_rwlock_rdlock(&s->lk);
	size_t bytes = s->nchains * sizeof(char *);
	for (size_t i = 0; i < s->nchains; i++)
		bytes += strlen(s->chains[i]->name) + 1;
	char **a = th_malloc(bytes);
	if (!a) {
		pthread_rwlock_unlock(&s->lk);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	char *p = (char *)(a + s->nchains);
	for (size_t i = 0; i < s->nchains; i++) {
		size_t l = strlen(s->chains[i]->name) + 1;
		memcpy(p, s->chains[i]->name, l);
		a[i] = p;
		p += l;
	}
	*n = s->nchains;
	*names = a;
	pthread_rwlock_unlock(&s->lk);
	qsort(a, *n, sizeof *a, name_cmp);
	return 0;
}

void thx_free(void *p)
{
	th_free(p);
}

/* ---- append ---- */

/* The entry of ic for static string str, known by its address, or NULL
 * (str not NULL; a slot not keyed by a static string has key NULL). */
static inline const thx__icache *icache_static(const thx__icache *ic, size_t nic,
					       const char *str)
{
	for (size_t i = 0; i < nic; i++)
		if (ic[i].key == str)
			return &ic[i];
	return NULL;
}

/* Id and length of str, interned on first use (then validated: name_ok).
 * Each chain remembers the last few strings it used (an actor's chain
 * cycles through a handful of event types), so a repeat costs a strcmp or
 * two, or a pointer comparison for a static string: no validation, hashing
 * or store lock. */
static int intern_cached(thx_chain *c, thx__icache *ic, size_t nic, const char *str,
			 bool is_static, const char *what, uint32_t *id, size_t *len,
			 th_err *err)
{
	const thx__icache *hit;
	if (str && is_static && (hit = icache_static(ic, nic, str))) {
		*id = hit->id;
		*len = hit->len;
		return 0;
	}
	if (str)
		for (size_t i = 0; i < nic && ic[i].s; i++)
			if (ic[i].s[0] == str[0] && strcmp(ic[i].s, str) == 0) {
				if (is_static)
					ic[i].key = str; /* known by address next time */
				*id = ic[i].id;
				*len = ic[i].len;
				return 0;
			}
	if (!name_ok(str, err, what))
		return TH_EINVAL;
	const char *interned;
	*len = strlen(str);
	if (thx__intern(c->s, str, *len, id, &interned))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	/* newest first; the oldest falls off */
	memmove(ic + 1, ic, (nic - 1) * sizeof *ic);
	ic[0] = (thx__icache){ interned, is_static ? str : NULL, *id, (uint32_t)*len };
	return 0;
}

bool thx__grow(void **p, uint64_t *cap, uint64_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	uint64_t c = *cap ? *cap * 2 : 8;
	while (c < need)
		c *= 2;
	void *n = th_realloc(*p, (size_t)c * elem);
	if (!n)
		return false;
	*p = n;
	*cap = c;
	return true;
}

bool thx__ents_reserve(thx_chain *c, uint64_t need)
{
	if (need == 0)
		return true;
	uint64_t off;
	uint32_t last = thx__ent_page(need - 1, &off);
	while (c->nepages <= last) {
		if (c->nepages == c->capepages) {
			uint64_t cap = c->capepages;
			if (!thx__grow((void **)&c->epages, &cap, (uint64_t)c->nepages + 1,
				       sizeof *c->epages))
				return false;
			c->capepages = (uint32_t)cap;
		}
		/* whole cache lines: the hasher writes hashes into entries
		 * while this thread appends the next ones */
		thx__ent *pg = c->espare;
		c->espare = NULL;
		if (!pg && !(pg = thx__mem_alloc(thx__ent_page_len(c->nepages) * sizeof *pg)))
			return false;
		c->epages[c->nepages++] = pg;
	}
	return true;
}

void *thx__mem_alloc(size_t n)
{
	if (n < THX__HUGE)
		return th_malloc_aligned(n);
	size_t len = (n + THX__HUGE - 1) & ~(THX__HUGE - 1);
	uint8_t *p = mmap(NULL, len + THX__HUGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uintptr_t a = ((uintptr_t)p + THX__HUGE - 1) & ~(uintptr_t)(THX__HUGE - 1);
	size_t head = a - (uintptr_t)p;
	if (head)
		munmap(p, head);
	munmap((uint8_t *)a + len, THX__HUGE - head);
	/* a hint: without huge pages the memory works the same */
	madvise((void *)a, len, MADV_HUGEPAGE);
	return (void *)a;
}

void thx__mem_free(void *p, size_t n)
{
	if (!p)
		return;
	if (n < THX__HUGE)
		th_free_aligned(p);
	else
		munmap(p, (n + THX__HUGE - 1) & ~(THX__HUGE - 1));
}

thx__memchunk *thx__chunk_new(size_t cap)
{
	thx__memchunk *k = thx__mem_alloc(sizeof *k + cap);
	if (k)
		k->cap = cap;
	return k;
}

void thx__chunk_free(thx__memchunk *k)
{
	if (k)
		thx__mem_free(k, sizeof *k + k->cap);
}

size_t thx__memchunk_next(const thx__memchunk *k)
{
	size_t cap = k ? k->cap * 2 : 512;
	return cap > THX__CHUNK_MAX ? THX__CHUNK_MAX : cap;
}

/* Room for need more bytes of memory-chain data in the last chunk. Chunks
 * double from 512 bytes to THX__CHUNK_MAX (2 MiB with the header) and never
 * move: an entry points into one. */
static thx__memchunk *mem_room(thx_chain *c, size_t need, uint64_t seq)
{
	thx__memchunk *k = c->mtail;
	if (k && k->cap - k->used >= need)
		return k;
	size_t cap = thx__memchunk_next(k);
	if (c->mspare && c->mspare->cap < cap) { /* chunks only grow: no use */
		thx__chunk_free(c->mspare);
		c->mspare = NULL;
	}
	if (cap < need)
		cap = need;
	thx__memchunk *nk;
	if (c->mspare && c->mspare->cap >= cap) {
		/* the chunk pruning freed last, or one the hasher made
		 * ready: its pages are in memory already */
		nk = c->mspare;
		c->mspare = NULL;
		cap = nk->cap;
	} else if (!(nk = thx__chunk_new(cap))) {
		return NULL;
	}
	nk->next = NULL;
	nk->used = 0;
	nk->cap = cap;
	nk->last_seq = seq;
	if (k)
		k->next = nk;
	else
		c->mhead = nk;
	c->mtail = nk;
	return nk;
}

/* The next append to c writes at entry seq + 1 and, for a memory chain,
 * after k's data. With many chains appended in turn (an actor each) the
 * hardware prefetcher cannot follow every stream, and a spare's lines may
 * be in the hasher's cache: ask for them now, for writing. */
#define THX__PREFETCH_ENTS 4   /* entries (a line each) */
#define THX__PREFETCH_DATA 384 /* bytes of data */
static inline void prefetch_next(thx_chain *c, uint64_t seq, const thx__memchunk *k)
{
	uint64_t off;
	uint32_t j = thx__ent_page(seq + 1, &off);
	if (j < c->nepages) {
		size_t n = thx__ent_page_len(j) - off;
		for (size_t i = 0; i < THX__PREFETCH_ENTS && i < n; i++)
			__builtin_prefetch(c->epages[j] + off + i, 1, 3);
	}
	if (k)
		for (size_t o = 64; o <= THX__PREFETCH_DATA && k->used + o < k->cap; o += 64)
			__builtin_prefetch(k->data + k->used + o, 1, 3);
}

/* append_locked's common case (c->mu held): a memory chain whose hashing
 * is deferred, an event without description whose type and actor the
 * chain knows by address, with room in the current entry page and data
 * chunk. Writes the entry in place and returns true; false, with nothing
 * done, for anything else (the general path decides). */
static inline bool append_mem_fast(thx_chain *c, const thx_event_in *in,
				   uint64_t now, uint64_t *seq_out)
{
	const thx__icache *t, *a;
	uint64_t seq = c->n, off;
	size_t len = in->len;
	if (in->description || !in->type || !in->type_static || !in->actor ||
	    !in->actor_static || len > THX_DATA_MAX || (len && !in->data) ||
	    c->damaged ||
	    !(t = icache_static(c->itypes, TH_ARRAY_LEN(c->itypes), in->type)) ||
	    !(a = icache_static(c->iactors, TH_ARRAY_LEN(c->iactors), in->actor)))
		return false;
	uint32_t j = thx__ent_page(seq, &off);
	thx__memchunk *k = len ? c->mtail : NULL;
	if (j >= c->nepages || (len && (!k || k->cap - k->used < len)))
		return false;
	uint64_t ts = in->timestamp_ns ? in->timestamp_ns : now;
	if (ts < c->last_ts)
		ts = c->last_ts;
	thx__ent *e = &c->epages[j][off];
	memset(e->hash, 0, sizeof e->hash); /* the hasher's to fill */
	e->ts = ts;
	e->mem = k ? k->data + k->used : (uint8_t *)c; /* any non-NULL */
	e->type_id = t->id;
	e->actor_id = a->id;
	e->slot = UINT32_MAX;
	e->size = (uint32_t)len;
	e->flags = 0;
	if (k) {
		memcpy(e->mem, in->data, len);
		k->used += len;
		k->last_seq = seq;
	}
	prefetch_next(c, seq, k);
	c->n = seq + 1;
	c->last_ts = ts;
	c->kept_bytes += len;
	if (seq_out)
		*seq_out = seq;
	return true;
}

/* Append one event with c->mu held; now is the clock reading to use for
 * an event without a timestamp. *lsn gets the log position to wait for
 * (0 for memory chains).
 *
 * The hot path allocates nothing in the steady state: the encoding goes to
 * a per-thread scratch buffer (hot in cache), entries to pages that never
 * move, memory-chain data to chunks that never move; only a new page or
 * chunk (every 32768 entries / 2 MiB at most) or a posting list doubling
 * allocates. Memory chains keep only the data (and description): the rest
 * of the encoding is rebuilt from the entry on the rare read. */
static int append_locked(thx_chain *c, const thx_event_in *in, uint64_t now,
			 uint64_t *seq_out, uint8_t *hash_out, uint64_t *lsn,
			 int *flush, th_err *err)
{
	thx_store *s = c->s;
	size_t alen, tlen, dlen = 0;
	uint32_t tid, aid;
	int rc;
	bool mem = c->opts.durability == THX_NONE;
	/* Memory chains leave hashing to the hasher (hasher.c) unless the
	 * caller wants the hash now; then the events before are hashed first
	 * (this may wait for the hasher, releasing c->mu: before seq is read). */
	bool defer = mem && s->hash_defer && !hash_out;
	*lsn = 0;
	*flush = 0;
	if (defer && append_mem_fast(c, in, now, seq_out))
		return 0;
	if (mem && !defer && (rc = thx__hash_upto(c, c->n, err)))
		return rc;
	if ((rc = intern_cached(c, c->itypes, TH_ARRAY_LEN(c->itypes), in->type,
				in->type_static, "event type", &tid, &tlen, err)) ||
	    (rc = intern_cached(c, c->iactors, TH_ARRAY_LEN(c->iactors), in->actor,
				in->actor_static, "actor id", &aid, &alen, err)))
		return rc;
	if (in->description) {
		size_t bad;
		dlen = strlen(in->description);
		if (dlen > THX_DATA_MAX || !th_cbor_utf8_ok(in->description, dlen, &bad))
			return th_err_set(err, TH_EINVAL,
					  "event description is too long or not UTF-8");
	}
	if (in->len > THX_DATA_MAX || (in->len && !in->data))
		return th_err_set(err, TH_ELIMIT, "event data of %zu bytes (at most %u)",
				  in->len, THX_DATA_MAX);
	if (c->damaged)
		return th_err_set(err, TH_ECORRUPT, "chain '%s' is damaged at seq %llu (%s); "
				  "appends refused", c->name,
				  (unsigned long long)c->damaged_seq, c->damage);
	uint64_t seq = c->n;
	uint64_t ts = in->timestamp_ns ? in->timestamp_ns : now;
	if (ts < c->last_ts)
		ts = c->last_ts;
	bool seal = !mem && seq + 1 - c->block_start >= c->opts.block_events;
	if (!thx__ents_reserve(c, seq + 1) ||
	    (seal && !thx__grow((void **)&c->blocks, &c->capblocks, c->nblocks + 1,
			       sizeof *c->blocks)))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	size_t mneed = (in->description ? 4 : 0) + in->len + dlen;
	thx__memchunk *k = NULL;
	if (mem && mneed && !(k = mem_room(c, mneed, seq)))
		return th_err_set(err, TH_ENOMEM, "out of memory");

	/* event record: header | chain no | hash | CBOR */
	size_t bound = 52 + thx__event_bound(alen, tlen, in->len, dlen);
	size_t nleaves = seal ? (size_t)(seq + 1 - c->block_start) : 0;
	size_t bbound = seal ? 16 + 4 + 32 + 64 + 34 + 9 + strlen(c->name) + 27 + 34 : 0;
	uint8_t *buf = NULL;
	uint8_t hash[32] = { 0 };
	size_t elen = 0;
	if (!defer) {
		if (!(buf = scratch_get(bound + bbound + nleaves * 32)))
			return th_err_set(err, TH_ENOMEM, "out of memory");
		size_t clen = thx__enc_event_raw(buf + 52,
						 seq ? thx__ent_at(c, seq - 1)->hash : NULL,
						 in->actor, alen, seq, ts, in->type, tlen,
						 in->data, in->len, in->description, dlen);
		thx__sha256(buf + 52, clen, hash);
		elen = 52 + clen;
		thx__put_le32(buf + 16, c->no);
		memcpy(buf + 20, hash, 32);
	}

	thx__blk blk; /* filled only when sealing: cleared there */
	size_t blen = 0;
	if (seal) {
		memset(&blk, 0, sizeof blk);
		uint8_t (*leaves)[32] = (uint8_t (*)[32])(buf + bound + bbound);
		for (size_t i = 0; i + 1 < nleaves; i++)
			memcpy(leaves[i], thx__ent_at(c, c->block_start + i)->hash, 32);
		memcpy(leaves[nleaves - 1], hash, 32);
		blk.h.index = c->nblocks;
		blk.h.first_seq = c->block_start;
		blk.h.count = nleaves;
		if (c->nblocks) {
			blk.h.has_prev = true;
			memcpy(blk.h.prev, c->blocks[c->nblocks - 1].h.hash, 32);
		}
		thx__merkle_root((const uint8_t (*)[32])leaves, nleaves, blk.h.merkle_root);
		uint8_t *b = buf + elen;
		th_cbor_enc be;
		th_cbor_enc_init(&be, b + 52, bbound - 52);
		thx__enc_block(&be, &blk.h, c->name);
		thx__sha256(be.buf, be.len, blk.h.hash);
		thx__put_le32(b + 16, c->no);
		memcpy(b + 20, blk.h.hash, 32);
		blen = 52 + be.len;
		thx__frame(b, THX__REC_BLOCK, (uint32_t)(blen - THX__REC_HDR));
	}
	thx__ent ent;
	memcpy(ent.hash, hash, 32);
	ent.ts = ts;
	ent.type_id = tid;
	ent.actor_id = aid;
	ent.size = (uint32_t)(in->len + dlen) & ((1u << 26) - 1);
	ent.flags = 0;
	if (mem) {
		ent.slot = UINT32_MAX;
		ent.mem = k ? k->data + k->used : (uint8_t *)c; /* any non-NULL */
		if (k) {
			uint8_t *d = ent.mem;
			if (in->description) {
				ent.flags = THX__E_DESC;
				thx__put_le32(d, (uint32_t)dlen);
				d += 4;
			}
			if (in->len)
				memcpy(d, in->data, in->len);
			if (dlen)
				memcpy(d + in->len, in->description, dlen);
			k->used += mneed;
			k->last_seq = seq;
		}
	} else {
		thx__frame(buf, THX__REC_EVENT, (uint32_t)(elen - THX__REC_HDR));
		size_t lens[2] = { elen, blen };
		uint32_t slots[2];
		uint64_t offs[2];
		rc = thx__log_put(&s->log, buf, lens, seal ? 2 : 1, slots, offs, lsn, flush,
				  err);
		if (rc)
			return rc;
		ent.slot = slots[0];
		ent.off = offs[0];
		blk.slot = slots[1];
		blk.off = offs[1];
	}
	/* Nothing below can fail. */
	*thx__ent_at(c, seq) = ent;
	if (mem)
		prefetch_next(c, seq, k);
	c->n = seq + 1;
	if (mem && !defer)
		c->hashed = seq + 1;
	c->last_ts = ts;
	c->kept_bytes += ent.size;
	if (seal) {
		c->blocks[c->nblocks++] = blk;
		c->block_start = seq + 1;
		c->seal_at = seq + c->opts.block_events;
	}
	if (seq_out)
		*seq_out = seq;
	if (hash_out)
		memcpy(hash_out, hash, 32);
	return 0;
}

static void deliver(thx_chain *c);


/* After appends to c (c->mu held): true when c must be queued for the
 * hasher (then the caller calls thx__hasher_push once c->mu is released).
 * A chain too far ahead of the hasher is hashed here, in part: appends
 * outrunning the hasher slow down to its pace instead of leaving an
 * unbounded backlog for readers and wait_hashed. */
static bool hash_later(thx_chain *c)
{
	if (c->opts.durability != THX_NONE || !c->s->hash_defer || c->hashed >= c->n)
		return false;
	if (c->n - c->hashed > THX__HASH_LAG) /* out of memory: left to the hasher */
		(void)thx__hash_upto(c, c->n - THX__HASH_LAG / 2, NULL);
	if (c->hqueued || c->hashed >= c->n)
		return false;
	c->hqueued = true;
	return true;
}

int thx_append_batch(thx_chain *c, const thx_event_in *evs, size_t n,
		     uint64_t *first_seq, size_t *done, th_err *err)
{
	uint64_t lsn = 0, l, seq;
	int flush = 0, f;
	size_t k = 0;
	int rc = 0;
	uint64_t now = th_wall_ns(); /* one clock read for the whole batch */
	th_mutex_lock_spin(&c->mu); /* senders and the actor's worker */
	thx_durability dur = c->opts.durability;
	for (; k < n; k++) {
		if ((rc = append_locked(c, &evs[k], now, &seq, NULL, &l, &f, err)))
			break;
		if (k == 0 && first_seq)
			*first_seq = seq;
		lsn = l;
		if (f > flush)
			flush = f;
	}
	uint64_t end = c->n;
	bool push = hash_later(c);
	pthread_mutex_unlock(&c->mu);
	if (push)
		thx__hasher_push(c);
	if (done)
		*done = k;
	if (k > 0 && dur != THX_NONE && (dur == THX_ALWAYS || must_write(c->s, flush))) {
		th_err e2 = { 0 };
		int crc = thx__log_commit(&c->s->log, lsn, dur == THX_ALWAYS, &e2);
		if (crc && !rc) {
			rc = crc;
			if (err)
				*err = e2;
			if (done)
				*done = 0; /* none is acknowledged */
		}
		if (!crc && dur == THX_ALWAYS) {
			pthread_mutex_lock(&c->mu);
			if (end > c->durable_n)
				c->durable_n = end;
			pthread_mutex_unlock(&c->mu);
		}
	}
	if (k > 0 && atomic_load(&c->s->nsubs_live))
		deliver(c);
	return rc;
}

int thx_append(thx_chain *c, const thx_event_in *ev, uint64_t *seq,
	       uint8_t hash[THX_HASH_LEN], th_err *err)
{
	uint64_t lsn, s;
	int flush;
	uint64_t now = ev->timestamp_ns ? 0 : th_wall_ns();
	th_mutex_lock_spin(&c->mu); /* senders and the actor's worker */
	thx_durability dur = c->opts.durability;
	int rc = append_locked(c, ev, now, &s, hash, &lsn, &flush, err);
	uint64_t end = c->n;
	bool push = !rc && hash_later(c);
	pthread_mutex_unlock(&c->mu);
	if (push)
		thx__hasher_push(c);
	if (rc)
		return rc;
	if (dur == THX_ALWAYS || (dur == THX_BATCH && must_write(c->s, flush))) {
		if ((rc = thx__log_commit(&c->s->log, lsn, dur == THX_ALWAYS, err)))
			return rc;
		if (dur == THX_ALWAYS) {
			pthread_mutex_lock(&c->mu);
			if (end > c->durable_n)
				c->durable_n = end;
			pthread_mutex_unlock(&c->mu);
		}
	}
	if (seq)
		*seq = s;
	if (atomic_load(&c->s->nsubs_live))
		deliver(c);
	return 0;
}

/* Close the block [block_start, end) with c->mu held: Merkle root, header
 * hash and, for on-disk chains, the block record into the log (*lsn and
 * *flush then say what to wait for). */
static int seal_locked(thx_chain *c, uint64_t end, uint64_t *lsn, int *flush,
		       th_err *err)
{
	uint64_t nleaves = end - c->block_start;
	if (!thx__grow((void **)&c->blocks, &c->capblocks, c->nblocks + 1, sizeof *c->blocks))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	size_t bbound = 16 + 4 + 32 + 64 + 34 + 9 + strlen(c->name) + 27 + 34;
	uint8_t *buf = scratch_get(bbound + (size_t)nleaves * 32);
	if (!buf)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	uint8_t (*leaves)[32] = (uint8_t (*)[32])(buf + bbound);
	for (uint64_t i = 0; i < nleaves; i++)
		memcpy(leaves[i], thx__ent_at(c, c->block_start + i)->hash, 32);
	thx__blk blk = { 0 };
	blk.h.index = c->nblocks;
	blk.h.first_seq = c->block_start;
	blk.h.count = nleaves;
	if (c->nblocks) {
		blk.h.has_prev = true;
		memcpy(blk.h.prev, c->blocks[c->nblocks - 1].h.hash, 32);
	}
	thx__merkle_root((const uint8_t (*)[32])leaves, (size_t)nleaves, blk.h.merkle_root);
	th_cbor_enc be;
	th_cbor_enc_init(&be, buf + 52, bbound - 52);
	thx__enc_block(&be, &blk.h, c->name);
	thx__sha256(be.buf, be.len, blk.h.hash);
	thx__put_le32(buf + 16, c->no);
	memcpy(buf + 20, blk.h.hash, 32);
	size_t blen = 52 + be.len;
	thx__frame(buf, THX__REC_BLOCK, (uint32_t)(blen - THX__REC_HDR));
	blk.slot = UINT32_MAX;
	*lsn = 0;
	*flush = 0;
	if (c->opts.durability != THX_NONE) {
		int rc = thx__log_put(&c->s->log, buf, &blen, 1, &blk.slot, &blk.off, lsn,
				      flush, err);
		if (rc)
			return rc;
	}
	c->blocks[c->nblocks++] = blk;
	c->block_start = end;
	c->seal_at = end + c->opts.block_events - 1;
	return 0;
}

/* Memory chains seal their blocks lazily: appends only record where each
 * block ends (c->seal_at: the seq whose append would have closed the open
 * block, exactly as on-disk chains do at append time), and the blocks are
 * built here, when someone first needs them (block queries, proofs,
 * verification, thx_seal_block, a change of block size). The blocks are
 * the same as if they had been sealed at append time; the append path
 * saves the Merkle hashing (about one node, 2 SHA-256 blocks, per event). */
int thx__seal_pending(thx_chain *c, th_err *err)
{
	if (c->opts.durability != THX_NONE)
		return 0;
	int hrc = thx__hash_upto(c, c->n, err);
	if (hrc)
		return hrc;
	while (c->seal_at < c->n) {
		uint64_t lsn;
		int flush;
		int rc = seal_locked(c, c->seal_at + 1, &lsn, &flush, err);
		if (rc)
			return rc;
	}
	return 0;
}

int thx_seal_block(thx_chain *c, th_err *err)
{
	pthread_mutex_lock(&c->mu);
	int rc = thx__seal_pending(c, err);
	if (rc || c->n == c->block_start) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	if (c->damaged) {
		pthread_mutex_unlock(&c->mu);
		return th_err_set(err, TH_ECORRUPT, "chain '%s' is damaged", c->name);
	}
	uint64_t lsn;
	int flush;
	thx_durability dur = c->opts.durability;
	rc = seal_locked(c, c->n, &lsn, &flush, err);
	if (!rc && dur == THX_BATCH && must_write(c->s, flush))
		dur = THX_ALWAYS; /* write (and sync) below, outside c->mu */
	pthread_mutex_unlock(&c->mu);
	if (!rc && dur == THX_ALWAYS)
		rc = thx__log_commit(&c->s->log, lsn, true, err);
	return rc;
}

uint64_t thx_block_count(thx_chain *c)
{
	pthread_mutex_lock(&c->mu);
	thx__seal_pending(c, NULL); /* out of memory: the blocks sealed so far */
	uint64_t n = c->nblocks;
	pthread_mutex_unlock(&c->mu);
	return n;
}

int thx_block_get(thx_chain *c, uint64_t index, thx_block *out, th_err *err)
{
	pthread_mutex_lock(&c->mu);
	int rc = thx__seal_pending(c, err);
	if (rc) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	bool ok = index < c->nblocks;
	if (ok)
		*out = c->blocks[index].h;
	uint64_t nb = c->nblocks;
	pthread_mutex_unlock(&c->mu);
	if (!ok)
		return th_err_set(err, TH_ENOTFOUND, "chain '%s' has %llu blocks, no block %llu",
				  c->name, (unsigned long long)nb, (unsigned long long)index);
	return 0;
}

/* ---- reads ---- */

int thx__read_event(thx_chain *c, uint64_t seq, uint8_t **rec, thx__ev *ev,
		    uint8_t hash[32], const uint8_t **cbor, size_t *cbor_len,
		    th_err *err)
{
	int rc = 0;
	*rec = NULL;
	for (int attempt = 0; attempt < 8; attempt++) {
		pthread_mutex_lock(&c->mu);
		if (seq >= c->n) {
			pthread_mutex_unlock(&c->mu);
			return th_err_set(err, TH_ENOTFOUND, "chain '%s' has no event %llu",
					  c->name, (unsigned long long)seq);
		}
		if ((rc = thx__hash_upto(c, seq + 1, err))) {
			pthread_mutex_unlock(&c->mu);
			return rc;
		}
		thx__ent e = *thx__ent_at(c, seq);
		if (e.flags & THX__E_MISSING) {
			pthread_mutex_unlock(&c->mu);
			return th_err_set(err, TH_ECORRUPT,
					  "chain '%s' seq %llu: event lost to damage (%s)",
					  c->name, (unsigned long long)seq, c->damage);
		}
		if (e.flags & THX__E_PRUNED) {
			pthread_mutex_unlock(&c->mu);
			return th_err_set(err, TH_ENOTFOUND, "chain '%s' seq %llu was pruned",
					  c->name, (unsigned long long)seq);
		}
		memcpy(hash, e.hash, 32);
		if (e.slot == UINT32_MAX) {
			rc = thx__mem_encode(c, seq, rec, cbor_len, err);
			pthread_mutex_unlock(&c->mu);
			if (rc)
				return rc;
			*cbor = *rec;
			return thx__dec_event(*rec, *cbor_len, ev, err);
		}
		pthread_mutex_unlock(&c->mu);
		size_t len;
		rc = thx__log_read(&c->s->log, e.slot, e.off, rec, &len, err);
		if (rc == TH_ESTATE) /* compaction moved it: look again */
			continue;
		if (rc == TH_ECORRUPT && *rec) {
			th_free(*rec);
			*rec = NULL;
		}
		if (rc) {
			if (err)
				th_err_prefix(err, "chain '%s' seq %llu", c->name,
					      (unsigned long long)seq);
			return rc;
		}
		if (len < 52 || (*rec)[8] != THX__REC_EVENT || thx__le32(*rec + 16) != c->no ||
		    memcmp(*rec + 20, e.hash, 32) != 0) {
			th_free(*rec);
			*rec = NULL;
			thx__seg *sg = thx__log_seg(&c->s->log, e.slot);
			return th_err_set(err, TH_ECORRUPT,
					  "chain '%s' seq %llu: record at %s offset %llu is not this event",
					  c->name, (unsigned long long)seq, sg ? sg->name : "?",
					  (unsigned long long)e.off);
		}
		*cbor = *rec + 52;
		*cbor_len = len - 52;
		rc = thx__dec_event(*rec + 52, len - 52, ev, err);
		if (!rc && ev->seq != seq)
			rc = th_err_set(err, TH_ECORRUPT, "chain '%s': record holds seq %llu, not %llu",
					c->name, (unsigned long long)ev->seq,
					(unsigned long long)seq);
		return rc;
	}
	return th_err_set(err, TH_EBUSY, "chain '%s' seq %llu: moved too often while reading",
			  c->name, (unsigned long long)seq);
}

void thx_event_release(thx_event *ev)
{
	if (!ev)
		return;
	th_free(ev->owned_);
	memset(ev, 0, sizeof *ev);
}

int thx_get(thx_chain *c, uint64_t seq, thx_event *out, th_err *err)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&c->mu);
	if (seq >= c->n) {
		pthread_mutex_unlock(&c->mu);
		return th_err_set(err, TH_ENOTFOUND, "chain '%s' has %llu events, no seq %llu",
				  c->name, (unsigned long long)c->n, (unsigned long long)seq);
	}
	int hrc = thx__hash_upto(c, seq + 1, err);
	if (hrc) {
		pthread_mutex_unlock(&c->mu);
		return hrc;
	}
	thx__ent e = *thx__ent_at(c, seq);
	if (seq) {
		out->has_parent = true;
		memcpy(out->parent, thx__ent_at(c, seq - 1)->hash, 32);
	}
	out->seq = seq;
	out->timestamp_ns = e.ts;
	memcpy(out->hash, e.hash, 32);
	out->actor = thx__str(c->s, e.actor_id);
	out->type = thx__str(c->s, e.type_id);
	if (e.slot == UINT32_MAX && !(e.flags & (THX__E_PRUNED | THX__E_MISSING))) {
		/* A memory chain's event is its entry plus its data: copied out
		 * here, under c->mu (pruning may free the chunk), with no
		 * encoding or decoding. */
		size_t dlen = e.flags & THX__E_DESC ? thx__le32(e.mem) : 0;
		const uint8_t *data = e.mem + (e.flags & THX__E_DESC ? 4 : 0);
		size_t len = e.size - dlen;
		uint8_t *own = th_malloc(len + dlen + 1);
		if (!own) {
			pthread_mutex_unlock(&c->mu);
			return th_err_set(err, TH_ENOMEM, "out of memory");
		}
		memcpy(own, data, len + dlen);
		own[len + dlen] = '\0';
		pthread_mutex_unlock(&c->mu);
		out->data = own;
		out->len = len;
		if (e.flags & THX__E_DESC) /* after the data, NUL-terminated */
			out->description = (const char *)own + len;
		out->owned_ = own;
		return 0;
	}
	pthread_mutex_unlock(&c->mu);
	thx__seg *sg = e.slot == UINT32_MAX ? NULL : thx__log_seg(&c->s->log, e.slot);
	out->segment = sg ? sg->segno : 0;
	out->offset = sg ? e.off : 0;
	if (e.flags & THX__E_PRUNED) {
		out->pruned = true;
		return 0;
	}
	uint8_t *rec, hash[32];
	const uint8_t *cb;
	size_t cbl;
	thx__ev ev;
	int rc = thx__read_event(c, seq, &rec, &ev, hash, &cb, &cbl, err);
	if (rc == TH_ENOTFOUND && !(e.flags & THX__E_MISSING)) {
		/* pruned meanwhile */
		th_free(rec);
		out->pruned = true;
		return 0;
	}
	if (rc) {
		th_free(rec);
		return rc;
	}
	/* Copy strings to NUL-terminated storage after the record. */
	size_t extra = ev.desc ? ev.desc_len + 1 : 0;
	size_t rlen = (size_t)(ev.data - rec) + ev.len;
	uint8_t *own = th_malloc(rlen + extra + 1);
	if (!own) {
		th_free(rec);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	memcpy(own, rec, rlen);
	out->data = own + (ev.data - rec);
	out->len = ev.len;
	if (ev.desc) {
		char *d = (char *)own + rlen;
		memcpy(d, ev.desc, ev.desc_len);
		d[ev.desc_len] = '\0';
		out->description = d;
	}
	out->has_parent = ev.has_parent;
	memcpy(out->parent, ev.parent, 32);
	out->owned_ = own;
	th_free(rec);
	return 0;
}

int thx_event_hash(const uint8_t *parent, const char *actor, uint64_t seq,
		   uint64_t timestamp_ns, const char *type, const void *data,
		   size_t len, const char *description, uint8_t hash[THX_HASH_LEN],
		   th_err *err)
{
	if (!name_ok(actor, err, "actor id") || !name_ok(type, err, "event type"))
		return TH_EINVAL;
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	thx__enc_event(&e, parent, actor, strlen(actor), seq, timestamp_ns, type,
		       strlen(type), data, len, description,
		       description ? strlen(description) : 0);
	if (e.err) {
		th_cbor_enc_release(&e);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	thx__sha256(e.buf, e.len, hash);
	th_cbor_enc_release(&e);
	return 0;
}

/* ---- subscriptions ---- */

int thx_subscribe(thx_store *s, const char *chain, thx_event_fn fn, void *arg,
		  uint64_t *id, th_err *err)
{
	char *name = NULL;
	if (chain && !(name = th_strdup(chain)))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	/* New subscribers see only events appended from now on. */
	if (atomic_load(&s->nsubs_live) == 0) {
		thx_chain **all;
		size_t n;
		if (thx__chains_snapshot(s, &all, &n, err)) {
			th_free(name);
			return TH_ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			thx_chain *c = all[i];
			pthread_mutex_lock(&c->dmu);
			pthread_mutex_lock(&c->mu);
			c->delivered = c->opts.durability == THX_ALWAYS ? c->durable_n : c->n;
			pthread_mutex_unlock(&c->mu);
			pthread_mutex_unlock(&c->dmu);
		}
		th_free(all);
	}
	thx__sub *sub = th_calloc(1, sizeof *sub);
	if (!sub) {
		th_free(name);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	sub->chain_name = name;
	sub->fn = fn;
	sub->arg = arg;
	pthread_rwlock_wrlock(&s->lk);
	if (s->nsubs == s->capsubs) {
		size_t cap = s->capsubs ? s->capsubs * 2 : 4;
		thx__sub **a = th_realloc(s->subs, cap * sizeof *a);
		if (!a) {
			pthread_rwlock_unlock(&s->lk);
			th_free(name);
			th_free(sub);
			return th_err_set(err, TH_ENOMEM, "out of memory");
		}
		s->subs = a;
		s->capsubs = cap;
	}
	s->subs[s->nsubs++] = sub;
	sub->id = ++s->next_sub;
	atomic_fetch_add(&s->nsubs_live, 1);
	*id = sub->id;
	pthread_rwlock_unlock(&s->lk);
	return 0;
}

/* Set while this thread runs subscriber callbacks. */
static _Thread_local int in_callback;

int thx_unsubscribe(thx_store *s, uint64_t id)
{
	thx__sub *sub = NULL;
	pthread_rwlock_wrlock(&s->lk);
	for (size_t i = 0; i < s->nsubs; i++) {
		if (s->subs[i]->id == id) {
			sub = s->subs[i];
			s->subs[i] = s->subs[--s->nsubs];
			atomic_fetch_sub(&s->nsubs_live, 1);
			atomic_store(&sub->removed, true);
			break;
		}
	}
	if (sub && in_callback) {
		/* Called from a callback: the wait below could be for this very
		 * thread, so the subscription is parked until the store closes
		 * (no new call starts; calls under way may finish). */
		sub->next_dead = s->dead_subs;
		s->dead_subs = sub;
		sub = NULL;
		pthread_rwlock_unlock(&s->lk);
		return 0;
	}
	pthread_rwlock_unlock(&s->lk);
	if (!sub)
		return TH_ENOTFOUND;
	/* No deliverer can take it any more (they do so under s->lk); wait for
	 * the calls under way: afterwards fn is neither running nor called. */
	while (atomic_load(&sub->inflight) > 0)
		sched_yield();
	th_free(sub->chain_name);
	th_free(sub);
	return 0;
}

/* Deliver every not yet delivered event of c, in order, to subscribers.
 * One thread delivers at a time; others leave the work to it. */
static void deliver(thx_chain *c)
{
	thx_store *s = c->s;
	pthread_mutex_lock(&c->dmu);
	if (c->delivering) {
		pthread_mutex_unlock(&c->dmu);
		return;
	}
	c->delivering = true;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		uint64_t tail = c->opts.durability == THX_ALWAYS ? c->durable_n : c->n;
		pthread_mutex_unlock(&c->mu);
		if (c->delivered >= tail)
			break;
		uint64_t seq = c->delivered;
		pthread_mutex_unlock(&c->dmu);

		size_t nl = 0;
		pthread_rwlock_rdlock(&s->lk);
		thx__sub **local = th_malloc((s->nsubs ? s->nsubs : 1) * sizeof *local);
		for (size_t i = 0; local && i < s->nsubs; i++) {
			thx__sub *sub = s->subs[i];
			if (!sub->chain_name || !strcmp(sub->chain_name, c->name)) {
				atomic_fetch_add(&sub->inflight, 1);
				local[nl++] = sub;
			}
		}
		pthread_rwlock_unlock(&s->lk);
		bool ok = local != NULL;
		if (nl) {
			thx_event ev;
			if (thx_get(c, seq, &ev, NULL) == 0) {
				in_callback++;
				for (size_t i = 0; i < nl; i++)
					if (!atomic_load(&local[i]->removed))
						local[i]->fn(&ev, local[i]->arg);
				in_callback--;
				thx_event_release(&ev);
			} else {
				ok = false; /* e.g. out of memory: retried by the next append */
			}
			for (size_t i = 0; i < nl; i++)
				atomic_fetch_sub(&local[i]->inflight, 1);
		}
		th_free(local);
		pthread_mutex_lock(&c->dmu);
		if (!ok)
			break;
		c->delivered = seq + 1;
	}
	c->delivering = false;
	pthread_mutex_unlock(&c->dmu);
}

int thx__live_segs(thx_store *s, thx__seg ***out, size_t *n, th_err *err)
{
	uint32_t ns = atomic_load(&s->log.nslots);
	thx__seg **a = th_malloc((ns ? ns : 1) * sizeof *a);
	if (!a)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	size_t k = 0;
	pthread_mutex_lock(&s->log.mu);
	for (uint32_t i = 0; i < ns; i++)
		if (s->log.segs[i] && !s->log.segs[i]->dead)
			a[k++] = s->log.segs[i];
	pthread_mutex_unlock(&s->log.mu);
	/* insertion sort by segno: slots are nearly in order already */
	for (size_t i = 1; i < k; i++) {
		thx__seg *x = a[i];
		size_t j = i;
		while (j > 0 && a[j - 1]->segno > x->segno) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = x;
	}
	*out = a;
	*n = k;
	return 0;
}

/* ---- background: batch flushes, retention, compaction ---- */

static void *bg_main(void *arg)
{
	thx_store *s = arg;
	uint64_t last_ret = th_now_ns();
	pthread_mutex_lock(&s->bg_mu);
	while (!s->bg_stop) {
		uint32_t ms = atomic_load(&s->batch_ms);
		if (!ms || ms > s->opts.retention_ms)
			ms = s->opts.retention_ms;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		if (!atomic_load(&s->bg_kicked))
			pthread_cond_timedwait(&s->bg_cv, &s->bg_mu, &ts);
		if (s->bg_stop)
			break;
		pthread_mutex_unlock(&s->bg_mu);
		atomic_store(&s->bg_kicked, false);
		thx__log_commit(&s->log, thx__log_ins_lsn(&s->log), true, NULL);
		if (th_now_ns() - last_ret >= (uint64_t)s->opts.retention_ms * 1000000u) {
			last_ret = th_now_ns();
			if (thx_prune(s, NULL, NULL) == 0)
				thx_compact(s, NULL, NULL);
			thx__idx_build_sealed(s);
		}
		pthread_mutex_lock(&s->bg_mu);
	}
	pthread_mutex_unlock(&s->bg_mu);
	return NULL;
}

/* ---- open / close ---- */

static int store_open(const char *dir, const thx_store_opts *opts, thx_store **out,
		      th_err *err)
{
	thx_store_opts o = { 0 };
	int rc;
	if (opts)
		o = *opts;
	if (!o.segment_bytes)
		o.segment_bytes = 64u << 20;
	if (o.segment_bytes < 4096)
		o.segment_bytes = 4096;
	if (!o.retention_ms)
		o.retention_ms = 1000;
	if (!o.read_only && mkdir(dir, 0755) != 0 && errno != EEXIST)
		return th_err_set(err, TH_EIO, "mkdir %s: %s", dir, strerror(errno));
	thx_store *s = th_calloc(1, sizeof *s);
	if (!s)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	s->lockfd = -1;
	s->opts = o;
	pthread_rwlock_init(&s->lk, NULL);
	pthread_mutex_init(&s->compact_mu, NULL);
	pthread_mutex_init(&s->bg_mu, NULL);
	pthread_cond_init(&s->bg_cv, NULL);
	pthread_mutex_init(&s->hq_mu, NULL);
	pthread_cond_init(&s->hq_cv, NULL);
	pthread_cond_init(&s->hq_done_cv, NULL);
	s->hash_defer = !o.hash_inline;
	const char *hm = getenv("THEATER_CHAIN_HASH");
	if (hm && strcmp(hm, "inline") == 0)
		s->hash_defer = false;
	else if (hm && strcmp(hm, "deferred") == 0)
		s->hash_defer = true;
	if (!(s->dir = th_strdup(dir))) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = thx__log_init(&s->log, dir, o.read_only, o.segment_bytes, err)))
		goto fail;
	if (!o.read_only) {
		s->lockfd = openat(s->log.dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (s->lockfd < 0) {
			rc = th_err_set(err, TH_EIO, "open %s/LOCK: %s", dir, strerror(errno));
			goto fail;
		}
		if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
			rc = th_err_set(err, TH_EBUSY,
					"chain store %s is in use by another process", dir);
			goto fail;
		}
	}
	if ((rc = thx__recover(s, err)))
		goto fail;
	if (!o.read_only && !o.no_background) {
		if (pthread_create(&s->bg, NULL, bg_main, s) != 0) {
			rc = th_err_set(err, TH_EIO, "cannot start the chain store thread");
			goto fail;
		}
		s->bg_running = true;
	}
	*out = s;
	return 0;
fail:
	thx_store_close(s);
	return rc;
}

int thx_store_open(const char *dir, const thx_store_opts *opts, thx_store **out,
		   th_err *err)
{
	int rc = store_open(dir, opts, out, err);
	/* A read-only open can lose a race with the writer's compaction (a
	 * segment it listed was replaced): look again. */
	for (int i = 0; i < 10 && rc == TH_EBUSY && opts && opts->read_only; i++)
		rc = store_open(dir, opts, out, err);
	return rc;
}

int thx_store_sync(thx_store *s, th_err *err)
{
	return thx__log_commit(&s->log, thx__log_ins_lsn(&s->log), true, err);
}

void thx_store_close(thx_store *s)
{
	if (!s)
		return;
	if (s->bg_running) {
		pthread_mutex_lock(&s->bg_mu);
		s->bg_stop = true;
		pthread_cond_signal(&s->bg_cv);
		pthread_mutex_unlock(&s->bg_mu);
		pthread_join(s->bg, NULL);
	}
	/* Memory chains die with the store: what the hasher has not hashed
	 * yet is simply dropped with them. */
	thx__hasher_stop(s);
	if (s->log.dir && !s->opts.read_only)
		thx__log_commit(&s->log, thx__log_ins_lsn(&s->log), true, NULL);
	for (size_t i = 0; i < s->nchains; i++)
		chain_free(s->chains[i]);
	th_free(s->chains);
	th_free(s->names);
	th_free(s->by_no);
	thx__strs_release(s);
	th_free(s->strmap);
	for (size_t i = 0; i < s->nsubs; i++) {
		th_free(s->subs[i]->chain_name);
		th_free(s->subs[i]);
	}
	th_free(s->subs);
	while (s->dead_subs) {
		thx__sub *d = s->dead_subs;
		s->dead_subs = d->next_dead;
		th_free(d->chain_name);
		th_free(d);
	}
	thx__log_release(&s->log);
	if (s->lockfd >= 0)
		close(s->lockfd);
	pthread_rwlock_destroy(&s->lk);
	pthread_mutex_destroy(&s->compact_mu);
	pthread_mutex_destroy(&s->bg_mu);
	pthread_cond_destroy(&s->bg_cv);
	pthread_mutex_destroy(&s->hq_mu);
	pthread_cond_destroy(&s->hq_cv);
	pthread_cond_destroy(&s->hq_done_cv);
	th_free(s->dir);
	th_free(s);
}

void thx_store_stats(thx_store *s, thx_stats *out)
{
	memset(out, 0, sizeof *out);
	out->fsyncs = atomic_load(&s->log.fsyncs);
	out->writes = atomic_load(&s->log.writes);
	out->bytes_written = atomic_load(&s->log.bytes_written);
	out->segments = atomic_load(&s->log.nsegments);
	out->compactions = atomic_load(&s->compactions);
	out->index_loaded = atomic_load(&s->idx_loaded);
	out->index_built = atomic_load(&s->idx_built);
}
