/*
 * hasher.c - in-order chunk hashing on a helper thread (hasher.h).
 * A ring of THS__HASHER_RING jobs and three counters: submitted (by the
 * put), hashed (by the helper), taken (by the put); all under one mutex,
 * which is held only to move a counter, never while hashing. A waiting
 * taker asks for half of the pending jobs (`want`), and the helper wakes
 * it only when that many are done: one wake-up per several chunks, not
 * one per chunk.
 */
#include <pthread.h>

#include "store/hasher.h"
#include "store/store_int.h"

struct ths__hasher {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	pthread_t thread;
	bool threaded, stop;
	size_t submitted, hashed, taken;
	size_t want; /* a taker sleeps until hashed reaches this (0: none) */
	struct ths__hjob ring[THS__HASHER_RING];
};

static void hash_job(struct ths__hjob *j)
{
	j->rc = ths__sha256(j->p, j->n, &j->hash);
}

static void *hasher_main(void *arg)
{
	ths__hasher *hs = arg;
	pthread_mutex_lock(&hs->mu);
	for (;;) {
		while (hs->hashed == hs->submitted && !hs->stop)
			pthread_cond_wait(&hs->work, &hs->mu);
		if (hs->hashed == hs->submitted)
			break;
		struct ths__hjob *j = &hs->ring[hs->hashed % THS__HASHER_RING];
		pthread_mutex_unlock(&hs->mu);
		hash_job(j);
		pthread_mutex_lock(&hs->mu);
		hs->hashed++;
		if (hs->want && hs->hashed >= hs->want) {
			hs->want = 0;
			pthread_cond_signal(&hs->done);
		}
	}
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

ths__hasher *ths__hasher_new(bool threaded)
{
	ths__hasher *hs = th_calloc(1, sizeof *hs);
	if (!hs)
		return NULL;
	pthread_mutex_init(&hs->mu, NULL);
	pthread_cond_init(&hs->work, NULL);
	pthread_cond_init(&hs->done, NULL);
	hs->threaded = threaded &&
		       pthread_create(&hs->thread, NULL, hasher_main, hs) == 0;
	return hs;
}

size_t ths__hasher_pending(const ths__hasher *hs)
{
	return hs->submitted - hs->taken; /* only the put thread moves these */
}

void ths__hasher_submit(ths__hasher *hs, const uint8_t *p, size_t n)
{
	struct ths__hjob *j = &hs->ring[hs->submitted % THS__HASHER_RING];
	j->p = p;
	j->n = n;
	if (!hs->threaded) {
		hash_job(j);
		hs->submitted++;
		hs->hashed++;
		return;
	}
	pthread_mutex_lock(&hs->mu);
	hs->submitted++;
	pthread_cond_signal(&hs->work);
	pthread_mutex_unlock(&hs->mu);
}

bool ths__hasher_take(ths__hasher *hs, bool wait, struct ths__hjob *out)
{
	if (hs->taken == hs->submitted)
		return false;
	if (hs->threaded) {
		pthread_mutex_lock(&hs->mu);
		if (hs->hashed == hs->taken && wait) {
			size_t pending = hs->submitted - hs->taken;
			size_t target = hs->taken + (pending > 1 ? pending / 2 : 1);
			while (hs->hashed < target) {
				hs->want = target;
				pthread_cond_wait(&hs->done, &hs->mu);
			}
		}
		bool ready = hs->hashed > hs->taken;
		pthread_mutex_unlock(&hs->mu);
		if (!ready)
			return false;
	}
	*out = hs->ring[hs->taken % THS__HASHER_RING];
	hs->taken++;
	return true;
}

void ths__hasher_free(ths__hasher *hs)
{
	if (!hs)
		return;
	if (hs->threaded) {
		pthread_mutex_lock(&hs->mu);
		hs->stop = true;
		pthread_cond_signal(&hs->work);
		pthread_mutex_unlock(&hs->mu);
		pthread_join(hs->thread, NULL);
	}
	pthread_cond_destroy(&hs->work);
	pthread_cond_destroy(&hs->done);
	pthread_mutex_destroy(&hs->mu);
	th_free(hs);
}
