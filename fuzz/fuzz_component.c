/*
 * fuzz_component.c - libFuzzer target for the component layer's parsers of
 * untrusted bytes: the component binary decoder (and the export resolver
 * that follows aliases and nested instantiations), and Canonical ABI
 * lifting of the world's types out of a hostile guest memory. Arbitrary
 * input must give a result or an error, never a crash, leak or hang.
 *
 *   make fuzz
 *   build/fuzz/fuzz_component -max_total_time=60 build/fuzz/corpus-fuzz_component
 * Seeds: the jco-built components in build/test-component/ (made by
 * tests/component/test_component).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "component/abi.h"
#include "component/decode.h"
#include "component/world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct buf {
	const uint8_t *p;
	size_t n;
} buf;

static uint8_t *mem_ptr(void *ctx, uint64_t off, size_t len)
{
	buf *b = ctx;
	if (off > b->n || len > b->n - off)
		return NULL;
	return (uint8_t *)b->p + off;
}

static void lift_all(const uint8_t *data, size_t size)
{
	const thcw_world *w = thcw_theater(NULL);
	if (!w)
		abort();
	buf b = { data, size };
	thca_mem m = { .ptr = mem_ptr, .ctx = &b, .budget = 1u << 16 };
	for (uint32_t i = 0; i < w->nifaces; i++) {
		const thcw_iface *f = w->ifaces[i];
		for (uint32_t k = 0; k < f->nfuncs; k++) {
			const thc_functype *ft = f->funcs[k].type;
			for (uint32_t p = 0; p <= ft->nparams; p++) {
				const thc_type *t = p < ft->nparams ? ft->ptypes[p] : ft->result;
				if (!t)
					continue;
				thc_val v;
				th_err err = { 0 };
				uint32_t at = size >= 4 ? (uint32_t)(data[0] | data[1] << 8) & ~7u : 0;
				if (thca_load(&m, t, at, &v, &err) == 0)
					thc_val_release(&v);
				if (t->nflat <= 16 && size >= t->nflat * 4) {
					thw_val flat[16];
					for (uint32_t j = 0; j < t->nflat; j++) {
						uint32_t x;
						memcpy(&x, data + 4 * j, 4);
						flat[j] = (thw_val){ .type = t->flat[j] };
						if (t->flat[j] == THW_I64 || t->flat[j] == THW_F64)
							flat[j].of.i64 = x * 0x100000001ull;
						else
							flat[j].of.i32 = x;
					}
					uint32_t pos = 0;
					if (thca_lift_flat(&m, t, flat, t->nflat, &pos, &v, &err) == 0)
						thc_val_release(&v);
				}
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	thcd_component c;
	th_err err = { 0 };
	if (thcd_decode(data, size, &c, &err) == 0) {
		thcd_lifted *ex;
		uint32_t n;
		if (thcd_exports(&c, &ex, &n, &err) == 0)
			free(ex);
	}
	thcd_release(&c);
	lift_all(data, size);
	return 0;
}
