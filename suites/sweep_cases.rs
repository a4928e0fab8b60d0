//! `CALICO_SWEEP=1`: the sweep (`calico_conformance::sweep`) as test cases of the test binary,
//! one per node per claim the sweep checks (`sweep::lab_none::k8s_worker_1::rec_2`), each
//! passing when every check of that claim on that node held. The sweep runs once per target,
//! when its first case runs; its report is written beside the run's (`sweep-<target>/`).

use calico_conformance::sweep::{self, NodeResult, NodeStatus};
use calico_conformance::target::{Target, TargetKind};
use libtest_mimic::{Completion, Failed, Trial};
use std::sync::{Arc, OnceLock};

/// The claims a sweep checks, in claims.md's order.
pub const SWEEP_CLAIMS: [&str; 12] = [
    "VETH-2", "VETH-3", "VETH-4", "HOST-R1", "HOST-R2", "HOST-R3", "XN-1", "MTU-1", "MTU-2",
    "REC-1", "REC-2", "REC-3",
];

/// Whether `CALICO_SWEEP=1` asks for the sweep's cases.
pub fn wanted() -> bool {
    std::env::var("CALICO_SWEEP").is_ok_and(|v| v.trim() == "1")
}

fn test_name(kind: &TargetKind, node: &str, claim: &str) -> String {
    let ident = |s: &str| s.to_lowercase().replace(['-', '.'], "_");
    format!("sweep::{}::{}::{}", kind.short(), ident(node), ident(claim))
}

/// One node's verdict on `claim`: passed, failed (every failed check's observed text), or
/// ignored saying why it was not checked (a node left out, no check of that claim there).
#[derive(Debug, PartialEq)]
enum Verdict {
    Passed,
    Failed(String),
    NotChecked(String),
}

fn verdict(r: &NodeResult, claim: &str) -> Verdict {
    if r.status() == NodeStatus::Skipped {
        let why = r.skipped.clone().unwrap_or_default();
        return Verdict::NotChecked(format!("not swept: {why}"));
    }
    if let Some(e) = &r.error {
        return Verdict::Failed(format!("{claim} on {}: not observed: {e}", r.node));
    }
    let mine: Vec<_> = r.checks.iter().filter(|c| c.claim == claim).collect();
    if mine.is_empty() {
        let noted = r.notes.iter().find(|n| n.starts_with(claim)).cloned();
        return Verdict::NotChecked(
            noted.unwrap_or_else(|| {
                format!("{claim}: nothing to check on {} (no pod there)", r.node)
            }),
        );
    }
    let failed: Vec<String> = (mine.iter().filter(|c| !c.check.passed))
        .map(|c| match &c.pod {
            Some(p) => format!("{p}: {}", c.check.observed.text),
            None => c.check.observed.text.clone(),
        })
        .collect();
    match failed.is_empty() {
        true => Verdict::Passed,
        false => Verdict::Failed(format!("{claim} on {}: {}", r.node, failed.join("\n"))),
    }
}

/// A verdict as libtest reports it: a case not checked is ignored with why, never passed.
fn libtest(v: Verdict) -> Result<Completion, Failed> {
    match v {
        Verdict::Passed => Ok(Completion::Completed),
        Verdict::Failed(why) => Err(Failed::from(why)),
        Verdict::NotChecked(why) => Ok(Completion::ignored_with(why)),
    }
}

/// The sweep's cases of every target: one per node (the target's and the ones it leaves out)
/// per claim of [`SWEEP_CLAIMS`].
pub fn trials(
    rt: &Arc<tokio::runtime::Runtime>,
    targets: &[(TargetKind, Arc<Target>)],
) -> Vec<Trial> {
    let mut out = Vec::new();
    for (kind, target) in targets {
        let swept: Arc<OnceLock<Vec<NodeResult>>> = Arc::default();
        let mut nodes: Vec<String> = target.facts.nodes.iter().map(|n| n.name.clone()).collect();
        nodes.extend(target.skipped_nodes().iter().map(|(n, _)| n.clone()));
        nodes.sort();
        nodes.dedup();
        for node in nodes {
            for claim in SWEEP_CLAIMS {
                let (rt, target, swept, node) =
                    (rt.clone(), target.clone(), swept.clone(), node.clone());
                out.push(Trial::ignorable_test(
                    test_name(kind, &node, claim),
                    move || {
                        let all = swept.get_or_init(|| rt.block_on(sweep_once(&target)));
                        let r = (all.iter().find(|r| r.node == node))
                            .ok_or_else(|| Failed::from(format!("{node}: not in the sweep")))?;
                        libtest(verdict(r, claim))
                    },
                ));
            }
        }
    }
    out
}

/// Sweeps `target` once, writing `sweep.json` and `sweep.md` into the run's folder.
async fn sweep_once(target: &Target) -> Vec<NodeResult> {
    let dir = calico_conformance::run::evidence_root().join(format!("sweep-{}", target.name));
    let stop = std::future::pending::<()>();
    match sweep::run(target, &sweep::Options::default(), &dir, stop).await {
        Ok((results, _)) => results,
        Err(e) => {
            eprintln!("calico-conformance: the sweep of {}: {e}", target.name);
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    /// A node's case of a claim fails naming the pod and what was observed, passes when the
    /// claim's checks held, and is ignored (never passed) when nothing of it was checked.
    #[test]
    fn a_sweep_case_fails_passes_or_says_why_it_was_not_checked() {
        use super::*;
        use calico_conformance::expect::{Value, eq};
        use calico_conformance::sweep::SweepCheck;
        let check = |claim, pod: Option<&str>, ok: bool| SweepCheck {
            claim,
            pod: pod.map(str::to_string),
            check: eq(
                "the host end's MAC",
                Value::Name("ee:ee:ee:ee:ee:ee".into()),
                Value::Name(
                    if ok {
                        "ee:ee:ee:ee:ee:ee"
                    } else {
                        "02:42:ac:11:00:02"
                    }
                    .into(),
                ),
            ),
        };
        let r = NodeResult {
            node: "k8s-worker-2".into(),
            pods: 1,
            mtu: None,
            checks: vec![
                check("VETH-3", Some("default/c2c"), false),
                check("REC-1", None, true),
            ],
            error: None,
            skipped: None,
            notes: vec!["XN-1 not checked from or to k8s-worker-2: no pod".into()],
            duration: std::time::Duration::ZERO,
        };
        let Verdict::Failed(text) = verdict(&r, "VETH-3") else {
            panic!("VETH-3 did not fail")
        };
        assert!(
            text.starts_with("VETH-3 on k8s-worker-2: default/c2c:"),
            "{text}"
        );
        assert!(text.contains("02:42:ac:11:00:02"), "{text}");
        assert_eq!(verdict(&r, "REC-1"), Verdict::Passed);
        let ignored = format!("{:?}", verdict(&r, "XN-1"));
        assert!(
            ignored.contains("NotChecked(\"XN-1 not checked"),
            "{ignored}"
        );
        let left_out = NodeResult {
            skipped: Some("cordoned (spec.unschedulable)".into()),
            ..r
        };
        let ignored = format!("{:?}", verdict(&left_out, "REC-1"));
        assert!(
            ignored.contains("NotChecked(\"not swept: cordoned"),
            "{ignored}"
        );
        assert_eq!(
            test_name(&TargetKind::Kube, "ip-10-0-1-7.ec2.internal", "HOST-R3"),
            "sweep::kube::ip_10_0_1_7_ec2_internal::host_r3"
        );
    }
}
