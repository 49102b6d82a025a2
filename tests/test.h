/*
 * test.h - the white-box test harness. A test file defines TEST(name)
 * functions and ends with TEST_MAIN(). Each test runs in its own forked
 * process, so a crash or leak in one cannot hide or fake the result of
 * another; the program prints one line per failure and, last,
 * "<file>: N passed, N failed".
 *
 *   TEST(sha_of_empty) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *   TEST_MAIN()
 *
 * Run one test: ./build/tests/store/test_store NAME
 */
#ifndef TH_TEST_H
#define TH_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*test_fn)(void);
struct test_case {
	const char *name;
	test_fn fn;
};

#define TEST_MAX 1024
static struct test_case test_cases[TEST_MAX];
static int test_count;
static int test_failed_checks;

#define TEST(name)                                                          \
	static void test_##name(void);                                      \
	__attribute__((constructor)) static void test_reg_##name(void)      \
	{                                                                   \
		if (test_count < TEST_MAX)                                  \
			test_cases[test_count++] =                          \
				(struct test_case){ #name, test_##name };   \
	}                                                                   \
	static void test_##name(void)

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "  %s:%d: CHECK failed: %s\n",      \
				__FILE__, __LINE__, #cond);                 \
			test_failed_checks++;                               \
		}                                                           \
	} while (0)

/* Like CHECK, but stops the test (for checks later lines depend on). */
#define REQUIRE(cond)                                                       \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "  %s:%d: REQUIRE failed: %s\n",    \
				__FILE__, __LINE__, #cond);                 \
			exit(1);                                            \
		}                                                           \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                  \
	do {                                                                \
		long long a_ = (long long)(a), b_ = (long long)(b);         \
		if (a_ != b_) {                                             \
			fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b, a_, b_);        \
			test_failed_checks++;                               \
		}                                                           \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                  \
	do {                                                                \
		const char *a_ = (a), *b_ = (b);                            \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                    \
			fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
				__FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)", \
				b_ ? b_ : "(null)");                        \
			test_failed_checks++;                               \
		}                                                           \
	} while (0)

static inline int test_main(const char *file, int argc, char **argv)
{
	int passed = 0, failed = 0;
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	for (int i = 0; i < test_count; i++) {
		if (argc > 1 && strcmp(argv[1], test_cases[i].name) != 0)
			continue;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			test_failed_checks = 0;
			test_cases[i].fn();
			fflush(NULL);
			_exit(test_failed_checks ? 1 : 0);
		}
		int status = 0;
		if (pid < 0 || waitpid(pid, &status, 0) < 0) {
			perror("fork");
			status = 1;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			passed++;
		} else {
			failed++;
			if (WIFSIGNALED(status))
				fprintf(stderr, "FAIL %s (signal %d)\n",
					test_cases[i].name, WTERMSIG(status));
			else
				fprintf(stderr, "FAIL %s\n", test_cases[i].name);
		}
	}
	printf("%s: %d passed, %d failed\n", base, passed, failed);
	return failed ? 1 : 0;
}

#define TEST_MAIN()                                                         \
	int main(int argc, char **argv)                                     \
	{                                                                   \
		return test_main(__FILE__, argc, argv);                     \
	}

#endif
