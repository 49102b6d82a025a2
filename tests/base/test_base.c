/* White-box tests of src/base: allocator seam, errors, hex. */
#include "base/base.h"
#include "test.h"

TEST(alloc_failure_injection)
{
	th_alloc_fail_after(1);
	void *a = th_malloc(16);
	void *b = th_malloc(16);
	CHECK(a != NULL);
	CHECK(b == NULL);
	CHECK(th_strdup("x") == NULL);
	th_alloc_fail_after(-1);
	void *c = th_malloc(16);
	CHECK(c != NULL);
	th_free(a);
	th_free(c);
	th_free(NULL);
}

TEST(err_set_and_prefix)
{
	th_err e = { 0 };
	CHECK_EQ_INT(th_err_set(&e, TH_EINVAL, "bad %d", 7), TH_EINVAL);
	CHECK_EQ_STR(e.msg, "bad 7");
	th_err_prefix(&e, "file %s", "a.toml");
	CHECK_EQ_STR(e.msg, "file a.toml: bad 7");
	CHECK_EQ_INT(th_err_set(NULL, TH_EIO, "ignored"), TH_EIO);
}

TEST(hex_roundtrip)
{
	uint8_t in[3] = { 0x00, 0xab, 0xff }, out[3];
	char s[7];
	th_hex(in, 3, s);
	CHECK_EQ_STR(s, "00abff");
	CHECK(th_unhex("00ABff", out, 3));
	CHECK(memcmp(in, out, 3) == 0);
	CHECK(!th_unhex("00abf", out, 3));
	CHECK(!th_unhex("00abffee", out, 3));
	CHECK(!th_unhex("zzabff", out, 3));
}

TEST_MAIN()
