/*
 * toml_parse.c - a recursive-descent TOML 1.0 parser.
 *
 * Shape. The document is checked to be UTF-8 first (one pass, so that no
 * later step has to care), then read expression by expression: a comment,
 * a [table] or [[array-of-tables]] header, or a key/value pair, each ending
 * at a newline or the end. Values are parsed into a fresh subtree and only
 * then attached, so a failure anywhere frees exactly what it made.
 *
 * Redefinition rules (TOML 1.0 "Table", "Inline Table", "Array of Tables"),
 * carried by the flags of each table (toml_tree.h):
 *  1. A [header] may define a table only if it does not exist, or exists
 *     only as an IMPLICIT parent of an earlier header ([a.b] then [a]).
 *  2. A header may pass through any table except an INLINE one; through an
 *     array of tables (AOT) it goes into the last element.
 *  3. A dotted key (a.b.c = 1) may pass only through tables that dotted
 *     keys created (DOTTED): not through tables defined or implied by
 *     headers, not through inline tables.
 *  4. [[a]] appends to an AOT array, or creates one; it never extends a
 *     static array (one written as a literal) or a table.
 *  5. An inline table is sealed (INLINE, recursively) once its '}' is read.
 *
 * Positions. The parser tracks the current line and its start offset as it
 * consumes newlines; a column is the number of code points between the line
 * start and the position, counted forward from a cache of the last column
 * computed (positions are asked for in increasing order), so a hostile
 * document of one long line still costs linear time.
 *
 * Limits. max_bytes bounds the input; max_depth bounds how many containers
 * (tables, arrays) nest, which also bounds the recursion of this parser and
 * of tt_free. A key may have at most max_depth parts.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>

#include "toml/toml_tree.h"

typedef struct pos {
	uint32_t line, col;
} pos;

typedef struct parser {
	const char *s;
	size_t n, i;
	uint32_t line;
	size_t line_start;
	size_t cache_off; /* column cache: column ccol is at offset cache_off */
	uint32_t ccol;
	unsigned max_depth;
	tt_value *root, *cur;
	char cur_name[256]; /* the current [header]'s key, for messages */
	int code;
	pos epos;
	char emsg[TH_ERR_MSG_MAX];
} parser;

/* A dynamic byte buffer for decoded strings. */
typedef struct buf {
	char *p;
	size_t len, cap;
} buf;

/* One part of a (possibly dotted) key. */
typedef struct keypart {
	const char *s; /* into the source (bare) or into own */
	size_t len;
	char *own;
	pos at;
} keypart;

typedef struct keypath {
	keypart *p;
	size_t n, cap;
} keypath;

/* ------------------------------------------------------------------ */
/* positions and errors                                                */

static pos here_at(parser *P, size_t off)
{
	if (off < P->line_start) /* defensive: only the current line is asked */
		off = P->line_start;
	if (P->cache_off < P->line_start || P->cache_off > off) {
		P->cache_off = P->line_start;
		P->ccol = 1;
	}
	for (size_t k = P->cache_off; k < off && k < P->n; k++)
		if (((uint8_t)P->s[k] & 0xC0) != 0x80)
			P->ccol++;
	P->cache_off = off;
	return (pos){ P->line, P->ccol };
}

static pos here(parser *P)
{
	return here_at(P, P->i);
}

static int fail_at(parser *P, pos at, int code, const char *fmt, ...)
	TH_PRINTF(4, 5);
static int fail_at(parser *P, pos at, int code, const char *fmt, ...)
{
	if (P->code) /* keep the first error */
		return P->code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(P->emsg, sizeof(P->emsg), fmt, ap);
	va_end(ap);
	P->code = code;
	P->epos = at;
	return code;
}

#define FAIL(P, ...) fail_at((P), here(P), TH_EINVAL, __VA_ARGS__)

static int oom(parser *P)
{
	return fail_at(P, here(P), TH_ENOMEM, "out of memory");
}

static int peek_at(parser *P, size_t k);

/* Describe the character at the cursor for messages: "'x'", "newline",
 * "end of file", "U+0007". */
static const char *describe(parser *P, char *tmp, size_t n)
{
	if (P->i >= P->n)
		return "end of file";
	uint8_t c = (uint8_t)P->s[P->i];
	if (c == '\n' || (c == '\r' && peek_at(P, 1) == '\n'))
		return "newline";
	if (c == '\r')
		return "a carriage return";
	if (c < 0x20 || c == 0x7F)
		snprintf(tmp, n, "U+%04X", c);
	else if (c >= 0x80)
		return "a non-ASCII character";
	else
		snprintf(tmp, n, "'%c'", c);
	return tmp;
}

/* ------------------------------------------------------------------ */
/* characters                                                          */

static int peek(parser *P)
{
	return P->i < P->n ? (uint8_t)P->s[P->i] : -1;
}

static int peek_at(parser *P, size_t k)
{
	return P->i + k < P->n ? (uint8_t)P->s[P->i + k] : -1;
}

static bool is_ws(int c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       is_digit(c) || c == '_' || c == '-';
}

/* A control character not allowed in comments and strings (tab is). */
static bool is_ctrl(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7F;
}

static void skip_ws(parser *P)
{
	while (is_ws(peek(P)))
		P->i++;
}

/* At a newline (LF or CRLF)? */
static bool at_newline(parser *P)
{
	int c = peek(P);
	return c == '\n' || (c == '\r' && peek_at(P, 1) == '\n');
}

static void eat_newline(parser *P)
{
	if (peek(P) == '\r')
		P->i++;
	P->i++; /* the '\n' */
	P->line++;
	P->line_start = P->i;
}

/* '#' to the end of the line (the newline itself stays). */
static int skip_comment(parser *P)
{
	P->i++; /* '#' */
	while (P->i < P->n && !at_newline(P)) {
		int c = peek(P);
		if (c == '\r')
			return FAIL(P, "carriage return not followed by newline in comment");
		if (is_ctrl(c))
			return FAIL(P, "control character U+%04X not allowed in a comment", c);
		P->i++;
	}
	return 0;
}

/* Whitespace, newlines and comments (inside arrays). */
static int skip_ws_nl(parser *P)
{
	for (;;) {
		skip_ws(P);
		int c = peek(P);
		if (c == '#') {
			if (skip_comment(P))
				return P->code;
		} else if (at_newline(P)) {
			eat_newline(P);
		} else {
			return 0;
		}
	}
}

/* After an expression: whitespace, an optional comment, then a newline or
 * the end of the document. */
static int end_of_line(parser *P, const char *after)
{
	skip_ws(P);
	if (peek(P) == '#' && skip_comment(P))
		return P->code;
	if (P->i >= P->n)
		return 0;
	if (at_newline(P)) {
		eat_newline(P);
		return 0;
	}
	char tmp[16];
	return FAIL(P, "expected newline after %s, found %s", after,
		    describe(P, tmp, sizeof(tmp)));
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are). */
static size_t utf8_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp, min;
	if ((c & 0xE0) == 0xC0) {
		len = 2, cp = c & 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, cp = c & 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static int check_utf8(parser *P)
{
	const uint8_t *s = (const uint8_t *)P->s;
	size_t i = 0;
	uint32_t line = 1, col = 1;
	while (i < P->n) {
		if (s[i] < 0x80) {
			if (s[i] == '\n')
				line++, col = 1;
			else
				col++;
			i++;
			continue;
		}
		size_t k = utf8_len(s + i, P->n - i);
		if (!k)
			return fail_at(P, (pos){ line, col }, TH_EINVAL,
				       "invalid UTF-8 byte 0x%02X", s[i]);
		i += k;
		col++;
	}
	return 0;
}

static void utf8_put(char *out, size_t *n, uint32_t cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xC0 | (cp >> 6));
		out[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		out[(*n)++] = (char)(0xE0 | (cp >> 12));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else {
		out[(*n)++] = (char)(0xF0 | (cp >> 18));
		out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[(*n)++] = (char)(0x80 | (cp & 0x3F));
	}
}

/* ------------------------------------------------------------------ */
/* buffers                                                             */

static int buf_grow(buf *b, size_t more)
{
	size_t need;
	if (!th_add_ok(b->len, more + 1, &need))
		return TH_ELIMIT;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 32;
	while (cap < need)
		cap *= 2;
	char *p = th_realloc(b->p, cap);
	if (!p)
		return TH_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_add(parser *P, buf *b, const char *s, size_t n)
{
	if (buf_grow(b, n))
		return oom(P);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* strings                                                             */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* An escape after '\' (cursor on the character after the backslash). */
static int escape(parser *P, buf *b)
{
	pos at = here_at(P, P->i - 1);
	int c = peek(P);
	char out[4];
	size_t n = 0;
	switch (c) {
	case 'b': out[n++] = '\b'; break;
	case 't': out[n++] = '\t'; break;
	case 'n': out[n++] = '\n'; break;
	case 'f': out[n++] = '\f'; break;
	case 'r': out[n++] = '\r'; break;
	case '"': out[n++] = '"'; break;
	case '\\': out[n++] = '\\'; break;
	case 'u':
	case 'U': {
		int digits = c == 'u' ? 4 : 8;
		uint32_t cp = 0;
		for (int k = 1; k <= digits; k++) {
			int h = hexval(peek_at(P, (size_t)k));
			if (h < 0)
				return fail_at(P, at, TH_EINVAL,
					       "\\%c escape needs %d hex digits", c, digits);
			cp = (cp << 4) | (uint32_t)h;
		}
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return fail_at(P, at, TH_EINVAL,
				       "\\%c%0*X is not a Unicode scalar value", c,
				       digits, cp);
		P->i += (size_t)digits;
		utf8_put(out, &n, cp);
		break;
	}
	default:
		if (c < 0x20 || c >= 0x7F)
			return fail_at(P, at, TH_EINVAL, "invalid escape sequence in string");
		return fail_at(P, at, TH_EINVAL, "invalid escape sequence '\\%c'", c);
	}
	P->i++;
	return buf_add(P, b, out, n);
}

/* Copy the run of plain characters from the cursor (no quote, backslash,
 * newline or control character) into b. */
static int plain_run(parser *P, buf *b, int quote, bool escapes)
{
	size_t start = P->i;
	while (P->i < P->n) {
		int c = (uint8_t)P->s[P->i];
		if (c == quote || (escapes && c == '\\') || is_ctrl(c))
			break;
		P->i++;
	}
	return P->i > start ? buf_add(P, b, P->s + start, P->i - start) : 0;
}

static int ctrl_in_string(parser *P, int c)
{
	if (c == '\n' || c == '\r')
		return FAIL(P, "newline in a single-line string (use \"\"\" or ''' for multi-line strings)");
	return FAIL(P, "control character U+%04X not allowed in a string (escape it)", c);
}

/* "..." or '...' (cursor on the opening quote). */
static int string_single(parser *P, buf *b, int quote)
{
	pos open = here(P);
	P->i++;
	for (;;) {
		if (plain_run(P, b, quote, quote == '"'))
			return P->code;
		int c = peek(P);
		if (c < 0)
			return fail_at(P, open, TH_EINVAL, "unterminated string");
		if (c == quote) {
			P->i++;
			return 0;
		}
		if (c == '\\') {
			P->i++;
			if (escape(P, b))
				return P->code;
			continue;
		}
		return ctrl_in_string(P, c);
	}
}

/* """...""" or '''...''' (cursor on the first of the three quotes). */
static int string_multi(parser *P, buf *b, int quote)
{
	pos open = here(P);
	P->i += 3;
	if (at_newline(P)) /* a newline right after the delimiter is trimmed */
		eat_newline(P);
	if (buf_add(P, b, "", 0))
		return P->code;
	for (;;) {
		if (plain_run(P, b, quote, quote == '"'))
			return P->code;
		int c = peek(P);
		if (c < 0)
			return fail_at(P, open, TH_EINVAL, "unterminated multi-line string");
		if (c == quote) {
			size_t q = 0;
			while (peek_at(P, q) == quote)
				q++;
			if (q < 3) {
				P->i += q;
				if (buf_add(P, b, quote == '"' ? "\"\"" : "''", q))
					return P->code;
				continue;
			}
			if (q > 5)
				return FAIL(P, "too many quotes at the end of a multi-line string");
			/* Up to two quotes before the closing three are content. */
			if (buf_add(P, b, quote == '"' ? "\"\"" : "''", q - 3))
				return P->code;
			P->i += q;
			return 0;
		}
		if (at_newline(P)) {
			eat_newline(P);
			if (buf_add(P, b, "\n", 1))
				return P->code;
			continue;
		}
		if (c == '\\') {
			/* Line-ending backslash: whitespace, a newline, then all
			 * whitespace and newlines up to the next character go. */
			size_t k = 1;
			while (is_ws(peek_at(P, k)))
				k++;
			int d = peek_at(P, k);
			if (d == '\n' || (d == '\r' && peek_at(P, k + 1) == '\n')) {
				P->i += k;
				while (is_ws(peek(P)) || at_newline(P)) {
					if (at_newline(P))
						eat_newline(P);
					else
						P->i++;
				}
				continue;
			}
			P->i++;
			if (escape(P, b))
				return P->code;
			continue;
		}
		if (c == '\r')
			return FAIL(P, "carriage return not followed by newline in a string");
		return ctrl_in_string(P, c);
	}
}

/* Any string at the cursor; multi-line ones only if allowed (not keys). */
static int string_any(parser *P, buf *b, bool allow_multi)
{
	int q = peek(P);
	if (peek_at(P, 1) == q && peek_at(P, 2) == q) {
		if (!allow_multi)
			return FAIL(P, "a multi-line string cannot be a key");
		return string_multi(P, b, q);
	}
	if (buf_add(P, b, "", 0))
		return P->code;
	return string_single(P, b, q);
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

static void keypath_release(keypath *k)
{
	for (size_t j = 0; j < k->n; j++)
		th_free(k->p[j].own);
	th_free(k->p);
	k->p = NULL;
	k->n = k->cap = 0;
}

/* Render a key path for messages: a.b."c d" (truncated when long). */
static const char *key_text(const keypath *k, size_t upto, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t j = 0; j < upto && n + 1 < cap; j++) {
		const keypart *kp = &k->p[j];
		bool bare = kp->len > 0;
		for (size_t c = 0; c < kp->len; c++)
			if (!is_bare((uint8_t)kp->s[c]))
				bare = false;
		int w = snprintf(out + n, cap - n, "%s%s%.*s%s", j ? "." : "",
				 bare ? "" : "\"", (int)(kp->len > 60 ? 60 : kp->len),
				 kp->s, bare ? "" : "\"");
		if (w < 0)
			break;
		n += (size_t)w;
	}
	return out;
}

/* A key of a key/value pair as a full path from the root when it is in the
 * current [header]'s table (inline tables: relative). */
static const char *full_key(parser *P, const tt_value *table, const keypath *k,
			    size_t upto, char *out, size_t cap)
{
	char rel[256];
	key_text(k, upto, rel, sizeof(rel));
	if (table == P->cur && P->cur_name[0])
		snprintf(out, cap, "%s.%s", P->cur_name, rel);
	else
		snprintf(out, cap, "%s", rel);
	return out;
}

static int key_parse(parser *P, keypath *k)
{
	for (;;) {
		if (k->n == P->max_depth + 1)
			return fail_at(P, here(P), TH_ELIMIT,
				       "key has more than %u parts", P->max_depth + 1);
		if (k->n == k->cap) {
			size_t cap = k->cap ? k->cap * 2 : 4;
			keypart *np = th_realloc(k->p, cap * sizeof(*np));
			if (!np)
				return oom(P);
			k->p = np;
			k->cap = cap;
		}
		keypart *kp = &k->p[k->n];
		memset(kp, 0, sizeof(*kp));
		kp->at = here(P);
		int c = peek(P);
		if (c == '"' || c == '\'') {
			buf b = { 0 };
			int rc = string_any(P, &b, false);
			if (rc) {
				th_free(b.p);
				return rc;
			}
			kp->own = b.p;
			kp->s = b.p;
			kp->len = b.len;
			k->n++;
		} else if (is_bare(c)) {
			size_t start = P->i;
			while (is_bare(peek(P)))
				P->i++;
			kp->s = P->s + start;
			kp->len = P->i - start;
			k->n++;
		} else {
			char tmp[16];
			return FAIL(P, "expected a key, found %s", describe(P, tmp, sizeof(tmp)));
		}
		skip_ws(P);
		if (peek(P) != '.')
			return 0;
		P->i++;
		skip_ws(P);
	}
}

/* ------------------------------------------------------------------ */
/* numbers                                                             */

/* Digits of the given base with single underscores between digits. Copies
 * the digits (no underscores) into out (cap bytes); returns digit count or
 * -1 after reporting. */
static int digits(parser *P, const char *t, size_t n, int base, char *out,
		  size_t cap, size_t *outn, pos at, const char *what)
{
	if (n == 0)
		return fail_at(P, at, TH_EINVAL, "%s needs digits", what);
	bool prev_digit = false;
	for (size_t j = 0; j < n; j++) {
		int c = (uint8_t)t[j];
		if (c == '_') {
			if (!prev_digit || j + 1 == n)
				return fail_at(P, at, TH_EINVAL,
					       "underscore in %s must be between digits", what);
			prev_digit = false;
			continue;
		}
		int d = hexval(c);
		if (d < 0 || d >= base)
			return fail_at(P, at, TH_EINVAL, "invalid digit '%c' in %s", c, what);
		if (*outn + 1 >= cap)
			return fail_at(P, at, TH_ELIMIT, "%s is too long", what);
		out[(*outn)++] = (char)c;
		prev_digit = true;
	}
	out[*outn] = '\0';
	return 0;
}

/* strtod in the "C" locale, whatever locale the embedding program set. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

static double strtod_c(const char *s, char **end)
{
	pthread_once(&c_locale_once, c_locale_init);
	if (c_locale)
		return strtod_l(s, end, c_locale);
	return strtod(s, end); /* defensive: "C" always exists */
}

/* Integer or float token t[0..n) starting at 'at'. */
static int number(parser *P, const char *t, size_t n, pos at, tt_value *v)
{
	char clean[512];
	size_t cn = 0;
	size_t j = 0;
	bool neg = false, sign = false;
	if (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-';
		sign = true;
		j = 1;
	}
	const char *r = t + j;
	size_t rn = n - j;
	bool special = rn == 3 && (memcmp(r, "inf", 3) == 0 || memcmp(r, "nan", 3) == 0);
	if (rn == 0 || !(is_digit((uint8_t)r[0]) || special))
		return fail_at(P, at, TH_EINVAL, "invalid value '%.*s' (strings need quotes)",
			       (int)(n > 40 ? 40 : n), t);
	if (special) {
		v->type = TT_FLOAT;
		v->u.f = r[0] == 'i' ? (neg ? -INFINITY : INFINITY)
				     : (neg ? -NAN : NAN);
		return 0;
	}
	if (rn >= 2 && r[0] == '0' && (r[1] == 'x' || r[1] == 'o' || r[1] == 'b')) {
		int base = r[1] == 'x' ? 16 : r[1] == 'o' ? 8 : 2;
		const char *what = base == 16 ? "hexadecimal integer"
				   : base == 8 ? "octal integer" : "binary integer";
		if (sign)
			return fail_at(P, at, TH_EINVAL, "a %s cannot have a sign", what);
		if (digits(P, r + 2, rn - 2, base, clean, sizeof(clean), &cn, at, what))
			return P->code;
		uint64_t x = 0;
		for (size_t k = 0; k < cn; k++) {
			uint64_t d = (uint64_t)hexval((uint8_t)clean[k]);
			if (x > (UINT64_C(0x7FFFFFFFFFFFFFFF) - d) / (uint64_t)base)
				return fail_at(P, at, TH_EINVAL,
					       "integer does not fit in 64 bits");
			x = x * (uint64_t)base + d;
		}
		v->type = TT_INTEGER;
		v->u.i = (int64_t)x;
		return 0;
	}
	/* Decimal: int-part [ '.' digits ] [ e [sign] digits ]. */
	size_t k = 0;
	while (k < rn && r[k] != '.' && r[k] != 'e' && r[k] != 'E')
		k++;
	if (sign)
		clean[cn++] = t[0];
	size_t int_start = cn;
	if (digits(P, r, k, 10, clean, sizeof(clean), &cn, at, "number"))
		return P->code;
	if (cn - int_start > 1 && clean[int_start] == '0')
		return fail_at(P, at, TH_EINVAL, "leading zeros are not allowed in a number");
	bool is_float = false;
	if (k < rn && r[k] == '.') {
		is_float = true;
		size_t f = ++k;
		while (k < rn && r[k] != 'e' && r[k] != 'E')
			k++;
		clean[cn++] = '.';
		if (digits(P, r + f, k - f, 10, clean, sizeof(clean), &cn, at,
			   "fraction"))
			return P->code;
	}
	if (k < rn) { /* 'e' or 'E' */
		is_float = true;
		clean[cn++] = 'e';
		k++;
		if (k < rn && (r[k] == '+' || r[k] == '-'))
			clean[cn++] = r[k++];
		if (digits(P, r + k, rn - k, 10, clean, sizeof(clean), &cn, at,
			   "exponent"))
			return P->code;
	}
	if (is_float) {
		char *end = NULL;
		double d = strtod_c(clean, &end);
		if (!end || *end || isinf(d))
			return fail_at(P, at, TH_EINVAL, "float out of range");
		v->type = TT_FLOAT;
		v->u.f = d;
		return 0;
	}
	uint64_t x = 0, lim = neg ? UINT64_C(0x8000000000000000)
				  : UINT64_C(0x7FFFFFFFFFFFFFFF);
	for (size_t q = int_start; q < cn; q++) {
		uint64_t d = (uint64_t)(clean[q] - '0');
		if (x > (lim - d) / 10)
			return fail_at(P, at, TH_EINVAL, "integer does not fit in 64 bits");
		x = x * 10 + d;
	}
	v->type = TT_INTEGER;
	v->u.i = neg ? (int64_t)(0 - x) : (int64_t)x;
	return 0;
}

/* ------------------------------------------------------------------ */
/* dates and times                                                     */

static bool n_digits(parser *P, size_t off, size_t count, int *out)
{
	int x = 0;
	for (size_t k = 0; k < count; k++) {
		int c = peek_at(P, off + k);
		if (!is_digit(c))
			return false;
		x = x * 10 + (c - '0');
	}
	*out = x;
	return true;
}

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* A character that may follow a value. */
static bool value_end(int c)
{
	return c < 0 || is_ws(c) || c == '\n' || c == '\r' || c == ',' ||
	       c == ']' || c == '}' || c == '#';
}

/* HH:MM:SS[.frac] at offset off; *len gets its length. */
static int time_part(parser *P, size_t off, tt_datetime *dt, size_t *len, pos at)
{
	if (!n_digits(P, off, 2, &dt->hour) || peek_at(P, off + 2) != ':' ||
	    !n_digits(P, off + 3, 2, &dt->minute))
		return fail_at(P, at, TH_EINVAL, "invalid time: expected HH:MM:SS");
	if (peek_at(P, off + 5) != ':' || !n_digits(P, off + 6, 2, &dt->second))
		return fail_at(P, at, TH_EINVAL,
			       "invalid time: seconds are required (HH:MM:SS)");
	if (dt->hour > 23 || dt->minute > 59 || dt->second > 60)
		return fail_at(P, at, TH_EINVAL, "invalid time %02d:%02d:%02d",
			       dt->hour, dt->minute, dt->second);
	size_t k = off + 8;
	if (peek_at(P, k) == '.') {
		k++;
		int nd = 0;
		uint32_t ns = 0;
		while (is_digit(peek_at(P, k))) {
			if (nd < 9)
				ns = ns * 10 + (uint32_t)(peek_at(P, k) - '0');
			nd++;
			k++;
		}
		if (nd == 0)
			return fail_at(P, at, TH_EINVAL,
				       "invalid time: digits expected after '.'");
		dt->frac_digits = nd > 9 ? 9 : nd;
		for (int z = nd; z < 9; z++)
			ns *= 10;
		dt->nanosecond = ns;
	}
	*len = k - off;
	return 0;
}

static int datetime(parser *P, tt_value *v, pos at)
{
	tt_datetime dt = { 0 };
	size_t k;
	tt_type type;
	int y;
	if (n_digits(P, 0, 4, &y) && peek_at(P, 4) == '-') {
		dt.year = y;
		if (!n_digits(P, 5, 2, &dt.month) || peek_at(P, 7) != '-' ||
		    !n_digits(P, 8, 2, &dt.day) || is_digit(peek_at(P, 10)))
			return fail_at(P, at, TH_EINVAL, "invalid date: expected YYYY-MM-DD");
		if (dt.month < 1 || dt.month > 12 || dt.day < 1 ||
		    dt.day > days_in_month(dt.year, dt.month))
			return fail_at(P, at, TH_EINVAL, "invalid date %04d-%02d-%02d",
				       dt.year, dt.month, dt.day);
		k = 10;
		type = TT_DATE_LOCAL;
		int c = peek_at(P, 10);
		int d;
		if (c == 'T' || c == 't' ||
		    (c == ' ' && n_digits(P, 11, 2, &d) && peek_at(P, 13) == ':')) {
			size_t tl;
			if (time_part(P, 11, &dt, &tl, at))
				return P->code;
			k = 11 + tl;
			type = TT_DATETIME_LOCAL;
			c = peek_at(P, k);
			if (c == 'Z' || c == 'z') {
				type = TT_DATETIME;
				k++;
			} else if (c == '+' || c == '-') {
				int oh, om;
				if (!n_digits(P, k + 1, 2, &oh) || peek_at(P, k + 3) != ':' ||
				    !n_digits(P, k + 4, 2, &om))
					return fail_at(P, at, TH_EINVAL,
						       "invalid time offset: expected +HH:MM or -HH:MM");
				if (oh > 23 || om > 59)
					return fail_at(P, at, TH_EINVAL,
						       "invalid time offset %c%02d:%02d", c, oh, om);
				dt.offset_minutes = (c == '-' ? -1 : 1) * (oh * 60 + om);
				type = TT_DATETIME;
				k += 6;
			}
		}
	} else {
		size_t tl;
		if (time_part(P, 0, &dt, &tl, at))
			return P->code;
		k = tl;
		type = TT_TIME_LOCAL;
	}
	if (!value_end(peek_at(P, k)))
		return fail_at(P, at, TH_EINVAL, "invalid %s: unexpected '%c' after it",
			       tt_type_name(type), peek_at(P, k));
	char *text = th_strndup(P->s + P->i, k);
	if (!text)
		return oom(P);
	P->i += k;
	v->type = (uint8_t)type;
	v->u.dt.dt = dt;
	v->u.dt.text = text;
	return 0;
}

/* ------------------------------------------------------------------ */
/* values                                                              */

static int value(parser *P, tt_value **out, uint16_t depth);
static int keyval(parser *P, tt_value *table);

static int too_deep(parser *P)
{
	return fail_at(P, here(P), TH_ELIMIT, "nesting deeper than %u levels",
		       P->max_depth);
}

static int array(parser *P, tt_value *a)
{
	P->i++; /* '[' */
	for (;;) {
		if (skip_ws_nl(P))
			return P->code;
		if (peek(P) == ']') {
			P->i++;
			return 0;
		}
		tt_value *e = NULL;
		if (value(P, &e, (uint16_t)(a->depth + 1)))
			return P->code;
		if (tt__array_push(a, e)) {
			tt__free(e);
			return oom(P);
		}
		if (skip_ws_nl(P))
			return P->code;
		int c = peek(P);
		if (c == ',') {
			P->i++;
			continue;
		}
		if (c == ']') {
			P->i++;
			return 0;
		}
		char tmp[16];
		return FAIL(P, "expected ',' or ']' in array, found %s",
			    describe(P, tmp, sizeof(tmp)));
	}
}

/* Mark an inline table and the tables dotted keys made inside it sealed. */
static void seal(tt_value *t)
{
	t->flags |= TT_F_INLINE;
	for (size_t j = 0; j < t->u.tab.len; j++) {
		tt_value *c = t->u.tab.kv[j].val;
		if (c->type == TT_TABLE && !(c->flags & TT_F_INLINE))
			seal(c);
	}
}

static int inline_table(parser *P, tt_value *t)
{
	P->i++; /* '{' */
	skip_ws(P);
	if (peek(P) == '}') {
		P->i++;
		seal(t);
		return 0;
	}
	for (;;) {
		if (at_newline(P))
			return FAIL(P, "newline not allowed in an inline table");
		if (peek(P) == '}')
			return FAIL(P, "trailing comma not allowed in an inline table");
		if (keyval(P, t))
			return P->code;
		skip_ws(P);
		int c = peek(P);
		if (c == ',') {
			P->i++;
			skip_ws(P);
			continue;
		}
		if (c == '}') {
			P->i++;
			seal(t);
			return 0;
		}
		if (at_newline(P))
			return FAIL(P, "newline not allowed in an inline table");
		char tmp[16];
		return FAIL(P, "expected ',' or '}' in inline table, found %s",
			    describe(P, tmp, sizeof(tmp)));
	}
}

static bool word(parser *P, const char *w)
{
	size_t n = strlen(w);
	return P->i + n <= P->n && memcmp(P->s + P->i, w, n) == 0 &&
	       value_end(peek_at(P, n));
}

static int value(parser *P, tt_value **out, uint16_t depth)
{
	pos at = here(P);
	if (depth > P->max_depth)
		return too_deep(P);
	int c = peek(P);
	tt_value *v = tt__new(TT_STRING, at.line, at.col, depth);
	if (!v)
		return oom(P);
	int rc = 0;
	if (c == '"' || c == '\'') {
		buf b = { 0 };
		rc = string_any(P, &b, true);
		if (rc)
			th_free(b.p);
		else
			v->u.str.s = b.p, v->u.str.len = b.len;
	} else if (c == '[') {
		v->type = TT_ARRAY;
		v->flags = TT_F_INLINE;
		rc = array(P, v);
	} else if (c == '{') {
		v->type = TT_TABLE;
		rc = inline_table(P, v);
	} else if (word(P, "true") || word(P, "false")) {
		v->type = TT_BOOL;
		v->u.b = c == 't';
		P->i += v->u.b ? 4 : 5;
	} else if (is_digit(c) &&
		   ((is_digit(peek_at(P, 1)) && peek_at(P, 2) == ':') ||
		    (is_digit(peek_at(P, 1)) && is_digit(peek_at(P, 2)) &&
		     is_digit(peek_at(P, 3)) && peek_at(P, 4) == '-'))) {
		rc = datetime(P, v, at);
	} else if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n') {
		size_t start = P->i;
		while (P->i < P->n) {
			int d = peek(P);
			if (!(is_bare(d) || d == '.' || d == '+'))
				break;
			P->i++;
		}
		rc = number(P, P->s + start, P->i - start, at, v);
		if (!rc && !value_end(peek(P))) {
			char tmp[16];
			rc = FAIL(P, "unexpected %s after number", describe(P, tmp, sizeof(tmp)));
		}
	} else if (c < 0 || c == '\n' || c == '\r' || c == '#') {
		rc = FAIL(P, "expected a value");
	} else {
		char tmp[16];
		rc = FAIL(P, "expected a value, found %s (strings need quotes)",
			  describe(P, tmp, sizeof(tmp)));
	}
	if (rc) {
		tt__free(v);
		return P->code ? P->code : rc;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* key/value pairs and headers                                         */

/* A new empty table under t at key part kp. */
static tt_value *child_table(parser *P, tt_value *t, const keypart *kp,
			     uint8_t flags)
{
	if (t->depth + 1 > (int)P->max_depth) {
		fail_at(P, kp->at, TH_ELIMIT, "nesting deeper than %u levels",
			P->max_depth);
		return NULL;
	}
	tt_value *c = tt__new(TT_TABLE, kp->at.line, kp->at.col,
			      (uint16_t)(t->depth + 1));
	if (!c) {
		oom(P);
		return NULL;
	}
	c->flags = flags;
	if (tt__table_put(t, kp->s, kp->len, c)) {
		tt__free(c);
		oom(P);
		return NULL;
	}
	return c;
}

static int keyval(parser *P, tt_value *table)
{
	keypath k = { 0 };
	char kt[256];
	tt_value *v = NULL;
	if (key_parse(P, &k))
		goto out;
	if (peek(P) != '=') {
		char tmp[16];
		FAIL(P, "expected '=' after key '%s', found %s",
		     key_text(&k, k.n, kt, sizeof(kt)), describe(P, tmp, sizeof(tmp)));
		goto out;
	}
	P->i++;
	skip_ws(P);
	/* Walk the dotted parts: rule 3. */
	tt_value *t = table;
	for (size_t j = 0; j + 1 < k.n; j++) {
		tt_value *c = tt_getn(t, k.p[j].s, k.p[j].len);
		if (!c) {
			c = child_table(P, t, &k.p[j], TT_F_DOTTED);
			if (!c)
				goto out;
		} else if (c->type != TT_TABLE) {
			fail_at(P, k.p[j].at, TH_EINVAL, "key '%s' is already a %s, not a table",
				full_key(P, table, &k, j + 1, kt, sizeof(kt)), tt_type_name(c->type));
			goto out;
		} else if (c->flags & TT_F_INLINE) {
			fail_at(P, k.p[j].at, TH_EINVAL,
				"cannot add keys to inline table '%s'",
				full_key(P, table, &k, j + 1, kt, sizeof(kt)));
			goto out;
		} else if (!(c->flags & TT_F_DOTTED)) {
			fail_at(P, k.p[j].at, TH_EINVAL,
				"cannot add to table '%s' with a dotted key: it was defined by a [header]",
				full_key(P, table, &k, j + 1, kt, sizeof(kt)));
			goto out;
		}
		t = c;
	}
	keypart *last = &k.p[k.n - 1];
	if (tt_getn(t, last->s, last->len)) {
		fail_at(P, last->at, TH_EINVAL, "duplicate key '%s'",
			full_key(P, table, &k, k.n, kt, sizeof(kt)));
		goto out;
	}
	if (value(P, &v, (uint16_t)(t->depth + 1)))
		goto out;
	if (tt__table_put(t, last->s, last->len, v)) {
		tt__free(v);
		oom(P);
		goto out;
	}
out:
	keypath_release(&k);
	return P->code;
}

static int header(parser *P)
{
	pos at = here(P);
	bool aot = peek_at(P, 1) == '[';
	P->i += aot ? 2 : 1;
	skip_ws(P);
	keypath k = { 0 };
	char kt[256];
	if (key_parse(P, &k))
		goto out;
	if (aot ? !(peek(P) == ']' && peek_at(P, 1) == ']') : peek(P) != ']') {
		char tmp[16];
		FAIL(P, "expected '%s' to close the table header, found %s",
		     aot ? "]]" : "]", describe(P, tmp, sizeof(tmp)));
		goto out;
	}
	P->i += aot ? 2 : 1;
	/* Walk the parents: rule 2. */
	tt_value *t = P->root;
	for (size_t j = 0; j + 1 < k.n; j++) {
		tt_value *c = tt_getn(t, k.p[j].s, k.p[j].len);
		if (!c) {
			c = child_table(P, t, &k.p[j], TT_F_IMPLICIT);
			if (!c)
				goto out;
		} else if (c->type == TT_ARRAY && (c->flags & TT_F_AOT)) {
			c = c->u.arr.v[c->u.arr.len - 1];
		} else if (c->type != TT_TABLE) {
			fail_at(P, k.p[j].at, TH_EINVAL, "key '%s' is already a %s, not a table",
				key_text(&k, j + 1, kt, sizeof(kt)), tt_type_name(c->type));
			goto out;
		} else if (c->flags & TT_F_INLINE) {
			fail_at(P, k.p[j].at, TH_EINVAL, "cannot extend inline table '%s'",
				key_text(&k, j + 1, kt, sizeof(kt)));
			goto out;
		}
		t = c;
	}
	keypart *last = &k.p[k.n - 1];
	tt_value *c = tt_getn(t, last->s, last->len);
	key_text(&k, k.n, kt, sizeof(kt));
	snprintf(P->cur_name, sizeof(P->cur_name), "%s", kt);
	if (aot) { /* rule 4 */
		if (!c) {
			c = tt__new(TT_ARRAY, at.line, at.col, (uint16_t)(t->depth + 1));
			if (!c) {
				oom(P);
				goto out;
			}
			c->flags = TT_F_AOT;
			if (tt__table_put(t, last->s, last->len, c)) {
				tt__free(c);
				oom(P);
				goto out;
			}
		} else if (c->type != TT_ARRAY || !(c->flags & TT_F_AOT)) {
			fail_at(P, at, TH_EINVAL, "cannot define array of tables '%s': %s",
				kt, c->type == TT_ARRAY ? "it is a static array"
							: "the key is already defined");
			goto out;
		}
		if (c->depth + 1 > (int)P->max_depth) {
			too_deep(P);
			goto out;
		}
		tt_value *e = tt__new(TT_TABLE, at.line, at.col, (uint16_t)(c->depth + 1));
		if (!e) {
			oom(P);
			goto out;
		}
		e->flags = TT_F_DEFINED;
		if (tt__array_push(c, e)) {
			tt__free(e);
			oom(P);
			goto out;
		}
		P->cur = e;
	} else { /* rule 1 */
		if (!c) {
			c = child_table(P, t, last, TT_F_DEFINED);
			if (!c)
				goto out;
			c->line = at.line;
			c->col = at.col;
		} else if (c->type == TT_TABLE && c->flags == TT_F_IMPLICIT) {
			c->flags = TT_F_DEFINED;
			c->line = at.line;
			c->col = at.col;
		} else {
			fail_at(P, at, TH_EINVAL, "%s '%s' is already defined",
				c->type == TT_TABLE ? "table" : "key", kt);
			goto out;
		}
		P->cur = c;
	}
out:
	keypath_release(&k);
	return P->code;
}

static int document(parser *P)
{
	if (P->n >= 3 && memcmp(P->s, "\xEF\xBB\xBF", 3) == 0) {
		P->i = 3;
		P->line_start = 3;
	}
	while (!P->code) {
		skip_ws(P);
		int c = peek(P);
		if (c < 0)
			break;
		if (c == '#') {
			if (!skip_comment(P))
				end_of_line(P, "comment");
		} else if (at_newline(P)) {
			eat_newline(P);
		} else if (c == '[') {
			if (!header(P))
				end_of_line(P, "table header");
		} else if (c == '\r') {
			FAIL(P, "carriage return not followed by newline");
		} else {
			if (!keyval(P, P->cur))
				end_of_line(P, "value");
		}
	}
	return P->code;
}

int tt_parse(const char *src, size_t len, const tt_options *opt, tt_value **out,
	     tt_where *where, th_err *err)
{
	parser P = { 0 };
	size_t max_bytes = opt && opt->max_bytes ? opt->max_bytes : TT_DEFAULT_MAX_BYTES;
	P.max_depth = opt && opt->max_depth ? opt->max_depth : TT_DEFAULT_MAX_DEPTH;
	if (P.max_depth > 1000)
		P.max_depth = 1000; /* keeps recursion within a thread's stack */
	P.s = src;
	P.n = len;
	P.line = 1;
	P.cache_off = 0;
	P.ccol = 1;
	if (out)
		*out = NULL;
	if (where) {
		where->line = where->col = 0;
		where->what[0] = '\0';
	}
	if (!src && len)
		return th_err_set(err, TH_EINVAL, "no input");
	if (len > max_bytes) {
		fail_at(&P, (pos){ 0, 0 }, TH_ELIMIT,
			"document is %zu bytes, more than the limit of %zu", len,
			max_bytes);
	} else if (!check_utf8(&P)) {
		P.root = tt__new(TT_TABLE, 1, 1, 0);
		if (!P.root)
			fail_at(&P, (pos){ 0, 0 }, TH_ENOMEM, "out of memory");
		else {
			P.root->flags = TT_F_DEFINED;
			P.cur = P.root;
			document(&P);
		}
	}
	if (P.code) {
		tt__free(P.root);
		if (P.code == TH_ENOMEM)
			P.epos = (pos){ 0, 0 };
		if (where) {
			where->line = P.epos.line;
			where->col = P.epos.col;
			snprintf(where->what, sizeof(where->what), "%s", P.emsg);
		}
		if (P.epos.line)
			return th_err_set(err, P.code, "line %u, column %u: %s",
					  P.epos.line, P.epos.col, P.emsg);
		return th_err_set(err, P.code, "%s", P.emsg);
	}
	if (out)
		*out = P.root;
	else
		tt__free(P.root);
	return 0;
}
