/*
 * abi.c - the Canonical ABI's lifting and lowering (CanonicalABI.md:
 * "Loading", "Storing", "Flat Lifting", "Flat Lowering", "Lifting and
 * Lowering Values"), for string-encoding=utf8 and the value types of the
 * MVP without resources.
 *
 * Every read of guest memory is bounds-checked through thca_mem.ptr; a
 * violation by the guest (out-of-bounds or misaligned pointer, invalid
 * UTF-8, a char that is not a Unicode scalar value, a discriminant past the
 * last case, flag bits past the last flag) is an error here and a trap for
 * the caller. Lowering re-fetches memory pointers after each realloc call,
 * because the guest's allocator may grow memory.
 */
#include "component/abi.h"

static uint64_t ld(const uint8_t *p, uint32_t n)
{
	uint64_t x = 0;
	for (uint32_t i = 0; i < n; i++)
		x |= (uint64_t)p[i] << (8 * i);
	return x;
}

static void st(uint8_t *p, uint64_t x, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)(x >> (8 * i));
}

bool thca_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint64_t w;
		if (n - i >= 8 && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ull))) {
			i += 8; /* eight ASCII bytes */
			continue;
		}
		uint8_t c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		uint32_t need, cp;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= need)
			return false;
		for (uint32_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += need + 1;
	}
	return true;
}

static bool char_valid(uint64_t c)
{
	return c < 0x110000 && !(c >= 0xD800 && c <= 0xDFFF);
}

#define kname thct_kind_name

/* ---- checking host values ------------------------------------------------ */

static int check_int(const thc_type *t, const thc_val *v, th_err *err)
{
	int64_t lo = 0;
	uint64_t hi = 0;
	bool sgn = false;
	switch (t->kind) {
	case THC_S8: lo = INT8_MIN; hi = INT8_MAX; sgn = true; break;
	case THC_S16: lo = INT16_MIN; hi = INT16_MAX; sgn = true; break;
	case THC_S32: lo = INT32_MIN; hi = INT32_MAX; sgn = true; break;
	case THC_S64: return 0;
	case THC_U8: hi = UINT8_MAX; break;
	case THC_U16: hi = UINT16_MAX; break;
	case THC_U32: hi = UINT32_MAX; break;
	default: return 0;
	}
	if (sgn ? (v->of.s < lo || v->of.s > (int64_t)hi) : v->of.u > hi)
		return th_err_set(err, TH_EINVAL, "value out of range for %s",
				  kname(t->kind));
	return 0;
}

static int check(const thc_type *t, const thc_val *v, uint32_t depth, th_err *err)
{
	if (depth > THCT_MAX_DEPTH)
		return th_err_set(err, TH_EINVAL, "value nested too deeply");
	if (t->kind == THC_LIST && v->kind == THC_BYTES) {
		if (t->types[0]->kind != THC_U8)
			return th_err_set(err, TH_EINVAL, "bytes given for a list of %s",
					  kname(t->types[0]->kind));
		return 0;
	}
	if (v->kind != t->kind)
		return th_err_set(err, TH_EINVAL, "expected a %s value, got %s",
				  kname(t->kind), kname((thc_kind)v->kind));
	switch (t->kind) {
	case THC_CHAR:
		if (!char_valid(v->of.ch))
			return th_err_set(err, TH_EINVAL, "invalid char U+%X", v->of.ch);
		return 0;
	case THC_STRING:
		if (!thca_utf8_valid((const uint8_t *)v->of.str.ptr, v->of.str.len))
			return th_err_set(err, TH_EINVAL, "string is not valid UTF-8");
		if (v->of.str.len > INT32_MAX)
			return th_err_set(err, TH_EINVAL, "string too long");
		return 0;
	case THC_LIST:
		for (uint32_t i = 0; i < v->of.agg.n; i++)
			if (check(t->types[0], &v->of.agg.items[i], depth + 1, err))
				return err ? err->code : TH_EINVAL;
		return 0;
	case THC_RECORD:
	case THC_TUPLE:
		if (v->of.agg.n != t->n)
			return th_err_set(err, TH_EINVAL, "%s of %u items, type has %u",
					  kname(t->kind), v->of.agg.n, t->n);
		for (uint32_t i = 0; i < t->n; i++)
			if (check(t->types[i], &v->of.agg.items[i], depth + 1, err))
				return th_err_prefix(err, "%s %s", t->names ? "field" : "item",
						     t->names ? t->names[i] : "");
		return 0;
	case THC_VARIANT:
	case THC_ENUM:
	case THC_OPTION:
	case THC_RESULT: {
		uint32_t d = v->of.var.disc;
		if (d >= t->n)
			return th_err_set(err, TH_EINVAL, "%s case %u out of range (%u cases)",
					  kname(t->kind), d, t->n);
		if ((t->types[d] == NULL) != (v->of.var.payload == NULL))
			return th_err_set(err, TH_EINVAL, "%s case %u: payload %s",
					  kname(t->kind), d,
					  t->types[d] ? "missing" : "not expected");
		if (t->types[d])
			return check(t->types[d], v->of.var.payload, depth + 1, err);
		return 0;
	}
	case THC_FLAGS:
		if (t->n < 32 && (v->of.flags >> t->n))
			return th_err_set(err, TH_EINVAL, "flag bits beyond the %u flags", t->n);
		return 0;
	default:
		return check_int(t, v, err);
	}
}

int thca_check(const thc_type *t, const thc_val *v, th_err *err)
{
	return check(t, v, 0, err);
}

/* ---- memory helpers -------------------------------------------------------- */

static uint8_t *mptr(thca_mem *m, uint64_t off, size_t len, th_err *err)
{
	uint8_t *p = m->ptr(m->ctx, off, len);
	if (!p)
		th_err_set(err, TH_EINVAL, "out of bounds: %zu bytes at 0x%llx",
			   len, (unsigned long long)off);
	return p;
}

static int grab(thca_mem *m, uint64_t n, th_err *err)
{
	if (n > m->budget)
		return th_err_set(err, TH_ELIMIT, "value too large to lift");
	m->budget -= n;
	return 0;
}

static int guest_alloc(thca_mem *m, uint32_t align, uint64_t size, uint32_t *out,
		       th_err *err)
{
	if (size > UINT32_MAX)
		return th_err_set(err, TH_EINVAL, "value too large to lower");
	if (!m->realloc)
		return th_err_set(err, TH_EINVAL, "lowering needs realloc, the guest has none");
	uint32_t p;
	int rc = m->realloc(m->ctx, 0, 0, align, (uint32_t)size, &p, err);
	if (rc)
		return rc;
	if (p & (align - 1))
		return th_err_set(err, TH_EINVAL, "realloc returned misaligned pointer 0x%x", p);
	if (!m->ptr(m->ctx, p, (size_t)size))
		return th_err_set(err, TH_EINVAL, "realloc returned out-of-bounds pointer 0x%x", p);
	*out = p;
	return 0;
}

/* ---- loading --------------------------------------------------------------- */

static int load(thca_mem *m, const thc_type *t, uint32_t ptr, thc_val *out, th_err *err);

static int load_ptrlen(thca_mem *m, uint32_t ptr, uint32_t *p, uint32_t *n, th_err *err)
{
	uint8_t *b = mptr(m, ptr, 8, err);
	if (!b)
		return TH_EINVAL;
	*p = (uint32_t)ld(b, 4);
	*n = (uint32_t)ld(b + 4, 4);
	return 0;
}

static int lift_string(thca_mem *m, uint32_t p, uint32_t n, thc_val *out, th_err *err)
{
	if (grab(m, n / 16 + 1, err))
		return TH_ELIMIT;
	const uint8_t *s = mptr(m, p, n, err);
	if (!s)
		return th_err_prefix(err, "string");
	if (!thca_utf8_valid(s, n))
		return th_err_set(err, TH_EINVAL, "string at 0x%x is not valid UTF-8", p);
	if (thc_val_string((const char *)s, n, out))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	return 0;
}

static int lift_list(thca_mem *m, const thc_type *t, uint32_t p, uint32_t n,
		     thc_val *out, th_err *err)
{
	const thc_type *e = t->types[0];
	if (p & (e->align - 1))
		return th_err_set(err, TH_EINVAL, "list at 0x%x misaligned for %s", p,
				  kname(e->kind));
	uint64_t bytes = (uint64_t)n * e->size;
	if (!mptr(m, p, (size_t)bytes, err))
		return th_err_prefix(err, "list");
	if (e->kind == THC_U8) {
		if (grab(m, n / 16 + 1, err))
			return TH_ELIMIT;
		if (thc_val_bytes(m->ptr(m->ctx, p, n), n, out))
			return th_err_set(err, TH_ENOMEM, "out of memory");
		return 0;
	}
	if (grab(m, n, err))
		return TH_ELIMIT;
	if (thc_val_agg(THC_LIST, n, out))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		int rc = load(m, e, p + i * e->size, &out->of.agg.items[i], err);
		if (rc) {
			thc_val_release(out);
			return rc;
		}
	}
	return 0;
}

static int lift_int(const thc_type *t, uint64_t x, thc_val *out, th_err *err)
{
	memset(out, 0, sizeof(*out));
	out->kind = (uint8_t)t->kind;
	switch (t->kind) {
	case THC_BOOL: out->of.b = x != 0; break;
	case THC_S8: out->of.s = (int8_t)x; break;
	case THC_U8: out->of.u = (uint8_t)x; break;
	case THC_S16: out->of.s = (int16_t)x; break;
	case THC_U16: out->of.u = (uint16_t)x; break;
	case THC_S32: out->of.s = (int32_t)x; break;
	case THC_U32: out->of.u = (uint32_t)x; break;
	case THC_S64: out->of.s = (int64_t)x; break;
	case THC_U64: out->of.u = x; break;
	case THC_F32: { uint32_t b = (uint32_t)x; memcpy(&out->of.f32, &b, 4); break; }
	case THC_F64: memcpy(&out->of.f64, &x, 8); break;
	case THC_CHAR:
		if (!char_valid((uint32_t)x))
			return th_err_set(err, TH_EINVAL, "invalid char 0x%llx",
					  (unsigned long long)(uint32_t)x);
		out->of.ch = (uint32_t)x;
		break;
	default:
		return th_err_set(err, TH_EINVAL, "internal: not a scalar");
	}
	return 0;
}

static int load(thca_mem *m, const thc_type *t, uint32_t ptr, thc_val *out, th_err *err)
{
	memset(out, 0, sizeof(*out));
	if (ptr & (t->align - 1))
		return th_err_set(err, TH_EINVAL, "pointer 0x%x misaligned for %s", ptr,
				  kname(t->kind));
	uint8_t *b;
	uint32_t p, n;
	switch (t->kind) {
	case THC_STRING:
		if (load_ptrlen(m, ptr, &p, &n, err))
			return TH_EINVAL;
		return lift_string(m, p, n, out, err);
	case THC_LIST:
		if (load_ptrlen(m, ptr, &p, &n, err))
			return TH_EINVAL;
		return lift_list(m, t, p, n, out, err);
	case THC_RECORD:
	case THC_TUPLE: {
		if (grab(m, t->n, err))
			return TH_ELIMIT;
		if (thc_val_agg(t->kind, t->n, out))
			return th_err_set(err, TH_ENOMEM, "out of memory");
		uint32_t off = 0;
		for (uint32_t i = 0; i < t->n; i++) {
			off = thct_align_to(off, t->types[i]->align);
			int rc = load(m, t->types[i], ptr + off, &out->of.agg.items[i], err);
			if (rc) {
				thc_val_release(out);
				return rc;
			}
			off += t->types[i]->size;
		}
		return 0;
	}
	case THC_VARIANT:
	case THC_ENUM:
	case THC_OPTION:
	case THC_RESULT: {
		uint32_t ds = thct_disc_size(t->n);
		if (!(b = mptr(m, ptr, t->size, err)))
			return TH_EINVAL;
		uint32_t d = (uint32_t)ld(b, ds);
		if (d >= t->n)
			return th_err_set(err, TH_EINVAL, "%s discriminant %u out of range (%u cases)",
					  kname(t->kind), d, t->n);
		thc_val pl;
		if (t->types[d]) {
			if (grab(m, 1, err))
				return TH_ELIMIT;
			int rc = load(m, t->types[d], ptr + t->payload_off, &pl, err);
			if (rc)
				return rc;
		}
		if (thc_val_case(t->kind, d, t->types[d] ? &pl : NULL, out)) {
			if (t->types[d])
				thc_val_release(&pl);
			return th_err_set(err, TH_ENOMEM, "out of memory");
		}
		return 0;
	}
	case THC_FLAGS:
		if (!(b = mptr(m, ptr, t->size, err)))
			return TH_EINVAL;
		out->kind = THC_FLAGS;
		out->of.flags = (uint32_t)ld(b, t->size);
		if (t->n < 32 && (out->of.flags >> t->n))
			return th_err_set(err, TH_EINVAL, "flag bits beyond the %u flags", t->n);
		return 0;
	default:
		if (!(b = mptr(m, ptr, t->size, err)))
			return TH_EINVAL;
		return lift_int(t, ld(b, t->size), out, err);
	}
}

int thca_load(thca_mem *m, const thc_type *t, uint32_t ptr, thc_val *out, th_err *err)
{
	return load(m, t, ptr, out, err);
}

/* ---- storing --------------------------------------------------------------- */

static int store(thca_mem *m, const thc_type *t, const thc_val *v, uint32_t ptr, th_err *err);

static uint64_t scalar_bits(const thc_type *t, const thc_val *v)
{
	switch (t->kind) {
	case THC_BOOL: return v->of.b ? 1 : 0;
	case THC_F32: { uint32_t b; memcpy(&b, &v->of.f32, 4); return b; }
	case THC_F64: { uint64_t b; memcpy(&b, &v->of.f64, 8); return b; }
	case THC_CHAR: return v->of.ch;
	default: return v->of.u; /* s* share the bits of u */
	}
}

/* Copy a string or list into fresh guest memory; out: (ptr, len). */
static int lower_seq(thca_mem *m, const thc_type *t, const thc_val *v,
		     uint32_t *op, uint32_t *on, th_err *err)
{
	if (t->kind == THC_STRING || v->kind == THC_BYTES) {
		const void *src = t->kind == THC_STRING ? (const void *)v->of.str.ptr
							: (const void *)v->of.bytes.ptr;
		size_t n = t->kind == THC_STRING ? v->of.str.len : v->of.bytes.len;
		uint32_t p;
		int rc = guest_alloc(m, 1, n, &p, err);
		if (rc)
			return rc;
		if (n)
			memcpy(m->ptr(m->ctx, p, n), src, n);
		*op = p;
		*on = (uint32_t)n;
		return 0;
	}
	const thc_type *e = t->types[0];
	uint32_t n = v->of.agg.n, p;
	int rc = guest_alloc(m, e->align, (uint64_t)n * e->size, &p, err);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++)
		if ((rc = store(m, e, &v->of.agg.items[i], p + i * e->size, err)))
			return rc;
	*op = p;
	*on = n;
	return 0;
}

static int store(thca_mem *m, const thc_type *t, const thc_val *v, uint32_t ptr, th_err *err)
{
	uint8_t *b;
	int rc;
	switch (t->kind) {
	case THC_STRING:
	case THC_LIST: {
		uint32_t p, n;
		if ((rc = lower_seq(m, t, v, &p, &n, err)))
			return rc;
		if (!(b = mptr(m, ptr, 8, err)))
			return TH_EINVAL;
		st(b, p, 4);
		st(b + 4, n, 4);
		return 0;
	}
	case THC_RECORD:
	case THC_TUPLE: {
		uint32_t off = 0;
		for (uint32_t i = 0; i < t->n; i++) {
			off = thct_align_to(off, t->types[i]->align);
			if ((rc = store(m, t->types[i], &v->of.agg.items[i], ptr + off, err)))
				return rc;
			off += t->types[i]->size;
		}
		return 0;
	}
	case THC_VARIANT:
	case THC_ENUM:
	case THC_OPTION:
	case THC_RESULT: {
		uint32_t d = v->of.var.disc;
		if (!(b = mptr(m, ptr, thct_disc_size(t->n), err)))
			return TH_EINVAL;
		st(b, d, thct_disc_size(t->n));
		if (t->types[d])
			return store(m, t->types[d], v->of.var.payload, ptr + t->payload_off, err);
		return 0;
	}
	case THC_FLAGS:
		if (!(b = mptr(m, ptr, t->size, err)))
			return TH_EINVAL;
		st(b, v->of.flags, t->size);
		return 0;
	default:
		if (!(b = mptr(m, ptr, t->size, err)))
			return TH_EINVAL;
		st(b, scalar_bits(t, v), t->size);
		return 0;
	}
}

int thca_store(thca_mem *m, const thc_type *t, const thc_val *v, uint32_t ptr, th_err *err)
{
	int rc = check(t, v, 0, err);
	if (rc)
		return rc;
	if (ptr & (t->align - 1))
		return th_err_set(err, TH_EINVAL, "pointer 0x%x misaligned for %s", ptr,
				  kname(t->kind));
	return store(m, t, v, ptr, err);
}

/* ---- flat values ------------------------------------------------------------ */

/* Reads one flat value of core type `want` from a position holding `have`
 * (they differ inside variants, whose payload slots hold the join). */
static uint64_t coerce_in(thw_val x, uint8_t want)
{
	uint64_t bits = x.type == THW_I64 || x.type == THW_F64 ? x.of.i64 : x.of.i32;
	if (want == THW_I32 || want == THW_F32)
		return (uint32_t)bits;
	return bits;
}

static int lift_flat(thca_mem *m, const thc_type *t, const thw_val *flat,
		     uint32_t nflat, uint32_t *pos, thc_val *out, th_err *err);

static int lift_flat_case(thca_mem *m, const thc_type *t, const thw_val *flat,
			  uint32_t nflat, uint32_t *pos, thc_val *out, th_err *err)
{
	uint32_t start = *pos;
	if (start >= nflat)
		return th_err_set(err, TH_EINVAL, "too few flat values");
	uint32_t d = flat[start].of.i32;
	if (d >= t->n)
		return th_err_set(err, TH_EINVAL, "%s discriminant %u out of range (%u cases)",
				  kname(t->kind), d, t->n);
	uint32_t width = t->nflat - 1;
	if (start + 1 + width > nflat)
		return th_err_set(err, TH_EINVAL, "too few flat values");
	thc_val pl;
	const thc_type *c = t->types[d];
	if (c) {
		thw_val tmp[THCT_FLAT_CAP];
		for (uint32_t j = 0; j < c->nflat; j++) {
			uint64_t bits = coerce_in(flat[start + 1 + j], c->flat[j]);
			tmp[j].type = c->flat[j];
			if (c->flat[j] == THW_I64 || c->flat[j] == THW_F64)
				tmp[j].of.i64 = bits;
			else
				tmp[j].of.i32 = (uint32_t)bits;
		}
		uint32_t cp = 0;
		int rc = lift_flat(m, c, tmp, c->nflat, &cp, &pl, err);
		if (rc)
			return rc;
	}
	*pos = start + 1 + width;
	if (thc_val_case(t->kind, d, c ? &pl : NULL, out)) {
		if (c)
			thc_val_release(&pl);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	return 0;
}

static int lift_flat(thca_mem *m, const thc_type *t, const thw_val *flat,
		     uint32_t nflat, uint32_t *pos, thc_val *out, th_err *err)
{
	memset(out, 0, sizeof(*out));
	if (t->nflat > THCT_FLAT_CAP || *pos + t->nflat > nflat)
		return th_err_set(err, TH_EINVAL, "too few flat values");
	switch (t->kind) {
	case THC_STRING:
	case THC_LIST: {
		uint32_t p = flat[*pos].of.i32, n = flat[*pos + 1].of.i32;
		*pos += 2;
		return t->kind == THC_STRING ? lift_string(m, p, n, out, err)
					     : lift_list(m, t, p, n, out, err);
	}
	case THC_RECORD:
	case THC_TUPLE:
		if (grab(m, t->n, err))
			return TH_ELIMIT;
		if (thc_val_agg(t->kind, t->n, out))
			return th_err_set(err, TH_ENOMEM, "out of memory");
		for (uint32_t i = 0; i < t->n; i++) {
			int rc = lift_flat(m, t->types[i], flat, nflat, pos,
					   &out->of.agg.items[i], err);
			if (rc) {
				thc_val_release(out);
				return rc;
			}
		}
		return 0;
	case THC_VARIANT:
	case THC_ENUM:
	case THC_OPTION:
	case THC_RESULT:
		return lift_flat_case(m, t, flat, nflat, pos, out, err);
	case THC_FLAGS:
		out->kind = THC_FLAGS;
		out->of.flags = flat[(*pos)++].of.i32;
		if (t->n < 32 && (out->of.flags >> t->n))
			return th_err_set(err, TH_EINVAL, "flag bits beyond the %u flags", t->n);
		return 0;
	default: {
		thw_val x = flat[(*pos)++];
		return lift_int(t, coerce_in(x, t->flat[0]), out, err);
	}
	}
}

int thca_lift_flat(thca_mem *m, const thc_type *t, const thw_val *flat,
		   uint32_t nflat, uint32_t *pos, thc_val *out, th_err *err)
{
	return lift_flat(m, t, flat, nflat, pos, out, err);
}

static void put_flat(thw_val *f, uint8_t type, uint64_t bits)
{
	memset(f, 0, sizeof(*f));
	f->type = type;
	if (type == THW_I64 || type == THW_F64)
		f->of.i64 = bits;
	else
		f->of.i32 = (uint32_t)bits;
}

static int lower_flat(thca_mem *m, const thc_type *t, const thc_val *v,
		      thw_val *flat, uint32_t cap, uint32_t *pos, th_err *err)
{
	if (t->nflat > THCT_FLAT_CAP || *pos + t->nflat > cap)
		return th_err_set(err, TH_EINVAL, "internal: flat buffer too small");
	int rc;
	switch (t->kind) {
	case THC_STRING:
	case THC_LIST: {
		uint32_t p, n;
		if ((rc = lower_seq(m, t, v, &p, &n, err)))
			return rc;
		put_flat(&flat[(*pos)++], THW_I32, p);
		put_flat(&flat[(*pos)++], THW_I32, n);
		return 0;
	}
	case THC_RECORD:
	case THC_TUPLE:
		for (uint32_t i = 0; i < t->n; i++)
			if ((rc = lower_flat(m, t->types[i], &v->of.agg.items[i], flat, cap, pos, err)))
				return rc;
		return 0;
	case THC_VARIANT:
	case THC_ENUM:
	case THC_OPTION:
	case THC_RESULT: {
		uint32_t d = v->of.var.disc, start = *pos;
		put_flat(&flat[start], THW_I32, d);
		/* Zero every payload slot with its joined type first. */
		for (uint32_t j = 1; j < t->nflat; j++)
			put_flat(&flat[start + j], t->flat[j], 0);
		const thc_type *c = t->types[d];
		if (c) {
			thw_val tmp[THCT_FLAT_CAP];
			uint32_t cp = 0;
			if ((rc = lower_flat(m, c, v->of.var.payload, tmp, THCT_FLAT_CAP, &cp, err)))
				return rc;
			for (uint32_t j = 0; j < cp; j++) {
				uint64_t bits = tmp[j].type == THW_I64 || tmp[j].type == THW_F64
						? tmp[j].of.i64 : tmp[j].of.i32;
				put_flat(&flat[start + 1 + j], t->flat[1 + j], bits);
			}
		}
		*pos = start + t->nflat;
		return 0;
	}
	case THC_FLAGS:
		put_flat(&flat[(*pos)++], THW_I32, v->of.flags);
		return 0;
	default: {
		uint64_t bits = scalar_bits(t, v);
		if (t->flat[0] == THW_I32)
			bits = (uint32_t)bits;
		put_flat(&flat[(*pos)++], t->flat[0], bits);
		return 0;
	}
	}
}

int thca_lower_flat(thca_mem *m, const thc_type *t, const thc_val *v,
		    thw_val *flat, uint32_t cap, uint32_t *pos, th_err *err)
{
	int rc = check(t, v, 0, err);
	return rc ? rc : lower_flat(m, t, v, flat, cap, pos, err);
}

/* ---- functions ---------------------------------------------------------------- */

/* Nearly every actor export takes its state as option<list<u8>> and its
 * message as tuple<list<u8>> (or list<u8>), given as THC_BYTES. Such a
 * parameter needs no type walk: -1 none, 0 bytes, 1 option of bytes, 2
 * tuple of bytes; *b is the bytes value (NULL for none). 3: another shape
 * or value, for the general path. */
static int bytes_shape(const thc_type *t, const thc_val *v, const thc_val **b)
{
	int shape = 0;
	*b = v;
	if (t->kind == THC_OPTION) {
		if (v->kind != THC_OPTION || v->of.var.disc > 1 ||
		    (v->of.var.disc && !v->of.var.payload))
			return 3;
		shape = 1;
		t = t->types[1];
		*b = v->of.var.disc ? v->of.var.payload : NULL;
	} else if (t->kind == THC_TUPLE && t->n == 1) {
		if (v->kind != THC_TUPLE || v->of.agg.n != 1)
			return 3;
		shape = 2;
		t = t->types[0];
		*b = &v->of.agg.items[0];
	}
	if (t->kind != THC_LIST || t->types[0]->kind != THC_U8 || (*b && (*b)->kind != THC_BYTES))
		return 3;
	return *b ? shape : -1;
}

/* The params of f, all of bytes_shape's shapes, flat: 1 when they were
 * not (nothing done). */
static int lower_bytes_params(thca_mem *m, const thc_functype *f, const thc_val *args,
			      uint32_t nargs, thw_val *flat, th_err *err)
{
	const thc_val *b[4];
	int shape[4];
	if (nargs > 4)
		return 1;
	for (uint32_t i = 0; i < nargs; i++)
		if ((shape[i] = bytes_shape(f->ptypes[i], &args[i], &b[i])) == 3)
			return 1;
	uint32_t pos = 0;
	for (uint32_t i = 0; i < nargs; i++) {
		if (shape[i] == -1 || shape[i] == 1) {
			flat[pos++] = (thw_val){ .type = THW_I32, .of.i32 = shape[i] == 1 };
			if (shape[i] == -1) {
				flat[pos++] = (thw_val){ .type = THW_I32 };
				flat[pos++] = (thw_val){ .type = THW_I32 };
				continue;
			}
		}
		size_t n = b[i]->of.bytes.len;
		uint32_t p;
		int rc = guest_alloc(m, 1, n, &p, err);
		if (rc)
			return rc;
		if (n)
			memcpy(m->ptr(m->ctx, p, n), b[i]->of.bytes.ptr, n);
		flat[pos++] = (thw_val){ .type = THW_I32, .of.i32 = p };
		flat[pos++] = (thw_val){ .type = THW_I32, .of.i32 = (uint32_t)n };
	}
	return 0;
}

int thca_lower_params(thca_mem *m, const thc_functype *f, const thct_flatsig *sig,
		      const thc_type *ptuple, const thc_val *args, uint32_t nargs,
		      thw_val *flat, th_err *err)
{
	if (nargs != f->nparams)
		return th_err_set(err, TH_EINVAL, "%u arguments given, function takes %u",
				  nargs, f->nparams);
	int rc;
	if (!sig->params_spilled && (rc = lower_bytes_params(m, f, args, nargs, flat, err)) != 1)
		return rc;
	for (uint32_t i = 0; i < nargs; i++)
		if ((rc = check(f->ptypes[i], &args[i], 0, err)))
			return th_err_prefix(err, "argument %u (%s)", i,
					     f->pnames && f->pnames[i] ? f->pnames[i] : "");
	if (!sig->params_spilled) {
		uint32_t pos = 0;
		for (uint32_t i = 0; i < nargs; i++)
			if ((rc = lower_flat(m, f->ptypes[i], &args[i], flat,
					     THCT_MAX_FLAT_PARAMS, &pos, err)))
				return rc;
		return 0;
	}
	uint32_t p;
	if ((rc = guest_alloc(m, ptuple->align, ptuple->size, &p, err)))
		return rc;
	uint32_t off = 0;
	for (uint32_t i = 0; i < nargs; i++) {
		off = thct_align_to(off, f->ptypes[i]->align);
		if ((rc = store(m, f->ptypes[i], &args[i], p + off, err)))
			return rc;
		off += f->ptypes[i]->size;
	}
	put_flat(&flat[0], THW_I32, p);
	return 0;
}

int thca_lift_result(thca_mem *m, const thc_functype *f, const thct_flatsig *sig,
		     const thw_val *res, thc_val *out, th_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!f->result)
		return 0;
	if (sig->results_spilled)
		return load(m, f->result, res[0].of.i32, out, err);
	uint32_t pos = 0;
	return lift_flat(m, f->result, res, sig->nresults, &pos, out, err);
}

int thca_lift_params(thca_mem *m, const thc_functype *f, const thct_flatsig *sig,
		     const thc_type *ptuple, const thw_val *flat, thc_val *args,
		     th_err *err)
{
	int rc = 0;
	uint32_t i = 0;
	if (sig->params_spilled) {
		uint32_t p = flat[0].of.i32;
		if (p & (ptuple->align - 1)) {
			rc = th_err_set(err, TH_EINVAL, "parameter pointer 0x%x misaligned", p);
			goto fail;
		}
		uint32_t off = 0;
		for (i = 0; i < f->nparams; i++) {
			off = thct_align_to(off, f->ptypes[i]->align);
			if ((rc = load(m, f->ptypes[i], p + off, &args[i], err)))
				goto fail;
			off += f->ptypes[i]->size;
		}
		return 0;
	}
	uint32_t pos = 0;
	for (i = 0; i < f->nparams; i++)
		if ((rc = lift_flat(m, f->ptypes[i], flat, sig->nparams, &pos, &args[i], err)))
			goto fail;
	return 0;
fail:
	while (i-- > 0)
		thc_val_release(&args[i]);
	return rc;
}

int thca_lower_result(thca_mem *m, const thc_functype *f, const thct_flatsig *sig,
		      const thc_val *result, const thw_val *flat_params, thw_val *res,
		      th_err *err)
{
	if (!f->result)
		return 0;
	int rc = check(f->result, result, 0, err);
	if (rc)
		return th_err_prefix(err, "host result");
	if (sig->results_spilled) {
		uint32_t rp = flat_params[sig->nparams - 1].of.i32;
		if (rp & (f->result->align - 1))
			return th_err_set(err, TH_EINVAL, "return pointer 0x%x misaligned", rp);
		if (!mptr(m, rp, f->result->size, err))
			return th_err_prefix(err, "return area");
		return store(m, f->result, result, rp, err);
	}
	uint32_t pos = 0;
	return lower_flat(m, f->result, result, res, THCT_MAX_FLAT_RESULTS, &pos, err);
}
