/*
 * tree.c - the supervision tree as text (thr_tree_text, for `theater
 * tree` and tests): top-level actors under "root", each child indented
 * under its parent, in spawn order.
 */
#include <stdarg.h>

#include "base/base.h"
#include "runtime/supervise.h"
#include "theater/supervise.h"

typedef struct tbuf {
	char *p;
	size_t len, cap;
	bool oom;
} tbuf;

static void put(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(tbuf *b, const char *fmt, ...)
{
	va_list ap;
	int k;
	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (k < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)k < b->cap - b->len) {
			b->len += (size_t)k;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)k;
		char *np = th_realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

static const char *status_name(int life)
{
	switch (life) {
	case RTA_STARTING: return "starting";
	case RTA_READY: return "running";
	case RTA_STOPPED: return "stopped";
	default: return "failed";
	}
}

static void node(tbuf *b, thr_runtime *rt, rta_actor *a, int depth)
{
	thr_sup_info si;
	rta_actor **kids = NULL;
	uint32_t nk = 0;
	char reason[120] = "";

	thr_sup_info_get(rt, a->id, &si, NULL);
	pthread_mutex_lock(&a->lock);
	if (a->reason && rta_life_get(a) == RTA_FAILED)
		snprintf(reason, sizeof reason, "  (%s)", a->reason);
	if (a->nchildren) {
		kids = th_malloc(a->nchildren * sizeof *kids);
		if (kids) {
			memcpy(kids, a->children, a->nchildren * sizeof *kids);
			nk = a->nchildren;
		} else {
			b->oom = true;
		}
	}
	pthread_mutex_unlock(&a->lock);
	put(b, "%*s%s %s  %s  restarts=%u  circuit=%s%s%s\n", 2 + depth * 2, "",
	    depth ? "`-" : "+-", a->spec->m->name, status_name(rta_life_get(a)),
	    si.restarts, thr_circuit_name(si.circuit),
	    si.supervised ? "" : "  (unsupervised)", reason);
	put(b, "%*s   id %s\n", 2 + depth * 2, "", a->id);
	for (uint32_t i = 0; i < nk; i++)
		node(b, rt, kids[i], depth + 1);
	th_free(kids);
}

int thr_tree_text(thr_runtime *rt, char **out, th_err *err)
{
	rta_actor **all;
	size_t n;
	tbuf b = { 0 };

	*out = NULL;
	if (rtg_all(rt->reg, &all, &n))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	b.cap = 256;
	b.p = th_malloc(b.cap);
	if (!b.p) {
		th_free(all);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	b.p[0] = 0;
	put(&b, "root\n");
	for (size_t i = 0; i < n; i++)
		if (!all[i]->parent)
			node(&b, rt, all[i], 0);
	th_free(all);
	if (b.oom) {
		th_free(b.p);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	*out = b.p;
	return 0;
}
