/*
 * journal - a test actor for at-least-once delivery (tests/replay/resume.sh,
 * test_replay.c). State: "journal", then every message handled, one per
 * line, in the order handled. handle-send appends the message and logs it (a host call, so
 * each handler has events between its export.call and export.result); a
 * message "sleep:N" first sleeps N ms (a handler suspended on the host).
 * handle-request answers the whole state.
 */
#include <stdlib.h>
#include <string.h>

#include "theater.h"

theater_status theater_actor_init(theater_opt_bytes *state, theater_string id)
{
	(void)id;
	/* Never an empty state: the SDK frees the buffer of the state it is
	 * given, and an empty list's pointer is not one cabi_realloc made. */
	if (!state->is_some) {
		state->is_some = true;
		state->val.ptr = malloc(8);
		memcpy(state->val.ptr, "journal\n", 8);
		state->val.len = 8;
	}
	return theater_ok();
}

theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes m)
{
	theater_string err;
	if (m.len > 6 && !memcmp(m.ptr, "sleep:", 6)) {
		uint64_t ms = 0;
		for (size_t i = 6; i < m.len && m.ptr[i] >= '0' && m.ptr[i] <= '9'; i++)
			ms = ms * 10 + (uint64_t)(m.ptr[i] - '0');
		if (!theater_sleep(ms, &err))
			return theater_error("sleep failed");
	}
	size_t n = state->is_some ? state->val.len : 0;
	uint8_t *p = malloc(n + m.len + 1);
	if (!p)
		return theater_error("out of memory");
	if (n)
		memcpy(p, state->val.ptr, n);
	memcpy(p + n, m.ptr, m.len);
	p[n + m.len] = '\n';
	state->is_some = true;
	state->val.ptr = p;
	state->val.len = n + m.len + 1;
	theater_log((const char *)m.ptr, m.len);
	return theater_ok();
}

theater_status theater_handle_request(theater_opt_bytes *state, theater_string rid,
				      theater_bytes m, theater_opt_bytes *response)
{
	(void)rid;
	(void)m;
	size_t n = state->is_some ? state->val.len : 0;
	response->is_some = true;
	response->val.ptr = malloc(n ? n : 1);
	if (n)
		memcpy(response->val.ptr, state->val.ptr, n);
	response->val.len = n;
	return theater_ok();
}
