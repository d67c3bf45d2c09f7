# lockstep: `make` builds the VMM and the test guest; `make check` runs every test.
CC      ?= gcc
CFLAGS  ?= -O2 -g
WERROR  ?= -Werror
CFLAGS  += -std=gnu11 -Wall -Wextra $(WERROR) -D_GNU_SOURCE -pthread -Isrc -Iabi -MMD -MP
LDLIBS  += -ljansson -lxxhash -lnbd -pthread

BUILD   := build
LIB_SRCS := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all bench-bins unit unit-plain unit-kvm unit-memcheck check integration fuzz fuzz-run bench clean
all: $(BUILD)/lockstep guest unit-bins bench-bins

include guest/guest.mk

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/liblockstep.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/lockstep: $(BUILD)/obj/src/main.o $(BUILD)/liblockstep.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# The guest's network stack (lwIP with the guest's configuration, its glue and
# the services), compiled for the host and fed valid and hostile frames.
NET_HOST_TEST := $(BUILD)/tests/net_host_test
NET_HOST_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra $(WERROR) -D_GNU_SOURCE -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined $(LWIP_INCLUDES) -Iguest/tests
NET_HOST_SRCS := guest/tests/net_host_test.c guest/tests/host_wire.c \
	$(filter-out guest/netstack/clock.c,$(wildcard guest/netstack/*.c)) $(wildcard guest/services/*.c)
NET_HOST_LWIP_OBJS := $(patsubst $(LWIP_DIR)/src/%.c,$(BUILD)/obj/host-lwip/%.o,$(LWIP_SRCS))
$(BUILD)/obj/host-lwip/%.o: $(LWIP_DIR)/src/%.c $(wildcard guest/lwip_port/*.h guest/lwip_port/arch/*.h) \
		| $(LWIP_MARKER)
	@mkdir -p $(dir $@)
	$(CC) $(NET_HOST_CFLAGS) $(LWIP_OWN_WARNINGS) -c $< -o $@
$(NET_HOST_TEST): $(NET_HOST_SRCS) $(NET_HOST_LWIP_OBJS) $(wildcard guest/tests/*.h guest/netstack/*.h \
		guest/services/*.h guest/lwip_port/*.h guest/lwip_port/arch/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(NET_HOST_CFLAGS) $(NET_HOST_SRCS) $(NET_HOST_LWIP_OBJS) -o $@

unit-bins: $(UNIT_BINS) $(NET_HOST_TEST)
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liblockstep.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/liblockstep.a -o $@ $(LDLIBS) -lcmocka

# Unit tests that open /dev/kvm (tests/unit/kvm_required.h) and those that do not:
# where /dev/kvm is missing, scripts/test.sh runs the first inside a virtual host.
UNIT_KVM_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(shell grep -l kvm_required.h $(UNIT_SRCS)))
UNIT_PLAIN_BINS := $(filter-out $(UNIT_KVM_BINS),$(UNIT_BINS)) $(NET_HOST_TEST)
unit: unit-plain unit-kvm
unit-plain: unit-bins
	@set -e; for t in $(UNIT_PLAIN_BINS); do echo "== $$t"; $$t; done
unit-kvm: unit-bins
	@set -e; for t in $(UNIT_KVM_BINS); do echo "== $$t"; $$t; done
# The plain unit tests under valgrind: a read of freed memory or a leak fails
# them (the block layer's threads and libnbd are where such bugs hide).
MEMCHECK := valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite
unit-memcheck: unit-bins
	@set -e; for t in $(filter-out $(NET_HOST_TEST),$(UNIT_PLAIN_BINS)); do echo "== memcheck $$t"; \
		$(MEMCHECK) $$t >/dev/null; done

integration: all
	/usr/bin/python3 -m pytest -v tests/integration

check: unit integration

# libFuzzer targets (clang): the library is compiled once with sanitizers and
# coverage into an archive each target links (it takes only what it uses).
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -pthread -Isrc -Iabi -fsanitize=fuzzer-no-link,address,undefined
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/fuzz/%.o)
$(BUILD)/obj/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/fuzz/liblockstep-fuzz.a: $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
-include $(FUZZ_LIB_OBJS:.o=.d)
fuzz: $(FUZZ_BINS) $(BUILD)/fuzz/fuzz_guest_net

# Every fuzz target for FUZZ_SECONDS each, from a copy of its seed corpus (CI runs this).
FUZZ_SECONDS ?= 10
fuzz-run: fuzz
	bash scripts/fuzz-run.sh $(FUZZ_SECONDS) $(FUZZ_BINS) $(BUILD)/fuzz/fuzz_guest_net

# The guest's network stack for the host (as the host test builds it), with libFuzzer.
GUEST_FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined \
	$(LWIP_INCLUDES) -Iguest/tests
GUEST_FUZZ_LWIP_OBJS := $(patsubst $(LWIP_DIR)/src/%.c,$(BUILD)/obj/fuzz-lwip/%.o,$(LWIP_SRCS))
$(BUILD)/obj/fuzz-lwip/%.o: $(LWIP_DIR)/src/%.c | $(LWIP_MARKER)
	@mkdir -p $(dir $@)
	clang $(GUEST_FUZZ_CFLAGS) -w -c $< -o $@
$(BUILD)/fuzz/fuzz_guest_net: fuzz/guest/fuzz_guest_net.c $(filter-out guest/tests/net_host_test.c,$(NET_HOST_SRCS)) \
		$(GUEST_FUZZ_LWIP_OBJS)
	@mkdir -p $(dir $@)
	clang $(GUEST_FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@
$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/fuzz/liblockstep-fuzz.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
bench-bins: $(BENCH_BINS) # built with everything, so they cannot rot unnoticed
$(BUILD)/bench/%: bench/%.c $(BUILD)/liblockstep.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/liblockstep.a -o $@ $(LDLIBS)

bench: all $(BENCH_BINS)
	bash scripts/bench.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
