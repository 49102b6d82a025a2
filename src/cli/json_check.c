/*
 * json_check.c - is a command-line argument one JSON document (RFC 8259)?
 * The CLI passes JSON through as bytes (an actor's initial state), so it
 * only needs to know that the text is well formed and, if not, where it
 * goes wrong, to refuse `--state '{bad json'` before it reaches a server.
 *
 * A recursive-descent check with a depth limit; nothing is built.
 */
#include "base/base.h"
#include "cli/cli.h"

#define JSON_DEPTH_MAX 200

struct jc {
	const char *p;
	size_t n, i;
	const char *what;
};

static void ws(struct jc *j)
{
	while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' ||
			       j->p[j->i] == '\r'))
		j->i++;
}

static bool fail(struct jc *j, const char *what)
{
	j->what = what;
	return false;
}

static bool lit(struct jc *j, const char *word)
{
	size_t k = strlen(word);
	if (j->n - j->i < k || memcmp(j->p + j->i, word, k))
		return fail(j, "unexpected character");
	j->i += k;
	return true;
}

static bool hex4(struct jc *j)
{
	for (int k = 0; k < 4; k++, j->i++) {
		char c = j->i < j->n ? j->p[j->i] : 0;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return fail(j, "bad \\u escape");
	}
	return true;
}

static bool string(struct jc *j)
{
	j->i++; /* the opening quote */
	while (j->i < j->n) {
		unsigned char c = (unsigned char)j->p[j->i];
		if (c == '"') {
			j->i++;
			return true;
		}
		if (c < 0x20)
			return fail(j, "control character in a string");
		if (c == '\\') {
			j->i++;
			char e = j->i < j->n ? j->p[j->i] : 0;
			if (e == 'u') {
				j->i++;
				if (!hex4(j))
					return false;
				continue;
			}
			if (!e || !strchr("\"\\/bfnrt", e))
				return fail(j, "bad escape in a string");
		}
		j->i++;
	}
	return fail(j, "unterminated string");
}

static bool number(struct jc *j)
{
	size_t start;
	if (j->p[j->i] == '-')
		j->i++;
	if (j->i < j->n && j->p[j->i] == '0') {
		j->i++;
	} else {
		start = j->i;
		while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
			j->i++;
		if (j->i == start)
			return fail(j, "bad number");
	}
	if (j->i < j->n && j->p[j->i] == '.') {
		start = ++j->i;
		while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
			j->i++;
		if (j->i == start)
			return fail(j, "bad number (digits after '.')");
	}
	if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-'))
			j->i++;
		start = j->i;
		while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
			j->i++;
		if (j->i == start)
			return fail(j, "bad number (exponent)");
	}
	return true;
}

static bool value(struct jc *j, int depth)
{
	if (depth > JSON_DEPTH_MAX)
		return fail(j, "nested too deeply");
	ws(j);
	if (j->i >= j->n)
		return fail(j, "unexpected end");
	char c = j->p[j->i];
	if (c == '"')
		return string(j);
	if (c == '-' || (c >= '0' && c <= '9'))
		return number(j);
	if (c == 't')
		return lit(j, "true");
	if (c == 'f')
		return lit(j, "false");
	if (c == 'n')
		return lit(j, "null");
	if (c != '{' && c != '[')
		return fail(j, "unexpected character");
	char close = c == '{' ? '}' : ']';
	j->i++;
	ws(j);
	if (j->i < j->n && j->p[j->i] == close) {
		j->i++;
		return true;
	}
	for (;;) {
		if (close == '}') {
			ws(j);
			if (j->i >= j->n || j->p[j->i] != '"')
				return fail(j, j->i >= j->n ? "unexpected end" : "expected a key string");
			if (!string(j))
				return false;
			ws(j);
			if (j->i >= j->n || j->p[j->i] != ':')
				return fail(j, "expected ':'");
			j->i++;
		}
		if (!value(j, depth + 1))
			return false;
		ws(j);
		if (j->i >= j->n)
			return fail(j, "unexpected end");
		if (j->p[j->i] == close) {
			j->i++;
			return true;
		}
		if (j->p[j->i] != ',')
			return fail(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
		j->i++;
	}
}

bool cli_json_check(const char *p, size_t n, size_t *where, const char **what)
{
	struct jc j = { p, n, 0, NULL };
	bool ok = value(&j, 0);
	if (ok) {
		ws(&j);
		if (j.i < j.n)
			ok = fail(&j, "text after the JSON value");
	}
	*where = j.i;
	*what = j.what;
	return ok;
}
