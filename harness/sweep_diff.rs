//! `diff OLD NEW` of two sweeps (`sweep.json`, before and after a Calico upgrade), node by
//! node: each node's status (passed → failed or error is a regression), the claim failures
//! (claim and pod) that are new and those that are gone, its MTU, and nodes only one sweep
//! has. [`run`] is the `diff` command for either kind of input: two run reports go to
//! [`crate::diff`], two sweeps are compared here, one of each is a bad input.
//!
//! Sweeps are read as JSON values against the format (`schema` `calico-conformance/sweep/v1`),
//! not through the writer's types, so a sweep written by an older or newer build of the same
//! schema still compares.

use crate::diff::{self, BadInput, Input};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The one sweep schema this build compares.
pub const SCHEMA: &str = "calico-conformance/sweep/v1";

/// The schema of `diff --json` on two sweeps.
pub const DIFF_SCHEMA: &str = "calico-conformance/sweep-diff/v1";

/// A node's verdict, as a sweep writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Error,
    /// NotReady or cordoned: left out of the sweep (a change, never a regression).
    Skipped,
}

impl Status {
    fn parse(s: &str) -> Option<Status> {
        match s {
            "passed" => Some(Status::Passed),
            "failed" => Some(Status::Failed),
            "error" => Some(Status::Error),
            "skipped" => Some(Status::Skipped),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// A claim that failed on a node: the claim, and the pod for a per-pod claim.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Failure {
    pub claim: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pod {
            Some(pod) => write!(f, "{} ({pod})", self.claim),
            None => f.write_str(&self.claim),
        }
    }
}

/// One node of a sweep as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub status: Status,
    pub pods: Option<u64>,
    pub mtu: Option<u64>,
    pub checks: Option<u64>,
    pub error: Option<String>,
    /// Each failed claim (and pod), with the observed text of its first failed check.
    pub failures: BTreeMap<Failure, String>,
}

/// A sweep as read: its file, target, whether it was stopped early, its nodes by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub path: PathBuf,
    pub target: String,
    pub nodes_total: u64,
    pub partial: bool,
    pub nodes: BTreeMap<String, Node>,
}

/// Reads a sweep: `arg` is a `sweep.json` or the sweep's folder holding one.
pub fn load(arg: &Path) -> Result<Sweep, BadInput> {
    match diff::read(arg)? {
        Input::Sweep { path, json } => parse(&path, &json),
        Input::Report(r) => Err(BadInput {
            path: r.path,
            problem: "a run report, not a sweep".into(),
        }),
    }
}

/// Reads a sweep's JSON (from `path`) against the schema; names the field that is missing or
/// of the wrong kind.
pub fn parse(path: &Path, json: &Json) -> Result<Sweep, BadInput> {
    let bad = |problem: String| BadInput {
        path: path.to_path_buf(),
        problem,
    };
    match json.get("schema").and_then(Json::as_str) {
        Some(SCHEMA) => {}
        other => {
            let other = other.unwrap_or("?");
            return Err(bad(format!(
                "sweep schema {other:?}, this build compares {SCHEMA:?} only"
            )));
        }
    }
    let not_a_sweep = |problem: String| bad(format!("not a sweep: {problem}"));
    let target = string(json, "target", "").map_err(not_a_sweep)?;
    let nodes_total = number(json, "nodes_total", "")
        .and_then(|n| n.ok_or_else(|| "no `nodes_total`".to_string()))
        .map_err(not_a_sweep)?;
    let partial = match json.get("partial") {
        Some(Json::Bool(b)) => *b,
        None => return Err(not_a_sweep("no `partial`".into())),
        Some(other) => {
            return Err(not_a_sweep(format!(
                "`partial` is {other}, not true or false"
            )));
        }
    };
    let list = json
        .get("nodes")
        .and_then(Json::as_array)
        .ok_or_else(|| not_a_sweep("no `nodes` list".into()))?;
    let mut nodes = BTreeMap::new();
    for (i, row) in list.iter().enumerate() {
        let (name, node) = parse_node(row, i).map_err(not_a_sweep)?;
        if nodes.insert(name.clone(), node).is_some() {
            return Err(not_a_sweep(format!("nodes[{i}]: node {name} twice")));
        }
    }
    Ok(Sweep {
        path: path.to_path_buf(),
        target,
        nodes_total,
        partial,
        nodes,
    })
}

/// One row of `nodes`: its name and the node.
fn parse_node(row: &Json, i: usize) -> Result<(String, Node), String> {
    let name = string(row, "node", &format!("nodes[{i}]: "))?;
    let at = format!("nodes[{i}] ({name}): ");
    let status = string(row, "status", &at)?;
    let status = Status::parse(&status)
        .ok_or_else(|| format!("{at}`status` is {status:?}, not passed, failed or error"))?;
    let error = match row.get("error") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("{at}`error` is {other}, not a string")),
    };
    let list = (row.get("failures").and_then(Json::as_array))
        .ok_or_else(|| format!("{at}no `failures` list"))?;
    let mut failures = BTreeMap::new();
    for (j, f) in list.iter().enumerate() {
        let at = format!("{at}failures[{j}]: ");
        let claim = string(f, "claim", &at)?;
        let pod = match f.get("pod") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("{at}`pod` is {other}, not a string")),
        };
        let observed = (f.pointer("/check/observed/text").and_then(Json::as_str))
            .ok_or_else(|| format!("{at}no `check.observed.text`"))?;
        let key = Failure { claim, pod };
        failures.entry(key).or_insert_with(|| observed.to_string());
    }
    let node = Node {
        status,
        pods: number(row, "pods", &at)?,
        mtu: number(row, "mtu", &at)?,
        checks: number(row, "checks", &at)?,
        error,
        failures,
    };
    Ok((name, node))
}

/// The string field `key` of `j`; `at` says where `j` is (`nodes[2] (k8s-worker-3): `).
fn string(j: &Json, key: &str, at: &str) -> Result<String, String> {
    match j.get(key) {
        Some(Json::String(s)) => Ok(s.clone()),
        None | Some(Json::Null) => Err(format!("{at}no `{key}`")),
        Some(other) => Err(format!("{at}`{key}` is {other}, not a string")),
    }
}

/// The optional whole-number field `key` of `j`.
fn number(j: &Json, key: &str, at: &str) -> Result<Option<u64>, String> {
    match j.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{at}`{key}` is {n}, not a whole number")),
    }
}

/// What became of a node from one sweep to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Passed before, failed or not observed now.
    Regressed,
    /// Failed or not observed before, passed now.
    Fixed,
    /// Only in NEW (a regression unless it passed).
    Added,
    /// Only in OLD, and NEW swept every node.
    Removed,
    /// Only in OLD, and NEW was stopped early (partial) before it.
    NotSwept,
    /// Another change of status (failed ↔ error), of its failures or of its MTU.
    Changed,
}

/// A claim failure that is new or gone, with the observed text of its first failed check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureShown {
    #[serde(flatten)]
    pub failure: Failure,
    pub observed: String,
}

/// A value of a node that changed: `mtu`; with `--all` also `pods`, `checks`, `error`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Json,
    pub new: Json,
}

/// One node that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeChange {
    pub node: String,
    pub change: Change,
    /// Its status in OLD; `null` when OLD has no such node.
    pub old: Option<Status>,
    /// Its status in NEW; `null` when NEW has no such node.
    pub new: Option<Status>,
    /// Claims (and pods) failing in NEW that did not fail in OLD.
    pub new_failures: Vec<FailureShown>,
    /// Claims (and pods) failing in OLD that no longer fail in NEW.
    pub gone_failures: Vec<FailureShown>,
    pub fields: Vec<FieldChange>,
    /// Why NEW could not observe it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub path: PathBuf,
    pub target: String,
    pub partial: bool,
    pub nodes_total: u64,
    /// Nodes it holds.
    pub swept: usize,
}

impl Side {
    fn of(s: &Sweep) -> Side {
        Side {
            path: s.path.clone(),
            target: s.target.clone(),
            partial: s.partial,
            nodes_total: s.nodes_total,
            swept: s.nodes.len(),
        }
    }
}

/// Everything that changed from one sweep to the other, by node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepDiff {
    pub schema: &'static str,
    pub old: Side,
    pub new: Side,
    /// Nodes that passed and fail now, and added nodes that do not pass.
    pub regressions: Vec<NodeChange>,
    /// Nodes that failed and pass now.
    pub fixed: Vec<NodeChange>,
    /// Every other change: status, failures, MTU, added (passing), removed, not swept.
    pub changes: Vec<NodeChange>,
    /// Nodes in both sweeps with the same status, failures and MTU.
    pub unchanged: usize,
}

impl SweepDiff {
    pub fn is_empty(&self) -> bool {
        self.regressions.is_empty() && self.fixed.is_empty() && self.changes.is_empty()
    }

    /// The exit code: 1 when a node regressed, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.regressions.is_empty())
    }
}

/// Compares two sweeps; `opts.all` also reports nodes whose pod count, check count or error
/// text changed (which differ between any two sweeps of a busy cluster).
pub fn compare(old: &Sweep, new: &Sweep, opts: diff::Options) -> SweepDiff {
    let mut d = SweepDiff {
        schema: DIFF_SCHEMA,
        old: Side::of(old),
        new: Side::of(new),
        regressions: Vec::new(),
        fixed: Vec::new(),
        changes: Vec::new(),
        unchanged: 0,
    };
    for (name, o) in &old.nodes {
        let Some(n) = new.nodes.get(name) else {
            let change = match new.partial {
                true => Change::NotSwept,
                false => Change::Removed,
            };
            d.changes.push(node_change(name, change, Some(o), None));
            continue;
        };
        let mut c = node_change(name, Change::Changed, Some(o), Some(n));
        c.fields = fields(o, n, opts.all);
        match (o.status, n.status) {
            (Status::Passed, Status::Failed | Status::Error) => {
                c.change = Change::Regressed;
                d.regressions.push(c);
            }
            (Status::Failed | Status::Error, Status::Passed) => {
                c.change = Change::Fixed;
                d.fixed.push(c);
            }
            (os, ns) if os == ns && c.is_quiet() => d.unchanged += 1,
            _ => d.changes.push(c),
        }
    }
    for (name, n) in new
        .nodes
        .iter()
        .filter(|(k, _)| !old.nodes.contains_key(*k))
    {
        let c = node_change(name, Change::Added, None, Some(n));
        match n.status {
            Status::Passed | Status::Skipped => d.changes.push(c),
            _ => d.regressions.push(c),
        }
    }
    d
}

impl NodeChange {
    /// No failure came or went and no field changed.
    fn is_quiet(&self) -> bool {
        self.new_failures.is_empty() && self.gone_failures.is_empty() && self.fields.is_empty()
    }
}

/// A node's change with its new and gone failures (an added node's failures are all new; a
/// removed node has none listed).
fn node_change(name: &str, change: Change, old: Option<&Node>, new: Option<&Node>) -> NodeChange {
    let empty = BTreeMap::new();
    let only = |a: &BTreeMap<Failure, String>, b: &BTreeMap<Failure, String>| {
        (a.iter().filter(|(k, _)| !b.contains_key(*k)))
            .map(|(k, v)| FailureShown {
                failure: k.clone(),
                observed: v.clone(),
            })
            .collect::<Vec<_>>()
    };
    let of = old.map_or(&empty, |n| &n.failures);
    let nf = new.map_or(&empty, |n| &n.failures);
    let listed = new.is_some();
    NodeChange {
        node: name.to_string(),
        change,
        old: old.map(|n| n.status),
        new: new.map(|n| n.status),
        new_failures: if listed { only(nf, of) } else { Vec::new() },
        gone_failures: if listed && old.is_some() {
            only(of, nf)
        } else {
            Vec::new()
        },
        fields: Vec::new(),
        error: new
            .filter(|n| n.status == Status::Error)
            .and_then(|n| n.error.clone()),
    }
}

/// The fields of a node in both sweeps that changed: its MTU (when both observed it: a node not
/// observed has none); with `all` its pods, checks and error text too.
fn fields(old: &Node, new: &Node, all: bool) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut push = |field: &str, o: Json, n: Json| {
        if o != n {
            out.push(FieldChange {
                field: field.to_string(),
                old: o,
                new: n,
            });
        }
    };
    if old.status != Status::Error && new.status != Status::Error {
        push("mtu", old.mtu.into(), new.mtu.into());
    }
    if all {
        push("pods", old.pods.into(), new.pods.into());
        push("checks", old.checks.into(), new.checks.into());
        push("error", old.error.clone().into(), new.error.clone().into());
    }
    out
}

/// At most this many failures named in one cell of the table.
const FAILURES_SHOWN: usize = 4;

/// `REC-2, VETH-3 (default/bench-4) and 3 more`.
fn failure_list(list: &[FailureShown]) -> String {
    let names: Vec<String> = (list.iter().take(FAILURES_SHOWN))
        .map(|f| f.failure.to_string())
        .collect();
    let mut text = names.join(", ");
    if list.len() > FAILURES_SHOWN {
        text += &format!(" and {} more", list.len() - FAILURES_SHOWN);
    }
    text
}

fn cell(j: &Json) -> String {
    match j {
        Json::Null => "-".into(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What the table says of a node beyond its status: added (in a regression's row; other rows
/// say it as their change), new and gone failures, fields, why it could not be observed.
fn detail(c: &NodeChange, regression: bool) -> String {
    let mut parts = Vec::new();
    match c.change {
        Change::Added if regression => parts.push("added".to_string()),
        Change::Removed => parts.push("not in NEW".to_string()),
        Change::NotSwept => parts.push("NEW stopped before it (partial)".to_string()),
        _ => {}
    }
    if !c.new_failures.is_empty() {
        parts.push(format!("new {}", failure_list(&c.new_failures)));
    }
    if !c.gone_failures.is_empty() {
        parts.push(format!("gone {}", failure_list(&c.gone_failures)));
    }
    for f in &c.fields {
        let name = if f.field == "mtu" { "MTU" } else { &f.field };
        parts.push(format!("{name} {} → {}", cell(&f.old), cell(&f.new)));
    }
    if let Some(e) = &c.error {
        parts.push(format!("not observed: {e}"));
    }
    parts.join("; ")
}

/// `NEW b/sweep.json is partial: 3 of 5 nodes swept`, for each side stopped early.
fn partial_lines(d: &SweepDiff) -> Vec<String> {
    [("OLD", &d.old), ("NEW", &d.new)]
        .into_iter()
        .filter(|(_, s)| s.partial)
        .map(|(which, s)| {
            format!(
                "{which} {} is partial: {} of {} nodes swept",
                s.path.display(),
                s.swept,
                s.nodes_total
            )
        })
        .collect()
}

/// The readable table: notes (partial sweeps, another target), one row per changed node —
/// regressions, then fixed, then other changes — and a summary ending with how many nodes are
/// unchanged; `no change` alone (with any partial note) when nothing changed.
pub fn table(d: &SweepDiff) -> String {
    let partial = partial_lines(d);
    if d.is_empty() {
        return match partial.is_empty() {
            true => "no change\n".into(),
            false => format!("no change ({})\n", partial.join("; ")),
        };
    }
    let mut out = String::new();
    for line in &partial {
        out += line;
        out.push('\n');
    }
    if d.old.target != d.new.target {
        out += &format!("target: {} → {}\n", d.old.target, d.new.target);
    }
    let mut rows: Vec<[String; 4]> = vec![[
        "NODE".into(),
        "CHANGE".into(),
        "OLD → NEW".into(),
        "WHAT".into(),
    ]];
    let status = |s: Option<Status>| s.map_or("-", Status::as_str);
    for (list, label) in [
        (&d.regressions, Some("REGRESSION")),
        (&d.fixed, Some("fixed")),
        (&d.changes, None),
    ] {
        for c in list {
            let label = label.unwrap_or(match c.change {
                Change::Added => "added",
                Change::Removed => "removed",
                Change::NotSwept => "not swept",
                _ => "changed",
            });
            let arrow = format!("{} → {}", status(c.old), status(c.new));
            let what = detail(c, c.change == Change::Added && label == "REGRESSION");
            rows.push([c.node.clone(), label.into(), arrow, what]);
        }
    }
    out += &diff::render(&rows);
    out += &summary(d);
    out.push('\n');
    out
}

/// `1 regression, 1 fixed, 2 other changes, 1 node unchanged`.
fn summary(d: &SweepDiff) -> String {
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    [
        n(d.regressions.len(), "regression", "regressions"),
        format!("{} fixed", d.fixed.len()),
        n(d.changes.len(), "other change", "other changes"),
        n(d.unchanged, "node unchanged", "nodes unchanged"),
    ]
    .join(", ")
}

/// The `diff` command on either kind of input: two sweeps compared node by node (the table, or
/// the JSON object with `json`, to `out`), two run reports as [`diff::run`] does; one of each,
/// or a bad input, is one line to `err` naming the file. Returns the exit code: 0 nothing
/// regressed, 1 something did, 2 a bad input.
pub fn run(
    old: &Path,
    new: &Path,
    opts: diff::Options,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let said = |bad: BadInput, err: &mut dyn Write| {
        let _ = writeln!(err, "calico-conformance diff: {bad}");
        2
    };
    let inputs = diff::read(old).and_then(|o| diff::read(new).map(|n| (o, n)));
    let pair = match inputs {
        Ok((Input::Report(o), Input::Report(n))) => {
            return diff::run_loaded(&o, &n, opts, json, out, err);
        }
        Ok((Input::Sweep { path: op, json: oj }, Input::Sweep { path: np, json: nj })) => {
            parse(&op, &oj).and_then(|o| parse(&np, &nj).map(|n| (o, n)))
        }
        Ok((o, n)) => Err(BadInput {
            path: n.path().to_path_buf(),
            problem: format!(
                "{}, and {} {}: diff compares two of the same kind",
                n.kind(),
                o.path().display(),
                o.kind()
            ),
        }),
        Err(bad) => Err(bad),
    };
    let (old, new) = match pair {
        Ok(p) => p,
        Err(bad) => return said(bad, err),
    };
    let d = compare(&old, &new, opts);
    let text = match json {
        true => match serde_json::to_string_pretty(&d) {
            Ok(s) => s + "\n",
            Err(e) => {
                let _ = writeln!(err, "calico-conformance diff: {e}");
                return 2;
            }
        },
        false => table(&d),
    };
    if let Err(e) = out.write_all(text.as_bytes()) {
        let _ = writeln!(err, "calico-conformance diff: cannot write the output: {e}");
    }
    d.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{Value, eq};
    use crate::sweep::{NodeResult, SweepCheck, write_report};
    use std::time::Duration;

    /// A node as the sweep judges it: one check that held, one failed check per
    /// `(claim, pod)` of `failing`; `error` makes it one that could not be observed.
    fn node(name: &str, mtu: Option<u32>, failing: &[(&'static str, Option<&str>)]) -> NodeResult {
        let held = eq(
            format!("the pods on {name} wired"),
            Value::Count(3),
            Value::Count(3),
        );
        let mut checks = vec![SweepCheck {
            claim: "REC-1",
            pod: None,
            check: held,
        }];
        for (claim, pod) in failing {
            let check = eq(
                format!("{claim} on {name}"),
                Value::Name("right".into()),
                Value::Name("wrong".into()),
            );
            checks.push(SweepCheck {
                claim,
                pod: pod.map(str::to_string),
                check,
            });
        }
        NodeResult {
            node: name.into(),
            pods: 3,
            mtu,
            checks,
            error: None,
            skipped: None,
            notes: Vec::new(),
            duration: Duration::from_millis(12),
        }
    }

    fn unobserved(name: &str) -> NodeResult {
        NodeResult {
            error: Some("ip: no such namespace".into()),
            checks: Vec::new(),
            mtu: None,
            ..node(name, None, &[])
        }
    }

    /// The real writer's `sweep.json` (and `sweep.md`) of `results` in a new folder.
    fn written(target: &str, total: usize, results: &[NodeResult]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_report(dir.path(), target, total, results).unwrap();
        dir
    }

    /// The four nodes: worker-1 passed → failed (REC-2), worker-2 failed → passed, worker-3
    /// unchanged, worker-4 added (passing).
    fn before_after() -> (tempfile::TempDir, tempfile::TempDir) {
        let vis = Some("default/bench-2");
        let old = [
            node("worker-1", Some(1450), &[]),
            node("worker-2", Some(1450), &[("VETH-3", vis), ("VETH-3", vis)]),
            node("worker-3", Some(1450), &[]),
        ];
        let new = [
            node("worker-1", Some(1450), &[("REC-2", None)]),
            node("worker-2", Some(1450), &[]),
            node("worker-3", Some(1450), &[]),
            node("worker-4", Some(1450), &[]),
        ];
        (written("lab_none", 3, &old), written("lab_none", 4, &new))
    }

    /// The command as `diff` runs it: (exit code, stdout, stderr).
    fn command(old: &Path, new: &Path, json: bool) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let opts = diff::Options::default();
        let code = run(old, new, opts, json, &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (code, text(out), text(err))
    }

    /// A node cordoned (or NotReady) for an upgrade is left out of the sweep: a change, not a
    /// regression; back and passing, it is a change again.
    #[test]
    fn a_node_left_out_of_a_sweep_is_a_change_not_a_regression() {
        let cordoned = NodeResult {
            skipped: Some("cordoned (spec.unschedulable)".into()),
            checks: Vec::new(),
            ..node("worker-2", None, &[])
        };
        let old = written(
            "kube",
            2,
            &[node("worker-1", None, &[]), node("worker-2", None, &[])],
        );
        let new = written("kube", 2, &[node("worker-1", None, &[]), cordoned]);
        let (code, out, err) = command(old.path(), new.path(), false);
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        assert!(out.contains("passed → skipped"), "{out}");
        let (code, out, _) = command(new.path(), old.path(), false);
        assert_eq!(code, 0, "{out}");
    }

    #[test]
    fn the_reader_keeps_to_the_writers_schema() {
        assert_eq!(SCHEMA, crate::sweep::SCHEMA);
    }

    #[test]
    fn a_node_gone_from_passed_to_failed_is_a_regression_and_exits_1() {
        let (old, new) = before_after();
        let (code, out, err) = command(old.path(), new.path(), false);
        assert_eq!((code, err.as_str()), (1, ""), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(lines[0].starts_with("NODE "), "{out}");
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            words(lines[1]),
            "worker-1 REGRESSION passed → failed new REC-2"
        );
        assert_eq!(
            words(lines[2]),
            "worker-2 fixed failed → passed gone VETH-3 (default/bench-2)"
        );
        assert_eq!(words(lines[3]), "worker-4 added - → passed");
        assert_eq!(
            lines[4],
            "1 regression, 1 fixed, 1 other change, 1 node unchanged"
        );

        let (code, out, _) = command(old.path(), new.path(), true);
        assert_eq!(code, 1);
        let j: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(j["schema"], DIFF_SCHEMA);
        assert_eq!(
            j["old"]["path"],
            old.path().join("sweep.json").to_str().unwrap()
        );
        assert_eq!(
            (j["old"]["swept"].as_u64(), j["new"]["partial"].as_bool()),
            (Some(3), Some(false))
        );
        let r = &j["regressions"][0];
        assert_eq!(
            (r["node"].as_str(), r["change"].as_str()),
            (Some("worker-1"), Some("regressed"))
        );
        assert_eq!(
            (r["old"].as_str(), r["new"].as_str()),
            (Some("passed"), Some("failed"))
        );
        assert_eq!(r["new_failures"][0]["claim"], "REC-2");
        assert!(r["new_failures"][0].get("pod").is_none(), "{r}");
        assert_eq!(r["new_failures"][0]["observed"], "REC-2 on worker-1: wrong");
        let f = &j["fixed"][0];
        assert_eq!(f["gone_failures"].as_array().unwrap().len(), 1, "{f}");
        assert_eq!(f["gone_failures"][0]["pod"], "default/bench-2");
        assert_eq!(j["changes"][0]["change"], "added");
        assert!(j["changes"][0]["old"].is_null());
        assert_eq!(j["unchanged"], 1);

        // The way back: worker-1 fixed, worker-2 regressed, worker-4 removed.
        let d = compare(
            &load(new.path()).unwrap(),
            &load(old.path()).unwrap(),
            diff::Options::default(),
        );
        let names = |l: &[NodeChange]| l.iter().map(|c| c.node.clone()).collect::<Vec<_>>();
        assert_eq!(names(&d.regressions), ["worker-2"]);
        assert_eq!(names(&d.fixed), ["worker-1"]);
        assert_eq!(d.changes[0].change, Change::Removed);
        assert_eq!(d.exit_code(), 1);
    }

    #[test]
    fn added_failing_error_mtu_and_partial_are_said_so() {
        let old = written(
            "lab_none",
            4,
            &[
                node("worker-1", Some(1450), &[]),
                node("worker-2", Some(1450), &[]),
                node("worker-3", Some(1450), &[]),
                node("worker-9", Some(1450), &[]),
            ],
        );
        let new = written(
            "lab_none",
            5,
            &[
                unobserved("worker-1"),
                node("worker-2", Some(1400), &[]),
                node("worker-5", None, &[("VETH-2", Some("default/a"))]),
            ],
        );
        let (code, out, err) = command(old.path(), new.path(), false);
        assert_eq!((code, err.as_str()), (1, ""), "{out}");
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        let lines: Vec<String> = out.lines().map(words).collect();
        let partial = format!(
            "NEW {} is partial: 3 of 5 nodes swept",
            new.path().join("sweep.json").display()
        );
        assert_eq!(lines[0], partial);
        assert_eq!(
            lines[2],
            "worker-1 REGRESSION passed → error not observed: ip: no such namespace"
        );
        assert_eq!(
            lines[3],
            "worker-5 REGRESSION - → failed added; new VETH-2 (default/a)"
        );
        assert_eq!(lines[4], "worker-2 changed passed → passed MTU 1450 → 1400");
        let not_swept = "worker-3 not swept passed → - NEW stopped before it (partial)";
        assert_eq!(lines[5], not_swept);
        assert!(lines[6].starts_with("worker-9 not swept"), "{out}");
        assert_eq!(
            lines[7],
            "2 regressions, 0 fixed, 3 other changes, 0 nodes unchanged"
        );

        let d = compare(
            &load(old.path()).unwrap(),
            &load(new.path()).unwrap(),
            diff::Options::default(),
        );
        assert_eq!(d.changes[0].fields[0].field, "mtu");
        assert_eq!(
            (
                d.changes[0].fields[0].old.as_u64(),
                d.changes[0].fields[0].new.as_u64()
            ),
            (Some(1450), Some(1400))
        );
    }

    #[test]
    fn the_same_sweep_twice_is_no_change_and_exits_0() {
        let nodes = [
            node("worker-1", Some(1450), &[]),
            node("worker-2", Some(1450), &[("REC-2", None)]),
            unobserved("worker-3"),
        ];
        let (a, b) = (
            written("lab_none", 3, &nodes),
            written("lab_none", 3, &nodes),
        );
        let (code, out, err) = command(a.path(), &b.path().join("sweep.json"), false);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "no change\n", ""));
        let (code, out, _) = command(a.path(), b.path(), true);
        let j: Json = serde_json::from_str(&out).unwrap();
        assert_eq!((code, j["unchanged"].as_u64()), (0, Some(3)));
        assert!(j["regressions"].as_array().unwrap().is_empty());
        // A pod more is no change, unless --all.
        let mut more = nodes.clone();
        more[0].pods = 4;
        let c = written("lab_none", 3, &more);
        assert_eq!(command(a.path(), c.path(), false).1, "no change\n");
        let (o, n) = (load(a.path()).unwrap(), load(c.path()).unwrap());
        let d = compare(&o, &n, diff::Options { all: true });
        assert_eq!(d.changes[0].fields[0].field, "pods");
        // Two partial sweeps of the same nodes: no change, and said to be partial.
        let (p, q) = (
            written("lab_none", 5, &nodes),
            written("lab_none", 5, &nodes),
        );
        let (code, out, _) = command(p.path(), q.path(), false);
        assert_eq!(code, 0);
        assert!(
            out.starts_with("no change (OLD ") && out.ends_with("3 of 5 nodes swept)\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), 1, "{out}");
    }

    #[test]
    fn a_report_and_a_sweep_are_not_compared() {
        let (old, _) = before_after();
        let report =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reports/lab-correct.json");
        let sweep = old.path().join("sweep.json");
        let (code, out, err) = command(&report, old.path(), false);
        assert_eq!((code, out.as_str()), (2, ""));
        assert_eq!(
            err,
            format!(
                "calico-conformance diff: {}: a sweep, and {} a run report: diff compares two of the same kind\n",
                sweep.display(),
                report.display()
            )
        );
        let (code, _, err) = command(&sweep, &report, false);
        assert_eq!(code, 2);
        assert!(
            err.contains(&format!(
                "{}: a run report, and {} a sweep",
                report.display(),
                sweep.display()
            )),
            "{err}"
        );
        // Two reports still compare as reports.
        assert_eq!(
            command(&report, &report, false),
            (0, "no change\n".into(), String::new())
        );
    }

    #[test]
    fn bad_sweeps_give_one_line_naming_the_file_and_the_field() {
        let (good, _) = before_after();
        let real: Json =
            serde_json::from_str(&std::fs::read_to_string(good.path().join("sweep.json")).unwrap())
                .unwrap();
        let edit = |f: &dyn Fn(&mut Json)| {
            let mut j = real.clone();
            f(&mut j);
            j.to_string()
        };
        let cases: Vec<(String, &str)> = vec![
            ("{ not json".into(), "not a sweep: not JSON"),
            (
                edit(&|j| j["schema"] = "calico-conformance/sweep/v2".into()),
                "sweep schema \"calico-conformance/sweep/v2\", this build compares \"calico-conformance/sweep/v1\" only",
            ),
            (
                edit(&|j| j["schema"] = "calico-conformance/watch/v1".into()),
                "schema \"calico-conformance/watch/v1\": neither a run report",
            ),
            (
                edit(&|j| {
                    j.as_object_mut().unwrap().remove("nodes");
                }),
                "not a sweep: no `nodes` list",
            ),
            (
                edit(&|j| {
                    j.as_object_mut().unwrap().remove("partial");
                }),
                "not a sweep: no `partial`",
            ),
            (
                edit(&|j| {
                    j["nodes"][1].as_object_mut().unwrap().remove("status");
                }),
                "not a sweep: nodes[1] (worker-1): no `status`",
            ),
            (
                edit(&|j| j["nodes"][0]["status"] = "flaky".into()),
                "`status` is \"flaky\", not passed, failed or error",
            ),
            (
                edit(&|j| j["nodes"][2]["mtu"] = "big".into()),
                "nodes[2] (worker-3): `mtu` is \"big\", not a whole number",
            ),
            (
                edit(&|j| j["nodes"][0]["failures"][0]["claim"] = 7.into()),
                "nodes[0] (worker-2): failures[0]: `claim` is 7, not a string",
            ),
            (
                edit(&|j| {
                    j["nodes"][0].as_object_mut().unwrap().remove("node");
                }),
                "nodes[0]: no `node`",
            ),
            (
                edit(&|j| j["nodes"][1]["node"] = "worker-2".into()),
                "nodes[1]: node worker-2 twice",
            ),
        ];
        for (text, problem) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("sweep.json"), &text).unwrap();
            for (old, new) in [(good.path(), dir.path()), (dir.path(), good.path())] {
                let (code, out, err) = command(old, new, false);
                assert_eq!((code, out.as_str()), (2, ""), "{problem}");
                assert_eq!(err.lines().count(), 1, "{err}");
                assert!(err.contains(problem), "{problem}: {err}");
                let file = dir.path().join("sweep.json");
                assert!(err.contains(&format!("{}: ", file.display())), "{err}");
            }
        }
        let empty = tempfile::tempdir().unwrap();
        let (code, _, err) = command(good.path(), empty.path(), false);
        assert_eq!(code, 2);
        assert!(
            err.contains("no report.json in this run folder, nor a sweep.json"),
            "{err}"
        );
    }
}
