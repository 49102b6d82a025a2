/*
 * test_manifest.c - manifests: every field, defaults, Theater-style input,
 * bad manifests with their exact messages, references, the permission
 * model (intersection, policy, "never wider than the parent"), allocation
 * failure.
 */
#include <stdio.h>

#include "base/base.h"
#include "test.h"
#include "theater/manifest.h"

static const char full_manifest[] =
	"name = \"counter\"\n"
	"version = \"0.2.0\"\n"
	"component = \"store:counter-wasm\"\n"
	"description = \"counts\"\n"
	"long_description = \"counts messages\"\n"
	"save_chain = true\n"
	"init_state = { count = 3, tags = [\"a\"] }\n"
	"\n"
	"[[handler]]\n"
	"type = \"runtime\"\n"
	"[[handler]]\n"
	"type = \"message-server\"\n"
	"[[handler]]\n"
	"type = \"filesystem\"\n"
	"path = \"/srv/data\"\n"
	"write = false\n"
	"[[handler]]\n"
	"type = \"environment\"\n"
	"allowed_vars = [\"HOME\", \"LANG\"]\n"
	"denied_vars = [\"SECRET\"]\n"
	"[[handler]]\n"
	"type = \"timing\"\n"
	"max_sleep_duration = 60000\n"
	"min_sleep_duration = 5\n"
	"[[handler]]\n"
	"type = \"random\"\n"
	"seed = 42\n"
	"max_bytes = 4096\n"
	"[[handler]]\n"
	"type = \"http-client\"\n"
	"allowed_hosts = [\"example.com\"]\n"
	"timeout = 2000\n"
	"\n"
	"[permission_policy.file_system]\n"
	"type = \"restrict\"\n"
	"config = { read = true, write = false, allowed_paths = [\"/srv/data/pub\"] }\n"
	"[permission_policy.http_client]\n"
	"type = \"disallow\"\n"
	"\n"
	"[limits]\n"
	"memory_pages = 32\n"
	"fuel_per_message = 5_000_000\n"
	"mailbox_capacity = 64\n"
	"request_timeout_ms = 2500\n"
	"max_message_bytes = 65536\n"
	"mailbox_full_ms = 750\n"
	"mailbox_system_max = 300\n"
	"\n"
	"[supervision]\n"
	"strategy = \"rest_for_one\"\n"
	"restart = \"transient\"\n"
	"max_restarts = 4\n"
	"within_seconds = 10\n"
	"backoff_min_ms = 20\n"
	"backoff_max_ms = 800\n"
	"backoff_jitter = 0.5\n"
	"circuit_failures = 3\n"
	"circuit_reset_ms = 1500\n"
	"state = \"reset\"\n"
	"mailbox = \"discard\"\n"
	"[supervision.health]\n"
	"interval_ms = 1000\n"
	"timeout_ms = 200\n"
	"max_missed = 2\n"
	"probe = \"export:health\"\n";

static thm_manifest *parse_ok(const char *text)
{
	th_err err = { 0 };
	thm_manifest *m = NULL;
	int rc = thm_parse(text, strlen(text), "t/manifest.toml", &m, &err);
	if (rc)
		fprintf(stderr, "  unexpected error: %s\n", err.msg);
	REQUIRE(rc == 0 && m);
	return m;
}

static const char *parse_bad(const char *text)
{
	static th_err err;
	memset(&err, 0, sizeof(err));
	thm_manifest *m = (thm_manifest *)1;
	int rc = thm_parse(text, strlen(text), "counter/manifest.toml", &m, &err);
	CHECK(rc != 0);
	CHECK(m == NULL);
	return err.msg;
}

#define BASE "name = \"c\"\nversion = \"1\"\ncomponent = \"c.wasm\"\n"

TEST(every_field)
{
	thm_manifest *m = parse_ok(full_manifest);
	CHECK_EQ_STR(m->name, "counter");
	CHECK_EQ_STR(m->version, "0.2.0");
	CHECK_EQ_STR(m->description, "counts");
	CHECK_EQ_STR(m->long_description, "counts messages");
	CHECK_EQ_INT(m->component.kind, THM_REF_STORE);
	CHECK_EQ_STR(m->component.ref, "counter-wasm");
	CHECK(m->save_chain);
	CHECK_EQ_INT(m->init_state.kind, THM_REF_INLINE);
	CHECK_EQ_STR(m->init_state.ref, "{\"count\":3,\"tags\":[\"a\"]}");
	CHECK_EQ_INT(m->init_state.line, 7);
	CHECK_EQ_INT(m->n_handlers, 7);
	CHECK_EQ_INT(m->handlers[2].kind, THM_H_FILESYSTEM);
	CHECK_EQ_INT(m->handlers[2].line, 13);
	CHECK(m->requested.enabled[THM_H_RUNTIME]);
	CHECK(!m->requested.enabled[THM_H_SUPERVISOR]);
	CHECK_EQ_STR(m->requested.fs.path, "/srv/data");
	CHECK(m->requested.fs.read && !m->requested.fs.write);
	CHECK_EQ_INT(m->requested.env.allowed_vars.n, 2);
	CHECK_EQ_STR(m->requested.env.denied_vars.v[0], "SECRET");
	CHECK_EQ_INT(m->requested.timing.max_sleep_ms, 60000);
	CHECK_EQ_INT(m->requested.timing.min_sleep_ms, 5);
	CHECK(m->requested.random.has_seed);
	CHECK_EQ_INT(m->requested.random.seed, 42);
	CHECK_EQ_INT(m->requested.random.max_bytes, 4096);
	CHECK_EQ_STR(m->requested.http.allowed_hosts.v[0], "example.com");
	CHECK_EQ_INT(m->requested.http.timeout_ms, 2000);
	CHECK_EQ_INT(m->policy.mode[THM_H_FILESYSTEM], THM_RESTRICT);
	CHECK_EQ_INT(m->policy.mode[THM_H_HTTP_CLIENT], THM_DISALLOW);
	CHECK_EQ_INT(m->policy.mode[THM_H_TIMING], THM_INHERIT);
	CHECK(!m->policy.restrict_to.fs.write);
	CHECK_EQ_STR(m->policy.restrict_to.fs.allowed_paths.v[0], "/srv/data/pub");
	CHECK_EQ_INT(m->limits.memory_pages, 32);
	CHECK_EQ_INT(m->limits.fuel_per_message, 5000000);
	CHECK_EQ_INT(m->limits.mailbox_capacity, 64);
	CHECK_EQ_INT(m->limits.request_timeout_ms, 2500);
	CHECK_EQ_INT(m->limits.max_message_bytes, 65536);
	CHECK_EQ_INT(m->limits.mailbox_full_ms, 750);
	CHECK_EQ_INT(m->limits.mailbox_system_max, 300);
	const thm_supervision *s = &m->supervision;
	CHECK(s->present);
	CHECK_EQ_INT(s->strategy, THM_REST_FOR_ONE);
	CHECK_EQ_INT(s->restart, THM_TRANSIENT);
	CHECK_EQ_INT(s->max_restarts, 4);
	CHECK_EQ_INT(s->within_seconds, 10);
	CHECK_EQ_INT(s->backoff_min_ms, 20);
	CHECK_EQ_INT(s->backoff_max_ms, 800);
	CHECK(s->backoff_jitter == 0.5);
	CHECK_EQ_INT(s->circuit_failures, 3);
	CHECK_EQ_INT(s->circuit_reset_ms, 1500);
	CHECK(s->reset_state && s->discard_mailbox);
	CHECK(s->health.enabled);
	CHECK_EQ_INT(s->health.interval_ms, 1000);
	CHECK_EQ_INT(s->health.timeout_ms, 200);
	CHECK_EQ_INT(s->health.max_missed, 2);
	CHECK_EQ_STR(s->health.probe_export, "health");
	thm_free(m);
}

TEST(defaults)
{
	thm_manifest *m = parse_ok(BASE);
	CHECK_EQ_INT(m->component.kind, THM_REF_PATH);
	CHECK_EQ_STR(m->component.ref, "c.wasm");
	CHECK(m->description == NULL);
	CHECK(!m->save_chain);
	CHECK_EQ_INT(m->init_state.kind, THM_REF_NONE);
	CHECK_EQ_INT(m->n_handlers, 0);
	CHECK_EQ_INT(m->limits.memory_pages, THM_DEFAULT_MEMORY_PAGES);
	CHECK_EQ_INT(m->limits.fuel_per_message, THM_DEFAULT_FUEL_PER_MESSAGE);
	CHECK_EQ_INT(m->limits.mailbox_capacity, THM_DEFAULT_MAILBOX_CAPACITY);
	CHECK_EQ_INT(m->limits.request_timeout_ms, THM_DEFAULT_REQUEST_TIMEOUT_MS);
	CHECK_EQ_INT(m->limits.max_message_bytes, THM_DEFAULT_MAX_MESSAGE_BYTES);
	CHECK_EQ_INT(m->limits.mailbox_full_ms, 0);
	CHECK_EQ_INT(m->limits.mailbox_system_max, 0);
	CHECK(!m->supervision.present);
	CHECK_EQ_INT(m->supervision.strategy, THM_ONE_FOR_ONE);
	CHECK_EQ_INT(m->supervision.restart, THM_PERMANENT);
	CHECK_EQ_INT(m->supervision.max_restarts, 3);
	CHECK_EQ_INT(m->supervision.within_seconds, 5);
	CHECK(!m->supervision.reset_state && !m->supervision.discard_mailbox);
	CHECK(!m->supervision.health.enabled);
	thm_free(m);
	m = parse_ok(BASE "[[handler]]\ntype = \"timing\"\n[[handler]]\ntype = \"random\"\n"
		     "[supervision.health]\ninterval_ms = 50\n");
	CHECK_EQ_INT(m->requested.timing.max_sleep_ms, 3600000);
	CHECK_EQ_INT(m->requested.timing.min_sleep_ms, 1);
	CHECK_EQ_INT(m->requested.random.max_bytes, 1 << 20);
	CHECK(!m->requested.random.has_seed);
	CHECK(m->supervision.health.enabled);
	CHECK_EQ_INT(m->supervision.health.timeout_ms, 1000);
	CHECK(m->supervision.health.probe_export == NULL);
	thm_free(m);
}

TEST(theater_style_manifest)
{
	/* As Theater's own test actors write them (package = ...). */
	thm_manifest *m = parse_ok(
		"name = \"wasi-filesystem-test\"\nversion = \"0.1.0\"\n"
		"package = \"./target/wasm32-unknown-unknown/release/fs_test.wasm\"\n"
		"description = \"WASI filesystem interface test actor\"\nsave_chain = true\n\n"
		"[[handler]]\ntype = \"runtime\"\n\n"
		"[[handler]]\ntype = \"timing\"\nmax_sleep_duration = 3600000\nmin_sleep_duration = 1\n\n"
		"[[handler]]\ntype = \"filesystem\"\npath = \"/tmp/theater-fs-test\"\n\n"
		"[[handler]]\ntype = \"environment\"\nallow_list_all = false\n");
	CHECK_EQ_STR(m->component.ref, "target/wasm32-unknown-unknown/release/fs_test.wasm");
	CHECK_EQ_INT(m->n_handlers, 4);
	CHECK_EQ_STR(m->requested.fs.path, "/tmp/theater-fs-test");
	thm_free(m);
}

TEST(references)
{
	const char hex[] = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
	char text[512];
	snprintf(text, sizeof(text), "name='a'\nversion='1'\ncomponent='sha256:%s'\n"
		 "init_state = '%s'\n", hex, hex);
	thm_manifest *m = parse_ok(text);
	CHECK_EQ_INT(m->component.kind, THM_REF_HASH);
	CHECK_EQ_STR(m->component.ref,
		     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	CHECK_EQ_INT(m->component.hash[0], 0x9f);
	CHECK_EQ_INT(m->component.hash[31], 0x08);
	CHECK_EQ_INT(m->init_state.kind, THM_REF_HASH);
	thm_free(m);
	m = parse_ok(BASE "init_state = 'state/../init.json'\n");
	CHECK_EQ_INT(m->init_state.kind, THM_REF_PATH);
	CHECK_EQ_STR(m->init_state.ref, "init.json"); /* thm_parse: not resolved */
	thm_free(m);
}

TEST(load_resolves_paths_against_the_manifest)
{
	char dir[] = "/tmp/thm_test_XXXXXX";
	REQUIRE(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/manifest.toml", dir);
	FILE *f = fopen(path, "w");
	REQUIRE(f);
	fputs("name = 'a'\nversion = '1'\ncomponent = 'build/a.wasm'\n"
	      "init_state = '/abs/init.json'\n"
	      "[[handler]]\ntype = 'filesystem'\npath = 'data'\n", f);
	fclose(f);
	thm_manifest *m = NULL;
	th_err err = { 0 };
	CHECK_EQ_INT(thm_load(path, &m, &err), 0);
	REQUIRE(m);
	char want[300];
	snprintf(want, sizeof(want), "%s/build/a.wasm", dir);
	CHECK_EQ_STR(m->component.ref, want);
	CHECK_EQ_STR(m->init_state.ref, "/abs/init.json");
	snprintf(want, sizeof(want), "%s/data", dir);
	CHECK_EQ_STR(m->requested.fs.path, want);
	CHECK_EQ_STR(m->file, path);
	thm_free(m);
	/* A syntax error names the real file. */
	f = fopen(path, "w");
	fputs("name = 'a'\nversion = \n", f);
	fclose(f);
	CHECK(thm_load(path, &m, &err) == TH_EINVAL);
	char msg[400];
	snprintf(msg, sizeof(msg), "%s:2:11: expected a value", path);
	CHECK_EQ_STR(err.msg, msg);
	remove(path);
	rmdir(dir);
	CHECK_EQ_INT(thm_load(path, &m, &err), TH_ENOTFOUND);
}

/* Each bad manifest with its exact message. */
TEST(bad_manifests)
{
	CHECK_EQ_STR(parse_bad("name = \"c\"\nversion = \"1\"\ncomponent = \"c.wasm\"\n"
			       "[limits]\nmemory_pages = 0\n"),
		     "counter/manifest.toml:5:16: limits.memory_pages must be an integer from 1 to 65536, not 0");
	CHECK_EQ_STR(parse_bad(BASE "[limits]\nfuel_per_message = -5\n"),
		     "counter/manifest.toml:5:20: limits.fuel_per_message must be a positive integer, not -5");
	CHECK_EQ_STR(parse_bad(BASE "[limits]\nrequest_timeout_ms = \"1s\"\n"),
		     "counter/manifest.toml:5:22: limits.request_timeout_ms must be a positive integer, not a string");
	CHECK_EQ_STR(parse_bad(BASE "[limits]\nmemory_page = 3\n"),
		     "counter/manifest.toml:5:15: unknown key 'limits.memory_page' (limits allows: memory_pages, fuel_per_message, mailbox_capacity, request_timeout_ms, max_message_bytes, mailbox_full_ms, mailbox_system_max)");
	CHECK_EQ_STR(parse_bad("version = \"1\"\ncomponent = \"c.wasm\"\n"),
		     "counter/manifest.toml:1:1: missing required key 'name'");
	CHECK_EQ_STR(parse_bad("name = \"c\"\nversion = \"1\"\n"),
		     "counter/manifest.toml:1:1: missing required key 'component'");
	CHECK_EQ_STR(parse_bad("name = 3\n"),
		     "counter/manifest.toml:1:8: name must be a string, not an integer");
	CHECK_EQ_STR(parse_bad(BASE "nmae = 'x'\n"),
		     "counter/manifest.toml:4:8: unknown key 'nmae' (the top level allows: name, version, component, package, component_path, description, long_description, save_chain, init_state, handler, permission_policy, limits, supervision, chain)");
	CHECK_EQ_STR(parse_bad(BASE "package = 'x.wasm'\n"),
		     "counter/manifest.toml:4:11: 'component' and 'package' both name the component: keep one");
	CHECK_EQ_STR(parse_bad("name='c'\nversion='1'\ncomponent='sha256:abc'\n"),
		     "counter/manifest.toml:3:11: component: a sha256 reference needs 64 hex digits");
	CHECK_EQ_STR(parse_bad("name='c'\nversion='1'\ncomponent='store:'\n"),
		     "counter/manifest.toml:3:11: component: \"store:\" needs a label after it");
	CHECK_EQ_STR(parse_bad(BASE "init_state = 5\n"),
		     "counter/manifest.toml:4:14: init_state must be a string (a path or store reference) or a table, not an integer");
	CHECK_EQ_STR(parse_bad(BASE "[[handler]]\ntype = \"process\"\n"),
		     "counter/manifest.toml:5:8: handler[0].type: unknown handler \"process\" (known: runtime, message-server, supervisor, store, timing, random, environment, filesystem, http-client)");
	CHECK_EQ_STR(parse_bad(BASE "[[handler]]\ntype = \"runtime\"\n[[handler]]\ntype = \"runtime\"\n"),
		     "counter/manifest.toml:7:8: handler[1]: handler \"runtime\" is already listed at line 4");
	CHECK_EQ_STR(parse_bad(BASE "[[handler]]\npath = '/x'\n"),
		     "counter/manifest.toml:4:1: handler[0]: missing required key 'type'");
	CHECK_EQ_STR(parse_bad(BASE "[[handler]]\ntype = \"filesystem\"\n"),
		     "counter/manifest.toml:4:1: handler.filesystem: a filesystem handler needs 'path' (or new_dir = true)");
	CHECK_EQ_STR(parse_bad(BASE "[[handler]]\ntype = \"runtime\"\nport = 80\n"),
		     "counter/manifest.toml:6:8: unknown key 'handler.runtime.port' (handler.runtime allows: type)");
	CHECK_EQ_STR(parse_bad(BASE "[[handler]]\ntype = \"environment\"\nallowed_vars = [\"A\", 3]\n"),
		     "counter/manifest.toml:6:22: handler.environment.allowed_vars[1] must be a non-empty string");
	CHECK_EQ_STR(parse_bad(BASE "[[handler]]\ntype = \"timing\"\nmax_sleep_duration = 5\nmin_sleep_duration = 10\n"),
		     "counter/manifest.toml:7:22: handler.timing.min_sleep_duration (10) must not exceed max_sleep_duration (5)");
	CHECK_EQ_STR(parse_bad(BASE "handler = 1\n"),
		     "counter/manifest.toml:4:11: handler must be an array of tables ([[handler]]), not an integer");
	CHECK_EQ_STR(parse_bad(BASE "[supervision]\nstrategy = \"one_for_some\"\n"),
		     "counter/manifest.toml:5:12: supervision.strategy must be \"one_for_one\", \"one_for_all\" or \"rest_for_one\", not \"one_for_some\"");
	CHECK_EQ_STR(parse_bad(BASE "[supervision]\nrestart = true\n"),
		     "counter/manifest.toml:5:11: supervision.restart must be \"permanent\", \"transient\" or \"temporary\", not a boolean");
	CHECK_EQ_STR(parse_bad(BASE "[supervision]\nbackoff_min_ms = 100\nbackoff_max_ms = 10\n"),
		     "counter/manifest.toml:6:18: supervision.backoff_max_ms (10) must not be less than supervision.backoff_min_ms (100)");
	CHECK_EQ_STR(parse_bad(BASE "[supervision]\nbackoff_jitter = 1.5\n"),
		     "counter/manifest.toml:5:18: supervision.backoff_jitter must be a number from 0 to 1");
	CHECK_EQ_STR(parse_bad(BASE "[supervision]\nwithin_seconds = 0\n"),
		     "counter/manifest.toml:5:18: supervision.within_seconds must be an integer from 1 to 31536000, not 0");
	CHECK_EQ_STR(parse_bad(BASE "[supervision]\nstate = \"keep\"\n"),
		     "counter/manifest.toml:5:9: supervision.state must be \"preserve\" or \"reset\", not \"keep\"");
	CHECK_EQ_STR(parse_bad(BASE "[supervision.health]\ntimeout_ms = 5\n"),
		     "counter/manifest.toml:4:1: missing required key 'supervision.health.interval_ms'");
	CHECK_EQ_STR(parse_bad(BASE "[supervision.health]\ninterval_ms = 5\nprobe = 'pong'\n"),
		     "counter/manifest.toml:6:9: supervision.health.probe must be \"ping\" or \"export:<name>\"");
	CHECK_EQ_STR(parse_bad(BASE "[permission_policy.file_system]\ntype = \"allow\"\n"),
		     "counter/manifest.toml:5:8: permission_policy.file_system.type must be \"inherit\", \"disallow\" or \"restrict\", not \"allow\"");
	CHECK_EQ_STR(parse_bad(BASE "[permission_policy.network]\ntype = \"inherit\"\n"),
		     "counter/manifest.toml:4:1: unknown key 'permission_policy.network' (known: runtime, message_server, supervisor, store, timing, random, environment, file_system, http_client)");
	CHECK_EQ_STR(parse_bad(BASE "[permission_policy.timing]\ntype = \"inherit\"\nconfig = { max_sleep_duration = 5 }\n"),
		     "counter/manifest.toml:6:10: permission_policy.timing.config is only allowed with type = \"restrict\"");
	CHECK_EQ_STR(parse_bad(BASE "[permission_policy.environment]\ntype = \"restrict\"\nconfig = { allowed = [] }\n"),
		     "counter/manifest.toml:6:22: unknown key 'permission_policy.environment.config.allowed' (permission_policy.environment.config allows: allowed_vars, denied_vars, allowed_prefixes, allow_list_all)");
	/* TOML errors carry the file name too. */
	CHECK_EQ_STR(parse_bad("name = \"c\"\nversion = \"1\"\ncomponent = c.wasm\n"),
		     "counter/manifest.toml:3:13: expected a value, found 'c' (strings need quotes)");
	CHECK_EQ_STR(parse_bad("name = \"c\"\nname = \"d\"\n"),
		     "counter/manifest.toml:2:1: duplicate key 'name'");
}

/* [chain]: durability and retention of the actor's chain. */
TEST(chain_section)
{
	thm_manifest *m = parse_ok(BASE);
	CHECK_EQ_INT(m->chain.durability, THM_DURABLE_DEFAULT);
	CHECK(m->chain.retain_events == 0 && m->chain.retain_bytes == 0 &&
	      m->chain.retain_age_ms == 0 && !m->save_chain);
	thm_free(m);

	m = parse_ok(BASE "[chain]\ndurability = \"batch\"\nbatch_ms = 25\n"
		     "retain_events = 100\nretain_bytes = 65536\nretain_age = \"7d\"\n");
	CHECK_EQ_INT(m->chain.durability, THM_DURABLE_BATCH);
	CHECK_EQ_INT(m->chain.batch_ms, 25);
	CHECK(m->chain.retain_events == 100);
	CHECK(m->chain.retain_bytes == 65536);
	CHECK(m->chain.retain_age_ms == 7ull * 86400 * 1000);
	CHECK(m->save_chain); /* batch keeps the chain on disk */
	thm_free(m);

	m = parse_ok(BASE "save_chain = true\n[chain]\ndurability = \"always\"\nretain_age = 90\n");
	CHECK_EQ_INT(m->chain.durability, THM_DURABLE_ALWAYS);
	CHECK(m->chain.retain_age_ms == 90000);
	thm_free(m);
	m = parse_ok(BASE "[chain]\ndurability = \"none\"\nretain_age = \"500ms\"\n");
	CHECK_EQ_INT(m->chain.durability, THM_DURABLE_NONE);
	CHECK(!m->save_chain && m->chain.retain_age_ms == 500);
	thm_free(m);
	m = parse_ok(BASE "save_chain = true\n[chain]\nretain_events = 3\n");
	CHECK(m->save_chain && m->chain.durability == THM_DURABLE_DEFAULT &&
	      m->chain.retain_events == 3);
	thm_free(m);

	CHECK_EQ_STR(parse_bad(BASE "[chain]\ndurability = \"sometimes\"\n"),
		     "counter/manifest.toml:5:14: chain.durability must be \"always\", \"batch\" or \"none\", not \"sometimes\"");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\nretain_events = 0\n"),
		     "counter/manifest.toml:5:17: chain.retain_events must be a positive integer, not 0");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\nretain_bytes = \"1MB\"\n"),
		     "counter/manifest.toml:5:16: chain.retain_bytes must be a positive integer, not a string");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\nretain_age = \"7 days\"\n"),
		     "counter/manifest.toml:5:14: chain.retain_age must be a positive duration such as \"30s\", \"10m\", \"2h\", \"7d\" or \"500ms\", not \"7 days\"");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\nretain_age = \"0s\"\n"),
		     "counter/manifest.toml:5:14: chain.retain_age must be a positive duration such as \"30s\", \"10m\", \"2h\", \"7d\" or \"500ms\", not \"0s\"");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\nretain_age = -3\n"),
		     "counter/manifest.toml:5:14: chain.retain_age must be a positive number of seconds, not -3");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\nretain_age = 1.5\n"),
		     "counter/manifest.toml:5:14: chain.retain_age must be a duration (\"30s\", \"10m\", \"2h\", \"7d\", \"500ms\" or an integer of seconds), not a float");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\nbatch_ms = 5\n"),
		     "counter/manifest.toml:5:12: chain.batch_ms needs chain.durability = \"batch\"");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\ndurability = \"batch\"\nbatch_ms = 0\n"),
		     "counter/manifest.toml:6:12: chain.batch_ms must be an integer from 1 to 60000, not 0");
	CHECK_EQ_STR(parse_bad(BASE "save_chain = false\n[chain]\ndurability = \"always\"\n"),
		     "counter/manifest.toml:6:14: chain.durability = \"always\" contradicts save_chain = false (line 4): drop one");
	CHECK_EQ_STR(parse_bad(BASE "save_chain = true\n[chain]\ndurability = \"none\"\n"),
		     "counter/manifest.toml:6:14: chain.durability = \"none\" contradicts save_chain = true (line 4): drop one");
	CHECK_EQ_STR(parse_bad(BASE "[chain]\nretain = 5\n"),
		     "counter/manifest.toml:5:10: unknown key 'chain.retain' (chain allows: durability, batch_ms, retain_events, retain_bytes, retain_age)");
	CHECK_EQ_STR(parse_bad(BASE "chain = 5\n"),
		     "counter/manifest.toml:4:9: chain must be a table, not an integer");
}

TEST(oversize_manifest_is_refused)
{
	size_t n = THM_MAX_BYTES + 1;
	char *big = malloc(n);
	memset(big, '#', n);
	th_err err = { 0 };
	thm_manifest *m = NULL;
	CHECK_EQ_INT(thm_parse(big, n, "big.toml", &m, &err), TH_ELIMIT);
	CHECK_EQ_STR(err.msg, "big.toml: document is 1048577 bytes, more than the limit of 1048576");
	free(big);
}

TEST(paths)
{
	const char *cases[][2] = {
		{ "a/./b/../c", "a/c" }, { "/x//y/", "/x/y" }, { "/..", "/" },
		{ "../a/../../b", "../../b" }, { "", "." }, { "./", "." }, { "/", "/" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *n = thm_path_normalize(cases[i][0]);
		CHECK_EQ_STR(n, cases[i][1]);
		thm_str_free(n);
	}
	CHECK(thm_path_within("/srv/data/x", "/srv/data"));
	CHECK(thm_path_within("/srv/data", "/srv/data/"));
	CHECK(!thm_path_within("/srv/database", "/srv/data"));
	CHECK(!thm_path_within("/srv/data/../etc", "/srv/data"));
	CHECK(thm_path_within("/etc", "/"));
	CHECK(!thm_path_within("rel", "/"));
	CHECK(thm_path_within("a/b", "."));
	CHECK(!thm_path_within("../a", "."));
}

static thm_perms parent_perms(void)
{
	thm_perms p;
	thm_perms_all(&p);
	p.enabled[THM_H_HTTP_CLIENT] = false;
	p.fs.path = th_strdup("/srv/data");
	p.fs.write = false;
	return p;
}

TEST(effective_is_the_intersection)
{
	thm_perms parent = parent_perms();
	/* Parent allows env vars HOME, LANG, TERM; timing up to 10 s. */
	const char *vars[] = { "HOME", "LANG", "TERM" };
	parent.env.allowed_vars.set = true;
	parent.env.allowed_vars.v = th_calloc(3, sizeof(char *));
	for (int i = 0; i < 3; i++)
		parent.env.allowed_vars.v[i] = th_strdup(vars[i]);
	parent.env.allowed_vars.n = 3;
	parent.timing.max_sleep_ms = 10000;

	thm_manifest *m = parse_ok(full_manifest);
	thm_perms eff;
	th_err err = { 0 };
	REQUIRE(thm_effective(&parent, m, &eff, &err) == 0);
	CHECK(eff.enabled[THM_H_RUNTIME]);
	CHECK(eff.enabled[THM_H_FILESYSTEM]);
	CHECK(!eff.enabled[THM_H_HTTP_CLIENT]);  /* parent lacks it, policy disallows */
	CHECK(!eff.enabled[THM_H_SUPERVISOR]);   /* child did not ask */
	CHECK_EQ_STR(eff.fs.path, "/srv/data");
	CHECK(eff.fs.read && !eff.fs.write);
	CHECK_EQ_INT(eff.fs.allowed_paths.n, 1);
	CHECK_EQ_STR(eff.fs.allowed_paths.v[0], "/srv/data/pub");
	CHECK_EQ_INT(eff.env.allowed_vars.n, 2); /* {HOME, LANG} ∩ {HOME, LANG, TERM} */
	CHECK_EQ_STR(eff.env.denied_vars.v[0], "SECRET");
	CHECK_EQ_INT(eff.timing.max_sleep_ms, 10000); /* min(60000, 10000) */
	CHECK_EQ_INT(eff.timing.min_sleep_ms, 5);
	CHECK_EQ_INT(eff.random.max_bytes, 4096);
	CHECK(eff.random.has_seed);
	CHECK(thm_perms_within(&eff, &parent));
	CHECK(!thm_perms_within(&parent, &eff));
	thm_perms_release(&eff);

	/* A root actor gets what it asked for, narrowed by its own policy. */
	REQUIRE(thm_effective(NULL, m, &eff, &err) == 0);
	CHECK(!eff.enabled[THM_H_HTTP_CLIENT]); /* disallowed by its policy */
	CHECK_EQ_INT(eff.timing.max_sleep_ms, 60000);
	CHECK_EQ_INT(eff.env.allowed_vars.n, 2);
	thm_perms_release(&eff);
	thm_free(m);
	thm_perms_release(&parent);
}

TEST(disjoint_filesystem_roots_disable_the_filesystem)
{
	thm_perms parent = parent_perms();
	thm_manifest *m = parse_ok(BASE "[[handler]]\ntype = 'filesystem'\npath = '/home/x'\n");
	thm_perms eff;
	th_err err = { 0 };
	REQUIRE(thm_effective(&parent, m, &eff, &err) == 0);
	CHECK(!eff.enabled[THM_H_FILESYSTEM]);
	CHECK(thm_perms_within(&eff, &parent));
	thm_perms_release(&eff);
	thm_free(m);
	/* A child root inside the parent's is kept. */
	m = parse_ok(BASE "[[handler]]\ntype = 'filesystem'\npath = '/srv/data/a/../b'\nwrite = true\n");
	REQUIRE(thm_effective(&parent, m, &eff, &err) == 0);
	CHECK(eff.enabled[THM_H_FILESYSTEM]);
	CHECK_EQ_STR(eff.fs.path, "/srv/data/b");
	CHECK(!eff.fs.write); /* the parent cannot write: neither can the child */
	thm_perms_release(&eff);
	thm_free(m);
	thm_perms_release(&parent);
}

/* Deterministic pseudo-random permission sets: the intersection is within
 * both sides, every time. */
static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void random_list(thm_strlist *l, const char *const *pool, size_t npool)
{
	l->set = next() % 3 != 0;
	if (!l->set)
		return;
	size_t n = next() % 4;
	for (size_t i = 0; i < n; i++) {
		l->v = th_realloc(l->v, (l->n + 1) * sizeof(char *));
		l->v[l->n++] = th_strdup(pool[next() % npool]);
	}
}

static void random_perms(thm_perms *p)
{
	static const char *const names[] = { "A", "B", "C", "D" };
	static const char *const prefixes[] = { "AP", "A", "B", "APP" };
	static const char *const dirs[] = { "/srv", "/srv/a", "/srv/a/b", "/tmp", "/srv/b" };
	static const char *const hosts[] = { "x.org", "X.org", "y.org" };
	thm_perms_all(p);
	for (int k = 0; k < THM_H_COUNT; k++)
		p->enabled[k] = next() % 4 != 0;
	if (next() % 3)
		p->fs.path = th_strdup(dirs[next() % 5]);
	p->fs.read = next() & 1;
	p->fs.write = next() & 1;
	random_list(&p->fs.allowed_paths, dirs, 5);
	random_list(&p->env.allowed_vars, names, 4);
	random_list(&p->env.denied_vars, names, 4);
	random_list(&p->env.allowed_prefixes, prefixes, 4);
	p->env.allow_list_all = next() & 1;
	p->timing.max_sleep_ms = next() % 1000;
	p->timing.min_sleep_ms = next() % 10;
	p->random.max_bytes = next() % 100;
	p->random.max_int = next() % 100;
	p->random.allow_crypto_secure = next() & 1;
	random_list(&p->http.allowed_hosts, hosts, 3);
	random_list(&p->http.allowed_methods, hosts, 3);
	p->http.max_redirects = next() % 5;
	p->http.timeout_ms = next() % 5000;
}

TEST(intersection_is_never_wider_property)
{
	th_err err = { 0 };
	for (int i = 0; i < 3000; i++) {
		thm_perms a, b, c;
		random_perms(&a);
		random_perms(&b);
		REQUIRE(thm_perms_intersect(&a, &b, &c, &err) == 0);
		if (!thm_perms_within(&c, &a) || !thm_perms_within(&c, &b)) {
			fprintf(stderr, "  case %d: intersection wider than an input\n", i);
			CHECK(0);
			i = 3000;
		}
		CHECK(thm_perms_within(&a, &a));
		thm_perms_release(&a);
		thm_perms_release(&b);
		thm_perms_release(&c);
	}
}

TEST(copy_is_deep_and_equal)
{
	thm_manifest *m = parse_ok(full_manifest);
	thm_perms c;
	REQUIRE(thm_perms_copy(&m->requested, &c) == 0);
	CHECK(c.env.allowed_vars.v != m->requested.env.allowed_vars.v);
	CHECK(thm_perms_within(&c, &m->requested) && thm_perms_within(&m->requested, &c));
	thm_free(m);
	CHECK_EQ_STR(c.env.allowed_vars.v[1], "LANG"); /* survives the manifest */
	thm_perms_release(&c);
	thm_perms_release(NULL);
}

TEST(allocation_failure)
{
	int fails = 0;
	for (long k = 0; k < 5000; k++) {
		th_err err = { 0 };
		thm_manifest *m = NULL;
		th_alloc_fail_after(k);
		int rc = thm_parse(full_manifest, strlen(full_manifest), "m.toml", &m, &err);
		thm_perms eff;
		int rc2 = rc ? 0 : thm_effective(NULL, m, &eff, &err);
		th_alloc_fail_after(-1);
		if (rc == 0 && rc2 == 0) {
			CHECK_EQ_STR(m->name, "counter");
			thm_perms_release(&eff);
			thm_free(m);
			break;
		}
		CHECK_EQ_INT(rc ? rc : rc2, TH_ENOMEM);
		if (rc)
			CHECK(m == NULL);
		thm_free(m);
		fails++;
	}
	CHECK(fails > 50);
}

TEST(handler_names_round_trip)
{
	for (int k = 0; k < THM_H_COUNT; k++)
		CHECK_EQ_INT(thm_handler_kind_of(thm_handler_name((thm_handler_kind)k)), k);
	CHECK_EQ_INT(thm_handler_kind_of("process"), -1);
	CHECK_EQ_INT(thm_handler_kind_of(NULL), -1);
}

TEST_MAIN()
