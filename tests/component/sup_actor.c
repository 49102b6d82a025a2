/*
 * sup_actor.c - a supervisor guest (sdk/c/supervisor.c, world
 * supervisor-actor) for tests/component/test_run.c: each handler writes
 * what it received into the state.
 */
#include <stdlib.h>
#include <string.h>

#include "theater.h"

theater_status theater_actor_init(theater_opt_bytes *state, theater_string id)
{
	(void)state;
	(void)id;
	return theater_ok();
}

static void set(theater_opt_bytes *state, const char *what, theater_string child, int type,
		const theater_opt_bytes *data)
{
	char *out = malloc(64 + child.len + (data && data->is_some ? data->val.len : 0));
	size_t at = strlen(what);
	memcpy(out, what, at);
	out[at++] = ':';
	memcpy(out + at, child.ptr, child.len);
	at += child.len;
	if (type >= 0) {
		out[at++] = ':';
		out[at++] = (char)('0' + type);
	}
	out[at++] = ':';
	if (data && data->is_some) {
		memcpy(out + at, data->val.ptr, data->val.len);
		at += data->val.len;
	} else {
		memcpy(out + at, "none", 4);
		at += 4;
	}
	if (state->is_some)
		free(state->val.ptr);
	state->is_some = true;
	state->val.ptr = (uint8_t *)out;
	state->val.len = at;
}

theater_status theater_handle_child_error(theater_opt_bytes *state, theater_string child,
					  enum theater_error_type type, theater_opt_bytes data)
{
	set(state, "error", child, (int)type, &data);
	return theater_ok();
}

theater_status theater_handle_child_exit(theater_opt_bytes *state, theater_string child,
					 theater_opt_bytes data)
{
	set(state, "exit", child, -1, &data);
	return theater_ok();
}
