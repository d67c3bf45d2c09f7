/*
 * Failover announcements: the guest's addresses learned from its frames (ARP,
 * IPv4, IPv6; untagged, 802.1Q and 802.1Q-in-802.1ad), each announced on the
 * VLAN where it was used, as a gratuitous ARP or an unsolicited neighbour
 * advertisement that net/packet.c parses and whose checksum is right; hostile
 * frames teach nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "net/announce.h"
#include "net/packet.h"
#include "net_frames.h"

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
static uint8_t frame[NF_MAX_FRAME];

static struct nf_flow flow(int family, int vlans)
{
	struct nf_flow f = family == 4 ? nf_flow4() : nf_flow6();

	f.vlans = vlans;
	f.vlan_id = 100;
	return f;
}

static void learn_udp(struct guest_addrs *a, const struct nf_flow *f)
{
	size_t len = nf_udp(frame, f, true, "x", 1);

	guest_addrs_learn(a, frame, len);
}

static void test_learns_each_address_once(void **state)
{
	struct guest_addrs a = { 0 };
	struct nf_flow f4 = flow(4, 0), f6 = flow(6, 0);

	(void)state;
	learn_udp(&a, &f4);
	learn_udp(&a, &f4);
	guest_addrs_learn(&a, frame, nf_arp(frame, &f4, 1));
	learn_udp(&a, &f6);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.addr[0].family, 4);
	assert_memory_equal(a.addr[0].ip, f4.a, 4);
	assert_int_equal(a.addr[1].family, 6);
	assert_memory_equal(a.addr[1].ip, f6.a, 16);
}

static void test_garp_on_the_guests_vlan(void **state)
{
	for (int vlans = 0; vlans <= 2; vlans++) {
		struct guest_addrs a = { 0 };
		struct nf_flow f = flow(4, vlans);
		struct pkt_info p;
		uint8_t out[ANNOUNCE_FRAME_MAX];
		size_t len, arp;

		(void)state;
		guest_addrs_learn(&a, frame, nf_arp(frame, &f, 2));
		assert_int_equal(a.n, 1);
		len = announce_frame(out, guest_mac, &a.addr[0]);
		assert_true(len >= 60 && len <= ANNOUNCE_FRAME_MAX);
		assert_int_equal(pkt_parse(out, len, &p), 0);
		assert_int_equal(p.vlan_depth, vlans);
		assert_int_equal(p.vlan_id, vlans ? 100 : 0);
		assert_int_equal(p.ethertype, PKT_ETH_ARP);
		assert_memory_equal(p.eth_src, guest_mac, 6);
		assert_memory_equal(p.eth_dst, "\xff\xff\xff\xff\xff\xff", 6);
		arp = PKT_ETH_HLEN + 4u * (unsigned)vlans;
		assert_memory_equal(out + arp + 8, guest_mac, 6); /* sender MAC */
		assert_memory_equal(out + arp + 14, f.a, 4);      /* sender IP */
		assert_memory_equal(out + arp + 24, f.a, 4);      /* target IP: gratuitous */
	}
}

static void test_na_on_the_guests_vlan_with_a_valid_checksum(void **state)
{
	for (int vlans = 0; vlans <= 2; vlans++) {
		struct guest_addrs a = { 0 };
		struct nf_flow f = flow(6, vlans);
		struct pkt_info p;
		uint8_t out[ANNOUNCE_FRAME_MAX];
		size_t len;

		(void)state;
		learn_udp(&a, &f);
		len = announce_frame(out, guest_mac, &a.addr[0]);
		assert_true(len <= ANNOUNCE_FRAME_MAX);
		assert_int_equal(pkt_parse(out, len, &p), 0);
		assert_int_equal(p.vlan_depth, vlans);
		assert_int_equal(p.l3, PKT_L3_IPV6);
		assert_int_equal(p.l4, PKT_L4_ICMPV6);
		assert_int_equal(p.icmp_type, 136);
		assert_memory_equal(p.src, f.a, 16);
		assert_memory_equal(out + p.l4_off + 8, f.a, 16); /* target */
		assert_memory_equal(out + p.l4_off + 26, guest_mac, 6);
		assert_int_equal(nf_l4_csum(6, p.src, p.dst, 58, out + p.l4_off, p.l4_len), 0);
	}
}

static void test_same_address_on_two_vlans_is_announced_on_both(void **state)
{
	struct guest_addrs a = { 0 };
	struct nf_flow untagged = flow(4, 0), tagged = flow(4, 1);

	(void)state;
	learn_udp(&a, &untagged);
	learn_udp(&a, &tagged);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.addr[0].ntags, 0);
	assert_int_equal(a.addr[1].ntags, 1);
}

static void test_hostile_frames_teach_nothing(void **state)
{
	struct guest_addrs a = { 0 };
	struct nf_flow f = flow(4, 1);
	size_t len = nf_udp(frame, &f, true, "x", 1);

	(void)state;
	for (size_t cut = 0; cut < len - 8; cut++) /* every truncation short of the UDP payload */
		guest_addrs_learn(&a, frame, cut);
	guest_addrs_learn(&a, frame, nf_arp(frame, &f, 1) - 40); /* ARP without its body */
	memset(f.a, 0, 4);                                       /* 0.0.0.0 is nobody's */
	learn_udp(&a, &f);
	f.a[0] = 224; /* nor is a multicast address */
	learn_udp(&a, &f);
	assert_int_equal(a.n, 0);
}

static void test_address_table_is_bounded(void **state)
{
	struct guest_addrs a = { 0 };
	struct nf_flow f = flow(4, 0);

	(void)state;
	for (int i = 1; i <= ANNOUNCE_MAX_ADDRS + 5; i++) {
		f.a[3] = (uint8_t)i;
		learn_udp(&a, &f);
	}
	assert_int_equal(a.n, ANNOUNCE_MAX_ADDRS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_learns_each_address_once),
		cmocka_unit_test(test_garp_on_the_guests_vlan),
		cmocka_unit_test(test_na_on_the_guests_vlan_with_a_valid_checksum),
		cmocka_unit_test(test_same_address_on_two_vlans_is_announced_on_both),
		cmocka_unit_test(test_hostile_frames_teach_nothing),
		cmocka_unit_test(test_address_table_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
