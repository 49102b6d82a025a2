/*
 * fuzz_ws.c - libFuzzer target for the WebSocket opening handshake:
 * the server's parser of the HTTP upgrade request and the client's check
 * of the server's answer, on arbitrary bytes. Seeds: tests/net/ws-heads.
 */
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > THN_WS_HEADER_MAX)
		return 0;
	char *resp = NULL;
	size_t rl = 0;
	th_err err = { 0 };
	(void)thn_ws_server_handshake((const char *)data, size, &resp, &rl, &err);
	th_free(resp);
	(void)thn_ws_client_check((const char *)data, size, "dGhlIHNhbXBsZSBub25jZQ==", &err);
	return 0;
}
