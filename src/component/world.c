/*
 * world.c - the WIT parser and the embedded theater:simple world.
 *
 * Tokens: identifiers ([a-z0-9-]+, optionally %-escaped), the punctuation
 * { } ( ) < > , ; : = . / @ * and "->", comments (// to end of line and
 * block comments). Each named type is one thc_type shared by every use,
 * type aliases resolve to their target, and `use iface.{a, b as c}` brings
 * another interface's named types into scope.
 */
#include <pthread.h>

#include "component/world.h"

/* wit/theater-simple.wit, NUL-terminated, placed here by the assembler. */
__asm__(".section .rodata\n"
	".balign 16\n"
	".hidden thcw_wit_text\n"
	".globl thcw_wit_text\n"
	"thcw_wit_text:\n"
	".incbin \"wit/theater-simple.wit\"\n"
	".byte 0\n"
	".previous\n");
extern const char thcw_wit_text[];

typedef struct ps {
	const char *s;
	size_t pos, len;
	thcw_world *w;
	th_err *err;
	char tok[128];
	int tlen;
	thcw_iface *cur;
	/* per-interface scope: names visible in the current interface */
	thcw_named *scope;
	uint32_t nscope, capscope;
} ps;

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

TH_PRINTF(2, 3) static int perr(ps *p, const char *fmt, ...)
{
	uint32_t line = 1, col = 1;
	for (size_t i = 0; i < p->pos && i < p->len; i++) {
		if (p->s[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	va_list ap;
	va_start(ap, fmt);
	th_err_setv(p->err, TH_EINVAL, fmt, ap);
	va_end(ap);
	return th_err_prefix(p->err, "wit:%u:%u", line, col);
}

static void skip(ps *p)
{
	for (;;) {
		while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
					   p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
			p->pos++;
		if (p->pos + 1 < p->len && p->s[p->pos] == '/' && p->s[p->pos + 1] == '/') {
			while (p->pos < p->len && p->s[p->pos] != '\n')
				p->pos++;
		} else if (p->pos + 1 < p->len && p->s[p->pos] == '/' && p->s[p->pos + 1] == '*') {
			p->pos += 2;
			while (p->pos + 1 < p->len && !(p->s[p->pos] == '*' && p->s[p->pos + 1] == '/'))
				p->pos++;
			p->pos = p->pos + 2 <= p->len ? p->pos + 2 : p->len;
		} else {
			return;
		}
	}
}

static bool idch(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Reads the next token into p->tok (empty at end of input). */
static int next(ps *p)
{
	skip(p);
	p->tlen = 0;
	p->tok[0] = 0;
	if (p->pos >= p->len)
		return 0;
	char c = p->s[p->pos];
	if (c == '-' && p->pos + 1 < p->len && p->s[p->pos + 1] == '>') {
		memcpy(p->tok, "->", 3);
		p->tlen = 2;
		p->pos += 2;
		return 0;
	}
	if (c == '%')
		p->pos++;
	if (p->pos < p->len && idch(p->s[p->pos]) && p->s[p->pos] != '-') {
		while (p->pos < p->len && idch(p->s[p->pos])) {
			if (p->tlen >= (int)sizeof(p->tok) - 1)
				return perr(p, "identifier too long");
			p->tok[p->tlen++] = p->s[p->pos++];
		}
		p->tok[p->tlen] = 0;
		return 0;
	}
	if (c && strchr("{}()<>,;:=./@*", c)) {
		p->tok[0] = c;
		p->tok[1] = 0;
		p->tlen = 1;
		p->pos++;
		return 0;
	}
	return perr(p, "unexpected character '%c'", c);
}

static bool is(ps *p, const char *t)
{
	return strcmp(p->tok, t) == 0;
}

static int expect(ps *p, const char *t)
{
	if (!is(p, t))
		return perr(p, "expected '%s', found '%s'", t, p->tlen ? p->tok : "end of input");
	return next(p);
}

static int ident(ps *p, const char **out)
{
	if (!p->tlen || !idch(p->tok[0]))
		return perr(p, "expected a name, found '%s'", p->tlen ? p->tok : "end of input");
	if (!(*out = thct_strndup(&p->w->arena, p->tok, (size_t)p->tlen)))
		return th_err_set(p->err, TH_ENOMEM, "out of memory");
	return next(p);
}

static int oom(ps *p)
{
	return th_err_set(p->err, TH_ENOMEM, "out of memory");
}

/* Growable arrays (th_realloc), released with the world. */
static int grow(ps *p, void **v, uint32_t n, size_t elem)
{
	if (n & (n - 1) && n > 8)
		return 0;
	if (n < 8 && n != 0)
		return 0;
	void *q = th_realloc(*v, (size_t)(n ? n * 2 : 8) * elem);
	if (!q)
		return oom(p);
	*v = q;
	return 0;
}

static thc_type *lookup(ps *p, const char *name)
{
	for (uint32_t i = p->nscope; i-- > 0;)
		if (strcmp(p->scope[i].name, name) == 0)
			return p->scope[i].type;
	return NULL;
}

static int bind(ps *p, const char *name, thc_type *t, bool own)
{
	if (lookup(p, name))
		return perr(p, "type '%s' defined twice", name);
	TRY(grow(p, (void **)&p->scope, p->nscope, sizeof(thcw_named)));
	p->scope[p->nscope++] = (thcw_named){ name, t };
	if (own) {
		thcw_iface *i = p->cur;
		TRY(grow(p, (void **)&i->types, i->ntypes, sizeof(thcw_named)));
		i->types[i->ntypes++] = (thcw_named){ name, t };
	}
	return 0;
}

static int type(ps *p, thc_type **out, int depth);

static int finish(ps *p, thc_type *t)
{
	if (thct_finish(&p->w->arena, t, p->err))
		return th_err_prefix(p->err, "wit");
	return 0;
}

static const struct { const char *name; thc_kind kind; } prim_names[] = {
	{ "bool", THC_BOOL }, { "s8", THC_S8 }, { "u8", THC_U8 }, { "s16", THC_S16 },
	{ "u16", THC_U16 }, { "s32", THC_S32 }, { "u32", THC_U32 }, { "s64", THC_S64 },
	{ "u64", THC_U64 }, { "f32", THC_F32 }, { "f64", THC_F64 },
	{ "float32", THC_F32 }, { "float64", THC_F64 }, { "char", THC_CHAR },
	{ "string", THC_STRING },
};

/* Type arguments: `<T, U, ...>` into ts (max n). */
static int targs(ps *p, thc_type **ts, uint32_t max, uint32_t *n, bool allow_blank, int depth)
{
	TRY(expect(p, "<"));
	*n = 0;
	for (;;) {
		if (*n == max)
			return perr(p, "too many type arguments");
		if (allow_blank && is(p, "_")) {
			ts[(*n)++] = NULL;
			TRY(next(p));
		} else {
			TRY(type(p, &ts[(*n)++], depth + 1));
		}
		if (is(p, ">"))
			return next(p);
		TRY(expect(p, ","));
	}
}

static int type(ps *p, thc_type **out, int depth)
{
	if (depth > THCT_MAX_DEPTH)
		return perr(p, "type nested too deeply");
	for (size_t i = 0; i < TH_ARRAY_LEN(prim_names); i++)
		if (is(p, prim_names[i].name)) {
			*out = thct_prim(prim_names[i].kind);
			return next(p);
		}
	thct_arena *a = &p->w->arena;
	thc_type *ts[64];
	uint32_t n;
	thc_type *t;
	if (is(p, "list") || is(p, "option")) {
		bool list = is(p, "list");
		TRY(next(p));
		TRY(targs(p, ts, 1, &n, false, depth));
		if (!(t = thct_new(a, list ? THC_LIST : THC_OPTION, list ? 1 : 2, false)))
			return oom(p);
		t->types[list ? 0 : 1] = ts[0];
	} else if (is(p, "tuple")) {
		TRY(next(p));
		TRY(targs(p, ts, 64, &n, false, depth));
		if (!(t = thct_new(a, THC_TUPLE, n, false)))
			return oom(p);
		memcpy(t->types, ts, n * sizeof(ts[0]));
	} else if (is(p, "result")) {
		TRY(next(p));
		if (!(t = thct_new(a, THC_RESULT, 2, false)))
			return oom(p);
		if (is(p, "<")) {
			TRY(targs(p, ts, 2, &n, true, depth));
			t->types[0] = ts[0];
			t->types[1] = n > 1 ? ts[1] : NULL;
		}
	} else {
		const char *nm;
		size_t at = p->pos;
		TRY(ident(p, &nm));
		if (!(*out = lookup(p, nm))) {
			p->pos = at;
			return perr(p, "unknown type '%s'", nm);
		}
		return 0;
	}
	TRY(finish(p, t));
	*out = t;
	return 0;
}

/* record/variant/enum/flags NAME { ... } */
static int typedef_body(ps *p, thc_kind kind)
{
	const char *nm;
	const char *names[256];
	thc_type *ts[256];
	uint32_t n = 0;
	TRY(ident(p, &nm));
	TRY(expect(p, "{"));
	while (!is(p, "}")) {
		if (n == 256)
			return perr(p, "too many cases");
		ts[n] = NULL;
		TRY(ident(p, &names[n]));
		if (kind == THC_RECORD) {
			TRY(expect(p, ":"));
			TRY(type(p, &ts[n], 1));
		} else if (kind == THC_VARIANT && is(p, "(")) {
			TRY(next(p));
			TRY(type(p, &ts[n], 1));
			TRY(expect(p, ")"));
		}
		n++;
		if (!is(p, "}"))
			TRY(expect(p, ","));
	}
	TRY(next(p));
	thc_type *t = thct_new(&p->w->arena, kind, n, true);
	if (!t)
		return oom(p);
	for (uint32_t i = 0; i < n; i++) {
		t->names[i] = names[i];
		t->types[i] = ts[i];
	}
	TRY(finish(p, t));
	return bind(p, nm, t, true);
}

static thcw_iface *find_iface(ps *p, const char *name)
{
	for (uint32_t i = 0; i < p->w->nifaces; i++)
		if (strcmp(p->w->ifaces[i]->name, name) == 0)
			return p->w->ifaces[i];
	return NULL;
}

static int func(ps *p, const char *nm)
{
	thct_arena *a = &p->w->arena;
	const char *pn[64];
	thc_type *pt[64];
	uint32_t n = 0;
	TRY(expect(p, "func"));
	TRY(expect(p, "("));
	while (!is(p, ")")) {
		if (n == 64)
			return perr(p, "too many parameters");
		TRY(ident(p, &pn[n]));
		TRY(expect(p, ":"));
		TRY(type(p, &pt[n], 1));
		n++;
		if (!is(p, ")"))
			TRY(expect(p, ","));
	}
	TRY(next(p));
	thc_functype *f = thct_alloc(a, sizeof(*f));
	if (!f)
		return oom(p);
	f->nparams = n;
	if (n) {
		f->pnames = thct_alloc(a, n * sizeof(char *));
		f->ptypes = thct_alloc(a, n * sizeof(thc_type *));
		if (!f->pnames || !f->ptypes)
			return oom(p);
		memcpy(f->pnames, pn, n * sizeof(char *));
		memcpy(f->ptypes, pt, n * sizeof(thc_type *));
	}
	if (is(p, "->")) {
		TRY(next(p));
		TRY(type(p, &f->result, 1));
	}
	TRY(expect(p, ";"));
	thcw_iface *i = p->cur;
	for (uint32_t k = 0; k < i->nfuncs; k++)
		if (strcmp(i->funcs[k].name, nm) == 0)
			return perr(p, "function '%s' defined twice", nm);
	TRY(grow(p, (void **)&i->funcs, i->nfuncs, sizeof(thcw_func)));
	i->funcs[i->nfuncs++] = (thcw_func){ nm, f };
	return 0;
}

static int use(ps *p)
{
	const char *from, *nm, *as;
	TRY(ident(p, &from));
	thcw_iface *src = find_iface(p, from);
	if (!src)
		return perr(p, "unknown interface '%s' (define it before use)", from);
	TRY(expect(p, "."));
	TRY(expect(p, "{"));
	while (!is(p, "}")) {
		TRY(ident(p, &nm));
		as = nm;
		if (is(p, "as")) {
			TRY(next(p));
			TRY(ident(p, &as));
		}
		thc_type *t = NULL;
		for (uint32_t k = 0; k < src->ntypes; k++)
			if (strcmp(src->types[k].name, nm) == 0)
				t = src->types[k].type;
		if (!t)
			return perr(p, "interface '%s' has no type '%s'", from, nm);
		TRY(bind(p, as, t, false));
		if (!is(p, "}"))
			TRY(expect(p, ","));
	}
	TRY(next(p));
	return expect(p, ";");
}

static int interface(ps *p)
{
	const char *nm;
	TRY(ident(p, &nm));
	if (find_iface(p, nm))
		return perr(p, "interface '%s' defined twice", nm);
	thcw_iface *i = thct_alloc(&p->w->arena, sizeof(*i));
	if (!i)
		return oom(p);
	i->name = nm;
	size_t ql = strlen(p->w->package ? p->w->package : "") + strlen(nm) + 2;
	char *q = thct_alloc(&p->w->arena, ql);
	if (!q)
		return oom(p);
	snprintf(q, ql, "%s/%s", p->w->package ? p->w->package : "", nm);
	i->qname = q;
	p->cur = i;
	p->nscope = 0;
	TRY(expect(p, "{"));
	while (!is(p, "}")) {
		if (!p->tlen)
			return perr(p, "unexpected end of input in interface '%s'", nm);
		if (is(p, "use")) {
			TRY(next(p));
			TRY(use(p));
		} else if (is(p, "type")) {
			const char *tn;
			thc_type *t;
			TRY(next(p));
			TRY(ident(p, &tn));
			TRY(expect(p, "="));
			TRY(type(p, &t, 1));
			TRY(expect(p, ";"));
			TRY(bind(p, tn, t, true));
		} else if (is(p, "record") || is(p, "variant") || is(p, "enum") || is(p, "flags")) {
			thc_kind k = is(p, "record") ? THC_RECORD : is(p, "variant") ? THC_VARIANT
				     : is(p, "enum") ? THC_ENUM : THC_FLAGS;
			TRY(next(p));
			TRY(typedef_body(p, k));
		} else if (is(p, "resource")) {
			return perr(p, "resources are not supported");
		} else {
			const char *fn;
			TRY(ident(p, &fn));
			TRY(expect(p, ":"));
			TRY(func(p, fn));
		}
	}
	TRY(next(p));
	TRY(grow(p, (void **)&p->w->ifaces, p->w->nifaces, sizeof(void *)));
	p->w->ifaces[p->w->nifaces++] = i;
	return 0;
}

static int world(ps *p, bool selected)
{
	thcw_world *w = p->w;
	TRY(expect(p, "{"));
	if (selected)
		w->nimports = w->nexports = 0;
	while (!is(p, "}")) {
		bool imp = is(p, "import");
		if (!imp && !is(p, "export"))
			return perr(p, "expected import or export, found '%s'", p->tok);
		TRY(next(p));
		const char *nm;
		TRY(ident(p, &nm));
		if (is(p, ":"))
			return perr(p, "only interface imports/exports are supported in a world");
		TRY(expect(p, ";"));
		thcw_iface *i = find_iface(p, nm);
		if (!i)
			return perr(p, "unknown interface '%s'", nm);
		if (!selected)
			continue;
		if (imp) {
			TRY(grow(p, (void **)&w->imports, w->nimports, sizeof(void *)));
			w->imports[w->nimports++] = i;
		} else {
			TRY(grow(p, (void **)&w->exports, w->nexports, sizeof(void *)));
			w->exports[w->nexports++] = i;
		}
	}
	return next(p);
}

int thcw_parse(const char *src, size_t len, const char *wname, thcw_world *w, th_err *err)
{
	memset(w, 0, sizeof(*w));
	ps p = { .s = src, .len = len, .w = w, .err = err };
	int rc;
	bool found = false;
	if ((rc = next(&p)))
		goto out;
	if (is(&p, "package")) {
		char pk[256];
		size_t n = 0;
		if ((rc = next(&p)))
			goto out;
		while (p.tlen && !is(&p, ";") && n + (size_t)p.tlen < sizeof(pk) - 1) {
			memcpy(pk + n, p.tok, (size_t)p.tlen);
			n += (size_t)p.tlen;
			if ((rc = next(&p)))
				goto out;
		}
		if ((rc = expect(&p, ";")))
			goto out;
		if (!(w->package = thct_strndup(&w->arena, pk, n))) {
			rc = oom(&p);
			goto out;
		}
	}
	while (p.tlen) {
		if (is(&p, "interface")) {
			if ((rc = next(&p)) || (rc = interface(&p)))
				goto out;
		} else if (is(&p, "world")) {
			const char *nm;
			if ((rc = next(&p)) || (rc = ident(&p, &nm)))
				goto out;
			bool sel = !wname || strcmp(nm, wname) == 0;
			found |= sel;
			if ((rc = world(&p, sel)))
				goto out;
		} else {
			rc = perr(&p, "expected interface or world, found '%s'", p.tok);
			goto out;
		}
	}
	if (!found)
		rc = th_err_set(err, TH_ENOTFOUND, "wit: no world '%s'", wname ? wname : "");
out:
	th_free(p.scope);
	if (rc)
		thcw_release(w);
	return rc;
}

void thcw_release(thcw_world *w)
{
	if (!w)
		return;
	for (uint32_t i = 0; i < w->nifaces; i++) {
		th_free(w->ifaces[i]->types);
		th_free(w->ifaces[i]->funcs);
	}
	th_free(w->ifaces);
	th_free(w->imports);
	th_free(w->exports);
	thct_arena_release(&w->arena);
	memset(w, 0, sizeof(*w));
}

static pthread_mutex_t theater_lock = PTHREAD_MUTEX_INITIALIZER;
static thcw_world theater_world;
static bool theater_ready;

const thcw_world *thcw_theater(th_err *err)
{
	pthread_mutex_lock(&theater_lock);
	int rc = 0;
	if (!theater_ready) {
		rc = thcw_parse(thcw_wit_text, strlen(thcw_wit_text), "actor-world",
				&theater_world, err);
		theater_ready = rc == 0;
	}
	pthread_mutex_unlock(&theater_lock);
	return rc ? NULL : &theater_world;
}

const thcw_iface *thcw_iface_of(const thcw_world *w, bool exported, const char *qname)
{
	uint32_t n = exported ? w->nexports : w->nimports;
	thcw_iface **v = exported ? w->exports : w->imports;
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(v[i]->qname, qname) == 0)
			return v[i];
	return NULL;
}

const thc_functype *thcw_func_of(const thcw_iface *i, const char *name)
{
	for (uint32_t k = 0; k < i->nfuncs; k++)
		if (strcmp(i->funcs[k].name, name) == 0)
			return i->funcs[k].type;
	return NULL;
}
