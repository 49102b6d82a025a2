/*
 * cmd_server.c - `theater server`: the runtime, its Store and Event Chain
 * in $THEATER_HOME, served over the network protocol (docs/protocol.md)
 * until SIGINT or SIGTERM, which shut it down gracefully (stop accepting,
 * finish requests in flight, flush, flush the chains, exit 0).
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/server_rt.h"
#include "theater/protocol.h"
#include "theater/server.h"

static const char server_usage[] =
	"usage: theater server [options]\n"
	"\n"
	"Runs the actor runtime with its Store and Event Chain ($THEATER_HOME)\n"
	"and serves them until SIGINT/SIGTERM.\n"
	"\n"
	"  --listen ADDR:PORT     TCP (TLS with --tls-cert); default 127.0.0.1:9000,\n"
	"                         port 0 picks a free one; \"\" for none\n"
	"  --ws-listen ADDR:PORT  WebSocket (subprotocol theater.v1); default none\n"
	"  --tls-cert FILE        PEM certificate chain (needs --tls-key)\n"
	"  --tls-key FILE         PEM private key\n"
	"  --tls-client-ca FILE   require client certificates signed by this CA\n"
	"  --insecure             allow plaintext on non-loopback addresses\n"
	"  --home DIR             data directory (default $THEATER_HOME or ~/.theater)\n"
	"  --idle-timeout MS      close connections silent this long (300000)\n"
	"  --request-timeout MS   answer 'timeout' to slower requests (60000)\n"
	"  --max-frame BYTES      largest frame payload (16 MiB + 64 KiB)\n"
	"  --max-streams N        streams open per connection (256)\n"
	"  --workers N            command threads kept (4; more start on demand)\n"
	"  --log                  log connections to stderr\n"
	"  --json                 print the listening addresses as one JSON line\n"
	"\n"
	"On start it prints 'listening tcp ADDR:PORT' (and 'listening ws ...').\n";

static thsrv *the_server;

static void on_signal(int sig)
{
	TH_UNUSED(sig);
	if (the_server)
		thsrv_stop(the_server);
}

static int parse_u32(const char *opt, const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v > UINT32_MAX) {
		cli_error("%s: '%s' is not a number", opt, s);
		return CLI_USAGE;
	}
	*out = (uint32_t)v;
	return 0;
}

int cli_server(int argc, char **argv)
{
	thsrv_config cfg = { 0 };
	bool log = false, json = false;
	const char *home = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(server_usage, stdout);
			return CLI_OK;
		} else if (!strcmp(a, "--insecure")) {
			cfg.insecure = true;
			takes = false;
		} else if (!strcmp(a, "--log")) {
			log = true;
			takes = false;
		} else if (!strcmp(a, "--json")) {
			json = true;
			takes = false;
		} else if (!v) {
			cli_error("%s: unknown option or missing value (see --help)", a);
			return CLI_USAGE;
		} else if (!strcmp(a, "--listen")) {
			cfg.listen = v;
		} else if (!strcmp(a, "--ws-listen")) {
			cfg.ws_listen = v;
		} else if (!strcmp(a, "--tls-cert")) {
			cfg.tls_cert = v;
		} else if (!strcmp(a, "--tls-key")) {
			cfg.tls_key = v;
		} else if (!strcmp(a, "--tls-client-ca")) {
			cfg.tls_client_ca = v;
		} else if (!strcmp(a, "--home")) {
			home = v;
		} else {
			uint32_t *dst = !strcmp(a, "--idle-timeout")	? &cfg.idle_timeout_ms
					: !strcmp(a, "--request-timeout") ? &cfg.request_timeout_ms
					: !strcmp(a, "--max-frame")	   ? &cfg.max_frame
					: !strcmp(a, "--max-streams")	   ? &cfg.max_streams
					: !strcmp(a, "--workers")	   ? &cfg.workers
									   : NULL;
			if (!dst) {
				cli_error("unknown option %s (see --help)", a);
				return CLI_USAGE;
			}
			int rc = parse_u32(a, v, dst);
			if (rc)
				return rc;
		}
		if (takes)
			i++;
	}
	if (!cfg.tls_cert != !cfg.tls_key || (cfg.tls_client_ca && !cfg.tls_cert)) {
		cli_error("%s", cfg.tls_client_ca && !cfg.tls_cert && !cfg.tls_key
				? "--tls-client-ca needs --tls-cert and --tls-key"
				: "--tls-cert and --tls-key go together (see --help)");
		return CLI_USAGE;
	}
	if (home && setenv("THEATER_HOME", home, 1) != 0) {
		cli_error("cannot set THEATER_HOME: %s", strerror(errno));
		return CLI_FAIL;
	}
	th_err err = { 0 };
	thr_options ro = { .home = cli_home(), .durability = THX_BATCH };
	thr_runtime *rt = NULL;
	if (thr_runtime_new(&ro, &rt, &err)) {
		cli_error("cannot start the runtime in %s: %s", ro.home, err.msg);
		return CLI_FAIL;
	}
	cfg.store = thr_runtime_store(rt);
	cfg.chains = thr_runtime_chains(rt);
	cfg.ops = &cli_server_rt_ops;
	cfg.ops_ctx = rt;
	cfg.log = log ? stderr : NULL;
	thsrv *srv = NULL;
	if (thsrv_new(&cfg, &srv, &err)) {
		cli_error("%s", err.msg);
		thr_runtime_free(rt);
		return CLI_FAIL;
	}
	the_server = srv;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	const char *scheme = cfg.tls_cert ? "tls" : "tcp";
	const char *wscheme = cfg.tls_cert ? "wss" : "ws";
	int tp = thsrv_port(srv, false), wp = thsrv_port(srv, true);
	const char *listen = cfg.listen ? cfg.listen : THSRV_DEFAULT_LISTEN;
	/* The host part as given, the port as bound. */
	char host[256] = "", whost[256] = "";
	if (tp)
		snprintf(host, sizeof host, "%.*s", (int)(strrchr(listen, ':') - listen), listen);
	if (wp)
		snprintf(whost, sizeof whost, "%.*s",
			 (int)(strrchr(cfg.ws_listen, ':') - cfg.ws_listen), cfg.ws_listen);
	if (json) {
		printf("{\"tcp\":");
		if (tp)
			printf("\"%s://%s:%d\"", scheme, host, tp);
		else
			printf("null");
		printf(",\"ws\":");
		if (wp)
			printf("\"%s://%s:%d/\"", wscheme, whost, wp);
		else
			printf("null");
		printf(",\"home\":\"%s\"}\n", cli_home());
	} else {
		if (tp)
			printf("listening %s %s:%d\n", scheme, host, tp);
		if (wp)
			printf("listening %s %s:%d\n", wscheme, whost, wp);
	}
	fflush(stdout);
	int rc = thsrv_run(srv, &err);
	the_server = NULL;
	thsrv_free(srv);
	thr_runtime_free(rt); /* stops actors, flushes and closes the chains */
	if (rc) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (log)
		fprintf(stderr, "theater server: stopped\n");
	return CLI_OK;
}
