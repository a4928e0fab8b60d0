//! `junit.xml`: the run's claim cases as JUnit XML, rendered from its [`Report`] alone (a pure
//! function; [`crate::report_files`] writes it beside `report.json`).
//!
//! cargo-nextest's own JUnit file names each test by its Rust path and takes a failure's
//! `message` from a panic or `Error:` line on standard error, which the suite's runner does not
//! print: a CI UI would show no claim and no values first. Here every case is a `<testcase>`
//! whose `name` starts with the claim ID (`VETH-3 test-tools`) and whose `classname` is
//! `calico-conformance.<target>.<claim ID>`; a failure's `message` is the expected/observed pair
//! of the check that failed (`expected calied9d42cb137 MTU: 1400 ..., observed ...: 1500`), its
//! body the whole printed message; a case that does not apply is `<skipped>` with its reason.

use crate::report::Report;
use crate::results::{CaseResult, Status};
use std::fmt::Write as _;

/// `junit.xml` for `report`: one `<testsuite>` per target, one `<testcase>` per claim case.
pub fn render(report: &Report) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let all = &report.cases;
    let failures = all.iter().filter(|c| c.status == Status::Failed).count();
    let _ = writeln!(
        xml,
        "<testsuites name=\"calico-conformance\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" timestamp=\"{}\">",
        all.len(),
        escape(&report.started)
    );
    for target in &report.targets {
        let cases: Vec<&CaseResult> = all.iter().filter(|c| c.target == target.name).collect();
        let count = |s: Status| cases.iter().filter(|c| c.status == s).count();
        let secs: f64 = cases.iter().map(|c| c.duration.as_secs_f64()).sum();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"calico-conformance.{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{secs:.3}\">",
            escape(&target.name),
            cases.len(),
            count(Status::Failed),
            count(Status::NotApplicable)
        );
        for case in cases {
            testcase(&mut xml, case);
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn testcase(xml: &mut String, c: &CaseResult) {
    let name = match &c.pod {
        Some(pod) => format!("{} {pod}", c.claim),
        None => c.claim.clone(),
    };
    let _ = write!(
        xml,
        "    <testcase name=\"{}\" classname=\"calico-conformance.{}.{}\" time=\"{:.3}\"",
        escape(&name),
        escape(&c.target),
        escape(&c.claim),
        c.duration.as_secs_f64()
    );
    match c.status {
        Status::Passed => xml.push_str("/>\n"),
        Status::NotApplicable => {
            let why = c.reason.as_deref().unwrap_or("not applicable");
            let _ = writeln!(xml, ">\n      <skipped message=\"{}\"/>", escape(why));
            xml.push_str("    </testcase>\n");
        }
        Status::Failed => {
            let body = c.message.clone().unwrap_or_else(|| failure_message(c));
            let _ = writeln!(
                xml,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>",
                escape(&failure_message(c)),
                escape(&c.claim),
                escape(&body)
            );
            xml.push_str("    </testcase>\n");
        }
    }
}

/// What a CI UI shows first for a failed case: the claim, then the failed check's expected and
/// observed sides, or why the observation could not be made.
pub fn failure_message(c: &CaseResult) -> String {
    let head = format!("{} {}", c.claim, c.sentence);
    match (c.failed_check(), &c.reason) {
        (Some(k), _) => format!(
            "{head}: expected {}, observed {}",
            k.expected.text, k.observed.text
        ),
        (None, Some(r)) => format!("{head}: could not be observed: {r}"),
        (None, None) => format!("{head}: failed"),
    }
}

/// Text safe in an XML attribute or element: the five special characters as entities,
/// newlines and tabs as character references (attributes keep them), and characters XML 1.0
/// cannot carry (other control characters) dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Report {
        let path = format!("{}/fixtures/reports/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Well-formed XML (parsed back), one testcase per case named by its claim ID, a failure's
    /// message the expected/observed pair, a case that does not apply skipped with its reason.
    #[test]
    fn every_case_names_its_claim_and_a_failure_its_values() {
        let report = fixture("md-failed-absent.json");
        let xml = render(&report);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let cases: Vec<roxmltree::Node> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), report.cases.len());
        for (node, case) in cases.iter().zip(&report.cases) {
            let name = node.attribute("name").unwrap();
            assert!(name.starts_with(&case.claim), "{name}");
            let class = node.attribute("classname").unwrap();
            assert!(class.ends_with(&format!(".{}", case.claim)), "{class}");
        }
        let failed: Vec<&roxmltree::Node> = cases
            .iter()
            .filter(|n| n.children().any(|c| c.has_tag_name("failure")))
            .collect();
        assert_eq!(failed.len(), 6);
        let veth3 = failed
            .iter()
            .find(|n| n.attribute("name") == Some("VETH-3 test-tools"))
            .unwrap();
        let failure = veth3
            .children()
            .find(|c| c.has_tag_name("failure"))
            .unwrap();
        assert_eq!(
            failure.attribute("message").unwrap(),
            "VETH-3 The host end carries MAC ee:ee:ee:ee:ee:ee and no IPv4 address: expected \
             calied9d42cb137 MTU: 1400 (the pod's eth0's MTU), observed calied9d42cb137 MTU: 1450"
        );
        assert!(
            failure.text().unwrap().contains("evidence:"),
            "the body is the whole message"
        );
        let skipped = cases
            .iter()
            .filter(|n| n.children().any(|c| c.has_tag_name("skipped")))
            .count();
        assert_eq!(skipped, 17);
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("failures"), Some("6"));
        assert_eq!(suite.attribute("skipped"), Some("17"));
    }

    /// Quotes, angle brackets, ampersands, newlines and control characters from a message
    /// survive the trip through an XML parser as they were (control characters dropped).
    #[test]
    fn messages_are_escaped() {
        let mut report = fixture("md-failed-absent.json");
        let nasty = "a\"b'c<d>e&f\ng\u{1}h]]>";
        let case = report
            .cases
            .iter_mut()
            .find(|c| c.status == Status::Failed)
            .unwrap();
        case.checks.last_mut().unwrap().observed.text = nasty.into();
        case.message = Some(nasty.into());
        let xml = render(&report);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(
            failure
                .attribute("message")
                .unwrap()
                .ends_with("observed a\"b'c<d>e&f\ngh]]>")
        );
        assert_eq!(failure.text(), Some("a\"b'c<d>e&f\ngh]]>"));
    }
}
