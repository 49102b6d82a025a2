/*
 * kv - a key-value store actor on the store handler. Requests:
 *   "put KEY VALUE"  stores VALUE in the actor's store under label KEY;
 *                    answers the content hash
 *   "get KEY"        answers the value, or "not found"
 * State: the id of the store created in init.
 */
#include <stdlib.h>
#include <string.h>

#include "theater.h"

static theater_opt_bytes reply(const void *p, size_t n)
{
	theater_opt_bytes r = { true, { malloc(n ? n : 1), n } };
	memcpy(r.val.ptr, p, n);
	return r;
}

static theater_status fail(theater_string *err)
{
	theater_status s = { true, *err };
	return s;
}

theater_status theater_actor_init(theater_opt_bytes *state, theater_string id)
{
	(void)id;
	if (state->is_some)
		return theater_ok();
	theater_string sid, err;
	if (!theater_store_new(&sid, &err))
		return fail(&err);
	state->is_some = true;
	state->val.ptr = (uint8_t *)sid.ptr;
	state->val.len = sid.len;
	return theater_ok();
}

theater_status theater_handle_request(theater_opt_bytes *state, theater_string rid,
				      theater_bytes msg, theater_opt_bytes *response)
{
	(void)rid;
	const char *m = (const char *)msg.ptr, *sid = (const char *)state->val.ptr;
	size_t n = msg.len, sl = state->val.len;
	theater_string err, hash;
	if (n > 4 && memcmp(m, "put ", 4) == 0) {
		const char *sp = memchr(m + 4, ' ', n - 4);
		if (!sp)
			return theater_error("usage: put KEY VALUE");
		size_t kl = (size_t)(sp - (m + 4));
		if (!theater_store_at_label(sid, sl, m + 4, kl, (const uint8_t *)sp + 1,
					    n - kl - 5, &hash, &err))
			return fail(&err);
		*response = reply(hash.ptr, hash.len);
		free(hash.ptr);
		return theater_ok();
	}
	if (n > 4 && memcmp(m, "get ", 4) == 0) {
		bool found;
		theater_bytes v;
		if (!theater_store_get_by_label(sid, sl, m + 4, n - 4, &found, &hash, &err))
			return fail(&err);
		if (!found) {
			*response = reply("not found", 9);
			return theater_ok();
		}
		bool ok = theater_store_get(sid, sl, hash.ptr, hash.len, &v, &err);
		free(hash.ptr);
		if (!ok)
			return fail(&err);
		response->is_some = true;
		response->val = v;
		return theater_ok();
	}
	return theater_error("unknown command (put KEY VALUE | get KEY)");
}
