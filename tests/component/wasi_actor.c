/*
 * wasi_actor.c - a guest (built by tests/component/test_run.c with
 * CORE_ONLY=1 sdk/c/build.sh) whose init uses wasi-libc's stdio, so the
 * core module imports wasi_snapshot_preview1 next to theater:simple.
 */
#include <stdio.h>
#include <string.h>

#include "theater.h"

theater_status theater_actor_init(theater_opt_bytes *state, theater_string id)
{
	char msg[128];
	int n = snprintf(msg, sizeof msg, "wasi actor %.*s, %d", (int)id.len, id.ptr, 42);
	theater_log(msg, (size_t)n);
	printf("stdout from %.*s\n", (int)id.len, id.ptr);
	fflush(stdout);
	(void)state;
	return theater_ok();
}
