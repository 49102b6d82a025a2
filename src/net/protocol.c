/*
 * protocol.c - the frame codec and handshake payloads of Theater's wire
 * protocol (thp_). docs/protocol.md is the specification for implementers
 * of other clients; this essay says why the protocol is shaped this way.
 *
 * WHY FRAMES AND STREAMS
 *   Theater's original server spoke length-prefixed JSON on one stream:
 *   responses and pushed events shared it, nothing correlated a response
 *   with its request, and a full event queue stalled the accept loop. Here
 *   every request opens its own stream (a 32-bit id chosen by the client,
 *   strictly increasing), every response and event names its stream, and a
 *   connection carries any number of them at once. A slow request holds
 *   only its own stream; the server answers others meanwhile, out of order.
 *
 * THE HEADER NEVER CHANGES
 *   type u8 | flags u8 | stream u32 BE | length u32 BE, then the payload.
 *   Versions negotiate what goes inside frames, never the header, so a
 *   peer that speaks only version 7 still parses our ERROR saying which
 *   versions we speak. 10 bytes keep per-event overhead low (an event frame
 *   is typically 60-120 bytes).
 *
 * VALIDITY OF A FRAME (thp_parse)
 *   1. type is 1..13; flags use only END and ZSTD;
 *   2. HELLO, WELCOME, PING, PONG and GOAWAY travel on stream 0; REQUEST,
 *      RESPONSE, DATA, EVENT, CREDIT, GAP and CANCEL on a non-zero stream;
 *      ERROR on either (on stream 0 it ends the connection);
 *   3. PING and PONG carry exactly 8 bytes; HELLO and WELCOME are never
 *      compressed and at most THP_HANDSHAKE_MAX bytes;
 *   4. length <= the negotiated maximum frame size.
 *   A frame breaking 1-3 is a protocol violation (the receiver sends GOAWAY
 *   "protocol" and closes); 4 gets GOAWAY "frame_too_large" (the stream of
 *   bytes cannot be trusted past a bogus length). Payload problems (CBOR,
 *   missing fields, unknown op) are stream-level: an ERROR on that stream
 *   and the connection goes on.
 *
 * ADAPTIVE COMPRESSION
 *   When both sides offered "zstd", a sender may compress any payload of
 *   at least THP_DEFAULT_COMPRESS_MIN bytes (level 1: cheap) and keeps the
 *   result only if it is smaller, setting ZSTD on that frame alone. Small
 *   frames (most events, acks) never pay for a compressor. The zstd frame
 *   must state its content size, and that size is checked against the
 *   maximum frame size before anything is allocated: a 40-byte bomb cannot
 *   make the receiver allocate gigabytes.
 *
 * CBOR
 *   Payloads are deterministic CBOR (RFC 8949 4.2, src/base/cbor.h) maps
 *   with text keys. Receivers accept keys in any order and ignore unknown
 *   keys, so later versions can add fields without a new version number.
 */
#include <pthread.h>
#include <zstd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "theater/protocol.h"

static const char *const type_names[] = {
	"?", "HELLO", "WELCOME", "REQUEST", "RESPONSE", "DATA", "EVENT",
	"CREDIT", "GAP", "CANCEL", "ERROR", "PING", "PONG", "GOAWAY"
};

const char *thp_type_name(unsigned type)
{
	return type <= THP_TYPE_MAX ? type_names[type] : "?";
}

void thp_free(void *p)
{
	th_free(p);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void thp_header_put(uint8_t out[THP_HEADER_LEN], uint8_t type, uint8_t flags,
		    uint32_t stream, uint32_t len)
{
	out[0] = type;
	out[1] = flags;
	put32(out + 2, stream);
	put32(out + 6, len);
}

static bool on_stream0(unsigned type)
{
	return type == THP_HELLO || type == THP_WELCOME || type == THP_PING ||
	       type == THP_PONG || type == THP_GOAWAY;
}

int thp_parse(const uint8_t *buf, size_t n, uint32_t max_len, thp_frame *f,
	      size_t *used, th_err *err)
{
	if (n < THP_HEADER_LEN)
		return 1;
	unsigned type = buf[0], flags = buf[1];
	uint32_t stream = get32(buf + 2), len = get32(buf + 6);
	if (type == 0 || type > THP_TYPE_MAX)
		return th_err_set(err, TH_EINVAL, "frame header: unknown type %u",
				  type);
	if (flags & ~THP_F_ALL)
		return th_err_set(err, TH_EINVAL,
				  "%s frame: reserved flag bits 0x%02x set",
				  thp_type_name(type), flags & ~THP_F_ALL);
	if (on_stream0(type) && stream != 0)
		return th_err_set(err, TH_EINVAL,
				  "%s frame on stream %u (must be stream 0)",
				  thp_type_name(type), stream);
	if (!on_stream0(type) && type != THP_ERROR && stream == 0)
		return th_err_set(err, TH_EINVAL,
				  "%s frame on stream 0 (needs a stream id)",
				  thp_type_name(type));
	if ((type == THP_PING || type == THP_PONG) && len != 8)
		return th_err_set(err, TH_EINVAL,
				  "%s frame of %u bytes (must be 8)",
				  thp_type_name(type), len);
	if (type == THP_HELLO || type == THP_WELCOME) {
		if (flags & THP_F_ZSTD)
			return th_err_set(err, TH_EINVAL,
					  "%s frame must not be compressed",
					  thp_type_name(type));
		if (len > THP_HANDSHAKE_MAX)
			return th_err_set(err, TH_ELIMIT,
					  "%s frame of %u bytes (limit %u)",
					  thp_type_name(type), len,
					  THP_HANDSHAKE_MAX);
	}
	if (len > max_len)
		return th_err_set(err, TH_ELIMIT,
				  "%s frame on stream %u: %u bytes (limit %u)",
				  thp_type_name(type), stream, len, max_len);
	if (n - THP_HEADER_LEN < len)
		return 1;
	f->type = (uint8_t)type;
	f->flags = (uint8_t)flags;
	f->stream = stream;
	f->len = len;
	f->payload = buf + THP_HEADER_LEN;
	*used = THP_HEADER_LEN + (size_t)len;
	return 0;
}

/* ---- buffers ---- */

void thp_buf_release(thp_buf *b)
{
	th_free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int thp_buf_reserve(thp_buf *b, size_t extra)
{
	size_t need;
	if (!th_add_ok(b->len, extra, &need))
		return TH_ENOMEM;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		if (!th_mul_ok(cap, 2, &cap))
			return TH_ENOMEM;
	uint8_t *p = th_realloc(b->p, cap);
	if (!p)
		return TH_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int thp_buf_append(thp_buf *b, const void *p, size_t n)
{
	if (thp_buf_reserve(b, n))
		return TH_ENOMEM;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* ---- compression: one context per thread, reused ---- */

struct zctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};
static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;

static void zctx_free(void *v)
{
	struct zctx *z = v;
	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	th_free(z);
}

static void zkey_init(void)
{
	(void)pthread_key_create(&zkey, zctx_free);
}

static struct zctx *zctx_get(void)
{
	pthread_once(&zonce, zkey_init);
	struct zctx *z = pthread_getspecific(zkey);
	if (z)
		return z;
	z = th_calloc(1, sizeof *z);
	if (!z)
		return NULL;
	z->c = ZSTD_createCCtx();
	z->d = ZSTD_createDCtx();
	if (!z->c || !z->d || pthread_setspecific(zkey, z) != 0) {
		zctx_free(z);
		return NULL;
	}
	return z;
}

int thp_frame_append(thp_buf *b, uint8_t type, uint8_t flags, uint32_t stream,
		     const void *payload, size_t len, size_t compress_min,
		     bool *compressed)
{
	if (compressed)
		*compressed = false;
	if (len > UINT32_MAX)
		return TH_ELIMIT;
	size_t start = b->len;
	if (compress_min && len >= compress_min && type != THP_HELLO &&
	    type != THP_WELCOME && type != THP_PING && type != THP_PONG) {
		struct zctx *z = zctx_get();
		size_t bound = ZSTD_compressBound(len);
		if (z && thp_buf_reserve(b, THP_HEADER_LEN + bound) == 0) {
			size_t got = ZSTD_compressCCtx(z->c, b->p + start + THP_HEADER_LEN,
						       bound, payload, len, 1);
			if (!ZSTD_isError(got) && got < len) {
				thp_header_put(b->p + start, type,
					       (uint8_t)(flags | THP_F_ZSTD),
					       stream, (uint32_t)got);
				b->len = start + THP_HEADER_LEN + got;
				if (compressed)
					*compressed = true;
				return 0;
			}
		}
	}
	if (thp_buf_reserve(b, THP_HEADER_LEN + len))
		return TH_ENOMEM;
	thp_header_put(b->p + start, type, (uint8_t)(flags & ~THP_F_ZSTD), stream,
		       (uint32_t)len);
	if (len)
		memcpy(b->p + start + THP_HEADER_LEN, payload, len);
	b->len = start + THP_HEADER_LEN + len;
	return 0;
}

int thp_payload(const thp_frame *f, uint32_t max_len, const uint8_t **out,
		size_t *out_len, uint8_t **owned, th_err *err)
{
	*owned = NULL;
	if (!(f->flags & THP_F_ZSTD)) {
		*out = f->payload;
		*out_len = f->len;
		return 0;
	}
	unsigned long long size = ZSTD_getFrameContentSize(f->payload, f->len);
	if (size == ZSTD_CONTENTSIZE_ERROR)
		return th_err_set(err, TH_EINVAL,
				  "%s frame on stream %u: compressed payload is not a zstd frame",
				  thp_type_name(f->type), f->stream);
	if (size == ZSTD_CONTENTSIZE_UNKNOWN)
		return th_err_set(err, TH_EINVAL,
				  "%s frame on stream %u: zstd frame does not state its size",
				  thp_type_name(f->type), f->stream);
	if (size > max_len)
		return th_err_set(err, TH_ELIMIT,
				  "%s frame on stream %u: decompresses to %llu bytes (limit %u)",
				  thp_type_name(f->type), f->stream, size, max_len);
	struct zctx *z = zctx_get();
	uint8_t *buf = th_malloc(size ? (size_t)size : 1);
	if (!z || !buf) {
		th_free(buf);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	size_t got = ZSTD_decompressDCtx(z->d, buf, (size_t)size, f->payload, f->len);
	if (ZSTD_isError(got) || got != size) {
		th_free(buf);
		return th_err_set(err, TH_EINVAL,
				  "%s frame on stream %u: corrupt zstd payload (%s)",
				  thp_type_name(f->type), f->stream,
				  ZSTD_isError(got) ? ZSTD_getErrorName(got)
						    : "size differs from the stated one");
	}
	*owned = buf;
	*out = buf;
	*out_len = (size_t)size;
	return 0;
}

/* ---- CBOR helpers ---- */

static bool key_is(const char *k, size_t kn, const char *want)
{
	return kn == strlen(want) && memcmp(k, want, kn) == 0;
}

static int get_text_into(th_cbor_dec *d, char *dst, size_t cap,
			 const char *what, th_err *err)
{
	const char *s;
	size_t n;
	if (th_cbor_get_text(d, &s, &n, err))
		return th_err_prefix(err, "%s", what);
	if (n >= cap)
		return th_err_set(err, TH_EINVAL, "%s: %zu bytes (at most %zu)",
				  what, n, cap - 1);
	memcpy(dst, s, n);
	dst[n] = 0;
	return 0;
}

static int get_u32(th_cbor_dec *d, uint32_t *v, const char *what, th_err *err)
{
	uint64_t u;
	if (th_cbor_get_uint(d, &u, err))
		return th_err_prefix(err, "%s", what);
	if (u > UINT32_MAX)
		return th_err_set(err, TH_EINVAL, "%s: %llu is above 2^32-1",
				  what, (unsigned long long)u);
	*v = (uint32_t)u;
	return 0;
}

static const struct {
	const char *name;
	unsigned bit;
} features[] = {
	{ "zstd", THP_FEAT_ZSTD },
	{ "resume", THP_FEAT_RESUME },
};

unsigned thp_feature_bit(const char *name, size_t n)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(features); i++)
		if (key_is(name, n, features[i].name))
			return features[i].bit;
	return 0;
}

static void put_features(th_cbor_enc *e, unsigned bits)
{
	size_t n = 0;
	for (size_t i = 0; i < TH_ARRAY_LEN(features); i++)
		n += (bits & features[i].bit) != 0;
	th_cbor_put_array(e, n);
	/* Sorted by name is not required inside arrays; table order is kept. */
	for (size_t i = 0; i < TH_ARRAY_LEN(features); i++)
		if (bits & features[i].bit)
			th_cbor_put_cstr(e, features[i].name);
}

static int get_features(th_cbor_dec *d, unsigned *bits, th_err *err)
{
	uint64_t n;
	if (th_cbor_get_array(d, &n, err))
		return th_err_prefix(err, "features");
	if (n > 64)
		return th_err_set(err, TH_EINVAL, "features: %llu entries (at most 64)",
				  (unsigned long long)n);
	*bits = 0;
	for (uint64_t i = 0; i < n; i++) {
		const char *s;
		size_t sn;
		if (th_cbor_get_text(d, &s, &sn, err))
			return th_err_prefix(err, "features[%llu]", (unsigned long long)i);
		*bits |= thp_feature_bit(s, sn);
	}
	return 0;
}

static bool session_ok(const char *s)
{
	size_t n = strlen(s);
	if (n != 0 && n != THP_SESSION_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* ---- HELLO ---- */

/* Keys in deterministic order: shorter first, then bytewise (RFC 8949
 * 4.2.1 sorts by encoded key, whose first byte holds the length). */
int thp_hello_encode(const thp_hello *h, uint8_t **out, size_t *len)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	bool sess = h->session[0] != 0;
	th_cbor_put_map(&e, 3 + (sess ? 3 : 0));
	if (sess) {
		th_cbor_put_cstr(&e, "last");
		th_cbor_put_uint(&e, h->last_stream);
	}
	th_cbor_put_cstr(&e, "client");
	th_cbor_put_cstr(&e, h->client);
	if (sess) {
		th_cbor_put_cstr(&e, "resume");
		th_cbor_put_array(&e, h->nresume);
		for (size_t i = 0; i < h->nresume; i++) {
			th_cbor_put_array(&e, 2);
			th_cbor_put_uint(&e, h->resume[i].stream);
			th_cbor_put_uint(&e, h->resume[i].next);
		}
	}
	if (sess) {
		th_cbor_put_cstr(&e, "session");
		th_cbor_put_cstr(&e, h->session);
	}
	th_cbor_put_cstr(&e, "features");
	put_features(&e, h->features);
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, h->nversions);
	for (size_t i = 0; i < h->nversions; i++)
		th_cbor_put_uint(&e, h->versions[i]);
	return th_cbor_enc_take(&e, out, len);
}

void thp_hello_release(thp_hello *h)
{
	th_free(h->resume);
	h->resume = NULL;
	h->nresume = 0;
}

static int hello_resume(th_cbor_dec *d, thp_hello *h, th_err *err)
{
	uint64_t n;
	if (th_cbor_get_array(d, &n, err))
		return th_err_prefix(err, "resume");
	if (n > THP_MAX_RESUME)
		return th_err_set(err, TH_EINVAL, "resume: %llu entries (at most %d)",
				  (unsigned long long)n, THP_MAX_RESUME);
	th_free(h->resume);
	h->resume = NULL;
	h->nresume = 0;
	if (n && !(h->resume = th_calloc((size_t)n, sizeof *h->resume)))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t two, next;
		uint32_t stream;
		if (th_cbor_get_array(d, &two, err) || two != 2)
			return th_err_set(err, TH_EINVAL,
					  "resume[%llu]: expected [stream, next]",
					  (unsigned long long)i);
		if (get_u32(d, &stream, "resume stream", err) ||
		    th_cbor_get_uint(d, &next, err))
			return th_err_prefix(err, "resume[%llu]", (unsigned long long)i);
		if (stream == 0)
			return th_err_set(err, TH_EINVAL, "resume[%llu]: stream 0",
					  (unsigned long long)i);
		h->resume[i].stream = stream;
		h->resume[i].next = next;
		h->nresume++;
	}
	return 0;
}

int thp_hello_decode(const uint8_t *p, size_t n, thp_hello *h, th_err *err)
{
	memset(h, 0, sizeof *h);
	th_cbor_dec d;
	uint64_t pairs;
	bool have_versions = false;
	th_cbor_dec_init(&d, p, n);
	int rc;
	if ((rc = th_cbor_get_map(&d, &pairs, err)))
		return th_err_prefix(err, "HELLO");
	for (uint64_t i = 0; i < pairs; i++) {
		const char *k;
		size_t kn;
		if ((rc = th_cbor_get_text(&d, &k, &kn, err)))
			goto fail;
		if (key_is(k, kn, "versions")) {
			uint64_t nv;
			if ((rc = th_cbor_get_array(&d, &nv, err)))
				goto fail;
			if (nv == 0 || nv > THP_MAX_VERSIONS) {
				rc = th_err_set(err, TH_EINVAL,
						"versions: %llu entries (1 to %d)",
						(unsigned long long)nv, THP_MAX_VERSIONS);
				goto fail;
			}
			for (uint64_t j = 0; j < nv; j++)
				if ((rc = get_u32(&d, &h->versions[j], "versions", err)))
					goto fail;
			h->nversions = (size_t)nv;
			have_versions = true;
		} else if (key_is(k, kn, "features")) {
			if ((rc = get_features(&d, &h->features, err)))
				goto fail;
		} else if (key_is(k, kn, "client")) {
			if ((rc = get_text_into(&d, h->client, sizeof h->client,
						"client", err)))
				goto fail;
		} else if (key_is(k, kn, "session")) {
			if ((rc = get_text_into(&d, h->session, sizeof h->session,
						"session", err)))
				goto fail;
			if (!session_ok(h->session)) {
				rc = th_err_set(err, TH_EINVAL,
						"session: expected %d lowercase hex digits",
						THP_SESSION_LEN);
				goto fail;
			}
		} else if (key_is(k, kn, "resume")) {
			if ((rc = hello_resume(&d, h, err)))
				goto fail;
		} else if (key_is(k, kn, "last")) {
			if ((rc = get_u32(&d, &h->last_stream, "last", err)))
				goto fail;
		} else if ((rc = th_cbor_skip(&d, err))) {
			goto fail;
		}
	}
	if (!th_cbor_at_end(&d)) {
		rc = th_err_set(err, TH_EINVAL, "%zu bytes after the map", d.len - d.pos);
		goto fail;
	}
	if (!have_versions) {
		rc = th_err_set(err, TH_EINVAL, "no \"versions\" key");
		goto fail;
	}
	return 0;
fail:
	thp_hello_release(h);
	return th_err_prefix(err, "HELLO");
}

uint32_t thp_negotiate(const thp_hello *h, uint32_t min, uint32_t max)
{
	uint32_t best = 0;
	for (size_t i = 0; i < h->nversions; i++)
		if (h->versions[i] >= min && h->versions[i] <= max &&
		    h->versions[i] > best)
			best = h->versions[i];
	return best;
}

/* ---- WELCOME ---- */

int thp_welcome_encode(const thp_welcome *w, uint8_t **out, size_t *len)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	/* Keys in (length, bytes) order, as deterministic CBOR wants. */
	th_cbor_put_map(&e, 8);
	th_cbor_put_cstr(&e, "idle");
	th_cbor_put_uint(&e, w->idle_timeout_ms);
	th_cbor_put_cstr(&e, "server");
	th_cbor_put_cstr(&e, w->server);
	th_cbor_put_cstr(&e, "resumed");
	th_cbor_put_bool(&e, w->resumed);
	th_cbor_put_cstr(&e, "session");
	th_cbor_put_cstr(&e, w->session);
	th_cbor_put_cstr(&e, "version");
	th_cbor_put_uint(&e, w->version);
	th_cbor_put_cstr(&e, "features");
	put_features(&e, w->features);
	th_cbor_put_cstr(&e, "max_frame");
	th_cbor_put_uint(&e, w->max_frame);
	th_cbor_put_cstr(&e, "max_streams");
	th_cbor_put_uint(&e, w->max_streams);
	return th_cbor_enc_take(&e, out, len);
}

int thp_welcome_decode(const uint8_t *p, size_t n, thp_welcome *w, th_err *err)
{
	memset(w, 0, sizeof *w);
	th_cbor_dec d;
	uint64_t pairs;
	bool have_version = false;
	int rc;
	th_cbor_dec_init(&d, p, n);
	if ((rc = th_cbor_get_map(&d, &pairs, err)))
		return th_err_prefix(err, "WELCOME");
	for (uint64_t i = 0; i < pairs; i++) {
		const char *k;
		size_t kn;
		if ((rc = th_cbor_get_text(&d, &k, &kn, err)))
			break;
		if (key_is(k, kn, "version")) {
			rc = get_u32(&d, &w->version, "version", err);
			have_version = true;
		} else if (key_is(k, kn, "features")) {
			rc = get_features(&d, &w->features, err);
		} else if (key_is(k, kn, "server")) {
			rc = get_text_into(&d, w->server, sizeof w->server, "server", err);
		} else if (key_is(k, kn, "session")) {
			rc = get_text_into(&d, w->session, sizeof w->session,
					   "session", err);
			if (!rc && !session_ok(w->session))
				rc = th_err_set(err, TH_EINVAL,
						"session: expected %d lowercase hex digits",
						THP_SESSION_LEN);
		} else if (key_is(k, kn, "resumed")) {
			rc = th_cbor_get_bool(&d, &w->resumed, err);
		} else if (key_is(k, kn, "max_frame")) {
			rc = get_u32(&d, &w->max_frame, "max_frame", err);
		} else if (key_is(k, kn, "max_streams")) {
			rc = get_u32(&d, &w->max_streams, "max_streams", err);
		} else if (key_is(k, kn, "idle")) {
			rc = get_u32(&d, &w->idle_timeout_ms, "idle", err);
		} else {
			rc = th_cbor_skip(&d, err);
		}
		if (rc)
			break;
	}
	if (!rc && !th_cbor_at_end(&d))
		rc = th_err_set(err, TH_EINVAL, "%zu bytes after the map", d.len - d.pos);
	if (!rc && !have_version)
		rc = th_err_set(err, TH_EINVAL, "no \"version\" key");
	if (!rc && w->max_frame < THP_HANDSHAKE_MAX)
		rc = th_err_set(err, TH_EINVAL, "max_frame %u is below %u",
				w->max_frame, THP_HANDSHAKE_MAX);
	return rc ? th_err_prefix(err, "WELCOME") : 0;
}

/* ---- errors ---- */

static const struct {
	int status;
	const char *code;
} status_codes[] = {
	{ TH_ENOMEM, "no_memory" },     { TH_EINVAL, "invalid" },
	{ TH_EIO, "io" },               { TH_ENOTFOUND, "not_found" },
	{ TH_ECORRUPT, "corrupt" },     { TH_EEXIST, "exists" },
	{ TH_ENOSPC, "no_space" },      { TH_ELIMIT, "limit" },
	{ TH_EPERM, "denied" },         { TH_EBUSY, "busy" },
	{ TH_ECONFLICT, "conflict" },   { TH_ETIMEOUT, "timeout" },
	{ TH_ESTATE, "state" },         { TH_EUNSUPPORTED, "unsupported" },
};

const char *thp_status_code(int status)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(status_codes); i++)
		if (status_codes[i].status == status)
			return status_codes[i].code;
	return "io";
}

int thp_code_status(const char *code)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(status_codes); i++)
		if (!strcmp(status_codes[i].code, code))
			return status_codes[i].status;
	if (!strcmp(code, THP_ERR_TIMEOUT))
		return TH_ETIMEOUT;
	if (!strcmp(code, THP_ERR_TOO_MANY_STREAMS) ||
	    !strcmp(code, THP_ERR_FRAME_TOO_LARGE))
		return TH_ELIMIT;
	if (!strcmp(code, THP_ERR_VERSION) || !strcmp(code, THP_ERR_UNKNOWN_OP))
		return TH_EUNSUPPORTED;
	if (!strcmp(code, THP_ERR_BAD_REQUEST) || !strcmp(code, THP_ERR_PROTOCOL))
		return TH_EINVAL;
	return TH_EIO;
}

int thp_error_encode(const char *code, int status, const char *message,
		     uint8_t **out, size_t *len)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_map(&e, 3);
	th_cbor_put_cstr(&e, "code");
	th_cbor_put_cstr(&e, code);
	th_cbor_put_cstr(&e, "status");
	th_cbor_put_int(&e, status);
	th_cbor_put_cstr(&e, "message");
	/* Messages are ours or the OS's; make sure they are valid UTF-8. */
	size_t bad, n = strlen(message);
	th_cbor_put_text(&e, message, th_cbor_utf8_ok(message, n, &bad) ? n : bad);
	return th_cbor_enc_take(&e, out, len);
}

int thp_error_decode(const uint8_t *p, size_t n, thp_error *e, th_err *err)
{
	memset(e, 0, sizeof *e);
	th_cbor_dec d;
	uint64_t pairs;
	bool have_code = false;
	int rc;
	th_cbor_dec_init(&d, p, n);
	if ((rc = th_cbor_get_map(&d, &pairs, err)))
		return th_err_prefix(err, "ERROR");
	for (uint64_t i = 0; i < pairs && !rc; i++) {
		const char *k, *s;
		size_t kn, sn;
		if ((rc = th_cbor_get_text(&d, &k, &kn, err)))
			break;
		if (key_is(k, kn, "code")) {
			rc = get_text_into(&d, e->code, sizeof e->code, "code", err);
			have_code = true;
		} else if (key_is(k, kn, "message")) {
			/* Long messages are cut, not refused. */
			if (!(rc = th_cbor_get_text(&d, &s, &sn, err))) {
				if (sn >= sizeof e->message)
					sn = sizeof e->message - 1;
				memcpy(e->message, s, sn);
				e->message[sn] = 0;
			}
		} else if (key_is(k, kn, "status")) {
			int64_t v;
			if (!(rc = th_cbor_get_int(&d, &v, err)))
				e->status = v < -1000 || v > 0 ? TH_EIO : (int)v;
		} else {
			rc = th_cbor_skip(&d, err);
		}
	}
	if (!rc && !have_code)
		rc = th_err_set(err, TH_EINVAL, "no \"code\" key");
	if (!rc && e->status == 0)
		e->status = thp_code_status(e->code);
	return rc ? th_err_prefix(err, "ERROR") : 0;
}
