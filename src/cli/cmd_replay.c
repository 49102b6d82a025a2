/*
 * cmd_replay.c - `theater replay` and the chain subcommands built on
 * replay.h and the chain's proofs: `theater chain export|import|prove|
 * check-proof` (cmd_chain.c dispatches them here).
 */
#include <errno.h>
#include <getopt.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "theater/chain.h"
#include "theater/replay.h"
#include "theater/store.h"

#define FILE_MAX ((size_t)1 << 30)

static void replay_usage(FILE *f)
{
	fprintf(f,
		"usage: theater replay CHAIN [--component FILE|HASH] [--until SEQ]\n"
		"                      [--fuel N] [--json]\n"
		"  Re-run actor CHAIN (its id) from its Event Chain: every recorded export\n"
		"  call again, with each host call answered from the chain (nothing is\n"
		"  sent, written or read; time and randomness come from the chain), and\n"
		"  compare host calls, arguments, results and states with the recording.\n"
		"  --component  run another build (a file, or a hash in the Store)\n"
		"  --until SEQ  stop after event SEQ\n"
		"  --fuel N     instructions per export call (default: the manifest's)\n"
		"  --json       print the report as JSON\n"
		"Exit 0 when the replay matches, 1 at the first divergence (explained).\n"
		"Data: $THEATER_HOME/store and $THEATER_HOME/chains.\n");
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 1 << 16, n = 0;
	uint8_t *b;
	if (!f) {
		cli_error("%s: %s", path, strerror(errno));
		return CLI_FAIL;
	}
	b = th_malloc(cap);
	while (b) {
		size_t k = fread(b + n, 1, cap - n, f);
		n += k;
		if (n < cap)
			break;
		if (cap >= FILE_MAX) {
			th_free(b);
			b = NULL;
			break;
		}
		uint8_t *nb = th_realloc(b, cap * 2);
		if (!nb) {
			th_free(b);
			b = NULL;
			break;
		}
		b = nb;
		cap *= 2;
	}
	if (f != stdin)
		fclose(f);
	if (!b) {
		cli_error("%s: too large or out of memory", path);
		return CLI_FAIL;
	}
	*out = b;
	*len = n;
	return CLI_OK;
}

static int open_home(bool read_only, ths_store **st, thx_store **cs)
{
	char p[4200];
	th_err err = { 0 };
	thx_store_opts so = { .read_only = read_only, .no_background = true };
	*st = NULL;
	*cs = NULL;
	snprintf(p, sizeof p, "%s/store", cli_home());
	if (ths_open(p, NULL, st, &err)) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	snprintf(p, sizeof p, "%s/chains", cli_home());
	if (read_only && access(p, F_OK)) {
		cli_error("no chain store at %s", p);
		ths_close(*st);
		return CLI_FAIL;
	}
	if (thx_store_open(p, &so, cs, &err)) {
		cli_error("%s", err.msg);
		ths_close(*st);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		return false;
	*v = x;
	return true;
}

static void bar(uint64_t done, uint64_t total, void *arg)
{
	TH_UNUSED(arg);
	int w = 40, k = total ? (int)(done * (uint64_t)w / total) : w;
	fprintf(stderr, "\r[%.*s%*s] %llu/%llu events", k,
		"========================================", w - k, "",
		(unsigned long long)done, (unsigned long long)total);
	if (done >= total)
		fputc('\n', stderr);
}

int cli_replay(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "component", required_argument, NULL, 'c' },
		{ "until", required_argument, NULL, 'u' },
		{ "fuel", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *comp = NULL;
	bool json = false;
	thrp_opts o = { 0 };
	thrp_report rep;
	ths_store *st;
	thx_store *cs;
	thx_chain *c;
	uint8_t *bytes = NULL;
	size_t blen = 0;
	th_err err = { 0 };
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:u:f:jh", longs, NULL)) != -1) {
		switch (ch) {
		case 'c': comp = optarg; break;
		case 'u':
			if (!parse_u64(optarg, &o.until)) {
				cli_error("replay: --until needs an event number, not '%s'", optarg);
				return CLI_USAGE;
			}
			o.has_until = true;
			break;
		case 'f':
			if (!parse_u64(optarg, &o.fuel) || !o.fuel) {
				cli_error("replay: --fuel needs a positive number, not '%s'", optarg);
				return CLI_USAGE;
			}
			break;
		case 'j': json = true; break;
		case 'h': replay_usage(stdout); return CLI_OK;
		default: replay_usage(stderr); return CLI_USAGE;
		}
	}
	if (optind != argc - 1) {
		replay_usage(stderr);
		return CLI_USAGE;
	}
	const char *name = argv[optind];
	if (open_home(true, &st, &cs))
		return CLI_FAIL;
	if (comp) {
		ths_hash h;
		if (access(comp, F_OK) && strlen(comp) == THS_HEX_LEN &&
		    !ths_hash_parse(comp, &h, NULL)) {
			if (ths_get(st, &h, FILE_MAX, &bytes, &blen, &err)) {
				cli_error("replay: --component %s: %s", comp, err.msg);
				rc = CLI_FAIL;
				goto out;
			}
		} else if (read_file(comp, &bytes, &blen)) {
			rc = CLI_FAIL;
			goto out;
		}
		o.component = bytes;
		o.component_len = blen;
	}
	if (thx_chain_open(cs, name, NULL, false, &c, &err)) {
		cli_error("replay: %s", err.msg);
		rc = CLI_FAIL;
		goto out;
	}
	if (cli_stderr_tty() && !json)
		o.progress = bar;
	if (thrp_replay(st, c, &o, &rep, &err)) {
		cli_error("replay of %s stopped at event %llu: %s", name,
			  (unsigned long long)rep.last_seq, err.msg);
		rc = CLI_FAIL;
		goto out;
	}
	thrp_report_print(&rep, name, json, stdout);
	rc = rep.ok ? CLI_OK : CLI_FAIL;
out:
	if (comp && bytes) {
		/* from ths_get or th_malloc: the same allocator */
		th_free(bytes);
	}
	thx_store_close(cs);
	ths_close(st);
	return rc;
}

/* ---- chain export / import / prove / check-proof ------------------------ */

static void xfer_usage(FILE *f)
{
	fprintf(f,
		"usage: theater chain export CHAIN > FILE\n"
		"         one self-contained file: the events and the Store objects they\n"
		"         reference (components), framed and checksummed (docs/replay.md)\n"
		"       theater chain import FILE|-\n"
		"         re-create the chain (identical hashes) and its objects here\n"
		"       theater chain prove CHAIN SEQ [--seal] [--json]\n"
		"         inclusion proof of event SEQ in its block (hex of its CBOR, or\n"
		"         JSON); --seal first closes the chain's open block\n"
		"       theater chain check-proof FILE|- [--block HASH]\n"
		"         check a proof (hex) on its own, against a block hash obtained\n"
		"         elsewhere (default: the one inside the proof)\n");
}

static int cmd_export(int argc, char **argv)
{
	ths_store *st;
	thx_store *cs;
	thx_chain *c;
	th_err err = { 0 };
	int rc = CLI_OK;
	if (argc != 2) {
		xfer_usage(stderr);
		return CLI_USAGE;
	}
	if (isatty(STDOUT_FILENO)) {
		cli_error("chain export: stdout is a terminal; redirect it to a file");
		return CLI_USAGE;
	}
	if (open_home(true, &st, &cs))
		return CLI_FAIL;
	if (thx_chain_open(cs, argv[1], NULL, false, &c, &err) ||
	    thrp_export(c, st, stdout, &err)) {
		cli_error("chain export: %s", err.msg);
		rc = CLI_FAIL;
	}
	thx_store_close(cs);
	ths_close(st);
	return rc;
}

static int cmd_import(int argc, char **argv)
{
	ths_store *st;
	thx_store *cs;
	thrp_import_info info;
	uint8_t *b;
	size_t n;
	th_err err = { 0 };
	int rc = CLI_OK;
	if (argc != 2) {
		xfer_usage(stderr);
		return CLI_USAGE;
	}
	if (read_file(argv[1], &b, &n))
		return CLI_FAIL;
	if (open_home(false, &st, &cs)) {
		th_free(b);
		return CLI_FAIL;
	}
	if (thrp_import(b, n, cs, st, &info, &err)) {
		cli_error("chain import: %s: %s", argv[1], err.msg);
		rc = CLI_FAIL;
	} else {
		printf("imported chain %s: %llu events, %llu objects\n", info.chain,
		       (unsigned long long)info.events, (unsigned long long)info.objects);
	}
	thx_store_close(cs);
	ths_close(st);
	th_free(b);
	return rc;
}

static void hex_out(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

static int cmd_prove(int argc, char **argv)
{
	bool seal = false, json = false;
	const char *pos[2];
	int np = 0;
	uint64_t seq;
	thx_store *cs = NULL;
	thx_chain *c;
	thx_proof pf;
	uint8_t *enc = NULL;
	size_t elen;
	th_err err = { 0 };
	char p[4200];
	int rc = CLI_FAIL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seal"))
			seal = true;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (np < 2)
			pos[np++] = argv[i];
		else
			np = 3;
	}
	if (np != 2 || !parse_u64(pos[1], &seq)) {
		xfer_usage(stderr);
		return CLI_USAGE;
	}
	thx_store_opts so = { .read_only = !seal, .no_background = true };
	snprintf(p, sizeof p, "%s/chains", cli_home());
	if (thx_store_open(p, &so, &cs, &err) ||
	    thx_chain_open(cs, pos[0], NULL, false, &c, &err))
		goto fail;
	if (seq >= thx_chain_count(c)) {
		th_err_set(&err, TH_ENOTFOUND, "chain %s has no event %llu (it has %llu)",
			   pos[0], (unsigned long long)seq,
			   (unsigned long long)thx_chain_count(c));
		goto fail;
	}
	if (seal && thx_seal_block(c, &err))
		goto fail;
	if (thx_prove(c, seq, &pf, &err)) {
		if (err.code == TH_ESTATE && !seal) {
			cli_error("chain prove: %s; --seal closes the open block", err.msg);
			goto out;
		}
		goto fail;
	}
	if (thx_proof_encode(&pf, &enc, &elen, &err))
		goto fail;
	if (json) {
		printf("{\"chain\": \"%s\", \"seq\": %llu, \"event_hash\": \"", pf.chain,
		       (unsigned long long)pf.seq);
		hex_out(stdout, pf.event_hash, THX_HASH_LEN);
		printf("\", \"block\": {\"index\": %llu, \"first_seq\": %llu, \"count\": "
		       "%llu, \"hash\": \"", (unsigned long long)pf.block.index,
		       (unsigned long long)pf.block.first_seq,
		       (unsigned long long)pf.block.count);
		hex_out(stdout, pf.block.hash, THX_HASH_LEN);
		printf("\", \"merkle_root\": \"");
		hex_out(stdout, pf.block.merkle_root, THX_HASH_LEN);
		printf("\"}, \"path\": [");
		for (size_t i = 0; i < pf.path_len; i++) {
			printf("%s\"", i ? ", " : "");
			hex_out(stdout, pf.path[i], THX_HASH_LEN);
			printf("\"");
		}
		printf("], \"proof\": \"");
		hex_out(stdout, enc, elen);
		printf("\"}\n");
	} else {
		hex_out(stdout, enc, elen);
		printf("\n");
	}
	rc = CLI_OK;
	goto out;
fail:
	cli_error("chain prove: %s", err.msg);
out:
	thx_free(enc);
	thx_store_close(cs);
	return rc;
}

/* Hex digits of a text (whitespace ignored) into bytes. */
static int unhex_text(const uint8_t *t, size_t n, uint8_t **out, size_t *len)
{
	uint8_t *b = th_malloc(n / 2 + 1);
	size_t k = 0;
	int hi = -1;
	if (!b)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v;
		uint8_t ch = t[i];
		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		if (ch >= '0' && ch <= '9') v = ch - '0';
		else if (ch >= 'a' && ch <= 'f') v = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F') v = ch - 'A' + 10;
		else {
			th_free(b);
			*len = i;
			return -2;
		}
		if (hi < 0) {
			hi = v;
		} else {
			b[k++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0) {
		th_free(b);
		*len = n;
		return -2;
	}
	*out = b;
	*len = k;
	return 0;
}

static int cmd_check_proof(int argc, char **argv)
{
	const char *file = NULL, *block = NULL;
	uint8_t *text, *bin = NULL, bh[THX_HASH_LEN];
	size_t tn, bn;
	thx_proof pf;
	th_err err = { 0 };
	int rc = CLI_FAIL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--block") && i + 1 < argc)
			block = argv[++i];
		else if (!file)
			file = argv[i];
		else
			file = NULL, i = argc;
	}
	if (!file) {
		xfer_usage(stderr);
		return CLI_USAGE;
	}
	if (block && (strlen(block) != 2 * THX_HASH_LEN || !th_unhex(block, bh, THX_HASH_LEN))) {
		cli_error("check-proof: --block needs 64 hex digits");
		return CLI_USAGE;
	}
	if (read_file(file, &text, &tn))
		return CLI_FAIL;
	int h = unhex_text(text, tn, &bin, &bn);
	th_free(text);
	if (h == -2) {
		cli_error("check-proof: %s: byte %zu: not a hex digit", file, bn);
		return CLI_FAIL;
	}
	if (h) {
		cli_error("check-proof: out of memory");
		return CLI_FAIL;
	}
	if (thx_proof_decode(bin, bn, &pf, &err)) {
		cli_error("check-proof: %s: %s", file, err.msg);
		goto out;
	}
	if (thx_proof_check(&pf, block ? bh : NULL, &err)) {
		printf("INVALID: %s\n", err.msg);
		goto out;
	}
	printf("ok: event %llu of chain %s (hash ", (unsigned long long)pf.seq, pf.chain);
	hex_out(stdout, pf.event_hash, THX_HASH_LEN);
	printf(") is in block %llu (hash ", (unsigned long long)pf.block.index);
	hex_out(stdout, pf.block.hash, THX_HASH_LEN);
	printf(")%s\n", block ? "" : "; no --block given: checked against the "
	       "block hash inside the proof only");
	rc = CLI_OK;
out:
	th_free(bin);
	return rc;
}

int cli_chain_replay(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			xfer_usage(stdout);
			return CLI_OK;
		}
	if (!strcmp(argv[0], "export"))
		return cmd_export(argc, argv);
	if (!strcmp(argv[0], "import"))
		return cmd_import(argc, argv);
	if (!strcmp(argv[0], "prove"))
		return cmd_prove(argc, argv);
	return cmd_check_proof(argc, argv);
}
