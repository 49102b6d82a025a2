/*
 * counter - a Theater actor that counts the messages it is sent.
 * State: the count in decimal ASCII. Each handle-send adds one and logs
 * "count = N"; handle-request answers with the current count.
 */
#include <stdlib.h>
#include <string.h>

#include "theater.h"

static unsigned long long parse(const theater_opt_bytes *s)
{
	unsigned long long n = 0;
	for (size_t i = 0; s->is_some && i < s->val.len; i++)
		n = n * 10 + (unsigned)(s->val.ptr[i] - '0');
	return n;
}

/* Decimal digits of n into buf (no stdio: it would import WASI). */
static int fmt(char *buf, unsigned long long n)
{
	char tmp[24];
	int k = 0, len = 0;
	do
		tmp[k++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	while (k)
		buf[len++] = tmp[--k];
	return len;
}

static void store(theater_opt_bytes *s, unsigned long long n)
{
	char buf[24];
	int len = fmt(buf, n);
	s->is_some = true;
	s->val.ptr = malloc((size_t)len);
	memcpy(s->val.ptr, buf, (size_t)len);
	s->val.len = (size_t)len;
}

theater_status theater_actor_init(theater_opt_bytes *state, theater_string id)
{
	char msg[128] = "counter ";
	size_t n = 8, idl = id.len < 100 ? id.len : 100;
	memcpy(msg + n, id.ptr, idl);
	n += idl;
	memcpy(msg + n, " starting", 9);
	theater_log(msg, n + 9);
	if (!state->is_some)
		store(state, 0);
	return theater_ok();
}

theater_status theater_handle_send(theater_opt_bytes *state, theater_bytes m)
{
	(void)m;
	unsigned long long n = parse(state) + 1;
	store(state, n);
	char msg[64] = "count = ";
	int len = 8 + fmt(msg + 8, n);
	theater_log(msg, (size_t)len);
	return theater_ok();
}

theater_status theater_handle_request(theater_opt_bytes *state, theater_string rid,
				      theater_bytes m, theater_opt_bytes *response)
{
	(void)rid;
	(void)m;
	store(response, parse(state));
	return theater_ok();
}
