/*
 * ping - a supervisor that spawns the pong actor (pong.toml, next to its
 * own manifest) in init, and on every one-way message "go" sends pong a
 * request "ping" and logs the reply. State: pong's actor id.
 */
#include <stdlib.h>
#include <string.h>

#include "theater.h"

static theater_status fail(theater_string *err)
{
	theater_status s = { true, *err };
	return s;
}

theater_status theater_actor_init(theater_opt_bytes *state, theater_string id)
{
	(void)id;
	theater_string child, err;
	if (!theater_spawn("pong.toml", 9, NULL, &child, &err))
		return fail(&err);
	if (state->is_some)
		free(state->val.ptr);
	state->is_some = true;
	state->val.ptr = (uint8_t *)child.ptr;
	state->val.len = child.len;
	theater_log("spawned pong", 12);
	return theater_ok();
}

theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes msg)
{
	(void)msg;
	theater_bytes reply;
	theater_string err;
	if (!state->is_some)
		return theater_error("no pong");
	if (!theater_request((const char *)state->val.ptr, state->val.len,
			     (const uint8_t *)"ping", 4, &reply, &err))
		return fail(&err);
	char line[64] = "ping got: ";
	size_t n = reply.len < 50 ? reply.len : 50;
	memcpy(line + 10, reply.ptr, n);
	theater_log(line, 10 + n);
	free(reply.ptr);
	return theater_ok();
}

/* pong's exit and errors are only logged. */
theater_status theater_handle_child_exit(theater_opt_bytes *state, theater_string child,
					 theater_opt_bytes data)
{
	(void)state;
	(void)child;
	(void)data;
	theater_log("pong exited", 11);
	return theater_ok();
}
