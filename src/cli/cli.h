/*
 * cli.h - the `theater` command. main.c dispatches on the first word to one
 * cli_* function per command group, each in its own cmd_*.c file. Exit codes:
 * 0 ok, 1 failure, 2 usage error.
 */
#ifndef TH_CLI_H
#define TH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

int cli_wasm(int argc, char **argv);  /* cmd_wasm.c:  theater wasm ...  */
int cli_store(int argc, char **argv); /* cmd_store.c: theater store ... */
int cli_chain(int argc, char **argv); /* cmd_chain.c: theater chain ... */
int cli_run(int argc, char **argv);   /* cmd_run.c:   theater run ...   */
int cli_server(int argc, char **argv); /* cmd_server.c: theater server */
/* cmd_remote.c: commands through a server (start, list, events, store
 * and chain with --address ...); cli_remote_wanted says whether a
 * store/chain command line names a server. */
int cli_remote(int argc, char **argv);
bool cli_remote_wanted(int argc, char **argv);
int cli_replay(int argc, char **argv); /* cmd_replay.c: theater replay  */
/* cmd_replay.c: theater chain export|import|prove|check-proof (argv[0]) */
int cli_chain_replay(int argc, char **argv);
/* cmd_chain_prune.c: theater chain prune (argv[0] = "prune") */
int cli_chain_prune(int argc, char **argv);

/* $THEATER_HOME, else ~/.theater; created if missing. Static buffer. */
const char *cli_home(void);
/* Print "theater: <msg>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True when stderr is a terminal (progress bars are drawn only then). */
bool cli_stderr_tty(void);
/* Name of the i-th command of main.c's table, NULL past the end
 * (completion scripts are generated from it). */
const char *cli_command_name(unsigned i);
/* A time argument (--since/--until): 2026-11-21T16:00:00Z, 2026-11-21,
 * an age (30s, 10m, 2h, 3d) or nanoseconds since the epoch. cmd_chain.c. */
bool cli_parse_time(const char *s, uint64_t *out);
/* Is p[0..n) one well-formed JSON document? If not, *where is the byte
 * offset and *what the problem. json_check.c. */
bool cli_json_check(const char *p, size_t n, size_t *where, const char **what);

#endif
