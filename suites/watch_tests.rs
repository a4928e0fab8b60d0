//! `watch` (CONT-1, CONT-2) on the lab, with faults timed against the watch: each gap is
//! measured within a stated tolerance, on exactly the pairs the fault crosses.

// Imports inside the tests: this file is also compiled (without its tests) into the
// `conformance` test binary.
use calico_conformance::target::Target;
use calico_conformance::watch::{self, Kind, Watched};
use std::time::Duration;

/// The tolerance of every measured gap: two probe intervals (the issue's ± 2 intervals).
pub const TOLERANCE_MS: f64 = 200.0;

/// Watches `target` for `length` while `fault` runs beside it (given the target).
pub fn watched<F>(target: &Target, length: Duration, fault: F) -> Watched
where
    F: for<'a> FnOnce(&'a Target) -> futures::future::BoxFuture<'a, ()>,
{
    let rt = super::runner::runtime().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    rt.block_on(async {
        let opts = watch::Options::default();
        let (w, ()) = futures::join!(
            watch::watch(target, &opts, length, stop, |_, _| {}),
            fault(target)
        );
        w.unwrap()
    })
}

/// `ip <args>` on `node`.
pub async fn ip(target: &Target, node: &str, args: String) {
    let argv: Vec<&str> = std::iter::once("ip").chain(args.split(' ')).collect();
    target.host(node).unwrap().run_ok(&argv).await.unwrap();
}

/// The gaps of `kind` on the pair from `from`.
pub fn gaps_of(w: &Watched, from: &str, kind: Kind) -> Vec<f64> {
    let log = w.pairs.iter().find(|l| l.pair.from == from).unwrap();
    log.gaps(kind, w.duration_ms)
        .iter()
        .map(|g| g.length_ms)
        .collect()
}

pub fn verdict(w: &Watched, claim: &str, from: &str) -> (bool, String) {
    let v = w
        .verdicts()
        .into_iter()
        .find(|v| v.claim == claim && v.pair.from == from)
        .unwrap();
    (v.passed, v.message)
}

fn lab() -> Target {
    use calico_conformance::facts::Encapsulation;
    let rt = super::runner::runtime().unwrap();
    rt.block_on(Target::open(&calico_conformance::target::TargetKind::Lab(
        Encapsulation::None,
    )))
    .unwrap()
}

/// No fault: no gap on either pair, of any kind; CONT-1 and CONT-2 pass; about one probe per
/// interval of each kind.
#[test]
fn cont_1_cont_2_a_watch_without_a_fault_reports_no_gap() {
    let target = lab();
    let w = watched(&target, Duration::from_secs(2), |_| Box::pin(async {}));
    let rt = super::runner::runtime().unwrap();
    rt.block_on(target.close()).unwrap();
    assert_eq!(w.pairs.len(), 2);
    for log in &w.pairs {
        assert!(
            log.all_gaps(w.duration_ms).is_empty(),
            "{}: {:?}",
            log.pair,
            log.all_gaps(w.duration_ms)
        );
        for kind in [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection] {
            let n = log.probes.iter().filter(|p| p.kind == kind).count();
            assert!(
                (15..=21).contains(&n),
                "{} {kind:?}: {n} probes in 2 s",
                log.pair
            );
        }
    }
    assert!(w.verdicts().iter().all(|v| v.passed), "{:?}", w.verdicts());
}

/// k8s-worker-2's route to k8s-worker-1's block removed for 2.0 s and put back: one gap of
/// 2.0 s ± 2 intervals of ICMP and of TCP requests on the cross-node pair, none on the
/// same-node pair; CONT-1 and CONT-2 fail for the cross-node pair only, naming it.
#[test]
fn cont_1_a_route_removed_for_two_seconds_is_one_gap_of_two_seconds_across_nodes_only() {
    let target = lab();
    let block = target.facts.node("k8s-worker-1").unwrap().blocks[0];
    let w = watched(&target, Duration::from_secs(6), |t| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            ip(t, "k8s-worker-2", format!("route del {block}")).await;
            tokio::time::sleep(Duration::from_millis(2000)).await;
            ip(
                t,
                "k8s-worker-2",
                format!("route add {block} via 10.12.22.2 dev ens192 proto bird"),
            )
            .await;
        })
    });
    let rt = super::runner::runtime().unwrap();
    rt.block_on(target.close()).unwrap();
    for kind in [Kind::Icmp, Kind::TcpRequest] {
        let across = gaps_of(&w, "test-tools-remote", kind);
        assert_eq!(across.len(), 1, "{kind:?}: {across:?}");
        assert!(
            (across[0] - 2000.0).abs() <= TOLERANCE_MS,
            "{kind:?}: {across:?}"
        );
        assert_eq!(
            gaps_of(&w, "test-tools", kind),
            Vec::<f64>::new(),
            "{kind:?}"
        );
    }
    let (passed, message) = verdict(&w, "CONT-1", "test-tools-remote");
    assert!(
        !passed && message.contains("test-tools-remote → c2c-network-demo (across nodes)"),
        "{message}"
    );
    assert!(verdict(&w, "CONT-1", "test-tools").0);
    assert!(!verdict(&w, "CONT-2", "test-tools-remote").0);
    assert!(verdict(&w, "CONT-2", "test-tools").0);
}

/// The server's host end set down for 500 ms (and its route put back, as Felix would): one
/// ICMP gap of 0.5 s ± 2 intervals on both pairs (both cross it).
#[test]
fn cont_1_a_host_end_down_for_half_a_second_is_one_gap_of_half_a_second_on_both_pairs() {
    let target = lab();
    let server = target.pod_facts("c2c-network-demo").unwrap().clone();
    let cali = calico_conformance::calico::host_end_name("default", &server.name);
    let w = watched(&target, Duration::from_secs(3), |t| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            ip(t, &server.node, format!("link set {cali} down")).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            ip(t, &server.node, format!("link set {cali} up")).await;
            ip(
                t,
                &server.node,
                format!("route replace {}/32 dev {cali} scope link", server.ip),
            )
            .await;
        })
    });
    let rt = super::runner::runtime().unwrap();
    rt.block_on(target.close()).unwrap();
    for from in ["test-tools", "test-tools-remote"] {
        let gaps = gaps_of(&w, from, Kind::Icmp);
        assert_eq!(gaps.len(), 1, "{from}: {gaps:?}");
        assert!((gaps[0] - 500.0).abs() <= TOLERANCE_MS, "{from}: {gaps:?}");
    }
}

/// A TCP reset of the long-lived connections (an nftables rule in the server's pod that
/// rejects them with a reset, for 300 ms): CONT-2 fails for both pairs naming each and the
/// reset; CONT-1 (ICMP and new requests) still passes.
#[test]
fn cont_2_a_reset_of_the_long_connection_fails_naming_the_pair() {
    assert!(
        calico_conformance::faults::has_tool("nft"),
        "needs nft (Debian nftables) to reset the connections"
    );
    let target = lab();
    let w = watched(&target, Duration::from_secs(2), |t| {
        Box::pin(async move {
            let pod = t.pod("c2c-network-demo").unwrap();
            tokio::time::sleep(Duration::from_millis(800)).await;
            let rules = format!(
                "add table inet ccwatch\nadd chain inet ccwatch in {{ type filter hook input priority 0; }}\nadd rule inet ccwatch in tcp dport {} reject with tcp reset\n",
                watch::ECHO_PORT
            );
            let file = calico_conformance::run::evidence_root().join("watch-reset.nft");
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, rules).unwrap();
            pod.run_ok(&["nft", "-f", &file.to_string_lossy()])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            pod.run_ok(&["nft", "delete", "table", "inet", "ccwatch"])
                .await
                .unwrap();
        })
    });
    let rt = super::runner::runtime().unwrap();
    rt.block_on(target.close()).unwrap();
    for from in ["test-tools", "test-tools-remote"] {
        let (passed, message) = verdict(&w, "CONT-2", from);
        assert!(!passed, "{message}");
        assert!(
            message.contains(&format!("{from} → c2c-network-demo"))
                && message.contains("connection was lost"),
            "{message}"
        );
        let (passed, message) = verdict(&w, "CONT-1", from);
        assert!(passed, "{message}");
    }
}
