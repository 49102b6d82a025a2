/*
 * store_int.h - the store handle's insides, shared by store.c (content),
 * label.c (named stores and labels), gc.c and verify.c. Internal.
 */
#ifndef THS_STORE_INT_H
#define THS_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/backend.h"
#include "store/cache.h"
#include "store/hmap.h"
#include "store/manifest.h"
#include "theater/store.h"

struct ths_store {
	char *root;
	int rootfd;
	ths__backend *be;
	ths__cache cache;
	int sync;
	unsigned readahead;
	bool single_thread;
	pthread_mutex_t mu; /* guards pins */
	ths__hmap pins;     /* hash -> pin count */
	_Atomic uint64_t n_readahead, n_written, b_written;
};

/* Cross-process lock: flock on ROOT/rel (created if missing) through a
 * new open file description, so it also excludes other threads of this
 * process. Shared for puts and label changes, exclusive for GC (rel
 * "LOCK"); exclusive on "stores/ID/LOCK" for a label change. *fd gets the
 * descriptor to pass to ths__unlock. */
int ths__lock(ths_store *s, const char *rel, bool exclusive, int *fd,
	      th_err *err);
void ths__unlock(int fd);

/* SHA-256 of n bytes. */
int ths__sha256(const void *p, size_t n, ths_hash *out);

/* Loads an object through the cache and checks its hash: TH_ECORRUPT
 * (naming the file) if the bytes do not match. */
int ths__load(ths_store *s, const ths_hash *h, bool cache_it, ths__cobj **out,
	      th_err *err);

/* If the bytes of a top-level object are a manifest, parses it into *mf
 * and returns 1; returns 0 for plain content (see store.c, rule R2). */
int ths__as_manifest(const uint8_t *p, size_t n, ths__manifest *mf,
		     th_err *err);

/* Calls fn for every label of every named store. A label file that
 * cannot be read or parsed is passed with hash NULL and its problem. */
typedef int (*ths__label_fn)(void *ud, const char *store_id,
			     const char *label, const ths_hash *hash,
			     const char *path, const char *problem);
int ths__labels_each(ths_store *s, ths__label_fn fn, void *ud, th_err *err);

#endif
