/*
 * rtest.h - helpers for the runtime's white-box tests: a fresh home
 * directory per test, manifests and actors written to it, and the event
 * types of a chain as one comma-separated string, so that a test can
 * assert the exact sequence the runtime recorded.
 */
#ifndef TH_RTEST_H
#define TH_RTEST_H

#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "runtime/rt.h"
#include "test.h"
#include "theater/runtime.h"

static char rtest_dir[256];

/* A new temporary directory for this test (removed at exit). */
static __attribute__((unused)) const char *rtest_home(void)
{
	snprintf(rtest_dir, sizeof rtest_dir, "/tmp/theater-rt-XXXXXX");
	REQUIRE(mkdtemp(rtest_dir) != NULL);
	return rtest_dir;
}

static __attribute__((unused)) void rtest_cleanup(void)
{
	char cmd[300];
	if (rtest_dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", rtest_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", rtest_dir);
	}
}

static __attribute__((unused)) void rtest_write(const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", rtest_dir, name);
	f = fopen(path, "wb");
	REQUIRE(f != NULL);
	REQUIRE(fwrite(data, 1, len, f) == len);
	fclose(f);
}

static __attribute__((unused)) void rtest_writef(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static __attribute__((unused)) void rtest_writef(const char *name, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	REQUIRE(n > 0 && (size_t)n < sizeof buf);
	rtest_write(name, buf, (size_t)n);
}

/* Assemble tests/runtime/actors/NAME.wat into the home as NAME.wasm. */
static __attribute__((unused)) void rtest_wat(const char *name)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "wat2wasm tests/runtime/actors/%s.wat -o '%s/%s.wasm'", name,
		 rtest_dir, name);
	REQUIRE(system(cmd) == 0);
}

static __attribute__((unused)) thr_runtime *rtest_runtime(int workers)
{
	thr_options o = { 0 };
	thr_runtime *rt = NULL;
	th_err err = { 0 };
	char home[300];
	snprintf(home, sizeof home, "%s/home", rtest_dir);
	o.home = home;
	o.workers = workers;
	o.durability = THX_NONE;
	o.store_no_sync = true;
	if (thr_runtime_new(&o, &rt, &err))
		fprintf(stderr, "thr_runtime_new: %s\n", err.msg);
	REQUIRE(rt != NULL);
	atexit(rtest_cleanup);
	return rt;
}

/* "type1,type2,..." of chain name (the caller frees). */
static __attribute__((unused)) char *rtest_types(thr_runtime *rt, const char *chain)
{
	thx_chain *c;
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	REQUIRE(out != NULL);
	out[0] = 0;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), chain, NULL, false, &c, NULL) == 0);
	uint64_t n = thx_chain_count(c);
	for (uint64_t i = 0; i < n; i++) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		size_t k = strlen(ev.type);
		while (len + k + 2 > cap) {
			cap *= 2;
			out = realloc(out, cap);
			REQUIRE(out != NULL);
		}
		if (len)
			out[len++] = ',';
		memcpy(out + len, ev.type, k + 1);
		len += k;
		thx_event_release(&ev);
	}
	return out;
}

/* The data of the first event of that type in chain (copied; NULL if
 * none). */
static __attribute__((unused)) uint8_t *rtest_event(thr_runtime *rt, const char *chain,
			    const char *type, size_t *len)
{
	thx_chain *c;
	uint8_t *out = NULL;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), chain, NULL, false, &c, NULL) == 0);
	uint64_t n = thx_chain_count(c);
	for (uint64_t i = 0; i < n && !out; i++) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		if (!strcmp(ev.type, type)) {
			out = malloc(ev.len + 1);
			REQUIRE(out != NULL);
			memcpy(out, ev.data, ev.len);
			out[ev.len] = 0;
			*len = ev.len;
		}
		thx_event_release(&ev);
	}
	return out;
}

/* Count events of a type in a chain. */
static __attribute__((unused)) int rtest_count(thr_runtime *rt, const char *chain, const char *type)
{
	char *t = rtest_types(rt, chain), *p = t;
	int n = 0;
	size_t k = strlen(type);
	while ((p = strstr(p, type))) {
		if ((p == t || p[-1] == ',') && (p[k] == ',' || p[k] == 0))
			n++;
		p += k;
	}
	free(t);
	return n;
}

/* True when the bytes contain the C string s. */
static __attribute__((unused)) bool rtest_has(const uint8_t *data, size_t len, const char *s)
{
	size_t k = strlen(s);
	for (size_t i = 0; data && i + k <= len; i++)
		if (!memcmp(data + i, s, k))
			return true;
	return false;
}

/* ---- driving actors (the calls every runtime test makes) ---- */

#define RTEST_WAIT_LIMIT 24000 /* polls of 5 ms: two minutes, only against a hang */

/* Spawn from manifest text with the test's home as base directory. */
static __attribute__((unused)) void rtest_spawn(thr_runtime *rt, const char *text,
						char id[THR_ID_LEN + 1])
{
	thr_spawn_opts so = { .manifest_text = text, .base_dir = rtest_dir };
	th_err err = { 0 };
	if (thr_spawn(rt, &so, id, &err))
		fprintf(stderr, "spawn: %s\n", err.msg);
	REQUIRE(id[0] != 0);
}

/* Send the C string m, waiting for room (flags add to THR_SEND_WAIT). */
static __attribute__((unused)) void rtest_send(thr_runtime *rt, const char *id, const char *m,
					       unsigned flags)
{
	th_err err = { 0 };
	int rc = thr_send(rt, id, m, strlen(m), flags | THR_SEND_WAIT, &err);
	if (rc)
		fprintf(stderr, "send: %s\n", err.msg);
	REQUIRE(rc == 0); /* err may hold a TH_EBUSY it waited through */
}

/* Send "op" + target id + payload (the relay actors' commands). */
static __attribute__((unused)) void rtest_send_cmd(thr_runtime *rt, const char *to, char op,
						   const char *target, const char *payload,
						   unsigned flags)
{
	char buf[4600];
	int n = snprintf(buf, sizeof buf, "%c%s%s", op, target ? target : "",
			 payload ? payload : "");
	REQUIRE(n > 0 && (size_t)n < sizeof buf);
	rtest_send(rt, to, buf, flags);
}

static __attribute__((unused)) void rtest_quiesce(thr_runtime *rt)
{
	th_err err = { 0 };
	if (thr_quiesce(rt, 0, &err))
		fprintf(stderr, "quiesce: %s\n", err.msg);
}

/* The state as a C string (freed by the caller). */
static __attribute__((unused)) char *rtest_state_str(thr_runtime *rt, const char *id)
{
	uint8_t *s;
	size_t n;
	bool has;
	REQUIRE(thr_get_state(rt, id, &s, &n, &has, NULL) == 0);
	char *out = malloc(n + 1);
	REQUIRE(out != NULL);
	if (n)
		memcpy(out, s, n);
	out[n] = 0;
	thr_free(s);
	return out;
}

/* Wait until chain has n events of type. */
static __attribute__((unused)) void rtest_wait_events(thr_runtime *rt, const char *chain,
						      const char *type, int n)
{
	for (int i = 0; i < RTEST_WAIT_LIMIT; i++) {
		if (rtest_count(rt, chain, type) >= n)
			return;
		usleep(5000);
	}
	char *types = rtest_types(rt, chain);
	fprintf(stderr, "  no %d x %s in %s: %s\n", n, type, chain, types);
	free(types);
	REQUIRE(!"timed out waiting for an event");
}

/* Wait until the relay's state is a request id (its handle-request ran:
 * the request reached it, and it answers later). */
static __attribute__((unused)) void rtest_wait_request_seen(thr_runtime *rt, const char *id)
{
	for (int i = 0; i < RTEST_WAIT_LIMIT; i++) {
		char *st = rtest_state_str(rt, id);
		bool seen = st[0] == 'r' && st[1] >= '0' && st[1] <= '9';
		free(st);
		if (seen)
			return;
		usleep(5000);
	}
	REQUIRE(!"the request never reached its target");
}

/* Count and generation from the crasher's state (two u64). */
static __attribute__((unused)) void rtest_crasher_state(thr_runtime *rt, const char *id,
							uint64_t *count, uint64_t *gen)
{
	uint8_t *s;
	size_t n;
	bool has;
	REQUIRE(thr_get_state(rt, id, &s, &n, &has, NULL) == 0);
	REQUIRE(has && n == 16);
	memcpy(count, s, 8);
	memcpy(gen, s + 8, 8);
	thr_free(s);
}

#endif
