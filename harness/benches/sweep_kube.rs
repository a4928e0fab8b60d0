//! The sweep at scale through the kube code paths: a lab of many nodes (N extra pods on each
//! beside the article's) served as a cluster by the fake API server over a lab
//! (`kube::fake_cluster`), opened as `CALICO_TARGET=kube cargo run -- sweep` opens a cluster
//! (a probe pod applied and waited for on every Ready node, the nodes and their pods listed
//! through the API, one pod list per node), then swept: every command is an exec in a node's
//! probe, over the fake server's websocket, into the lab node's namespace.
//!
//! What this measures is the suite's own cost on this machine beside a fake API server (in
//! the same process) and the lab's commands; a real API server, kubelet and network add their
//! own latency to each exec, which is not measured here.
//!
//! Run: `cargo bench --bench sweep_kube` (root). Runs per size: `SWEEP_BENCH_RUNS` (default 3);
//! sizes: `SWEEP_BENCH_SIZES` (default `10x30,25x30,50x30,100x30,20x110`). Prints a markdown
//! table of medians and the ratio of per-node sweep cost between the largest and the smallest
//! node count at 30 pods (linear growth: about 1).

use calico_conformance::facts::Encapsulation;
use calico_conformance::kube::Scope;
use calico_conformance::kube::fake_cluster::{FakeCluster, Install};
use calico_conformance::lab::LabSpec;
use calico_conformance::sweep::{self, NodeStatus, Options};
use calico_conformance::target::Target;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("sweep_kube bench: {what}: {e}");
    std::process::exit(1);
}

/// `10x30,100x30` → [(10, 30), (100, 30)].
fn sizes() -> Vec<(usize, usize)> {
    let spec = std::env::var("SWEEP_BENCH_SIZES")
        .unwrap_or_else(|_| "10x30,25x30,50x30,100x30,20x110".into());
    spec.split(',')
        .map(|s| {
            let parsed = s
                .split_once('x')
                .and_then(|(n, p)| Some((n.trim().parse().ok()?, p.trim().parse().ok()?)));
            parsed.unwrap_or_else(|| fail("SWEEP_BENCH_SIZES", format!("{s:?} is not NxP")))
        })
        .collect()
}

/// One size: (pods, build, open, sweep times, close).
struct Measured {
    pods: usize,
    /// The parts of opening, as the kube target timed them.
    parts: Vec<String>,
    build: Duration,
    open: Duration,
    sweeps: Vec<Duration>,
    close: Duration,
}

fn measure(rt: &tokio::runtime::Runtime, nodes: usize, extra: usize, runs: usize) -> Measured {
    let id = format!("bench-{}-{nodes}x{extra}", std::process::id());
    let spec = LabSpec {
        pod_namespace: calico_conformance::kube::manifests::namespace_name(&id),
        nodes,
        extra_pods_per_node: extra,
        // The pods the sweep's pingers are served from.
        pingers: true,
        ..LabSpec::article(Encapsulation::None)
    };
    let t0 = Instant::now();
    let lab = rt
        .block_on(Target::open_lab(&spec, format!("lab_{nodes}x{extra}")))
        .unwrap_or_else(|e| fail(&format!("building {nodes} nodes x {extra} pods"), e));
    let Some(topology) = lab.lab().map(|l| l.topology.clone()) else {
        fail("the lab", "has no topology")
    };
    let cluster = rt
        .block_on(FakeCluster::over_lab(&topology, &id, Install::Manifest))
        .unwrap_or_else(|e| fail("the fake cluster", e));
    let build = t0.elapsed();
    let conn = {
        // A kube client is made inside a runtime.
        let _inside = rt.enter();
        cluster.server.connection("kind-fake-over-lab")
    };
    let t0 = Instant::now();
    let kube = rt
        .block_on(Target::open_kube_scoped_on(&conn, &id, Scope::EveryNode))
        .unwrap_or_else(|e| fail("opening the fake cluster", e));
    let open = t0.elapsed();
    let parts: Vec<String> = (kube.setup_phases().iter())
        .map(|(name, d)| format!("{name} {}", ms(*d)))
        .collect();
    let pods = kube.facts.workloads.as_ref().map_or(0, Vec::len);
    let mut sweeps = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let results = rt.block_on(sweep::sweep(&kube, &Options::default(), |_| {}));
        sweeps.push(t0.elapsed());
        if results.len() != nodes {
            fail(
                "the sweep",
                format!("{} nodes swept of {nodes}", results.len()),
            );
        }
        if let Some(bad) = results.iter().find(|r| r.status() != NodeStatus::Passed) {
            fail("the sweep", format!("{} {}", bad.node, bad.verdict()));
        }
    }
    let t0 = Instant::now();
    rt.block_on(kube.close())
        .unwrap_or_else(|e| fail("closing the kube target", e));
    drop(cluster);
    rt.block_on(lab.close())
        .unwrap_or_else(|e| fail("tearing the lab down", e));
    Measured {
        pods,
        parts,
        build,
        open,
        sweeps,
        close: t0.elapsed(),
    }
}

fn main() {
    let runs: usize = std::env::var("SWEEP_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("a runtime", e));
    println!(
        "| nodes | pods (datastore) | lab + fake cluster | open: probes on every node, facts | sweep (median of {runs}) | per node | close + teardown |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut per_node_30 = Vec::new();
    for (nodes, extra) in sizes() {
        let m = measure(&rt, nodes, extra, runs);
        let swept = median(m.sweeps);
        let per = swept / nodes as u32;
        if extra == 30 {
            per_node_30.push((nodes, per));
        }
        println!(
            "| {nodes} | {} | {} | {} ({}) | {} | {} | {} |",
            m.pods,
            ms(m.build),
            ms(m.open),
            m.parts.join(", "),
            ms(swept),
            ms(per),
            ms(m.close)
        );
    }
    if let (Some((a, small)), Some((b, large))) = (per_node_30.first(), per_node_30.last()) {
        println!(
            "\nper-node sweep cost at {b} nodes / at {a} nodes (30 extra pods each): {:.2}x \
             (1.00x: linear in nodes)",
            large.as_secs_f64() / small.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "default parallelism ({} nodes at once); encapsulation None; the fake API server in the \
         same process",
        Options::default().parallel
    );
}
