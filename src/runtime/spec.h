/*
 * spec.h (internal) - a parsed manifest (theater/manifest.h) with what the
 * runtime resolves once for it: where the component comes from and the
 * bytes of the initial state (prefix rtf_). Immutable once made; shared by
 * every actor spawned from the same manifest (cache.c owns it).
 */
#ifndef TH_RUNTIME_SPEC_H
#define TH_RUNTIME_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "theater/chain.h"
#include "theater/manifest.h"
#include "theater/store.h"

typedef struct rtf_spec {
	thm_manifest *m;
	char *component_path;  /* a file (resolved), or NULL               */
	char *component_label; /* "store:<label>" in the default store     */
	bool has_hash;         /* "sha256:<hex>"                            */
	uint8_t hash[32];
	uint8_t *init_state;
	size_t init_len;
	bool has_init;
	char *text;            /* the manifest's text (thr_get_manifest);
				* NULL when the file could not be read
				* again after parsing                   */
} rtf_spec;

/* Take ownership of m; resolve relative paths against base_dir (NULL: as
 * they are). init_state from the Store is read through store. */
int rtf_from_manifest(thm_manifest *m, const char *base_dir, ths_store *store,
		      rtf_spec **out, th_err *err);
void rtf_free(rtf_spec *s);

/* The options of an actor's chain from its manifest's save_chain and
 * [chain]: rt_durability is the runtime's (THX_NONE: nothing reaches the
 * disk, whatever the manifest asks), used when [chain] names none. */
void rtf_chain_opts(const thm_manifest *m, thx_durability rt_durability,
		    thx_chain_opts *out);

/* Read a whole file (at most max bytes) into a NUL-terminated buffer. */
int rtf_read_file(const char *path, size_t max, uint8_t **out, size_t *len,
		  th_err *err);

#endif
