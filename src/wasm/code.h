/*
 * code.h - the internal instruction set the translator (compile.c) emits
 * and the interpreter (interp.c) executes. See the essay at the top of
 * interp.c for the format byte by byte. Each list below is an X-macro so
 * that the opcode enum, the interpreter's handlers and the translator's
 * tables are generated from one place.
 */
#ifndef THW_CODE_H
#define THW_CODE_H

/* Operand classes for the numeric table: I=i32 L=i64 F=f32 D=f64, 0=none. */
#define THW__T_0 0
#define THW__T_I THW_I32
#define THW__T_L THW_I64
#define THW__T_F THW_F32
#define THW__T_D THW_F64

/* Numeric instructions: X(NAME, wasm opcode (0xFCnn for prefixed), in1,
 * in2 (0 for unary), result). Reinterpretations and i64.extend_i32_u are
 * not listed: they do not change slot bits and are translated to nothing. */
#define THW__NUMOPS(X) \
	X(I32_EQZ, 0x45, I, 0, I) X(I32_EQ, 0x46, I, I, I) X(I32_NE, 0x47, I, I, I) \
	X(I32_LT_S, 0x48, I, I, I) X(I32_LT_U, 0x49, I, I, I) X(I32_GT_S, 0x4a, I, I, I) \
	X(I32_GT_U, 0x4b, I, I, I) X(I32_LE_S, 0x4c, I, I, I) X(I32_LE_U, 0x4d, I, I, I) \
	X(I32_GE_S, 0x4e, I, I, I) X(I32_GE_U, 0x4f, I, I, I) \
	X(I64_EQZ, 0x50, L, 0, I) X(I64_EQ, 0x51, L, L, I) X(I64_NE, 0x52, L, L, I) \
	X(I64_LT_S, 0x53, L, L, I) X(I64_LT_U, 0x54, L, L, I) X(I64_GT_S, 0x55, L, L, I) \
	X(I64_GT_U, 0x56, L, L, I) X(I64_LE_S, 0x57, L, L, I) X(I64_LE_U, 0x58, L, L, I) \
	X(I64_GE_S, 0x59, L, L, I) X(I64_GE_U, 0x5a, L, L, I) \
	X(F32_EQ, 0x5b, F, F, I) X(F32_NE, 0x5c, F, F, I) X(F32_LT, 0x5d, F, F, I) \
	X(F32_GT, 0x5e, F, F, I) X(F32_LE, 0x5f, F, F, I) X(F32_GE, 0x60, F, F, I) \
	X(F64_EQ, 0x61, D, D, I) X(F64_NE, 0x62, D, D, I) X(F64_LT, 0x63, D, D, I) \
	X(F64_GT, 0x64, D, D, I) X(F64_LE, 0x65, D, D, I) X(F64_GE, 0x66, D, D, I) \
	X(I32_CLZ, 0x67, I, 0, I) X(I32_CTZ, 0x68, I, 0, I) X(I32_POPCNT, 0x69, I, 0, I) \
	X(I32_ADD, 0x6a, I, I, I) X(I32_SUB, 0x6b, I, I, I) X(I32_MUL, 0x6c, I, I, I) \
	X(I32_DIV_S, 0x6d, I, I, I) X(I32_DIV_U, 0x6e, I, I, I) X(I32_REM_S, 0x6f, I, I, I) \
	X(I32_REM_U, 0x70, I, I, I) X(I32_AND, 0x71, I, I, I) X(I32_OR, 0x72, I, I, I) \
	X(I32_XOR, 0x73, I, I, I) X(I32_SHL, 0x74, I, I, I) X(I32_SHR_S, 0x75, I, I, I) \
	X(I32_SHR_U, 0x76, I, I, I) X(I32_ROTL, 0x77, I, I, I) X(I32_ROTR, 0x78, I, I, I) \
	X(I64_CLZ, 0x79, L, 0, L) X(I64_CTZ, 0x7a, L, 0, L) X(I64_POPCNT, 0x7b, L, 0, L) \
	X(I64_ADD, 0x7c, L, L, L) X(I64_SUB, 0x7d, L, L, L) X(I64_MUL, 0x7e, L, L, L) \
	X(I64_DIV_S, 0x7f, L, L, L) X(I64_DIV_U, 0x80, L, L, L) X(I64_REM_S, 0x81, L, L, L) \
	X(I64_REM_U, 0x82, L, L, L) X(I64_AND, 0x83, L, L, L) X(I64_OR, 0x84, L, L, L) \
	X(I64_XOR, 0x85, L, L, L) X(I64_SHL, 0x86, L, L, L) X(I64_SHR_S, 0x87, L, L, L) \
	X(I64_SHR_U, 0x88, L, L, L) X(I64_ROTL, 0x89, L, L, L) X(I64_ROTR, 0x8a, L, L, L) \
	X(F32_ABS, 0x8b, F, 0, F) X(F32_NEG, 0x8c, F, 0, F) X(F32_CEIL, 0x8d, F, 0, F) \
	X(F32_FLOOR, 0x8e, F, 0, F) X(F32_TRUNC, 0x8f, F, 0, F) X(F32_NEAREST, 0x90, F, 0, F) \
	X(F32_SQRT, 0x91, F, 0, F) X(F32_ADD, 0x92, F, F, F) X(F32_SUB, 0x93, F, F, F) \
	X(F32_MUL, 0x94, F, F, F) X(F32_DIV, 0x95, F, F, F) X(F32_MIN, 0x96, F, F, F) \
	X(F32_MAX, 0x97, F, F, F) X(F32_COPYSIGN, 0x98, F, F, F) \
	X(F64_ABS, 0x99, D, 0, D) X(F64_NEG, 0x9a, D, 0, D) X(F64_CEIL, 0x9b, D, 0, D) \
	X(F64_FLOOR, 0x9c, D, 0, D) X(F64_TRUNC, 0x9d, D, 0, D) X(F64_NEAREST, 0x9e, D, 0, D) \
	X(F64_SQRT, 0x9f, D, 0, D) X(F64_ADD, 0xa0, D, D, D) X(F64_SUB, 0xa1, D, D, D) \
	X(F64_MUL, 0xa2, D, D, D) X(F64_DIV, 0xa3, D, D, D) X(F64_MIN, 0xa4, D, D, D) \
	X(F64_MAX, 0xa5, D, D, D) X(F64_COPYSIGN, 0xa6, D, D, D) \
	X(I32_WRAP_I64, 0xa7, L, 0, I) X(I32_TRUNC_F32_S, 0xa8, F, 0, I) \
	X(I32_TRUNC_F32_U, 0xa9, F, 0, I) X(I32_TRUNC_F64_S, 0xaa, D, 0, I) \
	X(I32_TRUNC_F64_U, 0xab, D, 0, I) X(I64_EXTEND_I32_S, 0xac, I, 0, L) \
	X(I64_TRUNC_F32_S, 0xae, F, 0, L) X(I64_TRUNC_F32_U, 0xaf, F, 0, L) \
	X(I64_TRUNC_F64_S, 0xb0, D, 0, L) X(I64_TRUNC_F64_U, 0xb1, D, 0, L) \
	X(F32_CONVERT_I32_S, 0xb2, I, 0, F) X(F32_CONVERT_I32_U, 0xb3, I, 0, F) \
	X(F32_CONVERT_I64_S, 0xb4, L, 0, F) X(F32_CONVERT_I64_U, 0xb5, L, 0, F) \
	X(F32_DEMOTE_F64, 0xb6, D, 0, F) X(F64_CONVERT_I32_S, 0xb7, I, 0, D) \
	X(F64_CONVERT_I32_U, 0xb8, I, 0, D) X(F64_CONVERT_I64_S, 0xb9, L, 0, D) \
	X(F64_CONVERT_I64_U, 0xba, L, 0, D) X(F64_PROMOTE_F32, 0xbb, F, 0, D) \
	X(I32_EXTEND8_S, 0xc0, I, 0, I) X(I32_EXTEND16_S, 0xc1, I, 0, I) \
	X(I64_EXTEND8_S, 0xc2, L, 0, L) X(I64_EXTEND16_S, 0xc3, L, 0, L) \
	X(I64_EXTEND32_S, 0xc4, L, 0, L) \
	X(I32_TRUNC_SAT_F32_S, 0xfc00, F, 0, I) X(I32_TRUNC_SAT_F32_U, 0xfc01, F, 0, I) \
	X(I32_TRUNC_SAT_F64_S, 0xfc02, D, 0, I) X(I32_TRUNC_SAT_F64_U, 0xfc03, D, 0, I) \
	X(I64_TRUNC_SAT_F32_S, 0xfc04, F, 0, L) X(I64_TRUNC_SAT_F32_U, 0xfc05, F, 0, L) \
	X(I64_TRUNC_SAT_F64_S, 0xfc06, D, 0, L) X(I64_TRUNC_SAT_F64_U, 0xfc07, D, 0, L)

/* Memory accesses: X(NAME, wasm opcode, value type, log2 of the width).
 * Loads also come as NAME_RR [d][a][b][offset] (address a + b, fused from
 * i32.add) and NAME_A [d][address][offset] (a constant address). */
#define THW__LOADS(X) \
	X(I32_LOAD, 0x28, I, 2) X(I64_LOAD, 0x29, L, 3) X(F32_LOAD, 0x2a, F, 2) \
	X(F64_LOAD, 0x2b, D, 3) X(I32_LOAD8_S, 0x2c, I, 0) X(I32_LOAD8_U, 0x2d, I, 0) \
	X(I32_LOAD16_S, 0x2e, I, 1) X(I32_LOAD16_U, 0x2f, I, 1) \
	X(I64_LOAD8_S, 0x30, L, 0) X(I64_LOAD8_U, 0x31, L, 0) \
	X(I64_LOAD16_S, 0x32, L, 1) X(I64_LOAD16_U, 0x33, L, 1) \
	X(I64_LOAD32_S, 0x34, L, 2) X(I64_LOAD32_U, 0x35, L, 2)
#define THW__STORES(X) \
	X(I32_STORE, 0x36, I, 2) X(I64_STORE, 0x37, L, 3) X(F32_STORE, 0x38, F, 2) \
	X(F64_STORE, 0x39, D, 3) X(I32_STORE8, 0x3a, I, 0) X(I32_STORE16, 0x3b, I, 1) \
	X(I64_STORE8, 0x3c, L, 0) X(I64_STORE16, 0x3d, L, 1) X(I64_STORE32, 0x3e, L, 2)

/* Super-instructions: a binary operation whose second operand is an
 * immediate (the i32/i64 constant folded into it). X(NAME, base op). */
#define THW__IMMOPS(X) \
	X(I32_ADD_K, I32_ADD) X(I32_SUB_K, I32_SUB) X(I32_MUL_K, I32_MUL) \
	X(I32_AND_K, I32_AND) X(I32_OR_K, I32_OR) X(I32_XOR_K, I32_XOR) \
	X(I32_SHL_K, I32_SHL) X(I32_SHR_S_K, I32_SHR_S) X(I32_SHR_U_K, I32_SHR_U) \
	X(I32_EQ_K, I32_EQ) X(I32_NE_K, I32_NE) X(I32_LT_S_K, I32_LT_S) \
	X(I32_LT_U_K, I32_LT_U) X(I32_GT_S_K, I32_GT_S) X(I32_GT_U_K, I32_GT_U) \
	X(I32_LE_S_K, I32_LE_S) X(I32_LE_U_K, I32_LE_U) X(I32_GE_S_K, I32_GE_S) \
	X(I32_GE_U_K, I32_GE_U) X(I32_ROTL_K, I32_ROTL) X(I32_ROTR_K, I32_ROTR) \
	X(I64_ROTL_K, I64_ROTL) X(I64_ROTR_K, I64_ROTR) \
	X(I64_ADD_K, I64_ADD) X(I64_SUB_K, I64_SUB) X(I64_MUL_K, I64_MUL) \
	X(I64_AND_K, I64_AND) X(I64_OR_K, I64_OR) X(I64_XOR_K, I64_XOR) \
	X(I64_SHL_K, I64_SHL) X(I64_SHR_S_K, I64_SHR_S) X(I64_SHR_U_K, I64_SHR_U)

/* Compare-and-branch fusions: X(NAME, compare op). Jumps when the
 * comparison holds: [op][a][b][rel][fuel], or [op][a][k][rel][fuel]. */
#define THW__BRCMP(X) \
	X(BR_I32_EQ, I32_EQ) X(BR_I32_NE, I32_NE) X(BR_I32_LT_S, I32_LT_S) \
	X(BR_I32_LT_U, I32_LT_U) X(BR_I32_GT_S, I32_GT_S) X(BR_I32_GT_U, I32_GT_U) \
	X(BR_I32_LE_S, I32_LE_S) X(BR_I32_LE_U, I32_LE_U) X(BR_I32_GE_S, I32_GE_S) \
	X(BR_I32_GE_U, I32_GE_U)

#define THW__BRCMPK(X) \
	X(BR_I32_EQ_K, I32_EQ_K) X(BR_I32_NE_K, I32_NE_K) X(BR_I32_LT_S_K, I32_LT_S_K) \
	X(BR_I32_LT_U_K, I32_LT_U_K) X(BR_I32_GT_S_K, I32_GT_S_K) X(BR_I32_GT_U_K, I32_GT_U_K) \
	X(BR_I32_LE_S_K, I32_LE_S_K) X(BR_I32_LE_U_K, I32_LE_U_K) X(BR_I32_GE_S_K, I32_GE_S_K) \
	X(BR_I32_GE_U_K, I32_GE_U_K)

/* A loop counter step fused with the branch testing it: x = y + inc, then
 * branch when x <cmp> k: [op][x][y][inc][k][rel][fuel]. X(NAME, branch). */
#define THW__ADDBR(X) \
	X(ADD_BR_I32_EQ_K, BR_I32_EQ_K) X(ADD_BR_I32_NE_K, BR_I32_NE_K) \
	X(ADD_BR_I32_LT_S_K, BR_I32_LT_S_K) X(ADD_BR_I32_LT_U_K, BR_I32_LT_U_K) \
	X(ADD_BR_I32_GT_S_K, BR_I32_GT_S_K) X(ADD_BR_I32_GT_U_K, BR_I32_GT_U_K) \
	X(ADD_BR_I32_LE_S_K, BR_I32_LE_S_K) X(ADD_BR_I32_LE_U_K, BR_I32_LE_U_K) \
	X(ADD_BR_I32_GE_S_K, BR_I32_GE_S_K) X(ADD_BR_I32_GE_U_K, BR_I32_GE_U_K)

/* Binary operations whose right operand is loaded from memory, fused from
 * a load followed by the operation: X(NAME, operation, load).
 * [op][d][a][address][offset]. */
#define THW__LOADOPS(X) \
	X(I32_ADD_L, I32_ADD, I32_LOAD) X(I32_SUB_L, I32_SUB, I32_LOAD) \
	X(I32_AND_L, I32_AND, I32_LOAD) X(I32_OR_L, I32_OR, I32_LOAD) \
	X(I32_XOR_L, I32_XOR, I32_LOAD) X(I64_ADD_L, I64_ADD, I64_LOAD) \
	X(F32_ADD_L, F32_ADD, F32_LOAD) X(F32_SUB_L, F32_SUB, F32_LOAD) \
	X(F32_MUL_L, F32_MUL, F32_LOAD) X(F64_ADD_L, F64_ADD, F64_LOAD) \
	X(F64_SUB_L, F64_SUB, F64_LOAD) X(F64_MUL_L, F64_MUL, F64_LOAD)

/* Everything else: control, data movement, variables, memory, tables. */
#define THW__CTLOPS(X) \
	X(UNREACHABLE) X(BR) X(BR_IF) X(BR_UNLESS) X(BR_TABLE) \
	X(RETURN) X(CALL) X(CALL_LOCAL) X(CALL_INDIRECT) X(COPY) X(SELECT) \
	X(CONST32) X(CONST64) X(GLOBAL_GET) X(GLOBAL_SET) \
	X(MEMORY_SIZE) X(MEMORY_GROW) X(MEMORY_INIT) X(DATA_DROP) \
	X(MEMORY_COPY) X(MEMORY_FILL) X(TABLE_GET) X(TABLE_SET) X(TABLE_SIZE) \
	X(TABLE_GROW) X(TABLE_FILL) X(TABLE_COPY) X(TABLE_INIT) X(ELEM_DROP) \
	X(REF_IS_NULL) X(REF_FUNC) X(BR_I32_EQZ) X(BR_I32_NEZ) \
	X(BR_I64_EQZ) X(BR_I64_NEZ) X(I32_ADD_SHL) X(I32_SHL_ADD_K)

enum thw__op {
#define THW__X_NUM(n, o, a, b, r) THW__OP_##n,
#define THW__X_MEM(n, o, t, w) THW__OP_##n,
#define THW__X_MEM_RR(n, o, t, w) THW__OP_##n##_RR,
#define THW__X_MEM_A(n, o, t, w) THW__OP_##n##_A,
#define THW__X_CTL(n) THW__OP_##n,
#define THW__X_IMM(n, base) THW__OP_##n,
#define THW__X_LOP(n, base, ld) THW__OP_##n,
	THW__CTLOPS(THW__X_CTL)
	THW__NUMOPS(THW__X_NUM)
	THW__LOADS(THW__X_MEM)
	THW__LOADS(THW__X_MEM_RR)
	THW__LOADS(THW__X_MEM_A)
	THW__STORES(THW__X_MEM)
	THW__IMMOPS(THW__X_IMM)
	THW__BRCMP(THW__X_IMM)
	THW__BRCMPK(THW__X_IMM)
	THW__LOADOPS(THW__X_LOP)
	THW__ADDBR(THW__X_IMM)
	THW__OP_COUNT
#undef THW__X_NUM
#undef THW__X_MEM
#undef THW__X_MEM_RR
#undef THW__X_MEM_A
#undef THW__X_CTL
#undef THW__X_IMM
#undef THW__X_LOP
};

#endif
