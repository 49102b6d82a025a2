/*
 * server_rt.c - thsrv_ops over the runtime's embedding API (thr_): what
 * `theater server` plugs into the network server so that the actor
 * commands reach real actors. Every op runs on a server worker thread
 * (never a runtime worker), so the blocking thr_ calls are allowed; only
 * send also runs on the server's loop thread (it never waits).
 *
 * Channels: the runtime's channel id is the op's channel handle, and the
 * server's thsrv_channel is the runtime callback's argument, so neither
 * side keeps a per-channel record of its own. thr_channel_close
 * guarantees the callback has finished and will not run again, which is
 * what the server needs before it drops its channel after channel_close;
 * and the callback's closing call (thsrv_channel_closed) is its last.
 */
#include <time.h>

#include "base/base.h"
#include "cli/server_rt.h"
#include "theater/supervise.h"

static void copy_info(thr_runtime *rt, const thr_actor_info *i, thsrv_actor *o)
{
	thr_sup_info si;
	memset(o, 0, sizeof *o);
	snprintf(o->id, sizeof o->id, "%s", i->id);
	snprintf(o->parent, sizeof o->parent, "%s", i->parent);
	snprintf(o->name, sizeof o->name, "%s", i->name);
	snprintf(o->component, sizeof o->component, "%s", i->component);
	o->status = (thsrv_status)i->status;
	o->messages = i->messages;
	o->queued = i->queued;
	o->children = i->children;
	snprintf(o->reason, sizeof o->reason, "%s", i->reason);
	if (thr_sup_info_get(rt, i->id, &si, NULL) == 0) {
		o->restarts = si.restarts;
		snprintf(o->circuit, sizeof o->circuit, "%s", thr_circuit_name(si.circuit));
	}
}

/* A manifest given as a Store reference: a 64-hex hash or a label of the
 * default store. */
static int manifest_from_store(thr_runtime *rt, const char *ref, char **text,
			       th_err *err)
{
	ths_store *st = thr_runtime_store(rt);
	ths_hash h;
	int rc;
	if (strlen(ref) == THS_HEX_LEN && ths_hash_parse(ref, &h, NULL) == 0)
		rc = 0;
	else
		rc = ths_label_get(st, THS_DEFAULT_STORE, ref, &h, err);
	if (rc)
		return rc;
	uint8_t *data;
	size_t len;
	if ((rc = ths_get(st, &h, 1u << 20, &data, &len, err)))
		return rc;
	*text = th_strndup((const char *)data, len);
	ths_buf_free(data);
	if (!*text)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	if (strlen(*text) != len) {
		th_free(*text);
		*text = NULL;
		return th_err_set(err, TH_EINVAL, "manifest %s contains a NUL byte", ref);
	}
	return 0;
}

static int rt_start(void *ctx, const thsrv_start *a, char id[THSRV_ID_MAX + 1],
		    th_err *err)
{
	thr_runtime *rt = ctx;
	char *text = NULL;
	int rc;
	if (a->manifest_ref && (rc = manifest_from_store(rt, a->manifest_ref, &text, err)))
		return rc;
	thr_spawn_opts o = { .manifest_text = text ? text : a->manifest_text,
			     .manifest_name = text ? a->manifest_ref : a->path,
			     .base_dir = a->base_dir,
			     .init_state = a->state,
			     .init_state_len = a->state_len,
			     .has_init_state = a->has_state,
			     .parent = a->parent };
	char rid[THR_ID_LEN + 1] = "";
	rc = thr_spawn(rt, &o, rid, err);
	snprintf(id, THSRV_ID_MAX + 1, "%s", rid);
	th_free(text);
	return rc;
}

static int rt_stop(void *ctx, const char *id, th_err *err)
{
	return thr_stop(ctx, id, err);
}

static int rt_terminate(void *ctx, const char *id, th_err *err)
{
	return thr_terminate(ctx, id, err);
}

static int rt_restart(void *ctx, const char *id, th_err *err)
{
	return thr_restart(ctx, id, err);
}

static int rt_list(void *ctx, thsrv_actor_fn fn, void *arg, th_err *err)
{
	char **ids;
	size_t n;
	int rc = thr_list(ctx, &ids, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		thr_actor_info info;
		if (thr_actor_info_get(ctx, ids[i], &info, NULL) != 0)
			continue; /* gone meanwhile */
		thsrv_actor a;
		copy_info(ctx, &info, &a);
		rc = fn(arg, &a);
	}
	thr_free(ids);
	return rc;
}

static int rt_status(void *ctx, const char *id, thsrv_actor *out, th_err *err)
{
	thr_actor_info info;
	int rc = thr_actor_info_get(ctx, id, &info, err);
	if (rc == 0)
		copy_info(ctx, &info, out);
	return rc;
}

static int rt_send(void *ctx, const char *id, const void *msg, size_t len, th_err *err)
{
	return thr_send(ctx, id, msg, len, 0, err);
}

static int rt_send_wait(void *ctx, const char *id, const void *msg, size_t len,
			th_err *err)
{
	return thr_send(ctx, id, msg, len, THR_SEND_WAIT, err);
}

static int rt_request(void *ctx, const char *id, const void *msg, size_t len,
		      uint32_t timeout_ms, thsrv_bytes *reply, th_err *err)
{
	uint8_t *r = NULL;
	size_t rl = 0;
	int rc = thr_request(ctx, id, msg, len, timeout_ms, &r, &rl, err);
	if (rc == 0 && thsrv_bytes_set(reply, r, rl))
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
	thr_free(r);
	return rc;
}

/* thr_request fails at once on a full mailbox; the embedding API has no
 * waiting request, so this retries with a growing pause (1 ms doubling
 * to 50 ms) until the request is taken or its timeout has passed. */
static int rt_request_wait(void *ctx, const char *id, const void *msg, size_t len,
			   uint32_t timeout_ms, thsrv_bytes *reply, th_err *err)
{
	uint64_t limit = (uint64_t)(timeout_ms ? timeout_ms : 30000) * 1000000u;
	uint64_t start = th_now_ns(), pause_ms = 1;
	for (;;) {
		int rc = rt_request(ctx, id, msg, len, timeout_ms, reply, err);
		if (rc != TH_EBUSY)
			return rc;
		if (th_now_ns() - start >= limit)
			return th_err_set(err, TH_ETIMEOUT,
					  "actor %s: mailbox still full after %u ms", id,
					  (unsigned)(limit / 1000000u));
		struct timespec ts = { 0, (long)(pause_ms * 1000000u) };
		nanosleep(&ts, NULL);
		pause_ms = pause_ms * 2 > 50 ? 50 : pause_ms * 2;
	}
}

static int rt_get_state(void *ctx, const char *id, thsrv_bytes *state, bool *has,
			th_err *err)
{
	uint8_t *s = NULL;
	size_t n = 0;
	int rc = thr_get_state(ctx, id, &s, &n, has, err);
	if (rc == 0 && *has && thsrv_bytes_set(state, s, n))
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
	thr_free(s);
	return rc;
}

static int rt_get_manifest(void *ctx, const char *id, thsrv_bytes *manifest,
			   th_err *err)
{
	char *text = NULL;
	size_t n = 0;
	int rc = thr_get_manifest(ctx, id, &text, &n, err);
	if (rc == 0 && thsrv_bytes_set(manifest, text, n))
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
	thr_free(text);
	return rc;
}

/* What the actor sends on a channel, on a runtime thread. */
static void on_channel(void *arg, uint64_t channel, const void *msg, size_t len,
		       const char *closed)
{
	TH_UNUSED(channel);
	if (closed)
		thsrv_channel_closed(arg, closed);
	else
		(void)thsrv_channel_deliver(arg, msg, len); /* fails only once closed */
}

static int rt_channel_open(void *ctx, const char *id, const void *msg, size_t len,
			   thsrv_channel *ch, void **chan, thsrv_bytes *reply, th_err *err)
{
	uint64_t n;
	uint8_t *r = NULL;
	size_t rl = 0;
	int rc = thr_channel_open(ctx, id, msg, len, 0, on_channel, ch, &n, &r, &rl, err);
	if (rc)
		return rc;
	*chan = (void *)(uintptr_t)n;
	if (r && thsrv_bytes_set(reply, r, rl)) {
		thr_free(r);
		thr_channel_close(ctx, n, NULL);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	thr_free(r);
	return 0;
}

static int rt_channel_send(void *ctx, void *chan, const void *msg, size_t len,
			   th_err *err)
{
	/* A worker thread: waiting for room keeps the client's messages in
	 * order without failing them. */
	return thr_channel_send(ctx, (uint64_t)(uintptr_t)chan, msg, len, THR_SEND_WAIT,
				err);
}

static void rt_channel_close(void *ctx, void *chan)
{
	/* TH_ENOTFOUND: the actor's side closed first; nothing left to do. */
	(void)thr_channel_close(ctx, (uint64_t)(uintptr_t)chan, NULL);
}

static int rt_metrics(void *ctx, thsrv_metric_fn fn, void *arg, th_err *err)
{
	TH_UNUSED(err);
	thr_stats s;
	thr_runtime_stats(ctx, &s);
	int rc;
	if ((rc = fn(arg, "spawned", s.spawned)) || (rc = fn(arg, "stopped", s.stopped)) ||
	    (rc = fn(arg, "failed", s.failed)) || (rc = fn(arg, "messages", s.messages)) ||
	    (rc = fn(arg, "host_calls", s.host_calls)) || (rc = fn(arg, "denied", s.denied)) ||
	    (rc = fn(arg, "live", s.live)))
		return rc;
	return 0;
}

const thsrv_ops cli_server_rt_ops = {
	.start = rt_start,
	.stop = rt_stop,
	.terminate = rt_terminate,
	.restart = rt_restart,
	.list = rt_list,
	.status = rt_status,
	.send = rt_send,
	.request = rt_request,
	.send_wait = rt_send_wait,
	.request_wait = rt_request_wait,
	.get_state = rt_get_state,
	.get_manifest = rt_get_manifest,
	.channel_open = rt_channel_open,
	.channel_send = rt_channel_send,
	.channel_close = rt_channel_close,
	.metrics = rt_metrics,
	/* thr_send without THR_SEND_WAIT fails at once when the mailbox is
	 * full: safe on the server's loop thread. */
	.loop_safe = THSRV_LOOP_SEND,
};
