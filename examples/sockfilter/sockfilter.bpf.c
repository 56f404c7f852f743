// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* sockfilter: count the packets seen on one interface by IP protocol.
 * A socket filter (SEC("socket")) runs on the raw AF_PACKET socket the runner
 * opens on the attach target; it returns 0, so the socket never queues a
 * packet: the count in the map is the only output. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define PACKET_OUTGOING 4
#define LOOPBACK_IFINDEX 1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* IP protocol number (IPv4 protocol / IPv6 next header) -> packets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, u64);
} proto_count SEC(".maps");

/* never written: the guest waits on it with a timeout (the interval) */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	__u16 eth_proto;
	__u8 proto;
	u32 key;
	u64 *val;

	/* on lo every packet passes twice (sent, then received): like
	 * libpcap, count the received copy only */
	if (skb->pkt_type == PACKET_OUTGOING && skb->ifindex == LOOPBACK_IFINDEX)
		return 0;
	/* skb data starts at the link-layer header (lo and veth: Ethernet) */
	if (bpf_skb_load_bytes(skb, 12, &eth_proto, sizeof(eth_proto)) < 0)
		return 0;
	eth_proto = bpf_ntohs(eth_proto);
	if (eth_proto == ETH_P_IP) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 9, &proto, 1) < 0)
			return 0;
	} else if (eth_proto == ETH_P_IPV6) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 6, &proto, 1) < 0)
			return 0;
	} else {
		return 0;
	}
	key = proto;
	val = bpf_map_lookup_elem(&proto_count, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
	return 0; /* drop: nothing is queued on the runner's socket */
}
