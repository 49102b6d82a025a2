/*
 * hmap.h - an open-addressing map from content hashes to a 64-bit value or a
 * pointer (prefix ths__hmap_). Used for the cache index, the pin counts and
 * GC's mark set. Keys are SHA-256 outputs, so their first 8 bytes are
 * already a uniform hash. Linear probing with backward-shift deletion (no
 * tombstones). Not thread-safe: callers lock.
 */
#ifndef THS_HMAP_H
#define THS_HMAP_H

#include "base/base.h"
#include "theater/store.h"

typedef union ths__hval {
	uint64_t n;
	void *p;
} ths__hval;

struct ths__hslot {
	ths_hash key;
	ths__hval val;
	bool used;
};

typedef struct ths__hmap {
	struct ths__hslot *slots;
	size_t cap;   /* power of two, or 0 */
	size_t count;
} ths__hmap;

void ths__hmap_init(ths__hmap *m);
/* Frees the slots (not what values point to); the map is empty again. */
void ths__hmap_release(ths__hmap *m);
/* Pointer to the value of key, or NULL. Valid until the next insert or
 * delete. */
ths__hval *ths__hmap_find(ths__hmap *m, const ths_hash *key);
/* Inserts key (value zeroed) unless present; *slot gets the value's
 * address. Returns 1 if inserted, 0 if it was present, TH_ENOMEM. */
int ths__hmap_upsert(ths__hmap *m, const ths_hash *key, ths__hval **slot);
/* Deletes key; returns true if it was present. */
bool ths__hmap_del(ths__hmap *m, const ths_hash *key);

#endif
