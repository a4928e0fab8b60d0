//! The sweep at scale: labs of many nodes (a switch between them), each node with N extra pods
//! beside the article's, swept through the same code as `cargo run -- sweep` (one observation
//! per node: `ip -d -j addr`, `ip -j -4 route`, one sysctl read; judged in-process).
//!
//! Run: `cargo bench --bench sweep` (root). Runs per size: `SWEEP_BENCH_RUNS` (default 5).
//! Prints a markdown table of medians: build, sweep, sweep per node, teardown; and the ratio
//! of per-node cost between the largest and the smallest node count (linear growth: about 1).

use calico_conformance::facts::Encapsulation;
use calico_conformance::lab::LabSpec;
use calico_conformance::sweep::{self, NodeStatus, Options};
use calico_conformance::target::Target;
use std::time::{Duration, Instant};

/// (nodes, extra pods per node).
const SIZES: [(usize, usize); 5] = [(10, 30), (25, 30), (50, 30), (100, 30), (20, 110)];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs: usize = std::env::var("SWEEP_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sweep bench: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "| nodes | pods | build | sweep (median of {runs}) | per node | of it: observing, judging (all nodes, one after another) | one command (`true` in a node) | teardown |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut per_node_30 = Vec::new();
    for (nodes, extra) in SIZES {
        let spec = LabSpec {
            nodes,
            extra_pods_per_node: extra,
            ..LabSpec::article(Encapsulation::None)
        };
        let started = Instant::now();
        let target = match rt.block_on(Target::open_lab(&spec, format!("lab_{nodes}x{extra}"))) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("sweep bench: building {nodes} nodes x {extra} pods: {e}");
                std::process::exit(1);
            }
        };
        let built = started.elapsed();
        let pods = target.facts.workloads.as_ref().map_or(0, Vec::len);
        let mut times = Vec::new();
        for _ in 0..runs {
            let t0 = Instant::now();
            let results = rt.block_on(sweep::sweep(&target, &Options::default(), |_| {}));
            times.push(t0.elapsed());
            if let Some(bad) = results.iter().find(|r| r.status() != NodeStatus::Passed) {
                eprintln!("sweep bench: {} {}", bad.node, bad.verdict());
                std::process::exit(1);
            }
        }
        // Where the time goes: every node observed one after another, then judged.
        let t0 = Instant::now();
        let snaps: Vec<_> = (target.facts.nodes.iter())
            .filter_map(|n| rt.block_on(sweep::observe_node(&target, &n.name)).ok())
            .collect();
        let observing = t0.elapsed();
        let t0 = Instant::now();
        for snap in &snaps {
            let _ = sweep::judge(&target.facts, snap);
        }
        let judging = t0.elapsed();
        // What one command costs here: `true` in the first node, 20 times.
        let spawn = match target.host("k8s-worker-1") {
            Ok(place) => {
                let t0 = Instant::now();
                for _ in 0..20 {
                    let _ = rt.block_on(place.run_ok(&["true"]));
                }
                t0.elapsed() / 20
            }
            Err(_) => Duration::ZERO,
        };
        let t0 = Instant::now();
        if let Err(e) = rt.block_on(target.close()) {
            eprintln!("sweep bench: teardown: {e}");
            std::process::exit(1);
        }
        let down = t0.elapsed();
        let swept = median(times);
        let per = swept / nodes as u32;
        if extra == 30 {
            per_node_30.push((nodes, per));
        }
        println!(
            "| {nodes} | {pods} | {} | {} | {} | {}, {} | {} | {} |",
            ms(built),
            ms(swept),
            ms(per),
            ms(observing),
            ms(judging),
            ms(spawn),
            ms(down)
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
        "default parallelism ({} nodes at once); encapsulation None",
        Options::default().parallel
    );
}
