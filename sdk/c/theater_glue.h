/*
 * theater_glue.h - shared by the SDK's glue files (theater.c and the
 * optional supervisor.c); not for actors.
 */
#ifndef THEATER_GLUE_H
#define THEATER_GLUE_H

#include "theater.h"

/* option<list<u8>> from its flat form. */
theater_opt_bytes theater__opt_in(int32_t tag, uint8_t *ptr, size_t len);
/* Fills the shared return area with result<tuple<option<list<u8>>, ...>,
 * string> (state part) and frees what the export no longer needs. */
uint8_t *theater__finish(theater_status st, const theater_opt_bytes *old, theater_opt_bytes *now);
/* Post-return for that common part. */
void theater__post_common(uint8_t *p);

#endif
