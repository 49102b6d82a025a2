/*
 * test_faults.c - allocation failure, malformed manifests, many threads.
 */
#include <pthread.h>

#include "store/hmap.h"
#include "store/manifest.h"
#include "store_test.h"

#define D THS_DEFAULT_STORE

/* Runs op with the n-th allocation failing, for every n until it passes;
 * each run must either succeed or fail cleanly with TH_ENOMEM. */
#define FAIL_EACH_ALLOCATION(op, ok_check)                                  \
	do {                                                                \
		int passed_ = 0;                                            \
		for (long n_ = 0; n_ < 500 && !passed_; n_++) {             \
			th_err err_ = { 0 };                                \
			th_alloc_fail_after(n_);                            \
			int rc_ = (op);                                     \
			th_alloc_fail_after(-1);                            \
			if (rc_ == 0) {                                     \
				passed_ = 1;                                \
				ok_check;                                   \
			} else {                                            \
				CHECK_EQ_INT(rc_, TH_ENOMEM);               \
				CHECK(err_.msg[0] != 0);                    \
			}                                                   \
		}                                                           \
		CHECK(passed_);                                             \
	} while (0)

TEST(allocation_failure_fails_cleanly)
{
	ths_store *s = st_open(1 << 20);
	size_t n = 600 * 1024;
	uint8_t *x = st_random(n, 21);
	ths_hash h, small;
	uint8_t *d = NULL;
	size_t len = 0;
	ths_label_entry *labels = NULL;
	size_t nl = 0;
	FAIL_EACH_ALLOCATION(ths_put(s, x, n, &h, &err_), (void)0);
	FAIL_EACH_ALLOCATION(ths_put(s, "tiny", 4, &small, &err_), (void)0);
	/* Big enough for the helper hashing thread. */
	size_t nb = 5 << 20;
	uint8_t *xb = st_random(nb, 22);
	ths_hash hb;
	FAIL_EACH_ALLOCATION(ths_put(s, xb, nb, &hb, &err_),
			     CHECK_EQ_INT(ths_size(s, &hb, &(uint64_t){ 0 }, NULL), 0));
	free(xb);
	FAIL_EACH_ALLOCATION(ths_get(s, &h, n, &d, &len, &err_),
			     CHECK(len == n && !memcmp(d, x, n)));
	ths_buf_free(d);
	FAIL_EACH_ALLOCATION(ths_label_set(s, D, "big", &h, &err_), (void)0);
	FAIL_EACH_ALLOCATION(ths_label_list(s, D, &labels, &nl, &err_),
			     CHECK_EQ_INT(nl, 1));
	ths_buf_free(labels);
	FAIL_EACH_ALLOCATION(ths_pin(s, &small, &err_), (void)0);
	FAIL_EACH_ALLOCATION(ths_gc(s, 0, NULL, &err_), (void)0);
	FAIL_EACH_ALLOCATION(ths_verify(s, NULL, NULL, NULL, NULL, NULL, &err_),
			     (void)0);
	/* Nothing half-done is left behind: everything still verifies and
	 * the pinned and labelled content survived the GCs. */
	CHECK_EQ_INT(ths_exists(s, &small, NULL), 1);
	REQUIRE(ths_get(s, &h, n, &d, &len, NULL) == 0);
	CHECK(!memcmp(d, x, n));
	ths_buf_free(d);
	free(x);
	st_cleanup(s);
}

TEST(open_fails_cleanly_without_memory)
{
	char root[] = "/tmp/ths_test_XXXXXX";
	REQUIRE(mkdtemp(root) != NULL);
	ths_store *s = NULL;
	FAIL_EACH_ALLOCATION(ths_open(root, NULL, &s, &err_), ths_close(s));
	char cmd[100];
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	CHECK(system(cmd) == 0);
}

TEST(open_reports_unusable_root)
{
	ths_store *s;
	th_err err = { 0 };
	CHECK_EQ_INT(ths_open("/proc/version/store", NULL, &s, &err) < 0, 1);
	CHECK(strstr(err.msg, "/proc/version/store") != NULL);
	CHECK_EQ_INT(ths_open("", NULL, &s, &err), TH_EINVAL);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

TEST(malformed_manifests_are_rejected)
{
	ths__mf_builder b;
	ths_hash h;
	memset(h.b, 1, 32);
	REQUIRE(ths__mf_builder_init(&b) == 0);
	REQUIRE(ths__mf_builder_add(&b, &h, 1000) == 0);
	REQUIRE(ths__mf_builder_add(&b, &h, 2000) == 0);
	ths__mf_builder_finish(&b);
	ths__manifest mf;
	th_err err = { 0 };
	REQUIRE(ths__mf_parse(b.buf, b.len, &mf, &err) == 0);
	CHECK_EQ_INT(mf.total, 3000);
	CHECK_EQ_INT(mf.chunks[1].offset, 1000);
	ths__mf_release(&mf);
	uint8_t bad[200];
	memcpy(bad, b.buf, b.len);
	/* Truncated. */
	CHECK_EQ_INT(ths__mf_parse(bad, b.len - 1, &mf, &err), TH_EINVAL);
	/* Count and length disagree. */
	le32(bad + 16, 3);
	CHECK_EQ_INT(ths__mf_parse(bad, b.len, &mf, &err), TH_EINVAL);
	le32(bad + 16, 2);
	/* Sizes do not sum to the total. */
	bad[8] ^= 1;
	CHECK_EQ_INT(ths__mf_parse(bad, b.len, &mf, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "sum") != NULL);
	bad[8] ^= 1;
	/* A chunk over the maximum size. */
	le32(bad + 24 + 32, THS_CHUNK_MAX + 1);
	CHECK_EQ_INT(ths__mf_parse(bad, b.len, &mf, &err), TH_EINVAL);
	/* No chunks. */
	CHECK_EQ_INT(ths__mf_parse(bad, 24, &mf, &err), TH_EINVAL);
	ths__mf_builder_release(&b);
}

TEST(hmap_insert_find_delete)
{
	ths__hmap m;
	ths__hmap_init(&m);
	ths_hash k;
	for (int i = 0; i < 5000; i++) {
		memset(k.b, 0, 32);
		/* Few distinct home slots: long probe runs. */
		k.b[0] = (uint8_t)(i % 7);
		memcpy(k.b + 8, &i, sizeof i);
		ths__hval *v;
		REQUIRE(ths__hmap_upsert(&m, &k, &v) == 1);
		v->n = (uint64_t)i;
	}
	for (int i = 0; i < 5000; i += 2) {
		memset(k.b, 0, 32);
		k.b[0] = (uint8_t)(i % 7);
		memcpy(k.b + 8, &i, sizeof i);
		CHECK(ths__hmap_del(&m, &k));
	}
	CHECK_EQ_INT(m.count, 2500);
	for (int i = 0; i < 5000; i++) {
		memset(k.b, 0, 32);
		k.b[0] = (uint8_t)(i % 7);
		memcpy(k.b + 8, &i, sizeof i);
		ths__hval *v = ths__hmap_find(&m, &k);
		if (i % 2)
			CHECK(v && v->n == (uint64_t)i);
		else
			CHECK(v == NULL);
	}
	ths__hmap_release(&m);
}

struct worker {
	ths_store *s;
	int id;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 30; i++) {
		size_t n = (size_t)((i % 3 == 0) ? 200000 : 1000 + i);
		uint8_t *x = st_random(n, (uint64_t)(w->id * 1000 + i));
		ths_hash h;
		char label[32];
		snprintf(label, sizeof label, "w%d-%d", w->id, i);
		uint8_t *d = NULL;
		size_t len = 0;
		if (ths_store_at_label(w->s, D, label, x, n, &h, NULL) ||
		    ths_pin(w->s, &h, NULL) ||
		    ths_get(w->s, &h, n, &d, &len, NULL) || len != n ||
		    memcmp(d, x, n) || ths_unpin(w->s, &h, NULL))
			w->failures++;
		ths_buf_free(d);
		free(x);
		if (i % 10 == 9 && ths_gc(w->s, 0, NULL, NULL))
			w->failures++;
	}
	return NULL;
}

TEST(many_threads_share_one_handle)
{
	ths_store *s = st_open(512 * 1024);
	struct worker w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .s = s, .id = i };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ_INT(w[i].failures, 0);
	}
	ths_label_entry *v;
	size_t n;
	REQUIRE(ths_label_list(s, D, &v, &n, NULL) == 0);
	CHECK_EQ_INT(n, 120);
	ths_buf_free(v);
	REQUIRE(ths_gc(s, 0, NULL, NULL) == 0);
	th_err err = { 0 };
	CHECK_EQ_INT(ths_verify(s, NULL, NULL, NULL, NULL, NULL, &err), 0);
	st_cleanup(s);
}

TEST_MAIN()
