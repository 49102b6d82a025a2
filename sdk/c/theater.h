/*
 * theater.h - C guest SDK for Theater actors (world theater:simple, see
 * wit/theater-simple.wit). Like `wit-bindgen c` output, but written by hand
 * for the functions most actors need: link theater.c into the actor and
 * implement the theater_* export functions below.
 *
 * Memory: every buffer crossing the boundary is malloc'ed. Arguments given
 * to an export belong to the actor (the SDK frees them after the export
 * returns, unless the actor returns the same pointer as its new state).
 * What an export returns is freed by the SDK's post-return function after
 * the host has copied it. Strings are UTF-8 and not NUL-terminated.
 */
#ifndef THEATER_GUEST_H
#define THEATER_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct theater_bytes {
	uint8_t *ptr;
	size_t len;
} theater_bytes;

typedef struct theater_string {
	char *ptr;
	size_t len;
} theater_string;

/* option<list<u8>>: the actor's state and optional payloads. */
typedef struct theater_opt_bytes {
	bool is_some;
	theater_bytes val;
} theater_opt_bytes;

/* result<..., string>: set is_err and err (malloc'ed) to fail. */
typedef struct theater_status {
	bool is_err;
	theater_string err;
} theater_status;

/* ---- exports the actor implements ---------------------------------------
 * Each receives the current state and returns the new state in *state
 * (leave it as is to keep it). theater_actor_init is required; the
 * message-server-client handlers have defaults that keep the state and
 * (handle-request) answer none, (handle-channel-open) refuse. */

theater_status theater_actor_init(theater_opt_bytes *state, theater_string actor_id);
theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes msg);
theater_status theater_handle_request(theater_opt_bytes *state, theater_string request_id,
				      theater_bytes msg, theater_opt_bytes *response);
theater_status theater_handle_channel_open(theater_opt_bytes *state, theater_string sender,
					   theater_bytes msg, bool *accepted,
					   theater_opt_bytes *reply);
theater_status theater_handle_channel_message(theater_opt_bytes *state,
					      theater_string channel_id, theater_bytes msg);
theater_status theater_handle_channel_close(theater_opt_bytes *state,
					    theater_string channel_id);

/* ---- imports (host functions) ------------------------------------------- */

/* runtime.log */
void theater_log(const char *msg, size_t len);
/* runtime.get-state; the bytes are malloc'ed (caller frees). */
theater_opt_bytes theater_get_state(void);
/* message-server-host.send; on error *err receives a malloc'ed message. */
bool theater_send(const char *actor_id, size_t id_len, const uint8_t *msg, size_t msg_len,
		  theater_string *err);

/* Helpers */
theater_string theater_string_dup(const char *s);
theater_status theater_ok(void);
theater_status theater_error(const char *msg);

#endif
