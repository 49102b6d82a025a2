/*
 * h_random.c - theater:simple/random. Bytes come from the kernel's CSPRNG
 * unless the manifest fixes a seed (tests): then from a per-actor
 * xoshiro256** stream seeded with it. Either way every answer is recorded,
 * which is what replay uses. [[handler]] random: max_bytes (per call),
 * max_int (largest value random-range may return).
 */
#include <math.h>

#include "base/base.h"
#include "handlers/handlers.h"

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t next_seeded(rta_actor *a)
{
	uint64_t *s = a->rng;
	if (!a->rng_init) {
		uint64_t x = a->perm.random.seed;
		for (int i = 0; i < 4; i++)
			s[i] = splitmix(&x);
		a->rng_init = true;
	}
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

static void fill(rta_actor *a, uint8_t *p, size_t n)
{
	if (!a->perm.random.has_seed) {
		rtu_random(p, n);
		return;
	}
	while (n) {
		uint64_t r = next_seeded(a);
		size_t k = n < 8 ? n : 8;
		memcpy(p, &r, k);
		p += k;
		n -= k;
	}
}

static uint64_t u64(rta_actor *a)
{
	uint64_t r;
	fill(a, (uint8_t *)&r, sizeof r);
	return r;
}

static rth_ret fn_bytes(rth_call *c)
{
	uint64_t n = c->args[0].of.u;
	uint8_t *buf;
	rth_ret r;
	if (n > c->a->perm.random.max_bytes)
		return rth_deny(c, "%llu random bytes is more than the allowed %llu "
				"(max_bytes)", (unsigned long long)n,
				(unsigned long long)c->a->perm.random.max_bytes);
	buf = th_malloc(n ? n : 1);
	if (!buf)
		return rth_oom(c);
	fill(c->a, buf, n);
	r = rth_ok_bytes(c, buf, n);
	th_free(buf);
	return r;
}

static rth_ret fn_range(rth_call *c)
{
	uint64_t lo = c->args[0].of.u, hi = c->args[1].of.u, span, x;
	thc_val v;
	if (lo > hi)
		return rth_err(c, "random-range: min %llu is greater than max %llu",
			       (unsigned long long)lo, (unsigned long long)hi);
	if (hi > c->a->perm.random.max_int)
		return rth_deny(c, "random-range up to %llu exceeds the allowed %llu "
				"(max_int)", (unsigned long long)hi,
				(unsigned long long)c->a->perm.random.max_int);
	span = hi - lo;
	if (span == UINT64_MAX) {
		x = u64(c->a);
	} else {
		/* Rejection sampling: no modulo bias. */
		uint64_t bound = span + 1, limit = UINT64_MAX - UINT64_MAX % bound;
		do
			x = u64(c->a);
		while (x >= limit);
		x = lo + x % bound;
	}
	v = thc_val_uint(THC_U64, x);
	return rth_ok_val(c, &v);
}

static rth_ret fn_float(rth_call *c)
{
	thc_val v = { .kind = THC_F64 };
	v.of.f64 = (double)(u64(c->a) >> 11) * 0x1.0p-53; /* [0, 1) */
	return rth_ok_val(c, &v);
}

static rth_ret fn_uuid(rth_call *c)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	char out[37];
	size_t o = 0;
	fill(c->a, b, sizeof b);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	return rth_ok_str(c, out, o);
}

#define RN "theater:simple/random"
const rth_fn rth_random_fns[] = {
	{ RN, "random-bytes", "host." RN ".random-bytes", THM_H_RANDOM,
	  RTH_DENY_ERR, fn_bytes, NULL },
	{ RN, "random-range", "host." RN ".random-range", THM_H_RANDOM,
	  RTH_DENY_ERR, fn_range, NULL },
	{ RN, "random-float", "host." RN ".random-float", THM_H_RANDOM,
	  RTH_DENY_ERR, fn_float, NULL },
	{ RN, "generate-uuid", "host." RN ".generate-uuid", THM_H_RANDOM,
	  RTH_DENY_ERR, fn_uuid, NULL },
	{ 0 }
};
