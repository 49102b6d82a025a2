/* Copies stdin to stdout in upper case, then exit(5) via proc_exit. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	int c;
	long n = 0;
	while ((c = getchar()) != EOF) {
		putchar(toupper(c));
		n++;
	}
	printf("[%ld bytes]\n", n);
	fflush(stdout);
	exit(5);
}
