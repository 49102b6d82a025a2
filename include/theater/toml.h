/*
 * toml.h - a TOML 1.0 parser (https://toml.io/en/v1.0.0), written for
 * Theater's manifests and tested against toml-test's 1.0 file list.
 *
 * Ownership: tt_parse returns the root table of a tree that the caller owns
 * and frees with one call, tt_free(root). Every value, key and string in the
 * tree belongs to it; pointers returned by the accessors below stay valid
 * until tt_free. The tree is read-only for callers.
 *
 * Errors: tt_parse returns 0 or a negative TH_E* code (TH_EINVAL for a
 * syntax or semantic error, TH_ELIMIT for a size or depth limit, TH_ENOMEM).
 * err->msg reads "line 3, column 7: expected '=' after key"; the optional
 * tt_where receives the same position and the message without it, so that
 * callers can prefix a file name ("manifest.toml:3:7: ...").
 * Lines and columns count from 1; a column counts characters (UTF-8 code
 * points), a tab is one column.
 *
 * Hostile input: the document size (tt_options.max_bytes) and the nesting
 * depth of tables and arrays (tt_options.max_depth) are bounded; tables
 * keep a hash index, so a document of n keys parses in O(n) expected time.
 */
#ifndef THEATER_TOML_H
#define THEATER_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_type {
	TT_TABLE = 1,
	TT_ARRAY,
	TT_STRING,
	TT_INTEGER,
	TT_FLOAT,
	TT_BOOL,
	TT_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
	TT_DATETIME_LOCAL, /* local date-time: 1979-05-27T07:32:00 */
	TT_DATE_LOCAL,     /* local date: 1979-05-27 */
	TT_TIME_LOCAL      /* local time: 07:32:00 */
} tt_type;

/* The fields of a date/time value; those its type lacks are zero. */
typedef struct tt_datetime {
	int year, month, day;       /* date part (DATETIME*, DATE_LOCAL) */
	int hour, minute, second;   /* time part (DATETIME*, TIME_LOCAL) */
	uint32_t nanosecond;        /* fraction, truncated to 9 digits */
	int frac_digits;            /* digits written after '.', 0 = none */
	int offset_minutes;         /* TT_DATETIME only: east of UTC; Z = 0 */
} tt_datetime;

typedef struct tt_value tt_value;

#define TT_DEFAULT_MAX_BYTES (16u << 20) /* 16 MiB */
#define TT_DEFAULT_MAX_DEPTH 64u

typedef struct tt_options {
	size_t max_bytes;   /* 0 = TT_DEFAULT_MAX_BYTES */
	unsigned max_depth; /* tables/arrays nested; 0 = TT_DEFAULT_MAX_DEPTH */
} tt_options;

typedef struct tt_where {
	unsigned line, col; /* 0 when the error has no position (ENOMEM...) */
	char what[TH_ERR_MSG_MAX]; /* the message without "line L, column C: " */
} tt_where;

/* Parse len bytes of src (need not be NUL-terminated). On success *out is
 * the root table, owned by the caller (tt_free). opt, where and err may be
 * NULL. On failure *out is NULL and nothing is leaked. */
TH_API int tt_parse(const char *src, size_t len, const tt_options *opt,
		    tt_value **out, tt_where *where, th_err *err);

/* Free a tree returned by tt_parse. Accepts NULL. Only roots may be freed. */
TH_API void tt_free(tt_value *root);

/* ---- reading the tree (all accept NULL and then return 0/NULL/false) ---- */

TH_API tt_type tt_type_of(const tt_value *v);
/* Static name: "table", "array", "string", "integer", "float", "boolean",
 * "offset date-time", "local date-time", "local date", "local time". */
TH_API const char *tt_type_name(tt_type t);
/* Where the value starts in the document (for a table: where it was
 * defined, by header, dotted key or inline table). */
TH_API unsigned tt_line(const tt_value *v);
TH_API unsigned tt_col(const tt_value *v);

/* Strings: NUL-terminated, and *len (if not NULL) gets the byte length,
 * which counts any NUL written as \u0000. NULL if v is not a string. */
TH_API const char *tt_str(const tt_value *v, size_t *len);
TH_API int64_t tt_int(const tt_value *v);     /* 0 unless TT_INTEGER */
TH_API double tt_float(const tt_value *v);    /* 0 unless TT_FLOAT */
TH_API bool tt_bool(const tt_value *v);       /* false unless TT_BOOL */
/* Date/time fields, and the value's text exactly as written. */
TH_API const tt_datetime *tt_dt(const tt_value *v);
TH_API const char *tt_dt_text(const tt_value *v);

/* Arrays and tables: number of elements / keys, in document order. */
TH_API size_t tt_len(const tt_value *v);
TH_API tt_value *tt_at(const tt_value *arr_or_table, size_t i);
/* The i-th key of a table; *len gets its byte length (keys may hold NUL). */
TH_API const char *tt_key_at(const tt_value *table, size_t i, size_t *len);
/* Look a key up (NUL-terminated name, one key, no dots). NULL if absent. */
TH_API tt_value *tt_get(const tt_value *table, const char *key);
TH_API tt_value *tt_getn(const tt_value *table, const char *key, size_t len);
/* Walk a dotted path of bare keys: tt_path(root, "limits.memory_pages"). */
TH_API tt_value *tt_path(const tt_value *table, const char *dotted);

/* JSON text of a value (tables as objects, date/times as their text in a
 * string, nan/inf as strings "nan"/"inf"/"-inf"). Returns a NUL-terminated
 * buffer the caller frees with tt_json_free, or NULL on out of memory.
 * *len (optional) gets its length. */
TH_API char *tt_to_json(const tt_value *v, size_t *len);
TH_API void tt_json_free(char *json);

#ifdef __cplusplus
}
#endif
#endif
