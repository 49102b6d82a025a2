/*
 * fuzz_replay.c - libFuzzer target for chains received from others: the
 * input is the body of a chain export file (the records between the magic
 * and the checksum record; the target frames it and appends the matching
 * checksum, so the fuzzer reaches the parser instead of the hash). The file
 * is imported into a fresh home and, when that succeeds, the chain is
 * replayed with its own components - arbitrary events over arbitrary
 * WebAssembly. Every outcome must be a result or an error, never a crash,
 * leak or hang (replay runs with a fuel cap and a memory limit).
 *
 *   make build/fuzz/fuzz_replay
 *   build/fuzz/fuzz_replay -max_total_time=60 CORPUS_DIR tests/replay/fuzz-seeds
 */
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "theater/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char cmd[128], p[128];
	uint8_t *buf;
	size_t len = 8 + size + 5 + 32;
	unsigned sl = 0;
	ths_store *st = NULL;
	thx_store *cs = NULL;
	thx_store_opts so = { .no_background = true };
	ths_options sto = { .sync = THS_SYNC_NONE };
	thrp_import_info info;

	if (size > (1u << 20))
		return 0;
	if (!base[0])
		snprintf(base, sizeof base, "/tmp/fuzz-replay-%d", (int)getpid());
	snprintf(cmd, sizeof cmd, "rm -rf %s", base);
	if (system(cmd) != 0 || mkdir(base, 0700))
		return 0;
	buf = malloc(len);
	if (!buf)
		return 0;
	memcpy(buf, "THXPORT1", 8);
	memcpy(buf + 8, data, size);
	memcpy(buf + 8 + size, "Z\0\0\0\x20", 5);
	if (!EVP_Digest(buf, 8 + size, buf + 8 + size + 5, &sl, EVP_sha256(), NULL)) {
		free(buf);
		return 0;
	}
	snprintf(p, sizeof p, "%s/store", base);
	if (ths_open(p, &sto, &st, NULL)) {
		free(buf);
		return 0;
	}
	snprintf(p, sizeof p, "%s/chains", base);
	if (thx_store_open(p, &so, &cs, NULL)) {
		ths_close(st);
		free(buf);
		return 0;
	}
	if (!thrp_import(buf, len, cs, st, &info, NULL)) {
		thx_chain *c;
		thrp_report rep;
		thrp_opts o = { .fuel = 1000000, .memory_pages = 64 };
		if (!thx_chain_open(cs, info.chain, NULL, false, &c, NULL))
			thrp_replay(st, c, &o, &rep, NULL);
	}
	thx_store_close(cs);
	ths_close(st);
	free(buf);
	return 0;
}
