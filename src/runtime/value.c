/*
 * value.c - thc_val <-> deterministic CBOR (the encoding is described in
 * value.h). Encoding needs no type; decoding is driven by the type so that
 * the value comes back with its exact kinds.
 */
#include <math.h>

#include "base/base.h"
#include "component/types.h"
#include "runtime/value.h"

static void enc_fail(th_cbor_enc *e, int code)
{
	if (!e->err)
		e->err = code;
}

static void encode(th_cbor_enc *e, const thc_val *v, int depth)
{
	if (depth > TH_CBOR_MAX_DEPTH) {
		enc_fail(e, TH_EINVAL);
		return;
	}
	switch (v->kind) {
	case THC_BOOL:
		th_cbor_put_bool(e, v->of.b);
		return;
	case THC_S8: case THC_S16: case THC_S32: case THC_S64:
		th_cbor_put_int(e, v->of.s);
		return;
	case THC_U8: case THC_U16: case THC_U32: case THC_U64:
		th_cbor_put_uint(e, v->of.u);
		return;
	case THC_F32:
		th_cbor_put_double(e, (double)v->of.f32);
		return;
	case THC_F64:
		th_cbor_put_double(e, v->of.f64);
		return;
	case THC_CHAR:
		th_cbor_put_uint(e, v->of.ch);
		return;
	case THC_STRING:
		th_cbor_put_text(e, v->of.str.ptr, v->of.str.len);
		return;
	case THC_BYTES:
		th_cbor_put_bytes(e, v->of.bytes.ptr, v->of.bytes.len);
		return;
	case THC_LIST: {
		/* A list<u8> given as items encodes like BYTES. */
		bool bytes = v->of.agg.n > 0;
		for (uint32_t i = 0; bytes && i < v->of.agg.n; i++)
			bytes = v->of.agg.items[i].kind == THC_U8;
		if (bytes) {
			th_cbor_put_head(e, TH_CBOR_BYTES, v->of.agg.n);
			for (uint32_t i = 0; i < v->of.agg.n; i++) {
				uint8_t b = (uint8_t)v->of.agg.items[i].of.u;
				th_cbor_put_raw(e, &b, 1);
			}
			return;
		}
	}
		/* fall through */
	case THC_RECORD:
	case THC_TUPLE:
		th_cbor_put_array(e, v->of.agg.n);
		for (uint32_t i = 0; i < v->of.agg.n; i++)
			encode(e, &v->of.agg.items[i], depth + 1);
		return;
	case THC_OPTION:
		if (v->of.var.disc == 0) {
			th_cbor_put_null(e);
			return;
		}
		th_cbor_put_array(e, 1);
		if (v->of.var.payload)
			encode(e, v->of.var.payload, depth + 1);
		else
			th_cbor_put_null(e);
		return;
	case THC_RESULT:
	case THC_VARIANT:
		th_cbor_put_array(e, 2);
		th_cbor_put_uint(e, v->of.var.disc);
		if (v->of.var.payload)
			encode(e, v->of.var.payload, depth + 1);
		else
			th_cbor_put_null(e);
		return;
	case THC_ENUM:
		th_cbor_put_uint(e, v->of.var.disc);
		return;
	case THC_FLAGS:
		th_cbor_put_uint(e, v->of.flags);
		return;
	default:
		enc_fail(e, TH_EINVAL);
		return;
	}
}

void rtv_encode(th_cbor_enc *e, const thc_val *v)
{
	encode(e, v, 0);
}

/* ---- decoding ---------------------------------------------------------- */

static int bad(th_cbor_dec *d, th_err *err, const char *what)
{
	return th_err_set(err, TH_EINVAL, "value at byte %zu: %s", d->pos, what);
}

static int dec(th_cbor_dec *d, const thc_type *t, thc_val *out, int depth,
	       th_err *err);

static int dec_int(th_cbor_dec *d, const thc_type *t, thc_val *out,
		   th_err *err)
{
	int64_t lo = 0;
	uint64_t hi = 0;
	switch (t->kind) {
	case THC_S8: lo = INT8_MIN; hi = INT8_MAX; break;
	case THC_S16: lo = INT16_MIN; hi = INT16_MAX; break;
	case THC_S32: lo = INT32_MIN; hi = INT32_MAX; break;
	case THC_S64: lo = INT64_MIN; hi = INT64_MAX; break;
	case THC_U8: hi = UINT8_MAX; break;
	case THC_U16: hi = UINT16_MAX; break;
	case THC_U32: hi = UINT32_MAX; break;
	default: hi = UINT64_MAX; break;
	}
	out->kind = (uint8_t)t->kind;
	if (t->kind >= THC_S8 && t->kind <= THC_U64 &&
	    ((t->kind - THC_S8) % 2) == 0) {
		int64_t v;
		if (th_cbor_get_int(d, &v, err))
			return TH_EINVAL;
		if (v < lo || (v > 0 && (uint64_t)v > hi))
			return bad(d, err, "integer out of range");
		out->of.s = v;
		return 0;
	}
	uint64_t u;
	if (th_cbor_get_uint(d, &u, err))
		return TH_EINVAL;
	if (u > hi)
		return bad(d, err, "integer out of range");
	out->of.u = u;
	return 0;
}

static int dec_agg(th_cbor_dec *d, const thc_type *t, thc_val *out,
		   int depth, th_err *err)
{
	uint64_t n;
	int rc;
	if (t->kind == THC_LIST && t->types[0]->kind == THC_U8 &&
	    th_cbor_peek(d) == TH_CBOR_BYTES) {
		const uint8_t *p;
		size_t len;
		if (th_cbor_get_bytes(d, &p, &len, err))
			return TH_EINVAL;
		if (thc_val_bytes(p, len, out))
			return th_err_set(err, TH_ENOMEM, "out of memory");
		return 0;
	}
	if (th_cbor_get_array(d, &n, err))
		return TH_EINVAL;
	if (t->kind != THC_LIST && n != t->n)
		return bad(d, err, "wrong number of items");
	if (n > d->len - d->pos) /* every item takes at least one byte */
		return bad(d, err, "more items than bytes");
	if (thc_val_agg((thc_kind)t->kind, (uint32_t)n, out))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++) {
		const thc_type *it = t->kind == THC_LIST ? t->types[0] : t->types[i];
		rc = dec(d, it, &out->of.agg.items[i], depth + 1, err);
		if (rc) {
			thc_val_release(out);
			return rc;
		}
	}
	return 0;
}

static int dec_case(th_cbor_dec *d, const thc_type *t, uint32_t disc,
		    thc_val *out, int depth, th_err *err)
{
	thc_val payload = { 0 };
	int rc;
	if (disc >= t->n)
		return bad(d, err, "case out of range");
	if (!t->types[disc]) {
		if (!th_cbor_get_null(d))
			return bad(d, err, "payload where the case has none");
	} else {
		rc = dec(d, t->types[disc], &payload, depth + 1, err);
		if (rc)
			return rc;
	}
	if (thc_val_case((thc_kind)t->kind, disc,
			 t->types[disc] ? &payload : NULL, out)) {
		thc_val_release(&payload);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	return 0;
}

static int dec(th_cbor_dec *d, const thc_type *t, thc_val *out, int depth,
	       th_err *err)
{
	memset(out, 0, sizeof *out);
	if (depth > TH_CBOR_MAX_DEPTH)
		return bad(d, err, "nested too deeply");
	switch (t->kind) {
	case THC_BOOL:
		out->kind = THC_BOOL;
		return th_cbor_get_bool(d, &out->of.b, err) ? TH_EINVAL : 0;
	case THC_F32:
	case THC_F64: {
		double x;
		if (th_cbor_get_double(d, &x, err))
			return TH_EINVAL;
		out->kind = (uint8_t)t->kind;
		if (t->kind == THC_F32)
			out->of.f32 = (float)x;
		else
			out->of.f64 = x;
		return 0;
	}
	case THC_CHAR: {
		uint64_t c;
		if (th_cbor_get_uint(d, &c, err))
			return TH_EINVAL;
		if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return bad(d, err, "not a Unicode scalar value");
		out->kind = THC_CHAR;
		out->of.ch = (uint32_t)c;
		return 0;
	}
	case THC_STRING: {
		const char *s;
		size_t n;
		if (th_cbor_get_text(d, &s, &n, err))
			return TH_EINVAL;
		if (thc_val_string(s, n, out))
			return th_err_set(err, TH_ENOMEM, "out of memory");
		return 0;
	}
	case THC_LIST:
	case THC_RECORD:
	case THC_TUPLE:
		return dec_agg(d, t, out, depth, err);
	case THC_OPTION: {
		uint64_t n;
		if (th_cbor_get_null(d))
			return thc_val_case(THC_OPTION, 0, NULL, out)
				       ? th_err_set(err, TH_ENOMEM, "out of memory") : 0;
		if (th_cbor_get_array(d, &n, err))
			return TH_EINVAL;
		if (n != 1)
			return bad(d, err, "option some must be [value]");
		return dec_case(d, t, 1, out, depth, err);
	}
	case THC_RESULT:
	case THC_VARIANT: {
		uint64_t n, disc;
		if (th_cbor_get_array(d, &n, err))
			return TH_EINVAL;
		if (n != 2)
			return bad(d, err, "case must be [case, payload]");
		if (th_cbor_get_uint(d, &disc, err))
			return TH_EINVAL;
		if (disc >= t->n)
			return bad(d, err, "case out of range");
		return dec_case(d, t, (uint32_t)disc, out, depth, err);
	}
	case THC_ENUM: {
		uint64_t disc;
		if (th_cbor_get_uint(d, &disc, err))
			return TH_EINVAL;
		if (disc >= t->n)
			return bad(d, err, "enum case out of range");
		return thc_val_case(THC_ENUM, (uint32_t)disc, NULL, out)
			       ? th_err_set(err, TH_ENOMEM, "out of memory") : 0;
	}
	case THC_FLAGS: {
		uint64_t f;
		if (th_cbor_get_uint(d, &f, err))
			return TH_EINVAL;
		if (f > UINT32_MAX || (t->n < 32 && (f >> t->n)))
			return bad(d, err, "flag bits beyond the type's flags");
		out->kind = THC_FLAGS;
		out->of.flags = (uint32_t)f;
		return 0;
	}
	default:
		if (t->kind >= THC_S8 && t->kind <= THC_U64)
			return dec_int(d, t, out, err);
		return bad(d, err, "unsupported type");
	}
}

int rtv_decode(th_cbor_dec *d, const thc_type *t, thc_val *out, th_err *err)
{
	return dec(d, t, out, 0, err);
}
