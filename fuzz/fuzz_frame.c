/*
 * fuzz_frame.c - libFuzzer target for the protocol's frame decoder: splits
 * the input into frames as a server would (thp_parse with a small limit),
 * decompresses payloads and decodes handshake and error payloads.
 * Any crash, leak or sanitizer report is a bug. Seeds: tests/net/frames.
 */
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "theater/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		thp_frame f;
		size_t used = 0;
		th_err err = { 0 };
		int rc = thp_parse(data + off, size - off, 1u << 16, &f, &used, &err);
		if (rc != 0)
			break;
		off += used;
		const uint8_t *p;
		size_t n;
		uint8_t *owned = NULL;
		if (thp_payload(&f, 1u << 16, &p, &n, &owned, &err) != 0)
			continue;
		if (f.type == THP_HELLO) {
			thp_hello h;
			if (thp_hello_decode(p, n, &h, &err) == 0)
				(void)thp_negotiate(&h, 1, THP_VERSION);
			thp_hello_release(&h);
		} else if (f.type == THP_WELCOME) {
			thp_welcome w;
			(void)thp_welcome_decode(p, n, &w, &err);
		} else if (f.type == THP_ERROR || f.type == THP_GOAWAY) {
			thp_error e;
			(void)thp_error_decode(p, n, &e, &err);
		}
		thp_free(owned);
	}
	return 0;
}
