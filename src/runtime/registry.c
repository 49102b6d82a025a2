/*
 * registry.c - the runtime's actors by id (open addressing, linear
 * probing; ids are random UUIDs so their first bytes hash well) plus the
 * spawn order. Actors are never removed (see rt.h), so there are no
 * tombstones and a lookup never races with a free.
 */
#include "base/base.h"
#include "runtime/rt.h"

struct rtg_registry {
	pthread_rwlock_t lock;
	rta_actor **slots;
	size_t cap, n;       /* cap is a power of two */
	rta_actor **order;   /* spawn order */
	size_t ocap;
};

/* A word at a time (ids are 36 characters): each 8 bytes are mixed in
 * by a multiply, the tail byte by byte; the top bits fold down at the end
 * since the table takes the low ones. */
static uint64_t hash_id(const char *id)
{
	size_t n = strlen(id), i = 0;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, id + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ (uint8_t)id[i]) * 0x100000001b3ull;
	return h ^ (h >> 32);
}

int rtg_new(rtg_registry **out)
{
	rtg_registry *g = th_calloc(1, sizeof *g);
	if (!g)
		return TH_ENOMEM;
	g->cap = 64;
	g->slots = th_calloc(g->cap, sizeof *g->slots);
	if (!g->slots) {
		th_free(g);
		return TH_ENOMEM;
	}
	pthread_rwlock_init(&g->lock, NULL);
	*out = g;
	return 0;
}

void rtg_free(rtg_registry *g)
{
	if (!g)
		return;
	pthread_rwlock_destroy(&g->lock);
	th_free(g->slots);
	th_free(g->order);
	th_free(g);
}

static void place(rta_actor **slots, size_t cap, rta_actor *a)
{
	size_t i = hash_id(a->id) & (cap - 1);
	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = a;
}

int rtg_add(rtg_registry *g, rta_actor *a)
{
	int rc = 0;
	pthread_rwlock_wrlock(&g->lock);
	for (size_t i = hash_id(a->id) & (g->cap - 1); g->slots[i];
	     i = (i + 1) & (g->cap - 1))
		if (!strcmp(g->slots[i]->id, a->id)) {
			rc = TH_EEXIST;
			goto out;
		}
	if ((g->n + 1) * 4 > g->cap * 3) {
		size_t cap = g->cap * 2;
		rta_actor **s = th_calloc(cap, sizeof *s);
		if (!s) {
			rc = TH_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < g->cap; i++)
			if (g->slots[i])
				place(s, cap, g->slots[i]);
		th_free(g->slots);
		g->slots = s;
		g->cap = cap;
	}
	if (g->n == g->ocap) {
		size_t cap = g->ocap ? g->ocap * 2 : 64;
		rta_actor **o = th_realloc(g->order, cap * sizeof *o);
		if (!o) {
			rc = TH_ENOMEM;
			goto out;
		}
		g->order = o;
		g->ocap = cap;
	}
	place(g->slots, g->cap, a);
	a->seq = g->n;
	g->order[g->n++] = a;
out:
	pthread_rwlock_unlock(&g->lock);
	return rc;
}

rta_actor *rtg_find(rtg_registry *g, const char *id)
{
	rta_actor *found = NULL;
	pthread_rwlock_rdlock(&g->lock);
	for (size_t i = hash_id(id) & (g->cap - 1); g->slots[i];
	     i = (i + 1) & (g->cap - 1))
		if (!strcmp(g->slots[i]->id, id)) {
			found = g->slots[i];
			break;
		}
	pthread_rwlock_unlock(&g->lock);
	return found;
}

int rtg_all(rtg_registry *g, rta_actor ***out, size_t *n)
{
	pthread_rwlock_rdlock(&g->lock);
	*n = g->n;
	*out = th_malloc((g->n ? g->n : 1) * sizeof **out);
	if (*out && g->n)
		memcpy(*out, g->order, g->n * sizeof **out);
	pthread_rwlock_unlock(&g->lock);
	return *out ? 0 : TH_ENOMEM;
}
