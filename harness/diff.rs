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

/// Reads a report: `arg` is a `report.json` or a run folder holding one.
pub fn load(arg: &Path) -> Result<Report, BadInput> {
    let folder = arg.is_dir();
    let path = if folder {
        arg.join("report.json")
    } else {
        arg.to_path_buf()
    };
    let bad = |problem: String| BadInput {
        path: path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if folder => bad("no report.json in this run folder".into()),
        std::io::ErrorKind::NotFound => bad("no such file".into()),
        _ => bad(format!("cannot read: {e}")),
    })?;
    let json: Json =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a report: not JSON ({e})")))?;
    let Some(fields) = json.as_object() else {
        return Err(bad("not a report: not a JSON object".into()));
    };
    match fields.get("schema") {
        None => return Err(bad("not a report: no `schema` field".into())),
        Some(Json::String(s)) if s == SCHEMA => {}
        Some(other) => {
            return Err(bad(format!(
                "report schema {other}, this build compares {SCHEMA:?} only"
            )));
        }
    }
    if !fields.get("cases").is_some_and(Json::is_array) {
        return Err(bad("not a report: no `cases` list".into()));
    }
    Ok(Report { path, json })
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
            Some(n) => compare_case(key, o, n, &mut diff),
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

fn compare_case(key: &CaseKey, old: &Json, new: &Json, diff: &mut Diff) {
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
        run_numbers(&s)
    }
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

fn render(rows: &[[String; 4]]) -> String {
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
    let diff = compare(&old, &new, opts);
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
