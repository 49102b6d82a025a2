# Theater in C - one `make` builds everything; `make test` runs every test.
#
#   make              library areas, the `theater` binary, test programs
#   make test         every test (unit, CLI, spec suite, toml-test)
#   make test-san     the same suite built with ASan+UBSan (in build-san/)
#   make check        test + test-san (what CI runs)
#   make test-AREA    one area's unit tests (AREA = base wasm store ...)
#   make spec         the WebAssembly core spec suite
#   make bench        all benchmarks (see bench/README.md)
#   make fuzz         bounded libFuzzer runs over the untrusted-input parsers
#   make demo         the README's main command
#
# Layout: src/AREA/*.c -> build/lib/libth_AREA.a; src/cli -> build/theater;
# tests/AREA/test_*.c -> build/tests/AREA/test_* (each its own program).

BUILD ?= build
CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

# Truncating snprintf into fixed message buffers is deliberate: no -Wformat-truncation.
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wformat=2 -Wundef -Wvla -Wwrite-strings \
	-Wno-missing-field-initializers -Wno-format-truncation -Werror
OPT ?= -O2 -g
CFLAGS_ALL = -std=gnu11 $(OPT) $(WARN) -fvisibility=hidden -pthread \
	-D_GNU_SOURCE -Iinclude -Isrc $(EXTRA_CFLAGS)
LDFLAGS_ALL = -pthread $(EXTRA_LDFLAGS)

# Link-time optimisation for the programs that run actors for users and
# for measurement (theater, bench/*): calls between areas (the runtime's
# recording into the chain, the CBOR encoder, the engine's memory
# accessors) get inlined. Objects carry machine code as well
# (-ffat-lto-objects), so the test programs and tools link the usual way,
# without a whole-program pass each. `make LTO=` builds without. (GCC's
# maybe-uninitialized analysis after cross-file inlining reports paths
# that cannot happen; every file is compiled with it on first.)
LTO ?= -flto=auto
LTO_LINK = $(if $(LTO),$(LTO) -Wno-maybe-uninitialized)
NO_LTO = $(if $(LTO),-fno-lto)

ifeq ($(SAN),1)
BUILD := build-san
LTO :=
OPT := -O1 -g -fno-omit-frame-pointer
EXTRA_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined
EXTRA_LDFLAGS += -fsanitize=address,undefined
endif

# Areas in link order (a library before the ones it uses).
AREAS := replay net runtime handlers component toml chain store wasm base
# External libraries by area.
LIBS_store := -lcrypto
LIBS_chain := -lcrypto
LIBS_replay := -lcrypto
LIBS_base := -lm
LIBS_net := -levent -levent_openssl -lssl -lcrypto -lzstd -lwslay
# Areas each area's tests link against (itself first). runtime and handlers
# call each other, so runtime is listed again after handlers for the linker.
DEPS_base := base
DEPS_wasm := wasm base
DEPS_store := store base
DEPS_chain := chain base
DEPS_toml := toml base
DEPS_component := component wasm base
DEPS_net := net chain store base
DEPS_runtime := runtime handlers runtime component wasm toml chain store base
DEPS_replay := replay runtime handlers runtime component wasm toml chain store base
DEPS_cli := $(AREAS)

area_srcs = $(wildcard src/$(1)/*.c)
area_objs = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(call area_srcs,$(1)))
area_lib = $(BUILD)/lib/libth_$(1).a
libs_of = $(foreach a,$(DEPS_$(1)),$(call area_lib,$(a)))
extlibs_of = $(foreach a,$(DEPS_$(1)),$(LIBS_$(a))) -lm

LIBFILES := $(foreach a,$(AREAS),$(if $(call area_srcs,$(a)),$(call area_lib,$(a))))
CLI_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/cli/*.c))
THEATER := $(BUILD)/theater

TEST_SRCS := $(wildcard tests/*/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_BINS := $(patsubst tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

.PHONY: all deps test test-san check spec bench fuzz demo clean
.SECONDARY:

all: $(THEATER) $(TEST_BINS) $(TOOL_BINS)

deps:
	@sh scripts/setup.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(if $(LTO),$(LTO) -ffat-lto-objects) -MMD -MP -c $< -o $@

define AREA_RULES
$(call area_lib,$(1)): $(call area_objs,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/tests/$(1)/%: tests/$(1)/%.c tests/test.h $(call libs_of,$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_ALL) $$(NO_LTO) -Itests -MMD -MP $$< -o $$@ $(call libs_of,$(1)) $$(LDFLAGS_ALL) $(call extlibs_of,$(1))

test-$(1): $(filter $(BUILD)/tests/$(1)/%,$(TEST_BINS))
	@sh tests/run.sh $(BUILD) $(1)
endef
$(foreach a,$(AREAS),$(eval $(call AREA_RULES,$(a))))

# The replay, net, store, chain and runtime areas' black-box tests drive the
# theater binary.
test-runtime: $(THEATER)
test-replay: $(THEATER)
test-net: $(THEATER)
test-store: $(THEATER)
test-chain: $(THEATER)

$(THEATER): $(CLI_OBJS) $(LIBFILES)
	$(CC) $(CFLAGS_ALL) $(LTO_LINK) -o $@ $(CLI_OBJS) $(LIBFILES) $(LDFLAGS_ALL) $(call extlibs_of,cli)

$(BUILD)/tools/%: tools/%.c $(LIBFILES)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(NO_LTO) -MMD -MP $< -o $@ $(LIBFILES) $(LDFLAGS_ALL) $(call extlibs_of,cli)

test: deps all
	@sh tests/run.sh $(BUILD) all

test-san:
	@$(MAKE) --no-print-directory SAN=1 test

check:
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory test-san

spec: deps all
	@sh tests/spec/run.sh $(BUILD)

demo: deps all
	@sh scripts/demo.sh $(BUILD)

# libFuzzer targets: fuzz/fuzz_X.c -> $(BUILD)/fuzz/fuzz_X, compiled with clang
# together with the sources of the areas in FUZZ_DEPS_fuzz_X; `make fuzz` runs
# each for FUZZ_SECONDS, keeping new inputs in $(BUILD)/fuzz/corpus-fuzz_X and
# reading seeds from FUZZ_SEEDS_fuzz_X.
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_DEPS_fuzz_toml := toml base
FUZZ_SEEDS_fuzz_toml := ../shared/testdata/toml-test/valid
FUZZ_DEPS_fuzz_frame := net chain store base
FUZZ_SEEDS_fuzz_frame := tests/net/frames
FUZZ_DEPS_fuzz_ws := net chain store base
FUZZ_SEEDS_fuzz_ws := tests/net/ws-heads
FUZZ_DEPS_fuzz_component := component wasm base
FUZZ_DEPS_fuzz_chain := chain base
FUZZ_SEEDS_fuzz_chain := tests/chain/fuzz-seeds
FUZZ_DEPS_fuzz_replay := replay runtime handlers component wasm toml chain store base
FUZZ_SEEDS_fuzz_replay := tests/replay/fuzz-seeds
FUZZ_SEEDS_fuzz_component := build/test-component
FUZZ_DEPS_fuzz_wasm := wasm base
FUZZ_SEEDS_fuzz_wasm := $(BUILD)/fuzz/seeds-wasm
# The engine's seeds: the spec suite's modules (converted by tests/spec/run.sh).
$(BUILD)/fuzz/fuzz_wasm: | $(BUILD)/fuzz/seeds-wasm
$(BUILD)/fuzz/seeds-wasm:
	SPEC_CONVERT_ONLY=1 sh tests/spec/run.sh $(BUILD)
	mkdir -p $@ && find $(BUILD)/spec -name '*.wasm' -size -64k -exec cp {} $@/ \;

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
		-Iinclude -Isrc $< $(foreach a,$(FUZZ_DEPS_fuzz_$*),$(call area_srcs,$(a))) \
		-o $@ -pthread -lm $(foreach a,$(FUZZ_DEPS_fuzz_$*),$(LIBS_$(a)))

fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
	@$(foreach t,$(FUZZ_TARGETS),mkdir -p $(BUILD)/fuzz/corpus-$(t) && \
		echo "fuzz $(t) ($(FUZZ_SECONDS) s)" && \
		$(BUILD)/fuzz/$(t) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(BUILD)/fuzz/corpus-$(t) $(FUZZ_SEEDS_$(t)) &&) true

# Store benchmark (results in docs/store.md).
.PHONY: bench-store
$(BUILD)/bench/store/bench_store: bench/store/bench_store.c $(call libs_of,store)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LTO_LINK) -MMD -MP $< -o $@ $(call libs_of,store) $(LDFLAGS_ALL) $(call extlibs_of,store)

bench-store: $(BUILD)/bench/store/bench_store
	$(BUILD)/bench/store/bench_store

bench: bench-store

# Engine benchmarks: C programs natively, on the engine, V8 and wasm-interp,
# plus micro-benchmarks (results in docs/engine-bench.md).
.PHONY: bench-engine
bench-engine: $(THEATER) $(BUILD)/tools/bench_engine
	@sh bench/engine/run.sh $(BUILD)

bench: bench-engine

# Event Chain benchmark (results in docs/chain.md).
.PHONY: bench-chain
$(BUILD)/bench/chain/bench_chain: bench/chain/bench_chain.c $(call libs_of,chain)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LTO_LINK) -MMD -MP $< -o $@ $(call libs_of,chain) $(LDFLAGS_ALL) $(call extlibs_of,chain)

bench-chain: $(BUILD)/bench/chain/bench_chain
	$(BUILD)/bench/chain/bench_chain

bench: bench-chain

# world.c embeds the WIT with .incbin, which -MMD does not see.
$(BUILD)/obj/component/world.o: wit/theater-simple.wit

# Component layer benchmark (results in docs/component.md).
.PHONY: bench-component
$(BUILD)/bench/component/bench_call: bench/component/bench_call.c $(call libs_of,component)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LTO_LINK) -MMD -MP $< -o $@ $(call libs_of,component) $(LDFLAGS_ALL) $(call extlibs_of,component)

bench-component: $(BUILD)/bench/component/bench_call
	$(BUILD)/bench/component/bench_call

bench: bench-component

# Runtime benchmarks, Savina-style, against Erlang/OTP (docs/runtime.md).
.PHONY: bench-runtime
$(BUILD)/bench/runtime/bench_runtime: bench/runtime/bench_runtime.c $(call libs_of,runtime)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LTO_LINK) -MMD -MP $< -o $@ $(call libs_of,runtime) $(LDFLAGS_ALL) $(call extlibs_of,runtime)

$(BUILD)/bench/runtime/fresh_pages: bench/runtime/fresh_pages.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@

bench-runtime: $(BUILD)/bench/runtime/bench_runtime $(BUILD)/bench/runtime/fresh_pages
	sh bench/runtime/run.sh $(BUILD) $(BENCH_ARGS)

bench: bench-runtime

# Supervision benchmarks: restart latency, healthy latency during a failure
# storm (docs/supervision.md).
.PHONY: bench-supervision
$(BUILD)/bench/supervision/bench_supervision: bench/supervision/bench_supervision.c $(call libs_of,runtime)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LTO_LINK) -MMD -MP $< -o $@ $(call libs_of,runtime) $(LDFLAGS_ALL) $(call extlibs_of,runtime)

bench-supervision: $(BUILD)/bench/supervision/bench_supervision
	sh bench/supervision/run.sh $(BUILD) $(BENCH_ARGS)

bench: bench-supervision

# Network benchmark (results in docs/protocol.md).
.PHONY: bench-net
$(BUILD)/bench/net/bench_net: bench/net/bench_net.c src/cli/server_rt.c $(LIBFILES)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LTO_LINK) bench/net/bench_net.c src/cli/server_rt.c -o $@ $(LIBFILES) $(LDFLAGS_ALL) $(call extlibs_of,cli)

bench-net: $(BUILD)/bench/net/bench_net
	$(BUILD)/bench/net/bench_net

bench: bench-net

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Replay speed against the live run (docs/replay.md).
.PHONY: bench-replay
$(BUILD)/bench/replay/bench_replay: bench/replay/bench_replay.c $(call libs_of,replay)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LTO_LINK) -MMD -MP $< -o $@ $(call libs_of,replay) $(LDFLAGS_ALL) $(call extlibs_of,replay)

bench-replay: $(BUILD)/bench/replay/bench_replay
	wat2wasm tests/runtime/actors/counter.wat -o $(BUILD)/bench/replay/counter.wasm
	$(BUILD)/bench/replay/bench_replay $(BUILD)/bench/replay/counter.wasm $(BENCH_ARGS)

bench: bench-replay
