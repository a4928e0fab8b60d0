//! The fault self-test: every fault of the catalogue applied to a fresh lab; the claims it
//! targets must fail (each naming expected and observed), the claims it spares must pass, and
//! the whole row must equal the committed `docs/fault-matrix.md`.

use super::support::{PODS, Per, Shared, run_case};
use calico_conformance::facts::Encapsulation;
use calico_conformance::faults::{Fault, catalogue, has_tool};
use calico_conformance::results::{CaseResult, Status};
use calico_conformance::target::{Target, TargetKind};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What a fault trial runs.
/// `Ok(None)`: passed; `Ok(Some(reason))`: could not run here (reported ignored, with the reason).
pub type FaultRun =
    Box<dyn FnOnce(&tokio::runtime::Runtime) -> Result<Option<String>, String> + Send>;

/// A fault trial.
pub struct FaultPlan {
    pub name: String,
    pub run: FaultRun,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Pass,
    Fail,
    NotApplicable,
}

impl Cell {
    fn as_str(self) -> &'static str {
        match self {
            Cell::Pass => "pass",
            Cell::Fail => "FAIL",
            Cell::NotApplicable => "n/a",
        }
    }
}

/// The committed matrix.
pub fn matrix_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/fault-matrix.md")
}

/// Every case of every claim on `target` (each pod for a per-pod claim), run concurrently as
/// the runner does: each case's claim ID and result, in claim order.
pub async fn every_case(
    target: &Arc<Target>,
    shared: &Arc<Shared>,
) -> Result<Vec<(&'static str, CaseResult)>, String> {
    let mut jobs = Vec::new();
    for claim in super::all() {
        let pods: Vec<Option<&'static str>> = match claim.per {
            Per::Target => vec![None],
            Per::EachPod => PODS.iter().map(|p| Some(*p)).collect(),
        };
        for pod in pods {
            let (t, s, c) = (target.clone(), shared.clone(), claim.clone());
            jobs.push(tokio::spawn(async move {
                (c.id, run_case(&c, &t, pod, &s).await)
            }));
        }
    }
    let mut out = Vec::new();
    for j in jobs {
        out.push(j.await.map_err(|e| format!("a claim task failed: {e}"))?);
    }
    Ok(out)
}

/// Runs every claim case on a lab in `mode` with `fault` applied (none: the correct lab);
/// returns per claim ID the cell and the failure messages.
pub async fn row(
    kind: TargetKind,
    fault: Option<&Fault>,
) -> Result<BTreeMap<&'static str, (Cell, Vec<String>)>, String> {
    let mut target = Target::open(&kind)
        .await
        .map_err(|e| format!("building the lab: {e}"))?;
    let shared = Shared::default();
    if let Some(f) = fault {
        (f.apply)(&mut target, &shared.switches)
            .await
            .map_err(|e| format!("applying fault {}: {e}", f.name))?;
    }
    let target = Arc::new(target);
    let mut out: BTreeMap<&'static str, (Cell, Vec<String>)> = BTreeMap::new();
    for (id, result) in every_case(&target, &Arc::new(shared)).await? {
        let e = out.entry(id).or_insert((Cell::NotApplicable, Vec::new()));
        match result.status {
            Status::Failed => {
                e.0 = Cell::Fail;
                e.1.extend(result.message);
            }
            Status::Passed if e.0 != Cell::Fail => e.0 = Cell::Pass,
            _ => {}
        }
    }
    if let Ok(t) = Arc::try_unwrap(target) {
        t.close()
            .await
            .map_err(|e| format!("closing the lab: {e}"))?;
    }
    Ok(out)
}

fn ids() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for c in super::all() {
        if !v.contains(&c.id) {
            v.push(c.id);
        }
    }
    v
}

/// A matrix row as markdown.
pub fn row_markdown(name: &str, row: &BTreeMap<&'static str, (Cell, Vec<String>)>) -> String {
    let cells: Vec<&str> = ids()
        .iter()
        .map(|id| row.get(id).map(|c| c.0.as_str()).unwrap_or("?"))
        .collect();
    format!("| `{name}` | {} |", cells.join(" | "))
}

/// The matrix header.
pub fn header() -> String {
    let ids = ids();
    format!(
        "| fault | {} |\n|---|{}",
        ids.join(" | "),
        ids.iter().map(|_| "---|").collect::<String>()
    )
}

/// The rows of the committed matrix, by fault name.
fn committed_rows() -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(matrix_path()).map_err(|e| {
        format!(
            "{}: cannot read ({e}); write it with `cargo run -- faults --matrix`",
            matrix_path().display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let name = l.strip_prefix("| `")?.split('`').next()?;
            Some((name.to_string(), l.to_string()))
        })
        .collect())
}

/// The correct labs the matrix starts with: each mode, then the dual-stack lab.
fn correct_labs() -> Vec<(String, TargetKind)> {
    vec![
        ("no_fault_none".into(), TargetKind::Lab(Encapsulation::None)),
        (
            "no_fault_vxlan".into(),
            TargetKind::Lab(Encapsulation::Vxlan),
        ),
        (
            "no_fault_dualstack".into(),
            TargetKind::LabDualStack(Encapsulation::None),
        ),
        (
            "no_fault_vxlan_dualstack".into(),
            TargetKind::LabDualStack(Encapsulation::Vxlan),
        ),
    ]
}

/// One trial per fault (and one for the correct lab in each mode).
pub fn plans() -> Vec<FaultPlan> {
    let mut out = Vec::new();
    for (name, kind) in correct_labs() {
        out.push(FaultPlan {
            name: format!("faults::{name}"),
            run: Box::new(move |rt| {
                let r = rt.block_on(row(kind, None))?;
                let failed: Vec<String> = r.values().flat_map(|c| c.1.clone()).collect();
                if !failed.is_empty() {
                    return Err(format!(
                        "the correct lab fails claims:\n{}",
                        failed.join("\n")
                    ));
                }
                check_committed(&name, &r).map(|()| None)
            }),
        });
    }
    out.push(FaultPlan {
        name: "faults::every_claim_fails_under_some_fault".into(),
        run: Box::new(|_| coverage().map(|()| None)),
    });
    for fault in catalogue() {
        out.push(FaultPlan {
            name: format!("faults::{}", fault.name),
            run: Box::new(move |rt| check_fault(rt, &fault)),
        });
    }
    out
}

/// The committed matrix covers the catalogue exactly, every claim column has a FAIL, every
/// fault row has a FAIL, and the correct labs' rows have none.
fn coverage() -> Result<(), String> {
    let rows = committed_rows()?;
    let mut expected: Vec<String> = correct_labs().into_iter().map(|(n, _)| n).collect();
    expected.extend(catalogue().iter().map(|f| f.name.to_string()));
    let mut problems = Vec::new();
    for name in &expected {
        if !rows.contains_key(name) {
            problems.push(format!("no row for {name}"));
        }
    }
    for name in rows.keys() {
        if !expected.contains(name) {
            problems.push(format!("row {name} is no fault of the catalogue"));
        }
    }
    let ids = ids();
    let mut failed_by: BTreeMap<&str, usize> = ids.iter().map(|id| (*id, 0)).collect();
    for (name, line) in &rows {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .skip(1)
            .collect();
        let fails = cells.iter().filter(|c| **c == "FAIL").count();
        match (name.starts_with("no_fault"), fails) {
            (true, n) if n > 0 => {
                problems.push(format!("the correct lab {name} fails {n} claim(s)"))
            }
            (false, 0) => problems.push(format!("fault {name} fails no claim")),
            _ => {}
        }
        for (id, cell) in ids.iter().zip(cells) {
            if cell == "FAIL" {
                *failed_by.entry(id).or_default() += 1;
            }
        }
    }
    for (id, n) in failed_by {
        if n == 0 {
            problems.push(format!("no fault makes {id} fail"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn check_committed(
    name: &str,
    r: &BTreeMap<&'static str, (Cell, Vec<String>)>,
) -> Result<(), String> {
    let line = row_markdown(name, r);
    let committed = committed_rows()?;
    match committed.get(name) {
        Some(c) if *c == line => Ok(()),
        Some(c) => Err(format!(
            "docs/fault-matrix.md is not current for {name}:\n  committed: {c}\n  observed:  {line}\n{}regenerate with `cargo run -- faults --matrix`",
            changed_cells(c, r)
        )),
        None => Err(format!(
            "docs/fault-matrix.md has no row for {name}; regenerate with `cargo run -- faults --matrix`"
        )),
    }
}

/// For each claim whose cell differs from the committed row `committed`: its ID, the two
/// cells, and the messages of its cases (what a flaky or changed cell needs to be understood).
fn changed_cells(committed: &str, r: &BTreeMap<&'static str, (Cell, Vec<String>)>) -> String {
    let cells: Vec<&str> = committed.split('|').map(str::trim).skip(2).collect();
    let mut out = String::new();
    for (id, was) in ids().iter().zip(cells) {
        let Some((cell, messages)) = r.get(id) else {
            continue;
        };
        if cell.as_str() != was {
            out += &format!("  {id}: committed {was}, observed {}\n", cell.as_str());
            for m in messages {
                out += &format!("    {}\n", m.replace('\n', "\n    "));
            }
        }
    }
    out
}

fn check_fault(rt: &tokio::runtime::Runtime, fault: &Fault) -> Result<Option<String>, String> {
    if let Some((tool, package)) = fault.needs
        && !has_tool(tool)
    {
        // Not a pass: libtest reports the fault ignored, with this reason.
        return Ok(Some(format!(
            "fault {} needs `{tool}`: install the Debian package {package}",
            fault.name
        )));
    }
    let r = rt.block_on(row(fault.target_kind(), Some(fault)))?;
    let mut problems = Vec::new();
    for id in fault.fails {
        match r.get(id) {
            Some((Cell::Fail, msgs)) => {
                for m in msgs {
                    if !(m.contains("expected:") && m.contains("observed:")
                        || m.contains("could not observe:"))
                    {
                        problems.push(format!(
                            "{id} failed without naming expected and observed: {m}"
                        ));
                    }
                }
            }
            other => problems.push(format!(
                "{id} should fail under {} but was {}",
                fault.name,
                other.map(|c| c.0.as_str()).unwrap_or("not run")
            )),
        }
    }
    for id in fault.spares {
        if let Some((cell, msgs)) = r.get(id)
            && *cell != Cell::Pass
        {
            problems.push(format!(
                "{id} should be untouched by {} but was {}: {}",
                fault.name,
                cell.as_str(),
                msgs.join("\n")
            ));
        }
    }
    if problems.is_empty() {
        check_committed(fault.name, &r).map(|()| None)
    } else {
        Err(problems.join("\n"))
    }
}

/// Writes `docs/fault-matrix.md` from a fresh run of every claim against every fault.
pub fn write_matrix(rt: &tokio::runtime::Runtime) -> Result<PathBuf, String> {
    let mut text = String::from(
        "# Fault x claim matrix\n\nGenerated by `cargo run -- faults --matrix`; `cargo test faults` checks that this file is \
         current. Each row applies one fault of the catalogue (`harness/faults.rs`) to a freshly built lab and runs \
         every claim on every pod; `FAIL` means at least one case of the claim failed, `pass` that all passed, `n/a` \
         that the claim does not apply. The first rows are the correct lab in each mode.\n\n",
    );
    text += &header();
    text += "\n";
    // The rows as the self-test runs them, several labs at once (libtest's 8 threads), in
    // the catalogue's order: the correct lab in each mode, then each fault.
    let faults = catalogue();
    let mut rows: Vec<(String, TargetKind, Option<&Fault>)> = (correct_labs().into_iter())
        .map(|(name, kind)| (name, kind, None))
        .collect();
    rows.extend(
        faults
            .iter()
            .map(|f| (f.name.to_string(), f.target_kind(), Some(f))),
    );
    let cells = rt.block_on(
        futures::stream::iter(
            rows.iter()
                .map(|(_, kind, fault)| row(kind.clone(), *fault)),
        )
        .buffered(8)
        .collect::<Vec<_>>(),
    );
    for ((name, _, _), r) in rows.iter().zip(cells) {
        text += &row_markdown(name, &r?);
        text += "\n";
    }
    let mut notes = String::from("\n## The faults\n\n");
    for f in &faults {
        notes += &format!(
            "- `{}` ({} lab): {}. Must fail: {}; must still pass: {}.\n",
            f.name,
            f.lab_name(),
            f.what,
            f.fails.join(", "),
            f.spares.join(", ")
        );
    }
    text += &notes;
    std::fs::write(matrix_path(), text)
        .map_err(|e| format!("writing {}: {e}", matrix_path().display()))?;
    Ok(matrix_path())
}
