/* A dispatch-heavy little interpreter: a stack bytecode VM (switch dispatch)
 * running a program that counts the primes below LIMIT by trial division. */
#include "bench.h"

enum { PUSH, LOAD, STORE, ADD, SUB, MUL, MOD, LT, JZ, JMP, INC, HALT };

#define LIMIT 400000

/* r0 = n, r1 = count, r2 = d, r3 = is_prime */
static const int32_t prog[] = {
	PUSH, 2, STORE, 0,                       /*  0: n = 2                */
	PUSH, 0, STORE, 1,                       /*  4: count = 0            */
	LOAD, 0, PUSH, LIMIT, LT, JZ, 61,        /*  8: while (n < LIMIT) {  */
	PUSH, 2, STORE, 2,                       /* 15:   d = 2              */
	PUSH, 1, STORE, 3,                       /* 19:   is_prime = 1       */
	LOAD, 0, LOAD, 2, LOAD, 2, MUL, LT, JZ, 35, /* 23: while (!(n < d*d)) */
	JMP, 50,                                 /* 33:                      */
	LOAD, 0, LOAD, 2, MOD, JZ, 46,           /* 35:     if (n % d == 0)  */
	INC, 2, JMP, 23,                         /* 42:     d++              */
	PUSH, 0, STORE, 3,                       /* 46:   is_prime = 0       */
	LOAD, 3, LOAD, 1, ADD, STORE, 1,         /* 50:   count += is_prime  */
	INC, 0, JMP, 8,                          /* 57:   n++ }              */
	HALT,                                    /* 61                       */
};

static int32_t run(const int32_t *code, int32_t *regs)
{
	int32_t stack[64];
	int sp = 0, pc = 0;
	for (;;) {
		switch (code[pc++]) {
		case PUSH: stack[sp++] = code[pc++]; break;
		case LOAD: stack[sp++] = regs[code[pc++]]; break;
		case STORE: regs[code[pc++]] = stack[--sp]; break;
		case ADD: sp--; stack[sp - 1] += stack[sp]; break;
		case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
		case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
		case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
		case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
		case JZ: {
			int32_t t = code[pc++];
			if (stack[--sp] == 0)
				pc = t;
			break;
		}
		case JMP: pc = code[pc]; break;
		case INC: regs[code[pc++]]++; break;
		default: return regs[1];
		}
	}
}

uint32_t bench_run(void)
{
	int32_t regs[4] = { 0, 0, 0, 0 };
	int32_t code[sizeof prog / sizeof prog[0]];
	for (unsigned i = 0; i < sizeof prog / sizeof prog[0]; i++)
		code[i] = prog[i] + (int32_t)(bench_seed & 0);
	return (uint32_t)run(code, regs);
}
BENCH_MAIN("vm")
