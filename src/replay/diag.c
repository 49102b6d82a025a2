/*
 * diag.c - CBOR diagnostic notation, bounded (see diag.h). Text strings
 * are quoted with JSON-style escapes; byte strings longer than 32 bytes
 * show their first 32 bytes and their length.
 */
#include "base/base.h"
#include "base/cbor.h"
#include "replay/diag.h"

typedef struct out {
	char *p;
	size_t cap, len;
	bool full;
} out;

static void put(out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (o->len + 4 >= o->cap) {
			o->full = true;
			return;
		}
		o->p[o->len++] = s[i];
	}
}

static void puts_(out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out *o, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static int item(th_cbor_dec *d, out *o, int depth)
{
	int major = th_cbor_peek(d);
	uint64_t n, u;
	int64_t s;
	const uint8_t *b;
	const char *t;
	bool bo;
	double x;

	if (o->full)
		return 0;
	if (depth > TH_CBOR_MAX_DEPTH)
		return -1;
	switch (major) {
	case TH_CBOR_UINT:
		if (th_cbor_get_uint(d, &u, NULL))
			return -1;
		putf(o, "%llu", (unsigned long long)u);
		return 0;
	case TH_CBOR_NINT:
		if (th_cbor_get_int(d, &s, NULL))
			return -1;
		putf(o, "%lld", (long long)s);
		return 0;
	case TH_CBOR_BYTES:
		if (th_cbor_get_bytes(d, &b, &n, NULL))
			return -1;
		puts_(o, "h'");
		for (size_t i = 0; i < n && i < 32; i++)
			putf(o, "%02x", b[i]);
		if (n > 32)
			putf(o, "...' (%zu bytes)", (size_t)n);
		else
			puts_(o, "'");
		return 0;
	case TH_CBOR_TEXT:
		if (th_cbor_get_text(d, &t, &n, NULL))
			return -1;
		puts_(o, "\"");
		for (size_t i = 0; i < n && !o->full; i++) {
			unsigned char c = (unsigned char)t[i];
			if (c == '"' || c == '\\')
				putf(o, "\\%c", c);
			else if (c < 0x20)
				putf(o, "\\u%04x", c);
			else
				put(o, &t[i], 1);
		}
		puts_(o, "\"");
		return 0;
	case TH_CBOR_ARRAY:
		if (th_cbor_get_array(d, &n, NULL))
			return -1;
		puts_(o, "[");
		for (uint64_t i = 0; i < n; i++) {
			if (i)
				puts_(o, ", ");
			if (item(d, o, depth + 1))
				return -1;
		}
		puts_(o, "]");
		return 0;
	case TH_CBOR_MAP:
		if (th_cbor_get_map(d, &n, NULL))
			return -1;
		puts_(o, "{");
		for (uint64_t i = 0; i < n; i++) {
			if (i)
				puts_(o, ", ");
			if (item(d, o, depth + 1))
				return -1;
			puts_(o, ": ");
			if (item(d, o, depth + 1))
				return -1;
		}
		puts_(o, "}");
		return 0;
	case TH_CBOR_SIMPLE:
		if (th_cbor_get_null(d)) {
			puts_(o, "null");
			return 0;
		}
		if (!th_cbor_get_bool(d, &bo, NULL)) {
			puts_(o, bo ? "true" : "false");
			return 0;
		}
		if (!th_cbor_get_double(d, &x, NULL)) {
			putf(o, "%.17g", x);
			return 0;
		}
		return -1;
	default:
		return -1;
	}
}

void rpd_text(const uint8_t *p, size_t n, char *buf, size_t cap)
{
	out o = { .p = buf, .cap = cap };
	th_cbor_dec d;
	if (!cap)
		return;
	th_cbor_dec_init(&d, p, n);
	while (!th_cbor_at_end(&d) && !o.full) {
		if (o.len)
			puts_(&o, ", ");
		if (item(&d, &o, 0)) {
			puts_(&o, "<malformed>");
			break;
		}
	}
	if (o.full && cap >= 4) {
		size_t k = o.len < cap - 4 ? o.len : cap - 4;
		memcpy(buf + k, "...", 3);
		o.len = k + 3;
	}
	buf[o.len < cap ? o.len : cap - 1] = 0;
}
