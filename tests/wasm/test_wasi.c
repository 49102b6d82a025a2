/*
 * test_wasi.c - the WASI subset (src/wasm/wasi.c) from inside a module:
 * stdio through a pipe, args, the recording hook, bad guest pointers,
 * proc_exit, preopens and path_open's sandbox, ENOSYS answers, link errors,
 * and allocation failure.
 */
#include <fcntl.h>

#include "base/base.h"
#include "test.h"
#include "theater/wasi.h"
#include "wat.h"

static const char *MOD =
	"(module"
	" (import \"wasi_snapshot_preview1\" \"fd_write\" (func $fd_write (param i32 i32 i32 i32) (result i32)))"
	" (import \"wasi_snapshot_preview1\" \"fd_read\" (func $fd_read (param i32 i32 i32 i32) (result i32)))"
	" (import \"wasi_snapshot_preview1\" \"args_sizes_get\" (func $args_sizes_get (param i32 i32) (result i32)))"
	" (import \"wasi_snapshot_preview1\" \"args_get\" (func $args_get (param i32 i32) (result i32)))"
	" (import \"wasi_snapshot_preview1\" \"random_get\" (func $random_get (param i32 i32) (result i32)))"
	" (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $proc_exit (param i32)))"
	" (import \"wasi_snapshot_preview1\" \"path_open\" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"
	" (import \"wasi_snapshot_preview1\" \"fd_prestat_get\" (func $fd_prestat_get (param i32 i32) (result i32)))"
	" (import \"wasi_snapshot_preview1\" \"sock_accept\" (func $sock_accept (param i32 i32 i32) (result i32)))"
	" (memory (export \"memory\") 1)"
	" (data (i32.const 100) \"hello\\n\")"
	" (data (i32.const 200) \"../secret\")"
	" (data (i32.const 220) \"/etc/passwd\")"
	" (data (i32.const 240) \"ok.txt\")"
	" (func (export \"write\") (param $fd i32) (result i32)"
	"  (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 6))"
	"  (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))"
	" (func (export \"write_bad\") (result i32)"
	"  (i32.store (i32.const 0) (i32.const 65530)) (i32.store (i32.const 4) (i32.const 100))"
	"  (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))"
	" (func (export \"read\") (param $fd i32) (result i32)"
	"  (i32.store (i32.const 0) (i32.const 800)) (i32.store (i32.const 4) (i32.const 64))"
	"  (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))"
	" (func (export \"args\") (result i32)"
	"  (drop (call $args_sizes_get (i32.const 300) (i32.const 304)))"
	"  (call $args_get (i32.const 400) (i32.const 500)))"
	" (func (export \"load32\") (param i32) (result i32) (i32.load (local.get 0)))"
	" (func (export \"random_bad\") (result i32) (call $random_get (i32.const 65000) (i32.const 1000)))"
	" (func (export \"exit\") (call $proc_exit (i32.const 7)) (unreachable))"
	" (func (export \"open\") (param $path i32) (param $len i32) (result i32)"
	"  (call $path_open (i32.const 3) (i32.const 0) (local.get $path) (local.get $len)"
	"   (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 600)))"
	" (func (export \"prestat\") (param i32) (result i32) (call $fd_prestat_get (local.get 0) (i32.const 700)))"
	" (func (export \"nosys\") (result i32) (call $sock_accept (i32.const 0) (i32.const 0) (i32.const 0))))";

/* What the recording hook saw. */
struct seen {
	int calls;
	char last[32];
	uint32_t result;
	char in[64];       /* first input span */
	uint32_t nout, out_off, out_len;
};

static void hook(void *ctx, const thw_wasi_call *c)
{
	struct seen *s = ctx;
	s->calls++;
	snprintf(s->last, sizeof s->last, "%s", c->name);
	s->result = c->result;
	s->in[0] = 0;
	if (c->nin) {
		size_t n = c->in[0].len < sizeof s->in - 1 ? c->in[0].len : sizeof s->in - 1;
		memcpy(s->in, c->in[0].data, n);
		s->in[n] = 0;
	}
	s->nout = c->nout;
	if (c->nout) {
		s->out_off = c->out[0].guest_off;
		s->out_len = c->out[0].len;
	}
}

struct fx {
	thw_module *mod;
	thw_realm *realm;
	thw_exec *exec;
	thw_wasi *wasi;
	thw_instance *inst;
	int out[2];          /* the guest's stdout is out[1]; read out[0] */
	char dir[64];
	struct seen seen;
};

static void fx_init(struct fx *f)
{
	th_err err = { 0 };
	memset(f, 0, sizeof *f);
	REQUIRE(pipe(f->out) == 0);
	snprintf(f->dir, sizeof f->dir, "/tmp/thw_wasi_XXXXXX");
	REQUIRE(mkdtemp(f->dir) != NULL);
	char path[128];
	snprintf(path, sizeof path, "%s/ok.txt", f->dir);
	FILE *fp = fopen(path, "w");
	REQUIRE(fp != NULL);
	fputs("file data", fp);
	fclose(fp);
	static const char *argv[] = { "prog", "a b" };
	thw_wasi_preopen pre = { f->dir, "/sandbox" };
	thw_wasi_config cfg = { 0 };
	cfg.argc = 2;
	cfg.argv = argv;
	cfg.custom_stdio = true;
	cfg.stdin_fd = open("/dev/null", O_RDONLY);
	cfg.stdout_fd = f->out[1];
	cfg.stderr_fd = 2;
	cfg.preopens = &pre;
	cfg.npreopens = 1;
	cfg.hook = hook;
	cfg.hook_ctx = &f->seen;
	REQUIRE(wat_module(MOD, &f->mod, &err) == 0);
	REQUIRE(thw_realm_new(NULL, &f->realm, &err) == 0);
	REQUIRE(thw_exec_new(f->realm, &f->exec, &err) == 0);
	REQUIRE(thw_wasi_new(&cfg, &f->wasi, &err) == 0);
	uint32_t n = thw_module_import_count(f->mod);
	thw_extern imps[16];
	REQUIRE(n <= 16);
	int rc = thw_wasi_link(f->wasi, f->realm, f->mod, imps, &err);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	REQUIRE(rc == 0);
	REQUIRE(thw_instantiate(f->realm, f->mod, imps, n, f->exec, &f->inst, &err) == 0);
}

static void fx_free(struct fx *f)
{
	char path[128];
	thw_exec_free(f->exec);
	thw_realm_free(f->realm);
	thw_wasi_free(f->wasi);
	thw_module_release(f->mod);
	close(f->out[0]);
	close(f->out[1]);
	snprintf(path, sizeof path, "%s/ok.txt", f->dir);
	unlink(path);
	rmdir(f->dir);
}

static uint32_t call_i32(struct fx *f, const char *name, const thw_val *args,
			 uint32_t nargs)
{
	thw_extern x;
	thw_val r;
	REQUIRE(thw_instance_export(f->inst, name, strlen(name), &x));
	REQUIRE(thw_call(f->exec, x.of.func, args, nargs, &r, 1) == THW_STATE_DONE);
	return r.of.i32;
}

static uint32_t mem32(struct fx *f, uint32_t off)
{
	uint8_t b[4];
	REQUIRE(thw_memory_read(thw_instance_memory(f->inst, 0), off, b, 4) == 0);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

TEST(fd_write_to_stdout_pipe_and_the_hook_sees_payload_and_result)
{
	struct fx f;
	fx_init(&f);
	thw_val fd = v_i32(1);
	CHECK_EQ_INT(call_i32(&f, "write", &fd, 1), 0);
	CHECK_EQ_INT(mem32(&f, 8), 6);
	char buf[16] = { 0 };
	CHECK_EQ_INT(read(f.out[0], buf, sizeof buf - 1), 6);
	CHECK_EQ_STR(buf, "hello\n");
	CHECK_EQ_STR(f.seen.last, "fd_write");
	CHECK_EQ_INT(f.seen.result, 0);
	CHECK_EQ_STR(f.seen.in, "hello\n");
	CHECK_EQ_INT(f.seen.nout, 1); /* nwritten */
	CHECK_EQ_INT(f.seen.out_off, 8);
	CHECK_EQ_INT(f.seen.out_len, 4);
	fx_free(&f);
}

TEST(bad_fd_and_bad_pointers_are_errno_values_not_crashes)
{
	struct fx f;
	fx_init(&f);
	thw_val fd = v_i32(9);
	CHECK_EQ_INT(call_i32(&f, "write", &fd, 1), THW_WASI_EBADF);
	CHECK_EQ_INT(call_i32(&f, "write_bad", NULL, 0), THW_WASI_EFAULT);
	CHECK_EQ_INT(call_i32(&f, "random_bad", NULL, 0), THW_WASI_EFAULT);
	fd = v_i32(3); /* the preopened directory */
	CHECK_EQ_INT(call_i32(&f, "read", &fd, 1), 31 /* EISDIR */);
	fx_free(&f);
}

TEST(args_sizes_and_strings)
{
	struct fx f;
	fx_init(&f);
	CHECK_EQ_INT(call_i32(&f, "args", NULL, 0), 0);
	CHECK_EQ_INT(mem32(&f, 300), 2);
	CHECK_EQ_INT(mem32(&f, 304), 9); /* "prog\0a b\0" */
	CHECK_EQ_INT(mem32(&f, 400), 500);
	CHECK_EQ_INT(mem32(&f, 404), 505);
	char s[9];
	REQUIRE(thw_memory_read(thw_instance_memory(f.inst, 0), 500, s, 9) == 0);
	CHECK(!memcmp(s, "prog\0a b\0", 9));
	fx_free(&f);
}

TEST(proc_exit_is_a_marked_trap_with_the_code)
{
	struct fx f;
	fx_init(&f);
	thw_extern x;
	uint32_t code = 0;
	CHECK(!thw_wasi_exited(f.wasi, &code));
	REQUIRE(thw_instance_export(f.inst, "exit", 4, &x));
	CHECK_EQ_INT(thw_call(f.exec, x.of.func, NULL, 0, NULL, 0), THW_STATE_TRAPPED);
	const thw_trap *t = thw_exec_trap(f.exec);
	REQUIRE(t && t->message);
	CHECK(!strncmp(t->message, THW_WASI_EXIT_PREFIX, strlen(THW_WASI_EXIT_PREFIX)));
	CHECK(thw_wasi_exited(f.wasi, &code));
	CHECK_EQ_INT(code, 7);
	CHECK_EQ_STR(f.seen.last, "proc_exit");
	fx_free(&f);
}

TEST(preopen_prestat_and_path_open_sandbox)
{
	struct fx f;
	fx_init(&f);
	thw_val a = v_i32(3);
	CHECK_EQ_INT(call_i32(&f, "prestat", &a, 1), 0);
	CHECK_EQ_INT(mem32(&f, 700), 0);          /* tag: directory */
	CHECK_EQ_INT(mem32(&f, 704), 8);          /* "/sandbox" */
	a = v_i32(4);
	CHECK_EQ_INT(call_i32(&f, "prestat", &a, 1), THW_WASI_EBADF);

	thw_val p[2] = { v_i32(200), v_i32(9) }; /* ../secret */
	CHECK_EQ_INT(call_i32(&f, "open", p, 2), THW_WASI_ENOTCAPABLE);
	CHECK_EQ_STR(f.seen.in, "../secret");
	p[0] = v_i32(220);
	p[1] = v_i32(11); /* /etc/passwd */
	CHECK_EQ_INT(call_i32(&f, "open", p, 2), THW_WASI_ENOTCAPABLE);
	p[0] = v_i32(65530);
	CHECK_EQ_INT(call_i32(&f, "open", p, 2), THW_WASI_EFAULT);
	p[0] = v_i32(240);
	p[1] = v_i32(6); /* ok.txt */
	CHECK_EQ_INT(call_i32(&f, "open", p, 2), 0);
	uint32_t fd = mem32(&f, 600);
	CHECK_EQ_INT(fd, 4);
	a = v_i32(fd);
	CHECK_EQ_INT(call_i32(&f, "read", &a, 1), 0);
	CHECK_EQ_INT(mem32(&f, 8), 9);
	char s[10] = { 0 };
	REQUIRE(thw_memory_read(thw_instance_memory(f.inst, 0), 800, s, 9) == 0);
	CHECK_EQ_STR(s, "file data");
	fx_free(&f);
}

TEST(unknown_wasi_function_answers_enosys)
{
	struct fx f;
	fx_init(&f);
	CHECK_EQ_INT(call_i32(&f, "nosys", NULL, 0), THW_WASI_ENOSYS);
	CHECK_EQ_STR(f.seen.last, "sock_accept");
	fx_free(&f);
}

static int link_text(const char *wat, th_err *err)
{
	thw_module *m = NULL;
	thw_realm *r = NULL;
	thw_wasi *w = NULL;
	thw_wasi_config cfg = { 0 };
	thw_extern imps[4];
	REQUIRE(wat_module(wat, &m, err) == 0);
	REQUIRE(thw_realm_new(NULL, &r, err) == 0);
	REQUIRE(thw_wasi_new(&cfg, &w, err) == 0);
	int rc = thw_wasi_link(w, r, m, imps, err);
	thw_realm_free(r);
	thw_wasi_free(w);
	thw_module_release(m);
	return rc;
}

TEST(link_errors_name_the_import)
{
	th_err err = { 0 };
	CHECK_EQ_INT(link_text("(module (import \"wasi_snapshot_preview1\" \"fd_write\""
			       " (func (param i32) (result i32))))", &err), TH_EINVAL);
	CHECK(strstr(err.msg, "incompatible import type") != NULL);
	CHECK(strstr(err.msg, "fd_write") != NULL);
	memset(&err, 0, sizeof err);
	CHECK_EQ_INT(link_text("(module (import \"env\" \"f\" (func)))", &err), TH_ENOTFOUND);
	CHECK(strstr(err.msg, "unknown import env.f") != NULL);
	memset(&err, 0, sizeof err);
	CHECK_EQ_INT(link_text("(module (import \"wasi_snapshot_preview1\" \"odd\""
			       " (func (result i64))))", &err), TH_ENOTFOUND);
}

TEST(allocation_failure_fails_thw_wasi_new_cleanly)
{
	static const char *argv[] = { "prog", "x" };
	thw_wasi_config cfg = { 0 };
	cfg.argc = 2;
	cfg.argv = argv;
	for (long n = 0; n < 8; n++) {
		thw_wasi *w = NULL;
		th_err err = { 0 };
		th_alloc_fail_after(n);
		int rc = thw_wasi_new(&cfg, &w, &err);
		th_alloc_fail_after(-1);
		if (rc == 0) {
			CHECK(w != NULL);
			thw_wasi_free(w);
			break;
		}
		CHECK_EQ_INT(rc, TH_ENOMEM);
		CHECK(w == NULL);
	}
}

TEST_MAIN()
