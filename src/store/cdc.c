/*
 * cdc.c - FastCDC-style chunk boundaries (see cdc.h).
 *
 * The gear table is 256 pseudo-random 64-bit words from splitmix64 with a
 * fixed seed: it is part of the storage format (changing it changes every
 * chunked object's hash), so it must never change. The scan consumes two
 * bytes per step (the "rolling two bytes" trick of FastCDC 2020): with
 * GEAR_LS[b] = GEAR[b] << 1, (h << 2) + GEAR_LS[x] equals h' << 1 where h'
 * is the hash after x, so testing it against mask << 1 tests h' against
 * mask; the masks avoid bit 63 so no tested bit is shifted out.
 */
#include <pthread.h>

#include "store/cdc.h"
#include "theater/store.h"

static uint64_t gear[256], gear_ls[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

/* 18 and 14 one-bits just below bit 63. */
#define MASK_S (((UINT64_C(1) << 18) - 1) << 45)
#define MASK_L (((UINT64_C(1) << 14) - 1) << 49)

static void gear_init(void)
{
	uint64_t x = UINT64_C(0x7468656174657221); /* "theater!" */
	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += UINT64_C(0x9e3779b97f4a7c15));
		z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
		z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
		gear[i] = z ^ (z >> 31);
		gear_ls[i] = gear[i] << 1;
	}
}

/* Scans p[i..end) with mask; returns the cut length or 0 if none. */
static size_t cdc_scan(const uint8_t *p, size_t i, size_t end, uint64_t *hp,
		       uint64_t mask)
{
	uint64_t h = *hp;
	const uint64_t mask_ls = mask << 1;
	while (i + 2 <= end) {
		h = (h << 2) + gear_ls[p[i]];
		if (!(h & mask_ls))
			return i + 1;
		h += gear[p[i + 1]];
		if (!(h & mask))
			return i + 2;
		i += 2;
	}
	if (i < end) {
		h = (h << 1) + gear[p[i]];
		if (!(h & mask))
			return i + 1;
	}
	*hp = h;
	return 0;
}

size_t ths__cdc_cut(const uint8_t *p, size_t n)
{
	pthread_once(&gear_once, gear_init);
	if (n <= THS_CHUNK_MIN)
		return n;
	size_t normal = n < THS_CHUNK_AVG ? n : THS_CHUNK_AVG;
	size_t end = n < THS_CHUNK_MAX ? n : THS_CHUNK_MAX;
	uint64_t h = 0;
	size_t cut = cdc_scan(p, THS_CHUNK_MIN, normal, &h, MASK_S);
	if (cut)
		return cut;
	cut = cdc_scan(p, normal, end, &h, MASK_L);
	return cut ? cut : end;
}
