/*
 * cmd_remote.c - the commands that talk to a `theater server` through the
 * client library: the actor commands (start, stop, list, status, send,
 * request, events, state, inspect, tree, metrics), `store ...` and
 * `chain ...` when given --address, and shell completion scripts.
 *
 * Every command takes --address (default $THEATER_ADDRESS, else
 * tcp://127.0.0.1:9000), the TLS options and --json. Output: aligned
 * text (with a header row on a terminal), or one JSON document (JSON
 * lines when following events). Exit codes: 0 ok, 1 failure (the
 * server's error or the connection's), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "cli/cli.h"
#include "theater/client.h"

struct ropts {
	thcl_opts o;
	bool json;
	bool help;
	char addr[512];
};

/* Consumes a common option at argv[i]; returns how many args it took
 * (0: not a common option, -1: missing value). */
static int common_opt(struct ropts *r, int argc, char **argv, int i)
{
	const char *a = argv[i];
	const char *v = i + 1 < argc ? argv[i + 1] : NULL;
	if (!strcmp(a, "--json")) {
		r->json = true;
		return 1;
	}
	if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
		r->help = true;
		return 1;
	}
	const char **dst = !strcmp(a, "--address")    ? &r->o.address
			   : !strcmp(a, "--tls-ca")   ? &r->o.tls_ca
			   : !strcmp(a, "--tls-cert") ? &r->o.tls_cert
			   : !strcmp(a, "--tls-key")  ? &r->o.tls_key
			   : !strcmp(a, "--tls-name") ? &r->o.tls_name
						      : NULL;
	if (!dst)
		return 0;
	if (!v) {
		cli_error("%s needs a value", a);
		return -1;
	}
	*dst = v;
	return 2;
}

/* Splits argv into common options (into r) and the rest (positional and
 * command options, kept in order in rest[]). */
static int split_args(struct ropts *r, int argc, char **argv, char **rest, int *nrest)
{
	*nrest = 0;
	for (int i = 0; i < argc;) {
		int k = common_opt(r, argc, argv, i);
		if (k < 0)
			return CLI_USAGE;
		if (k == 0)
			rest[(*nrest)++] = argv[i++];
		else
			i += k;
	}
	if (!r->o.address) {
		const char *env = getenv("THEATER_ADDRESS");
		r->o.address = env && *env ? env : "tcp://127.0.0.1:9000";
	}
	return 0;
}

static int connect_or_fail(struct ropts *r, thcl **c)
{
	th_err err = { 0 };
	if (thcl_connect(&r->o, c, &err)) {
		cli_error("%s: %s", r->o.address, err.msg);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* ---- CBOR -> JSON / text ---- */

static void json_string(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\r')
			fputs("\\r", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static bool printable_utf8(const uint8_t *p, size_t n)
{
	size_t bad;
	if (!th_cbor_utf8_ok(p, n, &bad))
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

/* Bytes: a JSON string when they are printable UTF-8, else {"hex": ...}. */
static void json_bytes(FILE *f, const uint8_t *p, size_t n)
{
	if (printable_utf8(p, n)) {
		json_string(f, (const char *)p, n);
		return;
	}
	fputs("{\"hex\":\"", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
	fputs("\"}", f);
}

static int json_item(FILE *f, th_cbor_dec *d, int depth)
{
	if (depth > 60)
		return TH_EINVAL;
	int major = th_cbor_peek(d);
	uint64_t n;
	const uint8_t *p;
	const char *s;
	size_t len;
	switch (major) {
	case TH_CBOR_UINT:
		if (th_cbor_get_uint(d, &n, NULL))
			return TH_EINVAL;
		fprintf(f, "%" PRIu64, n);
		return 0;
	case TH_CBOR_NINT: {
		int64_t v;
		if (th_cbor_get_int(d, &v, NULL))
			return TH_EINVAL;
		fprintf(f, "%" PRId64, v);
		return 0;
	}
	case TH_CBOR_BYTES:
		if (th_cbor_get_bytes(d, &p, &len, NULL))
			return TH_EINVAL;
		json_bytes(f, p, len);
		return 0;
	case TH_CBOR_TEXT:
		if (th_cbor_get_text(d, &s, &len, NULL))
			return TH_EINVAL;
		json_string(f, s, len);
		return 0;
	case TH_CBOR_ARRAY:
		if (th_cbor_get_array(d, &n, NULL))
			return TH_EINVAL;
		fputc('[', f);
		for (uint64_t i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			if (json_item(f, d, depth + 1))
				return TH_EINVAL;
		}
		fputc(']', f);
		return 0;
	case TH_CBOR_MAP:
		if (th_cbor_get_map(d, &n, NULL))
			return TH_EINVAL;
		fputc('{', f);
		for (uint64_t i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			if (th_cbor_get_text(d, &s, &len, NULL))
				return TH_EINVAL;
			json_string(f, s, len);
			fputc(':', f);
			if (json_item(f, d, depth + 1))
				return TH_EINVAL;
		}
		fputc('}', f);
		return 0;
	default: {
		bool b;
		double v;
		if (th_cbor_get_null(d)) {
			fputs("null", f);
			return 0;
		}
		if (th_cbor_get_bool(d, &b, NULL) == 0) {
			fputs(b ? "true" : "false", f);
			return 0;
		}
		if (th_cbor_get_double(d, &v, NULL) == 0) {
			fprintf(f, "%.17g", v);
			return 0;
		}
		return TH_EINVAL;
	}
	}
}

static void print_json(const uint8_t *p, size_t n)
{
	th_cbor_dec d;
	th_cbor_dec_init(&d, p, n);
	if (json_item(stdout, &d, 0))
		fputs("null", stdout);
	fputc('\n', stdout);
}

/* ---- reading a response map ---- */

/* Find key in the map at d (d is not advanced). */
static bool get_key(const uint8_t *p, size_t n, const char *key, th_cbor_dec *out)
{
	th_cbor_dec d;
	uint64_t pairs;
	th_cbor_dec_init(&d, p, n);
	if (th_cbor_get_map(&d, &pairs, NULL))
		return false;
	size_t kl = strlen(key);
	for (uint64_t i = 0; i < pairs; i++) {
		const char *k;
		size_t kn;
		if (th_cbor_get_text(&d, &k, &kn, NULL))
			return false;
		size_t start = d.pos;
		if (th_cbor_skip(&d, NULL))
			return false;
		if (kn == kl && !memcmp(k, key, kl)) {
			th_cbor_dec_init(out, p + start, d.pos - start);
			return true;
		}
	}
	return false;
}

static const char *get_text(const uint8_t *p, size_t n, const char *key, char *buf,
			    size_t cap)
{
	th_cbor_dec d;
	const char *s;
	size_t len;
	buf[0] = 0;
	if (get_key(p, n, key, &d) && th_cbor_get_text(&d, &s, &len, NULL) == 0)
		snprintf(buf, cap, "%.*s", (int)len, s);
	return buf;
}

static uint64_t get_uint(const uint8_t *p, size_t n, const char *key, uint64_t def)
{
	th_cbor_dec d;
	uint64_t v;
	if (get_key(p, n, key, &d) && th_cbor_get_uint(&d, &v, NULL) == 0)
		return v;
	return def;
}

static bool get_bytes(const uint8_t *p, size_t n, const char *key, const uint8_t **out,
		      size_t *len)
{
	th_cbor_dec d;
	return get_key(p, n, key, &d) && th_cbor_get_bytes(&d, out, len, NULL) == 0;
}

/* ---- requests ---- */

/* A request under construction: {"op": op, ...}; keys in any order. */
struct req {
	th_cbor_enc e;
	size_t nkeys;
	th_cbor_enc keys;
};

static void req_init(struct req *r, const char *op)
{
	th_cbor_enc_init(&r->keys, NULL, 0);
	r->nkeys = 1;
	th_cbor_put_cstr(&r->keys, "op");
	th_cbor_put_cstr(&r->keys, op);
}

static void req_text(struct req *r, const char *k, const char *v)
{
	th_cbor_put_cstr(&r->keys, k);
	th_cbor_put_cstr(&r->keys, v);
	r->nkeys++;
}

static void req_uint(struct req *r, const char *k, uint64_t v)
{
	th_cbor_put_cstr(&r->keys, k);
	th_cbor_put_uint(&r->keys, v);
	r->nkeys++;
}

static void req_bool(struct req *r, const char *k, bool v)
{
	th_cbor_put_cstr(&r->keys, k);
	th_cbor_put_bool(&r->keys, v);
	r->nkeys++;
}

static void req_bytes(struct req *r, const char *k, const void *p, size_t n)
{
	th_cbor_put_cstr(&r->keys, k);
	th_cbor_put_bytes(&r->keys, p, n);
	r->nkeys++;
}

/* Finish into r->e (the map). Returns TH_ENOMEM on failure. */
static int req_done(struct req *r)
{
	th_cbor_enc_init(&r->e, NULL, 0);
	th_cbor_put_map(&r->e, r->nkeys);
	th_cbor_put_raw(&r->e, r->keys.buf, r->keys.len);
	int err = r->keys.err ? r->keys.err : r->e.err;
	th_cbor_enc_release(&r->keys);
	return err;
}

/* Send r and wait; on failure print the error. */
static int req_call(thcl *c, struct req *r, uint32_t timeout, uint8_t **resp, size_t *len)
{
	if (req_done(r)) {
		th_cbor_enc_release(&r->e);
		cli_error("out of memory");
		return CLI_FAIL;
	}
	th_err err = { 0 };
	int rc = thcl_call(c, r->e.buf, r->e.len, timeout, resp, len, &err);
	th_cbor_enc_release(&r->e);
	if (rc) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* Read MSG or @FILE into a new buffer. */
static int read_arg(const char *arg, uint8_t **out, size_t *len)
{
	if (arg[0] != '@') {
		*len = strlen(arg);
		*out = (uint8_t *)th_strdup(arg);
		return *out ? CLI_OK : CLI_FAIL;
	}
	const char *path = arg + 1;
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0) {
		cli_error("cannot open %s: %s", path, strerror(errno));
		return CLI_FAIL;
	}
	size_t cap = 4096, n = 0;
	uint8_t *b = th_malloc(cap);
	for (;;) {
		if (!b) {
			cli_error("out of memory reading %s", path);
			return CLI_FAIL;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_error("cannot read %s: %s", path, strerror(errno));
			th_free(b);
			if (fd != STDIN_FILENO)
				close(fd);
			return CLI_FAIL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			cap *= 2;
			uint8_t *nb = th_realloc(b, cap);
			if (!nb)
				th_free(b);
			b = nb;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	*out = b;
	*len = n;
	return CLI_OK;
}

static void print_bytes_raw(const uint8_t *p, size_t n)
{
	fwrite(p, 1, n, stdout);
	if (isatty(STDOUT_FILENO) && (n == 0 || p[n - 1] != '\n'))
		fputc('\n', stdout);
}

/* ---- events ---- */

static void fmt_time(uint64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t w = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + w, cap - w, ".%03uZ", (unsigned)(ns / 1000000u % 1000u));
}

static int json_item(FILE *f, th_cbor_dec *d, int depth);

static void preview(const uint8_t *p, size_t n, char *buf, size_t cap)
{
	if (!p) {
		snprintf(buf, cap, "-");
		return;
	}
	/* Event data are CBOR: show them as compact JSON when they parse. */
	th_cbor_dec d;
	th_cbor_dec_init(&d, p, n);
	if (n && th_cbor_skip(&d, NULL) == 0 && th_cbor_at_end(&d)) {
		FILE *m = fmemopen(buf, cap, "w");
		if (m) {
			setvbuf(m, NULL, _IONBF, 0);
			th_cbor_dec_init(&d, p, n);
			int rc = json_item(m, &d, 0);
			long w = ftell(m);
			fclose(m);
			if (rc == 0 && w >= 0 && (size_t)w < cap) {
				buf[w] = 0;
				return;
			}
			if (rc == 0 && cap > 4) {
				memcpy(buf + cap - 4, "...", 4);
				return;
			}
		}
	}
	if (printable_utf8(p, n)) {
		size_t k = 0;
		for (size_t i = 0; i < n && k + 4 < cap; i++)
			buf[k++] = (p[i] == '\n' || p[i] == '\t') ? ' ' : (char)p[i];
		if (n && k + 4 >= cap)
			memcpy(buf + k - 3, "...", 3);
		buf[k] = 0;
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < n && k + 8 < cap; i++)
		k += (size_t)snprintf(buf + k, cap - k, "%02x", p[i]);
	if (k + 8 >= cap)
		snprintf(buf + k, cap - k, "...");
	snprintf(buf + k, cap - k, "%s (%zu bytes)", k < 2 * n ? "..." : "", n);
}

/* One event as a JSON object (no newline): the same shape for events read
 * from history (events.get maps) and for live ones (subscriptions), so a
 * script sees one schema in `events --json` and `--follow --json`. */
static void json_event(const thcl_event *ev)
{
	printf("{\"seq\":%" PRIu64 ",\"ts\":%" PRIu64 ",\"type\":", ev->seq, ev->ts);
	json_string(stdout, ev->type, strlen(ev->type));
	if (ev->actor[0]) {
		fputs(",\"actor\":", stdout);
		json_string(stdout, ev->actor, strlen(ev->actor));
	}
	if (ev->data) {
		fputs(",\"data\":", stdout);
		json_bytes(stdout, ev->data, ev->len);
	}
	if (ev->desc) {
		fputs(",\"desc\":", stdout);
		json_string(stdout, ev->desc, strlen(ev->desc));
	}
	if (ev->pruned)
		fputs(",\"pruned\":true", stdout);
	fputs(",\"hash\":\"", stdout);
	for (int i = 0; i < 32; i++)
		printf("%02x", ev->hash[i]);
	fputs("\"}", stdout);
}

/* An events.get event map as JSON, through json_event. */
static void json_event_map(const uint8_t *p, size_t n)
{
	char type[300], actor[300], desc[1024];
	thcl_event ev;
	const uint8_t *h;
	size_t hl;
	th_cbor_dec d;
	memset(&ev, 0, sizeof ev);
	ev.seq = get_uint(p, n, "seq", 0);
	ev.ts = get_uint(p, n, "ts", 0);
	ev.type = get_text(p, n, "type", type, sizeof type);
	ev.actor = get_text(p, n, "actor", actor, sizeof actor);
	if (!get_bytes(p, n, "data", &ev.data, &ev.len))
		ev.data = NULL;
	if (get_key(p, n, "desc", &d))
		ev.desc = get_text(p, n, "desc", desc, sizeof desc);
	if (get_bytes(p, n, "hash", &h, &hl) && hl == sizeof ev.hash)
		memcpy(ev.hash, h, hl);
	if (get_key(p, n, "pruned", &d))
		(void)th_cbor_get_bool(&d, &ev.pruned, NULL);
	json_event(&ev);
}

/* One event map (CBOR) as a text line or a JSON line. */
static void print_event_map(const uint8_t *p, size_t n, bool json)
{
	if (json) {
		json_event_map(p, n);
		putchar('\n');
		return;
	}
	char type[300], when[64], data[100];
	const uint8_t *d = NULL;
	size_t dl = 0;
	get_text(p, n, "type", type, sizeof type);
	fmt_time(get_uint(p, n, "ts", 0), when, sizeof when);
	bool has = get_bytes(p, n, "data", &d, &dl);
	preview(has ? d : NULL, dl, data, sizeof data);
	printf("%6" PRIu64 "  %s  %-28s %s\n", get_uint(p, n, "seq", 0), when, type, data);
}

static void print_event(const thcl_event *ev, bool json)
{
	if (ev->gap) {
		if (json)
			printf("{\"gap\":{\"from\":%" PRIu64 ",\"to\":%" PRIu64 "}}\n", ev->gap_from,
			       ev->gap_to);
		else
			printf("-- missed events %" PRIu64 "..%" PRIu64
			       " (too far behind; 'theater events --from %" PRIu64 "' fetches them)\n",
			       ev->gap_from, ev->gap_to, ev->gap_from);
		return;
	}
	if (json) {
		json_event(ev);
		putchar('\n');
		return;
	}
	char when[64], data[100];
	fmt_time(ev->ts, when, sizeof when);
	preview(ev->data, ev->len, data, sizeof data);
	printf("%6" PRIu64 "  %s  %-28s %s\n", ev->seq, when, ev->type, data);
}

static volatile sig_atomic_t interrupted;

static void on_int(int sig)
{
	TH_UNUSED(sig);
	interrupted = 1;
}

/* Follow chain from seq: print every event (and gap notice) until
 * interrupted or the subscription ends. The client was connected with
 * reconnect on (follow_opts): a dropped connection is reconnected with
 * backoff and the session resumed, so the events continue from the next
 * sequence number, without a gap or a duplicate. */
static int follow(thcl *c, const char *chain, uint64_t from, const char *type, bool json)
{
	thcl_sub *s;
	th_err err = { 0 };
	if (thcl_subscribe(c, chain, &from, 256, 0, &s, &err)) {
		cli_error("subscribe to %s: %s", chain, err.msg);
		return CLI_FAIL;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_int;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = CLI_OK;
	while (!interrupted) {
		thcl_event ev;
		int r = thcl_sub_next(s, &ev, 200, &err);
		if (r == TH_ETIMEOUT)
			continue;
		if (r) {
			cli_error("%s: %s", chain, err.msg);
			rc = CLI_FAIL;
			break;
		}
		if (!ev.gap && type && strcmp(ev.type, type))
			continue;
		print_event(&ev, json);
		fflush(stdout);
	}
	thcl_sub_close(s);
	return rc;
}

static int parse_uint(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[strspn(s, " \t")] == '-') {
		cli_error("%s: '%s' is not a number (0 or more)", opt, s);
		return CLI_USAGE;
	}
	*out = v;
	return 0;
}

static const char events_usage[] =
	"usage: theater events ID [--follow] [--type T] [--since T] [--from SEQ]\n"
	"                         [--limit N] [--json] [--address A]\n"
	"Prints the events of actor ID (or of any chain). --follow keeps printing\n"
	"new ones (JSON lines with --json) until interrupted; a dropped connection\n"
	"is reconnected with backoff and the stream resumes where it stopped.\n"
	"--since takes the forms of 'theater chain show --since': 2026-11-21T16:00:00Z,\n"
	"2026-11-21, an age (30s, 10m, 2h, 3d) or nanoseconds since the epoch.\n";

static int cmd_events(struct ropts *r, int argc, char **argv)
{
	const char *id = NULL, *type = NULL;
	bool fol = false;
	uint64_t from = 0, limit = 0, since = 0;
	bool has_from = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--follow") || !strcmp(a, "-f")) {
			fol = true;
		} else if (!strcmp(a, "--type") && v) {
			type = v;
			i++;
		} else if (!strcmp(a, "--since") && v) {
			if (!cli_parse_time(v, &since)) {
				cli_error("--since: '%s' is not a time (try 2026-11-21T16:00:00Z, "
					  "2026-11-21, 10m or 2h)", v);
				return CLI_USAGE;
			}
			i++;
		} else if (!strcmp(a, "--from") && v) {
			if (parse_uint(a, v, &from))
				return CLI_USAGE;
			has_from = true;
			i++;
		} else if (!strcmp(a, "--limit") && v) {
			if (parse_uint(a, v, &limit))
				return CLI_USAGE;
			i++;
		} else if (a[0] == '-' || id) {
			cli_error("events: unexpected '%s' (see --help)", a);
			return CLI_USAGE;
		} else {
			id = a;
		}
	}
	if (r->help) {
		fputs(events_usage, stdout);
		return CLI_OK;
	}
	if (!id) {
		fputs(events_usage, stderr);
		return CLI_USAGE;
	}
	r->o.reconnect = fol;
	thcl *c;
	if (connect_or_fail(r, &c))
		return CLI_FAIL;
	int rc = CLI_OK;
	uint64_t next = from, shown = 0;
	bool first = true;
	if (r->json && !fol)
		fputc('[', stdout);
	/* History, page by page. */
	for (;;) {
		struct req q;
		req_init(&q, "events.get");
		req_text(&q, "chain", id);
		req_uint(&q, "from", next);
		if (type)
			req_text(&q, "type", type);
		if (since)
			req_uint(&q, "since", since);
		uint64_t want = limit ? limit - shown : 1000;
		req_uint(&q, "limit", want < 1000 ? want : 1000);
		uint8_t *resp;
		size_t len;
		if ((rc = req_call(c, &q, 0, &resp, &len)))
			break;
		th_cbor_dec d;
		uint64_t n = 0;
		uint64_t count = get_uint(resp, len, "count", 0);
		if (get_key(resp, len, "events", &d) && th_cbor_get_array(&d, &n, NULL) == 0) {
			for (uint64_t i = 0; i < n; i++) {
				size_t start = d.pos;
				if (th_cbor_skip(&d, NULL))
					break;
				const uint8_t *ev = d.p + start;
				size_t el = d.pos - start;
				if (r->json && !fol) {
					if (!first)
						fputc(',', stdout);
					json_event_map(ev, el);
				} else {
					print_event_map(ev, el, r->json);
				}
				first = false;
				next = get_uint(ev, el, "seq", next) + 1;
				shown++;
			}
		}
		uint64_t more = get_uint(resp, len, "next", UINT64_MAX);
		thcl_free(resp);
		if (more != UINT64_MAX)
			next = more;
		if ((limit && shown >= limit) || n == 0 || (more == UINT64_MAX && (n < want || next >= count)))
			break;
	}
	if (r->json && !fol)
		fputs("]\n", stdout);
	if (rc == CLI_OK && fol) {
		/* Whatever was filtered out above, follow from the chain's end
		 * of what was read. */
		if (!has_from && !shown && type)
			next = 0;
		fflush(stdout);
		rc = follow(c, id, next, type, r->json);
	}
	thcl_close(c);
	return rc;
}

/* ---- actor commands ---- */

static const char start_usage[] =
	"usage: theater start MANIFEST [--state JSON|@FILE] [--parent ID] [--subscribe] [--json]\n"
	"Starts an actor from a manifest file on the server; prints its id.\n"
	"--parent makes it a child of actor ID (its supervision tree, permissions\n"
	"never wider than the parent's); --subscribe then prints its events until\n"
	"interrupted (reconnecting and resuming if the connection drops).\n"
	"--state JSON must be one JSON document; --state @FILE sends the file's\n"
	"bytes as they are. Errors in the manifest name MANIFEST:LINE:COL.\n";

static int cmd_start(struct ropts *r, int argc, char **argv)
{
	const char *path = NULL, *state = NULL, *parent = NULL;
	bool sub = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(argv[i], "--parent") && i + 1 < argc)
			parent = argv[++i];
		else if (!strcmp(argv[i], "--subscribe"))
			sub = true;
		else if (argv[i][0] == '-' || path) {
			cli_error("start: unexpected '%s' (see --help)", argv[i]);
			return CLI_USAGE;
		} else
			path = argv[i];
	}
	if (r->help) {
		fputs(start_usage, stdout);
		return CLI_OK;
	}
	if (!path) {
		fputs(start_usage, stderr);
		return CLI_USAGE;
	}
	if (state && state[0] != '@') {
		size_t at;
		const char *what;
		if (!cli_json_check(state, strlen(state), &at, &what)) {
			cli_error("--state: not JSON: %s at byte %zu of '%s' (use @FILE for "
				  "other bytes)", what, at, state);
			return CLI_USAGE;
		}
	}
	uint8_t *text = NULL, *st = NULL;
	size_t tl = 0, sl = 0;
	char at[PATH_MAX + 2];
	snprintf(at, sizeof at, "@%s", path);
	if (read_arg(at, &text, &tl))
		return CLI_FAIL;
	if (state && read_arg(state, &st, &sl)) {
		th_free(text);
		return CLI_FAIL;
	}
	char real[PATH_MAX], shown[PATH_MAX];
	char dir[PATH_MAX] = ".";
	/* The absolute name goes with the text ("path"): the server's
	 * messages and the actor.spawning event name the file. */
	snprintf(shown, sizeof shown, "%s", path);
	if (realpath(path, real)) {
		snprintf(shown, sizeof shown, "%s", real);
		snprintf(dir, sizeof dir, "%s", dirname(real));
	}
	r->o.reconnect = sub;
	thcl *c;
	if (connect_or_fail(r, &c)) {
		th_free(text);
		th_free(st);
		return CLI_FAIL;
	}
	struct req q;
	req_init(&q, "actor.start");
	req_bytes(&q, "manifest", text, tl);
	req_text(&q, "path", shown);
	req_text(&q, "base_dir", dir);
	if (st)
		req_bytes(&q, "state", st, sl);
	if (parent)
		req_text(&q, "parent", parent);
	th_free(text);
	th_free(st);
	uint8_t *resp;
	size_t len;
	int rc = req_call(c, &q, 0, &resp, &len);
	if (rc == CLI_OK) {
		char id[128];
		get_text(resp, len, "id", id, sizeof id);
		if (r->json)
			print_json(resp, len);
		else
			printf("%s\n", id);
		fflush(stdout);
		thcl_free(resp);
		if (sub)
			rc = follow(c, id, 0, NULL, r->json);
	}
	thcl_close(c);
	return rc;
}

/* Commands of the form OP ID [MSG|@FILE]. */
static int cmd_simple(struct ropts *r, int argc, char **argv, const char *op,
		      bool takes_msg, const char *usage)
{
	const char *id = NULL, *msg = NULL;
	uint64_t timeout = 0;
	bool wait = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if (parse_uint("--timeout", argv[++i], &timeout))
				return CLI_USAGE;
		} else if (!strcmp(argv[i], "--wait") && takes_msg) {
			wait = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			cli_error("%s: unexpected '%s' (see --help)", argv[0], argv[i]);
			return CLI_USAGE;
		} else if (!id) {
			id = argv[i];
		} else if (takes_msg && !msg) {
			msg = argv[i];
		} else {
			cli_error("%s: unexpected '%s' (see --help)", argv[0], argv[i]);
			return CLI_USAGE;
		}
	}
	if (r->help) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (!id || (takes_msg && !msg)) {
		fputs(usage, stderr);
		return CLI_USAGE;
	}
	uint8_t *m = NULL;
	size_t ml = 0;
	if (msg && read_arg(msg, &m, &ml))
		return CLI_FAIL;
	thcl *c;
	if (connect_or_fail(r, &c)) {
		th_free(m);
		return CLI_FAIL;
	}
	struct req q;
	req_init(&q, op);
	req_text(&q, "id", id);
	if (m)
		req_bytes(&q, "msg", m, ml);
	if (timeout)
		req_uint(&q, "timeout_ms", timeout);
	if (wait)
		req_bool(&q, "wait", true);
	th_free(m);
	uint8_t *resp;
	size_t len;
	int rc = req_call(c, &q, timeout ? (uint32_t)timeout + 5000 : 0, &resp, &len);
	if (rc == CLI_OK) {
		const uint8_t *b;
		size_t bl;
		th_cbor_dec d;
		if (r->json)
			print_json(resp, len);
		else if (get_bytes(resp, len, "reply", &b, &bl))
			print_bytes_raw(b, bl);
		else if (get_key(resp, len, "manifest", &d)) {
			const char *t;
			if (th_cbor_get_text(&d, &t, &bl, NULL) == 0)
				fwrite(t, 1, bl, stdout);
		} else if (get_key(resp, len, "state", &d)) {
			if (th_cbor_get_bytes(&d, &b, &bl, NULL) == 0)
				print_bytes_raw(b, bl);
			else if (isatty(STDOUT_FILENO))
				printf("(no state)\n");
		}
		thcl_free(resp);
	}
	thcl_close(c);
	return rc;
}

static void print_actor_line(const uint8_t *p, size_t n)
{
	char id[64], name[130], status[20], reason[260];
	printf("%-36s  %-20s %-9s %8" PRIu64 " %6" PRIu64 "  %s\n",
	       get_text(p, n, "id", id, sizeof id), get_text(p, n, "name", name, sizeof name),
	       get_text(p, n, "status", status, sizeof status), get_uint(p, n, "messages", 0),
	       get_uint(p, n, "queued", 0), get_text(p, n, "reason", reason, sizeof reason));
}

static int cmd_list(struct ropts *r, int argc, char **argv)
{
	if (r->help || argc > 1) {
		fputs("usage: theater list [--json]\nLists the server's actors.\n",
		      r->help ? stdout : stderr);
		TH_UNUSED(argv);
		return r->help ? CLI_OK : CLI_USAGE;
	}
	thcl *c;
	if (connect_or_fail(r, &c))
		return CLI_FAIL;
	struct req q;
	req_init(&q, "actor.list");
	uint8_t *resp;
	size_t len;
	int rc = req_call(c, &q, 0, &resp, &len);
	if (rc == CLI_OK) {
		if (r->json) {
			print_json(resp, len);
		} else {
			if (isatty(STDOUT_FILENO))
				printf("%-36s  %-20s %-9s %8s %6s  %s\n", "ID", "NAME", "STATUS",
				       "MESSAGES", "QUEUED", "REASON");
			th_cbor_dec d;
			uint64_t n;
			if (get_key(resp, len, "actors", &d) && th_cbor_get_array(&d, &n, NULL) == 0)
				for (uint64_t i = 0; i < n; i++) {
					size_t s = d.pos;
					if (th_cbor_skip(&d, NULL))
						break;
					print_actor_line(d.p + s, d.pos - s);
				}
		}
		thcl_free(resp);
	}
	thcl_close(c);
	return rc;
}

static int cmd_status(struct ropts *r, int argc, char **argv, bool inspect)
{
	const char *usage = inspect
		? "usage: theater inspect ID [--json]\nStatus, state and the last events of an actor.\n"
		: "usage: theater status ID [--json]\n";
	if (r->help) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return CLI_USAGE;
	}
	const char *id = argv[1];
	thcl *c;
	if (connect_or_fail(r, &c))
		return CLI_FAIL;
	struct req q;
	req_init(&q, "actor.status");
	req_text(&q, "id", id);
	uint8_t *resp;
	size_t len;
	int rc = req_call(c, &q, 0, &resp, &len);
	if (rc != CLI_OK) {
		thcl_close(c);
		return rc;
	}
	uint8_t *st = NULL, *evs = NULL;
	size_t sl = 0, el = 0;
	if (inspect) {
		th_err err = { 0 };
		req_init(&q, "actor.state");
		req_text(&q, "id", id);
		if (req_done(&q) == 0 && thcl_call(c, q.e.buf, q.e.len, 0, &st, &sl, &err) != 0)
			st = NULL;
		th_cbor_enc_release(&q.e);
		req_init(&q, "events.get");
		req_text(&q, "chain", id);
		req_uint(&q, "limit", 1000000);
		if (req_done(&q) == 0 && thcl_call(c, q.e.buf, q.e.len, 0, &evs, &el, &err) != 0)
			evs = NULL;
		th_cbor_enc_release(&q.e);
	}
	if (r->json) {
		if (!inspect) {
			print_json(resp, len);
		} else {
			fputs("{\"status\":", stdout);
			th_cbor_dec d;
			th_cbor_dec_init(&d, resp, len);
			(void)json_item(stdout, &d, 0);
			fputs(",\"state\":", stdout);
			if (st && get_key(st, sl, "state", &d))
				(void)json_item(stdout, &d, 0);
			else
				fputs("null", stdout);
			fputs(",\"events\":", stdout);
			if (evs && get_key(evs, el, "events", &d))
				(void)json_item(stdout, &d, 0);
			else
				fputs("[]", stdout);
			fputs("}\n", stdout);
		}
	} else {
		char b[300];
		printf("id:         %s\n", get_text(resp, len, "id", b, sizeof b));
		printf("name:       %s\n", get_text(resp, len, "name", b, sizeof b));
		printf("status:     %s\n", get_text(resp, len, "status", b, sizeof b));
		printf("parent:     %s\n", get_text(resp, len, "parent", b, sizeof b)[0] ? b : "-");
		printf("component:  %s\n", get_text(resp, len, "component", b, sizeof b));
		printf("messages:   %" PRIu64 "\n", get_uint(resp, len, "messages", 0));
		printf("queued:     %" PRIu64 "\n", get_uint(resp, len, "queued", 0));
		printf("children:   %" PRIu64 "\n", get_uint(resp, len, "children", 0));
		if (get_text(resp, len, "circuit", b, sizeof b)[0])
			printf("restarts:   %" PRIu64 "\ncircuit:    %s\n",
			       get_uint(resp, len, "restarts", 0), b);
		if (get_text(resp, len, "reason", b, sizeof b)[0])
			printf("reason:     %s\n", b);
		if (inspect) {
			const uint8_t *sb;
			size_t sbl;
			char pv[100];
			if (st && get_bytes(st, sl, "state", &sb, &sbl)) {
				preview(sb, sbl, pv, sizeof pv);
				printf("state:      %s\n", pv);
			} else {
				printf("state:      (none)\n");
			}
			th_cbor_dec d;
			uint64_t n;
			if (evs && get_key(evs, el, "events", &d) &&
			    th_cbor_get_array(&d, &n, NULL) == 0) {
				printf("events:     %" PRIu64 " (last 10 below)\n", n);
				for (uint64_t i = 0; i < n; i++) {
					size_t s = d.pos;
					if (th_cbor_skip(&d, NULL))
						break;
					if (i + 10 >= n)
						print_event_map(d.p + s, d.pos - s, false);
				}
			}
		}
	}
	thcl_free(resp);
	thcl_free(st);
	thcl_free(evs);
	thcl_close(c);
	return rc;
}

static void print_tree(th_cbor_dec *d, int depth)
{
	uint64_t n;
	if (th_cbor_get_array(d, &n, NULL))
		return;
	for (uint64_t i = 0; i < n; i++) {
		size_t s = d->pos;
		if (th_cbor_skip(d, NULL))
			return;
		const uint8_t *p = d->p + s;
		size_t len = d->pos - s;
		char id[64], name[130], status[20], circuit[16];
		printf("%*s%s %s (%s)", depth * 2, "", get_text(p, len, "id", id, sizeof id),
		       get_text(p, len, "name", name, sizeof name),
		       get_text(p, len, "status", status, sizeof status));
		if (get_text(p, len, "circuit", circuit, sizeof circuit)[0])
			printf("  restarts=%" PRIu64 "  circuit=%s",
			       get_uint(p, len, "restarts", 0), circuit);
		putchar('\n');
		th_cbor_dec kids;
		if (get_key(p, len, "children", &kids))
			print_tree(&kids, depth + 1);
	}
}

/* metrics as text: one "group.name value" line per counter. */
static void print_metrics(const uint8_t *p, size_t n)
{
	th_cbor_dec d;
	uint64_t groups, k;
	th_cbor_dec_init(&d, p, n);
	if (th_cbor_get_map(&d, &groups, NULL))
		return;
	for (uint64_t g = 0; g < groups; g++) {
		const char *gs, *ks;
		size_t gl, kl;
		uint64_t v;
		if (th_cbor_get_text(&d, &gs, &gl, NULL))
			return;
		if (th_cbor_get_map(&d, &k, NULL)) {
			if (th_cbor_skip(&d, NULL))
				return;
			continue;
		}
		for (uint64_t i = 0; i < k; i++) {
			if (th_cbor_get_text(&d, &ks, &kl, NULL))
				return;
			if (th_cbor_get_uint(&d, &v, NULL) == 0)
				printf("%.*s.%.*s %" PRIu64 "\n", (int)gl, gs, (int)kl, ks, v);
			else if (th_cbor_skip(&d, NULL))
				return;
		}
	}
}

static int cmd_noarg(struct ropts *r, int argc, const char *op, const char *usage)
{
	if (r->help || argc > 1) {
		fputs(usage, r->help ? stdout : stderr);
		return r->help ? CLI_OK : CLI_USAGE;
	}
	thcl *c;
	if (connect_or_fail(r, &c))
		return CLI_FAIL;
	struct req q;
	req_init(&q, op);
	uint8_t *resp;
	size_t len;
	int rc = req_call(c, &q, 0, &resp, &len);
	if (rc == CLI_OK) {
		th_cbor_dec d;
		if (r->json)
			print_json(resp, len);
		else if (!strcmp(op, "metrics"))
			print_metrics(resp, len);
		else if (get_key(resp, len, "tree", &d))
			print_tree(&d, 0);
		thcl_free(resp);
	}
	thcl_close(c);
	return rc;
}

/* ---- store and chain through the server ---- */

struct progress {
	bool on;
	int last;
	const char *what;
};

static void progress_cb(void *ud, uint64_t done, uint64_t total)
{
	struct progress *p = ud;
	if (!p->on || !total)
		return;
	int pm = (int)(done * 1000 / total);
	if (pm == p->last)
		return;
	p->last = pm;
	char bar[41];
	for (int i = 0; i < 40; i++)
		bar[i] = i < pm * 40 / 1000 ? '#' : ' ';
	bar[40] = 0;
	fprintf(stderr, "\r%s [%s] %3d%% %" PRIu64 "/%" PRIu64 " MiB", p->what, bar, pm / 10,
		done >> 20, total >> 20);
	if (done >= total)
		fputc('\n', stderr);
}

struct dl {
	int fd;
	uint64_t done, total;
	struct progress p;
};

static int dl_data(void *ud, const uint8_t *p, size_t n)
{
	struct dl *d = ud;
	while (n) {
		ssize_t w = write(d->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
		d->done += (uint64_t)w;
	}
	progress_cb(&d->p, d->done, d->total);
	return 0;
}

/* Progress bars only on a terminal, and only for long transfers. */
static bool progress_wanted(uint64_t total)
{
	return cli_stderr_tty() && total >= (16u << 20);
}

static const char rstore_usage[] =
	"usage: theater store <command> --address A [--store ID] [--json]\n"
	"Through a server:\n"
	"  put FILE|- [--label NAME]   store content; prints its hash\n"
	"  get HASH | --label NAME     write the content to stdout (or -o FILE)\n"
	"  label NAME HASH [--expect OLD|none]\n"
	"                              point a label at a hash (with --expect: only\n"
	"                              if it points at OLD now, or does not exist)\n"
	"  ls                          list labels (NAME HASH)\n"
	"  rm-label NAME               remove a label\n"
	"  new                         create a named store; prints its id\n"
	"  gc [--grace SECS]           delete content no label refers to\n"
	"  verify                      re-hash everything; lists bad objects\n";

static int remote_store(struct ropts *r, int argc, char **argv)
{
	const char *store = NULL, *label = NULL, *out = NULL, *expect = NULL;
	const char *pos[3];
	int np = 0;
	uint64_t grace = 3600;
	bool has_grace = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--expect") && v) {
			expect = v;
			i++;
		} else if (!strcmp(a, "--grace") && v) {
			if (parse_uint(a, v, &grace))
				return CLI_USAGE;
			has_grace = true;
			i++;
		} else if (!strcmp(a, "--store") && v) {
			store = v;
			i++;
		} else if (!strcmp(a, "--label") && v) {
			label = v;
			i++;
		} else if (!strcmp(a, "-o") && v) {
			out = v;
			i++;
		} else if ((a[0] == '-' && a[1]) || np == 3) {
			cli_error("store: unexpected '%s' (see --help)", a);
			return CLI_USAGE;
		} else {
			pos[np++] = a;
		}
	}
	if (r->help || np == 0) {
		fputs(rstore_usage, r->help ? stdout : stderr);
		return r->help ? CLI_OK : CLI_USAGE;
	}
	const char *sub = pos[0];
	int want = !strcmp(sub, "put") ? 2 : !strcmp(sub, "get") ? (label ? 1 : 2)
		   : !strcmp(sub, "label") ? 3 : !strcmp(sub, "ls") ? 1
		   : !strcmp(sub, "rm-label") ? 2 : !strcmp(sub, "new") ? 1
		   : !strcmp(sub, "gc") ? 1 : !strcmp(sub, "verify") ? 1 : -1;
	if (want < 0) {
		cli_error("store: unknown command '%s' (see 'theater store --help --address A')",
			  sub);
		return CLI_USAGE;
	}
	if ((expect && strcmp(sub, "label")) || (has_grace && strcmp(sub, "gc"))) {
		cli_error("store %s: %s applies to %s only", sub, expect ? "--expect" : "--grace",
			  expect ? "label" : "gc");
		return CLI_USAGE;
	}
	if (np != want) {
		fputs(rstore_usage, stderr);
		return CLI_USAGE;
	}
	thcl *c;
	if (connect_or_fail(r, &c))
		return CLI_FAIL;
	struct req q;
	uint8_t *resp = NULL;
	size_t len = 0;
	int rc = CLI_OK;
	th_err err = { 0 };
	char buf[300];
	if (!strcmp(sub, "put")) {
		int fd = STDIN_FILENO;
		uint64_t total = 0;
		if (strcmp(pos[1], "-")) {
			fd = open(pos[1], O_RDONLY | O_CLOEXEC);
			struct stat sb;
			if (fd < 0 || fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
				cli_error("cannot read %s: %s", pos[1],
					  fd < 0 ? strerror(errno) : "it is a directory");
				if (fd >= 0)
					close(fd);
				thcl_close(c);
				return CLI_FAIL;
			}
			total = (uint64_t)sb.st_size;
		}
		req_init(&q, "store.put");
		if (store)
			req_text(&q, "store", store);
		if (label)
			req_text(&q, "label", label);
		struct progress p = { progress_wanted(total), -1, "put" };
		if (req_done(&q) == 0 &&
		    thcl_call_upload(c, q.e.buf, q.e.len, fd, total, progress_cb, &p, &resp, &len,
				     &err) != 0) {
			cli_error("put %s: %s", pos[1], err.msg);
			rc = CLI_FAIL;
		}
		th_cbor_enc_release(&q.e);
		if (fd != STDIN_FILENO)
			close(fd);
		if (rc == CLI_OK) {
			if (r->json)
				print_json(resp, len);
			else
				printf("%s\n", get_text(resp, len, "hash", buf, sizeof buf));
		}
	} else if (!strcmp(sub, "get")) {
		req_init(&q, "store.get");
		if (store)
			req_text(&q, "store", store);
		if (label)
			req_text(&q, "label", label);
		else
			req_text(&q, "hash", pos[1]);
		struct dl d = { STDOUT_FILENO, 0, 0, { false, -1, "get" } };
		if (cli_stderr_tty()) {
			/* The size first (store.stat), for the progress bar. */
			struct req sq;
			uint8_t *sr;
			size_t sn;
			req_init(&sq, "store.stat");
			if (store)
				req_text(&sq, "store", store);
			if (label)
				req_text(&sq, "label", label);
			else
				req_text(&sq, "hash", pos[1]);
			if (req_done(&sq) == 0 &&
			    thcl_call(c, sq.e.buf, sq.e.len, 0, &sr, &sn, &err) == 0) {
				d.total = get_uint(sr, sn, "size", 0);
				d.p.on = progress_wanted(d.total);
				thcl_free(sr);
			}
			th_cbor_enc_release(&sq.e);
		}
		if (out && (d.fd = open(out, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
			cli_error("cannot create %s: %s", out, strerror(errno));
			thcl_close(c);
			return CLI_FAIL;
		}
		if (req_done(&q) == 0 &&
		    thcl_call_download(c, q.e.buf, q.e.len, dl_data, &d, &resp, &len, &err) != 0) {
			cli_error("get: %s", err.msg);
			rc = CLI_FAIL;
		}
		th_cbor_enc_release(&q.e);
		const uint8_t *b;
		size_t bl;
		if (rc == CLI_OK && get_bytes(resp, len, "data", &b, &bl) && dl_data(&d, b, bl)) {
			cli_error("write: %s", strerror(errno));
			rc = CLI_FAIL;
		}
		if (out)
			close(d.fd);
	} else {
		if (!strcmp(sub, "label")) {
			req_init(&q, "store.label");
			req_text(&q, "label", pos[1]);
			req_text(&q, "hash", pos[2]);
			if (expect)
				req_text(&q, "expect", expect);
		} else if (!strcmp(sub, "gc")) {
			req_init(&q, "store.gc");
			req_uint(&q, "grace_s", grace);
		} else if (!strcmp(sub, "verify")) {
			req_init(&q, "store.verify");
		} else if (!strcmp(sub, "ls")) {
			req_init(&q, "store.labels");
		} else if (!strcmp(sub, "rm-label")) {
			req_init(&q, "store.unlabel");
			req_text(&q, "label", pos[1]);
		} else {
			req_init(&q, "store.new");
		}
		if (store && strcmp(sub, "new") && strcmp(sub, "gc") && strcmp(sub, "verify"))
			req_text(&q, "store", store);
		/* gc and verify read the whole store: no 60 s default limit. */
		bool whole = !strcmp(sub, "gc") || !strcmp(sub, "verify");
		rc = req_call(c, &q, whole ? 24u * 3600 * 1000 : 0, &resp, &len);
		if (rc == CLI_OK) {
			th_cbor_dec vd;
			bool ok = true;
			if (!strcmp(sub, "verify") && get_key(resp, len, "ok", &vd))
				(void)th_cbor_get_bool(&vd, &ok, NULL);
			if (!ok)
				rc = CLI_FAIL;
			if (r->json) {
				print_json(resp, len);
			} else if (!strcmp(sub, "gc")) {
				printf("gc: %" PRIu64 " objects, %" PRIu64 " live, removed %" PRIu64
				       " (%" PRIu64 " bytes) and %" PRIu64 " temporary files\n",
				       get_uint(resp, len, "objects", 0), get_uint(resp, len, "live", 0),
				       get_uint(resp, len, "removed", 0),
				       get_uint(resp, len, "removed_bytes", 0),
				       get_uint(resp, len, "tmp_removed", 0));
				if (get_uint(resp, len, "missing", 0))
					printf("gc: %" PRIu64 " referenced objects are missing "
					       "(run 'theater store verify')\n",
					       get_uint(resp, len, "missing", 0));
			} else if (!strcmp(sub, "verify")) {
				uint64_t n, bad = get_uint(resp, len, "bad", 0);
				if (get_key(resp, len, "problems", &vd) &&
				    th_cbor_get_array(&vd, &n, NULL) == 0)
					for (uint64_t i = 0; i < n; i++) {
						size_t s = vd.pos;
						if (th_cbor_skip(&vd, NULL))
							break;
						char what[400];
						printf("BAD %s: %s\n",
						       get_text(vd.p + s, vd.pos - s, "path", buf, sizeof buf),
						       get_text(vd.p + s, vd.pos - s, "problem", what,
								sizeof what));
					}
				printf("verify: %" PRIu64 " objects, %" PRIu64 " bytes, %" PRIu64
				       " problem%s\n",
				       get_uint(resp, len, "objects", 0), get_uint(resp, len, "bytes", 0),
				       bad, bad == 1 ? "" : "s");
			} else if (!strcmp(sub, "ls")) {
				th_cbor_dec d;
				uint64_t n;
				if (get_key(resp, len, "labels", &d) &&
				    th_cbor_get_array(&d, &n, NULL) == 0)
					for (uint64_t i = 0; i < n; i++) {
						size_t s = d.pos;
						if (th_cbor_skip(&d, NULL))
							break;
						char h[80];
						printf("%s %s\n",
						       get_text(d.p + s, d.pos - s, "name", buf, sizeof buf),
						       get_text(d.p + s, d.pos - s, "hash", h, sizeof h));
					}
			} else if (!strcmp(sub, "new")) {
				printf("%s\n", get_text(resp, len, "id", buf, sizeof buf));
			}
		}
	}
	thcl_free(resp);
	thcl_close(c);
	return rc;
}

static const char rchain_usage[] =
	"usage: theater chain <command> --address A [--json]\n"
	"Through a server:\n"
	"  ls                 chains with their event counts and head hashes\n"
	"  verify [CHAIN]     recompute every hash, link and Merkle root\n"
	"  show CHAIN [--type T] [--limit N]   print events (see 'theater events')\n";

static int remote_chain(struct ropts *r, int argc, char **argv)
{
	if (r->help || argc < 2) {
		fputs(rchain_usage, r->help ? stdout : stderr);
		return r->help ? CLI_OK : CLI_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "show")) {
		static char events[] = "events";
		argv[1] = events;
		return cmd_events(r, argc - 1, argv + 1);
	}
	if (strcmp(sub, "ls") && strcmp(sub, "verify")) {
		cli_error("chain %s: not available through a server (ls, verify, show are)", sub);
		return CLI_USAGE;
	}
	if ((!strcmp(sub, "ls") && argc != 2) || argc > 3) {
		fputs(rchain_usage, stderr);
		return CLI_USAGE;
	}
	thcl *c;
	if (connect_or_fail(r, &c))
		return CLI_FAIL;
	struct req q;
	req_init(&q, !strcmp(sub, "ls") ? "chain.list" : "chain.verify");
	if (argc == 3)
		req_text(&q, "chain", argv[2]);
	uint8_t *resp;
	size_t len;
	int rc = req_call(c, &q, 0, &resp, &len);
	if (rc == CLI_OK) {
		th_cbor_dec d;
		bool ok = true;
		if (!strcmp(sub, "verify") && get_key(resp, len, "ok", &d))
			(void)th_cbor_get_bool(&d, &ok, NULL);
		if (r->json) {
			print_json(resp, len);
		} else if (!strcmp(sub, "ls")) {
			uint64_t n;
			if (get_key(resp, len, "chains", &d) && th_cbor_get_array(&d, &n, NULL) == 0)
				for (uint64_t i = 0; i < n; i++) {
					size_t s = d.pos;
					if (th_cbor_skip(&d, NULL))
						break;
					char name[300], head[80];
					const uint8_t *p = d.p + s;
					size_t pl = d.pos - s;
					printf("%-40s %8" PRIu64 "  %s\n",
					       get_text(p, pl, "name", name, sizeof name),
					       get_uint(p, pl, "events", 0),
					       get_text(p, pl, "head", head, sizeof head)[0] ? head : "-");
				}
		} else {
			printf("%s: %" PRIu64 " chains, %" PRIu64 " events, %" PRIu64 " blocks\n",
			       ok ? "ok" : "DAMAGED", get_uint(resp, len, "chains", 0),
			       get_uint(resp, len, "events", 0), get_uint(resp, len, "blocks", 0));
			th_cbor_dec pd;
			if (!ok && get_key(resp, len, "problem", &pd)) {
				fputs("problem: ", stdout);
				(void)json_item(stdout, &pd, 0);
				fputc('\n', stdout);
			}
		}
		if (!ok)
			rc = CLI_FAIL;
		thcl_free(resp);
	}
	thcl_close(c);
	return rc;
}

/* ---- channels ---- */

static const char channel_usage[] =
	"usage: theater channel open ID [FIRST-MSG] [--address A] [--json]\n"
	"Opens a channel to actor ID and stays in it (interactive): each line read\n"
	"from stdin is sent on it as one message (channel send), each message from\n"
	"the actor is printed as one line (JSON lines with --json), and the end of\n"
	"input closes it (channel close). A channel belongs to the connection that\n"
	"opened it and ends with it, so there is no separate 'channel send' or\n"
	"'channel close' command: pipe or type into 'channel open'.\n"
	"  e.g.  printf 'a\\nb\\n' | theater channel open ID\n";

struct chan_reader {
	thcl_chan *ch;
	bool json;
	int rc;
};

static void *chan_reader_main(void *arg)
{
	struct chan_reader *r = arg;
	for (;;) {
		uint8_t *m;
		size_t n;
		th_err err = { 0 };
		int rc = thcl_channel_recv(r->ch, &m, &n, -1, &err);
		if (rc) {
			if (rc != TH_ESTATE) {
				cli_error("channel: %s", err.msg);
				r->rc = CLI_FAIL;
			} else if (!r->json) {
				fprintf(stderr, "theater: %s\n", err.msg);
			}
			return NULL;
		}
		if (r->json) {
			json_bytes(stdout, m, n);
			fputc('\n', stdout);
		} else {
			fwrite(m, 1, n, stdout);
			if (!n || m[n - 1] != '\n')
				fputc('\n', stdout);
		}
		fflush(stdout);
		thcl_free(m);
	}
}

static int cmd_channel(struct ropts *r, int argc, char **argv)
{
	if (r->help) {
		fputs(channel_usage, stdout);
		return CLI_OK;
	}
	if (argc >= 2 && (!strcmp(argv[1], "send") || !strcmp(argv[1], "close"))) {
		cli_error("channel %s: a channel belongs to the connection that opened it, so it "
			  "cannot be reached from another command; use 'theater channel open ID' "
			  "and write lines to its stdin (each line is a %s)",
			  argv[1], !strcmp(argv[1], "send") ? "send" : "send; end of input closes it");
		return CLI_USAGE;
	}
	if (argc < 3 || argc > 4 || strcmp(argv[1], "open")) {
		fputs(channel_usage, stderr);
		return CLI_USAGE;
	}
	const char *id = argv[2], *first = argc == 4 ? argv[3] : NULL;
	thcl *c;
	if (connect_or_fail(r, &c))
		return CLI_FAIL;
	thcl_chan *ch;
	uint8_t *reply = NULL;
	size_t rl = 0;
	th_err err = { 0 };
	if (thcl_channel_open(c, id, first, first ? strlen(first) : 0, &ch, &reply, &rl, &err)) {
		cli_error("channel open %s: %s", id, err.msg);
		thcl_close(c);
		return CLI_FAIL;
	}
	if (rl)
		print_bytes_raw(reply, rl);
	thcl_free(reply);
	struct chan_reader rd = { ch, r->json, CLI_OK };
	pthread_t t;
	if (pthread_create(&t, NULL, chan_reader_main, &rd) != 0) {
		cli_error("cannot start a thread");
		thcl_channel_close(ch);
		thcl_close(c);
		return CLI_FAIL;
	}
	char line[65536];
	int rc = CLI_OK;
	while (fgets(line, sizeof line, stdin)) {
		size_t n = strlen(line);
		if (n && line[n - 1] == '\n')
			line[--n] = 0;
		if (thcl_channel_send(ch, line, n, &err)) {
			cli_error("channel send: %s", err.msg);
			rc = CLI_FAIL;
			break;
		}
	}
	/* End of input: close our side; the server answers with END, which
	 * ends the reader; only then is the channel freed. */
	if (thcl_channel_end(ch, &err) != 0 && rc == CLI_OK && err.code != TH_ESTATE) {
		cli_error("channel close: %s", err.msg);
		rc = CLI_FAIL;
	}
	pthread_join(t, NULL);
	thcl_channel_close(ch);
	thcl_close(c);
	return rc != CLI_OK ? rc : rd.rc;
}

/* ---- completion ---- */

static int cmd_completion(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "bash") && strcmp(argv[1], "zsh") &&
			  strcmp(argv[1], "fish"))) {
		fputs("usage: theater completion bash|zsh|fish\n"
		      "Prints a completion script: eval \"$(theater completion bash)\".\n",
		      argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc == 2 && !strcmp(argv[1], "--help") ? CLI_OK : CLI_USAGE;
	}
	/* The commands of main.c's table, so a new command is never missed. */
	char list[1024] = "";
	size_t k = 0;
	const char *w;
	for (unsigned i = 0; (w = cli_command_name(i)) && k < sizeof list; i++)
		k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? " " : "", w);
	if (!strcmp(argv[1], "bash")) {
		printf("_theater() {\n"
		       "  local cur=${COMP_WORDS[COMP_CWORD]}\n"
		       "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
		       "    COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))\n"
		       "  else\n"
		       "    COMPREPLY=($(compgen -W \"--address --json --help --tls-ca --tls-cert "
		       "--tls-key\" -- \"$cur\") $(compgen -f -- \"$cur\"))\n"
		       "  fi\n"
		       "}\n"
		       "complete -F _theater theater\n",
		       list);
	} else if (!strcmp(argv[1], "zsh")) {
		printf("#compdef theater\n"
		       "_theater() {\n"
		       "  if (( CURRENT == 2 )); then\n"
		       "    compadd %s\n"
		       "  else\n"
		       "    _files\n"
		       "  fi\n"
		       "}\n"
		       "compdef _theater theater\n",
		       list);
	} else {
		printf("complete -c theater -f -n '__fish_use_subcommand' -a '%s'\n"
		       "complete -c theater -l address -r\ncomplete -c theater -l json\n"
		       "complete -c theater -l tls-ca -r\n",
		       list);
	}
	return CLI_OK;
}

/* ---- entry points ---- */

bool cli_remote_wanted(int argc, char **argv)
{
	if (argc < 1 || (strcmp(argv[0], "store") && strcmp(argv[0], "chain")))
		return false;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--address"))
			return true;
	return false;
}

int cli_remote(int argc, char **argv)
{
	if (!strcmp(argv[0], "completion"))
		return cmd_completion(argc, argv);
	struct ropts r;
	memset(&r, 0, sizeof r);
	char **rest = th_calloc((size_t)argc + 1, sizeof *rest);
	int nrest;
	if (!rest) {
		cli_error("out of memory");
		return CLI_FAIL;
	}
	int rc = split_args(&r, argc, argv, rest, &nrest);
	if (rc) {
		th_free(rest);
		return rc;
	}
	const char *cmd = rest[0];
	if (!strcmp(cmd, "store"))
		rc = remote_store(&r, nrest, rest);
	else if (!strcmp(cmd, "chain"))
		rc = remote_chain(&r, nrest, rest);
	else if (!strcmp(cmd, "events"))
		rc = cmd_events(&r, nrest, rest);
	else if (!strcmp(cmd, "start"))
		rc = cmd_start(&r, nrest, rest);
	else if (!strcmp(cmd, "stop"))
		rc = cmd_simple(&r, nrest, rest, "actor.stop", false,
				"usage: theater stop ID\nStops an actor (it finishes its current message).\n");
	else if (!strcmp(cmd, "restart"))
		rc = cmd_simple(&r, nrest, rest, "actor.restart", false,
				"usage: theater restart ID\nRestarts an actor from its last state.\n");
	else if (!strcmp(cmd, "terminate"))
		rc = cmd_simple(&r, nrest, rest, "actor.terminate", false,
				"usage: theater terminate ID\nStops an actor at once.\n");
	else if (!strcmp(cmd, "send"))
		rc = cmd_simple(&r, nrest, rest, "actor.send", true,
				"usage: theater send ID MSG|@FILE [--wait]\nSends a one-way message. A full mailbox "
				"fails it at once\n(exit 1), unless --wait: then it waits for room.\n");
	else if (!strcmp(cmd, "request"))
		rc = cmd_simple(&r, nrest, rest, "actor.request", true,
				"usage: theater request ID MSG|@FILE [--timeout MS] [--wait]\n"
				"Sends a request; prints the reply. --wait: a full mailbox is\n"
				"waited for (within the timeout) instead of failing at once.\n");
	else if (!strcmp(cmd, "manifest"))
		rc = cmd_simple(&r, nrest, rest, "actor.manifest", false,
				"usage: theater manifest ID\nPrints the manifest the actor was "
				"started from.\n");
	else if (!strcmp(cmd, "state"))
		rc = cmd_simple(&r, nrest, rest, "actor.state", false,
				"usage: theater state ID\nPrints the actor's current state.\n");
	else if (!strcmp(cmd, "list"))
		rc = cmd_list(&r, nrest, rest);
	else if (!strcmp(cmd, "channel"))
		rc = cmd_channel(&r, nrest, rest);
	else if (!strcmp(cmd, "status"))
		rc = cmd_status(&r, nrest, rest, false);
	else if (!strcmp(cmd, "inspect"))
		rc = cmd_status(&r, nrest, rest, true);
	else if (!strcmp(cmd, "tree"))
		rc = cmd_noarg(&r, nrest, "actor.tree",
			       "usage: theater tree [--json]\nThe supervision tree.\n");
	else if (!strcmp(cmd, "metrics"))
		rc = cmd_noarg(&r, nrest, "metrics",
			       "usage: theater metrics [--json]\nServer and runtime counters, one 'group.name value' "
			       "per line.\n");
	else {
		cli_error("unknown command '%s'", cmd);
		rc = CLI_USAGE;
	}
	if (r.help && rc == CLI_OK)
		fputs("\nEvery command that talks to a server takes --address A (default\n"
		      "$THEATER_ADDRESS, else tcp://127.0.0.1:9000; tls://, ws://, wss://),\n"
		      "--tls-ca F, --tls-cert F, --tls-key F, --tls-name NAME and --json.\n",
		      stdout);
	th_free(rest);
	fflush(stdout);
	return rc;
}
