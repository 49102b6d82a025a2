/*
 * replay.c - re-running an actor from its Event Chain (prefix rp_, public
 * thrp_replay).
 *
 * 1. What the chain gives us (docs/runtime.md lists the events)
 *
 *   actor.spawning      [name, manifest, parent, version (, init-state,
 *                        fuel, pages)]  - the initial state and limits when
 *                        recorded; else re-read from the manifest file
 *   component.loaded    [hash, size, form, cached] - what to instantiate
 *   actor.instantiated  [pages]          - checked after instantiating
 *   export.call         [export, msg-id, params] - a handler that made host
 *                        calls: they follow, up to its export.result
 *   host.<iface>.<fn>   [args, result]   - one host call; result may be
 *                        {"trap": msg}
 *   host.wasi_snapshot_preview1.<fn>  [args, [errno, in, out]] - a WASI
 *                        call of a core-module actor (rp_wasi_hook)
 *   export.result       [export, msg-id, params | null, result] - params
 *                        set: a handler that made no host call
 *   actor.failed        [kind, reason (, backtrace)] - the trap or error
 *                        that ended it; backtrace [[func, offset, name |
 *                        null] ...] innermost first, empty when no trap
 *   actor.restarted     [hash]           - a new instance, same state
 *   supervision.restarting [n, "state=reset" | "state=preserve", ...] -
 *                        reset: the restart starts from the initial state
 *   actor.resumed       [hash, state-seq | null, [msg-id ...], fuel,
 *                        pages] - the actor rebuilt from its chain after its
 *                        runtime died (src/runtime/resume.c): the call in
 *                        progress then, if any, was cut short and has no
 *                        outcome; the state must be the one of export.result
 *                        state-seq; a new instance follows (component.loaded)
 * Health probes (supervision's export probes): export.call / export.result
 * of "theater:simple/health.check" whatever function the probe names (its
 * name is the data of the control message with that msg-id, remembered by
 * next_raw); a probe's state is never committed, and a probe that traps is
 * a miss, not a failure: its export.call is recorded, nothing after it, and
 * the instance goes on (as live).
 * Everything else (message.received, permission.denied, message.response,
 * message.dropped, supervision notices ...) is not an input of the actor
 * and is skipped (interpreted() lists what is read).
 *
 * 2. The walk
 *
 * One cursor (rp.pos) moves through the chain. The driver (rp_walk) reads
 * an event; on export.call or a self-contained export.result it starts the
 * export with the recorded params and the state the previous call
 * committed, and runs the engine to the end. The actor's host calls land
 * in rp_host, which advances the same cursor to the next host.* event,
 * compares the function and the CBOR of the arguments byte for byte with
 * the recording, and answers with the recorded result (decoded with the
 * import's type, so the actor receives exactly what it received live).
 * When the call ends, its outcome (result bytes, or trap reason) is
 * compared with the next export.result or actor.failed. The first
 * difference is written into the report with the last step that matched,
 * and the walk stops.
 *
 * 3. Invariants
 *   R1. Every event before rp.pos has been examined; rp.prev_hash is the
 *       hash of event rp.pos - 1, and each event read is re-hashed and its
 *       link checked (a tampered event stops the replay before use).
 *   R2. The committed state is only ever the state of an export.result
 *       that matched the recording (so it is the recorded state).
 *   R3. Host calls are answered synchronously: the engine never suspends
 *       (no THC_HOST_PENDING), fuel is one cap per call (no slicing), so a
 *       call runs to DONE or TRAPPED in one thw_exec_run.
 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "component/types.h"
#include "replay/diag.h"
#include "runtime/rt.h"
#include "runtime/spec.h"
#include "runtime/value.h"
#include "theater/replay.h"
#include "theater/wasi.h"

#define RP_COMPONENT_MAX (256u << 20)

typedef struct rp rp;

/* One import of the component, answered from the chain. */
typedef struct rp_slot {
	rp *r;
	thc_funcref f;
	char event[THX_NAME_MAX + 1]; /* "host.<iface>.<fn>" */
} rp_slot;

struct rp {
	ths_store *store;
	thx_chain *c;
	const thrp_opts *opt;
	thrp_report *rep;
	th_err *err;
	uint64_t end;               /* exclusive */
	uint64_t pos;               /* next event to read */
	uint8_t prev_hash[THX_HASH_LEN];
	bool has_prev;

	/* What runs. */
	thc_component *comp;
	thw_realm *realm;
	thw_exec *exec;
	thc_instance *inst;
	thc_host_import *imports;
	thw_wasi *wasi;             /* core modules importing WASI */
	bool needs_wasi;
	int devnull;
	char name[THX_NAME_MAX + 1]; /* manifest name: WASI's argv[0] */
	rp_slot *slots;
	size_t nslots;
	bool failed;                /* instance trapped: discard */
	int xidx[RTA_NX];           /* export index per rta_export, -1 none */

	/* Inputs not in every chain: from actor.spawning or the manifest. */
	uint8_t *init_state;
	size_t init_len;
	bool has_init;
	uint64_t fuel;              /* per call; UINT64_MAX = none */
	uint32_t pages;             /* 0 = engine default */

	/* The committed state (R2), and the export.result that committed it
	 * (none: the initial state). */
	uint8_t *state;
	size_t state_len;
	bool has_state;
	uint64_t state_seq;
	bool has_state_seq;

	/* Control messages' data by id (the function a health probe names);
	 * the last RP_CTL of them. */
	struct { uint64_t id; char name[64]; } ctl[16];
	unsigned nctl;

	/* A runtime crash cut the call in progress short: the actor.resumed
	 * met inside it is held for the walk (no verdict on that call). */
	bool cut;
	thx_event held;
	bool has_held;

	/* The call in progress. */
	bool in_call;
	bool self_contained;        /* started from export.result */
	uint64_t call_seq;
	int halt;                   /* 1 diverged, 2 reached the end */
	int rc;                     /* a hard error inside a host call */
};

/* ---- report helpers ---------------------------------------------------- */

static void match(rp *r, uint64_t seq, const char *type)
{
	size_t n = strlen(type);
	if (n >= sizeof r->rep->last_match_type)
		n = sizeof r->rep->last_match_type - 1;
	r->rep->has_last_match = true;
	r->rep->last_match_seq = seq;
	memcpy(r->rep->last_match_type, type, n);
	r->rep->last_match_type[n] = 0;
}

static void diverge(rp *r, uint64_t seq, const char *type, const char *what,
		    const char *expected, const char *actual)
{
	thrp_report *p = r->rep;
	if (r->halt)
		return;
	r->halt = 1;
	p->ok = false;
	p->seq = seq;
	snprintf(p->type, sizeof p->type, "%s", type);
	snprintf(p->what, sizeof p->what, "%s", what);
	snprintf(p->expected, sizeof p->expected, "%s", expected);
	snprintf(p->actual, sizeof p->actual, "%s", actual);
}

static void sha_hex(const uint8_t *p, size_t n, char out[65])
{
	uint8_t h[32];
	unsigned len = 0;
	if (!EVP_Digest(p, n, h, &len, EVP_sha256(), NULL) || len != 32) {
		snprintf(out, 65, "?");
		return;
	}
	th_hex(h, 32, out);
}

/* ---- reading the chain (R1) ---------------------------------------------- */

/* The events replay interprets; every other type (message.received,
 * permission.denied, message.response, message.dropped, actor.created,
 * health.missed, deadlock.detected ...) tells about the actor's
 * surroundings, not its inputs, and may be appended at any time by other
 * threads - even in the middle of a call - so it is skipped. */
static bool interpreted(const char *type)
{
	static const char *const kinds[] = {
		"export.call", "export.result", "actor.failed", "actor.spawning",
		"component.loaded", "actor.instantiated", "actor.restarted",
		"actor.resumed", "supervision.restarting", "actor.stopped",
	};
	if (!strncmp(type, "host.", 5))
		return true;
	for (size_t i = 0; i < TH_ARRAY_LEN(kinds); i++)
		if (!strcmp(type, kinds[i]))
			return true;
	return false;
}

/* message.received [id, "control", sender, ref, data]: a probe's data is
 * the name of the health function it calls. */
static void remember_control(rp *r, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t n, id, ref;
	const char *k, *snd;
	size_t kl, sl, bl;
	const uint8_t *b;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &n, NULL) || n != 5 ||
	    th_cbor_get_uint(&d, &id, NULL) || th_cbor_get_text(&d, &k, &kl, NULL) ||
	    kl != 7 || memcmp(k, "control", 7) || th_cbor_get_text(&d, &snd, &sl, NULL) ||
	    th_cbor_get_uint(&d, &ref, NULL) || th_cbor_get_bytes(&d, &b, &bl, NULL) ||
	    bl == 0 || bl >= sizeof r->ctl[0].name)
		return;
	unsigned i = r->nctl++ % TH_ARRAY_LEN(r->ctl);
	r->ctl[i].id = id;
	memcpy(r->ctl[i].name, b, bl);
	r->ctl[i].name[bl] = 0;
}

/* The health function probe message msg calls ("check" when unknown). */
static const char *probe_name(const rp *r, uint64_t msg)
{
	for (unsigned i = 0; i < TH_ARRAY_LEN(r->ctl) && i < r->nctl; i++)
		if (r->ctl[i].id == msg)
			return r->ctl[i].name;
	return "check";
}

/* Read event r->pos into *ev and advance. 1: got one, 0: at the end,
 * negative: error (r->err set). */
static int next_raw(rp *r, thx_event *ev)
{
	uint8_t h[THX_HASH_LEN];
	int rc;

	thx_event_release(ev);
	if (r->pos >= r->end)
		return 0;
	rc = thx_get(r->c, r->pos, ev, r->err);
	if (rc)
		return rc;
	if (ev->pruned)
		return th_err_set(r->err, TH_ESTATE,
				  "event %llu (%s) is pruned: its data is gone, the actor "
				  "cannot be replayed past it",
				  (unsigned long long)ev->seq, ev->type);
	rc = thx_event_hash(r->has_prev ? r->prev_hash : NULL, ev->actor, ev->seq,
			    ev->timestamp_ns, ev->type, ev->data, ev->len,
			    ev->description, h, r->err);
	if (rc)
		return rc;
	if (memcmp(h, ev->hash, THX_HASH_LEN) ||
	    (r->has_prev && (!ev->has_parent ||
			     memcmp(ev->parent, r->prev_hash, THX_HASH_LEN))))
		return th_err_set(r->err, TH_ECORRUPT,
				  "event %llu (%s) does not match its hash or link: the "
				  "chain was altered (run 'theater chain verify')",
				  (unsigned long long)ev->seq, ev->type);
	memcpy(r->prev_hash, ev->hash, THX_HASH_LEN);
	r->has_prev = true;
	r->pos++;
	if (ev->type[0] == 'm' && !strcmp(ev->type, "message.received"))
		remember_control(r, ev);
	r->rep->events++;
	r->rep->last_seq = ev->seq;
	if (r->opt->progress && (r->pos & 1023) == 0)
		r->opt->progress(r->pos, r->end, r->opt->progress_arg);
	return 1;
}

/* The next event that is an input or outcome of the actor. */
static int next_significant(rp *r, thx_event *ev)
{
	int rc;
	while ((rc = next_raw(r, ev)) == 1)
		if (interpreted(ev->type))
			return 1;
	return rc;
}

/* An actor.failed of a kind the engine produces when a call traps (the
 * replay reproduces those); other kinds (unresponsive, mailbox-limit,
 * escalation ...) end the actor from outside. */
static bool engine_failure(const thx_event *ev)
{
	static const char *const kinds[] = {
		"trap", "out-of-fuel", "stack-exhausted", "out-of-memory",
		"memory-limit", "internal",
	};
	th_cbor_dec d;
	uint64_t n;
	const char *k;
	size_t kl;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (!ev->data || th_cbor_get_array(&d, &n, NULL) || n < 2 ||
	    th_cbor_get_text(&d, &k, &kl, NULL))
		return true; /* malformed: left to check_failure to report */
	for (size_t i = 0; i < TH_ARRAY_LEN(kinds); i++)
		if (strlen(kinds[i]) == kl && !memcmp(kinds[i], k, kl))
			return true;
	return false;
}

/* An event that ends the call in progress from outside: the runtime died
 * (actor.resumed), the actor was stopped or terminated during the call
 * (actor.stopped), or failed for a reason that is not the call's own
 * (actor.failed of a kind the engine does not produce). */
static bool ends_from_outside(const thx_event *ev)
{
	return !strcmp(ev->type, "actor.resumed") || !strcmp(ev->type, "actor.stopped") ||
		(!strcmp(ev->type, "actor.failed") && !engine_failure(ev));
}

/* Inside a call: an event that ended it from outside where its next step
 * should be. Keep the event for the walk, cut the call short (no verdict:
 * its outcome was never recorded). */
static bool cut_here(rp *r, thx_event *ev)
{
	if (!ends_from_outside(ev))
		return false;
	r->held = *ev;
	memset(ev, 0, sizeof *ev);
	r->has_held = true;
	r->cut = true;
	return true;
}

/* ---- the state ------------------------------------------------------------- */

static int state_val(rp *r, thc_val *out)
{
	thc_val b = { 0 };
	if (!r->has_state)
		return thc_val_case(THC_OPTION, 0, NULL, out);
	if (thc_val_bytes(r->state, r->state_len, &b))
		return TH_ENOMEM;
	if (thc_val_case(THC_OPTION, 1, &b, out)) {
		thc_val_release(&b);
		return TH_ENOMEM;
	}
	return 0;
}

/* The state an export's ok payload carries: tuple<option<list<u8>>, ...>.
 * *has false for none; -1 when the value has no state. */
static int state_of(const thc_val *res, const uint8_t **p, size_t *n,
		    bool *has, uint8_t **tmp)
{
	const thc_val *ok, *opt, *b;
	*tmp = NULL;
	*has = false;
	*p = NULL;
	*n = 0;
	if (res->kind != THC_RESULT || res->of.var.disc != 0)
		return -1;
	ok = res->of.var.payload;
	if (!ok || ok->kind != THC_TUPLE || ok->of.agg.n < 1)
		return -1;
	opt = &ok->of.agg.items[0];
	if (opt->kind != THC_OPTION)
		return -1;
	if (opt->of.var.disc != 1 || !opt->of.var.payload)
		return 0;
	b = opt->of.var.payload;
	*has = true;
	if (b->kind == THC_BYTES) {
		*p = b->of.bytes.ptr;
		*n = b->of.bytes.len;
		return 0;
	}
	if (b->kind != THC_LIST)
		return -1;
	*tmp = th_malloc(b->of.agg.n ? b->of.agg.n : 1);
	if (!*tmp)
		return -1;
	for (uint32_t i = 0; i < b->of.agg.n; i++)
		(*tmp)[i] = (uint8_t)b->of.agg.items[i].of.u;
	*p = *tmp;
	*n = b->of.agg.n;
	return 0;
}

static int commit(rp *r, const thc_val *res, uint64_t seq)
{
	const uint8_t *p;
	size_t n;
	bool has;
	uint8_t *tmp, *copy = NULL;
	if (state_of(res, &p, &n, &has, &tmp))
		return 0; /* an error result: the actor fails, state unchanged */
	if (has) {
		copy = th_malloc(n ? n : 1);
		if (!copy) {
			th_free(tmp);
			return th_err_set(r->err, TH_ENOMEM, "out of memory");
		}
		memcpy(copy, p, n);
	}
	th_free(tmp);
	th_free(r->state);
	r->state = copy;
	r->state_len = n;
	r->has_state = has;
	r->state_seq = seq;
	r->has_state_seq = true;
	return 0;
}

/* "ok, state 3 bytes sha256 1f2e...; [0, [[h'313233']]]" for a result. */
static void describe_result(const thc_type *t, const uint8_t *cbor, size_t n,
			    char *out, size_t cap)
{
	thc_val v = { 0 };
	th_cbor_dec d;
	char diag[600], hex[65];
	const uint8_t *p;
	size_t len;
	bool has;
	uint8_t *tmp;

	rpd_text(cbor, n, diag, sizeof diag);
	th_cbor_dec_init(&d, cbor, n);
	if (!t || rtv_decode(&d, t, &v, NULL)) {
		snprintf(out, cap, "%s", diag);
		return;
	}
	if (v.kind == THC_RESULT && v.of.var.disc == 1) {
		snprintf(out, cap, "error result %s", diag);
	} else if (!state_of(&v, &p, &len, &has, &tmp)) {
		if (has) {
			sha_hex(p, len, hex);
			snprintf(out, cap, "ok, state %zu bytes sha256 %.16s; %s", len, hex, diag);
		} else {
			snprintf(out, cap, "ok, no state; %s", diag);
		}
		th_free(tmp);
	} else {
		snprintf(out, cap, "%s", diag);
	}
	thc_val_release(&v);
}

/* ---- host calls answered from the chain ------------------------------------ */

static void call_text(const char *event, const uint8_t *args, size_t n,
		      char *out, size_t cap)
{
	char diag[THRP_TEXT_MAX];
	rpd_text(args, n, diag, sizeof diag);
	snprintf(out, cap, "%s(%s)", event + 5, diag);
}

/* The bytes of the first item of an array's next element. */
static int item_span(th_cbor_dec *d, const uint8_t **p, size_t *n)
{
	size_t at = d->pos;
	if (th_cbor_skip(d, NULL))
		return -1;
	*p = d->p + at;
	*n = d->pos - at;
	return 0;
}

static thc_hostret rp_host(thc_hostcall *call, void *ctx, const thc_val *args,
			   uint32_t nargs, thc_val *result)
{
	rp_slot *s = ctx;
	rp *r = s->r;
	thx_event ev = { 0 };
	th_cbor_enc e;
	th_cbor_dec d;
	const uint8_t *rargs, *rres;
	size_t rargs_n, rres_n;
	uint64_t cnt;
	char actual[THRP_TEXT_MAX], expected[THRP_TEXT_MAX];
	thc_hostret ret = THC_HOST_OK;
	int rc;

	if (r->halt || r->cut)
		return thc_hostcall_trap(call, "replay stopped");
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, nargs);
	for (uint32_t i = 0; i < nargs; i++)
		rtv_encode(&e, &args[i]);
	if (e.err) {
		th_cbor_enc_release(&e);
		r->rc = th_err_set(r->err, TH_ENOMEM, "out of memory");
		r->halt = 1;
		return thc_hostcall_trap(call, "replay: out of memory");
	}
	/* The text of the call is only needed to explain a divergence. */
#define ACTUAL() call_text(s->event, e.buf, e.len, actual, sizeof actual)
	if (r->self_contained) {
		ACTUAL();
		/* The recorded handler made no host call at all. */
		diverge(r, r->call_seq, "export.result",
			"the actor made a host call the recorded handler did not make",
			"no host call (the handler returned without one)", actual);
		goto stop;
	}
	rc = next_significant(r, &ev);
	if (rc < 0) {
		r->rc = rc;
		r->halt = 1;
		goto stop;
	}
	if (rc == 0) {
		r->halt = 2; /* the recording ends inside this call */
		goto stop;
	}
	if (cut_here(r, &ev))
		goto stop;
	if (strncmp(ev.type, "host.", 5)) {
		char what[300];
		snprintf(what, sizeof what, "the actor made a host call where the "
			 "recording has %s", ev.type);
		snprintf(expected, sizeof expected, "no further host call (%s)", ev.type);
		ACTUAL();
		diverge(r, ev.seq, ev.type, what, expected, actual);
		goto stop;
	}
	th_cbor_dec_init(&d, ev.data, ev.len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt != 2 ||
	    item_span(&d, &rargs, &rargs_n) || item_span(&d, &rres, &rres_n)) {
		r->rc = th_err_set(r->err, TH_EINVAL,
				   "event %llu (%s): data is not [args, result]",
				   (unsigned long long)ev.seq, ev.type);
		r->halt = 1;
		goto stop;
	}
	if (strcmp(ev.type, s->event)) {
		call_text(ev.type, rargs, rargs_n, expected, sizeof expected);
		ACTUAL();
		diverge(r, ev.seq, ev.type, "the actor called a different host function",
			expected, actual);
		goto stop;
	}
	if (rargs_n != e.len || memcmp(rargs, e.buf, e.len)) {
		call_text(ev.type, rargs, rargs_n, expected, sizeof expected);
		ACTUAL();
		diverge(r, ev.seq, ev.type,
			"the actor called the host function with different arguments",
			expected, actual);
		goto stop;
	}

	/* The answer it got live. */
	th_cbor_dec_init(&d, rres, rres_n);
	if (th_cbor_peek(&d) == TH_CBOR_MAP) {
		uint64_t pairs;
		const char *k, *msg;
		size_t kn, mn;
		if (th_cbor_get_map(&d, &pairs, NULL) || pairs != 1 ||
		    th_cbor_get_text(&d, &k, &kn, NULL) || kn != 4 ||
		    memcmp(k, "trap", 4) || th_cbor_get_text(&d, &msg, &mn, NULL)) {
			r->rc = th_err_set(r->err, TH_EINVAL,
					   "event %llu (%s): malformed trap result",
					   (unsigned long long)ev.seq, ev.type);
			r->halt = 1;
			goto stop;
		}
		char *m = th_strndup(msg, mn);
		ret = thc_hostcall_trap(call, m ? m : "trap");
		th_free(m);
	} else if (!s->f.type->result) {
		if (!th_cbor_get_null(&d)) {
			r->rc = th_err_set(r->err, TH_EINVAL, "event %llu (%s): a result "
					   "for a function without one",
					   (unsigned long long)ev.seq, ev.type);
			r->halt = 1;
			goto stop;
		}
	} else {
		th_err derr = { 0 };
		if (rtv_decode(&d, s->f.type->result, result, &derr)) {
			r->rc = th_err_set(r->err, TH_EINVAL, "event %llu (%s): result: %s",
					   (unsigned long long)ev.seq, ev.type, derr.msg);
			r->halt = 1;
			goto stop;
		}
	}
	r->rep->host_calls++;
	match(r, ev.seq, ev.type);
	thx_event_release(&ev);
	th_cbor_enc_release(&e);
	return ret;
stop:
	thx_event_release(&ev);
	th_cbor_enc_release(&e);
	return thc_hostcall_trap(call, "replay stopped");
#undef ACTUAL
}

/* ---- WASI calls answered from the chain --------------------------------------
 *
 * A core-module actor importing WASI runs with the same sandbox the runtime
 * gives it (argv = its name, no environment, no preopens, stdio on
 * /dev/null), and the engine's hook reports each call after it ran. The
 * recording says [args, [errno, in, out]]: the arguments and the bytes the
 * call read must be the same, and the bytes it wrote (clock values, random
 * bytes, sizes) are overwritten with the recorded ones before the actor
 * sees them. */

static void put_spans(th_cbor_enc *e, const thw_wasi_span *sp, uint32_t n)
{
	th_cbor_put_array(e, n);
	for (uint32_t i = 0; i < n; i++) {
		th_cbor_put_array(e, 2);
		th_cbor_put_uint(e, sp[i].guest_off);
		th_cbor_put_bytes(e, sp[i].data, sp[i].len);
	}
}

static void rp_wasi_hook(void *ctx, const thw_wasi_call *c)
{
	rp *r = ctx;
	thx_event ev = { 0 };
	th_cbor_enc a, in;
	th_cbor_dec d;
	char type[96], exp[THRP_TEXT_MAX], act[THRP_TEXT_MAX];
	const uint8_t *rargs, *rin;
	size_t rargs_n, rin_n;
	uint64_t k, err_no, nout;
	int rc;

	if (r->halt || r->cut)
		return;
	snprintf(type, sizeof type, "host.%s.%s", THW_WASI_MODULE, c->name);
	th_cbor_enc_init(&a, NULL, 0);
	th_cbor_enc_init(&in, NULL, 0);
	th_cbor_put_array(&a, c->nargs);
	for (uint32_t i = 0; i < c->nargs; i++)
		th_cbor_put_uint(&a, c->args[i].type == THW_I32 ? c->args[i].of.i32
								: c->args[i].of.i64);
	put_spans(&in, c->in, c->nin);
	if (a.err || in.err) {
		r->rc = th_err_set(r->err, TH_ENOMEM, "out of memory");
		r->halt = 1;
		goto out;
	}
	if (r->self_contained) {
		call_text(type, a.buf, a.len, act, sizeof act);
		diverge(r, r->call_seq, "export.result",
			"the actor made a WASI call the recorded handler did not make",
			"no host call (the handler returned without one)", act);
		goto out;
	}
	rc = next_significant(r, &ev);
	if (rc <= 0) {
		r->rc = rc;
		r->halt = rc ? 1 : 2;
		goto out;
	}
	if (cut_here(r, &ev))
		goto out; /* the guest runs on; its outcome is not looked at */
	th_cbor_dec_init(&d, ev.data, ev.len);
	if (strcmp(ev.type, type)) {
		call_text(type, a.buf, a.len, act, sizeof act);
		rpd_text(ev.data, ev.len, exp, sizeof exp);
		diverge(r, ev.seq, ev.type, "the actor made another host call", exp, act);
		goto out;
	}
	if (th_cbor_get_array(&d, &k, NULL) || k != 2 ||
	    item_span(&d, &rargs, &rargs_n) || th_cbor_get_array(&d, &k, NULL) ||
	    k != 3 || th_cbor_get_uint(&d, &err_no, NULL) ||
	    item_span(&d, &rin, &rin_n)) {
		r->rc = th_err_set(r->err, TH_EINVAL, "event %llu (%s): data is not "
				   "[args, [errno, in, out]]", (unsigned long long)ev.seq, ev.type);
		r->halt = 1;
		goto out;
	}
	if (rargs_n != a.len || memcmp(rargs, a.buf, a.len) ||
	    rin_n != in.len || memcmp(rin, in.buf, in.len)) {
		call_text(type, a.buf, a.len, act, sizeof act);
		call_text(ev.type, rargs, rargs_n, exp, sizeof exp);
		diverge(r, ev.seq, ev.type, "the actor made the WASI call with different "
			"arguments or data", exp, act);
		goto out;
	}
	if (err_no != c->result && strcmp(c->name, "proc_exit")) {
		snprintf(exp, sizeof exp, "errno %llu", (unsigned long long)err_no);
		snprintf(act, sizeof act, "errno %u", c->result);
		diverge(r, ev.seq, ev.type, "the WASI call answered differently", exp, act);
		goto out;
	}
	/* What the call wrote, as it was written live. */
	thw_memory *mem = r->inst ? thc_instance_memory(r->inst) : NULL;
	if (th_cbor_get_array(&d, &nout, NULL)) {
		r->rc = th_err_set(r->err, TH_EINVAL, "event %llu (%s): bad out spans",
				   (unsigned long long)ev.seq, ev.type);
		r->halt = 1;
		goto out;
	}
	for (uint64_t i = 0; i < nout; i++) {
		uint64_t off;
		const uint8_t *b;
		size_t bn;
		if (th_cbor_get_array(&d, &k, NULL) || k != 2 ||
		    th_cbor_get_uint(&d, &off, NULL) || th_cbor_get_bytes(&d, &b, &bn, NULL) ||
		    (mem && thw_memory_write(mem, off, b, bn))) {
			r->rc = th_err_set(r->err, TH_EINVAL, "event %llu (%s): out span %llu "
					   "does not fit the actor's memory",
					   (unsigned long long)ev.seq, ev.type,
					   (unsigned long long)i);
			r->halt = 1;
			goto out;
		}
	}
	r->rep->host_calls++;
	match(r, ev.seq, ev.type);
out:
	thx_event_release(&ev);
	th_cbor_enc_release(&a);
	th_cbor_enc_release(&in);
}

/* ---- instances --------------------------------------------------------------- */

static void drop_instance(rp *r)
{
	thc_instance_free(r->inst);
	r->inst = NULL;
	thw_exec_free(r->exec);
	r->exec = NULL;
	thw_realm_free(r->realm);
	r->realm = NULL;
	thw_wasi_free(r->wasi);
	r->wasi = NULL;
	r->failed = false;
}

static int load_component(rp *r, const char *hex)
{
	uint8_t *bytes = NULL;
	size_t len = 0;
	ths_hash h;
	int rc;

	if (r->comp)
		return 0; /* every instance of an actor runs one component */
	if (r->opt->component) {
		sha_hex(r->opt->component, r->opt->component_len, r->rep->component);
		rc = thc_component_load(r->opt->component, r->opt->component_len,
					&r->comp, r->err);
		if (rc)
			th_err_prefix(r->err, "the given component");
		return rc;
	}
	rc = ths_hash_parse(hex, &h, r->err);
	if (!rc)
		rc = ths_get(r->store, &h, RP_COMPONENT_MAX, &bytes, &len, r->err);
	if (rc) {
		th_err_prefix(r->err, "component %s recorded in the chain", hex);
		return rc;
	}
	snprintf(r->rep->component, sizeof r->rep->component, "%s", hex);
	rc = thc_component_load(bytes, len, &r->comp, r->err);
	ths_buf_free(bytes);
	if (rc)
		th_err_prefix(r->err, "component %s", hex);
	return rc;
}

static void index_exports(rp *r)
{
	for (int x = 0; x < RTA_NX; x++)
		r->xidx[x] = thc_component_find_export(r->comp, rta_export_iface[x],
						       rta_export_name[x]);
}

static int instantiate(rp *r)
{
	thw_config cfg = { 0 };
	uint32_t n;
	int rc;

	drop_instance(r);
	if (!r->imports) {
		index_exports(r);
		n = thc_component_import_count(r->comp);
		r->slots = th_calloc(n ? n : 1, sizeof *r->slots);
		r->imports = th_calloc(n ? n : 1, sizeof *r->imports);
		if (!r->slots || !r->imports)
			return th_err_set(r->err, TH_ENOMEM, "out of memory");
		for (uint32_t i = 0; i < n; i++) {
			rp_slot *s = &r->slots[i];
			s->r = r;
			thc_component_import(r->comp, i, &s->f);
			snprintf(s->event, sizeof s->event, "host.%s.%s", s->f.iface,
				 s->f.name);
			r->imports[i].iface = s->f.iface;
			r->imports[i].name = s->f.name;
			r->imports[i].fn = rp_host;
			r->imports[i].ctx = s;
		}
		r->nslots = n;
	}
	cfg.max_memory_pages = r->pages;
	for (int attempt = 0; attempt < 2; attempt++) {
		drop_instance(r);
		rc = thw_realm_new(&cfg, &r->realm, r->err);
		if (!rc)
			rc = thw_exec_new(r->realm, &r->exec, r->err);
		if (rc)
			break;
		thw_exec_set_fuel(r->exec, r->fuel, THW_FUEL_TRAP);
		if (!r->needs_wasi) {
			rc = thc_instantiate(r->realm, r->comp, r->imports, r->nslots,
					     r->exec, &r->inst, r->err);
			if (rc == TH_ENOTFOUND && strstr(r->err->msg, THW_WASI_MODULE)) {
				/* A core module importing WASI, as the runtime found. */
				r->needs_wasi = true;
				continue;
			}
			break;
		}
		const char *argv[1] = { r->name };
		thw_wasi_config wc = { .argc = 1, .argv = argv, .custom_stdio = true,
				       .stdin_fd = r->devnull, .stdout_fd = r->devnull,
				       .stderr_fd = r->devnull, .hook = rp_wasi_hook,
				       .hook_ctx = r };
		if (r->devnull < 0) {
			rc = th_err_set(r->err, TH_EIO, "wasi: /dev/null could not be opened");
			break;
		}
		rc = thw_wasi_new(&wc, &r->wasi, r->err);
		if (!rc)
			rc = thc_instantiate_wasi(r->realm, r->comp, r->imports, r->nslots,
						  r->wasi, r->exec, &r->inst, r->err);
		break;
	}
	if (rc)
		th_err_prefix(r->err, "instantiating the component");
	return rc;
}

/* ---- export calls ------------------------------------------------------------ */

static int export_of(const char *full, size_t n)
{
	static const char probe[] = "theater:simple/health.";
	for (int x = 0; x < RTA_NX; x++)
		if (strlen(rta_export_full[x]) == n && !memcmp(rta_export_full[x], full, n))
			return x;
	if (n > sizeof probe - 1 && !memcmp(full, probe, sizeof probe - 1))
		return RTA_X_PROBE; /* a probe recorded under its own function */
	return -1;
}

static const char *trap_kind(const thw_trap *t)
{
	switch (t ? t->code : THW_TRAP_NONE) {
	case THW_TRAP_OUT_OF_FUEL: return "out-of-fuel";
	case THW_TRAP_STACK_EXHAUSTED: return "stack-exhausted";
	case THW_TRAP_OOM: return "out-of-memory";
	default: return "trap";
	}
}

/* The trap's backtrace in the form actor.failed records it (the runtime's
 * put_backtrace): [[func-index, code-offset, name | null], ...], innermost
 * first, at most RTA_BACKTRACE_MAX frames; empty unless the exec trapped. */
static int backtrace_cbor(const thw_exec *x, uint8_t **out, size_t *len)
{
	const thw_trap *t = x && thw_exec_state(x) == THW_STATE_TRAPPED
		? thw_exec_trap(x) : NULL;
	uint32_t n = t ? t->nframes : 0;
	th_cbor_enc e;
	if (n > RTA_BACKTRACE_MAX)
		n = RTA_BACKTRACE_MAX;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, n);
	for (uint32_t i = 0; i < n; i++) {
		th_cbor_put_array(&e, 3);
		th_cbor_put_uint(&e, t->frames[i].func_index);
		th_cbor_put_uint(&e, t->frames[i].code_offset);
		if (t->frames[i].func_name)
			th_cbor_put_cstr(&e, t->frames[i].func_name);
		else
			th_cbor_put_null(&e);
	}
	return th_cbor_enc_take(&e, out, len);
}

/* "#0 name (func 5, offset 0x257)\n#1 func 3 (offset 0x1a0)" from the
 * CBOR above; a malformed one as CBOR text. */
static void backtrace_text(const uint8_t *p, size_t n, char *out, size_t cap)
{
	th_cbor_dec d;
	uint64_t nf, k, idx, off;
	size_t len = 0;
	out[0] = 0;
	th_cbor_dec_init(&d, p, n);
	if (th_cbor_get_array(&d, &nf, NULL))
		goto bad;
	for (uint64_t i = 0; i < nf && len + 1 < cap; i++) {
		const char *name = NULL;
		size_t nl = 0;
		int w;
		if (th_cbor_get_array(&d, &k, NULL) || k != 3 ||
		    th_cbor_get_uint(&d, &idx, NULL) || th_cbor_get_uint(&d, &off, NULL) ||
		    (!th_cbor_get_null(&d) && th_cbor_get_text(&d, &name, &nl, NULL)))
			goto bad;
		if (name)
			w = snprintf(out + len, cap - len, "%s#%llu %.*s (func %llu, offset 0x%llx)",
				     i ? "\n" : "", (unsigned long long)i, (int)nl, name,
				     (unsigned long long)idx, (unsigned long long)off);
		else
			w = snprintf(out + len, cap - len, "%s#%llu func %llu (offset 0x%llx)",
				     i ? "\n" : "", (unsigned long long)i,
				     (unsigned long long)idx, (unsigned long long)off);
		if (w < 0)
			break;
		len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
	}
	return;
bad:
	rpd_text(p, n, out, cap);
}

/* What ended a call. */
typedef struct rp_outcome {
	bool trapped;
	char kind[32];
	char reason[TH_ERR_MSG_MAX + 64];
	thc_val result;
	uint8_t *cbor;   /* the result, encoded */
	size_t cbor_len;
	uint8_t *bt;     /* trapped: the backtrace, as actor.failed has it */
	size_t bt_len;
} rp_outcome;

static void outcome_release(rp_outcome *o)
{
	thc_val_release(&o->result);
	th_free(o->cbor);
	th_free(o->bt);
}

/* Run export x with the recorded params; fills *o unless r->halt. */
static int run_call(rp *r, int x, int idx, const uint8_t *params, size_t plen,
		    uint64_t seq, const char *type, rp_outcome *o)
{
	thc_val args[2] = { { 0 } };
	thc_funcref f;
	th_cbor_dec d;
	th_err cerr = { 0 };
	char what[300];
	int rc;

	memset(o, 0, sizeof *o);
	if (idx < 0) {
		snprintf(what, sizeof what, "the component does not export %s",
			 rta_export_full[x]);
		diverge(r, seq, type, what, rta_export_full[x], "no such export");
		return 0;
	}
	if (!r->inst || r->failed) {
		diverge(r, seq, type, "an export call on an actor that has failed",
			"a live instance", "the instance trapped earlier");
		return 0;
	}
	thc_component_export(r->comp, (uint32_t)idx, &f);
	th_cbor_dec_init(&d, params, plen);
	if (f.type->nparams != 2 || rtv_decode(&d, f.type->ptypes[1], &args[1], &cerr)) {
		char exp[THRP_TEXT_MAX];
		rpd_text(params, plen, exp, sizeof exp);
		diverge(r, seq, type, "the recorded params do not fit the export's type",
			exp, cerr.msg[0] ? cerr.msg : "another signature");
		return 0;
	}
	if (state_val(r, &args[0])) {
		thc_val_release(&args[1]);
		return th_err_set(r->err, TH_ENOMEM, "out of memory");
	}
	r->in_call = true;
	r->call_seq = seq;
	r->rep->calls++;
	thw_exec_set_fuel(r->exec, r->fuel, THW_FUEL_TRAP);
	rc = thc_call_start(r->inst, r->exec, idx, args, 2, &cerr);
	thc_val_release(&args[0]);
	thc_val_release(&args[1]);
	if (rc) {
		o->trapped = true;
		snprintf(o->kind, sizeof o->kind, "trap");
		snprintf(o->reason, sizeof o->reason, "%s", cerr.msg);
		goto done;
	}
	/* As the runtime does: the cap counts from the handler's start (what
	 * lowering the arguments ran is not charged to it). */
	thw_exec_set_fuel(r->exec, r->fuel, THW_FUEL_TRAP);
	thw_state st = thw_exec_run(r->exec);
	if (r->halt || r->rc || r->cut)
		goto done;
	if (st == THW_STATE_DONE) {
		rc = thc_call_finish(r->inst, r->exec, &o->result, &cerr);
		if (rc) {
			o->trapped = true;
			snprintf(o->kind, sizeof o->kind, "trap");
			snprintf(o->reason, sizeof o->reason, "%s", cerr.msg);
			goto done;
		}
		th_cbor_enc e;
		th_cbor_enc_init(&e, NULL, 0);
		rtv_encode(&e, &o->result);
		if (th_cbor_enc_take(&e, &o->cbor, &o->cbor_len))
			return th_err_set(r->err, TH_ENOMEM, "out of memory");
	} else {
		const thw_trap *t = thw_exec_trap(r->exec);
		o->trapped = true;
		snprintf(o->kind, sizeof o->kind, "%s",
			 st == THW_STATE_TRAPPED ? trap_kind(t) : "internal");
		snprintf(o->reason, sizeof o->reason, "%s trapped: %s",
			 rta_export_name[x], t && t->message ? t->message : "trap");
	}
done:
	r->in_call = false;
	if (o->trapped && x == RTA_X_PROBE) {
		/* A missed probe: the call ends, the instance goes on. */
		thc_val none = { 0 };
		th_err ferr = { 0 };
		thc_call_finish(r->inst, r->exec, &none, &ferr);
		thc_val_release(&none);
	} else if (o->trapped) {
		r->failed = true;
		if (backtrace_cbor(r->exec, &o->bt, &o->bt_len))
			return th_err_set(r->err, TH_ENOMEM, "out of memory");
		backtrace_text(o->bt, o->bt_len, r->rep->backtrace,
			       sizeof r->rep->backtrace);
	}
	return r->rc;
}

/* Compare a finished call with the export.result at ev (data decoded up to
 * the result item in d). */
static int check_result(rp *r, int x, int idx, const thx_event *ev,
			th_cbor_dec *d, rp_outcome *o)
{
	const uint8_t *res;
	size_t n;
	char exp[THRP_TEXT_MAX], act[THRP_TEXT_MAX];
	thc_funcref f;
	const thc_type *rt = NULL;

	if (item_span(d, &res, &n))
		return th_err_set(r->err, TH_EINVAL, "event %llu (export.result): "
				  "malformed data", (unsigned long long)ev->seq);
	if (idx >= 0) {
		thc_component_export(r->comp, (uint32_t)idx, &f);
		rt = f.type->result;
	}
	if (o->trapped) {
		describe_result(rt, res, n, exp, sizeof exp);
		snprintf(act, sizeof act, "%s: %s", o->kind, o->reason);
		diverge(r, ev->seq, ev->type, "the handler trapped where the recording "
			"has a result", exp, act);
		return 0;
	}
	if (n != o->cbor_len || memcmp(res, o->cbor, n)) {
		describe_result(rt, res, n, exp, sizeof exp);
		describe_result(rt, o->cbor, o->cbor_len, act, sizeof act);
		diverge(r, ev->seq, ev->type, "the handler returned a different result "
			"(state or response)", exp, act);
		return 0;
	}
	match(r, ev->seq, ev->type);
	if (x == RTA_X_PROBE)
		return 0; /* a probe's state is not committed */
	return commit(r, &o->result, ev->seq);
}

/* The recorded failure is the reproduced trap: the same kind and reason,
 * where the supervisor may have explained the reason further ("... (the
 * handler used up its budget of N fuel, ...)") and named a trap at the
 * memory limit "memory-limit". */
static bool same_failure(const rp_outcome *o, const char *kind, size_t kn,
			 const char *reason, size_t rn)
{
	size_t ol = strlen(o->reason);
	bool kind_ok = (strlen(o->kind) == kn && !memcmp(o->kind, kind, kn)) ||
		(kn == 12 && !memcmp(kind, "memory-limit", 12) &&
		 (!strcmp(o->kind, "trap") || !strcmp(o->kind, "out-of-memory")));
	if (!kind_ok || rn < ol || memcmp(o->reason, reason, ol))
		return false;
	return rn == ol || (rn > ol + 2 && reason[ol] == ' ' && reason[ol + 1] == '(');
}

/* After a call that trapped: the recording must say actor.failed. */
static int check_failure(rp *r, rp_outcome *o)
{
	thx_event ev = { 0 };
	th_cbor_dec d;
	const char *kind, *reason;
	size_t kn, rn;
	uint64_t cnt;
	char exp[THRP_TEXT_MAX], act[THRP_TEXT_MAX];
	const uint8_t *bt = NULL;
	size_t btn = 0;
	int rc = next_significant(r, &ev);

	snprintf(act, sizeof act, "%s: %s", o->kind, o->reason);
	if (rc <= 0) {
		if (rc == 0)
			r->halt = 2;
		return rc;
	}
	if (cut_here(r, &ev)) {
		rc = 0;
		goto out;
	}
	if (strcmp(ev.type, "actor.failed")) {
		char what[300];
		rpd_text(ev.data, ev.len, exp, sizeof exp);
		snprintf(what, sizeof what, "the handler trapped where the recording "
			 "continues with %s", ev.type);
		diverge(r, ev.seq, ev.type, what, exp, act);
		goto out;
	}
	th_cbor_dec_init(&d, ev.data, ev.len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt < 2 || cnt > 3 ||
	    th_cbor_get_text(&d, &kind, &kn, NULL) ||
	    th_cbor_get_text(&d, &reason, &rn, NULL) ||
	    (cnt == 3 && item_span(&d, &bt, &btn))) {
		rc = th_err_set(r->err, TH_EINVAL, "event %llu (actor.failed): "
				"malformed data", (unsigned long long)ev.seq);
		goto out;
	}
	snprintf(exp, sizeof exp, "%.*s: %.*s", (int)kn, kind, (int)rn, reason);
	if (!same_failure(o, kind, kn, reason, rn)) {
		diverge(r, ev.seq, ev.type, "the actor failed differently", exp, act);
		goto out;
	}
	/* The same trap at the same place: chains recorded before backtraces
	 * were (2 items) are checked by kind and reason only. */
	if (bt) {
		r->rep->backtrace_recorded = true;
		if (btn != o->bt_len || memcmp(bt, o->bt, btn)) {
			backtrace_text(bt, btn, exp, sizeof exp);
			backtrace_text(o->bt, o->bt_len, act, sizeof act);
			diverge(r, ev.seq, ev.type, "the actor trapped with the same "
				"reason at another place (backtrace)", exp[0] ? exp :
				"no backtrace", act[0] ? act : "no backtrace");
			goto out;
		}
	}
	r->rep->crashed = true;
	r->rep->crash_seq = ev.seq;
	snprintf(r->rep->crash_kind, sizeof r->rep->crash_kind, "%.*s", (int)kn, kind);
	snprintf(r->rep->crash_reason, sizeof r->rep->crash_reason, "%.*s", (int)rn, reason);
	match(r, ev.seq, ev.type);
	rc = 0;
out:
	thx_event_release(&ev);
	return rc;
}

/* Without a fuel cap a call that ran away live (an endless loop ended by
 * thr_terminate, a health check, a crash) would never end here: look
 * ahead, past its host calls, for how the recording ends it. Returns the
 * seq of an event that ended it from outside, or UINT64_MAX (an outcome
 * of its own, or the end of the recording: run it). */
static uint64_t ended_from_outside_at(rp *r, th_err *err, int *rc)
{
	*rc = 0;
	for (uint64_t s = r->pos; s < r->end; s++) {
		thx_event ev = { 0 };
		bool mine, outside;
		if ((*rc = thx_get(r->c, s, &ev, err)))
			return UINT64_MAX;
		mine = !strncmp(ev.type, "host.", 5) || !interpreted(ev.type);
		outside = !mine && ends_from_outside(&ev);
		thx_event_release(&ev);
		if (!mine)
			return outside ? s : UINT64_MAX;
	}
	return UINT64_MAX;
}

/* export.call at ev: run it (its host calls follow), then its outcome. */
static int on_call(rp *r, const thx_event *ev, bool self_contained)
{
	th_cbor_dec d;
	uint64_t cnt, msg;
	const char *name;
	size_t nn;
	const uint8_t *params;
	size_t plen;
	rp_outcome o;
	int x, idx, rc;

	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt != (self_contained ? 4u : 3u) ||
	    th_cbor_get_text(&d, &name, &nn, NULL) ||
	    th_cbor_get_uint(&d, &msg, NULL) || item_span(&d, &params, &plen))
		return th_err_set(r->err, TH_EINVAL, "event %llu (%s): malformed data",
				  (unsigned long long)ev->seq, ev->type);
	x = export_of(name, nn);
	if (x < 0)
		return th_err_set(r->err, TH_EINVAL, "event %llu (%s): unknown export "
				  "'%.*s'", (unsigned long long)ev->seq, ev->type,
				  (int)nn, name);
	if (x == RTA_X_PROBE) {
		/* "theater:simple/health.check" stands for any probe function:
		 * its control message names it. */
		char fn[64];
		size_t at = strlen(rta_export_iface[x]) + 1;
		snprintf(fn, sizeof fn, "%.*s", (int)(nn - at), name + at);
		idx = thc_component_find_export(r->comp, rta_export_iface[x],
						 strcmp(fn, "check") ? fn : probe_name(r, msg));
	} else {
		idx = r->xidx[x];
	}
	if (!self_contained && r->fuel == UINT64_MAX) {
		uint64_t stop = ended_from_outside_at(r, r->err, &rc);
		if (rc)
			return rc;
		if (stop != UINT64_MAX) {
			/* Not re-run (no verdict): its host calls are read
			 * (hash-checked), the walk takes the event that ended it. */
			thx_event skip = { 0 };
			while (r->pos < stop && (rc = next_raw(r, &skip)) == 1)
				;
			thx_event_release(&skip);
			if (rc < 0)
				return rc;
			match(r, ev->seq, ev->type);
			return 0;
		}
	}
	r->self_contained = self_contained;
	rc = run_call(r, x, idx, params, plen, ev->seq, ev->type, &o);
	r->self_contained = false;
	if (rc || r->halt || r->cut)
		goto out;
	if (self_contained) {
		rc = check_result(r, x, idx, ev, &d, &o);
	} else if (o.trapped && x == RTA_X_PROBE) {
		/* A missed probe: nothing follows its host calls. */
		match(r, ev->seq, ev->type);
	} else if (o.trapped) {
		rc = check_failure(r, &o);
	} else {
		thx_event res = { 0 };
		rc = next_significant(r, &res);
		if (rc == 0)
			r->halt = 2;
		if (rc == 1 && cut_here(r, &res))
			rc = 0;
		if (rc == 1) {
			th_cbor_dec rd;
			const char *rn;
			size_t rnl;
			uint64_t rc4, rmsg;
			rc = 0;
			th_cbor_dec_init(&rd, res.data, res.len);
			if (strcmp(res.type, "export.result")) {
				char exp[THRP_TEXT_MAX], act[THRP_TEXT_MAX], what[300];
				rpd_text(res.data, res.len, exp, sizeof exp);
				describe_result(NULL, o.cbor, o.cbor_len, act, sizeof act);
				snprintf(what, sizeof what, "the handler returned where the "
					 "recording continues with %s", res.type);
				diverge(r, res.seq, res.type, what, exp, act);
			} else if (th_cbor_get_array(&rd, &rc4, NULL) || rc4 != 4 ||
				   th_cbor_get_text(&rd, &rn, &rnl, NULL) ||
				   th_cbor_get_uint(&rd, &rmsg, NULL) ||
				   th_cbor_skip(&rd, NULL)) {
				rc = th_err_set(r->err, TH_EINVAL, "event %llu (export.result): "
						"malformed data", (unsigned long long)res.seq);
			} else if (rnl != nn || memcmp(rn, name, nn) || rmsg != msg) {
				rc = th_err_set(r->err, TH_EINVAL, "event %llu: export.result "
						"does not belong to the export.call at %llu",
						(unsigned long long)res.seq,
						(unsigned long long)ev->seq);
			} else {
				rc = check_result(r, x, idx, &res, &rd, &o);
			}
		}
		thx_event_release(&res);
	}
out:
	outcome_release(&o);
	return rc ? rc : r->rc;
}

/* ---- creation events ----------------------------------------------------------- */

/* The initial state and limits: recorded in actor.spawning (7 items), or
 * read again from the manifest it names. */
static int on_spawning(rp *r, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t cnt, fuel = 0, pages = 0;
	const char *path;
	size_t pn;

	const char *nm;
	size_t nml;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt < 4 ||
	    th_cbor_get_text(&d, &nm, &nml, NULL) || nml > THX_NAME_MAX ||
	    th_cbor_get_text(&d, &path, &pn, NULL) ||
	    th_cbor_skip(&d, NULL) || th_cbor_skip(&d, NULL))
		return th_err_set(r->err, TH_EINVAL, "event %llu (actor.spawning): "
				  "malformed data", (unsigned long long)ev->seq);
	memcpy(r->name, nm, nml);
	r->name[nml] = 0;
	if (cnt >= 7) {
		const uint8_t *p;
		size_t n;
		if (!th_cbor_get_null(&d)) {
			if (th_cbor_get_bytes(&d, &p, &n, NULL))
				return th_err_set(r->err, TH_EINVAL, "event %llu "
						  "(actor.spawning): bad init state",
						  (unsigned long long)ev->seq);
			r->init_state = th_malloc(n ? n : 1);
			if (!r->init_state)
				return th_err_set(r->err, TH_ENOMEM, "out of memory");
			memcpy(r->init_state, p, n);
			r->init_len = n;
			r->has_init = true;
		}
		if (th_cbor_get_uint(&d, &fuel, NULL) || th_cbor_get_uint(&d, &pages, NULL))
			return th_err_set(r->err, TH_EINVAL, "event %llu (actor.spawning): "
					  "bad limits", (unsigned long long)ev->seq);
	} else if (pn && pn < 4096 && path[0] != '<') {
		/* Older recording: the manifest file, if it is still there. */
		char *file = th_strndup(path, pn), *dir = NULL, *slash;
		thm_manifest *m = NULL;
		rtf_spec *spec = NULL;
		if (!file)
			return th_err_set(r->err, TH_ENOMEM, "out of memory");
		dir = th_strdup(file);
		slash = dir ? strrchr(dir, '/') : NULL;
		if (slash)
			*slash = 0;
		if (dir && !thm_load(file, &m, NULL) &&
		    !rtf_from_manifest(m, slash ? dir : NULL, r->store, &spec, NULL)) {
			fuel = spec->m->limits.fuel_per_message;
			pages = spec->m->limits.memory_pages;
			if (spec->has_init) {
				r->init_state = spec->init_state;
				r->init_len = spec->init_len;
				r->has_init = true;
				spec->init_state = NULL;
			}
		}
		rtf_free(spec);
		th_free(file);
		th_free(dir);
	}
	r->fuel = r->opt->fuel ? r->opt->fuel : fuel ? fuel : UINT64_MAX;
	r->pages = r->opt->memory_pages ? r->opt->memory_pages
		: pages && pages <= UINT32_MAX ? (uint32_t)pages : 0;
	if (r->has_init) {
		r->state = th_malloc(r->init_len ? r->init_len : 1);
		if (!r->state)
			return th_err_set(r->err, TH_ENOMEM, "out of memory");
		memcpy(r->state, r->init_state, r->init_len);
		r->state_len = r->init_len;
		r->has_state = true;
	}
	match(r, ev->seq, ev->type);
	return 0;
}

static int on_loaded(rp *r, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t cnt;
	const char *hex;
	size_t n;
	char buf[THS_HEX_LEN + 1];
	int rc;

	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt < 1 ||
	    th_cbor_get_text(&d, &hex, &n, NULL) || n != THS_HEX_LEN)
		return th_err_set(r->err, TH_EINVAL, "event %llu (%s): malformed data",
				  (unsigned long long)ev->seq, ev->type);
	memcpy(buf, hex, n);
	buf[n] = 0;
	rc = load_component(r, buf);
	if (!rc)
		rc = instantiate(r);
	if (!rc)
		match(r, ev->seq, ev->type);
	return rc;
}

static int on_instantiated(rp *r, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t cnt, pages;
	thw_memory *mem;
	uint64_t have;
	char exp[64], act[64];

	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt != 1 ||
	    th_cbor_get_uint(&d, &pages, NULL))
		return th_err_set(r->err, TH_EINVAL, "event %llu (%s): malformed data",
				  (unsigned long long)ev->seq, ev->type);
	if (!r->inst)
		return 0;
	mem = thc_instance_memory(r->inst);
	have = mem ? thw_memory_pages(mem) : 0;
	if (have != pages) {
		snprintf(exp, sizeof exp, "%llu memory pages", (unsigned long long)pages);
		snprintf(act, sizeof act, "%llu memory pages", (unsigned long long)have);
		diverge(r, ev->seq, ev->type, "the instance starts with a different memory",
			exp, act);
		return 0;
	}
	match(r, ev->seq, ev->type);
	return 0;
}

/* An actor.failed that no call of ours explains (spawn failures, handler
 * errors after their export.result, out of memory): noted as the end. */
static int on_failed(rp *r, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t cnt;
	const char *kind, *reason;
	size_t kn, rn;
	const uint8_t *bt = NULL;
	size_t btn = 0;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt < 2 || cnt > 3 ||
	    th_cbor_get_text(&d, &kind, &kn, NULL) ||
	    th_cbor_get_text(&d, &reason, &rn, NULL) ||
	    (cnt == 3 && item_span(&d, &bt, &btn)))
		return th_err_set(r->err, TH_EINVAL, "event %llu (actor.failed): "
				  "malformed data", (unsigned long long)ev->seq);
	if (bt) {
		r->rep->backtrace_recorded = true;
		backtrace_text(bt, btn, r->rep->backtrace, sizeof r->rep->backtrace);
	}
	r->rep->crashed = true;
	r->rep->crash_seq = ev->seq;
	snprintf(r->rep->crash_kind, sizeof r->rep->crash_kind, "%.*s", (int)kn, kind);
	snprintf(r->rep->crash_reason, sizeof r->rep->crash_reason, "%.*s", (int)rn, reason);
	r->failed = true;
	match(r, ev->seq, ev->type);
	return 0;
}

/* The runtime that ran the actor died; it was rebuilt from this chain
 * (src/runtime/resume.c) from the state of export.result state-seq, with
 * the limits of the manifest it was resumed with. A new instance follows
 * (component.loaded); the call cut short, if any, has no outcome. */
static int on_resumed(rp *r, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t cnt, seq = 0, n, fuel, pages;
	const char *hex;
	size_t hn;
	bool has_seq;
	char exp[64], act[64];

	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt != 5 ||
	    th_cbor_get_text(&d, &hex, &hn, NULL) || hn != THS_HEX_LEN)
		goto bad;
	has_seq = !th_cbor_get_null(&d);
	if ((has_seq && th_cbor_get_uint(&d, &seq, NULL)) ||
	    th_cbor_get_array(&d, &n, NULL))
		goto bad;
	for (uint64_t i = 0; i < n; i++)
		if (th_cbor_skip(&d, NULL))
			goto bad;
	if (th_cbor_get_uint(&d, &fuel, NULL) || th_cbor_get_uint(&d, &pages, NULL))
		goto bad;
	if (has_seq != r->has_state_seq || (has_seq && seq != r->state_seq)) {
		if (r->has_state_seq)
			snprintf(exp, sizeof exp, "the state of event %llu",
				 (unsigned long long)r->state_seq);
		else
			snprintf(exp, sizeof exp, "the initial state");
		if (has_seq)
			snprintf(act, sizeof act, "the state of event %llu",
				 (unsigned long long)seq);
		else
			snprintf(act, sizeof act, "the initial state");
		diverge(r, ev->seq, ev->type, "the actor was resumed from another "
			"state than the last one committed", exp, act);
		return 0;
	}
	if (!r->opt->fuel)
		r->fuel = fuel ? fuel : UINT64_MAX;
	if (!r->opt->memory_pages)
		r->pages = pages && pages <= UINT32_MAX ? (uint32_t)pages : 0;
	r->failed = true; /* this instance is gone; component.loaded follows */
	match(r, ev->seq, ev->type);
	return 0;
bad:
	return th_err_set(r->err, TH_EINVAL, "event %llu (actor.resumed): "
			  "malformed data", (unsigned long long)ev->seq);
}

/* A supervised restart with state = "reset" starts from the initial
 * state again. */
static int on_restarting(rp *r, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t cnt;
	const char *s;
	size_t n;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &cnt, NULL) || cnt < 2 || th_cbor_skip(&d, NULL) ||
	    th_cbor_get_text(&d, &s, &n, NULL))
		return th_err_set(r->err, TH_EINVAL, "event %llu (%s): malformed data",
				  (unsigned long long)ev->seq, ev->type);
	if (n != 11 || memcmp(s, "state=reset", 11))
		return 0;
	th_free(r->state);
	r->state = NULL;
	r->state_len = 0;
	r->has_state = r->has_init;
	r->has_state_seq = false;
	if (r->has_init) {
		r->state = th_malloc(r->init_len ? r->init_len : 1);
		if (!r->state)
			return th_err_set(r->err, TH_ENOMEM, "out of memory");
		memcpy(r->state, r->init_state, r->init_len);
		r->state_len = r->init_len;
	}
	match(r, ev->seq, ev->type);
	return 0;
}

/* ---- the walk ----------------------------------------------------------------- */

static int walk(rp *r)
{
	thx_event ev = { 0 };
	int rc = 0;

	for (;;) {
		if (r->halt)
			break;
		if (r->has_held) {
			/* The event that cut the last call short. */
			thx_event_release(&ev);
			ev = r->held;
			memset(&r->held, 0, sizeof r->held);
			r->has_held = false;
			r->cut = false;
		} else if ((rc = next_raw(r, &ev)) != 1) {
			break;
		}
		const char *t = ev.type;
		rc = 0;
		if (!strcmp(t, "actor.spawning"))
			rc = on_spawning(r, &ev);
		else if (!strcmp(t, "component.loaded"))
			rc = on_loaded(r, &ev);
		else if (!strcmp(t, "actor.restarted"))
			rc = on_loaded(r, &ev);
		else if (!strcmp(t, "actor.instantiated"))
			rc = on_instantiated(r, &ev);
		else if (!strcmp(t, "export.call"))
			rc = on_call(r, &ev, false);
		else if (!strcmp(t, "export.result"))
			rc = on_call(r, &ev, true);
		else if (!strcmp(t, "actor.failed"))
			rc = on_failed(r, &ev);
		else if (!strcmp(t, "actor.resumed"))
			rc = on_resumed(r, &ev);
		else if (!strcmp(t, "supervision.restarting"))
			rc = on_restarting(r, &ev);
		else if (!strcmp(t, "actor.stopped"))
			r->failed = true; /* the instance is gone (a restart follows) */
		else if (!strncmp(t, "host.", 5)) {
			char act[THRP_TEXT_MAX];
			rpd_text(ev.data, ev.len, act, sizeof act);
			diverge(r, ev.seq, t, "a host call outside any export call",
				"an export.call first", act);
		}
		if (rc)
			break;
	}
	thx_event_release(&ev);
	if (rc < 0)
		return rc;
	return r->rc;
}

int thrp_replay(ths_store *store, thx_chain *c, const thrp_opts *opt,
		thrp_report *report, th_err *err)
{
	static const thrp_opts none = { 0 };
	rp r = { 0 };
	int rc;

	memset(report, 0, sizeof *report);
	r.store = store;
	r.c = c;
	r.opt = opt ? opt : &none;
	r.rep = report;
	r.err = err;
	r.fuel = r.opt->fuel ? r.opt->fuel : UINT64_MAX;
	r.pages = r.opt->memory_pages;
	r.end = thx_chain_count(c);
	r.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (r.opt->has_until && r.opt->until < UINT64_MAX && r.opt->until + 1 < r.end)
		r.end = r.opt->until + 1;
	report->ok = true;
	rc = walk(&r);
	thx_event_release(&r.held);
	if (r.opt->progress)
		r.opt->progress(r.pos, r.end, r.opt->progress_arg);
	drop_instance(&r);
	thc_component_free(r.comp);
	th_free(r.imports);
	th_free(r.slots);
	th_free(r.state);
	th_free(r.init_state);
	if (r.devnull >= 0)
		close(r.devnull);
	if (rc)
		report->ok = false;
	return rc;
}

/* ---- printing -------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void thrp_report_print(const thrp_report *r, const char *chain, bool json,
		       FILE *out)
{
	if (json) {
		fprintf(out, "{\"chain\": ");
		json_str(out, chain);
		fprintf(out, ", \"ok\": %s, \"events\": %llu, \"calls\": %llu, "
			"\"host_calls\": %llu, \"last_seq\": %llu, \"component\": ",
			r->ok ? "true" : "false", (unsigned long long)r->events,
			(unsigned long long)r->calls, (unsigned long long)r->host_calls,
			(unsigned long long)r->last_seq);
		json_str(out, r->component);
		if (r->crashed) {
			fprintf(out, ", \"crash\": {\"seq\": %llu, \"kind\": ",
				(unsigned long long)r->crash_seq);
			json_str(out, r->crash_kind);
			fprintf(out, ", \"reason\": ");
			json_str(out, r->crash_reason);
			fprintf(out, ", \"backtrace\": ");
			json_str(out, r->backtrace);
			fprintf(out, ", \"backtrace_recorded\": %s}",
				r->backtrace_recorded ? "true" : "false");
		}
		if (!r->ok && r->type[0]) {
			fprintf(out, ", \"divergence\": {\"seq\": %llu, \"type\": ",
				(unsigned long long)r->seq);
			json_str(out, r->type);
			fprintf(out, ", \"what\": ");
			json_str(out, r->what);
			fprintf(out, ", \"expected\": ");
			json_str(out, r->expected);
			fprintf(out, ", \"actual\": ");
			json_str(out, r->actual);
			if (r->has_last_match) {
				fprintf(out, ", \"last_match\": {\"seq\": %llu, \"type\": ",
					(unsigned long long)r->last_match_seq);
				json_str(out, r->last_match_type);
				fprintf(out, "}");
			}
			fprintf(out, "}");
		}
		fprintf(out, "}\n");
		return;
	}
	if (!r->ok && r->type[0]) {
		fprintf(out, "replay of %s DIVERGED at event %llu (%s): %s\n", chain,
			(unsigned long long)r->seq, r->type, r->what);
		fprintf(out, "  expected: %s\n  actual:   %s\n", r->expected, r->actual);
		if (r->has_last_match)
			fprintf(out, "  last matching step: event %llu (%s)\n",
				(unsigned long long)r->last_match_seq, r->last_match_type);
		else
			fprintf(out, "  no step matched before it\n");
		return;
	}
	if (r->crashed) {
		fprintf(out, "crash reproduced at event %llu: %s: %s\n",
			(unsigned long long)r->crash_seq, r->crash_kind, r->crash_reason);
		if (r->backtrace[0])
			fprintf(out, "backtrace (%s):\n%s\n", r->backtrace_recorded
				? "the recorded one, reproduced" : "reproduced; the chain "
				"records none", r->backtrace);
	}
	fprintf(out, "replayed %llu events of %s (%llu export calls, %llu host calls "
		"answered from the chain): ok\n", (unsigned long long)r->events, chain,
		(unsigned long long)r->calls, (unsigned long long)r->host_calls);
}
