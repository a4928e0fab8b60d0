//! Checks of REC-1..3: what the datastore says (the pods Calico networks, the block
//! affinities) against what each node has (its links and routes, one `ip -j link` and one
//! `ip -j route` per node, and one `ip -j -6 route` on a dual-stack target). IPv4 and IPv6 are
//! judged alike: a pod's /32 or /128, a block of either family. Each check lists every disagreement it finds, each naming the
//! pod, link, route or block at fault ([`Disagreement`]); it passes when there is none.

use super::route::{RouteFields, RouteSpec};
use super::{Check, Disagreement, Shown, Value};
use crate::calico::{HOST_END_MAC, IPIP_DEVICE, VXLAN_DEVICE, VXLAN_V6_DEVICE, host_end_name};

/// Calico's tunnel devices: a host route on one of them leads to a tunnel endpoint, not a pod.
const TUNNEL_DEVICES: [&str; 3] = [VXLAN_DEVICE, VXLAN_V6_DEVICE, IPIP_DEVICE];
use crate::facts::{Facts, NodeFacts, Workload};
use crate::observe::Observed;
use crate::observe::ip::{Link, Route, RouteType};
use crate::observe::packet::mac_str;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// What one node has, observed once: its links, its IPv4 routes and, on a dual-stack
/// target, its IPv6 routes.
#[derive(Debug, Clone)]
pub struct NodeState {
    pub node: String,
    pub links: Observed<Vec<Link>>,
    pub routes: Observed<Vec<Route>>,
    pub routes6: Option<Observed<Vec<Route>>>,
}

impl NodeState {
    /// Every route observed, IPv4 then IPv6.
    fn all_routes(&self) -> impl Iterator<Item = &Route> {
        let v6 = self.routes6.iter().flat_map(|o| o.value.iter());
        self.routes.value.iter().chain(v6)
    }
}

/// What IPAM says one node's block routes must be.
#[derive(Debug, Clone, Default)]
pub struct BlockRoutes {
    /// Blocks affine to this node (IPv4 or IPv6): a blackhole each, and no other route.
    pub own: Vec<IpNet>,
    /// Blocks affine to other nodes, with the owner: exactly one route each, this one
    /// (HOST-R3's shape for the pool's encapsulation between the two nodes).
    pub remote: Vec<(IpNet, String, RouteSpec)>,
}

impl BlockRoutes {
    /// What IPAM says node `here`'s block routes must be: its own blocks (both families with
    /// `ipv6`) blackholed, every other node's routed as HOST-R3 says.
    pub fn of(facts: &Facts, here: &NodeFacts, ipv6: bool) -> Result<BlockRoutes, String> {
        let mut routes = BlockRoutes {
            own: here.blocks_of(ipv6),
            remote: Vec::new(),
        };
        for other in facts.nodes.iter().filter(|n| n.name != here.name) {
            for block in other.blocks_of(ipv6) {
                let (spec, _) = RouteSpec::remote_block_of(facts, here, other, block)?;
                routes.remote.push((block, other.name.clone(), spec));
            }
        }
        Ok(routes)
    }
}

/// `<podIP>/32 dev <cali> scope link`, as a message shows a route.
fn shown(r: &Route) -> String {
    RouteFields::from(r).to_string()
}

/// A destination inside one of `pools` (and the prefix it is), of either family.
fn in_pools(r: &Route, pools: &[IpNet]) -> Option<IpNet> {
    r.dst.net().filter(|n| pools.iter().any(|p| p.contains(n)))
}

/// A /32 or a /128: one address.
fn is_host(n: &IpNet) -> bool {
    n.prefix_len() == n.max_prefix_len()
}

fn disagreement(node: &str, kind: &str, name: impl Into<String>, problem: String) -> Disagreement {
    Disagreement {
        node: node.into(),
        kind: kind.into(),
        name: name.into(),
        problem,
    }
}

/// The check: `what`, the expectation, and every disagreement found on `states`.
fn verdict(
    what: String,
    expected: String,
    found: Vec<Disagreement>,
    states: &[NodeState],
) -> Check {
    let n = found.len();
    let value = Value::Disagreements(found);
    let observed = match n {
        0 => format!("{what}: no disagreement"),
        _ => format!("{what}: {n} disagreement(s): {value}"),
    };
    let expected = Shown::text(
        format!("{what}: {expected}; no disagreement"),
        Value::Disagreements(Vec::new()),
    );
    let mut check = Check::new(&what, n == 0, expected, Shown::text(observed, value));
    for s in states {
        check = check.judging_output(&s.links).judging_output(&s.routes);
        if let Some(r6) = &s.routes6 {
            check = check.judging_output(r6);
        }
    }
    check
}

fn nodes_of(states: &[NodeState]) -> String {
    let names: Vec<&str> = states.iter().map(|s| s.node.as_str()).collect();
    names.join(", ")
}

/// What is wrong with `w`'s dataplane on `s` (nothing when it is wired).
fn pod_problems(s: &NodeState, w: &Workload) -> Vec<Disagreement> {
    let cali = host_end_name(&w.namespace, &w.name);
    let mut problems = Vec::new();
    let mut add = |problem: String| problems.push(disagreement(&s.node, "pod", w.id(), problem));
    match s.links.value.iter().find(|l| l.ifname == cali) {
        None => add(format!(
            "no link {cali} (cali + sha1(\"{}\")[:11])",
            w.id().replace('/', ".")
        )),
        Some(l) => {
            if !l.is_up() {
                add(format!(
                    "link {cali} is not UP (flags [{}])",
                    l.flags.join(",")
                ));
            }
            let mac = l.address.as_deref().map(str::to_lowercase);
            if mac.as_deref() != Some(mac_str(&HOST_END_MAC).as_str()) {
                let mac = mac.unwrap_or_else(|| "none".into());
                add(format!("link {cali} has MAC {mac}, not ee:ee:ee:ee:ee:ee"));
            }
        }
    }
    let mut wants = vec![RouteSpec::to_pod(w.ip, &cali)];
    // Its IPv6 /128, where the node's IPv6 routes were read (a dual-stack target).
    if let (Some(ip6), Some(_)) = (w.ipv6, &s.routes6) {
        wants.push(RouteSpec::to_pod6(ip6, &cali));
    }
    for want in wants {
        let to_ip: Vec<&Route> = s.all_routes().filter(|r| r.dst == want.dst).collect();
        match to_ip.as_slice() {
            [] => add(format!("no route {want}")),
            [r] if want.matches(r) => {}
            found => {
                let found: Vec<String> = found.iter().map(|r| shown(r)).collect();
                add(format!("route(s) {}, not only {want}", found.join("; ")))
            }
        }
    }
    problems
}

/// REC-1: every workload the datastore puts on a node of `states` has its `cali*` link (named
/// by VETH-2's rule, UP, MAC ee:ee:ee:ee:ee:ee) and `<podIP>/32 dev <that cali> scope link`,
/// and on a dual-stack node its `<podIPv6>/128 dev <that cali>`.
pub fn every_pod_wired(states: &[NodeState], workloads: &[Workload]) -> Check {
    let mut found = Vec::new();
    let mut count = 0;
    for s in states {
        for w in workloads.iter().filter(|w| w.node == s.node) {
            count += 1;
            found.extend(pod_problems(s, w));
        }
    }
    let what = format!("the datastore's pods on {}", nodes_of(states));
    let v6 = match states.iter().any(|s| s.routes6.is_some()) {
        true => " (and <podIPv6>/128 dev <that cali>)",
        false => "",
    };
    let expected = format!(
        "each of the {count} has its cali link (cali + sha1(\"<namespace>.<pod>\")[:11], UP, \
         ee:ee:ee:ee:ee:ee) and <podIP>/32 dev <that cali> scope link{v6}"
    );
    verdict(what, expected, found, states)
}

/// REC-2: on each node of `states`, every `cali*` link belongs to a workload on that node, and
/// every /32 (or IPv6 /128) route inside `pools` without a gateway (a route to a local pod)
/// leads to a workload's IP on that workload's own link. (Host routes via another node —
/// borrowed addresses — and host routes on a tunnel device — tunnel endpoints, such as the
/// kernel's route for the node's own /128 on `vxlan-v6.calico` — are no local pod's and are
/// not judged here.)
pub fn no_orphans(states: &[NodeState], workloads: &[Workload], pools: &[IpNet]) -> Check {
    let mut found = Vec::new();
    for s in states {
        let here: BTreeMap<String, &Workload> = workloads
            .iter()
            .filter(|w| w.node == s.node)
            .map(|w| (host_end_name(&w.namespace, &w.name), w))
            .collect();
        for l in s
            .links
            .value
            .iter()
            .filter(|l| l.ifname.starts_with("cali"))
        {
            if !here.contains_key(&l.ifname) {
                let problem = format!("no pod on {} has it ({} pods there)", s.node, here.len());
                found.push(disagreement(&s.node, "link", &l.ifname, problem));
            }
        }
        for r in s.all_routes() {
            let Some(net) = in_pools(r, pools).filter(is_host) else {
                continue;
            };
            // Via another node, or to a tunnel endpoint (the kernel's route for the node's own
            // /128 on vxlan-v6.calico, Felix's `<ip> dev vxlan.calico` for a remote VTEP): no
            // pod's.
            if r.gateway.is_some() || TUNNEL_DEVICES.iter().any(|d| r.via_dev(d)) {
                continue;
            }
            let ip = net.addr();
            let has =
                |w: &Workload| IpAddr::from(w.ip) == ip || w.ipv6.map(IpAddr::from) == Some(ip);
            let owner = here.iter().find(|(_, w)| has(w));
            let problem = match owner {
                None => format!("no live pod on {} has {ip}", s.node),
                Some((cali, _)) if r.kind == RouteType::Unicast && r.via_dev(cali) => continue,
                Some((cali, w)) => format!("{ip} is pod {}'s, whose link is {cali}", w.id()),
            };
            found.push(disagreement(&s.node, "route", shown(r), problem));
        }
    }
    let what = format!("cali links and /32 pod routes on {}", nodes_of(states));
    let expected = "each cali link is a pod's on that node, each /32 (or /128) route in a \
                    pool leads to a pod's IP on that pod's own cali"
        .to_string();
    verdict(what, expected, found, states)
}

/// What is wrong with node `s`'s routes to its own blocks and other nodes' (`ipam`).
fn block_problems(s: &NodeState, ipam: &BlockRoutes) -> Vec<Disagreement> {
    let mut found = Vec::new();
    let routes_to = |b: &IpNet| -> Vec<&Route> {
        let dst = crate::observe::ip::RouteDst::Net(*b);
        s.all_routes().filter(|r| r.dst == dst).collect()
    };
    let list = |rs: &[&Route]| rs.iter().map(|r| shown(r)).collect::<Vec<_>>().join("; ");
    for b in &ipam.own {
        let rs = routes_to(b);
        let (holes, others): (Vec<&Route>, Vec<&Route>) =
            rs.iter().partition(|r| r.kind == RouteType::Blackhole);
        let mut add = |p: String| found.push(disagreement(&s.node, "block", b.to_string(), p));
        if holes.is_empty() {
            add(format!("affine to {}, but no blackhole {b}", s.node));
        }
        if !others.is_empty() {
            add(format!(
                "affine to {}, yet routed: {}",
                s.node,
                list(&others)
            ));
        }
    }
    for (b, owner, spec) in &ipam.remote {
        let rs = routes_to(b);
        let problem = match rs.as_slice() {
            [] => format!("affine to {owner}, but no route (expected {spec})"),
            [r] if spec.matches(r) => continue,
            _ => format!("affine to {owner}: {}, expected only {spec}", list(&rs)),
        };
        found.push(disagreement(&s.node, "block", b.to_string(), problem));
    }
    found
}

/// REC-3: on each node of `states`, a blackhole for each block affine to it and no other route
/// to it; for each block affine to another node exactly one route, its [`BlockRoutes`] spec;
/// and no route inside `pools` (other than /32 host routes) for a block affine to no node.
pub fn routes_match_ipam(
    states: &[NodeState],
    ipam: &BTreeMap<String, BlockRoutes>,
    pools: &[IpNet],
) -> Check {
    let mut found = Vec::new();
    for s in states {
        let empty = BlockRoutes::default();
        let mine = ipam.get(&s.node).unwrap_or(&empty);
        found.extend(block_problems(s, mine));
        let known: BTreeSet<IpNet> = mine
            .own
            .iter()
            .copied()
            .chain(mine.remote.iter().map(|(b, ..)| *b))
            .collect();
        for r in s.all_routes() {
            let Some(net) = in_pools(r, pools).filter(|n| !is_host(n)) else {
                continue;
            };
            if !known.contains(&net) {
                let problem = format!("affine to no node, yet routed: {}", shown(r));
                found.push(disagreement(&s.node, "block", net.to_string(), problem));
            }
        }
    }
    let what = format!("block routes on {}", nodes_of(states));
    let blocks: usize = ipam.values().map(|b| b.own.len() + b.remote.len()).sum();
    let expected = format!(
        "for the {blocks} (node, block) pairs of IPAM: a blackhole for each own block, exactly \
         one route of HOST-R3's shape for each other node's; no route for a block affine to no node"
    );
    verdict(what, expected, found, states)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ip::{parse_links, parse_routes};

    fn observed<T>(value: T, raw: &str, command: &str) -> Observed<T> {
        Observed {
            value,
            raw: raw.as_bytes().to_vec(),
            command: command.into(),
            place: "host k8s-worker-1".into(),
        }
    }

    /// The recorded node (`fixtures/recorded/node/`): test-tools (192.168.1.1) and
    /// c2c-network-demo (192.168.1.2), as the recorded pod objects say.
    fn recorded_node() -> NodeState {
        let links = crate::fixtures::read_text("recorded/node/ip-d-j-link.json");
        let routes = crate::fixtures::read_text("recorded/node/ip-j-route.json");
        NodeState {
            node: "k8s-worker-1".into(),
            links: observed(
                parse_links("node", links.as_bytes()).unwrap(),
                &links,
                "ip -d -j link",
            ),
            routes: observed(
                parse_routes("node", routes.as_bytes()).unwrap(),
                &routes,
                "ip -j -4 route",
            ),
            routes6: None,
        }
    }

    fn pod(name: &str, ip: &str) -> Workload {
        Workload {
            namespace: "default".into(),
            name: name.into(),
            node: "k8s-worker-1".into(),
            ip: ip.parse().unwrap(),
            ipv6: None,
        }
    }

    fn pools() -> Vec<IpNet> {
        vec!["192.168.0.0/16".parse().unwrap()]
    }

    #[test]
    fn the_recorded_node_agrees_with_its_two_pods() {
        let s = [recorded_node()];
        let pods = [
            pod("c2c-network-demo", "192.168.1.2"),
            pod("test-tools", "192.168.1.1"),
        ];
        let c = every_pod_wired(&s, &pods);
        assert!(c.passed, "{c:?}");
        let c = no_orphans(&s, &pods, &pools());
        assert!(c.passed, "{c:?}");
        assert_eq!(c.evidence.len(), 2);
    }

    #[test]
    fn a_pod_the_node_does_not_know_and_a_link_no_pod_owns_are_named() {
        let s = [recorded_node()];
        let pods = [
            pod("c2c-network-demo", "192.168.1.2"),
            pod("coredns-1", "192.168.1.20"),
        ];
        let c = every_pod_wired(&s, &pods);
        assert!(!c.passed);
        let cali = host_end_name("default", "coredns-1");
        assert!(
            c.observed.text.contains(&format!(
                "pod default/coredns-1 on k8s-worker-1: no link {cali}"
            )),
            "{}",
            c.observed.text
        );
        assert!(
            c.observed.text.contains("no route 192.168.1.20 dev"),
            "{}",
            c.observed.text
        );
        let c = no_orphans(&s, &pods, &pools());
        assert!(!c.passed);
        // test-tools is gone from the datastore: its link and its route are orphans.
        assert!(
            c.observed
                .text
                .contains("link calied9d42cb137 on k8s-worker-1: no pod on k8s-worker-1"),
            "{}",
            c.observed.text
        );
        assert!(
            c.observed.text.contains(
                "route 192.168.1.1 dev calied9d42cb137 scope link on k8s-worker-1: no live pod"
            ),
            "{}",
            c.observed.text
        );
        let Some(Value::Disagreements(d)) = &c.observed.value else {
            panic!("{c:?}")
        };
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn blocks_are_judged_against_ipam() {
        let s = [recorded_node()];
        let own: IpNet = "192.168.1.0/26".parse().unwrap();
        let mut ipam = BTreeMap::new();
        ipam.insert(
            "k8s-worker-1".to_string(),
            BlockRoutes {
                own: vec![own],
                remote: Vec::new(),
            },
        );
        let c = routes_match_ipam(&s, &ipam, &pools());
        assert!(c.passed, "{c:?}");
        // Another node's block with no route, and the own block moved to another node.
        let other: IpNet = "192.168.2.0/26".parse().unwrap();
        let spec = RouteSpec::to_pod(std::net::Ipv4Addr::new(10, 0, 0, 1), "ens192");
        ipam.insert(
            "k8s-worker-1".to_string(),
            BlockRoutes {
                own: Vec::new(),
                remote: vec![(other, "k8s-worker-2".into(), spec)],
            },
        );
        let c = routes_match_ipam(&s, &ipam, &pools());
        assert!(!c.passed);
        assert!(
            c.observed.text.contains(
                "block 192.168.2.0/26 on k8s-worker-1: affine to k8s-worker-2, but no route"
            ),
            "{}",
            c.observed.text
        );
        assert!(
            c.observed.text.contains(
                "block 192.168.1.0/26 on k8s-worker-1: affine to no node, yet routed: blackhole"
            ),
            "{}",
            c.observed.text
        );
    }
}
