//! Frames parsed from pcap data: Ethernet (with VLAN tags), Linux cooked captures, ARP, IPv4,
//! IPv6, TCP, UDP, ICMP, ICMPv6 (with NDP neighbor solicitations and advertisements), and the
//! inner packet of VXLAN (UDP 4789, over IPv4 or IPv6) and IPIP (IP protocol 4).
//!
//! pcap records are read by `pcap-file` ([`PcapStreamReader`], for a live `tcpdump -w -` stream
//! as for a file), headers are decoded by `etherparse`'s lax slicing.

use crate::error::{Error, Result};
use etherparse::{
    ArpOperation, ArpPacketSlice, EtherType, Icmpv4Type, Icmpv6Slice, Icmpv6Type, IpNumber,
    Ipv6ExtensionSlice, LaxIpv4Slice, LaxIpv6Slice, LaxNetSlice, LaxSlicedPacket, LinkSlice,
    TcpOptionElement, TransportSlice,
};
pub use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::{Endianness, PcapError, TsResolution};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

/// The UDP port of VXLAN (IANA; Calico's default).
pub const VXLAN_PORT: u16 = 4789;
/// The snapshot length [`write_pcap`] records in its header.
pub const SNAPLEN: u32 = 262_144;

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
    /// The network layer.
    pub l3: L3,
}

/// Ethernet source and destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthHeader {
    /// Source MAC.
    pub src: Mac,
    /// Destination MAC.
    pub dst: Mac,
}

/// The network layer.
#[derive(Debug, Clone, PartialEq)]
pub enum L3 {
    /// ARP (Ethernet/IPv4).
    Arp(Arp),
    /// IPv4 with its transport layer.
    Ipv4(Ipv4),
    /// IPv6 with its transport layer.
    Ipv6(Ipv6),
    /// Any other EtherType.
    Other(u16),
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    /// `who-has` (1).
    Request,
    /// `is-at` (2).
    Reply,
    /// Any other operation code.
    Other(u16),
}

/// An ARP packet (Ethernet/IPv4).
#[derive(Debug, Clone, PartialEq)]
pub struct Arp {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address (in a reply: the answer).
    pub sender_mac: Mac,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_mac: Mac,
    /// Target protocol address (in a request: the address asked for).
    pub target_ip: Ipv4Addr,
}

/// An IPv4 packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live as captured.
    pub ttl: u8,
    /// IP protocol number.
    pub protocol: u8,
    /// The header's total length: the packet's size on the wire, header included (what an
    /// MTU limits), whatever the capture's snap length kept.
    pub total_len: u16,
    /// The header's fragmentation fields: DF, MF and the fragment offset (in 8-byte units).
    pub frag: Fragmentation,
    /// The transport layer.
    pub l4: L4,
    /// The decapsulated inner packet (VXLAN or IPIP), when this packet carries one.
    pub inner: Option<Box<Encapsulated>>,
}

/// An IPv6 packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Ipv6 {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Hop limit as captured.
    pub hop_limit: u8,
    /// The upper-layer protocol: the next header after any extension headers (6 TCP, 17 UDP,
    /// 58 ICMPv6).
    pub next_header: u8,
    /// The header's payload length: the bytes after the 40-byte fixed header (extension headers
    /// included) on the wire, whatever the capture's snap length kept.
    pub payload_len: u16,
    /// The transport layer.
    pub l4: L4,
    /// The decapsulated inner packet (VXLAN), when this packet carries one.
    pub inner: Option<Box<Encapsulated>>,
}

/// An ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv6 {
    /// ICMPv6 type (128 echo request, 129 echo reply, 135 neighbor solicitation, 136 neighbor
    /// advertisement).
    pub icmp_type: u8,
    /// ICMPv6 code.
    pub code: u8,
    /// Echo identifier (0 for other types).
    pub id: u16,
    /// Echo sequence number (0 for other types).
    pub seq: u16,
    /// The neighbor solicitation or advertisement, when the message is one and its body (up to
    /// the target address) was captured.
    pub ndp: Option<Ndp>,
}

/// An NDP neighbor solicitation or advertisement (RFC 4861).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ndp {
    /// Neighbor solicitation (ICMPv6 type 135): `who-has target`.
    Solicitation {
        /// The address asked for.
        target: Ipv6Addr,
        /// The source link-layer address option (type 1), when present.
        source_mac: Option<Mac>,
    },
    /// Neighbor advertisement (ICMPv6 type 136): `target is-at target_mac`.
    Advertisement {
        /// The address advertised.
        target: Ipv6Addr,
        /// R: the sender is a router.
        router: bool,
        /// S: sent in answer to a solicitation.
        solicited: bool,
        /// O: the advertisement overrides a cached link-layer address.
        override_: bool,
        /// The target link-layer address option (type 2), when present.
        target_mac: Option<Mac>,
    },
}

impl Ndp {
    /// The target address (solicited or advertised).
    pub fn target(&self) -> Ipv6Addr {
        match self {
            Ndp::Solicitation { target, .. } | Ndp::Advertisement { target, .. } => *target,
        }
    }
}

/// An IPv4 header's fragmentation fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fragmentation {
    /// Don't Fragment.
    pub dont_fragment: bool,
    /// More Fragments.
    pub more_fragments: bool,
    /// The fragment offset, in 8-byte units.
    pub offset: u16,
}

impl Fragmentation {
    /// True when the packet is a fragment of a larger one (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.offset != 0
    }
}

/// What an encapsulating packet carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Encapsulated {
    /// VXLAN (with its VNI) or IPIP.
    pub kind: EncapKind,
    /// The inner frame (for VXLAN with its inner Ethernet header; for IPIP without).
    pub frame: Frame,
}

/// The encapsulation seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapKind {
    /// VXLAN over UDP 4789, with its VNI (Calico: 4096 over IPv4 and over IPv6).
    Vxlan {
        /// The VXLAN network identifier.
        vni: u32,
    },
    /// IP-in-IP (IP protocol 4).
    Ipip,
}

/// The transport layer.
#[derive(Debug, Clone, PartialEq)]
pub enum L4 {
    /// TCP.
    Tcp(Tcp),
    /// UDP.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Bytes of UDP payload.
        payload_len: usize,
    },
    /// ICMP; `id` and `seq` are those of an echo request/reply, 0 for other types.
    Icmp {
        /// ICMP type (8 echo request, 0 echo reply).
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// Echo identifier.
        id: u16,
        /// Echo sequence number.
        seq: u16,
    },
    /// ICMPv6.
    Icmpv6(Icmpv6),
    /// Another protocol, a fragment, or a transport header that did not decode.
    Other,
}

/// A TCP segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Tcp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// PSH flag.
    pub psh: bool,
    /// The Maximum Segment Size option, when the segment carries one (a SYN or SYN-ACK).
    pub mss: Option<u16>,
    /// The segment's payload.
    pub payload: Vec<u8>,
}

/// ICMPv6 echo request.
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply.
pub const ICMPV6_ECHO_REPLY: u8 = 129;
/// ICMPv6 (NDP) neighbor solicitation.
pub const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
/// ICMPv6 (NDP) neighbor advertisement.
pub const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;

/// How deep encapsulations are unwrapped (VXLAN in IPIP in ...); deeper frames stay opaque.
const MAX_DEPTH: usize = 4;

impl Frame {
    /// The IPv4 packet of this frame (the outer one when encapsulated).
    pub fn ipv4(&self) -> Option<&Ipv4> {
        match &self.l3 {
            L3::Ipv4(ip) => Some(ip),
            _ => None,
        }
    }

    /// The IPv4 packet and TCP segment, when this frame carries TCP.
    pub fn tcp(&self) -> Option<(&Ipv4, &Tcp)> {
        let ip = self.ipv4()?;
        match &ip.l4 {
            L4::Tcp(tcp) => Some((ip, tcp)),
            _ => None,
        }
    }

    /// The ARP packet, when this frame is one.
    pub fn arp(&self) -> Option<&Arp> {
        match &self.l3 {
            L3::Arp(arp) => Some(arp),
            _ => None,
        }
    }

    /// The IPv6 packet of this frame (the outer one when encapsulated).
    pub fn ipv6(&self) -> Option<&Ipv6> {
        match &self.l3 {
            L3::Ipv6(ip) => Some(ip),
            _ => None,
        }
    }

    /// The IPv6 packet and TCP segment, when this frame carries TCP over IPv6.
    pub fn tcp6(&self) -> Option<(&Ipv6, &Tcp)> {
        let ip = self.ipv6()?;
        match &ip.l4 {
            L4::Tcp(tcp) => Some((ip, tcp)),
            _ => None,
        }
    }

    /// The IPv6 packet and ICMPv6 message, when this frame carries ICMPv6.
    pub fn icmpv6(&self) -> Option<(&Ipv6, &Icmpv6)> {
        let ip = self.ipv6()?;
        match &ip.l4 {
            L4::Icmpv6(icmp) => Some((ip, icmp)),
            _ => None,
        }
    }

    /// The NDP neighbor solicitation or advertisement, when this frame is one.
    pub fn ndp(&self) -> Option<&Ndp> {
        self.icmpv6()?.1.ndp.as_ref()
    }

    /// The encapsulation of this frame, when it is a VXLAN (over IPv4 or IPv6) or IPIP packet.
    pub fn encapsulated(&self) -> Option<&Encapsulated> {
        match &self.l3 {
            L3::Ipv4(ip) => ip.inner.as_deref(),
            L3::Ipv6(ip) => ip.inner.as_deref(),
            _ => None,
        }
    }

    /// The innermost frame: the payload of every VXLAN/IPIP layer unwrapped, or `self`.
    pub fn innermost(&self) -> &Frame {
        let mut frame = self;
        while let Some(inner) = frame.encapsulated() {
            frame = &inner.frame;
        }
        frame
    }

    /// True when this frame (not its inner packet) is TCP between `a` and `b`, either direction.
    pub fn is_tcp_between(&self, a: SocketAddrV4, b: SocketAddrV4) -> bool {
        let Some((ip, tcp)) = self.tcp() else {
            return false;
        };
        let src = SocketAddrV4::new(ip.src, tcp.src_port);
        let dst = SocketAddrV4::new(ip.dst, tcp.dst_port);
        (src == a && dst == b) || (src == b && dst == a)
    }

    /// True when this frame (not its inner packet) is ICMP between `a` and `b`, either direction.
    pub fn is_icmp_between(&self, a: Ipv4Addr, b: Ipv4Addr) -> bool {
        match self.ipv4() {
            Some(ip) if matches!(ip.l4, L4::Icmp { .. }) => {
                (ip.src == a && ip.dst == b) || (ip.src == b && ip.dst == a)
            }
            _ => false,
        }
    }

    /// True when this frame (not its inner packet) is TCP over IPv6 between `a` and `b`, either
    /// direction. Flow information and scope ids are not compared.
    pub fn is_tcp6_between(&self, a: SocketAddrV6, b: SocketAddrV6) -> bool {
        let Some((ip, tcp)) = self.tcp6() else {
            return false;
        };
        let same = |x: &SocketAddrV6, ip: Ipv6Addr, port: u16| *x.ip() == ip && x.port() == port;
        (same(&a, ip.src, tcp.src_port) && same(&b, ip.dst, tcp.dst_port))
            || (same(&b, ip.src, tcp.src_port) && same(&a, ip.dst, tcp.dst_port))
    }

    /// True when this frame's IPv6 packet, or any packet it encapsulates, is between `a` and `b`
    /// (either direction).
    pub fn carries_ipv6_between(&self, a: Ipv6Addr, b: Ipv6Addr) -> bool {
        let mut frame = self;
        loop {
            if let Some(ip) = frame.ipv6()
                && ((ip.src == a && ip.dst == b) || (ip.src == b && ip.dst == a))
            {
                return true;
            }
            match frame.encapsulated() {
                Some(inner) => frame = &inner.frame,
                None => return false,
            }
        }
    }

    /// True when this frame's IPv4 packet, or any packet it encapsulates, is between `a` and `b`
    /// (either direction).
    pub fn carries_ipv4_between(&self, a: Ipv4Addr, b: Ipv4Addr) -> bool {
        let mut frame = self;
        loop {
            if let Some(ip) = frame.ipv4()
                && ((ip.src == a && ip.dst == b) || (ip.src == b && ip.dst == a))
            {
                return true;
            }
            match frame.encapsulated() {
                Some(inner) => frame = &inner.frame,
                None => return false,
            }
        }
    }
}

impl std::fmt::Display for Frame {
    /// One line in the spirit of `tcpdump`: `ee:ee:ee:ee:ee:ee > 42:0b:.. ARP reply ...`,
    /// `IP6 fe80::1 > ff02::1:ffee:eeee hlim 255 icmp6 neighbor solicitation who-has ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(eth) = &self.eth {
            write!(f, "{} > {} ", mac_str(&eth.src), mac_str(&eth.dst))?;
        }
        match &self.l3 {
            L3::Arp(arp) => match arp.op {
                ArpOp::Request => write!(f, "ARP who-has {} tell {}", arp.target_ip, arp.sender_ip),
                ArpOp::Reply => write!(
                    f,
                    "ARP reply {} is-at {}",
                    arp.sender_ip,
                    mac_str(&arp.sender_mac)
                ),
                ArpOp::Other(op) => write!(f, "ARP op {op}"),
            },
            L3::Other(t) => write!(f, "ethertype 0x{t:04x}"),
            L3::Ipv4(ip) => {
                let (sp, dp) = port_suffixes(&ip.l4);
                write!(f, "IP {}{sp} > {}{dp} ttl {}", ip.src, ip.dst, ip.ttl)?;
                write_l4(f, &ip.l4, ip.protocol)?;
                write_inner(f, ip.inner.as_deref())
            }
            L3::Ipv6(ip) => {
                let (sp, dp) = port_suffixes(&ip.l4);
                write!(
                    f,
                    "IP6 {}{sp} > {}{dp} hlim {}",
                    ip.src, ip.dst, ip.hop_limit
                )?;
                write_l4(f, &ip.l4, ip.next_header)?;
                write_inner(f, ip.inner.as_deref())
            }
        }
    }
}

/// `(".sport", ".dport")` for TCP and UDP, empty otherwise (tcpdump's `addr.port`).
fn port_suffixes(l4: &L4) -> (String, String) {
    match l4 {
        L4::Tcp(t) => (format!(".{}", t.src_port), format!(".{}", t.dst_port)),
        L4::Udp {
            src_port, dst_port, ..
        } => (format!(".{src_port}"), format!(".{dst_port}")),
        _ => (String::new(), String::new()),
    }
}

/// The transport part of a [`Frame`]'s line: ` tcp [S.] len 0`, ` icmp6 echo request ...`.
fn write_l4(f: &mut std::fmt::Formatter<'_>, l4: &L4, protocol: u8) -> std::fmt::Result {
    match l4 {
        L4::Tcp(t) => {
            let flags: String = [
                (t.syn, 'S'),
                (t.fin, 'F'),
                (t.rst, 'R'),
                (t.psh, 'P'),
                (t.ack, '.'),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect();
            write!(f, " tcp [{flags}] len {}", t.payload.len())
        }
        L4::Udp { payload_len, .. } => write!(f, " udp len {payload_len}"),
        L4::Icmp {
            icmp_type, id, seq, ..
        } => write!(f, " icmp type {icmp_type} id {id} seq {seq}"),
        L4::Icmpv6(icmp) => write_icmpv6(f, icmp),
        L4::Other => write!(f, " proto {protocol}"),
    }
}

fn write_icmpv6(f: &mut std::fmt::Formatter<'_>, icmp: &Icmpv6) -> std::fmt::Result {
    match (&icmp.ndp, icmp.icmp_type) {
        (Some(Ndp::Solicitation { target, .. }), _) => {
            write!(f, " icmp6 neighbor solicitation who-has {target}")
        }
        (
            Some(Ndp::Advertisement {
                target, target_mac, ..
            }),
            _,
        ) => {
            write!(f, " icmp6 neighbor advertisement tgt is {target}")?;
            match target_mac {
                Some(mac) => write!(f, " is-at {}", mac_str(mac)),
                None => Ok(()),
            }
        }
        (None, ICMPV6_ECHO_REQUEST) => {
            write!(f, " icmp6 echo request id {} seq {}", icmp.id, icmp.seq)
        }
        (None, ICMPV6_ECHO_REPLY) => {
            write!(f, " icmp6 echo reply id {} seq {}", icmp.id, icmp.seq)
        }
        (None, t) => write!(f, " icmp6 type {t} code {}", icmp.code),
    }
}

/// ` VXLAN vni 4096: <inner frame>`, ` IPIP: <inner frame>`, or nothing.
fn write_inner(f: &mut std::fmt::Formatter<'_>, inner: Option<&Encapsulated>) -> std::fmt::Result {
    let Some(inner) = inner else {
        return Ok(());
    };
    match inner.kind {
        EncapKind::Vxlan { vni } => write!(f, " VXLAN vni {vni}: ")?,
        EncapKind::Ipip => f.write_str(" IPIP: ")?,
    }
    write!(f, "{}", inner.frame)
}

/// One pcap record: its timestamp and the captured bytes.
pub type Record = (Duration, Vec<u8>);

/// A classic pcap byte stream read as it arrives (`tcpdump -U -w -`), or a whole pcap file
/// pushed at once: [`PcapStreamReader::push`] returns the records its bytes completed and keeps
/// a partial record until the rest arrives. Either byte order, microsecond or nanosecond
/// timestamps (all read by `pcap-file`).
#[derive(Debug, Default)]
pub struct PcapStreamReader {
    /// Bytes not yet taken: part of the file header, or of the next record.
    buf: Vec<u8>,
    /// Set once the 24-byte file header has been read.
    parser: Option<PcapParser>,
    /// Records taken so far.
    records: usize,
    /// Bytes of the stream taken so far (file header included), to name where a record starts.
    taken: usize,
}

impl PcapStreamReader {
    /// A reader that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the stream's next bytes and returns the records they completed. An error (not
    /// pcap, pcapng, an invalid record) is final: the stream cannot be read on from there.
    pub fn push(&mut self, bytes: &[u8]) -> std::result::Result<Vec<Record>, String> {
        self.buf.extend_from_slice(bytes);
        if self.parser.is_none() && !self.read_header()? {
            return Ok(Vec::new());
        }
        let Some(parser) = &self.parser else {
            return Ok(Vec::new());
        };
        let resolution = parser.header().ts_resolution;
        let mut records = Vec::new();
        let mut rest = self.buf.as_slice();
        loop {
            let at = self.taken + (self.buf.len() - rest.len());
            let n = self.records + records.len();
            match parser.next_raw_packet(rest) {
                Ok((after, raw)) => {
                    // Not `next_packet`: pcap-file 2.0.0 refuses a record whose on-the-wire
                    // length exceeds the file's snap length (courvoif/pcap-file#36, fixed after
                    // 2.0.0), which is exactly what `tcpdump -s N` writes. Only the snap-length
                    // checks are lifted; timestamps and lengths are still checked.
                    let packet = raw
                        .try_into_pcap_packet(resolution, u32::MAX)
                        .map_err(|e| format!("record {n} at byte {at}: {e}"))?;
                    records.push((packet.timestamp, packet.data.into_owned()));
                    rest = after;
                }
                Err(PcapError::IncompleteBuffer) => break,
                Err(e) => return Err(format!("record {n} at byte {at}: {e}")),
            }
        }
        let used = self.buf.len() - rest.len();
        self.buf.drain(..used);
        self.taken += used;
        self.records += records.len();
        Ok(records)
    }

    /// Reads the file header once enough bytes are there; false while they are not.
    fn read_header(&mut self) -> std::result::Result<bool, String> {
        match PcapParser::new(&self.buf) {
            Ok((rest, parser)) => {
                let used = self.buf.len() - rest.len();
                self.buf.drain(..used);
                self.taken += used;
                self.parser = Some(parser);
                Ok(true)
            }
            Err(PcapError::IncompleteBuffer) if self.buf.len() < 4 => Ok(false),
            Err(PcapError::IncompleteBuffer) => {
                // pcap-file judges the magic only once all 24 bytes are there; judge it now
                // (the rest zeroed), so that a short foreign stream fails at once.
                let mut head = [0u8; 24];
                head[..self.buf.len()].copy_from_slice(&self.buf);
                match PcapHeader::from_slice(&head) {
                    Ok(_) => Ok(false),
                    Err(_) => Err(foreign(&self.buf)),
                }
            }
            Err(_) => Err(foreign(&self.buf)),
        }
    }

    /// The link type from the file header (its FCS bits cleared), once the header was read.
    pub fn linktype(&self) -> Option<DataLink> {
        self.parser
            .as_ref()
            .map(|p| DataLink::from(u32::from(p.header().datalink) & 0x0fff_ffff))
    }

    /// Bytes waiting for the rest of the file header or of a record.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Why the stream may not end where it is now: nothing at all, a cut file header, a cut
    /// record. `None` when it ends between records.
    pub fn end_problem(&self) -> Option<String> {
        let left = self.buf.len();
        match &self.parser {
            None if left == 0 => Some("empty: no pcap header (the capture wrote nothing)".into()),
            None => Some(format!("truncated pcap header: {left} of 24 bytes")),
            Some(_) if left == 0 => None,
            Some(_) => {
                let (n, at) = (self.records, self.taken);
                Some(if left < 16 {
                    format!("record {n} at byte {at}: truncated header ({left} of 16 bytes)")
                } else {
                    format!(
                        "record {n} at byte {at}: truncated data (only {} bytes after its header)",
                        left - 16
                    )
                })
            }
        }
    }
}

/// Why bytes that do not start with a pcap magic number are refused.
fn foreign(bytes: &[u8]) -> String {
    const PCAPNG_SECTION_HEADER: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
    if bytes.starts_with(&PCAPNG_SECTION_HEADER) {
        return "pcapng is not supported: capture with `tcpdump -w` (classic pcap)".into();
    }
    let magic: String = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("not a pcap file: magic {magic}")
}

/// The link type and records of a classic pcap file, frames not yet decoded.
pub fn parse_pcap_records(source_name: &str, bytes: &[u8]) -> Result<(DataLink, Vec<Record>)> {
    let err = |problem: String| Error::parse(source_name, problem);
    let mut reader = PcapStreamReader::new();
    let records = reader.push(bytes).map_err(err)?;
    if let Some(problem) = reader.end_problem() {
        return Err(err(problem));
    }
    let linktype = reader
        .linktype()
        .ok_or_else(|| err("no pcap header".into()))?;
    Ok((linktype, records))
}

/// Parses a classic pcap file (either byte order; microsecond or nanosecond timestamps) into
/// frames. Records that do not decode (see [`parse_frame`]) are left out; a truncated or
/// malformed file is an error naming `source_name` and the record.
pub fn parse_pcap(source_name: &str, bytes: &[u8]) -> Result<Vec<Frame>> {
    let (linktype, records) = parse_pcap_records(source_name, bytes)?;
    if !known_linktype(linktype) {
        return Err(Error::parse(
            source_name,
            format!("unsupported pcap link type {}", u32::from(linktype)),
        ));
    }
    Ok(records
        .iter()
        .filter_map(|(ts, data)| parse_frame(linktype, *ts, data))
        .collect())
}

fn known_linktype(linktype: DataLink) -> bool {
    matches!(
        linktype,
        DataLink::ETHERNET
            | DataLink::RAW
            | DataLink::LINUX_SLL
            | DataLink::IPV4
            | DataLink::LINUX_SLL2
    )
}

/// Writes records as a classic pcap file (little endian, microsecond timestamps, snaplen
/// [`SNAPLEN`]; longer records are cut to it); [`parse_pcap`] reads it back.
pub fn write_pcap(linktype: DataLink, records: &[Record]) -> Vec<u8> {
    let header = PcapHeader {
        snaplen: SNAPLEN,
        datalink: linktype,
        endianness: Endianness::Little,
        ts_resolution: TsResolution::MicroSecond,
        ..PcapHeader::default()
    };
    let size = 24 + records.iter().map(|(_, d)| 16 + d.len()).sum::<usize>();
    let mut writer = match PcapWriter::with_header(Vec::with_capacity(size), header) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("writing a pcap header failed: {e}");
            return Vec::new();
        }
    };
    // The pcap format holds 32-bit seconds: a later time is written as the last one it holds.
    let latest = Duration::new(u64::from(u32::MAX), 999_999_999);
    for (i, (ts, data)) in records.iter().enumerate() {
        let data = &data[..data.len().min(SNAPLEN as usize)];
        let len = data.len() as u32;
        let packet = PcapPacket::new((*ts).min(latest), len, data);
        if let Err(e) = writer.write_packet(&packet) {
            tracing::warn!("pcap record {i} left out: {e}");
        }
    }
    writer.into_writer()
}

/// Decodes one captured frame of pcap link type `linktype`. `None` when the link type is unknown
/// or the frame is too short for its link-layer or network header.
pub fn parse_frame(linktype: DataLink, ts: Duration, data: &[u8]) -> Option<Frame> {
    match linktype {
        DataLink::ETHERNET => decode_ethernet(ts, data, 0),
        // Raw IP: the version is the first nibble.
        DataLink::RAW => match data.first()? >> 4 {
            4 => decode_ether_type(ts, None, EtherType::IPV4, data, 0),
            6 => decode_ether_type(ts, None, EtherType::IPV6, data, 0),
            _ => None,
        },
        DataLink::IPV4 => decode_ether_type(ts, None, EtherType::IPV4, data, 0),
        // Linux cooked captures are read by hand, by their fixed offsets: etherparse's
        // `LinuxSllSlice` accepts only five ARPHRD types, so it refuses what `tcpdump -i any`
        // records for `tunl0` (ARPHRD_TUNNEL), `lo` (ARPHRD_LOOPBACK) and WireGuard
        // (ARPHRD_NONE); and it has no SLL2.
        // v1: packet type, ARPHRD type, address length, 8 address bytes, protocol (at 14).
        DataLink::LINUX_SLL => decode_cooked(ts, be16(data, 14)?, data.get(16..)?),
        // v2: protocol (at 0), reserved, ifindex, ARPHRD type, packet type, address length,
        // 8 address bytes.
        DataLink::LINUX_SLL2 => decode_cooked(ts, be16(data, 0)?, data.get(20..)?),
        _ => None,
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

/// The payload of a Linux cooked capture: its protocol is an EtherType, and transparent
/// Ethernet bridging (0x6558) carries a whole Ethernet frame.
fn decode_cooked(ts: Duration, protocol: u16, payload: &[u8]) -> Option<Frame> {
    const TRANSPARENT_ETHERNET_BRIDGING: EtherType = EtherType(0x6558);
    match EtherType(protocol) {
        TRANSPARENT_ETHERNET_BRIDGING => decode_ethernet(ts, payload, 0),
        ether_type => decode_ether_type(ts, None, ether_type, payload, 0),
    }
}

fn decode_ethernet(ts: Duration, data: &[u8], depth: usize) -> Option<Frame> {
    let packet = LaxSlicedPacket::from_ethernet(data).ok()?;
    let Some(LinkSlice::Ethernet2(link)) = &packet.link else {
        return None;
    };
    let eth = EthHeader {
        src: link.source(),
        dst: link.destination(),
    };
    frame_from(ts, Some(eth), &packet, depth)
}

fn decode_ether_type(
    ts: Duration,
    eth: Option<EthHeader>,
    ether_type: EtherType,
    data: &[u8],
    depth: usize,
) -> Option<Frame> {
    let packet = LaxSlicedPacket::from_ether_type(ether_type, data);
    frame_from(ts, eth, &packet, depth)
}

/// The frame of a sliced packet. Lax slicing keeps what decoded: a packet cut by the snap
/// length still yields its headers (the transport layer is then `L4::Other`).
fn frame_from(
    ts: Duration,
    eth: Option<EthHeader>,
    packet: &LaxSlicedPacket<'_>,
    depth: usize,
) -> Option<Frame> {
    // The EtherType after any VLAN tags.
    let ether_type = packet.ether_payload()?.ether_type;
    let l3 = match (ether_type, &packet.net) {
        (EtherType::ARP, Some(LaxNetSlice::Arp(arp))) => L3::Arp(arp_from(arp)?),
        (EtherType::IPV4, Some(LaxNetSlice::Ipv4(ip))) => {
            L3::Ipv4(ipv4_from(ts, ip, packet.transport.as_ref(), depth))
        }
        (EtherType::IPV6, Some(LaxNetSlice::Ipv6(ip))) => {
            L3::Ipv6(ipv6_from(ts, ip, packet.transport.as_ref(), depth))
        }
        (EtherType::ARP | EtherType::IPV4 | EtherType::IPV6, _) => return None,
        (other, _) => L3::Other(other.0),
    };
    Some(Frame { ts, eth, l3 })
}

/// Ethernet/IPv4 ARP only (6-byte and 4-byte addresses).
fn arp_from(arp: &ArpPacketSlice<'_>) -> Option<Arp> {
    let arp = arp.to_packet().try_eth_ipv4().ok()?;
    let op = match arp.operation {
        ArpOperation::REQUEST => ArpOp::Request,
        ArpOperation::REPLY => ArpOp::Reply,
        other => ArpOp::Other(other.0),
    };
    Some(Arp {
        op,
        sender_mac: arp.sender_mac,
        sender_ip: Ipv4Addr::from(arp.sender_ipv4),
        target_mac: arp.target_mac,
        target_ip: Ipv4Addr::from(arp.target_ipv4),
    })
}

/// The transport layer etherparse sliced (TCP, UDP, ICMP, ICMPv6), with the VXLAN packet a UDP
/// datagram to port 4789 carries. `None` for anything else (no transport slice, IGMP).
fn transport_from(
    ts: Duration,
    transport: Option<&TransportSlice<'_>>,
    depth: usize,
) -> Option<(L4, Option<Box<Encapsulated>>)> {
    let l4 = match transport? {
        TransportSlice::Tcp(t) => L4::Tcp(Tcp {
            src_port: t.source_port(),
            dst_port: t.destination_port(),
            syn: t.syn(),
            ack: t.ack(),
            fin: t.fin(),
            rst: t.rst(),
            psh: t.psh(),
            mss: t.options_iterator().find_map(|o| match o {
                Ok(TcpOptionElement::MaximumSegmentSize(mss)) => Some(mss),
                _ => None,
            }),
            payload: t.payload().to_vec(),
        }),
        TransportSlice::Udp(u) => {
            let inner = if u.destination_port() == VXLAN_PORT && depth < MAX_DEPTH {
                decode_vxlan(ts, u.payload(), depth)
            } else {
                None
            };
            let udp = L4::Udp {
                src_port: u.source_port(),
                dst_port: u.destination_port(),
                payload_len: u.payload().len(),
            };
            return Some((udp, inner));
        }
        TransportSlice::Icmpv4(icmp) => {
            let (id, seq) = match icmp.icmp_type() {
                Icmpv4Type::EchoRequest(echo) | Icmpv4Type::EchoReply(echo) => (echo.id, echo.seq),
                _ => (0, 0),
            };
            L4::Icmp {
                icmp_type: icmp.type_u8(),
                code: icmp.code_u8(),
                id,
                seq,
            }
        }
        TransportSlice::Icmpv6(icmp) => L4::Icmpv6(icmpv6_from(icmp)),
        _ => return None,
    };
    Some((l4, None))
}

/// The VXLAN packet in the first fragment of a UDP datagram (an underlay too small for it,
/// MTU-3): the fragment still holds the UDP and VXLAN headers and the start of the inner frame.
fn vxlan_in_first_fragment(ts: Duration, udp: &[u8], depth: usize) -> Option<Box<Encapsulated>> {
    if depth >= MAX_DEPTH || be16(udp, 2) != Some(VXLAN_PORT) {
        return None;
    }
    decode_vxlan(ts, udp.get(8..)?, depth)
}

fn ipv4_from(
    ts: Duration,
    ip: &LaxIpv4Slice<'_>,
    transport: Option<&TransportSlice<'_>>,
    depth: usize,
) -> Ipv4 {
    let header = ip.header();
    let payload = ip.payload();
    let (l4, inner) = transport_from(ts, transport, depth).unwrap_or_else(|| {
        let mut inner = None;
        // IPIP: the payload is the inner IPv4 packet (never for a fragment).
        if header.protocol() == IpNumber::IPV4 && !payload.fragmented && depth < MAX_DEPTH {
            inner = decode_ether_type(ts, None, EtherType::IPV4, payload.payload, depth + 1).map(
                |frame| {
                    Box::new(Encapsulated {
                        kind: EncapKind::Ipip,
                        frame,
                    })
                },
            );
        }
        // The first fragment of a VXLAN packet: decode what is there, so the fragment says what
        // it carries. Its transport stays `Other`.
        let first_fragment = payload.fragmented && header.fragments_offset().value() == 0;
        if header.protocol() == IpNumber::UDP && first_fragment {
            inner = vxlan_in_first_fragment(ts, payload.payload, depth);
        }
        (L4::Other, inner)
    });
    Ipv4 {
        src: header.source_addr(),
        dst: header.destination_addr(),
        ttl: header.ttl(),
        protocol: header.protocol().0,
        total_len: header.total_len(),
        frag: Fragmentation {
            dont_fragment: header.dont_fragment(),
            more_fragments: header.more_fragments(),
            offset: header.fragments_offset().value(),
        },
        l4,
        inner,
    }
}

fn ipv6_from(
    ts: Duration,
    ip: &LaxIpv6Slice<'_>,
    transport: Option<&TransportSlice<'_>>,
    depth: usize,
) -> Ipv6 {
    let header = ip.header();
    let payload = ip.payload();
    let (l4, inner) = transport_from(ts, transport, depth).unwrap_or_else(|| {
        // The first fragment (fragment header offset 0) of a VXLAN-over-IPv6 packet.
        let first_fragment = payload.fragmented
            && ip.extensions().clone().into_iter().any(|ext| {
                matches!(ext, Ipv6ExtensionSlice::Fragment(frag)
                    if frag.fragment_offset().value() == 0)
            });
        let inner = if payload.ip_number == IpNumber::UDP && first_fragment {
            vxlan_in_first_fragment(ts, payload.payload, depth)
        } else {
            None
        };
        (L4::Other, inner)
    });
    Ipv6 {
        src: header.source_addr(),
        dst: header.destination_addr(),
        hop_limit: header.hop_limit(),
        next_header: payload.ip_number.0,
        payload_len: header.payload_length(),
        l4,
        inner,
    }
}

fn icmpv6_from(icmp: &Icmpv6Slice<'_>) -> Icmpv6 {
    let (id, seq) = match icmp.icmp_type() {
        Icmpv6Type::EchoRequest(echo) | Icmpv6Type::EchoReply(echo) => (echo.id, echo.seq),
        _ => (0, 0),
    };
    Icmpv6 {
        icmp_type: icmp.type_u8(),
        code: icmp.code_u8(),
        id,
        seq,
        ndp: ndp_from(icmp.slice()),
    }
}

/// NDP option: source link-layer address.
const NDP_SOURCE_LL: u8 = 1;
/// NDP option: target link-layer address.
const NDP_TARGET_LL: u8 = 2;

/// A neighbor solicitation or advertisement from its ICMPv6 bytes, read by hand (etherparse
/// names the types but does not read their body): type, code (0), checksum, 4 bytes of
/// reserved/flags (R, S, O), the 16-byte target, then options. `None` for another message, a
/// non-zero code, or a body cut before the target's end; options cut short are left out.
fn ndp_from(icmp: &[u8]) -> Option<Ndp> {
    let (&icmp_type, &code) = (icmp.first()?, icmp.get(1)?);
    if code != 0 {
        return None;
    }
    let flags = *icmp.get(4)?;
    let target: [u8; 16] = icmp.get(8..24)?.try_into().ok()?;
    let target = Ipv6Addr::from(target);
    let options = icmp.get(24..).unwrap_or_default();
    match icmp_type {
        ICMPV6_NEIGHBOR_SOLICITATION => Some(Ndp::Solicitation {
            target,
            source_mac: link_layer_option(options, NDP_SOURCE_LL),
        }),
        ICMPV6_NEIGHBOR_ADVERTISEMENT => Some(Ndp::Advertisement {
            target,
            router: flags & 0x80 != 0,
            solicited: flags & 0x40 != 0,
            override_: flags & 0x20 != 0,
            target_mac: link_layer_option(options, NDP_TARGET_LL),
        }),
        _ => None,
    }
}

/// The Ethernet address in the first NDP option of type `kind`. Options are type, length in
/// 8-byte units (never 0), data; the walk stops at a zero length or an option cut short.
fn link_layer_option(mut options: &[u8], kind: u8) -> Option<Mac> {
    while let [option_type, units, ..] = *options {
        let len = usize::from(units) * 8;
        let option = options.get(..len).filter(|_| len > 0)?;
        if option_type == kind {
            return option.get(2..8)?.try_into().ok();
        }
        options = options.get(len..)?;
    }
    None
}

/// The inner frame of a VXLAN payload: an 8-byte header (flags with the I bit, 24-bit VNI),
/// then Ethernet. etherparse has no VXLAN, so its header is read here.
fn decode_vxlan(ts: Duration, payload: &[u8], depth: usize) -> Option<Box<Encapsulated>> {
    let header = payload.get(..8)?;
    if header[0] & 0x08 == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, header[4], header[5], header[6]]);
    let frame = decode_ethernet(ts, payload.get(8..)?, depth + 1)?;
    Some(Box::new(Encapsulated {
        kind: EncapKind::Vxlan { vni },
        frame,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        crate::fixtures::read_bytes(&format!("recorded/{path}"))
    }

    const NODE_PCAP: &str = "node/pcap-calied9d42cb137-arp-ping-http.pcap";
    const POD_MAC: Mac = [0x42, 0x0b, 0xa0, 0xbc, 0x45, 0xb8];
    const GW: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
    const TEST_TOOLS: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const C2C: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

    fn node_frames() -> Vec<Frame> {
        parse_pcap(NODE_PCAP, &fixture(NODE_PCAP)).expect("parses")
    }

    #[test]
    fn proxy_arp_request_and_reply_on_the_host_end() {
        let frames = node_frames();
        assert_eq!(frames.len(), 18);
        let request = frames[0].arp().expect("ARP request");
        assert_eq!(request.op, ArpOp::Request);
        assert_eq!(request.target_ip, GW);
        assert_eq!(request.sender_ip, TEST_TOOLS);
        assert_eq!(request.sender_mac, POD_MAC);
        let reply_frame = &frames[1];
        let reply = reply_frame.arp().expect("ARP reply");
        assert_eq!(reply.op, ArpOp::Reply);
        assert_eq!(reply.sender_ip, GW);
        assert_eq!(reply.sender_mac, [0xee; 6]);
        assert_eq!(reply_frame.eth.map(|e| e.src), Some([0xee; 6]));
        assert_eq!(reply_frame.eth.map(|e| e.dst), Some(POD_MAC));
        assert!(frames[1].ts >= frames[0].ts);
        assert!(frames[0].ts > Duration::from_secs(1_600_000_000));
    }

    #[test]
    fn icmp_ttl_64_out_63_back() {
        let frames = node_frames();
        let icmp: Vec<&Ipv4> = frames
            .iter()
            .filter(|f| f.is_icmp_between(C2C, TEST_TOOLS))
            .filter_map(Frame::ipv4)
            .collect();
        assert_eq!(icmp.len(), 4);
        for ip in icmp {
            let L4::Icmp {
                icmp_type, id, seq, ..
            } = ip.l4
            else {
                panic!("not ICMP: {ip:?}");
            };
            assert_eq!(id, 26046);
            assert!(seq == 1 || seq == 2);
            match icmp_type {
                8 => assert_eq!((ip.src, ip.ttl), (TEST_TOOLS, 64)),
                0 => assert_eq!((ip.src, ip.ttl), (C2C, 63)),
                t => panic!("ICMP type {t}"),
            }
        }
    }

    /// The first fragment of a VXLAN packet too large for its underlay: the outer header says
    /// MF, and the inner frame's start is still read (its header's full length, its ICMP).
    #[test]
    fn the_first_fragment_of_a_vxlan_packet_shows_what_it_carries() {
        let inner_ip = |total: u16| {
            let mut h = vec![
                0x45,
                0,
                (total >> 8) as u8,
                total as u8,
                0,
                1,
                0x40,
                0,
                64,
                1,
                0,
                0,
            ];
            h.extend_from_slice(&[192, 168, 1, 12, 192, 168, 2, 12]);
            h.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
            h
        };
        let mut vxlan_payload = vec![0x08, 0, 0, 0, 0, 0x10, 0, 0];
        vxlan_payload.extend_from_slice(&[0x66, 1, 2, 3, 4, 5, 0x66, 6, 7, 8, 9, 10, 0x08, 0]);
        vxlan_payload.extend_from_slice(&inner_ip(1450));
        vxlan_payload.resize(1424 - 8, 0xab);
        let mut udp = vec![0x9c, 0x40, 0x12, 0xb5, 0x05, 0xb4, 0, 0];
        udp.extend_from_slice(&vxlan_payload);
        let total = 20 + udp.len() as u16;
        let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0];
        frame.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 7, 0x20, 0]);
        frame.extend_from_slice(&[64, 17, 0, 0, 10, 12, 22, 2, 10, 12, 22, 3]);
        frame.extend_from_slice(&udp);
        let f = parse_frame(DataLink::ETHERNET, Duration::ZERO, &frame).expect("decodes");
        let outer = f.ipv4().expect("ipv4");
        assert_eq!(outer.total_len, 1444);
        assert!(outer.frag.more_fragments && outer.frag.is_fragment());
        assert_eq!(outer.l4, L4::Other);
        let inner = f.innermost().ipv4().expect("inner ipv4");
        assert_eq!(
            (inner.total_len, inner.src, inner.protocol),
            (1450, TEST_TOOLS_12, 1)
        );
        assert!(matches!(inner.l4, L4::Icmp { icmp_type: 8, .. }));
    }

    const TEST_TOOLS_12: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 12);

    #[test]
    fn http_request_and_body_between_the_pods() {
        let frames = node_frames();
        let client = SocketAddrV4::new(TEST_TOOLS, 43354);
        let server = SocketAddrV4::new(C2C, 8080);
        let conn: Vec<&Frame> = frames
            .iter()
            .filter(|f| f.is_tcp_between(server, client))
            .collect();
        assert_eq!(conn.len(), 12);
        let (syn_ip, syn) = conn[0].tcp().expect("tcp");
        assert!(syn.syn && !syn.ack && syn.dst_port == 8080);
        // The real node's handshake: MSS 1460 both ways, DF set, a 60-byte unfragmented SYN.
        assert_eq!(syn.mss, Some(1460));
        assert_eq!(syn_ip.total_len, 60);
        assert!(syn_ip.frag.dont_fragment && !syn_ip.frag.is_fragment());
        let (_, syn_ack) = conn[1].tcp().expect("tcp");
        assert!(syn_ack.syn && syn_ack.ack);
        assert_eq!(syn_ack.mss, Some(1460));
        let (_, ack) = conn[2].tcp().expect("tcp");
        assert_eq!(ack.mss, None);
        let payload: Vec<u8> = conn
            .iter()
            .filter_map(|f| f.tcp())
            .flat_map(|(_, t)| t.payload.clone())
            .collect();
        let text = String::from_utf8_lossy(&payload);
        assert!(text.starts_with("GET / HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("<p>Hi from c2c-network-demo</p>"), "{text}");
        assert!(!frames[0].is_tcp_between(server, client));
    }

    #[test]
    fn container_to_container_on_lo() {
        let f = "pod/pcap-c2c-lo-http.pcap";
        let frames = parse_pcap(f, &fixture(f)).expect("parses");
        assert_eq!(frames.len(), 24);
        let lo = Ipv4Addr::LOCALHOST;
        let server = SocketAddrV4::new(lo, 8080);
        assert!(frames.iter().all(|f| f.tcp().is_some()));
        let get = frames
            .iter()
            .filter_map(|f| f.tcp())
            .find(|(_, t)| t.payload.starts_with(b"GET / "))
            .expect("a GET");
        assert_eq!((get.0.dst, get.1.dst_port), (lo, 8080));
        assert!(
            frames
                .iter()
                .filter_map(|f| f.tcp())
                .any(|(_, t)| t.payload == b"<p>Hi from c2c-network-demo</p>\n")
        );
        let client = SocketAddrV4::new(lo, 53482);
        assert_eq!(
            frames
                .iter()
                .filter(|f| f.is_tcp_between(client, server))
                .count(),
            12
        );
    }

    fn built_tcp_ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
            .tcp(40000, 8080, 1, 64000)
            .syn()
            .write(&mut out, payload)
            .expect("builds");
        out
    }

    fn built_ethernet(src: Mac, dst: Mac, ip_packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&dst);
        out.extend_from_slice(&src);
        out.extend_from_slice(&EtherType::IPV4.0.to_be_bytes());
        out.extend_from_slice(ip_packet);
        out
    }

    #[test]
    fn vxlan_is_unwrapped_to_the_inner_ethernet_frame() {
        let node1 = Ipv4Addr::new(10, 12, 22, 2);
        let node2 = Ipv4Addr::new(10, 12, 22, 3);
        let pod1 = Ipv4Addr::new(192, 168, 1, 10);
        let pod2 = Ipv4Addr::new(192, 168, 2, 10);
        let inner = built_ethernet([0x66; 6], [0x77; 6], &built_tcp_ipv4(pod1, pod2, 63, b"hi"));
        let mut vxlan = vec![0x08, 0, 0, 0, 0x00, 0x10, 0x00, 0];
        vxlan.extend_from_slice(&inner);
        let mut outer = Vec::new();
        etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(node1.octets(), node2.octets(), 64)
            .udp(51000, VXLAN_PORT)
            .write(&mut outer, &vxlan)
            .expect("builds");
        let frame = parse_frame(DataLink::ETHERNET, Duration::ZERO, &outer).expect("decodes");
        let ip = frame.ipv4().expect("outer IPv4");
        assert_eq!((ip.src, ip.dst, ip.protocol), (node1, node2, 17));
        assert!(matches!(ip.l4, L4::Udp { dst_port: 4789, .. }));
        let encap = frame.encapsulated().expect("VXLAN");
        assert_eq!(encap.kind, EncapKind::Vxlan { vni: 4096 });
        let inner = frame.innermost();
        assert_eq!(inner.eth.map(|e| e.src), Some([0x66; 6]));
        let (iip, tcp) = inner.tcp().expect("inner TCP");
        assert_eq!((iip.src, iip.dst, iip.ttl), (pod1, pod2, 63));
        assert_eq!(tcp.payload, b"hi");
        assert!(inner.is_tcp_between(
            SocketAddrV4::new(pod2, 8080),
            SocketAddrV4::new(pod1, 40000)
        ));
        assert!(frame.carries_ipv4_between(pod1, pod2));
        assert!(!frame.is_tcp_between(
            SocketAddrV4::new(pod2, 8080),
            SocketAddrV4::new(pod1, 40000)
        ));
    }

    #[test]
    fn ipip_is_unwrapped_to_the_inner_ipv4_packet_on_every_link_type() {
        let node1 = Ipv4Addr::new(10, 12, 22, 2);
        let node2 = Ipv4Addr::new(10, 12, 22, 3);
        let pod1 = Ipv4Addr::new(192, 168, 1, 10);
        let pod2 = Ipv4Addr::new(192, 168, 2, 10);
        let inner = built_tcp_ipv4(pod1, pod2, 63, b"");
        let mut outer_ip = Vec::new();
        etherparse::PacketBuilder::ipv4(node1.octets(), node2.octets(), 64)
            .write(&mut outer_ip, etherparse::IpNumber::IPV4, &inner)
            .expect("builds");
        let eth = built_ethernet([1; 6], [2; 6], &outer_ip);
        let mut vlan = eth[..12].to_vec();
        vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        vlan.extend_from_slice(&eth[12..]);
        let mut sll = vec![0, 4, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&outer_ip);
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        sll2.extend_from_slice(&outer_ip);
        for (linktype, data, has_eth) in [
            (DataLink::ETHERNET, &eth, true),
            (DataLink::ETHERNET, &vlan, true),
            (DataLink::RAW, &outer_ip, false),
            (DataLink::IPV4, &outer_ip, false),
            (DataLink::LINUX_SLL, &sll, false),
            (DataLink::LINUX_SLL2, &sll2, false),
        ] {
            let frame = parse_frame(linktype, Duration::ZERO, data)
                .unwrap_or_else(|| panic!("link type {linktype:?} did not decode"));
            assert_eq!(frame.eth.is_some(), has_eth, "link type {linktype:?}");
            let ip = frame.ipv4().expect("outer");
            assert_eq!((ip.src, ip.protocol), (node1, 4), "link type {linktype:?}");
            assert_eq!(frame.encapsulated().map(|e| e.kind), Some(EncapKind::Ipip));
            let inner = frame.innermost();
            assert_eq!(inner.eth, None);
            let (iip, tcp) = inner.tcp().expect("inner TCP");
            assert_eq!((iip.src, iip.dst, tcp.syn), (pod1, pod2, true));
        }
    }

    #[test]
    fn write_then_parse_round_trips_in_every_byte_order_and_unit() {
        let node = fixture(NODE_PCAP);
        let (linktype, records) = parse_pcap_records("node", &node).expect("ok");
        let written = write_pcap(linktype, &records);
        assert_eq!(parse_pcap("written", &written).expect("ok"), node_frames());
        // The same file big endian with nanosecond timestamps.
        let mut be = Vec::new();
        be.extend_from_slice(&0xa1b2_3c4du32.to_be_bytes());
        be.extend_from_slice(&2u16.to_be_bytes());
        be.extend_from_slice(&4u16.to_be_bytes());
        be.extend_from_slice(&[0; 8]);
        be.extend_from_slice(&SNAPLEN.to_be_bytes());
        be.extend_from_slice(&u32::from(linktype).to_be_bytes());
        for (ts, data) in &records {
            be.extend_from_slice(&(ts.as_secs() as u32).to_be_bytes());
            be.extend_from_slice(&ts.subsec_nanos().to_be_bytes());
            be.extend_from_slice(&(data.len() as u32).to_be_bytes());
            be.extend_from_slice(&(data.len() as u32).to_be_bytes());
            be.extend_from_slice(data);
        }
        assert_eq!(parse_pcap("be-ns", &be).expect("ok"), node_frames());
    }

    #[test]
    fn a_stream_fed_byte_by_byte_gives_each_record_once_it_is_whole() {
        let node = fixture(NODE_PCAP);
        let (_, whole) = parse_pcap_records("node", &node).expect("ok");
        let mut reader = PcapStreamReader::new();
        let mut seen = Vec::new();
        for (i, byte) in node.iter().enumerate() {
            let got = reader.push(std::slice::from_ref(byte)).expect("pcap");
            // A record appears exactly when its last byte has arrived.
            if !got.is_empty() {
                assert_eq!(reader.pending(), 0, "byte {i}");
            }
            seen.extend(got);
        }
        assert_eq!(seen, whole);
        assert_eq!(reader.linktype(), Some(DataLink::ETHERNET));
        assert_eq!(reader.end_problem(), None);
        let mut cut = PcapStreamReader::new();
        assert_eq!(cut.push(&node[..node.len() - 5]).expect("pcap").len(), 17);
        assert!(cut.pending() > 0);
        assert!(
            cut.end_problem()
                .is_some_and(|p| p.contains("truncated data"))
        );
    }

    #[test]
    fn records_longer_on_the_wire_than_the_snap_length_are_read() {
        // What `tcpdump -s 64 -w -` writes: each record cut to 64 bytes, its original length
        // (on the wire) longer than the file's snap length.
        let node = fixture(NODE_PCAP);
        let (linktype, records) = parse_pcap_records("node", &node).expect("ok");
        let header = PcapHeader {
            snaplen: 64,
            datalink: linktype,
            ..PcapHeader::default()
        };
        let mut writer = PcapWriter::with_header(Vec::new(), header).expect("header");
        for (ts, data) in &records {
            let cut = &data[..data.len().min(64)];
            let raw = pcap_file::pcap::RawPcapPacket {
                ts_sec: ts.as_secs() as u32,
                ts_frac: ts.subsec_micros(),
                incl_len: cut.len() as u32,
                orig_len: data.len() as u32,
                data: cut.into(),
            };
            writer.write_raw_packet(&raw).expect("record");
        }
        let frames = parse_pcap("snap 64", &writer.into_writer()).expect("reads");
        assert_eq!(frames.len(), 18);
        assert_eq!(frames[0].arp(), node_frames()[0].arp());
    }

    #[test]
    fn truncated_or_foreign_files_are_clear_errors() {
        let node = fixture(NODE_PCAP);
        let msg = parse_pcap("cap", &node[..node.len() - 5])
            .expect_err("cut data")
            .to_string();
        assert!(msg.starts_with("cap: record 17 at byte "), "{msg}");
        assert!(msg.contains("truncated data"), "{msg}");
        let msg = parse_pcap("cap", &node[..24 + 10])
            .expect_err("cut")
            .to_string();
        assert!(
            msg.contains("record 0 at byte 24: truncated header"),
            "{msg}"
        );
        let msg = parse_pcap("cap", &node[..10]).expect_err("cut").to_string();
        assert!(msg.contains("truncated pcap header"), "{msg}");
        let msg = parse_pcap("cap", b"").expect_err("empty").to_string();
        assert!(msg.contains("empty"), "{msg}");
        let msg = parse_pcap("cap", b"\x0a\x0d\x0d\x0a....")
            .expect_err("ng")
            .to_string();
        assert!(msg.contains("pcapng"), "{msg}");
        let msg = parse_pcap("cap", b"GET / HTTP/1.1\r\n\r\n....")
            .expect_err("no")
            .to_string();
        assert!(msg.contains("not a pcap file"), "{msg}");
        let msg = parse_pcap("cap", &write_pcap(DataLink::from(147), &[]))
            .expect_err("lt")
            .to_string();
        assert!(msg.contains("unsupported pcap link type 147"), "{msg}");
        assert_eq!(parse_pcap("cap", &node[..24]).expect("header only"), vec![]);
    }

    #[test]
    fn vlan_tags_cooked_captures_and_other_ethertypes() {
        let node = fixture(NODE_PCAP);
        let (_, records) = parse_pcap_records("node", &node).expect("ok");
        let arp_eth = &records[0].1;
        let request = node_frames()[0].arp().cloned().expect("ARP");
        // 802.1ad outer tag, 802.1Q inner tag, then the ARP request.
        let mut qinq = arp_eth[..12].to_vec();
        qinq.extend_from_slice(&[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x64]);
        qinq.extend_from_slice(&arp_eth[12..]);
        let frame = parse_frame(DataLink::ETHERNET, Duration::ZERO, &qinq).expect("QinQ");
        assert_eq!(frame.arp(), Some(&request));
        assert_eq!(frame.eth.map(|e| e.src), Some(POD_MAC));
        // The same request in a cooked capture of `lo` (ARPHRD_LOOPBACK, 772).
        let mut sll = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
        sll.extend_from_slice(&arp_eth[12..]);
        let frame = parse_frame(DataLink::LINUX_SLL, Duration::ZERO, &sll).expect("SLL");
        assert_eq!((frame.eth, frame.arp()), (None, Some(&request)));
        // A whole Ethernet frame behind transparent Ethernet bridging keeps its MACs.
        let mut teb = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x65, 0x58];
        teb.extend_from_slice(arp_eth);
        let frame = parse_frame(DataLink::LINUX_SLL, Duration::ZERO, &teb).expect("TEB");
        assert_eq!(frame.eth.map(|e| e.src), Some(POD_MAC));
        // IPv6 is recognised, other EtherTypes are named.
        let mut v6 = arp_eth[..12].to_vec();
        v6.extend_from_slice(&[0x86, 0xdd, 0x60]);
        v6.extend_from_slice(&[0; 39]);
        let frame = parse_frame(DataLink::ETHERNET, Duration::ZERO, &v6).expect("IPv6");
        assert!(matches!(frame.l3, L3::Ipv6(_)), "{frame:?}");
        let mut lldp = arp_eth[..12].to_vec();
        lldp.extend_from_slice(&[0x88, 0xcc, 0, 0]);
        let frame = parse_frame(DataLink::ETHERNET, Duration::ZERO, &lldp).expect("LLDP");
        assert_eq!(frame.l3, L3::Other(0x88cc));
        // ARP for another hardware type (IEEE 802, 6) is not the Ethernet/IPv4 ARP claims read.
        let mut ieee = arp_eth.clone();
        ieee[15] = 6;
        assert_eq!(parse_frame(DataLink::ETHERNET, Duration::ZERO, &ieee), None);
    }

    #[test]
    fn undecodable_frames_are_none_not_panics() {
        assert_eq!(
            parse_frame(DataLink::ETHERNET, Duration::ZERO, &[1, 2, 3]),
            None
        );
        assert_eq!(parse_frame(DataLink::RAW, Duration::ZERO, &[]), None);
        assert_eq!(
            parse_frame(DataLink::RAW, Duration::ZERO, &[0x45, 0, 0]),
            None
        );
        assert_eq!(
            parse_frame(DataLink::LINUX_SLL, Duration::ZERO, &[0; 10]),
            None
        );
        assert_eq!(
            parse_frame(DataLink::from(9999), Duration::ZERO, &[0; 64]),
            None
        );
        let node = fixture(NODE_PCAP);
        let (_, records) = parse_pcap_records("node", &node).expect("ok");
        for (_, data) in &records {
            for cut in 0..data.len() {
                let _ = parse_frame(DataLink::ETHERNET, Duration::ZERO, &data[..cut]);
            }
        }
        let cut_tcp = &records[9].1[..40];
        let frame = parse_frame(DataLink::ETHERNET, Duration::ZERO, cut_tcp).expect("headers");
        assert_eq!(frame.ipv4().map(|i| i.src), Some(TEST_TOOLS));
    }

    const HOST_END: Mac = [0xee; 6];
    const POD6_MAC: Mac = [0x42, 0x0b, 0xa0, 0xbc, 0x45, 0xb8];
    /// The host end's link-local address (EUI-64 of ee:ee:ee:ee:ee:ee): a pod's IPv6 gateway.
    const GW6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);
    const POD6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const SOLICITED_NODE: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xffee, 0xeeee);
    const POD6_A: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, 0x0a);
    const POD6_B: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 2, 0, 0, 0, 0x0a);
    const NODE6_1: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x12, 0x22, 0, 0, 0, 0, 2);
    const NODE6_2: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x12, 0x22, 0, 0, 0, 0, 3);

    /// The NS/NA body after the 8-byte ICMPv6 header: the target, then one link-layer address
    /// option of type `option` (1 source, 2 target) when a MAC is given.
    fn ndp_body(target: Ipv6Addr, option: Option<(u8, Mac)>) -> Vec<u8> {
        let mut body = target.octets().to_vec();
        if let Some((kind, mac)) = option {
            body.extend_from_slice(&[kind, 1]);
            body.extend_from_slice(&mac);
        }
        body
    }

    /// Ethernet, IPv6 (`src` > `dst`, hop limit `hlim`), ICMPv6 of `icmp_type` with bytes 5-8
    /// `head` and `body`.
    fn built_icmpv6(
        macs: (Mac, Mac),
        ips: (Ipv6Addr, Ipv6Addr),
        hlim: u8,
        (icmp_type, head): (u8, [u8; 4]),
        body: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(macs.0, macs.1)
            .ipv6(ips.0.octets(), ips.1.octets(), hlim)
            .icmpv6_raw(icmp_type, 0, head)
            .write(&mut out, body)
            .expect("builds");
        out
    }

    /// A pod's solicitation for its gateway, with its source link-layer address option.
    fn built_ns() -> Vec<u8> {
        built_icmpv6(
            (POD6_MAC, [0x33, 0x33, 0xff, 0xee, 0xee, 0xee]),
            (POD6_LL, SOLICITED_NODE),
            255,
            (135, [0; 4]),
            &ndp_body(GW6, Some((1, POD6_MAC))),
        )
    }

    /// The host end's solicited, overriding advertisement of the gateway.
    fn built_na() -> Vec<u8> {
        built_icmpv6(
            (HOST_END, POD6_MAC),
            (GW6, POD6_LL),
            255,
            (136, [0x60, 0, 0, 0]),
            &ndp_body(GW6, Some((2, HOST_END))),
        )
    }

    fn built_tcp6(macs: (Mac, Mac), src: Ipv6Addr, dst: Ipv6Addr, hlim: u8) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(macs.0, macs.1)
            .ipv6(src.octets(), dst.octets(), hlim)
            .tcp(40000, 8080, 1, 64000)
            .syn()
            .write(&mut out, b"hi6")
            .expect("builds");
        out
    }

    fn eth_frame(data: &[u8]) -> Frame {
        parse_frame(DataLink::ETHERNET, Duration::ZERO, data).expect("decodes")
    }

    #[test]
    fn neighbor_solicitation_for_the_gateway_with_its_source_link_layer_address() {
        let frame = eth_frame(&built_ns());
        let ip = frame.ipv6().expect("IPv6");
        assert_eq!(
            (ip.src, ip.dst, ip.hop_limit),
            (POD6_LL, SOLICITED_NODE, 255)
        );
        assert_eq!((ip.next_header, ip.payload_len), (58, 32));
        let (_, icmp) = frame.icmpv6().expect("ICMPv6");
        assert_eq!(
            (icmp.icmp_type, icmp.code, icmp.id, icmp.seq),
            (135, 0, 0, 0)
        );
        assert_eq!(
            frame.ndp(),
            Some(&Ndp::Solicitation {
                target: GW6,
                source_mac: Some(POD6_MAC)
            })
        );
        assert_eq!(frame.ndp().map(Ndp::target), Some(GW6));
        assert!(frame.ipv4().is_none() && frame.tcp6().is_none() && frame.encapsulated().is_none());
        // Without the option (a duplicate address detection probe from ::).
        let dad = built_icmpv6(
            ([2; 6], [0x33, 0x33, 0xff, 0xee, 0xee, 0xee]),
            (Ipv6Addr::UNSPECIFIED, SOLICITED_NODE),
            255,
            (135, [0; 4]),
            &ndp_body(GW6, None),
        );
        assert_eq!(
            eth_frame(&dad).ndp(),
            Some(&Ndp::Solicitation {
                target: GW6,
                source_mac: None
            })
        );
    }

    #[test]
    fn neighbor_advertisement_with_flags_and_target_link_layer_address() {
        let frame = eth_frame(&built_na());
        assert_eq!(frame.eth.map(|e| e.src), Some(HOST_END));
        assert_eq!(
            frame.ndp(),
            Some(&Ndp::Advertisement {
                target: GW6,
                router: false,
                solicited: true,
                override_: true,
                target_mac: Some(HOST_END)
            })
        );
        // R only, the link-layer option after an unknown 16-byte option (type 14, nonce).
        let mut body = GW6.octets().to_vec();
        body.extend_from_slice(&[14, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(&HOST_END);
        let na = built_icmpv6(
            (HOST_END, POD6_MAC),
            (GW6, POD6_LL),
            255,
            (136, [0x80, 0, 0, 0]),
            &body,
        );
        let Some(Ndp::Advertisement {
            router,
            solicited,
            override_,
            target_mac,
            ..
        }) = eth_frame(&na).ndp().copied()
        else {
            panic!("not an NA");
        };
        assert_eq!((router, solicited, override_), (true, false, false));
        assert_eq!(target_mac, Some(HOST_END));
    }

    #[test]
    fn ndp_lines_read_like_tcpdump() {
        let ns = eth_frame(&built_ns());
        assert_eq!(
            ns.to_string(),
            "42:0b:a0:bc:45:b8 > 33:33:ff:ee:ee:ee IP6 fe80::1 > ff02::1:ffee:eeee hlim 255 \
             icmp6 neighbor solicitation who-has fe80::ecee:eeff:feee:eeee"
        );
        let na = eth_frame(&built_na());
        assert_eq!(
            na.to_string(),
            "ee:ee:ee:ee:ee:ee > 42:0b:a0:bc:45:b8 IP6 fe80::ecee:eeff:feee:eeee > fe80::1 \
             hlim 255 icmp6 neighbor advertisement tgt is fe80::ecee:eeff:feee:eeee \
             is-at ee:ee:ee:ee:ee:ee"
        );
    }

    #[test]
    fn icmpv6_echo_request_keeps_id_seq_and_hop_limit() {
        let mut data = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], HOST_END)
            .ipv6(POD6_A.octets(), POD6_B.octets(), 63)
            .icmpv6_echo_request(5, 1)
            .write(&mut data, b"ping")
            .expect("builds");
        let frame = eth_frame(&data);
        let (ip, icmp) = frame.icmpv6().expect("ICMPv6");
        assert_eq!((ip.hop_limit, ip.next_header, ip.payload_len), (63, 58, 12));
        assert_eq!(
            icmp,
            &Icmpv6 {
                icmp_type: ICMPV6_ECHO_REQUEST,
                code: 0,
                id: 5,
                seq: 1,
                ndp: None
            }
        );
        assert!(frame.to_string().ends_with(
            "IP6 fd00:10:244:1::a > fd00:10:244:2::a hlim 63 icmp6 echo request id 5 seq 1"
        ));
        assert!(frame.carries_ipv6_between(POD6_B, POD6_A));
        assert!(!frame.carries_ipv6_between(POD6_A, NODE6_1));
    }

    #[test]
    fn tcp_over_ipv6() {
        let frame = eth_frame(&built_tcp6(([2; 6], HOST_END), POD6_A, POD6_B, 64));
        let (ip, tcp) = frame.tcp6().expect("TCP over IPv6");
        assert_eq!(
            (ip.src, ip.dst, ip.hop_limit, ip.next_header),
            (POD6_A, POD6_B, 64, 6)
        );
        assert_eq!(ip.payload_len, 23);
        assert!(tcp.syn && !tcp.ack && tcp.payload == b"hi6");
        assert_eq!((tcp.src_port, tcp.dst_port), (40000, 8080));
        assert!(frame.tcp().is_none(), "tcp() stays IPv4");
        let (a, b) = (
            SocketAddrV6::new(POD6_A, 40000, 0, 0),
            SocketAddrV6::new(POD6_B, 8080, 0, 0),
        );
        assert!(frame.is_tcp6_between(b, a) && frame.is_tcp6_between(a, b));
        assert!(!frame.is_tcp6_between(a, SocketAddrV6::new(POD6_B, 8081, 0, 0)));
        assert!(
            frame.to_string().ends_with(
                "IP6 fd00:10:244:1::a.40000 > fd00:10:244:2::a.8080 hlim 64 tcp [S] len 3"
            )
        );
    }

    fn vxlan_payload(vni: u32, inner: &[u8]) -> Vec<u8> {
        let v = vni.to_be_bytes();
        let mut vxlan = vec![0x08, 0, 0, 0, v[1], v[2], v[3], 0];
        vxlan.extend_from_slice(inner);
        vxlan
    }

    #[test]
    fn vxlan_over_ipv6_is_unwrapped_to_the_inner_ethernet_frame() {
        let inner = built_tcp6(([0x66; 6], [0x77; 6]), POD6_A, POD6_B, 63);
        let mut outer = Vec::new();
        etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(NODE6_1.octets(), NODE6_2.octets(), 64)
            .udp(51000, VXLAN_PORT)
            .write(&mut outer, &vxlan_payload(6096, &inner))
            .expect("builds");
        let frame = eth_frame(&outer);
        let ip = frame.ipv6().expect("outer IPv6");
        assert_eq!((ip.src, ip.dst, ip.next_header), (NODE6_1, NODE6_2, 17));
        assert!(matches!(ip.l4, L4::Udp { dst_port: 4789, .. }));
        let encap = frame.encapsulated().expect("VXLAN");
        assert_eq!(encap.kind, EncapKind::Vxlan { vni: 6096 });
        let innermost = frame.innermost();
        assert_eq!(innermost.eth.map(|e| e.src), Some([0x66; 6]));
        let (iip, tcp) = innermost.tcp6().expect("inner TCP over IPv6");
        assert_eq!((iip.src, iip.dst, iip.hop_limit), (POD6_A, POD6_B, 63));
        assert_eq!(tcp.payload, b"hi6");
        assert!(frame.carries_ipv6_between(POD6_A, POD6_B));
        assert!(frame.carries_ipv6_between(NODE6_2, NODE6_1));
        assert!(frame.tcp6().is_none());
        assert!(frame.to_string().contains(" udp len ") && frame.to_string().contains(
            " VXLAN vni 6096: 66:66:66:66:66:66 > 77:77:77:77:77:77 IP6 fd00:10:244:1::a.40000"
        ));
    }

    #[test]
    fn ipv6_inside_ipv4_vxlan_is_decoded() {
        let inner = built_tcp6(([0x66; 6], [0x77; 6]), POD6_A, POD6_B, 63);
        let mut outer = Vec::new();
        etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 12, 22, 2], [10, 12, 22, 3], 64)
            .udp(51000, VXLAN_PORT)
            .write(&mut outer, &vxlan_payload(4096, &inner))
            .expect("builds");
        let frame = eth_frame(&outer);
        assert!(frame.ipv4().is_some());
        assert_eq!(
            frame.encapsulated().map(|e| e.kind),
            Some(EncapKind::Vxlan { vni: 4096 })
        );
        assert!(frame.innermost().tcp6().is_some());
        assert!(frame.carries_ipv6_between(POD6_B, POD6_A));
    }

    /// The first fragment (fragment header offset 0, M set) of a VXLAN-over-IPv6 packet still
    /// shows the inner frame it starts.
    #[test]
    fn the_first_fragment_of_a_vxlan_over_ipv6_packet_shows_what_it_carries() {
        let inner = built_tcp6(([0x66; 6], [0x77; 6]), POD6_A, POD6_B, 63);
        let mut udp = vec![0xc7, 0x38, 0x12, 0xb5, 0x05, 0xb4, 0, 0];
        udp.extend_from_slice(&vxlan_payload(6096, &inner));
        let mut fragment = vec![17, 0, 0x00, 0x01, 0, 0, 0, 7];
        fragment.extend_from_slice(&udp);
        let len = fragment.len() as u16;
        let mut data = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        data.extend_from_slice(&[0x60, 0, 0, 0, (len >> 8) as u8, len as u8, 44, 64]);
        data.extend_from_slice(&NODE6_1.octets());
        data.extend_from_slice(&NODE6_2.octets());
        data.extend_from_slice(&fragment);
        let frame = eth_frame(&data);
        let ip = frame.ipv6().expect("IPv6");
        assert_eq!((ip.next_header, ip.l4.clone()), (17, L4::Other));
        assert_eq!(
            frame.encapsulated().map(|e| e.kind),
            Some(EncapKind::Vxlan { vni: 6096 })
        );
        assert!(frame.innermost().tcp6().is_some());
        // A later fragment (offset 1) holds no UDP header: nothing is read from it.
        let at = 14 + 40 + 3;
        data[at] = 0x08 | 0x01;
        let later = eth_frame(&data);
        assert!(later.encapsulated().is_none());
    }

    #[test]
    fn truncated_or_malformed_ndp_is_none_not_a_panic() {
        for data in [built_ns(), built_na()] {
            for cut in 0..data.len() {
                let _ = parse_frame(DataLink::ETHERNET, Duration::ZERO, &data[..cut]);
            }
            // Cut inside the target: still ICMPv6, no NDP.
            let frame = eth_frame(&data[..14 + 40 + 8 + 10]);
            let (_, icmp) = frame.icmpv6().expect("ICMPv6 header");
            assert_eq!(icmp.ndp, None);
            // Cut inside the option: the target is read, the option left out.
            let frame = eth_frame(&data[..data.len() - 3]);
            assert_eq!(frame.ndp().map(Ndp::target), Some(GW6));
            assert!(matches!(
                frame.ndp(),
                Some(
                    Ndp::Solicitation {
                        source_mac: None,
                        ..
                    } | Ndp::Advertisement {
                        target_mac: None,
                        ..
                    }
                )
            ));
        }
        assert_eq!(ndp_from(&[]), None);
        assert_eq!(ndp_from(&[135]), None);
        assert_eq!(ndp_from(&[135, 0, 0, 0, 0, 0, 0, 0]), None);
        // A non-zero code is not NDP.
        let mut bad = vec![135, 1, 0, 0, 0, 0, 0, 0];
        bad.extend_from_slice(&GW6.octets());
        assert_eq!(ndp_from(&bad), None);
        bad[1] = 0;
        // A zero-length option ends the walk (and would loop forever if it did not).
        bad.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            ndp_from(&bad),
            Some(Ndp::Solicitation {
                target: GW6,
                source_mac: None
            })
        );
        // A link-layer option too short for a MAC is left out.
        assert_eq!(link_layer_option(&[1, 0], 1), None);
        assert_eq!(link_layer_option(&[1, 1, 1, 2, 3], 1), None);
        assert_eq!(
            link_layer_option(&[1, 1, 1, 2, 3, 4, 5, 6], 1),
            Some([1, 2, 3, 4, 5, 6])
        );
        // An IPv6 header cut short is not a frame.
        let ns = built_ns();
        assert_eq!(
            parse_frame(DataLink::ETHERNET, Duration::ZERO, &ns[..14 + 20]),
            None
        );
        // Raw IPv6 (link type RAW, version 6) decodes too.
        let raw = parse_frame(DataLink::RAW, Duration::ZERO, &ns[14..]).expect("raw IPv6");
        assert_eq!((raw.eth, raw.ndp().map(Ndp::target)), (None, Some(GW6)));
    }
}
