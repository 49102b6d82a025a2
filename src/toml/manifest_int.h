/*
 * manifest_int.h (internal) - string-list helpers shared by manifest.c and
 * manifest_perms.c. Prefix thm__.
 */
#ifndef TH_MANIFEST_INT_H
#define TH_MANIFEST_INT_H

#include "base/base.h"
#include "theater/manifest.h"

/* Append a copy of s (marks the list set). */
int thm__strlist_push(thm_strlist *l, const char *s);
int thm__strlist_copy(const thm_strlist *in, thm_strlist *out);
void thm__strlist_release(thm_strlist *l);
/* Most permissive values in every section, enabled all false. */
void thm__perms_open(thm_perms *p);

#endif
