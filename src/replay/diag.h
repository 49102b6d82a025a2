/*
 * diag.h (internal) - CBOR as short diagnostic text (RFC 8949 section 8),
 * for explaining a divergence: ["count = 2"], h'0102', [0, null] (prefix
 * rpd_). Output is truncated to the buffer with "..." at the end.
 */
#ifndef TH_REPLAY_DIAG_H
#define TH_REPLAY_DIAG_H

#include <stddef.h>
#include <stdint.h>

/* Render p[0..n) (one or more items) into out[0..cap), NUL-terminated.
 * Malformed input is rendered up to the problem, then "<malformed>". */
void rpd_text(const uint8_t *p, size_t n, char *out, size_t cap);

#endif
