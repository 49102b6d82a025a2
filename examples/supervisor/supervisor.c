/*
 * supervisor - a Theater supervisor actor: init spawns two workers (the
 * crasher example, worker.toml). "crash:N" makes worker N trap, "fail:N"
 * makes it return an error, anything else is sent to both.
 * handle-child-error logs the failure and leaves the decision to the
 * runtime, which applies this manifest's [supervision] policy (restart the
 * child, back off, count restarts, open the circuit ...). `theater run
 * examples/supervisor/manifest.toml --send crash:0 --tree` shows it.
 * State: the workers' ids, 36 bytes each.
 */
#include <stdlib.h>
#include <string.h>

#include "theater.h"

#define NWORKERS 2
#define IDLEN 36

theater_status theater_actor_init(theater_opt_bytes *state, theater_string id)
{
	(void)id;
	if (state->is_some && state->val.len == NWORKERS * IDLEN)
		return theater_ok(); /* restarted: the workers live on */
	uint8_t *ids = malloc(NWORKERS * IDLEN);
	if (!ids)
		return theater_error("out of memory");
	for (int i = 0; i < NWORKERS; i++) {
		theater_string child, err;
		if (!theater_spawn("worker.toml", 11, NULL, &child, &err)) {
			free(ids);
			return theater_error("spawning a worker failed");
		}
		memcpy(ids + i * IDLEN, child.ptr, child.len < IDLEN ? child.len : IDLEN);
		free(child.ptr);
	}
	state->is_some = true;
	state->val.ptr = ids;
	state->val.len = NWORKERS * IDLEN;
	theater_log("supervisor: 2 workers started", 29);
	return theater_ok();
}

static void send_to(const theater_opt_bytes *state, int i, const char *msg, size_t len)
{
	theater_string err;
	if (!state->is_some || state->val.len < (size_t)(i + 1) * IDLEN)
		return;
	if (!theater_send((const char *)state->val.ptr + i * IDLEN, IDLEN,
			  (const uint8_t *)msg, len, &err)) {
		theater_log(err.ptr, err.len);
		free(err.ptr);
	}
}

theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes m)
{
	if (m.len == 7 && !memcmp(m.ptr, "crash:", 6)) {
		int i = m.ptr[6] - '0';
		if (i >= 0 && i < NWORKERS)
			send_to(state, i, "crash", 5);
		return theater_ok();
	}
	if (m.len == 6 && !memcmp(m.ptr, "fail:", 5)) {
		int i = m.ptr[5] - '0';
		if (i >= 0 && i < NWORKERS)
			send_to(state, i, "fail", 4);
		return theater_ok();
	}
	for (int i = 0; i < NWORKERS; i++)
		send_to(state, i, (const char *)m.ptr, m.len);
	return theater_ok();
}

theater_status theater_handle_child_error(theater_opt_bytes *state, theater_string child_id,
					  enum theater_error_type type, theater_opt_bytes data)
{
	char line[160] = "supervisor: child ";
	size_t n = 18, k = child_id.len < 40 ? child_id.len : 40;
	(void)state;
	(void)type;
	memcpy(line + n, child_id.ptr, k);
	n += k;
	memcpy(line + n, " failed; the runtime's policy decides", 37);
	n += 37;
	theater_log(line, n);
	(void)data;
	return theater_ok();
}
