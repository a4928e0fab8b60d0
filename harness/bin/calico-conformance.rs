//! `calico-conformance`: the suite's commands.
//!
//! - `check`: run every claim against the selected target and print what was checked (the
//!   same run as `cargo test --test conformance`, claims only);
//! - `faults --matrix`: write `docs/fault-matrix.md`;
//! - `lab [--mode none|vxlan|dualstack|vxlan-dualstack] [--topology FILE]`: build the lab, write its topology file, hold it
//!   until Ctrl-C (to look around, or to try `CALICO_TARGET=topology:FILE`);
//! - `cleanup`: delete what killed kube runs left behind;
//! - `rec-scale [--pods N] [--runs N]`: REC-1..3's median times on a lab with N extra pods per
//!   node;
//! - `diff OLD NEW [--json] [--all]`: what changed between two runs' reports, or between two
//!   sweeps node by node (exit 0 nothing regressed, 1 a claim went from passed to failed or a
//!   node from passed to failed or not observed, 2 a bad input);
//! - `watch [--for 10m] [--interval 100ms] [--budget 1s] [--stop-file PATH]`: probe the
//!   article's pairs until the time is up, Ctrl-C, SIGTERM or the stop file, measure every gap;
//!   CONT-1..3 (exit 0 all passed, 1 not); with `--flap HOLD` (a lab only) it removes a route
//!   across nodes for HOLD and proves it measures that gap (exit 0 measured and CONT-3 held);
//! - `sweep [--parallel N]`: every node of the target and every pod on it, each node observed
//!   once (exit 0 every node passed, 1 a node failed, 2 a node or the target could not be
//!   observed).

#[path = "../../suites/mod.rs"]
#[allow(dead_code)]
mod claims;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "calico-conformance",
    about = "Proves how a cluster running Calico moves packets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every claim against CALICO_TARGET (default: the lab: None, VXLAN and dual stack) and report.
    Check {
        /// Only claims whose test name contains this (as `cargo test FILTER`).
        filter: Option<String>,
    },
    /// The fault catalogue.
    Faults {
        /// Regenerate docs/fault-matrix.md.
        #[arg(long)]
        matrix: bool,
        /// Apply this fault to a fresh lab, run every claim, and print each failure's message.
        #[arg(long, value_name = "FAULT")]
        show: Option<String>,
    },
    /// Build the lab and hold it until Ctrl-C.
    Lab {
        /// none, vxlan, dualstack (IPv4 and IPv6 pools, encapsulation None) or vxlan-dualstack
        /// (both pools over VXLAN: vxlan.calico and vxlan-v6.calico).
        #[arg(long, default_value = "none")]
        mode: String,
        /// Where to write the lab's topology file.
        #[arg(long, default_value = "target/lab-topology.json")]
        topology: std::path::PathBuf,
    },
    /// Delete namespaces that killed kube runs left behind (found by label).
    Cleanup,
    /// REC-1..3 at scale: a lab with this many extra pods per node beside the article's, each
    /// REC claim run `--runs` times; prints their median times.
    RecScale {
        /// Extra pods per node (110: the kubelet's default maximum).
        #[arg(long, default_value_t = 110)]
        pods: usize,
        /// How many times to run each claim.
        #[arg(long, default_value_t = 21)]
        runs: usize,
    },
    /// Write report.md and junit.xml again from a run's report.json (its run folder or the
    /// file), into the report's folder.
    Report {
        /// The run: its report.json or its run folder.
        run: PathBuf,
    },
    /// What changed between two runs (before and after a Calico upgrade), or between two
    /// sweeps node by node: exit 0 when nothing regressed, 1 when a claim went from passed to
    /// failed (a node from passed to failed or not observed), 2 on bad input.
    Diff {
        /// The earlier run: its report.json or its run folder (or a sweep.json or its folder).
        old: PathBuf,
        /// The later run: its report.json or its run folder (or a sweep.json or its folder).
        new: PathBuf,
        /// Print a JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Also report what differs between any two runs (run id, namespace, pod IPs,
        /// ifindexes, ports, durations, evidence; of sweeps: pod and check counts, errors).
        #[arg(long)]
        all: bool,
    },
    /// Probe the article's pod pairs continuously (ICMP, TCP requests, one long-lived TCP
    /// connection per pair) and measure every gap in traffic: CONT-1 and CONT-2.
    Watch {
        /// How long to watch (e.g. 30s, 10m); stops earlier on Ctrl-C, SIGTERM or the stop
        /// file.
        #[arg(long = "for", default_value = "10m", value_parser = calico_conformance::watch::parse_duration)]
        length: std::time::Duration,
        /// One probe of each kind per pair every interval.
        #[arg(long, default_value = "100ms", value_parser = calico_conformance::watch::parse_duration)]
        interval: std::time::Duration,
        /// The longest gap (and stall of a connection) CONT-1 and CONT-2 allow.
        #[arg(long, default_value = "1s", value_parser = calico_conformance::watch::parse_duration)]
        budget: std::time::Duration,
        /// Stop at the next interval once this file exists (it must not exist at the start),
        /// as on Ctrl-C or SIGTERM: the report covers what was watched.
        #[arg(long, value_name = "PATH")]
        stop_file: Option<PathBuf>,
        /// On a lab the suite builds: remove the cross-node client's route to the server's
        /// block for this long, then put it back; the watch then proves it measures that gap
        /// (exit 0 when measured, on exactly the pairs crossing it, and CONT-3 held).
        #[arg(long, value_name = "HOLD", value_parser = calico_conformance::watch::parse_duration)]
        flap: Option<std::time::Duration>,
        /// When the flap starts, after the watch's first probe.
        #[arg(long, value_name = "AT", default_value = "1s", requires = "flap", value_parser = calico_conformance::watch::parse_duration)]
        flap_at: std::time::Duration,
    },
    /// Every node of CALICO_TARGET and every pod Calico networks on it: REC-1..3, HOST-R2,
    /// HOST-R3, MTU-1 per node, VETH-2/3/4 and HOST-R1 per pod, from one observation of each
    /// node, and XN-1 from a pod of each node to a pod of the next (a ring). Appends each
    /// node's row to nodes.jsonl as it arrives; writes sweep.json and sweep.md at the end.
    Sweep {
        /// At most this many nodes observed at once.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
        /// Each node's pod pings a pod on each of the next this many nodes (a ring by name).
        #[arg(long, default_value_t = 1)]
        pairs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { filter } => {
            let mut args = libtest_mimic::Arguments {
                filter,
                skip: vec!["faults::".into()],
                ..Default::default()
            };
            args.test_threads = Some(8);
            claims::runner::main(args, Vec::new())
        }
        Command::Faults { matrix, show } => {
            if let Some(name) = show {
                return show_fault(&name);
            }
            if !matrix {
                for f in calico_conformance::faults::catalogue() {
                    println!("{:<40} {}", f.name, f.what);
                }
                return ExitCode::SUCCESS;
            }
            let rt = match claims::runner::runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("calico-conformance: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match claims::faults::write_matrix(&rt) {
                Ok(path) => {
                    println!("wrote {}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("calico-conformance: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Lab { mode, topology } => lab(&mode, &topology),
        Command::Cleanup => cleanup(),
        Command::RecScale { pods, runs } => {
            let result = claims::runner::runtime()
                .map_err(|e| e.to_string())
                .and_then(|rt| claims::reconcile::time_at_scale(&rt, pods, runs));
            match result {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("calico-conformance: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Report { run } => rerender(&run),
        Command::Diff {
            old,
            new,
            json,
            all,
        } => ExitCode::from(diff(&old, &new, json, all)),
        Command::Watch {
            length,
            interval,
            budget,
            stop_file,
            flap,
            flap_at,
        } => ExitCode::from(watch(
            length,
            calico_conformance::watch::Options {
                interval,
                budget,
                stop_file,
                flap: flap.map(|hold| calico_conformance::flap::Flap { at: flap_at, hold }),
                ..Default::default()
            },
        )),
        Command::Sweep { parallel, pairs } => ExitCode::from(sweep(parallel, pairs)),
    }
}

/// `watch`: the first selected target opened, every claim case run (CONT-3's before), watched,
/// every claim case run again, closed; 0 when CONT-1 and CONT-2 passed for every pair and
/// CONT-3 held, 1 when not, 2 when it could not watch.
/// A duration as the command line takes it: `1.5s`, `300ms`.
fn ms(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn watch(length: std::time::Duration, opts: calico_conformance::watch::Options) -> u8 {
    use calico_conformance::target::{Target, selected};
    use calico_conformance::watch;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let kind = match selected() {
        Ok(k) => k.into_iter().next(),
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            return 2;
        }
    };
    let Some(kind) = kind else {
        eprintln!("calico-conformance: no target selected to watch");
        return 2;
    };
    if let Some(flap) = opts.flap {
        let end = flap.at + flap.hold + 2 * opts.interval;
        if end >= length {
            eprintln!(
                "calico-conformance: --flap {} at {} does not end two intervals before the watch \
                 does (--for {}): make --for longer than {}",
                ms(flap.hold),
                ms(flap.at),
                ms(length),
                ms(end)
            );
            return 2;
        }
    }
    let Ok(rt) = claims::runner::runtime() else {
        return 2;
    };
    let done = rt.block_on(async {
        let target = Arc::new(Target::open(&kind).await.map_err(|e| e.to_string())?);
        if let (Some(_), Err(e)) = (opts.flap, calico_conformance::flap::allowed_on(&target)) {
            if let Ok(target) = Arc::try_unwrap(target) {
                target.close().await.map_err(|e| e.to_string())?;
            }
            return Err(e.to_string());
        }
        // CONT-3: every claim case before the watch, and again at its end.
        println!("CONT-3: every claim case before the watch");
        let before = every_case(&target).await;
        let stop = Arc::new(AtomicBool::new(false));
        watch::stop_on_signals(stop.clone()).map_err(|e| e.to_string())?;
        let status = |logs: &[watch::PairLog], at| {
            for line in watch::status_lines(logs, at) {
                println!("{line}");
            }
        };
        let watched = watch::watch(&target, &opts, length, stop, status).await;
        println!("CONT-3: every claim case at the end of the watch");
        let cont3 = calico_conformance::continuity::cont_3(&before, &every_case(&target).await);
        let Ok(target) = Arc::try_unwrap(target) else {
            return Err("the target is still in use after the watch".to_string());
        };
        target.close().await.map_err(|e| e.to_string())?;
        let watched = watched.map_err(|e| e.to_string())?;
        let md = watch::write_report(&opts.dir, &watched).map_err(|e| e.to_string())?;
        calico_conformance::continuity::add_to_report(&opts.dir, &md, &cont3)
            .map_err(|e| e.to_string())?;
        for v in watched.verdicts() {
            let word = if v.passed { "passed" } else { "FAILED" };
            println!("{} {word}: {}", v.claim, v.message);
        }
        let word = if cont3.passed { "passed" } else { "FAILED" };
        println!("CONT-3 {word}: {}", cont3.message);
        let flap = watched.flap_verdict();
        if let Some((measured, message)) = &flap {
            let word = if *measured {
                "measured"
            } else {
                "NOT measured"
            };
            println!("flap {word}: {message}");
        }
        println!("report: {}", md.display());
        // The verdicts stand (counted in memory), but the evidence is incomplete: exit 2.
        if let Some(e) = &watched.probes_error {
            return Err(format!("the probe log is incomplete: {e}"));
        }
        // With a flap CONT-1/2 fail on its pairs by design: the verdict is whether it was
        // measured.
        let watch_passed = match flap {
            Some((measured, _)) => measured,
            None => watched.verdicts().iter().all(|v| v.passed),
        };
        Ok::<_, String>(watch_passed && cont3.passed)
    });
    match done {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            2
        }
    }
}

/// Every claim case on `target`, with recordings of their own (CONT-3's before and after).
async fn every_case(
    target: &std::sync::Arc<calico_conformance::target::Target>,
) -> Vec<calico_conformance::results::CaseResult> {
    let shared = std::sync::Arc::new(claims::support::Shared::default());
    match claims::faults::every_case(target, &shared).await {
        Ok(cases) => cases.into_iter().map(|(_, r)| r).collect(),
        Err(e) => {
            eprintln!("calico-conformance: CONT-3: {e}");
            Vec::new()
        }
    }
}

/// `sweep`: each selected target opened, swept and closed in turn; the worst exit code.
fn sweep(parallel: usize, pairs: usize) -> u8 {
    use calico_conformance::sweep::{self, NodeStatus};
    use calico_conformance::target::{Target, selected};
    let kinds = match selected() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            return 2;
        }
    };
    let Ok(rt) = claims::runner::runtime() else {
        return 2;
    };
    let opts = sweep::Options { parallel, pairs };
    let mut worst = 0;
    for kind in kinds {
        let done = rt.block_on(async {
            let target = Target::open_every_node(&kind)
                .await
                .map_err(|e| e.to_string())?;
            let dir =
                calico_conformance::run::evidence_root().join(format!("sweep-{}", target.name));
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let swept = sweep::run(&target, &opts, &dir, stop).await;
            target.close().await.map_err(|e| e.to_string())?;
            let (results, stopped) = swept.map_err(|e| e.to_string())?;
            println!("report: {}", dir.join("sweep.md").display());
            Ok::<_, String>((results, stopped))
        });
        let code = match done {
            Ok((_, true)) => 2,
            Ok((results, false)) => results
                .iter()
                .map(|r| match r.status() {
                    NodeStatus::Passed | NodeStatus::Skipped => 0,
                    NodeStatus::Failed => 1,
                    NodeStatus::Error => 2,
                })
                .max()
                .unwrap_or(0),
            Err(e) => {
                eprintln!("calico-conformance: {e}");
                2
            }
        };
        worst = worst.max(code);
    }
    worst
}

/// `faults --show NAME`: the fault applied to a fresh lab; each claim's cell and every failure
/// message, as the self-test judged them.
fn show_fault(name: &str) -> ExitCode {
    let Some(fault) = calico_conformance::faults::catalogue()
        .into_iter()
        .find(|f| f.name == name)
    else {
        eprintln!("calico-conformance: no fault named {name} (`cargo run -- faults` lists them)");
        return ExitCode::from(2);
    };
    let shown = claims::runner::runtime()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(claims::faults::row(fault.target_kind(), Some(&fault))));
    match shown {
        Ok(row) => {
            println!("{}: {}", fault.name, fault.what);
            for (id, (cell, messages)) in &row {
                println!("{id:<8} {cell:?}");
                for m in messages {
                    println!("  {}", m.replace('\n', "\n  "));
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `diff` of two reports or two sweeps: the table or JSON on stdout, a bad input's one line on
/// stderr; the exit code.
fn diff(old: &Path, new: &Path, json: bool, all: bool) -> u8 {
    let opts = calico_conformance::diff::Options { all };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    calico_conformance::sweep_diff::run(old, new, opts, json, &mut out, &mut err)
}

fn lab(mode: &str, path: &std::path::Path) -> ExitCode {
    use calico_conformance::lab::{Lab, LabSpec};
    use calico_conformance::target::{TargetKind, parse_selection};
    let kind = match parse_selection(&format!("lab:{mode}")) {
        Ok(mut k) if k.len() == 1 => k.remove(0),
        _ => {
            eprintln!(
                "calico-conformance: --mode {mode}: use none, vxlan, dualstack or vxlan-dualstack"
            );
            return ExitCode::FAILURE;
        }
    };
    let Ok(rt) = claims::runner::runtime() else {
        return ExitCode::FAILURE;
    };
    // The lab alone, without the article's server: the run that attaches to it through the
    // topology file starts the server itself, as it does for any topology.
    let spec = match kind {
        TargetKind::Lab(encapsulation) => LabSpec::article(encapsulation),
        TargetKind::LabDualStack(encapsulation) => LabSpec::dual_stack(encapsulation),
        _ => return ExitCode::FAILURE,
    };
    let encapsulation = spec.encapsulation;
    let result: Result<(), String> = rt.block_on(async {
        calico_conformance::lab::preflight::check_lab(&spec).map_err(|e| e.to_string())?;
        let lab = Lab::build(&spec, calico_conformance::run::run_id())
            .await
            .map_err(|e| e.to_string())?;
        lab.topology.save(path).map_err(|e| e.to_string())?;
        println!("{}", lab.topology.facts(format!("lab ({})", encapsulation.as_str())).summary());
        println!(
            "topology: {}\nattach with CALICO_TARGET=topology:{} cargo test --test conformance\nthe lab lives until Ctrl-C",
            path.display(),
            path.display()
        );
        let _ = tokio::signal::ctrl_c().await;
        lab.teardown().await.map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(path);
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `report`: report.md and junit.xml of a run, written again from its report.json.
fn rerender(run: &Path) -> ExitCode {
    let loaded = calico_conformance::diff::load(run).and_then(|r| {
        serde_json::from_value::<calico_conformance::report::Report>(r.json)
            .map_err(|e| calico_conformance::diff::BadInput {
                path: r.path.clone(),
                problem: format!("not a report this build reads: {e}"),
            })
            .map(|report| (r.path, report))
    });
    let (file, report) = match loaded {
        Ok(r) => r,
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    match calico_conformance::report_files::write_beside(dir, &report) {
        Ok(()) => {
            println!(
                "{}",
                dir.join(calico_conformance::report_files::MARKDOWN)
                    .display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cleanup() -> ExitCode {
    let Ok(rt) = claims::runner::runtime() else {
        return ExitCode::FAILURE;
    };
    let work = async {
        let conn = calico_conformance::kube::connect().await?;
        calico_conformance::kube::cleanup_leftovers(&conn.client, None).await
    };
    match rt.block_on(work) {
        Ok(deleted) => {
            if deleted.is_empty() {
                println!("nothing to clean up");
            }
            for ns in deleted {
                println!("deleted namespace {ns}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/reports")
            .join(name)
    }

    #[test]
    fn diff_parses_its_arguments() {
        let cli = Cli::try_parse_from(["calico-conformance", "diff", "a", "b/", "--json", "--all"]);
        let Ok(Cli {
            command:
                Command::Diff {
                    old,
                    new,
                    json,
                    all,
                },
        }) = cli
        else {
            panic!("diff a b/ --json --all does not parse");
        };
        assert_eq!((old, new, json, all), ("a".into(), "b/".into(), true, true));
        let one = Cli::try_parse_from(["calico-conformance", "diff", "a"]);
        assert_eq!(one.err().map(|e| e.exit_code()), Some(2));
    }

    #[test]
    fn watch_parses_its_stop_file() {
        let cli = Cli::try_parse_from([
            "calico-conformance",
            "watch",
            "--for",
            "30s",
            "--stop-file",
            "/tmp/upgrade-done",
        ]);
        let Ok(Cli {
            command:
                Command::Watch {
                    length,
                    interval,
                    stop_file,
                    ..
                },
        }) = cli
        else {
            panic!("watch --for 30s --stop-file /tmp/upgrade-done does not parse");
        };
        assert_eq!(length, std::time::Duration::from_secs(30));
        assert_eq!(interval, std::time::Duration::from_millis(100));
        assert_eq!(stop_file, Some(PathBuf::from("/tmp/upgrade-done")));
        let Ok(Cli {
            command: Command::Watch { stop_file, .. },
        }) = Cli::try_parse_from(["calico-conformance", "watch"])
        else {
            panic!("watch does not parse");
        };
        assert_eq!(stop_file, None);
        let bare = Cli::try_parse_from(["calico-conformance", "watch", "--stop-file"]);
        assert_eq!(bare.err().map(|e| e.exit_code()), Some(2));
        let Ok(Cli {
            command: Command::Watch { flap, flap_at, .. },
        }) = Cli::try_parse_from(["calico-conformance", "watch", "--flap", "1.5s"])
        else {
            panic!("watch --flap 1.5s does not parse");
        };
        assert_eq!(flap, Some(std::time::Duration::from_millis(1500)));
        assert_eq!(flap_at, std::time::Duration::from_secs(1));
        let alone = Cli::try_parse_from(["calico-conformance", "watch", "--flap-at", "2s"]);
        assert_eq!(alone.err().map(|e| e.exit_code()), Some(2));
    }

    /// `diff` with its output kept: (exit code, stdout, stderr).
    fn diff_kept(old: &Path, new: &Path, json: bool, all: bool) -> (u8, String, String) {
        let opts = calico_conformance::diff::Options { all };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = calico_conformance::sweep_diff::run(old, new, opts, json, &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (code, text(out), text(err))
    }

    #[test]
    fn diff_exits_0_1_and_2() {
        let (correct, faulted) = (report("lab-correct.json"), report("lab-mtu-mismatch.json"));
        let code = |old: &Path, new: &Path, json, all| diff_kept(old, new, json, all).0;
        assert_eq!(code(&correct, &report("run-folder"), false, false), 0);
        assert_eq!(
            code(&report("kube-a.json"), &report("kube-b.json"), false, false),
            0
        );
        assert_eq!(
            code(&report("kube-a.json"), &report("kube-b.json"), true, true),
            0
        );
        assert_eq!(code(&correct, &faulted, false, false), 1);
        assert_eq!(code(&correct, &faulted, true, true), 1);
        assert_eq!(code(&faulted, &correct, false, false), 0);
        for bad in [
            "missing.json",
            "not-json.json",
            "no-schema.json",
            "schema-v2.json",
        ] {
            let (c, out, err) = diff_kept(&correct, &report(bad), false, false);
            assert_eq!(
                (c, out.as_str(), err.lines().count()),
                (2, "", 1),
                "{bad}: {err}"
            );
            assert!(
                err.starts_with("calico-conformance diff: ") && err.contains(bad),
                "{err}"
            );
            assert_eq!(diff_kept(&report(bad), &correct, true, false).0, 2, "{bad}");
        }
        // The function behind the subcommand, writing to the real stdout.
        assert_eq!(diff(&correct, &correct, false, false), 0);
    }

    /// Two sweeps as `sweep` writes them: a node gone from passed to failed exits 1; the same
    /// sweep twice 0; a sweep against a report 2.
    #[test]
    fn diff_of_two_sweeps_exits_0_1_and_2() {
        use calico_conformance::expect::{Value, eq};
        use calico_conformance::sweep::{NodeResult, SweepCheck, write_report};
        let node = |name: &str, failing: bool| NodeResult {
            node: name.into(),
            pods: 2,
            mtu: Some(1450),
            checks: vec![SweepCheck {
                claim: "REC-2",
                pod: None,
                check: eq(
                    format!("cali* links on {name} no pod owns"),
                    Value::Interfaces(Vec::new()),
                    Value::Interfaces(if failing {
                        vec!["calia".into()]
                    } else {
                        Vec::new()
                    }),
                ),
            }],
            error: None,
            skipped: None,
            notes: Vec::new(),
            duration: std::time::Duration::from_millis(5),
        };
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let before = [node("worker-1", false), node("worker-2", false)];
        let after = [node("worker-1", true), node("worker-2", false)];
        write_report(old.path(), "lab_none", 2, &before).unwrap();
        write_report(new.path(), "lab_none", 2, &after).unwrap();
        let (code, out, err) = diff_kept(old.path(), new.path(), false, false);
        assert_eq!((code, err.as_str()), (1, ""), "{out}");
        let row = out.lines().nth(1).unwrap();
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            words,
            [
                "worker-1",
                "REGRESSION",
                "passed",
                "→",
                "failed",
                "new",
                "REC-2"
            ]
        );
        assert_eq!(
            out.lines().last(),
            Some("1 regression, 0 fixed, 0 other changes, 1 node unchanged")
        );
        let (code, out, _) = diff_kept(old.path(), &new.path().join("sweep.json"), true, false);
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (code, &j["schema"]),
            (1, &"calico-conformance/sweep-diff/v1".into())
        );
        assert_eq!(j["regressions"][0]["new_failures"][0]["claim"], "REC-2");
        assert_eq!(
            diff_kept(old.path(), old.path(), false, false).1,
            "no change\n"
        );
        let (code, out, err) = diff_kept(&report("lab-correct.json"), new.path(), false, false);
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(
            err.contains("a sweep, and ") && err.contains("diff compares two of the same kind"),
            "{err}"
        );
        assert_eq!(diff(old.path(), old.path(), false, false), 0);
    }
}

#[cfg(test)]
mod report_tests {
    use super::*;

    /// `report RUN` writes report.md and junit.xml from the run's report.json, into its folder;
    /// a file that is not a report exits 2.
    #[test]
    fn report_rerenders_a_runs_files() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reports");
        std::fs::copy(
            fixture.join("md-correct.json"),
            dir.path().join("report.json"),
        )
        .unwrap();
        assert_eq!(rerender(dir.path()), ExitCode::SUCCESS);
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(md.contains("```mermaid"));
        assert!(dir.path().join("junit.xml").exists());
        assert_eq!(rerender(&fixture.join("no-schema.json")), ExitCode::from(2));
    }
}
