/*
 * load.c - thc_component_load: detect the form (component-model binary or
 * core module), decode it, compile its core modules with the engine, and
 * check its imports and exports against the theater:simple world.
 *
 * Core-module form naming (both manglings wit-component accepts):
 *   legacy:  import "theater:simple/runtime" "log";
 *            export "theater:simple/actor#init", "cabi_post_<export>",
 *            "memory", "cabi_realloc", "_initialize"
 *   cm32p2:  import "cm32p2|theater:simple/runtime" "log";
 *            export "cm32p2|theater:simple/actor|init", "<export>_post",
 *            "cm32p2_memory", "cm32p2_realloc", "cm32p2_initialize"
 * Each core signature must equal the flattening of the world type (lowered
 * for imports, lifted for exports).
 */
#include "component/comp.h"
#include "theater/wasi.h"

#define CM32 "cm32p2|"

static int load_component(thc_component *c, const thcw_world *w, th_err *err)
{
	int rc = thcl_check_component(c, w, err);
	if (rc)
		return rc;
	thcd_scope *root = c->dec.root;
	c->modules = th_calloc(root->modules.n ? root->modules.n : 1, sizeof(thw_module *));
	if (!c->modules)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	c->nmodules = root->modules.n;
	for (uint32_t i = 0; i < c->nmodules; i++)
		if ((rc = thw_module_new(c->bytes + root->modules.v[i], root->module_lens.v[i],
					 &c->modules[i], err)))
			return th_err_prefix(err, "component: core module %u", i);
	return 0;
}

/* ---- core form -------------------------------------------------------------- */

static bool core_sig_equal(const thw_functype *ft, const thct_flatsig *s)
{
	return ft->nparams == s->nparams && ft->nresults == s->nresults &&
	       memcmp(ft->params, s->params, s->nparams) == 0 &&
	       memcmp(ft->results, s->results, s->nresults) == 0;
}

static void core_sig_str(const uint8_t *p, uint32_t n, const uint8_t *r, uint32_t nr,
			 char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = 0;
	for (int side = 0; side < 2; side++) {
		const uint8_t *v = side ? r : p;
		uint32_t k = side ? nr : n;
		len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, side ? " -> (" : "(");
		for (uint32_t i = 0; i < k && len < cap; i++)
			len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "",
						v[i] == THW_I32 ? "i32" : v[i] == THW_I64 ? "i64"
						: v[i] == THW_F32 ? "f32" : "f64");
		if (len < cap)
			len += (size_t)snprintf(buf + len, cap - len, ")");
	}
}

static int core_thcl_mismatch(th_err *err, const char *what, const char *iface, const char *name,
			 const thc_fn *f, const thw_functype *got)
{
	char a[200], b[200], w[400];
	core_sig_str(f->sig.params, f->sig.nparams, f->sig.results, f->sig.nresults, a, sizeof a);
	core_sig_str(got->params, got->nparams, got->results, got->nresults, b, sizeof b);
	thc_functype_str(f->type, w, sizeof w);
	return th_err_set(err, TH_EINVAL,
			  "world mismatch: %s %s#%s: expected core %s (lowered from %s), found %s",
			  what, iface, name, a, w, b);
}

static const char *arena_str(thc_component *c, const char *s, size_t n)
{
	return thct_strndup(&c->arena, s, n);
}

static int load_core(thc_component *c, const thcw_world *w, th_err *err)
{
	int rc;
	thw_module *m;
	if ((rc = thw_module_new(c->bytes, c->len, &m, err)))
		return th_err_prefix(err, "core module");
	c->modules = th_calloc(1, sizeof(thw_module *));
	if (!c->modules) {
		thw_module_release(m);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	c->modules[0] = m;
	c->nmodules = 1;
	uint32_t ni = thw_module_import_count(m), ne = thw_module_export_count(m);
	c->core_import_map = th_calloc(ni ? ni : 1, sizeof(uint32_t));
	if (!c->core_import_map)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	bool cm32 = false;
	for (uint32_t i = 0; i < ni; i++) {
		thw_importdesc d;
		thw_module_import(m, i, &d);
		const char *mod = d.module;
		size_t ml = d.module_len;
		if (ml == strlen(THW_WASI_MODULE) && memcmp(mod, THW_WASI_MODULE, ml) == 0 &&
		    d.type.kind == THW_EXTERN_FUNC) {
			c->core_import_map[i] = UINT32_MAX; /* WASI, resolved at instantiation */
			continue;
		}
		if (ml > 7 && memcmp(mod, CM32, 7) == 0) {
			mod += 7;
			ml -= 7;
			cm32 = true;
		}
		thc_fn f = { .iface = arena_str(c, mod, ml), .name = arena_str(c, d.name, d.name_len) };
		if (!f.iface || !f.name)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		if (d.type.kind != THW_EXTERN_FUNC)
			return th_err_set(err, TH_EINVAL,
					  "world mismatch: import %s#%s is not a function", f.iface, f.name);
		if ((rc = thcl_check_fn(w, false, f.iface, f.name, NULL, &f.type, err)) ||
		    (rc = thcl_prep_fn(c, &f, true, err)))
			return rc;
		if (!core_sig_equal(&d.type.func, &f.sig))
			return core_thcl_mismatch(err, "import", f.iface, f.name, &f, &d.type.func);
		c->core_import_map[i] = c->nimports;
		if ((rc = thcl_add_fn(&c->imports, &c->nimports, f, err)))
			return rc;
	}
	for (uint32_t i = 0; i < ne; i++) {
		thw_exportdesc d;
		thw_module_export(m, i, &d);
		char nm[512];
		if (d.name_len >= sizeof nm || d.type.kind != THW_EXTERN_FUNC)
			continue;
		memcpy(nm, d.name, d.name_len);
		nm[d.name_len] = 0;
		char *sep;
		const char *body = nm;
		if (strncmp(nm, CM32, 7) == 0) {
			body = nm + 7;
			cm32 = true;
			sep = strchr(body, '|');
			size_t bl = strlen(body);
			if (bl > 5 && strcmp(body + bl - 5, "_post") == 0)
				continue;
		} else {
			sep = strchr(nm, '#');
		}
		if (!sep || strncmp(nm, "cabi_post_", 10) == 0)
			continue;
		thc_fn f = { .iface = arena_str(c, body, (size_t)(sep - body)),
			     .name = arena_str(c, sep + 1, strlen(sep + 1)),
			     .core_name = arena_str(c, nm, strlen(nm)) };
		if (!f.iface || !f.name || !f.core_name)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		if ((rc = thcl_check_fn(w, true, f.iface, f.name, NULL, &f.type, err)) ||
		    (rc = thcl_prep_fn(c, &f, false, err)))
			return rc;
		if (!core_sig_equal(&d.type.func, &f.sig))
			return core_thcl_mismatch(err, "export", f.iface, f.name, &f, &d.type.func);
		char post[600];
		if (strncmp(nm, CM32, 7) == 0)
			snprintf(post, sizeof post, "%s_post", nm);
		else
			snprintf(post, sizeof post, "cabi_post_%s", nm);
		if (!(f.post_name = arena_str(c, post, strlen(post))))
			return th_err_set(err, TH_ENOMEM, "out of memory");
		if ((rc = thcl_add_fn(&c->exports, &c->nexports, f, err)))
			return rc;
	}
	c->mem_name = cm32 ? "cm32p2_memory" : "memory";
	c->realloc_name = cm32 ? "cm32p2_realloc" : "cabi_realloc";
	c->init_name = cm32 ? "cm32p2_initialize" : "_initialize";
	return thcl_require_init(c, err);
}

int thc_component_load(const uint8_t *bytes, size_t len, thc_component **out, th_err *err)
{
	*out = NULL;
	if (err)
		err->code = 0;
	const thcw_world *w = thcw_theater(err);
	if (!w)
		return err ? err->code : TH_EINVAL;
	if (len < 8 || memcmp(bytes, "\0asm", 4) != 0)
		return th_err_set(err, TH_EINVAL, "component: not a WebAssembly binary (bad magic)");
	thc_component *c = th_calloc(1, sizeof(*c));
	if (!c)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	c->bytes = th_malloc(len);
	if (!c->bytes) {
		th_free(c);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	memcpy(c->bytes, bytes, len);
	c->len = len;
	int rc;
	if (bytes[4] == 0x01 && bytes[5] == 0 && bytes[6] == 0 && bytes[7] == 0) {
		c->form = THC_FORM_CORE;
		rc = load_core(c, w, err);
	} else {
		c->form = THC_FORM_COMPONENT;
		rc = load_component(c, w, err);
	}
	if (rc) {
		thc_component_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void thc_component_free(thc_component *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->nmodules; i++)
		thw_module_release(c->modules[i]);
	th_free(c->modules);
	th_free(c->imports);
	th_free(c->exports);
	th_free(c->core_import_map);
	thcd_release(&c->dec);
	thct_arena_release(&c->arena);
	th_free(c->bytes);
	th_free(c);
}

thc_form thc_component_form(const thc_component *c)
{
	return c->form;
}

uint32_t thc_component_import_count(const thc_component *c)
{
	return c->nimports;
}

void thc_component_import(const thc_component *c, uint32_t i, thc_funcref *out)
{
	*out = (thc_funcref){ c->imports[i].iface, c->imports[i].name, c->imports[i].type };
}

uint32_t thc_component_export_count(const thc_component *c)
{
	return c->nexports;
}

void thc_component_export(const thc_component *c, uint32_t i, thc_funcref *out)
{
	*out = (thc_funcref){ c->exports[i].iface, c->exports[i].name, c->exports[i].type };
}

int thc_component_find_export(const thc_component *c, const char *iface, const char *name)
{
	for (uint32_t i = 0; i < c->nexports; i++)
		if (strcmp(c->exports[i].iface, iface) == 0 && strcmp(c->exports[i].name, name) == 0)
			return (int)i;
	return -1;
}
