/* Clocks, random bytes and seeking on stdio through WASI. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct timespec rt, m1, m2, res;
	unsigned char buf[64] = { 0 };
	int nonzero = 0;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &m1);
	clock_gettime(CLOCK_MONOTONIC, &m2);
	clock_getres(CLOCK_MONOTONIC, &res);
	if (getentropy(buf, sizeof buf) != 0)
		printf("getentropy failed\n");
	for (unsigned i = 0; i < sizeof buf; i++)
		nonzero += buf[i] != 0;
	printf("realtime_after_2020=%d\n", rt.tv_sec > 1577836800);
	printf("monotonic_ok=%d\n", m2.tv_sec > m1.tv_sec ||
				    (m2.tv_sec == m1.tv_sec && m2.tv_nsec >= m1.tv_nsec));
	printf("res_ok=%d\n", res.tv_sec == 0 && res.tv_nsec > 0);
	printf("random_ok=%d\n", nonzero > 40);
	return 0;
}
