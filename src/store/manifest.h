/*
 * manifest.h - the manifest of a chunked object (prefix ths__mf_).
 *
 * Format (all integers little-endian):
 *   offset  size  field
 *        0     8  magic "\0THSMF1\n"
 *        8     8  content size: the sum of the chunk sizes
 *       16     4  chunk count n (>= 1)
 *       20     4  zero
 *       24  36*n  per chunk, in content order: SHA-256 (32) and size (4),
 *                 1 <= size <= THS_CHUNK_MAX
 * Nothing may follow the last entry. A manifest is itself an object named
 * by the SHA-256 of these bytes.
 */
#ifndef THS_MANIFEST_H
#define THS_MANIFEST_H

#include "base/base.h"
#include "theater/store.h"

#define THS__MF_MAGIC "\0THSMF1\n"
#define THS__MF_MAGIC_LEN 8
#define THS__MF_HDR 24
#define THS__MF_ENTRY 36

struct ths__mf_chunk {
	ths_hash hash;
	uint32_t size;
	uint64_t offset; /* of the chunk within the content (not stored) */
};

typedef struct ths__manifest {
	uint64_t total;
	size_t n;
	struct ths__mf_chunk *chunks; /* owned */
} ths__manifest;

/* True if buf starts with the manifest magic. */
bool ths__mf_has_magic(const uint8_t *buf, size_t len);
/* Parses and checks a manifest; *out owns a new chunk array (release with
 * ths__mf_release). TH_EINVAL (message says what is wrong) if malformed. */
int ths__mf_parse(const uint8_t *buf, size_t len, ths__manifest *out,
		  th_err *err);
void ths__mf_release(ths__manifest *m);

/* Builds a manifest incrementally. */
typedef struct ths__mf_builder {
	uint8_t *buf;
	size_t len, cap;
	uint64_t total;
	uint32_t n;
} ths__mf_builder;

int ths__mf_builder_init(ths__mf_builder *b);
int ths__mf_builder_add(ths__mf_builder *b, const ths_hash *h, uint32_t size);
/* Fills in the header; the bytes are b->buf[0..b->len). */
void ths__mf_builder_finish(ths__mf_builder *b);
void ths__mf_builder_release(ths__mf_builder *b);

#endif
