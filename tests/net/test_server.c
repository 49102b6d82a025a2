/*
 * test_server.c - the server and the client library together, in one
 * process, over real loopback sockets: handshake and version refusal,
 * every store/chain command, the actor commands through the ops vtable
 * (with a fake runtime), multiplexing, timeouts, stream limits,
 * subscriptions with credit, gaps and resumption, WebSocket, TLS and
 * mutual TLS, malformed input and graceful shutdown.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "net_test.h"

TEST(handshake_and_info)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	thcl_info i;
	thcl_get_info(c, &i);
	CHECK_EQ_INT(i.version, 1);
	CHECK(i.zstd);
	CHECK(i.resume);
	CHECK_EQ_INT(strlen(i.session), 32);
	CHECK_EQ_INT(i.max_frame, THP_DEFAULT_MAX_FRAME);
	CHECK_EQ_INT(i.max_streams, THP_DEFAULT_MAX_STREAMS);
	CHECK(strstr(i.server, "theater") != NULL);
	thcl_close(c);
	fx_stop(&f);
}

TEST(unsupported_version_is_refused_clearly)
{
	struct fx f;
	fx_start(&f, NULL);
	uint32_t v[] = { 7, 8 };
	thcl_opts o = { .address = f.addr, .versions = v, .nversions = 2 };
	thcl *c = NULL;
	th_err err = { 0 };
	CHECK_EQ_INT(thcl_connect(&o, &c, &err), TH_EUNSUPPORTED);
	CHECK(strstr(err.msg, "no common protocol version") != NULL);
	CHECK(strstr(err.msg, "7, 8") != NULL);
	CHECK(strstr(err.msg, "unsupported_version") != NULL);
	/* A client offering 1 among others gets 1. */
	uint32_t v2[] = { 9, 1 };
	o.versions = v2;
	REQUIRE(thcl_connect(&o, &c, &err) == 0);
	thcl_info i;
	thcl_get_info(c, &i);
	CHECK_EQ_INT(i.version, 1);
	thcl_close(c);
	fx_stop(&f);
}

TEST(store_commands)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	thn_args a;
	uint8_t *k;
	th_err err = { 0 };
	REQUIRE(call(c, &a, &k, &err, "store.put", "b", "data", "hello", (size_t)5) == 0);
	/* sha256("hello") */
	CHECK_EQ_STR(arg_s(&a, "hash"),
		     "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	CHECK_EQ_INT(arg_u(&a, "size"), 5);
	thcl_free(k);

	REQUIRE(call(c, &a, &k, &err, "store.get", "t", "hash",
		     "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824") == 0);
	const uint8_t *p;
	size_t n;
	REQUIRE(thn_arg_bytes(&a, "data", true, &p, &n, NULL) == 0);
	CHECK(n == 5 && !memcmp(p, "hello", 5));
	thcl_free(k);

	CHECK(call(c, NULL, NULL, &err, "store.label", "tt", "label", "greeting", "hash",
		   "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824") == 0);
	REQUIRE(call(c, &a, &k, &err, "store.resolve", "t", "label", "greeting") == 0);
	CHECK_EQ_STR(arg_s(&a, "hash"),
		     "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	thcl_free(k);
	REQUIRE(call(c, &a, &k, &err, "store.get", "t", "label", "greeting") == 0);
	REQUIRE(thn_arg_bytes(&a, "data", true, &p, &n, NULL) == 0);
	CHECK(n == 5);
	thcl_free(k);
	REQUIRE(call(c, &a, &k, &err, "store.labels", "") == 0);
	CHECK(memmem(k, last_len, "greeting", 8) != NULL);
	thcl_free(k);
	/* Put with a label in a new named store. */
	REQUIRE(call(c, &a, &k, &err, "store.new", "") == 0);
	char id[256];
	snprintf(id, sizeof id, "%s", arg_s(&a, "id"));
	thcl_free(k);
	CHECK(call(c, NULL, NULL, &err, "store.put", "btt", "data", "x", (size_t)1, "store", id,
		   "label", "one") == 0);
	CHECK(call(c, NULL, NULL, &err, "store.resolve", "tt", "store", id, "label", "one") == 0);
	CHECK(call(c, NULL, NULL, &err, "store.unlabel", "tt", "store", id, "label", "one") == 0);
	/* Errors come back with the store's code and message. */
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "store.resolve", "tt", "store", id, "label", "one"),
		     TH_ENOTFOUND);
	CHECK(strstr(err.msg, "one") != NULL);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "store.get", "t", "hash", "zz"), TH_EINVAL);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "store.get", "t", "hash",
			  "0000000000000000000000000000000000000000000000000000000000000000"),
		     TH_ENOTFOUND);
	thcl_close(c);
	fx_stop(&f);
}

struct sink {
	uint8_t *p;
	size_t n, cap;
	int chunks;
};

static int sink_data(void *ud, const uint8_t *p, size_t n)
{
	struct sink *s = ud;
	if (s->n + n > s->cap)
		return 1;
	memcpy(s->p + s->n, p, n);
	s->n += n;
	s->chunks++;
	return 0;
}

TEST(large_upload_and_streamed_download)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	size_t size = (5u << 20) / 2 + 12345;
	uint8_t *data = malloc(size);
	uint32_t x = 7;
	for (size_t i = 0; i < size; i++) {
		x = x * 1664525u + 1013904223u;
		data[i] = (uint8_t)(x >> 24);
	}
	char path[128];
	snprintf(path, sizeof path, "%s/upload.bin", f.dir);
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, data, size) == (ssize_t)size);
	close(fd);
	fd = open(path, O_RDONLY);
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_map(&e, 2);
	th_cbor_put_cstr(&e, "op");
	th_cbor_put_cstr(&e, "store.put");
	th_cbor_put_cstr(&e, "label");
	th_cbor_put_cstr(&e, "big");
	uint8_t *r;
	size_t rl;
	th_err err = { 0 };
	int rc = thcl_call_upload(c, e.buf, e.len, fd, size, NULL, NULL, &r, &rl, &err);
	close(fd);
	th_cbor_enc_release(&e);
	if (rc)
		fprintf(stderr, "  upload: %s\n", err.msg);
	REQUIRE(rc == 0);
	thn_args a;
	REQUIRE(thn_args_parse(r, rl, &a, NULL) == 0);
	CHECK_EQ_INT(arg_u(&a, "size"), size);
	thcl_free(r);

	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_map(&e, 2);
	th_cbor_put_cstr(&e, "op");
	th_cbor_put_cstr(&e, "store.get");
	th_cbor_put_cstr(&e, "label");
	th_cbor_put_cstr(&e, "big");
	struct sink s = { malloc(size), 0, size, 0 };
	rc = thcl_call_download(c, e.buf, e.len, sink_data, &s, &r, &rl, &err);
	th_cbor_enc_release(&e);
	if (rc)
		fprintf(stderr, "  download: %s\n", err.msg);
	REQUIRE(rc == 0);
	REQUIRE(thn_args_parse(r, rl, &a, NULL) == 0);
	CHECK_EQ_INT(arg_u(&a, "size"), size);
	thcl_free(r);
	CHECK_EQ_INT(s.n, size);
	CHECK(memcmp(s.p, data, size) == 0);
	CHECK(s.chunks >= 2);
	free(s.p);
	free(data);
	/* An upload above the server's limit is refused. */
	thcl_close(c);
	fx_stop(&f);
}

TEST(upload_limit)
{
	struct fx f;
	thsrv_config cfg = { .max_upload = 1000 };
	fx_start(&f, &cfg);
	thcl *c = fx_client(f.addr);
	int pfd[2];
	REQUIRE(pipe(pfd) == 0);
	uint8_t buf[3000];
	memset(buf, 'a', sizeof buf);
	REQUIRE(write(pfd[1], buf, sizeof buf) == (ssize_t)sizeof buf);
	close(pfd[1]);
	uint8_t req[] = { 0xa1, 0x62, 'o', 'p', 0x69, 's', 't', 'o', 'r', 'e', '.', 'p', 'u', 't' };
	uint8_t *r;
	size_t rl;
	th_err err = { 0 };
	CHECK_EQ_INT(thcl_call_upload(c, req, sizeof req, pfd[0], 0, NULL, NULL, &r, &rl, &err),
		     TH_ELIMIT);
	CHECK(strstr(err.msg, "1000 bytes") != NULL);
	close(pfd[0]);
	/* The connection goes on. */
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "x", (size_t)1) == 0);
	thcl_close(c);
	fx_stop(&f);
}

TEST(chain_commands)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	thn_args a;
	uint8_t *k;
	th_err err = { 0 };
	REQUIRE(call(c, &a, &k, &err, "chain.append", "ttbu", "chain", "app", "type", "tick",
		     "data", "abc", (size_t)3, "count", (uint64_t)25) == 0);
	CHECK_EQ_INT(arg_u(&a, "seq"), 0);
	thcl_free(k);
	REQUIRE(call(c, &a, &k, &err, "chain.append", "ttt", "chain", "app", "type", "tock",
		     "desc", "the last") == 0);
	CHECK_EQ_INT(arg_u(&a, "seq"), 25);
	thcl_free(k);
	/* The runtime's chains are not for clients. */
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "chain.append", "tt", "chain", "runtime", "type",
			  "x"),
		     TH_EPERM);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "chain.append", "tt", "chain",
			  "0badcafe-0000-4000-8000-000000000000", "type", "x"),
		     TH_EPERM);

	/* events.get: a page, then the rest. */
	REQUIRE(call(c, &a, &k, &err, "events.get", "tuu", "chain", "app", "from", (uint64_t)3,
		     "limit", (uint64_t)10) == 0);
	CHECK_EQ_INT(arg_u(&a, "count"), 26);
	th_cbor_dec d;
	uint64_t n = 0;
	for (size_t i = 0; i < a.n; i++)
		if (a.kv[i].klen == 6 && !memcmp(a.kv[i].key, "events", 6)) {
			th_cbor_dec_init(&d, a.kv[i].val, a.kv[i].vlen);
			REQUIRE(th_cbor_get_array(&d, &n, NULL) == 0);
			thn_args ev;
			size_t start = d.pos;
			REQUIRE(th_cbor_skip(&d, NULL) == 0);
			REQUIRE(thn_args_parse(a.kv[i].val + start, d.pos - start, &ev, NULL) == 0);
			CHECK_EQ_INT(arg_u(&ev, "seq"), 3);
			CHECK_EQ_STR(arg_s(&ev, "type"), "tick");
		}
	CHECK_EQ_INT(n, 10);
	thcl_free(k);
	/* Filter by type. */
	REQUIRE(call(c, &a, &k, &err, "events.get", "tt", "chain", "app", "type", "tock") == 0);
	CHECK(memmem(k, last_len, "the last", 8) != NULL);
	thcl_free(k);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "events.get", "t", "chain", "nope"), TH_ENOTFOUND);
	CHECK(strstr(err.msg, "nope") != NULL);

	REQUIRE(call(c, &a, &k, &err, "chain.list", "") == 0);
	CHECK(memmem(k, last_len, "app", 3) != NULL);
	thcl_free(k);
	REQUIRE(call(c, &a, &k, &err, "chain.verify", "") == 0);
	bool ok = false;
	CHECK(thn_arg_bool(&a, "ok", &ok, NULL) == 0 && ok);
	CHECK_EQ_INT(arg_u(&a, "events"), 26);
	thcl_free(k);
	REQUIRE(call(c, &a, &k, &err, "chain.verify", "t", "chain", "app") == 0);
	CHECK(thn_arg_bool(&a, "ok", &ok, NULL) == 0 && ok);
	thcl_free(k);
	thcl_close(c);
	fx_stop(&f);
}

TEST(bad_requests_are_stream_errors)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	th_err err = { 0 };
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "no.such.op", ""), TH_EUNSUPPORTED);
	CHECK(strstr(err.msg, "no.such.op") != NULL);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "store.label", "t", "label", "x"), TH_EINVAL);
	CHECK(strstr(err.msg, "hash") != NULL);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "events.get", "u", "chain", (uint64_t)5), TH_EINVAL);
	CHECK(strstr(err.msg, "'chain' must be text") != NULL);
	/* Not a map at all. */
	uint8_t notmap[] = { 0x83, 1, 2, 3 };
	uint8_t *r;
	size_t rl;
	CHECK_EQ_INT(thcl_call(c, notmap, sizeof notmap, 0, &r, &rl, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "map") != NULL);
	/* Truncated CBOR. */
	uint8_t trunc[] = { 0xa1, 0x62, 'o', 'p', 0x69, 's', 't' };
	CHECK_EQ_INT(thcl_call(c, trunc, sizeof trunc, 0, &r, &rl, &err), TH_EINVAL);
	/* The connection is fine. */
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "x", (size_t)1) == 0);
	CHECK_EQ_INT(metric(c, "protocol_errors"), 0);
	thcl_close(c);
	fx_stop(&f);
}

TEST(actor_commands_need_a_runtime)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	th_err err = { 0 };
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "actor.list", ""), TH_EUNSUPPORTED);
	CHECK(strstr(err.msg, "no actor runtime") != NULL);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "actor.start", "t", "manifest", "x"),
		     TH_EUNSUPPORTED);
	thcl_close(c);
	fx_stop(&f);
}

TEST(actor_commands_through_the_ops)
{
	struct fx f;
	thsrv_config cfg = { .ops = &fake_ops };
	fx_start(&f, &cfg);
	thcl *c = fx_client(f.addr);
	thn_args a;
	uint8_t *k;
	th_err err = { 0 };
	REQUIRE(call(c, &a, &k, &err, "actor.start", "tb", "manifest", "name = \"a\"", "state",
		     "s0", (size_t)2) == 0);
	char id[64];
	snprintf(id, sizeof id, "%s", arg_s(&a, "id"));
	thcl_free(k);
	CHECK_EQ_INT(strlen(id), 36);
	REQUIRE(call(c, &a, &k, &err, "actor.start", "tt", "ref", "somelabel", "parent", id) == 0);
	char kid[64];
	snprintf(kid, sizeof kid, "%s", arg_s(&a, "id"));
	thcl_free(k);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "actor.start", "", 0), TH_EINVAL);

	REQUIRE(call(c, &a, &k, &err, "actor.status", "t", "id", id) == 0);
	CHECK_EQ_STR(arg_s(&a, "status"), "running");
	CHECK_EQ_STR(arg_s(&a, "name"), "actor1");
	thcl_free(k);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "actor.status", "t", "id", "nobody"), TH_ENOTFOUND);

	CHECK(call(c, NULL, NULL, &err, "actor.send", "tb", "id", id, "msg", "m1", (size_t)2) == 0);
	REQUIRE(call(c, &a, &k, &err, "actor.request", "tb", "id", id, "msg", "ping",
		     (size_t)4) == 0);
	const uint8_t *p;
	size_t n;
	REQUIRE(thn_arg_bytes(&a, "reply", true, &p, &n, NULL) == 0);
	CHECK(n == 9 && !memcmp(p, "echo:ping", 9));
	thcl_free(k);
	REQUIRE(call(c, &a, &k, &err, "actor.state", "t", "id", id) == 0);
	REQUIRE(thn_arg_bytes(&a, "state", true, &p, &n, NULL) == 0);
	CHECK(n == 2 && !memcmp(p, "m1", 2));
	thcl_free(k);
	REQUIRE(call(c, &a, &k, &err, "actor.manifest", "t", "id", id) == 0);
	CHECK_EQ_STR(arg_s(&a, "manifest"), "name = \"a\"");
	thcl_free(k);

	REQUIRE(call(c, &a, &k, &err, "actor.list", "") == 0);
	CHECK(memmem(k, last_len, kid, 36) != NULL);
	thcl_free(k);
	/* The tree nests the child under its parent. */
	REQUIRE(call(c, &a, &k, &err, "actor.tree", "") == 0);
	th_cbor_dec d;
	uint64_t roots = 0;
	th_cbor_dec_init(&d, a.kv[0].val, a.kv[0].vlen);
	REQUIRE(th_cbor_get_array(&d, &roots, NULL) == 0);
	CHECK_EQ_INT(roots, 1);
	thn_args root;
	REQUIRE(thn_args_parse(a.kv[0].val + d.pos, a.kv[0].vlen - d.pos, &root, NULL) == 0);
	CHECK_EQ_STR(arg_s(&root, "id"), id);
	CHECK(memmem(k, last_len, kid, 36) != NULL);
	thcl_free(k);

	/* Events of an actor: its chain, by id. */
	REQUIRE(call(c, &a, &k, &err, "events.get", "t", "chain", id) == 0);
	CHECK(memmem(k, last_len, "actor.created", 13) != NULL);
	CHECK(memmem(k, last_len, "message.received", 16) != NULL);
	thcl_free(k);

	CHECK(call(c, NULL, NULL, &err, "actor.stop", "t", "id", kid) == 0);
	REQUIRE(call(c, &a, &k, &err, "actor.status", "t", "id", kid) == 0);
	CHECK_EQ_STR(arg_s(&a, "status"), "stopped");
	thcl_free(k);
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "actor.restart", "t", "id", kid), TH_EUNSUPPORTED);

	/* metrics: the server's and the runtime's. */
	REQUIRE(call(c, &a, &k, &err, "metrics", "") == 0);
	CHECK(memmem(k, last_len, "actors", 6) != NULL);
	thcl_free(k);
	CHECK(metric(c, "requests") >= 10);
	thcl_close(c);
	fx_stop(&f);
}

TEST(start_with_subscribe_streams_the_actor_events)
{
	struct fx f;
	thsrv_config cfg = { .ops = &fake_ops };
	fx_start(&f, &cfg);
	thcl *c = fx_client(f.addr);
	th_err err = { 0 };
	thcl_sub *s;
	/* Subscribing to a chain that does not exist is an error. */
	CHECK_EQ_INT(thcl_subscribe(c, "nope", NULL, 0, 0, &s, &err), TH_ENOTFOUND);
	thn_args a;
	uint8_t *k;
	REQUIRE(call(c, &a, &k, &err, "actor.start", "t", "manifest", "m") == 0);
	char id[64];
	snprintf(id, sizeof id, "%s", arg_s(&a, "id"));
	thcl_free(k);
	uint64_t zero = 0;
	REQUIRE(thcl_subscribe(c, id, &zero, 16, 0, &s, &err) == 0);
	CHECK(call(c, NULL, NULL, &err, "actor.send", "tb", "id", id, "msg", "hi", (size_t)2) == 0);
	thcl_event ev;
	REQUIRE(thcl_sub_next(s, &ev, 10000, &err) == 0);
	CHECK_EQ_INT(ev.seq, 0);
	CHECK_EQ_STR(ev.type, "actor.created");
	CHECK_EQ_STR(ev.actor, id);
	REQUIRE(thcl_sub_next(s, &ev, 10000, &err) == 0);
	CHECK_EQ_INT(ev.seq, 1);
	CHECK_EQ_STR(ev.type, "message.received");
	CHECK(ev.len == 2 && !memcmp(ev.data, "hi", 2));
	thcl_sub_close(s);
	thcl_close(c);
	fx_stop(&f);
}

struct async_res {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	char body[64];
	char msg[256];
};

static void async_done(void *ud, int rc, const uint8_t *resp, size_t n, const th_err *err)
{
	struct async_res *r = ud;
	pthread_mutex_lock(&r->mu);
	r->done = true;
	r->rc = rc;
	if (rc == 0 && resp)
		memcpy(r->body, resp, n < sizeof r->body ? n : sizeof r->body - 1);
	if (err)
		snprintf(r->msg, sizeof r->msg, "%s", err->msg);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void async_wait(struct async_res *r)
{
	pthread_mutex_lock(&r->mu);
	while (!r->done)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

static bool async_is_done(struct async_res *r)
{
	pthread_mutex_lock(&r->mu);
	bool d = r->done;
	pthread_mutex_unlock(&r->mu);
	return d;
}

static void start_slow(thcl *c, const char *id, struct async_res *r)
{
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_map(&e, 3);
	th_cbor_put_cstr(&e, "op");
	th_cbor_put_cstr(&e, "actor.request");
	th_cbor_put_cstr(&e, "id");
	th_cbor_put_cstr(&e, id);
	th_cbor_put_cstr(&e, "msg");
	th_cbor_put_bytes(&e, "slow", 4);
	REQUIRE(thcl_call_async(c, e.buf, e.len, async_done, r, NULL) == 0);
	th_cbor_enc_release(&e);
}

static void start_actor(thcl *c, char id[64])
{
	thn_args a;
	uint8_t *k;
	REQUIRE(call(c, &a, &k, NULL, "actor.start", "t", "manifest", "m") == 0);
	snprintf(id, 64, "%s", arg_s(&a, "id"));
	thcl_free(k);
}

TEST(slow_request_does_not_delay_a_fast_one)
{
	struct fx f;
	thsrv_config cfg = { .ops = &fake_ops, .workers = 1 };
	fx_start(&f, &cfg);
	thcl *c = fx_client(f.addr);
	char id[64];
	start_actor(c, id);
	struct async_res slow = { 0 };
	start_slow(c, id, &slow);
	fk_wait_slow(1); /* the slow request is being handled, and blocked */
	/* On the same connection, with one idle worker less: answered. */
	thn_args a;
	uint8_t *k;
	th_err err = { 0 };
	REQUIRE(call(c, &a, &k, &err, "actor.request", "tb", "id", id, "msg", "fast",
		     (size_t)4) == 0);
	thcl_free(k);
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "y", (size_t)1) == 0);
	CHECK(!async_is_done(&slow));
	fk_release();
	async_wait(&slow);
	CHECK_EQ_INT(slow.rc, 0);
	CHECK(memmem(slow.body, sizeof slow.body, "done-slow", 9) != NULL);
	thcl_close(c);
	fx_stop(&f);
}

TEST(slow_request_times_out_as_a_stream_error)
{
	struct fx f;
	thsrv_config cfg = { .ops = &fake_ops, .request_timeout_ms = 300 };
	fx_start(&f, &cfg);
	thcl *c = fx_client(f.addr);
	char id[64];
	start_actor(c, id);
	th_err err = { 0 };
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "actor.request", "tb", "id", id, "msg", "slow",
			  (size_t)4),
		     TH_ETIMEOUT);
	CHECK(strstr(err.msg, "actor.request did not finish within 300 ms") != NULL);
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "y", (size_t)1) == 0);
	fk_release();
	thcl_close(c);
	fx_stop(&f);
}

TEST(stream_limit_per_connection)
{
	struct fx f;
	thsrv_config cfg = { .ops = &fake_ops, .max_streams = 2 };
	fx_start(&f, &cfg);
	thcl *c = fx_client(f.addr);
	char id[64];
	start_actor(c, id);
	struct async_res r1 = { 0 }, r2 = { 0 };
	start_slow(c, id, &r1);
	start_slow(c, id, &r2);
	fk_wait_slow(2);
	th_err err = { 0 };
	CHECK_EQ_INT(call(c, NULL, NULL, &err, "store.put", "b", "data", "y", (size_t)1),
		     TH_ELIMIT);
	CHECK(strstr(err.msg, "limit 2") != NULL);
	fk_release();
	async_wait(&r1);
	async_wait(&r2);
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "y", (size_t)1) == 0);
	thcl_close(c);
	fx_stop(&f);
}

static void append_n(thcl *c, const char *chain, uint64_t n)
{
	th_err err = { 0 };
	int rc = call(c, NULL, NULL, &err, "chain.append", "ttu", "chain", chain, "type", "e",
		      "count", n);
	if (rc)
		fprintf(stderr, "  append: %s\n", err.msg);
	REQUIRE(rc == 0);
}

TEST(subscribe_live_and_from_history)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	append_n(c, "app", 5);
	thcl_sub *live, *hist;
	th_err err = { 0 };
	REQUIRE(thcl_subscribe(c, "app", NULL, 0, 0, &live, &err) == 0);
	CHECK_EQ_INT(thcl_sub_next_seq(live), 5);
	uint64_t two = 2;
	REQUIRE(thcl_subscribe(c, "app", &two, 0, 0, &hist, &err) == 0);
	append_n(c, "app", 3);
	thcl_event ev;
	for (uint64_t want = 5; want < 8; want++) {
		REQUIRE(thcl_sub_next(live, &ev, 10000, &err) == 0);
		CHECK(!ev.gap);
		CHECK_EQ_INT(ev.seq, want);
	}
	for (uint64_t want = 2; want < 8; want++) {
		REQUIRE(thcl_sub_next(hist, &ev, 10000, &err) == 0);
		CHECK_EQ_INT(ev.seq, want);
	}
	CHECK_EQ_INT(thcl_sub_next(live, &ev, 50, &err), TH_ETIMEOUT);
	thcl_sub_close(live);
	thcl_sub_close(hist);
	thcl_close(c);
	fx_stop(&f);
}

/* Read until seq last; every seq in [first, last] must be seen once, as
 * an event or inside a gap. Returns the number of gap notices. */
static int read_all(thcl_sub *s, uint64_t first, uint64_t last, uint64_t *events)
{
	uint64_t next = first;
	int gaps = 0;
	*events = 0;
	while (next <= last) {
		thcl_event ev;
		th_err err = { 0 };
		int rc = thcl_sub_next(s, &ev, 20000, &err);
		if (rc) {
			fprintf(stderr, "  read_all at %llu: %s\n", (unsigned long long)next, err.msg);
			REQUIRE(0);
		}
		if (ev.gap) {
			CHECK_EQ_INT(ev.gap_from, next);
			CHECK(ev.gap_to >= ev.gap_from);
			next = ev.gap_to + 1;
			gaps++;
		} else {
			if (ev.seq != next)
				fprintf(stderr, "  got seq %llu, wanted %llu\n",
					(unsigned long long)ev.seq, (unsigned long long)next);
			CHECK_EQ_INT(ev.seq, next);
			next = ev.seq + 1;
			(*events)++;
		}
	}
	return gaps;
}

TEST(slow_subscriber_gets_a_gap_notice_not_silent_loss)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	thcl *p = fx_client(f.addr);
	append_n(p, "fast", 1);
	thcl_sub *s;
	th_err err = { 0 };
	/* Small window and buffer; the subscriber does not read while the
	 * producer appends 5000 events. */
	REQUIRE(thcl_subscribe(c, "fast", NULL, 8, 64, &s, &err) == 0);
	append_n(p, "fast", 5000);
	/* The producer's connection is unaffected. */
	CHECK(call(p, NULL, NULL, &err, "store.put", "b", "data", "z", (size_t)1) == 0);
	uint64_t events;
	int gaps = read_all(s, 1, 5000, &events);
	CHECK(gaps >= 1);
	CHECK(events >= 64);
	CHECK(events < 5000);
	CHECK(metric(p, "gaps") >= 1);
	/* The missed range can be fetched. */
	thn_args a;
	uint8_t *k;
	REQUIRE(call(p, &a, &k, &err, "events.get", "tuu", "chain", "fast", "from",
		     (uint64_t)100, "limit", (uint64_t)1) == 0);
	thcl_free(k);
	/* After the gap, live events flow again. */
	append_n(p, "fast", 1);
	thcl_event ev;
	REQUIRE(thcl_sub_next(s, &ev, 10000, &err) == 0);
	CHECK(!ev.gap);
	CHECK_EQ_INT(ev.seq, 5001);
	thcl_sub_close(s);
	thcl_close(c);
	thcl_close(p);
	fx_stop(&f);
}

struct producer {
	thx_chain *c;
	uint64_t n;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	thx_event_in evs[256];
	for (int i = 0; i < 256; i++)
		evs[i] = (thx_event_in){ .actor = "p", .type = "tick", .data = "x", .len = 1 };
	for (uint64_t done = 0; done < p->n; done += 256)
		REQUIRE(thx_append_batch(p->c, evs, 256, NULL, NULL, NULL) == 0);
	return NULL;
}

/* Regression: a CREDIT (which drains the subscription at once) arriving
 * while the subscription sat on the ready list let the next event put it
 * on the list a second time, making the list circular: the loop thread
 * spun, events were lost and the producer starved. A small window makes
 * CREDIT frames frequent while a producer appends concurrently. */
TEST(live_stream_small_window_concurrent_producer)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	th_err err = { 0 };
	thx_chain *ch;
	thx_chain_opts o = { .durability = THX_NONE };
	REQUIRE(thx_chain_open(f.ch, "live", &o, true, &ch, &err) == 0);
	thcl_sub *s;
	REQUIRE(thcl_subscribe(c, "live", NULL, 16, 256, &s, &err) == 0);
	struct producer p = { ch, 256 * 400 };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, produce, &p) == 0);
	uint64_t events;
	read_all(s, 0, p.n - 1, &events);
	CHECK(events > 0);
	pthread_join(t, NULL);
	/* The loop is healthy: requests and new events still flow. */
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "k", (size_t)1) == 0);
	thx_event_in ev = { .actor = "p", .type = "last" };
	REQUIRE(thx_append(ch, &ev, NULL, NULL, NULL) == 0);
	thcl_event e;
	REQUIRE(thcl_sub_next(s, &e, 20000, &err) == 0);
	CHECK(!e.gap);
	CHECK_EQ_INT(e.seq, p.n);
	thcl_sub_close(s);
	thcl_close(c);
	fx_stop(&f);
}

TEST(history_catch_up_never_gaps)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	append_n(c, "hist", 3000);
	thcl_sub *s;
	th_err err = { 0 };
	uint64_t zero = 0;
	/* Buffer far below the history: catch-up reads only what fits. */
	REQUIRE(thcl_subscribe(c, "hist", &zero, 16, 32, &s, &err) == 0);
	uint64_t events;
	CHECK_EQ_INT(read_all(s, 0, 2999, &events), 0);
	CHECK_EQ_INT(events, 3000);
	thcl_sub_close(s);
	thcl_close(c);
	fx_stop(&f);
}

static void resume_check(thsrv_config *cfg, const char *which, uint32_t backoff)
{
	struct fx f;
	fx_start(&f, cfg);
	thcl_opts o = { .address = !strcmp(which, "ws") ? f.wsaddr : f.addr, .reconnect = true,
			.backoff_min_ms = backoff, .backoff_max_ms = backoff * 2 };
	thcl *c;
	th_err err = { 0 };
	REQUIRE(thcl_connect(&o, &c, &err) == 0);
	thcl *p = fx_client(f.addr);
	append_n(p, "r", 1);
	thcl_sub *s;
	REQUIRE(thcl_subscribe(c, "r", NULL, 32, 0, &s, &err) == 0);
	append_n(p, "r", 50);
	uint64_t events;
	CHECK_EQ_INT(read_all(s, 1, 20, &events), 0);
	thcl_test_drop(c);
	append_n(p, "r", 50);
	CHECK_EQ_INT(read_all(s, 21, 100, &events), 0);
	CHECK_EQ_INT(events, 80);
	append_n(p, "r", 5);
	CHECK_EQ_INT(read_all(s, 101, 105, &events), 0);
	thcl_info i;
	thcl_get_info(c, &i);
	CHECK(i.reconnects >= 1);
	/* Requests work on the new connection. */
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "w", (size_t)1) == 0);
	thcl_sub_close(s);
	thcl_close(c);
	thcl_close(p);
	fx_stop(&f);
}

TEST(resume_after_a_drop_tcp)
{
	resume_check(NULL, "tcp", 50);
}

TEST(resume_after_a_drop_websocket)
{
	resume_check(NULL, "ws", 50);
}

TEST(resubscribe_when_the_session_expired)
{
	/* The session is gone before the client comes back: it subscribes
	 * again from its next seq. Either way: no gap, no duplicate. */
	thsrv_config cfg = { .session_ttl_ms = 1 };
	resume_check(&cfg, "tcp", 600);
}

/* Regression: resuming a session whose old connection is still open and
 * holds no subscription freed the session being resumed. */
TEST(resume_a_session_whose_connection_is_still_open)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *a = fx_client(f.addr);
	thcl_info i;
	thcl_get_info(a, &i);
	int fd = raw_connect(port_of(f.addr));
	thp_hello h;
	memset(&h, 0, sizeof h);
	h.versions[0] = 1;
	h.nversions = 1;
	h.features = THP_FEAT_RESUME;
	memcpy(h.session, i.session, sizeof h.session);
	uint8_t *p;
	size_t n;
	REQUIRE(thp_hello_encode(&h, &p, &n) == 0);
	raw_frame(fd, THP_HELLO, 0, 0, p, n);
	thp_free(p);
	uint8_t buf[1024];
	n = raw_read_until(fd, buf, sizeof buf, THP_WELCOME, 0);
	thp_frame fr;
	size_t used;
	REQUIRE(thp_parse(buf, n, 1u << 20, &fr, &used, NULL) == 0);
	REQUIRE(fr.type == THP_WELCOME);
	thp_welcome w;
	REQUIRE(thp_welcome_decode(fr.payload, fr.len, &w, NULL) == 0);
	CHECK(w.resumed);
	CHECK_EQ_STR(w.session, i.session);
	/* The new connection works; the old one was closed. */
	uint8_t req[] = { 0xa1, 0x62, 'o', 'p', 0x67, 'm', 'e', 't', 'r', 'i', 'c', 's' };
	raw_frame(fd, THP_REQUEST, THP_F_END, 1, req, sizeof req);
	n = raw_read_until(fd, buf, sizeof buf, THP_RESPONSE, 1);
	CHECK(find_frame(buf, n, THP_RESPONSE, 1, NULL, 0));
	close(fd);
	th_err err = { 0 };
	CHECK(call(a, NULL, NULL, &err, "metrics", "") != 0);
	thcl_close(a);
	thcl *b = fx_client(f.addr);
	CHECK(call(b, NULL, NULL, &err, "metrics", "") == 0);
	thcl_close(b);
	fx_stop(&f);
}

TEST(websocket_client)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.wsaddr);
	th_err err = { 0 };
	thn_args a;
	uint8_t *k;
	REQUIRE(call(c, &a, &k, &err, "store.put", "b", "data", "ws!", (size_t)3) == 0);
	CHECK_EQ_INT(arg_u(&a, "size"), 3);
	thcl_free(k);
	append_n(c, "w", 300);
	thcl_sub *s;
	uint64_t zero = 0;
	REQUIRE(thcl_subscribe(c, "w", &zero, 10, 0, &s, &err) == 0);
	uint64_t events;
	CHECK_EQ_INT(read_all(s, 0, 299, &events), 0);
	thcl_sub_close(s);
	thcl_close(c);
	fx_stop(&f);
}

TEST(websocket_upgrade_errors)
{
	struct fx f;
	fx_start(&f, NULL);
	int fd = raw_connect(port_of(f.wsaddr));
	const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
			   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			   "Sec-WebSocket-Version: 13\r\n\r\n";
	raw_send(fd, req, sizeof req - 1);
	uint8_t buf[2048];
	size_t n = raw_read_all(fd, buf, sizeof buf - 1, 5000);
	buf[n] = 0;
	CHECK(strstr((char *)buf, "400 Bad Request") != NULL);
	CHECK(strstr((char *)buf, "subprotocol theater.v1 required") != NULL);
	close(fd);
	/* Version 8 gets 426 naming 13. */
	fd = raw_connect(port_of(f.wsaddr));
	const char req8[] = "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			    "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Protocol: theater.v1\r\n\r\n";
	raw_send(fd, req8, sizeof req8 - 1);
	n = raw_read_all(fd, buf, sizeof buf - 1, 5000);
	buf[n] = 0;
	CHECK(strstr((char *)buf, "426") != NULL);
	CHECK(strstr((char *)buf, "Sec-WebSocket-Version: 13") != NULL);
	close(fd);
	/* The RFC 6455 example key gives the RFC's accept value. */
	char acc[29];
	thn_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
	CHECK_EQ_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	fx_stop(&f);
}

TEST(malformed_frames_never_crash_the_server)
{
	struct fx f;
	fx_start(&f, NULL);
	/* A good client stays connected through all of it. */
	thcl *good = fx_client(f.addr);
	int port = port_of(f.addr);
	uint8_t buf[4096];
	char code[64];
	th_err err = { 0 };

	struct {
		const char *what;
		const char *want;
	} cases[] = {
		{ "http", THP_ERR_PROTOCOL },
		{ "request before hello", THP_ERR_PROTOCOL },
		{ "oversized hello", THP_ERR_FRAME_TOO_LARGE },
		{ "oversized frame", THP_ERR_FRAME_TOO_LARGE },
		{ "reserved flags", THP_ERR_PROTOCOL },
		{ "request on stream 0", THP_ERR_PROTOCOL },
		{ "decreasing stream id", THP_ERR_PROTOCOL },
		{ "server frame type", THP_ERR_PROTOCOL },
		{ "credit on unopened stream", THP_ERR_PROTOCOL },
		{ "bad hello payload", THP_ERR_BAD_REQUEST },
		{ "corrupt zstd", NULL },
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
		int fd = raw_connect(port);
		const char *w = cases[i].what;
		uint8_t req[] = { 0xa1, 0x62, 'o', 'p', 0x67, 'm', 'e', 't', 'r', 'i', 'c', 's' };
		if (!strcmp(w, "http")) {
			raw_send(fd, "GET / HTTP/1.1\r\n\r\n", 18);
		} else if (!strcmp(w, "request before hello")) {
			raw_frame(fd, THP_REQUEST, THP_F_END, 1, req, sizeof req);
		} else if (!strcmp(w, "oversized hello")) {
			uint8_t h[THP_HEADER_LEN];
			thp_header_put(h, THP_HELLO, 0, 0, THP_HANDSHAKE_MAX + 1);
			raw_send(fd, h, sizeof h);
		} else if (!strcmp(w, "oversized frame")) {
			raw_hello(fd);
			uint8_t h[THP_HEADER_LEN];
			thp_header_put(h, THP_REQUEST, 0, 1, 0x7fffffff);
			raw_send(fd, h, sizeof h);
		} else if (!strcmp(w, "reserved flags")) {
			raw_hello(fd);
			raw_frame(fd, THP_REQUEST, 0x80, 1, req, sizeof req);
		} else if (!strcmp(w, "request on stream 0")) {
			raw_hello(fd);
			raw_frame(fd, THP_REQUEST, THP_F_END, 0, req, sizeof req);
		} else if (!strcmp(w, "decreasing stream id")) {
			raw_hello(fd);
			raw_frame(fd, THP_REQUEST, THP_F_END, 5, req, sizeof req);
			raw_frame(fd, THP_REQUEST, THP_F_END, 3, req, sizeof req);
		} else if (!strcmp(w, "server frame type")) {
			raw_hello(fd);
			raw_frame(fd, THP_EVENT, 0, 1, req, sizeof req);
		} else if (!strcmp(w, "credit on unopened stream")) {
			raw_hello(fd);
			raw_frame(fd, THP_CREDIT, 0, 9, "\xa1\x61n\x01", 4);
		} else if (!strcmp(w, "bad hello payload")) {
			raw_frame(fd, THP_HELLO, 0, 0, "\xff\xff", 2);
		} else if (!strcmp(w, "corrupt zstd")) {
			/* A stream-level error: ERROR on the stream, then the
			 * connection still answers. */
			raw_hello(fd);
			raw_frame(fd, THP_REQUEST, THP_F_END | THP_F_ZSTD, 1, "garbage!", 8);
			raw_frame(fd, THP_REQUEST, THP_F_END, 2, req, sizeof req);
		}
		size_t n = cases[i].want ? raw_read_all(fd, buf, sizeof buf, 5000)
					 : raw_read_until(fd, buf, sizeof buf, THP_RESPONSE, 2);
		if (cases[i].want) {
			code[0] = 0;
			bool found = find_frame(buf, n, THP_GOAWAY, 0, code, sizeof code);
			if (!found || strcmp(code, cases[i].want))
				fprintf(stderr, "  case '%s': GOAWAY %s code '%s'\n", w,
					found ? "with" : "missing", code);
			CHECK(found);
			CHECK_EQ_STR(code, cases[i].want);
		} else {
			CHECK(find_frame(buf, n, THP_ERROR, 1, code, sizeof code));
			CHECK_EQ_STR(code, THP_ERR_BAD_REQUEST);
			CHECK(find_frame(buf, n, THP_RESPONSE, 2, NULL, 0));
		}
		close(fd);
		CHECK(call(good, NULL, NULL, &err, "store.put", "b", "data", "k", (size_t)1) == 0);
	}
	/* Truncated frames and abrupt closes. */
	for (int i = 0; i < 20; i++) {
		int fd = raw_connect(port);
		raw_hello(fd);
		uint8_t h[THP_HEADER_LEN];
		thp_header_put(h, THP_REQUEST, THP_F_END, 1, 100);
		raw_send(fd, h, (size_t)(i % THP_HEADER_LEN) + 1);
		close(fd);
	}
	/* Random garbage, many connections. */
	uint32_t x = 99;
	for (int i = 0; i < 50; i++) {
		int fd = raw_connect(port);
		if (i % 2)
			raw_hello(fd);
		uint8_t g[300];
		for (size_t j = 0; j < sizeof g; j++) {
			x = x * 1103515245u + 12345u;
			g[j] = (uint8_t)(x >> 16);
		}
		raw_send(fd, g, sizeof g);
		raw_read_all(fd, buf, sizeof buf, 2000);
		close(fd);
	}
	CHECK(call(good, NULL, NULL, &err, "store.put", "b", "data", "k", (size_t)1) == 0);
	CHECK(metric(good, "protocol_errors") >= 10);
	thcl_close(good);
	fx_stop(&f);
}

TEST(idle_connections_are_closed_with_a_reason)
{
	struct fx f;
	thsrv_config cfg = { .idle_timeout_ms = 300, .handshake_timeout_ms = 300 };
	fx_start(&f, &cfg);
	int fd = raw_connect(port_of(f.addr));
	raw_hello(fd);
	uint8_t buf[1024];
	char code[64] = "";
	size_t n = raw_read_all(fd, buf, sizeof buf, 10000);
	CHECK(find_frame(buf, n, THP_WELCOME, 0, NULL, 0));
	CHECK(find_frame(buf, n, THP_GOAWAY, 0, code, sizeof code));
	CHECK_EQ_STR(code, THP_ERR_IDLE);
	close(fd);
	/* No HELLO at all: closed after the handshake timeout. */
	fd = raw_connect(port_of(f.addr));
	n = raw_read_all(fd, buf, sizeof buf, 10000);
	CHECK_EQ_INT(n, 0);
	close(fd);
	fx_stop(&f);
	/* Our client pings (every idle/3), so it stays past the idle time: a
	 * separate server with a wide margin (pings every second, idle 3 s). */
	thsrv_config cfg2 = { .idle_timeout_ms = 3000 };
	fx_start(&f, &cfg2);
	thcl *c = fx_client(f.addr);
	struct timespec ts = { 3, 500 * 1000000L };
	nanosleep(&ts, NULL);
	th_err err = { 0 };
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "k", (size_t)1) == 0);
	thcl_close(c);
	fx_stop(&f);
}

TEST(graceful_shutdown_finishes_in_flight_requests)
{
	struct fx f;
	thsrv_config cfg = { .ops = &fake_ops };
	fx_start(&f, &cfg);
	thcl *c = fx_client(f.addr);
	char id[64];
	start_actor(c, id);
	struct async_res slow = { 0 };
	start_slow(c, id, &slow);
	fk_wait_slow(1);
	thsrv_stop(f.srv);
	/* New requests are refused while the old one runs (as soon as the
	 * loop has seen the stop). */
	th_err err = { 0 };
	int rc = 0;
	for (int i = 0; i < 500 && rc == 0; i++) {
		rc = call(c, NULL, NULL, &err, "store.put", "b", "data", "k", (size_t)1);
		if (rc == 0) {
			struct timespec ts = { 0, 10 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	CHECK(rc != 0);
	fk_release();
	async_wait(&slow);
	CHECK_EQ_INT(slow.rc, 0);
	CHECK(memmem(slow.body, sizeof slow.body, "done-slow", 9) != NULL);
	pthread_join(f.t, NULL);
	CHECK_EQ_INT(f.run_rc, 0);
	thcl_close(c);
	thsrv_free(f.srv);
	thx_store_close(f.ch);
	ths_close(f.st);
}

TEST(compression_is_adaptive)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	/* A compressible payload of 64 KiB: the response is compressed. */
	uint8_t *big = malloc(65536);
	for (size_t i = 0; i < 65536; i++)
		big[i] = (uint8_t)("abcdefgh"[i % 8]);
	th_err err = { 0 };
	REQUIRE(call(c, NULL, NULL, &err, "store.put", "bt", "data", big, (size_t)65536,
		     "label", "z") == 0);
	uint64_t before = metric(c, "compressed");
	uint64_t out0 = metric(c, "bytes_out");
	thn_args a;
	uint8_t *k;
	REQUIRE(call(c, &a, &k, &err, "store.get", "t", "label", "z") == 0);
	const uint8_t *p;
	size_t n;
	REQUIRE(thn_arg_bytes(&a, "data", true, &p, &n, NULL) == 0);
	CHECK(n == 65536 && !memcmp(p, big, n));
	thcl_free(k);
	CHECK(metric(c, "compressed") > before);
	CHECK(metric(c, "bytes_out") - out0 < 20000);
	thcl_close(c);
	/* A client that does not offer zstd gets none. */
	thcl_opts o = { .address = f.addr, .no_compress = true };
	REQUIRE(thcl_connect(&o, &c, &err) == 0);
	thcl_info i;
	thcl_get_info(c, &i);
	CHECK(!i.zstd);
	before = metric(c, "compressed");
	REQUIRE(call(c, &a, &k, &err, "store.get", "t", "label", "z") == 0);
	thcl_free(k);
	CHECK_EQ_INT(metric(c, "compressed"), before);
	thcl_close(c);
	free(big);
	fx_stop(&f);
}

/* ---- TLS ---- */

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	REQUIRE(system(cmd) == 0);
}

/* A CA, a server certificate for localhost/127.0.0.1, a client
 * certificate from the same CA and one from an unrelated CA. */
static void make_certs(const char *d)
{
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
	sh("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 "
	   "-subj /CN=theater-test-ca 2>/dev/null", d, ec);
	sh("cd %s && openssl req -x509 %s -keyout ca2.key -out ca2.pem -days 2 "
	   "-subj /CN=other-ca 2>/dev/null", d, ec);
	sh("cd %s && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > srv.ext && "
	   "printf 'extendedKeyUsage=clientAuth\\n' > cli.ext", d);
	sh("cd %s && openssl req %s -keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null && "
	   "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	   "-extfile srv.ext -out srv.pem 2>/dev/null", d, ec);
	sh("cd %s && openssl req %s -keyout cli.key -out cli.csr -subj /CN=client 2>/dev/null && "
	   "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	   "-extfile cli.ext -out cli.pem 2>/dev/null", d, ec);
	sh("cd %s && openssl req %s -keyout bad.key -out bad.csr -subj /CN=intruder 2>/dev/null && "
	   "openssl x509 -req -in bad.csr -CA ca2.pem -CAkey ca2.key -CAcreateserial -days 2 "
	   "-extfile cli.ext -out bad.pem 2>/dev/null", d, ec);
}

TEST(tls_and_mutual_tls)
{
	char d[128], a[256], b[256], cc[256];
	snprintf(d, sizeof d, "/tmp/th-net-certs-%d", (int)getpid());
	sh("rm -rf %s && mkdir -p %s", d, d);
	make_certs(d);
	char cert[200], key[200], ca[200], ca2[200], ccert[200], ckey[200], bcert[200], bkey[200];
	snprintf(cert, sizeof cert, "%s/srv.pem", d);
	snprintf(key, sizeof key, "%s/srv.key", d);
	snprintf(ca, sizeof ca, "%s/ca.pem", d);
	snprintf(ca2, sizeof ca2, "%s/ca2.pem", d);
	snprintf(ccert, sizeof ccert, "%s/cli.pem", d);
	snprintf(ckey, sizeof ckey, "%s/cli.key", d);
	snprintf(bcert, sizeof bcert, "%s/bad.pem", d);
	snprintf(bkey, sizeof bkey, "%s/bad.key", d);
	struct fx f;
	thsrv_config cfg = { .tls_cert = cert, .tls_key = key, .tls_client_ca = ca };
	fx_start(&f, &cfg);
	th_err err = { 0 };
	thcl *c;
	/* A client with a certificate from the CA: in, over TLS and WSS. */
	thcl_opts o = { .address = f.addr, .tls_ca = ca, .tls_cert = ccert, .tls_key = ckey };
	REQUIRE(thcl_connect(&o, &c, &err) == 0);
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "t", (size_t)1) == 0);
	thcl_close(c);
	o.address = f.wsaddr;
	REQUIRE(thcl_connect(&o, &c, &err) == 0);
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "t", (size_t)1) == 0);
	thcl_close(c);
	/* No client certificate: refused. */
	thcl_opts o2 = { .address = f.addr, .tls_ca = ca };
	CHECK(thcl_connect(&o2, &c, &err) != 0);
	snprintf(a, sizeof a, "%s", err.msg);
	/* A certificate from another CA: refused. */
	thcl_opts o3 = { .address = f.addr, .tls_ca = ca, .tls_cert = bcert, .tls_key = bkey };
	CHECK(thcl_connect(&o3, &c, &err) != 0);
	snprintf(b, sizeof b, "%s", err.msg);
	/* A client that does not trust the server's CA refuses the server. */
	thcl_opts o4 = { .address = f.addr, .tls_ca = ca2, .tls_cert = ccert, .tls_key = ckey };
	CHECK(thcl_connect(&o4, &c, &err) != 0);
	snprintf(cc, sizeof cc, "%s", err.msg);
	CHECK(strstr(cc, "certificate verify failed") != NULL);
	/* Plain TCP against the TLS port: no handshake. */
	thcl_opts o5 = { .address = f.addr + 6 /* strip tls:// */, .connect_timeout_ms = 3000 };
	CHECK(thcl_connect(&o5, &c, &err) != 0);
	fprintf(stderr, "  (no cert: %s)\n  (other CA: %s)\n", a, b);
	fx_stop(&f);
	/* Plaintext beyond loopback is refused without --insecure; TLS
	 * anywhere is fine. */
	thsrv *s;
	thsrv_config bad = { .listen = "0.0.0.0:0", .store = (ths_store *)1,
			     .chains = (thx_store *)1 };
	CHECK_EQ_INT(thsrv_new(&bad, &s, &err), TH_EPERM);
	CHECK(strstr(err.msg, "refusing plaintext") != NULL);
	thsrv_config half = { .tls_cert = cert, .store = (ths_store *)1, .chains = (thx_store *)1 };
	CHECK_EQ_INT(thsrv_new(&half, &s, &err), TH_EINVAL);
	sh("rm -rf %s", d);
}

TEST(many_concurrent_streams_on_one_connection)
{
	struct fx f;
	fx_start(&f, NULL);
	thcl *c = fx_client(f.addr);
	enum { N = 200 };
	static struct async_res r[N];
	for (int i = 0; i < N; i++) {
		pthread_mutex_init(&r[i].mu, NULL);
		pthread_cond_init(&r[i].cv, NULL);
		th_cbor_enc e;
		char data[32];
		int dl = snprintf(data, sizeof data, "item-%d", i);
		th_cbor_enc_init(&e, NULL, 0);
		th_cbor_put_map(&e, 2);
		th_cbor_put_cstr(&e, "op");
		th_cbor_put_cstr(&e, "store.put");
		th_cbor_put_cstr(&e, "data");
		th_cbor_put_bytes(&e, data, (size_t)dl);
		REQUIRE(thcl_call_async(c, e.buf, e.len, async_done, &r[i], NULL) == 0);
		th_cbor_enc_release(&e);
	}
	for (int i = 0; i < N; i++) {
		async_wait(&r[i]);
		CHECK_EQ_INT(r[i].rc, 0);
	}
	thcl_close(c);
	fx_stop(&f);
}

TEST(channels_both_ways)
{
	struct fx f;
	thsrv_config cfg = { .ops = &fake_ops };
	fx_start(&f, &cfg);
	thcl *c = fx_client(f.addr);
	char id[64];
	start_actor(c, id);
	th_err err = { 0 };
	thcl_chan *ch;
	uint8_t *reply, *m;
	size_t rl, ml;
	CHECK_EQ_INT(thcl_channel_open(c, "nobody", "x", 1, &ch, &reply, &rl, &err), TH_ENOTFOUND);
	REQUIRE(thcl_channel_open(c, id, "hi", 2, &ch, &reply, &rl, &err) == 0);
	CHECK(rl == 9 && !memcmp(reply, "opened:hi", 9));
	thcl_free(reply);
	const char *msgs[] = { "a", "bb", "ccc" };
	for (int i = 0; i < 3; i++)
		REQUIRE(thcl_channel_send(ch, msgs[i], strlen(msgs[i]), &err) == 0);
	for (int i = 0; i < 3; i++) {
		REQUIRE(thcl_channel_recv(ch, &m, &ml, 10000, &err) == 0);
		char want[16];
		snprintf(want, sizeof want, "echo:%s", msgs[i]);
		CHECK(ml == strlen(want) && !memcmp(m, want, ml));
		thcl_free(m);
	}
	CHECK_EQ_INT(thcl_channel_recv(ch, &m, &ml, 50, &err), TH_ETIMEOUT);
	/* Our side closes (half-close first): the runtime's channel_close
	 * runs and the server ends the stream. */
	REQUIRE(thcl_channel_end(ch, &err) == 0);
	CHECK_EQ_INT(thcl_channel_recv(ch, &m, &ml, 10000, &err), TH_ESTATE);
	CHECK(strstr(err.msg, "channel closed") != NULL);
	thcl_channel_close(ch);
	pthread_mutex_lock(&fk.mu);
	while (fkc.closed < 1)
		pthread_cond_wait(&fk.cv, &fk.mu);
	pthread_mutex_unlock(&fk.mu);
	/* The actor's side closes: we get its messages, then the reason. */
	REQUIRE(thcl_channel_open(c, id, NULL, 0, &ch, NULL, NULL, &err) == 0);
	REQUIRE(thcl_channel_send(ch, "x", 1, &err) == 0);
	REQUIRE(thcl_channel_send(ch, "bye", 3, &err) == 0);
	REQUIRE(thcl_channel_recv(ch, &m, &ml, 10000, &err) == 0);
	CHECK(ml == 6 && !memcmp(m, "echo:x", 6));
	thcl_free(m);
	CHECK_EQ_INT(thcl_channel_recv(ch, &m, &ml, 10000, &err), TH_ESTATE);
	CHECK(strstr(err.msg, "bye now") != NULL);
	CHECK(thcl_channel_send(ch, "late", 4, &err) != 0);
	thcl_channel_close(ch);
	/* The runtime closed first: its channel_close is not called again. */
	CHECK(call(c, NULL, NULL, &err, "store.put", "b", "data", "k", (size_t)1) == 0);
	pthread_mutex_lock(&fk.mu);
	CHECK_EQ_INT(fkc.closed, 1);
	pthread_mutex_unlock(&fk.mu);
	/* A dropped connection closes its channels. */
	REQUIRE(thcl_channel_open(c, id, NULL, 0, &ch, NULL, NULL, &err) == 0);
	thcl_test_drop(c);
	pthread_mutex_lock(&fk.mu);
	while (fkc.closed < 2)
		pthread_cond_wait(&fk.cv, &fk.mu);
	pthread_mutex_unlock(&fk.mu);
	CHECK(thcl_channel_recv(ch, &m, &ml, 10000, &err) != 0);
	thcl_channel_close(ch);
	thcl_close(c);
	fx_stop(&f);
}

TEST_MAIN()
