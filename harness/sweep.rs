//! The cluster sweep (`cargo run -- sweep`): every node of the target, not only the two the
//! article's pods land on, each observed once and judged against the datastore and the
//! article's wiring.
//!
//! One node costs a fixed number of commands whatever its pod count: `ip -d -j addr`, `ip -j
//! -4 route` (and `ip -j -6 route` on a dual-stack target) at once, then one `grep` of every
//! host end's sysctls. From that one snapshot ([`Snapshot`]) the node is judged ([`judge`]):
//! REC-1..3, HOST-R2, HOST-R3 and MTU-1 for the node, and VETH-2/3/4 and HOST-R1 for every pod
//! the datastore puts there (every namespace, not only the article's). Nodes are observed
//! [`Options::parallel`] at a time; each result is handed to the caller as it arrives.

use crate::calico::{HOST_END_MAC, HOST_END_SYSCTLS, host_end_name};
use crate::expect::reconcile::{self, BlockRoutes, NodeState};
use crate::expect::route::{self, RouteSpec};
use crate::expect::{Check, Value, eq, link, mtu, sysctls};
use crate::facts::{Facts, NodeFacts, Workload};
use crate::observe::ip::{Interface, Link, Route};
use crate::observe::sysctl::{Sysctls, host_end_paths};
use crate::observe::{self, Observed};
use crate::place::Place;
use crate::target::Target;
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How the sweep runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// At most this many nodes observed at once (`--parallel`; default 16).
    pub parallel: usize,
    /// Each node's pod pings a pod on each of the next this many nodes of the ring (by name;
    /// `--pairs`, default 1): every node is covered as source and as destination.
    pub pairs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallel: 16,
            pairs: 1,
        }
    }
}

/// The ring of `nodes` (sorted by name): for each node, the next `pairs` nodes after it.
pub fn ring(nodes: &[String], pairs: usize) -> BTreeMap<String, Vec<String>> {
    let n = nodes.len();
    let pairs = pairs.min(n.saturating_sub(1));
    (0..n)
        .map(|i| {
            let peers = (1..=pairs).map(|k| nodes[(i + k) % n].clone()).collect();
            (nodes[i].clone(), peers)
        })
        .collect()
}

/// A pod of `node` the target can place (to ping from), with its workload. On a cluster only
/// the run's own (its namespace): never a user's pod, not even one named like the run's.
fn pod_on(target: &Target, node: &str) -> Option<(Place, Workload)> {
    let run_namespace = (target.topology().is_none())
        .then(|| target.facts.pods.first().map(|p| p.namespace.as_str()))
        .flatten();
    (target.facts.workloads_on(node))
        .filter(|w| run_namespace.is_none_or(|ns| w.namespace == ns))
        .find_map(|w| target.pod(&w.name).ok().map(|p| (p, w.clone())))
}

/// XN-1 across the ring: a node's pod (`from`, where the suite places it; `src`, its
/// workload) pings the pod of each of its ring `peers` (the peer node, its pod; 3 echoes each);
/// the replies come back routed twice (TTL 62). The ring holds only nodes with a pod the
/// suite can place, so each side has one.
async fn reachability(
    (from, src): &(Place, Workload),
    peers: impl IntoIterator<Item = (&String, &Workload)>,
) -> Vec<SweepCheck> {
    let mut out = Vec::new();
    let mut mtu2 = Vec::new();
    for (peer, dst) in peers {
        let replies =
            (from.ping(dst.ip.into(), 3, Duration::from_secs(5)).await).unwrap_or_default();
        mtu2.extend(full_size(from, src, dst, peer).await);
        let check = crate::expect::ttl(dst.ip, &replies, 62)
            .because(format!("{} on {peer}, routed by both nodes", dst.id()));
        out.push(SweepCheck {
            claim: "XN-1",
            pod: Some(src.id()),
            check,
        });
    }
    out.extend(mtu2.into_iter().map(|check| SweepCheck {
        claim: "MTU-2",
        pod: Some(src.id()),
        check,
    }));
    out
}

/// MTU-2 on a ring pair: from `src`'s pod to `dst` on `peer` with DF, the full-size echo (its
/// `eth0` MTU less 28) is answered and one byte more is refused at the source or answered with
/// fragmentation needed — never lost. One `ip -j link` in the pod reads its MTU.
async fn full_size(from: &Place, src: &Workload, dst: &Workload, peer: &str) -> Vec<Check> {
    let eth0 = match observe::interfaces(from).await {
        Ok(ifs) => ifs.value.into_iter().find(|i| i.link.ifname == "eth0"),
        Err(e) => {
            let got = Value::Name(format!("not read: {e}"));
            return vec![eq(
                format!("{}'s eth0 MTU", src.id()),
                Value::Name("read".into()),
                got,
            )];
        }
    };
    let Some(eth0) = eth0 else {
        let got = Value::Name("none".into());
        return vec![eq(
            format!("{}'s eth0", src.id()),
            Value::Name("eth0".into()),
            got,
        )];
    };
    let full = eth0.link.mtu.saturating_sub(28);
    let deadline = Duration::from_secs(5);
    let (a, b) = tokio::join!(
        from.ping_df(dst.ip, full, deadline),
        from.ping_df(dst.ip, full + 1, deadline)
    );
    let to = format!("from {} to {} on {peer}", src.id(), dst.id());
    let judged = |echo: crate::Result<crate::df_echo::DfEcho>,
                  what: &str,
                  want: &[&str],
                  said: &str| match echo {
        Ok(e) => mtu::echo(&format!("{what} {to}"), &e, want, said),
        Err(e) => eq(
            format!("{what} {to}"),
            Value::Name("sent".into()),
            Value::Name(e.to_string()),
        ),
    };
    let said = format!(
        "answered ({}'s eth0 MTU {} less 28)",
        src.id(),
        eth0.link.mtu
    );
    vec![
        judged(a, "the full-size echo", &["answered"], &said),
        judged(
            b,
            "one byte more",
            &["refused_at_source", "fragmentation_needed"],
            "refused at the source (EMSGSIZE) or answered with ICMP fragmentation needed, never silently lost",
        ),
    ]
}

/// One node as observed once.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub node: String,
    pub interfaces: Observed<Vec<Interface>>,
    pub routes: Observed<Vec<Route>>,
    /// On a dual-stack target.
    pub routes6: Option<Observed<Vec<Route>>>,
    /// Every `cali*` link's host-end sysctls.
    pub sysctls: Observed<Sysctls>,
}

impl Snapshot {
    /// The links of the snapshot, as REC-1..3 read them (the same output).
    fn node_state(&self) -> NodeState {
        let links: Vec<Link> = self
            .interfaces
            .value
            .iter()
            .map(|i| i.link.clone())
            .collect();
        NodeState {
            node: self.node.clone(),
            links: Observed {
                value: links,
                raw: self.interfaces.raw.clone(),
                command: self.interfaces.command.clone(),
                place: self.interfaces.place.clone(),
            },
            routes: self.routes.clone(),
            routes6: self.routes6.clone(),
        }
    }

    fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.value.iter().find(|i| i.link.ifname == name)
    }
}

/// One judged expectation: the claim it belongs to, the pod (for per-pod claims), the check.
#[derive(Debug, Clone, Serialize)]
pub struct SweepCheck {
    pub claim: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    pub check: Check,
}

/// What became of one node.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub node: String,
    /// The pods the datastore puts on it (every namespace).
    pub pods: usize,
    /// The MTU of its Calico interfaces, when they share one.
    pub mtu: Option<u32>,
    /// Every check made on it.
    pub checks: Vec<SweepCheck>,
    /// Why it could not be observed (a command failed, the node is unreachable).
    pub error: Option<String>,
    /// Why it was left out (NotReady, cordoned): reported, not failed.
    pub skipped: Option<String>,
    /// What was not checked on it, and why (XN-1 from a node with no pod of the run).
    pub notes: Vec<String>,
    pub duration: Duration,
}

/// A node as the reports show it: its verdict, how many checks it made, every failed one.
#[derive(Debug, Serialize)]
pub struct NodeRow<'a> {
    pub node: &'a str,
    pub status: NodeStatus,
    pub pods: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    pub checks: usize,
    pub failures: Vec<&'a SweepCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: &'a Vec<String>,
    pub seconds: f64,
}

/// A node's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// It could not be observed.
    Error,
    /// At least one check failed.
    Failed,
    /// Left out: NotReady or cordoned (not a failure).
    Skipped,
    Passed,
}

impl NodeResult {
    pub fn status(&self) -> NodeStatus {
        if self.skipped.is_some() {
            return NodeStatus::Skipped;
        }
        match (&self.error, self.failed().next()) {
            (Some(_), _) => NodeStatus::Error,
            (None, Some(_)) => NodeStatus::Failed,
            (None, None) => NodeStatus::Passed,
        }
    }

    /// The checks that failed.
    pub fn failed(&self) -> impl Iterator<Item = &SweepCheck> {
        self.checks.iter().filter(|c| !c.check.passed)
    }

    /// The node as the reports show it.
    pub fn row(&self) -> NodeRow<'_> {
        NodeRow {
            node: &self.node,
            status: self.status(),
            pods: self.pods,
            mtu: self.mtu,
            checks: self.checks.len(),
            failures: self.failed().collect(),
            error: self.error.as_deref(),
            skipped: self.skipped.as_deref(),
            notes: &self.notes,
            seconds: (self.duration.as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }

    /// `passed`, `failed: REC-2, VETH-3 (default/bench-4)`, `not observed: <why>`.
    pub fn verdict(&self) -> String {
        self.row().verdict()
    }
}

/// Observes `node` once: its addresses and links and its routes at once, then every host end's
/// sysctls in one read.
pub async fn observe_node(target: &Target, node: &str) -> crate::Result<Snapshot> {
    let host = target.host(node)?;
    let v6 = async {
        match target.facts.dual_stack() {
            true => observe::routes(&host, false).await.map(Some),
            false => Ok(None),
        }
    };
    let (interfaces, routes, routes6) =
        futures::try_join!(observe::interfaces(&host), observe::routes(&host, true), v6)?;
    let paths: Vec<String> = (interfaces.value.iter())
        .filter(|i| i.link.ifname.starts_with("cali"))
        .flat_map(|i| host_end_paths(&i.link.ifname))
        .collect();
    let sysctls = observe::sysctls(&host, &paths).await?;
    Ok(Snapshot {
        node: node.to_string(),
        interfaces,
        routes,
        routes6,
        sysctls,
    })
}

/// Judges one node's snapshot against `facts` (which must list every workload).
pub fn judge(facts: &Facts, snap: &Snapshot) -> Result<Vec<SweepCheck>, String> {
    let all = facts.workloads.as_deref().ok_or_else(|| {
        "the target does not list every workload on its nodes: nothing to sweep against".to_string()
    })?;
    let here = facts
        .node(&snap.node)
        .ok_or_else(|| format!("no node {} in the facts", snap.node))?;
    let mine: Vec<Workload> = all
        .iter()
        .filter(|w| w.node == snap.node)
        .cloned()
        .collect();
    let state = [snap.node_state()];
    let pools = facts.pool_cidrs();
    let node_check = |claim, check| SweepCheck {
        claim,
        pod: None,
        check,
    };
    let mut out = vec![
        node_check("REC-1", reconcile::every_pod_wired(&state, &mine)),
        node_check("REC-2", reconcile::no_orphans(&state, all, &pools)),
    ];
    let (ipam, host_r3) = block_routes(facts, here, snap)?;
    let ipam = BTreeMap::from([(snap.node.clone(), ipam)]);
    out.push(node_check(
        "REC-3",
        reconcile::routes_match_ipam(&state, &ipam, &pools),
    ));
    for block in &here.blocks {
        let check = route::some(&snap.routes, RouteSpec::blackhole(*block));
        out.push(node_check("HOST-R2", check));
    }
    out.extend(host_r3.into_iter().map(|c| node_check("HOST-R3", c)));
    let (calico, why) = calico_mtu(facts, here, snap)?;
    out.extend(mtu_checks(facts, snap, calico, &why).map(|c| node_check("MTU-1", c)));
    for w in &mine {
        out.extend(pod_checks(snap, w, calico));
    }
    Ok(out)
}

/// REC-3's expectation for the node ([`BlockRoutes::of`]), and HOST-R3's checks: one per
/// other node's IPv4 block.
fn block_routes(
    facts: &Facts,
    here: &NodeFacts,
    snap: &Snapshot,
) -> Result<(BlockRoutes, Vec<Check>), String> {
    let ipam = BlockRoutes::of(facts, here, snap.routes6.is_some())?;
    let mut host_r3 = Vec::new();
    for (block, owner, spec) in ipam.remote.iter().filter(|(b, ..)| b.addr().is_ipv4()) {
        let other = facts
            .node(owner)
            .ok_or_else(|| format!("no node {owner} in the facts"))?;
        let mode = (facts.block_encapsulation(*block))
            .map(|e| e.between(here.same_subnet(other)).as_str())
            .unwrap_or("?");
        let check = route::some(&snap.routes, spec.clone());
        host_r3.push(check.because(format!("{mode} encapsulation")));
    }
    Ok((ipam, host_r3))
}

/// The node's Calico MTU and why: the configured one, or its underlay's less the largest
/// overhead of the pools' encapsulations (Felix's `determinePodMTU`: the smallest MTU of the
/// enabled encapsulations; an IPv6 VXLAN pool costs 70 bytes).
fn calico_mtu(facts: &Facts, here: &NodeFacts, snap: &Snapshot) -> Result<(u32, String), String> {
    if let Some(mtu) = facts.configured_mtu {
        return Ok((mtu, format!("the configured Calico MTU {mtu}")));
    }
    let underlay = (snap.interfaces.value.iter())
        .find(|i| i.holds(here.address.into()))
        .ok_or_else(|| {
            format!(
                "no interface on {} holds the node address {}",
                snap.interfaces.place, here.address
            )
        })?;
    let v4 = facts.pools.iter().map(|p| p.encapsulation.overhead());
    let v6 = facts.ipv6_pools.iter().map(|p| p.encapsulation.overhead6());
    let overhead = v4.chain(v6).max().unwrap_or(0);
    let why = format!(
        "the underlay {}'s MTU {} less {overhead} bytes of the pools' encapsulation",
        underlay.link.ifname, underlay.link.mtu
    );
    Ok((underlay.link.mtu.saturating_sub(overhead), why))
}

/// MTU-1 for the node: every `cali*` link and each tunnel device the pools call for at the
/// Calico MTU, a tunnel device whose own MTU differs (dual-stack VXLAN: `vxlan.calico`) at
/// its own (see MTU-1 in the README).
fn mtu_checks<'a>(
    facts: &'a Facts,
    snap: &'a Snapshot,
    calico: u32,
    why: &str,
) -> impl Iterator<Item = Check> + 'a {
    let mut got: BTreeMap<String, Option<u32>> = (snap.interfaces.value.iter())
        .filter(|i| i.link.ifname.starts_with("cali"))
        .map(|i| (i.link.ifname.clone(), Some(i.link.mtu)))
        .collect();
    let underlay = calico + max_overhead(facts);
    let mut own = Vec::new();
    for (tunnel, overhead) in facts.tunnel_devices() {
        let found = snap.interface(tunnel).map(|i| i.link.mtu);
        let mtu = underlay.saturating_sub(overhead);
        match facts.configured_mtu.is_some() || mtu == calico {
            true => {
                got.insert(tunnel.to_string(), found);
            }
            false => {
                let why = format!("{tunnel}'s own MTU: the underlay's {underlay} less {overhead}");
                let one = BTreeMap::from([(tunnel.to_string(), found)]);
                own.push(mtu::same_mtu(&snap.node, mtu, &one).because(why));
            }
        }
    }
    // A node with no pod and no tunnel device has no Calico interface: nothing to compare (the
    // sweep notes it). One the datastore puts pods on without their links fails REC-1.
    let main = (!got.is_empty()).then(|| mtu::same_mtu(&snap.node, calico, &got).because(why));
    main.into_iter().chain(own)
}

fn max_overhead(facts: &Facts) -> u32 {
    if facts.configured_mtu.is_some() {
        return 0;
    }
    let v4 = facts.pools.iter().map(|p| p.encapsulation.overhead());
    let v6 = facts.ipv6_pools.iter().map(|p| p.encapsulation.overhead6());
    v4.chain(v6).max().unwrap_or(0)
}

/// VETH-2/3/4 and HOST-R1 of workload `w` on the snapshot's node: its host end by VETH-2's
/// name, UP with ee:ee:ee:ee:ee:ee, no IPv4 address, the Calico MTU, the CNI plugin's
/// sysctls, and the node's only route to its IP.
fn pod_checks(snap: &Snapshot, w: &Workload, calico: u32) -> Vec<SweepCheck> {
    let cali = host_end_name(&w.namespace, &w.name);
    let pod = Some(w.id());
    let check = |claim, check| SweepCheck {
        claim,
        pod: pod.clone(),
        check,
    };
    let found = snap.interface(&cali);
    let got = Value::Name(found.map_or_else(|| "none".into(), |i| i.link.ifname.clone()));
    let name = eq(
        format!("the host end {cali} on {}", snap.node),
        Value::Name(cali.clone()),
        got,
    )
    .because(format!("cali + sha1(\"{}.{}\")[:11]", w.namespace, w.name));
    let mut out = vec![check("VETH-2", name)];
    if let Some(i) = found {
        out.push(check("VETH-3", link::mac(&i.link, HOST_END_MAC)));
        out.push(check("VETH-3", link::up(&i.link)));
        out.push(check("VETH-3", link::ipv4(i, None)));
        out.push(check(
            "VETH-3",
            link::mtu(&i.link, calico).because("the Calico MTU"),
        ));
        out.push(check(
            "VETH-4",
            sysctls(&snap.sysctls, &cali, &HOST_END_SYSCTLS),
        ));
    }
    let to_pod = RouteSpec::to_pod(w.ip, &cali);
    out.push(check("HOST-R1", route::only(&snap.routes, to_pod)));
    out
}

/// Sweeps every node of `target`, at most `opts.parallel` at once, calling `each` with every
/// node's result as it arrives (in arrival order); returns them all, by node name.
pub async fn sweep(
    target: &Target,
    opts: &Options,
    mut each: impl FnMut(&NodeResult),
) -> Vec<NodeResult> {
    let skipped = target.skipped_nodes();
    let mut names: Vec<String> = (target.facts.nodes.iter())
        .map(|n| n.name.clone())
        .filter(|n| !skipped.iter().any(|(s, _)| s == n))
        .collect();
    names.sort();
    // XN-1 runs between the nodes with a pod the suite can enter (on a cluster: its own).
    let placed: BTreeMap<String, (Place, Workload)> = (names.iter())
        .filter_map(|n| pod_on(target, n).map(|p| (n.clone(), p)))
        .collect();
    let pinging: Vec<String> = placed.keys().cloned().collect();
    let ring = ring(&pinging, opts.pairs);
    let (ring, placed) = (&ring, &placed);
    let mut out = Vec::new();
    for (node, why) in skipped {
        let r = NodeResult {
            node: node.clone(),
            pods: target.facts.workloads_on(node).count(),
            mtu: None,
            checks: Vec::new(),
            error: None,
            skipped: Some(why.clone()),
            notes: Vec::new(),
            duration: Duration::ZERO,
        };
        each(&r);
        out.push(r);
    }
    let one = |node: String| async move {
        let started = Instant::now();
        let mut judged = match observe_node(target, &node).await {
            Ok(snap) => judge(&target.facts, &snap),
            Err(e) => Err(e.to_string()),
        };
        if let (Ok(checks), Some(peers), Some(from)) =
            (&mut judged, ring.get(&node), placed.get(&node))
        {
            let peers = (peers.iter()).filter_map(|p| placed.get(p).map(|(_, w)| (p, w)));
            checks.extend(reachability(from, peers).await);
        }
        // A cluster's node whose pinger did not start: a pod Calico could not network there is
        // the node's failure, not a note.
        let pinger = target.pinger_failure(&node);
        if let (Ok(checks), Some(why), None) = (&mut judged, pinger, ring.get(&node)) {
            let check = eq(
                format!("the sweep's pinger on {node}, to ping from and to"),
                Value::Name("Ready".into()),
                Value::Name(format!("did not start: {why}")),
            );
            checks.push(SweepCheck {
                claim: "XN-1",
                pod: Some(crate::calico::pinger_name(&node)),
                check,
            });
        }
        let pods = target.facts.workloads_on(&node).count();
        let (checks, error) = match judged {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mtu = checks.iter().find(|c| c.claim == "MTU-1").and_then(|c| {
            let Some(Value::Mtus(m)) = &c.check.observed.value else {
                return None;
            };
            let distinct: std::collections::BTreeSet<Option<u32>> = m.values().copied().collect();
            match distinct.into_iter().collect::<Vec<_>>().as_slice() {
                [one] => *one,
                _ => None,
            }
        });
        let mut notes = match ring.get(&node) {
            Some(peers) if !peers.is_empty() => Vec::new(),
            Some(_) => vec!["XN-1 not checked: no other node has a pod the suite can enter".into()],
            None if pinger.is_some() => Vec::new(),
            None => vec![format!(
                "XN-1 not checked from or to {node}: no pod the suite can enter runs there"
            )],
        };
        if error.is_none() && !checks.iter().any(|c| c.claim == "MTU-1") {
            notes.push(format!(
                "MTU-1 not checked: no Calico interface on {node} (no pod, no tunnel device)"
            ));
        }
        NodeResult {
            node,
            pods,
            mtu,
            checks,
            error,
            skipped: None,
            notes,
            duration: started.elapsed(),
        }
    };
    let mut stream =
        futures::stream::iter(names.into_iter().map(one)).buffer_unordered(opts.parallel.max(1));
    while let Some(r) = stream.next().await {
        each(&r);
        out.push(r);
    }
    out.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

/// `sweep.json`'s schema identifier.
pub const SCHEMA: &str = "calico-conformance/sweep/v1";

/// A sweep's report: every node swept so far, failing nodes first.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub schema: &'static str,
    pub target: &'a str,
    /// Nodes of the target; `nodes` may hold fewer when the sweep was stopped (`partial`).
    pub nodes_total: usize,
    pub partial: bool,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    /// NotReady or cordoned nodes: reported, not swept, not failed.
    pub skipped: usize,
    pub nodes: Vec<NodeRow<'a>>,
}

impl<'a> Report<'a> {
    pub fn new(target: &'a str, total: usize, results: &'a [NodeResult]) -> Report<'a> {
        let mut nodes: Vec<&NodeResult> = results.iter().collect();
        nodes.sort_by(|a, b| (a.status(), &a.node).cmp(&(b.status(), &b.node)));
        let count = |s| results.iter().filter(|r| r.status() == s).count();
        Report {
            schema: SCHEMA,
            target,
            nodes_total: total,
            partial: results.len() < total,
            passed: count(NodeStatus::Passed),
            failed: count(NodeStatus::Failed),
            errors: count(NodeStatus::Error),
            skipped: count(NodeStatus::Skipped),
            nodes: nodes.into_iter().map(NodeResult::row).collect(),
        }
    }

    /// `sweep.md`: the totals, the failing nodes first with what failed, then one row per node.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut md = format!("# Sweep of {}\n\n", self.target);
        let _ = writeln!(
            md,
            "**{} of {} nodes swept: {} passed, {} failed, {} could not be observed, {} left out \
             (NotReady or cordoned)**{}\n",
            self.nodes.len() - self.skipped,
            self.nodes_total,
            self.passed,
            self.failed,
            self.errors,
            self.skipped,
            if self.partial {
                " (stopped early: partial)"
            } else {
                ""
            }
        );
        let bad: Vec<&NodeRow> = (self.nodes.iter())
            .filter(|r| matches!(r.status, NodeStatus::Failed | NodeStatus::Error))
            .collect();
        if !bad.is_empty() {
            md.push_str("## Failing nodes\n\n");
            for r in &bad {
                let _ = writeln!(md, "- **{}**: {}", r.node, r.verdict());
                for c in &r.failures {
                    let pod = c
                        .pod
                        .as_deref()
                        .map(|p| format!(" pod {p}:"))
                        .unwrap_or_default();
                    let _ = writeln!(md, "  - {}{pod} {}", c.claim, c.check.observed.text);
                }
            }
            md.push('\n');
        }
        let noted: Vec<&NodeRow> = self.nodes.iter().filter(|r| !r.notes.is_empty()).collect();
        if !noted.is_empty() {
            md.push_str("## Not checked\n\n");
            for r in noted {
                let _ = writeln!(md, "- **{}**: {}", r.node, r.notes.join("; "));
            }
            md.push('\n');
        }
        md.push_str("## Nodes\n\n| node | pods | failed checks | MTU | status |\n");
        md.push_str("|---|---:|---:|---:|---|\n");
        for r in &self.nodes {
            let mtu = r.mtu.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {mtu} | {} |",
                crate::report_md::cell(r.node),
                r.pods,
                r.failures.len(),
                crate::report_md::cell(&r.verdict())
            );
        }
        md
    }
}

impl NodeRow<'_> {
    /// `passed`, `failed: REC-2, VETH-3 (default/bench-4)`, `not observed: <why>`.
    fn verdict(&self) -> String {
        match self.status {
            NodeStatus::Passed => "passed".into(),
            NodeStatus::Skipped => format!("not swept: {}", self.skipped.unwrap_or("")),
            NodeStatus::Error => format!("not observed: {}", self.error.unwrap_or("")),
            NodeStatus::Failed => {
                let mut seen: Vec<String> = Vec::new();
                for c in &self.failures {
                    let id = match &c.pod {
                        Some(p) => format!("{} ({p})", c.claim),
                        None => c.claim.to_string(),
                    };
                    if !seen.contains(&id) {
                        seen.push(id);
                    }
                }
                format!("failed: {}", seen.join(", "))
            }
        }
    }
}

/// One line for a node's result as it arrives: `[3/100] k8s-worker-7 failed REC-2 (1 check);
/// 2 failing so far; 1.4 s`.
pub fn progress_line(
    r: &NodeResult,
    done: usize,
    total: usize,
    failing: usize,
    elapsed: Duration,
) -> String {
    let verdict = match r.status() {
        NodeStatus::Passed => format!("passed ({} pods, {} checks)", r.pods, r.checks.len()),
        _ => r.verdict(),
    };
    format!(
        "sweep [{done}/{total}] {} {verdict}; {failing} failing so far; {:.1} s",
        r.node,
        elapsed.as_secs_f64()
    )
}

/// A node's progress line: on a terminal one line rewritten in place, where a node that did not
/// pass stays as a line of its own; elsewhere (CI logs) every line as it comes.
fn show_progress(tty: bool, line: &str, passed: bool) {
    use std::io::Write;
    match (tty, passed) {
        (false, _) => println!("{line}"),
        (true, true) => print!("\r\x1b[K{line}"),
        (true, false) => print!("\r\x1b[K{line}\n"),
    }
    let _ = std::io::stdout().flush();
}

/// Writes `sweep.json` and `sweep.md` of `target`'s results into `dir` (each whole); returns
/// the paths.
pub fn write_report(
    dir: &std::path::Path,
    target: &str,
    total: usize,
    results: &[NodeResult],
) -> crate::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let file_error = |problem: String| crate::Error::File {
        path: dir.to_path_buf(),
        problem,
    };
    std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
    let report = Report::new(target, total, results);
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| file_error(format!("the sweep report: {e}")))?;
    let (j, m) = (dir.join("sweep.json"), dir.join("sweep.md"));
    crate::run::write_whole(&j, &(json + "\n"))?;
    crate::run::write_whole(&m, &report.markdown())?;
    Ok((j, m))
}

/// Each node's row of a sweep, one JSON object per line, appended as the node arrives.
pub const NODES_FILE: &str = "nodes.jsonl";

/// Sweeps `target` as [`sweep`] does, printing each node's progress line and appending its row
/// to `nodes.jsonl` in `dir` as it arrives, until every node is done or `stop` completes
/// (Ctrl-C); then writes `sweep.json` and `sweep.md` of what it found (marked partial when
/// stopped). Returns the results and whether it was stopped.
pub async fn run(
    target: &Target,
    opts: &Options,
    dir: &std::path::Path,
    stop: impl std::future::Future<Output = ()>,
) -> crate::Result<(Vec<NodeResult>, bool)> {
    let skipped = target.skipped_nodes();
    let total = target.facts.nodes.len()
        + (skipped.iter())
            .filter(|(s, _)| target.facts.node(s).is_none())
            .count();
    let started = Instant::now();
    let found = std::sync::Mutex::new(Vec::<NodeResult>::new());
    let mut write_error = None;
    let file_error = |e: std::io::Error| crate::Error::File {
        path: dir.join(NODES_FILE),
        problem: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(file_error)?;
    let mut lines = std::fs::File::create(dir.join(NODES_FILE)).map_err(file_error)?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let work = sweep(target, opts, |r| {
        use std::io::Write;
        let mut all = found.lock().unwrap_or_else(|e| e.into_inner());
        all.push(r.clone());
        let failing = (all.iter())
            .filter(|r| matches!(r.status(), NodeStatus::Failed | NodeStatus::Error))
            .count();
        let line = progress_line(r, all.len(), total, failing, started.elapsed());
        show_progress(tty, &line, matches!(r.status(), NodeStatus::Passed));
        let row = serde_json::to_string(&r.row()).unwrap_or_default();
        if let Err(e) = writeln!(lines, "{row}") {
            write_error.get_or_insert(file_error(e));
        }
    });
    let stopped = tokio::select! {
        _ = work => false,
        () = stop => true,
    };
    if tty {
        println!();
    }
    let mut all = found.into_inner().unwrap_or_else(|e| e.into_inner());
    all.sort_by(|a, b| a.node.cmp(&b.node));
    if let Some(e) = write_error {
        return Err(e);
    }
    write_report(dir, &target.name, total, &all)?;
    Ok((all, stopped))
}
