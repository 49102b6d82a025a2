/*
 * client.h - Theater's client library (prefix thcl_): connects to a
 * `theater server` over TCP, TLS or WebSocket, speaks the protocol of
 * protocol.h (handshake, multiplexed requests, subscriptions with credit)
 * and, when asked, reconnects with backoff and resumes its session so
 * that subscriptions continue without a gap or a duplicate.
 *
 * Requests and responses are CBOR maps (docs/protocol.md lists every op):
 * the caller encodes the request map, including its "op" key, and gets
 * the response map's bytes back.
 *
 * Threads: every function may be called from any thread, concurrently;
 * each client does its network I/O on a loop thread (its own, or a
 * thcl_loop shared by many clients). Blocking calls wait on the caller's
 * thread. Callbacks (thcl_call_async, thcl_data_fn) run on the loop
 * thread and must not block.
 *
 * Ownership: buffers returned by thcl_ functions are freed with
 * thcl_free. An event filled by thcl_sub_next is valid until the next
 * call on that subscription.
 */
#ifndef THEATER_CLIENT_H
#define THEATER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct thcl thcl;
typedef struct thcl_loop thcl_loop;
typedef struct thcl_sub thcl_sub;

typedef struct thcl_opts {
	/* tcp://HOST:PORT (default tcp://127.0.0.1:9000), tls://HOST:PORT,
	 * ws://HOST:PORT/PATH, wss://HOST:PORT/PATH, or HOST:PORT (tcp, or
	 * tls when tls_ca is set). IPv6 hosts in brackets. */
	const char *address;
	const char *tls_ca;        /* PEM CA the server must chain to;
				    * NULL = the system's CA store        */
	const char *tls_cert;      /* client certificate (mutual TLS)    */
	const char *tls_key;
	const char *tls_name;      /* name to verify; NULL = the host    */
	bool no_compress;          /* do not offer zstd                  */
	bool reconnect;            /* reconnect with backoff, resume      */
	uint32_t connect_timeout_ms;  /* 0 = 10,000                      */
	uint32_t backoff_min_ms;      /* 0 = 50                          */
	uint32_t backoff_max_ms;      /* 0 = 5,000                       */
	/* Protocol versions to offer (tests); NULL = this library's. */
	const uint32_t *versions;
	size_t nversions;
	thcl_loop *loop;           /* shared loop; NULL = one of its own */
} thcl_opts;

/* A loop thread that many clients can share (benchmarks, servers with
 * many upstream connections). Free it after every client using it. */
TH_API int thcl_loop_new(thcl_loop **out, th_err *err);
TH_API void thcl_loop_free(thcl_loop *l);

/* Connect and complete the handshake (blocking). On failure err says
 * what failed: the address, TCP, TLS (certificate problems included),
 * the WebSocket upgrade, or the server's refusal (e.g. no common
 * protocol version: TH_EUNSUPPORTED). *out is valid until thcl_close. */
TH_API int thcl_connect(const thcl_opts *o, thcl **out, th_err *err);
/* Cancel everything, say GOAWAY, close. Subscriptions still open are
 * freed with the client; close channels (thcl_channel_close) before.
 * NULL is fine. */
TH_API void thcl_close(thcl *c);

/* Negotiated facts about the current connection. */
typedef struct thcl_info {
	uint32_t version;
	bool zstd;
	bool resume;
	char session[33];
	char server[64];
	uint32_t max_frame;
	uint32_t max_streams;
	uint64_t reconnects;   /* successful reconnections so far */
	uint64_t resumed;      /* of which the session was resumed */
	bool connected;
} thcl_info;
TH_API void thcl_get_info(thcl *c, thcl_info *out);

/* ---- requests ----------------------------------------------------------- */

/* Send a request (req = a CBOR map with "op") and wait for its response
 * (timeout_ms 0 = 60 s). On success *resp (thcl_free) holds the response
 * map. A server error returns its TH_E* status with its message in err.
 * If the connection drops first: TH_EIO ("connection lost"), since the
 * request may or may not have run. */
TH_API int thcl_call(thcl *c, const void *req, size_t len, uint32_t timeout_ms,
		     uint8_t **resp, size_t *resp_len, th_err *err);

/* Called (on the loop thread) for each DATA chunk of a response. */
typedef int (*thcl_data_fn)(void *ud, const uint8_t *p, size_t n);
/* Progress of an upload: bytes sent so far of total. */
typedef void (*thcl_progress_fn)(void *ud, uint64_t done, uint64_t total);

/* Like thcl_call, with a request body sent as DATA frames (store.put of
 * large content): the body is read from fd until EOF (total_hint for
 * progress only). */
TH_API int thcl_call_upload(thcl *c, const void *req, size_t len, int fd,
			    uint64_t total_hint, thcl_progress_fn progress,
			    void *pud, uint8_t **resp, size_t *resp_len,
			    th_err *err);
/* Like thcl_call for responses followed by DATA frames (store.get of
 * large content): each chunk goes to on_data; *resp is the first map. */
TH_API int thcl_call_download(thcl *c, const void *req, size_t len,
			      thcl_data_fn on_data, void *ud, uint8_t **resp,
			      size_t *resp_len, th_err *err);

/* Asynchronous: done(ud, rc, resp, resp_len, err) runs on the loop
 * thread exactly once; resp is valid during the call only. */
typedef void (*thcl_done_fn)(void *ud, int rc, const uint8_t *resp,
			     size_t resp_len, const th_err *err);
TH_API int thcl_call_async(thcl *c, const void *req, size_t len,
			   thcl_done_fn done, void *ud, th_err *err);

TH_API void thcl_free(void *p);

/* ---- subscriptions --------------------------------------------------------- */

typedef struct thcl_event {
	bool gap;               /* a gap notice: events from..to missed  */
	uint64_t gap_from, gap_to;
	uint64_t seq;
	uint64_t ts;            /* nanoseconds since the epoch            */
	const char *type;
	const char *actor;      /* "" if none                             */
	const char *desc;       /* NULL if none                           */
	const uint8_t *data;    /* NULL if pruned or omitted              */
	size_t len;
	uint8_t hash[32];
	bool pruned;
} thcl_event;

/* Subscribe to chain (an actor's id, or any chain name): from NULL =
 * live events from now, else every event from *from on. window: events
 * the server may send ahead of what the application has taken with
 * thcl_sub_next (the credit; 0 = 1024); buffer: events the server keeps
 * for a slow subscriber before sending a gap notice (0 = the server's
 * default). */
TH_API int thcl_subscribe(thcl *c, const char *chain, const uint64_t *from,
			  uint32_t window, uint32_t buffer, thcl_sub **out,
			  th_err *err);
/* Next event or gap notice, waiting up to timeout_ms (-1 = forever):
 * 0, TH_ETIMEOUT, or an error ending the subscription (the server's, or
 * TH_EIO when the connection is gone and reconnect is off). */
TH_API int thcl_sub_next(thcl_sub *s, thcl_event *ev, int timeout_ms,
			 th_err *err);
/* The next sequence number this subscription expects. */
TH_API uint64_t thcl_sub_next_seq(thcl_sub *s);
/* Unsubscribe and free. NULL is fine. */
TH_API void thcl_sub_close(thcl_sub *s);

/* ---- channels ------------------------------------------------------------- */

typedef struct thcl_chan thcl_chan;

/* Open a channel to actor id with a first message (len 0: none); *reply
 * (may be NULL; free with thcl_free) gets the actor's answer to it.
 * Channels do not survive a reconnection. */
TH_API int thcl_channel_open(thcl *c, const char *id, const void *msg, size_t len,
			     thcl_chan **out, uint8_t **reply, size_t *reply_len,
			     th_err *err);
/* One message to the actor (in order). */
TH_API int thcl_channel_send(thcl_chan *ch, const void *msg, size_t len,
			     th_err *err);
/* The next message from the actor, waiting up to timeout_ms (-1 =
 * forever): 0 with *msg (thcl_free), TH_ETIMEOUT, or TH_ESTATE once the
 * actor closed the channel (err holds its reason), or another error. */
TH_API int thcl_channel_recv(thcl_chan *ch, uint8_t **msg, size_t *len,
			     int timeout_ms, th_err *err);
/* Close our side without freeing: the actor's remaining messages still
 * arrive, then thcl_channel_recv returns TH_ESTATE. */
TH_API int thcl_channel_end(thcl_chan *ch, th_err *err);
/* Close our side and free the channel (later messages are dropped).
 * NULL is fine. */
TH_API void thcl_channel_close(thcl_chan *ch);

/* ---- testing --------------------------------------------------------------- */

/* Drop the connection abruptly (as a network failure would); with
 * reconnect on, the client reconnects and resumes. */
TH_API void thcl_test_drop(thcl *c);
/* Send raw bytes on the connection (malformed-frame tests). */
TH_API int thcl_test_send_raw(thcl *c, const void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
