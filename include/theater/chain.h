/*
 * chain.h - the Event Chain: per-actor, hash-linked, verifiable event logs.
 *
 * A chain store (thx_store) is a directory holding many chains: one per
 * actor plus a "runtime" chain for system events. Every event is encoded
 * canonically (deterministic CBOR, see docs/chain.md), hashed with SHA-256
 * and linked to its parent (the previous event of the same chain). Events
 * are grouped into blocks whose headers carry the previous block's hash and
 * a Merkle root over the block's event hashes, so one event's inclusion can
 * be proven with O(log n) hashes.
 *
 * Persistence: all chains of a store share append-only segment files with
 * group commit; each chain has its own durability (always / batch / none)
 * and retention policy. Pruned events keep their hash, so the chain still
 * verifies end to end.
 *
 * Threads: every function may be called from any thread. Appends to
 * different chains run in parallel (hashing happens outside any store-wide
 * lock); appends to one chain are serialised in seq order. Under `always`
 * many concurrent appenders share one fsync. Subscribers are called in seq
 * order per chain, from an appending thread, with no chain lock held.
 *
 * Ownership: thx_store owns its thx_chain handles (valid until
 * thx_store_close). A thx_event filled by thx_get owns its memory until
 * thx_event_release. Strings passed in are copied.
 */
#ifndef THEATER_CHAIN_H
#define THEATER_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define THX_HASH_LEN 32
#define THX_NAME_MAX 255           /* chain names, actor ids, event types */
#define THX_DATA_MAX (16u << 20)   /* largest event data: 16 MiB */
#define THX_RUNTIME_CHAIN "runtime"

typedef struct thx_store thx_store;
typedef struct thx_chain thx_chain;

typedef enum thx_durability {
	THX_ALWAYS = 0, /* append returns once the event is on disk (fsync) */
	THX_BATCH = 1,  /* on disk within batch_ms of the append */
	THX_NONE = 2    /* memory only; gone when the store is closed */
} thx_durability;

/* Retention: 0 means unlimited. The oldest events beyond any limit are
 * pruned: their data and description are dropped, their hash stays. */
typedef struct thx_retention {
	uint64_t max_age_ns;
	uint64_t max_events;
	uint64_t max_bytes; /* sum of data+description bytes kept */
} thx_retention;

typedef struct thx_chain_opts {
	thx_durability durability;
	uint32_t batch_ms;     /* THX_BATCH: longest delay to disk; 0 = 10 ms */
	uint32_t block_events; /* events per block; 0 = 256 */
	thx_retention retention;
} thx_chain_opts;

typedef struct thx_store_opts {
	uint64_t segment_bytes; /* roll segments at this size; 0 = 64 MiB */
	bool read_only;         /* no lock, no writes, torn tails left alone */
	bool no_background;     /* no flusher/retention/compaction thread */
	uint32_t retention_ms;  /* background retention+compaction period; 0 = 1000 */
	bool hash_inline;       /* memory chains hash each event in the append
				   itself; by default (false) a hasher thread
				   does it later, off the appender's path (the
				   environment variable THEATER_CHAIN_HASH=inline
				   or =deferred overrides this) */
} thx_store_opts;

/* Open (creating if needed unless read_only) the store in dir. Recovery runs
 * here: a torn tail is truncated, the last blocks of each chain are
 * re-hashed, and damage found is remembered for thx_verify. A second
 * writer on the same directory gets TH_EBUSY. */
TH_API int thx_store_open(const char *dir, const thx_store_opts *opts,
			  thx_store **out, th_err *err);
/* Flush and fsync everything, stop background work, free. NULL is fine. */
TH_API void thx_store_close(thx_store *s);
/* Write and fsync everything appended so far (all durabilities but none). */
TH_API int thx_store_sync(thx_store *s, th_err *err);
/* Wait until the store's hasher has hashed every memory-chain event
 * appended before the call and has nothing left to do (returns at once
 * if hashing is inline or the hasher is not running: readers then hash
 * what they need). Appends that go on meanwhile may make it wait longer. */
TH_API void thx_store_wait_hashed(thx_store *s);

/* Find a chain by name; with create and no such chain, create it with opts
 * (NULL = defaults: always, 256 events per block, no retention). */
TH_API int thx_chain_open(thx_store *s, const char *name,
			  const thx_chain_opts *opts, bool create,
			  thx_chain **out, th_err *err);
TH_API const char *thx_chain_name(const thx_chain *c);
/* Number of events ever appended (= the next sequence number). */
TH_API uint64_t thx_chain_count(thx_chain *c);
/* Hash of the last event; false if the chain is empty. */
TH_API bool thx_chain_head(thx_chain *c, uint8_t hash[THX_HASH_LEN]);
TH_API void thx_chain_opts_get(thx_chain *c, thx_chain_opts *out);
/* Change durability, block size or retention (recorded in the log). */
TH_API int thx_chain_configure(thx_chain *c, const thx_chain_opts *opts,
			       th_err *err);
/* Names of all chains, sorted. *names is one th_free-able block holding
 * the pointer array and the strings; free it with thx_free. */
TH_API int thx_store_list(thx_store *s, char ***names, size_t *n, th_err *err);
TH_API void thx_free(void *p);

/* An event to append. timestamp_ns 0 = now (wall clock). Within a chain
 * timestamps never decrease: an earlier one is raised to the last one. */
typedef struct thx_event_in {
	const char *actor;
	const char *type;
	const void *data;
	size_t len;
	const char *description; /* NULL = none */
	uint64_t timestamp_ns;
	/* type points to a string that never changes while the chain is open
	 * (a literal, a static table): the chain may know it by its address */
	bool type_static;
	/* The same for actor, as long as the chain is appended to with it
	 * (an actor's id in its own chain) */
	bool actor_static;
} thx_event_in;

/* Append one event; on success *seq and hash (either may be NULL) name it.
 * Under THX_ALWAYS returns only after the event is durable. Fails with
 * TH_ENOSPC/TH_EIO once the log cannot be written (the store then refuses
 * appends until reopened; nothing already written is touched), TH_ECORRUPT
 * on a chain found damaged at open. */
TH_API int thx_append(thx_chain *c, const thx_event_in *ev, uint64_t *seq,
		      uint8_t hash[THX_HASH_LEN], th_err *err);

/* Append n events in order with one durability wait (under THX_ALWAYS,
 * one fsync for the whole batch). *done (may be NULL) gets how many were
 * appended, also on failure; *first_seq (may be NULL) the first one's seq. */
TH_API int thx_append_batch(thx_chain *c, const thx_event_in *evs, size_t n,
			    uint64_t *first_seq, size_t *done, th_err *err);

typedef struct thx_event {
	uint64_t seq;
	uint64_t timestamp_ns;
	uint8_t hash[THX_HASH_LEN];
	uint8_t parent[THX_HASH_LEN];
	bool has_parent; /* false for seq 0 */
	bool pruned;     /* data and description were dropped */
	bool damaged;    /* its record failed its checksum (thx_query_run only;
			    thx_get returns TH_ECORRUPT) */
	const char *actor;
	const char *type;
	const char *description; /* NULL if none or pruned */
	const uint8_t *data;     /* NULL if pruned */
	size_t len;
	uint32_t segment;        /* where it lives (0 = memory) */
	uint64_t offset;
	void *owned_;
} thx_event;

/* Read event seq. TH_ENOTFOUND if seq >= count. Release with
 * thx_event_release (NULL and zeroed events are fine). */
TH_API int thx_get(thx_chain *c, uint64_t seq, thx_event *out, th_err *err);
TH_API void thx_event_release(thx_event *ev);

/* Canonical encoding and hash of an event (what thx_append computes). */
TH_API int thx_event_hash(const uint8_t *parent /* NULL for seq 0 */,
			  const char *actor, uint64_t seq, uint64_t timestamp_ns,
			  const char *type, const void *data, size_t len,
			  const char *description, uint8_t hash[THX_HASH_LEN],
			  th_err *err);

/* Query one chain through its indexes. Filters set to NULL/0 are off;
 * until_ns is exclusive. Calls fn for each match in seq order (the event is
 * valid during the call; a damaged one comes with damaged set and no data,
 * so the walk goes on past damage); fn returning nonzero stops the walk and
 * that value is returned. limit 0 = no limit. */
typedef struct thx_query {
	const char *type;
	const char *actor;
	uint64_t since_ns;
	uint64_t until_ns;
	uint64_t from_seq;
	size_t limit;
} thx_query;
typedef int (*thx_event_fn)(const thx_event *ev, void *arg);
TH_API int thx_query_run(thx_chain *c, const thx_query *q, thx_event_fn fn,
			 void *arg, th_err *err);

/* ---- blocks and inclusion proofs ---- */

typedef struct thx_block {
	uint64_t index;
	uint64_t first_seq;
	uint64_t count;
	uint8_t prev[THX_HASH_LEN];
	bool has_prev; /* false for block 0 */
	uint8_t merkle_root[THX_HASH_LEN];
	uint8_t hash[THX_HASH_LEN];
} thx_block;

/* Close the open block now (no-op when it is empty). */
TH_API int thx_seal_block(thx_chain *c, th_err *err);
TH_API uint64_t thx_block_count(thx_chain *c);
TH_API int thx_block_get(thx_chain *c, uint64_t index, thx_block *out,
			 th_err *err);

#define THX_PROOF_MAX_PATH 64
typedef struct thx_proof {
	char chain[THX_NAME_MAX + 1];
	uint64_t seq;
	uint8_t event_hash[THX_HASH_LEN];
	thx_block block;        /* header of the block holding the event */
	uint64_t leaf_index;    /* seq - block.first_seq */
	size_t path_len;
	uint8_t path[THX_PROOF_MAX_PATH][THX_HASH_LEN]; /* siblings, leaf up */
} thx_proof;

/* Proof that event seq is in its (sealed) block. TH_ESTATE if the event's
 * block is still open (thx_seal_block closes it). */
TH_API int thx_prove(thx_chain *c, uint64_t seq, thx_proof *out, th_err *err);
/* Check a proof on its own: the path leads to the block's Merkle root and
 * the block header hashes to block_hash (NULL = to proof->block.hash). */
TH_API int thx_proof_check(const thx_proof *p, const uint8_t *block_hash,
			   th_err *err);
/* Proof <-> deterministic CBOR bytes (*out freed with thx_free). */
TH_API int thx_proof_encode(const thx_proof *p, uint8_t **out, size_t *len,
			    th_err *err);
TH_API int thx_proof_decode(const uint8_t *in, size_t len, thx_proof *p,
			    th_err *err);

/* ---- verification ---- */

typedef struct thx_verify_report {
	bool ok;
	uint64_t chains, events, blocks, pruned, bytes;
	uint64_t torn_bytes; /* unfinished record(s) at the very end: not damage */
	/* the first problem, when !ok */
	char chain[THX_NAME_MAX + 1];
	uint64_t seq;
	char file[64]; /* segment file name, "" for memory chains */
	uint64_t offset;
	char what[256];
} thx_verify_report;
typedef void (*thx_progress_fn)(uint64_t done, uint64_t total, void *arg);

/* Recompute every hash, link and Merkle root of one chain (name) or all
 * (NULL), reading the segments sequentially. Returns 0 whether or not the
 * data is intact (see report->ok); an error only if verification itself
 * could not run. */
TH_API int thx_verify(thx_store *s, const char *chain, thx_progress_fn progress,
		      void *arg, thx_verify_report *report, th_err *err);

/* ---- retention and compaction ---- */

/* Apply every chain's retention policy now; *pruned (may be NULL) gets the
 * number of events pruned. */
TH_API int thx_prune(thx_store *s, uint64_t *pruned, th_err *err);
/* Prune chain c's events below seq (data dropped, hashes kept). */
TH_API int thx_prune_below(thx_chain *c, uint64_t seq, th_err *err);
/* Rewrite sealed segments that hold pruned data, reclaiming the space.
 * Appends continue meanwhile. *reclaimed (may be NULL) gets bytes freed. */
TH_API int thx_compact(thx_store *s, uint64_t *reclaimed, th_err *err);

/* ---- subscriptions ---- */

/* fn is called for every new event of chain name (NULL = every chain), in
 * seq order per chain, once it is appended (and durable under always).
 * It runs on an appending thread without chain locks held; it may append
 * to chains and unsubscribe. *id names the subscription. When
 * thx_unsubscribe returns (called outside a callback), fn is not running
 * and will not be called again for that subscription. */
TH_API int thx_subscribe(thx_store *s, const char *chain, thx_event_fn fn,
			 void *arg, uint64_t *id, th_err *err);
TH_API int thx_unsubscribe(thx_store *s, uint64_t id);

/* Statistics for tests and benchmarks. */
typedef struct thx_stats {
	uint64_t fsyncs;
	uint64_t writes;
	uint64_t bytes_written;
	uint64_t segments;
	uint64_t compactions;
	uint64_t index_loaded; /* segments recovered from their index file */
	uint64_t index_built;  /* segment index files written */
} thx_stats;
TH_API void thx_store_stats(thx_store *s, thx_stats *out);

#ifdef __cplusplus
}
#endif
#endif
