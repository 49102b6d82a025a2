/*
 * gc.c - mark-and-sweep garbage collection of unreachable objects.
 *
 * Under ROOT/LOCK held exclusively (no put or label change is in flight,
 * in this process or another):
 *   1. list every object (hash, size, mtime) into `objs`;
 *   2. mark from the roots: every label of every named store, every pin of
 *      this handle, and every object whose mtime lies within the grace
 *      period before GC began (puts acknowledged but not yet labelled; a
 *      put of present content touches it). Marking a manifest marks its
 *      chunks (a top-level object is read as a manifest by rule R2 of
 *      store.c);
 *   3. delete unmarked manifests, make that durable, then delete the other
 *      unmarked objects, so that a manifest never outlives a chunk (I2);
 *   4. delete leftover temporary files of interrupted writes.
 * A label file that cannot be read stops the GC before anything is
 * deleted: what it names must not be lost. Stopping at any point (crash,
 * error) is safe because only unreachable objects are ever deleted.
 */
#include "store/store_int.h"

struct gc_obj {
	struct ths__obj_info info;
	bool marked;
	bool manifest;
};

struct gc {
	ths_store *s;
	struct gc_obj *objs;
	size_t n, cap;
	ths__hmap index; /* hash -> position in objs + 1 */
	ths_gc_stats *st;
	th_err *err;
};

static int gc_collect(void *ud, const struct ths__obj_info *info)
{
	struct gc *g = ud;
	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 256;
		struct gc_obj *nv = th_realloc(g->objs, ncap * sizeof *nv);
		if (!nv)
			return TH_ENOMEM;
		g->objs = nv;
		g->cap = ncap;
	}
	ths__hval *v;
	int r = ths__hmap_upsert(&g->index, &info->hash, &v);
	if (r < 0)
		return TH_ENOMEM;
	g->objs[g->n] = (struct gc_obj){ .info = *info };
	v->n = ++g->n;
	return 0;
}

static struct gc_obj *gc_find(struct gc *g, const ths_hash *h)
{
	ths__hval *v = ths__hmap_find(&g->index, h);
	return v ? &g->objs[v->n - 1] : NULL;
}

/* Reads object h as a top-level object; if it is a manifest, *mf gets it
 * and 1 is returned. */
static int gc_manifest(struct gc *g, const ths_hash *h, ths__manifest *mf)
{
	ths__backend *be = g->s->be;
	uint8_t head[THS__MF_MAGIC_LEN];
	size_t got = 0;
	if (be->ops->peek(be, h, head, sizeof head, &got, NULL) != 0 ||
	    !ths__mf_has_magic(head, got))
		return 0;
	uint8_t *buf;
	size_t len;
	th_err rerr = { 0 };
	int rc = be->ops->read(be, h, (size_t)1 << 30, &buf, &len, &rerr);
	if (rc == TH_ENOMEM)
		return th_err_set(g->err, rc, "%s", rerr.msg);
	if (rc)
		return 0;
	rc = ths__as_manifest(buf, len, mf, g->err);
	th_free(buf);
	return rc;
}

static int gc_mark(struct gc *g, const ths_hash *h)
{
	struct gc_obj *o = gc_find(g, h);
	if (!o) {
		g->st->missing++;
		return 0;
	}
	if (o->marked)
		return 0;
	o->marked = true;
	ths__manifest mf;
	int rc = gc_manifest(g, h, &mf);
	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < mf.n; i++) {
		struct gc_obj *c = gc_find(g, &mf.chunks[i].hash);
		if (!c)
			g->st->missing++;
		else
			c->marked = true;
	}
	ths__mf_release(&mf);
	return 0;
}

static int gc_label_root(void *ud, const char *store_id, const char *label,
			 const ths_hash *hash, const char *path,
			 const char *problem)
{
	struct gc *g = ud;
	if (!hash)
		return th_err_set(g->err, TH_ECORRUPT, "not collecting: label "
				  "'%s' of store '%s' (%s/%s) is unreadable (%s)",
				  label, store_id, g->s->root, path, problem);
	return gc_mark(g, hash);
}

static int gc_sweep(struct gc *g, bool manifests)
{
	ths__backend *be = g->s->be;
	for (size_t i = 0; i < g->n; i++) {
		struct gc_obj *o = &g->objs[i];
		if (o->marked || o->manifest != manifests)
			continue;
		th_err rerr = { 0 };
		int rc = be->ops->remove(be, &o->info.hash, &rerr);
		if (rc == TH_ENOTFOUND)
			continue;
		if (rc)
			return th_err_set(g->err, rc, "%s", rerr.msg);
		g->st->removed++;
		g->st->removed_bytes += o->info.size;
	}
	return 0;
}

int ths_gc(ths_store *s, uint64_t grace_s, ths_gc_stats *stats, th_err *err)
{
	ths_gc_stats local;
	ths_gc_stats *st = stats ? stats : &local;
	memset(st, 0, sizeof *st);
	struct gc g = { .s = s, .st = st, .err = err };
	ths__hmap_init(&g.index);
	int lockfd = -1;
	int rc = ths__lock(s, "LOCK", true, &lockfd, err);
	if (rc)
		goto out;
	int64_t start = (int64_t)th_wall_ns();
	int64_t grace_ns = grace_s > (uint64_t)INT64_MAX / 1000000000
				   ? INT64_MAX : (int64_t)grace_s * 1000000000;
	int64_t cutoff = start - grace_ns;
	if ((rc = s->be->ops->list(s->be, gc_collect, &g, err)) != 0)
		goto out;
	st->objects = g.n;
	/* Roots: labels, then pins, then fresh objects. */
	if ((rc = ths__labels_each(s, gc_label_root, &g, err)) != 0)
		goto out;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->pins.cap && !rc; i++)
		if (s->pins.slots[i].used)
			rc = gc_mark(&g, &s->pins.slots[i].key);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		goto out;
	for (size_t i = 0; i < g.n && !rc; i++)
		if (g.objs[i].info.mtime_ns >= cutoff)
			rc = gc_mark(&g, &g.objs[i].info.hash);
	if (rc)
		goto out;
	/* Which unmarked objects are manifests: they go first. */
	for (size_t i = 0; i < g.n; i++) {
		struct gc_obj *o = &g.objs[i];
		if (o->marked) {
			st->live++;
			continue;
		}
		ths__manifest mf;
		rc = gc_manifest(&g, &o->info.hash, &mf);
		if (rc < 0)
			goto out;
		o->manifest = rc == 1;
		if (rc == 1)
			ths__mf_release(&mf);
		rc = 0;
	}
	if ((rc = gc_sweep(&g, true)) != 0 ||
	    (rc = s->be->ops->sync(s->be, err)) != 0 ||
	    (rc = gc_sweep(&g, false)) != 0 ||
	    (rc = s->be->ops->sweep_tmp(s->be, &st->tmp_removed, err)) != 0)
		goto out;
	rc = s->be->ops->sync(s->be, err);
out:
	if (rc == TH_ENOMEM && err && !err->msg[0])
		th_err_set(err, rc, "out of memory (gc)");
	ths__unlock(lockfd);
	ths__hmap_release(&g.index);
	th_free(g.objs);
	return rc;
}
