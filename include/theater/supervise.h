/*
 * supervise.h - supervision queries of the embedding API (prefix thr_):
 * restart counts and circuit states of actors, and the supervision tree as
 * text (what `theater tree` prints). The policies themselves are declared
 * in each manifest's [supervision] section (docs/supervision.md) and
 * applied by the runtime.
 */
#ifndef THEATER_SUPERVISE_H
#define THEATER_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>

#include "theater/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum thr_circuit {
	THR_CIRCUIT_NONE = 0,  /* no breaker (circuit_failures = 0 or no policy) */
	THR_CIRCUIT_CLOSED,
	THR_CIRCUIT_OPEN,      /* messages fail fast                         */
	THR_CIRCUIT_HALF_OPEN  /* one probe message may pass                  */
} thr_circuit;

typedef struct thr_sup_info {
	bool supervised;        /* a [supervision] policy applies           */
	char strategy[16];      /* for its children: one_for_one ...        */
	char restart[12];       /* permanent, transient, temporary          */
	uint32_t restarts;      /* restarts carried out so far              */
	uint32_t consecutive_failures;
	thr_circuit circuit;
} thr_sup_info;

/* Supervision state of actor id. TH_ENOTFOUND for an unknown id. */
TH_API int thr_sup_info_get(thr_runtime *rt, const char *id,
			    thr_sup_info *out, th_err *err);
/* "closed", "open", "half-open", "-". */
TH_API const char *thr_circuit_name(thr_circuit c);

/* The supervision tree (top-level actors under "root", children indented
 * under their parent, in spawn order): one line per actor with its name,
 * id, status, restart count and circuit state. *out is NUL-terminated;
 * free it with thr_free. */
TH_API int thr_tree_text(thr_runtime *rt, char **out, th_err *err);

#ifdef __cplusplus
}
#endif
#endif
