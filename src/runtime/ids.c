/*
 * ids.c - actor ids (UUID version 4) and random bytes for the random
 * handler. Bytes come from getrandom(2) through a small per-thread buffer,
 * so spawning an actor costs no system call most of the time.
 */
#include <errno.h>
#include <sys/random.h>

#include "base/base.h"
#include "runtime/rt.h"

#define POOL 512

static _Thread_local uint8_t pool[POOL];
static _Thread_local size_t pool_left;

static void fill(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* Defensive: getrandom cannot fail on Linux >= 3.17
			 * once the pool is initialised; never hand out
			 * predictable bytes silently. */
			abort();
		}
		p += r;
		n -= (size_t)r;
	}
}

void rtu_random(void *buf, size_t n)
{
	uint8_t *out = buf;
	if (n > POOL / 2) {
		fill(buf, n);
		return;
	}
	while (n) {
		if (!pool_left) {
			fill(pool, POOL);
			pool_left = POOL;
		}
		size_t take = n < pool_left ? n : pool_left;
		memcpy(out, pool + POOL - pool_left, take);
		/* Bytes handed out are not kept around. */
		memset(pool + POOL - pool_left, 0, take);
		pool_left -= take;
		out += take;
		n -= take;
	}
}

void rtu_uuid4(char out[THR_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	size_t o = 0;
	rtu_random(b, sizeof b);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = 0;
}
