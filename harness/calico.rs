//! Values Calico's source fixes: host-end names, the host-end MAC, the link-local gateway.

use sha1::{Digest, Sha1};
use std::net::Ipv4Addr;

/// The MAC Calico's CNI plugin gives every host end (`ee:ee:ee:ee:ee:ee`).
pub const HOST_END_MAC: [u8; 6] = [0xee; 6];
/// The same MAC as `ip -j` prints it.
pub const HOST_END_MAC_STR: &str = "ee:ee:ee:ee:ee:ee";
/// The IPv4 sysctls the CNI plugin and Felix write on a host end (VETH-4), as
/// `(<conf|neigh>.<leaf>, value)`.
pub const HOST_END_SYSCTLS: [(&str, &str); 4] = [
    ("conf.proxy_arp", "1"),
    ("neigh.proxy_delay", "0"),
    ("conf.forwarding", "1"),
    ("conf.route_localnet", "1"),
];
/// The pod's default gateway: an address no device holds, answered by proxy ARP.
pub const LINK_LOCAL_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The VXLAN network identifier Felix uses for IPv4.
pub const VXLAN_VNI: u32 = 4096;
/// The VXLAN network identifier Felix uses for IPv6: the same `VXLANVNI` as for IPv4 (Felix's
/// `vxlan_mgr.go` gives both managers `RulesConfig.VXLANVNI`; the sockets differ by family).
pub const VXLAN_V6_VNI: u32 = VXLAN_VNI;
/// Felix's IPv6 VXLAN device name.
pub const VXLAN_V6_DEVICE: &str = "vxlan-v6.calico";
/// The VXLAN UDP port Felix uses.
pub const VXLAN_PORT: u16 = 4789;
/// Felix's VXLAN device name.
pub const VXLAN_DEVICE: &str = "vxlan.calico";
/// The IPIP device name.
pub const IPIP_DEVICE: &str = "tunl0";
/// The article's server pod (containers `hello-world-server` and `curl-client`).
pub const SERVER_POD: &str = "c2c-network-demo";
/// The article's client pod, on the server's node.
pub const CLIENT_POD: &str = "test-tools";
/// The client pod on another node (cross-node claims); the suite adds it to the article's two.
pub const REMOTE_POD: &str = "test-tools-remote";
/// A sweep's pod on a node that runs none of the article's pods (Calico-networked, sleeping):
/// XN-1 and MTU-2 ping from and to it, so every swept node is a source and a destination.
pub fn pinger_name(node: &str) -> String {
    // Pod names are DNS subdomains (253 characters); node names are too.
    format!("calico-pinger-{node}").chars().take(253).collect()
}
/// The article's HTTP port.
pub const HTTP_PORT: u16 = 8080;

/// The body the article's server answers with, for a pod of that name.
pub fn article_body(pod: &str) -> String {
    format!("<p>Hi from {pod}</p>")
}

/// The host-end name Calico's CNI plugin gives a pod's veth: `cali` + the first 11 hex
/// characters of SHA-1 of `"<namespace>.<pod>"` (libcalico-go `VethNameForWorkload`, default
/// prefix `cali`).
pub fn host_end_name(namespace: &str, pod: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{pod}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("cali{}", &hex[..11])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_end_names_match_the_article() {
        assert_eq!(
            host_end_name("default", "c2c-network-demo"),
            "calid9d486e54a8"
        );
        assert_eq!(host_end_name("default", "test-tools"), "calied9d42cb137");
    }
}
