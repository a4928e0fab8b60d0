//! The kube target end to end without a cluster: a lab, served as a cluster by the loopback fake
//! API server (`calico_conformance::kube::fake_cluster`), opened as the kube target — deploy,
//! readiness, facts, discovery — and every claim run as execs in the node probes, which run for
//! real in the lab's node namespaces.

use super::support::Shared;
use calico_conformance::facts::Encapsulation;
use calico_conformance::kube::fake_cluster::{FakeCluster, Install};
use calico_conformance::results::{CaseResult, Status};
use calico_conformance::target::Target;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// What one run over the fake cluster gave.
struct Run {
    results: Vec<CaseResult>,
    /// The execs the fake API server ran.
    execs: Vec<String>,
    /// Every request it got.
    requests: Vec<String>,
}

impl Run {
    fn failed_ids(&self) -> BTreeSet<&str> {
        self.results
            .iter()
            .filter(|r| r.status == Status::Failed)
            .map(|r| r.claim.as_str())
            .collect()
    }

    fn failures(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| r.status == Status::Failed)
            .filter_map(|r| r.message.clone())
            .collect()
    }

    /// `ID [pod]: reason` of every case that did not apply.
    fn not_applicable(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| r.status == Status::NotApplicable)
            .map(|r| {
                format!(
                    "{} [{}]: {}",
                    r.claim,
                    r.pod.clone().unwrap_or_default(),
                    r.reason.clone().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// A run id of its own for each run (the cgroup root and the namespace carry it).
fn run_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "fake-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Builds a lab (with `fault` applied), serves it as a cluster installed as `install`, opens the
/// kube target on it, runs every claim case, and takes everything down.
async fn run_over_lab(install: Install, fault: Option<&str>) -> Run {
    // What the node probe image has, run here for real (`.ci/run` installs them).
    let missing: Vec<&str> = ["tcpdump", "curl", "ping", "ip", "nsenter", "timeout"]
        .into_iter()
        .filter(|t| !calico_conformance::faults::has_tool(t))
        .collect();
    assert!(
        missing.is_empty(),
        "the kube-over-lab tests run the probe's commands on this machine: install {missing:?} \
         (Debian: tcpdump curl iputils-ping iproute2 util-linux coreutils; .ci/run does)"
    );
    let id = run_id();
    // The lab's pods are the run namespace's, so their host ends are named as Calico names them.
    let spec = calico_conformance::lab::LabSpec {
        pod_namespace: calico_conformance::kube::manifests::namespace_name(&id),
        ..calico_conformance::lab::LabSpec::article(Encapsulation::None)
    };
    let mut lab = Target::open_lab(&spec, "lab_none".to_string())
        .await
        .unwrap();
    let shared = Shared::default();
    if let Some(name) = fault {
        let f = calico_conformance::faults::catalogue()
            .into_iter()
            .find(|f| f.name == name)
            .unwrap();
        (f.apply)(&mut lab, &shared.switches).await.unwrap();
    }
    let topology = lab.lab().unwrap().topology.clone();
    let cluster = FakeCluster::over_lab(&topology, &id, install)
        .await
        .unwrap();
    let cgroup_root = cluster.cgroup_root();
    let conn = cluster.server.connection("kind-fake-over-lab");
    let kube = Arc::new(Target::open_kube_on(&conn, &id).await.unwrap());
    let results: Vec<CaseResult> = super::faults::every_case(&kube, &Arc::new(shared))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let Ok(kube) = Arc::try_unwrap(kube) else {
        panic!("the kube target is still shared")
    };
    kube.close().await.unwrap();
    let (execs, requests) = (
        cluster.server.execs(),
        cluster.server.log.lock().unwrap().clone(),
    );
    drop(cluster);
    assert!(
        !cgroup_root.exists(),
        "{} left behind",
        cgroup_root.display()
    );
    lab.close().await.unwrap();
    Run {
        results,
        execs,
        requests,
    }
}

/// The claims that do not apply to this kube target, and why: the IPv6 ones, the fake cluster
/// being IPv4 only (no IPv6 pool: nothing recorded of a dual-stack API server to serve).
const NOT_APPLICABLE: [&str; 6] = ["IP6-1", "IP6-2", "IP6-3", "IP6-4", "IP6-5", "IP6-6"];

fn check_clean_run(run: &Run, install: Install) {
    let failures = run.failures();
    assert!(failures.is_empty(), "{install:?}: {failures:#?}");
    let na = run.not_applicable();
    for line in &na {
        println!("not applicable ({install:?}): {line}");
    }
    let unexpected: Vec<&String> = na
        .iter()
        .filter(|l| !NOT_APPLICABLE.iter().any(|id| l.starts_with(id)))
        .collect();
    assert!(unexpected.is_empty(), "{install:?}: {unexpected:#?}");
    assert!(
        run.results.iter().all(|r| r.status != Status::NotApplicable
            || r.reason.as_deref().is_some_and(|w| !w.is_empty())),
        "a case not applicable without a reason"
    );
    // The claims ran as execs: discovery, observations and traffic in the probes.
    assert!(
        run.execs.iter().any(|e| e.contains("nsenter --net=/proc/")),
        "{:?}",
        run.execs
    );
    assert!(run.execs.iter().any(|e| e.contains("tcpdump")));
    assert!(run.execs.iter().any(|e| e.contains("curl")));
    assert!(run.execs.iter().any(|e| e.contains("ping")));
    // The Installation was asked for and answered as the install has it.
    assert!(
        run.requests
            .iter()
            .any(|r| r == "GET /apis/operator.tigera.io/v1/installations/default"),
        "{:?}",
        run.requests
    );
}

/// A manifest install (no operator group at all: its Installation is the recorded plain-text
/// 404) opens and runs every claim; none fails; the fake ran the claims' commands as execs.
#[test]
fn a_manifest_install_opens_and_runs_every_claim_over_the_fake_api() {
    let rt = super::runner::runtime().unwrap();
    let run = rt.block_on(run_over_lab(Install::Manifest, None));
    check_clean_run(&run, Install::Manifest);
}

/// The operator's group is served but holds no Installation `default` (the recorded
/// `NotFound`): the same.
#[test]
fn an_operator_group_without_an_installation_opens_and_runs_every_claim_over_the_fake_api() {
    let rt = super::runner::runtime().unwrap();
    let run = rt.block_on(run_over_lab(Install::OperatorWithoutInstallation, None));
    check_clean_run(&run, Install::OperatorWithoutInstallation);
}

/// The claims that fail under `fault` on the lab itself: its row of the committed
/// `docs/fault-matrix.md` (which `cargo test faults` keeps current).
fn failing_in_the_matrix(fault: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(super::faults::matrix_path()).unwrap();
    let cells = |prefix: &str| -> Vec<String> {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let ids = cells("| fault |");
    let row = cells(&format!("| `{fault}` |"));
    assert_eq!(ids.len(), row.len());
    ids.into_iter()
        .zip(row)
        .filter(|(_, c)| c == "FAIL")
        .map(|(id, _)| id)
        .collect()
}

/// The same run can fail: with `host_end_mac_not_eeee` applied to the lab under the fake
/// cluster, the kube target fails exactly the claims the lab itself fails under it (its row of
/// the fault matrix: the claims the fault lists, and ARP-2, which the real cluster of issue 9
/// failed too under the same miswiring), and the ones it spares pass.
#[test]
fn a_lab_fault_under_the_fake_api_fails_exactly_the_claims_it_lists() {
    let fault = calico_conformance::faults::catalogue()
        .into_iter()
        .find(|f| f.name == "host_end_mac_not_eeee")
        .unwrap();
    let rt = super::runner::runtime().unwrap();
    let run = rt.block_on(run_over_lab(Install::Manifest, Some(fault.name)));
    let failed: BTreeSet<String> = run.failed_ids().into_iter().map(String::from).collect();
    assert_eq!(
        failed,
        failing_in_the_matrix(fault.name),
        "{:#?}",
        run.failures()
    );
    for listed in fault.fails {
        assert!(failed.contains(*listed), "{listed} did not fail");
    }
    for spared in fault.spares {
        assert!(
            run.results
                .iter()
                .any(|r| r.claim == *spared && r.status == Status::Passed),
            "{spared} did not pass"
        );
    }
}

/// A sweep of a three-node lab served by the fake API with the nodes `not_ready` NotReady and
/// the probes of `not_starting` never Ready (pods may take 1 s), opened with a probe on every
/// node: the results, the third node's name, the execs and the requests the fake server got.
async fn sweep_over_fake_cluster(
    not_ready: &[usize],
    not_starting: &[usize],
    pinger_not_starting: &[usize],
    user_pod_on: &[usize],
) -> (
    Vec<calico_conformance::sweep::NodeResult>,
    String,
    Vec<String>,
    Vec<String>,
) {
    use calico_conformance::sweep;
    let id = run_id();
    let spec = calico_conformance::lab::LabSpec {
        pod_namespace: calico_conformance::kube::manifests::namespace_name(&id),
        nodes: 3,
        pingers: true,
        ..calico_conformance::lab::LabSpec::article(Encapsulation::None)
    };
    let lab = Target::open_lab(&spec, "lab_none".to_string())
        .await
        .unwrap();
    let topology = lab.lab().unwrap().topology.clone();
    let names = |at: &[usize]| -> Vec<&str> {
        at.iter()
            .map(|&i| topology.nodes[i].name.as_str())
            .collect()
    };
    let (not_ready, probe_not_starting) = (names(not_ready), names(not_starting));
    let (pinger_not_starting, user_pod_on) = (names(pinger_not_starting), names(user_pod_on));
    let trouble = calico_conformance::kube::fake_cluster::Trouble {
        not_ready: &not_ready,
        probe_not_starting: &probe_not_starting,
        pinger_not_starting: &pinger_not_starting,
        user_pod_on: &user_pod_on,
    };
    let cluster = FakeCluster::over_lab_with(&topology, &id, Install::Manifest, &trouble)
        .await
        .unwrap();
    let mut conn = cluster.server.connection("kind-fake-over-lab");
    conn.ready_timeout = Some(std::time::Duration::from_secs(1));
    let every = calico_conformance::kube::Scope::EveryNode;
    let kube = Target::open_kube_scoped_on(&conn, &id, every)
        .await
        .unwrap();
    let results = sweep::sweep(&kube, &sweep::Options::default(), |_| {}).await;
    kube.close().await.unwrap();
    let execs = cluster.server.execs();
    let requests = cluster.server.log.lock().unwrap().clone();
    drop(cluster);
    lab.close().await.unwrap();
    (results, topology.nodes[2].name.clone(), execs, requests)
}

/// `sweep` on a cluster, through the kube code paths (probes on every Ready node, the pods of
/// each node listed, every command an exec in a probe): a three-node lab served by the fake
/// API. The third node runs none of the article's pods: it gets its probe, its per-node checks
/// and a pinger (applied by the suite, entered from the probe), so the ring of XN-1 and MTU-2
/// runs over all three nodes, each a source and a destination, with no note.
#[test]
fn the_sweep_of_a_cluster_puts_a_probe_on_every_node_and_checks_each() {
    use calico_conformance::sweep::NodeStatus;
    let rt = super::runner::runtime().unwrap();
    rt.block_on(async {
        let (results, third, execs, requests) = sweep_over_fake_cluster(&[], &[], &[], &[]).await;
        let third = &third;
        let rows: Vec<(String, NodeStatus, usize)> = (results.iter())
            .map(|r| (r.node.clone(), r.status(), r.checks.len()))
            .collect();
        assert_eq!(results.len(), 3, "{rows:?}");
        for r in &results {
            let failed: Vec<_> = r.failed().map(|c| &c.check.observed.text).collect();
            assert_eq!(r.status(), NodeStatus::Passed, "{}: {failed:?}", r.node);
            for claim in ["XN-1", "MTU-2", "MTU-1", "REC-2"] {
                let has = r.checks.iter().any(|c| c.claim == claim);
                assert!(has, "{} has no {claim}: {:?}", r.node, r.notes);
            }
            assert_eq!(r.notes, Vec::<String>::new(), "{}", r.node);
        }
        let pinger = calico_conformance::calico::pinger_name(third);
        let from_third = &results.iter().find(|r| &r.node == third).unwrap().checks;
        let xn1 = from_third.iter().find(|c| c.claim == "XN-1").unwrap();
        assert!(
            xn1.pod.as_ref().unwrap().ends_with(&pinger),
            "{:?}",
            xn1.pod
        );
        let texts: Vec<String> = (results.iter().flat_map(|r| &r.checks))
            .filter(|c| c.claim == "XN-1" && !c.pod.as_ref().unwrap().ends_with(&pinger))
            .map(|c| format!("{:?}", c.check))
            .collect();
        assert!(
            texts.iter().any(|t| t.contains(&pinger)),
            "no XN-1 to {pinger}: {texts:#?}"
        );
        let applied =
            |r: &&String| r.starts_with("PATCH ") && r.contains(&format!("/pods/{pinger}"));
        assert!(requests.iter().any(|r| applied(&r)), "{pinger} not applied");
        let probe = calico_conformance::kube::manifests::probe_name(third);
        assert!(
            execs.iter().any(|e| e.contains(&probe)),
            "no exec in {probe}: {execs:#?}"
        );
    });
}

/// A NotReady node is left out of the sweep, saying why: no probe is made on it, it is
/// reported (`not swept`), and it fails nothing; the other nodes are swept.
#[test]
fn the_sweep_of_a_cluster_reports_a_not_ready_node_without_failing_it() {
    use calico_conformance::sweep::NodeStatus;
    let rt = super::runner::runtime().unwrap();
    rt.block_on(async {
        let (results, third, _, requests) = sweep_over_fake_cluster(&[2], &[], &[], &[]).await;
        let statuses: Vec<(String, NodeStatus)> =
            results.iter().map(|r| (r.node.clone(), r.status())).collect();
        assert_eq!(
            statuses,
            [
                ("k8s-worker-1".to_string(), NodeStatus::Passed),
                ("k8s-worker-2".to_string(), NodeStatus::Passed),
                (third.clone(), NodeStatus::Skipped),
            ]
        );
        let skipped = results.iter().find(|r| r.node == third).unwrap();
        assert_eq!(
            skipped.verdict(),
            "not swept: NotReady (Ready=Unknown): NodeStatusUnknown: Kubelet stopped posting node status."
        );
        let probe = calico_conformance::kube::manifests::probe_name(&third);
        let made: Vec<&String> = requests.iter().filter(|r| r.contains(&probe)).collect();
        assert!(made.is_empty(), "a probe on a NotReady node: {made:?}");
    });
}

/// A probe that never becomes Ready (the recorded `ErrImagePull` pod, as the third node's
/// probe) fails only its node, with the pod's state and its events; the article's two nodes
/// are swept and pass.
#[test]
fn the_sweep_of_a_cluster_fails_only_the_node_whose_probe_does_not_start() {
    use calico_conformance::sweep::NodeStatus;
    let rt = super::runner::runtime().unwrap();
    rt.block_on(async {
        let (results, third, execs, _) = sweep_over_fake_cluster(&[], &[2], &[], &[]).await;
        let statuses: Vec<(String, NodeStatus)> = results
            .iter()
            .map(|r| (r.node.clone(), r.status()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("k8s-worker-1".to_string(), NodeStatus::Passed),
                ("k8s-worker-2".to_string(), NodeStatus::Passed),
                (third.clone(), NodeStatus::Error),
            ]
        );
        let verdict = results.iter().find(|r| r.node == third).unwrap().verdict();
        let probe = calico_conformance::kube::manifests::probe_name(&third);
        for says in [
            probe.as_str(),
            "did not become Ready",
            "ErrImagePull",
            "latest events",
        ] {
            assert!(verdict.contains(says), "{says:?} not in {verdict}");
        }
        let into: Vec<&String> = execs.iter().filter(|e| e.contains(&probe)).collect();
        assert!(
            into.is_empty(),
            "an exec into a probe that never started: {into:?}"
        );
    });
}

/// A pinger that never becomes Ready (the recorded `ErrImagePull` pod as the third node's
/// pinger) fails XN-1 on that node, saying why, though a user's pod named `test-tools` runs
/// there (in `default`: the suite never pings from a user's pod, nor takes it for its own
/// `test-tools` on another node); the ring runs between the other two, which pass. (The lab
/// still has the pinger's veth on the third node, which the datastore does not know then, so
/// that node's REC checks may fail too: they are not what this test is about.)
#[test]
fn the_sweep_of_a_cluster_fails_xn_1_on_a_node_whose_pinger_does_not_start() {
    use calico_conformance::sweep::NodeStatus;
    let rt = super::runner::runtime().unwrap();
    rt.block_on(async {
        let (results, third, _, _) = sweep_over_fake_cluster(&[], &[], &[2], &[2]).await;
        let status = |n: &str| results.iter().find(|r| r.node == n).unwrap().status();
        assert_eq!(status("k8s-worker-1"), NodeStatus::Passed);
        assert_eq!(status("k8s-worker-2"), NodeStatus::Passed);
        assert_eq!(status(&third), NodeStatus::Failed);
        let failed = &results.iter().find(|r| r.node == third).unwrap();
        let xn1: Vec<String> = (failed.failed())
            .filter(|c| c.claim == "XN-1")
            .map(|c| c.check.observed.text.clone())
            .collect();
        assert!(
            matches!(xn1.as_slice(), [t] if t.contains("did not start") && t.contains("ErrImagePull")),
            "{xn1:?}"
        );
        assert!(failed.notes.iter().all(|n| !n.starts_with("XN-1")), "{:?}", failed.notes);
    });
}

/// The network namespaces of `lab`'s pods, as `/proc/<pid>/ns/net` links read (`net:[N]`).
fn pod_namespaces(lab: &Target) -> Vec<std::path::PathBuf> {
    let pods: Vec<std::path::PathBuf> = ["c2c-network-demo", "test-tools", "test-tools-remote"]
        .into_iter()
        .filter_map(|p| lab.pod(p).ok())
        .filter_map(|p| p.netns().and_then(|n| std::fs::read_link(n).ok()))
        .collect();
    assert_eq!(pods.len(), 3, "the lab's pods' namespaces: {pods:?}");
    pods
}

/// The watch agents running in the namespaces `pods` (other tests' labs have namespaces of
/// their own): each as its `/proc` entry and arguments.
fn watch_agents(pods: &[std::path::PathBuf]) -> Vec<String> {
    let netns_of = |path: &std::path::Path| std::fs::read_link(path).ok();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let words: Vec<String> = (cmdline.split(|b| *b == 0))
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let in_lab = netns_of(&entry.path().join("ns/net")).is_some_and(|n| pods.contains(&n));
        if in_lab && words.iter().any(|w| w.contains("def long_loop(")) {
            let tail = words.iter().skip(3).cloned().collect::<Vec<_>>();
            found.push(format!("{}: {}", entry.path().display(), tail.join(" ")));
        }
    }
    found
}

/// Kills (SIGKILL) the watch agents running in the namespaces `pods`, as a node probe's
/// restart or a cut exec ends them; their PIDs.
fn kill_watch_agents(pods: &[std::path::PathBuf]) -> Vec<String> {
    let agents: Vec<String> = (watch_agents(pods).into_iter())
        .filter_map(|a| {
            a.strip_prefix("/proc/")?
                .split(':')
                .next()
                .map(String::from)
        })
        .collect();
    for pid in &agents {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    agents
}

/// The article's lab, served as a cluster by the fake API and opened as the kube target.
async fn kube_over_a_lab() -> (Target, FakeCluster, Target) {
    let id = run_id();
    let spec = calico_conformance::lab::LabSpec {
        pod_namespace: calico_conformance::kube::manifests::namespace_name(&id),
        ..calico_conformance::lab::LabSpec::article(Encapsulation::None)
    };
    let lab = Target::open_lab(&spec, "lab_none".to_string())
        .await
        .unwrap();
    let topology = lab.lab().unwrap().topology.clone();
    let cluster = FakeCluster::over_lab(&topology, &id, Install::Manifest)
        .await
        .unwrap();
    let conn = cluster.server.connection("kind-fake-over-lab");
    let kube = Target::open_kube_on(&conn, &id).await.unwrap();
    (lab, cluster, kube)
}

/// What a watch over a fake cluster left: the watch, what its fault returned, and the execs
/// and requests the fake server was sent.
struct OverFake<T> {
    w: calico_conformance::watch::Watched,
    fault: T,
    execs: Vec<String>,
    requests: Vec<String>,
}

/// Watches the kube target over a fake cluster over the article's lab for `length`, `fault`
/// running beside it (given the target, the fake cluster and the lab's pod namespaces); then
/// closes both targets, drops the fake cluster and checks that no watch agent outlived it.
fn watched_over_fake<F, T>(name: &str, length: std::time::Duration, fault: F) -> OverFake<T>
where
    F: for<'a> FnOnce(
        &'a Target,
        Arc<FakeCluster>,
        Vec<std::path::PathBuf>,
    ) -> futures::future::BoxFuture<'a, T>,
{
    let rt = super::runner::runtime().unwrap();
    let (lab, cluster, kube) = rt.block_on(kube_over_a_lab());
    let cluster = Arc::new(cluster);
    let (faulting, pods) = (cluster.clone(), pod_namespaces(&lab));
    let (w, fault) =
        super::watch_tests::watched(&kube, name, length, move |t| fault(t, faulting, pods));
    let execs = cluster.server.execs();
    let requests = cluster.server.log.lock().unwrap().clone();
    rt.block_on(kube.close()).unwrap();
    drop(cluster);
    let left = watch_agents(&pod_namespaces(&lab));
    rt.block_on(lab.close()).unwrap();
    assert!(left.is_empty(), "watch agents left running: {left:#?}");
    OverFake {
        w,
        fault,
        execs,
        requests,
    }
}

/// `watch` on a cluster, through the kube code paths: the suite cannot open sockets in a
/// cluster's pods, so the watch agent (python3 in the node probe, entered into each client
/// pod's namespace; its echo server in the server pod's) probes there, every command an exec
/// over the fake server's websocket. k8s-worker-2's route to k8s-worker-1's block removed for
/// 1.5 s (through an exec in k8s-worker-2's probe) and put back: one ICMP gap and one TCP
/// request gap on the cross-node pair, each as long as the outage ± 2 intervals, the long
/// connection stalled at least as long; no gap of any kind on the same-node pair, and probes of
/// every kind answered on both. No agent outlives the watch.
#[test]
fn cont_1_watch_on_a_cluster_measures_a_route_flap_on_the_pair_that_crosses_it_only() {
    use super::watch_tests::{Outage, TOLERANCE_MS, gaps_of, ip};
    use calico_conformance::watch::Kind;
    use std::time::Duration;
    let length = Duration::from_secs(5);
    let run = watched_over_fake("kube-route", length, |t, _, pods| {
        Box::pin(async move {
            let block = t.facts.node("k8s-worker-1").unwrap().blocks[0];
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // Where they run: the echo server and one prober per pair, in the lab's pods.
            let running = watch_agents(&pods);
            let del = ip(t, "k8s-worker-2", format!("route del {block}"));
            let back = format!("route add {block} via 10.12.22.2 dev ens192 proto bird");
            let add = ip(t, "k8s-worker-2", back);
            (
                Outage::of(del, Duration::from_millis(1500), add).await,
                running,
            )
        })
    });
    let OverFake {
        w,
        fault: (outage, running),
        execs,
        ..
    } = run;
    assert_eq!(running.len(), 3, "{running:#?}");
    assert!(
        (execs.iter()).any(|e| e.contains("python3 -c") && e.contains(" serve 192.168.")),
        "{execs:#?}"
    );
    for kind in [Kind::Icmp, Kind::TcpRequest] {
        let across = gaps_of(&w, "test-tools-remote", kind);
        assert_eq!(across.len(), 1, "{kind:?}: {across:?}");
        assert!(
            outage.measured_by(across[0]),
            "{kind:?}: {across:?}, {outage:?} ± {TOLERANCE_MS} ms"
        );
    }
    let stalled = gaps_of(&w, "test-tools-remote", Kind::LongConnection);
    assert!(
        stalled
            .iter()
            .any(|g| *g >= outage.at_least_ms - TOLERANCE_MS),
        "{stalled:?}, {outage:?}"
    );
    for log in &w.pairs {
        for kind in [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection] {
            let answered = log.kind(kind).answered;
            assert!(answered >= 10, "{} {kind:?}: {answered} answered", log.pair);
        }
    }
    let same = w
        .pairs
        .iter()
        .find(|l| l.pair.from == "test-tools")
        .unwrap();
    assert!(
        same.all_gaps(w.duration_ms).is_empty(),
        "{:?}",
        same.all_gaps(w.duration_ms)
    );
}

/// `watch` on a cluster whose server pod has its echo port taken already: the watch does not
/// start, and says which pod, which command and why (the agent's own words), with no agent
/// left behind.
#[test]
fn watch_on_a_cluster_whose_echo_port_is_taken_says_which_pod_and_why() {
    let rt = super::runner::runtime().unwrap();
    let (lab, cluster, kube) = rt.block_on(kube_over_a_lab());
    let server = lab.pod("c2c-network-demo").unwrap();
    let taken = calico_conformance::netns::in_netns(server.netns().unwrap(), || {
        std::net::TcpListener::bind(("0.0.0.0", calico_conformance::watch::ECHO_PORT))
            .map_err(|e| calico_conformance::error::Error::io("binding", e))
    })
    .unwrap();
    let opts = calico_conformance::watch::Options {
        dir: calico_conformance::run::evidence_root().join("watch-kube-port-taken"),
        ..Default::default()
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let length = std::time::Duration::from_secs(3);
    let watched = rt.block_on(calico_conformance::watch::watch(
        &kube,
        &opts,
        length,
        stop,
        |_, _| {},
    ));
    drop(taken);
    rt.block_on(kube.close()).unwrap();
    drop(cluster);
    let left = watch_agents(&pod_namespaces(&lab));
    rt.block_on(lab.close()).unwrap();
    let Err(e) = watched else {
        panic!("the watch ran with its echo port taken")
    };
    let message = e.to_string();
    for part in [
        "the watch's echo server: ",
        "/c2c-network-demo: `python3 -c <a script of ",
        " serve 192.168.",
        "ended before it was ready",
        ":7777: [Errno 98] Address already in use",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    assert!(left.is_empty(), "watch agents left running: {left:#?}");
}

/// `watch` on a cluster whose agent for one pair dies mid-watch (as when its node probe's
/// container restarts and the exec ends with it): the watch starts a new agent, so that pair
/// has one gap of each kind, at least one probe lost in it, probes answered again after it, and the
/// long connection counted lost and re-attached (CONT-2 fails naming the agent's end); the
/// other pair has no gap.
#[test]
fn watch_on_a_cluster_re_attaches_a_pair_whose_agent_died() {
    use super::watch_tests::{gaps_of, verdict};
    use calico_conformance::watch::Kind;
    use std::time::Duration;
    let length = Duration::from_secs(5);
    let run = watched_over_fake("kube-agent-died", length, |_, _, pods| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            kill_watch_agents(&pods[2..])
        })
    });
    let OverFake {
        w, fault: killed, ..
    } = run;
    assert_eq!(killed.len(), 1, "test-tools-remote's agents: {killed:?}");
    let log = (w.pairs.iter())
        .find(|l| l.pair.from == "test-tools-remote")
        .unwrap();
    for kind in [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection] {
        let gaps = gaps_of(&w, "test-tools-remote", kind);
        assert_eq!(gaps.len(), 1, "{kind:?}: {gaps:?}");
        let closed = &log.kind(kind).gaps;
        assert_eq!(
            closed.len(),
            1,
            "{kind:?}: not answered again after the gap"
        );
        // At least one probe lost: a gap of one is one interval, give or take the clock's jitter.
        assert!(closed[0].lost >= 1, "{kind:?}: {closed:?}");
        let why = closed[0].first_error.clone().unwrap_or_default();
        assert!(
            why.contains("the watch agent ended before the watch"),
            "{why}"
        );
        assert_eq!(
            gaps_of(&w, "test-tools", kind),
            Vec::<f64>::new(),
            "{kind:?}"
        );
    }
    assert!(log.reconnects >= 1, "{log:?}");
    let (passed, message) = verdict(&w, "CONT-2", "test-tools-remote");
    assert!(
        !passed && message.contains("the watch agent ended"),
        "{message}"
    );
    assert!(verdict(&w, "CONT-2", "test-tools").0);
}

/// `watch` on a cluster whose client pod's container restarts mid-watch (a new init process in
/// the pod's sandbox, which stays, and a new container ID), with that pair's agent ending then
/// (as when the node probe restarts too): the old process is gone, so a new agent cannot enter
/// the pod through it. The watch reads the pod again, finds its new container on the node and
/// starts the agent there: one gap of each kind on that pair, answered again after it; none on
/// the other pair; and none when the pods are looked for again later (same namespace, so the
/// agents stay).
#[test]
fn watch_on_a_cluster_re_attaches_a_pod_whose_container_restarted() {
    use super::watch_tests::gaps_of;
    use calico_conformance::watch::Kind;
    use std::time::Duration;
    let length = Duration::from_secs(8);
    let run = watched_over_fake("kube-container-restarted", length, |_, cluster, pods| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            cluster.restart_container("test-tools-remote").unwrap();
            kill_watch_agents(&pods[2..])
        })
    });
    let OverFake {
        w,
        fault: killed,
        execs,
        requests,
    } = run;
    assert_eq!(killed.len(), 1, "test-tools-remote's agents: {killed:?}");
    let log = (w.pairs.iter())
        .find(|l| l.pair.from == "test-tools-remote")
        .unwrap();
    for kind in [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection] {
        let gaps = gaps_of(&w, "test-tools-remote", kind);
        assert_eq!(gaps.len(), 1, "{kind:?}: {gaps:?}");
        let closed = &log.kind(kind).gaps;
        assert_eq!(closed.len(), 1, "{kind:?}: not answered again");
        assert!(closed[0].lost >= 1, "{kind:?}: {closed:?}");
        let answered_after = (super::watch_tests::probes_of(&w, "test-tools-remote", kind))
            .iter()
            .filter(|p| p["sent_ms"].as_f64().unwrap_or(0.0) > 4000.0 && !p["rtt_ms"].is_null())
            .count();
        assert!(
            answered_after >= 20,
            "{kind:?}: {answered_after} answered after 4 s"
        );
        let same = gaps_of(&w, "test-tools", kind);
        assert_eq!(same, Vec::<f64>::new(), "{kind:?} on the same-node pair");
    }
    // The pod read again after the restart, and entered through its new container.
    let reads = (requests.iter())
        .filter(|r| r.starts_with("GET ") && r.ends_with("/pods/test-tools-remote"))
        .count();
    assert!(reads >= 3, "GETs of test-tools-remote: {reads}");
    let agent_starts = (execs.iter())
        .filter(|e| e.contains("python3 -c") && e.split_whitespace().nth_back(4) == Some("probe"))
        .map(|e| {
            e.split_whitespace()
                .find(|w| w.starts_with("--net="))
                .unwrap_or("")
                .to_string()
        })
        .collect::<BTreeSet<_>>();
    // test-tools', test-tools-remote's first, and its second through its new container (the
    // first agent's process, tried first, is gone).
    assert_eq!(agent_starts.len(), 3, "{agent_starts:#?}");
}

/// `watch` on a cluster whose echo server (the agent in the server pod) ends mid-watch: it is
/// started again, so each pair has one TCP request gap, answered again after it; each long
/// connection is lost and re-attached (CONT-2 fails on both, naming the reset); ICMP, which
/// the echo server does not answer, has no gap.
#[test]
fn watch_on_a_cluster_starts_its_echo_server_again_when_it_ends() {
    use super::watch_tests::{gaps_of, verdict};
    use calico_conformance::watch::Kind;
    use std::time::Duration;
    let length = Duration::from_secs(5);
    let run = watched_over_fake("kube-echo-died", length, |_, _, pods| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            kill_watch_agents(&pods[..1])
        })
    });
    let OverFake {
        w, fault: killed, ..
    } = run;
    assert_eq!(killed.len(), 1, "the echo server: {killed:?}");
    for from in ["test-tools", "test-tools-remote"] {
        let log = w.pairs.iter().find(|l| l.pair.from == from).unwrap();
        let requests = gaps_of(&w, from, Kind::TcpRequest);
        assert_eq!(requests.len(), 1, "{from}: {requests:?}");
        assert_eq!(
            log.kind(Kind::TcpRequest).gaps.len(),
            1,
            "{from}: not answered again"
        );
        assert_eq!(gaps_of(&w, from, Kind::Icmp), Vec::<f64>::new(), "{from}");
        assert!(log.reconnects >= 1, "{from}: {log:?}");
        assert!(
            log.kind(Kind::LongConnection).answered >= 20,
            "{from}: {log:?}"
        );
        let (passed, message) = verdict(&w, "CONT-2", from);
        assert!(!passed, "{from}: {message}");
    }
}

/// `watch` on a cluster whose client pod is made again mid-watch under its name (a new pod UID,
/// a new sandbox: a new network namespace, its `eth0` moved there with its IP): the running
/// agent is left in the old namespace, with no interface to probe through. When the watch next
/// looks for the pod (every 5 s) it finds the new namespace and starts the agent there: that
/// pair has one gap of each kind, answered again after it, and its connection counts as lost
/// naming the pod made again (CONT-2); the other pair has no gap.
#[test]
fn watch_on_a_cluster_moves_to_a_pod_made_again() {
    use super::watch_tests::{gaps_of, verdict};
    use calico_conformance::watch::{Kind, LOOK_AGAIN};
    use std::time::Duration;
    let length = LOOK_AGAIN + Duration::from_secs(3);
    let run = watched_over_fake("kube-pod-made-again", length, |_, cluster, _| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            cluster.make_pod_again("test-tools-remote").unwrap();
        })
    });
    let w = run.w;
    let log = (w.pairs.iter())
        .find(|l| l.pair.from == "test-tools-remote")
        .unwrap();
    for kind in [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection] {
        let gaps = gaps_of(&w, "test-tools-remote", kind);
        assert_eq!(gaps.len(), 1, "{kind:?}: {gaps:?}");
        assert_eq!(log.kind(kind).gaps.len(), 1, "{kind:?}: not answered again");
        let same = gaps_of(&w, "test-tools", kind);
        assert_eq!(same, Vec::<f64>::new(), "{kind:?} on the same-node pair");
    }
    let (passed, message) = verdict(&w, "CONT-2", "test-tools-remote");
    assert!(!passed && message.contains("was made again"), "{message}");
    assert!(verdict(&w, "CONT-2", "test-tools").0);
}

/// `watch` on a cluster whose server pod is made again mid-watch with another IP (a new pod
/// UID, a new network namespace, an address of its node's block, the node's /32 route moved
/// to it): the echo server's agent is left in the old namespace and the clients probe the old
/// IP, which no longer answers. When the watch next looks for the server (every 5 s) it starts
/// the echo server in the new namespace and the clients probe the new IP: each pair has one gap
/// of each kind, answered again after it, and CONT-2 fails on both naming the new IP.
#[test]
fn watch_on_a_cluster_follows_a_server_pod_made_again_with_another_ip() {
    use super::watch_tests::{gaps_of, verdict};
    use calico_conformance::watch::{Kind, LOOK_AGAIN};
    use std::time::Duration;
    let length = LOOK_AGAIN + Duration::from_secs(4);
    let run = watched_over_fake("kube-server-made-again", length, |t, cluster, _| {
        Box::pin(async move {
            let server = t.pod_facts("c2c-network-demo").unwrap().clone();
            let block = t.facts.node(&server.node).unwrap().blocks[0];
            let new_ip = (block
                .hosts()
                .find(|ip| *ip != server.ip && ip.octets()[3] >= 50))
            .unwrap();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            cluster
                .make_pod_again_at("c2c-network-demo", Some(new_ip))
                .unwrap();
            // The run's pods as listed now: the server at its new IP.
            let client = cluster.server.connection("kind-fake-over-lab").client;
            let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(
                client,
                &cluster.namespace,
            );
            let listed = pods.list(&Default::default()).await.unwrap();
            let ip_of = |p: &k8s_openapi::api::core::v1::Pod| {
                (p.metadata.name.as_deref() == Some("c2c-network-demo"))
                    .then(|| p.status.as_ref()?.pod_ip.clone())
                    .flatten()
            };
            (new_ip, listed.items.iter().find_map(ip_of))
        })
    });
    let (w, (new_ip, listed)) = (run.w, run.fault);
    assert_eq!(listed, Some(new_ip.to_string()), "the server as listed");
    for from in ["test-tools", "test-tools-remote"] {
        let log = w.pairs.iter().find(|l| l.pair.from == from).unwrap();
        for kind in [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection] {
            let gaps = gaps_of(&w, from, kind);
            assert_eq!(gaps.len(), 1, "{from} {kind:?}: {gaps:?}");
            let closed = log.kind(kind).gaps.len();
            assert_eq!(closed, 1, "{from} {kind:?}: not answered again");
        }
        let (passed, message) = verdict(&w, "CONT-2", from);
        let moved = format!("the server pod is at {new_ip} now");
        assert!(!passed && message.contains(&moved), "{from}: {message}");
    }
}
