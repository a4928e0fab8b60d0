//! `report.md`: a run's report for people, rendered from its [`Report`] alone (a pure
//! function; [`crate::report_files`] writes it beside `report.json`). Per target: the facts, the
//! **observed path** of the article's pod pair on one node (`test-tools` ↔ `c2c-network-demo`)
//! and of the cross-node pair (`test-tools` ↔ `test-tools-remote`) as a Mermaid diagram and as a
//! plain table, and every claim case by ID with its status and observed value.
//!
//! The path is drawn only from what the cases recorded as observed: a value no case observed
//! is shown as "not observed", a pod the target does not run is shown absent with its reason,
//! and an edge whose claim failed is drawn crossed and labelled with the claim's ID. Names in
//! the diagram come from clusters, so every label is escaped ([`mermaid_text`]); node IDs are
//! generated, never taken from a name.

use crate::expect::{Check, Value};
use crate::facts::{Facts, NodeFacts};
use crate::report::{Report, TargetReport};
use crate::results::{CaseResult, Status};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The article's pods, in the order the path draws them: the client, the server on its node,
/// and the client on another node.
const CLIENT: &str = "test-tools";
const SERVER: &str = "c2c-network-demo";
const REMOTE: &str = "test-tools-remote";
const PODS: [&str; 3] = [CLIENT, SERVER, REMOTE];

/// The longest observed text a table cell shows; the rest is in `report.json`.
const CELL_MAX: usize = 160;

/// `report.md` for `report`.
pub fn render(report: &Report) -> String {
    let mut md = String::new();
    let count = |s: Status| report.cases.iter().filter(|c| c.status == s).count();
    let _ = writeln!(md, "# calico-conformance report `{}`\n", report.run_id);
    let _ = writeln!(
        md,
        "Suite {}, started {}, ended {}: **{} cases, {} passed, {} failed, {} not applicable**.\n",
        report.suite_version,
        report.started,
        report.ended,
        report.cases.len(),
        count(Status::Passed),
        count(Status::Failed),
        count(Status::NotApplicable),
    );
    for target in &report.targets {
        let cases: Vec<&CaseResult> = report
            .cases
            .iter()
            .filter(|c| c.target == target.name)
            .collect();
        target_section(&mut md, target, &cases);
    }
    md
}

fn target_section(md: &mut String, target: &TargetReport, cases: &[&CaseResult]) {
    let _ = writeln!(md, "## Target `{}`\n", target.name);
    facts_table(md, &target.facts);
    let path = Path::of(&target.facts, cases);
    let _ = writeln!(
        md,
        "### Observed path\n\nDrawn from the values the claim cases observed; a crossed red edge \
         is a failed claim (its ID on the edge), a dashed box a pod that is absent or a value no \
         case observed.\n"
    );
    md.push_str("```mermaid\n");
    md.push_str(&path.mermaid());
    md.push_str("```\n\n");
    path.table(md);
    claims_table(md, cases);
}

fn facts_table(md: &mut String, f: &Facts) {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "not known".into());
    let mut rows: Vec<(String, String)> = vec![
        ("target".into(), f.target.clone()),
        ("Calico".into(), or(&f.calico_version)),
        ("Kubernetes".into(), or(&f.kubernetes_version)),
        ("install".into(), or(&f.install)),
    ];
    for p in &f.pools {
        let (cidr, size) = (p.cidr, p.block_size);
        let enc = p.encapsulation.as_str();
        rows.push((format!("pool {cidr}"), format!("blockSize {size}, {enc}")));
    }
    for n in &f.nodes {
        rows.push((format!("node {}", n.name), node_fact(n)));
    }
    for p in &f.pods {
        let where_ = format!("{} on {}", p.ip, p.node);
        rows.push((format!("pod {}/{}", p.namespace, p.name), where_));
    }
    for (pod, why) in &f.absent_pods {
        rows.push((format!("pod {pod}"), format!("absent: {why}")));
    }
    md.push_str("### Facts\n\n| fact | value |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(md, "| {} | {} |", cell(&k), cell(&v));
    }
    md.push('\n');
}

fn node_fact(n: &NodeFacts) -> String {
    let blocks: Vec<String> = n.blocks.iter().map(ToString::to_string).collect();
    let mut s = format!(
        "{} on {}, blocks {}",
        n.address,
        n.underlay.as_deref().unwrap_or("an unknown underlay"),
        if blocks.is_empty() {
            "none".into()
        } else {
            blocks.join(", ")
        }
    );
    if let Some(a) = n.vxlan_tunnel_address {
        let _ = write!(s, ", VXLAN tunnel address {a}");
    }
    if let Some(a) = n.ipip_tunnel_address {
        let _ = write!(s, ", IPIP tunnel address {a}");
    }
    s
}

fn claims_table(md: &mut String, cases: &[&CaseResult]) {
    let mut sorted: Vec<&&CaseResult> = cases.iter().collect();
    sorted.sort_by(|a, b| (&a.claim, &a.pod).cmp(&(&b.claim, &b.pod)));
    md.push_str("### Claims\n\n| claim | pod | status | observed |\n|---|---|---|---|\n");
    for c in sorted {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            cell(&c.claim),
            cell(c.pod.as_deref().unwrap_or("-")),
            status_word(c.status),
            cell(&observed_summary(c))
        );
    }
    md.push('\n');
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "**FAILED**",
        Status::NotApplicable => "not applicable",
    }
}

/// What a case observed, in one line: the failed check's observed and expected sides, the
/// reason a case could not be observed or does not apply, or the last check's observed side.
pub fn observed_summary(c: &CaseResult) -> String {
    match (c.status, c.failed_check(), c.checks.last(), &c.reason) {
        (Status::Failed, Some(k), _, _) => {
            format!("{} (expected {})", k.observed.text, k.expected.text)
        }
        (Status::Failed | Status::NotApplicable, None, _, Some(r)) => r.clone(),
        (_, _, Some(k), _) => k.observed.text.clone(),
        _ => "no check made".into(),
    }
}

/// A Markdown table cell holding `s` as code: one line, at most [`CELL_MAX`] characters, `|`
/// escaped (GitHub's tables need it even in code), backticks made quotes; empty for "".
/// Inside code, `<p>` and `*` stay text, and the plain text reads as it will render.
pub fn cell(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let one_line = one_line.trim();
    if one_line.is_empty() {
        return String::new();
    }
    let short: String = if one_line.chars().count() > CELL_MAX {
        one_line.chars().take(CELL_MAX).chain(['…']).collect()
    } else {
        one_line.to_string()
    };
    format!("`{}`", short.replace('|', "\\|"))
}

/// Text made safe inside a quoted Mermaid label: quotes, `#`, `;`, `|`, backticks, angle
/// brackets and `&` as Mermaid's entity codes, control characters dropped. What a cluster names
/// can then neither end the label, nor the statement, nor the Markdown fence around it.
pub fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '|' => out.push_str("#124;"),
            '`' => out.push_str("#96;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '{' => out.push_str("#123;"),
            '}' => out.push_str("#125;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Lines joined into one Mermaid label, each escaped.
fn label(lines: &[String]) -> String {
    let escaped: Vec<String> = lines.iter().map(|l| mermaid_text(l)).collect();
    escaped.join("<br/>")
}

/// Where on the path a failed claim is drawn.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Spot {
    /// The pod's `eth0` ↔ its host end.
    Veth(String),
    /// The host end ↔ the node's routes.
    HostRoute(String),
    /// The node's routes (every node drawn).
    Routes,
    /// Between the two pods of one node.
    SameNode,
    /// Between the nodes.
    CrossNode,
    /// The IPv6 path between the pods (IP6-6), drawn beside the IPv4 one.
    Ipv6Path,
    /// Nowhere on the path: listed below it.
    Elsewhere,
}

/// The spot of a failed `claim` (of `pod`). Claims not known here are drawn on their pod's
/// veth pair when they have a pod, else listed below the diagram.
fn spot(claim: &str, pod: Option<&str>) -> Spot {
    let family = claim.split('-').next().unwrap_or(claim);
    match (claim, family, pod) {
        ("HOST-R1" | "IP6-5", _, Some(p)) => Spot::HostRoute(p.to_string()),
        ("IP6-6", _, _) => Spot::Ipv6Path,
        ("HOST-R3" | "MTU-2" | "MTU-3", _, _) | (_, "XN", _) => Spot::CrossNode,
        ("HOST-R2" | "MTU-1", _, None) | (_, "REC", None) => Spot::Routes,
        ("MTU-4", _, None) | (_, "P2P", None) => Spot::SameNode,
        (_, "C2C", None) => Spot::Veth(SERVER.to_string()),
        (_, _, Some(p)) => Spot::Veth(p.to_string()),
        _ => Spot::Elsewhere,
    }
}

/// What the cases observed of one pod's end of the path.
#[derive(Debug, Default)]
struct PodEnd {
    name: String,
    node: Option<String>,
    absent: Option<String>,
    ip: Option<String>,
    mac: Option<String>,
    mtu: Option<u32>,
    ifindex: Option<u32>,
    cali: Option<String>,
    cali_ifindex: Option<String>,
    cali_mac: Option<String>,
    cali_mtu: Option<u32>,
    proxy_arp: Option<String>,
    host_route: Option<String>,
    /// Dual stack only: what IP6-1..3 and IP6-5 observed, drawn beside the IPv4 values.
    ipv6: Option<Ipv6End>,
}

/// The IPv6 half of one pod's end of the path, as the IP6 claims observed it.
#[derive(Debug, Default)]
struct Ipv6End {
    ip: Option<String>,
    gateway: Option<String>,
    proxy_ndp: Option<String>,
    host_route: Option<String>,
    blackhole: Option<String>,
}

/// What the cases observed of one node's routes.
#[derive(Debug, Default)]
struct NodeRoutes {
    name: String,
    address: String,
    pod_routes: Vec<String>,
    blackholes: Vec<String>,
    remote: Vec<String>,
    /// Dual stack only: the pods' /128 routes and the IPv6 blackholes IP6-5 saw.
    ipv6: Option<(Vec<String>, Vec<String>)>,
}

/// The observed path of one target.
#[derive(Debug, Default)]
struct Path {
    pods: Vec<PodEnd>,
    nodes: Vec<NodeRoutes>,
    /// The leg between the nodes: how it was seen to be encapsulated, its TTL.
    leg: Vec<String>,
    same_ttl: Option<String>,
    /// Dual stack only: the IPv6 path between the pods (IP6-6's hop limits).
    leg6: Vec<String>,
    /// Failed claims by where they are drawn.
    failed: Vec<(Spot, String)>,
}

/// The first observed value of `claim`'s case (of `pod`) that `pick` takes.
fn observed<'a, T>(
    cases: &[&'a CaseResult],
    claim: &str,
    pod: Option<&str>,
    pick: impl Fn(&'a Check, &'a Value) -> Option<T>,
) -> Option<T> {
    cases
        .iter()
        .filter(|c| c.claim == claim && c.pod.as_deref() == pod)
        .flat_map(|c| c.checks.iter())
        .find_map(|k| k.observed.value.as_ref().and_then(|v| pick(k, v)))
}

fn pod_end(name: &str, facts: &Facts, cases: &[&CaseResult]) -> PodEnd {
    let mut end = PodEnd {
        name: name.to_string(),
        node: facts.pod(name).map(|p| p.node.clone()),
        absent: facts.absent_pods.get(name).cloned(),
        ..PodEnd::default()
    };
    if end.absent.is_some() || end.node.is_none() {
        end.absent
            .get_or_insert_with(|| "not in this target".into());
        return end;
    }
    let p = Some(name);
    end.ip = observed(cases, "POD-I2", p, |_, v| match v {
        Value::Addresses(a) => a.first().map(|s| first_word(s)),
        _ => None,
    });
    end.mtu = observed(cases, "POD-I3", p, |_, v| match v {
        Value::Mtu(m) => Some(*m),
        _ => None,
    });
    end.mac = end
        .ip
        .as_deref()
        .and_then(|ip| answered_mac(cases, name, ip));
    end.ifindex = observed(cases, "VETH-1", p, |k, v| match v {
        Value::Index(i) if k.what.ends_with("'s iflink") => *i,
        _ => None,
    });
    end.cali = observed(cases, "VETH-2", p, |_, v| match v {
        Value::Name(n) => Some(n.clone()),
        _ => None,
    });
    end.cali_ifindex = observed(cases, "VETH-1", p, |_, v| match v {
        Value::Interfaces(found) => found.first().and_then(|f| f.rsplit_once('#')),
        _ => None,
    })
    .map(|(_, i)| i.to_string());
    host_end_values(&mut end, cases);
    if facts.dual_stack() {
        end.ipv6 = Some(ipv6_end(name, cases));
    }
    end
}

fn ipv6_end(name: &str, cases: &[&CaseResult]) -> Ipv6End {
    let p = Some(name);
    let route = |claim: &str, blackhole: bool| {
        observed(cases, claim, p, |_, v| match v {
            Value::Routes(r) if r.iter().any(|r| (r.kind == "blackhole") == blackhole) => {
                Some(routes_text(r))
            }
            _ => None,
        })
    };
    Ipv6End {
        ip: observed(cases, "IP6-1", p, |_, v| match v {
            Value::Addresses(a) => a.first().map(|s| first_word(s)),
            _ => None,
        }),
        gateway: observed(cases, "IP6-2", p, |_, v| match v {
            Value::Routes(r) => r.first().and_then(|r| r.via.map(|v| v.to_string())),
            _ => None,
        }),
        proxy_ndp: observed(cases, "IP6-3", p, |_, v| match v {
            Value::Sysctls(s) => s
                .iter()
                .find(|(k, _)| k.ends_with(".proxy_ndp"))
                .map(|(_, v)| v.clone()),
            _ => None,
        }),
        host_route: route("IP6-5", false),
        blackhole: route("IP6-5", true),
    }
}

fn host_end_values(end: &mut PodEnd, cases: &[&CaseResult]) {
    let p = Some(end.name.as_str());
    end.cali_mac = observed(cases, "VETH-3", p, |_, v| match v {
        Value::Mac(m) => Some(m.clone().unwrap_or_else(|| "none".into())),
        _ => None,
    });
    end.cali_mtu = observed(cases, "VETH-3", p, |_, v| match v {
        Value::Mtu(m) => Some(*m),
        _ => None,
    });
    end.proxy_arp = observed(cases, "VETH-4", p, |_, v| match v {
        Value::Sysctls(s) => s
            .iter()
            .find(|(k, _)| k.ends_with(".proxy_arp"))
            .map(|(_, v)| v.clone()),
        _ => None,
    });
    end.host_route = observed(cases, "HOST-R1", p, |_, v| match v {
        Value::Routes(r) => Some(routes_text(r)),
        _ => None,
    });
}

fn routes_text(routes: &[crate::expect::value::RouteFields]) -> String {
    if routes.is_empty() {
        return "no route".into();
    }
    let shown: Vec<String> = routes.iter().map(ToString::to_string).collect();
    shown.join("; ")
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or(s).to_string()
}

/// The MAC the pod answered ARP with (ARP-3's observed `<ip> is-at <mac>`).
fn answered_mac(cases: &[&CaseResult], pod: &str, ip: &str) -> Option<String> {
    let ip = ip.split('/').next().unwrap_or(ip);
    let needle = format!("ARP {ip} is-at ");
    observed(cases, "ARP-3", Some(pod), |_, v| match v {
        Value::Frames(frames) => frames.iter().find_map(|f| {
            let (_, rest) = f.split_once(&needle)?;
            Some(first_word(rest))
        }),
        _ => None,
    })
}

fn node_routes(node: &NodeFacts, cases: &[&CaseResult]) -> NodeRoutes {
    let in_host = format!(" in host {}", node.name);
    let routes_of = |claim: &str| -> Vec<String> {
        cases
            .iter()
            .filter(|c| c.claim == claim && c.pod.is_none())
            .flat_map(|c| c.checks.iter())
            .filter(|k| k.what.ends_with(&in_host))
            .filter_map(|k| match &k.observed.value {
                Some(Value::Routes(r)) => Some(routes_text(r)),
                _ => None,
            })
            .collect()
    };
    NodeRoutes {
        name: node.name.clone(),
        address: node.address.to_string(),
        pod_routes: Vec::new(),
        blackholes: routes_of("HOST-R2"),
        remote: routes_of("HOST-R3"),
        ipv6: None,
    }
}

/// The IPv6 path between the pods: the hop limits IP6-6 saw, same node (its first exchange,
/// from test-tools) and across nodes (its second, from test-tools-remote).
fn leg6(cases: &[&CaseResult]) -> Vec<String> {
    let seen: Vec<String> = cases
        .iter()
        .filter(|c| c.claim == "IP6-6")
        .flat_map(|c| c.checks.iter())
        .filter_map(|k| match &k.observed.value {
            Some(Value::Ttls(t)) => {
                let distinct: BTreeSet<u8> = t.iter().copied().collect();
                let shown: Vec<String> = distinct.iter().map(ToString::to_string).collect();
                Some(shown.join(", "))
            }
            _ => None,
        })
        .collect();
    let limit = |i: usize| match seen.get(i) {
        Some(l) => format!("IPv6, hop limit {l}"),
        None => "IPv6, hop limit not observed".into(),
    };
    vec![limit(0), limit(1)]
}

/// The leg between the nodes: the encapsulation XN-2 saw (a passed check saw every packet so),
/// or what it saw instead; the TTL XN-1 saw.
fn leg(cases: &[&CaseResult]) -> Vec<String> {
    let mut lines = Vec::new();
    match cases.iter().find(|c| c.claim == "XN-2") {
        None => lines.push("encapsulation not observed".into()),
        Some(c) if c.status == Status::NotApplicable => {
            lines.push(format!(
                "not observed: {}",
                c.reason.as_deref().unwrap_or("")
            ));
        }
        Some(c) => match c.checks.last() {
            Some(k) if k.passed => {
                if let Some(Value::Encapsulation(e)) = &k.expected.value {
                    lines.push(encapsulation_text(e));
                }
                lines.push(k.observed.text.clone());
            }
            Some(k) => lines.push(k.observed.text.clone()),
            None => lines.push(c.reason.clone().unwrap_or_default()),
        },
    }
    if let Some(t) = ttls(cases, "XN-1") {
        lines.push(format!("TTL {t}"));
    }
    lines
}

fn encapsulation_text(e: &crate::expect::value::EncapsulationFields) -> String {
    let [a, b] = e.between;
    match (e.protocol, e.udp_port, e.vni) {
        (4, _, _) => format!("IPIP (IP protocol 4) {a} ↔ {b}"),
        (_, Some(port), Some(vni)) => format!("VXLAN UDP {port}, VNI {vni}, {a} ↔ {b}"),
        _ => format!("{} (no encapsulation): pod IPs {a} ↔ {b}", e.mode),
    }
}

fn ttls(cases: &[&CaseResult], claim: &str) -> Option<String> {
    observed(cases, claim, None, |_, v| match v {
        Value::Ttls(t) if !t.is_empty() => {
            let distinct: BTreeSet<u8> = t.iter().copied().collect();
            let shown: Vec<String> = distinct.iter().map(ToString::to_string).collect();
            Some(shown.join(", "))
        }
        _ => None,
    })
}

impl Path {
    fn of(facts: &Facts, cases: &[&CaseResult]) -> Path {
        let pods: Vec<PodEnd> = PODS.iter().map(|p| pod_end(p, facts, cases)).collect();
        let mut nodes: Vec<NodeRoutes> = Vec::new();
        for pod in &pods {
            let Some(node) = pod.node.as_deref() else {
                continue;
            };
            if nodes.iter().any(|n| n.name == node) {
                continue;
            }
            if let Some(facts) = facts.nodes.iter().find(|n| n.name == node) {
                nodes.push(node_routes(facts, cases));
            }
        }
        for pod in &pods {
            let node = nodes
                .iter_mut()
                .find(|n| Some(&n.name) == pod.node.as_ref());
            let Some(node) = node else { continue };
            if let Some(r) = &pod.host_route {
                node.pod_routes.push(r.clone());
            }
            if let Some(v6) = &pod.ipv6 {
                let (routes, holes) = node.ipv6.get_or_insert_with(Default::default);
                routes.extend(v6.host_route.clone());
                holes.extend(v6.blackhole.clone().filter(|b| !holes.contains(b)));
            }
        }
        let mut failed: Vec<(Spot, String)> = cases
            .iter()
            .filter(|c| c.status == Status::Failed)
            .map(|c| (spot(&c.claim, c.pod.as_deref()), c.claim.clone()))
            .collect();
        failed.sort();
        failed.dedup();
        let cross = pods.iter().any(|p| p.name == REMOTE && p.absent.is_none());
        Path {
            pods,
            nodes,
            leg: if cross { leg(cases) } else { Vec::new() },
            same_ttl: ttls(cases, "P2P-1"),
            leg6: match facts.dual_stack() {
                true => leg6(cases),
                false => Vec::new(),
            },
            failed,
        }
    }

    /// The IDs of the claims that failed at `spot`, joined.
    fn failed_at(&self, spot: &Spot) -> Option<String> {
        let ids: Vec<&str> = self
            .failed
            .iter()
            .filter(|(s, _)| s == spot)
            .map(|(_, id)| id.as_str())
            .collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    }
}

/// A value, or that no case observed it.
fn or_not(what: &str, v: Option<impl ToString>) -> String {
    match v {
        Some(v) => format!("{what} {}", v.to_string()),
        None => format!("{what} not observed"),
    }
}

/// A Mermaid flowchart being written: boxes, edges, and which edges and boxes failed.
#[derive(Default)]
struct Chart {
    text: String,
    edges: usize,
    failed_edges: Vec<usize>,
    failed_boxes: Vec<String>,
    dashed_boxes: Vec<String>,
}

impl Chart {
    fn node(&mut self, id: &str, lines: &[String]) {
        let _ = writeln!(self.text, "    {id}[\"{}\"]", label(lines));
    }

    /// An edge from `a` to `b`, labelled `what`; crossed, red and labelled with the claim IDs
    /// when `failed` names some.
    fn edge(&mut self, a: &str, b: &str, what: &[String], failed: Option<String>) {
        match failed {
            Some(ids) => {
                let mut lines = vec![format!("✗ {ids}")];
                lines.extend(what.iter().cloned());
                let _ = writeln!(self.text, "    {a} x--x|\"{}\"| {b}", label(&lines));
                self.failed_edges.push(self.edges);
            }
            None if what.is_empty() => {
                let _ = writeln!(self.text, "    {a} <--> {b}");
            }
            None => {
                let _ = writeln!(self.text, "    {a} <-->|\"{}\"| {b}", label(what));
            }
        }
        self.edges += 1;
    }

    fn finish(mut self) -> String {
        self.text
            .push_str("    classDef failed stroke:#c00,stroke-width:3px,color:#900\n");
        self.text
            .push_str("    classDef absent stroke-dasharray:5 5,color:#666\n");
        if !self.failed_boxes.is_empty() {
            let _ = writeln!(
                self.text,
                "    class {} failed",
                self.failed_boxes.join(",")
            );
        }
        if !self.dashed_boxes.is_empty() {
            let _ = writeln!(
                self.text,
                "    class {} absent",
                self.dashed_boxes.join(",")
            );
        }
        for i in &self.failed_edges {
            let _ = writeln!(self.text, "    linkStyle {i} stroke:#c00,stroke-width:3px");
        }
        self.text
    }
}

impl PodEnd {
    fn eth0_lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!("pod {} eth0", self.name),
            or_not("IP", self.ip.as_ref()),
            or_not("MAC", self.mac.as_ref()),
            or_not("MTU", self.mtu),
            or_not("ifindex", self.ifindex),
        ];
        if let Some(v6) = &self.ipv6 {
            lines.push(or_not("IPv6", v6.ip.as_ref()));
            lines.push(or_not("IPv6 via", v6.gateway.as_ref()));
        }
        lines
    }

    fn cali_lines(&self) -> Vec<String> {
        vec![
            self.cali
                .clone()
                .unwrap_or_else(|| "host end: name not observed".into()),
            or_not("ifindex", self.cali_ifindex.as_ref()),
            or_not("MAC", self.cali_mac.as_ref()),
            or_not("MTU", self.cali_mtu),
            or_not("proxy_arp =", self.proxy_arp.as_ref()),
        ]
        .into_iter()
        .chain(
            self.ipv6
                .iter()
                .map(|v6| or_not("proxy_ndp =", v6.proxy_ndp.as_ref())),
        )
        .collect()
    }

    /// Whether nothing at all was observed of the host end.
    fn cali_unobserved(&self) -> bool {
        self.cali.is_none() && self.cali_mac.is_none() && self.cali_mtu.is_none()
    }
}

impl NodeRoutes {
    fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("routes on {} ({})", self.name, self.address)];
        let mut add = |what: &str, routes: &[String]| {
            if routes.is_empty() {
                lines.push(format!("{what}: not observed"));
            }
            lines.extend(routes.iter().map(|r| format!("{what}: {r}")));
        };
        add("pod /32", &self.pod_routes);
        add("own block", &self.blackholes);
        add("other blocks", &self.remote);
        if let Some((routes, holes)) = &self.ipv6 {
            add("pod /128", routes);
            add("own IPv6 block", holes);
        }
        lines
    }
}

impl Path {
    /// The path as a Mermaid flowchart.
    fn mermaid(&self) -> String {
        let mut chart = Chart {
            text: "flowchart LR\n".into(),
            ..Chart::default()
        };
        let node_id = |name: &str| self.nodes.iter().position(|n| n.name == name);
        for (n, node) in self.nodes.iter().enumerate() {
            let _ = writeln!(
                chart.text,
                "  subgraph N{n}[\"{}\"]",
                label(&[format!("node {}", node.name)])
            );
            chart.node(&format!("R{n}"), &node.lines());
            for (p, pod) in self.pods.iter().enumerate() {
                if pod.absent.is_none() && pod.node.as_deref() == Some(&node.name) {
                    chart.node(&format!("E{p}"), &pod.eth0_lines());
                    chart.node(&format!("C{p}"), &pod.cali_lines());
                    if pod.cali_unobserved() {
                        chart.dashed_boxes.push(format!("C{p}"));
                    }
                }
            }
            chart.text.push_str("  end\n");
        }
        for (p, pod) in self.pods.iter().enumerate() {
            if let Some(why) = &pod.absent {
                chart.node(
                    &format!("E{p}"),
                    &[format!("pod {}: absent", pod.name), why.clone()],
                );
                chart.dashed_boxes.push(format!("E{p}"));
            }
        }
        self.edges(&mut chart, &node_id);
        if let Some(ids) = self.failed_at(&Spot::Routes) {
            chart
                .failed_boxes
                .extend((0..self.nodes.len()).map(|n| format!("R{n}")));
            chart.node("FR", &[format!("✗ {ids}: the nodes' routes")]);
            chart.failed_boxes.push("FR".into());
        }
        if let Some(ids) = self.failed_at(&Spot::Elsewhere) {
            chart.node("FX", &[format!("✗ {ids}: failed, not on this path")]);
            chart.failed_boxes.push("FX".into());
        }
        chart.finish()
    }

    fn edges(&self, chart: &mut Chart, node_id: &dyn Fn(&str) -> Option<usize>) {
        for (p, pod) in self.pods.iter().enumerate() {
            let Some(n) = pod.node.as_deref().and_then(node_id) else {
                continue;
            };
            if pod.absent.is_some() {
                continue;
            }
            let veth = self.failed_at(&Spot::Veth(pod.name.clone()));
            chart.edge(&format!("E{p}"), &format!("C{p}"), &["veth".into()], veth);
            let route = self.failed_at(&Spot::HostRoute(pod.name.clone()));
            let shown = [or_not("route", pod.host_route.as_ref())];
            chart.edge(&format!("C{p}"), &format!("R{n}"), &shown, route);
        }
        let (client, server) = (self.index(CLIENT), self.index(SERVER));
        if let (Some(a), Some(b)) = (client, server) {
            let ttl = self.same_ttl.as_ref().map(|t| format!("one hop, TTL {t}"));
            let what = [ttl.unwrap_or_else(|| "same node".into())];
            chart.edge(
                &format!("E{a}"),
                &format!("E{b}"),
                &what,
                self.failed_at(&Spot::SameNode),
            );
        }
        let remote = self.pods.iter().position(|p| p.name == REMOTE);
        match (self.nodes.len(), remote) {
            (2.., _) => {
                let failed = self.failed_at(&Spot::CrossNode);
                chart.edge("R0", "R1", &self.leg, failed);
            }
            (_, Some(r)) => {
                let failed = self.failed_at(&Spot::CrossNode);
                chart.edge("R0", &format!("E{r}"), &["no second node".into()], failed);
            }
            _ => {}
        }
        // Dual stack: the IPv6 path beside the IPv4 one, same node and across nodes.
        if let [same, across] = self.leg6.as_slice() {
            let failed = || self.failed_at(&Spot::Ipv6Path);
            if let (Some(a), Some(b)) = (client, server) {
                chart.edge(
                    &format!("E{a}"),
                    &format!("E{b}"),
                    std::slice::from_ref(same),
                    failed(),
                );
            }
            if self.nodes.len() >= 2 {
                chart.edge("R0", "R1", std::slice::from_ref(across), failed());
            }
        }
    }

    /// The index of `pod` when it is present and on a drawn node.
    fn index(&self, pod: &str) -> Option<usize> {
        self.pods
            .iter()
            .position(|p| p.name == pod && p.absent.is_none() && p.node.is_some())
    }

    /// The path as a plain table, readable without Mermaid.
    fn table(&self, md: &mut String) {
        md.push_str("| on the path | observed | failed claims |\n|---|---|---|\n");
        let mut row = |what: &str, lines: &[String], failed: Option<String>| {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                cell(what),
                cell(&lines.join(", ")),
                cell(&failed.unwrap_or_default())
            );
        };
        for pod in &self.pods {
            if let Some(why) = &pod.absent {
                row(
                    &format!("pod {}", pod.name),
                    &[format!("absent: {why}")],
                    None,
                );
                continue;
            }
            let veth = self.failed_at(&Spot::Veth(pod.name.clone()));
            row(
                &format!("pod {} eth0", pod.name),
                &pod.eth0_lines()[1..],
                veth,
            );
            let route = self.failed_at(&Spot::HostRoute(pod.name.clone()));
            row(
                &format!("host end of {}", pod.name),
                &pod.cali_lines(),
                route,
            );
        }
        for node in &self.nodes {
            let lines = node.lines();
            row(&lines[0], &lines[1..], self.failed_at(&Spot::Routes));
        }
        if let Some(t) = &self.same_ttl {
            row(
                "same node",
                &[format!("TTL {t}")],
                self.failed_at(&Spot::SameNode),
            );
        }
        if !self.leg.is_empty() {
            row(
                "between the nodes",
                &self.leg,
                self.failed_at(&Spot::CrossNode),
            );
        }
        if !self.leg6.is_empty() {
            row(
                "IPv6 between the pods (same node, across nodes)",
                &self.leg6,
                self.failed_at(&Spot::Ipv6Path),
            );
        }
        if let Some(ids) = self.failed_at(&Spot::Elsewhere) {
            row("elsewhere", &[], Some(ids));
        }
        md.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of `fixtures/reports/` (see `make_md.py` there).
    pub(crate) fn fixture(name: &str) -> Report {
        let path = format!("{}/fixtures/reports/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The lines of the first Mermaid block of `md`.
    fn mermaid_block(md: &str) -> Vec<&str> {
        let start = md.find("```mermaid\n").unwrap() + "```mermaid\n".len();
        let len = md[start..].find("```").unwrap();
        md[start..start + len].lines().collect()
    }

    /// A correct run: the facts, every observed value of the path from the cases, no failed
    /// edge, and one claims-table row per case.
    #[test]
    fn a_correct_run_draws_the_observed_path() {
        let report = fixture("md-correct.json");
        let md = render(&report);
        assert!(
            md.contains("**52 cases, 52 passed, 0 failed, 0 not applicable**"),
            "{md}"
        );
        assert!(md.contains("| `pool 192.168.0.0/16` | `blockSize 26, VXLAN` |"));
        let chart = mermaid_block(&md);
        assert_eq!(chart[0], "flowchart LR");
        let all = chart.join("\n");
        for want in [
            "pod test-tools eth0<br/>IP 192.168.1.12/32<br/>MAC a6:13:a5:06:87:2f<br/>MTU 1450<br/>ifindex 2",
            "calied9d42cb137<br/>ifindex 4<br/>MAC ee:ee:ee:ee:ee:ee<br/>MTU 1450<br/>proxy_arp = 1",
            "pod /32: 192.168.1.10 dev calid9d486e54a8 scope link",
            "own block: blackhole 192.168.1.0/26",
            "other blocks: 192.168.2.0/26 via 192.168.2.0 dev vxlan.calico onlink",
            "R0 <-->|\"VXLAN UDP 4789, VNI 4096, 10.12.22.3 ↔ 10.12.22.2<br/>",
            "TTL 62\"| R1",
            "E0 <-->|\"one hop, TTL 63\"| E1",
        ] {
            assert!(all.contains(want), "no {want:?} in\n{all}");
        }
        assert!(!all.contains("x--x") && !all.contains("linkStyle"), "{all}");
        assert!(!all.contains("not observed"), "{all}");
        let rows = md
            .lines()
            .filter(|l| l.starts_with("| `") && l.contains(" | passed |"));
        assert_eq!(rows.count(), 52);
    }

    /// A dual-stack lab run (`md-dualstack.json`): the IPv6 half is drawn beside the IPv4
    /// one, as IP6-1..3, 5 and 6 observed it; an IPv4-only run draws none of it (above).
    #[test]
    fn a_dual_stack_run_draws_the_ipv6_path_beside_the_ipv4_one() {
        let mut report = fixture("md-dualstack.json");
        let all = mermaid_block(&render(&report)).join("\n");
        for want in [
            "<br/>IPv6 fd00:10:244::1:c/128<br/>IPv6 via fe80::ecee:eeff:feee:eeee\"]",
            "<br/>proxy_arp = 1<br/>proxy_ndp = 1\"]",
            "pod /128: fd00:10:244::1:c dev calied9d42cb137",
            "own IPv6 block: blackhole fd00:10:244::2:0/122",
            "E0 <-->|\"IPv6, hop limit 63\"| E1",
            "R0 <-->|\"IPv6, hop limit 62\"| R1",
        ] {
            assert!(all.contains(want), "no {want:?} in\n{all}");
        }
        assert!(
            !all.contains("x--x") && !all.contains("not observed"),
            "{all}"
        );
        // IP6-6 failed: both IPv6 edges are crossed and name it; the IPv4 ones are not.
        for c in report.cases.iter_mut().filter(|c| c.claim == "IP6-6") {
            c.status = Status::Failed;
        }
        let all = mermaid_block(&render(&report)).join("\n");
        assert!(
            all.contains("E0 x--x|\"✗ IP6-6<br/>IPv6, hop limit 63\"| E1")
                && all.contains("R0 x--x|\"✗ IP6-6<br/>IPv6, hop limit 62\"| R1"),
            "{all}"
        );
        assert_eq!(all.matches("x--x").count(), 2, "{all}");
    }

    /// Failed claims are crossed red edges labelled with their IDs; the absent remote pod is a
    /// dashed box with the scheduler's message, the second node is not invented, and values
    /// no case observed say so.
    #[test]
    fn failures_and_an_absent_pod_are_drawn_as_such() {
        let md = render(&fixture("md-failed-absent.json"));
        let chart = mermaid_block(&md).join("\n");
        assert!(
            chart.contains("E0 x--x|\"✗ POD-I3, VETH-3<br/>veth\"| C0"),
            "{chart}"
        );
        assert!(
            chart.contains("E1 x--x|\"✗ ARP-1, ARP-2, VETH-3<br/>veth\"| C1"),
            "{chart}"
        );
        assert!(
            chart.contains("E0 x--x|\"✗ P2P-3<br/>one hop, TTL 63\"| E1"),
            "{chart}"
        );
        for i in [0, 2, 4] {
            assert!(
                chart.contains(&format!("linkStyle {i} stroke:#c00")),
                "{chart}"
            );
        }
        assert_eq!(chart.matches("linkStyle").count(), 3, "{chart}");
        assert!(chart.contains("MTU 1400"), "the faulted MTU as observed");
        assert!(
            chart.contains("MAC 02:00:00:00:00:01<br/>MTU not observed"),
            "{chart}"
        );
        assert!(
            chart.contains("E2[\"pod test-tools-remote: absent<br/>0/1 nodes"),
            "{chart}"
        );
        assert!(chart.contains("class E2 absent"), "{chart}");
        assert!(!chart.contains("k8s-worker-2") && !chart.contains("subgraph N1"));
        assert!(chart.contains("R0 <-->|\"no second node\"| E2"), "{chart}");
        assert!(md.contains("| **FAILED** |"));
        assert!(
            md.contains(
                "| `POD-I3` | `test-tools` | **FAILED** | `eth0 MTU: 1400 (expected eth0 MTU: 1450"
            ),
            "{md}"
        );
        assert!(md.contains("| `XN-2` | `-` | not applicable | `0/1 nodes are available"));
    }

    /// A claim this module does not know (the catalogue grows) is drawn on its pod's veth pair,
    /// or, without a pod, named below the path: never dropped.
    #[test]
    fn unknown_claims_are_drawn_too() {
        assert_eq!(
            spot("NEW-1", Some("test-tools")),
            Spot::Veth("test-tools".into())
        );
        assert_eq!(spot("NEW-2", None), Spot::Elsewhere);
        assert_eq!(spot("REC-2", None), Spot::Routes);
        assert_eq!(spot("MTU-2", None), Spot::CrossNode);
        assert_eq!(spot("MTU-4", None), Spot::SameNode);
        let mut report = fixture("md-failed-absent.json");
        let mut extra = report.cases[0].clone();
        extra.claim = "NEW-2".into();
        extra.pod = None;
        extra.status = Status::Failed;
        report.cases.push(extra);
        let chart = mermaid_block(&render(&report)).join("\n");
        assert!(
            chart.contains("FX[\"✗ NEW-2: failed, not on this path\"]"),
            "{chart}"
        );
    }

    /// Names from a cluster cannot break out of a label, the statement, or the Markdown fence;
    /// table cells stay one line with `|` escaped.
    #[test]
    fn names_are_escaped() {
        let nasty = "a\"b]c[d:e;f|g`h<i>j&k#l{m}\nn";
        assert_eq!(
            mermaid_text(nasty),
            "a#quot;b]c[d:e#59;f#124;g#96;h#lt;i#gt;j#amp;k#35;l#123;m#125;n"
        );
        let mut report = fixture("md-failed-absent.json");
        for c in &mut report.cases {
            if c.claim == "VETH-2" && c.pod.as_deref() == Some("test-tools") {
                c.checks[0].observed.value = Some(Value::Name(nasty.into()));
            }
        }
        let node = "node\"]; click R0 call x()```";
        let facts = &mut report.targets[0].facts;
        facts.nodes[0].name = node.into();
        facts.pods.iter_mut().for_each(|p| p.node = node.into());
        let md = render(&report);
        let chart = mermaid_block(&md);
        assert!(chart.iter().all(|l| !l.contains("```") && !l.contains('`')));
        assert!(
            md.matches("```").count() == 2,
            "one fence opened and closed"
        );
        assert!(
            chart
                .iter()
                .any(|l| l.contains("C0[\"a#quot;b]c[d:e#59;f#124;g#96;h#lt;"))
        );
        assert_eq!(cell("a|b\nc`d"), "`a\\|b c'd`");
        assert_eq!(cell(""), "");
    }
}
