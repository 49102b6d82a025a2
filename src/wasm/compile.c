/*
 * compile.c - validation and translation of function bodies, in one pass.
 *
 * The validator is the specification's algorithm (appendix "Validation
 * Algorithm"): an operand stack of value types, where type 0 is Unknown and
 * popping below the current frame's height in unreachable code yields
 * Unknown; a stack of control frames with their label types.
 *
 * Translation piggybacks on it. Every operand-stack entry also records the
 * frame slot where its value lives at run time:
 *   - natural: slot nlocals + height (the operand stack lives right above
 *     the locals in the frame, so heights known statically become fixed
 *     slot numbers: the code is "register" code over frame slots);
 *   - a local: `local.get x` emits nothing and pushes an entry whose slot
 *     is x; the consumer reads the local directly;
 *   - a pending constant: `i32.const k` emits nothing; a following binary
 *     operator with an immediate form (I32_ADD_K ...) takes k as an
 *     immediate, otherwise the constant is written to its natural slot
 *     just before its consumer.
 * A non-natural entry must be made natural ("materialised") before its
 * meaning could change: before `local.set x`/`local.tee x` for entries
 * naming x, and for every entry at block boundaries (so that no copy is
 * ever emitted conditionally) and before calls (arguments must be
 * contiguous). `local.set x` right after an instruction that produced the
 * value rewrites that instruction's destination to x instead of copying.
 *
 * Errors: malformed input returns TH_EINVAL through thw__rd_fail; invalid
 * input (a validation error) returns TH_ENOTFOUND with the message in
 * r->err, so that the decoder can prefer later decoding errors.
 */
#include "code.h"
#include "wasm_internal.h"

static int skip_imm(thw__rd *r, uint8_t b, int *depth);
static bool known_opcode(uint8_t b);

#define SLOT_CONST UINT32_MAX
#define NONE UINT32_MAX

typedef struct ventry {
	uint8_t type;
	uint32_t slot; /* frame slot, or SLOT_CONST */
	uint64_t k;    /* the pending constant */
} ventry;

enum { K_BLOCK, K_LOOP, K_IF, K_ELSE, K_FUNC };

typedef struct ctrl {
	uint8_t kind;
	bool unreachable;
	bool dead_at_entry; /* emission was already off when it began */
	uint32_t np, nr;
	const uint8_t *params, *results;
	uint32_t height;  /* operand height below the params */
	uint32_t target;  /* loop: code offset of its start */
	uint32_t patches; /* head of the pending forward-branch list */
	uint32_t if_cell; /* if: the BR_UNLESS to patch at else/end */
	uint32_t if_instr;
	uint32_t fuel_start; /* loop: fuel_total at its header */
} ctrl;

typedef struct patch {
	uint32_t cell, instr, next;
} patch;

typedef struct cx {
	thw_module *m;
	thw__rd *r;
	thw__cbuf *cb;
	const int32_t *H;
	uint8_t *lt; /* local types */
	uint32_t nlocals;
	ventry *st;
	uint32_t sh, scap, maxh;
	uint32_t npend; /* entries not in their natural slot */
	ctrl *cs;
	uint32_t ch, ccap;
	patch *pt;
	uint32_t npt, ptcap;
	bool dead; /* current code is unreachable: emit nothing */
	uint32_t last_dst, last_end;
	uint32_t fuel_total;   /* instructions read so far */
	uint32_t fuel_outside; /* ... of them outside any loop */
	uint32_t loops;        /* loops open */
	uint32_t last_start;   /* the last instruction emitted, for fusion */
	int last_op;
	uint32_t prev_start;   /* the one before it */
	int prev_op;
	uint32_t label_pos;    /* the latest position branches may land on */
	const uint8_t *at; /* start of the current instruction */
	uint8_t cur_op;    /* its opcode */
	uint32_t ch0;      /* control depth before it */
} cx;

static int verr(cx *c, const char *fmt, ...) TH_PRINTF(2, 3);
static int verr(cx *c, const char *fmt, ...)
{
	char reason[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	th_err_set(c->r->err, TH_ENOTFOUND, "code section at offset 0x%zx: %s",
		   (size_t)(c->at - c->r->base), reason);
	return TH_ENOTFOUND;
}

static int oom(cx *c)
{
	return th_err_set(c->r->err, TH_ENOMEM, "code section: out of memory");
}

/* ---- Code emission ------------------------------------------------------ */

static int reserve(cx *c, size_t n)
{
	thw__cbuf *b = c->cb;
	if (b->n + n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap * 2 : 1024;
	while (cap < b->n + n)
		cap *= 2;
	if (cap > (size_t)INT32_MAX / 2)
		return th_err_set(c->r->err, TH_ELIMIT, "code section: function code too large");
	uint32_t *p = th_realloc(b->c, cap * sizeof *p);
	if (!p)
		return oom(c);
	b->c = p;
	b->cap = cap;
	return 0;
}

/* Each emit reserves room first; instructions are at most 8 cells except
 * BR_TABLE, which reserves its own. */
#define EMIT_MAX 8

static uint32_t here(cx *c) { return (uint32_t)c->cb->n; }

static int op(cx *c, int o)
{
	c->last_dst = NONE;
	if (c->dead)
		return 0;
	int rc = reserve(c, EMIT_MAX);
	if (rc)
		return rc;
	c->prev_start = c->last_start;
	c->prev_op = c->last_op;
	c->last_start = here(c);
	c->last_op = o;
	c->cb->c[c->cb->n++] = (uint32_t)c->H[o];
	return 0;
}

static void imm(cx *c, uint32_t v)
{
	if (!c->dead)
		c->cb->c[c->cb->n++] = v;
}

/* Mark the cell just emitted as the destination of the instruction. */
static void dst_imm(cx *c, uint32_t v)
{
	if (c->dead)
		return;
	c->last_dst = here(c);
	c->cb->c[c->cb->n++] = v;
}

static void end_instr(cx *c)
{
	c->last_end = here(c);
}

/* ---- Operand stack ------------------------------------------------------- */

static uint32_t natural(cx *c, uint32_t h) { return c->nlocals + h; }

static int push_k(cx *c, uint8_t t, uint32_t slot, uint64_t k)
{
	if (c->sh == c->scap) {
		uint32_t cap = c->scap ? c->scap * 2 : 64;
		ventry *p = th_realloc(c->st, cap * sizeof *p);
		if (!p)
			return oom(c);
		c->st = p;
		c->scap = cap;
	}
	if (slot != natural(c, c->sh))
		c->npend++;
	c->st[c->sh++] = (ventry){ t, slot, k };
	if (c->sh > c->maxh)
		c->maxh = c->sh;
	return 0;
}

static int push(cx *c, uint8_t t) { return push_k(c, t, natural(c, c->sh), 0); }

/* Emit the code that puts entry h in its natural slot. */
static int materialise_at(cx *c, uint32_t h)
{
	ventry *e = &c->st[h];
	uint32_t nat = natural(c, h);
	if (e->slot == nat)
		return 0;
	int rc;
	if (e->slot == SLOT_CONST) {
		bool wide = e->type == THW_I64 || e->type == THW_F64 ||
			    e->type == THW_FUNCREF || e->type == THW_EXTERNREF;
		if ((rc = op(c, wide ? THW__OP_CONST64 : THW__OP_CONST32)))
			return rc;
		imm(c, nat);
		imm(c, (uint32_t)e->k);
		if (wide)
			imm(c, (uint32_t)(e->k >> 32));
	} else {
		if ((rc = op(c, THW__OP_COPY)))
			return rc;
		imm(c, nat);
		imm(c, e->slot);
	}
	end_instr(c);
	e->slot = nat;
	c->npend--;
	return 0;
}

static int materialise_from(cx *c, uint32_t from)
{
	if (!c->npend)
		return 0;
	for (uint32_t h = from; h < c->sh && c->npend; h++) {
		int rc = materialise_at(c, h);
		if (rc)
			return rc;
	}
	return 0;
}

static int materialise_local(cx *c, uint32_t x)
{
	if (!c->npend)
		return 0;
	for (uint32_t h = 0; h < c->sh; h++)
		if (c->st[h].slot == x) {
			int rc = materialise_at(c, h);
			if (rc)
				return rc;
		}
	return 0;
}

static ctrl *top(cx *c) { return &c->cs[c->ch - 1]; }

/* Pop an operand of type `expect` (0: any). The entry is returned as it
 * was (possibly a local or pending constant). */
static int pop_raw(cx *c, uint8_t expect, ventry *out)
{
	ctrl *f = top(c);
	if (c->sh == f->height) {
		if (f->unreachable) {
			*out = (ventry){ expect, natural(c, c->sh), 0 };
			return 0;
		}
		return verr(c, "type mismatch");
	}
	ventry e = c->st[--c->sh];
	if (e.slot != natural(c, c->sh))
		c->npend--;
	if (expect && e.type && e.type != expect)
		return verr(c, "type mismatch");
	if (!e.type)
		e.type = expect;
	*out = e;
	return 0;
}

/* Pop and return the slot holding the value (constants are written to
 * their natural slot first). */
static int pop_slot(cx *c, uint8_t expect, uint32_t *slot, uint8_t *type)
{
	ventry e;
	int rc = pop_raw(c, expect, &e);
	if (rc)
		return rc;
	if (e.slot == SLOT_CONST) {
		/* Re-push transiently to reuse materialise_at. */
		c->st[c->sh] = e;
		c->npend++;
		if ((rc = materialise_at(c, c->sh)))
			return rc;
		e.slot = natural(c, c->sh);
	}
	*slot = e.slot;
	if (type)
		*type = e.type;
	return 0;
}

/* The bulk operations (memory.init/copy/fill, table.init/copy) pop three
 * i32 operands - destination, source (or fill value), length - and are
 * emitted as the op, its nidx leading indices (i0, i1), then the three
 * operand slots in that order. */
static int bulk_op(cx *c, int opcode, int nidx, uint32_t i0, uint32_t i1)
{
	uint32_t n, s, d;
	int rc;
	if ((rc = pop_slot(c, THW_I32, &n, NULL)) ||
	    (rc = pop_slot(c, THW_I32, &s, NULL)) ||
	    (rc = pop_slot(c, THW_I32, &d, NULL)))
		return rc;
	if ((rc = op(c, opcode)))
		return rc;
	if (nidx > 0)
		imm(c, i0);
	if (nidx > 1)
		imm(c, i1);
	imm(c, d);
	imm(c, s);
	imm(c, n);
	end_instr(c);
	return 0;
}

static int pop_vals(cx *c, uint32_t n, const uint8_t *types)
{
	for (uint32_t i = n; i-- > 0;) {
		ventry e;
		int rc = pop_raw(c, types[i], &e);
		if (rc)
			return rc;
	}
	return 0;
}

static int push_vals(cx *c, uint32_t n, const uint8_t *types)
{
	for (uint32_t i = 0; i < n; i++) {
		int rc = push(c, types[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static void set_unreachable(cx *c)
{
	ctrl *f = top(c);
	while (c->sh > f->height) {
		c->sh--;
		if (c->st[c->sh].slot != natural(c, c->sh))
			c->npend--;
	}
	f->unreachable = true;
	c->dead = true;
}

/* ---- Control --------------------------------------------------------------- */

static int add_patch(cx *c, ctrl *f, uint32_t cell, uint32_t instr)
{
	if (c->dead)
		return 0;
	if (c->npt == c->ptcap) {
		uint32_t cap = c->ptcap ? c->ptcap * 2 : 64;
		patch *p = th_realloc(c->pt, cap * sizeof *p);
		if (!p)
			return oom(c);
		c->pt = p;
		c->ptcap = cap;
	}
	c->pt[c->npt] = (patch){ cell, instr, f->patches };
	f->patches = c->npt++;
	return 0;
}

static void resolve_patches(cx *c, ctrl *f, uint32_t target)
{
	for (uint32_t i = f->patches; i != NONE; i = c->pt[i].next)
		c->cb->c[c->pt[i].cell] = (uint32_t)(int32_t)(target - c->pt[i].instr);
	f->patches = NONE;
}

/* The fuel a taken branch to f charges: a back-edge pays for the loop
 * body read so far; forward branches pay nothing (the function entry and
 * the back-edges bound all execution). */
static uint32_t branch_fuel(cx *c, ctrl *f)
{
	if (f->kind != K_LOOP)
		return 0;
	uint32_t n = c->fuel_total - f->fuel_start;
	return n ? n : 1;
}

/* Target cells of a branch to f at instruction `instr`: rel, fuel. */
static int branch_target(cx *c, ctrl *f, uint32_t instr)
{
	int rc;
	if (f->kind == K_LOOP) {
		imm(c, (uint32_t)(int32_t)(f->target - instr));
	} else {
		if ((rc = add_patch(c, f, here(c), instr)))
			return rc;
		imm(c, 0);
	}
	imm(c, branch_fuel(c, f));
	return 0;
}

static uint32_t label_arity(ctrl *f, const uint8_t **types)
{
	if (f->kind == K_LOOP) {
		*types = f->params;
		return f->np;
	}
	*types = f->results;
	return f->nr;
}

/* Move the top n operands to the label's slots; false if nothing moves. */
static int emit_label_moves(cx *c, ctrl *f, uint32_t n)
{
	if (c->dead)
		return 0;
	uint32_t base = natural(c, f->height);
	uint32_t first = c->sh - n;
	for (uint32_t i = 0; i < n; i++) {
		ventry *e = &c->st[first + i];
		uint32_t d = base + i;
		if (e->slot == d)
			continue;
		int rc;
		if (e->slot == SLOT_CONST) {
			bool wide = e->type == THW_I64 || e->type == THW_F64 ||
				    e->type == THW_FUNCREF || e->type == THW_EXTERNREF;
			if ((rc = op(c, wide ? THW__OP_CONST64 : THW__OP_CONST32)))
				return rc;
			imm(c, d);
			imm(c, (uint32_t)e->k);
			if (wide)
				imm(c, (uint32_t)(e->k >> 32));
		} else {
			if ((rc = op(c, THW__OP_COPY)))
				return rc;
			imm(c, d);
			imm(c, e->slot);
		}
	}
	return 0;
}

static bool label_needs_moves(cx *c, ctrl *f, uint32_t n)
{
	if (c->dead)
		return false;
	uint32_t base = natural(c, f->height);
	uint32_t first = c->sh - n;
	for (uint32_t i = 0; i < n; i++)
		if (c->st[first + i].slot != base + i)
			return true;
	return false;
}

/* Unconditional jump to label f (after moves). */
static int emit_jump(cx *c, ctrl *f)
{
	int rc;
	if ((rc = op(c, THW__OP_BR)))
		return rc;
	return branch_target(c, f, here(c) - 1);
}

static int read_blocktype(cx *c, ctrl *f)
{
	static const uint8_t one[6][1] = { { THW_I32 }, { THW_I64 }, { THW_F32 },
					   { THW_F64 }, { THW_FUNCREF }, { THW_EXTERNREF } };
	const uint8_t *at = c->r->p;
	int64_t bt;
	int rc = thw__rd_s33(c->r, &bt);
	if (rc)
		return rc;
	f->np = f->nr = 0;
	f->params = f->results = NULL;
	if (bt == -64)
		return 0;
	if (bt < 0) {
		uint8_t t = (uint8_t)(bt & 0x7f);
		int i = t == THW_I32 ? 0 : t == THW_I64 ? 1 : t == THW_F32 ? 2 :
			t == THW_F64 ? 3 : t == THW_FUNCREF ? 4 : t == THW_EXTERNREF ? 5 : -1;
		if (t == THW_V128)
			return thw__rd_fail(c->r, at, "unsupported feature: simd");
		if (i < 0)
			return thw__rd_fail(c->r, at, "malformed value type");
		f->nr = 1;
		f->results = one[i];
		return 0;
	}
	if ((uint64_t)bt >= c->m->ntypes)
		return verr(c, "unknown type %lld", (long long)bt);
	const thw__ftype *ft = &c->m->types[bt];
	f->np = ft->np;
	f->nr = ft->nr;
	f->params = ft->p;
	f->results = ft->p + ft->np;
	return 0;
}

static int push_ctrl(cx *c, ctrl *nf)
{
	if (c->ch == c->ccap) {
		uint32_t cap = c->ccap ? c->ccap * 2 : 16;
		ctrl *p = th_realloc(c->cs, cap * sizeof *p);
		if (!p)
			return oom(c);
		c->cs = p;
		c->ccap = cap;
	}
	nf->unreachable = false;
	if (nf->kind != K_IF)
		nf->if_cell = NONE;
	nf->dead_at_entry = c->dead;
	nf->patches = NONE;
	nf->height = c->sh - nf->np;
	c->cs[c->ch++] = *nf;
	return 0;
}

/* Validate the end of the current frame's body: exactly its results. */
static int check_frame_end(cx *c)
{
	ctrl *f = top(c);
	int rc = pop_vals(c, f->nr, f->results);
	if (rc)
		return rc;
	if (c->sh != f->height)
		return verr(c, "type mismatch");
	return 0;
}

/* ---- Immediates ------------------------------------------------------------ */

static int rd_idx(cx *c, uint32_t *v) { return thw__rd_u32(c->r, v); }

static int zero_byte(cx *c)
{
	uint8_t b;
	const uint8_t *at = c->r->p;
	int rc = thw__rd_u8(c->r, &b);
	if (rc)
		return rc;
	if (b)
		return thw__rd_fail(c->r, at, "zero byte expected");
	return 0;
}

static int memarg(cx *c, unsigned natural_log2, uint32_t *offset)
{
	uint32_t align;
	int rc;
	if ((rc = thw__rd_u32(c->r, &align)) || (rc = thw__rd_u32(c->r, offset)))
		return rc;
	if (!c->m->nmems)
		return verr(c, "unknown memory 0");
	if (align > natural_log2)
		return verr(c, "alignment must not be larger than natural");
	return 0;
}

static uint8_t local_type(cx *c, uint32_t x) { return c->lt[x]; }

/* ---- Instruction tables -------------------------------------------------- */

typedef struct numop {
	uint16_t op;
	uint8_t a, b, r;
} numop;

static numop num_main[256];
static numop num_fc[8];
static int16_t imm_form[THW__OP_COUNT];   /* op -> _K op, or -1 */
static int16_t brcmp_form[THW__OP_COUNT]; /* compare op -> BR_ op, or -1 */
static int16_t neg_cmp[THW__OP_COUNT];    /* compare op -> its negation */
static int16_t lop_form[THW__OP_COUNT];   /* op -> load-operand form, or -1 */
static int16_t add_br_form[THW__OP_COUNT]; /* BR_<cmp>_K -> ADD_BR_<cmp>_K */
static int16_t lop_load[THW__OP_COUNT];   /* op -> the load it fuses */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void)
{
#define X(n, o, ta, tb, tr)                                                       \
	if ((o) >= 0xfc00)                                                        \
		num_fc[(o) & 0xff] = (numop){ THW__OP_##n, THW__T_##ta, THW__T_##tb, THW__T_##tr }; \
	else                                                                      \
		num_main[(o) & 0xff] = (numop){ THW__OP_##n, THW__T_##ta, THW__T_##tb, THW__T_##tr };
	THW__NUMOPS(X)
#undef X
	for (int i = 0; i < THW__OP_COUNT; i++)
		imm_form[i] = brcmp_form[i] = lop_form[i] = lop_load[i] = add_br_form[i] = -1;
#define X(n, br) add_br_form[THW__OP_##br] = THW__OP_##n;
	THW__ADDBR(X)
#undef X
#define X(n, base, ld) lop_form[THW__OP_##base] = THW__OP_##n; lop_load[THW__OP_##base] = THW__OP_##ld;
	THW__LOADOPS(X)
#undef X
#define X(n, base) imm_form[THW__OP_##base] = THW__OP_##n;
	THW__IMMOPS(X)
#undef X
#define X(n, base) brcmp_form[THW__OP_##base] = THW__OP_##n;
	THW__BRCMP(X)
	THW__BRCMPK(X)
#undef X
	static const int16_t pairs[][2] = {
		{ THW__OP_I32_EQ, THW__OP_I32_NE }, { THW__OP_I32_LT_S, THW__OP_I32_GE_S },
		{ THW__OP_I32_LT_U, THW__OP_I32_GE_U }, { THW__OP_I32_GT_S, THW__OP_I32_LE_S },
		{ THW__OP_I32_GT_U, THW__OP_I32_LE_U },
		{ THW__OP_I32_EQ_K, THW__OP_I32_NE_K }, { THW__OP_I32_LT_S_K, THW__OP_I32_GE_S_K },
		{ THW__OP_I32_LT_U_K, THW__OP_I32_GE_U_K }, { THW__OP_I32_GT_S_K, THW__OP_I32_LE_S_K },
		{ THW__OP_I32_GT_U_K, THW__OP_I32_LE_U_K },
		{ THW__OP_I32_EQZ, THW__OP_BR_I32_NEZ }, { THW__OP_I64_EQZ, THW__OP_BR_I64_NEZ },
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(pairs); i++) {
		neg_cmp[pairs[i][0]] = pairs[i][1];
		neg_cmp[pairs[i][1]] = pairs[i][0];
	}
	brcmp_form[THW__OP_I32_EQZ] = THW__OP_BR_I32_EQZ;
	brcmp_form[THW__OP_I64_EQZ] = THW__OP_BR_I64_EQZ;
}

/* ---- Body ------------------------------------------------------------------ */

static int numeric(cx *c, const numop *n)
{
	int rc;
	if (n->b) {
		ventry eb;
		if ((rc = pop_raw(c, n->b, &eb)))
			return rc;
		/* Array indexing, a + (x << k), from i32.shl by a constant
		 * just emitted and an i32.add. */
		if (n->op == THW__OP_I32_ADD && !c->dead && c->last_op == THW__OP_I32_SHL_K &&
		    c->last_dst != NONE && c->last_end == here(c) && c->sh > top(c)->height) {
			uint32_t shl_d = c->cb->c[c->last_dst];
			ventry *ea = &c->st[c->sh - 1];
			uint32_t other = NONE;
			if (eb.slot == natural(c, c->sh) && shl_d == eb.slot &&
			    ea->slot != SLOT_CONST)
				other = ea->slot; /* a + (x << k) */
			else if (eb.slot != SLOT_CONST && ea->slot == natural(c, c->sh - 1) &&
				 shl_d == ea->slot)
				other = eb.slot; /* (x << k) + b, b a local */
			if (other != NONE) {
				uint32_t x = c->cb->c[c->last_start + 2];
				uint32_t k = c->cb->c[c->last_start + 3];
				c->cb->n = c->last_start;
				c->last_dst = NONE;
				ventry drop;
				if ((rc = pop_raw(c, THW_I32, &drop)))
					return rc;
				uint32_t d = natural(c, c->sh);
				if ((rc = op(c, THW__OP_I32_ADD_SHL)))
					return rc;
				dst_imm(c, d);
				imm(c, other);
				imm(c, x);
				imm(c, k);
				end_instr(c);
				return push(c, THW_I32);
			}
		}
		/* (x << k) + constant */
		if (n->op == THW__OP_I32_ADD && eb.slot == SLOT_CONST && !c->dead &&
		    c->last_op == THW__OP_I32_SHL_K && c->last_dst != NONE &&
		    c->last_end == here(c) && c->sh > top(c)->height &&
		    c->st[c->sh - 1].slot == natural(c, c->sh - 1) &&
		    c->cb->c[c->last_dst] == natural(c, c->sh - 1)) {
			uint32_t x = c->cb->c[c->last_start + 2];
			uint32_t k = c->cb->c[c->last_start + 3];
			c->cb->n = c->last_start;
			c->last_dst = NONE;
			ventry drop;
			if ((rc = pop_raw(c, THW_I32, &drop)))
				return rc;
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, THW__OP_I32_SHL_ADD_K)))
				return rc;
			dst_imm(c, d);
			imm(c, x);
			imm(c, k);
			imm(c, (uint32_t)eb.k);
			end_instr(c);
			return push(c, THW_I32);
		}
		/* Immediate form when the right operand is a pending constant. */
		if (eb.slot == SLOT_CONST && imm_form[n->op] >= 0) {
			uint32_t sa;
			if ((rc = pop_slot(c, n->a, &sa, NULL)))
				return rc;
			uint32_t d = natural(c, c->sh);
			bool wide = n->a == THW_I64;
			if ((rc = op(c, imm_form[n->op])))
				return rc;
			dst_imm(c, d);
			imm(c, sa);
			imm(c, (uint32_t)eb.k);
			if (wide)
				imm(c, (uint32_t)(eb.k >> 32));
			end_instr(c);
			return push(c, n->r);
		}
		/* Load-operand form when b was just loaded by a plain load. */
		if (lop_form[n->op] >= 0 && !c->dead && c->last_op == lop_load[n->op] &&
		    c->last_dst != NONE && c->last_end == here(c) &&
		    eb.slot == natural(c, c->sh) && c->cb->c[c->last_dst] == eb.slot) {
			uint32_t addr = c->cb->c[c->last_start + 2];
			uint32_t off = c->cb->c[c->last_start + 3];
			c->cb->n = c->last_start;
			c->last_dst = NONE;
			uint32_t sa;
			if ((rc = pop_slot(c, n->a, &sa, NULL)))
				return rc;
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, lop_form[n->op])))
				return rc;
			dst_imm(c, d);
			imm(c, sa);
			imm(c, addr);
			imm(c, off);
			end_instr(c);
			return push(c, n->r);
		}
		if (eb.slot == SLOT_CONST) {
			c->st[c->sh] = eb;
			c->npend++;
			if ((rc = materialise_at(c, c->sh)))
				return rc;
			eb.slot = natural(c, c->sh);
		}
		uint32_t sa;
		if ((rc = pop_slot(c, n->a, &sa, NULL)))
			return rc;
		uint32_t d = natural(c, c->sh);
		if ((rc = op(c, n->op)))
			return rc;
		dst_imm(c, d);
		imm(c, sa);
		imm(c, eb.slot);
		end_instr(c);
		return push(c, n->r);
	}
	uint32_t sa;
	if ((rc = pop_slot(c, n->a, &sa, NULL)))
		return rc;
	uint32_t d = natural(c, c->sh);
	if ((rc = op(c, n->op)))
		return rc;
	dst_imm(c, d);
	imm(c, sa);
	end_instr(c);
	return push(c, n->r);
}

/* Emit the opcode and condition operands of a branch taken when slot
 * `cond` is non-zero (zero when `negate`); the caller appends [rel][fuel].
 * A comparison emitted just before that produced `cond` is fused into the
 * branch (BR_I32_LT_S a b ..., BR_I32_EQZ a ...). */
static int cond_branch(cx *c, uint32_t cond, bool negate)
{
	int rc;
	if (!c->dead && c->last_dst != NONE && c->last_end == here(c) &&
	    cond == natural(c, c->sh) && c->cb->c[c->last_dst] == cond &&
	    brcmp_form[c->last_op] >= 0) {
		int lo = c->last_op;
		uint32_t st = c->last_start;
		bool unary = lo == THW__OP_I32_EQZ || lo == THW__OP_I64_EQZ;
		uint32_t a = c->cb->c[st + 2], b = unary ? 0 : c->cb->c[st + 3];
		int fused;
		if (unary)
			fused = negate ? neg_cmp[lo] : brcmp_form[lo];
		else
			fused = brcmp_form[negate ? neg_cmp[lo] : lo];
		/* A counter step just before: x = y + inc; branch on x
		 * against a constant (the usual loop tail), when no label
		 * lies between the two. */
		if (add_br_form[fused] >= 0 && c->prev_op == THW__OP_I32_ADD_K &&
		    c->prev_start + 4 == st && c->label_pos != st &&
		    c->cb->c[c->prev_start + 1] == a) {
			uint32_t ps = c->prev_start;
			uint32_t y = c->cb->c[ps + 2], inc = c->cb->c[ps + 3];
			c->cb->n = ps;
			if ((rc = op(c, add_br_form[fused])))
				return rc;
			imm(c, a);
			imm(c, y);
			imm(c, inc);
			imm(c, b);
			return 0;
		}
		c->cb->n = st;
		if ((rc = op(c, fused)))
			return rc;
		imm(c, a);
		if (!unary)
			imm(c, b);
		return 0;
	}
	if ((rc = op(c, negate ? THW__OP_BR_UNLESS : THW__OP_BR_IF)))
		return rc;
	imm(c, cond);
	return 0;
}

/* Is this the instruction that produced the top operand, just emitted?
 * Then its destination cell can be rewritten. */
static bool can_retarget(cx *c)
{
	return !c->dead && c->last_dst != NONE && c->last_end == here(c) &&
	       c->sh > top(c)->height &&
	       c->st[c->sh - 1].slot == natural(c, c->sh - 1) &&
	       c->cb->c[c->last_dst] == natural(c, c->sh - 1);
}

static int local_set(cx *c, uint32_t x, bool tee)
{
	int rc;
	uint8_t t = local_type(c, x);
	if (c->sh == top(c)->height && !top(c)->unreachable)
		return verr(c, "type mismatch");
	if (can_retarget(c) && c->st[c->sh - 1].type == t) {
		/* No entry may still name the old value of x. */
		bool named = false;
		if (c->npend)
			for (uint32_t h = 0; h < c->sh; h++)
				if (c->st[h].slot == x)
					named = true;
		if (!named) {
			c->cb->c[c->last_dst] = x;
			c->last_dst = NONE;
			ventry e;
			if ((rc = pop_raw(c, t, &e)))
				return rc;
			return tee ? push_k(c, t, x, 0) : 0;
		}
	}
	ventry e;
	if ((rc = pop_raw(c, t, &e)))
		return rc;
	if ((rc = materialise_local(c, x)))
		return rc;
	if (e.slot == SLOT_CONST) {
		bool wide = t == THW_I64 || t == THW_F64 || t == THW_FUNCREF ||
			    t == THW_EXTERNREF;
		if ((rc = op(c, wide ? THW__OP_CONST64 : THW__OP_CONST32)))
			return rc;
		imm(c, x);
		imm(c, (uint32_t)e.k);
		if (wide)
			imm(c, (uint32_t)(e.k >> 32));
		end_instr(c);
	} else if (e.slot != x) {
		if ((rc = op(c, THW__OP_COPY)))
			return rc;
		imm(c, x);
		imm(c, e.slot);
		end_instr(c);
	}
	return tee ? push_k(c, t, x, 0) : 0;
}

/* Check, without popping, that the top n operands have these types (the
 * frame's polymorphic base supplies Unknowns when unreachable). */
static int check_top(cx *c, uint32_t n, const uint8_t *types)
{
	ctrl *t = top(c);
	for (uint32_t k = 0; k < n; k++) {
		uint8_t want = types[n - 1 - k];
		if (c->sh < t->height + k + 1) {
			if (!t->unreachable)
				return verr(c, "type mismatch");
			continue;
		}
		uint8_t have = c->st[c->sh - 1 - k].type;
		if (have && have != want)
			return verr(c, "type mismatch");
	}
	return 0;
}

/* Typing of "pop these, push them back" (block params, br_if): in dead
 * code literally (Unknowns become typed), otherwise a check in place so the
 * entries keep their slots. */
static int retype_top(cx *c, uint32_t n, const uint8_t *types)
{
	if (!c->dead)
		return check_top(c, n, types);
	int rc = pop_vals(c, n, types);
	return rc ? rc : push_vals(c, n, types);
}

static int label_at(cx *c, uint32_t depth, ctrl **f)
{
	if (depth >= c->ch)
		return verr(c, "unknown label");
	*f = &c->cs[c->ch - 1 - depth];
	return 0;
}

static int br_to(cx *c, uint32_t depth)
{
	ctrl *f = NULL;
	int rc = label_at(c, depth, &f);
	if (rc)
		return rc;
	const uint8_t *types;
	uint32_t n = label_arity(f, &types);
	return check_top(c, n, types);
}

/* Call arguments: checked, made natural (contiguous), then popped. */
static int take_args(cx *c, const thw__ftype *ft)
{
	int rc;
	if (c->dead)
		return pop_vals(c, ft->np, ft->p);
	if ((rc = check_top(c, ft->np, ft->p)))
		return rc;
	if ((rc = materialise_from(c, c->sh - ft->np)))
		return rc;
	c->sh -= ft->np;
	return 0;
}

static int ref_type_ok(uint8_t t)
{
	return t == THW_FUNCREF || t == THW_EXTERNREF || t == THW__UNKNOWN;
}

/* A data segment index. Without a data count section the segments are
 * unknown here; the decoder turns this into the malformed "data count
 * section required" if a data section follows. */
static int data_index(cx *c, uint32_t seg)
{
	if (!c->m->has_datacount) {
		c->m->needs_datacount = true;
		return verr(c, "unknown data segment %u", seg);
	}
	if (seg >= c->m->datacount)
		return verr(c, "unknown data segment %u", seg);
	return 0;
}

static int table_of(cx *c, uint32_t t)
{
	if (t >= c->m->ntables)
		return verr(c, "unknown table %u", t);
	return 0;
}

static int body(cx *c)
{
	thw__rd *r = c->r;
	thw_module *m = c->m;
	int rc = 0;
	while (c->ch) {
		c->at = r->p;
		uint8_t b;
		if ((rc = thw__rd_u8(r, &b)))
			return rc;
		c->cur_op = b;
		c->ch0 = c->ch;
		c->fuel_total++;
		if (!c->loops)
			c->fuel_outside++;
		switch (b) {
		case 0x00: /* unreachable */
			if ((rc = op(c, THW__OP_UNREACHABLE)))
				return rc;
			set_unreachable(c);
			break;
		case 0x01: /* nop */
			break;
		case 0x02: case 0x03: { /* block, loop */
			ctrl nf = { .kind = b == 0x02 ? K_BLOCK : K_LOOP };
			if ((rc = read_blocktype(c, &nf)))
				return rc;
			if ((rc = retype_top(c, nf.np, nf.params)))
				return rc;
			if ((rc = materialise_from(c, 0)))
				return rc;
			if ((rc = push_ctrl(c, &nf)))
				return rc;
			if (b == 0x03) {
				top(c)->target = here(c);
				top(c)->fuel_start = c->fuel_total;
				c->loops++;
				c->last_dst = NONE;
			c->label_pos = here(c);
			}
			break;
		}
		case 0x04: { /* if */
			ctrl nf = { .kind = K_IF };
			if ((rc = read_blocktype(c, &nf)))
				return rc;
			uint32_t cond;
			if ((rc = pop_slot(c, THW_I32, &cond, NULL)))
				return rc;
			if ((rc = retype_top(c, nf.np, nf.params)))
				return rc;
			if ((rc = materialise_from(c, 0)))
				return rc;
			if ((rc = cond_branch(c, cond, true)))
				return rc;
			nf.if_instr = c->last_start;
			nf.if_cell = c->dead ? NONE : here(c);
			imm(c, 0);
			imm(c, 0);
			end_instr(c);
			if ((rc = push_ctrl(c, &nf)))
				return rc;
			break;
		}
		case 0x05: { /* else */
			ctrl *f = top(c);
			if (f->kind != K_IF)
				return thw__rd_fail(r, c->at, "else without if");
			if ((rc = materialise_from(c, f->height)))
				return rc;
			if ((rc = check_frame_end(c)))
				return rc;
			if ((rc = emit_jump(c, f)))
				return rc;
			if (f->if_cell != NONE)
				c->cb->c[f->if_cell] = (uint32_t)(int32_t)(here(c) - f->if_instr);
			f->if_cell = NONE;
			f->kind = K_ELSE;
			f->unreachable = false;
			c->dead = f->dead_at_entry;
			c->sh = f->height;
			if ((rc = push_vals(c, f->np, f->params)))
				return rc;
			c->last_dst = NONE;
			c->label_pos = here(c);
			break;
		}
		case 0x0b: { /* end */
			ctrl *f = top(c);
			if ((rc = materialise_from(c, f->height)))
				return rc;
			if ((rc = check_frame_end(c)))
				return rc;
			if (f->kind == K_IF && f->np != f->nr)
				return verr(c, "type mismatch");
			if (f->kind == K_IF) {
				/* An if without else: params pass through. */
				for (uint32_t i = 0; i < f->np; i++)
					if (f->params[i] != f->results[i])
						return verr(c, "type mismatch");
			}
			if (f->kind == K_FUNC) {
				if (!c->dead) {
					if ((rc = op(c, THW__OP_RETURN)))
						return rc;
					imm(c, natural(c, f->height));
					imm(c, f->nr);
				}
				c->ch--;
				break;
			}
			bool had_jumps = f->patches != NONE || f->if_cell != NONE;
			if (f->if_cell != NONE)
				c->cb->c[f->if_cell] = (uint32_t)(int32_t)(here(c) - f->if_instr);
			resolve_patches(c, f, here(c));
			if (f->kind == K_LOOP)
				c->loops--;
			uint32_t h = f->height;
			uint32_t nr = f->nr;
			const uint8_t *res = f->results;
			/* Code after the end is live if the end is reached by
			 * fallthrough or by a branch. */
			c->dead = f->dead_at_entry || (f->unreachable && !had_jumps);
			c->ch--;
			c->sh = h;
			if ((rc = push_vals(c, nr, res)))
				return rc;
			c->last_dst = NONE;
			c->label_pos = here(c);
			break;
		}
		case 0x0c: { /* br */
			uint32_t d;
			if ((rc = rd_idx(c, &d)) || (rc = br_to(c, d)))
				return rc;
			ctrl *f = &c->cs[c->ch - 1 - d];
			const uint8_t *ty;
			uint32_t n = label_arity(f, &ty);
			if (f->kind == K_FUNC) {
				if ((rc = materialise_from(c, c->sh >= n ? c->sh - n : 0)))
					return rc;
				if ((rc = op(c, THW__OP_RETURN)))
					return rc;
				imm(c, natural(c, c->sh - n));
				imm(c, n);
			} else {
				if ((rc = emit_label_moves(c, f, n)) || (rc = emit_jump(c, f)))
					return rc;
			}
			set_unreachable(c);
			break;
		}
		case 0x0d: { /* br_if */
			uint32_t d, cond;
			if ((rc = rd_idx(c, &d)))
				return rc;
			if ((rc = pop_slot(c, THW_I32, &cond, NULL)) || (rc = br_to(c, d)))
				return rc;
			ctrl *f = &c->cs[c->ch - 1 - d];
			const uint8_t *ty;
			uint32_t n = label_arity(f, &ty);
			if ((rc = retype_top(c, n, ty)))
				return rc;
			if (c->dead)
				break;
			if (f->kind == K_FUNC) {
				/* br_if to the function label: conditional return */
				if ((rc = materialise_from(c, c->sh - n)))
					return rc;
				if ((rc = cond_branch(c, cond, true)))
					return rc;
				uint32_t instr = c->last_start;
				uint32_t skip = here(c);
				imm(c, 0);
				imm(c, 0);
				if ((rc = op(c, THW__OP_RETURN)))
					return rc;
				imm(c, natural(c, c->sh - n));
				imm(c, n);
				c->cb->c[skip] = here(c) - instr;
			} else if (!label_needs_moves(c, f, n)) {
				if ((rc = cond_branch(c, cond, false)))
					return rc;
				if ((rc = branch_target(c, f, c->last_start)))
					return rc;
			} else {
				if ((rc = cond_branch(c, cond, true)))
					return rc;
				uint32_t instr = c->last_start;
				uint32_t skip = here(c);
				imm(c, 0);
				imm(c, 0);
				if ((rc = emit_label_moves(c, f, n)) || (rc = emit_jump(c, f)))
					return rc;
				c->cb->c[skip] = here(c) - instr;
			}
			end_instr(c);
			c->last_dst = NONE;
			c->label_pos = here(c);
			break;
		}
		case 0x0e: { /* br_table */
			uint32_t n;
			if ((rc = thw__rd_u32(r, &n)))
				return rc;
			if (n > (size_t)(r->end - r->p))
				return thw__rd_fail(r, r->p, "unexpected end");
			uint32_t *ds = th_malloc(((size_t)n + 1) * sizeof *ds);
			if (!ds)
				return oom(c);
			for (uint32_t i = 0; i <= n && !rc; i++)
				rc = rd_idx(c, &ds[i]);
			uint32_t idx = 0;
			if (!rc)
				rc = pop_slot(c, THW_I32, &idx, NULL);
			ctrl *df = NULL;
			const uint8_t *dty = NULL;
			uint32_t arity = 0;
			if (!rc)
				rc = label_at(c, ds[n], &df);
			if (!rc)
				arity = label_arity(df, &dty);
			/* Every target takes the operands (same arity, types). */
			for (uint32_t i = 0; i <= n && !rc; i++) {
				ctrl *f = NULL;
				const uint8_t *ty;
				if ((rc = label_at(c, ds[i], &f)))
					break;
				if (label_arity(f, &ty) != arity) {
					rc = verr(c, "type mismatch");
					break;
				}
				/* as the spec's pop/push of the actual
				 * operands: the stack is dropped after */
				rc = check_top(c, arity, ty);
			}
			if (!rc && !c->dead) {
				rc = materialise_from(c, c->sh - arity);
				if (!rc)
					rc = reserve(c, (size_t)n + 8);
				uint32_t instr = here(c);
				if (!rc && !(rc = op(c, THW__OP_BR_TABLE))) {
					imm(c, idx);
					imm(c, n);
					uint32_t tab = here(c);
					c->cb->n += (size_t)n + 1;
					for (uint32_t i = 0; i <= n && !rc; i++) {
						ctrl *f = &c->cs[c->ch - 1 - ds[i]];
						if (f->kind == K_FUNC) {
							c->cb->c[tab + i] = here(c) - instr;
							if (!(rc = op(c, THW__OP_RETURN))) {
								imm(c, natural(c, c->sh - arity));
								imm(c, arity);
							}
						} else if (f->kind == K_LOOP || label_needs_moves(c, f, arity)) {
							c->cb->c[tab + i] = here(c) - instr;
							rc = emit_label_moves(c, f, arity);
							if (!rc)
								rc = emit_jump(c, f);
						} else {
							rc = add_patch(c, f, tab + i, instr);
						}
					}
				}
			}
			th_free(ds);
			if (rc)
				return rc;
			set_unreachable(c);
			break;
		}
		case 0x0f: { /* return */
			ctrl *f = &c->cs[0];
			if ((rc = br_to(c, c->ch - 1)))
				return rc;
			if (!c->dead) {
				if ((rc = materialise_from(c, c->sh - f->nr)))
					return rc;
				if ((rc = op(c, THW__OP_RETURN)))
					return rc;
				imm(c, natural(c, c->sh - f->nr));
				imm(c, f->nr);
			}
			set_unreachable(c);
			break;
		}
		case 0x10: { /* call */
			uint32_t fi;
			if ((rc = rd_idx(c, &fi)))
				return rc;
			if (fi >= m->nfuncs)
				return verr(c, "unknown function %u", fi);
			const thw__ftype *ft = thw__func_type(m, fi);
			if ((rc = take_args(c, ft)))
				return rc;
			if ((rc = op(c, fi >= m->nfunc_imports ? THW__OP_CALL_LOCAL : THW__OP_CALL)))
				return rc;
			imm(c, fi);
			imm(c, natural(c, c->sh));
			end_instr(c);
			if ((rc = push_vals(c, ft->nr, ft->p + ft->np)))
				return rc;
			/* the callee's frame needs room above: the results */
			break;
		}
		case 0x11: { /* call_indirect */
			uint32_t ti, tab, idx;
			if ((rc = rd_idx(c, &ti)) || (rc = rd_idx(c, &tab)))
				return rc;
			if ((rc = table_of(c, tab)))
				return rc;
			if (ti >= m->ntypes)
				return verr(c, "unknown type %u", ti);
			if (m->tables[tab].elem != THW_FUNCREF)
				return verr(c, "type mismatch");
			if ((rc = pop_slot(c, THW_I32, &idx, NULL)))
				return rc;
			const thw__ftype *ft = &m->types[ti];
			if ((rc = take_args(c, ft)))
				return rc;
			if ((rc = op(c, THW__OP_CALL_INDIRECT)))
				return rc;
			imm(c, ti);
			imm(c, tab);
			imm(c, natural(c, c->sh));
			imm(c, idx);
			end_instr(c);
			if ((rc = push_vals(c, ft->nr, ft->p + ft->np)))
				return rc;
			break;
		}
		case 0x1a: { /* drop */
			ventry e;
			if ((rc = pop_raw(c, 0, &e)))
				return rc;
			break;
		}
		case 0x1b: case 0x1c: { /* select, select t* */
			uint8_t want = 0;
			if (b == 0x1c) {
				uint32_t n;
				if ((rc = thw__rd_u32(r, &n)))
					return rc;
				if (n != 1)
					return verr(c, "invalid result arity");
				const uint8_t *at = r->p;
				if ((rc = thw__rd_u8(r, &want)))
					return rc;
				if (want == THW_V128)
					return thw__rd_fail(r, at, "unsupported feature: simd");
				if (want != THW_I32 && want != THW_I64 && want != THW_F32 &&
				    want != THW_F64 && want != THW_FUNCREF && want != THW_EXTERNREF)
					return thw__rd_fail(r, at, "malformed value type");
			}
			uint32_t sc, sb, sa;
			uint8_t tb, ta;
			if ((rc = pop_slot(c, THW_I32, &sc, NULL)))
				return rc;
			if ((rc = pop_slot(c, want, &sb, &tb)) || (rc = pop_slot(c, want, &sa, &ta)))
				return rc;
			uint8_t t = want;
			if (!want) {
				bool na = ta == THW_I32 || ta == THW_I64 || ta == THW_F32 || ta == THW_F64 || !ta;
				bool nb = tb == THW_I32 || tb == THW_I64 || tb == THW_F32 || tb == THW_F64 || !tb;
				if (!na || !nb)
					return verr(c, "type mismatch");
				if (ta && tb && ta != tb)
					return verr(c, "type mismatch");
				t = ta ? ta : tb;
			}
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, THW__OP_SELECT)))
				return rc;
			dst_imm(c, d);
			imm(c, sa);
			imm(c, sb);
			imm(c, sc);
			end_instr(c);
			if ((rc = push(c, t)))
				return rc;
			break;
		}
		case 0x20: { /* local.get */
			uint32_t x;
			if ((rc = rd_idx(c, &x)))
				return rc;
			if (x >= c->nlocals)
				return verr(c, "unknown local %u", x);
			if ((rc = push_k(c, local_type(c, x), x, 0)))
				return rc;
			break;
		}
		case 0x21: case 0x22: { /* local.set, local.tee */
			uint32_t x;
			if ((rc = rd_idx(c, &x)))
				return rc;
			if (x >= c->nlocals)
				return verr(c, "unknown local %u", x);
			if ((rc = local_set(c, x, b == 0x22)))
				return rc;
			break;
		}
		case 0x23: { /* global.get */
			uint32_t x;
			if ((rc = rd_idx(c, &x)))
				return rc;
			if (x >= m->nglobals)
				return verr(c, "unknown global %u", x);
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, THW__OP_GLOBAL_GET)))
				return rc;
			dst_imm(c, d);
			imm(c, x);
			end_instr(c);
			if ((rc = push(c, m->globals[x].type)))
				return rc;
			break;
		}
		case 0x24: { /* global.set */
			uint32_t x, s;
			if ((rc = rd_idx(c, &x)))
				return rc;
			if (x >= m->nglobals)
				return verr(c, "unknown global %u", x);
			if (!m->globals[x].mut)
				return verr(c, "global is immutable");
			if ((rc = pop_slot(c, m->globals[x].type, &s, NULL)))
				return rc;
			if ((rc = op(c, THW__OP_GLOBAL_SET)))
				return rc;
			imm(c, s);
			imm(c, x);
			end_instr(c);
			break;
		}
		case 0x25: { /* table.get */
			uint32_t t, i;
			if ((rc = rd_idx(c, &t)) || (rc = table_of(c, t)))
				return rc;
			if ((rc = pop_slot(c, THW_I32, &i, NULL)))
				return rc;
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, THW__OP_TABLE_GET)))
				return rc;
			dst_imm(c, d);
			imm(c, t);
			imm(c, i);
			end_instr(c);
			if ((rc = push(c, m->tables[t].elem)))
				return rc;
			break;
		}
		case 0x26: { /* table.set */
			uint32_t t, i, v;
			if ((rc = rd_idx(c, &t)) || (rc = table_of(c, t)))
				return rc;
			if ((rc = pop_slot(c, m->tables[t].elem, &v, NULL)) ||
			    (rc = pop_slot(c, THW_I32, &i, NULL)))
				return rc;
			if ((rc = op(c, THW__OP_TABLE_SET)))
				return rc;
			imm(c, t);
			imm(c, i);
			imm(c, v);
			end_instr(c);
			break;
		}
		case 0x28: case 0x29: case 0x2a: case 0x2b: case 0x2c: case 0x2d:
		case 0x2e: case 0x2f: case 0x30: case 0x31: case 0x32: case 0x33:
		case 0x34: case 0x35: {
			static const struct { uint16_t op, rr, ab; uint8_t t, w; } lt[] = {
#define X(n, o, t, w) { THW__OP_##n, THW__OP_##n##_RR, THW__OP_##n##_A, THW__T_##t, w },
				THW__LOADS(X)
#undef X
			};
			uint32_t off;
			if ((rc = memarg(c, lt[b - 0x28].w, &off)))
				return rc;
			/* the address: a pending constant, the sum just
			 * computed by an i32.add, or any slot */
			bool fuse_add = !c->dead && c->last_op == THW__OP_I32_ADD &&
					c->last_dst != NONE && c->last_end == here(c) &&
					c->sh > top(c)->height &&
					c->st[c->sh - 1].slot == natural(c, c->sh - 1) &&
					c->cb->c[c->last_dst] == natural(c, c->sh - 1);
			ventry ea;
			if ((rc = pop_raw(c, THW_I32, &ea)))
				return rc;
			uint32_t d = natural(c, c->sh);
			if (ea.slot == SLOT_CONST) {
				if ((rc = op(c, lt[b - 0x28].ab)))
					return rc;
				dst_imm(c, d);
				imm(c, (uint32_t)ea.k);
			} else if (fuse_add) {
				uint32_t sa = c->cb->c[c->last_start + 2];
				uint32_t sb = c->cb->c[c->last_start + 3];
				c->cb->n = c->last_start;
				if ((rc = op(c, lt[b - 0x28].rr)))
					return rc;
				dst_imm(c, d);
				imm(c, sa);
				imm(c, sb);
			} else {
				if ((rc = op(c, lt[b - 0x28].op)))
					return rc;
				dst_imm(c, d);
				imm(c, ea.slot);
			}
			imm(c, off);
			end_instr(c);
			if ((rc = push(c, lt[b - 0x28].t)))
				return rc;
			break;
		}
		case 0x36: case 0x37: case 0x38: case 0x39: case 0x3a: case 0x3b:
		case 0x3c: case 0x3d: case 0x3e: {
			static const struct { uint16_t op; uint8_t t, w; } st[] = {
#define X(n, o, t, w) { THW__OP_##n, THW__T_##t, w },
				THW__STORES(X)
#undef X
			};
			uint32_t off, a, v;
			if ((rc = memarg(c, st[b - 0x36].w, &off)))
				return rc;
			if ((rc = pop_slot(c, st[b - 0x36].t, &v, NULL)) ||
			    (rc = pop_slot(c, THW_I32, &a, NULL)))
				return rc;
			if ((rc = op(c, st[b - 0x36].op)))
				return rc;
			imm(c, a);
			imm(c, v);
			imm(c, off);
			end_instr(c);
			break;
		}
		case 0x3f: { /* memory.size */
			if ((rc = zero_byte(c)))
				return rc;
			if (!m->nmems)
				return verr(c, "unknown memory 0");
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, THW__OP_MEMORY_SIZE)))
				return rc;
			dst_imm(c, d);
			end_instr(c);
			if ((rc = push(c, THW_I32)))
				return rc;
			break;
		}
		case 0x40: { /* memory.grow */
			if ((rc = zero_byte(c)))
				return rc;
			if (!m->nmems)
				return verr(c, "unknown memory 0");
			uint32_t s;
			if ((rc = pop_slot(c, THW_I32, &s, NULL)))
				return rc;
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, THW__OP_MEMORY_GROW)))
				return rc;
			dst_imm(c, d);
			imm(c, s);
			end_instr(c);
			if ((rc = push(c, THW_I32)))
				return rc;
			break;
		}
		case 0x41: { /* i32.const */
			int32_t v;
			if ((rc = thw__rd_s32(r, &v)))
				return rc;
			if ((rc = push_k(c, THW_I32, SLOT_CONST, (uint32_t)v)))
				return rc;
			break;
		}
		case 0x42: { /* i64.const */
			int64_t v;
			if ((rc = thw__rd_s64(r, &v)))
				return rc;
			if ((rc = push_k(c, THW_I64, SLOT_CONST, (uint64_t)v)))
				return rc;
			break;
		}
		case 0x43: { /* f32.const */
			if (r->end - r->p < 4)
				return thw__rd_fail(r, r->p, "unexpected end");
			uint32_t v;
			memcpy(&v, r->p, 4);
			r->p += 4;
			if ((rc = push_k(c, THW_F32, SLOT_CONST, v)))
				return rc;
			break;
		}
		case 0x44: { /* f64.const */
			if (r->end - r->p < 8)
				return thw__rd_fail(r, r->p, "unexpected end");
			uint64_t v;
			memcpy(&v, r->p, 8);
			r->p += 8;
			if ((rc = push_k(c, THW_F64, SLOT_CONST, v)))
				return rc;
			break;
		}
		case 0xad: /* i64.extend_i32_u: slots hold i32 zero-extended */
		case 0xbc: case 0xbd: case 0xbe: case 0xbf: { /* reinterpret */
			static const uint8_t from[] = { THW_I32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
							THW_F32, THW_F64, THW_I32, THW_I64 };
			static const uint8_t to[] = { THW_I64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
						      THW_I32, THW_I64, THW_F32, THW_F64 };
			ventry e;
			if ((rc = pop_raw(c, from[b - 0xad], &e)))
				return rc;
			if ((rc = push_k(c, to[b - 0xad], e.slot, e.k)))
				return rc;
			break;
		}
		case 0xd0: { /* ref.null */
			uint8_t t;
			const uint8_t *at = r->p;
			if ((rc = thw__rd_u8(r, &t)))
				return rc;
			if (t != THW_FUNCREF && t != THW_EXTERNREF)
				return thw__rd_fail(r, at, "malformed reference type");
			if ((rc = push_k(c, t, SLOT_CONST, 0)))
				return rc;
			break;
		}
		case 0xd1: { /* ref.is_null */
			uint32_t s;
			uint8_t t;
			if ((rc = pop_slot(c, 0, &s, &t)))
				return rc;
			if (!ref_type_ok(t))
				return verr(c, "type mismatch");
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, THW__OP_REF_IS_NULL)))
				return rc;
			dst_imm(c, d);
			imm(c, s);
			end_instr(c);
			if ((rc = push(c, THW_I32)))
				return rc;
			break;
		}
		case 0xd2: { /* ref.func */
			uint32_t f;
			if ((rc = rd_idx(c, &f)))
				return rc;
			if (f >= m->nfuncs)
				return verr(c, "unknown function %u", f);
			if (!(m->declared[f / 8] & (1u << (f % 8))))
				return verr(c, "undeclared function reference");
			uint32_t d = natural(c, c->sh);
			if ((rc = op(c, THW__OP_REF_FUNC)))
				return rc;
			dst_imm(c, d);
			imm(c, f);
			end_instr(c);
			if ((rc = push(c, THW_FUNCREF)))
				return rc;
			break;
		}
		case 0xfc: {
			uint32_t sub;
			if ((rc = thw__rd_u32(r, &sub)))
				return rc;
			if (sub < 8) {
				if ((rc = numeric(c, &num_fc[sub])))
					return rc;
				break;
			}
			switch (sub) {
			case 8: { /* memory.init */
				uint32_t seg;
				if ((rc = rd_idx(c, &seg)) || (rc = zero_byte(c)))
					return rc;
				if (!m->nmems)
					return verr(c, "unknown memory 0");
				if ((rc = data_index(c, seg)))
					return rc;
				if ((rc = bulk_op(c, THW__OP_MEMORY_INIT, 1, seg, 0)))
					return rc;
				break;
			}
			case 9: { /* data.drop */
				uint32_t seg;
				if ((rc = rd_idx(c, &seg)))
					return rc;
				if ((rc = data_index(c, seg)))
					return rc;
				if ((rc = op(c, THW__OP_DATA_DROP)))
					return rc;
				imm(c, seg);
				end_instr(c);
				break;
			}
			case 10: case 11: { /* memory.copy, memory.fill */
				if ((rc = zero_byte(c)))
					return rc;
				if (sub == 10 && (rc = zero_byte(c)))
					return rc;
				if (!m->nmems)
					return verr(c, "unknown memory 0");
				if ((rc = bulk_op(c, sub == 10 ? THW__OP_MEMORY_COPY :
						  THW__OP_MEMORY_FILL, 0, 0, 0)))
					return rc;
				break;
			}
			case 12: { /* table.init */
				uint32_t seg, t;
				if ((rc = rd_idx(c, &seg)) || (rc = rd_idx(c, &t)))
					return rc;
				if ((rc = table_of(c, t)))
					return rc;
				if (seg >= m->nelems)
					return verr(c, "unknown elem segment %u", seg);
				if (m->elems[seg].type != m->tables[t].elem)
					return verr(c, "type mismatch");
				if ((rc = bulk_op(c, THW__OP_TABLE_INIT, 2, t, seg)))
					return rc;
				break;
			}
			case 13: { /* elem.drop */
				uint32_t seg;
				if ((rc = rd_idx(c, &seg)))
					return rc;
				if (seg >= m->nelems)
					return verr(c, "unknown elem segment %u", seg);
				if ((rc = op(c, THW__OP_ELEM_DROP)))
					return rc;
				imm(c, seg);
				end_instr(c);
				break;
			}
			case 14: { /* table.copy */
				uint32_t td, ts;
				if ((rc = rd_idx(c, &td)) || (rc = rd_idx(c, &ts)))
					return rc;
				if ((rc = table_of(c, td)) || (rc = table_of(c, ts)))
					return rc;
				if (m->tables[td].elem != m->tables[ts].elem)
					return verr(c, "type mismatch");
				if ((rc = bulk_op(c, THW__OP_TABLE_COPY, 2, td, ts)))
					return rc;
				break;
			}
			case 15: { /* table.grow */
				uint32_t t, n, v;
				if ((rc = rd_idx(c, &t)) || (rc = table_of(c, t)))
					return rc;
				if ((rc = pop_slot(c, THW_I32, &n, NULL)) ||
				    (rc = pop_slot(c, m->tables[t].elem, &v, NULL)))
					return rc;
				uint32_t d = natural(c, c->sh);
				if ((rc = op(c, THW__OP_TABLE_GROW)))
					return rc;
				dst_imm(c, d);
				imm(c, t);
				imm(c, v);
				imm(c, n);
				end_instr(c);
				if ((rc = push(c, THW_I32)))
					return rc;
				break;
			}
			case 16: { /* table.size */
				uint32_t t;
				if ((rc = rd_idx(c, &t)) || (rc = table_of(c, t)))
					return rc;
				uint32_t d = natural(c, c->sh);
				if ((rc = op(c, THW__OP_TABLE_SIZE)))
					return rc;
				dst_imm(c, d);
				imm(c, t);
				end_instr(c);
				if ((rc = push(c, THW_I32)))
					return rc;
				break;
			}
			case 17: { /* table.fill */
				uint32_t t, n, v, i;
				if ((rc = rd_idx(c, &t)) || (rc = table_of(c, t)))
					return rc;
				if ((rc = pop_slot(c, THW_I32, &n, NULL)) ||
				    (rc = pop_slot(c, m->tables[t].elem, &v, NULL)) ||
				    (rc = pop_slot(c, THW_I32, &i, NULL)))
					return rc;
				if ((rc = op(c, THW__OP_TABLE_FILL)))
					return rc;
				imm(c, t);
				imm(c, i);
				imm(c, v);
				imm(c, n);
				end_instr(c);
				break;
			}
			default:
				return thw__rd_fail(r, c->at, "illegal opcode 0xfc %u", sub);
			}
			break;
		}
		case 0xfd:
			return thw__rd_fail(r, c->at, "unsupported feature: simd");
		default:
			if (b >= 0x45 && b <= 0xc4 && num_main[b].op) {
				if ((rc = numeric(c, &num_main[b])))
					return rc;
				break;
			}
			return thw__rd_fail(r, c->at, "illegal opcode 0x%02x", b);
		}
	}
	return 0;
}

/* After a validation error: decode the rest of the body (depth open
 * blocks) without validating, so that a later malformed instruction is
 * still reported as such. Returns TH_ENOTFOUND (keeping the validation
 * error in r->err) when the rest is well formed. */
static int skip_rest(thw__rd *r, int depth)
{
	th_err saved = *r->err;
	while (depth > 0) {
		uint8_t b;
		const uint8_t *at = r->p;
		int rc = thw__rd_u8(r, &b);
		if (rc)
			return rc;
		if (b == 0x0b) {
			depth--;
			continue;
		}
		if (b == 0xfd)
			return thw__rd_fail(r, at, "unsupported feature: simd");
		if (!known_opcode(b))
			return thw__rd_fail(r, at, "illegal opcode 0x%02x", b);
		if ((rc = skip_imm(r, b, &depth)))
			return rc;
	}
	*r->err = saved;
	return TH_ENOTFOUND;
}

int thw__compile_func(thw_module *m, uint32_t fi, thw__rd *r, thw__cbuf *cb)
{
	pthread_once(&tables_once, tables_init);
	thw__code *code = &m->codes[fi];
	const thw__ftype *ft = &m->types[code->type];
	cx c = { .m = m, .r = r, .cb = cb, .H = thw__interp_handlers(),
		 .last_dst = NONE };
	int rc = 0;
	/* Locals. */
	uint32_t ngroups;
	if ((rc = thw__rd_u32(r, &ngroups)))
		return rc;
	uint64_t total = ft->np;
	const uint8_t *groups = r->p;
	for (uint32_t i = 0; i < ngroups; i++) {
		uint32_t n;
		uint8_t t;
		const uint8_t *at = r->p;
		if ((rc = thw__rd_u32(r, &n)))
			return rc;
		total += n;
		if (total > THW__MAX_LOCALS)
			return thw__rd_fail(r, at, "too many locals");
		if ((rc = thw__rd_u8(r, &t)))
			return rc;
		if (t == THW_V128)
			return thw__rd_fail(r, at, "unsupported feature: simd");
		if (t != THW_I32 && t != THW_I64 && t != THW_F32 && t != THW_F64 &&
		    t != THW_FUNCREF && t != THW_EXTERNREF)
			return thw__rd_fail(r, r->p - 1, "malformed value type");
	}
	c.nlocals = (uint32_t)total;
	c.lt = th_malloc(total ? total : 1);
	if (!c.lt)
		return oom(&c);
	memcpy(c.lt, ft->p, ft->np);
	{
		thw__rd g = *r;
		g.p = groups;
		uint32_t k = ft->np;
		for (uint32_t i = 0; i < ngroups; i++) {
			uint32_t n;
			uint8_t t;
			thw__rd_u32(&g, &n);
			thw__rd_u8(&g, &t);
			memset(c.lt + k, t, n);
			k += n;
		}
	}
	code->nlocals = c.nlocals;
	code->nparams = ft->np;
	code->entry = (uint32_t)cb->n;
	ctrl fn = { .kind = K_FUNC, .nr = ft->nr, .results = ft->p + ft->np };
	if ((rc = push_ctrl(&c, &fn)))
		goto out;
	c.at = r->p;
	if ((rc = body(&c))) {
		if (rc == TH_ENOTFOUND) {
			/* blocks still open after the failed instruction */
			int depth = (int)c.ch0;
			if (c.cur_op >= 0x02 && c.cur_op <= 0x04)
				depth++;
			else if (c.cur_op == 0x0b)
				depth--;
			rc = skip_rest(r, depth);
		}
		goto out;
	}
	code->fuel = c.fuel_outside ? c.fuel_outside : 1;
	if (r->p != r->end) {
		rc = thw__rd_fail(r, r->p, "section size mismatch");
		goto out;
	}
	{
		uint64_t slots = (uint64_t)c.nlocals + c.maxh + 1;
		code->nslots = (uint32_t)slots;
	}
out:
	if ((rc == 0 || rc == TH_ENOTFOUND) && r->p != r->end)
		rc = thw__rd_fail(r, r->p, "section size mismatch");
	if (rc == TH_EINVAL && c.ch && strstr(r->err->msg, "unexpected end") &&
	    r->p >= r->end)
		th_err_set(r->err, TH_EINVAL, "code section at offset 0x%zx: unexpected end of section or function",
			   (size_t)(r->end - r->base));
	th_free(c.lt);
	th_free(c.st);
	th_free(c.cs);
	th_free(c.pt);
	return rc;
}

/* ---- Constant expressions -------------------------------------------------- */

static bool known_opcode(uint8_t b)
{
	return b <= 0x05 || (b >= 0x0b && b <= 0x11) || (b >= 0x1a && b <= 0x1c) ||
	       (b >= 0x20 && b <= 0x26) || (b >= 0x28 && b <= 0xc4) ||
	       (b >= 0xd0 && b <= 0xd2) || b == 0xfc || b == 0xfd;
}

/* Skip the immediates of a non-constant instruction, so that decoding can
 * go on after a validation error in a constant expression. */
static int skip_imm(thw__rd *r, uint8_t b, int *depth)
{
	uint32_t u;
	int32_t s32;
	int64_t s64;
	uint8_t byte;
	switch (b) {
	case 0x02: case 0x03: case 0x04:
		(*depth)++;
		return thw__rd_s33(r, &s64);
	case 0x0c: case 0x0d: case 0x10: case 0x20: case 0x21: case 0x22:
	case 0x23: case 0x24: case 0x25: case 0x26: case 0xd2:
		return thw__rd_u32(r, &u);
	case 0x11:
		return thw__rd_u32(r, &u) || thw__rd_u32(r, &u) ? TH_EINVAL : 0;
	case 0x0e:
		if (thw__rd_u32(r, &u))
			return TH_EINVAL;
		for (uint64_t i = 0; i <= u; i++) {
			uint32_t l;
			if (thw__rd_u32(r, &l))
				return TH_EINVAL;
		}
		return 0;
	case 0x1c:
		if (thw__rd_u32(r, &u))
			return TH_EINVAL;
		for (uint32_t i = 0; i < u; i++)
			if (thw__rd_u8(r, &byte))
				return TH_EINVAL;
		return 0;
	case 0x3f: case 0x40: case 0xd0:
		return thw__rd_u8(r, &byte);
	case 0x41:
		return thw__rd_s32(r, &s32);
	case 0x42:
		return thw__rd_s64(r, &s64);
	case 0x43: case 0x44:
		if (r->end - r->p < (b == 0x43 ? 4 : 8))
			return thw__rd_eof(r);
		r->p += b == 0x43 ? 4 : 8;
		return 0;
	case 0xfc: {
		/* immediates of 0xfc n: u32 indices (i) and zero bytes (z) */
		static const char *const imms[18] = { "", "", "", "", "", "", "", "",
			"iz", "i", "zz", "z", "ii", "i", "ii", "i", "i", "i" };
		if (thw__rd_u32(r, &u))
			return TH_EINVAL;
		if (u >= 18)
			return thw__rd_fail(r, r->p, "illegal opcode 0xfc %u", u);
		for (const char *k = imms[u]; *k; k++)
			if (*k == 'i' ? thw__rd_u32(r, &u) : thw__rd_u8(r, &byte))
				return TH_EINVAL;
		return 0;
	}
	default:
		if (b >= 0x28 && b <= 0x3e)
			return thw__rd_u32(r, &u) || thw__rd_u32(r, &u) ? TH_EINVAL : 0;
		return 0;
	}
}

int thw__const_expr(thw_module *m, thw__rd *r, uint8_t type, uint32_t nvisible)
{
	uint8_t st[64];
	uint32_t sh = 0;
	int rc;
	bool bad = false;
	int depth = 0;
	th_err first = { 0 };
	for (;;) {
		const uint8_t *at = r->p;
		uint8_t b;
		if ((rc = thw__rd_u8(r, &b)))
			return rc;
		/* An invalid expression: remember the first reason, decode on. */
#define INVALID(...) {                                                      \
		if (!bad) {                                                 \
			thw__rd_fail(r, at, __VA_ARGS__);                   \
			first = *r->err;                                    \
			bad = true;                                         \
		}                                                           \
		if (b == 0x0b) {                                            \
			*r->err = first;                                    \
			return TH_ENOTFOUND;                                \
		}                                                           \
		continue;                                                   \
	}
		if (bad && b != 0x0b) {
			if (!known_opcode(b))
				return thw__rd_fail(r, at, "illegal opcode 0x%02x", b);
			if ((rc = skip_imm(r, b, &depth)))
				return rc;
			continue;
		}
		if (sh >= sizeof st - 1 && b != 0x0b)
			INVALID("constant expression too deep");
		switch (b) {
		case 0x0b:
			if (depth > 0) {
				depth--;
				break;
			}
			if (bad) {
				*r->err = first;
				return TH_ENOTFOUND;
			}
			if (sh != 1 || st[0] != type)
				INVALID("type mismatch");
			return 0;
		case 0x41: { int32_t v; if ((rc = thw__rd_s32(r, &v))) return rc; st[sh++] = THW_I32; break; }
		case 0x42: { int64_t v; if ((rc = thw__rd_s64(r, &v))) return rc; st[sh++] = THW_I64; break; }
		case 0x43:
			if (r->end - r->p < 4)
				return thw__rd_eof(r);
			r->p += 4;
			st[sh++] = THW_F32;
			break;
		case 0x44:
			if (r->end - r->p < 8)
				return thw__rd_eof(r);
			r->p += 8;
			st[sh++] = THW_F64;
			break;
		case 0xd0: {
			uint8_t t;
			const uint8_t *tat = r->p;
			if ((rc = thw__rd_u8(r, &t)))
				return rc;
			if (t != THW_FUNCREF && t != THW_EXTERNREF)
				return thw__rd_fail(r, tat, "malformed reference type");
			st[sh++] = t;
			break;
		}
		case 0xd2: {
			uint32_t f;
			if ((rc = thw__rd_u32(r, &f)))
				return rc;
			if (f >= m->nfuncs)
				INVALID("unknown function %u", f);
			if (m->declared)
				m->declared[f / 8] |= (uint8_t)(1u << (f % 8));
			st[sh++] = THW_FUNCREF;
			break;
		}
		case 0x23: {
			uint32_t g;
			if ((rc = thw__rd_u32(r, &g)))
				return rc;
			if (g >= nvisible)
				INVALID("unknown global %u", g);
			if (m->globals[g].mut)
				INVALID("constant expression required");
			st[sh++] = m->globals[g].type;
			break;
		}
		case 0x6a: case 0x6b: case 0x6c: case 0x7c: case 0x7d: case 0x7e: {
			uint8_t t = b < 0x70 ? THW_I32 : THW_I64;
			if (sh < 2 || st[sh - 1] != t || st[sh - 2] != t)
				INVALID("type mismatch");
			sh--;
			break;
		}
		default:
			if (!known_opcode(b))
				return thw__rd_fail(r, at, "illegal opcode 0x%02x", b);
			if ((rc = skip_imm(r, b, &depth)))
				return rc;
			INVALID("constant expression required");
		}
#undef INVALID
	}
}
