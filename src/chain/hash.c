/*
 * hash.c - SHA-256, CRC32C and Merkle trees for the Event Chain.
 *
 * SHA-256 uses OpenSSL's one-shot-context functions (SHA256_Init /
 * Update / Final; libcrypto picks the CPU's SHA instructions). They are
 * marked deprecated in OpenSSL 3 in favour of EVP, but they remain in every
 * build with the deprecated API (Debian's), and for the chain's small
 * inputs (one event: 2-6 compression blocks; one Merkle node: 2) EVP's
 * per-call dispatch cost 20-25% on top of the hashing itself (65 bytes:
 * 141 ns EVP vs 119 ns, 144 bytes: 234 vs 190 ns, measured on this
 * machine). Nothing else in the project depends on the choice.
 *
 * Merkle trees follow RFC 9162 section 2.1 with one difference: the leaves
 * are event hashes used as they are (they are already SHA-256 over a
 * CBOR array, whose first byte 0x87 can never be confused with the 0x01
 * prefix of an inner node). Inner node = SHA-256(0x01 || left || right);
 * a tree of n leaves splits at the largest power of two below n, so odd
 * counts need no duplicated leaves (Bitcoin's duplication allowed two
 * different leaf lists to share a root).
 */
/* Keep SHA256_Init/Update/Final declared without deprecation warnings. */
#define OPENSSL_API_COMPAT 0x10100000L
#include <openssl/sha.h>
#include <pthread.h>

#include "chain/internal.h"

/* A failure here means libcrypto itself is unusable: nothing sensible can
 * continue, so abort rather than return hashes that are not hashes. */
static void sha_fatal(const char *what)
{
	fprintf(stderr, "theater: libcrypto SHA-256 failed: %s\n", what);
	abort();
}

void thx__sha256_lib(const void *p, size_t n, uint8_t out[32])
{
	SHA256_CTX ctx;
	if (!SHA256_Init(&ctx) || !SHA256_Update(&ctx, p, n) || !SHA256_Final(out, &ctx))
		sha_fatal("digest");
}

void thx__merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t buf[65];
	buf[0] = 0x01;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	thx__sha256(buf, sizeof buf, out);
}

/* Largest power of two strictly below n (n >= 2). */
static size_t split_point(size_t n)
{
	size_t k = 1;
	while (k * 2 < n)
		k *= 2;
	return k;
}

void thx__merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return;
	}
	size_t k = split_point(n);
	uint8_t a[32], b[32];
	thx__merkle_root(leaves, k, a);
	thx__merkle_root(leaves + k, n - k, b);
	thx__merkle_node(a, b, out);
}

size_t thx__merkle_path(const uint8_t (*leaves)[32], size_t n, size_t i,
			uint8_t path[][32])
{
	if (n <= 1)
		return 0;
	size_t k = split_point(n), len;
	if (i < k) {
		len = thx__merkle_path(leaves, k, i, path);
		thx__merkle_root(leaves + k, n - k, path[len]);
	} else {
		len = thx__merkle_path(leaves + k, n - k, i - k, path);
		thx__merkle_root(leaves, k, path[len]);
	}
	return len + 1;
}

bool thx__merkle_from_path(const uint8_t leaf[32], size_t i, size_t n,
			   const uint8_t path[][32], size_t path_len,
			   uint8_t out[32])
{
	if (i >= n)
		return false;
	size_t fn = i, sn = n - 1;
	uint8_t r[32];
	memcpy(r, leaf, 32);
	for (size_t k = 0; k < path_len; k++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			thx__merkle_node(path[k], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			thx__merkle_node(r, path[k], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return false;
	memcpy(out, r, 32);
	return true;
}

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82f63b78) ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint32_t lo = c ^ thx__le32(p), hi = thx__le32(p + 4);
		c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		    crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_x86(uint32_t c,
							   const uint8_t *p,
							   size_t n)
{
	uint64_t c64 = c;
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

uint32_t thx__crc32c(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
	uint32_t c = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_x86(c, p, n);
#endif
	return ~crc_sw(c, p, n);
}
