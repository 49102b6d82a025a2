/*
 * replay.h - deterministic replay of an actor's Event Chain, and chains as
 * self-contained files (prefix thrp_).
 *
 * Replay re-instantiates the actor's component (from the Store by the hash
 * its chain recorded, or a given one), re-runs every recorded export call
 * in order with the recorded parameters and the state the previous call
 * produced, and answers each host call from the recorded result instead of
 * performing it: nothing is sent, written or read, time and randomness
 * come from the chain. After each step it compares what the actor did with
 * what the chain says it did: the host function called and its arguments,
 * the export's result (with the new state), the trap that failed it. The
 * first difference stops the replay with an explanation (thrp_report).
 * docs/replay.md describes what makes this deterministic.
 *
 * Export/import: one file holding a chain's events (with their hashes, so
 * the import re-creates the identical chain) and the Store objects they
 * reference (the components), framed and checksummed; the format is in
 * docs/replay.md and at the top of src/replay/xfer.c.
 *
 * Errors are values: 0 or a negative TH_E* code with a message in th_err.
 * A replay that runs but diverges returns 0 with report->ok false.
 */
#ifndef THEATER_REPLAY_H
#define THEATER_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "theater/base.h"
#include "theater/chain.h"
#include "theater/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*thrp_progress_fn)(uint64_t done, uint64_t total, void *arg);

typedef struct thrp_opts {
	/* The component to run instead of the recorded one: its bytes (not
	 * copied; valid during the replay), or NULL for the recorded hash. */
	const uint8_t *component;
	size_t component_len;
	/* Stop after the event of this sequence number (UINT64_MAX or 0 with
	 * has_until false: the whole chain). */
	uint64_t until;
	bool has_until;
	/* Per-export-call fuel cap (0: the manifest's fuel_per_message when
	 * known, else none) and memory limit in pages (0: manifest/default). */
	uint64_t fuel;
	uint32_t memory_pages;
	thrp_progress_fn progress; /* may be NULL */
	void *progress_arg;
} thrp_opts;

#define THRP_TEXT_MAX 1024

typedef struct thrp_report {
	bool ok;               /* replayed to the end (or --until) */
	uint64_t events;       /* events examined                  */
	uint64_t calls;        /* export calls re-run              */
	uint64_t host_calls;   /* host calls answered from the chain */
	uint64_t last_seq;     /* the last event examined          */
	char component[THS_HEX_LEN + 1]; /* hash actually run        */

	/* The chain ended in a failure the replay reproduced. */
	bool crashed;
	uint64_t crash_seq;    /* its actor.failed event             */
	char crash_kind[32];   /* "trap", "out-of-fuel", ...         */
	char crash_reason[THRP_TEXT_MAX];
	char backtrace[THRP_TEXT_MAX]; /* of the reproduced trap      */
	bool backtrace_recorded; /* the chain records one (compared)   */

	/* When !ok: where and how the actor diverged from the chain. */
	uint64_t seq;          /* the event that did not match      */
	char type[THX_NAME_MAX + 1];
	char what[256];        /* one-line summary                   */
	char expected[THRP_TEXT_MAX];
	char actual[THRP_TEXT_MAX];
	bool has_last_match;
	uint64_t last_match_seq;
	char last_match_type[THX_NAME_MAX + 1];
} thrp_report;

/* Replay chain c (an actor's chain). store supplies the component by the
 * hash recorded in component.loaded (unless opt->component is set). opt
 * may be NULL. Returns 0 when the replay ran (see report->ok), or an error
 * when it could not (missing component, pruned events, unreadable chain). */
TH_API int thrp_replay(ths_store *store, thx_chain *c, const thrp_opts *opt,
		       thrp_report *report, th_err *err);

/* Print report as text (human) or as one JSON object. */
TH_API void thrp_report_print(const thrp_report *r, const char *chain,
			      bool json, FILE *out);

/* ---- Export / import ------------------------------------------------------ */

/* Write chain c and the Store objects its events reference to out. Fails
 * with TH_ESTATE for a chain with pruned events (it cannot be exported
 * self-contained) and TH_ENOTFOUND for a referenced object missing from
 * the Store. */
TH_API int thrp_export(thx_chain *c, ths_store *store, FILE *out,
		       th_err *err);

typedef struct thrp_import_info {
	char chain[THX_NAME_MAX + 1];
	uint64_t events;
	uint64_t objects;
} thrp_import_info;

/* Read an export file (all of it: len bytes at p), check its framing and
 * checksum, put its objects in store and re-create its chain in chains
 * (which must not hold a non-empty chain of that name), checking that
 * every event gets the recorded hash. A malformed file fails with
 * TH_EINVAL naming the byte offset. */
TH_API int thrp_import(const uint8_t *p, size_t len, thx_store *chains,
		       ths_store *store, thrp_import_info *info, th_err *err);

#ifdef __cplusplus
}
#endif
#endif
