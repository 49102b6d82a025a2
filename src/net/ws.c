/*
 * ws.c - the WebSocket opening handshake (RFC 6455 section 4), both sides.
 * Framing after the handshake is wslay's; this file only parses and writes
 * the HTTP/1.1 upgrade exchange:
 *
 *   GET /path HTTP/1.1                  HTTP/1.1 101 Switching Protocols
 *   Host: h                             Upgrade: websocket
 *   Upgrade: websocket                  Connection: Upgrade
 *   Connection: Upgrade                 Sec-WebSocket-Accept: base64(SHA-1(
 *   Sec-WebSocket-Key: base64(16 B)         key + 258EAFA5-...-C5AB0DC85B11))
 *   Sec-WebSocket-Version: 13           Sec-WebSocket-Protocol: theater.v1
 *   Sec-WebSocket-Protocol: theater.v1
 *
 * The subprotocol theater.v1 is required: a client that does not ask for
 * it gets 400 with a message saying so.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <strings.h>

#include "net/net.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void thn_ws_accept_key(const char *key, size_t n, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(c, key, n) != 1 ||
	    EVP_DigestUpdate(c, ws_guid, sizeof ws_guid - 1) != 1 ||
	    EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mdlen != 20) {
		/* Defensive: SHA-1 is always there; an accept key that can
		 * never match makes the handshake fail cleanly. */
		memset(out, '!', 28);
		out[28] = 0;
		EVP_MD_CTX_free(c);
		return;
	}
	EVP_MD_CTX_free(c);
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	out[28] = 0;
}

/* One header line: name and value (trimmed), pointing into the head. */
struct hdr {
	const char *name, *val;
	size_t nlen, vlen;
};

/* Split head into lines; line 0 is the start line. Returns the number of
 * headers found (up to max) or -1 on malformed input. */
static int parse_head(const char *head, size_t n, const char **start,
		      size_t *start_len, struct hdr *h, int max)
{
	size_t pos = 0;
	int nh = 0;
	bool first = true;
	while (pos < n) {
		const char *line = head + pos;
		const char *end = memchr(line, '\n', n - pos);
		if (!end)
			return -1;
		size_t len = (size_t)(end - line);
		pos += len + 1;
		if (len && line[len - 1] == '\r')
			len--;
		if (len == 0)
			break; /* the blank line */
		if (first) {
			*start = line;
			*start_len = len;
			first = false;
			continue;
		}
		const char *colon = memchr(line, ':', len);
		if (!colon || colon == line)
			return -1;
		if (nh == max)
			continue; /* extra headers are ignored */
		h[nh].name = line;
		h[nh].nlen = (size_t)(colon - line);
		const char *v = colon + 1, *ve = line + len;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		h[nh].val = v;
		h[nh].vlen = (size_t)(ve - v);
		nh++;
	}
	return first ? -1 : nh;
}

static const struct hdr *find(const struct hdr *h, int n, const char *name)
{
	size_t len = strlen(name);
	for (int i = 0; i < n; i++)
		if (h[i].nlen == len && !strncasecmp(h[i].name, name, len))
			return &h[i];
	return NULL;
}

/* Does a comma-separated header value contain token (case-insensitive)? */
static bool has_token(const struct hdr *h, const char *token)
{
	if (!h)
		return false;
	size_t tl = strlen(token);
	const char *p = h->val, *end = h->val + h->vlen;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
			p++;
		const char *s = p;
		while (p < end && *p != ',')
			p++;
		const char *e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == tl && !strncasecmp(s, token, tl))
			return true;
	}
	return false;
}

static int reply_error(int status, const char *reason, const char *extra,
		       char **response, size_t *len, th_err *err,
		       const char *fmt, ...) TH_PRINTF(7, 8);
static int reply_error(int status, const char *reason, const char *extra,
		       char **response, size_t *len, th_err *err,
		       const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	th_err_set(err, TH_EINVAL, "WebSocket handshake: %s", msg);
	size_t cap = strlen(msg) + 400;
	char *r = th_malloc(cap);
	if (r) {
		int w = snprintf(r, cap,
				 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s\n",
				 status, reason, strlen(msg) + 1, extra, msg);
		*len = w > 0 ? (size_t)w : 0;
	}
	*response = r;
	return TH_EINVAL;
}

int thn_ws_server_handshake(const char *head, size_t n, char **response,
			    size_t *resp_len, th_err *err)
{
	struct hdr h[48];
	const char *start = NULL;
	size_t sl = 0;
	*response = NULL;
	*resp_len = 0;
	int nh = parse_head(head, n, &start, &sl, h, 48);
	if (nh < 0)
		return reply_error(400, "Bad Request", "", response, resp_len, err,
				   "malformed HTTP request head");
	if (sl < 14 || strncmp(start, "GET ", 4) != 0 ||
	    strncmp(start + sl - 9, " HTTP/1.1", 9) != 0)
		return reply_error(400, "Bad Request", "", response, resp_len, err,
				   "expected 'GET <path> HTTP/1.1'");
	if (!has_token(find(h, nh, "Upgrade"), "websocket") ||
	    !has_token(find(h, nh, "Connection"), "upgrade"))
		return reply_error(400, "Bad Request", "", response, resp_len, err,
				   "not a WebSocket upgrade (Upgrade: websocket and "
				   "Connection: Upgrade required)");
	const struct hdr *ver = find(h, nh, "Sec-WebSocket-Version");
	if (!ver || ver->vlen != 2 || memcmp(ver->val, "13", 2) != 0)
		return reply_error(426, "Upgrade Required",
				   "Sec-WebSocket-Version: 13\r\n", response, resp_len,
				   err, "Sec-WebSocket-Version must be 13");
	const struct hdr *key = find(h, nh, "Sec-WebSocket-Key");
	unsigned char raw[32];
	if (!key || key->vlen != 24 ||
	    EVP_DecodeBlock(raw, (const unsigned char *)key->val, 24) != 18)
		return reply_error(400, "Bad Request", "", response, resp_len, err,
				   "Sec-WebSocket-Key must be 16 bytes in base64");
	if (!has_token(find(h, nh, "Sec-WebSocket-Protocol"), THP_WS_SUBPROTOCOL))
		return reply_error(400, "Bad Request", "", response, resp_len, err,
				   "subprotocol %s required (Sec-WebSocket-Protocol)",
				   THP_WS_SUBPROTOCOL);
	char accept[29];
	thn_ws_accept_key(key->val, key->vlen, accept);
	size_t cap = 256;
	char *r = th_malloc(cap);
	if (!r)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	int w = snprintf(r, cap,
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
			 "Sec-WebSocket-Protocol: %s\r\n\r\n",
			 accept, THP_WS_SUBPROTOCOL);
	*response = r;
	*resp_len = (size_t)w;
	return 0;
}

int thn_ws_client_request(const char *host, const char *path, char **req,
			  size_t *len, char key_out[25], th_err *err)
{
	unsigned char raw[16];
	if (RAND_bytes(raw, sizeof raw) != 1)
		return th_err_set(err, TH_EIO, "no random bytes for the WebSocket key");
	EVP_EncodeBlock((unsigned char *)key_out, raw, sizeof raw);
	key_out[24] = 0;
	size_t cap = strlen(host) + strlen(path) + 300;
	char *r = th_malloc(cap);
	if (!r)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	int w = snprintf(r, cap,
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
			 path, host, key_out, THP_WS_SUBPROTOCOL);
	*req = r;
	*len = (size_t)w;
	return 0;
}

int thn_ws_client_check(const char *head, size_t n, const char *key, th_err *err)
{
	struct hdr h[48];
	const char *start = NULL;
	size_t sl = 0;
	int nh = parse_head(head, n, &start, &sl, h, 48);
	if (nh < 0)
		return th_err_set(err, TH_EINVAL, "WebSocket: malformed HTTP answer");
	if (sl < 12 || strncmp(start, "HTTP/1.1 101", 12) != 0)
		return th_err_set(err, TH_EINVAL, "WebSocket: server answered '%.*s'",
				  (int)(sl > 100 ? 100 : sl), start);
	char want[29];
	thn_ws_accept_key(key, strlen(key), want);
	const struct hdr *acc = find(h, nh, "Sec-WebSocket-Accept");
	if (!acc || acc->vlen != 28 || memcmp(acc->val, want, 28) != 0)
		return th_err_set(err, TH_EINVAL, "WebSocket: wrong Sec-WebSocket-Accept");
	if (!has_token(find(h, nh, "Sec-WebSocket-Protocol"), THP_WS_SUBPROTOCOL))
		return th_err_set(err, TH_EINVAL,
				  "WebSocket: server did not accept subprotocol %s",
				  THP_WS_SUBPROTOCOL);
	return 0;
}
