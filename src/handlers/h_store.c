/*
 * h_store.c - theater:simple/store on the runtime's content-addressed
 * Store (theater/store.h). A content-ref is the record {hash} with the
 * hash as 64 hex digits. Every function runs on the blocking-work pool.
 */
#include "base/base.h"
#include "handlers/handlers.h"

#define GET_MAX (8u << 20) /* recorded in the chain: stay below 16 MiB */

static bool arg_str(rth_call *c, uint32_t i, char *buf, size_t cap)
{
	return i < c->nargs && rth_cstr(&c->args[i], buf, cap);
}

/* A content-ref argument ({hash: string}). */
static bool arg_ref(rth_call *c, uint32_t i, ths_hash *h)
{
	const thc_val *r = &c->args[i];
	char hex[THS_HEX_LEN + 1];
	if (r->kind != THC_RECORD || r->of.agg.n != 1 ||
	    !rth_cstr(&r->of.agg.items[0], hex, sizeof hex))
		return false;
	return ths_hash_parse(hex, h, NULL) == 0;
}

static int ref_val(const ths_hash *h, thc_val *out)
{
	char hex[THS_HEX_LEN + 1];
	ths_hash_hex(h, hex);
	if (thc_val_agg(THC_RECORD, 1, out))
		return TH_ENOMEM;
	if (thc_val_string(hex, THS_HEX_LEN, &out->of.agg.items[0])) {
		thc_val_release(out);
		return TH_ENOMEM;
	}
	return 0;
}

static rth_ret ok_ref(rth_call *c, const ths_hash *h)
{
	thc_val v = { 0 };
	if (ref_val(h, &v))
		return rth_oom(c);
	return rth_ok_val(c, &v);
}

#define STORE(c) ((c)->a->rt->store)
#define FAIL(c, e) rth_err(c, "%s", (e).msg)

static rth_ret fn_new(rth_call *c)
{
	char id[THS_NAME_MAX + 1];
	th_err e = { 0 };
	if (ths_store_new(STORE(c), id, &e))
		return FAIL(c, e);
	return rth_ok_str(c, id, strlen(id));
}

static rth_ret put(rth_call *c, uint32_t i, ths_hash *h, th_err *e)
{
	uint8_t *tmp;
	size_t n;
	const uint8_t *p = rth_bytes(&c->args[i], &n, &tmp);
	int rc;
	if (!p)
		return rth_oom(c);
	rc = ths_put(STORE(c), p, n, h, e);
	th_free(tmp);
	return rc ? FAIL(c, *e) : RTH_OK;
}

static rth_ret fn_store(rth_call *c)
{
	char sid[THS_NAME_MAX + 1];
	ths_hash h;
	th_err e = { 0 };
	rth_ret r;
	if (!arg_str(c, 0, sid, sizeof sid))
		return rth_err(c, "bad store id");
	if (ths_store_check(STORE(c), sid, &e))
		return FAIL(c, e);
	if ((r = put(c, 1, &h, &e)) != RTH_OK)
		return r;
	return ok_ref(c, &h);
}

static rth_ret fn_get(rth_call *c)
{
	char sid[THS_NAME_MAX + 1];
	ths_hash h;
	uint8_t *data;
	size_t n;
	th_err e = { 0 };
	rth_ret r;
	if (!arg_str(c, 0, sid, sizeof sid) || !arg_ref(c, 1, &h))
		return rth_err(c, "bad store id or content-ref");
	if (ths_store_check(STORE(c), sid, &e) ||
	    ths_get(STORE(c), &h, GET_MAX, &data, &n, &e))
		return FAIL(c, e);
	r = rth_ok_bytes(c, data, n);
	ths_buf_free(data);
	return r;
}

static rth_ret fn_exists(rth_call *c)
{
	char sid[THS_NAME_MAX + 1];
	ths_hash h;
	th_err e = { 0 };
	thc_val v;
	int rc;
	if (!arg_str(c, 0, sid, sizeof sid) || !arg_ref(c, 1, &h))
		return rth_err(c, "bad store id or content-ref");
	if (ths_store_check(STORE(c), sid, &e))
		return FAIL(c, e);
	rc = ths_exists(STORE(c), &h, &e);
	if (rc < 0)
		return FAIL(c, e);
	v = thc_val_bool(rc == 1);
	return rth_ok_val(c, &v);
}

static rth_ret fn_label(rth_call *c)
{
	char sid[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	ths_hash h;
	th_err e = { 0 };
	if (!arg_str(c, 0, sid, sizeof sid) || !arg_str(c, 1, label, sizeof label) ||
	    !arg_ref(c, 2, &h))
		return rth_err(c, "bad store id, label or content-ref");
	if (ths_label_set(STORE(c), sid, label, &h, &e))
		return FAIL(c, e);
	return rth_ok_unit(c);
}

static rth_ret fn_get_by_label(rth_call *c)
{
	char sid[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	ths_hash h;
	th_err e = { 0 };
	thc_val ref = { 0 }, opt = { 0 };
	int rc;
	if (!arg_str(c, 0, sid, sizeof sid) || !arg_str(c, 1, label, sizeof label))
		return rth_err(c, "bad store id or label");
	rc = ths_label_get(STORE(c), sid, label, &h, &e);
	if (rc == TH_ENOTFOUND && ths_store_check(STORE(c), sid, NULL) == 0) {
		if (thc_val_case(THC_OPTION, 0, NULL, &opt))
			return rth_oom(c);
		return rth_ok_val(c, &opt);
	}
	if (rc)
		return FAIL(c, e);
	if (ref_val(&h, &ref))
		return rth_oom(c);
	if (thc_val_case(THC_OPTION, 1, &ref, &opt)) {
		thc_val_release(&ref);
		return rth_oom(c);
	}
	return rth_ok_val(c, &opt);
}

static rth_ret fn_remove_label(rth_call *c)
{
	char sid[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	th_err e = { 0 };
	if (!arg_str(c, 0, sid, sizeof sid) || !arg_str(c, 1, label, sizeof label))
		return rth_err(c, "bad store id or label");
	if (ths_label_remove(STORE(c), sid, label, &e))
		return FAIL(c, e);
	return rth_ok_unit(c);
}

static rth_ret at_label(rth_call *c, bool replace)
{
	char sid[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	ths_hash h;
	th_err e = { 0 };
	uint8_t *tmp;
	size_t n;
	const uint8_t *p;
	int rc;
	if (!arg_str(c, 0, sid, sizeof sid) || !arg_str(c, 1, label, sizeof label))
		return rth_err(c, "bad store id or label");
	p = rth_bytes(&c->args[2], &n, &tmp);
	if (!p)
		return rth_oom(c);
	rc = replace ? ths_replace_content_at_label(STORE(c), sid, label, p, n, &h, &e)
		     : ths_store_at_label(STORE(c), sid, label, p, n, &h, &e);
	th_free(tmp);
	if (rc)
		return FAIL(c, e);
	return ok_ref(c, &h);
}

static rth_ret fn_store_at_label(rth_call *c)
{
	return at_label(c, false);
}

static rth_ret fn_replace_content(rth_call *c)
{
	return at_label(c, true);
}

static rth_ret fn_replace_at_label(rth_call *c)
{
	char sid[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	ths_hash h;
	th_err e = { 0 };
	if (!arg_str(c, 0, sid, sizeof sid) || !arg_str(c, 1, label, sizeof label) ||
	    !arg_ref(c, 2, &h))
		return rth_err(c, "bad store id, label or content-ref");
	if (ths_label_replace(STORE(c), sid, label, &h, &e))
		return FAIL(c, e);
	return rth_ok_unit(c);
}

static rth_ret fn_list_labels(rth_call *c)
{
	char sid[THS_NAME_MAX + 1];
	ths_label_entry *v;
	size_t n;
	th_err e = { 0 };
	thc_val list = { 0 };
	if (!arg_str(c, 0, sid, sizeof sid))
		return rth_err(c, "bad store id");
	if (ths_label_list(STORE(c), sid, &v, &n, &e))
		return FAIL(c, e);
	if (thc_val_agg(THC_LIST, (uint32_t)n, &list)) {
		ths_buf_free(v);
		return rth_oom(c);
	}
	for (size_t i = 0; i < n; i++)
		if (thc_val_string(v[i].name, strlen(v[i].name), &list.of.agg.items[i])) {
			ths_buf_free(v);
			thc_val_release(&list);
			return rth_oom(c);
		}
	ths_buf_free(v);
	return rth_ok_val(c, &list);
}

static rth_ret fn_list_content(rth_call *c)
{
	char sid[THS_NAME_MAX + 1];
	ths_content_entry *v;
	size_t n;
	th_err e = { 0 };
	thc_val list = { 0 };
	if (!arg_str(c, 0, sid, sizeof sid))
		return rth_err(c, "bad store id");
	if (ths_content_list(STORE(c), sid, &v, &n, &e))
		return FAIL(c, e);
	if (thc_val_agg(THC_LIST, (uint32_t)n, &list)) {
		ths_buf_free(v);
		return rth_oom(c);
	}
	for (size_t i = 0; i < n; i++)
		if (ref_val(&v[i].hash, &list.of.agg.items[i])) {
			ths_buf_free(v);
			thc_val_release(&list);
			return rth_oom(c);
		}
	ths_buf_free(v);
	return rth_ok_val(c, &list);
}

static rth_ret fn_total_size(rth_call *c)
{
	char sid[THS_NAME_MAX + 1];
	uint64_t bytes;
	th_err e = { 0 };
	thc_val v;
	if (!arg_str(c, 0, sid, sizeof sid))
		return rth_err(c, "bad store id");
	if (ths_total_size(STORE(c), sid, &bytes, &e))
		return FAIL(c, e);
	v = thc_val_uint(THC_U64, bytes);
	return rth_ok_val(c, &v);
}

#define ST "theater:simple/store"
#define S(name, fn) { ST, name, "host." ST "." name, THM_H_STORE, \
		      RTH_DENY_ERR, NULL, fn }
const rth_fn rth_store_fns[] = {
	S("new", fn_new),
	S("store", fn_store),
	S("get", fn_get),
	S("exists", fn_exists),
	S("label", fn_label),
	S("get-by-label", fn_get_by_label),
	S("remove-label", fn_remove_label),
	S("store-at-label", fn_store_at_label),
	S("replace-content-at-label", fn_replace_content),
	S("replace-at-label", fn_replace_at_label),
	S("list-labels", fn_list_labels),
	S("list-all-content", fn_list_content),
	S("calculate-total-size", fn_total_size),
	{ 0 }
};
