/*
 * theater.c - canonical-ABI glue between the Theater host and a C actor
 * (see theater.h). Export and import names follow wit-component's legacy
 * core-module convention ("theater:simple/actor#init", "cabi_post_...",
 * "cabi_realloc", import module "theater:simple/runtime"), which both
 * `jco new` and Theater's core-module loader accept.
 *
 * Imports whose results flatten to more than one value take a return
 * pointer as their last parameter. Every `result<T, string>` with T one of
 * _, string, list<u8> or a record of one string (content-ref) has the same
 * layout: [0] discriminant, [4] ptr, [8] len.
 *
 * Return areas (CanonicalABI.md layout, wasm32):
 *   result<tuple<option<list<u8>>>, string>                       16 bytes
 *     [0] disc; ok: [4] opt disc, [8] ptr, [12] len; err: [4] ptr, [8] len
 *   result<tuple<option<list<u8>>, tuple<option<list<u8>>>>, string> 28 bytes
 *     ok: state at 4..16, response option at 16..28
 *   result<tuple<option<list<u8>>, tuple<channel-accept>>, string>  32 bytes
 *     ok: state at 4..16, accepted at 16, message option at 20..32
 */
#include <stdlib.h>
#include <string.h>

#include "theater.h"
#include "theater_glue.h"

#define EXPORT(name) __attribute__((export_name(name)))
#define IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))

EXPORT("cabi_realloc")
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size)
{
	(void)old_size;
	(void)align; /* malloc's alignment (16) covers every Canonical ABI type */
	if (new_size == 0) {
		/* An empty list: the host lowers it through realloc(0, 0, align,
		 * 0). NULL is aligned, in bounds for 0 bytes, and safe to free()
		 * when the SDK later drops the list. */
		free(old);
		return NULL;
	}
	void *p = realloc(old, new_size);
	if (!p)
		__builtin_trap();
	return p;
}

theater_string theater_string_dup(const char *s)
{
	theater_string r = { NULL, strlen(s) };
	r.ptr = malloc(r.len ? r.len : 1);
	if (!r.ptr)
		__builtin_trap();
	memcpy(r.ptr, s, r.len);
	return r;
}

theater_status theater_ok(void)
{
	theater_status s = { false, { NULL, 0 } };
	return s;
}

theater_status theater_error(const char *msg)
{
	theater_status s = { true, theater_string_dup(msg) };
	return s;
}

static _Alignas(8) uint8_t ret_area[32];

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static void put_opt(uint8_t *p, const theater_opt_bytes *o)
{
	p[0] = o->is_some;
	put32(p + 4, o->is_some ? (uint32_t)(uintptr_t)o->val.ptr : 0);
	put32(p + 8, o->is_some ? (uint32_t)o->val.len : 0);
}

static void free_opt(const uint8_t *p)
{
	if (p[0])
		free((void *)(uintptr_t)get32(p + 4));
}

theater_opt_bytes theater__opt_in(int32_t tag, uint8_t *ptr, size_t len)
{
	theater_opt_bytes o = { tag != 0, { tag ? ptr : NULL, tag ? len : 0 } };
	return o;
}

/* Frees the old state unless the actor kept the same buffer. */
static void drop_old(const theater_opt_bytes *old, const theater_opt_bytes *now)
{
	if (old->is_some && (!now->is_some || now->val.ptr != old->val.ptr))
		free(old->val.ptr);
}

/* Writes the common part: discriminant, new state or error. */
uint8_t *theater__finish(theater_status st, const theater_opt_bytes *old, theater_opt_bytes *now)
{
	memset(ret_area, 0, sizeof ret_area);
	if (st.is_err) {
		if (now->is_some && (!old->is_some || now->val.ptr != old->val.ptr))
			free(now->val.ptr);
		if (old->is_some)
			free(old->val.ptr);
		ret_area[0] = 1;
		put32(ret_area + 4, (uint32_t)(uintptr_t)st.err.ptr);
		put32(ret_area + 8, (uint32_t)st.err.len);
		return ret_area;
	}
	drop_old(old, now);
	ret_area[0] = 0;
	put_opt(ret_area + 4, now);
	return ret_area;
}

void theater__post_common(uint8_t *p)
{
	if (p[0] == 1)
		free((void *)(uintptr_t)get32(p + 4));
	else
		free_opt(p + 4);
}

EXPORT("theater:simple/actor#init")
uint8_t *theater_exp_init(int32_t st, uint8_t *sp, size_t sl, char *id, size_t idl)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old;
	theater_string aid = { id, idl };
	theater_status s = theater_actor_init(&now, aid);
	free(id);
	return theater__finish(s, &old, &now);
}

EXPORT("cabi_post_theater:simple/actor#init")
void theater_post_init(uint8_t *p)
{
	theater__post_common(p);
}

EXPORT("theater:simple/message-server-client#handle-send")
uint8_t *theater_exp_handle_send(int32_t st, uint8_t *sp, size_t sl, uint8_t *m, size_t ml)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old;
	theater_bytes msg = { m, ml };
	theater_status s = theater_handle_send(&now, msg);
	free(m);
	return theater__finish(s, &old, &now);
}

EXPORT("cabi_post_theater:simple/message-server-client#handle-send")
void theater_post_handle_send(uint8_t *p)
{
	theater__post_common(p);
}

EXPORT("theater:simple/message-server-client#handle-request")
uint8_t *theater_exp_handle_request(int32_t st, uint8_t *sp, size_t sl, char *rid, size_t rl,
				   uint8_t *m, size_t ml)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old, resp = { false, { NULL, 0 } };
	theater_string r = { rid, rl };
	theater_bytes msg = { m, ml };
	theater_status s = theater_handle_request(&now, r, msg, &resp);
	free(rid);
	free(m);
	uint8_t *ret = theater__finish(s, &old, &now);
	if (!s.is_err)
		put_opt(ret + 16, &resp);
	else if (resp.is_some)
		free(resp.val.ptr);
	return ret;
}

EXPORT("cabi_post_theater:simple/message-server-client#handle-request")
void theater_post_handle_request(uint8_t *p)
{
	if (p[0] == 0)
		free_opt(p + 16);
	theater__post_common(p);
}

EXPORT("theater:simple/message-server-client#handle-channel-open")
uint8_t *theater_exp_handle_channel_open(int32_t st, uint8_t *sp, size_t sl, char *from,
					size_t fl, uint8_t *m, size_t ml)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old, reply = { false, { NULL, 0 } };
	theater_string f = { from, fl };
	theater_bytes msg = { m, ml };
	bool accepted = false;
	theater_status s = theater_handle_channel_open(&now, f, msg, &accepted, &reply);
	free(from);
	free(m);
	uint8_t *ret = theater__finish(s, &old, &now);
	if (!s.is_err) {
		ret[16] = accepted;
		put_opt(ret + 20, &reply);
	} else if (reply.is_some) {
		free(reply.val.ptr);
	}
	return ret;
}

EXPORT("cabi_post_theater:simple/message-server-client#handle-channel-open")
void theater_post_handle_channel_open(uint8_t *p)
{
	if (p[0] == 0)
		free_opt(p + 20);
	theater__post_common(p);
}

EXPORT("theater:simple/message-server-client#handle-channel-message")
uint8_t *theater_exp_handle_channel_message(int32_t st, uint8_t *sp, size_t sl, char *cid,
					   size_t cl, uint8_t *m, size_t ml)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old;
	theater_string c = { cid, cl };
	theater_bytes msg = { m, ml };
	theater_status s = theater_handle_channel_message(&now, c, msg);
	free(cid);
	free(m);
	return theater__finish(s, &old, &now);
}

EXPORT("cabi_post_theater:simple/message-server-client#handle-channel-message")
void theater_post_handle_channel_message(uint8_t *p)
{
	theater__post_common(p);
}

EXPORT("theater:simple/message-server-client#handle-channel-close")
uint8_t *theater_exp_handle_channel_close(int32_t st, uint8_t *sp, size_t sl, char *cid,
					 size_t cl)
{
	theater_opt_bytes old = theater__opt_in(st, sp, sl), now = old;
	theater_string c = { cid, cl };
	theater_status s = theater_handle_channel_close(&now, c);
	free(cid);
	return theater__finish(s, &old, &now);
}

EXPORT("cabi_post_theater:simple/message-server-client#handle-channel-close")
void theater_post_handle_channel_close(uint8_t *p)
{
	theater__post_common(p);
}

/* Default handlers: keep the state. */
__attribute__((weak)) theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes msg)
{
	(void)state;
	(void)msg;
	return theater_ok();
}

__attribute__((weak)) theater_status theater_handle_request(theater_opt_bytes *state,
							    theater_string rid, theater_bytes msg,
							    theater_opt_bytes *response)
{
	(void)state;
	(void)rid;
	(void)msg;
	response->is_some = false;
	return theater_ok();
}

__attribute__((weak)) theater_status theater_handle_channel_open(theater_opt_bytes *state,
								 theater_string sender,
								 theater_bytes msg, bool *accepted,
								 theater_opt_bytes *reply)
{
	(void)state;
	(void)sender;
	(void)msg;
	(void)reply;
	*accepted = false;
	return theater_ok();
}

__attribute__((weak)) theater_status theater_handle_channel_message(theater_opt_bytes *state,
								    theater_string cid,
								    theater_bytes msg)
{
	(void)state;
	(void)cid;
	(void)msg;
	return theater_ok();
}

__attribute__((weak)) theater_status theater_handle_channel_close(theater_opt_bytes *state,
								  theater_string cid)
{
	(void)state;
	(void)cid;
	return theater_ok();
}

/* ---- imports ------------------------------------------------------------- */

IMPORT("theater:simple/runtime", "log")
extern void theater_imp_log(const char *p, size_t n);
IMPORT("theater:simple/runtime", "get-state")
extern void theater_imp_get_state(uint8_t *ret);
IMPORT("theater:simple/message-server-host", "send")
extern void theater_imp_send(const char *id, size_t idl, const uint8_t *m, size_t ml,
			     uint8_t *ret);

void theater_log(const char *msg, size_t len)
{
	theater_imp_log(msg, len);
}

theater_opt_bytes theater_get_state(void)
{
	_Alignas(4) uint8_t r[12];
	theater_imp_get_state(r);
	return theater__opt_in(r[0], (uint8_t *)(uintptr_t)get32(r + 4), get32(r + 8));
}

bool theater_send(const char *id, size_t idl, const uint8_t *m, size_t ml, theater_string *err)
{
	_Alignas(4) uint8_t r[12];
	theater_imp_send(id, idl, m, ml, r);
	if (r[0] == 0)
		return true;
	if (err) {
		err->ptr = (char *)(uintptr_t)get32(r + 4);
		err->len = get32(r + 8);
	}
	return false;
}

/* ---- more imports -------------------------------------------------------- */

#define I_(iface, name) IMPORT("theater:simple/" iface, name)
typedef const char *cstr;
typedef const uint8_t *cbytes;

I_("runtime", "shutdown") extern void imp_shutdown(int32_t, cbytes, size_t, uint8_t *);
I_("message-server-host", "request") extern void imp_request(cstr, size_t, cbytes, size_t, uint8_t *);
I_("message-server-host", "open-channel") extern void imp_open_channel(cstr, size_t, cbytes, size_t, uint8_t *);
I_("message-server-host", "send-on-channel") extern void imp_send_on_channel(cstr, size_t, cbytes, size_t, uint8_t *);
I_("message-server-host", "close-channel") extern void imp_close_channel(cstr, size_t, uint8_t *);
I_("message-server-host", "list-outstanding-requests") extern void imp_list_outstanding(uint8_t *);
I_("message-server-host", "respond-to-request") extern void imp_respond(cstr, size_t, cbytes, size_t, uint8_t *);
I_("message-server-host", "cancel-request") extern void imp_cancel(cstr, size_t, uint8_t *);
I_("store", "new") extern void imp_store_new(uint8_t *);
I_("store", "store") extern void imp_store_store(cstr, size_t, cbytes, size_t, uint8_t *);
I_("store", "get") extern void imp_store_get(cstr, size_t, cstr, size_t, uint8_t *);
I_("store", "label") extern void imp_store_label(cstr, size_t, cstr, size_t, cstr, size_t, uint8_t *);
I_("store", "get-by-label") extern void imp_store_get_by_label(cstr, size_t, cstr, size_t, uint8_t *);
I_("store", "store-at-label") extern void imp_store_at_label(cstr, size_t, cstr, size_t, cbytes, size_t, uint8_t *);
I_("timing", "now") extern uint64_t imp_now(void);
I_("timing", "sleep") extern void imp_sleep(uint64_t, uint8_t *);
I_("random", "random-bytes") extern void imp_random_bytes(uint32_t, uint8_t *);
I_("random", "random-range") extern void imp_random_range(uint64_t, uint64_t, uint8_t *);
I_("random", "generate-uuid") extern void imp_uuid(uint8_t *);
I_("environment", "get-var") extern void imp_get_var(cstr, size_t, uint8_t *);
I_("filesystem", "read-file") extern void imp_read_file(cstr, size_t, uint8_t *);
I_("filesystem", "write-file") extern void imp_write_file(cstr, size_t, cbytes, size_t, uint8_t *);
I_("supervisor", "spawn") extern void imp_spawn(cstr, size_t, int32_t, cbytes, size_t, uint8_t *);
I_("supervisor", "stop-child") extern void imp_stop_child(cstr, size_t, uint8_t *);
I_("supervisor", "restart-child") extern void imp_restart_child(cstr, size_t, uint8_t *);

/* result<T, string> with T's payload (if any) as (ptr, len) at offset 4. */
static bool take(const uint8_t *r, void *okp, theater_string *err)
{
	void *ptr = (void *)(uintptr_t)get32(r + 4);
	size_t len = get32(r + 8);
	if (r[0] == 0) {
		if (okp) {
			theater_bytes *b = okp; /* same layout as theater_string */
			b->ptr = ptr;
			b->len = len;
		}
		return true;
	}
	if (err) {
		err->ptr = ptr;
		err->len = len;
	} else {
		free(ptr);
	}
	return false;
}



bool theater_shutdown(const theater_opt_bytes *d, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_shutdown(d && d->is_some, d && d->is_some ? d->val.ptr : NULL,
		     d && d->is_some ? d->val.len : 0, r);
	return take(r, NULL, err);
}

bool theater_request(cstr id, size_t idl, cbytes m, size_t ml, theater_bytes *reply,
		     theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_request(id, idl, m, ml, r);
	return take(r, reply, err);
}

bool theater_open_channel(cstr id, size_t idl, cbytes m, size_t ml, theater_string *cid,
			  theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_open_channel(id, idl, m, ml, r);
	return take(r, cid, err);
}

bool theater_send_on_channel(cstr cid, size_t cl, cbytes m, size_t ml, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_send_on_channel(cid, cl, m, ml, r);
	return take(r, NULL, err);
}

bool theater_close_channel(cstr cid, size_t cl, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_close_channel(cid, cl, r);
	return take(r, NULL, err);
}

bool theater_respond_to_request(cstr rid, size_t rl, cbytes m, size_t ml, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_respond(rid, rl, m, ml, r);
	return take(r, NULL, err);
}

bool theater_cancel_request(cstr rid, size_t rl, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_cancel(rid, rl, r);
	return take(r, NULL, err);
}

void theater_list_outstanding_requests(theater_string **ids, size_t *n)
{
	_Alignas(8) uint8_t r[16];
	imp_list_outstanding(r);
	uint8_t *p = (uint8_t *)(uintptr_t)get32(r);
	*n = get32(r + 4);
	*ids = malloc(*n ? *n * sizeof(theater_string) : 1);
	if (!*ids)
		__builtin_trap();
	for (size_t i = 0; i < *n; i++) {
		(*ids)[i].ptr = (char *)(uintptr_t)get32(p + 8 * i);
		(*ids)[i].len = get32(p + 8 * i + 4);
	}
	free(p);
}

bool theater_store_new(theater_string *sid, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_store_new(r);
	return take(r, sid, err);
}

bool theater_store_put(cstr sid, size_t sl, cbytes c, size_t len, theater_string *hash,
		       theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_store_store(sid, sl, c, len, r);
	return take(r, hash, err);
}

bool theater_store_get(cstr sid, size_t sl, cstr h, size_t hl, theater_bytes *content,
		       theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_store_get(sid, sl, h, hl, r);
	return take(r, content, err);
}

bool theater_store_label(cstr sid, size_t sl, cstr label, size_t ll, cstr h, size_t hl,
			 theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_store_label(sid, sl, label, ll, h, hl, r);
	return take(r, NULL, err);
}

/* result<option<content-ref>, string>: [0] disc; ok: [4] option disc,
 * [8] ptr, [12] len; error: [4] ptr, [8] len. */
bool theater_store_get_by_label(cstr sid, size_t sl, cstr label, size_t ll, bool *found,
				theater_string *hash, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_store_get_by_label(sid, sl, label, ll, r);
	if (r[0] != 0)
		return take(r, NULL, err);
	*found = r[4] != 0;
	if (*found) {
		hash->ptr = (char *)(uintptr_t)get32(r + 8);
		hash->len = get32(r + 12);
	}
	return true;
}

bool theater_store_at_label(cstr sid, size_t sl, cstr label, size_t ll, cbytes c, size_t len,
			    theater_string *hash, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_store_at_label(sid, sl, label, ll, c, len, r);
	return take(r, hash, err);
}

uint64_t theater_now(void)
{
	return imp_now();
}

bool theater_sleep(uint64_t ms, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_sleep(ms, r);
	return take(r, NULL, err);
}

bool theater_random_bytes(uint32_t n, theater_bytes *out, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_random_bytes(n, r);
	return take(r, out, err);
}

/* result<u64, string>: payload at 8 (u64 alignment). */
bool theater_random_range(uint64_t min, uint64_t max, uint64_t *out, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_random_range(min, max, r);
	if (r[0] == 0) {
		memcpy(out, r + 8, 8);
		return true;
	}
	if (err) {
		err->ptr = (char *)(uintptr_t)get32(r + 8);
		err->len = get32(r + 12);
	}
	return false;
}

bool theater_generate_uuid(theater_string *out, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_uuid(r);
	return take(r, out, err);
}

/* option<string>: [0] disc, [4] ptr, [8] len. */
bool theater_get_var(cstr name, size_t nl, theater_string *value)
{
	_Alignas(8) uint8_t r[16];
	imp_get_var(name, nl, r);
	if (!r[0])
		return false;
	value->ptr = (char *)(uintptr_t)get32(r + 4);
	value->len = get32(r + 8);
	return true;
}

bool theater_read_file(cstr path, size_t pl, theater_bytes *content, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_read_file(path, pl, r);
	return take(r, content, err);
}

bool theater_write_file(cstr path, size_t pl, cbytes c, size_t len, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_write_file(path, pl, c, len, r);
	return take(r, NULL, err);
}

bool theater_spawn(cstr manifest, size_t ml, const theater_opt_bytes *init,
		   theater_string *child, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_spawn(manifest, ml, init && init->is_some, init && init->is_some ? init->val.ptr : NULL,
		  init && init->is_some ? init->val.len : 0, r);
	return take(r, child, err);
}

bool theater_stop_child(cstr id, size_t idl, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_stop_child(id, idl, r);
	return take(r, NULL, err);
}

bool theater_restart_child(cstr id, size_t idl, theater_string *err)
{
	_Alignas(8) uint8_t r[16];
	imp_restart_child(id, idl, r);
	return take(r, NULL, err);
}
