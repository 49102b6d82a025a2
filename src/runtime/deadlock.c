/*
 * deadlock.c - the wait-for graph of pending requests (prefix rdl_).
 *
 * An actor waiting for a reply is suspended in its one export call, so it
 * waits for at most one other actor at a time: the graph is a set of
 * edges from -> to, kept in each actor's supervision node (waits_on), and
 * every path in it is a chain. Before `from` starts to wait for `to`, the
 * chain from `to` is followed; reaching `from` means the new edge would
 * close a cycle (A waits for B, B for C, ... and the last for A): no actor
 * of the cycle could ever run again, so the new request fails at once
 * with a `deadlock` error naming the cycle instead of hanging until its
 * timeout. The requester decides what to do with the error; its own
 * pending caller (the previous actor of the cycle) is unblocked when it
 * answers.
 *
 * One process-wide lock serialises checks and edge changes, so two actors
 * closing a cycle at the same moment cannot both miss it. It is held only
 * for the walk (bounded by the number of waiting actors) and never while
 * recording. Only actor-to-actor requests take it.
 */
#include "base/base.h"
#include "runtime/supervise.h"

static pthread_mutex_t rdl_lock = PTHREAD_MUTEX_INITIALIZER;

/* Longest cycle described in full in the error and the event. */
#define RDL_SHOW 16

int rdl_enter(rta_actor *from, rta_actor *to, uint64_t n, th_err *err)
{
	rta_actor *path[RDL_SHOW];
	size_t len = 0, hops = 0;
	bool cycle = false;
	char text[RDL_SHOW * (THR_ID_LEN + 4) + 64];
	size_t used = 0;
	th_cbor_enc e;

	if (!from->sv || !to->sv)
		return 0;
	pthread_mutex_lock(&rdl_lock);
	for (rta_actor *x = to; x; x = x->sv ? x->sv->waits_on : NULL) {
		if (len < RDL_SHOW)
			path[len++] = x;
		hops++;
		if (x == from) {
			cycle = true;
			break;
		}
		if (hops > (1u << 24))
			break; /* defensive: the graph has no other cycles */
	}
	if (!cycle) {
		from->sv->waits_on = to;
		from->sv->wait_req = n;
	}
	pthread_mutex_unlock(&rdl_lock);
	if (!cycle)
		return 0;

	/* from -> to -> ... -> from */
	used = (size_t)snprintf(text, sizeof text, "%s", from->id);
	for (size_t i = 0; i < len && used < sizeof text; i++)
		used += (size_t)snprintf(text + used, sizeof text - used, " -> %s",
					 path[i]->id);
	if (hops > len && used < sizeof text)
		snprintf(text + used, sizeof text - used, " (%zu actors)", hops);
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, 3);
	th_cbor_put_uint(&e, n);
	th_cbor_put_array(&e, len + 1);
	th_cbor_put_cstr(&e, from->id);
	for (size_t i = 0; i < len; i++)
		th_cbor_put_cstr(&e, path[i]->id);
	th_cbor_put_uint(&e, hops);
	rta_record(from, "deadlock.detected", &e, text);
	rtr_runtime_event(from->rt, "deadlock.detected", from->id, text);
	return th_err_set(err, TH_ECONFLICT,
			  "deadlock: request r%llu from %s to %s would close a cycle "
			  "of waiting actors: %s",
			  (unsigned long long)n, from->id, to->id, text);
}

void rdl_leave(rta_actor *from, uint64_t n)
{
	if (!from->sv)
		return;
	pthread_mutex_lock(&rdl_lock);
	if (from->sv->wait_req == n) {
		from->sv->waits_on = NULL;
		from->sv->wait_req = 0;
	}
	pthread_mutex_unlock(&rdl_lock);
}
