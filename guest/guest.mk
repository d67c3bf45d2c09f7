# The test guest: freestanding x86-64, entered through PVH, runs at CPL3.
GUEST_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra $(WERROR) -ffreestanding -fno-stack-protector \
	-fno-pic -fno-pie -mno-red-zone -mgeneral-regs-only -nostdinc \
	-fno-builtin -fno-asynchronous-unwind-tables -Iguest/include -Iguest -Iabi -DLOCKSTEP_GUEST -MMD -MP
GUEST_SRCS := $(shell find guest -name '*.c' -o -name '*.S' | grep -v '^guest/tests/' | sort)
GUEST_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(GUEST_SRCS))

.PHONY: guest
guest: $(BUILD)/guest/testguest.elf

$(BUILD)/obj/guest/%.c.o: guest/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/obj/guest/%.S.o: guest/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/guest/testguest.elf: $(GUEST_OBJS) guest/link.ld
	@mkdir -p $(dir $@)
	ld -nostdlib -static -z max-page-size=4096 -T guest/link.ld $(GUEST_OBJS) -o $@
