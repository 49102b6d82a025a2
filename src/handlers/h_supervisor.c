/*
 * h_supervisor.c - theater:simple/supervisor: spawning and managing
 * children. A child's effective permissions are the intersection of its
 * manifest's with the parent's (thm_effective), so it can never do more
 * than its parent. Spawning reads the manifest and the component from
 * disk, so it runs on the blocking-work pool; the parent stays suspended
 * until the child's init has finished (ok(child-id)) or failed (err).
 */
#include "base/base.h"
#include "handlers/handlers.h"
#include "runtime/supervise.h"

typedef struct spawn_job {
	rta_actor *parent;
	uint64_t token;
	char *manifest;
	uint8_t *init;
	size_t init_len;
	bool has_init;
	rta_actor *child;  /* restart-child */
} spawn_job;

static void job_free(spawn_job *j)
{
	th_free(j->manifest);
	th_free(j->init);
	th_free(j);
}

static void answer(rta_actor *a, uint64_t token, bool ok, const char *text)
{
	thc_val p = { 0 }, res = { 0 };
	if (!text) {
		if (thc_val_case(THC_RESULT, 0, NULL, &res))
			return;
	} else if (thc_val_string(text, strlen(text), &p) ||
		   thc_val_case(THC_RESULT, ok ? 0 : 1, &p, &res)) {
		thc_val_release(&p);
		rta_complete_trap(a, token, "out of memory");
		return;
	}
	if (!rta_complete(a, token, &res))
		thc_val_release(&res);
}

/* A manifest argument is text when it looks like TOML, else a path
 * (relative to the parent's manifest directory). */
static bool is_text(const char *s)
{
	return strchr(s, '\n') || strchr(s, '=');
}

static void spawn_run(void *ctx)
{
	spawn_job *j = ctx;
	rta_actor *p = j->parent, *child = NULL;
	thr_runtime *rt = p->rt;
	const char *dir = p->spec->m->dir && *p->spec->m->dir ? p->spec->m->dir : NULL;
	char path[4096];
	rtf_spec *spec;
	th_err err = { 0 };
	int rc;

	if (is_text(j->manifest)) {
		rc = rtc_spec(rt, NULL, j->manifest, dir, &spec, &err);
	} else {
		if (j->manifest[0] != '/' && dir)
			snprintf(path, sizeof path, "%s/%s", dir, j->manifest);
		else
			snprintf(path, sizeof path, "%s", j->manifest);
		rc = rtc_spec(rt, path, NULL, NULL, &spec, &err);
	}
	if (!rc)
		rc = rta_spawn(rt, spec, p, j->token, j->init, j->init_len,
			       j->has_init, &child, &err);
	/* With a child, its init (or its failure) answers the parent. */
	if (rc && !child)
		answer(p, j->token, false, err.msg);
	job_free(j);
}

static bool ended(rta_actor *a)
{
	int l = rta_life_get(a);
	return l == RTA_STOPPED || l == RTA_FAILED;
}

static void restart_run(void *ctx)
{
	spawn_job *j = ctx;
	rta_actor *c = j->child;
	thr_runtime *rt = c->rt;
	th_err err = { 0 };

	rta_restart_begin(c); /* a sender waiting for room waits for the restart */
	if (!ended(c))
		rta_request_stop(c, true);
	pthread_mutex_lock(&rt->wait_lock);
	while (!ended(c))
		pthread_cond_wait(&rt->wait_cond, &rt->wait_lock);
	pthread_mutex_unlock(&rt->wait_lock);
	if (rta_reincarnate(c, &err)) {
		answer(j->parent, j->token, false, err.msg);
		job_free(j);
		return;
	}
	pthread_mutex_lock(&rt->wait_lock);
	while (rta_life_get(c) == RTA_STARTING)
		pthread_cond_wait(&rt->wait_cond, &rt->wait_lock);
	pthread_mutex_unlock(&rt->wait_lock);
	if (rta_life_get(c) == RTA_READY) {
		answer(j->parent, j->token, true, NULL);
	} else {
		char text[TH_ERR_MSG_MAX + 64];
		pthread_mutex_lock(&c->lock);
		snprintf(text, sizeof text, "child %s failed to restart: %s", c->id,
			 c->reason ? c->reason : "stopped");
		pthread_mutex_unlock(&c->lock);
		answer(j->parent, j->token, false, text);
	}
	job_free(j);
}

static rth_ret start_spawn(rth_call *c)
{
	const thc_val *opt = &c->args[1];
	size_t n;
	const char *m = rth_str(&c->args[0], &n);
	spawn_job *j;

	if (!m || !n || memchr(m, 0, n))
		return rth_err(c, "the manifest must be a path or TOML text");
	j = th_calloc(1, sizeof *j);
	if (!j || !(j->manifest = th_strndup(m, n))) {
		th_free(j);
		return rth_oom(c);
	}
	if (opt->kind == THC_OPTION && opt->of.var.disc == 1 && opt->of.var.payload) {
		uint8_t *tmp;
		const uint8_t *p = rth_bytes(opt->of.var.payload, &j->init_len, &tmp);
		j->init = p ? th_malloc(j->init_len ? j->init_len : 1) : NULL;
		if (!j->init) {
			th_free(tmp);
			job_free(j);
			return rth_oom(c);
		}
		memcpy(j->init, p, j->init_len);
		th_free(tmp);
		j->has_init = true;
	}
	j->parent = c->a;
	j->token = rta_suspend(c->a);
	if (rto_run(c->a->rt->io, spawn_run, j)) {
		rta_unsuspend(c->a);
		job_free(j);
		return rth_oom(c);
	}
	return RTH_PENDING;
}

static rth_ret fn_spawn(rth_call *c)
{
	return start_spawn(c);
}

static rth_ret fn_resume(rth_call *c)
{
	return start_spawn(c);
}

/* Child of c->a named by argument 0, or NULL (answered). */
static rta_actor *child_arg(rth_call *c, rth_ret *r)
{
	char id[64];
	rta_actor *a = c->a, *ch = NULL;
	if (rth_cstr(&c->args[0], id, sizeof id))
		ch = rtg_find(a->rt->reg, id);
	if (!ch || ch->parent != a) {
		*r = rth_err(c, "\"%s\" is not a child of this actor",
			     rth_cstr(&c->args[0], id, sizeof id) ? id : "?");
		return NULL;
	}
	return ch;
}

static rth_ret fn_list_children(rth_call *c)
{
	rta_actor *a = c->a;
	uint32_t n = 0, k = 0;
	pthread_mutex_lock(&a->lock);
	for (uint32_t i = 0; i < a->nchildren; i++)
		if (rta_life_get(a->children[i]) <= RTA_READY)
			n++;
	if (thc_val_agg(THC_LIST, n, c->result)) {
		pthread_mutex_unlock(&a->lock);
		return rth_oom(c);
	}
	for (uint32_t i = 0; i < a->nchildren && k < n; i++) {
		rta_actor *ch = a->children[i];
		if (rta_life_get(ch) > RTA_READY)
			continue;
		if (thc_val_string(ch->id, strlen(ch->id), &c->result->of.agg.items[k++])) {
			pthread_mutex_unlock(&a->lock);
			thc_val_release(c->result);
			return rth_oom(c);
		}
	}
	pthread_mutex_unlock(&a->lock);
	return RTH_OK;
}

static rth_ret fn_stop_child(rth_call *c)
{
	rth_ret r;
	rta_actor *ch = child_arg(c, &r);
	if (!ch)
		return r;
	if (rsv_supervisor_decides(ch, "stop-child") && ended(ch))
		return rth_ok_unit(c); /* its planned restart is cancelled */
	if (ended(ch))
		return rth_err(c, "child %s has already ended", ch->id);
	rta_request_stop(ch, true);
	return rth_ok_unit(c);
}

static rth_ret fn_restart_child(rth_call *c)
{
	rth_ret r;
	rta_actor *ch = child_arg(c, &r);
	spawn_job *j;
	if (!ch)
		return r;
	rsv_supervisor_decides(ch, "restart-child");
	j = th_calloc(1, sizeof *j);
	if (!j)
		return rth_oom(c);
	j->parent = c->a;
	j->child = ch;
	j->token = rta_suspend(c->a);
	if (rto_run(c->a->rt->io, restart_run, j)) {
		rta_unsuspend(c->a);
		th_free(j);
		return rth_oom(c);
	}
	return RTH_PENDING;
}

static rth_ret fn_child_state(rth_call *c)
{
	rth_ret r;
	rta_actor *ch = child_arg(c, &r);
	uint8_t *p;
	size_t n;
	bool has;
	thc_val b = { 0 }, opt = { 0 };
	if (!ch)
		return r;
	if (rta_state_copy(ch, &p, &n, &has))
		return rth_oom(c);
	if (has && thc_val_bytes(p, n, &b)) {
		th_free(p);
		return rth_oom(c);
	}
	th_free(p);
	if (thc_val_case(THC_OPTION, has ? 1 : 0, has ? &b : NULL, &opt)) {
		thc_val_release(&b);
		return rth_oom(c);
	}
	return rth_ok_val(c, &opt);
}

#define EVENTS_MAX_BYTES (4u << 20) /* the answer is recorded too */

static int event_val(const thx_event *ev, thc_val *out)
{
	thc_val *it, par = { 0 };
	if (thc_val_agg(THC_RECORD, 6, out))
		return TH_ENOMEM;
	it = out->of.agg.items;
	if (thc_val_bytes(ev->hash, THX_HASH_LEN, &it[0]))
		return TH_ENOMEM;
	if (ev->has_parent) {
		if (thc_val_bytes(ev->parent, THX_HASH_LEN, &par) ||
		    thc_val_case(THC_OPTION, 1, &par, &it[1])) {
			thc_val_release(&par);
			return TH_ENOMEM;
		}
	} else if (thc_val_case(THC_OPTION, 0, NULL, &it[1])) {
		return TH_ENOMEM;
	}
	if (thc_val_string(ev->type, strlen(ev->type), &it[2]) ||
	    thc_val_bytes(ev->data ? ev->data : (const uint8_t *)"",
			  ev->data ? ev->len : 0, &it[3]))
		return TH_ENOMEM;
	it[4] = thc_val_uint(THC_U64, ev->timestamp_ns / 1000000u);
	if (ev->description) {
		thc_val d = { 0 };
		if (thc_val_string(ev->description, strlen(ev->description), &d) ||
		    thc_val_case(THC_OPTION, 1, &d, &it[5])) {
			thc_val_release(&d);
			return TH_ENOMEM;
		}
	} else if (thc_val_case(THC_OPTION, 0, NULL, &it[5])) {
		return TH_ENOMEM;
	}
	return 0;
}

/* Blocking: reads the child's chain (the newest events that fit). */
static rth_ret fn_child_events(rth_call *c)
{
	rth_ret r;
	rta_actor *ch = child_arg(c, &r);
	uint64_t count, first, bytes = 0;
	thc_val list = { 0 };
	th_err err = { 0 };
	thx_event ev = { 0 };

	if (!ch)
		return r;
	count = thx_chain_count(ch->chain);
	first = count;
	/* Walk back until the size budget is used. */
	while (first > 0) {
		if (thx_get(ch->chain, first - 1, &ev, &err))
			return rth_err(c, "%s", err.msg);
		bytes += ev.len + (ev.description ? strlen(ev.description) : 0) + 128;
		thx_event_release(&ev);
		if (bytes > EVENTS_MAX_BYTES)
			break;
		first--;
	}
	if (thc_val_agg(THC_LIST, (uint32_t)(count - first), &list))
		return rth_oom(c);
	for (uint64_t s = first; s < count; s++) {
		if (thx_get(ch->chain, s, &ev, &err)) {
			thc_val_release(&list);
			return rth_err(c, "%s", err.msg);
		}
		int rc = event_val(&ev, &list.of.agg.items[s - first]);
		thx_event_release(&ev);
		if (rc) {
			thc_val_release(&list);
			return rth_oom(c);
		}
	}
	return rth_ok_val(c, &list);
}

#define SV "theater:simple/supervisor"
#define H(name) "host." SV "." name
const rth_fn rth_supervisor_fns[] = {
	{ SV, "spawn", H("spawn"), THM_H_SUPERVISOR, RTH_DENY_ERR, fn_spawn, NULL },
	{ SV, "resume", H("resume"), THM_H_SUPERVISOR, RTH_DENY_ERR, fn_resume, NULL },
	{ SV, "list-children", H("list-children"), THM_H_SUPERVISOR,
	  RTH_DENY_EMPTY, fn_list_children, NULL },
	{ SV, "stop-child", H("stop-child"), THM_H_SUPERVISOR, RTH_DENY_ERR,
	  fn_stop_child, NULL },
	{ SV, "restart-child", H("restart-child"), THM_H_SUPERVISOR, RTH_DENY_ERR,
	  fn_restart_child, NULL },
	{ SV, "get-child-state", H("get-child-state"), THM_H_SUPERVISOR,
	  RTH_DENY_ERR, fn_child_state, NULL },
	{ SV, "get-child-events", H("get-child-events"), THM_H_SUPERVISOR,
	  RTH_DENY_ERR, NULL, fn_child_events },
	{ 0 }
};
