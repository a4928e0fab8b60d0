//! `ip -j` output (iproute2 JSON) as typed values.
//!
//! The parsers read fields, never whole lines: iproute2 omits `type` for unicast routes, prints
//! host routes without a prefix length (`"192.168.1.1"` is a /32), prints `"dst":"default"`,
//! leaves `protocol`, `metric` and `scope` out when they are the kernel's defaults, and marks
//! boolean attributes such as a neighbour's `router` by a key whose value is `null`. Unknown
//! extra fields are ignored, so newer iproute2 versions still parse.
//!
//! Each entry is deserialized (serde derive) into a private struct that mirrors iproute2's
//! object, then checked and turned into the public type; `serde_path_to_error` gives the field
//! path of a value of the wrong type.
//!
//! Every error names its source (a place and a command, or a file), the entry and the field:
//! `host k8s-worker-1: ip -j route: entry 3: field "dst": ...`.

use crate::error::{Error, Result};
use crate::observe::packet::Mac;
use ipnet::IpNet;
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};

/// A network device from `ip -j link` (with `-d`, also its kind and VXLAN details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// The kernel's interface index.
    pub ifindex: u32,
    /// The interface name (`eth0`, `calied9d42cb137`, `vxlan.calico`).
    pub ifname: String,
    /// The peer's ifindex (`link_index`, what `/sys/class/net/X/iflink` holds), for veth ends and
    /// tunnels bound to a device; the index may belong to another namespace (see
    /// [`Link::link_netnsid`]).
    pub link_index: Option<u32>,
    /// Device flags (`UP`, `LOWER_UP`, `BROADCAST`, `NOARP`, ...).
    pub flags: Vec<String>,
    /// The MTU.
    pub mtu: u32,
    /// The operational state (`UP`, `DOWN`, `UNKNOWN`).
    pub operstate: Option<String>,
    /// The link-layer type (`ether`, `loopback`, `ipip`, `none`).
    pub link_type: Option<String>,
    /// The link-layer address as printed (`ee:ee:ee:ee:ee:ee`; `0.0.0.0` for ipip).
    pub address: Option<String>,
    /// The namespace id of the peer, for links whose other end is in another namespace.
    pub link_netnsid: Option<i32>,
    /// The device kind (`linkinfo.info_kind`: `veth`, `vxlan`, `ipip`, `bridge`), only with `-d`.
    pub kind: Option<String>,
    /// VXLAN parameters (`linkinfo.info_data`), for kind `vxlan` with `-d`.
    pub vxlan: Option<VxlanInfo>,
}

/// The VXLAN parameters of a `vxlan` link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VxlanInfo {
    /// The VNI (Calico uses 4096 for IPv4).
    pub id: Option<u32>,
    /// The UDP destination port (4789).
    pub port: Option<u16>,
    /// The local (source) address of the tunnel.
    pub local: Option<Ipv4Addr>,
    /// The underlay device the tunnel is bound to (`info_data.link`).
    pub dev: Option<String>,
}

impl Link {
    /// True when the device is administratively up (flags contain `UP`).
    pub fn is_up(&self) -> bool {
        self.has_flag("UP")
    }

    /// True when the carrier is up (flags contain `LOWER_UP`).
    pub fn is_lower_up(&self) -> bool {
        self.has_flag("LOWER_UP")
    }

    /// True when `flag` is among the device flags.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// True when the device kind (needs `ip -d`) is `veth`.
    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some("veth")
    }

    /// The MAC address, when the link has an Ethernet-style address.
    pub fn mac(&self) -> Option<Mac> {
        parse_mac(self.address.as_deref()?)
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (any case) into a MAC; `None` for anything else.
pub fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in mac.iter_mut() {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(mac)
}

/// An address family of `ip addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Family {
    /// IPv4 (`inet`).
    Inet,
    /// IPv6 (`inet6`).
    Inet6,
}

/// One address of an interface (an `addr_info` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// `inet` or `inet6`.
    pub family: Family,
    /// The address itself.
    pub local: IpAddr,
    /// The prefix length (`/32` for a Calico pod's IPv4 address).
    pub prefixlen: u8,
    /// The scope (`global`, `link`, `host`).
    pub scope: String,
    /// The label (IPv4 only; usually the interface name).
    pub label: Option<String>,
}

impl Address {
    /// The IPv4 address, when this is one.
    pub fn v4(&self) -> Option<Ipv4Addr> {
        match self.local {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    /// The address with its prefix length as a network value (`192.168.1.10/32`).
    pub fn net(&self) -> Option<IpNet> {
        IpNet::new(self.local, self.prefixlen).ok()
    }
}

/// An interface from `ip -j addr`: the link and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// The device (all `ip link` fields).
    #[serde(flatten)]
    pub link: Link,
    /// Its addresses, in the order `ip` printed them.
    pub addrs: Vec<Address>,
}

impl Interface {
    /// The IPv4 addresses.
    pub fn ipv4(&self) -> impl Iterator<Item = &Address> {
        self.addrs.iter().filter(|a| a.family == Family::Inet)
    }

    /// The global-scope IPv6 addresses.
    pub fn global_v6(&self) -> impl Iterator<Item = &Address> {
        self.addrs
            .iter()
            .filter(|a| a.family == Family::Inet6 && a.scope == "global")
    }

    /// True when the interface holds `ip` (any prefix length).
    pub fn holds(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|a| a.local == ip)
    }
}

/// The route type (`type` in `ip -j route`; absent means unicast).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RouteType {
    /// A normal route (no `type` field).
    Unicast,
    /// `blackhole`: Calico's route for a node's own IPAM block.
    Blackhole,
    /// `unreachable`.
    Unreachable,
    /// `prohibit`.
    Prohibit,
    /// `local`.
    Local,
    /// `broadcast`.
    Broadcast,
    /// `multicast`.
    Multicast,
    /// Any other type, as printed.
    Other(String),
}

impl RouteType {
    fn from_ip(text: &str) -> Self {
        match text {
            "unicast" => RouteType::Unicast,
            "blackhole" => RouteType::Blackhole,
            "unreachable" => RouteType::Unreachable,
            "prohibit" => RouteType::Prohibit,
            "local" => RouteType::Local,
            "broadcast" => RouteType::Broadcast,
            "multicast" => RouteType::Multicast,
            other => RouteType::Other(other.to_string()),
        }
    }
}

/// A route's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RouteDst {
    /// `default` (0.0.0.0/0 or ::/0).
    Default,
    /// A prefix; host routes printed without a length are /32 or /128 here.
    Net(IpNet),
}

impl RouteDst {
    /// True for the default route.
    pub fn is_default(&self) -> bool {
        matches!(self, RouteDst::Default)
    }

    /// The prefix, `None` for the default route.
    pub fn net(&self) -> Option<IpNet> {
        match self {
            RouteDst::Default => None,
            RouteDst::Net(n) => Some(*n),
        }
    }

    /// True when this is the host route (/32 or /128) to exactly `ip`.
    pub fn is_host(&self, ip: IpAddr) -> bool {
        match self {
            RouteDst::Default => false,
            RouteDst::Net(n) => n.addr() == ip && n.prefix_len() == n.max_prefix_len(),
        }
    }
}

impl std::fmt::Display for RouteDst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteDst::Default => f.write_str("default"),
            RouteDst::Net(n) => write!(f, "{n}"),
        }
    }
}

/// One route from `ip -j route`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The route type.
    pub kind: RouteType,
    /// The destination.
    pub dst: RouteDst,
    /// The next hop (`gateway`, or `via.host` for routes with a gateway of the other family).
    pub gateway: Option<IpAddr>,
    /// The output device (blackhole IPv4 routes have none).
    pub dev: Option<String>,
    /// The protocol (`kernel`, `static`, `bird`, or a number such as `80` for Felix).
    pub protocol: Option<String>,
    /// The scope (`link`, `host`); absent means universe.
    pub scope: Option<String>,
    /// The preferred source address.
    pub prefsrc: Option<IpAddr>,
    /// The metric (priority).
    pub metric: Option<u32>,
    /// Next-hop flags (`onlink`, `linkdown`).
    pub flags: Vec<String>,
    /// The table, when `ip` printed one (only for tables other than the one asked for).
    pub table: Option<String>,
}

impl Route {
    /// True when the route carries the `onlink` flag.
    pub fn onlink(&self) -> bool {
        self.flags.iter().any(|f| f == "onlink")
    }

    /// True when the route goes out of `dev`.
    pub fn via_dev(&self, dev: &str) -> bool {
        self.dev.as_deref() == Some(dev)
    }
}

/// One neighbour (ARP / NDP) entry from `ip -j neigh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neighbour {
    /// The neighbour's address.
    pub dst: IpAddr,
    /// The device (absent when `ip` was asked for one device).
    pub dev: Option<String>,
    /// The link-layer address (absent for `FAILED` and `INCOMPLETE` entries).
    pub lladdr: Option<String>,
    /// NUD states (`REACHABLE`, `STALE`, `DELAY`, `PERMANENT`, `FAILED`, `INCOMPLETE`, `NOARP`).
    pub state: Vec<String>,
    /// True when the neighbour is a router (the `router` key is present).
    pub router: bool,
    /// True for a proxy entry (`ip neigh show proxy`).
    pub proxy: bool,
}

impl Neighbour {
    /// True when `state` is among the entry's states.
    pub fn has_state(&self, state: &str) -> bool {
        self.state.iter().any(|s| s == state)
    }

    /// The link-layer address as a MAC.
    pub fn mac(&self) -> Option<Mac> {
        parse_mac(self.lladdr.as_deref()?)
    }
}

/// Parses `ip -j link` / `ip -d -j link` output.
pub fn parse_links(source_name: &str, bytes: &[u8]) -> Result<Vec<Link>> {
    parse_entries(source_name, bytes, |at, json: LinkJson| json.into_link(at))
}

/// Parses `ip -j addr` / `ip -d -j addr` output.
pub fn parse_interfaces(source_name: &str, bytes: &[u8]) -> Result<Vec<Interface>> {
    parse_entries(source_name, bytes, |at, mut json: LinkJson| {
        let addr_info = json.addr_info.take().unwrap_or_default();
        let link = json.into_link(at)?;
        let addrs = addr_info
            .into_iter()
            .enumerate()
            .filter_map(|(j, a)| a.into_address(at, j).transpose())
            .collect::<Result<Vec<_>>>()?;
        Ok(Interface { link, addrs })
    })
}

/// Parses `ip -j route` output (either family).
pub fn parse_routes(source_name: &str, bytes: &[u8]) -> Result<Vec<Route>> {
    parse_entries(source_name, bytes, |at, json: RouteJson| {
        json.into_route(at)
    })
}

/// Parses `ip -j neigh` output (either family, also `ip -j neigh show proxy`).
pub fn parse_neighbours(source_name: &str, bytes: &[u8]) -> Result<Vec<Neighbour>> {
    parse_entries(source_name, bytes, |at, n: NeighbourJson| {
        Ok(Neighbour {
            dst: n.dst.ok_or_else(|| at.err("dst", "is missing"))?,
            dev: n.dev,
            lladdr: n.lladdr,
            state: n.state.unwrap_or_default(),
            router: n.router,
            proxy: n.proxy,
        })
    })
}

/// Deserializes each entry of the output as `J` (an error names the entry and the field's
/// path inside it) and turns it into a `T` with `convert`.
fn parse_entries<J: DeserializeOwned, T>(
    source_name: &str,
    bytes: &[u8],
    convert: impl Fn(&At<'_>, J) -> Result<T>,
) -> Result<Vec<T>> {
    entries(source_name, bytes)?
        .into_iter()
        .map(|(index, value)| {
            let at = At {
                source: source_name,
                index,
                name: match value.get("ifname").and_then(Value::as_str) {
                    Some(n) => format!(" ({n})"),
                    None => String::new(),
                },
            };
            let json = serde_path_to_error::deserialize(value)
                .map_err(|e| at.err(&e.path().to_string(), e.inner()))?;
            convert(&at, json)
        })
        .collect()
}

/// The top-level array's objects, with their index. iproute2 prints `{}` for objects it filtered
/// out (`ip -4 -j addr` on a link without IPv4); those are skipped.
fn entries(source_name: &str, bytes: &[u8]) -> Result<Vec<(usize, Value)>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::parse(
            source_name,
            "empty output (expected a JSON array)",
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::parse(source_name, format!("not valid JSON: {e}")))?;
    let Value::Array(list) = value else {
        return Err(Error::parse(
            source_name,
            format!("expected a JSON array, found {}", kind_of(&value)),
        ));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        match v {
            Value::Object(o) if o.is_empty() => {}
            v @ Value::Object(_) => out.push((i, v)),
            other => {
                return Err(Error::parse(
                    source_name,
                    format!("entry {i}: expected an object, found {}", kind_of(&other)),
                ));
            }
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// One entry of the output, as errors name it: `<source>: entry 3 (eth0): field "mtu": ...`.
struct At<'a> {
    source: &'a str,
    index: usize,
    /// ` (eth0)` for an entry with an `ifname`, empty otherwise.
    name: String,
}

impl At<'_> {
    fn err(&self, field: &str, problem: impl std::fmt::Display) -> Error {
        Error::parse(
            self.source,
            format!(
                "entry {}{}: field \"{field}\": {problem}",
                self.index, self.name
            ),
        )
    }
}

// The objects as iproute2 prints them. Every field is optional here (iproute2 leaves out what is
// at its default, and prints `null` for some); what the suite needs is checked when the entry is
// turned into its public type. Unknown fields are ignored.

/// An entry of `ip -j link` or `ip -j addr`.
#[derive(Deserialize)]
struct LinkJson {
    ifindex: Option<u32>,
    ifname: Option<String>,
    link_index: Option<u32>,
    flags: Option<Vec<String>>,
    mtu: Option<u32>,
    operstate: Option<String>,
    link_type: Option<String>,
    address: Option<String>,
    link_netnsid: Option<i32>,
    /// With `-d`.
    linkinfo: Option<LinkInfoJson>,
    /// `ip addr` only.
    addr_info: Option<Vec<AddrJson>>,
}

#[derive(Deserialize)]
struct LinkInfoJson {
    info_kind: Option<String>,
    /// Shaped by the kind (`"local": "any"` for ipip); read for `vxlan` only.
    info_data: Option<Value>,
}

/// `linkinfo.info_data` of a `vxlan` link.
#[derive(Deserialize)]
struct VxlanJson {
    id: Option<u32>,
    port: Option<u16>,
    #[serde(default, deserialize_with = "opt_ipv4")]
    local: Option<Ipv4Addr>,
    link: Option<String>,
}

/// An `addr_info` entry.
#[derive(Deserialize)]
struct AddrJson {
    family: Option<String>,
    /// Read once the family says it is an IP address.
    local: Option<String>,
    prefixlen: Option<u8>,
    scope: Option<String>,
    label: Option<String>,
}

/// An entry of `ip -j route`.
#[derive(Deserialize)]
struct RouteJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `default`, a prefix, or a bare address: see [`parse_dst`].
    dst: Option<String>,
    #[serde(default, deserialize_with = "opt_ip")]
    gateway: Option<IpAddr>,
    /// The next hop of the other family (`"via": {"family": "inet6", "host": "fe80::1"}`).
    via: Option<ViaJson>,
    dev: Option<String>,
    /// A name, or a number for protocols iproute2 has no name for.
    #[serde(default, deserialize_with = "name_or_number")]
    protocol: Option<String>,
    scope: Option<String>,
    #[serde(default, deserialize_with = "opt_ip")]
    prefsrc: Option<IpAddr>,
    metric: Option<u32>,
    flags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "name_or_number")]
    table: Option<String>,
}

#[derive(Deserialize)]
struct ViaJson {
    #[serde(default, deserialize_with = "opt_ip")]
    host: Option<IpAddr>,
}

/// An entry of `ip -j neigh`.
#[derive(Deserialize)]
struct NeighbourJson {
    #[serde(default, deserialize_with = "opt_ip")]
    dst: Option<IpAddr>,
    dev: Option<String>,
    lladdr: Option<String>,
    state: Option<Vec<String>>,
    /// A flag iproute2 prints as a key whose value is `null`: present means set.
    #[serde(default, deserialize_with = "present")]
    router: bool,
    #[serde(default, deserialize_with = "present")]
    proxy: bool,
}

impl LinkJson {
    fn into_link(self, at: &At<'_>) -> Result<Link> {
        let (kind, info_data) = match self.linkinfo {
            Some(info) => (info.info_kind, info.info_data),
            None => (None, None),
        };
        let vxlan = match (kind.as_deref(), info_data) {
            (Some("vxlan"), Some(data @ Value::Object(_))) => {
                let d: VxlanJson = serde_path_to_error::deserialize(data)
                    .map_err(|e| at.err(&format!("linkinfo.info_data.{}", e.path()), e.inner()))?;
                Some(VxlanInfo {
                    id: d.id,
                    port: d.port,
                    local: d.local,
                    dev: d.link,
                })
            }
            _ => None,
        };
        Ok(Link {
            ifindex: self
                .ifindex
                .ok_or_else(|| at.err("ifindex", "is missing"))?,
            ifname: self.ifname.ok_or_else(|| at.err("ifname", "is missing"))?,
            link_index: self.link_index,
            flags: self.flags.unwrap_or_default(),
            mtu: self.mtu.ok_or_else(|| at.err("mtu", "is missing"))?,
            operstate: self.operstate,
            link_type: self.link_type,
            address: self.address,
            link_netnsid: self.link_netnsid,
            kind,
            vxlan,
        })
    }
}

impl AddrJson {
    /// The address of `addr_info[j]`; `None` for one without an IP address: another family
    /// (mpls, ...), or an entry `ip` filtered out (`{}`).
    fn into_address(self, at: &At<'_>, j: usize) -> Result<Option<Address>> {
        let field = |name: &str| format!("addr_info[{j}].{name}");
        let family = match self.family.as_deref() {
            Some("inet") => Family::Inet,
            Some("inet6") => Family::Inet6,
            Some(_) => return Ok(None),
            None if self.local.is_none() => return Ok(None),
            None => return Err(at.err(&field("family"), "is missing")),
        };
        let text = self
            .local
            .ok_or_else(|| at.err(&field("local"), "is missing"))?;
        let local: IpAddr = text
            .parse()
            .map_err(|_| at.err(&field("local"), format!("\"{text}\" is not an IP address")))?;
        let max = if local.is_ipv4() { 32 } else { 128 };
        let prefixlen = match self.prefixlen {
            Some(n) if n <= max => n,
            Some(n) => {
                return Err(at.err(
                    &field("prefixlen"),
                    format!("{n} is longer than {max} for {local}"),
                ));
            }
            None => return Err(at.err(&field("prefixlen"), "is missing")),
        };
        Ok(Some(Address {
            family,
            local,
            prefixlen,
            scope: self.scope.unwrap_or_else(|| "global".to_string()),
            label: self.label,
        }))
    }
}

impl RouteJson {
    fn into_route(self, at: &At<'_>) -> Result<Route> {
        let dst = self.dst.ok_or_else(|| at.err("dst", "is missing"))?;
        Ok(Route {
            kind: self
                .kind
                .map_or(RouteType::Unicast, |t| RouteType::from_ip(&t)),
            dst: parse_dst(&dst).map_err(|p| at.err("dst", p))?,
            gateway: self.gateway.or(self.via.and_then(|v| v.host)),
            dev: self.dev,
            protocol: self.protocol,
            scope: self.scope,
            prefsrc: self.prefsrc,
            metric: self.metric,
            flags: self.flags.unwrap_or_default(),
            table: self.table,
        })
    }
}

/// An optional IP address; the error quotes the text.
fn opt_ip<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<IpAddr>, D::Error> {
    opt_parsed(d, "an IP address")
}

/// An optional IPv4 address; the error quotes the text.
fn opt_ipv4<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Ipv4Addr>, D::Error> {
    opt_parsed(d, "an IPv4 address")
}

fn opt_parsed<'de, D: Deserializer<'de>, T: std::str::FromStr>(
    d: D,
    what: &'static str,
) -> std::result::Result<Option<T>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    text.parse()
        .map(Some)
        .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(&text), &what))
}

/// A string, or a number kept as its decimal text; `null` is none.
fn name_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    struct NameOrNumber;
    impl<'de> de::Visitor<'de> for NameOrNumber {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a name or a number")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(NameOrNumber)
}

/// True for a key that is there, whatever its value (iproute2 prints flags as `"router": null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Parses a route destination as `ip` prints it: `default`, `a.b.c.d/n`, or a bare host address.
pub fn parse_dst(text: &str) -> std::result::Result<RouteDst, String> {
    if text == "default" {
        return Ok(RouteDst::Default);
    }
    if text.contains('/') {
        return text
            .parse::<IpNet>()
            .map(RouteDst::Net)
            .map_err(|_| format!("\"{text}\" is not a prefix"));
    }
    match text.parse::<IpAddr>() {
        Ok(ip) => Ok(RouteDst::Net(IpNet::from(ip))),
        Err(_) => Err(format!(
            "\"{text}\" is neither `default`, a prefix nor an address"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn fixture(path: &str) -> Vec<u8> {
        crate::fixtures::read_bytes(&format!("recorded/{path}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn net(s: &str) -> RouteDst {
        RouteDst::Net(s.parse().expect("test prefix"))
    }

    /// Every recorded `ip -j` output parses, and no entry is lost on the way (only the `{}`
    /// placeholders iproute2 prints for filtered-out objects are skipped).
    #[rstest::rstest]
    fn every_recorded_ip_output_parses(
        #[files("fixtures/recorded/*/*ip-*.json")] path: std::path::PathBuf,
    ) {
        let name = path.display().to_string();
        let bytes = std::fs::read(&path).expect("recorded file");
        let objects: Vec<Value> = serde_json::from_slice(&bytes).expect("a JSON array");
        let entries = objects
            .iter()
            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
            .count();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        let parsed = if file.contains("link") {
            parse_links(&name, &bytes).map(|v| v.len())
        } else if file.contains("addr") {
            parse_interfaces(&name, &bytes).map(|v| v.len())
        } else if file.contains("route") {
            parse_routes(&name, &bytes).map(|v| v.len())
        } else if file.contains("neigh") {
            parse_neighbours(&name, &bytes).map(|v| v.len())
        } else {
            panic!("{name}: which `ip` object is this?")
        };
        assert_eq!(parsed.expect("parses"), entries, "{name}");
    }

    #[test]
    fn node_links_with_details() {
        let links = parse_links("node", &fixture("node/ip-d-j-link.json")).expect("parses");
        let names: Vec<&str> = links.iter().map(|l| l.ifname.as_str()).collect();
        assert_eq!(names, ["lo", "eth0", "calied9d42cb137", "calid9d486e54a8"]);
        let cali = &links[2];
        assert_eq!(cali.ifindex, 3);
        assert_eq!(cali.link_index, Some(2));
        assert_eq!(cali.link_netnsid, Some(1));
        assert_eq!(cali.kind.as_deref(), Some("veth"));
        assert!(cali.is_veth() && cali.is_up() && cali.is_lower_up());
        assert_eq!(cali.mac(), Some([0xee; 6]));
        assert_eq!(cali.mtu, 1500);
        assert_eq!(cali.operstate.as_deref(), Some("UP"));
        assert_eq!(cali.link_type.as_deref(), Some("ether"));
        assert_eq!(links[0].link_index, None);
        assert_eq!(links[0].kind, None);
        assert!(links[0].has_flag("LOOPBACK"));
    }

    #[test]
    fn plain_links_have_no_kind() {
        let links = parse_links("node", &fixture("node/ip-j-link.json")).expect("parses");
        assert_eq!(links.len(), 4);
        assert!(links.iter().all(|l| l.kind.is_none()));
    }

    #[test]
    fn vxlan_details_from_a_lab_node() {
        let links = parse_links("lab node", &fixture("lab/node-ip-d-j-link.json")).expect("parses");
        let vx = links
            .iter()
            .find(|l| l.ifname == "vxlan.calico")
            .expect("vxlan.calico");
        assert_eq!(vx.kind.as_deref(), Some("vxlan"));
        assert_eq!(vx.mtu, 1450);
        assert_eq!(
            vx.vxlan,
            Some(VxlanInfo {
                id: Some(4096),
                port: Some(4789),
                local: Some(Ipv4Addr::new(10, 12, 22, 2)),
                dev: Some("eth0".into()),
            })
        );
        let veth = links
            .iter()
            .find(|l| l.ifname == "calitest0000a")
            .expect("cali");
        assert_eq!(veth.vxlan, None);
    }

    #[test]
    fn pod_interfaces_and_addresses() {
        let ifs = parse_interfaces("pod", &fixture("pod/test-tools-ip-j-addr.json")).expect("ok");
        assert_eq!(ifs.len(), 2);
        let eth0 = &ifs[1];
        assert_eq!(eth0.link.ifname, "eth0");
        assert_eq!(eth0.link.link_index, Some(3));
        let v4: Vec<&Address> = eth0.ipv4().collect();
        assert_eq!(v4.len(), 1);
        assert_eq!(v4[0].v4(), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(v4[0].prefixlen, 32);
        assert_eq!(v4[0].scope, "global");
        assert_eq!(v4[0].label.as_deref(), Some("eth0"));
        assert_eq!(eth0.global_v6().count(), 0);
        assert!(eth0.holds(ip("192.168.1.1")));
        assert!(!eth0.holds(ip("169.254.1.1")));
        let lo = &ifs[0];
        assert_eq!(lo.addrs[1].family, Family::Inet6);
        assert_eq!(lo.addrs[1].local, IpAddr::V6(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn host_interfaces_cali_ends_hold_no_ipv4() {
        let ifs = parse_interfaces("node", &fixture("node/ip-j-addr.json")).expect("ok");
        let cali = ifs
            .iter()
            .find(|i| i.link.ifname == "calied9d42cb137")
            .expect("cali");
        assert_eq!(cali.ipv4().count(), 0);
        assert_eq!(cali.addrs.len(), 1);
        assert_eq!(cali.addrs[0].scope, "link");
    }

    #[test]
    fn lab_interfaces_with_details_and_global_v6() {
        let ifs = parse_interfaces("lab pod", &fixture("lab/pod-ip-d-j-addr.json")).expect("ok");
        let eth0 = ifs.iter().find(|i| i.link.ifname == "eth0").expect("eth0");
        assert_eq!(eth0.link.kind.as_deref(), Some("veth"));
        let v6: Vec<IpAddr> = eth0.global_v6().map(|a| a.local).collect();
        assert_eq!(v6, [ip("fd00:10::a")]);
        assert_eq!(eth0.global_v6().next().map(|a| a.prefixlen), Some(128));
        parse_interfaces("lab node", &fixture("lab/node-ip-d-j-addr.json")).expect("ok");
    }

    #[test]
    fn filtered_output_with_empty_objects_is_skipped() {
        let text = br#"[{},{"ifindex":2,"ifname":"eth0","flags":[],"mtu":1500,"addr_info":[{},{"family":"inet","local":"10.0.0.1","prefixlen":24,"scope":"global"}]}]"#;
        let ifs = parse_interfaces("x", text).expect("ok");
        assert_eq!(ifs.len(), 1);
        assert_eq!(ifs[0].addrs.len(), 1);
    }

    #[test]
    fn node_routes_quirks() {
        let routes = parse_routes("node", &fixture("node/ip-j-route.json")).expect("ok");
        assert_eq!(routes.len(), 5);
        let default = &routes[0];
        assert!(default.dst.is_default());
        assert_eq!(default.kind, RouteType::Unicast);
        assert_eq!(default.gateway, Some(ip("10.12.0.1")));
        assert!(default.onlink());
        assert_eq!(default.protocol, None);
        assert_eq!(default.metric, None);
        let kernel = &routes[1];
        assert_eq!(kernel.dst, net("10.12.0.0/16"));
        assert_eq!(kernel.protocol.as_deref(), Some("kernel"));
        assert_eq!(kernel.prefsrc, Some(ip("10.12.22.2")));
        assert!(!kernel.onlink());
        let blackhole = &routes[2];
        assert_eq!(blackhole.kind, RouteType::Blackhole);
        assert_eq!(blackhole.dst, net("192.168.1.0/26"));
        assert_eq!(blackhole.dev, None);
        let host = &routes[3];
        assert_eq!(host.dst, net("192.168.1.1/32"));
        assert!(host.dst.is_host(ip("192.168.1.1")));
        assert!(host.via_dev("calied9d42cb137"));
        assert_eq!(host.scope.as_deref(), Some("link"));
    }

    #[test]
    fn pod_routes_are_the_link_local_pair() {
        let routes = parse_routes("pod", &fixture("pod/test-tools-ip-j-route.json")).expect("ok");
        assert_eq!(routes.len(), 2);
        assert!(routes[0].dst.is_default());
        assert_eq!(routes[0].gateway, Some(ip("169.254.1.1")));
        assert!(routes[1].dst.is_host(ip("169.254.1.1")));
        assert_eq!(routes[1].dst.to_string(), "169.254.1.1/32");
    }

    #[test]
    fn lab_routes_every_type_and_v6_host_routes() {
        let v4 = parse_routes("lab", &fixture("lab/node-ip-j-4-route.json")).expect("ok");
        let kinds: Vec<&RouteType> = v4.iter().map(|r| &r.kind).collect();
        assert!(kinds.contains(&&RouteType::Prohibit));
        assert!(kinds.contains(&&RouteType::Unreachable));
        let vx = v4
            .iter()
            .find(|r| r.dst == net("192.168.2.0/26"))
            .expect("vxlan route");
        assert!(vx.onlink() && vx.via_dev("vxlan.calico"));
        assert_eq!(vx.gateway, Some(ip("192.168.2.0")));
        assert_eq!(vx.protocol.as_deref(), Some("80"));
        let metric = v4
            .iter()
            .find(|r| r.dst == net("10.97.0.0/16"))
            .expect("metric route");
        assert_eq!(metric.metric, Some(100));
        let v6 = parse_routes("lab", &fixture("lab/node-ip-j-6-route.json")).expect("ok");
        assert!(v6[0].dst.is_host(ip("fd00:10::a")));
        assert_eq!(v6[0].dst, net("fd00:10::a/128"));
        assert_eq!(v6[1].kind, RouteType::Blackhole);
        assert_eq!(v6[1].metric, Some(1024));
    }

    #[test]
    fn neighbours_states_router_and_failed() {
        assert!(
            parse_neighbours("node", &fixture("node/ip-j-neigh.json"))
                .expect("ok")
                .is_empty()
        );
        let n = parse_neighbours("lab", &fixture("lab/node-ip-j-4-neigh.json")).expect("ok");
        let by = |d: &str| n.iter().find(|x| x.dst == ip(d)).expect(d);
        assert!(by("10.12.0.7").has_state("STALE"));
        let failed = by("10.12.0.9");
        assert!(failed.has_state("FAILED"));
        assert_eq!(failed.lladdr, None);
        assert!(by("10.12.0.1").router);
        assert!(!by("10.12.0.7").router);
        let perm = by("192.168.2.0");
        assert!(perm.has_state("PERMANENT"));
        assert_eq!(perm.dev.as_deref(), Some("vxlan.calico"));
        let pod = parse_neighbours("pod", &fixture("lab/pod-ip-j-4-neigh.json")).expect("ok");
        assert_eq!(pod[0].mac(), Some([0xee; 6]));
        let proxy = parse_neighbours("p", &fixture("lab/node-ip-j-neigh-proxy.json")).expect("ok");
        assert!(proxy[0].proxy && proxy[0].state.is_empty());
    }

    #[test]
    fn errors_name_source_entry_and_field() {
        let bad = br#"[{"dst":"default","flags":[]},{"dst":"10.0.0.0/8","flags":[]},{"dst":"1.2.3.4","flags":[]},{"dst":"nonsense/99","flags":[]}]"#;
        let msg = parse_routes("host k8s-worker-1: ip -j route", bad)
            .expect_err("bad dst")
            .to_string();
        assert!(
            msg.starts_with("host k8s-worker-1: ip -j route: entry 3: field \"dst\": "),
            "{msg}"
        );
        let msg = parse_links(
            "h: ip -j link",
            br#"[{"ifindex":1,"ifname":"lo","mtu":"big"}]"#,
        )
        .expect_err("bad mtu")
        .to_string();
        assert!(msg.contains("entry 0 (lo): field \"mtu\""), "{msg}");
        let msg = parse_links("h: ip -j link", br#"[{"ifname":"lo","mtu":1}]"#)
            .expect_err("no ifindex")
            .to_string();
        assert!(msg.contains("field \"ifindex\": is missing"), "{msg}");
        let msg = parse_links(
            "h",
            br#"[{"ifindex":1,"ifname":"v","mtu":1,"linkinfo":{"info_kind":"vxlan","info_data":{"local":"::1"}}}]"#,
        )
        .expect_err("v6 local")
        .to_string();
        assert!(msg.contains("field \"linkinfo.info_data.local\""), "{msg}");
        assert!(msg.ends_with("expected an IPv4 address"), "{msg}");
        // Other kinds' info_data is not read: ipip prints `"local": "any"`.
        parse_links(
            "h",
            br#"[{"ifindex":1,"ifname":"tunl0","mtu":1480,"linkinfo":{"info_kind":"ipip","info_data":{"local":"any"}}}]"#,
        )
        .expect("ipip");
        let msg = parse_links(
            "h",
            br#"[{"ifindex":1,"ifname":"v","mtu":1,"flags":["UP",3]}]"#,
        )
        .expect_err("number in flags")
        .to_string();
        assert!(msg.contains("entry 0 (v): field \"flags[1]\""), "{msg}");
        let msg = parse_interfaces(
            "h",
            br#"[{"ifindex":2,"ifname":"eth0","mtu":1500,"addr_info":[{},{"family":"inet","local":"10.0.0.1","prefixlen":33}]}]"#,
        )
        .expect_err("prefix too long")
        .to_string();
        assert!(
            msg.contains("field \"addr_info[1].prefixlen\": 33 is longer than 32"),
            "{msg}"
        );
        let msg = parse_routes("h", br#"[{"dst":"default","gateway":"zz"}]"#)
            .expect_err("bad gateway")
            .to_string();
        assert!(msg.contains("field \"gateway\""), "{msg}");
        assert!(msg.contains("\"zz\""), "{msg}");
        let msg = parse_neighbours("h", b"").expect_err("empty").to_string();
        assert!(msg.contains("empty output"), "{msg}");
        let msg = parse_neighbours("h", b"{}")
            .expect_err("object")
            .to_string();
        assert!(msg.contains("expected a JSON array"), "{msg}");
        let msg = parse_neighbours("h", b"[{\"dst\":")
            .expect_err("cut")
            .to_string();
        assert!(msg.contains("not valid JSON"), "{msg}");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let text = br#"[{"dst":"default","gateway":"10.0.0.1","dev":"eth0","flags":[],"future":{"x":[1,2]},"pref":"medium"}]"#;
        assert_eq!(parse_routes("x", text).expect("ok").len(), 1);
    }

    #[test]
    fn numeric_protocols_and_tables_and_a_next_hop_of_the_other_family() {
        let text = br#"[{"dst":"default","via":{"family":"inet6","host":"fe80::1"},"dev":"eth0","protocol":186,"table":254,"metric":5,"flags":null}]"#;
        let routes = parse_routes("x", text).expect("ok");
        assert_eq!(routes[0].protocol.as_deref(), Some("186"));
        assert_eq!(routes[0].table.as_deref(), Some("254"));
        assert_eq!(routes[0].gateway, Some(ip("fe80::1")));
        assert!(routes[0].flags.is_empty());
        let msg = parse_routes("x", br#"[{"dst":"default","protocol":true}]"#)
            .expect_err("a boolean protocol")
            .to_string();
        assert!(msg.contains("field \"protocol\""), "{msg}");
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("EE:ee:ee:ee:ee:0a"),
            Some([0xee, 0xee, 0xee, 0xee, 0xee, 0x0a])
        );
        assert_eq!(parse_mac("0.0.0.0"), None);
        assert_eq!(parse_mac("ee:ee:ee:ee:ee"), None);
        assert_eq!(parse_mac("ee:ee:ee:ee:ee:ee:ee"), None);
    }
}
