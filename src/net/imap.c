/*
 * imap.c - a small map from 32-bit stream ids to pointers (open
 * addressing, linear probing, tombstones), used for the streams of a
 * session (server) and of a connection (client).
 */
#include "net/net.h"

static size_t slot_of(uint32_t id, size_t cap)
{
	return (size_t)((id * 2654435761u) & (cap - 1));
}

void *thn_imap_get(const thn_imap *m, uint32_t id)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		void *p = m->e[i].p;
		if (!p)
			return NULL;
		if (p != THN_IMAP_TOMB && m->e[i].id == id)
			return p;
	}
}

int thn_imap_put(thn_imap *m, uint32_t id, void *p)
{
	if ((m->used + 1) * 4 >= m->cap * 3) {
		size_t cap = m->cap ? m->cap : 16;
		while ((m->n + 1) * 2 >= cap)
			cap *= 2;
		struct thn_imap_ent *e = th_calloc(cap, sizeof *e);
		if (!e)
			return TH_ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (!THN_IMAP_LIVE(m->e[i].p))
				continue;
			size_t j = slot_of(m->e[i].id, cap);
			while (e[j].p)
				j = (j + 1) & (cap - 1);
			e[j] = m->e[i];
		}
		th_free(m->e);
		m->e = e;
		m->cap = cap;
		m->used = m->n;
	}
	size_t i = slot_of(id, m->cap);
	while (THN_IMAP_LIVE(m->e[i].p))
		i = (i + 1) & (m->cap - 1);
	if (!m->e[i].p)
		m->used++;
	m->e[i].id = id;
	m->e[i].p = p;
	m->n++;
	return 0;
}

void thn_imap_del(thn_imap *m, uint32_t id)
{
	if (!m->cap)
		return;
	for (size_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		void *p = m->e[i].p;
		if (!p)
			return;
		if (p != THN_IMAP_TOMB && m->e[i].id == id) {
			m->e[i].p = THN_IMAP_TOMB;
			m->n--;
			return;
		}
	}
}

void thn_imap_release(thn_imap *m)
{
	th_free(m->e);
	m->e = NULL;
	m->cap = m->n = m->used = 0;
}
