//! Checks on routes (`ip -j route`): a [`RouteSpec`] says which fields must hold and prints
//! itself the way `ip route` would; [`exactly`], [`only`] and [`some`] compare specs with the
//! routes a place has. Fields are compared, never lines: metric and protocol vary by version.

pub use super::value::RouteFields;
use super::{Check, Shown, Value};
use crate::calico::{IPIP_DEVICE, LINK_LOCAL_GATEWAY, VXLAN_DEVICE, VXLAN_V6_DEVICE};
use crate::facts::{Encapsulation, Facts, NodeFacts};
use crate::observe::Observed;
use crate::observe::ip::{Route, RouteDst, RouteType};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A destination as `ip route` prints it: `default`, a prefix, a host route without `/32`.
fn dst_name(dst: &RouteDst) -> String {
    match dst.net() {
        Some(n) if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
        _ => dst.to_string(),
    }
}

fn kind_name(kind: &RouteType) -> String {
    match kind {
        RouteType::Other(other) => other.clone(),
        known => format!("{known:?}").to_lowercase(),
    }
}

impl RouteFields {
    fn new(
        kind: &RouteType,
        dst: &RouteDst,
        via: Option<IpAddr>,
        dev: &Option<String>,
        scope: &Option<String>,
        onlink: bool,
    ) -> Self {
        RouteFields {
            kind: kind_name(kind),
            dst: dst_name(dst),
            via,
            dev: dev.clone(),
            scope: scope.clone(),
            onlink,
        }
    }
}

impl From<&Route> for RouteFields {
    fn from(r: &Route) -> RouteFields {
        RouteFields::new(&r.kind, &r.dst, r.gateway, &r.dev, &r.scope, r.onlink())
    }
}

/// The route a claim expects: which fields must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub kind: RouteType,
    pub dst: RouteDst,
    /// The gateway; `None`: the route has none.
    pub via: Option<IpAddr>,
    /// The device; `None`: any (a blackhole has none, an underlay may be unknown).
    pub dev: Option<String>,
    /// The scope; `None`: any.
    pub scope: Option<String>,
    /// The `onlink` flag is required; `false`: either way.
    pub onlink: bool,
}

impl RouteSpec {
    fn unicast(dst: RouteDst, via: Option<IpAddr>, dev: Option<String>) -> RouteSpec {
        RouteSpec {
            kind: RouteType::Unicast,
            dst,
            via,
            dev,
            scope: None,
            onlink: false,
        }
    }

    fn host(ip: Ipv4Addr) -> RouteDst {
        RouteDst::Net(IpNet::V4(Ipv4Net::from(ip)))
    }

    /// A pod's default route: `default via 169.254.1.1 dev eth0`.
    pub fn pod_default() -> RouteSpec {
        let gw = Some(IpAddr::V4(LINK_LOCAL_GATEWAY));
        RouteSpec::unicast(RouteDst::Default, gw, Some("eth0".into()))
    }

    /// A pod's route to its gateway: `169.254.1.1 dev eth0 scope link`.
    pub fn pod_gateway() -> RouteSpec {
        RouteSpec::to_pod(LINK_LOCAL_GATEWAY, "eth0")
    }

    /// A host route out of a device: `<ip>/32 dev <dev> scope link` (a node's route to a pod).
    pub fn to_pod(ip: Ipv4Addr, dev: &str) -> RouteSpec {
        RouteSpec {
            scope: Some("link".into()),
            ..RouteSpec::unicast(RouteSpec::host(ip), None, Some(dev.into()))
        }
    }

    /// A pod's IPv6 default route: `default via <host end's link-local address> dev eth0`.
    pub fn pod_default6(gateway: Ipv6Addr) -> RouteSpec {
        RouteSpec::unicast(RouteDst::Default, Some(gateway.into()), Some("eth0".into()))
    }

    /// A node's IPv6 route to a pod: `<ip>/128 dev <dev>` (IPv6 routes have no scope).
    pub fn to_pod6(ip: Ipv6Addr, dev: &str) -> RouteSpec {
        let dst = RouteDst::Net(IpNet::V6(Ipv6Net::from(ip)));
        RouteSpec::unicast(dst, None, Some(dev.into()))
    }

    /// `blackhole <block>` for an IPv6 block (the kernel shows it `dev lo`; any device).
    pub fn blackhole6(block: Ipv6Net) -> RouteSpec {
        RouteSpec {
            kind: RouteType::Blackhole,
            ..RouteSpec::unicast(RouteDst::Net(IpNet::V6(block)), None, None)
        }
    }

    /// `blackhole <block>`: a node's route for its own IPAM block.
    pub fn blackhole(block: Ipv4Net) -> RouteSpec {
        RouteSpec {
            kind: RouteType::Blackhole,
            ..RouteSpec::unicast(RouteDst::Net(IpNet::V4(block)), None, None)
        }
    }

    /// The route node `here` has for `block` of node `other` when the pool's encapsulation
    /// between them is `mode`: IPIP `via <node> dev tunl0 onlink`, VXLAN `via <tunnel address>
    /// dev vxlan.calico onlink`, none `via <node> dev <underlay>`. An IPv6 block the same way
    /// with the IPv6 addresses, over `vxlan-v6.calico` (Felix's routetable sets onlink on every
    /// VXLAN target, either family); Calico has no IPIP for IPv6. An error when the facts lack
    /// an address the route needs.
    pub fn remote_block(
        mode: Encapsulation,
        block: IpNet,
        here: &NodeFacts,
        other: &NodeFacts,
    ) -> Result<RouteSpec, String> {
        let dst = RouteDst::Net(block);
        let tunnel = |via: Option<IpAddr>, dev: &str, what: &str| {
            let via = via.ok_or_else(|| format!("{} has no {what} in the facts", other.name))?;
            Ok(RouteSpec {
                onlink: true,
                ..RouteSpec::unicast(dst, Some(via), Some(dev.into()))
            })
        };
        let v4 = |a: Option<Ipv4Addr>| a.map(IpAddr::from);
        let v6 = |a: Option<Ipv6Addr>| a.map(IpAddr::from);
        match (block, mode) {
            (IpNet::V4(_), Encapsulation::Ipip | Encapsulation::IpipCrossSubnet) => {
                tunnel(Some(other.address.into()), IPIP_DEVICE, "address")
            }
            (IpNet::V4(_), Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet) => tunnel(
                v4(other.vxlan_tunnel_address),
                VXLAN_DEVICE,
                "VXLAN tunnel address",
            ),
            (IpNet::V4(_), Encapsulation::None) => Ok(RouteSpec::unicast(
                dst,
                Some(other.address.into()),
                here.underlay.clone(),
            )),
            (IpNet::V6(_), Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet) => tunnel(
                v6(other.vxlan_v6_tunnel_address),
                VXLAN_V6_DEVICE,
                "IPv6 VXLAN tunnel address",
            ),
            (IpNet::V6(_), Encapsulation::None) => {
                let via = v6(other.ipv6_address)
                    .ok_or_else(|| format!("{} has no IPv6 address in the facts", other.name))?;
                Ok(RouteSpec::unicast(dst, Some(via), here.underlay.clone()))
            }
            (IpNet::V6(b), _) => Err(format!(
                "IPv6 block {b} is in a pool with {} encapsulation: Calico carries IPv6 over \
                 VXLAN or unencapsulated only",
                mode.as_str()
            )),
        }
    }

    /// The route `here` must have for `block` of node `other` (HOST-R3's shape, REC-3's), and
    /// the encapsulation between the two nodes it follows: the pool's, CrossSubnet decided by
    /// the nodes' IPv4 subnet for either family.
    pub fn remote_block_of(
        facts: &Facts,
        here: &NodeFacts,
        other: &NodeFacts,
        block: IpNet,
    ) -> Result<(RouteSpec, Encapsulation), String> {
        let encapsulation = facts
            .block_encapsulation(block)
            .ok_or_else(|| format!("no pool holds block {block} of {}", other.name))?;
        let mode = encapsulation.between(here.same_subnet(other));
        Ok((RouteSpec::remote_block(mode, block, here, other)?, mode))
    }

    /// True when `r` has every field this spec requires.
    pub fn matches(&self, r: &Route) -> bool {
        r.kind == self.kind
            && r.dst == self.dst
            && r.gateway == self.via
            && self.dev.as_deref().is_none_or(|d| r.via_dev(d))
            && self
                .scope
                .as_ref()
                .is_none_or(|s| r.scope.as_ref() == Some(s))
            && (!self.onlink || r.onlink())
    }

    /// The fields, as a report keeps them.
    pub fn fields(&self) -> RouteFields {
        let (kind, dst) = (&self.kind, &self.dst);
        RouteFields::new(kind, dst, self.via, &self.dev, &self.scope, self.onlink)
    }
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fields().fmt(f)
    }
}

fn observed(what: &str, routes: &[&Route]) -> Shown {
    let fields: Vec<RouteFields> = routes.iter().map(|r| RouteFields::from(*r)).collect();
    Shown::of(what, Value::Routes(fields))
}

/// `routes` are exactly `want`: as many routes as specs, each spec matching exactly one.
pub fn exactly(routes: &Observed<Vec<Route>>, want: &[RouteSpec]) -> Check {
    let what = format!("routes in {}", routes.place);
    let matching = |s: &RouteSpec| routes.value.iter().filter(|r| s.matches(r)).count();
    let passed = routes.value.len() == want.len() && want.iter().all(|s| matching(s) == 1);
    let shown: Vec<String> = want.iter().map(ToString::to_string).collect();
    let expected = Shown::text(
        format!("{what}: exactly {}: {}", want.len(), shown.join("; ")),
        Value::Routes(want.iter().map(RouteSpec::fields).collect()),
    );
    let all: Vec<RouteFields> = routes.value.iter().map(RouteFields::from).collect();
    let got = Value::Routes(all);
    let got = Shown::text(
        format!("{what}: {} route(s): {got}", routes.value.len()),
        got,
    );
    Check::new(what, passed, expected, got).judging_output(routes)
}

fn for_dst<'a>(routes: &'a Observed<Vec<Route>>, want: &RouteSpec) -> (String, Vec<&'a Route>) {
    let what = format!("routes to {} in {}", dst_name(&want.dst), routes.place);
    let found = routes.value.iter().filter(|r| r.dst == want.dst).collect();
    (what, found)
}

/// The only route to `want`'s destination is `want`.
pub fn only(routes: &Observed<Vec<Route>>, want: RouteSpec) -> Check {
    let (what, found) = for_dst(routes, &want);
    let passed = found.len() == 1 && found.iter().all(|r| want.matches(r));
    let expected = Shown::text(format!("{what}: only {want}"), Value::Route(want.fields()));
    Check::new(&what, passed, expected, observed(&what, &found)).judging_output(routes)
}

/// Among the routes to `want`'s destination is `want`.
pub fn some(routes: &Observed<Vec<Route>>, want: RouteSpec) -> Check {
    let (what, found) = for_dst(routes, &want);
    let passed = found.iter().any(|r| want.matches(r));
    let expected = Shown::of(&what, Value::Route(want.fields()));
    Check::new(&what, passed, expected, observed(&what, &found)).judging_output(routes)
}

/// The next hop of the default route in `routes` (IPv6): the check that there is one, via an
/// IPv6 address, and that address.
pub fn default_gateway6(routes: &Observed<Vec<Route>>) -> (Check, Option<Ipv6Addr>) {
    let (what, found) = for_dst(routes, &RouteSpec::pod_default6(Ipv6Addr::UNSPECIFIED));
    let gateway = found.iter().find_map(|r| match r.gateway {
        Some(IpAddr::V6(g)) => Some(g),
        _ => None,
    });
    let expected = Shown::text(
        format!("{what}: one default route, via an IPv6 gateway"),
        Value::Count(1),
    );
    let passed = found.len() == 1 && gateway.is_some();
    let check = Check::new(&what, passed, expected, observed(&what, &found));
    (check.judging_output(routes), gateway)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ip::parse_routes;

    fn routes(json: &str) -> Observed<Vec<Route>> {
        Observed {
            value: parse_routes("test", json.as_bytes()).expect("parses"),
            raw: json.as_bytes().to_vec(),
            command: "ip -j -4 route show table main".into(),
            place: "pod default/test-tools".into(),
        }
    }

    const POD: &str = r#"[{"dst":"default","gateway":"169.254.1.1","dev":"eth0","flags":[]},
        {"dst":"169.254.1.1","dev":"eth0","scope":"link","flags":[]}]"#;

    #[test]
    fn a_pods_two_routes_are_exactly_calicos() {
        let want = [RouteSpec::pod_default(), RouteSpec::pod_gateway()];
        let c = exactly(&routes(POD), &want);
        assert!(c.passed, "{c:?}");
        assert_eq!(
            c.expected.text,
            "routes in pod default/test-tools: exactly 2: default via 169.254.1.1 dev eth0; \
             169.254.1.1 dev eth0 scope link"
        );
        let extra = POD.replace(
            "[{",
            r#"[{"dst":"10.96.0.0/12","gateway":"169.254.1.1","dev":"eth0","flags":[]},{"#,
        );
        assert!(!exactly(&routes(&extra), &want).passed);
    }

    #[test]
    fn a_spec_checks_only_the_fields_it_names() {
        let r =
            routes(r#"[{"type":"blackhole","dst":"192.168.1.0/26","protocol":"bird","flags":[]}]"#);
        let block = "192.168.1.0/26".parse().expect("a prefix");
        assert!(some(&r, RouteSpec::blackhole(block)).passed);
        let other = "192.168.2.0/26".parse().expect("a prefix");
        let c = some(&r, RouteSpec::blackhole(other));
        assert!(!c.passed);
        assert_eq!(
            c.observed.text,
            "routes to 192.168.2.0/26 in pod default/test-tools: none"
        );
        assert_eq!(
            serde_json::to_string(&c.expected.value).expect("serializes"),
            r#"{"route":{"type":"blackhole","dst":"192.168.2.0/26","onlink":false}}"#
        );
    }
}
