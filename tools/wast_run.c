/*
 * wast_run.c - runs one WebAssembly spec-test script, as converted by wabt's
 * wast2json, against the engine's public API (include/theater/wasm.h).
 *
 *   wast_run [-v] [-n MAX_SHOWN] [-s LINE]... SCRIPT.json LABEL
 *
 * The JSON file lists commands (module, register, action, assert_return,
 * assert_trap, assert_exhaustion, assert_invalid, assert_malformed,
 * assert_unlinkable, assert_uninstantiable); the .wasm files it names sit next
 * to it. Every command counts as one test: passed, failed, or skipped (text
 * format modules, which only the reference interpreter's parser can judge,
 * and the commands at the lines given with -s: tests/spec/skip-commands.txt
 * says why each one is excused).
 *
 * Output: one line "PASS LABEL p/t" or "FAIL LABEL p/t" (t = run commands,
 * skipped ones mentioned in parentheses), then the first few failures as
 * "  line N: <command>: <why>", and last a machine line for tests/spec/run.sh:
 * "counts P F S". Exit status 0 when nothing failed, 1 otherwise.
 *
 * The harness follows the reference interpreter's (interpreter/script/run.ml):
 * one realm per script; `spectest` provides print*, global_i32/i64/f32/f64
 * (666, 666.6), a funcref table of 10..20 elements and a memory of 1..2
 * pages; `register` makes a module's exports importable under a name. Error
 * and trap messages match when the expected text occurs in ours (the engine
 * prefixes its messages with "<section> section at offset 0x..: ").
 *
 * An engine bug must not hang or kill the whole run: each invocation gets a
 * fuel budget (FUEL, trapping), the realm has explicit limits, and a fatal
 * signal prints the line of the command that was running before dying
 * (run.sh also wraps each script in `timeout`).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <unistd.h>

#include "base/base.h"
#include "theater/wasm.h"

/* Instructions per invoked command: far above what any spec command needs
 * (the heaviest run a few million) and small enough to end a runaway loop in
 * seconds. */
#define FUEL 400000000ull

/* ---- Minimal JSON reader ---------------------------------------------- */

/* A parsed JSON value. Nodes live in one array and refer to each other by
 * index so the array may grow while parsing. Strings are unescaped to UTF-8
 * and carry their length (field names may contain NUL). */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jnode {
	int type;
	int first, next;   /* first child (array item / object member), sibling */
	char *key;         /* member name when inside an object */
	size_t key_len;
	char *str;         /* J_STR, J_NUM (text), J_BOOL ("true"/"false") */
	size_t str_len;
} jnode;

typedef struct jdoc {
	jnode *nodes;
	int n, cap;
	const char *p, *end;
	char err[160];
} jdoc;

static int j_new(jdoc *d, int type)
{
	if (d->n == d->cap) {
		int cap = d->cap ? d->cap * 2 : 1024;
		jnode *nn = th_realloc(d->nodes, (size_t)cap * sizeof *nn);
		if (!nn) {
			snprintf(d->err, sizeof d->err, "out of memory");
			return -1;
		}
		d->nodes = nn;
		d->cap = cap;
	}
	jnode *x = &d->nodes[d->n];
	memset(x, 0, sizeof *x);
	x->type = type;
	x->first = x->next = -1;
	return d->n++;
}

static void j_ws(jdoc *d)
{
	while (d->p < d->end &&
	       (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
		d->p++;
}

static int j_fail(jdoc *d, const char *what)
{
	if (!d->err[0])
		snprintf(d->err, sizeof d->err, "%s", what);
	return -1;
}

static int j_hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Parse a string literal at d->p (on the opening quote). The unescaped text
 * is never longer than the escaped one, so one allocation suffices. */
static int j_string(jdoc *d, char **out, size_t *out_len)
{
	const char *s = ++d->p;
	while (d->p < d->end && *d->p != '"') {
		if (*d->p == '\\')
			d->p++;
		d->p++;
	}
	if (d->p >= d->end)
		return j_fail(d, "unterminated string");
	size_t raw = (size_t)(d->p - s);
	char *buf = th_malloc(raw + 1);
	if (!buf)
		return j_fail(d, "out of memory");
	size_t o = 0;
	for (const char *q = s; q < d->p; q++) {
		if (*q != '\\') {
			buf[o++] = *q;
			continue;
		}
		q++;
		switch (*q) {
		case 'n': buf[o++] = '\n'; break;
		case 't': buf[o++] = '\t'; break;
		case 'r': buf[o++] = '\r'; break;
		case 'b': buf[o++] = '\b'; break;
		case 'f': buf[o++] = '\f'; break;
		case 'u': {
			uint32_t cp, lo;
			if (d->p - q < 5 || j_hex4(q + 1, &cp) != 0)
				goto bad;
			q += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && d->p - q >= 7 &&
			    q[1] == '\\' && q[2] == 'u' && j_hex4(q + 3, &lo) == 0 &&
			    lo >= 0xDC00 && lo < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				q += 6;
			}
			/* Never longer than the 6+ escaped bytes it replaces. */
			o += utf8_put(buf + o, cp);
			break;
		}
		default: buf[o++] = *q; break; /* \" \\ \/ */
		}
	}
	buf[o] = 0;
	d->p++;
	*out = buf;
	*out_len = o;
	return 0;
bad:
	th_free(buf);
	return j_fail(d, "bad \\u escape");
}

static int j_value(jdoc *d, int depth)
{
	if (depth > 64)
		return j_fail(d, "nesting too deep");
	j_ws(d);
	if (d->p >= d->end)
		return j_fail(d, "unexpected end of JSON");
	char c = *d->p;
	int id, prev = -1;
	if (c == '{' || c == '[') {
		bool obj = c == '{';
		char close = obj ? '}' : ']';
		id = j_new(d, obj ? J_OBJ : J_ARR);
		if (id < 0)
			return -1;
		d->p++;
		j_ws(d);
		if (d->p < d->end && *d->p == close) {
			d->p++;
			return id;
		}
		for (;;) {
			char *key = NULL;
			size_t key_len = 0;
			if (obj) {
				j_ws(d);
				if (d->p >= d->end || *d->p != '"')
					return j_fail(d, "expected member name");
				if (j_string(d, &key, &key_len) != 0)
					return -1;
				j_ws(d);
				if (d->p >= d->end || *d->p != ':') {
					th_free(key);
					return j_fail(d, "expected ':'");
				}
				d->p++;
			}
			int ch = j_value(d, depth + 1);
			if (ch < 0) {
				th_free(key);
				return -1;
			}
			d->nodes[ch].key = key;
			d->nodes[ch].key_len = key_len;
			if (prev < 0)
				d->nodes[id].first = ch;
			else
				d->nodes[prev].next = ch;
			prev = ch;
			j_ws(d);
			if (d->p < d->end && *d->p == ',') {
				d->p++;
				continue;
			}
			if (d->p < d->end && *d->p == close) {
				d->p++;
				return id;
			}
			return j_fail(d, "expected ',' or closing bracket");
		}
	}
	if (c == '"') {
		char *s;
		size_t n;
		if (j_string(d, &s, &n) != 0)
			return -1;
		id = j_new(d, J_STR);
		if (id < 0) {
			th_free(s);
			return -1;
		}
		d->nodes[id].str = s;
		d->nodes[id].str_len = n;
		return id;
	}
	const char *s = d->p;
	while (d->p < d->end && (strchr("+-.eE", *d->p) ||
				 (*d->p >= '0' && *d->p <= '9') ||
				 (*d->p >= 'a' && *d->p <= 'z')))
		d->p++;
	size_t n = (size_t)(d->p - s);
	if (n == 0)
		return j_fail(d, "unexpected character");
	int type = J_NUM;
	if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)))
		type = J_BOOL;
	else if (n == 4 && !memcmp(s, "null", 4))
		type = J_NULL;
	id = j_new(d, type);
	if (id < 0)
		return -1;
	d->nodes[id].str = th_strndup(s, n);
	d->nodes[id].str_len = n;
	if (!d->nodes[id].str)
		return j_fail(d, "out of memory");
	return id;
}

static void j_free(jdoc *d)
{
	for (int i = 0; i < d->n; i++) {
		th_free(d->nodes[i].key);
		th_free(d->nodes[i].str);
	}
	th_free(d->nodes);
	d->nodes = NULL;
	d->n = d->cap = 0;
}

/* Member `key` of object `obj`, or -1. */
static int j_get(const jdoc *d, int obj, const char *key)
{
	if (obj < 0 || d->nodes[obj].type != J_OBJ)
		return -1;
	size_t kl = strlen(key);
	for (int c = d->nodes[obj].first; c >= 0; c = d->nodes[c].next)
		if (d->nodes[c].key_len == kl && !memcmp(d->nodes[c].key, key, kl))
			return c;
	return -1;
}

/* String member, or NULL. */
static const char *j_str(const jdoc *d, int obj, const char *key, size_t *len)
{
	int c = j_get(d, obj, key);
	if (c < 0 || d->nodes[c].type != J_STR)
		return NULL;
	if (len)
		*len = d->nodes[c].str_len;
	return d->nodes[c].str;
}

static long j_int(const jdoc *d, int obj, const char *key)
{
	int c = j_get(d, obj, key);
	if (c < 0 || d->nodes[c].type != J_NUM)
		return -1;
	return strtol(d->nodes[c].str, NULL, 10);
}

/* ---- Harness state ---------------------------------------------------- */

/* An importable namespace: a registered instance, or the spectest module. */
typedef struct ns {
	char *name;
	thw_instance *inst; /* NULL for spectest */
} ns;

/* A named module ("$M1") and the instance it made. */
typedef struct named {
	char *name;
	thw_instance *inst;
} named;

/* One spectest export. */
typedef struct stexport {
	const char *name;
	thw_extern ext;
} stexport;

typedef struct harness {
	const char *dir;      /* directory of the JSON file, for .wasm names */
	thw_realm *realm;
	thw_exec *exec;
	thw_instance *current;/* the last module instantiated, or NULL */
	ns *nss;
	size_t nns;
	named *names;
	size_t nnames;
	stexport st[16];
	size_t nst;
	char why[1024];       /* failure reason of the current command */
	bool verbose;
} harness;

static volatile sig_atomic_t g_line; /* current command, for crash reports */

static int fail(harness *h, const char *fmt, ...) TH_PRINTF(2, 3);
static int fail(harness *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->why, sizeof h->why, fmt, ap);
	va_end(ap);
	return -1;
}

static thw_hostret st_print(thw_caller *c, void *ctx, const thw_val *args,
			    thw_val *results)
{
	TH_UNUSED(c);
	TH_UNUSED(ctx);
	TH_UNUSED(args);
	TH_UNUSED(results);
	return THW_HOST_OK;
}

static int st_func(harness *h, const char *name, const uint8_t *params,
		   uint32_t np, th_err *err)
{
	thw_functype ft = { np, 0, params, NULL };
	stexport *x = &h->st[h->nst];
	x->name = name;
	x->ext.kind = THW_EXTERN_FUNC;
	if (thw_func_new_host(h->realm, &ft, st_print, NULL, name,
			      &x->ext.of.func, err) != 0)
		return -1;
	h->nst++;
	return 0;
}

static int st_global(harness *h, const char *name, thw_val v, th_err *err)
{
	stexport *x = &h->st[h->nst];
	x->name = name;
	x->ext.kind = THW_EXTERN_GLOBAL;
	if (thw_global_new(h->realm, v.type, false, v, &x->ext.of.global, err) != 0)
		return -1;
	h->nst++;
	return 0;
}

/* Build the spectest module's objects in the script's realm. */
static int spectest_init(harness *h, th_err *err)
{
	static const uint8_t p_i32[] = { THW_I32 }, p_i64[] = { THW_I64 },
			     p_f32[] = { THW_F32 }, p_f64[] = { THW_F64 },
			     p_i32_f32[] = { THW_I32, THW_F32 },
			     p_f64_f64[] = { THW_F64, THW_F64 };
	thw_val v;
	if (st_func(h, "print", NULL, 0, err) || st_func(h, "print_i32", p_i32, 1, err) ||
	    st_func(h, "print_i64", p_i64, 1, err) || st_func(h, "print_f32", p_f32, 1, err) ||
	    st_func(h, "print_f64", p_f64, 1, err) ||
	    st_func(h, "print_i32_f32", p_i32_f32, 2, err) ||
	    st_func(h, "print_f64_f64", p_f64_f64, 2, err))
		return -1;
	memset(&v, 0, sizeof v);
	v.type = THW_I32;
	v.of.i32 = 666;
	if (st_global(h, "global_i32", v, err))
		return -1;
	memset(&v, 0, sizeof v);
	v.type = THW_I64;
	v.of.i64 = 666;
	if (st_global(h, "global_i64", v, err))
		return -1;
	memset(&v, 0, sizeof v);
	v.type = THW_F32;
	v.of.f32 = 666.6f;
	if (st_global(h, "global_f32", v, err))
		return -1;
	memset(&v, 0, sizeof v);
	v.type = THW_F64;
	v.of.f64 = 666.6;
	if (st_global(h, "global_f64", v, err))
		return -1;

	stexport *x = &h->st[h->nst];
	thw_limits_range tl = { 10, 20, true };
	memset(&v, 0, sizeof v);
	v.type = THW_FUNCREF;
	x->name = "table";
	x->ext.kind = THW_EXTERN_TABLE;
	if (thw_table_new(h->realm, THW_FUNCREF, tl, v, &x->ext.of.table, err))
		return -1;
	h->nst++;

	x = &h->st[h->nst];
	thw_limits_range ml = { 1, 2, true };
	x->name = "memory";
	x->ext.kind = THW_EXTERN_MEMORY;
	if (thw_memory_new(h->realm, ml, &x->ext.of.memory, err))
		return -1;
	h->nst++;
	return 0;
}

static ns *ns_find(harness *h, const char *name, size_t len)
{
	/* Latest registration wins, as in the reference interpreter. */
	for (size_t i = h->nns; i-- > 0;)
		if (strlen(h->nss[i].name) == len && !memcmp(h->nss[i].name, name, len))
			return &h->nss[i];
	return NULL;
}

static int ns_add(harness *h, const char *name, thw_instance *inst)
{
	ns *nn = th_realloc(h->nss, (h->nns + 1) * sizeof *nn);
	if (!nn)
		return fail(h, "out of memory");
	h->nss = nn;
	nn[h->nns].name = th_strdup(name);
	nn[h->nns].inst = inst;
	if (!nn[h->nns].name)
		return fail(h, "out of memory");
	h->nns++;
	return 0;
}

static thw_instance *named_find(harness *h, const char *name)
{
	for (size_t i = h->nnames; i-- > 0;)
		if (!strcmp(h->names[i].name, name))
			return h->names[i].inst;
	return NULL;
}

static int named_add(harness *h, const char *name, thw_instance *inst)
{
	named *nn = th_realloc(h->names, (h->nnames + 1) * sizeof *nn);
	if (!nn)
		return fail(h, "out of memory");
	h->names = nn;
	nn[h->nnames].name = th_strdup(name);
	nn[h->nnames].inst = inst;
	if (!nn[h->nnames].name)
		return fail(h, "out of memory");
	h->nnames++;
	return 0;
}

/* Print a name that may hold any bytes, for messages. */
static void name_text(char *out, size_t cap, const char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7F && c != '\\') {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, cap - o, "\\%02x", c);
			o += 3;
		}
	}
	out[o] = 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = th_malloc(cap);
	while (buf) {
		if (n == cap) {
			uint8_t *nb = th_realloc(buf, cap * 2);
			if (!nb) {
				th_free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	bool bad = ferror(f);
	fclose(f);
	if (!buf || bad) {
		th_free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Decode + validate the named .wasm file. On failure returns -1 with the
 * engine's message in err (or a harness message). */
static int load_module(harness *h, const char *file, thw_module **out, th_err *err)
{
	char path[4096];
	uint8_t *bytes;
	size_t len;
	snprintf(path, sizeof path, "%s/%s", h->dir, file);
	if (read_file(path, &bytes, &len) != 0)
		return th_err_set(err, TH_EIO, "cannot read %s: %s", path, strerror(errno));
	int rc = thw_module_new(bytes, len, out, err);
	th_free(bytes);
	if (rc == 0 && !*out)
		return th_err_set(err, TH_EINVAL, "thw_module_new returned 0 and no module");
	return rc;
}

/* Resolve imports through the registry and instantiate. A missing import is
 * the harness's "unknown import"; type checks are the engine's. */
static int link_and_instantiate(harness *h, thw_module *m, thw_instance **out,
				th_err *err)
{
	uint32_t n = thw_module_import_count(m);
	thw_extern *imps = th_calloc(n ? n : 1, sizeof *imps);
	int rc = -1;
	if (!imps)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		thw_importdesc d;
		char mn[256], fn[256];
		thw_module_import(m, i, &d);
		ns *s = ns_find(h, d.module, d.module_len);
		bool found = false;
		if (s && s->inst) {
			found = thw_instance_export(s->inst, d.name, d.name_len, &imps[i]);
		} else if (s) {
			for (size_t k = 0; k < h->nst; k++)
				if (strlen(h->st[k].name) == d.name_len &&
				    !memcmp(h->st[k].name, d.name, d.name_len)) {
					imps[i] = h->st[k].ext;
					found = true;
				}
		}
		if (!found) {
			name_text(mn, sizeof mn, d.module, d.module_len);
			name_text(fn, sizeof fn, d.name, d.name_len);
			th_err_set(err, TH_ENOTFOUND, "unknown import \"%s\" \"%s\"", mn, fn);
			goto out;
		}
	}
	thw_exec_set_fuel(h->exec, FUEL, THW_FUEL_TRAP);
	rc = thw_instantiate(h->realm, m, imps, n, h->exec, out, err);
	if (rc == 0 && !*out)
		rc = th_err_set(err, TH_EINVAL, "thw_instantiate returned 0 and no instance");
out:
	th_free(imps);
	return rc;
}

/* ---- Values ----------------------------------------------------------- */

/* How a JSON value maps to a thw_val. "ref.extern N" is the host pointer
 * N + 1 so that ref.extern 0 is not null. */
static void *extern_ref(uint64_t n)
{
	return (void *)(uintptr_t)(n + 1);
}

static int parse_u64(const char *s, uint64_t *out)
{
	if (!s || !*s)
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || *s == '-')
		return -1;
	*out = v;
	return 0;
}

static int valtype_of(const char *t, uint8_t *out)
{
	static const struct { const char *n; uint8_t t; } tab[] = {
		{ "i32", THW_I32 }, { "i64", THW_I64 }, { "f32", THW_F32 },
		{ "f64", THW_F64 }, { "funcref", THW_FUNCREF },
		{ "externref", THW_EXTERNREF }, { "v128", THW_V128 },
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(tab); i++)
		if (t && !strcmp(t, tab[i].n)) {
			*out = tab[i].t;
			return 0;
		}
	return -1;
}

/* An argument value (no NaN patterns). */
static int arg_val(harness *h, const jdoc *d, int node, thw_val *v)
{
	const char *t = j_str(d, node, "type", NULL);
	const char *s = j_str(d, node, "value", NULL);
	uint64_t n = 0;
	memset(v, 0, sizeof *v);
	if (valtype_of(t, &v->type) != 0 || v->type == THW_V128)
		return fail(h, "unsupported argument type %s", t ? t : "?");
	if (v->type == THW_FUNCREF || v->type == THW_EXTERNREF) {
		if (!s || !strcmp(s, "null"))
			return 0;
		if (v->type == THW_FUNCREF || parse_u64(s, &n) != 0)
			return fail(h, "bad reference argument %s", s);
		v->of.ref = extern_ref(n);
		return 0;
	}
	if (parse_u64(s, &n) != 0)
		return fail(h, "bad %s argument '%s'", t, s ? s : "");
	switch (v->type) {
	case THW_I32: v->of.i32 = (uint32_t)n; break;
	case THW_F32: v->of.f32_bits = (uint32_t)n; break;
	case THW_I64: v->of.i64 = n; break;
	default: v->of.f64_bits = n; break;
	}
	return 0;
}

static void val_text(const thw_val *v, char *out, size_t cap)
{
	switch (v->type) {
	case THW_I32: snprintf(out, cap, "i32:%" PRIu32, v->of.i32); break;
	case THW_I64: snprintf(out, cap, "i64:%" PRIu64, v->of.i64); break;
	case THW_F32:
		snprintf(out, cap, "f32:0x%08" PRIx32 " (%g)", v->of.f32_bits,
			 (double)v->of.f32);
		break;
	case THW_F64:
		snprintf(out, cap, "f64:0x%016" PRIx64 " (%g)", v->of.f64_bits, v->of.f64);
		break;
	case THW_FUNCREF:
		snprintf(out, cap, "funcref:%s", v->of.func ? "non-null" : "null");
		break;
	case THW_EXTERNREF:
		if (v->of.ref)
			snprintf(out, cap, "externref:%" PRIuPTR,
				 (uintptr_t)v->of.ref - 1);
		else
			snprintf(out, cap, "externref:null");
		break;
	default: snprintf(out, cap, "type 0x%02x", v->type); break;
	}
}

/* Does result v match the expected JSON value? Returns 0, or -1 with why. */
static int check_val(harness *h, const jdoc *d, int node, const thw_val *v,
		     uint32_t idx)
{
	const char *t = j_str(d, node, "type", NULL);
	const char *s = j_str(d, node, "value", NULL);
	uint8_t want;
	char got[96];
	uint64_t n = 0;
	val_text(v, got, sizeof got);
	if (valtype_of(t, &want) != 0 || want == THW_V128)
		return fail(h, "unsupported result type %s", t ? t : "?");
	if (v->type != want)
		return fail(h, "result %u: got %s, expected type %s", idx, got, t);
	if (want == THW_FUNCREF || want == THW_EXTERNREF) {
		bool ok;
		if (!s)                         /* (ref.func) / (ref.extern): any non-null */
			ok = v->of.ref != NULL;
		else if (!strcmp(s, "null"))
			ok = v->of.ref == NULL;
		else if (want == THW_EXTERNREF && parse_u64(s, &n) == 0)
			ok = v->of.ref == extern_ref(n);
		else
			return fail(h, "bad expected reference '%s'", s);
		if (!ok)
			return fail(h, "result %u: got %s, expected %s %s", idx, got, t,
				    s ? s : "non-null");
		return 0;
	}
	if (s && (!strcmp(s, "nan:canonical") || !strcmp(s, "nan:arithmetic"))) {
		bool canon = s[4] == 'c';
		bool ok;
		if (want == THW_F32) {
			uint32_t b = v->of.f32_bits & 0x7FFFFFFFu;
			ok = canon ? b == 0x7FC00000u : (b & 0x7FC00000u) == 0x7FC00000u;
		} else if (want == THW_F64) {
			uint64_t b = v->of.f64_bits & 0x7FFFFFFFFFFFFFFFull;
			ok = canon ? b == 0x7FF8000000000000ull
				   : (b & 0x7FF8000000000000ull) == 0x7FF8000000000000ull;
		} else {
			return fail(h, "NaN pattern for %s", t);
		}
		if (!ok)
			return fail(h, "result %u: got %s, expected %s", idx, got, s);
		return 0;
	}
	if (parse_u64(s, &n) != 0)
		return fail(h, "bad expected value '%s'", s ? s : "");
	bool ok;
	switch (want) {
	case THW_I32: ok = v->of.i32 == (uint32_t)n; break;
	case THW_F32: ok = v->of.f32_bits == (uint32_t)n; break;
	case THW_I64: ok = v->of.i64 == n; break;
	default: ok = v->of.f64_bits == n; break;
	}
	if (!ok) {
		thw_val e = *v;
		switch (want) {
		case THW_I32: e.of.i32 = (uint32_t)n; break;
		case THW_F32: e.of.f32_bits = (uint32_t)n; break;
		case THW_I64: e.of.i64 = n; break;
		default: e.of.f64_bits = n; break;
		}
		char exp[96];
		val_text(&e, exp, sizeof exp);
		return fail(h, "result %u: got %s, expected %s", idx, got, exp);
	}
	return 0;
}

/* ---- Actions ---------------------------------------------------------- */

enum { ACT_OK, ACT_TRAP, ACT_ERROR };

#define MAX_VALS 64

/* Run an invoke or get action. ACT_OK fills results/nresults; ACT_TRAP
 * leaves the trap in h->exec; ACT_ERROR means the harness could not even
 * start it (h->why says why). */
static int run_action(harness *h, const jdoc *d, int act, thw_val *results,
		      uint32_t *nresults)
{
	const char *type = j_str(d, act, "type", NULL);
	const char *modname = j_str(d, act, "module", NULL);
	size_t flen;
	const char *field = j_str(d, act, "field", &flen);
	char fname[256];
	thw_instance *inst = modname ? named_find(h, modname) : h->current;
	thw_extern ext;
	if (!inst) {
		fail(h, "no module %s", modname ? modname : "(none instantiated)");
		return ACT_ERROR;
	}
	if (!field) {
		fail(h, "action without field");
		return ACT_ERROR;
	}
	name_text(fname, sizeof fname, field, flen);
	if (!thw_instance_export(inst, field, flen, &ext)) {
		fail(h, "no export \"%s\"", fname);
		return ACT_ERROR;
	}
	if (type && !strcmp(type, "get")) {
		if (ext.kind != THW_EXTERN_GLOBAL) {
			fail(h, "export \"%s\" is not a global", fname);
			return ACT_ERROR;
		}
		results[0] = thw_global_get(ext.of.global);
		*nresults = 1;
		return ACT_OK;
	}
	if (!type || strcmp(type, "invoke")) {
		fail(h, "unknown action type %s", type ? type : "?");
		return ACT_ERROR;
	}
	if (ext.kind != THW_EXTERN_FUNC) {
		fail(h, "export \"%s\" is not a function", fname);
		return ACT_ERROR;
	}
	thw_val args[MAX_VALS];
	uint32_t nargs = 0;
	int a = j_get(d, act, "args");
	for (int c = a >= 0 ? d->nodes[a].first : -1; c >= 0; c = d->nodes[c].next) {
		if (nargs == MAX_VALS) {
			fail(h, "too many arguments");
			return ACT_ERROR;
		}
		if (arg_val(h, d, c, &args[nargs++]) != 0)
			return ACT_ERROR;
	}
	th_err err = { 0 };
	thw_exec_set_fuel(h->exec, FUEL, THW_FUEL_TRAP);
	if (thw_exec_start(h->exec, ext.of.func, args, nargs, &err) != 0) {
		fail(h, "invoke \"%s\": %s", fname, err.msg);
		return ACT_ERROR;
	}
	thw_state st = thw_exec_run(h->exec);
	if (st == THW_STATE_TRAPPED)
		return ACT_TRAP;
	if (st != THW_STATE_DONE) {
		fail(h, "invoke \"%s\": unexpected state %d", fname, (int)st);
		return ACT_ERROR;
	}
	uint32_t n = thw_exec_results(h->exec, results, MAX_VALS);
	if (n > MAX_VALS) {
		fail(h, "too many results");
		return ACT_ERROR;
	}
	*nresults = n;
	return ACT_OK;
}

static const char *trap_msg(harness *h)
{
	const thw_trap *t = thw_exec_trap(h->exec);
	return t && t->message ? t->message : "(no trap message)";
}

/* ---- Commands --------------------------------------------------------- */

enum { R_PASS, R_FAIL, R_SKIP };

static int cmd_module(harness *h, const jdoc *d, int c)
{
	const char *file = j_str(d, c, "filename", NULL);
	const char *name = j_str(d, c, "name", NULL);
	const char *mt = j_str(d, c, "module_type", NULL);
	thw_module *m = NULL;
	thw_instance *inst = NULL;
	th_err err = { 0 };
	h->current = NULL; /* a failed module leaves no current module */
	if (mt && strcmp(mt, "binary"))
		return R_SKIP;
	if (!file)
		return fail(h, "module without filename"), R_FAIL;
	if (load_module(h, file, &m, &err) != 0)
		return fail(h, "module %s: %s", file, err.msg), R_FAIL;
	int rc = link_and_instantiate(h, m, &inst, &err);
	thw_module_release(m);
	if (rc != 0)
		return fail(h, "instantiate %s: %s", file, err.msg), R_FAIL;
	h->current = inst;
	if (name && named_add(h, name, inst) != 0)
		return R_FAIL;
	return R_PASS;
}

static int cmd_register(harness *h, const jdoc *d, int c)
{
	const char *as = j_str(d, c, "as", NULL);
	const char *name = j_str(d, c, "name", NULL);
	thw_instance *inst = name ? named_find(h, name) : h->current;
	if (!as)
		return fail(h, "register without 'as'"), R_FAIL;
	if (!inst)
		return fail(h, "register: no module %s", name ? name : "(current)"), R_FAIL;
	return ns_add(h, as, inst) == 0 ? R_PASS : R_FAIL;
}

static int cmd_return(harness *h, const jdoc *d, int c, bool check)
{
	thw_val res[MAX_VALS];
	uint32_t n = 0;
	int r = run_action(h, d, j_get(d, c, "action"), res, &n);
	if (r == ACT_ERROR)
		return R_FAIL;
	if (r == ACT_TRAP)
		return fail(h, "trapped: %s", trap_msg(h)), R_FAIL;
	if (!check)
		return R_PASS;
	int exp = j_get(d, c, "expected");
	uint32_t ne = 0;
	for (int e = exp >= 0 ? d->nodes[exp].first : -1; e >= 0; e = d->nodes[e].next)
		ne++;
	if (ne != n)
		return fail(h, "got %u results, expected %u", n, ne), R_FAIL;
	uint32_t i = 0;
	for (int e = exp >= 0 ? d->nodes[exp].first : -1; e >= 0;
	     e = d->nodes[e].next, i++)
		if (check_val(h, d, e, &res[i], i) != 0)
			return R_FAIL;
	return R_PASS;
}

static bool msg_matches(const char *got, const char *want)
{
	return want && got && strstr(got, want) != NULL;
}

/* assert_trap / assert_exhaustion on an action; assert_trap on a module
 * (older scripts) means instantiation must trap. */
static int cmd_trap(harness *h, const jdoc *d, int c)
{
	const char *text = j_str(d, c, "text", NULL);
	int act = j_get(d, c, "action");
	if (act < 0) {
		const char *file = j_str(d, c, "filename", NULL);
		thw_module *m = NULL;
		thw_instance *inst = NULL;
		th_err err = { 0 };
		if (!file)
			return fail(h, "assert_trap without action or module"), R_FAIL;
		if (load_module(h, file, &m, &err) != 0)
			return fail(h, "module %s: %s", file, err.msg), R_FAIL;
		int rc = link_and_instantiate(h, m, &inst, &err);
		thw_module_release(m);
		if (rc == 0)
			return fail(h, "instantiated, expected trap \"%s\"", text), R_FAIL;
		if (!msg_matches(err.msg, text))
			return fail(h, "got \"%s\", expected \"%s\"", err.msg, text), R_FAIL;
		return R_PASS;
	}
	thw_val res[MAX_VALS];
	uint32_t n = 0;
	int r = run_action(h, d, act, res, &n);
	if (r == ACT_ERROR)
		return R_FAIL;
	if (r == ACT_OK)
		return fail(h, "returned, expected trap \"%s\"", text), R_FAIL;
	if (!msg_matches(trap_msg(h), text))
		return fail(h, "trap \"%s\", expected \"%s\"", trap_msg(h), text), R_FAIL;
	return R_PASS;
}

/* assert_invalid / assert_malformed: decoding+validation must fail. */
static int cmd_reject(harness *h, const jdoc *d, int c)
{
	const char *file = j_str(d, c, "filename", NULL);
	const char *text = j_str(d, c, "text", NULL);
	const char *mt = j_str(d, c, "module_type", NULL);
	thw_module *m = NULL;
	th_err err = { 0 };
	if (mt && strcmp(mt, "binary"))
		return R_SKIP;
	if (!file)
		return fail(h, "command without filename"), R_FAIL;
	if (load_module(h, file, &m, &err) == 0) {
		thw_module_release(m);
		return fail(h, "module %s accepted, expected \"%s\"", file, text), R_FAIL;
	}
	if (err.code == TH_EIO)
		return fail(h, "%s", err.msg), R_FAIL;
	if (!msg_matches(err.msg, text))
		return fail(h, "got \"%s\", expected \"%s\"", err.msg, text), R_FAIL;
	return R_PASS;
}

/* assert_unlinkable / assert_uninstantiable: the module is valid but
 * instantiation fails (linking, or a trap in segments or start). */
static int cmd_noinst(harness *h, const jdoc *d, int c)
{
	const char *file = j_str(d, c, "filename", NULL);
	const char *text = j_str(d, c, "text", NULL);
	const char *mt = j_str(d, c, "module_type", NULL);
	thw_module *m = NULL;
	thw_instance *inst = NULL;
	th_err err = { 0 };
	if (mt && strcmp(mt, "binary"))
		return R_SKIP;
	if (!file)
		return fail(h, "command without filename"), R_FAIL;
	if (load_module(h, file, &m, &err) != 0)
		return fail(h, "module %s rejected: %s", file, err.msg), R_FAIL;
	int rc = link_and_instantiate(h, m, &inst, &err);
	thw_module_release(m);
	if (rc == 0)
		return fail(h, "instantiated, expected \"%s\"", text), R_FAIL;
	if (!msg_matches(err.msg, text))
		return fail(h, "got \"%s\", expected \"%s\"", err.msg, text), R_FAIL;
	return R_PASS;
}

static int run_command(harness *h, const jdoc *d, int c, const char *type)
{
	if (!strcmp(type, "module"))
		return cmd_module(h, d, c);
	if (!strcmp(type, "register"))
		return cmd_register(h, d, c);
	if (!strcmp(type, "action"))
		return cmd_return(h, d, c, false);
	if (!strcmp(type, "assert_return"))
		return cmd_return(h, d, c, true);
	if (!strcmp(type, "assert_trap") || !strcmp(type, "assert_exhaustion"))
		return cmd_trap(h, d, c);
	if (!strcmp(type, "assert_invalid") || !strcmp(type, "assert_malformed"))
		return cmd_reject(h, d, c);
	if (!strcmp(type, "assert_unlinkable") || !strcmp(type, "assert_uninstantiable"))
		return cmd_noinst(h, d, c);
	fail(h, "unknown command type %s", type);
	return R_FAIL;
}

/* ---- Crash reporting -------------------------------------------------- */

static void put_num(char *buf, size_t *o, long v)
{
	char tmp[24];
	int n = 0;
	if (v < 0)
		v = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < 20);
	while (n)
		buf[(*o)++] = tmp[--n];
}

static void on_fatal(int sig)
{
	char buf[96];
	size_t o = 0;
	static const char a[] = "wast_run: fatal signal ";
	static const char b[] = " in the command at line ";
	memcpy(buf, a, sizeof a - 1);
	o += sizeof a - 1;
	put_num(buf, &o, sig);
	memcpy(buf + o, b, sizeof b - 1);
	o += sizeof b - 1;
	put_num(buf, &o, (long)g_line);
	buf[o++] = '\n';
	if (write(STDOUT_FILENO, buf, o) < 0)
		_exit(128 + sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_crash_handlers(void)
{
	static char altstack[64 * 1024];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
	struct sigaction sa;
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM };
	for (size_t i = 0; i < TH_ARRAY_LEN(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* ---- Main ------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: wast_run [-v] [-n MAX_SHOWN] [-s LINE]... SCRIPT.json LABEL\n"
			"  runs one wast2json script against the engine; see the\n"
			"  comment atop tools/wast_run.c\n");
}

int main(int argc, char **argv)
{
	harness h;
	jdoc d;
	int shown_max = 5, argi = 1;
	long skip_lines[64];
	int nskip = 0;
	memset(&h, 0, sizeof h);
	memset(&d, 0, sizeof d);
	while (argi < argc && argv[argi][0] == '-') {
		if (!strcmp(argv[argi], "-v")) {
			h.verbose = true;
			argi++;
		} else if (!strcmp(argv[argi], "-s") && argi + 1 < argc &&
			   nskip < (int)TH_ARRAY_LEN(skip_lines)) {
			skip_lines[nskip++] = atol(argv[argi + 1]);
			argi += 2;
		} else if (!strcmp(argv[argi], "-n") && argi + 1 < argc) {
			shown_max = atoi(argv[argi + 1]);
			argi += 2;
		} else {
			usage();
			return 2;
		}
	}
	if (argc - argi != 2) {
		usage();
		return 2;
	}
	const char *path = argv[argi], *label = argv[argi + 1];
	install_crash_handlers();
	setvbuf(stdout, NULL, _IOLBF, 0);

	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof dir, ".");
	h.dir = dir;

	uint8_t *text;
	size_t len;
	if (read_file(path, &text, &len) != 0) {
		printf("FAIL %s: cannot read %s\ncounts 0 1 0\n", label, path);
		return 1;
	}
	d.p = (const char *)text;
	d.end = d.p + len;
	int root = j_value(&d, 0);
	int cmds = j_get(&d, root, "commands");
	if (root < 0 || cmds < 0) {
		printf("FAIL %s: bad JSON in %s: %s\ncounts 0 1 0\n", label, path,
		       d.err[0] ? d.err : "no commands");
		j_free(&d);
		th_free(text);
		return 1;
	}

	thw_config cfg = { 0 };
	cfg.max_memory_pages = 65536;
	cfg.max_call_depth = 10000;
	th_err err = { 0 };
	if (thw_realm_new(&cfg, &h.realm, &err) != 0 ||
	    thw_exec_new(h.realm, &h.exec, &err) != 0 ||
	    spectest_init(&h, &err) != 0 || ns_add(&h, "spectest", NULL) != 0) {
		printf("FAIL %s: harness setup: %s\ncounts 0 1 0\n", label,
		       err.msg[0] ? err.msg : h.why);
		thw_exec_free(h.exec);
		thw_realm_free(h.realm);
		j_free(&d);
		th_free(text);
		return 1;
	}

	long passed = 0, failed = 0, skipped = 0;
	char shown[8][1200];
	int nshown = 0;
	if (shown_max > 8)
		shown_max = 8;
	for (int c = d.nodes[cmds].first; c >= 0; c = d.nodes[c].next) {
		const char *type = j_str(&d, c, "type", NULL);
		long line = j_int(&d, c, "line");
		g_line = (sig_atomic_t)line;
		h.why[0] = 0;
		bool excused = false;
		for (int k = 0; k < nskip; k++)
			excused |= skip_lines[k] == line;
		int r = excused ? R_SKIP
			: type  ? run_command(&h, &d, c, type)
				: (fail(&h, "no type"), R_FAIL);
		if (r == R_PASS) {
			passed++;
		} else if (r == R_SKIP) {
			skipped++;
		} else {
			failed++;
			if (nshown < shown_max)
				snprintf(shown[nshown++], sizeof shown[0], "  line %ld: %s: %s",
					 line, type ? type : "?", h.why);
		}
		if (h.verbose)
			printf("line %ld %s %s%s%s\n", line, type ? type : "?",
			       r == R_PASS ? "pass" : r == R_SKIP ? "skip" : "FAIL",
			       r == R_FAIL ? ": " : "", r == R_FAIL ? h.why : "");
	}
	printf("%s %s %ld/%ld", failed ? "FAIL" : "PASS", label, passed,
	       passed + failed);
	if (skipped)
		printf(" (%ld skipped)", skipped);
	printf("\n");
	for (int i = 0; i < nshown; i++)
		printf("%s\n", shown[i]);
	if (failed > nshown)
		printf("  ... and %ld more\n", failed - nshown);
	printf("counts %ld %ld %ld\n", passed, failed, skipped);

	thw_exec_free(h.exec);
	thw_realm_free(h.realm);
	for (size_t i = 0; i < h.nns; i++)
		th_free(h.nss[i].name);
	th_free(h.nss);
	for (size_t i = 0; i < h.nnames; i++)
		th_free(h.names[i].name);
	th_free(h.names);
	j_free(&d);
	th_free(text);
	return failed ? 1 : 0;
}
