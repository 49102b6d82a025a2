/* test_cbor.c - deterministic CBOR encoder and strict decoder. Vectors from
 * RFC 8949 Appendix A. */
#include <math.h>

#include "base/base.h"
#include "base/cbor.h"
#include "test.h"

static bool enc_is(th_cbor_enc *e, const char *hex)
{
	char buf[512];
	if (e->err || e->len * 2 + 1 > sizeof buf)
		return false;
	th_hex(e->buf, e->len, buf);
	if (strcmp(buf, hex) != 0)
		fprintf(stderr, "  got %s want %s\n", buf, hex);
	return strcmp(buf, hex) == 0;
}

static bool uint_is(uint64_t v, const char *hex)
{
	uint8_t b[16];
	th_cbor_enc e;
	th_cbor_enc_init(&e, b, sizeof b);
	th_cbor_put_uint(&e, v);
	return enc_is(&e, hex);
}

static bool int_is(int64_t v, const char *hex)
{
	uint8_t b[16];
	th_cbor_enc e;
	th_cbor_enc_init(&e, b, sizeof b);
	th_cbor_put_int(&e, v);
	return enc_is(&e, hex);
}

static bool dbl_is(double v, const char *hex)
{
	uint8_t b[16];
	th_cbor_enc e;
	th_cbor_enc_init(&e, b, sizeof b);
	th_cbor_put_double(&e, v);
	return enc_is(&e, hex);
}

/* Decode hex into buf; returns length. */
static size_t unhex(const char *hex, uint8_t *buf)
{
	size_t n = strlen(hex) / 2;
	REQUIRE(th_unhex(hex, buf, n));
	return n;
}

TEST(integers_shortest_form)
{
	CHECK(uint_is(0, "00"));
	CHECK(uint_is(23, "17"));
	CHECK(uint_is(24, "1818"));
	CHECK(uint_is(255, "18ff"));
	CHECK(uint_is(256, "190100"));
	CHECK(uint_is(65535, "19ffff"));
	CHECK(uint_is(65536, "1a00010000"));
	CHECK(uint_is(1000000, "1a000f4240"));
	CHECK(uint_is(4294967295u, "1affffffff"));
	CHECK(uint_is(4294967296u, "1b0000000100000000"));
	CHECK(uint_is(18446744073709551615ull, "1bffffffffffffffff"));
	CHECK(int_is(-1, "20"));
	CHECK(int_is(-10, "29"));
	CHECK(int_is(-100, "3863"));
	CHECK(int_is(-1000, "3903e7"));
	CHECK(int_is(INT64_MIN, "3b7fffffffffffffff"));
}

TEST(floats_shortest_exact_form)
{
	CHECK(dbl_is(0.0, "f90000"));
	CHECK(dbl_is(-0.0, "f98000"));
	CHECK(dbl_is(1.0, "f93c00"));
	CHECK(dbl_is(1.5, "f93e00"));
	CHECK(dbl_is(65504.0, "f97bff"));
	CHECK(dbl_is(100000.0, "fa47c35000"));
	CHECK(dbl_is(3.4028234663852886e+38, "fa7f7fffff"));
	CHECK(dbl_is(1.1, "fb3ff199999999999a"));
	CHECK(dbl_is(5.960464477539063e-8, "f90001"));
	CHECK(dbl_is(0.00006103515625, "f90400"));
	CHECK(dbl_is(-4.0, "f9c400"));
	CHECK(dbl_is(INFINITY, "f97c00"));
	CHECK(dbl_is(-INFINITY, "f9fc00"));
	CHECK(dbl_is(NAN, "f97e00"));
	CHECK(dbl_is(1.0e+300, "fb7e37e43c8800759c"));
}

TEST(strings_arrays_maps)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_map(&e, 2);
	th_cbor_put_cstr(&e, "a");
	th_cbor_put_uint(&e, 1);
	th_cbor_put_cstr(&e, "b");
	th_cbor_put_array(&e, 2);
	th_cbor_put_uint(&e, 2);
	th_cbor_put_uint(&e, 3);
	CHECK(enc_is(&e, "a26161016162820203"));
	th_cbor_enc_release(&e);

	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_bytes(&e, "\x01\x02\x03\x04", 4);
	th_cbor_put_cstr(&e, "\xc3\xbc");
	th_cbor_put_bool(&e, false);
	th_cbor_put_bool(&e, true);
	th_cbor_put_null(&e);
	CHECK(enc_is(&e, "440102030462c3bcf4f5f6"));
	uint8_t *out;
	size_t n;
	REQUIRE(th_cbor_enc_take(&e, &out, &n) == 0);
	CHECK_EQ_INT(n, 11);
	th_free(out);
}

TEST(long_string_heads)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	char big[300];
	memset(big, 'x', sizeof big);
	th_cbor_put_text(&e, big, sizeof big);
	REQUIRE(e.err == 0);
	CHECK_EQ_INT(e.len, 3 + 300);
	CHECK(e.buf[0] == 0x79 && e.buf[1] == 0x01 && e.buf[2] == 0x2c);
	th_cbor_dec d;
	th_cbor_dec_init(&d, e.buf, e.len);
	const char *s;
	size_t sn;
	CHECK_EQ_INT(th_cbor_get_text(&d, &s, &sn, NULL), 0);
	CHECK_EQ_INT(sn, 300);
	CHECK(th_cbor_at_end(&d));
	th_cbor_enc_release(&e);
}

TEST(decode_round_trip)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, 6);
	th_cbor_put_uint(&e, 1u << 31);
	th_cbor_put_int(&e, -500);
	th_cbor_put_bytes(&e, "ab", 2);
	th_cbor_put_cstr(&e, "hi");
	th_cbor_put_null(&e);
	th_cbor_put_double(&e, 2.5);
	REQUIRE(e.err == 0);
	th_err err = { 0 };
	CHECK(th_cbor_check_deterministic(e.buf, e.len, &err));

	th_cbor_dec d;
	th_cbor_dec_init(&d, e.buf, e.len);
	uint64_t n, u;
	int64_t i;
	const uint8_t *b;
	const char *s;
	size_t bl;
	double f;
	CHECK(th_cbor_peek(&d) == TH_CBOR_ARRAY);
	CHECK_EQ_INT(th_cbor_get_array(&d, &n, NULL), 0);
	CHECK_EQ_INT(n, 6);
	CHECK_EQ_INT(th_cbor_get_uint(&d, &u, NULL), 0);
	CHECK_EQ_INT(u, 1u << 31);
	/* A wrong-type read fails and does not move. */
	CHECK_EQ_INT(th_cbor_get_uint(&d, &u, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "offset 6") != NULL);
	CHECK_EQ_INT(th_cbor_get_int(&d, &i, NULL), 0);
	CHECK_EQ_INT(i, -500);
	CHECK_EQ_INT(th_cbor_get_bytes(&d, &b, &bl, NULL), 0);
	CHECK(bl == 2 && memcmp(b, "ab", 2) == 0);
	CHECK_EQ_INT(th_cbor_get_text(&d, &s, &bl, NULL), 0);
	CHECK(bl == 2 && memcmp(s, "hi", 2) == 0);
	CHECK(th_cbor_get_null(&d));
	CHECK_EQ_INT(th_cbor_get_double(&d, &f, NULL), 0);
	CHECK(f == 2.5);
	CHECK(th_cbor_at_end(&d));
	CHECK_EQ_INT(th_cbor_peek(&d), -1);
	th_cbor_enc_release(&e);
}

TEST(decoder_rejects_non_canonical_and_malformed)
{
	static const struct {
		const char *hex;
		const char *why;
	} bad[] = {
		{ "1817", "non-shortest" },        /* 23 in two bytes */
		{ "190017", "non-shortest" },
		{ "1a0000ffff", "non-shortest" },
		{ "5f4101ff", "indefinite" },      /* indefinite byte string */
		{ "1c", "reserved" },
		{ "4501", "runs past" },           /* bytes longer than input */
		{ "1b0000", "truncated" },
		{ "62c328", "UTF-8" },             /* bad continuation */
		{ "63eda080", "UTF-8" },           /* surrogate */
		{ "c074", "tags" },
		{ "a2616201616102", "out of order" },
		{ "a2616101616102", "duplicate" },
		{ "fa3f800000", "shortest" },       /* 1.0 as single */
		{ "f97e01", "shortest" },           /* NaN with payload */
		{ "0000", "trailing" },
		{ "f818", "simple" },
	};
	for (size_t k = 0; k < TH_ARRAY_LEN(bad); k++) {
		uint8_t buf[64];
		size_t n = unhex(bad[k].hex, buf);
		th_err err = { 0 };
		bool ok = th_cbor_check_deterministic(buf, n, &err);
		CHECK(!ok);
		if (!ok && !strstr(err.msg, bad[k].why))
			fprintf(stderr, "  %s: message '%s' lacks '%s'\n", bad[k].hex,
				err.msg, bad[k].why);
		CHECK(ok || strstr(err.msg, bad[k].why) != NULL);
	}
}

TEST(deep_nesting_is_bounded)
{
	uint8_t buf[200];
	memset(buf, 0x81, sizeof buf); /* [[[[...]]]] */
	buf[sizeof buf - 1] = 0x00;
	th_err err = { 0 };
	CHECK(!th_cbor_check_deterministic(buf, sizeof buf, &err));
	CHECK(strstr(err.msg, "nesting") != NULL);
	th_cbor_dec d;
	th_cbor_dec_init(&d, buf, sizeof buf);
	CHECK_EQ_INT(th_cbor_skip(&d, NULL), TH_EINVAL);
	CHECK_EQ_INT(d.pos, 0);
}

TEST(fixed_buffer_overflow_is_sticky)
{
	uint8_t b[4];
	th_cbor_enc e;
	th_cbor_enc_init(&e, b, sizeof b);
	th_cbor_put_bytes(&e, "abcdef", 6);
	CHECK_EQ_INT(e.err, TH_ELIMIT);
	th_cbor_put_uint(&e, 1);
	CHECK_EQ_INT(e.err, TH_ELIMIT);
}

TEST(allocation_failure_is_reported)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_alloc_fail_after(0);
	th_cbor_put_cstr(&e, "hello");
	th_alloc_fail_after(-1);
	CHECK_EQ_INT(e.err, TH_ENOMEM);
	uint8_t *out = NULL;
	size_t n = 0;
	CHECK_EQ_INT(th_cbor_enc_take(&e, &out, &n), TH_ENOMEM);
	CHECK(out == NULL);
}

TEST(every_truncation_of_a_valid_item_is_rejected)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_map(&e, 2);
	th_cbor_put_uint(&e, 1);
	th_cbor_put_bytes(&e, "0123456789012345678901234567", 28);
	th_cbor_put_uint(&e, 2);
	th_cbor_put_array(&e, 2);
	th_cbor_put_uint(&e, 70000);
	th_cbor_put_double(&e, 1.1);
	REQUIRE(e.err == 0);
	CHECK(th_cbor_check_deterministic(e.buf, e.len, NULL));
	for (size_t n = 0; n < e.len; n++)
		CHECK(!th_cbor_check_deterministic(e.buf, n, NULL));
	th_cbor_enc_release(&e);
}

TEST_MAIN()
