//! claims.md "Datastore and dataplane agree": every pod the datastore says Calico networks on
//! a node has its link and route, nothing is left behind by a pod that is gone, and every
//! node's block routes match IPAM. They read the whole node (one `ip -d -j link` and one
//! `ip -j -4 route` per node the run uses, and one `ip -j -6 route` on a dual-stack target),
//! not just the article's pods: IPv4 and IPv6 alike.

use super::host_routes::pod_nodes;
use super::support::*;
use crate::claim;
use calico_conformance::expect::reconcile::{self, BlockRoutes, NodeState};
use calico_conformance::facts::Workload;
use calico_conformance::results::{CaseResult, Status};
use calico_conformance::target::Target;
use std::collections::BTreeMap;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "REC-1",
            "Every pod Calico networks has its dataplane",
            Per::Target,
            rec_1_every_pod_has_its_dataplane,
            needs WorkloadsKnown
        ),
        claim!(
            "REC-2",
            "No orphan dataplane state",
            Per::Target,
            rec_2_no_orphan_dataplane_state,
            needs WorkloadsKnown
        ),
        claim!(
            "REC-3",
            "Every node's routes match IPAM",
            Per::Target,
            rec_3_routes_match_ipam,
            needs WorkloadsKnown
        ),
    ]
}

/// Each node the run uses, observed once for REC-1..3: its links, its IPv4 routes and, on a
/// dual-stack target, its IPv6 routes (kept as evidence).
pub struct NodeStates(Vec<NodeState>);

impl Recording for NodeStates {
    async fn record(cx: &Cx<'_>) -> Result<Self, Failure> {
        let dual = cx.target.facts.dual_stack();
        let observe = |node: String| async move {
            let host = cx.target.host(&node)?;
            let v6 = async {
                match dual {
                    true => cx.routes6(&host).await.map(Some),
                    false => Ok(None),
                }
            };
            let (links, routes, routes6) =
                futures::try_join!(cx.links(&host), cx.routes(&host), v6)?;
            Ok::<_, Failure>(NodeState {
                node,
                links,
                routes,
                routes6,
            })
        };
        let nodes = pod_nodes(cx).into_iter().map(observe);
        Ok(NodeStates(futures::future::try_join_all(nodes).await?))
    }
}

/// The workloads the datastore lists (kept as evidence, one line each).
fn workloads<'a>(cx: &Cx<'a>) -> Result<&'a [Workload], Failure> {
    let all = cx.target.facts.workloads.as_deref().ok_or_else(|| {
        Failure::Harness("the target does not list every workload on its nodes".into())
    })?;
    let lines: Vec<String> = all
        .iter()
        .map(|w| match w.ipv6 {
            Some(v6) => format!("{} {} {} {v6}", w.node, w.id(), w.ip),
            None => format!("{} {} {}", w.node, w.id(), w.ip),
        })
        .collect();
    cx.evidence
        .add("datastore workloads.txt", lines.join("\n") + "\n");
    Ok(all)
}

/// What IPAM says each observed node's block routes must be ([`BlockRoutes::of`]).
fn ipam_routes(
    cx: &Cx<'_>,
    states: &[NodeState],
) -> Result<BTreeMap<String, BlockRoutes>, Failure> {
    let mut out = BTreeMap::new();
    for s in states {
        let here = cx.node_facts(&s.node)?;
        let routes = BlockRoutes::of(&cx.target.facts, here, s.routes6.is_some());
        out.insert(s.node.clone(), routes.map_err(Failure::Harness)?);
    }
    Ok(out)
}

/// REC-1: each pod the datastore puts on a node the run uses has its `cali*` link (VETH-2's
/// name, UP, ee:ee:ee:ee:ee:ee) and `<podIP>/32 dev <that cali>`.
pub async fn rec_1_every_pod_has_its_dataplane(cx: &Cx<'_>) -> Outcome {
    let states = cx.recorded::<NodeStates>().await?;
    cx.expect(reconcile::every_pod_wired(&states.0, workloads(cx)?))
}

/// REC-2: every `cali*` link is a pod's on that node; every /32 route in a pool leads to a live
/// pod's IP on its own `cali*`.
pub async fn rec_2_no_orphan_dataplane_state(cx: &Cx<'_>) -> Outcome {
    let states = cx.recorded::<NodeStates>().await?;
    cx.expect(reconcile::no_orphans(
        &states.0,
        workloads(cx)?,
        &cx.target.facts.pool_cidrs(),
    ))
}

/// REC-3: a blackhole for each own block, exactly one HOST-R3 route for each other node's, no
/// route for a block affine to no node.
pub async fn rec_3_routes_match_ipam(cx: &Cx<'_>) -> Outcome {
    let states = cx.recorded::<NodeStates>().await?;
    let ipam = ipam_routes(cx, &states.0)?;
    cx.expect(reconcile::routes_match_ipam(
        &states.0,
        &ipam,
        &cx.target.facts.pool_cidrs(),
    ))
}

/// The REC claims' scale lab: the article's lab (no encapsulation) with `extra` more pods on
/// each node (`bench-<node>-0`, `bench-<node>-1`, ...; 110 is the kubelet's default maximum per node).
pub async fn scale_lab(extra: usize) -> Result<Target, String> {
    use calico_conformance::facts::Encapsulation;
    use calico_conformance::lab::LabSpec;
    let spec = LabSpec {
        extra_pods_per_node: extra,
        ..LabSpec::article(Encapsulation::None)
    };
    Target::open_lab(&spec, format!("lab_none_{extra}_extra_pods"))
        .await
        .map_err(|e| format!("building the lab with {extra} extra pods per node: {e}"))
}

/// REC-1..3 run once each on `target`, in claim order.
pub async fn run_rec(target: &Target, shared: &Shared) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for claim in claims() {
        out.push(run_case(&claim, target, None, shared).await);
    }
    out
}

/// `cargo run -- rec-scale`: builds the scale lab, runs REC-1..3 `runs` times, and prints
/// each claim's median, fastest and slowest case time, and the build and teardown times.
pub fn time_at_scale(
    rt: &tokio::runtime::Runtime,
    extra: usize,
    runs: usize,
) -> Result<String, String> {
    use std::time::{Duration, Instant};
    let started = Instant::now();
    let target = rt.block_on(scale_lab(extra))?;
    let built = started.elapsed();
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for _ in 0..runs.max(1) {
        // A run's cases share one observation of the nodes (`NodeStates`): each run its own.
        for r in rt.block_on(run_rec(&target, &Shared::default())) {
            if r.status != Status::Passed {
                return Err(r.message.or(r.reason).unwrap_or_default());
            }
            let id = claims().into_iter().find(|c| c.id == r.claim).map(|c| c.id);
            times.entry(id.unwrap_or("?")).or_default().push(r.duration);
        }
    }
    let pods = target.facts.workloads.as_ref().map_or(0, Vec::len);
    let closing = Instant::now();
    rt.block_on(target.close()).map_err(|e| e.to_string())?;
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let mut out = format!(
        "lab with {pods} pods on 2 nodes ({extra} extra per node): built in {}, torn down in {}\n",
        ms(built),
        ms(closing.elapsed())
    );
    for (id, mut v) in times {
        v.sort();
        out += &format!(
            "{id}: median {} (min {}, max {}) over {} runs\n",
            ms(v[v.len() / 2]),
            ms(v[0]),
            ms(v[v.len() - 1]),
            v.len()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(results: &[CaseResult], id: &str) -> CaseResult {
        results
            .iter()
            .find(|r| r.claim == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {results:?}"))
    }

    /// The disagreements a failed case's last check names.
    fn named(r: &CaseResult) -> Vec<String> {
        match r.checks.last().and_then(|c| c.observed.value.clone()) {
            Some(calico_conformance::expect::Value::Disagreements(d)) => {
                d.iter().map(ToString::to_string).collect()
            }
            other => panic!("{}: {other:?}", r.claim),
        }
    }

    async fn ip(target: &Target, node: &str, args: &str) {
        let argv: Vec<&str> = std::iter::once("ip").chain(args.split(' ')).collect();
        target.host(node).unwrap().run_ok(&argv).await.unwrap();
    }

    /// On a lab with 110 extra pods per node (the kubelet's default maximum) beside the
    /// article's, REC-1..3 pass; one orphan link and route among them fails REC-2 naming
    /// exactly those two, one missing route fails REC-1 naming exactly that pod; the lab goes.
    #[test]
    fn rec_claims_at_110_pods_per_node_pass_and_name_the_one_entry_at_fault() {
        let rt = super::super::runner::runtime().unwrap();
        let target = rt.block_on(scale_lab(110)).unwrap();
        assert!(target.facts.workloads.as_ref().unwrap().len() >= 223);
        // Each run observes the nodes afresh (a run's cases share one `NodeStates`).
        let run = || rt.block_on(run_rec(&target, &Shared::default()));
        for r in run() {
            assert_eq!(r.status, Status::Passed, "{r:?}");
        }
        let w1 = "k8s-worker-1";
        let orphan = calico_conformance::calico::host_end_name("default", "gone-pod");
        rt.block_on(async {
            ip(
                &target,
                w1,
                &format!("link add {orphan} type veth peer name gone0"),
            )
            .await;
            ip(
                &target,
                w1,
                &format!("link set {orphan} address ee:ee:ee:ee:ee:ee up"),
            )
            .await;
            ip(
                &target,
                w1,
                &format!("route add 192.168.1.200/32 dev {orphan}"),
            )
            .await;
        });
        let results = run();
        assert_eq!(outcome(&results, "REC-1").status, Status::Passed);
        assert_eq!(outcome(&results, "REC-3").status, Status::Passed);
        let rec2 = outcome(&results, "REC-2");
        assert_eq!(rec2.status, Status::Failed);
        assert_eq!(
            named(&rec2),
            [
                format!("link {orphan} on {w1}: no pod on {w1} has it (112 pods there)"),
                format!(
                    "route 192.168.1.200 dev {orphan} scope link on {w1}: no live pod on {w1} has 192.168.1.200"
                ),
            ]
        );
        let message = rec2.message.unwrap_or_default();
        assert!(
            message.contains(&orphan) && message.contains("192.168.1.200"),
            "{message}"
        );
        let bench = target.facts.pod("bench-2-57").unwrap().clone();
        rt.block_on(async {
            ip(&target, w1, &format!("link del {orphan}")).await;
            ip(&target, &bench.node, &format!("route del {}/32", bench.ip)).await;
        });
        let results = run();
        let rec1 = outcome(&results, "REC-1");
        assert_eq!(rec1.status, Status::Failed);
        let cali = calico_conformance::calico::host_end_name("default", "bench-2-57");
        assert_eq!(
            named(&rec1),
            [format!(
                "pod default/bench-2-57 on {}: no route {} dev {cali} scope link",
                bench.node, bench.ip
            )]
        );
        assert_eq!(outcome(&results, "REC-2").status, Status::Passed);
        rt.block_on(target.close()).unwrap();
    }

    /// Under each fault that targets them, the REC claims' messages name what is at fault:
    /// the pod, the link, the route, the block.
    #[test]
    fn rec_failures_under_faults_name_the_pod_link_route_or_block() {
        use calico_conformance::calico::host_end_name;
        use calico_conformance::faults::catalogue;
        let rt = super::super::runner::runtime().unwrap();
        let orphan = host_end_name("default", "deleted-pod-5d8c9");
        let tools = host_end_name("default", "test-tools");
        let cases: [(&str, &str, Vec<String>); 9] = [
            ("orphan_cali_link", "REC-2", vec![
                format!("link {orphan} on k8s-worker-1: no pod on k8s-worker-1 has it"),
                format!("route 192.168.1.50 dev {orphan} scope link on k8s-worker-1: no live pod"),
            ]),
            ("other_pod_route_missing", "REC-1", vec![format!(
                "pod kube-system/coredns-7db6d8ff4d-lb2kx on k8s-worker-1: no route 192.168.1.20 dev {}",
                host_end_name("kube-system", "coredns-7db6d8ff4d-lb2kx")
            )]),
            ("host_route_missing", "REC-1", vec![format!(
                "pod default/test-tools on k8s-worker-1: no route 192.168.1.12 dev {tools} scope link"
            )]),
            ("unowned_block_route", "REC-3", vec![
                "block 192.168.3.0/26 on k8s-worker-1: affine to no node, yet routed: 192.168.3.0/26 via 10.12.22.3 dev ens192".into(),
            ]),
            ("stale_blackhole_for_remote_block", "REC-3", vec![
                "block 192.168.2.0/26 on k8s-worker-1: affine to k8s-worker-2: ".into(),
                "blackhole 192.168.2.0/26".into(),
            ]),
            ("remote_block_route_missing", "REC-3", vec![
                "block 192.168.1.0/26 on k8s-worker-2: affine to k8s-worker-1, but no route (expected 192.168.1.0/26 via 10.12.22.2 dev ens192)".into(),
            ]),
            // The IPv6 half of a dual-stack lab.
            ("host_route6_missing", "REC-1", vec![format!(
                "pod default/test-tools on k8s-worker-1: no route fd00:10:244::1:c dev {tools}"
            )]),
            ("orphan_route6", "REC-2", vec![format!(
                "route fd00:10:244::1:32 dev {tools} on k8s-worker-1: no live pod on k8s-worker-1 has fd00:10:244::1:32"
            )]),
            ("ipv6_blackhole_missing", "REC-3", vec![
                "block fd00:10:244::1:0/122 on k8s-worker-1: affine to k8s-worker-1, but no blackhole".into(),
            ]),
        ];
        for (name, id, wanted) in cases {
            let fault = catalogue().into_iter().find(|f| f.name == name).unwrap();
            let mut target = rt.block_on(Target::open(&fault.target_kind())).unwrap();
            let shared = Shared::default();
            rt.block_on((fault.apply)(&mut target, &shared.switches))
                .unwrap();
            let results = rt.block_on(run_rec(&target, &shared));
            rt.block_on(target.close()).unwrap();
            let failed = outcome(&results, id);
            assert_eq!(failed.status, Status::Failed, "{name} {id}: {failed:?}");
            let message = failed.message.unwrap_or_default();
            for w in &wanted {
                assert!(
                    message.contains(w.as_str()),
                    "{name} {id}: no `{w}` in\n{message}"
                );
            }
        }
    }
}
