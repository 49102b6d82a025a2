/*
 * main.c - entry point of the `theater` command: finds the command group
 * named by the first argument and hands it the rest.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"

#define THEATER_VERSION "0.1.0"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static int cli_version(int argc, char **argv)
{
	TH_UNUSED(argc);
	TH_UNUSED(argv);
	printf("theater %s\n", THEATER_VERSION);
	return CLI_OK;
}

/* One row per command group (each group's cli_* lives in its cmd_*.c). */
static const struct command commands[] = {
	{ "version", cli_version, "print the version" },
	{ "store", cli_store, "content-addressed store: put, get, label, ls, gc, verify" },
	{ "chain", cli_chain, "event chains: ls, show, verify" },
	{ "wasm", cli_wasm, "WebAssembly modules: run a WASI command or an export, validate" },
	{ "run", cli_run, "run an actor from its manifest and print its events" },
	{ "server", cli_server, "serve the runtime over TCP, TLS and WebSocket" },
	{ "start", cli_remote, "start an actor on a server (--subscribe to follow it)" },
	{ "stop", cli_remote, "stop an actor" },
	{ "restart", cli_remote, "restart an actor from its last state" },
	{ "terminate", cli_remote, "stop an actor at once" },
	{ "list", cli_remote, "list a server's actors" },
	{ "status", cli_remote, "an actor's status" },
	{ "send", cli_remote, "send a message to an actor" },
	{ "request", cli_remote, "send a request to an actor, print the reply" },
	{ "events", cli_remote, "an actor's events (--follow streams them)" },
	{ "state", cli_remote, "an actor's state" },
	{ "manifest", cli_remote, "the manifest an actor was started from" },
	{ "inspect", cli_remote, "status, state and last events of an actor" },
	{ "tree", cli_remote, "the supervision tree" },
	{ "metrics", cli_remote, "server and runtime counters" },
	{ "completion", cli_remote, "shell completion script: bash, zsh, fish" },
	{ "channel", cli_remote, "channel to an actor: open (interactive: stdin lines in, messages out)" },
	{ "replay", cli_replay, "re-run an actor from its chain and check it step by step" },
};

const char *cli_command_name(unsigned i)
{
	return i < TH_ARRAY_LEN(commands) ? commands[i].name : NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: theater <command> [args...]\n\ncommands:\n");
	for (size_t i = 0; i < TH_ARRAY_LEN(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'theater <command> --help' describes each command.\n"
		   "Data lives in $THEATER_HOME (default ~/.theater).\n");
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("theater: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool cli_stderr_tty(void)
{
	return isatty(STDERR_FILENO);
}

const char *cli_home(void)
{
	static char path[4096];
	const char *env = getenv("THEATER_HOME");
	if (env && *env) {
		snprintf(path, sizeof path, "%s", env);
	} else {
		const char *home = getenv("HOME");
		snprintf(path, sizeof path, "%s/.theater", home ? home : ".");
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		cli_error("cannot create %s: %s", path, strerror(errno));
	return path;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cli_version(argc - 1, argv + 1);
	if (cli_remote_wanted(argc - 1, argv + 1)) /* store/chain --address */
		return cli_remote(argc - 1, argv + 1);
	for (size_t i = 0; i < TH_ARRAY_LEN(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	cli_error("unknown command '%s' (see 'theater --help')", argv[1]);
	return CLI_USAGE;
}
