/*
 * test_labels.c - named stores and labels: set/get/remove/list, CAS,
 * validation, store-at-label, listing content and sizes.
 */
#include <pthread.h>

#include "store_test.h"

#define D THS_DEFAULT_STORE

TEST(label_set_get_remove_list)
{
	ths_store *s = st_open(0);
	th_err err = { 0 };
	ths_hash a, b, got;
	REQUIRE(ths_put(s, "a", 1, &a, NULL) == 0);
	REQUIRE(ths_put(s, "b", 1, &b, NULL) == 0);
	REQUIRE(ths_label_set(s, D, "zeta", &a, &err) == 0);
	REQUIRE(ths_label_set(s, D, "alpha", &b, &err) == 0);
	REQUIRE(ths_label_get(s, D, "zeta", &got, &err) == 0);
	CHECK(!memcmp(got.b, a.b, 32));
	REQUIRE(ths_label_set(s, D, "zeta", &b, &err) == 0);
	REQUIRE(ths_label_get(s, D, "zeta", &got, &err) == 0);
	CHECK(!memcmp(got.b, b.b, 32));
	ths_label_entry *v;
	size_t n;
	REQUIRE(ths_label_list(s, D, &v, &n, &err) == 0);
	REQUIRE(n == 2);
	CHECK_EQ_STR(v[0].name, "alpha");
	CHECK_EQ_STR(v[1].name, "zeta");
	ths_buf_free(v);
	REQUIRE(ths_label_remove(s, D, "zeta", &err) == 0);
	CHECK_EQ_INT(ths_label_get(s, D, "zeta", &got, &err), TH_ENOTFOUND);
	CHECK(strstr(err.msg, "no label 'zeta'") != NULL);
	CHECK_EQ_INT(ths_label_remove(s, D, "zeta", NULL), TH_ENOTFOUND);
	st_cleanup(s);
}

TEST(label_requires_present_object)
{
	ths_store *s = st_open(0);
	th_err err = { 0 };
	ths_hash h;
	memset(h.b, 0x11, 32);
	CHECK_EQ_INT(ths_label_set(s, D, "x", &h, &err), TH_ENOTFOUND);
	CHECK(strstr(err.msg, "no object 1111") != NULL);
	st_cleanup(s);
}

TEST(label_compare_and_swap)
{
	ths_store *s = st_open(0);
	th_err err = { 0 };
	ths_hash a, b, c, got;
	REQUIRE(ths_put(s, "a", 1, &a, NULL) == 0);
	REQUIRE(ths_put(s, "b", 1, &b, NULL) == 0);
	REQUIRE(ths_put(s, "c", 1, &c, NULL) == 0);
	/* Create-only. */
	CHECK_EQ_INT(ths_label_cas(s, D, "k", NULL, &a, &err), 0);
	CHECK_EQ_INT(ths_label_cas(s, D, "k", NULL, &b, &err), TH_ECONFLICT);
	/* Swap from the right value, refuse from a stale one. */
	CHECK_EQ_INT(ths_label_cas(s, D, "k", &a, &b, &err), 0);
	CHECK_EQ_INT(ths_label_cas(s, D, "k", &a, &c, &err), TH_ECONFLICT);
	CHECK(strstr(err.msg, "changed") != NULL);
	REQUIRE(ths_label_get(s, D, "k", &got, NULL) == 0);
	CHECK(!memcmp(got.b, b.b, 32));
	/* Remove only if unchanged. */
	CHECK_EQ_INT(ths_label_cas(s, D, "k", &c, NULL, NULL), TH_ECONFLICT);
	CHECK_EQ_INT(ths_label_cas(s, D, "k", &b, NULL, NULL), 0);
	CHECK_EQ_INT(ths_label_get(s, D, "k", &got, NULL), TH_ENOTFOUND);
	st_cleanup(s);
}

TEST(replace_requires_existing_label)
{
	ths_store *s = st_open(0);
	ths_hash a, b, got;
	REQUIRE(ths_put(s, "a", 1, &a, NULL) == 0);
	CHECK_EQ_INT(ths_label_replace(s, D, "r", &a, NULL), TH_ENOTFOUND);
	REQUIRE(ths_store_at_label(s, D, "r", "first", 5, &a, NULL) == 0);
	REQUIRE(ths_replace_content_at_label(s, D, "r", "second", 6, &b,
					     NULL) == 0);
	REQUIRE(ths_label_get(s, D, "r", &got, NULL) == 0);
	CHECK(!memcmp(got.b, b.b, 32));
	CHECK_EQ_INT(ths_replace_content_at_label(s, D, "nope", "x", 1, &b,
						  NULL), TH_ENOTFOUND);
	REQUIRE(ths_label_replace(s, D, "r", &a, NULL) == 0);
	REQUIRE(ths_label_get(s, D, "r", &got, NULL) == 0);
	CHECK(!memcmp(got.b, a.b, 32));
	st_cleanup(s);
}

TEST(named_stores_are_separate)
{
	ths_store *s = st_open(0);
	char id1[THS_NAME_MAX + 1], id2[THS_NAME_MAX + 1];
	th_err err = { 0 };
	ths_hash a, got;
	REQUIRE(ths_store_new(s, id1, &err) == 0);
	REQUIRE(ths_store_new(s, id2, &err) == 0);
	CHECK(strcmp(id1, id2) != 0);
	CHECK_EQ_INT(ths_store_check(s, id1, NULL), 0);
	REQUIRE(ths_store_at_label(s, id1, "state", "one", 3, &a, &err) == 0);
	CHECK_EQ_INT(ths_label_get(s, id2, "state", &got, NULL), TH_ENOTFOUND);
	REQUIRE(ths_label_get(s, id1, "state", &got, NULL) == 0);
	CHECK_EQ_INT(ths_label_get(s, "nosuchstore", "state", &got, &err),
		     TH_ENOTFOUND);
	CHECK(strstr(err.msg, "no store 'nosuchstore'") != NULL);
	CHECK_EQ_INT(ths_label_get(s, "../default", "state", &got, &err),
		     TH_EINVAL);
	st_cleanup(s);
}

TEST(bad_label_names_are_rejected_clearly)
{
	ths_store *s = st_open(0);
	ths_hash a;
	th_err err = { 0 };
	REQUIRE(ths_put(s, "a", 1, &a, NULL) == 0);
	char huge[400];
	memset(huge, 'x', sizeof huge - 1);
	huge[sizeof huge - 1] = 0;
	const char *bad[] = { "", "a/b", "../etc", ".hidden", "sp ace",
			      "tab\there", "back\\slash", huge };
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		memset(&err, 0, sizeof err);
		CHECK_EQ_INT(ths_label_set(s, D, bad[i], &a, &err), TH_EINVAL);
		CHECK(strstr(err.msg, "label must be") != NULL);
	}
	CHECK_EQ_INT(ths_label_set(s, D, "a/b", &a, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "path separator") != NULL);
	CHECK_EQ_INT(ths_label_set(s, D, huge, &a, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "399 bytes") != NULL);
	huge[THS_NAME_MAX] = 0;
	CHECK_EQ_INT(ths_label_set(s, D, huge, &a, NULL), 0);
	CHECK_EQ_INT(ths_label_set(s, D, "v1.2_x-y:z@w+q=r", &a, NULL), 0);
	st_cleanup(s);
}

TEST(malformed_label_file_is_reported_with_path)
{
	ths_store *s = st_open(0);
	ths_hash a;
	th_err err = { 0 };
	REQUIRE(ths_store_at_label(s, D, "l", "a", 1, &a, NULL) == 0);
	char path[400];
	snprintf(path, sizeof path, "%s/stores/default/labels/l", st_root);
	FILE *f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs("not a hash\n", f);
	fclose(f);
	CHECK_EQ_INT(ths_label_get(s, D, "l", &a, &err), TH_ECORRUPT);
	CHECK(strstr(err.msg, "stores/default/labels/l") != NULL);
	st_cleanup(s);
}

TEST(content_list_and_total_size)
{
	ths_store *s = st_open(0);
	char id[THS_NAME_MAX + 1];
	size_t big_n = 1 << 20;
	uint8_t *big = st_random(big_n, 5);
	ths_hash h;
	REQUIRE(ths_store_new(s, id, NULL) == 0);
	REQUIRE(ths_store_at_label(s, id, "small", "12345", 5, &h, NULL) == 0);
	REQUIRE(ths_store_at_label(s, id, "big", big, big_n, &h, NULL) == 0);
	REQUIRE(ths_store_at_label(s, id, "big2", big, big_n, &h, NULL) == 0);
	REQUIRE(ths_put(s, "unlabelled", 10, &h, NULL) == 0);
	ths_content_entry *v;
	size_t n;
	REQUIRE(ths_content_list(s, id, &v, &n, NULL) == 0);
	CHECK_EQ_INT(n, 2);
	int chunked = 0;
	for (size_t i = 0; i < n; i++)
		chunked += v[i].chunked;
	CHECK_EQ_INT(chunked, 1);
	ths_buf_free(v);
	uint64_t total = 0;
	REQUIRE(ths_total_size(s, id, &total, NULL) == 0);
	CHECK_EQ_INT(total, big_n + 5);
	REQUIRE(ths_content_list(s, NULL, &v, &n, NULL) == 0);
	CHECK_EQ_INT((long)n, st_count_objects());
	ths_buf_free(v);
	REQUIRE(ths_total_size(s, NULL, &total, NULL) == 0);
	CHECK(total > big_n); /* chunks + manifest + small objects */
	free(big);
	st_cleanup(s);
}

/* A counter kept as content under one label, incremented by CAS loops. */
static void cas_increment(ths_store *s, int times)
{
	for (int i = 0; i < times; i++) {
		for (;;) {
			ths_hash cur, next;
			uint8_t *d;
			size_t len;
			REQUIRE(ths_label_get(s, D, "counter", &cur, NULL) == 0);
			REQUIRE(ths_get(s, &cur, 64, &d, &len, NULL) == 0);
			char buf[32];
			snprintf(buf, sizeof buf, "%d", atoi((char *)d) + 1);
			ths_buf_free(d);
			REQUIRE(ths_put(s, buf, strlen(buf) + 1, &next, NULL) == 0);
			int rc = ths_label_cas(s, D, "counter", &cur, &next, NULL);
			if (rc == 0)
				break;
			REQUIRE(rc == TH_ECONFLICT);
		}
	}
}

static void *cas_thread(void *arg)
{
	cas_increment(arg, 40);
	return NULL;
}

TEST(cas_is_atomic_across_threads_and_processes)
{
	ths_store *s = st_open(0);
	ths_hash h;
	REQUIRE(ths_store_at_label(s, D, "counter", "0", 2, &h, NULL) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		ths_store *s2;
		REQUIRE(ths_open(st_root, NULL, &s2, NULL) == 0);
		cas_increment(s2, 40);
		ths_close(s2);
		_exit(0);
	}
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, cas_thread, s);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	uint8_t *d;
	size_t len;
	REQUIRE(ths_label_get(s, D, "counter", &h, NULL) == 0);
	REQUIRE(ths_get(s, &h, 64, &d, &len, NULL) == 0);
	CHECK_EQ_STR((char *)d, "160");
	ths_buf_free(d);
	st_cleanup(s);
}

TEST_MAIN()
