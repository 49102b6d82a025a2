/*
 * bench_net.c - the network server under load, measured in one process
 * over loopback (`make bench-net`; figures in docs/protocol.md):
 *
 *   1. connections: N clients (default 1000) connect, handshake and stay
 *      connected (the fd limit is raised with setrlimit);
 *   2. round trip: with all of them held, `actor.send` to a real actor
 *      (the runtime's counter, tests/runtime/actors/counter.wat) through
 *      the server, p50/p99/p99.9 over many requests spread across the
 *      connections; references in the same run: a raw TCP ping-pong over
 *      loopback (the floor any protocol pays) and thr_send called
 *      directly (no network);
 *   3. streaming: events to one subscriber, live (a producer appending
 *      in batches while the subscriber consumes) and from history
 *      (catch-up from the chain); reference: reading the same events
 *      from the chain in-process (thx_query_run).
 *
 *   bench_net [--conns N] [--requests N] [--events N] [--runs N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "cli/server_rt.h"
#include "theater/client.h"
#include "theater/server.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1));
	return v[i];
}

/* CPU time of the whole process (every thread: server and clients). */
static double cpu_s(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
	       (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static double median(double *v, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (v[j] < v[i]) {
				double t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, const th_err *err)
{
	fprintf(stderr, "bench_net: %s: %s\n", what, err ? err->msg : strerror(errno));
	exit(1);
}

/* ---- the server ---- */

static thsrv *srv;
static thr_runtime *rt;
static pthread_t srv_thread;
static char addr[64];
static char actor[THR_ID_LEN + 1];
static char home[128];

static void *srv_main(void *arg)
{
	TH_UNUSED(arg);
	th_err err = { 0 };
	if (thsrv_run(srv, &err))
		die("server", &err);
	return NULL;
}

static void start(void)
{
	snprintf(home, sizeof home, "/tmp/th-bench-net-%d", (int)getpid());
	char cmd[512];
	snprintf(cmd, sizeof cmd,
		 "rm -rf %s && mkdir -p %s && wat2wasm tests/runtime/actors/counter.wat -o %s/counter.wasm",
		 home, home, home);
	if (system(cmd) != 0)
		die("preparing the counter actor (needs wat2wasm, run from the repository root)", NULL);
	th_err err = { 0 };
	thr_options o = { .home = home, .durability = THX_NONE, .store_no_sync = true };
	if (thr_runtime_new(&o, &rt, &err))
		die("runtime", &err);
	char mf[512];
	snprintf(mf, sizeof mf,
		 "name = \"counter\"\nversion = \"0.1.0\"\ncomponent = \"%s/counter.wasm\"\n"
		 "save_chain = false\n[[handler]]\ntype = \"runtime\"\n"
		 "[[handler]]\ntype = \"message-server\"\n[limits]\nmailbox_capacity = 65536\n",
		 home);
	thr_spawn_opts so = { .manifest_text = mf };
	if (thr_spawn(rt, &so, actor, &err))
		die("spawn", &err);
	thsrv_config cfg = { .listen = "127.0.0.1:0",
			     .store = thr_runtime_store(rt),
			     .chains = thr_runtime_chains(rt),
			     .ops = &cli_server_rt_ops,
			     .ops_ctx = rt };
	if (thsrv_new(&cfg, &srv, &err))
		die("server", &err);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", thsrv_port(srv, false));
	pthread_create(&srv_thread, NULL, srv_main, NULL);
}

static void stop(void)
{
	thsrv_stop(srv);
	pthread_join(srv_thread, NULL);
	thsrv_free(srv);
	thr_runtime_free(rt);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", home);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_net: cannot remove %s\n", home);
}

/* ---- 2. round trips ---- */

static uint8_t send_req[256];
static size_t send_len;

static void build_send(void)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, send_req, sizeof send_req);
	th_cbor_put_map(&e, 3);
	th_cbor_put_cstr(&e, "id");
	th_cbor_put_cstr(&e, actor);
	th_cbor_put_cstr(&e, "op");
	th_cbor_put_cstr(&e, "actor.send");
	th_cbor_put_cstr(&e, "msg");
	th_cbor_put_bytes(&e, "tick", 4);
	send_len = e.len;
}

struct rt_job {
	thcl **clients;
	int nclients, first, step;
	int n;
	uint64_t *lat;
};

static void *rt_worker(void *arg)
{
	struct rt_job *j = arg;
	for (int i = 0; i < j->n; i++) {
		thcl *c = j->clients[(j->first + i * j->step) % j->nclients];
		uint8_t *r;
		size_t rl;
		th_err err = { 0 };
		uint64_t t0 = th_now_ns();
		if (thcl_call(c, send_req, send_len, 0, &r, &rl, &err))
			die("actor.send", &err);
		j->lat[i] = th_now_ns() - t0;
		thcl_free(r);
	}
	return NULL;
}

/* Event-driven clients: `depth` requests in flight, each re-issued from
 * its completion callback on the client loop (no application thread in
 * the path), spread over the connections. */
struct aslot {
	struct async_run *run;
	uint64_t t0;
	int conn;
};

struct async_run {
	thcl **clients;
	int nclients;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t *lat;
	int n, issued, done;
	struct aslot *slots;
};

static void async_issue(struct aslot *s);

static void async_done(void *ud, int rc, const uint8_t *resp, size_t len, const th_err *err)
{
	TH_UNUSED(resp);
	TH_UNUSED(len);
	struct aslot *s = ud;
	struct async_run *r = s->run;
	if (rc)
		die("async actor.send", err);
	uint64_t dt = th_now_ns() - s->t0;
	pthread_mutex_lock(&r->mu);
	r->lat[r->done++] = dt;
	bool again = r->issued < r->n;
	if (again)
		r->issued++;
	if (r->done == r->n)
		pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (again) {
		s->conn = (s->conn + 97) % r->nclients;
		async_issue(s);
	}
}

static void async_issue(struct aslot *s)
{
	th_err err = { 0 };
	s->t0 = th_now_ns();
	if (thcl_call_async(s->run->clients[s->conn], send_req, send_len, async_done, s, &err))
		die("async call", &err);
}

static void async_rtt(thcl **cl, int ncl, int depth, int n, uint64_t *lat, double *rate)
{
	struct async_run r = { cl, ncl, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			       lat, n, 0, 0, NULL };
	r.slots = calloc((size_t)depth, sizeof *r.slots);
	uint64_t t0 = th_now_ns();
	pthread_mutex_lock(&r.mu);
	r.issued = depth;
	pthread_mutex_unlock(&r.mu);
	for (int i = 0; i < depth; i++) {
		r.slots[i] = (struct aslot){ &r, 0, (i * 131) % ncl };
		async_issue(&r.slots[i]);
	}
	pthread_mutex_lock(&r.mu);
	while (r.done < n)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	*rate = (double)n * 1e9 / (double)(th_now_ns() - t0);
	free(r.slots);
}

/* Raw loopback ping-pong: 16 bytes there and back. */
static void *echo_main(void *arg)
{
	int fd = *(int *)arg;
	char b[16];
	for (;;) {
		ssize_t n = read(fd, b, sizeof b);
		if (n <= 0 || write(fd, b, (size_t)n) != n)
			break;
	}
	close(fd);
	return NULL;
}

static void raw_rtt(int n, uint64_t *lat)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &sl))
		die("raw listen", NULL);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&sa, sizeof sa))
		die("raw connect", NULL);
	int s = accept(l, NULL, NULL);
	int one = 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	pthread_t t;
	pthread_create(&t, NULL, echo_main, &s);
	char b[16] = "ping";
	for (int i = 0; i < n; i++) {
		uint64_t t0 = th_now_ns();
		if (write(c, b, sizeof b) != sizeof b)
			die("raw write", NULL);
		size_t got = 0;
		while (got < sizeof b) {
			ssize_t r = read(c, b + got, sizeof b - got);
			if (r <= 0)
				die("raw read", NULL);
			got += (size_t)r;
		}
		lat[i] = th_now_ns() - t0;
	}
	close(c);
	pthread_join(t, NULL);
	close(l);
}

/* ---- 3. streaming ---- */

struct producer {
	thx_chain *c;
	uint64_t n;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	enum { B = 512 };
	thx_event_in evs[B];
	for (int i = 0; i < B; i++)
		evs[i] = (thx_event_in){ .actor = "bench", .type = "tick", .data = "0123456789abcdef",
					 .len = 16 };
	th_err err = { 0 };
	for (uint64_t done = 0; done < p->n;) {
		size_t k = p->n - done < B ? (size_t)(p->n - done) : B;
		if (thx_append_batch(p->c, evs, k, NULL, NULL, &err))
			die("append", &err);
		done += k;
	}
	return NULL;
}

/* Returns events per second received by one subscriber. */
static double stream(thcl *c, const char *chain, uint64_t from, uint64_t n, bool live,
		     uint64_t *gaps)
{
	thx_chain *ch;
	th_err err = { 0 };
	if (thx_chain_open(thr_runtime_chains(rt), chain, &(thx_chain_opts){ .durability = THX_NONE },
			   true, &ch, &err))
		die("chain", &err);
	thcl_sub *s;
	uint64_t f = from;
	if (thcl_subscribe(c, chain, live ? NULL : &f, 4096, 16384, &s, &err))
		die("subscribe", &err);
	struct producer p = { ch, n };
	pthread_t t;
	uint64_t t0 = th_now_ns();
	if (live)
		pthread_create(&t, NULL, produce, &p);
	/* Gap notices (the subscriber fell behind) count as progress but
	 * not as delivered events. */
	uint64_t got = 0, delivered = 0;
	*gaps = 0;
	while (got < n) {
		thcl_event ev;
		if (thcl_sub_next(s, &ev, 30000, &err))
			die("stream", &err);
		if (ev.gap) {
			got += ev.gap_to - ev.gap_from + 1;
			(*gaps)++;
		} else {
			got++;
			delivered++;
		}
	}
	uint64_t dt = th_now_ns() - t0;
	if (live)
		pthread_join(t, NULL);
	thcl_sub_close(s);
	return (double)delivered * 1e9 / (double)dt;
}

static int count_cb(const thx_event *ev, void *arg)
{
	TH_UNUSED(ev);
	(*(uint64_t *)arg)++;
	return 0;
}

/* Live, in-process: the same producer, the chain's subscription callback
 * counting (no network, no encoding): the ceiling for live streaming. */
static _Atomic uint64_t live_seen;

static int live_cb(const thx_event *ev, void *arg)
{
	TH_UNUSED(ev);
	TH_UNUSED(arg);
	atomic_fetch_add(&live_seen, 1);
	return 0;
}

static double live_direct(const char *chain, uint64_t n)
{
	thx_chain *ch;
	th_err err = { 0 };
	thx_store *st = thr_runtime_chains(rt);
	if (thx_chain_open(st, chain, &(thx_chain_opts){ .durability = THX_NONE }, true, &ch, &err))
		die("chain", &err);
	uint64_t id;
	atomic_store(&live_seen, 0);
	if (thx_subscribe(st, chain, live_cb, NULL, &id, &err))
		die("subscribe", &err);
	struct producer p = { ch, n };
	uint64_t t0 = th_now_ns();
	produce(&p);
	while (atomic_load(&live_seen) < n)
		sched_yield();
	uint64_t dt = th_now_ns() - t0;
	thx_unsubscribe(st, id);
	return (double)n * 1e9 / (double)dt;
}

int main(int argc, char **argv)
{
	int nconns = 1000, nreq = 20000, runs = 3;
	uint64_t nevents = 1000000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--conns"))
			nconns = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--requests"))
			nreq = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--events"))
			nevents = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
	}
	/* Two fds per connection (both ends live in this process). */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t want = (rlim_t)nconns * 2 + 256;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	start();
	build_send();
	double load[3] = { 0, 0, 0 };
	getloadavg(load, 3);
	printf("theater network benchmark (one process, loopback; %ld CPUs online; "
	       "load average %.2f %.2f %.2f)\n",
	       sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);

	/* 1. connections */
	thcl_loop *loops[2];
	th_err err = { 0 };
	for (int i = 0; i < 2; i++)
		if (thcl_loop_new(&loops[i], &err))
			die("client loop", &err);
	thcl **cl = calloc((size_t)nconns, sizeof *cl);
	uint64_t t0 = th_now_ns();
	for (int i = 0; i < nconns; i++) {
		thcl_opts o = { .address = addr, .loop = loops[i % 2] };
		if (thcl_connect(&o, &cl[i], &err))
			die("connect", &err);
	}
	uint64_t t1 = th_now_ns();
	thsrv_stats st;
	thsrv_get_stats(srv, &st);
	printf("\n1. connections: %d held (server counts %llu open), connected and handshaken in %.0f ms "
	       "(%.0f per second)\n",
	       nconns, (unsigned long long)st.connections, (double)(t1 - t0) / 1e6,
	       nconns * 1e9 / (double)(t1 - t0));

	/* 2. round trips */
	int threads = 4;
	uint64_t *lat = calloc((size_t)nreq, sizeof *lat);
	double p50s[16], p99s[16], p999s[16], rps[16], raw50[16], raw99[16], dir50[16];
	double a50[16], a99[16], a999[16], arps[16], cpu_b[16], cpu_a[16];
	int depth = 8;
	for (int r = 0; r < runs && r < 16; r++) {
		pthread_t t[16];
		struct rt_job jobs[16];
		uint64_t s0 = th_now_ns();
		double c0 = cpu_s();
		for (int k = 0; k < threads; k++) {
			jobs[k] = (struct rt_job){ cl, nconns, k * 7919 + r, 13,
						   nreq / threads, lat + (size_t)k * (size_t)(nreq / threads) };
			pthread_create(&t[k], NULL, rt_worker, &jobs[k]);
		}
		for (int k = 0; k < threads; k++)
			pthread_join(t[k], NULL);
		uint64_t s1 = th_now_ns();
		size_t n = (size_t)(nreq / threads) * (size_t)threads;
		cpu_b[r] = (cpu_s() - c0) * 1e6 / (double)n;
		qsort(lat, n, sizeof *lat, cmp_u64);
		p50s[r] = (double)pct(lat, n, 0.50) / 1e3;
		p99s[r] = (double)pct(lat, n, 0.99) / 1e3;
		p999s[r] = (double)pct(lat, n, 0.999) / 1e3;
		rps[r] = (double)n * 1e9 / (double)(s1 - s0);
		/* Event-driven clients (no application thread in the path). */
		c0 = cpu_s();
		async_rtt(cl, nconns, depth, nreq, lat, &arps[r]);
		cpu_a[r] = (cpu_s() - c0) * 1e6 / (double)nreq;
		qsort(lat, (size_t)nreq, sizeof *lat, cmp_u64);
		a50[r] = (double)pct(lat, (size_t)nreq, 0.50) / 1e3;
		a99[r] = (double)pct(lat, (size_t)nreq, 0.99) / 1e3;
		a999[r] = (double)pct(lat, (size_t)nreq, 0.999) / 1e3;
		/* References in the same run. */
		raw_rtt(nreq / 4, lat);
		qsort(lat, (size_t)nreq / 4, sizeof *lat, cmp_u64);
		raw50[r] = (double)pct(lat, (size_t)nreq / 4, 0.50) / 1e3;
		raw99[r] = (double)pct(lat, (size_t)nreq / 4, 0.99) / 1e3;
		for (int i = 0; i < nreq / 4; i++) {
			uint64_t d0 = th_now_ns();
			if (thr_send(rt, actor, "tick", 4, THR_SEND_WAIT, &err))
				die("thr_send", &err);
			lat[i] = th_now_ns() - d0;
		}
		qsort(lat, (size_t)nreq / 4, sizeof *lat, cmp_u64);
		dir50[r] = (double)pct(lat, (size_t)nreq / 4, 0.50) / 1e3;
	}
	int rr = runs < 16 ? runs : 16;
	double m50 = median(p50s, rr), m99 = median(p99s, rr), m999 = median(p999s, rr);
	double mraw50 = median(raw50, rr), mraw99 = median(raw99, rr);
	printf("\n2. actor.send round trip through the server, %d connections held, %d threads "
	       "(one request in flight each), %d requests x %d runs (medians):\n",
	       nconns, threads, nreq, rr);
	printf("   p50 %.1f us   p99 %.1f us   p99.9 %.1f us   %.0f requests/s   "
	       "CPU %.1f us/request (process, client + server)\n", m50, m99, m999,
	       median(rps, rr), median(cpu_b, rr));
	printf("   event-driven clients (%d in flight, completions on the client loop): "
	       "p50 %.1f us   p99 %.1f us   p99.9 %.1f us   %.0f requests/s   CPU %.1f us/request\n",
	       depth, median(a50, rr), median(a99, rr), median(a999, rr), median(arps, rr),
	       median(cpu_a, rr));
	printf("   reference, raw TCP ping-pong over loopback: p50 %.1f us, p99 %.1f us "
	       "(server p50 = %.1fx, p99 = %.1fx)\n",
	       mraw50, mraw99, m50 / mraw50, m99 / mraw99);
	printf("   reference, thr_send in-process (no network): p50 %.2f us\n", median(dir50, rr));
	printf("   target p99 <= 1000 us: %s (blocking threads), %s (event-driven)\n",
	       m99 <= 1000 ? "met" : "NOT met", median(a99, rr) <= 1000 ? "met" : "NOT met");

	/* 3. streaming */
	double live[16], hist[16], direct[16], ldirect[16], cpu_l[16], cpu_h[16];
	uint64_t gaps = 0, gaps_total = 0;
	thcl_opts so = { .address = addr };
	thcl *sc;
	if (thcl_connect(&so, &sc, &err))
		die("connect", &err);
	for (int r = 0; r < rr; r++) {
		char name[32];
		snprintf(name, sizeof name, "bench-%d", r);
		double c0 = cpu_s();
		live[r] = stream(sc, name, 0, nevents, true, &gaps);
		cpu_l[r] = (cpu_s() - c0) * 1e9 / (double)nevents;
		gaps_total += gaps;
		c0 = cpu_s();
		hist[r] = stream(sc, name, 0, nevents, false, &gaps);
		cpu_h[r] = (cpu_s() - c0) * 1e9 / (double)nevents;
		gaps_total += gaps;
		thx_chain *ch;
		thx_chain_open(thr_runtime_chains(rt), name, NULL, false, &ch, NULL);
		uint64_t n = 0, d0 = th_now_ns();
		thx_query q = { 0 };
		thx_query_run(ch, &q, count_cb, &n, NULL);
		direct[r] = (double)n * 1e9 / (double)(th_now_ns() - d0);
		snprintf(name, sizeof name, "bench-direct-%d", r);
		ldirect[r] = live_direct(name, nevents);
	}
	printf("\n3. events streamed to one subscriber (16-byte data, window 4096, buffer 16384), "
	       "%llu events x %d runs (medians):\n",
	       (unsigned long long)nevents, rr);
	printf("   live (producer appending in batches of 512 meanwhile): %.0f events/s, "
	       "CPU %.0f ns/event (gap notices: %llu)\n",
	       median(live, rr), median(cpu_l, rr), (unsigned long long)gaps_total);
	printf("   from history (catch-up from the chain): %.0f events/s, CPU %.0f ns/event\n",
	       median(hist, rr), median(cpu_h, rr));
	printf("   reference, reading the chain in-process (thx_query_run): %.0f events/s\n",
	       median(direct, rr));
	printf("   reference, live in-process (same producer, a chain subscriber counting): "
	       "%.0f events/s\n", median(ldirect, rr));
	printf("   target >= 500000 events/s: %s\n",
	       median(live, rr) >= 500000 && median(hist, rr) >= 500000 ? "met" : "NOT met");
	thcl_close(sc);

	for (int i = 0; i < nconns; i++)
		thcl_close(cl[i]);
	for (int i = 0; i < 2; i++)
		thcl_loop_free(loops[i]);
	free(cl);
	free(lat);
	stop();
	return 0;
}
