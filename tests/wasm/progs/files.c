/* Reads /data/in.txt, writes /data/out.txt, and tries to escape the preopen. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	char line[128] = "";
	FILE *f = fopen("/data/in.txt", "r");
	if (!f || !fgets(line, sizeof line, f)) {
		printf("read failed: %s\n", strerror(errno));
		return 1;
	}
	fclose(f);
	printf("read: %s", line);
	f = fopen("/data/out.txt", "w");
	if (!f || fprintf(f, "written by wasm\n") < 0 || fclose(f) != 0) {
		printf("write failed: %s\n", strerror(errno));
		return 1;
	}
	f = fopen("/data/../escape.txt", "r");
	printf("escape: %s\n", f ? "OPENED" : "refused");
	f = fopen("/etc/passwd", "r");
	printf("outside: %s\n", f ? "OPENED" : "refused");
	return 0;
}
