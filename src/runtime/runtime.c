/*
 * runtime.c - the embedding API (thr_, theater/runtime.h): creating and
 * freeing a runtime, and the external side of spawning, messaging,
 * stopping and waiting. Everything that happens inside an actor is in
 * actor.c; the host functions are in src/handlers/.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "handlers/handlers.h"
#include "runtime/rt.h"
#include "theater/wasi.h"
#include "runtime/supervise.h"

static int mkdir_p(const char *path, th_err *err)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return th_err_set(err, TH_EINVAL, "bad home directory \"%s\"", path);
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		char c = buf[i];
		buf[i] = 0;
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return th_err_set(err, TH_EIO, "cannot create %s: %s", buf,
					  strerror(errno));
		buf[i] = c;
	}
	return 0;
}

static void free_actor(rta_actor *a)
{
	rsv_detach(a);
	/* Only an actor spawned while the runtime was closing still has an
	 * instance here (nothing runs any more). */
	thc_instance_free(a->inst);
	thw_exec_free(a->exec);
	thw_realm_free(a->realm);
	thw_wasi_free(a->wasi);
	rtm_release(&a->mb);
	thm_perms_release(&a->perm);
	pthread_mutex_destroy(&a->lock);
	thc_val_release(&a->pend.result);
	th_free(a->pend.trap);
	th_free(a->pend.args);
	if (a->pend.ctx && a->pend.ctx_free)
		a->pend.ctx_free(a->pend.ctx);
	th_free(a->state);
	th_free(a->reason);
	th_free(a->exit_data);
	th_free(a->children);
	th_free(a);
}

int thr_runtime_new(const thr_options *opt, thr_runtime **out, th_err *err)
{
	thr_runtime *rt;
	char path[4096];
	thx_chain_opts copts = { 0 };
	ths_options sopts = { 0 };
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!opt || !opt->home || !*opt->home)
		return th_err_set(err, TH_EINVAL, "runtime: a home directory is required");
	rt = th_calloc(1, sizeof *rt);
	if (!rt)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	rt->opt = *opt;
	if (!rt->opt.batch)
		rt->opt.batch = 32;
	if (!rt->opt.fuel_slice)
		rt->opt.fuel_slice = 200000;
	if (!rt->opt.mailbox_capacity)
		rt->opt.mailbox_capacity = 1024;
	if (!rt->opt.request_timeout_ms)
		rt->opt.request_timeout_ms = 30000;
	atomic_init(&rt->next_msg, 1);
	atomic_init(&rt->next_token, 1);
	pthread_mutex_init(&rt->wait_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->wait_cond, &ca);
	pthread_condattr_destroy(&ca);
	rt->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	rt->home = th_strdup(opt->home);
	if (!rt->home) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	rt->opt.home = rt->home;

	if ((rc = mkdir_p(rt->home, err)))
		goto fail;
	snprintf(path, sizeof path, "%s/store", rt->home);
	sopts.sync = opt->store_no_sync ? THS_SYNC_NONE : THS_SYNC_FULL;
	if ((rc = ths_open(path, &sopts, &rt->store, err)))
		goto fail;
	snprintf(path, sizeof path, "%s/chains", rt->home);
	if ((rc = thx_store_open(path, NULL, &rt->chains, err)))
		goto fail;
	copts.durability = opt->durability;
	if ((rc = thx_chain_open(rt->chains, THX_RUNTIME_CHAIN, &copts, true,
				 &rt->rchain, err)))
		goto fail;
	if ((rc = rtg_new(&rt->reg)) || (rc = rtc_new(&rt->cache)) ||
	    (rc = rtq_new(rt, &rt->rq)) || (rc = rtx_table_new(&rt->ext))) {
		th_err_set(err, rc, "out of memory");
		goto fail;
	}
	if ((rc = rth_imports(&rt->imports, &rt->nimports, err)))
		goto fail;
	if ((rc = rtt_service_new(&rt->timers, err)) ||
	    (rc = rto_new(opt->io_threads, &rt->io, err)) ||
	    (rc = rts_sched_new(opt->workers, &rt->sched, err)))
		goto fail;
	rtr_runtime_event(rt, "runtime.started", "", rt->home);
	*out = rt;
	return 0;
fail:
	thr_runtime_free(rt);
	return rc;
}

static bool final_life(int life)
{
	return life == RTA_STOPPED || life == RTA_FAILED;
}

void thr_runtime_free(thr_runtime *rt)
{
	rta_actor **all = NULL;
	size_t n = 0;

	if (!rt)
		return;
	atomic_store(&rt->closing, true);
	if (rt->reg && rt->sched && rtg_all(rt->reg, &all, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!final_life(rta_life_get(all[i])))
				rta_request_stop(all[i], true);
		pthread_mutex_lock(&rt->wait_lock);
		for (size_t i = 0; i < n; i++)
			while (!final_life(rta_life_get(all[i])))
				pthread_cond_wait(&rt->wait_cond, &rt->wait_lock);
		pthread_mutex_unlock(&rt->wait_lock);
	}
	/* Pool threads and timers may still complete (abandoned) calls;
	 * they need the scheduler, so it goes last. */
	rto_free(rt->io);
	rtt_service_free(rt->timers);
	rts_sched_free(rt->sched);
	rtq_free(rt->rq);
	rtx_table_free(rt->ext);
	/* Again: a spawn that was on the blocking pool may have added one. */
	th_free(all);
	all = NULL;
	n = 0;
	if (rt->reg && rtg_all(rt->reg, &all, &n))
		n = 0;
	for (size_t i = 0; i < n; i++)
		free_actor(all[i]);
	th_free(all);
	if (rt->rchain && rt->sched)
		rtr_runtime_event(rt, "runtime.stopped", "", rt->home);
	rtg_free(rt->reg);
	rtc_free(rt->cache, rt->store);
	rth_imports_free(rt->imports);
	thx_store_close(rt->chains);
	ths_close(rt->store);
	pthread_cond_destroy(&rt->wait_cond);
	pthread_mutex_destroy(&rt->wait_lock);
	if (rt->devnull >= 0)
		close(rt->devnull);
	th_free(rt->home);
	th_free(rt);
}

ths_store *thr_runtime_store(thr_runtime *rt)
{
	return rt->store;
}

thx_store *thr_runtime_chains(thr_runtime *rt)
{
	return rt->chains;
}

void thr_free(void *p)
{
	th_free(p);
}

/* ---- waiting -------------------------------------------------------------- */

/* Wait on the runtime's condition until done(arg) or the deadline
 * (0 = none). Returns true when done. */
static bool wait_until(thr_runtime *rt, bool (*done)(void *), void *arg,
		       uint32_t timeout_ms)
{
	struct timespec ts;
	bool ok;
	if (timeout_ms)
		ts = th_deadline(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&rt->wait_lock);
	while (!(ok = done(arg))) {
		if (!timeout_ms)
			pthread_cond_wait(&rt->wait_cond, &rt->wait_lock);
		else if (pthread_cond_timedwait(&rt->wait_cond, &rt->wait_lock,
						&ts) == ETIMEDOUT) {
			ok = done(arg);
			break;
		}
	}
	pthread_mutex_unlock(&rt->wait_lock);
	return ok;
}

static bool started(void *arg)
{
	return rta_life_get(arg) != RTA_STARTING;
}

static bool ended(void *arg)
{
	return final_life(rta_life_get(arg));
}

static bool quiet(void *arg)
{
	thr_runtime *rt = arg;
	return atomic_load(&rt->busy) <= 0;
}

static rta_actor *find(thr_runtime *rt, const char *id, th_err *err)
{
	rta_actor *a = id ? rtg_find(rt->reg, id) : NULL;
	if (!a)
		th_err_set(err, TH_ENOTFOUND, "no actor with id \"%s\"",
			   id ? id : "(null)");
	return a;
}

/* ---- spawning ---------------------------------------------------------------- */

int thr_spawn(thr_runtime *rt, const thr_spawn_opts *opt,
	      char id[THR_ID_LEN + 1], th_err *err)
{
	rtf_spec *spec;
	rta_actor *a, *parent = NULL;
	int rc;

	id[0] = 0;
	if (!opt || (!opt->manifest_path == !opt->manifest_text))
		return th_err_set(err, TH_EINVAL,
				  "spawn: give exactly one of a manifest path and text");
	if (opt->parent) {
		if (!(parent = find(rt, opt->parent, err)))
			return TH_ENOTFOUND;
		if (rta_life_get(parent) != RTA_READY)
			return th_err_set(err, TH_ESTATE,
					  "spawn: parent %s is not running",
					  opt->parent);
	}
	rc = rtc_spec_named(rt, opt->manifest_path, opt->manifest_text,
			    opt->manifest_path ? NULL : opt->manifest_name,
			    opt->base_dir, &spec, err);
	if (rc) {
		rtr_runtime_event(rt, "spawn.failed", "", err ? err->msg : "manifest");
		return rc;
	}
	rc = rta_spawn_ex(rt, spec, parent, 0, opt->init_state,
			  opt->init_state_len, opt->has_init_state,
			  (opt->flags & THR_SPAWN_NO_WAIT) ? 0 : RTA_SPAWN_INIT_HERE,
			  &a, err);
	if (a)
		memcpy(id, a->id, THR_ID_LEN + 1);
	/* Children end with their parent: one that ended while this child
	 * was being added may have missed it. */
	if (!rc && parent && final_life(rta_life_get(parent)))
		rta_request_stop(a, true);
	if (rc || (opt->flags & THR_SPAWN_NO_WAIT))
		return rc;
	wait_until(rt, started, a, 0);
	if (rta_life_get(a) == RTA_FAILED) {
		pthread_mutex_lock(&a->lock);
		rc = th_err_set(err, TH_EINVAL, "actor %s failed: %s", a->id,
				a->reason ? a->reason : "init failed");
		pthread_mutex_unlock(&a->lock);
		return rc;
	}
	if (rta_life_get(a) == RTA_STOPPED)
		return th_err_set(err, TH_ESTATE, "actor %s stopped during init",
				  a->id);
	return 0;
}

/* ---- messages ------------------------------------------------------------------ */

typedef struct ext_wait {
	rtm_waiter w;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;
} ext_wait;

static void ext_ready(rtm_waiter *w)
{
	ext_wait *x = w->ctx;
	pthread_mutex_lock(&x->lock);
	x->ready = true;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

int thr_send(thr_runtime *rt, const char *id, const void *msg, size_t len,
	     unsigned flags, th_err *err)
{
	rta_actor *a = find(rt, id, err);
	rtm_msg *m;

	if (!a) {
		rtr_runtime_event(rt, "message.undeliverable", id ? id : "",
				  "no such actor");
		return TH_ENOTFOUND;
	}
	if (len > UINT32_MAX)
		return th_err_set(err, TH_ELIMIT, "message too large");
	m = rtm_msg_new(RTM_SEND, (flags & THR_SEND_HIGH) ? RTM_HIGH : RTM_NORMAL,
			msg, (uint32_t)len);
	if (!m)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	return rtr_deliver_external(a, m, flags, err);
}

int rtr_deliver_external(rta_actor *a, rtm_msg *m, unsigned flags,
			 th_err *err)
{
	int rc;
	for (;;) {
		rc = rta_deliver(a, m, err);
		if (rc != TH_EBUSY)
			return rc;
		if (!(flags & THR_SEND_WAIT)) {
			rtm_msg_free(m);
			return rc;
		}
		ext_wait x = { .w = { .ready = ext_ready } };
		x.w.ctx = &x;
		pthread_mutex_init(&x.lock, NULL);
		pthread_cond_init(&x.cond, NULL);
		if (rtm_wait_for_room(&a->mb, &x.w)) {
			pthread_mutex_lock(&x.lock);
			while (!x.ready)
				pthread_cond_wait(&x.cond, &x.lock);
			pthread_mutex_unlock(&x.lock);
		}
		pthread_cond_destroy(&x.cond);
		pthread_mutex_destroy(&x.lock);
	}
}

int thr_request(thr_runtime *rt, const char *id, const void *msg, size_t len,
		uint32_t timeout_ms, uint8_t **reply, size_t *reply_len,
		th_err *err)
{
	rta_actor *a = find(rt, id, err);
	rtq_req *r;
	int rc;

	*reply = NULL;
	*reply_len = 0;
	if (!a) {
		rtr_runtime_event(rt, "message.undeliverable", id ? id : "",
				  "no such actor");
		return TH_ENOTFOUND;
	}
	rc = rtq_request(rt, NULL, 0, a, msg, len, timeout_ms, &r, err);
	if (rc)
		return rc;
	return rtq_wait(r, reply, reply_len, err);
}

/* ---- actors ------------------------------------------------------------------------ */

int thr_actor_info_get(thr_runtime *rt, const char *id, thr_actor_info *out,
		       th_err *err)
{
	rta_actor *a = find(rt, id, err);
	if (!a)
		return TH_ENOTFOUND;
	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", a->id);
	if (a->parent)
		snprintf(out->parent, sizeof out->parent, "%s", a->parent->id);
	snprintf(out->name, sizeof out->name, "%s", a->spec->m->name);
	if (a->code)
		snprintf(out->component, sizeof out->component, "%s", a->code->hex);
	switch (rta_life_get(a)) {
	case RTA_STARTING: out->status = THR_STARTING; break;
	case RTA_READY: out->status = THR_RUNNING; break;
	case RTA_STOPPED: out->status = THR_STOPPED; break;
	default: out->status = THR_FAILED; break;
	}
	out->messages = atomic_load(&a->handled);
	out->queued = rtm_pending(&a->mb);
	pthread_mutex_lock(&a->lock);
	out->children = a->nchildren;
	if (a->reason)
		snprintf(out->reason, sizeof out->reason, "%s", a->reason);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

int thr_list(thr_runtime *rt, char ***ids, size_t *n, th_err *err)
{
	rta_actor **all;
	size_t k;
	char **v, *s;
	if (rtg_all(rt->reg, &all, &k))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	v = th_malloc(k * (sizeof(char *) + THR_ID_LEN + 1) + 1);
	if (!v) {
		th_free(all);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	s = (char *)(v + k);
	for (size_t i = 0; i < k; i++) {
		v[i] = s;
		memcpy(s, all[i]->id, THR_ID_LEN + 1);
		s += THR_ID_LEN + 1;
	}
	th_free(all);
	*ids = v;
	*n = k;
	return 0;
}

int thr_get_state(thr_runtime *rt, const char *id, uint8_t **state,
		  size_t *len, bool *has, th_err *err)
{
	rta_actor *a = find(rt, id, err);
	if (!a)
		return TH_ENOTFOUND;
	if (rta_state_copy(a, state, len, has))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	return 0;
}

int thr_stop(thr_runtime *rt, const char *id, th_err *err)
{
	rta_actor *a = find(rt, id, err);
	if (!a)
		return TH_ENOTFOUND;
	if (!final_life(rta_life_get(a))) {
		rta_request_stop(a, true);
		wait_until(rt, ended, a, 0);
	}
	return 0;
}

int thr_terminate(thr_runtime *rt, const char *id, th_err *err)
{
	rta_actor *a = find(rt, id, err);
	if (!a)
		return TH_ENOTFOUND;
	if (!final_life(rta_life_get(a))) {
		rta_request_terminate(a);
		wait_until(rt, ended, a, 0);
	}
	return 0;
}

int thr_get_manifest(thr_runtime *rt, const char *id, char **text,
		     size_t *len, th_err *err)
{
	rta_actor *a = find(rt, id, err);
	*text = NULL;
	*len = 0;
	if (!a)
		return TH_ENOTFOUND;
	if (!a->spec->text)
		return th_err_set(err, TH_EIO,
				  "the manifest of %s could not be read back from %s",
				  id, a->spec->m->file ? a->spec->m->file : "its file");
	if (!(*text = th_strdup(a->spec->text)))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	*len = strlen(*text);
	return 0;
}

int thr_restart(thr_runtime *rt, const char *id, th_err *err)
{
	rta_actor *a = find(rt, id, err);
	int rc;
	if (!a)
		return TH_ENOTFOUND;
	rta_restart_begin(a); /* a sender waiting for room waits for the restart */
	if (!final_life(rta_life_get(a))) {
		rta_request_stop(a, true);
		wait_until(rt, ended, a, 0);
	}
	rc = rta_reincarnate(a, err);
	if (rc)
		return rc;
	wait_until(rt, started, a, 0);
	if (rta_life_get(a) != RTA_READY) {
		pthread_mutex_lock(&a->lock);
		rc = th_err_set(err, TH_EINVAL, "actor %s failed to restart: %s",
				a->id, a->reason ? a->reason : "stopped during init");
		pthread_mutex_unlock(&a->lock);
		return rc;
	}
	return 0;
}

int thr_wait(thr_runtime *rt, const char *id, uint32_t timeout_ms,
	     th_err *err)
{
	rta_actor *a = find(rt, id, err);
	if (!a)
		return TH_ENOTFOUND;
	if (!wait_until(rt, ended, a, timeout_ms))
		return th_err_set(err, TH_ETIMEOUT,
				  "actor %s still running after %u ms", id, timeout_ms);
	return 0;
}

int thr_quiesce(thr_runtime *rt, uint32_t timeout_ms, th_err *err)
{
	if (!wait_until(rt, quiet, rt, timeout_ms))
		return th_err_set(err, TH_ETIMEOUT,
				  "actors still busy after %u ms (%lld messages "
				  "not yet handled)", timeout_ms,
				  (long long)atomic_load(&rt->busy));
	return 0;
}

int thr_subscribe(thr_runtime *rt, const char *id, thx_event_fn fn, void *arg,
		  uint64_t *sub, th_err *err)
{
	return thx_subscribe(rt->chains, id, fn, arg, sub, err);
}

int thr_unsubscribe(thr_runtime *rt, uint64_t sub)
{
	return thx_unsubscribe(rt->chains, sub);
}

void thr_runtime_stats(thr_runtime *rt, thr_stats *out)
{
	out->spawned = atomic_load(&rt->n_spawned);
	out->stopped = atomic_load(&rt->n_stopped);
	out->failed = atomic_load(&rt->n_failed);
	out->messages = rts_count_sum(rt->sched, RTS_C_MESSAGES);
	out->host_calls = rts_count_sum(rt->sched, RTS_C_HOST_CALLS);
	out->denied = atomic_load(&rt->n_denied);
	out->live = out->spawned - out->stopped - out->failed;
}
