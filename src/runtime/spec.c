/*
 * spec.c - what the runtime resolves once per manifest: the component's
 * source and the initial state's bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "runtime/spec.h"

#define INIT_STATE_MAX (64u << 20)

int rtf_read_file(const char *path, size_t max, uint8_t **out, size_t *len,
		  th_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	if (fd < 0)
		return th_err_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_EIO,
				  "%s: %s", path, strerror(errno));
	for (;;) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 65536;
			uint8_t *nb;
			if (cap >= max) {
				th_free(buf);
				close(fd);
				return th_err_set(err, TH_ELIMIT,
						  "%s: larger than %zu bytes", path, max);
			}
			nb = th_realloc(buf, nc + 1);
			if (!nb) {
				th_free(buf);
				close(fd);
				return th_err_set(err, TH_ENOMEM, "out of memory");
			}
			buf = nb;
			cap = nc;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			th_free(buf);
			close(fd);
			return th_err_set(err, TH_EIO, "%s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > max) {
		th_free(buf);
		return th_err_set(err, TH_ELIMIT, "%s: larger than %zu bytes", path, max);
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

static char *join(const char *dir, const char *p)
{
	size_t n;
	char *out;
	if (p[0] == '/' || !dir || !*dir)
		return th_strdup(p);
	n = strlen(dir) + 1 + strlen(p) + 1;
	out = th_malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", dir, p);
	return out;
}

static int where(th_err *err, const thm_manifest *m, const thm_ref *r)
{
	return th_err_prefix(err, "%s:%u:%u", m->file ? m->file : "<string>",
			     r->line, r->col);
}

int rtf_from_manifest(thm_manifest *m, const char *base_dir, ths_store *store,
		      rtf_spec **out, th_err *err)
{
	rtf_spec *s = th_calloc(1, sizeof *s);
	/* thm_load already resolved paths against the manifest's directory;
	 * a manifest given as text has its paths resolved here. */
	const char *dir = m->dir && *m->dir ? NULL : base_dir;
	int rc = 0;

	*out = NULL;
	if (!s) {
		thm_free(m);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	s->m = m;
	switch (m->component.kind) {
	case THM_REF_PATH:
		s->component_path = join(dir, m->component.ref);
		if (!s->component_path)
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
		break;
	case THM_REF_STORE:
		s->component_label = th_strdup(m->component.ref);
		if (!s->component_label)
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
		break;
	case THM_REF_HASH:
		s->has_hash = true;
		memcpy(s->hash, m->component.hash, 32);
		break;
	default:
		rc = th_err_set(err, TH_EINVAL, "%s: no component",
				m->file ? m->file : "<string>");
		break;
	}
	if (rc)
		goto fail;

	const thm_ref *is = &m->init_state;
	switch (is->kind) {
	case THM_REF_NONE:
		break;
	case THM_REF_PATH: {
		char *p = join(dir, is->ref);
		if (!p) {
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
			goto fail;
		}
		rc = rtf_read_file(p, INIT_STATE_MAX, &s->init_state, &s->init_len, err);
		th_free(p);
		if (rc) {
			where(err, m, is);
			goto fail;
		}
		s->has_init = true;
		break;
	}
	case THM_REF_INLINE:
		s->init_state = th_malloc(is->ref_len + 1);
		if (!s->init_state) {
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
			goto fail;
		}
		memcpy(s->init_state, is->ref, is->ref_len);
		s->init_len = is->ref_len;
		s->has_init = true;
		break;
	case THM_REF_STORE:
	case THM_REF_HASH: {
		ths_hash h;
		if (is->kind == THM_REF_STORE)
			rc = ths_label_get(store, THS_DEFAULT_STORE, is->ref, &h, err);
		else
			memcpy(h.b, is->hash, 32);
		if (!rc)
			rc = ths_get(store, &h, INIT_STATE_MAX, &s->init_state,
				     &s->init_len, err);
		if (rc) {
			th_err_prefix(err, "init_state");
			where(err, m, is);
			goto fail;
		}
		s->has_init = true;
		break;
	}
	}
	*out = s;
	return 0;
fail:
	rtf_free(s);
	return rc;
}

void rtf_free(rtf_spec *s)
{
	if (!s)
		return;
	thm_free(s->m);
	th_free(s->component_path);
	th_free(s->component_label);
	th_free(s->text);
	/* From ths_get or th_malloc: both the project allocator. */
	th_free(s->init_state);
	th_free(s);
}

void rtf_chain_opts(const thm_manifest *m, thx_durability rt_durability,
		    thx_chain_opts *out)
{
	const thm_chain *c = &m->chain;
	memset(out, 0, sizeof *out);
	if (!m->save_chain || rt_durability == THX_NONE)
		out->durability = THX_NONE;
	else if (c->durability == THM_DURABLE_ALWAYS)
		out->durability = THX_ALWAYS;
	else if (c->durability == THM_DURABLE_BATCH)
		out->durability = THX_BATCH;
	else
		out->durability = rt_durability;
	out->batch_ms = c->batch_ms;
	out->retention.max_events = c->retain_events;
	out->retention.max_bytes = c->retain_bytes;
	out->retention.max_age_ns = c->retain_age_ms > UINT64_MAX / 1000000u
		? UINT64_MAX : c->retain_age_ms * 1000000u;
}
