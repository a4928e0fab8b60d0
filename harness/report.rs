//! `report.json`: what a run found, as one JSON document (format v1, schema
//! `schemas/report.schema.json`), written to `target/calico-conformance/<run-id>/report.json`.
//!
//! Every process of a run adds a [`Part`] (the cases it ran and the targets it opened): the
//! part goes to `<run>/cases/<pid>-<nanos>-<n>.json` (written to a temporary file, then
//! hard-linked into place, so a reader never sees half a part and no part ever replaces
//! another), and then, under an exclusive lock on `<run>/report.lock`, the report is rebuilt
//! from every part in the folder and replaces `report.json` atomically (temporary file +
//! rename). One process (`cargo test`, `cargo run -- check`) adds one part at its end; under
//! cargo-nextest each test process adds its own, and whichever process finishes last leaves the
//! report whole. A case is identified by (target, claim, pod): the same case in two parts is an
//! error naming both files, never merged away.

use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::results::CaseResult;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The value of the report's `schema` field.
pub const SCHEMA: &str = "calico-conformance/report/v1";
/// The report's file name in the run's folder.
pub const FILE: &str = "report.json";
/// The folder of the run's folder that holds each process's [`Part`].
pub const PARTS: &str = "cases";
/// How long a process waits for another one of its run to finish rebuilding the report.
const LOCK_DEADLINE: Duration = Duration::from_secs(60);

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// The suite's version (`CARGO_PKG_VERSION`).
    pub suite_version: String,
    pub run_id: String,
    /// When the run's first process started (RFC 3339, UTC).
    pub started: String,
    /// When the run's last process ended (RFC 3339, UTC).
    pub ended: String,
    /// Each target the run opened, in the order first opened.
    pub targets: Vec<TargetReport>,
    /// Every claim case, sorted by target (in the order of `targets`), claim ID and pod. The
    /// fault self-test's trials are not claim cases and are not here.
    pub cases: Vec<CaseResult>,
}

/// One target of a run: its facts and how long its phases took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// `lab_none`, `lab_vxlan`, `topology`, `kube`.
    pub name: String,
    pub facts: Facts,
    pub phases: Phases,
}

/// How long a target's phases took. When several processes opened the target (cargo-nextest:
/// one per test), `processes` says how many and every time is the sum over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub processes: u32,
    /// Opening the target, its parts included.
    pub open_ms: f64,
    /// The parts of opening it (`deploy and readiness` on a cluster); none on the lab.
    pub parts: Vec<PhasePart>,
    /// From the first case's start to the last case's end; `null` when no case ran.
    pub claims_ms: Option<f64>,
    /// Closing the target; `null` when it was not closed.
    pub teardown_ms: Option<f64>,
}

/// A named part of opening a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhasePart {
    pub name: String,
    pub ms: f64,
}

/// Milliseconds, as the report keeps durations.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Now, as the report writes times.
pub fn now() -> String {
    Timestamp::now().to_string()
}

/// What one process adds to its run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// When the process started (RFC 3339).
    pub started: String,
    /// When it ended (RFC 3339).
    pub ended: String,
    /// The targets it opened (each with `processes: 1`).
    pub targets: Vec<TargetReport>,
    /// The claim cases it ran.
    pub cases: Vec<CaseResult>,
}

/// Adds `part` to the report of the run whose folder is `root`, and rebuilds
/// `<root>/report.json` from every part added so far. Returns the report's path.
pub fn add(root: &Path, run_id: &str, part: &Part) -> Result<PathBuf> {
    add_with(root, run_id, part, |_| Ok(()))
}

/// [`add`], then `beside` with the merged report, still under the lock (so files written from
/// it, `report.md`, are never older than `report.json`).
pub fn add_with(
    root: &Path,
    run_id: &str,
    part: &Part,
    beside: impl FnOnce(&Report) -> Result<()>,
) -> Result<PathBuf> {
    let dir = root.join(PARTS);
    std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, format!("creating it: {e}")))?;
    write_part(&dir, part)?;
    let _lock = crate::run::lock_exclusive(&root.join("report.lock"), LOCK_DEADLINE)?;
    let report = merge(&dir, run_id)?;
    let path = root.join(FILE);
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::Internal(format!("serializing the report: {e}")))?;
    crate::run::write_whole(&path, &(text + "\n"))?;
    beside(&report)?;
    Ok(path)
}

fn file_error(path: &Path, problem: String) -> Error {
    Error::File {
        path: path.to_path_buf(),
        problem,
    }
}

/// Writes `part` as a new file of `dir`, named after this process and the time, never
/// replacing one (a pid may be reused within a run; a hard link fails where the name exists).
fn write_part(dir: &Path, part: &Part) -> Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = Timestamp::now().as_nanosecond();
    let name = format!("{}-{nanos}-{n}.json", std::process::id());
    let (tmp, path) = (dir.join(format!(".{name}.tmp")), dir.join(&name));
    let text = serde_json::to_string(part)
        .map_err(|e| Error::Internal(format!("serializing this process's cases: {e}")))?;
    std::fs::write(&tmp, text).map_err(|e| file_error(&tmp, format!("writing: {e}")))?;
    let linked = std::fs::hard_link(&tmp, &path)
        .map_err(|e| file_error(&path, format!("linking {} to it: {e}", tmp.display())));
    let _ = std::fs::remove_file(&tmp);
    linked.map(|()| path)
}

/// Every part in `dir` (file names in order), with its file name.
fn read_parts(dir: &Path) -> Result<Vec<(String, Part)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, format!("listing: {e}")))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| file_error(dir, format!("listing: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| file_error(&path, format!("reading: {e}")))?;
            let part = serde_json::from_str(&text)
                .map_err(|e| Error::parse(path.display().to_string(), e.to_string()))?;
            Ok((name, part))
        })
        .collect()
}

fn timestamp(text: &str, file: &str) -> Result<Timestamp> {
    text.parse()
        .map_err(|e| Error::parse(file, format!("`{text}` is not an RFC 3339 time: {e}")))
}

/// The report made of every part in `dir`: started at the earliest start, ended at the latest
/// end, each target once (phases summed over the processes that opened it), every case once.
pub fn merge(dir: &Path, run_id: &str) -> Result<Report> {
    let parts = read_parts(dir)?;
    let mut times: Vec<(Timestamp, Timestamp)> = Vec::new();
    let mut targets: Vec<TargetReport> = Vec::new();
    let mut cases: BTreeMap<(usize, String, Option<String>), (String, CaseResult)> =
        BTreeMap::new();
    for (file, part) in parts {
        times.push((
            timestamp(&part.started, &file)?,
            timestamp(&part.ended, &file)?,
        ));
        for t in part.targets {
            match targets.iter_mut().find(|known| known.name == t.name) {
                Some(known) => known.phases.add(&t.phases),
                None => targets.push(t),
            }
        }
        for case in part.cases {
            let target = match targets.iter().position(|t| t.name == case.target) {
                Some(i) => i,
                None => {
                    return Err(Error::parse(
                        file,
                        format!("a case of {} names a target it did not open", case.claim),
                    ));
                }
            };
            let key = (target, case.claim.clone(), case.pod.clone());
            if let Some((first, _)) = cases.get(&key) {
                return Err(Error::Internal(format!(
                    "case {} {} {} is in two parts of the report, {first} and {file}",
                    case.target,
                    case.claim,
                    case.pod.as_deref().unwrap_or("(per target)")
                )));
            }
            cases.insert(key, (file.clone(), case));
        }
    }
    let started = times.iter().map(|t| t.0).min();
    let ended = times.iter().map(|t| t.1).max();
    let show = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_else(now);
    Ok(Report {
        schema: SCHEMA.to_string(),
        suite_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: run_id.to_string(),
        started: show(started),
        ended: show(ended),
        targets,
        cases: cases.into_values().map(|(_, c)| c).collect(),
    })
}

impl Phases {
    /// One process's phases.
    pub fn one(
        open: Duration,
        parts: Vec<(String, Duration)>,
        claims: Option<Duration>,
        teardown: Option<Duration>,
    ) -> Phases {
        Phases {
            processes: 1,
            open_ms: ms(open),
            parts: parts
                .into_iter()
                .map(|(name, d)| PhasePart { name, ms: ms(d) })
                .collect(),
            claims_ms: claims.map(ms),
            teardown_ms: teardown.map(ms),
        }
    }

    /// Adds another process's phases of the same target.
    fn add(&mut self, other: &Phases) {
        let sum = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        self.processes += other.processes;
        self.open_ms += other.open_ms;
        for p in &other.parts {
            match self.parts.iter_mut().find(|q| q.name == p.name) {
                Some(q) => q.ms += p.ms,
                None => self.parts.push(p.clone()),
            }
        }
        self.claims_ms = sum(self.claims_ms, other.claims_ms);
        self.teardown_ms = sum(self.teardown_ms, other.teardown_ms);
    }
}

/// What the published schema (`schemas/report.schema.json`) finds wrong with `report`, each with
/// where; empty when it validates. The schema itself is checked against its metaschema.
#[cfg(test)]
pub(crate) fn schema_errors(report: &serde_json::Value) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/report.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::meta::validate(&schema).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    validator
        .iter_errors(report)
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::value::{
        Disagreement, EchoFields, EncapsulationFields, NeighbourFields, RouteFields, UnderlayFields,
    };
    use crate::expect::{Value, eq};
    use crate::results::Status;
    use std::collections::BTreeSet;
    use std::time::Instant;

    fn target(name: &str) -> TargetReport {
        TargetReport {
            name: name.into(),
            facts: Facts::one_node_for_tests(name),
            phases: Phases::one(
                Duration::from_millis(12),
                vec![("deploy".into(), Duration::from_millis(5))],
                Some(Duration::from_millis(30)),
                Some(Duration::from_millis(2)),
            ),
        }
    }

    fn case(target: &str, claim: &str, pod: Option<&str>) -> CaseResult {
        let mut c = CaseResult::new((claim, "a sentence"), target, pod);
        c.checks
            .push(eq("eth0 MTU", Value::Mtu(1500), Value::Mtu(1500)));
        c.duration = Duration::from_micros(1234);
        c
    }

    /// One value of every kind (a new kind of [`Value`] does not compile here until it has one).
    fn every_value() -> Vec<Value> {
        let route = RouteFields {
            kind: "unicast".into(),
            dst: "default".into(),
            via: Some("169.254.1.1".parse().unwrap()),
            dev: Some("eth0".into()),
            scope: None,
            onlink: false,
        };
        let all = vec![
            Value::Mtu(1450),
            Value::Mac(Some("ee:ee:ee:ee:ee:ee".into())),
            Value::Mac(None),
            Value::Name("eth0".into()),
            Value::Kind(None),
            Value::Index(Some(4)),
            Value::Flags(vec!["UP".into()]),
            Value::Addresses(vec!["192.168.1.12/32 scope global".into()]),
            Value::Interfaces(vec!["lo".into()]),
            Value::Sysctls([("net.ipv4.ip_forward".to_string(), "1".to_string())].into()),
            Value::Route(route.clone()),
            Value::Routes(vec![route]),
            Value::Neighbour(NeighbourFields {
                ip: "169.254.1.1".parse().unwrap(),
                dev: "eth0".into(),
                lladdr: None,
                states: vec!["REACHABLE".into()],
            }),
            Value::Ttl(63),
            Value::Ttls(vec![63, 63]),
            Value::Encapsulation(EncapsulationFields {
                mode: "VXLAN".into(),
                between: ["10.12.22.2".parse().unwrap(), "10.12.22.3".parse().unwrap()],
                protocol: 17,
                udp_port: Some(4789),
                vni: Some(4096),
            }),
            Value::Frames(vec!["a frame".into()]),
            Value::Count(3),
            Value::Body("<p>Hi</p>".into()),
            Value::Disagreements(vec![Disagreement {
                node: "k8s-worker-1".into(),
                kind: "link".into(),
                name: "cali0123456789a".into(),
                problem: "no pod on k8s-worker-1 has it".into(),
            }]),
            Value::Mtus(
                [
                    ("calied9d42cb137".to_string(), Some(1450)),
                    ("vxlan.calico".to_string(), None),
                ]
                .into(),
            ),
            Value::Echo(EchoFields {
                payload: 1422,
                outcomes: vec!["fragmentation_needed".into()],
                mtu: Some(1400),
                from: Some("10.12.22.2".parse().unwrap()),
            }),
            Value::UnderlayFrames(UnderlayFields {
                largest: Some(1500),
                fragments: 0,
                full_size_seen: true,
            }),
            Value::Mss(Some(1410)),
            Value::Mss(None),
        ];
        for v in &all {
            match v {
                Value::Mtu(_)
                | Value::Mac(_)
                | Value::Name(_)
                | Value::Kind(_)
                | Value::Index(_)
                | Value::Flags(_)
                | Value::Addresses(_)
                | Value::Interfaces(_)
                | Value::Sysctls(_)
                | Value::Route(_)
                | Value::Routes(_)
                | Value::Neighbour(_)
                | Value::Ttl(_)
                | Value::Ttls(_)
                | Value::Encapsulation(_)
                | Value::Frames(_)
                | Value::Count(_)
                | Value::Body(_)
                | Value::Disagreements(_)
                | Value::Mtus(_)
                | Value::Echo(_)
                | Value::UnderlayFrames(_)
                | Value::Mss(_) => {}
            }
        }
        all
    }

    /// A report with every kind of value, every status and both phase forms validates, reads
    /// back as it was written, and the schema refuses what it must.
    #[test]
    fn every_value_and_status_validates_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut cases = Vec::new();
        for (i, v) in every_value().into_iter().enumerate() {
            let mut c = case("lab_none", &format!("V-{i}"), Some("test-tools"));
            c.checks.push(eq("a value", v.clone(), v).judging("ip.out"));
            cases.push(c);
        }
        let mut failed = case("lab_none", "F-1", None);
        failed.status = Status::Failed;
        failed.message = Some("F-1 a sentence [lab_none]".into());
        failed.evidence_dir = Some(dir.path().join("F-1"));
        failed.evidence = vec!["ip.out".into()];
        cases.push(failed);
        cases.push(case("lab_none", "N-1", None).not_applicable("one node"));
        let mut t = target("lab_none");
        t.phases.teardown_ms = None;
        let part = Part {
            started: now(),
            ended: now(),
            targets: vec![t],
            cases,
        };
        let path = add(dir.path(), "r-1", &part).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(schema_errors(&json), Vec::<String>::new());
        let report: Report = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(report.cases.len(), part.cases.len());
        assert_eq!(report.targets, part.targets);
        assert_eq!(json["schema"], SCHEMA);
        // Cases are sorted by claim: F-1, N-1, V-0 (index 2, its second check the value), ...
        for (mutate, why) in [
            (r#"{"/cases/0/status": "ok"}"#, "unknown status"),
            (
                r#"{"/cases/2/checks/1/expected/value": {"mtu": 1, "mac": null}}"#,
                "two values",
            ),
            (
                r#"{"/cases/2/checks/1/expected/value": {"colour": 1}}"#,
                "unknown value",
            ),
            (r#"{"/targets/0/facts/install": "helm"}"#, "unknown install"),
            (r#"{"/started": "yesterday"}"#, "not a time"),
        ] {
            let mut bad = json.clone();
            let change: BTreeMap<String, serde_json::Value> = serde_json::from_str(mutate).unwrap();
            for (at, v) in change {
                *bad.pointer_mut(&at).unwrap() = v;
            }
            assert!(!schema_errors(&bad).is_empty(), "{why} passed the schema");
        }
        let mut na = json.clone();
        na["cases"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(|c| {
                c.as_object_mut().unwrap().remove("reason");
            });
        assert!(
            !schema_errors(&na).is_empty(),
            "not applicable without a reason"
        );
    }

    /// The same case in two parts is an error that names both files; nothing is merged away.
    #[test]
    fn a_case_in_two_parts_is_an_error_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let part = |claim: &str| Part {
            started: now(),
            ended: now(),
            targets: vec![target("lab_none")],
            cases: vec![case("lab_none", claim, Some("test-tools"))],
        };
        add(dir.path(), "r", &part("POD-R1")).unwrap();
        add(dir.path(), "r", &part("POD-R2")).unwrap();
        let e = add(dir.path(), "r", &part("POD-R1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lab_none POD-R1 test-tools is in two parts"),
            "{e}"
        );
        assert_eq!(e.matches(".json").count(), 2, "{e}");
    }

    /// Parts merge into one report: the earliest start, the latest end, each target once with
    /// its phases summed over the processes.
    #[test]
    fn parts_merge_times_and_phases() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Part {
            started: "2026-12-01T16:00:01Z".into(),
            ended: "2026-12-01T16:00:09Z".into(),
            targets: vec![target("lab_none")],
            cases: vec![case("lab_none", "POD-R1", Some("test-tools"))],
        };
        add(dir.path(), "r", &a).unwrap();
        a.started = "2026-12-01T16:00:00.5Z".into();
        a.ended = "2026-12-01T16:00:08Z".into();
        a.targets[0].phases.teardown_ms = None;
        a.targets[0].phases.parts.push(PhasePart {
            name: "more".into(),
            ms: 1.0,
        });
        a.targets.push(target("lab_vxlan"));
        a.cases = vec![case("lab_vxlan", "POD-R1", Some("test-tools"))];
        let report = add(dir.path(), "r", &a).unwrap();
        let report: Report =
            serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        assert_eq!(report.started, "2026-12-01T16:00:00.5Z");
        assert_eq!(report.ended, "2026-12-01T16:00:09Z");
        let names: Vec<&str> = report.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["lab_none", "lab_vxlan"]);
        let p = &report.targets[0].phases;
        assert_eq!(
            (p.processes, p.open_ms, p.claims_ms, p.teardown_ms),
            (2, 24.0, Some(60.0), Some(2.0))
        );
        assert_eq!(p.parts.len(), 2);
        assert_eq!(p.parts[0].ms, 10.0);
        assert_eq!(report.cases.len(), 2);
        assert_eq!(report.cases[0].target, "lab_none");
    }

    /// How many processes [`processes_adding_at_once_leave_every_case_once`] starts.
    const PROCESSES: usize = 104;

    /// Run only by [`processes_adding_at_once_leave_every_case_once`], in a child process: when
    /// the `go` file appears, adds one case (`CALICO_REPORT_CHILD` = its index) to the run in
    /// `CALICO_REPORT_ROOT`, as one cargo-nextest test process does.
    #[test]
    #[ignore = "a helper: run in child processes by processes_adding_at_once_leave_every_case_once"]
    fn report_child() {
        let (Some(root), Ok(i)) = (
            std::env::var_os("CALICO_REPORT_ROOT"),
            std::env::var("CALICO_REPORT_CHILD"),
        ) else {
            return;
        };
        let root = PathBuf::from(root);
        let i: usize = i.parse().unwrap();
        let started = now();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !root.join("go").exists() {
            assert!(Instant::now() < deadline, "no go within 60 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        let name = ["lab_none", "lab_vxlan"][i % 2];
        let part = Part {
            started,
            ended: now(),
            targets: vec![target(name)],
            cases: vec![case(name, &format!("T-{}", i / 2), Some("test-tools"))],
        };
        crate::report_files::add(&root, "nx-test", &part).unwrap();
    }

    /// [`PROCESSES`] processes of one run, each adding its one case at the same moment (as
    /// cargo-nextest's test processes of the lab: 104 claim cases): the report holds every case
    /// exactly once, each target once with every process counted, and validates; report.md and
    /// junit.xml beside it are the whole report's.
    #[test]
    fn processes_adding_at_once_leave_every_case_once() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut children: Vec<std::process::Child> = (0..PROCESSES)
            .map(|i| {
                std::process::Command::new(&exe)
                    .args(["--ignored", "--exact", "report::tests::report_child"])
                    .env("CALICO_REPORT_ROOT", dir.path())
                    .env("CALICO_REPORT_CHILD", i.to_string())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::fs::write(dir.path().join("go"), "").unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        for child in &mut children {
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    children.iter_mut().for_each(|c| drop(c.kill()));
                    panic!("the children did not finish within 120 s");
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            assert!(status.success());
        }
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(schema_errors(&json), Vec::<String>::new());
        let report: Report = serde_json::from_value(json).unwrap();
        let keys: Vec<(String, String)> = report
            .cases
            .iter()
            .map(|c| (c.target.clone(), c.claim.clone()))
            .collect();
        let distinct: BTreeSet<&(String, String)> = keys.iter().collect();
        assert_eq!(keys.len(), PROCESSES, "every case once");
        assert_eq!(distinct.len(), PROCESSES, "no case twice");
        let counted: Vec<u32> = report.targets.iter().map(|t| t.phases.processes).collect();
        assert_eq!(counted, [PROCESSES as u32 / 2; 2]);
        let md = std::fs::read_to_string(dir.path().join(crate::report_files::MARKDOWN)).unwrap();
        assert_eq!(
            md,
            crate::report_md::render(&report),
            "report.md is the whole report's"
        );
        let xml = std::fs::read_to_string(dir.path().join(crate::report_files::JUNIT)).unwrap();
        assert_eq!(xml.matches("<testcase ").count(), PROCESSES);
        let parts = std::fs::read_dir(dir.path().join(PARTS)).unwrap().count();
        assert_eq!(
            parts, PROCESSES,
            "one part per process, no temporary file left"
        );
    }
}
