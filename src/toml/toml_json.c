/*
 * toml_json.c - JSON text of a TOML value (tt_to_json).
 *
 * Used where a TOML value must become bytes another program reads, e.g. a
 * manifest's inline init_state. Tables become objects (keys in document
 * order), arrays arrays, integers and finite floats numbers (floats with
 * 17 significant digits, so they round-trip), nan and infinities the
 * strings "nan", "inf", "-inf", date/times their text as written.
 */
#include <math.h>

#include "toml/toml_tree.h"

typedef struct jbuf {
	char *p;
	size_t len, cap;
	bool oom;
} jbuf;

static void put(jbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	size_t need;
	if (!th_add_ok(b->len, n + 1, &need)) {
		b->oom = true;
		return;
	}
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < need)
			cap *= 2;
		char *p = th_realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(jbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_string(jbuf *b, const char *s, size_t n)
{
	put(b, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F)
			continue;
		put(b, s + run, i - run);
		run = i + 1;
		char esc[8];
		switch (c) {
		case '"': puts_(b, "\\\""); break;
		case '\\': puts_(b, "\\\\"); break;
		case '\n': puts_(b, "\\n"); break;
		case '\t': puts_(b, "\\t"); break;
		case '\r': puts_(b, "\\r"); break;
		case '\b': puts_(b, "\\b"); break;
		case '\f': puts_(b, "\\f"); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			puts_(b, esc);
		}
	}
	put(b, s + run, n - run);
	put(b, "\"", 1);
}

static void put_value(jbuf *b, const tt_value *v)
{
	char num[40];
	switch (v->type) {
	case TT_STRING:
		put_string(b, v->u.str.s, v->u.str.len);
		break;
	case TT_INTEGER:
		snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
		puts_(b, num);
		break;
	case TT_FLOAT:
		if (isnan(v->u.f))
			puts_(b, "\"nan\"");
		else if (isinf(v->u.f))
			puts_(b, v->u.f < 0 ? "\"-inf\"" : "\"inf\"");
		else {
			snprintf(num, sizeof(num), "%.17g", v->u.f);
			for (char *p = num; *p; p++) /* a locale's decimal comma */
				if (*p == ',')
					*p = '.';
			puts_(b, num);
		}
		break;
	case TT_BOOL:
		puts_(b, v->u.b ? "true" : "false");
		break;
	case TT_DATETIME:
	case TT_DATETIME_LOCAL:
	case TT_DATE_LOCAL:
	case TT_TIME_LOCAL:
		put_string(b, v->u.dt.text, strlen(v->u.dt.text));
		break;
	case TT_ARRAY:
		put(b, "[", 1);
		for (size_t i = 0; i < v->u.arr.len; i++) {
			if (i)
				put(b, ",", 1);
			put_value(b, v->u.arr.v[i]); /* depth bounded by the parser */
		}
		put(b, "]", 1);
		break;
	case TT_TABLE:
		put(b, "{", 1);
		for (size_t i = 0; i < v->u.tab.len; i++) {
			if (i)
				put(b, ",", 1);
			put_string(b, v->u.tab.kv[i].key, v->u.tab.kv[i].klen);
			put(b, ":", 1);
			put_value(b, v->u.tab.kv[i].val);
		}
		put(b, "}", 1);
		break;
	default:
		puts_(b, "null");
	}
}

char *tt_to_json(const tt_value *v, size_t *len)
{
	jbuf b = { 0 };
	if (v)
		put_value(&b, v);
	else
		puts_(&b, "null");
	if (b.oom) {
		th_free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}

void tt_json_free(char *json)
{
	th_free(json);
}
