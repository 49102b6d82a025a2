/*
 * store_test.h - helpers shared by the store's white-box tests: a fresh
 * store root per test and deterministic pseudo-random content.
 */
#ifndef STORE_TEST_H
#define STORE_TEST_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/base.h"
#include "store/store_int.h"
#include "test.h"
#include "theater/store.h"

static char st_root[256];
static ths_store *st_store; /* the last st_open */

/* Opens a store in a new temporary directory (sync off: tests check
 * logic, not the disk). */
static inline ths_store *st_open(size_t cache_bytes)
{
	th_err err = { 0 };
	ths_store *s = NULL;
	snprintf(st_root, sizeof st_root, "/tmp/ths_test_XXXXXX");
	REQUIRE(mkdtemp(st_root) != NULL);
	ths_options opt = { .cache_bytes = cache_bytes, .sync = THS_SYNC_NONE };
	int rc = ths_open(st_root, &opt, &s, &err);
	if (rc)
		fprintf(stderr, "  ths_open: %s\n", err.msg);
	REQUIRE(rc == 0);
	st_store = s;
	return s;
}

static inline void st_cleanup(ths_store *s)
{
	char cmd[300];
	ths_close(s);
	snprintf(cmd, sizeof cmd, "rm -rf %s", st_root);
	if (system(cmd) != 0)
		fprintf(stderr, "  cleanup of %s failed\n", st_root);
}

/* xorshift bytes: the same seed gives the same content. */
static inline void st_fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

static inline uint8_t *st_random(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	REQUIRE(p != NULL);
	st_fill(p, n, seed);
	return p;
}

static inline int st_count_one(void *ud, const struct ths__obj_info *info)
{
	TH_UNUSED(info);
	(*(long *)ud)++;
	return 0;
}

/* Number of objects, loose or packed (the backend's listing). */
static inline long st_count_objects(void)
{
	long n = 0;
	REQUIRE(st_store->be->ops->list(st_store->be, st_count_one, &n,
					NULL) == 0);
	return n;
}

/* Number of files under ROOT/DIR (objects, packs, tmp). */
static inline long st_count_files(const char *dir)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "find %s/%s -type f | wc -l", st_root, dir);
	FILE *f = popen(cmd, "r");
	long n = -1;
	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static inline void st_object_path(const ths_hash *h, char *out, size_t n)
{
	char hex[THS_HEX_LEN + 1];
	ths_hash_hex(h, hex);
	snprintf(out, n, "%s/objects/%.2s/%s", st_root, hex, hex + 2);
}

/* Flips one bit of the file at offset off. */
static inline void st_flip(const char *path, long off)
{
	chmod(path, 0644);
	int fd = open(path, O_RDWR);
	REQUIRE(fd >= 0);
	uint8_t b;
	REQUIRE(pread(fd, &b, 1, off) == 1);
	b ^= 0x10;
	REQUIRE(pwrite(fd, &b, 1, off) == 1);
	close(fd);
}

#endif
