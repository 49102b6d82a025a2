/*
 * manifest.h - actor manifests (manifest.toml): parsing, validation, and the
 * permission model (what an actor may do, and what a child of it may do).
 *
 * Every field is documented in docs/manifest.md. The format follows
 * Theater's manifests (name, version, component, description, save_chain,
 * init_state, [[handler]], [permission_policy]) and adds [limits],
 * [supervision] and [chain]. Unknown keys are errors: a typo in a security
 * setting must not be silently ignored.
 *
 * Errors name the file, line and column, and what is wrong:
 *   "counter/manifest.toml:4:16: limits.memory_pages must be an integer
 *    from 1 to 65536"
 *
 * Ownership: thm_parse/thm_load return a manifest the caller frees with
 * thm_free; every string and list in it belongs to it. A thm_perms filled
 * by thm_perms_* is released with thm_perms_release.
 */
#ifndef THEATER_MANIFEST_H
#define THEATER_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define THM_MAX_BYTES (1u << 20) /* a manifest is at most 1 MiB */

/* ---- handlers ---------------------------------------------------------- */

typedef enum thm_handler_kind {
	THM_H_RUNTIME,
	THM_H_MESSAGE_SERVER,
	THM_H_SUPERVISOR,
	THM_H_STORE,
	THM_H_TIMING,
	THM_H_RANDOM,
	THM_H_ENVIRONMENT,
	THM_H_FILESYSTEM,
	THM_H_HTTP_CLIENT,
	THM_H_COUNT
} thm_handler_kind;

/* "runtime", "message-server", ... (the manifest's `type` values). */
TH_API const char *thm_handler_name(thm_handler_kind k);
/* The kind named by a `type` value, or -1. */
TH_API int thm_handler_kind_of(const char *type);

/* ---- permissions ------------------------------------------------------- */

/* A list of strings. set == false: the list was not given, which means
 * "no restriction" for allow-lists and "nothing denied" for deny-lists. */
typedef struct thm_strlist {
	char **v;
	size_t n;
	bool set;
} thm_strlist;

typedef struct thm_fs_perms {
	char *path;        /* root directory; NULL = unrestricted */
	bool new_dir;      /* use a fresh directory under path (narrows) */
	bool read, write;
	thm_strlist allowed_paths; /* prefixes under the root the actor may use */
} thm_fs_perms;

typedef struct thm_env_perms {
	thm_strlist allowed_vars;     /* exact names */
	thm_strlist denied_vars;      /* exact names, always refused */
	thm_strlist allowed_prefixes; /* a name must start with one */
	bool allow_list_all;          /* list-vars permitted */
} thm_env_perms;

typedef struct thm_timing_perms {
	uint64_t max_sleep_ms, min_sleep_ms;
} thm_timing_perms;

typedef struct thm_random_perms {
	bool has_seed; /* a fixed seed (for tests), not a permission */
	uint64_t seed;
	uint64_t max_bytes; /* per call */
	uint64_t max_int;
	bool allow_crypto_secure;
} thm_random_perms;

typedef struct thm_http_perms {
	thm_strlist allowed_hosts;   /* exact host names, case-insensitive */
	thm_strlist allowed_methods; /* GET, POST ... case-insensitive */
	uint64_t max_redirects;
	uint64_t timeout_ms;
} thm_http_perms;

/* A capability set: which handlers an actor has, and their restrictions
 * (only meaningful for the enabled ones). */
typedef struct thm_perms {
	bool enabled[THM_H_COUNT];
	thm_fs_perms fs;
	thm_env_perms env;
	thm_timing_perms timing;
	thm_random_perms random;
	thm_http_perms http;
} thm_perms;

/* How a child's capability for one handler derives from its parent's
 * (Theater's HandlerInheritance). */
typedef enum thm_inherit {
	THM_INHERIT = 0, /* as the parent's (then narrowed by the child's config) */
	THM_DISALLOW,    /* never, whatever the parent has */
	THM_RESTRICT     /* the parent's, narrowed by `config` */
} thm_inherit;

typedef struct thm_policy {
	thm_inherit mode[THM_H_COUNT];
	/* Restrictions for THM_RESTRICT entries; fields the manifest does not
	 * give are as permissive as possible, so they narrow nothing. */
	thm_perms restrict_to;
} thm_policy;

/* ---- the manifest ------------------------------------------------------ */

typedef enum thm_ref_kind {
	THM_REF_NONE = 0,
	THM_REF_PATH,   /* a file: ref is the path, resolved against the
			 * manifest's directory when loaded from a file */
	THM_REF_STORE,  /* "store:<label>": ref is the label */
	THM_REF_HASH,   /* "sha256:<hex>" or 64 hex digits: hash holds it */
	THM_REF_INLINE  /* init_state only: an inline table, as JSON in ref */
} thm_ref_kind;

typedef struct thm_ref {
	thm_ref_kind kind;
	char *ref;          /* path, label, lowercase hex, or JSON text */
	size_t ref_len;
	uint8_t hash[32];   /* THM_REF_HASH */
	unsigned line, col; /* where it was written */
} thm_ref;

typedef struct thm_handler {
	thm_handler_kind kind;
	unsigned line, col;
} thm_handler;

#define THM_DEFAULT_MEMORY_PAGES 256u           /* 16 MiB */
#define THM_DEFAULT_FUEL_PER_MESSAGE 100000000u
#define THM_DEFAULT_MAILBOX_CAPACITY 1024u
#define THM_DEFAULT_REQUEST_TIMEOUT_MS 30000u
#define THM_DEFAULT_MAX_MESSAGE_BYTES (1u << 20)

typedef struct thm_limits {
	uint32_t memory_pages;      /* 64 KiB pages, 1..65536 */
	uint64_t fuel_per_message;  /* instructions' fuel for one message */
	uint32_t mailbox_capacity;  /* queued messages before backpressure */
	uint64_t request_timeout_ms;
	uint64_t max_message_bytes;
	/* Mailbox limits that fail the actor ("mailbox limit exceeded"),
	 * 0 = none: full with no message finished for this long (its senders
	 * wait meanwhile), and system-lane messages queued beyond this. */
	uint64_t mailbox_full_ms;
	uint32_t mailbox_system_max;
} thm_limits;

typedef enum thm_strategy {
	THM_ONE_FOR_ONE = 0,
	THM_ONE_FOR_ALL,
	THM_REST_FOR_ONE
} thm_strategy;

typedef enum thm_restart {
	THM_PERMANENT = 0, /* always restarted */
	THM_TRANSIENT,     /* restarted only after an abnormal exit */
	THM_TEMPORARY      /* never restarted */
} thm_restart;

typedef struct thm_health {
	bool enabled;         /* [supervision.health] given */
	uint64_t interval_ms; /* between probes */
	uint64_t timeout_ms;  /* a probe not answered by then is missed */
	uint32_t max_missed;  /* consecutive misses that count as a failure */
	char *probe_export;   /* NULL: a ping message; else an export's name */
} thm_health;

typedef struct thm_supervision {
	bool present; /* [supervision] given (else all defaults) */
	thm_strategy strategy;
	thm_restart restart;
	uint32_t max_restarts;   /* more than this within within_seconds... */
	uint32_t within_seconds; /* ...and the supervisor gives up (escalates) */
	uint64_t backoff_min_ms, backoff_max_ms;
	double backoff_jitter;   /* 0..1, fraction of the delay randomised */
	uint32_t circuit_failures; /* consecutive failures opening it; 0 = off */
	uint64_t circuit_reset_ms; /* open -> half-open after this */
	bool reset_state;        /* state = "reset" (default "preserve") */
	bool discard_mailbox;    /* mailbox = "discard" (default "preserve") */
	thm_health health;
} thm_supervision;

/* [chain]: how the actor's Event Chain is kept. Retention limits are 0 when
 * unlimited; the oldest events beyond any limit are pruned (their data goes,
 * their hashes stay, so the chain still verifies). */
typedef enum thm_durability {
	THM_DURABLE_DEFAULT = 0, /* not given: save_chain decides */
	THM_DURABLE_ALWAYS,      /* each event on disk before it counts */
	THM_DURABLE_BATCH,       /* on disk within batch_ms */
	THM_DURABLE_NONE         /* memory only */
} thm_durability;

typedef struct thm_chain {
	thm_durability durability;
	uint32_t batch_ms;       /* THM_DURABLE_BATCH: 0 = the chain's default */
	uint64_t retain_events;  /* keep at most this many events' data */
	uint64_t retain_bytes;   /* ... this many bytes of data + descriptions */
	uint64_t retain_age_ms;  /* ... events younger than this */
} thm_chain;

typedef struct thm_manifest {
	char *file;     /* as given to thm_load / thm_parse */
	char *dir;      /* its directory ("" when parsed from a string) */
	char *name;
	char *version;
	char *description;      /* NULL if absent */
	char *long_description; /* NULL if absent */
	thm_ref component;
	bool save_chain;
	thm_ref init_state;     /* kind THM_REF_NONE if absent */
	thm_handler *handlers;  /* in manifest order, each kind at most once */
	size_t n_handlers;
	thm_perms requested;    /* from the [[handler]] tables */
	thm_policy policy;      /* [permission_policy] */
	thm_limits limits;
	thm_supervision supervision;
	thm_chain chain;        /* [chain] */
} thm_manifest;

/* Parse a manifest from text. file names it in messages (NULL: "<string>");
 * relative paths stay relative. On success *out is owned by the caller. */
TH_API int thm_parse(const char *text, size_t len, const char *file,
		     thm_manifest **out, th_err *err);
/* Read and parse a manifest file; relative paths inside it are resolved
 * against its directory. */
TH_API int thm_load(const char *path, thm_manifest **out, th_err *err);
/* Accepts NULL. */
TH_API void thm_free(thm_manifest *m);

/* ---- permission arithmetic ---------------------------------------------- */

/* Everything allowed: the parent of a root actor. */
TH_API int thm_perms_all(thm_perms *out);
/* out = outer ∩ req: never wider than either. Non-permission choices
 * (random seed, new_dir, a narrower root) come from req. out must not
 * alias an input; release it with thm_perms_release. */
TH_API int thm_perms_intersect(const thm_perms *outer, const thm_perms *req,
			       thm_perms *out, th_err *err);
/* The effective permissions of an actor with manifest child spawned by a
 * parent holding `parent` (NULL: a root actor, parent = everything):
 * parent ∩ policy(child) ∩ requested(child). Never wider than parent. */
TH_API int thm_effective(const thm_perms *parent, const thm_manifest *child,
			 thm_perms *out, th_err *err);
/* True if inner allows nothing that outer does not. */
TH_API bool thm_perms_within(const thm_perms *inner, const thm_perms *outer);
TH_API int thm_perms_copy(const thm_perms *in, thm_perms *out);
/* Frees the lists and strings; accepts NULL and zeroed structs. */
TH_API void thm_perms_release(thm_perms *p);

/* Lexically normalised path ("a/./b/../c" -> "a/c"); caller frees with
 * thm_str_free. NULL on out of memory. */
TH_API char *thm_path_normalize(const char *path);
/* True if path is root or inside it (both normalised lexically). */
TH_API bool thm_path_within(const char *path, const char *root);
TH_API void thm_str_free(char *s);

#ifdef __cplusplus
}
#endif
#endif
