/*
 * sha256.c - SHA-256 of whole messages with the CPU's SHA extensions, one
 * message or two at once.
 *
 * The chain hashes small messages (an event is 2-6 compression blocks),
 * so the cost per call matters as much as the cost per block: libcrypto's
 * Init/Update/Final copy the message through a context and pad it there.
 * Here a message's full blocks are compressed where they lie and only its
 * tail is copied, once, into the padding buffer.
 *
 * Two messages at once: SHA256RNDS2 has a latency of several cycles and
 * each pair of rounds needs the previous pair's result, so one message
 * leaves the unit partly idle. Interleaving the rounds of two independent
 * messages (two chains: within one chain every event's hash feeds the
 * next) fills some of those gaps: on this machine 31 ns per block of each
 * message against 39 for one alone (1 MiB messages). The hasher thread
 * uses it (hasher.c).
 *
 * The rounds follow FIPS 180-4 section 6.2.2, in the form the SHA
 * extensions compute them: the state is held as two registers, {A,B,E,F}
 * and {C,D,G,H}; SHA256RNDS2 does two rounds with W+K from the low half of
 * its third operand; SHA256MSG1 and SHA256MSG2 compute the message
 * schedule's sigma0 and sigma1 parts four words at a time.
 *
 * Without the extensions (checked once, CPUID leaf 7 EBX bit 29, with
 * SSSE3 and SSE4.1) both entry points use libcrypto through thx__sha256's
 * fallback. Tested against libcrypto on every length 0-300, alone and
 * paired with lengths 0-299 in steps of 13 (tests/chain/test_chain.c).
 */
#include "chain/internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* ---- which implementation ------------------------------------------------- */

static bool have_ni;
static pthread_once_t ni_once = PTHREAD_ONCE_INIT;

static void ni_check(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	bool ssse3 = c & (1u << 9), sse41 = c & (1u << 19);
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return;
	have_ni = ssse3 && sse41 && (b & (1u << 29));
}

bool thx__sha_ni(void)
{
	pthread_once(&ni_once, ni_check);
	return have_ni;
}

/* ---- one message's blocks ------------------------------------------------- */

/* A message as the compressor sees it: its full blocks where they lie,
 * then one or two padding blocks built in pad. */
typedef struct msg {
	const uint8_t *p; /* full blocks still to do */
	size_t nfull;
	uint8_t pad[128];
	size_t npad;      /* 1 or 2 padding blocks */
} msg;

static void msg_init(msg *m, const void *p, size_t n)
{
	size_t tail = n % 64;
	m->p = p;
	m->nfull = n / 64;
	m->npad = tail + 1 + 8 <= 64 ? 1 : 2;
	if (tail)
		memcpy(m->pad, (const uint8_t *)p + n - tail, tail);
	m->pad[tail] = 0x80;
	size_t end = m->npad * 64 - 8; /* the bit count's big-endian u64 */
	memset(m->pad + tail + 1, 0, end - tail - 1);
	uint64_t bits = (uint64_t)n * 8;
	for (int i = 0; i < 8; i++)
		m->pad[end + 7 - i] = (uint8_t)(bits >> (8 * i));
}

static size_t msg_blocks(const msg *m)
{
	return m->nfull + m->npad;
}

static const uint8_t *msg_block(const msg *m, size_t i)
{
	return i < m->nfull ? m->p + 64 * i : m->pad + 64 * (i - m->nfull);
}

/* ---- the rounds ------------------------------------------------------------ */

#define NI __attribute__((target("sha,ssse3,sse4.1")))

typedef struct ni_state {
	__m128i abef, cdgh;
} ni_state;

NI static inline __m128i load_be(const uint8_t *p, int i)
{
	const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
	return _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), swap);
}

/* W[4g..4g+3] from the four groups before it (w[g % 4] holds W[4g-16..]). */
NI static inline __m128i schedule(__m128i *w, int g)
{
	__m128i t = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
	t = _mm_add_epi32(t, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
	return _mm_sha256msg2_epu32(t, w[(g + 3) & 3]);
}

NI static inline void rounds4(ni_state *s, __m128i w, int g)
{
	__m128i wk = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)(K + 4 * g)));
	s->cdgh = _mm_sha256rnds2_epu32(s->cdgh, s->abef, wk);
	s->abef = _mm_sha256rnds2_epu32(s->abef, s->cdgh, _mm_shuffle_epi32(wk, 0x0E));
}

NI static void compress1(ni_state *s, const uint8_t *p)
{
	ni_state save = *s;
	__m128i w[4];
#pragma GCC unroll 16
	for (int g = 0; g < 16; g++) {
		w[g & 3] = g < 4 ? load_be(p, g) : schedule(w, g);
		rounds4(s, w[g & 3], g);
	}
	s->abef = _mm_add_epi32(s->abef, save.abef);
	s->cdgh = _mm_add_epi32(s->cdgh, save.cdgh);
}

/* Two independent blocks, their rounds interleaved. */
NI static void compress2(ni_state *s, const uint8_t *p, ni_state *t, const uint8_t *q)
{
	ni_state save_s = *s, save_t = *t;
	__m128i w[4], v[4];
#pragma GCC unroll 16
	for (int g = 0; g < 16; g++) {
		w[g & 3] = g < 4 ? load_be(p, g) : schedule(w, g);
		v[g & 3] = g < 4 ? load_be(q, g) : schedule(v, g);
		rounds4(s, w[g & 3], g);
		rounds4(t, v[g & 3], g);
	}
	s->abef = _mm_add_epi32(s->abef, save_s.abef);
	s->cdgh = _mm_add_epi32(s->cdgh, save_s.cdgh);
	t->abef = _mm_add_epi32(t->abef, save_t.abef);
	t->cdgh = _mm_add_epi32(t->cdgh, save_t.cdgh);
}

NI static void state_init(ni_state *s)
{
	/* {A,B,E,F} and {C,D,G,H}, A and C in the highest lane */
	s->abef = _mm_set_epi32((int)H0[0], (int)H0[1], (int)H0[4], (int)H0[5]);
	s->cdgh = _mm_set_epi32((int)H0[2], (int)H0[3], (int)H0[6], (int)H0[7]);
}

NI static void state_out(const ni_state *s, uint8_t out[32])
{
	__m128i abef = _mm_shuffle_epi32(s->abef, 0x1B); /* A,B,E,F from lane 0 */
	__m128i cdgh = _mm_shuffle_epi32(s->cdgh, 0x1B); /* C,D,G,H */
	const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
	_mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(_mm_unpacklo_epi64(abef, cdgh), swap));
	_mm_storeu_si128((__m128i *)(out + 16),
			 _mm_shuffle_epi8(_mm_unpackhi_epi64(abef, cdgh), swap));
}

NI static void ni_one(const void *p, size_t n, uint8_t out[32])
{
	msg m;
	ni_state s;
	msg_init(&m, p, n);
	state_init(&s);
	for (size_t i = 0, nb = msg_blocks(&m); i < nb; i++)
		compress1(&s, msg_block(&m, i));
	state_out(&s, out);
}

NI static void ni_two(const void *p, size_t n, uint8_t out[32],
		      const void *q, size_t nq, uint8_t outq[32])
{
	msg a, b;
	ni_state s, t;
	msg_init(&a, p, n);
	msg_init(&b, q, nq);
	state_init(&s);
	state_init(&t);
	size_t na = msg_blocks(&a), nb = msg_blocks(&b), i = 0;
	for (; i < na && i < nb; i++)
		compress2(&s, msg_block(&a, i), &t, msg_block(&b, i));
	for (size_t j = i; j < na; j++)
		compress1(&s, msg_block(&a, j));
	for (size_t j = i; j < nb; j++)
		compress1(&t, msg_block(&b, j));
	state_out(&s, out);
	state_out(&t, outq);
}

#else /* no SHA extensions to use */
bool thx__sha_ni(void)
{
	return false;
}
#define ni_one(p, n, out) ((void)0)
#define ni_two(p, n, out, q, nq, outq) ((void)0)
#endif

/* ---- entry points ----------------------------------------------------------- */

void thx__sha256(const void *p, size_t n, uint8_t out[32])
{
	if (thx__sha_ni())
		ni_one(p, n, out);
	else
		thx__sha256_lib(p, n, out);
}

void thx__sha256_x2(const void *p, size_t n, uint8_t out[32],
		    const void *q, size_t nq, uint8_t outq[32])
{
	if (thx__sha_ni()) {
		ni_two(p, n, out, q, nq, outq);
	} else {
		thx__sha256_lib(p, n, out);
		thx__sha256_lib(q, nq, outq);
	}
}
