/*
 * decode.c - the binary decoder: header, sections in order, every section's
 * contents, the name section, and the module-level validation rules that do
 * not concern function bodies (those are in compile.c, called from here for
 * each body while the code section is read).
 *
 * Error policy. A malformed binary (a decoding error) always wins over an
 * invalid one (a validation error), as the specification's tests expect:
 * when a validation rule fails, the first such error is remembered and
 * validation stops, but decoding continues to the end of the binary; only
 * when decoding succeeds is the remembered validation error reported.
 * Messages read "<section> section at offset 0x1a2: <reason>".
 */
#include "wasm_internal.h"

/* ---- Reader primitives -------------------------------------------------- */

int thw__rd_fail(thw__rd *r, const uint8_t *at, const char *fmt, ...)
{
	char reason[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	return th_err_set(r->err, TH_EINVAL, "%s section at offset 0x%zx: %s",
			  r->sec, (size_t)(at - r->base), reason);
}

int thw__rd_eof(thw__rd *r)
{
	/* Inside a section or body the reference interpreter says "unexpected
	 * end of section or function"; at the top level, "unexpected end". */
	if (!strcmp(r->sec, "header") || !strcmp(r->sec, "module"))
		return thw__rd_fail(r, r->p, "unexpected end");
	return thw__rd_fail(r, r->p, "unexpected end of section or function");
}

static int rd_leb(thw__rd *r, unsigned bits, bool sign, uint64_t *out)
{
	const uint8_t *start = r->p;
	unsigned maxbytes = (bits + 6) / 7;
	uint64_t v = 0;
	unsigned shift = 0;
	for (unsigned i = 0;; i++) {
		if (r->p >= r->end)
			return thw__rd_eof(r);
		uint8_t b = *r->p++;
		if (i == maxbytes - 1) {
			if (b & 0x80)
				return thw__rd_fail(r, start, "integer representation too long");
			/* Bits of the last byte beyond `bits` must be zero
			 * (unsigned) or copies of the sign bit (signed). */
			unsigned used = bits - shift; /* value bits in this byte */
			if (used < 7) {
				uint8_t extra = (uint8_t)(b & 0x7f) >> used;
				if (!sign) {
					if (extra)
						return thw__rd_fail(r, start, "integer too large");
				} else {
					uint8_t signbit = (b >> (used - 1)) & 1;
					uint8_t want = signbit ? (uint8_t)(0x7f >> used) : 0;
					if (extra != want)
						return thw__rd_fail(r, start, "integer too large");
				}
			}
			v |= (uint64_t)(b & 0x7f) << shift;
			shift += 7;
			break;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (sign && shift < 64 && (v >> (shift - 1)) & 1)
		v |= ~(uint64_t)0 << shift;
	*out = v;
	return 0;
}

int thw__rd_u32_slow(thw__rd *r, uint32_t *out)
{
	uint64_t v = 0;
	int rc = rd_leb(r, 32, false, &v);
	*out = (uint32_t)v;
	return rc;
}

int thw__rd_s32(thw__rd *r, int32_t *out)
{
	uint64_t v = 0;
	int rc = rd_leb(r, 32, true, &v);
	*out = (int32_t)(uint32_t)v;
	return rc;
}

int thw__rd_s33(thw__rd *r, int64_t *out)
{
	uint64_t v = 0;
	int rc = rd_leb(r, 33, true, &v);
	*out = (int64_t)v;
	return rc;
}

int thw__rd_s64(thw__rd *r, int64_t *out)
{
	uint64_t v = 0;
	int rc = rd_leb(r, 64, true, &v);
	*out = (int64_t)v;
	return rc;
}

/* ---- Decoder state ------------------------------------------------------ */

typedef struct dec {
	thw_module *m;
	thw__rd r;
	th_err *err;
	th_err verr;   /* first validation error */
	bool invalid;  /* verr is set: validate no further */
	bool types_bad; /* a function has an unknown type: bodies are not compiled */
	uint32_t nfunc_decl; /* function section count */
	bool has_funcsec, has_codesec;
	uint32_t ncode;
	const uint8_t *sec_end; /* the declared end of the current section */
	thw__cbuf cb;
} dec;

/* Record a validation error (the first one wins) and keep decoding. */
static void vfail(dec *d, const uint8_t *at, const char *fmt, ...) TH_PRINTF(3, 4);
static void vfail(dec *d, const uint8_t *at, const char *fmt, ...)
{
	if (d->invalid)
		return;
	char reason[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	d->invalid = true;
	th_err_set(&d->verr, TH_EINVAL, "%s section at offset 0x%zx: %s",
		   d->r.sec, (size_t)(at - d->r.base), reason);
}

static int oom(dec *d)
{
	return th_err_set(d->err, TH_ENOMEM, "%s section: out of memory", d->r.sec);
}

/* Vector length, checked against the bytes left (each item takes >= 1). */
static int rd_count(dec *d, uint32_t *n)
{
	const uint8_t *at = d->r.p;
	int rc = thw__rd_u32(&d->r, n);
	if (rc)
		return rc;
	/* Each item takes at least a byte: a larger count is cut short. */
	TH_UNUSED(at);
	if (*n > (size_t)(d->r.end - d->r.p))
		return thw__rd_fail(&d->r, d->r.end, "unexpected end of section or function");
	return 0;
}

static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		uint32_t cp;
		size_t len;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

/* A name: length-prefixed UTF-8. Returns a NUL-terminated copy. */
static int rd_name(dec *d, char **out, uint32_t *len)
{
	uint32_t n;
	const uint8_t *at = d->r.p;
	int rc = thw__rd_u32(&d->r, &n);
	if (rc)
		return rc;
	if (n > (size_t)(d->r.end - d->r.p))
		return thw__rd_fail(&d->r, at, "length out of bounds");
	if (!utf8_ok(d->r.p, n))
		return thw__rd_fail(&d->r, d->r.p, "malformed UTF-8 encoding");
	*out = th_strndup((const char *)d->r.p, n);
	if (!*out)
		return oom(d);
	*len = n;
	d->r.p += n;
	return 0;
}

static int rd_valtype(dec *d, uint8_t *t)
{
	const uint8_t *at = d->r.p;
	int rc = thw__rd_u8(&d->r, t);
	if (rc)
		return rc;
	switch (*t) {
	case THW_I32: case THW_I64: case THW_F32: case THW_F64:
	case THW_FUNCREF: case THW_EXTERNREF:
		return 0;
	case THW_V128:
		return thw__rd_fail(&d->r, at, "unsupported feature: simd");
	default:
		return thw__rd_fail(&d->r, at, "malformed value type 0x%02x", *t);
	}
}

static int rd_reftype(dec *d, uint8_t *t)
{
	const uint8_t *at = d->r.p;
	int rc = thw__rd_u8(&d->r, t);
	if (rc)
		return rc;
	if (*t != THW_FUNCREF && *t != THW_EXTERNREF)
		return thw__rd_fail(&d->r, at, "malformed reference type");
	return 0;
}

static int rd_limits(dec *d, thw_limits_range *l, bool memory)
{
	uint8_t flag;
	const uint8_t *at = d->r.p;
	int rc = thw__rd_u8(&d->r, &flag);
	if (rc)
		return rc;
	if (flag & 0x80)
		return thw__rd_fail(&d->r, at, "integer representation too long");
	if (flag > 1)
		return thw__rd_fail(&d->r, at, "integer too large");
	l->has_max = flag == 1;
	if ((rc = thw__rd_u32(&d->r, &l->min)))
		return rc;
	l->max = 0;
	if (l->has_max && (rc = thw__rd_u32(&d->r, &l->max)))
		return rc;
	if (memory) {
		if (l->min > THW__MAX_PAGES || (l->has_max && l->max > THW__MAX_PAGES))
			vfail(d, at, "memory size must be at most 65536 pages (4GiB)");
	}
	if (l->has_max && l->min > l->max)
		vfail(d, at, "size minimum must not be greater than maximum");
	return 0;
}

static int rd_globaltype(dec *d, uint8_t *t, bool *mut)
{
	uint8_t b;
	int rc = rd_valtype(d, t);
	if (rc)
		return rc;
	const uint8_t *at = d->r.p;
	if ((rc = thw__rd_u8(&d->r, &b)))
		return rc;
	if (b > 1)
		return thw__rd_fail(&d->r, at, "malformed mutability");
	*mut = b;
	return 0;
}

/* A constant expression: validated (unless already invalid) and skipped. */
static int rd_const(dec *d, uint8_t type, uint32_t *off)
{
	*off = (uint32_t)(d->r.p - d->r.base);
	th_err e = { 0 };
	th_err *saved = d->r.err;
	d->r.err = &e;
	int rc = thw__const_expr(d->m, &d->r, type, d->m->nglobal_imports);
	d->r.err = saved;
	if (rc == 0)
		return 0;
	/* thw__const_expr reports malformed input with TH_EINVAL and invalid
	 * input with TH_ENOTFOUND-coded messages (see compile.c). */
	if (rc == TH_ENOTFOUND) {
		if (!d->invalid) {
			d->invalid = true;
			d->verr = e;
			d->verr.code = TH_EINVAL;
		}
		return 0;
	}
	*d->err = e;
	return rc;
}

/* ---- Sections ----------------------------------------------------------- */

static int sec_type(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	m->types = th_calloc(n, sizeof *m->types);
	if (!m->types)
		return oom(d);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t form;
		const uint8_t *at = d->r.p;
		if ((rc = thw__rd_u8(&d->r, &form)))
			return rc;
		if (form & 0x80)
			return thw__rd_fail(&d->r, at, "integer representation too long");
		if (form != 0x60)
			return thw__rd_fail(&d->r, at, "malformed function type 0x%02x", form);
		uint32_t np, nr;
		if ((rc = rd_count(d, &np)))
			return rc;
		const uint8_t *pp = d->r.p;
		for (uint32_t k = 0; k < np; k++) {
			uint8_t t;
			if ((rc = rd_valtype(d, &t)))
				return rc;
		}
		if ((rc = rd_count(d, &nr)))
			return rc;
		const uint8_t *rp = d->r.p;
		for (uint32_t k = 0; k < nr; k++) {
			uint8_t t;
			if ((rc = rd_valtype(d, &t)))
				return rc;
		}
		thw__ftype *ft = &m->types[i];
		ft->p = th_malloc((size_t)np + nr);
		if (!ft->p)
			return oom(d);
		memcpy(ft->p, pp, np);
		memcpy(ft->p + np, rp, nr);
		ft->np = np;
		ft->nr = nr;
		m->ntypes = i + 1;
	}
	return 0;
}

static int grow_funcs(dec *d, uint32_t extra)
{
	thw_module *m = d->m;
	uint32_t *p = th_realloc(m->func_types, ((size_t)m->nfuncs + extra) * sizeof *p);
	if (!p)
		return oom(d);
	m->func_types = p;
	return 0;
}

static int sec_import(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	m->imports = th_calloc(n, sizeof *m->imports);
	if (!m->imports)
		return oom(d);
	for (uint32_t i = 0; i < n; i++) {
		thw__import *im = &m->imports[i];
		char *mod, *name;
		if ((rc = rd_name(d, &mod, &im->module_len)))
			return rc;
		im->module = mod;
		m->nimports = i + 1;
		if ((rc = rd_name(d, &name, &im->name_len)))
			return rc;
		im->name = name;
		const uint8_t *at = d->r.p;
		uint8_t kind;
		if ((rc = thw__rd_u8(&d->r, &kind)))
			return rc;
		im->kind = kind;
		switch (kind) {
		case THW_EXTERN_FUNC: {
			uint32_t t;
			const uint8_t *tat = d->r.p;
			if ((rc = thw__rd_u32(&d->r, &t)))
				return rc;
			if (t >= m->ntypes) {
				vfail(d, tat, "unknown type %u", t);
				d->types_bad = true;
				t = 0;
			}
			if ((rc = grow_funcs(d, 1)))
				return rc;
			im->index = t;
			m->func_types[m->nfuncs++] = t;
			m->nfunc_imports++;
			break;
		}
		case THW_EXTERN_TABLE: {
			thw__tabtype tt;
			if ((rc = rd_reftype(d, &tt.elem)) || (rc = rd_limits(d, &tt.lim, false)))
				return rc;
			thw__tabtype *p = th_realloc(m->tables, (m->ntables + 1) * sizeof *p);
			if (!p)
				return oom(d);
			m->tables = p;
			im->index = m->ntables;
			p[m->ntables++] = tt;
			m->ntable_imports++;
			break;
		}
		case THW_EXTERN_MEMORY: {
			thw_limits_range l;
			if ((rc = rd_limits(d, &l, true)))
				return rc;
			if (m->nmems)
				vfail(d, at, "multiple memories");
			im->index = m->nmems++;
			m->mem = l;
			m->nmem_imports++;
			break;
		}
		case THW_EXTERN_GLOBAL: {
			thw__globtype g = { 0 };
			if ((rc = rd_globaltype(d, &g.type, &g.mut)))
				return rc;
			g.init = UINT32_MAX;
			thw__globtype *p = th_realloc(m->globals, (m->nglobals + 1) * sizeof *p);
			if (!p)
				return oom(d);
			m->globals = p;
			im->index = m->nglobals;
			p[m->nglobals++] = g;
			m->nglobal_imports++;
			break;
		}
		default:
			return thw__rd_fail(&d->r, at, "malformed import kind");
		}
	}
	return 0;
}

static int sec_function(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	if ((rc = grow_funcs(d, n)))
		return rc;
	d->nfunc_decl = n;
	d->has_funcsec = true;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t t;
		const uint8_t *at = d->r.p;
		if ((rc = thw__rd_u32(&d->r, &t)))
			return rc;
		if (t >= m->ntypes) {
			vfail(d, at, "unknown type %u", t);
			d->types_bad = true;
			t = 0;
		}
		m->func_types[m->nfuncs++] = t;
	}
	return 0;
}

static int sec_table(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	thw__tabtype *p = th_realloc(m->tables, ((size_t)m->ntables + n) * sizeof *p);
	if (!p)
		return oom(d);
	m->tables = p;
	for (uint32_t i = 0; i < n; i++) {
		thw__tabtype tt;
		if ((rc = rd_reftype(d, &tt.elem)) || (rc = rd_limits(d, &tt.lim, false)))
			return rc;
		p[m->ntables++] = tt;
	}
	return 0;
}

static int sec_memory(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *at = d->r.p;
		thw_limits_range l;
		if ((rc = rd_limits(d, &l, true)))
			return rc;
		if (m->nmems)
			vfail(d, at, "multiple memories");
		m->mem = l;
		m->nmems++;
	}
	return 0;
}

static int sec_global(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	thw__globtype *p = th_realloc(m->globals, ((size_t)m->nglobals + n) * sizeof *p);
	if (!p)
		return oom(d);
	m->globals = p;
	for (uint32_t i = 0; i < n; i++) {
		thw__globtype g;
		if ((rc = rd_globaltype(d, &g.type, &g.mut)))
			return rc;
		/* Only globals before this one are visible to its initializer
		 * (the extended-const and GC rule; imported ones in MVP terms). */
		uint32_t saved = m->nglobals;
		if ((rc = rd_const(d, g.type, &g.init)))
			return rc;
		m->nglobals = saved;
		p[m->nglobals++] = g;
	}
	return 0;
}

static void declare_func(thw_module *m, uint32_t f)
{
	if (f < m->nfuncs)
		m->declared[f / 8] |= (uint8_t)(1u << (f % 8));
}

static int sec_export(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	m->exports = th_calloc(n, sizeof *m->exports);
	if (!m->exports)
		return oom(d);
	for (uint32_t i = 0; i < n; i++) {
		thw__export *ex = &m->exports[i];
		char *name;
		const uint8_t *at = d->r.p;
		if ((rc = rd_name(d, &name, &ex->name_len)))
			return rc;
		ex->name = name;
		m->nexports = i + 1;
		for (uint32_t k = 0; k < i; k++)
			if (m->exports[k].name_len == ex->name_len &&
			    !memcmp(m->exports[k].name, name, ex->name_len))
				vfail(d, at, "duplicate export name");
		uint8_t kind;
		const uint8_t *kat = d->r.p;
		if ((rc = thw__rd_u8(&d->r, &kind)))
			return rc;
		if (kind > 3)
			return thw__rd_fail(&d->r, kat, "malformed export kind");
		ex->kind = kind;
		const uint8_t *iat = d->r.p;
		if ((rc = thw__rd_u32(&d->r, &ex->index)))
			return rc;
		uint32_t lim = kind == 0 ? m->nfuncs : kind == 1 ? m->ntables
			     : kind == 2 ? m->nmems : m->nglobals;
		static const char *const what[] = { "function", "table", "memory", "global" };
		if (ex->index >= lim)
			vfail(d, iat, "unknown %s %u", what[kind], ex->index);
		if (kind == 0)
			declare_func(m, ex->index);
	}
	return 0;
}

static int sec_start(dec *d)
{
	thw_module *m = d->m;
	const uint8_t *at = d->r.p;
	int rc = thw__rd_u32(&d->r, &m->start);
	if (rc)
		return rc;
	m->has_start = true;
	if (m->start >= m->nfuncs) {
		vfail(d, at, "unknown function %u", m->start);
	} else if (!d->types_bad) {
		const thw__ftype *ft = thw__func_type(m, m->start);
		if (ft->np || ft->nr)
			vfail(d, at, "start function");
	}
	return 0;
}

static int rd_funcidx(dec *d, uint32_t *f)
{
	const uint8_t *at = d->r.p;
	int rc = thw__rd_u32(&d->r, f);
	if (rc)
		return rc;
	if (*f >= d->m->nfuncs)
		vfail(d, at, "unknown function %u", *f);
	else
		declare_func(d->m, *f);
	return 0;
}

static int sec_elem(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	m->elems = th_calloc(n, sizeof *m->elems);
	if (!m->elems)
		return oom(d);
	for (uint32_t i = 0; i < n; i++) {
		thw__elem *e = &m->elems[i];
		uint32_t flags;
		const uint8_t *at = d->r.p;
		if ((rc = thw__rd_u32(&d->r, &flags)))
			return rc;
		if (flags > 7)
			return thw__rd_fail(&d->r, at, "malformed elements segment kind");
		m->nelems = i + 1;
		e->type = THW_FUNCREF;
		if (flags & 1)
			e->mode = (flags & 2) ? THW__SEG_DECLARATIVE : THW__SEG_PASSIVE;
		else
			e->mode = THW__SEG_ACTIVE;
		if (e->mode == THW__SEG_ACTIVE) {
			const uint8_t *tat = d->r.p;
			if (flags & 2) {
				if ((rc = thw__rd_u32(&d->r, &e->table)))
					return rc;
			}
			if (e->table >= m->ntables)
				vfail(d, tat, "unknown table %u", e->table);
			if ((rc = rd_const(d, THW_I32, &e->offset)))
				return rc;
		}
		bool exprs = flags & 4;
		if (flags & 3) {
			/* elemkind (0x00 = funcref) or reftype */
			if (exprs) {
				if ((rc = rd_reftype(d, &e->type)))
					return rc;
			} else {
				uint8_t k;
				const uint8_t *kat = d->r.p;
				if ((rc = thw__rd_u8(&d->r, &k)))
					return rc;
				if (k != 0)
					return thw__rd_fail(&d->r, kat, "malformed element kind");
			}
		}
		uint32_t cnt;
		if ((rc = rd_count(d, &cnt)))
			return rc;
		e->items = th_calloc(cnt ? cnt : 1, sizeof *e->items);
		if (!e->items)
			return oom(d);
		e->n = cnt;
		for (uint32_t k = 0; k < cnt; k++) {
			thw__item *it = &e->items[k];
			if (!exprs) {
				uint32_t f;
				if ((rc = rd_funcidx(d, &f)))
					return rc;
				it->kind = THW__ITEM_FUNC;
				it->idx = f & 0x3fffffff;
				continue;
			}
			/* Common shapes are stored directly; others are
			 * evaluated at instantiation. */
			const uint8_t *p = d->r.p;
			if (d->r.end - p >= 3 && p[0] == 0xd0 && p[2] == 0x0b) {
				it->kind = THW__ITEM_NULL;
			} else if (d->r.end - p >= 2 && p[0] == 0xd2) {
				d->r.p++;
				uint32_t f;
				if ((rc = rd_funcidx(d, &f)))
					return rc;
				bool simple = d->r.p < d->r.end && *d->r.p == 0x0b;
				d->r.p = p;
				if (simple) {
					it->kind = THW__ITEM_FUNC;
					it->idx = f & 0x3fffffff;
				} else {
					it->kind = THW__ITEM_EXPR;
				}
			} else {
				it->kind = THW__ITEM_EXPR;
			}
			uint32_t off;
			if ((rc = rd_const(d, e->type, &off)))
				return rc;
			if (it->kind == THW__ITEM_EXPR)
				it->idx = off;
		}
		if (e->mode == THW__SEG_ACTIVE && e->table < m->ntables &&
		    m->tables[e->table].elem != e->type)
			vfail(d, at, "type mismatch");
	}
	return 0;
}

static int sec_datacount(dec *d)
{
	int rc = thw__rd_u32(&d->r, &d->m->datacount);
	if (!rc)
		d->m->has_datacount = true;
	return rc;
}

static int sec_code(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	const uint8_t *at = d->r.p;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	d->has_codesec = true;
	if (n != d->nfunc_decl)
		return thw__rd_fail(&d->r, at, "function and code section have inconsistent lengths");
	m->codes = th_calloc(n ? n : 1, sizeof *m->codes);
	if (!m->codes)
		return oom(d);
	d->ncode = n;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t size;
		const uint8_t *sat = d->r.p;
		if ((rc = thw__rd_u32(&d->r, &size)))
			return rc;
		if (size > (size_t)(d->r.end - d->r.p))
			return thw__rd_fail(&d->r, sat, "length out of bounds");
		thw__code *c = &m->codes[i];
		c->index = m->nfunc_imports + i;
		c->type = m->func_types[c->index];
		c->body = (uint32_t)(d->r.p - d->r.base);
		c->body_len = size;
		thw__rd body = d->r;
		body.end = d->r.p + size;
		body.sec = "code";
		th_err e = { 0 };
		body.err = &e;
		if (!d->types_bad) {
			rc = thw__compile_func(m, i, &body, &d->cb);
			if (rc == TH_ENOTFOUND) {
				/* invalid: remember, continue decoding */
				if (!d->invalid) {
					d->invalid = true;
					d->verr = e;
					d->verr.code = TH_EINVAL;
				}
			} else if (rc) {
				*d->err = e;
				if (rc == TH_EINVAL && body.p >= body.end &&
				    strstr(e.msg, "unexpected end")) {
					/* A body without its final `end`: worded as
					 * the reference decoder words it. */
					const char *why = body.end < d->sec_end ? "END opcode expected"
						: d->sec_end < d->r.base + d->m->len ? "section size mismatch"
						: "unexpected end of section or function";
					thw__rd_fail(&d->r, body.end, "%s", why);
				}
				return rc;
			}
		}
		d->r.p += size;
	}
	return 0;
}

static int sec_data(dec *d)
{
	thw_module *m = d->m;
	uint32_t n;
	const uint8_t *at = d->r.p;
	int rc = rd_count(d, &n);
	if (rc)
		return rc;
	if (m->has_datacount && n != m->datacount)
		return thw__rd_fail(&d->r, at, "data count and data section have inconsistent lengths");
	m->datas = th_calloc(n ? n : 1, sizeof *m->datas);
	if (!m->datas)
		return oom(d);
	for (uint32_t i = 0; i < n; i++) {
		thw__data *ds = &m->datas[i];
		uint32_t flags, mem = 0;
		const uint8_t *fat = d->r.p;
		if ((rc = thw__rd_u32(&d->r, &flags)))
			return rc;
		if (flags > 2)
			return thw__rd_fail(&d->r, fat, "malformed data segment kind");
		m->ndatas = i + 1;
		ds->mode = flags == 1 ? THW__SEG_PASSIVE : THW__SEG_ACTIVE;
		if (flags == 2 && (rc = thw__rd_u32(&d->r, &mem)))
			return rc;
		if (ds->mode == THW__SEG_ACTIVE) {
			if (mem >= m->nmems)
				vfail(d, fat, "unknown memory %u", mem);
			if ((rc = rd_const(d, THW_I32, &ds->offset)))
				return rc;
		}
		uint32_t len;
		const uint8_t *lat = d->r.p;
		if ((rc = thw__rd_u32(&d->r, &len)))
			return rc;
		if (len > (size_t)(d->r.end - d->r.p))
			return thw__rd_fail(&d->r, lat, "unexpected end of section or function");
		ds->start = (uint32_t)(d->r.p - d->r.base);
		ds->len = len;
		d->r.p += len;
	}
	return 0;
}

/* The name section's function names (subsection 1). A malformed name
 * section is ignored, as the specification allows for custom sections. */
static void parse_names(thw_module *m, const uint8_t *p, const uint8_t *end)
{
	th_err e = { 0 };
	thw__rd r = { .base = m->bin, .p = p, .end = end, .sec = "name", .err = &e };
	while (r.p < r.end) {
		uint8_t id;
		uint32_t size;
		if (thw__rd_u8(&r, &id) || thw__rd_u32(&r, &size) ||
		    size > (size_t)(r.end - r.p))
			return;
		const uint8_t *next = r.p + size;
		if (id == 1) {
			thw__rd s = r;
			s.end = next;
			uint32_t n;
			if (thw__rd_u32(&s, &n))
				return;
			if (!m->func_names) {
				m->func_names = th_calloc(m->nfuncs ? m->nfuncs : 1, sizeof(char *));
				if (!m->func_names)
					return;
			}
			for (uint32_t i = 0; i < n; i++) {
				uint32_t idx, len;
				if (thw__rd_u32(&s, &idx) || thw__rd_u32(&s, &len) ||
				    len > (size_t)(s.end - s.p))
					return;
				if (idx < m->nfuncs && !m->func_names[idx] && utf8_ok(s.p, len))
					m->func_names[idx] = th_strndup((const char *)s.p, len);
				s.p += len;
			}
		}
		r.p = next;
	}
}

static int sec_custom(dec *d)
{
	thw_module *m = d->m;
	char *name;
	uint32_t len;
	int rc = rd_name(d, &name, &len);
	if (rc)
		return rc;
	thw__custom *p = th_realloc(m->customs, (m->ncustoms + 1) * sizeof *p);
	if (!p) {
		th_free(name);
		return oom(d);
	}
	m->customs = p;
	p[m->ncustoms].name = name;
	p[m->ncustoms].off = (uint32_t)(d->r.p - d->r.base);
	p[m->ncustoms].len = (uint32_t)(d->r.end - d->r.p);
	m->ncustoms++;
	if (!strcmp(name, "name") && !m->func_names)
		parse_names(m, d->r.p, d->r.end);
	d->r.p = d->r.end;
	return 0;
}

/* Section ids in their required order (datacount, 12, sits before code). */
static int sec_rank(uint8_t id)
{
	static const int8_t rank[13] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10 };
	return rank[id];
}

static const char *const sec_names[13] = {
	"custom", "type", "import", "function", "table", "memory", "global",
	"export", "start", "element", "code", "data", "data count"
};

int thw__decode(thw_module *m, th_err *err)
{
	dec d = { .m = m, .err = err };
	d.r = (thw__rd){ .base = m->bin, .p = m->bin, .end = m->bin + m->len,
			 .sec = "header", .err = err };
	int rc = 0;
	static const uint8_t magic[4] = { 0, 'a', 's', 'm' };
	static const uint8_t version[4] = { 1, 0, 0, 0 };
	if (m->len < 4)
		return thw__rd_fail(&d.r, m->bin + m->len, "unexpected end");
	if (m->len < 4 || memcmp(m->bin, magic, 4))
		return thw__rd_fail(&d.r, m->bin, "magic header not detected");
	if (m->len < 8)
		return thw__rd_fail(&d.r, m->bin + m->len, "unexpected end");
	if (memcmp(m->bin + 4, version, 4))
		return thw__rd_fail(&d.r, m->bin + 4, "unknown binary version");
	d.r.p += 8;
	int last = 0;
	const uint8_t *file_end = d.r.end;
	while (d.r.p < file_end) {
		d.r.sec = "module";
		d.r.end = file_end;
		const uint8_t *at = d.r.p;
		uint8_t id;
		uint32_t size;
		if ((rc = thw__rd_u8(&d.r, &id)))
			goto out;
		if (id > 12) {
			rc = thw__rd_fail(&d.r, at, "malformed section id %u", id);
			goto out;
		}
		if ((rc = thw__rd_u32(&d.r, &size)))
			goto out;
		if (size > (size_t)(file_end - d.r.p)) {
			d.r.sec = sec_names[id];
			rc = thw__rd_fail(&d.r, at, "length out of bounds");
			goto out;
		}
		if (id != 0) {
			if (sec_rank(id) <= last) {
				d.r.sec = sec_names[id];
				rc = thw__rd_fail(&d.r, at, "unexpected content after last section");
				goto out;
			}
			last = sec_rank(id);
		}
		if (id == 10 || id == 11 || id == 9) {
			/* Everything before code is known now: size the
			 * declared-function bitmap for ref.func checks. */
		}
		if (!m->declared && id >= 4) {
			m->declared = th_calloc(m->nfuncs / 8 + 1, 1);
			if (!m->declared) {
				rc = oom(&d);
				goto out;
			}
		}
		/* Sections are read against the end of the binary, not their
		 * declared size (checked afterwards), as the reference
		 * decoder does: errors then read the same. */
		d.r.sec = sec_names[id];
		d.sec_end = d.r.p + size;
		d.r.end = id == 0 ? d.sec_end : file_end;
		const uint8_t *payload = d.r.p;
		switch (id) {
		case 0: rc = sec_custom(&d); break;
		case 1: rc = sec_type(&d); break;
		case 2: rc = sec_import(&d); break;
		case 3: rc = sec_function(&d); break;
		case 4: rc = sec_table(&d); break;
		case 5: rc = sec_memory(&d); break;
		case 6: rc = sec_global(&d); break;
		case 7: rc = sec_export(&d); break;
		case 8: rc = sec_start(&d); break;
		case 9: rc = sec_elem(&d); break;
		case 10:
			if (!m->declared) {
				m->declared = th_calloc(m->nfuncs / 8 + 1, 1);
				if (!m->declared) {
					rc = oom(&d);
					break;
				}
			}
			rc = sec_code(&d);
			break;
		case 11: rc = sec_data(&d); break;
		case 12: rc = sec_datacount(&d); break;
		}
		if (rc)
			goto out;
		if (d.r.p != payload + size) {
			rc = thw__rd_fail(&d.r, d.r.p, "section size mismatch");
			goto out;
		}
	}
	d.r.sec = "module";
	if (d.nfunc_decl && !d.has_codesec) {
		rc = thw__rd_fail(&d.r, file_end, "function and code section have inconsistent lengths");
		goto out;
	}
	if (m->has_datacount && m->datacount != m->ndatas) {
		rc = thw__rd_fail(&d.r, file_end, "data count and data section have inconsistent lengths");
		goto out;
	}
	if (m->needs_datacount && m->ndatas) {
		rc = thw__rd_fail(&d.r, file_end, "data count section required");
		goto out;
	}
	if (!m->declared && !(m->declared = th_calloc(m->nfuncs / 8 + 1, 1))) {
		rc = oom(&d);
		goto out;
	}
	if (d.invalid) {
		*err = d.verr;
		rc = TH_EINVAL;
		goto out;
	}
	m->code = d.cb.c;
	m->code_len = d.cb.n;
	d.cb.c = NULL;
out:
	th_free(d.cb.c);
	return rc;
}

void thw__module_free_contents(thw_module *m)
{
	for (uint32_t i = 0; i < m->ntypes; i++)
		th_free(m->types[i].p);
	th_free(m->types);
	for (uint32_t i = 0; i < m->nimports; i++) {
		th_free((char *)m->imports[i].module);
		th_free((char *)m->imports[i].name);
	}
	th_free(m->imports);
	th_free(m->func_types);
	th_free(m->tables);
	th_free(m->globals);
	for (uint32_t i = 0; i < m->nexports; i++)
		th_free((char *)m->exports[i].name);
	th_free(m->exports);
	for (uint32_t i = 0; i < m->nelems; i++)
		th_free(m->elems[i].items);
	th_free(m->elems);
	th_free(m->datas);
	th_free(m->codes);
	th_free(m->code);
	th_free(m->declared);
	if (m->func_names)
		for (uint32_t i = 0; i < m->nfuncs; i++)
			th_free(m->func_names[i]);
	th_free(m->func_names);
	for (uint32_t i = 0; i < m->ncustoms; i++)
		th_free((char *)m->customs[i].name);
	th_free(m->customs);
	th_free(m->bin);
}

bool thw__types_equal(const thw__ftype *a, const thw__ftype *b)
{
	return a == b || (a->np == b->np && a->nr == b->nr &&
			  !memcmp(a->p, b->p, (size_t)a->np + a->nr));
}
