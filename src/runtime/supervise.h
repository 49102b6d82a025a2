/*
 * supervise.h (internal) - supervision: restart policies, restart
 * intensity and escalation, backoff, circuit breaker (supervise.c, prefix
 * rsv_), the wait-for graph of requests (deadlock.c, rdl_), health
 * probes (health.c, rhc_) and mailbox limits (mblimit.c, rml_). See
 * docs/supervision.md.
 *
 * Every actor gets an rsv_node at spawn (rta_actor.sv; NULL only when that
 * allocation failed, and then the actor is simply unsupervised). The
 * runtime calls in at a handful of points of the actor state machine
 * (actor.c, request.c); each hook is cheap when the actor has no
 * [supervision] policy.
 */
#ifndef TH_RUNTIME_SUPERVISE_H
#define TH_RUNTIME_SUPERVISE_H

#include "runtime/rt.h"

typedef enum rsv_circuit {
	RSV_CLOSED = 0,
	RSV_OPEN = 1,
	RSV_HALF_OPEN = 2
} rsv_circuit;

/* Restart times inside the intensity window. */
typedef struct rsv_ring {
	uint64_t *t;
	uint32_t n, cap;
} rsv_ring;

typedef struct rsv_node {
	rta_actor *a;
	pthread_mutex_t lock;
	/* Set at attach, read-only afterwards. */
	const thm_supervision *pol; /* restart type, backoff, circuit, state,
				     * mailbox, health: the child's section,
				     * else its parent's; NULL = none      */
	const thm_supervision *grp; /* strategy and intensity for this actor's
				     * children: its own section, else NULL */
	uint8_t *init_state;        /* for state = "reset"                 */
	size_t init_len;
	bool has_init;

	/* Under lock. */
	uint32_t restarts;          /* restarts of this actor               */
	uint32_t consec;            /* consecutive failures                 */
	uint64_t handled_mark;      /* a->handled when it last (re)started  */
	rsv_ring kids;              /* restarts of its children (supervisor)*/
	rsv_ring self;              /* its own restarts (top-level actors)  */
	bool group_stop;            /* stopped to be restarted with a group */
	bool recovering;            /* restarted, init not finished yet     */
	bool probe_sent;            /* half-open: the probe went through    */
	bool restarted;             /* has been restarted at least once     */
	char *fail_kind, *fail_reason; /* supervision asks it to fail       */
	uint64_t t_detect;          /* failure detected (th_now_ns)         */
	rta_actor **group;          /* waiting for the backoff timer        */
	size_t ngroup;
	_Atomic int circuit;        /* rsv_circuit                          */
	_Atomic int watch;          /* rsv_handled has something to check   */
	_Atomic bool due;           /* restart alone on its next turn       */
	rtt_timer timer;            /* backoff, circuit reset               */

	/* Health probes (health.c): hc_armed on the actor's life path, the
	 * rest under lock. */
	rtt_timer hc_timer;
	bool hc_armed;              /* hc_timer was armed in this life      */
	uint64_t hc_handled, hc_stuck_since; /* ping probes              */
	uint64_t hc_seq, hc_sent;   /* export probes: last sent, when       */
	bool hc_out;                /* ... and it is not answered yet       */
	uint32_t hc_missed;         /* consecutive misses                   */

	/* Mailbox limits (mblimit.c; timer thread, and its life path). */
	rtt_timer ml_timer;
	bool ml_armed;
	uint64_t ml_handled, ml_full_since;

	/* Wait-for graph (deadlock.c; under its global lock). */
	rta_actor *waits_on;
	uint64_t wait_req;

	/* A reason rewritten by rsv_adjust_end (actor's turn only). */
	char why[TH_ERR_MSG_MAX + 192];
} rsv_node;

/* ---- hooks called by the runtime (supervise.c) ------------------------- */

/* At the end of rta_spawn: give a its node. */
void rsv_attach(rta_actor *a);
/* When the runtime frees the actor. */
void rsv_detach(rta_actor *a);
/* First thing finalize does: a stop that supervision asked for (escalation,
 * health) becomes a failure, and limit traps get a clearer reason. */
void rsv_adjust_end(rta_actor *a, int *life, const char **kind,
		    const char **reason);
/* In finalize: what becomes of the mailbox. RSV_MB_KEEP: a restart follows
 * and the policy says mailbox = "preserve": the caller requeues the
 * in-flight messages. RSV_MB_EMPTY: a restart follows and the policy says
 * "discard": the caller drains it (drops recorded) but leaves it open, so
 * that a sender waiting for room reaches the restarted actor.
 * RSV_MB_CLOSE: no restart is planned: closed and drained. */
enum { RSV_MB_CLOSE = 0, RSV_MB_KEEP = 1, RSV_MB_EMPTY = 2 };
int rsv_keep_mailbox(rta_actor *a, int was, int life, bool external);
/* Last thing finalize does: apply the policy (on the actor's turn). */
void rsv_on_end(rta_actor *a, int was, int life, bool external,
		const char *kind, const char *reason);
/* rta_deliver of a non-system message: 0, or a fast failure (circuit
 * open) with err set. */
int rsv_admit(rta_actor *to, th_err *err);
/* finish_call, after the message is acknowledged. */
void rsv_handled(rta_actor *a);
/* The supervisor acts on child itself (stop-child, restart-child, on the
 * supervisor's turn): a restart the policy has planned and not started
 * yet (backoff or circuit timer) is cancelled, and an open circuit closes.
 * True when such a plan was cancelled; with "stop-child" the child's kept
 * messages are then dropped (recorded). */
bool rsv_supervisor_decides(rta_actor *child, const char *action);
/* a's turn while its life is final: carry out a restart planned for a
 * alone (one_for_one, a circuit's probe). Cheap when none is. */
void rsv_turn(rta_actor *a);
/* Make a fail (any thread, not a's own turn): recorded as kind/reason. */
void rsv_fail_async(rta_actor *a, const char *kind, const char *reason);

/* ---- deadlock.c ------------------------------------------------------------ */

/* `from` is about to wait for request n to `to`: 0, or TH_ECONFLICT with
 * a `deadlock` error when that wait would close a cycle of waiting actors
 * (recorded in from's chain and the runtime chain). */
int rdl_enter(rta_actor *from, rta_actor *to, uint64_t n, th_err *err);
/* The wait for request n is over (answered, timed out, gone). */
void rdl_leave(rta_actor *from, uint64_t n);

/* ---- health.c ------------------------------------------------------------- */

/* Arm a's probes if its policy has [supervision.health]. */
void rhc_start(rta_actor *a);
/* Disarm them (not from the probe's own callback). */
void rhc_stop(rta_actor *a);
/* ---- mblimit.c ------------------------------------------------------------ */

/* Arm / disarm a's limits.mailbox_full_ms watch (when it has one). */
void rml_start(rta_actor *a);
void rml_stop(rta_actor *a);
/* A system-lane message was queued for a (rta_deliver): fail a if that
 * is more than limits.mailbox_system_max. */
void rml_system_pushed(rta_actor *a);

/* The actor's turn ended export probe seq: ok (answered) or not (why:
 * error, trap, missing export). */
void rhc_probe_done(rta_actor *a, uint64_t seq, bool ok, const char *why);

#endif
