/*
 * cbor.c - deterministic CBOR encoding and strict decoding (see cbor.h).
 *
 * A CBOR item starts with a head: the major type in the top 3 bits of the
 * first byte and, in the low 5 bits ("additional information", ai), either
 * the value itself (0..23) or the size of the value that follows big-endian:
 * ai 24 = 1 byte, 25 = 2, 26 = 4, 27 = 8. Deterministic encoding uses the
 * smallest of these that holds the value; the decoder rejects any other.
 * ai 28..30 are reserved and 31 means "indefinite length": both rejected.
 */
#include <math.h>

#include "base/cbor.h"
#include "base/base.h"

/* ---- encoder ---- */

void th_cbor_enc_init(th_cbor_enc *e, uint8_t *buf, size_t cap)
{
	e->buf = buf;
	e->len = 0;
	e->cap = buf ? cap : 0;
	e->fixed = buf != NULL;
	e->err = 0;
}

void th_cbor_enc_release(th_cbor_enc *e)
{
	if (!e->fixed)
		th_free(e->buf);
	e->buf = NULL;
	e->len = e->cap = 0;
	e->fixed = false;
	e->err = 0;
}

int th_cbor_enc_take(th_cbor_enc *e, uint8_t **out, size_t *len)
{
	int rc = e->err;
	if (rc || e->fixed) {
		th_cbor_enc_release(e);
		return rc ? rc : TH_EINVAL;
	}
	*out = e->buf;
	*len = e->len;
	e->buf = NULL;
	e->len = e->cap = 0;
	return 0;
}

/* Make room for n more bytes; false (and sticky error) if impossible. */
static bool reserve(th_cbor_enc *e, size_t n)
{
	size_t need;
	if (e->err)
		return false;
	if (!th_add_ok(e->len, n, &need)) {
		e->err = TH_ELIMIT;
		return false;
	}
	if (need <= e->cap)
		return true;
	if (e->fixed) {
		e->err = TH_ELIMIT;
		return false;
	}
	size_t cap = e->cap ? e->cap : 64;
	while (cap < need) {
		if (!th_mul_ok(cap, 2, &cap)) {
			e->err = TH_ELIMIT;
			return false;
		}
	}
	uint8_t *nb = th_realloc(e->buf, cap);
	if (!nb) {
		e->err = TH_ENOMEM;
		return false;
	}
	e->buf = nb;
	e->cap = cap;
	return true;
}

size_t th_cbor_head_size(uint64_t val)
{
	if (val < 24)
		return 1;
	if (val <= 0xff)
		return 2;
	if (val <= 0xffff)
		return 3;
	if (val <= 0xffffffffu)
		return 5;
	return 9;
}

void th_cbor_put_head_slow(th_cbor_enc *e, unsigned major, uint64_t val)
{
	size_t n = th_cbor_head_size(val);
	if (!reserve(e, n))
		return;
	uint8_t *o = e->buf + e->len;
	uint8_t mt = (uint8_t)(major << 5);
	switch (n) {
	case 1:
		o[0] = (uint8_t)(mt | val);
		break;
	case 2:
		o[0] = mt | 24;
		o[1] = (uint8_t)val;
		break;
	case 3:
		o[0] = mt | 25;
		o[1] = (uint8_t)(val >> 8);
		o[2] = (uint8_t)val;
		break;
	case 5:
		o[0] = mt | 26;
		for (int i = 0; i < 4; i++)
			o[1 + i] = (uint8_t)(val >> (24 - 8 * i));
		break;
	default:
		o[0] = mt | 27;
		for (int i = 0; i < 8; i++)
			o[1 + i] = (uint8_t)(val >> (56 - 8 * i));
		break;
	}
	e->len += n;
}

void th_cbor_put_raw_slow(th_cbor_enc *e, const void *p, size_t n)
{
	if (!reserve(e, n))
		return;
	if (n)
		memcpy(e->buf + e->len, p, n);
	e->len += n;
}

void th_cbor_put_int(th_cbor_enc *e, int64_t v)
{
	if (v >= 0)
		th_cbor_put_head(e, TH_CBOR_UINT, (uint64_t)v);
	else /* -1 - v without overflow for INT64_MIN */
		th_cbor_put_head(e, TH_CBOR_NINT, ~(uint64_t)v);
}

void th_cbor_put_bytes(th_cbor_enc *e, const void *p, size_t n)
{
	th_cbor_put_head(e, TH_CBOR_BYTES, n);
	th_cbor_put_raw(e, p, n);
}

void th_cbor_put_text(th_cbor_enc *e, const char *s, size_t n)
{
	th_cbor_put_head(e, TH_CBOR_TEXT, n);
	th_cbor_put_raw(e, s, n);
}

void th_cbor_put_cstr(th_cbor_enc *e, const char *s)
{
	th_cbor_put_text(e, s, strlen(s));
}

void th_cbor_put_map(th_cbor_enc *e, uint64_t pairs)
{
	th_cbor_put_head(e, TH_CBOR_MAP, pairs);
}

void th_cbor_put_bool(th_cbor_enc *e, bool b)
{
	uint8_t v = b ? 0xf5 : 0xf4;
	th_cbor_put_raw(e, &v, 1);
}

void th_cbor_put_null(th_cbor_enc *e)
{
	uint8_t v = 0xf6;
	th_cbor_put_raw(e, &v, 1);
}

/* The half-precision bits of f, if f is exactly representable as one. */
static bool float_to_half(float f, uint16_t *out)
{
	uint32_t b;
	memcpy(&b, &f, 4);
	uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
	int exp = (int)((b >> 23) & 0xff);
	uint32_t man = b & 0x7fffff;
	if (exp == 0xff) { /* infinity (NaN is handled by the caller) */
		if (man)
			return false;
		*out = sign | 0x7c00;
		return true;
	}
	if (exp == 0 && man == 0) {
		*out = sign;
		return true;
	}
	if (exp == 0)
		return false; /* float subnormals are far below half's range */
	int e = exp - 127;
	if (e >= -14 && e <= 15) {
		if (man & 0x1fff)
			return false;
		*out = (uint16_t)(sign | (uint16_t)((e + 15) << 10) | (man >> 13));
		return true;
	}
	if (e >= -24 && e < -14) {
		uint32_t sig = man | 0x800000;
		int k = -(e + 1); /* half subnormal = sig >> k, exactly */
		if (sig & ((1u << k) - 1))
			return false;
		*out = (uint16_t)(sign | (sig >> k));
		return true;
	}
	return false;
}

void th_cbor_put_double(th_cbor_enc *e, double d)
{
	uint8_t o[9];
	if (isnan(d)) {
		o[0] = 0xf9;
		o[1] = 0x7e;
		o[2] = 0x00;
		th_cbor_put_raw(e, o, 3);
		return;
	}
	float f = (float)d;
	if ((double)f == d) {
		uint16_t h;
		if (float_to_half(f, &h)) {
			o[0] = 0xf9;
			o[1] = (uint8_t)(h >> 8);
			o[2] = (uint8_t)h;
			th_cbor_put_raw(e, o, 3);
			return;
		}
		uint32_t b;
		memcpy(&b, &f, 4);
		o[0] = 0xfa;
		for (int i = 0; i < 4; i++)
			o[1 + i] = (uint8_t)(b >> (24 - 8 * i));
		th_cbor_put_raw(e, o, 5);
		return;
	}
	uint64_t b;
	memcpy(&b, &d, 8);
	o[0] = 0xfb;
	for (int i = 0; i < 8; i++)
		o[1 + i] = (uint8_t)(b >> (56 - 8 * i));
	th_cbor_put_raw(e, o, 9);
}

/* ---- decoder ---- */

void th_cbor_dec_init(th_cbor_dec *d, const void *p, size_t len)
{
	d->p = p;
	d->len = len;
	d->pos = 0;
}

int th_cbor_peek(const th_cbor_dec *d)
{
	if (d->pos >= d->len)
		return -1;
	return d->p[d->pos] >> 5;
}

bool th_cbor_at_end(const th_cbor_dec *d)
{
	return d->pos >= d->len;
}

/* Read the head at *pos: major type, ai and value; strict shortest form.
 * For major 7, *val is the raw ai payload (simple value or float bits). */
static int read_head(const th_cbor_dec *d, size_t *pos, unsigned *major,
		     unsigned *ai, uint64_t *val, th_err *err)
{
	size_t at = *pos;
	if (at >= d->len)
		return th_err_set(err, TH_EINVAL, "cbor: truncated at offset %zu", at);
	uint8_t b = d->p[at];
	*major = b >> 5;
	*ai = b & 31;
	if (*ai < 24) {
		*val = *ai;
		*pos = at + 1;
		return 0;
	}
	if (*ai > 27)
		return th_err_set(err, TH_EINVAL,
				  "cbor: %s at offset %zu",
				  *ai == 31 ? "indefinite length not allowed"
					    : "reserved additional information",
				  at);
	size_t n = (size_t)1 << (*ai - 24);
	if (d->len - at - 1 < n)
		return th_err_set(err, TH_EINVAL, "cbor: truncated at offset %zu", at);
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | d->p[at + 1 + i];
	/* Shortest form (floats in major 7 are checked by their own rules). */
	if (*major != TH_CBOR_SIMPLE && th_cbor_head_size(v) != n + 1)
		return th_err_set(err, TH_EINVAL,
				  "cbor: non-shortest head at offset %zu", at);
	if (*major == TH_CBOR_SIMPLE && *ai == 24 && v < 32)
		return th_err_set(err, TH_EINVAL,
				  "cbor: invalid simple value at offset %zu", at);
	*val = v;
	*pos = at + 1 + n;
	return 0;
}

static int expect(th_cbor_dec *d, unsigned want, uint64_t *val, size_t *pos,
		  th_err *err)
{
	unsigned major, ai;
	*pos = d->pos;
	int rc = read_head(d, pos, &major, &ai, val, err);
	if (rc)
		return rc;
	if (major != want)
		return th_err_set(err, TH_EINVAL,
				  "cbor: expected major type %u, found %u at offset %zu",
				  want, major, d->pos);
	return 0;
}

int th_cbor_get_uint(th_cbor_dec *d, uint64_t *v, th_err *err)
{
	size_t pos;
	int rc = expect(d, TH_CBOR_UINT, v, &pos, err);
	if (!rc)
		d->pos = pos;
	return rc;
}

int th_cbor_get_int(th_cbor_dec *d, int64_t *v, th_err *err)
{
	unsigned major, ai;
	uint64_t val;
	size_t pos = d->pos;
	int rc = read_head(d, &pos, &major, &ai, &val, err);
	if (rc)
		return rc;
	if ((major != TH_CBOR_UINT && major != TH_CBOR_NINT) || val > INT64_MAX)
		return th_err_set(err, TH_EINVAL,
				  "cbor: expected a 64-bit integer at offset %zu", d->pos);
	*v = major == TH_CBOR_UINT ? (int64_t)val : -1 - (int64_t)val;
	d->pos = pos;
	return 0;
}

static int get_string(th_cbor_dec *d, unsigned major, const uint8_t **p,
		      size_t *n, th_err *err)
{
	uint64_t len;
	size_t pos;
	int rc = expect(d, major, &len, &pos, err);
	if (rc)
		return rc;
	if (len > d->len - pos)
		return th_err_set(err, TH_EINVAL,
				  "cbor: string of %llu bytes at offset %zu runs past the end",
				  (unsigned long long)len, d->pos);
	*p = d->p + pos;
	*n = (size_t)len;
	d->pos = pos + (size_t)len;
	return 0;
}

static bool utf8_valid(const uint8_t *s, size_t n, size_t *bad)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			*bad = i;
			return false;
		}
		if (n - i - 1 < k) {
			*bad = i;
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80) {
				*bad = i;
				return false;
			}
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			*bad = i;
			return false;
		}
		i += k + 1;
	}
	return true;
}

bool th_cbor_utf8_ok(const void *s, size_t n, size_t *bad)
{
	size_t dummy;
	return utf8_valid(s, n, bad ? bad : &dummy);
}

int th_cbor_get_bytes(th_cbor_dec *d, const uint8_t **p, size_t *n, th_err *err)
{
	return get_string(d, TH_CBOR_BYTES, p, n, err);
}

int th_cbor_get_text(th_cbor_dec *d, const char **s, size_t *n, th_err *err)
{
	const uint8_t *p = NULL;
	size_t start = d->pos, bad;
	int rc = get_string(d, TH_CBOR_TEXT, &p, n, err);
	if (rc)
		return rc;
	if (!utf8_valid(p, *n, &bad)) {
		d->pos = start;
		return th_err_set(err, TH_EINVAL,
				  "cbor: invalid UTF-8 in text at offset %zu",
				  (size_t)(p - d->p) + bad);
	}
	*s = (const char *)p;
	return 0;
}

int th_cbor_get_array(th_cbor_dec *d, uint64_t *count, th_err *err)
{
	size_t pos;
	int rc = expect(d, TH_CBOR_ARRAY, count, &pos, err);
	if (!rc)
		d->pos = pos;
	return rc;
}

int th_cbor_get_map(th_cbor_dec *d, uint64_t *pairs, th_err *err)
{
	size_t pos;
	int rc = expect(d, TH_CBOR_MAP, pairs, &pos, err);
	if (!rc)
		d->pos = pos;
	return rc;
}

int th_cbor_get_bool(th_cbor_dec *d, bool *b, th_err *err)
{
	if (d->pos < d->len && (d->p[d->pos] == 0xf4 || d->p[d->pos] == 0xf5)) {
		*b = d->p[d->pos] == 0xf5;
		d->pos++;
		return 0;
	}
	return th_err_set(err, TH_EINVAL, "cbor: expected a boolean at offset %zu",
			  d->pos);
}

bool th_cbor_get_null(th_cbor_dec *d)
{
	if (d->pos < d->len && d->p[d->pos] == 0xf6) {
		d->pos++;
		return true;
	}
	return false;
}

static double half_to_double(uint16_t h)
{
	int exp = (h >> 10) & 0x1f;
	int man = h & 0x3ff;
	double v;
	if (exp == 0)
		v = ldexp(man, -24);
	else if (exp != 31)
		v = ldexp(man + 1024, exp - 25);
	else
		v = man == 0 ? INFINITY : NAN;
	return (h & 0x8000) ? -v : v;
}

int th_cbor_get_double(th_cbor_dec *d, double *v, th_err *err)
{
	unsigned major, ai;
	uint64_t val;
	size_t pos = d->pos;
	int rc = read_head(d, &pos, &major, &ai, &val, err);
	if (rc)
		return rc;
	if (major != TH_CBOR_SIMPLE || ai < 25 || ai > 27)
		return th_err_set(err, TH_EINVAL, "cbor: expected a float at offset %zu",
				  d->pos);
	if (ai == 25) {
		*v = half_to_double((uint16_t)val);
	} else if (ai == 26) {
		uint32_t b = (uint32_t)val;
		float f;
		memcpy(&f, &b, 4);
		*v = f;
	} else {
		memcpy(v, &val, 8);
	}
	d->pos = pos;
	return 0;
}

/* Walk one item. With det, also enforce deterministic floats and sorted,
 * unique map keys. */
static int walk(th_cbor_dec *d, int depth, bool det, th_err *err)
{
	unsigned major, ai;
	uint64_t val;
	size_t start = d->pos, pos = d->pos;
	if (depth > TH_CBOR_MAX_DEPTH)
		return th_err_set(err, TH_EINVAL,
				  "cbor: nesting deeper than %d at offset %zu",
				  TH_CBOR_MAX_DEPTH, start);
	int rc = read_head(d, &pos, &major, &ai, &val, err);
	if (rc)
		return rc;
	switch (major) {
	case TH_CBOR_UINT:
	case TH_CBOR_NINT:
		d->pos = pos;
		return 0;
	case TH_CBOR_BYTES: {
		const uint8_t *p;
		size_t n;
		return th_cbor_get_bytes(d, &p, &n, err);
	}
	case TH_CBOR_TEXT: {
		const char *s;
		size_t n;
		return th_cbor_get_text(d, &s, &n, err);
	}
	case TH_CBOR_ARRAY:
		d->pos = pos;
		for (uint64_t i = 0; i < val; i++) {
			if ((rc = walk(d, depth + 1, det, err)))
				return rc;
		}
		return 0;
	case TH_CBOR_MAP: {
		d->pos = pos;
		size_t prev_at = 0, prev_len = 0;
		for (uint64_t i = 0; i < val; i++) {
			size_t kat = d->pos;
			if ((rc = walk(d, depth + 1, det, err)))
				return rc;
			size_t klen = d->pos - kat;
			if (det && i > 0) {
				size_t m = prev_len < klen ? prev_len : klen;
				int c = memcmp(d->p + prev_at, d->p + kat, m);
				if (c > 0 || (c == 0 && prev_len >= klen))
					return th_err_set(err, TH_EINVAL,
							  "cbor: map key at offset %zu is %s",
							  kat, c == 0 && prev_len == klen
								  ? "a duplicate"
								  : "out of order");
			}
			prev_at = kat;
			prev_len = klen;
			if ((rc = walk(d, depth + 1, det, err)))
				return rc;
		}
		return 0;
	}
	case TH_CBOR_TAG:
		return th_err_set(err, TH_EINVAL, "cbor: tags are not supported (offset %zu)",
				  start);
	default:
		if (ai < 24) {
			if (val < 20 || val > 23)
				return th_err_set(err, TH_EINVAL,
						  "cbor: unassigned simple value %llu at offset %zu",
						  (unsigned long long)val, start);
			d->pos = pos;
			return 0;
		}
		if (ai == 24)
			return th_err_set(err, TH_EINVAL,
					  "cbor: unassigned simple value at offset %zu", start);
		if (det) {
			double v;
			th_cbor_dec tmp = *d;
			if ((rc = th_cbor_get_double(&tmp, &v, err)))
				return rc;
			th_cbor_enc e;
			uint8_t canon[9];
			th_cbor_enc_init(&e, canon, sizeof canon);
			th_cbor_put_double(&e, v);
			if (e.len != pos - start || memcmp(canon, d->p + start, e.len))
				return th_err_set(err, TH_EINVAL,
						  "cbor: float at offset %zu is not in shortest form",
						  start);
		}
		d->pos = pos;
		return 0;
	}
}

int th_cbor_skip(th_cbor_dec *d, th_err *err)
{
	size_t start = d->pos;
	int rc = walk(d, 0, false, err);
	if (rc)
		d->pos = start;
	return rc;
}

bool th_cbor_check_deterministic(const void *p, size_t n, th_err *err)
{
	th_cbor_dec d;
	th_cbor_dec_init(&d, p, n);
	if (walk(&d, 0, true, err))
		return false;
	if (d.pos != n) {
		th_err_set(err, TH_EINVAL, "cbor: %zu trailing bytes after the item at offset %zu",
			   n - d.pos, d.pos);
		return false;
	}
	return true;
}
