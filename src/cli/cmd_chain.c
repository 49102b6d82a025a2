/*
 * cmd_chain.c - `theater chain ...`: inspect and verify the Event Chain
 * store in $THEATER_HOME/chains.
 *
 *   theater chain ls [--json]
 *   theater chain verify [CHAIN] [--json]
 *   theater chain show CHAIN [--type T] [--actor A] [--since TIME]
 *                            [--until TIME] [--limit N] [--json]
 *   theater chain append CHAIN ...     (development: write test events)
 *
 * Reading commands open the store read-only, so they work while a runtime
 * is writing it (its unfinished last record is then simply not shown).
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "cli/cli.h"
#include "theater/chain.h"

static void chain_usage(FILE *f)
{
	fprintf(f,
		"usage: theater chain <command> [args]\n\n"
		"  ls [--json]                     list chains (events, blocks, head hash)\n"
		"  verify [CHAIN] [--json]         recompute every hash, link and Merkle root\n"
		"  show CHAIN [options] [--json]   print events (a table on a terminal)\n"
		"      --type T      only events of type T (e.g. message.received)\n"
		"      --actor A     only events of actor A\n"
		"      --since TIME  from TIME: 2026-11-21T16:00:00Z, 2026-11-21, 10m / 2h / 3d ago,\n"
		"                    or nanoseconds since the epoch\n"
		"      --until TIME  before TIME (same forms)\n"
		"      --limit N     at most N events\n"
		"  prune CHAIN [--keep N] [--max-bytes B] [--older-than AGE] [--no-compact]\n"
		"                                  drop old events' data (hashes stay), compact\n"
		"  export CHAIN > FILE             one self-contained file: events + their objects\n"
		"  import FILE|-                   re-create an exported chain here\n"
		"  prove CHAIN SEQ [--seal]        Merkle inclusion proof of event SEQ\n"
		"  check-proof FILE|- [--block H]  check a proof (against a block hash)\n"
		"      ('theater chain export --help' describes these four)\n"
		"\n"
		"development:\n"
		"  append CHAIN [--type T] [--actor A] [--data S | --size N] [--count N]\n"
		"         [--threads T] [--shared] [--durability always|batch|none]\n"
		"      append test events; prints 'CHAIN SEQ' for each acknowledged one.\n"
		"      With --threads, thread i writes chain CHAIN-i (or CHAIN with --shared).\n"
		"\nThe store lives in $THEATER_HOME/chains.\n");
}

static const char *chains_dir(void)
{
	static char path[4200];
	snprintf(path, sizeof path, "%s/chains", cli_home());
	return path;
}

static int open_store(bool read_only, thx_store **s)
{
	th_err err = { 0 };
	thx_store_opts o = { .read_only = read_only };
	if (read_only && access(chains_dir(), F_OK) != 0) {
		cli_error("no chain store at %s", chains_dir());
		return CLI_FAIL;
	}
	if (thx_store_open(chains_dir(), &o, s, &err)) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* ---- output helpers ---- */

static void json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_cstr(FILE *f, const char *s)
{
	json_str(f, s, strlen(s));
}

static void fmt_time(uint64_t ns, char *out, size_t n)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03uZ", buf, (unsigned)(ns / 1000000u % 1000u));
}

static void hexs(const uint8_t *h, size_t n, char *out)
{
	th_hex(h, n, out);
}

/* Printable text: valid UTF-8 without control characters but \n \t. */
static bool is_text(const uint8_t *p, size_t n)
{
	if (!th_cbor_utf8_ok(p, n, NULL))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f)
			return false;
	return true;
}

/* ---- time arguments ---- */

bool cli_parse_time(const char *s, uint64_t *out)
{
	char *end;
	struct tm tm = { 0 };
	size_t n = strlen(s);
	if (n == 0)
		return false;
	char unit = s[n - 1];
	if (n > 1 && strchr("smhd", unit) && s[0] != '-' ) {
		errno = 0;
		unsigned long long v = strtoull(s, &end, 10);
		if (errno || end != s + n - 1)
			return false;
		uint64_t mul = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
		uint64_t ago = (uint64_t)v * mul * 1000000000u;
		uint64_t now = th_wall_ns();
		*out = ago > now ? 1 : now - ago;
		return true;
	}
	bool digits = true;
	for (size_t i = 0; i < n; i++)
		digits &= s[i] >= '0' && s[i] <= '9';
	if (digits) {
		errno = 0;
		*out = strtoull(s, &end, 10);
		return errno == 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end) {
		memset(&tm, 0, sizeof tm);
		end = strptime(s, "%Y-%m-%d", &tm);
		if (!end || *end)
			return false;
	}
	uint64_t frac = 0, scale = 1000000000u;
	if (*end == '.') {
		end++;
		while (*end >= '0' && *end <= '9') {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*end - '0') * scale;
			}
			end++;
		}
	}
	if (*end == 'Z')
		end++;
	if (*end)
		return false;
	time_t t = timegm(&tm);
	if (t < 0)
		return false;
	*out = (uint64_t)t * 1000000000u + frac;
	return true;
}

/* ---- ls ---- */

static int cmd_ls(int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else {
			cli_error("chain ls: unknown argument '%s'", argv[i]);
			return CLI_USAGE;
		}
	}
	if (access(chains_dir(), F_OK) != 0) {
		if (json)
			printf("{\"chains\":[]}\n");
		return CLI_OK;
	}
	thx_store *s;
	if (open_store(true, &s))
		return CLI_FAIL;
	char **names;
	size_t n;
	th_err err = { 0 };
	if (thx_store_list(s, &names, &n, &err)) {
		cli_error("%s", err.msg);
		thx_store_close(s);
		return CLI_FAIL;
	}
	bool tty = isatty(STDOUT_FILENO);
	if (json)
		printf("{\"chains\":[");
	else if (tty)
		printf("%-32s %10s %8s %-7s %s\n", "CHAIN", "EVENTS", "BLOCKS", "DURABLE", "HEAD");
	static const char *dur[] = { "always", "batch", "none" };
	for (size_t i = 0; i < n; i++) {
		thx_chain *c;
		if (thx_chain_open(s, names[i], NULL, false, &c, NULL))
			continue;
		uint8_t head[32];
		char hx[65] = "-";
		if (thx_chain_head(c, head))
			hexs(head, 32, hx);
		thx_chain_opts o;
		thx_chain_opts_get(c, &o);
		if (json) {
			printf("%s{\"name\":", i ? "," : "");
			json_cstr(stdout, names[i]);
			printf(",\"events\":%llu,\"blocks\":%llu,\"durability\":\"%s\",\"head\":\"%s\"}",
			       (unsigned long long)thx_chain_count(c),
			       (unsigned long long)thx_block_count(c), dur[o.durability], hx);
		} else if (tty) {
			hx[16] = '\0';
			printf("%-32s %10llu %8llu %-7s %s\n", names[i],
			       (unsigned long long)thx_chain_count(c),
			       (unsigned long long)thx_block_count(c), dur[o.durability], hx);
		} else {
			printf("%s\t%llu\t%llu\t%s\t%s\n", names[i],
			       (unsigned long long)thx_chain_count(c),
			       (unsigned long long)thx_block_count(c), dur[o.durability], hx);
		}
	}
	if (json)
		printf("]}\n");
	thx_free(names);
	thx_store_close(s);
	return CLI_OK;
}

/* ---- verify ---- */

struct bar {
	uint64_t started;
	int last_pct;
};

static void progress(uint64_t done, uint64_t total, void *arg)
{
	struct bar *b = arg;
	if (!total)
		return;
	int pct = (int)(done * 100 / total);
	if (pct == b->last_pct)
		return;
	b->last_pct = pct;
	char bar[41];
	int fill = pct * 40 / 100;
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[40] = '\0';
	double secs = (double)(th_now_ns() - b->started) / 1e9;
	double mb = (double)done / 1e6;
	fprintf(stderr, "\rverify [%s] %3d%% %.0f/%.0f MB %.0f MB/s", bar, pct, mb,
		(double)total / 1e6, secs > 0 ? mb / secs : 0.0);
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

static int cmd_verify(int argc, char **argv)
{
	const char *name = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-') {
			cli_error("chain verify: unknown option '%s'", argv[i]);
			return CLI_USAGE;
		} else if (!name)
			name = argv[i];
		else {
			cli_error("chain verify: one chain at most");
			return CLI_USAGE;
		}
	}
	thx_store *s;
	if (open_store(true, &s))
		return CLI_FAIL;
	thx_verify_report r;
	th_err err = { 0 };
	struct bar b = { th_now_ns(), -1 };
	uint64_t t0 = th_now_ns();
	int rc = thx_verify(s, name, cli_stderr_tty() && !json ? progress : NULL, &b, &r, &err);
	double secs = (double)(th_now_ns() - t0) / 1e9;
	thx_store_close(s);
	if (rc) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (json) {
		printf("{\"ok\":%s,\"chains\":%llu,\"events\":%llu,\"blocks\":%llu,\"pruned\":%llu,"
		       "\"bytes\":%llu,\"seconds\":%.3f",
		       r.ok ? "true" : "false", (unsigned long long)r.chains,
		       (unsigned long long)r.events, (unsigned long long)r.blocks,
		       (unsigned long long)r.pruned, (unsigned long long)r.bytes, secs);
		if (!r.ok) {
			printf(",\"error\":{\"chain\":");
			json_cstr(stdout, r.chain);
			printf(",\"seq\":%llu,\"file\":", (unsigned long long)r.seq);
			json_cstr(stdout, r.file);
			printf(",\"offset\":%llu,\"what\":", (unsigned long long)r.offset);
			json_cstr(stdout, r.what);
			printf("}");
		}
		printf("}\n");
	} else if (r.ok) {
		printf("ok: %llu chains, %llu events (%llu pruned), %llu blocks verified in %.2f s\n",
		       (unsigned long long)r.chains, (unsigned long long)r.events,
		       (unsigned long long)r.pruned, (unsigned long long)r.blocks, secs);
	} else {
		printf("FAILED: chain '%s' seq %llu%s%s%s: %s\n", r.chain,
		       (unsigned long long)r.seq, r.file[0] ? " at " : "", r.file,
		       r.file[0] ? "" : "", r.what);
		if (r.file[0])
			printf("  location: %s/%s offset %llu\n", chains_dir(), r.file,
			       (unsigned long long)r.offset);
	}
	return r.ok ? CLI_OK : CLI_FAIL;
}

/* ---- show ---- */

struct show {
	bool json, tty;
	size_t count;
};

static int show_one(const thx_event *ev, void *arg)
{
	struct show *sh = arg;
	char t[40], h[65], p[65];
	fmt_time(ev->timestamp_ns, t, sizeof t);
	hexs(ev->hash, 32, h);
	bool text = ev->data && is_text(ev->data, ev->len);
	if (sh->json) {
		printf("%s\n{\"seq\":%llu,\"timestamp_ns\":%llu,\"time\":\"%s\",\"type\":",
		       sh->count ? "," : "", (unsigned long long)ev->seq,
		       (unsigned long long)ev->timestamp_ns, t);
		json_cstr(stdout, ev->type);
		printf(",\"actor\":");
		json_cstr(stdout, ev->actor);
		printf(",\"hash\":\"%s\",\"parent\":", h);
		if (ev->has_parent) {
			hexs(ev->parent, 32, p);
			printf("\"%s\"", p);
		} else {
			printf("null");
		}
		printf(",\"pruned\":%s", ev->pruned ? "true" : "false");
		if (ev->damaged)
			printf(",\"damaged\":true");
		if (!ev->pruned && !ev->damaged) {
			printf(",\"len\":%zu,\"data_hex\":\"", ev->len);
			for (size_t i = 0; i < ev->len; i++)
				printf("%02x", ev->data[i]);
			printf("\"");
			if (text) {
				printf(",\"data_text\":");
				json_str(stdout, (const char *)ev->data, ev->len);
			}
			printf(",\"description\":");
			if (ev->description)
				json_cstr(stdout, ev->description);
			else
				printf("null");
		}
		printf("}");
	} else {
		char preview[61];
		size_t n = 0;
		if (ev->damaged) {
			n = (size_t)snprintf(preview, sizeof preview,
					     "(damaged: run 'theater chain verify')");
		} else if (ev->pruned) {
			n = (size_t)snprintf(preview, sizeof preview, "(pruned)");
		} else if (ev->description) {
			n = (size_t)snprintf(preview, sizeof preview, "%s", ev->description);
		} else if (text) {
			n = ev->len < 60 ? ev->len : 60;
			memcpy(preview, ev->data, n);
			preview[n] = '\0';
		} else {
			for (size_t i = 0; i < ev->len && n + 2 < 60; i++)
				n += (size_t)snprintf(preview + n, sizeof preview - n, "%02x",
						      ev->data[i]);
			preview[n] = '\0';
		}
		for (size_t i = 0; i < n; i++)
			if (preview[i] == '\n' || preview[i] == '\t')
				preview[i] = ' ';
		if (sh->tty) {
			h[12] = '\0';
			printf("%6llu  %s  %-28s %-16s %7zu  %s  %s\n",
			       (unsigned long long)ev->seq, t, ev->type, ev->actor, ev->len, h,
			       preview);
		} else {
			printf("%llu\t%s\t%s\t%s\t%zu\t%s\t%s\n", (unsigned long long)ev->seq, t,
			       ev->type, ev->actor, ev->len, h, preview);
		}
	}
	sh->count++;
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	const char *name = NULL;
	thx_query q = { 0 };
	struct show sh = { 0 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (!strcmp(a, "--json")) {
			sh.json = true;
		} else if (!strcmp(a, "--type") && has_val) {
			q.type = argv[++i];
		} else if (!strcmp(a, "--actor") && has_val) {
			q.actor = argv[++i];
		} else if ((!strcmp(a, "--since") || !strcmp(a, "--until")) && has_val) {
			uint64_t t;
			if (!cli_parse_time(argv[i + 1], &t)) {
				cli_error("chain show: bad time '%s' (try 2026-11-21T16:00:00Z, "
					  "2026-11-21, 10m or 2h)", argv[i + 1]);
				return CLI_USAGE;
			}
			if (!strcmp(a, "--since"))
				q.since_ns = t;
			else
				q.until_ns = t;
			i++;
		} else if (!strcmp(a, "--limit") && has_val) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(argv[++i], &end, 10);
			if (errno || *end || v == 0 || argv[i][0] == '-') {
				cli_error("chain show: bad --limit '%s' (a positive number)", argv[i]);
				return CLI_USAGE;
			}
			q.limit = (size_t)v;
		} else if (a[0] == '-') {
			cli_error("chain show: unknown or incomplete option '%s'", a);
			return CLI_USAGE;
		} else if (!name) {
			name = a;
		} else {
			cli_error("chain show: one chain at a time");
			return CLI_USAGE;
		}
	}
	if (!name) {
		cli_error("chain show: which chain? (see 'theater chain ls')");
		return CLI_USAGE;
	}
	thx_store *s;
	if (open_store(true, &s))
		return CLI_FAIL;
	thx_chain *c;
	th_err err = { 0 };
	if (thx_chain_open(s, name, NULL, false, &c, &err)) {
		cli_error("%s", err.msg);
		thx_store_close(s);
		return CLI_FAIL;
	}
	sh.tty = isatty(STDOUT_FILENO);
	if (sh.json) {
		printf("{\"chain\":");
		json_cstr(stdout, name);
		printf(",\"events\":[");
	} else if (sh.tty) {
		printf("%6s  %-24s  %-28s %-16s %7s  %-12s  %s\n", "SEQ", "TIME", "TYPE", "ACTOR",
		       "BYTES", "HASH", "DATA / DESCRIPTION");
	}
	int rc = thx_query_run(c, &q, show_one, &sh, &err);
	if (sh.json)
		printf("]}\n");
	thx_store_close(s);
	if (rc) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* ---- append (development) ---- */

struct app {
	thx_chain *c;
	const char *type, *actor;
	const uint8_t *data;
	size_t len;
	unsigned long long count;
	int rc;
	char msg[TH_ERR_MSG_MAX];
};

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void *app_main(void *arg)
{
	struct app *a = arg;
	thx_event_in in = { .actor = a->actor ? a->actor : thx_chain_name(a->c),
			    .type = a->type, .data = a->data, .len = a->len };
	for (unsigned long long i = 0; i < a->count; i++) {
		uint64_t seq;
		th_err err = { 0 };
		if ((a->rc = thx_append(a->c, &in, &seq, NULL, &err))) {
			snprintf(a->msg, sizeof a->msg, "%s", err.msg);
			break;
		}
		/* acknowledged: say so with one write(2), so a kill -9 right
		 * after cannot lose the line in a stdio buffer */
		char line[300];
		int n = snprintf(line, sizeof line, "%s %llu\n", thx_chain_name(a->c),
				 (unsigned long long)seq);
		pthread_mutex_lock(&out_mu);
		ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
		pthread_mutex_unlock(&out_mu);
		if (w != n) {
			a->rc = TH_EIO;
			snprintf(a->msg, sizeof a->msg, "writing to stdout: %s", strerror(errno));
			break;
		}
	}
	return NULL;
}

static int cmd_append(int argc, char **argv)
{
	const char *name = NULL, *type = "test.event", *actor = NULL, *data = NULL;
	unsigned long long count = 1, size = 0, threads = 1;
	bool shared = false;
	thx_chain_opts o = { .durability = THX_ALWAYS };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool v = i + 1 < argc;
		char *end;
		if (!strcmp(a, "--type") && v) {
			type = argv[++i];
		} else if (!strcmp(a, "--actor") && v) {
			actor = argv[++i];
		} else if (!strcmp(a, "--data") && v) {
			data = argv[++i];
		} else if (!strcmp(a, "--shared")) {
			shared = true;
		} else if ((!strcmp(a, "--count") || !strcmp(a, "--size") ||
			    !strcmp(a, "--threads")) && v) {
			errno = 0;
			unsigned long long x = strtoull(argv[++i], &end, 10);
			if (errno || *end || (strcmp(a, "--size") && x == 0) ||
			    (!strcmp(a, "--threads") && x > 64) ||
			    (!strcmp(a, "--size") && x > THX_DATA_MAX)) {
				cli_error("chain append: bad %s '%s'", a, argv[i]);
				return CLI_USAGE;
			}
			if (!strcmp(a, "--count"))
				count = x;
			else if (!strcmp(a, "--size"))
				size = x;
			else
				threads = x;
		} else if (!strcmp(a, "--durability") && v) {
			const char *d = argv[++i];
			if (!strcmp(d, "always"))
				o.durability = THX_ALWAYS;
			else if (!strcmp(d, "batch"))
				o.durability = THX_BATCH;
			else if (!strcmp(d, "none"))
				o.durability = THX_NONE;
			else {
				cli_error("chain append: durability is always, batch or none");
				return CLI_USAGE;
			}
		} else if (a[0] == '-') {
			cli_error("chain append: unknown or incomplete option '%s'", a);
			return CLI_USAGE;
		} else if (!name) {
			name = a;
		} else {
			cli_error("chain append: one chain name");
			return CLI_USAGE;
		}
	}
	if (!name) {
		cli_error("chain append: which chain?");
		return CLI_USAGE;
	}
	uint8_t *buf = NULL;
	size_t len = data ? strlen(data) : (size_t)size;
	if (!data && size) {
		buf = th_malloc((size_t)size);
		if (!buf) {
			cli_error("out of memory");
			return CLI_FAIL;
		}
		for (size_t i = 0; i < size; i++)
			buf[i] = (uint8_t)('a' + i % 26);
	}
	thx_store *s;
	if (open_store(false, &s)) {
		th_free(buf);
		return CLI_FAIL;
	}
	struct app apps[64];
	pthread_t th[64];
	int rc = CLI_OK;
	for (unsigned long long t = 0; t < threads; t++) {
		char nm[THX_NAME_MAX + 1];
		if (threads > 1 && !shared)
			snprintf(nm, sizeof nm, "%s-%llu", name, t);
		else
			snprintf(nm, sizeof nm, "%s", name);
		th_err err = { 0 };
		struct app *a = &apps[t];
		memset(a, 0, sizeof *a);
		if (thx_chain_open(s, nm, &o, true, &a->c, &err)) {
			cli_error("%s", err.msg);
			threads = t;
			rc = CLI_FAIL;
			break;
		}
		a->type = type;
		a->actor = actor;
		a->data = data ? (const uint8_t *)data : buf;
		a->len = len;
		a->count = count;
	}
	unsigned long long started = 0;
	for (; rc == CLI_OK && started < threads; started++)
		if (pthread_create(&th[started], NULL, app_main, &apps[started]) != 0) {
			cli_error("cannot start thread");
			rc = CLI_FAIL;
			break;
		}
	for (unsigned long long t = 0; t < started; t++) {
		pthread_join(th[t], NULL);
		if (apps[t].rc) {
			cli_error("append to %s: %s", thx_chain_name(apps[t].c), apps[t].msg);
			rc = CLI_FAIL;
		}
	}
	thx_store_close(s);
	th_free(buf);
	return rc;
}

int cli_chain(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		chain_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	if (!strcmp(argv[1], "export") || !strcmp(argv[1], "import") ||
	    !strcmp(argv[1], "prove") || !strcmp(argv[1], "check-proof"))
		return cli_chain_replay(argc - 1, argv + 1); /* cmd_replay.c */
	if (!strcmp(argv[1], "prune"))
		return cli_chain_prune(argc - 1, argv + 1); /* cmd_chain_prune.c */
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			chain_usage(stdout);
			return CLI_OK;
		}
	const char *sub = argv[1];
	if (!strcmp(sub, "ls"))
		return cmd_ls(argc - 1, argv + 1);
	if (!strcmp(sub, "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(sub, "show"))
		return cmd_show(argc - 1, argv + 1);
	if (!strcmp(sub, "append"))
		return cmd_append(argc - 1, argv + 1);
	cli_error("chain: unknown command '%s' (see 'theater chain --help')", sub);
	return CLI_USAGE;
}
