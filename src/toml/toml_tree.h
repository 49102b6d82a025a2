/*
 * toml_tree.h (internal) - the value tree behind include/theater/toml.h,
 * shared by the parser (toml_parse.c), the tree (toml_tree.c) and the JSON
 * writer (toml_json.c). Prefix tt__ for internal functions.
 */
#ifndef TH_TOML_TREE_H
#define TH_TOML_TREE_H

#include "base/base.h"
#include "theater/toml.h"

/* Table flags: how a table came to be, which decides how it may be
 * extended later (TOML 1.0 "Table" and "Inline Table" sections). */
enum {
	TT_F_INLINE = 1,   /* inline table (sealed once closed), or static array */
	TT_F_DEFINED = 2,  /* defined by a [header] or [[header]] */
	TT_F_IMPLICIT = 4, /* created as a parent by a header: [a] may follow once */
	TT_F_DOTTED = 8,   /* created by a dotted key (a.b = 1) */
	TT_F_AOT = 16      /* an array of tables built by [[header]] */
};

typedef struct tt_kv {
	char *key; /* NUL-terminated, klen bytes (may contain NUL) */
	size_t klen;
	uint32_t hash;
	tt_value *val;
} tt_kv;

struct tt_value {
	uint8_t type;
	uint8_t flags;
	uint16_t depth; /* containers above this value; root = 0 */
	uint32_t line, col;
	union {
		struct {
			char *s;
			size_t len;
		} str;
		int64_t i;
		double f;
		bool b;
		struct {
			tt_datetime dt;
			char *text;
		} dt;
		struct {
			tt_value **v;
			size_t len, cap;
		} arr;
		struct {
			tt_kv *kv;
			size_t len, cap;
			uint32_t *idx; /* open addressing: kv index + 1, 0 = empty */
			size_t icap;   /* power of two, 0 = no index (few keys) */
		} tab;
	} u;
};

/* A new value of type t (zeroed payload), or NULL on out of memory. */
tt_value *tt__new(tt_type t, uint32_t line, uint32_t col, uint16_t depth);
/* Free a value and everything below it. Accepts NULL. */
void tt__free(tt_value *v);
/* Insert key -> val into table; takes ownership of val only on success.
 * The key is copied. The caller has checked that the key is absent. */
int tt__table_put(tt_value *t, const char *key, size_t klen, tt_value *val);
/* Append to an array; takes ownership of val only on success. */
int tt__array_push(tt_value *a, tt_value *val);

#endif
