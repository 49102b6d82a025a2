/*
 * fuzz_toml.c - libFuzzer target for the TOML parser and the manifest
 * reader: arbitrary bytes must give a tree or an error with a position,
 * never a crash, leak or hang. Every accepted document is also walked,
 * written as JSON, and read as a manifest (whose errors must name the
 * file), and the manifest's effective permissions must lie within "all".
 *
 *   make fuzz                      (bounded run of every target)
 *   build/fuzz/fuzz_toml -max_total_time=60 CORPUS_DIR
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "theater/manifest.h"
#include "theater/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const tt_value *v)
{
	size_t n = 1;
	if (tt_type_of(v) == TT_TABLE || tt_type_of(v) == TT_ARRAY)
		for (size_t i = 0; i < tt_len(v); i++)
			n += walk(tt_at(v, i));
	if (tt_type_of(v) == TT_TABLE)
		for (size_t i = 0; i < tt_len(v); i++) {
			size_t kl;
			const char *k = tt_key_at(v, i, &kl);
			if (tt_getn(v, k, kl) != tt_at(v, i))
				abort(); /* every key must be found again */
		}
	if (tt_line(v) == 0 || tt_col(v) == 0)
		abort();
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tt_value *root = NULL;
	tt_where where;
	th_err err = { 0 };
	tt_options opt = { .max_bytes = 1 << 20, .max_depth = 32 };
	int rc = tt_parse((const char *)data, size, &opt, &root, &where, &err);
	if (rc) {
		if (root || err.code != rc || !err.msg[0])
			abort();
		if (rc == TH_EINVAL && (where.line == 0 || where.col == 0))
			abort(); /* syntax errors always carry a position */
		return 0;
	}
	walk(root);
	char *json = tt_to_json(root, NULL);
	if (!json)
		abort();
	tt_json_free(json);
	tt_free(root);

	thm_manifest *m = NULL;
	rc = thm_parse((const char *)data, size, "fuzz.toml", &m, &err);
	if (rc) {
		if (m || strncmp(err.msg, "fuzz.toml", 9) != 0)
			abort();
		return 0;
	}
	thm_perms all, eff;
	thm_perms_all(&all);
	if (thm_effective(NULL, m, &eff, &err) == 0) {
		if (!thm_perms_within(&eff, &all) || !thm_perms_within(&eff, &m->requested))
			abort();
		thm_perms_release(&eff);
	}
	thm_free(m);
	return 0;
}
