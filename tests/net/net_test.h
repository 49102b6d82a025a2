/*
 * net_test.h - shared fixture for the network tests: an in-process server
 * on loopback ports chosen by the kernel, a fake runtime behind the ops
 * vtable (a test double of what the runtime implements), a request
 * builder and raw-socket helpers.
 */
#ifndef TH_NET_TEST_H
#define TH_NET_TEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>

#include "base/base.h"
#include "base/cbor.h"
#include "net/net.h"
#include "test.h"
#include "theater/client.h"
#include "theater/protocol.h"
#include "theater/server.h"

/* ---- the fake runtime ---- */

struct fake_actor {
	char id[THSRV_ID_MAX + 1];
	char parent[THSRV_ID_MAX + 1];
	char name[64];
	char manifest[256];
	thsrv_status status;
	uint64_t msgs;
	uint8_t state[256];
	size_t slen;
	bool has_state;
};

static struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	thx_store *chains;
	bool release;
	int slow_waiting;
	int n;
	struct fake_actor a[32];
} fk = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static struct fake_actor *fk_find(const char *id)
{
	for (int i = 0; i < fk.n; i++)
		if (!strcmp(fk.a[i].id, id))
			return &fk.a[i];
	return NULL;
}

static int fk_event(const char *id, const char *type, const void *data, size_t len)
{
	thx_chain *c;
	if (thx_chain_open(fk.chains, id, NULL, true, &c, NULL))
		return TH_EIO;
	thx_event_in ev = { .actor = id, .type = type, .data = data, .len = len };
	return thx_append(c, &ev, NULL, NULL, NULL);
}

static int fk_start(void *ctx, const thsrv_start *s, char id[THSRV_ID_MAX + 1], th_err *err)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	if (fk.n == 32) {
		pthread_mutex_unlock(&fk.mu);
		return th_err_set(err, TH_ELIMIT, "too many actors");
	}
	struct fake_actor *a = &fk.a[fk.n];
	memset(a, 0, sizeof *a);
	snprintf(a->id, sizeof a->id, "00000000-0000-4000-8000-%012d", fk.n + 1);
	snprintf(a->name, sizeof a->name, "actor%d", fk.n + 1);
	snprintf(a->manifest, sizeof a->manifest, "%s",
		 s->manifest_text ? s->manifest_text : s->manifest_ref);
	if (s->parent)
		snprintf(a->parent, sizeof a->parent, "%s", s->parent);
	if (s->has_state && s->state_len <= sizeof a->state) {
		memcpy(a->state, s->state, s->state_len);
		a->slen = s->state_len;
		a->has_state = true;
	}
	a->status = THSRV_RUNNING;
	fk.n++;
	memcpy(id, a->id, sizeof a->id);
	pthread_mutex_unlock(&fk.mu);
	fk_event(id, "actor.created", NULL, 0);
	return 0;
}

static int fk_stop(void *ctx, const char *id, th_err *err)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	struct fake_actor *a = fk_find(id);
	if (a)
		a->status = THSRV_STOPPED;
	pthread_mutex_unlock(&fk.mu);
	if (!a)
		return th_err_set(err, TH_ENOTFOUND, "no actor %s", id);
	return fk_event(id, "actor.stopped", NULL, 0);
}

static int fk_list(void *ctx, thsrv_actor_fn fn, void *arg, th_err *err)
{
	(void)ctx;
	(void)err;
	pthread_mutex_lock(&fk.mu);
	int rc = 0;
	for (int i = 0; i < fk.n && !rc; i++) {
		thsrv_actor x;
		memset(&x, 0, sizeof x);
		snprintf(x.id, sizeof x.id, "%s", fk.a[i].id);
		snprintf(x.parent, sizeof x.parent, "%s", fk.a[i].parent);
		snprintf(x.name, sizeof x.name, "%s", fk.a[i].name);
		x.status = fk.a[i].status;
		x.messages = fk.a[i].msgs;
		rc = fn(arg, &x);
	}
	pthread_mutex_unlock(&fk.mu);
	return rc;
}

static int fk_status(void *ctx, const char *id, thsrv_actor *out, th_err *err)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	struct fake_actor *a = fk_find(id);
	if (a) {
		snprintf(out->id, sizeof out->id, "%s", a->id);
		snprintf(out->name, sizeof out->name, "%s", a->name);
		snprintf(out->parent, sizeof out->parent, "%s", a->parent);
		out->status = a->status;
		out->messages = a->msgs;
	}
	pthread_mutex_unlock(&fk.mu);
	return a ? 0 : th_err_set(err, TH_ENOTFOUND, "no actor %s", id);
}

static int fk_send(void *ctx, const char *id, const void *msg, size_t len, th_err *err)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	struct fake_actor *a = fk_find(id);
	if (a) {
		a->msgs++;
		if (len <= sizeof a->state) {
			memcpy(a->state, msg, len);
			a->slen = len;
			a->has_state = true;
		}
	}
	pthread_mutex_unlock(&fk.mu);
	if (!a)
		return th_err_set(err, TH_ENOTFOUND, "no actor %s", id);
	return fk_event(id, "message.received", msg, len);
}

/* "slow" blocks until fk_release(); anything else is echoed. */
static int fk_request(void *ctx, const char *id, const void *msg, size_t len,
		      uint32_t timeout_ms, thsrv_bytes *reply, th_err *err)
{
	(void)ctx;
	(void)timeout_ms;
	pthread_mutex_lock(&fk.mu);
	struct fake_actor *a = fk_find(id);
	if (!a) {
		pthread_mutex_unlock(&fk.mu);
		return th_err_set(err, TH_ENOTFOUND, "no actor %s", id);
	}
	if (len == 4 && !memcmp(msg, "slow", 4)) {
		fk.slow_waiting++;
		pthread_cond_broadcast(&fk.cv);
		while (!fk.release)
			pthread_cond_wait(&fk.cv, &fk.mu);
		fk.slow_waiting--;
		pthread_mutex_unlock(&fk.mu);
		return thsrv_bytes_set(reply, "done-slow", 9);
	}
	pthread_mutex_unlock(&fk.mu);
	uint8_t buf[300];
	size_t n = len > 250 ? 250 : len;
	memcpy(buf, "echo:", 5);
	memcpy(buf + 5, msg, n);
	return thsrv_bytes_set(reply, buf, n + 5);
}

static int fk_get_state(void *ctx, const char *id, thsrv_bytes *st, bool *has, th_err *err)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	struct fake_actor *a = fk_find(id);
	int rc = 0;
	if (!a)
		rc = th_err_set(err, TH_ENOTFOUND, "no actor %s", id);
	else if ((*has = a->has_state))
		rc = thsrv_bytes_set(st, a->state, a->slen);
	pthread_mutex_unlock(&fk.mu);
	return rc;
}

static int fk_get_manifest(void *ctx, const char *id, thsrv_bytes *m, th_err *err)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	struct fake_actor *a = fk_find(id);
	int rc = a ? thsrv_bytes_set(m, a->manifest, strlen(a->manifest))
		   : th_err_set(err, TH_ENOTFOUND, "no actor %s", id);
	pthread_mutex_unlock(&fk.mu);
	return rc;
}

static int fk_metrics(void *ctx, thsrv_metric_fn fn, void *arg, th_err *err)
{
	(void)ctx;
	(void)err;
	pthread_mutex_lock(&fk.mu);
	uint64_t n = (uint64_t)fk.n;
	pthread_mutex_unlock(&fk.mu);
	return fn(arg, "actors", n);
}

/* Channels: the fake echoes each message; "bye" makes it close its side. */
static struct {
	thsrv_channel *ch[8];
	int n;
	int closed; /* channel_close calls */
} fkc;

static int fk_chan_open(void *ctx, const char *id, const void *msg, size_t len,
			thsrv_channel *ch, void **state, thsrv_bytes *reply, th_err *err)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	bool known = fk_find(id) != NULL;
	int slot = fkc.n < 8 ? fkc.n++ : -1;
	if (known && slot >= 0)
		fkc.ch[slot] = ch;
	pthread_mutex_unlock(&fk.mu);
	if (!known)
		return th_err_set(err, TH_ENOTFOUND, "no actor %s", id);
	if (slot < 0)
		return th_err_set(err, TH_ELIMIT, "too many channels");
	*state = (void *)(intptr_t)(slot + 1);
	uint8_t buf[300];
	size_t n = len > 250 ? 250 : len;
	memcpy(buf, "opened:", 7);
	memcpy(buf + 7, msg, n);
	return thsrv_bytes_set(reply, buf, n + 7);
}

static int fk_chan_send(void *ctx, void *state, const void *msg, size_t len, th_err *err)
{
	(void)ctx;
	(void)err;
	thsrv_channel *ch = fkc.ch[(intptr_t)state - 1];
	if (len == 3 && !memcmp(msg, "bye", 3)) {
		thsrv_channel_closed(ch, "bye now");
		return 0;
	}
	uint8_t buf[300];
	size_t n = len > 250 ? 250 : len;
	memcpy(buf, "echo:", 5);
	memcpy(buf + 5, msg, n);
	return thsrv_channel_deliver(ch, buf, n + 5);
}

static void fk_chan_close(void *ctx, void *state)
{
	(void)ctx;
	(void)state;
	pthread_mutex_lock(&fk.mu);
	fkc.closed++;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
}

static const thsrv_ops fake_ops = {
	.channel_open = fk_chan_open,
	.channel_send = fk_chan_send,
	.channel_close = fk_chan_close,
	.start = fk_start,
	.stop = fk_stop,
	.terminate = fk_stop,
	.list = fk_list,
	.status = fk_status,
	.send = fk_send,
	.request = fk_request,
	.get_state = fk_get_state,
	.get_manifest = fk_get_manifest,
	.metrics = fk_metrics,
};

static void fk_wait_slow(int n)
{
	pthread_mutex_lock(&fk.mu);
	while (fk.slow_waiting < n)
		pthread_cond_wait(&fk.cv, &fk.mu);
	pthread_mutex_unlock(&fk.mu);
}

static void fk_release(void)
{
	pthread_mutex_lock(&fk.mu);
	fk.release = true;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
}

/* ---- the fixture ---- */

struct fx {
	char dir[128];
	ths_store *st;
	thx_store *ch;
	thsrv *srv;
	pthread_t t;
	int run_rc;
	char addr[64], wsaddr[64];
};

static void *fx_run(void *arg)
{
	struct fx *f = arg;
	th_err err = { 0 };
	f->run_rc = thsrv_run(f->srv, &err);
	return NULL;
}

/* cfg: NULL = defaults; store/chains/listen fields are filled here. */
static void fx_start(struct fx *f, thsrv_config *cfg)
{
	thsrv_config def = { 0 };
	if (!cfg)
		cfg = &def;
	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/th-net-test-%d", (int)getpid());
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", f->dir, f->dir);
	REQUIRE(system(cmd) == 0);
	char p[256];
	th_err err = { 0 };
	snprintf(p, sizeof p, "%s/store", f->dir);
	ths_options so = { .sync = THS_SYNC_NONE };
	REQUIRE(ths_open(p, &so, &f->st, &err) == 0);
	snprintf(p, sizeof p, "%s/chains", f->dir);
	thx_store_opts xo = { 0 };
	REQUIRE(thx_store_open(p, &xo, &f->ch, &err) == 0);
	fk.chains = f->ch;
	cfg->store = f->st;
	cfg->chains = f->ch;
	if (!cfg->listen)
		cfg->listen = "127.0.0.1:0";
	if (!cfg->ws_listen)
		cfg->ws_listen = "127.0.0.1:0";
	if (thsrv_new(cfg, &f->srv, &err) != 0) {
		fprintf(stderr, "  thsrv_new: %s\n", err.msg);
		REQUIRE(0);
	}
	snprintf(f->addr, sizeof f->addr, "%s127.0.0.1:%d",
		 cfg->tls_cert ? "tls://" : "tcp://", thsrv_port(f->srv, false));
	snprintf(f->wsaddr, sizeof f->wsaddr, "%s127.0.0.1:%d/",
		 cfg->tls_cert ? "wss://" : "ws://", thsrv_port(f->srv, true));
	REQUIRE(pthread_create(&f->t, NULL, fx_run, f) == 0);
}

static void fx_stop(struct fx *f)
{
	thsrv_stop(f->srv);
	pthread_join(f->t, NULL);
	thsrv_free(f->srv);
	thx_store_close(f->ch);
	ths_close(f->st);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  cannot remove %s\n", f->dir);
}

static thcl *fx_client(const char *addr)
{
	thcl_opts o = { .address = addr };
	thcl *c = NULL;
	th_err err = { 0 };
	if (thcl_connect(&o, &c, &err)) {
		fprintf(stderr, "  connect %s: %s\n", addr, err.msg);
		REQUIRE(0);
	}
	return c;
}

/* ---- requests ---- */

/* Build {"op": op, k1: v1, ...}: each argument is a key and a type letter
 * ('t' text, 'u' uint64, 'b' bytes + size_t length, 'B' bool (int)). */
static void req_build(th_cbor_enc *e, const char *op, const char *fmt, va_list ap)
{
	th_cbor_enc_init(e, NULL, 0);
	size_t n = strlen(fmt);
	th_cbor_put_map(e, 1 + n);
	th_cbor_put_cstr(e, "op");
	th_cbor_put_cstr(e, op);
	for (size_t i = 0; i < n; i++) {
		th_cbor_put_cstr(e, va_arg(ap, const char *));
		switch (fmt[i]) {
		case 't':
			th_cbor_put_cstr(e, va_arg(ap, const char *));
			break;
		case 'u':
			th_cbor_put_uint(e, va_arg(ap, uint64_t));
			break;
		case 'b': {
			const void *p = va_arg(ap, const void *);
			th_cbor_put_bytes(e, p, va_arg(ap, size_t));
			break;
		}
		case 'B':
			th_cbor_put_bool(e, va_arg(ap, int) != 0);
			break;
		}
	}
}

/* Length of the last response kept by call(). */
static size_t last_len;

static int call(thcl *c, thn_args *out, uint8_t **keep, th_err *err, const char *op,
		const char *fmt, ...)
{
	th_cbor_enc e;
	va_list ap;
	va_start(ap, fmt);
	req_build(&e, op, fmt, ap);
	va_end(ap);
	uint8_t *r = NULL;
	size_t rl = 0;
	int rc = thcl_call(c, e.buf, e.len, 0, &r, &rl, err);
	last_len = rc == 0 ? rl : 0;
	th_cbor_enc_release(&e);
	if (rc == 0 && out)
		REQUIRE(thn_args_parse(r, rl, out, NULL) == 0);
	if (keep)
		*keep = r;
	else
		thcl_free(r);
	return rc;
}

static const char *arg_s(const thn_args *a, const char *key)
{
	static char buf[8][512];
	static int k;
	char *b = buf[k++ & 7];
	if (thn_arg_text(a, key, true, b, 512, NULL) != 0)
		return "(missing)";
	return b;
}

static uint64_t arg_u(const thn_args *a, const char *key)
{
	uint64_t v = UINT64_MAX;
	(void)thn_arg_uint(a, key, true, &v, NULL);
	return v;
}

static uint64_t metric(thcl *c, const char *key)
{
	thn_args a, s;
	uint8_t *keep;
	if (call(c, &a, &keep, NULL, "metrics", ""))
		return UINT64_MAX;
	const uint8_t *p;
	size_t n;
	th_cbor_dec d;
	uint64_t v = UINT64_MAX;
	for (size_t i = 0; i < a.n; i++)
		if (a.kv[i].klen == 6 && !memcmp(a.kv[i].key, "server", 6)) {
			p = a.kv[i].val;
			n = a.kv[i].vlen;
			th_cbor_dec_init(&d, p, n);
			if (thn_args_parse(p, n, &s, NULL) == 0)
				v = arg_u(&s, key);
		}
	thcl_free(keep);
	return v;
}

/* ---- raw sockets ---- */

static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(fd >= 0);
	REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	return fd;
}

static int port_of(const char *addr)
{
	const char *c = strrchr(addr, ':');
	return atoi(c + 1);
}

static void raw_send(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* the server may have closed already */
		b += w;
		n -= (size_t)w;
	}
}

static void raw_frame(int fd, unsigned type, unsigned flags, uint32_t stream,
		      const void *p, size_t n)
{
	uint8_t h[THP_HEADER_LEN];
	thp_header_put(h, (uint8_t)type, (uint8_t)flags, stream, (uint32_t)n);
	raw_send(fd, h, sizeof h);
	if (n)
		raw_send(fd, p, n);
}

static void raw_hello(int fd)
{
	thp_hello h;
	memset(&h, 0, sizeof h);
	h.versions[0] = 1;
	h.nversions = 1;
	uint8_t *p;
	size_t n;
	REQUIRE(thp_hello_encode(&h, &p, &n) == 0);
	raw_frame(fd, THP_HELLO, 0, 0, p, n);
	thp_free(p);
}

/* Read until the server closes (or timeout_ms passes); returns bytes. */
static size_t raw_read_all(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	size_t len = 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == cap)
			break;
	}
	return len;
}

static bool find_frame(const uint8_t *buf, size_t n, unsigned type, uint32_t stream,
		       char *code, size_t cap);

/* Read until a frame of type on stream has arrived (or 20 s passed). */
static size_t raw_read_until(int fd, uint8_t *buf, size_t cap, unsigned type,
			     uint32_t stream)
{
	size_t len = 0;
	for (int i = 0; i < 200 && !find_frame(buf, len, type, stream, NULL, 0); i++) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	return len;
}

/* Find the first frame of type in buf; copy its payload's "code". */
static bool find_frame(const uint8_t *buf, size_t n, unsigned type, uint32_t stream,
		       char *code, size_t cap)
{
	size_t off = 0;
	while (off < n) {
		thp_frame f;
		size_t used;
		if (thp_parse(buf + off, n - off, UINT32_MAX - 1, &f, &used, NULL) != 0)
			return false;
		if (f.type == type && f.stream == stream) {
			thp_error e;
			if (code && thp_error_decode(f.payload, f.len, &e, NULL) == 0)
				snprintf(code, cap, "%s", e.code);
			return true;
		}
		off += used;
	}
	return false;
}

#endif
