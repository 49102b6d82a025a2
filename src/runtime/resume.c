/*
 * resume.c - rebuilding an actor from its durable chain after the runtime
 * that ran it died (prefix rz_; public thr_resume).
 *
 * 1. Why this is possible
 *
 * At-least-once delivery (docs/runtime.md) rests on two recorded facts:
 * a message's arrival (message.received, recorded before the actor can
 * see it) and its acknowledgement (the export.result of its handler,
 * which also holds the state the handler committed). A message that was
 * dropped on purpose says so (message.dropped; its sender got an answer).
 * So a chain on disk tells, after any crash, what the actor had accepted,
 * what it had finished, and the state it had reached: everything needed
 * to continue. What was in memory only - a handler half-way through, the
 * mailbox - is lost, and is exactly the set of received messages without
 * an acknowledgement.
 *
 * 2. What thr_resume does
 *
 * Reading the chain once (rz_scan):
 *   actor.spawning          the manifest file and the initial state
 *   component.loaded,
 *   actor.restarted,
 *   actor.resumed           the component hash the actor ran last
 *   export.result           acknowledges its msg-id; an ok result commits
 *                           its state (the last one wins; a health probe's
 *                           result commits nothing)
 *   message.dropped         settles its msg-id (not redelivered)
 *   supervision.restarting  "state=reset": back to the initial state
 *   message.received,
 *   message.redelivered     a message accepted (id, kind, sender, ref,
 *                           data): the candidates for redelivery
 * then builds the actor again under its id (rta_spawn_resumed) with the
 * manifest (the recorded file, or one the caller gives: it must name the
 * same component) and the last committed state, recording
 *
 *   actor.resumed [component-hash, state-seq | null, [msg-id ...],
 *                  fuel_per_message, memory_pages]
 *
 * (state-seq: the export.result whose state it continues from; the ids:
 * the messages redelivered), and lets init run again from that state, as a
 * restart does. Each unacknowledged message of a user kind (send, request,
 * channel open/message/close) is then delivered again with its original
 * id, recorded as message.redelivered (same data as message.received),
 * in the order it first arrived. Control notices (init, child notices)
 * are not: the children and parents they are about died with the runtime.
 * A redelivered request's requester is gone too; its handler still runs
 * (its effects are what at-least-once is about) and an answer goes
 * nowhere. New message ids, and request and channel ids, are moved above
 * every id the chain holds, so that no id is ever given twice in a chain.
 *
 * 3. Invariants
 *   Z1. Nothing is appended to the chain before the manifest, the
 *       component and the whole chain have been checked (a refused resume
 *       leaves the chain as it was).
 *   Z2. The state given to init is the one a replay of the chain has at
 *       that point (the last ok export.result, or the initial state after
 *       a state reset): replay checks state-seq against it.
 *   Z3. A message is redelivered at most once per resume, and only if no
 *       export.result and no message.dropped names its id.
 */
#include "base/base.h"
#include "base/cbor.h"
#include "component/types.h"
#include "runtime/rt.h"
#include "runtime/supervise.h"
#include "runtime/value.h"

/* A message to deliver again. */
typedef struct rz_msg {
	uint64_t id, ref;
	rtm_kind kind;
	char sender[40];
	uint8_t *data;       /* owned */
	uint32_t len;
} rz_msg;

typedef struct rz_ids {
	uint64_t *v;
	size_t n, cap;
} rz_ids;

typedef struct rz_scan {
	thx_chain *c;
	uint64_t count;                   /* events read                    */
	char *manifest;                   /* file named by actor.spawning   */
	char hex[THS_HEX_LEN + 1];        /* the component ran last         */
	uint8_t *init;                    /* initial state                  */
	size_t init_len;
	bool has_init, spawning;
	rz_ids acked;                     /* acknowledged or dropped ids    */
	rz_ids results;                   /* seqs of export.result          */
	uint64_t reset_seq;               /* last state reset               */
	bool has_reset;
	uint64_t max_id, max_ref;
	rz_msg *msgs;                     /* to redeliver, arrival order    */
	size_t nmsgs, capmsgs;
	uint8_t *state;                   /* the state to continue from     */
	size_t state_len;
	bool has_state;
	uint64_t state_seq;
	bool has_state_seq;
} rz_scan;

static int ids_add(rz_ids *s, uint64_t x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *v = th_realloc(s->v, cap * sizeof *v);
		if (!v)
			return TH_ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool ids_has(const rz_ids *s, uint64_t x)
{
	return s->n && bsearch(&x, s->v, s->n, sizeof x, cmp_u64) != NULL;
}

static void scan_release(rz_scan *z)
{
	th_free(z->manifest);
	th_free(z->init);
	th_free(z->acked.v);
	th_free(z->results.v);
	for (size_t i = 0; i < z->nmsgs; i++)
		th_free(z->msgs[i].data);
	th_free(z->msgs);
	th_free(z->state);
}

static int bad(th_err *err, const thx_event *ev)
{
	return th_err_set(err, TH_ECORRUPT, "event %llu (%s) of chain %s: "
			  "malformed data", (unsigned long long)ev->seq, ev->type,
			  ev->actor);
}

/* ---- pass 1: facts ---------------------------------------------------------- */

static int on_spawning(rz_scan *z, const thx_event *ev, th_err *err)
{
	th_cbor_dec d;
	uint64_t n;
	const char *s;
	size_t len;
	const uint8_t *p;

	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &n, NULL) || n < 4 || th_cbor_skip(&d, NULL) ||
	    th_cbor_get_text(&d, &s, &len, NULL))
		return bad(err, ev);
	th_free(z->manifest);
	z->manifest = len && s[0] != '<' ? th_strndup(s, len) : NULL;
	if (len && s[0] != '<' && !z->manifest)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	z->spawning = true;
	if (n < 7 || th_cbor_skip(&d, NULL) || th_cbor_skip(&d, NULL) ||
	    th_cbor_get_null(&d))
		return 0;
	if (th_cbor_get_bytes(&d, &p, &len, NULL))
		return bad(err, ev);
	z->init = th_malloc(len ? len : 1);
	if (!z->init)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	memcpy(z->init, p, len);
	z->init_len = len;
	z->has_init = true;
	return 0;
}

/* The first item, a component hash (component.loaded, actor.restarted,
 * actor.resumed). */
static int on_component(rz_scan *z, const thx_event *ev, th_err *err)
{
	th_cbor_dec d;
	uint64_t n;
	const char *s;
	size_t len;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &n, NULL) || n < 1 ||
	    th_cbor_get_text(&d, &s, &len, NULL) || len != THS_HEX_LEN)
		return bad(err, ev);
	memcpy(z->hex, s, len);
	z->hex[len] = 0;
	return 0;
}

/* [msg-id, ...] of message.dropped / [export, msg-id, ...] of export.result */
static int on_settled(rz_scan *z, const thx_event *ev, bool result, th_err *err)
{
	th_cbor_dec d;
	uint64_t n, id;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &n, NULL) || n < 2 ||
	    (result && th_cbor_skip(&d, NULL)) || th_cbor_get_uint(&d, &id, NULL))
		return bad(err, ev);
	if (id > z->max_id)
		z->max_id = id;
	if (ids_add(&z->acked, id) || (result && ids_add(&z->results, ev->seq)))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	return 0;
}

/* [count, "state=reset" | "state=preserve", ...] */
static void on_restarting(rz_scan *z, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t n;
	const char *s;
	size_t len;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (!th_cbor_get_array(&d, &n, NULL) && n >= 2 && !th_cbor_skip(&d, NULL) &&
	    !th_cbor_get_text(&d, &s, &len, NULL) && len == 11 &&
	    !memcmp(s, "state=reset", 11)) {
		z->reset_seq = ev->seq;
		z->has_reset = true;
	}
}

/* message.received / message.redelivered: [id, kind, sender, ref, data].
 * With collect, an unsettled one of a user kind is kept for redelivery. */
static int on_arrival(rz_scan *z, const thx_event *ev, bool collect, th_err *err)
{
	static const struct { const char *name; rtm_kind kind; } kinds[] = {
		{ "send", RTM_SEND }, { "request", RTM_REQUEST },
		{ "channel-open", RTM_CHANNEL_OPEN },
		{ "channel-message", RTM_CHANNEL_MESSAGE },
		{ "channel-close", RTM_CHANNEL_CLOSE },
	};
	th_cbor_dec d;
	uint64_t n, id, ref;
	const char *k, *snd;
	size_t kl, sl, len;
	const uint8_t *p;
	int kind = -1;

	th_cbor_dec_init(&d, ev->data, ev->len);
	if (th_cbor_get_array(&d, &n, NULL) || n != 5 ||
	    th_cbor_get_uint(&d, &id, NULL) || th_cbor_get_text(&d, &k, &kl, NULL) ||
	    th_cbor_get_text(&d, &snd, &sl, NULL) || th_cbor_get_uint(&d, &ref, NULL) ||
	    th_cbor_get_bytes(&d, &p, &len, NULL) || len > UINT32_MAX)
		return bad(err, ev);
	if (id > z->max_id)
		z->max_id = id;
	for (size_t i = 0; i < TH_ARRAY_LEN(kinds); i++)
		if (strlen(kinds[i].name) == kl && !memcmp(kinds[i].name, k, kl))
			kind = (int)kinds[i].kind;
	if (!collect || kind < 0 || ids_has(&z->acked, id))
		return 0;
	for (size_t i = 0; i < z->nmsgs; i++)
		if (z->msgs[i].id == id)
			return 0; /* received, then redelivered by an earlier resume */
	if (z->nmsgs == z->capmsgs) {
		size_t cap = z->capmsgs ? z->capmsgs * 2 : 16;
		rz_msg *v = th_realloc(z->msgs, cap * sizeof *v);
		if (!v)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		z->msgs = v;
		z->capmsgs = cap;
	}
	rz_msg *m = &z->msgs[z->nmsgs];
	memset(m, 0, sizeof *m);
	m->data = th_malloc(len ? len : 1);
	if (!m->data)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	memcpy(m->data, p, len);
	m->len = (uint32_t)len;
	m->id = id;
	m->ref = ref;
	m->kind = (rtm_kind)kind;
	snprintf(m->sender, sizeof m->sender, "%.*s", (int)(sl < 39 ? sl : 39), snd);
	z->nmsgs++;
	if (kind != RTM_SEND && ref > z->max_ref)
		z->max_ref = ref;
	return 0;
}

/* One pass over the chain: pass 1 (collect false) the facts, pass 2 the
 * messages to redeliver. */
static int scan(rz_scan *z, bool collect, th_err *err)
{
	thx_event ev = { 0 };
	int rc = 0;

	for (uint64_t seq = 0; seq < z->count && !rc; seq++) {
		thx_event_release(&ev);
		rc = thx_get(z->c, seq, &ev, err);
		if (rc)
			break;
		if (ev.pruned) /* retention: older than anything still needed */
			continue;
		const char *t = ev.type;
		if (!strcmp(t, "message.received") || !strcmp(t, "message.redelivered"))
			rc = on_arrival(z, &ev, collect, err);
		else if (collect)
			continue;
		else if (!strcmp(t, "actor.spawning"))
			rc = on_spawning(z, &ev, err);
		else if (!strcmp(t, "component.loaded") || !strcmp(t, "actor.restarted") ||
			 !strcmp(t, "actor.resumed"))
			rc = on_component(z, &ev, err);
		else if (!strcmp(t, "export.result"))
			rc = on_settled(z, &ev, true, err);
		else if (!strcmp(t, "message.dropped"))
			rc = on_settled(z, &ev, false, err);
		else if (!strcmp(t, "supervision.restarting"))
			on_restarting(z, &ev);
	}
	thx_event_release(&ev);
	return rc;
}

/* ---- the state (Z2) ----------------------------------------------------------- */

/* The state an ok result commits: tuple<option<list<u8>>, ...>. 1: it
 * commits one (into z), 0: an error result (commits nothing), <0 error. */
static int commit_of(rz_scan *z, const thc_val *v)
{
	const thc_val *ok, *opt, *b;
	if (v->kind != THC_RESULT || v->of.var.disc != 0)
		return 0;
	ok = v->of.var.payload;
	if (!ok || ok->kind != THC_TUPLE || ok->of.agg.n < 1 ||
	    ok->of.agg.items[0].kind != THC_OPTION)
		return 0; /* the runtime failed the actor: nothing committed */
	opt = &ok->of.agg.items[0];
	z->has_state = opt->of.var.disc == 1 && opt->of.var.payload;
	if (!z->has_state)
		return 1;
	b = opt->of.var.payload;
	size_t n = b->kind == THC_BYTES ? b->of.bytes.len : b->of.agg.n;
	z->state = th_malloc(n ? n : 1);
	if (!z->state)
		return TH_ENOMEM;
	z->state_len = n;
	for (size_t i = 0; i < n; i++)
		z->state[i] = b->kind == THC_BYTES ? b->of.bytes.ptr[i]
						   : (uint8_t)b->of.agg.items[i].of.u;
	return 1;
}

/* The last ok export.result after the last state reset; else the initial
 * state. */
static int find_state(rz_scan *z, const rtc_code *code, th_err *err)
{
	for (size_t i = z->results.n; i-- > 0;) {
		uint64_t seq = z->results.v[i];
		thx_event ev = { 0 };
		th_cbor_dec d;
		uint64_t n;
		const char *name;
		size_t nl;
		thc_val v = { 0 };
		thc_funcref f;
		int x = -1, rc;

		if (z->has_reset && seq < z->reset_seq)
			break;
		rc = thx_get(z->c, seq, &ev, err);
		if (rc)
			return rc;
		th_cbor_dec_init(&d, ev.data, ev.len);
		if (th_cbor_get_array(&d, &n, NULL) || n != 4 ||
		    th_cbor_get_text(&d, &name, &nl, NULL) || th_cbor_skip(&d, NULL) ||
		    th_cbor_skip(&d, NULL)) {
			rc = bad(err, &ev);
			thx_event_release(&ev);
			return rc;
		}
		for (int k = 0; k < RTA_NX; k++)
			if (strlen(rta_export_full[k]) == nl && !memcmp(rta_export_full[k], name, nl))
				x = k;
		if (x == RTA_X_PROBE) { /* a health probe commits nothing */
			thx_event_release(&ev);
			continue;
		}
		if (x < 0 || code->exports[x] < 0) {
			rc = th_err_set(err, TH_EINVAL, "event %llu (export.result): the "
					"component has no export %.*s", (unsigned long long)seq,
					(int)nl, name);
			thx_event_release(&ev);
			return rc;
		}
		thc_component_export(code->comp, (uint32_t)code->exports[x], &f);
		rc = f.type->result ? rtv_decode(&d, f.type->result, &v, err) : 0;
		if (!rc)
			rc = commit_of(z, &v);
		thc_val_release(&v);
		thx_event_release(&ev);
		if (rc < 0)
			return rc == TH_ENOMEM ? th_err_set(err, rc, "out of memory")
					       : th_err_prefix(err, "event %llu (export.result)",
							       (unsigned long long)seq);
		if (rc == 1) {
			z->state_seq = seq;
			z->has_state_seq = true;
			return 0;
		}
	}
	if (z->has_init) {
		z->state = th_malloc(z->init_len ? z->init_len : 1);
		if (!z->state)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		memcpy(z->state, z->init, z->init_len);
		z->state_len = z->init_len;
		z->has_state = true;
	}
	return 0;
}

/* ---- redelivery ---------------------------------------------------------------- */

/* Deliver z->msgs[i] again, waiting for room in the mailbox. */
static int redeliver(rta_actor *a, const rz_msg *r, th_err *err)
{
	rtm_msg *m = rtm_msg_new(r->kind, RTM_NORMAL, r->data, r->len);
	if (!m)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	m->id = r->id;
	m->ref = r->ref;
	m->flags = RTA_MSGF_REDELIVERED;
	memcpy(m->sender, r->sender, sizeof m->sender);
	return rtr_deliver_external(a, m, THR_SEND_WAIT, err);
}

static void raise_to(_Atomic uint64_t *v, uint64_t above)
{
	uint64_t cur = atomic_load(v);
	while (cur <= above && !atomic_compare_exchange_weak(v, &cur, above + 1))
		;
}

/* ---- thr_resume ------------------------------------------------------------------ */

int thr_resume(thr_runtime *rt, const char *id, const thr_resume_opts *opt,
	       thr_resume_info *info, th_err *err)
{
	static const thr_resume_opts none = { 0 };
	rz_scan z = { 0 };
	rtf_spec *spec = NULL;
	rtc_code *code = NULL;
	rta_actor *a = NULL;
	th_cbor_enc e;
	bool cached;
	int rc;

	if (info)
		memset(info, 0, sizeof *info);
	opt = opt ? opt : &none;
	if (!id || strlen(id) != THR_ID_LEN)
		return th_err_set(err, TH_EINVAL, "resume: \"%s\" is not an actor id",
				  id ? id : "(null)");
	if (opt->manifest_path && opt->manifest_text)
		return th_err_set(err, TH_EINVAL,
				  "resume: give at most one of a manifest path and text");
	if (rtg_find(rt->reg, id))
		return th_err_set(err, TH_EEXIST, "actor %s is already in this runtime "
				  "(resume is for an actor whose runtime died)", id);
	rc = thx_chain_open(rt->chains, id, NULL, false, &z.c, err);
	if (rc)
		return th_err_prefix(err, "resume %s", id);
	z.count = thx_chain_count(z.c);

	/* Pass 1 (Z1: nothing is appended until all is checked). */
	rc = scan(&z, false, err);
	if (rc)
		goto out;
	if (!z.spawning || !z.hex[0]) {
		rc = th_err_set(err, TH_EINVAL, "chain %s does not record an actor's "
				"creation (actor.spawning, component.loaded)", id);
		goto out;
	}
	qsort(z.acked.v, z.acked.n, sizeof *z.acked.v, cmp_u64);
	if (!opt->manifest_path && !opt->manifest_text && !z.manifest) {
		rc = th_err_set(err, TH_EINVAL, "actor %s was spawned from a manifest "
				"given as text: give the manifest to resume it with", id);
		goto out;
	}
	rc = rtc_spec(rt, opt->manifest_text ? NULL : opt->manifest_path ? opt->manifest_path
		      : z.manifest, opt->manifest_text, opt->base_dir, &spec, err);
	if (rc) {
		th_err_prefix(err, "resume %s: manifest", id);
		goto out;
	}
	rc = rtc_code_get(rt, spec, &code, &cached, err);
	if (rc) {
		th_err_prefix(err, "resume %s", id);
		goto out;
	}
	if (strcmp(code->hex, z.hex)) {
		rc = th_err_set(err, TH_EINVAL, "resume %s: the manifest's component is "
				"%.16s..., the chain's actor ran %.16s...: resume it with the "
				"component it recorded", id, code->hex, z.hex);
		goto out;
	}
	rc = find_state(&z, code, err);
	if (!rc)
		rc = scan(&z, true, err);
	if (rc)
		goto out;

	/* No id given again (ids are per runtime, the chain spans several). */
	raise_to(&rt->next_msg, z.max_id);
	rtq_ids_above(rt, z.max_ref);
	/* The chain goes on with the durability and retention the manifest
	 * and this runtime give (rtf_chain_opts); a chain on disk stays on disk
	 * (a memory-only one did not survive to be resumed). */
	if (spec->m->save_chain && rt->opt.durability != THX_NONE) {
		thx_chain_opts co, want;
		thx_chain_opts_get(z.c, &co);
		rtf_chain_opts(spec->m, rt->opt.durability, &want);
		if (co.durability != THX_NONE && want.durability != THX_NONE &&
		    (co.durability != want.durability ||
		     (want.batch_ms && co.batch_ms != want.batch_ms) ||
		     memcmp(&co.retention, &want.retention, sizeof co.retention))) {
			co.durability = want.durability;
			if (want.batch_ms)
				co.batch_ms = want.batch_ms;
			co.retention = want.retention;
			rc = thx_chain_configure(z.c, &co, err);
			if (rc) {
				th_err_prefix(err, "resume %s", id);
				goto out;
			}
		}
	}

	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, 5);
	th_cbor_put_cstr(&e, z.hex);
	if (z.has_state_seq)
		th_cbor_put_uint(&e, z.state_seq);
	else
		th_cbor_put_null(&e);
	th_cbor_put_array(&e, z.nmsgs);
	for (size_t i = 0; i < z.nmsgs; i++)
		th_cbor_put_uint(&e, z.msgs[i].id);
	th_cbor_put_uint(&e, spec->m->limits.fuel_per_message);
	th_cbor_put_uint(&e, spec->m->limits.memory_pages);
	if (e.err) {
		th_cbor_enc_release(&e);
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	rta_resumed res = { .id = id, .chain = z.c, .event = e.buf,
			    .event_len = e.len, .state = z.state,
			    .state_len = z.state_len, .has_state = z.has_state };
	rc = rta_spawn_resumed(rt, spec, &res, &a, err);
	th_cbor_enc_release(&e);
	if (rc)
		goto out;
	rtr_runtime_event(rt, "actor.resumed", id, spec->m->name);

	/* A message over a smaller limits.max_message_bytes is refused and
	 * recorded (message.rejected); an actor whose init failed meanwhile
	 * drops the rest (message.dropped), and the wait below says why. */
	uint64_t sent = 0;
	for (size_t i = 0; i < z.nmsgs; i++) {
		rc = redeliver(a, &z.msgs[i], err);
		if (rc == TH_ELIMIT)
			continue;
		if (rc)
			break;
		sent++;
	}
	if (rc && rta_life_get(a) < RTA_STOPPED) {
		th_err_prefix(err, "resume %s: redelivering", id);
		goto out;
	}
	rc = 0;
	if (info) {
		info->from_seq = z.count;
		info->state_seq = z.state_seq;
		info->has_state_seq = z.has_state_seq;
		info->redelivered = sent;
		info->settled = z.acked.n;
	}
	if (opt->flags & THR_SPAWN_NO_WAIT)
		goto out;
	pthread_mutex_lock(&rt->wait_lock);
	while (rta_life_get(a) == RTA_STARTING)
		pthread_cond_wait(&rt->wait_cond, &rt->wait_lock);
	pthread_mutex_unlock(&rt->wait_lock);
	if (rta_life_get(a) != RTA_READY) {
		pthread_mutex_lock(&a->lock);
		rc = th_err_set(err, TH_EINVAL, "actor %s failed to resume: %s", id,
				a->reason ? a->reason : "stopped during init");
		pthread_mutex_unlock(&a->lock);
	}
out:
	scan_release(&z);
	return rc;
}
