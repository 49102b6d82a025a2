/*
 * cmd_store.c - `theater store ...`: the content-addressed store from the
 * command line. The store root is $THEATER_HOME/store; label commands act
 * on the named store "default" unless --store ID is given.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "theater/store.h"

static const char store_usage[] =
	"usage: theater store <command> [--store ID] [args]\n"
	"\n"
	"  put FILE|-          store a file (or stdin); prints its hash\n"
	"  get HASH            write the content to stdout\n"
	"  label NAME HASH [--expect OLD|none]\n"
	"                      point label NAME at HASH; with --expect only if it\n"
	"                      points at OLD now (none: only if it does not exist)\n"
	"  ls [--all]          list labels (NAME HASH SIZE), or with --all\n"
	"                      every object (HASH SIZE DISK KIND)\n"
	"  rm-label NAME       remove a label\n"
	"  new                 create a named store; prints its id\n"
	"  gc [--grace SECS]   delete content no label refers to (content\n"
	"                      written in the last SECS, default 3600, is kept)\n"
	"  verify              re-hash everything; lists bad objects\n"
	"\n"
	"--store ID selects a named store (default: \"default\").\n"
	"--json prints one JSON document (put, ls, new, gc, verify), the same\n"
	"as through a server (--address A).\n"
	"Data lives in $THEATER_HOME/store (default ~/.theater/store).\n";

struct progress {
	bool on;
	int last_permille;
	const char *what;
};

static void progress_draw(void *ud, uint64_t done, uint64_t total)
{
	struct progress *p = ud;
	if (!p->on || total == 0)
		return;
	int permille = (int)(done * 1000 / total);
	if (permille == p->last_permille)
		return;
	p->last_permille = permille;
	char bar[41];
	int fill = permille * 40 / 1000;
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[40] = 0;
	fprintf(stderr, "\r%s [%s] %3d%% %" PRIu64 "/%" PRIu64 " MiB", p->what,
		bar, permille / 10, done >> 20, total >> 20);
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* Progress bars only when stderr is a terminal and the job is long. */
static void progress_init(struct progress *p, const char *what, uint64_t total)
{
	p->on = cli_stderr_tty() && total >= (16u << 20);
	p->last_permille = -1;
	p->what = what;
}

static int open_store(ths_store **s)
{
	char root[4200];
	th_err err = { 0 };
	snprintf(root, sizeof root, "%s/store", cli_home());
	if (ths_open(root, NULL, s, &err) != 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int fail(th_err *err)
{
	cli_error("%s", err->msg);
	return CLI_FAIL;
}

/* --json output: the same documents a server answers with. */
static bool json_out;

static int cmd_put(ths_store *s, const char *path)
{
	th_err err = { 0 };
	int fd = STDIN_FILENO;
	uint64_t total = 0;
	if (strcmp(path, "-") != 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_error("cannot open %s: %s", path, strerror(errno));
			return CLI_FAIL;
		}
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			cli_error("cannot put %s: it is a directory", path);
			close(fd);
			return CLI_FAIL;
		}
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			total = (uint64_t)st.st_size;
	}
	struct progress p;
	progress_init(&p, "put", total);
	ths_hash h;
	int rc = ths_put_fd(s, fd, total, progress_draw, &p, &h, NULL, &err);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc) {
		if (p.on)
			fputc('\n', stderr);
		cli_error("put %s: %s", path, err.msg);
		return CLI_FAIL;
	}
	char hex[THS_HEX_LEN + 1];
	ths_hash_hex(&h, hex);
	if (json_out) {
		uint64_t size = total;
		(void)ths_size(s, &h, &size, NULL); /* stdin: its size as stored */
		printf("{\"hash\":\"%s\",\"size\":%" PRIu64 "}\n", hex, size);
	}
	else
		printf("%s\n", hex);
	return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}

static int cmd_get(ths_store *s, const char *text)
{
	th_err err = { 0 };
	ths_hash h;
	if (ths_hash_parse(text, &h, &err) != 0)
		return fail(&err);
	if (ths_get_fd(s, &h, STDOUT_FILENO, NULL, NULL, &err) != 0) {
		if (err.code == TH_ENOTFOUND)
			cli_error("no content %s in the store (%s)", text, err.msg);
		else
			cli_error("get %s: %s", text, err.msg);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int cmd_label(ths_store *s, const char *store, const char *name,
		     const char *text, const char *expect)
{
	th_err err = { 0 };
	ths_hash h, old;
	if (ths_name_check("label", name, &err) != 0 ||
	    ths_hash_parse(text, &h, &err) != 0)
		return fail(&err);
	int rc;
	if (!expect)
		rc = ths_label_set(s, store, name, &h, &err);
	else if (!strcmp(expect, "none"))
		rc = ths_label_cas(s, store, name, NULL, &h, &err);
	else if ((rc = ths_hash_parse(expect, &old, &err)) == 0)
		rc = ths_label_cas(s, store, name, &old, &h, &err);
	return rc ? fail(&err) : CLI_OK;
}

static void json_label(const char *name, const char *hex, uint64_t size, bool has_size,
		       bool first)
{
	/* Label names are checked to be plain ([A-Za-z0-9._-]): no escaping. */
	printf("%s{\"hash\":\"%s\",\"name\":\"%s\"", first ? "" : ",", hex, name);
	if (has_size)
		printf(",\"size\":%" PRIu64, size);
	putchar('}');
}

static int cmd_ls(ths_store *s, const char *store, bool all)
{
	th_err err = { 0 };
	char hex[THS_HEX_LEN + 1];
	if (all) {
		ths_content_entry *v;
		size_t n;
		if (ths_content_list(s, NULL, &v, &n, &err) != 0)
			return fail(&err);
		if (json_out)
			fputs("{\"objects\":[", stdout);
		for (size_t i = 0; i < n; i++) {
			ths_hash_hex(&v[i].hash, hex);
			if (json_out)
				printf("%s{\"hash\":\"%s\",\"size\":%" PRIu64 ",\"disk\":%" PRIu64
				       ",\"kind\":\"%s\"}", i ? "," : "", hex, v[i].size, v[i].disk,
				       v[i].chunked ? "manifest" : "blob");
			else
				printf("%s %" PRIu64 " %" PRIu64 " %s\n", hex, v[i].size,
				       v[i].disk, v[i].chunked ? "manifest" : "blob");
		}
		if (json_out)
			fputs("]}\n", stdout);
		ths_buf_free(v);
		return CLI_OK;
	}
	ths_label_entry *v;
	size_t n;
	if (ths_label_list(s, store, &v, &n, &err) != 0)
		return fail(&err);
	if (json_out)
		fputs("{\"labels\":[", stdout);
	for (size_t i = 0; i < n; i++) {
		uint64_t size = 0;
		th_err serr = { 0 };
		ths_hash_hex(&v[i].hash, hex);
		bool has = ths_size(s, &v[i].hash, &size, &serr) == 0;
		if (json_out)
			json_label(v[i].name, hex, size, has, i == 0);
		else if (!has)
			printf("%s %s ? (%s)\n", v[i].name, hex, serr.msg);
		else
			printf("%s %s %" PRIu64 "\n", v[i].name, hex, size);
	}
	if (json_out)
		fputs("]}\n", stdout);
	ths_buf_free(v);
	return CLI_OK;
}

static int cmd_gc(ths_store *s, uint64_t grace)
{
	th_err err = { 0 };
	ths_gc_stats st;
	if (ths_gc(s, grace, &st, &err) != 0)
		return fail(&err);
	if (json_out) {
		printf("{\"live\":%" PRIu64 ",\"missing\":%" PRIu64 ",\"objects\":%" PRIu64
		       ",\"removed\":%" PRIu64 ",\"removed_bytes\":%" PRIu64
		       ",\"tmp_removed\":%" PRIu64 "}\n",
		       st.live, st.missing, st.objects, st.removed, st.removed_bytes,
		       st.tmp_removed);
		return CLI_OK;
	}
	printf("gc: %" PRIu64 " objects, %" PRIu64 " live, removed %" PRIu64
	       " (%" PRIu64 " bytes) and %" PRIu64 " temporary files\n",
	       st.objects, st.live, st.removed, st.removed_bytes,
	       st.tmp_removed);
	if (st.missing)
		printf("gc: %" PRIu64 " referenced objects are missing "
		       "(run 'theater store verify')\n", st.missing);
	return CLI_OK;
}

static void json_text(const char *t)
{
	putchar('"');
	for (; *t; t++) {
		unsigned char c = (unsigned char)*t;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_problem(void *ud, const char *path, const char *problem)
{
	uint64_t *n = ud;
	if (!json_out) {
		printf("BAD %s: %s\n", path, problem);
		return;
	}
	printf("%s{\"path\":", (*n)++ ? "," : "");
	json_text(path);
	fputs(",\"problem\":", stdout);
	json_text(problem);
	putchar('}');
}

static int cmd_verify(ths_store *s)
{
	th_err err = { 0 };
	ths_verify_stats st;
	uint64_t total = 0;
	ths_total_size(s, NULL, &total, NULL);
	struct progress p;
	progress_init(&p, "verify", total);
	uint64_t nprob = 0;
	if (json_out)
		fputs("{\"problems\":[", stdout);
	int rc = ths_verify(s, print_problem, &nprob, progress_draw, &p, &st, &err);
	if (rc && rc != TH_ECORRUPT) {
		if (json_out)
			fputs("]}\n", stdout);
		return fail(&err);
	}
	if (json_out) {
		printf("],\"bad\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"objects\":%" PRIu64
		       ",\"ok\":%s}\n", st.bad, st.bytes, st.objects, rc ? "false" : "true");
		return rc ? CLI_FAIL : CLI_OK;
	}
	printf("verify: %" PRIu64 " objects, %" PRIu64 " bytes, %" PRIu64
	       " problem%s\n", st.objects, st.bytes, st.bad,
	       st.bad == 1 ? "" : "s");
	return rc ? CLI_FAIL : CLI_OK;
}

static int need_args(const char *cmd, int have, int want)
{
	if (have == want)
		return 0;
	cli_error("store %s takes %d argument%s, got %d (see 'theater store "
		  "--help')", cmd, want, want == 1 ? "" : "s", have);
	return CLI_USAGE;
}

int cli_store(int argc, char **argv)
{
	const char *store = THS_DEFAULT_STORE;
	const char *args[4];
	int nargs = 0;
	bool all = false;
	const char *expect = NULL;
	uint64_t grace = 3600;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(store_usage, stdout);
			return CLI_OK;
		} else if (!strcmp(a, "--json")) {
			json_out = true;
		} else if (!strcmp(a, "--store") || !strcmp(a, "--grace") ||
			   !strcmp(a, "--expect")) {
			if (i + 1 >= argc) {
				cli_error("%s needs a value", a);
				return CLI_USAGE;
			}
			if (!strcmp(a, "--store")) {
				store = argv[++i];
				continue;
			}
			if (!strcmp(a, "--expect")) {
				expect = argv[++i];
				continue;
			}
			char *end;
			errno = 0;
			unsigned long long g = strtoull(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || argv[i][0] == '-') {
				cli_error("--grace wants a number of seconds, "
					  "got '%s'", argv[i]);
				return CLI_USAGE;
			}
			grace = g;
		} else if (!strcmp(a, "--all")) {
			all = true;
		} else if (a[0] == '-' && a[1] && strcmp(a, "--") != 0) {
			cli_error("store: unknown option '%s'", a);
			return CLI_USAGE;
		} else if (nargs < (int)TH_ARRAY_LEN(args)) {
			args[nargs++] = a;
		} else {
			cli_error("store: too many arguments");
			return CLI_USAGE;
		}
	}
	if (nargs == 0) {
		fputs(store_usage, stderr);
		return CLI_USAGE;
	}
	const char *cmd = args[0];
	int n = nargs - 1, rc;
	static const char *const known[] = { "put", "get", "label", "ls",
					     "rm-label", "new", "gc", "verify" };
	bool ok = false;
	for (size_t i = 0; i < TH_ARRAY_LEN(known); i++)
		ok |= !strcmp(cmd, known[i]);
	if (!ok) {
		cli_error("store: unknown command '%s' (see 'theater store "
			  "--help')", cmd);
		return CLI_USAGE;
	}
	if ((!strcmp(cmd, "put") || !strcmp(cmd, "get") ||
	     !strcmp(cmd, "rm-label")) && (rc = need_args(cmd, n, 1)))
		return rc;
	if (!strcmp(cmd, "label") && (rc = need_args(cmd, n, 2)))
		return rc;
	if (expect && strcmp(cmd, "label")) {
		cli_error("store %s: --expect applies to 'store label' only", cmd);
		return CLI_USAGE;
	}
	if ((!strcmp(cmd, "ls") || !strcmp(cmd, "gc") || !strcmp(cmd, "new") ||
	     !strcmp(cmd, "verify")) && (rc = need_args(cmd, n, 0)))
		return rc;
	th_err err = { 0 };
	if (ths_name_check("store id", store, &err) != 0)
		return fail(&err);
	ths_store *s;
	if ((rc = open_store(&s)) != 0)
		return rc;
	if (strcmp(store, THS_DEFAULT_STORE) != 0 &&
	    ths_store_check(s, store, &err) != 0) {
		ths_close(s);
		return fail(&err);
	}
	if (!strcmp(cmd, "put")) {
		rc = cmd_put(s, args[1]);
	} else if (!strcmp(cmd, "get")) {
		rc = cmd_get(s, args[1]);
	} else if (!strcmp(cmd, "label")) {
		rc = cmd_label(s, store, args[1], args[2], expect);
	} else if (!strcmp(cmd, "ls")) {
		rc = cmd_ls(s, store, all);
	} else if (!strcmp(cmd, "rm-label")) {
		rc = ths_label_remove(s, store, args[1], &err) ? fail(&err)
							       : CLI_OK;
	} else if (!strcmp(cmd, "new")) {
		char id[THS_NAME_MAX + 1];
		rc = ths_store_new(s, id, &err) ? fail(&err) : CLI_OK;
		if (!rc)
			printf(json_out ? "{\"id\":\"%s\"}\n" : "%s\n", id);
	} else if (!strcmp(cmd, "gc")) {
		rc = cmd_gc(s, grace);
	} else {
		rc = cmd_verify(s);
	}
	ths_close(s);
	return rc;
}
