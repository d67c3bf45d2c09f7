/*
 * lwIP configuration of the test guest: raw API, no OS (NO_SYS), one
 * Ethernet interface with IPv4 and IPv6. The same file configures the host
 * build of the stack (guest/tests/net_host_test.c), so what the host test
 * exercises is what the guest runs.
 *
 * Sizes are chosen for a guest with 256 MiB of RAM serving ~100 concurrent
 * connections at full speed: memory is not the constraint here, VM exits are.
 */
#ifndef GUEST_LWIP_LWIPOPTS_H
#define GUEST_LWIP_LWIPOPTS_H

/* ---- system ---- */
#define NO_SYS 1
#define LWIP_TIMERS 1
#define SYS_LIGHTWEIGHT_PROT 0 /* one thread, and interrupts never enter lwIP */
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_SINGLE_NETIF 1

/* ---- memory: heap objects come from the guest's malloc (guest/lib/malloc.c) ---- */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8
#define MEMP_NUM_PBUF 256
#define MEMP_NUM_UDP_PCB 8
#define MEMP_NUM_TCP_PCB 512
#define MEMP_NUM_TCP_PCB_LISTEN 8
#define MEMP_NUM_TCP_SEG 16384
#define MEMP_NUM_REASSDATA 16
#define MEMP_NUM_FRAG_PBUF 64
#define MEMP_NUM_ARP_QUEUE 512
#define MEMP_NUM_ND6_QUEUE 512
#define MEMP_NUM_MLD6_GROUP 8
/* lwIP sizes this pool for its own cyclic timers only; the services add one-shot
 * timeouts (the stream's connection retry), so leave room for them. */
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
/* Received frames: one pool buffer holds a whole Ethernet frame. */
#define PBUF_POOL_SIZE 8192
#define PBUF_POOL_BUFSIZE 1536

/* ---- link ---- */
#define LWIP_ETHERNET 1
#define LWIP_ARP 1
/* Larger than the half-open connections syn_guard allows: a SYN flood from
 * forged addresses would otherwise push real peers out of the table (lwIP
 * evicts stable entries first), and every eviction costs a new ARP request. */
#define ARP_TABLE_SIZE 512
#define ARP_QUEUEING 1
#define ETH_PAD_SIZE 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0

/* ---- IPv4 ---- */
#define LWIP_IPV4 1
#define IP_FORWARD 0
#define IP_REASSEMBLY 1
#define IP_REASS_MAX_PBUFS 64 /* bounds what hostile fragments can pin */
#define IP_FRAG 1
#define LWIP_ICMP 1
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_RAW 0
#define LWIP_DNS 0

/* ---- IPv6: static addresses, neighbour discovery, no autoconfiguration ---- */
#define LWIP_IPV6 1
#define LWIP_IPV6_NUM_ADDRESSES 3
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0 /* addresses are set PREFERRED at start */
#define LWIP_IPV6_MLD 1
#define LWIP_IPV6_REASS 1
#define IPV6_FRAG_COPYHEADER 1 /* 64-bit pointers do not fit in the fragment header */
#define LWIP_IPV6_FRAG 1
#define LWIP_ICMP6 1
#define LWIP_ND6_QUEUEING 1
#define LWIP_ND6_NUM_NEIGHBORS 127 /* lwIP's limit (an s8_t index); above syn_guard's bound */
#define LWIP_ND6_NUM_DESTINATIONS 127 /* nd6_tmr counts them in an s8_t too */

/* ---- UDP and TCP ---- */
#define LWIP_UDP 1
#define LWIP_TCP 1
#define TCP_MSS 1460
/* 128 KiB windows (window scaling): a 10 MB body must not stall on window
 * updates, each of which costs the guest VM exits. */
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 2
#define TCP_WND (90 * TCP_MSS)
#define TCP_SND_BUF (90 * TCP_MSS)
#define TCP_SND_QUEUELEN ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
#define TCP_SNDLOWAT (16 * TCP_MSS) /* must stay below 64 KiB minus 4 MSS */
#define TCP_OVERSIZE TCP_MSS
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_PBUFS 128
#define TCP_OOSEQ_MAX_BYTES TCP_WND
#define LWIP_TCP_SACK_OUT 1
#define LWIP_TCP_MAX_SACK_NUM 4
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG 128
#define LWIP_TCP_TIMESTAMPS 0
#define LWIP_TCP_KEEPALIVE 0
/* Finer timers than the 250 ms default: delayed ACKs and retransmissions
 * react sooner, at the cost of 10 wake-ups a second while TCP is active. */
#define TCP_TMR_INTERVAL 100
#define LWIP_CHECKSUM_ON_COPY 1

/* Initial sequence numbers the way real stacks pick them (RFC 6528), so two
 * guests (COLO primary and secondary) choose different ones. */
#define LWIP_HOOK_FILENAME "lwip_hooks.h"
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
	lockstep_tcp_isn(local_ip, local_port, remote_ip, remote_port)

/* ---- counters (printed with stats=N, checked by the host test) ---- */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define LWIP_STATS_LARGE 1 /* 32-bit counters: 16-bit ones wrap within seconds */
#define MEM_STATS 0
#define MEMP_STATS 1
#define MIB2_STATS 0

/* LWIP_DEBUG stays undefined: lwIP tests it with #ifdef. */

#endif
