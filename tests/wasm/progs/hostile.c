/* Hostile behaviours, selected by argv[1]; each must end as a trap (or a
 * refused grow) with the host process intact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int sink;
static char *volatile keep;
static int (*volatile indirect)(int);

/* Frames on the WebAssembly call stack only: the indirect call keeps the
 * compiler from turning the recursion into a loop. */
static int recurse(int n)
{
	return indirect(n + 1) + 1;
}

/* Big frames on the C shadow stack in linear memory: it overflows below
 * address 0 long before the call depth limit. */
__attribute__((noinline)) static int big_frames(int n)
{
	volatile char pad[4096];
	pad[n % 4096] = (char)n;
	return big_frames(n + 1) + pad[0];
}

__attribute__((noinline)) static int divide(int a, int b)
{
	return a / b;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	indirect = recurse;
	if (!strcmp(what, "loop")) {
		for (;;)
			sink++;
	} else if (!strcmp(what, "recurse")) {
		return recurse(0);
	} else if (!strcmp(what, "stack")) {
		return big_frames(0);
	} else if (!strcmp(what, "grow")) {
		long pages = 0;
		while (__builtin_wasm_memory_grow(0, 1) != (size_t)-1)
			pages++;
		printf("grew %ld pages, total %zu\n", pages, __builtin_wasm_memory_size(0));
		fflush(stdout);
		__builtin_trap();
	} else if (!strcmp(what, "malloc")) {
		long mb = 0;
		char *p;
		while ((p = malloc(1 << 20)) != NULL) {
			p[mb % (1 << 20)] = 1;
			keep = p;
			mb++;
		}
		printf("malloc refused after %ld MiB\n", mb);
		return 0;
	} else if (!strcmp(what, "oob")) {
		volatile int *p = (int *)(uintptr_t)0xFFFFFFF0u;
		return *p;
	} else if (!strcmp(what, "flood")) {
		for (long i = 0; i < 1000000; i++)
			if (printf("line %ld\n", i) < 0 || fflush(stdout) != 0) {
				fprintf(stderr, "write failed at line %ld\n", i);
				return 3;
			}
		return 0;
	} else if (!strcmp(what, "div")) {
		return divide(argc, argc - 2);
	}
	printf("usage: hostile loop|recurse|stack|grow|malloc|oob|flood|div\n");
	return 2;
}
