/*
 * test_toml.c - white-box tests of the TOML parser: values, error messages
 * and positions, limits, allocation failure, lookups, JSON output.
 */
#include <math.h>

#include "base/base.h"
#include "test.h"
#include "theater/toml.h"

static tt_value *ok(const char *src)
{
	th_err err = { 0 };
	tt_value *root = NULL;
	int rc = tt_parse(src, strlen(src), NULL, &root, NULL, &err);
	if (rc)
		fprintf(stderr, "  unexpected error: %s\n", err.msg);
	REQUIRE(rc == 0 && root);
	return root;
}

/* Parse src expecting failure; returns the full message (static). */
static const char *bad(const char *src, int code)
{
	static th_err err;
	memset(&err, 0, sizeof(err));
	tt_value *root = (tt_value *)1;
	int rc = tt_parse(src, strlen(src), NULL, &root, NULL, &err);
	CHECK_EQ_INT(rc, code);
	CHECK(root == NULL);
	CHECK_EQ_INT(err.code, code);
	return err.msg;
}

TEST(scalars)
{
	tt_value *r = ok("i = -9_223_372_036_854_775_808\n"
			 "j = 9223372036854775807\n"
			 "h = 0xdead_BEEF\no = 0o755\nb = 0b1010\n"
			 "f = -1_0.5e+2\ng = inf\nn = -nan\nz = -0.0\n"
			 "t = true\nu = false\n");
	CHECK_EQ_INT(tt_type_of(tt_get(r, "i")), TT_INTEGER);
	CHECK(tt_int(tt_get(r, "i")) == INT64_MIN);
	CHECK(tt_int(tt_get(r, "j")) == INT64_MAX);
	CHECK_EQ_INT(tt_int(tt_get(r, "h")), 0xdeadbeef);
	CHECK_EQ_INT(tt_int(tt_get(r, "o")), 0755);
	CHECK_EQ_INT(tt_int(tt_get(r, "b")), 10);
	CHECK(tt_float(tt_get(r, "f")) == -1050.0);
	CHECK(isinf(tt_float(tt_get(r, "g"))) && tt_float(tt_get(r, "g")) > 0);
	CHECK(isnan(tt_float(tt_get(r, "n"))));
	CHECK(signbit(tt_float(tt_get(r, "z"))));
	CHECK(tt_bool(tt_get(r, "t")) && !tt_bool(tt_get(r, "u")));
	CHECK_EQ_INT(tt_type_of(tt_get(r, "u")), TT_BOOL);
	tt_free(r);
}

TEST(strings_and_escapes)
{
	tt_value *r = ok("a = \"tab\\there \\u00e9 \\U0001F600 \\\"q\\\" \\\\\"\n"
			 "b = 'C:\\path\\no escapes'\n"
			 "c = \"\"\"\nline1\n  line2 \\\n   joined\"\"\"\n"
			 "d = '''\n''two'' quotes'''''\n"
			 "e = \"nul\\u0000byte\"\n");
	CHECK_EQ_STR(tt_str(tt_get(r, "a"), NULL),
		     "tab\there \xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\");
	CHECK_EQ_STR(tt_str(tt_get(r, "b"), NULL), "C:\\path\\no escapes");
	CHECK_EQ_STR(tt_str(tt_get(r, "c"), NULL), "line1\n  line2 joined");
	CHECK_EQ_STR(tt_str(tt_get(r, "d"), NULL), "''two'' quotes''");
	size_t n = 0;
	const char *e = tt_str(tt_get(r, "e"), &n);
	CHECK_EQ_INT(n, 8);
	CHECK(e && memcmp(e, "nul\0byte", 8) == 0);
	CHECK(tt_str(tt_get(r, "missing"), NULL) == NULL);
	tt_free(r);
}

TEST(datetimes_keep_fields_and_text)
{
	tt_value *r = ok("odt = 1979-05-27 07:32:00.999999999999-07:30\n"
			 "ldt = 1979-05-27T07:32:00\nld = 2024-02-29\nlt = 23:59:60.5\n");
	const tt_datetime *d = tt_dt(tt_get(r, "odt"));
	REQUIRE(d);
	CHECK_EQ_INT(tt_type_of(tt_get(r, "odt")), TT_DATETIME);
	CHECK_EQ_INT(d->year, 1979);
	CHECK_EQ_INT(d->day, 27);
	CHECK_EQ_INT(d->minute, 32);
	CHECK_EQ_INT(d->nanosecond, 999999999);
	CHECK_EQ_INT(d->offset_minutes, -450);
	CHECK_EQ_STR(tt_dt_text(tt_get(r, "odt")), "1979-05-27 07:32:00.999999999999-07:30");
	CHECK_EQ_INT(tt_type_of(tt_get(r, "ldt")), TT_DATETIME_LOCAL);
	CHECK_EQ_INT(tt_type_of(tt_get(r, "ld")), TT_DATE_LOCAL);
	CHECK_EQ_INT(tt_type_of(tt_get(r, "lt")), TT_TIME_LOCAL);
	CHECK_EQ_INT(tt_dt(tt_get(r, "lt"))->nanosecond, 500000000);
	CHECK_EQ_STR(tt_dt_text(tt_get(r, "ld")), "2024-02-29");
	tt_free(r);
}

TEST(tables_and_arrays_of_tables)
{
	tt_value *r = ok("title = 'x'\n[a.b]\nc = 1\n[a]\nd = 2\n"
			 "[[srv]]\nname = 'one'\n[srv.cfg]\nport = 1\n"
			 "[[srv]]\nname = 'two'\n"
			 "[dot]\nx.y.z = 3\nx.y.w = 4\n"
			 "mixed = [1, 'two', [3.0], {k = true}]\n");
	CHECK_EQ_INT(tt_int(tt_path(r, "a.b.c")), 1);
	CHECK_EQ_INT(tt_int(tt_path(r, "a.d")), 2);
	tt_value *srv = tt_get(r, "srv");
	CHECK_EQ_INT(tt_type_of(srv), TT_ARRAY);
	CHECK_EQ_INT(tt_len(srv), 2);
	CHECK_EQ_STR(tt_str(tt_get(tt_at(srv, 1), "name"), NULL), "two");
	CHECK_EQ_INT(tt_int(tt_path(tt_at(srv, 0), "cfg.port")), 1);
	CHECK_EQ_INT(tt_int(tt_path(r, "dot.x.y.w")), 4);
	tt_value *m = tt_path(r, "dot.mixed");
	CHECK_EQ_INT(tt_len(m), 4);
	CHECK_EQ_INT(tt_type_of(tt_at(m, 1)), TT_STRING);
	CHECK(tt_bool(tt_get(tt_at(m, 3), "k")));
	/* Keys in document order. */
	size_t kl;
	CHECK_EQ_STR(tt_key_at(r, 0, &kl), "title");
	CHECK_EQ_STR(tt_key_at(r, 1, &kl), "a");
	CHECK(tt_key_at(r, 99, &kl) == NULL);
	tt_free(r);
}

TEST(value_positions)
{
	tt_value *r = ok("# c\n[limits]\n  memory_pages = \"x\"\n\"\xc3\xa9\" = 1\n");
	tt_value *v = tt_path(r, "limits.memory_pages");
	CHECK_EQ_INT(tt_line(v), 3);
	CHECK_EQ_INT(tt_col(v), 18);
	CHECK_EQ_INT(tt_line(tt_get(r, "limits")), 2);
	CHECK_EQ_INT(tt_col(tt_get(r, "limits")), 1);
	tt_free(r);
	r = ok("\"\xc3\xa9\xc3\xa9\" = 7\n");
	CHECK_EQ_INT(tt_col(tt_get(r, "\xc3\xa9\xc3\xa9")), 8); /* code points */
	tt_free(r);
}

TEST(error_messages_with_positions)
{
	CHECK_EQ_STR(bad("a = 1\nb 2\n", TH_EINVAL),
		     "line 2, column 3: expected '=' after key 'b', found '2'");
	CHECK_EQ_STR(bad("a = 1\na = 2\n", TH_EINVAL), "line 2, column 1: duplicate key 'a'");
	CHECK_EQ_STR(bad("[t.u]\na = 1\n\"a\" = 2\n", TH_EINVAL),
		     "line 3, column 1: duplicate key 't.u.a'");
	CHECK_EQ_STR(bad("[t]\nx = {a = 1, a = 2}\n", TH_EINVAL),
		     "line 2, column 13: duplicate key 'a'");
	CHECK_EQ_STR(bad("x = hello\n", TH_EINVAL),
		     "line 1, column 5: expected a value, found 'h' (strings need quotes)");
	CHECK_EQ_STR(bad("x = \n", TH_EINVAL), "line 1, column 5: expected a value");
	CHECK_EQ_STR(bad("[t]\n[t]\n", TH_EINVAL), "line 2, column 1: table 't' is already defined");
	CHECK_EQ_STR(bad("a = 1 2\n", TH_EINVAL),
		     "line 1, column 7: expected newline after value, found '2'");
	CHECK_EQ_STR(bad("s = \"abc\n", TH_EINVAL),
		     "line 1, column 9: newline in a single-line string (use \"\"\" or ''' for multi-line strings)");
	CHECK_EQ_STR(bad("s = \"a\\qb\"\n", TH_EINVAL),
		     "line 1, column 7: invalid escape sequence '\\q'");
	CHECK_EQ_STR(bad("n = 9223372036854775808\n", TH_EINVAL),
		     "line 1, column 5: integer does not fit in 64 bits");
	CHECK_EQ_STR(bad("n = 0x8000000000000000\n", TH_EINVAL),
		     "line 1, column 5: integer does not fit in 64 bits");
	CHECK_EQ_STR(bad("n = 012\n", TH_EINVAL),
		     "line 1, column 5: leading zeros are not allowed in a number");
	CHECK_EQ_STR(bad("n = 1__2\n", TH_EINVAL),
		     "line 1, column 5: underscore in number must be between digits");
	CHECK_EQ_STR(bad("d = 2023-02-29\n", TH_EINVAL), "line 1, column 5: invalid date 2023-02-29");
	CHECK_EQ_STR(bad("t = {a = 1,}\n", TH_EINVAL),
		     "line 1, column 12: trailing comma not allowed in an inline table");
	CHECK_EQ_STR(bad("t = {a = 1}\nt.b = 2\n", TH_EINVAL),
		     "line 2, column 1: cannot add keys to inline table 't'");
	CHECK_EQ_STR(bad("[a.b]\n[a]\nb.c = 1\n", TH_EINVAL),
		     "line 3, column 1: cannot add to table 'a.b' with a dotted key: it was defined by a [header]");
	CHECK_EQ_STR(bad("a = [1]\n[[a]]\n", TH_EINVAL),
		     "line 2, column 1: cannot define array of tables 'a': it is a static array");
	CHECK_EQ_STR(bad("x = 1\n\xff = 2\n", TH_EINVAL), "line 2, column 1: invalid UTF-8 byte 0xFF");
	CHECK_EQ_STR(bad("\xc3\xa9\xc3\xa9 = 1\n", TH_EINVAL),
		     "line 1, column 1: expected a key, found a non-ASCII character");
	CHECK_EQ_STR(bad("a = \"\xc3\xa9\" \x01\n", TH_EINVAL),
		     "line 1, column 9: expected newline after value, found U+0001");
}

TEST(where_splits_position_and_message)
{
	tt_where w;
	th_err err = { 0 };
	tt_value *r = NULL;
	const char *src = "[limits]\nmemory_pages = = 3\n";
	CHECK_EQ_INT(tt_parse(src, strlen(src), NULL, &r, &w, &err), TH_EINVAL);
	CHECK_EQ_INT(w.line, 2);
	CHECK_EQ_INT(w.col, 16);
	CHECK_EQ_STR(w.what, "expected a value, found '=' (strings need quotes)");
}

TEST(limit_document_size)
{
	tt_options opt = { .max_bytes = 16 };
	const char *src = "key = \"0123456789abcdef\"\n";
	th_err err = { 0 };
	tt_value *r = NULL;
	CHECK_EQ_INT(tt_parse(src, strlen(src), &opt, &r, NULL, &err), TH_ELIMIT);
	CHECK_EQ_STR(err.msg, "document is 25 bytes, more than the limit of 16");
	opt.max_bytes = 25;
	CHECK_EQ_INT(tt_parse(src, strlen(src), &opt, &r, NULL, &err), 0);
	tt_free(r);
}

TEST(limit_nesting_depth)
{
	/* Arrays, inline tables, dotted keys and headers all count. */
	char src[4096];
	size_t n = 0;
	n += (size_t)snprintf(src + n, sizeof(src) - n, "a = ");
	for (int i = 0; i < 100; i++)
		src[n++] = '[';
	for (int i = 0; i < 100; i++)
		src[n++] = ']';
	src[n] = 0;
	CHECK_EQ_STR(bad(src, TH_ELIMIT), "line 1, column 69: nesting deeper than 64 levels");

	n = (size_t)snprintf(src, sizeof(src), "[a");
	for (int i = 1; i < 40; i++)
		n += (size_t)snprintf(src + n, sizeof(src) - n, ".a");
	n += (size_t)snprintf(src + n, sizeof(src) - n, "]\na");
	for (int i = 1; i < 30; i++)
		n += (size_t)snprintf(src + n, sizeof(src) - n, ".a");
	snprintf(src + n, sizeof(src) - n, " = 1\n");
	CHECK_EQ_STR(bad(src, TH_ELIMIT), "line 2, column 49: nesting deeper than 64 levels");

	n = (size_t)snprintf(src, sizeof(src), "a");
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(src + n, sizeof(src) - n, ".a");
	snprintf(src + n, sizeof(src) - n, " = 1\n");
	CHECK_EQ_STR(bad(src, TH_ELIMIT), "line 1, column 131: key has more than 65 parts");

	tt_options opt = { .max_depth = 4 };
	th_err err = { 0 };
	tt_value *r = NULL;
	const char *ok4 = "[a.b.c]\nd = 1\n", *bad5 = "[a.b.c.d]\ne = [1]\n";
	CHECK_EQ_INT(tt_parse(ok4, strlen(ok4), &opt, &r, NULL, &err), 0);
	tt_free(r);
	CHECK_EQ_INT(tt_parse(bad5, strlen(bad5), &opt, &r, NULL, &err), TH_ELIMIT);
	CHECK_EQ_STR(err.msg, "line 2, column 5: nesting deeper than 4 levels");

	/* Deep but within the limit: parses and frees. */
	n = (size_t)snprintf(src, sizeof(src), "a = ");
	for (int i = 0; i < 63; i++)
		src[n++] = '[';
	for (int i = 0; i < 63; i++)
		src[n++] = ']';
	src[n] = 0;
	tt_free(ok(src));
}

TEST(many_keys_use_the_index)
{
	size_t cap = 20000 * 24, n = 0;
	char *src = malloc(cap);
	for (int i = 0; i < 20000; i++)
		n += (size_t)snprintf(src + n, cap - n, "k%d = %d\n", i, i);
	tt_value *r = ok(src);
	CHECK_EQ_INT(tt_len(r), 20000);
	CHECK_EQ_INT(tt_int(tt_get(r, "k12345")), 12345);
	CHECK_EQ_INT(tt_int(tt_get(r, "k0")), 0);
	CHECK(tt_get(r, "k20000") == NULL);
	tt_free(r);
	/* A duplicate far in is still found. */
	n += (size_t)snprintf(src + n, cap - n, "k777 = 1\n");
	CHECK_EQ_STR(bad(src, TH_EINVAL), "line 20001, column 1: duplicate key 'k777'");
	free(src);
}

TEST(allocation_failure_fails_cleanly)
{
	const char *src = "name = \"x\"\n[a.b]\nc = [1, 2, {d = 'e'}]\n"
			  "[[t]]\nx.y = 1979-05-27T07:32:00Z\n[[t]]\ns = \"\"\"\nm\\u00e9\"\"\"\n";
	int fails = 0;
	for (long k = 0; k < 1000; k++) {
		th_err err = { 0 };
		tt_value *r = NULL;
		th_alloc_fail_after(k);
		int rc = tt_parse(src, strlen(src), NULL, &r, NULL, &err);
		th_alloc_fail_after(-1);
		if (rc == 0) {
			CHECK_EQ_INT(tt_len(r), 3);
			tt_free(r);
			break;
		}
		CHECK_EQ_INT(rc, TH_ENOMEM);
		CHECK_EQ_STR(err.msg, "out of memory");
		CHECK(r == NULL);
		fails++;
	}
	CHECK(fails > 20); /* every allocation point was exercised */
}

TEST(json_output)
{
	tt_value *r = ok("s = \"q\\\"\\n\"\ni = -3\nf = 0.5\nn = nan\nd = 2024-01-02\n"
			 "a = [true, {x = []}]\n");
	size_t len = 0;
	char *j = tt_to_json(r, &len);
	CHECK_EQ_STR(j, "{\"s\":\"q\\\"\\n\",\"i\":-3,\"f\":0.5,\"n\":\"nan\","
			"\"d\":\"2024-01-02\",\"a\":[true,{\"x\":[]}]}");
	CHECK_EQ_INT(len, strlen(j));
	tt_json_free(j);
	tt_free(r);
}

TEST(accessors_accept_null_and_wrong_types)
{
	CHECK(tt_get(NULL, "a") == NULL);
	CHECK(tt_at(NULL, 0) == NULL);
	CHECK_EQ_INT(tt_len(NULL), 0);
	CHECK_EQ_INT(tt_int(NULL), 0);
	CHECK(tt_dt(NULL) == NULL);
	tt_value *r = ok("a = 1\n");
	CHECK(tt_get(tt_get(r, "a"), "x") == NULL);
	CHECK(tt_path(r, "a.x") == NULL);
	CHECK(tt_str(tt_get(r, "a"), NULL) == NULL);
	tt_free(r);
	tt_free(NULL);
}

TEST(empty_and_bom_and_crlf)
{
	tt_value *r = ok("");
	CHECK_EQ_INT(tt_len(r), 0);
	tt_free(r);
	r = ok("\xEF\xBB\xBFk = 'v'\r\n[t]\r\nx = \"\"\"a\r\nb\"\"\"\r\n");
	CHECK_EQ_STR(tt_str(tt_get(r, "k"), NULL), "v");
	CHECK_EQ_STR(tt_str(tt_path(r, "t.x"), NULL), "a\nb");
	CHECK_EQ_INT(tt_line(tt_path(r, "t.x")), 3);
	tt_free(r);
	CHECK_EQ_STR(bad("a = 1\rb = 2\n", TH_EINVAL),
		     "line 1, column 6: expected newline after value, found a carriage return");
}

TEST_MAIN()
