//! Frames parsed from pcap data: Ethernet, ARP, IPv4, TCP, UDP, ICMP, and the inner packet of
//! VXLAN (UDP 4789) and IPIP (IP protocol 4).

use std::net::Ipv4Addr;
use std::time::Duration;

/// pcap link types the parser understands.
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// A MAC address.
pub type Mac = [u8; 6];

/// Formats a MAC the way `ip` prints it (`ee:ee:ee:ee:ee:ee`).
pub fn mac_str(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Capture timestamp (since the epoch).
    pub ts: Duration,
    /// Link-layer addresses, when the link type has them.
    pub eth: Option<EthHeader>,
    pub l3: L3,
}

/// Ethernet source and destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthHeader {
    pub src: Mac,
    pub dst: Mac,
}

/// The network layer.
#[derive(Debug, Clone, PartialEq)]
pub enum L3 {
    Arp(Arp),
    Ipv4(Ipv4),
    /// IPv6 is recognised but not decoded further.
    Ipv6,
    /// Any other EtherType.
    Other(u16),
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
    Other(u16),
}

/// An ARP packet (Ethernet/IPv4).
#[derive(Debug, Clone, PartialEq)]
pub struct Arp {
    pub op: ArpOp,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

/// An IPv4 packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// IP protocol number.
    pub protocol: u8,
    pub l4: L4,
    /// The decapsulated inner packet (VXLAN or IPIP), when this packet carries one.
    pub inner: Option<Box<Encapsulated>>,
}

/// What an encapsulating packet carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Encapsulated {
    pub kind: EncapKind,
    /// The inner frame (for VXLAN with its inner Ethernet header; for IPIP without).
    pub frame: Frame,
}

/// The encapsulation seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapKind {
    Vxlan { vni: u32 },
    Ipip,
}

/// The transport layer.
#[derive(Debug, Clone, PartialEq)]
pub enum L4 {
    Tcp(Tcp),
    Udp { src_port: u16, dst_port: u16, payload_len: usize },
    Icmp { icmp_type: u8, code: u8, id: u16, seq: u16 },
    Other,
}

/// A TCP segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub payload: Vec<u8>,
}
