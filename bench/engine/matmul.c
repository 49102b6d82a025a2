/* Dense double-precision matrix multiply, 400x400 (i-k-j order). */
#include "bench.h"

#define N 400
static double A[N][N], B[N][N], C[N][N];

uint32_t bench_run(void)
{
	uint32_t x = bench_seed;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++) {
			x = x * 1103515245u + 12345u;
			A[i][j] = (double)(x >> 16 & 0xFF) / 16.0 - 8.0;
			x = x * 1103515245u + 12345u;
			B[i][j] = (double)(x >> 16 & 0xFF) / 16.0 - 8.0;
			C[i][j] = 0.0;
		}
	for (int rep = 0; rep < 12; rep++)
		for (int i = 0; i < N; i++)
			for (int k = 0; k < N; k++) {
				double a = A[i][k];
				for (int j = 0; j < N; j++)
					C[i][j] += a * B[k][j];
			}
	double sum = 0.0;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			sum += C[i][j] * (double)((i ^ j) & 7);
	return (uint32_t)(int64_t)sum;
}
BENCH_MAIN("matmul")
