/*
 * manifest.c - reading an actor manifest (manifest.toml) into thm_manifest.
 *
 * The TOML tree is checked section by section against tables of the keys
 * each section allows; every value is checked for type and range where it
 * is read, so the message can name the key and its position:
 *   "counter/manifest.toml:4:16: limits.memory_pages must be an integer
 *    from 1 to 65536, not 0"
 * Unknown keys are errors (docs/manifest.md says why). Defaults are filled
 * in here, so the runtime reads a complete structure.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "theater/toml.h"
#include "toml/manifest_int.h"

static const char *const handler_names[THM_H_COUNT] = {
	[THM_H_RUNTIME] = "runtime",
	[THM_H_MESSAGE_SERVER] = "message-server",
	[THM_H_SUPERVISOR] = "supervisor",
	[THM_H_STORE] = "store",
	[THM_H_TIMING] = "timing",
	[THM_H_RANDOM] = "random",
	[THM_H_ENVIRONMENT] = "environment",
	[THM_H_FILESYSTEM] = "filesystem",
	[THM_H_HTTP_CLIENT] = "http-client",
};

/* Theater's [permission_policy] names (HandlerPermissionPolicy fields). */
static const char *const policy_names[THM_H_COUNT] = {
	[THM_H_RUNTIME] = "runtime",
	[THM_H_MESSAGE_SERVER] = "message_server",
	[THM_H_SUPERVISOR] = "supervisor",
	[THM_H_STORE] = "store",
	[THM_H_TIMING] = "timing",
	[THM_H_RANDOM] = "random",
	[THM_H_ENVIRONMENT] = "environment",
	[THM_H_FILESYSTEM] = "file_system",
	[THM_H_HTTP_CLIENT] = "http_client",
};

const char *thm_handler_name(thm_handler_kind k)
{
	return (unsigned)k < THM_H_COUNT ? handler_names[k] : "unknown";
}

int thm_handler_kind_of(const char *type)
{
	for (int k = 0; type && k < THM_H_COUNT; k++)
		if (strcmp(type, handler_names[k]) == 0)
			return k;
	return -1;
}

/* ---- checking values ---- */

/* A type's name with its article: "an integer", "a string". */
static const char *a_type(tt_type t)
{
	switch (t) {
	case TT_TABLE: return "a table";
	case TT_ARRAY: return "an array";
	case TT_STRING: return "a string";
	case TT_INTEGER: return "an integer";
	case TT_FLOAT: return "a float";
	case TT_BOOL: return "a boolean";
	case TT_DATETIME: return "an offset date-time";
	case TT_DATETIME_LOCAL: return "a local date-time";
	case TT_DATE_LOCAL: return "a local date";
	case TT_TIME_LOCAL: return "a local time";
	}
	return "nothing";
}

typedef struct ctx {
	const char *file;
	const char *dir;
	th_err *err;
} ctx;

static int fail(ctx *c, const tt_value *at, const char *fmt, ...) TH_PRINTF(3, 4);
static int fail(ctx *c, const tt_value *at, const char *fmt, ...)
{
	char msg[TH_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	unsigned line = at ? tt_line(at) : 1, col = at ? tt_col(at) : 1;
	return th_err_set(c->err, TH_EINVAL, "%s:%u:%u: %s", c->file, line, col, msg);
}

static int nomem(ctx *c)
{
	return th_err_set(c->err, TH_ENOMEM, "%s: out of memory", c->file);
}

/* Reject keys of table t not in the NULL-terminated list known. */
static int known_keys(ctx *c, const tt_value *t, const char *section,
		      const char *const *known)
{
	for (size_t i = 0; i < tt_len(t); i++) {
		size_t klen;
		const char *k = tt_key_at(t, i, &klen);
		bool ok = strlen(k) == klen;
		if (ok) {
			ok = false;
			for (size_t j = 0; known[j]; j++)
				if (strcmp(k, known[j]) == 0)
					ok = true;
		}
		if (!ok) {
			char list[256];
			size_t n = 0;
			list[0] = '\0';
			for (size_t j = 0; known[j] && n < sizeof(list); j++)
				n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
						      j ? ", " : "", known[j]);
			return fail(c, tt_at(t, i), "unknown key '%s%s%.*s' (%s allows: %s)",
				    section, *section ? "." : "", (int)klen, k,
				    *section ? section : "the top level", list);
		}
	}
	return 0;
}

static void full(char *out, size_t n, const char *section, const char *key)
{
	snprintf(out, n, "%s%s%s", section, *section ? "." : "", key);
}

/* A string; absent leaves *out untouched (required: error). No NULs. */
static int get_str(ctx *c, const tt_value *t, const char *section,
		   const char *key, bool required, char **out, const tt_value **where)
{
	char name[128];
	full(name, sizeof(name), section, key);
	const tt_value *v = tt_get(t, key);
	if (where)
		*where = v;
	if (!v) {
		if (required)
			return fail(c, t, "missing required key '%s'", name);
		return 0;
	}
	size_t len;
	const char *s = tt_str(v, &len);
	if (!s)
		return fail(c, v, "%s must be a string, not %s", name,
			    a_type(tt_type_of(v)));
	if (strlen(s) != len)
		return fail(c, v, "%s must not contain NUL characters", name);
	if (required && len == 0)
		return fail(c, v, "%s must not be empty", name);
	char *d = th_strdup(s);
	if (!d)
		return nomem(c);
	th_free(*out);
	*out = d;
	return 0;
}

static int get_bool(ctx *c, const tt_value *t, const char *section,
		    const char *key, bool *out)
{
	const tt_value *v = tt_get(t, key);
	if (!v)
		return 0;
	if (tt_type_of(v) != TT_BOOL) {
		char name[128];
		full(name, sizeof(name), section, key);
		return fail(c, v, "%s must be true or false, not %s", name,
			    a_type(tt_type_of(v)));
	}
	*out = tt_bool(v);
	return 0;
}

/* An integer in [min, max]. */
static int get_u64(ctx *c, const tt_value *t, const char *section,
		   const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
	const tt_value *v = tt_get(t, key);
	if (!v)
		return 0;
	char name[128];
	full(name, sizeof(name), section, key);
	if (tt_type_of(v) != TT_INTEGER) {
		if (min == 1 && max == INT64_MAX)
			return fail(c, v, "%s must be a positive integer, not %s",
				    name, a_type(tt_type_of(v)));
		return fail(c, v, "%s must be an integer from %llu to %llu, not %s",
			    name, (unsigned long long)min, (unsigned long long)max,
			    a_type(tt_type_of(v)));
	}
	int64_t x = tt_int(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max) {
		if (min == 1 && max == INT64_MAX)
			return fail(c, v, "%s must be a positive integer, not %lld", name,
				    (long long)x);
		return fail(c, v, "%s must be an integer from %llu to %llu, not %lld",
			    name, (unsigned long long)min, (unsigned long long)max,
			    (long long)x);
	}
	*out = (uint64_t)x;
	return 0;
}

static int get_u32(ctx *c, const tt_value *t, const char *section,
		   const char *key, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t x = *out;
	int rc = get_u64(c, t, section, key, min, max, &x);
	*out = (uint32_t)x;
	return rc;
}

/* An array of non-empty strings. */
static int get_list(ctx *c, const tt_value *t, const char *section,
		    const char *key, thm_strlist *out)
{
	const tt_value *v = tt_get(t, key);
	if (!v)
		return 0;
	char name[128];
	full(name, sizeof(name), section, key);
	if (tt_type_of(v) != TT_ARRAY)
		return fail(c, v, "%s must be an array of strings, not %s", name,
			    a_type(tt_type_of(v)));
	thm__strlist_release(out);
	out->set = true;
	for (size_t i = 0; i < tt_len(v); i++) {
		const tt_value *e = tt_at(v, i);
		size_t len;
		const char *s = tt_str(e, &len);
		if (!s || len == 0 || strlen(s) != len)
			return fail(c, e, "%s[%zu] must be a non-empty string", name, i);
		if (thm__strlist_push(out, s))
			return nomem(c);
	}
	return 0;
}

/* One of the names in choices (NULL-terminated); *out = its index. */
static int get_enum(ctx *c, const tt_value *t, const char *section,
		    const char *key, const char *const *choices, int *out)
{
	const tt_value *v = tt_get(t, key);
	if (!v)
		return 0;
	char name[128], list[160];
	full(name, sizeof(name), section, key);
	size_t n = 0;
	list[0] = '\0';
	for (int j = 0; choices[j]; j++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"",
				      j == 0 ? "" : choices[j + 1] ? ", " : " or ",
				      choices[j]);
	const char *s = tt_str(v, NULL);
	for (int j = 0; s && choices[j]; j++)
		if (strcmp(s, choices[j]) == 0) {
			*out = j;
			return 0;
		}
	if (!s)
		return fail(c, v, "%s must be %s, not %s", name, list,
			    a_type(tt_type_of(v)));
	return fail(c, v, "%s must be %s, not \"%s\"", name, list, s);
}

/* A table (absent: NULL, fine). */
static int get_table(ctx *c, const tt_value *t, const char *key,
		     const tt_value **out)
{
	const tt_value *v = tt_get(t, key);
	*out = NULL;
	if (!v)
		return 0;
	if (tt_type_of(v) != TT_TABLE)
		return fail(c, v, "%s must be a table, not %s", key,
			    a_type(tt_type_of(v)));
	*out = v;
	return 0;
}

/* ---- references: component, init_state ---- */

static bool is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	return true;
}

/* path relative to the manifest's directory, normalised. */
static char *resolve(ctx *c, const char *path)
{
	if (path[0] == '/' || !c->dir[0])
		return thm_path_normalize(path);
	size_t n = strlen(c->dir) + strlen(path) + 2;
	char *j = th_malloc(n);
	if (!j)
		return NULL;
	snprintf(j, n, "%s/%s", c->dir, path);
	char *r = thm_path_normalize(j);
	th_free(j);
	return r;
}

static int reference(ctx *c, const tt_value *v, const char *name, thm_ref *out)
{
	const char *s = tt_str(v, NULL);
	out->line = tt_line(v);
	out->col = tt_col(v);
	const char *hex = NULL;
	if (strncmp(s, "store:", 6) == 0) {
		if (!s[6])
			return fail(c, v, "%s: \"store:\" needs a label after it", name);
		out->kind = THM_REF_STORE;
		out->ref = th_strdup(s + 6);
	} else if (strncmp(s, "sha256:", 7) == 0 || is_hex64(s)) {
		hex = s[0] == 's' && s[1] == 'h' ? s + 7 : s;
		if (!is_hex64(hex))
			return fail(c, v, "%s: a sha256 reference needs 64 hex digits", name);
		out->kind = THM_REF_HASH;
		out->ref = th_strdup(hex);
		if (out->ref) {
			for (char *p = out->ref; *p; p++)
				if (*p >= 'A' && *p <= 'F')
					*p = (char)(*p - 'A' + 'a');
			th_unhex(out->ref, out->hash, 32);
		}
	} else {
		if (!s[0])
			return fail(c, v, "%s must not be empty", name);
		out->kind = THM_REF_PATH;
		out->ref = resolve(c, s);
	}
	if (!out->ref)
		return nomem(c);
	out->ref_len = strlen(out->ref);
	return 0;
}

/* ---- sections ---- */

static int parse_limits(ctx *c, const tt_value *root, thm_limits *l)
{
	static const char *const keys[] = { "memory_pages", "fuel_per_message",
		"mailbox_capacity", "request_timeout_ms", "max_message_bytes",
		"mailbox_full_ms", "mailbox_system_max", NULL };
	const tt_value *t;
	int rc = get_table(c, root, "limits", &t);
	if (rc || !t)
		return rc;
	if ((rc = known_keys(c, t, "limits", keys)) ||
	    (rc = get_u32(c, t, "limits", "memory_pages", 1, 65536, &l->memory_pages)) ||
	    (rc = get_u64(c, t, "limits", "fuel_per_message", 1, INT64_MAX,
			  &l->fuel_per_message)) ||
	    (rc = get_u32(c, t, "limits", "mailbox_capacity", 1, 1u << 24,
			  &l->mailbox_capacity)) ||
	    (rc = get_u64(c, t, "limits", "request_timeout_ms", 1, INT64_MAX,
			  &l->request_timeout_ms)) ||
	    (rc = get_u64(c, t, "limits", "max_message_bytes", 1, 1u << 30,
			  &l->max_message_bytes)) ||
	    (rc = get_u64(c, t, "limits", "mailbox_full_ms", 1, INT64_MAX,
			  &l->mailbox_full_ms)) ||
	    (rc = get_u32(c, t, "limits", "mailbox_system_max", 1, 1u << 24,
			  &l->mailbox_system_max)))
		return rc;
	return 0;
}

static int parse_health(ctx *c, const tt_value *sup, thm_health *h)
{
	static const char *const keys[] = { "interval_ms", "timeout_ms", "max_missed",
		"probe", NULL };
	const tt_value *t = tt_get(sup, "health");
	if (!t)
		return 0;
	if (tt_type_of(t) != TT_TABLE)
		return fail(c, t, "supervision.health must be a table, not %s",
			    a_type(tt_type_of(t)));
	int rc;
	h->enabled = true;
	if ((rc = known_keys(c, t, "supervision.health", keys)))
		return rc;
	if (!tt_get(t, "interval_ms"))
		return fail(c, t, "missing required key 'supervision.health.interval_ms'");
	if ((rc = get_u64(c, t, "supervision.health", "interval_ms", 1, INT64_MAX,
			  &h->interval_ms)) ||
	    (rc = get_u64(c, t, "supervision.health", "timeout_ms", 1, INT64_MAX,
			  &h->timeout_ms)) ||
	    (rc = get_u32(c, t, "supervision.health", "max_missed", 1, 1000000,
			  &h->max_missed)))
		return rc;
	char *probe = NULL;
	const tt_value *pv;
	if ((rc = get_str(c, t, "supervision.health", "probe", false, &probe, &pv)))
		return rc;
	if (probe && strcmp(probe, "ping") != 0) {
		if (strncmp(probe, "export:", 7) != 0 || !probe[7]) {
			th_free(probe);
			return fail(c, pv, "supervision.health.probe must be \"ping\" or \"export:<name>\"");
		}
		h->probe_export = th_strdup(probe + 7);
		th_free(probe);
		if (!h->probe_export)
			return nomem(c);
		return 0;
	}
	th_free(probe);
	return 0;
}

static int parse_supervision(ctx *c, const tt_value *root, thm_supervision *s)
{
	static const char *const keys[] = { "strategy", "restart", "max_restarts",
		"within_seconds", "backoff_min_ms", "backoff_max_ms", "backoff_jitter",
		"circuit_failures", "circuit_reset_ms", "state", "mailbox", "health",
		NULL };
	static const char *const strategies[] = { "one_for_one", "one_for_all",
		"rest_for_one", NULL };
	static const char *const restarts[] = { "permanent", "transient", "temporary",
		NULL };
	static const char *const states[] = { "preserve", "reset", NULL };
	static const char *const mailboxes[] = { "preserve", "discard", NULL };
	const char *sec = "supervision";
	const tt_value *t;
	int rc = get_table(c, root, sec, &t);
	if (rc || !t)
		return rc;
	s->present = true;
	int strategy = (int)s->strategy, restart = (int)s->restart, st = 0, mb = 0;
	if ((rc = known_keys(c, t, sec, keys)) ||
	    (rc = get_enum(c, t, sec, "strategy", strategies, &strategy)) ||
	    (rc = get_enum(c, t, sec, "restart", restarts, &restart)) ||
	    (rc = get_u32(c, t, sec, "max_restarts", 0, 1000000, &s->max_restarts)) ||
	    (rc = get_u32(c, t, sec, "within_seconds", 1, 86400 * 365,
			  &s->within_seconds)) ||
	    (rc = get_u64(c, t, sec, "backoff_min_ms", 0, INT64_MAX, &s->backoff_min_ms)) ||
	    (rc = get_u64(c, t, sec, "backoff_max_ms", 0, INT64_MAX, &s->backoff_max_ms)) ||
	    (rc = get_u32(c, t, sec, "circuit_failures", 0, 1000000,
			  &s->circuit_failures)) ||
	    (rc = get_u64(c, t, sec, "circuit_reset_ms", 1, INT64_MAX,
			  &s->circuit_reset_ms)) ||
	    (rc = get_enum(c, t, sec, "state", states, &st)) ||
	    (rc = get_enum(c, t, sec, "mailbox", mailboxes, &mb)) ||
	    (rc = parse_health(c, t, &s->health)))
		return rc;
	s->strategy = (thm_strategy)strategy;
	s->restart = (thm_restart)restart;
	s->reset_state = st == 1;
	s->discard_mailbox = mb == 1;
	const tt_value *j = tt_get(t, "backoff_jitter");
	if (j) {
		double x = tt_type_of(j) == TT_FLOAT ? tt_float(j)
			   : tt_type_of(j) == TT_INTEGER ? (double)tt_int(j) : -1.0;
		if (!(x >= 0.0 && x <= 1.0))
			return fail(c, j, "supervision.backoff_jitter must be a number from 0 to 1");
		s->backoff_jitter = x;
	}
	if (s->backoff_min_ms > s->backoff_max_ms)
		return fail(c, tt_get(t, "backoff_max_ms") ? tt_get(t, "backoff_max_ms")
							   : tt_get(t, "backoff_min_ms"),
			    "supervision.backoff_max_ms (%llu) must not be less than supervision.backoff_min_ms (%llu)",
			    (unsigned long long)s->backoff_max_ms,
			    (unsigned long long)s->backoff_min_ms);
	return 0;
}

/* A duration: an integer (seconds) or a string "<n>ms|s|m|h|d". */
static int get_duration_ms(ctx *c, const tt_value *t, const char *name,
			   const char *key, uint64_t *out)
{
	const tt_value *v = tt_get(t, key);
	if (!v)
		return 0;
	if (tt_type_of(v) == TT_INTEGER) {
		int64_t x = tt_int(v);
		if (x < 1 || (uint64_t)x > UINT64_MAX / 1000)
			return fail(c, v, "%s must be a positive number of seconds, not %lld",
				    name, (long long)x);
		*out = (uint64_t)x * 1000;
		return 0;
	}
	size_t len;
	const char *s = tt_str(v, &len);
	if (!s)
		return fail(c, v, "%s must be a duration (\"30s\", \"10m\", \"2h\", \"7d\", "
			    "\"500ms\" or an integer of seconds), not %s", name,
			    a_type(tt_type_of(v)));
	uint64_t n = 0;
	size_t i = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (n > (UINT64_MAX - 9) / 10)
			goto bad;
		n = n * 10 + (uint64_t)(s[i] - '0');
		i++;
	}
	if (i == 0 || n == 0)
		goto bad;
	const char *u = s + i;
	uint64_t mul = !strcmp(u, "ms") ? 1 : !strcmp(u, "s") ? 1000
		       : !strcmp(u, "m") ? 60000 : !strcmp(u, "h") ? 3600000
		       : !strcmp(u, "d") ? 86400000 : 0;
	if (!mul || strlen(s) != len || n > UINT64_MAX / mul)
		goto bad;
	*out = n * mul;
	return 0;
bad:
	return fail(c, v, "%s must be a positive duration such as \"30s\", \"10m\", "
		    "\"2h\", \"7d\" or \"500ms\", not \"%s\"", name, s);
}

/* [chain]: durability and retention of the actor's Event Chain. A
 * durability that contradicts an explicit save_chain is an error (which of
 * the two was meant cannot be guessed); always/batch imply save_chain. */
static int parse_chain(ctx *c, const tt_value *root, thm_manifest *m)
{
	static const char *const keys[] = { "durability", "batch_ms", "retain_events",
		"retain_bytes", "retain_age", NULL };
	static const char *const durs[] = { "always", "batch", "none", NULL };
	const char *sec = "chain";
	thm_chain *ch = &m->chain;
	const tt_value *t;
	int rc = get_table(c, root, sec, &t);
	if (rc || !t)
		return rc;
	int d = -1;
	if ((rc = known_keys(c, t, sec, keys)) ||
	    (rc = get_enum(c, t, sec, "durability", durs, &d)) ||
	    (rc = get_u32(c, t, sec, "batch_ms", 1, 60000, &ch->batch_ms)) ||
	    (rc = get_u64(c, t, sec, "retain_events", 1, INT64_MAX, &ch->retain_events)) ||
	    (rc = get_u64(c, t, sec, "retain_bytes", 1, INT64_MAX, &ch->retain_bytes)) ||
	    (rc = get_duration_ms(c, t, "chain.retain_age", "retain_age",
				  &ch->retain_age_ms)))
		return rc;
	if (d >= 0) {
		const tt_value *dv = tt_get(t, "durability"), *sv = tt_get(root, "save_chain");
		ch->durability = d == 0 ? THM_DURABLE_ALWAYS : d == 1 ? THM_DURABLE_BATCH
								    : THM_DURABLE_NONE;
		bool disk = ch->durability != THM_DURABLE_NONE;
		if (sv && m->save_chain != disk)
			return fail(c, dv, "chain.durability = \"%s\" contradicts save_chain = %s "
				    "(line %u): drop one", durs[d],
				    m->save_chain ? "true" : "false", tt_line(sv));
		m->save_chain = disk;
	}
	if (tt_get(t, "batch_ms") && ch->durability != THM_DURABLE_BATCH)
		return fail(c, tt_get(t, "batch_ms"),
			    "chain.batch_ms needs chain.durability = \"batch\"");
	return 0;
}

/* The restriction fields of one handler, shared by [[handler]] tables and
 * [permission_policy.X] config tables. */
static int handler_fields(ctx *c, const tt_value *t, const char *sec,
			  thm_handler_kind k, thm_perms *p, bool is_config)
{
	int rc = 0;
	switch (k) {
	case THM_H_FILESYSTEM: {
		const tt_value *pv;
		char *path = NULL;
		if ((rc = get_str(c, t, sec, "path", false, &path, &pv)))
			return rc;
		if (path) {
			if (!path[0]) {
				th_free(path);
				return fail(c, pv, "%s.path must not be empty", sec);
			}
			th_free(p->fs.path);
			p->fs.path = resolve(c, path);
			th_free(path);
			if (!p->fs.path)
				return nomem(c);
		}
		if ((rc = get_bool(c, t, sec, "new_dir", &p->fs.new_dir)) ||
		    (rc = get_bool(c, t, sec, "read", &p->fs.read)) ||
		    (rc = get_bool(c, t, sec, "write", &p->fs.write)) ||
		    (rc = get_list(c, t, sec, "allowed_paths", &p->fs.allowed_paths)))
			return rc;
		if (p->fs.allowed_paths.set) { /* relative to the manifest too */
			for (size_t i = 0; i < p->fs.allowed_paths.n; i++) {
				char *r = resolve(c, p->fs.allowed_paths.v[i]);
				if (!r)
					return nomem(c);
				th_free(p->fs.allowed_paths.v[i]);
				p->fs.allowed_paths.v[i] = r;
			}
		}
		if (!is_config && !p->fs.path && !p->fs.new_dir)
			return fail(c, t, "%s: a filesystem handler needs 'path' (or new_dir = true)",
				    sec);
		return 0;
	}
	case THM_H_ENVIRONMENT:
		if ((rc = get_list(c, t, sec, "allowed_vars", &p->env.allowed_vars)) ||
		    (rc = get_list(c, t, sec, "denied_vars", &p->env.denied_vars)) ||
		    (rc = get_list(c, t, sec, "allowed_prefixes", &p->env.allowed_prefixes)) ||
		    (rc = get_bool(c, t, sec, "allow_list_all", &p->env.allow_list_all)))
			return rc;
		return 0;
	case THM_H_TIMING:
		if ((rc = get_u64(c, t, sec, "max_sleep_duration", 0, INT64_MAX,
				  &p->timing.max_sleep_ms)) ||
		    (rc = get_u64(c, t, sec, "min_sleep_duration", 0, INT64_MAX,
				  &p->timing.min_sleep_ms)))
			return rc;
		if (p->timing.min_sleep_ms > p->timing.max_sleep_ms)
			return fail(c, tt_get(t, "min_sleep_duration") ? tt_get(t, "min_sleep_duration") : t,
				    "%s.min_sleep_duration (%llu) must not exceed max_sleep_duration (%llu)",
				    sec, (unsigned long long)p->timing.min_sleep_ms,
				    (unsigned long long)p->timing.max_sleep_ms);
		return 0;
	case THM_H_RANDOM:
		if (tt_get(t, "seed")) {
			if ((rc = get_u64(c, t, sec, "seed", 0, INT64_MAX, &p->random.seed)))
				return rc;
			p->random.has_seed = true;
		}
		if ((rc = get_u64(c, t, sec, "max_bytes", 1, INT64_MAX, &p->random.max_bytes)) ||
		    (rc = get_u64(c, t, sec, "max_int", 1, INT64_MAX, &p->random.max_int)) ||
		    (rc = get_bool(c, t, sec, "allow_crypto_secure",
				   &p->random.allow_crypto_secure)))
			return rc;
		return 0;
	case THM_H_HTTP_CLIENT:
		if ((rc = get_list(c, t, sec, "allowed_hosts", &p->http.allowed_hosts)) ||
		    (rc = get_list(c, t, sec, "allowed_methods", &p->http.allowed_methods)) ||
		    (rc = get_u64(c, t, sec, "max_redirects", 0, 1000, &p->http.max_redirects)) ||
		    (rc = get_u64(c, t, sec, "timeout", 1, INT64_MAX, &p->http.timeout_ms)))
			return rc;
		return 0;
	default:
		return 0;
	}
}

/* Keys each handler kind takes besides `type`. */
static const char *const *handler_keys(thm_handler_kind k, bool is_config)
{
	static const char *const none[] = { "type", NULL };
	static const char *const fs[] = { "type", "path", "new_dir", "read", "write",
		"allowed_paths", NULL };
	static const char *const env[] = { "type", "allowed_vars", "denied_vars",
		"allowed_prefixes", "allow_list_all", NULL };
	static const char *const timing[] = { "type", "max_sleep_duration",
		"min_sleep_duration", NULL };
	static const char *const rnd[] = { "type", "seed", "max_bytes", "max_int",
		"allow_crypto_secure", NULL };
	static const char *const rnd_cfg[] = { "type", "max_bytes", "max_int",
		"allow_crypto_secure", NULL };
	static const char *const http[] = { "type", "allowed_hosts", "allowed_methods",
		"max_redirects", "timeout", NULL };
	const char *const *l;
	switch (k) {
	case THM_H_FILESYSTEM: l = fs; break;
	case THM_H_ENVIRONMENT: l = env; break;
	case THM_H_TIMING: l = timing; break;
	case THM_H_RANDOM: l = is_config ? rnd_cfg : rnd; break;
	case THM_H_HTTP_CLIENT: l = http; break;
	default: l = none; break;
	}
	return is_config ? l + 1 : l; /* a policy config has no `type` */
}

static int parse_handlers(ctx *c, const tt_value *root, thm_manifest *m)
{
	const tt_value *hs = tt_get(root, "handler");
	if (!hs)
		return 0;
	if (tt_type_of(hs) != TT_ARRAY)
		return fail(c, hs, "handler must be an array of tables ([[handler]]), not %s",
			    a_type(tt_type_of(hs)));
	size_t n = tt_len(hs);
	m->handlers = th_calloc(n ? n : 1, sizeof(*m->handlers));
	if (!m->handlers)
		return nomem(c);
	/* Defaults of a handler's config when it is listed. */
	m->requested.fs.read = m->requested.fs.write = true;
	m->requested.env.allow_list_all = false;
	m->requested.timing.max_sleep_ms = 3600000;
	m->requested.timing.min_sleep_ms = 1;
	m->requested.random.max_bytes = 1u << 20;
	m->requested.random.max_int = INT64_MAX;
	m->requested.random.allow_crypto_secure = false;
	m->requested.http.max_redirects = 5;
	m->requested.http.timeout_ms = 30000;
	for (size_t i = 0; i < n; i++) {
		const tt_value *h = tt_at(hs, i);
		char sec[64];
		snprintf(sec, sizeof(sec), "handler[%zu]", i);
		if (tt_type_of(h) != TT_TABLE)
			return fail(c, h, "%s must be a table, not %s", sec,
				    a_type(tt_type_of(h)));
		const tt_value *tv = tt_get(h, "type");
		if (!tv)
			return fail(c, h, "%s: missing required key 'type'", sec);
		const char *type = tt_str(tv, NULL);
		int k = thm_handler_kind_of(type);
		if (k < 0) {
			char list[200];
			size_t ln = 0;
			for (int j = 0; j < THM_H_COUNT; j++)
				ln += (size_t)snprintf(list + ln, sizeof(list) - ln, "%s%s",
						       j ? ", " : "", handler_names[j]);
			if (!type)
				return fail(c, tv, "%s.type must be a string, not %s", sec,
					    a_type(tt_type_of(tv)));
			return fail(c, tv, "%s.type: unknown handler \"%s\" (known: %s)", sec,
				    type, list);
		}
		if (m->requested.enabled[k]) {
			for (size_t j = 0; j < m->n_handlers; j++)
				if ((int)m->handlers[j].kind == k)
					return fail(c, tv, "%s: handler \"%s\" is already listed at line %u",
						    sec, type, m->handlers[j].line);
		}
		m->handlers[m->n_handlers++] = (thm_handler){ (thm_handler_kind)k,
							      tt_line(h), tt_col(h) };
		m->requested.enabled[k] = true;
		snprintf(sec, sizeof(sec), "handler.%s", type);
		int rc = known_keys(c, h, sec, handler_keys((thm_handler_kind)k, false));
		if (!rc)
			rc = handler_fields(c, h, sec, (thm_handler_kind)k, &m->requested, false);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_policy(ctx *c, const tt_value *root, thm_policy *p)
{
	static const char *const modes[] = { "inherit", "disallow", "restrict", NULL };
	const tt_value *t;
	int rc = get_table(c, root, "permission_policy", &t);
	if (rc || !t)
		return rc;
	for (size_t i = 0; i < tt_len(t); i++) {
		size_t klen;
		const char *name = tt_key_at(t, i, &klen);
		const tt_value *e = tt_at(t, i);
		int k = -1;
		for (int j = 0; j < THM_H_COUNT && strlen(name) == klen; j++)
			if (strcmp(name, policy_names[j]) == 0 ||
			    strcmp(name, handler_names[j]) == 0)
				k = j;
		if (k < 0) {
			char list[200];
			size_t ln = 0;
			for (int j = 0; j < THM_H_COUNT; j++)
				ln += (size_t)snprintf(list + ln, sizeof(list) - ln, "%s%s",
						       j ? ", " : "", policy_names[j]);
			return fail(c, e, "unknown key 'permission_policy.%.*s' (known: %s)",
				    (int)klen, name, list);
		}
		char sec[96];
		snprintf(sec, sizeof(sec), "permission_policy.%s", name);
		if (tt_type_of(e) != TT_TABLE)
			return fail(c, e, "%s must be a table with type = \"inherit\", \"disallow\" or \"restrict\"",
				    sec);
		static const char *const keys[] = { "type", "config", NULL };
		if ((rc = known_keys(c, e, sec, keys)))
			return rc;
		if (!tt_get(e, "type"))
			return fail(c, e, "%s: missing required key 'type'", sec);
		int mode = 0;
		if ((rc = get_enum(c, e, sec, "type", modes, &mode)))
			return rc;
		p->mode[k] = (thm_inherit)mode;
		const tt_value *cfg = tt_get(e, "config");
		if (mode != THM_RESTRICT) {
			if (cfg)
				return fail(c, cfg, "%s.config is only allowed with type = \"restrict\"",
					    sec);
			continue;
		}
		if (!cfg)
			continue; /* restrict to nothing narrower: same as inherit */
		if (tt_type_of(cfg) != TT_TABLE)
			return fail(c, cfg, "%s.config must be a table, not %s", sec,
				    a_type(tt_type_of(cfg)));
		char csec[112];
		snprintf(csec, sizeof(csec), "%s.config", sec);
		if ((rc = known_keys(c, cfg, csec, handler_keys((thm_handler_kind)k, true))) ||
		    (rc = handler_fields(c, cfg, csec, (thm_handler_kind)k, &p->restrict_to,
					 true)))
			return rc;
	}
	return 0;
}

static int parse_root(ctx *c, const tt_value *root, thm_manifest *m)
{
	static const char *const keys[] = { "name", "version", "component", "package",
		"component_path", "description", "long_description", "save_chain",
		"init_state", "handler", "permission_policy", "limits", "supervision",
		"chain", NULL };
	int rc;
	if ((rc = known_keys(c, root, "", keys)) ||
	    (rc = get_str(c, root, "", "name", true, &m->name, NULL)) ||
	    (rc = get_str(c, root, "", "version", true, &m->version, NULL)) ||
	    (rc = get_str(c, root, "", "description", false, &m->description, NULL)) ||
	    (rc = get_str(c, root, "", "long_description", false, &m->long_description,
			  NULL)) ||
	    (rc = get_bool(c, root, "", "save_chain", &m->save_chain)))
		return rc;
	/* component; Theater's later "package" and earlier "component_path"
	 * name the same thing. */
	const char *aliases[] = { "component", "package", "component_path" };
	const tt_value *cv = NULL;
	const char *cname = NULL;
	for (int i = 0; i < 3; i++) {
		const tt_value *v = tt_get(root, aliases[i]);
		if (v && cv)
			return fail(c, v, "'%s' and '%s' both name the component: keep one",
				    cname, aliases[i]);
		if (v) {
			cv = v;
			cname = aliases[i];
		}
	}
	if (!cv)
		return fail(c, root, "missing required key 'component'");
	if (tt_type_of(cv) != TT_STRING)
		return fail(c, cv, "%s must be a string (a path, \"store:<label>\" or \"sha256:<hex>\"), not %s",
			    cname, a_type(tt_type_of(cv)));
	if ((rc = reference(c, cv, cname, &m->component)))
		return rc;
	const tt_value *iv = tt_get(root, "init_state");
	if (iv) {
		if (tt_type_of(iv) == TT_STRING) {
			if ((rc = reference(c, iv, "init_state", &m->init_state)))
				return rc;
		} else if (tt_type_of(iv) == TT_TABLE) {
			m->init_state.kind = THM_REF_INLINE;
			m->init_state.line = tt_line(iv);
			m->init_state.col = tt_col(iv);
			m->init_state.ref = tt_to_json(iv, &m->init_state.ref_len);
			if (!m->init_state.ref)
				return nomem(c);
		} else {
			return fail(c, iv, "init_state must be a string (a path or store reference) or a table, not %s",
				    a_type(tt_type_of(iv)));
		}
	}
	if ((rc = parse_handlers(c, root, m)) || (rc = parse_policy(c, root, &m->policy)) ||
	    (rc = parse_limits(c, root, &m->limits)) ||
	    (rc = parse_supervision(c, root, &m->supervision)) ||
	    (rc = parse_chain(c, root, m)))
		return rc;
	return 0;
}

static void defaults(thm_manifest *m)
{
	thm__perms_open(&m->requested);
	thm__perms_open(&m->policy.restrict_to);
	m->limits = (thm_limits){ THM_DEFAULT_MEMORY_PAGES, THM_DEFAULT_FUEL_PER_MESSAGE,
				  THM_DEFAULT_MAILBOX_CAPACITY,
				  THM_DEFAULT_REQUEST_TIMEOUT_MS,
				  THM_DEFAULT_MAX_MESSAGE_BYTES };
	thm_supervision *s = &m->supervision;
	s->strategy = THM_ONE_FOR_ONE;
	s->restart = THM_PERMANENT;
	s->max_restarts = 3;
	s->within_seconds = 5;
	s->backoff_min_ms = 10;
	s->backoff_max_ms = 5000;
	s->backoff_jitter = 0.2;
	s->circuit_failures = 5;
	s->circuit_reset_ms = 10000;
	s->health.timeout_ms = 1000;
	s->health.max_missed = 3;
}

/* Parse text; relative paths are resolved against file's directory only
 * when resolve is set (thm_load). */
static int parse_text(const char *text, size_t len, const char *file, bool resolve_paths,
		      thm_manifest **out, th_err *err)
{
	*out = NULL;
	if (!file)
		file = "<string>";
	thm_manifest *m = th_calloc(1, sizeof(*m));
	if (!m)
		return th_err_set(err, TH_ENOMEM, "%s: out of memory", file);
	defaults(m);
	m->file = th_strdup(file);
	const char *slash = strrchr(file, '/');
	if (!resolve_paths)
		m->dir = th_strdup("");
	else if (slash)
		m->dir = th_strndup(file, (size_t)(slash - file) + (slash == file));
	else
		m->dir = th_strdup(".");
	if (!m->file || !m->dir) {
		thm_free(m);
		return th_err_set(err, TH_ENOMEM, "%s: out of memory", file);
	}
	ctx c = { m->file, m->dir, err };
	tt_options opt = { .max_bytes = THM_MAX_BYTES };
	tt_where where;
	tt_value *root = NULL;
	th_err terr = { 0 };
	int rc = tt_parse(text, len, &opt, &root, &where, &terr);
	if (rc) {
		if (where.line)
			th_err_set(err, rc, "%s:%u:%u: %s", m->file, where.line, where.col,
				   where.what);
		else
			th_err_set(err, rc, "%s: %s", m->file, terr.msg);
		thm_free(m);
		return rc;
	}
	rc = parse_root(&c, root, m);
	tt_free(root);
	if (rc) {
		thm_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int thm_parse(const char *text, size_t len, const char *file, thm_manifest **out,
	      th_err *err)
{
	return parse_text(text, len, file, false, out, err);
}

int thm_load(const char *path, thm_manifest **out, th_err *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return th_err_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_EIO,
				  "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return th_err_set(err, TH_EINVAL, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > THM_MAX_BYTES) {
		close(fd);
		return th_err_set(err, TH_ELIMIT, "%s: %lld bytes, more than the %u a manifest may have",
				  path, (long long)st.st_size, THM_MAX_BYTES);
	}
	size_t n = (size_t)st.st_size, got = 0;
	char *buf = th_malloc(n + 1);
	if (!buf) {
		close(fd);
		return th_err_set(err, TH_ENOMEM, "%s: out of memory", path);
	}
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = errno;
			close(fd);
			th_free(buf);
			return th_err_set(err, TH_EIO, "%s: read failed: %s", path,
					  r < 0 ? strerror(e) : "file shrank");
		}
		got += (size_t)r;
	}
	close(fd);
	int rc = parse_text(buf, n, path, true, out, err);
	th_free(buf);
	return rc;
}

static void ref_release(thm_ref *r)
{
	th_free(r->ref);
}

void thm_free(thm_manifest *m)
{
	if (!m)
		return;
	th_free(m->file);
	th_free(m->dir);
	th_free(m->name);
	th_free(m->version);
	th_free(m->description);
	th_free(m->long_description);
	ref_release(&m->component);
	ref_release(&m->init_state);
	th_free(m->handlers);
	thm_perms_release(&m->requested);
	thm_perms_release(&m->policy.restrict_to);
	th_free(m->supervision.health.probe_export);
	th_free(m);
}
