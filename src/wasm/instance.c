/*
 * instance.c - modules' public face, realms and their runtime objects
 * (functions, memories, tables, globals, instances), instantiation, and the
 * execution API around the interpreter loop (interp.c).
 *
 * Linear memory is an anonymous mapping of exactly its current size, grown
 * with mremap: no address-space reservation beyond the pages the module
 * asked for, and the kernel's zero pages cost nothing until touched, so a
 * process holds very many idle instances (a calloc'd heap buffer would be
 * zeroed, i.e. touched, in full at instantiation). Allocation failure
 * injection (th_alloc_fail_after) is honoured by probing the seam first.
 * Every access is bounds-checked by the interpreter; anything that keeps a
 * pointer into memory re-reads it after a call that can grow it.
 */
#include <sys/mman.h>

#include "code.h"
#include "wasm_internal.h"

/* ---- Modules ------------------------------------------------------------ */

int thw_module_new(const uint8_t *bytes, size_t len, thw_module **out,
		   th_err *err)
{
	*out = NULL;
	if (len > UINT32_MAX / 2)
		return th_err_set(err, TH_ELIMIT, "module: binary too large (%zu bytes)", len);
	thw_module *m = th_calloc(1, sizeof *m);
	if (!m)
		return th_err_set(err, TH_ENOMEM, "module: out of memory");
	atomic_init(&m->refs, 1);
	m->bin = th_malloc(len ? len : 1);
	if (!m->bin) {
		th_free(m);
		return th_err_set(err, TH_ENOMEM, "module: out of memory");
	}
	if (len)
		memcpy(m->bin, bytes, len);
	m->len = len;
	int rc = thw__decode(m, err);
	if (rc) {
		thw__module_free_contents(m);
		th_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

thw_module *thw_module_retain(thw_module *m)
{
	if (m)
		atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void thw_module_release(thw_module *m)
{
	if (!m)
		return;
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	thw__module_free_contents(m);
	th_free(m);
}

static void ftype_out(const thw__ftype *t, thw_functype *out)
{
	out->nparams = t->np;
	out->nresults = t->nr;
	out->params = t->p;
	out->results = t->p + t->np;
}

static void externtype_of(const thw_module *m, uint8_t kind, uint32_t idx,
			  thw_externtype *t)
{
	memset(t, 0, sizeof *t);
	t->kind = kind;
	switch (kind) {
	case THW_EXTERN_FUNC:
		ftype_out(thw__func_type(m, idx), &t->func);
		break;
	case THW_EXTERN_TABLE:
		t->elemtype = m->tables[idx].elem;
		t->limits = m->tables[idx].lim;
		break;
	case THW_EXTERN_MEMORY:
		t->limits = m->mem;
		break;
	case THW_EXTERN_GLOBAL:
		t->valtype = m->globals[idx].type;
		t->mut = m->globals[idx].mut;
		break;
	}
}

uint32_t thw_module_import_count(const thw_module *m) { return m->nimports; }

void thw_module_import(const thw_module *m, uint32_t i, thw_importdesc *out)
{
	const thw__import *im = &m->imports[i];
	out->module = im->module;
	out->module_len = im->module_len;
	out->name = im->name;
	out->name_len = im->name_len;
	memset(&out->type, 0, sizeof out->type);
	out->type.kind = im->kind;
	if (im->kind == THW_EXTERN_FUNC)
		ftype_out(&m->types[im->index], &out->type.func);
	else
		externtype_of(m, im->kind, im->index, &out->type);
}

uint32_t thw_module_export_count(const thw_module *m) { return m->nexports; }

void thw_module_export(const thw_module *m, uint32_t i, thw_exportdesc *out)
{
	const thw__export *ex = &m->exports[i];
	out->name = ex->name;
	out->name_len = ex->name_len;
	externtype_of(m, ex->kind, ex->index, &out->type);
}

const uint8_t *thw_module_custom_section(const thw_module *m, const char *name,
					 size_t *len)
{
	for (uint32_t i = 0; i < m->ncustoms; i++)
		if (!strcmp(m->customs[i].name, name)) {
			if (len)
				*len = m->customs[i].len;
			return m->bin + m->customs[i].off;
		}
	return NULL;
}

/* ---- Realms ------------------------------------------------------------- */

int thw_realm_new(const thw_config *config, thw_realm **out, th_err *err)
{
	thw_realm *r = th_calloc(1, sizeof *r);
	*out = NULL;
	if (!r)
		return th_err_set(err, TH_ENOMEM, "realm: out of memory");
	if (config)
		r->cfg = *config;
	if (!r->cfg.max_memory_pages || r->cfg.max_memory_pages > THW__MAX_PAGES)
		r->cfg.max_memory_pages = THW__MAX_PAGES;
	if (!r->cfg.max_table_elems)
		r->cfg.max_table_elems = 10000000;
	if (!r->cfg.max_call_depth)
		r->cfg.max_call_depth = 10000;
	if (!r->cfg.max_value_stack)
		r->cfg.max_value_stack = 1048576;
	if (!r->cfg.max_instances)
		r->cfg.max_instances = 10000;
	r->overhead = sizeof *r;
	*out = r;
	return 0;
}

static void mem_unmap(thw_memory *m);

static void link_obj(thw_realm *r, thw__obj *o, uint8_t kind, size_t size)
{
	o->kind = kind;
	o->next = r->objs;
	r->objs = o;
	r->overhead += size;
}

void thw_realm_free(thw_realm *r)
{
	if (!r)
		return;
	thw__obj *o = r->objs;
	while (o) {
		thw__obj *next = o->next;
		switch (o->kind) {
		case THW__OBJ_FUNC: {
			thw_func *f = (thw_func *)o;
			th_free(f->name);
			th_free(f->own_type.p);
			break;
		}
		case THW__OBJ_TABLE:
			th_free(((thw_table *)o)->e);
			break;
		case THW__OBJ_MEMORY:
			mem_unmap((thw_memory *)o);
			break;
		case THW__OBJ_INSTANCE:
			thw_module_release(((thw_instance *)o)->m);
			break;
		default:
			break;
		}
		th_free(o);
		o = next;
	}
	th_free(r);
}

size_t thw_realm_overhead(const thw_realm *r)
{
	return r->overhead;
}

/* ---- Values ----------------------------------------------------------------- */

/* ---- Host functions ------------------------------------------------------- */

static bool valtype_ok(uint8_t t)
{
	return t == THW_I32 || t == THW_I64 || t == THW_F32 || t == THW_F64 ||
	       t == THW_FUNCREF || t == THW_EXTERNREF;
}

int thw_func_new_host(thw_realm *r, const thw_functype *type, thw_hostfn fn,
		      void *ctx, const char *debug_name, thw_func **out,
		      th_err *err)
{
	*out = NULL;
	if (!fn || type->nparams > THW__MAX_PARAMS || type->nresults > THW__MAX_PARAMS)
		return th_err_set(err, TH_EINVAL, "host function: bad type or callback");
	for (uint32_t i = 0; i < type->nparams; i++)
		if (!valtype_ok(type->params[i]))
			return th_err_set(err, TH_EINVAL, "host function: bad parameter type");
	for (uint32_t i = 0; i < type->nresults; i++)
		if (!valtype_ok(type->results[i]))
			return th_err_set(err, TH_EINVAL, "host function: bad result type");
	thw_func *f = th_calloc(1, sizeof *f);
	if (!f)
		return th_err_set(err, TH_ENOMEM, "host function: out of memory");
	f->own_type.p = th_malloc((size_t)type->nparams + type->nresults + 1);
	f->name = th_strdup(debug_name ? debug_name : "host");
	if (!f->own_type.p || !f->name) {
		th_free(f->own_type.p);
		th_free(f->name);
		th_free(f);
		return th_err_set(err, TH_ENOMEM, "host function: out of memory");
	}
	if (type->nparams)
		memcpy(f->own_type.p, type->params, type->nparams);
	if (type->nresults)
		memcpy(f->own_type.p + type->nparams, type->results, type->nresults);
	f->own_type.np = type->nparams;
	f->own_type.nr = type->nresults;
	f->type = &f->own_type;
	f->host = true;
	f->fn = fn;
	f->ctx = ctx;
	link_obj(r, &f->hdr, THW__OBJ_FUNC, sizeof *f);
	*out = f;
	return 0;
}

void thw_func_type(const thw_func *f, thw_functype *out)
{
	ftype_out(f->type, out);
}

thw_instance *thw_caller_instance(thw_caller *c) { return c->inst; }
thw_memory *thw_caller_memory(thw_caller *c) { return c->inst ? c->inst->mem : NULL; }
thw_exec *thw_caller_exec(thw_caller *c) { return c->e; }

thw_hostret thw_call_trap(thw_caller *c, const char *msg)
{
	snprintf(c->e->trap_msg, sizeof c->e->trap_msg, "%s", msg ? msg : "host trap");
	return THW_HOST_TRAP;
}

thw_hostret thw__call_host(thw_exec *e, thw_func *f, thw_instance *caller,
			   uint64_t *slots)
{
	const thw__ftype *t = f->type;
	thw_val argbuf[16], resbuf[16];
	thw_val *args = argbuf, *res = resbuf;
	if (t->np > 16 && !(args = th_malloc(t->np * sizeof *args))) {
		snprintf(e->trap_msg, sizeof e->trap_msg, "out of memory");
		return THW_HOST_TRAP;
	}
	if (t->nr > 16 && !(res = th_calloc(t->nr, sizeof *res))) {
		if (args != argbuf)
			th_free(args);
		snprintf(e->trap_msg, sizeof e->trap_msg, "out of memory");
		return THW_HOST_TRAP;
	}
	for (uint32_t i = 0; i < t->np; i++)
		args[i] = thw__slot_to_val(t->p[i], slots[i]);
	for (uint32_t i = 0; i < t->nr; i++) {
		memset(&res[i], 0, sizeof res[i]);
		res[i].type = t->p[t->np + i];
	}
	thw_caller c = { e, caller };
	e->trap_msg[0] = '\0';
	thw_hostret hr = f->fn(&c, f->ctx, args, res);
	if (hr == THW_HOST_OK) {
		for (uint32_t i = 0; i < t->nr; i++) {
			res[i].type = t->p[t->np + i];
			slots[i] = thw__val_to_slot(&res[i]);
		}
	} else if (hr == THW_HOST_TRAP && !e->trap_msg[0]) {
		snprintf(e->trap_msg, sizeof e->trap_msg, "host trap");
	} else if (hr != THW_HOST_TRAP && hr != THW_HOST_PENDING) {
		snprintf(e->trap_msg, sizeof e->trap_msg, "host function returned %d", (int)hr);
		hr = THW_HOST_TRAP;
	}
	if (args != argbuf)
		th_free(args);
	if (res != resbuf)
		th_free(res);
	return hr;
}

/* ---- Memories ----------------------------------------------------------- */

/* Map or remap a linear memory's bytes; NULL on failure. */
static uint8_t *mem_map(uint8_t *old, size_t oldsize, size_t size)
{
	void *probe = th_malloc(1); /* the allocator seam decides failures */
	if (!probe)
		return NULL;
	th_free(probe);
	void *p = old ? mremap(old, oldsize, size, MREMAP_MAYMOVE)
		      : mmap(NULL, size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void mem_unmap(thw_memory *m)
{
	if (m->data)
		munmap(m->data, (size_t)m->size);
}

int thw_memory_new(thw_realm *r, thw_limits_range limits, thw_memory **out,
		   th_err *err)
{
	*out = NULL;
	uint32_t max = limits.has_max ? limits.max : THW__MAX_PAGES;
	if (max > r->cfg.max_memory_pages)
		max = r->cfg.max_memory_pages;
	if (limits.min > max || (limits.has_max && limits.min > limits.max))
		return th_err_set(err, TH_ELIMIT, "memory: %u pages exceed the limit of %u",
				  limits.min, max);
	thw_memory *m = th_calloc(1, sizeof *m);
	if (!m)
		return th_err_set(err, TH_ENOMEM, "memory: out of memory");
	m->size = (uint64_t)limits.min * THW__PAGE;
	if (m->size) {
		m->data = mem_map(NULL, 0, (size_t)m->size);
		if (!m->data) {
			th_free(m);
			return th_err_set(err, TH_ENOMEM, "memory: cannot allocate %u pages", limits.min);
		}
	}
	m->pages = limits.min;
	m->max = max;
	m->has_max = limits.has_max;
	link_obj(r, &m->hdr, THW__OBJ_MEMORY, sizeof *m);
	*out = m;
	return 0;
}

uint32_t thw_memory_pages(const thw_memory *m) { return m->pages; }
size_t thw_memory_size(const thw_memory *m) { return (size_t)m->size; }

int thw_memory_read(const thw_memory *m, uint64_t off, void *dst, size_t len)
{
	if (off > m->size || len > m->size - off)
		return TH_EINVAL;
	if (len)
		memcpy(dst, m->data + off, len);
	return 0;
}

int thw_memory_write(thw_memory *m, uint64_t off, const void *src, size_t len)
{
	if (off > m->size || len > m->size - off)
		return TH_EINVAL;
	if (len)
		memcpy(m->data + off, src, len);
	return 0;
}

uint8_t *thw_memory_ptr(thw_memory *m, uint64_t off, size_t len)
{
	if (off > m->size || len > m->size - off)
		return NULL;
	return m->data ? m->data + off : (uint8_t *)"";
}

int64_t thw_memory_grow(thw_memory *m, uint32_t delta)
{
	uint32_t old = m->pages;
	if (delta == 0)
		return old;
	if ((uint64_t)old + delta > m->max)
		return -1;
	uint64_t nsize = ((uint64_t)old + delta) * THW__PAGE;
	if (nsize > SIZE_MAX)
		return -1;
	uint8_t *p = mem_map(m->data, (size_t)m->size, (size_t)nsize);
	if (!p)
		return -1;
	m->data = p;
	m->size = nsize;
	m->pages = old + delta;
	return old;
}

/* ---- Tables ------------------------------------------------------------- */

int thw_table_new(thw_realm *r, uint8_t elemtype, thw_limits_range limits,
		  thw_val init, thw_table **out, th_err *err)
{
	*out = NULL;
	if (elemtype != THW_FUNCREF && elemtype != THW_EXTERNREF)
		return th_err_set(err, TH_EINVAL, "table: bad element type");
	uint32_t max = limits.has_max ? limits.max : UINT32_MAX;
	if (max > r->cfg.max_table_elems)
		max = r->cfg.max_table_elems;
	if (limits.min > max)
		return th_err_set(err, TH_ELIMIT, "table: %u elements exceed the limit of %u",
				  limits.min, max);
	thw_table *t = th_calloc(1, sizeof *t);
	if (!t)
		return th_err_set(err, TH_ENOMEM, "table: out of memory");
	t->e = th_calloc(limits.min ? limits.min : 1, sizeof(void *));
	if (!t->e) {
		th_free(t);
		return th_err_set(err, TH_ENOMEM, "table: out of memory");
	}
	void *iv = (void *)(uintptr_t)thw__val_to_slot(&init);
	if (init.type != elemtype)
		iv = NULL;
	for (uint32_t i = 0; i < limits.min; i++)
		t->e[i] = iv;
	t->elem = elemtype;
	t->size = limits.min;
	t->max = max;
	t->has_max = limits.has_max;
	link_obj(r, &t->hdr, THW__OBJ_TABLE, sizeof *t + (size_t)limits.min * sizeof(void *));
	*out = t;
	return 0;
}

uint32_t thw_table_size(const thw_table *t) { return t->size; }

int thw_table_get(const thw_table *t, uint32_t i, thw_val *out)
{
	if (i >= t->size)
		return TH_EINVAL;
	*out = thw__slot_to_val(t->elem, (uint64_t)(uintptr_t)t->e[i]);
	return 0;
}

int thw_table_set(thw_table *t, uint32_t i, thw_val v)
{
	if (i >= t->size || v.type != t->elem)
		return TH_EINVAL;
	t->e[i] = (void *)(uintptr_t)thw__val_to_slot(&v);
	return 0;
}

int64_t thw__table_grow(thw_table *t, uint32_t delta, void *init,
			const thw_realm *r)
{
	TH_UNUSED(r);
	uint32_t old = t->size;
	if (delta == 0)
		return old;
	if ((uint64_t)old + delta > t->max)
		return -1;
	void **p = th_realloc(t->e, ((size_t)old + delta) * sizeof *p);
	if (!p)
		return -1;
	for (uint32_t i = old; i < old + delta; i++)
		p[i] = init;
	t->e = p;
	t->size = old + delta;
	return old;
}

/* ---- Globals ------------------------------------------------------------ */

int thw_global_new(thw_realm *r, uint8_t valtype, bool mut, thw_val init,
		   thw_global **out, th_err *err)
{
	*out = NULL;
	if (!valtype_ok(valtype) || init.type != valtype)
		return th_err_set(err, TH_EINVAL, "global: bad type");
	thw_global *g = th_calloc(1, sizeof *g);
	if (!g)
		return th_err_set(err, TH_ENOMEM, "global: out of memory");
	g->type = valtype;
	g->mut = mut;
	g->v = thw__val_to_slot(&init);
	link_obj(r, &g->hdr, THW__OBJ_GLOBAL, sizeof *g);
	*out = g;
	return 0;
}

thw_val thw_global_get(const thw_global *g)
{
	return thw__slot_to_val(g->type, g->v);
}

int thw_global_set(thw_global *g, thw_val v)
{
	if (!g->mut)
		return TH_ESTATE;
	if (v.type != g->type)
		return TH_EINVAL;
	g->v = thw__val_to_slot(&v);
	return 0;
}

/* ---- Constant expressions and element items ------------------------------ */

int thw__eval_const(thw_instance *inst, uint32_t off, uint64_t *out)
{
	thw_module *m = inst->m;
	th_err e = { 0 };
	thw__rd r = { .base = m->bin, .p = m->bin + off, .end = m->bin + m->len,
		      .sec = "const", .err = &e };
	uint64_t st[64];
	uint32_t sh = 0;
	for (;;) {
		uint8_t b;
		if (thw__rd_u8(&r, &b))
			return TH_ECORRUPT;
		switch (b) {
		case 0x0b:
			*out = sh ? st[sh - 1] : 0;
			return 0;
		case 0x41: { int32_t v; thw__rd_s32(&r, &v); st[sh++] = (uint32_t)v; break; }
		case 0x42: { int64_t v; thw__rd_s64(&r, &v); st[sh++] = (uint64_t)v; break; }
		case 0x43: { uint32_t v; memcpy(&v, r.p, 4); r.p += 4; st[sh++] = v; break; }
		case 0x44: { uint64_t v; memcpy(&v, r.p, 8); r.p += 8; st[sh++] = v; break; }
		case 0xd0: r.p++; st[sh++] = 0; break;
		case 0xd2: { uint32_t f; thw__rd_u32(&r, &f); st[sh++] = (uint64_t)(uintptr_t)inst->funcs[f]; break; }
		case 0x23: { uint32_t g; thw__rd_u32(&r, &g); st[sh++] = inst->globals[g]->v; break; }
		case 0x6a: sh--; st[sh - 1] = (uint32_t)(st[sh - 1] + st[sh]); break;
		case 0x6b: sh--; st[sh - 1] = (uint32_t)(st[sh - 1] - st[sh]); break;
		case 0x6c: sh--; st[sh - 1] = (uint32_t)((uint32_t)st[sh - 1] * (uint32_t)st[sh]); break;
		case 0x7c: sh--; st[sh - 1] = st[sh - 1] + st[sh]; break;
		case 0x7d: sh--; st[sh - 1] = st[sh - 1] - st[sh]; break;
		case 0x7e: sh--; st[sh - 1] = st[sh - 1] * st[sh]; break;
		default:
			return TH_ECORRUPT; /* validated: cannot happen */
		}
		if (sh >= 63)
			return TH_ECORRUPT;
	}
}

void *thw__elem_item(thw_instance *inst, const thw__item *it)
{
	switch (it->kind) {
	case THW__ITEM_FUNC:
		return inst->funcs[it->idx];
	case THW__ITEM_NULL:
		return NULL;
	default: {
		uint64_t v = 0;
		thw__eval_const(inst, it->idx, &v);
		return (void *)(uintptr_t)v;
	}
	}
}

/* ---- Instantiation -------------------------------------------------------- */

static bool limits_match(uint32_t size, bool has_max, uint32_t max,
			 const thw_limits_range *want)
{
	if (size < want->min)
		return false;
	if (want->has_max && (!has_max || max > want->max))
		return false;
	return true;
}

static int check_import(thw_module *m, uint32_t i, const thw_extern *x, th_err *err)
{
	const thw__import *im = &m->imports[i];
	bool ok = x->kind == im->kind;
	if (ok) {
		switch (im->kind) {
		case THW_EXTERN_FUNC:
			ok = x->of.func && thw__types_equal(x->of.func->type, &m->types[im->index]);
			break;
		case THW_EXTERN_TABLE: {
			const thw__tabtype *tt = &m->tables[im->index];
			thw_table *t = x->of.table;
			ok = t && t->elem == tt->elem &&
			     limits_match(t->size, t->has_max, t->max, &tt->lim);
			break;
		}
		case THW_EXTERN_MEMORY: {
			thw_memory *mm = x->of.memory;
			ok = mm && limits_match(mm->pages, mm->has_max, mm->max, &m->mem);
			break;
		}
		case THW_EXTERN_GLOBAL: {
			const thw__globtype *g = &m->globals[im->index];
			ok = x->of.global && x->of.global->type == g->type &&
			     x->of.global->mut == g->mut;
			break;
		}
		}
	}
	if (!ok)
		return th_err_set(err, TH_EINVAL, "incompatible import type for \"%s\" \"%s\"",
				  im->module, im->name);
	return 0;
}

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

int thw_instantiate(thw_realm *r, thw_module *m, const thw_extern *imports,
		    uint32_t nimports, thw_exec *exec, thw_instance **out,
		    th_err *err)
{
	*out = NULL;
	if (nimports != m->nimports)
		return th_err_set(err, TH_EINVAL, "instantiate: %u imports given, module needs %u",
				  nimports, m->nimports);
	if (r->ninstances >= r->cfg.max_instances)
		return th_err_set(err, TH_ELIMIT, "instantiate: realm holds the maximum of %u instances",
				  r->cfg.max_instances);
	for (uint32_t i = 0; i < nimports; i++) {
		int rc = check_import(m, i, &imports[i], err);
		if (rc)
			return rc;
	}
	uint32_t ndef = m->nfuncs - m->nfunc_imports;
	uint32_t nglob = m->nglobals - m->nglobal_imports;
	size_t o_funcs = align8(sizeof(thw_instance));
	size_t o_own = o_funcs + align8((size_t)m->nfuncs * sizeof(thw_func *));
	size_t o_tabs = o_own + (size_t)ndef * sizeof(thw_func);
	size_t o_globs = o_tabs + align8((size_t)m->ntables * sizeof(thw_table *));
	size_t o_ownglob = o_globs + align8((size_t)m->nglobals * sizeof(thw_global *));
	size_t o_drop = o_ownglob + (size_t)nglob * sizeof(thw_global);
	size_t o_ddrop = o_drop + (m->nelems + 7) / 8;
	size_t total = o_ddrop + (m->ndatas + 7) / 8;
	char *blk = th_calloc(1, total);
	if (!blk)
		return th_err_set(err, TH_ENOMEM, "instantiate: out of memory");
	thw_instance *inst = (thw_instance *)blk;
	inst->m = thw_module_retain(m);
	inst->realm = r;
	inst->funcs = (thw_func **)(blk + o_funcs);
	inst->tables = (thw_table **)(blk + o_tabs);
	inst->globals = (thw_global **)(blk + o_globs);
	inst->elem_dropped = (uint8_t *)(blk + o_drop);
	inst->data_dropped = (uint8_t *)(blk + o_ddrop);
	link_obj(r, &inst->hdr, THW__OBJ_INSTANCE, total);
	r->ninstances++;
	*out = NULL;

	/* Imports. */
	uint32_t nf = 0, nt = 0, ng = 0;
	for (uint32_t i = 0; i < nimports; i++) {
		switch (imports[i].kind) {
		case THW_EXTERN_FUNC: inst->funcs[nf++] = imports[i].of.func; break;
		case THW_EXTERN_TABLE: inst->tables[nt++] = imports[i].of.table; break;
		case THW_EXTERN_MEMORY: inst->mem = imports[i].of.memory; break;
		case THW_EXTERN_GLOBAL: inst->globals[ng++] = imports[i].of.global; break;
		}
	}
	/* Own functions. */
	thw_func *own = (thw_func *)(blk + o_own);
	for (uint32_t i = 0; i < ndef; i++) {
		thw_func *f = &own[i];
		f->type = thw__func_type(m, m->nfunc_imports + i);
		f->inst = inst;
		f->code = &m->codes[i];
		f->entry = m->code + m->codes[i].entry;
		inst->funcs[nf++] = f;
	}
	/* Own globals: initialisers see imported globals and functions. */
	thw_global *og = (thw_global *)(blk + o_ownglob);
	for (uint32_t i = 0; i < nglob; i++) {
		const thw__globtype *gt = &m->globals[m->nglobal_imports + i];
		og[i].type = gt->type;
		og[i].mut = gt->mut;
		inst->globals[ng++] = &og[i];
		if (thw__eval_const(inst, gt->init, &og[i].v))
			return th_err_set(err, TH_ECORRUPT, "instantiate: bad global initializer");
	}
	/* Own tables and memory. */
	for (uint32_t i = m->ntable_imports; i < m->ntables; i++) {
		thw_val nul = { .type = m->tables[i].elem };
		int rc = thw_table_new(r, m->tables[i].elem, m->tables[i].lim, nul,
				       &inst->tables[i], err);
		if (rc)
			return rc;
	}
	if (m->nmems && !m->nmem_imports) {
		int rc = thw_memory_new(r, m->mem, &inst->mem, err);
		if (rc)
			return rc;
	}
	/* Element segments, in order: active ones are table.init + elem.drop,
	 * declarative ones are dropped. */
	for (uint32_t i = 0; i < m->nelems; i++) {
		const thw__elem *es = &m->elems[i];
		if (es->mode == THW__SEG_PASSIVE)
			continue;
		inst->elem_dropped[i / 8] |= (uint8_t)(1u << (i % 8));
		if (es->mode == THW__SEG_DECLARATIVE)
			continue;
		uint64_t off = 0;
		thw__eval_const(inst, es->offset, &off);
		thw_table *t = inst->tables[es->table];
		if ((uint64_t)(uint32_t)off + es->n > t->size)
			return th_err_set(err, TH_EINVAL, "out of bounds table access");
		for (uint32_t k = 0; k < es->n; k++)
			t->e[(uint32_t)off + k] = thw__elem_item(inst, &es->items[k]);
	}
	for (uint32_t i = 0; i < m->ndatas; i++) {
		const thw__data *ds = &m->datas[i];
		if (ds->mode == THW__SEG_PASSIVE)
			continue;
		inst->data_dropped[i / 8] |= (uint8_t)(1u << (i % 8));
		uint64_t off = 0;
		thw__eval_const(inst, ds->offset, &off);
		thw_memory *mm = inst->mem;
		if ((uint64_t)(uint32_t)off + ds->len > mm->size)
			return th_err_set(err, TH_EINVAL, "out of bounds memory access");
		if (ds->len)
			memcpy(mm->data + (uint32_t)off, m->bin + ds->start, ds->len);
	}
	if (m->has_start) {
		thw_exec *tmp = NULL;
		thw_exec *e = exec;
		if (!e) {
			int rc = thw_exec_new(r, &tmp, err);
			if (rc)
				return rc;
			e = tmp;
		}
		thw_state st = thw_call(e, inst->funcs[m->start], NULL, 0, NULL, 0);
		int rc = 0;
		if (st == THW_STATE_TRAPPED)
			rc = th_err_set(err, TH_EINVAL, "%s", thw_exec_trap(e)->message);
		else if (st != THW_STATE_DONE)
			rc = th_err_set(err, TH_ESTATE, "start function did not finish (%s)",
					st == THW_STATE_PENDING ? "pending" : "out of fuel");
		thw_exec_free(tmp);
		if (rc)
			return rc;
	}
	*out = inst;
	return 0;
}

thw_module *thw_instance_module(const thw_instance *inst) { return inst->m; }

bool thw_instance_export(const thw_instance *inst, const char *name,
			 size_t name_len, thw_extern *out)
{
	const thw_module *m = inst->m;
	for (uint32_t i = 0; i < m->nexports; i++) {
		const thw__export *ex = &m->exports[i];
		if (ex->name_len != name_len || memcmp(ex->name, name, name_len))
			continue;
		out->kind = ex->kind;
		switch (ex->kind) {
		case THW_EXTERN_FUNC: out->of.func = inst->funcs[ex->index]; break;
		case THW_EXTERN_TABLE: out->of.table = inst->tables[ex->index]; break;
		case THW_EXTERN_MEMORY: out->of.memory = inst->mem; break;
		case THW_EXTERN_GLOBAL: out->of.global = inst->globals[ex->index]; break;
		}
		return true;
	}
	return false;
}

thw_memory *thw_instance_memory(const thw_instance *inst, uint32_t i)
{
	return i == 0 ? inst->mem : NULL;
}

void thw_instance_set_data(thw_instance *inst, void *data) { inst->data = data; }
void *thw_instance_data(const thw_instance *inst) { return inst->data; }

/* ---- Execution ---------------------------------------------------------- */

int thw_exec_new(thw_realm *r, thw_exec **out, th_err *err)
{
	thw_exec *e = th_calloc(1, sizeof *e);
	*out = NULL;
	if (!e)
		return th_err_set(err, TH_ENOMEM, "exec: out of memory");
	e->realm = r;
	e->fuel = UINT64_MAX;
	e->stack_cap = 256;
	e->stack = th_malloc(e->stack_cap * sizeof *e->stack);
	if (!e->stack) {
		th_free(e);
		return th_err_set(err, TH_ENOMEM, "exec: out of memory");
	}
	*out = e;
	return 0;
}

void thw_exec_free(thw_exec *e)
{
	if (!e)
		return;
	th_free(e->stack);
	th_free(e->frames);
	th_free(e->trap_frames);
	th_free(e);
}

int thw__exec_reserve(thw_exec *e, size_t slots)
{
	if (slots <= e->stack_cap)
		return 0;
	size_t cap = e->stack_cap * 2;
	while (cap < slots)
		cap *= 2;
	uint64_t *p = th_realloc(e->stack, cap * sizeof *p);
	if (!p)
		return TH_ENOMEM;
	e->stack = p;
	e->stack_cap = cap;
	return 0;
}

void thw_exec_set_fuel(thw_exec *e, uint64_t fuel, thw_fuel_mode mode)
{
	e->fuel = fuel;
	e->fuel_mode = mode;
}

uint64_t thw_exec_fuel(const thw_exec *e) { return e->fuel; }

static const char *trap_text(thw_trapcode c)
{
	switch (c) {
	case THW_TRAP_UNREACHABLE: return "unreachable";
	case THW_TRAP_MEMORY_OOB: return "out of bounds memory access";
	case THW_TRAP_TABLE_OOB: return "out of bounds table access";
	case THW_TRAP_UNDEFINED_ELEMENT: return "undefined element";
	case THW_TRAP_UNINITIALIZED_ELEMENT: return "uninitialized element";
	case THW_TRAP_INDIRECT_TYPE: return "indirect call type mismatch";
	case THW_TRAP_DIV_ZERO: return "integer divide by zero";
	case THW_TRAP_INT_OVERFLOW: return "integer overflow";
	case THW_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
	case THW_TRAP_STACK_EXHAUSTED: return "call stack exhausted";
	case THW_TRAP_OUT_OF_FUEL: return "out of fuel";
	case THW_TRAP_OOM: return "out of memory";
	case THW_TRAP_HOST: return "host trap";
	default: return "trap";
	}
}

static void frame_info(thw_func *f, thw_frame_info *fi)
{
	const thw_module *m = f->inst->m;
	fi->func_index = f->code->index;
	fi->func_name = m->func_names ? m->func_names[f->code->index] : NULL;
	fi->code_offset = f->code->body;
}

void thw__trap(thw_exec *e, thw_trapcode code, const char *msg, thw_func *cur,
	       const uint32_t *pc)
{
	TH_UNUSED(pc);
	e->trap.code = code;
	if (msg != e->trap_msg)
		snprintf(e->trap_msg, sizeof e->trap_msg, "%s", msg ? msg : trap_text(code));
	e->trap.message = e->trap_msg;
	/* Backtrace: the trapping function, then its callers. */
	uint32_t n = 0;
	uint32_t want = e->nframes + 1;
	if (want > 64)
		want = 64;
	if (e->trap_frames_cap < want) {
		thw_frame_info *p = th_realloc(e->trap_frames, want * sizeof *p);
		if (p) {
			e->trap_frames = p;
			e->trap_frames_cap = want;
		}
	}
	if (e->trap_frames_cap) {
		if (cur && !cur->host && n < e->trap_frames_cap)
			frame_info(cur, &e->trap_frames[n++]);
		for (uint32_t i = e->nframes; i-- > 0 && n < e->trap_frames_cap;) {
			thw_func *f = e->frames[i].func;
			if (f && !f->host)
				frame_info(f, &e->trap_frames[n++]);
		}
	}
	e->trap.nframes = n;
	e->trap.frames = e->trap_frames;
	e->nframes = 0;
}

static void exec_begin(thw_exec *e, thw_func *f);

int thw_exec_start(thw_exec *e, thw_func *f, const thw_val *args,
		   uint32_t nargs, th_err *err)
{
	if (e->state == THW_STATE_PENDING || e->state == THW_STATE_YIELDED)
		return th_err_set(err, TH_ESTATE, "exec: an invocation is in progress");
	if (e->running)
		return th_err_set(err, TH_ESTATE,
				  "exec: busy running (a host function must use another exec)");
	const thw__ftype *t = f->type;
	if (nargs != t->np)
		return th_err_set(err, TH_EINVAL, "call: %u arguments given, function takes %u",
				  nargs, t->np);
	for (uint32_t i = 0; i < nargs; i++)
		if (args[i].type != t->p[i])
			return th_err_set(err, TH_EINVAL, "call: argument %u has the wrong type", i);
	size_t need = t->np > t->nr ? t->np : t->nr;
	if (thw__exec_reserve(e, need + 1))
		return th_err_set(err, TH_ENOMEM, "exec: out of memory");
	for (uint32_t i = 0; i < nargs; i++)
		e->stack[i] = thw__val_to_slot(&args[i]);
	exec_begin(e, f);
	return 0;
}

/* An invocation of f whose arguments are in place at stack[0]. */
static void exec_begin(thw_exec *e, thw_func *f)
{
	e->entry = f;
	e->pc = NULL;
	e->cur = NULL;
	e->fp = 0;
	e->nframes = 0;
	e->pending = NULL;
	e->trap.code = THW_TRAP_NONE;
	e->trap.message = NULL;
	e->trap.nframes = 0;
	e->state = THW_STATE_IDLE;
	e->ready = true;
	e->host_done = false;
}

thw_state thw_exec_run(thw_exec *e)
{
	if (!e->ready)
		return e->state;
	if (e->state == THW_STATE_PENDING && e->pending)
		return e->state;
	e->ready = false;
	if (e->host_done) {
		e->host_done = false;
		return e->state = THW_STATE_DONE;
	}
	e->running = true;
	e->state = thw__interp_run(e);
	e->running = false;
	if (e->state == THW_STATE_YIELDED)
		e->ready = true;
	return e->state;
}

int thw_exec_complete(thw_exec *e, const thw_val *results, const char *trap_msg)
{
	if (e->state != THW_STATE_PENDING || !e->pending || e->running)
		return TH_ESTATE;
	thw_func *f = e->pending;
	e->pending = NULL;
	if (trap_msg) {
		snprintf(e->trap_msg, sizeof e->trap_msg, "%s", trap_msg);
		thw__trap(e, THW_TRAP_HOST, e->trap_msg, e->cur, e->pc);
		e->state = THW_STATE_TRAPPED;
		e->ready = false;
		return 0;
	}
	const thw__ftype *t = f->type;
	for (uint32_t i = 0; i < t->nr; i++) {
		if (results[i].type != t->p[t->np + i])
			return TH_EINVAL;
	}
	for (uint32_t i = 0; i < t->nr; i++)
		e->stack[e->pending_fp + i] = thw__val_to_slot(&results[i]);
	if (!e->pc)
		e->host_done = true; /* the entry itself was the host function */
	e->ready = true;
	return 0;
}

thw_state thw_exec_state(const thw_exec *e) { return e->state; }

const thw_trap *thw_exec_trap(const thw_exec *e)
{
	return e->state == THW_STATE_TRAPPED ? &e->trap : NULL;
}

uint32_t thw_exec_results(const thw_exec *e, thw_val *out, uint32_t max)
{
	if (!e->entry)
		return 0;
	const thw__ftype *t = e->entry->type;
	if (e->state == THW_STATE_DONE)
		for (uint32_t i = 0; i < t->nr && i < max; i++)
			out[i] = thw__slot_to_val(t->p[t->np + i], e->stack[i]);
	return t->nr;
}

/* A call that could not start: it traps with msg. */
static thw_state call_failed(thw_exec *e, const char *msg)
{
	snprintf(e->trap_msg, sizeof e->trap_msg, "%s", msg);
	e->trap.code = THW_TRAP_HOST;
	e->trap.message = e->trap_msg;
	e->trap.nframes = 0;
	return e->state = THW_STATE_TRAPPED;
}

thw_state thw_call(thw_exec *e, thw_func *f, const thw_val *args,
		   uint32_t nargs, thw_val *results, uint32_t nresults)
{
	th_err err;
	th_err_clear(&err);
	if (thw_exec_start(e, f, args, nargs, &err))
		return call_failed(e, err.msg);
	thw_state st = thw_exec_run(e);
	if (st == THW_STATE_DONE && results)
		thw_exec_results(e, results, nresults);
	return st;
}

thw_state thw_call_i32(thw_exec *e, thw_func *f, const uint32_t *args, uint32_t nargs,
		       uint32_t *result)
{
	const thw__ftype *t = f->type;
	if (result && (t->nr != 1 || t->p[t->np] != THW_I32))
		return call_failed(e, "call: the function does not return one i32");
	bool fast = nargs == t->np && nargs < 8 && e->stack_cap > 8 &&
		    e->state != THW_STATE_PENDING && e->state != THW_STATE_YIELDED && !e->running;
	for (uint32_t i = 0; fast && i < nargs; i++)
		fast = t->p[i] == THW_I32;
	if (!fast) { /* thw_call checks, and fails, as it always does */
		thw_val a[8], r;
		if (nargs > 8)
			return call_failed(e, "call: more than 8 i32 arguments");
		for (uint32_t i = 0; i < nargs; i++)
			a[i] = (thw_val){ .type = THW_I32, .of.i32 = args[i] };
		thw_state st = thw_call(e, f, a, nargs, &r, 1);
		if (st == THW_STATE_DONE && result)
			*result = r.of.i32;
		return st;
	}
	for (uint32_t i = 0; i < nargs; i++)
		e->stack[i] = args[i];
	exec_begin(e, f);
	e->ready = false;
	e->running = true;
	e->state = thw__interp_run(e);
	e->running = false;
	if (e->state == THW_STATE_YIELDED)
		e->ready = true;
	if (e->state == THW_STATE_DONE && result)
		*result = (uint32_t)e->stack[0];
	return e->state;
}
