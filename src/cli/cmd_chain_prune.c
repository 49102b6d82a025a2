/*
 * cmd_chain_prune.c - `theater chain prune`: prune one chain by hand and
 * compact the segments, the same operations a chain's retention policy
 * (a manifest's [chain] section) runs in the background.
 *
 *   theater chain prune CHAIN [--keep N] [--max-bytes B] [--older-than AGE]
 *                             [--no-compact] [--json]
 *
 * Without a limit, the chain's recorded retention policy (its actor's
 * manifest [chain] retain_*) is applied now instead of by the background.
 *
 * The oldest events beyond every limit given lose their data and
 * description; their hashes stay, so `theater chain verify` still passes
 * end to end. Events already pruned stay pruned (pruning only grows).
 * The store is opened for writing: a running theater holding it makes
 * this fail with a clear error instead of racing it.
 */
#include <errno.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "theater/chain.h"

static void prune_usage(FILE *f)
{
	fprintf(f,
		"usage: theater chain prune CHAIN [--keep N] [--max-bytes B] [--older-than AGE]\n"
		"                           [--no-compact] [--json]\n\n"
		"Drop the data of CHAIN's oldest events (their hashes stay: the chain still\n"
		"verifies end to end), then compact the segments to reclaim the space.\n"
		"  --keep N          keep the data of the newest N events\n"
		"  --max-bytes B     keep at most B bytes of data + descriptions (newest first)\n"
		"  --older-than AGE  prune events older than AGE: 30s, 10m, 2h, 7d\n"
		"  --no-compact      prune only (the space is reclaimed by a later compaction)\n"
		"With several limits, the one pruning most wins; with none, the chain's own\n"
		"retention policy applies (an actor's [chain] retain_* in its manifest).\n"
		"The store ($THEATER_HOME/chains) must not be open in a running theater.\n");
}

/* A non-negative decimal integer, the whole string. */
static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* "<n>s|m|h|d" in nanoseconds. */
static bool parse_age(const char *s, uint64_t *ns)
{
	size_t n = strlen(s);
	if (n < 2)
		return false;
	char unit = s[n - 1];
	uint64_t mul = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600
		       : unit == 'd' ? 86400 : 0;
	char num[32];
	if (!mul || n - 1 >= sizeof num)
		return false;
	memcpy(num, s, n - 1);
	num[n - 1] = '\0';
	uint64_t v;
	if (!parse_u64(num, &v) || v > UINT64_MAX / 1000000000u / mul)
		return false;
	*ns = v * mul * 1000000000u;
	return true;
}

static void json_name(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

struct first_at {
	uint64_t seq;
	bool found;
};

static int first_seq(const thx_event *ev, void *arg)
{
	struct first_at *f = arg;
	f->seq = ev->seq;
	f->found = true;
	return 1; /* the first match is enough: timestamps never decrease */
}

struct live_count {
	uint64_t below, live;
};

static int count_live(const thx_event *ev, void *arg)
{
	struct live_count *l = arg;
	if (ev->seq >= l->below)
		return 1;
	if (!ev->pruned)
		l->live++;
	return 0;
}

/* Where --max-bytes puts the boundary: the newest events whose data and
 * descriptions fit in max stay. */
static int bytes_boundary(thx_chain *c, uint64_t n, uint64_t max,
			  uint64_t *below, th_err *err)
{
	uint64_t sum = 0;
	*below = 0;
	for (uint64_t seq = n; seq-- > 0;) {
		thx_event ev = { 0 };
		int rc = thx_get(c, seq, &ev, err);
		if (rc)
			return rc;
		bool pruned = ev.pruned;
		uint64_t sz = ev.len + (ev.description ? strlen(ev.description) : 0);
		thx_event_release(&ev);
		if (pruned) { /* everything older is pruned too */
			*below = seq + 1;
			return 0;
		}
		sum += sz;
		if (sum > max) {
			*below = seq + 1;
			return 0;
		}
	}
	return 0;
}

int cli_chain_prune(int argc, char **argv)
{
	const char *name = NULL;
	uint64_t keep = 0, max_bytes = 0, age_ns = 0;
	bool has_keep = false, has_bytes = false, has_age = false;
	bool compact = true, json = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			prune_usage(stdout);
			return CLI_OK;
		} else if (!strcmp(a, "--keep") && more) {
			if (!parse_u64(argv[++i], &keep)) {
				cli_error("chain prune: --keep needs a number of events, not '%s'", argv[i]);
				return CLI_USAGE;
			}
			has_keep = true;
		} else if (!strcmp(a, "--max-bytes") && more) {
			if (!parse_u64(argv[++i], &max_bytes)) {
				cli_error("chain prune: --max-bytes needs a number of bytes, not '%s'", argv[i]);
				return CLI_USAGE;
			}
			has_bytes = true;
		} else if (!strcmp(a, "--older-than") && more) {
			if (!parse_age(argv[++i], &age_ns)) {
				cli_error("chain prune: --older-than needs an age such as 30s, 10m, 2h or 7d, not '%s'",
					  argv[i]);
				return CLI_USAGE;
			}
			has_age = true;
		} else if (!strcmp(a, "--no-compact")) {
			compact = false;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (a[0] == '-' || name) {
			cli_error("chain prune: unexpected argument '%s' (see 'theater chain prune --help')", a);
			return CLI_USAGE;
		} else {
			name = a;
		}
	}
	if (!name) {
		cli_error("chain prune: which chain? (see 'theater chain prune --help')");
		return CLI_USAGE;
	}

	char dir[4200];
	snprintf(dir, sizeof dir, "%s/chains", cli_home());
	if (access(dir, F_OK) != 0) {
		cli_error("no chain store at %s", dir);
		return CLI_FAIL;
	}
	thx_store *s = NULL;
	thx_chain *c;
	th_err err = { 0 };
	int rc = thx_store_open(dir, NULL, &s, &err);
	if (rc) {
		if (rc == TH_EBUSY)
			cli_error("%s: the chain store is in use (a running theater holds it; "
				  "its actors prune through their manifests' [chain] retention)", dir);
		else
			cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (thx_chain_open(s, name, NULL, false, &c, &err)) {
		cli_error("chain prune: %s", err.msg);
		thx_store_close(s);
		return CLI_FAIL;
	}

	if (!(has_keep || has_bytes || has_age)) {
		/* No limit given: the chain's own retention policy. */
		thx_chain_opts o;
		thx_chain_opts_get(c, &o);
		has_keep = (keep = o.retention.max_events) != 0;
		has_bytes = (max_bytes = o.retention.max_bytes) != 0;
		has_age = (age_ns = o.retention.max_age_ns) != 0;
		if (!(has_keep || has_bytes || has_age)) {
			cli_error("chain prune: chain %s has no retention policy; give --keep, "
				  "--max-bytes or --older-than", name);
			thx_store_close(s);
			return CLI_USAGE;
		}
	}
	uint64_t n = thx_chain_count(c), below = 0, b;
	if (has_keep && n > keep)
		below = n - keep;
	if (has_bytes) {
		if (bytes_boundary(c, n, max_bytes, &b, &err))
			goto fail;
		if (b > below)
			below = b;
	}
	if (has_age) {
		uint64_t now = th_wall_ns();
		thx_query q = { .since_ns = now > age_ns ? now - age_ns : 0 };
		struct first_at f = { 0 };
		rc = thx_query_run(c, &q, first_seq, &f, &err);
		if (rc < 0)
			goto fail;
		b = f.found ? f.seq : n;
		if (b > below)
			below = b;
	}

	struct live_count lc = { .below = below };
	thx_query all = { 0 };
	if (below && thx_query_run(c, &all, count_live, &lc, &err) < 0)
		goto fail;
	if (lc.live && thx_prune_below(c, below, &err))
		goto fail;
	uint64_t reclaimed = 0;
	if (compact && thx_compact(s, &reclaimed, &err))
		goto fail;
	if (thx_store_sync(s, &err))
		goto fail;
	if (json) {
		printf("{\"chain\":");
		json_name(name);
		printf(",\"events\":%llu,\"pruned_below\":%llu,\"pruned\":%llu,"
		       "\"reclaimed_bytes\":%llu}\n", (unsigned long long)n,
		       (unsigned long long)below, (unsigned long long)lc.live,
		       (unsigned long long)reclaimed);
	} else {
		printf("chain %s: %llu events; pruned %llu (every event below seq %llu now "
		       "keeps only its hash); compaction reclaimed %llu bytes\n", name,
		       (unsigned long long)n, (unsigned long long)lc.live,
		       (unsigned long long)below, (unsigned long long)reclaimed);
	}
	thx_store_close(s);
	return CLI_OK;
fail:
	cli_error("chain prune %s: %s", name, err.msg);
	thx_store_close(s);
	return CLI_FAIL;
}
