/*
 * codec.c - the canonical encodings the chain hashes, and record framing.
 *
 * Event (hashed; docs/chain.md has a worked example):
 *   array(7) [ parent: bstr(32) / null, actor: tstr, seq: uint,
 *              timestamp_ns: uint, type: tstr, data: bstr,
 *              description: tstr / null ]
 * Stub of a pruned event (not hashed; its hash is stored beside it):
 *   array(6) [ parent / null, actor, seq, timestamp_ns, type, size: uint ]
 * Block header (hashed):
 *   array(6) [ prev: bstr(32) / null, chain: tstr, index: uint,
 *              first_seq: uint, count: uint, merkle_root: bstr(32) ]
 * All in RFC 8949 core deterministic encoding (shortest heads, definite
 * lengths); arrays with a fixed order, so there are no map keys to sort.
 */
#include "chain/internal.h"

void thx__enc_event(th_cbor_enc *e, const uint8_t *parent, const char *actor,
		    size_t actor_len, uint64_t seq, uint64_t ts,
		    const char *type, size_t type_len, const void *data,
		    size_t len, const char *desc, size_t desc_len)
{
	th_cbor_put_array(e, 7);
	if (parent)
		th_cbor_put_bytes(e, parent, 32);
	else
		th_cbor_put_null(e);
	th_cbor_put_text(e, actor, actor_len);
	th_cbor_put_uint(e, seq);
	th_cbor_put_uint(e, ts);
	th_cbor_put_text(e, type, type_len);
	th_cbor_put_bytes(e, data, len);
	if (desc)
		th_cbor_put_text(e, desc, desc_len);
	else
		th_cbor_put_null(e);
}

/* A CBOR head in its shortest form (RFC 8949 section 4.2.1). */
static inline uint8_t *raw_head(uint8_t *p, uint8_t major, uint64_t v)
{
	major = (uint8_t)(major << 5);
	if (v < 24) {
		*p++ = (uint8_t)(major | v);
	} else if (v <= 0xff) {
		*p++ = major | 24;
		*p++ = (uint8_t)v;
	} else if (v <= 0xffff) {
		*p++ = major | 25;
		*p++ = (uint8_t)(v >> 8);
		*p++ = (uint8_t)v;
	} else if (v <= 0xffffffffu) {
		*p++ = major | 26;
		for (int s = 24; s >= 0; s -= 8)
			*p++ = (uint8_t)(v >> s);
	} else {
		*p++ = major | 27;
		for (int s = 56; s >= 0; s -= 8)
			*p++ = (uint8_t)(v >> s);
	}
	return p;
}

static inline uint8_t *raw_str(uint8_t *p, uint8_t major, const void *s, size_t n)
{
	p = raw_head(p, major, n);
	if (n)
		memcpy(p, s, n);
	return p + n;
}

/* The append path's encoder: the same bytes as thx__enc_event (a test
 * compares them), written straight into a buffer known to be large
 * enough. */
size_t thx__enc_event_raw(uint8_t *dst, const uint8_t *parent, const char *actor,
			  size_t actor_len, uint64_t seq, uint64_t ts,
			  const char *type, size_t type_len, const void *data,
			  size_t len, const char *desc, size_t desc_len)
{
	uint8_t *p = dst;
	*p++ = 0x87; /* array(7) */
	if (parent) {
		*p++ = 0x58; /* bstr, 1-byte length */
		*p++ = 32;
		memcpy(p, parent, 32);
		p += 32;
	} else {
		*p++ = 0xf6;
	}
	p = raw_str(p, 3, actor, actor_len);
	p = raw_head(p, 0, seq);
	p = raw_head(p, 0, ts);
	p = raw_str(p, 3, type, type_len);
	p = raw_str(p, 2, data, len);
	if (desc)
		p = raw_str(p, 3, desc, desc_len);
	else
		*p++ = 0xf6;
	return (size_t)(p - dst);
}

static int get_parent(th_cbor_dec *d, thx__ev *ev, th_err *err)
{
	const uint8_t *p;
	size_t n;
	if (th_cbor_get_null(d)) {
		ev->has_parent = false;
		memset(ev->parent, 0, 32);
		return 0;
	}
	if (th_cbor_get_bytes(d, &p, &n, err))
		return TH_EINVAL;
	if (n != 32)
		return th_err_set(err, TH_EINVAL, "parent hash has %zu bytes, not 32", n);
	ev->has_parent = true;
	memcpy(ev->parent, p, 32);
	return 0;
}

static int get_name(th_cbor_dec *d, const char **s, size_t *n, const char *what,
		    th_err *err)
{
	if (th_cbor_get_text(d, s, n, err))
		return th_err_prefix(err, "%s", what);
	if (*n == 0 || *n > THX_NAME_MAX)
		return th_err_set(err, TH_EINVAL, "%s has %zu bytes (1..%d allowed)",
				  what, *n, THX_NAME_MAX);
	return 0;
}

static int dec_common(th_cbor_dec *d, uint64_t want, thx__ev *ev, th_err *err)
{
	uint64_t n;
	if (th_cbor_get_array(d, &n, err))
		return TH_EINVAL;
	if (n != want)
		return th_err_set(err, TH_EINVAL, "expected an array of %llu, found %llu",
				  (unsigned long long)want, (unsigned long long)n);
	if (get_parent(d, ev, err) ||
	    get_name(d, &ev->actor, &ev->actor_len, "actor", err) ||
	    th_cbor_get_uint(d, &ev->seq, err) || th_cbor_get_uint(d, &ev->ts, err) ||
	    get_name(d, &ev->type, &ev->type_len, "event type", err))
		return TH_EINVAL;
	return 0;
}

int thx__dec_event(const uint8_t *p, size_t n, thx__ev *ev, th_err *err)
{
	th_cbor_dec d;
	th_cbor_dec_init(&d, p, n);
	memset(ev, 0, sizeof *ev);
	if (dec_common(&d, 7, ev, err) ||
	    th_cbor_get_bytes(&d, &ev->data, &ev->len, err))
		return th_err_prefix(err, "event");
	if (!th_cbor_get_null(&d) &&
	    th_cbor_get_text(&d, &ev->desc, &ev->desc_len, err))
		return th_err_prefix(err, "event description");
	if (!th_cbor_at_end(&d))
		return th_err_set(err, TH_EINVAL, "event: %zu trailing bytes", n - d.pos);
	ev->data_len = ev->len + ev->desc_len;
	return 0;
}

void thx__enc_stub(th_cbor_enc *e, const uint8_t *parent, const char *actor,
		   uint64_t seq, uint64_t ts, const char *type, uint64_t size)
{
	th_cbor_put_array(e, 6);
	if (parent)
		th_cbor_put_bytes(e, parent, 32);
	else
		th_cbor_put_null(e);
	th_cbor_put_cstr(e, actor);
	th_cbor_put_uint(e, seq);
	th_cbor_put_uint(e, ts);
	th_cbor_put_cstr(e, type);
	th_cbor_put_uint(e, size);
}

int thx__dec_stub(const uint8_t *p, size_t n, thx__ev *ev, th_err *err)
{
	th_cbor_dec d;
	th_cbor_dec_init(&d, p, n);
	memset(ev, 0, sizeof *ev);
	if (dec_common(&d, 6, ev, err) || th_cbor_get_uint(&d, &ev->data_len, err))
		return th_err_prefix(err, "pruned event");
	if (!th_cbor_at_end(&d))
		return th_err_set(err, TH_EINVAL, "pruned event: trailing bytes");
	return 0;
}

void thx__enc_block(th_cbor_enc *e, const thx_block *b, const char *chain)
{
	th_cbor_put_array(e, 6);
	if (b->has_prev)
		th_cbor_put_bytes(e, b->prev, 32);
	else
		th_cbor_put_null(e);
	th_cbor_put_cstr(e, chain);
	th_cbor_put_uint(e, b->index);
	th_cbor_put_uint(e, b->first_seq);
	th_cbor_put_uint(e, b->count);
	th_cbor_put_bytes(e, b->merkle_root, 32);
}

int thx__dec_block(const uint8_t *p, size_t n, thx_block *b, const char **chain,
		   size_t *chain_len, th_err *err)
{
	th_cbor_dec d;
	uint64_t cnt;
	const uint8_t *h;
	size_t hl;
	th_cbor_dec_init(&d, p, n);
	memset(b, 0, sizeof *b);
	if (th_cbor_get_array(&d, &cnt, err))
		return th_err_prefix(err, "block header");
	if (cnt != 6)
		return th_err_set(err, TH_EINVAL, "block header: array of %llu, not 6",
				  (unsigned long long)cnt);
	if (!th_cbor_get_null(&d)) {
		if (th_cbor_get_bytes(&d, &h, &hl, err) || hl != 32)
			return th_err_set(err, TH_EINVAL, "block header: bad previous hash");
		b->has_prev = true;
		memcpy(b->prev, h, 32);
	}
	if (get_name(&d, chain, chain_len, "block chain name", err) ||
	    th_cbor_get_uint(&d, &b->index, err) ||
	    th_cbor_get_uint(&d, &b->first_seq, err) ||
	    th_cbor_get_uint(&d, &b->count, err))
		return th_err_prefix(err, "block header");
	if (th_cbor_get_bytes(&d, &h, &hl, err) || hl != 32)
		return th_err_set(err, TH_EINVAL, "block header: bad Merkle root");
	memcpy(b->merkle_root, h, 32);
	if (!th_cbor_at_end(&d) || b->count == 0)
		return th_err_set(err, TH_EINVAL, "block header: malformed");
	return 0;
}

void thx__block_hash(thx_block *b, const char *chain)
{
	uint8_t buf[64 + 2 * 32 + THX_NAME_MAX + 8];
	th_cbor_enc e;
	th_cbor_enc_init(&e, buf, sizeof buf);
	thx__enc_block(&e, b, chain);
	thx__sha256(e.buf, e.len, b->hash);
}

/* ---- framing ---- */

static const uint8_t rec_magic[4] = { 'T', 'H', 'X', 'R' };

void thx__frame(uint8_t *buf, uint8_t type, uint32_t payload_len)
{
	memcpy(buf, rec_magic, 4);
	thx__put_le32(buf + 4, payload_len);
	buf[8] = type;
	buf[9] = buf[10] = buf[11] = 0;
	uint32_t c = thx__crc32c(0, buf + 4, 8);
	c = thx__crc32c(c, buf + THX__REC_HDR, payload_len);
	thx__put_le32(buf + 12, c);
}

long thx__hdr_len(const uint8_t *hdr)
{
	if (memcmp(hdr, rec_magic, 4) != 0)
		return -1;
	uint32_t n = thx__le32(hdr + 4);
	if (n > THX__REC_MAX || hdr[8] < THX__REC_CHAIN || hdr[8] > THX__REC_PRUNE ||
	    hdr[9] || hdr[10] || hdr[11])
		return -1;
	return (long)n;
}

bool thx__rec_crc_ok(const uint8_t *rec, uint32_t payload_len)
{
	uint32_t c = thx__crc32c(0, rec + 4, 8);
	c = thx__crc32c(c, rec + THX__REC_HDR, payload_len);
	return c == thx__le32(rec + 12);
}

void thx__seg_header(uint8_t out[THX__SEG_HDR], uint32_t segno, uint32_t version)
{
	memset(out, 0, THX__SEG_HDR);
	memcpy(out, THX__SEG_MAGIC, 8);
	thx__put_le32(out + 8, segno);
	thx__put_le32(out + 12, version);
	thx__put_le64(out + 16, th_wall_ns());
	thx__put_le32(out + 28, thx__crc32c(0, out, 28));
}

bool thx__seg_header_ok(const uint8_t *p, uint32_t *segno, uint32_t *version)
{
	if (memcmp(p, THX__SEG_MAGIC, 8) != 0 ||
	    thx__le32(p + 28) != thx__crc32c(0, p, 28))
		return false;
	*segno = thx__le32(p + 8);
	*version = thx__le32(p + 12);
	return true;
}
