//! Turns the claims into libtest trials: opens each selected target once, prints its facts,
//! runs every claim case as its own test (a claim that does not apply is reported ignored, with
//! the reason), closes the targets, and prints a summary by claim ID.

use super::support::{Claim, PODS, Per, Shared, run_case};
use calico_conformance::facts::Facts;
use calico_conformance::report::{self, Part, Phases, TargetReport};
use calico_conformance::results::{CaseResult, Status};
use calico_conformance::target::{Target, TargetKind};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// One planned claim case.
struct Plan {
    kind: TargetKind,
    claim: Claim,
    pod: Option<&'static str>,
    name: String,
}

/// The name of a claim case's test: `pod_routes::pod_r1_default_via_link_local::lab_none::test_tools`.
pub fn case_name(claim: &Claim, kind: &TargetKind, pod: Option<&str>) -> String {
    let mut name = format!("{}::{}::{}", claim.group, claim.test, kind.short());
    if let Some(p) = pod {
        name += "::";
        name += &p.replace('-', "_");
    }
    name
}

fn plans(kinds: &[TargetKind]) -> Vec<Plan> {
    let mut out = Vec::new();
    for kind in kinds {
        for claim in super::all() {
            let pods: Vec<Option<&'static str>> = match claim.per {
                Per::Target => vec![None],
                Per::EachPod => PODS.iter().map(|p| Some(*p)).collect(),
            };
            for pod in pods {
                out.push(Plan {
                    name: case_name(&claim, kind, pod),
                    kind: kind.clone(),
                    claim: claim.clone(),
                    pod,
                });
            }
        }
    }
    out
}

/// The tokio runtime every trial blocks on.
pub fn runtime() -> Result<Arc<tokio::runtime::Runtime>, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// libtest's options that take a value in the next argument.
const TAKES_VALUE: [&str; 6] = [
    "--test-threads",
    "--logfile",
    "--skip",
    "--color",
    "--format",
    "-Z",
];

/// Parses libtest's command line, keeping every positional filter: libtest takes several
/// (`cargo test pod_r1 -- pod_r2` runs what matches either), libtest-mimic's parser only one
/// and refuses the rest. Returns the arguments with the first filter, and the others.
pub fn parse_args<I>(argv: I) -> (Arguments, Vec<String>)
where
    I: IntoIterator<Item = std::ffi::OsString>,
{
    let mut argv = argv.into_iter();
    let mut kept: Vec<std::ffi::OsString> = argv.next().into_iter().collect();
    let mut more = Vec::new();
    let (mut first_seen, mut value_next) = (false, false);
    for a in argv {
        let text = a.to_string_lossy().into_owned();
        if value_next {
            value_next = false;
        } else if !text.starts_with('-') {
            if first_seen {
                more.push(text);
                continue;
            }
            first_seen = true;
        } else {
            value_next = TAKES_VALUE.contains(&text.as_str());
        }
        kept.push(a);
    }
    (Arguments::from_iter(kept), more)
}

/// Whether test `name` matches any of `filters` (exactly, with `--exact`).
fn matches_any(filters: &[String], exact: bool, name: &str) -> bool {
    filters.iter().any(|f| {
        if exact {
            name == f
        } else {
            name.contains(f.as_str())
        }
    })
}

/// Opens each target once, printing its facts; on the first that cannot be opened, closes
/// the others and says why. Returns the targets and how long opening each took.
#[allow(clippy::type_complexity)]
fn open_targets(
    rt: &tokio::runtime::Runtime,
    kinds: &[TargetKind],
    every_node: bool,
) -> Option<(Vec<(TargetKind, Arc<Target>)>, Vec<(String, Vec<Phase>)>)> {
    let mut targets: Vec<(TargetKind, Arc<Target>)> = Vec::new();
    let mut timings: Vec<(String, Vec<Phase>)> = Vec::new();
    for kind in kinds {
        let opening = std::time::Instant::now();
        if let Err(e) = one_topology_process_at_a_time(kind) {
            eprintln!("calico-conformance: cannot open the topology target: {e}");
            close(rt, targets);
            return None;
        }
        let opened = match every_node {
            true => rt.block_on(Target::open_every_node(kind)),
            false => rt.block_on(Target::open(kind)),
        };
        match opened {
            Ok(t) => {
                println!("\n== {} ==\n{}", t.name, t.facts.summary());
                let mut phases = vec![Phase::new("open", opening.elapsed())];
                phases.extend(t.setup_phases().into_iter().map(|(n, d)| Phase::part(n, d)));
                timings.push((t.name.clone(), phases));
                targets.push((kind.clone(), Arc::new(t)));
            }
            Err(e) => {
                eprintln!(
                    "calico-conformance: cannot open the {} target: {e}",
                    kind.short()
                );
                close(rt, targets);
                return None;
            }
        }
    }
    Some((targets, timings))
}

/// Under cargo-nextest (one process per test) on a topology target: waits until no other
/// process of the run holds the topology, and holds it until this process ends. Each process
/// serves the article's HTTP server on port 8080 in the topology's pod namespaces, and two
/// cannot listen there at once (`SO_REUSEPORT` would let them, but resets a connection the
/// kernel hands to a listener as its process ends). The lock is released when the process
/// exits, after its targets are closed; the wait has the deadline of a slow claim.
fn one_topology_process_at_a_time(kind: &TargetKind) -> calico_conformance::Result<()> {
    use calico_conformance::run;
    if !matches!(kind, TargetKind::Topology(_)) || !run::shared_with_other_processes() {
        return Ok(());
    }
    let path = run::evidence_root().join("topology.lock");
    let lock = run::lock_exclusive(&path, std::time::Duration::from_secs(300))?;
    // Held for the rest of the process: the kernel releases it when the process exits.
    std::mem::forget(lock);
    Ok(())
}

/// What libtest reports for a case. Under cargo-nextest a failure also ends standard error with
/// `Error: <message>`: nextest's heuristic for a failed `main` makes what follows that line the
/// text of its JUnit `<failure>`.
fn libtest_outcome(result: &CaseResult) -> Result<Completion, Failed> {
    match result.status {
        Status::Passed => Ok(Completion::Completed),
        Status::NotApplicable => Ok(Completion::ignored_with(
            result.reason.clone().unwrap_or_default(),
        )),
        Status::Failed => {
            let message = result.message.clone().unwrap_or_default();
            if calico_conformance::run::shared_with_other_processes() {
                eprintln!("Error: {message}");
            }
            Err(Failed::from(message))
        }
    }
}

/// The suite's `main`: libtest's command line (filters, `--list`, `--exact`, `--ignored`), the
/// selected targets, the fault self-test on the lab. `more_filters` are filters past the first
/// (see [`parse_args`]): a test runs when it matches any of them.
pub fn main(mut args: Arguments, more_filters: Vec<String>) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CALICO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("calico_conformance=warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let kinds = match calico_conformance::target::selected() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.test_threads.is_none() {
        // Claims mostly wait on packets; more threads than cores keeps the run short.
        args.test_threads = Some(8);
    }
    let mut plans = plans(&kinds);
    let mut fault_trials = kinds
        .iter()
        .any(|k| matches!(k, TargetKind::Lab(_)))
        .then(super::faults::plans)
        .unwrap_or_default();
    if !more_filters.is_empty() {
        // Several filters: select here (any may match), and hand libtest-mimic none.
        let filters: Vec<String> = args.filter.take().into_iter().chain(more_filters).collect();
        let selected = |name: &str| matches_any(&filters, args.exact, name);
        plans.retain(|p| selected(&p.name));
        fault_trials.retain(|f| selected(&f.name));
    }
    if args.list {
        let mut trials: Vec<Trial> = plans
            .iter()
            .map(|p| Trial::test(p.name.clone(), || Ok(())))
            .collect();
        trials.extend(
            fault_trials
                .iter()
                .map(|f| Trial::test(f.name.clone(), || Ok(()))),
        );
        let _ = libtest_mimic::run(&args, trials);
        return ExitCode::SUCCESS;
    }
    let started = report::now();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("calico-conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wanted = |name: &str| !args.is_filtered_out(&Trial::test(name.to_string(), || Ok(())));
    let cleanup_guard = calico_conformance::lifecycle::CleanupOnSignal::install(&rt);
    let sweeping = super::sweep_cases::wanted();
    let needed: Vec<TargetKind> = kinds
        .iter()
        .filter(|kind| sweeping || plans.iter().any(|p| &p.kind == *kind && wanted(&p.name)))
        .cloned()
        .collect();
    // Each target once; its cases share a `Shared`.
    let Some((targets, timings)) = open_targets(&rt, &needed, sweeping) else {
        return ExitCode::FAILURE;
    };
    let shared: Vec<(TargetKind, Arc<Shared>)> = targets
        .iter()
        .map(|(k, _)| (k.clone(), Arc::default()))
        .collect();
    // Every case's structured result, in the order the cases ended.
    let results: Arc<Mutex<Vec<CaseRecord>>> = Arc::default();
    let mut trials = Vec::new();
    for plan in plans {
        let found = |k: &TargetKind| *k == plan.kind;
        let (Some((_, target)), Some((_, shared))) = (
            targets.iter().find(|(k, _)| found(k)),
            shared.iter().find(|(k, _)| found(k)),
        ) else {
            trials.push(Trial::test(plan.name, || Ok(())));
            continue;
        };
        let (target, shared) = (target.clone(), shared.clone());
        let rt = rt.clone();
        let results = results.clone();
        trials.push(Trial::ignorable_test(plan.name, move || {
            let started = std::time::Instant::now();
            let result = rt.block_on(run_case(&plan.claim, &target, plan.pod, &shared));
            let outcome = libtest_outcome(&result);
            if let Ok(mut r) = results.lock() {
                r.push(CaseRecord { started, result });
            }
            outcome
        }));
    }
    if sweeping {
        trials.extend(super::sweep_cases::trials(&rt, &targets));
    }
    for f in fault_trials {
        let rt = rt.clone();
        trials.push(Trial::ignorable_test(f.name.clone(), move || {
            match (f.run)(&rt).map_err(Failed::from)? {
                None => Ok(Completion::Completed),
                Some(reason) => Ok(Completion::ignored_with(reason)),
            }
        }));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(shared);
    let facts: Vec<Facts> = targets.iter().map(|(_, t)| t.facts.clone()).collect();
    let closed = close(&rt, targets);
    drop(cleanup_guard);
    let results = results.lock().map(|r| r.clone()).unwrap_or_default();
    print_summary(&results);
    print_phases(&timings, &results, &closed);
    let root = calico_conformance::run::evidence_root();
    if let Err(e) = write_report(&root, started, facts, &timings, &results, &closed) {
        eprintln!("calico-conformance: the run's report: {e}");
        return ExitCode::FAILURE;
    }
    conclusion.exit_code()
}

/// Adds this process's cases and targets to the `report.json` of the run whose folder is `root` (see
/// [`calico_conformance::report`]); returns its path. The fault self-test's trials are not
/// claim cases and stay out of it.
fn write_report(
    root: &std::path::Path,
    started: String,
    facts: Vec<Facts>,
    timings: &[(String, Vec<Phase>)],
    results: &[CaseRecord],
    closed: &[(String, std::time::Duration)],
) -> calico_conformance::Result<std::path::PathBuf> {
    let targets = timings
        .iter()
        .zip(facts)
        .map(|((name, phases), facts)| {
            let open = phases.iter().filter(|p| !p.part).map(|p| p.took).sum();
            let parts = phases
                .iter()
                .filter(|p| p.part)
                .map(|p| (p.name.clone(), p.took))
                .collect();
            let teardown = closed.iter().find(|(n, _)| n == name).map(|(_, d)| *d);
            TargetReport {
                name: name.clone(),
                facts,
                phases: Phases::one(open, parts, claims_span(results, name), teardown),
            }
        })
        .collect();
    let part = Part {
        started,
        ended: report::now(),
        targets,
        cases: results.iter().map(|r| r.result.clone()).collect(),
    };
    let path =
        calico_conformance::report_files::add(root, calico_conformance::run::run_id(), &part)?;
    println!("\nreport: {}", path.display());
    Ok(path)
}

/// From the first case of `target` started to its last ended (cases run in parallel).
fn claims_span(results: &[CaseRecord], target: &str) -> Option<std::time::Duration> {
    let cases = results.iter().filter(|r| r.result.target == target);
    let first = cases.clone().map(|r| r.started).min()?;
    let last = cases.map(|r| r.started + r.result.duration).max()?;
    Some(last.duration_since(first))
}

/// Closes the targets; returns how long each took (by target name).
fn close(
    rt: &tokio::runtime::Runtime,
    targets: Vec<(TargetKind, Arc<Target>)>,
) -> Vec<(String, std::time::Duration)> {
    let mut took = Vec::new();
    for (kind, t) in targets {
        match Arc::try_unwrap(t) {
            Ok(t) => {
                let name = t.name.clone();
                let started = std::time::Instant::now();
                let closed = rt.block_on(t.close());
                took.push((name, started.elapsed()));
                if let Err(e) = closed {
                    eprintln!(
                        "calico-conformance: closing the {} target: {e}",
                        kind.short()
                    );
                }
            }
            Err(_) => eprintln!(
                "calico-conformance: the {} target is still in use and was not closed",
                kind.short()
            ),
        }
    }
    took
}

/// One timed phase of a run; `part` phases are the parts of the `open` before them.
struct Phase {
    name: String,
    took: std::time::Duration,
    part: bool,
}

impl Phase {
    fn new(name: &str, took: std::time::Duration) -> Phase {
        Phase {
            name: name.to_string(),
            took,
            part: false,
        }
    }

    fn part(name: &str, took: std::time::Duration) -> Phase {
        Phase {
            part: true,
            ..Phase::new(name, took)
        }
    }
}

/// Prints how long each target's phases took: open (with its parts, e.g. deploy and
/// readiness on a cluster), its claims (first case started to last case ended; cases run in
/// parallel, and with the lab's fault self-test), and teardown.
fn print_phases(
    timings: &[(String, Vec<Phase>)],
    results: &[CaseRecord],
    closed: &[(String, std::time::Duration)],
) {
    if timings.is_empty() {
        return;
    }
    let secs = |d: std::time::Duration| format!("{:.1} s", d.as_secs_f64());
    let list = |phases: &[Phase], part: bool| -> Vec<String> {
        phases
            .iter()
            .filter(|p| p.part == part)
            .map(|p| format!("{} {}", p.name, secs(p.took)))
            .collect()
    };
    println!("\nphases:");
    for (target, phases) in timings {
        let parts = list(phases, true);
        let parts = if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        };
        let claims = claims_span(results, target)
            .map(secs)
            .unwrap_or_else(|| "none run".into());
        let teardown = closed
            .iter()
            .find(|(n, _)| n == target)
            .map(|(_, d)| secs(*d))
            .unwrap_or_else(|| "not closed".into());
        println!(
            "  {target:<10} {}{parts}, claims {claims}, teardown {teardown}",
            list(phases, false).join(", ")
        );
    }
}

/// One claim case: when it started, and its structured result (what the summary, and a
/// machine-readable report, are written from).
#[derive(Clone)]
struct CaseRecord {
    started: std::time::Instant,
    result: CaseResult,
}

impl CaseRecord {
    /// `lab_none test-tools`, `lab_none`.
    fn case(&self) -> String {
        match &self.result.pod {
            Some(p) => format!("{} {p}", self.result.target),
            None => self.result.target.clone(),
        }
    }
}

/// Prints, per claim ID, where it was verified, where it did not apply and why, where it failed,
/// and the median and longest time of its cases.
fn print_summary(results: &[CaseRecord]) {
    if results.is_empty() {
        return;
    }
    /// Per claim ID: where verified, where not applicable (with why), where failed.
    #[derive(Default)]
    struct Tally {
        ok: Vec<String>,
        na: Vec<String>,
        failed: Vec<String>,
        took: Vec<std::time::Duration>,
    }
    let mut by_claim: BTreeMap<&str, Tally> = BTreeMap::new();
    for record in results {
        let r = &record.result;
        let e = by_claim.entry(r.claim.as_str()).or_default();
        e.took.push(r.duration);
        let case = record.case();
        match r.status {
            Status::Passed => e.ok.push(case),
            Status::NotApplicable => {
                e.na.push(format!("{case}: {}", r.reason.as_deref().unwrap_or("")))
            }
            Status::Failed => e.failed.push(case),
        }
    }
    println!("\nclaims, by ID:");
    for (
        id,
        Tally {
            ok,
            na,
            failed,
            mut took,
        },
    ) in by_claim
    {
        took.sort();
        let timing = format!(
            "[median {} ms, max {} ms]",
            took[took.len() / 2].as_millis(),
            took.last().map(|t| t.as_millis()).unwrap_or_default()
        );
        let verdict = if !failed.is_empty() {
            format!("FAILED on {}", failed.join(", "))
        } else if ok.is_empty() {
            "not applicable".to_string()
        } else {
            format!("verified on {}", ok.join(", "))
        };
        println!("  {id:<8} {timing:<26} {verdict}");
        for why in na {
            println!("           not applicable on {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `schemas/report.schema.json` finds wrong with `report` (empty: it validates).
    fn schema_errors(report: &serde_json::Value) -> Vec<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/report.schema.json");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        validator
            .iter_errors(report)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect()
    }

    /// Opens `kind`, runs every claim case of it as the runner plans them, closes it, and
    /// writes the report as the runner does into a folder of its own; returns the report.
    fn run_and_report(rt: &tokio::runtime::Runtime, kind: TargetKind) -> serde_json::Value {
        let started = report::now();
        let (targets, timings) = open_targets(rt, std::slice::from_ref(&kind), false).unwrap();
        let shared = Shared::default();
        let mut records = Vec::new();
        for plan in plans(std::slice::from_ref(&kind)) {
            let started = std::time::Instant::now();
            let result = rt.block_on(run_case(&plan.claim, &targets[0].1, plan.pod, &shared));
            records.push(CaseRecord { started, result });
        }
        let facts = targets.iter().map(|(_, t)| t.facts.clone()).collect();
        let closed = close(rt, targets);
        let dir = tempfile::tempdir().unwrap();
        let path = write_report(dir.path(), started, facts, &timings, &records, &closed).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        check_beside(&path, &json);
        json
    }

    /// report.md and junit.xml beside the report are rendered from it: the path's diagram and
    /// every case in both.
    fn check_beside(path: &std::path::Path, json: &serde_json::Value) {
        use calico_conformance::report_files::{JUNIT, MARKDOWN};
        let report: report::Report = serde_json::from_value(json.clone()).unwrap();
        let md = std::fs::read_to_string(path.with_file_name(MARKDOWN)).unwrap();
        assert_eq!(md, calico_conformance::report_md::render(&report));
        assert!(md.contains("```mermaid\nflowchart LR\n"));
        let xml = std::fs::read_to_string(path.with_file_name(JUNIT)).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let names: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .filter_map(|n| n.attribute("name"))
            .collect();
        assert_eq!(names.len(), report.cases.len());
        for (name, case) in names.iter().zip(&report.cases) {
            assert!(name.starts_with(&case.claim), "{name} names {}", case.claim);
        }
    }

    /// Checks a report of one target's whole run: it validates, holds every claim case once
    /// (none failed), keeps structured values, and times each phase.
    fn check_report(json: &serde_json::Value, target: &str) {
        assert_eq!(schema_errors(json), Vec::<String>::new());
        let cases = json["cases"].as_array().unwrap();
        let planned = plans(&[TargetKind::Kube]).len();
        assert_eq!(cases.len(), planned, "every claim case once");
        let failed: Vec<&serde_json::Value> =
            cases.iter().filter(|c| c["status"] == "failed").collect();
        assert!(failed.is_empty(), "{failed:#?}");
        assert!(cases.iter().all(|c| c["target"] == target));
        let values: Vec<&serde_json::Value> = cases
            .iter()
            .flat_map(|c| c["checks"].as_array().unwrap())
            .flat_map(|c| [&c["expected"], &c["observed"]])
            .filter_map(|side| side.get("value"))
            .collect();
        for kind in ["mtu", "mac", "route", "ttls", "encapsulation"] {
            assert!(
                values.iter().any(|v| v.get(kind).is_some()),
                "no {kind} value"
            );
        }
        let phases = &json["targets"][0]["phases"];
        assert_eq!(phases["processes"], 1);
        assert!(phases["claims_ms"].as_f64().unwrap() > 0.0);
        assert!(phases["teardown_ms"].as_f64().is_some());
    }

    /// A lab run's report (lab, None) validates against the published schema and is whole.
    #[test]
    fn a_lab_runs_report_validates_against_the_schema() {
        use calico_conformance::facts::Encapsulation;
        let rt = runtime().unwrap();
        let json = run_and_report(&rt, TargetKind::Lab(Encapsulation::None));
        check_report(&json, "lab_none");
        assert_eq!(json["targets"][0]["facts"]["target"], "lab (None)");
    }

    /// A topology run's report: the VXLAN lab built alone, attached to through the topology
    /// file it writes (as `cargo run -- lab --topology` and `CALICO_TARGET=topology:` do).
    #[test]
    fn a_topology_runs_report_validates_against_the_schema() {
        use calico_conformance::facts::Encapsulation;
        use calico_conformance::lab::{Lab, LabSpec};
        let rt = runtime().unwrap();
        let spec = LabSpec::article(Encapsulation::Vxlan);
        let lab = rt
            .block_on(Lab::build(&spec, calico_conformance::run::run_id()))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("topology.json");
        lab.topology.save(&file).unwrap();
        let json = run_and_report(&rt, TargetKind::Topology(file));
        rt.block_on(lab.teardown()).unwrap();
        check_report(&json, "topology");
        let facts = &json["targets"][0]["facts"];
        assert_eq!(facts["pools"][0]["encapsulation"], "VXLAN");
    }

    /// A helper run in child processes by
    /// `two_nextest_processes_on_one_topology_each_serve_and_get_the_article_body`: opens the
    /// topology target of `CALICO_TOPOLOGY_FILE` as a nextest process does, holds it a moment
    /// (so two children overlap without the lock), runs P2P-2, and closes it.
    #[test]
    #[ignore = "a helper: run in child processes"]
    fn topology_taker() {
        let Some(file) = std::env::var_os("CALICO_TOPOLOGY_FILE") else {
            return;
        };
        let rt = runtime().unwrap();
        let kind = TargetKind::Topology(file.into());
        let (targets, _) = open_targets(&rt, std::slice::from_ref(&kind), false).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let plan = plans(std::slice::from_ref(&kind))
            .into_iter()
            .find(|p| p.claim.id == "P2P-2")
            .unwrap();
        let result = rt.block_on(run_case(
            &plan.claim,
            &targets[0].1,
            plan.pod,
            &Shared::default(),
        ));
        close(&rt, targets);
        assert_eq!(result.status, Status::Passed, "{:?}", result.message);
    }

    /// Two processes of one nextest run on one topology (each serves the article's server on
    /// port 8080 in the pod namespaces): both open it and get the article's body, one after
    /// the other. Without `one_topology_process_at_a_time` the second stops with "Address
    /// already in use".
    #[test]
    fn two_nextest_processes_on_one_topology_each_serve_and_get_the_article_body() {
        use calico_conformance::facts::Encapsulation;
        use calico_conformance::lab::{Lab, LabSpec};
        let rt = runtime().unwrap();
        let lab = rt
            .block_on(Lab::build(
                &LabSpec::article(Encapsulation::None),
                calico_conformance::run::run_id(),
            ))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("topology.json");
        lab.topology.save(&file).unwrap();
        let exe = std::env::current_exe().unwrap();
        let nextest_run = format!("{:x}-two-topology-processes", std::process::id());
        let children: Vec<std::process::Child> = (0..2)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--ignored",
                        "--exact",
                        "claims::runner::tests::topology_taker",
                    ])
                    .env("CALICO_TOPOLOGY_FILE", &file)
                    .env("NEXTEST_RUN_ID", &nextest_run)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<std::process::Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        rt.block_on(lab.teardown()).unwrap();
        for out in outputs {
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("1 passed"), "the helper did not run: {text}");
        }
    }

    fn parse(args: &[&str]) -> (libtest_mimic::Arguments, Vec<String>) {
        parse_args(
            std::iter::once("conformance")
                .chain(args.iter().copied())
                .map(Into::into),
        )
    }

    #[test]
    fn every_positional_filter_is_kept_and_option_values_are_not_filters() {
        let (args, more) = parse(&[
            "pod_r1",
            "--skip",
            "vxlan",
            "arp_1",
            "--test-threads",
            "2",
            "--exact",
            "veth_3",
        ]);
        assert_eq!(args.filter.as_deref(), Some("pod_r1"));
        assert_eq!(more, ["arp_1", "veth_3"]);
        assert_eq!(args.skip, ["vxlan"]);
        assert_eq!(args.test_threads, Some(2));
        assert!(args.exact);
    }

    #[test]
    fn one_filter_or_none_is_left_to_libtest_mimic() {
        let (args, more) = parse(&["pod_r1", "--list"]);
        assert_eq!(args.filter.as_deref(), Some("pod_r1"));
        assert!(more.is_empty() && args.list);
        let (args, more) = parse(&["--skip=faults::"]);
        assert_eq!(args.filter, None);
        assert!(more.is_empty());
        assert_eq!(args.skip, ["faults::"]);
    }
}
