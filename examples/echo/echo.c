/*
 * echo - answers every request with the request's own bytes and logs every
 * one-way message. Stateless.
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

theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes msg)
{
	(void)state;
	theater_log((const char *)msg.ptr, msg.len);
	return theater_ok();
}

theater_status theater_handle_request(theater_opt_bytes *state, theater_string rid,
				      theater_bytes msg, theater_opt_bytes *response)
{
	(void)state;
	(void)rid;
	response->is_some = true;
	response->val.ptr = malloc(msg.len ? msg.len : 1);
	memcpy(response->val.ptr, msg.ptr, msg.len);
	response->val.len = msg.len;
	return theater_ok();
}
