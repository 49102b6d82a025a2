/*
 * value.h - component values (thc_val) as deterministic CBOR (prefix rtv_).
 *
 * The runtime records every host call's arguments and result, and every
 * export call's parameters and result, in the Event Chain as CBOR, so that
 * a replay can feed the recorded values back. The encoding is
 * self-describing enough to read without the type, and exact given it:
 *
 *   bool                  true / false
 *   s8..s64, u8..u64      integer
 *   f32, f64              float (shortest exact form; NaN is f97e00)
 *   char                  integer (the code point)
 *   string                text
 *   list<u8> (BYTES)      bytes (a LIST of U8 encodes the same way)
 *   list, tuple, record   array of the items (record fields in order)
 *   option                none: null; some(x): [x]
 *   result, variant       [case, payload] (payload null when none)
 *   enum                  integer (the case)
 *   flags                 integer (bit i = flag i)
 *
 * rtv_decode turns such bytes back into a thc_val of a given type.
 */
#ifndef TH_RUNTIME_VALUE_H
#define TH_RUNTIME_VALUE_H

#include "base/cbor.h"
#include "theater/component.h"

/* Append v to e. Errors are sticky in e->err (TH_ENOMEM, or TH_EINVAL for
 * a value nested deeper than TH_CBOR_MAX_DEPTH or of an unknown kind). */
void rtv_encode(th_cbor_enc *e, const thc_val *v);

/* Read one value of type t from d into *out (owned by the caller).
 * TH_EINVAL with the byte offset when the bytes do not fit the type. */
int rtv_decode(th_cbor_dec *d, const thc_type *t, thc_val *out, th_err *err);

#endif
