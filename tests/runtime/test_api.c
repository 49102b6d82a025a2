/*
 * White-box tests of the embedding API calls a server needs beyond
 * spawn/send/request/stop: thr_terminate, thr_get_manifest, spawning under
 * a parent (thr_spawn_opts.parent), and channels with the outside
 * (thr_channel_open/send/close) - each with the events it must record.
 * The actors are tests/runtime/actors/{counter,relay,crasher}.wat.
 */
#include <pthread.h>

#include "rtest.h"
#include "theater/supervise.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

static char counter_path[400], relay_path[400], crasher_path[400];

static char *manifest(const char *name, const char *wasm, const char *extra)
{
	static char buf[4][4096];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, sizeof buf[0],
		 "name = \"%s\"\nversion = \"0.1.0\"\ncomponent = \"%s\"\n"
		 "[[handler]]\ntype = \"runtime\"\n"
		 "[[handler]]\ntype = \"message-server\"\n%s",
		 name, wasm, extra ? extra : "");
	return b;
}

static thr_runtime *setup(int workers)
{
	rtest_home();
	rtest_wat("counter");
	rtest_wat("relay");
	rtest_wat("crasher");
	snprintf(counter_path, sizeof counter_path, "%s/counter.wasm", rtest_dir);
	snprintf(relay_path, sizeof relay_path, "%s/relay.wasm", rtest_dir);
	snprintf(crasher_path, sizeof crasher_path, "%s/crasher.wasm", rtest_dir);
	return rtest_runtime(workers);
}

static int spawn_under(thr_runtime *rt, const char *text, const char *parent,
		       char id[THR_ID_LEN + 1], th_err *err)
{
	thr_spawn_opts so = { .manifest_text = text, .base_dir = rtest_dir,
			      .parent = parent };
	return thr_spawn(rt, &so, id, err);
}

static void spawn_ok(thr_runtime *rt, const char *text, char id[THR_ID_LEN + 1])
{
	th_err err = { 0 };
	if (spawn_under(rt, text, NULL, id, &err))
		fprintf(stderr, "spawn: %s\n", err.msg);
	REQUIRE(id[0] != 0);
}

static void send_str(thr_runtime *rt, const char *id, const char *m)
{
	th_err err = { 0 };
	if (thr_send(rt, id, m, strlen(m), THR_SEND_WAIT, &err))
		fprintf(stderr, "send: %s\n", err.msg);
}

static uint64_t count_of(thr_runtime *rt, const char *id)
{
	uint8_t *s;
	size_t n;
	bool has;
	uint64_t v = 0;
	REQUIRE(thr_get_state(rt, id, &s, &n, &has, NULL) == 0);
	if (has && n >= 8)
		memcpy(&v, s, 8);
	thr_free(s);
	return v;
}

static thr_actor_info info_of(thr_runtime *rt, const char *id)
{
	thr_actor_info info;
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	return info;
}

/* Wait (no deadline: the test harness has one) until actor id has taken
 * every message but `left` from its mailbox and handled `done` of them
 * (the one taken and not handled is in progress). */
static void wait_taken(thr_runtime *rt, const char *id, uint32_t left,
		       uint64_t done)
{
	for (;;) {
		thr_actor_info i = info_of(rt, id);
		if (i.queued == left && i.messages == done)
			return;
		usleep(1000);
	}
}

/* Events of a type in a chain whose data contains needle. */
static int count_with(thr_runtime *rt, const char *chain, const char *type,
		      const char *needle)
{
	thx_chain *c;
	int k = 0;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), chain, NULL, false, &c, NULL) == 0);
	uint64_t n = thx_chain_count(c);
	for (uint64_t i = 0; i < n; i++) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		k += !strcmp(ev.type, type) && rtest_has(ev.data, ev.len, needle);
		thx_event_release(&ev);
	}
	return k;
}

/* ---- terminate ------------------------------------------------------------ */

TEST(terminate_cuts_a_running_handler_short_and_drops_the_queue)
{
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("looper", counter_path, NULL), id);
	send_str(rt, id, "+");
	rtest_quiesce(rt);
	CHECK_EQ_INT(count_of(rt, id), 1);
	send_str(rt, id, "~"); /* loops forever: no fuel cap */
	send_str(rt, id, "+");
	send_str(rt, id, "+");
	wait_taken(rt, id, 2, 2); /* init and "+" handled, "~" running */
	CHECK_EQ_INT(thr_terminate(rt, id, &err), 0);
	thr_actor_info info = info_of(rt, id);
	CHECK_EQ_INT(info.status, THR_STOPPED);
	CHECK_EQ_INT(count_of(rt, id), 1); /* nothing after "+" committed */
	size_t n;
	uint8_t *d = rtest_event(rt, id, "actor.stopped", &n);
	REQUIRE(d != NULL);
	CHECK(rtest_has(d, n, "terminated"));
	free(d);
	/* The loop's message and the two queued ones. */
	CHECK_EQ_INT(rtest_count(rt, id, "message.dropped"), 3);
	CHECK_EQ_INT(rtest_count(rt, id, "export.result"), 2);
	d = rtest_event(rt, THX_RUNTIME_CHAIN, "actor.stopped", &n);
	REQUIRE(d != NULL);
	CHECK(rtest_has(d, n, "terminated"));
	free(d);
	/* Later messages are refused; terminating again is fine. */
	CHECK(thr_send(rt, id, "+", 1, 0, NULL) == TH_ESTATE);
	CHECK_EQ_INT(thr_terminate(rt, id, NULL), 0);
	CHECK_EQ_INT(thr_terminate(rt, "00000000-0000-4000-8000-000000000000", &err),
		     TH_ENOTFOUND);
	CHECK(strstr(err.msg, "no actor") != NULL);
	thr_runtime_free(rt);
}

TEST(terminate_waiting_actor_and_no_restart_by_its_policy)
{
	char id[THR_ID_LEN + 1];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("phoenix", crasher_path,
			      "[[handler]]\ntype = \"timing\"\n"
			      "[supervision]\nrestart = \"permanent\"\nbackoff_min_ms = 0\n"),
		 id);
	send_str(rt, id, "z"); /* sleeps ten minutes: suspended, not running */
	wait_taken(rt, id, 0, 1);
	CHECK_EQ_INT(thr_terminate(rt, id, NULL), 0);
	rtest_quiesce(rt);
	CHECK_EQ_INT(info_of(rt, id).status, THR_STOPPED);
	thr_sup_info si;
	REQUIRE(thr_sup_info_get(rt, id, &si, NULL) == 0);
	CHECK(si.supervised);
	CHECK_EQ_INT(si.restarts, 0);
	CHECK_EQ_INT(rtest_count(rt, id, "actor.restarted"), 0);
	/* The sleep was abandoned: no host call result recorded for it. */
	CHECK_EQ_INT(rtest_count(rt, id, "host.theater:simple/timing.sleep"), 0);
	thr_runtime_free(rt);
}

/* ---- manifests ----------------------------------------------------------------- */

TEST(get_manifest_returns_the_text_it_was_spawned_from)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], path[600];
	th_err err = { 0 };
	char *text;
	size_t len;
	thr_runtime *rt = setup(1);
	const char *m = manifest("counter", counter_path, "# from text\n");
	spawn_ok(rt, m, a);
	REQUIRE(thr_get_manifest(rt, a, &text, &len, &err) == 0);
	CHECK_EQ_STR(text, m);
	CHECK_EQ_INT(len, strlen(m));
	thr_free(text);

	/* From a file: the file's content. */
	const char *file = "name = \"filed\"\nversion = \"1.0.0\"\ncomponent = \"counter.wasm\"\n"
			   "[[handler]]\ntype = \"runtime\"\n";
	rtest_write("filed.toml", file, strlen(file));
	snprintf(path, sizeof path, "%s/filed.toml", rtest_dir);
	thr_spawn_opts so = { .manifest_path = path };
	REQUIRE(thr_spawn(rt, &so, b, &err) == 0);
	REQUIRE(thr_get_manifest(rt, b, &text, &len, &err) == 0);
	CHECK_EQ_STR(text, file);
	thr_free(text);
	/* Still there once the actor has stopped. */
	thr_stop(rt, b, NULL);
	REQUIRE(thr_get_manifest(rt, b, &text, &len, &err) == 0);
	CHECK_EQ_STR(text, file);
	thr_free(text);
	CHECK_EQ_INT(thr_get_manifest(rt, "nope", &text, &len, &err), TH_ENOTFOUND);
	CHECK(text == NULL);
	thr_runtime_free(rt);
}

/* ---- spawning under a parent ----------------------------------------------------- */

TEST(spawn_under_a_parent_joins_its_tree_and_it_hears_of_the_child)
{
	char p[THR_ID_LEN + 1], c[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("parent", relay_path, "[[handler]]\ntype = \"supervisor\"\n"), p);
	REQUIRE(spawn_under(rt, manifest("child", counter_path, NULL), p, c, &err) == 0);
	thr_actor_info ci = info_of(rt, c);
	CHECK_EQ_STR(ci.parent, p);
	CHECK_EQ_INT(ci.status, THR_RUNNING);
	CHECK_EQ_INT(info_of(rt, p).children, 1);
	size_t n;
	uint8_t *d = rtest_event(rt, c, "actor.spawning", &n);
	REQUIRE(d != NULL);
	CHECK(rtest_has(d, n, p)); /* the parent is recorded */
	free(d);
	char *tree;
	REQUIRE(thr_tree_text(rt, &tree, NULL) == 0);
	char *pl = strstr(tree, "+- parent"), *cl = strstr(tree, "`- child");
	if (!pl || !cl || pl > cl)
		fprintf(stderr, "tree:\n%s", tree);
	CHECK(pl != NULL && cl != NULL && pl < cl);
	thr_free(tree);
	/* The child fails: the parent's handle-child-error gets the reason. */
	send_str(rt, c, "!");
	rtest_quiesce(rt);
	CHECK_EQ_INT(info_of(rt, c).status, THR_FAILED);
	char *st = rtest_state_str(rt, p);
	CHECK(strstr(st, "unreachable") != NULL);
	free(st);
	/* A second child ends with its parent. */
	char c2[THR_ID_LEN + 1];
	REQUIRE(spawn_under(rt, manifest("child2", counter_path, NULL), p, c2, &err) == 0);
	thr_stop(rt, p, NULL);
	rtest_quiesce(rt);
	CHECK_EQ_INT(info_of(rt, c2).status, THR_STOPPED);
	thr_runtime_free(rt);
}

TEST(spawn_under_a_parent_never_widens_permissions)
{
	char p[THR_ID_LEN + 1], c[THR_ID_LEN + 1], root[600], extra[800];
	th_err err = { 0 };
	thr_runtime *rt = setup(2);
	snprintf(root, sizeof root, "%s/root", rtest_dir);
	REQUIRE(mkdir(root, 0700) == 0);
	snprintf(extra, sizeof extra, "[[handler]]\ntype = \"filesystem\"\npath = \"%s\"\n", root);
	/* The parent has no filesystem; the child asks for one. */
	spawn_ok(rt, manifest("parent", relay_path, NULL), p);
	REQUIRE(spawn_under(rt, manifest("child", relay_path, extra), p, c, &err) == 0);
	send_str(rt, c, "wx.txt");
	rtest_quiesce(rt);
	char *st = rtest_state_str(rt, c);
	CHECK(strstr(st, "permission denied") != NULL);
	free(st);
	CHECK_EQ_INT(rtest_count(rt, c, "permission.denied"), 1);
	/* The same manifest at top level may write. */
	char t[THR_ID_LEN + 1];
	spawn_ok(rt, manifest("top", relay_path, extra), t);
	send_str(rt, t, "wx.txt");
	rtest_quiesce(rt);
	st = rtest_state_str(rt, t);
	CHECK_EQ_STR(st, "ok");
	free(st);
	thr_runtime_free(rt);
}

TEST(spawn_under_an_unknown_or_ended_parent_is_refused)
{
	char p[THR_ID_LEN + 1], c[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = setup(1);
	CHECK_EQ_INT(spawn_under(rt, manifest("c", counter_path, NULL),
				 "00000000-0000-4000-8000-000000000000", c, &err),
		     TH_ENOTFOUND);
	CHECK_EQ_STR(c, "");
	spawn_ok(rt, manifest("parent", relay_path, NULL), p);
	thr_stop(rt, p, NULL);
	CHECK_EQ_INT(spawn_under(rt, manifest("c", counter_path, NULL), p, c, &err),
		     TH_ESTATE);
	CHECK(strstr(err.msg, "not running") != NULL);
	thr_stats s;
	thr_runtime_stats(rt, &s);
	CHECK_EQ_INT(s.spawned, 1);
	thr_runtime_free(rt);
}

/* ---- channels with the outside ------------------------------------------------ */

/* What a channel's callback saw. */
struct seen {
	pthread_mutex_t lock;
	int msgs, closes;
	char last[256];
	char why[256];
	bool after_close; /* set by the test once thr_channel_close returned */
	int late;         /* calls after that */
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
}

static void on_chan(void *arg, uint64_t ch, const void *msg, size_t len,
		    const char *closed)
{
	struct seen *s = arg;
	TH_UNUSED(ch);
	pthread_mutex_lock(&s->lock);
	if (s->after_close)
		s->late++;
	if (closed) {
		s->closes++;
		snprintf(s->why, sizeof s->why, "%s", closed);
	} else {
		s->msgs++;
		snprintf(s->last, sizeof s->last, "%.*s", (int)len, (const char *)msg);
	}
	pthread_mutex_unlock(&s->lock);
}

static uint64_t open_ok(thr_runtime *rt, const char *id, const char *first,
			struct seen *s)
{
	uint64_t ch = 0;
	uint8_t *reply = NULL;
	size_t rl = 0;
	th_err err = { 0 };
	int rc = thr_channel_open(rt, id, first, strlen(first), 0, on_chan, s, &ch,
				  &reply, &rl, &err);
	if (rc)
		fprintf(stderr, "channel open: %s\n", err.msg);
	REQUIRE(rc == 0);
	CHECK(reply == NULL); /* the relay accepts without a message */
	return ch;
}

TEST(external_channel_both_ways_then_closed_from_outside)
{
	char r[THR_ID_LEN + 1], cid[32];
	struct seen s;
	th_err err = { 0 };
	seen_init(&s);
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, NULL), r);
	uint64_t ch = open_ok(rt, r, "hello", &s);
	CHECK(ch != 0);
	rtest_quiesce(rt);
	/* handle-channel-open ran with the channel's id. */
	snprintf(cid, sizeof cid, "c%llu", (unsigned long long)ch);
	char *st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, cid);
	free(st);
	/* The actor sends on it (relay 'c': on the channel in its state). */
	send_str(rt, r, "cto the outside");
	rtest_quiesce(rt);
	CHECK_EQ_INT(s.msgs, 1);
	CHECK_EQ_STR(s.last, "to the outside");
	/* The outside sends: handle-channel-message. */
	CHECK_EQ_INT(thr_channel_send(rt, ch, "m1", 2, 0, &err), 0);
	rtest_quiesce(rt);
	st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "m1");
	free(st);
	/* Closed from outside: handle-channel-close runs; fn is not told. */
	CHECK_EQ_INT(thr_channel_close(rt, ch, &err), 0);
	rtest_quiesce(rt);
	st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "closed");
	free(st);
	CHECK_EQ_INT(s.closes, 0);
	CHECK_EQ_INT(thr_channel_send(rt, ch, "late", 4, 0, &err), TH_ESTATE);
	CHECK_EQ_INT(thr_channel_close(rt, ch, &err), TH_ENOTFOUND);
	/* Each step is in the actor's chain. */
	CHECK_EQ_INT(rtest_count(rt, r, "host.theater:simple/message-server-host.send-on-channel"), 1);
	CHECK_EQ_INT(count_with(rt, r, "message.received", "channel-open"), 1);
	CHECK_EQ_INT(count_with(rt, r, "message.received", "channel-message"), 1);
	CHECK_EQ_INT(count_with(rt, r, "message.received", "channel-close"), 1);
	CHECK_EQ_INT(rtest_count(rt, r, "message.received"), 5); /* init, open, 'c', msg, close */
	thr_runtime_free(rt);
}

TEST(external_channel_closed_by_the_actor_or_its_end)
{
	char r[THR_ID_LEN + 1];
	struct seen s, s2;
	th_err err = { 0 };
	seen_init(&s);
	seen_init(&s2);
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, NULL), r);
	uint64_t ch = open_ok(rt, r, "x", &s);
	rtest_quiesce(rt);
	send_str(rt, r, "C"); /* close-channel(state = the channel id) */
	rtest_quiesce(rt);
	CHECK_EQ_INT(s.closes, 1);
	CHECK(strstr(s.why, "closed by the actor") != NULL);
	/* Released with the close: nothing to close or send any more. */
	CHECK_EQ_INT(thr_channel_send(rt, ch, "y", 1, 0, &err), TH_ESTATE);
	CHECK_EQ_INT(thr_channel_close(rt, ch, &err), TH_ENOTFOUND);

	/* The actor stops: the channel ends with it. */
	uint64_t ch2 = open_ok(rt, r, "x", &s2);
	CHECK(ch2 != ch);
	thr_stop(rt, r, NULL);
	CHECK_EQ_INT(s2.closes, 1);
	CHECK(strstr(s2.why, "stopped") != NULL);
	CHECK_EQ_INT(thr_channel_close(rt, ch2, &err), TH_ENOTFOUND);
	thr_runtime_free(rt);
}

TEST(external_channel_refused_unknown_or_unanswered)
{
	char c[THR_ID_LEN + 1], a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], cmd[128];
	struct seen s;
	uint64_t ch = 7;
	uint8_t *reply = (uint8_t *)"x";
	size_t rl = 1;
	th_err err = { 0 };
	seen_init(&s);
	thr_runtime *rt = setup(2);
	/* The counter does not export handle-channel-open: refused. */
	spawn_ok(rt, manifest("counter", counter_path, NULL), c);
	CHECK_EQ_INT(thr_channel_open(rt, c, "hi", 2, 0, on_chan, &s, &ch, &reply, &rl,
				      &err), TH_EPERM);
	CHECK(strstr(err.msg, "refused") != NULL);
	CHECK(ch == 0 && reply == NULL && rl == 0);
	CHECK_EQ_INT(rtest_count(rt, c, "message.dropped"), 1);
	CHECK_EQ_INT(thr_channel_open(rt, "nope", "hi", 2, 0, on_chan, &s, &ch, &reply,
				      &rl, &err), TH_ENOTFOUND);
	/* An actor suspended in a request nobody answers cannot answer the
	 * open either: the opener's timeout. */
	spawn_ok(rt, manifest("a", relay_path, NULL), a);
	spawn_ok(rt, manifest("b", relay_path, NULL), b);
	snprintf(cmd, sizeof cmd, "r%sq", b);
	send_str(rt, a, cmd); /* b defers its answer forever */
	wait_taken(rt, b, 0, 2); /* init, the request (answer deferred) */
	CHECK_EQ_INT(thr_channel_open(rt, a, "hi", 2, 50, on_chan, &s, &ch, &reply, &rl,
				      &err), TH_ETIMEOUT);
	/* When a finally reads the open, nobody waits for it any more. */
	thr_stop(rt, a, NULL);
	rtest_quiesce(rt);
	CHECK_EQ_INT(s.msgs + s.closes, 0);
	thr_runtime_free(rt);
}

struct close_arg {
	thr_runtime *rt;
	uint64_t ch;
	int rc;
};

static void *close_thread(void *arg)
{
	struct close_arg *c = arg;
	c->rc = thr_channel_close(c->rt, c->ch, NULL);
	return NULL;
}

TEST(close_waits_for_room_and_comes_after_the_messages)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], cmd[128];
	struct seen s;
	pthread_t th;
	th_err err = { 0 };
	seen_init(&s);
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("a", relay_path, "[limits]\nmailbox_capacity = 4\n"), a);
	spawn_ok(rt, manifest("b", relay_path, NULL), b);
	uint64_t ch = open_ok(rt, a, "x", &s);
	/* a waits for b's deferred answer: it takes no message meanwhile. */
	snprintf(cmd, sizeof cmd, "r%sq", b);
	send_str(rt, a, cmd);
	wait_taken(rt, b, 0, 2);
	int sent = 0;
	while (thr_channel_send(rt, ch, "m", 1, 0, &err) == 0)
		sent++;
	CHECK_EQ_INT(err.code, TH_EBUSY);
	CHECK(sent >= 1);
	struct close_arg c = { .rt = rt, .ch = ch, .rc = 1 };
	REQUIRE(pthread_create(&th, NULL, close_thread, &c) == 0);
	/* b answers (its state is the request id): a goes on, makes room. */
	send_str(rt, b, "Rdone");
	pthread_join(th, NULL);
	CHECK_EQ_INT(c.rc, 0);
	rtest_quiesce(rt);
	char *st = rtest_state_str(rt, a);
	CHECK_EQ_STR(st, "closed"); /* the close came last */
	free(st);
	CHECK_EQ_INT(count_with(rt, a, "message.received", "channel-message"), sent);
	CHECK_EQ_INT(count_with(rt, a, "message.received", "channel-close"), 1);
	CHECK_EQ_INT(rtest_count(rt, a, "message.dropped"), 0);
	thr_runtime_free(rt);
}

/* Regression: a channel open or request refused because the mailbox was
 * full leaked its message (rta_deliver leaves it to the caller on
 * TH_EBUSY). Under ASan, LeakSanitizer checks it. */
TEST(full_mailbox_refuses_open_and_request_without_a_leak)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], cmd[128];
	struct seen s;
	uint64_t ch;
	uint8_t *reply;
	size_t rl;
	th_err err = { 0 };
	seen_init(&s);
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("a", relay_path, "[limits]\nmailbox_capacity = 2\n"), a);
	spawn_ok(rt, manifest("b", relay_path, NULL), b);
	snprintf(cmd, sizeof cmd, "r%sq", b);
	send_str(rt, a, cmd); /* a waits for b's deferred answer */
	wait_taken(rt, b, 0, 2);
	while (thr_send(rt, a, "l", 1, 0, NULL) == 0)
		;
	CHECK_EQ_INT(thr_channel_open(rt, a, "hi", 2, 0, on_chan, &s, &ch, &reply, &rl, &err),
		     TH_EBUSY);
	CHECK_EQ_INT(thr_request(rt, a, "hi", 2, 1000, &reply, &rl, &err), TH_EBUSY);
	send_str(rt, b, "Rdone");
	rtest_quiesce(rt);
	thr_runtime_free(rt);
#ifdef __SANITIZE_ADDRESS__
	CHECK_EQ_INT(__lsan_do_recoverable_leak_check(), 0);
#endif
}

/* Regression: a channel close between actors that met a full mailbox
 * leaked its message (the close is lost then: nobody waits for it). */
TEST(close_between_actors_to_a_full_mailbox_does_not_leak)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], c[THR_ID_LEN + 1], cmd[128];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("a", relay_path, NULL), a);
	spawn_ok(rt, manifest("b", relay_path, "[limits]\nmailbox_capacity = 2\n"), b);
	spawn_ok(rt, manifest("c", relay_path, NULL), c);
	snprintf(cmd, sizeof cmd, "o%shi", b);
	send_str(rt, a, cmd); /* a opens a channel to b: both hold its id */
	rtest_quiesce(rt);
	char *sa = rtest_state_str(rt, a), *sb = rtest_state_str(rt, b);
	CHECK(sa[0] == 'c');
	CHECK_EQ_STR(sa, sb);
	free(sa);
	free(sb);
	snprintf(cmd, sizeof cmd, "r%sq", c);
	send_str(rt, b, cmd); /* b waits for c's deferred answer */
	wait_taken(rt, c, 0, 2);
	while (thr_send(rt, b, "l", 1, 0, NULL) == 0)
		;
	send_str(rt, a, "C"); /* a closes: b's mailbox is full */
	for (;;) {
		char *st = rtest_state_str(rt, a);
		bool done = strcmp(st, "ok") == 0;
		free(st);
		if (done)
			break;
		usleep(1000);
	}
	send_str(rt, c, "Rdone");
	rtest_quiesce(rt);
	thr_runtime_free(rt);
#ifdef __SANITIZE_ADDRESS__
	CHECK_EQ_INT(__lsan_do_recoverable_leak_check(), 0);
#endif
}

struct closer {
	thr_runtime *rt;
	uint64_t ch;
	struct seen *s;
};

static void *close_later(void *arg)
{
	struct closer *c = arg;
	/* Once some messages went through, close while the actor sends. */
	for (;;) {
		pthread_mutex_lock(&c->s->lock);
		int m = c->s->msgs;
		pthread_mutex_unlock(&c->s->lock);
		if (m >= 20)
			break;
		usleep(100);
	}
	REQUIRE(thr_channel_close(c->rt, c->ch, NULL) == 0);
	pthread_mutex_lock(&c->s->lock);
	c->s->after_close = true;
	pthread_mutex_unlock(&c->s->lock);
	return NULL;
}

TEST(no_callback_after_close_returns_while_the_actor_sends)
{
	char r[THR_ID_LEN + 1], cid[32];
	struct seen s;
	pthread_t th;
	seen_init(&s);
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, NULL), r);
	uint64_t ch = open_ok(rt, r, "x", &s);
	rtest_quiesce(rt);
	snprintf(cid, sizeof cid, "c%llu", (unsigned long long)ch);
	struct closer c = { .rt = rt, .ch = ch, .s = &s };
	REQUIRE(pthread_create(&th, NULL, close_later, &c) == 0);
	/* The channel message makes the id the relay's state again, so each
	 * 'c' sends on the channel, until the other thread closes it. */
	int sent = 0;
	for (int i = 0; i < 100000; i++) {
		if (thr_channel_send(rt, ch, cid, strlen(cid), THR_SEND_WAIT, NULL))
			break;
		send_str(rt, r, "cmsg");
		sent++;
	}
	pthread_join(th, NULL);
	rtest_quiesce(rt);
	CHECK(sent >= 20);
	CHECK(s.msgs >= 20);
	CHECK_EQ_INT(s.late, 0);
	CHECK_EQ_INT(s.closes, 0);
	thr_runtime_free(rt);
}

TEST_MAIN()
