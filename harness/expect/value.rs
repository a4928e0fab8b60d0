//! The values checks compare, as a report keeps them: plain data, shared by every kind of
//! check (the checks themselves are in the sibling modules).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// A value a check compares, as a report keeps it (`{"mtu": 1450}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// An MTU.
    Mtu(u32),
    /// A link-layer address as `ip` prints it, lower case; `None` when the link has none.
    Mac(Option<String>),
    /// An interface name.
    Name(String),
    /// A link's kind (`veth`); `None` when `ip -d` printed no linkinfo.
    Kind(Option<String>),
    /// An interface index (an ifindex or an iflink); `None` when there is none.
    Index(Option<u32>),
    /// Device flags.
    Flags(Vec<String>),
    /// Addresses as `<address>/<prefix> scope <scope>`.
    Addresses(Vec<String>),
    /// Interfaces: names, or one description each.
    Interfaces(Vec<String>),
    /// Sysctls by key (`net.ipv4.conf.<iface>.proxy_arp`); `missing` for one that is not there.
    Sysctls(BTreeMap<String, String>),
    /// One route (expected: the fields that must hold).
    Route(RouteFields),
    /// Routes as observed.
    Routes(Vec<RouteFields>),
    /// A neighbour entry.
    Neighbour(NeighbourFields),
    /// The TTL every reply must carry.
    Ttl(u8),
    /// The TTLs of the replies that came back.
    Ttls(Vec<u8>),
    /// The encapsulation packets must carry.
    Encapsulation(EncapsulationFields),
    /// Frames: one summary each (observed), or what they must look like (expected).
    Frames(Vec<String>),
    /// A count.
    Count(usize),
    /// An HTTP response body.
    Body(String),
    // MTU along the path (MTU-1..4).
    /// MTUs by interface (`calied9d42cb137`, `vxlan.calico`, `eth0 of test-tools`); `null` for
    /// an interface that should be there and is not.
    Mtus(BTreeMap<String, Option<u32>>),
    /// What became of an ICMP echo request sent with Don't Fragment.
    Echo(EchoFields),
    /// The frames of an echo on an underlay, measured against its MTU.
    UnderlayFrames(UnderlayFields),
    /// A TCP segment's MSS option; `None` for a SYN without one.
    Mss(Option<u16>),
    /// Where the datastore and a node's dataplane disagree (REC-*), each naming its pod, link,
    /// route or block; expected: none.
    Disagreements(Vec<Disagreement>),
}

/// One disagreement between the datastore and a node's dataplane.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Disagreement {
    /// The node it was seen on.
    pub node: String,
    /// What is at fault: `pod`, `link`, `route` or `block`.
    pub kind: String,
    /// Its name: `default/test-tools`, `calied9d42cb137`, `192.168.1.50/32 dev cali...`,
    /// `192.168.3.0/26`.
    pub name: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} on {}: {}",
            self.kind, self.name, self.node, self.problem
        )
    }
}

/// What became of a DF echo request (MTU-2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoFields {
    /// The ICMP payload in bytes (`ping -s`); the packet is 28 bytes more.
    pub payload: u32,
    /// The outcomes any of which will do (expected), or the one observed: `answered`,
    /// `refused_at_source`, `fragmentation_needed`, `icmp_error`, `lost`.
    pub outcomes: Vec<String>,
    /// The MTU a refusal or a fragmentation-needed error named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Who sent the ICMP error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Ipv4Addr>,
}

/// The frames of an echo on an underlay (MTU-3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnderlayFields {
    /// The largest outer IPv4 total length: the most allowed (expected, the underlay's MTU) or
    /// the largest seen (observed; `None` when nothing was seen).
    pub largest: Option<u32>,
    /// IPv4 fragments (MF set or a non-zero offset).
    pub fragments: usize,
    /// Whether the full-size echo request was among the frames.
    pub full_size_seen: bool,
}

/// A neighbour entry's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighbourFields {
    pub ip: IpAddr,
    pub dev: String,
    /// The link-layer address; `None` for an entry without one (FAILED, INCOMPLETE).
    pub lladdr: Option<String>,
    /// The states: the entry's own (observed), or the ones any of which will do (expected).
    pub states: Vec<String>,
}

/// A route's essential fields, as a report keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteFields {
    /// `unicast`, `blackhole`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `default` or a prefix.
    pub dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub onlink: bool,
}

impl fmt::Display for RouteFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != "unicast" {
            write!(f, "{} ", self.kind)?;
        }
        f.write_str(&self.dst)?;
        if let Some(g) = self.via {
            write!(f, " via {g}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if let Some(s) = &self.scope {
            write!(f, " scope {s}")?;
        }
        if self.onlink {
            f.write_str(" onlink")?;
        }
        Ok(())
    }
}

/// What encapsulated packets on an underlay must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncapsulationFields {
    /// The pool's encapsulation between the two nodes: `IPIP`, `VXLAN` or `None`.
    pub mode: String,
    /// The outer addresses (the nodes'), or the plain pod addresses for `None`.
    pub between: [Ipv4Addr; 2],
    /// The outer IP protocol: 4 (IPIP), 17 (VXLAN), 6 (plain TCP).
    pub protocol: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
}
