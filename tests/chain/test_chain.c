/* test_chain.c - the Event Chain: hashing, links, blocks and proofs,
 * persistence and recovery, damage reports, indexes, subscriptions. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "chain/internal.h"
#include "test.h"

static char *tmpdir(void)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/thx-test-XXXXXX");
	REQUIRE(mkdtemp(path) != NULL);
	return path;
}

static void rmrf(const char *dir)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	REQUIRE(system(cmd) == 0);
}

static thx_store *open_store(const char *dir, uint64_t seg_bytes)
{
	thx_store_opts o = { .segment_bytes = seg_bytes, .no_background = true };
	thx_store *s = NULL;
	th_err err = { 0 };
	int rc = thx_store_open(dir, &o, &s, &err);
	if (rc)
		fprintf(stderr, "  open: %s\n", err.msg);
	REQUIRE(rc == 0);
	return s;
}

static thx_chain *chain(thx_store *s, const char *name, thx_durability d,
			uint32_t block_events)
{
	thx_chain_opts o = { .durability = d, .block_events = block_events };
	thx_chain *c = NULL;
	th_err err = { 0 };
	REQUIRE(thx_chain_open(s, name, &o, true, &c, &err) == 0);
	return c;
}

static uint64_t add(thx_chain *c, const char *type, const char *data)
{
	thx_event_in in = { .actor = thx_chain_name(c), .type = type, .data = data,
			    .len = strlen(data) };
	uint64_t seq = 0;
	th_err err = { 0 };
	int rc = thx_append(c, &in, &seq, NULL, &err);
	if (rc)
		fprintf(stderr, "  append: %s\n", err.msg);
	REQUIRE(rc == 0);
	return seq;
}

static void add_n(thx_chain *c, int n)
{
	char data[64];
	for (int i = 0; i < n; i++) {
		snprintf(data, sizeof data, "event payload %d", i);
		add(c, i % 3 ? "message.received" : "wasm.call", data);
	}
}

static bool verify_ok(thx_store *s, const char *name)
{
	thx_verify_report r;
	th_err err = { 0 };
	REQUIRE(thx_verify(s, name, NULL, NULL, &r, &err) == 0);
	if (!r.ok)
		fprintf(stderr, "  verify: chain %s seq %llu %s@%llu: %s\n", r.chain,
			(unsigned long long)r.seq, r.file, (unsigned long long)r.offset, r.what);
	return r.ok;
}

/* The only segment file of a store (tests with big segments). */
static void seg_path(const char *dir, char *out, size_t n)
{
	snprintf(out, n, "%s/seg-00000001.0.log", dir);
}

static off_t file_size(const char *p)
{
	struct stat st;
	REQUIRE(stat(p, &st) == 0);
	return st.st_size;
}

/* ---- the canonical encoding ---- */

TEST(hash_test_vector_matches_docs)
{
	/* docs/chain.md, "Test vector" (cross-checked with an independent
	 * Python encoder + hashlib). */
	uint8_t h0[32], h1[32];
	char hex[65];
	th_err err = { 0 };
	REQUIRE(thx_event_hash(NULL, "counter-1", 0, 1700000000000000000ull,
			       "actor.created", "hello", 5, NULL, h0, &err) == 0);
	th_hex(h0, 32, hex);
	CHECK_EQ_STR(hex, "70225947657ad1606a6807e80a13654ec5f39c37e43726226e38fe3ca1d0a1dd");
	REQUIRE(thx_event_hash(h0, "counter-1", 1, 1700000000000000001ull,
			       "message.received", "\x01\x02", 2, "a message", h1, &err) == 0);
	th_hex(h1, 32, hex);
	CHECK_EQ_STR(hex, "33b830d06bf5ad0269873af257519f97e9fec2f0578a77ddcd49be47f0569956");

	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	thx__enc_event(&e, NULL, "counter-1", 9, 0, 1700000000000000000ull, "actor.created",
		       13, "hello", 5, NULL, 0);
	char enc[256];
	th_hex(e.buf, e.len, enc);
	CHECK_EQ_STR(enc, "87f669636f756e7465722d31001b17979cfe362a00006d6163746f722e"
			  "637265617465644568656c6c6ff6");
	CHECK(th_cbor_check_deterministic(e.buf, e.len, NULL));
	th_cbor_enc_release(&e);
}

TEST(block_test_vector_matches_docs)
{
	/* the two events of the event vector, sealed as block 0 */
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "counter-1", THX_ALWAYS, 0);
	thx_event_in a = { .actor = "counter-1", .type = "actor.created", .data = "hello",
			   .len = 5, .timestamp_ns = 1700000000000000000ull };
	thx_event_in b = { .actor = "counter-1", .type = "message.received", .data = "\x01\x02",
			   .len = 2, .description = "a message",
			   .timestamp_ns = 1700000000000000001ull };
	REQUIRE(thx_append(c, &a, NULL, NULL, NULL) == 0);
	REQUIRE(thx_append(c, &b, NULL, NULL, NULL) == 0);
	REQUIRE(thx_seal_block(c, NULL) == 0);
	thx_block blk;
	REQUIRE(thx_block_get(c, 0, &blk, NULL) == 0);
	char hex[65];
	th_hex(blk.merkle_root, 32, hex);
	CHECK_EQ_STR(hex, "46550278b2bf4646c049a21f829860a0e26ccc9e0a9fe66258af60c35df4aa4d");
	th_hex(blk.hash, 32, hex);
	CHECK_EQ_STR(hex, "51fd36f0baf15b9ffa3d741bc9750e938bb6bd50d266618a98a23927aa75c465");
	CHECK(!blk.has_prev && blk.count == 2 && blk.first_seq == 0);
	thx_store_close(s);
	rmrf(dir);
}

TEST(append_computes_the_documented_hash)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "counter-1", THX_ALWAYS, 0);
	thx_event_in in = { .actor = "counter-1", .type = "actor.created", .data = "hello",
			    .len = 5, .timestamp_ns = 1700000000000000000ull };
	uint8_t h[32];
	char hex[65];
	REQUIRE(thx_append(c, &in, NULL, h, NULL) == 0);
	th_hex(h, 32, hex);
	CHECK_EQ_STR(hex, "70225947657ad1606a6807e80a13654ec5f39c37e43726226e38fe3ca1d0a1dd");
	thx_store_close(s);
	rmrf(dir);
}

TEST(crc32c_known_value)
{
	CHECK_EQ_INT(thx__crc32c(0, "123456789", 9), 0xe3069283u);
	/* chaining equals one pass */
	CHECK_EQ_INT(thx__crc32c(thx__crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

/* The project's SHA-256 (the CPU's SHA extensions where it has them) against
 * libcrypto: every length 0-300 (each padding case, one to six blocks),
 * alone and paired with every other length class, and FIPS 180-2's "abc". */
TEST(sha256_matches_libcrypto)
{
	uint8_t msg[2][301], a[32], b[32], want_a[32], want_b[32];
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (int m = 0; m < 2; m++)
		for (size_t i = 0; i < sizeof msg[m]; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			msg[m][i] = (uint8_t)x;
		}
	thx__sha256("abc", 3, a);
	char hex[65];
	th_hex(a, 32, hex);
	CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	printf("  (SHA extensions %s)\n", thx__sha_ni() ? "used" : "absent: libcrypto only");
	int bad = 0;
	for (size_t n = 0; n <= 300; n++) {
		thx__sha256_lib(msg[0], n, want_a);
		thx__sha256(msg[0], n, a);
		bad += memcmp(a, want_a, 32) != 0;
		for (size_t k = 0; k <= 300; k += 13) { /* every block count, both longer */
			thx__sha256_lib(msg[1], k, want_b);
			thx__sha256_x2(msg[0], n, a, msg[1], k, b);
			bad += memcmp(a, want_a, 32) != 0 || memcmp(b, want_b, 32) != 0;
		}
	}
	thx__sha256_x2(NULL, 0, a, NULL, 0, b); /* empty messages need no bytes */
	thx__sha256_lib("", 0, want_a);
	bad += memcmp(a, want_a, 32) != 0 || memcmp(b, want_a, 32) != 0;
	CHECK_EQ_INT(bad, 0);
}

/* ---- links, persistence ---- */

TEST(events_link_and_survive_reopen)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "actor-a", THX_ALWAYS, 16);
	add_n(c, 100);
	uint8_t head[32], head2[32];
	REQUIRE(thx_chain_head(c, head));
	for (uint64_t i = 0; i < 100; i++) {
		thx_event ev, prev;
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		CHECK_EQ_INT(ev.seq, i);
		CHECK_EQ_STR(ev.actor, "actor-a");
		if (i) {
			REQUIRE(thx_get(c, i - 1, &prev, NULL) == 0);
			CHECK(ev.has_parent && memcmp(ev.parent, prev.hash, 32) == 0);
			CHECK(ev.timestamp_ns >= prev.timestamp_ns);
			thx_event_release(&prev);
		} else {
			CHECK(!ev.has_parent);
		}
		/* the stored hash is the hash of the stored fields */
		uint8_t h[32];
		REQUIRE(thx_event_hash(ev.has_parent ? ev.parent : NULL, ev.actor, ev.seq,
				       ev.timestamp_ns, ev.type, ev.data, ev.len,
				       ev.description, h, NULL) == 0);
		CHECK(memcmp(h, ev.hash, 32) == 0);
		thx_event_release(&ev);
	}
	CHECK_EQ_INT(thx_block_count(c), 6);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);

	s = open_store(dir, 0);
	th_err err = { 0 };
	REQUIRE(thx_chain_open(s, "actor-a", NULL, false, &c, &err) == 0);
	CHECK_EQ_INT(thx_chain_count(c), 100);
	REQUIRE(thx_chain_head(c, head2));
	CHECK(memcmp(head, head2, 32) == 0);
	CHECK_EQ_INT(thx_block_count(c), 6);
	thx_chain_opts o;
	thx_chain_opts_get(c, &o);
	CHECK_EQ_INT(o.block_events, 16);
	/* appending continues the same chain */
	CHECK_EQ_INT(add(c, "wasm.call", "more"), 100);
	thx_event ev;
	REQUIRE(thx_get(c, 100, &ev, NULL) == 0);
	CHECK(memcmp(ev.parent, head, 32) == 0);
	thx_event_release(&ev);
	CHECK(verify_ok(s, "actor-a"));
	thx_store_close(s);
	rmrf(dir);
}

TEST(many_chains_and_segments)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 4096);
	thx_chain *cs[5];
	char name[32];
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "actor-%d", i);
		cs[i] = chain(s, name, i == 4 ? THX_BATCH : THX_ALWAYS, 7);
	}
	for (int k = 0; k < 60; k++)
		for (int i = 0; i < 5; i++)
			add(cs[i], "message.received", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	thx_stats st;
	thx_store_stats(s, &st);
	CHECK(st.segments > 3);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	s = open_store(dir, 4096);
	char **names;
	size_t n;
	REQUIRE(thx_store_list(s, &names, &n, NULL) == 0);
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_STR(names[0], "actor-0");
	CHECK_EQ_STR(names[4], "actor-4");
	thx_free(names);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "actor-%d", i);
		thx_chain *c;
		REQUIRE(thx_chain_open(s, name, NULL, false, &c, NULL) == 0);
		CHECK_EQ_INT(thx_chain_count(c), 60);
	}
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

TEST(thousands_of_chains_by_name_with_failed_creations)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 1u << 20);
	enum { N = 3000 };
	static bool made[N];
	char name[32];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "actor-%08x", (unsigned)(i * 2654435761u));
		thx_chain *c = NULL;
		int rc;
		if (i % 7 == 3) {
			/* creation may fail part-way: nothing of it may remain */
			th_alloc_fail_after(i % 5);
			rc = thx_chain_open(s, name, &(thx_chain_opts){ .durability = THX_BATCH },
					    true, &c, NULL);
			th_alloc_fail_after(-1);
			CHECK(rc == 0 || rc == TH_ENOMEM);
		} else {
			rc = thx_chain_open(s, name, &(thx_chain_opts){ .durability = THX_BATCH },
					    true, &c, NULL);
			CHECK_EQ_INT(rc, 0);
		}
		made[i] = rc == 0;
		if (rc == 0 && i % 10 == 0)
			add(c, "actor.created", "x");
	}
	size_t want = 0;
	for (int i = 0; i < N; i++)
		want += made[i];
	CHECK(want < N);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < N; i++) {
			snprintf(name, sizeof name, "actor-%08x", (unsigned)(i * 2654435761u));
			thx_chain *c = NULL;
			int rc = thx_chain_open(s, name, NULL, false, &c, NULL);
			CHECK_EQ_INT(rc, made[i] ? 0 : TH_ENOTFOUND);
			if (rc == 0)
				CHECK_EQ_STR(thx_chain_name(c), name);
		}
		char **names;
		size_t n;
		REQUIRE(thx_store_list(s, &names, &n, NULL) == 0);
		CHECK_EQ_INT(n, want);
		for (size_t k = 1; k < n; k++)
			CHECK(strcmp(names[k - 1], names[k]) < 0);
		thx_free(names);
		CHECK(verify_ok(s, NULL));
		thx_store_close(s);
		s = open_store(dir, 1u << 20);
	}
	thx_store_close(s);
	rmrf(dir);
}

TEST(background_thread_flushes_batches_and_applies_retention)
{
	char *dir = tmpdir();
	thx_store_opts o = { .segment_bytes = 4096, .retention_ms = 20 };
	thx_store *s;
	REQUIRE(thx_store_open(dir, &o, &s, NULL) == 0);
	thx_chain_opts co = { .durability = THX_BATCH, .batch_ms = 5,
			      .retention = { .max_events = 10 } };
	thx_chain *c;
	REQUIRE(thx_chain_open(s, "bg", &co, true, &c, NULL) == 0);
	for (int i = 0; i < 200; i++)
		add(c, "message.received", "some bytes that retention will drop later");
	/* Polled with a generous bound: this checks that it happens, not how
	 * fast. */
	thx_stats st = { 0 };
	bool pruned = false;
	for (int i = 0; i < 1000 && !(pruned && st.compactions > 0 && st.fsyncs > 0); i++) {
		usleep(10000);
		thx_store_stats(s, &st);
		thx_event ev;
		REQUIRE(thx_get(c, 0, &ev, NULL) == 0);
		pruned = ev.pruned;
		thx_event_release(&ev);
	}
	CHECK(pruned);
	CHECK(st.fsyncs > 0);
	CHECK(st.compactions > 0);
	/* everything the background thread wrote becomes visible to another
	 * reader, without any sync call from us */
	uint64_t seen = 0;
	for (int i = 0; i < 1000 && seen < 200; i++) {
		thx_store *r;
		REQUIRE(thx_store_open(dir, &(thx_store_opts){ .read_only = true }, &r, NULL) == 0);
		thx_chain *rc;
		if (thx_chain_open(r, "bg", NULL, false, &rc, NULL) == 0)
			seen = thx_chain_count(rc);
		if (seen == 200)
			CHECK(verify_ok(r, NULL));
		thx_store_close(r);
		if (seen < 200)
			usleep(10000);
	}
	CHECK_EQ_INT(seen, 200);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

TEST(memory_chain_is_not_persisted)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "scratch", THX_NONE, 4);
	add_n(c, 10);
	thx_event ev;
	REQUIRE(thx_get(c, 9, &ev, NULL) == 0);
	CHECK_EQ_INT(ev.segment, 0);
	CHECK(memcmp(ev.data, "event payload 9", ev.len) == 0);
	thx_event_release(&ev);
	CHECK(verify_ok(s, "scratch"));
	thx_stats st;
	thx_store_stats(s, &st);
	CHECK_EQ_INT(st.bytes_written, 0);
	thx_store_close(s);
	s = open_store(dir, 0);
	th_err err = { 0 };
	CHECK_EQ_INT(thx_chain_open(s, "scratch", NULL, false, &c, &err), TH_ENOTFOUND);
	thx_store_close(s);
	rmrf(dir);
}

/* The append path's encoder writes the same bytes as the reference one,
 * for every head size of every field. */
TEST(raw_event_encoder_matches_reference)
{
	static const uint64_t nums[] = { 0, 23, 24, 255, 256, 65535, 65536,
					 0xffffffffull, 0x100000000ull, UINT64_MAX };
	static const size_t lens[] = { 0, 1, 23, 24, 255, 256, 65536 };
	uint8_t parent[32], *data = malloc(65536 + 1);
	char *str = malloc(65536 + 1);
	REQUIRE(data && str);
	memset(parent, 0xab, 32);
	memset(data, 0x5a, 65536);
	memset(str, 'x', 65536);
	size_t cases = 0;
	for (size_t ni = 0; ni < sizeof nums / sizeof *nums; ni++)
		for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
			size_t len = lens[li];
			size_t nl = len > 255 ? 255 : len ? len : 1;
			str[nl] = '\0';
			for (int shape = 0; shape < 4; shape++) {
				const uint8_t *par = shape & 1 ? parent : NULL;
				const char *desc = shape & 2 ? "" : NULL;
				if ((shape & 2) && li % 2)
					desc = "a description";
				size_t dl = desc ? strlen(desc) : 0;
				th_cbor_enc e;
				th_cbor_enc_init(&e, NULL, 0);
				thx__enc_event(&e, par, str, nl, nums[ni], nums[(ni + 3) % 10],
					       str, nl, data, len, desc, dl);
				REQUIRE(!e.err);
				size_t bound = thx__event_bound(nl, nl, len, dl);
				uint8_t *raw = malloc(bound);
				REQUIRE(raw);
				size_t rl = thx__enc_event_raw(raw, par, str, nl, nums[ni],
							       nums[(ni + 3) % 10], str, nl, data,
							       len, desc, dl);
				CHECK(rl <= bound);
				CHECK_EQ_INT(rl, e.len);
				CHECK(rl == e.len && memcmp(raw, e.buf, rl) == 0);
				free(raw);
				th_cbor_enc_release(&e);
				cases++;
			}
			str[nl] = 'x';
		}
	CHECK_EQ_INT(cases, 10 * 7 * 4);
	free(data);
	free(str);
}

struct q_collect {
	int n;
	uint64_t first;
};

static int q_count(const thx_event *ev, void *arg)
{
	struct q_collect *q = arg;
	if (q->n++ == 0)
		q->first = ev->seq;
	return 0;
}

/* Memory chains keep only data and description and rebuild the rest of
 * the encoding on reads: every shape reads back and verifies, across the
 * entry pages' boundaries (16, 32, ..., 4096, 6144). */
TEST(memory_chain_events_read_back_across_entry_pages)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "mem", THX_NONE, 7);
	th_err err = { 0 };
	const int n = 6200;
	for (int i = 0; i < n; i++) {
		char data[32], desc[32], actor[32];
		snprintf(data, sizeof data, "payload %d", i);
		snprintf(desc, sizeof desc, "about %d", i);
		snprintf(actor, sizeof actor, "actor-%d", i % 5);
		thx_event_in in = { .actor = actor, .type = i % 2 ? "a.b" : "c.d",
				    .data = data, .len = i % 4 == 3 ? 0 : strlen(data),
				    .description = i % 3 == 0 ? NULL : i % 3 == 1 ? desc : "",
				    .timestamp_ns = 1000 + (uint64_t)i };
		uint64_t seq;
		REQUIRE(thx_append(c, &in, &seq, NULL, &err) == 0);
		CHECK_EQ_INT(seq, (uint64_t)i);
	}
	int bad = 0;
	for (int i = 0; i < n; i++) {
		thx_event ev;
		REQUIRE(thx_get(c, (uint64_t)i, &ev, &err) == 0);
		char data[32], desc[32], actor[32];
		snprintf(data, sizeof data, "payload %d", i);
		snprintf(desc, sizeof desc, "about %d", i);
		snprintf(actor, sizeof actor, "actor-%d", i % 5);
		size_t len = i % 4 == 3 ? 0 : strlen(data);
		const char *wd = i % 3 == 0 ? NULL : i % 3 == 1 ? desc : "";
		uint8_t h[32];
		REQUIRE(thx_event_hash(i ? ev.parent : NULL, actor, (uint64_t)i,
				       1000 + (uint64_t)i, i % 2 ? "a.b" : "c.d", data, len, wd,
				       h, &err) == 0);
		if (ev.len != len || (len && memcmp(ev.data, data, len)) ||
		    strcmp(ev.actor, actor) || ev.timestamp_ns != 1000 + (uint64_t)i ||
		    (wd == NULL) != (ev.description == NULL) ||
		    (wd && strcmp(wd, ev.description)) || memcmp(h, ev.hash, 32) ||
		    ev.offset != 0)
			bad++;
		thx_event_release(&ev);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(verify_ok(s, "mem"));
	CHECK_EQ_INT(thx_block_count(c), (uint64_t)n / 7);
	/* a time range is a binary search over the pages */
	struct q_collect q = { 0, 0 };
	REQUIRE(thx_query_run(c, &(thx_query){ .since_ns = 1000 + 4095, .until_ns = 1000 + 4100 },
			      q_count, &q, &err) == 0);
	CHECK_EQ_INT(q.n, 5);
	CHECK_EQ_INT(q.first, 4095);
	thx_store_close(s);
	rmrf(dir);
}

/* Memory chains build their blocks lazily (when first asked for); they
 * must come out exactly as an on-disk chain's, which seals at append time,
 * through block size changes and explicit seals. */
static void lazy_ops(thx_chain *c, thx_durability d)
{
	th_err err = { 0 };
	static const int steps[][2] = { { 12, 3 }, { 4, 0 }, { 7, 10 }, { 2, 2 }, { 5, 4 },
					{ 1, 0 }, { 9, 0 } };
	uint64_t ts = 5000;
	for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
		for (int i = 0; i < steps[k][0]; i++) {
			char data[16];
			snprintf(data, sizeof data, "e%d", (int)ts);
			thx_event_in in = { .actor = "a", .type = "t", .data = data,
					    .len = strlen(data), .timestamp_ns = ts++ };
			REQUIRE(thx_append(c, &in, NULL, NULL, &err) == 0);
		}
		if (steps[k][1]) {
			thx_chain_opts o = { .durability = d, .block_events = (uint32_t)steps[k][1] };
			REQUIRE(thx_chain_configure(c, &o, &err) == 0);
		} else {
			REQUIRE(thx_seal_block(c, &err) == 0);
		}
	}
}

TEST(memory_chain_blocks_match_on_disk_blocks)
{
	char *d1 = strdup(tmpdir()), *d2 = strdup(tmpdir());
	thx_store *s1 = open_store(d1, 0), *s2 = open_store(d2, 0);
	thx_chain *disk = chain(s1, "x", THX_BATCH, 5);
	thx_chain *mem = chain(s2, "x", THX_NONE, 5);
	lazy_ops(disk, THX_BATCH);
	lazy_ops(mem, THX_NONE);
	uint64_t nb = thx_block_count(disk);
	CHECK(nb > 8);
	CHECK_EQ_INT(thx_block_count(mem), nb);
	th_err err = { 0 };
	int same = 0;
	for (uint64_t b = 0; b < nb; b++) {
		thx_block x, y;
		REQUIRE(thx_block_get(disk, b, &x, &err) == 0);
		REQUIRE(thx_block_get(mem, b, &y, &err) == 0);
		same += x.first_seq == y.first_seq && x.count == y.count &&
			memcmp(x.hash, y.hash, 32) == 0;
	}
	CHECK_EQ_INT(same, nb);
	/* events appended after the last seal stay in the open block */
	thx_event_in in = { .actor = "a", .type = "t", .timestamp_ns = 1 };
	REQUIRE(thx_append(mem, &in, NULL, NULL, &err) == 0);
	thx_proof pf;
	CHECK_EQ_INT(thx_prove(mem, thx_chain_count(mem) - 1, &pf, &err), TH_ESTATE);
	REQUIRE(thx_prove(mem, 13, &pf, &err) == 0);
	CHECK(thx_proof_check(&pf, NULL, &err) == 0);
	CHECK(verify_ok(s2, "x"));
	thx_store_close(s1);
	thx_store_close(s2);
	rmrf(d1);
	rmrf(d2);
	free(d1);
	free(d2);
}

/* ---- blocks and proofs ---- */

TEST(merkle_root_follows_rfc9162)
{
	uint8_t l[3][32], ab[32], root[32], want[32];
	for (int i = 0; i < 3; i++)
		memset(l[i], 'a' + i, 32);
	thx__merkle_node(l[0], l[1], ab);
	thx__merkle_node(ab, l[2], want);
	thx__merkle_root((const uint8_t (*)[32])l, 3, root);
	CHECK(memcmp(root, want, 32) == 0);
	thx__merkle_root((const uint8_t (*)[32])l, 1, root);
	CHECK(memcmp(root, l[0], 32) == 0);
}

TEST(proofs_for_every_position_and_size)
{
	uint8_t leaves[70][32], root[32], path[64][32], got[32];
	for (size_t n = 1; n <= 70; n++) {
		for (size_t i = 0; i < n; i++) {
			memset(leaves[i], 0, 32);
			leaves[i][0] = (uint8_t)i;
			leaves[i][1] = (uint8_t)n;
		}
		thx__merkle_root((const uint8_t (*)[32])leaves, n, root);
		for (size_t i = 0; i < n; i++) {
			size_t k = thx__merkle_path((const uint8_t (*)[32])leaves, n, i, path);
			CHECK(k <= 7);
			CHECK(thx__merkle_from_path(leaves[i], i, n, (const uint8_t (*)[32])path,
						    k, got));
			CHECK(memcmp(got, root, 32) == 0);
			/* the wrong index or a shortened path fails */
			if (n > 1) {
				bool ok = thx__merkle_from_path(leaves[i], (i + 1) % n, n,
								(const uint8_t (*)[32])path,
								k, got);
				CHECK(!ok || memcmp(got, root, 32) != 0);
				CHECK(!thx__merkle_from_path(leaves[i], i, n,
							     (const uint8_t (*)[32])path,
							     k - 1, got) ||
				      memcmp(got, root, 32) != 0);
			}
		}
	}
}

TEST(chain_proofs_check_against_block_hash)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "prover", THX_ALWAYS, 13);
	add_n(c, 50); /* blocks of 13, 13, 13; 11 open */
	CHECK_EQ_INT(thx_block_count(c), 3);
	thx_proof p;
	th_err err = { 0 };
	CHECK_EQ_INT(thx_prove(c, 45, &p, &err), TH_ESTATE);
	REQUIRE(thx_seal_block(c, NULL) == 0);
	CHECK_EQ_INT(thx_block_count(c), 4);
	for (uint64_t seq = 0; seq < 50; seq++) {
		REQUIRE(thx_prove(c, seq, &p, &err) == 0);
		thx_block b;
		REQUIRE(thx_block_get(c, p.block.index, &b, NULL) == 0);
		CHECK(thx_proof_check(&p, b.hash, &err) == 0);
		thx_event ev;
		REQUIRE(thx_get(c, seq, &ev, NULL) == 0);
		CHECK(memcmp(ev.hash, p.event_hash, 32) == 0);
		thx_event_release(&ev);
		/* round trip through the encoding */
		uint8_t *bytes;
		size_t n;
		REQUIRE(thx_proof_encode(&p, &bytes, &n, NULL) == 0);
		CHECK(th_cbor_check_deterministic(bytes, n, NULL));
		thx_proof q;
		REQUIRE(thx_proof_decode(bytes, n, &q, &err) == 0);
		CHECK(thx_proof_check(&q, b.hash, NULL) == 0);
		thx_free(bytes);
		/* tampering anywhere is caught */
		q = p;
		q.event_hash[0] ^= 1;
		CHECK(thx_proof_check(&q, b.hash, NULL) == TH_ECORRUPT);
		if (p.path_len) {
			q = p;
			q.path[p.path_len - 1][5] ^= 1;
			CHECK(thx_proof_check(&q, b.hash, NULL) == TH_ECORRUPT);
		}
		q = p;
		q.block.first_seq += 1;
		CHECK(thx_proof_check(&q, b.hash, NULL) != 0);
		uint8_t other[32];
		memcpy(other, b.hash, 32);
		other[31] ^= 0x80;
		CHECK(thx_proof_check(&p, other, NULL) == TH_ECORRUPT);
	}
	thx_store_close(s);
	rmrf(dir);
}

TEST(proof_decode_rejects_garbage)
{
	uint8_t junk[] = { 0x86, 0x61, 0x78 };
	thx_proof p;
	th_err err = { 0 };
	CHECK(thx_proof_decode(junk, sizeof junk, &p, &err) != 0);
	CHECK(strstr(err.msg, "proof") != NULL);
}

/* ---- recovery and damage ---- */

static void copy_file(const char *from, const char *to, off_t n)
{
	int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	REQUIRE(a >= 0 && b >= 0);
	char buf[65536];
	while (n > 0) {
		ssize_t r = read(a, buf, (size_t)(n < (off_t)sizeof buf ? n : (off_t)sizeof buf));
		REQUIRE(r > 0);
		REQUIRE(write(b, buf, (size_t)r) == r);
		n -= r;
	}
	close(a);
	close(b);
}

TEST(torn_tail_at_every_byte_of_the_last_record)
{
	char *dir = tmpdir(), seg[128];
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "torn", THX_ALWAYS, 1000);
	add_n(c, 20);
	thx_store_close(s);
	seg_path(dir, seg, sizeof seg);
	off_t full = file_size(seg);
	/* where the last record starts: size after 19 events */
	char dir2[128], seg2[160];
	snprintf(dir2, sizeof dir2, "%s-b", dir);
	REQUIRE(mkdir(dir2, 0755) == 0);
	s = open_store(dir2, 0);
	c = chain(s, "torn", THX_ALWAYS, 1000);
	add_n(c, 19);
	thx_store_close(s);
	seg_path(dir2, seg2, sizeof seg2);
	off_t start = file_size(seg2);
	CHECK(start < full);
	for (off_t cut = start; cut < full; cut++) {
		copy_file(seg, seg2, cut);
		s = open_store(dir2, 0);
		REQUIRE(thx_chain_open(s, "torn", NULL, false, &c, NULL) == 0);
		CHECK_EQ_INT(thx_chain_count(c), 19);
		CHECK_EQ_INT(file_size(seg2), start); /* truncated */
		CHECK(verify_ok(s, NULL));
		CHECK_EQ_INT(add(c, "wasm.call", "after"), 19);
		thx_store_close(s);
		s = open_store(dir2, 0);
		REQUIRE(thx_chain_open(s, "torn", NULL, false, &c, NULL) == 0);
		CHECK_EQ_INT(thx_chain_count(c), 20);
		CHECK(verify_ok(s, NULL));
		thx_store_close(s);
	}
	rmrf(dir);
	rmrf(dir2);
}

/* Flip one byte of the record of event `seq` (found through thx_get). */
static uint64_t flip_in_event(const char *dir, const char *name, uint64_t seq, int delta)
{
	thx_store *s = open_store(dir, 0);
	thx_chain *c;
	REQUIRE(thx_chain_open(s, name, NULL, false, &c, NULL) == 0);
	thx_event ev;
	REQUIRE(thx_get(c, seq, &ev, NULL) == 0);
	uint64_t off = ev.offset;
	thx_event_release(&ev);
	thx_store_close(s);
	char seg[128];
	seg_path(dir, seg, sizeof seg);
	int fd = open(seg, O_RDWR);
	REQUIRE(fd >= 0);
	uint8_t b;
	REQUIRE(pread(fd, &b, 1, (off_t)off + delta) == 1);
	b ^= 0x20;
	REQUIRE(pwrite(fd, &b, 1, (off_t)off + delta) == 1);
	close(fd);
	return off;
}

TEST(flipped_data_byte_is_reported_and_the_rest_readable)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "victim", THX_ALWAYS, 8);
	thx_chain *o = chain(s, "bystander", THX_ALWAYS, 8);
	add_n(c, 30);
	add_n(o, 30);
	thx_store_close(s);
	/* the last byte of the record is inside the data ("...payload 12") */
	uint64_t off = flip_in_event(dir, "victim", 12, 16 + 4 + 32 + 60);
	s = open_store(dir, 0);
	thx_verify_report r;
	REQUIRE(thx_verify(s, NULL, NULL, NULL, &r, NULL) == 0);
	CHECK(!r.ok);
	CHECK_EQ_STR(r.chain, "victim");
	CHECK_EQ_INT(r.seq, 12);
	CHECK_EQ_INT(r.offset, off);
	CHECK_EQ_STR(r.file, "seg-00000001.0.log");
	CHECK(strstr(r.what, "checksum") != NULL);
	REQUIRE(thx_chain_open(s, "victim", NULL, false, &c, NULL) == 0);
	REQUIRE(thx_chain_open(s, "bystander", NULL, false, &o, NULL) == 0);
	CHECK_EQ_INT(thx_chain_count(c), 30);
	thx_event ev;
	th_err err = { 0 };
	CHECK_EQ_INT(thx_get(c, 12, &ev, &err), TH_ECORRUPT);
	CHECK(strstr(err.msg, "offset") != NULL);
	for (uint64_t i = 0; i < 30; i++) {
		if (i != 12) {
			CHECK(thx_get(c, i, &ev, NULL) == 0);
			thx_event_release(&ev);
		}
		CHECK(thx_get(o, i, &ev, NULL) == 0);
		thx_event_release(&ev);
	}
	/* the damaged chain refuses appends, the other one does not */
	CHECK_EQ_INT(thx_append(c, &(thx_event_in){ .actor = "victim", .type = "x" }, NULL,
				NULL, &err), TH_ECORRUPT);
	CHECK(strstr(err.msg, "damaged") != NULL);
	add(o, "wasm.call", "still fine");
	CHECK(verify_ok(s, "bystander"));
	thx_store_close(s);
	rmrf(dir);
}

TEST(tampered_event_with_valid_crc_is_a_hash_mismatch)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "tamper", THX_ALWAYS, 8);
	add_n(c, 20);
	thx_store_close(s);
	/* change data and fix the CRC: only the hash can tell */
	uint64_t off = flip_in_event(dir, "tamper", 5, 16 + 4 + 32 + 58);
	char seg[128];
	seg_path(dir, seg, sizeof seg);
	int fd = open(seg, O_RDWR);
	uint8_t hdr[16];
	REQUIRE(pread(fd, hdr, 16, (off_t)off) == 16);
	uint32_t len = thx__le32(hdr + 4);
	uint8_t *rec = malloc(16 + len);
	REQUIRE(pread(fd, rec, 16 + len, (off_t)off) == (ssize_t)(16 + len));
	thx__frame(rec, rec[8], len);
	REQUIRE(pwrite(fd, rec, 16, (off_t)off) == 16);
	free(rec);
	close(fd);
	s = open_store(dir, 0);
	thx_verify_report r;
	REQUIRE(thx_verify(s, "tamper", NULL, NULL, &r, NULL) == 0);
	CHECK(!r.ok);
	CHECK_EQ_INT(r.seq, 5);
	CHECK_EQ_INT(r.offset, off);
	CHECK(strstr(r.what, "hash mismatch") != NULL);
	thx_store_close(s);
	rmrf(dir);
}

TEST(garbage_in_the_middle_is_damage_not_a_torn_tail)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "mid", THX_ALWAYS, 4);
	add_n(c, 12);
	thx_store_close(s);
	/* wreck the header of event 3 */
	uint64_t off = flip_in_event(dir, "mid", 3, 1);
	char seg[128];
	seg_path(dir, seg, sizeof seg);
	off_t before = file_size(seg);
	s = open_store(dir, 0);
	CHECK_EQ_INT(file_size(seg), before); /* nothing truncated */
	REQUIRE(thx_chain_open(s, "mid", NULL, false, &c, NULL) == 0);
	CHECK_EQ_INT(thx_chain_count(c), 12);
	thx_event ev;
	CHECK_EQ_INT(thx_get(c, 3, &ev, NULL), TH_ECORRUPT);
	CHECK(thx_get(c, 11, &ev, NULL) == 0);
	thx_event_release(&ev);
	thx_verify_report r;
	REQUIRE(thx_verify(s, NULL, NULL, NULL, &r, NULL) == 0);
	CHECK(!r.ok);
	CHECK_EQ_INT(r.offset, off);
	thx_store_close(s);
	rmrf(dir);
}

/* ---- retention, pruning, compaction ---- */

TEST(pruning_keeps_verification_end_to_end)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 8192);
	thx_chain_opts o = { .durability = THX_ALWAYS, .block_events = 10,
			     .retention = { .max_events = 25 } };
	thx_chain *c;
	REQUIRE(thx_chain_open(s, "pruned", &o, true, &c, NULL) == 0);
	thx_chain *m = chain(s, "mem", THX_NONE, 10);
	for (int i = 0; i < 100; i++) {
		add(c, "message.received", "0123456789012345678901234567890123456789");
		add(m, "message.received", "0123456789012345678901234567890123456789");
	}
	uint64_t pruned = 0;
	REQUIRE(thx_prune(s, &pruned, NULL) == 0);
	CHECK_EQ_INT(pruned, 75);
	REQUIRE(thx_prune_below(m, 50, NULL) == 0);
	thx_event ev;
	REQUIRE(thx_get(c, 10, &ev, NULL) == 0);
	CHECK(ev.pruned && ev.data == NULL);
	thx_event_release(&ev);
	REQUIRE(thx_get(c, 80, &ev, NULL) == 0);
	CHECK(!ev.pruned && ev.len == 40);
	thx_event_release(&ev);
	REQUIRE(thx_get(m, 49, &ev, NULL) == 0);
	CHECK(ev.pruned);
	thx_event_release(&ev);
	CHECK(verify_ok(s, NULL));
	/* proofs still work for pruned events */
	thx_proof p;
	REQUIRE(thx_prove(c, 3, &p, NULL) == 0);
	CHECK(thx_proof_check(&p, NULL, NULL) == 0);

	uint64_t reclaimed = 0;
	thx_store_sync(s, NULL);
	REQUIRE(thx_compact(s, &reclaimed, NULL) == 0);
	CHECK(reclaimed > 0);
	CHECK(verify_ok(s, NULL));
	REQUIRE(thx_get(c, 80, &ev, NULL) == 0);
	CHECK(!ev.pruned && memcmp(ev.data, "0123", 4) == 0);
	thx_event_release(&ev);
	thx_store_close(s);

	s = open_store(dir, 8192);
	REQUIRE(thx_chain_open(s, "pruned", NULL, false, &c, NULL) == 0);
	CHECK_EQ_INT(thx_chain_count(c), 100);
	REQUIRE(thx_get(c, 10, &ev, NULL) == 0);
	CHECK(ev.pruned);
	thx_event_release(&ev);
	CHECK(verify_ok(s, NULL));
	thx_verify_report r;
	REQUIRE(thx_verify(s, NULL, NULL, NULL, &r, NULL) == 0);
	CHECK(r.pruned > 0);
	thx_store_close(s);
	rmrf(dir);
}

TEST(retention_by_bytes_and_age)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain_opts o = { .durability = THX_BATCH, .retention = { .max_bytes = 100 } };
	thx_chain *c;
	REQUIRE(thx_chain_open(s, "bytes", &o, true, &c, NULL) == 0);
	for (int i = 0; i < 20; i++)
		add(c, "t", "0123456789"); /* 10 bytes each */
	thx_chain_opts a = { .durability = THX_ALWAYS,
			     .retention = { .max_age_ns = 1000000000ull } };
	thx_chain *old;
	REQUIRE(thx_chain_open(s, "aged", &a, true, &old, NULL) == 0);
	uint64_t now = th_wall_ns();
	for (int i = 0; i < 10; i++) {
		thx_event_in in = { .actor = "aged", .type = "t",
				    .timestamp_ns = now - (uint64_t)(10 - i) * 400000000ull };
		REQUIRE(thx_append(old, &in, NULL, NULL, NULL) == 0);
	}
	REQUIRE(thx_prune(s, NULL, NULL) == 0);
	thx_event ev;
	REQUIRE(thx_get(c, 9, &ev, NULL) == 0);
	CHECK(ev.pruned);
	thx_event_release(&ev);
	REQUIRE(thx_get(c, 10, &ev, NULL) == 0);
	CHECK(!ev.pruned);
	thx_event_release(&ev);
	/* events older than 1 s: those stamped 4.0..1.2 s ago (i < 8) */
	REQUIRE(thx_get(old, 7, &ev, NULL) == 0);
	CHECK(ev.pruned);
	thx_event_release(&ev);
	REQUIRE(thx_get(old, 8, &ev, NULL) == 0);
	CHECK(!ev.pruned);
	thx_event_release(&ev);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

struct appender {
	thx_chain *c;
	int n;
	int failures;
};

static void *append_thread(void *arg)
{
	struct appender *a = arg;
	for (int i = 0; i < a->n; i++) {
		thx_event_in in = { .actor = thx_chain_name(a->c), .type = "message.received",
				    .data = "a payload that will be pruned and compacted away",
				    .len = 48 };
		if (thx_append(a->c, &in, NULL, NULL, NULL) != 0)
			a->failures++;
	}
	return NULL;
}

TEST(compaction_during_appends)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 4096);
	thx_chain_opts o = { .durability = THX_BATCH, .block_events = 9,
			     .retention = { .max_events = 50 } };
	struct appender ap[3];
	pthread_t th[3];
	char name[16];
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "busy-%d", i);
		REQUIRE(thx_chain_open(s, name, &o, true, &ap[i].c, NULL) == 0);
		ap[i].n = 1500;
		ap[i].failures = 0;
		REQUIRE(pthread_create(&th[i], NULL, append_thread, &ap[i]) == 0);
	}
	uint64_t total = 0;
	for (int round = 0; round < 40; round++) {
		uint64_t r = 0;
		REQUIRE(thx_prune(s, NULL, NULL) == 0);
		REQUIRE(thx_compact(s, &r, NULL) == 0);
		total += r;
		/* reads of live events keep working while segments move */
		thx_event ev;
		uint64_t n = thx_chain_count(ap[0].c);
		if (n > 0) {
			CHECK(thx_get(ap[0].c, n - 1, &ev, NULL) == 0);
			thx_event_release(&ev);
		}
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(ap[i].failures, 0);
	}
	REQUIRE(thx_prune(s, NULL, NULL) == 0);
	REQUIRE(thx_store_sync(s, NULL) == 0);
	uint64_t r = 0;
	REQUIRE(thx_compact(s, &r, NULL) == 0);
	total += r;
	CHECK(total > 0);
	thx_stats st;
	thx_store_stats(s, &st);
	CHECK(st.compactions > 0);
	CHECK(verify_ok(s, NULL));
	for (int i = 0; i < 3; i++) {
		thx_event ev;
		CHECK_EQ_INT(thx_chain_count(ap[i].c), 1500);
		REQUIRE(thx_get(ap[i].c, 1499, &ev, NULL) == 0);
		CHECK_EQ_INT(ev.len, 48);
		thx_event_release(&ev);
	}
	thx_store_close(s);
	s = open_store(dir, 4096);
	CHECK(verify_ok(s, NULL));
	thx_chain *c;
	REQUIRE(thx_chain_open(s, "busy-2", NULL, false, &c, NULL) == 0);
	CHECK_EQ_INT(thx_chain_count(c), 1500);
	thx_store_close(s);
	rmrf(dir);
}

/* ---- indexes ---- */

struct collect {
	uint64_t seqs[256];
	int n;
};

static int collect_fn(const thx_event *ev, void *arg)
{
	struct collect *c = arg;
	if (c->n < 256)
		c->seqs[c->n++] = ev->seq;
	return 0;
}

TEST(index_queries_by_type_actor_and_time)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *rt = chain(s, THX_RUNTIME_CHAIN, THX_ALWAYS, 0);
	uint64_t t0 = 1700000000000000000ull;
	for (int i = 0; i < 100; i++) {
		char actor[16];
		snprintf(actor, sizeof actor, "actor-%d", i % 4);
		thx_event_in in = { .actor = actor,
				    .type = i % 10 == 0 ? "supervisor.restart" : "actor.created",
				    .timestamp_ns = t0 + (uint64_t)i * 1000 };
		REQUIRE(thx_append(rt, &in, NULL, NULL, NULL) == 0);
	}
	struct collect c = { 0 };
	REQUIRE(thx_query_run(rt, &(thx_query){ .type = "supervisor.restart" }, collect_fn, &c,
			      NULL) == 0);
	CHECK_EQ_INT(c.n, 10);
	CHECK_EQ_INT(c.seqs[3], 30);
	memset(&c, 0, sizeof c);
	REQUIRE(thx_query_run(rt, &(thx_query){ .actor = "actor-1" }, collect_fn, &c, NULL) == 0);
	CHECK_EQ_INT(c.n, 25);
	CHECK_EQ_INT(c.seqs[0], 1);
	memset(&c, 0, sizeof c);
	REQUIRE(thx_query_run(rt, &(thx_query){ .since_ns = t0 + 20500, .until_ns = t0 + 30000 },
			      collect_fn, &c, NULL) == 0);
	CHECK_EQ_INT(c.n, 9);
	CHECK_EQ_INT(c.seqs[0], 21);
	memset(&c, 0, sizeof c);
	REQUIRE(thx_query_run(rt, &(thx_query){ .type = "supervisor.restart", .actor = "actor-2",
						.since_ns = t0 + 10000 },
			      collect_fn, &c, NULL) == 0);
	/* restarts at 10,20,...,90 whose actor is i%4==2: 10, 30, 50, 70, 90 */
	CHECK_EQ_INT(c.n, 5);
	CHECK_EQ_INT(c.seqs[0], 10);
	memset(&c, 0, sizeof c);
	REQUIRE(thx_query_run(rt, &(thx_query){ .type = "actor.created", .limit = 7,
						.from_seq = 50 },
			      collect_fn, &c, NULL) == 0);
	CHECK_EQ_INT(c.n, 7);
	CHECK_EQ_INT(c.seqs[0], 51);
	memset(&c, 0, sizeof c);
	REQUIRE(thx_query_run(rt, &(thx_query){ .type = "no.such.type" }, collect_fn, &c,
			      NULL) == 0);
	CHECK_EQ_INT(c.n, 0);
	/* the indexes are rebuilt on open */
	thx_store_close(s);
	s = open_store(dir, 0);
	REQUIRE(thx_chain_open(s, THX_RUNTIME_CHAIN, NULL, false, &rt, NULL) == 0);
	memset(&c, 0, sizeof c);
	REQUIRE(thx_query_run(rt, &(thx_query){ .type = "supervisor.restart", .actor = "actor-2" },
			      collect_fn, &c, NULL) == 0);
	CHECK_EQ_INT(c.n, 5);
	thx_store_close(s);
	rmrf(dir);
}

/* A large memory chain gets its next data chunk and entry page from the
 * hasher, pages touched ahead of need; appends take them, and every event
 * reads back whole. */
static void *spare_of(thx_chain *c, bool page)
{
	pthread_mutex_lock(&c->mu);
	void *p = page ? (void *)c->espare : (void *)c->mspare;
	pthread_mutex_unlock(&c->mu);
	return p;
}

static void fill(uint8_t *d, size_t n, uint64_t seq)
{
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(seq * 31 + i);
}

TEST(memory_chain_takes_spares_made_ahead)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "big", THX_NONE, 0);
	uint8_t d[1000];
	uint64_t n = 0;
	void *chunk = NULL, *page = NULL;
	bool took_chunk = false, took_page = false;
	int budget = 30000; /* polls of 1 ms, in all */
	/* 4 MiB of data, 8192 entries: past the 64 KiB chunk and the 512-entry
	 * page where spares start */
	while (n < 8192 || !took_chunk || !took_page) {
		REQUIRE(n < 50000);
		fill(d, sizeof d, n);
		thx_event_in in = { .actor = "big", .type = "t", .data = d, .len = 500 };
		REQUIRE(thx_append(c, &in, NULL, NULL, NULL) == 0);
		n++;
		took_chunk |= chunk && c->mtail == chunk;
		took_page |= page && c->epages[c->nepages - 1] == page;
		if (n % 256 == 0) {
			/* let the hasher catch up and make what it will */
			uint8_t h[32];
			REQUIRE(thx_chain_head(c, h));
			while (budget > 0 && !spare_of(c, false) && !spare_of(c, true)) {
				usleep(1000);
				budget--;
			}
			chunk = spare_of(c, false);
			page = spare_of(c, true);
		}
	}
	CHECK(took_chunk && took_page);
	for (uint64_t i = 0; i < n; i++) {
		thx_event ev;
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		fill(d, 500, i);
		CHECK(ev.len == 500 && memcmp(ev.data, d, 500) == 0);
		thx_event_release(&ev);
	}
	CHECK(verify_ok(s, "big"));
	thx_store_close(s);
	rmrf(dir);
}

/* Chain memory of THX__HUGE bytes or more is mapped 2 MiB-aligned (huge
 * pages when the kernel gives them); a chain long enough to use such
 * entry pages (32768 entries each) and data chunks keeps every event. */
TEST(huge_blocks_hold_long_chains)
{
	uint8_t *p = thx__mem_alloc(THX__HUGE + 100);
	REQUIRE(p != NULL);
	CHECK(((uintptr_t)p & (THX__HUGE - 1)) == 0);
	memset(p, 0xab, THX__HUGE + 100);
	CHECK(p[THX__HUGE + 99] == 0xab);
	thx__mem_free(p, THX__HUGE + 100);
	uint8_t *q = thx__mem_alloc(1000); /* the allocator's */
	REQUIRE(q != NULL);
	CHECK(((uintptr_t)q & 63) == 0);
	thx__mem_free(q, 1000);

	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "long", THX_NONE, 0);
	enum { N = 80000 };
	uint8_t d[64];
	for (uint64_t i = 0; i < N; i++) {
		fill(d, 40, i);
		thx_event_in in = { .actor = "long", .type = "t", .data = d,
				    .len = 40, .type_static = true, .actor_static = true };
		REQUIRE(thx_append(c, &in, NULL, NULL, NULL) == 0);
	}
	CHECK(c->nepages > THX__EP_GEO); /* fixed-size (huge) pages in use */
	for (uint64_t i = 0; i < N; i += 997) {
		thx_event ev;
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		fill(d, 40, i);
		CHECK(ev.len == 40 && memcmp(ev.data, d, 40) == 0);
		thx_event_release(&ev);
	}
	CHECK(verify_ok(s, "long"));
	thx_store_close(s);
	rmrf(dir);
}

/* The posting lists are built by queries, not appends: a query after more
 * appends sees them, and one that ran out of memory half way leaves no
 * event counted twice. */
TEST(index_catches_up_after_appends_and_failed_queries)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "lazy", THX_NONE, 0);
	struct collect col = { 0 };
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 40; i++) {
			thx_event_in in = { .actor = i % 2 ? "odd" : "even",
					    .type = i % 5 ? "msg" : "tick" };
			REQUIRE(thx_append(c, &in, NULL, NULL, NULL) == 0);
		}
		if (round == 1) /* fail the catch-up at every allocation in turn */
			for (long k = 0; k < 12; k++) {
				memset(&col, 0, sizeof col);
				th_alloc_fail_after(k);
				int rc = thx_query_run(c, &(thx_query){ .type = "tick" },
						       collect_fn, &col, NULL);
				th_alloc_fail_after(-1);
				CHECK(rc == 0 || rc == TH_ENOMEM);
			}
		memset(&col, 0, sizeof col);
		REQUIRE(thx_query_run(c, &(thx_query){ .type = "tick" }, collect_fn, &col,
				      NULL) == 0);
		CHECK_EQ_INT(col.n, 8 * (round + 1));
		for (int k = 0; k < col.n; k++)
			CHECK_EQ_INT(col.seqs[k], 5 * k);
		memset(&col, 0, sizeof col);
		REQUIRE(thx_query_run(c, &(thx_query){ .actor = "odd", .type = "msg" },
				      collect_fn, &col, NULL) == 0);
		CHECK_EQ_INT(col.n, 16 * (round + 1));
	}
	thx_store_close(s);
	rmrf(dir);
}

TEST(timestamps_never_go_backwards)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "clock", THX_NONE, 0);
	thx_event_in in = { .actor = "clock", .type = "t", .timestamp_ns = 5000 };
	REQUIRE(thx_append(c, &in, NULL, NULL, NULL) == 0);
	in.timestamp_ns = 100;
	REQUIRE(thx_append(c, &in, NULL, NULL, NULL) == 0);
	thx_event ev;
	REQUIRE(thx_get(c, 1, &ev, NULL) == 0);
	CHECK_EQ_INT(ev.timestamp_ns, 5000);
	thx_event_release(&ev);
	thx_store_close(s);
	rmrf(dir);
}

/* ---- subscriptions ---- */

struct seen {
	pthread_mutex_t mu;
	uint64_t next[4];
	int out_of_order;
	int count;
};

static int seen_fn(const thx_event *ev, void *arg)
{
	struct seen *s = arg;
	pthread_mutex_lock(&s->mu);
	int k = ev->actor[strlen(ev->actor) - 1] - '0';
	if (k >= 0 && k < 4) {
		if (ev->seq != s->next[k])
			s->out_of_order++;
		s->next[k] = ev->seq + 1;
	}
	s->count++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

TEST(subscribers_get_events_in_order)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	struct appender ap[4];
	pthread_t th[4];
	char name[16];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "sub-%d", i);
		ap[i].c = chain(s, name, i == 0 ? THX_ALWAYS : i == 1 ? THX_BATCH : THX_NONE, 0);
		ap[i].n = 300;
		ap[i].failures = 0;
	}
	add(ap[3].c, "before", "not delivered");
	struct seen all = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct seen one = { .mu = PTHREAD_MUTEX_INITIALIZER };
	one.next[3] = 1;
	all.next[3] = 1;
	uint64_t id1, id2;
	REQUIRE(thx_subscribe(s, NULL, seen_fn, &all, &id1, NULL) == 0);
	REQUIRE(thx_subscribe(s, "sub-3", seen_fn, &one, &id2, NULL) == 0);
	/* two threads per chain for chain 3 to race on delivery */
	for (int i = 0; i < 4; i++)
		REQUIRE(pthread_create(&th[i], NULL, append_thread, &ap[i]) == 0);
	struct appender extra = { ap[3].c, 300, 0 };
	pthread_t xt;
	REQUIRE(pthread_create(&xt, NULL, append_thread, &extra) == 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	pthread_join(xt, NULL);
	CHECK_EQ_INT(all.out_of_order, 0);
	CHECK_EQ_INT(all.count, 4 * 300 + 300);
	CHECK_EQ_INT(one.count, 600);
	CHECK_EQ_INT(one.out_of_order, 0);
	CHECK_EQ_INT(one.next[3], 601);
	REQUIRE(thx_unsubscribe(s, id1) == 0);
	CHECK_EQ_INT(thx_unsubscribe(s, id1), TH_ENOTFOUND);
	add(ap[3].c, "after", "x");
	CHECK_EQ_INT(all.count, 1500);
	CHECK_EQ_INT(one.count, 601);
	thx_store_close(s);
	rmrf(dir);
}

struct unsub {
	_Atomic int calls;
	_Atomic bool gone;
	_Atomic int late;   /* calls seen after thx_unsubscribe returned */
	_Atomic bool stop;
	thx_store *s;
	uint64_t id;
	thx_chain *c;
};

static int slow_fn(const thx_event *ev, void *arg)
{
	struct unsub *u = arg;
	TH_UNUSED(ev);
	if (atomic_load(&u->gone))
		atomic_fetch_add(&u->late, 1);
	atomic_fetch_add(&u->calls, 1);
	usleep(200); /* widen the window in which unsubscribe must wait */
	if (atomic_load(&u->gone))
		atomic_fetch_add(&u->late, 1);
	return 0;
}

static void *busy_appender(void *arg)
{
	struct unsub *u = arg;
	thx_event_in in = { .actor = "u", .type = "t" };
	while (!atomic_load(&u->stop))
		thx_append(u->c, &in, NULL, NULL, NULL);
	return NULL;
}

TEST(no_callback_after_unsubscribe_returns)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	struct unsub u = { .s = s };
	u.c = chain(s, "u", THX_NONE, 0);
	REQUIRE(thx_subscribe(s, "u", slow_fn, &u, &u.id, NULL) == 0);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&th[i], NULL, busy_appender, &u) == 0);
	while (atomic_load(&u.calls) < 20)
		usleep(1000);
	REQUIRE(thx_unsubscribe(s, u.id) == 0);
	atomic_store(&u.gone, true);
	int calls = atomic_load(&u.calls);
	usleep(20000);
	atomic_store(&u.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(atomic_load(&u.late), 0);
	CHECK_EQ_INT(atomic_load(&u.calls), calls);
	thx_store_close(s);
	rmrf(dir);
}

static int self_unsub_fn(const thx_event *ev, void *arg)
{
	struct unsub *u = arg;
	TH_UNUSED(ev);
	if (atomic_fetch_add(&u->calls, 1) == 4)
		CHECK_EQ_INT(thx_unsubscribe(u->s, u->id), 0);
	return 0;
}

TEST(callback_may_unsubscribe_itself)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	struct unsub u = { .s = s };
	thx_chain *c = chain(s, "self", THX_ALWAYS, 0);
	REQUIRE(thx_subscribe(s, NULL, self_unsub_fn, &u, &u.id, NULL) == 0);
	add_n(c, 20);
	CHECK_EQ_INT(atomic_load(&u.calls), 5);
	CHECK_EQ_INT(thx_unsubscribe(s, u.id), TH_ENOTFOUND);
	thx_store_close(s);
	rmrf(dir);
}

static int resubscribe_fn(const thx_event *ev, void *arg)
{
	/* appending from inside a callback (to another chain) works */
	thx_chain *echo = arg;
	if (strcmp(ev->type, "ping") == 0) {
		thx_event_in in = { .actor = "echo", .type = "pong" };
		thx_append(echo, &in, NULL, NULL, NULL);
	}
	return 0;
}

TEST(subscriber_may_append)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *a = chain(s, "pinger", THX_ALWAYS, 0);
	thx_chain *b = chain(s, "echo", THX_ALWAYS, 0);
	uint64_t id;
	REQUIRE(thx_subscribe(s, "pinger", resubscribe_fn, b, &id, NULL) == 0);
	for (int i = 0; i < 10; i++)
		add(a, "ping", "p");
	CHECK_EQ_INT(thx_chain_count(b), 10);
	thx_store_close(s);
	rmrf(dir);
}

/* ---- concurrency and group commit ---- */

TEST(concurrent_always_appends_share_fsyncs)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 1u << 20);
	enum { T = 8, N = 200 };
	struct appender ap[T];
	pthread_t th[T];
	char name[16];
	for (int i = 0; i < T; i++) {
		snprintf(name, sizeof name, "gc-%d", i);
		ap[i].c = chain(s, name, THX_ALWAYS, 0);
		ap[i].n = N;
		ap[i].failures = 0;
	}
	/* plus two threads on one chain */
	for (int i = 0; i < T; i++)
		REQUIRE(pthread_create(&th[i], NULL, append_thread, &ap[i]) == 0);
	struct appender twin = { ap[0].c, N, 0 };
	pthread_t tt;
	REQUIRE(pthread_create(&tt, NULL, append_thread, &twin) == 0);
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	pthread_join(tt, NULL);
	thx_stats st;
	thx_store_stats(s, &st);
	CHECK(st.fsyncs <= (T + 1) * N);
	CHECK_EQ_INT(thx_chain_count(ap[0].c), 2 * N);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	s = open_store(dir, 1u << 20);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

TEST(batch_append_is_one_durability_wait)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "batched", THX_ALWAYS, 0);
	thx_event_in evs[100];
	for (int i = 0; i < 100; i++)
		evs[i] = (thx_event_in){ .actor = "batched", .type = "wasm.call", .data = "d",
					 .len = 1 };
	thx_stats a, b;
	thx_store_stats(s, &a);
	uint64_t first;
	size_t done;
	REQUIRE(thx_append_batch(c, evs, 100, &first, &done, NULL) == 0);
	thx_store_stats(s, &b);
	CHECK_EQ_INT(done, 100);
	CHECK_EQ_INT(first, 0);
	CHECK_EQ_INT(b.fsyncs - a.fsyncs, 1);
	/* a bad event stops the batch and says how far it got */
	evs[50].type = "";
	th_err err = { 0 };
	CHECK_EQ_INT(thx_append_batch(c, evs, 100, &first, &done, &err), TH_EINVAL);
	CHECK_EQ_INT(done, 50);
	CHECK_EQ_INT(thx_chain_count(c), 150);
	thx_store_close(s);
	rmrf(dir);
}

/* ---- failures ---- */

TEST(full_disk_fails_appends_and_keeps_what_was_written)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "disk", THX_ALWAYS, 5);
	add_n(c, 23);
	char seg[128];
	seg_path(dir, seg, sizeof seg);
	off_t good = file_size(seg);
	atomic_store(&thx__fault_write_budget, 30); /* the next record does not fit */
	thx_event_in in = { .actor = "disk", .type = "wasm.call", .data = "x", .len = 1 };
	th_err err = { 0 };
	CHECK_EQ_INT(thx_append(c, &in, NULL, NULL, &err), TH_ENOSPC);
	CHECK(strstr(err.msg, "No space left on device") != NULL);
	CHECK(strstr(err.msg, "seg-00000001.0.log") != NULL);
	atomic_store(&thx__fault_write_budget, -1);
	CHECK_EQ_INT(file_size(seg), good); /* the partial write was taken back */
	/* the store refuses further writes until reopened */
	CHECK_EQ_INT(thx_append(c, &in, NULL, NULL, &err), TH_ENOSPC);
	thx_store_close(s);
	s = open_store(dir, 0);
	REQUIRE(thx_chain_open(s, "disk", NULL, false, &c, NULL) == 0);
	CHECK_EQ_INT(thx_chain_count(c), 23);
	CHECK(verify_ok(s, NULL));
	CHECK_EQ_INT(add(c, "wasm.call", "room again"), 23);
	thx_store_close(s);
	rmrf(dir);
}

TEST(one_writer_per_directory)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c = chain(s, "locked", THX_ALWAYS, 0);
	add_n(c, 3);
	thx_store *t = NULL;
	th_err err = { 0 };
	CHECK_EQ_INT(thx_store_open(dir, &(thx_store_opts){ .no_background = true }, &t, &err),
		     TH_EBUSY);
	CHECK(strstr(err.msg, "in use") != NULL);
	/* a reader can still look */
	REQUIRE(thx_store_open(dir, &(thx_store_opts){ .read_only = true }, &t, &err) == 0);
	REQUIRE(thx_chain_open(t, "locked", NULL, false, &c, NULL) == 0);
	CHECK_EQ_INT(thx_chain_count(c), 3);
	CHECK(verify_ok(t, NULL));
	CHECK_EQ_INT(thx_chain_open(t, "new", NULL, true, &c, &err), TH_ESTATE);
	thx_store_close(t);
	thx_store_close(s);
	rmrf(dir);
}

TEST(bad_input_gets_clear_errors)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *c;
	th_err err = { 0 };
	CHECK_EQ_INT(thx_chain_open(s, "", NULL, true, &c, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "chain name") != NULL);
	char big[400];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CHECK_EQ_INT(thx_chain_open(s, big, NULL, true, &c, &err), TH_EINVAL);
	CHECK_EQ_INT(thx_chain_open(s, "bad\xff", NULL, true, &c, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "UTF-8") != NULL);
	/* past the 8-byte ASCII fast path: a cut sequence, then a valid one */
	CHECK_EQ_INT(thx_chain_open(s, "abcdefgh-ijklmnop\xc3", NULL, true, &c, &err), TH_EINVAL);
	CHECK_EQ_INT(thx_chain_open(s, "abcdefgh-caf\xc3\xa9-ijklmnop", NULL, true, &c, &err), 0);
	CHECK_EQ_INT(thx_chain_open(s, "nope", NULL, false, &c, &err), TH_ENOTFOUND);
	c = chain(s, "ok", THX_NONE, 0);
	CHECK_EQ_INT(thx_append(c, &(thx_event_in){ .actor = "ok", .type = big }, NULL, NULL,
				&err), TH_EINVAL);
	CHECK(strstr(err.msg, "event type") != NULL);
	CHECK_EQ_INT(thx_append(c, &(thx_event_in){ .actor = NULL, .type = "t" }, NULL, NULL,
				&err), TH_EINVAL);
	CHECK_EQ_INT(thx_append(c, &(thx_event_in){ .actor = "a", .type = "t", .data = "x",
						    .len = THX_DATA_MAX + 1 },
				NULL, NULL, &err), TH_ELIMIT);
	CHECK_EQ_INT(thx_chain_count(c), 0);
	thx_event ev;
	CHECK_EQ_INT(thx_get(c, 0, &ev, &err), TH_ENOTFOUND);
	thx_store_close(s);
	rmrf(dir);
}

TEST(allocation_failures_fail_the_operation_only)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 4096);
	thx_chain *c = chain(s, "oom", THX_ALWAYS, 3);
	thx_chain *m = chain(s, "oom-mem", THX_NONE, 3);
	uint64_t ok = 0, failed = 0;
	char type[32];
	for (long k = 0; k < 60; k++) {
		snprintf(type, sizeof type, "type-%ld", k); /* new strings to intern */
		thx_event_in in = { .actor = k % 2 ? "oom" : "someone-else", .type = type,
				    .data = "payload", .len = 7 };
		uint64_t before = thx_chain_count(c), mbefore = thx_chain_count(m);
		th_alloc_fail_after(k % 7);
		int rc = thx_append(c, &in, NULL, NULL, NULL);
		int rm = thx_append(m, &in, NULL, NULL, NULL);
		th_alloc_fail_after(-1);
		CHECK(rc == 0 || rc == TH_ENOMEM);
		CHECK(rm == 0 || rm == TH_ENOMEM);
		CHECK_EQ_INT(thx_chain_count(c), before + (rc == 0));
		CHECK_EQ_INT(thx_chain_count(m), mbefore + (rm == 0));
		if (rc == 0)
			ok++;
		else
			failed++;
	}
	CHECK(ok > 0 && failed > 0);
	CHECK(verify_ok(s, NULL));
	/* queries, proofs and verification under failure: errors, no crash */
	for (long k = 0; k < 20; k++) {
		struct collect col = { 0 };
		thx_verify_report r;
		thx_proof p;
		th_alloc_fail_after(k);
		int q = thx_query_run(c, &(thx_query){ .actor = "oom" }, collect_fn, &col, NULL);
		th_alloc_fail_after(k);
		int v = thx_verify(s, NULL, NULL, NULL, &r, NULL);
		th_alloc_fail_after(k);
		int pr = thx_prove(c, 0, &p, NULL);
		th_alloc_fail_after(-1);
		CHECK(q == 0 || q == TH_ENOMEM);
		CHECK(v == 0 || v == TH_ENOMEM);
		CHECK(v != 0 || r.ok);
		CHECK(pr == 0 || pr == TH_ENOMEM);
	}
	thx_store_close(s);
	/* and opening (recovery) under failure */
	for (long k = 0; k < 40; k++) {
		thx_store *t = NULL;
		th_alloc_fail_after(k);
		int rc = thx_store_open(dir, &(thx_store_opts){ .segment_bytes = 4096,
								.no_background = true },
					&t, NULL);
		th_alloc_fail_after(-1);
		CHECK(rc == 0 || rc == TH_ENOMEM);
		thx_store_close(t);
	}
	s = open_store(dir, 4096);
	REQUIRE(thx_chain_open(s, "oom", NULL, false, &c, NULL) == 0);
	CHECK_EQ_INT(thx_chain_count(c), ok);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

/* A valid record whose seq claims billions of lost events is damage, not a
 * reason to allocate an entry for each (found by fuzz_chain; seed
 * tests/chain/fuzz-seeds/implausible-seq). */
TEST(event_claiming_a_huge_seq_is_damage_not_a_huge_allocation)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 0);
	thx_chain *a = chain(s, "a", THX_ALWAYS, 0);
	add_n(a, 3);
	uint32_t no = a->no;
	thx_store_close(s);
	uint8_t rec[256];
	size_t n = thx__enc_event_raw(rec + 52, NULL, "a", 1, 1ull << 40, 1, "t", 1, "x", 1,
				      NULL, 0);
	thx__put_le32(rec + 16, no);
	thx__sha256(rec + 52, n, rec + 20);
	thx__frame(rec, THX__REC_EVENT, (uint32_t)(36 + n));
	char seg[400];
	seg_path(dir, seg, sizeof seg);
	int fd = open(seg, O_WRONLY | O_APPEND);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, rec, 52 + n) == (ssize_t)(52 + n));
	close(fd);
	s = open_store(dir, 0);
	th_err err = { 0 };
	REQUIRE(thx_chain_open(s, "a", NULL, false, &a, &err) == 0);
	CHECK_EQ_INT(thx_chain_count(a), 3);
	thx_event_in in = { .actor = "a", .type = "t" };
	CHECK_EQ_INT(thx_append(a, &in, NULL, NULL, &err), TH_ECORRUPT);
	CHECK(strstr(err.msg, "implausible") != NULL);
	thx_store_close(s);
	rmrf(dir);
}

/* ---- per-segment index files ---- */

/* Everything a store's index says about chains a and b, hashed: equal
 * digests mean equal recovered state. */
static void state_digest(thx_store *s, char out[65])
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	const char *names[] = { "a", "b" };
	th_err err = { 0 };
	for (int k = 0; k < 2; k++) {
		thx_chain *c;
		REQUIRE(thx_chain_open(s, names[k], NULL, false, &c, &err) == 0);
		uint64_t n = thx_chain_count(c), nb = thx_block_count(c);
		th_cbor_put_uint(&e, n);
		th_cbor_put_uint(&e, nb);
		for (uint64_t i = 0; i < n; i++) {
			thx_event ev;
			REQUIRE(thx_get(c, i, &ev, &err) == 0);
			th_cbor_put_bytes(&e, ev.hash, 32);
			th_cbor_put_uint(&e, ev.timestamp_ns);
			th_cbor_put_uint(&e, ev.pruned);
			th_cbor_put_cstr(&e, ev.type);
			th_cbor_put_cstr(&e, ev.actor);
			th_cbor_put_bytes(&e, ev.data ? ev.data : (const uint8_t *)"", ev.len);
			thx_event_release(&ev);
		}
		for (uint64_t b = 0; b < nb; b++) {
			thx_block bl;
			REQUIRE(thx_block_get(c, b, &bl, &err) == 0);
			th_cbor_put_bytes(&e, bl.hash, 32);
		}
		struct q_collect q = { 0, 0 };
		REQUIRE(thx_query_run(c, &(thx_query){ .type = "wasm.call" }, q_count, &q, &err) == 0);
		th_cbor_put_uint(&e, (uint64_t)q.n);
	}
	REQUIRE(!e.err);
	uint8_t h[32];
	thx__sha256(e.buf, e.len, h);
	th_hex(h, 32, out);
	th_cbor_enc_release(&e);
}

static thx_stats reopen_stats(thx_store **s, const char *dir, char digest[65])
{
	thx_store_close(*s);
	*s = open_store(dir, 4096);
	thx_stats st;
	thx_store_stats(*s, &st);
	state_digest(*s, digest);
	return st;
}

static void idx_path(const char *dir, int segno, char *out, size_t n)
{
	snprintf(out, n, "%s/seg-%08d.0.idx", dir, segno);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	REQUIRE(fd >= 0);
	ssize_t n = read(fd, buf, cap);
	close(fd);
	REQUIRE(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

/* Sealed segments get index files; opening uses them instead of reading the
 * segments, and a missing, stale, corrupt or truncated one is ignored and
 * rewritten, with the same recovered state every time. */
TEST(segment_index_files_are_used_missing_stale_or_corrupt_rebuilt)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 4096);
	thx_chain *a = chain(s, "a", THX_BATCH, 16), *b = chain(s, "b", THX_ALWAYS, 0);
	add_n(a, 300);
	add_n(b, 250);
	th_err err = { 0 };
	REQUIRE(thx_prune_below(b, 40, &err) == 0);
	add_n(a, 10);
	char d0[65], d[65];
	REQUIRE(thx_store_sync(s, &err) == 0);
	state_digest(s, d0);
	thx_stats st;
	thx_store_stats(s, &st);
	uint64_t nseg = st.segments;
	CHECK(nseg >= 10);

	/* first open: every sealed segment scanned and indexed */
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_INT(st.index_loaded, 0);
	CHECK_EQ_INT(st.index_built, nseg - 1);
	CHECK_EQ_STR(d, d0);
	/* second: all from the index files */
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_INT(st.index_loaded, nseg - 1);
	CHECK_EQ_INT(st.index_built, 0);
	CHECK_EQ_STR(d, d0);
	CHECK(verify_ok(s, NULL));

	char p2[400], p3[400];
	idx_path(dir, 2, p2, sizeof p2);
	idx_path(dir, 3, p3, sizeof p3);
	static uint8_t buf[1 << 20];
	/* missing */
	REQUIRE(unlink(p2) == 0);
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_INT(st.index_loaded, nseg - 2);
	CHECK_EQ_INT(st.index_built, 1);
	CHECK_EQ_STR(d, d0);
	/* stale: segment 3's (valid) index under segment 2's name */
	size_t n3 = read_file(p3, buf, sizeof buf);
	write_file(p2, buf, n3);
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_INT(st.index_loaded, nseg - 2);
	CHECK_EQ_INT(st.index_built, 1);
	CHECK_EQ_STR(d, d0);
	/* corrupt: one flipped byte in the body */
	size_t n2 = read_file(p2, buf, sizeof buf);
	buf[n2 / 2] ^= 0x10;
	write_file(p2, buf, n2);
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_INT(st.index_loaded, nseg - 2);
	CHECK_EQ_INT(st.index_built, 1);
	CHECK_EQ_STR(d, d0);
	/* truncated (a crash cannot do this: rename is atomic; a disk can) */
	n2 = read_file(p2, buf, sizeof buf);
	write_file(p2, buf, n2 / 2);
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_INT(st.index_loaded, nseg - 2);
	CHECK_EQ_INT(st.index_built, 1);
	CHECK_EQ_STR(d, d0);
	/* an unfinished index (crash before the rename) and an orphan go away */
	char tmp[420], orphan[400];
	snprintf(tmp, sizeof tmp, "%s.tmp", p2);
	write_file(tmp, "garbage", 7);
	idx_path(dir, 999, orphan, sizeof orphan);
	write_file(orphan, buf, n3);
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_INT(st.index_loaded, nseg - 1);
	CHECK_EQ_STR(d, d0);
	CHECK(access(tmp, F_OK) != 0);
	CHECK(access(orphan, F_OK) != 0);
	/* compaction replaces segments with pruned data: their old index files
	 * go with them, the next open indexes the new versions */
	uint64_t reclaimed = 0;
	REQUIRE(thx_compact(s, &reclaimed, &err) == 0);
	CHECK(reclaimed > 0);
	int compacted = 0, stale_left = 0;
	for (uint64_t k = 1; k <= nseg; k++) {
		char v1[400], i0[400];
		snprintf(v1, sizeof v1, "%s/seg-%08d.1.log", dir, (int)k);
		idx_path(dir, (int)k, i0, sizeof i0);
		if (access(v1, F_OK) == 0) {
			compacted++;
			stale_left += access(i0, F_OK) == 0;
		}
	}
	CHECK(compacted >= 1);
	CHECK_EQ_INT(stale_left, 0);
	state_digest(s, d0); /* compaction changes no recovered fact... */
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_STR(d, d0);
	CHECK(st.index_built >= 1);
	st = reopen_stats(&s, dir, d);
	CHECK_EQ_INT(st.index_loaded, nseg - 1);
	CHECK_EQ_STR(d, d0);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	/* a read-only open uses the index files and writes none */
	thx_store_opts ro = { .read_only = true, .no_background = true };
	REQUIRE(unlink(p3) == 0);
	REQUIRE(thx_store_open(dir, &ro, &s, &err) == 0);
	thx_store_stats(s, &st);
	CHECK_EQ_INT(st.index_loaded, nseg - 2);
	CHECK_EQ_INT(st.index_built, 0);
	state_digest(s, d);
	CHECK_EQ_STR(d, d0);
	CHECK(access(p3, F_OK) != 0);
	thx_store_close(s);
	rmrf(dir);
}

/* A damaged sealed segment gets no index file, so every open finds the
 * damage again. */
TEST(damaged_segment_gets_no_index_file)
{
	char *dir = tmpdir();
	thx_store *s = open_store(dir, 4096);
	thx_chain *a = chain(s, "a", THX_BATCH, 0);
	chain(s, "b", THX_BATCH, 0);
	add_n(a, 100);
	th_err err = { 0 };
	REQUIRE(thx_store_sync(s, &err) == 0);
	thx_store_close(s);
	char seg2[400], p2[400];
	snprintf(seg2, sizeof seg2, "%s/seg-00000002.0.log", dir);
	idx_path(dir, 2, p2, sizeof p2);
	int fd = open(seg2, O_RDWR);
	REQUIRE(fd >= 0);
	uint8_t byte;
	REQUIRE(pread(fd, &byte, 1, 200) == 1);
	byte ^= 0x01;
	REQUIRE(pwrite(fd, &byte, 1, 200) == 1);
	close(fd);
	for (int round = 0; round < 2; round++) {
		s = open_store(dir, 4096);
		REQUIRE(thx_chain_open(s, "a", NULL, false, &a, &err) == 0);
		thx_event_in in = { .actor = "a", .type = "t" };
		CHECK_EQ_INT(thx_append(a, &in, NULL, NULL, &err), TH_ECORRUPT);
		CHECK(access(p2, F_OK) != 0);
		thx_store_close(s);
	}
	rmrf(dir);
}

/* Segments sealed while a store is open are indexed by its background
 * thread. */
TEST(background_thread_indexes_sealed_segments)
{
	char *dir = tmpdir();
	thx_store_opts o = { .segment_bytes = 4096, .retention_ms = 20 };
	thx_store *s;
	th_err err = { 0 };
	REQUIRE(thx_store_open(dir, &o, &s, &err) == 0);
	thx_chain *a = chain(s, "a", THX_BATCH, 0);
	chain(s, "b", THX_BATCH, 0);
	add_n(a, 100);
	REQUIRE(thx_store_sync(s, &err) == 0);
	thx_stats st = { 0 };
	for (int i = 0; i < 3000 && st.index_built < 2; i++) { /* up to 30 s */
		usleep(10000);
		thx_store_stats(s, &st);
	}
	CHECK(st.index_built >= 2);
	char p1[400];
	idx_path(dir, 1, p1, sizeof p1);
	CHECK(access(p1, F_OK) == 0);
	thx_store_close(s);
	s = open_store(dir, 4096);
	thx_store_stats(s, &st);
	CHECK(st.index_loaded >= 2);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

/* ---- deferred hashing of memory chains (hasher.c) ---- */

static thx_store *open_hashing(const char *dir, bool inline_hash, bool background)
{
	unsetenv("THEATER_CHAIN_HASH"); /* the option, not the environment */
	thx_store_opts o = { .hash_inline = inline_hash, .no_background = !background };
	thx_store *s = NULL;
	th_err err = { 0 };
	REQUIRE(thx_store_open(dir, &o, &s, &err) == 0);
	return s;
}

/* Event k of a deterministic stream: fixed timestamps, sizes from 0 to
 * 3 KiB (past the hashers' 1 KiB stack buffer), some descriptions. */
static void det_event(int chain_no, int k, char *data, size_t cap, char *desc,
		      thx_event_in *in, char *actor)
{
	snprintf(actor, 32, "actor-%d", chain_no);
	size_t len = (size_t)((k * 37 + chain_no * 11) % 97) * ((k % 9 == 0) ? 32 : 1);
	if (len > cap)
		len = cap;
	for (size_t i = 0; i < len; i++)
		data[i] = (char)('a' + (i + (size_t)k) % 26);
	snprintf(desc, 32, "d%d", k);
	*in = (thx_event_in){ .actor = actor, .type = k % 4 ? "message.received" : "wasm.call",
			      .data = data, .len = len, .description = k % 5 == 0 ? desc : NULL,
			      .timestamp_ns = 1700000000000000000ull + (uint64_t)k * 1000u };
}

static void same_chain(thx_chain *a, thx_chain *b)
{
	uint64_t n = thx_chain_count(a);
	CHECK_EQ_INT((int)n, (int)thx_chain_count(b));
	for (uint64_t i = 0; i < n; i++) {
		thx_event ea, eb;
		REQUIRE(thx_get(a, i, &ea, NULL) == 0);
		REQUIRE(thx_get(b, i, &eb, NULL) == 0);
		CHECK(memcmp(ea.hash, eb.hash, 32) == 0);
		CHECK(ea.has_parent == eb.has_parent);
		CHECK(memcmp(ea.parent, eb.parent, 32) == 0);
		thx_event_release(&ea);
		thx_event_release(&eb);
	}
	uint8_t ha[32], hb[32];
	CHECK(thx_chain_head(a, ha) == thx_chain_head(b, hb));
	CHECK(n == 0 || memcmp(ha, hb, 32) == 0);
	uint64_t nb = thx_block_count(a);
	CHECK_EQ_INT((int)nb, (int)thx_block_count(b));
	for (uint64_t k = 0; k < nb; k++) {
		thx_block ba, bb;
		REQUIRE(thx_block_get(a, k, &ba, NULL) == 0);
		REQUIRE(thx_block_get(b, k, &bb, NULL) == 0);
		CHECK(memcmp(ba.merkle_root, bb.merkle_root, 32) == 0);
		CHECK(memcmp(ba.hash, bb.hash, 32) == 0);
	}
}

/* Two stores in subdirectories of dir: *a hashing inline (in na), *b
 * deferring to its hasher (in nb). */
static void open_pair(const char *dir, const char *na, const char *nb,
		      thx_store **a, thx_store **b)
{
	char d[256];
	snprintf(d, sizeof d, "%s/%s", dir, na);
	*a = open_hashing(d, true, true);
	snprintf(d, sizeof d, "%s/%s", dir, nb);
	*b = open_hashing(d, false, true);
}

/* Every event of c has its hash (read under c->mu). */
static bool all_hashed(thx_chain *c)
{
	pthread_mutex_lock(&c->mu);
	bool all = c->hashed == c->n;
	pthread_mutex_unlock(&c->mu);
	return all;
}

/* The same nc chains ("<prefix>-<i>", block_events(i) events per block) in
 * an inline-hashing and a deferred-hashing store. */
static void chain_pairs(thx_store *si, thx_store *sd, const char *prefix, int nc,
			uint32_t (*block_events)(int), thx_chain **ci, thx_chain **cd)
{
	char name[32];
	for (int c = 0; c < nc; c++) {
		snprintf(name, sizeof name, "%s-%d", prefix, c);
		uint32_t b = block_events ? block_events(c) : 0;
		ci[c] = chain(si, name, THX_NONE, b);
		cd[c] = chain(sd, name, THX_NONE, b);
	}
}

/* thx_store_wait_hashed returns once the hasher has hashed everything
 * appended before the call. */
TEST(wait_hashed_returns_with_everything_hashed)
{
	char *dir = tmpdir();
	thx_store *s = open_hashing(dir, false, true);
	thx_chain *c[3];
	uint8_t d[200];
	c[0] = chain(s, "w0", THX_NONE, 0);
	c[1] = chain(s, "w1", THX_NONE, 0);
	c[2] = chain(s, "w2", THX_NONE, 0);
	for (int round = 0; round < 3; round++) {
		for (uint64_t i = 0; i < 20000; i++) {
			fill(d, sizeof d, i);
			thx_event_in in = { .actor = "w", .type = "t", .data = d,
					    .len = (size_t)(i % 200) };
			REQUIRE(thx_append(c[i % 3], &in, NULL, NULL, NULL) == 0);
		}
		thx_store_wait_hashed(s);
		for (int k = 0; k < 3; k++)
			CHECK(all_hashed(c[k]));
	}
	thx_store_wait_hashed(s); /* nothing to do: returns */
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

/* The hasher thread alone (no reader asks before the wait) hashes chains two
 * at a time: seven chains (an odd one hashed alone at the end of a round),
 * events of every size class up to 3 KiB so the two messages of a pair
 * differ in block count, compared event for event with inline hashing. */
TEST(hasher_pairs_hash_like_inline)
{
	char *dir = tmpdir();
	thx_store *si, *sd;
	open_pair(dir, "inline", "deferred", &si, &sd);
	enum { NC = 7, NE = 500 };
	thx_chain *ci[NC], *cd[NC];
	static char data[4096];
	char desc[32], actor[32];
	chain_pairs(si, sd, "pair", NC, NULL, ci, cd);
	for (int k = 0; k < NE; k++)
		for (int c = 0; c < NC; c++) {
			if (c == 3 && k >= NE / 2)
				continue; /* one chain ends early */
			thx_event_in in;
			det_event(c, k, data, sizeof data, desc, &in, actor);
			REQUIRE(thx_append(ci[c], &in, NULL, NULL, NULL) == 0);
			REQUIRE(thx_append(cd[c], &in, NULL, NULL, NULL) == 0);
		}
	thx_store_wait_hashed(sd);
	for (int c = 0; c < NC; c++) {
		CHECK(all_hashed(cd[c]));
		same_chain(ci[c], cd[c]);
	}
	thx_store_close(si);
	thx_store_close(sd);
	rmrf(dir);
}

/* A store whose hasher has started and is idle (so fork copies no claim),
 * with chain name holding one event; then fork. */
static pid_t fork_after_hasher(const char *dir, const char *name, thx_store **s,
			       thx_chain **c, const thx_event_in *in)
{
	*s = open_hashing(dir, false, true);
	*c = chain(*s, name, THX_NONE, 0);
	REQUIRE(thx_append(*c, in, NULL, NULL, NULL) == 0);
	thx_store_wait_hashed(*s);
	fflush(stdout);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	return pid;
}

static void child_exited_0(pid_t pid)
{
	int st = 0;
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WEXITSTATUS(st), 0);
}

/* Backpressure: appends to a memory chain never leave it more than
 * THX__HASH_LAG events ahead of its hashes. A child forked after the hasher
 * started has no hasher thread, so only the appends themselves can keep
 * the bound there (without it the lag would reach 3 x THX__HASH_LAG). */
TEST(appends_hash_when_the_hasher_lags)
{
	char *dir = tmpdir();
	thx_store *s;
	thx_chain *c;
	thx_event_in in = { .actor = "a", .type = "t", .data = "0123456789", .len = 10 };
	pid_t pid = fork_after_hasher(dir, "lag", &s, &c, &in);
	if (pid == 0) {
		uint64_t worst = 0;
		for (int k = 0; k < 3 * THX__HASH_LAG; k++) {
			if (thx_append(c, &in, NULL, NULL, NULL))
				_exit(2);
			pthread_mutex_lock(&c->mu);
			uint64_t lag = c->n - c->hashed;
			pthread_mutex_unlock(&c->mu);
			if (lag > worst)
				worst = lag;
		}
		/* the hashes the appends made are the right ones */
		_exit(worst > THX__HASH_LAG ? 1 : verify_ok(s, "lag") ? 0 : 3);
	}
	child_exited_0(pid);
	thx_store_close(s);
	rmrf(dir);
}

/* A child forked while the hasher held a claim on a chain has no hasher to
 * finish it: its readers hash the claim's events again instead of waiting
 * for ever (the claim is set by hand here, as fork would have copied it;
 * an alarm turns a hang into a failure). */
TEST(forked_child_hashes_a_claim_left_by_the_hasher)
{
	char *dir = tmpdir();
	thx_store *s;
	thx_chain *c;
	thx_event_in in = { .actor = "a", .type = "t", .data = "0123456789", .len = 10 };
	pid_t pid = fork_after_hasher(dir, "claim", &s, &c, &in);
	if (pid == 0) {
		alarm(20);
		for (int k = 0; k < 100; k++)
			if (thx_append(c, &in, NULL, NULL, NULL))
				_exit(2);
		pthread_mutex_lock(&c->mu);
		c->hashing = true; /* as if forked during a claim */
		pthread_mutex_unlock(&c->mu);
		uint8_t head[32];
		if (!thx_chain_head(c, head))
			_exit(3);
		_exit(verify_ok(s, "claim") ? 0 : 4);
	}
	child_exited_0(pid);
	thx_store_close(s);
	rmrf(dir);
}

/* The append fast path (chain.c append_mem_fast: a memory chain hashing
 * later, type and actor known by address, no description, room in the
 * page and chunk) stores what the general path stores: the same events
 * appended without the static flags to an inline-hashing store give the
 * same hashes, blocks, strings and data. Six types for a cache of four,
 * descriptions now and then, and sizes that start new chunks, so the
 * stream goes in and out of the fast path. */
TEST(static_string_appends_equal_general_ones)
{
	char *dir = tmpdir();
	thx_store *sg, *sf;
	open_pair(dir, "general", "fast", &sg, &sf);
	thx_chain *g = chain(sg, "c", THX_NONE, 50);
	thx_chain *f = chain(sf, "c", THX_NONE, 50);
	static const char *actors[2] = { "actor-a", "actor-b" };
	static const char *types[6] = { "message.received", "export.call",
					 "host.send", "export.result", "t5", "t6" };
	static uint8_t data[20000];
	enum { NE = 4000 };
	for (int k = 0; k < NE; k++) {
		size_t len = (size_t)(k * 37 % 300) * (k % 50 == 0 ? 60 : 1);
		fill(data, len, (uint64_t)k);
		thx_event_in in = {
			.actor = actors[k % 7 == 0], .type = types[k % (k < NE / 2 ? 4 : 6)],
			.data = data, .len = len,
			.description = k % 97 == 0 ? "now and then" : NULL,
			.timestamp_ns = 1700000000000000000ull + (uint64_t)k,
			.type_static = true, .actor_static = true,
		};
		if (k % 5 == 0) {
			REQUIRE(thx_append_batch(f, &in, 1, NULL, NULL, NULL) == 0);
		} else {
			REQUIRE(thx_append(f, &in, NULL, NULL, NULL) == 0);
		}
		in.type_static = in.actor_static = false;
		REQUIRE(thx_append(g, &in, NULL, NULL, NULL) == 0);
	}
	same_chain(g, f);
	for (uint64_t i = 0; i < NE; i++) {
		thx_event eg, ef;
		REQUIRE(thx_get(g, i, &eg, NULL) == 0);
		REQUIRE(thx_get(f, i, &ef, NULL) == 0);
		CHECK_EQ_STR(ef.actor, eg.actor);
		CHECK_EQ_STR(ef.type, eg.type);
		CHECK(ef.timestamp_ns == eg.timestamp_ns);
		CHECK((ef.description == NULL) == (eg.description == NULL));
		CHECK(ef.len == eg.len && (ef.len == 0 || memcmp(ef.data, eg.data, ef.len) == 0));
		thx_event_release(&eg);
		thx_event_release(&ef);
	}
	CHECK(verify_ok(sf, "c"));
	thx_store_close(sg);
	thx_store_close(sf);
	rmrf(dir);
}

static uint32_t varied_blocks(int c)
{
	return (uint32_t)(c % 7 + 1) * 5;
}

TEST(deferred_hashes_links_and_blocks_equal_inline_ones)
{
	char *dir = tmpdir();
	thx_store *si, *sd;
	open_pair(dir, "inline", "deferred", &si, &sd);
	enum { NC = 40, NE = 300 };
	thx_chain *ci[NC], *cd[NC];
	static char data[4096];
	char desc[32], actor[32];
	chain_pairs(si, sd, "chain", NC, varied_blocks, ci, cd);
	for (int k = 0; k < NE; k++) {
		for (int c = 0; c < NC; c++) {
			thx_event_in in;
			det_event(c, k, data, sizeof data, desc, &in, actor);
			REQUIRE(thx_append(ci[c], &in, NULL, NULL, NULL) == 0);
			if (k % 3 == 0) { /* a batch of 3 */
				thx_event_in b3[3];
				char d3[3][4096];
				char dd[3][32], aa[3][32];
				for (int j = 0; j < 3; j++)
					det_event(c, k * 7 + j, d3[j], sizeof d3[j], dd[j], &b3[j], aa[j]);
				REQUIRE(thx_append(cd[c], &in, NULL, NULL, NULL) == 0);
				REQUIRE(thx_append_batch(cd[c], b3, 3, NULL, NULL, NULL) == 0);
				REQUIRE(thx_append_batch(ci[c], b3, 3, NULL, NULL, NULL) == 0);
			} else {
				REQUIRE(thx_append(cd[c], &in, NULL, NULL, NULL) == 0);
			}
			if ((k + c) % 50 == 0) { /* reads racing the hasher */
				uint8_t h1[32], h2[32];
				CHECK(thx_chain_head(ci[c], h1) && thx_chain_head(cd[c], h2));
				CHECK(memcmp(h1, h2, 32) == 0);
				thx_event e1, e2;
				uint64_t q = (uint64_t)k / 2;
				REQUIRE(thx_get(ci[c], q, &e1, NULL) == 0);
				REQUIRE(thx_get(cd[c], q, &e2, NULL) == 0);
				CHECK(memcmp(e1.hash, e2.hash, 32) == 0);
				thx_event_release(&e1);
				thx_event_release(&e2);
			}
		}
	}
	/* an append asking for its hash gets the inline one */
	thx_event_in in;
	det_event(0, NE, data, sizeof data, desc, &in, actor);
	uint8_t h1[32], h2[32];
	REQUIRE(thx_append(ci[0], &in, NULL, h1, NULL) == 0);
	REQUIRE(thx_append(cd[0], &in, NULL, h2, NULL) == 0);
	CHECK(memcmp(h1, h2, 32) == 0);
	for (int c = 0; c < NC; c++) {
		if (c % 4 == 0) { /* proofs */
			REQUIRE(thx_seal_block(ci[c], NULL) == 0);
			REQUIRE(thx_seal_block(cd[c], NULL) == 0);
			thx_proof pa, pb;
			REQUIRE(thx_prove(ci[c], 17, &pa, NULL) == 0);
			REQUIRE(thx_prove(cd[c], 17, &pb, NULL) == 0);
			CHECK(memcmp(pa.event_hash, pb.event_hash, 32) == 0);
			CHECK(memcmp(pa.block.hash, pb.block.hash, 32) == 0);
			CHECK(thx_proof_check(&pb, pa.block.hash, NULL) == 0);
		}
		same_chain(ci[c], cd[c]);
	}
	CHECK(verify_ok(sd, NULL));
	CHECK(verify_ok(si, NULL));
	thx_store_close(si);
	thx_store_close(sd);
	rmrf(dir);
}

/* Each event's stored hash is the hash of its fields with the previous
 * event's hash as parent. */
static void check_links(thx_chain *c)
{
	uint64_t n = thx_chain_count(c);
	uint8_t prev[32];
	for (uint64_t i = 0; i < n; i++) {
		thx_event e;
		REQUIRE(thx_get(c, i, &e, NULL) == 0);
		if (e.pruned) {
			memcpy(prev, e.hash, 32);
			thx_event_release(&e);
			continue;
		}
		uint8_t h[32];
		REQUIRE(thx_event_hash(i ? prev : NULL, e.actor, i, e.timestamp_ns, e.type, e.data,
				       e.len, e.description, h, NULL) == 0);
		CHECK(memcmp(h, e.hash, 32) == 0);
		CHECK(e.has_parent == (i > 0));
		CHECK(i == 0 || memcmp(e.parent, prev, 32) == 0);
		memcpy(prev, e.hash, 32);
		thx_event_release(&e);
	}
}

struct dh_app {
	thx_chain **cs;
	int ncs, id, n;
	_Atomic int *stop;
	int pause_us; /* readers: at most this long between reads */
};

static void *dh_appender(void *arg)
{
	struct dh_app *a = arg;
	char data[2000], actor[32];
	snprintf(actor, sizeof actor, "app-%d", a->id);
	for (int k = 0; k < a->n; k++) {
		memset(data, 'a' + k % 26, sizeof data);
		thx_event_in in[4];
		for (int j = 0; j < 4; j++)
			in[j] = (thx_event_in){ .actor = actor, .type = "message.received",
						.data = data,
						.len = (size_t)(k + j) * 7 % sizeof data };
		thx_chain *c = a->cs[(k + a->id) % a->ncs];
		if (k % 2)
			REQUIRE(thx_append_batch(c, in, 4, NULL, NULL, NULL) == 0);
		else
			REQUIRE(thx_append(c, &in[0], NULL, NULL, NULL) == 0);
	}
	return NULL;
}

static void *dh_reader(void *arg)
{
	struct dh_app *a = arg;
	unsigned r = (unsigned)a->id;
	while (!atomic_load(a->stop)) {
		r = r * 1103515245u + 12345u;
		thx_chain *c = a->cs[(r >> 8) % (unsigned)a->ncs];
		uint64_t n = thx_chain_count(c);
		if (!n)
			continue;
		uint64_t seq = r % 2 ? n - 1 : (r >> 4) % n; /* often the newest */
		thx_event e, p;
		REQUIRE(thx_get(c, seq, &e, NULL) == 0);
		if (seq > 0 && !e.pruned) {
			REQUIRE(thx_get(c, seq - 1, &p, NULL) == 0);
			CHECK(memcmp(p.hash, e.parent, 32) == 0);
			uint8_t h[32];
			REQUIRE(thx_event_hash(e.parent, e.actor, seq, e.timestamp_ns, e.type,
					       e.data, e.len, e.description, h, NULL) == 0);
			CHECK(memcmp(h, e.hash, 32) == 0);
			thx_event_release(&p);
		}
		thx_event_release(&e);
		uint8_t hh[32];
		CHECK(thx_chain_head(c, hh));
		if (r % 16 == 0)
			thx_block_count(c);
		usleep(r % (unsigned)a->pause_us); /* leave most hashing to the hasher */
	}
	return NULL;
}

TEST(deferred_hashing_with_concurrent_appenders_readers_and_pruning)
{
	char *dir = tmpdir();
	thx_store *s = open_hashing(dir, false, true);
	enum { NC = 12 };
	thx_chain *cs[NC];
	char name[32];
	for (int i = 0; i < NC; i++) {
		snprintf(name, sizeof name, "c-%d", i);
		thx_chain_opts o = { .durability = THX_NONE, .block_events = 16,
				     .retention = { .max_events = i % 3 == 0 ? 500 : 0 } };
		REQUIRE(thx_chain_open(s, name, &o, true, &cs[i], NULL) == 0);
	}
	_Atomic int stop = 0;
	struct dh_app ap[3], rd[2];
	pthread_t at[3], rt[2];
	for (int i = 0; i < 3; i++) {
		ap[i] = (struct dh_app){ cs, NC, i, 3000, &stop, 1 };
		REQUIRE(pthread_create(&at[i], NULL, dh_appender, &ap[i]) == 0);
	}
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct dh_app){ cs, NC, 100 + i, 0, &stop, 64 };
		REQUIRE(pthread_create(&rt[i], NULL, dh_reader, &rd[i]) == 0);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(at[i], NULL);
	/* pruning races the hasher too */
	REQUIRE(thx_prune(s, NULL, NULL) == 0);
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(rt[i], NULL);
	uint64_t total = 0;
	for (int i = 0; i < NC; i++) {
		check_links(cs[i]);
		total += thx_chain_count(cs[i]);
	}
	CHECK_EQ_INT((int)total, 3 * (1500 * 1 + 1500 * 4));
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

/* Large events (64 KiB) keep the hasher inside a claim for long; readers
 * of random and newest events meet it there or hash ahead of it. */
TEST(large_events_hashed_by_the_hasher_and_readers_together)
{
	char *dir = tmpdir();
	thx_store *s = open_hashing(dir, false, false);
	thx_chain *cs[2] = { chain(s, "big-0", THX_NONE, 8), chain(s, "big-1", THX_NONE, 8) };
	static char data[64 << 10];
	memset(data, 'q', sizeof data);
	_Atomic int stop = 0;
	struct dh_app rd[2];
	pthread_t rt[2];
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct dh_app){ cs, 2, 200 + i, 0, &stop, 600 };
		REQUIRE(pthread_create(&rt[i], NULL, dh_reader, &rd[i]) == 0);
	}
	thx_event_in in[8];
	for (int j = 0; j < 8; j++)
		in[j] = (thx_event_in){ .actor = "big", .type = "t", .data = data,
					.len = sizeof data - (size_t)j };
	for (int k = 0; k < 60; k++)
		REQUIRE(thx_append_batch(cs[k % 2], in, 8, NULL, NULL, NULL) == 0);
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(rt[i], NULL);
	check_links(cs[0]);
	check_links(cs[1]);
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

struct get_arg {
	thx_chain *c;
	uint64_t seq;
	_Atomic int done;
	uint8_t hash[32];
};

static void *get_thread(void *arg)
{
	struct get_arg *g = arg;
	thx_event e;
	REQUIRE(thx_get(g->c, g->seq, &e, NULL) == 0);
	memcpy(g->hash, e.hash, 32);
	thx_event_release(&e);
	atomic_store(&g->done, 1);
	return NULL;
}

/* White-box: while the hasher holds a claim (hashing set, c->mu
 * released), a reader needing a hash waits for it instead of hashing the
 * same entries at the same time. */
TEST(reader_waits_while_the_hasher_holds_a_claim)
{
	char *dir = tmpdir();
	thx_store *s = open_hashing(dir, false, false);
	pthread_mutex_lock(&s->hq_mu);
	s->hq_stop = true; /* no hasher thread: the test plays its part */
	s->hq_pid = getpid(); /* a hasher of this process */
	pthread_mutex_unlock(&s->hq_mu);
	thx_chain *c = chain(s, "claim", THX_NONE, 0);
	add_n(c, 10);
	pthread_mutex_lock(&c->mu);
	CHECK_EQ_INT((int)c->hashed, 0);
	c->hashing = true; /* claim [0, 10) */
	pthread_mutex_unlock(&c->mu);
	struct get_arg g = { .c = c, .seq = 9 };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, get_thread, &g) == 0);
	usleep(50000);
	CHECK_EQ_INT(atomic_load(&g.done), 0); /* still waiting */
	pthread_mutex_lock(&c->mu);
	CHECK_EQ_INT((int)c->hwaiters, 1);
	CHECK_EQ_INT((int)c->hashed, 0); /* and hashed nothing meanwhile */
	c->hashing = false; /* the claim ends with nothing done: it hashes */
	pthread_cond_broadcast(&c->hcv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(t, NULL);
	CHECK_EQ_INT(atomic_load(&g.done), 1);
	uint8_t head[32];
	CHECK(thx_chain_head(c, head));
	CHECK(memcmp(head, g.hash, 32) == 0);
	check_links(c);
	thx_store_close(s);
	rmrf(dir);
}

TEST(hasher_thread_hashes_without_readers)
{
	char *dir = tmpdir();
	thx_store *s = open_hashing(dir, false, false);
	thx_chain *c = chain(s, "bg", THX_NONE, 0);
	thx_event_in in = { .actor = "a", .type = "t", .data = "xyz", .len = 3 };
	for (int k = 0; k < 1000; k++)
		REQUIRE(thx_append(c, &in, NULL, NULL, NULL) == 0);
	/* no reader asks: the hasher thread alone gets there (liveness only:
	 * the bound is far beyond any machine's need) */
	uint64_t hashed = 0;
	for (int i = 0; i < 30000 && hashed < 1000; i++) {
		pthread_mutex_lock(&c->mu);
		hashed = c->hashed;
		pthread_mutex_unlock(&c->mu);
		if (hashed < 1000)
			usleep(1000);
	}
	CHECK_EQ_INT((int)hashed, 1000);
	check_links(c);
	thx_store_close(s);
	rmrf(dir);
}

TEST(store_closed_while_the_hasher_is_busy)
{
	char *dir = tmpdir();
	for (int round = 0; round < 5; round++) {
		thx_store *s = open_hashing(dir, false, round % 2 == 0);
		char name[32], data[100] = { 0 };
		thx_event_in in[64];
		for (int j = 0; j < 64; j++)
			in[j] = (thx_event_in){ .actor = "a", .type = "t", .data = data,
						.len = sizeof data };
		for (int i = 0; i < 50; i++) {
			snprintf(name, sizeof name, "m-%d-%d", round, i);
			thx_chain *c = chain(s, name, THX_NONE, 0);
			for (int k = 0; k < 20; k++)
				REQUIRE(thx_append_batch(c, in, 64, NULL, NULL, NULL) == 0);
		}
		thx_store_close(s); /* joins the hasher mid-work: no leak, no crash */
	}
	rmrf(dir);
}

TEST(deferred_hashing_survives_allocation_failures)
{
	char *dir = tmpdir();
	thx_store *s = open_hashing(dir, false, false);
	/* no hasher thread (white-box): every hash is left to the readers */
	pthread_mutex_lock(&s->hq_mu);
	s->hq_stop = true;
	pthread_mutex_unlock(&s->hq_mu);
	thx_chain *c = chain(s, "oom", THX_NONE, 4);
	static char big[8192];
	thx_event_in in = { .actor = "a", .type = "t", .data = big, .len = sizeof big };
	for (int k = 0; k < 10; k++)
		REQUIRE(thx_append(c, &in, NULL, NULL, NULL) == 0);
	/* a reader that must hash (an 8 KiB event needs a buffer) and cannot
	 * allocate fails cleanly; then succeeds */
	thx_event e;
	uint8_t h[32];
	th_alloc_fail_after(0);
	CHECK_EQ_INT(thx_get(c, 9, &e, NULL), TH_ENOMEM);
	CHECK(!thx_chain_head(c, h));
	CHECK_EQ_INT(thx_seal_block(c, NULL), TH_ENOMEM);
	th_alloc_fail_after(-1);
	REQUIRE(thx_get(c, 5, &e, NULL) == 0);
	thx_event_release(&e);
	th_alloc_fail_after(0);
	CHECK_EQ_INT(thx_get(c, 9, &e, NULL), TH_ENOMEM);
	th_alloc_fail_after(-1);
	check_links(c);
	CHECK(thx_chain_head(c, h));
	CHECK(verify_ok(s, NULL));
	thx_store_close(s);
	rmrf(dir);
}

TEST_MAIN()
