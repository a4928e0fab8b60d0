//! Writes a run's report files: `report.json` ([`crate::report`]) and, from the same merged
//! report and under the same lock, `report.md` ([`crate::report_md`]) and `junit.xml`
//! ([`crate::junit`]) beside it, so all three are whole and agree after every process of a run
//! (one under `cargo test` and `check`, one per test under cargo-nextest).

use crate::error::Result;
use crate::report::{self, Part, Report};
use std::path::{Path, PathBuf};

/// `report.md`'s file name in the run's folder.
pub const MARKDOWN: &str = "report.md";
/// `junit.xml`'s file name in the run's folder.
pub const JUNIT: &str = "junit.xml";

/// Adds `part` to the run whose folder is `root` ([`report::add`]) and rewrites `report.md`
/// and `junit.xml` from the merged report. Returns `report.json`'s path.
pub fn add(root: &Path, run_id: &str, part: &Part) -> Result<PathBuf> {
    report::add_with(root, run_id, part, |r| write_beside(root, r))
}

/// Writes `report.md` and `junit.xml` of `report` into `root`, each replaced whole.
pub fn write_beside(root: &Path, report: &Report) -> Result<()> {
    crate::run::write_whole(&root.join(MARKDOWN), &crate::report_md::render(report))?;
    crate::run::write_whole(&root.join(JUNIT), &crate::junit::render(report))
}
