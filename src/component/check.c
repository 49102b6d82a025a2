/*
 * check.c - checking a component's imports and exports against the
 * theater:simple world (engine-independent: runs on the decoded binary).
 * A mismatch names the function and both types.
 */
#include "component/comp.h"

int thcl_mismatch(th_err *err, const char *what, const char *iface, const char *name,
		    const thc_functype *want, const thc_functype *got)
{
	char a[400], b[400];
	thc_functype_str(want, a, sizeof a);
	thc_functype_str(got, b, sizeof b);
	return th_err_set(err, TH_EINVAL,
			  "world mismatch: %s %s#%s: expected %s, found %s", what, iface,
			  name, a, b);
}

int thcl_prep_fn(thc_component *c, thc_fn *f, bool lower, th_err *err)
{
	thct_flatsig_of(f->type, lower, &f->sig);
	if (f->type->nparams > THC_MAX_PARAMS)
		return th_err_set(err, TH_EUNSUPPORTED, "%s#%s: more than %d parameters",
				  f->iface, f->name, THC_MAX_PARAMS);
	if (f->sig.params_spilled && !(f->ptuple = thct_params_tuple(&c->arena, f->type)))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	return 0;
}

int thcl_add_fn(thc_fn **v, uint32_t *n, thc_fn f, th_err *err)
{
	if ((*n & (*n - 1)) == 0) {
		thc_fn *nv = th_realloc(*v, (size_t)(*n ? *n * 2 : 4) * sizeof(thc_fn));
		if (!nv)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		*v = nv;
	}
	(*v)[(*n)++] = f;
	return 0;
}

/* World check of one function; returns the world's type in *wt. */
int thcl_check_fn(const thcw_world *w, bool exported, const char *iface, const char *name,
		    const thc_functype *got, const thc_functype **wt, th_err *err)
{
	const char *what = exported ? "export" : "import";
	const thcw_iface *wi = thcw_iface_of(w, exported, iface);
	if (!wi)
		return th_err_set(err, TH_EINVAL,
				  "world mismatch: %s %s#%s: interface %s is not %s by the theater:simple world",
				  what, iface, name, iface, exported ? "exported" : "imported");
	const thc_functype *ft = thcw_func_of(wi, name);
	if (!ft)
		return th_err_set(err, TH_EINVAL, "world mismatch: %s %s#%s: no such function in %s",
				  what, iface, name, iface);
	if (got && !thct_functype_equal(ft, got))
		return thcl_mismatch(err, what, iface, name, ft, got);
	*wt = ft;
	return 0;
}

int thcl_require_init(const thc_component *c, th_err *err)
{
	for (uint32_t i = 0; i < c->nexports; i++)
		if (strcmp(c->exports[i].iface, "theater:simple/actor") == 0 &&
		    strcmp(c->exports[i].name, "init") == 0)
			return 0;
	return th_err_set(err, TH_EINVAL,
			  "world mismatch: missing export theater:simple/actor#init");
}

/* ---- component form ----------------------------------------------------- */

int thcl_check_component(thc_component *c, const thcw_world *w, th_err *err)
{
	int rc = thcd_decode(c->bytes, c->len, &c->dec, err);
	if (rc)
		return rc;
	thcd_scope *root = c->dec.root;
	/* Imports: instances of world interfaces; their function exports. */
	for (uint32_t i = 0; i < root->imports.n; i++) {
		const thcd_export *im = &root->imports.v[i];
		if (im->sort != THCD_INST)
			return th_err_set(err, TH_EINVAL,
					  "world mismatch: import \"%s\" is not an interface instance", im->name);
		const thcd_insttype *it = root->insts.v[im->idx].type;
		for (uint32_t k = 0; k < it->n; k++) {
			if (!it->funcs[k])
				continue;
			thc_fn f = { .iface = im->name, .name = it->names[k] };
			if ((rc = thcl_check_fn(w, false, im->name, it->names[k], it->funcs[k], &f.type, err)))
				return rc;
			f.type = it->funcs[k];
			if ((rc = thcl_prep_fn(c, &f, true, err)) || (rc = thcl_add_fn(&c->imports, &c->nimports, f, err)))
				return rc;
		}
	}
	thcd_lifted *ex;
	uint32_t nex;
	if ((rc = thcd_exports(&c->dec, &ex, &nex, err)))
		return rc;
	for (uint32_t i = 0; i < nex && !rc; i++) {
		thc_fn f = { .iface = ex[i].iface, .name = ex[i].name, .lift = ex[i].lift };
		const thc_functype *wt;
		if (!(rc = thcl_check_fn(w, true, f.iface, f.name, ex[i].lift->type, &wt, err))) {
			f.type = ex[i].lift->type;
			if (!ex[i].lift->opts.has_memory && f.type->result &&
			    f.type->result->nflat > THCT_MAX_FLAT_RESULTS)
				rc = th_err_set(err, TH_EINVAL, "export %s#%s: canon lift without memory",
						f.iface, f.name);
			if (!rc)
				rc = thcl_prep_fn(c, &f, false, err);
			if (!rc)
				rc = thcl_add_fn(&c->exports, &c->nexports, f, err);
		}
	}
	th_free(ex);
	if (rc)
		return rc;
	if ((rc = thcl_require_init(c, err)))
		return rc;
	return 0;
}

