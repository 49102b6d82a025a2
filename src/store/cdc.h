/*
 * cdc.h - content-defined chunking, FastCDC style (prefix ths__cdc_).
 *
 * A gear hash h = (h << 1) + GEAR[byte] rolls over the bytes after the
 * minimum chunk size; a chunk ends where the hash's masked bits are all
 * zero. Bit k of h depends only on the last k+1 bytes, so a boundary
 * depends only on the ~63 bytes before it: an insertion moves the
 * boundaries near it and leaves every later one where it was (relative to
 * the content). Normalized chunking (FastCDC, Xia et al., USENIX ATC 2016)
 * uses a harder mask (18 bits) before the average size and an easier one
 * (14 bits) after it, which pulls chunk sizes towards the average.
 */
#ifndef THS_CDC_H
#define THS_CDC_H

#include "base/base.h"

/* Length of the chunk that starts at p. n is the number of bytes available
 * and must be at least THS_CHUNK_MAX unless they are the rest of the
 * content. The result is in [1, min(n, THS_CHUNK_MAX)] for n > 0, and at
 * least THS_CHUNK_MIN unless n is smaller. */
size_t ths__cdc_cut(const uint8_t *p, size_t n);

#endif
