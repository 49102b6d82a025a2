# gen_large.awk - writes a C program of N functions (straight-line integer
# and float arithmetic, branches, small loops, memory traffic), all reachable
# through a function table, so that the engine's module preparation speed can
# be measured on a large module (~1.2 KB of code per function) built from
# source on any machine:  awk -v N=1000 -f gen_large.awk > large.c
BEGIN {
	srand(7)
	print "#include <stdint.h>"
	print "uint32_t mem[4096];"
	print "double fm[512];"
	print "typedef uint32_t (*fn)(uint32_t, uint32_t);"
	for (i = 0; i < N; i++) {
		printf "static uint32_t f%d(uint32_t a, uint32_t b) {\n", i
		printf "\tuint32_t x = a * %du + b, y = b ^ %du;\n\tdouble d = (double)a;\n", int(rand() * 1e6), int(rand() * 1e6)
		for (s = 0; s < 12; s++) {
			r = int(rand() * 4)
			if (r == 0) printf "\tx = (x << %d) ^ (y >> %d) ^ mem[(x + %d) & 4095u];\n", 1 + int(rand() * 30), 1 + int(rand() * 30), int(rand() * 4096)
			if (r == 1) printf "\tif (x > y) y += x %% %du; else x -= y / %du;\n", 1 + int(rand() * 99), 1 + int(rand() * 99)
			if (r == 2) printf "\td = d * %f + fm[(y + %d) & 511u];\n", rand(), int(rand() * 512)
			if (r == 3) printf "\tfor (uint32_t k = 0; k < (y & 7u); k++) mem[(x + k) & 4095u] += k * y;\n"
		}
		printf "\tfm[x & 511u] = d;\n\treturn x + y + (uint32_t)(int64_t)d;\n}\n"
	}
	printf "static const fn table[%d] = {", N
	for (i = 0; i < N; i++) printf "%sf%d", i ? ", " : "", i
	print "};"
	print "__attribute__((export_name(\"run\"))) uint32_t run(uint32_t a) {"
	printf "\tuint32_t s = 0;\n\tfor (uint32_t i = 0; i < %d; i++) s += table[(a + i) %% %d](s, i);\n\treturn s;\n}\n", N, N
}
