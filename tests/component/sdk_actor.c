/*
 * sdk_actor.c - a guest that references every import of the C SDK (so the
 * core module imports them all and the world check verifies each lowered
 * signature) and, in handle-send, calls a few whose results have different
 * layouts, writing what it got into its state for tests/component/test_run.c.
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

static size_t put(char *out, size_t at, const void *p, size_t n)
{
	memcpy(out + at, p, n);
	return at + n;
}

static size_t put_u64(char *out, size_t at, uint64_t v)
{
	char tmp[24];
	int k = 0;
	do
		tmp[k++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (k)
		out[at++] = tmp[--k];
	return at;
}

/* Never called: keeps every import referenced. */
void unused_imports(void);
__attribute__((export_name("unused-imports"))) void unused_imports(void)
{
	theater_string s, e;
	theater_bytes b;
	bool f;
	uint64_t u;
	theater_shutdown(NULL, &e);
	theater_open_channel("a", 1, NULL, 0, &s, &e);
	theater_send_on_channel("c", 1, NULL, 0, &e);
	theater_close_channel("c", 1, &e);
	theater_respond_to_request("r", 1, NULL, 0, &e);
	theater_cancel_request("r", 1, &e);
	theater_store_new(&s, &e);
	theater_store_put("s", 1, NULL, 0, &s, &e);
	theater_store_get("s", 1, "h", 1, &b, &e);
	theater_store_label("s", 1, "l", 1, "h", 1, &e);
	theater_store_get_by_label("s", 1, "l", 1, &f, &s, &e);
	theater_store_at_label("s", 1, "l", 1, NULL, 0, &s, &e);
	theater_sleep(1, &e);
	theater_random_bytes(4, &b, &e);
	theater_random_range(0, 1, &u, &e);
	theater_generate_uuid(&s, &e);
	theater_get_var("X", 1, &s);
	theater_read_file("p", 1, &b, &e);
	theater_write_file("p", 1, NULL, 0, &e);
	theater_spawn("m", 1, NULL, &s, &e);
	theater_stop_child("c", 1, &e);
	theater_restart_child("c", 1, &e);
	theater_send("a", 1, NULL, 0, &e);
	theater_get_state();
	theater_log("x", 1);
}

theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes msg)
{
	(void)msg;
	char *out = malloc(256);
	size_t at = 0;
	theater_bytes reply;
	theater_string err, hash, var, *ids;
	size_t n;
	uint64_t r = 0;
	bool found = false;
	if (theater_request("peer", 4, (const uint8_t *)"ping", 4, &reply, &err)) {
		at = put(out, at, reply.ptr, reply.len);
		free(reply.ptr);
	}
	out[at++] = '|';
	if (theater_random_range(10, 20, &r, &err))
		at = put_u64(out, at, r);
	out[at++] = '|';
	if (theater_store_get_by_label("s", 1, "lbl", 3, &found, &hash, &err) && found) {
		at = put(out, at, hash.ptr, hash.len);
		free(hash.ptr);
	}
	out[at++] = '|';
	if (theater_get_var("HOME", 4, &var)) {
		at = put(out, at, var.ptr, var.len);
		free(var.ptr);
	}
	out[at++] = '|';
	theater_list_outstanding_requests(&ids, &n);
	at = put_u64(out, at, n);
	for (size_t i = 0; i < n; i++) {
		out[at++] = ',';
		at = put(out, at, ids[i].ptr, ids[i].len);
		free(ids[i].ptr);
	}
	free(ids);
	out[at++] = '|';
	at = put_u64(out, at, theater_now());
	out[at++] = '|';
	if (!theater_sleep(5, &err)) {
		at = put(out, at, err.ptr, err.len);
		free(err.ptr);
	}
	state->is_some = true;
	state->val.ptr = (uint8_t *)out;
	state->val.len = at;
	return theater_ok();
}
