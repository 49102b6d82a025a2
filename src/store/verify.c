/*
 * verify.c - re-hash every object and check every reference.
 *
 * Holds ROOT/LOCK shared (GC cannot delete anything meanwhile; puts may
 * go on). Checks, reporting each problem with the file it is in:
 *   - every object file's bytes hash to its name (I1);
 *   - every manifest's chunks are present with the listed sizes (I2);
 *   - every label file is well formed and names a present object (I3);
 *   - every pack file is whole and its index intact (the backend's check;
 *     a flipped byte in a packed object is found by re-hashing it, and
 *     reported with the pack's path and the object's offset).
 * An object written after the listing began is looked up again before it
 * is reported missing.
 */
#include "store/store_int.h"

struct vobj {
	struct ths__obj_info info;
};

struct verify {
	ths_store *s;
	struct vobj *objs;
	size_t n, cap;
	ths__hmap index; /* hash -> position + 1 */
	uint64_t total;
	ths_verify_fn report;
	void *ud;
	ths_verify_stats *st;
	th_err *err;
};

static int v_collect(void *ud, const struct ths__obj_info *info)
{
	struct verify *v = ud;
	if (v->n == v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 256;
		struct vobj *nv = th_realloc(v->objs, ncap * sizeof *nv);
		if (!nv)
			return TH_ENOMEM;
		v->objs = nv;
		v->cap = ncap;
	}
	ths__hval *slot;
	if (ths__hmap_upsert(&v->index, &info->hash, &slot) < 0)
		return TH_ENOMEM;
	v->objs[v->n].info = *info;
	slot->n = ++v->n;
	v->total += info->size;
	return 0;
}

static void v_report(struct verify *v, const char *path, const char *fmt, ...)
	TH_PRINTF(3, 4);

static void v_report(struct verify *v, const char *path, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	v->st->bad++;
	if (v->report)
		v->report(v->ud, path, msg);
}

/* Present now (in the listing, or written since)? Size in *size. */
static bool v_present(struct verify *v, const ths_hash *h, uint64_t *size)
{
	ths__hval *slot = ths__hmap_find(&v->index, h);
	if (slot) {
		*size = v->objs[slot->n - 1].info.size;
		return true;
	}
	struct ths__obj_info info;
	if (v->s->be->ops->stat(v->s->be, h, &info, NULL) == 0) {
		*size = info.size;
		return true;
	}
	return false;
}

static int v_object(struct verify *v, const struct ths__obj_info *info)
{
	ths__backend *be = v->s->be;
	char where[4200], hex[THS_HEX_LEN + 1];
	uint8_t *buf;
	size_t len;
	th_err rerr = { 0 };
	be->ops->where(be, &info->hash, where, sizeof where);
	int rc = be->ops->read(be, &info->hash, (size_t)1 << 30, &buf, &len,
			       &rerr);
	if (rc == TH_ENOMEM)
		return th_err_set(v->err, rc, "%s", rerr.msg);
	if (rc == TH_ENOTFOUND)
		return 0; /* deleted by GC of another handle before our lock */
	if (rc) {
		v_report(v, where, "cannot read: %s", rerr.msg);
		return 0;
	}
	v->st->objects++;
	v->st->bytes += len;
	ths_hash got;
	if ((rc = ths__sha256(buf, len, &got)) != 0) {
		th_free(buf);
		return th_err_set(v->err, rc, "out of memory (hashing)");
	}
	if (memcmp(got.b, info->hash.b, THS_HASH_LEN) != 0) {
		ths_hash_hex(&got, hex);
		v_report(v, where, "corrupt: its %zu bytes hash to %s", len, hex);
		th_free(buf);
		return 0;
	}
	ths__manifest mf;
	rc = ths__as_manifest(buf, len, &mf, v->err);
	th_free(buf);
	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < mf.n; i++) {
		uint64_t size;
		ths_hash_hex(&mf.chunks[i].hash, hex);
		if (!v_present(v, &mf.chunks[i].hash, &size))
			v_report(v, where, "manifest: chunk %zu (%s, content "
				 "bytes %llu..%llu) is missing", i, hex,
				 (unsigned long long)mf.chunks[i].offset,
				 (unsigned long long)(mf.chunks[i].offset +
						      mf.chunks[i].size));
		else if (size != mf.chunks[i].size)
			v_report(v, where, "manifest: chunk %zu (%s) has %llu "
				 "bytes, manifest says %u", i, hex,
				 (unsigned long long)size,
				 (unsigned)mf.chunks[i].size);
	}
	ths__mf_release(&mf);
	return 0;
}

static void v_problem(void *ud, const char *path, const char *msg)
{
	v_report(ud, path, "%s", msg);
}

static int v_label(void *ud, const char *store_id, const char *label,
		   const ths_hash *hash, const char *path, const char *problem)
{
	struct verify *v = ud;
	char full[4200], hex[THS_HEX_LEN + 1];
	uint64_t size;
	TH_UNUSED(store_id);
	TH_UNUSED(label);
	snprintf(full, sizeof full, "%s/%s", v->s->root, path);
	if (!hash) {
		v_report(v, full, "%s", problem);
		return 0;
	}
	if (!v_present(v, hash, &size)) {
		ths_hash_hex(hash, hex);
		v_report(v, full, "label names object %s, which is missing", hex);
	}
	return 0;
}

int ths_verify(ths_store *s, ths_verify_fn report, void *ud,
	       ths_progress_fn progress, void *pud, ths_verify_stats *stats,
	       th_err *err)
{
	ths_verify_stats local;
	ths_verify_stats *st = stats ? stats : &local;
	memset(st, 0, sizeof *st);
	struct verify v = { .s = s, .report = report, .ud = ud, .st = st,
			    .err = err };
	ths__hmap_init(&v.index);
	int lockfd = -1;
	int rc = ths__lock(s, "LOCK", false, &lockfd, err);
	if (rc)
		goto out;
	if ((rc = s->be->ops->list(s->be, v_collect, &v, err)) != 0)
		goto out;
	uint64_t done = 0;
	for (size_t i = 0; i < v.n && !rc; i++) {
		rc = v_object(&v, &v.objs[i].info);
		done += v.objs[i].info.size;
		if (progress)
			progress(pud, done, v.total);
	}
	if (rc)
		goto out;
	if ((rc = s->be->ops->check(s->be, v_problem, &v, err)) != 0)
		goto out;
	if ((rc = ths__labels_each(s, v_label, &v, err)) != 0)
		goto out;
	if (st->bad)
		rc = th_err_set(err, TH_ECORRUPT, "verify found %llu problem%s",
				(unsigned long long)st->bad,
				st->bad == 1 ? "" : "s");
out:
	if (rc == TH_ENOMEM && err && !err->msg[0])
		th_err_set(err, rc, "out of memory (verify)");
	ths__unlock(lockfd);
	ths__hmap_release(&v.index);
	th_free(v.objs);
	return rc;
}
