# The test guest: freestanding x86-64, entered through PVH, runs at CPL3.
GUEST_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra $(WERROR) -ffreestanding -fno-stack-protector \
	-fno-pic -fno-pie -mno-red-zone -mgeneral-regs-only -nostdinc \
	-fno-builtin -fno-asynchronous-unwind-tables -Iguest/include -Iguest -Iabi -DLOCKSTEP_GUEST -MMD -MP
GUEST_SRCS := $(shell find guest -name '*.c' -o -name '*.S' | grep -v '^guest/tests/' | sort)
GUEST_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(GUEST_SRCS))

# lwIP, the guest's TCP/IP stack, compiled from Debian's source package, which
# scripts/fetch-lwip.sh unpacks here (never copied into the repository).
LWIP_DIR := $(BUILD)/third_party/lwip
LWIP_MARKER := $(LWIP_DIR)/src/core/tcp.c
LWIP_SRCS := $(addprefix $(LWIP_DIR)/src/, \
	core/def.c core/inet_chksum.c core/init.c core/ip.c core/mem.c core/memp.c core/netif.c \
	core/pbuf.c core/stats.c core/sys.c core/tcp.c core/tcp_in.c core/tcp_out.c \
	core/timeouts.c core/udp.c \
	core/ipv4/etharp.c core/ipv4/icmp.c core/ipv4/ip4.c core/ipv4/ip4_addr.c core/ipv4/ip4_frag.c \
	core/ipv6/ethip6.c core/ipv6/icmp6.c core/ipv6/inet6.c core/ipv6/ip6.c core/ipv6/ip6_addr.c \
	core/ipv6/ip6_frag.c core/ipv6/mld6.c core/ipv6/nd6.c \
	netif/ethernet.c)
# Our configuration (lwipopts.h, arch/cc.h) and the glue, for the guest and the host test alike.
LWIP_INCLUDES := -Iguest/lwip_port -I$(LWIP_DIR)/src/include -Iguest/netstack -Iguest/services
GUEST_LWIP_OBJS := $(patsubst $(LWIP_DIR)/src/%.c,$(BUILD)/obj/lwip/%.o,$(LWIP_SRCS))
# lwIP's own files only: warnings its code triggers that are not ours to fix,
# and (in the guest) the freestanding <string.h> and <stdlib.h> it includes.
LWIP_OWN_WARNINGS := -Wno-unused-parameter -Wno-sign-compare -Wno-address -Wno-type-limits \
	-Wno-unused-but-set-variable -Wno-unused-variable
LWIP_OWN_CFLAGS := -Iguest/lwip_port/libc $(LWIP_OWN_WARNINGS)

.PHONY: guest
guest: $(BUILD)/guest/testguest.elf

# Without the lwIP tree nothing of the guest can build: say what to run.
$(LWIP_MARKER):
	@echo "error: lwIP source not found in $(LWIP_DIR)." >&2
	@echo "       Run scripts/setup.sh (or just scripts/fetch-lwip.sh) first." >&2
	@exit 1

$(BUILD)/obj/guest/%.c.o: guest/%.c | $(LWIP_MARKER)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) $(LWIP_INCLUDES) -c $< -o $@

$(BUILD)/obj/guest/%.S.o: guest/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/obj/lwip/%.o: $(LWIP_DIR)/src/%.c | $(LWIP_MARKER)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) $(LWIP_INCLUDES) $(LWIP_OWN_CFLAGS) -c $< -o $@

$(BUILD)/guest/testguest.elf: $(GUEST_OBJS) $(GUEST_LWIP_OBJS) guest/link.ld
	@mkdir -p $(dir $@)
	ld -nostdlib -static -z max-page-size=4096 -T guest/link.ld $(GUEST_OBJS) $(GUEST_LWIP_OBJS) -o $@
