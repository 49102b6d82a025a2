/* test_protocol.c - the frame codec and handshake payloads (thp_). */
#include <zstd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "test.h"
#include "theater/protocol.h"

static size_t frame(uint8_t *out, unsigned type, unsigned flags, uint32_t stream,
		    const void *payload, uint32_t len)
{
	thp_header_put(out, (uint8_t)type, (uint8_t)flags, stream, len);
	if (len)
		memcpy(out + THP_HEADER_LEN, payload, len);
	return THP_HEADER_LEN + len;
}

static int parse1(const uint8_t *buf, size_t n, thp_frame *f, th_err *err)
{
	size_t used = 0;
	return thp_parse(buf, n, 1u << 20, f, &used, err);
}

TEST(header_round_trip)
{
	uint8_t b[64];
	size_t n = frame(b, THP_EVENT, THP_F_END, 0x01020304, "abc", 3);
	CHECK_EQ_INT(b[0], THP_EVENT);
	CHECK_EQ_INT(b[1], THP_F_END);
	CHECK(b[2] == 1 && b[3] == 2 && b[4] == 3 && b[5] == 4);
	CHECK(b[6] == 0 && b[7] == 0 && b[8] == 0 && b[9] == 3);
	thp_frame f;
	size_t used = 0;
	REQUIRE(thp_parse(b, n, 100, &f, &used, NULL) == 0);
	CHECK_EQ_INT(used, n);
	CHECK_EQ_INT(f.type, THP_EVENT);
	CHECK_EQ_INT(f.flags, THP_F_END);
	CHECK_EQ_INT(f.stream, 0x01020304);
	CHECK_EQ_INT(f.len, 3);
	CHECK(memcmp(f.payload, "abc", 3) == 0);
	CHECK_EQ_STR(thp_type_name(THP_GOAWAY), "GOAWAY");
	CHECK_EQ_STR(thp_type_name(99), "?");
}

TEST(every_truncation_needs_more)
{
	uint8_t b[64];
	size_t n = frame(b, THP_REQUEST, 0, 7, "0123456789", 10);
	for (size_t i = 0; i < n; i++) {
		thp_frame f;
		size_t used = 99;
		CHECK_EQ_INT(thp_parse(b, i, 100, &f, &used, NULL), 1);
		CHECK_EQ_INT(used, 99);
	}
}

TEST(several_frames_in_one_buffer)
{
	uint8_t b[256];
	size_t n = frame(b, THP_REQUEST, 0, 1, "a", 1);
	n += frame(b + n, THP_CREDIT, 0, 1, "bb", 2);
	n += frame(b + n, THP_PING, 0, 0, "12345678", 8);
	size_t off = 0;
	unsigned types[3];
	int k = 0;
	while (off < n) {
		thp_frame f;
		size_t used;
		REQUIRE(thp_parse(b + off, n - off, 100, &f, &used, NULL) == 0);
		REQUIRE(k < 3);
		types[k++] = f.type;
		off += used;
	}
	CHECK_EQ_INT(k, 3);
	CHECK_EQ_INT(types[0], THP_REQUEST);
	CHECK_EQ_INT(types[1], THP_CREDIT);
	CHECK_EQ_INT(types[2], THP_PING);
}

TEST(unknown_types_are_errors)
{
	unsigned bad[] = { 0, THP_TYPE_MAX + 1, 0x47 /* 'G' of GET */, 255 };
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		uint8_t b[32];
		thp_frame f;
		th_err err = { 0 };
		size_t n = frame(b, bad[i], 0, 1, "x", 1);
		CHECK_EQ_INT(parse1(b, n, &f, &err), TH_EINVAL);
		CHECK(strstr(err.msg, "unknown type") != NULL);
	}
}

TEST(reserved_flags_are_errors)
{
	for (unsigned bit = 2; bit < 8; bit++) {
		uint8_t b[32];
		thp_frame f;
		th_err err = { 0 };
		size_t n = frame(b, THP_DATA, 1u << bit, 1, "x", 1);
		CHECK_EQ_INT(parse1(b, n, &f, &err), TH_EINVAL);
		CHECK(strstr(err.msg, "reserved flag") != NULL);
	}
}

TEST(stream_rules)
{
	struct {
		unsigned type;
		uint32_t stream;
		int want;
	} cases[] = {
		{ THP_HELLO, 0, 0 },      { THP_HELLO, 3, TH_EINVAL },
		{ THP_WELCOME, 1, TH_EINVAL }, { THP_GOAWAY, 2, TH_EINVAL },
		{ THP_REQUEST, 0, TH_EINVAL }, { THP_RESPONSE, 0, TH_EINVAL },
		{ THP_DATA, 0, TH_EINVAL }, { THP_EVENT, 0, TH_EINVAL },
		{ THP_CREDIT, 0, TH_EINVAL }, { THP_GAP, 0, TH_EINVAL },
		{ THP_CANCEL, 0, TH_EINVAL }, { THP_ERROR, 0, 0 },
		{ THP_ERROR, 9, 0 },      { THP_REQUEST, 9, 0 },
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
		uint8_t b[32];
		thp_frame f;
		th_err err = { 0 };
		size_t n = frame(b, cases[i].type, 0, cases[i].stream, "x", 1);
		int rc = parse1(b, n, &f, &err);
		if (rc != cases[i].want)
			fprintf(stderr, "  case %zu (%s on %u): %d %s\n", i,
				thp_type_name(cases[i].type), cases[i].stream, rc,
				err.msg);
		CHECK_EQ_INT(rc, cases[i].want);
	}
}

TEST(ping_must_be_eight_bytes)
{
	uint8_t b[32];
	thp_frame f;
	th_err err = { 0 };
	size_t n = frame(b, THP_PING, 0, 0, "1234567", 7);
	CHECK_EQ_INT(parse1(b, n, &f, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "must be 8") != NULL);
	n = frame(b, THP_PONG, 0, 0, "123456789", 9);
	CHECK_EQ_INT(parse1(b, n, &f, &err), TH_EINVAL);
	n = frame(b, THP_PONG, 0, 0, "12345678", 8);
	CHECK_EQ_INT(parse1(b, n, &f, &err), 0);
}

TEST(oversized_frames_are_refused_from_the_header)
{
	uint8_t b[THP_HEADER_LEN];
	thp_frame f;
	size_t used;
	th_err err = { 0 };
	/* Only the header is present: the length alone is enough to refuse. */
	thp_header_put(b, THP_REQUEST, 0, 1, 1001);
	CHECK_EQ_INT(thp_parse(b, sizeof b, 1000, &f, &used, &err), TH_ELIMIT);
	CHECK(strstr(err.msg, "1001 bytes (limit 1000)") != NULL);
	thp_header_put(b, THP_REQUEST, 0, 1, 1000);
	CHECK_EQ_INT(thp_parse(b, sizeof b, 1000, &f, &used, &err), 1);
	thp_header_put(b, THP_DATA, 0, 1, UINT32_MAX);
	CHECK_EQ_INT(thp_parse(b, sizeof b, UINT32_MAX - 1, &f, &used, &err),
		     TH_ELIMIT);
	/* The handshake has its own small limit, whatever max_len says. */
	thp_header_put(b, THP_HELLO, 0, 0, THP_HANDSHAKE_MAX + 1);
	CHECK_EQ_INT(thp_parse(b, sizeof b, UINT32_MAX, &f, &used, &err), TH_ELIMIT);
	thp_header_put(b, THP_HELLO, THP_F_ZSTD, 0, 10);
	CHECK_EQ_INT(thp_parse(b, sizeof b, UINT32_MAX, &f, &used, &err), TH_EINVAL);
}

static uint8_t *text_payload(size_t n)
{
	uint8_t *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)("the quick brown fox jumps "[i % 26]);
	return p;
}

TEST(compression_only_when_it_shrinks)
{
	thp_buf b = { 0 };
	bool z = true;
	uint8_t *text = text_payload(5000);
	/* Compressible and above the threshold: compressed. */
	REQUIRE(thp_frame_append(&b, THP_RESPONSE, THP_F_END, 3, text, 5000, 512, &z) == 0);
	CHECK(z);
	CHECK(b.len < 5000 / 4);
	thp_frame f;
	size_t used;
	REQUIRE(thp_parse(b.p, b.len, 1u << 20, &f, &used, NULL) == 0);
	CHECK_EQ_INT(f.flags, THP_F_END | THP_F_ZSTD);
	const uint8_t *out;
	size_t outn;
	uint8_t *owned;
	REQUIRE(thp_payload(&f, 1u << 20, &out, &outn, &owned, NULL) == 0);
	CHECK_EQ_INT(outn, 5000);
	CHECK(memcmp(out, text, 5000) == 0);
	CHECK(owned != NULL);
	thp_free(owned);

	/* Below the threshold, or threshold 0: sent as is. */
	b.len = 0;
	REQUIRE(thp_frame_append(&b, THP_RESPONSE, 0, 3, text, 511, 512, &z) == 0);
	CHECK(!z);
	CHECK_EQ_INT(b.len, THP_HEADER_LEN + 511);
	b.len = 0;
	REQUIRE(thp_frame_append(&b, THP_RESPONSE, 0, 3, text, 5000, 0, &z) == 0);
	CHECK(!z);
	/* Incompressible: sent as is. */
	uint8_t rnd[4096];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof rnd; i++) {
		x = x * 1103515245u + 12345u;
		rnd[i] = (uint8_t)(x >> 24);
	}
	b.len = 0;
	REQUIRE(thp_frame_append(&b, THP_DATA, 0, 3, rnd, sizeof rnd, 512, &z) == 0);
	CHECK(!z);
	REQUIRE(thp_parse(b.p, b.len, 1u << 20, &f, &used, NULL) == 0);
	CHECK_EQ_INT(f.flags, 0);
	REQUIRE(thp_payload(&f, 1u << 20, &out, &outn, &owned, NULL) == 0);
	CHECK(owned == NULL && out == f.payload && outn == sizeof rnd);
	/* Handshake frames are never compressed. */
	b.len = 0;
	REQUIRE(thp_frame_append(&b, THP_HELLO, 0, 0, text, 5000, 512, &z) == 0);
	CHECK(!z);
	thp_buf_release(&b);
	free(text);
}

TEST(corrupt_compressed_payloads)
{
	uint8_t b[64];
	thp_frame f;
	const uint8_t *out;
	size_t outn;
	uint8_t *owned;
	th_err err = { 0 };
	/* Not a zstd frame at all. */
	size_t n = frame(b, THP_RESPONSE, THP_F_ZSTD, 1, "garbage!", 8);
	REQUIRE(parse1(b, n, &f, NULL) == 0);
	CHECK_EQ_INT(thp_payload(&f, 1000, &out, &outn, &owned, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "not a zstd frame") != NULL);
	/* A valid zstd frame, then truncated. */
	uint8_t *text = text_payload(3000);
	uint8_t z[4096];
	size_t zn = ZSTD_compress(z, sizeof z, text, 3000, 1);
	REQUIRE(!ZSTD_isError(zn));
	thp_frame g = { THP_RESPONSE, THP_F_ZSTD, 1, (uint32_t)(zn - 3), z };
	CHECK_EQ_INT(thp_payload(&g, 10000, &out, &outn, &owned, &err), TH_EINVAL);
	/* A bomb: states a size above the limit; refused before allocating. */
	g.len = (uint32_t)zn;
	CHECK_EQ_INT(thp_payload(&g, 2999, &out, &outn, &owned, &err), TH_ELIMIT);
	CHECK(strstr(err.msg, "decompresses to 3000 bytes") != NULL);
	CHECK_EQ_INT(thp_payload(&g, 3000, &out, &outn, &owned, &err), 0);
	thp_free(owned);
	/* A frame that does not state its size. */
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
	zn = ZSTD_compress2(c, z, sizeof z, text, 3000);
	ZSTD_freeCCtx(c);
	REQUIRE(!ZSTD_isError(zn));
	g.len = (uint32_t)zn;
	CHECK_EQ_INT(thp_payload(&g, 10000, &out, &outn, &owned, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "does not state its size") != NULL);
	free(text);
}

static void hello_sample(thp_hello *h)
{
	memset(h, 0, sizeof *h);
	h->versions[0] = 1;
	h->versions[1] = 7;
	h->nversions = 2;
	h->features = THP_FEAT_ZSTD | THP_FEAT_RESUME;
	snprintf(h->client, sizeof h->client, "test/1");
	snprintf(h->session, sizeof h->session, "0123456789abcdef0123456789abcdef");
	h->resume = th_calloc(2, sizeof *h->resume);
	h->resume[0] = (thp_resume){ 5, 100 };
	h->resume[1] = (thp_resume){ 9, 0 };
	h->nresume = 2;
	h->last_stream = 11;
}

TEST(hello_round_trip_is_deterministic)
{
	thp_hello h, back;
	hello_sample(&h);
	uint8_t *p;
	size_t n;
	REQUIRE(thp_hello_encode(&h, &p, &n) == 0);
	th_err err = { 0 };
	CHECK(th_cbor_check_deterministic(p, n, &err));
	REQUIRE(thp_hello_decode(p, n, &back, &err) == 0);
	CHECK_EQ_INT(back.nversions, 2);
	CHECK_EQ_INT(back.versions[1], 7);
	CHECK_EQ_INT(back.features, THP_FEAT_ZSTD | THP_FEAT_RESUME);
	CHECK_EQ_STR(back.client, "test/1");
	CHECK_EQ_STR(back.session, h.session);
	CHECK_EQ_INT(back.nresume, 2);
	CHECK_EQ_INT(back.resume[0].stream, 5);
	CHECK_EQ_INT(back.resume[0].next, 100);
	CHECK_EQ_INT(back.resume[1].stream, 9);
	CHECK_EQ_INT(back.last_stream, 11);
	CHECK_EQ_INT(thp_negotiate(&back, 1, 1), 1);
	CHECK_EQ_INT(thp_negotiate(&back, 1, 9), 7);
	CHECK_EQ_INT(thp_negotiate(&back, 2, 6), 0);
	/* Every strict prefix is refused cleanly. */
	for (size_t i = 0; i < n; i++) {
		thp_hello t;
		CHECK(thp_hello_decode(p, i, &t, NULL) != 0);
		CHECK(t.resume == NULL);
	}
	thp_free(p);
	thp_hello_release(&h);
	thp_hello_release(&back);
	/* A new session: no session, resume or last keys. */
	memset(&h, 0, sizeof h);
	h.versions[0] = 1;
	h.nversions = 1;
	REQUIRE(thp_hello_encode(&h, &p, &n) == 0);
	CHECK(th_cbor_check_deterministic(p, n, NULL));
	REQUIRE(thp_hello_decode(p, n, &back, NULL) == 0);
	CHECK_EQ_STR(back.session, "");
	CHECK_EQ_INT(back.features, 0);
	thp_free(p);
}

/* Encode a map from (key, encoder) pieces for malformed-HELLO cases. */
static int decode_hello_bytes(const uint8_t *p, size_t n, th_err *err)
{
	thp_hello h;
	int rc = thp_hello_decode(p, n, &h, err);
	thp_hello_release(&h);
	return rc;
}

TEST(malformed_hellos)
{
	th_err err = { 0 };
	th_cbor_enc e;
	uint8_t buf[512];

	/* Not a map. */
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_array(&e, 0);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "HELLO") != NULL);

	/* No versions. */
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 1);
	th_cbor_put_cstr(&e, "client");
	th_cbor_put_cstr(&e, "x");
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "versions") != NULL);

	/* Empty versions; a version above 2^32; versions not an array. */
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 1);
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, 0);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 1);
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, 1);
	th_cbor_put_uint(&e, 1ull << 32);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 1);
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_uint(&e, 1);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);

	/* Too many versions. */
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 1);
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, THP_MAX_VERSIONS + 1);
	for (int i = 0; i <= THP_MAX_VERSIONS; i++)
		th_cbor_put_uint(&e, 1);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);

	/* A session that is not 32 hex digits. */
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 2);
	th_cbor_put_cstr(&e, "session");
	th_cbor_put_cstr(&e, "0123456789ABCDEF0123456789ABCDEF");
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, 1);
	th_cbor_put_uint(&e, 1);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "session") != NULL);

	/* A resume entry that is not [stream, next]; stream 0. */
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 2);
	th_cbor_put_cstr(&e, "resume");
	th_cbor_put_array(&e, 1);
	th_cbor_put_array(&e, 3);
	th_cbor_put_uint(&e, 1);
	th_cbor_put_uint(&e, 1);
	th_cbor_put_uint(&e, 1);
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, 1);
	th_cbor_put_uint(&e, 1);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "resume") != NULL);
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 2);
	th_cbor_put_cstr(&e, "resume");
	th_cbor_put_array(&e, 1);
	th_cbor_put_array(&e, 2);
	th_cbor_put_uint(&e, 0);
	th_cbor_put_uint(&e, 1);
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, 1);
	th_cbor_put_uint(&e, 1);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);

	/* Trailing bytes after the map. */
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 1);
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, 1);
	th_cbor_put_uint(&e, 1);
	th_cbor_put_uint(&e, 0);
	CHECK_EQ_INT(decode_hello_bytes(buf, e.len, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "after the map") != NULL);

	/* Unknown keys (and unknown features) are ignored. */
	th_cbor_enc_init(&e, buf, sizeof buf);
	th_cbor_put_map(&e, 3);
	th_cbor_put_cstr(&e, "zz");
	th_cbor_put_map(&e, 1);
	th_cbor_put_cstr(&e, "a");
	th_cbor_put_array(&e, 0);
	th_cbor_put_cstr(&e, "features");
	th_cbor_put_array(&e, 2);
	th_cbor_put_cstr(&e, "brotli");
	th_cbor_put_cstr(&e, "zstd");
	th_cbor_put_cstr(&e, "versions");
	th_cbor_put_array(&e, 1);
	th_cbor_put_uint(&e, 3);
	thp_hello h;
	REQUIRE(thp_hello_decode(buf, e.len, &h, &err) == 0);
	CHECK_EQ_INT(h.features, THP_FEAT_ZSTD);
	CHECK_EQ_INT(h.versions[0], 3);
	thp_hello_release(&h);
}

TEST(hello_decode_survives_allocation_failure)
{
	thp_hello h;
	hello_sample(&h);
	uint8_t *p;
	size_t n;
	REQUIRE(thp_hello_encode(&h, &p, &n) == 0);
	thp_hello_release(&h);
	th_err err = { 0 };
	th_alloc_fail_after(0);
	CHECK_EQ_INT(thp_hello_decode(p, n, &h, &err), TH_ENOMEM);
	th_alloc_fail_after(-1);
	CHECK(h.resume == NULL);
	thp_free(p);
}

TEST(welcome_round_trip_is_deterministic)
{
	thp_welcome w = { .version = 1, .features = THP_FEAT_ZSTD,
			  .resumed = true, .max_frame = 1u << 20,
			  .max_streams = 99, .idle_timeout_ms = 5000 };
	snprintf(w.server, sizeof w.server, "theater/0.1");
	snprintf(w.session, sizeof w.session, "ffffffffffffffffffffffffffffffff");
	uint8_t *p;
	size_t n;
	REQUIRE(thp_welcome_encode(&w, &p, &n) == 0);
	th_err err = { 0 };
	CHECK(th_cbor_check_deterministic(p, n, &err));
	thp_welcome back;
	REQUIRE(thp_welcome_decode(p, n, &back, &err) == 0);
	CHECK_EQ_INT(back.version, 1);
	CHECK_EQ_INT(back.features, THP_FEAT_ZSTD);
	CHECK(back.resumed);
	CHECK_EQ_INT(back.max_frame, 1u << 20);
	CHECK_EQ_INT(back.max_streams, 99);
	CHECK_EQ_INT(back.idle_timeout_ms, 5000);
	CHECK_EQ_STR(back.session, w.session);
	CHECK_EQ_STR(back.server, "theater/0.1");
	for (size_t i = 0; i < n; i++)
		CHECK(thp_welcome_decode(p, i, &back, NULL) != 0);
	thp_free(p);
	/* A peer announcing a frame size below the handshake size is wrong. */
	w.max_frame = 100;
	REQUIRE(thp_welcome_encode(&w, &p, &n) == 0);
	CHECK_EQ_INT(thp_welcome_decode(p, n, &back, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "max_frame") != NULL);
	thp_free(p);
}

TEST(error_payloads)
{
	uint8_t *p;
	size_t n;
	REQUIRE(thp_error_encode(thp_status_code(TH_ENOTFOUND), TH_ENOTFOUND,
				 "no actor 'x'", &p, &n) == 0);
	CHECK(th_cbor_check_deterministic(p, n, NULL));
	thp_error e;
	REQUIRE(thp_error_decode(p, n, &e, NULL) == 0);
	CHECK_EQ_STR(e.code, "not_found");
	CHECK_EQ_INT(e.status, TH_ENOTFOUND);
	CHECK_EQ_STR(e.message, "no actor 'x'");
	thp_free(p);
	/* Invalid UTF-8 in a message is cut where it starts. */
	REQUIRE(thp_error_encode(THP_ERR_PROTOCOL, 0, "bad \xff byte", &p, &n) == 0);
	REQUIRE(thp_error_decode(p, n, &e, NULL) == 0);
	CHECK_EQ_STR(e.message, "bad ");
	CHECK_EQ_INT(e.status, TH_EINVAL); /* from the code, status 0 */
	thp_free(p);
	/* Codes and statuses map both ways. */
	int all[] = { TH_ENOMEM, TH_EINVAL, TH_EIO, TH_ENOTFOUND, TH_ECORRUPT,
		      TH_EEXIST, TH_ENOSPC, TH_ELIMIT, TH_EPERM, TH_EBUSY,
		      TH_ECONFLICT, TH_ETIMEOUT, TH_ESTATE, TH_EUNSUPPORTED };
	for (size_t i = 0; i < TH_ARRAY_LEN(all); i++)
		CHECK_EQ_INT(thp_code_status(thp_status_code(all[i])), all[i]);
	CHECK_EQ_INT(thp_code_status("never-heard-of-it"), TH_EIO);
	/* No code: refused. */
	uint8_t buf[32];
	th_cbor_enc enc;
	th_cbor_enc_init(&enc, buf, sizeof buf);
	th_cbor_put_map(&enc, 0);
	CHECK_EQ_INT(thp_error_decode(buf, enc.len, &e, NULL), TH_EINVAL);
}

TEST(feature_names)
{
	CHECK_EQ_INT(thp_feature_bit("zstd", 4), THP_FEAT_ZSTD);
	CHECK_EQ_INT(thp_feature_bit("resume", 6), THP_FEAT_RESUME);
	CHECK_EQ_INT(thp_feature_bit("zst", 3), 0);
	CHECK_EQ_INT(thp_feature_bit("zstdx", 5), 0);
}

TEST_MAIN()
