/*
 * cache.h - a bounded in-memory cache of verified objects (prefix
 * ths__cache_, ths__cobj_).
 *
 * Objects are immutable, so a cached object is shared, not copied: a
 * ths__cobj is reference counted and a reader keeps its reference for as
 * long as it reads, even if the cache evicts it meanwhile. The cache holds
 * at most `budget` bytes of object data, evicting least recently used
 * objects first; an object bigger than a quarter of the budget is never
 * cached (one big read must not flush everything else). Thread-safe (one
 * mutex; the critical sections are a map probe and a list splice).
 */
#ifndef THS_CACHE_H
#define THS_CACHE_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/hmap.h"

typedef struct ths__cobj {
	_Atomic unsigned refs;
	ths_hash hash;
	size_t len;
	uint8_t *data; /* owned */
	struct ths__cobj *prev, *next; /* LRU list; guarded by the cache */
} ths__cobj;

/* Wraps a th_malloc buffer (ownership passes to the object, also on
 * failure). One reference, held by the caller. NULL if out of memory. */
ths__cobj *ths__cobj_new(const ths_hash *h, uint8_t *data, size_t len);
void ths__cobj_retain(ths__cobj *o);
/* Drops a reference; frees on the last. Accepts NULL. */
void ths__cobj_release(ths__cobj *o);

typedef struct ths__cache {
	pthread_mutex_t mu;
	ths__hmap index;        /* hash -> ths__cobj* */
	ths__cobj *head, *tail; /* most / least recently used */
	size_t bytes, budget;
	uint64_t hits, misses, evictions;
} ths__cache;

void ths__cache_init(ths__cache *c, size_t budget);
void ths__cache_release(ths__cache *c);
/* A new reference to the cached object, or NULL (counted as a miss). */
ths__cobj *ths__cache_get(ths__cache *c, const ths_hash *h);
/* Offers o to the cache (which takes its own reference if it keeps it).
 * Failure to cache is not an error. */
void ths__cache_put(ths__cache *c, ths__cobj *o);
void ths__cache_stats(ths__cache *c, uint64_t *hits, uint64_t *misses,
		      uint64_t *evictions, uint64_t *bytes);

#endif
