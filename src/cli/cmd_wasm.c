/*
 * cmd_wasm.c - `theater wasm`: run WebAssembly modules on Theater's engine.
 *
 *   theater wasm run [OPTIONS] FILE.wasm [ARGS...]
 *       runs a WASI command (its _start) with ARGS; exits with its exit code.
 *   theater wasm run [OPTIONS] FILE.wasm --invoke NAME [ARGS...]
 *       calls the export NAME with ARGS parsed per its parameter types and
 *       prints each result on its own line.
 *   theater wasm validate FILE.wasm
 *       decodes and validates only.
 *
 * Exit codes: the guest's exit code (proc_exit, or 0 when _start returns);
 * 1 when the file cannot be read, decoded, validated or linked; 2 for usage
 * errors; 134 when the program traps (128 + SIGABRT, as other WebAssembly
 * runtimes do, so a trap is told apart from a guest's own exit(1)). A trap
 * prints its message and the WebAssembly backtrace on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>

#include "base/base.h"
#include "cli/cli.h"
#include "theater/wasi.h"
#include "theater/wasm.h"

#define EXIT_TRAP 134
#define MAX_DIRS 32
#define MAX_ENV 256
#define MAX_VALS 64

static void wasm_usage(FILE *f)
{
	fprintf(f,
		"usage: theater wasm run [OPTIONS] FILE.wasm [ARGS...]\n"
		"       theater wasm run [OPTIONS] FILE.wasm --invoke NAME [ARGS...]\n"
		"       theater wasm validate FILE.wasm\n"
		"\n"
		"run executes a WASI command (_start) and exits with its exit code;\n"
		"with --invoke it calls the export NAME, ARGS parsed per its parameter\n"
		"types (integers: decimal or 0x hex; floats: decimal, inf, nan), and\n"
		"prints each result on its own line.\n"
		"\n"
		"options (before FILE):\n"
		"  --fuel N          trap after N executed instructions (default: no limit)\n"
		"  --max-pages N     at most N 64 KiB pages per memory (default 65536)\n"
		"  --max-depth N     at most N nested calls (default 10000)\n"
		"  --dir HOST[:GUEST] give the guest the host directory HOST as GUEST\n"
		"  --env KEY=VALUE   set an environment variable for the guest\n"
		"\n"
		"exit codes: the guest's; 1 bad file or link error; 2 usage; 134 trap.\n");
}

static int read_whole(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = th_malloc(cap);
	while (buf) {
		if (n == cap) {
			uint8_t *nb = th_realloc(buf, cap * 2);
			if (!nb) {
				th_free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int saved = errno;
	bool bad = ferror(f);
	fclose(f);
	if (!buf || bad) {
		th_free(buf);
		errno = bad ? saved : ENOMEM;
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

static bool parse_u64_arg(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static const char *type_name(uint8_t t)
{
	switch (t) {
	case THW_I32: return "i32";
	case THW_I64: return "i64";
	case THW_F32: return "f32";
	case THW_F64: return "f64";
	case THW_V128: return "v128";
	case THW_FUNCREF: return "funcref";
	case THW_EXTERNREF: return "externref";
	default: return "?";
	}
}

/* Parse a command-line argument as a value of type t. */
static bool parse_val(const char *s, uint8_t t, thw_val *v)
{
	char *end;
	memset(v, 0, sizeof *v);
	v->type = t;
	errno = 0;
	if (t == THW_I32 || t == THW_I64) {
		bool neg = *s == '-';
		unsigned long long u = strtoull(neg ? s + 1 : s, &end, 0);
		if (errno || *end || !*s || (neg && !s[1]))
			return false;
		if (t == THW_I32) {
			if (neg ? u > 0x80000000ull : u > 0xFFFFFFFFull)
				return false;
			v->of.i32 = neg ? (uint32_t)(0u - (uint32_t)u) : (uint32_t)u;
		} else {
			if (neg && u > 0x8000000000000000ull)
				return false;
			v->of.i64 = neg ? 0ull - u : u;
		}
		return true;
	}
	if (t == THW_F32 || t == THW_F64) {
		double d = strtod(s, &end);
		if (*end || !*s)
			return false;
		if (t == THW_F32)
			v->of.f32 = (float)d;
		else
			v->of.f64 = d;
		return true;
	}
	if ((t == THW_FUNCREF || t == THW_EXTERNREF) && !strcmp(s, "null"))
		return true;
	return false;
}

static void print_val(const thw_val *v)
{
	switch (v->type) {
	case THW_I32: printf("%" PRId32 "\n", (int32_t)v->of.i32); break;
	case THW_I64: printf("%" PRId64 "\n", (int64_t)v->of.i64); break;
	case THW_F32: printf("%.9g\n", (double)v->of.f32); break;
	case THW_F64: printf("%.17g\n", v->of.f64); break;
	case THW_FUNCREF: printf("%s\n", v->of.func ? "funcref" : "null"); break;
	case THW_EXTERNREF: printf("%s\n", v->of.ref ? "externref" : "null"); break;
	default: printf("(%s)\n", type_name(v->type)); break;
	}
}

static void print_trap(const char *file, const thw_trap *t)
{
	cli_error("%s: trap: %s", file, t && t->message ? t->message : "(unknown)");
	if (!t)
		return;
	for (uint32_t i = 0; i < t->nframes; i++) {
		const thw_frame_info *fr = &t->frames[i];
		fprintf(stderr, "  #%" PRIu32 " func[%" PRIu32 "]%s%s @ 0x%" PRIx32 "\n",
			i, fr->func_index, fr->func_name ? " " : "",
			fr->func_name ? fr->func_name : "", fr->code_offset);
	}
}

struct run_opts {
	uint64_t fuel;
	uint32_t max_pages, max_depth;
	thw_wasi_preopen dirs[MAX_DIRS];
	char *dir_bufs[MAX_DIRS];
	uint32_t ndirs;
	const char *env[MAX_ENV];
	int nenv;
	const char *file;
	const char *invoke;
	int nargs;
	char **args;
};

/* Run an invocation to its end; returns the final state. */
static thw_state run_to_end(thw_exec *e)
{
	thw_state st = thw_exec_run(e);
	/* No host function here answers PENDING and fuel traps rather than
	 * yields, so DONE or TRAPPED are the only ends. */
	return st;
}

static int do_invoke(struct run_opts *o, thw_exec *e, thw_instance *inst,
		     thw_wasi *w)
{
	thw_extern ext;
	th_err err = { 0 };
	if (!thw_instance_export(inst, o->invoke, strlen(o->invoke), &ext) ||
	    ext.kind != THW_EXTERN_FUNC) {
		cli_error("%s: no exported function '%s'", o->file, o->invoke);
		return CLI_FAIL;
	}
	thw_functype ft;
	thw_func_type(ext.of.func, &ft);
	if ((uint32_t)o->nargs != ft.nparams) {
		cli_error("%s: '%s' takes %" PRIu32 " arguments, %d given", o->file,
			  o->invoke, ft.nparams, o->nargs);
		return CLI_USAGE;
	}
	if (ft.nparams > MAX_VALS || ft.nresults > MAX_VALS) {
		cli_error("%s: '%s' has too many parameters or results", o->file, o->invoke);
		return CLI_FAIL;
	}
	thw_val args[MAX_VALS], res[MAX_VALS];
	for (uint32_t i = 0; i < ft.nparams; i++)
		if (!parse_val(o->args[i], ft.params[i], &args[i])) {
			cli_error("argument %" PRIu32 " '%s' is not a valid %s", i + 1,
				  o->args[i], type_name(ft.params[i]));
			return CLI_USAGE;
		}
	if (thw_exec_start(e, ext.of.func, args, ft.nparams, &err) != 0) {
		cli_error("%s: %s", o->file, err.msg);
		return CLI_FAIL;
	}
	thw_state st = run_to_end(e);
	fflush(stdout);
	if (st == THW_STATE_TRAPPED) {
		uint32_t code;
		if (thw_wasi_exited(w, &code))
			return (int)(code & 0xFF);
		print_trap(o->file, thw_exec_trap(e));
		return EXIT_TRAP;
	}
	if (st != THW_STATE_DONE) {
		cli_error("%s: invocation stopped in state %d", o->file, (int)st);
		return CLI_FAIL;
	}
	uint32_t n = thw_exec_results(e, res, MAX_VALS);
	for (uint32_t i = 0; i < n && i < MAX_VALS; i++)
		print_val(&res[i]);
	return CLI_OK;
}

static int run_module(struct run_opts *o)
{
	uint8_t *bytes = NULL;
	size_t len = 0;
	thw_module *m = NULL;
	thw_realm *r = NULL;
	thw_exec *e = NULL;
	thw_wasi *w = NULL;
	thw_instance *inst = NULL;
	thw_extern *imports = NULL;
	th_err err = { 0 };
	int rc = CLI_FAIL;

	if (read_whole(o->file, &bytes, &len) != 0) {
		cli_error("%s: cannot read: %s", o->file, strerror(errno));
		return CLI_FAIL;
	}
	if (thw_module_new(bytes, len, &m, &err) != 0) {
		cli_error("%s: %s", o->file, err.msg);
		goto out;
	}
	thw_config cfg = { 0 };
	cfg.max_memory_pages = o->max_pages;
	cfg.max_call_depth = o->max_depth;
	if (thw_realm_new(&cfg, &r, &err) != 0 || thw_exec_new(r, &e, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}

	/* argv[0] is the program's name, as a shell would pass it. */
	const char *base = strrchr(o->file, '/');
	base = base ? base + 1 : o->file;
	const char **argv = th_calloc((size_t)o->nargs + 1, sizeof *argv);
	if (!argv) {
		cli_error("out of memory");
		goto out;
	}
	argv[0] = base;
	for (int i = 0; i < o->nargs; i++)
		argv[i + 1] = o->args[i];
	thw_wasi_config wc = { 0 };
	wc.argc = o->nargs + 1;
	wc.argv = argv;
	wc.nenv = o->nenv;
	wc.env = o->env;
	wc.preopens = o->dirs;
	wc.npreopens = o->ndirs;
	int wrc = thw_wasi_new(&wc, &w, &err);
	th_free(argv);
	if (wrc != 0) {
		cli_error("%s", err.msg);
		goto out;
	}

	uint32_t nimp = thw_module_import_count(m);
	imports = th_calloc(nimp ? nimp : 1, sizeof *imports);
	if (!imports) {
		cli_error("out of memory");
		goto out;
	}
	if (thw_wasi_link(w, r, m, imports, &err) != 0) {
		cli_error("%s: %s", o->file, err.msg);
		goto out;
	}
	thw_exec_set_fuel(e, o->fuel, THW_FUEL_TRAP);
	if (thw_instantiate(r, m, imports, nimp, e, &inst, &err) != 0) {
		uint32_t code;
		fflush(stdout);
		if (thw_wasi_exited(w, &code)) {
			rc = (int)(code & 0xFF);
			goto out;
		}
		cli_error("%s: %s", o->file, err.msg);
		rc = thw_exec_state(e) == THW_STATE_TRAPPED ? EXIT_TRAP : CLI_FAIL;
		goto out;
	}

	if (o->invoke) {
		/* A reactor initialises itself before any other export. */
		thw_extern init;
		if (thw_instance_export(inst, "_initialize", 11, &init) &&
		    init.kind == THW_EXTERN_FUNC) {
			thw_state st = thw_call(e, init.of.func, NULL, 0, NULL, 0);
			if (st == THW_STATE_TRAPPED) {
				print_trap(o->file, thw_exec_trap(e));
				rc = EXIT_TRAP;
				goto out;
			}
		}
		rc = do_invoke(o, e, inst, w);
		goto out;
	}

	thw_extern start;
	if (!thw_instance_export(inst, "_start", 6, &start) ||
	    start.kind != THW_EXTERN_FUNC) {
		cli_error("%s: no _start function (a WASI command); use --invoke NAME",
			  o->file);
		goto out;
	}
	if (thw_exec_start(e, start.of.func, NULL, 0, &err) != 0) {
		cli_error("%s: _start: %s", o->file, err.msg);
		goto out;
	}
	thw_state st = run_to_end(e);
	fflush(stdout);
	if (st == THW_STATE_DONE) {
		rc = CLI_OK;
	} else if (st == THW_STATE_TRAPPED) {
		uint32_t code;
		if (thw_wasi_exited(w, &code)) {
			rc = (int)(code & 0xFF);
		} else {
			print_trap(o->file, thw_exec_trap(e));
			rc = EXIT_TRAP;
		}
	} else {
		cli_error("%s: _start stopped in state %d", o->file, (int)st);
	}
out:
	th_free(imports);
	thw_exec_free(e);
	thw_realm_free(r);
	thw_wasi_free(w);
	thw_module_release(m);
	th_free(bytes);
	return rc;
}

static int parse_run(int argc, char **argv, struct run_opts *o)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			wasm_usage(stdout);
			return -1;
		}
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] != '-')
			break;
		if (!v) {
			cli_error("option %s needs a value", a);
			return CLI_USAGE;
		}
		if (!strcmp(a, "--fuel")) {
			if (!parse_u64_arg(v, &n)) {
				cli_error("--fuel: '%s' is not a count", v);
				return CLI_USAGE;
			}
			o->fuel = n;
		} else if (!strcmp(a, "--max-pages") || !strcmp(a, "--max-depth")) {
			if (!parse_u64_arg(v, &n) || n == 0 || n > 65536 * 16) {
				cli_error("%s: '%s' is not a valid limit", a, v);
				return CLI_USAGE;
			}
			if (a[6] == 'p')
				o->max_pages = (uint32_t)n;
			else
				o->max_depth = (uint32_t)n;
		} else if (!strcmp(a, "--dir")) {
			if (o->ndirs == MAX_DIRS) {
				cli_error("too many --dir options");
				return CLI_USAGE;
			}
			char *buf = th_strdup(v);
			if (!buf)
				return CLI_FAIL;
			o->dir_bufs[o->ndirs] = buf;
			char *colon = strchr(buf, ':');
			if (colon)
				*colon = 0;
			o->dirs[o->ndirs].host_path = buf;
			o->dirs[o->ndirs].guest_path = colon ? colon + 1 : buf;
			o->ndirs++;
		} else if (!strcmp(a, "--env")) {
			if (!strchr(v, '=') || o->nenv == MAX_ENV) {
				cli_error("--env: '%s' is not KEY=VALUE (or too many)", v);
				return CLI_USAGE;
			}
			o->env[o->nenv++] = v;
		} else {
			cli_error("unknown option %s (see 'theater wasm --help')", a);
			return CLI_USAGE;
		}
		i++;
	}
	if (i >= argc) {
		cli_error("missing FILE.wasm (see 'theater wasm --help')");
		return CLI_USAGE;
	}
	o->file = argv[i++];
	if (i < argc && !strcmp(argv[i], "--invoke")) {
		if (i + 1 >= argc) {
			cli_error("--invoke needs an export name");
			return CLI_USAGE;
		}
		o->invoke = argv[i + 1];
		i += 2;
	}
	o->nargs = argc - i;
	o->args = argv + i;
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	memset(&o, 0, sizeof o);
	o.fuel = UINT64_MAX;
	/* A closed stdout must be EPIPE for the guest's fd_write, not a signal
	 * that kills the host. */
	signal(SIGPIPE, SIG_IGN);
	int rc = parse_run(argc, argv, &o);
	if (rc == 0)
		rc = run_module(&o);
	else if (rc < 0)
		rc = CLI_OK;
	for (uint32_t i = 0; i < o.ndirs; i++)
		th_free(o.dir_bufs[i]);
	return rc;
}

static int cmd_validate(int argc, char **argv)
{
	uint8_t *bytes;
	size_t len;
	thw_module *m = NULL;
	th_err err = { 0 };
	if (argc != 2 || argv[1][0] == '-') {
		wasm_usage(argc == 2 ? stdout : stderr);
		return argc == 2 ? CLI_OK : CLI_USAGE;
	}
	if (read_whole(argv[1], &bytes, &len) != 0) {
		cli_error("%s: cannot read: %s", argv[1], strerror(errno));
		return CLI_FAIL;
	}
	int rc = thw_module_new(bytes, len, &m, &err);
	th_free(bytes);
	if (rc != 0) {
		cli_error("%s: %s", argv[1], err.msg);
		return CLI_FAIL;
	}
	printf("%s: valid (%" PRIu32 " imports, %" PRIu32 " exports)\n", argv[1],
	       thw_module_import_count(m), thw_module_export_count(m));
	thw_module_release(m);
	return CLI_OK;
}

int cli_wasm(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		wasm_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "validate"))
		return cmd_validate(argc - 1, argv + 1);
	cli_error("unknown wasm command '%s' (see 'theater wasm --help')", argv[1]);
	return CLI_USAGE;
}
