/*
 * wat.h - helpers for the engine's white-box tests: turn WebAssembly text
 * into a binary with wabt's wat2wasm (installed by scripts/setup.sh),
 * instantiate it without imports, and call exports.
 */
#ifndef TH_TESTS_WAT_H
#define TH_TESTS_WAT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "theater/wasm.h"

/* Binary of the module text, malloc'd, or NULL (wat2wasm failed). */
static inline uint8_t *wat_bin(const char *wat, size_t *len)
{
	char in[] = "/tmp/thw_test_XXXXXX";
	int fd = mkstemp(in);
	if (fd < 0)
		return NULL;
	size_t n = strlen(wat);
	if (write(fd, wat, n) != (ssize_t)n) {
		close(fd);
		return NULL;
	}
	close(fd);
	char out[64], cmd[256];
	snprintf(out, sizeof out, "%s.wasm", in);
	snprintf(cmd, sizeof cmd,
		 "wat2wasm --enable-all --no-check --debug-names %s -o %s 2>/dev/null", in, out);
	int rc = system(cmd);
	unlink(in);
	if (rc != 0)
		return NULL;
	FILE *f = fopen(out, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
	if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
		free(b);
		b = NULL;
	}
	fclose(f);
	unlink(out);
	*len = (size_t)sz;
	return b;
}

/* Decode text; on failure err holds the engine's message. */
static inline int wat_module(const char *wat, thw_module **m, th_err *err)
{
	size_t len;
	uint8_t *b = wat_bin(wat, &len);
	if (!b) {
		snprintf(err->msg, sizeof err->msg, "wat2wasm failed");
		*m = NULL;
		return -1;
	}
	int rc = thw_module_new(b, len, m, err);
	free(b);
	return rc;
}

typedef struct wat_env {
	thw_realm *realm;
	thw_module *mod;
	thw_instance *inst;
	thw_exec *exec;
} wat_env;

/* Module without imports, instantiated in a fresh realm. */
static inline int wat_load(wat_env *w, const char *wat, th_err *err)
{
	memset(w, 0, sizeof *w);
	int rc = wat_module(wat, &w->mod, err);
	if (rc)
		return rc;
	if ((rc = thw_realm_new(NULL, &w->realm, err)))
		return rc;
	if ((rc = thw_exec_new(w->realm, &w->exec, err)))
		return rc;
	return thw_instantiate(w->realm, w->mod, NULL, 0, w->exec, &w->inst, err);
}

static inline void wat_free(wat_env *w)
{
	thw_exec_free(w->exec);
	thw_realm_free(w->realm);
	thw_module_release(w->mod);
}

static inline thw_func *wat_func(wat_env *w, const char *name)
{
	thw_extern x;
	if (!thw_instance_export(w->inst, name, strlen(name), &x) ||
	    x.kind != THW_EXTERN_FUNC)
		return NULL;
	return x.of.func;
}

static inline thw_val v_i32(uint32_t v) { thw_val x = { .type = THW_I32 }; x.of.i32 = v; return x; }
static inline thw_val v_i64(uint64_t v) { thw_val x = { .type = THW_I64 }; x.of.i64 = v; return x; }
static inline thw_val v_f32(float v) { thw_val x = { .type = THW_F32 }; x.of.f32 = v; return x; }
static inline thw_val v_f64(double v) { thw_val x = { .type = THW_F64 }; x.of.f64 = v; return x; }

/* Call export `name`; returns the state, results in res. */
static inline thw_state wat_call(wat_env *w, const char *name, const thw_val *args,
			  uint32_t nargs, thw_val *res, uint32_t nres)
{
	thw_func *f = wat_func(w, name);
	if (!f)
		return THW_STATE_IDLE;
	return thw_call(w->exec, f, args, nargs, res, nres);
}

#endif
