/*
 * wasi_glue.c - WASI preview1 for actors (prefix rtw_). A core-module
 * actor built with wasi-libc may import wasi_snapshot_preview1 (printf,
 * clock_gettime ...). It gets the engine's WASI subset (theater/wasi.h)
 * in a sandbox that adds no capability: argv is the actor's name, the
 * environment is empty (variables go through the environment handler and
 * its permissions), there are no preopened directories (files go through
 * the filesystem handler), and stdio is /dev/null. Every WASI call is
 * recorded like any host call, as host.wasi_snapshot_preview1.<name> with
 * [args, [errno, in, out]], where in and out are the guest-memory spans the
 * call read and wrote ([[offset, bytes], ...]): what a replay writes back.
 */
#include "base/base.h"
#include "runtime/rt.h"
#include "theater/wasi.h"

static void put_spans(th_cbor_enc *e, const thw_wasi_span *s, uint32_t n)
{
	th_cbor_put_array(e, n);
	for (uint32_t i = 0; i < n; i++) {
		th_cbor_put_array(e, 2);
		th_cbor_put_uint(e, s[i].guest_off);
		th_cbor_put_bytes(e, s[i].data, s[i].len);
	}
}

static void hook(void *ctx, const thw_wasi_call *c)
{
	rta_actor *a = ctx;
	char type[96];
	th_cbor_enc e;

	rta_call_flush(a); /* the export call precedes its host calls */
	rts_count(a->rt->sched, RTS_C_HOST_CALLS, 1);
	snprintf(type, sizeof type, "host.%s.%s", THW_WASI_MODULE, c->name);
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 2);
	th_cbor_put_array(&e, c->nargs);
	for (uint32_t i = 0; i < c->nargs; i++)
		th_cbor_put_uint(&e, c->args[i].type == THW_I32 ? c->args[i].of.i32
								 : c->args[i].of.i64);
	th_cbor_put_array(&e, 3);
	th_cbor_put_uint(&e, c->result);
	put_spans(&e, c->in, c->nin);
	put_spans(&e, c->out, c->nout);
	rta_record_dyn(a, type, &e);
}

int rtw_new(rta_actor *a, thw_wasi **out, th_err *err)
{
	const char *argv[1] = { a->spec->m->name };
	thw_wasi_config cfg = { 0 };

	if (a->rt->devnull < 0)
		return th_err_set(err, TH_EIO, "wasi: /dev/null is not open");
	cfg.argc = 1;
	cfg.argv = argv;
	cfg.custom_stdio = true;
	cfg.stdin_fd = cfg.stdout_fd = cfg.stderr_fd = a->rt->devnull;
	cfg.hook = hook;
	cfg.hook_ctx = a;
	return thw_wasi_new(&cfg, out, err);
}
