/*
 * test_content.c - put/get, content addressing, deduplication, chunking
 * and the cache.
 */
#include "store/cdc.h"
#include "store/manifest.h"
#include "store/store_int.h"
#include "store_test.h"

TEST(small_content_is_named_by_plain_sha256)
{
	ths_store *s = st_open(0);
	th_err err = { 0 };
	ths_hash h;
	char hex[THS_HEX_LEN + 1];
	REQUIRE(ths_put(s, "hello", 5, &h, &err) == 0);
	ths_hash_hex(&h, hex);
	CHECK_EQ_STR(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	uint8_t *data;
	size_t len;
	REQUIRE(ths_get(s, &h, 1 << 20, &data, &len, &err) == 0);
	CHECK_EQ_INT(len, 5);
	CHECK(!memcmp(data, "hello", 5));
	ths_buf_free(data);
	st_cleanup(s);
}

TEST(empty_content_round_trips)
{
	ths_store *s = st_open(0);
	ths_hash h;
	uint8_t *data = NULL;
	size_t len = 99;
	REQUIRE(ths_put(s, NULL, 0, &h, NULL) == 0);
	REQUIRE(ths_get(s, &h, 10, &data, &len, NULL) == 0);
	CHECK_EQ_INT(len, 0);
	ths_buf_free(data);
	st_cleanup(s);
}

TEST(identical_content_is_stored_once)
{
	ths_store *s = st_open(0);
	uint8_t *big = st_random(3 << 20, 1);
	ths_hash a, b, c, d;
	REQUIRE(ths_put(s, "same", 4, &a, NULL) == 0);
	long n1 = st_count_objects();
	REQUIRE(ths_put(s, "same", 4, &b, NULL) == 0);
	CHECK(!memcmp(a.b, b.b, 32));
	CHECK_EQ_INT(st_count_objects(), n1);
	REQUIRE(ths_put(s, big, 3 << 20, &c, NULL) == 0);
	long n2 = st_count_objects();
	ths_stats st1, st2;
	ths_get_stats(s, &st1);
	REQUIRE(ths_put(s, big, 3 << 20, &d, NULL) == 0);
	ths_get_stats(s, &st2);
	CHECK(!memcmp(c.b, d.b, 32));
	CHECK_EQ_INT(st_count_objects(), n2);
	CHECK_EQ_INT(st2.objects_written, st1.objects_written);
	free(big);
	st_cleanup(s);
}

TEST(large_content_is_chunked_and_round_trips)
{
	ths_store *s = st_open(0);
	size_t n = 3 * 1024 * 1024 + 123;
	uint8_t *big = st_random(n, 2);
	ths_hash h;
	th_err err = { 0 };
	REQUIRE(ths_put(s, big, n, &h, &err) == 0);
	/* At most n / MIN chunks, at least n / MAX, plus the manifest. */
	long objs = st_count_objects();
	CHECK(objs >= (long)(n / THS_CHUNK_MAX) + 1);
	CHECK(objs <= (long)(n / THS_CHUNK_MIN) + 2);
	uint64_t size = 0;
	REQUIRE(ths_size(s, &h, &size, &err) == 0);
	CHECK_EQ_INT(size, n);
	uint8_t *data;
	size_t len;
	REQUIRE(ths_get(s, &h, n, &data, &len, &err) == 0);
	CHECK_EQ_INT(len, n);
	CHECK(!memcmp(data, big, n));
	ths_buf_free(data);
	CHECK_EQ_INT(ths_get(s, &h, n - 1, &data, &len, &err), TH_ELIMIT);
	free(big);
	st_cleanup(s);
}

TEST(chunk_sizes_respect_min_avg_max)
{
	size_t n = 16 << 20, off = 0, chunks = 0;
	uint8_t *p = st_random(n, 3);
	while (off < n) {
		size_t cut = ths__cdc_cut(p + off, n - off);
		REQUIRE(cut > 0);
		CHECK(cut <= THS_CHUNK_MAX);
		if (off + cut < n)
			CHECK(cut >= THS_CHUNK_MIN);
		off += cut;
		chunks++;
	}
	size_t avg = n / chunks;
	/* Normalized chunking keeps the mean near the 64 KiB target. */
	CHECK(avg >= 40 * 1024 && avg <= 96 * 1024);
	/* Zeros have no boundaries: every chunk is maximal. */
	uint8_t *z = calloc(1, THS_CHUNK_MAX * 2);
	CHECK_EQ_INT(ths__cdc_cut(z, THS_CHUNK_MAX * 2), THS_CHUNK_MAX);
	free(z);
	free(p);
}

/* Chunk hashes of content, via the manifest. */
static size_t chunk_list(ths_store *s, const uint8_t *p, size_t n,
			 ths_hash *out, size_t max)
{
	ths_hash h;
	REQUIRE(ths_put(s, p, n, &h, NULL) == 0);
	char path[400];
	st_object_path(&h, path, sizeof path);
	FILE *f = fopen(path, "rb");
	REQUIRE(f != NULL);
	static uint8_t buf[1 << 20];
	size_t len = fread(buf, 1, sizeof buf, f);
	fclose(f);
	ths__manifest mf;
	REQUIRE(ths__mf_parse(buf, len, &mf, NULL) == 0);
	size_t k = mf.n < max ? mf.n : max;
	for (size_t i = 0; i < k; i++)
		out[i] = mf.chunks[i].hash;
	ths__mf_release(&mf);
	return k;
}

TEST(insertion_near_start_changes_only_first_chunks)
{
	ths_store *s = st_open(0);
	size_t n = 16 << 20;
	uint8_t *a = st_random(n, 4);
	uint8_t *b = malloc(n + 1);
	memcpy(b, a, 1000);
	b[1000] = 0x5a;
	memcpy(b + 1001, a + 1000, n - 1000);
	static ths_hash ca[2048], cb[2048];
	size_t na = chunk_list(s, a, n, ca, 2048);
	ths_stats s1, s2;
	ths_get_stats(s, &s1);
	size_t nb = chunk_list(s, b, n + 1, cb, 2048);
	ths_get_stats(s, &s2);
	/* Same chunks from the end backwards, except near the insertion. */
	size_t same = 0;
	while (same < na && same < nb &&
	       !memcmp(ca[na - 1 - same].b, cb[nb - 1 - same].b, 32))
		same++;
	CHECK(same + 2 >= na);
	CHECK(s2.objects_written - s1.objects_written <= 3);
	/* New bytes: at most two maximal chunks and the manifest. */
	CHECK(s2.bytes_written - s1.bytes_written <
	      2 * THS_CHUNK_MAX + THS__MF_HDR + (nb + 1) * THS__MF_ENTRY);
	free(a);
	free(b);
	st_cleanup(s);
}

TEST(streaming_put_from_fd_matches_put_from_memory)
{
	ths_store *s = st_open(0);
	/* 37 MiB: the 16 MiB input buffer fills and moves twice. */
	size_t sizes[] = { 0, 100, THS_SMALL_MAX, THS_SMALL_MAX + 1, 5 << 20,
			   (37 << 20) + 7 };
	for (size_t k = 0; k < TH_ARRAY_LEN(sizes); k++) {
		size_t n = sizes[k];
		uint8_t *p = st_random(n, 10 + k);
		char path[300];
		snprintf(path, sizeof path, "%s/input", st_root);
		FILE *f = fopen(path, "wb");
		REQUIRE(f && fwrite(p, 1, n, f) == n);
		fclose(f);
		int fd = open(path, O_RDONLY);
		ths_hash hm, hf;
		uint64_t got = 0;
		th_err err = { 0 };
		REQUIRE(ths_put(s, p, n, &hm, NULL) == 0);
		REQUIRE(ths_put_fd(s, fd, n, NULL, NULL, &hf, &got, &err) == 0);
		close(fd);
		CHECK(!memcmp(hm.b, hf.b, 32));
		CHECK_EQ_INT(got, n);
		free(p);
	}
	st_cleanup(s);
}

TEST(streaming_put_from_pipe_with_short_reads)
{
	ths_store *s = st_open(0);
	size_t n = 2 << 20;
	uint8_t *p = st_random(n, 20);
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		for (size_t off = 0; off < n; off += 777) {
			size_t k = n - off < 777 ? n - off : 777;
			if (write(fds[1], p + off, k) != (ssize_t)k)
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	ths_hash hf, hm;
	REQUIRE(ths_put_fd(s, fds[0], 0, NULL, NULL, &hf, NULL, NULL) == 0);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	REQUIRE(ths_put(s, p, n, &hm, NULL) == 0);
	CHECK(!memcmp(hm.b, hf.b, 32));
	free(p);
	st_cleanup(s);
}

TEST(content_starting_with_manifest_magic_is_not_confused)
{
	ths_store *s = st_open(0);
	uint8_t p[100] = "\0THSMF1\n";
	memset(p + 24, 7, 76);
	ths_hash h, plain;
	uint8_t *data;
	size_t len;
	REQUIRE(ths_put(s, p, sizeof p, &h, NULL) == 0);
	REQUIRE(ths_get(s, &h, 1000, &data, &len, NULL) == 0);
	CHECK_EQ_INT(len, sizeof p);
	CHECK(!memcmp(data, p, sizeof p));
	ths_buf_free(data);
	/* It was stored as a one-chunk manifest, not as a plain object
	 * (which would be read back as a manifest). */
	REQUIRE(ths__sha256(p, sizeof p, &plain) == 0);
	CHECK(memcmp(h.b, plain.b, 32) != 0);
	st_cleanup(s);
}

TEST(reader_streams_in_small_pieces_with_readahead)
{
	ths_store *s = st_open(0);
	size_t n = 2 << 20;
	uint8_t *p = st_random(n, 30);
	uint8_t *back = malloc(n);
	ths_hash h;
	REQUIRE(ths_put(s, p, n, &h, NULL) == 0);
	ths_reader *r;
	th_err err = { 0 };
	REQUIRE(ths_reader_open(s, &h, &r, &err) == 0);
	CHECK_EQ_INT(ths_reader_size(r), n);
	size_t off = 0, got;
	do {
		REQUIRE(ths_reader_read(r, back + off, n - off < 1000 ? n - off : 1000,
					&got, &err) == 0);
		off += got;
	} while (got);
	ths_reader_close(r);
	CHECK_EQ_INT(off, n);
	CHECK(!memcmp(p, back, n));
	ths_stats st;
	ths_get_stats(s, &st);
	CHECK(st.readahead > 0);
	free(p);
	free(back);
	st_cleanup(s);
}

TEST(cache_hits_and_evicts_within_budget)
{
	size_t budget = 256 * 1024;
	ths_store *s = st_open(budget);
	ths_hash h[20];
	for (int i = 0; i < 20; i++) {
		uint8_t *p = st_random(16 * 1024, 40 + i);
		REQUIRE(ths_put(s, p, 16 * 1024, &h[i], NULL) == 0);
		free(p);
	}
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 20; i++) {
			uint8_t *d;
			size_t len;
			REQUIRE(ths_get(s, &h[i], 1 << 20, &d, &len, NULL) == 0);
			ths_buf_free(d);
		}
	}
	/* The last object again: certainly still cached. */
	ths_stats a, b;
	ths_get_stats(s, &a);
	uint8_t *d;
	size_t len;
	REQUIRE(ths_get(s, &h[19], 1 << 20, &d, &len, NULL) == 0);
	ths_buf_free(d);
	ths_get_stats(s, &b);
	CHECK_EQ_INT(b.cache_hits, a.cache_hits + 1);
	CHECK(b.cache_evictions > 0);
	CHECK(b.cache_bytes <= budget);
	CHECK(b.cache_bytes > 0);
	st_cleanup(s);
}

TEST(missing_object_is_not_found_with_path)
{
	ths_store *s = st_open(0);
	ths_hash h;
	th_err err = { 0 };
	memset(h.b, 0xab, 32);
	uint8_t *d;
	size_t len;
	CHECK_EQ_INT(ths_get(s, &h, 100, &d, &len, &err), TH_ENOTFOUND);
	CHECK(strstr(err.msg, "objects/ab/abab") != NULL);
	CHECK_EQ_INT(ths_exists(s, &h, NULL), 0);
	REQUIRE(ths_put(s, "x", 1, &h, NULL) == 0);
	CHECK_EQ_INT(ths_exists(s, &h, NULL), 1);
	st_cleanup(s);
}

TEST(hash_parse_rejects_malformed_text)
{
	ths_hash h;
	th_err err = { 0 };
	CHECK_EQ_INT(ths_hash_parse("abc", &h, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "64 hex digits") != NULL);
	char bad[65];
	memset(bad, 'a', 64);
	bad[64] = 0;
	bad[10] = 'g';
	CHECK_EQ_INT(ths_hash_parse(bad, &h, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "character 11") != NULL);
	CHECK_EQ_INT(ths_hash_parse(NULL, &h, NULL), TH_EINVAL);
	bad[10] = 'A';
	CHECK_EQ_INT(ths_hash_parse(bad, &h, NULL), 0);
	CHECK_EQ_INT(h.b[5], 0xaa);
}

TEST_MAIN()
