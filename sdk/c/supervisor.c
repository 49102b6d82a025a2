/*
 * supervisor.c - glue for the supervisor-handlers exports (optional: an
 * actor that supervises children links this file and is embedded with the
 * world supervisor-actor). Handlers the actor does not define keep the
 * state. Parameters flatten to (state: i32 i32 i32, child-id: i32 i32,
 * ...) and results use the common return area of theater.c.
 */
#include <stdlib.h>

#include "theater_glue.h"

#define EXPORT(name) __attribute__((export_name(name)))

/* handle-child-error(state, (child-id, wit-actor-error { error-type, data })) */
EXPORT("theater:simple/supervisor-handlers#handle-child-error")
uint8_t *theater_exp_handle_child_error(int32_t st, uint8_t *sp, size_t sl, char *id, size_t idl,
				       int32_t type, int32_t dt, uint8_t *dp, size_t dl)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old;
	theater_opt_bytes data = theater__opt_in(dt, dp, dl);
	theater_string cid = { id, idl };
	theater_status s = theater_handle_child_error(&now, cid, (enum theater_error_type)type, data);
	free(id);
	if (data.is_some)
		free(data.val.ptr);
	return theater__finish(s, &old, &now);
}

EXPORT("cabi_post_theater:simple/supervisor-handlers#handle-child-error")
void theater_post_handle_child_error(uint8_t *p)
{
	theater__post_common(p);
}

EXPORT("theater:simple/supervisor-handlers#handle-child-exit")
uint8_t *theater_exp_handle_child_exit(int32_t st, uint8_t *sp, size_t sl, char *id, size_t idl,
				      int32_t dt, uint8_t *dp, size_t dl)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old;
	theater_opt_bytes data = theater__opt_in(dt, dp, dl);
	theater_string cid = { id, idl };
	theater_status s = theater_handle_child_exit(&now, cid, data);
	free(id);
	if (data.is_some)
		free(data.val.ptr);
	return theater__finish(s, &old, &now);
}

EXPORT("cabi_post_theater:simple/supervisor-handlers#handle-child-exit")
void theater_post_handle_child_exit(uint8_t *p)
{
	theater__post_common(p);
}

EXPORT("theater:simple/supervisor-handlers#handle-child-external-stop")
uint8_t *theater_exp_handle_child_external_stop(int32_t st, uint8_t *sp, size_t sl, char *id,
					       size_t idl)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old;
	theater_string cid = { id, idl };
	theater_status s = theater_handle_child_external_stop(&now, cid);
	free(id);
	return theater__finish(s, &old, &now);
}

EXPORT("cabi_post_theater:simple/supervisor-handlers#handle-child-external-stop")
void theater_post_handle_child_external_stop(uint8_t *p)
{
	theater__post_common(p);
}

__attribute__((weak)) theater_status theater_handle_child_error(theater_opt_bytes *state,
								theater_string child_id,
								enum theater_error_type type,
								theater_opt_bytes data)
{
	(void)state, (void)child_id, (void)type, (void)data;
	return theater_ok();
}

__attribute__((weak)) theater_status theater_handle_child_exit(theater_opt_bytes *state,
							       theater_string child_id,
							       theater_opt_bytes data)
{
	(void)state, (void)child_id, (void)data;
	return theater_ok();
}

__attribute__((weak)) theater_status theater_handle_child_external_stop(theater_opt_bytes *state,
									theater_string child_id)
{
	(void)state, (void)child_id;
	return theater_ok();
}
