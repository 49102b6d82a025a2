/*
 * hmap.c - open-addressing hash map keyed by content hashes.
 */
#include "store/hmap.h"

static size_t hmap_home(const ths__hmap *m, const ths_hash *k)
{
	uint64_t h;
	memcpy(&h, k->b, sizeof h);
	return (size_t)h & (m->cap - 1);
}

void ths__hmap_init(ths__hmap *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->count = 0;
}

void ths__hmap_release(ths__hmap *m)
{
	th_free(m->slots);
	ths__hmap_init(m);
}

ths__hval *ths__hmap_find(ths__hmap *m, const ths_hash *key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = hmap_home(m, key);; i = (i + 1) & (m->cap - 1)) {
		struct ths__hslot *s = &m->slots[i];
		if (!s->used)
			return NULL;
		if (!memcmp(s->key.b, key->b, THS_HASH_LEN))
			return &s->val;
	}
}

static int hmap_grow(ths__hmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	if (ncap < m->cap)
		return TH_ENOMEM;
	struct ths__hslot *ns = th_calloc(ncap, sizeof *ns);
	if (!ns)
		return TH_ENOMEM;
	struct ths__hslot *old = m->slots;
	size_t ocap = m->cap;
	m->slots = ns;
	m->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (!old[i].used)
			continue;
		size_t j = hmap_home(m, &old[i].key);
		while (ns[j].used)
			j = (j + 1) & (ncap - 1);
		ns[j] = old[i];
	}
	th_free(old);
	return 0;
}

int ths__hmap_upsert(ths__hmap *m, const ths_hash *key, ths__hval **slot)
{
	ths__hval *v = ths__hmap_find(m, key);
	if (v) {
		*slot = v;
		return 0;
	}
	/* Keep the load factor at most 1/2 so probes stay short. */
	if ((m->count + 1) * 2 > m->cap) {
		int rc = hmap_grow(m);
		if (rc)
			return rc;
	}
	size_t i = hmap_home(m, key);
	while (m->slots[i].used)
		i = (i + 1) & (m->cap - 1);
	m->slots[i].used = true;
	m->slots[i].key = *key;
	memset(&m->slots[i].val, 0, sizeof m->slots[i].val);
	m->count++;
	*slot = &m->slots[i].val;
	return 1;
}

bool ths__hmap_del(ths__hmap *m, const ths_hash *key)
{
	ths__hval *v = ths__hmap_find(m, key);
	if (!v)
		return false;
	size_t mask = m->cap - 1;
	size_t i = (size_t)((struct ths__hslot *)((char *)v -
		offsetof(struct ths__hslot, val)) - m->slots);
	/* Backward-shift: move later members of the probe run into the hole
	 * when the hole lies between their home and their slot. */
	size_t j = i;
	for (;;) {
		m->slots[i].used = false;
		for (;;) {
			j = (j + 1) & mask;
			if (!m->slots[j].used)
				goto done;
			size_t k = hmap_home(m, &m->slots[j].key);
			bool stays = (i <= j) ? (i < k && k <= j)
					      : (i < k || k <= j);
			if (!stays)
				break;
		}
		m->slots[i] = m->slots[j];
		i = j;
	}
done:
	m->count--;
	return true;
}
