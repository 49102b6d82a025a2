/*
 * test_toml_suite.c - runs toml-test's TOML 1.0.0 file list against tt_parse.
 *
 *   valid/X.toml    must parse, and equal valid/X.json (toml-test's tagged
 *                   JSON: {"type":"integer","value":"42"} for scalars)
 *   invalid/X.toml  must be rejected
 *
 * Comparison follows toml-test: integers and floats numerically (nan equals
 * nan, inf by sign), offset date-times as instants (1987-07-05T17:45:56.6Z
 * equals ...56.600Z; offsets compared after conversion to UTC), local
 * date/times field by field, strings byte for byte, and tables by key set.
 *
 * Failures listed in tests/toml/known-failures.txt are reported as known;
 * a listed test that now passes is a failure (the list may only shrink).
 * The suite is at $TOML_TEST_DIR, default ../shared/testdata/toml-test.
 * Prints "FAIL ..." lines and last "toml-test 1.0.0: N passed, N failed".
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "theater/toml.h"

/* ---- a small JSON reader (test code: plain malloc) ---- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
	int kind;
	char *s; /* J_STR: bytes; J_NUM/J_BOOL: literal text */
	size_t slen;
	struct jv **items;
	char **keys;
	size_t *klens;
	size_t n;
} jv;

typedef struct jr {
	const char *s;
	size_t n, i;
	bool bad;
} jr;

static void jfree(jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jfree(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->klens);
	free(v->s);
	free(v);
}

static void jws(jr *r)
{
	while (r->i < r->n && strchr(" \t\r\n", r->s[r->i]))
		r->i++;
}

static void put_utf8(char *o, size_t *n, uint32_t cp)
{
	if (cp < 0x80) {
		o[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		o[(*n)++] = (char)(0xC0 | (cp >> 6));
		o[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		o[(*n)++] = (char)(0xE0 | (cp >> 12));
		o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else {
		o[(*n)++] = (char)(0xF0 | (cp >> 18));
		o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
		o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[(*n)++] = (char)(0x80 | (cp & 0x3F));
	}
}

static uint32_t hex4(jr *r)
{
	uint32_t x = 0;
	for (int k = 0; k < 4; k++) {
		char c = r->i < r->n ? r->s[r->i++] : 0;
		x <<= 4;
		if (c >= '0' && c <= '9')
			x |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			x |= (uint32_t)(c - 'A' + 10);
		else
			r->bad = true;
	}
	return x;
}

static char *jstring(jr *r, size_t *len)
{
	char *o = malloc(r->n + 1);
	size_t n = 0;
	r->i++; /* '"' */
	while (r->i < r->n && r->s[r->i] != '"') {
		char c = r->s[r->i++];
		if (c != '\\') {
			o[n++] = c;
			continue;
		}
		c = r->i < r->n ? r->s[r->i++] : 0;
		switch (c) {
		case 'n': o[n++] = '\n'; break;
		case 't': o[n++] = '\t'; break;
		case 'r': o[n++] = '\r'; break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case '/': o[n++] = '/'; break;
		case '"': o[n++] = '"'; break;
		case '\\': o[n++] = '\\'; break;
		case 'u': {
			uint32_t cp = hex4(r);
			if (cp >= 0xD800 && cp < 0xDC00 && r->i + 1 < r->n &&
			    r->s[r->i] == '\\' && r->s[r->i + 1] == 'u') {
				r->i += 2;
				uint32_t lo = hex4(r);
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			put_utf8(o, &n, cp);
			break;
		}
		default:
			r->bad = true;
		}
	}
	r->i++;
	o[n] = 0;
	*len = n;
	return o;
}

static jv *jparse(jr *r, int depth)
{
	jws(r);
	if (r->i >= r->n || depth > 200) {
		r->bad = true;
		return NULL;
	}
	jv *v = calloc(1, sizeof(*v));
	char c = r->s[r->i];
	if (c == '{' || c == '[') {
		v->kind = c == '{' ? J_OBJ : J_ARR;
		char close = c == '{' ? '}' : ']';
		r->i++;
		size_t cap = 0;
		for (;;) {
			jws(r);
			if (r->i < r->n && r->s[r->i] == close) {
				r->i++;
				break;
			}
			if (v->n) {
				if (r->i >= r->n || r->s[r->i] != ',') {
					r->bad = true;
					break;
				}
				r->i++;
				jws(r);
			}
			if (v->n == cap) {
				cap = cap ? cap * 2 : 8;
				v->items = realloc(v->items, cap * sizeof(*v->items));
				if (v->kind == J_OBJ) {
					v->keys = realloc(v->keys, cap * sizeof(*v->keys));
					v->klens = realloc(v->klens, cap * sizeof(*v->klens));
				}
			}
			if (v->kind == J_OBJ) {
				if (r->i >= r->n || r->s[r->i] != '"') {
					r->bad = true;
					break;
				}
				v->keys[v->n] = jstring(r, &v->klens[v->n]);
				jws(r);
				if (r->i >= r->n || r->s[r->i] != ':') {
					r->bad = true;
					free(v->keys[v->n]);
					break;
				}
				r->i++;
			}
			jv *e = jparse(r, depth + 1);
			if (!e) {
				if (v->keys)
					free(v->keys[v->n]);
				break;
			}
			v->items[v->n++] = e;
		}
	} else if (c == '"') {
		v->kind = J_STR;
		v->s = jstring(r, &v->slen);
	} else {
		size_t st = r->i;
		while (r->i < r->n && !strchr(",]} \t\r\n", r->s[r->i]))
			r->i++;
		v->kind = c == 't' || c == 'f' ? J_BOOL : c == 'n' ? J_NULL : J_NUM;
		v->slen = r->i - st;
		v->s = malloc(v->slen + 1);
		memcpy(v->s, r->s + st, v->slen);
		v->s[v->slen] = 0;
	}
	return v;
}

/* ---- comparison ---- */

static jv *jget(const jv *o, const char *k)
{
	for (size_t i = 0; i < o->n; i++)
		if (strlen(k) == o->klens[i] && memcmp(o->keys[i], k, o->klens[i]) == 0)
			return o->items[i];
	return NULL;
}

/* A tagged scalar: an object of exactly "type" and "value", both strings. */
static bool tagged(const jv *o)
{
	if (o->kind != J_OBJ || o->n != 2)
		return false;
	jv *t = jget(o, "type"), *v = jget(o, "value");
	return t && v && t->kind == J_STR && v->kind == J_STR;
}

typedef struct dtv {
	int y, mo, d, h, mi, s;
	long ns;
	int off; /* minutes */
	bool has_date, has_time, has_off;
} dtv;

static int num(const char **p, int n)
{
	int x = 0;
	for (int k = 0; k < n; k++) {
		if (**p < '0' || **p > '9')
			return -1;
		x = x * 10 + (*(*p)++ - '0');
	}
	return x;
}

static bool parse_dt(const char *s, dtv *o)
{
	memset(o, 0, sizeof(*o));
	const char *p = s;
	if (strlen(s) >= 10 && s[4] == '-') {
		o->has_date = true;
		o->y = num(&p, 4);
		p++;
		o->mo = num(&p, 2);
		p++;
		o->d = num(&p, 2);
		if (*p == 'T' || *p == 't' || *p == ' ')
			p++;
		else
			return *p == 0;
	}
	o->has_time = true;
	o->h = num(&p, 2);
	if (*p++ != ':')
		return false;
	o->mi = num(&p, 2);
	if (*p == ':') {
		p++;
		o->s = num(&p, 2);
	}
	if (*p == '.') {
		p++;
		int nd = 0;
		while (*p >= '0' && *p <= '9') {
			if (nd < 9)
				o->ns = o->ns * 10 + (*p - '0');
			nd++;
			p++;
		}
		for (; nd < 9; nd++)
			o->ns *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		o->has_off = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sg = *p == '-' ? -1 : 1;
		p++;
		int hh = num(&p, 2);
		p++;
		int mm = num(&p, 2);
		o->has_off = true;
		o->off = sg * (hh * 60 + mm);
	}
	return *p == 0;
}

static long long days_civil(int y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static long long instant(const dtv *t)
{
	return days_civil(t->y, t->mo, t->d) * 86400 + t->h * 3600 + t->mi * 60 +
	       t->s - t->off * 60;
}

static const char *tag_of(tt_type t)
{
	switch (t) {
	case TT_STRING: return "string";
	case TT_INTEGER: return "integer";
	case TT_FLOAT: return "float";
	case TT_BOOL: return "bool";
	case TT_DATETIME: return "datetime";
	case TT_DATETIME_LOCAL: return "datetime-local";
	case TT_DATE_LOCAL: return "date-local";
	case TT_TIME_LOCAL: return "time-local";
	default: return "?";
	}
}

static char why[1024];

static bool cmp_scalar(const jv *exp, const tt_value *got, const char *path)
{
	const char *type = jget(exp, "type")->s;
	const jv *val = jget(exp, "value");
	const char *ev = val->s;
	if (strcmp(type, tag_of(tt_type_of(got))) != 0) {
		snprintf(why, sizeof(why), "%s: expected %s, got %s", path, type,
			 tt_type_name(tt_type_of(got)));
		return false;
	}
	switch (tt_type_of(got)) {
	case TT_STRING: {
		size_t n;
		const char *s = tt_str(got, &n);
		if (n != val->slen || memcmp(s, ev, n) != 0) {
			snprintf(why, sizeof(why), "%s: expected string \"%s\", got \"%s\"",
				 path, ev, s);
			return false;
		}
		return true;
	}
	case TT_INTEGER:
		if (strtoll(ev, NULL, 10) != tt_int(got)) {
			snprintf(why, sizeof(why), "%s: expected %s, got %lld", path, ev,
				 (long long)tt_int(got));
			return false;
		}
		return true;
	case TT_FLOAT: {
		double g = tt_float(got), e;
		const char *t = ev[0] == '+' ? ev + 1 : ev;
		if (strcmp(t, "nan") == 0 || strcmp(t, "-nan") == 0) {
			if (isnan(g))
				return true;
		} else {
			if (strcmp(t, "inf") == 0)
				e = INFINITY;
			else if (strcmp(t, "-inf") == 0)
				e = -INFINITY;
			else
				e = strtod(ev, NULL);
			if (e == g)
				return true;
		}
		snprintf(why, sizeof(why), "%s: expected float %s, got %.17g", path, ev, g);
		return false;
	}
	case TT_BOOL:
		if ((strcmp(ev, "true") == 0) == tt_bool(got))
			return true;
		snprintf(why, sizeof(why), "%s: expected %s", path, ev);
		return false;
	default: {
		dtv e;
		const tt_datetime *g = tt_dt(got);
		if (!parse_dt(ev, &e)) {
			snprintf(why, sizeof(why), "%s: cannot read expected '%s'", path, ev);
			return false;
		}
		dtv gv = { g->year, g->month, g->day, g->hour, g->minute, g->second,
			   (long)g->nanosecond, g->offset_minutes, 0, 0, 0 };
		bool ok;
		if (tt_type_of(got) == TT_DATETIME)
			ok = instant(&e) == instant(&gv) && e.ns == gv.ns;
		else
			ok = e.y == gv.y && e.mo == gv.mo && e.d == gv.d && e.h == gv.h &&
			     e.mi == gv.mi && e.s == gv.s && e.ns == gv.ns;
		if (!ok)
			snprintf(why, sizeof(why), "%s: expected %s, got %s", path, ev,
				 tt_dt_text(got));
		return ok;
	}
	}
}

static bool cmp(const jv *exp, const tt_value *got, const char *path)
{
	char sub[512];
	if (tagged(exp))
		return cmp_scalar(exp, got, path);
	if (exp->kind == J_ARR) {
		if (tt_type_of(got) != TT_ARRAY || tt_len(got) != exp->n) {
			snprintf(why, sizeof(why), "%s: expected array of %zu, got %s of %zu",
				 path, exp->n, tt_type_name(tt_type_of(got)), tt_len(got));
			return false;
		}
		for (size_t i = 0; i < exp->n; i++) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (!cmp(exp->items[i], tt_at(got, i), sub))
				return false;
		}
		return true;
	}
	if (exp->kind != J_OBJ) {
		snprintf(why, sizeof(why), "%s: unexpected JSON in expected file", path);
		return false;
	}
	if (tt_type_of(got) != TT_TABLE || tt_len(got) != exp->n) {
		snprintf(why, sizeof(why), "%s: expected table of %zu keys, got %s of %zu",
			 path, exp->n, tt_type_name(tt_type_of(got)), tt_len(got));
		return false;
	}
	for (size_t i = 0; i < exp->n; i++) {
		snprintf(sub, sizeof(sub), "%s.%s", path, exp->keys[i]);
		tt_value *g = tt_getn(got, exp->keys[i], exp->klens[i]);
		if (!g) {
			snprintf(why, sizeof(why), "%s: missing", sub);
			return false;
		}
		if (!cmp(exp->items[i], g, sub))
			return false;
	}
	return true;
}

/* ---- driver ---- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	size_t r;
	while ((r = fread(b + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			b = realloc(b, cap *= 2);
	}
	fclose(f);
	*len = n;
	return b;
}

static bool run_one(const char *dir, const char *rel)
{
	char path[1024];
	size_t len;
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	char *src = slurp(path, &len);
	if (!src) {
		snprintf(why, sizeof(why), "cannot read %s", path);
		return false;
	}
	tt_value *root = NULL;
	th_err err = { 0 };
	int rc = tt_parse(src, len, NULL, &root, NULL, &err);
	free(src);
	bool valid = strncmp(rel, "valid/", 6) == 0;
	if (!valid) {
		tt_free(root);
		if (rc == 0)
			snprintf(why, sizeof(why), "accepted invalid TOML");
		return rc != 0;
	}
	if (rc) {
		snprintf(why, sizeof(why), "rejected: %s", err.msg);
		return false;
	}
	snprintf(path + strlen(path) - 5, 6, ".json");
	char *js = slurp(path, &len);
	bool ok = false;
	if (!js) {
		snprintf(why, sizeof(why), "cannot read %s", path);
	} else {
		jr r = { js, len, 0, false };
		jv *exp = jparse(&r, 0);
		if (!exp || r.bad)
			snprintf(why, sizeof(why), "cannot parse %s", path);
		else
			ok = cmp(exp, root, "$");
		jfree(exp);
		free(js);
	}
	tt_free(root);
	return ok;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("TOML_TEST_DIR");
	if (!dir)
		dir = "../shared/testdata/toml-test";
	char list[1024], line[1024];
	snprintf(list, sizeof(list), "%s/files-toml-1.0.0", dir);
	FILE *f = fopen(list, "r");
	if (!f) {
		printf("FAIL toml-test suite not found: %s (set TOML_TEST_DIR)\n", list);
		printf("toml-test 1.0.0: 0 passed, 1 failed\n");
		return 1;
	}
	/* Known failures: one path per line, '#' comments. */
	char *known = NULL;
	size_t klen = 0;
	known = slurp("tests/toml/known-failures.txt", &klen);
	int passed = 0, failed = 0, nknown = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = 0;
		size_t n = strlen(line);
		if (n < 5 || strcmp(line + n - 5, ".toml") != 0)
			continue;
		if (argc > 1 && !strstr(line, argv[1]))
			continue;
		bool listed = false;
		if (known) {
			const char *k = known;
			while ((k = strstr(k, line)) != NULL) {
				bool start = k == known || k[-1] == '\n';
				char end = k[n];
				if (start && (end == '\n' || end == '\r' || end == 0 || end == ' ')) {
					listed = true;
					break;
				}
				k += n;
			}
		}
		why[0] = 0;
		bool ok = run_one(dir, line);
		if (ok && !listed) {
			passed++;
		} else if (ok && listed) {
			failed++;
			printf("FAIL %s: passes but is listed in tests/toml/known-failures.txt (remove it)\n", line);
		} else if (listed) {
			nknown++;
			printf("known failure %s: %s\n", line, why);
		} else {
			failed++;
			printf("FAIL %s: %s\n", line, why);
		}
	}
	fclose(f);
	free(known);
	if (nknown)
		printf("%d known failures (tests/toml/known-failures.txt)\n", nknown);
	printf("toml-test 1.0.0: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
