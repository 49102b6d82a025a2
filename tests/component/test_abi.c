/*
 * test_abi.c - Canonical ABI layout, lifting and lowering, on a plain byte
 * array standing in for guest memory (a bump allocator as cabi_realloc).
 */
#include "test.h"

#include "component/abi.h"

static uint8_t mem[1 << 16];
static uint32_t bump = 16;
static int realloc_calls;

static uint8_t *mptr(void *ctx, uint64_t off, size_t len)
{
	(void)ctx;
	return off + len <= sizeof mem ? mem + off : NULL;
}

static int mrealloc(void *ctx, uint32_t old, uint32_t old_size, uint32_t align,
		    uint32_t new_size, uint32_t *out, th_err *err)
{
	(void)ctx;
	(void)old;
	(void)old_size;
	(void)err;
	realloc_calls++;
	bump = (bump + align - 1) & ~(align - 1);
	*out = bump;
	bump += new_size;
	return 0;
}

static thca_mem M(void)
{
	return (thca_mem){ .ptr = mptr, .realloc = mrealloc, .budget = THCA_DEFAULT_BUDGET };
}

static thct_arena A;

static thc_type *mk(thc_kind k, uint32_t n, bool named, ...)
{
	va_list ap;
	va_start(ap, named);
	thc_type *t = thct_new(&A, k, n, named);
	for (uint32_t i = 0; i < n; i++) {
		if (named)
			t->names[i] = va_arg(ap, const char *);
		t->types[i] = va_arg(ap, thc_type *);
	}
	va_end(ap);
	th_err err = { 0 };
	if (thct_finish(&A, t, &err)) {
		fprintf(stderr, "finish: %s\n", err.msg);
		exit(1);
	}
	return t;
}

#define P(k) thct_prim(THC_##k)

static thc_type *list_of(thc_type *e) { return mk(THC_LIST, 1, false, e); }
static thc_type *option_of(thc_type *e) { return mk(THC_OPTION, 2, false, (thc_type *)NULL, e); }
static thc_type *result_of(thc_type *ok, thc_type *er) { return mk(THC_RESULT, 2, false, ok, er); }

static thc_val str(const char *s)
{
	thc_val v;
	thc_val_string(s, strlen(s), &v);
	return v;
}

static thc_val some(thc_kind k, uint32_t d, thc_val p)
{
	thc_val v;
	thc_val_case(k, d, &p, &v);
	return v;
}

/* Store + load and lower_flat + lift_flat must both give v back. */
static void roundtrip(const thc_type *t, const thc_val *v)
{
	thca_mem m = M();
	th_err err = { 0 };
	uint32_t at = (bump + 7) & ~7u;
	bump = at + t->size;
	int rc = thca_store(&m, t, v, at, &err);
	if (rc)
		fprintf(stderr, "store: %s\n", err.msg);
	REQUIRE(rc == 0);
	thc_val out;
	rc = thca_load(&m, t, at, &out, &err);
	if (rc)
		fprintf(stderr, "load: %s\n", err.msg);
	REQUIRE(rc == 0);
	CHECK(thc_val_equal(v, &out));
	thc_val_release(&out);
	if (t->nflat <= THCT_FLAT_CAP) {
		thw_val flat[THCT_FLAT_CAP];
		uint32_t pos = 0;
		REQUIRE(thca_lower_flat(&m, t, v, flat, THCT_FLAT_CAP, &pos, &err) == 0);
		CHECK_EQ_INT(pos, t->nflat);
		for (uint32_t i = 0; i < pos; i++)
			CHECK_EQ_INT(flat[i].type, t->flat[i]);
		pos = 0;
		rc = thca_lift_flat(&m, t, flat, t->nflat, &pos, &out, &err);
		if (rc)
			fprintf(stderr, "lift: %s\n", err.msg);
		REQUIRE(rc == 0);
		CHECK(thc_val_equal(v, &out));
		thc_val_release(&out);
	}
}

TEST(layout_primitives)
{
	CHECK_EQ_INT(P(BOOL)->size, 1);
	CHECK_EQ_INT(P(U16)->align, 2);
	CHECK_EQ_INT(P(CHAR)->size, 4);
	CHECK_EQ_INT(P(F64)->align, 8);
	CHECK_EQ_INT(P(STRING)->size, 8);
	CHECK_EQ_INT(P(STRING)->align, 4);
	CHECK_EQ_INT(P(STRING)->nflat, 2);
	CHECK_EQ_INT(P(U64)->flat[0], THW_I64);
	CHECK_EQ_INT(P(F32)->flat[0], THW_F32);
}

TEST(layout_compound)
{
	/* record { a: u8, b: u32, c: u16 } = 1 +3 pad, 4, 2 +2 pad = 12 */
	thc_type *r = mk(THC_RECORD, 3, true, "a", P(U8), "b", P(U32), "c", P(U16));
	CHECK_EQ_INT(r->size, 12);
	CHECK_EQ_INT(r->align, 4);
	CHECK_EQ_INT(r->nflat, 3);
	/* option<list<u8>>: disc at 0, list at 4: 12 bytes, flat i32 i32 i32 */
	thc_type *o = option_of(list_of(P(U8)));
	CHECK_EQ_INT(o->size, 12);
	CHECK_EQ_INT(o->payload_off, 4);
	CHECK_EQ_INT(o->nflat, 3);
	/* result<u64, f32>: disc, payload at 8; flat i32 + join(i64, f32) = i64 */
	thc_type *res = result_of(P(U64), P(F32));
	CHECK_EQ_INT(res->size, 16);
	CHECK_EQ_INT(res->payload_off, 8);
	CHECK_EQ_INT(res->nflat, 2);
	CHECK_EQ_INT(res->flat[1], THW_I64);
	/* variant { a(f32), b(u32) }: join(f32, i32) = i32 */
	thc_type *v = mk(THC_VARIANT, 2, true, "a", P(F32), "b", P(U32));
	CHECK_EQ_INT(v->flat[1], THW_I32);
	/* enum of 300 cases has a 2-byte discriminant */
	thc_type *e = thct_new(&A, THC_ENUM, 300, true);
	for (int i = 0; i < 300; i++)
		e->names[i] = "x";
	REQUIRE(thct_finish(&A, e, NULL) == 0);
	CHECK_EQ_INT(e->size, 2);
	/* flags: 9 flags -> 2 bytes, 17 -> 4 */
	thc_type *f9 = thct_new(&A, THC_FLAGS, 9, true), *f33 = thct_new(&A, THC_FLAGS, 33, true);
	for (int i = 0; i < 9; i++)
		f9->names[i] = "f";
	REQUIRE(thct_finish(&A, f9, NULL) == 0);
	CHECK_EQ_INT(f9->size, 2);
	th_err err = { 0 };
	CHECK(thct_finish(&A, f33, &err) == TH_EINVAL);
	/* the theater:simple init result */
	thc_type *init = result_of(mk(THC_TUPLE, 1, false, option_of(list_of(P(U8)))), P(STRING));
	CHECK_EQ_INT(init->size, 16);
	CHECK_EQ_INT(init->nflat, 4);
}

TEST(roundtrip_scalars)
{
	thc_val v = thc_val_bool(true);
	roundtrip(P(BOOL), &v);
	v = thc_val_int(THC_S8, -128);
	roundtrip(P(S8), &v);
	v = thc_val_uint(THC_U8, 255);
	roundtrip(P(U8), &v);
	v = thc_val_int(THC_S16, -30000);
	roundtrip(P(S16), &v);
	v = thc_val_uint(THC_U16, 65535);
	roundtrip(P(U16), &v);
	v = thc_val_int(THC_S32, INT32_MIN);
	roundtrip(P(S32), &v);
	v = thc_val_uint(THC_U32, UINT32_MAX);
	roundtrip(P(U32), &v);
	v = thc_val_int(THC_S64, INT64_MIN);
	roundtrip(P(S64), &v);
	v = thc_val_uint(THC_U64, UINT64_MAX);
	roundtrip(P(U64), &v);
	v = (thc_val){ .kind = THC_F32 };
	v.of.f32 = -1.5f;
	roundtrip(P(F32), &v);
	v = (thc_val){ .kind = THC_F64 };
	v.of.f64 = 3.141592653589793;
	roundtrip(P(F64), &v);
	v = (thc_val){ .kind = THC_CHAR };
	v.of.ch = 0x1F600;
	roundtrip(P(CHAR), &v);
}

TEST(roundtrip_strings_lists)
{
	thc_val s = str("héllo wörld ✓");
	roundtrip(P(STRING), &s);
	thc_val e = str("");
	roundtrip(P(STRING), &e);
	thc_val b;
	thc_val_bytes((const uint8_t *)"\0\1\2\3\377", 5, &b);
	roundtrip(list_of(P(U8)), &b);
	thc_val l;
	thc_val_agg(THC_LIST, 3, &l);
	l.of.agg.items[0] = str("a");
	l.of.agg.items[1] = str("");
	l.of.agg.items[2] = str("ccc");
	roundtrip(list_of(P(STRING)), &l);
	thc_val lu;
	thc_val_agg(THC_LIST, 2, &lu);
	lu.of.agg.items[0] = thc_val_uint(THC_U64, 1);
	lu.of.agg.items[1] = thc_val_uint(THC_U64, 1ull << 40);
	roundtrip(list_of(P(U64)), &lu);
	thc_val_release(&s);
	thc_val_release(&e);
	thc_val_release(&b);
	thc_val_release(&l);
	thc_val_release(&lu);
}

TEST(roundtrip_records_variants)
{
	thc_type *rec = mk(THC_RECORD, 3, true, "a", P(U8), "b", P(STRING), "c", P(F64));
	thc_val r;
	thc_val_agg(THC_RECORD, 3, &r);
	r.of.agg.items[0] = thc_val_uint(THC_U8, 7);
	r.of.agg.items[1] = str("rec");
	r.of.agg.items[2] = (thc_val){ .kind = THC_F64 };
	r.of.agg.items[2].of.f64 = -2.25;
	roundtrip(rec, &r);
	thc_type *tup = mk(THC_TUPLE, 2, false, P(CHAR), P(S64));
	thc_val t;
	thc_val_agg(THC_TUPLE, 2, &t);
	t.of.agg.items[0] = (thc_val){ .kind = THC_CHAR };
	t.of.agg.items[0].of.ch = 'x';
	t.of.agg.items[1] = thc_val_int(THC_S64, -5);
	roundtrip(tup, &t);
	/* variant with differently-typed payloads exercises the flat join */
	thc_type *var = mk(THC_VARIANT, 4, true, "f", P(F32), "d", P(F64), "s", P(STRING),
			   "none", (thc_type *)NULL);
	thc_val pf = (thc_val){ .kind = THC_F32 };
	pf.of.f32 = 0.5f;
	thc_val v1 = some(THC_VARIANT, 0, pf);
	roundtrip(var, &v1);
	thc_val pd = (thc_val){ .kind = THC_F64 };
	pd.of.f64 = 1e300;
	thc_val v2 = some(THC_VARIANT, 1, pd);
	roundtrip(var, &v2);
	thc_val v3 = some(THC_VARIANT, 2, str("payload"));
	roundtrip(var, &v3);
	thc_val v4;
	thc_val_case(THC_VARIANT, 3, NULL, &v4);
	roundtrip(var, &v4);
	thc_type *en = mk(THC_ENUM, 3, true, "a", (thc_type *)NULL, "b", (thc_type *)NULL, "c", (thc_type *)NULL);
	thc_val ev;
	thc_val_case(THC_ENUM, 2, NULL, &ev);
	roundtrip(en, &ev);
	thc_type *opt = option_of(list_of(P(U8)));
	thc_val none, sm, bytes;
	thc_val_case(THC_OPTION, 0, NULL, &none);
	roundtrip(opt, &none);
	thc_val_bytes((const uint8_t *)"state", 5, &bytes);
	sm = some(THC_OPTION, 1, bytes);
	roundtrip(opt, &sm);
	thc_type *res = result_of(NULL, P(STRING));
	thc_val ok, er;
	thc_val_case(THC_RESULT, 0, NULL, &ok);
	roundtrip(res, &ok);
	er = some(THC_RESULT, 1, str("failed"));
	roundtrip(res, &er);
	thc_type *fl = thct_new(&A, THC_FLAGS, 20, true);
	for (int i = 0; i < 20; i++)
		fl->names[i] = "f";
	REQUIRE(thct_finish(&A, fl, NULL) == 0);
	thc_val fv = { .kind = THC_FLAGS };
	fv.of.flags = 0x80001;
	roundtrip(fl, &fv);
	thc_val_release(&r);
	thc_val_release(&t);
	thc_val_release(&v1);
	thc_val_release(&v3);
	thc_val_release(&sm);
	thc_val_release(&er);
}

/* The actor shapes (option<list<u8>>, tuple<list<u8>>, list<u8>) given as
 * bytes take a short path; given as lists of u8 the general one. Both
 * lower to the same flat values and lift back equal; a bad value still
 * fails the type check. */
TEST(bytes_params_short_path_matches_general)
{
	thc_type *pt[3] = { option_of(list_of(P(U8))),
			    mk(THC_TUPLE, 1, false, list_of(P(U8))), list_of(P(U8)) };
	thc_functype f = { .nparams = 3, .ptypes = pt };
	thct_flatsig sig;
	thct_flatsig_of(&f, false, &sig);
	REQUIRE(!sig.params_spilled && sig.nparams == 7);
	thc_type *tuple = thct_params_tuple(&A, &f);
	uint8_t st[3] = { 7, 8, 9 }, msg[2] = { 'h', 'i' };
	thc_val sb = { .kind = THC_BYTES, .of.bytes = { st, 3 } };
	thc_val mb = { .kind = THC_BYTES, .of.bytes = { msg, 2 } };
	thc_val su[3], mu[2];
	for (int i = 0; i < 3; i++)
		su[i] = thc_val_uint(THC_U8, st[i]);
	for (int i = 0; i < 2; i++)
		mu[i] = thc_val_uint(THC_U8, msg[i]);
	thc_val sl = { .kind = THC_LIST, .of.agg = { su, 3 } };
	thc_val ml = { .kind = THC_LIST, .of.agg = { mu, 2 } };
	for (int none = 0; none < 2; none++) {
		thw_val flat[2][7];
		for (int gen = 0; gen < 2; gen++) {
			thc_val tup = { .kind = THC_TUPLE, .of.agg = { gen ? &ml : &mb, 1 } };
			thc_val args[3] = { { .kind = THC_OPTION,
					      .of.var = { !none, none ? NULL : gen ? &sl : &sb } },
					    tup, gen ? ml : mb };
			thca_mem m = M();
			th_err err = { 0 };
			realloc_calls = 0;
			REQUIRE(thca_lower_params(&m, &f, &sig, tuple, args, 3, flat[gen], &err) == 0);
			CHECK_EQ_INT(realloc_calls, none ? 2 : 3);
			thc_val back[3];
			REQUIRE(thca_lift_params(&m, &f, &sig, tuple, flat[gen], back, &err) == 0);
			for (int i = 0; i < 3; i++) {
				CHECK(thc_val_equal(&args[i], &back[i]));
				thc_val_release(&back[i]);
			}
		}
		for (int j = 0; j < 7; j++) { /* pointers differ, the rest not */
			CHECK_EQ_INT(flat[0][j].type, THW_I32);
			CHECK_EQ_INT(flat[1][j].type, THW_I32);
		}
		CHECK_EQ_INT(flat[0][0].of.i32, !none);
		CHECK_EQ_INT(flat[1][0].of.i32, !none);
		CHECK_EQ_INT(flat[0][2].of.i32, none ? 0 : 3);
		CHECK_EQ_INT(flat[1][2].of.i32, none ? 0 : 3);
		CHECK_EQ_INT(flat[0][4].of.i32, 2);
		CHECK_EQ_INT(flat[1][4].of.i32, 2);
		CHECK_EQ_INT(flat[0][6].of.i32, 2);
		CHECK_EQ_INT(flat[1][6].of.i32, 2);
	}
	thc_val tup = { .kind = THC_TUPLE, .of.agg = { &mb, 1 } };
	thc_val bad[3] = { { .kind = THC_OPTION, .of.var = { 2, &sb } }, tup, mb };
	thca_mem m = M();
	th_err err = { 0 };
	thw_val flat[7];
	CHECK(thca_lower_params(&m, &f, &sig, tuple, bad, 3, flat, &err) != 0);
}

/* 17 u32 params spill into a tuple in memory; a string result spills into
 * a return area. Both directions (export call and import call). */
TEST(spilled_params_and_results)
{
	thc_functype f = { 0 };
	thc_type *pt[17];
	const char *pn[17];
	for (int i = 0; i < 17; i++) {
		pt[i] = P(U32);
		pn[i] = "p";
	}
	f.nparams = 17;
	f.ptypes = pt;
	f.pnames = pn;
	f.result = P(STRING);
	thct_flatsig lift, lower;
	thct_flatsig_of(&f, false, &lift);
	thct_flatsig_of(&f, true, &lower);
	CHECK(lift.params_spilled && lift.nparams == 1);
	CHECK(lift.results_spilled && lift.nresults == 1);
	CHECK(lower.params_spilled && lower.nparams == 2 && lower.nresults == 0);
	thc_type *tuple = thct_params_tuple(&A, &f);
	REQUIRE(tuple && tuple->size == 68);
	thc_val args[17];
	for (int i = 0; i < 17; i++)
		args[i] = thc_val_uint(THC_U32, 1000u + (unsigned)i);
	thca_mem m = M();
	th_err err = { 0 };
	thw_val flat[18];
	realloc_calls = 0;
	REQUIRE(thca_lower_params(&m, &f, &lift, tuple, args, 17, flat, &err) == 0);
	CHECK_EQ_INT(realloc_calls, 1);
	uint32_t p = flat[0].of.i32;
	uint32_t w;
	memcpy(&w, mem + p + 16 * 4, 4);
	CHECK_EQ_INT(w, 1016);
	/* The guest side lifts the same tuple back. */
	thc_val back[17];
	REQUIRE(thca_lift_params(&m, &f, &lift, tuple, flat, back, &err) == 0);
	for (int i = 0; i < 17; i++)
		CHECK(thc_val_equal(&args[i], &back[i]));
	/* Import: result lowered into the return area (last flat param). */
	thw_val iargs[2] = { flat[0], { .type = THW_I32 } };
	iargs[1].of.i32 = 1024;
	thc_val s = str("spilled");
	REQUIRE(thca_lower_result(&m, &f, &lower, &s, iargs, NULL, &err) == 0);
	thw_val r0 = { .type = THW_I32 };
	r0.of.i32 = 1024;
	thc_val out;
	REQUIRE(thca_lift_result(&m, &f, &lift, &r0, &out, &err) == 0);
	CHECK(thc_val_equal(&s, &out));
	thc_val_release(&s);
	thc_val_release(&out);
}

TEST(bad_utf8_rejected)
{
	thca_mem m = M();
	th_err err = { 0 };
	memcpy(mem + 100, "\xC0\xAF", 2); /* overlong '/' */
	thw_val flat[2] = { { .type = THW_I32 }, { .type = THW_I32 } };
	flat[0].of.i32 = 100;
	flat[1].of.i32 = 2;
	uint32_t pos = 0;
	thc_val v;
	CHECK(thca_lift_flat(&m, P(STRING), flat, 2, &pos, &v, &err) == TH_EINVAL);
	CHECK(strstr(err.msg, "UTF-8") != NULL);
	memcpy(mem + 100, "\xED\xA0\x80", 3); /* surrogate */
	flat[1].of.i32 = 3;
	pos = 0;
	CHECK(thca_lift_flat(&m, P(STRING), flat, 2, &pos, &v, &err) == TH_EINVAL);
	CHECK(thca_utf8_valid((const uint8_t *)"\xF0\x9F\x98\x80", 4));
	CHECK(!thca_utf8_valid((const uint8_t *)"\xF4\x90\x80\x80", 4));
}

/* Runs of ASCII are checked eight bytes at a time: a bad or good sequence
 * anywhere in or after a run, and a truncated one at the very end, are
 * still seen. */
TEST(utf8_checked_at_every_offset)
{
	uint8_t b[40];
	const char *seqs[] = { "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80" };
	const char *bad[] = { "\xC0\xAF", "\xED\xA0\x80", "\x80", "\xF8\x88\x80\x80\x80" };
	for (size_t off = 0; off < 24; off++) {
		for (size_t k = 0; k < 3; k++) {
			size_t n = strlen(seqs[k]);
			memset(b, 'a', sizeof b);
			memcpy(b + off, seqs[k], n);
			CHECK(thca_utf8_valid(b, sizeof b));
			CHECK(thca_utf8_valid(b, off + n));
			CHECK(!thca_utf8_valid(b, off + n - 1)); /* cut short */
		}
		for (size_t k = 0; k < 4; k++) {
			memset(b, 'a', sizeof b);
			memcpy(b + off, bad[k], strlen(bad[k]));
			CHECK(!thca_utf8_valid(b, sizeof b));
		}
	}
}

TEST(list_bounds_checked)
{
	thca_mem m = M();
	th_err err = { 0 };
	thw_val flat[2] = { { .type = THW_I32 }, { .type = THW_I32 } };
	flat[0].of.i32 = sizeof mem - 4;
	flat[1].of.i32 = 2; /* two u32 = 8 bytes past 4 remaining */
	uint32_t pos = 0;
	thc_val v;
	CHECK(thca_lift_flat(&m, list_of(P(U32)), flat, 2, &pos, &v, &err) == TH_EINVAL);
	CHECK(strstr(err.msg, "out of bounds") != NULL);
	flat[0].of.i32 = 0x10;
	flat[1].of.i32 = 0xFFFFFFFF; /* huge length */
	pos = 0;
	CHECK(thca_lift_flat(&m, list_of(P(U64)), flat, 2, &pos, &v, &err) != 0);
	flat[0].of.i32 = 2; /* misaligned for u32 */
	flat[1].of.i32 = 1;
	pos = 0;
	CHECK(thca_lift_flat(&m, list_of(P(U32)), flat, 2, &pos, &v, &err) == TH_EINVAL);
	CHECK(strstr(err.msg, "misaligned") != NULL);
}

TEST(char_and_discriminant_checked)
{
	thca_mem m = M();
	th_err err = { 0 };
	thw_val x = { .type = THW_I32 };
	x.of.i32 = 0xD800;
	uint32_t pos = 0;
	thc_val v;
	CHECK(thca_lift_flat(&m, P(CHAR), &x, 1, &pos, &v, &err) == TH_EINVAL);
	x.of.i32 = 0x110000;
	pos = 0;
	CHECK(thca_lift_flat(&m, P(CHAR), &x, 1, &pos, &v, &err) == TH_EINVAL);
	thc_type *opt = option_of(P(U32));
	thw_val f2[2] = { { .type = THW_I32 }, { .type = THW_I32 } };
	f2[0].of.i32 = 2;
	pos = 0;
	CHECK(thca_lift_flat(&m, opt, f2, 2, &pos, &v, &err) == TH_EINVAL);
	CHECK(strstr(err.msg, "discriminant") != NULL);
	mem[200] = 5; /* in memory too */
	CHECK(thca_load(&m, opt, 200, &v, &err) == TH_EINVAL);
	thc_type *fl = thct_new(&A, THC_FLAGS, 3, true);
	fl->names[0] = fl->names[1] = fl->names[2] = "f";
	REQUIRE(thct_finish(&A, fl, NULL) == 0);
	x.of.i32 = 8;
	pos = 0;
	CHECK(thca_lift_flat(&m, fl, &x, 1, &pos, &v, &err) == TH_EINVAL);
}

TEST(host_values_checked_before_lowering)
{
	thca_mem m = M();
	th_err err = { 0 };
	thc_val v = thc_val_uint(THC_U8, 256);
	thw_val flat[4];
	uint32_t pos = 0;
	CHECK(thca_lower_flat(&m, P(U8), &v, flat, 4, &pos, &err) == TH_EINVAL);
	v = thc_val_uint(THC_U32, 1);
	pos = 0;
	CHECK(thca_lower_flat(&m, P(STRING), &v, flat, 4, &pos, &err) == TH_EINVAL);
	thc_val bad;
	thc_val_string("\xFF", 1, &bad);
	pos = 0;
	CHECK(thca_lower_flat(&m, P(STRING), &bad, flat, 4, &pos, &err) == TH_EINVAL);
	thc_val_release(&bad);
	thc_val c;
	thc_val_case(THC_OPTION, 1, NULL, &c); /* some without payload */
	pos = 0;
	CHECK(thca_lower_flat(&m, option_of(P(U8)), &c, flat, 4, &pos, &err) == TH_EINVAL);
}

TEST(lift_budget_bounds_allocation)
{
	thca_mem m = M();
	m.budget = 10;
	th_err err = { 0 };
	thw_val flat[2] = { { .type = THW_I32 }, { .type = THW_I32 } };
	flat[0].of.i32 = 0;
	flat[1].of.i32 = 1000; /* 1000 u16 in bounds, but over budget */
	uint32_t pos = 0;
	thc_val v;
	CHECK(thca_lift_flat(&m, list_of(P(U16)), flat, 2, &pos, &v, &err) == TH_ELIMIT);
}

TEST(types_print_as_wit)
{
	char buf[256];
	thc_type_str(result_of(mk(THC_TUPLE, 1, false, option_of(list_of(P(U8)))), P(STRING)),
		     buf, sizeof buf);
	CHECK_EQ_STR(buf, "result<tuple<option<list<u8>>>, string>");
	thc_type_str(result_of(NULL, P(STRING)), buf, sizeof buf);
	CHECK_EQ_STR(buf, "result<_, string>");
	CHECK(thct_equal(option_of(P(U8)), option_of(P(U8))));
	CHECK(!thct_equal(option_of(P(U8)), option_of(P(S8))));
}

TEST_MAIN()
