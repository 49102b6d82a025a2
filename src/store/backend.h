/*
 * backend.h - where object bytes live, behind a small vtable (prefix
 * ths__backend / ths__batch). The local-disk backend is disk.c; a shared
 * cluster cache can be another implementation of the same operations. A
 * backend stores opaque immutable byte strings by hash; it neither hashes
 * nor verifies (store.c does), and knows nothing of labels or manifests.
 *
 * Contract every backend keeps:
 *  - an object is visible (read, stat, list) only once it is complete;
 *  - batch_commit makes every staged object durable before any of them
 *    becomes visible, and returns only when the names are durable too
 *    (unless the backend was made with THS_SYNC_NONE);
 *  - all operations are safe to call from several threads at once.
 */
#ifndef THS_BACKEND_H
#define THS_BACKEND_H

#include "base/base.h"
#include "theater/store.h"

typedef struct ths__backend ths__backend;
typedef struct ths__batch ths__batch;

struct ths__obj_info {
	ths_hash hash;
	uint64_t size;
	int64_t mtime_ns; /* when written or last touched (wall clock) */
};

/* A problem found by check: the file and what is wrong. */
typedef void (*ths__problem_fn)(void *ud, const char *path, const char *msg);

/* Called once per object by list; a non-zero return stops the listing
 * and is returned by list. */
typedef int (*ths__list_fn)(void *ud, const struct ths__obj_info *info);

struct ths__backend_ops {
	/* Reads a whole object into a new th_malloc buffer. TH_ENOTFOUND if
	 * absent, TH_ELIMIT if larger than max. */
	int (*read)(ths__backend *be, const ths_hash *h, size_t max,
		    uint8_t **buf, size_t *len, th_err *err);
	/* Reads up to n bytes from the start of an object; *got the count. */
	int (*peek)(ths__backend *be, const ths_hash *h, uint8_t *buf, size_t n,
		    size_t *got, th_err *err);
	/* Starts fetching an object the caller will read soon (advisory). */
	void (*prefetch)(ths__backend *be, const ths_hash *h);
	/* TH_ENOTFOUND if absent. */
	int (*stat)(ths__backend *be, const ths_hash *h,
		    struct ths__obj_info *out, th_err *err);
	/* Sets an existing object's mtime to now (GC's grace period). */
	int (*touch)(ths__backend *be, const ths_hash *h, th_err *err);
	/* many: the batch will hold many objects (a chunked put's chunks),
	 * which a backend may store together (disk.c: one pack file). */
	int (*batch_begin)(ths__backend *be, bool many, ths__batch **out,
			   th_err *err);
	/* Stages a copy of len bytes as object h; invisible until commit. */
	int (*batch_add)(ths__batch *b, const ths_hash *h, const void *data,
			 size_t len, th_err *err);
	/* Durable, then visible; frees the batch whatever the result. */
	int (*batch_commit)(ths__batch *b, th_err *err);
	/* Drops everything staged; frees the batch; accepts NULL. */
	void (*batch_abort)(ths__batch *b);
	/* Deletes object h; a backend may defer part of it to the next sync
	 * (disk.c rewrites packs then), but the object stays readable until
	 * then. */
	int (*remove)(ths__backend *be, const ths_hash *h, th_err *err);
	int (*list)(ths__backend *be, ths__list_fn fn, void *ud, th_err *err);
	/* Deletes leftovers of interrupted writes. Only call when no writer
	 * is active (GC holds the store's exclusive lock). */
	int (*sweep_tmp)(ths__backend *be, uint64_t *removed, th_err *err);
	/* Completes and makes durable the earlier removes. */
	int (*sync)(ths__backend *be, th_err *err);
	/* Human-readable location of an object, for messages. */
	void (*where)(ths__backend *be, const ths_hash *h, char *buf, size_t n);
	/* Reports damaged containers (e.g. a pack whose index is corrupt)
	 * through fn: what verify cannot see object by object. */
	int (*check)(ths__backend *be, ths__problem_fn fn, void *ud,
		     th_err *err);
	void (*destroy)(ths__backend *be);
};

struct ths__backend {
	const struct ths__backend_ops *ops;
};

/* The local-disk backend rooted at dir root (objects/ and tmp/ under it).
 * sync is enum ths_sync. */
int ths__disk_open(const char *root, int sync, ths__backend **out,
		   th_err *err);

/* Maps an errno to a TH_E* code (ENOSPC -> TH_ENOSPC, ...). */
int ths__errno_code(int e);

#endif
