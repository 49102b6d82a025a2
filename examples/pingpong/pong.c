/*
 * pong - answers a request "ping" with "pong" (anything else: "?").
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

theater_status theater_handle_request(theater_opt_bytes *state, theater_string rid,
				      theater_bytes msg, theater_opt_bytes *response)
{
	(void)state;
	(void)rid;
	bool ping = msg.len == 4 && memcmp(msg.ptr, "ping", 4) == 0;
	response->is_some = true;
	response->val.ptr = malloc(4);
	memcpy(response->val.ptr, ping ? "pong" : "?", ping ? 4 : 1);
	response->val.len = ping ? 4 : 1;
	return theater_ok();
}
