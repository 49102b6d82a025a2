/*
 * protocol.h - Theater's wire protocol: frames, handshake and the codec
 * (prefix thp_). docs/protocol.md is the full specification; the design
 * essay is at the top of src/net/protocol.c.
 *
 * A connection carries frames. Every frame starts with the same 10-byte
 * header, in every protocol version (so a peer speaking another version
 * still gets a readable error):
 *
 *   offset 0  u8      type    (THP_HELLO ... THP_GOAWAY)
 *   offset 1  u8      flags   (THP_F_END, THP_F_ZSTD; other bits zero)
 *   offset 2  u32 BE  stream  (0 = the connection itself)
 *   offset 6  u32 BE  length  (payload bytes that follow)
 *
 * Payloads are deterministic CBOR maps except DATA (raw bytes) and the
 * 8 opaque bytes of PING/PONG. With THP_F_ZSTD the payload is one zstd
 * frame (content size included) whose content is the real payload.
 *
 * Nothing here does I/O or keeps global state; every function may be
 * called from any thread. Buffers handed out are freed with thp_free.
 */
#ifndef THEATER_PROTOCOL_H
#define THEATER_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define THP_VERSION 1          /* the newest version this code speaks */
#define THP_HEADER_LEN 10
#define THP_WS_SUBPROTOCOL "theater.v1"
/* Largest payload any implementation must accept before negotiation
 * (HELLO, WELCOME, the ERROR refusing a handshake). */
#define THP_HANDSHAKE_MAX (64u * 1024)
/* Defaults a server announces in WELCOME (configurable). */
/* Room for the largest event (THX_DATA_MAX = 16 MiB) and its fields. */
#define THP_DEFAULT_MAX_FRAME ((16u << 20) + (64u << 10))
#define THP_DEFAULT_MAX_STREAMS 256u
/* Payloads of at least this many bytes are tried with zstd. */
#define THP_DEFAULT_COMPRESS_MIN 512u
#define THP_SESSION_LEN 32     /* session ids: 32 lowercase hex digits */
#define THP_MAX_VERSIONS 16
#define THP_MAX_RESUME 1024

enum thp_type {
	THP_HELLO = 1,    /* c->s, stream 0: versions, features, resume    */
	THP_WELCOME = 2,  /* s->c, stream 0: chosen version, limits       */
	THP_REQUEST = 3,  /* c->s, opens a stream: {"op": ..., args}       */
	THP_RESPONSE = 4, /* s->c: a result (END unless the stream stays) */
	THP_DATA = 5,     /* both: raw bytes of a transfer or a channel   */
	THP_EVENT = 6,    /* s->c: one event of a subscription            */
	THP_CREDIT = 7,   /* c->s: {"n": k} more events may be sent        */
	THP_GAP = 8,      /* s->c: {"from": a, "to": b} events a..b missed  */
	THP_CANCEL = 9,   /* c->s: close the stream (request/subscription) */
	THP_ERROR = 10,   /* stream-level failure; on stream 0, fatal      */
	THP_PING = 11,    /* either way, stream 0, 8 opaque bytes          */
	THP_PONG = 12,    /* answer to PING with the same bytes            */
	THP_GOAWAY = 13   /* s->c or c->s, stream 0: closing, with reason  */
};
#define THP_TYPE_MAX THP_GOAWAY

enum thp_flags {
	THP_F_END = 0x01,  /* last frame of this stream from this side      */
	THP_F_ZSTD = 0x02  /* payload is zstd-compressed                   */
};
#define THP_F_ALL (THP_F_END | THP_F_ZSTD)

/* Features negotiated in the handshake (bit set). */
enum thp_feature {
	THP_FEAT_ZSTD = 1u << 0,   /* "zstd": compressed frames allowed   */
	THP_FEAT_RESUME = 1u << 1  /* "resume": sessions survive a drop   */
};

/* Error codes carried in ERROR and GOAWAY payloads ("code" text). */
#define THP_ERR_PROTOCOL "protocol"           /* framing rules broken  */
#define THP_ERR_FRAME_TOO_LARGE "frame_too_large"
#define THP_ERR_VERSION "unsupported_version"
#define THP_ERR_BAD_REQUEST "bad_request"     /* payload not as specified */
#define THP_ERR_UNKNOWN_OP "unknown_op"
#define THP_ERR_TOO_MANY_STREAMS "too_many_streams"
#define THP_ERR_TIMEOUT "timeout"
#define THP_ERR_IDLE "idle"
#define THP_ERR_SHUTDOWN "shutdown"

/* A decoded frame. payload points into the caller's buffer. */
typedef struct thp_frame {
	uint8_t type;
	uint8_t flags;
	uint32_t stream;
	uint32_t len;
	const uint8_t *payload;
} thp_frame;

/* Write a header into out. */
TH_API void thp_header_put(uint8_t out[THP_HEADER_LEN], uint8_t type,
			   uint8_t flags, uint32_t stream, uint32_t len);

/* Parse one frame from buf[0..n). Returns 1 when more bytes are needed
 * (nothing consumed), 0 with *f filled and *used = header + payload, or
 * a negative code: TH_EINVAL for a malformed header (unknown type,
 * reserved flag bits, a type on the wrong kind of stream), TH_ELIMIT for
 * a length above max_len. err names the field and its value. */
TH_API int thp_parse(const uint8_t *buf, size_t n, uint32_t max_len,
		     thp_frame *f, size_t *used, th_err *err);

/* Name of a frame type ("HELLO" ...), "?" for others. */
TH_API const char *thp_type_name(unsigned type);

/* ---- encoding frames ------------------------------------------------- */

/* A growable byte buffer (frames are appended to it). */
typedef struct thp_buf {
	uint8_t *p;
	size_t len, cap;
} thp_buf;

TH_API void thp_buf_release(thp_buf *b);
TH_API int thp_buf_reserve(thp_buf *b, size_t extra);
TH_API int thp_buf_append(thp_buf *b, const void *p, size_t n);

/* Append one frame. With compress_min > 0 and a payload of at least that
 * many bytes (never HELLO/WELCOME), the payload is compressed with zstd
 * and sent with THP_F_ZSTD only when that makes it smaller. Returns 0 or
 * TH_ENOMEM. *compressed (may be NULL) tells what happened. */
TH_API int thp_frame_append(thp_buf *b, uint8_t type, uint8_t flags,
			    uint32_t stream, const void *payload, size_t len,
			    size_t compress_min, bool *compressed);

/* The payload of a received frame, decompressed if THP_F_ZSTD is set:
 * *out points either into f->payload or to *owned (free with thp_free).
 * A compressed payload must state its size, which must not exceed
 * max_len (TH_ELIMIT), and must decompress to exactly that (TH_EINVAL). */
TH_API int thp_payload(const thp_frame *f, uint32_t max_len,
		       const uint8_t **out, size_t *out_len, uint8_t **owned,
		       th_err *err);

TH_API void thp_free(void *p);

/* ---- handshake --------------------------------------------------------- */

typedef struct thp_resume {
	uint32_t stream;   /* a subscription stream of the old session */
	uint64_t next;     /* the next sequence number the client wants */
} thp_resume;

typedef struct thp_hello {
	uint32_t versions[THP_MAX_VERSIONS];
	size_t nversions;
	unsigned features;            /* THP_FEAT_* offered */
	char client[64];              /* free text, e.g. "theater-c/0.1" */
	char session[THP_SESSION_LEN + 1]; /* "" = new session */
	thp_resume *resume;           /* owned; thp_hello_release */
	size_t nresume;
	uint32_t last_stream;         /* highest stream id used (resume) */
} thp_hello;

typedef struct thp_welcome {
	uint32_t version;
	unsigned features;            /* THP_FEAT_* accepted */
	char server[64];
	char session[THP_SESSION_LEN + 1];
	bool resumed;                 /* the old session was found */
	uint32_t max_frame;           /* largest payload either side may send */
	uint32_t max_streams;         /* concurrently open streams */
	uint32_t idle_timeout_ms;     /* 0 = none */
} thp_welcome;

/* HELLO/WELCOME payloads <-> structs. Unknown keys are ignored (so later
 * versions may add some); missing required keys are TH_EINVAL. */
TH_API int thp_hello_encode(const thp_hello *h, uint8_t **out, size_t *len);
TH_API int thp_hello_decode(const uint8_t *p, size_t n, thp_hello *h,
			    th_err *err);
TH_API void thp_hello_release(thp_hello *h);
TH_API int thp_welcome_encode(const thp_welcome *w, uint8_t **out,
			      size_t *len);
TH_API int thp_welcome_decode(const uint8_t *p, size_t n, thp_welcome *w,
			      th_err *err);

/* The highest version offered that lies in [min, max]: 0 if none. */
TH_API uint32_t thp_negotiate(const thp_hello *h, uint32_t min, uint32_t max);

/* Feature names <-> bits ("zstd" <-> THP_FEAT_ZSTD). Unknown names: 0. */
TH_API unsigned thp_feature_bit(const char *name, size_t n);

/* ---- errors ------------------------------------------------------------ */

/* ERROR / GOAWAY payload: {"code": text, "message": text, "status": int}
 * where status is a TH_E* value (0 when not applicable). */
typedef struct thp_error {
	char code[32];
	char message[TH_ERR_MSG_MAX];
	int status;
} thp_error;

TH_API int thp_error_encode(const char *code, int status, const char *message,
			    uint8_t **out, size_t *len);
TH_API int thp_error_decode(const uint8_t *p, size_t n, thp_error *e,
			    th_err *err);
/* The protocol code for a TH_E* status ("not_found", "invalid" ...). */
TH_API const char *thp_status_code(int status);
/* And back: the TH_E* value for a code, TH_EIO for unknown ones. */
TH_API int thp_code_status(const char *code);

#ifdef __cplusplus
}
#endif
#endif
