/*
 * empty_state.c - a guest whose state is some(empty list): every handler
 * replaces it with a fresh empty state, so the SDK frees the buffer the
 * host lowered for the old one. The Canonical ABI lowers an empty list
 * through cabi_realloc(0, 0, align, 0); the SDK must hand back something
 * free() accepts (it returned the alignment, and the next handler trapped
 * in dlfree).
 */
#include "theater.h"

static int handled;

theater_status theater_actor_init(theater_opt_bytes *state, theater_string id)
{
	(void)id;
	state->is_some = true;
	state->val.ptr = NULL;
	state->val.len = 0;
	return theater_ok();
}

theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes msg)
{
	static const char head[] = "empty state kept, ";
	static const char tail[] = " handled";
	char line[sizeof head + sizeof tail + 4];
	size_t n = sizeof head - 1;
	(void)msg;
	handled++;
	state->is_some = true;
	state->val.ptr = NULL;
	state->val.len = 0;
	for (size_t i = 0; i < n; i++)
		line[i] = head[i];
	line[n++] = (char)('0' + handled % 10); /* no stdio: it imports WASI */
	for (size_t i = 0; i < sizeof tail - 1; i++)
		line[n++] = tail[i];
	theater_log(line, n);
	return theater_ok();
}
