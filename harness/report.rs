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
    let dir = root.join(PARTS);
    std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, format!("creating it: {e}")))?;
    write_part(&dir, part)?;
    let _lock = crate::run::lock_exclusive(&root.join("report.lock"), LOCK_DEADLINE)?;
    let report = merge(&dir, run_id)?;
    let path = root.join(FILE);
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::Internal(format!("serializing the report: {e}")))?;
    let tmp = root.join(format!(".{FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text + "\n").map_err(|e| file_error(&tmp, format!("writing: {e}")))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| file_error(&path, format!("renaming {} onto it: {e}", tmp.display())))?;
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
