//! The sweep (`calico_conformance::sweep`) on labs with one fault each: the fault is reported
//! on exactly the node and pod it is on, every other node passes.

// Imports inside the tests: this file is also compiled (without its tests) into the
// `conformance` test binary.
use calico_conformance::sweep::{self, NodeResult};
use calico_conformance::target::Target;

pub fn sweep_of(target: &Target) -> Vec<NodeResult> {
    let rt = super::runner::runtime().unwrap();
    rt.block_on(sweep::sweep(target, &sweep::Options::default(), |_| {}))
}

pub fn verdicts(results: &[NodeResult]) -> Vec<(String, String)> {
    results
        .iter()
        .map(|r| (r.node.clone(), r.verdict()))
        .collect()
}

pub fn pair(node: &str, verdict: &str) -> (String, String) {
    (node.to_string(), verdict.to_string())
}

/// A correct lab sweeps green in both modes and dual stack; under each fault only its node
/// (and pod) fails, with the claims the fault breaks.
#[test]
fn each_fault_is_reported_on_exactly_its_node_and_pod() {
    use calico_conformance::faults::catalogue;
    use calico_conformance::sweep::NodeStatus;
    let rt = super::runner::runtime().unwrap();
    let cases = [
        (
            "orphan_cali_link",
            [
                pair("k8s-worker-1", "failed: REC-2"),
                pair("k8s-worker-2", "passed"),
            ],
        ),
        // Replies to worker-1 have no route back from worker-2: the ring pair of both breaks,
        // and the route only on worker-2.
        (
            "remote_block_route_missing",
            [
                pair(
                    "k8s-worker-1",
                    "failed: XN-1 (default/c2c-network-demo), MTU-2 (default/c2c-network-demo)",
                ),
                pair(
                    "k8s-worker-2",
                    "failed: REC-3, HOST-R3, XN-1 (default/test-tools-remote), MTU-2 \
                     (default/test-tools-remote)",
                ),
            ],
        ),
        // A path MTU black hole: small echoes pass (XN-1), full-size ones do not, both ways;
        // worker-2's underlay is smaller than its pods assume: its Calico interfaces and the
        // pod's host end are larger than the Calico MTU the underlay gives (MTU-1, VETH-3).
        (
            "underlay_path_black_hole",
            [
                pair("k8s-worker-1", "failed: MTU-2 (default/c2c-network-demo)"),
                pair(
                    "k8s-worker-2",
                    "failed: MTU-1, VETH-3 (default/test-tools-remote), MTU-2 \
                     (default/test-tools-remote)",
                ),
            ],
        ),
        (
            "host_end_mac_not_eeee",
            [
                pair("k8s-worker-1", "failed: REC-1, VETH-3 (default/test-tools)"),
                pair("k8s-worker-2", "passed"),
            ],
        ),
        (
            "ipv6_blackhole_missing",
            [
                pair("k8s-worker-1", "failed: REC-3"),
                pair("k8s-worker-2", "passed"),
            ],
        ),
    ];
    for (name, want) in cases {
        let fault = catalogue().into_iter().find(|f| f.name == name).unwrap();
        let mut target = rt.block_on(Target::open(&fault.target_kind())).unwrap();
        let clean = sweep_of(&target);
        assert!(
            clean.iter().all(|r| r.status() == NodeStatus::Passed),
            "{name}, before: {:?}",
            verdicts(&clean)
        );
        let shared = super::support::Shared::default();
        rt.block_on((fault.apply)(&mut target, &shared.switches))
            .unwrap();
        let results = sweep_of(&target);
        rt.block_on(target.close()).unwrap();
        assert_eq!(verdicts(&results), want, "{name}");
    }
}

/// On a lab with 30 extra pods per node, every pod is judged, not only the article's: an extra
/// pod of the second node with the wrong MAC is named, on its node alone; the report lists
/// the failing node first.
#[test]
fn every_pod_on_every_node_is_judged() {
    use super::reconcile::scale_lab;
    use calico_conformance::sweep::NodeStatus;
    let rt = super::runner::runtime().unwrap();
    let target = rt.block_on(scale_lab(30)).unwrap();
    let results = sweep_of(&target);
    let pods: usize = results.iter().map(|r| r.pods).sum();
    assert_eq!(pods, 63, "{:?}", verdicts(&results));
    assert!(results.iter().all(|r| r.status() == NodeStatus::Passed));
    // An extra pod on the second node (not where the suite's client runs).
    let (far, other) = ("k8s-worker-2", "k8s-worker-1");
    let pod = target
        .facts
        .workloads_on(far)
        .find(|w| w.name.starts_with("bench-"))
        .unwrap()
        .name
        .clone();
    let cali = calico_conformance::calico::host_end_name("default", &pod);
    let host = target.host(far).unwrap();
    rt.block_on(host.run_ok(&["ip", "link", "set", &cali, "address", "02:00:00:00:00:17"]))
        .unwrap();
    let results = sweep_of(&target);
    let dir = calico_conformance::run::evidence_root().join("sweep-test");
    let total = target.facts.nodes.len();
    sweep::write_report(&dir, &target.name, total, &results).unwrap();
    rt.block_on(target.close()).unwrap();
    let want = format!("failed: REC-1, VETH-3 (default/{pod})");
    assert_eq!(
        verdicts(&results),
        [pair(other, "passed"), pair(far, &want)]
    );
    let md = std::fs::read_to_string(dir.join("sweep.md")).unwrap();
    let failing = md.find(&format!("| `{far}` |")).unwrap();
    let passing = md.find(&format!("| `{other}` |")).unwrap();
    assert!(failing < passing, "{md}");
    let line = format!("VETH-3 pod default/{pod}: {cali} MAC: 02:00:00:00:00:17");
    assert!(md.contains(&line), "{md}");
}

/// The lab of `nodes` nodes (a switch between them) with `extra` pods on each beside the
/// article's.
pub fn many_node_lab(
    nodes: usize,
    extra: usize,
    encapsulation: calico_conformance::facts::Encapsulation,
) -> Target {
    let spec = calico_conformance::lab::LabSpec {
        nodes,
        extra_pods_per_node: extra,
        ..calico_conformance::lab::LabSpec::article(encapsulation)
    };
    let rt = super::runner::runtime().unwrap();
    rt.block_on(Target::open_lab(&spec, format!("lab_{nodes}_nodes")))
        .unwrap()
}

/// Six nodes on a switch, five extra pods each, in both modes: green; then one node of many
/// with an orphan cali link, one missing another node's block route, one far pod with the
/// wrong MAC: each reported on exactly that node (and pod), every other node green. Pods on
/// different nodes reach each other across the switch (the lab is really wired).
#[test]
fn faults_on_three_nodes_of_six_are_reported_there_alone() {
    use calico_conformance::calico::host_end_name;
    use calico_conformance::facts::Encapsulation;
    let rt = super::runner::runtime().unwrap();
    for mode in [Encapsulation::None, Encapsulation::Vxlan] {
        let target = many_node_lab(6, 5, mode);
        let clean = sweep_of(&target);
        let failures: Vec<String> = (clean.iter())
            .flat_map(|r| {
                r.failed()
                    .map(|c| format!("{} {:?}: {}", r.node, c.pod, c.check.observed.text))
            })
            .collect();
        assert!(failures.is_empty(), "{mode:?}: {failures:?}");
        let ip = |node: &str, args: &str| {
            let argv: Vec<&str> = std::iter::once("ip").chain(args.split(' ')).collect();
            let host = target.host(node).unwrap();
            rt.block_on(host.run_ok(&argv)).unwrap();
        };
        // Across the switch: node 6's pod answers node 1's.
        let far = target
            .facts
            .workloads_on("k8s-worker-6")
            .next()
            .unwrap()
            .clone();
        let near = target.pod("test-tools").unwrap();
        rt.block_on(near.run_ok(&["ping", "-c", "1", "-W", "2", &far.ip.to_string()]))
            .unwrap();
        // Left behind by a deleted pod: at the pods' MTU, so only REC-2 has cause to fail.
        let orphan = host_end_name("default", "gone-pod");
        let mtu = mode.pod_mtu(1500);
        ip(
            "k8s-worker-3",
            &format!("link add {orphan} mtu {mtu} type veth peer name gone0"),
        );
        ip(
            "k8s-worker-3",
            &format!("link set {orphan} address ee:ee:ee:ee:ee:ee up"),
        );
        let block = target.facts.node("k8s-worker-2").unwrap().blocks[0];
        ip("k8s-worker-5", &format!("route del {block}"));
        // Not the pod the ring pings (the first): a wrong host-end MAC cuts a pod off once its
        // neighbour entry for the gateway is stale, which the ring would report on both sides.
        let pod = target
            .facts
            .workloads_on("k8s-worker-4")
            .last()
            .unwrap()
            .clone();
        let cali = host_end_name(&pod.namespace, &pod.name);
        ip(
            "k8s-worker-4",
            &format!("link set {cali} address 02:00:00:00:00:04"),
        );
        let results = sweep_of(&target);
        rt.block_on(target.close()).unwrap();
        let want: Vec<(String, String)> = (1..=6)
            .map(|n| {
                let node = format!("k8s-worker-{n}");
                let verdict = match n {
                    3 => "failed: REC-2".to_string(),
                    4 => format!("failed: REC-1, VETH-3 ({})", pod.id()),
                    5 => "failed: REC-3, HOST-R3".to_string(),
                    _ => "passed".to_string(),
                };
                (node, verdict)
            })
            .collect();
        assert_eq!(verdicts(&results), want, "{mode:?}");
    }
}
