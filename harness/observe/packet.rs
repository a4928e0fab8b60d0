//! Frames parsed from pcap data: Ethernet (with VLAN tags), Linux cooked captures, ARP, IPv4,
//! TCP, UDP, ICMP, and the inner packet of VXLAN (UDP 4789) and IPIP (IP protocol 4).
//!
//! pcap records are read by `pcap-file` ([`PcapStreamReader`], for a live `tcpdump -w -` stream
//! as for a file), headers are decoded by `etherparse`'s lax slicing.

use crate::error::{Error, Result};
use etherparse::{
    ArpOperation, ArpPacketSlice, EtherType, Icmpv4Type, IpNumber, LaxIpv4Slice, LaxNetSlice,
    LaxSlicedPacket, LinkSlice, TcpOptionElement, TransportSlice,
};
pub use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::{Endianness, PcapError, TsResolution};
use std::net::{Ipv4Addr, SocketAddrV4};
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
    /// IPv6 is recognised but not decoded further.
    Ipv6,
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
    /// VXLAN over UDP 4789, with its VNI (Calico: 4096).
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

    /// The encapsulation of this frame, when it is a VXLAN or IPIP packet.
    pub fn encapsulated(&self) -> Option<&Encapsulated> {
        self.ipv4()?.inner.as_deref()
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
    /// One line in the spirit of `tcpdump`: `ee:ee:ee:ee:ee:ee > 42:0b:.. ARP reply ...`.
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
            L3::Ipv6 => f.write_str("IPv6"),
            L3::Other(t) => write!(f, "ethertype 0x{t:04x}"),
            L3::Ipv4(ip) => {
                let (sp, dp) = match &ip.l4 {
                    L4::Tcp(t) => (format!(".{}", t.src_port), format!(".{}", t.dst_port)),
                    L4::Udp {
                        src_port, dst_port, ..
                    } => (format!(".{src_port}"), format!(".{dst_port}")),
                    _ => (String::new(), String::new()),
                };
                write!(f, "IP {}{sp} > {}{dp} ttl {}", ip.src, ip.dst, ip.ttl)?;
                match &ip.l4 {
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
                        write!(f, " tcp [{flags}] len {}", t.payload.len())?;
                    }
                    L4::Udp { payload_len, .. } => write!(f, " udp len {payload_len}")?,
                    L4::Icmp {
                        icmp_type, id, seq, ..
                    } => write!(f, " icmp type {icmp_type} id {id} seq {seq}")?,
                    L4::Other => write!(f, " proto {}", ip.protocol)?,
                }
                if let Some(inner) = &ip.inner {
                    match inner.kind {
                        EncapKind::Vxlan { vni } => write!(f, " VXLAN vni {vni}: ")?,
                        EncapKind::Ipip => f.write_str(" IPIP: ")?,
                    }
                    write!(f, "{}", inner.frame)?;
                }
                Ok(())
            }
        }
    }
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
        (EtherType::ARP | EtherType::IPV4, _) => return None,
        (EtherType::IPV6, _) => L3::Ipv6,
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

fn ipv4_from(
    ts: Duration,
    ip: &LaxIpv4Slice<'_>,
    transport: Option<&TransportSlice<'_>>,
    depth: usize,
) -> Ipv4 {
    let header = ip.header();
    let payload = ip.payload();
    let mut inner = None;
    let l4 = match transport {
        Some(TransportSlice::Tcp(t)) => L4::Tcp(Tcp {
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
        Some(TransportSlice::Udp(u)) => {
            if u.destination_port() == VXLAN_PORT && depth < MAX_DEPTH {
                inner = decode_vxlan(ts, u.payload(), depth);
            }
            L4::Udp {
                src_port: u.source_port(),
                dst_port: u.destination_port(),
                payload_len: u.payload().len(),
            }
        }
        Some(TransportSlice::Icmpv4(icmp)) => {
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
        _ => {
            // IPIP: the payload is the inner IPv4 packet (never for a fragment).
            if header.protocol() == IpNumber::IPV4 && !payload.fragmented && depth < MAX_DEPTH {
                inner = decode_ether_type(ts, None, EtherType::IPV4, payload.payload, depth + 1)
                    .map(|frame| {
                        Box::new(Encapsulated {
                            kind: EncapKind::Ipip,
                            frame,
                        })
                    });
            }
            // The first fragment of a VXLAN packet (an underlay too small for it, MTU-3) still
            // holds the UDP and VXLAN headers and the start of the inner frame: decode what is
            // there, so the fragment says what it carries. Its transport stays `Other`.
            let first_fragment = payload.fragmented && header.fragments_offset().value() == 0;
            if header.protocol() == IpNumber::UDP && first_fragment && depth < MAX_DEPTH {
                let udp = payload.payload;
                if be16(udp, 2) == Some(VXLAN_PORT) {
                    inner = udp
                        .get(8..)
                        .and_then(|vxlan| decode_vxlan(ts, vxlan, depth));
                }
            }
            L4::Other
        }
    };
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
        assert_eq!(frame.l3, L3::Ipv6);
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
}
