/*
 * instance.c - instantiating a loaded component in a realm, the host
 * trampolines behind `canon lower`, and calls into `canon lift` exports.
 *
 * Component form: core instances are created in definition order. A core
 * instance that instantiates a module gets each import from its named
 * argument instance; an inline instance is a name -> core item map. Core
 * items are resolved on first use and memoised: an alias reads a created
 * instance's export, a `canon lower` becomes a host function (trampoline)
 * that lifts the guest's flat arguments, calls the host's thc_hostfn and
 * lowers its result. Core form: the module's imports are trampolines
 * directly, and memory/realloc are its exports.
 *
 * Calls back into the guest made by the host side (cabi_realloc while
 * lowering, post-return) run on the instance's own auxiliary exec, so they
 * never disturb the exec running the export.
 */
#include "component/comp.h"
#include "theater/wasi.h"

/* Fuel for the guest code the component layer runs on its own (realloc,
 * post-return, initialisation): generous, but a guest that loops there
 * traps ("out of fuel") instead of holding a worker thread forever. */
#define THC_AUX_FUEL 100000000ull

typedef struct tramp {
	thc_instance *inst;
	const thc_fn *fn;
	thc_hostfn host;
	void *hctx;
	thw_memory *mem;
	thw_func *realloc;
} tramp;

typedef struct xfn {
	thw_func *core, *realloc, *post;
	thw_memory *mem;
} xfn;

struct thc_instance {
	thc_component *c;
	thw_realm *realm;
	void *data;
	thw_exec *aux;
	thw_instance **cinst; /* per core instance (NULL for inline ones) */
	thw_extern *cfunc, *ctable, *cmem, *cglobal;
	uint8_t *cfunc_ok, *ctable_ok, *cmem_ok, *cglobal_ok;
	tramp **tramps;
	uint32_t ntramps, captramps;
	xfn *xf;
	const thc_host_import *himports;
	size_t nhimports;
	thw_wasi *wasi; /* while instantiating */
	int calling; /* export index in progress, or -1 */
	/* A host call answered THC_HOST_PENDING: its trampoline and flat args
	 * (the return pointer is the last of them). */
	tramp *pending;
	thw_val pending_args[THCT_MAX_FLAT_PARAMS + 1];
	thw_memory *mem; /* main memory, for accounting */
};

struct thc_hostcall {
	thc_instance *inst;
	char msg[256];
};

thc_hostret thc_hostcall_trap(thc_hostcall *call, const char *msg)
{
	snprintf(call->msg, sizeof call->msg, "%s", msg ? msg : "host trap");
	return THC_HOST_TRAP;
}

thc_instance *thc_hostcall_instance(thc_hostcall *call)
{
	return call->inst;
}

/* ---- guest memory for the ABI ------------------------------------------------ */

typedef struct gm {
	thc_instance *inst;
	thw_memory *mem;
	thw_func *realloc;
} gm;

static uint8_t *gm_ptr(void *ctx, uint64_t off, size_t len)
{
	static uint8_t empty;
	gm *g = ctx;
	if (!g->mem)
		return NULL;
	if (len == 0)
		return off <= thw_memory_size(g->mem) ? &empty : NULL;
	return thw_memory_ptr(g->mem, off, len);
}

static int trap_err(thw_exec *e, th_err *err, const char *what)
{
	const thw_trap *t = thw_exec_trap(e);
	return th_err_set(err, TH_EINVAL, "%s trapped: %s", what,
			  t && t->message ? t->message : "unknown trap");
}

static int gm_realloc(void *ctx, uint32_t old, uint32_t old_size, uint32_t align,
		      uint32_t new_size, uint32_t *out, th_err *err)
{
	gm *g = ctx;
	uint32_t a[4] = { old, old_size, align, new_size };
	thw_exec_set_fuel(g->inst->aux, THC_AUX_FUEL, THW_FUEL_TRAP);
	thw_state st = thw_call_i32(g->inst->aux, g->realloc, a, 4, out);
	if (st != THW_STATE_DONE)
		return st == THW_STATE_TRAPPED ? trap_err(g->inst->aux, err, "cabi_realloc")
					       : th_err_set(err, TH_ESTATE, "cabi_realloc suspended");
	return 0;
}

static thca_mem mem_of(gm *g)
{
	return (thca_mem){ .ptr = gm_ptr, .realloc = g->realloc ? gm_realloc : NULL,
			   .ctx = g, .budget = THCA_DEFAULT_BUDGET };
}

/* ---- host trampolines ------------------------------------------------------------ */

static thw_hostret tramp_call(thw_caller *caller, void *ctx, const thw_val *args, thw_val *results)
{
	tramp *t = ctx;
	const thc_fn *f = t->fn;
	gm g = { t->inst, t->mem, t->realloc };
	thca_mem m = mem_of(&g);
	thc_val argv[THC_MAX_PARAMS];
	th_err err;
	th_err_clear(&err);
	char msg[600];
	if (thca_lift_params(&m, f->type, &f->sig, f->ptuple, args, argv, &err)) {
		snprintf(msg, sizeof msg, "%s#%s: %s", f->iface, f->name, err.msg);
		return thw_call_trap(caller, msg);
	}
	thc_hostcall hc; /* not an initializer: it would clear msg */
	hc.inst = t->inst;
	hc.msg[0] = 0;
	thc_val result = { 0 };
	thc_hostret hr = t->host(&hc, t->hctx, argv, f->type->nparams, &result);
	for (uint32_t i = 0; i < f->type->nparams; i++)
		thc_val_release(&argv[i]);
	if (hr == THC_HOST_PENDING) {
		thc_val_release(&result);
		if (t->inst->pending)
			return thw_call_trap(caller, "host call pending while another one is");
		t->inst->pending = t;
		memcpy(t->inst->pending_args, args, f->sig.nparams * sizeof(thw_val));
		return THW_HOST_PENDING;
	}
	if (hr != THC_HOST_OK) {
		thc_val_release(&result);
		return thw_call_trap(caller, hc.msg[0] ? hc.msg : "host function failed");
	}
	int rc = thca_lower_result(&m, f->type, &f->sig, &result, args, results, &err);
	thc_val_release(&result);
	if (rc) {
		snprintf(msg, sizeof msg, "%s#%s: %s", f->iface, f->name, err.msg);
		return thw_call_trap(caller, msg);
	}
	return THW_HOST_OK;
}

static const thc_host_import *find_host(thc_instance *inst, const thc_fn *f)
{
	for (size_t i = 0; i < inst->nhimports; i++) {
		const thc_host_import *h = &inst->himports[i];
		if (h->fn && strcmp(h->iface, f->iface) == 0 && strcmp(h->name, f->name) == 0)
			return h;
	}
	return NULL;
}

static int make_tramp(thc_instance *inst, const thc_fn *f, tramp **out, thw_func **fn, th_err *err)
{
	const thc_host_import *h = find_host(inst, f);
	if (!h)
		return th_err_set(err, TH_ENOTFOUND, "unresolved import %s#%s: no host function",
				  f->iface, f->name);
	if (inst->ntramps == inst->captramps) {
		uint32_t nc = inst->captramps ? inst->captramps * 2 : 16;
		tramp **nv = th_realloc(inst->tramps, nc * sizeof(*nv));
		if (!nv)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		inst->tramps = nv;
		inst->captramps = nc;
	}
	tramp *t = th_calloc(1, sizeof(*t));
	if (!t)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	inst->tramps[inst->ntramps++] = t;
	t->inst = inst;
	t->fn = f;
	t->host = h->fn;
	t->hctx = h->ctx;
	thw_functype ft = { f->sig.nparams, f->sig.nresults, f->sig.params, f->sig.results };
	char dbg[256];
	snprintf(dbg, sizeof dbg, "%s#%s", f->iface, f->name);
	int rc = thw_func_new_host(inst->realm, &ft, tramp_call, t, dbg, fn, err);
	*out = t;
	return rc;
}

/* ---- component form: core items ------------------------------------------------------ */

static int core_export(thc_instance *inst, uint32_t ci, const char *name, uint8_t csort,
		       thw_extern *out, int depth, th_err *err);

static int citem(thc_instance *inst, uint8_t csort, uint32_t idx, thw_extern *out, int depth,
		 th_err *err)
{
	thcd_scope *s = inst->c->dec.root;
	thw_extern *memo;
	uint8_t *ok;
	const thcd_citem *it;
	switch (csort) {
	case THCD_CFUNC: memo = inst->cfunc; ok = inst->cfunc_ok; it = &s->cfuncs.v[idx]; break;
	case THCD_CTABLE: memo = inst->ctable; ok = inst->ctable_ok; it = &s->ctables.v[idx]; break;
	case THCD_CMEM: memo = inst->cmem; ok = inst->cmem_ok; it = &s->cmems.v[idx]; break;
	case THCD_CGLOBAL: memo = inst->cglobal; ok = inst->cglobal_ok; it = &s->cglobals.v[idx]; break;
	default: return th_err_set(err, TH_EUNSUPPORTED, "component: core sort 0x%02x", csort);
	}
	if (ok[idx]) {
		*out = memo[idx];
		return 0;
	}
	if (depth > 64)
		return th_err_set(err, TH_EINVAL, "component: core alias chain too long");
	int rc;
	if (it->how == THCD_CI_ALIAS) {
		if ((rc = core_export(inst, it->inst, it->name, csort, out, depth + 1, err)))
			return rc;
	} else {
		/* canon lower of an imported function */
		const thcd_func *cf = &s->funcs.v[it->func];
		if (cf->how != THCD_F_ALIAS || s->insts.v[cf->inst].how != THCD_I_IMPORT)
			return th_err_set(err, TH_EUNSUPPORTED,
					  "component: canon lower of a function that is not imported");
		const char *iface = s->insts.v[cf->inst].name;
		const thc_fn *f = NULL;
		for (uint32_t i = 0; i < inst->c->nimports; i++)
			if (strcmp(inst->c->imports[i].iface, iface) == 0 &&
			    strcmp(inst->c->imports[i].name, cf->name) == 0)
				f = &inst->c->imports[i];
		if (!f)
			return th_err_set(err, TH_EINVAL, "component: lowered import %s#%s unknown",
					  iface, cf->name);
		tramp *t;
		thw_extern e = { .kind = THW_EXTERN_FUNC };
		if ((rc = make_tramp(inst, f, &t, &e.of.func, err)))
			return rc;
		if (it->opts.has_memory) {
			thw_extern me;
			if ((rc = citem(inst, THCD_CMEM, it->opts.memory, &me, depth + 1, err)))
				return rc;
			t->mem = me.of.memory;
		}
		if (it->opts.has_realloc) {
			thw_extern re;
			if ((rc = citem(inst, THCD_CFUNC, it->opts.realloc, &re, depth + 1, err)))
				return rc;
			t->realloc = re.of.func;
		}
		*out = e;
	}
	memo[idx] = *out;
	ok[idx] = 1;
	return 0;
}

static int core_export(thc_instance *inst, uint32_t ci, const char *name, uint8_t csort,
		       thw_extern *out, int depth, th_err *err)
{
	const thcd_cinst *c = &inst->c->dec.root->cinsts.v[ci];
	if (c->how == THCD_CINST_INSTANTIATE) {
		if (!inst->cinst[ci])
			return th_err_set(err, TH_ESTATE, "component: core instance %u used before creation", ci);
		if (!thw_instance_export(inst->cinst[ci], name, strlen(name), out))
			return th_err_set(err, TH_ENOTFOUND, "component: core instance %u has no export \"%s\"",
					  ci, name);
	} else {
		const thcd_export *x = NULL;
		for (uint32_t i = 0; i < c->n; i++)
			if (strcmp(c->items[i].name, name) == 0)
				x = &c->items[i];
		if (!x)
			return th_err_set(err, TH_ENOTFOUND, "component: core instance %u has no export \"%s\"",
					  ci, name);
		if (x->csort != csort)
			return th_err_set(err, TH_EINVAL, "component: core export \"%s\" has the wrong kind", name);
		return citem(inst, x->csort, x->idx, out, depth + 1, err);
	}
	static const uint8_t kind_of[] = { [THCD_CFUNC] = THW_EXTERN_FUNC, [THCD_CTABLE] = THW_EXTERN_TABLE,
					   [THCD_CMEM] = THW_EXTERN_MEMORY, [THCD_CGLOBAL] = THW_EXTERN_GLOBAL };
	if (csort > THCD_CGLOBAL || out->kind != kind_of[csort])
		return th_err_set(err, TH_EINVAL, "component: core export \"%s\" has the wrong kind", name);
	return 0;
}

static int sort_of_kind(thw_externkind k)
{
	return k == THW_EXTERN_FUNC ? THCD_CFUNC : k == THW_EXTERN_TABLE ? THCD_CTABLE
	       : k == THW_EXTERN_MEMORY ? THCD_CMEM : THCD_CGLOBAL;
}

static int instantiate_component(thc_instance *inst, thw_exec *exec, th_err *err)
{
	thcd_scope *s = inst->c->dec.root;
	int rc;
#define ALLOC_MEMO(field, okf, n)                                                   \
	if (!(inst->field = th_calloc((n) ? (n) : 1, sizeof(thw_extern))) ||           \
	    !(inst->okf = th_calloc((n) ? (n) : 1, 1)))                                \
		return th_err_set(err, TH_ENOMEM, "out of memory");
	ALLOC_MEMO(cfunc, cfunc_ok, s->cfuncs.n)
	ALLOC_MEMO(ctable, ctable_ok, s->ctables.n)
	ALLOC_MEMO(cmem, cmem_ok, s->cmems.n)
	ALLOC_MEMO(cglobal, cglobal_ok, s->cglobals.n)
#undef ALLOC_MEMO
	if (!(inst->cinst = th_calloc(s->cinsts.n ? s->cinsts.n : 1, sizeof(thw_instance *))))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	for (uint32_t ci = 0; ci < s->cinsts.n; ci++) {
		const thcd_cinst *c = &s->cinsts.v[ci];
		if (c->how != THCD_CINST_INSTANTIATE)
			continue;
		thw_module *m = inst->c->modules[c->module];
		uint32_t ni = thw_module_import_count(m);
		thw_extern *ext = th_calloc(ni ? ni : 1, sizeof(thw_extern));
		if (!ext)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		rc = 0;
		for (uint32_t i = 0; i < ni && !rc; i++) {
			thw_importdesc d;
			thw_module_import(m, i, &d);
			const thcd_export *arg = NULL;
			for (uint32_t k = 0; k < c->n; k++)
				if (strlen(c->items[k].name) == d.module_len &&
				    memcmp(c->items[k].name, d.module, d.module_len) == 0)
					arg = &c->items[k];
			char nm[512];
			snprintf(nm, sizeof nm, "%.*s", (int)d.name_len, d.name);
			if (!arg)
				rc = th_err_set(err, TH_EINVAL, "component: core instance %u: no argument for import module \"%.*s\"",
						ci, (int)d.module_len, d.module);
			else
				rc = core_export(inst, arg->idx, nm, (uint8_t)sort_of_kind(d.type.kind),
						 &ext[i], 0, err);
		}
		if (!rc)
			rc = thw_instantiate(inst->realm, m, ext, ni, exec, &inst->cinst[ci], err);
		th_free(ext);
		if (rc)
			return th_err_prefix(err, "component: core instance %u", ci);
	}
	/* Exports: resolve each lift's core function and options. */
	for (uint32_t i = 0; i < inst->c->nexports; i++) {
		const thcd_func *l = inst->c->exports[i].lift;
		thw_extern e;
		if ((rc = citem(inst, THCD_CFUNC, l->core, &e, 0, err)))
			return rc;
		inst->xf[i].core = e.of.func;
		if (l->opts.has_memory) {
			if ((rc = citem(inst, THCD_CMEM, l->opts.memory, &e, 0, err)))
				return rc;
			inst->xf[i].mem = e.of.memory;
			inst->mem = e.of.memory;
		}
		if (l->opts.has_realloc) {
			if ((rc = citem(inst, THCD_CFUNC, l->opts.realloc, &e, 0, err)))
				return rc;
			inst->xf[i].realloc = e.of.func;
		}
		if (l->opts.has_post) {
			if ((rc = citem(inst, THCD_CFUNC, l->opts.post, &e, 0, err)))
				return rc;
			inst->xf[i].post = e.of.func;
		}
	}
	return 0;
}

/* ---- core form ----------------------------------------------------------------------- */

static int instantiate_core(thc_instance *inst, thw_exec *exec, th_err *err)
{
	thc_component *c = inst->c;
	thw_module *m = c->modules[0];
	uint32_t ni = thw_module_import_count(m);
	thw_extern *ext = th_calloc(ni ? ni : 1, sizeof(thw_extern));
	if (!ext)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	int rc = 0;
	for (uint32_t i = 0; i < ni && !rc; i++) {
		tramp *t;
		ext[i].kind = THW_EXTERN_FUNC;
		if (c->core_import_map[i] == UINT32_MAX) {
			thw_importdesc d;
			thw_module_import(m, i, &d);
			if (!inst->wasi)
				rc = th_err_set(err, TH_ENOTFOUND,
						"unresolved import %.*s.%.*s: no WASI context",
						(int)d.module_len, d.module, (int)d.name_len, d.name);
			else
				rc = thw_wasi_import(inst->wasi, inst->realm, &d, &ext[i], err);
			continue;
		}
		rc = make_tramp(inst, &c->imports[c->core_import_map[i]], &t, &ext[i].of.func, err);
	}
	thw_instance *wi = NULL;
	if (!rc)
		rc = thw_instantiate(inst->realm, m, ext, ni, exec, &wi, err);
	th_free(ext);
	if (rc)
		return rc;
	thw_extern e;
	if (thw_instance_export(wi, c->mem_name, strlen(c->mem_name), &e) &&
	    e.kind == THW_EXTERN_MEMORY)
		inst->mem = e.of.memory;
	thw_func *realloc = NULL;
	if (thw_instance_export(wi, c->realloc_name, strlen(c->realloc_name), &e) &&
	    e.kind == THW_EXTERN_FUNC)
		realloc = e.of.func;
	for (uint32_t i = 0; i < inst->ntramps; i++) {
		inst->tramps[i]->mem = inst->mem;
		inst->tramps[i]->realloc = realloc;
	}
	for (uint32_t i = 0; i < c->nexports; i++) {
		const thc_fn *f = &c->exports[i];
		if (!thw_instance_export(wi, f->core_name, strlen(f->core_name), &e))
			return th_err_set(err, TH_EINVAL, "core module lost export %s", f->core_name);
		inst->xf[i].core = e.of.func;
		inst->xf[i].mem = inst->mem;
		inst->xf[i].realloc = realloc;
		if (thw_instance_export(wi, f->post_name, strlen(f->post_name), &e) &&
		    e.kind == THW_EXTERN_FUNC)
			inst->xf[i].post = e.of.func;
	}
	if (thw_instance_export(wi, c->init_name, strlen(c->init_name), &e) &&
	    e.kind == THW_EXTERN_FUNC) {
		thw_exec_set_fuel(inst->aux, THC_AUX_FUEL, THW_FUEL_TRAP);
		thw_state st = thw_call(inst->aux, e.of.func, NULL, 0, NULL, 0);
		if (st != THW_STATE_DONE)
			return trap_err(inst->aux, err, c->init_name);
	}
	return 0;
}

int thc_instantiate(thw_realm *r, thc_component *c, const thc_host_import *imports,
		    size_t nimports, thw_exec *exec, thc_instance **out, th_err *err)
{
	return thc_instantiate_wasi(r, c, imports, nimports, NULL, exec, out, err);
}

int thc_instantiate_wasi(thw_realm *r, thc_component *c, const thc_host_import *imports,
			 size_t nimports, thw_wasi *wasi, thw_exec *exec, thc_instance **out,
			 th_err *err)
{
	*out = NULL;
	thc_instance *inst = th_calloc(1, sizeof(*inst));
	if (!inst)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	inst->c = c;
	inst->realm = r;
	inst->himports = imports;
	inst->nhimports = nimports;
	inst->calling = -1;
	inst->wasi = wasi;
	int rc = 0;
	/* Check every import up front so the error names the first missing one. */
	for (uint32_t i = 0; i < c->nimports && !rc; i++)
		if (!find_host(inst, &c->imports[i]))
			rc = th_err_set(err, TH_ENOTFOUND, "unresolved import %s#%s: no host function",
					c->imports[i].iface, c->imports[i].name);
	if (!rc && !(inst->xf = th_calloc(c->nexports ? c->nexports : 1, sizeof(xfn))))
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
	if (!rc)
		rc = thw_exec_new(r, &inst->aux, err);
	if (!rc)
		rc = c->form == THC_FORM_CORE ? instantiate_core(inst, exec, err)
					      : instantiate_component(inst, exec, err);
	inst->himports = NULL; /* only needed while instantiating */
	inst->nhimports = 0;
	inst->wasi = NULL;
	if (rc) {
		thc_instance_free(inst);
		return rc;
	}
	*out = inst;
	return 0;
}

void thc_instance_free(thc_instance *inst)
{
	if (!inst)
		return;
	for (uint32_t i = 0; i < inst->ntramps; i++)
		th_free(inst->tramps[i]);
	th_free(inst->tramps);
	th_free(inst->cinst);
	th_free(inst->cfunc);
	th_free(inst->ctable);
	th_free(inst->cmem);
	th_free(inst->cglobal);
	th_free(inst->cfunc_ok);
	th_free(inst->ctable_ok);
	th_free(inst->cmem_ok);
	th_free(inst->cglobal_ok);
	th_free(inst->xf);
	thw_exec_free(inst->aux);
	th_free(inst);
}

const thc_component *thc_instance_component(const thc_instance *i)
{
	return i->c;
}

void thc_instance_set_data(thc_instance *inst, void *data)
{
	inst->data = data;
}

void *thc_instance_data(const thc_instance *inst)
{
	return inst->data;
}

thw_memory *thc_instance_memory(const thc_instance *inst)
{
	return inst->mem;
}

/* ---- calls -------------------------------------------------------------------------------- */

int thc_call_start(thc_instance *inst, thw_exec *exec, int index, const thc_val *args,
		   uint32_t nargs, th_err *err)
{
	if (index < 0 || (uint32_t)index >= inst->c->nexports)
		return th_err_set(err, TH_ENOTFOUND, "no export %d", index);
	if (inst->calling >= 0)
		return th_err_set(err, TH_ESTATE, "a call is already in progress on this instance");
	const thc_fn *f = &inst->c->exports[index];
	xfn *x = &inst->xf[index];
	gm g = { inst, x->mem, x->realloc };
	thca_mem m = mem_of(&g);
	thw_val flat[THCT_MAX_FLAT_PARAMS + 1];
	int rc = thca_lower_params(&m, f->type, &f->sig, f->ptuple, args, nargs, flat, err);
	if (rc)
		return th_err_prefix(err, "%s#%s", f->iface, f->name);
	if ((rc = thw_exec_start(exec, x->core, flat, f->sig.nparams, err)))
		return rc;
	inst->calling = index;
	return 0;
}

_Static_assert(THC_MAX_FLAT_RESULTS == THCT_MAX_FLAT_RESULTS, "one limit");

/* The finished call's export and core results (nothing is changed). */
static int call_done(thc_instance *inst, thw_exec *exec, const thc_fn **fo, xfn **xo,
		     thw_val res[THCT_MAX_FLAT_RESULTS + 1], uint32_t *nro, th_err *err)
{
	int index = inst->calling;
	if (index < 0)
		return th_err_set(err, TH_ESTATE, "no call in progress");
	const thc_fn *f = &inst->c->exports[index];
	thw_state st = thw_exec_state(exec);
	if (st == THW_STATE_TRAPPED)
		return trap_err(exec, err, f->name);
	if (st != THW_STATE_DONE)
		return th_err_set(err, TH_ESTATE, "%s#%s: call not finished", f->iface, f->name);
	uint32_t nr = thw_exec_results(exec, res, THCT_MAX_FLAT_RESULTS + 1);
	if (nr != f->sig.nresults)
		return th_err_set(err, TH_EINVAL, "%s#%s: %u core results, expected %u", f->iface,
				  f->name, nr, f->sig.nresults);
	*fo = f;
	*xo = &inst->xf[index];
	*nro = nr;
	return 0;
}

/* End the call: post-return (if the export has one) gets the core results. */
static int call_end(thc_instance *inst, const xfn *x, const thw_val *res, uint32_t nr,
		    th_err *err)
{
	inst->calling = -1;
	if (!x->post)
		return 0;
	thw_exec_set_fuel(inst->aux, THC_AUX_FUEL, THW_FUEL_TRAP);
	uint32_t a[THCT_MAX_FLAT_RESULTS];
	bool i32 = nr <= THCT_MAX_FLAT_RESULTS;
	for (uint32_t i = 0; i32 && i < nr; i++) {
		i32 = res[i].type == THW_I32;
		a[i] = res[i].of.i32;
	}
	thw_state ps = i32 ? thw_call_i32(inst->aux, x->post, a, nr, NULL)
			   : thw_call(inst->aux, x->post, res, nr, NULL, 0);
	return ps != THW_STATE_DONE ? trap_err(inst->aux, err, "post-return") : 0;
}

int thc_call_finish(thc_instance *inst, thw_exec *exec, thc_val *result, th_err *err)
{
	const thc_fn *f;
	xfn *x;
	thw_val res[THCT_MAX_FLAT_RESULTS + 1];
	uint32_t nr;
	memset(result, 0, sizeof(*result));
	int rc = call_done(inst, exec, &f, &x, res, &nr, err);
	if (rc) {
		inst->calling = -1;
		return rc;
	}
	gm g = { inst, x->mem, x->realloc };
	thca_mem m = mem_of(&g);
	rc = thca_lift_result(&m, f->type, &f->sig, res, result, err);
	if (rc)
		th_err_prefix(err, "%s#%s result", f->iface, f->name);
	th_err perr = { 0 };
	int prc = call_end(inst, x, res, nr, &perr);
	if (prc && !rc) {
		rc = prc;
		if (err)
			*err = perr;
	}
	if (rc)
		thc_val_release(result);
	return rc;
}

int thc_call_raw(thc_instance *inst, thw_exec *exec, thw_val *res, uint32_t *n, th_err *err)
{
	const thc_fn *f;
	xfn *x;
	int rc = call_done(inst, exec, &f, &x, res, n, err);
	if (rc)
		inst->calling = -1;
	return rc;
}

const uint8_t *thc_call_mem(thc_instance *inst, uint64_t off, size_t len)
{
	if (inst->calling < 0)
		return NULL;
	gm g = { inst, inst->xf[inst->calling].mem, NULL };
	return gm_ptr(&g, off, len);
}

int thc_call_end(thc_instance *inst, thw_exec *exec, th_err *err)
{
	const thc_fn *f;
	xfn *x;
	thw_val res[THCT_MAX_FLAT_RESULTS + 1];
	uint32_t nr;
	int rc = call_done(inst, exec, &f, &x, res, &nr, err);
	if (rc) {
		inst->calling = -1;
		return rc;
	}
	return call_end(inst, x, res, nr, err);
}

int thc_call(thc_instance *inst, thw_exec *exec, int index, const thc_val *args,
	     uint32_t nargs, thc_val *result, th_err *err)
{
	memset(result, 0, sizeof(*result));
	int rc = thc_call_start(inst, exec, index, args, nargs, err);
	if (rc)
		return rc;
	thw_state st = thw_exec_run(exec);
	if (st == THW_STATE_PENDING || st == THW_STATE_YIELDED) {
		inst->calling = -1;
		return th_err_set(err, TH_ESTATE, "call suspended (use thc_call_start)");
	}
	return thc_call_finish(inst, exec, result, err);
}

int thc_hostcall_complete(thc_instance *inst, thw_exec *exec, thc_val *result,
			  const char *trap_msg, th_err *err)
{
	tramp *t = inst->pending;
	if (!t) {
		thc_val_release(result);
		return th_err_set(err, TH_ESTATE, "no pending host call on this instance");
	}
	inst->pending = NULL;
	if (trap_msg) {
		thc_val_release(result);
		return thw_exec_complete(exec, NULL, trap_msg);
	}
	const thc_fn *f = t->fn;
	gm g = { inst, t->mem, t->realloc };
	thca_mem m = mem_of(&g);
	thw_val res[THCT_MAX_FLAT_RESULTS + 1];
	th_err e2 = { 0 };
	int rc = thca_lower_result(&m, f->type, &f->sig, result, inst->pending_args, res, &e2);
	thc_val_release(result);
	if (rc) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s#%s: %s", f->iface, f->name, e2.msg);
		thw_exec_complete(exec, NULL, msg);
		return th_err_set(err, rc, "%s", msg);
	}
	return thw_exec_complete(exec, res, NULL);
}
