/*
 * fuzz_frame.c - libFuzzer target for what a server and a client parse
 * from the network: frames split as a server would (thp_parse with a small
 * limit), payloads decompressed, handshake and error payloads decoded,
 * request arguments parsed and read the way commands read them.
 * Any crash, leak or sanitizer report is a bug. Seeds: tests/net/frames.
 */
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "net/net.h"
#include "theater/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void request_args(const uint8_t *p, size_t n)
{
	thn_args a;
	th_err err = { 0 };
	if (thn_args_parse(p, n, &a, &err) != 0)
		return;
	char buf[256];
	uint64_t u;
	bool b;
	const uint8_t *bytes;
	size_t len;
	static const char *const keys[] = { "op", "chain", "id", "label", "hash", "n",
					    "from", "to", "seq", "type" };
	for (size_t i = 0; i < TH_ARRAY_LEN(keys); i++) {
		(void)thn_arg_text(&a, keys[i], false, buf, sizeof buf, &err);
		(void)thn_arg_uint(&a, keys[i], false, &u, &err);
		(void)thn_arg_bool(&a, keys[i], &b, &err);
		(void)thn_arg_bytes(&a, keys[i], false, &bytes, &len, &err);
	}
	if (thn_arg_text(&a, "op", true, buf, sizeof buf, &err) == 0)
		(void)thn_cmd_find(buf, strlen(buf));
}

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
		} else {
			/* REQUEST, CREDIT, EVENT, GAP, RESPONSE: CBOR maps. */
			request_args(p, n);
		}
		thp_free(owned);
	}
	return 0;
}
