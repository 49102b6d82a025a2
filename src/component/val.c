/*
 * val.c - dynamic component values (thc_val): constructors, release, copy
 * and equality. A value owns every pointer inside it.
 */
#include "component/types.h"

void thc_val_release(thc_val *v)
{
	if (!v)
		return;
	switch (v->kind) {
	case THC_STRING:
		th_free(v->of.str.ptr);
		break;
	case THC_BYTES:
		th_free(v->of.bytes.ptr);
		break;
	case THC_LIST:
	case THC_RECORD:
	case THC_TUPLE:
		for (uint32_t i = 0; i < v->of.agg.n; i++)
			thc_val_release(&v->of.agg.items[i]);
		th_free(v->of.agg.items);
		break;
	case THC_VARIANT:
	case THC_ENUM:
	case THC_OPTION:
	case THC_RESULT:
		if (v->of.var.payload) {
			thc_val_release(v->of.var.payload);
			th_free(v->of.var.payload);
		}
		break;
	default:
		break;
	}
	memset(v, 0, sizeof(*v));
}

thc_val thc_val_bool(bool b)
{
	thc_val v = { .kind = THC_BOOL };
	v.of.b = b;
	return v;
}

thc_val thc_val_int(thc_kind kind, int64_t s)
{
	thc_val v = { .kind = (uint8_t)kind };
	v.of.s = s;
	return v;
}

thc_val thc_val_uint(thc_kind kind, uint64_t u)
{
	thc_val v = { .kind = (uint8_t)kind };
	v.of.u = u;
	return v;
}

int thc_val_string(const char *s, size_t len, thc_val *out)
{
	memset(out, 0, sizeof(*out));
	if (len == SIZE_MAX)
		return TH_ENOMEM;
	char *p = th_malloc(len + 1);
	if (!p)
		return TH_ENOMEM;
	if (len)
		memcpy(p, s, len);
	p[len] = 0;
	out->kind = THC_STRING;
	out->of.str.ptr = p;
	out->of.str.len = len;
	return 0;
}

int thc_val_bytes(const uint8_t *p, size_t len, thc_val *out)
{
	memset(out, 0, sizeof(*out));
	uint8_t *q = th_malloc(len ? len : 1);
	if (!q)
		return TH_ENOMEM;
	if (len)
		memcpy(q, p, len);
	out->kind = THC_BYTES;
	out->of.bytes.ptr = q;
	out->of.bytes.len = len;
	return 0;
}

int thc_val_agg(thc_kind kind, uint32_t n, thc_val *out)
{
	memset(out, 0, sizeof(*out));
	thc_val *items = th_calloc(n ? n : 1, sizeof(thc_val));
	if (!items)
		return TH_ENOMEM;
	out->kind = (uint8_t)kind;
	out->of.agg.items = items;
	out->of.agg.n = n;
	return 0;
}

int thc_val_case(thc_kind kind, uint32_t disc, thc_val *payload, thc_val *out)
{
	memset(out, 0, sizeof(*out));
	thc_val *p = NULL;
	if (payload) {
		p = th_malloc(sizeof(*p));
		if (!p)
			return TH_ENOMEM;
		*p = *payload;
		memset(payload, 0, sizeof(*payload));
	}
	out->kind = (uint8_t)kind;
	out->of.var.disc = disc;
	out->of.var.payload = p;
	return 0;
}

int thc_val_copy(const thc_val *v, thc_val *out)
{
	memset(out, 0, sizeof(*out));
	switch (v->kind) {
	case THC_STRING:
		return thc_val_string(v->of.str.ptr, v->of.str.len, out);
	case THC_BYTES:
		return thc_val_bytes(v->of.bytes.ptr, v->of.bytes.len, out);
	case THC_LIST:
	case THC_RECORD:
	case THC_TUPLE:
		if (thc_val_agg(v->kind, v->of.agg.n, out))
			return TH_ENOMEM;
		for (uint32_t i = 0; i < v->of.agg.n; i++)
			if (thc_val_copy(&v->of.agg.items[i], &out->of.agg.items[i])) {
				thc_val_release(out);
				return TH_ENOMEM;
			}
		return 0;
	case THC_VARIANT:
	case THC_ENUM:
	case THC_OPTION:
	case THC_RESULT:
		if (v->of.var.payload) {
			thc_val p;
			if (thc_val_copy(v->of.var.payload, &p))
				return TH_ENOMEM;
			if (thc_val_case(v->kind, v->of.var.disc, &p, out)) {
				thc_val_release(&p);
				return TH_ENOMEM;
			}
			return 0;
		}
		return thc_val_case(v->kind, v->of.var.disc, NULL, out);
	default:
		*out = *v;
		return 0;
	}
}

static bool bytes_equal_list(const thc_val *b, const thc_val *l)
{
	if (l->kind != THC_LIST || l->of.agg.n != b->of.bytes.len)
		return false;
	for (uint32_t i = 0; i < l->of.agg.n; i++)
		if (l->of.agg.items[i].kind != THC_U8 ||
		    l->of.agg.items[i].of.u != b->of.bytes.ptr[i])
			return false;
	return true;
}

bool thc_val_equal(const thc_val *a, const thc_val *b)
{
	if (a->kind == THC_BYTES && b->kind == THC_LIST)
		return bytes_equal_list(a, b);
	if (b->kind == THC_BYTES && a->kind == THC_LIST)
		return bytes_equal_list(b, a);
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case THC_BOOL:
		return a->of.b == b->of.b;
	case THC_S8: case THC_S16: case THC_S32: case THC_S64:
		return a->of.s == b->of.s;
	case THC_U8: case THC_U16: case THC_U32: case THC_U64:
		return a->of.u == b->of.u;
	case THC_F32:
		return memcmp(&a->of.f32, &b->of.f32, sizeof(float)) == 0;
	case THC_F64:
		return memcmp(&a->of.f64, &b->of.f64, sizeof(double)) == 0;
	case THC_CHAR:
		return a->of.ch == b->of.ch;
	case THC_STRING:
		return a->of.str.len == b->of.str.len &&
		       memcmp(a->of.str.ptr, b->of.str.ptr, a->of.str.len) == 0;
	case THC_BYTES:
		return a->of.bytes.len == b->of.bytes.len &&
		       (a->of.bytes.len == 0 ||
			memcmp(a->of.bytes.ptr, b->of.bytes.ptr, a->of.bytes.len) == 0);
	case THC_LIST: case THC_RECORD: case THC_TUPLE:
		if (a->of.agg.n != b->of.agg.n)
			return false;
		for (uint32_t i = 0; i < a->of.agg.n; i++)
			if (!thc_val_equal(&a->of.agg.items[i], &b->of.agg.items[i]))
				return false;
		return true;
	case THC_VARIANT: case THC_ENUM: case THC_OPTION: case THC_RESULT:
		if (a->of.var.disc != b->of.var.disc ||
		    (a->of.var.payload == NULL) != (b->of.var.payload == NULL))
			return false;
		return !a->of.var.payload ||
		       thc_val_equal(a->of.var.payload, b->of.var.payload);
	case THC_FLAGS:
		return a->of.flags == b->of.flags;
	default:
		return true;
	}
}
