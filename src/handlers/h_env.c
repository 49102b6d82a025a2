/*
 * h_env.c - theater:simple/environment: read-only access to the
 * runtime process's environment, filtered by the actor's permissions:
 * a variable is visible when it is in allowed_vars or starts with one of
 * allowed_prefixes (no list given: every variable), and never when it is
 * in denied_vars. A hidden variable reads as absent and the attempt is
 * recorded as permission.denied.
 */
#include "base/base.h"
#include "handlers/handlers.h"

extern char **environ;

static bool in(const thm_strlist *l, const char *s, size_t n)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == n && !memcmp(l->v[i], s, n))
			return true;
	return false;
}

static bool prefixed(const thm_strlist *l, const char *s, size_t n)
{
	for (size_t i = 0; i < l->n; i++) {
		size_t k = strlen(l->v[i]);
		if (k <= n && !memcmp(l->v[i], s, k))
			return true;
	}
	return false;
}

static bool visible(const thm_env_perms *p, const char *name, size_t n)
{
	if (in(&p->denied_vars, name, n))
		return false;
	if (!p->allowed_vars.set && !p->allowed_prefixes.set)
		return true;
	return in(&p->allowed_vars, name, n) || prefixed(&p->allowed_prefixes, name, n);
}

/* The value of name, when visible; deny records why not. */
static const char *lookup(rth_call *c, bool *denied)
{
	char name[256];
	size_t n;
	*denied = false;
	if (!rth_cstr(&c->args[0], name, sizeof name))
		return NULL;
	n = strlen(name);
	if (!visible(&c->a->perm.env, name, n)) {
		*denied = true;
		snprintf(c->msg, sizeof c->msg,
			 "environment variable \"%s\" is not allowed", name);
		return NULL;
	}
	return getenv(name);
}

static rth_ret fn_get_var(rth_call *c)
{
	bool denied;
	const char *v = lookup(c, &denied);
	thc_val s = { 0 };
	if (denied)
		return rth_denied(c);
	if (!v)
		return thc_val_case(THC_OPTION, 0, NULL, c->result) ? rth_oom(c) : RTH_OK;
	if (thc_val_string(v, strlen(v), &s))
		return rth_oom(c);
	if (thc_val_case(THC_OPTION, 1, &s, c->result)) {
		thc_val_release(&s);
		return rth_oom(c);
	}
	return RTH_OK;
}

static rth_ret fn_exists(rth_call *c)
{
	bool denied;
	const char *v = lookup(c, &denied);
	if (denied)
		return rth_denied(c);
	*c->result = thc_val_bool(v != NULL);
	return RTH_OK;
}

static rth_ret fn_list(rth_call *c)
{
	const thm_env_perms *p = &c->a->perm.env;
	uint32_t n = 0, k = 0;
	if (!p->allow_list_all)
		return rth_deny(c, "listing the environment is not allowed (allow_list_all)");
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq && visible(p, *e, (size_t)(eq - *e)))
			n++;
	}
	if (thc_val_agg(THC_LIST, n, c->result))
		return rth_oom(c);
	for (char **e = environ; e && *e && k < n; e++) {
		const char *eq = strchr(*e, '=');
		thc_val *t = &c->result->of.agg.items[k];
		if (!eq || !visible(p, *e, (size_t)(eq - *e)))
			continue;
		if (thc_val_agg(THC_TUPLE, 2, t) ||
		    thc_val_string(*e, (size_t)(eq - *e), &t->of.agg.items[0]) ||
		    thc_val_string(eq + 1, strlen(eq + 1), &t->of.agg.items[1])) {
			thc_val_release(c->result);
			return rth_oom(c);
		}
		k++;
	}
	c->result->of.agg.n = k;
	return RTH_OK;
}

#define EV "theater:simple/environment"
const rth_fn rth_env_fns[] = {
	{ EV, "get-var", "host." EV ".get-var", THM_H_ENVIRONMENT, RTH_DENY_NONE,
	  fn_get_var, NULL },
	{ EV, "list-vars", "host." EV ".list-vars", THM_H_ENVIRONMENT,
	  RTH_DENY_EMPTY, fn_list, NULL },
	{ EV, "exists", "host." EV ".exists", THM_H_ENVIRONMENT, RTH_DENY_FALSE,
	  fn_exists, NULL },
	{ 0 }
};
