/*
 * store.h - Theater's content-addressed Store (prefix ths_).
 *
 * Objects and their lifetimes
 *   ths_store   A handle on one store root directory (for the CLI,
 *               $THEATER_HOME/store). It holds every named store ("default"
 *               always exists; ths_store_new makes more), one shared pool
 *               of content, an in-memory cache and the runtime's pins.
 *               Thread-safe: any number of threads may use one handle at
 *               once; several processes may open the same root (puts,
 *               labels and GC exclude each other with file locks).
 *   ths_reader  A sequential reader of one object (streaming get). Used by
 *               one thread at a time; valid until ths_reader_close, which
 *               must happen before ths_close.
 *
 * Content is named by a 32-byte hash (ths_hash, 64 hex digits in text).
 * Content of at most THS_SMALL_MAX bytes is one object whose hash is plain
 * SHA-256 of the bytes (`sha256sum` agrees). Larger content is split into
 * content-defined chunks and named by the SHA-256 of its manifest (the list
 * of chunk hashes); the same bytes always get the same hash. See
 * docs/store.md and the essay at the top of src/store/store.c.
 *
 * Errors: 0 or a negative TH_E* code; the caller's th_err (may be NULL)
 * gets a message naming the object, label or file involved. Every byte
 * returned by a get has been checked against its hash (TH_ECORRUPT if not).
 */
#ifndef THEATER_STORE_H
#define THEATER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define THS_HASH_LEN 32
#define THS_HEX_LEN 64
/* Content up to this size is stored as one object (no chunking). */
#define THS_SMALL_MAX (64 * 1024)
/* Content-defined chunk sizes (see docs/store.md for why). */
#define THS_CHUNK_MIN (16 * 1024)
#define THS_CHUNK_AVG (64 * 1024)
#define THS_CHUNK_MAX (256 * 1024)
/* Longest label or store id, in bytes. */
#define THS_NAME_MAX 200
/* Name of the store that always exists. */
#define THS_DEFAULT_STORE "default"

typedef struct ths_hash {
	uint8_t b[THS_HASH_LEN];
} ths_hash;

typedef struct ths_store ths_store;
typedef struct ths_reader ths_reader;

enum ths_sync {
	THS_SYNC_FULL = 0, /* fsync before a put or label change returns */
	THS_SYNC_NONE = 1  /* leave flushing to the OS (tests, benchmarks) */
};

typedef struct ths_options {
	size_t cache_bytes;   /* in-memory cache budget; 0 = 64 MiB */
	int sync;             /* enum ths_sync */
	unsigned readahead;   /* chunks prefetched ahead of a sequential
			       * reader; 0 = 4 */
	bool single_thread;   /* never hash a big put's or get's chunks on
			       * a helper thread (default: do, from 4 MiB
			       * up; for a get, content that streams past
			       * the cache) */
} ths_options;

/* Progress callback for long operations: done and total (0 if unknown)
 * in bytes. */
typedef void (*ths_progress_fn)(void *ud, uint64_t done, uint64_t total);

/* ---- Opening ----------------------------------------------------------- */

/* Opens (creating if missing) the store root directory `root`. opt may be
 * NULL. *out is valid until ths_close. */
TH_API int ths_open(const char *root, const ths_options *opt, ths_store **out,
		    th_err *err);
/* Closes the handle; accepts NULL. */
TH_API void ths_close(ths_store *s);

/* ---- Hashes ------------------------------------------------------------ */

/* Parses exactly 64 hex digits. TH_EINVAL with a message otherwise. */
TH_API int ths_hash_parse(const char *text, ths_hash *out, th_err *err);
/* Writes 64 lowercase hex digits and a NUL into out. */
TH_API void ths_hash_hex(const ths_hash *h, char out[THS_HEX_LEN + 1]);

/* ---- Content ----------------------------------------------------------- */

/* Stores len bytes; *out gets their hash. Identical content is stored
 * once. The object is durable (under THS_SYNC_FULL) when this returns. */
TH_API int ths_put(ths_store *s, const void *data, size_t len, ths_hash *out,
		   th_err *err);
/* Stores everything readable from fd until EOF, in bounded memory.
 * total_hint (0 = unknown) is only passed on to progress. *size_out (may
 * be NULL) gets the number of bytes stored. */
TH_API int ths_put_fd(ths_store *s, int fd, uint64_t total_hint,
		      ths_progress_fn progress, void *ud, ths_hash *out,
		      uint64_t *size_out, th_err *err);
/* Reads a whole object into a new buffer (free with ths_buf_free).
 * TH_ELIMIT if it is larger than max bytes; TH_ENOTFOUND if absent. */
TH_API int ths_get(ths_store *s, const ths_hash *h, size_t max, uint8_t **data,
		   size_t *len, th_err *err);
/* Frees a buffer returned by ths_get; accepts NULL. */
TH_API void ths_buf_free(void *p);
/* Writes an object's content to fd, streaming. */
TH_API int ths_get_fd(ths_store *s, const ths_hash *h, int fd,
		      ths_progress_fn progress, void *ud, th_err *err);
/* 1 if present, 0 if absent, negative on error. */
TH_API int ths_exists(ths_store *s, const ths_hash *h, th_err *err);
/* Size of the content named by h (for chunked content, the whole). */
TH_API int ths_size(ths_store *s, const ths_hash *h, uint64_t *size,
		    th_err *err);

/* Streaming reader; reads come back verified. */
TH_API int ths_reader_open(ths_store *s, const ths_hash *h, ths_reader **out,
			   th_err *err);
TH_API uint64_t ths_reader_size(const ths_reader *r);
/* Reads up to n bytes into buf; *got = 0 at the end. */
TH_API int ths_reader_read(ths_reader *r, void *buf, size_t n, size_t *got,
			   th_err *err);
TH_API void ths_reader_close(ths_reader *r);

/* ---- Named stores and labels (Theater's store interface) --------------- */

/* new: creates a named store; id gets its NUL-terminated id. */
TH_API int ths_store_new(ths_store *s, char id[THS_NAME_MAX + 1], th_err *err);
/* 0 if the named store exists, TH_ENOTFOUND (or TH_EINVAL) otherwise. */
TH_API int ths_store_check(ths_store *s, const char *store_id, th_err *err);

/* Checks a label or store id: 1..THS_NAME_MAX bytes of A-Z a-z 0-9 and
 * . _ - : @ + =, not starting with '.'. TH_EINVAL says which rule failed. */
TH_API int ths_name_check(const char *what, const char *name, th_err *err);

/* label: points label at h (creating or replacing it). The object must
 * exist. Atomic and durable. */
TH_API int ths_label_set(ths_store *s, const char *store_id, const char *label,
			 const ths_hash *h, th_err *err);
/* get-by-label: TH_ENOTFOUND if the label does not exist. */
TH_API int ths_label_get(ths_store *s, const char *store_id, const char *label,
			 ths_hash *out, th_err *err);
/* remove-label: TH_ENOTFOUND if it did not exist. */
TH_API int ths_label_remove(ths_store *s, const char *store_id,
			    const char *label, th_err *err);
/* Compare-and-swap: changes the label only if its current value is
 * *expected (expected NULL: only if the label does not exist). desired NULL
 * removes it. TH_ECONFLICT if the current value differs. */
TH_API int ths_label_cas(ths_store *s, const char *store_id, const char *label,
			 const ths_hash *expected, const ths_hash *desired,
			 th_err *err);
/* replace-at-label: points an existing label at h (TH_ENOTFOUND if the
 * label does not exist). */
TH_API int ths_label_replace(ths_store *s, const char *store_id,
			     const char *label, const ths_hash *h, th_err *err);
/* store-at-label: put + label in one call. */
TH_API int ths_store_at_label(ths_store *s, const char *store_id,
			      const char *label, const void *data, size_t len,
			      ths_hash *out, th_err *err);
/* replace-content-at-label: put + replace (label must exist). */
TH_API int ths_replace_content_at_label(ths_store *s, const char *store_id,
					const char *label, const void *data,
					size_t len, ths_hash *out, th_err *err);

typedef struct ths_label_entry {
	char name[THS_NAME_MAX + 1];
	ths_hash hash;
} ths_label_entry;

/* list-labels: *out (free with ths_buf_free) gets *n entries sorted by
 * name. */
TH_API int ths_label_list(ths_store *s, const char *store_id,
			  ths_label_entry **out, size_t *n, th_err *err);

typedef struct ths_content_entry {
	ths_hash hash;
	uint64_t size;    /* content size (whole, for chunked content) */
	uint64_t disk;    /* bytes of the object file itself */
	bool chunked;     /* a manifest of chunks */
} ths_content_entry;

/* list-all-content: with a store id, the distinct content its labels
 * refer to; with store_id NULL, every object file in the root (chunks and
 * manifests included). Free *out with ths_buf_free. */
TH_API int ths_content_list(ths_store *s, const char *store_id,
			    ths_content_entry **out, size_t *n, th_err *err);
/* calculate-total-size: with a store id, the summed content size of what
 * its labels refer to; with NULL, the bytes of every object on disk. */
TH_API int ths_total_size(ths_store *s, const char *store_id, uint64_t *bytes,
			  th_err *err);

/* ---- Pins (the runtime's references) ------------------------------------ */

/* A pin keeps content (and its chunks) alive through GC in this process,
 * like a label. Pins are counted: n pins need n unpins. In memory only. */
TH_API int ths_pin(ths_store *s, const ths_hash *h, th_err *err);
/* TH_ENOTFOUND if h was not pinned. */
TH_API int ths_unpin(ths_store *s, const ths_hash *h, th_err *err);

/* ---- Maintenance --------------------------------------------------------- */

typedef struct ths_gc_stats {
	uint64_t objects;        /* object files seen */
	uint64_t live;           /* reachable from labels, pins or grace */
	uint64_t removed;        /* object files deleted */
	uint64_t removed_bytes;
	uint64_t tmp_removed;    /* leftover temporary files deleted */
	uint64_t missing;        /* referenced objects that were absent */
} ths_gc_stats;

/* Mark-and-sweep: deletes every object not reachable from a label, a pin
 * or an object written less than grace_s seconds before the GC started. */
TH_API int ths_gc(ths_store *s, uint64_t grace_s, ths_gc_stats *stats,
		  th_err *err);

/* One problem found by verify: path of the file and what is wrong. */
typedef void (*ths_verify_fn)(void *ud, const char *path, const char *problem);

typedef struct ths_verify_stats {
	uint64_t objects;
	uint64_t bytes;
	uint64_t bad;        /* problems reported */
} ths_verify_stats;

/* Re-hashes every object, checks every manifest's chunks and every label's
 * target. Returns 0 if all is well, TH_ECORRUPT if problems were reported
 * (each through report), other codes if verification itself failed. */
TH_API int ths_verify(ths_store *s, ths_verify_fn report, void *ud,
		      ths_progress_fn progress, void *pud,
		      ths_verify_stats *stats, th_err *err);

typedef struct ths_stats {
	uint64_t cache_hits, cache_misses, cache_evictions;
	uint64_t cache_bytes, cache_budget;
	uint64_t readahead;       /* chunk prefetches issued */
	uint64_t objects_written; /* new object files made by this handle */
	uint64_t bytes_written;   /* bytes in those files */
	uint64_t pins;            /* distinct pinned hashes */
} ths_stats;

TH_API void ths_get_stats(ths_store *s, ths_stats *out);

#ifdef __cplusplus
}
#endif
#endif
