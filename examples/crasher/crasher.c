/*
 * crasher - traps on demand. A message "crash" executes `unreachable`;
 * "fail" returns an error result; anything else is logged and counted.
 * The runtime must record the trap and keep every other actor running.
 */
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
	if (msg.len == 5 && memcmp(msg.ptr, "crash", 5) == 0)
		__builtin_trap();
	if (msg.len == 4 && memcmp(msg.ptr, "fail", 4) == 0)
		return theater_error("failing on request");
	theater_log((const char *)msg.ptr, msg.len);
	return theater_ok();
}
