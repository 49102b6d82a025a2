/*
 * test_component.c - components made by real tooling: the C SDK's counter
 * actor (clang + wasm-ld + wasi-libc, packaged by `jco new`) and jco dummy
 * components of WIT worlds. The artifacts are built by the recipe in this
 * test (sdk/c/build.sh, sdk/c/dummy.sh); a missing tool fails the test, it
 * never skips. Then: decoding, world checks, malformed input, and running
 * the counter through thc_* with host imports answered.
 */
#include <sys/stat.h>

#include "test.h"

#include "component/comp.h"

#define OUT "build/test-component"

static void sh(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr, "FAILED (exit %d): %s\n", rc, cmd);
		exit(1);
	}
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	REQUIRE(b && fread(b, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* Build once per run (the first test to need them builds, under a lock
 * directory so forked tests and parallel runs do not race). */
static void artifacts(void)
{
	struct stat st;
	if (stat(OUT "/done", &st) == 0)
		return;
	sh("mkdir -p " OUT);
	sh("sh sdk/c/build.sh examples/counter/counter.c " OUT " >/dev/null");
	sh("sh sdk/c/dummy.sh wit/theater-simple.wit actor-world " OUT "/full.wasm");
	sh("sh sdk/c/dummy.sh tests/component/wrong-init.wit wrong " OUT "/wrong.wasm");
	sh("sh sdk/c/dummy.sh tests/component/resource.wit with-resource " OUT "/resource.wasm");
	sh("touch " OUT "/done");
}

__attribute__((constructor)) static void build_first(void)
{
	sh("rm -f " OUT "/done");
	artifacts();
}

TEST(decode_counter_component)
{
	size_t n;
	uint8_t *b = slurp(OUT "/counter.component.wasm", &n);
	thcd_component c;
	th_err err = { 0 };
	int rc = thcd_decode(b, n, &c, &err);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	REQUIRE(rc == 0);
	CHECK(c.root->modules.n >= 1);
	CHECK(c.root->imports.n >= 1);
	CHECK_EQ_STR(c.root->imports.v[0].name, "theater:simple/runtime");
	thcd_lifted *ex;
	uint32_t nex;
	REQUIRE(thcd_exports(&c, &ex, &nex, &err) == 0);
	CHECK_EQ_INT(nex, 6);
	bool init = false;
	for (uint32_t i = 0; i < nex; i++) {
		if (strcmp(ex[i].iface, "theater:simple/actor") == 0 && strcmp(ex[i].name, "init") == 0) {
			init = true;
			CHECK(ex[i].lift->opts.has_memory && ex[i].lift->opts.has_realloc &&
			      ex[i].lift->opts.has_post);
			char buf[256];
			thc_functype_str(ex[i].lift->type, buf, sizeof buf);
			CHECK_EQ_STR(buf, "func(state: option<list<u8>>, params: tuple<string>) -> "
					  "result<tuple<option<list<u8>>>, string>");
		}
	}
	CHECK(init);
	free(ex);
	thcd_release(&c);
	free(b);
}

TEST(decode_full_world_dummy)
{
	size_t n;
	uint8_t *b = slurp(OUT "/full.wasm", &n);
	thcd_component c;
	th_err err = { 0 };
	REQUIRE(thcd_decode(b, n, &c, &err) == 0);
	thcd_lifted *ex;
	uint32_t nex;
	REQUIRE(thcd_exports(&c, &ex, &nex, &err) == 0);
	CHECK_EQ_INT(nex, 10); /* actor 1 + message-server-client 5 + supervisor-handlers 3 + health 1 */
	uint32_t nfuncs = 0;
	for (uint32_t i = 0; i < c.root->imports.n; i++) {
		const thcd_insttype *it = c.root->insts.v[c.root->imports.v[i].idx].type;
		for (uint32_t k = 0; k < it->n; k++)
			nfuncs += it->funcs[k] != NULL;
	}
	CHECK_EQ_INT(nfuncs, 49); /* runtime.message-id included */
	free(ex);
	thcd_release(&c);
	free(b);
}

/* The world check of thc_component_load, on the decoded binary (it runs
 * before the core modules are compiled). */
static int check(const char *path, thc_component **out, th_err *err)
{
	size_t n;
	thc_component *c = calloc(1, sizeof(*c));
	REQUIRE(c);
	c->bytes = slurp(path, &n);
	c->len = n;
	th_err werr = { 0 };
	const thcw_world *w = thcw_theater(&werr);
	REQUIRE(w);
	*out = c;
	return thcl_check_component(c, w, err);
}

static void check_free(thc_component *c)
{
	th_free(c->imports);
	th_free(c->exports);
	thcd_release(&c->dec);
	thct_arena_release(&c->arena);
	free(c->bytes);
	free(c);
}

TEST(world_check_accepts_counter)
{
	thc_component *c;
	th_err err = { 0 };
	int rc = check(OUT "/counter.component.wasm", &c, &err);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	CHECK(rc == 0);
	CHECK_EQ_INT(c->nimports, 1);
	CHECK_EQ_STR(c->imports[0].iface, "theater:simple/runtime");
	CHECK_EQ_STR(c->imports[0].name, "log");
	CHECK_EQ_INT(c->nexports, 6);
	check_free(c);
	rc = check(OUT "/full.wasm", &c, &err);
	CHECK(rc == 0);
	CHECK_EQ_INT(c->nimports, 49);
	CHECK_EQ_INT(c->nexports, 10);
	check_free(c);
}

TEST(world_mismatch_names_function_and_types)
{
	thc_component *c;
	th_err err = { 0 };
	CHECK(check(OUT "/wrong.wasm", &c, &err) == TH_EINVAL);
	CHECK_EQ_STR(err.msg,
		     "world mismatch: export theater:simple/actor#init: expected func(state: "
		     "option<list<u8>>, params: tuple<string>) -> result<tuple<option<list<u8>>>, "
		     "string>, found func(state: option<list<u8>>, params: tuple<u32>) -> "
		     "result<tuple<option<list<u8>>>, string>");
	check_free(c);
}

static void expect_bad(const uint8_t *b, size_t n, const char *want)
{
	thcd_component c;
	th_err err = { 0 };
	int rc = thcd_decode(b, n, &c, &err);
	thcd_release(&c);
	CHECK(rc != 0);
	if (!strstr(err.msg, want)) {
		fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, want);
		CHECK(0);
	}
}

TEST(malformed_components_name_section_and_offset)
{
	static const uint8_t bad_magic[] = { 0, 'a', 's', 'x', 0x0d, 0, 1, 0 };
	expect_bad(bad_magic, sizeof bad_magic, "preamble section at offset 0x0: not a WebAssembly binary");
	static const uint8_t core[] = { 0, 'a', 's', 'm', 1, 0, 0, 0 };
	expect_bad(core, sizeof core, "not a component");
	static const uint8_t past_end[] = { 0, 'a', 's', 'm', 0x0d, 0, 1, 0, 7, 0x20, 1 };
	expect_bad(past_end, sizeof past_end, "section header section at offset 0xa: section of 32 bytes runs past the end");
	/* type section: one type with opcode 0x55 (undefined) */
	static const uint8_t bad_type[] = { 0, 'a', 's', 'm', 0x0d, 0, 1, 0, 7, 2, 1, 0x55 };
	expect_bad(bad_type, sizeof bad_type, "type section at offset 0xc: malformed type opcode 0x55");
	/* type section: list of unknown type index 9 */
	static const uint8_t bad_idx[] = { 0, 'a', 's', 'm', 0x0d, 0, 1, 0, 7, 3, 1, 0x70, 9 };
	expect_bad(bad_idx, sizeof bad_idx, "type section at offset 0xd: unknown type 9");
	/* alias section: core export alias of unknown core instance */
	static const uint8_t bad_alias[] = { 0, 'a', 's', 'm', 0x0d, 0, 1, 0, 6, 6, 1, 0, 0, 1, 3, 0 };
	expect_bad(bad_alias, sizeof bad_alias, "alias section at offset");
	/* canon resource.new: unsupported, clearly */
	static const uint8_t res[] = { 0, 'a', 's', 'm', 0x0d, 0, 1, 0, 8, 3, 1, 0x02, 0 };
	expect_bad(res, sizeof res, "unsupported: canon resource.new");
	/* start section */
	static const uint8_t start[] = { 0, 'a', 's', 'm', 0x0d, 0, 1, 0, 9, 1, 0 };
	expect_bad(start, sizeof start, "start section at offset 0xa: unsupported: start function");
	/* a count larger than the section */
	static const uint8_t cnt[] = { 0, 'a', 's', 'm', 0x0d, 0, 1, 0, 7, 2, 0x7f, 0 };
	expect_bad(cnt, sizeof cnt, "count 127 exceeds the remaining bytes");
	/* name with invalid UTF-8 in an import */
	static const uint8_t name[] = { 0, 'a', 's', 'm', 0x0d, 0, 1, 0, 10, 5, 1, 0, 2, 0xC0, 0xAF };
	expect_bad(name, sizeof name, "import section at offset 0xd: malformed UTF-8 encoding");
}

/* Every truncation and many single-byte corruptions of a real component:
 * the decoder must fail cleanly or succeed, never crash (run under ASan). */
TEST(hostile_mutations_do_not_crash)
{
	size_t n;
	uint8_t *b = slurp(OUT "/counter.component.wasm", &n);
	uint8_t *m = malloc(n);
	int ok = 0, bad = 0;
	for (size_t cut = 0; cut < n; cut += 7) {
		thcd_component c;
		th_err err = { 0 };
		if (thcd_decode(b, cut, &c, &err) == 0)
			ok++;
		else
			bad++;
		thcd_release(&c);
	}
	for (size_t i = 8; i < n; i += 3) {
		memcpy(m, b, n);
		m[i] ^= (uint8_t)(0x5a + i);
		thcd_component c;
		th_err err = { 0 };
		if (thcd_decode(m, n, &c, &err) == 0) {
			thcd_lifted *ex;
			uint32_t nex;
			if (thcd_exports(&c, &ex, &nex, &err) == 0)
				free(ex);
			ok++;
		} else {
			bad++;
		}
		thcd_release(&c);
	}
	CHECK(bad > 0);
	free(m);
	free(b);
}

/* Out of memory at every allocation of decoding and checking a real
 * component: an error, never a crash or a leak (ASan's leak check). */
TEST(allocation_failure_at_every_step)
{
	int fails = 0;
	th_err e0 = { 0 };
	REQUIRE(thcw_theater(&e0)); /* parsed once, before failures start */
	for (long k = 0;; k++) {
		thc_component *c;
		th_err err = { 0 };
		th_alloc_fail_after(k);
		int rc = check(OUT "/counter.component.wasm", &c, &err);
		th_alloc_fail_after(-1);
		check_free(c);
		if (rc == 0)
			break;
		CHECK_EQ_INT(rc, TH_ENOMEM);
		fails++;
		REQUIRE(k < 100000);
	}
	CHECK(fails > 10);
}

/* Resources are outside the subset: a clear TH_EUNSUPPORTED, with the
 * section and offset. */
TEST(resources_rejected_as_unsupported)
{
	size_t n;
	uint8_t *b = slurp(OUT "/resource.wasm", &n);
	thcd_component c;
	th_err err = { 0 };
	CHECK(thcd_decode(b, n, &c, &err) == TH_EUNSUPPORTED);
	CHECK(strstr(err.msg, "section at offset 0x") != NULL);
	CHECK(strstr(err.msg, "unsupported: resource") != NULL);
	thcd_release(&c);
	free(b);
}

TEST_MAIN()
