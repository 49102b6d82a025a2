/*
 * wasi.h - a WASI preview1 ("wasi_snapshot_preview1") subset on the engine's
 * public API (prefix thw_wasi_): enough for a C program built with wasi-libc
 * to run as a command (_start).
 *
 * Provided: args_get/args_sizes_get, environ_get/environ_sizes_get,
 * clock_res_get/clock_time_get, random_get, fd_read/fd_write/fd_seek/
 * fd_close/fd_fdstat_get/fd_filestat_get, fd_prestat_get/fd_prestat_dir_name
 * and path_open for preopened directories, sched_yield, proc_exit. Any other
 * function of the module that returns an errno answers ENOSYS (52).
 *
 * Sandbox: the guest sees only the host file descriptors given as its stdio
 * and the preopened directories. path_open refuses absolute paths and paths
 * that leave the preopen (ENOTCAPABLE, 76); on Linux >= 5.6 the kernel also
 * refuses symlinks that escape (openat2 RESOLVE_BENEATH). Every guest memory
 * access goes through the engine's bounds-checked accessors: a bad pointer
 * is EFAULT (21) for the guest, never a crash of the host.
 *
 * proc_exit ends the invocation with a host trap whose message starts with
 * THW_WASI_EXIT_PREFIX (then the code in decimal); thw_wasi_exited() tells
 * the embedder that the trap was an exit and gives the code.
 *
 * Recording: when a hook is configured, every WASI call reports, after it
 * ran, its name, arguments, result and the guest-memory bytes it read
 * (payloads and paths) and wrote (data, sizes, clock values): enough to
 * record it in an event log and later replay it by writing the same bytes.
 */
#ifndef THEATER_WASI_H
#define THEATER_WASI_H

#include "theater/wasm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define THW_WASI_MODULE "wasi_snapshot_preview1"
#define THW_WASI_EXIT_PREFIX "wasi proc_exit "

/* WASI errno values used here (the full list is in the WASI spec). */
enum {
	THW_WASI_ESUCCESS = 0,
	THW_WASI_EBADF = 8,
	THW_WASI_EFAULT = 21,
	THW_WASI_EINVAL = 28,
	THW_WASI_EIO = 29,
	THW_WASI_ENOSYS = 52,
	THW_WASI_ESPIPE = 70,
	THW_WASI_ENOTCAPABLE = 76
};

/* A span of guest memory a call read or wrote. data points into the linear
 * memory and is valid only during the hook. */
typedef struct thw_wasi_span {
	uint32_t guest_off;
	uint32_t len;
	const uint8_t *data;
} thw_wasi_span;

/* One completed WASI call, as the hook sees it. */
typedef struct thw_wasi_call {
	const char *name;            /* "fd_write", ...                        */
	const thw_val *args;         /* the raw WebAssembly arguments           */
	uint32_t nargs;
	uint32_t result;             /* WASI errno; for proc_exit the exit code */
	const thw_wasi_span *in;     /* guest bytes the call consumed           */
	uint32_t nin;
	const thw_wasi_span *out;    /* guest bytes the call wrote, in order    */
	uint32_t nout;
} thw_wasi_call;

typedef void (*thw_wasi_hook)(void *ctx, const thw_wasi_call *call);

typedef struct thw_wasi_preopen {
	const char *host_path;  /* a directory on the host                  */
	const char *guest_path; /* the name the guest sees (e.g. "/data")   */
} thw_wasi_preopen;

typedef struct thw_wasi_config {
	int argc;                       /* argv[0] is the program name        */
	const char *const *argv;
	int nenv;                       /* "KEY=VALUE" strings                */
	const char *const *env;
	int stdin_fd, stdout_fd, stderr_fd; /* host fds; set all three, or   */
	bool custom_stdio;              /* leave false for 0, 1, 2            */
	const thw_wasi_preopen *preopens;
	uint32_t npreopens;
	thw_wasi_hook hook;             /* may be NULL                        */
	void *hook_ctx;
} thw_wasi_config;

typedef struct thw_wasi thw_wasi;

/* Make a WASI context; copies every string of cfg and opens the preopens
 * (an unreadable directory is an error naming it). Free with thw_wasi_free;
 * the host stdio fds are never closed by it, opened files and preopens are. */
TH_API int thw_wasi_new(const thw_wasi_config *cfg, thw_wasi **out, th_err *err);
TH_API void thw_wasi_free(thw_wasi *w); /* NULL ok */

/* Satisfy one import. For a THW_WASI_MODULE function import, creates the host
 * function in realm r (w must outlive r's use of it) and fills *out: the
 * implemented function when the name is known (TH_EINVAL "incompatible import
 * type" when the declared type differs), an ENOSYS answer for another name
 * whose result is one i32. TH_ENOTFOUND when the import is not WASI's (the
 * caller resolves it elsewhere) or is an unknown name of another shape. */
TH_API int thw_wasi_import(thw_wasi *w, thw_realm *r, const thw_importdesc *imp,
			   thw_extern *out, th_err *err);

/* Resolve every import of m: WASI ones as above; any other is an error
 * ("unknown import MODULE.NAME"). imports has room for
 * thw_module_import_count(m) entries. */
TH_API int thw_wasi_link(thw_wasi *w, thw_realm *r, const thw_module *m,
			 thw_extern *imports, th_err *err);

/* After a trap: true when it was proc_exit, with the exit code. */
TH_API bool thw_wasi_exited(const thw_wasi *w, uint32_t *code);

#ifdef __cplusplus
}
#endif
#endif
