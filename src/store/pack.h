/*
 * pack.h - pack files: many objects appended to one file with a trailing
 * index (prefix ths__pack). The disk backend (disk.c) keeps the chunks of
 * a big put in one pack instead of one file per chunk: one create, one
 * fdatasync, one rename and one directory fsync per put, and large
 * sequential writes (O_DIRECT when durable). Format, invariants and crash
 * behaviour are in the essay at the top of pack.c.
 *
 * A ths__packset is the set of packs under ROOT/packs with an in-memory
 * map from hash to location; it notices packs added or removed by other
 * handles and processes. All its functions are thread-safe.
 */
#ifndef THS_PACK_H
#define THS_PACK_H

#include "store/backend.h"

typedef struct ths__packset ths__packset;
typedef struct ths__packw ths__packw;

/* Opens ROOT/packs (creating it) and loads every pack's index. root is
 * the store root (for messages); rootfd its open directory; tmpfd the
 * open ROOT/tmp. sync is enum ths_sync. */
int ths__packset_open(const char *root, int rootfd, int tmpfd, int sync,
		      ths__packset **out, th_err *err);
void ths__packset_free(ths__packset *ps);

/* TH_ENOTFOUND unless h is in a pack; then size, mtime (the pack's). */
int ths__packset_stat(ths__packset *ps, const ths_hash *h,
		      struct ths__obj_info *out);
/* Reads object h whole (max: largest accepted size) into a new th_malloc
 * buffer; TH_ENOTFOUND if it is in no pack. */
int ths__packset_read(ths__packset *ps, const ths_hash *h, size_t max,
		      uint8_t **buf, size_t *len, th_err *err);
/* Reads up to n bytes from the start of object h. */
int ths__packset_peek(ths__packset *ps, const ths_hash *h, uint8_t *buf,
		      size_t n, size_t *got, th_err *err);
void ths__packset_prefetch(ths__packset *ps, const ths_hash *h);
/* Sets the mtime of the pack holding h to now. */
int ths__packset_touch(ths__packset *ps, const ths_hash *h, th_err *err);
/* "ROOT/packs/NAME.pack, object at byte OFF (N bytes)"; false if absent. */
bool ths__packset_where(ths__packset *ps, const ths_hash *h, char *buf,
			size_t n);
/* Calls fn once per packed object (one call per hash even if several
 * packs hold it) unless skip(ud, hash) is true. */
int ths__packset_list(ths__packset *ps, bool (*skip)(void *, const ths_hash *),
		      void *skip_ud, ths__list_fn fn, void *ud, th_err *err);
/* Marks h for removal from every pack holding it (done by repack);
 * returns true if some pack holds it. */
bool ths__packset_remove(ths__packset *ps, const ths_hash *h);
/* Rewrites every pack holding a removed object without it (a pack left
 * empty is deleted): the new pack is durable and visible before the old
 * one is unlinked. Only call when no writer is active (GC's lock). */
int ths__packset_repack(ths__packset *ps, th_err *err);
/* Reports every file in ROOT/packs that is not a loadable pack. */
int ths__packset_check(ths__packset *ps, ths__problem_fn fn, void *ud,
		       th_err *err);

/* A pack being written: objects are appended to a file in ROOT/tmp by a
 * writer thread while the caller goes on; commit makes it durable, then
 * visible under ROOT/packs, then the name durable. */
int ths__packw_begin(ths__packset *ps, ths__packw **out, th_err *err);
/* Appends a copy of object h (len bytes); the caller may reuse data. */
int ths__packw_add(ths__packw *w, const ths_hash *h, const void *data,
		   size_t len, th_err *err);
size_t ths__packw_count(const ths__packw *w);
/* Durable, then visible; frees w whatever the result. */
int ths__packw_commit(ths__packw *w, th_err *err);
/* Drops the pack being written; frees w; accepts NULL. */
void ths__packw_abort(ths__packw *w);

#endif
