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

/* Every function below returns true on ok. On an error result, *err (when
 * not NULL) receives the host's message (malloc'ed; the caller frees);
 * ok payloads (theater_bytes / theater_string out parameters) are malloc'ed
 * too. Strings passed in need not be NUL-terminated: they come with their
 * length. */

/* runtime.shutdown */
bool theater_shutdown(const theater_opt_bytes *data, theater_string *err);

/* message-server-host */
bool theater_request(const char *actor_id, size_t id_len, const uint8_t *msg, size_t msg_len,
		     theater_bytes *reply, theater_string *err);
bool theater_open_channel(const char *actor_id, size_t id_len, const uint8_t *msg,
			  size_t msg_len, theater_string *channel_id, theater_string *err);
bool theater_send_on_channel(const char *channel_id, size_t cid_len, const uint8_t *msg,
			     size_t msg_len, theater_string *err);
bool theater_close_channel(const char *channel_id, size_t cid_len, theater_string *err);
bool theater_respond_to_request(const char *request_id, size_t rid_len, const uint8_t *msg,
				size_t msg_len, theater_string *err);
bool theater_cancel_request(const char *request_id, size_t rid_len, theater_string *err);
/* list-outstanding-requests: *ids is a malloc'ed array of *n strings. */
void theater_list_outstanding_requests(theater_string **ids, size_t *n);

/* store (a content reference is its hash string) */
bool theater_store_new(theater_string *store_id, theater_string *err);
bool theater_store_put(const char *store_id, size_t sid_len, const uint8_t *content,
		       size_t len, theater_string *hash, theater_string *err);
bool theater_store_get(const char *store_id, size_t sid_len, const char *hash,
		       size_t hash_len, theater_bytes *content, theater_string *err);
bool theater_store_label(const char *store_id, size_t sid_len, const char *label,
			 size_t label_len, const char *hash, size_t hash_len,
			 theater_string *err);
/* get-by-label: *found is false when the label is not set. */
bool theater_store_get_by_label(const char *store_id, size_t sid_len, const char *label,
				size_t label_len, bool *found, theater_string *hash,
				theater_string *err);
bool theater_store_at_label(const char *store_id, size_t sid_len, const char *label,
			    size_t label_len, const uint8_t *content, size_t len,
			    theater_string *hash, theater_string *err);

/* timing */
uint64_t theater_now(void); /* ms since the Unix epoch */
bool theater_sleep(uint64_t ms, theater_string *err);

/* random */
bool theater_random_bytes(uint32_t n, theater_bytes *out, theater_string *err);
bool theater_random_range(uint64_t min, uint64_t max, uint64_t *out, theater_string *err);
bool theater_generate_uuid(theater_string *out, theater_string *err);

/* environment.get-var: false when unset or not permitted. */
bool theater_get_var(const char *name, size_t name_len, theater_string *value);

/* filesystem (paths inside the configured root) */
bool theater_read_file(const char *path, size_t path_len, theater_bytes *content,
		       theater_string *err);
bool theater_write_file(const char *path, size_t path_len, const uint8_t *content,
			size_t len, theater_string *err);

/* supervisor */
bool theater_spawn(const char *manifest, size_t manifest_len, const theater_opt_bytes *init,
		   theater_string *child_id, theater_string *err);
bool theater_stop_child(const char *child_id, size_t id_len, theater_string *err);
bool theater_restart_child(const char *child_id, size_t id_len, theater_string *err);

/* Helpers */
theater_string theater_string_dup(const char *s);
theater_status theater_ok(void);
theater_status theater_error(const char *msg);


/* ---- supervisor-handlers (link sdk/c/supervisor.c and build with the
 * world supervisor-actor: sh sdk/c/build.sh SRC OUT supervisor-actor) ---- */

/* wit-error-type */
enum theater_error_type {
	THEATER_OPERATION_TIMEOUT, THEATER_CHANNEL_CLOSED, THEATER_SHUTTING_DOWN,
	THEATER_FUNCTION_NOT_FOUND, THEATER_TYPE_MISMATCH, THEATER_INTERNAL,
	THEATER_SERIALIZATION_ERROR, THEATER_UPDATE_COMPONENT_ERROR, THEATER_PAUSED
};

theater_status theater_handle_child_error(theater_opt_bytes *state, theater_string child_id,
					  enum theater_error_type type, theater_opt_bytes data);
theater_status theater_handle_child_exit(theater_opt_bytes *state, theater_string child_id,
					 theater_opt_bytes data);
theater_status theater_handle_child_external_stop(theater_opt_bytes *state,
						  theater_string child_id);

#endif
