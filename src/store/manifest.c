/*
 * manifest.c - encoding and checking chunk manifests (format in
 * manifest.h).
 */
#include "store/manifest.h"

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

bool ths__mf_has_magic(const uint8_t *buf, size_t len)
{
	return len >= THS__MF_MAGIC_LEN &&
	       !memcmp(buf, THS__MF_MAGIC, THS__MF_MAGIC_LEN);
}

int ths__mf_parse(const uint8_t *buf, size_t len, ths__manifest *out,
		  th_err *err)
{
	out->total = 0;
	out->n = 0;
	out->chunks = NULL;
	if (len < THS__MF_HDR || !ths__mf_has_magic(buf, len))
		return th_err_set(err, TH_EINVAL, "not a manifest (no header)");
	uint64_t total = get_le(buf + 8, 8);
	uint64_t n = get_le(buf + 16, 4);
	if (get_le(buf + 20, 4) != 0)
		return th_err_set(err, TH_EINVAL,
				  "manifest: reserved field is not zero");
	if (n == 0 || (len - THS__MF_HDR) / THS__MF_ENTRY != n ||
	    (len - THS__MF_HDR) % THS__MF_ENTRY != 0)
		return th_err_set(err, TH_EINVAL,
				  "manifest: %zu bytes do not hold %llu entries",
				  len, (unsigned long long)n);
	struct ths__mf_chunk *c = th_calloc((size_t)n, sizeof *c);
	if (!c)
		return th_err_set(err, TH_ENOMEM, "out of memory (manifest)");
	uint64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = buf + THS__MF_HDR + i * THS__MF_ENTRY;
		memcpy(c[i].hash.b, e, THS_HASH_LEN);
		c[i].size = (uint32_t)get_le(e + THS_HASH_LEN, 4);
		c[i].offset = off;
		if (c[i].size == 0 || c[i].size > THS_CHUNK_MAX) {
			th_free(c);
			return th_err_set(err, TH_EINVAL,
					  "manifest: chunk %zu has size %u", i,
					  (unsigned)get_le(e + THS_HASH_LEN, 4));
		}
		off += c[i].size;
	}
	if (off != total) {
		th_free(c);
		return th_err_set(err, TH_EINVAL,
				  "manifest: chunks sum to %llu, header says %llu",
				  (unsigned long long)off,
				  (unsigned long long)total);
	}
	out->total = total;
	out->n = (size_t)n;
	out->chunks = c;
	return 0;
}

void ths__mf_release(ths__manifest *m)
{
	th_free(m->chunks);
	m->chunks = NULL;
	m->n = 0;
}

int ths__mf_builder_init(ths__mf_builder *b)
{
	b->cap = 4096;
	b->buf = th_malloc(b->cap);
	b->len = THS__MF_HDR;
	b->total = 0;
	b->n = 0;
	return b->buf ? 0 : TH_ENOMEM;
}

int ths__mf_builder_add(ths__mf_builder *b, const ths_hash *h, uint32_t size)
{
	if (b->n == UINT32_MAX)
		return TH_ELIMIT;
	if (b->len + THS__MF_ENTRY > b->cap) {
		size_t ncap;
		if (!th_mul_ok(b->cap, 2, &ncap))
			return TH_ENOMEM;
		uint8_t *nb = th_realloc(b->buf, ncap);
		if (!nb)
			return TH_ENOMEM;
		b->buf = nb;
		b->cap = ncap;
	}
	memcpy(b->buf + b->len, h->b, THS_HASH_LEN);
	put_le(b->buf + b->len + THS_HASH_LEN, size, 4);
	b->len += THS__MF_ENTRY;
	b->total += size;
	b->n++;
	return 0;
}

void ths__mf_builder_finish(ths__mf_builder *b)
{
	memcpy(b->buf, THS__MF_MAGIC, THS__MF_MAGIC_LEN);
	put_le(b->buf + 8, b->total, 8);
	put_le(b->buf + 16, b->n, 4);
	put_le(b->buf + 20, 0, 4);
}

void ths__mf_builder_release(ths__mf_builder *b)
{
	th_free(b->buf);
	b->buf = NULL;
	b->len = b->cap = 0;
}
