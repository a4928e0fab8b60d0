//! What every claim test shares: the claim record, its context, verdicts and failure messages,
//! and the runner that makes libtest trials of them.

use calico_conformance::capture::{Capture, CaptureResult};
use calico_conformance::evidence::Evidence;
use calico_conformance::facts::PodFacts;
use calico_conformance::place::Place;
use calico_conformance::target::Target;
use futures::future::BoxFuture;
use std::fmt::Display;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long one claim may take, whatever it waits for (Calico's e2e rule for conformance
/// tests is 15 s; the lab takes milliseconds).
pub const CLAIM_DEADLINE: Duration = Duration::from_secs(30);
/// How long a capture waits for frames it expects.
pub const SEE_DEADLINE: Duration = Duration::from_secs(5);
/// How long an HTTP GET or ping may take.
pub const TRAFFIC_DEADLINE: Duration = Duration::from_secs(5);

/// For which cases a claim runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Once per target.
    Target,
    /// Once per pod the suite deployed.
    EachPod,
}

/// The pods a per-pod claim runs for.
pub const PODS: [&str; 3] = [
    calico_conformance::target::SERVER_POD,
    calico_conformance::target::CLIENT_POD,
    calico_conformance::target::REMOTE_POD,
];

/// The claim function type.
pub type ClaimFn = for<'a> fn(&'a Cx<'a>) -> BoxFuture<'a, Outcome>;

/// One claim of claims.md.
#[derive(Clone)]
pub struct Claim {
    /// `POD-R1`.
    pub id: &'static str,
    /// The test function's name: `pod_r1_default_via_link_local`.
    pub test: &'static str,
    /// The claims.md section's module: `pod_routes`.
    pub group: &'static str,
    /// The claim's sentence.
    pub sentence: &'static str,
    pub per: Per,
    /// Changes shared state (flushes a neighbour table): runs alone on its target.
    pub exclusive: bool,
    pub run: ClaimFn,
}

/// Declares a claim: `claim!("POD-R1", "sentence", Per::EachPod, pod_r1_default_via_link_local)`.
#[macro_export]
macro_rules! claim {
    ($id:literal, $sentence:literal, $per:expr, $f:ident) => {
        $crate::claims::support::Claim {
            id: $id,
            test: stringify!($f),
            group: module_path!().rsplit("::").next().unwrap_or(""),
            sentence: $sentence,
            per: $per,
            exclusive: false,
            run: |cx| Box::pin($f(cx)),
        }
    };
    ($id:literal, $sentence:literal, $per:expr, $f:ident, exclusive) => {
        $crate::claims::support::Claim {
            exclusive: true,
            ..$crate::claim!($id, $sentence, $per, $f)
        }
    };
}

/// What a claim concluded.
#[derive(Debug)]
pub enum Verdict {
    Verified,
    /// The claim does not apply to this target; the reason says why.
    NotApplicable(String),
}

/// Why a claim failed.
#[derive(Debug)]
pub enum Failure {
    /// The dataplane is not as claimed.
    Claim { expected: String, observed: String },
    /// The observation could not be made (a command failed, a pod is missing).
    Harness(String),
}

impl From<calico_conformance::Error> for Failure {
    fn from(e: calico_conformance::Error) -> Self {
        Failure::Harness(e.to_string())
    }
}

/// The result of a claim.
pub type Outcome = Result<Verdict, Failure>;

/// A failure with the expected and the observed value.
pub fn differs(expected: impl Display, observed: impl Display) -> Failure {
    Failure::Claim {
        expected: expected.to_string(),
        observed: observed.to_string(),
    }
}

/// Fails with `expected`/`observed` unless `ok`.
pub fn ensure(ok: bool, expected: impl Display, observed: impl Display) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(differs(expected, observed))
    }
}

pub use calico_conformance::faults::Switches;

/// What a claim gets: its target, its case, and where its evidence goes.
pub struct Cx<'a> {
    pub target: &'a Target,
    /// The pod of a per-pod claim.
    pub pod: Option<&'a str>,
    pub evidence: Evidence,
    pub switches: &'a Switches,
}

impl<'a> Cx<'a> {
    /// The pod of a per-pod claim.
    pub fn pod_name(&self) -> Result<&'a str, Failure> {
        self.pod
            .ok_or_else(|| Failure::Harness("this claim runs per pod but has no pod".into()))
    }

    /// Facts of the claim's pod.
    pub fn pod_facts(&self) -> Result<&'a PodFacts, Failure> {
        Ok(self.target.pod_facts(self.pod_name()?)?)
    }

    /// Facts of any pod; a missing pod is a harness failure naming it.
    pub fn facts_of(&self, pod: &str) -> Result<&'a PodFacts, Failure> {
        Ok(self.target.pod_facts(pod)?)
    }

    /// Starts a capture (live on return).
    pub async fn capture(&self, place: &Place, iface: &str, bpf: &str) -> Result<Capture, Failure> {
        Ok(place.capture(iface, bpf).await?)
    }

    /// Stops a capture, keeps its pcap as evidence, and applies the dead-capture switch.
    pub async fn finish(&self, capture: Capture) -> CaptureResult {
        let mut result = capture.stop().await;
        if self.switches.blind_captures.load(Ordering::SeqCst) {
            result.frames.clear();
        }
        self.evidence.capture(&result);
        result
    }

    /// Waits until a capture shows what `seen` looks for (always false for a dead capture).
    pub async fn wait_for(
        &self,
        capture: &Capture,
        seen: impl Fn(&[calico_conformance::observe::packet::Frame]) -> bool,
    ) -> bool {
        if self.switches.blind_captures.load(Ordering::SeqCst) {
            // A dead capture sees nothing: wait briefly so the traffic still happens.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return false;
        }
        capture.wait_for(SEE_DEADLINE, seen).await
    }
}

/// Formats a failure the way every claim reports it: ID and sentence, expected, observed,
/// evidence folder.
pub fn failure_message(claim: &Claim, case: &str, failure: &Failure, evidence: &str) -> String {
    match failure {
        Failure::Claim { expected, observed } => format!(
            "{} {} [{case}]\n  expected: {expected}\n  observed: {observed}\n  evidence: {evidence}",
            claim.id, claim.sentence
        ),
        Failure::Harness(problem) => format!(
            "{} {} [{case}]\n  could not observe: {problem}\n  evidence: {evidence}",
            claim.id, claim.sentence
        ),
    }
}

/// Runs one claim case on a target and turns the outcome into a report line's parts.
pub async fn run_case(
    claim: &Claim,
    target: &Target,
    pod: Option<&str>,
    switches: &Switches,
) -> CaseResult {
    let case = match pod {
        Some(p) => format!("{}/{p}", target.name),
        None => target.name.clone(),
    };
    // A per-pod case needs its pod: one the target says does not run here (not scheduled on
    // a one-node cluster, not in the topology file) makes the case not applicable, with why.
    if let Some(why) = pod.and_then(|p| target.facts.absence(p)) {
        return CaseResult::NotApplicable(why.to_string());
    }
    let cx = Cx {
        target,
        pod,
        evidence: Evidence::new(claim.id, &case),
        switches,
    };
    let outcome = {
        let _shared;
        let _exclusive;
        if claim.exclusive {
            _exclusive = target.state_lock.write().await;
        } else {
            _shared = target.state_lock.read().await;
        }
        // The same between the processes of a nextest run, which share the cluster's pods.
        let _across_processes =
            match calico_conformance::run::lock_state(claim.exclusive, CLAIM_DEADLINE).await {
                Ok(lock) => lock,
                Err(e) => {
                    return CaseResult::Failed(failure_message(
                        claim,
                        &case,
                        &Failure::Harness(e.to_string()),
                        "(none)",
                    ));
                }
            };
        match tokio::time::timeout(CLAIM_DEADLINE, (claim.run)(&cx)).await {
            Ok(o) => o,
            Err(_) => Err(Failure::Harness(format!(
                "the claim did not finish within {} s",
                CLAIM_DEADLINE.as_secs()
            ))),
        }
    };
    let write = |cx: &Cx| match cx.evidence.write() {
        Ok(dir) => dir.display().to_string(),
        Err(problem) => format!("(not saved: {problem})"),
    };
    match outcome {
        Ok(Verdict::Verified) => {
            if Evidence::always() {
                write(&cx);
            }
            CaseResult::Verified
        }
        Ok(Verdict::NotApplicable(reason)) => CaseResult::NotApplicable(reason),
        Err(failure) => {
            let dir = write(&cx);
            CaseResult::Failed(failure_message(claim, &case, &failure, &dir))
        }
    }
}

/// A case's result.
#[derive(Debug, Clone)]
pub enum CaseResult {
    Verified,
    NotApplicable(String),
    Failed(String),
}

/// Shortcut: a claim that does not apply.
pub fn not_applicable(reason: impl Into<String>) -> Outcome {
    Ok(Verdict::NotApplicable(reason.into()))
}

/// Pings `to` three times from `from` and expects every reply with `ttl`; `expected` says what
/// that TTL means. Shared by P2P-1 (one routed hop) and XN-1 (two).
pub async fn expect_ttl(
    cx: &Cx<'_>,
    from: &Place,
    to: std::net::Ipv4Addr,
    ttl: u8,
    expected: String,
) -> Outcome {
    let replies = from.ping(to, 3, TRAFFIC_DEADLINE).await?;
    cx.evidence.add("ping.txt", format!("{replies:?}"));
    let ttls: Vec<u8> = replies.iter().map(|r| r.ttl).collect();
    ensure(
        !ttls.is_empty() && ttls.iter().all(|t| *t == ttl),
        expected,
        if ttls.is_empty() {
            "no reply".to_string()
        } else {
            format!("TTLs {ttls:?}")
        },
    )?;
    Ok(Verdict::Verified)
}

/// A pod's `eth0` and the host end of its veth, as observed (VETH-1 is the claim that they
/// pair up; other claims use this to find the host end without trusting its name).
pub struct VethPair {
    pub pod_place: Place,
    pub host_place: Place,
    pub eth0: Interface,
    /// The host link whose ifindex is eth0's iflink, if there is one.
    pub host_end: Option<Interface>,
    /// Every interface of the host, as observed.
    pub host_interfaces: Vec<Interface>,
}

impl VethPair {
    /// The host end, or a claim failure saying it is missing.
    pub fn host_end(&self) -> Result<&Interface, Failure> {
        self.host_end.as_ref().ok_or_else(|| {
            differs(
                format!(
                    "a link on {} with ifindex {} (the iflink of the pod's eth0)",
                    self.host_place.label(),
                    self.eth0
                        .link
                        .link_index
                        .map(|i| i.to_string())
                        .unwrap_or("?".into())
                ),
                "no such link on the host",
            )
        })
    }
}

/// Observes a pod's eth0 and its host end.
pub async fn veth_pair(cx: &Cx<'_>, pod: &str) -> Result<VethPair, Failure> {
    let pod_place = cx.target.pod(pod)?;
    let host_place = cx.target.host_of(pod)?;
    let pod_ifs = observe::interfaces(&pod_place).await?;
    cx.evidence.observed(&pod_ifs);
    let host_ifs = observe::interfaces(&host_place).await?;
    cx.evidence.observed(&host_ifs);
    let eth0 = pod_ifs
        .value
        .iter()
        .find(|i| i.link.ifname == "eth0")
        .cloned()
        .ok_or_else(|| differs("an eth0 in the pod", names(&pod_ifs.value)))?;
    let host_end = eth0.link.link_index.and_then(|peer| {
        host_ifs
            .value
            .iter()
            .find(|i| i.link.ifindex == peer)
            .cloned()
    });
    Ok(VethPair {
        pod_place,
        host_place,
        eth0,
        host_end,
        host_interfaces: host_ifs.value,
    })
}

/// Interface names, for messages.
pub fn names(ifs: &[Interface]) -> String {
    let n: Vec<&str> = ifs.iter().map(|i| i.link.ifname.as_str()).collect();
    format!("interfaces [{}]", n.join(", "))
}

/// Routes, one per line, for messages.
pub fn show_routes(routes: &[Route]) -> String {
    if routes.is_empty() {
        return "no routes".into();
    }
    routes.iter().map(show_route).collect::<Vec<_>>().join("; ")
}

/// The routes found for `dst`, or that there is none, for messages.
pub fn show_found(found: &[&Route], dst: impl std::fmt::Display) -> String {
    if found.is_empty() {
        return format!("no route for {dst}");
    }
    found
        .iter()
        .map(|r| show_route(r))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One route as `ip route` would print its essential fields.
pub fn show_route(r: &Route) -> String {
    let mut s = String::new();
    if r.kind != RouteType::Unicast {
        s += &format!("{:?} ", r.kind).to_lowercase();
    }
    s += &r.dst.to_string();
    if let Some(g) = r.gateway {
        s += &format!(" via {g}");
    }
    if let Some(d) = &r.dev {
        s += &format!(" dev {d}");
    }
    if let Some(sc) = &r.scope {
        s += &format!(" scope {sc}");
    }
    if r.onlink() {
        s += " onlink";
    }
    s
}

/// Frames, summarised for messages (at most 8).
pub fn show_frames(frames: &[Frame]) -> String {
    if frames.is_empty() {
        return "no frames".into();
    }
    let mut lines: Vec<String> = frames.iter().take(8).map(show_frame).collect();
    if frames.len() > 8 {
        lines.push(format!("... {} more", frames.len() - 8));
    }
    lines.join("; ")
}

/// One frame, summarised.
pub fn show_frame(f: &Frame) -> String {
    let eth = f
        .eth
        .map(|e| format!("{} > {} ", mac_str(&e.src), mac_str(&e.dst)))
        .unwrap_or_default();
    let l3 = match &f.l3 {
        L3::Arp(a) => match a.op {
            ArpOp::Request => format!("ARP who-has {} tell {}", a.target_ip, a.sender_ip),
            ArpOp::Reply => format!("ARP {} is-at {}", a.sender_ip, mac_str(&a.sender_mac)),
            ArpOp::Other(o) => format!("ARP op {o}"),
        },
        L3::Ipv4(ip) => {
            let l4 = match &ip.l4 {
                L4::Tcp(t) => format!("TCP {}:{} > {}:{}", ip.src, t.src_port, ip.dst, t.dst_port),
                L4::Udp {
                    src_port, dst_port, ..
                } => format!("UDP {}:{src_port} > {}:{dst_port}", ip.src, ip.dst),
                L4::Icmp { icmp_type, .. } => {
                    format!("ICMP type {icmp_type} {} > {}", ip.src, ip.dst)
                }
                L4::Other => format!("IP proto {} {} > {}", ip.protocol, ip.src, ip.dst),
            };
            let inner = ip
                .inner
                .as_ref()
                .map(|e| format!(" carrying [{}]", show_frame(&e.frame)))
                .unwrap_or_default();
            format!("{l4} ttl {}{inner}", ip.ttl)
        }
        L3::Ipv6 => "IPv6".into(),
        L3::Other(t) => format!("ethertype {t:#06x}"),
    };
    format!("{eth}{l3}")
}

/// True when the frame (or the packet it carries) is TCP between ports `a` and `b`.
pub fn tcp_ports(f: &Frame, a: u16, b: u16) -> bool {
    let inner = f.innermost();
    match &inner.l3 {
        L3::Ipv4(ip) => match &ip.l4 {
            L4::Tcp(t) => {
                (t.src_port == a && t.dst_port == b) || (t.src_port == b && t.dst_port == a)
            }
            _ => false,
        },
        _ => false,
    }
}

use calico_conformance::observe::{
    self,
    ip::{Interface, Route, RouteType},
    packet::{ArpOp, Frame, L3, L4, mac_str},
};

#[cfg(test)]
mod tests {

    /// A one-node cluster as the kube target reports it: `test-tools-remote` absent with the
    /// scheduler's reason. Every case of it, and every cross-node claim, is not applicable with
    /// that reason; none fails, none passes; the other pods' cases still run and pass. (On the
    /// lab, which does run the remote pod, so that a case that did run would be seen.)
    #[test]
    fn an_absent_pods_cases_are_not_applicable_and_none_fails() {
        use super::*;
        use calico_conformance::facts::Encapsulation;
        use calico_conformance::target::{REMOTE_POD, SERVER_POD, TargetKind};
        let rt = super::super::runner::runtime().unwrap();
        let mut target = rt
            .block_on(Target::open(&TargetKind::Lab(Encapsulation::None)))
            .unwrap();
        let why = "test-tools-remote cannot be scheduled on another node than c2c-network-demo's (the cluster has one schedulable node): 0/1 nodes are available";
        target
            .facts
            .absent_pods
            .insert(REMOTE_POD.to_string(), why.to_string());
        let switches = Switches::default();
        let mut remote_cases = 0;
        for claim in super::super::all() {
            let case = |pod| rt.block_on(run_case(&claim, &target, pod, &switches));
            match claim.per {
                Per::EachPod => {
                    remote_cases += 1;
                    match case(Some(REMOTE_POD)) {
                        CaseResult::NotApplicable(r) => assert_eq!(r, why, "{}", claim.id),
                        other => panic!("{} on the absent pod: {other:?}", claim.id),
                    }
                    let present = case(Some(SERVER_POD));
                    assert!(
                        matches!(present, CaseResult::Verified),
                        "{} on {SERVER_POD}: {present:?}",
                        claim.id
                    );
                }
                Per::Target if claim.id.starts_with("XN-") => match case(None) {
                    CaseResult::NotApplicable(r) => assert_eq!(r, why, "{}", claim.id),
                    other => panic!("{}: {other:?}", claim.id),
                },
                Per::Target => {}
            }
        }
        assert!(remote_cases >= 10, "{remote_cases} per-pod claims");
        rt.block_on(target.close()).unwrap();
    }
}
