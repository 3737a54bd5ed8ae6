# attn — build, test, sanitize, bench.
# Every src/*.c except main.c goes into build/libattn.a; tests/test_*.c are
# each one test binary; tests/cli_*.sh are end-to-end tests of the binary.
CC      ?= gcc
ARCH    ?= -march=native
OPT     ?= -O2
SAN     ?=
CFLAGS  := $(OPT) $(SAN) -std=c11 -Wall -Wextra -g -fopenmp-simd $(ARCH) -D_GNU_SOURCE -MMD -MP $(EXTRA_CFLAGS)
LDLIBS  := -lm -pthread $(SAN)
BUILD   ?= build

LIB_SRC   := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ   := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all test test-asan bench clean fixtures

all: $(BUILD)/attn attn

attn: $(BUILD)/attn
	@if [ "$(BUILD)" = build ]; then ln -sf build/attn attn; fi

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libattn.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/attn: $(BUILD)/obj/main.o $(BUILD)/libattn.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Tests may start OpenMP threads of their own (concurrency checks); attn
# itself uses OpenMP only for `omp simd`, and its threads are the pool's.
$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libattn.a | $(BUILD)/tests
	$(CC) $(CFLAGS) -fopenmp -Isrc -o $@ $< $(BUILD)/libattn.a $(LDLIBS) -fopenmp

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

test: $(BUILD)/attn $(TEST_BIN)
	@BUILD=$(BUILD) sh tests/run_tests.sh

# AddressSanitizer + UBSan build of the library, binary and tests, in build-asan/.
test-asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

bench: all
	sh bench/run.sh

fixtures:
	/usr/bin/python3 tools/reference.py fixtures tests/fixtures

clean:
	rm -rf build build-asan attn

-include $(LIB_OBJ:.o=.d) $(BUILD)/obj/main.d
