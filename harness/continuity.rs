//! CONT-3: the dataplane is whole again after a watch. Every claim case (each per-node and
//! per-pod claim of the suite) is run before the watch and again at its end; CONT-3 holds when
//! every case passes at the end, as before the watch. The cases themselves are the suite's
//! (`suites/`); this module only compares the two runs' results.

use crate::results::{CaseResult, Status};
use serde::Serialize;

/// CONT-3's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cont3 {
    pub passed: bool,
    /// The cases run at the end of the watch (not-applicable ones included).
    pub cases: usize,
    /// Every case failing at the end: `HOST-R1 (c2c-network-demo): <why>`.
    pub failing: Vec<String>,
    /// Those of them that passed before the watch: what the watch's window broke.
    pub newly_failing: Vec<String>,
    /// Cases failing before the watch (whether or not they pass now).
    pub failing_before: Vec<String>,
    pub message: String,
}

/// `HOST-R1 (c2c-network-demo)`, or `REC-2` for a per-target claim.
fn case_id(r: &CaseResult) -> String {
    match &r.pod {
        Some(p) => format!("{} ({p})", r.claim),
        None => r.claim.clone(),
    }
}

/// Why a case failed, in one line: its reason, else its failed check's observed text, else its
/// message.
fn why(r: &CaseResult) -> String {
    let text = (r.reason.clone())
        .or_else(|| {
            r.checks
                .iter()
                .rfind(|c| !c.passed)
                .map(|c| c.observed.text.clone())
        })
        .or_else(|| r.message.clone())
        .unwrap_or_default();
    text.lines().next().unwrap_or_default().to_string()
}

/// CONT-3 from the cases run `before` the watch and `after` it.
pub fn cont_3(before: &[CaseResult], after: &[CaseResult]) -> Cont3 {
    let failed = |r: &&CaseResult| r.status == Status::Failed;
    let failing_before: Vec<String> = before.iter().filter(failed).map(case_id).collect();
    let failing: Vec<String> = (after.iter().filter(failed))
        .map(|r| format!("{}: {}", case_id(r), why(r)))
        .collect();
    let newly_failing: Vec<String> = (after.iter().filter(failed))
        .map(case_id)
        .filter(|id| !failing_before.contains(id))
        .collect();
    let passed = failing.is_empty() && !after.is_empty();
    let message = if after.is_empty() {
        "no claim case was run at the end of the watch".to_string()
    } else if passed {
        let mut m = format!("all {} cases pass at the end of the watch", after.len());
        match failing_before.len() {
            0 => m.push_str(", as before it"),
            n => m.push_str(&format!(
                " ({n} failed before it: {})",
                failing_before.join(", ")
            )),
        }
        m
    } else {
        format!(
            "{} of {} cases fail at the end of the watch ({} of them passed before it): {}",
            failing.len(),
            after.len(),
            newly_failing.len(),
            failing.join("; ")
        )
    };
    Cont3 {
        passed,
        cases: after.len(),
        failing,
        newly_failing,
        failing_before,
        message,
    }
}

/// Adds CONT-3 to a watch's report in `dir`: `cont-3.json` (the verdict, and every failing
/// case), and a section at the end of `watch.md` (`md`).
pub fn add_to_report(dir: &std::path::Path, md: &std::path::Path, v: &Cont3) -> crate::Result<()> {
    let file_error = |problem: String| crate::Error::File {
        path: md.to_path_buf(),
        problem,
    };
    let json = serde_json::to_string_pretty(v).map_err(|e| file_error(e.to_string()))?;
    crate::run::write_whole(&dir.join("cont-3.json"), &(json + "\n"))?;
    let mut text = std::fs::read_to_string(md).map_err(|e| file_error(e.to_string()))?;
    let word = if v.passed { "passed" } else { "FAILED" };
    text.push_str(&format!(
        "\n## CONT-3: the dataplane is whole again afterwards\n\n{word}: {}\n",
        v.message.lines().next().unwrap_or_default()
    ));
    for f in &v.failing {
        text.push_str(&format!("- {f}\n"));
    }
    crate::run::write_whole(md, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(claim: &str, pod: Option<&str>, status: Status, reason: &str) -> CaseResult {
        let mut r = CaseResult::new((claim, "a claim"), "lab_none", pod);
        r.status = status;
        r.reason = (!reason.is_empty()).then(|| reason.to_string());
        r
    }

    /// Before the watch: HOST-R1 passed, REC-3 failed.
    fn before() -> [CaseResult; 2] {
        [
            case("HOST-R1", Some("c2c-network-demo"), Status::Passed, ""),
            case(
                "REC-3",
                None,
                Status::Failed,
                "no route to block 192.168.1.0/26",
            ),
        ]
    }

    #[test]
    fn cont_3_holds_when_every_case_passes_at_the_end() {
        let before = before();
        let after = [
            case("HOST-R1", Some("c2c-network-demo"), Status::Passed, ""),
            case("REC-3", None, Status::Passed, ""),
            case("XN-2", None, Status::NotApplicable, "one node"),
        ];
        let v = cont_3(&before, &after);
        assert!(v.passed, "{v:?}");
        assert_eq!(
            v.message,
            "all 3 cases pass at the end of the watch (1 failed before it: REC-3)"
        );
        let v = cont_3(&after, &after);
        assert_eq!(
            v.message,
            "all 3 cases pass at the end of the watch, as before it"
        );
    }

    #[test]
    fn cont_3_fails_naming_each_failing_case_and_what_the_watch_broke() {
        let before = before();
        let after = [
            case(
                "HOST-R1",
                Some("c2c-network-demo"),
                Status::Failed,
                "no /32 route\nmore",
            ),
            case(
                "REC-3",
                None,
                Status::Failed,
                "no route to block 192.168.1.0/26",
            ),
        ];
        let v = cont_3(&before, &after);
        assert!(!v.passed);
        assert_eq!(v.newly_failing, ["HOST-R1 (c2c-network-demo)"]);
        assert_eq!(
            v.message,
            "2 of 2 cases fail at the end of the watch (1 of them passed before it): \
             HOST-R1 (c2c-network-demo): no /32 route; REC-3: no route to block 192.168.1.0/26"
        );
        assert!(!cont_3(&before, &[]).passed, "nothing run is not a pass");
    }
}
