/*
 * cache.c - manifests and components loaded once per runtime.
 *
 * Manifests are keyed by their text (and base directory), or by path with
 * the file's size and modification time, so a supervisor spawning the same
 * manifest again does not parse it again. Components are keyed by their
 * Store hash: every actor of the same component shares one thc_component
 * (immutable, thread-safe). Both live until the runtime is freed; each
 * component stays pinned in the Store meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "component/types.h"
#include "runtime/rt.h"

#define COMPONENT_MAX (256u << 20)

typedef struct mentry {
	struct mentry *next;
	char *key;
	size_t klen;
	rtf_spec *spec;
	rtc_code *code; /* resolved on first spawn */
} mentry;

typedef struct centry {
	struct centry *next;
	rtc_code code;
} centry;

struct rtc_cache {
	pthread_mutex_t lock;
	mentry *manifests;
	centry *codes;
};

int rtc_new(rtc_cache **out)
{
	rtc_cache *c = th_calloc(1, sizeof *c);
	if (!c)
		return TH_ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void rtc_free(rtc_cache *c, ths_store *store)
{
	if (!c)
		return;
	while (c->manifests) {
		mentry *m = c->manifests;
		c->manifests = m->next;
		rtf_free(m->spec);
		th_free(m->key);
		th_free(m);
	}
	while (c->codes) {
		centry *e = c->codes;
		c->codes = e->next;
		thc_component_free(e->code.comp);
		if (store)
			ths_unpin(store, &e->code.hash, NULL);
		th_free(e);
	}
	pthread_mutex_destroy(&c->lock);
	th_free(c);
}

int rtc_spec(thr_runtime *rt, const char *path, const char *text,
	     const char *base_dir, rtf_spec **out, th_err *err)
{
	return rtc_spec_named(rt, path, text, NULL, base_dir, out, err);
}

int rtc_spec_named(thr_runtime *rt, const char *path, const char *text,
		   const char *name, const char *base_dir, rtf_spec **out,
		   th_err *err)
{
	rtc_cache *c = rt->cache;
	char *key = NULL;
	size_t klen;
	rtf_spec *spec = NULL;
	struct stat st;
	int rc;

	*out = NULL;
	if (path) {
		if (stat(path, &st) != 0)
			return th_err_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_EIO,
					  "manifest %s: %s", path, strerror(errno));
		klen = strlen(path) + 64;
		key = th_malloc(klen);
		if (!key)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		klen = (size_t)snprintf(key, klen, "P%s|%lld|%lld|%ld", path,
					(long long)st.st_size,
					(long long)st.st_mtim.tv_sec,
					(long)st.st_mtim.tv_nsec);
	} else {
		/* The name is part of the key: the spec keeps it (m->file). */
		size_t tl = strlen(text), bl = base_dir ? strlen(base_dir) : 0;
		size_t nl = name ? strlen(name) : 0;
		klen = 1 + bl + 1 + nl + 1 + tl;
		key = th_malloc(klen + 1);
		if (!key)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		key[0] = 'T';
		if (bl)
			memcpy(key + 1, base_dir, bl);
		key[1 + bl] = 0; /* NUL: in neither a path nor a name */
		if (nl)
			memcpy(key + 2 + bl, name, nl);
		key[2 + bl + nl] = 0;
		memcpy(key + 3 + bl + nl, text, tl);
		key[klen] = 0;
	}
	pthread_mutex_lock(&c->lock);
	for (mentry *m = c->manifests; m; m = m->next)
		if (m->klen == klen && !memcmp(m->key, key, klen)) {
			*out = m->spec;
			break;
		}
	pthread_mutex_unlock(&c->lock);
	if (*out) {
		th_free(key);
		return 0;
	}

	{
		thm_manifest *man = NULL;
		if (path)
			rc = thm_load(path, &man, err);
		else
			rc = thm_parse(text, strlen(text), name, &man, err);
		if (!rc)
			rc = rtf_from_manifest(man, base_dir, rt->store, &spec, err);
	}
	if (rc)
		goto out;
	if (path) {
		uint8_t *t;
		size_t tl;
		if (rtf_read_file(path, 1u << 20, &t, &tl, NULL) == 0)
			spec->text = (char *)t;
	} else if (!(spec->text = th_strdup(text))) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto out;
	}

	mentry *m = th_calloc(1, sizeof *m);
	if (!m) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	m->key = key;
	m->klen = klen;
	m->spec = spec;
	key = NULL;
	pthread_mutex_lock(&c->lock);
	m->next = c->manifests;
	c->manifests = m;
	pthread_mutex_unlock(&c->lock);
	*out = spec;
	spec = NULL;
out:
	rtf_free(spec);
	th_free(key);
	return rc;
}

static mentry *entry_of(rtc_cache *c, const rtf_spec *spec)
{
	for (mentry *m = c->manifests; m; m = m->next)
		if (m->spec == spec)
			return m;
	return NULL;
}

static rtc_code *code_find(rtc_cache *c, const ths_hash *h)
{
	for (centry *e = c->codes; e; e = e->next)
		if (!memcmp(e->code.hash.b, h->b, THS_HASH_LEN))
			return &e->code;
	return NULL;
}

int rtc_code_get(thr_runtime *rt, const rtf_spec *spec, rtc_code **out,
		 bool *cached, th_err *err)
{
	rtc_cache *c = rt->cache;
	ths_hash h;
	uint8_t *bytes = NULL;
	size_t len = 0;
	thc_component *comp = NULL;
	centry *e = NULL;
	mentry *m;
	int rc;

	*out = NULL;
	*cached = false;
	pthread_mutex_lock(&c->lock);
	m = entry_of(c, spec);
	if (m && m->code)
		*out = m->code;
	else if (spec->has_hash) {
		memcpy(h.b, spec->hash, THS_HASH_LEN);
		*out = code_find(c, &h);
	}
	pthread_mutex_unlock(&c->lock);
	if (*out) {
		*cached = true;
		return 0;
	}

	/* The Store is the source of the component's bytes: a file named by
	 * the manifest is put there first (and pinned below). */
	if (spec->has_hash) {
		memcpy(h.b, spec->hash, THS_HASH_LEN);
	} else if (spec->component_label) {
		rc = ths_label_get(rt->store, THS_DEFAULT_STORE,
				   spec->component_label, &h, err);
		if (rc)
			return th_err_prefix(err, "component store:%s",
					     spec->component_label);
	} else {
		uint8_t *file;
		size_t flen;
		rc = rtf_read_file(spec->component_path, COMPONENT_MAX, &file, &flen, err);
		if (rc)
			return th_err_prefix(err, "component");
		rc = ths_put(rt->store, file, flen, &h, err);
		th_free(file);
		if (rc)
			return th_err_prefix(err, "component: putting it in the Store");
	}
	rc = ths_get(rt->store, &h, COMPONENT_MAX, &bytes, &len, err);
	if (rc) {
		char hex[THS_HEX_LEN + 1];
		ths_hash_hex(&h, hex);
		return th_err_prefix(err, "component %s", hex);
	}

	pthread_mutex_lock(&c->lock);
	rtc_code *have = code_find(c, &h);
	pthread_mutex_unlock(&c->lock);
	if (have) {
		ths_buf_free(bytes);
		*out = have;
		*cached = true;
		goto remember;
	}

	rc = thc_component_load(bytes, len, &comp, err);
	ths_buf_free(bytes);
	if (rc)
		return rc;
	e = th_calloc(1, sizeof *e);
	if (!e) {
		thc_component_free(comp);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	e->code.hash = h;
	ths_hash_hex(&h, e->code.hex);
	e->code.size = len;
	e->code.comp = comp;
	for (int x = 0; x < RTA_NX; x++) {
		thc_funcref f;
		char ty[64];
		e->code.exports[x] = thc_component_find_export(
			comp, rta_export_iface[x], rta_export_name[x]);
		if (e->code.exports[x] < 0)
			continue;
		thc_component_export(comp, (uint32_t)e->code.exports[x], &f);
		e->code.inplace[x] = f.type->result &&
			thc_type_str(f.type->result, ty, sizeof ty) < sizeof ty &&
			!strcmp(ty, "result<tuple<option<list<u8>>>, string>");
	}
	if (e->code.exports[RTA_X_INIT] < 0) {
		thc_component_free(comp);
		th_free(e);
		return th_err_set(err, TH_EINVAL,
				  "world mismatch: the component does not export "
				  "theater:simple/actor#init");
	}
	rc = ths_pin(rt->store, &h, err);
	if (rc) {
		thc_component_free(comp);
		th_free(e);
		return th_err_prefix(err, "component: pinning it in the Store");
	}
	pthread_mutex_lock(&c->lock);
	have = code_find(c, &h);
	if (!have) {
		e->next = c->codes;
		c->codes = e;
		have = &e->code;
		e = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (e) { /* lost a race with another spawner */
		thc_component_free(e->code.comp);
		ths_unpin(rt->store, &h, NULL);
		th_free(e);
		*cached = true;
	}
	*out = have;
remember:
	pthread_mutex_lock(&c->lock);
	m = entry_of(c, spec);
	if (m)
		m->code = *out;
	pthread_mutex_unlock(&c->lock);
	return 0;
}
