//! `diff OLD NEW`: what changed between two runs' `report.json` (before and after a Calico
//! upgrade): cases whose status changed (passed → failed is a regression), the observed and
//! expected values that changed per check, the facts that changed (Calico and Kubernetes
//! versions, the install, pools, nodes), and cases that only one run has.
//!
//! Reports are read as JSON values against the format (`schema`
//! `calico-conformance/report/v1`), not through the writer's types, so a report written by an
//! older or newer build of the same schema still compares. Before comparing, each report is
//! normalised (unless `--all`): values that differ between any two runs — the run id, the
//! run's namespace, pod IPs, host-end names (derived from namespace and pod), ifindexes,
//! source ports, ICMP echo ids, durations, timestamps, evidence paths and messages — are
//! replaced by placeholders (`<ip of test-tools>`, `<host end of test-tools>`) or left out.

use crate::calico::host_end_name;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The one report schema this build compares.
pub const SCHEMA: &str = "calico-conformance/report/v1";

/// Keys left out of both reports before comparing, unless `--all`: they differ between any two
/// runs (`message` repeats the checks, which are compared).
const RUN_SPECIFIC_KEYS: &[&str] = &[
    "run_id",
    "started",
    "ended",
    "duration_ms",
    "phases",
    "evidence",
    "evidence_dir",
    "message",
];

/// An input `diff` cannot compare: the file and what is wrong, in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput {
    pub path: PathBuf,
    pub problem: String,
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// A report as read: its file and its JSON, schema checked.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub json: Json,
}

/// The schemas of sweeps (`sweep.json`), whatever their version: [`Input::Sweep`]; the sweep
/// diff checks the version it reads.
pub const SWEEP_SCHEMA_PREFIX: &str = "calico-conformance/sweep/";

/// What a `diff` argument holds, told by its `schema`.
#[derive(Debug, Clone)]
pub enum Input {
    /// A run's `report.json`, schema checked.
    Report(Report),
    /// A `sweep.json` (a `calico-conformance/sweep/` schema, its version not yet checked).
    Sweep { path: PathBuf, json: Json },
}

impl Input {
    pub fn path(&self) -> &Path {
        match self {
            Input::Report(r) => &r.path,
            Input::Sweep { path, .. } => path,
        }
    }

    /// `a run report`, `a sweep`.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Report(_) => "a run report",
            Input::Sweep { .. } => "a sweep",
        }
    }
}

/// Reads a report: `arg` is a `report.json` or a run folder holding one.
pub fn load(arg: &Path) -> Result<Report, BadInput> {
    match read(arg)? {
        Input::Report(r) => Ok(r),
        Input::Sweep { path, .. } => Err(BadInput {
            path,
            problem: "a sweep, not a run report".into(),
        }),
    }
}

/// Reads a report or a sweep: `arg` is a `report.json`, a `sweep.json`, or a folder holding
/// one (`report.json` first).
pub fn read(arg: &Path) -> Result<Input, BadInput> {
    let folder = arg.is_dir();
    let path = match folder {
        false => arg.to_path_buf(),
        true if !arg.join("report.json").exists() && arg.join("sweep.json").exists() => {
            arg.join("sweep.json")
        }
        true => arg.join("report.json"),
    };
    let bad = |problem: String| BadInput {
        path: path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if folder => {
            bad("no report.json in this run folder, nor a sweep.json".into())
        }
        std::io::ErrorKind::NotFound => bad("no such file".into()),
        _ => bad(format!("cannot read: {e}")),
    })?;
    let noun = match path.file_name().is_some_and(|n| n == "sweep.json") {
        true => "not a sweep",
        false => "not a report",
    };
    let json: Json =
        serde_json::from_str(&text).map_err(|e| bad(format!("{noun}: not JSON ({e})")))?;
    let Some(fields) = json.as_object() else {
        return Err(bad(format!("{noun}: not a JSON object")));
    };
    match fields.get("schema") {
        None => return Err(bad(format!("{noun}: no `schema` field"))),
        Some(Json::String(s)) if s == SCHEMA => {}
        Some(Json::String(s)) if s.starts_with(SWEEP_SCHEMA_PREFIX) => {
            return Ok(Input::Sweep { path, json });
        }
        Some(Json::String(s)) if !s.starts_with("calico-conformance/report/") => {
            return Err(bad(format!(
                "schema {s:?}: neither a run report ({SCHEMA:?}) nor a sweep ({SWEEP_SCHEMA_PREFIX}...)"
            )));
        }
        Some(other) => {
            return Err(bad(format!(
                "report schema {other}, this build compares {SCHEMA:?} only"
            )));
        }
    }
    if !fields.get("cases").is_some_and(Json::is_array) {
        return Err(bad("not a report: no `cases` list".into()));
    }
    Ok(Input::Report(Report { path, json }))
}

/// How to compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Also report values that differ between any two runs (no normalisation).
    pub all: bool,
}

/// A case: target, claim, pod (`None` for a per-target claim).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CaseKey {
    pub target: String,
    pub claim: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

impl fmt::Display for CaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pod {
            Some(pod) => write!(f, "{}/{pod}", self.target),
            None => f.write_str(&self.target),
        }
    }
}

/// A case whose status changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusChange {
    #[serde(flatten)]
    pub case: CaseKey,
    pub old: String,
    pub new: String,
    /// The new run's reason (not applicable, or why the observation failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The new run's failed check: what, expected and observed text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_check: Option<Json>,
}

/// A value that changed within a case present in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueChange {
    #[serde(flatten)]
    pub case: CaseKey,
    /// The check's `what` (normalised), or a case field (`reason`, `duration_ms`, ...).
    pub what: String,
    /// `observed`, `expected`, `check` (made in one run only) or `field`.
    pub side: String,
    /// `null` where the old run has none.
    pub old: Json,
    pub new: Json,
}

/// A fact (or a report field) that changed; `target` is `None` for the report's own fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A path into the target's object: `facts.pools[192.168.0.0/16].encapsulation`.
    pub fact: String,
    pub old: Json,
    pub new: Json,
}

/// A case only one run has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnlyIn {
    #[serde(flatten)]
    pub case: CaseKey,
    pub status: String,
}

/// Everything that changed from one report to the other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    pub old: PathBuf,
    pub new: PathBuf,
    /// Passed before, failed now.
    pub regressions: Vec<StatusChange>,
    /// Failed before, passed now.
    pub improvements: Vec<StatusChange>,
    /// Any other change of status (to or from not applicable).
    pub status_changes: Vec<StatusChange>,
    pub value_changes: Vec<ValueChange>,
    pub facts_changes: Vec<FactChange>,
    pub only_in_old: Vec<OnlyIn>,
    pub only_in_new: Vec<OnlyIn>,
}

impl Diff {
    /// Nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.regressions.is_empty()
            && self.improvements.is_empty()
            && self.status_changes.is_empty()
            && self.value_changes.is_empty()
            && self.facts_changes.is_empty()
            && self.only_in_old.is_empty()
            && self.only_in_new.is_empty()
    }

    /// The exit code: 1 when a case went from passed to failed, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.regressions.is_empty())
    }
}

/// Compares two loaded reports.
pub fn compare(old: &Report, new: &Report, opts: Options) -> Diff {
    let (a, b) = if opts.all {
        (old.json.clone(), new.json.clone())
    } else {
        (normalise(&old.json), normalise(&new.json))
    };
    let mut diff = Diff {
        old: old.path.clone(),
        new: new.path.clone(),
        regressions: Vec::new(),
        improvements: Vec::new(),
        status_changes: Vec::new(),
        value_changes: Vec::new(),
        facts_changes: report_fields(&a, &b),
        only_in_old: Vec::new(),
        only_in_new: Vec::new(),
    };
    diff.facts_changes.extend(targets(&a, &b));
    let (old_cases, new_cases) = (cases(&a), cases(&b));
    for (key, o) in &old_cases {
        match new_cases.get(key) {
            Some(n) => compare_case(key, o, n, opts.all, &mut diff),
            None => diff.only_in_old.push(only_in(key, o)),
        }
    }
    for (key, n) in &new_cases {
        if !old_cases.contains_key(key) {
            diff.only_in_new.push(only_in(key, n));
        }
    }
    diff
}

fn only_in(key: &CaseKey, case: &Json) -> OnlyIn {
    OnlyIn {
        case: key.clone(),
        status: str_of(case, "status"),
    }
}

fn str_of(j: &Json, key: &str) -> String {
    j.get(key).and_then(Json::as_str).unwrap_or("?").to_string()
}

fn cases(report: &Json) -> BTreeMap<CaseKey, &Json> {
    let list = report.get("cases").and_then(Json::as_array);
    list.into_iter()
        .flatten()
        .map(|c| {
            let key = CaseKey {
                target: str_of(c, "target"),
                claim: str_of(c, "claim"),
                pod: c.get("pod").and_then(Json::as_str).map(str::to_string),
            };
            (key, c)
        })
        .collect()
}

fn compare_case(key: &CaseKey, old: &Json, new: &Json, all: bool, diff: &mut Diff) {
    let (os, ns) = (str_of(old, "status"), str_of(new, "status"));
    if os != ns {
        let failed_check = new
            .get("checks")
            .and_then(Json::as_array)
            .and_then(|cs| cs.iter().rev().find(|c| c.get("passed") == Some(&Json::Bool(false))))
            .map(|c| {
                let text = |side: &str| c.pointer(&format!("/{side}/text")).cloned();
                serde_json::json!({
                    "what": c.get("what"), "expected": text("expected"), "observed": text("observed"),
                })
            });
        let change = StatusChange {
            case: key.clone(),
            reason: new.get("reason").and_then(Json::as_str).map(str::to_string),
            failed_check,
            old: os.clone(),
            new: ns.clone(),
        };
        match (os.as_str(), ns.as_str()) {
            ("passed", "failed") => diff.regressions.push(change),
            ("failed", "passed") => diff.improvements.push(change),
            _ => diff.status_changes.push(change),
        }
    }
    let change = |what: String, side: &str, old: Json, new: Json| ValueChange {
        case: key.clone(),
        what,
        side: side.to_string(),
        old,
        new,
    };
    for field in [
        "reason",
        "duration_ms",
        "evidence_dir",
        "evidence",
        "message",
    ] {
        let (o, n) = (field_of(old, field), field_of(new, field));
        if o != n {
            diff.value_changes
                .push(change(field.to_string(), "field", o, n));
        }
    }
    let (oc, nc) = (checks(old), checks(new));
    for (what, o) in &oc {
        let Some(n) = nc.get(what) else {
            let made = serde_json::json!("made");
            diff.value_changes
                .push(change(what.clone(), "check", made, Json::Null));
            continue;
        };
        for side in ["expected", "observed"] {
            if side == "observed" && !all && capture_held_both(o, n) {
                continue;
            }
            let (ov, nv) = (shown_value(o, side), shown_value(n, side));
            if ov != nv {
                diff.value_changes.push(change(what.clone(), side, ov, nv));
            }
        }
    }
    for what in nc.keys().filter(|w| !oc.contains_key(*w)) {
        let made = serde_json::json!("made");
        diff.value_changes
            .push(change(what.clone(), "check", Json::Null, made));
    }
}

/// A check on captured frames that held in both runs: which frames a capture holds, and how
/// many, varies with timing (retransmissions, when the capture stopped), so its observed side
/// is no change unless `--all`.
fn capture_held_both(old: &Json, new: &Json) -> bool {
    let held = |c: &Json| c.get("passed") == Some(&Json::Bool(true));
    let frames = |c: &Json| {
        ["expected", "observed"]
            .iter()
            .any(|side| c.pointer(&format!("/{side}/value/frames")).is_some())
    };
    held(old) && held(new) && frames(old) && frames(new)
}

fn field_of(case: &Json, field: &str) -> Json {
    case.get(field).cloned().unwrap_or(Json::Null)
}

/// A case's checks by `what`; a `what` made twice (POD-I3 compares eth0's MTU with two
/// expectations) is keyed `what #2` from its second time on.
fn checks(case: &Json) -> BTreeMap<String, &Json> {
    let mut out = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in case
        .get("checks")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let what = str_of(c, "what");
        let n = seen.entry(what.clone()).or_default();
        *n += 1;
        let key = if *n == 1 {
            what
        } else {
            format!("{what} #{n}")
        };
        out.insert(key, c);
    }
    out
}

/// One side of a check: its structured value where it has one, else its text. A change of
/// text alone (the expected side's "because ...") counts when the value is the same.
fn shown_value(check: &Json, side: &str) -> Json {
    let Some(shown) = check.get(side) else {
        return Json::Null;
    };
    match (shown.get("value"), shown.get("text")) {
        (Some(v), Some(t)) if !v.is_null() => serde_json::json!({"value": v, "text": t}),
        (_, Some(t)) => serde_json::json!({ "text": t }),
        _ => shown.clone(),
    }
}

/// The report's own fields (suite version; run id and times with `--all`).
fn report_fields(a: &Json, b: &Json) -> Vec<FactChange> {
    let strip = |j: &Json| {
        let mut m = j.as_object().cloned().unwrap_or_default();
        for k in ["schema", "targets", "cases"] {
            m.remove(k);
        }
        Json::Object(m)
    };
    flat_changes(None, &strip(a), &strip(b))
}

/// Facts (and, with `--all`, phases) per target; a target only one run has is one row.
fn targets(a: &Json, b: &Json) -> Vec<FactChange> {
    let by_name = |j: &Json| -> BTreeMap<String, Json> {
        let list = j.get("targets").and_then(Json::as_array);
        list.into_iter()
            .flatten()
            .map(|t| {
                let mut m = t.as_object().cloned().unwrap_or_default();
                m.remove("name");
                (str_of(t, "name"), Json::Object(m))
            })
            .collect()
    };
    let (old, new) = (by_name(a), by_name(b));
    let mut out = Vec::new();
    for (name, o) in &old {
        match new.get(name) {
            Some(n) => out.extend(flat_changes(Some(name), o, n)),
            None => out.push(FactChange {
                target: Some(name.clone()),
                fact: "target".into(),
                old: "run".into(),
                new: Json::Null,
            }),
        }
    }
    for name in new.keys().filter(|n| !old.contains_key(*n)) {
        out.push(FactChange {
            target: Some(name.clone()),
            fact: "target".into(),
            old: Json::Null,
            new: "run".into(),
        });
    }
    out
}

fn flat_changes(target: Option<&String>, a: &Json, b: &Json) -> Vec<FactChange> {
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    flatten("", a, &mut fa);
    flatten("", b, &mut fb);
    let mut keys: Vec<&String> = fa.keys().chain(fb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (o, n) = (fa.get(k), fb.get(k));
            (o != n).then(|| FactChange {
                target: target.cloned(),
                fact: k.clone(),
                old: o.cloned().unwrap_or(Json::Null),
                new: n.cloned().unwrap_or(Json::Null),
            })
        })
        .collect()
}

/// Flattens objects into `a.b` paths; a list of objects with a `name` or `cidr` is keyed by it
/// (`pools[192.168.0.0/16].encapsulation`), other lists are values.
fn flatten(prefix: &str, j: &Json, out: &mut BTreeMap<String, Json>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match j {
        Json::Object(m) => {
            for (k, v) in m {
                flatten(&join(k), v, out);
            }
        }
        Json::Array(items) if !items.is_empty() && items.iter().all(|i| list_key(i).is_some()) => {
            for i in items {
                let key = list_key(i).unwrap_or_default();
                flatten(&format!("{prefix}[{key}]"), i, out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), j.clone());
        }
    }
}

fn list_key(item: &Json) -> Option<String> {
    ["name", "cidr"]
        .iter()
        .find_map(|k| item.get(*k).and_then(Json::as_str))
        .map(str::to_string)
}

/// The report with run-specific values replaced or left out (see the module's doc).
pub fn normalise(report: &Json) -> Json {
    let names = RunNames::of(report);
    normalise_value(report, &names)
}

/// The run-specific strings of one report and their placeholders, longest first so that a
/// host-end name is replaced before any part of it.
struct RunNames {
    /// (string, placeholder, whether it is an IPv4 address, replaced only as a whole).
    replacements: Vec<(String, String, bool)>,
}

impl RunNames {
    fn of(report: &Json) -> RunNames {
        let run_id = report.get("run_id").and_then(Json::as_str).unwrap_or("");
        let mut replacements = Vec::new();
        let pods = report
            .get("targets")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.pointer("/facts/pods").and_then(Json::as_array))
            .flatten();
        for pod in pods {
            let (ns, name) = (str_of(pod, "namespace"), str_of(pod, "name"));
            let end = host_end_name(&ns, &name);
            replacements.push((end, format!("<host end of {name}>"), false));
            if let Some(ip) = pod.get("ip").and_then(Json::as_str) {
                replacements.push((ip.to_string(), format!("<ip of {name}>"), true));
            }
            let run_namespace = ns.starts_with("calico-conformance-")
                || (!run_id.is_empty() && ns.contains(run_id));
            if run_namespace {
                replacements.push((ns, "<run namespace>".into(), false));
            }
        }
        if !run_id.is_empty() {
            replacements.push((run_id.to_string(), "<run id>".into(), false));
        }
        replacements.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        replacements.dedup();
        RunNames { replacements }
    }

    fn apply(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to, whole_address) in &self.replacements {
            if from.is_empty() || !s.contains(from.as_str()) {
                continue;
            }
            s = if *whole_address {
                replace_address(&s, from, to)
            } else {
                s.replace(from.as_str(), to)
            };
        }
        kernel_chosen(&run_numbers(&s))
    }
}

/// Values the kernel picks afresh for every pod and capture: a pod's `eth0` MAC (random; the
/// host end's `ee:ee:ee:ee:ee:ee` is Calico's and stays), the IPv6 link-local address derived
/// from it, and how many packets a paired capture happened to see (`saw 4`).
fn kernel_chosen(s: &str) -> String {
    let is_hex = |c: char| c.is_ascii_hexdigit();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let after_word = out
            .chars()
            .last()
            .is_some_and(|p| p.is_ascii_alphanumeric() || p == ':');
        let mac = rest.get(..17).filter(|m| {
            m.char_indices()
                .all(|(i, c)| if i % 3 == 2 { c == ':' } else { is_hex(c) })
                && !rest[17..].starts_with(|c: char| is_hex(c) || c == ':')
        });
        if let Some(m) = mac.filter(|_| !after_word) {
            out.push_str(if m.eq_ignore_ascii_case("ee:ee:ee:ee:ee:ee") {
                m
            } else {
                "<mac>"
            });
            rest = &rest[17..];
        } else if !after_word && rest.starts_with("fe80::") {
            let len = rest
                .find(|c: char| !(is_hex(c) || c == ':'))
                .unwrap_or(rest.len());
            out.push_str("<link-local>");
            rest = &rest[len..];
        } else if rest.starts_with("saw ") && rest[4..].starts_with(|c: char| c.is_ascii_digit()) {
            let digits = rest[4..].chars().take_while(char::is_ascii_digit).count();
            out.push_str("saw <n>");
            rest = &rest[4 + digits..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn normalise_value(j: &Json, names: &RunNames) -> Json {
    match j {
        Json::String(s) => Json::String(names.apply(s)),
        Json::Array(items) => {
            Json::Array(items.iter().map(|i| normalise_value(i, names)).collect())
        }
        Json::Object(m) if m.contains_key("text") && index_of(m.get("value")).is_some() => {
            // A check's side whose value is an ifindex: its text shows the same number.
            let n = index_of(m.get("value")).unwrap_or_default();
            let mut out = Map::new();
            for (k, v) in m {
                let v = match v.as_str() {
                    Some(text) if k == "text" => {
                        Json::String(replace_number(&names.apply(text), n, "<ifindex>"))
                    }
                    _ => normalise_value(v, names),
                };
                out.insert(k.clone(), v);
            }
            Json::Object(out)
        }
        Json::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if RUN_SPECIFIC_KEYS.contains(&k.as_str()) {
                    continue;
                }
                let v = if k == "index" && m.len() == 1 && !v.is_null() {
                    Json::String("<ifindex>".into())
                } else {
                    normalise_value(v, names)
                };
                out.insert(names.apply(k), v);
            }
            Json::Object(out)
        }
        other => other.clone(),
    }
}

/// The number of an `{"index": N}` value.
fn index_of(value: Option<&Json>) -> Option<u64> {
    let m = value?.as_object()?;
    (m.len() == 1).then(|| m.get("index")?.as_u64()).flatten()
}

/// Replaces the number `n` where it stands as a whole number (not a digit of a longer one).
fn replace_number(s: &str, n: u64, to: &str) -> String {
    let number = n.to_string();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(&number) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + number.len()..].chars().next();
        let whole = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric());
        out.push_str(&rest[..at]);
        out.push_str(if whole { to } else { &number });
        rest = &rest[at + number.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces `addr` where it stands as a whole address: `192.168.1.1` not inside
/// `192.168.1.12` or `10.192.168.1.1`, but in `192.168.1.1/32` and `192.168.1.1.20001`.
fn replace_address(s: &str, addr: &str, to: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(addr) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + addr.len()..].chars().next();
        let prev_is_part = before.is_some_and(|c| c.is_ascii_digit() || c == '.');
        let next_is_part = after.is_some_and(|c| c.is_ascii_digit());
        out.push_str(&rest[..at]);
        if prev_is_part || next_is_part {
            out.push_str(addr);
        } else {
            out.push_str(to);
        }
        rest = &rest[at + addr.len()..];
    }
    out.push_str(rest);
    out
}

/// Numbers in text that differ between runs: ifindexes (`eth0@if12`, `@12`, `cali…#12`,
/// `ifindex 12`, `iflink 12`), ICMP echo ids (`id 4242`), and ports from 20000 up (the suite's
/// source ports, 20000–29999, and the kernel's: VXLAN's flow-hashed UDP source ports).
fn run_numbers(s: &str) -> String {
    const AFTER: &[(&str, &str)] = &[
        ("@if", "<ifindex>"),
        ("@", "<ifindex>"),
        ("#", "<ifindex>"),
        ("ifindex ", "<ifindex>"),
        ("iflink ", "<ifindex>"),
        ("ifindex is ", "<ifindex>"),
        (" id ", "<echo id>"),
    ];
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            let c = s[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&s[i..i + c]);
            i += c;
            continue;
        }
        let number = &s[i..i + digits];
        let starts_token = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let ends_token = bytes
            .get(i + digits)
            .is_none_or(|b| !b.is_ascii_alphanumeric());
        let prefix = AFTER.iter().find(|(p, _)| s[..i].ends_with(p));
        let port = digits == 5
            && starts_token
            && ends_token
            && number
                .parse::<u32>()
                .is_ok_and(|n| (20000..=65535).contains(&n));
        // A number inside a word (`cali…#12` is, `veth0` is not) or an address's octet stays.
        let placeholder = match prefix {
            Some((p, to)) if p.starts_with('#') || p.starts_with('@') || starts_token => Some(*to),
            _ if port => Some("<port>"),
            _ => None,
        };
        out.push_str(placeholder.unwrap_or(number));
        i += digits;
    }
    out
}

/// One cell of the table: a value as short text.
fn show(j: &Json) -> String {
    let s = match j {
        Json::Null => "-".to_string(),
        Json::String(s) => s.clone(),
        Json::Object(m) if m.len() == 1 && m.contains_key("text") => show(&m["text"]),
        Json::Object(m) if m.contains_key("value") => show(&m["value"]),
        Json::Object(m) if m.len() == 1 => m.values().map(show).collect(),
        Json::Object(m) => {
            let kv: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", show(v))).collect();
            kv.join(" ")
        }
        Json::Array(items) if items.is_empty() => "none".to_string(),
        Json::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    };
    const WIDTH: usize = 70;
    if s.chars().count() > WIDTH {
        let cut: String = s.chars().take(WIDTH - 1).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// A check's side as its text without the leading `<what>: ` (`1400`, `1450 (the pod's eth0's
/// MTU)`), else as its value.
fn side_cell(what: &str, j: &Json) -> String {
    let what = what.rsplit_once(" #").map_or(what, |(w, n)| {
        if n.bytes().all(|b| b.is_ascii_digit()) {
            w
        } else {
            what
        }
    });
    match j.get("text").and_then(Json::as_str) {
        Some(text) => {
            let rest = text.strip_prefix(what).and_then(|r| r.strip_prefix(": "));
            show(&Json::String(rest.unwrap_or(text).to_string()))
        }
        None => show(j),
    }
}

/// The readable table: one row per change (claim, target/pod, what changed, old → new), then
/// one summary line; `no change` alone when nothing changed.
pub fn table(diff: &Diff) -> String {
    if diff.is_empty() {
        return "no change\n".to_string();
    }
    let mut rows: Vec<[String; 4]> = vec![[
        "CLAIM".into(),
        "TARGET/POD".into(),
        "WHAT CHANGED".into(),
        "OLD → NEW".into(),
    ]];
    let status_rows = [
        (&diff.regressions, "status: REGRESSION"),
        (&diff.improvements, "status: improvement"),
        (&diff.status_changes, "status"),
    ];
    for (list, label) in status_rows {
        for c in list {
            rows.push([
                c.case.claim.clone(),
                c.case.to_string(),
                label.to_string(),
                format!("{} → {}", c.old, c.new),
            ]);
        }
    }
    for v in &diff.value_changes {
        let what = match v.side.as_str() {
            "expected" | "observed" => format!("{} ({})", v.what, v.side),
            "check" => format!("check {}", v.what),
            _ => v.what.clone(),
        };
        let arrow = format!(
            "{} → {}",
            side_cell(&v.what, &v.old),
            side_cell(&v.what, &v.new)
        );
        rows.push([v.case.claim.clone(), v.case.to_string(), what, arrow]);
    }
    for f in &diff.facts_changes {
        let target = f.target.clone().unwrap_or_else(|| "report".into());
        let arrow = format!("{} → {}", show(&f.old), show(&f.new));
        let fact = f.fact.strip_prefix("facts.").unwrap_or(&f.fact).to_string();
        rows.push(["facts".into(), target, fact, arrow]);
    }
    for (list, label) in [
        (&diff.only_in_old, "only in old"),
        (&diff.only_in_new, "only in new"),
    ] {
        for c in list {
            let row = [
                c.case.claim.clone(),
                c.case.to_string(),
                label.into(),
                c.status.clone(),
            ];
            rows.push(row);
        }
    }
    let mut out = render(&rows);
    out += &summary(diff);
    out.push('\n');
    out
}

/// Rows of four columns, the first three padded to their widest cell (the sweep diff's table
/// too).
pub(crate) fn render(rows: &[[String; 4]]) -> String {
    let mut widths = [0usize; 4];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(widths).enumerate() {
            if i == 3 {
                line += cell;
            } else {
                line += &format!("{cell:<w$}  ");
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

fn summary(diff: &Diff) -> String {
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let mut parts = vec![
        n(diff.regressions.len(), "regression", "regressions"),
        n(diff.improvements.len(), "improvement", "improvements"),
    ];
    if !diff.status_changes.is_empty() {
        let c = diff.status_changes.len();
        parts.push(n(c, "other status change", "other status changes"));
    }
    parts.push(n(diff.value_changes.len(), "value change", "value changes"));
    parts.push(n(diff.facts_changes.len(), "facts change", "facts changes"));
    parts.push(format!(
        "{} only in old, {} only in new",
        n(diff.only_in_old.len(), "case", "cases"),
        diff.only_in_new.len()
    ));
    parts.join(", ")
}

/// The `diff` command: loads both reports, prints the table (or the JSON object with `json`)
/// to `out` and returns the exit code: 0 nothing regressed, 1 a case went from passed to
/// failed, 2 a bad input (one line to `err`, naming the file).
pub fn run(
    old: &Path,
    new: &Path,
    opts: Options,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let loaded = load(old).and_then(|o| load(new).map(|n| (o, n)));
    let (old, new) = match loaded {
        Ok(pair) => pair,
        Err(bad) => {
            let _ = writeln!(err, "calico-conformance diff: {bad}");
            return 2;
        }
    };
    run_loaded(&old, &new, opts, json, out, err)
}

/// The `diff` command on two loaded reports: the table (or JSON) to `out`; the exit code.
pub fn run_loaded(
    old: &Report,
    new: &Report,
    opts: Options,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let diff = compare(old, new, opts);
    let text = if json {
        match serde_json::to_string_pretty(&diff) {
            Ok(s) => s + "\n",
            Err(e) => {
                let _ = writeln!(err, "calico-conformance diff: {e}");
                return 2;
            }
        }
    } else {
        table(&diff)
    };
    if let Err(e) = out.write_all(text.as_bytes()) {
        let _ = writeln!(err, "calico-conformance diff: cannot write the output: {e}");
    }
    diff.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_chosen_values_are_not_changes_but_calicos_mac_is_kept() {
        assert_eq!(
            kernel_chosen(
                "eth0 16:78:2c:f4:34:2a [192.168.1.10/32 fe80::1478:2cff:fef4:342a/64] > ee:ee:ee:ee:ee:ee"
            ),
            "eth0 <mac> [192.168.1.10/32 <link-local>/64] > ee:ee:ee:ee:ee:ee"
        );
        assert_eq!(kernel_chosen("(while cali saw 10)"), "(while cali saw <n>)");
        assert_eq!(
            kernel_chosen("a1:b2:c3:d4:e5:f6:07"),
            "a1:b2:c3:d4:e5:f6:07"
        );
    }
    use crate::expect::{Value, eq};
    use crate::facts::{Facts, PodFacts};
    use crate::results::{CaseResult, Status};
    use std::time::Duration;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/reports")
            .join(name)
    }

    fn diff_of(old: &str, new: &str, all: bool) -> Diff {
        let (o, n) = (load(&fixture(old)).unwrap(), load(&fixture(new)).unwrap());
        compare(&o, &n, Options { all })
    }

    /// Runs the command as `diff` does: (exit code, stdout, stderr).
    fn command(old: &Path, new: &Path, all: bool, json: bool) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(old, new, Options { all }, json, &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (code, text(out), text(err))
    }

    #[test]
    fn a_faulted_run_names_the_claim_the_old_and_new_value_and_exits_1() {
        let d = diff_of("lab-correct.json", "lab-mtu-mismatch.json", false);
        let regressed: Vec<String> = d.regressions.iter().map(|r| r.case.to_string()).collect();
        assert_eq!(regressed, ["lab_vxlan/test-tools", "lab_vxlan/test-tools"]);
        assert_eq!(d.regressions[0].case.claim, "POD-I3");
        assert_eq!(d.regressions[1].case.claim, "VETH-3");
        let mtu = &d.value_changes[0];
        assert_eq!(
            (mtu.case.claim.as_str(), mtu.what.as_str()),
            ("POD-I3", "eth0 MTU")
        );
        assert_eq!(mtu.side, "observed");
        assert_eq!(mtu.old["value"], serde_json::json!({"mtu": 1450}));
        assert_eq!(mtu.new["value"], serde_json::json!({"mtu": 1400}));
        // VETH-3's `what` names the host end: matched after normalising, in both runs.
        let veth3: Vec<&ValueChange> = d
            .value_changes
            .iter()
            .filter(|v| v.case.claim == "VETH-3")
            .collect();
        assert_eq!(veth3.len(), 1, "{veth3:?}");
        assert_eq!(veth3[0].what, "<host end of test-tools> MTU");
        assert_eq!(veth3[0].side, "expected");
        assert!(d.improvements.is_empty() && d.facts_changes.is_empty());
        assert!(d.only_in_old.is_empty() && d.only_in_new.is_empty());
        assert_eq!(d.exit_code(), 1);

        let (old, new) = (
            fixture("lab-correct.json"),
            fixture("lab-mtu-mismatch.json"),
        );
        let (code, out, err) = command(&old, &new, false, false);
        assert_eq!((code, err.as_str()), (1, ""));
        let row = out
            .lines()
            .find(|l| l.contains("eth0 MTU (observed)"))
            .unwrap();
        assert!(
            row.starts_with("POD-I3") && row.contains("lab_vxlan/test-tools"),
            "{row}"
        );
        assert!(row.ends_with("1450 → 1400"), "{row}");
        assert!(out.contains("status: REGRESSION"), "{out}");
        assert!(
            out.lines()
                .last()
                .unwrap()
                .starts_with("2 regressions, 0 improvements"),
            "{out}"
        );
    }

    #[test]
    fn json_output_has_every_list() {
        let (old, new) = (
            fixture("lab-correct.json"),
            fixture("lab-mtu-mismatch.json"),
        );
        let (code, out, _) = command(&old, &new, false, true);
        assert_eq!(code, 1);
        let j: Json = serde_json::from_str(&out).unwrap();
        for key in [
            "regressions",
            "improvements",
            "status_changes",
            "value_changes",
            "facts_changes",
            "only_in_old",
            "only_in_new",
        ] {
            assert!(j[key].is_array(), "{key} in {out}");
        }
        assert_eq!(j["regressions"][0]["claim"], "POD-I3");
        assert_eq!(j["regressions"][0]["pod"], "test-tools");
        assert_eq!(
            j["regressions"][0]["failed_check"]["observed"],
            "eth0 MTU: 1400"
        );
        assert_eq!(j["value_changes"][0]["new"]["value"]["mtu"], 1400);
    }

    #[test]
    fn the_way_back_is_an_improvement_and_exits_0() {
        let d = diff_of("lab-mtu-mismatch.json", "lab-correct.json", false);
        assert_eq!(d.improvements.len(), 2);
        assert!(d.regressions.is_empty());
        assert_eq!(d.exit_code(), 0);
    }

    #[test]
    fn two_correct_runs_print_no_change_and_exit_0() {
        for (old, new) in [
            ("lab-correct.json", "lab-correct.json"),
            ("lab-correct.json", "run-folder"),
            // Another run id, namespace, pod IPs, host ends, ifindexes, source ports, durations.
            ("kube-a.json", "kube-b.json"),
        ] {
            let (code, out, err) = command(&fixture(old), &fixture(new), false, false);
            assert_eq!(
                (code, out.as_str(), err.as_str()),
                (0, "no change\n", ""),
                "{old} {new}"
            );
        }
    }

    #[test]
    fn all_reports_what_differs_between_any_two_runs() {
        let d = diff_of("kube-a.json", "kube-b.json", true);
        let fields: Vec<&str> = d.facts_changes.iter().map(|f| f.fact.as_str()).collect();
        for f in [
            "run_id",
            "facts.pods[test-tools].ip",
            "facts.pods[test-tools].namespace",
            "phases.open_ms",
        ] {
            assert!(fields.contains(&f), "{f} in {fields:?}");
        }
        let whats: Vec<&str> = d.value_changes.iter().map(|v| v.what.as_str()).collect();
        assert!(whats.contains(&"duration_ms"), "{whats:?}");
        assert!(whats.contains(&"eth0's iflink"), "{whats:?}");
        assert!(d.regressions.is_empty());
        assert_eq!(d.exit_code(), 0);
    }

    #[test]
    fn an_upgrade_shows_versions_and_encapsulation_as_facts() {
        let d = diff_of("kube-a.json", "kube-upgraded.json", false);
        let facts: Vec<(&str, String, String)> = d
            .facts_changes
            .iter()
            .map(|f| (f.fact.as_str(), show(&f.old), show(&f.new)))
            .collect();
        assert_eq!(
            facts,
            [
                ("facts.calico_version", "v3.31.2".into(), "v3.32.1".into()),
                (
                    "facts.kubernetes_version",
                    "v1.34.0".into(),
                    "v1.34.1".into()
                ),
                (
                    "facts.pools[192.168.0.0/16].encapsulation",
                    "VXLAN".into(),
                    "VXLANCrossSubnet".into()
                ),
            ]
        );
        // The second of two checks with the same `what` is matched as the second.
        assert_eq!(d.value_changes.len(), 1, "{:?}", d.value_changes);
        assert_eq!(d.value_changes[0].what, "eth0 MTU #2");
        let table = table(&d);
        assert!(table.contains("facts   kube"), "{table}");
        assert!(table.contains("calico_version"), "{table}");
        assert_eq!(d.exit_code(), 0);
    }

    #[test]
    fn a_capture_that_held_twice_is_no_change_whatever_it_caught() {
        let old = load(&fixture("lab-correct.json")).unwrap();
        let mut new = old.clone();
        let p2p3 = new.json["cases"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["claim"] == "P2P-3")
            .unwrap();
        let observed = &mut p2p3["checks"][0]["observed"];
        observed["value"]["frames"]
            .as_array_mut()
            .unwrap()
            .push("IP a > b ttl 64 tcp [.] len 0".into());
        observed["text"] = "on cali: 3 frames".into();
        assert!(compare(&old, &new, Options::default()).is_empty());
        assert_eq!(
            compare(&old, &new, Options { all: true })
                .value_changes
                .len(),
            1
        );
        let p2p3 = |r: &Report| {
            r.json["cases"]
                .as_array()
                .unwrap()
                .iter()
                .position(|c| c["claim"] == "P2P-3")
                .unwrap()
        };
        let i = p2p3(&new);
        new.json["cases"][i]["checks"][0]["passed"] = false.into();
        let d = compare(&old, &new, Options::default());
        assert!(
            d.value_changes
                .iter()
                .any(|v| v.case.claim == "P2P-3" && v.side == "observed"),
            "{d:?}"
        );
    }

    #[test]
    fn a_case_in_one_report_only_is_said_so() {
        let old = load(&fixture("lab-correct.json")).unwrap();
        let mut new = old.clone();
        let cases = new.json["cases"].as_array_mut().unwrap();
        let gone = cases.remove(0);
        let mut added = gone.clone();
        added["claim"] = "POD-I9".into();
        cases.push(added);
        let d = compare(&old, &new, Options::default());
        assert_eq!(d.only_in_old.len(), 1);
        assert_eq!(d.only_in_old[0].case.claim, gone["claim"].as_str().unwrap());
        assert_eq!(d.only_in_new[0].case.claim, "POD-I9");
        assert_eq!(d.only_in_new[0].status, "passed");
        assert_eq!(d.exit_code(), 0);
        assert!(table(&d).contains("only in new"));
    }

    #[test]
    fn bad_inputs_give_one_line_naming_the_file_and_exit_2() {
        let good = fixture("lab-correct.json");
        let cases = [
            ("missing.json", "no such file"),
            ("not-json.json", "not a report: not JSON"),
            ("no-schema.json", "not a report: no `schema` field"),
            ("not-an-object.json", "not a report: not a JSON object"),
            (
                "schema-v2.json",
                "report schema \"calico-conformance/report/v2\"",
            ),
            (".", "no report.json in this run folder"),
        ];
        for (name, problem) in cases {
            let bad = fixture(name);
            for (old, new) in [(&good, &bad), (&bad, &good)] {
                let (code, out, err) = command(old, new, false, false);
                assert_eq!((code, out.as_str()), (2, ""), "{name}");
                assert_eq!(err.lines().count(), 1, "{err}");
                assert!(err.contains(problem), "{name}: {err}");
                assert!(
                    err.contains(bad.file_name().unwrap().to_str().unwrap()),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn run_specific_text_is_normalised() {
        let report = serde_json::json!({
            "schema": SCHEMA, "run_id": "abc-123", "cases": [],
            "targets": [{"name": "kube", "facts": {"pods": [
                {"namespace": "calico-conformance-abc-123", "name": "test-tools", "ip": "192.168.1.1"}
            ]}}],
        });
        let names = RunNames::of(&report);
        let end = host_end_name("calico-conformance-abc-123", "test-tools");
        assert_eq!(
            names.apply(&format!(
                "{end} in calico-conformance-abc-123: 192.168.1.1/32"
            )),
            "<host end of test-tools> in <run namespace>: <ip of test-tools>/32"
        );
        assert_eq!(
            names.apply("192.168.1.12 and 10.192.168.1.1 but 192.168.1.1.20001"),
            "192.168.1.12 and 10.192.168.1.1 but <ip of test-tools>.<port>"
        );
        assert_eq!(
            names.apply("eth0@if12, cali0#7, ifindex 3, icmp type 0 id 4242 seq 1, veth0 2026"),
            "eth0@if<ifindex>, cali0#<ifindex>, ifindex <ifindex>, icmp type 0 id <echo id> seq 1, veth0 2026"
        );
        assert_eq!(
            names.apply("MTU 1450, VNI 4096, port 8080"),
            "MTU 1450, VNI 4096, port 8080"
        );
        assert_eq!(
            names.apply("default via 169.254.1.1"),
            "default via 169.254.1.1"
        );
        let shown = serde_json::json!({"text": "eth0's iflink: 12", "value": {"index": 12}});
        assert_eq!(
            normalise_value(&shown, &names),
            serde_json::json!({"text": "eth0's iflink: <ifindex>", "value": {"index": "<ifindex>"}})
        );
    }

    fn real_report(mtu: u32, status: Status) -> Report {
        let mut case = CaseResult::new(("POD-I3", "The pod MTU"), "lab_none", Some("test-tools"));
        case.status = status;
        case.checks
            .push(eq("eth0 MTU", Value::Mtu(1500), Value::Mtu(mtu)).judging("ip.out"));
        case.duration = Duration::from_millis(u64::from(mtu));
        let mut facts = Facts::one_node_for_tests("lab (None)");
        facts.pods.push(PodFacts {
            namespace: "default".into(),
            name: "test-tools".into(),
            node: "k8s-worker-1".into(),
            ip: "192.168.1.12".parse().unwrap(),
            ipv6: None,
            containers: vec!["curl-client".into()],
        });
        let json = serde_json::json!({
            "schema": SCHEMA, "suite_version": "0.1.0", "run_id": format!("run-{mtu}"),
            "started": "2026-12-01T16:00:00Z", "ended": "2026-12-01T16:00:05Z",
            "targets": [{"name": "lab_none", "facts": facts, "phases": {"open_ms": 1.0}}],
            "cases": [case],
        });
        Report {
            path: PathBuf::from(format!("run-{mtu}/report.json")),
            json,
        }
    }

    #[test]
    fn reports_of_the_real_types_compare() {
        let old = real_report(1500, Status::Passed);
        let new = real_report(1400, Status::Failed);
        let d = compare(&old, &new, Options::default());
        assert_eq!(d.regressions.len(), 1);
        assert_eq!(d.value_changes.len(), 1, "{:?}", d.value_changes);
        assert_eq!(side_cell("eth0 MTU", &d.value_changes[0].new), "1400");
        assert!(d.facts_changes.is_empty(), "{:?}", d.facts_changes);
        let same = compare(&old, &real_report(1500, Status::Passed), Options::default());
        assert!(same.is_empty(), "{same:?}");
    }

    /// The fixtures keep to the writer's serialization: every key of a fixture's case, check,
    /// side and facts is one the real types write (optional ones aside), and the other way.
    #[test]
    fn fixtures_have_the_real_types_keys() {
        let real = real_report(1500, Status::Passed).json;
        let keys = |j: &Json| -> Vec<String> {
            let mut k: Vec<String> = j.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let optional = [
            "pod",
            "reason",
            "evidence_dir",
            "message",
            "kubernetes_version",
            "install",
        ];
        let without = |k: Vec<String>| -> Vec<String> {
            k.into_iter()
                .filter(|k| !optional.contains(&k.as_str()))
                .collect()
        };
        for name in [
            "lab-correct.json",
            "lab-mtu-mismatch.json",
            "kube-a.json",
            "kube-upgraded.json",
        ] {
            let f = load(&fixture(name)).unwrap().json;
            assert_eq!(keys(&f), keys(&real), "{name}");
            assert_eq!(keys(&f["targets"][0]), keys(&real["targets"][0]), "{name}");
            let (ff, rf) = (&f["targets"][0]["facts"], &real["targets"][0]["facts"]);
            assert_eq!(without(keys(ff)), without(keys(rf)), "{name}");
            for sub in ["pools", "nodes", "pods"] {
                assert_eq!(keys(&ff[sub][0]), keys(&rf[sub][0]), "{name} {sub}");
            }
            let rc = &real["cases"][0];
            for case in f["cases"].as_array().unwrap() {
                assert_eq!(without(keys(case)), without(keys(rc)), "{name}");
                for check in case["checks"].as_array().unwrap() {
                    let mut k = keys(check);
                    k.retain(|k| k != "evidence");
                    assert_eq!(k, ["expected", "observed", "passed", "what"], "{name}");
                    assert_eq!(keys(&check["observed"]), keys(&rc["checks"][0]["observed"]));
                }
            }
        }
    }
}
