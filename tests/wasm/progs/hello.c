/* Prints its arguments and $GREETING; exits with the code in argv[1]. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	const char *g = getenv("GREETING");
	printf("argc=%d\n", argc);
	for (int i = 1; i < argc; i++)
		printf("arg%d=%s\n", i, argv[i]);
	printf("greeting=%s\n", g ? g : "(none)");
	fprintf(stderr, "to stderr\n");
	return argc > 1 ? atoi(argv[1]) : 0;
}
