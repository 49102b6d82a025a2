/*
 * handlers.h (internal) - the host functions behind every import of the
 * theater:simple world (prefix rth_): runtime, message-server-host,
 * supervisor, store, timing, random, environment, filesystem.
 *
 * Every call goes through one dispatcher (dispatch.c), which
 *   1. checks that the actor's effective permissions enable the handler
 *      (a denied call answers an error - or none/false/empty where the
 *      function has no error case - and records `permission.denied`);
 *   2. runs the function, which may answer now, deny (its own finer
 *      checks: a path outside the root, a variable not allowed ...),
 *      trap the actor, or suspend it (RTH_PENDING: the answer comes later
 *      through rta_complete; blocking work runs on the runtime's pool);
 *   3. records `host.<interface>.<function>` with the full arguments and
 *      result as CBOR [args, result] (value.h), so a replay can answer
 *      the same call from the chain.
 */
#ifndef TH_HANDLERS_H
#define TH_HANDLERS_H

#include "runtime/rt.h"

/* The import table of the world, made once per runtime. */
int rth_imports(thc_host_import **out, size_t *n, th_err *err);
void rth_imports_free(thc_host_import *imports);

typedef enum rth_ret {
	RTH_OK = 0,      /* *result is the answer                          */
	RTH_PENDING = 1, /* rta_suspend was called; rta_complete answers   */
	RTH_TRAP = 2,    /* msg says why the actor traps                    */
	RTH_DENIED = 3   /* *result is the denial's answer, msg the reason  */
} rth_ret;

/* How a call answers when its handler is not enabled. */
typedef enum rth_denymode {
	RTH_DENY_ERR = 0, /* result<_, string>: err(reason)  */
	RTH_DENY_NONE,    /* option: none                     */
	RTH_DENY_FALSE,   /* bool: false                      */
	RTH_DENY_EMPTY,   /* list: empty                      */
	RTH_DENY_UNIT,    /* no result                        */
	RTH_DENY_TRAP     /* no error case: the actor traps   */
} rth_denymode;

typedef struct rth_fn rth_fn;

typedef struct rth_call {
	rta_actor *a;
	const rth_fn *f;
	const thc_val *args;
	uint32_t nargs;
	thc_val *result;
	char msg[TH_ERR_MSG_MAX];
} rth_call;

typedef rth_ret (*rth_impl)(rth_call *c);

struct rth_fn {
	const char *iface;   /* "theater:simple/runtime" */
	const char *name;    /* "log"                    */
	const char *event;   /* "host.theater:simple/runtime.log" */
	int kind;            /* thm_handler_kind         */
	rth_denymode deny;
	rth_impl impl;       /* runs on the actor's turn */
	rth_impl blocking;   /* or: runs on the blocking-work pool (c->a
			      * is suspended meanwhile; no turn state) */
};

/* The tables, each ending with a zeroed entry. */
extern const rth_fn rth_runtime_fns[];
extern const rth_fn rth_message_fns[];
extern const rth_fn rth_supervisor_fns[];
extern const rth_fn rth_store_fns[];
extern const rth_fn rth_timing_fns[];
extern const rth_fn rth_random_fns[];
extern const rth_fn rth_env_fns[];
extern const rth_fn rth_fs_fns[];

/* Record a denial (any thread) and count it. */
void rth_record_denied(rta_actor *a, const rth_fn *f, const thc_val *args,
		       uint32_t nargs, const char *why);

/* Result builders; each returns RTH_OK, or RTH_TRAP on out of memory
 * (with c->msg set). */
rth_ret rth_ok_unit(rth_call *c);                     /* ok(())          */
rth_ret rth_err(rth_call *c, const char *fmt, ...) TH_PRINTF(2, 3);
rth_ret rth_deny(rth_call *c, const char *fmt, ...) TH_PRINTF(2, 3);
/* The same with the reason already in c->msg. */
rth_ret rth_denied(rth_call *c);
rth_ret rth_ok_val(rth_call *c, thc_val *v);          /* ok(v), takes v  */
rth_ret rth_ok_bytes(rth_call *c, const void *p, size_t n);
rth_ret rth_ok_str(rth_call *c, const char *s, size_t n);
rth_ret rth_oom(rth_call *c);

/* Arguments. */
const char *rth_str(const thc_val *v, size_t *len);    /* NULL if not one */
const uint8_t *rth_bytes(const thc_val *v, size_t *len, uint8_t **tmp);

/* Copy a string argument into buf (NUL-terminated); false when it does
 * not fit or holds a NUL. */
bool rth_cstr(const thc_val *v, char *buf, size_t cap);

/* Suspend the actor until a later rta_complete. */
rth_ret rth_suspend(rth_call *c, uint64_t *token);

#endif
