/*
 * Resume tests (thr_resume, src/runtime/resume.c; `theater run --resume`):
 * at-least-once delivery across a runtime crash. A `theater run` process
 * streaming messages to an actor under durability `always` is killed with
 * SIGKILL while a handler is suspended; the actor is then rebuilt from its
 * chain: every message whose handler result was recorded has its effect in
 * the state exactly once, every other message the chain received is
 * delivered again with its original id, and the whole chain still
 * replays. Plus: resuming after a clean stop, refusals that leave the
 * chain untouched, and a supervised restart with state = "reset" replayed.
 *
 * The actor is tests/replay/actors/journal.c (C SDK, core-module form):
 * its state is the list of the messages it handled.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "test.h"
#include "theater/replay.h"
#include "theater/runtime.h"

static char dir[256], home[300], theater[600], manifest[400];

static void cleanup(void)
{
	char cmd[300];
	if (dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

/* A scratch dir with journal.core.wasm and its manifest; the theater
 * binary of the build this test belongs to (BUILD/tests/replay/x). */
static void setup(void)
{
	char cmd[1024], exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	REQUIRE(n > 0);
	exe[n] = 0;
	for (int i = 0; i < 3; i++) {
		char *slash = strrchr(exe, '/');
		REQUIRE(slash != NULL);
		*slash = 0;
	}
	snprintf(theater, sizeof theater, "%s/theater", exe);
	REQUIRE(access(theater, X_OK) == 0);
	snprintf(dir, sizeof dir, "/tmp/theater-resume-XXXXXX");
	REQUIRE(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(home, sizeof home, "%s/home", dir);
	snprintf(cmd, sizeof cmd, "CORE_ONLY=1 sh sdk/c/build.sh "
		 "tests/replay/actors/journal.c '%s' >/dev/null", dir);
	REQUIRE(system(cmd) == 0);
	snprintf(manifest, sizeof manifest, "%s/journal.toml", dir);
	FILE *f = fopen(manifest, "w");
	REQUIRE(f != NULL);
	fprintf(f, "name = \"journal\"\nversion = \"1\"\nsave_chain = true\n"
		"component = \"journal.core.wasm\"\n[[handler]]\ntype = \"runtime\"\n"
		"[[handler]]\ntype = \"message-server\"\n[[handler]]\ntype = \"timing\"\n");
	fclose(f);
}

static bool file_has(const char *path, const char *what)
{
	char buf[1 << 16];
	FILE *f = fopen(path, "r");
	bool hit = false;
	if (!f)
		return false;
	while (!hit && fgets(buf, sizeof buf, f))
		hit = strstr(buf, what) != NULL;
	fclose(f);
	return hit;
}

/* Start `theater ARGS...` with THEATER_HOME=home, stdout+stderr to out. */
static pid_t start(const char *out, char **args)
{
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		setenv("THEATER_HOME", home, 1);
		execv(theater, args);
		_exit(127);
	}
	return pid;
}

static int finish(pid_t pid)
{
	int st = 0;
	REQUIRE(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- reading the chain ----------------------------------------------------- */

typedef struct msg {
	uint64_t id;
	char body[32];
} msg;

typedef struct facts {
	msg rec[512];          /* user messages received, arrival order   */
	int nrec;
	msg redel[512];        /* message.redelivered, in order           */
	int nredel;
	uint64_t res[512];     /* msg ids of export.result, in order      */
	int nres;
	uint64_t resumed_ids[512]; /* the ids actor.resumed lists         */
	int nresumed;
	int resumed_at;        /* seq of actor.resumed, -1 none           */
	uint64_t events;
} facts;

static void read_facts(const char *id, facts *f)
{
	char p[400];
	thx_store *cs = NULL;
	thx_chain *c = NULL;
	thx_store_opts so = { .read_only = true, .no_background = true };
	memset(f, 0, sizeof *f);
	f->resumed_at = -1;
	snprintf(p, sizeof p, "%s/chains", home);
	REQUIRE(thx_store_open(p, &so, &cs, NULL) == 0);
	REQUIRE(thx_chain_open(cs, id, NULL, false, &c, NULL) == 0);
	f->events = thx_chain_count(c);
	for (uint64_t s = 0; s < f->events; s++) {
		thx_event ev = { 0 };
		th_cbor_dec d;
		uint64_t n, mid, ref;
		const char *k, *snd;
		size_t kl, sl, bl;
		const uint8_t *b;
		REQUIRE(thx_get(c, s, &ev, NULL) == 0);
		th_cbor_dec_init(&d, ev.data, ev.len);
		bool redel = !strcmp(ev.type, "message.redelivered");
		if (redel || !strcmp(ev.type, "message.received")) {
			REQUIRE(th_cbor_get_array(&d, &n, NULL) == 0 && n == 5);
			REQUIRE(th_cbor_get_uint(&d, &mid, NULL) == 0);
			REQUIRE(th_cbor_get_text(&d, &k, &kl, NULL) == 0);
			REQUIRE(th_cbor_get_text(&d, &snd, &sl, NULL) == 0);
			REQUIRE(th_cbor_get_uint(&d, &ref, NULL) == 0);
			REQUIRE(th_cbor_get_bytes(&d, &b, &bl, NULL) == 0);
			if (kl == 4 && !memcmp(k, "send", 4)) {
				msg *m = redel ? &f->redel[f->nredel++] : &f->rec[f->nrec++];
				REQUIRE(f->nrec < 512 && f->nredel < 512 && bl < sizeof m->body);
				m->id = mid;
				memcpy(m->body, b, bl);
				m->body[bl] = 0;
			}
		} else if (!strcmp(ev.type, "export.result")) {
			REQUIRE(th_cbor_get_array(&d, &n, NULL) == 0 && n == 4);
			REQUIRE(th_cbor_skip(&d, NULL) == 0);
			REQUIRE(th_cbor_get_uint(&d, &mid, NULL) == 0);
			REQUIRE(f->nres < 512);
			f->res[f->nres++] = mid;
		} else if (!strcmp(ev.type, "actor.resumed") && f->resumed_at < 0) {
			f->resumed_at = (int)s;
			REQUIRE(th_cbor_get_array(&d, &n, NULL) == 0 && n == 5);
			REQUIRE(th_cbor_skip(&d, NULL) == 0 && th_cbor_skip(&d, NULL) == 0);
			REQUIRE(th_cbor_get_array(&d, &n, NULL) == 0 && n < 512);
			for (uint64_t i = 0; i < n; i++)
				REQUIRE(th_cbor_get_uint(&d, &f->resumed_ids[f->nresumed++],
							 NULL) == 0);
		}
		thx_event_release(&ev);
	}
	thx_store_close(cs);
}

static const char *body_of(const facts *f, uint64_t id)
{
	for (int i = 0; i < f->nrec; i++)
		if (f->rec[i].id == id)
			return f->rec[i].body;
	return NULL;
}

static bool acked(const facts *f, uint64_t id)
{
	for (int i = 0; i < f->nres; i++)
		if (f->res[i] == id)
			return true;
	return false;
}

static thr_runtime *runtime(thx_durability dur)
{
	thr_options o = { 0 };
	thr_runtime *rt = NULL;
	th_err err = { 0 };
	o.home = home;
	o.workers = 2;
	o.durability = dur;
	o.store_no_sync = true;
	if (thr_runtime_new(&o, &rt, &err))
		fprintf(stderr, "thr_runtime_new: %s\n", err.msg);
	REQUIRE(rt != NULL);
	return rt;
}

static void replay_ok(const char *id, uint64_t events)
{
	char p[400];
	ths_store *st = NULL;
	thx_store *cs = NULL;
	thx_chain *c = NULL;
	thx_store_opts so = { .read_only = true, .no_background = true };
	thrp_report rep;
	th_err err = { 0 };
	snprintf(p, sizeof p, "%s/store", home);
	REQUIRE(ths_open(p, NULL, &st, NULL) == 0);
	snprintf(p, sizeof p, "%s/chains", home);
	REQUIRE(thx_store_open(p, &so, &cs, NULL) == 0);
	REQUIRE(thx_chain_open(cs, id, NULL, false, &c, NULL) == 0);
	int rc = thrp_replay(st, c, NULL, &rep, &err);
	if (rc || !rep.ok) {
		fprintf(stderr, "replay: %s\n", err.msg);
		thrp_report_print(&rep, id, false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK_EQ_INT((int)rep.events, (int)events);
	thx_store_close(cs);
	ths_close(st);
}

/* ---- the crash ------------------------------------------------------------- */

#define NMSG 160
#define SLEEP_AT 30 /* this message sleeps: the kill lands while it does */

TEST(kill_9_mid_stream_then_resume_redelivers_every_unacknowledged_message)
{
	char out[400], out2[400], id[THR_ID_LEN + 1] = "", line[160];
	char *args[2 * NMSG + 8];
	static char bodies[NMSG][32];
	int na = 0;
	facts *f = calloc(1, sizeof *f), *g = calloc(1, sizeof *g);
	REQUIRE(f && g);
	setup();

	/* 1. A stream of sends under durability always; kill -9 while the
	 * handler of "sleep:..." is suspended on timing.sleep (so at least
	 * that message, and every later one received, is unacknowledged). */
	args[na++] = theater;
	args[na++] = (char *)"run";
	args[na++] = manifest;
	args[na++] = (char *)"--durability";
	args[na++] = (char *)"always";
	for (int i = 0; i < NMSG; i++) {
		if (i == SLEEP_AT)
			snprintf(bodies[i], sizeof bodies[i], "sleep:4000");
		else
			snprintf(bodies[i], sizeof bodies[i], "m%d", i);
		args[na++] = (char *)"--send";
		args[na++] = bodies[i];
	}
	args[na] = NULL;
	snprintf(out, sizeof out, "%s/run.out", dir);
	pid_t pid = start(out, args);
	/* The handler of the sleeping message has started once its
	 * export.call is printed; the message id is in its arrival line. */
	uint64_t sid = 0;
	for (int waited = 0; waited < 60000 && !sid; waited += 20) {
		FILE *fo = fopen(out, "r");
		while (fo && fgets(line, sizeof line, fo))
			if (strstr(line, "send \"sleep:4000\""))
				sid = strtoull(strchr(line, '#') + 1, NULL, 10);
		if (fo)
			fclose(fo);
		usleep(20000);
	}
	REQUIRE(sid != 0);
	char want[64];
	snprintf(want, sizeof want, "export.call handle-send #%llu\n", (unsigned long long)sid);
	for (int waited = 0; waited < 60000 && !file_has(out, want); waited += 5)
		usleep(5000);
	REQUIRE(file_has(out, want));
	REQUIRE(kill(pid, SIGKILL) == 0);
	CHECK_EQ_INT(finish(pid), 128 + SIGKILL);
	FILE *fo = fopen(out, "r");
	REQUIRE(fo != NULL);
	while (fgets(line, sizeof line, fo))
		if (sscanf(line, "actor %36s started", id) == 1)
			break;
	fclose(fo);
	REQUIRE(strlen(id) == THR_ID_LEN);

	/* 2. What the chain says after the crash. */
	read_facts(id, f);
	int unacked = 0;
	for (int i = 0; i < f->nrec; i++)
		unacked += !acked(f, f->rec[i].id);
	fprintf(stderr, "crash: %d messages received, %d acknowledged, %d not\n",
		f->nrec, f->nrec - unacked, unacked);
	CHECK(unacked >= 1);
	CHECK(!acked(f, sid));
	CHECK_EQ_INT(f->resumed_at, -1);

	/* 3. theater run --resume ID: rebuild, redeliver, drain, stop. */
	char *rargs[] = { theater, (char *)"run", (char *)"--resume", id,
			  (char *)"--durability", (char *)"always", NULL };
	snprintf(out2, sizeof out2, "%s/resume.out", dir);
	CHECK_EQ_INT(finish(start(out2, rargs)), 0);
	snprintf(want, sizeof want, "%d messages redelivered", unacked);
	CHECK(file_has(out2, want));

	/* 4. The chain: every unacknowledged message redelivered once, with
	 * its original id and data, in arrival order, listed in
	 * actor.resumed, and acknowledged afterwards; acknowledged ones not
	 * again. */
	read_facts(id, g);
	CHECK(g->resumed_at >= (int)f->events);
	CHECK_EQ_INT(g->nredel, unacked);
	CHECK_EQ_INT(g->nresumed, unacked);
	int k = 0;
	for (int i = 0; i < f->nrec; i++) {
		if (acked(f, f->rec[i].id))
			continue;
		CHECK(k < g->nredel && g->redel[k].id == f->rec[i].id &&
		      !strcmp(g->redel[k].body, f->rec[i].body));
		CHECK(g->resumed_ids[k] == f->rec[i].id);
		CHECK(acked(g, f->rec[i].id));
		k++;
	}
	for (int i = 0; i < g->nres; i++)
		for (int j = i + 1; j < g->nres; j++)
			CHECK(g->res[i] != g->res[j]); /* each handled once */
	/* No id is given twice in the chain: the resumed runtime's own
	 * messages (its init) got ids above the old ones. */
	for (int i = 0; i < g->nrec; i++)
		for (int j = i + 1; j < g->nrec; j++)
			CHECK(g->rec[i].id != g->rec[j].id);

	/* 5. The state: "journal", the acknowledged messages in the order they
	 * were handled, then the redelivered ones - each exactly once. Read
	 * by resuming once more in-process (a clean stop: nothing to
	 * redeliver). */
	thr_runtime *rt = runtime(THX_BATCH);
	thr_resume_info info;
	th_err err = { 0 };
	int rc = thr_resume(rt, id, NULL, &info, &err);
	if (rc)
		fprintf(stderr, "thr_resume: %s\n", err.msg);
	REQUIRE(rc == 0);
	CHECK_EQ_INT((int)info.redelivered, 0);
	uint8_t *st = NULL;
	size_t sn = 0;
	bool has = false;
	REQUIRE(thr_get_state(rt, id, &st, &sn, &has, NULL) == 0 && has);
	size_t cap = 16 + (size_t)NMSG * 16, len = 0;
	char *expect = calloc(1, cap);
	REQUIRE(expect != NULL);
	len += (size_t)snprintf(expect + len, cap - len, "journal\n");
	for (int i = 0; i < f->nres; i++) {
		const char *b = body_of(f, f->res[i]);
		if (b)
			len += (size_t)snprintf(expect + len, cap - len, "%s\n", b);
	}
	for (int i = 0; i < g->nredel; i++)
		len += (size_t)snprintf(expect + len, cap - len, "%s\n", g->redel[i].body);
	CHECK_EQ_INT((int)sn, (int)len);
	CHECK(sn == len && !memcmp(st, expect, len));
	thr_free(st);
	free(expect);
	thr_runtime_free(rt);

	/* 6. The whole chain - the run, the cut-short handler, the resume,
	 * the redeliveries, the second resume - replays. */
	read_facts(id, g);
	replay_ok(id, g->events);
	free(f);
	free(g);
}

/* ---- clean stops and refusals ------------------------------------------------ */

static void spawn_journal(thr_runtime *rt, char id[THR_ID_LEN + 1])
{
	th_err err = { 0 };
	thr_spawn_opts so = { .manifest_path = manifest };
	if (thr_spawn(rt, &so, id, &err))
		fprintf(stderr, "spawn: %s\n", err.msg);
	REQUIRE(id[0] != 0);
}

static void send(thr_runtime *rt, const char *id, const char *m)
{
	th_err err = { 0 };
	int rc = thr_send(rt, id, m, strlen(m), THR_SEND_WAIT, &err);
	if (rc)
		fprintf(stderr, "send %s: %s\n", m, err.msg);
	REQUIRE(rc == 0);
}

TEST(resume_after_a_clean_stop_continues_from_the_last_state)
{
	char id[THR_ID_LEN + 1];
	uint8_t *st;
	size_t n;
	bool has;
	thr_resume_info info;
	setup();
	thr_runtime *rt = runtime(THX_BATCH);
	spawn_journal(rt, id);
	send(rt, id, "a");
	send(rt, id, "b");
	REQUIRE(thr_quiesce(rt, 60000, NULL) == 0);
	thr_runtime_free(rt);

	rt = runtime(THX_BATCH);
	REQUIRE(thr_resume(rt, id, NULL, &info, NULL) == 0);
	CHECK_EQ_INT((int)info.redelivered, 0);
	CHECK(info.has_state_seq);
	send(rt, id, "c");
	REQUIRE(thr_quiesce(rt, 60000, NULL) == 0);
	REQUIRE(thr_get_state(rt, id, &st, &n, &has, NULL) == 0 && has);
	CHECK(n == 14 && !memcmp(st, "journal\na\nb\nc\n", 14));
	thr_free(st);
	/* A second resume of a live actor is refused. */
	th_err err = { 0 };
	CHECK_EQ_INT(thr_resume(rt, id, NULL, NULL, &err), TH_EEXIST);
	CHECK(strstr(err.msg, "already") != NULL);
	thr_runtime_free(rt);

	facts *f = calloc(1, sizeof *f);
	REQUIRE(f != NULL);
	read_facts(id, f);
	/* "c" got an id above a's and b's (ids restart per runtime). */
	REQUIRE(f->nrec == 3);
	CHECK(f->rec[2].id > f->rec[0].id && f->rec[2].id > f->rec[1].id);
	replay_ok(id, f->events);
	free(f);
}

TEST(resume_refusals_leave_the_chain_untouched)
{
	char id[THR_ID_LEN + 1], other[400], cmd[1024];
	th_err err = { 0 };
	facts *f = calloc(1, sizeof *f);
	REQUIRE(f != NULL);
	setup();
	thr_runtime *rt = runtime(THX_BATCH);
	spawn_journal(rt, id);
	send(rt, id, "a");
	REQUIRE(thr_quiesce(rt, 60000, NULL) == 0);
	thr_runtime_free(rt);
	read_facts(id, f);
	uint64_t before = f->events;

	rt = runtime(THX_BATCH);
	CHECK_EQ_INT(thr_resume(rt, "00000000-0000-4000-8000-000000000000", NULL,
				NULL, &err), TH_ENOTFOUND);
	CHECK_EQ_INT(thr_resume(rt, "not-an-id", NULL, NULL, &err), TH_EINVAL);
	/* A manifest naming another component (the counter test actor). */
	snprintf(cmd, sizeof cmd, "wat2wasm tests/runtime/actors/counter.wat -o "
		 "'%s/counter.wasm'", dir);
	REQUIRE(system(cmd) == 0);
	snprintf(other, sizeof other, "%s/other.toml", dir);
	FILE *fo = fopen(other, "w");
	REQUIRE(fo != NULL);
	fprintf(fo, "name = \"journal\"\nversion = \"1\"\nsave_chain = true\n"
		"component = \"counter.wasm\"\n[[handler]]\ntype = \"runtime\"\n");
	fclose(fo);
	thr_resume_opts ro = { .manifest_path = other };
	CHECK_EQ_INT(thr_resume(rt, id, &ro, NULL, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "component") != NULL);
	thr_runtime_free(rt);
	read_facts(id, f);
	CHECK_EQ_INT((int)f->events, (int)before);
	free(f);
}

/* A subscriber counting export.result events (arg: an _Atomic int). */
static int count_results(const thx_event *ev, void *arg)
{
	if (!strcmp(ev->type, "export.result"))
		atomic_fetch_add((_Atomic int *)arg, 1);
	return 0;
}

/* The process running the runtime ends abruptly (_exit, nothing freed or
 * flushed beyond what durability `always` put on disk) while a handler
 * sleeps; the resume uses a manifest with a smaller max_message_bytes:
 * the message now over the limit is refused and recorded
 * (message.rejected), the others are redelivered. */
TEST(resume_in_process_after_exit_refuses_what_the_new_limits_refuse)
{
	char id[THR_ID_LEN + 1] = "", small[400];
	int fds[2];
	setup();
	REQUIRE(pipe(fds) == 0);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		thr_runtime *rt = runtime(THX_ALWAYS);
		char cid[THR_ID_LEN + 1];
		_Atomic int results = 0;
		uint64_t sub;
		spawn_journal(rt, cid);
		/* "first" counts as handled before its export.result is in the
		 * chain (a send's result waits for the turn's batch): wait for
		 * that event itself, which a subscriber sees once durable. */
		REQUIRE(thr_subscribe(rt, cid, count_results, &results, &sub, NULL) == 0);
		send(rt, cid, "first");
		send(rt, cid, "sleep:3000");
		send(rt, cid, "a");
		send(rt, cid, "a-message-over-16-bytes");
		send(rt, cid, "b");
		/* Once "first" is recorded, the sleep is in progress. */
		for (int i = 0; i < 6000 && atomic_load(&results) < 1; i++)
			usleep(1000);
		if (write(fds[1], cid, THR_ID_LEN) != THR_ID_LEN)
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	REQUIRE(read(fds[0], id, THR_ID_LEN) == THR_ID_LEN);
	close(fds[0]);
	CHECK_EQ_INT(finish(pid), 0);

	snprintf(small, sizeof small, "%s/small.toml", dir);
	FILE *fo = fopen(small, "w");
	REQUIRE(fo != NULL);
	fprintf(fo, "name = \"journal\"\nversion = \"1\"\nsave_chain = true\n"
		"component = \"journal.core.wasm\"\n[[handler]]\ntype = \"runtime\"\n"
		"[[handler]]\ntype = \"message-server\"\n[[handler]]\ntype = \"timing\"\n"
		"[limits]\nmax_message_bytes = 16\n");
	fclose(fo);
	thr_runtime *rt = runtime(THX_ALWAYS);
	thr_resume_opts ro = { .manifest_path = small };
	thr_resume_info info;
	th_err err = { 0 };
	int rc = thr_resume(rt, id, &ro, &info, &err);
	if (rc)
		fprintf(stderr, "thr_resume: %s\n", err.msg);
	REQUIRE(rc == 0);
	CHECK_EQ_INT((int)info.redelivered, 3); /* sleep:3000, a, b */
	REQUIRE(thr_quiesce(rt, 60000, NULL) == 0);
	uint8_t *st;
	size_t n;
	bool has;
	REQUIRE(thr_get_state(rt, id, &st, &n, &has, NULL) == 0 && has);
	const char *want = "journal\nfirst\nsleep:3000\na\nb\n";
	CHECK(n == strlen(want) && !memcmp(st, want, n));
	thr_free(st);
	thr_runtime_free(rt);
	facts *f = calloc(1, sizeof *f);
	REQUIRE(f != NULL);
	read_facts(id, f);
	CHECK_EQ_INT(f->nredel, 3);
	CHECK_EQ_INT(f->nresumed, 4); /* actor.resumed lists all four */
	replay_ok(id, f->events);
	free(f);
}

/* A supervised restart with state = "reset" starts from the initial
 * state: replay follows supervision.restarting, and resume too. */
TEST(supervised_restart_with_state_reset_replays_and_resumes)
{
	char id[THR_ID_LEN + 1], cmd[1024], m[400];
	uint8_t *st;
	size_t n;
	bool has;
	setup();
	snprintf(cmd, sizeof cmd, "wat2wasm tests/runtime/actors/counter.wat -o "
		 "'%s/counter.wasm'", dir);
	REQUIRE(system(cmd) == 0);
	snprintf(m, sizeof m, "%s/counter.toml", dir);
	FILE *fo = fopen(m, "w");
	REQUIRE(fo != NULL);
	fprintf(fo, "name = \"c\"\nversion = \"1\"\nsave_chain = true\n"
		"component = \"counter.wasm\"\n[[handler]]\ntype = \"runtime\"\n"
		"[[handler]]\ntype = \"message-server\"\n[supervision]\n"
		"restart = \"permanent\"\nbackoff_min_ms = 0\nstate = \"reset\"\n"
		"mailbox = \"discard\"\n");
	fclose(fo);
	thr_runtime *rt = runtime(THX_BATCH);
	thr_spawn_opts so = { .manifest_path = m };
	REQUIRE(thr_spawn(rt, &so, id, NULL) == 0);
	send(rt, id, "+");
	send(rt, id, "+");
	send(rt, id, "!");
	/* The restart is the supervisor's (a timer, then a new instance). */
	thr_actor_info info;
	for (int i = 0; i < 3000; i++) {
		REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
		if (info.status == THR_RUNNING && info.messages > 3)
			break;
		usleep(10000);
	}
	if (info.status != THR_RUNNING)
		fprintf(stderr, "status %d, %llu messages: %s\n", (int)info.status,
			(unsigned long long)info.messages, info.reason);
	REQUIRE(info.status == THR_RUNNING);
	send(rt, id, "+");
	REQUIRE(thr_quiesce(rt, 60000, NULL) == 0);
	REQUIRE(thr_get_state(rt, id, &st, &n, &has, NULL) == 0 && has && n == 8);
	CHECK_EQ_INT((int)st[0], 1); /* reset, then one "+" */
	thr_free(st);
	thr_runtime_free(rt);
	facts *f = calloc(1, sizeof *f);
	REQUIRE(f != NULL);
	read_facts(id, f);
	replay_ok(id, f->events);

	rt = runtime(THX_BATCH);
	REQUIRE(thr_resume(rt, id, NULL, NULL, NULL) == 0);
	REQUIRE(thr_get_state(rt, id, &st, &n, &has, NULL) == 0 && has && n == 8);
	CHECK_EQ_INT((int)st[0], 1);
	thr_free(st);
	thr_runtime_free(rt);
	read_facts(id, f);
	replay_ok(id, f->events);
	free(f);
}

TEST_MAIN()
