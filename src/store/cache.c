/*
 * cache.c - LRU cache of immutable objects under a byte budget (cache.h).
 */
#include "store/cache.h"

ths__cobj *ths__cobj_new(const ths_hash *h, uint8_t *data, size_t len)
{
	ths__cobj *o = th_malloc(sizeof *o);
	if (!o) {
		th_free(data);
		return NULL;
	}
	atomic_init(&o->refs, 1);
	o->hash = *h;
	o->len = len;
	o->data = data;
	o->prev = o->next = NULL;
	return o;
}

void ths__cobj_retain(ths__cobj *o)
{
	atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void ths__cobj_release(ths__cobj *o)
{
	if (!o)
		return;
	if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) {
		th_free(o->data);
		th_free(o);
	}
}

void ths__cache_init(ths__cache *c, size_t budget)
{
	pthread_mutex_init(&c->mu, NULL);
	ths__hmap_init(&c->index);
	c->head = c->tail = NULL;
	c->bytes = 0;
	c->budget = budget;
	c->hits = c->misses = c->evictions = 0;
}

void ths__cache_release(ths__cache *c)
{
	ths__cobj *o = c->head;
	while (o) {
		ths__cobj *next = o->next;
		ths__cobj_release(o);
		o = next;
	}
	ths__hmap_release(&c->index);
	pthread_mutex_destroy(&c->mu);
	c->head = c->tail = NULL;
	c->bytes = 0;
}

static void lru_unlink(ths__cache *c, ths__cobj *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		c->head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		c->tail = o->prev;
	o->prev = o->next = NULL;
}

static void lru_push_front(ths__cache *c, ths__cobj *o)
{
	o->prev = NULL;
	o->next = c->head;
	if (c->head)
		c->head->prev = o;
	c->head = o;
	if (!c->tail)
		c->tail = o;
}

ths__cobj *ths__cache_get(ths__cache *c, const ths_hash *h)
{
	pthread_mutex_lock(&c->mu);
	ths__hval *v = ths__hmap_find(&c->index, h);
	ths__cobj *o = v ? v->p : NULL;
	if (o) {
		c->hits++;
		lru_unlink(c, o);
		lru_push_front(c, o);
		ths__cobj_retain(o);
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return o;
}

void ths__cache_put(ths__cache *c, ths__cobj *o)
{
	if (o->len > c->budget / 4)
		return;
	pthread_mutex_lock(&c->mu);
	ths__hval *slot;
	int r = ths__hmap_upsert(&c->index, &o->hash, &slot);
	if (r == 1) {
		slot->p = o;
		ths__cobj_retain(o);
		lru_push_front(c, o);
		c->bytes += o->len;
		while (c->bytes > c->budget && c->tail) {
			ths__cobj *victim = c->tail;
			lru_unlink(c, victim);
			ths__hmap_del(&c->index, &victim->hash);
			c->bytes -= victim->len;
			c->evictions++;
			ths__cobj_release(victim);
		}
	}
	pthread_mutex_unlock(&c->mu);
}

void ths__cache_stats(ths__cache *c, uint64_t *hits, uint64_t *misses,
		      uint64_t *evictions, uint64_t *bytes)
{
	pthread_mutex_lock(&c->mu);
	*hits = c->hits;
	*misses = c->misses;
	*evictions = c->evictions;
	*bytes = c->bytes;
	pthread_mutex_unlock(&c->mu);
}
