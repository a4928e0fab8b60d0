//! `ip -j` output (iproute2 JSON) as typed values.
//!
//! The parsers read fields, never whole lines: iproute2 omits `type` for unicast routes, prints
//! host routes without a prefix length (`"192.168.1.1"` is a /32), prints `"dst":"default"`,
//! leaves `protocol`, `metric` and `scope` out when they are the kernel's defaults, and marks
//! boolean attributes such as a neighbour's `router` by a key whose value is `null`. Unknown
//! extra fields are ignored, so newer iproute2 versions still parse.
//!
//! Every error names its source (a place and a command, or a file), the entry and the field:
//! `host k8s-worker-1: ip -j route: entry 3: field "dst": ...`.

use crate::error::{Error, Result};
use crate::observe::packet::Mac;
use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Map, Value};
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
    entries(source_name, bytes)?
        .iter()
        .map(|(i, obj)| link_from(&Entry::new(source_name, *i, obj)))
        .collect()
}

/// Parses `ip -j addr` / `ip -d -j addr` output.
pub fn parse_interfaces(source_name: &str, bytes: &[u8]) -> Result<Vec<Interface>> {
    entries(source_name, bytes)?
        .iter()
        .map(|(i, obj)| {
            let e = Entry::new(source_name, *i, obj);
            let link = link_from(&e)?;
            let addrs = match obj.get("addr_info") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(list)) => list
                    .iter()
                    .enumerate()
                    .filter_map(|(j, v)| address_from(&e, j, v).transpose())
                    .collect::<Result<Vec<_>>>()?,
                Some(other) => {
                    return Err(e.err("addr_info", format!("expected a list, found {other}")));
                }
            };
            Ok(Interface { link, addrs })
        })
        .collect()
}

/// Parses `ip -j route` output (either family).
pub fn parse_routes(source_name: &str, bytes: &[u8]) -> Result<Vec<Route>> {
    entries(source_name, bytes)?
        .iter()
        .map(|(i, obj)| route_from(&Entry::new(source_name, *i, obj)))
        .collect()
}

/// Parses `ip -j neigh` output (either family, also `ip -j neigh show proxy`).
pub fn parse_neighbours(source_name: &str, bytes: &[u8]) -> Result<Vec<Neighbour>> {
    entries(source_name, bytes)?
        .iter()
        .map(|(i, obj)| {
            let e = Entry::new(source_name, *i, obj);
            Ok(Neighbour {
                dst: e.req_ip("dst")?,
                dev: e.opt_str("dev")?,
                lladdr: e.opt_str("lladdr")?,
                state: e.str_list("state")?,
                router: obj.contains_key("router"),
                proxy: obj.contains_key("proxy"),
            })
        })
        .collect()
}

/// The top-level array's objects, with their index. iproute2 prints `{}` for objects it filtered
/// out (`ip -4 -j addr` on a link without IPv4); those are skipped.
fn entries(source_name: &str, bytes: &[u8]) -> Result<Vec<(usize, Map<String, Value>)>> {
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
            Value::Object(o) => out.push((i, o)),
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

/// One JSON object of the output, with what is needed to name it in errors.
struct Entry<'a> {
    source: &'a str,
    index: usize,
    obj: &'a Map<String, Value>,
    /// What the entry is called in messages: ` (eth0)` for a link, empty otherwise.
    name: String,
    /// The path of `obj` inside the entry (`linkinfo.info_data.`), empty at the top.
    prefix: String,
}

impl<'a> Entry<'a> {
    fn new(source: &'a str, index: usize, obj: &'a Map<String, Value>) -> Self {
        let name = match obj.get("ifname").and_then(Value::as_str) {
            Some(n) => format!(" ({n})"),
            None => String::new(),
        };
        Entry {
            source,
            index,
            obj,
            name,
            prefix: String::new(),
        }
    }

    /// The object under `field`, whose fields are then named `field.x` in errors.
    fn nested(&self, field: &str, obj: &'a Map<String, Value>) -> Entry<'a> {
        Entry {
            source: self.source,
            index: self.index,
            obj,
            name: self.name.clone(),
            prefix: format!("{}{field}.", self.prefix),
        }
    }

    fn err(&self, field: &str, problem: impl std::fmt::Display) -> Error {
        Error::parse(
            self.source,
            format!(
                "entry {}{}: field \"{}{field}\": {problem}",
                self.index, self.name, self.prefix
            ),
        )
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn opt_str(&self, field: &str) -> Result<Option<String>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(field, format!("expected a string, found {other}"))),
        }
    }

    fn req_str(&self, field: &str) -> Result<String> {
        self.opt_str(field)?
            .ok_or_else(|| self.err(field, "is missing"))
    }

    fn opt_uint(&self, field: &str, max: u64) -> Result<Option<u64>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(self.err(
                    field,
                    format!("expected a whole number up to {max}, found {v}"),
                )),
            },
        }
    }

    fn opt_u32(&self, field: &str) -> Result<Option<u32>> {
        Ok(self
            .opt_uint(field, u64::from(u32::MAX))?
            .and_then(|n| u32::try_from(n).ok()))
    }

    fn req_u32(&self, field: &str) -> Result<u32> {
        self.opt_u32(field)?
            .ok_or_else(|| self.err(field, "is missing"))
    }

    fn opt_i32(&self, field: &str) -> Result<Option<i32>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => match v.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(n) => Ok(Some(n)),
                None => Err(self.err(field, format!("expected a whole number, found {v}"))),
            },
        }
    }

    fn str_list(&self, field: &str) -> Result<Vec<String>> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.err(
                        field,
                        format!("expected a list of strings, found {other} in it"),
                    )),
                })
                .collect(),
            Some(other) => Err(self.err(field, format!("expected a list, found {other}"))),
        }
    }

    fn opt_ip(&self, field: &str) -> Result<Option<IpAddr>> {
        match self.opt_str(field)? {
            None => Ok(None),
            Some(s) => s
                .parse::<IpAddr>()
                .map(Some)
                .map_err(|_| self.err(field, format!("\"{s}\" is not an IP address"))),
        }
    }

    fn req_ip(&self, field: &str) -> Result<IpAddr> {
        self.opt_ip(field)?
            .ok_or_else(|| self.err(field, "is missing"))
    }
}

fn link_from(e: &Entry<'_>) -> Result<Link> {
    let (kind, vxlan) = match e.get("linkinfo") {
        None => (None, None),
        Some(Value::Object(info)) => {
            let info = e.nested("linkinfo", info);
            let kind = info.opt_str("info_kind")?;
            let vxlan = match (kind.as_deref(), info.get("info_data")) {
                (Some("vxlan"), Some(Value::Object(data))) => {
                    Some(vxlan_from(&info.nested("info_data", data))?)
                }
                _ => None,
            };
            (kind, vxlan)
        }
        Some(other) => {
            return Err(e.err("linkinfo", format!("expected an object, found {other}")));
        }
    };
    Ok(Link {
        ifindex: e.req_u32("ifindex")?,
        ifname: e.req_str("ifname")?,
        link_index: e.opt_u32("link_index")?,
        flags: e.str_list("flags")?,
        mtu: e.req_u32("mtu")?,
        operstate: e.opt_str("operstate")?,
        link_type: e.opt_str("link_type")?,
        address: e.opt_str("address")?,
        link_netnsid: e.opt_i32("link_netnsid")?,
        kind,
        vxlan,
    })
}

fn vxlan_from(d: &Entry<'_>) -> Result<VxlanInfo> {
    let local = match d.opt_ip("local")? {
        None => None,
        Some(IpAddr::V4(a)) => Some(a),
        Some(IpAddr::V6(a)) => {
            return Err(d.err("local", format!("{a} is not an IPv4 address")));
        }
    };
    Ok(VxlanInfo {
        id: d.opt_u32("id")?,
        port: d
            .opt_uint("port", u64::from(u16::MAX))?
            .and_then(|p| u16::try_from(p).ok()),
        local,
        dev: d.opt_str("link")?,
    })
}

fn address_from(e: &Entry<'_>, j: usize, v: &Value) -> Result<Option<Address>> {
    let field = |name: &str| format!("addr_info[{j}].{name}");
    let Value::Object(obj) = v else {
        return Err(e.err(
            &format!("addr_info[{j}]"),
            format!("expected an object, found {}", kind_of(v)),
        ));
    };
    if obj.is_empty() {
        return Ok(None);
    }
    let text = |name: &str| -> Result<Option<String>> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(e.err(&field(name), format!("expected a string, found {other}"))),
        }
    };
    let family = match text("family")?.as_deref() {
        Some("inet") => Family::Inet,
        Some("inet6") => Family::Inet6,
        // Other families (mpls, ...) carry no IP address: not what the suite observes.
        Some(_) => return Ok(None),
        None => return Err(e.err(&field("family"), "is missing")),
    };
    let local_text = text("local")?.ok_or_else(|| e.err(&field("local"), "is missing"))?;
    let local: IpAddr = local_text.parse().map_err(|_| {
        e.err(
            &field("local"),
            format!("\"{local_text}\" is not an IP address"),
        )
    })?;
    let max = if local.is_ipv4() { 32 } else { 128 };
    let prefixlen = match obj.get("prefixlen").and_then(Value::as_u64) {
        Some(n) if n <= max => n as u8,
        Some(n) => {
            return Err(e.err(
                &field("prefixlen"),
                format!("{n} is longer than {max} for {local}"),
            ));
        }
        None => return Err(e.err(&field("prefixlen"), "is missing or not a number")),
    };
    Ok(Some(Address {
        family,
        local,
        prefixlen,
        scope: text("scope")?.unwrap_or_else(|| "global".to_string()),
        label: text("label")?,
    }))
}

fn route_from(e: &Entry<'_>) -> Result<Route> {
    let dst_text = e.req_str("dst")?;
    let dst = parse_dst(&dst_text).map_err(|p| e.err("dst", p))?;
    let mut gateway = e.opt_ip("gateway")?;
    if gateway.is_none()
        && let Some(Value::Object(via)) = e.get("via")
    {
        gateway = e.nested("via", via).opt_ip("host")?;
    }
    Ok(Route {
        kind: e
            .opt_str("type")?
            .map_or(RouteType::Unicast, |t| RouteType::from_ip(&t)),
        dst,
        gateway,
        dev: e.opt_str("dev")?,
        protocol: match e.get("protocol") {
            // Unnamed protocols are numbers in some iproute2 versions.
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => e.opt_str("protocol")?,
        },
        scope: e.opt_str("scope")?,
        prefsrc: e.opt_ip("prefsrc")?,
        metric: e.opt_u32("metric")?,
        flags: e.str_list("flags")?,
        table: match e.get("table") {
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => e.opt_str("table")?,
        },
    })
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
