/*
 * manifest_perms.c - the permission model: intersection, containment, and
 * the effective permissions of a child actor.
 *
 * Invariant: thm_effective(parent, child) is within parent, for every
 * parent and every manifest (Theater computed effective permissions but
 * never applied them; here the runtime applies exactly this result).
 *
 * Meet of each kind of field (outer ∩ req):
 *   enabled, booleans        AND
 *   allow-lists (exact)      set intersection; an unset list restricts nothing
 *   allow-lists (prefixes)   the entries of either side that lie inside an
 *                            entry of the other (the narrower prefixes)
 *   deny-lists               union
 *   maxima / minima          min / max
 *   filesystem root          the inner of the two when one contains the
 *                            other; disjoint roots disable the filesystem
 */
#include <strings.h>

#include "toml/manifest_int.h"

/* ---- string lists ---- */

int thm__strlist_push(thm_strlist *l, const char *s)
{
	size_t bytes;
	if (!th_mul_ok(l->n + 1, sizeof(char *), &bytes))
		return TH_ELIMIT;
	char **v = th_realloc(l->v, bytes);
	if (!v)
		return TH_ENOMEM;
	l->v = v;
	char *d = th_strdup(s);
	if (!d)
		return TH_ENOMEM;
	l->v[l->n++] = d;
	l->set = true;
	return 0;
}

void thm__strlist_release(thm_strlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		th_free(l->v[i]);
	th_free(l->v);
	memset(l, 0, sizeof(*l));
}

int thm__strlist_copy(const thm_strlist *in, thm_strlist *out)
{
	memset(out, 0, sizeof(*out));
	out->set = in->set;
	for (size_t i = 0; i < in->n; i++) {
		int rc = thm__strlist_push(out, in->v[i]);
		if (rc) {
			thm__strlist_release(out);
			return rc;
		}
	}
	return 0;
}

static bool has(const thm_strlist *l, const char *s, bool ci)
{
	for (size_t i = 0; i < l->n; i++)
		if (ci ? strcasecmp(l->v[i], s) == 0 : strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

static bool prefixed(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

typedef bool (*inside_fn)(const char *x, const char *container);

static bool inside_some(const thm_strlist *l, const char *x, inside_fn inside)
{
	for (size_t i = 0; i < l->n; i++)
		if (inside(x, l->v[i]))
			return true;
	return false;
}

/* Exact allow-lists: intersection. */
static int meet_exact(const thm_strlist *a, const thm_strlist *b, bool ci,
		      thm_strlist *out)
{
	if (!a->set)
		return thm__strlist_copy(b, out);
	if (!b->set)
		return thm__strlist_copy(a, out);
	memset(out, 0, sizeof(*out));
	out->set = true;
	for (size_t i = 0; i < b->n; i++)
		if (has(a, b->v[i], ci) && !has(out, b->v[i], ci)) {
			int rc = thm__strlist_push(out, b->v[i]);
			if (rc)
				return rc;
		}
	return 0;
}

/* Prefix or path allow-lists: the narrower entries of both sides. */
static int meet_nested(const thm_strlist *a, const thm_strlist *b,
		       inside_fn inside, thm_strlist *out)
{
	if (!a->set)
		return thm__strlist_copy(b, out);
	if (!b->set)
		return thm__strlist_copy(a, out);
	memset(out, 0, sizeof(*out));
	out->set = true;
	const thm_strlist *sides[2][2] = { { b, a }, { a, b } };
	for (int s = 0; s < 2; s++) {
		const thm_strlist *from = sides[s][0], *within = sides[s][1];
		for (size_t i = 0; i < from->n; i++)
			if (inside_some(within, from->v[i], inside) &&
			    !has(out, from->v[i], false)) {
				int rc = thm__strlist_push(out, from->v[i]);
				if (rc)
					return rc;
			}
	}
	return 0;
}

/* Deny-lists: union. */
static int join(const thm_strlist *a, const thm_strlist *b, thm_strlist *out)
{
	int rc = thm__strlist_copy(a, out);
	if (rc)
		return rc;
	out->set = a->set || b->set;
	for (size_t i = 0; i < b->n; i++)
		if (!has(out, b->v[i], false) && (rc = thm__strlist_push(out, b->v[i])))
			return rc;
	return 0;
}

/* inner allows nothing outer does not (allow-lists). */
static bool list_within(const thm_strlist *inner, const thm_strlist *outer,
			inside_fn inside)
{
	if (!outer->set)
		return true;
	if (!inner->set)
		return false;
	for (size_t i = 0; i < inner->n; i++)
		if (!inside_some(outer, inner->v[i], inside))
			return false;
	return true;
}

static bool eq_exact(const char *x, const char *c)
{
	return strcmp(x, c) == 0;
}

static bool eq_ci(const char *x, const char *c)
{
	return strcasecmp(x, c) == 0;
}

/* ---- paths ---- */

char *thm_path_normalize(const char *path)
{
	size_t n = strlen(path);
	char *out = th_malloc(n + 2);
	if (!out)
		return NULL;
	bool abs = path[0] == '/';
	size_t o = 0;
	size_t rel_up = 0; /* leading ".." parts kept in a relative path */
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = p;
		while (*e && *e != '/')
			e++;
		size_t len = (size_t)(e - p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* nothing */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (o > rel_up * 3) { /* pop the last part */
				while (o > 0 && out[o - 1] != '/')
					o--;
				if (o > 0)
					o--;
			} else if (!abs) {
				if (o)
					out[o++] = '/';
				out[o++] = '.';
				out[o++] = '.';
				rel_up++;
			}
		} else {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = e;
	}
	out[o] = '\0';
	if (abs) {
		memmove(out + 1, out, o + 1);
		out[0] = '/';
	} else if (o == 0) {
		out[0] = '.';
		out[1] = '\0';
	}
	return out;
}

void thm_str_free(char *s)
{
	th_free(s);
}

bool thm_path_within(const char *path, const char *root)
{
	char *p = thm_path_normalize(path), *r = thm_path_normalize(root);
	bool in = false;
	if (p && r) {
		size_t rn = strlen(r);
		if (strcmp(r, "/") == 0)
			in = p[0] == '/';
		else if (strcmp(r, ".") == 0)
			in = p[0] != '/' && !(p[0] == '.' && p[1] == '.');
		else
			in = strncmp(p, r, rn) == 0 && (p[rn] == '\0' || p[rn] == '/');
	}
	th_free(p);
	th_free(r);
	return in;
}

static bool path_inside(const char *x, const char *c)
{
	return thm_path_within(x, c);
}

/* ---- permission sets ---- */

void thm__perms_open(thm_perms *p)
{
	memset(p, 0, sizeof(*p));
	p->fs.read = p->fs.write = true;
	p->env.allow_list_all = true;
	p->timing.max_sleep_ms = UINT64_MAX;
	p->random.max_bytes = UINT64_MAX;
	p->random.max_int = UINT64_MAX;
	p->random.allow_crypto_secure = true;
	p->http.max_redirects = UINT64_MAX;
	p->http.timeout_ms = UINT64_MAX;
}

int thm_perms_all(thm_perms *out)
{
	thm__perms_open(out);
	for (int k = 0; k < THM_H_COUNT; k++)
		out->enabled[k] = true;
	return 0;
}

void thm_perms_release(thm_perms *p)
{
	if (!p)
		return;
	th_free(p->fs.path);
	thm__strlist_release(&p->fs.allowed_paths);
	thm__strlist_release(&p->env.allowed_vars);
	thm__strlist_release(&p->env.denied_vars);
	thm__strlist_release(&p->env.allowed_prefixes);
	thm__strlist_release(&p->http.allowed_hosts);
	thm__strlist_release(&p->http.allowed_methods);
	memset(p, 0, sizeof(*p));
}

int thm_perms_copy(const thm_perms *in, thm_perms *out)
{
	*out = *in;
	out->fs.path = NULL;
	memset(&out->fs.allowed_paths, 0, sizeof(thm_strlist));
	memset(&out->env, 0, sizeof(out->env));
	memset(&out->http.allowed_hosts, 0, sizeof(thm_strlist));
	memset(&out->http.allowed_methods, 0, sizeof(thm_strlist));
	out->env.allow_list_all = in->env.allow_list_all;
	int rc = 0;
	if (in->fs.path && !(out->fs.path = th_strdup(in->fs.path)))
		rc = TH_ENOMEM;
	if (!rc)
		rc = thm__strlist_copy(&in->fs.allowed_paths, &out->fs.allowed_paths);
	if (!rc)
		rc = thm__strlist_copy(&in->env.allowed_vars, &out->env.allowed_vars);
	if (!rc)
		rc = thm__strlist_copy(&in->env.denied_vars, &out->env.denied_vars);
	if (!rc)
		rc = thm__strlist_copy(&in->env.allowed_prefixes, &out->env.allowed_prefixes);
	if (!rc)
		rc = thm__strlist_copy(&in->http.allowed_hosts, &out->http.allowed_hosts);
	if (!rc)
		rc = thm__strlist_copy(&in->http.allowed_methods, &out->http.allowed_methods);
	if (rc)
		thm_perms_release(out);
	return rc;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

int thm_perms_intersect(const thm_perms *outer, const thm_perms *req,
			thm_perms *out, th_err *err)
{
	int rc = 0;
	memset(out, 0, sizeof(*out));
	for (int k = 0; k < THM_H_COUNT; k++)
		out->enabled[k] = outer->enabled[k] && req->enabled[k];

	/* filesystem */
	const char *root = NULL;
	if (!outer->fs.path)
		root = req->fs.path;
	else if (!req->fs.path || thm_path_within(req->fs.path, outer->fs.path))
		root = req->fs.path ? req->fs.path : outer->fs.path;
	else if (thm_path_within(outer->fs.path, req->fs.path))
		root = outer->fs.path;
	else
		out->enabled[THM_H_FILESYSTEM] = false; /* disjoint roots */
	if (root && !(out->fs.path = th_strdup(root)))
		rc = TH_ENOMEM;
	if (!out->enabled[THM_H_FILESYSTEM] && outer->fs.path && !root) {
		/* Keep a root so that nothing reads "unrestricted". */
		if (!(out->fs.path = th_strdup(outer->fs.path)))
			rc = TH_ENOMEM;
	}
	out->fs.new_dir = outer->fs.new_dir || req->fs.new_dir;
	out->fs.read = outer->fs.read && req->fs.read;
	out->fs.write = outer->fs.write && req->fs.write;
	if (!rc)
		rc = meet_nested(&outer->fs.allowed_paths, &req->fs.allowed_paths,
				 path_inside, &out->fs.allowed_paths);

	/* environment */
	if (!rc)
		rc = meet_exact(&outer->env.allowed_vars, &req->env.allowed_vars, false,
				&out->env.allowed_vars);
	if (!rc)
		rc = join(&outer->env.denied_vars, &req->env.denied_vars,
			  &out->env.denied_vars);
	if (!rc)
		rc = meet_nested(&outer->env.allowed_prefixes, &req->env.allowed_prefixes,
				 prefixed, &out->env.allowed_prefixes);
	out->env.allow_list_all = outer->env.allow_list_all && req->env.allow_list_all;

	/* timing */
	out->timing.max_sleep_ms = min64(outer->timing.max_sleep_ms, req->timing.max_sleep_ms);
	out->timing.min_sleep_ms = max64(outer->timing.min_sleep_ms, req->timing.min_sleep_ms);

	/* random */
	const thm_random_perms *seeded = req->random.has_seed ? &req->random : &outer->random;
	out->random.has_seed = seeded->has_seed;
	out->random.seed = seeded->seed;
	out->random.max_bytes = min64(outer->random.max_bytes, req->random.max_bytes);
	out->random.max_int = min64(outer->random.max_int, req->random.max_int);
	out->random.allow_crypto_secure =
		outer->random.allow_crypto_secure && req->random.allow_crypto_secure;

	/* http-client */
	if (!rc)
		rc = meet_exact(&outer->http.allowed_hosts, &req->http.allowed_hosts, true,
				&out->http.allowed_hosts);
	if (!rc)
		rc = meet_exact(&outer->http.allowed_methods, &req->http.allowed_methods,
				true, &out->http.allowed_methods);
	out->http.max_redirects = min64(outer->http.max_redirects, req->http.max_redirects);
	out->http.timeout_ms = min64(outer->http.timeout_ms, req->http.timeout_ms);

	if (rc) {
		thm_perms_release(out);
		return th_err_set(err, rc, "computing permissions: %s", th_strerror(rc));
	}
	return 0;
}

bool thm_perms_within(const thm_perms *in, const thm_perms *out)
{
	for (int k = 0; k < THM_H_COUNT; k++)
		if (in->enabled[k] && !out->enabled[k])
			return false;
	if (in->enabled[THM_H_FILESYSTEM]) {
		if (out->fs.path && (!in->fs.path || !thm_path_within(in->fs.path, out->fs.path)))
			return false;
		if ((in->fs.read && !out->fs.read) || (in->fs.write && !out->fs.write))
			return false;
		if (!list_within(&in->fs.allowed_paths, &out->fs.allowed_paths, path_inside))
			return false;
	}
	if (in->enabled[THM_H_ENVIRONMENT]) {
		if (!list_within(&in->env.allowed_vars, &out->env.allowed_vars, eq_exact) ||
		    !list_within(&in->env.allowed_prefixes, &out->env.allowed_prefixes, prefixed))
			return false;
		/* Everything outer denies, inner denies too. */
		for (size_t i = 0; i < out->env.denied_vars.n; i++)
			if (!has(&in->env.denied_vars, out->env.denied_vars.v[i], false))
				return false;
		if (in->env.allow_list_all && !out->env.allow_list_all)
			return false;
	}
	if (in->enabled[THM_H_TIMING] &&
	    (in->timing.max_sleep_ms > out->timing.max_sleep_ms ||
	     in->timing.min_sleep_ms < out->timing.min_sleep_ms))
		return false;
	if (in->enabled[THM_H_RANDOM] &&
	    (in->random.max_bytes > out->random.max_bytes ||
	     in->random.max_int > out->random.max_int ||
	     (in->random.allow_crypto_secure && !out->random.allow_crypto_secure)))
		return false;
	if (in->enabled[THM_H_HTTP_CLIENT] &&
	    (!list_within(&in->http.allowed_hosts, &out->http.allowed_hosts, eq_ci) ||
	     !list_within(&in->http.allowed_methods, &out->http.allowed_methods, eq_ci) ||
	     in->http.max_redirects > out->http.max_redirects ||
	     in->http.timeout_ms > out->http.timeout_ms))
		return false;
	return true;
}

int thm_effective(const thm_perms *parent, const thm_manifest *child,
		  thm_perms *out, th_err *err)
{
	thm_perms all, policy, step;
	memset(out, 0, sizeof(*out));
	if (!parent) {
		thm_perms_all(&all);
		parent = &all;
	}
	/* The policy as a permission set: disallowed handlers off, restricted
	 * ones narrowed, inherited ones open. */
	int rc = thm_perms_copy(&child->policy.restrict_to, &policy);
	if (rc)
		return th_err_set(err, rc, "computing permissions: %s", th_strerror(rc));
	for (int k = 0; k < THM_H_COUNT; k++)
		policy.enabled[k] = child->policy.mode[k] != THM_DISALLOW;
	rc = thm_perms_intersect(parent, &policy, &step, err);
	thm_perms_release(&policy);
	if (rc)
		return rc;
	rc = thm_perms_intersect(&step, &child->requested, out, err);
	thm_perms_release(&step);
	return rc;
}
