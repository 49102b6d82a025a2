/*
 * hasher.h - SHA-256 of a put's chunks on a helper thread (prefix
 * ths__hasher_), so that hashing chunk i overlaps with finding the
 * boundary of chunk i+1 and writing chunk i-1. Jobs complete in order.
 * Without a thread (small puts, or when none can be started) the same
 * calls hash inline. The caller keeps every submitted range valid and
 * unchanged until it has taken the job back.
 */
#ifndef THS_HASHER_H
#define THS_HASHER_H

#include "base/base.h"
#include "theater/store.h"

#define THS__HASHER_RING 16

struct ths__hjob {
	const uint8_t *p;
	size_t n;
	ths_hash hash;
	int rc; /* 0, or TH_ENOMEM if hashing failed */
};

typedef struct ths__hasher ths__hasher;

/* threaded: try to start the helper thread. NULL if out of memory. */
ths__hasher *ths__hasher_new(bool threaded);
/* Jobs submitted and not yet taken back. */
size_t ths__hasher_pending(const ths__hasher *hs);
/* Queues p[0..n); needs pending < THS__HASHER_RING. */
void ths__hasher_submit(ths__hasher *hs, const uint8_t *p, size_t n);
/* Takes back the oldest job if it is hashed (waiting for it if wait);
 * false if there is none (or, without wait, it is not done yet). */
bool ths__hasher_take(ths__hasher *hs, bool wait, struct ths__hjob *out);
/* Finishes the queued jobs, stops the thread, frees; accepts NULL. */
void ths__hasher_free(ths__hasher *hs);

#endif
