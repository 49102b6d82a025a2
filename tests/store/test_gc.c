/*
 * test_gc.c - garbage collection, verification and corrupted objects.
 */
#include "store_test.h"

#define D THS_DEFAULT_STORE

static bool present(const ths_hash *h)
{
	char path[400];
	struct stat st;
	st_object_path(h, path, sizeof path);
	return stat(path, &st) == 0;
}

TEST(gc_keeps_labelled_and_pinned_content_and_removes_the_rest)
{
	ths_store *s = st_open(0);
	th_err err = { 0 };
	size_t n = 2 << 20;
	uint8_t *big = st_random(n, 7);
	ths_hash a, b, c, d;
	REQUIRE(ths_store_at_label(s, D, "a", "labelled", 8, &a, NULL) == 0);
	REQUIRE(ths_put(s, "pinned", 6, &b, NULL) == 0);
	REQUIRE(ths_pin(s, &b, NULL) == 0);
	REQUIRE(ths_put(s, "garbage", 7, &c, NULL) == 0);
	REQUIRE(ths_store_at_label(s, D, "big", big, n, &d, NULL) == 0);
	long before = st_count_objects();
	ths_gc_stats st;
	REQUIRE(ths_gc(s, 0, &st, &err) == 0);
	CHECK(present(&a) && present(&b) && present(&d));
	CHECK(!present(&c));
	CHECK_EQ_INT(st.removed, 1);
	CHECK_EQ_INT(st_count_objects(), before - 1);
	uint8_t *data;
	size_t len;
	REQUIRE(ths_get(s, &d, n, &data, &len, &err) == 0);
	CHECK(len == n && !memcmp(data, big, n));
	ths_buf_free(data);
	/* Unpinned, b goes; unlabelled, the big object and its chunks go. */
	REQUIRE(ths_unpin(s, &b, NULL) == 0);
	CHECK_EQ_INT(ths_unpin(s, &b, NULL), TH_ENOTFOUND);
	REQUIRE(ths_label_remove(s, D, "big", NULL) == 0);
	REQUIRE(ths_gc(s, 0, &st, &err) == 0);
	CHECK(!present(&b) && !present(&d));
	CHECK_EQ_INT(st_count_objects(), 1);
	CHECK(present(&a));
	REQUIRE(ths_verify(s, NULL, NULL, NULL, NULL, NULL, &err) == 0);
	free(big);
	st_cleanup(s);
}

TEST(gc_keeps_shared_chunks_of_a_live_object)
{
	ths_store *s = st_open(0);
	size_t n = 2 << 20;
	uint8_t *x = st_random(n, 8);
	ths_hash h1, h2;
	REQUIRE(ths_store_at_label(s, D, "keep", x, n, &h1, NULL) == 0);
	x[n - 10] ^= 1; /* a second object sharing most chunks */
	REQUIRE(ths_put(s, x, n, &h2, NULL) == 0);
	REQUIRE(ths_gc(s, 0, NULL, NULL) == 0);
	CHECK(!present(&h2));
	uint8_t *d;
	size_t len;
	REQUIRE(ths_get(s, &h1, n, &d, &len, NULL) == 0);
	x[n - 10] ^= 1;
	CHECK(!memcmp(d, x, n));
	ths_buf_free(d);
	REQUIRE(ths_verify(s, NULL, NULL, NULL, NULL, NULL, NULL) == 0);
	free(x);
	st_cleanup(s);
}

TEST(gc_grace_period_keeps_fresh_unlabelled_content)
{
	ths_store *s = st_open(0);
	size_t n = 1 << 20;
	uint8_t *x = st_random(n, 9);
	ths_hash a, b;
	REQUIRE(ths_put(s, "fresh", 5, &a, NULL) == 0);
	REQUIRE(ths_put(s, x, n, &b, NULL) == 0);
	REQUIRE(ths_gc(s, 3600, NULL, NULL) == 0);
	CHECK(present(&a) && present(&b));
	/* The fresh manifest keeps its (fresh or old) chunks. */
	uint8_t *d;
	size_t len;
	CHECK_EQ_INT(ths_get(s, &b, n, &d, &len, NULL), 0);
	ths_buf_free(d);
	REQUIRE(ths_gc(s, 0, NULL, NULL) == 0);
	CHECK(!present(&a) && !present(&b));
	CHECK_EQ_INT(st_count_objects(), 0);
	free(x);
	st_cleanup(s);
}

TEST(gc_removes_leftover_temporary_files)
{
	ths_store *s = st_open(0);
	char path[400];
	snprintf(path, sizeof path, "%s/tmp/1234.5.deadbeef", st_root);
	FILE *f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs("half an object", f);
	fclose(f);
	ths_gc_stats st;
	REQUIRE(ths_gc(s, 0, &st, NULL) == 0);
	CHECK_EQ_INT(st.tmp_removed, 1);
	CHECK(access(path, F_OK) != 0);
	st_cleanup(s);
}

TEST(gc_refuses_to_run_past_an_unreadable_label)
{
	ths_store *s = st_open(0);
	ths_hash a, g;
	th_err err = { 0 };
	REQUIRE(ths_store_at_label(s, D, "l", "a", 1, &a, NULL) == 0);
	REQUIRE(ths_put(s, "garbage", 7, &g, NULL) == 0);
	char path[400];
	snprintf(path, sizeof path, "%s/stores/default/labels/l", st_root);
	FILE *f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs("torn", f);
	fclose(f);
	CHECK_EQ_INT(ths_gc(s, 0, NULL, &err), TH_ECORRUPT);
	CHECK(strstr(err.msg, "not collecting") != NULL);
	CHECK(present(&a) && present(&g));
	st_cleanup(s);
}

struct reports {
	int n;
	int index_bad;   /* problems "index ... is corrupt" */
	char index_path[512];
	char last_path[512];
	char last_problem[512];
};

static void on_problem(void *ud, const char *path, const char *problem)
{
	struct reports *r = ud;
	r->n++;
	if (strstr(problem, "index (bytes ") && strstr(problem, "corrupt")) {
		r->index_bad++;
		snprintf(r->index_path, sizeof r->index_path, "%s", path);
	}
	snprintf(r->last_path, sizeof r->last_path, "%s", path);
	snprintf(r->last_problem, sizeof r->last_problem, "%s", problem);
}

TEST(flipped_byte_is_detected_by_get_and_verify_with_location)
{
	ths_store *s = st_open(0);
	ths_hash a, b;
	th_err err = { 0 };
	REQUIRE(ths_put(s, "precious data", 13, &a, NULL) == 0);
	REQUIRE(ths_put(s, "other data", 10, &b, NULL) == 0);
	char path[400];
	st_object_path(&a, path, sizeof path);
	st_flip(path, 3);
	uint8_t *d;
	size_t len;
	CHECK_EQ_INT(ths_get(s, &a, 100, &d, &len, &err), TH_ECORRUPT);
	CHECK(strstr(err.msg, path) != NULL);
	/* The rest stays readable. */
	REQUIRE(ths_get(s, &b, 100, &d, &len, NULL) == 0);
	ths_buf_free(d);
	struct reports r = { 0 };
	ths_verify_stats vs;
	CHECK_EQ_INT(ths_verify(s, on_problem, &r, NULL, NULL, &vs, &err),
		     TH_ECORRUPT);
	CHECK_EQ_INT(r.n, 1);
	CHECK_EQ_STR(r.last_path, path);
	CHECK(strstr(r.last_problem, "corrupt") != NULL);
	CHECK_EQ_INT(vs.objects, 2);
	st_cleanup(s);
}

/* The one pack file of the store (chunks of a chunked put go there). */
static void one_pack(char *path, size_t n)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls %s/packs/*.pack", st_root);
	FILE *p = popen(cmd, "r");
	REQUIRE(p && fgets(path, (int)n, p));
	char extra[400];
	CHECK(!fgets(extra, sizeof extra, p));
	pclose(p);
	path[strcspn(path, "\n")] = 0;
}

TEST(flipped_byte_in_a_packed_chunk_names_chunk_pack_and_offset)
{
	ths_store *s = st_open(0);
	size_t n = 1 << 20;
	uint8_t *x = st_random(n, 11);
	ths_hash h;
	th_err err = { 0 };
	REQUIRE(ths_put(s, x, n, &h, NULL) == 0);
	char path[400];
	one_pack(path, sizeof path);
	/* Byte 100: inside the first object, whose bytes start at 8 + 40. */
	st_flip(path, 100);
	uint8_t *d;
	size_t len;
	CHECK_EQ_INT(ths_get(s, &h, n, &d, &len, &err), TH_ECORRUPT);
	CHECK(strstr(err.msg, "chunk 0 ") != NULL);
	CHECK(strstr(err.msg, path) != NULL);
	CHECK(strstr(err.msg, "object at byte 48 ") != NULL);
	struct reports r = { 0 };
	CHECK_EQ_INT(ths_verify(s, on_problem, &r, NULL, NULL, NULL, NULL),
		     TH_ECORRUPT);
	CHECK_EQ_INT(r.n, 1);
	CHECK(strstr(r.last_path, path) == r.last_path);
	CHECK(strstr(r.last_path, "object at byte 48 ") != NULL);
	CHECK(strstr(r.last_problem, "corrupt") != NULL);
	free(x);
	st_cleanup(s);
}

/* Big content past a small cache is verified on a helper thread while
 * the next chunks are read: a flipped byte deep inside is still reported
 * with its chunk, pack and offset, the bytes before it are delivered, and
 * a reader closed early with chunks in flight cleans up. */
TEST(flipped_byte_in_streamed_big_content_is_reported_by_the_pipeline)
{
	ths_store *s = st_open(1 << 20);
	size_t n = 6 << 20;
	uint8_t *x = st_random(n, 20);
	ths_hash h;
	th_err err = { 0 };
	REQUIRE(ths_put(s, x, n, &h, NULL) == 0);
	ths_reader *r;
	static uint8_t buf[1 << 20];
	size_t got;
	REQUIRE(ths_reader_open(s, &h, &r, &err) == 0);
	REQUIRE(ths_reader_read(r, buf, 100, &got, &err) == 0);
	CHECK(got == 100 && !memcmp(buf, x, 100));
	ths_reader_close(r);
	char path[400];
	one_pack(path, sizeof path);
	long off = 4 << 20;
	st_flip(path, off);
	REQUIRE(ths_reader_open(s, &h, &r, &err) == 0);
	size_t total = 0;
	int rc;
	while ((rc = ths_reader_read(r, buf, sizeof buf, &got, &err)) == 0 &&
	       got) {
		CHECK(!memcmp(buf, x + total, got));
		total += got;
	}
	CHECK_EQ_INT(rc, TH_ECORRUPT);
	CHECK(!memcmp(buf, x + total, got));
	total += got;
	/* Delivered: everything before the damaged chunk, and not all. */
	CHECK(total > (size_t)(3 << 20) && total < (size_t)off);
	CHECK(strstr(err.msg, "chunk ") != NULL);
	CHECK(strstr(err.msg, path) != NULL);
	CHECK(strstr(err.msg, "corrupt") != NULL);
	ths_reader_close(r);
	free(x);
	st_cleanup(s);
}

/* A flipped byte in a pack's index: verify reports the pack, and its
 * objects stay readable (found from the entry headers), as do the other
 * packs'. */
TEST(flipped_byte_in_a_pack_index_is_reported_and_everything_stays_readable)
{
	ths_store *s = st_open(0);
	size_t n = 1 << 20;
	uint8_t *x = st_random(n, 14), *y = st_random(n, 15);
	ths_hash hx, hy;
	REQUIRE(ths_put(s, x, n, &hx, NULL) == 0);
	char path[400];
	one_pack(path, sizeof path);
	REQUIRE(ths_put(s, y, n, &hy, NULL) == 0);
	struct stat st;
	REQUIRE(stat(path, &st) == 0);
	st_flip(path, (long)st.st_size - 56 - 10); /* last index record */
	ths_close(s);
	th_err err = { 0 };
	ths_options opt = { .sync = THS_SYNC_NONE };
	REQUIRE(ths_open(st_root, &opt, &s, &err) == 0);
	st_store = s;
	uint8_t *d;
	size_t len;
	REQUIRE(ths_get(s, &hx, n, &d, &len, &err) == 0);
	CHECK(len == n && !memcmp(d, x, n));
	ths_buf_free(d);
	REQUIRE(ths_get(s, &hy, n, &d, &len, NULL) == 0);
	CHECK(len == n && !memcmp(d, y, n));
	ths_buf_free(d);
	struct reports r = { 0 };
	CHECK_EQ_INT(ths_verify(s, on_problem, &r, NULL, NULL, NULL, NULL),
		     TH_ECORRUPT);
	CHECK_EQ_INT(r.n, 1);
	CHECK_EQ_INT(r.index_bad, 1);
	CHECK_EQ_STR(r.index_path, path);
	CHECK(strstr(r.last_problem, "found by scanning") != NULL);
	/* Damaged footer too: still found by scanning. */
	st_flip(path, (long)st.st_size - 50);
	ths_close(s);
	REQUIRE(ths_open(st_root, &opt, &s, &err) == 0);
	st_store = s;
	REQUIRE(ths_get(s, &hx, n, &d, &len, &err) == 0);
	CHECK(len == n && !memcmp(d, x, n));
	ths_buf_free(d);
	free(x);
	free(y);
	st_cleanup(s);
}

TEST(verify_reports_missing_chunks_and_dangling_label)
{
	ths_store *s = st_open(0);
	size_t n = 1 << 20;
	uint8_t *x = st_random(n, 12);
	ths_hash h, a;
	REQUIRE(ths_put(s, x, n, &h, NULL) == 0);
	REQUIRE(ths_store_at_label(s, D, "gone", "soon gone", 9, &a, NULL) == 0);
	char path[400];
	one_pack(path, sizeof path);
	REQUIRE(unlink(path) == 0);
	st_object_path(&a, path, sizeof path);
	REQUIRE(unlink(path) == 0);
	struct reports r = { 0 };
	CHECK_EQ_INT(ths_verify(s, on_problem, &r, NULL, NULL, NULL, NULL),
		     TH_ECORRUPT);
	CHECK(r.n >= 2);
	CHECK(strstr(r.last_path, "stores/default/labels/gone") != NULL);
	CHECK(strstr(r.last_problem, "missing") != NULL);
	free(x);
	st_cleanup(s);
}

TEST(gc_rewrites_a_pack_keeping_only_its_live_chunks)
{
	ths_store *s = st_open(0);
	th_err err = { 0 };
	size_t n = 2 << 20;
	uint8_t *x = st_random(n, 16), *y = malloc(n);
	REQUIRE(y != NULL);
	/* y shares x's first half: its leading chunks are in x's pack. */
	memcpy(y, x, n / 2);
	st_fill(y + n / 2, n - n / 2, 17);
	ths_hash hx, hy;
	REQUIRE(ths_put(s, x, n, &hx, NULL) == 0);
	char path[400];
	one_pack(path, sizeof path);
	struct stat st0, st1;
	REQUIRE(stat(path, &st0) == 0);
	REQUIRE(ths_store_at_label(s, D, "y", y, n, &hy, NULL) == 0);
	CHECK_EQ_INT(st_count_files("packs"), 2);
	ths_gc_stats gs;
	REQUIRE(ths_gc(s, 0, &gs, &err) == 0);
	CHECK(gs.removed > 1);
	CHECK_EQ_INT(ths_exists(s, &hx, NULL), 0);
	/* x's pack was replaced by a smaller one holding the shared chunks. */
	CHECK(stat(path, &st1) != 0);
	CHECK_EQ_INT(st_count_files("packs"), 2);
	uint8_t *d;
	size_t len;
	REQUIRE(ths_get(s, &hy, n, &d, &len, &err) == 0);
	CHECK(len == n && !memcmp(d, y, n));
	ths_buf_free(d);
	REQUIRE(ths_verify(s, NULL, NULL, NULL, NULL, NULL, &err) == 0);
	/* A second handle sees the same: it loads the new pack. */
	ths_store *s2;
	ths_options opt = { .sync = THS_SYNC_NONE };
	REQUIRE(ths_open(st_root, &opt, &s2, &err) == 0);
	REQUIRE(ths_get(s2, &hy, n, &d, &len, &err) == 0);
	CHECK(len == n && !memcmp(d, y, n));
	ths_buf_free(d);
	ths_close(s2);
	/* Unlabelled, y goes too, and with it the last pack. */
	REQUIRE(ths_label_remove(s, D, "y", NULL) == 0);
	REQUIRE(ths_gc(s, 0, &gs, &err) == 0);
	CHECK_EQ_INT(st_count_files("packs"), 0);
	CHECK_EQ_INT(st_count_objects(), 0);
	free(x);
	free(y);
	st_cleanup(s);
}

TEST(gc_merges_many_small_packs_into_one)
{
	ths_store *s = st_open(0);
	th_err err = { 0 };
	enum { N = 10 };
	size_t n = 300 * 1024;
	uint8_t *x[N];
	ths_hash h[N];
	for (int i = 0; i < N; i++) {
		char label[16];
		snprintf(label, sizeof label, "s%d", i);
		x[i] = st_random(n, 100 + (uint64_t)i);
		REQUIRE(ths_store_at_label(s, D, label, x[i], n, &h[i], &err) == 0);
	}
	CHECK_EQ_INT(st_count_files("packs"), N);
	long objs = st_count_objects();
	ths_gc_stats gs;
	REQUIRE(ths_gc(s, 0, &gs, &err) == 0);
	CHECK_EQ_INT(gs.removed, 0);
	CHECK_EQ_INT(st_count_files("packs"), 1);
	CHECK_EQ_INT(st_count_objects(), objs);
	for (int i = 0; i < N; i++) {
		uint8_t *d;
		size_t len;
		REQUIRE(ths_get(s, &h[i], n, &d, &len, &err) == 0);
		CHECK(len == n && !memcmp(d, x[i], n));
		ths_buf_free(d);
		free(x[i]);
	}
	REQUIRE(ths_verify(s, NULL, NULL, NULL, NULL, NULL, &err) == 0);
	st_cleanup(s);
}

TEST(packs_written_or_repacked_by_another_handle_are_seen)
{
	ths_store *s = st_open(0);
	th_err err = { 0 };
	ths_store *s2;
	ths_options opt = { .sync = THS_SYNC_NONE };
	REQUIRE(ths_open(st_root, &opt, &s2, &err) == 0);
	size_t n = 1 << 20;
	uint8_t *x = st_random(n, 18), *y = st_random(n, 19);
	ths_hash hx, hy;
	/* s has loaded the (empty) pack set; s2 adds a pack. */
	REQUIRE(ths_store_at_label(s2, D, "x", x, n, &hx, &err) == 0);
	uint8_t *d;
	size_t len;
	REQUIRE(ths_get(s, &hx, n, &d, &len, &err) == 0);
	CHECK(len == n && !memcmp(d, x, n));
	ths_buf_free(d);
	/* s2 repacks x's pack away (x's chunks move to a new pack only if
	 * live: here they are dead) while s still maps them. */
	REQUIRE(ths_store_at_label(s2, D, "y", y, n, &hy, &err) == 0);
	REQUIRE(ths_label_remove(s2, D, "x", NULL) == 0);
	REQUIRE(ths_gc(s2, 0, NULL, &err) == 0);
	CHECK_EQ_INT(ths_exists(s, &hx, NULL), 0);
	REQUIRE(ths_get(s, &hy, n, &d, &len, &err) == 0);
	CHECK(len == n && !memcmp(d, y, n));
	ths_buf_free(d);
	ths_close(s2);
	free(x);
	free(y);
	st_cleanup(s);
}

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
	uint64_t *last = ud;
	last[0] = done;
	last[1] = total;
}

TEST(verify_progress_reaches_total)
{
	ths_store *s = st_open(0);
	size_t n = 1 << 20;
	uint8_t *x = st_random(n, 13);
	ths_hash h;
	REQUIRE(ths_put(s, x, n, &h, NULL) == 0);
	uint64_t last[2] = { 0, 0 };
	ths_verify_stats vs;
	REQUIRE(ths_verify(s, NULL, NULL, on_progress, last, &vs, NULL) == 0);
	CHECK(vs.bytes > n);
	CHECK_EQ_INT(last[0], vs.bytes);
	CHECK_EQ_INT(last[1], vs.bytes);
	free(x);
	st_cleanup(s);
}

TEST_MAIN()
