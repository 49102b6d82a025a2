/*
 * fuzz_chain.c - libFuzzer target for the chain segment reader: the input
 * is the body of a segment file (records after a valid 32-byte segment
 * header). Opening the store (recovery), reading every event, querying,
 * proving and verifying must give results or errors with locations, never
 * a crash, leak or hang. The input is also fed to the proof decoder.
 *
 *   make fuzz                      (bounded run of every target)
 *   build/fuzz/fuzz_chain -max_total_time=60 CORPUS_DIR tests/chain/fuzz-seeds
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static int count_fn(const thx_event *ev, void *arg)
{
	size_t *n = arg;
	*n += ev->len + (ev->damaged ? 1 : 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/fuzz-chain-%d", (int)getpid());
		mkdir(dir, 0755);
	}
	char path[128];
	snprintf(path, sizeof path, "%s/seg-00000001.0.log", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 0;
	uint8_t hdr[THX__SEG_HDR];
	thx__seg_header(hdr, 1, 0);
	if (write(fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr ||
	    (size && write(fd, data, size) != (ssize_t)size)) {
		close(fd);
		return 0;
	}
	close(fd);

	thx_proof p;
	thx_proof_decode(data, size, &p, NULL);

	thx_store *s = NULL;
	thx_store_opts o = { .read_only = true };
	if (thx_store_open(dir, &o, &s, NULL) == 0) {
		char **names;
		size_t n;
		if (thx_store_list(s, &names, &n, NULL) == 0) {
			for (size_t i = 0; i < n; i++) {
				thx_chain *c;
				if (thx_chain_open(s, names[i], NULL, false, &c, NULL))
					continue;
				uint64_t cnt = thx_chain_count(c);
				for (uint64_t k = 0; k < cnt && k < 64; k++) {
					thx_event ev;
					if (thx_get(c, k, &ev, NULL) == 0)
						thx_event_release(&ev);
					if (thx_prove(c, k, &p, NULL) == 0)
						thx_proof_check(&p, NULL, NULL);
				}
				size_t bytes = 0;
				thx_query_run(c, &(thx_query){ .type = "t", .limit = 16 }, count_fn,
					      &bytes, NULL);
				thx_query_run(c, &(thx_query){ .since_ns = 1 }, count_fn, &bytes,
					      NULL);
			}
			thx_free(names);
		}
		thx_verify_report r;
		thx_verify(s, NULL, NULL, NULL, &r, NULL);
		thx_store_close(s);
	}
	return 0;
}
