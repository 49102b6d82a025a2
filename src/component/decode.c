/*
 * decode.c - the component binary format (Binary.md), the subset standard
 * tooling (wit-component, `jco new`) produces.
 *
 * Layout: preamble (\0asm, version 0x0d 0x00, layer 0x01 0x00), then any
 * number of sections, each `id:u8 size:u32 payload`. Definitions append to
 * index spaces in order: core functions/tables/memories/globals/instances/
 * types/modules and component functions/instances/types/components. Imports
 * and exports also add an index to their sort's space. Types are resolved
 * while decoding (they are values); everything that becomes a runtime
 * object (core instances, canon lower/lift) is only recorded, and
 * instance.c creates the objects in definition order.
 *
 * Supported: core modules (kept as byte ranges), core instances
 * (instantiate / inline exports), core types (function types; module types
 * are skipped), component types (all defined value types, functions,
 * instance and component types), nested components and their
 * instantiation (wit-component wraps each exported interface in one),
 * imports and exports (plain, versioned and attributed names), aliases
 * (core export, instance export, outer), canon lift/lower with utf8,
 * memory, realloc and post-return, custom sections (skipped). Rejected as
 * unsupported: resources and handles, async, streams/futures, error
 * contexts, other string encodings, start and value sections.
 *
 * Every length and count is checked against the bytes that remain before
 * anything is allocated; errors name the section and the byte offset.
 */
#include "component/decode.h"
#include "component/abi.h"

#define MAX_NESTING 8

typedef struct rd {
	const uint8_t *b;
	size_t pos, end;
	const char *sec;
	th_err *err;
	thcd_component *c;
	thcd_scope *s;
	int depth;
} rd;

static int failv(rd *r, int code, const char *fmt, va_list ap)
{
	if (r->err && r->err->code)
		return r->err->code;
	th_err_setv(r->err, code, fmt, ap);
	return th_err_prefix(r->err, "component: %s section at offset 0x%zx",
			     r->sec, r->pos);
}

TH_PRINTF(2, 3) static int fail(rd *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = failv(r, TH_EINVAL, fmt, ap);
	va_end(ap);
	return rc ? rc : TH_EINVAL;
}

TH_PRINTF(2, 3) static int unsupported(rd *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = failv(r, TH_EUNSUPPORTED, fmt, ap);
	va_end(ap);
	return rc ? rc : TH_EUNSUPPORTED;
}

static int oom(rd *r)
{
	return th_err_set(r->err, TH_ENOMEM, "out of memory decoding component");
}

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

static int u8(rd *r, uint8_t *out)
{
	*out = 0;
	if (r->pos >= r->end)
		return fail(r, "unexpected end");
	*out = r->b[r->pos++];
	return 0;
}

static int u32(rd *r, uint32_t *out)
{
	uint64_t x = 0;
	*out = 0;
	for (int shift = 0; shift < 35; shift += 7) {
		uint8_t b;
		TRY(u8(r, &b));
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (x > UINT32_MAX)
				return fail(r, "integer too large");
			*out = (uint32_t)x;
			return 0;
		}
	}
	return fail(r, "integer representation too long");
}

/* A vector count: every item takes at least one byte. */
static int count(rd *r, uint32_t *n)
{
	TRY(u32(r, n));
	if (*n > r->end - r->pos)
		return fail(r, "count %u exceeds the remaining bytes", *n);
	return 0;
}

static int name(rd *r, const char **out)
{
	uint32_t n;
	TRY(u32(r, &n));
	if (n > r->end - r->pos)
		return fail(r, "name of %u bytes runs past the end", n);
	const uint8_t *p = r->b + r->pos;
	if (memchr(p, 0, n))
		return fail(r, "name contains a NUL byte");
	if (!thca_utf8_valid(p, n))
		return fail(r, "malformed UTF-8 encoding");
	char *s = thct_strndup(&r->c->arena, (const char *)p, n);
	if (!s)
		return oom(r);
	r->pos += n;
	*out = s;
	return 0;
}

static int grow(rd *r, void **v, uint32_t *cap, uint32_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	if (n >= 1u << 20)
		return fail(r, "too many definitions");
	uint32_t nc = *cap ? *cap * 2 : 8;
	void *p = th_realloc(*v, (size_t)nc * elem);
	if (!p)
		return oom(r);
	*v = p;
	*cap = nc;
	return 0;
}

#define PUSH(r, vec, val)                                                     \
	do {                                                                  \
		TRY(grow((r), (void **)&(vec).v, &(vec).cap, (vec).n,         \
			 sizeof(*(vec).v)));                                  \
		(vec).v[(vec).n++] = (val);                                   \
	} while (0)

/* ---- types -------------------------------------------------------------- */

static int valtype(rd *r, thcd_scope *s, thc_type **out)
{
	/* s33: primitive types are negative one-byte numbers. */
	if (r->pos >= r->end)
		return fail(r, "unexpected end");
	uint8_t b = r->b[r->pos];
	if (b >= 0x40 && b <= 0x7f) {
		r->pos++;
		if (b < 0x73) {
			if (b == 0x64)
				return unsupported(r, "unsupported: error-context");
			return fail(r, "malformed value type 0x%02x", b);
		}
		*out = thct_prim((thc_kind)(THC_BOOL + (0x7f - b)));
		return 0;
	}
	uint32_t idx;
	TRY(u32(r, &idx));
	if (idx >= s->types.n)
		return fail(r, "unknown type %u", idx);
	thcd_tentry *t = &s->types.v[idx];
	if (t->kind == THCD_T_RESOURCE)
		return unsupported(r, "unsupported: resource type %u", idx);
	if (t->kind != THCD_T_VAL)
		return fail(r, "type %u is not a value type", idx);
	*out = t->val;
	return 0;
}

static int opt_valtype(rd *r, thcd_scope *s, thc_type **out)
{
	uint8_t b;
	TRY(u8(r, &b));
	*out = NULL;
	if (b == 0)
		return 0;
	if (b != 1)
		return fail(r, "malformed option flag 0x%02x", b);
	return valtype(r, s, out);
}

static int finish(rd *r, thc_type *t)
{
	if (thct_finish(&r->c->arena, t, r->err))
		return r->err && r->err->code == TH_ENOMEM
			       ? TH_ENOMEM
			       : th_err_prefix(r->err, "component: %s section at offset 0x%zx",
					       r->sec, r->pos);
	return 0;
}

static int defvaltype(rd *r, thcd_scope *s, uint8_t op, thc_type **out)
{
	thct_arena *a = &r->c->arena;
	thc_type *t = NULL;
	uint32_t n;
	switch (op) {
	case 0x72: /* record */
	case 0x71: /* variant */
		TRY(count(r, &n));
		if (!(t = thct_new(a, op == 0x72 ? THC_RECORD : THC_VARIANT, n, true)))
			return oom(r);
		for (uint32_t i = 0; i < n; i++) {
			TRY(name(r, &t->names[i]));
			if (op == 0x72) {
				TRY(valtype(r, s, &t->types[i]));
			} else {
				uint8_t z;
				TRY(opt_valtype(r, s, &t->types[i]));
				TRY(u8(r, &z));
				if (z != 0)
					return unsupported(r, "unsupported: variant case refinement");
			}
		}
		break;
	case 0x70:
		if (!(t = thct_new(a, THC_LIST, 1, false)))
			return oom(r);
		TRY(valtype(r, s, &t->types[0]));
		break;
	case 0x6f:
		TRY(count(r, &n));
		if (!(t = thct_new(a, THC_TUPLE, n, false)))
			return oom(r);
		for (uint32_t i = 0; i < n; i++)
			TRY(valtype(r, s, &t->types[i]));
		break;
	case 0x6e:
	case 0x6d:
		TRY(count(r, &n));
		if (!(t = thct_new(a, op == 0x6e ? THC_FLAGS : THC_ENUM, n, true)))
			return oom(r);
		for (uint32_t i = 0; i < n; i++)
			TRY(name(r, &t->names[i]));
		break;
	case 0x6b:
		if (!(t = thct_new(a, THC_OPTION, 2, false)))
			return oom(r);
		TRY(valtype(r, s, &t->types[1]));
		break;
	case 0x6a:
		if (!(t = thct_new(a, THC_RESULT, 2, false)))
			return oom(r);
		TRY(opt_valtype(r, s, &t->types[0]));
		TRY(opt_valtype(r, s, &t->types[1]));
		break;
	case 0x69:
	case 0x68:
		return unsupported(r, "unsupported: resource handle (own/borrow)");
	case 0x67:
		return unsupported(r, "unsupported: fixed-size list");
	case 0x66:
	case 0x65:
		return unsupported(r, "unsupported: stream/future (async)");
	case 0x63:
		return unsupported(r, "unsupported: map");
	default:
		return fail(r, "malformed type opcode 0x%02x", op);
	}
	TRY(finish(r, t));
	*out = t;
	return 0;
}

static int functype(rd *r, thcd_scope *s, thc_functype **out)
{
	thct_arena *a = &r->c->arena;
	thc_functype *f = thct_alloc(a, sizeof(*f));
	uint32_t n;
	if (!f)
		return oom(r);
	TRY(count(r, &n));
	f->nparams = n;
	if (n) {
		f->pnames = thct_alloc(a, n * sizeof(char *));
		f->ptypes = thct_alloc(a, n * sizeof(thc_type *));
		if (!f->pnames || !f->ptypes)
			return oom(r);
	}
	for (uint32_t i = 0; i < n; i++) {
		TRY(name(r, &f->pnames[i]));
		TRY(valtype(r, s, &f->ptypes[i]));
	}
	uint8_t b;
	TRY(u8(r, &b));
	if (b == 0x00) {
		TRY(valtype(r, s, &f->result));
	} else if (b == 0x01) {
		TRY(u8(r, &b));
		if (b != 0)
			return unsupported(r, "unsupported: named results");
	} else {
		return fail(r, "malformed result list 0x%02x", b);
	}
	*out = f;
	return 0;
}

static int scope_new(rd *r, thcd_scope *parent, thcd_scope **out)
{
	thcd_scope *s = th_calloc(1, sizeof(*s));
	if (!s)
		return oom(r);
	s->parent = parent;
	PUSH(r, r->c->scopes, s);
	*out = s;
	return 0;
}

static int deftype(rd *r, thcd_scope *s, thcd_tentry *out);
static int alias(rd *r, thcd_scope *s);

/* externtype; for function and eq-type exports also pushes the new type
 * index a declaration introduces. */
static int externtype(rd *r, thcd_scope *s, uint8_t *sort,
		      const thc_functype **func, thc_type **val, thcd_insttype **inst)
{
	uint8_t k, b;
	uint32_t i;
	*func = NULL;
	*val = NULL;
	*inst = NULL;
	TRY(u8(r, &k));
	*sort = k;
	switch (k) {
	case 0x00:
		TRY(u8(r, &b));
		if (b != 0x11)
			return fail(r, "malformed core extern type 0x%02x", b);
		TRY(u32(r, &i));
		return 0; /* core module type: index into core types, unchecked */
	case 0x01:
		TRY(u32(r, &i));
		if (i >= s->types.n || s->types.v[i].kind != THCD_T_FUNC)
			return fail(r, "type %u is not a function type", i);
		*func = s->types.v[i].func;
		return 0;
	case 0x02:
		return unsupported(r, "unsupported: value imports/exports");
	case 0x03: {
		TRY(u8(r, &b));
		thcd_tentry t = { 0 };
		if (b == 0x00) {
			TRY(u32(r, &i));
			if (i >= s->types.n)
				return fail(r, "unknown type %u", i);
			t = s->types.v[i];
			*val = t.val;
		} else if (b == 0x01) {
			t.kind = THCD_T_RESOURCE;
		} else {
			return fail(r, "malformed type bound 0x%02x", b);
		}
		PUSH(r, s->types, t);
		return 0;
	}
	case 0x04:
	case 0x05:
		TRY(u32(r, &i));
		if (i >= s->types.n ||
		    s->types.v[i].kind != (k == 0x04 ? THCD_T_COMP : THCD_T_INST))
			return fail(r, "type %u is not %s type", i,
				    k == 0x04 ? "a component" : "an instance");
		if (k == 0x05)
			*inst = s->types.v[i].inst;
		return 0;
	default:
		return fail(r, "malformed extern type 0x%02x", k);
	}
}

static int externname(rd *r, const char **out)
{
	uint8_t k;
	TRY(u8(r, &k));
	if (k > 0x02)
		return fail(r, "malformed name kind 0x%02x", k);
	TRY(name(r, out));
	if (k == 0x02) {
		uint32_t n;
		TRY(count(r, &n));
		for (uint32_t i = 0; i < n; i++) {
			uint8_t a;
			const char *ignored;
			TRY(u8(r, &a));
			if (a > 0x02)
				return fail(r, "malformed name attribute 0x%02x", a);
			TRY(name(r, &ignored));
		}
	}
	return 0;
}

/* Core types: function types are counted; module types are skipped
 * declaration by declaration. */
static int core_valtype(rd *r)
{
	uint8_t b;
	TRY(u8(r, &b));
	if (b == 0x7f || b == 0x7e || b == 0x7d || b == 0x7c || b == 0x70 || b == 0x6f)
		return 0;
	if (b == 0x7b)
		return unsupported(r, "unsupported: simd");
	return fail(r, "malformed core value type 0x%02x", b);
}

static int core_functype(rd *r)
{
	uint32_t n;
	for (int k = 0; k < 2; k++) {
		TRY(count(r, &n));
		for (uint32_t i = 0; i < n; i++)
			TRY(core_valtype(r));
	}
	return 0;
}

static int core_limits(rd *r)
{
	uint8_t f;
	uint32_t x;
	TRY(u8(r, &f));
	if (f > 0x03)
		return unsupported(r, "unsupported: limits flags 0x%02x", f);
	TRY(u32(r, &x));
	if (f & 1)
		TRY(u32(r, &x));
	return 0;
}

static int core_externtype(rd *r)
{
	uint8_t k, b;
	uint32_t x;
	TRY(u8(r, &k));
	switch (k) {
	case 0x00: return u32(r, &x);
	case 0x01: TRY(u8(r, &b)); return core_limits(r);
	case 0x02: return core_limits(r);
	case 0x03: TRY(core_valtype(r)); return u8(r, &b);
	default: return fail(r, "malformed core extern type 0x%02x", k);
	}
}

static int core_deftype(rd *r, int depth)
{
	uint8_t b;
	TRY(u8(r, &b));
	if (b == 0x60)
		return core_functype(r);
	if (b != 0x50 || depth > 0)
		return unsupported(r, "unsupported: core type 0x%02x", b);
	uint32_t n;
	TRY(count(r, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t d;
		const char *nm;
		uint32_t x;
		TRY(u8(r, &d));
		switch (d) {
		case 0x00:
			TRY(name(r, &nm));
			TRY(name(r, &nm));
			TRY(core_externtype(r));
			break;
		case 0x01:
			TRY(core_deftype(r, depth + 1));
			break;
		case 0x02:
			TRY(u8(r, &b));
			TRY(u8(r, &b));
			TRY(u32(r, &x));
			TRY(u32(r, &x));
			break;
		case 0x03:
			TRY(name(r, &nm));
			TRY(core_externtype(r));
			break;
		default:
			return fail(r, "malformed module type declaration 0x%02x", d);
		}
	}
	return 0;
}

/* Instance and component type declarations, in their own type scope. */
static int decls(rd *r, thcd_scope *outer, bool component, thcd_insttype **out)
{
	thcd_scope *s;
	TRY(scope_new(r, outer, &s));
	thcd_insttype *it = thct_alloc(&r->c->arena, sizeof(*it));
	uint32_t n;
	if (!it)
		return oom(r);
	TRY(count(r, &n));
	it->names = thct_alloc(&r->c->arena, (n ? n : 1) * sizeof(char *));
	it->funcs = thct_alloc(&r->c->arena, (n ? n : 1) * sizeof(void *));
	it->types = thct_alloc(&r->c->arena, (n ? n : 1) * sizeof(void *));
	if (!it->names || !it->funcs || !it->types)
		return oom(r);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t d, sort;
		const thc_functype *f;
		thc_type *v;
		thcd_insttype *ii;
		const char *nm;
		thcd_tentry t;
		TRY(u8(r, &d));
		switch (d) {
		case 0x00:
			TRY(core_deftype(r, 0));
			break;
		case 0x01:
			TRY(deftype(r, s, &t));
			PUSH(r, s->types, t);
			break;
		case 0x02:
			TRY(alias(r, s));
			break;
		case 0x03:
			if (!component)
				return fail(r, "import declaration in an instance type");
			TRY(externname(r, &nm));
			TRY(externtype(r, s, &sort, &f, &v, &ii));
			break;
		case 0x04:
			TRY(externname(r, &nm));
			TRY(externtype(r, s, &sort, &f, &v, &ii));
			it->names[it->n] = nm;
			it->funcs[it->n] = f;
			it->types[it->n] = v;
			it->n++;
			break;
		default:
			return fail(r, "malformed declaration 0x%02x", d);
		}
	}
	*out = it;
	return 0;
}

static int deftype(rd *r, thcd_scope *s, thcd_tentry *out)
{
	uint8_t op;
	memset(out, 0, sizeof(*out));
	if (++r->depth > THCT_MAX_DEPTH)
		return fail(r, "types nested too deeply");
	TRY(u8(r, &op));
	int rc = 0;
	if (op == 0x40) {
		out->kind = THCD_T_FUNC;
		rc = functype(r, s, &out->func);
	} else if (op == 0x43) {
		rc = unsupported(r, "unsupported: async function type");
	} else if (op == 0x41 || op == 0x42) {
		out->kind = op == 0x41 ? THCD_T_COMP : THCD_T_INST;
		rc = decls(r, s, op == 0x41, &out->inst);
	} else if (op == 0x3f) {
		rc = unsupported(r, "unsupported: resource type definition");
	} else if (op >= 0x73 && op <= 0x7f) {
		out->kind = THCD_T_VAL;
		out->val = thct_prim((thc_kind)(THC_BOOL + (0x7f - op)));
	} else {
		out->kind = THCD_T_VAL;
		rc = defvaltype(r, s, op, &out->val);
	}
	r->depth--;
	return rc;
}

/* ---- aliases ---------------------------------------------------------------- */

static int sort_of(rd *r, uint8_t *sort, uint8_t *csort)
{
	TRY(u8(r, sort));
	*csort = 0;
	if (*sort == 0x00)
		return u8(r, csort);
	if (*sort > 0x05)
		return fail(r, "malformed sort 0x%02x", *sort);
	return 0;
}

static const thcd_insttype *inst_type(thcd_scope *s, uint32_t i)
{
	for (int guard = 0; guard < 64 && i < s->insts.n; guard++) {
		const thcd_inst *in = &s->insts.v[i];
		if (in->how == THCD_I_IMPORT)
			return in->type;
		return NULL;
	}
	return NULL;
}

static int alias(rd *r, thcd_scope *s)
{
	uint8_t sort, csort, tgt;
	uint32_t i, idx;
	const char *nm;
	TRY(sort_of(r, &sort, &csort));
	TRY(u8(r, &tgt));
	if (tgt == 0x00) { /* export of a component instance */
		TRY(u32(r, &i));
		TRY(name(r, &nm));
		if (i >= s->insts.n)
			return fail(r, "unknown instance %u", i);
		const thcd_insttype *it = inst_type(s, i);
		uint32_t k = 0;
		if (it) {
			for (k = 0; k < it->n; k++)
				if (strcmp(it->names[k], nm) == 0)
					break;
			if (k == it->n)
				return fail(r, "instance %u has no export \"%s\"", i, nm);
		}
		if (sort == THCD_FUNC) {
			thcd_func f = { .how = THCD_F_ALIAS, .name = nm, .inst = i,
					.type = it ? it->funcs[k] : NULL };
			if (it && !f.type)
				return fail(r, "export \"%s\" of instance %u is not a function", nm, i);
			PUSH(r, s->funcs, f);
		} else if (sort == THCD_TYPE) {
			if (!it || !it->types[k])
				return unsupported(r, "unsupported: type alias \"%s\" (resource or non-imported instance)", nm);
			thcd_tentry t = { .kind = THCD_T_VAL, .val = it->types[k] };
			PUSH(r, s->types, t);
		} else if (sort == THCD_INST) {
			thcd_inst in = { .how = THCD_I_ALIAS, .name = nm, .comp = i };
			PUSH(r, s->insts, in);
		} else {
			return unsupported(r, "unsupported: alias of sort 0x%02x", sort);
		}
		return 0;
	}
	if (tgt == 0x01) { /* export of a core instance */
		TRY(u32(r, &i));
		TRY(name(r, &nm));
		if (sort != 0x00)
			return fail(r, "core export alias of a component sort");
		if (i >= s->cinsts.n)
			return fail(r, "unknown core instance %u", i);
		thcd_citem c = { .how = THCD_CI_ALIAS, .inst = i, .name = nm };
		switch (csort) {
		case THCD_CFUNC: PUSH(r, s->cfuncs, c); break;
		case THCD_CTABLE: PUSH(r, s->ctables, c); break;
		case THCD_CMEM: PUSH(r, s->cmems, c); break;
		case THCD_CGLOBAL: PUSH(r, s->cglobals, c); break;
		default: return unsupported(r, "unsupported: core alias of sort 0x%02x", csort);
		}
		return 0;
	}
	if (tgt == 0x02) { /* outer */
		TRY(u32(r, &i));
		TRY(u32(r, &idx));
		thcd_scope *o = s;
		for (uint32_t k = 0; k < i && o; k++)
			o = o->parent;
		if (!o)
			return fail(r, "outer alias count %u past the outermost scope", i);
		if (sort == THCD_TYPE) {
			if (idx >= o->types.n)
				return fail(r, "unknown outer type %u", idx);
			PUSH(r, s->types, o->types.v[idx]);
		} else if (sort == 0x00 && csort == THCD_CTYPE) {
			/* core types are not tracked */
		} else if (sort == THCD_COMP) {
			if (idx >= o->comps.n)
				return fail(r, "unknown outer component %u", idx);
			PUSH(r, s->comps, o->comps.v[idx]);
		} else {
			return unsupported(r, "unsupported: outer alias of sort 0x%02x", sort);
		}
		return 0;
	}
	return fail(r, "malformed alias target 0x%02x", tgt);
}

/* ---- sections ----------------------------------------------------------------- */

static int opts(rd *r, thcd_opts *o)
{
	uint32_t n;
	memset(o, 0, sizeof(*o));
	TRY(count(r, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t k;
		TRY(u8(r, &k));
		switch (k) {
		case 0x00: break;
		case 0x01: return unsupported(r, "unsupported: string-encoding=utf16");
		case 0x02: return unsupported(r, "unsupported: string-encoding=latin1+utf16");
		case 0x03: o->has_memory = true; TRY(u32(r, &o->memory)); break;
		case 0x04: o->has_realloc = true; TRY(u32(r, &o->realloc)); break;
		case 0x05: o->has_post = true; TRY(u32(r, &o->post)); break;
		case 0x06: return unsupported(r, "unsupported: async canon option");
		case 0x07: return unsupported(r, "unsupported: callback canon option");
		default: return fail(r, "malformed canon option 0x%02x", k);
		}
	}
	if (o->has_memory && o->memory >= r->s->cmems.n)
		return fail(r, "unknown core memory %u", o->memory);
	if (o->has_realloc && o->realloc >= r->s->cfuncs.n)
		return fail(r, "unknown core func %u (realloc)", o->realloc);
	if (o->has_post && o->post >= r->s->cfuncs.n)
		return fail(r, "unknown core func %u (post-return)", o->post);
	return 0;
}

static int sec_canon(rd *r, thcd_scope *s)
{
	uint32_t n;
	TRY(count(r, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t k, z;
		TRY(u8(r, &k));
		if (k == 0x00 || k == 0x01) {
			TRY(u8(r, &z));
			if (z != 0x00)
				return fail(r, "malformed canon sort 0x%02x", z);
		}
		if (k == 0x00) {
			thcd_func f = { .how = THCD_F_LIFT };
			uint32_t ft;
			TRY(u32(r, &f.core));
			if (f.core >= s->cfuncs.n)
				return fail(r, "unknown core func %u", f.core);
			TRY(opts(r, &f.opts));
			TRY(u32(r, &ft));
			if (ft >= s->types.n || s->types.v[ft].kind != THCD_T_FUNC)
				return fail(r, "type %u is not a function type", ft);
			f.type = s->types.v[ft].func;
			PUSH(r, s->funcs, f);
		} else if (k == 0x01) {
			thcd_citem c = { .how = THCD_CI_LOWER };
			TRY(u32(r, &c.func));
			if (c.func >= s->funcs.n)
				return fail(r, "unknown func %u", c.func);
			TRY(opts(r, &c.opts));
			PUSH(r, s->cfuncs, c);
		} else if (k >= 0x02 && k <= 0x04) {
			return unsupported(r, "unsupported: canon resource.%s",
					   k == 2 ? "new" : k == 3 ? "drop" : "rep");
		} else {
			return unsupported(r, "unsupported: canon built-in 0x%02x (async/threads)", k);
		}
	}
	return 0;
}

static int sortidx(rd *r, thcd_scope *s, thcd_export *e)
{
	TRY(sort_of(r, &e->sort, &e->csort));
	TRY(u32(r, &e->idx));
	uint32_t lim;
	switch (e->sort) {
	case 0x00:
		switch (e->csort) {
		case THCD_CFUNC: lim = s->cfuncs.n; break;
		case THCD_CTABLE: lim = s->ctables.n; break;
		case THCD_CMEM: lim = s->cmems.n; break;
		case THCD_CGLOBAL: lim = s->cglobals.n; break;
		case THCD_CMODULE: lim = s->modules.n; break;
		case THCD_CINST: lim = s->cinsts.n; break;
		case THCD_CTYPE: lim = UINT32_MAX; break;
		default: return fail(r, "malformed core sort 0x%02x", e->csort);
		}
		break;
	case THCD_FUNC: lim = s->funcs.n; break;
	case THCD_TYPE: lim = s->types.n; break;
	case THCD_COMP: lim = s->comps.n; break;
	case THCD_INST: lim = s->insts.n; break;
	default: return unsupported(r, "unsupported: value sort");
	}
	if (e->idx >= lim)
		return fail(r, "index %u out of range for its sort", e->idx);
	return 0;
}

static int sec_core_instance(rd *r, thcd_scope *s)
{
	uint32_t n;
	TRY(count(r, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t k;
		thcd_cinst ci = { 0 };
		TRY(u8(r, &k));
		if (k == 0x00) {
			ci.how = THCD_CINST_INSTANTIATE;
			TRY(u32(r, &ci.module));
			if (ci.module >= s->modules.n)
				return fail(r, "unknown core module %u", ci.module);
		} else if (k == 0x01) {
			ci.how = THCD_CINST_INLINE;
		} else {
			return fail(r, "malformed core instance 0x%02x", k);
		}
		TRY(count(r, &ci.n));
		ci.items = thct_alloc(&r->c->arena, (ci.n ? ci.n : 1) * sizeof(thcd_export));
		if (!ci.items)
			return oom(r);
		for (uint32_t j = 0; j < ci.n; j++) {
			thcd_export *e = &ci.items[j];
			TRY(name(r, &e->name));
			if (k == 0x00) {
				uint8_t b;
				TRY(u8(r, &b));
				if (b != THCD_CINST)
					return fail(r, "core instantiate argument of sort 0x%02x", b);
				TRY(u32(r, &e->idx));
				e->csort = THCD_CINST;
				if (e->idx >= s->cinsts.n)
					return fail(r, "unknown core instance %u", e->idx);
			} else {
				TRY(u8(r, &e->csort));
				TRY(u32(r, &e->idx));
				uint32_t lim = e->csort == THCD_CFUNC ? s->cfuncs.n
					     : e->csort == THCD_CTABLE ? s->ctables.n
					     : e->csort == THCD_CMEM ? s->cmems.n
					     : e->csort == THCD_CGLOBAL ? s->cglobals.n : 0;
				if (e->idx >= lim)
					return fail(r, "core export \"%s\": index %u out of range",
						    e->name, e->idx);
			}
		}
		PUSH(r, s->cinsts, ci);
	}
	return 0;
}

static int sec_instance(rd *r, thcd_scope *s)
{
	uint32_t n;
	TRY(count(r, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t k;
		thcd_inst in = { 0 };
		TRY(u8(r, &k));
		if (k == 0x00) {
			in.how = THCD_I_INSTANTIATE;
			TRY(u32(r, &in.comp));
			if (in.comp >= s->comps.n)
				return fail(r, "unknown component %u", in.comp);
		} else if (k == 0x01) {
			in.how = THCD_I_INLINE;
		} else {
			return fail(r, "malformed instance 0x%02x", k);
		}
		TRY(count(r, &in.n));
		in.items = thct_alloc(&r->c->arena, (in.n ? in.n : 1) * sizeof(thcd_export));
		if (!in.items)
			return oom(r);
		for (uint32_t j = 0; j < in.n; j++) {
			if (k == 0x00)
				TRY(name(r, &in.items[j].name));
			else
				TRY(externname(r, &in.items[j].name));
			TRY(sortidx(r, s, &in.items[j]));
		}
		PUSH(r, s->insts, in);
	}
	return 0;
}

static int sec_import(rd *r, thcd_scope *s)
{
	uint32_t n;
	TRY(count(r, &n));
	for (uint32_t i = 0; i < n; i++) {
		const char *nm;
		uint8_t sort;
		const thc_functype *f;
		thc_type *v;
		thcd_insttype *it;
		TRY(externname(r, &nm));
		TRY(externtype(r, s, &sort, &f, &v, &it));
		thcd_export rec = { .name = nm, .sort = sort };
		if (sort == 0x05) {
			thcd_inst in = { .how = THCD_I_IMPORT, .name = nm, .type = it };
			rec.idx = s->insts.n;
			PUSH(r, s->insts, in);
		} else if (sort == 0x01) {
			thcd_func fn = { .how = THCD_F_IMPORT, .name = nm, .type = f };
			rec.idx = s->funcs.n;
			PUSH(r, s->funcs, fn);
		} else if (sort == 0x03) {
			rec.idx = s->types.n - 1;
		} else {
			return unsupported(r, "unsupported: import \"%s\" of sort 0x%02x", nm, sort);
		}
		PUSH(r, s->imports, rec);
	}
	return 0;
}

static int sec_export(rd *r, thcd_scope *s)
{
	uint32_t n;
	TRY(count(r, &n));
	for (uint32_t i = 0; i < n; i++) {
		thcd_export e;
		uint8_t has;
		TRY(externname(r, &e.name));
		TRY(sortidx(r, s, &e));
		TRY(u8(r, &has));
		if (has == 0x01) {
			uint8_t sort;
			const thc_functype *f;
			thc_type *v;
			thcd_insttype *it;
			uint32_t before = s->types.n;
			TRY(externtype(r, s, &sort, &f, &v, &it));
			s->types.n = before; /* the export adds the index below */
		} else if (has != 0x00) {
			return fail(r, "malformed export type flag 0x%02x", has);
		}
		PUSH(r, s->exports, e);
		/* An export adds an index aliasing what it exports. */
		switch (e.sort) {
		case THCD_FUNC: PUSH(r, s->funcs, s->funcs.v[e.idx]); break;
		case THCD_INST: PUSH(r, s->insts, s->insts.v[e.idx]); break;
		case THCD_TYPE: PUSH(r, s->types, s->types.v[e.idx]); break;
		case THCD_COMP: PUSH(r, s->comps, s->comps.v[e.idx]); break;
		case 0x00:
			if (e.csort != THCD_CMODULE)
				return fail(r, "export of a core sort other than module");
			PUSH(r, s->modules, s->modules.v[e.idx]);
			PUSH(r, s->module_lens, s->module_lens.v[e.idx]);
			break;
		default:
			break;
		}
	}
	return 0;
}

static const char *sec_names[] = {
	"custom", "core module", "core instance", "core type", "component",
	"instance", "alias", "type", "canon", "start", "import", "export", "value",
};

static int component(rd *r, thcd_scope *s);

static int section(rd *r, thcd_scope *s, uint8_t id)
{
	uint32_t n;
	switch (id) {
	case 0: {
		const char *nm;
		TRY(name(r, &nm));
		r->pos = r->end;
		return 0;
	}
	case 1:
		if (s->parent)
			return unsupported(r, "unsupported: core module inside a nested component");
		PUSH(r, s->modules, (uint32_t)r->pos);
		PUSH(r, s->module_lens, (uint32_t)(r->end - r->pos));
		r->pos = r->end;
		return 0;
	case 2:
		if (s->parent)
			return unsupported(r, "unsupported: core instance inside a nested component");
		return sec_core_instance(r, s);
	case 3:
		TRY(count(r, &n));
		for (uint32_t i = 0; i < n; i++)
			TRY(core_deftype(r, 0));
		return 0;
	case 4: {
		thcd_scope *ns;
		if (r->depth >= MAX_NESTING)
			return fail(r, "components nested too deeply");
		TRY(scope_new(r, s, &ns));
		rd sub = *r;
		sub.depth++;
		sub.s = ns;
		TRY(component(&sub, ns));
		r->pos = sub.pos;
		PUSH(r, s->comps, ns);
		return 0;
	}
	case 5: return sec_instance(r, s);
	case 6:
		TRY(count(r, &n));
		for (uint32_t i = 0; i < n; i++)
			TRY(alias(r, s));
		return 0;
	case 7:
		TRY(count(r, &n));
		for (uint32_t i = 0; i < n; i++) {
			thcd_tentry t;
			TRY(deftype(r, s, &t));
			PUSH(r, s->types, t);
		}
		return 0;
	case 8: return sec_canon(r, s);
	case 9: return unsupported(r, "unsupported: start function");
	case 10: return sec_import(r, s);
	case 11: return sec_export(r, s);
	case 12: return unsupported(r, "unsupported: value definitions");
	default: return fail(r, "unknown section id %u", id);
	}
}

/* Decodes preamble and sections from r->pos to r->end. */
static int component(rd *r, thcd_scope *s)
{
	static const uint8_t pre[8] = { 0, 'a', 's', 'm', 0x0d, 0, 0x01, 0 };
	r->sec = "preamble";
	if (r->end - r->pos < 8 || memcmp(r->b + r->pos, pre, 4) != 0)
		return fail(r, "not a WebAssembly binary (bad magic)");
	if (memcmp(r->b + r->pos + 4, pre + 4, 4) != 0)
		return fail(r, "not a component (version/layer %02x %02x %02x %02x)",
			    r->b[r->pos + 4], r->b[r->pos + 5], r->b[r->pos + 6],
			    r->b[r->pos + 7]);
	r->pos += 8;
	size_t end = r->end;
	while (r->pos < end) {
		uint8_t id;
		uint32_t size;
		r->sec = "section header";
		r->end = end;
		TRY(u8(r, &id));
		TRY(u32(r, &size));
		if (size > end - r->pos)
			return fail(r, "section of %u bytes runs past the end", size);
		if (id == 4) { /* nested: exactly its own bytes */
			r->sec = sec_names[4];
			size_t send = r->pos + size;
			r->end = send;
			TRY(section(r, s, id));
			if (r->pos != send)
				return fail(r, "section size mismatch");
			continue;
		}
		r->sec = id < TH_ARRAY_LEN(sec_names) ? sec_names[id] : "unknown";
		size_t send = r->pos + size;
		r->end = send;
		TRY(section(r, s, id));
		if (r->pos != send)
			return fail(r, "section size mismatch (%zu bytes left)", send - r->pos);
	}
	r->end = end;
	return 0;
}

int thcd_decode(const uint8_t *bytes, size_t len, thcd_component *out, th_err *err)
{
	memset(out, 0, sizeof(*out));
	out->bytes = bytes;
	out->len = len;
	rd r = { .b = bytes, .pos = 0, .end = len, .sec = "preamble", .err = err, .c = out };
	if (err)
		err->code = 0;
	TRY(scope_new(&r, NULL, &out->root));
	r.s = out->root;
	return component(&r, out->root);
}

void thcd_release(thcd_component *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->scopes.n; i++) {
		thcd_scope *s = c->scopes.v[i];
		th_free(s->types.v);
		th_free(s->funcs.v);
		th_free(s->insts.v);
		th_free(s->comps.v);
		th_free(s->cinsts.v);
		th_free(s->cfuncs.v);
		th_free(s->ctables.v);
		th_free(s->cmems.v);
		th_free(s->cglobals.v);
		th_free(s->modules.v);
		th_free(s->module_lens.v);
		th_free(s->exports.v);
		th_free(s->imports.v);
		th_free(s);
	}
	th_free(c->scopes.v);
	thct_arena_release(&c->arena);
	memset(c, 0, sizeof(*c));
}

/* ---- following exports --------------------------------------------------------- */

/* Where a nested scope's imports come from: the INSTANTIATE record's args,
 * in the parent scope under the parent's own environment. */
typedef struct env {
	const thcd_inst *inst;
	thcd_scope *pscope;
	const struct env *penv;
} env;

typedef struct ref {
	thcd_scope *s;
	const env *e;
	uint32_t idx;
} ref;

static int resolve_inst(const thcd_component *c, ref in, ref *out, int depth, th_err *err);

static const thcd_export *find_item(const thcd_export *items, uint32_t n, const char *nm)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(items[i].name, nm) == 0)
			return &items[i];
	return NULL;
}

/* The export `nm` of the instance `in` (already resolved to INLINE or
 * INSTANTIATE), as a ref in the scope where it is defined. */
static int inst_export(const thcd_component *c, ref in, const char *nm, ref *out,
		       uint8_t *sort, int depth, th_err *err)
{
	const thcd_inst *i = &in.s->insts.v[in.idx];
	if (i->how == THCD_I_INLINE) {
		const thcd_export *x = find_item(i->items, i->n, nm);
		if (!x)
			return th_err_set(err, TH_EINVAL, "component: instance has no export \"%s\"", nm);
		*out = (ref){ in.s, in.e, x->idx };
		*sort = x->sort;
		return 0;
	}
	if (i->how == THCD_I_INSTANTIATE) {
		thcd_scope *ns = in.s->comps.v[i->comp];
		const thcd_export *x = find_item(ns->exports.v, ns->exports.n, nm);
		if (!x)
			return th_err_set(err, TH_EINVAL, "component: nested component has no export \"%s\"", nm);
		env *e = thct_alloc((thct_arena *)&c->arena, sizeof(*e));
		if (!e)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		e->inst = i;
		e->pscope = in.s;
		e->penv = in.e;
		*out = (ref){ ns, e, x->idx };
		*sort = x->sort;
		return 0;
	}
	return th_err_set(err, TH_EUNSUPPORTED, "component: export \"%s\" is re-exported from an import", nm);
	(void)depth;
}

static int resolve_inst(const thcd_component *c, ref in, ref *out, int depth, th_err *err)
{
	if (depth > 64)
		return th_err_set(err, TH_EINVAL, "component: alias chain too long");
	const thcd_inst *i = &in.s->insts.v[in.idx];
	if (i->how == THCD_I_INLINE || i->how == THCD_I_INSTANTIATE) {
		*out = in;
		return 0;
	}
	if (i->how == THCD_I_IMPORT) {
		if (!in.e)
			return th_err_set(err, TH_EUNSUPPORTED, "component: export re-exports import \"%s\"", i->name);
		const thcd_export *a = find_item(in.e->inst->items, in.e->inst->n, i->name);
		if (!a || a->sort != THCD_INST)
			return th_err_set(err, TH_EINVAL, "component: instantiation lacks instance argument \"%s\"", i->name);
		return resolve_inst(c, (ref){ in.e->pscope, in.e->penv, a->idx }, out, depth + 1, err);
	}
	/* ALIAS: export `name` of instance `comp` */
	ref base, x;
	uint8_t sort;
	TRY(resolve_inst(c, (ref){ in.s, in.e, i->comp }, &base, depth + 1, err));
	TRY(inst_export(c, base, i->name, &x, &sort, depth, err));
	if (sort != THCD_INST)
		return th_err_set(err, TH_EINVAL, "component: \"%s\" is not an instance", i->name);
	return resolve_inst(c, x, out, depth + 1, err);
}

static int resolve_func(const thcd_component *c, ref f, const thcd_func **out, int depth, th_err *err)
{
	if (depth > 64)
		return th_err_set(err, TH_EINVAL, "component: alias chain too long");
	const thcd_func *fn = &f.s->funcs.v[f.idx];
	switch (fn->how) {
	case THCD_F_LIFT:
		if (f.s != c->root)
			return th_err_set(err, TH_EUNSUPPORTED, "component: canon lift inside a nested component");
		*out = fn;
		return 0;
	case THCD_F_IMPORT: {
		if (!f.e)
			return th_err_set(err, TH_EUNSUPPORTED, "component: export re-exports imported function \"%s\"", fn->name);
		const thcd_export *a = find_item(f.e->inst->items, f.e->inst->n, fn->name);
		if (!a || a->sort != THCD_FUNC)
			return th_err_set(err, TH_EINVAL, "component: instantiation lacks function argument \"%s\"", fn->name);
		return resolve_func(c, (ref){ f.e->pscope, f.e->penv, a->idx }, out, depth + 1, err);
	}
	default: {
		ref base, x;
		uint8_t sort;
		TRY(resolve_inst(c, (ref){ f.s, f.e, fn->inst }, &base, depth + 1, err));
		TRY(inst_export(c, base, fn->name, &x, &sort, depth, err));
		if (sort != THCD_FUNC)
			return th_err_set(err, TH_EINVAL, "component: \"%s\" is not a function", fn->name);
		return resolve_func(c, x, out, depth + 1, err);
	}
	}
}

int thcd_exports(const thcd_component *c, thcd_lifted **out, uint32_t *n, th_err *err)
{
	thcd_scope *root = c->root;
	uint32_t cap = 0, cnt = 0;
	thcd_lifted *v = NULL;
	int rc = 0;
	*out = NULL;
	*n = 0;
	for (uint32_t i = 0; i < root->exports.n; i++) {
		const thcd_export *x = &root->exports.v[i];
		const thcd_export *items = NULL;
		uint32_t nitems = 0;
		ref base = { root, NULL, x->idx };
		if (x->sort == THCD_INST) {
			if ((rc = resolve_inst(c, base, &base, 0, err)))
				goto fail;
			const thcd_inst *in = &base.s->insts.v[base.idx];
			if (in->how == THCD_I_INLINE) {
				items = in->items;
				nitems = in->n;
			} else {
				items = base.s->comps.v[in->comp]->exports.v;
				nitems = base.s->comps.v[in->comp]->exports.n;
			}
		} else if (x->sort != THCD_FUNC) {
			continue;
		}
		for (uint32_t k = 0; k < (x->sort == THCD_FUNC ? 1 : nitems); k++) {
			const thcd_func *lift;
			if (x->sort == THCD_FUNC) {
				rc = resolve_func(c, base, &lift, 0, err);
			} else {
				if (items[k].sort != THCD_FUNC)
					continue;
				ref fr;
				uint8_t sort;
				rc = inst_export(c, base, items[k].name, &fr, &sort, 0, err);
				if (!rc)
					rc = resolve_func(c, fr, &lift, 0, err);
			}
			if (rc) {
				th_err_prefix(err, "export \"%s\"", x->name);
				goto fail;
			}
			if (cnt == cap) {
				cap = cap ? cap * 2 : 16;
				thcd_lifted *nv = th_realloc(v, cap * sizeof(*v));
				if (!nv) {
					rc = th_err_set(err, TH_ENOMEM, "out of memory");
					goto fail;
				}
				v = nv;
			}
			v[cnt].iface = x->sort == THCD_FUNC ? "" : x->name;
			v[cnt].name = x->sort == THCD_FUNC ? x->name : items[k].name;
			v[cnt].lift = lift;
			cnt++;
		}
	}
	*out = v;
	*n = cnt;
	return 0;
fail:
	th_free(v);
	return rc;
}
