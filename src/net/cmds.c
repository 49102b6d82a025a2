/*
 * cmds.c - the commands a client can send (the "op" of a REQUEST), each
 * run on a worker thread: argument decoding, the Store and Event Chain
 * commands implemented here on ths_/thx_, and the actor commands handed
 * to the runtime's ops vtable (theater/server.h). docs/protocol.md lists
 * every op with its arguments and result.
 *
 * Results are CBOR maps built with a small sorted-map builder, so every
 * response is deterministic CBOR whatever order the code writes keys in.
 */
#include <inttypes.h>

#include "net/net.h"
#include "theater/chain.h"
#include "theater/store.h"

/* ---- arguments ---- */

int thn_args_parse(const uint8_t *p, size_t n, thn_args *a, th_err *err)
{
	th_cbor_dec d;
	uint64_t pairs;
	a->n = 0;
	th_cbor_dec_init(&d, p, n);
	if (th_cbor_get_map(&d, &pairs, err))
		return th_err_prefix(err, "request payload must be a CBOR map");
	if (pairs > THN_ARGS_MAX)
		return th_err_set(err, TH_EINVAL, "request has %" PRIu64 " keys (at most %d)",
				  pairs, THN_ARGS_MAX);
	for (uint64_t i = 0; i < pairs; i++) {
		const char *k;
		size_t kn;
		if (th_cbor_get_text(&d, &k, &kn, err))
			return th_err_prefix(err, "request keys must be text");
		size_t start = d.pos;
		if (th_cbor_skip(&d, err))
			return th_err_prefix(err, "request key '%.*s'", (int)kn, k);
		a->kv[a->n].key = k;
		a->kv[a->n].klen = kn;
		a->kv[a->n].val = p + start;
		a->kv[a->n].vlen = d.pos - start;
		a->n++;
	}
	if (!th_cbor_at_end(&d))
		return th_err_set(err, TH_EINVAL, "%zu bytes after the request map",
				  d.len - d.pos);
	return 0;
}

static bool find_arg(const thn_args *a, const char *key, th_cbor_dec *d)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < a->n; i++)
		if (a->kv[i].klen == kl && !memcmp(a->kv[i].key, key, kl)) {
			th_cbor_dec_init(d, a->kv[i].val, a->kv[i].vlen);
			return true;
		}
	return false;
}

static int absent(const char *key, bool required, th_err *err)
{
	if (required)
		return th_err_set(err, TH_EINVAL, "missing argument '%s'", key);
	return 1;
}

int thn_arg_text(const thn_args *a, const char *key, bool required, char *buf,
		 size_t cap, th_err *err)
{
	th_cbor_dec d;
	if (!find_arg(a, key, &d) || th_cbor_get_null(&d))
		return absent(key, required, err);
	const char *s;
	size_t n;
	if (th_cbor_get_text(&d, &s, &n, err))
		return th_err_set(err, TH_EINVAL, "argument '%s' must be text", key);
	if (n >= cap)
		return th_err_set(err, TH_EINVAL, "argument '%s' is %zu bytes (at most %zu)",
				  key, n, cap - 1);
	if (memchr(s, 0, n))
		return th_err_set(err, TH_EINVAL, "argument '%s' contains a NUL byte", key);
	memcpy(buf, s, n);
	buf[n] = 0;
	return 0;
}

int thn_arg_uint(const thn_args *a, const char *key, bool required, uint64_t *v,
		 th_err *err)
{
	th_cbor_dec d;
	if (!find_arg(a, key, &d) || th_cbor_get_null(&d))
		return absent(key, required, err);
	if (th_cbor_get_uint(&d, v, err))
		return th_err_set(err, TH_EINVAL, "argument '%s' must be an unsigned integer",
				  key);
	return 0;
}

int thn_arg_bool(const thn_args *a, const char *key, bool *v, th_err *err)
{
	th_cbor_dec d;
	if (!find_arg(a, key, &d) || th_cbor_get_null(&d))
		return 1;
	if (th_cbor_get_bool(&d, v, err))
		return th_err_set(err, TH_EINVAL, "argument '%s' must be true or false", key);
	return 0;
}

int thn_arg_bytes(const thn_args *a, const char *key, bool required,
		  const uint8_t **p, size_t *n, th_err *err)
{
	th_cbor_dec d;
	if (!find_arg(a, key, &d) || th_cbor_get_null(&d))
		return absent(key, required, err);
	if (th_cbor_peek(&d) == TH_CBOR_TEXT) {
		const char *s;
		if (th_cbor_get_text(&d, &s, n, err))
			return th_err_set(err, TH_EINVAL, "argument '%s': bad text", key);
		*p = (const uint8_t *)s;
		return 0;
	}
	if (th_cbor_get_bytes(&d, p, n, err))
		return th_err_set(err, TH_EINVAL, "argument '%s' must be bytes", key);
	return 0;
}

/* ---- a sorted map builder ---- */

#define MAP_MAX 32
typedef struct omap {
	th_cbor_enc vals;
	struct {
		const char *k;
		size_t off, len;
	} e[MAP_MAX];
	size_t n;
	bool overflow;
} omap;

static void map_init(omap *m)
{
	th_cbor_enc_init(&m->vals, NULL, 0);
	m->n = 0;
	m->overflow = false;
}

static void map_close_last(omap *m)
{
	if (m->n)
		m->e[m->n - 1].len = m->vals.len - m->e[m->n - 1].off;
}

/* Start the value of key; write it into the returned encoder. */
static th_cbor_enc *map_key(omap *m, const char *key)
{
	map_close_last(m);
	if (m->n == MAP_MAX) {
		m->overflow = true;
		m->n--; /* overwrite the last: the result is refused anyway */
	}
	m->e[m->n].k = key;
	m->e[m->n].off = m->vals.len;
	m->e[m->n].len = 0;
	m->n++;
	return &m->vals;
}

static int key_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x, y);
}

/* Write the map into out and release the builder. */
static void map_end(omap *m, th_cbor_enc *out)
{
	map_close_last(m);
	if (m->overflow || m->vals.err) {
		out->err = m->vals.err ? m->vals.err : TH_ELIMIT;
		th_cbor_enc_release(&m->vals);
		return;
	}
	/* Sort entries by key (each entry begins with its key pointer). */
	qsort(m->e, m->n, sizeof m->e[0], key_cmp);
	th_cbor_put_map(out, m->n);
	for (size_t i = 0; i < m->n; i++) {
		th_cbor_put_cstr(out, m->e[i].k);
		th_cbor_put_raw(out, m->vals.buf + m->e[i].off, m->e[i].len);
	}
	th_cbor_enc_release(&m->vals);
}

static void put_hash(th_cbor_enc *e, const uint8_t *h)
{
	char hex[THS_HEX_LEN + 1];
	th_hex(h, THS_HASH_LEN, hex);
	th_cbor_put_cstr(e, hex);
}

/* ---- helpers ---- */

static const thsrv_config *cfg_of(thn_job *j)
{
	return thn_srv_config(j->srv);
}

static int store_arg(const thn_args *a, char *store, th_err *err)
{
	int rc = thn_arg_text(a, "store", false, store, THS_NAME_MAX + 1, err);
	if (rc == 1)
		snprintf(store, THS_NAME_MAX + 1, "%s", THS_DEFAULT_STORE);
	return rc < 0 ? rc : 0;
}

static int hash_arg(const thn_args *a, const char *key, ths_hash *h, th_err *err)
{
	char hex[THS_HEX_LEN + 8];
	int rc = thn_arg_text(a, key, true, hex, sizeof hex, err);
	if (rc)
		return rc;
	return ths_hash_parse(hex, h, err);
}

static int open_chain(thn_job *j, const char *name, thx_chain **c, th_err *err)
{
	int rc = thx_chain_open(cfg_of(j)->chains, name, NULL, false, c, err);
	if (rc == TH_ENOTFOUND)
		th_err_set(err, TH_ENOTFOUND, "no chain named '%s'", name);
	return rc;
}

/* ---- store ---- */

static int cmd_store_put(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char store[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	int rc;
	if ((rc = store_arg(a, store, err)))
		return rc;
	bool has_label = (rc = thn_arg_text(a, "label", false, label, sizeof label, err)) == 0;
	if (rc < 0)
		return rc;
	const uint8_t *data = j->body;
	size_t len = j->body_len;
	if (!j->has_body && (rc = thn_arg_bytes(a, "data", true, &data, &len, err)))
		return rc;
	ths_hash h;
	if (has_label)
		rc = ths_store_at_label(cfg_of(j)->store, store, label, data, len, &h, err);
	else
		rc = ths_put(cfg_of(j)->store, data, len, &h, err);
	if (rc)
		return rc;
	omap m;
	map_init(&m);
	put_hash(map_key(&m, "hash"), h.b);
	th_cbor_put_uint(map_key(&m, "size"), len);
	map_end(&m, &j->out);
	return 0;
}

static int resolve(thn_job *j, const thn_args *a, ths_hash *h, th_err *err)
{
	char store[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	int rc = thn_arg_text(a, "label", false, label, sizeof label, err);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return hash_arg(a, "hash", h, err);
	if ((rc = store_arg(a, store, err)))
		return rc;
	return ths_label_get(cfg_of(j)->store, store, label, h, err);
}

static int cmd_store_get(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	ths_hash h;
	int rc;
	if ((rc = resolve(j, a, &h, err)))
		return rc;
	uint64_t size;
	if ((rc = ths_size(cfg_of(j)->store, &h, &size, err)))
		return rc;
	omap m;
	map_init(&m);
	put_hash(map_key(&m, "hash"), h.b);
	th_cbor_put_uint(map_key(&m, "size"), size);
	if (size <= THN_INLINE_MAX) {
		uint8_t *data;
		size_t len;
		if ((rc = ths_get(cfg_of(j)->store, &h, THN_INLINE_MAX, &data, &len, err))) {
			th_cbor_enc_release(&m.vals);
			return rc;
		}
		th_cbor_put_bytes(map_key(&m, "data"), data, len);
		ths_buf_free(data);
	} else {
		if ((rc = ths_reader_open(cfg_of(j)->store, &h, &j->reader, err))) {
			th_cbor_enc_release(&m.vals);
			return rc;
		}
		j->follow = THN_FOLLOW_READ;
	}
	map_end(&m, &j->out);
	return 0;
}

static int run_chunk(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	j->body = th_malloc(THN_READ_CHUNK);
	if (!j->body)
		return th_err_set(&j->err, TH_ENOMEM, "out of memory");
	j->body_len = 0;
	while (j->body_len < THN_READ_CHUNK) {
		size_t got = 0;
		int rc = ths_reader_read(j->reader, j->body + j->body_len,
					 THN_READ_CHUNK - j->body_len, &got, &j->err);
		if (rc)
			return rc;
		if (got == 0)
			break;
		j->body_len += got;
	}
	return 0;
}

const struct thn_cmd thn_cmd_chunk = { "store.get (chunk)", run_chunk, THN_CMD_CHUNK };

static int cmd_store_label(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char store[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	ths_hash h;
	int rc;
	char expect[THS_HEX_LEN + 8];
	ths_hash old;
	if ((rc = store_arg(a, store, err)) ||
	    (rc = thn_arg_text(a, "label", true, label, sizeof label, err)) ||
	    (rc = hash_arg(a, "hash", &h, err)) ||
	    (rc = thn_arg_text(a, "expect", false, expect, sizeof expect, err)) < 0)
		return rc;
	if (rc == 1)
		rc = ths_label_set(cfg_of(j)->store, store, label, &h, err);
	else if (!strcmp(expect, "none"))
		rc = ths_label_cas(cfg_of(j)->store, store, label, NULL, &h, err);
	else if ((rc = ths_hash_parse(expect, &old, err)) == 0)
		rc = ths_label_cas(cfg_of(j)->store, store, label, &old, &h, err);
	if (rc)
		return rc;
	th_cbor_put_map(&j->out, 0);
	return 0;
}

static int cmd_store_stat(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	ths_hash h;
	uint64_t size;
	int rc;
	if ((rc = resolve(j, a, &h, err)) || (rc = ths_size(cfg_of(j)->store, &h, &size, err)))
		return rc;
	omap m;
	map_init(&m);
	put_hash(map_key(&m, "hash"), h.b);
	th_cbor_put_uint(map_key(&m, "size"), size);
	map_end(&m, &j->out);
	return 0;
}

static int cmd_store_gc(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	uint64_t grace = 3600;
	ths_gc_stats st;
	int rc;
	if ((rc = thn_arg_uint(a, "grace_s", false, &grace, err)) < 0 ||
	    (rc = ths_gc(cfg_of(j)->store, grace, &st, err)))
		return rc;
	omap m;
	map_init(&m);
	th_cbor_put_uint(map_key(&m, "objects"), st.objects);
	th_cbor_put_uint(map_key(&m, "live"), st.live);
	th_cbor_put_uint(map_key(&m, "removed"), st.removed);
	th_cbor_put_uint(map_key(&m, "removed_bytes"), st.removed_bytes);
	th_cbor_put_uint(map_key(&m, "tmp_removed"), st.tmp_removed);
	th_cbor_put_uint(map_key(&m, "missing"), st.missing);
	map_end(&m, &j->out);
	return 0;
}

/* store.verify's problems, the first STORE_PROBLEMS_MAX of them. */
#define STORE_PROBLEMS_MAX 100
struct problems {
	th_cbor_enc e;
	uint64_t n;
};

static void on_problem(void *ud, const char *path, const char *problem)
{
	struct problems *p = ud;
	if (p->n >= STORE_PROBLEMS_MAX)
		return;
	th_cbor_put_map(&p->e, 2);
	th_cbor_put_cstr(&p->e, "path");
	th_cbor_put_cstr(&p->e, path);
	th_cbor_put_cstr(&p->e, "problem");
	th_cbor_put_cstr(&p->e, problem);
	p->n++;
}

static int cmd_store_verify(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	th_err *err = &j->err;
	struct problems p = { .n = 0 };
	ths_verify_stats st;
	th_cbor_enc_init(&p.e, NULL, 0);
	int rc = ths_verify(cfg_of(j)->store, on_problem, &p, NULL, NULL, &st, err);
	if (rc && rc != TH_ECORRUPT) {
		th_cbor_enc_release(&p.e);
		return rc;
	}
	if (p.e.err) {
		th_cbor_enc_release(&p.e);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	omap m;
	map_init(&m);
	th_cbor_put_bool(map_key(&m, "ok"), rc == 0);
	th_cbor_put_uint(map_key(&m, "objects"), st.objects);
	th_cbor_put_uint(map_key(&m, "bytes"), st.bytes);
	th_cbor_put_uint(map_key(&m, "bad"), st.bad);
	th_cbor_enc *pe = map_key(&m, "problems");
	th_cbor_put_array(pe, p.n);
	th_cbor_put_raw(pe, p.e.buf, p.e.len);
	th_cbor_enc_release(&p.e);
	map_end(&m, &j->out);
	return 0;
}

static int cmd_store_resolve(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char store[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	ths_hash h;
	int rc;
	if ((rc = store_arg(a, store, err)) ||
	    (rc = thn_arg_text(a, "label", true, label, sizeof label, err)) ||
	    (rc = ths_label_get(cfg_of(j)->store, store, label, &h, err)))
		return rc;
	omap m;
	map_init(&m);
	put_hash(map_key(&m, "hash"), h.b);
	map_end(&m, &j->out);
	return 0;
}

static int cmd_store_unlabel(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char store[THS_NAME_MAX + 1], label[THS_NAME_MAX + 1];
	int rc;
	if ((rc = store_arg(a, store, err)) ||
	    (rc = thn_arg_text(a, "label", true, label, sizeof label, err)) ||
	    (rc = ths_label_remove(cfg_of(j)->store, store, label, err)))
		return rc;
	th_cbor_put_map(&j->out, 0);
	return 0;
}

static int cmd_store_labels(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char store[THS_NAME_MAX + 1];
	ths_label_entry *ls;
	size_t n;
	int rc;
	if ((rc = store_arg(a, store, err)) ||
	    (rc = ths_label_list(cfg_of(j)->store, store, &ls, &n, err)))
		return rc;
	th_cbor_put_map(&j->out, 1);
	th_cbor_put_cstr(&j->out, "labels");
	th_cbor_put_array(&j->out, n);
	for (size_t i = 0; i < n; i++) {
		th_cbor_put_map(&j->out, 2);
		th_cbor_put_cstr(&j->out, "hash");
		put_hash(&j->out, ls[i].hash.b);
		th_cbor_put_cstr(&j->out, "name");
		th_cbor_put_cstr(&j->out, ls[i].name);
	}
	ths_buf_free(ls);
	return 0;
}

static int cmd_store_new(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	char id[THS_NAME_MAX + 1];
	int rc = ths_store_new(cfg_of(j)->store, id, &j->err);
	if (rc)
		return rc;
	th_cbor_put_map(&j->out, 1);
	th_cbor_put_cstr(&j->out, "id");
	th_cbor_put_cstr(&j->out, id);
	return 0;
}

/* ---- chains ---- */

static int cmd_chain_list(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	char **names;
	size_t n;
	int rc = thx_store_list(cfg_of(j)->chains, &names, &n, &j->err);
	if (rc)
		return rc;
	th_cbor_put_map(&j->out, 1);
	th_cbor_put_cstr(&j->out, "chains");
	th_cbor_put_array(&j->out, n);
	for (size_t i = 0; i < n; i++) {
		thx_chain *c = NULL;
		uint8_t head[THX_HASH_LEN];
		bool has_head = false;
		uint64_t count = 0;
		if (thx_chain_open(cfg_of(j)->chains, names[i], NULL, false, &c, NULL) == 0) {
			count = thx_chain_count(c);
			has_head = thx_chain_head(c, head);
		}
		th_cbor_put_map(&j->out, 3);
		th_cbor_put_cstr(&j->out, "head");
		if (has_head)
			put_hash(&j->out, head);
		else
			th_cbor_put_null(&j->out);
		th_cbor_put_cstr(&j->out, "name");
		th_cbor_put_cstr(&j->out, names[i]);
		th_cbor_put_cstr(&j->out, "events");
		th_cbor_put_uint(&j->out, count);
	}
	thx_free(names);
	return 0;
}

static int cmd_chain_verify(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char chain[THX_NAME_MAX + 1];
	int rc = thn_arg_text(a, "chain", false, chain, sizeof chain, err);
	if (rc < 0)
		return rc;
	thx_verify_report r;
	memset(&r, 0, sizeof r);
	if ((rc = thx_verify(cfg_of(j)->chains, rc == 0 ? chain : NULL, NULL, NULL, &r, err)))
		return rc;
	omap m;
	map_init(&m);
	th_cbor_put_bool(map_key(&m, "ok"), r.ok);
	th_cbor_put_uint(map_key(&m, "chains"), r.chains);
	th_cbor_put_uint(map_key(&m, "events"), r.events);
	th_cbor_put_uint(map_key(&m, "blocks"), r.blocks);
	th_cbor_put_uint(map_key(&m, "pruned"), r.pruned);
	th_cbor_put_uint(map_key(&m, "bytes"), r.bytes);
	if (!r.ok) {
		omap p;
		map_init(&p);
		th_cbor_put_cstr(map_key(&p, "chain"), r.chain);
		th_cbor_put_uint(map_key(&p, "seq"), r.seq);
		th_cbor_put_cstr(map_key(&p, "file"), r.file);
		th_cbor_put_uint(map_key(&p, "offset"), r.offset);
		th_cbor_put_cstr(map_key(&p, "what"), r.what);
		map_end(&p, map_key(&m, "problem"));
	}
	map_end(&m, &j->out);
	return 0;
}

/* Actor chains are named by UUID; the runtime alone writes them. */
static bool looks_like_actor(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char ch = s[i];
		if (dash ? ch != '-' : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
	}
	return true;
}

static int cmd_chain_append(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char chain[THX_NAME_MAX + 1], type[THX_NAME_MAX + 1], actor[THX_NAME_MAX + 1];
	char desc[1024];
	const uint8_t *data = NULL;
	size_t len = 0;
	int rc;
	if ((rc = thn_arg_text(a, "chain", true, chain, sizeof chain, err)) ||
	    (rc = thn_arg_text(a, "type", true, type, sizeof type, err)))
		return rc;
	if (!strcmp(chain, THX_RUNTIME_CHAIN) || looks_like_actor(chain))
		return th_err_set(err, TH_EPERM,
				  "chain '%s' belongs to the runtime; clients may append only "
				  "to their own chains", chain);
	bool has_actor = (rc = thn_arg_text(a, "actor", false, actor, sizeof actor, err)) == 0;
	if (rc < 0)
		return rc;
	bool has_desc = (rc = thn_arg_text(a, "desc", false, desc, sizeof desc, err)) == 0;
	if (rc < 0)
		return rc;
	if ((rc = thn_arg_bytes(a, "data", false, &data, &len, err)) < 0)
		return rc;
	uint64_t count = 1;
	if ((rc = thn_arg_uint(a, "count", false, &count, err)) < 0)
		return rc;
	if (count == 0 || count > 1000000)
		return th_err_set(err, TH_EINVAL, "count must be 1 to 1000000");
	thx_chain *c;
	if ((rc = thx_chain_open(cfg_of(j)->chains, chain, NULL, true, &c, err)))
		return rc;
	/* Events name an actor; a client's own chain names itself. */
	thx_event_in ev = { .actor = has_actor ? actor : chain, .type = type, .data = data,
			    .len = len, .description = has_desc ? desc : NULL };
	uint64_t first = 0;
	if (count == 1) {
		rc = thx_append(c, &ev, &first, NULL, err);
	} else {
		/* Many copies in batches: one durability wait per batch. */
		enum { BATCH = 1024 };
		thx_event_in *evs = th_malloc(BATCH * sizeof *evs);
		if (!evs)
			return th_err_set(err, TH_ENOMEM, "out of memory");
		for (size_t i = 0; i < BATCH; i++)
			evs[i] = ev;
		for (uint64_t done = 0; done < count && rc == 0;) {
			size_t k = count - done < BATCH ? (size_t)(count - done) : BATCH;
			uint64_t f0;
			rc = thx_append_batch(c, evs, k, &f0, NULL, err);
			if (done == 0)
				first = f0;
			done += k;
		}
		th_free(evs);
	}
	if (rc)
		return rc;
	omap m;
	map_init(&m);
	th_cbor_put_uint(map_key(&m, "seq"), first);
	th_cbor_put_uint(map_key(&m, "count"), count);
	map_end(&m, &j->out);
	return 0;
}

struct events_walk {
	th_cbor_enc *e;
	size_t n;
	size_t budget;  /* stop before the payload passes this size */
	size_t max_data;
	uint64_t next;
	bool full;
};

static int events_cb(const thx_event *ev, void *arg)
{
	struct events_walk *w = arg;
	size_t before = w->e->len;
	thn_event_encode(w->e, ev, w->max_data);
	if (w->e->len > w->budget && w->n > 0) {
		w->e->len = before; /* does not fit: the client asks again */
		w->full = true;
		return 1;
	}
	w->n++;
	w->next = ev->seq + 1;
	return 0;
}

static int cmd_events_get(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char chain[THX_NAME_MAX + 1], type[THX_NAME_MAX + 1], actor[THX_NAME_MAX + 1];
	thx_query q = { 0 };
	uint64_t v;
	int rc;
	if ((rc = thn_arg_text(a, "chain", true, chain, sizeof chain, err)))
		return rc;
	if ((rc = thn_arg_text(a, "type", false, type, sizeof type, err)) < 0)
		return rc;
	if (rc == 0)
		q.type = type;
	if ((rc = thn_arg_text(a, "actor", false, actor, sizeof actor, err)) < 0)
		return rc;
	if (rc == 0)
		q.actor = actor;
	if ((rc = thn_arg_uint(a, "from", false, &q.from_seq, err)) < 0 ||
	    (rc = thn_arg_uint(a, "since", false, &q.since_ns, err)) < 0 ||
	    (rc = thn_arg_uint(a, "until", false, &q.until_ns, err)) < 0)
		return rc;
	if ((rc = thn_arg_uint(a, "limit", false, &v, err)) < 0)
		return rc;
	q.limit = rc == 0 ? (size_t)(v > 1000000 ? 1000000 : v) : 1000;
	thx_chain *c;
	if ((rc = open_chain(j, chain, &c, err)))
		return rc;
	uint32_t max = cfg_of(j)->max_frame;
	th_cbor_enc evs;
	th_cbor_enc_init(&evs, NULL, 0);
	struct events_walk w = { &evs, 0, max - 256, max > 1024 ? max - 1024 : 0,
				 q.from_seq, false };
	rc = thx_query_run(c, &q, events_cb, &w, err);
	if (rc < 0) {
		th_cbor_enc_release(&evs);
		return rc;
	}
	omap m;
	map_init(&m);
	th_cbor_enc *e = map_key(&m, "events");
	th_cbor_put_array(e, w.n);
	th_cbor_put_raw(e, evs.buf, evs.len);
	th_cbor_enc_release(&evs);
	th_cbor_put_uint(map_key(&m, "count"), thx_chain_count(c));
	if (w.full)
		th_cbor_put_uint(map_key(&m, "next"), w.next);
	map_end(&m, &j->out);
	return 0;
}

static int cmd_subscribe(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	char chain[THX_NAME_MAX + 1];
	uint64_t from = 0, credit = 1024, buffer = 0;
	int rc;
	if ((rc = thn_arg_text(a, "chain", true, chain, sizeof chain, err)))
		return rc;
	bool has_from = (rc = thn_arg_uint(a, "from", false, &from, err)) == 0;
	if (rc < 0 || (rc = thn_arg_uint(a, "credit", false, &credit, err)) < 0 ||
	    (rc = thn_arg_uint(a, "buffer", false, &buffer, err)) < 0)
		return rc;
	uint32_t bmax = cfg_of(j)->sub_buffer_max;
	if (buffer == 0)
		buffer = credit > 1024 ? credit : 1024;
	if (buffer > bmax)
		buffer = bmax;
	thx_chain *c;
	if ((rc = open_chain(j, chain, &c, err)))
		return rc;
	uint64_t next;
	if ((rc = thn_sub_new(j->srv, c, chain, j->stream, has_from ? &from : NULL, credit,
			      (uint32_t)buffer, j->compress_min, &j->sub, &next, err)))
		return rc;
	j->follow = THN_FOLLOW_SUB;
	omap m;
	map_init(&m);
	th_cbor_put_uint(map_key(&m, "next"), next);
	th_cbor_put_uint(map_key(&m, "count"), thx_chain_count(c));
	th_cbor_put_uint(map_key(&m, "buffer"), buffer);
	map_end(&m, &j->out);
	return 0;
}

/* ---- metrics ---- */

static int metric_cb(void *arg, const char *name, uint64_t value)
{
	omap *m = arg;
	if (m->n >= MAP_MAX - 1)
		return 1;
	char *k = th_strdup(name);
	if (!k)
		return TH_ENOMEM;
	th_cbor_put_uint(map_key(m, k), value);
	return 0;
}

static int cmd_metrics(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	thsrv_stats st;
	thsrv_get_stats(j->srv, &st);
	omap m, s;
	map_init(&m);
	map_init(&s);
	th_cbor_put_uint(map_key(&s, "connections"), st.connections);
	th_cbor_put_uint(map_key(&s, "accepted"), st.accepted);
	th_cbor_put_uint(map_key(&s, "requests"), st.requests);
	th_cbor_put_uint(map_key(&s, "events"), st.events);
	th_cbor_put_uint(map_key(&s, "gaps"), st.gaps);
	th_cbor_put_uint(map_key(&s, "bytes_in"), st.bytes_in);
	th_cbor_put_uint(map_key(&s, "bytes_out"), st.bytes_out);
	th_cbor_put_uint(map_key(&s, "compressed"), st.frames_compressed);
	th_cbor_put_uint(map_key(&s, "protocol_errors"), st.protocol_errors);
	th_cbor_put_uint(map_key(&s, "resumed"), st.sessions_resumed);
	th_cbor_put_uint(map_key(&s, "workers"), st.workers);
	map_end(&s, map_key(&m, "server"));
	const thsrv_config *cfg = cfg_of(j);
	if (cfg->ops && cfg->ops->metrics) {
		omap r;
		map_init(&r);
		int rc = cfg->ops->metrics(cfg->ops_ctx, metric_cb, &r, &j->err);
		/* Keys were strdup'd for the builder; free them after. */
		const char *keys[MAP_MAX];
		size_t nk = r.n;
		for (size_t i = 0; i < nk; i++)
			keys[i] = r.e[i].k;
		if (rc) {
			th_cbor_enc_release(&r.vals);
		} else {
			map_end(&r, map_key(&m, "runtime"));
		}
		for (size_t i = 0; i < nk; i++)
			th_free((void *)keys[i]);
		if (rc) {
			th_cbor_enc_release(&m.vals);
			return rc;
		}
	}
	map_end(&m, &j->out);
	return 0;
}

/* ---- actor commands (the runtime's ops) ---- */

static const thsrv_ops *ops_or_fail(thn_job *j, bool present, th_err *err)
{
	const thsrv_config *cfg = cfg_of(j);
	if (!cfg->ops || !present) {
		th_err_set(err, TH_EUNSUPPORTED,
			   "%s: this server has no actor runtime attached", j->cmd->op);
		return NULL;
	}
	return cfg->ops;
}

#define OPS(j, field) ops_or_fail((j), cfg_of(j)->ops && cfg_of(j)->ops->field, &(j)->err)

static const char *status_name(thsrv_status s)
{
	switch (s) {
	case THSRV_STARTING: return "starting";
	case THSRV_RUNNING: return "running";
	case THSRV_STOPPED: return "stopped";
	case THSRV_FAILED: return "failed";
	}
	return "unknown";
}

static void put_actor(th_cbor_enc *e, const thsrv_actor *x)
{
	omap m;
	map_init(&m);
	th_cbor_put_cstr(map_key(&m, "id"), x->id);
	th_cbor_put_cstr(map_key(&m, "name"), x->name);
	th_cbor_put_cstr(map_key(&m, "parent"), x->parent);
	th_cbor_put_cstr(map_key(&m, "status"), status_name(x->status));
	th_cbor_put_cstr(map_key(&m, "component"), x->component);
	th_cbor_put_uint(map_key(&m, "messages"), x->messages);
	th_cbor_put_uint(map_key(&m, "queued"), x->queued);
	th_cbor_put_uint(map_key(&m, "children"), x->children);
	if (x->circuit[0]) {
		th_cbor_put_uint(map_key(&m, "restarts"), x->restarts);
		th_cbor_put_cstr(map_key(&m, "circuit"), x->circuit);
	}
	if (x->reason[0])
		th_cbor_put_cstr(map_key(&m, "reason"), x->reason);
	map_end(&m, e);
}

static int id_arg(const thn_args *a, char *id, th_err *err)
{
	return thn_arg_text(a, "id", true, id, THSRV_ID_MAX + 1, err);
}

static void put_empty(thn_job *j)
{
	th_cbor_put_map(&j->out, 0);
}

static int cmd_actor_start(thn_job *j, const thn_args *a)
{
	th_err *err = &j->err;
	const thsrv_ops *ops = OPS(j, start);
	if (!ops)
		return err->code;
	thsrv_start s = { 0 };
	char *text = NULL, ref[THS_NAME_MAX + 8], base[4096], parent[THSRV_ID_MAX + 1];
	char path[4096];
	const uint8_t *tp;
	size_t tn;
	int rc = thn_arg_bytes(a, "manifest", false, &tp, &tn, err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (!(text = th_strndup((const char *)tp, tn)))
			return th_err_set(err, TH_ENOMEM, "out of memory");
		s.manifest_text = text;
	}
	if ((rc = thn_arg_text(a, "ref", false, ref, sizeof ref, err)) < 0)
		goto out;
	if (rc == 0)
		s.manifest_ref = ref;
	if (!s.manifest_text == !s.manifest_ref) {
		rc = th_err_set(err, TH_EINVAL, "give exactly one of 'manifest' (text) and 'ref'");
		goto out;
	}
	if ((rc = thn_arg_text(a, "base_dir", false, base, sizeof base, err)) < 0)
		goto out;
	if (rc == 0)
		s.base_dir = base;
	if ((rc = thn_arg_text(a, "parent", false, parent, sizeof parent, err)) < 0)
		goto out;
	if (rc == 0)
		s.parent = parent;
	if ((rc = thn_arg_text(a, "path", false, path, sizeof path, err)) < 0)
		goto out;
	if (rc == 0)
		s.path = path;
	if ((rc = thn_arg_bytes(a, "state", false, &s.state, &s.state_len, err)) < 0)
		goto out;
	s.has_state = rc == 0;
	bool subscribe = false;
	if ((rc = thn_arg_bool(a, "subscribe", &subscribe, err)) < 0)
		goto out;
	char id[THSRV_ID_MAX + 1] = "";
	if ((rc = ops->start(cfg_of(j)->ops_ctx, &s, id, err)))
		goto out;
	omap m;
	map_init(&m);
	th_cbor_put_cstr(map_key(&m, "id"), id);
	if (subscribe) {
		/* The actor's chain from its first event, on this stream. */
		thx_chain *c;
		uint64_t zero = 0, next;
		if ((rc = open_chain(j, id, &c, err)) ||
		    (rc = thn_sub_new(j->srv, c, id, j->stream, &zero, 1024, 1024,
				      j->compress_min, &j->sub, &next, err))) {
			th_cbor_enc_release(&m.vals);
			goto out;
		}
		j->follow = THN_FOLLOW_SUB;
		th_cbor_put_uint(map_key(&m, "next"), next);
	}
	map_end(&m, &j->out);
out:
	th_free(text);
	return rc;
}

static int simple_id_op(thn_job *j, const thn_args *a,
			int (*fn)(void *, const char *, th_err *))
{
	char id[THSRV_ID_MAX + 1];
	int rc = id_arg(a, id, &j->err);
	if (rc)
		return rc;
	if ((rc = fn(cfg_of(j)->ops_ctx, id, &j->err)))
		return rc;
	put_empty(j);
	return 0;
}

static int cmd_actor_stop(thn_job *j, const thn_args *a)
{
	const thsrv_ops *ops = OPS(j, stop);
	return ops ? simple_id_op(j, a, ops->stop) : j->err.code;
}

static int cmd_actor_terminate(thn_job *j, const thn_args *a)
{
	const thsrv_ops *ops = OPS(j, terminate);
	return ops ? simple_id_op(j, a, ops->terminate) : j->err.code;
}

static int cmd_actor_restart(thn_job *j, const thn_args *a)
{
	const thsrv_ops *ops = OPS(j, restart);
	return ops ? simple_id_op(j, a, ops->restart) : j->err.code;
}

struct actor_list {
	thsrv_actor *v;
	size_t n, cap;
};

static int collect_actor(void *arg, const thsrv_actor *x)
{
	struct actor_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		thsrv_actor *v = th_realloc(l->v, cap * sizeof *v);
		if (!v)
			return TH_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *x;
	return 0;
}

static int list_actors(thn_job *j, const thsrv_ops *ops, struct actor_list *l)
{
	memset(l, 0, sizeof *l);
	int rc = ops->list(cfg_of(j)->ops_ctx, collect_actor, l, &j->err);
	if (rc == TH_ENOMEM && !j->err.msg[0])
		th_err_set(&j->err, TH_ENOMEM, "out of memory");
	if (rc)
		th_free(l->v);
	return rc;
}

static int cmd_actor_list(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	const thsrv_ops *ops = OPS(j, list);
	if (!ops)
		return j->err.code;
	struct actor_list l;
	int rc = list_actors(j, ops, &l);
	if (rc)
		return rc;
	th_cbor_put_map(&j->out, 1);
	th_cbor_put_cstr(&j->out, "actors");
	th_cbor_put_array(&j->out, l.n);
	for (size_t i = 0; i < l.n; i++)
		put_actor(&j->out, &l.v[i]);
	th_free(l.v);
	return 0;
}

/* The supervision tree: every actor under its parent, roots first. */
static void put_subtree(th_cbor_enc *e, const struct actor_list *l, size_t i, int depth)
{
	size_t kids = 0;
	for (size_t k = 0; k < l->n; k++)
		kids += !strcmp(l->v[k].parent, l->v[i].id);
	bool sup = l->v[i].circuit[0] != 0;
	th_cbor_put_map(e, sup ? 6 : 4);
	th_cbor_put_cstr(e, "id");
	th_cbor_put_cstr(e, l->v[i].id);
	th_cbor_put_cstr(e, "name");
	th_cbor_put_cstr(e, l->v[i].name);
	th_cbor_put_cstr(e, "status");
	th_cbor_put_cstr(e, status_name(l->v[i].status));
	if (sup) {
		th_cbor_put_cstr(e, "restarts");
		th_cbor_put_uint(e, l->v[i].restarts);
		th_cbor_put_cstr(e, "circuit");
		th_cbor_put_cstr(e, l->v[i].circuit);
	}
	th_cbor_put_cstr(e, "children");
	if (depth >= TH_CBOR_MAX_DEPTH / 2 - 4) {
		th_cbor_put_array(e, 0); /* defensive: a parent cycle */
		return;
	}
	th_cbor_put_array(e, kids);
	for (size_t k = 0; k < l->n; k++)
		if (!strcmp(l->v[k].parent, l->v[i].id))
			put_subtree(e, l, k, depth + 1);
}

static int cmd_actor_tree(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	const thsrv_ops *ops = OPS(j, list);
	if (!ops)
		return j->err.code;
	struct actor_list l;
	int rc = list_actors(j, ops, &l);
	if (rc)
		return rc;
	/* Roots: no parent, or a parent the runtime does not know. */
	size_t roots = 0;
	bool *root = th_calloc(l.n ? l.n : 1, sizeof *root);
	if (!root) {
		th_free(l.v);
		return th_err_set(&j->err, TH_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < l.n; i++) {
		bool known = false;
		for (size_t k = 0; k < l.n && !known; k++)
			known = k != i && !strcmp(l.v[k].id, l.v[i].parent);
		root[i] = !l.v[i].parent[0] || !known;
		roots += root[i];
	}
	th_cbor_put_map(&j->out, 1);
	th_cbor_put_cstr(&j->out, "tree");
	th_cbor_put_array(&j->out, roots);
	for (size_t i = 0; i < l.n; i++)
		if (root[i])
			put_subtree(&j->out, &l, i, 0);
	th_free(root);
	th_free(l.v);
	return 0;
}

static int cmd_actor_status(thn_job *j, const thn_args *a)
{
	const thsrv_ops *ops = OPS(j, status);
	if (!ops)
		return j->err.code;
	char id[THSRV_ID_MAX + 1];
	thsrv_actor x;
	memset(&x, 0, sizeof x);
	int rc;
	if ((rc = id_arg(a, id, &j->err)) ||
	    (rc = ops->status(cfg_of(j)->ops_ctx, id, &x, &j->err)))
		return rc;
	put_actor(&j->out, &x);
	return 0;
}

/* "wait": true asks for the ops' waiting variant (the server runs such a
 * request on a worker, never on its loop: thn_wants_wait). */
static int wait_arg(thn_job *j, const thn_args *a, bool present, bool *wait)
{
	*wait = false;
	int rc = thn_arg_bool(a, "wait", wait, &j->err);
	if (rc < 0)
		return rc;
	if (*wait && !present)
		return th_err_set(&j->err, TH_EUNSUPPORTED,
				  "%s: this server cannot wait for room in a mailbox", j->cmd->op);
	return 0;
}

bool thn_wants_wait(const uint8_t *p, size_t n)
{
	thn_args a;
	bool wait = false;
	return thn_args_parse(p, n, &a, NULL) == 0 && thn_arg_bool(&a, "wait", &wait, NULL) == 0 &&
	       wait;
}

static int cmd_actor_send(thn_job *j, const thn_args *a)
{
	const thsrv_ops *ops = OPS(j, send);
	if (!ops)
		return j->err.code;
	char id[THSRV_ID_MAX + 1];
	const uint8_t *msg;
	size_t len;
	bool wait;
	int rc;
	if ((rc = id_arg(a, id, &j->err)) ||
	    (rc = thn_arg_bytes(a, "msg", true, &msg, &len, &j->err)) ||
	    (rc = wait_arg(j, a, ops->send_wait != NULL, &wait)) ||
	    (rc = (wait ? ops->send_wait : ops->send)(cfg_of(j)->ops_ctx, id, msg, len, &j->err)))
		return rc;
	put_empty(j);
	return 0;
}

static int cmd_actor_request(thn_job *j, const thn_args *a)
{
	const thsrv_ops *ops = OPS(j, request);
	if (!ops)
		return j->err.code;
	char id[THSRV_ID_MAX + 1];
	const uint8_t *msg;
	size_t len;
	uint64_t timeout = 0;
	bool wait;
	int rc;
	if ((rc = id_arg(a, id, &j->err)) ||
	    (rc = thn_arg_bytes(a, "msg", true, &msg, &len, &j->err)) ||
	    (rc = thn_arg_uint(a, "timeout_ms", false, &timeout, &j->err)) < 0 ||
	    (rc = wait_arg(j, a, ops->request_wait != NULL, &wait)))
		return rc;
	thsrv_bytes reply = { 0 };
	rc = (wait ? ops->request_wait : ops->request)(cfg_of(j)->ops_ctx, id, msg, len,
			  timeout > UINT32_MAX ? UINT32_MAX : (uint32_t)timeout, &reply,
			  &j->err);
	if (rc == 0) {
		th_cbor_put_map(&j->out, 1);
		th_cbor_put_cstr(&j->out, "reply");
		th_cbor_put_bytes(&j->out, reply.data ? reply.data : (const uint8_t *)"",
				  reply.len);
	}
	th_free(reply.data);
	return rc;
}

static int cmd_actor_state(thn_job *j, const thn_args *a)
{
	const thsrv_ops *ops = OPS(j, get_state);
	if (!ops)
		return j->err.code;
	char id[THSRV_ID_MAX + 1];
	int rc = id_arg(a, id, &j->err);
	if (rc)
		return rc;
	thsrv_bytes st = { 0 };
	bool has = false;
	rc = ops->get_state(cfg_of(j)->ops_ctx, id, &st, &has, &j->err);
	if (rc == 0) {
		th_cbor_put_map(&j->out, 1);
		th_cbor_put_cstr(&j->out, "state");
		if (has)
			th_cbor_put_bytes(&j->out, st.data ? st.data : (const uint8_t *)"",
					  st.len);
		else
			th_cbor_put_null(&j->out);
	}
	th_free(st.data);
	return rc;
}

static int cmd_actor_manifest(thn_job *j, const thn_args *a)
{
	const thsrv_ops *ops = OPS(j, get_manifest);
	if (!ops)
		return j->err.code;
	char id[THSRV_ID_MAX + 1];
	int rc = id_arg(a, id, &j->err);
	if (rc)
		return rc;
	thsrv_bytes mf = { 0 };
	rc = ops->get_manifest(cfg_of(j)->ops_ctx, id, &mf, &j->err);
	if (rc == 0) {
		size_t bad;
		if (!th_cbor_utf8_ok(mf.data, mf.len, &bad)) {
			th_free(mf.data);
			return th_err_set(&j->err, TH_ECORRUPT,
					  "manifest of %s is not UTF-8 (byte %zu)", id, bad);
		}
		th_cbor_put_map(&j->out, 1);
		th_cbor_put_cstr(&j->out, "manifest");
		th_cbor_put_text(&j->out, mf.data ? (const char *)mf.data : "", mf.len);
	}
	th_free(mf.data);
	return rc;
}

/* ---- channels ---- */

static int cmd_channel_open(thn_job *j, const thn_args *a)
{
	const thsrv_config *cfg = cfg_of(j);
	const thsrv_ops *ops = ops_or_fail(j, cfg->ops && cfg->ops->channel_open &&
					      cfg->ops->channel_send && cfg->ops->channel_close,
					   &j->err);
	if (!ops)
		return j->err.code;
	char id[THSRV_ID_MAX + 1];
	const uint8_t *msg = NULL;
	size_t len = 0;
	int rc;
	if ((rc = id_arg(a, id, &j->err)) ||
	    (rc = thn_arg_bytes(a, "msg", false, &msg, &len, &j->err)) < 0)
		return rc;
	thsrv_channel *ch = thn_chan_new(j->srv);
	if (!ch)
		return th_err_set(&j->err, TH_ENOMEM, "out of memory");
	/* The runtime's reference, kept if the open succeeds. */
	thn_chan_ref(ch);
	ch->rt_ref = true;
	thsrv_bytes reply = { 0 };
	void *state = NULL;
	rc = ops->channel_open(cfg->ops_ctx, id, msg ? msg : (const uint8_t *)"", len, ch,
			       &state, &reply, &j->err);
	if (rc) {
		ch->rt_ref = false;
		thn_chan_unref(ch);
		thn_chan_unref(ch);
		th_free(reply.data);
		return rc;
	}
	ch->state = state;
	j->chan = ch;
	j->follow = THN_FOLLOW_CHAN;
	th_cbor_put_map(&j->out, 1);
	th_cbor_put_cstr(&j->out, "reply");
	th_cbor_put_bytes(&j->out, reply.data ? reply.data : (const uint8_t *)"", reply.len);
	th_free(reply.data);
	return 0;
}

static int run_chan_send(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	const thsrv_config *cfg = cfg_of(j);
	return cfg->ops->channel_send(cfg->ops_ctx, j->chan->state, j->body, j->body_len,
				      &j->err);
}

static int run_chan_close(thn_job *j, const thn_args *a)
{
	TH_UNUSED(a);
	thn_chan_close(j->chan);
	return 0;
}

const struct thn_cmd thn_cmd_chan_send = { "channel.send", run_chan_send, THN_CMD_CHUNK };
const struct thn_cmd thn_cmd_chan_close = { "channel.close", run_chan_close, THN_CMD_CHUNK };

/* ---- the table ---- */

static const struct thn_cmd cmds[] = {
	{ "metrics", cmd_metrics, 0 },
	{ "store.put", cmd_store_put, THN_CMD_UPLOAD },
	{ "store.get", cmd_store_get, 0 },
	{ "store.label", cmd_store_label, 0 },
	{ "store.resolve", cmd_store_resolve, 0 },
	{ "store.unlabel", cmd_store_unlabel, 0 },
	{ "store.labels", cmd_store_labels, 0 },
	{ "store.new", cmd_store_new, 0 },
	{ "store.stat", cmd_store_stat, 0 },
	{ "store.gc", cmd_store_gc, 0 },
	{ "store.verify", cmd_store_verify, 0 },
	{ "chain.list", cmd_chain_list, 0 },
	{ "chain.verify", cmd_chain_verify, 0 },
	{ "chain.append", cmd_chain_append, 0 },
	{ "events.get", cmd_events_get, 0 },
	{ "subscribe", cmd_subscribe, 0 },
	{ "actor.start", cmd_actor_start, 0 },
	{ "actor.stop", cmd_actor_stop, 0 },
	{ "actor.terminate", cmd_actor_terminate, 0 },
	{ "actor.restart", cmd_actor_restart, 0 },
	{ "actor.list", cmd_actor_list, 0 },
	{ "actor.tree", cmd_actor_tree, 0 },
	{ "actor.status", cmd_actor_status, 0 },
	{ "actor.send", cmd_actor_send, THN_CMD_LOOP_SEND },
	{ "actor.request", cmd_actor_request, 0 },
	{ "actor.state", cmd_actor_state, 0 },
	{ "actor.manifest", cmd_actor_manifest, 0 },
	{ "channel.open", cmd_channel_open, THN_CMD_CHANNEL },
};

const struct thn_cmd *thn_cmd_find(const char *op, size_t n)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(cmds); i++)
		if (strlen(cmds[i].op) == n && !memcmp(cmds[i].op, op, n))
			return &cmds[i];
	return NULL;
}
