/*
 * toml_tree.c - the TOML value tree: construction, lookup, accessors, free.
 *
 * Tables keep their keys in document order in an array; once a table holds
 * more than TT_INDEX_MIN keys it also keeps an open-addressing hash index
 * (kv position + 1, load factor at most 1/2), so that a hostile document
 * with many keys in one table still parses in linear expected time.
 */
#include "toml/toml_tree.h"

#define TT_INDEX_MIN 8

static uint32_t key_hash(const char *k, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)k[i];
		h *= 16777619u;
	}
	return h;
}

tt_value *tt__new(tt_type t, uint32_t line, uint32_t col, uint16_t depth)
{
	tt_value *v = th_calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->type = (uint8_t)t;
	v->line = line;
	v->col = col;
	v->depth = depth;
	return v;
}

void tt__free(tt_value *v)
{
	if (!v)
		return;
	switch (v->type) {
	case TT_STRING:
		th_free(v->u.str.s);
		break;
	case TT_DATETIME:
	case TT_DATETIME_LOCAL:
	case TT_DATE_LOCAL:
	case TT_TIME_LOCAL:
		th_free(v->u.dt.text);
		break;
	case TT_ARRAY:
		/* Recursion is bounded by the parser's depth limit. */
		for (size_t i = 0; i < v->u.arr.len; i++)
			tt__free(v->u.arr.v[i]);
		th_free(v->u.arr.v);
		break;
	case TT_TABLE:
		for (size_t i = 0; i < v->u.tab.len; i++) {
			th_free(v->u.tab.kv[i].key);
			tt__free(v->u.tab.kv[i].val);
		}
		th_free(v->u.tab.kv);
		th_free(v->u.tab.idx);
		break;
	default:
		break;
	}
	th_free(v);
}

void tt_free(tt_value *root)
{
	tt__free(root);
}

static void index_insert(uint32_t *idx, size_t icap, uint32_t hash, size_t pos)
{
	size_t m = icap - 1;
	for (size_t j = hash & m;; j = (j + 1) & m) {
		if (!idx[j]) {
			idx[j] = (uint32_t)(pos + 1);
			return;
		}
	}
}

static int index_rebuild(tt_value *t, size_t icap)
{
	uint32_t *idx = th_calloc(icap, sizeof(*idx));
	if (!idx)
		return TH_ENOMEM;
	for (size_t i = 0; i < t->u.tab.len; i++)
		index_insert(idx, icap, t->u.tab.kv[i].hash, i);
	th_free(t->u.tab.idx);
	t->u.tab.idx = idx;
	t->u.tab.icap = icap;
	return 0;
}

int tt__table_put(tt_value *t, const char *key, size_t klen, tt_value *val)
{
	if (t->u.tab.len == t->u.tab.cap) {
		size_t cap = t->u.tab.cap ? t->u.tab.cap * 2 : 4, bytes;
		if (cap > UINT32_MAX - 1 || !th_mul_ok(cap, sizeof(tt_kv), &bytes))
			return TH_ELIMIT;
		tt_kv *kv = th_realloc(t->u.tab.kv, bytes);
		if (!kv)
			return TH_ENOMEM;
		t->u.tab.kv = kv;
		t->u.tab.cap = cap;
	}
	size_t n = t->u.tab.len + 1;
	if (n > TT_INDEX_MIN && n * 2 > t->u.tab.icap) {
		size_t icap = t->u.tab.icap ? t->u.tab.icap * 2 : 32;
		while (icap < n * 2)
			icap *= 2;
		int rc = index_rebuild(t, icap);
		if (rc)
			return rc;
	}
	char *k = th_malloc(klen + 1);
	if (!k)
		return TH_ENOMEM;
	memcpy(k, key, klen);
	k[klen] = '\0';
	tt_kv *e = &t->u.tab.kv[t->u.tab.len];
	e->key = k;
	e->klen = klen;
	e->hash = key_hash(key, klen);
	e->val = val;
	if (t->u.tab.idx)
		index_insert(t->u.tab.idx, t->u.tab.icap, e->hash, t->u.tab.len);
	t->u.tab.len = n;
	return 0;
}

int tt__array_push(tt_value *a, tt_value *val)
{
	if (a->u.arr.len == a->u.arr.cap) {
		size_t cap = a->u.arr.cap ? a->u.arr.cap * 2 : 4, bytes;
		if (!th_mul_ok(cap, sizeof(tt_value *), &bytes))
			return TH_ELIMIT;
		tt_value **v = th_realloc(a->u.arr.v, bytes);
		if (!v)
			return TH_ENOMEM;
		a->u.arr.v = v;
		a->u.arr.cap = cap;
	}
	a->u.arr.v[a->u.arr.len++] = val;
	return 0;
}

tt_value *tt_getn(const tt_value *t, const char *key, size_t klen)
{
	if (!t || t->type != TT_TABLE || !key)
		return NULL;
	uint32_t h = key_hash(key, klen);
	if (t->u.tab.idx) {
		size_t m = t->u.tab.icap - 1;
		for (size_t j = h & m; t->u.tab.idx[j]; j = (j + 1) & m) {
			const tt_kv *e = &t->u.tab.kv[t->u.tab.idx[j] - 1];
			if (e->hash == h && e->klen == klen &&
			    memcmp(e->key, key, klen) == 0)
				return e->val;
		}
		return NULL;
	}
	for (size_t i = 0; i < t->u.tab.len; i++) {
		const tt_kv *e = &t->u.tab.kv[i];
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e->val;
	}
	return NULL;
}

tt_value *tt_get(const tt_value *t, const char *key)
{
	return key ? tt_getn(t, key, strlen(key)) : NULL;
}

tt_value *tt_path(const tt_value *t, const char *dotted)
{
	if (!dotted)
		return NULL;
	const tt_value *cur = t;
	for (;;) {
		const char *dot = strchr(dotted, '.');
		size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
		tt_value *next = tt_getn(cur, dotted, n);
		if (!dot || !next)
			return next;
		cur = next;
		dotted = dot + 1;
	}
}

tt_type tt_type_of(const tt_value *v)
{
	return v ? (tt_type)v->type : (tt_type)0;
}

const char *tt_type_name(tt_type t)
{
	switch (t) {
	case TT_TABLE: return "table";
	case TT_ARRAY: return "array";
	case TT_STRING: return "string";
	case TT_INTEGER: return "integer";
	case TT_FLOAT: return "float";
	case TT_BOOL: return "boolean";
	case TT_DATETIME: return "offset date-time";
	case TT_DATETIME_LOCAL: return "local date-time";
	case TT_DATE_LOCAL: return "local date";
	case TT_TIME_LOCAL: return "local time";
	}
	return "nothing";
}

unsigned tt_line(const tt_value *v)
{
	return v ? v->line : 0;
}

unsigned tt_col(const tt_value *v)
{
	return v ? v->col : 0;
}

const char *tt_str(const tt_value *v, size_t *len)
{
	if (!v || v->type != TT_STRING)
		return NULL;
	if (len)
		*len = v->u.str.len;
	return v->u.str.s;
}

int64_t tt_int(const tt_value *v)
{
	return v && v->type == TT_INTEGER ? v->u.i : 0;
}

double tt_float(const tt_value *v)
{
	return v && v->type == TT_FLOAT ? v->u.f : 0.0;
}

bool tt_bool(const tt_value *v)
{
	return v && v->type == TT_BOOL ? v->u.b : false;
}

static bool is_dt(const tt_value *v)
{
	return v && (v->type == TT_DATETIME || v->type == TT_DATETIME_LOCAL ||
		     v->type == TT_DATE_LOCAL || v->type == TT_TIME_LOCAL);
}

const tt_datetime *tt_dt(const tt_value *v)
{
	return is_dt(v) ? &v->u.dt.dt : NULL;
}

const char *tt_dt_text(const tt_value *v)
{
	return is_dt(v) ? v->u.dt.text : NULL;
}

size_t tt_len(const tt_value *v)
{
	if (!v)
		return 0;
	if (v->type == TT_ARRAY)
		return v->u.arr.len;
	if (v->type == TT_TABLE)
		return v->u.tab.len;
	return 0;
}

tt_value *tt_at(const tt_value *v, size_t i)
{
	if (!v)
		return NULL;
	if (v->type == TT_ARRAY)
		return i < v->u.arr.len ? v->u.arr.v[i] : NULL;
	if (v->type == TT_TABLE)
		return i < v->u.tab.len ? v->u.tab.kv[i].val : NULL;
	return NULL;
}

const char *tt_key_at(const tt_value *t, size_t i, size_t *len)
{
	if (!t || t->type != TT_TABLE || i >= t->u.tab.len)
		return NULL;
	if (len)
		*len = t->u.tab.kv[i].klen;
	return t->u.tab.kv[i].key;
}
