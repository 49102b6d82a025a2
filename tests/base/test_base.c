/* White-box tests of src/base: allocator seam, errors, hex, th_lock. */
#include <pthread.h>
#include <unistd.h>

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

/* th_lock: threads increment a plain counter with a gap between read and
 * write, so a lost update shows a lock that let two in; every 500th
 * holder sleeps inside, so the others spin out and sleep on the futex
 * (the wake on release must not be lost, or the test hangs). */
enum { LOCK_THREADS = 4, LOCK_ROUNDS = 20000 };
static th_lock test_lock;
static volatile long locked_count;

static void *lock_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < LOCK_ROUNDS; i++) {
		th_lock_take(&test_lock);
		long x = locked_count;
		th_cpu_relax();
		if (i % 500 == 0)
			usleep(200);
		locked_count = x + 1;
		th_lock_give(&test_lock);
	}
	return NULL;
}

TEST(th_lock_excludes_and_wakes_sleepers)
{
	pthread_t t[LOCK_THREADS];
	for (int i = 0; i < LOCK_THREADS; i++)
		REQUIRE(pthread_create(&t[i], NULL, lock_worker, NULL) == 0);
	for (int i = 0; i < LOCK_THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(locked_count, (long)LOCK_THREADS * LOCK_ROUNDS);
	CHECK_EQ_INT(test_lock.v, 0); /* free, and no sleeper marked */
}

TEST_MAIN()
