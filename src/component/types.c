/*
 * types.c - component value types: construction, layout per the Canonical
 * ABI (size, alignment, flattening), structural equality and printing in
 * WIT syntax.
 *
 * Layout rules (CanonicalABI.md, "Alignment", "Element Size", "Flattening"):
 *   bool,s8,u8 1/1; s16,u16 2/2; s32,u32,f32,char 4/4; s64,u64,f64 8/8;
 *   string and list: (ptr, len) 8/4.
 *   record/tuple: fields in order, each at its alignment; size rounded up to
 *   the largest field alignment.
 *   variant/enum/option/result: discriminant of 1, 2 or 4 bytes (by number
 *   of cases), payload at the discriminant rounded up to the largest case
 *   alignment; size rounded to the variant's alignment.
 *   flags: 1, 2 or 4 bytes (at most 32 flags).
 *   Flattening: integers up to 32 bits and char -> i32; 64-bit -> i64;
 *   string/list -> i32 i32; records concatenate; variants are an i32
 *   discriminant followed by the element-wise join of their cases' flat
 *   types (equal -> same; i32/f32 -> i32; otherwise i64).
 */
#include "component/types.h"

struct thct_block {
	thct_block *next;
	size_t used, cap;
	max_align_t data[];
};

void *thct_alloc(thct_arena *a, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (n == 0)
		n = sizeof(max_align_t);
	thct_block *b = a->head;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 4096 ? n : 4096;
		size_t total;
		if (!th_add_ok(sizeof(thct_block), cap, &total))
			return NULL;
		b = th_malloc(total);
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

char *thct_strndup(thct_arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *p = thct_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

void thct_arena_release(thct_arena *a)
{
	thct_block *b = a->head;
	while (b) {
		thct_block *next = b->next;
		th_free(b);
		b = next;
	}
	a->head = NULL;
}

/* Primitive types: static and already laid out. */
static uint8_t flat_i32[] = { THW_I32 }, flat_i64[] = { THW_I64 },
	       flat_f32[] = { THW_F32 }, flat_f64[] = { THW_F64 },
	       flat_ptrlen[] = { THW_I32, THW_I32 };
#define PRIM(k, sz, fl) \
	{ .kind = (k), .size = (sz), .align = (sz), .nflat = sizeof(fl), .flat = (fl), .depth = 1 }
static thc_type prims[] = {
	PRIM(THC_BOOL, 1, flat_i32), PRIM(THC_S8, 1, flat_i32),
	PRIM(THC_U8, 1, flat_i32),   PRIM(THC_S16, 2, flat_i32),
	PRIM(THC_U16, 2, flat_i32),  PRIM(THC_S32, 4, flat_i32),
	PRIM(THC_U32, 4, flat_i32),  PRIM(THC_S64, 8, flat_i64),
	PRIM(THC_U64, 8, flat_i64),  PRIM(THC_F32, 4, flat_f32),
	PRIM(THC_F64, 8, flat_f64),  PRIM(THC_CHAR, 4, flat_i32),
	{ .kind = THC_STRING, .size = 8, .align = 4, .nflat = 2,
	  .flat = flat_ptrlen, .depth = 1 },
};

thc_type *thct_prim(thc_kind kind)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(prims); i++)
		if (prims[i].kind == kind)
			return &prims[i];
	return NULL;
}

thc_type *thct_new(thct_arena *a, thc_kind kind, uint32_t n, bool named)
{
	thc_type *t = thct_alloc(a, sizeof(*t));
	if (!t)
		return NULL;
	t->kind = kind;
	t->n = n;
	if (n) {
		size_t sz;
		if (!th_mul_ok(n, sizeof(thc_type *), &sz))
			return NULL;
		t->types = thct_alloc(a, sz);
		if (!t->types)
			return NULL;
		if (named) {
			t->names = thct_alloc(a, sz);
			if (!t->names)
				return NULL;
		}
	}
	return t;
}

uint32_t thct_disc_size(uint32_t ncases)
{
	return ncases <= 256 ? 1 : ncases <= 65536 ? 2 : 4;
}

static uint8_t join(uint8_t a, uint8_t b)
{
	if (a == b)
		return a;
	if ((a == THW_I32 && b == THW_F32) || (a == THW_F32 && b == THW_I32))
		return THW_I32;
	return THW_I64;
}

const char *thct_kind_name(thc_kind k)
{
	static const char *names[] = {
		[THC_BOOL] = "bool", [THC_S8] = "s8", [THC_U8] = "u8",
		[THC_S16] = "s16", [THC_U16] = "u16", [THC_S32] = "s32",
		[THC_U32] = "u32", [THC_S64] = "s64", [THC_U64] = "u64",
		[THC_F32] = "f32", [THC_F64] = "f64", [THC_CHAR] = "char",
		[THC_STRING] = "string", [THC_LIST] = "list",
		[THC_RECORD] = "record", [THC_TUPLE] = "tuple",
		[THC_VARIANT] = "variant", [THC_ENUM] = "enum",
		[THC_OPTION] = "option", [THC_RESULT] = "result",
		[THC_FLAGS] = "flags", [THC_BYTES] = "bytes",
	};
	return (unsigned)k < TH_ARRAY_LEN(names) && names[k] ? names[k] : "?";
}

/* Element sizes above 2^28 are invalid (Binary.md), which also keeps every
 * later size computation far from overflow. */
#define MAX_TYPE_SIZE (1u << 28)

int thct_finish(thct_arena *a, thc_type *t, th_err *err)
{
	uint32_t depth = 0;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->types[i] && t->types[i]->depth > depth)
			depth = t->types[i]->depth;
	t->depth = depth + 1;
	if (t->depth > THCT_MAX_DEPTH)
		return th_err_set(err, TH_EINVAL, "type nested deeper than %d",
				  THCT_MAX_DEPTH);
	uint8_t buf[THCT_FLAT_CAP];
	uint32_t nflat = 0;
	uint64_t size = 0;
	uint32_t align = 1;
	switch (t->kind) {
	case THC_LIST:
		if (t->n != 1 || !t->types[0])
			return th_err_set(err, TH_EINVAL, "list without element type");
		t->size = 8;
		t->align = 4;
		buf[0] = buf[1] = THW_I32;
		nflat = 2;
		break;
	case THC_RECORD:
	case THC_TUPLE:
		if (t->n == 0)
			return th_err_set(err, TH_EINVAL, "empty %s", thct_kind_name(t->kind));
		for (uint32_t i = 0; i < t->n; i++) {
			const thc_type *f = t->types[i];
			if (!f)
				return th_err_set(err, TH_EINVAL, "field without type");
			size = thct_align_to((uint32_t)size, f->align) + (uint64_t)f->size;
			if (size > MAX_TYPE_SIZE)
				return th_err_set(err, TH_EINVAL, "type too large");
			if (f->align > align)
				align = f->align;
			for (uint32_t j = 0; j < f->nflat; j++, nflat++)
				if (nflat < THCT_FLAT_CAP && f->nflat <= THCT_FLAT_CAP)
					buf[nflat] = f->flat[j];
		}
		t->size = thct_align_to((uint32_t)size, align);
		t->align = align;
		break;
	case THC_VARIANT:
	case THC_ENUM:
	case THC_OPTION:
	case THC_RESULT: {
		if (t->n == 0)
			return th_err_set(err, TH_EINVAL, "%s without cases", thct_kind_name(t->kind));
		uint32_t ds = thct_disc_size(t->n), maxa = 1, maxs = 0;
		uint32_t pflat = 0;
		uint8_t pbuf[THCT_FLAT_CAP];
		for (uint32_t i = 0; i < t->n; i++) {
			const thc_type *c = t->types[i];
			if (!c)
				continue;
			if (c->align > maxa)
				maxa = c->align;
			if (c->size > maxs)
				maxs = c->size;
			if (c->nflat > THCT_FLAT_CAP) {
				pflat = THCT_FLAT_CAP + 1;
				continue;
			}
			for (uint32_t j = 0; j < c->nflat && pflat <= THCT_FLAT_CAP; j++) {
				if (j < pflat)
					pbuf[j] = join(pbuf[j], c->flat[j]);
				else if (j < THCT_FLAT_CAP)
					pbuf[pflat++] = c->flat[j];
				else
					pflat = THCT_FLAT_CAP + 1;
			}
		}
		align = ds > maxa ? ds : maxa;
		t->payload_off = thct_align_to(ds, maxa);
		size = thct_align_to((uint32_t)((uint64_t)t->payload_off + maxs), align);
		if ((uint64_t)t->payload_off + maxs > MAX_TYPE_SIZE)
			return th_err_set(err, TH_EINVAL, "type too large");
		t->size = (uint32_t)size;
		t->align = align;
		buf[0] = THW_I32;
		nflat = 1 + pflat;
		for (uint32_t j = 0; j < pflat && j + 1 < THCT_FLAT_CAP; j++)
			buf[j + 1] = pbuf[j];
		break;
	}
	case THC_FLAGS:
		if (t->n == 0 || t->n > 32)
			return th_err_set(err, TH_EINVAL, "flags must have 1 to 32 labels, not %u", t->n);
		t->size = t->align = t->n <= 8 ? 1 : t->n <= 16 ? 2 : 4;
		buf[0] = THW_I32;
		nflat = 1;
		break;
	default:
		return th_err_set(err, TH_EINVAL, "not a compound type: %s",
				  thct_kind_name(t->kind));
	}
	t->nflat = nflat;
	if (nflat <= THCT_FLAT_CAP) {
		t->flat = thct_alloc(a, nflat ? nflat : 1);
		if (!t->flat)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		memcpy(t->flat, buf, nflat);
	} else {
		t->nflat = THCT_FLAT_CAP + 1;
	}
	return 0;
}

bool thct_equal(const thc_type *a, const thc_type *b)
{
	if (a == b)
		return true;
	if (!a || !b || a->kind != b->kind || a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++) {
		if ((a->names == NULL) != (b->names == NULL))
			return false;
		if (a->names && strcmp(a->names[i], b->names[i]) != 0)
			return false;
		if (a->types && !thct_equal(a->types[i], b->types[i]))
			return false;
	}
	return true;
}

bool thct_functype_equal(const thc_functype *a, const thc_functype *b)
{
	if (a->nparams != b->nparams)
		return false;
	for (uint32_t i = 0; i < a->nparams; i++)
		if (!thct_equal(a->ptypes[i], b->ptypes[i]))
			return false;
	if ((a->result == NULL) != (b->result == NULL))
		return false;
	return !a->result || thct_equal(a->result, b->result);
}

/* ---- printing ---------------------------------------------------------- */

typedef struct sbuf {
	char *p;
	size_t cap, len;
} sbuf;

static void put(sbuf *s, const char *str)
{
	size_t n = strlen(str);
	if (s->len < s->cap) {
		size_t room = s->cap - s->len - 1;
		memcpy(s->p + s->len, str, n < room ? n : room);
		s->p[s->len + (n < room ? n : room)] = 0;
	}
	s->len += n;
}

static void put_type(sbuf *s, const thc_type *t)
{
	if (!t) {
		put(s, "_");
		return;
	}
	switch (t->kind) {
	case THC_LIST:
		put(s, "list<");
		put_type(s, t->types[0]);
		put(s, ">");
		return;
	case THC_OPTION:
		put(s, "option<");
		put_type(s, t->types[1]);
		put(s, ">");
		return;
	case THC_RESULT:
		if (!t->types[0] && !t->types[1]) {
			put(s, "result");
			return;
		}
		put(s, "result<");
		put_type(s, t->types[0]);
		if (t->types[1]) {
			put(s, ", ");
			put_type(s, t->types[1]);
		}
		put(s, ">");
		return;
	case THC_TUPLE:
		put(s, "tuple<");
		for (uint32_t i = 0; i < t->n; i++) {
			if (i)
				put(s, ", ");
			put_type(s, t->types[i]);
		}
		put(s, ">");
		return;
	case THC_RECORD:
	case THC_VARIANT:
	case THC_ENUM:
	case THC_FLAGS:
		put(s, thct_kind_name(t->kind));
		put(s, " { ");
		for (uint32_t i = 0; i < t->n; i++) {
			if (i)
				put(s, ", ");
			put(s, t->names ? t->names[i] : "?");
			if (t->kind == THC_RECORD) {
				put(s, ": ");
				put_type(s, t->types[i]);
			} else if (t->kind == THC_VARIANT && t->types[i]) {
				put(s, "(");
				put_type(s, t->types[i]);
				put(s, ")");
			}
		}
		put(s, " }");
		return;
	default:
		put(s, thct_kind_name(t->kind));
	}
}

size_t thc_type_str(const thc_type *t, char *buf, size_t cap)
{
	sbuf s = { buf, cap, 0 };
	if (cap)
		buf[0] = 0;
	put_type(&s, t);
	return s.len;
}

size_t thc_functype_str(const thc_functype *f, char *buf, size_t cap)
{
	sbuf s = { buf, cap, 0 };
	if (cap)
		buf[0] = 0;
	put(&s, "func(");
	for (uint32_t i = 0; i < f->nparams; i++) {
		if (i)
			put(&s, ", ");
		put(&s, f->pnames && f->pnames[i] ? f->pnames[i] : "_");
		put(&s, ": ");
		put_type(&s, f->ptypes[i]);
	}
	put(&s, ")");
	if (f->result) {
		put(&s, " -> ");
		put_type(&s, f->result);
	}
	return s.len;
}

/* ---- function flattening ----------------------------------------------- */

void thct_flatsig_of(const thc_functype *f, bool lower, thct_flatsig *out)
{
	memset(out, 0, sizeof(*out));
	uint32_t n = 0;
	for (uint32_t i = 0; i < f->nparams; i++)
		n += f->ptypes[i]->nflat;
	if (n > THCT_MAX_FLAT_PARAMS) {
		out->params_spilled = true;
		out->params[0] = THW_I32;
		out->nparams = 1;
	} else {
		for (uint32_t i = 0; i < f->nparams; i++)
			for (uint32_t j = 0; j < f->ptypes[i]->nflat; j++)
				out->params[out->nparams++] = f->ptypes[i]->flat[j];
	}
	if (f->result) {
		if (f->result->nflat > THCT_MAX_FLAT_RESULTS) {
			out->results_spilled = true;
			if (lower)
				out->params[out->nparams++] = THW_I32;
			else
				out->results[out->nresults++] = THW_I32;
		} else {
			for (uint32_t j = 0; j < f->result->nflat; j++)
				out->results[out->nresults++] = f->result->flat[j];
		}
	}
}

thc_type *thct_params_tuple(thct_arena *a, const thc_functype *f)
{
	thc_type *t = thct_new(a, THC_TUPLE, f->nparams, false);
	if (!t)
		return NULL;
	for (uint32_t i = 0; i < f->nparams; i++)
		t->types[i] = f->ptypes[i];
	return thct_finish(a, t, NULL) == 0 ? t : NULL;
}
