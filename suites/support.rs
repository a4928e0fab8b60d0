//! What every claim test shares: the claim record and what it requires of a target, failures
//! and their messages, and the running of one claim case into a structured
//! [`CaseResult`].

pub use super::context::{Cx, Recording, Shared, VethPair, all_seen, at_least_frames};
pub use super::verdict::{CLAIM_DEADLINE, Failure, Outcome, TRAFFIC_DEADLINE};
use calico_conformance::evidence::Evidence;
use calico_conformance::results::{CaseResult, Status};
use calico_conformance::target::{REMOTE_POD, SERVER_POD, Target};
use futures::future::BoxFuture;
use std::time::Instant;

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
    SERVER_POD,
    calico_conformance::target::CLIENT_POD,
    REMOTE_POD,
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
    /// What the target must offer for the claim to apply; a case where one is missing is not
    /// applicable, with the reason.
    pub needs: &'static [Requirement],
    /// Changes shared state (flushes a neighbour table): runs alone on its target.
    pub exclusive: bool,
    pub run: ClaimFn,
}

/// Declares a claim: `claim!("POD-R1", "sentence", Per::EachPod, pod_r1_default_via_link_local)`,
/// optionally followed by `needs TwoNodes` (requirements, see [`Requirement`]) and `exclusive`
/// (or `exclusive, needs ...`).
#[macro_export]
macro_rules! claim {
    ($id:literal, $sentence:literal, $per:expr, $f:ident $(, needs $($need:ident),+)?) => {
        $crate::claims::support::Claim {
            id: $id,
            test: stringify!($f),
            group: module_path!().rsplit("::").next().unwrap_or(""),
            sentence: $sentence,
            per: $per,
            needs: &[$($($crate::claims::support::Requirement::$need),+)?],
            exclusive: false,
            run: |cx| Box::pin($f(cx)),
        }
    };
    ($id:literal, $sentence:literal, $per:expr, $f:ident $(, needs $($need:ident),+)?, exclusive) => {
        $crate::claims::support::Claim {
            exclusive: true,
            ..$crate::claim!($id, $sentence, $per, $f $(, needs $($need),+)?)
        }
    };
    ($id:literal, $sentence:literal, $per:expr, $f:ident, exclusive, needs $($need:ident),+) => {
        $crate::claims::support::Claim {
            exclusive: true,
            ..$crate::claim!($id, $sentence, $per, $f, needs $($need),+)
        }
    };
}

/// What a claim may need of a target beyond its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// The server pod and the remote pod run on two different nodes (the XN-* claims).
    TwoNodes,
    /// The target says which process belongs to which container of the server pod (C2C-1).
    ContainersKnown,
    /// At least two nodes hold an IPAM block, so a node has another node's block to route.
    BlocksOnTwoNodes,
    /// The target knows every workload on its nodes, not only the article's pods (REC-*).
    WorkloadsKnown,
    /// The cluster has an IPv6 pool: dual stack (IP6-*).
    Ipv6Pool,
}

impl Requirement {
    /// Why `target` does not meet the requirement; `None` when it does.
    pub fn unmet(self, target: &Target) -> Result<Option<String>, Failure> {
        let facts = &target.facts;
        Ok(match self {
            Requirement::TwoNodes => {
                let server = target.pod_facts(SERVER_POD)?;
                match (facts.absence(REMOTE_POD), facts.pod(REMOTE_POD)) {
                    (Some(why), _) => Some(why.to_string()),
                    (None, None) => Some(format!(
                        "{REMOTE_POD} is not running: the cluster has no second schedulable node"
                    )),
                    (None, Some(remote)) if remote.node == server.node => Some(format!(
                        "{REMOTE_POD} landed on {}, the server's node",
                        remote.node
                    )),
                    (None, Some(_)) => None,
                }
            }
            Requirement::ContainersKnown => target.containers(SERVER_POD)?.is_empty().then(|| {
                format!(
                    "the target does not say which process belongs to which container of \
                     {SERVER_POD} (a topology file without `containers`)"
                )
            }),
            Requirement::BlocksOnTwoNodes => {
                let n = facts.nodes.iter().filter(|n| !n.blocks.is_empty()).count();
                (n < 2).then(|| {
                    format!(
                        "only {n} node holds an IPAM block: there is no other node's block to route"
                    )
                })
            }
            Requirement::Ipv6Pool => (!facts.dual_stack()).then(|| {
                "the cluster has no IPv6 pool (IPv4 only): there is no IPv6 half to check"
                    .to_string()
            }),
            Requirement::WorkloadsKnown => facts.workloads.is_none().then(|| {
                "the target does not say it lists every workload on its nodes (a topology \
                 file without `\"listsEveryWorkload\": true`): a link or route of an unlisted \
                 pod would look orphaned"
                    .to_string()
            }),
        })
    }
}

/// Formats a failure the way every claim reports it: ID and sentence, expected, observed,
/// evidence folder.
pub fn failure_message(claim: &Claim, case: &str, failure: &Failure, evidence: &str) -> String {
    match failure {
        Failure::Claim(check) => format!(
            "{} {} [{case}]\n  expected: {}\n  observed: {}\n  evidence: {evidence}",
            claim.id, claim.sentence, check.expected.text, check.observed.text
        ),
        Failure::Harness(problem) => format!(
            "{} {} [{case}]\n  could not observe: {problem}\n  evidence: {evidence}",
            claim.id, claim.sentence
        ),
    }
}

/// Why a case does not apply: its pod is absent from the target (not scheduled on a one-node
/// cluster, not in the topology file), or the target misses one of the claim's requirements.
fn unmet(claim: &Claim, target: &Target, pod: Option<&str>) -> Result<Option<String>, Failure> {
    if let Some(why) = pod.and_then(|p| target.facts.absence(p)) {
        return Ok(Some(why.to_string()));
    }
    for need in claim.needs {
        if let Some(why) = need.unmet(target)? {
            return Ok(Some(why));
        }
    }
    Ok(None)
}

/// Runs one claim case on a target: not applicable when [`unmet`] says so; otherwise the claim
/// under its target's state lock (and the cross-process one) and its deadline.
pub async fn run_case(
    claim: &Claim,
    target: &Target,
    pod: Option<&str>,
    shared: &Shared,
) -> CaseResult {
    let started = Instant::now();
    let result = CaseResult::new((claim.id, claim.sentence), &target.name, pod);
    let case = match pod {
        Some(p) => format!("{}/{p}", target.name),
        None => target.name.clone(),
    };
    let concluded = |mut result: CaseResult| {
        result.duration = started.elapsed();
        result
    };
    match unmet(claim, target, pod) {
        Ok(Some(why)) => return concluded(result.not_applicable(why)),
        Ok(None) => {}
        Err(failure) => return concluded(failed(result, claim, &case, failure, None)),
    }
    let cx = Cx::new(target, pod, Evidence::new(claim.id, &case), shared);
    let outcome = {
        let _shared;
        let _exclusive;
        if claim.exclusive {
            _exclusive = target.state_lock.write().await;
        } else {
            _shared = target.state_lock.read().await;
        }
        // The same between the processes of a nextest run when they share the pods (a cluster,
        // a topology file); a lab is each process's own, and needs no lock across processes
        // (taking one there serialises every fault trial's ARP claims for nothing).
        let across = async {
            if target.lab().is_none() {
                calico_conformance::run::lock_state(claim.exclusive, CLAIM_DEADLINE).await
            } else {
                Ok(None)
            }
        };
        let _across_processes = match across.await {
            Ok(lock) => lock,
            Err(e) => {
                let failure = Failure::Harness(e.to_string());
                return concluded(failed(result, claim, &case, failure, None));
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
    concluded(match outcome {
        Ok(()) => {
            let mut result = with_checks(result, &cx);
            if Evidence::always() {
                write_evidence(&mut result, &cx);
            }
            result
        }
        Err(failure) => failed(result, claim, &case, failure, Some(&cx)),
    })
}

/// `result` with the checks and evidence names of `cx`.
fn with_checks(mut result: CaseResult, cx: &Cx<'_>) -> CaseResult {
    result.checks = cx.checks.all();
    result.evidence = cx.evidence.names();
    result
}

/// Writes the evidence of `cx`; returns the folder as a message shows it.
fn write_evidence(result: &mut CaseResult, cx: &Cx<'_>) -> String {
    match cx.evidence.write() {
        Ok(dir) => {
            let shown = dir.display().to_string();
            result.evidence_dir = Some(dir);
            shown
        }
        Err(problem) => format!("(not saved: {problem})"),
    }
}

/// `result` failed with `failure`; its evidence (when the claim ran) written.
fn failed(
    result: CaseResult,
    claim: &Claim,
    case: &str,
    failure: Failure,
    cx: Option<&Cx<'_>>,
) -> CaseResult {
    let mut result = match cx {
        Some(cx) => with_checks(result, cx),
        None => result,
    };
    result.status = Status::Failed;
    match &failure {
        // A finder's failed check was never recorded: it ends the list.
        Failure::Claim(check) if result.checks.last() != Some(check) => {
            result.checks.push(check.as_ref().clone())
        }
        Failure::Claim(_) => {}
        Failure::Harness(problem) => result.reason = Some(problem.clone()),
    }
    let dir = match cx {
        Some(cx) => write_evidence(&mut result, cx),
        None => "(none)".to_string(),
    };
    result.message = Some(failure_message(claim, case, &failure, &dir));
    result
}

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
        let shared = Shared::default();
        let mut remote_cases = 0;
        for claim in super::super::all() {
            let case = |pod| rt.block_on(run_case(&claim, &target, pod, &shared));
            let not_applicable = |r: CaseResult| {
                assert_eq!(r.status, Status::NotApplicable, "{}: {r:?}", claim.id);
                assert_eq!(r.reason.as_deref(), Some(why), "{}", claim.id);
            };
            match claim.per {
                Per::EachPod => {
                    remote_cases += 1;
                    not_applicable(case(Some(REMOTE_POD)));
                    if claim.needs.contains(&Requirement::Ipv6Pool) {
                        // An IPv4 lab: not applicable for want of an IPv6 pool.
                        continue;
                    }
                    let present = case(Some(SERVER_POD));
                    assert_eq!(
                        present.status,
                        Status::Passed,
                        "{} on {SERVER_POD}: {present:?}",
                        claim.id
                    );
                }
                // XN-*, MTU-2..4: everything that needs the remote pod on another node.
                Per::Target if claim.needs.contains(&Requirement::TwoNodes) => {
                    not_applicable(case(None))
                }
                Per::Target => {}
            }
        }
        assert!(remote_cases >= 10, "{remote_cases} per-pod claims");
        rt.block_on(target.close()).unwrap();
    }
}
