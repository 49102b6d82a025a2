/*
 * cbor.h (internal) - a small deterministic CBOR (RFC 8949) encoder and a
 * strict decoder.
 *
 * Encoding always produces the "core deterministic encoding" of RFC 8949
 * section 4.2.1: every head (integer value, length, count) in its shortest
 * form, definite lengths only, and floats in the shortest of half, single
 * and double precision that represents the value exactly (NaN as f97e00).
 * Map keys must be sorted bytewise by their encodings: the encoder does not
 * reorder, th_cbor_check_deterministic() tells whether a whole item obeys.
 *
 * The decoder is strict: non-shortest heads, indefinite lengths, reserved
 * additional-information values, tags, lengths beyond the input, invalid
 * UTF-8 in text strings and nesting deeper than TH_CBOR_MAX_DEPTH are
 * errors, each reported with the byte offset where it was found.
 *
 * Ownership: an encoder either writes into a caller buffer (fixed) or owns a
 * growing heap buffer (th_cbor_enc_release frees it, th_cbor_enc_take hands
 * it over). A decoder borrows its input; the pointers it returns for byte
 * and text strings point into that input.
 */
#ifndef TH_CBOR_H
#define TH_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "theater/base.h"

#define TH_CBOR_MAX_DEPTH 64

enum th_cbor_major {
	TH_CBOR_UINT = 0,
	TH_CBOR_NINT = 1,
	TH_CBOR_BYTES = 2,
	TH_CBOR_TEXT = 3,
	TH_CBOR_ARRAY = 4,
	TH_CBOR_MAP = 5,
	TH_CBOR_TAG = 6,
	TH_CBOR_SIMPLE = 7 /* false, true, null, undefined, floats */
};

typedef struct th_cbor_enc {
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool fixed; /* buf is the caller's; never grown or freed */
	int err;    /* first error (TH_ENOMEM or TH_ELIMIT); sticky */
} th_cbor_enc;

/* Start encoding into buf[0..cap) (fixed) or, with buf NULL, into a heap
 * buffer that grows as needed. */
void th_cbor_enc_init(th_cbor_enc *e, uint8_t *buf, size_t cap);
/* Free a heap buffer (no-op for fixed ones) and reset. */
void th_cbor_enc_release(th_cbor_enc *e);
/* Hand over the heap buffer: *out (free with th_free) and *len. Returns the
 * sticky error, in which case nothing is handed over and e is released. */
int th_cbor_enc_take(th_cbor_enc *e, uint8_t **out, size_t *len);

/* Writers. Errors are sticky in e->err; checking once at the end is enough.
 * The commonest (a small head, raw bytes that fit) are inline fast paths
 * over the out-of-line *_slow ones: a message's events take dozens. */
void th_cbor_put_head_slow(th_cbor_enc *e, unsigned major, uint64_t val);
void th_cbor_put_raw_slow(th_cbor_enc *e, const void *p, size_t n);
static inline void th_cbor_put_head(th_cbor_enc *e, unsigned major, uint64_t val)
{
	if (val < 24 && e->len < e->cap && !e->err) {
		e->buf[e->len++] = (uint8_t)(major << 5 | val);
	} else if (val < 256 && e->cap - e->len >= 2 && !e->err) {
		e->buf[e->len] = (uint8_t)(major << 5 | 24);
		e->buf[e->len + 1] = (uint8_t)val;
		e->len += 2;
	} else {
		th_cbor_put_head_slow(e, major, val);
	}
}
/* Append n raw bytes that are already one or more encoded items. */
static inline void th_cbor_put_raw(th_cbor_enc *e, const void *p, size_t n)
{
	if (n <= e->cap - e->len && !e->err) {
		if (n)
			memcpy(e->buf + e->len, p, n);
		e->len += n;
	} else {
		th_cbor_put_raw_slow(e, p, n);
	}
}
static inline void th_cbor_put_uint(th_cbor_enc *e, uint64_t v)
{
	th_cbor_put_head(e, TH_CBOR_UINT, v);
}
static inline void th_cbor_put_array(th_cbor_enc *e, uint64_t count)
{
	th_cbor_put_head(e, TH_CBOR_ARRAY, count);
}
void th_cbor_put_int(th_cbor_enc *e, int64_t v);
void th_cbor_put_bytes(th_cbor_enc *e, const void *p, size_t n);
void th_cbor_put_text(th_cbor_enc *e, const char *s, size_t n);
void th_cbor_put_cstr(th_cbor_enc *e, const char *s); /* NUL-terminated */
void th_cbor_put_map(th_cbor_enc *e, uint64_t pairs);
void th_cbor_put_bool(th_cbor_enc *e, bool b);
void th_cbor_put_null(th_cbor_enc *e);
void th_cbor_put_double(th_cbor_enc *e, double d);

/* Bytes the head of an item with this value takes (1, 2, 3, 5 or 9). */
size_t th_cbor_head_size(uint64_t val);

typedef struct th_cbor_dec {
	const uint8_t *p;
	size_t len;
	size_t pos;
} th_cbor_dec;

void th_cbor_dec_init(th_cbor_dec *d, const void *p, size_t len);
/* Major type of the next item, or -1 at the end of input. */
int th_cbor_peek(const th_cbor_dec *d);
bool th_cbor_at_end(const th_cbor_dec *d);

/* Readers: each consumes one item of the expected type and returns 0, or
 * returns TH_EINVAL (wrong type, malformed, truncated) with err naming the
 * byte offset, and leaves the position unchanged. */
int th_cbor_get_uint(th_cbor_dec *d, uint64_t *v, th_err *err);
int th_cbor_get_int(th_cbor_dec *d, int64_t *v, th_err *err);
int th_cbor_get_bytes(th_cbor_dec *d, const uint8_t **p, size_t *n, th_err *err);
int th_cbor_get_text(th_cbor_dec *d, const char **s, size_t *n, th_err *err);
int th_cbor_get_array(th_cbor_dec *d, uint64_t *count, th_err *err);
int th_cbor_get_map(th_cbor_dec *d, uint64_t *pairs, th_err *err);
int th_cbor_get_bool(th_cbor_dec *d, bool *b, th_err *err);
int th_cbor_get_double(th_cbor_dec *d, double *v, th_err *err);
/* Consume a null if the next item is one: returns true and advances. */
bool th_cbor_get_null(th_cbor_dec *d);
/* Skip one whole item (nested arrays and maps included). */
int th_cbor_skip(th_cbor_dec *d, th_err *err);

/* True when s[0..n) is valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF); *bad gets the offset of the first bad byte. */
bool th_cbor_utf8_ok(const void *s, size_t n, size_t *bad);

/* True when p[0..n) is exactly one well-formed item in core deterministic
 * encoding (including sorted, unique map keys). On false, err says where. */
bool th_cbor_check_deterministic(const void *p, size_t n, th_err *err);

#endif
