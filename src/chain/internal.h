/*
 * internal.h - structures shared by the Event Chain's files (not API).
 *
 *   hash.c     SHA-256 (OpenSSL EVP, fetched once), CRC32C, Merkle trees
 *   codec.c    canonical event / block encodings and log record framing
 *   log.c      segment files and group commit (one writer at a time)
 *   chain.c    the store: chains, append, reads, subscriptions, background
 *              thread, open/close (design essay)
 *   index.c    interned strings, posting lists, queries
 *   retain.c   retention and pruning
 *   recover.c  rebuilding the index from the segments at open
 *   verify.c   full verification by sequential segment scans
 *   compact.c  rewriting sealed segments without pruned data
 *   proof.c    Merkle inclusion proofs
 *   segidx.c   per-segment index files (recovery without reading segments)
 *   hasher.c   deferred hashing of memory chains (the hasher thread),
 *              memory events' encodings rebuilt from their entries
 *
 * Internal names use the thx__ prefix.
 */
#ifndef TH_CHAIN_INTERNAL_H
#define TH_CHAIN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/base.h"
#include "base/cbor.h"
#include "theater/chain.h"

/* ---- sha256.c, hash.c ---- */

/* SHA-256 of n bytes at p: the CPU's SHA extensions when it has them
 * (thx__sha_ni), else libcrypto (thx__sha256_lib). _x2 hashes two
 * independent messages at once, their rounds interleaved. */
void thx__sha256(const void *p, size_t n, uint8_t out[32]);
void thx__sha256_x2(const void *p, size_t n, uint8_t out[32],
		    const void *q, size_t nq, uint8_t outq[32]);
void thx__sha256_lib(const void *p, size_t n, uint8_t out[32]);
bool thx__sha_ni(void);
/* SHA-256 of 0x01 || left || right: an inner Merkle node. */
void thx__merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]);
/* RFC 6962/9162 tree hash over n >= 1 leaves (the leaves are event
 * hashes, used as they are). */
void thx__merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t out[32]);
/* Audit path of leaf i among n, leaf level first; returns its length. */
size_t thx__merkle_path(const uint8_t (*leaves)[32], size_t n, size_t i,
			uint8_t path[][32]);
/* Root implied by leaf i of n, its hash and path; false if path_len wrong. */
bool thx__merkle_from_path(const uint8_t leaf[32], size_t i, size_t n,
			   const uint8_t path[][32], size_t path_len,
			   uint8_t out[32]);
uint32_t thx__crc32c(uint32_t crc, const void *p, size_t n);

/* ---- codec.c ---- */

/* Record framing: 16-byte header, then the payload.
 *   0  4  magic "THXR"
 *   4  4  payload length, u32 little-endian
 *   8  1  record type (THX__REC_*)
 *   9  3  zero
 *  12  4  CRC32C over bytes 4..11 and the payload, u32 little-endian */
#define THX__REC_HDR 16
#define THX__REC_MAX (THX_DATA_MAX + 4096u)
enum {
	THX__REC_CHAIN = 1,
	THX__REC_EVENT = 2,
	THX__REC_STUB = 3,
	THX__REC_BLOCK = 4,
	THX__REC_PRUNE = 5
};
#define THX__SEG_HDR 32
/* No event record is shorter: header, chain number, hash, and a CBOR
 * event of 1-byte fields. */
#define THX__MIN_EVENT_REC (THX__REC_HDR + 36 + 12)
#define THX__SEG_MAGIC "THXSEG01"

/* A decoded event (pointers into the decoded buffer). */
typedef struct thx__ev {
	bool has_parent;
	uint8_t parent[32];
	const char *actor;
	size_t actor_len;
	uint64_t seq, ts;
	const char *type;
	size_t type_len;
	const uint8_t *data;
	size_t len;
	const char *desc; /* NULL = none */
	size_t desc_len;
	uint64_t data_len; /* for stubs: original data+desc length */
} thx__ev;

/* Canonical encoding of an event into e. */
/* The same into dst, which has at least thx__event_bound(...) bytes;
 * returns the encoding's length. */
size_t thx__enc_event_raw(uint8_t *dst, const uint8_t *parent,
			  const char *actor, size_t actor_len, uint64_t seq,
			  uint64_t ts, const char *type, size_t type_len,
			  const void *data, size_t len, const char *desc,
			  size_t desc_len);
static inline size_t thx__event_bound(size_t actor_len, size_t type_len,
				      size_t len, size_t desc_len)
{
	return 1 + 34 + 9 + actor_len + 9 + 9 + 9 + type_len + 9 + len + 9 +
	       desc_len;
}
void thx__enc_event(th_cbor_enc *e, const uint8_t *parent,
		    const char *actor, size_t actor_len, uint64_t seq,
		    uint64_t ts, const char *type, size_t type_len,
		    const void *data, size_t len, const char *desc,
		    size_t desc_len);
int thx__dec_event(const uint8_t *p, size_t n, thx__ev *ev, th_err *err);
/* Stub of a pruned event: [parent|null, actor, seq, ts, type, size]. */
void thx__enc_stub(th_cbor_enc *e, const uint8_t *parent,
		   const char *actor, uint64_t seq, uint64_t ts,
		   const char *type, uint64_t size);
int thx__dec_stub(const uint8_t *p, size_t n, thx__ev *ev, th_err *err);
/* Block header: [prev|null, chain, index, first_seq, count, merkle_root]. */
void thx__enc_block(th_cbor_enc *e, const thx_block *b,
		    const char *chain);
int thx__dec_block(const uint8_t *p, size_t n, thx_block *b, const char **chain,
		   size_t *chain_len, th_err *err);
void thx__block_hash(thx_block *b, const char *chain); /* fills b->hash */

/* Frame a record in place: buf has THX__REC_HDR free bytes, then payload. */
void thx__frame(uint8_t *buf, uint8_t type, uint32_t payload_len);
/* Check a header; returns payload length or -1 if no plausible header. */
long thx__hdr_len(const uint8_t *hdr);
bool thx__rec_crc_ok(const uint8_t *rec, uint32_t payload_len);
static inline uint32_t thx__le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline void thx__put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline uint64_t thx__le64(const uint8_t *p)
{
	return (uint64_t)thx__le32(p) | (uint64_t)thx__le32(p + 4) << 32;
}
static inline void thx__put_le64(uint8_t *p, uint64_t v)
{
	thx__put_le32(p, (uint32_t)v);
	thx__put_le32(p + 4, (uint32_t)(v >> 32));
}
void thx__seg_header(uint8_t out[THX__SEG_HDR], uint32_t segno,
		     uint32_t version);
bool thx__seg_header_ok(const uint8_t *p, uint32_t *segno, uint32_t *version);

/* ---- log.c ---- */

#define THX__MAX_SEGS 65536
typedef struct thx__seg {
	uint32_t slot;
	uint32_t segno, version;
	char name[48];
	int fd;
	_Atomic uint64_t size; /* bytes in the file (written by the log) */
	_Atomic uint64_t garbage; /* bytes of pruned event data (compaction) */
	bool sealed;        /* no more inserts; eligible for compaction */
	bool dead;          /* replaced by a compacted version */
	bool indexed;       /* its index file is written (segidx.c) */
	bool no_index;      /* building its index failed: do not retry */
	pthread_rwlock_t lk; /* readers (pread) vs fd swap */
} thx__seg;

typedef struct thx__log {
	char *dir;
	int dirfd;
	bool read_only;
	uint64_t seg_max;
	thx__seg *segs[THX__MAX_SEGS]; /* by slot; stable pointers */
	_Atomic uint32_t nslots;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;
	uint8_t *buf;       /* inserted, not yet written */
	size_t len, cap;
	uint8_t *wbuf;      /* being written by the leader */
	size_t wcap;
	struct thx__split { size_t at; thx__seg *seg; } *splits;
			    /* where in buf a new segment starts */
	size_t nsplits, splitcap;
	struct thx__split *wsplits; /* the same for wbuf */
	size_t wsplitcap;
	uint32_t next_segno; /* number of the next new segment */
	thx__seg *ins;      /* segment receiving inserts */
	uint64_t ins_off;   /* its logical size */
	thx__seg *wr;       /* segment the leader writes to */
	uint64_t ins_lsn, wr_lsn, sync_lsn;
	bool writing;
	int failed;
	char failmsg[TH_ERR_MSG_MAX];
	_Atomic uint64_t fsyncs, writes, bytes_written, nsegments;
} thx__log;

int thx__log_init(thx__log *l, const char *dir, bool read_only,
		  uint64_t seg_max, th_err *err);
void thx__log_release(thx__log *l);
/* Adopt an existing segment file (recovery), in log order. */
int thx__log_adopt(thx__log *l, uint32_t segno, uint32_t version, int fd,
		   uint64_t size, thx__seg **out, th_err *err);
/* Insert records: n records of lens[i] bytes back to back in recs. Fills
 * slot[i], off[i] and *lsn (end of the last one). *flush_now is 1 when the
 * buffer holds 4 MiB (time to wake the writer thread), 2 at 64 MiB (the
 * caller must write it itself: backpressure). */
int thx__log_put(thx__log *l, const uint8_t *recs, const size_t *lens,
		 size_t n, uint32_t *slot, uint64_t *off, uint64_t *lsn,
		 int *flush_now, th_err *err);
/* Make everything inserted up to lsn written (sync: and fsynced). */
int thx__log_commit(thx__log *l, uint64_t lsn, bool sync, th_err *err);
uint64_t thx__log_ins_lsn(thx__log *l);
/* Read the record at (slot, off): *rec is a th_malloc'd copy of the whole
 * record (header included), *len its size. CRC failure: TH_ECORRUPT, but
 * *rec is still returned when the header was plausible. */
int thx__log_read(thx__log *l, uint32_t slot, uint64_t off, uint8_t **rec,
		  size_t *len, th_err *err);
thx__seg *thx__log_seg(thx__log *l, uint32_t slot);
/* After recovery: keep appending to seg (the last one) if it has room. */
void thx__log_resume(thx__log *l, thx__seg *seg);
/* Testing: when >= 0, log writes fail with ENOSPC once this many more
 * bytes have been written (a short write first, like a full disk). */
extern _Atomic long long thx__fault_write_budget;

/* ---- chain.c, index.c, retain.c, recover.c ---- */

enum {
	THX__E_PRUNED = 1, /* data dropped */
	THX__E_MISSING = 2, /* no record found (hole left by damage) */
	THX__E_BAD = 4,    /* record failed its checksum or hash */
	THX__E_DESC = 8    /* memory chains: has a description (see mem) */
};

/* One event in a chain's index: 64 bytes. */
typedef struct thx__ent {
	uint8_t hash[32];
	uint64_t ts;
	union {
		uint64_t off;  /* record offset in its segment (slot != UINT32_MAX) */
		uint8_t *mem;  /* memory chains (slot == UINT32_MAX): the data,
				  in a memchunk; with THX__E_DESC it is preceded
				  by the description's u32 length and followed by
				  the description. NULL once pruned. */
	};
	uint32_t type_id, actor_id;
	uint32_t slot;          /* segment slot; UINT32_MAX for memory */
	uint32_t size : 26;     /* data + description bytes (retention; at
				   most 2 x 16 MiB) */
	uint32_t flags : 6;     /* THX__E_* */
} thx__ent;

/* Entries live in pages that never move, so an append copies nothing and
 * touches only the newest page: page 0 holds 16 entries, page j >= 1
 * holds 16 << (j - 1) up to 32768 (2 MiB), and every later page 32768. */
#define THX__EP0_LOG 4
#define THX__EPMAX_LOG 15 /* 32768 entries: 2 MiB, a huge page (THX__HUGE) */
#define THX__EP_GEO (THX__EPMAX_LOG - THX__EP0_LOG + 1) /* first fixed page - 1 */
static inline uint32_t thx__ent_page(uint64_t i, uint64_t *off)
{
	if (i < (1u << THX__EP0_LOG)) {
		*off = i;
		return 0;
	}
	if (i < (2ull << THX__EPMAX_LOG)) {
		unsigned lg = 63u - (unsigned)__builtin_clzll(i >> THX__EP0_LOG);
		*off = i - (1ull << (THX__EP0_LOG + lg));
		return lg + 1;
	}
	*off = i & ((1u << THX__EPMAX_LOG) - 1);
	return (uint32_t)(THX__EP_GEO - 1 + (i >> THX__EPMAX_LOG));
}
static inline size_t thx__ent_page_len(uint32_t j)
{
	return j == 0 ? 1u << THX__EP0_LOG
	       : j <= THX__EP_GEO ? (size_t)1 << (THX__EP0_LOG + j - 1)
				  : (size_t)1 << THX__EPMAX_LOG;
}

typedef struct thx__blk {
	thx_block h;
	uint32_t slot;
	uint64_t off;
} thx__blk;

typedef struct thx__post {
	uint32_t id;
	uint64_t *seqs;
	size_t n, cap;
} thx__post;

/* Open-addressing map u32 id -> index in a posting array. */
typedef struct thx__pmap {
	thx__post *posts;
	size_t n, cap;
	uint32_t *slots; /* index+1, 0 = empty */
	size_t nslots;
	uint32_t last;   /* index+1 of the last post reserved (a cache) */
} thx__pmap;

typedef struct thx__sub {
	uint64_t id;
	char *chain_name; /* NULL = all chains */
	thx_event_fn fn;
	void *arg;
	_Atomic int inflight;  /* deliverers holding it (taken under s->lk) */
	_Atomic bool removed;  /* unsubscribed: no new calls */
	struct thx__sub *next_dead; /* parked by an unsubscribe from a callback */
} thx__sub;

/* A string a chain used recently: interned copy, id, length. */
typedef struct thx__icache {
	const char *s;   /* the interned copy */
	const char *key; /* the caller's string when static (type_static), else NULL */
	uint32_t id, len;
} thx__icache;

/* Memory chains keep event data (and descriptions) in chunks appended in
 * seq order; pruning (always a prefix) frees whole chunks from the front. */
typedef struct thx__memchunk {
	struct thx__memchunk *next;
	size_t used, cap;
	uint64_t last_seq; /* of the last event stored here */
	uint8_t data[];
} thx__memchunk;
/* Chain memory (data chunks, entry pages) in blocks of THX__HUGE bytes or
 * more is mapped 2 MiB-aligned with MADV_HUGEPAGE: faulting it in is one
 * fault and one zeroing per 2 MiB instead of 512 (on this VM about a third
 * of the time per byte), and a long chain's appends and hashing miss the
 * TLB less. Smaller blocks come from the allocator (64-byte aligned). */
#define THX__HUGE ((size_t)2 << 20)
void *thx__mem_alloc(size_t n);
void thx__mem_free(void *p, size_t n); /* n as allocated; NULL ok */
thx__memchunk *thx__chunk_new(size_t cap); /* cap set; NULL: out of memory */
void thx__chunk_free(thx__memchunk *k);    /* NULL ok */
/* Full-size chunks are exactly a huge page. */
#define THX__CHUNK_MAX (THX__HUGE - sizeof(thx__memchunk))
/* The capacity of the chunk that follows k (NULL: the first). */
size_t thx__memchunk_next(const thx__memchunk *k);

struct thx_chain {
	thx_store *s;
	uint32_t no;
	char *name;          /* stored right after the struct */
	uint64_t name_hash;  /* thx__hash_str of name */
	thx_chain_opts opts;
	pthread_mutex_t mu; /* entries, blocks, postings, configuration */
	thx__ent **epages; /* entry pages (see thx__ent_page), allocated on demand */
	uint32_t nepages, capepages;
	uint64_t n;
	uint64_t prune_below;
	uint64_t kept_bytes;
	uint64_t last_ts;
	thx__blk *blocks;
	uint64_t nblocks, capblocks;
	uint64_t block_start; /* first seq of the open block */
	uint64_t seal_at;     /* memory chains: the seq that closes the open
				 block (blocks are built lazily, see
				 thx__seal_pending) */
	thx__memchunk *mhead, *mtail; /* memory chains */
	/* Spares, taken by the append that needs a new chunk or entry
	 * page: a pruned chunk kept for reuse, or memory the hasher
	 * allocated and touched ahead of need (hasher.c, SPARES). */
	thx__memchunk *mspare;
	thx__ent *espare; /* for entry page nepages, when it is large */
	bool damaged;
	uint64_t damaged_seq;
	char damage[200];
	/* Posting lists by type and by actor, built lazily: events [0,
	 * indexed) are in them (thx__index_catch_up, on the first query
	 * after appends), so an append touches no index. */
	thx__pmap types, actors;
	uint64_t indexed;
	thx__icache itypes[4], iactors[2]; /* recently used strings, newest first */
	uint64_t durable_n; /* events known durable (THX_ALWAYS) */
	/* Deferred hashing (memory chains, hash.c's thx__hasher): events
	 * [0, hashed) have their hash; the hasher thread hashes [hashed, x)
	 * outside c->mu while `hashing` is set (readers wait on hcv);
	 * hqueued: c is on the store's hasher queue (or being hashed). */
	uint64_t hashed;
	bool hashing, hqueued;
	uint32_t hwaiters;
	pthread_cond_t hcv;
	struct thx_chain *hnext;
	pthread_mutex_t dmu; /* delivery to subscribers */
	uint64_t delivered;
	bool delivering;
};

typedef struct thx__name {
	uint64_t h;
	thx_chain *c; /* NULL = empty slot */
} thx__name;

struct thx_store {
	char *dir;
	thx_store_opts opts;
	int lockfd;
	thx__log log;
	pthread_rwlock_t lk; /* chain tables, interned strings, subscribers */
	thx_chain **chains;  /* in creation order */
	size_t nchains, capchains;
	thx__name *names;    /* hash table by name (open addressing) */
	size_t namecap;
	thx_chain **by_no;   /* by chain number */
	uint32_t nnos;       /* capacity of by_no */
	uint32_t next_no;    /* 1 + the largest chain number in use */
	char **strpages[32]; /* interned strings by id, in pages that never
				move: page j holds 64 << j (thx__str reads
				them without a lock) */
	size_t nstrs;        /* under lk */
	_Atomic uint32_t nstrs_pub; /* published count, for lock-free reads */
	uint32_t *strmap;    /* open addressing: id+1 */
	size_t strmap_cap;
	thx__sub **subs;     /* heap-allocated, so deliverers can hold one */
	size_t nsubs, capsubs;
	thx__sub *dead_subs; /* unsubscribed from a callback; freed at close */
	uint64_t next_sub;
	_Atomic size_t nsubs_live;
	pthread_mutex_t compact_mu; /* one compaction at a time */
	pthread_t bg;
	bool bg_running;
	pthread_mutex_t bg_mu;
	pthread_cond_t bg_cv;
	bool bg_stop;
	_Atomic uint32_t batch_ms; /* smallest batch_ms of any batch chain */
	_Atomic bool bg_kicked;    /* the writer was asked to write now */
	_Atomic uint64_t compactions;
	_Atomic uint64_t idx_loaded, idx_built; /* segment index files */
	/* the hasher thread (deferred hashing of memory chains) */
	bool hash_defer;
	pthread_mutex_t hq_mu;
	pthread_cond_t hq_cv;
	pthread_cond_t hq_done_cv; /* the hasher went idle (thx_store_wait_hashed) */
	thx_chain *hq_head;  /* chains with events to hash (via hnext) */
	bool hq_stop, hq_idle, hq_running;
	pthread_t hq_thread;
	pid_t hq_pid;        /* the process that started it */
	uint64_t damage_notes; /* recovery: problems noted so far */
	uint64_t recover_bytes; /* recovery: bytes of all segment files */
};

static inline thx__ent *thx__ent_at(thx_chain *c, uint64_t i)
{
	uint64_t off;
	uint32_t j = thx__ent_page(i, &off);
	return &c->epages[j][off];
}
/* Make the hashes of events [0, need) of c computed (c->mu held; waits
 * for the hasher thread if it is hashing c, then hashes the rest inline).
 * Every reader of an entry's hash calls this first. No-op for on-disk
 * chains, which hash at append time. */
int thx__hash_upto(thx_chain *c, uint64_t need, th_err *err);
/* Backpressure: an append that leaves its chain more than THX__HASH_LAG
 * events ahead of its hashes hashes it down to THX__HASH_LAG / 2 itself. */
#define THX__HASH_LAG 65536
/* Queue c for the hasher thread (no lock held; c->hqueued was set by the
 * caller under c->mu). */
void thx__hasher_push(thx_chain *c);
/* Stop the hasher thread (thx_store_close). */
void thx__hasher_stop(thx_store *s);
/* Build the blocks a memory chain has completed (c->mu held; no-op for
 * on-disk chains, which seal at append time). Hashes up to c->n first. */
int thx__seal_pending(thx_chain *c, th_err *err);
/* Make entries [0, need) addressable (c->mu held); false: out of memory. */
bool thx__ents_reserve(thx_chain *c, uint64_t need);
/* hasher.c: the canonical encoding of memory-chain event seq, rebuilt
 * from its entry (c->mu held; not pruned; hashed up to seq): *out is
 * th_malloc'd. */
int thx__mem_encode(thx_chain *c, uint64_t seq, uint8_t **out, size_t *len,
		    th_err *err);

thx_chain *thx__chain_by_no(thx_store *s, uint32_t no);
/* chain.c */
void thx__opts_fill(thx_chain_opts *o);
/* Create a chain in memory (single-threaded or s->lk held for writing). */
int thx__chain_new(thx_store *s, uint32_t no, const char *name,
		   const thx_chain_opts *opts, thx_chain **out, th_err *err);
/* Grow *p (of *cap elements) to hold need; false on overflow/no memory. */
bool thx__grow(void **p, uint64_t *cap, uint64_t need, size_t elem);
/* Insert one framed record; with sync, wait until it is durable. */
int thx__put_one(thx_store *s, const uint8_t *rec, size_t len, bool sync,
		 th_err *err);
/* index.c: interning (takes s->lk) and posting lists (c->mu held) */
uint64_t thx__hash_str(const char *s, size_t n); /* FNV-1a */
bool thx__str_find(thx_store *s, const char *str, size_t n, uint32_t *id);
int thx__intern(thx_store *s, const char *str, size_t n, uint32_t *id,
		const char **interned);
thx__post *thx__pmap_find(thx__pmap *m, uint32_t id);
/* The posting of id with room for one more seq (created if new); NULL:
 * out of memory. Valid until the next reserve of another id in m. */
thx__post *thx__pmap_reserve(thx__pmap *m, uint32_t id);
void thx__pmap_release(thx__pmap *m);
/* Add events [c->indexed, c->n) to the posting lists (c->mu held). */
int thx__index_catch_up(thx_chain *c, th_err *err);
/* First seq of c with timestamp >= t (c->mu held). */
uint64_t thx__ts_lower(thx_chain *c, uint64_t t);
/* retain.c: copy of the chain list, so c->mu can be taken without s->lk */
int thx__chains_snapshot(thx_store *s, thx_chain ***out, size_t *n, th_err *err);
/* segidx.c: per-segment index files (a cache of what recovery needs) */
typedef struct thx__idx {
	uint8_t *buf;
	size_t len, pos;
	const uint8_t **strs; /* each: u8 length, then the bytes */
	uint32_t nstr;
} thx__idx;
typedef struct thx__idx_ent {
	uint8_t type;     /* THX__REC_* */
	uint64_t off;     /* of the record in the segment */
	const uint8_t *payload; /* chain, block, prune: the record's payload */
	size_t len;
	uint32_t chain;   /* event, stub: */
	bool has_parent;
	uint8_t hash[32];
	uint64_t seq, ts, size;
	const char *actor, *type_str; /* not NUL-terminated */
	size_t actor_len, type_len;
	uint32_t actor_sid, type_sid; /* indexes into the file's strings */
} thx__idx_ent;
void thx__idx_name(const thx__seg *seg, bool tmp, char *out, size_t n);
/* Write the index of sealed segment seg (0, or an error if any record is
 * not valid: then nothing is written). */
int thx__idx_build(thx_store *s, thx__seg *seg);
/* Read and check the index of seg (seg_size bytes, header seg_hdr): 0,
 * TH_ENOTFOUND (none) or TH_ECORRUPT (stale or damaged). */
int thx__idx_read(thx_store *s, const thx__seg *seg, uint64_t seg_size,
		  const uint8_t seg_hdr[THX__SEG_HDR], thx__idx *out);
/* Next entry: 1, 0 at the end, -1 if malformed. */
int thx__idx_next(thx__idx *x, thx__idx_ent *e);
void thx__idx_release(thx__idx *x);
/* Index every sealed segment that has none yet (background thread). */
void thx__idx_build_sealed(thx_store *s);
/* recover.c: rebuild the index from the segments (in thx_store_open) */
int thx__recover(thx_store *s, th_err *err);
const char *thx__str(thx_store *s, uint32_t id); /* no lock; "" if unknown */
void thx__strs_release(thx_store *s);
/* Read and decode event seq of c into *rec (th_free it) and *ev (pointers
 * into *rec); also returns its stored hash. Takes c->mu itself. Pruned or
 * missing events: TH_ENOTFOUND / TH_ECORRUPT. */
int thx__read_event(thx_chain *c, uint64_t seq, uint8_t **rec, thx__ev *ev,
		    uint8_t hash[32], const uint8_t **cbor, size_t *cbor_len,
		    th_err *err);
/* Segments in log order (by segno), live ones only; th_free the array. */
int thx__live_segs(thx_store *s, thx__seg ***out, size_t *n, th_err *err);

#endif
